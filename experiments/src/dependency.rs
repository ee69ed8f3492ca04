//! `dependency-failure`: the dependency blocked by NetworkPolicy, scaled to zero, or answered by
//! the fault proxy.

use std::collections::BTreeMap;
use std::time::Duration;

use firedrill_rollback::{ObjectKind, ObjectRef, Step};
use firedrill_safety::cluster::{Cluster, OwnerKind, Service};
use firedrill_safety::verdict::{floor, protection, Request};
use serde_json::{json, Value};

use crate::plan::{isolate, Expect, Plan, Reach, Scene, PARTITION_LABEL};

mod read;
pub use read::{parse_error, parse_share, FaultError};

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

/// The label of the fault proxy's pods; the dependency's Service selects it during the drill.
pub const PROXY_LABEL: &str = firedrill_rollback::scope::PROXY_LABEL;

/// The port the proxy listens on when the Service's target port is a name.
const PROXY_PORT: u16 = 8080;

/// The port the proxy serves its counts on (`/metrics`), and its name in the pod: the run reads
/// them back to tell whether the fault took effect.
const PROXY_METRICS_PORT: u16 = 9464;
pub const PROXY_METRICS_PORT_NAME: &str = "proxy-metrics";

/// `prefix-run`, within the 63 characters of a Service name: a long run id is cut and a hash of
/// it keeps the name unique.
fn service_name(prefix: &str, run: &str) -> String {
    let name = format!("{prefix}-{run}");
    if name.len() <= 63 {
        return name;
    }
    let hash = run.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let keep = 63 - prefix.len() - 1 - 9;
    format!(
        "{prefix}-{}-{:08x}",
        run[..keep].trim_end_matches('-'),
        hash as u32
    )
}

/// Why a dependency cannot be failed the way the drill says (the fire is blocked, nothing is
/// touched). `object` fields name what was judged for a person ("the dependency cache/redis").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DependencyError {
    #[error("kube-system is always protected")]
    KubeSystem,
    #[error("{namespace} is firedrill's own namespace, always protected")]
    OwnNamespace { namespace: String },
    #[error("{object} is protected by safety.protected {glob}")]
    Protected { object: String, glob: String },
    #[error("{object} is not in the cluster")]
    Missing { object: String },
    #[error("{object} was hit {ago} ago; safety.cooldown is {cooldown}")]
    Cooldown {
        object: String,
        ago: String,
        cooldown: String,
    },
    /// A pod of the workload is one the guard would never target; `why` is the guard's rule.
    #[error("{object}'s pod {namespace}/{pod}: {why}")]
    PodProtected {
        object: String,
        namespace: String,
        pod: String,
        why: String,
    },
    #[error("PodDisruptionBudget {namespace}/{name} guards {object}'s pods; scale-to-zero would take them all (cut it off with a NetworkPolicy instead)")]
    Budget {
        object: String,
        namespace: String,
        name: String,
    },
    #[error("safety.min_healthy keeps {min} ready pod{} of {owner}; scale-to-zero would leave none", if *.min == 1 { "" } else { "s" })]
    Floor { min: i64, owner: String },
    #[error("{mode} cannot fail {dependency}")]
    CannotFail {
        mode: &'static str,
        dependency: String,
    },
    /// The mode needs another kind of dependency (`what`: "workload", "Service").
    #[error("{mode} needs a {what} dependency")]
    Needs {
        mode: &'static str,
        what: &'static str,
    },
    #[error("{kind} cannot be scaled (Deployment or StatefulSet)")]
    NotScalable { kind: String },
    #[error("the Service {namespace}/{name} has no selector, so it cannot be pointed at the fault proxy")]
    NoSelectorToProxy { namespace: String, name: String },
    #[error("the Service {namespace}/{name} has no selector; block its addresses with `cidrs`")]
    NoSelectorToBlock { namespace: String, name: String },
    #[error("the dependency {kind} {namespace}/{name} has no running pods to block")]
    NoPodsToBlock {
        kind: String,
        namespace: String,
        name: String,
    },
    #[error("port {port} of the Service {namespace}/{name} is not known to speak HTTP/1.1 (protocol {protocol}, name {}, appProtocol {}); the fault proxy would fail every request of another protocol: name the port `http` or set `appProtocol: http` if it serves HTTP, or fail the dependency with `block`", .port_name.as_deref().unwrap_or("none"), .app_protocol.as_deref().unwrap_or("none"))]
    NotHttp {
        namespace: String,
        name: String,
        port: u16,
        protocol: String,
        port_name: Option<String>,
        app_protocol: Option<String>,
    },
    #[error("the Service {namespace}/{name} has no port {port} (it has {})", .ports.join(", "))]
    NoPort {
        namespace: String,
        name: String,
        port: u16,
        ports: Vec<String>,
    },
    #[error("the Service {namespace}/{name} has no ports")]
    NoPorts { namespace: String, name: String },
    /// The proxy takes over one port; `kept` is the one asked for (None: none was).
    #[error("the Service {namespace}/{name} has {} ports ({}); pointing it at the proxy would cut all but {}: give the dependency a Service with one port", .ports.len(), .ports.join(", "), .kept.map_or_else(|| "one".to_owned(), |p| p.to_string()))]
    ManyPorts {
        namespace: String,
        name: String,
        ports: Vec<String>,
        kept: Option<u16>,
    },
    #[error("{what} needs the cluster to {to}")]
    NoCluster {
        what: &'static str,
        to: &'static str,
    },
}

