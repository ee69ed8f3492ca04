//! Whether a run's fault took effect (ARCHITECTURE.md, principle 10): what the planner said to
//! expect (`firedrill_experiments::Expect`), read back from the cluster before the fault (each
//! pod's uid and grace period, each container's restart count) and while it is in, each within
//! its own deadline. A fault not seen to take effect ends the run `ineffective`: the system's
//! response to a fault that never happened is not judged.
//!
//! Reads only with what every kind that changes anything may already do (pods and the guard's
//! lists in the targets' namespaces; nodes by name, which node faults get to cordon them).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use firedrill_experiments::{Expect, StressLoad};
use firedrill_rollback::ObjectRef;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, LogParams};
use serde_json::Value;

use super::helper_report;
use crate::cluster::kubernetes::Kube;
use crate::cluster::snapshot;
use crate::run::EffectNote;

mod dns;
mod proxy;
mod reach;

/// What a pod's grace period is when it says none (Kubernetes's default).
const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// Added to every deadline: the API server's and the kubelet's own delays.
const MARGIN: Duration = Duration::from_secs(15);
/// How long a container-kill helper may take to be scheduled, start and kill (it ends within a
/// minute by itself), before the kubelet restarts the container.
const HELPER_WITHIN: Duration = Duration::from_secs(60);
/// How long an http-fault's proxy may take to be seen faulting: its clients must send requests
/// through it (the drill's end comes first in a shorter drill).
const PROXY_WITHIN: Duration = Duration::from_secs(120);
/// How long Route 53 may take to answer with the region taking over, after its change was
/// reported in sync.
const DNS_WITHIN: Duration = Duration::from_secs(60);

/// The expectations of one run, as they are being observed.
pub(super) struct Effect {
    items: Vec<Item>,
}

struct Item {
    expect: Expect,
    /// Whether a step of the plan acts on its object (else it is due when the fault begins).
    acted_on: bool,
    before: Before,
    /// When it became due, and by when it must be seen.
    due: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// What was seen, once it was.
    seen: Option<String>,
    /// What the last look found instead, while it was not.
    last: Option<String>,
    /// A container-kill: when the container was killed (its last termination), as seen.
    killed_at: Option<DateTime<Utc>>,
    /// Why it cannot be checked here (said; never counted as seen).
    unchecked: Option<String>,
}

/// One look at something outside the Kubernetes API (the fault proxy's counts, Route 53's
/// answer).
enum Look {
    Seen(String),
    /// Not yet: what was seen instead.
    Not(String),
    /// It cannot be checked here: why.
    Unchecked(String),
}

/// What was read before the fault.
#[derive(Default)]
enum Before {
    #[default]
    Unread,
    /// The pod's uid (none: it was not there) and how long it may take to go.
    Pod {
        uid: Option<String>,
        within: Duration,
    },
    /// The container's restart count, in the pod of that uid.
    Restarts { uid: Option<String>, count: i32 },
    /// How long the workload's pods may take to go (their longest grace period).
    Workload { within: Duration },
    /// Nothing to read before (the proxy's counts and Route 53's answer are read after): how
    /// long it may take to be seen.
    Within(Duration),
    /// A canary that must connect before the fault and be refused while it is in.
    Reach(reach::Canary),
    /// Why this cannot be checked (never counted as seen, never making a run ineffective).
    Unchecked(String),
    /// A helper that reports on its log (network-degrade's, a stress pod): nothing to read
    /// before; it may take as long as a helper does to start.
    Helper,
}

/// Why the effect could not be set up: what the fault acts on could not be read before it.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {what} before the fault, so whether it takes effect could not be told (fail safe; nothing injected): {error}")]
pub(super) struct BeforeError {
    what: String,
    error: String,
}

