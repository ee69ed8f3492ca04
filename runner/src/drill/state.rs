//! A run in progress, as the executor and each kind's hooks share it: what one execution needs
//! (`Execution`), what it has found and recorded so far (`Progress`), what the guard chose
//! (`Chosen`), and the fault in place with its ledger (`Injection`: applying waves, watching
//! recovery, reverting).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use firedrill_experiments::Choice;
use firedrill_rollback::{self as rollback, Ledger, Step};
use firedrill_safety::cluster::{Cluster, OwnerRef};
use firedrill_safety::policy::Policy;
use firedrill_safety::scenario::Held;
use firedrill_safety::verdict::{self, RecentHits, Request};
use futures::{FutureExt, StreamExt};
use serde_json::Value;

use crate::cluster::job::RunRef;
use crate::cluster::kubernetes::Kube;
use crate::cluster::ledger::{KubeCluster, Protection};
use crate::cluster::snapshot;
use crate::config::{Config, Drill};
use crate::drill::gate::{self, Endpoints};

use super::effect::{Effect, NotInEffect};
use crate::run::{
    EffectNote, Evidence, Hit, Injected, Measurements, Moment, Revert, RevertWhen, RunRecord,
    RunStatus,
};

pub(super) use crate::cluster::snapshot::ReadError;

/// A fault in place: the run's ledger and where to undo it. Built only when a kind planned
/// steps and the run is armed.
pub(super) struct Injection {
    pub(super) cluster: KubeCluster,
    pub(super) ledger: Ledger,
    /// Signs every entry this run writes, and verifies them on its own revert.
    pub(super) key: rollback::Key,
    pub(super) protection: Protection,
    /// Waves not applied yet, and the pause before the next.
    pub(super) waves: std::collections::VecDeque<Vec<Step>>,
    pub(super) interval: Duration,
    /// The next wave waits for recovery (pod-kill's waves, the proxy before a selector swap).
    pub(super) wait_for_recovery: bool,
    /// Leading waves that only prepare: the fault starts after them.
    pub(super) preparatory: usize,
    /// Waves applied so far.
    pub(super) applied: usize,
    /// The workloads the fault takes down: recovery waits for them.
    pub(super) affected: std::collections::BTreeSet<OwnerRef>,
    /// Recovery also waits for the drill's steady-state probes to answer as expected.
    pub(super) probes: Vec<gate::SteadyProbe>,
    pub(super) endpoints: Endpoints,
    /// Why the fault did not go in as planned (a wave failed, a helper failed, preparation
    /// timed out): the run ends as `error`, after the revert.
    pub(super) failure: Option<String>,
    /// The helper pods a wave created (container-kill's, network-degrade's): a failed one fails
    /// the run.
    pub(super) helpers: Vec<rollback::ObjectRef>,
    /// Every helper the plan creates and what it acts on.
    pub(super) planned_helpers: Vec<firedrill_experiments::Helper>,
    /// When the first fault was made, and when everything it hit was back.
    pub(super) first_fault: Option<DateTime<Utc>>,
    pub(super) recovered: Option<DateTime<Utc>>,
    /// What happened when, for the record.
    pub(super) timeline: Vec<Moment>,
    /// What the fault must be seen to do; `None`: the kind has no effect check yet.
    pub(super) effect: Option<Effect>,
    /// Why the fault is not in effect (not seen by its deadline): the run ends `ineffective`,
    /// after the revert.
    pub(super) ineffective: Option<String>,
    /// A scenario's step says when its workloads are back, or down again.
    pub(super) events: Option<StepEvents>,
}