fn always_protected(namespace: &str, request: &Request) -> Option<DependencyError> {
    if namespace == "kube-system" {
        return Some(DependencyError::KubeSystem);
    }
    (namespace == request.own_namespace).then(|| DependencyError::OwnNamespace {
        namespace: namespace.to_owned(),
    })
}

fn service<'c>(
    cluster: &'c Cluster,
    namespace: &str,
    name: &str,
) -> Result<&'c Service, DependencyError> {
    cluster
        .services
        .iter()
        .find(|s| s.namespace == namespace && s.name == name)
        .ok_or_else(|| DependencyError::Missing {
            object: format!("the dependency Service {namespace}/{name}"),
        })
}

/// The dependency's Deployment or StatefulSet in the cluster.
fn workload<'c>(
    cluster: &'c Cluster,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<&'c firedrill_safety::cluster::Owner, DependencyError> {
    cluster
        .owners
        .iter()
        .find(|o| {
            o.key.kind.to_string() == kind && o.key.namespace == namespace && o.key.name == name
        })
        .ok_or_else(|| DependencyError::Missing {
            object: format!("the dependency {kind} {namespace}/{name}"),
        })
}

/// Whether the dependency may be failed this way: it exists, it is not protected, and taking
/// it down crosses no `min_healthy` floor.
pub fn judge(
    settings: &DependencyFailure,
    cluster: &Cluster,
    request: &Request,
) -> Result<(), DependencyError> {
    let policy = request.policy;
    let listed = |namespace: &str, name: &str| {
        policy
            .protected
            .iter()
            .find(|g| g.matches(namespace, name))
            .map(|g| DependencyError::Protected {
                object: format!("the dependency {namespace}/{name}"),
                glob: g.to_string(),
            })
    };
    match (&settings.mode, &settings.dependency) {
        // Blocking cuts the chosen clients' path; the dependency is not touched, but it must
        // be there, or the drill would pass having blocked nothing.
        (Mode::Block, Dependency::Service { namespace, name }) => {
            service(cluster, namespace, name).map(|_| ())
        }
        (
            Mode::Block,
            Dependency::Workload {
                kind,
                namespace,
                name,
            },
        ) => workload(cluster, kind, namespace, name).map(|_| ()),
        (Mode::Block, _) => Ok(()),
        (
            Mode::ScaleToZero,
            Dependency::Workload {
                kind,
                namespace,
                name,
            },
        ) => {
            if let Some(why) =
                always_protected(namespace, request).or_else(|| listed(namespace, name))
            {
                return Err(why);
            }
            let owner = workload(cluster, kind, namespace, name)?;
            judge_scale_to_zero(&owner.key, "the dependency", cluster, request)
        }
        (Mode::HttpFault(http), Dependency::Service { namespace, name }) => {
            if let Some(why) =
                always_protected(namespace, request).or_else(|| listed(namespace, name))
            {
                return Err(why);
            }
            let service = service(cluster, namespace, name)?;
            if service.selector.as_ref().is_none_or(BTreeMap::is_empty) {
                return Err(DependencyError::NoSelectorToProxy {
                    namespace: namespace.clone(),
                    name: name.clone(),
                });
            }
            proxy_port(service, http).map(|_| ())
        }
        (mode, dependency) => Err(DependencyError::CannotFail {
            mode: mode_name(mode),
            dependency: dependency.to_string(),
        }),
    }
}

