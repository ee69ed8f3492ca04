//! What a drill Job runs: preflight, plan, inject, observe, revert, measure, record.
//!
//! Order matters and is the contract: nothing is injected unless every gate passed and the guard
//! found something it may touch; once injected, the fault is reverted whatever happens next
//! (breach, signal, error). Not armed, or `--dry-run`: everything runs except mutations.

use std::time::Duration;

use chrono::{DateTime, Utc};
use firedrill_experiments::{Choice, Kind};
use firedrill_rollback::{self as rollback, Ledger, Step};
use firedrill_safety::cluster::{Cluster, OwnerRef};
use firedrill_safety::verdict::{self, RecentHits, Request};
use futures::{FutureExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::cluster::job::RunRef;
use crate::cluster::kubernetes::Kube;
use crate::cluster::ledger::{KubeCluster, Protection};
use crate::cluster::snapshot;
use crate::config::{Config, Drill};
use crate::drill::gate::{self, Endpoints, Samples, WatchResult};
use crate::history::pushgateway;
use crate::history::store::{Spool, Store, StoreError};
use crate::run::{
    EventNote, Evidence, Hit, Injected, Measurements, Moment, Revert, RevertWhen, RunRecord,
    RunStatus,
};
use crate::schedule::blackout;

/// The exit code of `firedrill execute` when the run's record could be kept nowhere (not in the
/// store, the cluster or the spool), whatever the outcome: it is then only on stdout.
pub const EXIT_RECORD_LOST: u8 = 5;

/// Process exit codes of `firedrill execute`: a contract with the Job and `run --wait`.
pub fn exit_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Passed | RunStatus::DryRun => 0,
        RunStatus::Failed => 1,
        RunStatus::Aborted => 2,
        RunStatus::Blocked => 3,
        RunStatus::Running | RunStatus::Missed | RunStatus::Error => 4,
    }
}

/// A fault in place: the run's ledger and where to undo it. Built only when a kind planned
/// steps and the run is armed.
struct Injection {
    cluster: KubeCluster,
    ledger: Ledger,
    /// Signs every entry this run writes, and verifies them on its own revert.
    key: rollback::Key,
    protection: Protection,
    /// Waves not applied yet, and the pause before the next.
    waves: std::collections::VecDeque<Vec<Step>>,
    interval: Duration,
    /// The next wave waits for recovery (pod-kill's waves, the proxy before a selector swap).
    wait_for_recovery: bool,
    /// Leading waves that only prepare: the fault starts after them.
    preparatory: usize,
    /// Waves applied so far.
    applied: usize,
    /// The workloads the fault takes down: recovery waits for them.
    affected: std::collections::BTreeSet<OwnerRef>,
    /// Recovery also waits for the drill's steady-state probes to answer as expected.
    probes: Vec<gate::SteadyProbe>,
    endpoints: Endpoints,
    /// Why the fault did not go in as planned (a wave failed, a helper failed, preparation
    /// timed out): the run ends as `error`, after the revert.
    failure: Option<String>,
    /// The helper pods a wave created (container-kill's, network-degrade's): a failed one fails
    /// the run.
    helpers: Vec<rollback::ObjectRef>,
    /// When the first fault was made, and when everything it hit was back.
    first_fault: Option<DateTime<Utc>>,
    recovered: Option<DateTime<Utc>>,
    /// What happened when, for the record.
    timeline: Vec<Moment>,
}

impl Injection {
    /// Applies one wave through the ledger (each undo record written before its change).
    async fn inject(&mut self, steps: &[Step]) -> Result<Injected, String> {
        // The fault starts when its first change is asked for (a DNS change waits until it is
        // in sync before `apply` returns).
        let began = Utc::now();
        let guard = |r: &rollback::ObjectRef| self.protection.check(r);
        let trust = self.protection.trust(&guard, Some(&self.key));
        let applied = rollback::apply(&self.cluster, &mut self.ledger, steps, &trust)
            .await
            .map_err(|e| e.to_string())?;
        self.applied += 1;
        for step in steps {
            if let rollback::Operation::Create { object } = &step.forward {
                let name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if name.starts_with("firedrill-kill-") || name.starts_with("firedrill-degrade-") {
                    self.helpers.extend(rollback::ObjectRef::of(object));
                }
            }
        }
        let now = Utc::now();
        if !applied.made.is_empty() && self.applied > self.preparatory {
            self.first_fault.get_or_insert(began);
            self.recovered = None;
        }
        // Each object the drill touched says so, for `kubectl describe`: what a step changes,
        // and what a helper it creates acts on (the pod whose container it kills, the node it
        // loads).
        for step in steps {
            let acts_on = match &step.forward {
                rollback::Operation::Create { object } => object
                    .pointer(&format!(
                        "/metadata/annotations/{}",
                        firedrill_experiments::container::ACTS_ON.replace('/', "~1")
                    ))
                    .and_then(Value::as_str)
                    .and_then(acts_on),
                _ => None,
            };
            for target in step.forward.target().into_iter().chain(acts_on) {
                let message = format!(
                    "firedrill drill {} (run {}): {}",
                    self.ledger.drill,
                    self.ledger.run,
                    step.forward.describe()
                );
                self.cluster
                    .event_on(&target, "FiredrillFault", &message)
                    .await;
            }
        }
        for what in &applied.made {
            self.event(now, what);
        }
        for (what, why) in &applied.refused {
            self.event(now, &format!("{what}: not made: {why}"));
        }
        let dns = self.cluster.external_changes();
        Ok(Injected {
            ledger: Some(self.ledger.name()),
            changed: Some(applied.made),
            refused: Some(
                applied
                    .refused
                    .into_iter()
                    .map(|(step, reason)| crate::run::Refused { step, reason })
                    .collect(),
            ),
            dns_changes: (!dns.is_empty()).then_some(dns),
        })
    }

