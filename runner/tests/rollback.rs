//! The ledger through the Kubernetes adapter, on a stateful in-memory cluster (kube-fake-client):
//! a drill that makes a step of every undo type is killed after each step in turn (and between
//! each ledger write and its change); a later process — `rollback`, the scheduler's sweep or
//! `stop` — restores every object exactly. And `stop` twice is `stop` once.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicUsize;

use chrono::Utc;
use firedrill::cluster::kubernetes::Kube;
use firedrill::cluster::ledger::{self, KubeCluster, Protection, Selection};
use firedrill_rollback::{
    apply, Cluster, ClusterError, Key, Ledger, ObjectKind, ObjectRef, Operation, Scope, Step, Trust,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{json, Value};
use support::cluster::Dying;

const NS: &str = "chaos-testing";

async fn cluster() -> kube::Client {
    let objects: Vec<Value> = vec![
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "api", "namespace": "shop" },
                "spec": { "replicas": 3, "paused": false, "selector": { "matchLabels": { "app": "api" } }, "template": { "metadata": { "labels": { "app": "api" } }, "spec": { "containers": [{ "name": "api", "image": "api:1" }] } } } }),
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "worker", "namespace": "shop" },
                "spec": { "replicas": 2, "selector": { "matchLabels": { "app": "worker" } }, "template": { "metadata": { "labels": { "app": "worker" } }, "spec": { "containers": [{ "name": "w", "image": "w:1" }] } } } }),
        json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": "node-1" }, "spec": {} }),
        json!({ "apiVersion": "v1", "kind": "Node", "metadata": { "name": "node-2" }, "spec": { "unschedulable": true } }),
        json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "db", "namespace": "shop" },
                "spec": { "selector": { "app": "db", "tier": "primary" }, "ports": [{ "port": 5432 }] } }),
        json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": "api-0", "namespace": "shop", "labels": { "app": "api" } },
                "spec": { "containers": [{ "name": "api", "image": "api:1" }] } }),
        json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "firedrill-ledger-key", "namespace": NS },
                "data": { "key": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=" } }),
    ];
    kube_fake_client::ClientBuilder::new()
        .with_runtime_objects(objects)
        .build()
        .await
        .expect("fake cluster")
}

/// Steps of every undo type a fault kind can make (external systems have their own issue), as
/// the planners make them.
fn steps() -> Vec<Step> {
    let deployment = |name: &str| ObjectRef::namespaced(ObjectKind::Deployment, "shop", name);
    let pod = ObjectRef::namespaced(ObjectKind::Pod, "shop", "api-0");
    vec![
        Step::create(json!({ "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": { "namespace": "shop", "name": "firedrill-deny" },
            "spec": { "podSelector": { "matchLabels": { "app": "api" } }, "policyTypes": ["Ingress"] } }))
        .unwrap(),
        Step::cordon("node-1", false),
        Step::cordon("node-2", true),
        Step::scale(deployment("worker"), 2, 0, None),
        Step::swap_selector(
            ObjectRef::namespaced(ObjectKind::Service, "shop", "db"),
            BTreeMap::from([("app".into(), "db".into()), ("tier".into(), "primary".into())]),
            BTreeMap::from([("firedrill.io/proxy".into(), "run".into())]),
        ),
        Step::set_field(pod, "/metadata/labels/firedrill.io~1partition", None, Some(json!("run"))),
    ]
}

/// Every object, without what the API server changes on every write.
async fn state(client: &kube::Client) -> BTreeMap<String, Value> {
    fn clean(mut v: Value) -> Value {
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in [
                "resourceVersion",
                "generation",
                "managedFields",
                "uid",
                "creationTimestamp",
            ] {
                m.remove(k);
            }
        }
        v
    }
    let mut out = BTreeMap::new();
    let all = kube::api::ListParams::default();
    for d in Api::<Deployment>::all(client.clone())
        .list(&all)
        .await
        .unwrap()
        .items
    {
        out.insert(
            format!("Deployment {}", d.metadata.name.clone().unwrap()),
            clean(serde_json::to_value(d).unwrap()),
        );
    }
    for n in Api::<Node>::all(client.clone())
        .list(&all)
        .await
        .unwrap()
        .items
    {
        out.insert(
            format!("Node {}", n.metadata.name.clone().unwrap()),
            clean(serde_json::to_value(n).unwrap()),
        );
    }
    for s in Api::<Service>::all(client.clone())
        .list(&all)
        .await
        .unwrap()
        .items
    {
        out.insert(
            format!("Service {}", s.metadata.name.clone().unwrap()),
            clean(serde_json::to_value(s).unwrap()),
        );
    }
    for p in Api::<Pod>::all(client.clone())
        .list(&all)
        .await
        .unwrap()
        .items
    {
        out.insert(
            format!("Pod {}", p.metadata.name.clone().unwrap()),
            clean(serde_json::to_value(p).unwrap()),
        );
    }
    for p in Api::<NetworkPolicy>::all(client.clone())
        .list(&all)
        .await
        .unwrap()
        .items
    {
        out.insert(
            format!("NetworkPolicy {}", p.metadata.name.clone().unwrap()),
            clean(serde_json::to_value(p).unwrap()),
        );
    }
    out
}

/// The real adapter, dying after `left` more calls that change something.
fn declaring_one_zone() -> Protection {
    Protection {
        scope: firedrill_rollback::Scope {
            dns: Some(vec![firedrill_rollback::scope::DeclaredDns {
                drill: "fail-over".into(),
                zone: "Z1".into(),
                name: "api.example.com.".into(),
                record_type: "A".into(),
                set_identifiers: BTreeSet::from(["use1".to_owned()]),
                health_checks: BTreeSet::new(),
                endpoints: BTreeSet::from([None]),
            }]),
        },
        ..nothing_protected()
    }
}

fn nothing_protected() -> Protection {
    Protection::without_drill_file("chaos-testing")
}

/// The ledger key in the in-memory cluster's Secret (bytes 7 × 32), as the scheduler would have
/// created it.
static KEY: std::sync::LazyLock<Key> =
    std::sync::LazyLock::new(|| Key::from_bytes(&[7; 32]).unwrap());

/// Nothing protected, no drill file; entries signed and verified with [`KEY`].
fn trusted() -> Trust<'static> {
    planners_only()
}

fn unprotected(_: &ObjectRef) -> Option<String> {
    None
}

static NO_DRILL_FILE: Scope = Scope { dns: None };

/// Nothing protected, and what firedrill's planners write in scope.
fn planners_only() -> Trust<'static> {
    Trust::new(&unprotected, &NO_DRILL_FILE, &KEY)
}

#[tokio::test]
async fn killed_after_any_step_a_later_rollback_restores_every_object_exactly() {
    let steps = steps();
    // Each step is three calls: the ledger write, the change, the ledger update. Die before each.
    for killed_after in 0..=steps.len() * 3 {
        let client = cluster().await;
        let kube = Kube::new(client.clone(), NS);
        let before = state(&client).await;
        let dying = Dying {
            inner: KubeCluster::new(&kube),
            left: AtomicUsize::new(killed_after),
        };
        let mut ledger = Ledger::new("crash-run", "crash-drill", "test", "2099-01-01T00:00:00Z");
        let applied = apply(&dying, &mut ledger, &steps, &planners_only()).await;
        // (The last call, marking the last entry applied, is bookkeeping the applier may lose.)
        assert_eq!(
            applied.is_ok(),
            killed_after + 1 >= steps.len() * 3,
            "{applied:?}"
        );
        // Killed after the first ledger write, the first change was never made.
        if killed_after >= 2 {
            assert_ne!(
                state(&client).await,
                before,
                "killed after {killed_after}: something changed"
            );
        }
        // A later process, with only the cluster: the on-call engineer's rollback.
        let cluster = KubeCluster::new(&Kube::new(client.clone(), NS));
        let outcomes = ledger::rollback(
            &cluster,
            &Selection::All,
            &nothing_protected(),
            false,
            false,
        )
        .await
        .unwrap();
        assert!(
            !outcomes.iter().any(|o| o.failed()),
            "killed after {killed_after}: {outcomes:?}"
        );
        assert_eq!(
            state(&client).await,
            before,
            "killed after {killed_after}: {outcomes:?}"
        );
        // And again: nothing left to do.
        let again = ledger::rollback(
            &cluster,
            &Selection::All,
            &nothing_protected(),
            false,
            false,
        )
        .await
        .unwrap();
        assert!(again.is_empty(), "{again:?}");
    }
}

