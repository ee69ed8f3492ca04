//! `firedrill check` on the wire: against the in-memory cluster behind a service that answers
//! `/version` and SelfSubjectAccessReview (kube-fake-client does neither) as the API server
//! does, allowing every rule but the ones a test denies. The review bodies, a denied verb named
//! with the Role to apply, a Pod Security label too strict for a drill's helper, the JSON shape.

mod support;

use std::sync::{Arc, Mutex};

use firedrill::check::Report;
use firedrill::cluster::kubernetes::Kube;
use firedrill::config::Config;
use http::{Method, Request, Response};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::client::Body;
use serde_json::{json, Value};
use support::cluster::NS;

const VERSION: &str = env!("CARGO_PKG_VERSION");

type Reviews = Arc<Mutex<Vec<Value>>>;

/// The in-memory cluster with firedrill deployed in [`NS`] (its scheduler at this version, the
/// ledger key), the namespaces `apps` (no Pod Security label) and `tools` (enforcing `tools`),
/// answering `/version` and reviews: a review is denied when its (namespace, verb, resource
/// with subresource) is in `denied`.
async fn cluster(tools: &str, denied: &[(&str, &str, &str)]) -> (kube::Client, Reviews) {
    let inner = kube_fake_client::ClientBuilder::new()
        .build()
        .await
        .expect("fake cluster");
    let reviews: Reviews = Arc::default();
    let denied: Vec<(String, String, String)> = denied
        .iter()
        .map(|(n, v, r)| (n.to_string(), v.to_string(), r.to_string()))
        .collect();
    let seen = reviews.clone();
    // kube-fake-client takes `/api/v1/namespaces/NAME` for a namespaced path: namespaces are
    // answered here.
    let mut namespaces = std::collections::BTreeMap::new();
    for (name, label) in [
        (NS, Some("restricted")),
        ("apps", None),
        ("tools", Some(tools)),
    ] {
        let mut ns =
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } });
        if let Some(level) = label {
            ns["metadata"]["labels"] = json!({ "pod-security.kubernetes.io/enforce": level });
        }
        namespaces.insert(format!("/api/v1/namespaces/{name}"), ns);
    }
    let service = tower::service_fn(move |request: Request<Body>| {
        let (inner, seen, denied) = (inner.clone(), seen.clone(), denied.clone());
        let namespace = namespaces.get(request.uri().path()).cloned();
        async move {
            let path = request.uri().path().to_owned();
            let reply = |status: u16, body: Value| {
                Ok::<_, kube::Error>(
                    Response::builder()
                        .status(status)
                        .body(Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                )
            };
            if request.method() == Method::GET && path == "/version" {
                return reply(
                    200,
                    json!({ "major": "1", "minor": "32", "gitVersion": "v1.32.2", "gitCommit": "", "gitTreeState": "clean",
                            "buildDate": "2025-02-12T21:17:52Z", "goVersion": "go1.23.6", "compiler": "gc", "platform": "linux/amd64" }),
                );
            }
            if request.method() == Method::POST
                && path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
            {
                let body = request.into_body().collect_bytes().await.unwrap();
                let mut review: Value = serde_json::from_slice(&body).unwrap();
                seen.lock().unwrap().push(review.clone());
                let a = &review["spec"]["resourceAttributes"];
                let resource = match a["subresource"].as_str() {
                    Some(sub) => format!("{}/{sub}", a["resource"].as_str().unwrap()),
                    None => a["resource"].as_str().unwrap().to_owned(),
                };
                let asked = (
                    a["namespace"].as_str().unwrap_or_default().to_owned(),
                    a["verb"].as_str().unwrap().to_owned(),
                    resource,
                );
                let allowed = !denied.contains(&asked);
                review["status"] = if allowed {
                    json!({ "allowed": true, "reason": "RBAC: allowed by ClusterRoleBinding \"firedrill-faults\"" })
                } else {
                    json!({ "allowed": false })
                };
                return reply(201, review);
            }
            if request.method() == Method::GET
                && path.starts_with("/api/v1/namespaces/")
                && path.matches('/').count() == 4
            {
                return match namespace {
                    Some(ns) => reply(200, ns),
                    None => reply(
                        404,
                        json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found" }),
                    ),
                };
            }
            inner.send(request).await
        }
    });
    let client = kube::Client::new(service, "default");
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &firedrill::cluster::ledger_key::key_secret(NS, &[7u8; 32]),
        )
        .await
        .unwrap();
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "firedrill-scheduler", "namespace": NS },
        "spec": { "selector": { "matchLabels": { "app": "firedrill" } },
            "template": { "metadata": { "labels": { "app": "firedrill" } },
                "spec": { "containers": [{ "name": "scheduler", "image": format!("ghcr.io/example/firedrill:{VERSION}"), "args": ["scheduler"] }] } } }
    });
    Api::<Deployment>::namespaced(client.clone(), NS)
        .create(
            &PostParams::default(),
            &serde_json::from_value(deployment).unwrap(),
        )
        .await
        .unwrap();
    (client, reviews)
}

