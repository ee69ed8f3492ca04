//! `kind: scenario` end to end on the in-memory cluster (#26 must-show 1): a game day's three
//! faults — the database scaled to zero, the cache partitioned, the API's nodes stressed (the
//! last two in parallel) — as the steps of one run, with stand-ins for what Kubernetes and the
//! application would do (the clients fail while the database is gone and fall back after a known
//! delay; a kubelet serves the stress pod's report), so the recovery times have known answers.
//!
//! The drill file reader for `kind: scenario` is another change: these tests read ordinary
//! drills and compose the scenario's steps from their kinds, targets and faults.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use firedrill::cluster::job::RunRef;
use firedrill::cluster::kubernetes::Kube;
use firedrill::cluster::ledger::{self, KubeCluster, Protection, Selection};
use firedrill::config::{Config, Drill};
use firedrill::drill::executor::{self, Execution};
use firedrill::drill::gate::Endpoints;
use firedrill::history::store::RunStatus;
use firedrill::run::{RunRecord, StepNote};
use firedrill_experiments::{After, Scenario, ScenarioStep, Settings};
use http::{Method, Request, Response};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, PostParams};
use kube::client::Body;
use serde_json::{json, Value};
use support::cluster::{one_drill, ready_pod, value, watchable, NS};

/// What the stand-in kubelet's stress pods say on their log: most of the 80% asked, held.
const STRESS_REPORT: &str = "firedrill: effect cpu stress-ng=78.4% (3.13 of 4 CPUs) node=91% over=3s\nfiredrill: effect end\n";

/// The drills the scenario's steps are made of, and the scenario's own (`annual-dr`: its
/// duration, probes and success). Two redis pods, at least one healthy.
fn drills(probe: &str, duration: &str) -> String {
    let drill = |name: &str, kind: &str, targets: &str, fault: &str| {
        format!("  - name: {name}\n    kind: {kind}\n    schedule: \"@monthly\"\n    duration: 1s\n    targets: [{{ namespace: {targets}, count: 1 }}]\n    fault: {fault}\n")
    };
    [
        format!("armed: true\nnamespace: {NS}\nsafety: {{ min_pod_age: 5m, limits: {{ cpu: 90% }}, min_healthy: [{{ namespace: cache, selector: app=redis, min: 1 }}] }}\ndrills:\n"),
        format!("  - name: annual-dr\n    kind: pod-kill\n    schedule: \"@monthly\"\n    duration: {duration}\n    targets: [{{ namespace: shop, selector: app=api, count: 1 }}]\n{probe}"),
        drill("db-down", "dependency-failure", "shop, selector: app=api", "{ dependency: { workload: Deployment/shop/postgres }, mode: scale-to-zero }"),
        drill("cache-cut", "network-partition", "cache, selector: app=redis", "{ direction: both }"),
        drill("api-stress", "resource-stress", "shop, selector: app=api", "{ resource: cpu, load: 80% }"),
        drill("cache-again", "network-partition", "cache, selector: app=redis", "{ direction: both }"),
    ]
    .concat()
}

/// The scenario's probes and success, for [`drills`].
fn probed(url: &url::Url) -> String {
    format!("    steady_state: [{{ http: \"{url}\", every: 100ms }}]\n    success: {{ rto: 10s, availability: 10% }}\n")
}

/// A step made of the drill `name` of `config`, after `after` injected, `delay` later.
fn step(config: &Config, name: &str, after: &[&str], delay: Duration) -> ScenarioStep {
    let drill = config
        .drills
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no drill {name}"));
    ScenarioStep {
        name: name.to_owned(),
        targets: drill.targets.clone(),
        fault: drill.fault.clone(),
        after: after
            .iter()
            .map(|a| After::Injected((*a).to_owned()))
            .collect(),
        delay,
        when: None,
        optional: false,
        rto: None,
        line: drill.line,
    }
}

/// The scenario drill: `annual-dr` with `steps` (no targets or fault of its own).
fn scenario(
    text: &str,
    run: &str,
    steps: impl Fn(&Config) -> Vec<ScenarioStep>,
) -> (Config, Drill, RunRef) {
    let (config, mut drill, run) = one_drill(text, run);
    drill.targets = Vec::new();
    drill.fault = Settings::Scenario(Box::new(Scenario {
        steps: steps(&config),
    }));
    (config, drill, run)
}

