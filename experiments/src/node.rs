//! Node faults: drain (cordon, evict) and stress (stress-ng pods pinned to the node).

use std::collections::BTreeSet;
use std::time::Duration;

use firedrill_reader::duration;
use firedrill_reader::read::{Fields, Reader};
use firedrill_reader::yaml::Node;
use firedrill_rollback::{ObjectKind, ObjectRef, Step};
use firedrill_safety::cluster::OwnerRef;
use serde_json::{json, Value};

use crate::plan::{Expect, Helper, Plan, Scene, StressLoad, ACTS_ON};
use crate::values::{load_percent, read_image, within};

/// `node-drain`: cordon the nodes that hold the chosen pods and evict every pod on them but
/// DaemonSet and mirror pods; uncordon on revert unless a node was cordoned before.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeDrain {
    /// At most this many nodes per fire (the first the chosen pods lead to).
    pub max_nodes: u32,
    /// The grace period evicted pods get; `None`: their own.
    pub grace_period: Option<Duration>,
}

impl Default for NodeDrain {
    fn default() -> Self {
        NodeDrain {
            max_nodes: 1,
            grace_period: None,
        }
    }
}

/// What a stress pod loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Cpu,
    Memory,
    Io,
}

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Io => "io",
        }
    }
}

/// A load that climbs from `from` to `to` percent over `over`, in steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ramp {
    pub from: u32,
    pub to: u32,
    pub over: Duration,
}

/// The default stress-ng image; `image:` replaces it (pin it by digest in production).
pub const STRESS_IMAGE: &str = "ghcr.io/colinianking/stress-ng:latest";

/// `resource-stress`: one stress-ng pod on each node that holds a chosen pod.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceStress {
    pub resource: Resource,
    /// Percent: of each CPU (cpu), or of the node's free memory as stress-ng counts it (memory).
    pub load: u32,
    pub ramp: Option<Ramp>,
    /// stress-ng workers for io (cpu uses one per CPU, memory one).
    pub workers: u32,
    pub image: String,
    /// At most this many nodes per fire.
    pub max_nodes: u32,
}

impl Default for ResourceStress {
    fn default() -> Self {
        ResourceStress {
            resource: Resource::Cpu,
            load: 80,
            ramp: None,
            workers: 1,
            image: STRESS_IMAGE.to_owned(),
            max_nodes: 1,
        }
    }
}

/// Cordon each accepted node (unless it already was), then evict every pod the guard listed on
/// it. Undo: uncordon the nodes that were schedulable; the evicted pods' controllers recreate
/// them, and recovery waits for those workloads.
pub fn drain(settings: &NodeDrain, scene: &Scene) -> Plan {
    drain_nodes(settings.grace_period, scene)
}

/// The nodes the guard took, cordoned and evicted (a node drain's, or a zone outage's), each
/// evicted pod given `grace_period` (`None`: its own).
pub fn drain_nodes(grace_period: Option<Duration>, scene: &Scene) -> Plan {
    let grace = grace_period.map(|g| g.as_secs() as i64);
    let mut steps = Vec::new();
    let mut affected: BTreeSet<OwnerRef> = BTreeSet::new();
    // Each node unschedulable, and every pod evicted from it gone (DaemonSets' pods, which the
    // guard leaves on the node, are not among them).
    let mut effect = Vec::new();
    for node in scene
        .choice
        .and_then(|c| c.nodes.as_ref())
        .map(|n| n.nodes.as_slice())
        .unwrap_or_default()
    {
        if !node.was_unschedulable {
            steps.push(Step::cordon(&node.node, false));
        }
        effect.push(Expect::NodeUnschedulable {
            node: node.node.clone(),
        });
        for pod in &node.pods {
            let Some(owner) = &pod.owner else { continue };
            affected.insert(owner.clone());
            let target = ObjectRef::namespaced(ObjectKind::Pod, &pod.namespace, &pod.name);
            effect.push(Expect::PodGone {
                pod: target.clone(),
                grace: grace_period,
            });
            steps.push(Step::kill(
                target,
                &format!("{}/{}", owner.kind, owner.name),
                true,
                grace,
            ));
        }
    }
    Plan {
        waves: vec![steps],
        wait_for_recovery: true,
        affected: affected.into_iter().collect(),
        effect: Some(effect),
        ..Plan::default()
    }
}

/// The label stress pods carry, for `kubectl get pods -l`.
pub const STRESS_LABEL: &str = "firedrill.io/stress";

/// One step of a load: its percentage and how long the pod runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    pub percent: u32,
    pub seconds: u64,
}

