//! The report as Markdown (wikis), one self-contained HTML file (inline CSS and SVG, no request
//! leaves the page; prints to PDF), JSON and CSV (other tools).

use std::fmt::Write as _;

use super::{Adherence, DrillReport, Figure, FollowUp, Report, RunRow, Tally};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Html,
    Json,
    Csv,
}

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Md => markdown(report),
        Format::Html => html(report),
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Csv => csv(report),
    }
}

/// [`render`], written to `out`: JSON as it is made, never held whole (a year of hourly runs is
/// 184 MB of it).
pub fn render_to(
    report: &Report,
    format: Format,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    if format == Format::Json {
        serde_json::to_writer_pretty(&mut *out, report)?;
        return out.write_all(b"\n");
    }
    out.write_all(render(report, format).as_bytes())
}

fn seconds(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |s| format!("{s:.1}s"))
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |a| format!("{:.2}%", a * 100.0))
}

fn adherence(t: &Tally) -> String {
    t.adherence_percent
        .map_or_else(|| "–".to_owned(), |p| format!("{p:.1}%"))
}

/// A measure against its target: `12.0s / 15m` and whether any run breached it.
fn against(f: &Figure, show: fn(Option<f64>) -> String) -> [String; 5] {
    [
        show(f.target),
        show(f.last),
        show(f.worst),
        show(f.median),
        if f.measured == 0 {
            "not measured".to_owned()
        } else if f.target.is_none() {
            "no target".to_owned()
        } else {
            format!("{} of {} runs", f.breaches, f.measured)
        },
    ]
}

const TALLY_HEAD: [&str; 12] = [
    "planned",
    "ran",
    "passed",
    "failed",
    "aborted",
    "error",
    "dry run",
    "blocked",
    "skipped",
    "missed",
    "unaccounted",
    "adherence",
];

fn tally_cells(t: &Tally) -> Vec<String> {
    let mut cells: Vec<String> = [
        t.planned,
        t.ran,
        t.passed,
        t.failed,
        t.aborted,
        t.error,
        t.dry_run,
        t.blocked,
        t.skipped,
        t.missed,
        t.unaccounted,
    ]
    .iter()
    .map(u32::to_string)
    .collect();
    cells.push(adherence(t));
    cells
}

const FLEET_HEAD: [&str; 12] = [
    "cluster",
    "planned",
    "ran",
    "passed",
    "failed",
    "missed",
    "unaccounted",
    "adherence",
    "worst RTO",
    "worst RPO",
    "lowest availability",
    "open follow-ups",
];

fn fleet_cells(c: &super::ClusterRow) -> Vec<String> {
    vec![
        c.cluster.clone(),
        c.tally.planned.to_string(),
        c.tally.ran.to_string(),
        c.tally.passed.to_string(),
        c.tally.failed.to_string(),
        c.tally.missed.to_string(),
        c.tally.unaccounted.to_string(),
        adherence(&c.tally),
        worst(&c.worst_rto),
        worst(&c.worst_rpo),
        percent(c.lowest_availability),
        c.open_follow_ups.to_string(),
    ]
}

const FIGURE_HEAD: [&str; 6] = [
    "measure",
    "target",
    "last",
    "worst",
    "median",
    "missed target",
];

/// Each measure of a drill against its target, a row each.
fn figure_rows(d: &DrillReport) -> impl Iterator<Item = Vec<String>> + '_ {
    [
        ("RTO", against(&d.rto, seconds)),
        ("RPO", against(&d.rpo, seconds)),
        ("availability", against(&d.availability, percent)),
        ("latency p95", against(&d.latency_p95, seconds)),
    ]
    .into_iter()
    .map(|(name, cells)| std::iter::once(name.to_owned()).chain(cells).collect())
}

fn worst(w: &Option<super::Worst>) -> String {
    w.as_ref().map_or_else(
        || "–".to_owned(),
        |w| {
            format!(
                "{:.1}s ({}; target {})",
                w.seconds,
                w.drill,
                seconds(w.target_seconds)
            )
        },
    )
}