#[tokio::test]
async fn a_field_changed_by_someone_else_is_left_and_said() {
    let client = cluster().await;
    let kube = Kube::new(client.clone(), NS);
    let cluster = KubeCluster::new(&kube);
    let mut ledger = Ledger::new("run-x", "drill-x", "test", "2099-01-01T00:00:00Z");
    apply(&cluster, &mut ledger, &steps(), &planners_only())
        .await
        .unwrap();
    // Someone scales the worker by hand while the drill runs.
    Api::<Deployment>::namespaced(client.clone(), "shop")
        .patch(
            "worker",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": 7 } })),
        )
        .await
        .unwrap();
    let outcomes = ledger::rollback(
        &cluster,
        &Selection::Run("run-x".into()),
        &nothing_protected(),
        false,
        false,
    )
    .await
    .unwrap();
    let lines: Vec<String> = outcomes.iter().flat_map(ledger::describe).collect();
    assert!(
        lines.iter().any(|l| l.contains(
            "LEFT (changed since): Deployment shop/worker has 7 replicas, not the 0 the drill set"
        )),
        "{lines:#?}"
    );
    let worker = Api::<Deployment>::namespaced(client.clone(), "shop")
        .get("worker")
        .await
        .unwrap();
    assert_eq!(
        worker.spec.unwrap().replicas,
        Some(7),
        "left as the person set it"
    );
    let node = Api::<Node>::all(client.clone())
        .get("node-1")
        .await
        .unwrap();
    assert_ne!(
        node.spec.unwrap().unschedulable,
        Some(true),
        "the rest was reverted"
    );
}

#[tokio::test]
async fn the_scheduler_sweep_reverts_a_run_whose_job_is_gone_and_anything_past_its_expiry() {
    let client = cluster().await;
    let kube = Kube::new(client.clone(), NS);
    let cluster = KubeCluster::new(&kube);
    let before = state(&client).await;
    let mut from_job = Ledger::new("job-run", "d", "test", "2099-01-01T00:00:00Z");
    from_job.job = Some("job-run".into());
    apply(&cluster, &mut from_job, &steps()[3..4], &planners_only())
        .await
        .unwrap();
    let mut by_hand = Ledger::new("hand-run", "d", "test", "2099-01-01T00:00:00Z");
    apply(&cluster, &mut by_hand, &steps()[1..2], &planners_only())
        .await
        .unwrap();
    let mut expired = Ledger::new("old-run", "d", "test", "2020-01-01T00:00:00Z");
    apply(&cluster, &mut expired, &steps()[0..1], &planners_only())
        .await
        .unwrap();

    // The Job is still running: only the expired ledger is reverted.
    let running = BTreeSet::from(["job-run".to_owned()]);
    let done = ledger::sweep_expired(&kube, Utc::now(), &running, &nothing_protected())
        .await
        .unwrap();
    assert_eq!(
        done.iter().map(|o| o.ledger.as_str()).collect::<Vec<_>>(),
        ["firedrill-ledger-old-run"]
    );
    // The Job is gone: its run cannot revert itself, so the sweep does; the run by hand waits
    // for its expiry.
    let done = ledger::sweep_expired(&kube, Utc::now(), &BTreeSet::new(), &nothing_protected())
        .await
        .unwrap();
    assert_eq!(
        done.iter().map(|o| o.ledger.as_str()).collect::<Vec<_>>(),
        ["firedrill-ledger-job-run"]
    );
    let node = Api::<Node>::all(client.clone())
        .get("node-1")
        .await
        .unwrap();
    assert_eq!(
        node.spec.unwrap().unschedulable,
        Some(true),
        "the run by hand is still running"
    );
    ledger::rollback(
        &cluster,
        &Selection::Run("hand-run".into()),
        &nothing_protected(),
        false,
        false,
    )
    .await
    .unwrap();
    assert_eq!(state(&client).await, before);
}

