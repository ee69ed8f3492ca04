//! Each kind's own settings, as the drill file's `fault:` gives them, validated into types.

use std::time::Duration;

/// The settings of one drill's fault.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Settings {
    /// The kind takes none (probe), or its defaults.
    #[default]
    None,
    PodKill(PodKill),
    NetworkPartition(NetworkPartition),
}

/// `pod-kill`: evict (the default: PodDisruptionBudgets are enforced by the API server too) or
/// delete with a grace period, all at once or in waves that wait for recovery.
#[derive(Clone, Debug, PartialEq)]
pub struct PodKill {
    /// Delete instead of evicting.
    pub force: bool,
    /// The grace period the pods get; `None`: their own.
    pub grace_period: Option<Duration>,
    /// How many waves the chosen pods are killed in; the next wave waits for recovery.
    pub waves: u32,
    /// How long to wait after a wave recovered before the next.
    pub interval: Duration,
}

impl Default for PodKill {
    fn default() -> Self {
        PodKill {
            force: false,
            grace_period: None,
            waves: 1,
            interval: Duration::from_secs(120),
        }
    }
}

/// `network-partition`: NetworkPolicies that isolate the chosen pods. NetworkPolicies only allow,
/// so a partition denies all traffic in `direction` except to and from the `allow` peers.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkPartition {
    pub direction: Direction,
    pub allow: Vec<Peer>,
    /// Keep DNS (UDP and TCP 53) open for egress, so the pods fail on the partition, not on
    /// name resolution. Default true.
    pub allow_dns: bool,
}

impl Default for NetworkPartition {
    fn default() -> Self {
        NetworkPartition {
            direction: Direction::Both,
            allow: Vec::new(),
            allow_dns: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
    Both,
}

/// A peer that stays reachable during a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Pods with these labels (`matchLabels`), in the target's namespace.
    Pods(std::collections::BTreeMap<String, String>),
    /// Every pod of a namespace.
    Namespace(String),
    /// An IP block.
    Cidr(String),
}