/// The loads one stress runs through: the steady load for the whole fault, or a ramp that climbs
/// from `from` in equal steps of about a minute (1 to 10 of them, over `over`) and reaches `to`
/// when `over` has passed, then holds it to the end of the fault.
pub fn loads(settings: &ResourceStress, duration: Duration) -> Vec<Load> {
    let total = duration.as_secs().max(1);
    let Some(ramp) = settings.ramp else {
        return vec![Load {
            percent: settings.load,
            seconds: total,
        }];
    };
    let over = ramp.over.as_secs().clamp(1, total.saturating_sub(1).max(1));
    let climbs = over.div_ceil(60).clamp(1, 10);
    let step = (over / climbs).max(1);
    let (from, to) = (i64::from(ramp.from), i64::from(ramp.to));
    (0..=climbs)
        .map(|i| Load {
            percent: (from + (to - from) * i as i64 / climbs as i64) as u32,
            seconds: if i == climbs {
                total - step * climbs
            } else {
                step
            },
        })
        .collect()
}

/// The stress-ng arguments of one load. Each ends by itself after `seconds` (`--timeout`).
pub fn stress_args(settings: &ResourceStress, load: Load) -> Vec<String> {
    let mut args: Vec<String> = match settings.resource {
        // One worker per online CPU, each busy `percent` of the time.
        Resource::Cpu => vec![
            "--cpu".into(),
            "0".into(),
            "--cpu-load".into(),
            load.percent.to_string(),
        ],
        // One worker holding `percent` of the memory available (faulted in at once, kept, and
        // touched continuously).
        Resource::Memory => vec![
            "--vm".into(),
            "1".into(),
            "--vm-bytes".into(),
            format!("{}%", load.percent),
            "--vm-keep".into(),
            "--vm-populate".into(),
        ],
        // Workers writing and reading files in the pod's scratch volume.
        Resource::Io => vec![
            "--hdd".into(),
            settings.workers.to_string(),
            "--hdd-bytes".into(),
            "256m".into(),
            "--temp-path".into(),
            "/scratch".into(),
        ],
    };
    args.extend([
        "--timeout".into(),
        format!("{}s", load.seconds),
        "--metrics-brief".into(),
    ]);
    args
}

/// What a stress pod runs (POSIX sh): stress-ng, given the pod's arguments, and the load it
/// holds measured while it runs, reported on the pod's log (`firedrill: effect ...`).
pub const STRESS_SCRIPT: &str = include_str!("stress.sh");

/// One stress-ng pod on `node`, in `namespace`, running `load`.
pub fn stress_pod(
    run: &str,
    node: &str,
    namespace: &str,
    index: usize,
    settings: &ResourceStress,
    load: Load,
) -> Value {
    let name = format!("firedrill-stress-{run}-{index}");
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name.chars().take(253).collect::<String>(),
            "namespace": namespace,
            "labels": { STRESS_LABEL: settings.resource.name(), "app.kubernetes.io/name": "firedrill-stress" },
            "annotations": { ACTS_ON: format!("Node/{node}") },
        },
        "spec": {
            // Pinned: the scheduler is not asked, the pod runs where the chosen pods run.
            "nodeName": node,
            "restartPolicy": "Never",
            // Ends by itself even if firedrill is gone: stress-ng's own --timeout, and this.
            "activeDeadlineSeconds": load.seconds + 30,
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            // The targets run on this node, so its taints are tolerated by the workload; the
            // stress pod must run there too.
            "tolerations": [{ "operator": "Exists" }],
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": 65534,
                "runAsGroup": 65534,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "containers": [{
                "name": "stress",
                "image": settings.image,
                // stress-ng with these arguments, and what it holds measured from /proc
                // while it runs, on the log (stress.sh).
                "command": ["sh", "-c", STRESS_SCRIPT, "firedrill-stress"],
                "args": stress_args(settings, load),
                // What stress.sh measures of the load: the resource stressed.
                "env": [{ "name": "MEASURE", "value": settings.resource.name() }],
                // A small request so the pod is admitted on a busy node; no CPU limit, so the
                // load is the node's, not a throttled container's. Memory is bounded by the load.
                "resources": { "requests": { "cpu": "10m", "memory": "16Mi" } },
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": { "drop": ["ALL"] },
                },
                "volumeMounts": [{ "name": "scratch", "mountPath": "/scratch" }],
            }],
            "volumes": [{ "name": "scratch", "emptyDir": { "sizeLimit": "1Gi" } }],
        },
    })
}

