//! A scenario's steps judged together: each step is judged on the cluster as the steps before it
//! left it, so two steps together cannot cross a floor (`min_healthy`, a budget, the blast radius)
//! that each alone would not (#26 item 1).
//!
//! The runner reads the cluster at each step's start; what it cannot see there (a partitioned or
//! stressed pod is still Running and Ready; a budget's `disruptionsAllowed` may not have caught up)
//! the earlier steps say in [`Held`], and [`judged_after`] takes it out of what the next step may
//! count on:
//!
//! - **`min_healthy`**: a held pod is not healthy, so it is not among its workload's ready pods
//!   (and may not be picked again).
//! - **PodDisruptionBudgets**: a budget is judged from its pods' counts and never above its
//!   `status.disruptionsAllowed`. A held pod the snapshot still shows Ready comes off both once:
//!   it is counted down, and the status (which did not see it go) loses one. A held pod the
//!   snapshot already shows not ready is in both already and is not counted again.
//! - **The blast radius**: the steps share the caps one drill has. Their hits together stay within
//!   `max_targets`, and within `max_blast_radius` of every pod any step's targets matched, each
//!   pod counted once (as one drill with all the steps' targets would count them). A pod an
//!   earlier step deleted and its controller replaced under a new name counts under both names.
//! - **Node faults**: a drain judges every neighbour's floors and budgets on the cluster above, so
//!   what earlier steps hold is down there too; a node an earlier step cordoned takes no evicted
//!   pods and is no schedulable node left.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::cluster::Cluster;
use crate::nodes::NodeVerdict;
use crate::policy::Policy;
use crate::verdict::Verdict;

/// What the earlier steps of a scenario hold down while a later step is judged.
///
/// `matched` and `nodes` were added to the first version's `pods` and `hits`; [`Held::add`] and
/// [`Held::add_nodes`] fill all four from a step's verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Pods an earlier step took, cut off or holds down, as (namespace, name).
    pub pods: Vec<(String, String)>,
    /// How many targets earlier steps hit (counted against `max_targets` and the blast radius).
    pub hits: u32,
    /// Every pod the earlier steps' targets matched, as (namespace, name): the pods the shared
    /// `max_blast_radius` is a share of.
    pub matched: Vec<(String, String)>,
    /// Nodes an earlier step cordoned (a drain, a zone drained).
    pub nodes: Vec<String>,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty() && self.hits == 0 && self.matched.is_empty() && self.nodes.is_empty()
    }

    /// Adds what an accepted step's verdict takes: its targets (held, and hits) and every pod its
    /// targets matched (the chosen and the excluded).
    pub fn add(&mut self, verdict: &Verdict) {
        let targets = verdict
            .targets
            .iter()
            .map(|t| (t.namespace.clone(), t.name.clone()));
        self.hits = self
            .hits
            .saturating_add(u32::try_from(verdict.targets.len()).unwrap_or(u32::MAX));
        add_new(&mut self.pods, targets.clone());
        add_new(
            &mut self.matched,
            targets.chain(
                verdict
                    .excluded
                    .iter()
                    .map(|e| (e.namespace.clone(), e.name.clone())),
            ),
        );
    }

    /// Adds what a node fault takes besides its targets: every pod on its nodes is held, and the
    /// nodes too when the fault `cordoned` them (a drain; a stress or a partition does not).
    pub fn add_nodes(&mut self, nodes: &NodeVerdict, cordoned: bool) {
        add_new(
            &mut self.pods,
            nodes
                .nodes
                .iter()
                .flat_map(|n| &n.pods)
                .map(|p| (p.namespace.clone(), p.name.clone())),
        );
        if cordoned {
            add_new(&mut self.nodes, nodes.nodes.iter().map(|n| n.node.clone()));
        }
    }
}

impl Held {
    /// Adds what another step holds (the steps running together hold the sum of theirs).
    pub fn extend(&mut self, other: &Held) {
        self.hits = self.hits.saturating_add(other.hits);
        for (mine, theirs) in [
            (&mut self.pods, &other.pods),
            (&mut self.matched, &other.matched),
        ] {
            mine.extend(theirs.iter().cloned());
            mine.sort();
            mine.dedup();
        }
        self.nodes.extend(other.nodes.iter().cloned());
        self.nodes.sort();
        self.nodes.dedup();
    }
}

fn add_new<T: PartialEq>(to: &mut Vec<T>, items: impl IntoIterator<Item = T>) {
    for item in items {
        if !to.contains(&item) {
            to.push(item);
        }
    }
}

/// What the earlier steps of a scenario spent of the caps they share with the step judged now
/// (`Policy::spent`; empty for a drill of its own, which then caps as it always did).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    /// Targets the earlier steps hit.
    pub hits: u32,
    /// The pods the earlier steps' targets matched, as (namespace, name).
    pub matched: BTreeSet<(String, String)>,
}

impl Spent {
    pub fn is_empty(&self) -> bool {
        self.hits == 0 && self.matched.is_empty()
    }
}

