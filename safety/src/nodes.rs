//! The guard for faults that hurt a whole node: draining it evicts every pod it runs, stressing
//! it slows (and under memory pressure may evict) every pod it runs. The verdict chose target
//! pods; their nodes are judged here with every neighbour on them, by the same rules: a node is
//! refused, with the reason, when any pod on it may not be hurt.
//!
//! DaemonSet and mirror (static) pods run on every node and are part of it: a drain leaves them
//! where they are, so it does not judge them; a stress loads them, so it refuses a node where one
//! is listed in `safety.protected` or matches `safety.never_target` (the implicit kube-system rule
//! would refuse every node of every cluster, so it does not apply to them).

use std::collections::{HashMap, HashSet};

use crate::cluster::{OwnerKind, Pod};
use crate::verdict::{
    budget, explicit_protection, floor, listed_protection, matching_pdbs, protection, Budget,
    Chosen, ClusterIndex, Excluded, NamespacePods, Request, Verdict,
};

/// How a node-level fault reaches the pods on the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Cordon and evict: every pod but DaemonSet and mirror pods goes down.
    Drain,
    /// Load the node. `may_evict`: memory pressure may make the kubelet evict pods, so each pod
    /// is judged as if it went down; CPU and I/O load slow pods but kill none.
    Stress { may_evict: bool },
}

/// A node the fault may hurt, and the pods on it that it hurts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeChoice {
    pub node: String,
    /// Cordoned before the drill: a drain then leaves it cordoned.
    pub was_unschedulable: bool,
    /// The pods a drain evicts (or a stress loads), targets and neighbours, in snapshot order.
    pub pods: Vec<Chosen>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeVerdict {
    pub nodes: Vec<NodeChoice>,
    /// Nodes left alone, and why.
    pub refused: Vec<(String, String)>,
}

impl NodeVerdict {
    /// Narrows `verdict` to the targets on accepted nodes: the others are excluded with their
    /// node's reason, and the verdict is blocked when no target is left.
    pub fn narrow(&self, verdict: &mut Verdict, index: &ClusterIndex) {
        let accepted: HashSet<&str> = self.nodes.iter().map(|n| n.node.as_str()).collect();
        let node_of = node_lookup(index);
        let (kept, dropped): (Vec<Chosen>, Vec<Chosen>) = std::mem::take(&mut verdict.targets)
            .into_iter()
            .partition(|t| {
                node_of
                    .get(&(t.namespace.as_str(), t.name.as_str()))
                    .is_some_and(|n| accepted.contains(n))
            });
        for t in dropped {
            let node = node_of
                .get(&(t.namespace.as_str(), t.name.as_str()))
                .copied();
            let reason = match node {
                None => "not scheduled on a node".to_owned(),
                Some(node) => self
                    .refused
                    .iter()
                    .find(|(n, _)| n == node)
                    .map(|(_, why)| why.clone())
                    .unwrap_or_else(|| format!("node {node} refused")),
            };
            verdict.excluded.push(Excluded {
                namespace: t.namespace,
                name: t.name,
                reason,
            });
        }
        verdict.targets = kept;
        if verdict.targets.is_empty() && verdict.blocked.is_none() {
            let first = self
                .refused
                .first()
                .map(|(_, why)| format!(" ({why})"))
                .unwrap_or_default();
            verdict.blocked = Some(format!("no node holding a chosen pod may be hurt{first}"));
        }
    }
}

fn node_lookup<'c>(index: &ClusterIndex<'c>) -> HashMap<(&'c str, &'c str), &'c str> {
    index
        .cluster
        .pods
        .iter()
        .filter_map(|p| {
            p.node
                .as_deref()
                .map(|n| ((p.namespace.as_str(), p.name.as_str()), n))
        })
        .collect()
}

