//! The report as one self-contained HTML file: inline CSS and SVG charts, no request leaves the
//! page, and it prints to PDF.

use std::fmt::Write as _;

use super::{
    adherence_cells, drill_notes, escaped, evidence_lines, figure_rows, fleet_cells, follow_cells,
    joined, ranges, run_cells, tally_cells, Part, ADHERENCE_HEAD, FIGURE_HEAD, FLEET_HEAD,
    FOLLOW_HEAD, RUN_HEAD, TALLY_HEAD,
};
use crate::history::report::{DrillReport, Report, RunRow};

pub(super) fn esc(out: &mut String, text: &str) {
    escaped(out, text, &['&', '<', '>', '"'], |c| match c {
        '&' => "&amp;",
        '<' => "&lt;",
        '>' => "&gt;",
        _ => "&quot;",
    });
}

/// `text` escaped for HTML, as a string (for `format!`).
fn escaping(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    esc(&mut out, text);
    out
}

fn html_head(out: &mut String, class: &str, head: &[&str]) {
    let _ = write!(out, "<table class=\"{class}\"><thead><tr>");
    for h in head {
        out.push_str("<th>");
        esc(out, h);
        out.push_str("</th>");
    }
    out.push_str("</tr></thead><tbody>\n");
}

fn html_row<S: AsRef<str>>(out: &mut String, head: &[&str], cells: &[S]) {
    out.push_str("<tr>");
    for (i, c) in cells.iter().enumerate() {
        let c = c.as_ref();
        out.push_str("<td");
        // Outcomes and states get a class, so they read at a glance and in print.
        if let Some("outcome" | "status" | "state" | "rollback") = head.get(i).copied() {
            // Only what a class name may hold: the word comes from the store.
            out.push_str(" class=\"s-");
            out.extend(
                c.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-'),
            );
            out.push('"');
        }
        out.push('>');
        esc(out, c);
        out.push_str("</td>");
    }
    out.push_str("</tr>\n");
}

const HTML_TABLE_END: &str = "</tbody></table>\n";

