//! Telling people about drills: the announcement before a fire, its start and its outcome,
//! posted to the drill file's `notify:` receivers by the scheduler.
//!
//! A receiver that is down never delays or fails a drill: the scheduler's tick only puts a
//! notice on a bounded queue (dropped, logged and counted when full); a worker posts each
//! notice in its own task with a short budget per attempt and a bounded number of retries, and
//! counts what became of it on `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};

use crate::config::notify::{Event, Format, Receiver};
use crate::config::{Config, Drill};
use crate::history::metrics::{NotifyEvent, NotifyLabels, SchedulerMetrics};
use crate::run::RunRecord;
use crate::schedule::upcoming::PlannedVerdict;
use crate::schedule::{self, FireStatus};

/// How each notice is posted.
#[derive(Clone, Copy, Debug)]
pub struct Posting {
    /// The most one attempt may take, connecting included.
    pub budget: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// The wait before the first retry; doubled before each next one.
    pub backoff: Duration,
    /// Notices waiting to be posted; one more is dropped (and counted).
    pub queue: usize,
    /// Notices being posted at once.
    pub in_flight: usize,
}

impl Default for Posting {
    fn default() -> Self {
        Posting {
            budget: Duration::from_secs(2),
            retries: 2,
            backoff: Duration::from_millis(250),
            queue: 256,
            in_flight: 8,
        }
    }
}

/// What one notice says, whatever the format it is sent in.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub event: Event,
    pub cluster: String,
    pub drill: String,
    pub kind: String,
    pub run: String,
    pub scheduled: DateTime<Utc>,
    /// Announce: when the fire starts; start: when its Job was created; outcome: when it ended.
    pub at: DateTime<Utc>,
    pub armed: bool,
    /// Announce: what the fire acts on, as the drill file names it.
    pub targets: Vec<String>,
    /// Announce: what the guard would pick now, on the cluster as it is (`None`: not looked).
    pub picks: Option<Picks>,
    /// Outcome: the run's status by its name (`passed`, `failed`, ...).
    pub status: Option<String>,
    pub reason: Option<String>,
    /// Outcome: the revert left something undone; the ledger is open.
    pub rollback_failed: bool,
    pub rto_seconds: Option<f64>,
    pub rpo_seconds: Option<f64>,
    pub availability: Option<f64>,
}

/// What the guard would pick for an announced fire, judged as `plan --cluster --at` judges it
/// on the cluster as it is when the announcement goes out. It judges again when the fire
/// starts, so this is what people should expect, not a promise.
#[derive(Clone, Debug, PartialEq)]
pub enum Picks {
    /// What it would act on now: a zone, nodes, a dependency, pods (`namespace/name`).
    Picked(Vec<String>),
    /// It would block the fire now, and why.
    Blocked(String),
    /// Not judged, and why.
    NotJudged(String),
}

impl Picks {
    const PICKED: &'static str =
        "As the guard would pick them now (it judges again when the fire starts)";

    /// The guard's verdict on a fire, as an announcement says it; `None`: the kind's targets
    /// are not chosen from the cluster by the guard.
    pub fn of(verdict: Option<&PlannedVerdict>, kind: &str) -> Picks {
        let Some(v) = verdict else {
            return Picks::NotJudged(format!(
                "not judged before the fire: a {kind} drill's targets are not pods the guard picks"
            ));
        };
        if let Some(why) = &v.blocked {
            return Picks::Blocked(why.clone());
        }
        let zone = v.zone.iter().map(|z| format!("zone {z}"));
        let nodes = v.nodes.iter().flatten().map(|n| format!("node {}", n.node));
        let dependency = v.dependency.iter().cloned();
        let pods = v
            .targets
            .iter()
            .map(|t| format!("{}/{}", t.namespace, t.name));
        Picks::Picked(zone.chain(nodes).chain(dependency).chain(pods).collect())
    }

