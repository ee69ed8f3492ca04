//! zone-outage in `mode: partition` proves it took effect (#25 item 1, must show 1): a canary pod
//! outside the cut (it carries no mark) connects to a pod of the zone on the port it declares
//! before the fault and is refused while the zone is cut off. On the in-memory cluster the
//! stand-in network plugin of `support::canary` gives the canary the status its script would;
//! one that does not enforce NetworkPolicy leaves the run `ineffective`, reverted. A zone whose
//! pods declare no port cannot be tried: the record says so and the run is judged as before.

mod support;

use firedrill::history::store::RunStatus;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use support::canary::{nothing_left, plugin, Plugin};
use support::cluster::{all_pods, evicting_cluster, execute_on, ledger_data, one_drill, sized, NS};
use support::effects::effect;

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Three zones of one node each; web (apps) and redis (cache) with a pod in each. The web pods
/// listen on 8080 at 10.0.0.1x when `web_ports`; the redis pods declare no port. Zone z-c holds
/// web-2 and redis-2.
async fn zoned(web_ports: bool) -> kube::Client {
    let client = evicting_cluster().await;
    for (i, zone) in ["z-a", "z-b", "z-c"].into_iter().enumerate() {
        let node: Node = serde_json::from_value(json!({
            "metadata": { "name": format!("n{}", i + 1), "labels": { ZONE_LABEL: zone } }, "spec": {},
            "status": { "conditions": [{ "type": "Ready", "status": "True" }],
                "allocatable": { "cpu": "4", "memory": "16Gi" } } }))
        .unwrap();
        Api::<Node>::all(client.clone())
            .create(&PostParams::default(), &node)
            .await
            .unwrap();
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
        for i in 0..3 {
            let name = format!("{app}-{i}");
            let mut pod =
                serde_json::to_value(sized(namespace, &name, app, &format!("n{}", i + 1), 500))
                    .unwrap();
            pod["status"]["podIP"] = json!(format!("10.0.{}.1{i}", (app == "redis") as u8));
            if app == "web" && web_ports {
                pod["spec"]["containers"][0]["ports"] =
                    json!([{ "containerPort": 8080, "protocol": "TCP" }]);
            }
            Api::<Pod>::namespaced(client.clone(), namespace)
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(pod).unwrap(),
                )
                .await
                .unwrap();
        }
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

fn drill_file(name: &str) -> String {
    format!(
        "armed: true\nnamespace: {NS}\nsafety: {{ min_pod_age: 5m }}\ndrills:\n  - name: {name}\n    kind: zone-outage\n    schedule: \"@monthly\"\n    duration: 2s\n    fault: {{ mode: partition, zone: z-c }}\n"
    )
}

/// No firedrill policy and no mark left anywhere.
async fn cut_undone(client: &kube::Client) {
    let policies = Api::<NetworkPolicy>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert!(policies.is_empty(), "{policies:?}");
    let marked = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().labels("firedrill.io/partition"))
        .await
        .unwrap()
        .items;
    assert!(marked.is_empty(), "{marked:?}");
}

const TO: &str = "apps/web-2 (10.0.0.12:8080)";