    fn event(&mut self, at: DateTime<Utc>, what: &str) {
        let since = self
            .first_fault
            .map(|f| (at - f).num_milliseconds() as f64 / 1000.0)
            .unwrap_or(0.0);
        self.timeline.push(Moment {
            at: Some(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            seconds: Some(since),
            event: Some(what.to_owned()),
        });
    }

    /// The namespaces of the affected workloads, each once.
    fn namespaces(&self) -> Vec<String> {
        let unique: std::collections::BTreeSet<&str> =
            self.affected.iter().map(|o| o.namespace.as_str()).collect();
        unique.into_iter().map(str::to_owned).collect()
    }

    /// Whether the system is back: every affected workload at its desired ready replicas, and
    /// every steady-state probe answering as expected right now. `Ok(None)`: yes; `Ok(Some)`:
    /// what is still down.
    async fn still_down(&self, kube: &Kube) -> Result<Option<String>, String> {
        if !self.affected.is_empty() {
            let objects = kube
                .snapshot(&self.namespaces())
                .await
                .map_err(|e| e.to_string())?;
            let refs: Vec<&Value> = objects.iter().collect();
            let cluster = snapshot::from_objects(&refs).map_err(|(_, e)| e)?;
            for owner in &self.affected {
                // A workload that is not there is not back (fail closed).
                let Some(desired) = cluster
                    .owners
                    .iter()
                    .find(|o| &o.key == owner)
                    .map(|o| o.desired)
                else {
                    return Ok(Some(format!("{owner} not found")));
                };
                let ready = cluster
                    .pods
                    .iter()
                    .filter(|p| p.running_and_ready && p.owner.as_ref() == Some(owner))
                    .count();
                if ready < desired as usize {
                    return Ok(Some(format!("{owner}: {ready} of {desired} ready")));
                }
            }
        }
        for probe in &self.probes {
            match self.endpoints.get_status(&probe.url, probe.timeout).await {
                Ok((status, _)) if probe.expect.contains(status) => {}
                Ok((status, _)) => return Ok(Some(format!("{} answers {status}", probe.url))),
                Err(e) => return Ok(Some(format!("{}: {e}", probe.url))),
            }
        }
        Ok(None)
    }

    /// Watches recovery and applies the later waves (after recovery when the plan says so,
    /// `interval` after the previous wave or the recovery). Recovery is kept under watch to the
    /// end: a system that goes down again is not recovered until it is back, so the recovery time
    /// is until it came back for good. Returns only when the fault cannot go in as planned
    /// (`failure` says why): the observation otherwise decides when the drill ends.
    async fn waves(&mut self, kube: &Kube, every: Duration) {
        if self.failure.is_some() {
            return;
        }
        let mut next_at: Option<tokio::time::Instant> = None;
        let started = tokio::time::Instant::now();
        // The system is looked at every `every`, and again after each change to a pod in an
        // affected namespace (settled for SETTLE): pods coming back are seen as the API server
        // reports them, so the recovery time is not rounded up to the next look. Probes (which
        // no watch can see) are asked only once every workload is back.
        let mut changes =
            crate::cluster::kubernetes::pod_changes(kube.client(), &self.namespaces());
        loop {
            let preparing = self.applied > 0 && self.applied <= self.preparatory;
            if preparing && self.recovered.is_none() && started.elapsed() > PREPARE_WITHIN {
                self.fail(format!(
                    "what the fault needs was not ready within {}s (the fault proxy's pods; see `kubectl describe deployment -l firedrill.io/run={}`); nothing was injected",
                    PREPARE_WITHIN.as_secs(),
                    self.ledger.run
                ));
                return;
            }
            if let Some(failed) = self.failed_helper(kube).await {
                self.fail(failed);
                return;
            }
            if self.first_fault.is_some() || preparing {
                match self.still_down(kube).await {
                    Ok(None) if self.first_fault.is_some() && self.recovered.is_none() => {
                        let now = Utc::now();
                        self.recovered = Some(now);
                        let mut back: Vec<String> = self
                            .affected
                            .iter()
                            .map(|o| format!("{o} ready as desired"))
                            .collect();
                        if !self.probes.is_empty() {
                            back.push("steady-state probes pass".into());
                        }
                        let what = if back.is_empty() {
                            "nothing was taken down".to_owned()
                        } else {
                            back.join(", ")
                        };
                        self.event(now, &format!("recovered: {what}"));
                    }
                    // Prepared (the proxy is ready): the fault may go in.
                    Ok(None) if preparing && self.recovered.is_none() => {
                        let now = Utc::now();
                        self.recovered = Some(now);
                        let ready: Vec<String> =
                            self.affected.iter().map(ToString::to_string).collect();
                        self.event(now, &format!("prepared: {} ready", ready.join(", ")));
                    }
                    Ok(None) => {}
                    Ok(Some(down)) if self.recovered.is_some() && !preparing => {
                        let now = Utc::now();
                        self.recovered = None;
                        // The next wave waits for this recovery, then its full interval.
                        next_at = None;
                        self.event(now, &format!("down again: {down}"));
                    }
                    Ok(Some(_)) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot read the workloads' readiness"),
                }
            }
            let may_go = self.recovered.is_some() || !self.wait_for_recovery;
            if !self.waves.is_empty() && may_go {
                let at =
                    *next_at.get_or_insert_with(|| tokio::time::Instant::now() + self.interval);
                if tokio::time::Instant::now() >= at {
                    next_at = None;
                    let wave = self.waves.pop_front().unwrap_or_default();
                    if self.applied < self.preparatory {
                        self.recovered = None;
                    }
                    if let Err(e) = self.inject(&wave).await {
                        self.fail(format!("a wave failed: {e}"));
                        return;
                    }
                    continue;
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                Some(()) = changes.next() => {
                    // A burst of changes (a ReplicaSet's pods coming back) is looked at once.
                    tokio::time::sleep(SETTLE).await;
                    while changes.next().now_or_never().flatten().is_some() {}
                }
            }
        }
    }

    fn fail(&mut self, why: String) {
        tracing::error!(reason = %why, "the fault did not go in as planned; reverting");
        self.event(Utc::now(), &format!("failed: {why}"));
        self.waves.clear();
        self.failure = Some(why);
    }

    /// A helper pod that ended in failure (it found nothing to kill, or could not run), said.
    async fn failed_helper(&self, kube: &Kube) -> Option<String> {
        for helper in &self.helpers {
            let namespace = helper.namespace.as_deref().unwrap_or_default();
            let api: kube::Api<k8s_openapi::api::core::v1::Pod> =
                kube::Api::namespaced(kube.client().clone(), namespace);
            if let Ok(Some(pod)) = api.get_opt(&helper.name).await {
                let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
                if phase.as_deref() == Some("Failed") {
                    return Some(format!(
                        "the helper {helper} failed (its log says why: kubectl -n {namespace} logs {})",
                        helper.name
                    ));
                }
            }
        }
        None
    }

    /// Replays the ledger backwards; an entry left because someone changed it since is reported,
    /// not an error; anything not undone is. Each object restored carries an Event saying so.
    async fn revert(&mut self, when: RevertWhen) -> Revert {
        let guard = |r: &rollback::ObjectRef| self.protection.check(r);
        let trust = self.protection.trust(&guard, Some(&self.key));
        let report = rollback::replay(&self.cluster, &mut self.ledger, &trust, false).await;
        let outcome = crate::cluster::ledger::LedgerOutcome {
            ledger: self.ledger.name(),
            result: Ok(report.clone()),
        };
        let mut lines = crate::cluster::ledger::describe(&outcome);
        lines.extend(
            self.cluster
                .external_changes()
                .into_iter()
                .map(|c| format!("DNS {c}")),
        );
        let touched: std::collections::BTreeSet<rollback::ObjectRef> = self
            .ledger
            .entries
            .iter()
            // Objects put back that outlive the drill: not what it created, not the pods it
            // killed.
            .filter(|e| e.state == rollback::EntryState::Reverted)
            .filter(|e| {
                !matches!(
                    e.undo,
                    rollback::UndoRecord::DeleteCreated { .. }
                        | rollback::UndoRecord::Recreated { .. }
                )
            })
            .filter_map(|e| e.undo.target())
            .collect();
        let message = format!(
            "firedrill drill {} (run {}): reverted",
            self.ledger.drill, self.ledger.run
        );
        for target in &touched {
            self.cluster
                .event_on(target, "FiredrillRevert", &message)
                .await;
        }
        if report.failed() {
            Revert::Failed {
                when,
                error: lines.join("; "),
            }
        } else {
            let left = report
                .actions
                .iter()
                .any(|a| a.outcome == rollback::Outcome::Left);
            Revert::replayed(when, lines, left)
        }
    }
}

/// `Pod/namespace/name` or `Node/name`, as helpers name what they act on.
fn acts_on(text: &str) -> Option<rollback::ObjectRef> {
    match text.split('/').collect::<Vec<_>>().as_slice() {
        ["Node", name] => Some(rollback::ObjectRef::node(name)),
        [kind, namespace, name] => Some(rollback::ObjectRef::namespaced(
            rollback::ObjectKind::parse(kind)?,
            namespace,
            name,
        )),
        _ => None,
    }
}

/// How long what a fault needs first (the fault proxy) may take to be ready.
const PREPARE_WITHIN: Duration = Duration::from_secs(120);

/// Everything one execution needs.
pub struct Execution<'a> {
    pub config: &'a Config,
    pub drill: &'a Drill,
    pub run: &'a RunRef,
    /// `None` when there is no cluster access (only a probe may run then).
    pub kube: Option<&'a Kube>,
    pub endpoints: &'a Endpoints,
    /// How often the kill switch is looked at while the fault is in place.
    pub kill_switch_every: Duration,
    /// Workloads earlier runs hit and when, for `cooldown`; `None` when the history cannot be
    /// read (then a drill with a cooldown is blocked unless it is a dry run).
    pub recent_hits: Option<RecentHits>,
}

/// The on-call engineer's switch must stop a running drill within seconds.
pub const KILL_SWITCH_EVERY: Duration = Duration::from_secs(2);
/// How long a change to an affected pod settles before the system is looked at again: at most
/// four looks a second however busy the namespace, each within a quarter second of the change.
const SETTLE: Duration = Duration::from_millis(250);
/// Reads of the kill switch that may fail in a row before the drill stops anyway (fail safe).
const KILL_SWITCH_READ_FAILURES: u32 = 3;

struct Progress {
    record: RunRecord,
    evidence: Evidence,
    /// Data loss measured by a region failover's markers.
    rpo: Option<f64>,
    /// A region failover promoted the database (so its failback is due).
    promoted: bool,
    /// Why a region failover's failback hook failed.
    failback_failed: Option<String>,
}

impl Progress {
    fn finish(mut self, status: RunStatus, reason: Option<String>) -> RunRecord {
        self.record.status = status;
        self.record.reason = reason;
        self.record.ended = Some(Utc::now());
        self.record.evidence = self.evidence;
        self.record
    }
}

/// Runs the pipeline and returns the finished record (not yet stored: see [`record`]).
/// `stop` turning true (a signal) ends the observation early; the fault is still reverted.
#[tracing::instrument(name = "run", skip_all, fields(drill = %x.drill.name, run = %x.run.run))]
pub async fn execute(x: &Execution<'_>, stop: watch::Receiver<bool>) -> RunRecord {
    let dry_run = !x.config.armed || x.run.dry_run;
    let started = Utc::now();
    let mut p = Progress::new(x, started, dry_run);
    tracing::info!(drill = %x.drill.name, run = %x.run.run, dry_run, "run started");
    // 1-3: every way out before the fault is in place ends the run here, nothing injected.
    let stopped = stop.clone();
    let before = async {
        preflight(x, &mut p, started).await?;
        let chosen = choose(x, &mut p, started, dry_run).await?;
        inject(x, &mut p, chosen.as_ref(), started, dry_run, &stopped).await
    };
    let mut injection = match before.await {
        Ok(injection) => injection,
        Err((status, reason)) => return p.finish(status, Some(reason)),
    };
    // 4. Observe: abort conditions and steady-state probes until the duration ends.
    let (observed, samples) = observe(x, stop, injection.as_mut()).await;
    // Recovery: from the first change to every affected workload back as desired.
    let rto = injection.as_ref().and_then(|i| {
        p.evidence.timeline = Some(i.timeline.clone());
        match (i.first_fault, i.recovered, i.waves.is_empty()) {
            (Some(first), Some(back), true) => {
                Some((back - first).num_milliseconds() as f64 / 1000.0)
            }
            _ => None,
        }
    });
    // A fault that never went in (still preparing when the drill ended) proved nothing.
    if let Some(i) = injection.as_mut() {
        if i.failure.is_none() && i.applied <= i.preparatory && i.preparatory > 0 {
            i.fail("the fault never went in: what it needs (the fault proxy) was not ready before the drill ended".into());
        }
    }
    // 5. Fail back (a promoted region failover), then revert, whatever happened.
    failback(x, &mut p).await;
    if let Some(i) = injection.as_mut() {
        if let Err(reason) = revert(x, &mut p, i).await {
            return p.finish(RunStatus::Error, Some(reason));
        }
        if let Some(failure) = i.failure.clone().or(p.failback_failed.clone()) {
            let reason = format!("{failure}; reverted");
            let record = p.finish(RunStatus::Error, Some(reason));
            i.ledger.outcome = Some(record.status.to_string());
            let _ = rollback::Cluster::save(&i.cluster, &mut i.ledger).await;
            return record;
        }
    }
    // 6. Measure and judge; the outcome joins the ledger.
    let record = judge(x, p, observed, &samples, rto, dry_run);
    if let Some(i) = injection.as_mut() {
        i.ledger.outcome = Some(record.status.to_string());
        if let Err(e) = rollback::Cluster::save(&i.cluster, &mut i.ledger).await {
            tracing::warn!(ledger = %i.ledger.name(), error = %e, "the outcome could not be added to the ledger");
        }
    }
    record
}

/// Why a run ended before its fault was in place: its status and the reason.
type Ended = (RunStatus, String);

/// What a run records as hit: the pods the verdict chose.
fn hits(verdict: &verdict::Verdict) -> Vec<Hit> {
    verdict
        .targets
        .iter()
        .map(|t| Hit {
            namespace: t.namespace.clone(),
            name: t.name.clone(),
            owner: t.owner.clone(),
        })
        .collect()
}

/// What the guard let one fire touch, and the facts its steps are planned from.
struct Chosen {
    choice: Choice,
    cluster: Cluster,
    /// Route 53 as read before the fire (region failover).
    dns: Option<firedrill_experiments::region::DnsFacts>,
}

impl Progress {
    fn new(x: &Execution<'_>, started: DateTime<Utc>, dry_run: bool) -> Self {
        let mut p = Progress {
            record: RunRecord {
                cluster: x.config.cluster.clone(),
                id: x.run.run.clone(),
                drill: x.drill.name.clone(),
                kind: x.drill.kind().to_string(),
                scheduled: x.run.scheduled,
                started: Some(started),
                ended: None,
                status: RunStatus::Running,
                reason: None,
                targets: Vec::new(),
                measurements: Measurements::default(),
                evidence: Evidence::new(),
            },
            evidence: Evidence::new(),
            rpo: None,
            promoted: false,
            failback_failed: None,
        };
        p.evidence.dry_run = Some(dry_run);
        p.evidence.armed = Some(x.config.armed);
        p.evidence.job = Some(crate::run::JobNote {
            name: crate::cluster::job::current(),
        });
        let success = &x.drill.success;
        let seconds = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        let criteria = crate::run::Criteria {
            availability: success.availability.map(|a| a.as_fraction()),
            latency_p50_seconds: seconds(success.p50),
            latency_p95_seconds: seconds(success.p95),
            latency_p99_seconds: seconds(success.p99),
            rto_seconds: seconds(success.rto),
            rpo_seconds: seconds(success.rpo),
        };
        p.evidence.criteria = Some(criteria);
        p
    }
}

/// 1. The kill switch, blackouts and the drill's preflight gates.
async fn preflight(
    x: &Execution<'_>,
    p: &mut Progress,
    started: DateTime<Utc>,
) -> Result<(), Ended> {
    let drill = x.drill;
    let mutates = drill.kind() != Kind::Probe;
    match x.kube {
        Some(kube) => match kube.kill_switch().await {
            Ok(None) => {}
            Ok(Some(reason)) => {
                return Err((RunStatus::Blocked, format!("kill switch engaged: {reason}")))
            }
            Err(e) => {
                return Err((
                    RunStatus::Blocked,
                    format!("cannot read the kill switch, so not running (fail safe): {e}"),
                ))
            }
        },
        None if mutates => {
            return Err((
                RunStatus::Blocked,
                "no cluster access: cannot check the kill switch or what the drill may touch"
                    .into(),
            ))
        }
        None => {
            p.evidence.kill_switch =
                Some("not checked: no cluster access (a probe changes nothing)".into());
        }
    }
    let covering = blackout::covering(x.config.timezone, &x.config.blackouts, started);
    if !covering.is_empty() {
        let names: Vec<&str> = covering.iter().map(|(b, _)| b.name.as_str()).collect();
        return Err((
            RunStatus::Blocked,
            format!("in blackout {}", names.join(", ")),
        ));
    }
    let gates = gate::preflight(&drill.preflight, x.endpoints).await;
    p.evidence.preflight = Some(
        gates
            .iter()
            .map(|g| crate::run::Gate {
                check: Some(g.check.clone()),
                passed: Some(g.outcome.passed()),
                detail: Some(g.outcome.text().to_owned()),
            })
            .collect(),
    );
    let failed: Vec<String> = gates
        .iter()
        .filter(|g| !g.outcome.passed())
        .map(|g| g.outcome.text().to_owned())
        .collect();
    if !failed.is_empty() {
        return Err((
            RunStatus::Blocked,
            format!("preflight failed: {}", failed.join("; ")),
        ));
    }

    Ok(())
}

/// 2. What the guard allows this fire to touch, from the cluster as it is now.
async fn choose(
    x: &Execution<'_>,
    p: &mut Progress,
    started: DateTime<Utc>,
    dry_run: bool,
) -> Result<Option<Chosen>, Ended> {
    let drill = x.drill;
    if let firedrill_experiments::Settings::RegionFailover(rf) = &drill.fault {
        return choose_regions(x, p, rf, started).await.map(Some);
    }
    let mut chosen: Option<Chosen> = None;
    if drill.kind().needs_pod_targets() {
        let Some(kube) = x.kube else {
            return Err((
                RunStatus::Blocked,
                "no cluster access to check what the drill may touch".into(),
            ));
        };
        let none = RecentHits::new();
        let recent_hits: &RecentHits = match (&x.recent_hits, drill.safety.cooldown.is_zero()) {
            (Some(hits), _) => hits,
            (None, true) => &none,
            (None, false) if dry_run => {
                p.evidence.cooldown = Some(
                    "not checked: the run history is unavailable (a dry run changes nothing)"
                        .into(),
                );
                &none
            }
            (None, false) => {
                return Err((
                    RunStatus::Blocked,
                    "cannot check safety.cooldown: the run history is unavailable (fail safe)"
                        .into(),
                ))
            }
        };
        let request = Request {
            drill: &drill.name,
            seed: verdict::seed(&drill.name, x.run.scheduled.timestamp()),
            now: started.timestamp(),
            targets: &drill.targets,
            policy: &drill.safety,
            own_namespace: &x.config.namespace,
            recent_hits,
        };
        let (cluster, listed_nodes) = match read_cluster(x, kube, &request).await {
            Ok(cluster) => cluster,
            Err(message) => {
                return Err((
                    RunStatus::Blocked,
                    format!("cannot read the cluster (fail safe): {message}"),
                ))
            }
        };
        let index = verdict::ClusterIndex::new(&cluster);
        let choice = firedrill_experiments::choose(&drill.fault, &index, &cluster, &request);
        drop(index);
        // Every node judged must be one whose pods were all read (fail safe).
        let unread: Vec<&str> = choice
            .nodes
            .iter()
            .flat_map(|n| &n.nodes)
            .map(|n| n.node.as_str())
            .filter(|n| !listed_nodes.iter().flatten().any(|l| l == n))
            .collect();
        if !unread.is_empty() {
            return Err((
                RunStatus::Blocked,
                format!(
                    "the pods on node {} were not read, so its neighbours cannot be judged (fail safe; the cluster changed while it was read: the next fire reads it again)",
                    unread.join(", ")
                ),
            ));
        }
        if let Some(nodes) = &choice.nodes {
            p.evidence.nodes = Some(json!({
                    "hurt": nodes.nodes.iter().map(|n| json!({
                        "node": n.node,
                        "cordoned_before": n.was_unschedulable,
                        "pods": n.pods.iter().map(|p| format!("{}/{}", p.namespace, p.name)).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                    "refused": nodes.refused.iter().map(|(node, reason)| json!({ "node": node, "reason": reason })).collect::<Vec<_>>(),
            }));
        }
        let v = &choice.verdict;
        p.record.targets = hits(v);
        p.evidence.excluded = Some(
            v.excluded
                .iter()
                .map(|e| crate::run::Excluded {
                    namespace: Some(e.namespace.clone()),
                    name: Some(e.name.clone()),
                    reason: Some(e.reason.clone()),
                })
                .collect(),
        );
        if let Some(blocked) = &v.blocked {
            return Err((RunStatus::Blocked, blocked.clone()));
        }
        chosen = Some(Chosen {
            choice,
            cluster,
            dns: None,
        });
    }

    Ok(chosen)
}

/// 2, for a region failover: Route 53 read and judged (the surviving regions, the records it
/// will change), and the failed region's workloads judged like a dependency scaled to zero.
async fn choose_regions(
    x: &Execution<'_>,
    p: &mut Progress,
    rf: &firedrill_experiments::region::RegionFailover,
    started: DateTime<Utc>,
) -> Result<Chosen, Ended> {
    let drill = x.drill;
    let dns = match &rf.dns {
        Some(dns) => {
            let route53 = crate::cluster::route53::Route53::new(dns.endpoint.as_deref()).await;
            match route53.facts(dns).await {
                Ok(facts) => Some(facts),
                Err(e) => {
                    return Err((
                        RunStatus::Blocked,
                        format!(
                        "cannot read Route 53, so the regions cannot be judged (fail safe): {e}"
                    ),
                    ))
                }
            }
        }
        None => None,
    };
    let surviving = firedrill_experiments::region::judge(
        rf,
        dns.as_ref(),
        drill.safety.limits.min_healthy_regions,
    )
    .map_err(|e| (RunStatus::Blocked, e))?;
    p.evidence.regions = Some(json!({
            "failed": rf.from,
            "takes_over": rf.to,
            "healthy_after": surviving,
            "healthy_before": dns.as_ref().map(|d| &d.healthy),
            "record_sets": dns.as_ref().map(|d| &d.record_sets),
            "health_checks": dns.as_ref().map(|d| &d.health_checks),
    }));
    let mut cluster = Cluster::default();
    if !rf.isolate.is_empty() {
        let Some(kube) = x.kube else {
            return Err((
                RunStatus::Blocked,
                "no cluster access to check the workloads the drill would isolate".into(),
            ));
        };
        let mut namespaces: Vec<String> = rf.isolate.iter().map(|i| i.namespace.clone()).collect();
        namespaces.sort();
        namespaces.dedup();
        let objects = kube.snapshot(&namespaces).await.map_err(|e| {
            (
                RunStatus::Blocked,
                format!("cannot read the cluster (fail safe): {e}"),
            )
        })?;
        let refs: Vec<&Value> = objects.iter().collect();
        cluster = snapshot::from_objects(&refs)
            .map_err(|(_, e)| (RunStatus::Blocked, format!("cannot read the cluster: {e}")))?;
        let none = RecentHits::new();
        let request = Request {
            drill: &drill.name,
            seed: verdict::seed(&drill.name, x.run.scheduled.timestamp()),
            now: started.timestamp(),
            targets: &drill.targets,
            policy: &drill.safety,
            own_namespace: &x.config.namespace,
            recent_hits: x.recent_hits.as_ref().unwrap_or(&none),
        };
        let index = verdict::ClusterIndex::new(&cluster);
        let choice = firedrill_experiments::choose(&drill.fault, &index, &cluster, &request);
        drop(index);
        if let Some(blocked) = choice.verdict.blocked {
            return Err((RunStatus::Blocked, blocked));
        }
        p.record.targets = hits(&choice.verdict);
        return Ok(Chosen {
            choice,
            cluster,
            dns,
        });
    }
    Ok(Chosen {
        choice: Choice::default(),
        cluster,
        dns,
    })
}

/// The part of the cluster one fire is decided on: the targets' namespaces (and the
/// dependency's); for node faults also every node and every namespace with a pod on the nodes
/// the targets run on, so each neighbour is judged with its workload and budgets.
/// Also returns, for node faults, the nodes whose pods were all read.
async fn read_cluster(
    x: &Execution<'_>,
    kube: &Kube,
    request: &Request<'_>,
) -> Result<(Cluster, Option<Vec<String>>), String> {
    let drill = x.drill;
    let mut namespaces: Vec<String> = drill.targets.iter().map(|t| t.namespace.clone()).collect();
    if let firedrill_experiments::Settings::DependencyFailure(s) = &drill.fault {
        namespaces.extend(s.dependency.namespace().map(str::to_owned));
    }
    namespaces.sort();
    namespaces.dedup();
    let mut objects = kube
        .snapshot(&namespaces)
        .await
        .map_err(|e| e.to_string())?;
    let model = |objects: &[Value]| {
        let refs: Vec<&Value> = objects.iter().collect();
        snapshot::from_objects(&refs).map_err(|(_, e)| e)
    };
    if firedrill_experiments::reach(&drill.fault).is_none() {
        return Ok((model(&objects)?, None));
    }
    // Which nodes the targets lead to, then everything on them.
    let first = model(&objects)?;
    // The same request the fire is decided with: the same pods, so the same nodes.
    let plain = verdict::decide(&first, request);
    let mut nodes: Vec<String> = plain
        .targets
        .iter()
        .filter_map(|t| {
            first
                .pods
                .iter()
                .find(|p| p.namespace == t.namespace && p.name == t.name)
                .and_then(|p| p.node.clone())
        })
        .collect();
    nodes.sort();
    nodes.dedup();
    let extra = kube
        .nodes_and_pods_on(&nodes)
        .await
        .map_err(|e| e.to_string())?;
    let mut more: Vec<String> = extra
        .iter()
        .filter(|o| o["kind"] == "Pod")
        .filter_map(|o| o.pointer("/metadata/namespace").and_then(Value::as_str))
        .filter(|ns| !namespaces.iter().any(|n| n == ns))
        .map(str::to_owned)
        .collect();
    more.sort();
    more.dedup();
    objects.extend(extra.into_iter().filter(|o| o["kind"] == "Node"));
    objects.extend(kube.snapshot(&more).await.map_err(|e| e.to_string())?);
    Ok((model(&objects)?, Some(nodes)))
}

/// 3. The kind's steps, through the ledger (not when dry-run: then only what they would change).
async fn inject(
    x: &Execution<'_>,
    p: &mut Progress,
    chosen: Option<&Chosen>,
    started: DateTime<Utc>,
    dry_run: bool,
    stop: &watch::Receiver<bool>,
) -> Result<Option<Injection>, Ended> {
    let drill = x.drill;
    // A region failover writes its RPO markers for the lead-in first, then reads Route 53 again:
    // the fire is decided, and its steps planned, on DNS as it is when they are made.
    let failover = match (&drill.fault, dry_run) {
        (firedrill_experiments::Settings::RegionFailover(rf), false) => Some(effective(rf)),
        _ => None,
    };
    let mut writer = None;
    let mut fresh_dns = None;
    if let Some(rf) = &failover {
        writer = lead_in(x, rf, stop).await?;
        if let Some(dns) = &rf.dns {
            let facts = crate::cluster::route53::Route53::new(dns.endpoint.as_deref())
                .await
                .facts(dns)
                .await
                .map_err(|e| {
                    (
                        RunStatus::Blocked,
                        format!("cannot read Route 53 after the lead-in (fail safe; nothing injected): {e}"),
                    )
                })?;
            firedrill_experiments::region::judge(
                rf,
                Some(&facts),
                drill.safety.limits.min_healthy_regions,
            )
            .map_err(|e| {
                (
                    RunStatus::Blocked,
                    format!("after the lead-in: {e}; nothing injected"),
                )
            })?;
            fresh_dns = Some(facts);
        }
    }
    // A rehearsal (dry run) checks what the lead-in needs, writing nothing.
    if let (firedrill_experiments::Settings::RegionFailover(rf), true) = (&drill.fault, dry_run) {
        if let Some(markers) = &rf.data {
            crate::drill::region::check(markers).await.map_err(|e| {
                (
                    RunStatus::Blocked,
                    format!("the RPO markers could not be written: {e}"),
                )
            })?;
            p.evidence.data = Some("both databases answer (a dry run writes no marker)".into());
        }
    }
    let fault = match &failover {
        Some(rf) => firedrill_experiments::Settings::RegionFailover(Box::new(rf.clone())),
        None => drill.fault.clone(),
    };
    let expires = started
        + chrono::TimeDelta::from_std(crate::cluster::job::active_deadline(drill))
            .unwrap_or(chrono::TimeDelta::hours(25));
    let expires_text = expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let image = crate::cluster::job::Runtime::from_env().image;
    let scene = firedrill_experiments::Scene {
        choice: chosen.map(|c| &c.choice),
        cluster: chosen.map(|c| &c.cluster),
        image: &image,
        duration: drill.duration,
        expires: &expires_text,
        dns: fresh_dns.as_ref().or(chosen.and_then(|c| c.dns.as_ref())),
    };
    let plan = match firedrill_experiments::plan(&x.run.run, &fault, &scene) {
        Ok(plan) => plan,
        Err(e) if !dry_run => return Err((RunStatus::Error, e)),
        Err(e) => {
            p.evidence.plan = Some(e);
            firedrill_experiments::Plan::default()
        }
    };
    if dry_run && !plan.is_empty() {
        p.evidence.would_change = Some(plan.steps().map(|s| s.forward.describe()).collect());
    }
    let mut injection = match (dry_run || plan.is_empty(), x.kube) {
        (true, _) => None,
        (false, None) => {
            return Err((
                RunStatus::Blocked,
                "no cluster access: nowhere to keep the ledger, so nothing is injected".into(),
            ))
        }
        (false, Some(kube)) => {
            let mut ledger =
                Ledger::new(&x.run.run, &drill.name, drill.kind().name(), &expires_text);
            ledger.job = crate::cluster::job::current();
            ledger.started = Some(started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            // What cooldown reads back from the cluster: the workloads this run acts on.
            let hit: std::collections::BTreeSet<OwnerRef> = chosen
                .iter()
                .flat_map(|c| c.choice.verdict.targets.iter())
                .filter_map(|t| t.owner.clone())
                // Workloads a node fault takes down count as hit, and a dependency scaled to
                // zero; a proxy firedrill runs does not.
                .chain(
                    plan.affected
                        .iter()
                        .filter(|_| plan.preparatory == 0)
                        .cloned(),
                )
                .chain(plan.hits.iter().cloned())
                .collect();
            ledger.hits = hit.iter().map(ToString::to_string).collect();
            // No key, no entry: a run that cannot sign its undo records changes nothing.
            let key = crate::cluster::ledger_key::read_or_create(kube)
                .await
                .map_err(|e| {
                    (
                        RunStatus::Blocked,
                        format!("nothing injected: the run cannot sign its ledger: {e}"),
                    )
                })?;
            Some(Injection {
                cluster: KubeCluster::new(kube),
                ledger,
                key,
                protection: Protection {
                    globs: drill.safety.protected.clone(),
                    own_namespace: x.config.namespace.clone(),
                    scope: crate::cluster::ledger::scope_of(x.config),
                },
                waves: plan.waves.into_iter().collect(),
                interval: plan.interval,
                wait_for_recovery: plan.wait_for_recovery,
                preparatory: plan.preparatory,
                applied: 0,
                affected: plan.affected.into_iter().collect(),
                probes: drill.steady_state.clone(),
                endpoints: x.endpoints.clone(),
                failure: None,
                helpers: Vec::new(),
                first_fault: None,
                recovered: None,
                timeline: Vec::new(),
            })
        }
    };
    let first_wave = injection
        .as_mut()
        .and_then(|i| i.waves.pop_front())
        .unwrap_or_default();
    if injection.is_some() {
        if let Some(kube) = x.kube {
            // The last look before the first change; unreadable counts as engaged (fail safe).
            let engaged = kube
                .kill_switch()
                .await
                .unwrap_or_else(|e| Some(format!("cannot read the kill switch: {e}")));
            if let Some(reason) = engaged {
                if let Some(w) = writer.take() {
                    w.stop().await;
                }
                return Err((
                    RunStatus::Aborted,
                    format!(
                        "kill switch engaged before the fault went in: {reason}; nothing injected"
                    ),
                ));
            }
        }
    }
    if let Some(i) = injection.as_mut() {
        match i.inject(&first_wave).await {
            Ok(changes) => {
                let refused = changes.refused.as_ref().is_some_and(|r| !r.is_empty());
                p.evidence.injected = Some(changes);
                if let Some(rf) = &failover {
                    promote(x, p, i, rf, writer.take(), refused, stop).await;
                }
            }
            Err(e) => {
                // A partial injection is reverted before anything else.
                p.evidence.revert = i.revert(RevertWhen::AfterAFailedInjection).await;
                return Err((RunStatus::Error, format!("injection failed: {e}")));
            }
        }
    }

    Ok(injection)
}

/// The drill's region failover with the Route 53 endpoint it will use written into it, so that
/// the ledger names the endpoint any later revert must reach.
fn effective(
    rf: &firedrill_experiments::region::RegionFailover,
) -> firedrill_experiments::region::RegionFailover {
    let mut rf = rf.clone();
    if let Some(dns) = rf.dns.as_mut().filter(|d| d.endpoint.is_none()) {
        dns.endpoint = std::env::var(crate::cluster::route53::ENV_ENDPOINT)
            .ok()
            .filter(|e| !e.is_empty());
    }
    rf
}

/// The RPO markers' lead-in: written for `lead_in` before the first fault, watching the kill
/// switch and the stop signal. A primary that does not acknowledge them blocks the fire: the
/// failover would prove nothing.
async fn lead_in(
    x: &Execution<'_>,
    rf: &firedrill_experiments::region::RegionFailover,
    stop: &watch::Receiver<bool>,
) -> Result<Option<crate::drill::region::MarkerWriter>, Ended> {
    let Some(markers) = &rf.data else {
        return Ok(None);
    };
    let writer =
        crate::drill::region::start(markers, &x.run.run)
            .await
            .map_err(|e| {
                (
            RunStatus::Blocked,
            format!("the RPO markers cannot be written, so the failover would prove nothing: {e}"),
        )
            })?;
    let until = tokio::time::Instant::now() + markers.lead_in;
    let mut stop = stop.clone();
    let interrupted = loop {
        if tokio::time::Instant::now() >= until {
            break None;
        }
        if *stop.borrow() {
            break Some("stopped by a signal during the lead-in".to_owned());
        }
        if let Some(kube) = x.kube {
            if let Ok(Some(reason)) = kube.kill_switch().await {
                break Some(format!("kill switch engaged during the lead-in: {reason}"));
            }
        }
        let wait = x.kill_switch_every.min(until - tokio::time::Instant::now());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    };
    let written = writer.progress();
    if let Some(why) = interrupted {
        writer.stop().await;
        return Err((RunStatus::Aborted, format!("{why}; nothing injected")));
    }
    if written.acknowledged == 0 || written.failed > 0 {
        writer.stop().await;
        return Err((
            RunStatus::Blocked,
            format!(
                "the primary acknowledged {} of {} markers during the lead-in ({}): an unhealthy primary proves nothing; nothing injected",
                written.acknowledged,
                written.acknowledged + written.failed,
                written.last_error.as_deref().unwrap_or("no error")
            ),
        ));
    }
    Ok(Some(writer))
}

/// A region failover after traffic left the failed region: the markers stop, the promotion hook
/// runs, and the newest marker on the promoted side gives the RPO. A failed promotion ends the
/// run as `error` (after the revert, which sends traffic back to the primary that still is one).
async fn promote(
    x: &Execution<'_>,
    p: &mut Progress,
    i: &mut Injection,
    rf: &firedrill_experiments::region::RegionFailover,
    writer: Option<crate::drill::region::MarkerWriter>,
    refused: bool,
    stop: &watch::Receiver<bool>,
) {
    let written = match writer {
        Some(w) => Some(w.stop().await),
        None => None,
    };
    let Some(hook) = &rf.promote else {
        return;
    };
    if refused {
        i.fail("part of the failover was refused by the API server (see injected.refused): the database is not promoted".into());
        return;
    }
    // The one step nothing undoes: not after a stop or the kill switch.
    // A kill switch that cannot be read counts as engaged (fail safe).
    let engaged = match x.kube {
        Some(kube) => kube
            .kill_switch()
            .await
            .unwrap_or_else(|e| Some(format!("cannot read the kill switch: {e}"))),
        None => None,
    };
    if engaged.is_some() || *stop.borrow() {
        p.evidence.promotion = Some(
            json!({ "phase": "promote", "ok": false, "detail": "not run: the drill was stopped (kill switch or signal) before promotion" }),
        );
        return;
    }
    // Written ahead like every change, though nothing can undo it: every revert, `stop` and
    // `rollback` says the database may be promoted.
    let back = match &rf.failback {
        Some(firedrill_experiments::region::Failback::Runbook(link)) => {
            format!("fail back by {link}")
        }
        Some(firedrill_experiments::region::Failback::Hook(_)) => {
            "the drill's failback hook fails it back".to_owned()
        }
        None => "no failback is declared".to_owned(),
    };
    i.ledger.push(
        rollback::UndoRecord::External {
            system: rollback::scope::PROMOTION.into(),
            record: json!({
                "irreversible": format!("run {} promoted (or tried to promote) the database in {}; promotion cannot be undone: {back}", x.run.run, rf.to),
                "from": rf.from,
                "to": rf.to,
            }),
        },
        &i.key,
    );
    if let Err(e) = rollback::Cluster::save(&i.cluster, &mut i.ledger).await {
        i.fail(format!(
            "the ledger could not record the promotion before it ({e}): not promoted"
        ));
        return;
    }
    let context = hook_context(x, rf, "promote");
    i.event(Utc::now(), "promotion started");
    let outcome = crate::drill::region::run_hook(hook, &context, x.kube).await;
    p.evidence.promotion = Some(outcome.to_json("promote"));
    if !outcome.ok {
        i.fail(format!("the promotion hook failed: {}", outcome.detail));
        return;
    }
    p.promoted = true;
    i.event(
        Utc::now(),
        &format!("promoted in {} ({:.1}s)", rf.to, outcome.seconds),
    );
    // Recovery is the service answering through the region that took over, after promotion.
    i.recovered = None;
    if let (Some(markers), Some(written)) = (&rf.data, written) {
        match crate::drill::region::newest(markers, &x.run.run).await {
            Ok(survived) => {
                // "At least" (no marker survived) is not a measurement to pass a target with.
                p.rpo = crate::drill::region::rpo(&written, survived)
                    .filter(|(_, at_least)| !at_least)
                    .map(|(s, _)| s);
                p.evidence.rpo = Some(crate::drill::region::evidence(
                    &written,
                    survived,
                    &markers.table,
                ));
            }
            Err(e) => {
                p.evidence.rpo = Some(json!({ "error": e }));
            }
        }
    }
}

fn hook_context<'a>(
    x: &'a Execution<'_>,
    rf: &'a firedrill_experiments::region::RegionFailover,
    phase: &'a str,
) -> crate::drill::region::HookContext<'a> {
    crate::drill::region::HookContext {
        phase,
        run: &x.run.run,
        drill: &x.drill.name,
        from: &rf.from,
        to: &rf.to,
    }
}

/// Before the revert of a region failover that promoted: the failback hook, or the runbook
/// people follow (then the database stays promoted, and the record says so).
async fn failback(x: &Execution<'_>, p: &mut Progress) {
    let firedrill_experiments::Settings::RegionFailover(rf) = &x.drill.fault else {
        return;
    };
    if !p.promoted {
        return;
    }
    match &rf.failback {
        Some(firedrill_experiments::region::Failback::Hook(hook)) => {
            let context = hook_context(x, rf, "failback");
            let outcome = crate::drill::region::run_hook(hook, &context, x.kube).await;
            p.evidence.failback = Some(outcome.to_json("failback"));
            if !outcome.ok {
                p.failback_failed = Some(format!(
                    "the failback hook failed: {}; the database stays promoted in {}",
                    outcome.detail, rf.to
                ));
            }
        }
        Some(firedrill_experiments::region::Failback::Runbook(link)) => {
            p.evidence.failback = Some(
                json!({ "phase": "failback", "runbook": link, "detail": format!("the database stays promoted in {}: fail back by the runbook {link}", rf.to) }),
            );
        }
        None => {
            p.evidence.failback = Some(
                json!({ "phase": "failback", "detail": format!("no failback declared: the database stays promoted in {}", rf.to) }),
            );
        }
    }
}

/// 5. Replays the ledger; the reason when something could not be undone.
async fn revert(x: &Execution<'_>, p: &mut Progress, i: &mut Injection) -> Result<(), String> {
    p.evidence.revert = i.revert(RevertWhen::AfterTheRun).await;
    match &p.evidence.revert {
        Revert::Failed { error, .. } => Err(format!(
            "REVERT FAILED: {error}; the ledger {} stays open: firedrill rollback --run {}",
            i.ledger.name(),
            x.run.run
        )),
        _ => Ok(()),
    }
}

/// 6. Measurements, the success criteria and the outcome.
fn judge(
    x: &Execution<'_>,
    mut p: Progress,
    observed: Observed,
    samples: &Samples,
    rto: Option<f64>,
    dry_run: bool,
) -> RunRecord {
    let drill = x.drill;
    let m = samples.measure();
    p.record.measurements = Measurements {
        rto_seconds: rto,
        rpo_seconds: p.rpo,
        availability: m.availability,
        latency_p50_seconds: m.p50.map(|d| d.as_secs_f64()),
        latency_p95_seconds: m.p95.map(|d| d.as_secs_f64()),
        latency_p99_seconds: m.p99.map(|d| d.as_secs_f64()),
        requests: (m.requests > 0).then_some(m.requests),
    };
    p.evidence.samples = Some(crate::run::Samples {
        sent: json!(samples.sent),
        available: json!(samples.available),
        answered: json!(samples.latencies.len()),
    });
    let mut misses = drill.success.misses(&m);
    if let (Some(want), false) = (drill.success.rto, dry_run) {
        match rto {
            Some(got) if got <= want.as_secs_f64() => {}
            Some(got) => misses.push(format!(
                "recovery took {got:.1}s, more than the RTO of {}",
                crate::duration::format(want)
            )),
            None => misses.push(format!(
                "the system did not recover within the drill (workloads ready as desired and probes passing; RTO {})",
                crate::duration::format(want)
            )),
        }
    }
    if let (Some(want), false) = (drill.success.rpo, dry_run) {
        match p.rpo {
            Some(got) if got <= want.as_secs_f64() => {}
            Some(got) => misses.push(format!(
                "the failover lost {got:.1}s of acknowledged writes, more than the RPO of {}",
                crate::duration::format(want)
            )),
            None => misses.push(format!(
                "the RPO could not be measured (see the rpo evidence; RPO {})",
                crate::duration::format(want)
            )),
        }
    }
    let cause = match &observed {
        Observed::Breached(_) => Some(crate::run::ABORT_CONDITION),
        Observed::Stopped => Some("signal"),
        Observed::KillSwitch(_) => Some("kill-switch"),
        Observed::Completed => None,
    };
    if let Some(cause) = cause {
        p.evidence.abort = Some(crate::run::AbortNote {
            cause: Some(cause.to_owned()),
        });
    }
    match observed {
        Observed::Breached(reason) => p.finish(
            RunStatus::Aborted,
            Some(format!("abort condition breached: {reason}")),
        ),
        Observed::Stopped => p.finish(
            RunStatus::Aborted,
            Some("stopped by a signal before the duration ended".into()),
        ),
        Observed::KillSwitch(reason) => p.finish(RunStatus::Aborted, Some(reason)),
        Observed::Completed if dry_run => {
            let judged = if misses.is_empty() {
                "criteria met".to_owned()
            } else {
                misses.join("; ")
            };
            p.finish(
                RunStatus::DryRun,
                Some(format!("dry run, nothing injected; {judged}")),
            )
        }
        Observed::Completed if misses.is_empty() => p.finish(RunStatus::Passed, None),
        Observed::Completed => p.finish(RunStatus::Failed, Some(misses.join("; "))),
    }
}

enum Observed {
    Completed,
    Breached(String),
    Stopped,
    KillSwitch(String),
}

/// Resolves when the kill switch is engaged, or cannot be read several times in a row; never
/// without cluster access.
async fn kill_switch_engaged(kube: Option<&Kube>, every: Duration) -> String {
    let Some(kube) = kube else {
        return std::future::pending().await;
    };
    let mut failures = 0;
    loop {
        tokio::time::sleep(every).await;
        match kube.kill_switch().await {
            Ok(None) => failures = 0,
            Ok(Some(reason)) => return format!("kill switch engaged during the run: {reason}"),
            Err(e) => {
                failures += 1;
                if failures >= KILL_SWITCH_READ_FAILURES {
                    return format!("the kill switch could not be read {failures} times in a row (fail safe): {e}");
                }
            }
        }
    }
}

async fn observe(
    x: &Execution<'_>,
    mut stop: watch::Receiver<bool>,
    injection: Option<&mut Injection>,
) -> (Observed, Samples) {
    let duration = x.drill.duration;
    let (end_sampling, sampling_stopped) = watch::channel(false);
    let mut samplers = tokio::task::JoinSet::new();
    for probe in &x.drill.steady_state {
        let (probe, endpoints, stopped) =
            (probe.clone(), x.endpoints.clone(), sampling_stopped.clone());
        samplers.spawn(async move { gate::sample(&probe, &endpoints, duration, stopped).await });
    }
    // Recovery is watched, and later waves applied, while the drill is observed.
    let waves = async {
        match (injection, x.kube) {
            (Some(i), Some(kube)) => i.waves(kube, x.kill_switch_every).await,
            _ => std::future::pending().await,
        }
    };
    let observed = tokio::select! {
        () = waves => Observed::Completed,
        result = gate::watch(&x.drill.abort_when, x.endpoints, duration) => match result {
            WatchResult::Completed => Observed::Completed,
            WatchResult::Breached(reason) => Observed::Breached(reason),
        },
        _ = async { while !*stop.borrow() { if stop.changed().await.is_err() { std::future::pending::<()>().await } } } => Observed::Stopped,
        reason = kill_switch_engaged(x.kube, x.kill_switch_every) => Observed::KillSwitch(reason),
    };
    let _ = end_sampling.send(true);
    let mut all = Samples::default();
    while let Some(joined) = samplers.join_next().await {
        if let Ok(s) = joined {
            all.sent += s.sent;
            all.available += s.available;
            all.latencies.extend(s.latencies);
        }
    }
    (observed, all)
}

/// Where a finished record goes.
pub struct Sinks<'a> {
    pub store: Option<&'a Store>,
    pub kube: Option<&'a Kube>,
    /// Where the record is kept when neither the store nor the cluster takes it.
    pub spool: Option<&'a Spool>,
    pub pushgateway: Option<&'a url::Url>,
    pub client: &'a reqwest::Client,
    pub push_retry: pushgateway::Retry,
}

/// Where a finished record was kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kept {
    Store,
    /// In a result ConfigMap, for the scheduler to backfill.
    Cluster,
    /// In a spool file, replayed into the store by the next start that reaches it.
    Spool(std::path::PathBuf),
    /// Not in the history: its id already names another run in the store. Kept in a spool file
    /// marked `.conflict`, which is never replayed; a person decides.
    Conflict(std::path::PathBuf),
    /// Nowhere but the process's output: said loudly, in the log and the exit code.
    Nowhere,
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kept::Store => f.write_str("store"),
            Kept::Cluster => f.write_str("cluster"),
            Kept::Spool(path) => write!(f, "spool {}", path.display()),
            Kept::Conflict(path) => write!(f, "conflict {}", path.display()),
            Kept::Nowhere => f.write_str("nowhere"),
        }
    }
}

