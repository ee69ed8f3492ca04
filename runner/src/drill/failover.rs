//! Region failover's part of a run besides its planned steps (ARCHITECTURE.md, "One run"): the
//! regions judged on Route 53, the RPO markers' lead-in, the promotion after traffic left the
//! failed region (written ahead as an irreversible entry), and the failback before the revert.

use chrono::{DateTime, Utc};
use firedrill_experiments::region::RegionFailover;
use firedrill_experiments::Choice;
use firedrill_rollback as rollback;
use firedrill_safety::cluster::Cluster;
use firedrill_safety::verdict::{self, RecentHits};
use serde_json::{json, Value};
use tokio::sync::watch;

use super::state::{hits, Chosen, Ended, Execution, Injection, Prepared, Progress};
use crate::cluster::snapshot;
use crate::drill::region::MarkerWriter;
use crate::run::RunStatus;

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
    .map_err(|e| (RunStatus::Blocked, e.to_string()))?;
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
            .map_err(|e| (RunStatus::Blocked, format!("cannot read the cluster: {e}")))?;
        let none = RecentHits::new();
        let held = x.judged(&cluster);
        let (judged, policy) = held
            .as_ref()
            .map_or((&cluster, &drill.safety), |(c, p)| (c, p));
        let request = x.request(started, x.recent_hits.as_ref().unwrap_or(&none), policy);
        let index = verdict::ClusterIndex::new(judged);
        let choice = firedrill_experiments::choose(&drill.fault, &index, judged, &request);
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
        rollback::Irreversible {
            note: format!("run {} promoted (or tried to promote) the database in {}; promotion cannot be undone: {back}", x.run.run, rf.to),
            from: rf.from.clone(),
            to: rf.to.clone(),
        }
        .record(),
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
async fn failback(x: &Execution<'_>, p: &mut Progress, rf: &RegionFailover) {
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

/// A region failover in a run: its settings, the ones it plans with once armed (the Route 53
/// endpoint written in), and the RPO markers' writer from the lead-in to the promotion.
pub(super) struct Failover<'d> {
    rf: &'d RegionFailover,
    effective: Option<RegionFailover>,
    writer: Option<MarkerWriter>,
}

impl<'d> Failover<'d> {
    pub(super) fn new(rf: &'d RegionFailover) -> Self {
        Failover {
            rf,
            effective: None,
            writer: None,
        }
    }

    /// Route 53 read and judged, and the failed region's workloads judged.
    pub(super) async fn choose(
        &self,
        x: &Execution<'_>,
        p: &mut Progress,
        started: DateTime<Utc>,
    ) -> Result<Chosen, Ended> {
        choose_regions(x, p, self.rf, started).await
    }

    /// The RPO markers' lead-in, then Route 53 read again: the fire is decided, and its steps
    /// planned, on DNS as it is when they are made. A rehearsal (dry run) checks what the
    /// lead-in needs, writing nothing.
    pub(super) async fn prepare(
        &mut self,
        x: &Execution<'_>,
        p: &mut Progress,
        dry_run: bool,
        stop: &watch::Receiver<bool>,
    ) -> Result<Prepared, Ended> {
        if dry_run {
            if let Some(markers) = &self.rf.data {
                crate::drill::region::check(markers).await.map_err(|e| {
                    (
                        RunStatus::Blocked,
                        format!("the RPO markers could not be written: {e}"),
                    )
                })?;
                p.evidence.data = Some("both databases answer (a dry run writes no marker)".into());
            }
            return Ok(Prepared::default());
        }
        let rf = effective(self.rf);
        self.writer = lead_in(x, &rf, stop).await?;
        let mut fresh_dns = None;
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
                &rf,
                Some(&facts),
                x.drill.safety.limits.min_healthy_regions,
            )
            .map_err(|e| {
                (
                    RunStatus::Blocked,
                    format!("after the lead-in: {e}; nothing injected"),
                )
            })?;
            fresh_dns = Some(facts);
        }
        let fault = firedrill_experiments::Settings::RegionFailover(Box::new(rf.clone()));
        self.effective = Some(rf);
        Ok(Prepared {
            fault: Some(fault),
            dns: fresh_dns,
        })
    }

    /// The run ends before the first change: the markers stop.
    pub(super) async fn abandon(&mut self) {
        if let Some(w) = self.writer.take() {
            w.stop().await;
        }
    }

    /// Traffic has left the failed region: the promotion.
    pub(super) async fn after_first_wave(
        &mut self,
        x: &Execution<'_>,
        p: &mut Progress,
        i: &mut Injection,
        refused: bool,
        stop: &watch::Receiver<bool>,
    ) {
        if let Some(rf) = &self.effective {
            promote(x, p, i, rf, self.writer.take(), refused, stop).await;
        }
    }

    /// A promoted database fails back before the revert.
    pub(super) async fn before_revert(&self, x: &Execution<'_>, p: &mut Progress) {
        failback(x, p, self.rf).await;
    }
}
