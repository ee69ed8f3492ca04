//! The guard for faults that hurt a whole node: draining it evicts every pod it runs, stressing
//! it slows (and under memory pressure may evict) every pod it runs. As the verdict tries target
//! pods, each one's node is judged here with every neighbour on it, by the same rules: a node is
//! refused, with the reason, when any pod on it may not be hurt, and the next candidate is tried.
//!
//! DaemonSet and mirror (static) pods run on every node and are part of it: a drain leaves them
//! where they are, so it does not judge them; a stress loads them, so it refuses a node where one
//! is listed in `safety.protected` or matches `safety.never_target` (the implicit kube-system rule
//! would refuse every node of every cluster, so it does not apply to them).
//!
//! A drain must also leave the pods it moves somewhere to run: with every node taken so far,
//! they are placed on the free allocatable of the nodes left ([`crate::capacity`]). A memory
//! stress must leave the pods on its node the memory they request: the share it holds of the
//! node's allocatable must be free above their requests.

use std::collections::HashSet;

use crate::FastMap;

use crate::capacity::{free_on, place, Shortfall};
use crate::cluster::{Node, Owner, OwnerKind, Pod, Resources};
use crate::policy::KubeSystemNeighbours;
use crate::quantity::show_bytes;
use crate::verdict::{
    budget, controller_protection, decide_admitting, explicit_protection, floor, listed_protection,
    matching_pdbs, own_or_listed_protection, protection, Budget, Chosen, ClusterIndex,
    NamespacePods, Request, Verdict,
};

/// How a node-level fault reaches the pods on the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Cordon and evict: every pod but DaemonSet and mirror pods goes down.
    Drain,
    /// Load the node. `may_evict`: memory pressure may make the kubelet evict pods, so each pod
    /// is judged as if it went down; CPU and I/O load slow pods but kill none.
    /// `memory_percent`: for memory stress, the highest share it holds (a ramp's top): the node
    /// must have that share of its allocatable free above its pods' requests.
    Stress {
        may_evict: bool,
        memory_percent: Option<u32>,
    },
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
    /// Every node judged, accepted or refused, in the order it was tried.
    pub tried: Vec<String>,
    /// A zone outage's zone: then `refused` and `tried` name zones, and `nodes` are the zone's.
    pub zone: Option<String>,
}

/// Decides one fire of a node fault: the target pods are tried in the verdict's seeded order, and
/// a pod is taken only when its node is taken already or may be hurt now (with every node taken
/// before it counted down), up to `max_nodes` nodes. A refused node excludes its candidate with
/// the node's reason and the next candidate is tried, so the fire is blocked only when no
/// candidate's node passes. Pure, and seeded like [`crate::verdict::decide_on`]: `plan` shows what a fire picks.
pub fn decide_on_nodes(
    index: &ClusterIndex,
    request: &Request,
    reach: Reach,
    max_nodes: usize,
) -> (Verdict, NodeVerdict) {
    let mut judge = NodeJudge::new(index, request, reach, max_nodes);
    let mut verdict = decide_admitting(index, request, &mut |pod| judge.admit(pod));
    let judged = judge.out;
    if verdict.targets.is_empty() {
        if let Some((_, why)) = judged.refused.first() {
            verdict.blocked = Some(format!(
                "no node holding a candidate pod may be hurt: {} tried ({why})",
                judged.refused.len()
            ));
        }
    }
    (verdict, judged)
}

