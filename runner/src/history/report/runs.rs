//! A run's row of a drill's section: its columns and the lines of its evidence, as the record
//! holds them (nothing is derived that the record does not say).

use super::*;

pub(super) fn run_row(r: RunRecord, unplanned: bool) -> RunRow {
    let c = r.criteria();
    let rollback = rollback_column(&r.evidence);
    let safety_violation = r.safety_violated();
    let targets = r
        .targets
        .iter()
        .map(|t| format!("{}/{}", t.namespace, t.name))
        .collect();
    let m = r.measurements;
    RunRow {
        scheduled: stamp(r.scheduled),
        started: r.started.map(stamp),
        ended: r.ended.map(stamp),
        status: r.status.to_string(),
        reason: r.reason,
        unplanned,
        rto_seconds: m.rto_seconds,
        rto_target_seconds: c.rto_seconds,
        rpo_seconds: m.rpo_seconds,
        rpo_target_seconds: c.rpo_seconds,
        availability: m.availability,
        availability_target: c.availability,
        latency_p95_seconds: m.latency_p95_seconds,
        latency_p95_target_seconds: c.latency_p95_seconds,
        requests: m.requests,
        rollback,
        safety_violation,
        evidence: evidence_of(*r.evidence, targets),
        run: r.id,
    }
}

/// The run's rollback column: how its revert ended, and "not reverted" when it changed
/// something and recorded no revert at all.
pub(super) fn rollback_column(e: &crate::run::Evidence) -> &'static str {
    match &e.revert {
        Revert::Failed { .. } => "failed",
        // Left on purpose and said is restored as far as the run is concerned.
        Revert::Restored { .. } | Revert::Left { .. } => "restored",
        Revert::NothingChanged if changed_anything(e) => "not reverted",
        Revert::NothingChanged => "none",
    }
}

/// The report's evidence for one run, from what its record holds and nothing else.
pub(super) fn evidence_of(e: crate::run::Evidence, targets: Vec<String>) -> Evidence {
    let (injected_changed, ledger, injected_dns) = match e.injected {
        Some(i) => (i.changed, i.ledger, i.dns_changes),
        None => (None, None, None),
    };
    let (undone, dns_changes) = undone_and_dns(e.revert, e.rollback_closed, injected_dns);
    Evidence {
        job: job_line(e.job),
        ledger,
        targets,
        changed: injected_changed.unwrap_or_default(),
        undone,
        dns_changes,
        events: vec![event_line(e.event)],
        preflight: preflight_lines(e.preflight),
        effect: e.effect.map(|n| n.to_string()),
        samples: e.samples.map(|s| {
            format!(
                "{} sent, {} as expected, {} answered",
                s.sent, s.available, s.answered
            )
        }),
        timeline: e
            .timeline
            .into_iter()
            .flatten()
            .map(|t| format!("{} {}", or_unknown(t.at), or_unknown(t.event)))
            .collect(),
        steps: e.steps.iter().flatten().map(step_line).collect(),
    }
}

/// One step of a scenario as the report shows it: name, kind, status (and why), its RTO
/// against its own target, and whether its fault took effect.
pub(super) fn step_line(s: &crate::run::StepNote) -> String {
    let mut line = format!("{} ({}): {}", s.name, s.kind, s.status);
    if let Some(why) = &s.reason {
        line.push_str(&format!(" ({why})"));
    }
    match (s.rto_seconds, s.rto_target_seconds) {
        (Some(rto), Some(want)) => line.push_str(&format!("; RTO {rto:.1}s (target {want:.0}s)")),
        (Some(rto), None) => line.push_str(&format!("; RTO {rto:.1}s")),
        (None, Some(want)) => line.push_str(&format!("; RTO not measured (target {want:.0}s)")),
        (None, None) => {}
    }
    if let Some(effect) = s.evidence.as_ref().and_then(|e| e.effect.as_ref()) {
        line.push_str(&format!("; effect {effect}"));
    }
    line
}

/// The run's Job as recorded. Only what the record holds: a run's Job and Event are never
/// inferred from its id or status.
pub(super) fn job_line(job: Option<JobNote>) -> String {
    match job {
        Some(JobNote { name: Some(name) }) => name,
        Some(JobNote { name: None }) => "none: the run executed in no Job".to_owned(),
        None => NOT_RECORDED.to_owned(),
    }
}

