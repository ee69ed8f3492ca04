//! The vocabulary every fault kind plans in (ARCHITECTURE.md, "Adding a fault kind"): a plan's
//! steps in waves, the scene a kind plans from, the guard's choice, and the pieces two kinds
//! share. It imports no kind; the kinds import it.

use std::collections::BTreeMap;
use std::time::Duration;

use firedrill_rollback::{ObjectKind, ObjectRef, Step};
use firedrill_safety::cluster::{Cluster, OwnerRef};
use firedrill_safety::nodes::NodeVerdict;
use firedrill_safety::verdict::Verdict;
use serde_json::Value;

/// Why a kind that sends a helper pod to a chosen pod (container-kill, network-degrade) cannot
/// run on what the guard chose (the fire is blocked, nothing is touched): each names the pod and,
/// where a person can fix it, how.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    /// `what` needs the cluster's objects to plan, and was given none.
    #[error("{what} needs the cluster to {to}")]
    NoCluster {
        what: &'static str,
        to: &'static str,
    },
    /// A chosen pod has no node, where a host helper must go.
    #[error("pod {namespace}/{pod} is on no node")]
    NoNode { namespace: String, pod: String },
    /// container-kill: the pod has no container of that name; `has` lists those it has.
    #[error("pod {namespace}/{pod} has no container named {container:?} (it has: {}); fix fault.container", if has.is_empty() { "none reported".to_owned() } else { has.join(", ") })]
    NoContainer {
        namespace: String,
        pod: String,
        container: String,
        has: Vec<String>,
    },
    #[error("container {container:?} of pod {namespace}/{pod} is not running")]
    NotRunning {
        namespace: String,
        pod: String,
        container: String,
    },
    #[error("container {container:?} of pod {namespace}/{pod} has an id firedrill does not recognise: {id}")]
    UnknownId {
        namespace: String,
        pod: String,
        container: String,
        id: String,
    },
    /// network-degrade: the pod is on its node's network.
    #[error("pod {namespace}/{pod} uses its node's network (hostNetwork): degrading it would degrade the node and every pod on it (narrow the target's selector so that it does not match such pods)")]
    HostNetwork { namespace: String, pod: String },
    #[error("pod {namespace}/{pod} has no running container whose network firedrill could enter")]
    NoRunningContainer { namespace: String, pod: String },
}

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
    /// The helper pods the steps create and what each acts on, as the plan knows them (the
    /// runner never finds a helper again by its name).
    pub helpers: Vec<Helper>,
    /// What the fault must be seen to do for the run to judge anything (ARCHITECTURE.md,
    /// principle 10): the runner observes each while the fault is in. `None`: the kind has no
    /// effect check yet, and the run's record says so.
    pub effect: Option<Vec<Expect>>,
}

/// One thing a fault must make true, as its planner knows it; the runner reads the cluster
/// before the fault (uids, restart counts, grace periods) and after, and records what it saw.
/// Each is due once a step of the run acted on its object (directly, or through a helper
/// acting on it), or, when no step acts on it, once the fault began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The pod is gone, or replaced (another uid under its name), within its grace period
    /// (`grace`: the one the fault gives; `None`: the pod's own) and a margin.
    PodGone {
        pod: ObjectRef,
        grace: Option<Duration>,
    },
    /// The node is unschedulable (`spec.unschedulable`).
    NodeUnschedulable { node: String },
    /// The container of the pod restarted: its `restartCount` above what it was before.
    ContainerRestarted { pod: ObjectRef, container: String },
    /// No pod of the workload (a Deployment or StatefulSet) is ready.
    NoReadyPods { workload: OwnerRef },
    /// A canary pod in `pod`'s namespace connects to a pod's port before the fault (it must
    /// answer, or the check means nothing and says so) and no longer can while it is in.
    Unreachable { pod: ObjectRef, reach: Reach },
    /// dependency `http-fault`: the fault proxy the Service was pointed at counted faulted
    /// answers, in proportion to its shares (hundredths of a percent), read from its own
    /// `/metrics` on each of its pods (labelled [`PROXY_LABEL`](crate::dependency::PROXY_LABEL)
    /// = `run` in the Service's namespace, at their port named
    /// [`PROXY_METRICS_PORT_NAME`](crate::dependency::PROXY_METRICS_PORT_NAME)).
    ProxyFaulted {
        service: ObjectRef,
        run: String,
        errors: u32,
        reset: u32,
        delayed: bool,
    },
    /// region failover: Route 53's `TestDNSAnswer` for the record answers with the region taking
    /// over (`to`, whose record set holds `answers`) and with nothing only the failed region's
    /// record set holds (`failed_answers`).
    DnsAnswer(Box<DnsAnswer>),
    /// network-degrade: the helper pod reports, in its log, the qdisc and nft rules in place in
    /// the target's network namespace and the round-trip it measured there before and during
    /// (`firedrill: effect ...` lines, see degrade.sh); what was asked, to judge them by.
    Degraded {
        helper: ObjectRef,
        target: ObjectRef,
        delay: Option<Duration>,
        loss: u32,
        rate: Option<String>,
    },
    /// resource-stress: the stress pod (of the steady step) reports, in its log, the load it
    /// measured from /proc while stress-ng ran (see stress.sh).
    Stressed {
        helper: ObjectRef,
        node: String,
        load: StressLoad,
    },
}