/// Part of the node rather than a workload on it.
fn is_plumbing(pod: &Pod) -> bool {
    pod.owner.as_ref().is_some_and(|o| {
        o.kind == OwnerKind::DaemonSet || o.kind == OwnerKind::Other("Node".to_owned())
    })
}

/// Judges the nodes of the chosen targets, in the order the targets were chosen. Pure.
pub fn on_nodes(
    index: &ClusterIndex,
    request: &Request,
    chosen: &Verdict,
    reach: Reach,
) -> NodeVerdict {
    let cluster = index.cluster;
    let node_of = node_lookup(index);
    let mut order: Vec<&str> = Vec::new();
    for t in &chosen.targets {
        if let Some(node) = node_of.get(&(t.namespace.as_str(), t.name.as_str())) {
            if !order.contains(node) {
                order.push(node);
            }
        }
    }
    let mut on_node: HashMap<&str, Vec<&Pod>> = HashMap::new();
    let mut by_namespace: HashMap<&str, NamespacePods> = HashMap::new();
    let mut ready: Vec<i64> = vec![0; cluster.owners.len()];
    for pod in &cluster.pods {
        if let Some(node) = pod.node.as_deref() {
            on_node.entry(node).or_default().push(pod);
        }
        by_namespace
            .entry(pod.namespace.as_str())
            .or_default()
            .all
            .push(pod);
        if let (true, Some(&i)) = (
            pod.running_and_ready,
            pod.owner.as_ref().and_then(|o| index.owner_index.get(o)),
        ) {
            ready[i] += 1;
        }
    }
    let nodes: HashMap<&str, &crate::cluster::Node> =
        cluster.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    // Where evicted pods can go: nodes that are Ready and not cordoned.
    let mut schedulable = cluster
        .nodes
        .iter()
        .filter(|n| !n.unschedulable && n.ready)
        .count();
    let mut budgets: HashMap<(&str, &str), Budget> = HashMap::new();
    let mut out = NodeVerdict::default();
    for node in order {
        let known = nodes.get(node);
        let was_unschedulable = known.is_some_and(|n| n.unschedulable);
        let judged = judge_node(
            node,
            on_node.get(node).map(Vec::as_slice).unwrap_or_default(),
            index,
            request,
            reach,
            &ready,
            &mut by_namespace,
            &mut budgets,
        );
        let judged = judged.and_then(|pods| match (reach, known) {
            (Reach::Drain, None) => Err(Refusal::NotInSnapshot {
                node: node.to_owned(),
            }),
            (Reach::Drain, Some(n))
                if schedulable.saturating_sub(usize::from(!was_unschedulable && n.ready)) < 1 =>
            {
                Err(Refusal::LastSchedulable {
                    node: node.to_owned(),
                })
            }
            _ => Ok(pods),
        });
        match judged {
            Err(refusal) => out.refused.push((node.to_owned(), refusal.to_string())),
            Ok(pods) => {
                // Commit: these pods count as down for the nodes judged after this one. Only the
                // ready pods that go down (those with a workload index) were checked against the
                // budgets; a pod that was not healthy spends no disruption.
                for (pod, owner) in &pods {
                    let Some(i) = owner else { continue };
                    ready[*i] -= 1;
                    for pdb in matching_pdbs(&index.pdbs, pod) {
                        if let Some(b) =
                            budgets.get_mut(&(pdb.namespace.as_str(), pdb.name.as_str()))
                        {
                            b.allowed -= 1;
                        }
                    }
                }
                if reach == Reach::Drain && !was_unschedulable && known.is_some_and(|n| n.ready) {
                    schedulable -= 1;
                }
                out.nodes.push(NodeChoice {
                    node: node.to_owned(),
                    was_unschedulable,
                    pods: pods
                        .iter()
                        .map(|(p, _)| Chosen {
                            namespace: p.namespace.clone(),
                            name: p.name.clone(),
                            owner: p.owner.clone(),
                        })
                        .collect(),
                });
            }
        }
    }
    out
}

