//! Every Kubernetes call the runtime makes, checked on the wire: method, path, query (label
//! selectors included) and body, with kube's tower_test mock pattern.

mod support;

use firedrill::cluster::kubernetes::{Created, Kube};
use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{json, Value};
use tower_test::mock::{self, Handle};

const NS: &str = "chaos-testing";

type Mock = Handle<Request<Body>, Response<Body>>;

fn kube() -> (Kube, Mock) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (Kube::new(kube::Client::new(service, NS), NS), handle)
}

/// One expected call: checks it and answers `status` with `reply`. Returns the request body.
async fn expect(
    handle: &mut Mock,
    method: Method,
    path: &str,
    query: Option<&str>,
    status: u16,
    reply: Value,
) -> Value {
    let (request, send) = handle.next_request().await.expect("a request");
    assert_eq!(request.method(), method, "method of {}", request.uri());
    assert_eq!(request.uri().path(), path);
    assert_eq!(request.uri().query(), query, "query of {path}");
    let body = request
        .into_body()
        .collect_bytes()
        .await
        .expect("request body");
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).expect("JSON body")
    };
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    body
}

fn not_found(kind: &str, name: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
            "message": format!("{kind} \"{name}\" not found") })
}

fn conflict(name: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists", "code": 409,
            "message": format!("\"{name}\" already exists") })
}

fn config_map(name: &str, data: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": name, "namespace": NS }, "data": data })
}

