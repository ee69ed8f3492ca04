//! The report's two tables that grow with the calendar, kept small: a year of an every-minute
//! drill is 525,600 planned fires, each a row of the adherence table and, when nobody recorded
//! what became of it, a follow-up. A row is 24 bytes of numbers pointing into tables of the
//! names and texts it uses (each kept once); it is made whole ([`Adherence`], [`FollowUp`]) only
//! when it is read, a part of the rendering at a time.

use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use foldhash::HashMap;
use serde::ser::{Serialize, Serializer};

use super::{Adherence, FollowUp, Provenance};

/// Each text once, by number.
#[derive(Clone, Debug, Default)]
struct Names {
    list: Vec<Arc<str>>,
    index: HashMap<Arc<str>, u32>,
}

impl Names {
    fn id(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.index.get(text) {
            return id;
        }
        let id = self.list.len() as u32;
        let text: Arc<str> = Arc::from(text);
        self.list.push(text.clone());
        self.index.insert(text, id);
        id
    }

    fn get(&self, id: u32) -> &str {
        self.list.get(id as usize).map_or("", |t| t)
    }
}

/// No text.
const NONE: u32 = u32::MAX;

/// One planned fire on one cluster (its block's). 24 bytes.
#[derive(Clone, Copy, Debug)]
struct Row {
    /// Seconds since the epoch.
    scheduled: i64,
    /// A (drill, kind) pair.
    drill: u32,
    run: u32,
    reason: u32,
    /// Among the calendar's few words.
    planned: u8,
    /// Among the few outcomes.
    outcome: u16,
    /// Whose record accounts for the fire ([`provenance`]).
    provenance: u8,
}

// A year of every-minute fires is 525,600 rows: each stays 24 bytes.
const _: () = assert!(std::mem::size_of::<Row>() == 24);

/// A fire's provenance as a row keeps it.
fn provenance(p: Option<Provenance>) -> u8 {
    match p {
        None => 0,
        Some(Provenance::Scheduler) => 1,
        Some(Provenance::ByHand) => 2,
    }
}

fn provenance_of(p: u8) -> Option<Provenance> {
    match p {
        1 => Some(Provenance::Scheduler),
        2 => Some(Provenance::ByHand),
        _ => None,
    }
}

/// Rows are kept in chunks of this many, each allocated once at its size: no growing list is
/// ever copied, nor twice its size.
const CHUNK: usize = 16_384;

/// The rows of one cluster.
#[derive(Clone, Debug, Default)]
struct Block {
    cluster: u32,
    chunks: Vec<Vec<Row>>,
    len: usize,
}

impl Block {
    fn push(&mut self, row: Row) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => chunk.push(row),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(row);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    fn get(&self, i: usize) -> Option<&Row> {
        self.chunks.get(i / CHUNK).and_then(|c| c.get(i % CHUNK))
    }
}

/// The rows, one block per cluster in the order the report lists clusters, and what they
/// point into.
#[derive(Clone, Debug, Default)]
pub(super) struct Table {
    texts: Names,
    /// The calendar's words: a handful, numbered small.
    plans: Names,
    /// Outcomes: a handful, numbered small.
    words: Names,
    /// (drill, kind) pairs, as text numbers.
    drills: Vec<(u32, u32)>,
    drill_index: HashMap<(u32, u32), u32>,
    blocks: Vec<Block>,
}