/// Why a node may not be hurt: the text is the node's reason in the verdict.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// A pod on it may not go down (or be loaded): `why` is the guard's reason for that pod.
    #[error("node {node} also runs {namespace}/{pod}: {why}")]
    Neighbour {
        node: String,
        namespace: String,
        pod: String,
        why: String,
    },
    #[error("node {node} is not in the cluster snapshot, so whether it was cordoned before cannot be recorded")]
    NotInSnapshot { node: String },
    #[error("draining node {node} would leave no schedulable node for its pods")]
    LastSchedulable { node: String },
}

/// The pods on one node the fault hurts (with the index of a ready pod's workload, whose ready
/// count it lowers), or why the node may not be hurt.
#[allow(clippy::too_many_arguments)]
fn judge_node<'c>(
    node: &str,
    pods: &[&'c Pod],
    index: &ClusterIndex<'c>,
    request: &Request,
    reach: Reach,
    ready: &[i64],
    by_namespace: &mut HashMap<&'c str, NamespacePods<'c>>,
    budgets: &mut HashMap<(&'c str, &'c str), Budget>,
) -> Result<Vec<(&'c Pod, Option<usize>)>, Refusal> {
    let cluster = index.cluster;
    let refuse = |pod: &Pod, why: String| Refusal::Neighbour {
        node: node.to_owned(),
        namespace: pod.namespace.clone(),
        pod: pod.name.clone(),
        why,
    };
    let mut hurt = Vec::new();
    let mut down: HashMap<usize, i64> = HashMap::new();
    let mut spent: HashMap<(&str, &str), i64> = HashMap::new();
    for &pod in pods {
        // A pod that has finished holds nothing: evicting or loading it hurts no one.
        if pod.phase == "Succeeded" || pod.phase == "Failed" {
            continue;
        }
        if is_plumbing(pod) {
            if let (Reach::Stress { .. }, Some(why)) =
                (reach, listed_protection(pod, request.policy))
            {
                return Err(refuse(pod, why));
            }
            continue;
        }
        let owner = pod
            .owner
            .as_ref()
            .and_then(|o| index.owner_index.get(o))
            .copied();
        let known = owner.map(|i| &cluster.owners[i]);
        let protected = match reach {
            // A pod that goes down must come back: its controller must be known.
            Reach::Drain | Reach::Stress { may_evict: true } => {
                protection(pod, request, &index.namespaces, known)
            }
            Reach::Stress { may_evict: false } => explicit_protection(pod, request),
        };
        if let Some(why) = protected {
            return Err(refuse(pod, why));
        }
        let goes_down = !matches!(reach, Reach::Stress { may_evict: false });
        if let (true, true, Some(i)) = (goes_down, pod.running_and_ready, owner) {
            let workload = &cluster.owners[i];
            let left = ready[i] - *down.get(&i).unwrap_or(&0) - 1;
            let min = floor(request.policy, pod, workload);
            if left < min {
                return Err(refuse(
                    pod,
                    format!(
                        "would leave {} with {left} ready pod{}; min_healthy is {min}",
                        workload.key,
                        if left == 1 { "" } else { "s" }
                    ),
                ));
            }
            let in_namespace = by_namespace.entry(pod.namespace.as_str()).or_default();
            for pdb in matching_pdbs(&index.pdbs, pod) {
                let key = (pdb.namespace.as_str(), pdb.name.as_str());
                let b = budgets.entry(key).or_insert_with(|| {
                    budget(pdb, in_namespace, &index.owner_index, &cluster.owners)
                });
                let used = spent.entry(key).or_insert(0);
                if b.allowed - *used <= 0 {
                    return Err(refuse(pod, b.explain.clone()));
                }
                *used += 1;
            }
            *down.entry(i).or_insert(0) += 1;
        }
        hurt.push((
            pod,
            if goes_down && pod.running_and_ready {
                owner
            } else {
                None
            },
        ));
    }
    Ok(hurt)
}
