//! `firedrill report`: what an auditor asks of a drill programme, from the run history alone.
//!
//! The report sets the calendar the drill file plans for the period against what the history
//! says became of each fire (programme adherence), then per drill and cluster: the scope, the
//! runs and their outcome, RTO and RPO against the targets each run was judged by, availability
//! and latency during the drill, aborts, rollbacks and the evidence behind every claim, the
//! trend, and the follow-ups failures leave open. One model ([`Report`]) is rendered four ways
//! (`render`): Markdown, one self-contained HTML file, JSON and CSV.

mod adherence;
mod drill;
mod render;
mod runs;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

// Keyed by names read from the history, 100,000 at a time: hashed with foldhash (seeded per
// process, as std's is) rather than SipHash, which was a tenth of a year's report.
use foldhash::{HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::history::store::{FireRecord, Recorded};
use crate::run::{EventNote, JobNote, Revert, RevertWhen, RunRecord, RunStatus};
use crate::schedule::{self, Fire, FireStatus};

use adherence::Table;
use drill::{changed_anything, exclusions, figure, rollbacks, scope};
use runs::run_row;

pub use adherence::{Adherences, FollowUps};
pub use render::{render, render_to, render_with, Format};

/// What the report covers.
#[derive(Clone, Debug)]
pub struct Query {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub cluster: Option<String>,
    pub drill: Option<String>,
}

/// Everything the report says, in the order it says it. Field names are a contract (JSON).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub since: String,
    pub until: String,
    pub generated: String,
    pub drill_file: String,
    pub store: String,
    pub clusters: Vec<String>,
    pub drill: Option<String>,
    pub summary: Tally,
    /// One row per cluster, side by side.
    pub fleet: Vec<ClusterRow>,
    /// Every fire the calendar planned in the period, per cluster, and what became of it.
    pub adherence: Adherences,
    pub drills: Vec<DrillReport>,
    pub follow_ups: FollowUps,
}

/// Counts of what became of planned fires (and the runs outside the calendar).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tally {
    /// Fires the calendar planned in the period.
    pub planned: u32,
    /// Fires that ran and acted: passed, failed, aborted, error or ineffective.
    pub ran: u32,
    pub passed: u32,
    pub failed: u32,
    pub aborted: u32,
    pub error: u32,
    /// Ran, but the fault was not seen to take effect: nothing was judged.
    pub ineffective: u32,
    /// Ran without changing anything (the file or the run was not armed).
    pub dry_run: u32,
    /// Stopped before injecting by the kill switch, a blackout, a gate or the guard.
    pub blocked: u32,
    /// In a blackout, by the drill's `on_blackout: skip`.
    pub skipped: u32,
    /// Moved past a blackout (also counted by what became of them).
    pub deferred: u32,
    /// Past their deadline without starting.
    pub missed: u32,
    /// Due, yet nothing in the history says what became of them: a gap.
    pub unaccounted: u32,
    /// Still running, or not yet due when the report was made.
    pub pending: u32,
    /// Runs in the period that no planned fire explains (manual runs, drills no longer in the
    /// file).
    pub unplanned_runs: u32,
    /// `ran` out of the fires that were due and not skipped, in percent.
    pub adherence_percent: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClusterRow {
    pub cluster: String,
    pub tally: Tally,
    /// The longest RTO measured, with its target, and the drill.
    pub worst_rto: Option<Worst>,
    pub worst_rpo: Option<Worst>,
    pub lowest_availability: Option<f64>,
    pub open_follow_ups: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Worst {
    pub drill: String,
    pub seconds: f64,
    pub target_seconds: Option<f64>,
}

/// What the calendar planned for one fire, and what the history says became of it.
#[derive(Clone, Debug, Serialize)]
pub struct Adherence {
    pub cluster: String,
    pub drill: String,
    pub kind: String,
    pub scheduled: String,
    /// The calendar's word: fires, skipped, deferred, queued or missed.
    pub planned: String,
    /// passed, failed, aborted, error, ineffective, dry-run, blocked, running, skipped, missed,
    /// unaccounted or pending.
    pub outcome: String,
    pub run: Option<String>,
    /// Whose record accounts for the fire: the scheduler's, or a run by hand for it; none
    /// when neither exists (unaccounted, pending, or skipped by the calendar alone).
    pub provenance: Option<Provenance>,
    pub reason: Option<String>,
}

/// Whose record accounts for a planned fire (`Adherence::provenance`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provenance {
    /// Fired by the scheduler: its fire record, or the run in the Job it creates for the fire
    /// (named by the fire's run id), or the run or missed record of that id.
    Scheduler,
    /// Run by hand for this fire: `firedrill execute --scheduled T` by a person (another run
    /// id, or the fire's own id run outside any Job).
    ByHand,
}

impl Provenance {
    /// As the report's tables print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Scheduler => "scheduler",
            Provenance::ByHand => "by hand",
        }
    }

    /// Who ran `run`, which accounts for the fire whose run id is `fire_id`. The scheduler
    /// names every fire's Job and run by the fire's run id (and records a missed or vetoed fire
    /// under it); a Job's run records the Job it ran in. A person's `execute --scheduled T` draws a
    /// manual id, or, given the fire's id with `--run`, records that it ran in no Job.
    fn of(run: &RunRecord, fire_id: &str) -> Self {
        let outside_any_job =
            matches!(&run.evidence.job, Some(JobNote { name: None })) && !run.status.never_ran();
        if run.id == fire_id && !outside_any_job {
            Provenance::Scheduler
        } else {
            Provenance::ByHand
        }
    }
}

