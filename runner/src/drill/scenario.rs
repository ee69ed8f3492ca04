//! `kind: scenario` (#26 items 1 and 2): a game day's faults as the steps of one run.
//!
//! Preflight runs once, for the scenario. Each step then runs through the same pipeline as any
//! drill ([`executor::execute`]), in this process, as a run of its own (`<run>-<step>`, so its
//! ledger is an ordinary ledger that `stop`, `rollback` and the sweeper revert like any other):
//! the scenario's drill with the step's kind, fault and targets, and the scenario's safety. A
//! step starts when every `after:` holds and its `delay:` passed (steps ready together run in
//! parallel); its guard sees what the steps before it hold ([`Execution::held`]). Meanwhile the
//! scenario's own abort conditions and probes are watched for its duration. At the end (or an
//! abort, a signal, a required step refused) the running steps are stopped **newest first**,
//! each finishing its revert before the next is told to stop. One record: each step's outcome
//! and evidence in `evidence.steps`, the scenario's RTO (its first fault to every step back and
//! every probe passing) in `measurements.rto_seconds`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use firedrill_experiments::{After, Figure, Scenario, ScenarioStep};
use firedrill_safety::scenario::Held;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, watch};

use crate::cluster::job::RunRef;
use crate::config::Drill;
use crate::run::{Moment, Revert, RunRecord, RunStatus, StepNote};

use super::executor::{self, Observed};
use super::state::{Execution, Progress, StepEvent};

/// How often the scenario looks at its steps (their events carry their own instants, so this
/// rounds no measurement).
const TICK: Duration = Duration::from_millis(20);
/// How often the scenario's probes are asked, once every step is back, for its RTO.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// A step's own run lasts this much longer than the scenario, so that it never ends on its own
/// before the scenario stops it (newest first).
const STEP_OUTLASTS: Duration = Duration::from_secs(30);

/// Runs a scenario drill: preflight once, its steps in order, its observation, the record.
pub(super) async fn execute(
    x: &Execution<'_>,
    scenario: &Scenario,
    stop: watch::Receiver<bool>,
) -> RunRecord {
    let dry_run = !x.config.armed || x.run.dry_run;
    let started = Utc::now();
    let mut p = Progress::new(x, started, dry_run);
    tracing::info!(drill = %x.drill.name, run = %x.run.run, steps = scenario.steps.len(), dry_run, "scenario started");
    if let Err((status, reason)) = executor::preflight(x, &mut p, started).await {
        return p.finish(status, Some(reason));
    }
    let drills: Vec<Drill> = scenario
        .steps
        .iter()
        .map(|s| step_drill(x.drill, s))
        .collect();
    let runs: Vec<RunRef> = scenario
        .steps
        .iter()
        .map(|s| RunRef {
            drill: x.run.drill.clone(),
            run: step_run(&x.run.run, &s.name),
            scheduled: x.run.scheduled,
            dry_run: x.run.dry_run,
        })
        .collect();
    let mut conductor = Conductor {
        steps: scenario.steps.iter().map(|_| Step::default()).collect(),
        timeline: Vec::new(),
        scenario_back: None,
        next_probe: None,
    };
    // The observation stops when the steps end early (a refusal, a signal); the steps wind down
    // when the observation ends (its duration, an abort).
    let (halt, halted) = watch::channel(false);
    let (over_tx, over) = watch::channel(false);
    let conducted = conductor.conduct(
        x,
        &scenario.steps,
        &drills,
        &runs,
        stop.clone(),
        over,
        &halt,
    );
    let observation = async {
        let out = executor::observe(x, halted, None).await;
        let _ = over_tx.send(true);
        out
    };
    let (end, (observed, samples)) = tokio::join!(conducted, observation);
    conductor.finish(x, scenario, p, end, observed, &samples, dry_run)
}

/// A step's run id: its ledger is `firedrill-ledger-<run>-<step>`.
pub fn step_run(run: &str, step: &str) -> String {
    format!("{run}-{step}")
}

