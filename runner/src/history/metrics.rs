//! The scheduler's `/metrics`, `/healthz` and `/readyz`: a `prometheus-client` registry in which
//! the scheduler registers its own families (label values from closed enums, so their number is
//! bounded), served by hyper. Each connection is its own task with a header-read timeout, so a
//! slow or half-open client holds nothing up; an accept error (out of file descriptors) backs
//! off instead of spinning.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// What became of a fire.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum FireStatus {
    fired,
    skipped,
    missed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FireLabels {
    pub status: FireStatus,
}

/// What became of a drill-file reload.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum ReloadResult {
    applied,
    rejected,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    pub result: ReloadResult,
}

/// Why a ledger entry was not applied: not proven firedrill's own.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum UnverifiedReason {
    /// The entry carries no authentication code.
    no_code,
    /// Its code does not verify (another key, another run or step, a changed record).
    wrong_code,
    /// Its ledger was written before signing (format v1) and waits for a person.
    unsigned_ledger,
    /// No ledger key to check it with.
    no_key,
}

impl UnverifiedReason {
    pub fn of(why: &firedrill_rollback::Rejection) -> Self {
        match why.label() {
            "no_code" => UnverifiedReason::no_code,
            "unsigned_ledger" => UnverifiedReason::unsigned_ledger,
            "no_key" => UnverifiedReason::no_key,
            _ => UnverifiedReason::wrong_code,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnverifiedLabels {
    pub reason: UnverifiedReason,
}

/// Which of `firedrill check`'s checks ([`crate::check::CHECKS`]: a closed set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub check: &'static str,
}

/// What a notification was about.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum NotifyEvent {
    announce,
    start,
    outcome,
}

impl NotifyEvent {
    pub fn of(event: crate::config::notify::Event) -> Self {
        use crate::config::notify::Event;
        match event {
            Event::Announce => NotifyEvent::announce,
            Event::Start => NotifyEvent::start,
            Event::Outcome => NotifyEvent::outcome,
        }
    }
}

/// A receiver is named in the drill file: its names are as few as the file's receivers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyLabels {
    pub receiver: String,
    pub event: NotifyEvent,
}

/// The scheduler's families.
#[derive(Clone, Debug, Default)]
pub struct SchedulerMetrics {
    pub leader: Gauge,
    pub kill_switch: Gauge,
    pub fires: Family<FireLabels, Counter>,
    pub reloads: Family<ReloadLabels, Counter>,
    pub tick_errors: Counter,
    pub last_tick_seconds: Gauge,
    /// Open ledger entries the sweep did not apply because they are not proven firedrill's own.
    pub unverified: Family<UnverifiedLabels, Counter>,
    /// Whether each of `check`'s read-only checks passed at the scheduler's last look (1 or 0).
    pub checks: Family<CheckLabels, Gauge>,
    /// Notifications a receiver accepted, and those it did not (after every retry, or dropped).
    pub notifications_sent: Family<NotifyLabels, Counter>,
    pub notifications_failed: Family<NotifyLabels, Counter>,
    /// When the last tick completed, for `/readyz`.
    last_tick: Arc<Mutex<Option<DateTime<Utc>>>>,
    /// The checks' last report, for `/readyz`.
    check_report: Arc<Mutex<Option<crate::check::Report>>>,
}

impl SchedulerMetrics {
    /// The families, registered in `registry` under `firedrill_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = SchedulerMetrics::default();
        registry.register(
            "firedrill_scheduler_leader",
            "Whether this scheduler holds the Lease",
            m.leader.clone(),
        );
        registry.register(
            "firedrill_kill_switch_engaged",
            "Whether the kill switch is engaged",
            m.kill_switch.clone(),
        );
        registry.register(
            "firedrill_scheduler_fires",
            "Fires handled, by what became of them",
            m.fires.clone(),
        );
        registry.register(
            "firedrill_scheduler_config_reloads",
            "Drill file reloads, by result",
            m.reloads.clone(),
        );
        registry.register(
            "firedrill_scheduler_tick_errors",
            "Ticks that failed",
            m.tick_errors.clone(),
        );
        registry.register(
            "firedrill_scheduler_last_tick_timestamp_seconds",
            "When the last tick completed",
            m.last_tick_seconds.clone(),
        );
        registry.register(
            "firedrill_check",
            "Whether each of `firedrill check`'s read-only checks passed at the scheduler's last look (1) or failed (0)",
            m.checks.clone(),
        );
        registry.register(
            "firedrill_ledger_entries_unverified",
            "Open ledger entries the sweep did not apply because they are not proven firedrill's own, by reason",
            m.unverified.clone(),
        );
        registry.register(
            "firedrill_notifications_sent",
            "Notifications a receiver accepted, by receiver and event",
            m.notifications_sent.clone(),
        );
        registry.register(
            "firedrill_notifications_failed",
            "Notifications not delivered (every attempt failed, or dropped), by receiver and event",
            m.notifications_failed.clone(),
        );
        m
    }

    pub fn notification_sent(&self, labels: &NotifyLabels) {
        self.notifications_sent.get_or_create(labels).inc();
    }

    pub fn notification_failed(&self, labels: &NotifyLabels) {
        self.notifications_failed.get_or_create(labels).inc();
    }

    pub fn fire(&self, status: FireStatus) {
        self.fires.get_or_create(&FireLabels { status }).inc();
    }

    pub fn reload(&self, result: ReloadResult) {
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
    }

    pub fn ticked(&self, at: DateTime<Utc>) {
        self.last_tick_seconds.set(at.timestamp());
        if let Ok(mut last) = self.last_tick.lock() {
            *last = Some(at);
        }
    }

    pub fn last_tick(&self) -> Option<DateTime<Utc>> {
        self.last_tick.lock().ok().and_then(|l| *l)
    }

    /// Publishes the checks' report: each check's gauge, and the lines `/readyz` shows.
    pub fn checked(&self, report: crate::check::Report) {
        // A check that no longer runs (its endpoint taken out of the drill file) leaves no
        // stale value behind.
        self.checks.clear();
        for check in crate::check::CHECKS {
            if let Some(passed) = report.check_passed(check) {
                self.checks
                    .get_or_create(&CheckLabels { check })
                    .set(i64::from(passed));
            }
        }
        if let Ok(mut last) = self.check_report.lock() {
            *last = Some(report);
        }
    }

    /// The checks' last report, once they ran.
    pub fn check_report(&self) -> Option<crate::check::Report> {
        self.check_report.lock().ok().and_then(|r| r.clone())
    }
}