/// A drill file of a pod-kill on `apps` and a container-kill on `tools`, its store a history
/// already at the current schema, and the monitoring endpoints of the test services when they
/// run.
async fn drill_file(dir: &std::path::Path) -> Config {
    let store = dir.join("history.db");
    let url = firedrill::config::Store::Sqlite(store.display().to_string());
    firedrill::history::store::Store::open(&url, "default")
        .await
        .unwrap()
        .close()
        .await;
    let mut monitoring = String::new();
    for (key, var) in [
        ("pushgateway", "FIREDRILL_TEST_PUSHGATEWAY"),
        ("prometheus", "FIREDRILL_TEST_PROMETHEUS"),
        ("alertmanager", "FIREDRILL_TEST_ALERTMANAGER"),
    ] {
        if let Some(url) = support::service(var) {
            monitoring.push_str(&format!("{key}: {url}\n"));
        }
    }
    let text = format!(
        "namespace: {NS}\nstore: sqlite://{}\n{monitoring}drills:\n\
         \x20 - {{ name: kill-api-pods, kind: pod-kill, schedule: \"@monthly\", duration: 5m, targets: [{{ namespace: apps, selector: app=api, count: 1 }}] }}\n\
         \x20 - {{ name: kill-log-shipper, kind: container-kill, schedule: \"@monthly\", duration: 5m, targets: [{{ namespace: tools, selector: app=shipper, count: 1 }}], fault: {{ container: log-shipper }} }}\n",
        store.display()
    );
    Config::parse(&text, &dir.join("drill.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(support::unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn check(tools: &str, denied: &[(&str, &str, &str)]) -> (Report, Vec<Value>) {
    let dir = temp_dir("check");
    let config = drill_file(&dir).await;
    let (client, reviews) = cluster(tools, denied).await;
    let report = firedrill::check::run(&Kube::new(client, NS), Some(&config))
        .await
        .expect("the cluster answers");
    let reviews = reviews.lock().unwrap().clone();
    (report, reviews)
}

fn failed(report: &Report) -> Vec<String> {
    report
        .checks
        .iter()
        .filter(|l| !l.passed)
        .map(|l| format!("{}; fix: {}", l.what, l.fix.as_deref().unwrap_or("")))
        .collect()
}

#[tokio::test]
async fn every_verb_is_asked_by_a_self_subject_access_review_and_all_pass() {
    let (report, reviews) = check("privileged", &[]).await;
    assert_eq!(failed(&report), Vec::<String>::new(), "{}", report.text());
    assert!(report.passed());
    // The eviction a pod-kill needs, in its namespace: the exact body.
    assert!(
        reviews.contains(&json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": { "resourceAttributes": { "namespace": "apps", "verb": "create", "group": "", "resource": "pods", "subresource": "eviction" } }
        })),
        "{reviews:#?}"
    );
    // Cluster-wide rules carry no namespace; the sweep's are asked whatever the file holds.
    assert!(
        reviews.contains(&json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": { "resourceAttributes": { "verb": "deletecollection", "group": "networking.k8s.io", "resource": "networkpolicies" } }
        })),
        "{reviews:#?}"
    );
    // Each (namespace, rule) once: the table per kind, per target namespace, and no more.
    let mut asked: Vec<String> = reviews
        .iter()
        .map(|r| r["spec"]["resourceAttributes"].to_string())
        .collect();
    let all = asked.len();
    asked.sort();
    asked.dedup();
    assert_eq!(asked.len(), all);
    let per_namespace = |ns: &str| {
        reviews
            .iter()
            .filter(|r| r["spec"]["resourceAttributes"]["namespace"] == ns)
            .count()
    };
    use firedrill::cluster::access::{needs, Scope};
    use firedrill_experiments::Kind;
    let namespaced = |kind| {
        needs(kind)
            .into_iter()
            .filter(|r| r.scope == Scope::Namespace)
            .count()
    };
    assert_eq!(per_namespace("apps"), namespaced(Kind::PodKill));
    assert_eq!(per_namespace("tools"), namespaced(Kind::ContainerKill));
    assert_eq!(
        per_namespace(NS),
        0,
        "firedrill's own namespace is the Role's"
    );
    let text = report.text();
    assert!(text.contains("✓ RBAC in namespace apps: "), "{text}");
    assert!(
        text.contains(&format!(
            "✓ Deployment {NS}/firedrill-scheduler runs ghcr.io/example/firedrill:{VERSION}, this firedrill's version {VERSION}"
        )),
        "{text}"
    );
    assert!(text.contains("✓ Kubernetes API answers: v1.32.2"), "{text}");
    assert!(
        text.contains("writable and at the current schema"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("all {} checks passed\n", report.checks.len())),
        "{text}"
    );
}

