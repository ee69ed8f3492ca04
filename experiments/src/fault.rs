//! A drill's fault: its settings, one variant per kind, and the dispatch to each kind's reader and
//! planner
//! (the top of this crate: it imports every kind, and no kind imports it).

use firedrill_reader::read::{Fields, Reader};
use firedrill_reader::yaml::Node;

use crate::container::ContainerKill;
use crate::degrade::NetworkDegrade;
use crate::dependency::DependencyFailure;
use crate::node::{NodeDrain, ResourceStress};
use crate::partition::NetworkPartition;
use crate::plan::{HelperError, Plan, Scene};
use crate::pod::PodKill;
use crate::region::{JobSpecCheck, RegionFailover};
use crate::zone::ZoneOutage;
use crate::Kind;

/// The settings of one drill's fault: one variant per kind, so the kind is read from the
/// settings and a drill cannot hold settings of another kind than the one it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Settings {
    /// A probe changes nothing, so it takes no settings.
    Probe,
    PodKill(PodKill),
    ContainerKill(ContainerKill),
    NetworkPartition(NetworkPartition),
    NodeDrain(NodeDrain),
    ResourceStress(ResourceStress),
    DependencyFailure(DependencyFailure),
    RegionFailover(Box<crate::region::RegionFailover>),
    NetworkDegrade(crate::degrade::NetworkDegrade),
    ZoneOutage(ZoneOutage),
    /// Its steps' settings are theirs (read with their targets by the runner's reader).
    Scenario(Box<crate::scenario::Scenario>),
}

