//! A scenario's steps judged together: each step is judged on the cluster as the steps before it
//! left it, so two steps together cannot cross a floor (`min_healthy`, a budget, the blast radius)
//! that each alone would not (#26 item 1).
//!
//! The runner reads the cluster at each step's start; what it cannot see there (a partitioned or
//! stressed pod is still Running and Ready; a budget's `disruptionsAllowed` may not have caught up)
//! the earlier steps say in [`Held`], and [`judged_after`] takes it out of what the next step may
//! count on.

use crate::cluster::Cluster;
use crate::policy::Policy;

/// What the earlier steps of a scenario hold down while a later step is judged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Pods an earlier step took, cut off or holds down, as (namespace, name).
    pub pods: Vec<(String, String)>,
    /// How many targets earlier steps hit (counted against `max_targets`).
    pub hits: u32,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty() && self.hits == 0
    }
}

/// The cluster and policy the next step is judged on: every held pod counts as down (not
/// Running and Ready, and out of its budgets' allowance), and the targets already hit come off
/// `max_targets`.
pub fn judged_after(cluster: &Cluster, policy: &Policy, held: &Held) -> (Cluster, Policy) {
    let mut cluster = cluster.clone();
    for pod in &mut cluster.pods {
        if held
            .pods
            .iter()
            .any(|(ns, name)| *ns == pod.namespace && *name == pod.name)
        {
            pod.running_and_ready = false;
        }
    }
    let mut policy = policy.clone();
    policy.max_targets = policy.max_targets.saturating_sub(held.hits);
    (cluster, policy)
}