#[tokio::test]
async fn a_cut_off_zone_is_seen_when_the_plugin_refuses_the_canary() {
    let client = zoned(true).await;
    let pods_before = all_pods(&client).await;
    let canaries = plugin(client.clone(), Plugin::Enforces);
    let (config, d, run) = one_drill(&drill_file("cut-z-c"), "zone-seen");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let e = effect(&record);
    assert_eq!(e.observed, Some(true), "{e:?}");
    assert!(
        e.what.starts_with(&format!(
            "a canary in apps connected to {TO} before the fault and was refused "
        )),
        "{e:?}"
    );
    assert_eq!(
        e.how,
        "a canary pod connected to the pod's port before the fault (nc -z), then was refused while it was in (its exit code)"
    );
    let timeline = support::cluster::timeline(&record);
    assert!(
        timeline.contains(&format!(
            "canary apps/firedrill-zone-seen-canary connected to {} before the fault",
            TO
        )),
        "{timeline:?}"
    );
    // The canary: one, outside the cut (no mark), beside the pod of the zone that declares a
    // port (redis-2, in the zone too, declares none), aimed at its IP and port.
    let seen = canaries.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let canary = &seen[0];
    assert_eq!(canary["metadata"]["namespace"], "apps");
    let labels = &canary["metadata"]["labels"];
    assert_eq!(labels["firedrill.io/run"], "zone-seen");
    assert!(labels.get("firedrill.io/partition").is_none(), "{labels}");
    assert_eq!(
        canary["spec"]["containers"][0]["env"],
        json!([{ "name": "TARGET", "value": "10.0.0.12" }, { "name": "PORT", "value": "8080" }])
    );
    nothing_left(&client, &record).await;
    cut_undone(&client).await;
    assert_eq!(all_pods(&client).await, pods_before);
}

#[tokio::test]
async fn a_cut_off_zone_is_ineffective_when_the_plugin_does_not_enforce_and_is_reverted() {
    let client = zoned(true).await;
    let pods_before = all_pods(&client).await;
    plugin(client.clone(), Plugin::Ignores);
    let (config, d, run) = one_drill(&drill_file("cut-z-c"), "zone-ignored");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Ineffective, "{record:#?}");
    let why = record.reason.as_deref().unwrap_or_default();
    assert!(why.starts_with("the fault did not take effect: "), "{why}");
    assert!(
        why.contains(&format!(
            "a canary in apps refused by {TO} not seen by the end of the drill"
        )),
        "{why}"
    );
    assert!(
        why.contains(&format!("(a canary still connects to {TO})")),
        "{why}"
    );
    assert!(why.ends_with("; reverted"), "{why}");
    let e = effect(&record);
    assert_eq!(e.observed, Some(false), "{e:?}");
    assert!(
        e.what
            .starts_with(&format!("a canary in apps refused by {TO}: not seen")),
        "{e:?}"
    );
    assert_eq!(
        ledger_data(&client, &record.id).await["outcome"],
        "ineffective"
    );
    assert_eq!(record.measurements.rto_seconds, None, "{record:#?}");
    nothing_left(&client, &record).await;
    cut_undone(&client).await;
    assert_eq!(all_pods(&client).await, pods_before);
}

#[tokio::test]
async fn a_zone_whose_pods_declare_no_port_is_not_checked_and_says_why() {
    let client = zoned(false).await;
    let canaries = plugin(client.clone(), Plugin::Enforces);
    let (config, d, run) = one_drill(&drill_file("cut-z-c"), "zone-noport");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let e = effect(&record);
    assert_eq!(e.observed, None, "{e:?}");
    assert!(e.how.starts_with("not checked ("), "{e:?}");
    assert!(
        e.what
            .starts_with("not checked: no port to try: none of the 2 pods cut off ("),
        "{e:?}"
    );
    assert!(
        e.what.contains("apps/web-2") && e.what.contains("cache/redis-2"),
        "{e:?}"
    );
    assert!(
        e.what
            .ends_with(") declares a TCP containerPort outside its node's network"),
        "{e:?}"
    );
    assert!(canaries.lock().unwrap().is_empty());
    cut_undone(&client).await;
}

/// The canary's calls are in the kind's RBAC table, in whichever namespace the zone's pod is.
#[test]
fn the_canary_pod_is_in_the_zone_outage_rbac() {
    use firedrill::cluster::access::{needs, Rule, Scope};
    for verb in ["create", "get", "delete"] {
        let rule = Rule {
            group: "",
            resource: "pods",
            verb,
            scope: Scope::Cluster,
        };
        assert!(
            needs(firedrill_experiments::Kind::ZoneOutage).contains(&rule),
            "{verb}"
        );
    }
}