#[tokio::test]
async fn kill_switch_reads_one_config_map() {
    let (kube, mut api) = kube();
    let server = tokio::spawn(async move {
        let path = "/api/v1/namespaces/chaos-testing/configmaps/firedrill-kill-switch";
        expect(
            &mut api,
            Method::GET,
            path,
            None,
            404,
            not_found("configmaps", "firedrill-kill-switch"),
        )
        .await;
        expect(
            &mut api,
            Method::GET,
            path,
            None,
            200,
            config_map(
                "firedrill-kill-switch",
                json!({ "reason": "game day", "engaged-by": "ana" }),
            ),
        )
        .await;
        expect(
            &mut api,
            Method::GET,
            path,
            None,
            500,
            json!({ "kind": "Status", "code": 500, "message": "etcd is sad" }),
        )
        .await;
    });
    assert_eq!(kube.kill_switch().await.unwrap(), None);
    assert_eq!(
        kube.kill_switch().await.unwrap().as_deref(),
        Some("game day by ana")
    );
    assert!(
        kube.kill_switch().await.is_err(),
        "an unreadable switch is an error (callers treat it as engaged)"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn jobs_are_created_once_and_listed_by_label() {
    let config = firedrill::config::Config::load(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/examples/firedrill.yaml"),
    )
    .unwrap();
    let drill = config.drill("pod-kill-monthly").unwrap();
    let scheduled = "2027-01-15T15:00:00Z".parse().unwrap();
    let run = firedrill::cluster::job::RunRef {
        drill: drill.name.clone(),
        run: firedrill::cluster::job::run_id(&drill.name, scheduled),
        scheduled,
        dry_run: false,
    };
    let runtime = firedrill::cluster::job::Runtime {
        image: "firedrill:test".into(),
        config_map: "firedrill-config".into(),
        service_account: "firedrill".into(),
    };
    let job = firedrill::cluster::job::render(&config, drill, &run, &runtime);
    let name = run.run.clone();
    let (kube, mut api) = kube();
    let expected = serde_json::to_value(&job).unwrap();
    let server = tokio::spawn(async move {
        let jobs = "/apis/batch/v1/namespaces/chaos-testing/jobs";
        let body = expect(
            &mut api,
            Method::POST,
            jobs,
            Some(""),
            201,
            expected.clone(),
        )
        .await;
        assert_eq!(body["metadata"]["name"], expected["metadata"]["name"]);
        assert_eq!(body["kind"], "Job");
        assert_eq!(body["apiVersion"], "batch/v1");
        assert_eq!(body["spec"], expected["spec"]);
        expect(&mut api, Method::POST, jobs, Some(""), 409, conflict("job")).await;
        expect(&mut api, Method::GET, jobs, Some("&labelSelector=app.kubernetes.io%2Fname%3Dfiredrill%2Capp.kubernetes.io%2Fcomponent%3Ddrill"), 200,
            json!({ "apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": [expected] })).await;
        expect(
            &mut api,
            Method::GET,
            &format!("{jobs}/{}", expected["metadata"]["name"].as_str().unwrap()),
            None,
            404,
            not_found("jobs", "x"),
        )
        .await;
    });
    assert_eq!(kube.create_job(&job).await.unwrap(), Created::New);
    assert_eq!(kube.create_job(&job).await.unwrap(), Created::AlreadyExists);
    assert_eq!(kube.drill_jobs().await.unwrap().len(), 1);
    assert!(kube.job(&name).await.unwrap().is_none());
    server.await.unwrap();
}

#[tokio::test]
async fn the_lease_is_created_renewed_and_respected() {
    let (kube, mut api) = kube();
    let now: chrono::DateTime<chrono::Utc> = "2027-01-15T10:00:00Z".parse().unwrap();
    let server = tokio::spawn(async move {
        let leases = "/apis/coordination.k8s.io/v1/namespaces/chaos-testing/leases";
        let lease = format!("{leases}/firedrill-scheduler");
        // No Lease yet: create it.
        expect(
            &mut api,
            Method::GET,
            &lease,
            None,
            404,
            not_found("leases", "firedrill-scheduler"),
        )
        .await;
        let body = expect(&mut api, Method::POST, leases, Some(""), 201, json!({})).await;
        assert_eq!(body["spec"]["holderIdentity"], "a");
        assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
        assert_eq!(body["spec"]["renewTime"], "2027-01-15T10:00:00.000000Z");
        // Held by us: renew with the resourceVersion we read (optimistic concurrency).
        let ours = json!({ "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": { "name": "firedrill-scheduler", "namespace": NS, "resourceVersion": "7" },
            "spec": { "holderIdentity": "a", "leaseDurationSeconds": 15, "acquireTime": "2027-01-15T09:00:00.000000Z", "renewTime": "2027-01-15T09:59:55.000000Z", "leaseTransitions": 2 } });
        expect(&mut api, Method::GET, &lease, None, 200, ours.clone()).await;
        let body = expect(&mut api, Method::PUT, &lease, Some(""), 200, ours.clone()).await;
        assert_eq!(body["metadata"]["resourceVersion"], "7");
        assert_eq!(body["spec"]["acquireTime"], "2027-01-15T09:00:00.000000Z");
        assert_eq!(body["spec"]["leaseTransitions"], 2);
        // Held by someone else, whose clock is ten minutes behind: its renewTime looks long past,
        // but the record is new to us, so it is left alone (no write).
        let theirs = json!({ "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": { "name": "firedrill-scheduler", "namespace": NS, "resourceVersion": "8" },
            "spec": { "holderIdentity": "b", "leaseDurationSeconds": 15, "renewTime": "2027-01-15T09:50:00.000000Z", "leaseTransitions": 3 } });
        expect(&mut api, Method::GET, &lease, None, 200, theirs.clone()).await;
        // It renews (a new record): still left alone, 16 s later by our clock.
        let mut renewed = theirs.clone();
        renewed["metadata"]["resourceVersion"] = json!("9");
        renewed["spec"]["renewTime"] = json!("2027-01-15T09:50:10.000000Z");
        expect(&mut api, Method::GET, &lease, None, 200, renewed.clone()).await;
        // The same record 16 s after we first saw it: expired; take it, and a conflict means
        // someone was faster.
        expect(&mut api, Method::GET, &lease, None, 200, renewed).await;
        let body = expect(
            &mut api,
            Method::PUT,
            &lease,
            Some(""),
            409,
            conflict("lease"),
        )
        .await;
        assert_eq!(body["spec"]["holderIdentity"], "a");
        assert_eq!(body["spec"]["leaseTransitions"], 4);
    });
    let mut seen = firedrill::cluster::kubernetes::Seen::default();
    let later = |s: i64| now + chrono::TimeDelta::seconds(s);
    assert!(kube.lead("a", 15, now, &mut seen).await.unwrap());
    assert!(kube.lead("a", 15, now, &mut seen).await.unwrap());
    assert!(!kube.lead("a", 15, now, &mut seen).await.unwrap());
    assert!(!kube.lead("a", 15, later(16), &mut seen).await.unwrap());
    assert!(!kube.lead("a", 15, later(32), &mut seen).await.unwrap());
    server.await.unwrap();
}

#[tokio::test]
async fn results_events_and_snapshots() {
    let (kube, mut api) = kube();
    let record = firedrill::history::store::RunRecord {
        cluster: "default".into(),
        id: "probe-abc".into(),
        drill: "probe".into(),
        kind: "probe".into(),
        scheduled: "2027-01-15T10:00:00Z".parse().unwrap(),
        started: None,
        ended: None,
        status: firedrill::history::store::RunStatus::Passed,
        reason: None,
        targets: Vec::new(),
        measurements: Default::default(),
        evidence: Box::new(firedrill::run::Evidence::new()),
    };
    let sent = record.clone();
    let server = tokio::spawn(async move {
        let cms = "/api/v1/namespaces/chaos-testing/configmaps";
        let body = expect(
            &mut api,
            Method::POST,
            cms,
            Some(""),
            409,
            conflict("configmap"),
        )
        .await;
        assert_eq!(body["metadata"]["name"], "firedrill-result-probe-abc");
        assert_eq!(body["metadata"]["labels"]["firedrill.io/kind"], "result");
        let stored: firedrill::history::store::RunRecord =
            serde_json::from_str(body["data"]["run.json"].as_str().unwrap()).unwrap();
        assert_eq!(stored, sent);
        expect(
            &mut api,
            Method::PUT,
            &format!("{cms}/firedrill-result-probe-abc"),
            Some(""),
            200,
            body.clone(),
        )
        .await;
        expect(&mut api, Method::GET, cms, Some("&labelSelector=app.kubernetes.io%2Fname%3Dfiredrill%2Cfiredrill.io%2Fkind%3Dresult"), 200,
            json!({ "apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": [body] })).await;
        expect(
            &mut api,
            Method::DELETE,
            &format!("{cms}/firedrill-result-probe-abc"),
            Some(""),
            404,
            not_found("configmaps", "x"),
        )
        .await;
        let event = expect(
            &mut api,
            Method::POST,
            "/api/v1/namespaces/chaos-testing/events",
            Some(""),
            201,
            json!({}),
        )
        .await;
        assert_eq!(
            event["involvedObject"],
            json!({ "apiVersion": "batch/v1", "kind": "Job", "name": "probe-abc", "namespace": NS })
        );
        assert_eq!(
            (event["type"].as_str(), event["reason"].as_str()),
            (Some("Warning"), Some("DrillAborted"))
        );
        assert!(event["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("probe-abc."));
        // A snapshot of one namespace: the namespace, then each kind the guard reads.
        expect(
            &mut api,
            Method::GET,
            "/api/v1/namespaces/pake-api",
            None,
            200,
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "pake-api" } }),
        )
        .await;
        for path in [
            "/apis/apps/v1/namespaces/pake-api/deployments",
            "/apis/apps/v1/namespaces/pake-api/statefulsets",
            "/apis/apps/v1/namespaces/pake-api/daemonsets",
            "/apis/apps/v1/namespaces/pake-api/replicasets",
            "/apis/policy/v1/namespaces/pake-api/poddisruptionbudgets",
            "/api/v1/namespaces/pake-api/pods",
            "/api/v1/namespaces/pake-api/services",
        ] {
            expect(
                &mut api,
                Method::GET,
                path,
                Some(""),
                200,
                json!({ "apiVersion": "v1", "kind": "List", "metadata": {}, "items": [] }),
            )
            .await;
        }
    });
    kube.write_result(&record).await.unwrap();
    assert_eq!(kube.results().await.unwrap(), [record]);
    kube.delete_result("probe-abc").await.unwrap();
    kube.event("probe-abc", true, "DrillAborted", "aborted: 5xx above 25%")
        .await
        .unwrap();
    let objects = kube.snapshot(&["pake-api".to_owned()]).await.unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["kind"], "Namespace");
    server.await.unwrap();
}