fn stamp(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn seconds(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .unwrap_or_default()
}

impl Table {
    /// A table whose rows come in one block per cluster, of `clusters` in order.
    pub(super) fn with_blocks(clusters: &[String]) -> Self {
        let mut table = Table::default();
        table.blocks = clusters
            .iter()
            .map(|c| Block {
                cluster: table.texts.id(c),
                ..Block::default()
            })
            .collect();
        table
    }

    pub(super) fn text(&mut self, text: &str) -> u32 {
        self.texts.id(text)
    }

    pub(super) fn drill(&mut self, name: &str, kind: &str) -> u32 {
        let key = (self.texts.id(name), self.texts.id(kind));
        if let Some(&id) = self.drill_index.get(&key) {
            return id;
        }
        let id = self.drills.len() as u32;
        self.drills.push(key);
        self.drill_index.insert(key, id);
        id
    }

    /// Adds a row to block `block`; its number within the block.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn push(
        &mut self,
        block: usize,
        drill: u32,
        scheduled: DateTime<Utc>,
        planned: &str,
        outcome: &str,
        run: Option<&str>,
        provenance: Option<Provenance>,
        reason: Option<&str>,
    ) -> u32 {
        // Outcomes and the calendar's words are a fixed few (a history written by hand could
        // hold more than 65,535 different outcomes; past that they read as empty, as would a
        // 256th word of the calendar's).
        let row = Row {
            scheduled: scheduled.timestamp(),
            drill,
            planned: u8::try_from(self.plans.id(planned)).unwrap_or(u8::MAX),
            outcome: u16::try_from(self.words.id(outcome)).unwrap_or(u16::MAX),
            provenance: self::provenance(provenance),
            run: run.map_or(NONE, |r| self.texts.id(r)),
            reason: reason.map_or(NONE, |r| self.texts.id(r)),
        };
        let Some(b) = self.blocks.get_mut(block) else {
            return NONE;
        };
        b.push(row);
        (b.len - 1) as u32
    }

    /// Where each block starts among all rows.
    pub(super) fn offsets(&self) -> Vec<u32> {
        let mut at = 0u32;
        self.blocks
            .iter()
            .map(|b| {
                let start = at;
                at += b.len as u32;
                start
            })
            .collect()
    }

    fn len(&self) -> usize {
        self.blocks.iter().map(|b| b.len).sum()
    }

    /// Row `i` among all, and its block.
    fn row(&self, mut i: usize) -> Option<(&Block, &Row)> {
        for block in &self.blocks {
            if i < block.len {
                return block.get(i).map(|r| (block, r));
            }
            i -= block.len;
        }
        None
    }

    /// The rows `at`, in order, each with its block: found where they start, not counted to.
    fn rows(&self, at: Range<usize>) -> impl Iterator<Item = (&Block, &Row)> + '_ {
        let mut skip = at.start;
        let mut first = self.blocks.len();
        for (b, block) in self.blocks.iter().enumerate() {
            if skip < block.len {
                first = b;
                break;
            }
            skip -= block.len;
        }
        let (chunk, offset) = (skip / CHUNK, skip % CHUNK);
        self.blocks
            .iter()
            .enumerate()
            .skip(first)
            .flat_map(move |(b, block)| {
                // Only the first block starts inside.
                let (chunk, offset) = if b == first { (chunk, offset) } else { (0, 0) };
                block
                    .chunks
                    .iter()
                    .skip(chunk)
                    .enumerate()
                    .flat_map(move |(c, rows)| {
                        rows.get(if c == 0 { offset } else { 0 }..)
                            .unwrap_or_default()
                            .iter()
                    })
                    .map(move |r| (block, r))
            })
            .take(at.end.saturating_sub(at.start))
    }

    /// The instant a row is scheduled at, in seconds.
    pub(super) fn scheduled(&self, row: u32) -> i64 {
        self.row(row as usize).map_or(0, |(_, r)| r.scheduled)
    }

    fn adherence(&self, (block, r): (&Block, &Row)) -> Adherence {
        let (drill, kind) = self
            .drills
            .get(r.drill as usize)
            .copied()
            .unwrap_or((NONE, NONE));
        let text = |id: u32| (id != NONE).then(|| self.texts.get(id).to_owned());
        Adherence {
            cluster: self.texts.get(block.cluster).to_owned(),
            drill: self.texts.get(drill).to_owned(),
            kind: self.texts.get(kind).to_owned(),
            scheduled: stamp(r.scheduled),
            planned: self.plans.get(u32::from(r.planned)).to_owned(),
            outcome: self.words.get(u32::from(r.outcome)).to_owned(),
            run: text(r.run),
            provenance: provenance_of(r.provenance),
            reason: text(r.reason),
        }
    }
}

