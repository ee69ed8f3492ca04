//! Whole drills against a stateful in-memory Kubernetes (kube-fake-client): the scheduler fires a
//! Job, the Job's executor runs, the scheduler records, the Pushgateway holds the metrics, the
//! history shows the run. And the ways it must not go wrong: racing schedulers, restarts, a Job
//! deleted mid-run, the kill switch.

mod support;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use firedrill::cluster::job::{RunRef, Runtime};
use firedrill::cluster::kubernetes::{Created, Kube};
use firedrill::config::Config;
use firedrill::drill::executor::{self, Sinks};
use firedrill::drill::gate::Endpoints;
use firedrill::history::pushgateway::Retry;
use firedrill::history::store::{RunStatus, Store};
use firedrill::schedule::scheduler::Scheduler;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use support::cluster::{execute_on, ledger_data, one_drill, NS};
use support::{serve, service, unique};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn drill_file(
    store: &Path,
    probe_url: &url::Url,
    pushgateway: Option<&url::Url>,
    drill: &str,
) -> Config {
    let push = pushgateway
        .map(|p| format!("pushgateway: {p}\n"))
        .unwrap_or_default();
    let text = format!(
        r#"
armed: true
namespace: {NS}
store: sqlite://{store}
{push}concurrency: 1
drills:
  - name: {drill}
    kind: probe
    schedule: "0 10 * * *"
    duration: 2s
    deadline: 1h
    steady_state:
      - http: {probe_url}
        every: 50ms
    success:
      availability: 80%
"#,
        store = store.display()
    );
    Config::parse(&text, Path::new("scenario.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

struct World {
    client: kube::Client,
    config: Config,
    dir: std::path::PathBuf,
    drill: String,
}

async fn world(pushgateway: Option<&url::Url>) -> World {
    let client = support::cluster::watchable(
        kube_fake_client::ClientBuilder::new()
            .with_status_subresource::<Job>()
            .build()
            .await
            .expect("fake cluster"),
    );
    let probe = serve(|_| (200, Duration::ZERO)).await;
    let dir = std::env::temp_dir().join(unique("firedrill-scenario"));
    std::fs::create_dir_all(&dir).unwrap();
    let drill = unique("probe")
        .replace('_', "-")
        .chars()
        .take(40)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned();
    let config = drill_file(&dir.join("history.db"), &probe.url, pushgateway, &drill);
    // The probe server lives as long as the test's runtime.
    std::mem::forget(probe);
    World {
        client,
        config,
        dir,
        drill,
    }
}

impl World {
    async fn scheduler(&self, identity: &str) -> Scheduler {
        self.scheduler_for(self.config.clone(), identity).await
    }

    /// A scheduler on this world's cluster with another drill file.
    async fn scheduler_for(&self, config: Config, identity: &str) -> Scheduler {
        let store = Store::open(&config.store, &config.cluster)
            .await
            .expect("store");
        Scheduler::new(
            config,
            Kube::new(self.client.clone(), NS),
            store,
            runtime(),
            identity,
        )
    }

    /// The world's store as a drill file writes it.
    fn store_url(&self) -> String {
        match &self.config.store {
            firedrill::config::Store::Sqlite(p) => format!("sqlite://{p}"),
            firedrill::config::Store::Postgres(u) => u.clone(),
        }
    }

    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn job_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .jobs()
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|j| j.metadata.name)
            .collect();
        names.sort();
        names
    }

    /// What the Job's pod would do: run the executor with the Job's own arguments, then the Job
    /// completes.
    async fn run_job(&self, name: &str, pushgateway: Option<&url::Url>) -> RunStatus {
        let job = self.jobs().get(name).await.unwrap();
        let args = job
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .args
            .clone()
            .unwrap();
        let arg = |flag: &str| {
            args.iter()
                .position(|a| a == flag)
                .map(|i| args[i + 1].clone())
                .unwrap()
        };
        assert_eq!(args[0], "execute");
        let run = RunRef {
            drill: arg("--drill"),
            run: arg("--run"),
            scheduled: at(&arg("--scheduled")),
            dry_run: args.iter().any(|a| a == "--dry-run"),
        };
        let drill = self.config.drill(&run.drill).unwrap();
        let record = execute_on(&self.client, &self.config, drill, &run, Some(Vec::new())).await;
        let kube = Kube::new(self.client.clone(), NS);
        let endpoints = Endpoints::new(None, None);
        let store = Store::open(&self.config.store, &self.config.cluster)
            .await
            .unwrap();
        executor::record(
            &record,
            &Sinks {
                store: Some(&store),
                kube: Some(&kube),
                spool: None,
                pushgateway,
                client: endpoints.client(),
                push_retry: Retry {
                    attempts: 2,
                    first_delay: Duration::from_millis(50),
                    max_delay: Duration::from_millis(100),
                    budget: Duration::from_secs(5),
                },
            },
            &tokio::sync::watch::channel(false).1,
        )
        .await;
        let status = serde_json::json!({ "status": { "succeeded": 1, "conditions": [{ "type": "Complete", "status": "True" }] } });
        self.jobs()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .expect("complete the Job");
        record.status
    }
}

fn runtime() -> Runtime {
    Runtime {
        image: "firedrill:test".into(),
        config_map: "firedrill-config".into(),
        service_account: "firedrill".into(),
    }
}

#[tokio::test]
async fn the_whole_loop() {
    let pushgateway = service("FIREDRILL_TEST_PUSHGATEWAY");
    let w = world(pushgateway.as_ref()).await;
    let mut scheduler = w.scheduler("scheduler-a").await;

    // Before the instant nothing fires.
    let report = scheduler.tick(at("2027-01-15T09:59:00Z")).await.unwrap();
    assert!(report.leader && report.fired.is_empty(), "{report:?}");

    // At the instant: one Job, with the spec of the contract.
    let report = scheduler.tick(at("2027-01-15T10:00:05Z")).await.unwrap();
    let run = firedrill::cluster::job::run_id(&w.drill, at("2027-01-15T10:00:00Z"));
    assert_eq!(report.fired, std::slice::from_ref(&run));
    let job = w.jobs().get(&run).await.unwrap();
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(spec.active_deadline_seconds, Some(2 + 600));
    assert!(spec.ttl_seconds_after_finished.is_some());
    let labels = job.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["firedrill.io/drill"], w.drill);
    assert_eq!(labels["firedrill.io/run"], run);
    let pod = spec.template.spec.as_ref().unwrap();
    let security = pod.containers[0].security_context.as_ref().unwrap();
    assert_eq!(
        (
            security.read_only_root_filesystem,
            security.allow_privilege_escalation
        ),
        (Some(true), Some(false))
    );
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop.as_deref(),
        Some(&["ALL".to_owned()][..])
    );
    assert_eq!(
        pod.security_context.as_ref().unwrap().run_as_non_root,
        Some(true)
    );
    assert!(pod.containers[0]
        .resources
        .as_ref()
        .unwrap()
        .limits
        .is_some());

    // History shows it running; the Job runs and completes; the scheduler settles it.
    let history = scheduler.store().runs(Some(&w.drill), None).await.unwrap();
    assert_eq!(history[0].status, RunStatus::Running);
    assert_eq!(
        w.run_job(&run, pushgateway.as_ref()).await,
        RunStatus::Passed
    );
    let report = scheduler.tick(at("2027-01-15T10:01:00Z")).await.unwrap();
    assert!(
        report.fired.is_empty() && report.recorded.is_empty(),
        "{report:?}"
    );
    let history = scheduler.store().runs(Some(&w.drill), None).await.unwrap();
    assert_eq!(history.len(), 1);
    let record = &history[0];
    assert_eq!(
        (record.status, record.id.as_str()),
        (RunStatus::Passed, run.as_str())
    );
    assert!(
        record.measurements.availability.is_some_and(|a| a > 0.99),
        "{record:?}"
    );
    assert!(
        record.measurements.requests.is_some_and(|n| n >= 20),
        "{record:?}"
    );
    // The Event on its Job is in the record because the API server created it.
    assert_eq!(
        record.evidence.to_value()["event"]["created"],
        format!("Job/{NS}/{run}: Normal DrillPassed: passed: all criteria met").as_str(),
        "{}",
        record.evidence.to_value()
    );

    // The Pushgateway holds the drill's metrics.
    if let Some(base) = pushgateway {
        let text = reqwest::get(base.join("metrics").unwrap())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let passed = text.lines().any(|l| {
            l.starts_with("chaos_experiment_status{")
                && l.contains(&format!("drill=\"{}\"", w.drill))
                && l.contains("status=\"passed\"")
                && l.ends_with(" 1")
        });
        assert!(
            passed,
            "no passed status for {} in the Pushgateway",
            w.drill
        );
    }
}