/// One drill on one cluster.
#[derive(Clone, Debug, Serialize)]
pub struct DrillReport {
    pub cluster: String,
    pub drill: String,
    pub kind: String,
    /// The cron as the drill file writes it (none for a drill no longer in the file).
    pub schedule: Option<String>,
    /// What the drill file targets.
    pub scope: Vec<String>,
    /// What the guard left alone across the runs, by reason, with how many pods each time.
    pub excluded: Vec<Exclusion>,
    pub tally: Tally,
    pub rto: Figure,
    pub rpo: Figure,
    pub availability: Figure,
    pub latency_p95: Figure,
    pub aborts: Vec<Abort>,
    pub rollbacks: Rollbacks,
    pub runs: Vec<RunRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Exclusion {
    pub reason: String,
    pub pods: BTreeSet<String>,
}

/// A measure over the drill's runs: the target of the newest run, the newest value, the worst
/// and the median, and how many runs missed the target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Figure {
    pub target: Option<f64>,
    pub last: Option<f64>,
    pub worst: Option<f64>,
    pub median: Option<f64>,
    pub measured: u32,
    pub breaches: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct Abort {
    pub run: String,
    pub cause: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Rollbacks {
    /// Runs that changed something.
    pub runs_with_changes: u32,
    /// Their ledger replayed in full: every change undone, or left on purpose and said.
    pub restored: u32,
    /// Their revert left something undone (the ledger stays open for `rollback`).
    pub failed: u32,
}

/// One run, with the evidence an auditor traces a claim to.
#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    pub run: String,
    pub scheduled: String,
    pub started: Option<String>,
    pub ended: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    /// Not a planned fire of the calendar (a manual run).
    pub unplanned: bool,
    pub rto_seconds: Option<f64>,
    pub rto_target_seconds: Option<f64>,
    pub rpo_seconds: Option<f64>,
    pub rpo_target_seconds: Option<f64>,
    pub availability: Option<f64>,
    pub availability_target: Option<f64>,
    pub latency_p95_seconds: Option<f64>,
    pub latency_p95_target_seconds: Option<f64>,
    pub requests: Option<u64>,
    pub rollback: &'static str,
    pub safety_violation: bool,
    pub evidence: Evidence,
}

/// What a report says of evidence the run's record does not hold.
pub const NOT_RECORDED: &str = "not recorded";

#[derive(Clone, Debug, Default, Serialize)]
pub struct Evidence {
    /// The Job the run executed in, as its record says: its name, "none: …", or
    /// [`NOT_RECORDED`].
    pub job: String,
    pub ledger: Option<String>,
    pub targets: Vec<String>,
    pub changed: Vec<String>,
    pub undone: Vec<String>,
    pub dns_changes: Vec<String>,
    /// The Event the run left on its Job when it ended (`kubectl get events`), as its record
    /// says: the Event, "none created: why", or [`NOT_RECORDED`].
    pub events: Vec<String>,
    pub preflight: Vec<String>,
    /// Steady-state probe requests sent, answered as expected, and answered at all.
    pub samples: Option<String>,
    /// Whether the fault took effect, as the record says; none for a run that injected nothing
    /// and for records written before it was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    pub timeline: Vec<String>,
    /// A scenario's steps, a line each: name, kind, status, RTO, effect; empty for any other
    /// kind.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
}

/// Something a run left to do: a failed criterion, a breached target, a failed rollback, an
/// abort, or a fire that did not run.
#[derive(Clone, Debug, Serialize)]
pub struct FollowUp {
    pub cluster: String,
    pub drill: String,
    pub run: Option<String>,
    pub scheduled: String,
    pub what: String,
    /// `open`, or what closed it.
    pub state: String,
}

/// Why a report cannot be made: each is the user's to fix, and says how.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReportError {
    #[error("--since {since} is not before --until {until}: the period is empty (give --since earlier than --until)")]
    EmptyPeriod { since: String, until: String },
    #[error("no cluster {0:?} in the history or the drill file (clusters known: {1})")]
    UnknownCluster(String, String),
    #[error("no drill {0:?} in the drill file or the history (drills known: {1})")]
    UnknownDrill(String, String),
    #[error("nothing to report: the drill file plans no fire from {since} to {until} and the history holds no run in that period{scope} (widen --since/--until)")]
    Nothing {
        since: String,
        until: String,
        scope: String,
    },
}

/// What the report is made from: the drill file, the history read for the period, and what
/// the store knows of clusters and drills at all.
pub struct Inputs<'a> {
    pub config: &'a Config,
    pub store: String,
    pub runs: Vec<RunRecord>,
    pub fires: Vec<(String, FireRecord)>,
    pub known: Vec<Recorded>,
    pub generated: DateTime<Utc>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Checks the query against what exists, before the history is read in full.