/// db-down first; cache-cut and api-stress together once it is in.
fn game_day(config: &Config) -> Vec<ScenarioStep> {
    let short = Duration::from_millis(300);
    vec![
        ScenarioStep {
            rto: Some(Duration::from_secs(5)),
            ..step(config, "db-down", &[], Duration::ZERO)
        },
        step(config, "cache-cut", &["db-down"], short),
        step(config, "api-stress", &["db-down"], short),
    ]
}

/// The in-memory cluster with a stand-in kubelet serving every stress pod's log, and:
/// nodes n1 and n2; Deployment shop/api with four pods (two per node); Deployment
/// shop/postgres (two replicas, the database); Deployment cache/redis with a pod per node.
async fn cluster() -> kube::Client {
    let inner = raw().await;
    populate(&inner).await;
    inner
}

async fn raw() -> kube::Client {
    let inner = kube_fake_client::ClientBuilder::new()
        .build()
        .await
        .expect("fake cluster");
    let service = tower::service_fn(move |request: Request<Body>| {
        let inner = inner.clone();
        async move {
            let path = request.uri().path().to_owned();
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            if request.method() == Method::GET && parts.last() == Some(&"log") {
                let said = if parts[5].starts_with("firedrill-stress-") {
                    STRESS_REPORT
                } else {
                    ""
                };
                return Ok::<_, kube::Error>(
                    Response::builder()
                        .status(200)
                        .header("content-type", "text/plain")
                        .body(Body::from(said.as_bytes().to_vec()))
                        .unwrap(),
                );
            }
            inner.send(request).await
        }
    });
    watchable(kube::Client::new(service, "default"))
}

async fn populate(client: &kube::Client) {
    for n in ["n1", "n2"] {
        let node: Node = serde_json::from_value(json!({ "metadata": { "name": n }, "spec": {},
            "status": { "conditions": [{ "type": "Ready", "status": "True" }],
                "allocatable": { "cpu": "4", "memory": "16Gi" } } }))
        .unwrap();
        Api::<Node>::all(client.clone())
            .create(&PostParams::default(), &node)
            .await
            .unwrap();
    }
    for (namespace, app, replicas) in [
        ("shop", "api", 4),
        ("shop", "postgres", 2),
        ("cache", "redis", 2),
    ] {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": { "name": app, "namespace": namespace },
            "spec": { "replicas": replicas, "selector": { "matchLabels": { "app": app } },
                "template": { "metadata": { "labels": { "app": app } } } }
        }))
        .unwrap();
        Api::<Deployment>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &d)
            .await
            .unwrap();
    }
    let pods = [
        ("shop", "api-0", "api", "n1"),
        ("shop", "api-1", "api", "n1"),
        ("shop", "api-2", "api", "n2"),
        ("shop", "api-3", "api", "n2"),
        ("cache", "redis-0", "redis", "n1"),
        ("cache", "redis-1", "redis", "n2"),
    ];
    for (namespace, name, app, node) in pods {
        let pod = ready_pod(
            namespace,
            name,
            json!({ "app": app }),
            &format!("Deployment/{app}"),
            node,
        );
        Api::<Pod>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
    }
}

/// Everything the scenario may touch (and everything it must leave as it was), without what
/// the API server changes on every write: pods, nodes, Deployments and NetworkPolicies in the
/// application's namespaces.
async fn state(client: &kube::Client) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let list = ListParams::default();
    for p in Api::<Pod>::all(client.clone())
        .list(&list)
        .await
        .unwrap()
        .items
    {
        let key = format!(
            "pod {}/{}",
            p.metadata.namespace.clone().unwrap_or_default(),
            p.metadata.name.clone().unwrap_or_default()
        );
        if !key.starts_with(&format!("pod {NS}/")) {
            out.insert(key, value(p));
        }
    }
    for n in Api::<Node>::all(client.clone())
        .list(&list)
        .await
        .unwrap()
        .items
    {
        out.insert(
            format!("node {}", n.metadata.name.clone().unwrap_or_default()),
            value(n),
        );
    }
    for namespace in ["shop", "cache"] {
        for d in Api::<Deployment>::namespaced(client.clone(), namespace)
            .list(&list)
            .await
            .unwrap()
            .items
        {
            out.insert(
                format!(
                    "deployment {namespace}/{}",
                    d.metadata.name.clone().unwrap_or_default()
                ),
                value(d),
            );
        }
        for n in Api::<NetworkPolicy>::namespaced(client.clone(), namespace)
            .list(&list)
            .await
            .unwrap()
            .items
        {
            out.insert(
                format!(
                    "networkpolicy {namespace}/{}",
                    n.metadata.name.clone().unwrap_or_default()
                ),
                value(n),
            );
        }
    }
    out
}

