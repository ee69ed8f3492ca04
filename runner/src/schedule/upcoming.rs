//! `firedrill plan`: the calendar of upcoming fires, as a table for people or JSON for tools.

use std::collections::BTreeSet;
use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;

use firedrill_experiments::{Choice, Settings};
use firedrill_safety::cluster::Cluster;
use firedrill_safety::scenario::{judged_after, Held};
use firedrill_safety::verdict::{self, Request};

use crate::cluster::skips::Skips;
use crate::config::scenario::Fault;
use crate::config::Config;
use crate::schedule::{self, Calendar, Fire, FireStatus};
use firedrill_reader::duration;

/// How far `plan` looks when neither `--until` nor `--next` is given.
pub const DEFAULT_WINDOW: TimeDelta = TimeDelta::days(366);
/// How far `--next` searches for fires before giving up.
const MAX_SEARCH: TimeDelta = TimeDelta::days(100 * 366);

/// How much of the calendar to show.
#[derive(Clone, Copy, Debug)]
pub enum Window {
    Until(DateTime<Utc>),
    Next(usize),
    /// One hypothetical fire of every drill at this instant.
    At(DateTime<Utc>),
}

/// One fire as `plan --format json` prints it. Field names are a contract.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedFire {
    pub drill: String,
    pub kind: String,
    pub scheduled: String,
    pub local: String,
    pub timezone: String,
    pub start: Option<String>,
    /// `start` in the drill's zone.
    pub start_local: Option<String>,
    pub duration_seconds: u64,
    pub status: FireStatus,
    pub reason: Option<String>,
    /// With `--cluster`: what the fire would hit, for fires that run and act on pods (a
    /// scenario's: every step's targets, and blocked where a required step would be refused).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<PlannedVerdict>,
    /// A scenario's steps, in the order they would start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<PlannedStep>>,
}

/// One step of a scenario fire, as `plan --format json` prints it. Field names are a contract.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedStep {
    pub name: String,
    pub kind: String,
    /// What it waits for, each as `STEP injected` or `STEP recovered`; none: it starts with the
    /// scenario.
    pub after: Vec<String>,
    /// How long after `after` holds it starts.
    pub delay_seconds: u64,
    /// Its condition on an earlier step's RTO, as `STEP rto_under 1m` (or `rto_at_least`).
    pub when: Option<String>,
    /// A refused optional step is recorded and the scenario goes on without it.
    pub optional: bool,
    /// With `--cluster`: what the step would hit, judged on the cluster as the steps before it
    /// would leave it.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<PlannedVerdict>,
}

/// What the guard would decide for one fire: the fire's verdict, and a scenario's steps'.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub verdict: PlannedVerdict,
    /// A scenario's steps' verdicts, in start order (none for another kind).
    pub steps: Vec<PlannedVerdict>,
}