/// Whether a workload may be scaled to zero: not protected, not hit within the cooldown, every
/// pod one the guard would target, no PodDisruptionBudget guarding it and no `min_healthy`
/// floor above zero. `what` names it in messages ("the dependency").
pub fn judge_scale_to_zero(
    key: &firedrill_safety::cluster::OwnerRef,
    what: &str,
    cluster: &Cluster,
    request: &Request,
) -> Result<(), DependencyError> {
    let policy = request.policy;
    if let Some(why) = always_protected(&key.namespace, request) {
        return Err(why);
    }
    if let Some(g) = policy
        .protected
        .iter()
        .find(|g| g.matches(&key.namespace, &key.name))
    {
        return Err(DependencyError::Protected {
            object: format!("{what} {key}"),
            glob: g.to_string(),
        });
    }
    let owner = cluster
        .owners
        .iter()
        .find(|o| &o.key == key)
        .ok_or_else(|| DependencyError::Missing {
            object: format!("{what} {key}"),
        })?;
    let cooldown = policy.cooldown.as_secs() as i64;
    if let Some(at) = request
        .recent_hits
        .get(&owner.key)
        .filter(|&&at| cooldown > 0 && request.now - at < cooldown)
    {
        return Err(DependencyError::Cooldown {
            object: format!("{what} {}", owner.key),
            ago: firedrill_safety::verdict::human((request.now - at).max(0) as u64),
            cooldown: firedrill_safety::verdict::human(cooldown as u64),
        });
    }
    let namespaces = cluster.namespace_index();
    for pod in cluster
        .pods
        .iter()
        .filter(|p| p.owner.as_ref() == Some(&owner.key))
    {
        // Every rule a target obeys but health and age: protected, never-target,
        // opt-in, and a known controller that brings the pods back.
        if let Some(why) = protection(pod, request, &namespaces, Some(owner)) {
            return Err(DependencyError::PodProtected {
                object: what.to_owned(),
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
                why,
            });
        }
        if let Some(pdb) = cluster.pdbs.iter().find(|b| {
            b.namespace == pod.namespace
                && b.selector.as_ref().is_some_and(|s| s.matches(&pod.labels))
        }) {
            return Err(DependencyError::Budget {
                object: what.to_owned(),
                namespace: pdb.namespace.clone(),
                name: pdb.name.clone(),
            });
        }
        let min = if policy
            .min_healthy
            .iter()
            .any(|r| r.namespace == pod.namespace && r.selector.matches(&pod.labels))
        {
            floor(policy, pod, owner)
        } else {
            0
        };
        if min > 0 {
            return Err(DependencyError::Floor {
                min,
                owner: owner.key.to_string(),
            });
        }
    }
    Ok(())
}

pub fn mode_name(mode: &Mode) -> &'static str {
    match mode {
        Mode::Block => "block",
        Mode::ScaleToZero => "scale-to-zero",
        Mode::HttpFault(_) => "http-fault",
    }
}

/// The Service port the proxy takes over (the one asked for, else the only one), if it speaks
/// HTTP: the proxy is HTTP/1.1 and would fail every request of anything else.
fn proxy_port<'s>(
    service: &'s Service,
    http: &HttpFault,
) -> Result<&'s firedrill_safety::cluster::ServicePort, DependencyError> {
    let port = any_port(service, http)?;
    let named_http = port.name.as_deref().is_some_and(|n| n.starts_with("http"));
    let says_http = port
        .app_protocol
        .as_deref()
        .map(|p| p == "http" || p == "kubernetes.io/http");
    match (port.protocol.as_str(), says_http, named_http) {
        ("TCP", Some(true), _) | ("TCP", None, true) => Ok(port),
        _ => Err(DependencyError::NotHttp {
            namespace: service.namespace.clone(),
            name: service.name.clone(),
            port: port.port,
            protocol: port.protocol.clone(),
            port_name: port.name.clone(),
            app_protocol: port.app_protocol.clone(),
        }),
    }
}

fn any_port<'s>(
    service: &'s Service,
    http: &HttpFault,
) -> Result<&'s firedrill_safety::cluster::ServicePort, DependencyError> {
    let (namespace, name) = (service.namespace.clone(), service.name.clone());
    let ports: Vec<String> = service.ports.iter().map(|p| p.port.to_string()).collect();
    match http.port {
        Some(port) => {
            let p = service
                .ports
                .iter()
                .find(|p| p.port == port)
                .ok_or_else(|| DependencyError::NoPort {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    port,
                    ports: ports.clone(),
                })?;
            if service.ports.len() > 1 {
                return Err(DependencyError::ManyPorts {
                    namespace,
                    name,
                    ports,
                    kept: Some(p.port),
                });
            }
            Ok(p)
        }
        None => match service.ports.as_slice() {
            [one] => Ok(one),
            [] => Err(DependencyError::NoPorts { namespace, name }),
            _ => Err(DependencyError::ManyPorts {
                namespace,
                name,
                ports,
                kept: None,
            }),
        },
    }
}

pub fn plan(
    run: &str,
    settings: &DependencyFailure,
    scene: &Scene,
) -> Result<Plan, DependencyError> {
    match &settings.mode {
        Mode::Block => block(run, &settings.dependency, scene),
        Mode::ScaleToZero => scale_to_zero(&settings.dependency, scene),
        Mode::HttpFault(http) => http_fault(run, &settings.dependency, http, scene),
    }
}