/// Every fire the calendar planned in the period, per cluster, and what became of it: the
/// programme adherence table. Read a row at a time ([`Adherences::rows`]).
#[derive(Clone, Debug, Default)]
pub struct Adherences {
    table: Arc<Table>,
}

impl Adherences {
    pub(super) fn new(table: Arc<Table>) -> Self {
        Adherences { table }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> Option<Adherence> {
        self.table.row(i).map(|r| self.table.adherence(r))
    }

    /// The rows `at`, each made whole as it is read.
    pub fn rows(&self, at: Range<usize>) -> impl Iterator<Item = Adherence> + '_ {
        self.table.rows(at).map(|r| self.table.adherence(r))
    }

    pub fn iter(&self) -> impl Iterator<Item = Adherence> + '_ {
        self.rows(0..self.len())
    }

    /// Adds a row at the end.
    pub fn push(&mut self, a: Adherence) {
        let table = Arc::make_mut(&mut self.table);
        let (cluster, drill) = (table.text(&a.cluster), table.drill(&a.drill, &a.kind));
        if table.blocks.last().is_none_or(|b| b.cluster != cluster) {
            table.blocks.push(Block {
                cluster,
                ..Block::default()
            });
        }
        table.push(
            table.blocks.len() - 1,
            drill,
            DateTime::<Utc>::from_timestamp(seconds(&a.scheduled), 0).unwrap_or_default(),
            &a.planned,
            &a.outcome,
            a.run.as_deref(),
            a.provenance,
            a.reason.as_deref(),
        );
    }
}

impl Serialize for Adherences {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

/// One follow-up, as kept: a run's, kept whole (`closer` is `LISTED` and `at` its number among
/// those), or a fire's that did not run (`at` its adherence row, `closer` the number of the
/// passed run that closed it, or `NONE` while it is open). 8 bytes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    at: u32,
    closer: u32,
}

/// A follow-up kept whole.
const LISTED: u32 = u32::MAX - 1;

impl Entry {
    pub(super) fn listed(n: u32) -> Self {
        Entry {
            at: n,
            closer: LISTED,
        }
    }

    pub(super) fn fire(row: u32, closer: Option<u32>) -> Self {
        Entry {
            at: row,
            closer: closer.map_or(NONE, |c| c.min(LISTED - 1)),
        }
    }
}

/// What failures leave to do, open ones first: a run's kept whole, a fire's that did not run
/// kept as its adherence row. Read a row at a time ([`FollowUps::rows`]).
#[derive(Clone, Debug, Default)]
pub struct FollowUps {
    table: Arc<Table>,
    listed: Vec<FollowUp>,
    /// (run, scheduled) of the passed runs that closed a fire's follow-up.
    closers: Vec<(String, String)>,
    order: Vec<Entry>,
    open: usize,
}

impl FollowUps {
    pub(super) fn new(
        table: Arc<Table>,
        listed: Vec<FollowUp>,
        closers: Vec<(String, String)>,
        order: Vec<Entry>,
    ) -> Self {
        let mut follow_ups = FollowUps {
            table,
            listed,
            closers,
            order,
            open: 0,
        };
        follow_ups.open = follow_ups
            .order
            .iter()
            .filter(|e| follow_ups.is_open(e))
            .count();
        follow_ups
    }

    fn is_open(&self, e: &Entry) -> bool {
        match e.closer {
            LISTED => self
                .listed
                .get(e.at as usize)
                .is_some_and(|f| f.state == "open"),
            closer => closer == NONE,
        }
    }

    /// The cluster a follow-up is about, and whether it is open, without making it whole.
    pub(super) fn cluster_and_state(&self) -> impl Iterator<Item = (&str, bool)> + '_ {
        self.order.iter().map(|e| {
            let cluster = match e.closer {
                LISTED => self.listed.get(e.at as usize).map_or("", |f| &f.cluster),
                _ => self
                    .table
                    .row(e.at as usize)
                    .map_or("", |(b, _)| self.table.texts.get(b.cluster)),
            };
            (cluster, self.is_open(e))
        })
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// How many are open.
    pub fn open(&self) -> usize {
        self.open
    }