/// The load a stress pod must be seen to hold: a percentage of each CPU, or of the memory free;
/// for io, its `--hdd` workers writing and reading (no rate is asked: a floor a worker, see
/// helper_report.rs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StressLoad {
    Cpu(u32),
    Memory(u32),
    Io { workers: u32 },
}

/// The record a region failover moves, and the answers each side of it gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsAnswer {
    pub zone: String,
    pub name: String,
    pub record_type: String,
    /// The Route 53 endpoint (`None`: AWS's).
    pub endpoint: Option<String>,
    pub to: String,
    pub answers: Vec<String>,
    pub from: String,
    pub failed_answers: Vec<String>,
}

/// How a canary tries a NetworkPolicy fault (network-partition, dependency-failure's block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach {
    /// From outside the partition into the marked pod, whose ingress is denied.
    Into,
    /// Carrying the mark itself, out to this pod, which the marked pods' egress may not reach.
    OutTo(ObjectRef),
    /// From outside the partition into the first of these marked pods that declares a TCP port
    /// (a zone's pods: which of them declare one is read before the fault).
    IntoOneOf(Vec<ObjectRef>),
    /// No canary can tell, and why (never counted as seen).
    Unchecked(String),
}

/// The label keys a canary pod carries (those every artifact carries, and its own): an `allow`
/// peer selecting only these would admit it.
pub const CANARY_LABEL_KEYS: [&str; 5] = [
    firedrill_rollback::LABEL_RUN,
    firedrill_rollback::LABEL_DRILL,
    firedrill_rollback::LABEL_ARTIFACT,
    "app.kubernetes.io/name",
    "firedrill.io/canary",
];

impl Expect {
    /// The object a step acts on for this to become due.
    pub fn object(&self) -> ObjectRef {
        match self {
            Expect::PodGone { pod, .. }
            | Expect::ContainerRestarted { pod, .. }
            | Expect::Unreachable { pod, .. } => pod.clone(),
            Expect::NodeUnschedulable { node } => ObjectRef::node(node),
            Expect::Degraded { helper, .. } | Expect::Stressed { helper, .. } => helper.clone(),
            Expect::NoReadyPods { workload } => {
                let kind = match workload.kind {
                    firedrill_safety::cluster::OwnerKind::StatefulSet => ObjectKind::StatefulSet,
                    _ => ObjectKind::Deployment,
                };
                ObjectRef::namespaced(kind, &workload.namespace, &workload.name)
            }
            Expect::ProxyFaulted { service, .. } => service.clone(),
            // Route 53 holds no Kubernetes object: a name no node can have (it holds a space),
            // which no step acts on, so the answer is due when the fault (its DNS change) begins.
            Expect::DnsAnswer(dns) => ObjectRef::node(&format!("route53 {}", dns.name)),
        }
    }
}

/// A pod a step creates to act on something else: the pod whose container it kills or whose
/// network it slows, the node it loads.
#[derive(Clone, Debug, PartialEq)]
pub struct Helper {
    pub pod: ObjectRef,
    /// What it acts on (Events for it go there too); also its `firedrill.io/acts-on` annotation.
    pub acts_on: ObjectRef,
    /// It ends by itself when its work is done, so ending in failure means the fault did not go
    /// in (container-kill's, network-degrade's); a stress pod is not watched that way.
    pub fails_run: bool,
}

impl Helper {
    /// The helper `object` is (when it names itself), acting on `acts_on`.
    pub(crate) fn of(object: &Value, acts_on: ObjectRef, fails_run: bool) -> Option<Helper> {
        Some(Helper {
            pod: ObjectRef::of(object)?,
            acts_on,
            fails_run,
        })
    }
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
    pub dns: Option<&'a DnsFacts>,
}

impl Scene<'_> {
    pub(crate) fn verdict(&self) -> Option<&Verdict> {
        self.choice.map(|c| &c.verdict)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Choice {
    pub verdict: Verdict,
    /// For node faults: the nodes, with every pod on them the fault hurts, and the nodes left alone.
    pub nodes: Option<NodeVerdict>,
}

/// What the runner read of Route 53 before the fire, by region: each region's record set and
/// health check as the adapter reads them, and whether Route 53 reports the region healthy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DnsFacts {
    pub record_sets: BTreeMap<String, Value>,
    pub health_checks: BTreeMap<String, Value>,
    pub healthy: BTreeMap<String, bool>,
}

/// Names the object a helper acts on (`Kind/namespace/name`, or `Node/name`): firedrill leaves
/// its Events there too.
pub const ACTS_ON: &str = "firedrill.io/acts-on";

/// The label that marks the pods a partition isolates: NetworkPolicies select by label, and the
/// guard chose pods by name.
pub const PARTITION_LABEL: &str = firedrill_rollback::scope::PARTITION_LABEL;

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
