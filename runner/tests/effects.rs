//! A fault is proven, not assumed (ARCHITECTURE.md, principle 10; #25 items 1 and 2): for each
//! kind with an effect check, one whole drill on the in-memory cluster where the effect is seen
//! (and recorded how), and one where a stand-in ignores the fault — an eviction endpoint that
//! answers 201 and deletes nothing, a kubelet that never restarts the container, a StatefulSet
//! controller that keeps its pods — which ends `ineffective`, nothing judged, its ledger
//! reverted, its record (and push) saying why. And the report and its fleet view counting such
//! runs.

mod support;

use support::effects::{assert_ineffective, effect};

use std::time::Duration;

use firedrill::history::store::RunStatus;
use firedrill::run::{EffectNote, Revert, RunRecord};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use support::cluster::{execute_on, one_drill, ready_pod, NS};

/// The in-memory cluster whose evictions are carried out when `evicts` (see
/// [`support::cluster::eviction_cluster`]).
async fn cluster(evicts: bool) -> kube::Client {
    support::cluster::eviction_cluster(evicts).await
}

async fn node(client: &kube::Client, name: &str, zone: &str) {
    let node: Node = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "topology.kubernetes.io/zone": zone } },
        "spec": {},
        "status": { "conditions": [{ "type": "Ready", "status": "True" }],
            "allocatable": { "cpu": "4", "memory": "16Gi" } } }))
    .unwrap();
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .unwrap();
}

/// Deployment `apps/web` with one Running and Ready pod `web-i` on each node of `placement`,
/// each with a `main` container that has restarted `restarts` times.
async fn web(client: &kube::Client, placement: &[&str]) {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web", "namespace": "apps" },
        "spec": { "replicas": placement.len(), "selector": { "matchLabels": { "app": "web" } },
            "template": { "metadata": { "labels": { "app": "web" } } } }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "apps")
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    for (i, n) in placement.iter().enumerate() {
        create_pod(client, &format!("web-{i}"), "Deployment/web", n).await;
    }
}

async fn create_pod(client: &kube::Client, name: &str, owner: &str, node: &str) {
    let mut p = serde_json::to_value(ready_pod(
        "apps",
        name,
        json!({ "app": owner.split_once('/').unwrap().1 }),
        owner,
        node,
    ))
    .unwrap();
    p["status"]["containerStatuses"] = json!([
        { "name": "main", "ready": true, "restartCount": 2, "image": "app", "imageID": "",
          "containerID": "containerd://0123456789abcdef0123", "state": { "running": {} } }
    ]);
    Api::<Pod>::namespaced(client.clone(), "apps")
        .create(&PostParams::default(), &serde_json::from_value(p).unwrap())
        .await
        .unwrap();
}

