//! Reading a `dependency-failure`'s `fault:`, and the values of the fault proxy (an error and
//! its share, `503:10%`; a share, `2.5%`) that the drill file and `firedrill fault-proxy`'s flags
//! both take.

use std::time::Duration;

use firedrill_reader::name::{namespace_name, object_name, NameError};
use firedrill_reader::read::{item, Reader};
use firedrill_reader::yaml::Node;

use super::{percent, Dependency, DependencyFailure, HttpFault, Mode};
use crate::values::{cidr, equal_labels, within};

/// Why a fault the proxy is told to make (`--error`, `--reset`, the drill file's `errors` and
/// `reset`) is not one it can make; each says what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("{0:?}: one code per --error (write --error 503:10% --error 429:5%)")]
    TwoCodes(String),
    #[error("{0:?} is not CODE:PERCENT (e.g. 503:10%)")]
    NotCodePercent(String),
    #[error("{0:?} is not an HTTP error status (allowed: 400 to 599, e.g. 503, 504, 429)")]
    NotErrorStatus(String),
    #[error("{0}")]
    Share(#[from] firedrill_safety::QuantityError),
    #[error("{0:?} is more than 100%")]
    OverAll(String),
}

/// `503:10%` -> (503, 1000). Codes are 400 to 599: the proxy fails requests, it does not
/// redirect them.
pub fn parse_error(text: &str) -> Result<(u16, u32), FaultError> {
    if text.contains(',') {
        return Err(FaultError::TwoCodes(text.to_owned()));
    }
    let (code, share) = text
        .split_once(':')
        .ok_or_else(|| FaultError::NotCodePercent(text.to_owned()))?;
    let code: u16 = code
        .trim()
        .parse()
        .ok()
        .filter(|c| (400..=599).contains(c))
        .ok_or_else(|| FaultError::NotErrorStatus(code.to_owned()))?;
    Ok((code, parse_share(share.trim())?))
}

/// `2.5%` -> 250 hundredths, from 0% to 100%.
pub fn parse_share(text: &str) -> Result<u32, FaultError> {
    let p = firedrill_safety::Percent::parse(text, false)?;
    if p.hundredths() > 10_000 {
        return Err(FaultError::OverAll(text.to_owned()));
    }
    Ok(p.hundredths())
}

impl DependencyFailure {
    /// `fault:` of a dependency-failure, every problem reported at its line.
    pub fn read(r: &mut Reader, node: &Node, path: &str) -> Option<Self> {
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
fn workload_target(written: &str) -> Result<Dependency, DependencyNameError> {
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
    Ok(Dependency::Workload {
        kind: kind.to_owned(),
        namespace,
        name,
    })
}

fn read_dependency_target(r: &mut Reader, node: &Node, path: &str) -> Option<Dependency> {
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

fn read_http(r: &mut Reader, node: &Node, path: &str) -> Option<HttpFault> {
    let f = r.fields(node, path, &["errors", "delay", "reset", "port"])?;
    let errors = match f.get("errors") {
        None => Some(Vec::new()),
        Some(n) => {
            let key = f.path_of("errors");
            let items = r.list(n, &key, "CODE:PERCENT entries such as \"503:10%\"")?;
            let mut out = Vec::new();
            let mut ok = true;
            for (i, n) in items.iter().enumerate() {
                match r.parsed(n, &item(&key, i), "CODE:PERCENT", parse_error) {
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
        Some(n) => r.parsed(n, &f.path_of("reset"), "a percentage", parse_share),
        None => Some(0),
    };
    let port = match f.get("port") {
        Some(n) => r
            .integer(n, &f.path_of("port"), 1, 65_535)
            .map(|p| Some(p as u16)),
        None => Some(None),
    };
    let fault = HttpFault {
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
                percent(fault.failing())
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
