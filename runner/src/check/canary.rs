//! `check --network`: whether the cluster's network plugin enforces NetworkPolicy, found by
//! trying. A listener pod and a client pod start in firedrill's own namespace; once the client
//! has connected, a NetworkPolicy denies the client's egress; the client then reports, by its
//! exit code, whether its connections stopped. Every object is created through a ledger like
//! any drill's change (run `check-m…`, drill `firedrill-check`), so an interrupted check is
//! reverted by `rollback --run`, `stop` or the scheduler's sweep at its expiry, and the check
//! reverts it itself when it ends.
//!
//! Why egress on the client rather than ingress on the listener: NetworkPolicies only ever add
//! allowances, and firedrill's own NetworkPolicy (deploy/kubernetes/networkpolicy.yaml) allows
//! ingress on 8080 to every pod labelled `app.kubernetes.io/name=firedrill`, which every
//! artifact is. An ingress deny on the listener would be outvoted; nothing allows the client's
//! egress, so a deny there is the only rule that applies.

use std::time::Duration;

use chrono::{DateTime, Utc};
use firedrill_rollback::{
    self as rollback, Cluster as _, Ledger, ObjectKind, ObjectRef, Step, Trust,
};
use serde_json::{json, Value};

use super::Line;
use crate::cluster::kubernetes::Kube;
use crate::cluster::ledger::{KubeCluster, Protection};

/// The canary's pods' image: busybox (a shell, `httpd` and `nc`), the container-kill helper's
/// image, so a cluster that mirrors images for drills has it already. firedrill's own image is
/// distroless: no shell, nothing that connects.
pub const IMAGE: &str = firedrill_experiments::KILL_IMAGE;

/// The ledger's drill (and the artifacts' `firedrill.io/drill` label).
pub const DRILL: &str = "firedrill-check";
/// The ledger's kind.
pub const KIND: &str = "network-canary";
/// How long the ledger (and each artifact's `firedrill.io/expires-at`) lasts: past it, the
/// scheduler's sweep reverts whatever an interrupted check left.
pub const EXPIRES_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// Each pod ends by itself after this long, whatever happens to the check.
const POD_DEADLINE_SECONDS: i64 = 240;
/// The port the listener answers on: the one firedrill's own NetworkPolicy admits.
const PORT: u16 = 8080;
/// The label the policy selects the client by.
const CANARY_LABEL: &str = "firedrill.io/canary";

/// The client's exit codes: 0 its connections stopped once the policy was in place, 1 they
/// went on, 3 it never connected before the policy.
const CLIENT_SCRIPT: &str = r#"i=0
until nc -z -w 2 "$LISTENER" 8080; do i=$((i+1)); [ "$i" -ge 30 ] && exit 3; sleep 1; done
touch /tmp/connected
i=0
while nc -z -w 2 "$LISTENER" 8080; do i=$((i+1)); [ "$i" -ge 30 ] && exit 1; sleep 1; done
exit 0
"#;

/// How the canary runs: its image and how long it waits for each stage.
#[derive(Clone, Debug)]
pub struct Canary {
    pub image: String,
    /// How often the pods are read.
    pub poll: Duration,
    /// For the listener to run (an image pull included), and for the client to connect.
    pub start_within: Duration,
    /// For the client's verdict once the policy is in place.
    pub verdict_within: Duration,
}

impl Default for Canary {
    fn default() -> Self {
        Canary {
            image: IMAGE.to_owned(),
            poll: Duration::from_secs(1),
            start_within: Duration::from_secs(120),
            verdict_within: Duration::from_secs(90),
        }
    }
}

/// The three objects of one canary run, by name: `firedrill-<run>-listener`, `-client`, `-deny`.
fn name(run: &str, part: &str) -> String {
    format!("firedrill-{run}-{part}")
}