/// Egress from the chosen pods to the dependency denied, one NetworkPolicy per namespace.
fn block(run: &str, dependency: &Dependency, scene: &Scene) -> Result<Plan, DependencyError> {
    let cluster = scene.cluster;
    let deny = block_rules(dependency, cluster)?;
    let verdict = scene.choice.map(|c| &c.verdict);
    // One canary, marked like the chosen clients, tries to reach a pod of the dependency.
    let effect = verdict.and_then(|v| v.targets.first()).map(|t| {
        vec![Expect::Unreachable {
            pod: ObjectRef::namespaced(ObjectKind::Pod, &t.namespace, &t.name),
            reach: block_reach(dependency, cluster),
        }]
    });
    Ok(Plan {
        waves: vec![isolate(run, verdict, |namespace| {
            block_policy(run, namespace, &deny)
        })],
        effect,
        ..Plan::default()
    })
}

/// The dependency's pod a marked canary tries to reach (a Running and Ready one first), or why
/// there is none.
fn block_reach(dependency: &Dependency, cluster: Option<&Cluster>) -> Reach {
    let has = |labels: &BTreeMap<String, String>, pod: &firedrill_safety::cluster::Pod| {
        labels.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
    };
    let Some(cluster) = cluster else {
        return Reach::Unchecked(format!("the pods of {dependency} were not read"));
    };
    let mut pods: Vec<&firedrill_safety::cluster::Pod> = match dependency {
        Dependency::Cidrs(_) => {
            return Reach::Unchecked(format!(
                "the dependency is addresses outside the cluster ({dependency}): no pod and port to try"
            ))
        }
        Dependency::Pods { namespace, labels } => cluster
            .pods
            .iter()
            .filter(|p| &p.namespace == namespace && has(labels, p))
            .collect(),
        Dependency::Service { namespace, name } => {
            let selector = service(cluster, namespace, name)
                .ok()
                .and_then(|s| s.selector.clone())
                .unwrap_or_default();
            cluster
                .pods
                .iter()
                .filter(|p| &p.namespace == namespace && !selector.is_empty() && has(&selector, p))
                .collect()
        }
        Dependency::Workload {
            kind,
            namespace,
            name,
        } => match workload(cluster, kind, namespace, name) {
            Ok(owner) => cluster
                .pods
                .iter()
                .filter(|p| p.owner.as_ref() == Some(&owner.key))
                .collect(),
            Err(_) => Vec::new(),
        },
    };
    pods.sort_by_key(|p| (!p.running_and_ready, p.name.clone()));
    match pods.first() {
        Some(p) => Reach::OutTo(ObjectRef::namespaced(
            ObjectKind::Pod,
            &p.namespace,
            &p.name,
        )),
        None => Reach::Unchecked(format!("no pod of {dependency} to try")),
    }
}

/// The dependency's Deployment or StatefulSet scaled from its current replicas to 0.
fn scale_to_zero(dependency: &Dependency, scene: &Scene) -> Result<Plan, DependencyError> {
    let Dependency::Workload {
        kind,
        namespace,
        name,
    } = dependency
    else {
        return Err(DependencyError::Needs {
            mode: "scale-to-zero",
            what: "workload",
        });
    };
    let cluster = scene.cluster.ok_or(DependencyError::NoCluster {
        what: "scale-to-zero",
        to: "read the current replicas",
    })?;
    let owner = workload(cluster, kind, namespace, name)?;
    let object_kind = match owner.key.kind {
        OwnerKind::Deployment => ObjectKind::Deployment,
        OwnerKind::StatefulSet => ObjectKind::StatefulSet,
        _ => return Err(DependencyError::NotScalable { kind: kind.clone() }),
    };
    Ok(Plan {
        waves: vec![vec![Step::scale(
            ObjectRef::namespaced(object_kind, namespace, name),
            i64::from(owner.desired),
            0,
            None,
        )]],
        hits: vec![owner.key.clone()],
        // Scaled to zero: no pod of it ready.
        effect: Some(vec![Expect::NoReadyPods {
            workload: owner.key.clone(),
        }]),
        ..Plan::default()
    })
}