/// The run's Event as recorded: its name, or why none was created.
pub(super) fn event_line(event: Option<EventNote>) -> String {
    match event {
        Some(EventNote {
            created: Some(event),
            ..
        }) => event,
        Some(EventNote {
            not_created: Some(why),
            ..
        }) => format!("none created: {why}"),
        _ => NOT_RECORDED.to_owned(),
    }
}

/// What the revert undid, split into the undone lines (a failed revert's error and a rollback
/// found closed later last) and the DNS changes (the injection's, then the revert's "DNS " lines).
pub(super) fn undone_and_dns(
    revert: Revert,
    closed: Option<crate::run::Closed>,
    injected_dns: Option<Vec<String>>,
) -> (Vec<String>, Vec<String>) {
    let (undone, revert_error) = match revert {
        Revert::Restored { lines, .. } | Revert::Left { lines, .. } => (lines, None),
        Revert::Failed {
            when: RevertWhen::AfterTheRun,
            error,
        } => (Vec::new(), Some(error)),
        // Unchanged from the untyped reader, which listed no line for it: the run's reason and
        // its rollback column say it failed.
        Revert::Failed {
            when: RevertWhen::AfterAFailedInjection,
            ..
        }
        | Revert::NothingChanged => (Vec::new(), None),
    };
    let closed_later = closed.map(|c| {
        format!(
            "found later, {}: {}",
            c.at.as_deref().unwrap_or("?"),
            c.how.as_deref().unwrap_or("no detail recorded")
        )
    });
    let dns_changes = injected_dns
        .unwrap_or_default()
        .into_iter()
        .chain(
            undone
                .iter()
                .filter_map(|l| l.strip_prefix("DNS ").map(str::to_owned)),
        )
        .collect();
    let mut undone_lines: Vec<String> = undone
        .into_iter()
        .filter(|l| !l.starts_with("DNS "))
        .collect();
    if let Some(err) = revert_error {
        undone_lines.push(format!("REVERT FAILED: {err}"));
    }
    undone_lines.extend(closed_later);
    (undone_lines, dns_changes)
}

/// Each preflight check as "check: passed" or "check: failed".
pub(super) fn preflight_lines(gates: Option<Vec<crate::run::Gate>>) -> Vec<String> {
    gates
        .into_iter()
        .flatten()
        .map(|g| {
            format!(
                "{}: {}",
                or_unknown(g.check),
                if g.passed == Some(true) {
                    "passed"
                } else {
                    "failed"
                }
            )
        })
        .collect()
}

/// A recorded text, or "?" when the record lacks it.
pub(super) fn or_unknown(t: Option<String>) -> String {
    t.unwrap_or_else(|| "?".to_owned())
}

#[cfg(test)]
mod tests {
    use crate::run::{EffectNote, Evidence, RunStatus, StepNote};

    #[test]
    fn a_scenario_step_is_one_line_with_its_status_rto_and_effect() {
        let step = StepNote {
            name: "db-down".into(),
            kind: "dependency-failure".into(),
            status: RunStatus::Failed,
            reason: Some("recovery took 7.2s, more than the step's RTO of 5s".into()),
            rto_seconds: Some(7.24),
            rto_target_seconds: Some(5.0),
            evidence: Some(Box::new(Evidence {
                effect: Some(EffectNote {
                    observed: Some(true),
                    how: "read back".into(),
                    what: "no ready pod left".into(),
                }),
                ..Evidence::new()
            })),
            ..StepNote::default()
        };
        assert_eq!(
            super::step_line(&step),
            "db-down (dependency-failure): failed (recovery took 7.2s, more than the step's RTO of 5s); RTO 7.2s (target 5s); effect observed: no ready pod left (read back)"
        );
        let skipped = StepNote {
            name: "failover".into(),
            kind: "region-failover".into(),
            status: RunStatus::Skipped,
            reason: Some("when: step db-down's RTO at least 2m: it was 7.2s".into()),
            ..StepNote::default()
        };
        assert_eq!(
            super::step_line(&skipped),
            "failover (region-failover): skipped (when: step db-down's RTO at least 2m: it was 7.2s)"
        );
    }
}