#[tokio::test]
async fn a_denied_verb_is_named_with_its_namespace_and_the_cluster_role_to_apply() {
    let (report, _) = check("privileged", &[("apps", "create", "pods/eviction")]).await;
    assert!(!report.passed());
    assert_eq!(
        failed(&report),
        vec![
            "RBAC: create pods/eviction in namespace apps is denied (needed by kill-api-pods (pod-kill)); \
             fix: kubectl apply -f deploy/kubernetes/clusterrole.yaml -f deploy/kubernetes/clusterrolebinding.yaml \
             (ClusterRole firedrill-faults grants it); with overlays/namespaced, apply deploy/overlays/namespaced/target/ in namespace apps"
                .to_owned()
        ],
        "{}",
        report.text()
    );
}

#[tokio::test]
async fn a_pod_security_level_too_strict_for_a_helper_names_the_drill() {
    let (report, _) = check("baseline", &[]).await;
    let text = report.text();
    assert_eq!(
        failed(&report),
        vec![
            "Pod Security in namespace tools: drill kill-log-shipper (container-kill) runs a container-kill helper there, \
             which needs `privileged` (hostPID and root with CAP_KILL); it enforces `baseline`, which refuses the container-kill helper; \
             fix: kubectl label --overwrite namespace tools pod-security.kubernetes.io/enforce=privileged"
                .to_owned()
        ],
        "{text}"
    );
    assert!(
        text.ends_with(&format!("1 of {} checks failed\n", report.checks.len())),
        "{text}"
    );
    // What the README shows: the text of a cluster with this one problem.
    println!("{text}");

    // The JSON: whether all passed, and each check with its name, verdict, what and fix.
    let value = report.json();
    assert_eq!(value["passed"], json!(false));
    let checks = value["checks"].as_array().unwrap();
    assert_eq!(checks.len(), report.checks.len());
    let bad: Vec<&Value> = checks
        .iter()
        .filter(|c| c["passed"] == json!(false))
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["check"], json!("pod-security"));
    assert!(bad[0]["fix"].as_str().unwrap().starts_with("kubectl label"));
    for check in checks {
        let keys: Vec<&str> = check
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        if check["passed"] == json!(true) {
            assert_eq!(keys, ["check", "passed", "what"], "{check}");
        } else {
            assert_eq!(keys, ["check", "fix", "passed", "what"], "{check}");
        }
    }
    let names: std::collections::BTreeSet<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for name in [
        "api",
        "rbac",
        "pod-security",
        "ledger-key",
        "kill-switch",
        "scheduler-image",
        "store",
    ] {
        assert!(names.contains(name), "{names:?}");
    }
}

#[tokio::test]
async fn a_scheduler_of_another_version_and_a_missing_store_fail_with_their_fixes() {
    let dir = temp_dir("check-other");
    let mut config = drill_file(&dir).await;
    config.store = firedrill::config::Store::Sqlite(dir.join("none.db").display().to_string());
    let (client, _) = cluster("privileged", &[]).await;
    let deployments = Api::<Deployment>::namespaced(client.clone(), NS);
    let mut d = deployments.get("firedrill-scheduler").await.unwrap();
    d.spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("ghcr.io/example/firedrill:0.0.9".to_owned());
    deployments
        .replace("firedrill-scheduler", &PostParams::default(), &d)
        .await
        .unwrap();
    let report = firedrill::check::run(&Kube::new(client, NS), Some(&config))
        .await
        .unwrap();
    let failed = failed(&report);
    assert_eq!(failed.len(), 2, "{failed:#?}");
    assert!(
        failed[0].starts_with(&format!(
            "Deployment {NS}/firedrill-scheduler runs ghcr.io/example/firedrill:0.0.9: version 0.0.9, this firedrill is {VERSION}; fix: deploy the {VERSION} image"
        )),
        "{failed:#?}"
    );
    assert!(
        failed[1].contains("none.db") && failed[1].contains("the file does not exist"),
        "{failed:#?}"
    );
    assert!(!dir.join("none.db").exists(), "check creates no store");
}