    /// One line for people.
    pub fn note(&self) -> String {
        match self {
            Picks::Picked(picked) if picked.is_empty() => {
                format!("{}: nothing", Picks::PICKED)
            }
            Picks::Picked(_) => Picks::PICKED.to_owned(),
            Picks::Blocked(why) => format!("The guard would block this fire now: {why}"),
            Picks::NotJudged(why) => format!("Not judged: {why}"),
        }
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Notice {
    fn new(
        event: Event,
        config: &Config,
        drill: &Drill,
        run: &str,
        scheduled: DateTime<Utc>,
    ) -> Self {
        Notice {
            event,
            cluster: config.cluster.clone(),
            drill: drill.name.clone(),
            kind: drill.kind().to_string(),
            run: run.to_owned(),
            scheduled,
            at: scheduled,
            armed: config.armed,
            targets: Vec::new(),
            picks: None,
            status: None,
            reason: None,
            rollback_failed: false,
            rto_seconds: None,
            rpo_seconds: None,
            availability: None,
        }
    }

    /// The announcement of a fire that starts at `start`.
    pub fn announce(
        config: &Config,
        drill: &Drill,
        scheduled: DateTime<Utc>,
        start: DateTime<Utc>,
    ) -> Self {
        let run = crate::cluster::job::run_id(&drill.name, scheduled);
        let mut n = Notice::new(Event::Announce, config, drill, &run, scheduled);
        n.at = start;
        n.targets = drill
            .targets
            .iter()
            .map(|t| format!("{} {} ({})", t.namespace, t.selector, amount(&t.amount)))
            .collect();
        n
    }

    /// The start of a fire whose Job was created at `now`.
    pub fn start(
        config: &Config,
        drill: &Drill,
        run: &str,
        scheduled: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut n = Notice::new(Event::Start, config, drill, run, scheduled);
        n.at = now;
        n
    }

    /// The outcome a run's record says.
    pub fn outcome(config: &Config, drill: &Drill, record: &RunRecord) -> Self {
        let mut n = Notice::new(Event::Outcome, config, drill, &record.id, record.scheduled);
        n.at = record.ended.unwrap_or(record.scheduled);
        n.status = Some(record.status.to_string());
        n.reason = record.reason.clone();
        n.rollback_failed = record.rollback_failed();
        n.rto_seconds = record.measurements.rto_seconds;
        n.rpo_seconds = record.measurements.rpo_seconds;
        n.availability = record.measurements.availability;
        n
    }

    /// The command that vetoes the announced fire.
    pub fn veto(&self) -> String {
        format!(
            "firedrill skip {} --at {} --reason \"...\"",
            self.drill,
            stamp(self.scheduled)
        )
    }

    /// Whether the outcome is one people must look at: anything but a pass or a dry run, and a
    /// failed rollback whatever the status.
    pub fn alarming(&self) -> bool {
        self.rollback_failed
            || self
                .status
                .as_deref()
                .is_some_and(|s| !matches!(s, "passed" | "dry-run"))
    }

    /// The body for `format`.
    pub fn body(&self, format: Format) -> Value {
        match format {
            Format::Slack => self.slack(),
            Format::Generic => self.generic(),
        }
    }

    /// A CloudEvents 1.0 event in structured mode.
    fn generic(&self) -> Value {
        let mut data = json!({
            "cluster": self.cluster,
            "drill": self.drill,
            "kind": self.kind,
            "run": self.run,
            "scheduled": stamp(self.scheduled),
            "armed": self.armed,
        });
        let fields = match self.event {
            Event::Announce => json!({
                "start": stamp(self.at),
                "targets": self.targets,
                "picked": match &self.picks {
                    Some(Picks::Picked(picked)) => json!(picked),
                    _ => Value::Null,
                },
                "picked_note": self.picks.as_ref().map(Picks::note),
                "veto": self.veto(),
            }),
            Event::Start => json!({ "started": stamp(self.at) }),
            Event::Outcome => json!({
                "ended": stamp(self.at),
                "status": self.status,
                "reason": self.reason,
                "rollback_failed": self.rollback_failed,
                "rto_seconds": self.rto_seconds,
                "rpo_seconds": self.rpo_seconds,
                "availability": self.availability,
            }),
        };
        if let (Some(data), Value::Object(fields)) = (data.as_object_mut(), fields) {
            data.extend(fields);
        }
        json!({
            "specversion": "1.0",
            "type": format!("io.firedrill.drill.{}", self.event.as_str()),
            "source": format!("firedrill/{}", self.cluster),
            // One id per run and event: a retried post is the same event to a receiver.
            "id": format!("{}.{}", self.run, self.event.as_str()),
            "time": stamp(self.at),
            "subject": self.drill,
            "datacontenttype": "application/json",
            "data": data,
        })
    }

    /// Slack's incoming-webhook body: `text` (also what notifications show) and one section.
    fn slack(&self) -> Value {
        let mode = if self.armed { "" } else { " (dry run)" };
        let text = match self.event {
            Event::Announce => {
                let targets = if self.targets.is_empty() {
                    String::new()
                } else {
                    format!("\nTargets: {}", self.targets.join("; "))
                };
                let picks = match &self.picks {
                    Some(Picks::Picked(picked)) => {
                        format!("\n{}: {}", Picks::PICKED, picked.join("; "))
                    }
                    Some(other) => format!("\n{}", other.note()),
                    None => String::new(),
                };
                format!(
                    ":loudspeaker: Drill *{}* ({}) on cluster {} fires at {}{mode}.{targets}{picks}\nTo veto this fire: `{}`",
                    self.drill,
                    self.kind,
                    self.cluster,
                    stamp(self.at),
                    self.veto()
                )
            }
            Event::Start => format!(
                ":arrow_forward: Drill *{}* ({}) started on cluster {}{mode}: run {}",
                self.drill, self.kind, self.cluster, self.run
            ),
            Event::Outcome => self.slack_outcome(),
        };
        json!({
            "text": text,
            "blocks": [{ "type": "section", "text": { "type": "mrkdwn", "text": text } }],
        })
    }

    fn slack_outcome(&self) -> String {
        let status = self.status.as_deref().unwrap_or("unknown");
        let mut text = if self.alarming() {
            format!(
                ":rotating_light: *{}*: drill *{}* ({}) on cluster {}, run {}",
                status.to_uppercase(),
                self.drill,
                self.kind,
                self.cluster,
                self.run
            )
        } else {
            format!(
                ":white_check_mark: {status}: drill *{}* ({}) on cluster {}, run {}",
                self.drill, self.kind, self.cluster, self.run
            )
        };
        if let Some(reason) = &self.reason {
            text.push_str(&format!("\nReason: {reason}"));
        }
        if let Some(rto) = self.rto_seconds {
            text.push_str(&format!("\nRTO: {rto:.1}s"));
        }
        if self.rollback_failed {
            text.push_str(&format!(
                "\n:rotating_light: *ROLLBACK FAILED*: the revert left changes in place and the ledger is open. Run `firedrill rollback --run {}`.",
                self.run
            ));
        }
        text
    }
}

fn amount(a: &firedrill_safety::Amount) -> String {
    match a {
        firedrill_safety::Amount::Percent(p) => format!("{p} of the pods"),
        firedrill_safety::Amount::Count(1) => "1 pod".to_owned(),
        firedrill_safety::Amount::Count(n) => format!("{n} pods"),
    }
}

/// A fire whose announcement is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueAnnouncement {
    /// Index of the drill in the file.
    pub drill: usize,
    pub scheduled: DateTime<Utc>,
    pub start: DateTime<Utc>,
}

/// The fires to announce at `now`: each that starts later than `now` but within its drill's
/// `announce:`, that runs as the calendar sees it (not skipped by a blackout), whose drill has a
/// receiver for announcements, and that `announced(drill, scheduled)` does not say was. A pure
/// function of the file, the instant and what was announced, so a tick at any instant sends
/// each announcement once, at the first tick at or after its instant.
pub fn due_announcements(
    config: &Config,
    now: DateTime<Utc>,
    announced: impl Fn(&str, DateTime<Utc>) -> bool,
) -> Vec<DueAnnouncement> {
    let ahead = config
        .drills
        .iter()
        .filter(|d| d.notify.iter().any(|r| r.hears(Event::Announce)))
        .map(|d| d.announce)
        .max()
        .unwrap_or_default();
    if ahead.is_zero() {
        return Vec::new();
    }
    let until =
        now + TimeDelta::from_std(ahead).unwrap_or(TimeDelta::days(7)) + TimeDelta::seconds(1);
    let calendar = schedule::Calendar::<()>::open(
        config.planned_drills(),
        config.timezone,
        &config.blackouts,
        config.concurrency as usize,
        now,
        until,
    );
    calendar
        .map(|(fire, _)| fire)
        .take_while(|fire| fire.scheduled <= until)
        // Every-minute drills with a week's announce: bounded all the same.
        .take(10_000)
        .filter_map(|fire| {
            let drill = &config.drills[fire.drill];
            let start = fire.start?;
            let runs = !matches!(fire.status, FireStatus::Skipped | FireStatus::Missed);
            let lead = TimeDelta::from_std(drill.announce).ok()?;
            let due = runs
                && !drill.announce.is_zero()
                && start > now
                && start - lead <= now
                && drill.notify.iter().any(|r| r.hears(Event::Announce))
                && !announced(&drill.name, fire.scheduled);
            due.then_some(DueAnnouncement {
                drill: fire.drill,
                scheduled: fire.scheduled,
                start,
            })
        })
        .collect()
}

/// Looks up an environment variable (the process's, or a test's).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process's environment.
pub fn process_env() -> Env {
    Arc::new(|name| std::env::var(name).ok())
}

/// Every receiver of the file whose URL cannot be used, once each (by name and address).
pub fn check_addresses(config: &Config, env: &Env) -> Vec<crate::config::notify::AddressError> {
    let mut seen = Vec::new();
    let mut problems = Vec::new();
    for r in config
        .notify
        .iter()
        .chain(config.drills.iter().flat_map(|d| &d.notify))
    {
        if seen.contains(&(&r.name, &r.address)) {
            continue;
        }
        seen.push((&r.name, &r.address));
        if let Err(e) = r.resolve(|v| env(v)) {
            problems.push(e);
        }
    }
    problems
}

struct Delivery {
    labels: NotifyLabels,
    url: url::Url,
    body: Vec<u8>,
    content_type: &'static str,
}

/// Puts notices on the queue its worker posts from.
#[derive(Clone)]
pub struct Notifier {
    queue: Option<tokio::sync::mpsc::Sender<Delivery>>,
    env: Env,
    metrics: SchedulerMetrics,
}

impl Notifier {
    /// A notifier whose worker runs on the current Tokio runtime; outside one, every notice is
    /// dropped and counted.
    pub fn spawn(env: Env, metrics: SchedulerMetrics, posting: Posting) -> Self {
        let queue = tokio::runtime::Handle::try_current().ok().map(|handle| {
            let (tx, rx) = tokio::sync::mpsc::channel(posting.queue.max(1));
            handle.spawn(work(rx, posting, metrics.clone()));
            tx
        });
        Notifier {
            queue,
            env,
            metrics,
        }
    }

