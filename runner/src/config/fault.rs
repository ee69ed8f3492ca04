//! Each kind's `fault:` settings, read into `firedrill_experiments` types with every problem
//! reported at its line.

use std::time::Duration;

use firedrill_experiments::Kind;

use super::{dns_label, namespace_name, object_name, parse_selector, NameError};
use firedrill_reader::duration;
use firedrill_reader::read::{item, Fields, Reader};
use firedrill_reader::yaml::Node;

/// A drill's `fault:` settings for its kind, or the kind's defaults when it is left out (a kind
/// that has none says what it needs).
pub(super) fn read_settings(
    r: &mut Reader,
    f: &Fields,
    kind: Option<Kind>,
) -> Option<firedrill_experiments::Settings> {
    match (f.get("fault"), kind) {
        (Some(n), Some(kind)) => read_fault(r, n, &f.path_of("fault"), kind),
        (None, Some(kind)) => firedrill_experiments::Settings::default_for(kind).or_else(|| {
            r.required(f, "fault", needed(kind));
            None
        }),
        // The kind is wrong (and said so): there are no settings to read it for.
        (_, None) => None,
    }
}

/// A kind's `fault:` settings; a kind without settings (yet) says so.
fn read_fault(
    r: &mut Reader,
    node: &Node,
    path: &str,
    kind: Kind,
) -> Option<firedrill_experiments::Settings> {
    use firedrill_experiments::{PodKill, Settings};
    match kind {
        Kind::PodKill => {
            let f = r.fields(node, path, &["force", "grace_period", "waves", "interval"])?;
            let d = PodKill::default();
            let force = f
                .get("force")
                .map_or(Some(d.force), |n| r.boolean(n, &f.path_of("force")));
            let grace_period = match f.get("grace_period") {
                Some(n) => r
                    .parsed(n, &f.path_of("grace_period"), "a duration", |s| {
                        duration::parse_within(s, Duration::ZERO, Duration::from_secs(3600))
                    })
                    .map(Some),
                None => Some(None),
            };
            let waves = f.get("waves").map_or(Some(u64::from(d.waves)), |n| {
                r.integer(n, &f.path_of("waves"), 1, 10)
            });
            let interval = match f.get("interval") {
                Some(n) => r.parsed(n, &f.path_of("interval"), "a duration", |s| {
                    duration::parse_within(s, Duration::ZERO, Duration::from_secs(3600))
                }),
                None => Some(d.interval),
            };
            Some(Settings::PodKill(PodKill {
                force: force?,
                grace_period: grace_period?,
                waves: waves? as u32,
                interval: interval?,
            }))
        }
        Kind::NetworkPartition => read_partition(r, node, path).map(Settings::NetworkPartition),
        Kind::ContainerKill => read_container_kill(r, node, path).map(Settings::ContainerKill),
        Kind::NodeDrain => read_drain(r, node, path).map(Settings::NodeDrain),
        Kind::ResourceStress => read_stress(r, node, path).map(Settings::ResourceStress),
        Kind::DependencyFailure => read_dependency(r, node, path).map(Settings::DependencyFailure),
        Kind::RegionFailover => super::region::read_region_failover(r, node, path)
            .map(|rf| Settings::RegionFailover(Box::new(rf))),
        Kind::NetworkDegrade => {
            super::region::read_degrade(r, node, path).map(Settings::NetworkDegrade)
        }
        Kind::Probe => {
            r.error(
                node.mark,
                path,
                format!(
                    "kind {} takes no `fault:` settings (it only observes)",
                    Kind::Probe
                ),
            );
            None
        }
    }
}

