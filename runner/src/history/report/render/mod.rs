//! The report as Markdown (wikis), one self-contained HTML file (inline CSS and SVG, no request
//! leaves the page; prints to PDF), JSON and CSV (other tools).
//!
//! A year of hourly drills is 100,000 rows and 13–190 MB of text in any format, so none is held
//! whole: each format is cut into parts (the report's head, runs of [`ROWS_PER_PART`] table
//! rows, a drill's head or chart) made alternately on two threads and written in order.
//!
//! This module holds what the formats share: the parts and the two-thread writer, and each
//! table's head and cells. Each format (`markdown`, `html`, `json`, `csv`) lists its parts in its
//! own order and makes each one.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::ops::Range;

use super::{Adherence, DrillReport, Figure, FollowUp, Provenance, Report, RunRow, Tally};

mod csv;
mod html;
mod json;
mod markdown;

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
            &json::parts(report, rows),
            |o, p| json::part(o, report, p),
            out,
        ),
        Format::Md => in_order(
            &markdown::parts(report, rows),
            |o, p| {
                markdown::part(o, report, p);
                Ok(())
            },
            out,
        ),
        Format::Html => in_order(
            &html::parts(report, rows),
            |o, p| {
                html::part(o, report, p);
                Ok(())
            },
            out,
        ),
        Format::Csv => {
            let runs = csv::runs_by_id(report);
            in_order(
                &csv::parts(report, rows),
                |o, p| {
                    csv::part(o, report, &runs, p);
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

const TALLY_HEAD: [&str; 13] = [
    "planned",
    "ran",
    "passed",
    "failed",
    "aborted",
    "error",
    "ineffective",
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
        t.ineffective,
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

const FLEET_HEAD: [&str; 13] = [
    "cluster",
    "planned",
    "ran",
    "passed",
    "failed",
    "ineffective",
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
        c.tally.ineffective.to_string(),
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
        ("steps", &e.steps),
    ] {
        if !items.is_empty() {
            out.push((label, items.as_slice()));
        }
    }
    if let Some(s) = &e.samples {
        out.push(("probes", std::slice::from_ref(s)));
    }
    if let Some(effect) = &e.effect {
        out.push(("effect", std::slice::from_ref(effect)));
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

/// Appends a drill's notes — the pods it left alone and why, its rollbacks, its aborts — as items
/// between `open` and `close` (an HTML `<li>` or a Markdown list line), text escaped by `escape`.
fn drill_notes(
    out: &mut String,
    d: &DrillReport,
    open: &str,
    close: &str,
    escape: fn(&mut String, &str),
) {
    for e in &d.excluded {
        out.push_str(open);
        out.push_str("Left alone (");
        escape(out, &e.reason);
        out.push_str("): ");
        for (i, pod) in e.pods.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            escape(out, pod);
        }
        out.push_str(close);
    }
    let _ = write!(
        out,
        "{open}Rollbacks: {} run(s) changed something; {} restored exactly, {} failed{close}",
        d.rollbacks.runs_with_changes, d.rollbacks.restored, d.rollbacks.failed
    );
    for a in &d.aborts {
        out.push_str(open);
        out.push_str("Aborted ");
        escape(out, &a.run);
        out.push_str(" (");
        escape(out, &a.cause);
        out.push_str("): ");
        escape(out, &a.reason);
        out.push_str(close);
    }
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

#[cfg(test)]
mod tests {
    use std::io::{self, Write};

    use proptest::prelude::*;

    use super::super::{DrillReport, Figure, Report, Rollbacks, Tally};
    use super::csv::csv_field;
    use super::html::esc;
    use super::markdown::cell;
    use super::{in_order, render, render_with, Format};

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