pub fn check(config: &Config, known: &[Recorded], query: &Query) -> Result<(), ReportError> {
    if query.since >= query.until {
        return Err(ReportError::EmptyPeriod {
            since: stamp(query.since),
            until: stamp(query.until),
        });
    }
    let clusters: BTreeSet<&str> = known
        .iter()
        .map(|k| k.cluster.as_str())
        .chain([config.cluster.as_str()])
        .collect();
    if let Some(c) = &query.cluster {
        if !clusters.contains(c.as_str()) {
            return Err(ReportError::UnknownCluster(
                c.clone(),
                clusters.into_iter().collect::<Vec<_>>().join(", "),
            ));
        }
    }
    match &query.drill {
        Some(d) => check_drill(config, known, d),
        None => Ok(()),
    }
}

/// A drill named on the command line must be in the drill file or the history (`report`,
/// `history`): anything else is a typo, answered with the drills known.
pub fn check_drill(config: &Config, known: &[Recorded], drill: &str) -> Result<(), ReportError> {
    let drills: BTreeSet<&str> = known
        .iter()
        .map(|k| k.drill.as_str())
        .chain(config.drills.iter().map(|d| d.name.as_str()))
        .collect();
    if drills.contains(drill) {
        return Ok(());
    }
    Err(ReportError::UnknownDrill(
        drill.to_owned(),
        drills.into_iter().collect::<Vec<_>>().join(", "),
    ))
}

/// Builds the report. The calendar is the drill file's, planned for every cluster in scope
/// (the one named, else every cluster the history knows, and the file's own). On the file's own
/// cluster every drill is planned; on another (whose drill file this may not be), only the
/// drills its scheduler recorded fires of. On either, a drill is planned from its first fire
/// record on, when that cluster's scheduler began to plan it (a run by hand proves nothing of
/// the kind).
pub fn build(inputs: Inputs<'_>, query: &Query) -> Result<Report, ReportError> {
    let config = inputs.config;
    check(config, &inputs.known, query)?;
    let clusters = clusters_in_scope(config, &inputs.known, query);

    let started = std::time::Instant::now();
    let phase = |name: &str| {
        tracing::debug!(
            phase = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "report build"
        )
    };
    let all_runs = inputs.runs;
    let history = FireHistory::new(&all_runs, &inputs.fires, &inputs.known);
    let Accounted {
        table,
        planned_runs,
        fates,
        cluster_tallies,
        mut summary,
    } = account_calendar(config, query, &clusters, &history, inputs.generated);

    phase("adherence");
    // The calendar planned no fire on the clusters in scope, and no run ran.
    if summary.planned == 0 && all_runs.is_empty() {
        return Err(nothing(query));
    }

    let keys = drill_keys(config, &clusters, &history.first, query, &all_runs);
    drop(history);
    let slots = into_slots(
        config,
        &clusters,
        &keys,
        all_runs.into_iter().zip(planned_runs),
        fates,
        &table.offsets(),
    );
    let table = Arc::new(table);

    phase("slots");
    let built = drill_reports_on_two_threads(config, &table, keys.into_iter().zip(slots).collect());
    let (drill_reports, lefts): (Vec<_>, Vec<_>) = built.into_iter().unzip();
    let follow_ups = follow_ups(&table, lefts);

    phase("drills");
    let open = open_per_cluster(&follow_ups);
    let fleet = clusters
        .iter()
        .zip(cluster_tallies)
        .map(|(c, t)| fleet_row(c, t, &drill_reports, &open))
        .collect();
    summary.settle();
    summary.unplanned_runs = drill_reports.iter().map(|d| d.tally.unplanned_runs).sum();
    Ok(Report {
        since: stamp(query.since),
        until: stamp(query.until),
        generated: stamp(inputs.generated),
        drill_file: config.source.display().to_string(),
        store: inputs.store,
        clusters,
        drill: query.drill.clone(),
        summary,
        fleet,
        adherence: Adherences::new(table.clone()),
        drills: drill_reports,
        follow_ups,
    })
}

/// What the history says of the calendar's fires, indexed by instant for one walk through it.
struct FireHistory<'r> {
    runs: &'r [RunRecord],
    /// The runs that name each instant of each drill, in the history's order: a planned fire is
    /// accounted for by the run that names it, whatever its id (the scheduler's, or a person's
    /// `execute --scheduled T`). The first of each is in `naming`, the next after run i in
    /// `next[i]`.
    naming: Naming<'r>,
    next: Vec<usize>,
    /// The scheduler's record of each fire, by cluster, drill and instant.
    fires: HashMap<(&'r str, &'r str, DateTime<Utc>), &'r FireRecord>,
    /// When each cluster's scheduler began to plan each drill: its first fire record.
    first: HashMap<(&'r str, &'r str), DateTime<Utc>>,
}

impl<'r> FireHistory<'r> {
    fn new(
        runs: &'r [RunRecord],
        fires: &'r [(String, FireRecord)],
        known: &'r [Recorded],
    ) -> Self {
        let (naming, next) = runs_by_instant(runs);
        let fires = fires
            .iter()
            .map(|(c, f)| ((c.as_str(), f.drill.as_str(), f.scheduled), f))
            .collect();
        let first = known
            .iter()
            .filter_map(|k| Some(((k.cluster.as_str(), k.drill.as_str()), k.first_fire?)))
            .collect();
        FireHistory {
            runs,
            naming,
            next,
            fires,
            first,
        }
    }
}