/// The nodes judged so far in one fire, and what taking them down has used of the floors and
/// budgets.
pub(crate) struct NodeJudge<'i, 'c> {
    index: &'i ClusterIndex<'c>,
    request: &'i Request<'i>,
    reach: Reach,
    max_nodes: usize,
    nodes: FastMap<&'c str, &'c Node>,
    on_node: FastMap<&'c str, Vec<&'c Pod>>,
    by_namespace: FastMap<&'c str, NamespacePods<'c>>,
    /// Ready pods per workload (by index), less those on nodes taken.
    ready: Vec<i64>,
    budgets: FastMap<(&'c str, &'c str), Budget>,
    /// Ready, uncordoned nodes not taken: where evicted pods can go.
    schedulable: usize,
    /// The Ready, uncordoned nodes in snapshot order, with what is free on each (`None` when the
    /// node does not say what it can allocate).
    rooms: Vec<(&'c Node, Option<Resources>)>,
    out: NodeVerdict,
    /// Each node judged so far: `None` taken, `Some(why)` refused. Candidates are many and share
    /// nodes: this answers for a node judged before without scanning `out`.
    decided: FastMap<String, Option<String>>,
}

impl<'i, 'c> NodeJudge<'i, 'c> {
    pub(crate) fn new(
        index: &'i ClusterIndex<'c>,
        request: &'i Request<'i>,
        reach: Reach,
        max_nodes: usize,
    ) -> Self {
        let cluster = index.cluster;
        let mut on_node: FastMap<&str, Vec<&Pod>> = FastMap::default();
        let mut by_namespace: FastMap<&str, NamespacePods> = FastMap::default();
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
        NodeJudge {
            index,
            request,
            reach,
            max_nodes,
            nodes: cluster.nodes.iter().map(|n| (n.name.as_str(), n)).collect(),
            by_namespace,
            ready,
            budgets: FastMap::default(),
            schedulable: cluster
                .nodes
                .iter()
                .filter(|n| !n.unschedulable && n.ready)
                .count(),
            rooms: cluster
                .nodes
                .iter()
                .filter(|n| !n.unschedulable && n.ready)
                .map(|n| {
                    let pods = on_node.get(n.name.as_str()).map(Vec::as_slice);
                    (n, free_on(n, pods.unwrap_or_default()))
                })
                .collect(),
            on_node,
            out: NodeVerdict::default(),
            decided: FastMap::default(),
        }
    }

    /// Whether the pods a drain of `node` moves (with those of every node taken before it) fit
    /// on the nodes left.
    fn check_room(&self, node: &str) -> Result<(), Refusal> {
        let taken: HashSet<&str> = self
            .out
            .nodes
            .iter()
            .map(|n| n.node.as_str())
            .chain([node])
            .collect();
        self.room_outside(&taken)
            .map_err(|shortfall| match shortfall {
                Shortfall::Unknown { node: other } => Refusal::Uncheckable {
                    node: node.to_owned(),
                    other,
                },
                no_room => Refusal::NoRoom {
                    node: node.to_owned(),
                    why: no_room.explain(),
                },
            })
    }

    /// Whether `node` has the memory a memory stress of `percent` holds free. The stress holds
    /// that share of the memory the node has free (stress-ng's `--vm-bytes N%`), counted here as
    /// that share of its allocatable, which must stay free above the requests of the pods on it:
    /// otherwise the node runs short and the kubelet evicts them.
    fn check_memory(&self, node: &str, percent: u32) -> Result<(), Refusal> {
        let Some(allocatable) = self.nodes.get(node).and_then(|n| n.allocatable) else {
            return Err(Refusal::MemoryUncheckable {
                node: node.to_owned(),
            });
        };
        let requested = self
            .on_node
            .get(node)
            .into_iter()
            .flatten()
            .filter(|p| p.phase != "Succeeded" && p.phase != "Failed")
            .fold(0u64, |sum, p| sum.saturating_add(p.requests.memory_bytes));
        let amount = u64::try_from(
            (u128::from(allocatable.memory_bytes) * u128::from(percent)).div_ceil(100),
        )
        .unwrap_or(u64::MAX);
        if u128::from(allocatable.memory_bytes) >= u128::from(amount) + u128::from(requested) {
            return Ok(());
        }
        Err(Refusal::NoMemory {
            node: node.to_owned(),
            percent,
            amount: show_bytes(amount, true),
            free: show_bytes(allocatable.memory_bytes.saturating_sub(requested), false),
            allocatable: show_bytes(allocatable.memory_bytes, false),
        })
    }

    /// Why `target` may not be taken because of its node, or `None` when its node is taken
    /// (already, or now: then what the node's pods use of the floors and budgets is committed).
    fn admit(&mut self, target: &Pod) -> Option<String> {
        let Some(node) = target.node.as_deref() else {
            return Some("not scheduled on a node".to_owned());
        };
        if let Some(decided) = self.decided.get(node) {
            return decided.clone();
        }
        self.out.tried.push(node.to_owned());
        let judged = if self.out.nodes.len() >= self.max_nodes {
            Err(Refusal::MaxNodes {
                node: node.to_owned(),
                max: self.max_nodes,
            })
        } else {
            self.judge(node)
        };
        let decided = match judged.map_err(|refusal| refusal.to_string()) {
            Err(why) => {
                self.out.refused.push((node.to_owned(), why.clone()));
                Some(why)
            }
            Ok(choice) => {
                self.out.nodes.push(choice);
                None
            }
        };
        self.decided.insert(node.to_owned(), decided.clone());
        decided
    }