fn adherence_cells(a: &Adherence) -> Vec<String> {
    vec![
        a.cluster.clone(),
        a.drill.clone(),
        a.scheduled.clone(),
        a.planned.clone(),
        a.outcome.clone(),
        a.run.clone().unwrap_or_default(),
        a.reason.clone().unwrap_or_default(),
    ]
}

fn run_cells(r: &RunRow) -> Vec<String> {
    vec![
        r.run.clone() + if r.unplanned { " (manual)" } else { "" },
        r.scheduled.clone(),
        r.status.clone(),
        seconds(r.rto_seconds),
        seconds(r.rpo_seconds),
        percent(r.availability),
        r.latency_p95_seconds
            .map_or_else(|| "–".to_owned(), |l| format!("{:.0}ms", l * 1000.0)),
        r.rollback.to_owned(),
        r.reason.clone().unwrap_or_default(),
    ]
}

const RUN_HEAD: [&str; 9] = [
    "run",
    "scheduled (UTC)",
    "status",
    "RTO",
    "RPO",
    "availability",
    "p95",
    "rollback",
    "reason",
];

const FOLLOW_HEAD: [&str; 6] = [
    "state",
    "cluster",
    "drill",
    "run",
    "scheduled (UTC)",
    "what",
];

fn follow_cells(f: &FollowUp) -> Vec<String> {
    vec![
        f.state.clone(),
        f.cluster.clone(),
        f.drill.clone(),
        f.run.clone().unwrap_or_default(),
        f.scheduled.clone(),
        f.what.clone(),
    ]
}

/// The lines of a run's evidence, labelled, for both text formats.
fn evidence_lines(r: &RunRow) -> Vec<(&'static str, String)> {
    let e = &r.evidence;
    let mut out = vec![("Job", e.job.clone())];
    if let Some(l) = &e.ledger {
        out.push(("ledger", l.clone()));
    }
    let mut list = |label: &'static str, items: &[String]| {
        if !items.is_empty() {
            out.push((label, items.join("; ")));
        }
    };
    list("targets", &e.targets);
    list("preflight", &e.preflight);
    list("changed", &e.changed);
    list("undone", &e.undone);
    list("DNS changes", &e.dns_changes);
    list("Events", &e.events);
    list("timeline", &e.timeline);
    if let Some(s) = &e.samples {
        out.push(("probes", s.clone()));
    }
    out
}

// ---------------------------------------------------------------------------------- Markdown

/// Text as Markdown shows it literally on one line: no table breaks, no live HTML.
fn cell(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

fn md_table<S: AsRef<str>>(out: &mut String, head: &[&str], rows: impl Iterator<Item = Vec<S>>) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c.as_ref())).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

fn markdown(r: &Report) -> String {
    let mut out = String::new();
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
    md_table(
        &mut out,
        &TALLY_HEAD,
        std::iter::once(tally_cells(&r.summary)),
    );
    let _ = writeln!(
        out,
        "Adherence is the share of due fires that ran (passed, failed, aborted or error); skipped fires (blackouts) and fires not yet due are not due. {} run(s) in the period were outside the calendar (manual). {} follow-up(s) open.\n",
        r.summary.unplanned_runs,
        r.follow_ups.iter().filter(|f| f.state == "open").count()
    );
    let _ = writeln!(out, "## Fleet\n");
    md_table(&mut out, &FLEET_HEAD, r.fleet.iter().map(fleet_cells));
    let _ = writeln!(out, "## Programme adherence\n");
    md_table(
        &mut out,
        &[
            "cluster",
            "drill",
            "scheduled (UTC)",
            "planned",
            "outcome",
            "run",
            "reason",
        ],
        r.adherence.iter().map(adherence_cells),
    );
    let _ = writeln!(out, "## Drills\n");
    out.push_str(&on_two_threads(&r.drills, md_drill));
    let _ = writeln!(out, "## Follow-ups\n");
    if r.follow_ups.is_empty() {
        let _ = writeln!(out, "None.\n");
    } else {
        md_table(
            &mut out,
            &FOLLOW_HEAD,
            r.follow_ups.iter().map(follow_cells),
        );
    }
    out
}