#[tokio::test]
async fn status_reads_the_lease_holder_and_run_wait_reads_the_exit_code() {
    let (kube, mut api) = kube();
    let server = tokio::spawn(async move {
        expect(&mut api, Method::GET, "/apis/coordination.k8s.io/v1/namespaces/chaos-testing/leases/firedrill-scheduler", None, 200,
            json!({ "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": { "name": "firedrill-scheduler" },
                    "spec": { "holderIdentity": "firedrill-scheduler-7c9-x2", "renewTime": "2027-01-15T10:00:00.000000Z" } })).await;
        expect(&mut api, Method::GET, "/api/v1/namespaces/chaos-testing/pods", Some("&labelSelector=job-name%3Dprobe-abc"), 200,
            json!({ "apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [{
                "metadata": { "name": "probe-abc-x1" },
                "status": { "containerStatuses": [{ "name": "executor", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                    "state": { "terminated": { "exitCode": 2, "reason": "Error" } } }] } }] })).await;
    });
    assert_eq!(
        kube.leader().await.unwrap(),
        Some((
            "firedrill-scheduler-7c9-x2".into(),
            "2027-01-15T10:00:00.000000Z".into()
        ))
    );
    assert_eq!(kube.job_exit_code("probe-abc").await.unwrap(), Some(2));
    server.await.unwrap();
}