/// Stands in for the ReplicaSet controller: `apps/web` gets its missing pods back, Running and
/// Ready, 200 ms later, on the first node not cordoned.
fn controller(client: kube::Client, replicas: usize) {
    tokio::spawn(async move {
        let pods = Api::<Pod>::namespaced(client.clone(), "apps");
        let mut next = 100;
        loop {
            let have = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .unwrap()
                .items
                .len();
            if have < replicas {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let nodes = Api::<Node>::all(client.clone())
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items;
                let free = nodes
                    .iter()
                    .find(|n| n.spec.as_ref().and_then(|s| s.unschedulable) != Some(true))
                    .and_then(|n| n.metadata.name.clone())
                    .expect("a schedulable node");
                next += 1;
                create_pod(&client, &format!("web-{next}"), "Deployment/web", &free).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

fn drill(name: &str, kind: &str, extra: &str) -> String {
    format!(
        "armed: true\nnamespace: {NS}\nsafety: {{ min_pod_age: 5m }}\ndrills:\n  - name: {name}\n    kind: {kind}\n    schedule: \"@monthly\"\n    duration: 2s\n{extra}"
    )
}

const ONE_WEB: &str = "    targets: [{ namespace: apps, selector: app=web, count: 1 }]\n";

/// A run whose fault took effect: passed, its effect observed and said.
fn assert_seen(record: &RunRecord, what: &[&str]) {
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let e = effect(record);
    assert_eq!(e.observed, Some(true), "{e:?}");
    for w in what {
        assert!(e.what.contains(w), "{w:?} not in {e:?}");
    }
}

async fn unschedulable(client: &kube::Client) -> Vec<String> {
    Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
        .filter_map(|n| n.metadata.name)
        .collect()
}

#[tokio::test]
async fn pod_kill_seen_when_the_pod_goes_and_ineffective_when_the_eviction_is_ignored() {
    // Seen: the eviction deletes the pod; the controller brings one back.
    let client = cluster(true).await;
    node(&client, "n1", "a").await;
    web(&client, &["n1", "n1", "n1"]).await;
    controller(client.clone(), 3);
    let (config, d, run) = one_drill(
        &drill(
            "kill",
            "pod-kill",
            &format!("{ONE_WEB}    success: {{ rto: 30s }}\n"),
        ),
        "kill-seen",
    );
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    let victim = format!("apps/{} gone", record.targets[0].name);
    assert_seen(&record, &[&victim, "s after the kill"]);
    assert_eq!(
        effect(&record).how,
        "each killed pod read back: gone, or another uid under its name"
    );

    // Ignored: 201, and the pod stays. The system "recovers" at once from nothing: not passed.
    let client = cluster(false).await;
    node(&client, "n1", "a").await;
    web(&client, &["n1", "n1", "n1"]).await;
    let (config, d, run) = one_drill(
        &drill(
            "kill",
            "pod-kill",
            &format!("{ONE_WEB}    success: {{ rto: 30s }}\n"),
        ),
        "kill-ignored",
    );
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    let pod = format!(
        "apps/{} gone not seen by the end of the drill",
        record.targets[0].name
    );
    assert_ineffective(&client, &record, &pod).await;
    assert!(
        record
            .reason
            .as_deref()
            .unwrap()
            .contains("(still there, same uid)"),
        "{:?}",
        record.reason
    );
    // `success:` is not judged on a fault that never happened: no RTO recorded as met.
    assert_eq!(record.measurements.rto_seconds, None, "{record:#?}");

    // The push says so: status="ineffective" is 1 in the drill's group.
    push_and_read_back(&record).await;
}

/// The Pushgateway's copy of an ineffective run's status (skipped outside CI without one).
async fn push_and_read_back(record: &RunRecord) {
    let Some(base) = support::service("FIREDRILL_TEST_PUSHGATEWAY") else {
        return;
    };
    let mut record = record.clone();
    record.drill = support::unique("kill").replace('_', "-");
    let e = firedrill::drill::gate::Endpoints::new(None, None);
    firedrill::history::pushgateway::push(
        e.client(),
        &base,
        &record,
        None,
        firedrill::history::pushgateway::Retry {
            attempts: 2,
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(100),
            budget: Duration::from_secs(5),
        },
        tokio::sync::watch::channel(false).1,
    )
    .await
    .expect("push");
    let text = e
        .client()
        .get(base.join("metrics").unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let status: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("chaos_experiment_status{") && l.contains(&record.drill))
        .filter(|l| l.ends_with(" 1"))
        .collect();
    assert_eq!(status.len(), 1, "{status:?}");
    assert!(status[0].contains("status=\"ineffective\""), "{status:?}");
}

#[tokio::test]
async fn node_drain_seen_when_cordoned_and_emptied_and_ineffective_when_evictions_are_ignored() {
    for (evicts, run) in [(true, "drain-seen"), (false, "drain-ignored")] {
        let client = cluster(evicts).await;
        node(&client, "n1", "a").await;
        node(&client, "n2", "a").await;
        web(&client, &["n1", "n2"]).await;
        controller(client.clone(), 2);
        let (config, d, r) = one_drill(
            &drill(
                "drain",
                "node-drain",
                &format!("{ONE_WEB}    success: {{ rto: 30s }}\n"),
            ),
            run,
        );
        let record = execute_on(&client, &config, &d, &r, Some(Vec::new())).await;
        let hurt = record.evidence.to_value()["nodes"]["hurt"][0]["node"]
            .as_str()
            .unwrap()
            .to_owned();
        if evicts {
            let pod = format!("apps/{} gone", record.targets[0].name);
            assert_seen(&record, &[&format!("node {hurt} unschedulable"), &pod]);
        } else {
            // Cordoned, but its pod never left.
            let pod = format!("apps/{} gone not seen", record.targets[0].name);
            assert_ineffective(&client, &record, &pod).await;
            assert!(
                effect(&record)
                    .what
                    .contains(&format!("node {hurt} unschedulable")),
                "what was seen is said too: {:?}",
                effect(&record)
            );
        }
        // Uncordoned either way.
        assert_eq!(unschedulable(&client).await, Vec::<String>::new());
    }
}

#[tokio::test]
async fn zone_outage_drain_seen_and_ineffective_when_evictions_are_ignored() {
    for (evicts, run) in [(true, "zone-seen"), (false, "zone-ignored")] {
        let client = cluster(evicts).await;
        node(&client, "a1", "a").await;
        node(&client, "b1", "b").await;
        web(&client, &["a1", "b1"]).await;
        controller(client.clone(), 2);
        let (config, d, r) = one_drill(
            &drill(
                "lose-a",
                "zone-outage",
                "    fault: { mode: drain, zone: a }\n    success: { rto: 30s }\n",
            ),
            run,
        );
        let record = execute_on(&client, &config, &d, &r, Some(Vec::new())).await;
        if evicts {
            assert_seen(&record, &["node a1 unschedulable", "apps/web-0 gone"]);
        } else {
            assert_ineffective(&client, &record, "apps/web-0 gone not seen").await;
        }
        assert_eq!(unschedulable(&client).await, Vec::<String>::new());
    }
}

/// Stands in for the kubelet: `delay` after the helper pod appears, the target's `main`
/// container restarts (restartCount up, its last termination at that moment).
fn kubelet(client: kube::Client, helper: &'static str, delay: Duration) {
    tokio::spawn(async move {
        let pods = Api::<Pod>::namespaced(client, "apps");
        loop {
            if let Ok(Some(h)) = pods.get_opt(helper).await {
                tokio::time::sleep(delay).await;
                let target = h.metadata.annotations.unwrap()["firedrill.io/acts-on"].clone();
                let name = target.rsplit('/').next().unwrap().to_owned();
                let mut status = serde_json::to_value(pods.get(&name).await.unwrap()).unwrap()
                    ["status"]["containerStatuses"][0]
                    .clone();
                status["restartCount"] = json!(3);
                status["lastState"] = json!({ "terminated": { "exitCode": 137, "reason": "Error",
                    "finishedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true) } });
                let patch = json!({ "status": { "containerStatuses": [status] } });
                pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .unwrap();
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[tokio::test]
async fn container_kill_seen_when_restarted_with_the_clock_from_the_kill_and_ineffective_when_not()
{
    let kill = "    fault: { container: main }\n    success: { rto: 30s }\n";
    // Seen: the container restarts 1.5 s after the helper is made. The recovery clock starts
    // at the kill, not at the helper: the pod is back at once, so the RTO is well under 1.5 s.
    let client = cluster(true).await;
    node(&client, "n1", "a").await;
    web(&client, &["n1", "n1"]).await;
    kubelet(
        client.clone(),
        "firedrill-kill-ck-seen-0",
        Duration::from_millis(1500),
    );
    let (config, d, run) = one_drill(
        &drill("ck", "container-kill", &format!("{ONE_WEB}{kill}")),
        "ck-seen",
    );
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    let what = format!(
        "container main of apps/{} restarted (restartCount 2 → 3)",
        record.targets[0].name
    );
    assert_seen(&record, &[&what]);
    let rto = record.measurements.rto_seconds.expect("RTO measured");
    assert!(rto < 1.0, "RTO {rto} counts the helper's wait: {record:#?}");

    // Not seen: no kubelet restarts it.
    let client = cluster(true).await;
    node(&client, "n1", "a").await;
    web(&client, &["n1", "n1"]).await;
    let (config, d, run) = one_drill(
        &drill("ck", "container-kill", &format!("{ONE_WEB}{kill}")),
        "ck-ignored",
    );
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    let what = format!(
        "container main of apps/{} restarted not seen by the end of the drill",
        record.targets[0].name
    );
    assert_ineffective(&client, &record, &what).await;
    assert!(
        record
            .reason
            .as_deref()
            .unwrap()
            .contains("(restartCount still 2)"),
        "{:?}",
        record.reason
    );
    // The helper is gone.
    assert!(Api::<Pod>::namespaced(client.clone(), "apps")
        .get_opt("firedrill-kill-ck-ignored-0")
        .await
        .unwrap()
        .is_none());
}

/// StatefulSet `cache/redis` with 3 replicas and 3 ready pods; when `follows`, a stand-in
/// controller deletes its pods once it is scaled to 0.
async fn redis(client: &kube::Client, follows: bool) -> Api<StatefulSet> {
    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": { "name": "redis", "namespace": "cache" },
        "spec": { "replicas": 3, "serviceName": "redis", "selector": { "matchLabels": { "app": "redis" } },
            "template": { "metadata": { "labels": { "app": "redis" } } } }
    }))
    .unwrap();
    let sets = Api::<StatefulSet>::namespaced(client.clone(), "cache");
    sets.create(&PostParams::default(), &set).await.unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), "cache");
    for i in 0..3 {
        let p = ready_pod(
            "cache",
            &format!("redis-{i}"),
            json!({ "app": "redis" }),
            "StatefulSet/redis",
            "n1",
        );
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    if follows {
        let sets = sets.clone();
        tokio::spawn(async move {
            loop {
                if sets.get("redis").await.unwrap().spec.unwrap().replicas == Some(0) {
                    for i in 0..3 {
                        let _ = pods
                            .delete(&format!("redis-{i}"), &DeleteParams::default())
                            .await;
                    }
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
    sets
}

#[tokio::test]
async fn scale_to_zero_seen_when_no_pod_is_ready_and_ineffective_when_they_stay() {
    let fault =
        "    fault: { dependency: { workload: StatefulSet/cache/redis }, mode: scale-to-zero }\n";
    for (follows, run) in [(true, "stz-seen"), (false, "stz-ignored")] {
        let client = cluster(true).await;
        node(&client, "n1", "a").await;
        web(&client, &["n1", "n1"]).await;
        let sets = redis(&client, follows).await;
        let (config, d, r) = one_drill(
            &drill(
                "no-cache",
                "dependency-failure",
                &format!("{ONE_WEB}{fault}"),
            ),
            run,
        );
        let record = execute_on(&client, &config, &d, &r, Some(Vec::new())).await;
        if follows {
            assert_seen(&record, &["no ready pod of StatefulSet/cache/redis"]);
        } else {
            assert_ineffective(
                &client,
                &record,
                "no ready pod of StatefulSet/cache/redis not seen by the end of the drill",
            )
            .await;
            assert!(
                record
                    .reason
                    .as_deref()
                    .unwrap()
                    .contains("(3 still ready)"),
                "{:?}",
                record.reason
            );
        }
        // Back to 3 either way.
        assert_eq!(
            sets.get("redis").await.unwrap().spec.unwrap().replicas,
            Some(3)
        );
    }
}

/// Every kind checks its effect now, but a region failover with no `dns:` (it only isolates the
/// failed region's workloads) has nothing to check it by (its DNS answer is the check): it says
/// so, and is not passed off as seen.
#[tokio::test]
async fn a_fault_without_an_effect_check_records_that_it_was_not_checked() {
    let client = cluster(true).await;
    node(&client, "n1", "a").await;
    web(&client, &["n1", "n1"]).await;
    let (config, d, run) = one_drill(
        &drill(
            "isolate",
            "region-failover",
            "    fault:\n      from: us-east-1\n      to: eu-west-1\n      failback: { runbook: \"https://runbooks.example.com/failback\" }\n      isolate: [{ namespace: apps, selector: app=web, how: network-policy }]\n",
        ),
        "isolate-1",
    );
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let e = effect(&record);
    assert_eq!(e.observed, None);
    assert_eq!(
        e.to_string(),
        "not checked (region-failover has no effect check yet)"
    );
    assert_eq!(
        record.evidence.to_value()["effect"],
        json!({ "how": "not checked", "what": "region-failover has no effect check yet" })
    );
}

/// What the report and its fleet view make of ineffective runs: counted in their own column
/// (and as ran), a follow-up until a later run passes, the run's effect in its evidence.
#[tokio::test]
async fn the_report_and_the_fleet_view_count_ineffective_runs() {
    use firedrill::config::{Config, Store as StoreUrl};
    use firedrill::history::report::{self, Format, Query};
    use firedrill::history::store::Store;

    let dir = std::env::temp_dir().join(support::unique("firedrill-effects"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = StoreUrl::Sqlite(dir.join("history.db").display().to_string());
    let text = "cluster: us-east\nnamespace: firedrill\ndrills:\n  - { name: kill-web, kind: pod-kill, schedule: \"0 10 1 * *\", duration: 5m, targets: [{ namespace: apps, selector: app=web, count: 1 }] }\n";
    let config = Config::parse(text, std::path::Path::new("drills.yaml")).unwrap();
    let at = |s: &str| -> chrono::DateTime<chrono::Utc> { s.parse().unwrap() };
    let record = |cluster: &str, month: u32, status: RunStatus, effect: EffectNote| {
        let scheduled = at(&format!("2027-{month:02}-01T10:00:00Z"));
        let mut evidence = firedrill::run::Evidence::new();
        evidence.job = Some(firedrill::run::JobNote {
            name: Some(format!("kill-web-{month}")),
        });
        if status == RunStatus::Ineffective {
            evidence.revert = Revert::Restored {
                when: firedrill::run::RevertWhen::AfterTheRun,
                lines: vec![format!(
                    "firedrill-ledger-{month} step-0001: reverted: recreated by its controller"
                )],
            };
        }
        evidence.effect = Some(effect);
        RunRecord {
            cluster: cluster.into(),
            id: format!("kill-web-{cluster}-{month}"),
            drill: "kill-web".into(),
            kind: "pod-kill".into(),
            scheduled,
            started: Some(scheduled),
            ended: Some(scheduled + chrono::TimeDelta::minutes(5)),
            status,
            reason: (status == RunStatus::Ineffective).then(|| {
                "the fault did not take effect: apps/web-1 gone not seen by the end of the drill; it had 45s (still there, same uid); reverted".to_owned()
            }),
            targets: Vec::new(),
            measurements: Default::default(),
            evidence: Box::new(evidence),
        }
    };
    let seen = EffectNote {
        observed: Some(true),
        how: "each killed pod read back: gone, or another uid under its name".into(),
        what: "apps/web-0 gone 0.1s after the kill".into(),
    };
    let unseen = EffectNote {
        observed: Some(false),
        how: seen.how.clone(),
        what: "apps/web-1 gone: not seen (still there, same uid)".into(),
    };
    for cluster in ["us-east", "eu-west"] {
        let store = Store::open(&url, cluster).await.unwrap();
        // Each cluster's scheduler planned the drill before the period (as the seeded year's).
        store
            .record_fire(&firedrill::history::store::FireRecord {
                drill: "kill-web".into(),
                scheduled: at("2026-12-01T10:00:00Z"),
                status: "skipped".into(),
                reason: Some("before the period".into()),
                run: None,
            })
            .await
            .unwrap();
        for month in 1..=3 {
            // eu-west's March run did not take effect; us-east's February one did not either,
            // and March passed after it.
            let ineffective =
                (cluster, month) == ("eu-west", 3) || (cluster, month) == ("us-east", 2);
            let r = if ineffective {
                record(cluster, month, RunStatus::Ineffective, unseen.clone())
            } else {
                record(cluster, month, RunStatus::Passed, seen.clone())
            };
            store.record_run(&r).await.unwrap();
        }
        store.close().await;
    }
    let store = Store::open(&url, "us-east").await.unwrap();
    let q = Query {
        since: at("2027-01-01T00:00:00Z"),
        until: at("2027-04-01T00:00:00Z"),
        cluster: None,
        drill: None,
    };
    let r = report::build(
        report::Inputs {
            config: &config,
            store: "the test history".into(),
            runs: store
                .runs_between(q.since, q.until, None, None)
                .await
                .unwrap(),
            fires: store
                .fires_between(q.since, q.until, None, None)
                .await
                .unwrap(),
            known: store.clusters_and_drills().await.unwrap(),
            generated: at("2027-04-02T00:00:00Z"),
        },
        &q,
    )
    .unwrap();
    store.close().await;
    assert_eq!(
        (r.summary.ineffective, r.summary.passed, r.summary.ran),
        (2, 4, 6),
        "{:#?}",
        r.summary
    );
    let fleet: Vec<(String, u32)> = r
        .fleet
        .iter()
        .map(|c| (c.cluster.clone(), c.tally.ineffective))
        .collect();
    assert_eq!(
        fleet,
        [("eu-west".to_owned(), 1), ("us-east".to_owned(), 1)]
    );
    insta::assert_snapshot!(
        "report_with_ineffective_runs_md",
        report::render(&r, Format::Md)
    );
    let json: Value = serde_json::from_str(&report::render(&r, Format::Json)).unwrap();
    insta::assert_snapshot!(
        "report_with_ineffective_runs_fleet_json",
        serde_json::to_string_pretty(&json["fleet"]).unwrap()
    );
}
