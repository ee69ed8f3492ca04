//! The parts of a drill's section besides its runs: the scope it was allowed, what the guard
//! left alone, the figures against their targets, and its rollbacks.

use super::*;

pub(super) fn scope(drill: &crate::config::Drill) -> Vec<String> {
    drill
        .targets
        .iter()
        .map(|t| {
            let amount = match t.amount {
                firedrill_safety::Amount::Percent(p) => format!("{p} of"),
                firedrill_safety::Amount::Count(n) => format!("{n} of"),
            };
            let selector = t.selector.to_string();
            let pods = if selector.is_empty() {
                "every pod".to_owned()
            } else {
                format!("pods {selector}")
            };
            format!("{amount} {pods} in {}", t.namespace)
        })
        .collect()
}

pub(super) fn exclusions(runs: &[RunRecord]) -> Vec<Exclusion> {
    let mut by_reason: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for r in runs {
        for e in r.evidence.excluded.iter().flatten() {
            let text = |t: &Option<String>| t.as_deref().unwrap_or("?").to_owned();
            by_reason
                .entry(e.reason.as_deref().unwrap_or("?"))
                .or_default()
                .insert(format!("{}/{}", text(&e.namespace), text(&e.name)));
        }
    }
    by_reason
        .into_iter()
        .map(|(reason, pods)| Exclusion {
            reason: reason.to_owned(),
            pods,
        })
        .collect()
}

/// `higher_is_worse`: RTO, RPO and latency; availability is worse when lower.
pub(super) fn figure(
    runs: &[RunRow],
    pick: impl Fn(&RunRow) -> (Option<f64>, Option<f64>),
    higher_is_worse: bool,
) -> Figure {
    let mut values = Vec::new();
    let mut f = Figure::default();
    for r in runs {
        let (value, target) = pick(r);
        if target.is_some() {
            f.target = target;
        }
        let Some(v) = value else { continue };
        values.push(v);
        f.last = Some(v);
        if let Some(t) = target {
            if (higher_is_worse && v > t) || (!higher_is_worse && v < t) {
                f.breaches += 1;
            }
        }
    }
    f.measured = values.len() as u32;
    values.sort_by(f64::total_cmp);
    f.worst = if higher_is_worse {
        values.last().copied()
    } else {
        values.first().copied()
    };
    f.median = (!values.is_empty()).then(|| {
        let n = values.len();
        if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        }
    });
    f
}

pub(super) fn rollbacks(runs: &[RunRecord]) -> Rollbacks {
    let mut out = Rollbacks::default();
    for r in runs {
        if !changed_anything(&r.evidence) {
            continue;
        }
        out.runs_with_changes += 1;
        match &r.evidence.revert {
            Revert::Failed { .. } => out.failed += 1,
            // Replayed to the end after the run (a failed injection records no changes).
            Revert::Restored {
                when: RevertWhen::AfterTheRun,
                ..
            }
            | Revert::Left {
                when: RevertWhen::AfterTheRun,
                ..
            } => out.restored += 1,
            _ => {}
        }
    }
    out
}

pub(super) fn changed_anything(e: &crate::run::Evidence) -> bool {
    !e.changed().is_empty()
}