/// The guard's verdict for one fire, as `plan --cluster --format json` prints it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PlannedVerdict {
    pub targets: Vec<PlannedTarget>,
    pub excluded: Vec<PlannedExclusion>,
    pub blocked: Option<String>,
    /// Node faults: each node the fire would drain or stress, with every pod on it that it
    /// hurts (targets and neighbours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<PlannedNode>>,
    /// Node faults: each node the fire would leave alone, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_nodes: Option<Vec<PlannedRefusal>>,
    /// Zone outages: the zone the fire would take out (its nodes are `nodes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Zone outages: each zone the fire would leave alone, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_zones: Option<Vec<PlannedZoneRefusal>>,
    /// Dependency faults: what fails and how. Scaling it down or answering for its Service
    /// reaches every client, not only the pods in `targets`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependency: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedRefusal {
    pub node: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedZoneRefusal {
    pub zone: String,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedNode {
    pub node: String,
    pub cordoned_before: bool,
    pub pods: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedTarget {
    pub namespace: String,
    pub name: String,
    /// The workload, as `Kind/name` in the pod's namespace.
    pub owner: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlannedExclusion {
    pub namespace: String,
    pub name: String,
    pub reason: String,
}

fn rfc3339_utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The fires of `config` from `from` on, as far as `window` says; with a cluster snapshot, what
/// each fire would hit, and with `exclusions`, every pod it leaves alone and why (a table shows
/// only counts: a year of hourly fires would otherwise hold millions of reasons). All at once:
/// [`fires`] streams them.
pub fn calendar(
    config: &Config,
    from: DateTime<Utc>,
    window: Window,
    cluster: Option<&Cluster>,
    exclusions: bool,
) -> Vec<PlannedFire> {
    fires(config, from, window, cluster, None, exclusions).collect()
}

/// [`calendar`] as a stream, in order of scheduled instant then drill: it holds only the fires
/// in flight (and, with a cluster, the workloads the fires so far hit), so ten years of
/// every-minute fires cost what a day of them does. With `skips` (a snapshot's
/// `firedrill-skips`), a vetoed fire is shown skipped, by whom and why, and is not judged: it
/// hits nothing, so the fires after it see no cooldown from it.
pub fn fires<'a>(
    config: &'a Config,
    from: DateTime<Utc>,
    window: Window,
    cluster: Option<&'a Cluster>,
    skips: Option<&'a Skips>,
    exclusions: bool,
) -> Box<dyn Iterator<Item = PlannedFire> + 'a> {
    let drills = config.planned_drills();
    let (zone, blackouts, concurrency) = (
        config.timezone,
        config.blackouts.as_slice(),
        config.concurrency as usize,
    );
    let planned = move |(fire, judged): (Fire, Option<Judgement>)| {
        let planned = planned_fire(config, fire, judged);
        match skips {
            Some(skips) => vetoed(planned, skips),
            None => planned,
        }
    };
    let is_vetoed = move |fire: &Fire| {
        skips.is_some_and(|s| {
            s.find(&config.drills[fire.drill].name, fire.scheduled)
                .is_some()
        })
    };
    let calendar = match window {
        Window::Until(until) => Calendar::window(drills, zone, blackouts, concurrency, from, until),
        Window::Next(_) => Calendar::open(
            drills,
            zone,
            blackouts,
            concurrency,
            from,
            from.checked_add_signed(MAX_SEARCH)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        ),
        // `--at` asks what each drill would do on its own: no fire sees another's cooldown.
        Window::At(at) => {
            let fires = schedule::fires_at(&drills, zone, blackouts, at);
            let index = cluster.map(verdict::ClusterIndex::new);
            let none = verdict::RecentHits::new();
            let judged: Vec<_> = fires
                .into_iter()
                .map(|fire| {
                    let v = match (cluster, &index) {
                        _ if is_vetoed(&fire) => None,
                        (Some(cluster), Some(index)) => {
                            judge(config, cluster, index, &fire, &none, exclusions)
                                .map(|j| j.judgement)
                        }
                        _ => None,
                    };
                    (fire, v)
                })
                .collect();
            return Box::new(judged.into_iter().map(planned));
        }
    };
    let Some(cluster) = cluster else {
        return match window {
            Window::Next(n) => Box::new(calendar.take(n).map(planned)),
            _ => Box::new(calendar.map(planned)),
        };
    };
    // Fires of a calendar follow each other, so each sees the cooldown of those before it: the
    // calendar notes fires in the order they start. Only fires shown are judged (and hit).
    let index = verdict::ClusterIndex::new(cluster);
    let mut hits = verdict::RecentHits::new();
    let shown = move |fire: &Fire, rank: usize| match window {
        Window::Until(until) => fire.scheduled < until,
        Window::Next(n) => rank < n,
        Window::At(_) => true,
    };
    let calendar = calendar.noting(move |fire, rank| {
        if !shown(fire, rank) || is_vetoed(fire) {
            return None;
        }
        let v = judge(config, cluster, &index, fire, &hits, exclusions)?;
        if let Some(start) = fire.start {
            // Fires are noted in start order, so this fire's start is each workload's latest.
            for owner in v.hit {
                hits.insert(owner, start.timestamp());
            }
        }
        Some(v.judgement)
    });
    match window {
        Window::Next(n) => Box::new(calendar.take(n).map(planned)),
        _ => Box::new(calendar.map(planned)),
    }
}

/// The fire as a person's veto (`firedrill skip`) leaves it: skipped, by whom and why, when
/// `skips` holds its mark.
pub fn vetoed(mut fire: PlannedFire, skips: &Skips) -> PlannedFire {
    let mark = skips
        .marks
        .iter()
        .find(|s| s.drill == fire.drill && rfc3339_utc(s.scheduled) == fire.scheduled);
    if let Some(skip) = mark {
        fire.status = FireStatus::Skipped;
        fire.reason = Some(skip.describe());
        fire.start = None;
        fire.start_local = None;
        // It will not run: it hits nothing.
        fire.verdict = None;
    }
    fire
}

fn planned_fire(config: &Config, f: Fire, judged: Option<Judgement>) -> PlannedFire {
    let drill = &config.drills[f.drill];
    let (verdict, steps) = match judged {
        Some(j) => (Some(j.verdict), j.steps),
        None => (None, Vec::new()),
    };
    PlannedFire {
        steps: planned_steps(&drill.fault, steps),
        drill: drill.name.clone(),
        kind: drill.kind().to_string(),
        scheduled: rfc3339_utc(f.scheduled),
        local: f
            .scheduled
            .with_timezone(&drill.timezone)
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        timezone: drill.timezone.name().to_owned(),
        start: f.start.map(rfc3339_utc),
        start_local: f.start.map(|s| {
            s.with_timezone(&drill.timezone)
                .to_rfc3339_opts(SecondsFormat::Secs, true)
        }),
        duration_seconds: drill.duration.as_secs(),
        status: f.status,
        reason: f.reason,
        verdict,
    }
}

/// A fire's verdict, and the workloads it hits (for the cooldown of the fires after it).
struct Judged {
    judgement: Judgement,
    hit: Vec<firedrill_safety::cluster::OwnerRef>,
}

/// The guard's verdict for a fire that runs and acts on pods; `None` for the others.
fn judge(
    config: &Config,
    cluster: &Cluster,
    index: &verdict::ClusterIndex,
    fire: &Fire,
    hits: &verdict::RecentHits,
    exclusions: bool,
) -> Option<Judged> {
    let drill = &config.drills[fire.drill];
    let start = fire.start?;
    if !drill.kind().changes_anything() {
        return None;
    }
    let at = Instants {
        scheduled: fire.scheduled,
        start,
    };
    if let Settings::Scenario(scenario) = &drill.fault {
        return Some(judge_scenario(
            config, cluster, drill, scenario, at, hits, exclusions,
        ));
    }
    let choice = firedrill_experiments::choose(
        &drill.fault,
        index,
        cluster,
        &request(config, drill, &drill.targets, &drill.safety, at, hits),
    );
    let (verdict, hit) = planned_verdict(choice, &drill.fault, exclusions);
    Some(Judged {
        judgement: Judgement {
            verdict,
            steps: Vec::new(),
        },
        hit,
    })
}

/// When a fire is scheduled (its seed) and when it would start (the guard's now).
#[derive(Clone, Copy)]
struct Instants {
    scheduled: DateTime<Utc>,
    start: DateTime<Utc>,
}

/// What the guard is asked for one fire of `drill` (or one step of it, with the step's targets
/// and the policy as the steps before it leave it): the seed is the drill's and the fire's, as
/// the executor's is.
fn request<'a>(
    config: &'a Config,
    drill: &'a crate::config::Drill,
    targets: &'a [firedrill_safety::Target],
    policy: &'a firedrill_safety::Policy,
    at: Instants,
    hits: &'a verdict::RecentHits,
) -> Request<'a> {
    Request {
        drill: &drill.name,
        seed: verdict::seed(&drill.name, at.scheduled.timestamp()),
        now: at.start.timestamp(),
        targets,
        policy,
        own_namespace: &config.namespace,
        recent_hits: hits,
    }
}