impl Injection {
    /// Applies one wave through the ledger (each undo record written before its change).
    /// Stops at the first step that fails; what was applied is in the ledger, for the revert.
    pub(super) async fn inject(
        &mut self,
        steps: &[Step],
    ) -> Result<Injected, rollback::ApplyError> {
        // The fault starts when its first change is asked for (a DNS change waits until it is
        // in sync before `apply` returns).
        let began = Utc::now();
        let guard = |r: &rollback::ObjectRef| self.protection.check(r);
        let trust = self.protection.trust(&guard, Some(&self.key));
        let applied = rollback::apply(&self.cluster, &mut self.ledger, steps, &trust).await?;
        self.applied += 1;
        let now = Utc::now();
        if !applied.made.is_empty() && self.applied > self.preparatory {
            self.first_fault.get_or_insert(began);
            self.recovered = None;
            if let Some(effect) = self.effect.as_mut() {
                effect.began(began);
            }
        }
        // What is expected of each object a step changed (not one the API server refused) is
        // due from now.
        let refused: BTreeSet<&str> = applied.refused.iter().map(|(s, _)| s.as_str()).collect();
        for step in steps {
            if refused.contains(step.forward.describe().as_str()) {
                continue;
            }
            let acts_on = self.helper_made_by(step).map(|h| h.acts_on.clone());
            for target in step.forward.target().into_iter().chain(acts_on) {
                if let Some(effect) = self.effect.as_mut() {
                    effect.acted_on(&target, began);
                }
            }
        }
        // Each object the drill touched says so, for `kubectl describe`: what a step changes,
        // and what a helper it creates acts on (the pod whose container it kills, the node it
        // loads).
        // A helper that ends in failure fails the run: it is watched from here on.
        let mut watched = Vec::new();
        for step in steps {
            let helper = self.helper_made_by(step);
            watched.extend(helper.filter(|h| h.fails_run).map(|h| h.pod.clone()));
            let acts_on = helper.map(|h| h.acts_on.clone());
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
        self.helpers.extend(watched);
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

    /// Tells the scenario running this step (if any) what became of it.
    pub(super) fn tell(&self, event: StepEvent) {
        if let Some(events) = &self.events {
            // The scenario outlives its steps; a send to one that ended changes nothing.
            let _ = events.send(event);
        }
    }

    /// The planned helper a step creates, if it creates one.
    fn helper_made_by(&self, step: &Step) -> Option<&firedrill_experiments::Helper> {
        let rollback::Operation::Create { object } = &step.forward else {
            return None;
        };
        let made = rollback::ObjectRef::of(object)?;
        self.planned_helpers.iter().find(|h| h.pod == made)
    }

    pub(super) fn event(&mut self, at: DateTime<Utc>, what: &str) {
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
    pub(super) fn namespaces(&self) -> Vec<String> {
        let unique: std::collections::BTreeSet<&str> =
            self.affected.iter().map(|o| o.namespace.as_str()).collect();
        unique.into_iter().map(str::to_owned).collect()
    }

    /// Whether the system is back: every affected workload at its desired ready replicas, and
    /// every steady-state probe answering as expected right now. `Ok(None)`: yes; `Ok(Some)`:
    /// what is still down.
    pub(super) async fn still_down(&self, kube: &Kube) -> Result<Option<String>, ReadError> {
        if !self.affected.is_empty() {
            let objects = kube.snapshot(&self.namespaces()).await?;
            let refs: Vec<&Value> = objects.iter().collect();
            let cluster = snapshot::from_objects(&refs)?;
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
    pub(super) async fn waves(&mut self, kube: &Kube, every: Duration) {
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
            if let Err(why) = self.look_at_the_effect(kube).await {
                self.not_in_effect(why.to_string());
                return;
            }
            // Nothing recovers from a fault not yet seen to take effect.
            let in_effect = self.effect.as_ref().is_none_or(Effect::settled);
            if (self.first_fault.is_some() && in_effect) || preparing {
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
                        self.tell(StepEvent::Recovered { at: now });
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
                        self.tell(StepEvent::Down { at: now });
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

    /// Looks at what is due of the effect and not yet seen; `Err`: something was not seen by
    /// its deadline. A container-kill's recovery clock starts when the container was killed.
    pub(super) async fn look_at_the_effect(&mut self, kube: &Kube) -> Result<(), NotInEffect> {
        let Some(effect) = self.effect.as_mut() else {
            return Ok(());
        };
        if effect.settled() {
            return Ok(());
        }
        effect.look(kube, Utc::now()).await?;
        if effect.settled() {
            if let (Some(killed), Some(first)) = (effect.killed_at(), self.first_fault) {
                // The kubelet's time is in whole seconds: never before the helper was made.
                self.first_fault = Some(killed.max(first).min(Utc::now()));
            }
        }
        Ok(())
    }

    /// The fault did not take effect: said on the timeline; the run ends `ineffective`.
    pub(super) fn not_in_effect(&mut self, why: String) {
        tracing::warn!(reason = %why, "the fault did not take effect; reverting");
        self.event(Utc::now(), &format!("not in effect: {why}"));
        self.waves.clear();
        self.ineffective = Some(why);
    }

    /// At the end of the drill: one last look, then what is still unseen ends the run
    /// `ineffective`. The effect's record, in every case.
    pub(super) async fn effect_at_end(&mut self, kube: Option<&Kube>, kind: &str) -> EffectNote {
        let Some(effect) = self.effect.as_mut() else {
            return EffectNote::not_checked(kind);
        };
        if let (Some(kube), None, None) = (kube, &self.failure, &self.ineffective) {
            // Past the deadline or not: the drill is over, what is unseen now was not in effect.
            let _ = effect.look(kube, Utc::now()).await;
            if let Some(why) = effect.unseen_at_end() {
                let note = effect.note();
                self.not_in_effect(why.to_string());
                return note;
            }
        }
        effect.note()
    }

    pub(super) fn fail(&mut self, why: String) {
        tracing::error!(reason = %why, "the fault did not go in as planned; reverting");
        self.event(Utc::now(), &format!("failed: {why}"));
        self.waves.clear();
        self.failure = Some(why);
    }

    /// A helper pod that ended in failure (it found nothing to kill, or could not run), said.
    pub(super) async fn failed_helper(&self, kube: &Kube) -> Option<String> {
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
    pub(super) async fn revert(&mut self, when: RevertWhen) -> Revert {
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

/// How long what a fault needs first (the fault proxy) may take to be ready.
pub(super) const PREPARE_WITHIN: Duration = Duration::from_secs(120);

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
    /// What the earlier steps of a scenario hold down while this step is judged (empty for a
    /// drill of its own): the guard decides on the cluster as they left it.
    pub held: Held,
    /// Where a scenario's step says it injected and recovered; `None` for a drill of its own.
    pub events: Option<StepEvents>,
}

/// What a step of a scenario tells the scenario while it runs (`drill::scenario`).
#[derive(Clone, Debug, PartialEq)]
pub enum StepEvent {
    /// Its first wave is in (at its first fault): the pods it took, cut off or loads, and how
    /// many targets it hit, for the steps judged after it.
    Injected { at: DateTime<Utc>, held: Held },
    /// Its workloads are back as desired.
    Recovered { at: DateTime<Utc> },
    /// They went down again after recovering.
    Down { at: DateTime<Utc> },
}

/// The sending end of a step's events.
pub type StepEvents = tokio::sync::mpsc::UnboundedSender<StepEvent>;

impl Execution<'_> {
    /// What the guard is asked for this fire, started at `started`, with the workloads earlier
    /// runs hit.
    /// `policy` is the drill's, less what a scenario's earlier steps hold ([`Execution::judged`]).
    pub(super) fn request<'r>(
        &'r self,
        started: DateTime<Utc>,
        recent_hits: &'r RecentHits,
        policy: &'r Policy,
    ) -> Request<'r> {
        let drill = self.drill;
        Request {
            drill: &drill.name,
            seed: verdict::seed(&drill.name, self.run.scheduled.timestamp()),
            now: started.timestamp(),
            targets: &drill.targets,
            policy,
            own_namespace: &self.config.namespace,
            recent_hits,
        }
    }

    /// The cluster and policy the guard decides on when a scenario's earlier steps hold
    /// something: what they hold counted as down, their hits off `max_targets`. `None`: the
    /// cluster as read and the drill's policy (a drill of its own, or nothing held).
    pub(super) fn judged(&self, cluster: &Cluster) -> Option<(Cluster, Policy)> {
        (!self.held.is_empty()).then(|| {
            firedrill_safety::scenario::judged_after(cluster, &self.drill.safety, &self.held)
        })
    }
}

/// The on-call engineer's switch must stop a running drill within seconds.
pub const KILL_SWITCH_EVERY: Duration = Duration::from_secs(2);
/// How long a change to an affected pod settles before the system is looked at again: at most
/// four looks a second however busy the namespace, each within a quarter second of the change.
pub(super) const SETTLE: Duration = Duration::from_millis(250);
/// Reads of the kill switch that may fail in a row before the drill stops anyway (fail safe).
pub(super) const KILL_SWITCH_READ_FAILURES: u32 = 3;

pub(super) struct Progress {
    pub(super) record: RunRecord,
    pub(super) evidence: Evidence,
    /// Data loss measured by a region failover's markers.
    pub(super) rpo: Option<f64>,
    /// A region failover promoted the database (so its failback is due).
    pub(super) promoted: bool,
    /// Why a region failover's failback hook failed.
    pub(super) failback_failed: Option<String>,
}

impl Progress {
    pub(super) fn finish(mut self, status: RunStatus, reason: Option<String>) -> RunRecord {
        self.record.status = status;
        self.record.reason = reason;
        self.record.ended = Some(Utc::now());
        self.record.evidence = Box::new(self.evidence);
        self.record
    }
}

/// Why a run ended before its fault was in place: its status and the reason.
pub(super) type Ended = (RunStatus, String);

/// What a run records as hit: the pods the verdict chose.
pub(super) fn hits(verdict: &verdict::Verdict) -> Vec<Hit> {
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
pub(super) struct Chosen {
    pub(super) choice: Choice,
    pub(super) cluster: Cluster,
    /// Route 53 as read before the fire (region failover).
    pub(super) dns: Option<firedrill_experiments::region::DnsFacts>,
}

impl Progress {
    pub(super) fn new(x: &Execution<'_>, started: DateTime<Utc>, dry_run: bool) -> Self {
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
                evidence: Box::new(Evidence::new()),
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

/// What a kind's `prepare` hands the planner: settings to plan with instead of the drill's, and
/// Route 53 as read after a lead-in.
#[derive(Default)]
pub(super) struct Prepared {
    pub(super) fault: Option<firedrill_experiments::Settings>,
    pub(super) dns: Option<firedrill_experiments::region::DnsFacts>,
}