    fn whole(&self, e: &Entry) -> FollowUp {
        if e.closer == LISTED {
            return self.listed[e.at as usize].clone();
        }
        let a = self
            .table
            .row(e.at as usize)
            .map(|r| self.table.adherence(r));
        let a = a.unwrap_or_else(|| Adherence {
            cluster: String::new(),
            drill: String::new(),
            kind: String::new(),
            scheduled: String::new(),
            planned: String::new(),
            outcome: String::new(),
            run: None,
            provenance: None,
            reason: None,
        });
        FollowUp {
            what: format!(
                "did not run ({}): {}",
                a.outcome,
                a.reason.as_deref().unwrap_or("no reason recorded")
            ),
            cluster: a.cluster,
            drill: a.drill,
            run: None,
            scheduled: a.scheduled,
            state: match self.closers.get(e.closer as usize) {
                Some((run, at)) => format!("closed by {run} (passed {at})"),
                None => "open".to_owned(),
            },
        }
    }

    pub fn get(&self, i: usize) -> Option<FollowUp> {
        self.order.get(i).map(|e| self.whole(e))
    }

    /// The follow-ups `at`, each made whole as it is read.
    pub fn rows(&self, at: Range<usize>) -> impl Iterator<Item = FollowUp> + '_ {
        let end = at.end.min(self.order.len());
        let start = at.start.min(end);
        self.order[start..end].iter().map(|e| self.whole(e))
    }

    pub fn iter(&self) -> impl Iterator<Item = FollowUp> + '_ {
        self.rows(0..self.len())
    }

    /// Adds one at the end.
    pub fn push(&mut self, f: FollowUp) {
        if f.state == "open" {
            self.open += 1;
        }
        self.order.push(Entry::listed(self.listed.len() as u32));
        self.listed.push(f);
    }
}

impl Serialize for FollowUps {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three clusters' blocks across chunk edges (one empty): any run of rows reads as the rows
    /// one by one, and as they went in.
    #[test]
    fn rows_are_read_from_where_they_start_across_chunks_and_blocks() {
        let clusters = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let mut table = Table::with_blocks(&clusters);
        let drill = table.drill("d", "probe");
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let sizes = [CHUNK + 5, 0, 2 * CHUNK + 1];
        for (block, size) in sizes.iter().enumerate() {
            for i in 0..*size {
                let reason = format!("r{}", i % 7);
                table.push(
                    block,
                    drill,
                    t0 + chrono::TimeDelta::minutes(i as i64),
                    "fires",
                    if i % 3 == 0 { "missed" } else { "passed" },
                    None,
                    None,
                    Some(&reason),
                );
            }
        }
        let all = Adherences::new(Arc::new(table));
        let n: usize = sizes.iter().sum();
        assert_eq!(all.len(), n);
        let edges = [
            0,
            1,
            CHUNK - 1,
            CHUNK,
            CHUNK + 4,
            CHUNK + 5,
            CHUNK + 6,
            2 * CHUNK,
            n - 1,
            n,
        ];
        for &start in &edges {
            for &end in edges.iter().filter(|&&e| e >= start) {
                let read: Vec<String> = all.rows(start..end).map(|a| a.scheduled).collect();
                let one_by_one: Vec<String> = (start..end)
                    .map(|i| all.get(i).unwrap().scheduled)
                    .collect();
                assert_eq!(read, one_by_one, "{start}..{end}");
            }
        }
        // Row i of block c, as it went in.
        let i = 2 * CHUNK;
        let last = all.get(n - 1).unwrap();
        assert_eq!(
            (
                last.cluster.as_str(),
                last.outcome.as_str(),
                last.reason.clone(),
                last.scheduled
            ),
            (
                "c",
                if i % 3 == 0 { "missed" } else { "passed" },
                Some(format!("r{}", i % 7)),
                stamp((t0 + chrono::TimeDelta::minutes(i as i64)).timestamp())
            )
        );
        assert_eq!(all.get(CHUNK + 5).unwrap().cluster, "c");
        assert_eq!(all.get(CHUNK + 4).unwrap().cluster, "a");
        assert!(all.get(n).is_none());
    }
}