/// Each step of a scenario in the order it would start, with what the guard would choose for it
/// on the cluster as the steps before it leave it (`judged_after`: what they hold counts as down,
/// what they hit comes off `max_targets`); `None` for a step the scenario would not reach, after
/// a required step is refused. Every step before counts as still holding what it took.
fn choose_steps<'a>(
    config: &Config,
    cluster: &Cluster,
    drill: &crate::config::Drill,
    scenario: &'a firedrill_experiments::Scenario,
    at: Instants,
    hits: &verdict::RecentHits,
) -> Vec<(&'a firedrill_experiments::ScenarioStep, Option<Choice>)> {
    let mut held = Held::default();
    let mut ended = false;
    let mut out = Vec::with_capacity(scenario.steps.len());
    for step in crate::config::scenario::start_order(scenario) {
        if ended {
            out.push((step, None));
            continue;
        }
        let (seen, policy) = judged_after(cluster, &drill.safety, &held);
        let index = verdict::ClusterIndex::new(&seen);
        let choice = firedrill_experiments::choose(
            &step.fault,
            &index,
            &seen,
            &request(config, drill, &step.targets, &policy, at, hits),
        );
        // What the step holds for those after it, as the run's step tells its scenario.
        if choice.verdict.blocked.is_none() {
            firedrill_experiments::hold(&mut held, &choice, &step.fault);
        }
        ended = choice.verdict.blocked.is_some() && !step.optional;
        out.push((step, Some(choice)));
    }
    out
}

/// A scenario fire judged step by step ([`choose_steps`]): each step's verdict, and the fire's:
/// every step's targets, blocked where a required step would be refused.
fn judge_scenario(
    config: &Config,
    cluster: &Cluster,
    drill: &crate::config::Drill,
    scenario: &firedrill_experiments::Scenario,
    at: Instants,
    hits: &verdict::RecentHits,
    exclusions: bool,
) -> Judged {
    let mut whole = PlannedVerdict::default();
    let mut steps = Vec::with_capacity(scenario.steps.len());
    let mut hit = Vec::new();
    let mut refused: Option<&str> = None;
    for (step, choice) in choose_steps(config, cluster, drill, scenario, at, hits) {
        let Some(choice) = choice else {
            steps.push(PlannedVerdict {
                blocked: Some(format!(
                    "not reached: the scenario would end blocked at step {}",
                    refused.unwrap_or_default()
                )),
                ..PlannedVerdict::default()
            });
            continue;
        };
        let (verdict, step_hit) = planned_verdict(choice, &step.fault, exclusions);
        if let (Some(why), false) = (&verdict.blocked, step.optional) {
            refused = Some(&step.name);
            whole.blocked = Some(format!(
                "step {} would be refused ({why}): the scenario would end blocked there, the steps before it reverted newest first",
                step.name
            ));
        }
        whole.targets.extend(verdict.targets.iter().cloned());
        hit.extend(step_hit);
        steps.push(verdict);
    }
    Judged {
        judgement: Judgement {
            verdict: whole,
            steps,
        },
        hit,
    }
}