fn read_partition(
    r: &mut Reader,
    node: &Node,
    path: &str,
) -> Option<firedrill_experiments::NetworkPartition> {
    use firedrill_experiments::{Direction, NetworkPartition, Peer};
    let f = r.fields(node, path, &["direction", "allow", "allow_dns"])?;
    let d = NetworkPartition::default();
    let direction = match f.get("direction") {
        Some(n) => r.parsed(n, &f.path_of("direction"), "a direction", |s| match s {
            "ingress" => Ok(Direction::Ingress),
            "egress" => Ok(Direction::Egress),
            "both" => Ok(Direction::Both),
            _ => Err(format!(
                "{s:?} is not a direction (allowed: ingress, egress, both)"
            )),
        }),
        None => Some(d.direction),
    };
    let allow_dns = f
        .get("allow_dns")
        .map_or(Some(d.allow_dns), |n| r.boolean(n, &f.path_of("allow_dns")));
    let allow = match f.get("allow") {
        None => Some(Vec::new()),
        Some(n) => {
            let key = f.path_of("allow");
            let items = r.list(
                n,
                &key,
                "peers: {selector: ...}, {namespace: ...} or {cidr: ...}",
            )?;
            let mut peers = Vec::new();
            let mut ok = true;
            for (i, item_node) in items.iter().enumerate() {
                let at = item(&key, i);
                let Some(pf) = r.fields(item_node, &at, &["selector", "namespace", "cidr"]) else {
                    ok = false;
                    continue;
                };
                let given: Vec<&str> = ["selector", "namespace", "cidr"]
                    .into_iter()
                    .filter(|k| pf.has(k))
                    .collect();
                if given.len() != 1 {
                    r.error(
                        item_node.mark,
                        &at,
                        "give exactly one of `selector`, `namespace` or `cidr`",
                    );
                    ok = false;
                    continue;
                }
                let peer = match given[0] {
                    "selector" => r
                        .parsed(
                            pf.get("selector")?,
                            &pf.path_of("selector"),
                            "key=value labels",
                            equal_labels,
                        )
                        .map(Peer::Pods),
                    "namespace" => r.parsed(
                        pf.get("namespace")?,
                        &pf.path_of("namespace"),
                        "a namespace name",
                        |s| namespace_name(s).map(Peer::Namespace),
                    ),
                    _ => r
                        .parsed(pf.get("cidr")?, &pf.path_of("cidr"), "a CIDR", cidr)
                        .map(Peer::Cidr),
                };
                match peer {
                    Some(p) => peers.push(p),
                    None => ok = false,
                }
            }
            ok.then_some(peers)
        }
    };
    Some(NetworkPartition {
        direction: direction?,
        allow: allow?,
        allow_dns: allow_dns?,
    })
}

/// What a kind that needs `fault:` needs in it, for the message when it is missing.
fn needed(kind: Kind) -> &'static str {
    match kind {
        Kind::ContainerKill => "`fault: { container: NAME }`, the container to kill (see the README's container-kill section)",
        Kind::RegionFailover => "`fault: { from: REGION, to: REGION, dns: {..}, isolate: [..], promote: {..}, failback: {..} }` (see the README's region-failover section)",
        Kind::NetworkDegrade => "`fault: { delay: 100ms, jitter: 20ms, loss: 5%, rate: 1mbit }` (any of them; see the README's network-degrade section)",
        _ => "`fault: { dependency: { service: NAMESPACE/NAME }, mode: block }` (or scale-to-zero or http-fault; see the README's dependency-failure section)",
    }
}

fn within(r: &mut Reader, node: &Node, path: &str, max: Duration) -> Option<Duration> {
    r.parsed(node, path, "a duration", |s| {
        duration::parse_within(s, Duration::ZERO, max)
    })
}

/// A whole percentage from 1% to 100%.
// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader.
pub(super) fn load_percent(text: &str) -> Result<u32, String> {
    let whole = || format!("{text:?} is not a whole percentage from 1% to 100% (e.g. 80%)");
    let p = firedrill_safety::Percent::parse(text, false).map_err(|_| whole())?;
    if p.hundredths() == 0 || p.hundredths() % 100 != 0 || p.hundredths() > 10_000 {
        return Err(whole());
    }
    Ok(p.hundredths() / 100)
}

fn read_container_kill(
    r: &mut Reader,
    node: &Node,
    path: &str,
) -> Option<firedrill_experiments::ContainerKill> {
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
        firedrill_experiments::KILL_IMAGE,
    );
    Some(firedrill_experiments::ContainerKill {
        container: container?,
        image: image?,
    })
}

