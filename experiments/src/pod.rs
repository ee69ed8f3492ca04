//! `pod-kill`: the chosen pods evicted (or deleted), all at once or in waves that wait for
//! recovery.

use std::time::Duration;

use firedrill_reader::read::Reader;
use firedrill_reader::yaml::Node;
use firedrill_rollback::{ObjectKind, ObjectRef, Step};
use firedrill_safety::cluster::OwnerRef;
use firedrill_safety::verdict::Verdict;

use crate::plan::{Expect, Plan};
use crate::values::within;

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

/// One fire's steps: each chosen pod with a controller, in `waves`.
pub fn pod_kill(settings: &PodKill, verdict: Option<&Verdict>) -> Plan {
    let grace = settings.grace_period.map(|g| g.as_secs() as i64);
    let steps: Vec<Step> = verdict
        .map(|v| v.targets.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| {
            // The guard only chooses pods with a controller; without one nothing recreates it.
            let owner = t.owner.as_ref()?;
            Some(Step::kill(
                ObjectRef::namespaced(ObjectKind::Pod, &t.namespace, &t.name),
                &format!("{}/{}", owner.kind, owner.name),
                !settings.force,
                grace,
            ))
        })
        .collect();
    let waves = (settings.waves.max(1) as usize).min(steps.len().max(1));
    let per_wave = steps.len().div_ceil(waves).max(1);
    let affected: std::collections::BTreeSet<OwnerRef> = verdict
        .map(|v| v.targets.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.owner.clone())
        .collect();
    // Each killed pod must be gone (or replaced) within its grace period.
    let effect = steps
        .iter()
        .filter_map(|s| s.forward.target())
        .map(|pod| Expect::PodGone {
            pod,
            grace: settings.grace_period,
        })
        .collect();
    Plan {
        waves: steps.chunks(per_wave).map(<[Step]>::to_vec).collect(),
        interval: settings.interval,
        wait_for_recovery: true,
        affected: affected.into_iter().collect(),
        effect: Some(effect),
        ..Plan::default()
    }
}

impl PodKill {
    /// `fault:` of a pod-kill, every problem reported at its line.
    pub fn read(r: &mut Reader, node: &Node, path: &str) -> Option<Self> {
        let f = r.fields(node, path, &["force", "grace_period", "waves", "interval"])?;
        let d = PodKill::default();
        let force = f
            .get("force")
            .map_or(Some(d.force), |n| r.boolean(n, &f.path_of("force")));
        let grace_period = match f.get("grace_period") {
            Some(n) => {
                within(r, n, &f.path_of("grace_period"), Duration::from_secs(3600)).map(Some)
            }
            None => Some(None),
        };
        let waves = f.get("waves").map_or(Some(u64::from(d.waves)), |n| {
            r.integer(n, &f.path_of("waves"), 1, 10)
        });
        let interval = match f.get("interval") {
            Some(n) => within(r, n, &f.path_of("interval"), Duration::from_secs(3600)),
            None => Some(d.interval),
        };
        Some(PodKill {
            force: force?,
            grace_period: grace_period?,
            waves: waves? as u32,
            interval: interval?,
        })
    }
}