/// Why a look could not tell: the API failed, or answered with what the run cannot read.
#[derive(Debug, thiserror::Error)]
enum ReadFailed {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Api(#[from] crate::cluster::kubernetes::KubeError),
    #[error(transparent)]
    Object(#[from] snapshot::ObjectError),
    #[error("not read before the fault")]
    NotReadBefore,
    #[error(transparent)]
    Proxy(#[from] proxy::Unread),
    #[error(transparent)]
    Route53(#[from] firedrill_rollback::ClusterError),
}

/// Why the fault is not in effect (something not seen by its deadline, or by the end of the
/// drill): the run's reason.
#[derive(Debug, thiserror::Error)]
#[error("the fault did not take effect: {0}")]
pub(super) struct NotInEffect(String);

/// Reads of the pods before the fault, as [`BeforeError`]s.
fn before_error(namespace: &str) -> impl Fn(kube::Error) -> BeforeError + '_ {
    move |e| BeforeError {
        what: format!("the pods of {namespace}"),
        error: e.to_string(),
    }
}

impl Effect {
    /// The expectations of a plan; `targets`: every object a step of the plan acts on.
    pub(super) fn new(expect: Vec<Expect>, targets: &BTreeSet<ObjectRef>) -> Effect {
        let items = expect
            .into_iter()
            .map(|expect| Item {
                acted_on: targets.contains(&expect.object()),
                expect,
                before: Before::Unread,
                due: None,
                seen: None,
                last: None,
                killed_at: None,
                unchecked: None,
            })
            .collect();
        Effect { items }
    }

    /// Reads what each expectation is measured against, before the fault.
    pub(super) async fn before(&mut self, kube: &Kube) -> Result<(), BeforeError> {
        let mut pods = Pods::default();
        for item in &mut self.items {
            item.before = match &item.expect {
                Expect::PodGone { pod, grace } => {
                    let namespace = pod.namespace.as_deref().unwrap_or_default();
                    let found = pods.get(kube, pod).await.map_err(before_error(namespace))?;
                    let own = found.and_then(|p| p.spec.as_ref()?.termination_grace_period_seconds);
                    let grace = grace
                        .or(own.map(|s| Duration::from_secs(s.max(0) as u64)))
                        .unwrap_or(DEFAULT_GRACE);
                    Before::Pod {
                        uid: found.and_then(|p| p.metadata.uid.clone()),
                        within: grace + MARGIN,
                    }
                }
                Expect::ContainerRestarted { pod, container } => {
                    let namespace = pod.namespace.as_deref().unwrap_or_default();
                    let found = pods.get(kube, pod).await.map_err(before_error(namespace))?;
                    Before::Restarts {
                        uid: found.and_then(|p| p.metadata.uid.clone()),
                        count: found.and_then(|p| restarts(p, container)).unwrap_or(0),
                    }
                }
                Expect::NodeUnschedulable { .. } => Before::Unread,
                Expect::Unreachable { pod, reach } => reach::before(kube, &mut pods, pod, reach)
                    .await
                    .map_err(before_error(pod.namespace.as_deref().unwrap_or_default()))?,
                Expect::Degraded { .. } | Expect::Stressed { .. } => Before::Helper,
                Expect::NoReadyPods { workload } => {
                    let listed = pods
                        .list(kube, &workload.namespace)
                        .await
                        .map_err(before_error(&workload.namespace))?;
                    let longest = listed
                        .iter()
                        .filter_map(|p| p.spec.as_ref()?.termination_grace_period_seconds)
                        .max()
                        .map_or(DEFAULT_GRACE, |s| Duration::from_secs(s.max(0) as u64));
                    Before::Workload {
                        within: longest + MARGIN,
                    }
                }
                Expect::ProxyFaulted { .. } => Before::Within(PROXY_WITHIN + MARGIN),
                Expect::DnsAnswer(answer) => {
                    item.unchecked = dns::cannot_tell(answer);
                    Before::Within(DNS_WITHIN + MARGIN)
                }
            };
        }
        Ok(())
    }

    /// A step of the run acted on `object` at `at`: what is expected of it is due from then.
    pub(super) fn acted_on(&mut self, object: &ObjectRef, at: DateTime<Utc>) {
        for item in self
            .items
            .iter_mut()
            .filter(|i| &i.expect.object() == object)
        {
            item.start(at);
        }
    }

    /// The fault began at `at`: what no step acts on (a node cordoned before the drill) is due.
    pub(super) fn began(&mut self, at: DateTime<Utc>) {
        for item in self.items.iter_mut().filter(|i| !i.acted_on) {
            item.start(at);
        }
    }

    /// Whether everything due so far was seen (the recovery clock judges nothing before).
    pub(super) fn settled(&self) -> bool {
        self.items
            .iter()
            .all(|i| i.due.is_none() || i.seen.is_some() || i.unchecked().is_some())
    }

    /// Looks once at everything due and not yet seen. `Err`: something was not seen by its
    /// deadline (`now` past it), and why.
    pub(super) async fn look(
        &mut self,
        kube: &Kube,
        now: DateTime<Utc>,
    ) -> Result<(), NotInEffect> {
        let mut pods = Pods::default();
        for item in self.items.iter_mut() {
            if item.due.is_none() || item.seen.is_some() || item.unchecked().is_some() {
                continue;
            }
            match item.observe(kube, &mut pods).await {
                Ok(Some(seen)) => item.seen = Some(seen),
                Ok(None) => {}
                Err(e) => item.last = Some(format!("could not be read: {e}")),
            }
        }
        match self.overdue(now) {
            Some(late) => Err(NotInEffect(late)),
            None => Ok(()),
        }
    }

    /// Why the fault is not in effect: the first thing due and unseen after its deadline.
    fn overdue(&self, now: DateTime<Utc>) -> Option<String> {
        self.items.iter().find_map(|i| match (i.due, &i.seen) {
            _ if i.unchecked().is_some() => None,
            (Some((from, by)), None) if now > by => Some(i.unseen(from, by, "within")),
            _ => None,
        })
    }

    /// At the end of the drill: the first thing due and still unseen, said.
    pub(super) fn unseen_at_end(&self) -> Option<NotInEffect> {
        self.items.iter().find_map(|i| match (i.due, &i.seen) {
            _ if i.unchecked().is_some() => None,
            (Some((from, by)), None) => Some(NotInEffect(i.unseen(
                from,
                by,
                "by the end of the drill; it had",
            ))),
            _ => None,
        })
    }

    /// When the earliest container was killed, as its kubelet reports it.
    pub(super) fn killed_at(&self) -> Option<DateTime<Utc>> {
        self.items.iter().filter_map(|i| i.killed_at).min()
    }

    /// The run's record of it: seen, not seen (and what was seen instead), or nothing due.
    pub(super) fn note(&self) -> EffectNote {
        let mut how: Vec<&str> = self.items.iter().map(|i| i.how()).collect();
        how.sort_unstable();
        how.dedup();
        let how = how.join("; ");
        // What cannot be checked is said, and counts neither way.
        let unchecked: Vec<&str> = self.items.iter().filter_map(Item::unchecked).collect();
        let due: Vec<&Item> = self
            .items
            .iter()
            .filter(|i| i.due.is_some() && i.unchecked().is_none())
            .collect();
        if due.is_empty() && !unchecked.is_empty() {
            return EffectNote {
                observed: None,
                how: format!("not checked ({how})"),
                what: unchecked
                    .iter()
                    .map(|w| format!("not checked: {w}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
        }
        if due.is_empty() {
            return EffectNote {
                observed: None,
                how: "not checked".to_owned(),
                what: "nothing the fault acts on was changed".to_owned(),
            };
        }
        let unseen: Vec<String> = due
            .iter()
            .filter(|i| i.seen.is_none())
            .map(|i| match &i.last {
                Some(last) => format!("{}: not seen ({last})", i.says()),
                None => format!("{}: not seen", i.says()),
            })
            .collect();
        let seen: Vec<String> = due
            .iter()
            .filter_map(|i| i.seen.clone())
            .chain(unchecked.iter().map(|w| format!("not checked: {w}")))
            .collect();
        match unseen.is_empty() {
            true => EffectNote {
                observed: Some(true),
                how,
                what: seen.join("; "),
            },
            false => EffectNote {
                observed: Some(false),
                how,
                what: unseen
                    .into_iter()
                    .chain(seen)
                    .collect::<Vec<_>>()
                    .join("; "),
            },
        }
    }
}

impl Item {
    fn start(&mut self, at: DateTime<Utc>) {
        if self.due.is_none() {
            let within = match &self.before {
                Before::Pod { within, .. } | Before::Workload { within } => *within,
                Before::Restarts { .. } | Before::Helper => HELPER_WITHIN + MARGIN,
                Before::Within(within) => *within,
                Before::Reach(_) => reach::WITHIN + MARGIN,
                Before::Unread | Before::Unchecked(_) => MARGIN,
            };
            let by = at + chrono::TimeDelta::from_std(within).unwrap_or(chrono::TimeDelta::MAX);
            self.due = Some((at, by));
        }
    }

    /// What must be seen, in a few words.
    fn says(&self) -> String {
        match &self.expect {
            Expect::PodGone { pod, .. } => format!("{} gone", name(pod)),
            Expect::NodeUnschedulable { node } => format!("node {node} unschedulable"),
            Expect::ContainerRestarted { pod, container } => {
                format!("container {container} of {} restarted", name(pod))
            }
            Expect::NoReadyPods { workload } => format!("no ready pod of {workload}"),
            Expect::ProxyFaulted { service, .. } => {
                format!("the fault proxy behind Service {} faulting", name(service))
            }
            Expect::DnsAnswer(dns) => format!(
                "Route 53 answering {} {} with {}",
                dns.name, dns.record_type, dns.to
            ),
            Expect::Unreachable { .. } => reach::says(&self.before),
            Expect::Degraded { target, .. } => format!("{} degraded", name(target)),
            Expect::Stressed { node, load, .. } => match load {
                StressLoad::Cpu(p) => format!("node {node} CPUs {p}% busy with stress-ng"),
                StressLoad::Memory(p) => format!("{p}% of node {node}'s free memory held"),
                StressLoad::Io { workers } => {
                    format!("{workers} stress-ng io workers writing and reading on node {node}")
                }
            },
        }
    }

    /// Why this cannot be checked, when it cannot.
    fn unchecked(&self) -> Option<&str> {
        match &self.before {
            Before::Unchecked(why) => Some(why),
            // (Set with its "not checked: " already said: said once.)
            _ => self
                .unchecked
                .as_deref()
                .map(|w| w.strip_prefix("not checked: ").unwrap_or(w)),
        }
    }

    /// How it is told.
    fn how(&self) -> &'static str {
        match &self.expect {
            Expect::PodGone { .. } => {
                "each killed pod read back: gone, or another uid under its name"
            }
            Expect::NodeUnschedulable { .. } => "each node read back: spec.unschedulable",
            Expect::ContainerRestarted { .. } => {
                "the container's restartCount read back, against its count before the fault"
            }
            Expect::NoReadyPods { .. } => "the workload's pods read back: none Running and Ready",
            Expect::ProxyFaulted { .. } => {
                "the fault proxy's own counts (GET /metrics on each of its pods), against its configured shares"
            }
            Expect::DnsAnswer(_) => {
                "Route 53's TestDNSAnswer for the record (Route 53's own answer; resolvers are not asked and may cache the old one up to its TTL)"
            }
            Expect::Unreachable { .. } => reach::HOW,
            Expect::Degraded { .. } => {
                "the helper's report on its log: the qdisc and nft rules in place, and the round-trip measured from inside the pod's network namespace before and during"
            }
            Expect::Stressed {
                load: StressLoad::Io { .. },
                ..
            } => {
                "the stress pod's report on its log: the bytes stress-ng's processes wrote and read, from /proc/PID/io while it ran"
            }
            Expect::Stressed { .. } => {
                "the stress pod's report on its log: stress-ng's CPU time or resident memory, read from /proc while it ran"
            }
        }
    }

    fn unseen(&self, from: DateTime<Utc>, by: DateTime<Utc>, within: &str) -> String {
        let seconds = (by - from).num_seconds();
        let instead = self
            .last
            .as_deref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default();
        format!("{} not seen {within} {seconds}s{instead}", self.says())
    }

    /// One look: `Some` what was seen, `None` not yet (`last` says what was seen instead).
    async fn observe(
        &mut self,
        kube: &Kube,
        pods: &mut Pods,
    ) -> Result<Option<String>, ReadFailed> {
        match (&self.expect, &self.before) {
            (Expect::PodGone { pod, .. }, Before::Pod { uid, .. }) => {
                pod_gone(kube, pods, pod, uid, self.due, &mut self.last).await
            }
            (Expect::ContainerRestarted { pod, container }, Before::Restarts { uid, count }) => {
                let last = &mut self.last;
                restarted(
                    kube,
                    pods,
                    (pod, container),
                    (uid, *count),
                    last,
                    &mut self.killed_at,
                )
                .await
            }
            (Expect::NodeUnschedulable { node }, _) => {
                let found = Api::<Node>::all(kube.client().clone())
                    .get_opt(node)
                    .await?;
                let cordoned = found
                    .as_ref()
                    .and_then(|n| n.spec.as_ref()?.unschedulable)
                    .unwrap_or(false);
                if cordoned {
                    return Ok(Some(format!("node {node} unschedulable")));
                }
                self.last = Some(match found {
                    None => "the node is gone".to_owned(),
                    Some(_) => "still schedulable".to_owned(),
                });
                Ok(None)
            }
            (Expect::NoReadyPods { workload }, _) => {
                let objects = kube
                    .snapshot(std::slice::from_ref(&workload.namespace))
                    .await?;
                let refs: Vec<&Value> = objects.iter().collect();
                let cluster = snapshot::from_objects(&refs)?;
                let ready = cluster
                    .pods
                    .iter()
                    .filter(|p| p.running_and_ready && p.owner.as_ref() == Some(workload))
                    .count();
                if ready == 0 {
                    return Ok(Some(format!("no ready pod of {workload}")));
                }
                self.last = Some(format!("{ready} still ready"));
                Ok(None)
            }
            (
                Expect::ProxyFaulted {
                    service,
                    run,
                    errors,
                    reset,
                    delayed,
                },
                _,
            ) => {
                let namespace = service.namespace.as_deref().unwrap_or_default();
                let listed = pods.list(kube, namespace).await?;
                let (counts, read) = proxy::read(listed, run).await?;
                let shares = proxy::Shares {
                    errors: *errors,
                    reset: *reset,
                    delayed: *delayed,
                };
                Ok(self.looked(proxy::judge(counts, shares, read)))
            }
            (Expect::DnsAnswer(answer), _) => {
                let look = dns::look(answer).await?;
                Ok(self.looked(look))
            }
            (Expect::Unreachable { .. }, Before::Reach(canary)) => {
                let from = self.due.map(|(at, _)| at);
                reach::observe(canary, kube, pods, from, &mut self.last).await
            }
            (Expect::Degraded { .. } | Expect::Stressed { .. }, Before::Helper) => {
                self.helper_report(kube).await
            }
            // Not read before the fault: nothing to tell it by.
            _ => Err(ReadFailed::NotReadBefore),
        }
    }
}

impl Item {
    /// A look outside the Kubernetes API, kept.
    fn looked(&mut self, look: Look) -> Option<String> {
        match look {
            Look::Seen(seen) => Some(seen),
            Look::Not(instead) => {
                self.last = Some(instead);
                None
            }
            Look::Unchecked(why) => {
                self.unchecked = Some(why);
                None
            }
        }
    }

    /// A helper's report, read from its log and judged against what was asked: `None` while it
    /// has not said all (`last`: what it said so far), or when what it said falls short (`last`:
    /// why; it says it once, so the deadline decides).
    async fn helper_report(&mut self, kube: &Kube) -> Result<Option<String>, ReadFailed> {
        let (helper, judged) = match &self.expect {
            Expect::Degraded {
                helper,
                delay,
                loss,
                rate,
                ..
            } => {
                let report = read_report(kube, helper).await?;
                let asked = helper_report::Asked {
                    delay: *delay,
                    loss: *loss,
                    rate: rate.as_deref(),
                };
                (
                    helper,
                    report.map(|r| helper_report::judge_degrade(&r, asked)),
                )
            }
            Expect::Stressed { helper, load, .. } => {
                let report = read_report(kube, helper).await?;
                (
                    helper,
                    report.map(|r| helper_report::judge_stress(&r, *load)),
                )
            }
            _ => return Err(ReadFailed::NotReadBefore),
        };
        match judged {
            None => {
                self.last = Some(format!("{} has reported nothing yet", name(helper)));
                Ok(None)
            }
            Some(helper_report::Judged::Seen(seen)) => Ok(Some(format!("{}: {seen}", self.says()))),
            Some(helper_report::Judged::NotSeen(instead)) => {
                self.last = Some(instead);
                Ok(None)
            }
        }
    }
}

/// The report on a helper's log, once it is complete (`None` before).
async fn read_report(
    kube: &Kube,
    helper: &ObjectRef,
) -> Result<Option<helper_report::Report>, kube::Error> {
    let namespace = helper.namespace.as_deref().unwrap_or_default();
    let params = LogParams {
        // The report comes within the first lines (after the commands that applied the fault).
        limit_bytes: Some(REPORT_WITHIN_BYTES),
        ..LogParams::default()
    };
    let log = Api::<Pod>::namespaced(kube.client().clone(), namespace)
        .logs(&helper.name, &params)
        .await?;
    let report = helper_report::Report::parse(&log);
    Ok(report.complete.then_some(report))
}

/// How much of a helper's log is read for its report.
const REPORT_WITHIN_BYTES: i64 = 64 * 1024;

/// Whether the killed pod is gone or replaced (its uid changed); `last`: what it is instead.
async fn pod_gone(
    kube: &Kube,
    pods: &mut Pods,
    pod: &ObjectRef,
    uid: &Option<String>,
    due: Option<(DateTime<Utc>, DateTime<Utc>)>,
    last: &mut Option<String>,
) -> Result<Option<String>, ReadFailed> {
    let since = |from: Option<(DateTime<Utc>, DateTime<Utc>)>| {
        from.map(|(at, _)| (Utc::now() - at).num_milliseconds() as f64 / 1000.0)
            .unwrap_or(0.0)
    };
    let found = pods.get(kube, pod).await?;
    let now = found.and_then(|p| p.metadata.uid.clone());
    match (found, uid, now) {
        (None, _, _) => Ok(Some(format!(
            "{} gone {:.1}s after the kill",
            name(pod),
            since(due)
        ))),
        (Some(_), Some(before), Some(now)) if *before != now => Ok(Some(format!(
            "{} replaced (uid {before} is now {now}) {:.1}s after the kill",
            name(pod),
            since(due)
        ))),
        (Some(p), _, _) => {
            *last = Some(match p.metadata.deletion_timestamp {
                Some(_) => "still terminating".to_owned(),
                None => "still there, same uid".to_owned(),
            });
            Ok(None)
        }
    }
}

/// Whether the container restarted (its count above `count` before, the pod the same);
/// `killed_at`: when it was terminated, where the pod says.
async fn restarted(
    kube: &Kube,
    pods: &mut Pods,
    (pod, container): (&ObjectRef, &str),
    (uid, count): (&Option<String>, i32),
    last: &mut Option<String>,
    killed_at: &mut Option<DateTime<Utc>>,
) -> Result<Option<String>, ReadFailed> {
    let found = pods.get(kube, pod).await?;
    let Some(p) = found else {
        *last = Some(format!("{} is gone", name(pod)));
        return Ok(None);
    };
    if p.metadata.uid.is_some() && p.metadata.uid != *uid {
        *last = Some(format!("{} was replaced by another pod", name(pod)));
        return Ok(None);
    }
    let now = restarts(p, container).unwrap_or(0);
    if now > count {
        *killed_at = terminated_at(p, container);
        return Ok(Some(format!(
            "container {container} of {} restarted (restartCount {count} → {now})",
            name(pod)
        )));
    }
    *last = Some(format!("restartCount still {now}"));
    Ok(None)
}

/// `namespace/name` of a pod.
fn name(pod: &ObjectRef) -> String {
    format!(
        "{}/{}",
        pod.namespace.as_deref().unwrap_or_default(),
        pod.name
    )
}

/// The restart count of `container` in `pod`'s status.
fn restarts(pod: &Pod, container: &str) -> Option<i32> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == container)
        .map(|c| c.restart_count)
}

/// When `container` last ended, as its kubelet reports it (`lastState.terminated.finishedAt`).
fn terminated_at(pod: &Pod, container: &str) -> Option<DateTime<Utc>> {
    let status = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == container)?;
    let at = status
        .last_state
        .as_ref()?
        .terminated
        .as_ref()?
        .finished_at
        .as_ref()?
        .0;
    DateTime::from_timestamp(at.as_second(), at.subsec_nanosecond().max(0) as u32)
}

/// The pods of each namespace one look reads, listed once (pods are listed, never read by name:
/// every kind that changes anything may list them in its targets' namespaces).
#[derive(Default)]
struct Pods {
    by_namespace: std::collections::BTreeMap<String, Vec<Pod>>,
}

impl Pods {
    async fn list(&mut self, kube: &Kube, namespace: &str) -> Result<&[Pod], kube::Error> {
        if !self.by_namespace.contains_key(namespace) {
            let listed = Api::<Pod>::namespaced(kube.client().clone(), namespace)
                .list(&ListParams::default())
                .await?;
            self.by_namespace.insert(namespace.to_owned(), listed.items);
        }
        Ok(self
            .by_namespace
            .get(namespace)
            .map(Vec::as_slice)
            .unwrap_or_default())
    }

    async fn get(&mut self, kube: &Kube, pod: &ObjectRef) -> Result<Option<&Pod>, kube::Error> {
        let namespace = pod.namespace.as_deref().unwrap_or_default();
        let listed = self.list(kube, namespace).await?;
        Ok(listed
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(pod.name.as_str())))
    }
}