/// Keeps a finished run's record: the store (retried for a bounded time, not past a signal),
/// else a result ConfigMap for the scheduler, else a spool file in the data directory. Each fallback
/// is logged with the reason the one before failed; losing the record is an error.
pub async fn keep(run: &RunRecord, sinks: &Sinks<'_>, stop: &watch::Receiver<bool>) -> Kept {
    let mut stop = stop.clone();
    let stored = match sinks.store {
        // Stopping (a first SIGTERM): one attempt, no retries.
        Some(store) if *stop.borrow() => {
            tokio::time::timeout(STOPPING_BUDGET, store.record_run(run))
                .await
                .unwrap_or_else(|_| Err(stopping_timeout()))
        }
        Some(store) => tokio::select! {
            result = store.record_run_with_retry(run) => result,
            () = pushgateway::stopping(&mut stop) => {
                tokio::time::timeout(STOPPING_BUDGET, store.record_run(run))
                    .await
                    .unwrap_or_else(|_| Err(stopping_timeout()))
            }
        },
        None => Err(StoreError::Unavailable {
            why: "it could not be opened (see the log above)".into(),
        }),
    };
    let store_error = match stored {
        Ok(()) => return Kept::Store,
        // Another run's record under this id: never merged, never retried. Kept for a person.
        Err(e @ StoreError::Conflict { .. }) => {
            let kept = sinks.spool.map(|spool| spool.write(run, true));
            tracing::error!(run = %run.id, error = %e, kept = ?kept.as_ref().map(|k| k.as_ref().map(|p| p.display().to_string())),
                "RECORD NOT IN THE HISTORY: its run id already names another run");
            return match kept {
                Some(Ok(path)) => Kept::Conflict(path),
                _ => Kept::Nowhere,
            };
        }
        Err(e) => e.to_string(),
    };
    let cluster_error = match sinks.kube {
        Some(kube) => match tokio::time::timeout(CLUSTER_BUDGET, kube.write_result(run)).await {
            Ok(Ok(())) => {
                tracing::warn!(run = %run.id, error = %store_error, "store unavailable; the record is left in the cluster for the scheduler");
                return Kept::Cluster;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {CLUSTER_BUDGET:?}"),
        },
        None => "no cluster access".to_owned(),
    };
    let spool_error = match sinks.spool.map(|spool| spool.write(run, false)) {
        Some(Ok(path)) => {
            tracing::warn!(run = %run.id, store_error = %store_error, cluster_error = %cluster_error, path = %path.display(),
                "neither the store nor the cluster took the record; it is spooled and goes into the store at the next start that reaches it");
            return Kept::Spool(path);
        }
        Some(Err(e)) => e.to_string(),
        None => "no spool".to_owned(),
    };
    tracing::error!(run = %run.id, store_error = %store_error, cluster_error = %cluster_error, spool_error = %spool_error,
        "RECORD NOT KEPT: the store, the cluster and the spool all failed; the record is only on stdout");
    Kept::Nowhere
}

/// The store's one attempt while stopping took longer than [`STOPPING_BUDGET`].
fn stopping_timeout() -> StoreError {
    StoreError::Timeout {
        what: "the one attempt to keep the record while stopping",
        waited: STOPPING_BUDGET,
    }
}

/// How long a stopping process gives the store for its one attempt.
const STOPPING_BUDGET: Duration = Duration::from_secs(10);
/// How long a record, an Event or a result ConfigMap may wait on the API server.
const CLUSTER_BUDGET: Duration = Duration::from_secs(10);

/// Tells the world a run ended: a Kubernetes Event on its Job (what became of it is then added
/// to the record where it was kept) and the Pushgateway (bounded, never past a signal; an outage
/// never fails the drill).
pub async fn announce(
    run: &RunRecord,
    kept: &Kept,
    sinks: &Sinks<'_>,
    stop: &watch::Receiver<bool>,
) {
    let event = match sinks.kube {
        Some(kube) => {
            let warning = !matches!(run.status, RunStatus::Passed | RunStatus::DryRun);
            let message = format!(
                "{}: {}",
                run.status,
                run.reason.as_deref().unwrap_or("all criteria met")
            );
            let mut stop = stop.clone();
            let reason = drill_event_reason(run.status);
            let event = tokio::time::timeout(
                CLUSTER_BUDGET,
                kube.event(&run.id, warning, &reason, &message),
            );
            let not_created = |why: String| {
                tracing::warn!(run = %run.id, "no Event recorded: {why}");
                EventNote {
                    created: None,
                    not_created: Some(why),
                }
            };
            tokio::select! {
                result = event => match result {
                    Ok(Ok(())) => EventNote {
                        created: Some(format!(
                            "Job/{}/{}: {} {reason}: {message}",
                            kube.namespace(),
                            run.id,
                            if warning { "Warning" } else { "Normal" },
                        )),
                        not_created: None,
                    },
                    Ok(Err(e)) => not_created(e.to_string()),
                    Err(_) => not_created(format!("no answer within {CLUSTER_BUDGET:?}")),
                },
                () = pushgateway::stopping(&mut stop) => not_created("stopping".to_owned()),
            }
        }
        None => EventNote {
            created: None,
            not_created: Some("no cluster access".to_owned()),
        },
    };
    note_event(run, event, kept, sinks).await;
    if let Some(base) = sinks.pushgateway {
        // The last success is the history's; a store that cannot say leaves it out of the push.
        let last_success = match sinks.store {
            Some(store) if run.status != RunStatus::Passed => {
                match tokio::time::timeout(CLUSTER_BUDGET, store.last_success(&run.drill)).await {
                    Ok(Ok(at)) => at,
                    Ok(Err(e)) => {
                        tracing::warn!(run = %run.id, error = %e, "last success unknown: not pushed");
                        None
                    }
                    Err(_) => None,
                }
            }
            _ => None,
        };
        if let Err(e) = pushgateway::push(
            sinks.client,
            base,
            run,
            last_success,
            sinks.push_retry,
            stop.clone(),
        )
        .await
        {
            tracing::warn!(run = %run.id, error = %e, "results not pushed");
        }
    }
}

/// Adds what became of the run's Event to its record, where the record was kept: the store,
/// its result ConfigMap, or its spool file. A record kept nowhere, or set aside as a conflict,
/// is left as it is; one that cannot be updated keeps no word of the Event (a report says
/// "not recorded"), never a guess.
async fn note_event(run: &RunRecord, event: EventNote, kept: &Kept, sinks: &Sinks<'_>) {
    let mut noted = run.clone();
    noted.evidence.event = Some(event);
    let updated = match kept {
        Kept::Store => match sinks.store {
            Some(store) => tokio::time::timeout(CLUSTER_BUDGET, store.record_run(&noted))
                .await
                .map_err(|_| format!("no answer within {CLUSTER_BUDGET:?}"))
                .and_then(|r| r.map_err(|e| e.to_string())),
            None => return,
        },
        Kept::Cluster => match sinks.kube {
            Some(kube) => tokio::time::timeout(CLUSTER_BUDGET, kube.write_result(&noted))
                .await
                .map_err(|_| format!("no answer within {CLUSTER_BUDGET:?}"))
                .and_then(|r| r.map_err(|e| e.to_string())),
            None => return,
        },
        Kept::Spool(path) => match sinks.spool {
            Some(spool) => spool.replace(path, &noted).map_err(|e| e.to_string()),
            None => return,
        },
        Kept::Conflict(_) | Kept::Nowhere => return,
    };
    if let Err(e) = updated {
        tracing::warn!(run = %run.id, error = %e, "what became of the Event is not in the record");
    }
}

/// [`keep`], then [`announce`].
pub async fn record(run: &RunRecord, sinks: &Sinks<'_>, stop: &watch::Receiver<bool>) -> Kept {
    let kept = keep(run, sinks, stop).await;
    announce(run, &kept, sinks, stop).await;
    kept
}

/// The reason of the Event a run leaves on its Job when it ends: `DrillPassed`, `DrillDryRun`.
pub fn drill_event_reason(status: RunStatus) -> String {
    format!("Drill{}", title(status.as_str()))
}

fn title(status: &str) -> String {
    status
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The scheduled instant to assume for a run started by hand.
pub fn now_or(scheduled: Option<DateTime<Utc>>) -> DateTime<Utc> {
    scheduled.unwrap_or_else(Utc::now)
}

/// How long an execution may take at most, for callers that wait on one.
pub fn budget(drill: &Drill) -> Duration {
    crate::cluster::job::active_deadline(drill)
}