/// One stress pod per accepted node and load step, in the namespace of the node's first chosen
/// pod. Steps of a ramp are waves that do not wait for recovery. Undo: delete the pods.
pub fn stress(run: &str, settings: &ResourceStress, scene: &Scene) -> Plan {
    let loads = loads(settings, scene.duration);
    let nodes = scene
        .choice
        .and_then(|c| c.nodes.as_ref())
        .map(|n| n.nodes.as_slice())
        .unwrap_or_default();
    let targets: Vec<(&str, &str)> = scene
        .choice
        .map(|c| {
            c.verdict
                .targets
                .iter()
                .map(|t| (t.namespace.as_str(), t.name.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let mut waves = Vec::new();
    let mut helpers = Vec::new();
    let mut effect = Vec::new();
    for (step, load) in loads.iter().enumerate() {
        let mut wave = Vec::new();
        for (n, node) in nodes.iter().enumerate() {
            let namespace = node
                .pods
                .iter()
                .find(|p| targets.contains(&(p.namespace.as_str(), p.name.as_str())))
                .or(node.pods.first())
                .map(|p| p.namespace.as_str());
            let Some(namespace) = namespace else { continue };
            let index = n * loads.len() + step;
            // The step before ends first: two stress pods at once would add their loads.
            if step > 0 {
                let previous = stress_pod(
                    run,
                    &node.node,
                    namespace,
                    index - 1,
                    settings,
                    loads[step - 1],
                );
                if let Some(target) = firedrill_rollback::ObjectRef::of(&previous) {
                    wave.push(Step {
                        forward: firedrill_rollback::Operation::Delete {
                            target: target.clone(),
                        },
                        undo: firedrill_rollback::UndoRecord::DeleteCreated { target },
                    });
                }
            }
            let pod = stress_pod(run, &node.node, namespace, index, settings, *load);
            // The steady step (a ramp's last, at its top) is the load the fault holds: its
            // report is the one judged; the climb's steps pass.
            let held = match settings.resource {
                Resource::Cpu => StressLoad::Cpu(load.percent),
                Resource::Memory => StressLoad::Memory(load.percent),
                Resource::Io => StressLoad::Io {
                    workers: settings.workers,
                },
            };
            if let (true, Some(helper)) = (
                step + 1 == loads.len(),
                firedrill_rollback::ObjectRef::of(&pod),
            ) {
                effect.push(Expect::Stressed {
                    helper,
                    node: node.node.clone(),
                    load: held,
                });
            }
            helpers.extend(Helper::of(
                &pod,
                firedrill_rollback::ObjectRef::node(&node.node),
                false,
            ));
            if let Some(s) = Step::create(pod) {
                wave.push(s);
            }
        }
        waves.push(wave);
    }
    Plan {
        interval: Duration::from_secs(loads.first().map_or(0, |l| l.seconds)),
        waves,
        wait_for_recovery: false,
        helpers,
        effect: Some(effect),
        ..Plan::default()
    }
}

impl NodeDrain {
    /// `fault:` of a node-drain, every problem reported at its line.
    pub fn read(r: &mut Reader, node: &Node, path: &str) -> Option<Self> {
        let f = r.fields(node, path, &["max_nodes", "grace_period"])?;
        let d = NodeDrain::default();
        let max_nodes = f
            .get("max_nodes")
            .map_or(Some(u64::from(d.max_nodes)), |n| {
                r.integer(n, &f.path_of("max_nodes"), 1, 100)
            });
        let grace_period = match f.get("grace_period") {
            Some(n) => {
                within(r, n, &f.path_of("grace_period"), Duration::from_secs(3600)).map(Some)
            }
            None => Some(None),
        };
        Some(NodeDrain {
            max_nodes: max_nodes? as u32,
            grace_period: grace_period?,
        })
    }
}

/// `60%->95% over 5m` (or with `→`).
// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader.
fn parse_ramp(text: &str) -> Result<Ramp, String> {
    let bad = || {
        format!("{text:?} is not a ramp (write e.g. \"60%->95% over 5m\": from, to, and how long the climb takes)")
    };
    let (loads, over) = text.split_once(" over ").ok_or_else(bad)?;
    let (from, to) = loads
        .split_once("->")
        .or_else(|| loads.split_once('→'))
        .ok_or_else(bad)?;
    let from = load_percent(from.trim())?;
    let to = load_percent(to.trim())?;
    if from >= to {
        return Err(format!(
            "{text:?} does not climb: a ramp goes up, from a lower load to a higher one (for a steady load write `load: {to}%`)"
        ));
    }
    let over = duration::parse_within(
        over.trim(),
        Duration::from_secs(1),
        Duration::from_secs(86_400),
    )
    .map_err(|e| e.to_string())?;
    Ok(Ramp { from, to, over })
}

impl ResourceStress {
    /// The highest load a fire reaches: a ramp's top, else `load`.
    pub fn peak_load(&self) -> u32 {
        self.ramp.map_or(self.load, |r| r.from.max(r.to))
    }

    /// `fault:` of a resource-stress, every problem reported at its line.
    pub fn read(r: &mut Reader, node: &Node, path: &str) -> Option<Self> {
        let f = r.fields(
            node,
            path,
            &["resource", "load", "ramp", "workers", "image", "max_nodes"],
        )?;
        let d = ResourceStress::default();
        let resource = match f.get("resource") {
            Some(n) => r.parsed(n, &f.path_of("resource"), "a resource", |s| match s {
                "cpu" => Ok(Resource::Cpu),
                "memory" => Ok(Resource::Memory),
                "io" => Ok(Resource::Io),
                _ => Err(format!(
                    "{s:?} is not a resource (allowed: cpu, memory, io)"
                )),
            }),
            None => {
                r.required(&f, "resource", "cpu, memory or io");
                None
            }
        };
        let load = match f.get("load") {
            Some(n) => r.parsed(n, &f.path_of("load"), "a percentage", load_percent),
            None => Some(d.load),
        };
        let ramp = match f.get("ramp") {
            Some(n) => r
                .parsed(n, &f.path_of("ramp"), "a ramp", parse_ramp)
                .map(Some),
            None => Some(None),
        };
        let workers = f.get("workers").map_or(Some(u64::from(d.workers)), |n| {
            r.integer(n, &f.path_of("workers"), 1, 64)
        });
        let image = read_image(r, &f, "a container image", &d.image);
        let max_nodes = f
            .get("max_nodes")
            .map_or(Some(u64::from(d.max_nodes)), |n| {
                r.integer(n, &f.path_of("max_nodes"), 1, 100)
            });
        check_stress_keys(r, &f, resource);
        let ramp = ramp?;
        Some(ResourceStress {
            resource: resource?,
            load: ramp.map_or(load?, |r| r.to),
            ramp,
            workers: workers? as u32,
            image: image?,
            max_nodes: max_nodes? as u32,
        })
    }
}

/// The keys that do not go with the resource stressed, or with each other.
fn check_stress_keys(r: &mut Reader, f: &Fields, resource: Option<Resource>) {
    if let Some(Resource::Io) = resource {
        for key in ["load", "ramp"] {
            if let Some(n) = f.get(key) {
                r.error(
                    n.mark,
                    f.path_of(key),
                    "io stress has no load percentage; its load is `workers` (1 to 64)",
                );
            }
        }
    } else if let (Some(_), Some(n)) = (resource, f.get("workers")) {
        r.error(
            n.mark,
            f.path_of("workers"),
            "`workers` is for io stress; cpu and memory take `load` (and `ramp`)",
        );
    }
    if let (Some(n), Some(_)) = (f.get("ramp"), f.get("load")) {
        r.error(
            n.mark,
            f.path_of("ramp"),
            "give either `load` or `ramp`: a ramp ends at its own top load",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Ramp;
    use crate::plan::Choice;
    use firedrill_rollback::{Operation, UndoRecord};
    use firedrill_safety::cluster::OwnerKind;
    use firedrill_safety::nodes::{NodeChoice, NodeVerdict};
    use firedrill_safety::verdict::{Chosen, Verdict};

    fn pod(namespace: &str, name: &str, owner: &str) -> Chosen {
        Chosen {
            namespace: namespace.into(),
            name: name.into(),
            owner: Some(OwnerRef {
                kind: OwnerKind::Deployment,
                namespace: namespace.into(),
                name: owner.into(),
            }),
        }
    }

    fn choice() -> Choice {
        Choice {
            verdict: Verdict {
                targets: vec![pod("shop", "api-1", "api")],
                ..Verdict::default()
            },
            nodes: Some(NodeVerdict {
                nodes: vec![
                    NodeChoice {
                        node: "n1".into(),
                        was_unschedulable: false,
                        pods: vec![
                            pod("cache", "redis-1", "redis"),
                            pod("shop", "api-1", "api"),
                        ],
                    },
                    NodeChoice {
                        node: "n2".into(),
                        was_unschedulable: true,
                        pods: vec![pod("shop", "api-2", "api")],
                    },
                ],
                refused: vec![],
                tried: vec!["n1".into(), "n2".into()],
                zone: None,
            }),
        }
    }

    fn scene(choice: &Choice, seconds: u64) -> Scene<'_> {
        Scene {
            choice: Some(choice),
            cluster: None,
            image: "firedrill:test",
            duration: Duration::from_secs(seconds),
            expires: "2026-01-01T01:00:00Z",
            dns: None,
        }
    }

    #[test]
    fn a_drain_cordons_only_schedulable_nodes_and_evicts_every_judged_pod() {
        let c = choice();
        let plan = drain(&NodeDrain::default(), &scene(&c, 60));
        let steps: Vec<String> = plan.steps().map(|s| s.forward.describe()).collect();
        assert_eq!(
            steps,
            [
                "patch Node n1: {\"spec\":{\"unschedulable\":true}}",
                "evict Pod cache/redis-1",
                "evict Pod shop/api-1",
                "evict Pod shop/api-2",
            ]
        );
        assert!(matches!(
            plan.waves[0][0].undo,
            UndoRecord::Uncordon {
                was_unschedulable: false,
                ..
            }
        ));
        assert!(plan.wait_for_recovery);
        let affected: Vec<String> = plan.affected.iter().map(ToString::to_string).collect();
        assert_eq!(affected, ["Deployment/cache/redis", "Deployment/shop/api"]);
    }

    /// The runner learns the helpers from the plan, never by their names: every pod a stress
    /// creates is a planned helper acting on the node it is pinned to (as its annotation says),
    /// not watched for failure.
    #[test]
    fn a_stress_names_every_pod_it_creates_as_a_helper_of_its_node() {
        let c = choice();
        let plan = stress("run-1", &ResourceStress::default(), &scene(&c, 600));
        let created: Vec<&serde_json::Value> = plan
            .steps()
            .filter_map(|s| match &s.forward {
                Operation::Create { object } => Some(object),
                _ => None,
            })
            .collect();
        assert_eq!(created.len(), 2);
        assert_eq!(plan.helpers.len(), created.len());
        for (object, helper) in created.iter().zip(&plan.helpers) {
            assert_eq!(
                Some(&helper.pod),
                firedrill_rollback::ObjectRef::of(object).as_ref()
            );
            let node = object["spec"]["nodeName"].as_str().unwrap();
            assert_eq!(helper.acts_on, firedrill_rollback::ObjectRef::node(node));
            assert_eq!(
                object["metadata"]["annotations"][ACTS_ON],
                helper.acts_on.to_string().replace(' ', "/")
            );
            assert!(!helper.fails_run);
        }
    }

    #[test]
    fn a_stress_pins_one_self_ending_pod_per_node_and_ramps_in_steps() {
        let c = choice();
        let steady = ResourceStress::default();
        let plan = stress("run-1", &steady, &scene(&c, 600));
        assert_eq!(plan.waves.len(), 1);
        assert_eq!(plan.waves[0].len(), 2, "one pod per node");
        let Operation::Create { object } = &plan.waves[0][0].forward else {
            panic!("a create")
        };
        assert_eq!(object["spec"]["nodeName"], "n1");
        // In the namespace of the chosen pod on the node, not the neighbour's.
        assert_eq!(object["metadata"]["namespace"], "shop");
        assert_eq!(object["spec"]["activeDeadlineSeconds"], 630);
        let args = object["spec"]["containers"][0]["args"].as_array().unwrap();
        assert!(args.iter().any(|a| a == "--timeout") && args.iter().any(|a| a == "600s"));

        let ramp = ResourceStress {
            ramp: Some(Ramp {
                from: 60,
                to: 90,
                over: Duration::from_secs(240),
            }),
            load: 90,
            ..ResourceStress::default()
        };
        let steps = loads(&ramp, Duration::from_secs(600));
        assert_eq!(
            steps.iter().map(|l| l.percent).collect::<Vec<_>>(),
            [60, 67, 75, 82, 90]
        );
        assert_eq!(
            steps.iter().map(|l| l.seconds).collect::<Vec<_>>(),
            [60, 60, 60, 60, 360],
            "the top load is reached when `over` has passed and holds to the end of the fault"
        );
        let plan = stress("run-1", &ramp, &scene(&c, 600));
        assert_eq!(plan.waves.len(), 5);
        assert_eq!(plan.interval, Duration::from_secs(60));
        // Each step ends the one before it on the same node, then starts.
        let second: Vec<String> = plan.waves[1].iter().map(|s| s.forward.describe()).collect();
        assert_eq!(
            second,
            [
                "delete Pod shop/firedrill-stress-run-1-0",
                "create Pod shop/firedrill-stress-run-1-1",
                "delete Pod shop/firedrill-stress-run-1-5",
                "create Pod shop/firedrill-stress-run-1-6",
            ]
        );
        assert!(!plan.wait_for_recovery, "a ramp does not wait for recovery");
    }
}
