//! Faults whose helpers say they took effect (#25 item 1, must-shows 1 and 2 for these kinds):
//! network-degrade's helper reports the qdisc and nft rules it applied and a round-trip measured
//! inside the pod's network namespace before and during; a resource-stress pod reports the load it
//! measured from /proc while stress-ng ran. The runner reads the report back from the pod's log.
//!
//! On the in-memory cluster a stand-in kubelet serves each helper's log: a report that shows the
//! fault ends the run `passed` with what was measured in its record; a helper that reports
//! nothing ends it `ineffective`, reverted, saying why. For real, where this machine allows: the
//! degrade script in network namespaces, its report judged by the runner's own reading (this
//! kernel has no netem: the delayed round-trip is said to be unmeasurable here, not faked), and
//! the stress script running stress-ng (cpu, memory and io), its /proc measurement judged the
//! same way.

mod support;

use support::effects::{assert_ineffective, effect};

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use firedrill::drill::helper_report::{judge_degrade, judge_stress, Asked, Judged, Report};
use firedrill::history::store::RunStatus;
use firedrill::run::RunRecord;
use firedrill_experiments::StressLoad;
use http::{Method, Request, Response};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, PostParams};
use kube::client::Body;
use serde_json::json;
use support::cluster::{execute_on, one_drill, ready_pod, value, watchable, NS};

/// What each helper's log says, by pod name (a pod not in it has said nothing).
type Logs = Arc<Mutex<BTreeMap<String, String>>>;

/// The in-memory cluster, with a kubelet's stand-in for `GET .../pods/NAME/log`: what `logs`
/// holds for the pod, or nothing.
async fn cluster(logs: Logs) -> kube::Client {
    let inner = kube_fake_client::ClientBuilder::new()
        .build()
        .await
        .expect("fake cluster");
    let service = tower::service_fn(move |request: Request<Body>| {
        let (inner, logs) = (inner.clone(), logs.clone());
        async move {
            let path = request.uri().path().to_owned();
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            if request.method() == Method::GET && parts.last() == Some(&"log") {
                // api/v1/namespaces/NS/pods/NAME/log
                let said = logs.lock().unwrap().get(parts[5]).cloned();
                return Ok::<_, kube::Error>(
                    Response::builder()
                        .status(200)
                        .header("content-type", "text/plain")
                        .body(Body::from(said.unwrap_or_default().into_bytes()))
                        .unwrap(),
                );
            }
            inner.send(request).await
        }
    });
    let client = watchable(kube::Client::new(service, "default"));
    // Nodes n0 and n1, and Deployment apps/web with a Running and Ready pod web-i on node ni.
    for i in 0..2 {
        let node: Node =
            serde_json::from_value(json!({ "metadata": { "name": format!("n{i}") }, "spec": {},
            "status": { "conditions": [{ "type": "Ready", "status": "True" }],
                "allocatable": { "cpu": "4", "memory": "16Gi" } } }))
            .unwrap();
        Api::<Node>::all(client.clone())
            .create(&PostParams::default(), &node)
            .await
            .unwrap();
    }
    let d: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web", "namespace": "apps" },
        "spec": { "replicas": 2, "selector": { "matchLabels": { "app": "web" } },
            "template": { "metadata": { "labels": { "app": "web" } } } }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "apps")
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    for i in 0..2 {
        let mut p = value(ready_pod(
            "apps",
            &format!("web-{i}"),
            json!({ "app": "web" }),
            "Deployment/web",
            &format!("n{i}"),
        ));
        p["status"]["containerStatuses"] = json!([
            { "name": "main", "ready": true, "restartCount": 0, "image": "app", "imageID": "",
              "containerID": format!("containerd://{i}0000000000000000aa"), "state": { "running": {} } }
        ]);
        Api::<Pod>::namespaced(client.clone(), "apps")
            .create(&PostParams::default(), &serde_json::from_value(p).unwrap())
            .await
            .unwrap();
    }
    client
}

fn drill(name: &str, kind: &str, fault: &str, duration: &str) -> String {
    format!(
        "armed: true\nnamespace: {NS}\nsafety: {{ min_pod_age: 5m, limits: {{ cpu: 90%, memory: 90% }} }}\ndrills:\n  - name: {name}\n    kind: {kind}\n    schedule: \"@monthly\"\n    duration: {duration}\n    targets: [{{ namespace: apps, selector: app=web, count: 1 }}]\n    fault: {fault}\n"
    )
}

