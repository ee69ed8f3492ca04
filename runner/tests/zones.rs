//! Zone outages end to end on the in-memory cluster, armed: a zone drained (its pods moved to
//! the other zones by a stand-in scheduler that places them where there is room) and a zone cut
//! off (its pods marked and NetworkPolicies around them), each timed and restored exactly; and
//! a process killed after any step of either, restored from the ledger by another.

mod support;

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use firedrill::cluster::kubernetes::Kube;
use firedrill::cluster::ledger::{self, KubeCluster, Protection, Selection};
use firedrill::history::store::RunStatus;
use firedrill_experiments::Kind;
use firedrill_rollback::{Key, Ledger, Operation, Scope, Trust};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, PostParams};
use serde_json::{json, Value};
use support::cluster::{
    all_nodes, all_pods, evicting_cluster, execute_every, ledger_data, one_drill, ready_pod,
    recording, scheduler, sized, timeline, watch, Dying, NS,
};

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The nodes and their zones: z-a has two, z-b and z-c one each. Each can allocate 4 CPUs.
const NODES: [(&str, &str); 4] = [("n1", "z-a"), ("n2", "z-a"), ("n3", "z-b"), ("n4", "z-c")];

/// Where the pods run: web and redis, one CPU each; web-0 and redis-0 in z-a.
const PODS: [(&str, &str, &str); 6] = [
    ("apps", "web-0", "n1"),
    ("apps", "web-1", "n3"),
    ("apps", "web-2", "n4"),
    ("cache", "redis-0", "n2"),
    ("cache", "redis-1", "n3"),
    ("cache", "redis-2", "n4"),
];