/// Whether `target` is one of the canary's own objects: the only artifacts that live in
/// firedrill's own namespace, which every revert otherwise refuses to touch. Drill Job pods end
/// in a five-character random suffix, so they never end in `-listener` or `-client`.
pub fn is_canary(target: &ObjectRef) -> bool {
    let Some(rest) = target.name.strip_prefix("firedrill-check-m") else {
        return false;
    };
    match target.kind {
        ObjectKind::Pod => rest.ends_with("-listener") || rest.ends_with("-client"),
        ObjectKind::NetworkPolicy => rest.ends_with("-deny"),
        _ => false,
    }
}

/// A small pod that meets the `restricted` Pod Security level and ends by itself (a drill's
/// effect canary is one too).
pub(crate) fn pod(namespace: &str, run: &str, part: &str, image: &str, container: Value) -> Value {
    let mut container = container;
    container["name"] = json!(part);
    container["image"] = json!(image);
    container["securityContext"] = json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": { "drop": ["ALL"] },
    });
    container["resources"] = json!({
        "requests": { "cpu": "10m", "memory": "8Mi" },
        "limits": { "cpu": "100m", "memory": "32Mi" },
    });
    container["volumeMounts"] = json!([{ "name": "tmp", "mountPath": "/tmp" }]);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name(run, part),
            "namespace": namespace,
            "labels": { CANARY_LABEL: format!("{run}-{part}") },
        },
        "spec": {
            "restartPolicy": "Never",
            "activeDeadlineSeconds": POD_DEADLINE_SECONDS,
            "automountServiceAccountToken": false,
            "enableServiceLinks": false,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": 65534,
                "runAsGroup": 65534,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "containers": [container],
            "volumes": [{ "name": "tmp", "emptyDir": { "sizeLimit": "1Mi" } }],
        },
    })
}

/// The listener: busybox's `httpd` on [`PORT`]; a TCP connect is all the client asks of it.
pub fn listener(namespace: &str, run: &str, image: &str) -> Value {
    let container = json!({
        "command": ["httpd", "-f", "-p", PORT.to_string(), "-h", "/tmp"],
        "ports": [{ "containerPort": PORT, "protocol": "TCP" }],
    });
    pod(namespace, run, "listener", image, container)
}

/// The client: connects to `ip` until it can, says so by becoming Ready, then connects until
/// it cannot ([`CLIENT_SCRIPT`]'s exit codes).
pub fn client(namespace: &str, run: &str, image: &str, ip: &str) -> Value {
    let container = json!({
        "command": ["sh", "-c", CLIENT_SCRIPT],
        "env": [{ "name": "LISTENER", "value": ip }],
        "readinessProbe": {
            "exec": { "command": ["cat", "/tmp/connected"] },
            "periodSeconds": 1,
            "failureThreshold": 1,
        },
    });
    pod(namespace, run, "client", image, container)
}

/// The policy: no egress at all for the client.
pub fn deny(namespace: &str, run: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": name(run, "deny"), "namespace": namespace },
        "spec": {
            "podSelector": { "matchLabels": { CANARY_LABEL: format!("{run}-client") } },
            "policyTypes": ["Egress"],
            "egress": [],
        },
    })
}

/// What a canary pod reports, as read from its status.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    Waiting(String),
    Running {
        ip: Option<String>,
        ready: bool,
    },
    Exited(i64),
    /// Ended without an exit code (past its deadline, evicted).
    Ended(String),
}