fn read_drain(r: &mut Reader, node: &Node, path: &str) -> Option<firedrill_experiments::NodeDrain> {
    let f = r.fields(node, path, &["max_nodes", "grace_period"])?;
    let d = firedrill_experiments::NodeDrain::default();
    let max_nodes = f
        .get("max_nodes")
        .map_or(Some(u64::from(d.max_nodes)), |n| {
            r.integer(n, &f.path_of("max_nodes"), 1, 100)
        });
    let grace_period = match f.get("grace_period") {
        Some(n) => within(r, n, &f.path_of("grace_period"), Duration::from_secs(3600)).map(Some),
        None => Some(None),
    };
    Some(firedrill_experiments::NodeDrain {
        max_nodes: max_nodes? as u32,
        grace_period: grace_period?,
    })
}

/// `60%->95% over 5m` (or with `→`).
// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader.
fn parse_ramp(text: &str) -> Result<firedrill_experiments::Ramp, String> {
    let bad = || {
        format!("{text:?} is not a ramp (write e.g. \"60%->95% over 5m\": from, to, and how long the climb takes)")
    };
    let (loads, over) = text.split_once(" over ").ok_or_else(bad)?;
    let (from, to) = loads
        .split_once("->")
        .or_else(|| loads.split_once('→'))
        .ok_or_else(bad)?;
    let from = load_percent(from.trim())?;
    let to = load_percent(to.trim())?;
    if from >= to {
        return Err(format!(
            "{text:?} does not climb: a ramp goes up, from a lower load to a higher one (for a steady load write `load: {to}%`)"
        ));
    }
    let over = duration::parse_within(
        over.trim(),
        Duration::from_secs(1),
        Duration::from_secs(86_400),
    )
    .map_err(|e| e.to_string())?;
    Ok(firedrill_experiments::Ramp { from, to, over })
}

fn read_stress(
    r: &mut Reader,
    node: &Node,
    path: &str,
) -> Option<firedrill_experiments::ResourceStress> {
    use firedrill_experiments::{Resource, ResourceStress};
    let f = r.fields(
        node,
        path,
        &["resource", "load", "ramp", "workers", "image", "max_nodes"],
    )?;
    let d = ResourceStress::default();
    let resource = match f.get("resource") {
        Some(n) => r.parsed(n, &f.path_of("resource"), "a resource", |s| match s {
            "cpu" => Ok(Resource::Cpu),
            "memory" => Ok(Resource::Memory),
            "io" => Ok(Resource::Io),
            _ => Err(format!(
                "{s:?} is not a resource (allowed: cpu, memory, io)"
            )),
        }),
        None => {
            r.required(&f, "resource", "cpu, memory or io");
            None
        }
    };
    let load = match f.get("load") {
        Some(n) => r.parsed(n, &f.path_of("load"), "a percentage", load_percent),
        None => Some(d.load),
    };
    let ramp = match f.get("ramp") {
        Some(n) => r
            .parsed(n, &f.path_of("ramp"), "a ramp", parse_ramp)
            .map(Some),
        None => Some(None),
    };
    let workers = f.get("workers").map_or(Some(u64::from(d.workers)), |n| {
        r.integer(n, &f.path_of("workers"), 1, 64)
    });
    let image = read_image(r, &f, "a container image", &d.image);
    let max_nodes = f
        .get("max_nodes")
        .map_or(Some(u64::from(d.max_nodes)), |n| {
            r.integer(n, &f.path_of("max_nodes"), 1, 100)
        });
    if let Some(Resource::Io) = resource {
        for key in ["load", "ramp"] {
            if let Some(n) = f.get(key) {
                r.error(
                    n.mark,
                    f.path_of(key),
                    "io stress has no load percentage; its load is `workers` (1 to 64)",
                );
            }
        }
    } else if let (Some(_), Some(n)) = (resource, f.get("workers")) {
        r.error(
            n.mark,
            f.path_of("workers"),
            "`workers` is for io stress; cpu and memory take `load` (and `ramp`)",
        );
    }
    if let (Some(n), Some(_)) = (f.get("ramp"), f.get("load")) {
        r.error(
            n.mark,
            f.path_of("ramp"),
            "give either `load` or `ramp`: a ramp ends at its own top load",
        );
    }
    let ramp = ramp?;
    Some(ResourceStress {
        resource: resource?,
        load: ramp.map_or(load?, |r| r.to),
        ramp,
        workers: workers? as u32,
        image: image?,
        max_nodes: max_nodes? as u32,
    })
}

