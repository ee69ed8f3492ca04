//! `firedrill report`: what an auditor asks of a drill programme, from the run history alone.
//!
//! The report sets the calendar the drill file plans for the period against what the history
//! says became of each fire (programme adherence), then per drill and cluster: the scope, the
//! runs and their outcome, RTO and RPO against the targets each run was judged by, availability
//! and latency during the drill, aborts, rollbacks and the evidence behind every claim, the
//! trend, and the follow-ups failures leave open. One model ([`Report`]) is rendered four ways
//! (`render`): Markdown, one self-contained HTML file, JSON and CSV.

mod render;

use std::collections::{BTreeMap, BTreeSet};

// Keyed by names read from the history, 100,000 at a time: hashed with foldhash (seeded per
// process, as std's is) rather than SipHash, which was a tenth of a year's report.
use foldhash::{HashMap, HashSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::run::{EventNote, JobNote, RunRecord, RunStatus, Trail};
use crate::schedule::{self, FireStatus};
use crate::store::{FireRecord, Recorded};

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
    pub adherence: Vec<Adherence>,
    pub drills: Vec<DrillReport>,
    pub follow_ups: Vec<FollowUp>,
}

/// Counts of what became of planned fires (and the runs outside the calendar).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Tally {
    /// Fires the calendar planned in the period.
    pub planned: u32,
    /// Fires that ran and acted: passed, failed, aborted or error.
    pub ran: u32,
    pub passed: u32,
    pub failed: u32,
    pub aborted: u32,
    pub error: u32,
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
    /// passed, failed, aborted, error, dry-run, blocked, running, skipped, missed, unaccounted
    /// or pending.
    pub outcome: String,
    pub run: Option<String>,
    pub reason: Option<String>,
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
    pub timeline: Vec<String>,
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
    pub runs: Vec<RunRecord<Trail>>,
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
    let clusters: Vec<String> = match &query.cluster {
        Some(c) => vec![c.clone()],
        None => inputs
            .known
            .iter()
            .map(|k| k.cluster.clone())
            .chain([config.cluster.clone()])
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let drills = config.planned_drills();
    let planned: Vec<_> = schedule::plan(
        &drills,
        config.timezone,
        &config.blackouts,
        config.concurrency as usize,
        query.since,
        query.until,
    )
    .into_iter()
    .filter(|f| {
        query
            .drill
            .as_ref()
            .is_none_or(|d| *d == config.drills[f.drill].name)
    })
    .collect();
    let nothing = || ReportError::Nothing {
        since: stamp(query.since),
        until: stamp(query.until),
        scope: [
            query.cluster.as_ref().map(|c| format!(" on cluster {c}")),
            query.drill.as_ref().map(|d| format!(" for drill {d}")),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    if planned.is_empty() && inputs.runs.is_empty() {
        return Err(nothing());
    }

    let started = std::time::Instant::now();
    let phase = |name: &str| {
        tracing::debug!(
            phase = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "report build"
        )
    };
    let all_runs = inputs.runs;
    let runs: HashMap<(&str, &str), usize> = all_runs
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.cluster.as_str(), r.id.as_str()), i))
        .collect();
    let fires: HashMap<(&str, &str, DateTime<Utc>), &FireRecord> = inputs
        .fires
        .iter()
        .map(|(c, f)| ((c.as_str(), f.drill.as_str(), f.scheduled), f))
        .collect();

    let first: HashMap<(&str, &str), DateTime<Utc>> = inputs
        .known
        .iter()
        .filter_map(|k| Some(((k.cluster.as_str(), k.drill.as_str()), k.first_fire?)))
        .collect();
    let mut adherence = Vec::new();
    // Which runs a planned fire explains (the rest are manual, or of drills gone from the file).
    let mut planned_runs = vec![false; all_runs.len()];
    // Each fire's run id and instant as text, alike on every cluster.
    let named: Vec<(String, String)> = planned
        .iter()
        .map(|f| {
            let drill = &config.drills[f.drill].name;
            (crate::job::run_id(drill, f.scheduled), stamp(f.scheduled))
        })
        .collect();
    for cluster in &clusters {
        let own = *cluster == config.cluster;
        for (fire, (id, scheduled)) in planned.iter().zip(&named) {
            let drill = &config.drills[fire.drill];
            match first.get(&(cluster.as_str(), drill.name.as_str())) {
                // Before the cluster's scheduler planned it (it was added, or installed, later).
                Some(&since) if fire.scheduled < since => continue,
                // Not in that cluster's programme, as far as its history says.
                None if !own => continue,
                _ => {}
            }
            let run = runs.get(&(cluster.as_str(), id.as_str())).map(|&i| {
                planned_runs[i] = true;
                &all_runs[i]
            });
            let recorded = fires.get(&(cluster.as_str(), drill.name.as_str(), fire.scheduled));
            // A run still recorded as running long after it must have ended never reported.
            let overdue = fire.start.unwrap_or(fire.scheduled)
                + chrono::TimeDelta::from_std(drill.duration + drill.deadline)
                    .unwrap_or(chrono::TimeDelta::MAX)
                + chrono::TimeDelta::hours(1);
            let (outcome, reason) = match (run, recorded) {
                (Some(r), _) if r.status == RunStatus::Running && overdue < inputs.generated => (
                    "unaccounted".to_owned(),
                    Some(format!(
                        "recorded as running, never as ended (it should have ended by {})",
                        stamp(overdue)
                    )),
                ),
                (Some(r), _) => (r.status.as_str().to_owned(), r.reason.clone()),
                (None, _) if fire.start.unwrap_or(fire.scheduled) >= inputs.generated => {
                    ("pending".to_owned(), Some("not yet due".to_owned()))
                }
                (None, Some(f)) if f.status == "fired" => (
                    "unaccounted".to_owned(),
                    Some("fired, but the run left no record".to_owned()),
                ),
                (None, Some(f)) => (f.status.clone(), f.reason.clone()),
                (None, None) => match fire.status {
                    FireStatus::Skipped => ("skipped".to_owned(), fire.reason.clone()),
                    _ => (
                        "unaccounted".to_owned(),
                        Some("no record of this fire: was the scheduler running?".to_owned()),
                    ),
                },
            };
            adherence.push(Adherence {
                cluster: cluster.clone(),
                drill: drill.name.clone(),
                kind: drill.kind.to_string(),
                scheduled: scheduled.clone(),
                planned: fire.status.to_string(),
                outcome,
                run: run.map(|r| r.id.clone()),
                reason,
            });
        }
    }

    phase("adherence");
    // The calendar planned fires, but none on the clusters in scope, and no run ran.
    if adherence.is_empty() && all_runs.is_empty() {
        return Err(nothing());
    }

    // Drills per cluster: the file's that are in its programme (as planned above), and any the
    // history has runs of in the period.
    let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
    for cluster in &clusters {
        for d in &config.drills {
            let in_programme = *cluster == config.cluster
                || first.contains_key(&(cluster.as_str(), d.name.as_str()));
            if in_programme && query.drill.as_ref().is_none_or(|q| *q == d.name) {
                keys.insert((cluster.clone(), d.name.clone()));
            }
        }
    }
    let clustered: BTreeSet<&str> = clusters.iter().map(String::as_str).collect();
    let ran: HashSet<(&str, &str)> = all_runs
        .iter()
        .filter(|r| clustered.contains(r.cluster.as_str()))
        .map(|r| (r.cluster.as_str(), r.drill.as_str()))
        .collect();
    keys.extend(ran.into_iter().map(|(c, d)| (c.to_owned(), d.to_owned())));
    drop(runs);
    let keys: Vec<(String, String)> = keys.into_iter().collect();
    let mut slots: Vec<Slot<'_>> = keys.iter().map(|_| Slot::default()).collect();
    {
        let at: HashMap<(&str, &str), usize> = keys
            .iter()
            .enumerate()
            .map(|(i, (c, d))| ((c.as_str(), d.as_str()), i))
            .collect();
        // The runs move into their drill's slot: each becomes its row, and nothing is copied.
        for (r, planned) in all_runs.into_iter().zip(planned_runs) {
            if let Some(&i) = at.get(&(r.cluster.as_str(), r.drill.as_str())) {
                slots[i].runs.push((r, !planned));
            }
        }
        for a in &adherence {
            if let Some(&i) = at.get(&(a.cluster.as_str(), a.drill.as_str())) {
                slots[i].fires.push(a);
            }
        }
    }

    phase("slots");
    // Each drill's runs become its rows on two threads, the runs split evenly between them: the
    // slots are independent, and this is most of the building.
    let mut work: Vec<((String, String), Slot<'_>)> = keys.into_iter().zip(slots).collect();
    let second = work.split_off(half_of(&work, |(_, s)| s.runs.len()));
    let built: Vec<(DrillReport, Vec<FollowUp>)> = std::thread::scope(|scope| {
        let other = scope.spawn(|| {
            second
                .into_iter()
                .map(|((cluster, name), slot)| drill_report(config, cluster, name, slot))
                .collect::<Vec<_>>()
        });
        let mut built: Vec<_> = work
            .into_iter()
            .map(|((cluster, name), slot)| drill_report(config, cluster, name, slot))
            .collect();
        match other.join() {
            Ok(rest) => built.extend(rest),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        built
    });
    let mut follow_ups = Vec::new();
    let mut drill_reports = Vec::with_capacity(built.len());
    for (report, open) in built {
        drill_reports.push(report);
        follow_ups.extend(open);
    }

    phase("drills");
    let fleet = clusters
        .iter()
        .map(|c| {
            let mine: Vec<&DrillReport> =
                drill_reports.iter().filter(|d| d.cluster == *c).collect();
            let mut t = tally(adherence.iter().filter(|a| a.cluster == *c));
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
                open_follow_ups: follow_ups
                    .iter()
                    .filter(|f: &&FollowUp| f.cluster == *c && f.state == "open")
                    .count() as u32,
            }
        })
        .collect();
    let mut summary = tally(adherence.iter());
    summary.unplanned_runs = drill_reports.iter().map(|d| d.tally.unplanned_runs).sum();
    follow_ups.sort_by(|a, b| {
        (a.state != "open", &a.cluster, &a.drill, &a.scheduled).cmp(&(
            b.state != "open",
            &b.cluster,
            &b.drill,
            &b.scheduled,
        ))
    });
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
        adherence,
        drills: drill_reports,
        follow_ups,
    })
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
    cluster: String,
    name: String,
    slot: Slot<'_>,
) -> (DrillReport, Vec<FollowUp>) {
    let Slot {
        mut runs,
        fires: rows,
    } = slot;
    // In order of the scheduled instant (the store reads them in no particular order; in
    // practice nearly in order, which the sort finds in one pass).
    runs.sort_by(|(a, _), (b, _)| (a.scheduled, &a.id).cmp(&(b.scheduled, &b.id)));
    let (list, unplanned): (Vec<RunRecord<Trail>>, Vec<bool>) = runs.into_iter().unzip();
    let drill = config.drills.iter().find(|d| d.name == name);
    let mut tally = tally(rows.iter().copied());
    tally.unplanned_runs = unplanned.iter().filter(|u| **u).count() as u32;
    let open = follow_ups_of(&cluster, &name, &list, &rows);
    let kind = drill
        .map(|d| d.kind.to_string())
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
/// calendar, and its planned fires.
#[derive(Default)]
struct Slot<'a> {
    /// Each run, and whether it is outside the calendar.
    runs: Vec<(RunRecord<Trail>, bool)>,
    fires: Vec<&'a Adherence>,
}

