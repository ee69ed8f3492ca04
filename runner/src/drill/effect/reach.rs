//! network-partition's and dependency-failure block's effect, tried: a short-lived canary pod
//! (busybox, `restricted`, created and removed through the run's ledger like every artifact)
//! connects to a pod's IP on a port it declares until it can, before the fault (else the check
//! means nothing, and says so: not checked), then until it cannot. Its exit code is the verdict,
//! read from its container status: refused (0) while the fault is in is the effect seen.
//!
//! Into a partitioned pod the canary comes from outside the partition (it carries no label an
//! `allow` peer admits: the planner says when one might, and then nothing is checked); out of a
//! block it carries the mark itself and tries a pod of the dependency. Into a zone cut off it
//! tries the first pod of the zone that declares a port (a zone-outage's planner does not know
//! which do).

use std::time::Duration;

use chrono::{DateTime, Utc};
use firedrill_experiments::{Reach, PARTITION_LABEL};
use firedrill_rollback::{self as rollback, Cluster as _, ObjectKind, ObjectRef, Step};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::{name, Before, Pods, ReadFailed};
use crate::check::canary::{pod as canary_pod, seen, Seen};
use crate::cluster::kubernetes::Kube;
use crate::cluster::ledger::KubeCluster;
use crate::drill::state::Injection;

/// How long a plugin may take to enforce the policy once it is in, before the canary's
/// refusal is due (the canary itself tries every second or so).
pub(super) const WITHIN: Duration = Duration::from_secs(30);
/// For the canary to start (an image pull included) and connect, before the fault.
const START_WITHIN: Duration = Duration::from_secs(120);
/// How often the canary is read while it starts.
const POLL: Duration = Duration::from_millis(500);
/// The kubelet's times are whole seconds: a refusal this much before the fault began still
/// counts as during it.
const CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// How the effect is told.
pub(super) const HOW: &str = "a canary pod connected to the pod's port before the fault (nc -z), then was refused while it was in (its exit code)";

/// One canary, as planned from what was read before the fault.
pub(super) struct Canary {
    /// The canary's namespace: the marked pod's.
    namespace: String,
    /// The pod it connects to, its IP and port.
    to: ObjectRef,
    ip: String,
    port: i32,
    /// It carries the partition mark (a block's clients are marked, the dependency is not).
    marked: bool,
    /// The canary pod, once created.
    pod: Option<ObjectRef>,
}

/// Reads the pod the canary will connect to: its IP and first TCP port.
pub(super) async fn before(
    kube: &Kube,
    pods: &mut Pods,
    marked_pod: &ObjectRef,
    reach: &Reach,
) -> Result<Before, kube::Error> {
    let (to, marked) = match reach {
        Reach::Unchecked(why) => return Ok(Before::Unchecked(why.clone())),
        Reach::Into => (marked_pod.clone(), false),
        Reach::OutTo(pod) => (pod.clone(), true),
        Reach::IntoOneOf(candidates) => match one_with_port(kube, pods, candidates).await? {
            Some(pod) => (pod, false),
            None => return Ok(Before::Unchecked(no_port_among(candidates))),
        },
    };
    let Some(found) = pods.get(kube, &to).await? else {
        return Ok(Before::Unchecked(format!(
            "the pod did not answer before the fault: {} is not there",
            name(&to)
        )));
    };
    let ip = found.status.as_ref().and_then(|s| s.pod_ip.clone());
    Ok(match (ip, tcp_port(found)) {
        (_, None) => Before::Unchecked(format!(
            "no port to try: {} declares no TCP containerPort",
            name(&to)
        )),
        (None, _) => Before::Unchecked(format!(
            "the pod did not answer before the fault: {} has no IP",
            name(&to)
        )),
        (Some(ip), Some(port)) => Before::Reach(Canary {
            // Marked, it runs beside the marked pod; unmarked, beside the pod it tries.
            namespace: match marked {
                true => marked_pod.namespace.clone().unwrap_or_default(),
                false => to.namespace.clone().unwrap_or_default(),
            },
            to,
            ip,
            port,
            marked,
            pod: None,
        }),
    })
}

