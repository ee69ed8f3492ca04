//! Each kind's own settings, as the drill file's `fault:` gives them, validated into types.

use std::time::Duration;

/// The settings of one drill's fault.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Settings {
    /// The kind takes none (probe), or its defaults.
    #[default]
    None,
    PodKill(PodKill),
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