    /// Judges `node` with every node taken before it down, and commits it when it passes.
    fn judge(&mut self, node: &str) -> Result<NodeChoice, Refusal> {
        let known = self.nodes.get(node).copied();
        let was_unschedulable = known.is_some_and(|n| n.unschedulable);
        let pods = self.hurt_on(node)?;
        let takes_room = !was_unschedulable && known.is_some_and(|n| n.ready);
        match (self.reach, known) {
            (Reach::Drain, None) => {
                return Err(Refusal::NotInSnapshot {
                    node: node.to_owned(),
                })
            }
            (Reach::Drain, Some(_))
                if self.schedulable.saturating_sub(usize::from(takes_room)) < 1 =>
            {
                return Err(Refusal::LastSchedulable {
                    node: node.to_owned(),
                })
            }
            (Reach::Drain, Some(_)) => self.check_room(node)?,
            (
                Reach::Stress {
                    memory_percent: Some(percent),
                    ..
                },
                _,
            ) => self.check_memory(node, percent)?,
            _ => {}
        }
        if self.reach == Reach::Drain && takes_room {
            self.schedulable -= 1;
        }
        Ok(self.commit(node, was_unschedulable, &pods))
    }

    /// What taking nodes down has used so far, to go back to when a zone is refused part way.
    pub(crate) fn checkpoint(&self) -> Checkpoint<'c> {
        Checkpoint {
            ready: self.ready.clone(),
            budgets: self.budgets.iter().map(|(k, b)| (*k, b.allowed)).collect(),
        }
    }

    /// Back to `saved`: the nodes taken since count as up again.
    pub(crate) fn restore(&mut self, saved: Checkpoint<'c>) {
        self.ready = saved.ready;
        // A budget first read after the checkpoint is read afresh next time.
        self.budgets.retain(|k, _| saved.budgets.contains_key(k));
        for (k, b) in &mut self.budgets {
            b.allowed = saved.budgets[k];
        }
    }

    /// Takes `node` down whole, as a zone outage does: its pods judged with every node taken
    /// before it down, and committed. The zone's checks (another zone left, room for what
    /// moves) are the caller's, once for the whole zone.
    pub(crate) fn take(&mut self, node: &'c Node) -> Result<NodeChoice, Refusal> {
        let pods = self.hurt_on(&node.name)?;
        Ok(self.commit(&node.name, node.unschedulable, &pods))
    }

    /// The pods on `node` the fault hurts, judged with every node taken before it down.
    fn hurt_on(&mut self, node: &str) -> Result<Vec<(&'c Pod, Option<usize>)>, Refusal> {
        judge_node(
            node,
            self.on_node
                .get(node)
                .map(Vec::as_slice)
                .unwrap_or_default(),
            self.index,
            self.request,
            self.reach,
            &self.ready,
            &mut self.by_namespace,
            &mut self.budgets,
        )
    }

