//! The report as Markdown, for wikis: the head, the adherence table, each drill's section with
//! its runs and their evidence, and the follow-ups.

use std::fmt::Write as _;

use super::{
    adherence_cells, drill_notes, escaped, evidence_lines, figure_rows, fleet_cells, follow_cells,
    joined, ranges, run_cells, tally_cells, Part, ADHERENCE_HEAD, FIGURE_HEAD, FLEET_HEAD,
    FOLLOW_HEAD, RUN_HEAD, TALLY_HEAD,
};
use crate::history::report::{DrillReport, Report};

/// Text as Markdown shows it literally on one line: no table breaks, no live HTML.
pub(super) fn cell(out: &mut String, text: &str) {
    escaped(out, text, &['&', '<', '|', '\r', '\n'], |c| match c {
        '&' => "&amp;",
        '<' => "&lt;",
        '|' => "\\|",
        _ => " ",
    });
}

fn md_head(out: &mut String, head: &[&str]) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
}

fn md_row<S: AsRef<str>>(out: &mut String, cells: &[S]) {
    out.push_str("| ");
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        cell(out, c.as_ref());
    }
    out.push_str(" |\n");
}

fn md_table<S: AsRef<str>>(out: &mut String, head: &[&str], rows: impl Iterator<Item = Vec<S>>) {
    md_head(out, head);
    for row in rows {
        md_row(out, &row);
    }
    out.push('\n');
}

/// The report's parts, in order, as Markdown lays them out.
pub(super) fn parts(r: &Report, rows: usize) -> Vec<Part<'_>> {
    let mut parts = vec![Part::Top];
    parts.extend(ranges(r.adherence.len(), rows).map(Part::Adherence));
    parts.push(Part::Text("## Drills\n\n"));
    for d in &r.drills {
        parts.push(Part::Drill(d));
        if !d.runs.is_empty() {
            parts.extend(ranges(d.runs.len(), rows).map(|at| Part::Runs(d, at)));
            parts.extend(ranges(d.runs.len(), rows).map(|at| Part::Evidence(d, at)));
        }
    }
    parts.extend(ranges(r.follow_ups.len(), rows).map(Part::FollowUps));
    parts
}

pub(super) fn part(out: &mut String, r: &Report, part: &Part<'_>) {
    match part {
        Part::Top => md_top(out, r),
        Part::Text(text) => out.push_str(text),
        Part::Adherence(at) => {
            if at.start == 0 {
                let _ = writeln!(out, "## Programme adherence\n");
                md_head(out, &ADHERENCE_HEAD);
            }
            for a in r.adherence.rows(at.clone()) {
                md_row(out, &adherence_cells(&a));
            }
            if at.end == r.adherence.len() {
                out.push('\n');
            }
        }
        Part::Drill(d) => md_drill(out, d),
        // Markdown has no charts.
        Part::Chart(..) => {}
        Part::Runs(d, at) => {
            if at.start == 0 {
                let _ = writeln!(out, "#### Runs\n");
                md_head(out, &RUN_HEAD);
            }
            for run in &d.runs[at.clone()] {
                md_row(out, &run_cells(run));
            }
            if at.end == d.runs.len() {
                out.push('\n');
            }
        }
        Part::Evidence(d, at) => {
            if at.start == 0 {
                let _ = writeln!(out, "#### Evidence\n");
            }
            for run in &d.runs[at.clone()] {
                let _ = writeln!(out, "- **{}**", run.run);
                for (label, items) in evidence_lines(run) {
                    let _ = write!(out, "  - {label}: ");
                    joined(out, items, cell);
                    out.push('\n');
                }
            }
            if at.end == d.runs.len() {
                out.push('\n');
            }
        }
        Part::FollowUps(at) => {
            if at.start == 0 {
                let _ = writeln!(out, "## Follow-ups\n");
                if r.follow_ups.is_empty() {
                    let _ = writeln!(out, "None.\n");
                    return;
                }
                md_head(out, &FOLLOW_HEAD);
            }
            for f in r.follow_ups.rows(at.clone()) {
                md_row(out, &follow_cells(&f));
            }
            if at.end == r.follow_ups.len() {
                out.push('\n');
            }
        }
        // Not in Markdown's layout.
        Part::DrillsEnd => {}
    }
}

fn md_top(out: &mut String, r: &Report) {
    let _ = writeln!(out, "# firedrill compliance report\n");
    let _ = writeln!(
        out,
        "- Period: {} to {} (UTC, end exclusive)\n- Clusters: {}\n- Drill file: `{}`\n- Run history: `{}`\n- Generated: {}\n",
        r.since,
        r.until,
        r.clusters.join(", "),
        r.drill_file,
        r.store,
        r.generated
    );
    let _ = writeln!(out, "## Summary\n");
    md_table(out, &TALLY_HEAD, std::iter::once(tally_cells(&r.summary)));
    let _ = writeln!(
        out,
        "Adherence is the share of due fires that ran (passed, failed, aborted, error or ineffective); skipped fires (blackouts, or vetoed with firedrill skip) and fires not yet due are not due. {} run(s) in the period were outside the calendar (manual). {} follow-up(s) open.\n",
        r.summary.unplanned_runs,
        r.follow_ups.open()
    );
    let _ = writeln!(out, "## Fleet\n");
    md_table(out, &FLEET_HEAD, r.fleet.iter().map(fleet_cells));
}

/// A drill's section up to its runs.
fn md_drill(out: &mut String, d: &DrillReport) {
    let _ = writeln!(out, "### {} on {} ({})\n", d.drill, d.cluster, d.kind);
    let _ = writeln!(
        out,
        "- Schedule: {}",
        d.schedule
            .as_deref()
            .map_or_else(|| "not in the drill file".to_owned(), |s| format!("`{s}`"))
    );
    let _ = writeln!(
        out,
        "- Scope: {}",
        if d.scope.is_empty() {
            "no pod targets (the kind acts on what its fault names)".to_owned()
        } else {
            d.scope.join("; ")
        }
    );
    drill_notes(out, d, "- ", "\n", cell);
    out.push('\n');
    md_table(out, &TALLY_HEAD, std::iter::once(tally_cells(&d.tally)));
    md_table(out, &FIGURE_HEAD, figure_rows(d));
    if d.runs.is_empty() {
        let _ = writeln!(out, "No runs in the period.\n");
    }
}