/// The node of the run's target (web-i runs on ni).
fn node_of(record: &RunRecord) -> String {
    record.targets[0].name.replace("web-", "n")
}

/// No helper pod is left in `apps` after the run.
async fn no_helpers_left(client: &kube::Client) {
    let left: Vec<String> = Api::<Pod>::namespaced(client.clone(), "apps")
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .filter(|n| n.starts_with("firedrill-"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

const DEGRADE_REPORT: &str = "firedrill: effect rtt before 0.071 ms to 10.244.0.1 (5 of 5 answered)
firedrill: degrading eth0 in the network namespace of container 00000000000000000aa (pid 4242), net:[4026532174] until 1796624065 (in 2 s)
firedrill: + tc qdisc add dev eth0 root handle fd01: netem delay 150ms
firedrill: applied; waiting until 1796624065
firedrill: effect rtt during 150.3 ms to 10.244.0.1 (5 of 5 answered)
firedrill: effect qdisc qdisc netem fd01: root refcnt 2 limit 1000 delay 150ms
firedrill: effect nft none
firedrill: effect end
";

#[tokio::test]
async fn network_degrade_seen_in_its_helpers_report_and_ineffective_when_it_reports_nothing() {
    // Seen: the helper reports netem in place and the round-trip grown by the delay.
    let logs = Logs::default();
    logs.lock()
        .unwrap()
        .insert("firedrill-degrade-nd-seen-0".into(), DEGRADE_REPORT.into());
    let client = cluster(logs).await;
    let text = drill("nd", "network-degrade", "{ delay: 150ms }", "2s");
    let (config, d, run) = one_drill(&text, "nd-seen");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let e = effect(&record);
    assert_eq!(e.observed, Some(true), "{e:?}");
    assert!(e.how.contains("the helper's report on its log"), "{e:?}");
    let target = &record.targets[0].name;
    for said in [
        &format!(
            "apps/{target} degraded: qdisc qdisc netem fd01: root refcnt 2 limit 1000 delay 150ms"
        ),
        "round-trip 0.071 ms before, 150.3 ms during (to 10.244.0.1 (5 of 5 answered))",
    ] {
        assert!(e.what.contains(said), "{said:?} not in {e:?}");
    }
    no_helpers_left(&client).await;

    // Not seen: the helper's log says nothing (it never ran, or ran an image that reports no
    // state): ineffective at the end of the drill, reverted.
    let client = cluster(Logs::default()).await;
    let (config, d, run) = one_drill(&text, "nd-silent");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_ineffective(
        &client,
        &record,
        &format!("apps/{} degraded not seen by the end of the drill; it had 75s (apps/firedrill-degrade-nd-silent-0 has reported nothing yet)", record.targets[0].name),
    )
    .await;
    no_helpers_left(&client).await;
}

#[tokio::test]
async fn a_degrade_whose_qdisc_is_not_there_is_ineffective_with_what_the_helper_saw() {
    let logs = Logs::default();
    let refused = "firedrill: effect rtt before 0.071 ms to 10.244.0.1 (5 of 5 answered)\n\
firedrill: effect rtt during 0.069 ms to 10.244.0.1 (5 of 5 answered)\n\
firedrill: effect qdisc qdisc noqueue 0: root refcnt 2\nfiredrill: effect nft none\nfiredrill: effect end\n";
    logs.lock()
        .unwrap()
        .insert("firedrill-degrade-nd-gone-0".into(), refused.into());
    let client = cluster(logs).await;
    let text = drill("nd", "network-degrade", "{ delay: 150ms }", "2s");
    let (config, d, run) = one_drill(&text, "nd-gone");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_ineffective(
        &client,
        &record,
        "no netem delay of 150ms in the qdiscs (root: qdisc noqueue 0: root refcnt 2), round-trip 0.071 ms before, 0.069 ms during",
    )
    .await;
}

#[tokio::test]
async fn resource_stress_seen_in_the_measured_load_and_ineffective_when_the_pod_reports_nothing() {
    // Seen: the stress pod measured stress-ng using most of the 80% asked.
    let logs = Logs::default();
    logs.lock().unwrap().insert(
        "firedrill-stress-heat-seen-0".into(),
        "stress-ng: info:  [7] dispatching hogs: 4 cpu\n\
firedrill: effect cpu stress-ng=78.4% (3.13 of 4 CPUs) node=91% over=3s\nfiredrill: effect end\n"
            .into(),
    );
    let client = cluster(logs.clone()).await;
    let text = drill(
        "heat",
        "resource-stress",
        "{ resource: cpu, load: 80% }",
        "2s",
    );
    let (config, d, run) = one_drill(&text, "heat-seen");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let e = effect(&record);
    assert_eq!(e.observed, Some(true), "{e:?}");
    assert_eq!(
        e.what.replace(&node_of(&record), "N"),
        "node N CPUs 80% busy with stress-ng: stress-ng used 78.4% of each CPU, asked 80% (stress-ng=78.4% (3.13 of 4 CPUs) node=91% over=3s)"
    );
    no_helpers_left(&client).await;

    // Throttled (a LimitRange's CPU limit): measured, and short of the load asked.
    logs.lock().unwrap().insert(
        "firedrill-stress-heat-slow-0".into(),
        "firedrill: effect cpu stress-ng=12.4% (0.49 of 4 CPUs) node=20% over=3s\nfiredrill: effect end\n".into(),
    );
    let client = cluster(logs).await;
    let (config, d, run) = one_drill(&text, "heat-slow");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_ineffective(
        &client,
        &record,
        "stress-ng used 12.4% of each CPU, asked 80% (stress-ng=12.4% (0.49 of 4 CPUs) node=20% over=3s): under 60% of the load asked",
    )
    .await;

    // Not seen: the pod says nothing.
    let client = cluster(Logs::default()).await;
    let text = drill(
        "heat",
        "resource-stress",
        "{ resource: memory, load: 30% }",
        "2s",
    );
    let (config, d, run) = one_drill(&text, "heat-silent");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_ineffective(
        &client,
        &record,
        &format!("30% of node {}'s free memory held not seen by the end of the drill; it had 75s (apps/firedrill-stress-heat-silent-0 has reported nothing yet)", node_of(&record)),
    )
    .await;
    no_helpers_left(&client).await;
}

#[tokio::test]
async fn io_stress_seen_in_the_bytes_its_workers_moved_and_ineffective_when_the_pod_reports_nothing(
) {
    let text = drill(
        "disk",
        "resource-stress",
        "{ resource: io, workers: 2 }",
        "2s",
    );
    // Seen: the pod measured its two workers writing and reading, from /proc/PID/io.
    let logs = Logs::default();
    let said = "io written=412330kB/s read=398112kB/s storage-written=409600kB/s storage-read=0kB/s workers=2 over=3s";
    logs.lock().unwrap().insert(
        "firedrill-stress-disk-seen-0".into(),
        format!("stress-ng: info:  [7] dispatching hogs: 2 hdd\nfiredrill: effect {said}\nfiredrill: effect end\n"),
    );
    let client = cluster(logs).await;
    let (config, d, run) = one_drill(&text, "disk-seen");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let e = effect(&record);
    assert_eq!(e.observed, Some(true), "{e:?}");
    assert_eq!(
        e.what.replace(&node_of(&record), "N"),
        format!(
            "2 stress-ng io workers writing and reading on node N: stress-ng wrote 412330 kB/s and read 398112 kB/s with 2 workers ({})",
            said.trim_start_matches("io ")
        )
    );
    assert_eq!(
        e.how,
        "the stress pod's report on its log: the bytes stress-ng's processes wrote and read, from /proc/PID/io while it ran"
    );
    no_helpers_left(&client).await;

    // Stalled workers (a disk throttled to a crawl, a scratch volume that refuses writes):
    // measured, and under the floor.
    let logs = Logs::default();
    logs.lock().unwrap().insert(
        "firedrill-stress-disk-stalled-0".into(),
        "firedrill: effect io written=12kB/s read=0kB/s storage-written=0kB/s storage-read=0kB/s workers=2 over=3s\nfiredrill: effect end\n".into(),
    );
    let client = cluster(logs).await;
    let (config, d, run) = one_drill(&text, "disk-stalled");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_ineffective(
        &client,
        &record,
        "stress-ng wrote 12 kB/s and read 0 kB/s with 2 workers (written=12kB/s read=0kB/s storage-written=0kB/s storage-read=0kB/s workers=2 over=3s): under 2048 kB/s (1024 kB/s a worker)",
    )
    .await;

    // Not seen: the pod says nothing.
    let client = cluster(Logs::default()).await;
    let (config, d, run) = one_drill(&text, "disk-silent");
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_ineffective(
        &client,
        &record,
        &format!("2 stress-ng io workers writing and reading on node {} not seen by the end of the drill; it had 75s (apps/firedrill-stress-disk-silent-0 has reported nothing yet)", node_of(&record)),
    )
    .await;
    no_helpers_left(&client).await;
}

#[tokio::test]
async fn a_ramp_is_judged_on_its_steady_step_only() {
    // The climb's pods say nothing; the last (steady, at the top) reports the load.
    let logs = Logs::default();
    let client = cluster(logs.clone()).await;
    let text = drill(
        "heat",
        "resource-stress",
        "{ resource: cpu, ramp: \"20%->60% over 2s\" }",
        "4s",
    );
    let (config, d, run) = one_drill(&text, "ramp");
    // Steps: 20% (pod 0), 60% held to the end (pod 1).
    logs.lock().unwrap().insert(
        "firedrill-stress-ramp-1".into(),
        "firedrill: effect cpu stress-ng=58.0% (2.32 of 4 CPUs) node=70% over=3s\nfiredrill: effect end\n".into(),
    );
    let record = execute_on(&client, &config, &d, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let e = effect(&record);
    assert!(
        e.what.replace(&node_of(&record), "N").starts_with(
            "node N CPUs 60% busy with stress-ng: stress-ng used 58% of each CPU, asked 60%"
        ),
        "{e:?}"
    );
}

// ---- for real --------------------------------------------------------------------------------

fn have(tools: &[&str]) -> bool {
    let missing: Vec<&&str> = tools
        .iter()
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
    support::skip(&format!(
        "needs root and {missing:?} (scripts/services.sh installs them: its PROGRAMS table)"
    ));
    false
}

/// Two network namespaces joined by a veth pair: `fdh-a` (10.97.0.1, eth0, default route to the
/// peer) and `fdh-b` (10.97.0.2); removed when dropped.
struct Pair;

impl Pair {
    fn new() -> Pair {
        let sh = |s: &str| {
            let ok = Command::new("sh").args(["-c", s]).status().unwrap();
            assert!(ok.success(), "{s}");
        };
        sh("ip netns del fdh-a 2>/dev/null; ip netns del fdh-b 2>/dev/null; true");
        sh("ip netns add fdh-a && ip netns add fdh-b \
            && ip link add eth0 netns fdh-a type veth peer name eth0 netns fdh-b \
            && ip -n fdh-a addr add 10.97.0.1/24 dev eth0 && ip -n fdh-b addr add 10.97.0.2/24 dev eth0 \
            && ip -n fdh-a link set eth0 up && ip -n fdh-b link set eth0 up \
            && ip -n fdh-a link set lo up && ip -n fdh-a route add default via 10.97.0.2");
        Pair
    }

    /// The helper script, in `fdh-a`, with `env`: its status and what it said.
    fn degrade(&self, env: &[(&str, &str)]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", "fdh-a", "sh", "-c"])
            .arg(firedrill_experiments::degrade::DEGRADE_SCRIPT)
            .env("HOST_PID", std::process::id().to_string())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), said)
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .args(["-c", "ip netns del fdh-a; ip netns del fdh-b"])
            .status();
    }
}

trait Seen {
    /// What was seen, or a panic with what was seen instead and the helper's whole log.
    fn seen(self, log: &str) -> String;
}

impl Seen for Judged {
    fn seen(self, log: &str) -> String {
        match self {
            Judged::Seen(seen) => seen,
            Judged::NotSeen(instead) => panic!("not seen: {instead}\n{log}"),
        }
    }
}

/// One at a time: the namespaces and the stress share this machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn the_degrade_helper_reports_what_it_applied_and_the_round_trip_it_measured() {
    if !have(&["ip", "tc", "nft", "ping", "nsenter"]) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pair = Pair::new();
    // Loss and a rate: the report lists the tbf qdisc and the nft drop rules as the kernel has
    // them, and the round-trip to the default gateway (the peer) before and during.
    let (ok, said) = pair.degrade(&[
        ("HOLD_SECONDS", "6"),
        ("LOSS_PERCENT", "30"),
        ("RATE", "10mbit"),
    ]);
    eprintln!("{said}");
    assert!(ok, "{said}");
    let report = Report::parse(&said);
    assert!(report.complete, "{said}");
    let seen = judge_degrade(
        &report,
        Asked {
            delay: None,
            loss: 30,
            rate: Some("10mbit"),
        },
    )
    .seen(&said);
    eprintln!("judged: {seen}");
    assert!(seen.contains("qdisc qdisc tbf fd01: root"), "{seen}");
    assert!(
        seen.contains("nft drop rules for 30% loss in place (table netdev firedrill)"),
        "{seen}"
    );
    assert!(seen.contains(" ms before, "), "{seen}");
    assert!(seen.contains("(to 10.97.0.2 ("), "{seen}");

    // A real delay, where the kernel has netem: the round-trip grown by most of it. Where it
    // has none (this machine's), the helper fails before it reports, and nothing is measured.
    let (ok, said) = pair.degrade(&[("HOLD_SECONDS", "6"), ("DELAY_MS", "100")]);
    eprintln!("{said}");
    if said.contains("is the sch_netem kernel module there?") {
        assert!(!ok);
        assert!(!Report::parse(&said).complete, "{said}");
        eprintln!("this kernel has no netem: the delayed round-trip cannot be measured here");
        return;
    }
    assert!(ok, "{said}");
    let seen = judge_degrade(
        &Report::parse(&said),
        Asked {
            delay: Some(Duration::from_millis(100)),
            loss: 0,
            rate: None,
        },
    )
    .seen(&said);
    eprintln!("judged: {seen}");
    assert!(seen.contains("qdisc qdisc netem fd01: root"), "{seen}");
}

#[test]
fn the_degrade_helper_says_so_when_it_cannot_measure_the_round_trip() {
    if !have(&["ip", "tc", "nft", "ping", "nsenter"]) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pair = Pair::new();
    // No answer where it pings: no number, said so; the rules are judged alone.
    let (ok, said) = pair.degrade(&[
        ("HOLD_SECONDS", "6"),
        ("LOSS_PERCENT", "100"),
        ("LOSS_DIRECTION", "both"),
        ("PING_ADDR", "10.97.0.9"),
    ]);
    assert!(ok, "{said}");
    let seen = judge_degrade(
        &Report::parse(&said),
        Asked {
            delay: None,
            loss: 100,
            rate: None,
        },
    )
    .seen(&said);
    assert!(
        seen.contains("round-trip not compared (before: not measured: no answer from 10.97.0.9 (0 of 5 answered)"),
        "{seen}"
    );
}

#[test]
fn the_stress_pod_measures_the_load_stress_ng_holds() {
    if !have(&["stress-ng"]) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    use firedrill_experiments::node::{stress_args, Load, STRESS_SCRIPT};
    use firedrill_experiments::{Resource, ResourceStress};
    for (resource, percent, load) in [
        (Resource::Cpu, 50, StressLoad::Cpu(50)),
        (Resource::Memory, 2, StressLoad::Memory(2)),
        (Resource::Io, 0, StressLoad::Io { workers: 1 }),
    ] {
        let settings = ResourceStress {
            resource,
            ..ResourceStress::default()
        };
        // The pod's scratch volume is a directory here.
        let scratch = std::env::temp_dir().join(support::unique("firedrill-scratch"));
        std::fs::create_dir_all(&scratch).unwrap();
        let args: Vec<String> = stress_args(
            &settings,
            Load {
                percent,
                seconds: 6,
            },
        )
        .into_iter()
        .map(|a| match a.as_str() {
            "/scratch" => scratch.display().to_string(),
            _ => a,
        })
        .collect();
        let out = Command::new("sh")
            .args(["-c", STRESS_SCRIPT, "firedrill-stress"])
            .args(&args)
            .env("MEASURE", resource.name())
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{said}");
        let seen = judge_stress(&Report::parse(&said), load).seen(&said);
        eprintln!("{resource:?} {percent}%: {seen}");
        // stress-ng's own summary still follows.
        assert!(said.contains("stress-ng: metrc:"), "{said}");
        let _ = std::fs::remove_dir_all(&scratch);
    }
}
