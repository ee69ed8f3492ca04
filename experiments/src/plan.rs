//! What each fault kind would change, as steps: pure, from the guard's verdict. The runner applies
//! them through the ledger; `rollback/` undoes them.

use std::time::Duration;

use firedrill_rollback::{ObjectKind, ObjectRef, Step};
use firedrill_safety::cluster::{Cluster, OwnerRef};
use firedrill_safety::verdict::Verdict;

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::choose::Choice;
use crate::settings::{Direction, NetworkPartition, Peer, PodKill, Settings};
use crate::Kind;

/// A fire's steps, in waves: the runner applies a wave, waits `interval` (after the workloads in
/// `affected` recovered, when `wait_for_recovery`), then applies the next.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub waves: Vec<Vec<Step>>,
    pub interval: Duration,
    /// The next wave waits until every affected workload is ready and the probes pass.
    pub wait_for_recovery: bool,
    /// Leading waves that only prepare (a proxy, a copy of a Service): the fault, and the
    /// recovery time, start with the first wave after them.
    pub preparatory: usize,
    /// The workloads whose pods the fault takes down: recovery waits for them.
    pub affected: Vec<OwnerRef>,
    /// Workloads the fault hits besides the targets' (a dependency scaled to zero), for cooldown.
    pub hits: Vec<OwnerRef>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.waves.iter().all(Vec::is_empty)
    }

    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.waves.iter().flatten()
    }

    pub(crate) fn one(steps: Vec<Step>) -> Plan {
        Plan {
            waves: vec![steps],
            ..Plan::default()
        }
    }
}

/// What a kind plans from: the guard's choice and the facts of the cluster its steps need.
#[derive(Clone, Copy, Debug)]
pub struct Scene<'a> {
    pub choice: Option<&'a Choice>,
    pub cluster: Option<&'a Cluster>,
    /// The image firedrill runs; the fault proxy runs it too.
    pub image: &'a str,
    /// How long the fault lasts (helpers end by themselves after it).
    pub duration: Duration,
    /// When the run's artifacts expire (RFC 3339): helpers stop hurting then, whatever happens.
    pub expires: &'a str,
    /// What Route 53 holds now (region failover), when it was read.
    pub dns: Option<&'a crate::region::DnsFacts>,
}

impl Scene<'_> {
    fn verdict(&self) -> Option<&Verdict> {
        self.choice.map(|c| &c.verdict)
    }
}

