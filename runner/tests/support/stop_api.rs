//! A small Kubernetes API in memory, on kube's tower_test mock: drill artifacts by resource and
//! namespace, ledgers, and every call it saw. Shared by the `stop` wire test and its benchmark.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use firedrill::cluster::kubernetes::Kube;
use firedrill::cluster::ledger::{self, Protection};
use firedrill_rollback::{Ledger, ObjectKind, ObjectRef, UndoRecord};
use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{json, Value};
use tower_test::mock;

const NS: &str = "chaos-testing";
/// The ledger key in the Secret the API serves.
pub const KEY: [u8; 32] = [7; 32];

/// A small API server: artifacts by (resource, namespace), ledgers, and every call it saw.
#[derive(Default)]
pub struct Api {
    pub artifacts: BTreeMap<(String, String), BTreeSet<String>>,
    pub ledgers: BTreeMap<String, Value>,
    pub calls: Vec<String>,
    /// The phases `stop` said, in order.
    pub phases: Vec<String>,
}

fn status(code: u16, reason: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "status": if code < 300 { "Success" } else { "Failure" }, "reason": reason, "code": code, "message": reason })
}

/// (resource, namespace, name) of an API path.
fn route(path: &str) -> (String, Option<String>, Option<String>) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // /api/v1/... or /apis/GROUP/VERSION/...
    let rest = if parts[0] == "api" {
        &parts[2..]
    } else {
        &parts[3..]
    };
    match rest {
        ["namespaces", ns, resource] => (resource.to_string(), Some(ns.to_string()), None),
        ["namespaces", ns, resource, name] => (
            resource.to_string(),
            Some(ns.to_string()),
            Some(name.to_string()),
        ),
        [resource] => (resource.to_string(), None, None),
        other => panic!("unexpected path {path}: {other:?}"),
    }
}

impl Api {
    fn answer(&mut self, method: &Method, path: &str, query: &str, body: &[u8]) -> (u16, Value) {
        self.calls.push(format!("{method} {path}?{query}"));
        let (resource, namespace, name) = route(path);
        match (method.as_str(), resource.as_str(), namespace, name) {
            ("POST", "configmaps", Some(_), None) => {
                let object: Value = serde_json::from_slice(body).unwrap();
                let name = object["metadata"]["name"].as_str().unwrap().to_owned();
                if name.starts_with("firedrill-ledger-") && self.ledgers.contains_key(&name) {
                    return (409, status(409, "AlreadyExists"));
                }
                if name.starts_with("firedrill-ledger-") {
                    self.ledgers.insert(name, object.clone());
                }
                (201, object)
            }
            ("PUT", "configmaps", Some(_), Some(name)) => {
                let mut object: Value = serde_json::from_slice(body).unwrap();
                let stored = &self.ledgers[&name]["metadata"]["resourceVersion"];
                if object["metadata"]["resourceVersion"] != *stored {
                    return (409, status(409, "Conflict"));
                }
                let next = stored.as_str().unwrap().parse::<u64>().unwrap() + 1;
                object["metadata"]["resourceVersion"] = json!(next.to_string());
                self.ledgers.insert(name, object.clone());
                (200, object)
            }
            ("GET", "configmaps", Some(_), None) => {
                assert!(query.contains("firedrill.io%2Fkind%3Dledger"), "{query}");
                let items: Vec<Value> = self.ledgers.values().cloned().collect();
                (
                    200,
                    json!({ "kind": "ConfigMapList", "apiVersion": "v1", "metadata": {}, "items": items }),
                )
            }
            ("DELETE", "jobs", Some(_), None) => (200, status(200, "Success")),
            ("GET", "secrets", Some(_), Some(name)) if name == "firedrill-ledger-key" => (
                200,
                serde_json::to_value(firedrill::cluster::ledger_key::key_secret(NS, &KEY)).unwrap(),
            ),
            ("GET", resource, None, None) => {
                assert!(query.contains("firedrill.io%2Fartifact%3Dtrue"), "{query}");
                let items: Vec<Value> = self
                    .artifacts
                    .iter()
                    .filter(|((r, _), _)| r == resource)
                    .flat_map(|((_, ns), names)| {
                        names
                            .iter()
                            .map(move |n| json!({ "metadata": { "name": n, "namespace": ns } }))
                    })
                    .collect();
                (
                    200,
                    json!({ "kind": "List", "apiVersion": "v1", "metadata": {}, "items": items }),
                )
            }
            ("DELETE", resource, Some(ns), None) => {
                assert!(query.contains("firedrill.io%2Fartifact%3Dtrue"), "{query}");
                self.artifacts.remove(&(resource.to_owned(), ns));
                (200, status(200, "Success"))
            }
            other => panic!("unexpected call {method} {path}?{query}: {other:?}"),
        }
    }
}

/// `artifacts` of each kind firedrill creates (NetworkPolicies, Pods, Services, Deployments)
/// over 10 namespaces, made by 10 runs whose ledgers record every one of them.
pub fn world(artifacts: usize) -> Api {
    let mut api = Api::default();
    let key = firedrill_rollback::Key::from_bytes(&KEY).unwrap();
    let mut ledgers: Vec<Ledger> = (0..10)
        .map(|r| Ledger::new(&format!("run-{r}"), "drill", "test", "2099-01-01T00:00:00Z"))
        .collect();
    for i in 0..artifacts {
        let ns = format!("ns-{}", i % 10);
        for (resource, kind) in [
            ("networkpolicies", ObjectKind::NetworkPolicy),
            ("pods", ObjectKind::Pod),
            ("services", ObjectKind::Service),
            ("deployments", ObjectKind::Deployment),
        ] {
            let name = format!("firedrill-{i}");
            api.artifacts
                .entry((resource.to_owned(), ns.clone()))
                .or_default()
                .insert(name.clone());
            ledgers[i % 10].push(
                UndoRecord::DeleteCreated {
                    target: ObjectRef::namespaced(kind, &ns, &name),
                },
                &key,
            );
        }
    }
    for ledger in ledgers {
        let stored = ledger.to_stored();
        api.ledgers.insert(
            stored.name.clone(),
            json!({ "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": { "name": stored.name, "namespace": NS, "resourceVersion": "1", "labels": stored.labels, "annotations": stored.annotations },
                    "data": stored.data }),
        );
    }
    api
}

pub async fn stop(artifacts: usize) -> (Vec<String>, ledger::StopReport, Arc<Mutex<Api>>) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let kube = Kube::new(kube::Client::new(service, NS), NS);
    let api = Arc::new(Mutex::new(world(artifacts)));
    let server = {
        let api = api.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let method = request.method().clone();
                let path = request.uri().path().to_owned();
                let query = request.uri().query().unwrap_or("").to_owned();
                let body = request.into_body().collect_bytes().await.unwrap();
                let (code, reply) = api.lock().unwrap().answer(&method, &path, &query, &body);
                send.send_response(
                    Response::builder()
                        .status(code)
                        .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                        .unwrap(),
                );
            }
        })
    };
    let said = api.clone();
    let report = ledger::stop_saying(
        &kube,
        "INC-1",
        "oncall",
        &Protection::without_drill_file("chaos-testing"),
        &move |phase: &str| said.lock().unwrap().phases.push(phase.to_owned()),
    )
    .await;
    drop(kube);
    server.abort();
    let calls = api.lock().unwrap().calls.clone();
    (calls, report, api)
}