/// The first TCP port the pod's containers declare.
fn tcp_port(pod: &Pod) -> Option<i32> {
    pod.spec.as_ref().and_then(|s| {
        s.containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.protocol.as_deref().is_none_or(|p| p == "TCP"))
            .map(|p| p.container_port)
    })
}

/// The first of `candidates` (a zone's pods) that declares a TCP port, preferring one with an
/// IP; a pod on its node's network is passed over (no NetworkPolicy applies to it, so a canary
/// would try the node, not the cut). `None`: none can be tried.
async fn one_with_port(
    kube: &Kube,
    pods: &mut Pods,
    candidates: &[ObjectRef],
) -> Result<Option<ObjectRef>, kube::Error> {
    let mut with_port = Vec::new();
    for candidate in candidates {
        let Some(found) = pods.get(kube, candidate).await? else {
            continue;
        };
        let host_network = found
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        if host_network || tcp_port(found).is_none() {
            continue;
        }
        let has_ip = found
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_ref())
            .is_some();
        with_port.push((!has_ip, candidate));
    }
    // Stable: the first with an IP, else the first (whose missing IP is then said).
    with_port.sort_by_key(|(no_ip, _)| *no_ip);
    Ok(with_port.first().map(|(_, pod)| (*pod).clone()))
}

/// Why none of `candidates` can be tried, naming the first few.
fn no_port_among(candidates: &[ObjectRef]) -> String {
    let mut names: Vec<String> = candidates.iter().take(5).map(name).collect();
    if candidates.len() > names.len() {
        names.push(format!("{} more", candidates.len() - names.len()));
    }
    format!(
        "no port to try: none of the {} pods cut off ({}) declares a TCP containerPort outside its node's network",
        candidates.len(),
        names.join(", ")
    )
}

/// What must be seen, in a few words.
pub(super) fn says(before: &Before) -> String {
    match before {
        Before::Reach(c) => format!(
            "a canary in {} refused by {} ({}:{})",
            c.namespace,
            name(&c.to),
            c.ip,
            c.port
        ),
        _ => "a canary refused".to_owned(),
    }
}

impl Canary {
    /// The canary pod of run `run`: `firedrill-<run>-canary`, the check canary's restricted pod.
    fn manifest(&self, run: &str) -> Value {
        let container = json!({
            "command": ["sh", "-c", firedrill_experiments::partition::CANARY_SCRIPT],
            "env": [
                { "name": "TARGET", "value": self.ip },
                { "name": "PORT", "value": self.port.to_string() },
            ],
            "readinessProbe": {
                "exec": { "command": ["cat", "/tmp/connected"] },
                "periodSeconds": 1,
                "failureThreshold": 1,
            },
        });
        let mut pod = canary_pod(
            &self.namespace,
            run,
            "canary",
            firedrill_experiments::KILL_IMAGE,
            container,
        );
        if self.marked {
            pod["metadata"]["labels"][PARTITION_LABEL] = json!(run);
        }
        pod
    }

    /// Waits until the canary connected, or says why it cannot tell.
    async fn connected(&self, cluster: &KubeCluster, pod: &ObjectRef) -> Start {
        match self.wait(cluster, pod).await {
            None => Start::Connected,
            Some(why) => Start::Unchecked(why),
        }
    }