/// A run whose revert failed leaves its follow-up open in the history until its ledger closes;
/// the scheduler's sweep then records when and how, once, and a ledger deleted while open is
/// recorded as such, never as restored.
#[tokio::test]
async fn a_failed_revert_is_recorded_closed_once_its_ledger_closes() {
    use firedrill::history::store::Store;
    use firedrill::run::{Measurements, RunRecord, RunStatus};
    let client = cluster().await;
    let kube = Kube::new(client.clone(), NS);
    let cluster = KubeCluster::new(&kube);
    let dir = std::env::temp_dir().join(format!(
        "firedrill-closed-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = firedrill::config::Store::Sqlite(dir.join("history.db").display().to_string());
    let store = Store::open(&url, "us-east").await.unwrap();
    let failed = |id: &str| RunRecord {
        cluster: "us-east".into(),
        id: id.into(),
        drill: "d".into(),
        kind: "pod-kill".into(),
        scheduled: Utc::now(),
        started: Some(Utc::now()),
        ended: Some(Utc::now()),
        status: RunStatus::Error,
        reason: Some("REVERT FAILED".into()),
        targets: Vec::new(),
        measurements: Measurements::default(),
        evidence: Box::new(firedrill::run::Evidence::from_value(
            &json!({ "injected": { "changed": ["scale"] }, "revert_error": "the API server did not answer" }),
        )),
    };
    // One run's ledger is still open in the cluster; the other's was deleted by hand.
    let mut open = Ledger::new("stuck-run", "d", "test", "2099-01-01T00:00:00Z");
    apply(&cluster, &mut open, &steps()[3..4], &planners_only())
        .await
        .unwrap();
    store.record_run(&failed("stuck-run")).await.unwrap();
    store.record_run(&failed("gone-run")).await.unwrap();
    assert_eq!(
        store.open_rollbacks().await.unwrap(),
        ["gone-run", "stuck-run"]
    );

    let now = Utc::now();
    let closed = firedrill::schedule::scheduler::record_closed_rollbacks(&kube, &store, now)
        .await
        .unwrap();
    assert_eq!(
        closed,
        ["gone-run"],
        "the open ledger is left for a later sweep"
    );
    ledger::rollback(
        &cluster,
        &Selection::Run("stuck-run".into()),
        &nothing_protected(),
        false,
        false,
    )
    .await
    .unwrap();
    let closed = firedrill::schedule::scheduler::record_closed_rollbacks(&kube, &store, now)
        .await
        .unwrap();
    assert_eq!(closed, ["stuck-run"]);
    assert!(store.open_rollbacks().await.unwrap().is_empty());
    let again = firedrill::schedule::scheduler::record_closed_rollbacks(&kube, &store, now)
        .await
        .unwrap();
    assert!(again.is_empty(), "recorded once");

    let runs = store
        .runs_between(
            now - chrono::TimeDelta::hours(1),
            now + chrono::TimeDelta::hours(1),
            None,
            None,
        )
        .await
        .unwrap();
    let found = |id: &str| {
        let r = runs.iter().find(|r| r.id == id).unwrap();
        assert!(r.rollback_failed(), "the run's own revert still failed");
        let c = r.rollback_closed().unwrap();
        (c.restored, c.how.unwrap())
    };
    assert_eq!(
        found("stuck-run"),
        (
            true,
            "ledger firedrill-ledger-stuck-run closed: every change reverted, or left and said"
                .to_owned()
        )
    );
    assert_eq!(
        found("gone-run"),
        (false, "ledger firedrill-ledger-gone-run deleted while open: what it held was never seen reverted; look at the objects it named".to_owned())
    );
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn stop_engages_the_switch_deletes_jobs_sweeps_and_reverts_and_twice_is_once() {
    let client = cluster().await;
    let kube = Kube::new(client.clone(), NS);
    let cluster = KubeCluster::new(&kube);
    let before = state(&client).await;
    // A running drill Job, a run that changed things, and an artifact whose ledger was lost.
    let job: Job = serde_json::from_value(json!({ "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": "drill-1", "namespace": NS, "labels": { "app.kubernetes.io/name": "firedrill", "app.kubernetes.io/component": "drill" } },
        "spec": { "template": { "spec": { "restartPolicy": "Never", "containers": [{ "name": "e", "image": "firedrill" }] } } } }))
        .unwrap();
    Api::<Job>::namespaced(client.clone(), NS)
        .create(&Default::default(), &job)
        .await
        .unwrap();
    let mut ledger = Ledger::new("run-s", "drill-1", "test", "2099-01-01T00:00:00Z");
    apply(&cluster, &mut ledger, &steps(), &planners_only())
        .await
        .unwrap();
    let stray: NetworkPolicy = serde_json::from_value(json!({ "metadata": { "name": "stray", "namespace": "other",
        "labels": { "firedrill.io/artifact": "true", "firedrill.io/run": "lost-run" } }, "spec": { "podSelector": {} } }))
        .unwrap();
    Api::<NetworkPolicy>::namespaced(client.clone(), "other")
        .create(&Default::default(), &stray)
        .await
        .unwrap();

    let report = ledger::stop(&kube, "INC-7", "oncall", &nothing_protected()).await;
    assert!(report.clean(), "{report:#?}");
    assert_eq!(
        report.kill_switch.as_deref(),
        Ok("kill switch engaged (INC-7, by oncall)")
    );
    let switch = Api::<ConfigMap>::namespaced(client.clone(), NS)
        .get("firedrill-kill-switch")
        .await
        .unwrap();
    assert_eq!(switch.data.unwrap()["reason"], "INC-7");
    assert!(Api::<Job>::namespaced(client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .is_empty());
    let mut after = state(&client).await;
    assert!(
        after.remove("NetworkPolicy stray").is_none(),
        "the stray artifact was swept"
    );
    assert_eq!(after, before);

    let again = ledger::stop(&kube, "INC-7", "oncall", &nothing_protected()).await;
    assert!(again.clean(), "{again:#?}");
    assert_eq!(
        again.kill_switch.as_deref(),
        Ok("kill switch was already engaged")
    );
    assert!(
        again.ledgers.is_empty() && again.swept.iter().all(|s| s.as_ref().unwrap().count == 0),
        "{again:#?}"
    );
    assert_eq!(state(&client).await, before);

    assert_eq!(ledger::release(&kube).await, Ok(true));
    assert_eq!(ledger::release(&kube).await, Ok(false));
}

#[tokio::test]
async fn cooldown_reads_the_workloads_a_run_hit_from_its_ledger() {
    let client = cluster().await;
    let kube = Kube::new(client.clone(), NS);
    let cluster = KubeCluster::new(&kube);
    let mut ledger = Ledger::new("run-c", "drill-c", "test", "2099-01-01T00:00:00Z");
    ledger.started = Some(Utc::now().to_rfc3339());
    ledger.hits = vec!["Deployment/shop/worker".into()];
    apply(&cluster, &mut ledger, &steps()[3..4], &planners_only())
        .await
        .unwrap();
    let hits = ledger::recent_hits(&kube, Utc::now() - chrono::TimeDelta::hours(1))
        .await
        .unwrap();
    let (owner, at) = hits.iter().next().expect("one hit");
    assert_eq!(owner.to_string(), "Deployment/shop/worker");
    assert!((Utc::now().timestamp() - at).abs() < 60);
    let later = ledger::recent_hits(&kube, Utc::now() + chrono::TimeDelta::hours(1))
        .await
        .unwrap();
    assert!(
        later.is_empty(),
        "a hit before the cooldown window does not count"
    );
}

#[tokio::test]
async fn a_run_id_is_used_once_and_concurrent_writers_never_lose_an_entry() {
    let client = cluster().await;
    let kube = Kube::new(client.clone(), NS);
    let cluster = KubeCluster::new(&kube);
    let steps = steps();
    let mut executor = Ledger::new("run-w", "drill-w", "test", "2099-01-01T00:00:00Z");
    apply(&cluster, &mut executor, &steps[1..2], &planners_only())
        .await
        .unwrap();
    // Another run under the same id cannot take the ledger over.
    let mut other = Ledger::new("run-w", "drill-w", "test", "2099-01-01T00:00:00Z");
    let err = apply(&cluster, &mut other, &steps[3..4], &planners_only())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("run id run-w is already used"),
        "{err}"
    );

    // `stop` reads the ledger and reverts from its copy while the executor applies one more step.
    let Some(Ok(mut stop_copy)) = cluster.ledger("run-w").await.unwrap() else {
        panic!("the ledger is readable");
    };
    apply(&cluster, &mut executor, &steps[3..4], &planners_only())
        .await
        .unwrap();
    firedrill_rollback::replay(&cluster, &mut stop_copy, &planners_only(), false).await;
    let Some(Ok(stored)) = cluster.ledger("run-w").await.unwrap() else {
        panic!("the ledger is readable");
    };
    assert_eq!(
        stored.entries.len(),
        2,
        "the executor's later step is not lost: {stored:?}"
    );
    assert!(stored.is_open(), "the scale is still to be undone");
    let outcomes = ledger::rollback(
        &cluster,
        &Selection::Run("run-w".into()),
        &nothing_protected(),
        false,
        false,
    )
    .await
    .unwrap();
    assert!(!outcomes.iter().any(|o| o.failed()), "{outcomes:?}");
    let worker = Api::<Deployment>::namespaced(client.clone(), "shop")
        .get("worker")
        .await
        .unwrap();
    assert_eq!(worker.spec.unwrap().replicas, Some(2));
}

#[tokio::test]
async fn stop_never_closes_what_its_sweep_did_not_delete_and_never_sweeps_protected_objects() {
    let client = cluster().await;
    let kube = Kube::new(client.clone(), NS);
    let cluster = KubeCluster::new(&kube);
    let mut ledger = Ledger::new("run-u", "drill-u", "test", "2099-01-01T00:00:00Z");
    apply(&cluster, &mut ledger, &steps()[0..1], &planners_only())
        .await
        .unwrap();
    // Someone strips the artifact label: the sweep cannot see it, the ledger still can.
    Api::<NetworkPolicy>::namespaced(client.clone(), "shop")
        .patch(
            "firedrill-deny",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "firedrill.io/artifact": null } } })),
        )
        .await
        .unwrap();
    // A labelled artifact in a protected namespace is never swept.
    let guarded: NetworkPolicy = serde_json::from_value(
        json!({ "metadata": { "name": "keep", "namespace": "kube-system",
        "labels": { "firedrill.io/artifact": "true" } }, "spec": { "podSelector": {} } }),
    )
    .unwrap();
    Api::<NetworkPolicy>::namespaced(client.clone(), "kube-system")
        .create(&Default::default(), &guarded)
        .await
        .unwrap();

    let report = ledger::stop(&kube, "INC-9", "oncall", &nothing_protected()).await;
    assert!(
        Api::<NetworkPolicy>::namespaced(client.clone(), "shop")
            .get_opt("firedrill-deny")
            .await
            .unwrap()
            .is_none(),
        "the ledger's own entry deleted it: {report:#?}"
    );
    assert!(
        Api::<NetworkPolicy>::namespaced(client.clone(), "kube-system")
            .get_opt("keep")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        !report.clean(),
        "a protected artifact remains, and stop says so"
    );
    assert!(
        report
            .remaining
            .iter()
            .any(|r| r.contains("NetworkPolicy kube-system/keep")),
        "{:?}",
        report.remaining
    );
}