/// The registry and the scheduler's families in it.
#[derive(Clone)]
pub struct Exposition {
    registry: Arc<Registry>,
    pub scheduler: SchedulerMetrics,
}

impl Default for Exposition {
    fn default() -> Self {
        Exposition::for_cluster(crate::run::DEFAULT_CLUSTER)
    }
}

impl Exposition {
    /// Every family carries `cluster="<name>"`, as every pushed metric does: one dashboard
    /// serves the fleet.
    pub fn for_cluster(cluster: &str) -> Self {
        let mut registry = Registry::with_labels(
            [(
                std::borrow::Cow::Borrowed("cluster"),
                std::borrow::Cow::Owned(cluster.to_owned()),
            )]
            .into_iter(),
        );
        let scheduler = SchedulerMetrics::register(&mut registry);
        Exposition {
            registry: Arc::new(registry),
            scheduler,
        }
    }

    /// The OpenMetrics text of every family.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn answer(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

fn route(path: &str, exposition: &Exposition, tick: Duration) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    match path {
        "/healthz" => answer(StatusCode::OK, TEXT, "ok\n".into()),
        "/readyz" => readyz(exposition, tick),
        "/metrics" => answer(StatusCode::OK, OPENMETRICS, exposition.encode()),
        _ => answer(StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    }
}

/// Ready while ticks complete (as leader or follower) and no critical check
/// ([`crate::check::CRITICAL`]: the API, RBAC, the ledger key) failed at the last look; a
/// scheduler that cannot reach the API server or the store is not. Every check's line follows,
/// ✓ or ✗ with its fix, once the checks have run.
fn readyz(exposition: &Exposition, tick: Duration) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    let stale = chrono::TimeDelta::from_std(tick * 3).unwrap_or_default();
    let report = exposition.scheduler.check_report();
    let detail = report.as_ref().map(|r| r.text()).unwrap_or_default();
    let critical: Vec<&'static str> = report
        .as_ref()
        .map(|r| r.critical_failures().iter().map(|l| l.check).collect())
        .unwrap_or_default();
    let fresh = exposition
        .scheduler
        .last_tick()
        .is_some_and(|t| Utc::now() - t <= stale);
    let (status, head) = if !fresh {
        (StatusCode::SERVICE_UNAVAILABLE, "no recent tick".to_owned())
    } else if !critical.is_empty() {
        let mut names = critical;
        names.dedup();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: the {} check failed (its fix is below; the checks run again every {} minutes)",
                names.join(", "),
                crate::check::RECHECK_EVERY.as_secs() / 60
            ),
        )
    } else {
        (StatusCode::OK, "ready".to_owned())
    };
    answer(status, TEXT, format!("{head}\n{detail}"))
}

/// How long a client may take to send its request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// How long one connection may last, keep-alive included.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// The pause after a failed accept (file descriptors exhausted), so the loop never spins.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves the endpoints on `listener` forever.
pub async fn serve(listener: tokio::net::TcpListener, exposition: Exposition, tick: Duration) {
    serve_with(|| listener.accept(), exposition, tick).await;
}

/// [`serve`] over any accept function (tests give one that fails).
pub async fn serve_with<A, F>(mut accept: A, exposition: Exposition, tick: Duration)
where
    A: FnMut() -> F,
    F: std::future::Future<Output = std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)>>,
{
    // At most this many connections at once, each for at most a while: a client that never
    // reads its answers cannot hold file descriptors (the Lease's connections need them).
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a connection on the health and metrics port");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            continue;
        };
        let exposition = exposition.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service =
                hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
                    let response = route(request.uri().path(), &exposition, tick);
                    async move { Ok::<_, Infallible>(response) }
                });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let _ = tokio::time::timeout(
                CONNECTION_LIFETIME,
                http.serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            )
            .await;
        });
    }
}
