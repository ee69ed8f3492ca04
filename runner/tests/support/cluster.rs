//! The in-memory cluster the scenario tests run whole drills against, and what they share: a
//! client whose evictions delete the pod (the eviction subresource, as the API server does it
//! when no PodDisruptionBudget objects), the executor run in-process, and object builders.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use firedrill::cluster::job::RunRef;
use firedrill::cluster::kubernetes::Kube;
use firedrill::config::Config;
use firedrill::drill::executor::{self, Execution};
use firedrill::drill::gate::Endpoints;
use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use kube::client::Body;

pub const NS: &str = "chaos-testing";

/// A drill file of one armed drill, and a run of it starting now.
pub fn one_drill(text: &str, run: &str) -> (Config, firedrill::config::Drill, RunRef) {
    let config = Config::parse(text, Path::new("drill.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let drill = config.drills[0].clone();
    let run = RunRef {
        drill: drill.name.clone(),
        run: run.into(),
        scheduled: Utc::now(),
        dry_run: false,
    };
    (config, drill, run)
}

/// Runs the executor in this process against the in-memory cluster, as a Job's pod would, with the
/// kill switch looked at every 100ms.
pub async fn execute_on(
    client: &kube::Client,
    config: &Config,
    drill: &firedrill::config::Drill,
    run: &RunRef,
    recent_hits: Option<Vec<(firedrill_safety::cluster::OwnerRef, i64)>>,
) -> firedrill::history::store::RunRecord {
    execute_every(
        client,
        config,
        drill,
        run,
        recent_hits,
        Duration::from_millis(100),
    )
    .await
}

/// [`execute_on`], with the kill switch (and whatever else the executor looks at on a cadence)
/// looked at `every`.
pub async fn execute_every(
    client: &kube::Client,
    config: &Config,
    drill: &firedrill::config::Drill,
    run: &RunRef,
    recent_hits: Option<Vec<(firedrill_safety::cluster::OwnerRef, i64)>>,
    every: Duration,
) -> firedrill::history::store::RunRecord {
    let kube = Kube::new(client.clone(), NS);
    let endpoints = Endpoints::new(None, None);
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    executor::execute(
        &Execution {
            config,
            drill,
            run,
            kube: Some(&kube),
            endpoints: &endpoints,
            kill_switch_every: every,
            recent_hits: recent_hits.map(firedrill_safety::verdict::latest_hits),
            held: Default::default(),
            events: None,
        },
        stop,
    )
    .await
}

/// The in-memory cluster, with the eviction subresource: `POST .../pods/NAME/eviction` deletes
/// the pod (with the eviction's grace period) and answers 201, as the API server does when no
/// budget objects; every other call goes to the in-memory cluster.
pub async fn evicting_cluster() -> kube::Client {
    eviction_cluster(true).await
}

/// [`evicting_cluster`], whose evictions are answered 201 and carried out only when `evicts`
/// (otherwise the pod stays: a stand-in for an eviction accepted and never done).
pub async fn eviction_cluster(evicts: bool) -> kube::Client {
    let inner = kube_fake_client::ClientBuilder::new()
        .build()
        .await
        .expect("fake cluster");
    let service = tower::service_fn(move |request: Request<Body>| {
        let inner = inner.clone();
        async move {
            let path = request.uri().path().to_owned();
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            if request.method() == Method::POST && parts.last() == Some(&"eviction") {
                // api/v1/namespaces/NS/pods/NAME/eviction
                let (namespace, name) = (parts[3].to_owned(), parts[5].to_owned());
                let status = if !evicts {
                    201
                } else {
                    match Api::<Pod>::namespaced(inner.clone(), &namespace)
                        .delete(&name, &DeleteParams::default())
                        .await
                    {
                        Ok(_) => 201,
                        Err(kube::Error::Api(e)) => e.code,
                        Err(_) => 500,
                    }
                };
                let body = serde_json::json!({ "kind": "Status", "apiVersion": "v1", "code": status,
                    "status": if status == 201 { "Success" } else { "Failure" } });
                return Ok::<_, kube::Error>(
                    Response::builder()
                        .status(status)
                        .body(Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                );
            }
            inner.send(request).await
        }
    });
    watchable(kube::Client::new(service, "default"))
}

/// `inner`, with every call it is asked (`METHOD /path?query`) written down in `calls`.
pub fn recording(
    inner: kube::Client,
    calls: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> kube::Client {
    let service = tower::service_fn(move |request: Request<Body>| {
        let (inner, calls) = (inner.clone(), calls.clone());
        async move {
            let uri = request.uri();
            let call = format!(
                "{} {}?{}",
                request.method(),
                uri.path(),
                uri.query().unwrap_or_default()
            );
            calls.lock().unwrap().push(call);
            inner.send(request).await
        }
    });
    kube::Client::new(service, "default")
}

/// The in-memory cluster with watches, which kube-fake-client does not answer: a
/// `?watch=true` GET lists the same collection (same selectors) every 20 ms and streams what
/// changed as the API server does: `ADDED`, `MODIFIED` (a new resourceVersion) and `DELETED`, one
/// JSON line each. Its first listing sends as `ADDED` what is newer than the resourceVersion the
/// watch asked from. Every other call goes to `inner`.
pub fn watchable(inner: kube::Client) -> kube::Client {
    use http_body_util::BodyExt;
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let service = tower::service_fn(move |request: Request<Body>| {
        let inner = inner.clone();
        async move {
            let query = request.uri().query().unwrap_or_default().to_owned();
            if query
                .split('&')
                .any(|p| p == "watch=true" || p == "watch=1")
            {
                return Ok::<_, kube::Error>(watch_by_listing(inner, request.uri().path(), &query));
            }
            let response = inner.send(request).await?;
            Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()))
        }
    });
    kube::Client::new(service, "default")
}

/// A watch over the in-memory cluster, by listing: see [`watchable`].
fn watch_by_listing(
    inner: kube::Client,
    path: &str,
    query: &str,
) -> Response<
    http_body_util::combinators::UnsyncBoxBody<
        hyper::body::Bytes,
        Box<dyn std::error::Error + Send + Sync>,
    >,
> {
    use http_body_util::BodyExt;
    use hyper::body::{Bytes, Frame};
    let selectors: Vec<&str> = query
        .split('&')
        .filter(|p| p.starts_with("labelSelector=") || p.starts_with("fieldSelector="))
        .collect();
    let list = format!("{path}?{}", selectors.join("&"));
    let timeout = query
        .split('&')
        .find_map(|p| p.strip_prefix("timeoutSeconds="))
        .and_then(|t| t.parse().ok())
        .unwrap_or(290);
    let from = query
        .split('&')
        .find_map(|p| p.strip_prefix("resourceVersion="))
        .unwrap_or_default()
        .to_owned();
    let newer = |version: &str, from: &str| match (version.parse::<u64>(), from.parse::<u64>()) {
        (Ok(v), Ok(f)) => v > f,
        _ => true,
    };
    let (lines, received) = tokio::sync::mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        let until = tokio::time::Instant::now() + Duration::from_secs(timeout);
        // Each object by namespace/name: its resourceVersion and last state.
        let mut known: std::collections::HashMap<String, (String, serde_json::Value)> =
            std::collections::HashMap::new();
        let mut first = true;
        while tokio::time::Instant::now() < until && !lines.is_closed() {
            let request = Request::get(&list)
                .body(Body::empty())
                .expect("a list request");
            // A listing that fails ends the watch (as a broken watch does); the watcher lists
            // again. Its error is not a deletion of everything.
            let Ok(response) = inner.send(request).await else {
                return;
            };
            if !response.status().is_success() {
                return;
            }
            let Ok(body) = response.into_body().collect_bytes().await else {
                return;
            };
            let Ok(listed) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return;
            };
            let mut now = std::collections::HashMap::new();
            for item in listed["items"].as_array().into_iter().flatten() {
                let meta = &item["metadata"];
                let key = format!(
                    "{}/{}",
                    meta["namespace"].as_str().unwrap_or_default(),
                    meta["name"].as_str().unwrap_or_default()
                );
                let version = meta["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                now.insert(key, (version, item.clone()));
            }
            let mut events = Vec::new();
            for (key, (version, object)) in &now {
                match known.get(key) {
                    // Not what the watcher already saw: only objects newer than the version it
                    // asked from (resourceVersions are one counter in the in-memory cluster).
                    None if first && newer(version, &from) => {
                        events.push(("ADDED", object.clone()))
                    }
                    None if first => {}
                    None => events.push(("ADDED", object.clone())),
                    Some((seen, _)) if seen != version => events.push(("MODIFIED", object.clone())),
                    Some(_) => {}
                }
            }
            for (key, (_, object)) in &known {
                if !now.contains_key(key) {
                    events.push(("DELETED", object.clone()));
                }
            }
            known = now;
            first = false;
            for (kind, object) in events {
                let mut line =
                    serde_json::to_vec(&serde_json::json!({ "type": kind, "object": object }))
                        .expect("an event");
                line.push(b'\n');
                if lines.send(Bytes::from(line)).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let frames = futures::stream::unfold(received, |mut received| async move {
        let line = received.recv().await?;
        Some((
            Ok::<_, std::convert::Infallible>(Frame::data(line)),
            received,
        ))
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(
            http_body_util::StreamBody::new(frames)
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .expect("a watch response")
}

/// A Running and Ready pod, `age` old, controlled by `owner` (`Kind/name`), on `node`.
pub fn ready_pod(
    namespace: &str,
    name: &str,
    labels: serde_json::Value,
    owner: &str,
    node: &str,
) -> Pod {
    let (kind, owner) = owner.split_once('/').unwrap();
    let created = (Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339();
    serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "namespace": namespace, "labels": labels, "creationTimestamp": created,
            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": "u", "controller": true }] },
        "spec": { "nodeName": node, "containers": [{ "name": "main", "image": "app" }] },
        "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] }
    }))
    .unwrap()
}

/// Polls `check` every 20 ms for up to `within`; its first `Some`.
pub async fn eventually<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < end {
        if let Some(found) = check().await {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// [`eventually`], watched in the background while the test goes on (e.g. runs a drill).
pub fn watch<T, F, Fut>(within: Duration, check: F) -> tokio::task::JoinHandle<Option<T>>
where
    T: Send + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<T>> + Send,
{
    tokio::spawn(async move { eventually(within, check).await })
}

/// The data of run `run`'s ledger ConfigMap in firedrill's namespace.
pub async fn ledger_data(
    client: &kube::Client,
    run: &str,
) -> std::collections::BTreeMap<String, String> {
    Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), NS)
        .get(&firedrill_rollback::ledger_name(run))
        .await
        .unwrap()
        .data
        .unwrap()
}

/// `object` as a value, less what the API server changes on every write.
pub fn value<T: serde::Serialize>(object: T) -> serde_json::Value {
    let mut v = serde_json::to_value(object).unwrap();
    if let Some(metadata) = v["metadata"].as_object_mut() {
        metadata.remove("resourceVersion");
        metadata.remove("generation");
        metadata.remove("managedFields");
    }
    v
}

/// Every pod, by namespace/name, as values.
pub async fn all_pods(
    client: &kube::Client,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    Api::<Pod>::all(client.clone())
        .list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| {
            let key = format!(
                "{}/{}",
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default()
            );
            (key, value(p))
        })
        .collect()
}

/// Every node, by name, as values.
pub async fn all_nodes(
    client: &kube::Client,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    Api::<k8s_openapi::api::core::v1::Node>::all(client.clone())
        .list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| (n.metadata.name.clone().unwrap_or_default(), value(n)))
        .collect()
}

/// The events of a run's timeline, in order.
pub fn timeline(record: &firedrill::history::store::RunRecord) -> Vec<String> {
    record.evidence.to_value()["timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The ledger's cluster, killed after `left` more writes (a change or a ledger save): a process
/// that dies mid-apply, for the crash tests.
pub struct Dying {
    pub inner: firedrill::cluster::ledger::KubeCluster,
    pub left: std::sync::atomic::AtomicUsize,
}

impl Dying {
    fn alive(&self) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        self.left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .map(|_| ())
            .map_err(|_| "the process was killed".to_owned())
    }
}

impl firedrill_rollback::Cluster for Dying {
    async fn get(
        &self,
        target: &firedrill_rollback::ObjectRef,
    ) -> Result<Option<serde_json::Value>, firedrill_rollback::ClusterError> {
        self.inner.get(target).await
    }
    async fn execute(
        &self,
        operation: &firedrill_rollback::Operation,
    ) -> Result<firedrill_rollback::Done, firedrill_rollback::ClusterError> {
        self.alive()?;
        self.inner.execute(operation).await
    }
    async fn save(
        &self,
        ledger: &mut firedrill_rollback::Ledger,
    ) -> Result<(), firedrill_rollback::ClusterError> {
        self.alive()?;
        self.inner.save(ledger).await
    }
}

/// A pod of Deployment `app` in `namespace` on `node`, Running and Ready, asking for
/// `cpu_millis` of CPU (0: no request) and as many MiB of memory.
pub fn sized(namespace: &str, name: &str, app: &str, node: &str, cpu_millis: u64) -> Pod {
    let mut pod = ready_pod(
        namespace,
        name,
        serde_json::json!({ "app": app }),
        &format!("Deployment/{app}"),
        node,
    );
    if let (Some(spec), true) = (pod.spec.as_mut(), cpu_millis > 0) {
        spec.containers[0].resources = Some(
            serde_json::from_value(serde_json::json!({ "requests": {
                "cpu": format!("{cpu_millis}m"), "memory": format!("{cpu_millis}Mi") } }))
            .unwrap(),
        );
    }
    pod
}

/// Millis of a CPU quantity as these tests write them (`4`, `1500m`).
fn millis(quantity: &str) -> u64 {
    match quantity.strip_suffix('m') {
        Some(m) => m.parse().unwrap_or(0),
        None => quantity.parse::<u64>().map_or(0, |cpus| cpus * 1000),
    }
}

/// Stands in for the Deployment controller and the scheduler: a Deployment with fewer pods than
/// it wants gets one more ([`sized`], asking for `cpu_millis`), Running and Ready, `delay`
/// later, on the first node (by name) that is not cordoned and whose allocatable CPU holds it
/// beside the requests of the pods on it; with none, it waits (a Pending pod).
pub fn scheduler(
    client: kube::Client,
    namespace: &'static str,
    app: &'static str,
    delay: Duration,
    cpu_millis: u64,
) {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{ListParams, PostParams};
    tokio::spawn(async move {
        let pods = Api::<Pod>::namespaced(client.clone(), namespace);
        let mut next = 100;
        loop {
            let want = Api::<Deployment>::namespaced(client.clone(), namespace)
                .get(app)
                .await
                .ok()
                .and_then(|d| d.spec.and_then(|s| s.replicas))
                .unwrap_or(0) as usize;
            let have = pods
                .list(&ListParams::default().labels(&format!("app={app}")))
                .await
                .unwrap()
                .items
                .len();
            if have < want {
                tokio::time::sleep(delay).await;
                let every = Api::<Pod>::all(client.clone())
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items;
                let used = |node: &str| -> u64 {
                    every
                        .iter()
                        .filter(|p| {
                            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
                        })
                        .flat_map(|p| p.spec.iter().flat_map(|s| &s.containers))
                        .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get("cpu"))
                        .map(|q| millis(&q.0))
                        .sum()
                };
                let mut nodes = Api::<Node>::all(client.clone())
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items;
                nodes.sort_by_key(|n| n.metadata.name.clone());
                let room = nodes.iter().find_map(|n| {
                    let name = n.metadata.name.clone()?;
                    let cordoned = n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
                    let allocatable = n
                        .status
                        .as_ref()
                        .and_then(|s| s.allocatable.as_ref()?.get("cpu"))
                        .map_or(0, |q| millis(&q.0));
                    (!cordoned && used(&name) + cpu_millis <= allocatable).then_some(name)
                });
                if let Some(node) = room {
                    next += 1;
                    let pod = sized(namespace, &format!("{app}-{next}"), app, &node, cpu_millis);
                    pods.create(&PostParams::default(), &pod).await.unwrap();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}