/// The clients' health: failing from when the database goes to zero, falling back `after`.
async fn clients(client: &kube::Client, after: Duration) -> support::Server {
    let healthy = Arc::new(AtomicBool::new(true));
    {
        let (deployments, healthy) = (
            Api::<Deployment>::namespaced(client.clone(), "shop"),
            healthy.clone(),
        );
        tokio::spawn(async move {
            loop {
                let replicas = deployments
                    .get("postgres")
                    .await
                    .unwrap()
                    .spec
                    .unwrap()
                    .replicas;
                if replicas == Some(0) {
                    healthy.store(false, Ordering::SeqCst);
                    tokio::time::sleep(after).await;
                    healthy.store(true, Ordering::SeqCst);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }
    support::serve(move |_| {
        (
            if healthy.load(Ordering::SeqCst) {
                200
            } else {
                503
            },
            Duration::ZERO,
        )
    })
    .await
}

async fn run(client: &kube::Client, config: &Config, drill: &Drill, run: &RunRef) -> RunRecord {
    let kube = Kube::new(client.clone(), NS);
    let endpoints = Endpoints::new(None, None);
    let (_stop, stop) = tokio::sync::watch::channel(false);
    executor::execute(
        &Execution {
            config,
            drill,
            run,
            kube: Some(&kube),
            endpoints: &endpoints,
            kill_switch_every: Duration::from_millis(100),
            recent_hits: Some(Default::default()),
            held: Default::default(),
            events: None,
        },
        stop,
    )
    .await
}

/// A refused step's exclusions say the earlier step's pod counted as down: cache-cut's target
/// is not healthy to begin with, and the other redis pod may not go (one must stay healthy).
fn refused_for_what_was_held(refused: &StepNote, holder: &StepNote) {
    assert!(
        refused
            .reason
            .as_deref()
            .unwrap()
            .starts_with("nothing may be touched"),
        "{refused:#?}"
    );
    let held = &holder.targets[0].name;
    let excluded = refused.evidence.as_ref().unwrap().excluded.clone().unwrap();
    assert_eq!(excluded.len(), 2, "{excluded:#?}");
    for e in &excluded {
        let reason = e.reason.as_deref().unwrap();
        if e.name.as_ref() == Some(held) {
            assert!(
                reason.starts_with(
                    "not Running and Ready (phase Running, held down by an earlier step of the scenario)"
                ),
                "{e:?}"
            );
        } else {
            assert!(!reason.starts_with("not Running and Ready"), "{e:?}");
        }
    }
}

fn steps(record: &RunRecord) -> Vec<StepNote> {
    record
        .evidence
        .steps
        .clone()
        .unwrap_or_else(|| panic!("no steps: {record:#?}"))
}

fn named<'a>(steps: &'a [StepNote], name: &str) -> &'a StepNote {
    steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}: {steps:#?}"))
}

fn timeline(record: &RunRecord) -> Vec<String> {
    support::cluster::timeline(record)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_game_day_runs_its_steps_in_order_measures_each_and_the_whole_and_restores_everything() {
    let client = cluster().await;
    let before = state(&client).await;
    let probe = clients(&client, Duration::from_millis(1500)).await;
    let text = drills(&probed(&probe.url), "3s");
    let (config, drill, run_ref) = scenario(&text, "dr-1", game_day);
    let record = run(&client, &config, &drill, &run_ref).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    assert_eq!(record.kind, "scenario");
    let steps = steps(&record);
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db-down", "cache-cut", "api-stress"]);
    for s in &steps {
        assert_eq!(s.status, RunStatus::Passed, "{s:#?}");
        assert_eq!(s.run.as_deref(), Some(format!("dr-1-{}", s.name).as_str()));
        let evidence = s.evidence.as_ref().unwrap();
        assert!(
            !evidence.revert.lines().is_empty() || s.name == "cache-cut",
            "{s:#?}"
        );
        assert!(!s.targets.is_empty(), "{s:#?}");
    }
    // In order: the two parallel steps after db-down is in, and its delay.
    let db = named(&steps, "db-down");
    let (cut, stress) = (named(&steps, "cache-cut"), named(&steps, "api-stress"));
    for later in [cut, stress] {
        let gap = (later.started.unwrap() - db.injected.unwrap()).num_milliseconds();
        assert!(
            (300..1000).contains(&gap),
            "{} started {gap} ms after db-down's fault",
            later.name
        );
    }
    let apart = (cut.started.unwrap() - stress.started.unwrap())
        .num_milliseconds()
        .abs();
    assert!(apart < 100, "the parallel steps started {apart} ms apart");
    // The stress went on the node of a pod db-down did not hold (its guard saw db-down's).
    let db_target = &db.targets[0].name;
    assert_ne!(&stress.targets[0].name, db_target, "{steps:#?}");
    // Each step's RTO: nothing of theirs is down for long (no workload waits on them); the
    // scenario's: until the clients fell back (1.5 s after the database went) and every step
    // was back.
    for s in &steps {
        let rto = s.rto_seconds.unwrap_or_else(|| panic!("{s:#?}"));
        assert!(rto < 1.0, "{}: RTO {rto}", s.name);
    }
    let rto = record.measurements.rto_seconds.expect("the scenario's RTO");
    assert!(
        (1.5..3.0).contains(&rto),
        "RTO {rto}: {:#?}",
        timeline(&record)
    );
    assert_eq!(named(&steps, "db-down").rto_target_seconds, Some(5.0));
    // Stopped newest first, each reverted before the next was stopped: db-down last.
    let ended = |s: &StepNote| s.ended.unwrap();
    assert!(
        ended(db) > ended(cut) && ended(db) > ended(stress),
        "{:#?}",
        timeline(&record)
    );
    // Every object as it was, and every step ledger closed.
    assert_eq!(state(&client).await, before);
    for s in &steps {
        let data = support::cluster::ledger_data(&client, s.run.as_ref().unwrap()).await;
        assert_eq!(
            data.get("outcome").map(String::as_str),
            Some("aborted"),
            "{data:?}"
        );
    }
    // The record reads back as written.
    let text = serde_json::to_string(&record).unwrap();
    let back: RunRecord = serde_json::from_str(&text).unwrap();
    assert_eq!(back, record);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_refused_mid_scenario_reverts_the_earlier_ones_newest_first_and_says_why() {
    let client = cluster().await;
    let before = state(&client).await;
    let text = drills("", "20s");
    // cache-again would take the other redis pod: alone it could (one of two stays), after
    // cache-cut holds one it would leave none healthy.
    let (config, drill, run_ref) = scenario(&text, "dr-2", |config| {
        vec![
            step(config, "db-down", &[], Duration::ZERO),
            step(
                config,
                "cache-cut",
                &["db-down"],
                Duration::from_millis(200),
            ),
            step(
                config,
                "cache-again",
                &["cache-cut"],
                Duration::from_millis(200),
            ),
        ]
    });
    let started = std::time::Instant::now();
    let record = run(&client, &config, &drill, &run_ref).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ended early: {:?}",
        started.elapsed()
    );
    assert_eq!(record.status, RunStatus::Blocked, "{record:#?}");
    let reason = record.reason.clone().unwrap();
    assert!(
        reason.starts_with("step cache-again was refused: nothing may be touched"),
        "{reason}"
    );
    assert!(
        reason.ends_with("; reverted newest first: cache-cut, db-down"),
        "{reason}"
    );
    let steps = steps(&record);
    let again = named(&steps, "cache-again");
    assert_eq!(again.status, RunStatus::Blocked);
    let (db, cut) = (named(&steps, "db-down"), named(&steps, "cache-cut"));
    refused_for_what_was_held(again, cut);
    assert!(
        cut.ended.unwrap() < db.ended.unwrap(),
        "{:#?}",
        timeline(&record)
    );
    let events = timeline(&record);
    let at = |what: &str| {
        events
            .iter()
            .position(|e| e == what)
            .unwrap_or_else(|| panic!("{what}: {events:#?}"))
    };
    assert!(
        at("stopping step cache-cut") < at("stopping step db-down"),
        "{events:#?}"
    );
    assert!(
        events[at("stopping step cache-cut")..at("stopping step db-down")]
            .iter()
            .any(|e| e.starts_with("step cache-cut ended")),
        "{events:#?}"
    );
    assert_eq!(state(&client).await, before);
    // Alone, the same step may run: one redis pod of two stays healthy.
    let (config, _, run_ref) = one_drill(&text, "alone-1");
    let alone = Drill {
        duration: Duration::from_millis(300),
        ..config
            .drills
            .iter()
            .find(|d| d.name == "cache-again")
            .unwrap()
            .clone()
    };
    let record = run(&client, &config, &alone, &run_ref).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_optional_step_refused_is_recorded_and_the_scenario_goes_on() {
    let client = cluster().await;
    let before = state(&client).await;
    let text = drills("", "2s");
    let (config, drill, run_ref) = scenario(&text, "dr-3", |config| {
        vec![
            step(config, "cache-cut", &[], Duration::ZERO),
            ScenarioStep {
                optional: true,
                ..step(
                    config,
                    "cache-again",
                    &["cache-cut"],
                    Duration::from_millis(200),
                )
            },
            step(
                config,
                "db-down",
                &["cache-cut"],
                Duration::from_millis(600),
            ),
        ]
    });
    let record = run(&client, &config, &drill, &run_ref).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let steps = steps(&record);
    let again = named(&steps, "cache-again");
    assert_eq!(again.status, RunStatus::Blocked, "{again:#?}");
    refused_for_what_was_held(again, named(&steps, "cache-cut"));
    assert_eq!(named(&steps, "db-down").status, RunStatus::Passed);
    assert_eq!(state(&client).await, before);
}

/// The in-memory cluster as a process sees it that is killed after `left` writes: every write
/// after (and every Event) never reaches the API server; `died` says when it was killed.
fn dying(inner: kube::Client, left: usize, died: Arc<tokio::sync::Notify>) -> kube::Client {
    let left = Arc::new(AtomicUsize::new(left));
    let service = tower::service_fn(move |request: Request<Body>| {
        let (inner, left, died) = (inner.clone(), left.clone(), died.clone());
        async move {
            let writes = request.method() != Method::GET;
            let event = request.uri().path().contains("/events");
            if writes {
                let alive = if event {
                    left.load(Ordering::SeqCst) > 0
                } else {
                    left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                };
                if !alive {
                    died.notify_one();
                    std::future::pending::<()>().await;
                }
            }
            inner.send(request).await
        }
    });
    kube::Client::new(service, "default")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_killed_after_any_write_is_restored_exactly_by_another_process() {
    let mut killed_after = 0;
    loop {
        let client = cluster().await;
        // The ledger key exists (the scheduler creates it at its first start).
        firedrill::cluster::ledger_key::read_or_create(&Kube::new(client.clone(), NS))
            .await
            .unwrap();
        let before = state(&client).await;
        let text = drills("", "1s");
        let run_id = format!("dr-crash-{killed_after}");
        let (config, drill, run_ref) = scenario(&text, &run_id, game_day);
        let died = Arc::new(tokio::sync::Notify::new());
        let process = dying(client.clone(), killed_after, died.clone());
        let finished = tokio::select! {
            record = run(&process, &config, &drill, &run_ref) => Some(record),
            () = died.notified() => None,
        };
        let Some(record) = finished else {
            // Killed: another process, with only the cluster, restores everything —
            // `rollback --run` of the scenario's run, or the emergency stop.
            let kube = Kube::new(client.clone(), NS);
            let protection = Protection::of(&config);
            if killed_after % 2 == 0 {
                let outcomes = ledger::rollback(
                    &KubeCluster::new(&kube),
                    &Selection::Run(run_id.clone()),
                    &protection,
                    false,
                    false,
                )
                .await;
                match outcomes {
                    Ok(outcomes) => assert!(
                        !outcomes.iter().any(|o| o.failed()),
                        "killed after {killed_after}: {outcomes:?}"
                    ),
                    // Killed before any step's ledger was written: nothing to revert.
                    Err(ledger::RollbackError::NoLedger(_)) => {}
                    Err(e) => panic!("killed after {killed_after}: {e:?}"),
                }
                // What a ledger may not hold (a helper created after the process died is
                // never created) the stop's sweep would take; here nothing is left.
            } else {
                let report = ledger::stop(&kube, "crash test", "test", &protection).await;
                assert!(
                    report.ledgers.iter().all(|o| !o.failed()),
                    "killed after {killed_after}: {report:?}"
                );
            }
            assert_eq!(
                state(&client).await,
                before,
                "killed after {killed_after} writes"
            );
            killed_after += 1;
            continue;
        };
        // Not killed: the whole scenario ran, and restored everything itself.
        assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
        assert_eq!(state(&client).await, before);
        assert!(killed_after > 10, "only {killed_after} writes");
        break;
    }
}

/// The in-memory cluster, refusing every NetworkPolicy firedrill creates (as an admission
/// webhook might): a partition step's injection fails.
fn refusing_policies(inner: kube::Client) -> kube::Client {
    let service = tower::service_fn(move |request: Request<Body>| {
        let inner = inner.clone();
        async move {
            if request.method() == Method::POST
                && request.uri().path().ends_with("/networkpolicies")
            {
                let status = json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "denied by the test's admission", "reason": "Forbidden", "code": 403 });
                return Ok::<_, kube::Error>(
                    Response::builder()
                        .status(403)
                        .header("content-type", "application/json")
                        .body(Body::from(status.to_string().into_bytes()))
                        .unwrap(),
                );
            }
            inner.send(request).await
        }
    });
    kube::Client::new(service, "default")
}

/// A step that ends in error ends the scenario (fail safe), optional or not: what ran is
/// reverted, what had not started never does, and the record is `error` with the step's error.
#[tokio::test]
async fn a_step_in_error_ends_the_scenario_and_what_ran_is_reverted() {
    let inner = cluster().await;
    let before = state(&inner).await;
    let client = refusing_policies(inner.clone());
    let text = drills("", "20s");
    let (config, drill, run_ref) = scenario(&text, "dr-err", |config| {
        vec![
            step(config, "db-down", &[], Duration::ZERO),
            ScenarioStep {
                optional: true,
                ..step(
                    config,
                    "cache-cut",
                    &["db-down"],
                    Duration::from_millis(200),
                )
            },
            step(
                config,
                "api-stress",
                &["cache-cut"],
                Duration::from_millis(200),
            ),
        ]
    });
    let started = std::time::Instant::now();
    let record = run(&client, &config, &drill, &run_ref).await;
    // Well before the scenario's 20 s: it ended at the error.
    assert!(started.elapsed() < Duration::from_secs(10), "{record:#?}");
    assert_eq!(record.status, RunStatus::Error, "{record:#?}");
    let steps = steps(&record);
    let cut = named(&steps, "cache-cut");
    assert_eq!(cut.status, RunStatus::Error, "{cut:#?}");
    assert!(
        record
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("denied by the test's admission"),
        "{:?}",
        record.reason
    );
    let stress = named(&steps, "api-stress");
    assert_eq!(
        stress.reason.as_deref(),
        Some("the scenario ended before it could start: step cache-cut failed"),
        "{stress:#?}"
    );
    assert_eq!(named(&steps, "db-down").status, RunStatus::Passed);
    assert_eq!(state(&inner).await, before);
}

/// The game day as a user writes it: `kind: scenario` with `steps:` read from the drill file
/// (the reader and the runner together), run end to end on the in-memory cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_written_in_the_drill_file_runs_its_steps() {
    let client = cluster().await;
    let before = state(&client).await;
    let probe = clients(&client, Duration::from_millis(1500)).await;
    let text = format!(
        r#"armed: true
namespace: {NS}
safety: {{ min_pod_age: 5m, limits: {{ cpu: 90% }}, min_healthy: [{{ namespace: cache, selector: app=redis, min: 1 }}] }}
drills:
  - name: annual-dr
    kind: scenario
    schedule: "@monthly"
    duration: 3s
    steady_state: [{{ http: "{url}", every: 100ms }}]
    success: {{ rto: 10s, availability: 10% }}
    steps:
      - name: db-down
        kind: dependency-failure
        targets: [{{ namespace: shop, selector: app=api, count: 1 }}]
        fault: {{ dependency: {{ workload: Deployment/shop/postgres }}, mode: scale-to-zero }}
      - name: cache-cut
        kind: network-partition
        targets: [{{ namespace: cache, selector: app=redis, count: 1 }}]
        fault: {{ direction: both }}
        after: [db-down]
        delay: 300ms
      - name: api-stress
        kind: resource-stress
        targets: [{{ namespace: shop, selector: app=api, count: 1 }}]
        fault: {{ resource: cpu, load: 80% }}
        after: [{{ step: db-down, event: injected }}]
        delay: 300ms
"#,
        url = probe.url
    );
    let (config, drill, run_ref) = one_drill(&text, "dr-yaml");
    let record = run(&client, &config, &drill, &run_ref).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let steps = steps(&record);
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db-down", "cache-cut", "api-stress"]);
    for s in &steps {
        assert_eq!(s.status, RunStatus::Passed, "{s:#?}");
    }
    let rto = record.measurements.rto_seconds.expect("the scenario's RTO");
    assert!(
        (1.5..3.0).contains(&rto),
        "RTO {rto}: {:#?}",
        timeline(&record)
    );
    assert_eq!(state(&client).await, before);
}

/// Steps due at the same instant are judged one after another, each seeing what the one before
/// it took: two cuts of the cache, each alone within `min_healthy` (one of two redis pods stays
/// healthy), together not. Started together, the second is refused for what the first holds.
#[tokio::test]
async fn steps_due_together_are_judged_one_after_another() {
    let client = cluster().await;
    let before = state(&client).await;
    let text = drills("", "2s");
    let (config, drill, run_ref) = scenario(&text, "dr-together", |config| {
        vec![
            step(config, "cache-cut", &[], Duration::ZERO),
            ScenarioStep {
                optional: true,
                ..step(config, "cache-again", &[], Duration::ZERO)
            },
        ]
    });
    let record = run(&client, &config, &drill, &run_ref).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let steps = steps(&record);
    let again = named(&steps, "cache-again");
    assert_eq!(again.status, RunStatus::Blocked, "{again:#?}");
    refused_for_what_was_held(again, named(&steps, "cache-cut"));
    assert_eq!(state(&client).await, before);
}

/// The steps' own RTOs with known answers: a stand-in Deployment controller brings a killed API
/// pod back 600 ms after it goes and a killed cache pod back 300 ms after it goes. The scenario
/// kills an API pod, and once the API is back (`event: recovered`) a cache pod: each step's RTO
/// falls in a window its stand-in sets, the second step starts only after the first recovered,
/// and the scenario's RTO (first fault to every step back) spans both, one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_of_pod_kills_measures_each_steps_rto_and_the_whole() {
    let client = cluster().await;
    let before = state(&client).await;
    // Only these two Deployments have pods (postgres has none, and must get none).
    support::cluster::scheduler(client.clone(), "shop", "api", Duration::from_millis(600), 0);
    support::cluster::scheduler(
        client.clone(),
        "cache",
        "redis",
        Duration::from_millis(300),
        0,
    );
    let text = format!(
        r#"armed: true
namespace: {NS}
safety: {{ min_pod_age: 5m, min_healthy: [{{ namespace: cache, selector: app=redis, min: 1 }}] }}
drills:
  - name: two-kills
    kind: scenario
    schedule: "@monthly"
    duration: 3s
    steps:
      - name: kill-api
        kind: pod-kill
        targets: [{{ namespace: shop, selector: app=api, count: 1 }}]
        fault: {{ force: true, grace_period: 0s }}
      - name: kill-cache
        kind: pod-kill
        targets: [{{ namespace: cache, selector: app=redis, count: 1 }}]
        fault: {{ force: true, grace_period: 0s }}
        after: [{{ step: kill-api, event: recovered }}]
"#
    );
    let (config, drill, run_ref) = one_drill(&text, "dr-kills");
    let started = std::time::Instant::now();
    let record = run(&client, &config, &drill, &run_ref).await;
    assert!(started.elapsed() < Duration::from_secs(8), "{record:#?}");
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let steps = steps(&record);
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["kill-api", "kill-cache"]);
    for s in &steps {
        assert_eq!(s.status, RunStatus::Passed, "{s:#?}");
        assert_eq!(s.targets.len(), 1, "{s:#?}");
    }
    let (api, cache) = (named(&steps, "kill-api"), named(&steps, "kill-cache"));
    // Each step's own RTO: its stand-in's delay, plus the stand-in's and the executor's looks
    // (20 ms each on this cluster) and the API calls between.
    let rto = |s: &StepNote| {
        s.rto_seconds
            .unwrap_or_else(|| panic!("{}: no RTO: {s:#?}", s.name))
    };
    let (api_rto, cache_rto) = (rto(api), rto(cache));
    eprintln!("RTO kill-api {api_rto} s, kill-cache {cache_rto} s");
    assert!(
        (0.6..1.6).contains(&api_rto),
        "kill-api: RTO {api_rto}: {:#?}",
        timeline(&record)
    );
    assert!(
        (0.3..1.3).contains(&cache_rto),
        "kill-cache: RTO {cache_rto}: {:#?}",
        timeline(&record)
    );
    // kill-cache waited for kill-api's recovery, which came no sooner than the stand-in's delay.
    let at = |s: &StepNote, what: Option<chrono::DateTime<chrono::Utc>>| {
        what.unwrap_or_else(|| panic!("{}: {s:#?}", s.name))
    };
    let api_back = at(api, api.recovered);
    assert!(
        (api_back - at(api, api.injected)).num_milliseconds() >= 600,
        "{:#?}",
        timeline(&record)
    );
    assert!(
        at(cache, cache.started) >= api_back,
        "kill-cache started before kill-api recovered: {:#?}",
        timeline(&record)
    );
    // The scenario's RTO: from kill-api's fault to kill-cache back, so both steps' in turn.
    let whole = record.measurements.rto_seconds.expect("the scenario's RTO");
    eprintln!("RTO scenario {whole} s");
    let span =
        (at(cache, cache.recovered) - at(api, api.injected)).num_milliseconds() as f64 / 1000.0;
    assert!(
        whole >= span && whole >= api_rto + cache_rto && whole < 3.0,
        "scenario RTO {whole}, steps {api_rto} + {cache_rto}, span {span}: {:#?}",
        timeline(&record)
    );
    // Every object as it was, but the two pods killed: gone, and a new pod of each Deployment
    // in their place (the stand-in's, named `<app>-101`). Pods are compared whole, so the
    // killed and the new ones are set aside by name; everything else must be identical.
    let after = state(&client).await;
    let killed: Vec<String> = steps
        .iter()
        .map(|s| format!("pod {}/{}", s.targets[0].namespace, s.targets[0].name))
        .collect();
    for key in &killed {
        assert!(before.contains_key(key), "{key} was not there: {before:#?}");
        assert!(!after.contains_key(key), "{key} is still there");
    }
    let replacements = ["pod shop/api-101", "pod cache/redis-101"];
    for key in replacements {
        assert!(after.contains_key(key), "no {key}: {after:#?}");
    }
    let untouched = |state: &BTreeMap<String, Value>, set_aside: &[&str]| {
        let mut state = state.clone();
        state.retain(|key, _| !set_aside.contains(&key.as_str()));
        state
    };
    let killed: Vec<&str> = killed.iter().map(String::as_str).collect();
    assert_eq!(
        untouched(&after, &replacements),
        untouched(&before, &killed)
    );
}