#[tokio::test]
async fn racing_schedulers_make_one_job() {
    let w = world(None).await;
    let mut a = w.scheduler("scheduler-a").await;
    let mut b = w.scheduler("scheduler-b").await;
    let now = at("2027-01-15T10:00:02Z");
    let (ra, rb) = tokio::join!(a.tick(now), b.tick(now));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.leader != rb.leader, "exactly one leader: {ra:?} {rb:?}");
    assert_eq!(w.job_names().await.len(), 1);
    // Even a second leader cannot create the same fire twice: the name is taken.
    let kube = Kube::new(w.client.clone(), NS);
    let job = w.jobs().get(&w.job_names().await[0]).await.unwrap();
    assert_eq!(
        kube.create_job(&Job {
            metadata: kube::api::ObjectMeta {
                resource_version: None,
                ..job.metadata.clone()
            },
            status: None,
            ..job
        })
        .await
        .unwrap(),
        Created::AlreadyExists
    );
}

#[tokio::test]
async fn a_restart_neither_double_fires_nor_forgets_a_fire_within_its_deadline() {
    let w = world(None).await;
    {
        let mut first = w.scheduler("scheduler-a").await;
        first.tick(at("2027-01-15T10:00:01Z")).await.unwrap();
    }
    assert_eq!(w.job_names().await.len(), 1);
    // A new instance sees the old one's Lease and waits a whole lease on its own clock from
    // then (whatever the holder's renewTime says); then it leads, and fires no second Job.
    let mut second = w.scheduler("scheduler-b").await;
    let report = second.tick(at("2027-01-15T10:05:00Z")).await.unwrap();
    assert!(!report.leader, "{report:?}");
    let report = second.tick(at("2027-01-15T10:05:16Z")).await.unwrap();
    assert!(report.leader && report.fired.is_empty(), "{report:?}");
    assert_eq!(w.job_names().await.len(), 1);

    // The first run ends (it leaves no record here, so the scheduler records it as an error).
    let complete = serde_json::json!({ "status": { "succeeded": 1, "conditions": [{ "type": "Complete", "status": "True" }] } });
    w.jobs()
        .patch_status(
            &w.job_names().await[0],
            &PatchParams::default(),
            &Patch::Merge(&complete),
        )
        .await
        .unwrap();

    // Down over the next day's fire, back 20 minutes later: it starts late, once.
    let report = second.tick(at("2027-01-16T10:20:00Z")).await.unwrap();
    assert_eq!(
        report.fired,
        [firedrill::cluster::job::run_id(
            &w.drill,
            at("2027-01-16T10:00:00Z")
        )]
    );
    let report = second.tick(at("2027-01-16T10:21:00Z")).await.unwrap();
    assert!(report.fired.is_empty(), "{report:?}");
    assert_eq!(w.job_names().await.len(), 2);
    let fire = second
        .store()
        .fire(&w.drill, at("2027-01-16T10:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fire.status, "fired");
    assert_eq!(fire.reason.as_deref(), Some("fired 20m late"));

    // Back after the deadline: missed, recorded, no Job.
    let report = second.tick(at("2027-01-17T11:30:00Z")).await.unwrap();
    assert!(report.fired.is_empty(), "{report:?}");
    assert_eq!(
        report.not_fired,
        [(
            w.drill.clone(),
            at("2027-01-17T10:00:00Z"),
            "missed".to_owned()
        )]
    );
    let missed = second
        .store()
        .run(&firedrill::cluster::job::run_id(
            &w.drill,
            at("2027-01-17T10:00:00Z"),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(missed.status, RunStatus::Missed);
    assert!(missed.reason.unwrap().contains("past its deadline of 1h"));
    assert_eq!(
        missed.evidence.to_value()["job"],
        serde_json::json!({ "name": null }),
        "a missed fire ran in no Job"
    );
}

#[tokio::test]
async fn a_job_deleted_mid_run_is_recorded_as_error() {
    let w = world(None).await;
    let mut s = w.scheduler("scheduler-a").await;
    let report = s.tick(at("2027-01-15T10:00:01Z")).await.unwrap();
    let run = report.fired[0].clone();
    w.jobs()
        .delete(&run, &DeleteParams::default())
        .await
        .unwrap();
    let report = s.tick(at("2027-01-15T10:00:30Z")).await.unwrap();
    assert_eq!(report.recorded, [(run.clone(), RunStatus::Error)]);
    let record = s.store().run(&run).await.unwrap().unwrap();
    assert_eq!(
        record.reason.as_deref(),
        Some("its Job was deleted before it finished")
    );
    assert_eq!(
        record.evidence.to_value()["job"]["name"],
        run,
        "the Job the scheduler created"
    );
}

#[tokio::test]
async fn nothing_fires_while_the_kill_switch_is_engaged() {
    let w = world(None).await;
    let switch: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "firedrill-kill-switch", "namespace": NS },
        "data": { "reason": "incident INC-42", "engaged-by": "oncall@example.com" }
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(w.client.clone(), NS)
        .create(&PostParams::default(), &switch)
        .await
        .unwrap();
    let mut s = w.scheduler("scheduler-a").await;
    let report = s.tick(at("2027-01-15T10:00:01Z")).await.unwrap();
    assert_eq!(
        report.kill_switch.as_deref(),
        Some("incident INC-42 by oncall@example.com")
    );
    assert!(report.fired.is_empty());
    assert!(w.job_names().await.is_empty());

    // An executor started by hand is blocked too.
    let drill = w.config.drills[0].clone();
    let run = RunRef {
        drill: drill.name.clone(),
        run: "manual".into(),
        scheduled: Utc::now(),
        dry_run: false,
    };
    let record = execute_on(&w.client, &w.config, &drill, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Blocked);
    assert_eq!(
        record.reason.as_deref(),
        Some("kill switch engaged: incident INC-42 by oncall@example.com")
    );
    let _ = std::fs::remove_dir_all(&w.dir);
}

#[tokio::test]
async fn a_changed_drill_file_is_picked_up_and_a_broken_one_refused() {
    let w = world(None).await;
    let path = w.dir.join("firedrill.yaml");
    let original = std::fs::read_to_string(&w.config.source).unwrap_or_else(|_| {
        // The world's config was parsed from text; write it out as the mounted file would be.
        format!("namespace: {NS}\nstore: {}\ndrills:\n  - {{ name: {}, kind: probe, schedule: \"0 10 * * *\", duration: 2s }}\n",
            w.store_url(), w.drill)
    });
    std::fs::write(&path, &original).unwrap();
    let config = Config::load(&path).unwrap();
    let mut s = w.scheduler_for(config, "scheduler-a").await;
    assert_eq!(s.reload(), None, "unchanged file, nothing to do");

    std::fs::write(&path, original.replace("0 10 * * *", "30 11 * * *")).unwrap();
    assert_eq!(s.reload(), Some(true));
    assert_eq!(s.config.drills[0].schedule.text(), "30 11 * * *");
    let report = s.tick(at("2027-01-15T11:30:01Z")).await.unwrap();
    assert_eq!(report.fired.len(), 1, "{report:?}");

    std::fs::write(&path, original.replace("kind: probe", "kind: probe-nope")).unwrap();
    assert_eq!(s.reload(), Some(false));
    assert_eq!(
        s.config.drills[0].schedule.text(),
        "30 11 * * *",
        "the last good file stays in force"
    );
    // A "billion laughs" prepended to the file: refused at the node limit, old file kept.
    let mut bomb = String::from("x-a: &a [x,x,x,x,x,x,x,x,x]\n");
    for (name, previous) in ["b", "c", "d", "e", "f", "g", "h", "i"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h"])
    {
        bomb.push_str(&format!(
            "x-{name}: &{name} [{}]\n",
            vec![format!("*{previous}"); 9].join(",")
        ));
    }
    std::fs::write(&path, bomb + &original.replace("0 10 * * *", "45 11 * * *")).unwrap();
    assert_eq!(s.reload(), Some(false));
    assert_eq!(s.config.drills[0].schedule.text(), "30 11 * * *");
    let metrics = s.metrics.encode();
    assert!(
        metrics.contains(
            "firedrill_scheduler_config_reloads_total{cluster=\"default\",result=\"applied\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "firedrill_scheduler_config_reloads_total{cluster=\"default\",result=\"rejected\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("firedrill_scheduler_fires_total{cluster=\"default\",status=\"fired\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn engaging_the_kill_switch_stops_a_running_drill_within_seconds() {
    let w = world(None).await;
    let mut drill = w.config.drills[0].clone();
    drill.duration = Duration::from_secs(30);
    let run = RunRef {
        drill: drill.name.clone(),
        run: "running".into(),
        scheduled: Utc::now(),
        dry_run: false,
    };
    let client = w.client.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let switch: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "firedrill-kill-switch", "namespace": NS }, "data": { "reason": "pager went off" }
        }))
        .unwrap();
        Api::<ConfigMap>::namespaced(client, NS)
            .create(&PostParams::default(), &switch)
            .await
            .unwrap();
    });
    let started = std::time::Instant::now();
    let record = execute_on(&w.client, &w.config, &drill, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Aborted);
    assert_eq!(
        record.reason.as_deref(),
        Some("kill switch engaged during the run: pager went off")
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // It still measured what it saw until then.
    assert!(
        record.measurements.requests.is_some_and(|n| n > 0),
        "{record:?}"
    );
}

#[tokio::test]
async fn run_wait_follows_the_job_to_its_exit_code_and_status_reports_it() {
    use k8s_openapi::api::core::v1::Pod;
    let w = world(None).await;
    let mut s = w.scheduler("scheduler-a").await;
    let report = s.tick(at("2027-01-15T10:00:01Z")).await.unwrap();
    let run = report.fired[0].clone();
    let kube = Kube::new(w.client.clone(), NS);

    let text =
        firedrill::schedule::scheduler::status_report(&w.config, &kube, at("2027-01-15T10:00:30Z"))
            .await;
    assert!(
        text.starts_with("leader:       scheduler-a (renewed 2027-01-15T10:00:01"),
        "{text}"
    );
    assert!(text.contains("kill switch:  off\n"), "{text}");
    assert!(
        text.contains(&format!("running:      1\n  {run} (drill {})\n", w.drill)),
        "{text}"
    );
    assert!(text.contains("next fires:\nDRILL"), "{text}");

    // The Job's pod ends with the executor's exit code 2 (aborted), then the Job fails.
    let (client, name) = (w.client.clone(), run.clone());
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": { "name": format!("{name}-x7k2p"), "namespace": NS, "labels": { "job-name": name } },
            "spec": { "containers": [{ "name": "executor", "image": "firedrill:test" }] },
            "status": { "phase": "Failed", "containerStatuses": [{ "name": "executor", "ready": false, "restartCount": 0,
                "image": "firedrill:test", "imageID": "", "state": { "terminated": { "exitCode": 2 } } }] }
        }))
        .unwrap();
        Api::<Pod>::namespaced(client.clone(), NS)
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
        let failed = serde_json::json!({ "status": { "failed": 1, "conditions": [{ "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded" }] } });
        Api::<Job>::namespaced(client, NS)
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&failed))
            .await
            .unwrap();
    });
    let mut seen = Vec::new();
    let code = kube
        .follow(&run, Duration::from_secs(10), |line| {
            seen.push(line.to_owned())
        })
        .await;
    assert_eq!(code.unwrap(), 2);
    assert_eq!(seen, ["running", "failed (BackoffLimitExceeded)"]);
    let gone = kube
        .follow("no-such-job", Duration::from_secs(1), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&gone, firedrill::cluster::kubernetes::FollowError::Gone { job } if job == "no-such-job"),
        "{gone:?}"
    );
    assert_eq!(
        gone.to_string(),
        "job/no-such-job disappeared before it finished"
    );
}

