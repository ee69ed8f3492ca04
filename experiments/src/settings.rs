//! Each kind's own settings, as the drill file's `fault:` gives them, validated into types.

use std::time::Duration;

/// The settings of one drill's fault.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Settings {
    /// The kind takes none (probe), or its defaults.
    #[default]
    None,
    PodKill(PodKill),
    ContainerKill(ContainerKill),
    NetworkPartition(NetworkPartition),
    NodeDrain(NodeDrain),
    ResourceStress(ResourceStress),
    DependencyFailure(DependencyFailure),
    RegionFailover(Box<crate::region::RegionFailover>),
    NetworkDegrade(crate::degrade::NetworkDegrade),
}

/// `pod-kill`: evict (the default: PodDisruptionBudgets are enforced by the API server too) or
/// delete with a grace period, all at once or in waves that wait for recovery.
#[derive(Clone, Debug, PartialEq)]
pub struct PodKill {
    /// Delete instead of evicting.
    pub force: bool,
    /// The grace period the pods get; `None`: their own.
    pub grace_period: Option<Duration>,
    /// How many waves the chosen pods are killed in; the next wave waits for recovery.
    pub waves: u32,
    /// How long to wait after a wave recovered before the next.
    pub interval: Duration,
}

impl Default for PodKill {
    fn default() -> Self {
        PodKill {
            force: false,
            grace_period: None,
            waves: 1,
            interval: Duration::from_secs(120),
        }
    }
}

/// `network-partition`: NetworkPolicies that isolate the chosen pods. NetworkPolicies only allow,
/// so a partition denies all traffic in `direction` except to and from the `allow` peers.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkPartition {
    pub direction: Direction,
    pub allow: Vec<Peer>,
    /// Keep DNS (UDP and TCP 53) open for egress, so the pods fail on the partition, not on
    /// name resolution. Default true.
    pub allow_dns: bool,
}

impl Default for NetworkPartition {
    fn default() -> Self {
        NetworkPartition {
            direction: Direction::Both,
            allow: Vec::new(),
            allow_dns: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
    Both,
}

/// A peer that stays reachable during a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Pods with these labels (`matchLabels`), in the target's namespace.
    Pods(std::collections::BTreeMap<String, String>),
    /// Every pod of a namespace.
    Namespace(String),
    /// An IP block.
    Cidr(String),
}

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

/// The dependency a `dependency-failure` drill fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dependency {
    /// A Service `namespace/name` (its selector names the pods).
    Service { namespace: String, name: String },
    /// A Deployment or StatefulSet.
    Workload {
        kind: String,
        namespace: String,
        name: String,
    },
    /// Pods with these labels in a namespace.
    Pods {
        namespace: String,
        labels: std::collections::BTreeMap<String, String>,
    },
    /// Addresses outside the cluster.
    Cidrs(Vec<String>),
}

impl Dependency {
    /// The namespace the dependency lives in, when it is in the cluster.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Dependency::Service { namespace, .. }
            | Dependency::Workload { namespace, .. }
            | Dependency::Pods { namespace, .. } => Some(namespace),
            Dependency::Cidrs(_) => None,
        }
    }
}

impl std::fmt::Display for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dependency::Service { namespace, name } => write!(f, "Service {namespace}/{name}"),
            Dependency::Workload {
                kind,
                namespace,
                name,
            } => write!(f, "{kind} {namespace}/{name}"),
            Dependency::Pods { namespace, labels } => {
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "pods {} in {namespace}", labels.join(","))
            }
            Dependency::Cidrs(cidrs) => write!(f, "{}", cidrs.join(", ")),
        }
    }
}

/// How the dependency fails.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// Egress from the chosen pods to the dependency denied by NetworkPolicy.
    Block,
    /// The dependency's workload scaled to 0 and restored to its exact prior count.
    ScaleToZero,
    /// The dependency's Service points at fault-proxy pods for the drill.
    HttpFault(HttpFault),
}

/// What the fault proxy does to requests. Shares are in hundredths of a percent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpFault {
    /// Status codes answered instead of passing the request on, each with its share.
    pub errors: Vec<(u16, u32)>,
    /// Added before every request that is passed on.
    pub delay: Option<Duration>,
    /// Share of connections reset without an answer.
    pub reset: u32,
    /// The Service port to intercept (by default its first).
    pub port: Option<u16>,
}

impl HttpFault {
    /// Share of requests that fail, in hundredths of a percent.
    pub fn failing(&self) -> u32 {
        self.errors.iter().map(|(_, share)| share).sum::<u32>() + self.reset
    }

    /// The proxy's flags, as `firedrill fault-proxy` takes them.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        for (code, share) in &self.errors {
            flags.push("--error".to_owned());
            flags.push(format!("{code}:{}", percent(*share)));
        }
        if let Some(delay) = self.delay {
            flags.push("--delay".to_owned());
            flags.push(format!("{}ms", delay.as_millis()));
        }
        if self.reset > 0 {
            flags.push("--reset".to_owned());
            flags.push(percent(self.reset));
        }
        flags
    }
}

/// Hundredths of a percent as text: 1250 -> "12.5%".
pub fn percent(hundredths: u32) -> String {
    let whole = hundredths / 100;
    match hundredths % 100 {
        0 => format!("{whole}%"),
        rest if rest % 10 == 0 => format!("{whole}.{}%", rest / 10),
        rest => format!("{whole}.{rest:02}%"),
    }
}

/// `dependency-failure`: the drill's targets are the dependency's clients; the drill's probes
/// judge whether they fall back.
#[derive(Clone, Debug, PartialEq)]
pub struct DependencyFailure {
    pub dependency: Dependency,
    pub mode: Mode,
}

/// The default image of the container-kill helper (a shell, `grep` and `kill`).
pub const KILL_IMAGE: &str = "busybox:1.36";

/// `container-kill`: one named container of each chosen pod is killed (SIGKILL, as the kernel's
/// OOM killer or a crash would) and the kubelet restarts it; the pod object survives.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerKill {
    pub container: String,
    pub image: String,
}