#[tokio::test]
async fn pod_kills_evict_through_the_subresource_and_a_budget_refusal_is_not_now() {
    use firedrill::cluster::ledger::KubeCluster;
    use firedrill_rollback::{Cluster, Done, ObjectKind, ObjectRef, Operation};
    let (kube, mut api) = kube();
    let server = tokio::spawn(async move {
        let eviction = "/api/v1/namespaces/apps/pods/web-0/eviction";
        let body = expect(
            &mut api,
            Method::POST,
            eviction,
            Some(""),
            201,
            json!({ "kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201 }),
        )
        .await;
        assert_eq!(body["apiVersion"], "policy/v1");
        assert_eq!(body["kind"], "Eviction");
        assert_eq!(body["metadata"]["name"], "web-0");
        assert_eq!(body["metadata"]["namespace"], "apps");
        assert_eq!(body["deleteOptions"]["gracePeriodSeconds"], 30);
        // A PodDisruptionBudget allows no disruption now.
        expect(&mut api, Method::POST, eviction, Some(""), 429,
            json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "TooManyRequests", "code": 429,
                    "message": "Cannot evict pod as it would violate the pod's disruption budget." })).await;
        // force: a delete with the grace period given.
        let body = expect(&mut api, Method::DELETE, "/api/v1/namespaces/apps/pods/web-1", Some(""), 200,
            json!({ "kind": "Pod", "apiVersion": "v1", "metadata": { "name": "web-1", "namespace": "apps" } })).await;
        assert_eq!(body["gracePeriodSeconds"], 0);
    });
    let cluster = KubeCluster::new(&kube);
    let pod = |name: &str| ObjectRef::namespaced(ObjectKind::Pod, "apps", name);
    let evict = Operation::Kill {
        pod: pod("web-0"),
        evict: true,
        grace_seconds: Some(30),
    };
    assert_eq!(cluster.execute(&evict).await, Ok(Done::Made));
    match cluster.execute(&evict).await {
        Ok(Done::Refused(why)) => assert!(why.contains("PodDisruptionBudget"), "{why}"),
        other => panic!("a 429 is not now, not an error and not retried: {other:?}"),
    }
    let delete = Operation::Kill {
        pod: pod("web-1"),
        evict: false,
        grace_seconds: Some(0),
    };
    assert_eq!(cluster.execute(&delete).await, Ok(Done::Made));
    server.await.unwrap();
}