/// `rollback --ledger FILE --render` reads a saved ledger within a drill file's bounds:
/// `/dev/zero` or a pipe that never ends stops at 32 MiB (it once grew to 17.4 GiB in a
/// minute), and bytes that are not UTF-8 are named where they are.
#[test]
fn a_saved_ledger_is_read_within_the_drill_files_bounds() {
    let render = |ledger: &std::path::Path| {
        let out = support::output_within(
            std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
                .args(["rollback", "--render", "--ledger"])
                .arg(ledger),
            std::time::Duration::from_secs(30),
            &format!("rollback --ledger {}", ledger.display()),
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = render(std::path::Path::new("/dev/zero"));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("/dev/zero: the file is larger than the limit of 32 MiB for a saved ledger"),
        "{err}"
    );

    let dir = std::env::temp_dir().join(format!(
        "firedrill-ledger-bounds-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // A pipe with a writer that never stops (until the reader goes).
    let fifo = dir.join("endless.yaml");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let writer = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            use std::io::Write;
            let mut pipe = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let line = b"# a comment that goes on and on\n".repeat(1024);
            while pipe.write_all(&line).is_ok() {}
        }
    });
    let (code, err) = render(&fifo);
    writer.join().unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("larger than the limit of 32 MiB"), "{err}");

    let latin1 = dir.join("latin1.yaml");
    std::fs::write(&latin1, b"kind: ConfigMap\ndata:\n  caf\xe9: x\n").unwrap();
    let (code, err) = render(&latin1);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("latin1.yaml: 3:6: not UTF-8 text (invalid byte at offset 27)"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Issue #22, scope: ledger entries no planner of firedrill writes, in a hand-written ledger
/// ConfigMap (anyone who may write ConfigMaps in firedrill's namespace could), are refused by
/// whichever revert meets them: the scheduler's sweep, `stop` and `rollback`.
#[derive(Clone, Copy, Debug)]
enum Revert {
    Sweep,
    Stop,
    Rollback,
}

/// The forged entries, as JSON text, and what each names (`None`: outside Kubernetes).
/// An object as (resource, namespace, name).
type Named = (&'static str, &'static str, &'static str);

fn forged_entries() -> Vec<(&'static str, Option<Named>)> {
    vec![
        // Path traversal from the partition label to a pod's image.
        (
            r#"{"undo":{"type":"restore-field","target":{"kind":"Pod","namespace":"shop","name":"api-0"},"path":"/metadata/labels/../../spec/containers/0/image","prior":"evil:1","applied":null},"state":"applied"}"#,
            Some(("pods", "shop", "api-0")),
        ),
        // A field no planner writes (it holds `applied` now, so a revert would act): the
        // label a Service selects the pod by.
        (
            r#"{"undo":{"type":"restore-field","target":{"kind":"Pod","namespace":"shop","name":"api-0"},"path":"/metadata/labels/app","prior":"evil","applied":"api"},"state":"applied"}"#,
            Some(("pods", "shop", "api-0")),
        ),
        // A kind no planner changes a field of: a Deployment's `paused`.
        (
            r#"{"undo":{"type":"restore-field","target":{"kind":"Deployment","namespace":"shop","name":"api"},"path":"/spec/paused","prior":true,"applied":false},"state":"applied"}"#,
            Some(("deployments", "shop", "api")),
        ),
        // A kind no planner creates, labelled as if this run had made it.
        (
            r#"{"undo":{"type":"delete-created","target":{"kind":"ConfigMap","namespace":"shop","name":"firedrill-settings"}},"state":"applied"}"#,
            Some(("configmaps", "shop", "firedrill-settings")),
        ),
        // A kube-system object.
        (
            r#"{"undo":{"type":"restore-replicas","target":{"kind":"Deployment","namespace":"kube-system","name":"coredns"},"prior":0,"applied":2},"state":"applied"}"#,
            Some(("deployments", "kube-system", "coredns")),
        ),
        // A zone the drill file does not declare (the endpoint would refuse a connection).
        (
            r#"{"undo":{"type":"external","system":"route53","record":{"target":{"zone":"ZEVIL","name":"bank.example.com.","type":"A","set_identifier":"a","endpoint":"http://127.0.0.1:9"},"prior":{"name":"bank.example.com.","type":"A","set_identifier":"a","weight":100,"records":["203.0.113.66"]},"applied":{"name":"bank.example.com.","type":"A","set_identifier":"a","weight":0}}},"state":"applied"}"#,
            None,
        ),
    ]
}

async fn raw(client: &kube::Client, (resource, ns, name): Named) -> Value {
    let object = match resource {
        "deployments" => serde_json::to_value(
            Api::<Deployment>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .unwrap(),
        ),
        "pods" => serde_json::to_value(
            Api::<Pod>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .unwrap(),
        ),
        _ => serde_json::to_value(
            Api::<ConfigMap>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .unwrap(),
        ),
    };
    object.unwrap()
}

async fn forged_entries_are_refused_by(revert: Revert) {
    let client = cluster().await;
    let kube = Kube::new(client.clone(), NS);
    let cluster = KubeCluster::new(&kube);
    for (ns, object) in [(
        "kube-system",
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "coredns", "namespace": "kube-system" },
                    "spec": { "replicas": 2, "selector": { "matchLabels": { "k8s-app": "dns" } }, "template": { "metadata": { "labels": { "k8s-app": "dns" } }, "spec": { "containers": [{ "name": "c", "image": "coredns:1" }] } } } }),
    )] {
        let d: Deployment = serde_json::from_value(object).unwrap();
        Api::<Deployment>::namespaced(client.clone(), ns)
            .create(&Default::default(), &d)
            .await
            .unwrap();
    }
    let settings: ConfigMap = serde_json::from_value(
        json!({ "metadata": { "name": "firedrill-settings", "namespace": "shop",
        "labels": { "firedrill.io/run": "forged" } }, "data": { "keep": "me" } }),
    )
    .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "shop")
        .create(&Default::default(), &settings)
        .await
        .unwrap();
    // The real run: a scale and a cordon, through the applier.
    let mut real = Ledger::new("real", "d", "test", "2020-01-01T00:00:00Z");
    apply(&cluster, &mut real, &steps()[1..4], &planners_only())
        .await
        .unwrap();
    // The forgery, written as a ConfigMap by hand: every label and key a ledger has, and each
    // entry signed with the real key (as if the key had leaked): the scope alone must refuse it.
    let mut data = BTreeMap::from([
        ("format".to_owned(), firedrill_rollback::FORMAT.to_owned()),
        ("run".to_owned(), "forged".to_owned()),
        ("drill".to_owned(), "d".to_owned()),
        ("kind".to_owned(), "test".to_owned()),
    ]);
    for (i, (entry, _)) in forged_entries().iter().enumerate() {
        let mut entry: Value = serde_json::from_str(entry).unwrap();
        if let Ok(undo) = serde_json::from_value(entry["undo"].clone()) {
            entry["mac"] = json!(KEY.seal("forged", "d", i + 1, &undo));
        }
        data.insert(format!("step-{:04}", i + 1), entry.to_string());
    }
    let forged: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "firedrill-ledger-forged", "namespace": NS,
            "labels": { "app.kubernetes.io/name": "firedrill", "firedrill.io/kind": "ledger", "firedrill.io/run": "forged", "firedrill.io/drill": "d" },
            "annotations": { "firedrill.io/expires-at": "2020-01-01T00:00:00Z" } },
        "data": data,
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .create(&Default::default(), &forged)
        .await
        .unwrap();
    let mut named = Vec::new();
    for (_, object) in forged_entries() {
        if let Some(object) = object {
            named.push((object, raw(&client, object).await));
        }
    }
    let during = state(&client).await;

    // A drill file that declares one zone, not the forged one.
    let protection = declaring_one_zone();
    let outcomes = match revert {
        Revert::Sweep => ledger::sweep_expired(&kube, Utc::now(), &BTreeSet::new(), &protection)
            .await
            .unwrap(),
        Revert::Stop => {
            let report = ledger::stop(&kube, "INC-22", "oncall", &protection).await;
            assert!(!report.clean(), "the forged ledger stays open: {report:#?}");
            assert!(
                report
                    .remaining
                    .contains(&"ledger firedrill-ledger-forged still open".to_owned()),
                "{:?}",
                report.remaining
            );
            report.ledgers
        }
        Revert::Rollback => ledger::rollback(&cluster, &Selection::All, &protection, false, false)
            .await
            .unwrap(),
    };
    let forged = outcomes
        .iter()
        .find(|o| o.ledger == "firedrill-ledger-forged")
        .unwrap_or_else(|| {
            panic!("{revert:?}: the forged ledger was not looked at: {outcomes:#?}")
        });
    let report = forged.result.as_ref().unwrap();
    assert_eq!(report.actions.len(), forged_entries().len(), "{report:#?}");
    for action in &report.actions {
        assert_eq!(
            action.outcome,
            firedrill_rollback::Outcome::Failed,
            "{revert:?}: {action:?}"
        );
        assert!(
            action.text.starts_with("refused: "),
            "{revert:?}: {action:?}"
        );
    }
    let says = |what: &str| {
        assert!(
            report.actions.iter().any(|a| a.text.contains(what)),
            "{revert:?}: no refusal says {what:?}: {report:#?}"
        )
    };
    says("has a . or .. segment");
    says("path \"/metadata/labels/app\" on Pod shop/api-0 is not a field firedrill sets");
    says("restore-field names Deployment shop/api, a kind firedrill never changes this way (only Pod)");
    says("names ConfigMap shop/firedrill-settings, a kind firedrill never changes this way");
    says("names Deployment kube-system/coredns, which is protected (kube-system is always protected)");
    says("external record in zone ZEVIL (bank.example.com. A set a) at endpoint http://127.0.0.1:9: no drill in the drill file declares it");
    // Every object a forged entry names is byte-identical, resourceVersion included.
    for (object, before) in &named {
        assert_eq!(
            &raw(&client, *object).await,
            before,
            "{revert:?}: {object:?}"
        );
    }
    // The forged ledger stays open, every entry as written, for a person.
    let kept = cluster.ledger("forged").await.unwrap().unwrap().unwrap();
    assert!(kept.entries.iter().all(|e| e.state.is_open()), "{kept:?}");
    // The real run next to it is reverted as before.
    let real = outcomes
        .iter()
        .find(|o| o.ledger == "firedrill-ledger-real")
        .unwrap();
    assert!(!real.failed(), "{revert:?}: {real:#?}");
    assert!(!cluster
        .ledger("real")
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .is_open());
    let after = state(&client).await;
    assert_eq!(
        after["Deployment worker"]["spec"]["replicas"], 2,
        "{revert:?}"
    );
    assert_eq!(
        after["Node node-1"]["spec"].get("unschedulable"),
        None,
        "{revert:?}"
    );
    assert_ne!(during["Deployment worker"], after["Deployment worker"]);
}

#[tokio::test]
async fn the_sweep_refuses_entries_no_planner_writes_and_reverts_the_real_ledger() {
    forged_entries_are_refused_by(Revert::Sweep).await;
}

#[tokio::test]
async fn stop_refuses_entries_no_planner_writes_and_reverts_the_real_ledger() {
    forged_entries_are_refused_by(Revert::Stop).await;
}

#[tokio::test]
async fn rollback_refuses_entries_no_planner_writes_and_reverts_the_real_ledger() {
    forged_entries_are_refused_by(Revert::Rollback).await;
}

