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

/// What the stand-in "network plugin" makes of the canary: the in-memory cluster runs no pod,
/// so the service writes the statuses a kubelet would into the canary pods it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plugin {
    /// The client connects, then stops once the policy exists: exit 0.
    Enforces,
    /// The client connects before and after the policy: exit 1.
    Ignores,
    /// The client never connects: exit 3.
    Isolates,
    /// The pods stay Pending.
    Stalls,
}

/// Every call the service saw (`METHOD path`) and the body of each object created.
#[derive(Default)]
struct Seen {
    calls: Vec<String>,
    created: Vec<Value>,
}

/// The in-memory cluster with firedrill deployed in [`NS`] (its scheduler at this version, the
/// ledger key), the namespaces `apps` (no Pod Security label) and `tools` (enforcing `tools`),
/// answering `/version` and reviews: a review is denied when its (namespace, verb, resource
/// with subresource) is in `denied`.
async fn cluster(tools: &str, denied: &[(&str, &str, &str)]) -> (kube::Client, Reviews) {
    let (client, reviews, _) = cluster_with(tools, denied, Plugin::Enforces).await;
    (client, reviews)
}

/// [`cluster`], with `plugin` standing in for the network plugin, and what the service saw.
async fn cluster_with(
    tools: &str,
    denied: &[(&str, &str, &str)],
    plugin: Plugin,
) -> (kube::Client, Reviews, Arc<Mutex<Seen>>) {
    let log: Arc<Mutex<Seen>> = Arc::default();
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
    let logged = log.clone();
    let service = tower::service_fn(move |request: Request<Body>| {
        let (inner, seen, denied) = (inner.clone(), seen.clone(), denied.clone());
        let namespace = namespaces.get(request.uri().path()).cloned();
        let log = logged.clone();
        async move {
            let path = request.uri().path().to_owned();
            let method = request.method().clone();
            log.lock().unwrap().calls.push(format!("{method} {path}"));
            if path.contains("/pods") || path.contains("/networkpolicies") {
                return canary_stand_in(inner, request, plugin, log).await;
            }
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
    (client, reviews, log)
}

/// Passes a pod or NetworkPolicy call on, and on a canary pod read writes the status the
/// stand-in plugin decides.
async fn canary_stand_in(
    inner: kube::Client,
    request: Request<Body>,
    plugin: Plugin,
    log: Arc<Mutex<Seen>>,
) -> Result<Response<Body>, kube::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect_bytes().await.unwrap();
    if parts.method == Method::POST {
        if let Ok(object) = serde_json::from_slice::<Value>(&body) {
            log.lock().unwrap().created.push(object);
        }
    }
    let path = parts.uri.path().to_owned();
    let read = parts.method == Method::GET;
    let response = inner
        .send(Request::from_parts(parts, Body::from(body.to_vec())))
        .await?;
    let (listener, client) = (path.ends_with("-listener"), path.ends_with("-client"));
    if !read || !(listener || client) || response.status() != 200 {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let mut pod: Value = serde_json::from_slice(&body.collect_bytes().await.unwrap()).unwrap();
    let denied = log
        .lock()
        .unwrap()
        .created
        .iter()
        .any(|o| o["kind"] == "NetworkPolicy");
    let ready = json!({ "phase": "Running", "podIP": "10.0.0.7", "conditions": [{ "type": "Ready", "status": "True" }] });
    let exited = |code: i64| {
        json!({ "phase": if code == 0 { "Succeeded" } else { "Failed" },
                "containerStatuses": [{ "name": "client", "state": { "terminated": { "exitCode": code } } }] })
    };
    pod["status"] = match (plugin, listener, denied) {
        (Plugin::Stalls, _, _) => json!({ "phase": "Pending" }),
        (_, true, _) => ready,
        (Plugin::Isolates, _, _) => exited(3),
        (_, _, false) => ready,
        (Plugin::Enforces, _, true) => exited(0),
        (Plugin::Ignores, _, true) => exited(1),
    };
    Ok(Response::from_parts(
        parts,
        Body::from(serde_json::to_vec(&pod).unwrap()),
    ))
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

/// The canary, quick: the stand-in answers at once.
fn quick() -> firedrill::check::canary::Canary {
    firedrill::check::canary::Canary {
        poll: std::time::Duration::from_millis(20),
        start_within: std::time::Duration::from_secs(5),
        verdict_within: std::time::Duration::from_secs(5),
        ..Default::default()
    }
}

/// Runs the canary against `plugin`: its line, what the service saw, and the client.
async fn canary(plugin: Plugin) -> (firedrill::check::Line, Arc<Mutex<Seen>>, kube::Client) {
    let (client, _, log) = cluster_with("privileged", &[], plugin).await;
    let line = firedrill::check::canary::run(&Kube::new(client.clone(), NS), &quick()).await;
    (line, log, client)
}

/// Every ledger in [`NS`], read.
async fn ledgers(client: &kube::Client) -> Vec<firedrill_rollback::Ledger> {
    let cluster = firedrill::cluster::ledger::KubeCluster::new(&Kube::new(client.clone(), NS));
    cluster
        .ledgers()
        .await
        .unwrap()
        .into_iter()
        .map(|(_, l)| l.unwrap())
        .collect()
}

/// The canary's objects still in the cluster, by name.
async fn left(client: &kube::Client) -> Vec<String> {
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    let params = kube::api::ListParams::default().labels(firedrill_rollback::ARTIFACT_SELECTOR);
    let mut names: Vec<String> = Api::<Pod>::namespaced(client.clone(), NS)
        .list(&params)
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    names.extend(
        Api::<NetworkPolicy>::namespaced(client.clone(), NS)
            .list(&params)
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name),
    );
    names
}

#[tokio::test]
async fn the_network_canary_creates_through_the_ledger_judges_the_client_and_removes_everything() {
    let (line, log, client) = canary(Plugin::Enforces).await;
    assert!(line.passed, "{line:?}");
    assert_eq!(line.check, "network");
    assert!(
        line.what.starts_with("NetworkPolicy is enforced: a client in chaos-testing connected before a policy denied its egress and not after (run check-m"),
        "{line:?}"
    );
    let log = std::mem::take(&mut *log.lock().unwrap());
    // Written ahead: the ledger is created (then updated) before each object is.
    let writes: Vec<&str> = log
        .calls
        .iter()
        .filter(|c| c.starts_with("POST") || c.starts_with("PUT") || c.starts_with("DELETE"))
        .filter(|c| {
            ["/configmaps", "/pods", "/networkpolicies"]
                .iter()
                .any(|k| c.contains(k))
        })
        .map(String::as_str)
        .collect();
    let shape: Vec<String> = writes
        .iter()
        .map(|c| {
            let (method, path) = c.split_once(' ').unwrap();
            let kind = if path.contains("/configmaps") {
                "ledger"
            } else if path.contains("/networkpolicies") {
                "policy"
            } else {
                "pod"
            };
            format!("{method} {kind}")
        })
        .collect();
    assert_eq!(
        shape,
        [
            "POST ledger",
            "POST pod",
            "PUT ledger", // listener
            "PUT ledger",
            "POST pod",
            "PUT ledger", // client
            "PUT ledger",
            "POST policy",
            "PUT ledger", // policy
            // the revert, newest first, then the ledger closed
            "DELETE policy",
            "DELETE pod",
            "DELETE pod",
            "PUT ledger",
        ]
        .map(str::to_owned)
        .to_vec(),
        "{writes:#?}"
    );
    // Each object carries the run, the artifact label and the expiry the sweep reads; the pods
    // meet `restricted` and end by themselves.
    let objects: Vec<&Value> = log
        .created
        .iter()
        .filter(|o| o["kind"] == "Pod" || o["kind"] == "NetworkPolicy")
        .collect();
    assert_eq!(objects.len(), 3);
    for object in &objects {
        let labels = &object["metadata"]["labels"];
        assert_eq!(labels["firedrill.io/artifact"], "true", "{object}");
        assert_eq!(labels["firedrill.io/drill"], "firedrill-check", "{object}");
        assert!(labels["firedrill.io/run"]
            .as_str()
            .unwrap()
            .starts_with("check-m"));
        assert!(object["metadata"]["annotations"]["firedrill.io/expires-at"].is_string());
    }
    for pod in objects.iter().filter(|o| o["kind"] == "Pod") {
        let spec = &pod["spec"];
        assert_eq!(spec["activeDeadlineSeconds"], 240);
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            spec["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        let c = &spec["containers"][0];
        assert_eq!(c["image"], firedrill::check::canary::IMAGE);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    }
    // The client is told the listener's address; the policy denies the client's egress.
    assert_eq!(
        objects[1]["spec"]["containers"][0]["env"][0]["value"],
        "10.0.0.7"
    );
    assert_eq!(objects[2]["spec"]["policyTypes"], json!(["Egress"]));
    assert_eq!(objects[2]["spec"]["egress"], json!([]));
    assert_eq!(left(&client).await, Vec::<String>::new());
    let ledgers = ledgers(&client).await;
    assert_eq!(ledgers.len(), 1);
    assert!(!ledgers[0].is_open(), "{:#?}", ledgers[0]);
    assert_eq!(ledgers[0].entries.len(), 3);
}

#[tokio::test]
async fn a_plugin_that_does_not_enforce_is_named_with_the_fix_and_a_client_that_never_connects_means_nothing(
) {
    let (line, _, client) = canary(Plugin::Ignores).await;
    assert!(!line.passed);
    assert!(
        line.what.starts_with("NetworkPolicy is NOT enforced: a client in chaos-testing still connected to the listener 30 s after a NetworkPolicy denied all its egress; network-partition and zone-outage partition drills would silently do nothing"),
        "{line:?}"
    );
    let fix = line.fix.as_deref().unwrap();
    assert!(fix.contains("Calico, Cilium"), "{fix}");
    assert_eq!(
        left(&client).await,
        Vec::<String>::new(),
        "removed all the same"
    );

    let (line, log, client) = canary(Plugin::Isolates).await;
    assert!(!line.passed);
    assert!(line.what.contains("could not connect to the listener (10.0.0.7:8080) in chaos-testing even before any policy of the check's, so the check means nothing"), "{line:?}");
    assert!(
        !log.lock()
            .unwrap()
            .created
            .iter()
            .any(|o| o["kind"] == "NetworkPolicy"),
        "no policy once the client cannot connect"
    );
    assert_eq!(left(&client).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_canary_interrupted_midway_is_reverted_from_its_ledger_or_swept_by_label() {
    use firedrill::cluster::ledger::{self, KubeCluster, Protection, Selection};
    let (client, _, log) = cluster_with("privileged", &[], Plugin::Stalls).await;
    let kube = Kube::new(client.clone(), NS);
    let slow = firedrill::check::canary::Canary {
        start_within: std::time::Duration::from_secs(600),
        ..quick()
    };
    let running = tokio::spawn({
        let kube = kube.clone();
        async move { firedrill::check::canary::run(&kube, &slow).await }
    });
    // Interrupted once the listener is created, waiting for it to run.
    while !log
        .lock()
        .unwrap()
        .created
        .iter()
        .any(|o| o["kind"] == "Pod")
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    running.abort();
    let _ = running.await;
    let name = left(&client).await;
    assert_eq!(name.len(), 1, "{name:?}");
    assert!(name[0].ends_with("-listener"));
    let open = ledgers(&client).await;
    assert!(open[0].is_open());
    // `firedrill rollback --run ID`: from the ledger alone, the check's own namespace
    // notwithstanding.
    let protection = Protection::without_drill_file(NS);
    let outcomes = ledger::rollback(
        &KubeCluster::new(&kube),
        &Selection::Run(open[0].run.clone()),
        &protection,
        false,
        false,
    )
    .await
    .unwrap();
    assert!(outcomes.iter().all(|o| !o.failed()), "{outcomes:#?}");
    assert_eq!(left(&client).await, Vec::<String>::new());
    assert!(!ledgers(&client).await[0].is_open());

    // Its ledger lost as well: the scheduler's sweep finds the leftover by label and deletes it
    // past its expiry.
    let (client, _, log) = cluster_with("privileged", &[], Plugin::Stalls).await;
    let kube = Kube::new(client.clone(), NS);
    let slow = firedrill::check::canary::Canary {
        start_within: std::time::Duration::from_secs(600),
        ..quick()
    };
    let running = tokio::spawn({
        let kube = kube.clone();
        async move { firedrill::check::canary::run(&kube, &slow).await }
    });
    while !log
        .lock()
        .unwrap()
        .created
        .iter()
        .any(|o| o["kind"] == "Pod")
    {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    running.abort();
    let _ = running.await;
    let ledger_name = firedrill_rollback::ledger_name(&ledgers(&client).await[0].run);
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), NS)
        .delete(&ledger_name, &Default::default())
        .await
        .unwrap();
    let now = chrono::Utc::now();
    ledger::sweep_expired(&kube, now, &Default::default(), &protection)
        .await
        .unwrap();
    assert_eq!(left(&client).await.len(), 1, "not before its expiry");
    let later = now + firedrill::check::canary::EXPIRES_AFTER + chrono::TimeDelta::seconds(1);
    ledger::sweep_expired(&kube, later, &Default::default(), &protection)
        .await
        .unwrap();
    assert_eq!(left(&client).await, Vec::<String>::new());
}

#[tokio::test]
async fn with_network_the_canarys_rights_are_asked_in_firedrills_namespace_and_its_line_comes_last()
{
    let dir = temp_dir("check-network");
    let config = drill_file(&dir).await;
    let (client, reviews, _) = cluster_with("privileged", &[], Plugin::Enforces).await;
    let report = firedrill::check::run_with(&Kube::new(client, NS), Some(&config), Some(&quick()))
        .await
        .unwrap();
    assert!(report.passed(), "{}", report.text());
    let last = report.checks.last().unwrap();
    assert_eq!(last.check, "network");
    assert!(
        report
            .text()
            .contains("✓ RBAC in namespace chaos-testing: 6 verbs allowed"),
        "{}",
        report.text()
    );
    assert!(reviews.lock().unwrap().contains(&json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
        "spec": { "resourceAttributes": { "namespace": NS, "verb": "create", "group": "networking.k8s.io", "resource": "networkpolicies" } }
    })));
}
