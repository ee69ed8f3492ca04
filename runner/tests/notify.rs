//! `notify:` on the wire: the scheduler posts the announcement, the start and the outcome of a
//! fire to real HTTP receivers on loopback (Slack and CloudEvents bodies), and a receiver that
//! hangs or refuses neither delays a tick nor goes uncounted.
//!
//! The scheduler's clock is the instant each `tick(now)` is given (the run loop passes
//! `Utc::now()`), not Tokio's: the announcement's instant is tested by ticking at chosen
//! instants, and as the pure function `due_announcements(config, now, announced)`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use firedrill::cluster::job::Runtime;
use firedrill::cluster::kubernetes::Kube;
use firedrill::config::notify::Event;
use firedrill::config::Config;
use firedrill::history::store::{RunStatus, Store};
use firedrill::schedule::notify::{self, Notice, Notifier, Posting};
use firedrill::schedule::scheduler::Scheduler;
use k8s_openapi::api::batch::v1::Job;
use serde_json::Value;
use support::cluster::NS;
use support::unique;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// A webhook receiver on loopback that keeps every body it is posted.
struct Receiver {
    url: String,
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Receiver {
    /// Answers 200 to every POST, or (`hang`) accepts and never answers.
    async fn start(hang: bool) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    if hang {
                        // Hold the connection open and say nothing.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        drop(socket);
                        return;
                    }
                    let Some((head, body)) = read_request(&mut socket).await else {
                        return;
                    };
                    let content_type = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-type:")
                                .map(|v| v.trim().to_owned())
                        })
                        .unwrap_or_default();
                    if let Ok(value) = serde_json::from_slice(&body) {
                        kept.lock().unwrap().push((content_type, value));
                    }
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        Receiver { url, bodies }
    }

    fn bodies(&self) -> Vec<(String, Value)> {
        self.bodies.lock().unwrap().clone()
    }

    /// The bodies received, once there are `count` of them (or after 5 s).
    async fn wait_for(&self, count: usize) -> Vec<(String, Value)> {
        for _ in 0..100 {
            if self.bodies().len() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.bodies()
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < end + length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some((head, buf[end..end + length].to_vec()))
}

/// A loopback port nothing listens on: a post to it is refused.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn drill_file(dir: &Path, drill: &str, extra: &str) -> Config {
    let text = format!(
        r#"
armed: true
namespace: {NS}
store: sqlite://{store}
notify:
  - name: chat
    url_env: TEST_SLACK_URL
    format: slack
  - name: events
    url_env: TEST_EVENTS_URL
    format: generic
drills:
  - name: {drill}
    kind: pod-kill
    schedule: "0 10 * * *"
    duration: 2s
    targets: [{{ namespace: shop, selector: app=web, count: 1 }}]
{extra}"#,
        store = dir.join("history.db").display()
    );
    Config::parse(&text, Path::new("notify.yaml")).unwrap_or_else(|e| panic!("{e}"))
}

fn env(vars: &[(&str, &str)]) -> notify::Env {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Arc::new(move |name| vars.get(name).cloned())
}

async fn scheduler(config: Config, vars: &[(&str, &str)]) -> Scheduler {
    scheduler_on(fake_cluster().await, config, vars).await
}

async fn fake_cluster() -> kube::Client {
    support::cluster::watchable(
        kube_fake_client::ClientBuilder::new()
            .with_status_subresource::<Job>()
            .build()
            .await
            .expect("fake cluster"),
    )
}

async fn scheduler_on(client: kube::Client, config: Config, vars: &[(&str, &str)]) -> Scheduler {
    let store = Store::open(&config.store, &config.cluster).await.unwrap();
    let mut s = Scheduler::new(
        config,
        Kube::new(client, NS),
        store,
        Runtime {
            image: "firedrill:test".into(),
            config_map: "firedrill-config".into(),
            service_account: "firedrill".into(),
        },
        "scheduler-notify",
    );
    let notifier = Notifier::spawn(env(vars), s.metrics.scheduler.clone(), Posting::default());
    s.set_notifier(notifier);
    s
}

fn world(extra: &str) -> (std::path::PathBuf, String, Config) {
    let dir = std::env::temp_dir().join(unique("firedrill-notify"));
    std::fs::create_dir_all(&dir).unwrap();
    let drill: String = unique("web")
        .replace('_', "-")
        .chars()
        .take(40)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned();
    let config = drill_file(&dir, &drill, extra);
    (dir, drill, config)
}

/// What `/metrics` says of notifications to `receiver` about `event`: (sent, failed).
fn counted(s: &Scheduler, receiver: &str, event: &str) -> (u64, u64) {
    let text = s.metrics.encode();
    let value = |family: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!("{family}{{"))
                    && l.contains(&format!("receiver=\"{receiver}\""))
                    && l.contains(&format!("event=\"{event}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        value("firedrill_notifications_sent_total"),
        value("firedrill_notifications_failed_total"),
    )
}