/// A fault proxy put in front of the dependency's Service: first (preparatory) an upstream
/// Service to the real pods and the proxy's Deployment, then the Service's selector swapped to
/// the proxy.
fn http_fault(
    run: &str,
    dependency: &Dependency,
    http: &HttpFault,
    scene: &Scene,
) -> Result<Plan, DependencyError> {
    let Dependency::Service { namespace, name } = dependency else {
        return Err(DependencyError::Needs {
            mode: "http-fault",
            what: "Service",
        });
    };
    let cluster = scene.cluster.ok_or(DependencyError::NoCluster {
        what: "http-fault",
        to: "read the Service",
    })?;
    let service = service(cluster, namespace, name)?;
    let port = proxy_port(service, http)?;
    let selector = service.selector.clone().unwrap_or_default();
    let upstream = service_name("firedrill-up", run);
    let listen = port
        .target_port
        .filter(|_| port.target_port_name.is_none())
        .unwrap_or(PROXY_PORT);
    let metrics = match listen {
        PROXY_METRICS_PORT => PROXY_METRICS_PORT + 1,
        _ => PROXY_METRICS_PORT,
    };
    let mut prepare = Vec::new();
    prepare.extend(Step::create(upstream_service(
        namespace, &upstream, &selector, port,
    )));
    let proxy = format!("firedrill-proxy-{run}");
    let mut args = vec![
        "fault-proxy".to_owned(),
        "--listen".to_owned(),
        format!("0.0.0.0:{listen}"),
        "--upstream".to_owned(),
        format!("http://{upstream}.{namespace}.svc:{}", port.port),
        "--until".to_owned(),
        scene.expires.to_owned(),
        "--metrics".to_owned(),
        format!("0.0.0.0:{metrics}"),
    ];
    args.extend(http.flags());
    prepare.extend(Step::create(proxy_deployment(
        run,
        namespace,
        &proxy,
        scene.image,
        args,
        (listen, metrics),
        port.target_port_name.as_deref(),
    )));
    let swap = Step::swap_selector(
        ObjectRef::namespaced(ObjectKind::Service, namespace, name),
        selector,
        BTreeMap::from([(PROXY_LABEL.to_owned(), run.to_owned())]),
    );
    // The proxy counted faulted answers, from the swap on.
    let effect = Expect::ProxyFaulted {
        service: ObjectRef::namespaced(ObjectKind::Service, namespace, name),
        run: run.to_owned(),
        errors: http.errors.iter().map(|(_, share)| share).sum(),
        reset: http.reset,
        delayed: http.delay.is_some(),
    };
    Ok(Plan {
        waves: vec![prepare, vec![swap]],
        wait_for_recovery: true,
        preparatory: 1,
        affected: vec![firedrill_safety::cluster::OwnerRef {
            kind: OwnerKind::Deployment,
            namespace: namespace.clone(),
            name: proxy,
        }],
        effect: Some(vec![effect]),
        ..Plan::default()
    })
}

/// The Service the proxy passes requests on to: the dependency's own selector and port.
fn upstream_service(
    namespace: &str,
    upstream: &str,
    selector: &BTreeMap<String, String>,
    port: &firedrill_safety::cluster::ServicePort,
) -> Value {
    let target: Value = match (&port.target_port, &port.target_port_name) {
        (_, Some(name)) => json!(name),
        (Some(n), None) => json!(n),
        (None, None) => json!(port.port),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": upstream, "namespace": namespace },
        "spec": { "selector": selector, "ports": [{ "name": "upstream", "port": port.port, "targetPort": target }] },
    })
}

/// The fault proxy's Deployment: two replicas listening on the dependency's target port (named
/// as the Service names it), restricted Pod Security.
fn proxy_deployment(
    run: &str,
    namespace: &str,
    proxy: &str,
    image: &str,
    args: Vec<String>,
    (listen, metrics): (u16, u16),
    port_name: Option<&str>,
) -> Value {
    let mut container_port = json!({ "containerPort": listen });
    if let Some(name) = port_name {
        container_port["name"] = json!(name);
    }
    let metrics_port = json!({ "containerPort": metrics, "name": PROXY_METRICS_PORT_NAME });
    let mut pod_security = json!({ "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": { "type": "RuntimeDefault" } });
    if listen < 1024 {
        // A port below 1024 as a non-root user without capabilities: the namespaced,
        // "safe" sysctl that lets this pod bind it (allowed at Pod Security restricted).
        pod_security["sysctls"] =
            json!([{ "name": "net.ipv4.ip_unprivileged_port_start", "value": "0" }]);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": proxy, "namespace": namespace, "labels": { "app.kubernetes.io/name": "firedrill-fault-proxy" } },
        "spec": {
            "replicas": 2,
            "selector": { "matchLabels": { PROXY_LABEL: run } },
            "template": {
                "metadata": { "labels": { PROXY_LABEL: run, "app.kubernetes.io/name": "firedrill-fault-proxy", "firedrill.io/run": run } },
                "spec": {
                    "automountServiceAccountToken": false,
                    "enableServiceLinks": false,
                    "terminationGracePeriodSeconds": 5,
                    "securityContext": pod_security,
                    "containers": [{
                        "name": "fault-proxy",
                        "image": image,
                        "args": args,
                        "ports": [container_port, metrics_port],
                        "readinessProbe": { "tcpSocket": { "port": listen }, "periodSeconds": 2 },
                        "resources": { "requests": { "cpu": "50m", "memory": "32Mi" }, "limits": { "cpu": "1", "memory": "128Mi" } },
                        "securityContext": { "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": { "drop": ["ALL"] } },
                    }],
                },
            },
        },
    })
}