/// What became of the calendar's fires in the period, on every cluster in scope.
struct Accounted {
    /// A row per fire per cluster, in a block of rows per cluster.
    table: Table,
    /// Which runs a planned fire explains (the rest are manual, or of drills gone from the file).
    planned_runs: Vec<bool>,
    /// Per cluster and drill: what became of its fires, and the rows of those that did not run.
    fates: Vec<(Tally, Vec<u32>)>,
    cluster_tallies: Vec<Tally>,
    summary: Tally,
}

/// Reads the calendar once, as it is made, and makes each fire a row on every cluster in scope
/// that plans its drill: a year of every-minute fires is never held but as these rows.
fn account_calendar(
    config: &Config,
    query: &Query,
    clusters: &[String],
    history: &FireHistory,
    generated: DateTime<Utc>,
) -> Accounted {
    let mut planned_runs = vec![false; history.runs.len()];
    let mut table = Table::with_blocks(clusters);
    let drill_ids: Vec<u32> = config
        .drills
        .iter()
        .map(|d| table.drill(&d.name, &d.kind().to_string()))
        .collect();
    let mut fates: Vec<(Tally, Vec<u32>)> =
        vec![Default::default(); clusters.len() * config.drills.len()];
    let mut cluster_tallies = vec![Tally::default(); clusters.len()];
    let mut summary = Tally::default();
    let calendar = schedule::Calendar::<()>::window(
        config.planned_drills(),
        config.timezone,
        &config.blackouts,
        config.concurrency as usize,
        query.since,
        query.until,
    );
    for (fire, _) in calendar {
        let drill = &config.drills[fire.drill];
        if query.drill.as_ref().is_some_and(|d| *d != drill.name) {
            continue;
        }
        // The fire's run id, alike on every cluster.
        let id = crate::cluster::job::run_id(&drill.name, fire.scheduled);
        // A run still recorded as running long after it must have ended never reported.
        let overdue = fire.start.unwrap_or(fire.scheduled)
            + chrono::TimeDelta::from_std(drill.duration + drill.deadline)
                .unwrap_or(chrono::TimeDelta::MAX)
            + chrono::TimeDelta::hours(1);
        let planned = fire.status.as_str();
        for (k, cluster) in clusters.iter().enumerate() {
            let own = *cluster == config.cluster;
            match history.first.get(&(cluster.as_str(), drill.name.as_str())) {
                // Before the cluster's scheduler planned it (it was added, or installed, later).
                Some(&since) if fire.scheduled < since => continue,
                // Not in that cluster's programme, as far as its history says.
                None if !own => continue,
                _ => {}
            }
            let instant = (cluster.as_str(), drill.name.as_str(), fire.scheduled);
            let naming_first = history.naming.get(&instant).copied();
            let run = run_of_fire(
                history.runs,
                naming_first,
                &history.next,
                &id,
                &mut planned_runs,
            )
            .map(|i| &history.runs[i]);
            let recorded = history.fires.get(&instant);
            let provenance = match (run, recorded) {
                (Some(r), _) => Some(Provenance::of(r, &id)),
                (None, Some(_)) => Some(Provenance::Scheduler),
                (None, None) => None,
            };
            let (outcome, reason) = account(run, recorded, &fire, overdue, generated);
            let row = table.push(
                k,
                drill_ids[fire.drill],
                fire.scheduled,
                planned,
                outcome,
                run.map(|r| r.id.as_str()),
                provenance,
                reason.as_deref(),
            );
            let (tally, did_not_run) = &mut fates[k * config.drills.len() + fire.drill];
            tally.count(planned, outcome);
            cluster_tallies[k].count(planned, outcome);
            summary.count(planned, outcome);
            if matches!(outcome, "missed" | "unaccounted") {
                did_not_run.push(row);
            }
        }
    }
    Accounted {
        table,
        planned_runs,
        fates,
        cluster_tallies,
        summary,
    }
}

/// The first run (by index) that names each instant (cluster, drill, scheduled).
type Naming<'r> = HashMap<(&'r str, &'r str, DateTime<Utc>), usize>;

/// The runs that name each instant of each drill, in the history's order: the first of each in
/// the map, the next after run i at `next[i]` (`usize::MAX` for none).
fn runs_by_instant(runs: &[RunRecord]) -> (Naming<'_>, Vec<usize>) {
    let mut naming: Naming = HashMap::default();
    naming.reserve(runs.len());
    let mut next = vec![usize::MAX; runs.len()];
    for (i, r) in runs.iter().enumerate().rev() {
        if let Some(first) = naming.insert((r.cluster.as_str(), r.drill.as_str(), r.scheduled), i) {
            next[i] = first;
        }
    }
    (naming, next)
}