/// The steps one fire of `kind` takes on what the guard chose. `Err` says why the kind cannot
/// run (a dry run still plans and records everything else).
pub fn plan(kind: Kind, run: &str, settings: &Settings, scene: &Scene) -> Result<Plan, String> {
    match (kind, settings) {
        (Kind::NetworkPartition, Settings::NetworkPartition(s)) => {
            Ok(partition(run, s, scene.verdict()))
        }
        (Kind::NetworkPartition, _) => Ok(partition(
            run,
            &NetworkPartition::default(),
            scene.verdict(),
        )),
        // A probe only observes.
        (Kind::Probe, _) => Ok(Plan::default()),
        (Kind::PodKill, Settings::PodKill(s)) => Ok(pod_kill(s, scene.verdict())),
        (Kind::PodKill, _) => Ok(pod_kill(&PodKill::default(), scene.verdict())),
        (Kind::ContainerKill, Settings::ContainerKill(s)) => crate::container::kill(run, s, scene),
        (Kind::NodeDrain, Settings::NodeDrain(s)) => Ok(crate::node::drain(s, scene)),
        (Kind::NodeDrain, _) => Ok(crate::node::drain(&Default::default(), scene)),
        (Kind::ResourceStress, Settings::ResourceStress(s)) => {
            Ok(crate::node::stress(run, s, scene))
        }
        (Kind::ResourceStress, _) => Ok(crate::node::stress(run, &Default::default(), scene)),
        (Kind::DependencyFailure, Settings::DependencyFailure(s)) => {
            crate::dependency::plan(run, s, scene)
        }
        (Kind::RegionFailover, Settings::RegionFailover(s)) => {
            crate::region::plan(run, s, scene, scene.dns)
        }
        (Kind::NetworkDegrade, Settings::NetworkDegrade(s)) => crate::degrade::plan(run, s, scene),
        (other, _) => Err(format!(
            "the {other} fault is not available in this version of firedrill: it injects nothing"
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
    let affected: std::collections::BTreeSet<OwnerRef> = verdict
        .map(|v| v.targets.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.owner.clone())
        .collect();
    Plan {
        waves: steps.chunks(per_wave).map(<[Step]>::to_vec).collect(),
        interval: settings.interval,
        wait_for_recovery: true,
        affected: affected.into_iter().collect(),
        ..Plan::default()
    }
}

/// The label that marks the pods a partition isolates: NetworkPolicies select by label, and the
/// guard chose pods by name.
pub const PARTITION_LABEL: &str = firedrill_rollback::scope::PARTITION_LABEL;

/// Marks each chosen pod, then one NetworkPolicy per namespace isolates the marked pods. Undo:
/// delete the policies, unmark the pods.
fn partition(run: &str, settings: &NetworkPartition, verdict: Option<&Verdict>) -> Plan {
    Plan::one(isolate(run, verdict, |namespace| {
        network_policy(run, namespace, settings)
    }))
}

/// Marks each chosen pod with [`PARTITION_LABEL`], then creates `policy(namespace)` in each
/// namespace that holds one.
pub(crate) fn isolate(
    run: &str,
    verdict: Option<&Verdict>,
    policy: impl Fn(&str) -> Value,
) -> Vec<Step> {
    let targets = verdict.map(|v| v.targets.as_slice()).unwrap_or_default();
    let path = format!("/metadata/labels/{}", PARTITION_LABEL.replace('/', "~1"));
    let mut steps: Vec<Step> = targets
        .iter()
        .map(|t| {
            Step::set_field(
                ObjectRef::namespaced(ObjectKind::Pod, &t.namespace, &t.name),
                &path,
                None,
                Some(Value::String(run.to_owned())),
            )
        })
        .collect();
    let namespaces: std::collections::BTreeSet<&str> =
        targets.iter().map(|t| t.namespace.as_str()).collect();
    for namespace in namespaces {
        if let Some(step) = Step::create(policy(namespace)) {
            steps.push(step);
        }
    }
    steps
}

/// The NetworkPolicy isolating the marked pods of one namespace.
pub fn network_policy(run: &str, namespace: &str, settings: &NetworkPartition) -> Value {
    let peers: Vec<Value> = settings
        .allow
        .iter()
        .map(|peer| match peer {
            Peer::Pods(labels) => json!({ "podSelector": { "matchLabels": labels } }),
            Peer::Namespace(name) => json!({ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": name } } }),
            Peer::Cidr(cidr) => json!({ "ipBlock": { "cidr": cidr } }),
        })
        .collect();
    let (ingress, egress) = match settings.direction {
        Direction::Ingress => (true, false),
        Direction::Egress => (false, true),
        Direction::Both => (true, true),
    };
    let mut types = Vec::new();
    let mut spec = serde_json::Map::new();
    spec.insert(
        "podSelector".into(),
        json!({ "matchLabels": BTreeMap::from([(PARTITION_LABEL, run)]) }),
    );
    if ingress {
        types.push("Ingress");
        let rules: Vec<Value> = if peers.is_empty() {
            Vec::new()
        } else {
            vec![json!({ "from": peers })]
        };
        spec.insert("ingress".into(), json!(rules));
    }
    if egress {
        types.push("Egress");
        let mut rules: Vec<Value> = if peers.is_empty() {
            Vec::new()
        } else {
            vec![json!({ "to": peers })]
        };
        if settings.allow_dns {
            rules.push(json!({ "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }] }));
        }
        spec.insert("egress".into(), json!(rules));
    }
    spec.insert("policyTypes".into(), json!(types));
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": format!("firedrill-partition-{run}").chars().take(253).collect::<String>(), "namespace": namespace },
        "spec": spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_rollback::Operation;
    use firedrill_safety::cluster::{OwnerKind, OwnerRef};
    use firedrill_safety::verdict::Chosen;

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