/// A scenario's steps as `plan` shows them, in start order, with their verdicts when judged.
fn planned_steps(fault: &Settings, verdicts: Vec<PlannedVerdict>) -> Option<Vec<PlannedStep>> {
    let Settings::Scenario(scenario) = fault else {
        return None;
    };
    let mut verdicts = verdicts.into_iter();
    Some(
        crate::config::scenario::start_order(scenario)
            .into_iter()
            .map(|step| PlannedStep {
                name: step.name.clone(),
                kind: step.fault.kind().to_string(),
                after: step.after.iter().map(after_text).collect(),
                delay_seconds: step.delay.as_secs(),
                when: step.when.as_ref().map(when_text),
                optional: step.optional,
                verdict: verdicts.next(),
            })
            .collect(),
    )
}

/// What a step waits for, as `plan` shows it: `STEP injected` or `STEP recovered`.
fn after_text(after: &firedrill_experiments::After) -> String {
    match after {
        firedrill_experiments::After::Injected(s) => format!("{s} injected"),
        firedrill_experiments::After::Recovered(s) => format!("{s} recovered"),
    }
}

/// A step's condition, as `plan` shows it: `STEP rto_under 1m` or `STEP rto_at_least 2m`.
fn when_text(when: &firedrill_experiments::When) -> String {
    let (figure, bound) = match when.figure {
        firedrill_experiments::Figure::RtoUnder(d) => ("rto_under", d),
        firedrill_experiments::Figure::RtoAtLeast(d) => ("rto_at_least", d),
    };
    format!("{} {figure} {}", when.step, duration::format(bound))
}

/// When a step starts: with the scenario, or after what it waits for, and its delay.
fn starts_text(after: &[String], delay: std::time::Duration) -> String {
    let mut starts = if after.is_empty() {
        "with the scenario".to_owned()
    } else {
        format!("after {}", after.join(", "))
    };
    if !delay.is_zero() {
        starts.push_str(&format!(" +{}", duration::format(delay)));
    }
    starts
}

/// The guard's choice as `plan` shows it, and the workloads it hits.
fn planned_verdict(
    mut choice: Choice,
    fault: &Settings,
    exclusions: bool,
) -> (PlannedVerdict, Vec<firedrill_safety::cluster::OwnerRef>) {
    let zone = choice.nodes.as_ref().and_then(|n| n.zone.clone());
    let zone_outage = matches!(fault, Settings::ZoneOutage(_));
    let refused_zones = choice.nodes.as_mut().filter(|_| zone_outage).map(|judged| {
        std::mem::take(&mut judged.refused)
            .into_iter()
            .filter(|_| exclusions)
            .map(|(zone, reason)| PlannedZoneRefusal { zone, reason })
            .collect()
    });
    let (nodes, refused_nodes) = match choice.nodes {
        None => (None, None),
        Some(judged) => (
            Some(
                judged
                    .nodes
                    .into_iter()
                    .map(|n| PlannedNode {
                        node: n.node,
                        cordoned_before: n.was_unschedulable,
                        pods: n
                            .pods
                            .into_iter()
                            .map(|p| format!("{}/{}", p.namespace, p.name))
                            .collect(),
                    })
                    .collect(),
            ),
            Some(
                judged
                    .refused
                    .into_iter()
                    .filter(|_| exclusions)
                    .map(|(node, reason)| PlannedRefusal { node, reason })
                    .collect(),
            ),
        ),
    };
    let v = choice.verdict;
    let hit = v.targets.iter().filter_map(|t| t.owner.clone()).collect();
    let verdict = PlannedVerdict {
        targets: v
            .targets
            .into_iter()
            .map(|t| PlannedTarget {
                owner: t.owner.map(|o| format!("{}/{}", o.kind, o.name)),
                namespace: t.namespace,
                name: t.name,
            })
            .collect(),
        excluded: v
            .excluded
            .into_iter()
            .filter(|_| exclusions)
            .map(|e| PlannedExclusion {
                namespace: e.namespace,
                name: e.name,
                reason: e.reason,
            })
            .collect(),
        blocked: v.blocked,
        nodes,
        refused_nodes: refused_nodes.filter(|_| !zone_outage),
        zone,
        refused_zones,
        dependency: match fault {
            Settings::DependencyFailure(d) => Some(format!(
                "{} ({})",
                d.dependency,
                firedrill_experiments::dependency::mode_name(&d.mode)
            )),
            _ => None,
        },
    };
    (verdict, hit)
}

