//! `container-kill`: a short-lived helper pod on the target's node sends SIGKILL to the processes
//! of one container, found by the container's id in their cgroup. The kubelet restarts the
//! container as it would after a crash; the pod object, its IP and its other containers survive.
//!
//! Why this mechanism: signals to a container's PID 1 from inside its own PID namespace (an
//! ephemeral container, `exec`) are dropped unless the process handles them, so only a process in
//! the host's PID namespace can kill any container for sure; an ephemeral container also stays in
//! the pod's spec for good, which no revert can undo. The helper needs `hostPID` and `CAP_KILL`
//! as root (every other capability dropped, read-only root, no privilege escalation), so its
//! namespace must allow the `privileged` Pod Security level; it ends within a minute by itself.

use std::collections::BTreeSet;

use firedrill_reader::name::dns_label;
use firedrill_reader::read::Reader;
use firedrill_reader::yaml::Node;
use firedrill_rollback::{ObjectKind, ObjectRef, Step};
use firedrill_safety::cluster::{Cluster, OwnerRef};
use firedrill_safety::verdict::{Chosen, Verdict};
use serde_json::{json, Value};

pub use crate::plan::ACTS_ON;
use crate::plan::{Expect, Helper, HelperError, Plan, Scene};
use crate::values::read_image;

/// The default image of the container-kill helper (a shell, `grep` and `kill`).
pub const KILL_IMAGE: &str = "busybox:1.36";

/// `container-kill`: one named container of each chosen pod is killed (SIGKILL, as the kernel's
/// OOM killer or a crash would) and the kubelet restarts it; the pod object survives.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerKill {
    pub container: String,
    pub image: String,
}

/// What the helper runs (busybox `sh`): every process whose cgroup names the container gets
/// SIGKILL. `PROC` is the proc root (the host's, through hostPID).
pub const KILL_SCRIPT: &str = r#"set -u
id="${CONTAINER_ID##*://}"
proc="${PROC:-/proc}"
killed=""
for dir in "$proc"/[0-9]*; do
  pid="${dir##*/}"
  if grep -q -- "$id" "$dir/cgroup" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null && killed="$killed $pid"
  fi
done
if [ -z "$killed" ]; then
  echo "firedrill: no process of container $id on this node" >&2
  exit 1
fi
echo "firedrill: killed$killed (container $id)"
"#;

/// A container id as the pod's status gives it, checked: hex after the runtime's scheme.
pub(crate) fn container_id(text: &str) -> Option<&str> {
    let id = text.rsplit("://").next()?;
    (id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// Whether every chosen pod runs the container (the plan needs its id).
pub fn judge(
    settings: &ContainerKill,
    cluster: &Cluster,
    verdict: &Verdict,
) -> Result<(), HelperError> {
    for target in &verdict.targets {
        container_of(settings, cluster, &target.namespace, &target.name)?;
    }
    Ok(())
}

/// The id of the container `settings` names in pod `namespace/name`, or what is wrong.
fn container_of<'c>(
    settings: &ContainerKill,
    cluster: &'c Cluster,
    namespace: &str,
    name: &str,
) -> Result<&'c str, HelperError> {
    let containers = cluster
        .containers_of(namespace, name)
        .map(|c| c.containers.as_slice())
        .unwrap_or_default();
    let (namespace, pod, container) = (
        namespace.to_owned(),
        name.to_owned(),
        settings.container.clone(),
    );
    match containers.iter().find(|(n, _)| *n == settings.container) {
        None => Err(HelperError::NoContainer {
            namespace,
            pod,
            container,
            has: containers.iter().map(|(n, _)| n.clone()).collect(),
        }),
        Some((_, None)) => Err(HelperError::NotRunning {
            namespace,
            pod,
            container,
        }),
        Some((_, Some(id))) => container_id(id).ok_or_else(|| HelperError::UnknownId {
            namespace,
            pod,
            container,
            id: id.clone(),
        }),
    }
}

/// The node a chosen pod runs on, where a host helper must go.
pub(crate) fn node_of<'c>(cluster: &'c Cluster, target: &Chosen) -> Result<&'c str, HelperError> {
    cluster
        .pods
        .iter()
        .find(|p| p.namespace == target.namespace && p.name == target.name)
        .and_then(|p| p.node.as_deref())
        .ok_or_else(|| HelperError::NoNode {
            namespace: target.namespace.clone(),
            pod: target.name.clone(),
        })
}

pub fn kill(run: &str, settings: &ContainerKill, scene: &Scene) -> Result<Plan, HelperError> {
    let to = "find the container";
    let plan = host_helper_plan(scene, "container-kill", to, |i, cluster, target, node| {
        let id = container_of(settings, cluster, &target.namespace, &target.name)?;
        Ok(helper(
            run,
            i,
            &target.namespace,
            &target.name,
            node,
            id,
            settings,
        ))
    })?;
    let Some(plan) = plan else {
        return Ok(Plan::default());
    };
    let targets = scene.choice.iter().flat_map(|c| &c.verdict.targets);
    let affected: BTreeSet<OwnerRef> = targets.clone().filter_map(|t| t.owner.clone()).collect();
    // Each killed container must be seen restarted by its kubelet.
    let effect = targets
        .map(|t| Expect::ContainerRestarted {
            pod: ObjectRef::namespaced(ObjectKind::Pod, &t.namespace, &t.name),
            container: settings.container.clone(),
        })
        .collect();
    Ok(Plan {
        wait_for_recovery: true,
        affected: affected.into_iter().collect(),
        effect: Some(effect),
        ..plan
    })
}