#[tokio::test]
async fn node_faults_list_every_node_and_every_pod() {
    let (kube, mut api) = kube();
    let server = tokio::spawn(async move {
        expect(
            &mut api,
            Method::GET,
            "/api/v1/nodes",
            Some(""),
            200,
            json!({ "apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [
                { "metadata": { "name": "n1" }, "spec": { "unschedulable": true } } ] }),
        )
        .await;
        // One list across namespaces: a drain places what it moves on every node left.
        expect(&mut api, Method::GET, "/api/v1/pods", Some(""), 200,
            json!({ "apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [
                { "metadata": { "name": "db-0", "namespace": "data" }, "spec": { "nodeName": "n1", "containers": [] } } ] })).await;
    });
    let objects = kube.nodes_and_pods().await.unwrap();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0]["kind"], "Node");
    assert_eq!(objects[0]["spec"]["unschedulable"], true);
    assert_eq!(objects[1]["kind"], "Pod");
    assert_eq!(objects[1]["metadata"]["namespace"], "data");
    server.await.unwrap();
}

#[tokio::test]
async fn cordon_scale_and_selector_swap_are_merge_patches_of_one_field() {
    use firedrill::cluster::ledger::KubeCluster;
    use firedrill_rollback::{Cluster, Done, ObjectKind, ObjectRef, Step};
    let (kube, mut api) = kube();
    let server = tokio::spawn(async move {
        let mut patched = Vec::new();
        for path in [
            "/api/v1/nodes/n1",
            "/apis/apps/v1/namespaces/data/statefulsets/db",
            "/api/v1/namespaces/shop/services/api",
        ] {
            let (request, send) = api.next_request().await.expect("a request");
            assert_eq!(request.method(), Method::PATCH);
            assert_eq!(request.uri().path(), path);
            assert_eq!(
                request.headers()["content-type"],
                "application/merge-patch+json",
                "{path}"
            );
            let body: Value =
                serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap())
                    .unwrap();
            patched.push(body);
            send.send_response(
                Response::builder()
                    .status(200)
                    .body(Body::from(
                        serde_json::to_vec(&json!({ "metadata": { "name": "x" } })).unwrap(),
                    ))
                    .unwrap(),
            );
        }
        patched
    });
    let cluster = KubeCluster::new(&kube);
    let cordon = Step::cordon("n1", false);
    let scale = Step::scale(
        ObjectRef::namespaced(ObjectKind::StatefulSet, "data", "db"),
        3,
        0,
        None,
    );
    let swap = Step::swap_selector(
        ObjectRef::namespaced(ObjectKind::Service, "shop", "api"),
        [("app".to_owned(), "api".to_owned())].into(),
        [("firedrill.io/proxy".to_owned(), "run-1".to_owned())].into(),
    );
    for step in [&cordon, &scale, &swap] {
        assert_eq!(cluster.execute(&step.forward).await, Ok(Done::Made));
    }
    let patched = server.await.unwrap();
    assert_eq!(patched[0], json!({ "spec": { "unschedulable": true } }));
    assert_eq!(patched[1], json!({ "spec": { "replicas": 0 } }));
    // The old key is removed (null) and the proxy's set: the Service selects only the proxy.
    assert_eq!(
        patched[2],
        json!({ "spec": { "selector": { "app": null, "firedrill.io/proxy": "run-1" } } })
    );
}