/// A region failover's Job hook is watched to the Job's own verdict, and a Job past its timeout
/// is deleted so that it cannot finish later unseen.
#[tokio::test]
async fn a_job_hook_is_watched_to_its_verdict_or_deleted_at_its_timeout() {
    use firedrill::drill::region::{hook_job, run_hook, HookContext};
    use firedrill_experiments::region::{Hook, HookAction};
    let w = world(None).await;
    let kube = Kube::new(w.client.clone(), NS);
    let spec = serde_json::json!({ "template": { "spec": { "restartPolicy": "Never",
        "containers": [{ "name": "promote", "image": "postgres:16", "command": ["true"] }] } } });
    let hook = |timeout| Hook {
        action: HookAction::Job(spec.clone()),
        timeout,
    };
    let context = |run| HookContext {
        phase: "promote",
        run,
        drill: "failover",
        from: "eu-west-1",
        to: "eu-central-1",
    };
    // The Job ends as its condition says, some time after it was created.
    for (run, condition, ok, said) in [
        ("hook-ok", "Complete", true, "succeeded"),
        (
            "hook-bad",
            "Failed",
            false,
            "failed (kubectl -n chaos-testing logs job/",
        ),
    ] {
        let name = hook_job(NS, &spec, &context(run))["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
        let jobs = w.jobs();
        let finish = tokio::spawn(async move {
            let status = serde_json::json!({ "status": { "conditions": [{ "type": condition, "status": "True" }] } });
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if jobs
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            panic!("the hook Job {name} was never created");
        });
        let outcome = run_hook(&hook(Duration::from_secs(20)), &context(run), Some(&kube)).await;
        finish.await.unwrap();
        assert_eq!(outcome.ok, ok, "{outcome:?}");
        assert!(outcome.detail.contains(said), "{outcome:?}");
        assert!(outcome.seconds < 10.0, "{outcome:?}");
    }
    // A Job that does not finish in time is deleted.
    let outcome = run_hook(
        &hook(Duration::from_millis(300)),
        &context("hook-slow"),
        Some(&kube),
    )
    .await;
    assert!(!outcome.ok);
    assert!(
        outcome.detail.contains("did not finish within") && outcome.detail.contains("; deleted"),
        "{outcome:?}"
    );
    let name = hook_job(NS, &spec, &context("hook-slow"))["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(w.jobs().get_opt(&name).await.unwrap().is_none());
}

#[tokio::test]
async fn the_scheduler_honours_blackouts_skipping_or_deferring() {
    let w = world(None).await;
    let text = format!(
        r#"
namespace: {NS}
store: {store}
blackouts:
  - {{ name: weekends, weekdays: [Sat, Sun] }}
drills:
  - {{ name: skipper, kind: probe, schedule: "0 10 * * *", duration: 2s }}
  - {{ name: deferrer, kind: probe, schedule: "0 10 * * *", duration: 2s, on_blackout: defer, deadline: 2h }}
"#,
        store = w.store_url()
    );
    let config = Config::parse(&text, Path::new("blackouts.yaml")).unwrap();
    let mut s = w.scheduler_for(config, "scheduler-a").await;
    // Saturday 2027-01-16 10:00: both fall in the weekend.
    let report = s.tick(at("2027-01-16T10:00:05Z")).await.unwrap();
    assert!(report.fired.is_empty(), "{report:?}");
    assert_eq!(
        report.not_fired,
        [(
            "skipper".to_owned(),
            at("2027-01-16T10:00:00Z"),
            "skipped".to_owned()
        )]
    );
    let skipped = s
        .store()
        .fire("skipper", at("2027-01-16T10:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(skipped.reason.as_deref(), Some("in blackout weekends"));
    // Monday 00:00: the deferred fire starts (Sunday's fires were deferred too; one runs at a time).
    let report = s.tick(at("2027-01-18T00:00:05Z")).await.unwrap();
    assert_eq!(
        report.fired,
        [firedrill::cluster::job::run_id(
            "deferrer",
            at("2027-01-16T10:00:00Z")
        )]
    );
    let fired = s
        .store()
        .fire("deferrer", at("2027-01-16T10:00:00Z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fired.reason.as_deref(),
        Some("deferred past blackout weekends")
    );
}

/// A Deployment `apps/web` with three ready pods, an hour old, in the in-memory cluster.
async fn web_workload(client: &kube::Client) {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    // No Namespace object: the in-memory cluster has no paths for them (the guard then treats
    // the namespace as not opted in, which this drill does not need).
    let created = (Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339();
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web", "namespace": "apps" },
        "spec": { "replicas": 3, "selector": { "matchLabels": { "app": "web" } }, "template": { "metadata": { "labels": { "app": "web" } } } }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "apps")
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    for i in 0..3 {
        Api::<Pod>::namespaced(client.clone(), "apps")
            .create(
                &PostParams::default(),
                &web_pod(&format!("web-{i}"), &created),
            )
            .await
            .unwrap();
    }
}

/// A Running and Ready pod of `apps/web`.
fn web_pod(name: &str, created: &str) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "namespace": "apps", "labels": { "app": "web" }, "creationTimestamp": created,
            "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "u", "controller": true }] },
        "spec": { "containers": [{ "name": "web", "image": "web" }] },
        "status": { "phase": "Running", "conditions": [{ "type": "Ready", "status": "True" }] }
    }))
    .unwrap()
}

#[tokio::test]
async fn the_guard_reads_the_live_cluster_and_honours_cooldown_across_runs() {
    use firedrill_safety::cluster::{OwnerKind, OwnerRef};
    let w = world(None).await;
    web_workload(&w.client).await;
    let text = format!(
        "armed: true\nnamespace: {NS}\nsafety: {{ cooldown: 24h, min_pod_age: 5m }}\ndrills:\n  - name: kill-web\n    kind: pod-kill\n    schedule: \"@monthly\"\n    duration: 1s\n    targets: [{{ namespace: apps, selector: app=web, count: 1 }}]\n"
    );
    let (config, drill, run) = one_drill(&text, "kill-web-1");
    let execute = |recent_hits| execute_on(&w.client, &config, &drill, &run, recent_hits);

    // Without the history, a drill with a cooldown cannot prove it is safe.
    let record = execute(None).await;
    assert_eq!(record.status, RunStatus::Blocked);
    assert_eq!(
        record.reason.as_deref(),
        Some("cannot check safety.cooldown: the run history is unavailable (fail safe)")
    );

    // The workload was hit an hour ago: every pod is left alone, with the reason.
    let web = OwnerRef {
        kind: OwnerKind::Deployment,
        namespace: "apps".into(),
        name: "web".into(),
    };
    let record = execute(Some(vec![(web, Utc::now().timestamp() - 3600)])).await;
    assert_eq!(record.status, RunStatus::Blocked);
    assert!(
        record
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("safety.cooldown is 1d"),
        "{record:?}"
    );
    assert!(
        record
            .reason
            .as_deref()
            .unwrap()
            // "1h" or, when a second boundary passes between the two clocks read, "1h1s".
            .contains("its workload Deployment/apps/web was hit 1h"),
        "{record:?}"
    );

    // Free to pick: the guard chooses one pod from the live cluster and the drill kills it
    // (evicting, the default: this in-memory cluster has no eviction subresource, so the kill
    // fails and the run says so; `force: true` deletes instead, below).
    let record = execute(Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Error, "{record:?}");
    assert!(
        record
            .reason
            .as_deref()
            .unwrap()
            .starts_with("injection failed: step 1 (evict Pod apps/web-"),
        "{record:?}"
    );
    assert_eq!(record.targets.len(), 1);
    assert_eq!(
        record.targets[0]
            .owner
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("Deployment/apps/web")
    );
}

/// Stands in for the ReplicaSet controller: a pod of `apps/web` that is gone is recreated,
/// Running and Ready, `delay` later.
fn recreate_web_pods(client: kube::Client, delay: Duration) {
    use k8s_openapi::api::core::v1::Pod;
    tokio::spawn(async move {
        let api = Api::<Pod>::namespaced(client, "apps");
        let mut next = 100;
        loop {
            let pods = api.list(&Default::default()).await.unwrap().items.len();
            if pods < 3 {
                tokio::time::sleep(delay).await;
                next += 1;
                let created = (Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339();
                let pod = web_pod(&format!("web-{next}"), &created);
                api.create(&PostParams::default(), &pod).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[tokio::test]
async fn a_pod_kill_is_recorded_in_the_ledger_and_its_recovery_measured() {
    use k8s_openapi::api::core::v1::Pod;
    let w = world(None).await;
    web_workload(&w.client).await;
    recreate_web_pods(w.client.clone(), Duration::from_millis(500));
    let text = format!(
        "armed: true\nnamespace: {NS}\nsafety: {{ min_pod_age: 5m, max_blast_radius: 100% }}\ndrills:\n  - name: kill-web\n    kind: pod-kill\n    schedule: \"@monthly\"\n    duration: 4s\n    targets: [{{ namespace: apps, selector: app=web, count: 2 }}]\n    fault: {{ force: true, grace_period: 0s, waves: 2, interval: 300ms }}\n    success: {{ rto: 30s }}\n"
    );
    let (config, drill, run) = one_drill(&text, "kill-web-2");
    let record = execute_on(&w.client, &config, &drill, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    assert_eq!(record.targets.len(), 2);
    // Two waves of one pod each; each comes back 0.5 s after it is gone, and the second wave
    // waits for the first to recover and then 300 ms: 0.5 + 0.3 + 0.5 = 1.3 s, plus polling
    // (every 100 ms here) and a busy machine: within [1.3 s, 2.5 s].
    let rto = record.measurements.rto_seconds.expect("RTO measured");
    assert!(
        (1.3..2.5).contains(&rto),
        "RTO {rto}: {:#}",
        record.evidence.to_value()["timeline"]
    );
    let timeline: Vec<String> = record.evidence.to_value()["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(timeline.len(), 4, "{timeline:?}");
    assert!(
        timeline[0].starts_with("delete Pod apps/web-")
            && timeline[0].ends_with("(grace period 0s)"),
        "{timeline:?}"
    );
    assert_eq!(
        timeline[1],
        "recovered: Deployment/apps/web ready as desired"
    );
    assert!(
        timeline[2].starts_with("delete Pod apps/web-"),
        "{timeline:?}"
    );
    // The pods the drill chose are gone; three run again.
    let pods: Vec<String> = Api::<Pod>::namespaced(w.client.clone(), "apps")
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(pods.len(), 3, "{pods:?}");
    for target in &record.targets {
        assert!(!pods.contains(&target.name), "{} was killed", target.name);
    }
    // The ledger says what was done, that nothing is left to undo, and how the run went.
    let data = ledger_data(&w.client, "kill-web-2").await;
    assert_eq!(data["outcome"], "passed");
    assert_eq!(data["hits"], r#"["Deployment/apps/web"]"#);
    assert!(
        data["step-0001"].contains(r#""type":"recreated""#),
        "{data:?}"
    );
    assert!(
        data["step-0002"].contains(r#""state":"reverted""#),
        "{data:?}"
    );
}

#[tokio::test]
async fn a_partition_isolates_the_chosen_pods_and_is_undone_exactly() {
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    let w = world(None).await;
    web_workload(&w.client).await;
    let pods = || async {
        let mut out: Vec<serde_json::Value> = Api::<Pod>::namespaced(w.client.clone(), "apps")
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|p| {
                let mut v = serde_json::to_value(p).unwrap();
                // What the API server changes on every write.
                let metadata = v["metadata"].as_object_mut().unwrap();
                metadata.remove("resourceVersion");
                metadata.remove("generation");
                v
            })
            .collect();
        out.sort_by_key(|p| p["metadata"]["name"].as_str().unwrap().to_owned());
        out
    };
    let before = pods().await;
    let text = format!(
        "armed: true\nnamespace: {NS}\nsafety: {{ min_pod_age: 5m, limits: {{ partition: 10m }} }}\ndrills:\n  - name: cut-web\n    kind: network-partition\n    schedule: \"@monthly\"\n    duration: 1s\n    targets: [{{ namespace: apps, selector: app=web, count: 1 }}]\n    fault: {{ direction: both, allow: [{{ namespace: monitoring }}, {{ cidr: 10.0.0.0/8 }}] }}\n"
    );
    let (config, drill, run) = one_drill(&text, "cut-web-1");
    // Watch the cluster while the drill runs: the policy exists and selects the marked pod.
    let client = w.client.clone();
    let during = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let policy = Api::<NetworkPolicy>::namespaced(client.clone(), "apps")
            .get("firedrill-partition-cut-web-1")
            .await
            .unwrap();
        let marked: Vec<String> = Api::<Pod>::namespaced(client, "apps")
            .list(&kube::api::ListParams::default().labels("firedrill.io/partition=cut-web-1"))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        (serde_json::to_value(policy).unwrap(), marked)
    });
    let record = execute_on(&w.client, &config, &drill, &run, Some(Vec::new())).await;
    assert_eq!(record.status, RunStatus::Passed, "{record:#?}");
    let (policy, marked) = during.await.unwrap();
    assert_eq!(
        marked,
        [record.targets[0].name.clone()],
        "exactly the chosen pod is isolated"
    );
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"]["firedrill.io/partition"],
        "cut-web-1"
    );
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    assert_eq!(
        policy["metadata"]["labels"]["firedrill.io/artifact"],
        "true"
    );
    // Each pod the drill touched carries an Event naming the drill and the run.
    let events = Api::<k8s_openapi::api::core::v1::Event>::namespaced(w.client.clone(), "apps")
        .list(&Default::default())
        .await
        .unwrap()
        .items;
    let mut on_target: Vec<&k8s_openapi::api::core::v1::Event> = events
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(record.targets[0].name.as_str()))
        .collect();
    // Fault, then revert (the list's order is the names', not the times').
    on_target.sort_by_key(|e| e.reason.clone());
    assert_eq!(on_target.len(), 2, "{events:?}");
    assert_eq!(on_target[0].reason.as_deref(), Some("FiredrillFault"));
    assert_eq!(on_target[0].type_.as_deref(), Some("Warning"));
    // And when it is put back: a Normal Event saying so.
    assert_eq!(on_target[1].reason.as_deref(), Some("FiredrillRevert"));
    assert_eq!(on_target[1].type_.as_deref(), Some("Normal"));
    assert_eq!(
        on_target[1].message.as_deref(),
        Some("firedrill drill cut-web (run cut-web-1): reverted")
    );
    assert!(on_target[0]
        .message
        .as_deref()
        .unwrap()
        .starts_with("firedrill drill cut-web (run cut-web-1): patch Pod apps/"));
    // Undone exactly: no policy, every pod as before.
    assert!(Api::<NetworkPolicy>::namespaced(w.client.clone(), "apps")
        .get_opt("firedrill-partition-cut-web-1")
        .await
        .unwrap()
        .is_none());
    assert_eq!(pods().await, before);
}

/// Leadership second by second over ten minutes, with renewals on their own cadence (every 5 s,
/// a third of the 15 s lease) and ticks every 5 s (scheduler-a) and every 60 s (scheduler-b).
/// scheduler-a's clock runs ten minutes behind. It leads, hangs at 09:59:10 (no renewals, no
/// ticks), and comes back as a new process at 10:02:30. At every instant at most one scheduler
/// leads; the handover takes less than a lease; the 10:00 fire happens once.
#[tokio::test]
async fn one_leader_at_every_instant_with_a_skewed_clock_and_long_ticks() {
    let w = world(None).await;
    let mut a = w.scheduler("scheduler-a").await;
    let b = w.scheduler("scheduler-b").await;
    let mut b = b;
    let start = at("2027-01-15T09:55:00Z");
    let skew = chrono::TimeDelta::minutes(-10);
    let (hang, back) = (250, 450);
    let mut without_leader = 0;
    let mut longest_gap = 0;
    let mut leader_at = Vec::new();
    for s in 0..600 {
        let t = start + chrono::TimeDelta::seconds(s);
        let a_clock = t + skew;
        if s == back {
            a = w.scheduler("scheduler-a").await;
        }
        let a_runs = !(hang..back).contains(&s);
        if a_runs && s % 5 == 0 {
            a.renew(a_clock).await.unwrap();
            a.tick(a_clock).await.unwrap();
        }
        if s % 5 == 3 {
            b.renew(t).await.unwrap();
        }
        if s % 60 == 0 {
            b.tick(t).await.unwrap();
        }
        let leaders: Vec<&str> = [("a", a.leading(a_clock).await), ("b", b.leading(t).await)]
            .into_iter()
            .filter(|(_, leads)| *leads)
            .map(|(who, _)| who)
            .collect();
        assert!(leaders.len() <= 1, "two leaders at {t}: {leaders:?}");
        if leaders.is_empty() {
            without_leader += 1;
            longest_gap = longest_gap.max(without_leader);
        } else {
            without_leader = 0;
        }
        leader_at.push(leaders.first().copied().unwrap_or("-"));
    }
    assert_eq!(leader_at[0], "a", "the first to ask leads");
    assert!(leader_at[..hang as usize].iter().all(|l| *l == "a"));
    assert!(
        longest_gap < 15,
        "a handover of {longest_gap}s, longer than the lease"
    );
    // b took over within a lease of a's last renewal, and the process that came back did not
    // take the Lease from it.
    assert!(
        leader_at[hang as usize + 20..].iter().all(|l| *l == "b"),
        "{leader_at:?}"
    );
    // The 10:00 fire: once, by b (a hung before it; its clock would say 09:50 anyway).
    assert_eq!(
        w.job_names().await,
        vec![firedrill::cluster::job::run_id(
            &w.drill,
            at("2027-01-15T10:00:00Z")
        )]
    );
}

/// A person vetoes one fire (`firedrill skip`, here through the library it calls, as ana): the
/// scheduler does not run it, records it skipped with the reason and who, takes the mark out,
/// and the next fire runs as planned; a veto taken back (`unskip`) leaves its fire to run.
/// `status` lists the pending veto and marks the fire skipped in its table.
#[tokio::test]
async fn a_vetoed_fire_is_not_run_is_recorded_and_the_next_runs() {
    use firedrill::cluster::skips::{self, Skip, SkipError};
    let w = world(None).await;
    let kube = Kube::new(w.client.clone(), NS);
    let now = at("2027-01-14T12:00:00Z");
    // `skip DRILL --next` on the 14th means the 15th's fire.
    let vetoed = skips::choose(&w.config, &w.drill, None, now).unwrap();
    assert_eq!(vetoed, at("2027-01-15T10:00:00Z"));
    let mark = |scheduled| Skip {
        drill: w.drill.clone(),
        scheduled,
        reason: "INC-7: database failover in progress".into(),
        by: "ana@example.com".into(),
        marked: now,
    };
    skips::mark(&kube, &mark(vetoed), now).await.unwrap();
    let again = skips::mark(&kube, &mark(vetoed), now).await.unwrap_err();
    assert!(matches!(again, SkipError::AlreadySkipped { .. }), "{again}");
    // The 16th's fire is vetoed, then the veto taken back.
    let next = at("2027-01-16T10:00:00Z");
    skips::mark(&kube, &mark(next), now).await.unwrap();
    assert_eq!(
        skips::unmark(&kube, &w.drill, next, now).await.unwrap(),
        mark(next)
    );
    let nothing = skips::unmark(&kube, &w.drill, next, now).await.unwrap_err();
    assert_eq!(
        nothing.to_string(),
        format!("the fire of {} at 2027-01-16T10:00:00Z is not skipped: nothing to unskip (its skipped fires: 2027-01-15T10:00:00Z)", w.drill)
    );

    let text = firedrill::schedule::scheduler::status_report(&w.config, &kube, now).await;
    assert!(
        text.contains(&format!(
            "skipped:      1\n  {} at 2027-01-15T10:00:00Z (skipped by ana@example.com: INC-7: database failover in progress, marked 2027-01-14T12:00:00Z)\n",
            w.drill
        )),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.contains("2027-01-15T10:00:00Z") && l.starts_with(&w.drill))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains(" skipped ")
            && row.ends_with("skipped by ana@example.com: INC-7: database failover in progress"),
        "{row}"
    );

    // At the fire: no Job, a skipped record with who and why, the mark taken out.
    let mut s = w.scheduler("scheduler-a").await;
    let report = s.tick(at("2027-01-15T10:00:05Z")).await.unwrap();
    assert!(report.fired.is_empty(), "{report:?}");
    assert_eq!(
        report.not_fired,
        [(w.drill.clone(), vetoed, "skipped".to_owned())]
    );
    assert!(w.job_names().await.is_empty());
    let run = firedrill::cluster::job::run_id(&w.drill, vetoed);
    assert_eq!(report.recorded, [(run.clone(), RunStatus::Skipped)]);
    let record = s.store().run(&run).await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Skipped);
    assert_eq!(
        record.reason.as_deref(),
        Some("skipped by ana@example.com: INC-7: database failover in progress")
    );
    assert_eq!(record.started, None);
    assert_eq!(
        record.evidence.to_value()["skipped"],
        serde_json::json!({
            "by": "ana@example.com",
            "reason": "INC-7: database failover in progress",
            "marked": "2027-01-14T12:00:00Z"
        })
    );
    let fire = s.store().fire(&w.drill, vetoed).await.unwrap().unwrap();
    assert_eq!(
        (fire.status.as_str(), fire.run.as_deref()),
        ("skipped", Some(run.as_str()))
    );
    assert!(skips::read(&kube).await.unwrap().marks.is_empty());
    let report = s.tick(at("2027-01-15T10:01:00Z")).await.unwrap();
    assert!(report.fired.is_empty() && report.not_fired.is_empty());

    // The next fire runs as planned.
    let report = s.tick(at("2027-01-16T10:00:05Z")).await.unwrap();
    assert_eq!(
        report.fired,
        [firedrill::cluster::job::run_id(&w.drill, next)]
    );
    let _ = std::fs::remove_dir_all(&w.dir);
}

/// A ConfigMap named as the skip marks but not firedrill's (no `firedrill.io/kind=skips`) is
/// neither replaced by `skip` nor followed by the scheduler.
#[tokio::test]
async fn a_foreign_skips_config_map_is_neither_written_nor_followed() {
    use firedrill::cluster::skips::{self, Skip, SkipError};
    let w = world(None).await;
    let kube = Kube::new(w.client.clone(), NS);
    let scheduled = at("2027-01-15T10:00:00Z");
    let foreign = Skip {
        drill: w.drill.clone(),
        scheduled,
        reason: "not ours".into(),
        by: "mallory".into(),
        marked: scheduled,
    };
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "firedrill-skips", "namespace": NS, "labels": { "team": "other" } },
        "data": { foreign.key(): serde_json::to_string(&foreign).unwrap() }
    }))
    .unwrap();
    let api = Api::<ConfigMap>::namespaced(w.client.clone(), NS);
    api.create(&PostParams::default(), &cm).await.unwrap();
    let e = skips::mark(&kube, &foreign, at("2027-01-14T12:00:00Z"))
        .await
        .unwrap_err();
    assert!(matches!(e, SkipError::Foreign { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        format!("ConfigMap {NS}/firedrill-skips exists but is not firedrill's (it lacks the label firedrill.io/kind=skips): firedrill neither reads nor replaces it; rename or delete it, then try again")
    );
    assert_eq!(api.get("firedrill-skips").await.unwrap().data, cm.data);
    let mut s = w.scheduler("scheduler-a").await;
    let report = s.tick(at("2027-01-15T10:00:05Z")).await.unwrap();
    assert_eq!(
        report.fired,
        [firedrill::cluster::job::run_id(&w.drill, scheduled)]
    );
    let _ = std::fs::remove_dir_all(&w.dir);
}