    /// Queues `notice` for each of `receivers` that hears of it. Never waits.
    pub fn send(&self, receivers: &[Receiver], notice: &Notice) {
        for receiver in receivers.iter().filter(|r| r.hears(notice.event)) {
            let labels = NotifyLabels {
                receiver: receiver.name.clone(),
                event: NotifyEvent::of(notice.event),
            };
            let url = match receiver.resolve(|v| (self.env)(v)) {
                Ok(url) => url,
                Err(error) => {
                    tracing::error!(%error, drill = %notice.drill, event = notice.event.as_str(), "notification not sent");
                    self.metrics.notification_failed(&labels);
                    continue;
                }
            };
            let (body, content_type) = match receiver.format {
                Format::Slack => (notice.body(Format::Slack), "application/json"),
                Format::Generic => (notice.body(Format::Generic), "application/cloudevents+json"),
            };
            let delivery = Delivery {
                labels: labels.clone(),
                url,
                body: body.to_string().into_bytes(),
                content_type,
            };
            let queued = match &self.queue {
                Some(queue) => queue.try_send(delivery).is_ok(),
                None => false,
            };
            if !queued {
                tracing::warn!(receiver = %receiver.name, drill = %notice.drill, event = notice.event.as_str(), "notification dropped: too many waiting to be posted");
                self.metrics.notification_failed(&labels);
            }
        }
    }
}

/// Posts what is queued, each in its own task, at most `in_flight` at once.
async fn work(
    mut queue: tokio::sync::mpsc::Receiver<Delivery>,
    posting: Posting,
    metrics: SchedulerMetrics,
) {
    crate::drill::gate::install_tls_provider();
    let client = reqwest::Client::builder()
        .user_agent(concat!("firedrill/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(posting.budget)
        .timeout(posting.budget)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    let slots = Arc::new(tokio::sync::Semaphore::new(posting.in_flight.max(1)));
    while let Some(delivery) = queue.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (client, metrics) = (client.clone(), metrics.clone());
        tokio::spawn(async move {
            match post(&client, &delivery, posting).await {
                Ok(()) => metrics.notification_sent(&delivery.labels),
                Err(error) => {
                    tracing::warn!(receiver = %delivery.labels.receiver, event = ?delivery.labels.event, %error, "notification failed");
                    metrics.notification_failed(&delivery.labels);
                }
            }
            drop(slot);
        });
    }
}

/// One notice to one receiver: the first attempt and up to `retries` more, each within
/// `budget`; an answer the receiver will give again (a 4xx other than 408 and 429) is not
/// retried.
async fn post(client: &reqwest::Client, d: &Delivery, posting: Posting) -> Result<(), NotPosted> {
    let mut wait = posting.backoff;
    let mut last = String::new();
    for attempt in 0..=posting.retries {
        if attempt > 0 {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
        let sent = client
            .post(d.url.clone())
            .header(reqwest::header::CONTENT_TYPE, d.content_type)
            .body(d.body.clone())
            .send();
        match tokio::time::timeout(posting.budget, sent).await {
            Ok(Ok(answer)) if answer.status().is_success() => return Ok(()),
            Ok(Ok(answer)) => {
                let status = answer.status();
                last = format!("the receiver answered {status}");
                if status.is_client_error() && !matches!(status.as_u16(), 408 | 429) {
                    break;
                }
            }
            // Without the URL: it may hold a token.
            Ok(Err(e)) => last = format!("no answer: {}", e.without_url()),
            Err(_) => {
                last = format!(
                    "no answer within {}",
                    firedrill_reader::duration::format(posting.budget)
                )
            }
        }
    }
    Err(NotPosted {
        last,
        attempts: posting.retries + 1,
    })
}

/// Why a notice did not reach its receiver: the last attempt's failure.
#[derive(Debug, thiserror::Error)]
#[error("{last} ({attempts} attempts)")]
struct NotPosted {
    last: String,
    attempts: u32,
}