#[tokio::test]
async fn a_workstation_run_uses_the_image_the_scheduler_gives_its_jobs() {
    let (kube, mut api) = kube();
    let server = tokio::spawn(async move {
        let path = format!("/apis/apps/v1/namespaces/{NS}/deployments/firedrill-scheduler");
        let deployment = json!({ "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "firedrill-scheduler", "namespace": NS },
            "spec": { "selector": { "matchLabels": { "app": "f" } }, "template": { "spec": {
                "serviceAccountName": "firedrill",
                "containers": [{ "name": "scheduler", "image": "ghcr.io/acme/firedrill:1.4.2",
                    "env": [{ "name": "FIREDRILL_IMAGE", "value": "ghcr.io/acme/firedrill@sha256:abc" },
                            { "name": "FIREDRILL_CONFIGMAP", "value": "drills" }] }] } } } });
        expect(&mut api, Method::GET, &path, None, 200, deployment.clone()).await;
        // Without FIREDRILL_IMAGE in its environment: its own image.
        let mut plain = deployment;
        plain["spec"]["template"]["spec"]["containers"][0]["env"] = json!([]);
        expect(&mut api, Method::GET, &path, None, 200, plain).await;
        expect(
            &mut api,
            Method::GET,
            &path,
            None,
            404,
            not_found("deployments", "firedrill-scheduler"),
        )
        .await;
    });
    let runtime = kube.scheduler_runtime().await.unwrap().unwrap();
    assert_eq!(runtime.image, "ghcr.io/acme/firedrill@sha256:abc");
    assert_eq!(runtime.config_map, "drills");
    assert_eq!(runtime.service_account, "firedrill");
    let runtime = kube.scheduler_runtime().await.unwrap().unwrap();
    assert_eq!(runtime.image, "ghcr.io/acme/firedrill:1.4.2");
    assert_eq!(runtime.config_map, "firedrill-config");
    assert!(kube.scheduler_runtime().await.unwrap().is_none());
    server.await.unwrap();
}

