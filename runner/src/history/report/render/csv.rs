//! The report as CSV, for other tools: one table, a row per planned fire and per run outside
//! the calendar, with the run's measurements.

use std::borrow::Cow;

use super::{escaped, ranges, Part};
use crate::history::report::{Provenance, Report, RunRow};

pub(super) fn csv_field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        escaped(out, text, &['"'], |_| "\"\"");
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn csv_line<S: AsRef<str>>(out: &mut String, fields: impl IntoIterator<Item = S>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f.as_ref());
    }
    out.push('\n');
}

fn number(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Each run by its cluster and id, for the adherence rows that name it.
pub(super) fn runs_by_id(r: &Report) -> foldhash::HashMap<(&str, &str), &RunRow> {
    r.drills
        .iter()
        .flat_map(|d| {
            d.runs
                .iter()
                .map(move |run| ((d.cluster.as_str(), run.run.as_str()), run))
        })
        .collect()
}

/// One row per planned fire and per run outside the calendar, with the run's measurements.
pub(super) fn parts(r: &Report, rows: usize) -> Vec<Part<'_>> {
    let mut parts = vec![Part::Text(
        "cluster,drill,kind,scheduled,planned,outcome,run,reason,rto_seconds,rto_target_seconds,rpo_seconds,rpo_target_seconds,availability,availability_target,latency_p95_seconds,rollback,safety_violation,provenance\n",
    )];
    parts.extend(ranges(r.adherence.len(), rows).map(Part::Adherence));
    for d in &r.drills {
        parts.extend(ranges(d.runs.len(), rows).map(|at| Part::Runs(d, at)));
    }
    parts
}

pub(super) fn part(
    out: &mut String,
    r: &Report,
    runs: &foldhash::HashMap<(&str, &str), &RunRow>,
    part: &Part<'_>,
) {
    let measured = |run: Option<&RunRow>| -> [Cow<'_, str>; 9] {
        match run {
            Some(x) => [
                number(x.rto_seconds).into(),
                number(x.rto_target_seconds).into(),
                number(x.rpo_seconds).into(),
                number(x.rpo_target_seconds).into(),
                number(x.availability).into(),
                number(x.availability_target).into(),
                number(x.latency_p95_seconds).into(),
                x.rollback.into(),
                if x.safety_violation { "true" } else { "false" }.into(),
            ],
            None => Default::default(),
        }
    };
    match part {
        Part::Text(text) => out.push_str(text),
        Part::Adherence(at) => {
            for a in r.adherence.rows(at.clone()) {
                let run = a
                    .run
                    .as_deref()
                    .and_then(|id| runs.get(&(a.cluster.as_str(), id)).copied());
                let fields = [
                    &a.cluster,
                    &a.drill,
                    &a.kind,
                    &a.scheduled,
                    &a.planned,
                    &a.outcome,
                    a.run.as_deref().unwrap_or_default(),
                    a.reason.as_deref().unwrap_or_default(),
                ];
                // Provenance last: the columns before it keep their places.
                let provenance = a.provenance.map_or("", Provenance::as_str);
                csv_line(
                    out,
                    fields
                        .into_iter()
                        .map(Cow::Borrowed)
                        .chain(measured(run))
                        .chain([Cow::Borrowed(provenance)]),
                );
            }
        }
        Part::Runs(d, at) => {
            for run in d.runs[at.clone()].iter().filter(|x| x.unplanned) {
                let fields = [
                    &d.cluster,
                    &d.drill,
                    &d.kind,
                    &run.scheduled,
                    "unplanned",
                    &run.status,
                    &run.run,
                    run.reason.as_deref().unwrap_or_default(),
                ];
                csv_line(
                    out,
                    fields
                        .into_iter()
                        .map(Cow::Borrowed)
                        .chain(measured(Some(run)))
                        // No planned fire to account for.
                        .chain([Cow::Borrowed("")]),
                );
            }
        }
        // The rest is not in CSV's one table.
        Part::Top
        | Part::Drill(_)
        | Part::Chart(..)
        | Part::Evidence(..)
        | Part::FollowUps(_)
        | Part::DrillsEnd => {}
    }
}
