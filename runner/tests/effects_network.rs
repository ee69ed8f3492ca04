//! network-partition and dependency-failure `block` prove they took effect (#25 item 1, must
//! shows 1 and 2): a canary pod connects to a partitioned pod's port before the fault (it must
//! answer, or nothing is checked and the record says why) and is refused while it is in.
//!
//! On the in-memory cluster pods never run: a stand-in network plugin marks the canary's status
//! as a real one's effect would — connected once it starts, then refused once firedrill's
//! policy exists (or never, for a plugin that does not enforce NetworkPolicy: that run ends
//! `ineffective`, reverted). For real, the canary's script connects across network namespaces
//! with a real nft drop rule in between: allowed before, refused during, allowed after.

mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use firedrill::history::store::RunStatus;
use firedrill::run::RunRecord;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, PostParams};
use serde_json::{json, Value};
use support::canary::{nothing_left, plugin, Plugin};
use support::cluster::{evicting_cluster, execute_on, one_drill, ready_pod, NS};
use support::effects::effect;

/// A pod of `owner` (`Kind/name`) in `namespace`, Running and Ready at `ip`, its `main`
/// container listening on `port` (none: it declares no port).
async fn pod(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    app: &str,
    ip: &str,
    port: Option<i32>,
) {
    let owner = match app {
        "redis" => "StatefulSet/redis",
        _ => "Deployment/web",
    };
    let mut p = serde_json::to_value(ready_pod(
        namespace,
        name,
        json!({ "app": app }),
        owner,
        "n1",
    ))
    .unwrap();
    if let Some(port) = port {
        p["spec"]["containers"][0]["ports"] = json!([{ "containerPort": port, "protocol": "TCP" }]);
    }
    p["status"]["podIP"] = json!(ip);
    Api::<Pod>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &serde_json::from_value(p).unwrap())
        .await
        .unwrap();
}

/// Deployment or StatefulSet `name` in `namespace`, of `replicas` pods labelled `app=name`.
async fn workload(client: &kube::Client, kind: &str, namespace: &str, name: &str, replicas: i32) {
    let object = json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "replicas": replicas, "serviceName": name, "selector": { "matchLabels": { "app": name } },
            "template": { "metadata": { "labels": { "app": name } } } }
    });
    let request = http::Request::post(format!(
        "/apis/apps/v1/namespaces/{namespace}/{}s",
        kind.to_lowercase()
    ))
    .header("content-type", "application/json")
    .body(serde_json::to_vec(&object).unwrap())
    .unwrap();
    client.request::<Value>(request).await.unwrap();
}

/// Three web pods in `apps`, each listening on 8080 when `ports`.
async fn web(client: &kube::Client, ports: bool) {
    workload(client, "Deployment", "apps", "web", 3).await;
    for i in 0..3 {
        let port = ports.then_some(8080);
        pod(
            client,
            "apps",
            &format!("web-{i}"),
            "web",
            &format!("10.0.0.{}", 10 + i),
            port,
        )
        .await;
    }
}

fn drill(name: &str, kind: &str, fault: &str) -> String {
    format!(
        "armed: true\nnamespace: {NS}\nsafety: {{ min_pod_age: 5m }}\ndrills:\n  - name: {name}\n    kind: {kind}\n    schedule: \"@monthly\"\n    duration: 2s\n    targets: [{{ namespace: apps, selector: app=web, count: 1 }}]\n    fault: {fault}\n"
    )
}

/// The run ended `ineffective` (see [`support::effects::assert_ineffective`]), the reason
/// naming the canary that still connected; no recovery measured, nothing left.
async fn assert_ineffective(client: &kube::Client, record: &RunRecord, target: &str) {
    support::effects::assert_ineffective(client, record, &format!("refused by {target}")).await;
    let why = record.reason.as_deref().unwrap_or_default();
    assert!(
        why.contains(&format!("(a canary still connects to {target}")),
        "{why}"
    );
    assert_eq!(record.measurements.rto_seconds, None, "{record:#?}");
    nothing_left(client, record).await;
}

