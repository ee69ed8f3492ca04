//! The report as Markdown (wikis), one self-contained HTML file (inline CSS and SVG, no request
//! leaves the page; prints to PDF), JSON and CSV (other tools).
//!
//! A year of hourly drills is 100,000 rows and 13–190 MB of text in any format, so none is held
//! whole: each format is cut into parts (the report's head, runs of [`ROWS_PER_PART`] table
//! rows, a drill's head or chart) made alternately on two threads and written in order.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::ops::Range;

use super::{Adherence, DrillReport, Figure, FollowUp, Provenance, Report, RunRow, Tally};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Html,
    Json,
    Csv,
}

/// Rows of a long table made as one part: large enough that a part's overhead is nothing, small
/// enough that two threads share the work evenly and memory holds a few parts at most.
const ROWS_PER_PART: usize = 2048;

/// The report in `format`, as one string (for tests and small reports: [`render_to`] streams).
pub fn render(report: &Report, format: Format) -> String {
    render_with(report, format, ROWS_PER_PART)
}

/// [`render`] with tables cut into parts of `rows` rows: the text is the same for any `rows`.
pub fn render_with(report: &Report, format: Format, rows: usize) -> String {
    let mut out = Vec::new();
    // Writing to memory cannot fail, and every part is text.
    let _ = write_parts(report, format, rows, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// [`render`], written to `out` as it is made, never held whole.
pub fn render_to(report: &Report, format: Format, out: &mut impl io::Write) -> io::Result<()> {
    write_parts(report, format, ROWS_PER_PART, out)
}

fn write_parts(
    report: &Report,
    format: Format,
    rows: usize,
    out: &mut impl io::Write,
) -> io::Result<()> {
    let rows = rows.max(1);
    match format {
        Format::Json => in_order(
            &json_parts(report, rows),
            |o, p| json_part(o, report, p),
            out,
        ),
        Format::Md => in_order(
            &md_parts(report, rows),
            |o, p| {
                md_part(o, report, p);
                Ok(())
            },
            out,
        ),
        Format::Html => in_order(
            &html_parts(report, rows),
            |o, p| {
                html_part(o, report, p);
                Ok(())
            },
            out,
        ),
        Format::Csv => {
            let runs = runs_by_id(report);
            in_order(
                &csv_parts(report, rows),
                |o, p| {
                    csv_part(o, report, &runs, p);
                    Ok(())
                },
                out,
            )
        }
    }
}

/// A piece of the report, made whole on one thread.
enum Part<'a> {
    /// The report's head: title, period, summary, fleet.
    Top,
    Text(&'static str),
    /// These rows of the programme adherence table.
    Adherence(Range<usize>),
    /// A drill's section up to its runs: scope, tally, figures.
    Drill(&'a DrillReport),
    /// One of a drill's charts (HTML).
    Chart(&'a DrillReport, usize),
    /// These rows of a drill's runs table.
    Runs(&'a DrillReport, Range<usize>),
    /// The evidence of these of a drill's runs.
    Evidence(&'a DrillReport, Range<usize>),
    /// These rows of the follow-ups.
    FollowUps(Range<usize>),
    /// The end of the drills (JSON's array).
    DrillsEnd,
}

/// `0..len` in runs of at most `rows` (one empty run when `len` is 0, so a table still has its
/// head).
fn ranges(len: usize, rows: usize) -> impl Iterator<Item = Range<usize>> {
    (0..len.div_ceil(rows).max(1)).map(move |i| i * rows..((i + 1) * rows).min(len))
}

/// What a part is made into: text (Markdown, HTML, CSV), or bytes (serde_json writes bytes).
trait Buffer: Default + Send {
    fn clear(&mut self);
    fn bytes(&self) -> &[u8];
}

impl Buffer for String {
    fn clear(&mut self) {
        String::clear(self);
    }
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Buffer for Vec<u8> {
    fn clear(&mut self) {
        Vec::clear(self);
    }
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// Makes the parts alternately here and on a second thread, each into its own buffer, and writes
/// them to `out` in order. The second thread makes at most two parts ahead of the writer (one
/// waiting, one being made), and buffers are reused. Without a second thread to be had, every
/// part is made here.
fn in_order<P: Sync, B: Buffer>(
    parts: &[P],
    make: impl Fn(&mut B, &P) -> io::Result<()> + Sync,
    out: &mut impl io::Write,
) -> io::Result<()> {
    std::thread::scope(|scope| {
        let (made, ready) = std::sync::mpsc::sync_channel::<io::Result<B>>(1);
        let (spent, reuse) = std::sync::mpsc::channel::<B>();
        let make = &make;
        let other = std::thread::Builder::new()
            .name("report-parts".to_owned())
            .spawn_scoped(scope, move || {
                for part in parts.iter().skip(1).step_by(2) {
                    let mut buf = reuse.try_recv().unwrap_or_default();
                    buf.clear();
                    let result = make(&mut buf, part).map(|()| buf);
                    let failed = result.is_err();
                    // Stop once the writer has stopped (its output failed) or this part failed.
                    if made.send(result).is_err() || failed {
                        return;
                    }
                }
            })
            .ok();
        let mut write = || -> io::Result<()> {
            let mut mine = B::default();
            for (i, part) in parts.iter().enumerate() {
                if other.is_none() || i % 2 == 0 {
                    mine.clear();
                    make(&mut mine, part)?;
                    out.write_all(mine.bytes())?;
                } else {
                    // Only a panic on the other thread ends its sends early: re-raised below.
                    let Ok(buf) = ready.recv() else { break };
                    let buf = buf?;
                    out.write_all(buf.bytes())?;
                    let _ = spent.send(buf);
                }
            }
            Ok(())
        };
        let written = write();
        // A second thread waiting to hand over a part stops.
        drop(ready);
        if let Some(Err(panic)) = other.map(|t| t.join()) {
            std::panic::resume_unwind(panic);
        }
        written
    })
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

fn adherence_cells(a: &Adherence) -> [&str; 8] {
    [
        &a.cluster,
        &a.drill,
        &a.scheduled,
        &a.planned,
        &a.outcome,
        a.run.as_deref().unwrap_or_default(),
        a.provenance.map_or("", Provenance::as_str),
        a.reason.as_deref().unwrap_or_default(),
    ]
}

const ADHERENCE_HEAD: [&str; 8] = [
    "cluster",
    "drill",
    "scheduled (UTC)",
    "planned",
    "outcome",
    "run",
    "provenance",
    "reason",
];

fn run_cells(r: &RunRow) -> [Cow<'_, str>; 9] {
    [
        if r.unplanned {
            Cow::Owned(r.run.clone() + " (manual)")
        } else {
            Cow::Borrowed(&r.run)
        },
        Cow::Borrowed(&r.scheduled),
        Cow::Borrowed(&r.status),
        Cow::Owned(seconds(r.rto_seconds)),
        Cow::Owned(seconds(r.rpo_seconds)),
        Cow::Owned(percent(r.availability)),
        Cow::Owned(
            r.latency_p95_seconds
                .map_or_else(|| "–".to_owned(), |l| format!("{:.0}ms", l * 1000.0)),
        ),
        Cow::Borrowed(r.rollback),
        Cow::Borrowed(r.reason.as_deref().unwrap_or_default()),
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

fn follow_cells(f: &FollowUp) -> [&str; 6] {
    [
        &f.state,
        &f.cluster,
        &f.drill,
        f.run.as_deref().unwrap_or_default(),
        &f.scheduled,
        &f.what,
    ]
}

/// The lines of a run's evidence, labelled, for both text formats: a line lists its items,
/// shown joined by "; ".
fn evidence_lines(r: &RunRow) -> Vec<(&'static str, &[String])> {
    let e = &r.evidence;
    let mut out = vec![("Job", std::slice::from_ref(&e.job))];
    if let Some(l) = &e.ledger {
        out.push(("ledger", std::slice::from_ref(l)));
    }
    for (label, items) in [
        ("targets", &e.targets),
        ("preflight", &e.preflight),
        ("changed", &e.changed),
        ("undone", &e.undone),
        ("DNS changes", &e.dns_changes),
        ("Events", &e.events),
        ("timeline", &e.timeline),
    ] {
        if !items.is_empty() {
            out.push((label, items.as_slice()));
        }
    }
    if let Some(s) = &e.samples {
        out.push(("probes", std::slice::from_ref(s)));
    }
    out
}

/// Appends `text` with each character in `special` replaced as `with` says, in one pass.
fn escaped(out: &mut String, text: &str, special: &[char], with: fn(char) -> &'static str) {
    let mut rest = text;
    while let Some(i) = rest.find(special) {
        out.push_str(&rest[..i]);
        // Every special character is ASCII: one byte.
        out.push_str(with(char::from(rest.as_bytes()[i])));
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Appends `items` joined by "; ", each escaped by `escape`.
fn joined(out: &mut String, items: &[String], escape: fn(&mut String, &str)) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        escape(out, item);
    }
}

// ---------------------------------------------------------------------------------- Markdown

/// Text as Markdown shows it literally on one line: no table breaks, no live HTML.
fn cell(out: &mut String, text: &str) {
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
fn md_parts(r: &Report, rows: usize) -> Vec<Part<'_>> {
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

fn md_part(out: &mut String, r: &Report, part: &Part<'_>) {
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
        "Adherence is the share of due fires that ran (passed, failed, aborted or error); skipped fires (blackouts) and fires not yet due are not due. {} run(s) in the period were outside the calendar (manual). {} follow-up(s) open.\n",
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
    for e in &d.excluded {
        out.push_str("- Left alone (");
        cell(out, &e.reason);
        out.push_str("): ");
        for (i, pod) in e.pods.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            cell(out, pod);
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "- Rollbacks: {} run(s) changed something; {} restored exactly, {} failed",
        d.rollbacks.runs_with_changes, d.rollbacks.restored, d.rollbacks.failed
    );
    for a in &d.aborts {
        out.push_str("- Aborted ");
        cell(out, &a.run);
        out.push_str(" (");
        cell(out, &a.cause);
        out.push_str("): ");
        cell(out, &a.reason);
        out.push('\n');
    }
    out.push('\n');
    md_table(out, &TALLY_HEAD, std::iter::once(tally_cells(&d.tally)));
    md_table(out, &FIGURE_HEAD, figure_rows(d));
    if d.runs.is_empty() {
        let _ = writeln!(out, "No runs in the period.\n");
    }
}

// ---------------------------------------------------------------------------------- JSON

/// The report's parts, in order, in JSON: the same text as `serde_json::to_writer_pretty`.
fn json_parts(r: &Report, rows: usize) -> Vec<Part<'_>> {
    let mut parts = vec![Part::Top];
    parts.extend(ranges(r.adherence.len(), rows).map(Part::Adherence));
    for d in &r.drills {
        parts.push(Part::Drill(d));
        parts.extend(ranges(d.runs.len(), rows).map(|at| Part::Runs(d, at)));
    }
    parts.push(Part::DrillsEnd);
    parts.extend(ranges(r.follow_ups.len(), rows).map(Part::FollowUps));
    parts.push(Part::Text("\n}\n"));
    parts
}

/// serde_json's pretty layout (two spaces) for a value `depth` levels into the document.
struct Nested {
    depth: usize,
    has_value: bool,
}

impl Nested {
    fn open<W: ?Sized + io::Write>(&mut self, out: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        out.write_all(bracket)
    }

    fn close<W: ?Sized + io::Write>(&mut self, out: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        closing(out, self.depth, self.has_value, bracket)
    }
}

/// The start of an element or member `depth` levels in: on a new line, after a comma unless
/// `first`.
fn item<W: ?Sized + io::Write>(out: &mut W, depth: usize, first: bool) -> io::Result<()> {
    out.write_all(if first { b"\n" } else { b",\n" })?;
    for _ in 0..depth {
        out.write_all(b"  ")?;
    }
    Ok(())
}

/// The closing bracket of an array or object `depth` levels in: on a line of its own unless
/// it is empty.
fn closing<W: ?Sized + io::Write>(
    out: &mut W,
    depth: usize,
    filled: bool,
    bracket: &[u8],
) -> io::Result<()> {
    if filled {
        item(out, depth, true)?;
    }
    out.write_all(bracket)
}

impl serde_json::ser::Formatter for Nested {
    fn begin_array<W: ?Sized + io::Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.open(out, b"[")
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.close(out, b"]")
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        out: &mut W,
        first: bool,
    ) -> io::Result<()> {
        item(out, self.depth, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.open(out, b"{")
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, out: &mut W) -> io::Result<()> {
        self.close(out, b"}")
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        out: &mut W,
        first: bool,
    ) -> io::Result<()> {
        item(out, self.depth, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, out: &mut W) -> io::Result<()> {
        out.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// `value`, `depth` levels into the document.
fn json_value(out: &mut Vec<u8>, depth: usize, value: &impl serde::Serialize) -> io::Result<()> {
    let layout = Nested {
        depth,
        has_value: false,
    };
    value
        .serialize(&mut serde_json::Serializer::with_formatter(out, layout))
        .map_err(io::Error::from)
}

/// The key of a member of an object `depth` levels in, `"key": `, after a comma unless
/// `first`. The keys are the report's field names: nothing to escape.
fn json_key(out: &mut Vec<u8>, depth: usize, first: bool, key: &str) -> io::Result<()> {
    item(out, depth, first)?;
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\": ");
    Ok(())
}

/// A member of an object `depth` levels in: `"key": value`, after a comma unless `first`.
fn json_member(
    out: &mut Vec<u8>,
    depth: usize,
    first: bool,
    key: &str,
    value: &impl serde::Serialize,
) -> io::Result<()> {
    json_key(out, depth, first, key)?;
    json_value(out, depth, value)
}

/// These of `items`, elements of an array `depth` levels in: the array's opening bracket with
/// the first, its closing bracket with the last.
fn json_items<T: serde::Serialize>(
    out: &mut Vec<u8>,
    depth: usize,
    (len, items): (usize, impl IntoIterator<Item = T>),
    at: &Range<usize>,
) -> io::Result<()> {
    if at.start == 0 {
        out.push(b'[');
    }
    for (i, element) in items.into_iter().enumerate() {
        item(out, depth + 1, at.start + i == 0)?;
        json_value(out, depth + 1, &element)?;
    }
    if at.end == len {
        closing(out, depth, len > 0, b"]")?;
    }
    Ok(())
}

fn json_part(out: &mut Vec<u8>, r: &Report, part: &Part<'_>) -> io::Result<()> {
    match part {
        Part::Top => {
            // Every member, in the order serde writes them: a member added to the report and
            // not here does not compile.
            let Report {
                since,
                until,
                generated,
                drill_file,
                store,
                clusters,
                drill,
                summary,
                fleet,
                adherence: _,
                drills: _,
                follow_ups: _,
            } = r;
            out.push(b'{');
            json_member(out, 1, true, "since", since)?;
            json_member(out, 1, false, "until", until)?;
            json_member(out, 1, false, "generated", generated)?;
            json_member(out, 1, false, "drill_file", drill_file)?;
            json_member(out, 1, false, "store", store)?;
            json_member(out, 1, false, "clusters", clusters)?;
            json_member(out, 1, false, "drill", drill)?;
            json_member(out, 1, false, "summary", summary)?;
            json_member(out, 1, false, "fleet", fleet)?;
            json_key(out, 1, false, "adherence")?;
        }
        Part::Adherence(at) => {
            json_items(
                out,
                1,
                (r.adherence.len(), r.adherence.rows(at.clone())),
                at,
            )?;
            if at.end == r.adherence.len() {
                json_key(out, 1, false, "drills")?;
                out.push(b'[');
            }
        }
        Part::Drill(d) => {
            let DrillReport {
                cluster,
                drill,
                kind,
                schedule,
                scope,
                excluded,
                tally,
                rto,
                rpo,
                availability,
                latency_p95,
                aborts,
                rollbacks,
                runs: _,
            } = d;
            let first = std::ptr::eq(*d, &r.drills[0]);
            item(out, 2, first)?;
            out.push(b'{');
            json_member(out, 3, true, "cluster", cluster)?;
            json_member(out, 3, false, "drill", drill)?;
            json_member(out, 3, false, "kind", kind)?;
            json_member(out, 3, false, "schedule", schedule)?;
            json_member(out, 3, false, "scope", scope)?;
            json_member(out, 3, false, "excluded", excluded)?;
            json_member(out, 3, false, "tally", tally)?;
            json_member(out, 3, false, "rto", rto)?;
            json_member(out, 3, false, "rpo", rpo)?;
            json_member(out, 3, false, "availability", availability)?;
            json_member(out, 3, false, "latency_p95", latency_p95)?;
            json_member(out, 3, false, "aborts", aborts)?;
            json_member(out, 3, false, "rollbacks", rollbacks)?;
            json_key(out, 3, false, "runs")?;
        }
        Part::Runs(d, at) => {
            json_items(out, 3, (d.runs.len(), &d.runs[at.clone()]), at)?;
            if at.end == d.runs.len() {
                closing(out, 2, true, b"}")?;
            }
        }
        Part::DrillsEnd => {
            closing(out, 1, !r.drills.is_empty(), b"]")?;
            json_key(out, 1, false, "follow_ups")?;
        }
        Part::FollowUps(at) => json_items(
            out,
            1,
            (r.follow_ups.len(), r.follow_ups.rows(at.clone())),
            at,
        )?,
        Part::Text(text) => out.extend_from_slice(text.as_bytes()),
        // Not in JSON's layout.
        Part::Chart(..) | Part::Evidence(..) => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------- CSV

fn csv_field(out: &mut String, text: &str) {
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
fn runs_by_id(r: &Report) -> foldhash::HashMap<(&str, &str), &RunRow> {
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
fn csv_parts(r: &Report, rows: usize) -> Vec<Part<'_>> {
    let mut parts = vec![Part::Text(
        "cluster,drill,kind,scheduled,planned,outcome,run,reason,rto_seconds,rto_target_seconds,rpo_seconds,rpo_target_seconds,availability,availability_target,latency_p95_seconds,rollback,safety_violation,provenance\n",
    )];
    parts.extend(ranges(r.adherence.len(), rows).map(Part::Adherence));
    for d in &r.drills {
        parts.extend(ranges(d.runs.len(), rows).map(|at| Part::Runs(d, at)));
    }
    parts
}

fn csv_part(
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

// ---------------------------------------------------------------------------------- HTML

fn esc(out: &mut String, text: &str) {
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
.s-passed,.s-closed,.s-restored{color:#166534;font-weight:600}.s-failed,.s-error,.s-open,.s-unaccounted{color:#b91c1c;font-weight:600}
.s-aborted,.s-missed,.s-blocked{color:#b45309;font-weight:600}.s-skipped,.s-pending,.s-dry-run{color:#4b5563}
.chart{margin:.4em 0 1em}.chart text{font-size:11px;fill:#4b5563}.evidence{font-size:.88em}.evidence li{margin:.3em 0}
.evidence dt{font-weight:600;display:inline}.evidence dd{display:inline;margin:0 0 0 .3em}
section.drill{break-inside:avoid-page}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-before:page}h2:first-of-type{break-before:auto}
tr,li,svg{break-inside:avoid}a{color:inherit;text-decoration:none}}
";

/// The report's parts, in order, as HTML lays them out.
fn html_parts(r: &Report, rows: usize) -> Vec<Part<'_>> {
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

fn html_part(out: &mut String, r: &Report, part: &Part<'_>) {
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
        "<p>Adherence is the share of due fires that ran (passed, failed, aborted or error); skipped fires (blackouts) and fires not yet due are not due. {} run(s) in the period were outside the calendar (manual). {} follow-up(s) open.</p>",
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
    for e in &d.excluded {
        out.push_str("<li>Left alone (");
        esc(out, &e.reason);
        out.push_str("): ");
        for (i, pod) in e.pods.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            esc(out, pod);
        }
        out.push_str("</li>");
    }
    let _ = write!(
        out,
        "<li>Rollbacks: {} run(s) changed something; {} restored exactly, {} failed</li>",
        d.rollbacks.runs_with_changes, d.rollbacks.restored, d.rollbacks.failed
    );
    for a in &d.aborts {
        out.push_str("<li>Aborted ");
        esc(out, &a.run);
        out.push_str(" (");
        esc(out, &a.cause);
        out.push_str("): ");
        esc(out, &a.reason);
        out.push_str("</li>");
    }
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

#[cfg(test)]
mod tests {
    use std::io::{self, Write};

    use proptest::prelude::*;

    use super::super::{DrillReport, Figure, Report, Rollbacks, Tally};
    use super::{cell, csv_field, esc, in_order, render, render_with, Format};

    fn numbers(out: &mut String, i: &usize) -> io::Result<()> {
        out.push_str(&format!("{i},"));
        Ok(())
    }

    #[test]
    fn parts_are_written_in_order() {
        let parts: Vec<usize> = (0..1001).collect();
        let mut out = Vec::new();
        in_order(&parts, numbers, &mut out).unwrap();
        let want: String = parts.iter().map(|i| format!("{i},")).collect();
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    /// An output that fails after `0` bytes.
    struct FailsAfter(usize);

    impl Write for FailsAfter {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if bytes.len() > self.0 {
                return Err(io::Error::other("disk full"));
            }
            self.0 -= bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A failed write, or a part that cannot be made on either thread, ends the writing with
    /// that error (and the second thread with it: the call returns).
    #[test]
    fn a_failed_write_or_part_is_the_error() {
        let parts: Vec<usize> = (0..1000).collect();
        let e = in_order(&parts, numbers, &mut FailsAfter(100)).unwrap_err();
        assert_eq!(e.to_string(), "disk full");
        for bad in [10, 11] {
            let e = in_order(
                &parts,
                |out: &mut String, i: &usize| {
                    if *i == bad {
                        return Err(io::Error::other(format!("part {i}")));
                    }
                    numbers(out, i)
                },
                &mut Vec::new(),
            )
            .unwrap_err();
            assert_eq!(e.to_string(), format!("part {bad}"));
        }
    }

    /// A panic making a part on the second thread comes through as itself.
    #[test]
    fn a_panic_on_the_second_thread_comes_through() {
        let parts: Vec<usize> = (0..100).collect();
        let panic = std::panic::catch_unwind(|| {
            in_order(
                &parts,
                |out: &mut String, i: &usize| {
                    assert_ne!(*i, 7, "part seven");
                    numbers(out, i)
                },
                &mut Vec::new(),
            )
        })
        .unwrap_err();
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("part seven"), "{message}");
    }

    fn text(escape: fn(&mut String, &str), input: &str) -> String {
        let mut out = String::new();
        escape(&mut out, input);
        out
    }

    proptest! {
        /// Escaping in one pass is the chain of replacements it replaced.
        #[test]
        fn escaping_is_the_replacements(input in "[a-z &<>\"|,;\r\n\\\\é]{0,24}") {
            prop_assert_eq!(
                text(cell, &input),
                input
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('|', "\\|")
                    .replace(['\r', '\n'], " ")
            );
            prop_assert_eq!(
                text(esc, &input),
                input
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&quot;")
            );
            let csv = if input.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", input.replace('"', "\"\""))
            } else {
                input.clone()
            };
            prop_assert_eq!(text(csv_field, &input), csv);
        }
    }

    fn report(drills: Vec<DrillReport>) -> Report {
        Report {
            since: "2027-01-01T00:00:00Z".into(),
            until: "2027-02-01T00:00:00Z".into(),
            generated: "2027-02-01T00:00:00Z".into(),
            drill_file: "drills.yaml".into(),
            store: "sqlite://history.db".into(),
            clusters: vec!["c".into()],
            drill: None,
            summary: Tally::default(),
            fleet: vec![],
            adherence: Default::default(),
            drills,
            follow_ups: Default::default(),
        }
    }

    fn drill(name: &str) -> DrillReport {
        DrillReport {
            cluster: "c".into(),
            drill: name.into(),
            kind: "pod-kill".into(),
            schedule: None,
            scope: vec![],
            excluded: vec![],
            tally: Tally::default(),
            rto: Figure::default(),
            rpo: Figure::default(),
            availability: Figure::default(),
            latency_p95: Figure::default(),
            aborts: vec![],
            rollbacks: Rollbacks::default(),
            runs: vec![],
        }
    }

    /// Empty tables, no drills, drills with no runs, rows with no drills: the parts still make
    /// the whole, and JSON is serde_json's own layout.
    #[test]
    fn empty_tables_make_the_same_text_in_parts() {
        let mut no_drills = report(vec![]);
        no_drills.adherence.push(super::super::Adherence {
            cluster: "c".into(),
            drill: "gone".into(),
            kind: "probe".into(),
            scheduled: "2027-01-05T00:00:00Z".into(),
            planned: "fires".into(),
            outcome: "missed".into(),
            run: None,
            provenance: None,
            reason: Some("past its deadline".into()),
        });
        no_drills.follow_ups.push(super::super::FollowUp {
            cluster: "c".into(),
            drill: "gone".into(),
            run: None,
            scheduled: "2027-01-05T00:00:00Z".into(),
            what: "did not run (missed): past its deadline".into(),
            state: "open".into(),
        });
        for r in [
            report(vec![]),
            report(vec![drill("a")]),
            report(vec![drill("a"), drill("b")]),
            no_drills,
        ] {
            assert_eq!(
                render(&r, Format::Json),
                serde_json::to_string_pretty(&r).unwrap() + "\n"
            );
            for format in [Format::Md, Format::Html, Format::Json, Format::Csv] {
                assert_eq!(render_with(&r, format, 1), render(&r, format), "{format:?}");
            }
        }
    }
}