#[test]
fn the_announcement_is_due_from_its_lead_until_the_fire_starts() {
    let (_dir, drill, config) = world("    announce: 15m\n");
    let due = |now: &str, announced: &BTreeSet<(String, DateTime<Utc>)>| {
        notify::due_announcements(&config, at(now), |d, s| {
            announced.contains(&(d.to_owned(), s))
        })
    };
    let none = BTreeSet::new();
    assert!(due("2027-01-15T09:44:59Z", &none).is_empty());
    let at_lead = due("2027-01-15T09:45:00Z", &none);
    assert_eq!(at_lead.len(), 1, "{at_lead:?}");
    assert_eq!(at_lead[0].scheduled, at("2027-01-15T10:00:00Z"));
    assert_eq!(at_lead[0].start, at("2027-01-15T10:00:00Z"));
    // A scheduler that comes up late still announces, until the fire starts.
    assert_eq!(due("2027-01-15T09:59:59Z", &none).len(), 1);
    assert!(due("2027-01-15T10:00:00Z", &none).is_empty());
    // Once announced, not again.
    let announced = BTreeSet::from([(drill.clone(), at("2027-01-15T10:00:00Z"))]);
    assert!(due("2027-01-15T09:50:00Z", &announced).is_empty());

    // `announce: 0` announces nothing; a blackout's skipped fire is not announced.
    let (_dir, _, silent) = world("    announce: \"0\"\n");
    assert!(
        notify::due_announcements(&silent, at("2027-01-15T09:59:00Z"), |_, _| false).is_empty()
    );
    let (_dir, _, blacked) = world("");
    let mut blacked = blacked;
    blacked.blackouts = vec![firedrill::schedule::Blackout {
        name: "freeze".into(),
        dates: None,
        weekdays: Some(0b111_1111),
        times: None,
    }];
    assert!(
        notify::due_announcements(&blacked, at("2027-01-15T09:59:00Z"), |_, _| false).is_empty()
    );
}