/// A saved ledger (as `kubectl get configmap -o yaml` prints one) holding `entries`.
fn saved_ledger(dir: &std::path::Path, entries: &[&str]) -> std::path::PathBuf {
    let mut text = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: firedrill-ledger-r1\n  namespace: chaos-testing\n\
         data:\n  format: firedrill.io/ledger-v2\n  run: r1\n  drill: d\n  kind: test\n",
    );
    for (i, entry) in entries.iter().enumerate() {
        text.push_str(&format!("  step-{:04}: '{entry}'\n", i + 1));
    }
    let path = dir.join("ledger.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The YAML documents `rollback --ledger FILE --render` prints, as JSON.
fn rendered(text: &str) -> Vec<Value> {
    text.split("---\n")
        .skip(1)
        .map(|doc| {
            let node =
                firedrill_reader::yaml::parse_within(doc, firedrill_reader::yaml::Limits::LEDGER)
                    .unwrap_or_else(|e| panic!("{doc}: {}", e.message));
            firedrill_reader::yaml::to_json(&node)
        })
        .collect()
}

/// Issue #22: `--render` said an uncordon for a node cordoned before the drill, left out the
/// refusal of a kube-system object, and showed `set: null, target: null` for an external record
/// no handler knows. It now shows what the revert does: each entry's verdict, and its call.
#[test]
fn render_shows_the_reverts_verdicts_not_its_own_reading() {
    let dir = std::env::temp_dir().join(format!(
        "firedrill-render-verdicts-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ledger = saved_ledger(
        &dir,
        &[
            r#"{"undo":{"type":"uncordon","node":"node-2","was_unschedulable":true},"state":"applied"}"#,
            r#"{"undo":{"type":"delete-created","target":{"kind":"NetworkPolicy","namespace":"kube-system","name":"firedrill-deny"}},"state":"applied"}"#,
            r#"{"undo":{"type":"external","system":"gcp-dns","record":{"zone":"z","name":"api"}},"state":"applied"}"#,
            r#"{"undo":{"type":"uncordon","node":"node-1","was_unschedulable":false},"state":"applied"}"#,
        ],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["rollback", "--render", "--ledger"])
        .arg(&ledger)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = rendered(&text);
    let by_step = |step: &str| {
        docs.iter()
            .find(|d| d["step"] == step)
            .unwrap_or_else(|| panic!("no {step} in {text}"))
            .clone()
    };
    // Newest first, as the revert goes.
    let steps: Vec<&str> = docs.iter().map(|d| d["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["step-0004", "step-0003", "step-0002", "step-0001"]);
    // Cordoned before the drill: left cordoned, no call.
    let cordoned = by_step("step-0001");
    assert_eq!(cordoned["verdict"], "already as before", "{text}");
    // Offline there is no key: every entry judged says it was not checked.
    assert_eq!(
        cordoned["why"],
        "Node node-2 was cordoned before the drill; left cordoned (signature not checked: no key given)"
    );
    assert!(cordoned.get("call").is_none(), "{text}");
    // kube-system: refused, and why.
    let protected = by_step("step-0002");
    assert_eq!(protected["verdict"], "refused", "{text}");
    assert!(
        protected["why"]
            .as_str()
            .unwrap()
            .contains("names NetworkPolicy kube-system/firedrill-deny, which is protected (kube-system is always protected)"),
        "{text}"
    );
    assert!(protected.get("call").is_none(), "{text}");
    // A system firedrill has no handler for: refused, never a call with nulls.
    let unknown = by_step("step-0003");
    assert_eq!(unknown["verdict"], "refused", "{text}");
    assert!(
        unknown["why"].as_str().unwrap().contains(
            "external system \"gcp-dns\" is not one firedrill changes (route53, promotion)"
        ),
        "{text}"
    );
    assert!(!text.contains("set: null"), "{text}");
    // The one real revert: the exact call.
    let uncordon = by_step("step-0004");
    assert_eq!(uncordon["verdict"], "will revert", "{text}");
    assert_eq!(
        uncordon["call"],
        json!({ "op": "patch", "target": { "kind": "Node", "name": "node-1" }, "patch": { "spec": { "unschedulable": null } } })
    );
    assert_eq!(
        uncordon["operation"],
        "patch Node node-1: {\"spec\":{\"unschedulable\":null}}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The cluster as a run left it, built by this test from the ledger (on its own, not with
/// `AsLeft`): each open entry's object at the value the run applied. Records every call.
#[derive(Default)]
struct LeftByRun {
    objects: std::sync::Mutex<BTreeMap<ObjectRef, Value>>,
    externals: std::sync::Mutex<BTreeMap<String, Value>>,
    calls: std::sync::Mutex<Vec<Operation>>,
}

impl LeftByRun {
    fn of(ledger: &Ledger) -> Self {
        use firedrill_rollback::UndoRecord as U;
        let left = LeftByRun::default();
        {
            let mut objects = left.objects.lock().unwrap();
            fn at<'m>(objects: &'m mut BTreeMap<ObjectRef, Value>, r: &ObjectRef) -> &'m mut Value {
                objects.entry(r.clone()).or_insert_with(|| {
                    json!({ "kind": r.kind.to_string(), "metadata": { "name": r.name, "namespace": r.namespace } })
                })
            }
            for entry in ledger.entries.iter().filter(|e| e.state.is_open()) {
                match &entry.undo {
                    U::DeleteCreated { target } => {
                        at(&mut objects, target)["metadata"]["labels"] =
                            json!({ "firedrill.io/run": ledger.run });
                    }
                    U::RestoreField {
                        target,
                        applied,
                        path,
                        ..
                    } => {
                        // The only field in scope: the partition label. Any other path is
                        // refused before its object is read, so what it holds does not matter.
                        if path != "/metadata/labels/firedrill.io~1partition" {
                            continue;
                        }
                        let o = at(&mut objects, target);
                        match applied {
                            Some(v) => {
                                o["metadata"]["labels"]["firedrill.io/partition"] = v.clone()
                            }
                            None => {
                                if let Some(l) = o["metadata"]["labels"].as_object_mut() {
                                    l.remove("firedrill.io/partition");
                                }
                            }
                        }
                    }
                    U::Uncordon { node, .. } => {
                        at(&mut objects, &ObjectRef::node(node))["spec"]["unschedulable"] =
                            json!(true);
                    }
                    U::RestoreReplicas {
                        target, applied, ..
                    } => at(&mut objects, target)["spec"]["replicas"] = json!(applied),
                    U::RestoreSelector {
                        service, applied, ..
                    } => at(&mut objects, service)["spec"]["selector"] = json!(applied),
                    U::External { system, record } => {
                        if let Some(applied) = record.get("applied") {
                            left.externals
                                .lock()
                                .unwrap()
                                .insert(format!("{system} {}", record["target"]), applied.clone());
                        }
                    }
                    U::Recreated { .. } => {}
                }
            }
        }
        left
    }
}

impl Cluster for LeftByRun {
    async fn get(&self, target: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        Ok(self.objects.lock().unwrap().get(target).cloned())
    }
    async fn execute(
        &self,
        operation: &Operation,
    ) -> Result<firedrill_rollback::Done, ClusterError> {
        self.calls.lock().unwrap().push(operation.clone());
        let mut objects = self.objects.lock().unwrap();
        match operation {
            Operation::Delete { target } => {
                objects.remove(target);
            }
            Operation::Patch { target, patch } => {
                if let Some(o) = objects.get_mut(target) {
                    firedrill_rollback::apply_merge_patch(o, patch);
                }
            }
            Operation::External { system, action } => {
                self.externals.lock().unwrap().insert(
                    format!("{system} {}", action["target"]),
                    action["set"].clone(),
                );
            }
            _ => {}
        }
        Ok(firedrill_rollback::Done::Made)
    }
    async fn save(&self, _: &mut Ledger) -> Result<(), ClusterError> {
        Ok(())
    }
    async fn read_external(
        &self,
        system: &str,
        target: &Value,
    ) -> Result<Option<Value>, ClusterError> {
        Ok(self
            .externals
            .lock()
            .unwrap()
            .get(&format!("{system} {target}"))
            .cloned())
    }
}

mod render_equals_replay {
    use super::*;
    use firedrill_rollback::{EntryState, UndoRecord};
    use proptest::prelude::*;

    fn arb_ns() -> impl Strategy<Value = &'static str> {
        proptest::sample::select(vec!["shop", "shop", "kube-system", "chaos-testing"])
    }

    fn arb_record() -> impl Strategy<Value = UndoRecord> {
        let pod = |ns: &str, n: u8| ObjectRef::namespaced(ObjectKind::Pod, ns, &format!("api-{n}"));
        prop_oneof![
            (arb_ns(), 0u8..3, proptest::sample::select(vec![ObjectKind::NetworkPolicy, ObjectKind::Pod, ObjectKind::ConfigMap])).prop_map(|(ns, n, kind)| UndoRecord::DeleteCreated {
                target: ObjectRef::namespaced(kind, ns, &format!("firedrill-{n}")),
            }),
            (arb_ns(), 0u8..3, proptest::sample::select(vec!["/metadata/labels/firedrill.io~1partition", "/metadata/labels/app", "/metadata/../spec/nodeName"]), any::<bool>())
                .prop_map(move |(ns, n, path, some)| UndoRecord::RestoreField {
                    target: pod(ns, n),
                    path: path.into(),
                    prior: None,
                    applied: some.then(|| json!("r1")),
                }),
            (0u8..3, any::<bool>()).prop_map(|(n, was)| UndoRecord::Uncordon {
                node: format!("node-{n}"),
                was_unschedulable: was,
            }),
            (arb_ns(), 0u8..2, 0i64..4, 0i64..2).prop_map(|(ns, n, prior, applied)| UndoRecord::RestoreReplicas {
                target: ObjectRef::namespaced(ObjectKind::Deployment, ns, &format!("w{n}")),
                prior,
                applied,
                hpa: None,
            }),
            (arb_ns(), 0u8..3).prop_map(|(ns, k)| UndoRecord::RestoreSelector {
                service: ObjectRef::namespaced(ObjectKind::Service, ns, "db"),
                prior: BTreeMap::from([("app".into(), ["db", "web", "x"][usize::from(k)].into())]),
                applied: BTreeMap::from([("firedrill.io/proxy".into(), ["r1", "r2", "r1"][usize::from(k)].into())]),
            }),
            (proptest::sample::select(vec!["route53", "gcp-dns", "promotion"]), any::<bool>(), 0i64..3).prop_map(|(system, declared, w)| {
                let zone = if declared { "Z1" } else { "ZX" };
                let state = |w: i64| json!({ "name": "api.example.com.", "type": "A", "set_identifier": "use1", "weight": w });
                UndoRecord::External {
                    system: system.into(),
                    record: json!({ "target": { "zone": zone, "name": "api.example.com.", "type": "A", "set_identifier": "use1" }, "prior": state(w), "applied": state(0) }),
                }
            }),
            (arb_ns(), 0u8..3).prop_map(move |(ns, n)| UndoRecord::Recreated { pod: pod(ns, n), owner: "ReplicaSet/api".into() }),
        ]
    }

    fn arb_state() -> impl Strategy<Value = EntryState> {
        proptest::sample::select(vec![
            EntryState::Applied,
            EntryState::Applied,
            EntryState::Intended,
            EntryState::Reverted,
            EntryState::Left,
        ])
    }

    fn protection() -> Protection {
        declaring_one_zone()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// What `--render` prints, read back from its YAML, is call for call what `replay` makes
        /// on a cluster left as the ledger says, with the same guard and scope. With the key
        /// (`--key`), entries whose code was tampered with are judged as the real revert judges
        /// them; without it, render cannot know, so none is tampered with.
        #[test]
        fn the_calls_render_prints_are_the_calls_replay_makes(
            entries in proptest::collection::vec((arb_record(), arb_state(), 0u8..4), 0..8),
            with_key in any::<bool>(),
        ) {
            let mut ledger = Ledger::new("r1", "d", "test", "2030-01-01T00:00:00Z");
            for (record, state, tamper) in entries {
                let i = ledger.push(record, &KEY);
                ledger.entries[i].state = state;
                if with_key && tamper == 0 {
                    ledger.entries[i].mac = None;
                } else if with_key && tamper == 1 {
                    ledger.entries[i].mac = Some("0".repeat(64));
                }
            }
            let protection = protection();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let key = with_key.then_some(&*KEY);
            let text = rt.block_on(ledger::render(&ledger, &protection, key));
            let docs = rendered(&text);
            let printed: Vec<Operation> = docs
                .iter()
                .filter_map(|d| d.get("call"))
                .map(|c| serde_json::from_value(c.clone()).unwrap())
                .collect();

            let cluster = LeftByRun::of(&ledger);
            let guard = |r: &ObjectRef| protection.check(r);
            // The real revert has the key; the render, offline, has none and says so.
            let trust = protection.trust(&guard, Some(&KEY));
            let mut copy = ledger.clone();
            let report = rt.block_on(firedrill_rollback::replay(&cluster, &mut copy, &trust, false));
            let made = cluster.calls.lock().unwrap().clone();
            prop_assert_eq!(&printed, &made, "{}\n{:?}", text, report);
            // And each entry's verdict is the replay's outcome.
            for action in &report.actions {
                let doc = docs.iter().find(|d| d["step"] == action.step.as_str());
                prop_assert!(doc.is_some(), "{} missing from\n{}", action.step, text);
                // Without the key, what render judged says so, and is otherwise the same.
                let why = doc.unwrap()["why"].as_str().unwrap();
                let judged = why.strip_suffix(" (signature not checked: no key given)");
                prop_assert_eq!(
                    judged.is_some(),
                    !with_key && !why.starts_with("refused: "),
                    "{}",
                    why
                );
                prop_assert_eq!(judged.unwrap_or(why), action.text.as_str());
                let signature = doc.unwrap()["signature"].as_str().unwrap_or_default();
                let refused = report.rejected.iter().any(|r| r.step == action.step);
                prop_assert_eq!(signature.starts_with("DOES NOT VERIFY"), refused, "{}", signature);
                prop_assert_eq!(signature == "verified", with_key && !refused, "{}", signature);
            }
            // Every entry is shown, newest first.
            let steps: Vec<String> = docs.iter().map(|d| d["step"].as_str().unwrap().to_owned()).collect();
            let want: Vec<String> = ledger.entries.iter().rev().map(|e| format!("step-{:04}", e.seq)).collect();
            prop_assert_eq!(steps, want);
        }
    }
}

/// A ledger ConfigMap as someone who can write ConfigMaps in firedrill's namespace would write
/// it by hand: firedrill's labels, format v2, past its expiry, and these entries as text.
fn hand_written(run: &str, entries: &[String]) -> ConfigMap {
    let mut data = BTreeMap::from([
        ("format".to_owned(), firedrill_rollback::FORMAT.to_owned()),
        ("run".to_owned(), run.to_owned()),
        ("drill".to_owned(), "d".to_owned()),
        ("kind".to_owned(), "test".to_owned()),
    ]);
    for (i, e) in entries.iter().enumerate() {
        data.insert(format!("step-{:04}", i + 1), e.clone());
    }
    serde_json::from_value(json!({
        "metadata": { "name": firedrill_rollback::ledger_name(run), "namespace": NS,
            "labels": { "app.kubernetes.io/name": "firedrill", "firedrill.io/kind": "ledger",
                        "firedrill.io/run": run, "firedrill.io/drill": "d" },
            "annotations": { "firedrill.io/expires-at": "2020-01-01T00:00:00Z" } },
        "data": data }))
    .unwrap()
}

/// An entry's text: `undo` in state `applied`, with `mac` if given.
fn entry_text(undo: &Value, mac: Option<String>) -> String {
    let mut e = json!({ "undo": undo, "state": "applied" });
    if let Some(mac) = mac {
        e["mac"] = json!(mac);
    }
    e.to_string()
}

/// Objects only the forged ledgers name, each in a state in which its forged entry would act.
async fn bank(client: &kube::Client) -> BTreeMap<String, Value> {
    let objects = [
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "payments", "namespace": "bank" },
                "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "payments" } }, "template": { "metadata": { "labels": { "app": "payments" } }, "spec": { "containers": [{ "name": "p", "image": "p:1" }] } } } }),
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "vault", "namespace": "bank" },
                "spec": { "replicas": 1, "selector": { "matchLabels": { "app": "vault" } }, "template": { "metadata": { "labels": { "app": "vault" } }, "spec": { "containers": [{ "name": "v", "image": "v:1" }] } } } }),
    ];
    for o in objects {
        Api::<Deployment>::namespaced(client.clone(), "bank")
            .create(&Default::default(), &serde_json::from_value(o).unwrap())
            .await
            .unwrap();
    }
    Api::<Service>::namespaced(client.clone(), "bank")
        .create(
            &Default::default(),
            &serde_json::from_value(
                json!({ "metadata": { "name": "ledger-db", "namespace": "bank" },
            "spec": { "selector": { "app": "ledger-db" }, "ports": [{ "port": 5432 }] } }),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    Api::<Node>::all(client.clone())
        .create(
            &Default::default(),
            &serde_json::from_value(
                json!({ "metadata": { "name": "node-3" }, "spec": { "unschedulable": true } }),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    bank_state(client).await
}

/// The objects only the forged ledgers name, exactly as the API server holds them.
async fn bank_state(client: &kube::Client) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for name in ["payments", "vault"] {
        let d = Api::<Deployment>::namespaced(client.clone(), "bank")
            .get_opt(name)
            .await
            .unwrap();
        out.insert(
            format!("Deployment bank/{name}"),
            serde_json::to_value(d).unwrap(),
        );
    }
    let s = Api::<Service>::namespaced(client.clone(), "bank")
        .get_opt("ledger-db")
        .await
        .unwrap();
    out.insert(
        "Service bank/ledger-db".into(),
        serde_json::to_value(s).unwrap(),
    );
    let n = Api::<Node>::all(client.clone())
        .get_opt("node-3")
        .await
        .unwrap();
    out.insert("Node node-3".into(), serde_json::to_value(n).unwrap());
    out
}

/// Issue #22: hand-written ledgers whose entries firedrill cannot prove it wrote (no code, a
/// wrong one, one made with another key, entries copied from a real run's ledger, a signed
/// entry with one field changed) are applied by neither the scheduler's sweep, nor `rollback`,
/// nor `stop`; each entry is reported (a line, an Event on its ledger); the objects they name
/// are byte-identical afterwards, and the real ledger next to them reverts as before.
#[tokio::test]
async fn forged_ledger_entries_are_applied_by_neither_the_sweep_rollback_nor_stop() {
    let client = cluster().await;
    let kube = Kube::new(client.clone(), NS);
    let cluster = KubeCluster::new(&kube);
    let bank_before = bank(&client).await;
    let before = state(&client).await;
    let mut real = Ledger::new("real-run", "d", "test", "2099-01-01T00:00:00Z");
    real.job = Some("real-job".into());
    apply(&cluster, &mut real, &steps(), &trusted())
        .await
        .unwrap();
    let during = state(&client).await;

    let forged = [
        json!({ "type": "restore-replicas", "target": { "kind": "Deployment", "namespace": "bank", "name": "payments" }, "prior": 0, "applied": 3 }),
        json!({ "type": "uncordon", "node": "node-3", "was_unschedulable": false }),
        json!({ "type": "restore-selector", "service": { "kind": "Service", "namespace": "bank", "name": "ledger-db" }, "prior": { "app": "attacker" }, "applied": { "app": "ledger-db" } }),
        json!({ "type": "delete-created", "target": { "kind": "Deployment", "namespace": "bank", "name": "vault" } }),
    ];
    let seal = |key: &Key, run: &str, seq: usize, undo: &Value| {
        key.seal(
            run,
            "d",
            seq,
            &serde_json::from_value(undo.clone()).unwrap(),
        )
    };
    let other = Key::from_bytes(&[9; 32]).unwrap();
    let each = |run: &str, mac: &dyn Fn(usize, &Value) -> Option<String>| {
        let entries: Vec<String> = forged
            .iter()
            .enumerate()
            .map(|(i, u)| entry_text(u, mac(i + 1, u)))
            .collect();
        hand_written(run, &entries)
    };
    // A real entry, signed where it stands, then its prior count changed from 3 to 0.
    let harmless = json!({ "type": "restore-replicas", "target": { "kind": "Deployment", "namespace": "bank", "name": "payments" }, "prior": 3, "applied": 3 });
    let changed = entry_text(&harmless, Some(seal(&KEY, "changed-run", 1, &harmless)))
        .replace("\"prior\":3", "\"prior\":0");
    let stored_real = cluster
        .ledger("real-run")
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .to_stored();
    let copied: Vec<String> = stored_real
        .data
        .iter()
        .filter(|(k, _)| k.starts_with("step-"))
        .map(|(_, v)| v.clone())
        .collect();
    let ledgers = [
        each("no-code-run", &|_, _| None),
        each("wrong-code-run", &|_, _| Some("ab".repeat(32))),
        each("other-key-run", &|seq, u| {
            Some(seal(&other, "other-key-run", seq, u))
        }),
        hand_written("copied-run", &copied),
        hand_written("changed-run", &[changed]),
    ];
    let names: Vec<String> = ledgers
        .iter()
        .map(|l| l.metadata.name.clone().unwrap())
        .collect();
    for ledger in &ledgers {
        Api::<ConfigMap>::namespaced(client.clone(), NS)
            .create(&Default::default(), ledger)
            .await
            .unwrap();
        // Readable entries, every one: only the code stands between them and a revert.
        let run = &ledger.data.as_ref().unwrap()["run"];
        let read = cluster.ledger(run).await.unwrap().unwrap().unwrap();
        assert!(
            read.unreadable.is_empty() && !read.entries.is_empty(),
            "{read:?}"
        );
    }
    let rejected_in = |outcomes: &[ledger::LedgerOutcome]| -> BTreeMap<String, usize> {
        outcomes
            .iter()
            .map(|o| {
                let report = o.result.as_ref().unwrap();
                assert!(
                    report
                        .actions
                        .iter()
                        .all(|a| a.outcome == firedrill_rollback::Outcome::Failed
                            && a.text.contains("DOES NOT VERIFY, not applied")),
                    "{o:#?}"
                );
                (o.ledger.clone(), report.rejected.len())
            })
            .collect()
    };
    let expected: BTreeMap<String, usize> = names
        .iter()
        .map(|n| {
            (
                n.clone(),
                if n.contains("copied") {
                    copied.len()
                } else if n.contains("changed") {
                    1
                } else {
                    4
                },
            )
        })
        .collect();

    // The scheduler's sweep: every forged ledger is past its expiry; the real run's Job runs.
    let running = BTreeSet::from(["real-job".to_owned()]);
    let swept = ledger::sweep_expired(&kube, Utc::now(), &running, &nothing_protected())
        .await
        .unwrap();
    assert_eq!(rejected_in(&swept), expected);
    assert_eq!(
        state(&client).await,
        during,
        "the sweep applied a forged entry"
    );
    assert_eq!(bank_state(&client).await, bank_before);

    // `rollback` of each forged run.
    for name in &names {
        let run = name.trim_start_matches("firedrill-ledger-");
        let outcomes = ledger::rollback(
            &cluster,
            &Selection::Run(run.into()),
            &nothing_protected(),
            false,
            false,
        )
        .await
        .unwrap();
        assert_eq!(
            rejected_in(&outcomes),
            BTreeMap::from([(name.clone(), expected[name])])
        );
        let lines: Vec<String> = outcomes.iter().flat_map(ledger::describe).collect();
        assert!(
            lines.iter().all(|l| l.contains("FAILED: DOES NOT VERIFY")),
            "{lines:#?}"
        );
    }
    assert_eq!(
        state(&client).await,
        during,
        "rollback applied a forged entry"
    );
    assert_eq!(bank_state(&client).await, bank_before);

    // `stop`: the real ledger reverts as before; the forged ones stay open, and stop says so.
    let report = ledger::stop(&kube, "INC-22", "oncall", &nothing_protected()).await;
    assert!(!report.clean(), "forged ledgers remain open: {report:#?}");
    let by_stop: Vec<ledger::LedgerOutcome> = report
        .ledgers
        .into_iter()
        .filter(|o| o.ledger != "firedrill-ledger-real-run")
        .collect();
    assert_eq!(rejected_in(&by_stop), expected);
    assert_eq!(
        state(&client).await,
        before,
        "the real run reverted exactly"
    );
    assert_eq!(bank_state(&client).await, bank_before, "byte-identical");
    for name in &names {
        assert!(
            report
                .remaining
                .contains(&format!("ledger {name} still open")),
            "{:?}",
            report.remaining
        );
    }

    // Each was reported on its ledger, for `kubectl describe configmap`.
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    for name in &names {
        let on = events
            .iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name.as_str()))
            .filter(|e| e.reason.as_deref() == Some("LedgerEntryUnverified"))
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .count();
        // Once by the sweep, once by rollback, once by stop, for each entry.
        assert_eq!(on, 3 * expected[name], "{name}");
    }
    assert!(!events
        .iter()
        .any(|e| e.involved_object.name.as_deref() == Some("firedrill-ledger-real-run")));
}