/// The drill a step runs as: the scenario's (its name, so labels and cooldown are the
/// scenario's; its schedule and safety), with the step's kind, fault and targets, and no
/// preflight, probes, abort conditions or success of its own (the scenario's judge the whole).
fn step_drill(scenario: &Drill, step: &ScenarioStep) -> Drill {
    Drill {
        name: scenario.name.clone(),
        schedule: scenario.schedule.clone(),
        timezone: scenario.timezone,
        duration: scenario.duration + STEP_OUTLASTS,
        deadline: scenario.deadline,
        on_blackout: scenario.on_blackout,
        targets: step.targets.clone(),
        fault: step.fault.clone(),
        safety: scenario.safety.clone(),
        preflight: Vec::new(),
        abort_when: Vec::new(),
        steady_state: Vec::new(),
        success: Default::default(),
        notify: Vec::new(),
        announce: Duration::ZERO,
        line: step.line,
    }
}

/// A step's run in progress, boxed: the steps run side by side in one task.
type StepRun<'a> = Pin<Box<dyn Future<Output = (usize, RunRecord)> + Send + 'a>>;

/// Starts step `i`'s own run, judged after what `held` holds, telling `events`.
fn start<'a>(
    x: &Execution<'a>,
    drill: &'a Drill,
    run: &'a RunRef,
    i: usize,
    held: Held,
    events: mpsc::UnboundedSender<StepEvent>,
    stop: watch::Receiver<bool>,
) -> StepRun<'a> {
    let (config, kube, endpoints) = (x.config, x.kube, x.endpoints);
    let (kill_switch_every, recent_hits) = (x.kill_switch_every, x.recent_hits.clone());
    Box::pin(async move {
        let step = Execution {
            config,
            drill,
            run,
            kube,
            endpoints,
            kill_switch_every,
            recent_hits,
            held,
            events: Some(events),
        };
        (i, executor::execute(&step, stop).await)
    })
}

/// What the scenario knows of one step.
#[derive(Default)]
struct Step {
    started: Option<DateTime<Utc>>,
    /// Its first fault.
    injected: Option<DateTime<Utc>>,
    /// When it first recovered (what `after: recovered` and `when:` read).
    first_recovered: Option<DateTime<Utc>>,
    /// When it last recovered; `None` while it is down.
    recovered: Option<DateTime<Utc>>,
    held: Held,
    stop: Option<watch::Sender<bool>>,
    events: Option<mpsc::UnboundedReceiver<StepEvent>>,
    /// Its own run's record, once it ended.
    record: Option<RunRecord>,
    /// Why it was skipped (`when:` did not hold, or what it waits for never came).
    skipped: Option<String>,
}

impl Step {
    fn waiting(&self) -> bool {
        self.started.is_none() && self.skipped.is_none()
    }

    fn running(&self) -> bool {
        self.started.is_some() && self.record.is_none()
    }

    /// Started, and neither in nor ended: its guard has not said what it takes.
    fn choosing(&self) -> bool {
        self.running() && self.injected.is_none()
    }

    fn done(&self) -> bool {
        self.record.is_some() || self.skipped.is_some()
    }

    /// Its RTO as the scenario saw it (first fault to first recovery).
    fn rto(&self) -> Option<Duration> {
        let (injected, back) = (self.injected?, self.first_recovered?);
        (back - injected).to_std().ok()
    }
}

/// How the steps ended.
enum End {
    /// The scenario's observation ended (its duration, an abort condition, the kill switch).
    Over,
    /// A signal asked the scenario to stop.
    Signal,
    /// A required step was refused (blocked): which, and why.
    Refused { step: usize, why: String },
    /// A step ended in error (its injection or its revert failed, optional or not): the
    /// scenario goes no further (fail safe), and the record says the step's error.
    Failed { step: usize },
}

/// Runs the steps and keeps what the scenario records of them.
struct Conductor {
    steps: Vec<Step>,
    /// The scenario's own timeline: each step started, injected, recovered, stopped, ended.
    timeline: Vec<(DateTime<Utc>, String)>,
    /// Every step back and every probe passing (the end of the scenario's RTO).
    scenario_back: Option<DateTime<Utc>>,
    next_probe: Option<tokio::time::Instant>,
}

