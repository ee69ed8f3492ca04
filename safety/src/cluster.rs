//! The part of a cluster the guard looks at, in plain values. The runner fills it from a live
//! cluster or from a `kubectl get -o yaml` snapshot; the guard never talks to Kubernetes itself.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::{Percent, Selector};

pub type Labels = BTreeMap<String, String>;

/// The workload kinds whose controllers recreate a deleted pod.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OwnerKind {
    Deployment,
    StatefulSet,
    ReplicaSet,
    DaemonSet,
    /// Anything else (Job, a custom controller): its pods are never targeted.
    Other(String),
}

impl OwnerKind {
    pub fn parse(kind: &str) -> Self {
        match kind {
            "Deployment" => OwnerKind::Deployment,
            "StatefulSet" => OwnerKind::StatefulSet,
            "ReplicaSet" => OwnerKind::ReplicaSet,
            "DaemonSet" => OwnerKind::DaemonSet,
            other => OwnerKind::Other(other.to_owned()),
        }
    }

    pub fn recreates_pods(&self) -> bool {
        !matches!(self, OwnerKind::Other(_))
    }
}

impl fmt::Display for OwnerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnerKind::Deployment => f.write_str("Deployment"),
            OwnerKind::StatefulSet => f.write_str("StatefulSet"),
            OwnerKind::ReplicaSet => f.write_str("ReplicaSet"),
            OwnerKind::DaemonSet => f.write_str("DaemonSet"),
            OwnerKind::Other(kind) => f.write_str(kind),
        }
    }
}

/// The top-level workload a pod belongs to (a Deployment rather than its ReplicaSet).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OwnerRef {
    pub kind: OwnerKind,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for OwnerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Owner {
    pub key: OwnerRef,
    pub labels: Labels,
    /// Desired replicas (for a DaemonSet, the pods it wants scheduled).
    pub desired: u32,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub owner: Option<OwnerRef>,
    /// Phase Running and condition Ready: the only pods that count as healthy.
    pub running_and_ready: bool,
    /// The phase, for messages.
    pub phase: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: i64,
    pub node: Option<String>,
    /// What the scheduler reserves for it: its containers' requests summed (an absent request
    /// is 0, as Kubernetes schedules).
    pub requests: Resources,
    /// Where the scheduler may put it again when it is evicted.
    pub placement: Placement,
}

/// CPU and memory, exactly: what a pod requests or a node can allocate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Resources {
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

/// The constraints a pod puts on the node it runs on (what the snapshot shows of them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Placement {
    /// `spec.nodeSelector`: every label must be on the node.
    pub node_selector: Labels,
    /// `requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`: `None` when the pod
    /// has no required node affinity; else some term must match.
    pub affinity: Option<Vec<NodeSelectorTerm>>,
    pub tolerations: Vec<Toleration>,
}

/// One term of a required node affinity: every requirement holds (an empty term matches no
/// node, as in Kubernetes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeSelectorTerm {
    /// `matchExpressions`, on the node's labels.
    pub expressions: Vec<NodeRequirement>,
    /// `matchFields`, on the node's fields (`metadata.name`).
    pub fields: Vec<NodeRequirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRequirement {
    pub key: String,
    pub operator: NodeOperator,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeOperator {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    /// The label's value, read as an integer, is greater than this.
    Gt(i64),
    Lt(i64),
}

/// What a taint does to pods that do not tolerate it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaintEffect {
    NoSchedule,
    /// A preference only: the scheduler still places pods there when it must.
    PreferNoSchedule,
    NoExecute,
}

impl TaintEffect {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "NoSchedule" => Some(TaintEffect::NoSchedule),
            "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
            "NoExecute" => Some(TaintEffect::NoExecute),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Toleration {
    /// Empty with `exists`: tolerates every taint.
    pub key: String,
    /// Operator `Exists` (any value); else `Equal` (the default).
    pub exists: bool,
    pub value: String,
    /// `None`: every effect.
    pub effect: Option<TaintEffect>,
}

/// A number or a percentage, as PodDisruptionBudgets write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(u32),
    Percent(Percent),
}

impl fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrPercent::Int(n) => write!(f, "{n}"),
            IntOrPercent::Percent(p) => write!(f, "{p}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pdb {
    pub namespace: String,
    pub name: String,
    /// `None`: the budget selects no pods (a null selector in policy/v1).
    pub selector: Option<Selector>,
    pub min_available: Option<IntOrPercent>,
    pub max_unavailable: Option<IntOrPercent>,
    /// `status.disruptionsAllowed`, when the snapshot has it.
    pub disruptions_allowed: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Namespace {
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
}

/// A node: what draining or stressing it must know.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    pub name: String,
    /// `spec.unschedulable`: cordoned already.
    pub unschedulable: bool,
    /// Its Ready condition is True: pods evicted elsewhere can land on it.
    pub ready: bool,
    pub labels: Labels,
    /// `status.allocatable` (CPU and memory); `None` when the snapshot does not say.
    pub allocatable: Option<Resources>,
    pub taints: Vec<Taint>,
}

/// One port of a Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    /// `targetPort` when it is a number; `None` when it is a name (or absent: then `port`).
    pub target_port: Option<u16>,
    pub target_port_name: Option<String>,
    /// `TCP` (the default), `UDP` or `SCTP`.
    pub protocol: String,
    pub app_protocol: Option<String>,
}

/// A Service, for the faults that act on a dependency.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    /// `None`: a Service without a selector (its endpoints are managed by hand).
    pub selector: Option<Labels>,
    pub ports: Vec<ServicePort>,
}

/// The containers of one pod as its status reports them: name and runtime id
/// (`containerd://...`), the id `None` when the container is not running.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodContainers {
    pub namespace: String,
    pub pod: String,
    pub containers: Vec<(String, Option<String>)>,
    /// The pod shares its node's network (`hostNetwork`): a fault on its network hits the node.
    pub host_network: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cluster {
    pub namespaces: Vec<Namespace>,
    pub owners: Vec<Owner>,
    pub pods: Vec<Pod>,
    pub pdbs: Vec<Pdb>,
    pub nodes: Vec<Node>,
    pub services: Vec<Service>,
    /// Container names and ids of the pods, for faults aimed at one container.
    pub containers: Vec<PodContainers>,
}

impl Cluster {
    /// The namespaces by name, as `verdict::protection` looks them up.
    pub fn namespace_index(&self) -> HashMap<&str, &Namespace> {
        self.namespaces
            .iter()
            .map(|n| (n.name.as_str(), n))
            .collect()
    }

    /// The containers pod `namespace/name` reports, when its status was read.
    pub fn containers_of(&self, namespace: &str, name: &str) -> Option<&PodContainers> {
        self.containers
            .iter()
            .find(|c| c.namespace == namespace && c.pod == name)
    }
}
