//! The guard's settings, as the drill file declares them (globally, and per drill on top).

use std::time::Duration;

use crate::{NamespacedGlob, Percent, Quantity, Selector};

/// A minimum of ready pods that every owning workload matched by `selector` in `namespace` keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct MinHealthy {
    pub namespace: String,
    pub selector: Selector,
    /// A count, or a percentage of the owner's desired replicas (rounded up).
    pub min: Quantity,
}

/// Caps per fault; a drill asking for more is refused when the file is validated.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    pub partition: Option<Duration>,
    pub cpu: Option<Percent>,
    pub memory: Option<Percent>,
    pub error_rate: Option<Percent>,
    pub min_healthy_regions: Option<u32>,
}

/// How a node fault judges a kube-system pod on a node it drains or stresses (`safety.neighbours.
/// kube_system`). Targets in kube-system are refused either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KubeSystemNeighbours {
    /// Never hurt: a node running one is refused (the default).
    #[default]
    Protect,
    /// As `kubectl drain` treats them: evictable when a known controller recreates them, their
    /// PodDisruptionBudgets allow it and `min_healthy` holds; `protected` and `never_target` still
    /// refuse them.
    Budget,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub protected: Vec<NamespacedGlob>,
    pub never_target: Vec<Selector>,
    pub opt_in: bool,
    pub min_healthy: Vec<MinHealthy>,
    pub max_blast_radius: Percent,
    pub max_targets: u32,
    pub min_pod_age: Duration,
    pub cooldown: Duration,
    pub limits: Limits,
    pub kube_system_neighbours: KubeSystemNeighbours,
    /// Not from the file: what the earlier steps of a scenario spent of `max_targets` and
    /// `max_blast_radius`, set by [`crate::scenario::judged_after`]; empty for a drill of its own.
    pub spent: crate::scenario::Spent,
}

impl Default for Policy {
    /// Conservative defaults for a file that says nothing: at most half of the matched pods and
    /// at most ten per fire, and never a pod younger than five minutes (it may be mid-rollout).
    fn default() -> Self {
        Policy {
            protected: Vec::new(),
            never_target: Vec::new(),
            opt_in: false,
            min_healthy: Vec::new(),
            max_blast_radius: Percent::from_hundredths(5_000).unwrap_or(Percent::HUNDRED),
            max_targets: 10,
            min_pod_age: Duration::from_secs(300),
            cooldown: Duration::ZERO,
            limits: Limits::default(),
            kube_system_neighbours: KubeSystemNeighbours::Protect,
            spent: crate::scenario::Spent::default(),
        }
    }
}