fn read_dependency(
    r: &mut Reader,
    node: &Node,
    path: &str,
) -> Option<firedrill_experiments::DependencyFailure> {
    use firedrill_experiments::{Dependency, DependencyFailure, HttpFault, Mode};
    let f = r.fields(node, path, &["dependency", "mode", "http"])?;
    let dependency = r
        .required(
            &f,
            "dependency",
            "{service: NAMESPACE/NAME}, {workload: Deployment/NAMESPACE/NAME}, {namespace: .., selector: ..} or {cidrs: [..]}",
        )
        .and_then(|n| read_dependency_target(r, n, &f.path_of("dependency")));
    let mode_node = r.required(&f, "mode", "block, scale-to-zero or http-fault");
    let mode = mode_node.and_then(|n| {
        r.parsed(n, &f.path_of("mode"), "a mode", |s| match s {
            "block" | "scale-to-zero" | "http-fault" => Ok(s.to_owned()),
            _ => Err(format!(
                "{s:?} is not a mode (allowed: block, scale-to-zero, http-fault)"
            )),
        })
    });
    let http = match (f.get("http"), mode.as_deref()) {
        (Some(n), Some("http-fault")) => read_http(r, n, &f.path_of("http")),
        (Some(n), Some(_)) => {
            r.error(n.mark, f.path_of("http"), "`http` is for mode http-fault");
            None
        }
        (None, Some("http-fault")) => {
            r.required(
                &f,
                "http",
                "what the proxy does: {errors: [\"503:10%\"], delay: 200ms, reset: 1%}",
            );
            None
        }
        (_, _) => Some(HttpFault::default()),
    };
    let (dependency, mode_text, http) = (dependency?, mode?, http?);
    let mode = match mode_text.as_str() {
        "block" => Mode::Block,
        "scale-to-zero" => Mode::ScaleToZero,
        _ => Mode::HttpFault(http),
    };
    let fits = matches!(
        (&mode, &dependency),
        (Mode::Block, _)
            | (Mode::ScaleToZero, Dependency::Workload { .. })
            | (Mode::HttpFault(_), Dependency::Service { .. })
    );
    if !fits {
        r.error(
            mode_node.map_or(f.mark, |n| n.mark),
            f.path_of("mode"),
            match mode {
                Mode::ScaleToZero => "scale-to-zero needs `dependency: {workload: Deployment/NAMESPACE/NAME}` (or a StatefulSet)",
                _ => "http-fault needs `dependency: {service: NAMESPACE/NAME}`",
            },
        );
        return None;
    }
    Some(DependencyFailure { dependency, mode })
}

/// Why a dependency's `service` or `workload` names nothing Kubernetes could hold; `written` is
/// the whole value.
#[derive(Debug, thiserror::Error)]
enum DependencyNameError {
    #[error("{written:?} is not {}NAMESPACE/NAME", kind_part(.workload))]
    Shape { written: String, workload: bool },
    #[error("{written:?} is not KIND/NAMESPACE/NAME (e.g. Deployment/data/postgres)")]
    NoKind { written: String },
    /// `kind` is not one firedrill scales; `meant` is one it does, written in another case.
    #[error(
        "{kind:?} is not a workload kind firedrill scales (allowed: Deployment, StatefulSet){}",
        meant_kind(.meant)
    )]
    Kind {
        kind: String,
        meant: Option<&'static str>,
    },
    /// The namespace or the name is not one Kubernetes allows (`error.rules` says which).
    #[error("{written:?}: {error}")]
    Name { written: String, error: NameError },
}

/// What a workload's value starts with.
fn kind_part(workload: &bool) -> &'static str {
    if *workload {
        "KIND/"
    } else {
        ""
    }
}