/// The key is read with the caller's rights: without them, `rollback` reverts nothing and says
/// what to grant; `stop` still sweeps labelled artifacts and engages the switch, reverts no
/// ledger and says why.
#[tokio::test]
async fn without_the_ledger_key_nothing_is_reverted_from_a_ledger_and_the_fix_is_named() {
    let inner = cluster().await;
    let kube = Kube::new(inner.clone(), NS);
    let mut real = Ledger::new("run-k", "d", "test", "2099-01-01T00:00:00Z");
    apply(&KubeCluster::new(&kube), &mut real, &steps(), &trusted())
        .await
        .unwrap();
    let during = state(&inner).await;
    // The caller may not read Secrets: the API server answers 403.
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let inner = inner.clone();
        async move {
            if request.uri().path().contains("/secrets") {
                let body = json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
                    "message": "secrets \"firedrill-ledger-key\" is forbidden: User \"dev\" cannot get resource \"secrets\"" });
                return Ok::<_, kube::Error>(
                    http::Response::builder()
                        .status(403)
                        .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                );
            }
            inner.send(request).await
        }
    });
    let client = kube::Client::new(service, "default");
    let forbidden = Kube::new(client.clone(), NS);
    let cluster = KubeCluster::new(&forbidden);
    let err = ledger::rollback(
        &cluster,
        &Selection::Run("run-k".into()),
        &nothing_protected(),
        false,
        false,
    )
    .await
    .unwrap_err();
    let ledger::RollbackError::Key(e) = err else {
        panic!("{err:?}")
    };
    assert!(
        e.to_string()
            .contains("cannot read Secret chaos-testing/firedrill-ledger-key")
            && e.to_string()
                .contains("--verb=get --resource=secrets --resource-name=firedrill-ledger-key"),
        "{e}"
    );
    // A dry run still shows what a revert would do, and that it did not check.
    let dry = ledger::rollback(
        &cluster,
        &Selection::Run("run-k".into()),
        &nothing_protected(),
        true,
        false,
    )
    .await
    .unwrap();
    assert!(
        dry[0]
            .result
            .as_ref()
            .unwrap()
            .actions
            .iter()
            .any(|a| a.text.ends_with("(signature not checked: no key given)")),
        "{dry:#?}"
    );
    assert_eq!(state(&client).await, during);

    let report = ledger::stop(&forbidden, "INC-1", "dev", &nothing_protected()).await;
    assert_eq!(report.ledgers.len(), 1);
    let why = report.ledgers[0].result.as_ref().unwrap_err();
    assert!(
        matches!(
            why,
            ledger::NotReplayed::NoKey(firedrill::cluster::ledger_key::KeyError::Forbidden { .. })
        ),
        "{why:?}"
    );
    assert!(
        why.to_string()
            .starts_with("not reverted: cannot read Secret chaos-testing/firedrill-ledger-key"),
        "{why}"
    );
    assert!(
        report.kill_switch.is_ok() && report.swept.iter().all(Result::is_ok),
        "{report:#?}"
    );
    // The sweep by label removed the drill's NetworkPolicy; nothing a ledger entry names changed.
    let mut after = state(&client).await;
    let mut expected = during.clone();
    assert!(expected.remove("NetworkPolicy firedrill-deny").is_some());
    after.remove("NetworkPolicy firedrill-deny");
    assert_eq!(after, expected);
}