/// Each drill's section, in order, written on two threads (the drills split by their runs):
/// the sections are independent, and over a long period they are most of the text.
fn on_two_threads(drills: &[DrillReport], section: fn(&mut String, &DrillReport)) -> String {
    let (first, second) = drills.split_at(super::half_of(drills, |d| d.runs.len()));
    let write = |drills: &[DrillReport]| {
        let mut out = String::new();
        for d in drills {
            section(&mut out, d);
        }
        out
    };
    std::thread::scope(|scope| {
        let rest = scope.spawn(|| write(second));
        let mut out = write(first);
        match rest.join() {
            Ok(rest) => out.push_str(&rest),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        out
    })
}

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
    for e in &d.excluded {
        let _ = writeln!(
            out,
            "- Left alone ({}): {}",
            cell(&e.reason),
            cell(&e.pods.iter().cloned().collect::<Vec<_>>().join(", "))
        );
    }
    let _ = writeln!(
        out,
        "- Rollbacks: {} run(s) changed something; {} restored exactly, {} failed",
        d.rollbacks.runs_with_changes, d.rollbacks.restored, d.rollbacks.failed
    );
    for a in &d.aborts {
        let _ = writeln!(
            out,
            "- Aborted {} ({}): {}",
            cell(&a.run),
            cell(&a.cause),
            cell(&a.reason)
        );
    }
    out.push('\n');
    md_table(out, &TALLY_HEAD, std::iter::once(tally_cells(&d.tally)));
    md_table(out, &FIGURE_HEAD, figure_rows(d));
    if d.runs.is_empty() {
        let _ = writeln!(out, "No runs in the period.\n");
        return;
    }
    let _ = writeln!(out, "#### Runs\n");
    md_table(out, &RUN_HEAD, d.runs.iter().map(run_cells));
    let _ = writeln!(out, "#### Evidence\n");
    for run in &d.runs {
        let _ = writeln!(out, "- **{}**", run.run);
        for (label, text) in evidence_lines(run) {
            let _ = writeln!(out, "  - {label}: {}", cell(&text));
        }
    }
    out.push('\n');
}