fn tally<'a>(rows: impl Iterator<Item = &'a Adherence>) -> Tally {
    let mut t = Tally::default();
    for a in rows {
        t.planned += 1;
        if a.planned == "deferred" {
            t.deferred += 1;
        }
        match a.outcome.as_str() {
            "passed" => t.passed += 1,
            "failed" => t.failed += 1,
            "aborted" => t.aborted += 1,
            "error" => t.error += 1,
            "dry-run" => t.dry_run += 1,
            "blocked" => t.blocked += 1,
            "skipped" => t.skipped += 1,
            "missed" => t.missed += 1,
            "running" | "pending" => t.pending += 1,
            _ => t.unaccounted += 1,
        }
    }
    t.ran = t.passed + t.failed + t.aborted + t.error;
    let due = t.planned - t.skipped - t.pending;
    t.adherence_percent = (due > 0).then(|| f64::from(t.ran) * 100.0 / f64::from(due));
    t
}

fn scope(drill: &crate::config::Drill) -> Vec<String> {
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

fn exclusions(runs: &[RunRecord<Trail>]) -> Vec<Exclusion> {
    let mut by_reason: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for r in runs {
        for e in &r.evidence.excluded {
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
fn figure(
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

fn rollbacks(runs: &[RunRecord<Trail>]) -> Rollbacks {
    let mut out = Rollbacks::default();
    for r in runs {
        if !changed_anything(&r.evidence) {
            continue;
        }
        out.runs_with_changes += 1;
        if r.rollback_failed() {
            out.failed += 1;
        } else if r.evidence.reverted.is_some() {
            out.restored += 1;
        }
    }
    out
}

fn changed_anything(t: &Trail) -> bool {
    t.changed()
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty())
}

/// The lines of a list in the evidence (an entry that is not text, as its JSON).
fn strings(value: Option<Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn run_row(r: RunRecord<Trail>, unplanned: bool) -> RunRow {
    let c = r.criteria();
    let rollback = if r.rollback_failed() {
        "failed"
    } else if r.evidence.reverted.is_some()
        || r.evidence.revert.as_ref().is_some_and(Value::is_array)
    {
        "restored"
    } else if changed_anything(&r.evidence) {
        "not reverted"
    } else {
        "none"
    };
    let safety_violation = r.safety_violated();
    let m = r.measurements;
    let e = r.evidence;
    // Only what the record holds: a run's Job and Event are never inferred from its id or status.
    let job = match e.job {
        Some(JobNote { name: Some(name) }) => name,
        Some(JobNote { name: None }) => "none: the run executed in no Job".to_owned(),
        None => NOT_RECORDED.to_owned(),
    };
    let event = match e.event {
        Some(EventNote {
            created: Some(event),
            ..
        }) => event,
        Some(EventNote {
            not_created: Some(why),
            ..
        }) => format!("none created: {why}"),
        _ => NOT_RECORDED.to_owned(),
    };
    let revert_error = e
        .revert_error
        .as_ref()
        .and_then(Value::as_str)
        .map(str::to_owned);
    let closed_later = e.rollback_closed.map(|c| {
        format!(
            "found later, {}: {}",
            c.at.as_deref().unwrap_or("?"),
            c.how.as_deref().unwrap_or("no detail recorded")
        )
    });
    let undone = strings(e.reverted.or(e.revert));
    let (injected_changed, ledger, injected_dns) = match e.injected {
        Some(i) => (i.changed, i.ledger, i.dns_changes),
        None => (None, None, None),
    };
    let dns_changes = strings(injected_dns)
        .into_iter()
        .chain(
            undone
                .iter()
                .filter_map(|l| l.strip_prefix("DNS ").map(str::to_owned)),
        )
        .collect();
    let mut undone_lines: Vec<String> = undone
        .into_iter()
        .filter(|l| !l.starts_with("DNS "))
        .collect();
    if let Some(err) = revert_error {
        undone_lines.push(format!("REVERT FAILED: {err}"));
    }
    undone_lines.extend(closed_later);
    let field = |t: Option<String>| t.unwrap_or_else(|| "?".to_owned());
    RunRow {
        scheduled: stamp(r.scheduled),
        started: r.started.map(stamp),
        ended: r.ended.map(stamp),
        status: r.status.to_string(),
        reason: r.reason,
        unplanned,
        rto_seconds: m.rto_seconds,
        rto_target_seconds: c.rto_seconds,
        rpo_seconds: m.rpo_seconds,
        rpo_target_seconds: c.rpo_seconds,
        availability: m.availability,
        availability_target: c.availability,
        latency_p95_seconds: m.latency_p95_seconds,
        latency_p95_target_seconds: c.latency_p95_seconds,
        requests: m.requests,
        rollback,
        safety_violation,
        evidence: Evidence {
            job,
            ledger,
            targets: r
                .targets
                .iter()
                .map(|t| format!("{}/{}", t.namespace, t.name))
                .collect(),
            changed: strings(injected_changed),
            undone: undone_lines,
            dns_changes,
            events: vec![event],
            preflight: e
                .preflight
                .into_iter()
                .map(|g| {
                    format!(
                        "{}: {}",
                        field(g.check),
                        if g.passed == Some(true) {
                            "passed"
                        } else {
                            "failed"
                        }
                    )
                })
                .collect(),
            samples: e.samples.map(|s| {
                format!(
                    "{} sent, {} as expected, {} answered",
                    s.sent, s.available, s.answered
                )
            }),
            timeline: e
                .timeline
                .into_iter()
                .map(|t| format!("{} {}", field(t.at), field(t.event)))
                .collect(),
        },
        run: r.id,
    }
}

/// What the drill's runs and fires leave to do. A failed criterion, a breached target, an
/// abort or a fire that did not run is closed by a later run of the drill on the cluster that
/// passed; a failed rollback stays open until its ledger is found closed (not merely deleted).
fn follow_ups_of(
    cluster: &str,
    drill: &str,
    runs: &[RunRecord<Trail>],
    fires: &[&Adherence],
) -> Vec<FollowUp> {
    // `runs` is in scheduled order: the first pass after an instant is found by bisection.
    let passed: Vec<&RunRecord<Trail>> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Passed)
        .collect();
    let closed_by = |after: DateTime<Utc>| -> String {
        passed
            .get(passed.partition_point(|r| r.scheduled <= after))
            .map_or_else(
                || "open".to_owned(),
                |r| format!("closed by {} (passed {})", r.id, stamp(r.scheduled)),
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
    for a in fires {
        if matches!(a.outcome.as_str(), "missed" | "unaccounted") {
            let scheduled = DateTime::parse_from_rfc3339(&a.scheduled)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default();
            out.push(FollowUp {
                cluster: cluster.to_owned(),
                drill: drill.to_owned(),
                run: None,
                scheduled: a.scheduled.clone(),
                what: format!(
                    "did not run ({}): {}",
                    a.outcome,
                    a.reason.as_deref().unwrap_or("no reason recorded")
                ),
                state: closed_by(scheduled),
            });
        }
    }
    out
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