/// The cluster and policy the next step is judged on: every held pod counts as down (not
/// Running and Ready, and out of its budgets' allowance once), the held nodes as cordoned, and the
/// hits and matched pods of the earlier steps as spent of the shared caps (see the module).
pub fn judged_after(cluster: &Cluster, policy: &Policy, held: &Held) -> (Cluster, Policy) {
    let mut cluster = cluster.clone();
    let held_pods: HashSet<(&str, &str)> = held
        .pods
        .iter()
        .map(|(ns, name)| (ns.as_str(), name.as_str()))
        .collect();
    // The budgets' status lost one for each held pod it still saw Ready.
    let mut unseen: HashMap<usize, u32> = HashMap::new();
    for pod in &mut cluster.pods {
        if !held_pods.contains(&(pod.namespace.as_str(), pod.name.as_str())) {
            continue;
        }
        if pod.running_and_ready {
            for (at, pdb) in cluster.pdbs.iter().enumerate() {
                if pdb.namespace == pod.namespace
                    && pdb
                        .selector
                        .as_ref()
                        .is_some_and(|s| s.matches(&pod.labels))
                {
                    *unseen.entry(at).or_default() += 1;
                }
            }
            // Said in the pod's exclusion: "not Running and Ready (phase Running, held down by
            // an earlier step of the scenario)".
            pod.phase = format!(
                "{}, held down by an earlier step of the scenario",
                pod.phase
            );
        }
        pod.running_and_ready = false;
    }
    for (at, gone) in unseen {
        if let Some(status) = &mut cluster.pdbs[at].disruptions_allowed {
            *status = status.saturating_sub(gone);
        }
    }
    for node in &mut cluster.nodes {
        if held.nodes.contains(&node.name) {
            node.unschedulable = true;
        }
    }
    let mut policy = policy.clone();
    policy.spent.hits = policy.spent.hits.saturating_add(held.hits);
    policy.spent.matched.extend(held.matched.iter().cloned());
    (cluster, policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{IntOrPercent, Node, Owner, OwnerKind, OwnerRef, Pdb, Pod};
    use crate::nodes::{decide_on_nodes, Reach};
    use crate::verdict::{decide, decide_on, ClusterIndex, RecentHits, Request};
    use crate::{Amount, Percent, Selector, Target};

    fn web(ready: &[bool]) -> Cluster {
        let key = OwnerRef {
            kind: OwnerKind::Deployment,
            namespace: "shop".into(),
            name: "web".into(),
        };
        let labels: crate::cluster::Labels = [("app".to_owned(), "web".to_owned())].into();
        Cluster {
            owners: vec![Owner {
                key: key.clone(),
                labels: labels.clone(),
                desired: ready.len() as u32,
            }],
            pods: ready
                .iter()
                .enumerate()
                .map(|(i, &r)| Pod {
                    namespace: "shop".into(),
                    name: format!("web-{i}"),
                    labels: labels.clone(),
                    owner: Some(key.clone()),
                    running_and_ready: r,
                    phase: "Running".into(),
                    node: Some(format!("n{}", i % 2)),
                    ..Pod::default()
                })
                .collect(),
            nodes: (0..3)
                .map(|i| Node {
                    name: format!("n{i}"),
                    ready: true,
                    allocatable: Some(crate::cluster::Resources {
                        cpu_millis: 4_000,
                        memory_bytes: 1 << 30,
                    }),
                    ..Node::default()
                })
                .collect(),
            ..Cluster::default()
        }
    }

    fn budget(status: Option<u32>) -> Pdb {
        Pdb {
            namespace: "shop".into(),
            name: "web".into(),
            selector: Some(Selector::parse("app=web").unwrap()),
            min_available: None,
            max_unavailable: Some(IntOrPercent::Int(5)),
            disruptions_allowed: status,
        }
    }

    fn open() -> Policy {
        Policy {
            max_blast_radius: Percent::HUNDRED,
            max_targets: 100,
            min_pod_age: std::time::Duration::ZERO,
            ..Policy::default()
        }
    }

    fn held(pods: &[&str]) -> Held {
        Held {
            pods: pods.iter().map(|p| ("shop".into(), (*p).into())).collect(),
            ..Held::default()
        }
    }

    fn pick(cluster: &Cluster, policy: &Policy, count: u32) -> Verdict {
        let targets = [Target {
            namespace: "shop".into(),
            selector: Selector::parse("app=web").unwrap(),
            amount: Amount::Count(count),
        }];
        decide(cluster, &request(&targets, policy, &RecentHits::new()))
    }

    fn request<'a>(targets: &'a [Target], policy: &'a Policy, hits: &'a RecentHits) -> Request<'a> {
        Request {
            drill: "d",
            seed: 7,
            now: 0,
            targets,
            policy,
            own_namespace: "firedrill",
            recent_hits: hits,
        }
    }

    #[test]
    fn a_held_pod_is_down_for_min_healthy_and_cannot_be_picked_again() {
        let c = web(&[true, true, true, true]);
        let (after, _) = judged_after(&c, &open(), &held(&["web-1", "web-2"]));
        assert!(!after.pods[1].running_and_ready && !after.pods[2].running_and_ready);
        // Two of four ready are held; the implicit floor of one leaves one more to take.
        let v = pick(&after, &open(), 4);
        assert_eq!(v.targets.len(), 1);
        assert!(v
            .targets
            .iter()
            .all(|t| t.name == "web-0" || t.name == "web-3"));
    }

    #[test]
    fn a_held_pod_still_ready_comes_off_the_budget_status_once() {
        let mut c = web(&[true, true, true, true, true, true]);
        c.pdbs = vec![budget(Some(2))];
        // Held twice over (two steps hold the same pod): still one disruption.
        let mut h = held(&["web-0"]);
        h.pods.push(("shop".into(), "web-0".into()));
        let (after, policy) = judged_after(&c, &open(), &h);
        assert_eq!(after.pdbs[0].disruptions_allowed, Some(1));
        assert_eq!(pick(&after, &policy, 6).targets.len(), 1);
    }

    #[test]
    fn a_held_pod_already_not_ready_is_not_counted_twice() {
        let mut c = web(&[false, true, true, true, true, true]);
        c.pdbs = vec![budget(Some(2))];
        let (after, policy) = judged_after(&c, &open(), &held(&["web-0"]));
        assert_eq!(after.pdbs[0].disruptions_allowed, Some(2));
        assert_eq!(pick(&after, &policy, 6).targets.len(), 2);
        // Without a status, the counts alone: 5 ready of 6, maxUnavailable 5, so 4 more.
        c.pdbs = vec![budget(None)];
        let (after, policy) = judged_after(&c, &open(), &held(&["web-0"]));
        assert_eq!(pick(&after, &policy, 6).targets.len(), 4);
    }

    #[test]
    fn the_steps_share_max_targets_and_the_blast_radius_of_every_pod_they_matched() {
        let c = web(&[true; 10]);
        let half = Policy {
            max_blast_radius: Percent::from_hundredths(5_000).unwrap(),
            max_targets: 4,
            min_healthy: vec![],
            ..open()
        };
        let first = pick(&c, &half, 3);
        assert_eq!(first.targets.len(), 3);
        let mut h = Held::default();
        h.add(&first);
        assert_eq!((h.hits, h.matched.len(), h.pods.len()), (3, 10, 3));
        let (after, policy) = judged_after(&c, &half, &h);
        let second = pick(&after, &policy, 3);
        assert_eq!(second.targets.len(), 1, "{:?}", second.excluded);
        assert!(second.excluded.iter().any(|e| e
            .reason
            .contains("max_targets 4 reached, 3 by earlier steps")));
        // The blast radius: 50% of the 10 pods both steps matched is 5, not 5 per step.
        let wide = Policy {
            max_targets: 100,
            ..half
        };
        let mut h = Held::default();
        h.add(&pick(&c, &wide, 4));
        let (after, policy) = judged_after(&c, &wide, &h);
        let second = pick(&after, &policy, 4);
        assert_eq!(second.targets.len(), 1, "{:?}", second.excluded);
        // A plain drill is capped as it always was.
        assert_eq!(pick(&c, &wide, 9).targets.len(), 5);
    }

    #[test]
    fn a_later_drain_sees_held_pods_down_and_held_nodes_cordoned() {
        // web-0, 2, 4 on n0; web-1, 3, 5 on n1; a rule keeps 3 of 6 ready.
        let c = web(&[true; 6]);
        let floor = Policy {
            min_healthy: vec![crate::MinHealthy {
                namespace: "shop".into(),
                selector: Selector::parse("app=web").unwrap(),
                min: crate::Quantity::Count(3),
            }],
            ..open()
        };
        let targets = [Target {
            namespace: "shop".into(),
            selector: Selector::parse("app=web").unwrap(),
            amount: Amount::Count(1),
        }];
        let hits = RecentHits::new();
        let drain = |cluster: &Cluster, policy: &Policy| {
            decide_on_nodes(
                &ClusterIndex::new(cluster),
                &request(&targets, policy, &hits),
                Reach::Drain,
                1,
            )
        };
        let (alone, nodes) = drain(&c, &floor);
        assert!(alone.blocked.is_none(), "{alone:?}");
        // Earlier steps hold web-0 and web-1: draining either node takes two more of the four
        // left, and its neighbours' floor refuses it; one pod alone may still go.
        let (after, policy) = judged_after(&c, &floor, &held(&["web-0", "web-1"]));
        let (v, judged) = drain(&after, &policy);
        assert!(v.blocked.is_some(), "{v:?}");
        assert!(judged
            .refused
            .iter()
            .all(|(_, why)| why.contains("min_healthy is 3")));
        assert!(decide_on(
            &ClusterIndex::new(&after),
            &request(&targets, &policy, &hits)
        )
        .blocked
        .is_none());
        // The drained node is cordoned for the next step, and its pods are held.
        let mut h = Held::default();
        h.add_nodes(&nodes, true);
        assert_eq!(h.nodes, [nodes.nodes[0].node.clone()]);
        assert_eq!(h.pods.len(), 3);
        let (after, _) = judged_after(&c, &floor, &h);
        assert!(after
            .nodes
            .iter()
            .any(|n| n.name == h.nodes[0] && n.unschedulable));
    }
}