// ---------------------------------------------------------------------------------- CSV

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn number(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// One row per planned fire and per run outside the calendar, with the run's measurements.
fn csv(r: &Report) -> String {
    let mut out = String::from(
        "cluster,drill,kind,scheduled,planned,outcome,run,reason,rto_seconds,rto_target_seconds,rpo_seconds,rpo_target_seconds,availability,availability_target,latency_p95_seconds,rollback,safety_violation\n",
    );
    let runs: std::collections::HashMap<(&str, &str), &RunRow> = r
        .drills
        .iter()
        .flat_map(|d| {
            d.runs
                .iter()
                .map(move |run| ((d.cluster.as_str(), run.run.as_str()), run))
        })
        .collect();
    let mut line = |fields: Vec<String>| {
        let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    };
    let measured = |run: Option<&&RunRow>| -> Vec<String> {
        match run {
            Some(x) => vec![
                number(x.rto_seconds),
                number(x.rto_target_seconds),
                number(x.rpo_seconds),
                number(x.rpo_target_seconds),
                number(x.availability),
                number(x.availability_target),
                number(x.latency_p95_seconds),
                x.rollback.to_owned(),
                x.safety_violation.to_string(),
            ],
            None => vec![String::new(); 9],
        }
    };
    for a in &r.adherence {
        let run = a
            .run
            .as_deref()
            .and_then(|id| runs.get(&(a.cluster.as_str(), id)));
        let mut fields = vec![
            a.cluster.clone(),
            a.drill.clone(),
            a.kind.clone(),
            a.scheduled.clone(),
            a.planned.clone(),
            a.outcome.clone(),
            a.run.clone().unwrap_or_default(),
            a.reason.clone().unwrap_or_default(),
        ];
        fields.extend(measured(run));
        line(fields);
    }
    for d in &r.drills {
        for run in d.runs.iter().filter(|x| x.unplanned) {
            let mut fields = vec![
                d.cluster.clone(),
                d.drill.clone(),
                d.kind.clone(),
                run.scheduled.clone(),
                "unplanned".to_owned(),
                run.status.clone(),
                run.run.clone(),
                run.reason.clone().unwrap_or_default(),
            ];
            fields.extend(measured(Some(&run)));
            line(fields);
        }
    }
    out
}

// ---------------------------------------------------------------------------------- HTML

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html_table<S: AsRef<str>>(
    out: &mut String,
    class: &str,
    head: &[&str],
    rows: impl Iterator<Item = Vec<S>>,
) {
    let _ = write!(out, "<table class=\"{class}\"><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let c = c.as_ref();
            // Outcomes and states get a class, so they read at a glance and in print.
            let class = match (head.get(i).copied(), c) {
                (Some("outcome" | "status" | "state" | "rollback"), v) => {
                    // Only what a class name may hold: the word comes from the store.
                    let word: String = v
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect();
                    format!(" class=\"s-{word}\"")
                }
                _ => String::new(),
            };
            let _ = write!(out, "<td{class}>{}</td>", esc(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2430;margin:2em auto;max-width:1200px;padding:0 1em}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #d0d6e0;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.6em}dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dl.meta dt{font-weight:600}
table{border-collapse:collapse;margin:.6em 0 1.2em;width:100%;font-size:.92em}
th,td{border:1px solid #d0d6e0;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#eef1f6}
.s-passed,.s-closed,.s-restored{color:#166534;font-weight:600}.s-failed,.s-error,.s-open,.s-unaccounted{color:#b91c1c;font-weight:600}
.s-aborted,.s-missed,.s-blocked{color:#b45309;font-weight:600}.s-skipped,.s-pending,.s-dry-run{color:#4b5563}
.chart{margin:.4em 0 1em}.chart text{font-size:11px;fill:#4b5563}.evidence{font-size:.88em}.evidence li{margin:.3em 0}
.evidence dt{font-weight:600;display:inline}.evidence dd{display:inline;margin:0 0 0 .3em}
section.drill{break-inside:avoid-page}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-before:page}h2:first-of-type{break-before:auto}
tr,li,svg{break-inside:avoid}a{color:inherit;text-decoration:none}}
";

fn html(r: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n<title>firedrill compliance report {} to {}</title>\n<style>{STYLE}</style></head><body>\n",
        esc(&r.since),
        esc(&r.until)
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
        let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
    }
    out.push_str("</dl>\n<h2 id=\"summary\">Summary</h2>\n");
    html_table(
        &mut out,
        "summary",
        &TALLY_HEAD,
        std::iter::once(tally_cells(&r.summary)),
    );
    let _ = writeln!(
        out,
        "<p>Adherence is the share of due fires that ran (passed, failed, aborted or error); skipped fires (blackouts) and fires not yet due are not due. {} run(s) in the period were outside the calendar (manual). {} follow-up(s) open.</p>",
        r.summary.unplanned_runs,
        r.follow_ups.iter().filter(|f| f.state == "open").count()
    );
    out.push_str("<h2 id=\"fleet\">Fleet</h2>\n");
    html_table(
        &mut out,
        "fleet",
        &FLEET_HEAD,
        r.fleet.iter().map(fleet_cells),
    );
    out.push_str("<h2 id=\"follow-ups\">Follow-ups</h2>\n");
    if r.follow_ups.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        html_table(
            &mut out,
            "follow-ups",
            &FOLLOW_HEAD,
            r.follow_ups.iter().map(follow_cells),
        );
    }
    out.push_str("<h2 id=\"drills\">Drills</h2>\n");
    out.push_str(&on_two_threads(&r.drills, html_drill));
    out.push_str("<h2 id=\"adherence\">Programme adherence</h2>\n");
    html_table(
        &mut out,
        "adherence",
        &[
            "cluster",
            "drill",
            "scheduled (UTC)",
            "planned",
            "outcome",
            "run",
            "reason",
        ],
        r.adherence.iter().map(adherence_cells),
    );
    out.push_str("</body></html>\n");
    out
}

fn html_drill(out: &mut String, d: &DrillReport) {
    let _ = write!(
        out,
        "<section class=\"drill\"><h3>{} on {} <small>({})</small></h3>\n<ul>",
        esc(&d.drill),
        esc(&d.cluster),
        esc(&d.kind)
    );
    let _ = write!(
        out,
        "<li>Schedule: {}</li><li>Scope: {}</li>",
        esc(d.schedule.as_deref().unwrap_or("not in the drill file")),
        esc(&if d.scope.is_empty() {
            "no pod targets (the kind acts on what its fault names)".to_owned()
        } else {
            d.scope.join("; ")
        })
    );
    for e in &d.excluded {
        let _ = write!(
            out,
            "<li>Left alone ({}): {}</li>",
            esc(&e.reason),
            esc(&e.pods.iter().cloned().collect::<Vec<_>>().join(", "))
        );
    }
    let _ = write!(
        out,
        "<li>Rollbacks: {} run(s) changed something; {} restored exactly, {} failed</li>",
        d.rollbacks.runs_with_changes, d.rollbacks.restored, d.rollbacks.failed
    );
    for a in &d.aborts {
        let _ = write!(
            out,
            "<li>Aborted {} ({}): {}</li>",
            esc(&a.run),
            esc(&a.cause),
            esc(&a.reason)
        );
    }
    out.push_str("</ul>\n");
    html_table(
        out,
        "tally",
        &TALLY_HEAD,
        std::iter::once(tally_cells(&d.tally)),
    );
    html_table(out, "figures", &FIGURE_HEAD, figure_rows(d));
    for (title, pick, target, unit) in [
        (
            "RTO",
            (|r: &RunRow| r.rto_seconds) as fn(&RunRow) -> Option<f64>,
            d.rto.target,
            "s",
        ),
        ("RPO", |r: &RunRow| r.rpo_seconds, d.rpo.target, "s"),
        (
            "availability",
            |r: &RunRow| r.availability.map(|a| a * 100.0),
            d.availability.target.map(|a| a * 100.0),
            "%",
        ),
    ] {
        let points: Vec<(String, f64)> = d
            .runs
            .iter()
            .filter_map(|r| pick(r).map(|v| (r.scheduled.clone(), v)))
            .collect();
        if !points.is_empty() {
            chart(
                out,
                &format!("{title} per run, {} on {}", d.drill, d.cluster),
                &points,
                target,
                unit,
            );
        }
    }
    if d.runs.is_empty() {
        out.push_str("<p>No runs in the period.</p></section>\n");
        return;
    }
    html_table(out, "runs", &RUN_HEAD, d.runs.iter().map(run_cells));
    out.push_str("<details open><summary>Evidence</summary><ul class=\"evidence\">\n");
    for run in &d.runs {
        let _ = write!(out, "<li><strong>{}</strong><dl>", esc(&run.run));
        for (label, text) in evidence_lines(run) {
            let _ = write!(
                out,
                "<div><dt>{}</dt><dd>{}</dd></div>",
                esc(label),
                esc(&text)
            );
        }
        out.push_str("</dl></li>\n");
    }
    out.push_str("</ul></details></section>\n");
}

/// A line chart of one measure over the runs, with the target as a dashed line: inline SVG.
fn chart(out: &mut String, title: &str, points: &[(String, f64)], target: Option<f64>, unit: &str) {
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
    let _ = write!(
        out,
        "<figure class=\"chart\"><svg role=\"img\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
        esc(title)
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
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    let _ = write!(
        out,
        "<polyline class=\"series\" fill=\"none\" stroke=\"#1d4ed8\" stroke-width=\"2\" points=\"{}\"/>",
        path.join(" ")
    );
    for (i, (at, v)) in points.iter().enumerate() {
        let _ = write!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1d4ed8\"><title>{} {v:.2}{unit}</title></circle>",
            x(i),
            y(*v),
            esc(at)
        );
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            out,
            "<text x=\"{left}\" y=\"{:.1}\">{}</text><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            h - 6.0,
            esc(&first.0[..10.min(first.0.len())]),
            w - 10.0,
            h - 6.0,
            esc(&last.0[..10.min(last.0.len())])
        );
    }
    let _ = writeln!(
        out,
        "</svg><figcaption>{}</figcaption></figure>",
        esc(title)
    );
}
