//! Node faults: drain (cordon, evict) and stress (stress-ng pods pinned to the node).

use std::collections::BTreeSet;
use std::time::Duration;

use firedrill_rollback::{ObjectKind, ObjectRef, Step};
use firedrill_safety::cluster::OwnerRef;
use serde_json::{json, Value};

use crate::plan::{Plan, Scene};
use crate::settings::{NodeDrain, Resource, ResourceStress};

/// Cordon each accepted node (unless it already was), then evict every pod the guard listed on
/// it. Undo: uncordon the nodes that were schedulable; the evicted pods' controllers recreate
/// them, and recovery waits for those workloads.
pub fn drain(settings: &NodeDrain, scene: &Scene) -> Plan {
    let grace = settings.grace_period.map(|g| g.as_secs() as i64);
    let mut steps = Vec::new();
    let mut affected: BTreeSet<OwnerRef> = BTreeSet::new();
    for node in scene
        .choice
        .and_then(|c| c.nodes.as_ref())
        .map(|n| n.nodes.as_slice())
        .unwrap_or_default()
    {
        if !node.was_unschedulable {
            steps.push(Step::cordon(&node.node, false));
        }
        for pod in &node.pods {
            let Some(owner) = &pod.owner else { continue };
            affected.insert(owner.clone());
            steps.push(Step::kill(
                ObjectRef::namespaced(ObjectKind::Pod, &pod.namespace, &pod.name),
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

/// The loads one stress runs through: the steady load for the whole fault, or a ramp in steps of
/// about a minute (2 to 10 steps), the last holding the top load to the end of the fault.
pub fn loads(settings: &ResourceStress, duration: Duration) -> Vec<Load> {
    let total = duration.as_secs().max(1);
    let Some(ramp) = settings.ramp else {
        return vec![Load {
            percent: settings.load,
            seconds: total,
        }];
    };
    let over = ramp.over.as_secs().clamp(1, total);
    let steps = over.div_ceil(60).clamp(2, 10);
    let step = (over / steps).max(1);
    (0..steps)
        .map(|i| {
            let percent = if steps == 1 {
                ramp.to
            } else {
                let (from, to) = (i64::from(ramp.from), i64::from(ramp.to));
                (from + (to - from) * i as i64 / (steps as i64 - 1)) as u32
            };
            let seconds = if i + 1 == steps {
                total - step * i
            } else {
                step
            };
            Load { percent, seconds }
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
        // One worker holding `percent` of the memory available, touching it continuously.
        Resource::Memory => vec![
            "--vm".into(),
            "1".into(),
            "--vm-bytes".into(),
            format!("{}%", load.percent),
            "--vm-keep".into(),
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
                "command": ["stress-ng"],
                "args": stress_args(settings, load),
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
            if let Some(s) = Step::create(stress_pod(
                run, &node.node, namespace, index, settings, *load,
            )) {
                wave.push(s);
            }
        }
        waves.push(wave);
    }
    Plan {
        interval: Duration::from_secs(loads.first().map_or(0, |l| l.seconds)),
        waves,
        wait_for_recovery: false,
        ..Plan::default()
    }
}
