//! The report as JSON, for other tools: exactly `serde_json::to_writer_pretty`'s text, made in
//! parts (serde_json's pretty layout reproduced at the depth each part starts).

use std::io;
use std::ops::Range;

use super::{ranges, Part};
use crate::history::report::{DrillReport, Report};

/// The report's parts, in order, in JSON: the same text as `serde_json::to_writer_pretty`.
pub(super) fn parts(r: &Report, rows: usize) -> Vec<Part<'_>> {
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

pub(super) fn part(out: &mut Vec<u8>, r: &Report, part: &Part<'_>) -> io::Result<()> {
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
