//! What each fault kind would change, as steps: pure, from the guard's verdict. The runner applies
//! them through the ledger; `rollback/` undoes them.

use std::time::Duration;

use firedrill_rollback::{ObjectKind, ObjectRef, Step};
use firedrill_safety::verdict::Verdict;

use crate::settings::{PodKill, Settings};
use crate::Kind;

/// A fire's steps, in waves: the runner applies a wave, waits for the workloads it hit to
/// recover, waits `interval`, then applies the next.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub waves: Vec<Vec<Step>>,
    pub interval: Duration,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.waves.iter().all(Vec::is_empty)
    }

    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.waves.iter().flatten()
    }
}

/// The steps one fire of `kind` takes on the pods the guard chose. `Err` says why the kind
/// cannot run in this version (a dry run still plans and records everything else).
pub fn plan(kind: Kind, settings: &Settings, verdict: Option<&Verdict>) -> Result<Plan, String> {
    match (kind, settings) {
        // A probe only observes.
        (Kind::Probe, _) => Ok(Plan::default()),
        (Kind::PodKill, Settings::PodKill(s)) => Ok(pod_kill(s, verdict)),
        (Kind::PodKill, _) => Ok(pod_kill(&PodKill::default(), verdict)),
        (other, _) => Err(format!(
            "the {other} fault is not available in this version of firedrill; nothing was injected"
        )),
    }
}

fn pod_kill(settings: &PodKill, verdict: Option<&Verdict>) -> Plan {
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
    Plan {
        waves: steps.chunks(per_wave).map(<[Step]>::to_vec).collect(),
        interval: settings.interval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_rollback::Operation;
    use firedrill_safety::cluster::{OwnerKind, OwnerRef};
    use firedrill_safety::verdict::Chosen;

    fn verdict(n: usize) -> Verdict {
        Verdict {
            targets: (0..n)
                .map(|i| Chosen {
                    namespace: "shop".into(),
                    name: format!("api-{i}"),
                    owner: Some(OwnerRef {
                        kind: OwnerKind::Deployment,
                        namespace: "shop".into(),
                        name: "api".into(),
                    }),
                })
                .collect(),
            ..Verdict::default()
        }
    }

    #[test]
    fn pod_kill_evicts_each_chosen_pod_in_waves() {
        let settings = Settings::PodKill(PodKill {
            waves: 2,
            ..PodKill::default()
        });
        let planned = plan(Kind::PodKill, &settings, Some(&verdict(3))).unwrap();
        assert_eq!(
            planned.waves.iter().map(Vec::len).collect::<Vec<_>>(),
            [2, 1]
        );
        assert_eq!(
            planned.steps().next().unwrap().forward.describe(),
            "evict Pod shop/api-0"
        );
        let forced = Settings::PodKill(PodKill {
            force: true,
            grace_period: Some(Duration::from_secs(0)),
            waves: 5,
            ..PodKill::default()
        });
        let forced = plan(Kind::PodKill, &forced, Some(&verdict(2))).unwrap();
        assert_eq!(forced.waves.len(), 2, "never more waves than pods");
        assert!(matches!(
            &forced.waves[0][0].forward,
            Operation::Kill {
                evict: false,
                grace_seconds: Some(0),
                ..
            }
        ));
        assert!(plan(Kind::PodKill, &Settings::None, None)
            .unwrap()
            .is_empty());
        assert!(plan(Kind::NodeDrain, &Settings::None, None).is_err());
    }
}