fn meant_kind(meant: &Option<&str>) -> String {
    meant
        .map(|k| format!("; did you mean {k}? kinds are case-sensitive"))
        .unwrap_or_default()
}

/// `NAMESPACE/NAME` of an object of `kind`: both parts must be names Kubernetes allows, or the
/// dependency could never be found.
/// `written` is the whole value, for messages.
fn namespaced_name(
    written: &str,
    text: &str,
    kind: &str,
) -> Result<(String, String), DependencyNameError> {
    let (namespace, name) = text
        .split_once('/')
        .filter(|(_, name)| !name.contains('/'))
        .ok_or_else(|| DependencyNameError::Shape {
            written: written.to_owned(),
            workload: kind != "Service",
        })?;
    let named = |error| DependencyNameError::Name {
        written: written.to_owned(),
        error,
    };
    let namespace = namespace_name(namespace).map_err(named)?;
    let name = object_name(name, kind).map_err(named)?;
    Ok((namespace, name))
}

/// `KIND/NAMESPACE/NAME` of a workload firedrill scales.
fn workload_target(
    written: &str,
) -> Result<firedrill_experiments::Dependency, DependencyNameError> {
    let (kind, rest) = written
        .split_once('/')
        .ok_or_else(|| DependencyNameError::NoKind {
            written: written.to_owned(),
        })?;
    if kind != "Deployment" && kind != "StatefulSet" {
        return Err(DependencyNameError::Kind {
            kind: kind.to_owned(),
            meant: ["Deployment", "StatefulSet"]
                .into_iter()
                .find(|k| k.eq_ignore_ascii_case(kind)),
        });
    }
    let (namespace, name) = namespaced_name(written, rest, kind)?;
    Ok(firedrill_experiments::Dependency::Workload {
        kind: kind.to_owned(),
        namespace,
        name,
    })
}

fn read_dependency_target(
    r: &mut Reader,
    node: &Node,
    path: &str,
) -> Option<firedrill_experiments::Dependency> {
    use firedrill_experiments::Dependency;
    let f = r.fields(
        node,
        path,
        &["service", "workload", "namespace", "selector", "cidrs"],
    )?;
    let given: Vec<&str> = ["service", "workload", "selector", "cidrs"]
        .into_iter()
        .filter(|k| f.has(k))
        .collect();
    if given.len() != 1 {
        r.error(
            node.mark,
            path,
            "give exactly one of `service`, `workload`, `selector` (with `namespace`) or `cidrs`",
        );
        return None;
    }
    if f.has("namespace") && given[0] != "selector" {
        r.error(
            f.get("namespace")?.mark,
            f.path_of("namespace"),
            "`namespace` goes with `selector`; a service or workload names its own (NAMESPACE/NAME)",
        );
        return None;
    }
    match given[0] {
        "service" => r.parsed(
            f.get("service")?,
            &f.path_of("service"),
            "NAMESPACE/NAME",
            |s| {
                namespaced_name(s, s, "Service")
                    .map(|(namespace, name)| Dependency::Service { namespace, name })
            },
        ),
        "workload" => r.parsed(
            f.get("workload")?,
            &f.path_of("workload"),
            "KIND/NAMESPACE/NAME",
            workload_target,
        ),
        "selector" => {
            let namespace = r
                .required(&f, "namespace", "the dependency's namespace")
                .and_then(|n| {
                    r.parsed(
                        n,
                        &f.path_of("namespace"),
                        "a namespace name",
                        namespace_name,
                    )
                });
            let labels = r.parsed(
                f.get("selector")?,
                &f.path_of("selector"),
                "key=value labels",
                equal_labels,
            );
            Some(Dependency::Pods {
                namespace: namespace?,
                labels: labels?,
            })
        }
        _ => {
            let key = f.path_of("cidrs");
            let items = r.list(f.get("cidrs")?, &key, "CIDRs such as 10.20.0.0/16")?;
            if items.is_empty() {
                r.error(
                    f.get("cidrs")?.mark,
                    &key,
                    "empty list (name at least one CIDR)",
                );
                return None;
            }
            let mut cidrs = Vec::new();
            let mut ok = true;
            for (i, n) in items.iter().enumerate() {
                let parsed = r.parsed(n, &item(&key, i), "a CIDR", |s| {
                    let c = cidr(s)?;
                    if c.ends_with("/0") {
                        return Err(format!("{s:?} is every address: blocking it cuts the clients off everything (name the dependency's addresses, or use kind network-partition)"));
                    }
                    Ok(c)
                });
                match parsed {
                    Some(c) => cidrs.push(c),
                    None => ok = false,
                }
            }
            ok.then_some(Dependency::Cidrs(cidrs))
        }
    }
}