    /// Counts `pods` down for the nodes judged after `node`. Only the ready pods that go down
    /// (those with a workload index) were checked against the budgets; a pod that was not
    /// healthy spends no disruption.
    fn commit(
        &mut self,
        node: &str,
        was_unschedulable: bool,
        pods: &[(&'c Pod, Option<usize>)],
    ) -> NodeChoice {
        for (pod, owner) in pods {
            let Some(i) = owner else { continue };
            self.ready[*i] -= 1;
            for pdb in matching_pdbs(&self.index.pdbs, pod) {
                if let Some(b) = self
                    .budgets
                    .get_mut(&(pdb.namespace.as_str(), pdb.name.as_str()))
                {
                    b.allowed -= 1;
                }
            }
        }
        NodeChoice {
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
        }
    }

    /// Whether the pods that leave `taken` (the nodes a drain took, or a whole zone) fit on the
    /// Ready, uncordoned nodes outside it.
    pub(crate) fn room_outside(&self, taken: &HashSet<&str>) -> Result<(), Shortfall> {
        let moving: Vec<&Pod> = taken
            .iter()
            .flat_map(|n| self.on_node.get(n).into_iter().flatten().copied())
            .filter(|p| moves(p))
            .collect();
        let rooms: Vec<(&Node, Option<Resources>)> = self
            .rooms
            .iter()
            .filter(|(n, _)| !taken.contains(n.name.as_str()))
            .copied()
            .collect();
        place(&moving, &rooms)
    }
}

/// The ready pods per workload and what each budget read so far still allows, at one moment.
pub(crate) struct Checkpoint<'c> {
    ready: Vec<i64>,
    budgets: FastMap<(&'c str, &'c str), i64>,
}

/// Part of the node rather than a workload on it.
fn is_plumbing(pod: &Pod) -> bool {
    pod.owner.as_ref().is_some_and(|o| {
        o.kind == OwnerKind::DaemonSet || o.kind == OwnerKind::Other("Node".to_owned())
    })
}

/// A pod a drain evicts and its controller recreates elsewhere: it needs room there.
fn moves(pod: &Pod) -> bool {
    pod.phase != "Succeeded"
        && pod.phase != "Failed"
        && !is_plumbing(pod)
        && pod.owner.as_ref().is_some_and(|o| o.kind.recreates_pods())
}

/// The rules a neighbour on a node the fault hurts must pass. A pod that goes down must come
/// back, so its controller must be known; a kube-system pod is judged by
/// `safety.neighbours.kube_system`.
fn neighbour_protection(
    pod: &Pod,
    index: &ClusterIndex,
    request: &Request,
    known: Option<&Owner>,
    reach: Reach,
) -> Option<String> {
    let by_budget = pod.namespace == "kube-system"
        && request.policy.kube_system_neighbours == KubeSystemNeighbours::Budget;
    match (reach, by_budget) {
        (
            Reach::Stress {
                may_evict: false, ..
            },
            false,
        ) => explicit_protection(pod, request),
        (
            Reach::Stress {
                may_evict: false, ..
            },
            true,
        ) => own_or_listed_protection(pod, request),
        (_, false) => protection(pod, request, &index.namespaces, known),
        (_, true) => {
            own_or_listed_protection(pod, request).or_else(|| controller_protection(pod, known))
        }
    }
}

/// Why a node may not be hurt: the text is the node's reason in the verdict.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
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
    /// The pods it evicts (with those of the nodes taken before it) fit on no node left.
    #[error("draining node {node} would leave its pods nowhere to run: {why}")]
    NoRoom { node: String, why: String },
    #[error("draining node {node}: capacity cannot be checked because node {other} reports no allocatable")]
    Uncheckable { node: String, other: String },
    /// A memory stress would hold more than the node has free above its pods' requests.
    #[error("node {node}: a {percent}% memory stress holds {amount}, but only {free} of its {allocatable} allocatable memory is free above its pods' requests; lower fault.load (or the ramp's top)")]
    NoMemory {
        node: String,
        percent: u32,
        amount: String,
        free: String,
        allocatable: String,
    },
    #[error("node {node}: the memory a stress holds cannot be checked because the snapshot gives no allocatable memory for it")]
    MemoryUncheckable { node: String },
    /// The fire has taken all the nodes it may.
    #[error("node {node}: fault.max_nodes is {max}: this fire takes no more nodes")]
    MaxNodes { node: String, max: usize },
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
    by_namespace: &mut FastMap<&'c str, NamespacePods<'c>>,
    budgets: &mut FastMap<(&'c str, &'c str), Budget>,
) -> Result<Vec<(&'c Pod, Option<usize>)>, Refusal> {
    let cluster = index.cluster;
    let refuse = |pod: &Pod, why: String| Refusal::Neighbour {
        node: node.to_owned(),
        namespace: pod.namespace.clone(),
        pod: pod.name.clone(),
        why,
    };
    let mut hurt = Vec::new();
    let mut down: FastMap<usize, i64> = FastMap::default();
    let mut spent: FastMap<(&str, &str), i64> = FastMap::default();
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
        if let Some(why) = neighbour_protection(pod, index, request, known, reach) {
            return Err(refuse(pod, why));
        }
        let goes_down = !matches!(
            reach,
            Reach::Stress {
                may_evict: false,
                ..
            }
        );
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