impl Conductor {
    #[allow(clippy::too_many_arguments)]
    async fn conduct<'a>(
        &mut self,
        x: &Execution<'a>,
        plan: &[ScenarioStep],
        drills: &'a [Drill],
        runs: &'a [RunRef],
        signal: watch::Receiver<bool>,
        over: watch::Receiver<bool>,
        halt: &watch::Sender<bool>,
    ) -> End {
        let started = Utc::now();
        let mut running: FuturesUnordered<StepRun<'a>> = FuturesUnordered::new();
        let end = loop {
            tokio::select! {
                Some((i, record)) = running.next(), if !running.is_empty() => self.ended(plan, i, record),
                () = tokio::time::sleep(TICK) => {}
            }
            self.hear(plan);
            if *signal.borrow() {
                break End::Signal;
            }
            if *over.borrow() {
                break End::Over;
            }
            if let Some((i, why)) = self.refused(plan) {
                break End::Refused { step: i, why };
            }
            if let Some(i) = self.failed() {
                break End::Failed { step: i };
            }
            let now = Utc::now();
            for i in 0..plan.len() {
                // One step is judged at a time: a step still choosing (not in, not ended) holds
                // what it will take, unknown yet, so the next waits for it (steps due together
                // start one after another, each seeing what the one before took).
                if self.steps.iter().any(Step::choosing) {
                    break;
                }
                match self.ready(plan, i, started, now) {
                    Readiness::Wait => {}
                    Readiness::Skip(why) => {
                        tracing::info!(step = %plan[i].name, reason = %why, "scenario step skipped");
                        self.note(now, format!("step {} skipped: {why}", plan[i].name));
                        self.steps[i].skipped = Some(why);
                    }
                    Readiness::Go => {
                        let held = self.held();
                        let (events, heard) = mpsc::unbounded_channel();
                        let (stop, stopped) = watch::channel(false);
                        let step = &mut self.steps[i];
                        step.started = Some(now);
                        step.events = Some(heard);
                        step.stop = Some(stop);
                        tracing::info!(step = %plan[i].name, run = %runs[i].run, held = held.pods.len(), "scenario step started");
                        self.note(now, format!("step {} started", plan[i].name));
                        running.push(start(x, &drills[i], &runs[i], i, held, events, stopped));
                    }
                }
            }
            self.watch_recovery(x).await;
        };
        // The observation ends with the steps.
        let _ = halt.send(true);
        // Newest first, each reverted before the next is told to stop.
        let mut order: Vec<usize> = (0..plan.len())
            .filter(|&i| self.steps[i].running())
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse((self.steps[i].started, i)));
        for i in order {
            if let Some(stop) = self.steps[i].stop.take() {
                let _ = stop.send(true);
                self.note(Utc::now(), format!("stopping step {}", plan[i].name));
                // Kept until the step ended: a dropped sender is not a stop.
                self.steps[i].stop = Some(stop);
            }
            while self.steps[i].record.is_none() {
                match running.next().await {
                    Some((j, record)) => self.ended(plan, j, record),
                    None => break,
                }
            }
        }
        self.hear(plan);
        // Steps that never started: recorded as such.
        for (i, step) in self.steps.iter_mut().enumerate() {
            if step.waiting() {
                step.skipped = Some(match &end {
                    End::Over => "the scenario ended before it could start".to_owned(),
                    End::Signal => "the scenario was stopped before it could start".to_owned(),
                    End::Failed { step } => format!(
                        "the scenario ended before it could start: step {} failed",
                        plan[*step].name
                    ),
                    End::Refused { step, .. } => format!(
                        "the scenario ended before it could start: step {} was refused",
                        plan[*step].name
                    ),
                });
                tracing::info!(step = %plan[i].name, "scenario step never started");
            }
        }
        end
    }

    /// Takes in what the running steps said.
    fn hear(&mut self, plan: &[ScenarioStep]) {
        let mut heard = Vec::new();
        for (i, step) in self.steps.iter_mut().enumerate() {
            let Some(events) = step.events.as_mut() else {
                continue;
            };
            while let Ok(event) = events.try_recv() {
                match event {
                    StepEvent::Injected { at, held } => {
                        step.injected.get_or_insert(at);
                        step.held = held;
                        heard.push((at, format!("step {} injected", plan[i].name)));
                    }
                    StepEvent::Recovered { at } => {
                        step.first_recovered.get_or_insert(at);
                        step.recovered = Some(at);
                        heard.push((at, format!("step {} recovered", plan[i].name)));
                    }
                    StepEvent::Down { at } => {
                        step.recovered = None;
                        heard.push((at, format!("step {} down again", plan[i].name)));
                        // Not back for good: the scenario's recovery is measured again.
                        self.scenario_back = None;
                    }
                }
            }
        }
        for (at, what) in heard {
            self.note(at, what);
        }
    }

    /// A step's own run ended (reverted).
    fn ended(&mut self, plan: &[ScenarioStep], i: usize, record: RunRecord) {
        self.hear(plan);
        let now = record.ended.unwrap_or_else(Utc::now);
        let why = record
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        tracing::info!(step = %plan[i].name, status = %record.status, "scenario step ended");
        self.note(
            now,
            format!("step {} ended {}{why}", plan[i].name, record.status),
        );
        self.steps[i].record = Some(record);
    }

    /// A required step the guard refused, and why.
    fn refused(&self, plan: &[ScenarioStep]) -> Option<(usize, String)> {
        self.steps.iter().enumerate().find_map(|(i, s)| {
            let record = s.record.as_ref()?;
            (record.status == RunStatus::Blocked && !plan[i].optional)
                .then(|| (i, record.reason.clone().unwrap_or_default()))
        })
    }

    /// The first step that ended in error, if any.
    fn failed(&self) -> Option<usize> {
        self.steps.iter().position(|s| {
            s.record
                .as_ref()
                .is_some_and(|r| r.status == RunStatus::Error)
        })
    }

    /// What the running steps hold, for the guard of the next.
    fn held(&self) -> Held {
        let mut held = Held::default();
        for step in self.steps.iter().filter(|s| s.running()) {
            held.extend(&step.held);
        }
        held
    }

    /// Whether step `i` may start now, must wait, or never will.
    fn ready(
        &self,
        plan: &[ScenarioStep],
        i: usize,
        started: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Readiness {
        if !self.steps[i].waiting() {
            return Readiness::Wait;
        }
        let step = &plan[i];
        let mut since = started;
        for after in &step.after {
            let Some(j) = plan.iter().position(|s| s.name == after.step()) else {
                return Readiness::Skip(format!(
                    "it waits for step {}, which the scenario does not have",
                    after.step()
                ));
            };
            let other = &self.steps[j];
            let (at, event) = match after {
                After::Injected(_) => (other.injected, "injected"),
                After::Recovered(_) => (other.first_recovered, "recovered"),
            };
            match at {
                Some(at) => since = since.max(at),
                None if other.done() => {
                    return Readiness::Skip(format!("step {} never {event}", after.step()))
                }
                None => return Readiness::Wait,
            }
        }
        let delay = chrono::TimeDelta::from_std(step.delay).unwrap_or(chrono::TimeDelta::MAX);
        if now < since + delay {
            return Readiness::Wait;
        }
        match &step.when {
            None => Readiness::Go,
            Some(when) => self.when(plan, when, now),
        }
    }

    /// `when:` on an earlier step's RTO: known, or known to be past the bound already.
    fn when(
        &self,
        plan: &[ScenarioStep],
        when: &firedrill_experiments::When,
        now: DateTime<Utc>,
    ) -> Readiness {
        let Some(j) = plan.iter().position(|s| s.name == when.step) else {
            return Readiness::Skip(format!(
                "its when: names step {}, which the scenario does not have",
                when.step
            ));
        };
        let other = &self.steps[j];
        let (bound, at_least) = match when.figure {
            Figure::RtoUnder(d) => (d, false),
            Figure::RtoAtLeast(d) => (d, true),
        };
        let shown = firedrill_reader::duration::format(bound);
        let rto = other.rto().or_else(|| {
            // Still down past the bound: its RTO is at least that, whatever comes.
            let elapsed = (now - other.injected?).to_std().ok()?;
            (elapsed >= bound).then_some(elapsed)
        });
        match rto {
            Some(rto) if (rto >= bound) == at_least => Readiness::Go,
            Some(rto) => Readiness::Skip(format!(
                "when: step {}'s RTO {} {shown}: it was {:.1}s",
                when.step,
                if at_least { "at least" } else { "under" },
                rto.as_secs_f64()
            )),
            None if other.done() => {
                Readiness::Skip(format!("when: step {}'s RTO was not measured", when.step))
            }
            None => Readiness::Wait,
        }
    }

    /// The scenario's recovery: once no step is still to start or still on its way to its
    /// fault, every step that injected is back (or ended) and the scenario's probes pass, the
    /// scenario is back.
    async fn watch_recovery(&mut self, x: &Execution<'_>) {
        if self.scenario_back.is_some()
            || self.steps.iter().any(Step::waiting)
            || !self.steps.iter().any(|s| s.injected.is_some())
        {
            return;
        }
        // A step started but not yet injected (its guard, its preparation) is about to take
        // something down: a step that waited for an earlier one's recovery starts in the very
        // tick that recovery is heard, and the scenario is not back before it is.
        if self
            .steps
            .iter()
            .any(|s| s.running() && s.recovered.is_none())
        {
            return;
        }
        let last_back = self.steps.iter().filter_map(|s| s.recovered).max();
        let now = tokio::time::Instant::now();
        if self.next_probe.is_some_and(|at| now < at) {
            return;
        }
        self.next_probe = Some(now + PROBE_EVERY);
        for probe in &x.drill.steady_state {
            match x.endpoints.get_status(&probe.url, probe.timeout).await {
                Ok((status, _)) if probe.expect.contains(status) => {}
                _ => return,
            }
        }
        let at = last_back.map_or_else(Utc::now, |back| {
            if x.drill.steady_state.is_empty() {
                back
            } else {
                Utc::now().max(back)
            }
        });
        self.scenario_back = Some(at);
        self.note(
            at,
            "recovered: every step back, steady-state probes pass".into(),
        );
    }

    fn note(&mut self, at: DateTime<Utc>, what: String) {
        self.timeline.push((at, what));
    }

    /// The scenario's record from its steps' and its observation.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        mut self,
        x: &Execution<'_>,
        scenario: &Scenario,
        mut p: Progress,
        end: End,
        observed: Observed,
        samples: &super::gate::Samples,
        dry_run: bool,
    ) -> RunRecord {
        let first_fault = self.steps.iter().filter_map(|s| s.injected).min();
        let rto = match (first_fault, self.scenario_back, dry_run) {
            (Some(first), Some(back), false) => {
                Some((back - first).num_milliseconds().max(0) as f64 / 1000.0)
            }
            _ => None,
        };
        let notes: Vec<StepNote> = scenario
            .steps
            .iter()
            .zip(&self.steps)
            .map(|(plan, step)| note(plan, step, &x.run.run))
            .collect();
        p.record.targets = notes.iter().flat_map(|n| n.targets.clone()).collect();
        self.timeline.sort_by_key(|(at, _)| *at);
        p.evidence.timeline = Some(
            self.timeline
                .iter()
                .map(|(at, what)| Moment {
                    at: Some(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                    seconds: Some(
                        first_fault
                            .map_or(0.0, |f| (*at - f).num_milliseconds().max(0) as f64 / 1000.0),
                    ),
                    event: Some(what.clone()),
                })
                .collect(),
        );
        let faults = Faults::of(&notes);
        p.evidence.steps = Some(notes);
        if !faults.errors.is_empty() {
            return p.finish(RunStatus::Error, Some(faults.errors.join("; ")));
        }
        if let End::Refused { step, why } = &end {
            let before: Vec<&str> = self
                .newest_first()
                .into_iter()
                // What went in and came out: a step refused or never in reverted nothing.
                .filter(|&i| i != *step && self.steps[i].injected.is_some())
                .map(|i| scenario.steps[i].name.as_str())
                .collect();
            let reverted = if before.is_empty() {
                "nothing had run".to_owned()
            } else {
                format!("reverted newest first: {}", before.join(", "))
            };
            return p.finish(
                RunStatus::Blocked,
                Some(format!(
                    "step {} was refused: {why}; {reverted}",
                    scenario.steps[*step].name
                )),
            );
        }
        let observed = match (end, observed) {
            // Stopped by a signal: the observation saw it as the steps did.
            (End::Signal, _) => Observed::Stopped,
            (_, observed) => observed,
        };
        if matches!(observed, Observed::Completed) && !faults.ineffective.is_empty() && !dry_run {
            return p.finish(RunStatus::Ineffective, Some(faults.ineffective.join("; ")));
        }
        let mut record = executor::judge(x, p, observed, samples, rto, dry_run);
        if !faults.misses.is_empty() && !dry_run {
            let misses = faults.misses.join("; ");
            match record.status {
                RunStatus::Passed => {
                    record.status = RunStatus::Failed;
                    record.reason = Some(misses);
                }
                RunStatus::Failed => {
                    let reason = record.reason.take().unwrap_or_default();
                    record.reason = Some(format!("{reason}; {misses}"));
                }
                _ => {}
            }
        }
        record
    }

    /// The steps that ran, newest first.
    fn newest_first(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.steps.len())
            .filter(|&i| self.steps[i].started.is_some())
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse((self.steps[i].started, i)));
        order
    }
}