/// Why one fire of a kind cannot run: the kind's own reason (its error names what to fix).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Helper(#[from] HelperError),
    #[error("{0}")]
    Dependency(#[from] Box<crate::dependency::DependencyError>),
    #[error("{0}")]
    Region(#[from] Box<crate::region::RegionError>),
}

impl Settings {
    /// The kind these settings are for.
    pub fn kind(&self) -> Kind {
        match self {
            Settings::Probe => Kind::Probe,
            Settings::PodKill(_) => Kind::PodKill,
            Settings::ContainerKill(_) => Kind::ContainerKill,
            Settings::NetworkPartition(_) => Kind::NetworkPartition,
            Settings::NodeDrain(_) => Kind::NodeDrain,
            Settings::ResourceStress(_) => Kind::ResourceStress,
            Settings::DependencyFailure(_) => Kind::DependencyFailure,
            Settings::RegionFailover(_) => Kind::RegionFailover,
            Settings::NetworkDegrade(_) => Kind::NetworkDegrade,
            Settings::ZoneOutage(_) => Kind::ZoneOutage,
            Settings::Scenario(_) => Kind::Scenario,
        }
    }

    /// Whether the fault takes pods down, so that its recovery is their workloads back as
    /// desired (a partition, a stress, a dependency failure take none down: their recovery is
    /// the steady-state probes passing again).
    pub fn takes_pods_down(&self) -> bool {
        match self {
            Settings::PodKill(_) | Settings::ContainerKill(_) | Settings::NodeDrain(_) => true,
            Settings::ZoneOutage(z) => z.mode == crate::zone::ZoneMode::Drain,
            _ => false,
        }
    }

    /// The settings `kind` runs with when a drill gives no `fault:`; `None`: the kind has no
    /// defaults for what it needs (the container to kill, the dependency to fail, the regions,
    /// the degradation), so the drill must say.
    pub fn default_for(kind: Kind) -> Option<Settings> {
        Some(match kind {
            Kind::Probe => Settings::Probe,
            Kind::PodKill => Settings::PodKill(PodKill::default()),
            Kind::NetworkPartition => Settings::NetworkPartition(NetworkPartition::default()),
            Kind::NodeDrain => Settings::NodeDrain(NodeDrain::default()),
            Kind::ResourceStress => Settings::ResourceStress(ResourceStress::default()),
            Kind::ContainerKill
            | Kind::DependencyFailure
            | Kind::RegionFailover
            | Kind::NetworkDegrade
            | Kind::ZoneOutage
            | Kind::Scenario => return None,
        })
    }
}

/// The steps one fire of these settings' kind takes on what the guard chose. `Err` says why the
/// fault cannot run as set on this cluster (a dry run still plans and records everything else).
pub fn plan(run: &str, settings: &Settings, scene: &Scene) -> Result<Plan, PlanError> {
    match settings {
        // A probe only observes.
        Settings::Probe => Ok(Plan::default()),
        Settings::PodKill(s) => Ok(crate::pod::pod_kill(s, scene.verdict())),
        Settings::ContainerKill(s) => Ok(crate::container::kill(run, s, scene)?),
        Settings::NetworkPartition(s) => Ok(crate::partition::partition(run, s, scene.verdict())),
        Settings::NodeDrain(s) => Ok(crate::node::drain(s, scene)),
        Settings::ResourceStress(s) => Ok(crate::node::stress(run, s, scene)),
        Settings::DependencyFailure(s) => {
            crate::dependency::plan(run, s, scene).map_err(|e| Box::new(e).into())
        }
        Settings::RegionFailover(s) => {
            crate::region::plan(run, s, scene, scene.dns).map_err(|e| Box::new(e).into())
        }
        Settings::NetworkDegrade(s) => Ok(crate::degrade::plan(run, s, scene)?),
        Settings::ZoneOutage(s) => Ok(crate::zone::plan(run, s, scene)),
        // Each step is planned by its own kind, at its own start (`drill::scenario`).
        Settings::Scenario(_) => Ok(Plan::default()),
    }
}

impl Settings {
    /// A drill's `fault:` (the drill's `fields`) for its kind, each kind reading its own, or the
    /// kind's defaults when it is left out (a kind that has none says what it needs).
    /// `job_spec` checks a region failover's hook Jobs (see [`JobSpecCheck`]).
    pub fn read(
        r: &mut Reader,
        fields: &Fields,
        kind: Kind,
        job_spec: JobSpecCheck,
    ) -> Option<Self> {
        match fields.get("fault") {
            Some(n) => Settings::read_fault(r, n, &fields.path_of("fault"), kind, job_spec),
            None => Settings::default_for(kind).or_else(|| {
                r.required(fields, "fault", needed(kind));
                None
            }),
        }
    }

    /// A kind's `fault:` settings; a kind without settings says so.
    fn read_fault(
        r: &mut Reader,
        node: &Node,
        path: &str,
        kind: Kind,
        job_spec: JobSpecCheck,
    ) -> Option<Self> {
        match kind {
            Kind::PodKill => PodKill::read(r, node, path).map(Settings::PodKill),
            Kind::NetworkPartition => {
                NetworkPartition::read(r, node, path).map(Settings::NetworkPartition)
            }
            Kind::ContainerKill => ContainerKill::read(r, node, path).map(Settings::ContainerKill),
            Kind::NodeDrain => NodeDrain::read(r, node, path).map(Settings::NodeDrain),
            Kind::ResourceStress => {
                ResourceStress::read(r, node, path).map(Settings::ResourceStress)
            }
            Kind::DependencyFailure => {
                DependencyFailure::read(r, node, path).map(Settings::DependencyFailure)
            }
            Kind::RegionFailover => RegionFailover::read(r, node, path, job_spec)
                .map(|rf| Settings::RegionFailover(Box::new(rf))),
            Kind::NetworkDegrade => {
                NetworkDegrade::read(r, node, path).map(Settings::NetworkDegrade)
            }
            Kind::ZoneOutage => ZoneOutage::read(r, node, path).map(Settings::ZoneOutage),
            Kind::Scenario => {
                r.error(
                    node.mark,
                    path,
                    "kind scenario takes no `fault:` of its own: each of its `steps:` has one",
                );
                None
            }
            Kind::Probe => {
                r.error(
                    node.mark,
                    path,
                    format!(
                        "kind {} takes no `fault:` settings (it only observes)",
                        Kind::Probe
                    ),
                );
                None
            }
        }
    }
}

/// What a kind that needs `fault:` needs in it, for the message when it is missing.
fn needed(kind: Kind) -> &'static str {
    match kind {
        Kind::ContainerKill => "`fault: { container: NAME }`, the container to kill (see the README's container-kill section)",
        Kind::RegionFailover => "`fault: { from: REGION, to: REGION, dns: {..}, isolate: [..], promote: {..}, failback: {..} }` (see the README's region-failover section)",
        Kind::NetworkDegrade => "`fault: { delay: 100ms, jitter: 20ms, loss: 5%, rate: 1mbit }` (any of them; see the README's network-degrade section)",
        Kind::ZoneOutage => "`fault: { mode: drain, pick: any }` (or `zone: NAME`, or mode partition; see the README's zone-outage section)",
        Kind::Scenario => "`steps:`, each with its own `kind:` and `fault:` (see the README's game-day section)",
        _ => "`fault: { dependency: { service: NAMESPACE/NAME }, mode: block }` (or scale-to-zero or http-fault; see the README's dependency-failure section)",
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
    fn every_kind_s_defaults_are_settings_of_that_kind() {
        for kind in Kind::ALL {
            match Settings::default_for(kind) {
                Some(settings) => assert_eq!(settings.kind(), kind),
                // What these need (a container, a dependency, regions, a degradation, how a
                // zone is taken out) has no default: the drill must give `fault:`.
                None => assert!(
                    matches!(
                        kind,
                        Kind::ContainerKill
                            | Kind::DependencyFailure
                            | Kind::RegionFailover
                            | Kind::NetworkDegrade
                            | Kind::ZoneOutage
                            // Its steps each have their own.
                            | Kind::Scenario
                    ),
                    "{kind} has defaults"
                ),
            }
        }
        assert!(plan("run-1", &Settings::Probe, &scene(None))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn pod_kill_evicts_each_chosen_pod_in_waves() {
        let settings = Settings::PodKill(PodKill {
            waves: 2,
            ..PodKill::default()
        });
        let three = chosen(verdict(3));
        let planned = plan("run-1", &settings, &scene(Some(&three))).unwrap();
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
        let forced = plan("run-1", &forced, &scene(Some(&two))).unwrap();
        assert_eq!(forced.waves.len(), 2, "never more waves than pods");
        assert!(matches!(
            &forced.waves[0][0].forward,
            Operation::Kill {
                evict: false,
                grace_seconds: Some(0),
                ..
            }
        ));
        assert!(plan(
            "run-1",
            &Settings::PodKill(PodKill::default()),
            &scene(None)
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn a_partition_marks_the_chosen_pods_and_isolates_them() {
        let settings = Settings::NetworkPartition(NetworkPartition {
            direction: Direction::Both,
            allow: vec![Peer::Namespace("monitoring".into())],
            allow_dns: true,
        });
        let planned = plan("run-1", &settings, &scene(Some(&chosen(verdict(2))))).unwrap();
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
