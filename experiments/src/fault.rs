//! A drill's fault: its settings, one variant per kind, and the dispatch to each kind's planner
//! (the top of this crate: it imports every kind, and no kind imports it).

use crate::container::ContainerKill;
use crate::dependency::DependencyFailure;
use crate::node::{NodeDrain, ResourceStress};
use crate::partition::NetworkPartition;
use crate::plan::{HelperError, Plan, Scene};
use crate::pod::PodKill;
use crate::Kind;

/// The settings of one drill's fault.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Settings {
    /// The kind takes none (probe), or its defaults.
    #[default]
    None,
    PodKill(PodKill),
    ContainerKill(ContainerKill),
    NetworkPartition(NetworkPartition),
    NodeDrain(NodeDrain),
    ResourceStress(ResourceStress),
    DependencyFailure(DependencyFailure),
    RegionFailover(Box<crate::region::RegionFailover>),
    NetworkDegrade(crate::degrade::NetworkDegrade),
}

/// Why one fire of a kind cannot run: the kind's own reason (its error names what to fix), or a
/// kind this build does not inject.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Helper(#[from] HelperError),
    #[error("{0}")]
    Dependency(#[from] Box<crate::dependency::DependencyError>),
    #[error("{0}")]
    Region(#[from] Box<crate::region::RegionError>),
    #[error("the {0} fault is not available in this version of firedrill: it injects nothing")]
    NotAvailable(Kind),
}

/// The steps one fire of `kind` takes on what the guard chose. `Err` says why the kind cannot
/// run (a dry run still plans and records everything else).
pub fn plan(kind: Kind, run: &str, settings: &Settings, scene: &Scene) -> Result<Plan, PlanError> {
    match (kind, settings) {
        (Kind::NetworkPartition, Settings::NetworkPartition(s)) => {
            Ok(crate::partition::partition(run, s, scene.verdict()))
        }
        (Kind::NetworkPartition, _) => Ok(crate::partition::partition(
            run,
            &NetworkPartition::default(),
            scene.verdict(),
        )),
        // A probe only observes.
        (Kind::Probe, _) => Ok(Plan::default()),
        (Kind::PodKill, Settings::PodKill(s)) => Ok(crate::pod::pod_kill(s, scene.verdict())),
        (Kind::PodKill, _) => Ok(crate::pod::pod_kill(&PodKill::default(), scene.verdict())),
        (Kind::ContainerKill, Settings::ContainerKill(s)) => {
            Ok(crate::container::kill(run, s, scene)?)
        }
        (Kind::NodeDrain, Settings::NodeDrain(s)) => Ok(crate::node::drain(s, scene)),
        (Kind::NodeDrain, _) => Ok(crate::node::drain(&Default::default(), scene)),
        (Kind::ResourceStress, Settings::ResourceStress(s)) => {
            Ok(crate::node::stress(run, s, scene))
        }
        (Kind::ResourceStress, _) => Ok(crate::node::stress(run, &Default::default(), scene)),
        (Kind::DependencyFailure, Settings::DependencyFailure(s)) => {
            crate::dependency::plan(run, s, scene).map_err(|e| Box::new(e).into())
        }
        (Kind::RegionFailover, Settings::RegionFailover(s)) => {
            crate::region::plan(run, s, scene, scene.dns).map_err(|e| Box::new(e).into())
        }
        (Kind::NetworkDegrade, Settings::NetworkDegrade(s)) => {
            Ok(crate::degrade::plan(run, s, scene)?)
        }
        (other, _) => Err(PlanError::NotAvailable(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::{network_policy, Direction, Peer};
    use crate::plan::Choice;
    use firedrill_rollback::Operation;
    use firedrill_safety::cluster::{OwnerKind, OwnerRef};
    use firedrill_safety::verdict::{Chosen, Verdict};
    use serde_json::json;
    use std::time::Duration;

    fn chosen(verdict: Verdict) -> Choice {
        Choice {
            verdict,
            nodes: None,
        }
    }

    fn scene(choice: Option<&Choice>) -> Scene<'_> {
        Scene {
            choice,
            cluster: None,
            image: "firedrill:test",
            duration: Duration::from_secs(60),
            expires: "2026-01-01T01:00:00Z",
            dns: None,
        }
    }

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
        let three = chosen(verdict(3));
        let planned = plan(Kind::PodKill, "run-1", &settings, &scene(Some(&three))).unwrap();
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
        let two = chosen(verdict(2));
        let forced = plan(Kind::PodKill, "run-1", &forced, &scene(Some(&two))).unwrap();
        assert_eq!(forced.waves.len(), 2, "never more waves than pods");
        assert!(matches!(
            &forced.waves[0][0].forward,
            Operation::Kill {
                evict: false,
                grace_seconds: Some(0),
                ..
            }
        ));
        assert!(plan(Kind::PodKill, "run-1", &Settings::None, &scene(None))
            .unwrap()
            .is_empty());
        assert!(plan(Kind::RegionFailover, "run-1", &Settings::None, &scene(None)).is_err());
    }

    #[test]
    fn a_partition_marks_the_chosen_pods_and_isolates_them() {
        let settings = Settings::NetworkPartition(NetworkPartition {
            direction: Direction::Both,
            allow: vec![Peer::Namespace("monitoring".into())],
            allow_dns: true,
        });
        let planned = plan(
            Kind::NetworkPartition,
            "run-1",
            &settings,
            &scene(Some(&chosen(verdict(2)))),
        )
        .unwrap();
        let steps: Vec<String> = planned.steps().map(|s| s.forward.describe()).collect();
        assert_eq!(steps.len(), 3, "{steps:?}");
        assert!(steps[0].starts_with("patch Pod shop/api-0: {\"metadata\":{\"labels\":{\"firedrill.io/partition\":\"run-1\"}}}"), "{steps:?}");
        assert_eq!(
            steps[2],
            "create NetworkPolicy shop/firedrill-partition-run-1"
        );
        let policy = network_policy(
            "run-1",
            "shop",
            match &settings {
                Settings::NetworkPartition(s) => s,
                _ => unreachable!(),
            },
        );
        assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(
            policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
                ["kubernetes.io/metadata.name"],
            "monitoring"
        );
        assert_eq!(policy["spec"]["egress"][1]["ports"][0]["port"], 53);
    }
}