/// One slot per (cluster, drill) key: the runs move into their drill's slot (each becomes its
/// row, and nothing is copied, with whether it is outside the calendar), and each cluster's
/// fates of the drill's fires, their rows shifted by the cluster's block `offsets`.
fn into_slots(
    config: &Config,
    clusters: &[String],
    keys: &[(String, String)],
    runs: impl Iterator<Item = (RunRecord, bool)>,
    fates: Vec<(Tally, Vec<u32>)>,
    offsets: &[u32],
) -> Vec<Slot> {
    let mut slots: Vec<Slot> = keys.iter().map(|_| Slot::default()).collect();
    let at: HashMap<(&str, &str), usize> = keys
        .iter()
        .enumerate()
        .map(|(i, (c, d))| ((c.as_str(), d.as_str()), i))
        .collect();
    for (r, planned) in runs {
        if let Some(&i) = at.get(&(r.cluster.as_str(), r.drill.as_str())) {
            slots[i].runs.push((r, !planned));
        }
    }
    for (i, (tally, did_not_run)) in fates.into_iter().enumerate() {
        let (k, d) = (i / config.drills.len(), i % config.drills.len());
        if let Some(&s) = at.get(&(clusters[k].as_str(), config.drills[d].name.as_str())) {
            slots[s].tally = tally;
            let mut rows = did_not_run;
            for r in &mut rows {
                *r += offsets[k];
            }
            slots[s].did_not_run = rows;
        }
    }
    slots
}

/// The clusters in scope: the one named, else every cluster the history knows and the file's own.
fn clusters_in_scope(config: &Config, known: &[Recorded], query: &Query) -> Vec<String> {
    match &query.cluster {
        Some(c) => vec![c.clone()],
        None => known
            .iter()
            .map(|k| k.cluster.clone())
            .chain([config.cluster.clone()])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    }
}

/// The error for a period and scope with nothing to report.
fn nothing(query: &Query) -> ReportError {
    ReportError::Nothing {
        since: stamp(query.since),
        until: stamp(query.until),
        scope: [
            query.cluster.as_ref().map(|c| format!(" on cluster {c}")),
            query.drill.as_ref().map(|d| format!(" for drill {d}")),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

/// The run that accounts for a fire of run id `id`, among the runs naming its instant (the first
/// `first`, each next in `next`): the scheduler's own run of the fire if there is one, else the
/// first by hand, else the scheduler's record that it missed the fire or that a person vetoed
/// it (a run by hand made it up). The scheduler's record of this fire is never a run outside the calendar. Runs of the
/// fire's id, and the one chosen, are marked in `planned_runs`.
fn run_of_fire(
    runs: &[RunRecord],
    first: Option<usize>,
    next: &[usize],
    id: &str,
    planned_runs: &mut [bool],
) -> Option<usize> {
    let rank = |r: &RunRecord| match (r.id == id, r.status.never_ran()) {
        (true, false) => 2,
        (false, _) => 1,
        (true, true) => 0,
    };
    let mut chosen: Option<usize> = None;
    let mut at = first;
    while let Some(i) = at {
        if chosen.is_none_or(|c| rank(&runs[i]) > rank(&runs[c])) {
            chosen = Some(i);
        }
        if runs[i].id == id {
            planned_runs[i] = true;
        }
        at = next.get(i).copied().filter(|&n| n != usize::MAX);
    }
    if let Some(i) = chosen {
        planned_runs[i] = true;
    }
    chosen
}

/// The (cluster, drill) pairs the report has a section for, sorted: the file's drills in each
/// cluster's programme (as planned from `first`), and any the history has runs of in the period.
fn drill_keys(
    config: &Config,
    clusters: &[String],
    first: &HashMap<(&str, &str), DateTime<Utc>>,
    query: &Query,
    runs: &[RunRecord],
) -> Vec<(String, String)> {
    let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
    for cluster in clusters {
        for d in &config.drills {
            let in_programme = *cluster == config.cluster
                || first.contains_key(&(cluster.as_str(), d.name.as_str()));
            if in_programme && query.drill.as_ref().is_none_or(|q| *q == d.name) {
                keys.insert((cluster.clone(), d.name.clone()));
            }
        }
    }
    let clustered: BTreeSet<&str> = clusters.iter().map(String::as_str).collect();
    let ran: HashSet<(&str, &str)> = runs
        .iter()
        .filter(|r| clustered.contains(r.cluster.as_str()))
        .map(|r| (r.cluster.as_str(), r.drill.as_str()))
        .collect();
    keys.extend(ran.into_iter().map(|(c, d)| (c.to_owned(), d.to_owned())));
    keys.into_iter().collect()
}

/// Open follow-ups per cluster.
fn open_per_cluster(follow_ups: &FollowUps) -> HashMap<&str, u32> {
    let mut open: HashMap<&str, u32> = HashMap::default();
    for (cluster, is_open) in follow_ups.cluster_and_state() {
        if is_open {
            *open.entry(cluster).or_default() += 1;
        }
    }
    open
}

/// What became of one planned fire on one cluster, and why: the run that accounts for it
/// (`run`), else the scheduler's record of it (`recorded`), else the calendar's word; a run
/// still recorded as running after `overdue` never reported.
fn account<'a>(
    run: Option<&'a RunRecord>,
    recorded: Option<&&'a FireRecord>,
    fire: &'a Fire,
    overdue: DateTime<Utc>,
    generated: DateTime<Utc>,
) -> (&'a str, Option<Cow<'a, str>>) {
    match (run, recorded) {
        (Some(r), _) if r.status == RunStatus::Running && overdue < generated => (
            "unaccounted",
            Some(Cow::Owned(format!(
                "recorded as running, never as ended (it should have ended by {})",
                stamp(overdue)
            ))),
        ),
        (Some(r), _) => (r.status.as_str(), r.reason.as_deref().map(Cow::Borrowed)),
        (None, _) if fire.start.unwrap_or(fire.scheduled) >= generated => {
            ("pending", Some(Cow::Borrowed("not yet due")))
        }
        (None, Some(f)) if f.status == "fired" => (
            "unaccounted",
            Some(Cow::Borrowed("fired, but the run left no record")),
        ),
        (None, Some(f)) => (f.status.as_str(), f.reason.as_deref().map(Cow::Borrowed)),
        (None, None) => match fire.status {
            FireStatus::Skipped => ("skipped", fire.reason.as_deref().map(Cow::Borrowed)),
            _ => (
                "unaccounted",
                Some(Cow::Borrowed(
                    "no record of this fire: was the scheduler running?",
                )),
            ),
        },
    }
}

/// Each drill's runs become its rows on two threads, the runs split evenly between them: the
/// slots are independent, and this is most of the building.
fn drill_reports_on_two_threads(
    config: &Config,
    table: &Arc<Table>,
    mut work: Vec<((String, String), Slot)>,
) -> Vec<(DrillReport, Left)> {
    let second = work.split_off(half_of(&work, |(_, s)| s.runs.len()));
    std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            second
                .into_iter()
                .map(|((cluster, name), slot)| drill_report(config, table, cluster, name, slot))
                .collect::<Vec<_>>()
        });
        let mut built: Vec<_> = work
            .into_iter()
            .map(|((cluster, name), slot)| drill_report(config, table, cluster, name, slot))
            .collect();
        match other.join() {
            Ok(rest) => built.extend(rest),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        built
    })
}