#[tokio::test]
async fn a_partition_is_seen_when_the_plugin_refuses_the_canary_and_ineffective_when_not() {
    let fault = "{ direction: both }";
    // Enforced: the canary connects before, and is refused once the policy is in.
    let client = evicting_cluster().await;
    web(&client, true).await;
    let canaries = plugin(client.clone(), Plugin::Enforces);
    let (config, d, run) = one_drill(&drill("cut", "network-partition", fault), "cut-seen");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let target = &record.targets[0].name;
    let index: usize = target.trim_start_matches("web-").parse().unwrap();
    let to = format!("apps/{target} (10.0.0.{}:8080)", 10 + index);
    let e = effect(&record);
    assert_eq!(e.observed, Some(true), "{e:?}");
    assert!(
        e.what.starts_with(&format!(
            "a canary in apps connected to {to} before the fault and was refused "
        )),
        "{e:?}"
    );
    assert_eq!(
        e.how,
        "a canary pod connected to the pod's port before the fault (nc -z), then was refused while it was in (its exit code)"
    );
    let timeline = support::cluster::timeline(&record);
    assert!(
        timeline.contains(&format!("canary apps/firedrill-cut-seen-canary connected to apps/{target} (10.0.0.{}:8080) before the fault", 10 + index)),
        "{timeline:?}"
    );
    // The canary: a firedrill artifact outside the partition (no mark), restricted, ending by
    // itself, aimed at the chosen pod's IP and declared port.
    let canary = canaries.lock().unwrap()[0].clone();
    let labels = &canary["metadata"]["labels"];
    assert_eq!(labels["firedrill.io/artifact"], "true");
    assert_eq!(labels["firedrill.io/run"], "cut-seen");
    assert_eq!(labels["firedrill.io/canary"], "cut-seen-canary");
    assert!(labels.get("firedrill.io/partition").is_none(), "{labels}");
    assert!(canary["metadata"]["annotations"]["firedrill.io/expires-at"].is_string());
    assert_eq!(canary["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(canary["spec"]["activeDeadlineSeconds"], 240);
    let env = &canary["spec"]["containers"][0]["env"];
    assert_eq!(
        env,
        &json!([{ "name": "TARGET", "value": format!("10.0.0.{}", 10 + index) }, { "name": "PORT", "value": "8080" }])
    );
    nothing_left(&client, &record).await;

    // Not enforced: the canary connects throughout. Not judged: ineffective, reverted.
    let client = evicting_cluster().await;
    web(&client, true).await;
    plugin(client.clone(), Plugin::Ignores);
    let (config, d, run) = one_drill(&drill("cut", "network-partition", fault), "cut-ignored");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    let target = &record.targets[0].name;
    let index: usize = target.trim_start_matches("web-").parse().unwrap();
    assert_ineffective(
        &client,
        &record,
        &format!("apps/{target} (10.0.0.{}:8080)", 10 + index),
    )
    .await;
    // The policy is gone too.
    assert!(Api::<NetworkPolicy>::namespaced(client.clone(), "apps")
        .get_opt("firedrill-partition-cut-ignored")
        .await
        .unwrap()
        .is_none());
}

/// `cache/redis`: a Service over two pods listening on 6379.
async fn redis(client: &kube::Client) {
    let service: Service = serde_json::from_value(json!({
        "metadata": { "name": "redis", "namespace": "cache" },
        "spec": { "selector": { "app": "redis" }, "ports": [{ "port": 6379 }] }
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), "cache")
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    for i in 0..2 {
        pod(
            client,
            "cache",
            &format!("redis-{i}"),
            "redis",
            &format!("10.0.1.{i}"),
            Some(6379),
        )
        .await;
    }
}

#[tokio::test]
async fn a_block_is_seen_when_a_marked_canary_cannot_reach_the_dependency_and_ineffective_when_it_can(
) {
    let fault = "{ dependency: { service: cache/redis }, mode: block }";
    for (plugin_does, run) in [
        (Plugin::Enforces, "nr-seen"),
        (Plugin::Ignores, "nr-ignored"),
    ] {
        let client = evicting_cluster().await;
        web(&client, true).await;
        redis(&client).await;
        let canaries = plugin(client.clone(), plugin_does);
        let (config, d, r) = one_drill(&drill("nr", "dependency-failure", fault), run);
        let record = execute_on(&client, &config, &d, &r, Some(Vec::new())).await;
        // The canary runs beside the chosen client, marked as it is, and tries redis-0.
        let canary = canaries.lock().unwrap()[0].clone();
        assert_eq!(canary["metadata"]["namespace"], "apps");
        assert_eq!(canary["metadata"]["labels"]["firedrill.io/partition"], run);
        let to = "cache/redis-0 (10.0.1.0:6379)";
        if plugin_does == Plugin::Enforces {
            assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
            let e = effect(&record);
            assert_eq!(e.observed, Some(true), "{e:?}");
            assert!(
                e.what.starts_with(&format!(
                    "a canary in apps connected to {to} before the fault and was refused "
                )),
                "{e:?}"
            );
            nothing_left(&client, &record).await;
        } else {
            assert_ineffective(&client, &record, to).await;
        }
    }
}

/// What cannot be checked says why, is never counted as seen, and does not stop the drill.
#[tokio::test]
async fn what_a_canary_cannot_check_is_said_and_never_passed_off_as_seen() {
    let not_checked = |record: &RunRecord, why: &str| {
        assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
        let e = effect(record);
        assert_eq!(e.observed, None, "{e:?}");
        assert!(e.how.starts_with("not checked ("), "{e:?}");
        assert!(
            e.what.starts_with(&format!("not checked: {why}")),
            "{why:?}: {e:?}"
        );
    };
    // No declared port: no canary at all.
    let client = evicting_cluster().await;
    web(&client, false).await;
    let canaries = plugin(client.clone(), Plugin::Enforces);
    let (config, d, run) = one_drill(
        &drill("cut", "network-partition", "{ direction: both }"),
        "cut-noport",
    );
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    not_checked(&record, "no port to try: apps/web-");
    assert!(record
        .evidence
        .effect
        .as_ref()
        .unwrap()
        .what
        .ends_with(" declares no TCP containerPort"));
    assert!(canaries.lock().unwrap().is_empty());

    // The pod never answered the canary before the fault: the check would mean nothing.
    let client = evicting_cluster().await;
    web(&client, true).await;
    plugin(client.clone(), Plugin::NoAnswer);
    let (config, d, run) = one_drill(
        &drill("cut", "network-partition", "{ direction: both }"),
        "cut-silent",
    );
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    not_checked(
        &record,
        "the pod did not answer before the fault: a canary in apps could not connect to apps/web-",
    );
    let timeline = support::cluster::timeline(&record);
    assert!(
        timeline
            .iter()
            .any(|t| t.starts_with("effect not checked: the pod did not answer")),
        "{timeline:?}"
    );
    nothing_left(&client, &record).await;

    // An egress-only partition, an `allow` the canary would pass, a dependency outside the
    // cluster: said by the planner, no canary made.
    for (kind, fault, why) in [
        (
            "network-partition",
            "{ direction: egress }",
            "the partition denies only the pods' egress",
        ),
        (
            "network-partition",
            "{ direction: both, allow: [{ namespace: apps }] }",
            "`allow` admits every pod of apps, the canary's namespace",
        ),
        (
            "network-partition",
            "{ direction: ingress, allow: [{ cidr: 10.0.0.0/8 }] }",
            "`allow` admits 10.0.0.0/8",
        ),
        (
            "network-partition",
            "{ direction: both, allow: [{ selector: app.kubernetes.io/name=firedrill }] }",
            "`allow` selector",
        ),
        (
            "dependency-failure",
            "{ dependency: { cidrs: [203.0.113.0/24] }, mode: block }",
            "the dependency is addresses outside the cluster",
        ),
        (
            "dependency-failure",
            "{ dependency: { service: cache/redis }, mode: block }",
            "no pod of Service cache/redis to try",
        ),
    ] {
        let client = evicting_cluster().await;
        web(&client, true).await;
        if fault.contains("cache/redis") {
            let service: Service = serde_json::from_value(json!({
                "metadata": { "name": "redis", "namespace": "cache" },
                "spec": { "selector": { "app": "redis" }, "ports": [{ "port": 6379 }] }
            }))
            .unwrap();
            Api::<Service>::namespaced(client.clone(), "cache")
                .create(&PostParams::default(), &service)
                .await
                .unwrap();
        }
        let canaries = plugin(client.clone(), Plugin::Enforces);
        let (config, d, run) = one_drill(&drill("cut", kind, fault), "cut-unchecked");
        let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
        not_checked(&record, why);
        assert!(canaries.lock().unwrap().is_empty(), "{fault}");
    }
}

/// What the canary needs is in the RBAC table of both kinds (and so in deploy/kubernetes).
#[test]
fn the_canary_pod_is_in_the_kinds_rbac() {
    use firedrill::cluster::access::{needs, Rule, Scope};
    for kind in [
        firedrill_experiments::Kind::NetworkPartition,
        firedrill_experiments::Kind::DependencyFailure,
    ] {
        for verb in ["create", "get", "delete"] {
            let rule = Rule {
                group: "",
                resource: "pods",
                verb,
                scope: Scope::Namespace,
            };
            assert!(needs(kind).contains(&rule), "{kind:?} {verb}");
        }
    }
}

// ---- for real: the canary's script across network namespaces, with a real nft drop rule ----

/// What the real check needs of this machine; missing under CI is a failure, not a skip.
fn can_make_namespaces() -> bool {
    let missing: Vec<&str> = ["ip", "nft", "nc", "python3"]
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if missing.is_empty() && root {
        return true;
    }
    support::skip(&format!("network namespaces need root and {missing:?} (scripts/services.sh installs them: its PROGRAMS table)"));
    false
}

/// Two network namespaces joined by a veth pair (the degrade rig's layout, its own names),
/// removed on drop with whatever runs in them.
struct Rig {
    children: Vec<Child>,
}

const CANARY_NS: &str = "fdn-canary";
const POD_NS: &str = "fdn-pod";
const POD_IP: &str = "10.98.0.2";
const PORT: &str = "8080";

fn sh(command: &str) -> std::process::Output {
    Command::new("sh").args(["-c", command]).output().unwrap()
}

impl Rig {
    fn new() -> Rig {
        sh(&format!("ip netns del {CANARY_NS}; ip netns del {POD_NS}"));
        let out = sh(&format!(
            "set -e; ip netns add {CANARY_NS}; ip netns add {POD_NS}
             ip link add eth0 netns {CANARY_NS} type veth peer name eth0 netns {POD_NS}
             ip -n {CANARY_NS} addr add 10.98.0.1/24 dev eth0; ip -n {POD_NS} addr add {POD_IP}/24 dev eth0
             for n in {CANARY_NS} {POD_NS}; do ip -n $n link set eth0 up; ip -n $n link set lo up; done"
        ));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The partitioned pod: a TCP listener that accepts and closes.
        let listener = Command::new("ip")
            .args(["netns", "exec", POD_NS, "python3", "-c"])
            .arg(format!("import socket\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('0.0.0.0', {PORT})); s.listen(64)\nwhile True:\n    c, _ = s.accept(); c.close()\n"))
            .spawn()
            .unwrap();
        Rig {
            children: vec![listener],
        }
    }

    /// The canary's own script, in the canary's namespace, against the pod; it creates
    /// `connected` once it connected.
    fn canary(&mut self, connected: &std::path::Path) -> usize {
        let child = Command::new("ip")
            .args(["netns", "exec", CANARY_NS, "env"])
            .arg(format!("TARGET={POD_IP}"))
            .arg(format!("PORT={PORT}"))
            .arg(format!("CONNECTED={}", connected.display()))
            .args(["sh", "-c", firedrill_experiments::partition::CANARY_SCRIPT])
            .spawn()
            .unwrap();
        self.children.push(child);
        self.children.len() - 1
    }

    /// A drop rule for the pod's port, as a plugin's would be, in the pod's namespace.
    fn drop_rule(&self, on: bool) {
        let command = if on {
            format!("ip netns exec {POD_NS} nft -f - <<'EOF'\ntable inet fdn_partition {{\n  chain input {{ type filter hook input priority 0; policy accept; tcp dport {PORT} drop; }}\n}}\nEOF")
        } else {
            format!("ip netns exec {POD_NS} nft delete table inet fdn_partition")
        };
        let out = sh(&command);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        sh(&format!("ip netns del {CANARY_NS}; ip netns del {POD_NS}"));
    }
}

/// Waits up to `within` for `done`; how long it took.
fn within(within: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if done() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn the_canary_connects_before_is_refused_during_a_real_drop_rule_and_connects_after() {
    if !can_make_namespaces() {
        return;
    }
    // The script is busybox's in the cluster; here it runs under the machine's sh with
    // OpenBSD netcat (Debian's busybox builds nc without -z), the same `nc -z -w 2` contract.
    let dir = std::env::temp_dir().join(support::unique("firedrill-canary"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rig = Rig::new();
    // Before: it connects.
    let before = dir.join("before");
    let first = rig.canary(&before);
    let took = within(Duration::from_secs(15), || before.exists())
        .expect("the canary connected before the drop rule");
    // And keeps connecting while nothing is in the way.
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        rig.children[first].try_wait().unwrap().is_none(),
        "the canary ended with nothing in the way"
    );
    // During: a real drop rule; the canary is refused and says so by exiting 0.
    rig.drop_rule(true);
    let mut code = None;
    let refused = within(Duration::from_secs(15), || {
        code = rig.children[first].try_wait().unwrap().map(|s| s.code());
        code.is_some()
    })
    .expect("the canary was refused during the drop rule");
    assert_eq!(code, Some(Some(0)), "exit 0: refused");
    // After: the rule gone, a new canary connects again.
    rig.drop_rule(false);
    let after = dir.join("after");
    rig.canary(&after);
    let again = within(Duration::from_secs(15), || after.exists())
        .expect("the canary connected after the drop rule");
    eprintln!(
        "canary: connected before in {:.2}s; refused {:.2}s after the drop rule; connected again {:.2}s after it went",
        took.as_secs_f64(),
        refused.as_secs_f64(),
        again.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