/// One host helper per chosen pod, on that pod's node and acting on it, its failure failing the
/// run: the plan of one wave that creates them, or `None` when nothing was chosen. `build` makes
/// the helper for target `i` on its node; `what` and `to` say, when the cluster was not read,
/// which kind needed it and for what.
pub(crate) fn host_helper_plan(
    scene: &Scene,
    what: &'static str,
    to: &'static str,
    mut build: impl FnMut(usize, &Cluster, &Chosen, &str) -> Result<Value, HelperError>,
) -> Result<Option<Plan>, HelperError> {
    let Some(choice) = scene.choice else {
        return Ok(None);
    };
    let cluster = scene.cluster.ok_or(HelperError::NoCluster { what, to })?;
    let mut steps = Vec::new();
    let mut helpers = Vec::new();
    for (i, target) in choice.verdict.targets.iter().enumerate() {
        let node = node_of(cluster, target)?;
        let pod = build(i, cluster, target, node)?;
        let acts_on = ObjectRef::namespaced(ObjectKind::Pod, &target.namespace, &target.name);
        helpers.extend(Helper::of(&pod, acts_on, true));
        steps.extend(Step::create(pod));
    }
    Ok(Some(Plan {
        helpers,
        ..Plan::one(steps)
    }))
}

fn helper(
    run: &str,
    index: usize,
    namespace: &str,
    pod: &str,
    node: &str,
    id: &str,
    settings: &ContainerKill,
) -> Value {
    host_helper(&HostHelper {
        name: format!("firedrill-kill-{run}-{index}"),
        namespace,
        pod,
        node,
        container: "kill",
        image: &settings.image,
        script: KILL_SCRIPT,
        env: vec![
            json!({ "name": "CONTAINER_ID", "value": id }),
            json!({ "name": "TARGET", "value": format!("{namespace}/{pod}/{}", settings.container) }),
        ],
        capabilities: &["KILL"],
        deadline_seconds: 60,
        grace_seconds: 0,
        memory_limit: "32Mi",
    })
}

/// A short-lived helper pod on a target's node that acts on the target pod from the host's PID
/// namespace (container-kill, network-degrade): root with only `capabilities`, every other one
/// dropped, no privilege escalation, read-only root filesystem, seccomp `RuntimeDefault`, no
/// service account token, gone by `deadline_seconds`.
pub(crate) struct HostHelper<'a> {
    pub name: String,
    pub namespace: &'a str,
    /// The pod it acts on (Events go there too).
    pub pod: &'a str,
    pub node: &'a str,
    pub container: &'a str,
    pub image: &'a str,
    pub script: &'a str,
    pub env: Vec<Value>,
    pub capabilities: &'a [&'a str],
    pub deadline_seconds: u64,
    /// How long it has to clean up when stopped.
    pub grace_seconds: u64,
    pub memory_limit: &'a str,
}

pub(crate) fn host_helper(h: &HostHelper) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": h.name.chars().take(253).collect::<String>(),
            "namespace": h.namespace,
            "annotations": { ACTS_ON: format!("Pod/{}/{}", h.namespace, h.pod) },
        },
        "spec": {
            "nodeName": h.node,
            // The host's processes: where a container's processes (and its pod's network
            // namespace) are found from.
            "hostPID": true,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": h.deadline_seconds,
            "terminationGracePeriodSeconds": h.grace_seconds,
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "tolerations": [{ "operator": "Exists" }],
            "securityContext": { "runAsUser": 0, "seccompProfile": { "type": "RuntimeDefault" } },
            "containers": [{
                "name": h.container,
                "image": h.image,
                "command": ["sh", "-c", h.script],
                "env": h.env,
                "resources": { "requests": { "cpu": "10m", "memory": "8Mi" }, "limits": { "cpu": "100m", "memory": h.memory_limit } },
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": { "drop": ["ALL"], "add": h.capabilities },
                },
            }],
        },
    })
}

impl ContainerKill {
    /// `fault:` of a container-kill, every problem reported at its line.
    pub fn read(r: &mut Reader, node: &Node, path: &str) -> Option<Self> {
        let f = r.fields(node, path, &["container", "image"])?;
        let container = r
            .required(
                &f,
                "container",
                "the name of the container to kill, as in the pod's spec",
            )
            .and_then(|n| {
                r.parsed(n, &f.path_of("container"), "a container name", |s| {
                    dns_label(s, 63).map(|()| s.to_owned())
                })
            });
        let image = read_image(
            r,
            &f,
            "a container image with sh, grep and kill",
            KILL_IMAGE,
        );
        Some(ContainerKill {
            container: container?,
            image: image?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_runtime_ids_reach_the_helper() {
        assert_eq!(
            container_id("containerd://0123456789abcdef"),
            Some("0123456789abcdef")
        );
        assert_eq!(container_id("cri-o://0123456789ab"), Some("0123456789ab"));
        assert_eq!(container_id("containerd://abc; rm -rf /"), None);
        assert_eq!(container_id("containerd://abc"), None);
    }
}