/// The example ledger is what firedrill writes: format v2, every entry's code verifies (with the
/// example key, bytes 7 × 32), and one changed byte does not.
#[test]
fn the_example_ledger_is_signed_as_firedrill_signs() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/ledger.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let cm = firedrill_reader::yaml::to_json(&firedrill_reader::yaml::parse(&text).unwrap());
    let data: BTreeMap<String, String> = serde_json::from_value(cm["data"].clone()).unwrap();
    let stored = firedrill_rollback::Stored {
        name: cm["metadata"]["name"].as_str().unwrap().to_owned(),
        data,
        ..Default::default()
    };
    let ledger = Ledger::from_stored(&stored).unwrap();
    assert!(!ledger.unsigned && ledger.unreadable.is_empty() && ledger.entries.len() == 5);
    for e in &ledger.entries {
        assert_eq!(
            KEY.verify(&ledger.run, &ledger.drill, e.seq, &e.undo, e.mac.as_deref()),
            Ok(()),
            "step {}",
            e.seq
        );
        assert!(KEY
            .verify(
                &ledger.run,
                &ledger.drill,
                e.seq + 1,
                &e.undo,
                e.mac.as_deref()
            )
            .is_err());
    }
}

/// `rollback --ledger FILE --render --key KEYFILE` says of each entry whether its code verifies
/// with that key, as the real revert would check it; a file that is not a key is refused.
#[test]
fn render_with_the_key_says_which_entries_verify() {
    let dir = std::env::temp_dir().join(format!(
        "firedrill-render-key-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/ledger.yaml");
    let render = |key: &[u8]| {
        let path = dir.join("ledger.key");
        std::fs::write(&path, key).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .args(["rollback", "--render", "--ledger"])
            .arg(&example)
            .arg("--key")
            .arg(&path)
            .output()
            .unwrap()
    };
    let signatures = |out: &std::process::Output| -> Vec<String> {
        rendered(&String::from_utf8_lossy(&out.stdout))
            .iter()
            .filter_map(|d| d["signature"].as_str().map(str::to_owned))
            .collect()
    };
    // The example is signed with the example key (bytes 7 × 32).
    let right = render(&[7; 32]);
    assert_eq!(right.status.code(), Some(0));
    assert_eq!(signatures(&right), vec!["verified"; 5]);
    let wrong = render(&[8; 32]);
    assert_eq!(wrong.status.code(), Some(0));
    let wrong_signatures = signatures(&wrong);
    assert_eq!(wrong_signatures.len(), 5);
    assert!(
        wrong_signatures
            .iter()
            .all(|s| s.starts_with("DOES NOT VERIFY")),
        "{wrong_signatures:?}"
    );
    assert!(!String::from_utf8_lossy(&wrong.stdout).contains("will revert"));
    // Not a key: refused, with how to save one.
    let short = render(b"not a key\n");
    assert_eq!(short.status.code(), Some(1), "{short:?}");
    let err = String::from_utf8_lossy(&short.stderr);
    assert!(
        err.contains("not a ledger key") && err.contains("base64 -d"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The API server's answer to the revert's patch, for the next patches of Deployments.
type Answers = std::sync::Arc<std::sync::Mutex<Vec<(u16, &'static str)>>>;

/// The in-memory cluster, except that the next PATCHes of a Deployment get `answers`.
fn answering(inner: kube::Client, answers: Answers) -> kube::Client {
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let (inner, answers) = (inner.clone(), answers.clone());
        async move {
            let patch = request.method() == http::Method::PATCH
                && request.uri().path().contains("/deployments/");
            let answer = patch.then(|| answers.lock().unwrap().pop()).flatten();
            if let Some((code, reason)) = answer {
                let body = json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code,
                    "message": format!("deployments.apps \"worker\": {reason}") });
                return Ok::<_, kube::Error>(
                    http::Response::builder()
                        .status(code)
                        .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                );
            }
            inner.send(request).await
        }
    });
    kube::Client::new(service, "default")
}

/// Through the real adapter: a forbidden undo stays open and names the RBAC verb and resource
/// to grant; a server that is unavailable leaves it open for the next sweep; a conflict is read
/// again and the undo made.
#[tokio::test]
async fn the_adapter_sorts_the_api_servers_errors_and_the_revert_acts_on_each() {
    let inner = cluster().await;
    let kube = Kube::new(inner.clone(), NS);
    let worker = ObjectRef::namespaced(ObjectKind::Deployment, "shop", "worker");
    let mut real = Ledger::new("run-x", "d", "test", "2099-01-01T00:00:00Z");
    apply(
        &KubeCluster::new(&kube),
        &mut real,
        &[Step::scale(worker, 2, 0, None)],
        &trusted(),
    )
    .await
    .unwrap();
    let answers = Answers::default();
    let broken = Kube::new(answering(inner.clone(), answers.clone()), NS);
    let cluster = KubeCluster::new(&broken);
    let revert = || async {
        let out = ledger::rollback(
            &cluster,
            &Selection::Run("run-x".into()),
            &nothing_protected(),
            false,
            false,
        )
        .await
        .unwrap();
        out[0].result.as_ref().unwrap().actions[0].clone()
    };
    let replicas = || async {
        let api: Api<Deployment> = Api::namespaced(inner.clone(), "shop");
        api.get("worker").await.unwrap().spec.unwrap().replicas
    };

    *answers.lock().unwrap() = vec![(403, "Forbidden")];
    let action = revert().await;
    assert_eq!(action.outcome, firedrill_rollback::Outcome::Failed);
    assert!(
        action.text.contains("patch Deployment shop/worker: ")
            && action
                .text
                .contains("; forbidden: firedrill may not patch deployments.apps in namespace shop: grant that"),
        "{}",
        action.text
    );
    assert_eq!(replicas().await, Some(0));

    *answers.lock().unwrap() = vec![(503, "ServiceUnavailable")];
    let action = revert().await;
    assert_eq!(action.outcome, firedrill_rollback::Outcome::Failed);
    assert!(
        action.text.ends_with(
            "a passing failure: the ledger stays open and the next sweep or rollback tries again"
        ),
        "{}",
        action.text
    );
    assert_eq!(replicas().await, Some(0));

    *answers.lock().unwrap() = vec![(409, "Conflict")];
    let action = revert().await;
    assert_eq!(
        action.outcome,
        firedrill_rollback::Outcome::Reverted,
        "{}",
        action.text
    );
    assert_eq!(replicas().await, Some(2));
}