/// The egress peers that stay open when `dependency` is blocked: NetworkPolicies only allow, so
/// "everything but the dependency" is written out.
fn block_rules(
    dependency: &Dependency,
    cluster: Option<&Cluster>,
) -> Result<Vec<Value>, DependencyError> {
    let pods_but = |namespace: &str, labels: &BTreeMap<String, String>| -> Vec<Value> {
        let mut peers = vec![json!({ "namespaceSelector": { "matchExpressions": [
            { "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [namespace] }
        ] } })];
        // A pod is the dependency when it has every label; any label that differs (or is
        // missing: NotIn matches that too) makes it another pod.
        for (key, value) in labels {
            peers.push(json!({
                "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": namespace } },
                "podSelector": { "matchExpressions": [{ "key": key, "operator": "NotIn", "values": [value] }] },
            }));
        }
        peers
    };
    match dependency {
        Dependency::Pods { namespace, labels } => Ok(pods_but(namespace, labels)),
        Dependency::Service { namespace, name } => {
            let cluster = cluster.ok_or(DependencyError::NoCluster {
                what: "blocking a Service",
                to: "read its selector",
            })?;
            let service = service(cluster, namespace, name)?;
            match &service.selector {
                Some(labels) if !labels.is_empty() => Ok(pods_but(namespace, labels)),
                _ => Err(DependencyError::NoSelectorToBlock {
                    namespace: namespace.clone(),
                    name: name.clone(),
                }),
            }
        }
        Dependency::Cidrs(cidrs) => {
            let (v6, v4): (Vec<&String>, Vec<&String>) =
                cidrs.iter().partition(|c| c.contains(':'));
            let mut peers = vec![json!({ "namespaceSelector": {} })];
            peers.push(json!({ "ipBlock": { "cidr": "0.0.0.0/0", "except": v4 } }));
            peers.push(json!({ "ipBlock": { "cidr": "::/0", "except": v6 } }));
            for peer in &mut peers {
                if peer["ipBlock"]["except"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
                {
                    peer["ipBlock"].as_object_mut().map(|b| b.remove("except"));
                }
            }
            Ok(peers)
        }
        Dependency::Workload {
            kind,
            namespace,
            name,
        } => {
            let cluster = cluster.ok_or(DependencyError::NoCluster {
                what: "blocking a workload",
                to: "read its labels",
            })?;
            let owner = workload(cluster, kind, namespace, name)?;
            // Its pods' labels: those every pod of it shares.
            let mut shared: Option<BTreeMap<String, String>> = None;
            for pod in cluster
                .pods
                .iter()
                .filter(|p| p.owner.as_ref() == Some(&owner.key))
            {
                shared = Some(match shared {
                    None => pod.labels.clone(),
                    Some(s) => s
                        .into_iter()
                        .filter(|(k, v)| pod.labels.get(k) == Some(v))
                        .collect(),
                });
            }
            // Labels a controller gives each pod or revision are not the workload's: a pod of
            // the next rollout would not carry them and would escape the block.
            let shared = shared.map(|mut s| {
                for key in [
                    "pod-template-hash",
                    "controller-revision-hash",
                    "statefulset.kubernetes.io/pod-name",
                    "apps.kubernetes.io/pod-index",
                ] {
                    s.remove(key);
                }
                s
            });
            match shared.filter(|s| !s.is_empty()) {
                Some(labels) => Ok(pods_but(namespace, &labels)),
                None => Err(DependencyError::NoPodsToBlock {
                    kind: kind.clone(),
                    namespace: namespace.clone(),
                    name: name.clone(),
                }),
            }
        }
    }
}