fn html_table<S: AsRef<str>>(
    out: &mut String,
    class: &str,
    head: &[&str],
    rows: impl Iterator<Item = Vec<S>>,
) {
    html_head(out, class, head);
    for row in rows {
        html_row(out, head, &row);
    }
    out.push_str(HTML_TABLE_END);
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2430;margin:2em auto;max-width:1200px;padding:0 1em}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #d0d6e0;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.6em}dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dl.meta dt{font-weight:600}
table{border-collapse:collapse;margin:.6em 0 1.2em;width:100%;font-size:.92em}
th,td{border:1px solid #d0d6e0;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#eef1f6}
.s-passed,.s-closed,.s-restored{color:#166534;font-weight:600}.s-failed,.s-error,.s-ineffective,.s-open,.s-unaccounted{color:#b91c1c;font-weight:600}
.s-aborted,.s-missed,.s-blocked{color:#b45309;font-weight:600}.s-skipped,.s-pending,.s-dry-run{color:#4b5563}
.chart{margin:.4em 0 1em}.chart text{font-size:11px;fill:#4b5563}.evidence{font-size:.88em}.evidence li{margin:.3em 0}
.evidence dt{font-weight:600;display:inline}.evidence dd{display:inline;margin:0 0 0 .3em}
section.drill{break-inside:avoid-page}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-before:page}h2:first-of-type{break-before:auto}
tr,li,svg{break-inside:avoid}a{color:inherit;text-decoration:none}}
";

/// The report's parts, in order, as HTML lays them out.
pub(super) fn parts(r: &Report, rows: usize) -> Vec<Part<'_>> {
    let mut parts = vec![Part::Top];
    parts.extend(ranges(r.follow_ups.len(), rows).map(Part::FollowUps));
    parts.push(Part::Text("<h2 id=\"drills\">Drills</h2>\n"));
    for d in &r.drills {
        parts.push(Part::Drill(d));
        if !d.runs.is_empty() {
            parts.extend((0..CHARTS.len()).map(|i| Part::Chart(d, i)));
            parts.extend(ranges(d.runs.len(), rows).map(|at| Part::Runs(d, at)));
            parts.extend(ranges(d.runs.len(), rows).map(|at| Part::Evidence(d, at)));
        }
    }
    parts.extend(ranges(r.adherence.len(), rows).map(Part::Adherence));
    parts.push(Part::Text("</body></html>\n"));
    parts
}

/// A drill's charts: title, the measure of a run, its target, and its unit.
type Chart = (
    &'static str,
    fn(&RunRow) -> Option<f64>,
    fn(&DrillReport) -> Option<f64>,
    &'static str,
);

const CHARTS: [Chart; 3] = [
    ("RTO", |r| r.rto_seconds, |d| d.rto.target, "s"),
    ("RPO", |r| r.rpo_seconds, |d| d.rpo.target, "s"),
    (
        "availability",
        |r| r.availability.map(|a| a * 100.0),
        |d| d.availability.target.map(|a| a * 100.0),
        "%",
    ),
];

pub(super) fn part(out: &mut String, r: &Report, part: &Part<'_>) {
    match part {
        Part::Top => html_top(out, r),
        Part::Text(text) => out.push_str(text),
        Part::Adherence(at) => {
            if at.start == 0 {
                out.push_str("<h2 id=\"adherence\">Programme adherence</h2>\n");
                html_head(out, "adherence", &ADHERENCE_HEAD);
            }
            for a in r.adherence.rows(at.clone()) {
                html_row(out, &ADHERENCE_HEAD, &adherence_cells(&a));
            }
            if at.end == r.adherence.len() {
                out.push_str(HTML_TABLE_END);
            }
        }
        Part::Drill(d) => html_drill(out, d),
        Part::Chart(d, i) => {
            let (title, pick, target, unit) = CHARTS[*i];
            let points: Vec<(&str, f64)> = d
                .runs
                .iter()
                .filter_map(|r| pick(r).map(|v| (r.scheduled.as_str(), v)))
                .collect();
            if !points.is_empty() {
                chart(
                    out,
                    &format!("{title} per run, {} on {}", d.drill, d.cluster),
                    &points,
                    target(d),
                    unit,
                );
            }
        }
        Part::Runs(d, at) => {
            if at.start == 0 {
                html_head(out, "runs", &RUN_HEAD);
            }
            for run in &d.runs[at.clone()] {
                html_row(out, &RUN_HEAD, &run_cells(run));
            }
            if at.end == d.runs.len() {
                out.push_str(HTML_TABLE_END);
            }
        }
        Part::Evidence(d, at) => {
            if at.start == 0 {
                out.push_str("<details open><summary>Evidence</summary><ul class=\"evidence\">\n");
            }
            for run in &d.runs[at.clone()] {
                out.push_str("<li><strong>");
                esc(out, &run.run);
                out.push_str("</strong><dl>");
                for (label, items) in evidence_lines(run) {
                    out.push_str("<div><dt>");
                    esc(out, label);
                    out.push_str("</dt><dd>");
                    joined(out, items, esc);
                    out.push_str("</dd></div>");
                }
                out.push_str("</dl></li>\n");
            }
            if at.end == d.runs.len() {
                out.push_str("</ul></details></section>\n");
            }
        }
        Part::FollowUps(at) => {
            if at.start == 0 {
                out.push_str("<h2 id=\"follow-ups\">Follow-ups</h2>\n");
                if r.follow_ups.is_empty() {
                    out.push_str("<p>None.</p>\n");
                    return;
                }
                html_head(out, "follow-ups", &FOLLOW_HEAD);
            }
            for f in r.follow_ups.rows(at.clone()) {
                html_row(out, &FOLLOW_HEAD, &follow_cells(&f));
            }
            if at.end == r.follow_ups.len() {
                out.push_str(HTML_TABLE_END);
            }
        }
        // Not in HTML's layout.
        Part::DrillsEnd => {}
    }
}

fn html_top(out: &mut String, r: &Report) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n<title>firedrill compliance report {} to {}</title>\n<style>{STYLE}</style></head><body>\n",
        escaping(&r.since),
        escaping(&r.until)
    );
    let _ = write!(
        out,
        "<h1>firedrill compliance report</h1>\n<dl class=\"meta\">"
    );
    for (k, v) in [
        (
            "Period",
            format!("{} to {} (UTC, end exclusive)", r.since, r.until),
        ),
        ("Clusters", r.clusters.join(", ")),
        ("Drill file", r.drill_file.clone()),
        ("Run history", r.store.clone()),
        ("Generated", r.generated.clone()),
    ] {
        out.push_str("<dt>");
        esc(out, k);
        out.push_str("</dt><dd>");
        esc(out, &v);
        out.push_str("</dd>");
    }
    out.push_str("</dl>\n<h2 id=\"summary\">Summary</h2>\n");
    html_table(
        out,
        "summary",
        &TALLY_HEAD,
        std::iter::once(tally_cells(&r.summary)),
    );
    let _ = writeln!(
        out,
        "<p>Adherence is the share of due fires that ran (passed, failed, aborted, error or ineffective); skipped fires (blackouts, or vetoed with firedrill skip) and fires not yet due are not due. {} run(s) in the period were outside the calendar (manual). {} follow-up(s) open.</p>",
        r.summary.unplanned_runs,
        r.follow_ups.open()
    );
    out.push_str("<h2 id=\"fleet\">Fleet</h2>\n");
    html_table(out, "fleet", &FLEET_HEAD, r.fleet.iter().map(fleet_cells));
}

