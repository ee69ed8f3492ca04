//! `dependency-failure`: the dependency blocked by NetworkPolicy, scaled to zero, or answered by
//! the fault proxy.

use std::collections::BTreeMap;

use firedrill_rollback::{ObjectKind, ObjectRef, Step};
use firedrill_safety::cluster::{Cluster, OwnerKind, Service};
use firedrill_safety::verdict::{explicit_protection, floor, Request};
use serde_json::{json, Value};

use crate::plan::{isolate, Plan, Scene, PARTITION_LABEL};
use crate::settings::{Dependency, DependencyFailure, HttpFault, Mode};

/// The label of the fault proxy's pods; the dependency's Service selects it during the drill.
pub const PROXY_LABEL: &str = "firedrill.io/proxy";

/// The port the proxy listens on when the Service's target port is a name.
const PROXY_PORT: u16 = 8080;

fn always_protected(namespace: &str, request: &Request) -> Option<String> {
    if namespace == "kube-system" {
        return Some("kube-system is always protected".into());
    }
    (namespace == request.own_namespace)
        .then(|| format!("{namespace} is firedrill's own namespace, always protected"))
}

fn service<'c>(cluster: &'c Cluster, namespace: &str, name: &str) -> Result<&'c Service, String> {
    cluster
        .services
        .iter()
        .find(|s| s.namespace == namespace && s.name == name)
        .ok_or_else(|| format!("the dependency Service {namespace}/{name} is not in the cluster"))
}

/// Whether the dependency may be failed this way: it exists, it is not protected, and taking
/// it down crosses no `min_healthy` floor.
pub fn judge(
    settings: &DependencyFailure,
    cluster: &Cluster,
    request: &Request,
) -> Result<(), String> {
    let policy = request.policy;
    let listed = |namespace: &str, name: &str| {
        policy
            .protected
            .iter()
            .find(|g| g.matches(namespace, name))
            .map(|g| {
                format!("the dependency {namespace}/{name} is protected by safety.protected {g}")
            })
    };
    match (&settings.mode, &settings.dependency) {
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
            let owner = cluster
                .owners
                .iter()
                .find(|o| {
                    o.key.kind.to_string() == *kind
                        && o.key.namespace == *namespace
                        && o.key.name == *name
                })
                .ok_or_else(|| {
                    format!("the dependency {kind} {namespace}/{name} is not in the cluster")
                })?;
            for pod in cluster
                .pods
                .iter()
                .filter(|p| p.owner.as_ref() == Some(&owner.key))
            {
                if let Some(why) = explicit_protection(pod, request) {
                    return Err(format!(
                        "the dependency's pod {}/{} is {why}",
                        pod.namespace, pod.name
                    ));
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
                    return Err(format!(
                        "safety.min_healthy keeps {min} ready pod{} of {}; scale-to-zero would leave none",
                        if min == 1 { "" } else { "s" },
                        owner.key
                    ));
                }
            }
            Ok(())
        }
        (Mode::HttpFault(http), Dependency::Service { namespace, name }) => {
            if let Some(why) =
                always_protected(namespace, request).or_else(|| listed(namespace, name))
            {
                return Err(why);
            }
            let service = service(cluster, namespace, name)?;
            if service.selector.as_ref().is_none_or(BTreeMap::is_empty) {
                return Err(format!("the Service {namespace}/{name} has no selector, so it cannot be pointed at the fault proxy"));
            }
            proxy_port(service, http).map(|_| ())
        }
        (mode, dependency) => Err(format!("{} cannot fail {dependency}", mode_name(mode))),
    }
}

pub fn mode_name(mode: &Mode) -> &'static str {
    match mode {
        Mode::Block => "block",
        Mode::ScaleToZero => "scale-to-zero",
        Mode::HttpFault(_) => "http-fault",
    }
}

/// The Service port the proxy takes over: the one asked for, else the only one.
fn proxy_port<'s>(
    service: &'s Service,
    http: &HttpFault,
) -> Result<&'s firedrill_safety::cluster::ServicePort, String> {
    let ports: Vec<String> = service.ports.iter().map(|p| p.port.to_string()).collect();
    match http.port {
        Some(port) => service.ports.iter().find(|p| p.port == port).ok_or_else(|| {
            format!("the Service {}/{} has no port {port} (it has {})", service.namespace, service.name, ports.join(", "))
        }).and_then(|p| if service.ports.len() > 1 {
            Err(format!("the Service {}/{} has {} ports ({}); pointing it at the proxy would cut all but {}: give the dependency a Service with one port", service.namespace, service.name, service.ports.len(), ports.join(", "), p.port))
        } else { Ok(p) }),
        None => match service.ports.as_slice() {
            [one] => Ok(one),
            [] => Err(format!("the Service {}/{} has no ports", service.namespace, service.name)),
            _ => Err(format!("the Service {}/{} has {} ports ({}); pointing it at the proxy would cut all but one: give the dependency a Service with one port", service.namespace, service.name, service.ports.len(), ports.join(", "))),
        },
    }
}