    /// `None` once the canary connected; else why it cannot tell.
    async fn wait(&self, cluster: &KubeCluster, pod: &ObjectRef) -> Option<String> {
        let until = tokio::time::Instant::now() + START_WITHIN;
        let mut last = String::new();
        while tokio::time::Instant::now() < until {
            match cluster.get(pod).await {
                Ok(Some(object)) => match seen(&object) {
                    Seen::Running { ready: true, .. } => return None,
                    Seen::Exited(3) => {
                        return Some(format!(
                            "the pod did not answer before the fault: a canary in {} could not connect to {} ({}:{}) in 30 tries",
                            self.namespace,
                            name(&self.to),
                            self.ip,
                            self.port
                        ))
                    }
                    Seen::Exited(code) => {
                        return Some(format!("the canary did not run: it exited {code}"))
                    }
                    Seen::Ended(why) => return Some(format!("the canary did not run: {why}")),
                    other => last = format!("{other:?}"),
                },
                Ok(None) => return Some("the canary did not run: its pod is gone".to_owned()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(POLL).await;
        }
        Some(format!(
            "the canary did not connect within {}s (last: {last})",
            START_WITHIN.as_secs()
        ))
    }
}

/// How a canary's start ended.
enum Start {
    Connected,
    /// It cannot tell, and why.
    Unchecked(String),
}

/// One look while the fault is in: refused since `from` is the effect seen.
pub(super) async fn observe(
    canary: &Canary,
    kube: &Kube,
    pods: &mut Pods,
    from: Option<DateTime<Utc>>,
    last: &mut Option<String>,
) -> Result<Option<String>, ReadFailed> {
    let Some(pod) = &canary.pod else {
        return Err(ReadFailed::NotReadBefore);
    };
    let Some(found) = pods.get(kube, pod).await? else {
        *last = Some(format!("the canary {} is gone", name(pod)));
        return Ok(None);
    };
    let object = serde_json::to_value(found).unwrap_or_default();
    let target = format!("{} ({}:{})", name(&canary.to), canary.ip, canary.port);
    match seen(&object) {
        Seen::Exited(0) => {
            let finished = object
                .pointer("/status/containerStatuses/0/state/terminated/finishedAt")
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            let from = from.unwrap_or_else(Utc::now);
            match finished {
                Some(at) if at + CLOCK_SLACK < from => {
                    *last = Some(format!(
                        "the canary lost {target} at {at}, before the fault began"
                    ));
                    Ok(None)
                }
                at => {
                    let after = (at.unwrap_or_else(Utc::now) - from)
                        .num_milliseconds()
                        .max(0);
                    Ok(Some(format!(
                        "a canary in {} connected to {target} before the fault and was refused {:.1}s after it began",
                        canary.namespace,
                        after as f64 / 1000.0
                    )))
                }
            }
        }
        Seen::Exited(code) => {
            *last = Some(format!("the canary exited {code} without a verdict"));
            Ok(None)
        }
        Seen::Ended(why) => {
            *last = Some(format!("the canary ended without a verdict ({why})"));
            Ok(None)
        }
        _ => {
            *last = Some(format!("a canary still connects to {target}"));
            Ok(None)
        }
    }
}

impl Injection {
    /// Before the fault: each canary created through the ledger, and waited on until it
    /// connected. One that cannot tell makes its expectation "not checked", said on the
    /// timeline; the run goes on as it would without the check.
    pub(in crate::drill) async fn start_canaries(&mut self) {
        let Some(effect) = self.effect.as_mut() else {
            return;
        };
        let run = self.ledger.run.clone();
        let mut said = Vec::new();
        for item in &mut effect.items {
            let Before::Reach(canary) = &mut item.before else {
                continue;
            };
            let object = canary.manifest(&run);
            let pod = ObjectRef::namespaced(
                ObjectKind::Pod,
                &canary.namespace,
                &format!("firedrill-{run}-canary"),
            );
            let steps: Vec<Step> = Step::create(object).into_iter().collect();
            let guard = |r: &ObjectRef| self.protection.check(r);
            let trust = self.protection.trust(&guard, Some(&self.key));
            let outcome =
                match rollback::apply(&self.cluster, &mut self.ledger, &steps, &trust).await {
                    Err(e) => Start::Unchecked(format!("the canary could not be created: {e}")),
                    Ok(applied) => match applied.refused.first() {
                        Some((_, why)) => {
                            Start::Unchecked(format!("the canary could not be created: {why}"))
                        }
                        None => canary.connected(&self.cluster, &pod).await,
                    },
                };
            match outcome {
                Start::Connected => {
                    said.push(format!(
                        "canary {} connected to {} ({}:{}) before the fault",
                        name(&pod),
                        name(&canary.to),
                        canary.ip,
                        canary.port
                    ));
                    canary.pod = Some(pod);
                }
                Start::Unchecked(why) => {
                    said.push(format!("effect not checked: {why}"));
                    item.before = Before::Unchecked(why);
                }
            }
        }
        for what in said {
            self.event(Utc::now(), &what);
        }
    }
}