/// A drill's section up to its charts (and, with no runs, the whole section).
fn html_drill(out: &mut String, d: &DrillReport) {
    out.push_str("<section class=\"drill\"><h3>");
    esc(out, &d.drill);
    out.push_str(" on ");
    esc(out, &d.cluster);
    out.push_str(" <small>(");
    esc(out, &d.kind);
    out.push_str(")</small></h3>\n<ul><li>Schedule: ");
    esc(
        out,
        d.schedule.as_deref().unwrap_or("not in the drill file"),
    );
    out.push_str("</li><li>Scope: ");
    if d.scope.is_empty() {
        esc(
            out,
            "no pod targets (the kind acts on what its fault names)",
        );
    } else {
        joined(out, &d.scope, esc);
    }
    out.push_str("</li>");
    drill_notes(out, d, "<li>", "</li>", esc);
    out.push_str("</ul>\n");
    html_table(
        out,
        "tally",
        &TALLY_HEAD,
        std::iter::once(tally_cells(&d.tally)),
    );
    html_table(out, "figures", &FIGURE_HEAD, figure_rows(d));
    if d.runs.is_empty() {
        out.push_str("<p>No runs in the period.</p></section>\n");
    }
}

/// A line chart of one measure over the runs, with the target as a dashed line: inline SVG.
fn chart(out: &mut String, title: &str, points: &[(&str, f64)], target: Option<f64>, unit: &str) {
    let (w, h, left, bottom, top) = (640.0, 170.0, 56.0, 24.0, 14.0);
    let values = points.iter().map(|p| p.1).chain(target);
    let (mut lo, mut hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if unit == "s" {
        lo = 0.0;
    }
    if hi - lo < 1e-9 {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.1;
    let (lo, hi) = (if unit == "s" { 0.0 } else { lo - pad }, hi + pad);
    let x = |i: usize| {
        if points.len() == 1 {
            left + (w - left - 10.0) / 2.0
        } else {
            left + (w - left - 10.0) * i as f64 / (points.len() - 1) as f64
        }
    };
    let y = |v: f64| top + (h - top - bottom) * (1.0 - (v - lo) / (hi - lo));
    let title = escaping(title);
    let _ = write!(
        out,
        "<figure class=\"chart\"><svg role=\"img\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{title}</title>"
    );
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{:.1}\" stroke=\"#9aa3b2\"/><line x1=\"{left}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#9aa3b2\"/>",
        h - bottom,
        h - bottom,
        w - 10.0,
        h - bottom
    );
    for v in [lo, (lo + hi) / 2.0, hi] {
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v:.1}{unit}</text>",
            left - 4.0,
            y(v) + 4.0
        );
    }
    if let Some(t) = target {
        let _ = write!(
            out,
            "<line class=\"target\" x1=\"{left}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#b91c1c\" stroke-dasharray=\"5 4\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">target {t:.1}{unit}</text>",
            y(t),
            w - 10.0,
            y(t),
            w - 12.0,
            y(t) - 4.0
        );
    }
    out.push_str(
        "<polyline class=\"series\" fill=\"none\" stroke=\"#1d4ed8\" stroke-width=\"2\" points=\"",
    );
    for (i, (_, v)) in points.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{:.1},{:.1}", x(i), y(*v));
    }
    out.push_str("\"/>");
    for (i, (at, v)) in points.iter().enumerate() {
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1d4ed8\"><title>",
            x(i),
            y(*v)
        );
        esc(out, at);
        let _ = write!(out, " {v:.2}{unit}</title></circle>");
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            out,
            "<text x=\"{left}\" y=\"{:.1}\">{}</text><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            h - 6.0,
            escaping(first.0.get(..10).unwrap_or(first.0)),
            w - 10.0,
            h - 6.0,
            escaping(last.0.get(..10).unwrap_or(last.0))
        );
    }
    let _ = writeln!(out, "</svg><figcaption>{title}</figcaption></figure>");
}