pub fn render_json(fires: &[PlannedFire]) -> String {
    serde_json::to_string_pretty(fires).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// `plan --format json`, written as the calendar is made: the text of [`render_json`] and a
/// newline, never held whole. Returns the drills that fire (for the notes). A failed write is
/// the error; a closed pipe is one too (`ErrorKind::BrokenPipe`), for the caller to end quietly.
pub fn write_json(
    fires: impl Iterator<Item = PlannedFire>,
    out: &mut impl Write,
) -> io::Result<BTreeSet<String>> {
    let mut fired = BTreeSet::new();
    let mut element = Vec::new();
    let mut first = true;
    out.write_all(b"[")?;
    for fire in fires {
        if !fired.contains(&fire.drill) {
            fired.insert(fire.drill.clone());
        }
        element.clear();
        serde_json::to_writer_pretty(&mut element, &fire).map_err(io::Error::from)?;
        out.write_all(if first { b"\n  " } else { b",\n  " })?;
        first = false;
        // One level in: every line of the element indented by two more spaces (JSON strings
        // hold no raw newline, so every newline is layout).
        for (i, line) in element.split(|b| *b == b'\n').enumerate() {
            if i > 0 {
                out.write_all(b"\n  ")?;
            }
            out.write_all(line)?;
        }
    }
    out.write_all(if first { b"]\n" } else { b"\n]\n" })?;
    Ok(fired)
}

/// The columns of the table, and how wide each is.
struct Table {
    with_hits: bool,
    /// DRILL, KIND, LOCAL, UTC, DURATION, STATUS, START, HITS; REASON is last and not padded.
    widths: [usize; 8],
    rows: usize,
}

const HEADER: [&str; 9] = [
    "DRILL", "KIND", "LOCAL", "UTC", "DURATION", "STATUS", "START", "HITS", "REASON",
];

impl Table {
    fn new() -> Self {
        let mut widths = [0; 8];
        for (w, h) in widths.iter_mut().zip(HEADER) {
            *w = h.len();
        }
        Table {
            with_hits: false,
            widths,
            rows: 0,
        }
    }

    /// The cells of a fire's row, HITS included (dropped when no fire was judged).
    fn cells(f: &PlannedFire) -> [String; 9] {
        let blocked = f.verdict.as_ref().and_then(|v| v.blocked.as_ref());
        [
            f.drill.clone(),
            f.kind.clone(),
            f.local.clone(),
            f.scheduled.clone(),
            duration::format(std::time::Duration::from_secs(f.duration_seconds)),
            f.status.to_string(),
            match (&f.start, &f.start_local) {
                (Some(s), _) if *s == f.scheduled => "on time".to_owned(),
                (_, Some(local)) => local.clone(),
                _ => "-".to_owned(),
            },
            Self::hits(f.verdict.as_ref()),
            match (&f.reason, blocked) {
                (Some(r), Some(b)) => format!("{r}; {b}"),
                (Some(r), None) => r.clone(),
                (None, Some(b)) => b.clone(),
                (None, None) => String::new(),
            },
        ]
    }

    fn hits(verdict: Option<&PlannedVerdict>) -> String {
        match verdict {
            None => "-".to_owned(),
            Some(v) if v.blocked.is_some() => "blocked".to_owned(),
            Some(v) => format!(
                "{}{} pod{}",
                v.zone
                    .as_ref()
                    .map_or(String::new(), |z| format!("zone {z}: ")),
                v.targets.len(),
                if v.targets.len() == 1 { "" } else { "s" }
            ),
        }
    }

    /// The rows of a fire that would start a scenario: one per step, under it, in start order:
    /// what the step waits for in START, its condition and why it would be refused in REASON.
    fn step_cells(f: &PlannedFire) -> Vec<[String; 9]> {
        let steps = f.steps.as_deref().filter(|_| f.start.is_some());
        steps
            .unwrap_or_default()
            .iter()
            .map(|s| {
                let starts = starts_text(&s.after, std::time::Duration::from_secs(s.delay_seconds));
                let reason: Vec<String> = s
                    .when
                    .iter()
                    .map(|w| format!("only if {w}"))
                    .chain(s.verdict.iter().filter_map(|v| v.blocked.clone()))
                    .collect();
                [
                    format!("  - {}", s.name),
                    s.kind.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                    if s.optional { "optional" } else { "step" }.to_owned(),
                    starts,
                    Self::hits(s.verdict.as_ref()),
                    reason.join("; "),
                ]
            })
            .collect()
    }

    fn measure(&mut self, f: &PlannedFire) {
        self.with_hits |= f.verdict.is_some();
        self.rows += 1;
        for cells in std::iter::once(Self::cells(f)).chain(Self::step_cells(f)) {
            for (w, cell) in self.widths.iter_mut().zip(cells) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }

    fn line<S: AsRef<str>>(&self, out: &mut impl Write, cells: &[S; 9]) -> io::Result<()> {
        use std::fmt::Write as _;
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let cell = cell.as_ref();
            match i {
                7 if !self.with_hits => {}
                8 => text.push_str(cell),
                _ => {
                    let _ = write!(text, "{cell:<width$}  ", width = self.widths[i]);
                }
            }
        }
        out.write_all(text.trim_end().as_bytes())?;
        out.write_all(b"\n")
    }

    fn header(&self, out: &mut impl Write) -> io::Result<()> {
        self.line(out, &HEADER)
    }

    fn row(&self, out: &mut impl Write, f: &PlannedFire) -> io::Result<()> {
        self.line(out, &Self::cells(f))?;
        for step in Self::step_cells(f) {
            self.line(out, &step)?;
        }
        Ok(())
    }

    fn end(&self, out: &mut impl Write) -> io::Result<()> {
        if self.rows == 0 {
            out.write_all(b"(no fires in this window)\n")?;
        }
        Ok(())
    }
}

/// A plain-text table, one fire per line, columns aligned. The HITS column (pods the guard
/// would hit) appears only when the plan was made against a cluster snapshot.
pub fn render_table(fires: &[PlannedFire]) -> String {
    let mut out = Vec::new();
    // Writing to memory cannot fail.
    let _ = write_table(|| fires.iter().cloned(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// [`render_table`], written as the calendar is made, never held whole: the columns' widths
/// need every row, so `fires` is asked for the calendar twice, once to measure and once to
/// write. Returns the drills that fire; errors as [`write_json`].
pub fn write_table<I: Iterator<Item = PlannedFire>>(
    mut fires: impl FnMut() -> I,
    out: &mut impl Write,
) -> io::Result<BTreeSet<String>> {
    let mut table = Table::new();
    let mut fired = BTreeSet::new();
    for fire in fires() {
        table.measure(&fire);
        if !fired.contains(&fire.drill) {
            fired.insert(fire.drill);
        }
    }
    table.header(out)?;
    // As many rows as measured: the calendar is the same both times.
    for fire in fires().take(table.rows) {
        table.row(out, &fire)?;
    }
    table.end(out)?;
    Ok(fired)
}

/// Why `plan --render` cannot show a fire.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no drill named {name:?} (the file's drills: {})", .drills.join(", "))]
    NoDrill { name: String, drills: Vec<String> },
    /// The drill's kind cannot run on that cluster.
    #[error("{0}")]
    Plan(#[from] firedrill_experiments::PlanError),
}

/// `plan --drill NAME --at T --render`: every change one fire of the drill would make to the
/// cluster snapshot, as YAML documents — objects it would create (as they would be created,
/// labels and expiry included) and changes to existing objects with the prior value a revert
/// restores. Nothing is asked of a cluster.
pub fn render_fire(
    config: &Config,
    cluster: &Cluster,
    name: &str,
    at: DateTime<Utc>,
) -> Result<String, RenderError> {
    let drill = config.drill(name).ok_or_else(|| RenderError::NoDrill {
        name: name.to_owned(),
        drills: config.drills.iter().map(|d| d.name.clone()).collect(),
    })?;
    let instants = Instants {
        scheduled: at,
        start: at,
    };
    let none = verdict::RecentHits::new();
    let run = crate::cluster::job::run_id(&drill.name, at);
    let expires = at
        + TimeDelta::from_std(crate::cluster::job::active_deadline(drill))
            .unwrap_or(TimeDelta::hours(25));
    let rendering = Rendering {
        drill,
        cluster,
        expires: rfc3339_utc(expires),
        image: crate::cluster::job::Runtime::from_env().image,
    };
    if let Settings::Scenario(scenario) = &drill.fault {
        let mut out = format!(
            "# {} (scenario) at {}: what one fire would change, step by step in the order they would start (each step's changes newest last; the steps are reverted newest first)\n",
            drill.name,
            rfc3339_utc(at)
        );
        for (step, chosen) in choose_steps(config, cluster, drill, scenario, instants, &none) {
            let after: Vec<String> = step.after.iter().map(after_text).collect();
            let mut starts = starts_text(&after, step.delay);
            if let Some(when) = &step.when {
                starts.push_str(&format!(", only if {}", when_text(when)));
            }
            let step_run = format!("{run}-{}", step.name);
            out.push_str(&format!(
                "# step {} ({}), run {step_run}: starts {starts}\n",
                step.name,
                step.fault.kind()
            ));
            let Some(chosen) = chosen else {
                out.push_str(
                    "# not reached: the scenario would have ended blocked at an earlier step\n",
                );
                continue;
            };
            let refused = chosen.verdict.blocked.is_some();
            rendering.changes(
                &mut out,
                &step_run,
                &step.fault,
                Some(&chosen),
                Some(&step.name),
            )?;
            if refused && step.optional {
                out.push_str("# optional: the scenario would go on without this step\n");
            } else if refused {
                out.push_str("# required: the scenario would end blocked here, the steps before it reverted newest first\n");
            }
        }
        return Ok(out);
    }
    let index = verdict::ClusterIndex::new(cluster);
    let chosen = drill.kind().changes_anything().then(|| {
        firedrill_experiments::choose(
            &drill.fault,
            &index,
            cluster,
            &request(
                config,
                drill,
                &drill.targets,
                &drill.safety,
                instants,
                &none,
            ),
        )
    });
    let mut out = format!(
        "# {} ({}) at {}: what one fire would change, newest last\n",
        drill.name,
        drill.kind(),
        rfc3339_utc(at)
    );
    rendering.changes(&mut out, &run, &drill.fault, chosen.as_ref(), None)?;
    Ok(out)
}

/// One fire of a drill being rendered: what every step of it is planned against.
struct Rendering<'a> {
    drill: &'a crate::config::Drill,
    cluster: &'a Cluster,
    expires: String,
    image: String,
}

impl Rendering<'_> {
    /// What the fault `settings` would change when run as `run` on what the guard chose, as
    /// YAML documents (each with `step` for a scenario's step); what it leaves alone and why, or
    /// why it is blocked, as comments.
    fn changes(
        &self,
        out: &mut String,
        run: &str,
        settings: &Settings,
        chosen: Option<&Choice>,
        step: Option<&str>,
    ) -> Result<(), RenderError> {
        for (_, reason) in chosen
            .iter()
            .filter_map(|c| c.nodes.as_ref())
            .flat_map(|n| &n.refused)
        {
            out.push_str(&format!("# left alone: {reason}\n"));
        }
        if let Some(blocked) = chosen.and_then(|c| c.verdict.blocked.as_ref()) {
            out.push_str(&format!("# blocked: {blocked}; nothing would change\n"));
            return Ok(());
        }
        let plan = firedrill_experiments::plan(
            run,
            settings,
            &firedrill_experiments::Scene {
                choice: chosen,
                cluster: Some(self.cluster),
                image: &self.image,
                duration: self.drill.duration,
                expires: &self.expires,
                dns: None,
            },
        )?;
        let ledger = firedrill_rollback::Ledger::new(
            run,
            &self.drill.name,
            settings.kind().name(),
            &self.expires,
        );
        for (w, wave) in plan.waves.iter().enumerate() {
            for change in wave {
                let mut doc = serde_json::json!({
                    "change": firedrill_rollback::stamped(&change.forward, &ledger),
                    "undo": change.undo,
                });
                if plan.waves.len() > 1 {
                    doc["wave"] = serde_json::json!(w + 1);
                }
                if let Some(step) = step {
                    doc["step"] = serde_json::json!(step);
                }
                out.push_str("---\n");
                out.push_str(&firedrill_reader::yaml::emit(&doc));
            }
        }
        if plan.is_empty() {
            out.push_str("# nothing would change\n");
        }
        Ok(())
    }
}

/// What a person should know about the drills that fire in a plan: what a kind needs of the
/// cluster and of the people running it. One line each.
pub fn notes(config: &Config, fired: &std::collections::BTreeSet<&str>) -> Vec<String> {
    use firedrill_experiments::region::Failback;
    use firedrill_experiments::{Kind, Mode, Settings};
    // Each fault that fires: a drill's, or each step of a scenario's, named `drill/step`.
    let drills: Vec<Fault> = config
        .drills
        .iter()
        .filter(|d| fired.contains(d.name.as_str()))
        .flat_map(crate::config::Drill::faults)
        .collect();
    let names = |keep: &dyn Fn(&Fault) -> bool| -> Vec<&str> {
        drills
            .iter()
            .filter(|d| keep(d))
            .map(|d| d.who.as_str())
            .collect()
    };
    let mut notes = Vec::new();
    let policies = names(&|d| {
        d.kind() == Kind::NetworkPartition
            || matches!(d.settings, Settings::DependencyFailure(s) if s.mode == Mode::Block)
            || matches!(d.settings, Settings::ZoneOutage(z) if z.mode == firedrill_experiments::ZoneMode::Partition)
            || matches!(d.settings, Settings::RegionFailover(rf) if rf.isolate.iter().any(|i| i.how == firedrill_experiments::region::IsolateHow::NetworkPolicy))
    });
    if !policies.is_empty() {
        notes.push(format!("{} {} NetworkPolicies: they need a network plugin that enforces them (Calico, Cilium, ...); with one that does not, the fault is silently not in effect", policies.join(", "), if policies.len() == 1 { "uses" } else { "use" }));
    }
    let killers = names(&|d| d.kind() == Kind::ContainerKill);
    if !killers.is_empty() {
        notes.push(format!("container-kill drills ({}) run a helper pod with hostPID and CAP_KILL on the target's node: its namespace must allow the `privileged` Pod Security level", killers.join(", ")));
    }
    let degraders = names(&|d| d.kind() == Kind::NetworkDegrade);
    if !degraders.is_empty() {
        notes.push(format!("network-degrade drills ({}) run a helper pod with hostPID and the capabilities {} (no others, not privileged: true) on the target's node: its namespace must allow the `privileged` Pod Security level", degraders.join(", "), firedrill_experiments::degrade::CAPABILITIES.join(", ")));
    }
    for d in &drills {
        let Settings::RegionFailover(rf) = d.settings else {
            continue;
        };
        if let Some(dns) = &rf.dns {
            let actions = match dns.method {
                firedrill_experiments::region::DnsMethod::HealthCheck => "route53:GetHealthCheck, GetHealthCheckStatus, UpdateHealthCheck, ListResourceRecordSets and TestDNSAnswer",
                firedrill_experiments::region::DnsMethod::Weights => "route53:GetHealthCheck, GetHealthCheckStatus, ListResourceRecordSets, ChangeResourceRecordSets, GetChange and TestDNSAnswer",
            };
            notes.push(format!("{}: changes Route 53 with the AWS credentials of the drill Job (IRSA; and of whoever runs stop or rollback): {actions}", d.who));
        }
        if rf.promote.is_some() {
            let back = match &rf.failback {
                Some(Failback::Runbook(link)) => format!("failback: people follow {link}"),
                Some(Failback::Hook(_)) => {
                    "failback: firedrill runs the declared hook before it reverts DNS and isolation"
                        .to_owned()
                }
                None => "no failback declared (an armed file refuses this)".to_owned(),
            };
            notes.push(format!("{}: promoting the database in {} cannot be undone; the revert restores DNS and isolation only; {back}", d.who, rf.to));
        }
        if let Some(data) = &rf.data {
            let vars: Vec<&str> = [&data.primary, &data.promoted]
                .into_iter()
                .filter_map(|s| match s {
                    firedrill_experiments::region::Source::Env(v) => Some(v.as_str()),
                    firedrill_experiments::region::Source::Url(_) => None,
                })
                .collect();
            if !vars.is_empty() {
                notes.push(format!("{}: the RPO markers read {} from the environment: put them in the Secret {} in firedrill's namespace", d.who, vars.join(" and "), crate::cluster::job::ENV_SECRET));
            }
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn config(text: &str) -> Config {
        Config::parse(text, std::path::Path::new("plan-test.yaml")).unwrap()
    }

    const MIXED: &str = r#"
timezone: Europe/Berlin
blackouts:
  - { name: weekends, weekdays: [Sat, Sun] }
  - { name: nightly, times: "22:00-06:00" }
drills:
  - { name: long, kind: probe, schedule: "0 21 * * FRI", duration: 3h, deadline: 1h, on_blackout: defer }
  - { name: hourly, kind: probe, schedule: "15 * * * *", duration: 20m, deadline: 10m, on_blackout: defer }
  - { name: half, kind: probe, schedule: "*/30 9-17 * * *", duration: 25m, deadline: 30m }
  - { name: ny, kind: probe, schedule: "0 9 * * MON", duration: 1h, timezone: America/New_York }
"#;

    #[test]
    fn json_is_written_as_serde_json_prints_the_whole_list() {
        let c = config(MIXED);
        for (from, until) in [
            ("2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z"),
            // No fire at all.
            ("2026-11-01T00:00:00Z", "2026-11-01T00:01:00Z"),
        ] {
            let window = Window::Until(utc(until));
            let whole = calendar(&c, utc(from), window, None, true);
            let mut out = Vec::new();
            let fired =
                write_json(fires(&c, utc(from), window, None, None, true), &mut out).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string_pretty(&whole).unwrap() + "\n"
            );
            let names: BTreeSet<String> = whole.iter().map(|f| f.drill.clone()).collect();
            assert_eq!(fired, names);
        }
    }

    #[test]
    fn the_table_is_measured_then_written_row_by_row() {
        let c = config(MIXED);
        let window = Window::Until(utc("2027-01-01T00:00:00Z"));
        let from = utc("2026-11-01T00:00:00Z");
        let mut out = Vec::new();
        write_table(|| fires(&c, from, window, None, None, false), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines.len(),
            1 + calendar(&c, from, window, None, false).len()
        );
        // Every column starts where the header's does.
        let start = lines[0].find("STATUS").unwrap();
        assert!(lines.iter().skip(1).all(|l| {
            ["fires", "queued", "deferred", "missed", "skipped"]
                .iter()
                .any(|s| l[start..].starts_with(s))
        }));
    }

    /// A writer that takes `room` bytes, then fails.
    struct Full {
        room: usize,
        kind: io::ErrorKind,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::new(self.kind, "no room"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_is_the_error_and_ends_the_calendar_there() {
        let c = config(
            "drills:\n  - { name: every-minute, kind: probe, schedule: \"* * * * *\", duration: 30s }\n",
        );
        // A century of every-minute fires: made whole first, it would be 52 million of them.
        let window = Window::Until(utc("2127-01-01T00:00:00Z"));
        for kind in [io::ErrorKind::BrokenPipe, io::ErrorKind::StorageFull] {
            let mut made = 0usize;
            let counted =
                fires(&c, utc("2027-01-01T00:00:00Z"), window, None, None, true).inspect(|_| {
                    made += 1;
                });
            let err = write_json(counted, &mut Full { room: 10_000, kind }).unwrap_err();
            assert_eq!(err.kind(), kind);
            assert!(made < 100, "{made} fires made before the write failed");
        }
    }
}