pub fn plan(run: &str, settings: &DependencyFailure, scene: &Scene) -> Result<Plan, String> {
    match &settings.mode {
        Mode::Block => {
            let cluster = scene.cluster;
            let deny = block_rules(&settings.dependency, cluster)?;
            Ok(Plan {
                waves: vec![isolate(
                    run,
                    scene.choice.map(|c| &c.verdict),
                    |namespace| block_policy(run, namespace, &deny),
                )],
                ..Plan::default()
            })
        }
        Mode::ScaleToZero => {
            let Dependency::Workload {
                kind,
                namespace,
                name,
            } = &settings.dependency
            else {
                return Err("scale-to-zero needs a workload dependency".into());
            };
            let cluster = scene
                .cluster
                .ok_or("scale-to-zero needs the cluster to read the current replicas")?;
            let owner = cluster
                .owners
                .iter()
                .find(|o| {
                    o.key.kind.to_string() == *kind
                        && o.key.namespace == *namespace
                        && o.key.name == *name
                })
                .ok_or_else(|| {
                    format!("the dependency {kind} {namespace}/{name} is not in the cluster")
                })?;
            let object_kind = match owner.key.kind {
                OwnerKind::Deployment => ObjectKind::Deployment,
                OwnerKind::StatefulSet => ObjectKind::StatefulSet,
                _ => {
                    return Err(format!(
                        "{kind} cannot be scaled (Deployment or StatefulSet)"
                    ))
                }
            };
            Ok(Plan {
                waves: vec![vec![Step::scale(
                    ObjectRef::namespaced(object_kind, namespace, name),
                    i64::from(owner.desired),
                    0,
                    None,
                )]],
                ..Plan::default()
            })
        }
        Mode::HttpFault(http) => {
            let Dependency::Service { namespace, name } = &settings.dependency else {
                return Err("http-fault needs a Service dependency".into());
            };
            let cluster = scene
                .cluster
                .ok_or("http-fault needs the cluster to read the Service")?;
            let service = service(cluster, namespace, name)?;
            let port = proxy_port(service, http)?;
            let selector = service.selector.clone().unwrap_or_default();
            let upstream = format!("firedrill-upstream-{run}");
            let target: Value = match (&port.target_port, &port.target_port_name) {
                (_, Some(name)) => json!(name),
                (Some(n), None) => json!(n),
                (None, None) => json!(port.port),
            };
            let listen = port
                .target_port
                .filter(|_| port.target_port_name.is_none())
                .unwrap_or(PROXY_PORT);
            let mut prepare = Vec::new();
            prepare.extend(Step::create(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": { "name": upstream, "namespace": namespace },
                "spec": { "selector": selector, "ports": [{ "name": "upstream", "port": port.port, "targetPort": target }] },
            })));
            let mut args = vec![
                "fault-proxy".to_owned(),
                "--listen".to_owned(),
                format!("0.0.0.0:{listen}"),
                "--upstream".to_owned(),
                format!("http://{upstream}.{namespace}.svc:{}", port.port),
                "--until".to_owned(),
                scene.expires.to_owned(),
            ];
            args.extend(http.flags());
            let mut container_port = json!({ "containerPort": listen });
            if let Some(name) = &port.target_port_name {
                container_port["name"] = json!(name);
            }
            let proxy = format!("firedrill-proxy-{run}");
            prepare.extend(Step::create(json!({
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
                            "securityContext": { "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "seccompProfile": { "type": "RuntimeDefault" } },
                            "containers": [{
                                "name": "fault-proxy",
                                "image": scene.image,
                                "args": args,
                                "ports": [container_port],
                                "readinessProbe": { "tcpSocket": { "port": listen }, "periodSeconds": 2 },
                                "resources": { "requests": { "cpu": "50m", "memory": "32Mi" }, "limits": { "cpu": "1", "memory": "128Mi" } },
                                "securityContext": { "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": { "drop": ["ALL"] } },
                            }],
                        },
                    },
                },
            })));
            let swap = Step::swap_selector(
                ObjectRef::namespaced(ObjectKind::Service, namespace, name),
                selector,
                BTreeMap::from([(PROXY_LABEL.to_owned(), run.to_owned())]),
            );
            Ok(Plan {
                waves: vec![prepare, vec![swap]],
                wait_for_recovery: true,
                preparatory: 1,
                affected: vec![firedrill_safety::cluster::OwnerRef {
                    kind: OwnerKind::Deployment,
                    namespace: namespace.clone(),
                    name: proxy,
                }],
                ..Plan::default()
            })
        }
    }
}

/// The egress peers that stay open when `dependency` is blocked: NetworkPolicies only allow, so
/// "everything but the dependency" is written out.
fn block_rules(dependency: &Dependency, cluster: Option<&Cluster>) -> Result<Vec<Value>, String> {
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
            let cluster =
                cluster.ok_or("blocking a Service needs the cluster to read its selector")?;
            let service = service(cluster, namespace, name)?;
            match &service.selector {
                Some(labels) if !labels.is_empty() => Ok(pods_but(namespace, labels)),
                _ => Err(format!("the Service {namespace}/{name} has no selector; block its addresses with `cidrs`")),
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
            let cluster =
                cluster.ok_or("blocking a workload needs the cluster to read its labels")?;
            let owner = cluster
                .owners
                .iter()
                .find(|o| {
                    o.key.kind.to_string() == *kind
                        && o.key.namespace == *namespace
                        && o.key.name == *name
                })
                .ok_or_else(|| {
                    format!("the dependency {kind} {namespace}/{name} is not in the cluster")
                })?;
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
            match shared.filter(|s| !s.is_empty()) {
                Some(labels) => Ok(pods_but(namespace, &labels)),
                None => Err(format!(
                    "the dependency {kind} {namespace}/{name} has no running pods to block"
                )),
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
            "egress": [{ "to": allowed }],
        },
    })
}