/// The policy in one namespace: the marked clients may reach everything but the dependency.
pub fn block_policy(run: &str, namespace: &str, allowed: &[Value]) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": format!("firedrill-block-{run}").chars().take(253).collect::<String>(), "namespace": namespace },
        "spec": {
            "podSelector": { "matchLabels": { PARTITION_LABEL: run } },
            "policyTypes": ["Egress"],
            // DNS stays open wherever it is served (a node-local cache included): the clients
            // must fail on the dependency, not on name resolution.
            "egress": [
                { "to": allowed },
                { "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }] },
            ],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Choice;
    use firedrill_rollback::{Operation, UndoRecord};
    use firedrill_safety::cluster::{Owner, OwnerRef, Pod, ServicePort};
    use firedrill_safety::verdict::{Chosen, RecentHits, Verdict};
    use firedrill_safety::{MinHealthy, NamespacedGlob, Policy, Quantity, Selector};
    use std::time::Duration;

    fn cluster() -> Cluster {
        let redis = OwnerRef {
            kind: OwnerKind::StatefulSet,
            namespace: "cache".into(),
            name: "redis".into(),
        };
        Cluster {
            owners: vec![Owner {
                key: redis.clone(),
                labels: Default::default(),
                desired: 3,
            }],
            pods: vec![Pod {
                namespace: "cache".into(),
                name: "redis-0".into(),
                labels: [("app".to_owned(), "redis".to_owned())].into(),
                owner: Some(redis),
                running_and_ready: true,
                phase: "Running".into(),
                created: 0,
                node: None,
                ..Default::default()
            }],
            services: vec![Service {
                namespace: "ai".into(),
                name: "gateway".into(),
                selector: Some([("app".to_owned(), "gateway".to_owned())].into()),
                ports: vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    target_port: None,
                    target_port_name: Some("http".into()),
                    protocol: "TCP".into(),
                    app_protocol: None,
                }],
            }],
            ..Cluster::default()
        }
    }

    fn request<'a>(policy: &'a Policy, hits: &'a RecentHits) -> Request<'a> {
        Request {
            drill: "d",
            seed: 1,
            now: 0,
            targets: &[],
            policy,
            own_namespace: "chaos",
            recent_hits: hits,
        }
    }

    fn scale() -> DependencyFailure {
        DependencyFailure {
            dependency: Dependency::Workload {
                kind: "StatefulSet".into(),
                namespace: "cache".into(),
                name: "redis".into(),
            },
            mode: Mode::ScaleToZero,
        }
    }

    fn http() -> DependencyFailure {
        DependencyFailure {
            dependency: Dependency::Service {
                namespace: "ai".into(),
                name: "gateway".into(),
            },
            mode: Mode::HttpFault(HttpFault {
                errors: vec![(503, 1000)],
                delay: Some(Duration::from_millis(200)),
                ..HttpFault::default()
            }),
        }
    }

    fn scene<'a>(cluster: &'a Cluster, choice: &'a Choice) -> Scene<'a> {
        Scene {
            choice: Some(choice),
            cluster: Some(cluster),
            image: "firedrill:1",
            duration: Duration::from_secs(60),
            expires: "2026-01-01T01:00:00Z",
            dns: None,
        }
    }

    #[test]
    fn the_guard_refuses_protected_floored_and_missing_dependencies() {
        let c = cluster();
        let hits = RecentHits::new();
        let open = Policy::default();
        assert_eq!(judge(&scale(), &c, &request(&open, &hits)), Ok(()));
        let protected = Policy {
            protected: vec![NamespacedGlob::parse("cache/*").unwrap()],
            ..Policy::default()
        };
        assert!(judge(&scale(), &c, &request(&protected, &hits))
            .unwrap_err()
            .to_string()
            .contains("protected by safety.protected cache/*"));
        let floored = Policy {
            min_healthy: vec![MinHealthy {
                namespace: "cache".into(),
                selector: Selector::parse("app=redis").unwrap(),
                min: Quantity::Count(1),
            }],
            ..Policy::default()
        };
        assert_eq!(
            judge(&scale(), &c, &request(&floored, &hits))
                .unwrap_err()
                .to_string(),
            "safety.min_healthy keeps 1 ready pod of StatefulSet/cache/redis; scale-to-zero would leave none"
        );
        let mut missing = http();
        missing.dependency = Dependency::Service {
            namespace: "ai".into(),
            name: "nope".into(),
        };
        assert_eq!(
            judge(&missing, &c, &request(&open, &hits))
                .unwrap_err()
                .to_string(),
            "the dependency Service ai/nope is not in the cluster"
        );
        let mut own = scale();
        own.dependency = Dependency::Workload {
            kind: "Deployment".into(),
            namespace: "chaos".into(),
            name: "firedrill".into(),
        };
        assert!(matches!(
            judge(&own, &c, &request(&open, &hits)),
            Err(DependencyError::OwnNamespace { .. })
        ));
    }

    #[test]
    fn scale_to_zero_records_the_exact_prior_count() {
        let c = cluster();
        let choice = Choice::default();
        let planned = plan("run-1", &scale(), &scene(&c, &choice)).unwrap();
        let step = &planned.waves[0][0];
        assert_eq!(
            step.forward.describe(),
            "patch StatefulSet cache/redis: {\"spec\":{\"replicas\":0}}"
        );
        assert!(matches!(
            step.undo,
            UndoRecord::RestoreReplicas {
                prior: 3,
                applied: 0,
                ..
            }
        ));
    }

    #[test]
    fn http_fault_prepares_the_proxy_then_swaps_the_selector() {
        let c = cluster();
        let choice = Choice::default();
        let planned = plan("run-1", &http(), &scene(&c, &choice)).unwrap();
        assert_eq!(planned.preparatory, 1);
        assert!(planned.wait_for_recovery);
        let describe: Vec<Vec<String>> = planned
            .waves
            .iter()
            .map(|w| w.iter().map(|s| s.forward.describe()).collect())
            .collect();
        assert_eq!(
            describe,
            [
                vec![
                    "create Service ai/firedrill-up-run-1".to_owned(),
                    "create Deployment ai/firedrill-proxy-run-1".to_owned()
                ],
                vec!["patch Service ai/gateway: {\"spec\":{\"selector\":{\"app\":null,\"firedrill.io/proxy\":\"run-1\"}}}".to_owned()],
            ]
        );
        let Operation::Create { object: upstream } = &planned.waves[0][0].forward else {
            panic!()
        };
        // The copy keeps the original selector and named target port: it reaches the real pods.
        assert_eq!(upstream["spec"]["selector"]["app"], "gateway");
        assert_eq!(upstream["spec"]["ports"][0]["targetPort"], "http");
        let Operation::Create { object: proxy } = &planned.waves[0][1].forward else {
            panic!()
        };
        let container = &proxy["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "firedrill:1");
        // A named target port: the proxy's container port carries that name.
        assert_eq!(
            container["ports"][0],
            json!({ "containerPort": 8080, "name": "http" })
        );
        // Its counts, on a port of their own: the run reads them back.
        assert_eq!(
            container["ports"][1],
            json!({ "containerPort": 9464, "name": "proxy-metrics" })
        );
        assert_eq!(
            planned.effect,
            Some(vec![Expect::ProxyFaulted {
                service: ObjectRef::namespaced(ObjectKind::Service, "ai", "gateway"),
                run: "run-1".to_owned(),
                errors: 1000,
                reset: 0,
                delayed: true,
            }])
        );
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "fault-proxy",
                "--listen",
                "0.0.0.0:8080",
                "--upstream",
                "http://firedrill-up-run-1.ai.svc:80",
                "--until",
                "2026-01-01T01:00:00Z",
                "--metrics",
                "0.0.0.0:9464",
                "--error",
                "503:10%",
                "--delay",
                "200ms"
            ]
        );
        assert!(matches!(
            &planned.waves[1][0].undo,
            UndoRecord::RestoreSelector { prior, .. } if prior["app"] == "gateway"
        ));
    }

    #[test]
    fn block_allows_everything_but_the_dependency() {
        let c = cluster();
        let choice = Choice {
            verdict: Verdict {
                targets: vec![Chosen {
                    namespace: "shop".into(),
                    name: "api-0".into(),
                    owner: None,
                }],
                ..Verdict::default()
            },
            nodes: None,
        };
        let block = DependencyFailure {
            dependency: Dependency::Workload {
                kind: "StatefulSet".into(),
                namespace: "cache".into(),
                name: "redis".into(),
            },
            mode: Mode::Block,
        };
        let planned = plan("run-1", &block, &scene(&c, &choice)).unwrap();
        let steps: Vec<String> = planned.steps().map(|s| s.forward.describe()).collect();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1], "create NetworkPolicy shop/firedrill-block-run-1");
        let Operation::Create { object } = &planned.waves[0][1].forward else {
            panic!()
        };
        assert_eq!(object["spec"]["policyTypes"], json!(["Egress"]));
        assert_eq!(
            object["spec"]["egress"][0]["to"],
            json!([
                { "namespaceSelector": { "matchExpressions": [{ "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["cache"] }] } },
                { "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "cache" } },
                  "podSelector": { "matchExpressions": [{ "key": "app", "operator": "NotIn", "values": ["redis"] }] } },
            ])
        );
        let cidrs = DependencyFailure {
            dependency: Dependency::Cidrs(vec!["10.1.0.0/16".into()]),
            mode: Mode::Block,
        };
        let planned = plan("run-1", &cidrs, &scene(&c, &choice)).unwrap();
        let Operation::Create { object } = &planned.waves[0][1].forward else {
            panic!()
        };
        assert_eq!(
            object["spec"]["egress"][0]["to"],
            json!([
                { "namespaceSelector": {} },
                { "ipBlock": { "cidr": "0.0.0.0/0", "except": ["10.1.0.0/16"] } },
                { "ipBlock": { "cidr": "::/0" } },
            ])
        );
    }
}