/// `skip` and `unskip` on the wire: who is asking from one SelfSubjectReview (and a refused
/// review recorded as unknown, not a failure); the marks in the ConfigMap `firedrill-skips`,
/// created with firedrill's labels, replaced at the version read (read and written again on a
/// conflict), and never written when the ConfigMap of that name is not firedrill's. The calls in
/// firedrill's namespace are what the Role grants the scheduler.
#[tokio::test]
async fn skip_and_unskip_on_the_wire() {
    use firedrill::cluster::skips::{self, Skip, SkipError};
    let at = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let now = at("2027-01-14T12:00:00Z");
    let mark = Skip {
        drill: "pod-kill-monthly".into(),
        scheduled: at("2027-01-15T10:00:00Z"),
        reason: "INC-7".into(),
        by: "ana@example.com".into(),
        marked: now,
    };
    let key = mark.key();
    let stored = serde_json::to_string(&mark).unwrap();
    let ours = |version: &str, data: Value| {
        json!({ "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "firedrill-skips", "namespace": NS, "resourceVersion": version,
                              "labels": { "app.kubernetes.io/name": "firedrill", "firedrill.io/kind": "skips" } },
                "data": data })
    };
    let (kube, mut api) = kube();
    let path = "/api/v1/namespaces/chaos-testing/configmaps/firedrill-skips";
    let (key2, stored2, ours2) = (key.clone(), stored.clone(), ours);
    let server = tokio::spawn(async move {
        let mut calls = Vec::new();
        let review = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
        let body = expect(&mut api, Method::POST, review, Some(""), 201,
            json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview",
                    "status": { "userInfo": { "username": "ana@example.com", "groups": ["oncall"] } } })).await;
        assert_eq!(body["kind"], "SelfSubjectReview");
        expect(&mut api, Method::POST, review, Some(""), 403,
            json!({ "kind": "Status", "code": 403, "reason": "Forbidden", "message": "selfsubjectreviews.authentication.k8s.io is forbidden" })).await;
        calls.push(format!("POST {review}?"));

        // The first mark creates the ConfigMap.
        expect(
            &mut api,
            Method::GET,
            path,
            None,
            404,
            not_found("configmaps", "firedrill-skips"),
        )
        .await;
        calls.push(format!("GET {path}?"));
        let created = expect(
            &mut api,
            Method::POST,
            "/api/v1/namespaces/chaos-testing/configmaps",
            Some(""),
            201,
            ours2("1", json!({ &key2: &stored2 })),
        )
        .await;
        calls.push("POST /api/v1/namespaces/chaos-testing/configmaps?".to_owned());
        assert_eq!(created["metadata"]["name"], "firedrill-skips");
        assert_eq!(
            created["metadata"]["labels"],
            json!({ "app.kubernetes.io/name": "firedrill", "firedrill.io/kind": "skips" })
        );
        assert_eq!(created["data"], json!({ &key2: &stored2 }));
        assert_eq!(
            serde_json::from_str::<Value>(created["data"][&key2].as_str().unwrap()).unwrap(),
            json!({ "drill": "pod-kill-monthly", "scheduled": "2027-01-15T10:00:00Z", "reason": "INC-7",
                    "by": "ana@example.com", "marked": "2027-01-14T12:00:00Z" })
        );

        // Taking it back: replaced at the version read; on a conflict, read and written again.
        expect(
            &mut api,
            Method::GET,
            path,
            None,
            200,
            ours2("7", json!({ &key2: &stored2 })),
        )
        .await;
        let put = expect(&mut api, Method::PUT, path, Some(""), 409,
            json!({ "kind": "Status", "code": 409, "reason": "Conflict", "message": "the object has been modified" })).await;
        assert_eq!(put["metadata"]["resourceVersion"], "7");
        expect(
            &mut api,
            Method::GET,
            path,
            None,
            200,
            ours2("8", json!({ &key2: &stored2, "stray": "kept" })),
        )
        .await;
        let put = expect(
            &mut api,
            Method::PUT,
            path,
            Some(""),
            200,
            ours2("9", json!({ "stray": "kept" })),
        )
        .await;
        calls.push(format!("PUT {path}?"));
        assert_eq!(put["metadata"]["resourceVersion"], "8");
        assert_eq!(
            put["data"],
            json!({ "stray": "kept" }),
            "only the mark goes"
        );

        // Nothing to take back: read, not written.
        expect(
            &mut api,
            Method::GET,
            path,
            None,
            200,
            ours2("9", json!({})),
        )
        .await;

        // One of the name that is not firedrill's: read, never written.
        expect(
            &mut api,
            Method::GET,
            path,
            None,
            200,
            config_map("firedrill-skips", json!({})),
        )
        .await;
        calls
    });
    assert_eq!(skips::whoami(&kube).await, "ana@example.com");
    let refused = skips::whoami(&kube).await;
    assert!(
        refused.starts_with("unknown (SelfSubjectReview refused: ")
            && refused.contains("forbidden"),
        "{refused}"
    );
    skips::mark(&kube, &mark, now).await.unwrap();
    assert_eq!(
        skips::unmark(&kube, &mark.drill, mark.scheduled, now)
            .await
            .unwrap(),
        mark
    );
    let nothing = skips::unmark(&kube, &mark.drill, mark.scheduled, now)
        .await
        .unwrap_err();
    assert!(matches!(nothing, SkipError::NotSkipped { .. }), "{nothing}");
    let foreign = skips::mark(&kube, &mark, now).await.unwrap_err();
    assert!(matches!(foreign, SkipError::Foreign { .. }), "{foreign}");
    let calls = server.await.unwrap();
    let role = support::granted("role.yaml");
    for call in calls
        .iter()
        .filter(|c| c.contains("/namespaces/chaos-testing/"))
    {
        let v = support::verb(call);
        assert!(
            role.contains(&v),
            "{call} needs {v:?}, which the Role does not grant"
        );
    }
    assert_eq!(
        support::verb(&calls[0]),
        (
            "authentication.k8s.io".to_owned(),
            "selfsubjectreviews".to_owned(),
            "create".to_owned()
        ),
        "the person's own right (system:basic-user grants it), not firedrill's"
    );
}