/// The optional `image` key of a kind whose helper pod runs an image: the one given (`what` says
/// what it must hold), else the kind's `default`.
pub(super) fn read_image(r: &mut Reader, f: &Fields, what: &str, default: &str) -> Option<String> {
    match f.get("image") {
        Some(n) => r.text(n, &f.path_of("image"), what).map(str::to_owned),
        None => Some(default.to_owned()),
    }
}

/// A selector of equal labels only (what a NetworkPolicy peer can select by).
// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader.
pub(super) fn equal_labels(s: &str) -> Result<std::collections::BTreeMap<String, String>, String> {
    let selector = parse_selector(s)?;
    let mut labels = std::collections::BTreeMap::new();
    for req in selector.requirements() {
        match req {
            firedrill_safety::Requirement::Equals(k, v) => {
                labels.insert(k.clone(), v.clone());
            }
            other => {
                return Err(format!(
                    "`{other}` is not key=value: a NetworkPolicy peer selects by equal labels only"
                ))
            }
        }
    }
    if labels.is_empty() {
        return Err(
            "an empty selector would select every pod of the namespace; name the pods".into(),
        );
    }
    Ok(labels)
}

// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader.
fn cidr(s: &str) -> Result<String, String> {
    let bad = || format!("{s:?} is not a CIDR (write e.g. 10.0.0.0/8 or fd00::/8)");
    let (ip, prefix) = s.split_once('/').ok_or_else(bad)?;
    let ip: std::net::IpAddr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > if ip.is_ipv4() { 32 } else { 128 } {
        return Err(bad());
    }
    Ok(s.to_owned())
}

fn read_http(r: &mut Reader, node: &Node, path: &str) -> Option<firedrill_experiments::HttpFault> {
    let f = r.fields(node, path, &["errors", "delay", "reset", "port"])?;
    let errors = match f.get("errors") {
        None => Some(Vec::new()),
        Some(n) => {
            let key = f.path_of("errors");
            let items = r.list(n, &key, "CODE:PERCENT entries such as \"503:10%\"")?;
            let mut out = Vec::new();
            let mut ok = true;
            for (i, n) in items.iter().enumerate() {
                match r.parsed(
                    n,
                    &item(&key, i),
                    "CODE:PERCENT",
                    crate::drill::faultproxy::parse_error,
                ) {
                    Some(e) => out.push(e),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
    };
    let delay = match f.get("delay") {
        Some(n) => within(r, n, &f.path_of("delay"), Duration::from_secs(60)).map(Some),
        None => Some(None),
    };
    let reset = match f.get("reset") {
        Some(n) => r.parsed(
            n,
            &f.path_of("reset"),
            "a percentage",
            crate::drill::faultproxy::parse_share,
        ),
        None => Some(0),
    };
    let port = match f.get("port") {
        Some(n) => r
            .integer(n, &f.path_of("port"), 1, 65_535)
            .map(|p| Some(p as u16)),
        None => Some(None),
    };
    let fault = firedrill_experiments::HttpFault {
        errors: errors?,
        delay: delay?,
        reset: reset?,
        port: port?,
    };
    if fault.failing() > 10_000 {
        r.error(
            node.mark,
            path,
            format!(
                "the error and reset shares add up to {}, more than 100%",
                firedrill_experiments::percent(fault.failing())
            ),
        );
        return None;
    }
    if fault.failing() == 0 && fault.delay.is_none() {
        r.error(
            node.mark,
            path,
            "the proxy would change nothing: give `errors`, `delay` or `reset`",
        );
        return None;
    }
    Some(fault)
}