/// What the steps' outcomes say against the scenario, each line naming its step.
struct Faults {
    /// A step that errored, or whose revert failed.
    errors: Vec<String>,
    /// A step whose fault was not seen.
    ineffective: Vec<String>,
    /// A step whose own RTO was missed.
    misses: Vec<String>,
}

impl Faults {
    fn of(notes: &[StepNote]) -> Faults {
        let said = |n: &StepNote, otherwise: &str| {
            format!(
                "step {}: {}",
                n.name,
                n.reason.as_deref().unwrap_or(otherwise)
            )
        };
        let with = |status: RunStatus, otherwise: &str| -> Vec<String> {
            notes
                .iter()
                .filter(|n| n.status == status)
                .map(|n| said(n, otherwise))
                .collect()
        };
        Faults {
            errors: notes
                .iter()
                .filter(|n| {
                    n.status == RunStatus::Error
                        || n.evidence.as_ref().is_some_and(|e| e.revert.failed())
                })
                .map(|n| said(n, "error"))
                .collect(),
            ineffective: with(RunStatus::Ineffective, "not in effect"),
            misses: with(RunStatus::Failed, "failed"),
        }
    }
}

enum Readiness {
    Wait,
    Go,
    Skip(String),
}

/// What the record keeps of one step.
fn note(plan: &ScenarioStep, step: &Step, run: &str) -> StepNote {
    let kind = plan.fault.kind().to_string();
    let rto_target_seconds = plan.rto.map(|d| d.as_secs_f64());
    let Some(record) = &step.record else {
        return StepNote {
            name: plan.name.clone(),
            kind,
            status: RunStatus::Skipped,
            reason: step.skipped.clone(),
            rto_target_seconds,
            ..StepNote::default()
        };
    };
    let (status, reason) = step_outcome(plan, record);
    StepNote {
        name: plan.name.clone(),
        kind,
        run: Some(step_run(run, &plan.name)),
        status,
        reason,
        started: record.started,
        injected: step.injected.filter(|_| record.evidence.injected.is_some()),
        recovered: step
            .recovered
            .filter(|_| record.evidence.injected.is_some()),
        ended: record.ended,
        rto_seconds: record.measurements.rto_seconds,
        rto_target_seconds,
        targets: record.targets.clone(),
        evidence: Some(record.evidence.clone()),
    }
}