/// A cluster's row of the fleet table: its tally, and the worst its drills measured.
fn fleet_row(
    c: &String,
    mut t: Tally,
    drill_reports: &[DrillReport],
    open: &HashMap<&str, u32>,
) -> ClusterRow {
    let mine: Vec<&DrillReport> = drill_reports.iter().filter(|d| d.cluster == *c).collect();
    t.settle();
    t.unplanned_runs = mine.iter().map(|d| d.tally.unplanned_runs).sum();
    // The longest value measured, with the target that run itself was judged by.
    let worst = |pick: fn(&RunRow) -> (Option<f64>, Option<f64>)| {
        mine.iter()
            .flat_map(|d| {
                d.runs.iter().filter_map(move |r| {
                    let (value, target) = pick(r);
                    value.map(|v| (d.drill.as_str(), v, target))
                })
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(drill, seconds, target_seconds)| Worst {
                drill: drill.to_owned(),
                seconds,
                target_seconds,
            })
    };
    ClusterRow {
        cluster: c.clone(),
        tally: t,
        worst_rto: worst(|r| (r.rto_seconds, r.rto_target_seconds)),
        worst_rpo: worst(|r| (r.rpo_seconds, r.rpo_target_seconds)),
        lowest_availability: mine
            .iter()
            .filter_map(|d| d.availability.worst)
            .min_by(f64::total_cmp),
        open_follow_ups: open.get(c.as_str()).copied().unwrap_or_default(),
    }
}

/// What one drill on one cluster leaves to follow up: its runs' follow-ups whole, and its fires
/// that did not run as their adherence rows, each with the passed run that closed it.
#[derive(Default)]
struct Left {
    listed: Vec<FollowUp>,
    /// (adherence row, the closer's number among `closers`).
    fires: Vec<(u32, Option<u32>)>,
    /// (run, scheduled) of the passed runs that closed a fire's follow-up.
    closers: Vec<(String, String)>,
}

/// Every drill's follow-ups, open ones first, then by cluster, drill and instant: `lefts` are in
/// order of cluster and drill, and each one's runs and fires in order of instant, so the order
/// is theirs merged, with a run's follow-up before a fire's of the same instant (as a stable
/// sort of runs' then fires' would put them).
fn follow_ups(table: &Arc<Table>, lefts: Vec<Left>) -> FollowUps {
    let mut listed = Vec::new();
    let mut closers: Vec<(String, String)> = Vec::new();
    // Per drill: (open, instant, number among `listed`) of its runs' follow-ups, and where its
    // closers start among `closers`.
    let mut runs: Vec<Vec<(bool, i64, u32)>> = Vec::with_capacity(lefts.len());
    let mut base = Vec::with_capacity(lefts.len());
    let mut fires = Vec::with_capacity(lefts.len());
    let mut total = 0;
    for left in lefts {
        total += left.listed.len() + left.fires.len();
        runs.push(
            left.listed
                .into_iter()
                .map(|f| {
                    let at = DateTime::parse_from_rfc3339(&f.scheduled)
                        .map(|t| t.timestamp())
                        .unwrap_or_default();
                    let n = listed.len() as u32;
                    let open = f.state == "open";
                    listed.push(f);
                    (open, at, n)
                })
                .collect(),
        );
        base.push(closers.len() as u32);
        closers.extend(left.closers);
        fires.push(left.fires);
    }
    let mut order = Vec::with_capacity(total);
    for open in [true, false] {
        for ((runs, fires), base) in runs.iter().zip(&fires).zip(&base) {
            let mut runs = runs.iter().filter(|e| e.0 == open).peekable();
            let mut fires = fires
                .iter()
                .filter(|(_, closer)| closer.is_none() == open)
                .map(|&(row, closer)| (table.scheduled(row), row, closer))
                .peekable();
            loop {
                let fire_first = match (runs.peek(), fires.peek()) {
                    (Some(r), Some(f)) => f.0 < r.1,
                    (Some(_), None) => false,
                    (None, Some(_)) => true,
                    (None, None) => break,
                };
                if fire_first {
                    if let Some((_, row, closer)) = fires.next() {
                        order.push(adherence::Entry::fire(row, closer.map(|c| base + c)));
                    }
                } else if let Some(&(_, _, n)) = runs.next() {
                    order.push(adherence::Entry::listed(n));
                }
            }
        }
    }
    FollowUps::new(table.clone(), listed, closers, order)
}

/// Where to split `items` (in order) so that the two parts' `weight`s are as near equal as can be.
fn half_of<T>(items: &[T], weight: impl Fn(&T) -> usize) -> usize {
    let total: usize = items.iter().map(&weight).sum();
    let mut so_far = 0;
    let prefixes = std::iter::once(0).chain(items.iter().map(|item| {
        so_far += weight(item);
        so_far
    }));
    prefixes
        .enumerate()
        .min_by_key(|(_, before)| (before * 2).abs_diff(total))
        .map_or(0, |(i, _)| i)
}

/// One drill on one cluster: its figures, and its runs each turned into its row; and what it
/// leaves to follow up.
fn drill_report(
    config: &Config,
    table: &Table,
    cluster: String,
    name: String,
    slot: Slot,
) -> (DrillReport, Left) {
    let Slot {
        mut runs,
        tally: mut counted,
        did_not_run,
    } = slot;
    // In order of the scheduled instant (the store reads them in no particular order; in
    // practice nearly in order, which the sort finds in one pass).
    runs.sort_by(|(a, _), (b, _)| (a.scheduled, &a.id).cmp(&(b.scheduled, &b.id)));
    let (list, unplanned): (Vec<RunRecord>, Vec<bool>) = runs.into_iter().unzip();
    let drill = config.drills.iter().find(|d| d.name == name);
    counted.settle();
    let mut tally = counted;
    tally.unplanned_runs = unplanned.iter().filter(|u| **u).count() as u32;
    let open = follow_ups_of(&cluster, &name, &list, &did_not_run, table);
    let kind = drill
        .map(|d| d.kind().to_string())
        .or_else(|| list.first().map(|r| r.kind.clone()))
        .unwrap_or_default();
    let excluded = exclusions(&list);
    let rollbacks = rollbacks(&list);
    let aborts = list
        .iter()
        .filter(|r| r.status == RunStatus::Aborted)
        .map(|r| Abort {
            run: r.id.clone(),
            cause: r
                .evidence
                .abort
                .as_ref()
                .and_then(|a| a.cause.clone())
                .unwrap_or_else(|| "unknown".to_owned()),
            reason: r.reason.clone().unwrap_or_default(),
        })
        .collect();
    let runs: Vec<RunRow> = list
        .into_iter()
        .zip(unplanned)
        .map(|(r, unplanned)| run_row(r, unplanned))
        .collect();
    let report = DrillReport {
        kind,
        schedule: drill.map(|d| d.schedule.text().to_owned()),
        scope: drill.map(scope).unwrap_or_default(),
        excluded,
        tally,
        rto: figure(&runs, |r| (r.rto_seconds, r.rto_target_seconds), true),
        rpo: figure(&runs, |r| (r.rpo_seconds, r.rpo_target_seconds), true),
        availability: figure(&runs, |r| (r.availability, r.availability_target), false),
        latency_p95: figure(
            &runs,
            |r| (r.latency_p95_seconds, r.latency_p95_target_seconds),
            true,
        ),
        aborts,
        rollbacks,
        runs,
        cluster,
        drill: name,
    };
    (report, open)
}

/// One drill on one cluster while the report is built: its runs, whether each was outside the
/// calendar, and what became of its planned fires.
#[derive(Default)]
struct Slot {
    /// Each run, and whether it is outside the calendar.
    runs: Vec<(RunRecord, bool)>,
    /// Its planned fires, counted (not yet settled).
    tally: Tally,
    /// The adherence rows of its fires that did not run (missed or unaccounted).
    did_not_run: Vec<u32>,
}

impl Tally {
    /// Counts one planned fire: the calendar's word for it, and what became of it.
    fn count(&mut self, planned: &str, outcome: &str) {
        self.planned += 1;
        if planned == "deferred" {
            self.deferred += 1;
        }
        match outcome {
            "passed" => self.passed += 1,
            "failed" => self.failed += 1,
            "aborted" => self.aborted += 1,
            "error" => self.error += 1,
            "ineffective" => self.ineffective += 1,
            "dry-run" => self.dry_run += 1,
            "blocked" => self.blocked += 1,
            "skipped" => self.skipped += 1,
            "missed" => self.missed += 1,
            "running" | "pending" => self.pending += 1,
            _ => self.unaccounted += 1,
        }
    }

    /// The figures that follow from the counts.
    fn settle(&mut self) {
        self.ran = self.passed + self.failed + self.aborted + self.error + self.ineffective;
        let due = self.planned - self.skipped - self.pending;
        self.adherence_percent = (due > 0).then(|| f64::from(self.ran) * 100.0 / f64::from(due));
    }
}

/// What the drill's runs and fires leave to do. A failed criterion, a breached target, an
/// abort or a fire that did not run is closed by a later run of the drill on the cluster that
/// passed; a failed rollback stays open until its ledger is found closed (not merely deleted).
fn follow_ups_of(
    cluster: &str,
    drill: &str,
    runs: &[RunRecord],
    did_not_run: &[u32],
    table: &Table,
) -> Left {
    // `runs` is in scheduled order: the first pass after an instant is found by bisection.
    let passed: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Passed)
        .collect();
    // The first passed run after an instant, by its place among them.
    let closer = |after: DateTime<Utc>| -> Option<usize> {
        Some(passed.partition_point(|r| r.scheduled <= after)).filter(|&i| i < passed.len())
    };
    let closed_by = |after: DateTime<Utc>| -> String {
        closer(after).map_or_else(
            || "open".to_owned(),
            |i| {
                let r = passed[i];
                format!("closed by {} (passed {})", r.id, stamp(r.scheduled))
            },
        )
    };
    let mut out = Vec::new();
    for r in runs {
        let mut what = Vec::new();
        match r.status {
            RunStatus::Failed => what.push(format!(
                "failed: {}",
                r.reason.as_deref().unwrap_or("criteria not met")
            )),
            RunStatus::Aborted => what.push(format!(
                "aborted: {}",
                r.reason.as_deref().unwrap_or("no reason recorded")
            )),
            RunStatus::Error => what.push(format!(
                "error: {}",
                r.reason.as_deref().unwrap_or("no reason recorded")
            )),
            RunStatus::Ineffective => what.push(format!(
                "ineffective: {}",
                r.reason.as_deref().unwrap_or("no reason recorded")
            )),
            _ => {}
        }
        for b in r.breached() {
            what.push(format!("{} target breached", b.to_uppercase()));
        }
        if r.safety_violated() && r.status != RunStatus::Aborted {
            what.push("safety constraint violated".to_owned());
        }
        if r.rollback_failed() {
            out.push(FollowUp {
                cluster: cluster.to_owned(),
                drill: drill.to_owned(),
                run: Some(r.id.clone()),
                scheduled: stamp(r.scheduled),
                what: format!(
                    "rollback failed: the ledger stayed open; close it with `firedrill rollback --run {}` (the leading scheduler's next sweep records it closed){}",
                    r.id,
                    match &r.evidence.rollback_closed {
                        Some(c) if !c.restored => format!(
                            "; found {}: {}",
                            c.at.as_deref().unwrap_or("?"),
                            c.how.as_deref().unwrap_or("no detail recorded")
                        ),
                        _ => String::new(),
                    }
                ),
                state: match &r.evidence.rollback_closed {
                    Some(c) if c.restored => format!(
                        "closed (found {}): {}",
                        c.at.as_deref().unwrap_or("?"),
                        c.how.as_deref().unwrap_or("no detail recorded")
                    ),
                    // Deleted while open: what it held may still be in place.
                    _ => "open".to_owned(),
                },
            });
        }
        if !what.is_empty() {
            out.push(FollowUp {
                cluster: cluster.to_owned(),
                drill: drill.to_owned(),
                run: Some(r.id.clone()),
                scheduled: stamp(r.scheduled),
                what: what.join("; "),
                state: closed_by(r.scheduled),
            });
        }
    }
    // A fire that did not run stays its adherence row; what closed it is kept once per run.
    let mut left = Left {
        listed: out,
        ..Left::default()
    };
    let mut last: Option<(usize, u32)> = None;
    for &row in did_not_run {
        let scheduled = DateTime::from_timestamp(table.scheduled(row), 0).unwrap_or_default();
        let closed = closer(scheduled).map(|i| match last {
            Some((j, n)) if j == i => n,
            _ => {
                let n = left.closers.len() as u32;
                left.closers
                    .push((passed[i].id.clone(), stamp(passed[i].scheduled)));
                last = Some((i, n));
                n
            }
        });
        left.fires.push((row, closed));
    }
    left
}

#[cfg(test)]
mod tests {
    use super::half_of;

    #[test]
    fn half_of_splits_by_weight_keeping_order() {
        let id = |w: &usize| *w;
        assert_eq!(half_of(&[1, 1, 1, 1], id), 2);
        assert_eq!(half_of(&[10, 1, 1], id), 1);
        assert_eq!(half_of(&[1, 1, 10], id), 2);
        assert_eq!(half_of(&[1, 2, 3, 4], id), 3);
        assert_eq!(half_of::<usize>(&[], id), 0);
    }
}
