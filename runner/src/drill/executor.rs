//! What a drill Job runs: preflight, plan, inject, observe, revert, measure, record.
//!
//! Order matters and is the contract: nothing is injected unless every gate passed and the guard
//! found something it may touch; once injected, the fault is reverted whatever happens next
//! (breach, signal, error). Not armed, or `--dry-run`: everything runs except mutations.

use std::time::Duration;

use chrono::{DateTime, Utc};
use firedrill_rollback::{self as rollback, Ledger};
use firedrill_safety::cluster::OwnerRef;
use firedrill_safety::verdict::{self, RecentHits};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::cluster::kubernetes::Kube;
use crate::cluster::ledger::{KubeCluster, Protection};
use crate::cluster::snapshot;
use crate::config::Drill;
use crate::drill::gate::{self, Samples, WatchResult};
use crate::run::{Measurements, Revert, RevertWhen, RunRecord, RunStatus};
use crate::schedule::blackout;

use super::lifecycle::Lifecycle;
pub use super::record::{announce, drill_event_reason, keep, record, Kept, Sinks};
use super::state::{hits, Chosen, Ended, Injection, Progress, KILL_SWITCH_READ_FAILURES};
pub use super::state::{Execution, StepEvent, StepEvents, KILL_SWITCH_EVERY};

/// The exit code of `firedrill execute` when the run's record could be kept nowhere (not in the
/// store, the cluster or the spool), whatever the outcome: it is then only on stdout.
pub const EXIT_RECORD_LOST: u8 = 5;

/// The exit code of `firedrill execute` when the fault did not take effect (`ineffective`).
pub const EXIT_INEFFECTIVE: u8 = 6;

/// Process exit codes of `firedrill execute`: a contract with the Job and `run --wait`.
pub fn exit_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Passed | RunStatus::DryRun => 0,
        RunStatus::Failed => 1,
        RunStatus::Aborted => 2,
        RunStatus::Blocked => 3,
        RunStatus::Running | RunStatus::Missed | RunStatus::Skipped | RunStatus::Error => 4,
        RunStatus::Ineffective => EXIT_INEFFECTIVE,
    }
}