/// A step's outcome in the scenario: what its own run ended as, or — when the scenario stopped
/// it, or it ran to its end — judged by the step's own RTO.
fn step_outcome(plan: &ScenarioStep, record: &RunRecord) -> (RunStatus, Option<String>) {
    if record
        .evidence
        .effect
        .as_ref()
        .is_some_and(|e| e.observed == Some(false))
        && record.status != RunStatus::Error
    {
        let what = record.evidence.effect.as_ref().map(|e| e.to_string());
        return (RunStatus::Ineffective, what);
    }
    let stopped_by_the_scenario = record.status == RunStatus::Aborted
        && record
            .evidence
            .abort
            .as_ref()
            .and_then(|a| a.cause.as_deref())
            == Some("signal");
    if !(stopped_by_the_scenario || matches!(record.status, RunStatus::Passed)) {
        return (record.status, record.reason.clone());
    }
    if matches!(record.evidence.revert, Revert::Failed { .. }) {
        return (RunStatus::Error, record.reason.clone());
    }
    let Some(want) = plan.rto else {
        return (RunStatus::Passed, None);
    };
    let shown = firedrill_reader::duration::format(want);
    match record.measurements.rto_seconds {
        Some(got) if got <= want.as_secs_f64() => (RunStatus::Passed, None),
        Some(got) => (
            RunStatus::Failed,
            Some(format!(
                "recovery took {got:.1}s, more than the step's RTO of {shown}"
            )),
        ),
        None => (
            RunStatus::Failed,
            Some(format!(
                "it did not recover within the scenario (its workloads ready as desired; RTO {shown})"
            )),
        ),
    }
}