/// The cluster of [`NODES`] and [`PODS`], a DaemonSet's agent on every node, and the ledger key.
async fn zoned() -> kube::Client {
    let client = evicting_cluster().await;
    for (name, zone) in NODES {
        let node: Node = serde_json::from_value(json!({
            "metadata": { "name": name, "labels": { ZONE_LABEL: zone } }, "spec": {},
            "status": { "conditions": [{ "type": "Ready", "status": "True" }],
                "allocatable": { "cpu": "4", "memory": "16Gi" } } }))
        .unwrap();
        Api::<Node>::all(client.clone())
            .create(&PostParams::default(), &node)
            .await
            .unwrap();
        let agent = ready_pod(
            "kube-system",
            &format!("agent-{name}"),
            json!({ "app": "agent" }),
            "DaemonSet/agent",
            name,
        );
        create_pod(&client, "kube-system", &agent).await;
    }
    for (namespace, app) in [("apps", "web"), ("cache", "redis")] {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": { "name": app, "namespace": namespace },
            "spec": { "replicas": 3, "selector": { "matchLabels": { "app": app } },
                "template": { "metadata": { "labels": { "app": app } } } } }))
        .unwrap();
        Api::<Deployment>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &d)
            .await
            .unwrap();
    }
    for (namespace, name, node) in PODS {
        let app = name.split('-').next().unwrap();
        create_pod(&client, namespace, &sized(namespace, name, app, node, 1000)).await;
    }
    let key: Secret = serde_json::from_value(json!({
        "metadata": { "name": "firedrill-ledger-key", "namespace": NS },
        "data": { "key": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=" } }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &key)
        .await
        .unwrap();
    client
}

async fn create_pod(client: &kube::Client, namespace: &str, pod: &Pod) {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), pod)
        .await
        .unwrap();
}

fn drill_file(name: &str, fault: &str, extra: &str) -> String {
    format!(
        "armed: true\nnamespace: {NS}\nsafety: {{ min_pod_age: 5m }}\ndrills:\n  - name: {name}\n    kind: zone-outage\n    schedule: \"@monthly\"\n    duration: 4s\n    fault: {fault}\n{extra}"
    )
}

/// Zone z-a drained: both its nodes cordoned and emptied but for the DaemonSet's agents, web-0
/// and redis-0 recreated in the other zones (where there is room), the recovery timed by the
/// stand-ins' delays, every node as it was and every other object untouched; every call one
/// deploy/kubernetes grants and `firedrill check` asks about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_zone_moves_its_pods_to_the_other_zones_and_is_restored_exactly() {
    let client = zoned().await;
    scheduler(
        client.clone(),
        "apps",
        "web",
        Duration::from_millis(400),
        1000,
    );
    scheduler(
        client.clone(),
        "cache",
        "redis",
        Duration::from_millis(800),
        1000,
    );
    let nodes_before = all_nodes(&client).await;
    let pods_before = all_pods(&client).await;
    let text = drill_file(
        "lose-z-a",
        "{ mode: drain, zone: z-a }",
        "    success: { rto: 30s }\n",
    );
    let (config, drill, run) = one_drill(&text, "lose-z-a-1");
    // While the drill runs: both nodes of z-a cordoned at once, and only they.
    let watcher = watch(Duration::from_secs(3), {
        let client = client.clone();
        move || {
            let client = client.clone();
            async move {
                let cordoned: Vec<String> = Api::<Node>::all(client)
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items
                    .into_iter()
                    .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
                    .filter_map(|n| n.metadata.name)
                    .collect();
                (cordoned.len() >= 2).then_some(cordoned)
            }
        }
    });
    let calls = Arc::new(Mutex::new(Vec::new()));
    let record = execute_every(
        &recording(client.clone(), calls.clone()),
        &config,
        &drill,
        &run,
        Some(Vec::new()),
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let mut cordoned = watcher.await.unwrap().expect("z-a was cordoned");
    cordoned.sort();
    assert_eq!(cordoned, ["n1", "n2"]);

    // The zone's pods are gone but the agents; every other pod is as it was.
    let pods_after = all_pods(&client).await;
    for (key, pod) in &pods_before {
        let in_zone = ["n1", "n2"].contains(&pod["spec"]["nodeName"].as_str().unwrap());
        match (
            in_zone && !key.starts_with("kube-system/"),
            pods_after.get(key),
        ) {
            (true, Some(_)) => panic!("{key} in z-a was not evicted"),
            (false, None) => panic!("{key} was not in z-a but is gone"),
            (false, Some(after)) => assert_eq!(after, pod, "{key} changed"),
            (true, None) => {}
        }
    }
    // Recreated in z-b and z-c, where there was room: both workloads whole again.
    for app in ["web", "redis"] {
        let theirs: Vec<&Value> = pods_after
            .values()
            .filter(|p| p["metadata"]["labels"]["app"] == app)
            .collect();
        assert_eq!(theirs.len(), 3, "{app}: {pods_after:#?}");
        for p in theirs {
            assert!(["n3", "n4"].contains(&p["spec"]["nodeName"].as_str().unwrap()));
        }
    }
    assert_eq!(all_nodes(&client).await, nodes_before);

    // Recovery: web back 0.4 s after its pod goes, redis 0.8 s: the slower decides, plus the
    // looks (every 100 ms here) and a busy machine.
    let rto = record.measurements.rto_seconds.expect("RTO measured");
    assert!(
        (0.8..2.5).contains(&rto),
        "RTO {rto}: {:?}",
        timeline(&record)
    );
    let nodes = &record.evidence.to_value()["nodes"];
    assert_eq!(nodes["zone"], "z-a");
    let hurt: Vec<&str> = nodes["hurt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(hurt, ["n1", "n2"]);
    let ledger = ledger_data(&client, "lose-z-a-1").await;
    let uncordons = ledger
        .values()
        .filter(|v| v.contains(r#""type":"uncordon""#) && v.contains(r#""state":"reverted""#))
        .count();
    assert_eq!(uncordons, 2, "{ledger:?}");
    assert_eq!(ledger["outcome"], "passed");

    let calls = calls.lock().unwrap().clone();
    assert_eq!(support::not_granted(&calls, NS), Vec::<String>::new());
    assert_eq!(
        support::not_in_table(&calls, NS, Kind::ZoneOutage),
        Vec::<String>::new()
    );
}

/// Zone z-c cut off: its pods (web-2, redis-2) marked and a NetworkPolicy in each of their
/// namespaces while the drill runs; a stand-in for the service's clients fails for 600 ms after
/// the cut, then routes around it, and the recovery is timed by the probe; afterwards every pod
/// and node is byte-identical and no policy is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_zone_is_isolated_for_the_drill_and_restored_exactly() {
    let client = zoned().await;
    let nodes_before = all_nodes(&client).await;
    let pods_before = all_pods(&client).await;
    // When the first policy appeared: the service answers 503 for 600 ms after it.
    let cut_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    tokio::spawn({
        let (client, cut_at) = (client.clone(), cut_at.clone());
        async move {
            loop {
                let policies = Api::<NetworkPolicy>::all(client.clone())
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items;
                if !policies.is_empty() {
                    cut_at.lock().unwrap().get_or_insert_with(Instant::now);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    let server = support::serve({
        let cut_at = cut_at.clone();
        move |_| match *cut_at.lock().unwrap() {
            Some(at) if at.elapsed() < Duration::from_millis(600) => (503, Duration::ZERO),
            _ => (200, Duration::ZERO),
        }
    })
    .await;
    let text = drill_file(
        "cut-off-z-c",
        "{ mode: partition, zone: z-c }",
        &format!(
            "    steady_state: [{{ http: \"{}\", every: 100ms }}]\n    success: {{ rto: 30s, availability: 50% }}\n",
            server.url
        ),
    );
    let (config, drill, run) = one_drill(&text, "cut-off-z-c-1");
    // While the drill runs: the zone's pods marked, a policy in each of their namespaces.
    let watcher = watch(Duration::from_secs(3), {
        let client = client.clone();
        move || {
            let client = client.clone();
            async move {
                let marked: Vec<String> = Api::<Pod>::all(client.clone())
                    .list(&ListParams::default().labels("firedrill.io/partition"))
                    .await
                    .unwrap()
                    .items
                    .into_iter()
                    .filter_map(|p| p.metadata.name)
                    .collect();
                let policies: Vec<String> = Api::<NetworkPolicy>::all(client)
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items
                    .into_iter()
                    .filter_map(|p| p.metadata.namespace)
                    .collect();
                (policies.len() == 2).then_some((marked, policies))
            }
        }
    });
    let record = execute_every(
        &client,
        &config,
        &drill,
        &run,
        Some(Vec::new()),
        Duration::from_millis(100),
    )
    .await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let (mut marked, mut policies) = watcher.await.unwrap().expect("the zone was cut off");
    marked.sort();
    policies.sort();
    assert_eq!(marked, ["redis-2", "web-2"]);
    assert_eq!(policies, ["apps", "cache"]);
    let rto = record.measurements.rto_seconds.expect("RTO measured");
    assert!(
        (0.55..1.6).contains(&rto),
        "RTO {rto}: {:?}",
        timeline(&record)
    );
    assert_eq!(all_pods(&client).await, pods_before);
    assert_eq!(all_nodes(&client).await, nodes_before);
    let left = Api::<NetworkPolicy>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(record.evidence.to_value()["nodes"]["zone"], "z-c");
}

/// The steps one fire of `fault` plans on the cluster as it is now, as the executor plans them.
async fn steps_of(client: &kube::Client, fault: &str) -> Vec<firedrill_rollback::Step> {
    let (config, drill, _) = one_drill(&drill_file("zone", fault, ""), "zone-1");
    let kube = Kube::new(client.clone(), NS);
    let mut objects = kube.nodes_and_pods().await.unwrap();
    objects.extend(
        kube.snapshot(&["apps".into(), "cache".into(), "kube-system".into()])
            .await
            .unwrap()
            .into_iter()
            .filter(|o| o["kind"] != "Pod"),
    );
    let refs: Vec<&Value> = objects.iter().collect();
    let cluster = firedrill::cluster::snapshot::from_objects(&refs).unwrap();
    let index = firedrill_safety::verdict::ClusterIndex::new(&cluster);
    let hits = firedrill_safety::verdict::RecentHits::new();
    let request = firedrill_safety::verdict::Request {
        drill: &drill.name,
        seed: 1,
        now: chrono::Utc::now().timestamp(),
        targets: &drill.targets,
        policy: &drill.safety,
        own_namespace: &config.namespace,
        recent_hits: &hits,
    };
    let choice = firedrill_experiments::choose(&drill.fault, &index, &cluster, &request);
    assert!(choice.verdict.blocked.is_none(), "{choice:?}");
    let scene = firedrill_experiments::Scene {
        choice: Some(&choice),
        cluster: Some(&cluster),
        image: "firedrill:test",
        duration: Duration::from_secs(60),
        expires: "2099-01-01T00:00:00Z",
        dns: None,
    };
    let plan = firedrill_experiments::plan("zone-1", &drill.fault, &scene).unwrap();
    plan.steps().cloned().collect()
}

/// Killed after any write of a zone outage's apply (each step is a ledger write, the change and
/// the ledger's update), another process restores every node and every pod it changed exactly,
/// from the ledger alone; a second rollback finds nothing left to do. Evicted pods are their
/// controllers' to recreate: only those whose eviction went through are missing.
#[tokio::test]
async fn killed_after_any_step_of_a_zone_outage_another_process_restores_it() {
    static KEY: std::sync::LazyLock<Key> =
        std::sync::LazyLock::new(|| Key::from_bytes(&[7; 32]).unwrap());
    let unprotected = |_: &firedrill_rollback::ObjectRef| None;
    let no_file = Scope { dns: None };
    for fault in [
        "{ mode: drain, zone: z-a }",
        "{ mode: partition, zone: z-c }",
    ] {
        let planned = steps_of(&zoned().await, fault).await;
        assert!(planned.len() >= 4, "{fault}: {planned:?}");
        for killed_after in 0..=planned.len() * 3 {
            let client = zoned().await;
            let pods_before = all_pods(&client).await;
            let nodes_before = all_nodes(&client).await;
            let dying = Dying {
                inner: KubeCluster::new(&Kube::new(client.clone(), NS)),
                left: AtomicUsize::new(killed_after),
            };
            let mut ledger = Ledger::new("zone-1", "zone", "zone-outage", "2099-01-01T00:00:00Z");
            let trust = Trust::new(&unprotected, &no_file, &KEY);
            let applied = firedrill_rollback::apply(&dying, &mut ledger, &planned, &trust).await;
            // (The last write, marking the last entry applied, is bookkeeping it may lose.)
            assert_eq!(
                applied.is_ok(),
                killed_after + 1 >= planned.len() * 3,
                "{fault}: killed after {killed_after}: {applied:?}"
            );
            // Another process, with only the cluster.
            let other = KubeCluster::new(&Kube::new(client.clone(), NS));
            let protection = Protection::without_drill_file(NS);
            let outcomes = ledger::rollback(&other, &Selection::All, &protection, false, false)
                .await
                .unwrap();
            assert!(
                !outcomes.iter().any(|o| o.failed()),
                "{fault}: killed after {killed_after}: {outcomes:?}"
            );
            assert_eq!(
                all_nodes(&client).await,
                nodes_before,
                "{fault}: killed after {killed_after}"
            );
            // Each step is three writes: an eviction went through when its change was made.
            let evicted: Vec<String> = planned
                .iter()
                .take((killed_after + 1) / 3)
                .filter_map(|s| match &s.forward {
                    Operation::Kill { pod, .. } => {
                        Some(format!("{}/{}", pod.namespace.as_deref()?, pod.name))
                    }
                    _ => None,
                })
                .collect();
            let mut expected = pods_before.clone();
            expected.retain(|key, _| !evicted.contains(key));
            assert_eq!(
                all_pods(&client).await,
                expected,
                "{fault}: killed after {killed_after}"
            );
            let again = ledger::rollback(&other, &Selection::All, &protection, false, false)
                .await
                .unwrap();
            assert!(again.is_empty(), "{again:?}");
        }
    }
}
