//! Helpers shared by the integration tests: local HTTP servers with scripted answers, and the
//! real services `scripts/test.sh` starts.

#![allow(dead_code)]

pub mod canary;
pub mod cluster;
pub mod effects;
pub mod history;
pub mod skip;

pub use skip::skip;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A service from `scripts/services.sh`, by its environment variable. Missing under CI is a
/// failure, not a skip; elsewhere the test records that it skipped, and why (see [`skip`]).
pub fn service(var: &str) -> Option<url::Url> {
    match std::env::var(var) {
        Ok(value) => Some(url::Url::parse(&value).unwrap_or_else(|e| panic!("{var}={value}: {e}"))),
        Err(_) => {
            skip(&format!(
                "{var} is not set: the test needs the service scripts/services.sh starts (run scripts/test.sh, or source .test-services/env)"
            ));
            None
        }
    }
}

/// (API group, resource, verb) granted by every Role and ClusterRole among the YAML documents
/// of `text`, with the object that grants it. A rule restricted by `resourceNames` grants
/// `resource[name]` for each name, which only a call on that object uses (see [`verb`]).
pub fn rbac_grants(text: &str) -> std::collections::BTreeSet<(String, String, String, String)> {
    let mut out = std::collections::BTreeSet::new();
    for doc in text.split("\n---\n").filter(|d| !d.trim().is_empty()) {
        let value = firedrill_reader::yaml::to_json(&firedrill_reader::yaml::parse(doc).unwrap());
        if !matches!(value["kind"].as_str(), Some("Role" | "ClusterRole")) {
            continue;
        }
        let object = format!(
            "{} {}/{}",
            value["kind"].as_str().unwrap_or("?"),
            value["metadata"]["namespace"].as_str().unwrap_or("-"),
            value["metadata"]["name"].as_str().unwrap_or("?")
        );
        let Some(rules) = value["rules"].as_array() else {
            continue;
        };
        for rule in rules {
            let each = |key: &str| {
                rule[key]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_else(Vec::new)
            };
            let names = each("resourceNames");
            let resources: Vec<String> = if names.is_empty() {
                each("resources")
            } else {
                each("resources")
                    .iter()
                    .flat_map(|r| names.iter().map(move |n| format!("{r}[{n}]")))
                    .collect()
            };
            for group in each("apiGroups") {
                for resource in &resources {
                    for verb in each("verbs") {
                        out.insert((object.clone(), group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    out
}

/// What no firedrill role may ever grant: everything (`*`), privilege escalation (`escalate`,
/// `bind`, `impersonate`), or reading Secrets — but the ledger key, `get` by name only (never
/// list or watch, which would show every Secret). Returns each offending grant.
pub fn forbidden_grants(text: &str) -> Vec<String> {
    rbac_grants(text)
        .into_iter()
        .filter(|(_, group, resource, verb)| {
            group == "*"
                || resource == "*"
                || verb == "*"
                || ["escalate", "bind", "impersonate"].contains(&verb.as_str())
                || (resource == "secrets" && ["get", "list", "watch"].contains(&verb.as_str()))
                || (resource.starts_with("secrets[")
                    && (resource != "secrets[firedrill-ledger-key]" || verb != "get"))
        })
        .map(|(object, group, resource, verb)| format!("{object}: {group}/{resource} {verb}"))
        .collect()
}

/// A loopback HTTP server answering each request as `answer(n)` says: (status, delay), where
/// `n` counts requests from 0.
pub struct Server {
    pub url: url::Url,
    pub requests: Arc<AtomicU64>,
}

pub async fn serve(answer: impl Fn(u64) -> (u16, Duration) + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = url::Url::parse(&format!(
        "http://{}/health",
        listener.local_addr().expect("addr")
    ))
    .expect("url");
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => buf.extend_from_slice(&chunk[..read]),
                    }
                }
                let (status, delay) = answer(n);
                tokio::time::sleep(delay).await;
                let response = format!(
                    "HTTP/1.1 {status} Scripted\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Server { url, requests }
}

/// A URL on a loopback port nothing listens on: connections are refused.
pub async fn refused_url() -> url::Url {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    url::Url::parse(&format!("http://{addr}/")).expect("url")
}

/// A name no other test run shares, for labels and grouping keys.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// (API group, resource, verb) granted by the manifests in deploy/kubernetes: Role (in firedrill's
/// namespace) and ClusterRoles.
pub fn granted(file: &str) -> std::collections::BTreeSet<(String, String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/kubernetes")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    rbac_grants(&text)
        .into_iter()
        .map(|(_, group, resource, verb)| (group, resource, verb))
        .collect()
}

/// The calls of `calls` (`METHOD /path?query`) that deploy/kubernetes does not grant: each call in
/// firedrill's namespace (`own`) by its Role or a ClusterRole, elsewhere by a ClusterRole.
pub fn not_granted(calls: &[String], own: &str) -> Vec<String> {
    let role = granted("role.yaml");
    let cluster = granted("clusterrole.yaml");
    let own = format!("/namespaces/{own}/");
    calls
        .iter()
        .filter(|call| {
            let v = verb(call);
            !(cluster.contains(&v) || (call.contains(&own) && role.contains(&v)))
        })
        .map(|call| format!("{call} needs {:?}", verb(call)))
        .collect()
}

/// The calls of `calls` outside firedrill's namespace (`own`) whose rule `cluster::access` does
/// not list for `kind`: what `firedrill check` would not have asked about.
pub fn not_in_table(calls: &[String], own: &str, kind: firedrill_experiments::Kind) -> Vec<String> {
    let table: std::collections::BTreeSet<(String, String, String)> =
        firedrill::cluster::access::needs(kind)
            .iter()
            .map(|r| (r.group.to_owned(), r.resource.to_owned(), r.verb.to_owned()))
            .collect();
    let own = format!("/namespaces/{own}/");
    calls
        .iter()
        .filter(|call| !call.contains(&own) && !table.contains(&verb(call)))
        .map(|call| format!("{call} needs {:?}", verb(call)))
        .collect()
}

fn api_group(path: &str) -> String {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if parts[0] == "api" {
        String::new()
    } else {
        parts[1].to_owned()
    }
}

/// The verb of a recorded call (`METHOD /path?query`), as RBAC names it: (API group, resource or
/// resource/subresource, verb).
pub fn verb(call: &str) -> (String, String, String) {
    let (method, rest) = call.split_once(' ').unwrap();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let rest = if parts[0] == "api" {
        &parts[2..]
    } else {
        &parts[3..]
    };
    let (resource, named) = match rest {
        ["namespaces", _, resource] => (resource.to_string(), false),
        ["namespaces", _, resource, _] => (resource.to_string(), true),
        ["namespaces", _, resource, _, sub] => (format!("{resource}/{sub}"), true),
        [resource] => (resource.to_string(), false),
        [resource, _] => (resource.to_string(), true),
        [resource, _, sub] => (format!("{resource}/{sub}"), true),
        other => panic!("{other:?}"),
    };
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let verb = match (method, named) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        other => panic!("{other:?}"),
    };
    // A Secret is only ever read by name, under a rule restricted to that name.
    let resource = match rest {
        ["namespaces", _, "secrets", name] if verb == "get" => format!("secrets[{name}]"),
        _ => resource,
    };
    (api_group(path), resource, verb.to_owned())
}

/// Runs `command` (standard output discarded, standard error kept) and waits for it at most
/// `limit`: a command still running then is killed and fails the test with `what`, rather than
/// hanging the suite (a FIFO once hung `report`, /dev/zero a ledger read).
pub fn output_within(
    command: &mut std::process::Command,
    limit: std::time::Duration,
    what: &str,
) -> std::process::Output {
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still ran after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}