/// Runs the pipeline and returns the finished record (not yet stored: see [`record`]).
/// `stop` turning true (a signal) ends the observation early; the fault is still reverted.
#[tracing::instrument(name = "run", skip_all, fields(drill = %x.drill.name, run = %x.run.run))]
pub async fn execute(x: &Execution<'_>, stop: watch::Receiver<bool>) -> RunRecord {
    // A scenario runs its steps through this same pipeline, each as a run of its own.
    if let firedrill_experiments::Settings::Scenario(scenario) = &x.drill.fault {
        // Boxed: a scenario's future holds its steps' (this function's), so it cannot be laid
        // out inside this one.
        return Box::pin(super::scenario::execute(x, scenario, stop)).await;
    }
    let dry_run = !x.config.armed || x.run.dry_run;
    let started = Utc::now();
    let mut p = Progress::new(x, started, dry_run);
    tracing::info!(drill = %x.drill.name, run = %x.run.run, dry_run, "run started");
    // 1-3: every way out before the fault is in place ends the run here, nothing injected.
    let stopped = stop.clone();
    let mut life = Lifecycle::of(&x.drill.fault);
    let before = async {
        preflight(x, &mut p, started).await?;
        let chosen = choose(x, &mut p, &life, started, dry_run).await?;
        inject(
            x,
            &mut p,
            &mut life,
            chosen.as_ref(),
            started,
            dry_run,
            &stopped,
        )
        .await
    };
    let mut injection = match before.await {
        Ok(injection) => injection,
        Err((status, reason)) => return p.finish(status, Some(reason)),
    };
    // 4. Observe: abort conditions and steady-state probes until the duration ends.
    let (observed, samples) = observe(x, stop, injection.as_mut()).await;
    // Whether the fault took effect: what is still unseen at the end was not in effect.
    if let Some(i) = injection.as_mut() {
        p.evidence.effect = Some(i.effect_at_end(x.kube, x.drill.kind().name()).await);
    }
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
    // 5. What the kind does before the revert (a promoted region failover fails back), then
    // revert, whatever happened.
    life.before_revert(x, &mut p).await;
    if let Some(i) = injection.as_mut() {
        if let Err(failed) = revert(x, &mut p, i).await {
            return p.finish(RunStatus::Error, Some(failed.to_string()));
        }
        let failed = i.failure.clone().or(p.failback_failed.clone());
        // A fault not in effect is not judged (an abort still says why it stopped).
        let ineffective = i
            .ineffective
            .clone()
            .filter(|_| matches!(observed, Observed::Completed));
        let ended = match (failed, ineffective) {
            (Some(failure), _) => Some((RunStatus::Error, failure)),
            (None, Some(why)) => Some((RunStatus::Ineffective, why)),
            (None, None) => None,
        };
        if let Some((status, why)) = ended {
            let record = p.finish(status, Some(format!("{why}; reverted")));
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

/// 1. The kill switch, blackouts and the drill's preflight gates.
pub(super) async fn preflight(
    x: &Execution<'_>,
    p: &mut Progress,
    started: DateTime<Utc>,
) -> Result<(), Ended> {
    let drill = x.drill;
    let mutates = drill.kind().changes_anything();
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
    life: &Lifecycle<'_>,
    started: DateTime<Utc>,
    dry_run: bool,
) -> Result<Option<Chosen>, Ended> {
    let drill = x.drill;
    if let Some(chosen) = life.choose(x, p, started).await {
        return chosen.map(Some);
    }
    let mut chosen: Option<Chosen> = None;
    // Every kind that changes anything is judged (a region failover's judgement is its
    // lifecycle's, above).
    if drill.kind().changes_anything() {
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
        let (cluster, listed_nodes) = match snapshot::read_for(kube, x.drill).await {
            Ok(cluster) => cluster,
            Err(message) => {
                return Err((
                    RunStatus::Blocked,
                    format!("cannot read the cluster (fail safe): {message}"),
                ))
            }
        };
        // A scenario's step is judged on the cluster as the steps before it left it (pods and
        // nodes alike); its plan is made on the cluster as read.
        let held = x.judged(&cluster);
        let (judged, policy) = held
            .as_ref()
            .map_or((&cluster, &drill.safety), |(c, p)| (c, p));
        let request = x.request(started, recent_hits, policy);
        let index = verdict::ClusterIndex::new(judged);
        let choice = firedrill_experiments::choose(&drill.fault, &index, judged, &request);
        drop(index);
        drop(held);
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
            p.evidence.nodes = Some(nodes_evidence(nodes, &drill.fault));
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

/// A node fault's or zone outage's choice as the record keeps it: the nodes hurt, with their
/// pods, and the nodes (a zone outage: the zones) refused and why.
fn nodes_evidence(
    nodes: &firedrill_safety::nodes::NodeVerdict,
    fault: &firedrill_experiments::Settings,
) -> Value {
    let refused_key = match fault {
        firedrill_experiments::Settings::ZoneOutage(_) => "zone",
        _ => "node",
    };
    let mut evidence = json!({
        "hurt": nodes.nodes.iter().map(|n| json!({
            "node": n.node,
            "cordoned_before": n.was_unschedulable,
            "pods": n.pods.iter().map(|p| format!("{}/{}", p.namespace, p.name)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "refused": nodes.refused.iter().map(|(what, reason)| json!({ refused_key: what, "reason": reason })).collect::<Vec<_>>(),
    });
    if let Some(zone) = &nodes.zone {
        evidence["zone"] = json!(zone);
    }
    evidence
}

/// 3. The kind's steps, through the ledger (not when dry-run: then only what they would change).
async fn inject(
    x: &Execution<'_>,
    p: &mut Progress,
    life: &mut Lifecycle<'_>,
    chosen: Option<&Chosen>,
    started: DateTime<Utc>,
    dry_run: bool,
    stop: &watch::Receiver<bool>,
) -> Result<Option<Injection>, Ended> {
    let drill = x.drill;
    // What the kind does before its steps are planned (a region failover's lead-in), and the
    // settings and Route 53 facts it plans them with.
    let prepared = life.prepare(x, p, dry_run, stop).await?;
    let fault = prepared.fault.unwrap_or_else(|| drill.fault.clone());
    let expires = started
        + chrono::TimeDelta::from_std(crate::cluster::job::active_deadline(drill))
            .unwrap_or(chrono::TimeDelta::hours(25));
    let expires_text = expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let dns = prepared
        .dns
        .as_ref()
        .or(chosen.and_then(|c| c.dns.as_ref()));
    let plan = plan_steps(x, p, &fault, chosen, dns, &expires_text, dry_run)?;
    // Stopped while it chose (a signal, or its scenario ending): nothing goes in after a stop.
    if *stop.borrow() {
        life.abandon().await;
        return Err((
            RunStatus::Aborted,
            "stopped before the fault went in; nothing injected".into(),
        ));
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
            Some(open_injection(x, kube, chosen, plan, started, &expires_text).await?)
        }
    };
    let first_wave = injection
        .as_mut()
        .and_then(|i| i.waves.pop_front())
        .unwrap_or_default();
    if let (Some(i), Some(kube)) = (injection.as_mut(), x.kube) {
        // What the fault must change, read as it is before (fail safe: unreadable, not run).
        if let Some(effect) = i.effect.as_mut() {
            if let Err(e) = effect.before(kube).await {
                life.abandon().await;
                return Err((RunStatus::Blocked, e.to_string()));
            }
        }
    }
    if injection.is_some() {
        kill_switch_before_the_fault(x, life).await?;
    }
    if let Some(i) = injection.as_mut() {
        // Canaries connect before the fault, so that their refusal during it means something.
        i.start_canaries().await;
    }
    if let Some(i) = injection.as_mut() {
        inject_first_wave(x, p, life, i, &first_wave, stop).await?;
    }
    tell_injected(x, chosen, injection.as_ref());

    Ok(injection)
}

/// Tells the scenario running this step (if any) that its first wave is in: when, and what it
/// holds for the steps judged after it (the pods it chose and those on the nodes it hurts). A
/// step that injects nothing (a dry run, nothing planned) is as good as injected and recovered
/// at once: the steps after it are not held up.
fn tell_injected(x: &Execution<'_>, chosen: Option<&Chosen>, injection: Option<&Injection>) {
    let Some(events) = &x.events else {
        return;
    };
    let mut held = firedrill_safety::scenario::Held::default();
    if let Some(c) = chosen {
        firedrill_experiments::hold(&mut held, &c.choice, &x.drill.fault);
    }
    let now = Utc::now();
    let at = injection.and_then(|i| i.first_fault).unwrap_or(now);
    let _ = events.send(super::state::StepEvent::Injected { at, held });
    if injection.is_none() {
        let _ = events.send(super::state::StepEvent::Recovered { at: now });
    }
}

/// The kind's plan for this run. On a dry run a plan that cannot be made is recorded (and the
/// run goes on with an empty one), and what the plan would change is recorded.
fn plan_steps(
    x: &Execution<'_>,
    p: &mut Progress,
    fault: &firedrill_experiments::Settings,
    chosen: Option<&Chosen>,
    dns: Option<&firedrill_experiments::region::DnsFacts>,
    expires: &str,
    dry_run: bool,
) -> Result<firedrill_experiments::Plan, Ended> {
    let image = crate::cluster::job::Runtime::from_env().image;
    let scene = firedrill_experiments::Scene {
        choice: chosen.map(|c| &c.choice),
        cluster: chosen.map(|c| &c.cluster),
        image: &image,
        duration: x.drill.duration,
        expires,
        dns,
    };
    let plan = match firedrill_experiments::plan(&x.run.run, fault, &scene) {
        Ok(plan) => plan,
        Err(e) if !dry_run => return Err((RunStatus::Error, e.to_string())),
        Err(e) => {
            p.evidence.plan = Some(e.to_string());
            firedrill_experiments::Plan::default()
        }
    };
    if dry_run && !plan.is_empty() {
        p.evidence.would_change = Some(plan.steps().map(|s| s.forward.describe()).collect());
    }
    Ok(plan)
}

/// The ledger and everything the injection carries for a plan that changes something; blocked
/// when the run cannot sign its ledger.
async fn open_injection(
    x: &Execution<'_>,
    kube: &Kube,
    chosen: Option<&Chosen>,
    plan: firedrill_experiments::Plan,
    started: DateTime<Utc>,
    expires: &str,
) -> Result<Injection, Ended> {
    let drill = x.drill;
    let mut ledger = Ledger::new(&x.run.run, &drill.name, drill.kind().name(), expires);
    ledger.job = crate::cluster::job::current();
    // To the millisecond: `stop` and the sweeper revert newest first, and a scenario's steps
    // may start within one second.
    ledger.started = Some(started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    ledger.hits = hit_workloads(chosen, &plan);
    // No key, no entry: a run that cannot sign its undo records changes nothing.
    let key = crate::cluster::ledger_key::read_or_create(kube)
        .await
        .map_err(|e| {
            (
                RunStatus::Blocked,
                format!("nothing injected: the run cannot sign its ledger: {e}"),
            )
        })?;
    // Every object a step acts on, directly or through a helper: what is expected of any
    // other (a node cordoned before) is due when the fault begins.
    let targets: std::collections::BTreeSet<rollback::ObjectRef> = plan
        .steps()
        .filter_map(|s| s.forward.target())
        .chain(plan.helpers.iter().map(|h| h.acts_on.clone()))
        .collect();
    let effect = plan
        .effect
        .clone()
        .map(|expect| super::effect::Effect::new(expect, &targets));
    Ok(Injection {
        effect,
        ineffective: None,
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
        planned_helpers: plan.helpers,
        helpers: Vec::new(),
        first_fault: None,
        recovered: None,
        timeline: Vec::new(),
        events: x.events.clone(),
    })
}

/// What cooldown reads back from the cluster: the workloads this run acts on, for the ledger.
fn hit_workloads(chosen: Option<&Chosen>, plan: &firedrill_experiments::Plan) -> Vec<String> {
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
    hit.iter().map(ToString::to_string).collect()
}

/// The last look before the first change: an engaged kill switch aborts the run with nothing
/// injected; unreadable counts as engaged (fail safe).
async fn kill_switch_before_the_fault(
    x: &Execution<'_>,
    life: &mut Lifecycle<'_>,
) -> Result<(), Ended> {
    let Some(kube) = x.kube else {
        return Ok(());
    };
    let engaged = kube
        .kill_switch()
        .await
        .unwrap_or_else(|e| Some(format!("cannot read the kill switch: {e}")));
    if let Some(reason) = engaged {
        life.abandon().await;
        return Err((
            RunStatus::Aborted,
            format!("kill switch engaged before the fault went in: {reason}; nothing injected"),
        ));
    }
    Ok(())
}

/// The first wave, recorded as injected; a partial injection is reverted before anything else.
async fn inject_first_wave(
    x: &Execution<'_>,
    p: &mut Progress,
    life: &mut Lifecycle<'_>,
    i: &mut Injection,
    first_wave: &[rollback::Step],
    stop: &watch::Receiver<bool>,
) -> Result<(), Ended> {
    match i.inject(first_wave).await {
        Ok(changes) => {
            let refused = changes.refused.as_ref().is_some_and(|r| !r.is_empty());
            p.evidence.injected = Some(changes);
            life.after_first_wave(x, p, i, refused, stop).await;
            Ok(())
        }
        Err(e) => {
            p.evidence.revert = i.revert(RevertWhen::AfterAFailedInjection).await;
            Err((RunStatus::Error, format!("injection failed: {e}")))
        }
    }
}

/// A revert after the run that left something undone: the ledger stays open for `rollback`.
#[derive(Debug, thiserror::Error)]
#[error("REVERT FAILED: {error}; the ledger {ledger} stays open: firedrill rollback --run {run}")]
struct RevertFailed {
    /// What the replay could not undo, as it said.
    error: String,
    ledger: String,
    run: String,
}

/// 5. Replays the ledger; what could not be undone, and how to finish the revert.
async fn revert(
    x: &Execution<'_>,
    p: &mut Progress,
    i: &mut Injection,
) -> Result<(), RevertFailed> {
    p.evidence.revert = i.revert(RevertWhen::AfterTheRun).await;
    match &p.evidence.revert {
        Revert::Failed { error, .. } => Err(RevertFailed {
            error: error.clone(),
            ledger: i.ledger.name(),
            run: x.run.run.clone(),
        }),
        _ => Ok(()),
    }
}

/// 6. Measurements, the success criteria and the outcome.
pub(super) fn judge(
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
                firedrill_reader::duration::format(want)
            )),
            None => misses.push(format!(
                "the system did not recover within the drill (workloads ready as desired and probes passing; RTO {})",
                firedrill_reader::duration::format(want)
            )),
        }
    }
    if let (Some(want), false) = (drill.success.rpo, dry_run) {
        match p.rpo {
            Some(got) if got <= want.as_secs_f64() => {}
            Some(got) => misses.push(format!(
                "the failover lost {got:.1}s of acknowledged writes, more than the RPO of {}",
                firedrill_reader::duration::format(want)
            )),
            None => misses.push(format!(
                "the RPO could not be measured (see the rpo evidence; RPO {})",
                firedrill_reader::duration::format(want)
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

pub(super) enum Observed {
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

pub(super) async fn observe(
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

/// The scheduled instant to assume for a run started by hand.
pub fn now_or(scheduled: Option<DateTime<Utc>>) -> DateTime<Utc> {
    scheduled.unwrap_or_else(Utc::now)
}

/// How long an execution may take at most, for callers that wait on one.
pub fn budget(drill: &Drill) -> Duration {
    crate::cluster::job::active_deadline(drill)
}