#[tokio::test]
async fn announcement_start_and_outcome_reach_slack_and_generic_receivers() {
    let slack = Receiver::start(false).await;
    let events = Receiver::start(false).await;
    let (_dir, drill, config) = world("    announce: 15m\n");
    let mut s = scheduler(
        config,
        &[
            ("TEST_SLACK_URL", &slack.url),
            ("TEST_EVENTS_URL", &events.url),
        ],
    )
    .await;

    // A second before the announcement's instant: nothing.
    s.tick(at("2027-01-15T09:44:59Z")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(slack.bodies().is_empty() && events.bodies().is_empty());

    // At 15 minutes before the fire: the announcement, once.
    s.tick(at("2027-01-15T09:45:00Z")).await.unwrap();
    s.tick(at("2027-01-15T09:50:00Z")).await.unwrap();
    let got = events.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(events.bodies().len(), 1, "{:?}", events.bodies());
    let (content_type, e) = &got[0];
    assert_eq!(content_type, "application/cloudevents+json");
    assert_eq!(e["specversion"], "1.0");
    assert_eq!(e["type"], "io.firedrill.drill.announce");
    assert_eq!(e["source"], "firedrill/default");
    assert_eq!(e["subject"], drill.as_str());
    assert_eq!(e["data"]["start"], "2027-01-15T10:00:00Z");
    assert_eq!(e["data"]["targets"][0], "shop app=web (1 pod)");
    assert_eq!(
        e["data"]["veto"],
        format!("firedrill skip {drill} --at 2027-01-15T10:00:00Z --reason \"...\"").as_str()
    );
    let text = slack.wait_for(1).await[0].1["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.starts_with(":loudspeaker: Drill *"), "{text}");
    assert!(text.contains("fires at 2027-01-15T10:00:00Z"), "{text}");
    assert!(
        text.contains(&format!(
            "`firedrill skip {drill} --at 2027-01-15T10:00:00Z"
        )),
        "{text}"
    );

    // The fire: its start.
    let report = s.tick(at("2027-01-15T10:00:05Z")).await.unwrap();
    assert_eq!(report.fired.len(), 1, "{report:?}");
    let run = report.fired[0].clone();
    let got = events.wait_for(2).await;
    assert_eq!(got[1].1["type"], "io.firedrill.drill.start");
    assert_eq!(got[1].1["id"], format!("{run}.start").as_str());
    assert_eq!(got[1].1["data"]["started"], "2027-01-15T10:00:05Z");
    assert!(slack.wait_for(2).await[1].1["text"]
        .as_str()
        .unwrap()
        .starts_with(":arrow_forward: Drill *"));

    // The executor records the run failed; the scheduler's next tick sees it ended.
    let mut record = s.store().run(&run).await.unwrap().unwrap();
    record.status = RunStatus::Failed;
    record.reason = Some("availability 91% is under the 99% target".into());
    record.ended = Some(at("2027-01-15T10:00:09Z"));
    record.measurements.rto_seconds = Some(4.5);
    s.store().record_run(&record).await.unwrap();
    s.tick(at("2027-01-15T10:01:00Z")).await.unwrap();
    let got = events.wait_for(3).await;
    let outcome = &got[2].1;
    assert_eq!(outcome["type"], "io.firedrill.drill.outcome");
    assert_eq!(outcome["data"]["status"], "failed");
    assert_eq!(outcome["data"]["rto_seconds"], 4.5);
    assert_eq!(outcome["data"]["rollback_failed"], false);
    let text = slack.wait_for(3).await[2].1["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.starts_with(":rotating_light: *FAILED*: drill *"),
        "{text}"
    );
    assert!(text.contains("Reason: availability 91%"), "{text}");
    // Once only.
    s.tick(at("2027-01-15T10:02:00Z")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(events.bodies().len(), 3);
    for event in ["announce", "start", "outcome"] {
        assert_eq!(counted(&s, "events", event), (1, 0), "{event}");
        assert_eq!(counted(&s, "chat", event), (1, 0), "{event}");
    }
}

#[test]
fn a_failed_rollback_is_loud_whatever_the_status() {
    let (_dir, drill, config) = world("");
    let d = config.drill(&drill).unwrap();
    let mut record: firedrill::run::RunRecord = serde_json::from_value(serde_json::json!({
        "id": "r1", "drill": drill, "kind": "pod-kill", "scheduled": "2027-01-15T10:00:00Z",
        "started": "2027-01-15T10:00:00Z", "ended": "2027-01-15T10:00:30Z", "status": "passed",
        "reason": null, "targets": [], "measurements": {}, "evidence": {}
    }))
    .unwrap();
    let quiet = Notice::outcome(&config, d, &record);
    assert!(!quiet.alarming());
    let text = quiet.body(firedrill::config::notify::Format::Slack)["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.starts_with(":white_check_mark: passed"), "{text}");

    record.evidence.revert = firedrill::run::Revert::Failed {
        when: firedrill::run::RevertWhen::AfterTheRun,
        error: "cannot scale back".into(),
    };
    let loud = Notice::outcome(&config, d, &record);
    assert!(loud.alarming());
    let text = loud.body(firedrill::config::notify::Format::Slack)["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.starts_with(":rotating_light: *PASSED*"), "{text}");
    assert!(
        text.contains("*ROLLBACK FAILED*") && text.contains("`firedrill rollback --run r1`"),
        "{text}"
    );
    assert_eq!(
        loud.body(firedrill::config::notify::Format::Generic)["data"]["rollback_failed"],
        true
    );
    // A status this code does not know (a newer one) is loud, by its name.
    let mut other = quiet.clone();
    other.status = Some("ineffective".into());
    assert!(other.alarming());
    assert!(other.body(firedrill::config::notify::Format::Slack)["text"]
        .as_str()
        .unwrap()
        .starts_with(":rotating_light: *INEFFECTIVE*"));
    assert_eq!(quiet.event, Event::Outcome);
}

#[tokio::test]
async fn a_receiver_that_hangs_or_refuses_delays_no_tick_and_is_counted() {
    let hanging = Receiver::start(true).await;
    let refused = closed_port().await;
    let (_dir, _drill, config) = world("    announce: 15m\n");
    let mut s = scheduler(
        config,
        &[
            ("TEST_SLACK_URL", &hanging.url),
            ("TEST_EVENTS_URL", &refused),
        ],
    )
    .await;

    // The ticks that announce and fire take what they take without receivers: no wait on a
    // post (the budget is 2 s an attempt, 3 attempts).
    let started = Instant::now();
    s.tick(at("2027-01-15T09:45:00Z")).await.unwrap();
    let announcing = started.elapsed();
    let started = Instant::now();
    let report = s.tick(at("2027-01-15T10:00:05Z")).await.unwrap();
    let firing = started.elapsed();
    assert_eq!(report.fired.len(), 1, "{report:?}");
    assert!(
        announcing < Duration::from_millis(1000) && firing < Duration::from_millis(1000),
        "announcing took {announcing:?}, firing {firing:?}"
    );

    // The refused posts fail within their retries' backoff (0.25 s + 0.5 s); the hanging ones
    // after three budgets of 2 s and the backoff between: 6.75 s.
    let started = Instant::now();
    let mut counts = ((0, 0), (0, 0));
    while started.elapsed() < Duration::from_secs(15) {
        counts = (counted(&s, "events", "start"), counted(&s, "chat", "start"));
        if counts.0 .1 == 1 && counts.1 .1 == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let waited = started.elapsed();
    eprintln!(
        "announcing tick {announcing:?}, firing tick {firing:?}, failures counted after {waited:?}"
    );
    assert_eq!(counts, ((0, 1), (0, 1)), "after {waited:?}");
    assert_eq!(counted(&s, "events", "announce"), (0, 1));
    assert_eq!(counted(&s, "chat", "announce"), (0, 1));
    // Bounded: 3 attempts of at most 2 s each, and 0.75 s of backoff, from the fire's tick.
    assert!(waited < Duration::from_secs(9), "{waited:?}");
    assert!(hanging.bodies().is_empty());
}

#[tokio::test]
async fn an_unset_or_non_http_url_variable_is_said_and_counted() {
    let (_dir, _drill, config) = world("");
    let problems = notify::check_addresses(&config, &env(&[("TEST_SLACK_URL", "ftp://x/y")]));
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            "notify receiver \"chat\": environment variable TEST_SLACK_URL does not hold an http(s) URL: not a URL with an http or https scheme and a host",
            "notify receiver \"events\": environment variable TEST_EVENTS_URL is not set, so it is sent nothing (set it, e.g. from a Secret: env[].valueFrom.secretKeyRef)",
        ]
    );
    // At run time, an unset variable costs a count, never a tick.
    let mut s = scheduler(config, &[]).await;
    let report = s.tick(at("2027-01-15T10:00:05Z")).await.unwrap();
    assert_eq!(report.fired.len(), 1);
    assert_eq!(counted(&s, "events", "start"), (0, 1));
}

/// The announcement says what the guard would pick now, judged as `plan --cluster --at`
/// judges the fire, on the cluster as it is; and that it judges again when the fire starts.
#[tokio::test]
async fn the_announcement_names_the_pods_the_guard_would_pick_now() {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, PostParams};
    let events = Receiver::start(false).await;
    let slack = Receiver::start(false).await;
    let (_dir, _drill, config) = world("    announce: 15m\n");
    let client = fake_cluster().await;
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web", "namespace": "shop" },
        "spec": { "replicas": 2, "selector": { "matchLabels": { "app": "web" } },
            "template": { "metadata": { "labels": { "app": "web" } } } }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    for name in ["web-0", "web-1"] {
        let pod = support::cluster::ready_pod(
            "shop",
            name,
            serde_json::json!({ "app": "web" }),
            "Deployment/web",
            "n1",
        );
        Api::<Pod>::namespaced(client.clone(), "shop")
            .create(&PostParams::default(), &pod)
            .await
            .unwrap();
    }
    let mut s = scheduler_on(
        client,
        config,
        &[
            ("TEST_SLACK_URL", &slack.url),
            ("TEST_EVENTS_URL", &events.url),
        ],
    )
    .await;
    s.tick(at("2027-01-15T09:45:00Z")).await.unwrap();
    let e = &events.wait_for(1).await[0].1;
    // The file's targets, and the pod the guard picks from them now (count: 1 of the two).
    assert_eq!(e["data"]["targets"][0], "shop app=web (1 pod)");
    let picked = e["data"]["picked"].as_array().expect("picked").clone();
    assert_eq!(picked.len(), 1, "{e}");
    assert!(
        ["shop/web-0", "shop/web-1"].contains(&picked[0].as_str().unwrap()),
        "{e}"
    );
    assert_eq!(
        e["data"]["picked_note"],
        "As the guard would pick them now (it judges again when the fire starts)"
    );
    let text = slack.wait_for(1).await[0].1["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains(&format!(
            "As the guard would pick them now (it judges again when the fire starts): {}",
            picked[0].as_str().unwrap()
        )),
        "{text}"
    );
}

/// With no pod to pick, the announcement says the guard would block the fire, and why.
#[tokio::test]
async fn the_announcement_says_when_the_guard_would_block_the_fire() {
    let events = Receiver::start(false).await;
    let (_dir, _drill, config) = world("    announce: 15m\n");
    let mut s = scheduler(config, &[("TEST_EVENTS_URL", &events.url)]).await;
    s.tick(at("2027-01-15T09:45:00Z")).await.unwrap();
    let e = &events.wait_for(1).await[0].1;
    assert_eq!(e["data"]["picked"], Value::Null, "{e}");
    let note = e["data"]["picked_note"].as_str().unwrap();
    assert!(
        note.starts_with("The guard would block this fire now: "),
        "{note}"
    );
}