pub(crate) fn seen(pod: &Value) -> Seen {
    let status = &pod["status"];
    let container = &status["containerStatuses"][0];
    if let Some(code) = container
        .pointer("/state/terminated/exitCode")
        .and_then(Value::as_i64)
    {
        return Seen::Exited(code);
    }
    let phase = status["phase"].as_str().unwrap_or("Pending");
    match phase {
        "Running" => Seen::Running {
            ip: status["podIP"].as_str().map(str::to_owned),
            ready: status["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            }),
        },
        "Succeeded" => Seen::Exited(0),
        "Failed" => Seen::Ended(status["reason"].as_str().unwrap_or("Failed").to_owned()),
        _ => Seen::Waiting(
            container
                .pointer("/state/waiting/reason")
                .and_then(Value::as_str)
                .or_else(|| status["reason"].as_str())
                .unwrap_or(phase)
                .to_owned(),
        ),
    }
}

/// Why the canary gave no verdict, or the plugin's: the line's text and fix.
struct Failed {
    what: String,
    fix: String,
}

fn failed(what: impl Into<String>, fix: impl Into<String>) -> Failed {
    Failed {
        what: what.into(),
        fix: fix.into(),
    }
}

/// The fix when the plugin does not enforce NetworkPolicy.
const PLUGIN_FIX: &str = "install a network plugin that enforces NetworkPolicy (Calico, Cilium, or your cloud's policy engine, e.g. GKE Dataplane V2, AKS network policy, the EKS VPC CNI with network policy enabled): until then network-partition, dependency-failure's block and zone-outage's partition change nothing";

/// Runs the canary in firedrill's namespace (`kube`'s), reverts it through its ledger, and says
/// what it found.
pub async fn run(kube: &Kube, canary: &Canary) -> Line {
    let key = match crate::cluster::ledger_key::read(kube).await {
        Ok(key) => key,
        Err(e) => {
            return Line::fail(
                "network",
                format!("NetworkPolicy enforcement not tried: {e}"),
                "the canary writes its changes to a ledger signed with the ledger key: run it where the key is readable (see the ledger-key line)",
            )
        }
    };
    let now = Utc::now();
    let run = crate::cluster::job::manual_run_id("check", now);
    let cluster = KubeCluster::new(kube);
    let expires = now + EXPIRES_AFTER;
    let mut ledger = Ledger::new(&run, DRILL, KIND, &expires.to_rfc3339());
    ledger.started = Some(now.to_rfc3339());
    let protection = Protection::without_drill_file(kube.namespace());
    let guard = |r: &ObjectRef| protection.check(r);
    let trust = protection.trust(&guard, Some(&key));
    tracing::info!(%run, namespace = kube.namespace(), expires = %expires.to_rfc3339(), "network canary: a listener, a client and a NetworkPolicy, through ledger {}; if interrupted, `firedrill rollback --run {run}` or the scheduler's sweep after its expiry removes them", ledger.name());
    let verdict = observe(&cluster, &mut ledger, &trust, canary, kube.namespace()).await;
    let report = rollback::replay(&cluster, &mut ledger, &trust, false).await;
    let left: Vec<String> = report
        .actions
        .iter()
        .filter(|a| a.outcome == rollback::Outcome::Failed)
        .map(|a| a.text.clone())
        .collect();
    let revert = if left.is_empty() {
        String::new()
    } else {
        format!(
            "; NOT all removed ({}): `firedrill rollback --run {run}`",
            left.join("; ")
        )
    };
    match verdict {
        Ok(()) => Line::pass(
            "network",
            format!("NetworkPolicy is enforced: a client in {} connected before a policy denied its egress and not after (run {run}, removed{revert})", kube.namespace()),
        ),
        Err(Failed { what, fix }) => Line::fail(
            "network",
            format!("{what} (run {run}{})", if revert.is_empty() { ", removed".to_owned() } else { revert }),
            fix,
        ),
    }
}

/// Creates the listener, then the client, then the policy, each through the ledger, and reads
/// the client's verdict.
async fn observe(
    cluster: &KubeCluster,
    ledger: &mut Ledger,
    trust: &Trust<'_>,
    canary: &Canary,
    namespace: &str,
) -> Result<(), Failed> {
    let run = ledger.run.clone();
    let create = |object: Value| Step::create(object).into_iter().collect::<Vec<_>>();
    let cannot = |what: &str, e: rollback::ApplyError| {
        failed(
            format!("NetworkPolicy enforcement not tried: cannot create the canary's {what}: {e}"),
            format!("let firedrill create and delete pods and networkpolicies in {namespace} (the RBAC lines name what is denied), and admit a `restricted` pod there"),
        )
    };
    let applied = rollback::apply(
        cluster,
        ledger,
        &create(listener(namespace, &run, &canary.image)),
        trust,
    )
    .await
    .map_err(|e| cannot("listener", e))?;
    refused(&applied)?;
    let listener_ref = ObjectRef::namespaced(ObjectKind::Pod, namespace, &name(&run, "listener"));
    let ip = wait(
        cluster,
        &listener_ref,
        canary.poll,
        canary.start_within,
        |s| match s {
            Seen::Running { ip: Some(ip), .. } => Some(Judged::Got(ip)),
            Seen::Exited(_) | Seen::Ended(_) => Some(Judged::Stopped(s)),
            _ => None,
        },
    )
    .await
    .map_err(|why| not_started("listener", &why, &canary.image))?;
    let applied = rollback::apply(
        cluster,
        ledger,
        &create(client(namespace, &run, &canary.image, &ip)),
        trust,
    )
    .await
    .map_err(|e| cannot("client", e))?;
    refused(&applied)?;
    let client_ref = ObjectRef::namespaced(ObjectKind::Pod, namespace, &name(&run, "client"));
    wait(cluster, &client_ref, canary.poll, canary.start_within, |s| match s {
        Seen::Running { ready: true, .. } => Some(Judged::Got(())),
        Seen::Exited(_) | Seen::Ended(_) => Some(Judged::Stopped(s)),
        _ => None,
    })
    .await
    .map_err(|why| match why {
        NoVerdict::Stopped(Seen::Exited(3)) => failed(
            format!("NetworkPolicy enforcement unknown: the canary client could not connect to the listener ({ip}:{PORT}) in {namespace} even before any policy of the check's, so the check means nothing"),
            format!("look for a NetworkPolicy in {namespace} that already denies egress or ingress there (kubectl -n {namespace} get networkpolicies), or run the check where pods may reach each other"),
        ),
        _ => not_started("client", &why, &canary.image),
    })?;
    let applied = rollback::apply(cluster, ledger, &create(deny(namespace, &run)), trust)
        .await
        .map_err(|e| cannot("NetworkPolicy", e))?;
    refused(&applied)?;
    let code = wait(cluster, &client_ref, canary.poll, canary.verdict_within, |s| match s {
        Seen::Exited(code) => Some(Judged::Got(code)),
        Seen::Ended(_) => Some(Judged::Stopped(s)),
        _ => None,
    })
    .await
    .map_err(|why| failed(
        format!("NetworkPolicy enforcement unknown: the canary client gave no verdict after the policy was created ({why})"),
        "run `firedrill check --network` again; if it keeps failing, look at the client pod's events while it runs",
    ))?;
    match code {
        0 => Ok(()),
        1 => Err(failed(
            format!("NetworkPolicy is NOT enforced: a client in {namespace} still connected to the listener 30 s after a NetworkPolicy denied all its egress; network-partition and zone-outage partition drills would silently do nothing"),
            PLUGIN_FIX,
        )),
        other => Err(failed(
            format!("NetworkPolicy enforcement unknown: the canary client exited {other}"),
            "run `firedrill check --network` again; if it keeps failing, look at the client pod's events while it runs",
        )),
    }
}

/// A create the cluster refused (a name someone else holds): the canary cannot go on.
fn refused(applied: &rollback::Applied) -> Result<(), Failed> {
    match applied.refused.first() {
        None => Ok(()),
        Some((what, why)) => Err(failed(
            format!("NetworkPolicy enforcement not tried: {what}: {why}"),
            "run `firedrill check --network` again (each run names its objects afresh)",
        )),
    }
}

fn not_started(part: &str, why: &NoVerdict, image: &str) -> Failed {
    failed(
        format!("NetworkPolicy enforcement not tried: the canary {part} did not run ({why})"),
        format!("make {image} pullable in the cluster (or give --canary-image an image with sh, httpd and nc), and look at the pod's events"),
    )
}

/// What a pod said while it was waited on: what it was waited for, or how it ended instead.
enum Judged<T> {
    Got(T),
    Stopped(Seen),
}

/// Why a wait for a pod gave nothing.
#[derive(Debug, thiserror::Error)]
enum NoVerdict {
    #[error("{0:?}")]
    Stopped(Seen),
    #[error("{0} is gone")]
    Gone(ObjectRef),
    #[error("still {last} after {seconds}s")]
    TimedOut { last: String, seconds: u64 },
}

/// Reads `pod` every `poll` until `judge` decides, for at most `within`.
async fn wait<T>(
    cluster: &KubeCluster,
    pod: &ObjectRef,
    poll: Duration,
    within: Duration,
    judge: impl Fn(Seen) -> Option<Judged<T>>,
) -> Result<T, NoVerdict> {
    let until: DateTime<Utc> =
        Utc::now() + chrono::TimeDelta::from_std(within).unwrap_or(chrono::TimeDelta::MAX);
    loop {
        let last = match cluster.get(pod).await {
            Ok(Some(object)) => {
                let s = seen(&object);
                let text = format!("{s:?}");
                match judge(s) {
                    Some(Judged::Got(t)) => return Ok(t),
                    Some(Judged::Stopped(s)) => return Err(NoVerdict::Stopped(s)),
                    None => text,
                }
            }
            Ok(None) => return Err(NoVerdict::Gone(pod.clone())),
            Err(e) => e.to_string(),
        };
        if Utc::now() >= until {
            return Err(NoVerdict::TimedOut {
                last,
                seconds: within.as_secs(),
            });
        }
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_canarys_own_objects_are_its() {
        let run = "check-m1abcdwxyz";
        for object in [
            listener("chaos-testing", run, IMAGE),
            client("chaos-testing", run, IMAGE, "10.0.0.7"),
            deny("chaos-testing", run),
        ] {
            assert!(is_canary(&ObjectRef::of(&object).unwrap()), "{object}");
        }
        let pod = |name: &str| ObjectRef::namespaced(ObjectKind::Pod, "chaos-testing", name);
        assert!(!is_canary(&pod("firedrill-scheduler-84f6b7c5d-q9w4t")));
        assert!(!is_canary(&pod("firedrill-check-m1abcd-x7k2p")));
        assert!(!is_canary(&ObjectRef::namespaced(
            ObjectKind::Deployment,
            "chaos-testing",
            "firedrill-check-m1abcd-client"
        )));
    }

    #[test]
    fn a_pod_is_read_from_its_status() {
        let pod = |status: Value| json!({ "status": status });
        assert_eq!(
            seen(&pod(
                json!({ "phase": "Pending", "containerStatuses": [{ "state": { "waiting": { "reason": "ImagePullBackOff" } } }] })
            )),
            Seen::Waiting("ImagePullBackOff".into())
        );
        assert_eq!(
            seen(&pod(
                json!({ "phase": "Running", "podIP": "10.0.0.7", "conditions": [{ "type": "Ready", "status": "True" }] })
            )),
            Seen::Running {
                ip: Some("10.0.0.7".into()),
                ready: true
            }
        );
        assert_eq!(
            seen(&pod(
                json!({ "phase": "Failed", "containerStatuses": [{ "state": { "terminated": { "exitCode": 1 } } }] })
            )),
            Seen::Exited(1)
        );
        assert_eq!(
            seen(&pod(
                json!({ "phase": "Failed", "reason": "DeadlineExceeded" })
            )),
            Seen::Ended("DeadlineExceeded".into())
        );
    }
}
