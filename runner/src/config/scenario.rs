//! `kind: scenario`: a game day's faults as the steps of one drill (#26 items 1 and 5). Each step
//! is read as a drill's fault is (its `kind:`, its `targets:` with the same checks, its `fault:`
//! through `Settings::read`, its limits against the scenario's `safety:`), then the steps are
//! checked together: unique names that leave room in a run id, `after:` and `when:` naming steps
//! that exist, no cycle, and no condition on a figure its step does not measure.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use firedrill_experiments::{After, Figure, Kind, Scenario, ScenarioStep, Settings, When};
use firedrill_reader::duration;
use firedrill_reader::read::{child, item, Fields, Reader};
use firedrill_reader::yaml::{Mark, Node, Value};
use firedrill_safety::Policy;

/// Run ids are Job names and label values: DNS-1123 labels of at most this many characters.
pub const MAX_RUN_ID: usize = 63;
/// The most a run id adds to its drill's name: a manual run's `-m`, five minute digits and up to
/// eight random ones (`cluster::job::manual_run_id`; a fire's `-<instant>` is shorter).
pub const RUN_ID_SUFFIX: usize = 15;

/// The longest run id a run of drill `drill` may have.
pub fn longest_run_id(drill: &str) -> usize {
    (drill.len() + RUN_ID_SUFFIX).min(MAX_RUN_ID)
}

/// The longest name a step of scenario `drill` may have: its run is `<run id>-<step>`, which must
/// itself be a run id.
pub fn longest_step_name(drill: &str) -> usize {
    MAX_RUN_ID.saturating_sub(longest_run_id(drill) + 1)
}

/// The kinds whose steps measure an RTO of their own: a step has no probes, so its recovery is
/// its pods' workloads back as desired, which only a fault that takes pods down has.
pub(super) const MEASURING_KINDS: &str =
    "pod-kill, container-kill, node-drain and zone-outage in mode drain";

const STEP_KEYS: &[&str] = &[
    "name", "kind", "targets", "fault", "after", "delay", "when", "optional", "success",
];

/// What a scenario's steps take from the scenario around them.
pub(super) struct Around<'a> {
    /// The scenario's name (when it could be read): the room left for step names.
    pub drill: Option<&'a str>,
    /// The scenario's window: every step runs within it.
    pub duration: Option<Duration>,
    /// The scenario's policy, which every step is judged and limited by.
    pub safety: Option<&'a Policy>,
    /// The file's `armed`: an armed region failover step must name its failback.
    pub armed: bool,
}

/// A step as read, with where its references are written (for the checks across steps).
struct Written {
    step: ScenarioStep,
    name_mark: Mark,
    /// One per `after:` entry.
    after_marks: Vec<Mark>,
    when_mark: Mark,
}

/// A drill of `kind: scenario`: its `steps:`, and no `targets:` or `fault:` of its own.
pub(super) fn read(r: &mut Reader, f: &Fields, around: &Around) -> Option<Settings> {
    for (key, instead) in [
        (
            "targets",
            "each step names its own `targets:` (move them into the step that acts on them)",
        ),
        (
            "fault",
            "each step has its own `kind:` and `fault:` (move it into a step)",
        ),
    ] {
        if let Some(n) = f.get(key) {
            r.error(
                n.mark,
                f.path_of(key),
                format!("a scenario takes no `{key}:` of its own: {instead}"),
            );
        }
    }
    let node = r.required(
        f,
        "steps",
        "a list of steps, each with its own name, kind and fault (see the README's game-day section)",
    )?;
    let path = f.path_of("steps");
    let items = r.list(node, &path, "steps")?;
    if items.is_empty() {
        r.error(
            node.mark,
            path,
            "empty list (a scenario runs at least one step: give each its name, kind and fault)",
        );
        return None;
    }
    // Every step's name as written, read or not: a reference to a step with problems of its own
    // is not also called unknown.
    let names: Vec<&str> = items.iter().filter_map(super::drill_name).collect();
    let mut written = Vec::with_capacity(items.len());
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut ok = true;
    for (i, node) in items.iter().enumerate() {
        let at = item(&path, i);
        if let Some(name) = super::drill_name(node) {
            if let Some(first) = seen.get(name) {
                r.error(
                    super::name_mark(node),
                    child(&at, "name"),
                    format!(
                        "step name {name:?} is already used at line {first} (names must be unique in the scenario)"
                    ),
                );
                ok = false;
            } else {
                seen.insert(name, node.mark.line);
            }
        }
        match read_step(r, node, &at, around) {
            Some(w) => written.push((at, w)),
            None => ok = false,
        }
    }
    ok &= check_references(r, &written, &names);
    ok &= check_cycles(r, &written);
    ok.then(|| {
        Settings::Scenario(Box::new(Scenario {
            steps: written.into_iter().map(|(_, w)| w.step).collect(),
        }))
    })
}

/// One fault a drill makes: the drill's own, or one step's of a scenario.
pub struct Fault<'a> {
    /// Who makes it, for messages: the drill's name, or `drill/step`.
    pub who: String,
    pub targets: &'a [firedrill_safety::Target],
    pub settings: &'a Settings,
}

impl Fault<'_> {
    pub fn kind(&self) -> Kind {
        self.settings.kind()
    }
}

impl super::Drill {
    /// The faults the drill makes: its own, or each of its steps' (what `check` asks access
    /// for and what `plan` notes).
    pub fn faults(&self) -> Vec<Fault<'_>> {
        match &self.fault {
            Settings::Scenario(scenario) => scenario
                .steps
                .iter()
                .map(|step| Fault {
                    who: format!("{}/{}", self.name, step.name),
                    targets: &step.targets,
                    settings: &step.fault,
                })
                .collect(),
            settings => vec![Fault {
                who: self.name.clone(),
                targets: &self.targets,
                settings,
            }],
        }
    }
}

/// Whether a step's fault measures an RTO of its own (see [`MEASURING_KINDS`]).
pub fn measures_rto(fault: &Settings) -> bool {
    fault.takes_pods_down()
}

fn read_step(r: &mut Reader, node: &Node, path: &str, around: &Around) -> Option<Written> {
    let f = r.fields(node, path, STEP_KEYS)?;
    let at = |key: &str| child(path, key);
    let name_mark = f.get("name").map_or(f.mark, |n| n.mark);
    let name = r
        .required(&f, "name", "a DNS-1123 label naming the step")
        .and_then(|n| {
            r.parsed(n, &at("name"), "a DNS-1123 label", |s| {
                step_name(s, around.drill)
            })
        });
    let kind = r
        .required(&f, "kind", &format!("one of {}", Kind::allowed()))
        .and_then(|n| r.parsed(n, &at("kind"), "a kind", step_kind));
    let targets = super::read_targets(r, &f, path, kind);
    let fault = super::fault::read_settings(r, &f, kind);
    let after = match f.get("after") {
        Some(n) => read_after(r, n, &at("after")),
        None => Some(Vec::new()),
    };
    let delay = match f.get("delay") {
        Some(n) => r.parsed(n, &at("delay"), "a duration", |s| {
            duration::parse_within(s, Duration::ZERO, Duration::from_secs(86_400))
        }),
        None => Some(Duration::ZERO),
    };
    let when = f.get("when").map(|n| read_when(r, n, &at("when")));
    let optional = f
        .get("optional")
        .map_or(Some(false), |n| r.boolean(n, &at("optional")));
    let rto = match f.get("success") {
        Some(n) => read_step_success(r, n, &at("success"), fault.as_ref()),
        None => Some(None),
    };
    if let (Some(kind), Some(window), Some(safety)) = (kind, around.duration, around.safety) {
        // A step lasts until the scenario ends (it is reverted then), so it is held to the
        // scenario's window: the longest it can be in place.
        if let Some(cap) = super::limits::partition_over(kind, window, safety, fault.as_ref()) {
            r.error(
                f.mark,
                path,
                format!(
                    "a partition step stays in place until the scenario ends, and the scenario's {} exceeds safety.limits.partition {} (shorten the scenario's `duration` or raise the limit)",
                    duration::format(window),
                    duration::format(cap)
                ),
            );
        }
        super::limits::check_fault_limits(r, &f, path, window, safety, fault.as_ref());
    }
    if around.armed {
        super::fault::check_failback(r, &f, fault.as_ref());
    }
    if let (Some(d), Some(window)) = (delay, around.duration) {
        if d >= window {
            r.error(
                f.get("delay").map_or(f.mark, |n| n.mark),
                at("delay"),
                format!(
                    "a delay of {} would start the step after the scenario's {} window has ended (shorten the delay or lengthen the scenario's `duration`)",
                    duration::format(d),
                    duration::format(window)
                ),
            );
        }
    }
    let late = matches!((delay, around.duration), (Some(d), Some(w)) if d >= w);
    let (after, after_marks): (Vec<After>, Vec<Mark>) = after?.into_iter().unzip();
    let when = when.map_or(Some(None), |w| w.map(Some))?;
    if late {
        return None;
    }
    Some(Written {
        step: ScenarioStep {
            name: name?,
            targets: targets?,
            fault: fault?,
            after,
            delay: delay?,
            when: when.as_ref().map(|(w, _)| w.clone()),
            optional: optional?,
            rto: rto?,
            line: node.mark.line,
        },
        name_mark,
        after_marks,
        when_mark: when.map_or(f.mark, |(_, mark)| mark),
    })
}

/// Why a step's name or kind is refused; each message says what to write instead.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("{0}")]
    Name(firedrill_reader::name::NameError),
    #[error("scenario {drill:?} leaves no room for step names: a step runs as `<run id>-<step>`, at most {MAX_RUN_ID} characters, and this scenario's run ids are up to {run} (shorten the scenario's name to at most {longest} characters)", longest = MAX_RUN_ID - RUN_ID_SUFFIX - 2)]
    NoRoom { drill: String, run: usize },
    #[error("step name {name:?} is {} characters: a step runs as `<run id>-<step>`, at most {MAX_RUN_ID} characters, and scenario {drill:?}'s run ids are up to {run}, so its steps' names are at most {max} characters (shorten it, or the scenario's name)", .name.len())]
    TooLong {
        name: String,
        drill: String,
        run: usize,
        max: usize,
    },
    #[error("{0}")]
    Kind(String),
    #[error("a step cannot be a scenario: scenarios do not nest (write that scenario's steps here, ordered with `after:`)")]
    Nested,
    #[error("a step cannot be a probe: a step has no probes of its own (the scenario's `steady_state:` and `abort_when:` watch every step; remove this step)")]
    Probe,
}

/// A step's name: a DNS-1123 label short enough that `<run id>-<step>` is still a run id.
fn step_name(text: &str, drill: Option<&str>) -> Result<String, StepError> {
    super::dns_label(text, MAX_RUN_ID).map_err(StepError::Name)?;
    let Some(drill) = drill else {
        return Ok(text.to_owned());
    };
    let max = longest_step_name(drill);
    let run = longest_run_id(drill);
    match max {
        0 => Err(StepError::NoRoom {
            drill: drill.to_owned(),
            run,
        }),
        _ if text.len() > max => Err(StepError::TooLong {
            name: text.to_owned(),
            drill: drill.to_owned(),
            run,
            max,
        }),
        _ => Ok(text.to_owned()),
    }
}

/// A step's kind: any fault kind, not a scenario (they do not nest) nor a probe (a step has no
/// probes of its own, so a probe step would observe nothing).
fn step_kind(text: &str) -> Result<Kind, StepError> {
    match text.parse::<Kind>().map_err(StepError::Kind)? {
        Kind::Scenario => Err(StepError::Nested),
        Kind::Probe => Err(StepError::Probe),
        kind => Ok(kind),
    }
}

/// `after:` — each entry a step's name (it has injected) or `{ step: NAME, event: injected |
/// recovered }`, with where it is written.
fn read_after(r: &mut Reader, node: &Node, path: &str) -> Option<Vec<(After, Mark)>> {
    let items = r.list(node, path, "steps to wait for")?;
    let mut out: Vec<(After, Mark)> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, n) in items.iter().enumerate() {
        let at = item(path, i);
        let read = match &n.value {
            Value::Scalar { .. } => r
                .text(n, &at, "a step's name")
                .map(|s| After::Injected(s.to_owned())),
            _ => read_after_entry(r, n, &at),
        };
        match read {
            Some(after) if out.iter().any(|(a, _)| a.step() == after.step()) => {
                r.error(
                    n.mark,
                    at,
                    format!(
                        "step {:?} is named twice in `after:` (keep one)",
                        after.step()
                    ),
                );
                ok = false;
            }
            Some(after) => out.push((after, n.mark)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_after_entry(r: &mut Reader, node: &Node, path: &str) -> Option<After> {
    let f = r.fields(node, path, &["step", "event"])?;
    let step = r
        .required(&f, "step", "the name of the step to wait for")
        .and_then(|n| r.text(n, &f.path_of("step"), "a step's name"))
        .map(str::to_owned);
    let recovered = match f.get("event") {
        Some(n) => r.parsed(
            n,
            &f.path_of("event"),
            "injected or recovered",
            |s| match s {
                "injected" => Ok(false),
                "recovered" => Ok(true),
                _ => Err(format!(
                    "{s:?} is not an event (allowed: injected, recovered)"
                )),
            },
        ),
        None => Some(false),
    };
    let step = step?;
    Some(if recovered? {
        After::Recovered(step)
    } else {
        After::Injected(step)
    })
}

/// `when: { step: NAME, rto_under: 1m }` (or `rto_at_least:`), with where it is written.
fn read_when(r: &mut Reader, node: &Node, path: &str) -> Option<(When, Mark)> {
    let f = r.fields(node, path, &["step", "rto_under", "rto_at_least"])?;
    let step = r
        .required(&f, "step", "the name of the step whose RTO decides")
        .and_then(|n| r.text(n, &f.path_of("step"), "a step's name"))
        .map(str::to_owned);
    let bound = |r: &mut Reader, key: &str| {
        f.get(key).map(|n| {
            r.parsed(n, &f.path_of(key), "a duration", |s| {
                duration::parse_within(s, Duration::from_secs(1), Duration::from_secs(86_400))
            })
        })
    };
    let figure = match (bound(r, "rto_under"), bound(r, "rto_at_least")) {
        (Some(under), None) => under.map(Figure::RtoUnder),
        (None, Some(least)) => least.map(Figure::RtoAtLeast),
        (Some(_), Some(_)) => {
            r.error(
                f.get("rto_at_least").map_or(f.mark, |n| n.mark),
                f.path_of("rto_at_least"),
                "give either `rto_under` or `rto_at_least`, not both",
            );
            None
        }
        (None, None) => {
            r.error(
                f.mark,
                f.path_of("rto_under"),
                "missing (give `rto_under: 1m` to run the step only after a fast recovery, or `rto_at_least: 2m` only after a slow one)",
            );
            None
        }
    };
    Some((
        When {
            step: step?,
            figure: figure?,
        },
        node.mark,
    ))
}

/// A step's own `success: { rto }`: only a step that measures an RTO can have one.
fn read_step_success(
    r: &mut Reader,
    node: &Node,
    path: &str,
    fault: Option<&Settings>,
) -> Option<Option<Duration>> {
    let f = r.fields(node, path, &["rto"])?;
    let Some(n) = f.get("rto") else {
        return Some(None);
    };
    let rto = r.parsed(n, &f.path_of("rto"), "a duration", |s| {
        duration::parse_within(s, Duration::from_secs(1), Duration::from_secs(86_400))
    })?;
    if let Some(fault) = fault.filter(|s| !measures_rto(s)) {
        r.error(
            n.mark,
            f.path_of("rto"),
            format!(
                "a {} step takes no pod down, so it measures no RTO of its own (a step has no probes; only {MEASURING_KINDS} steps do): remove `rto`, or judge the whole in the scenario's `success: {{ rto }}` with `steady_state:` probes",
                fault.kind()
            ),
        );
        return None;
    }
    Some(Some(rto))
}

/// Every `after:` and `when:` names a step of the scenario, and waits on a figure it measures.
fn check_references(r: &mut Reader, written: &[(String, Written)], names: &[&str]) -> bool {
    let by_name: HashMap<&str, &ScenarioStep> = written
        .iter()
        .map(|(_, w)| (w.step.name.as_str(), &w.step))
        .collect();
    let mut ok = true;
    for (path, w) in written {
        for (i, (after, mark)) in w.step.after.iter().zip(&w.after_marks).enumerate() {
            let at = item(&child(path, "after"), i);
            match by_name.get(after.step()) {
                // Written but not read: its own problems are said.
                None if names.contains(&after.step()) => {}
                None => {
                    r.error(*mark, at, unknown_step(after.step(), names));
                    ok = false;
                }
                Some(waited)
                    if matches!(after, After::Recovered(_)) && !measures_rto(&waited.fault) =>
                {
                    r.error(*mark, at, format!(
                        "step {:?} ({}) never reports `recovered`: a step recovers when its pods' workloads are back, which only {MEASURING_KINDS} steps measure (wait for `event: injected`, with a `delay:`)",
                        waited.name,
                        waited.fault.kind()
                    ));
                    ok = false;
                }
                Some(_) => {}
            }
        }
        let Some(when) = &w.step.when else { continue };
        let at = child(path, "when");
        let problem = match by_name.get(when.step.as_str()) {
            None if names.contains(&when.step.as_str()) => None,
            None => Some(unknown_step(&when.step, names)),
            Some(_) if when.step == w.step.name => Some("a step cannot be conditioned on its own RTO: it is measured after the step has started (name an earlier step)".to_owned()),
            Some(judged) if !measures_rto(&judged.fault) => Some(format!(
                "step {:?} ({}) measures no RTO: a step's RTO is its pods' workloads back as desired, which only {MEASURING_KINDS} steps measure (condition on one of those, or remove `when`)",
                judged.name,
                judged.fault.kind()
            )),
            Some(_) if !w.step.after.contains(&After::Recovered(when.step.clone())) => Some(format!(
                "step {:?}'s RTO is known only once it has recovered: add `{{ step: {}, event: recovered }}` to this step's `after:`",
                when.step, when.step
            )),
            Some(_) => None,
        };
        if let Some(message) = problem {
            r.error(w.when_mark, at, message);
            ok = false;
        }
    }
    ok
}

/// "no step named X", with the closest name when one is close.
fn unknown_step(name: &str, names: &[&str]) -> String {
    let closest = names
        .iter()
        .map(|n| (strsim::levenshtein(name, n), *n))
        .min_by_key(|(d, _)| *d)
        .filter(|(d, n)| *d <= 3 && *d * 2 < n.len().max(name.len()))
        .map(|(_, n)| format!("did you mean {n:?}? "))
        .unwrap_or_default();
    format!(
        "no step named {name:?} in this scenario ({closest}its steps: {})",
        names.join(", ")
    )
}

/// No step waits, through `after:`, on itself: each cycle is named once, at the `after:` entry of
/// its step written first.
fn check_cycles(r: &mut Reader, written: &[(String, Written)]) -> bool {
    let index: HashMap<&str, usize> = written
        .iter()
        .enumerate()
        .map(|(i, (_, w))| (w.step.name.as_str(), i))
        .collect();
    let waits: Vec<Vec<usize>> = written
        .iter()
        .map(|(_, w)| {
            w.step
                .after
                .iter()
                .filter_map(|a| index.get(a.step()).copied())
                .collect()
        })
        .collect();
    let mut named: BTreeSet<Vec<usize>> = BTreeSet::new();
    for start in 0..written.len() {
        if let Some(cycle) = cycle_from(start, &waits) {
            let mut members = cycle.clone();
            members.sort_unstable();
            if !named.insert(members) {
                continue;
            }
            // Said at the step written first, naming the cycle from there.
            let first = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
            let ring: Vec<usize> = cycle[first..]
                .iter()
                .chain(&cycle[..first])
                .copied()
                .collect();
            let (path, w) = &written[ring[0]];
            let next = &written[ring.get(1).copied().unwrap_or(ring[0])].1.step.name;
            let entry = w
                .step
                .after
                .iter()
                .position(|a| a.step() == next)
                .unwrap_or(0);
            let shown: Vec<&str> = ring
                .iter()
                .chain(ring.first())
                .map(|&i| written[i].1.step.name.as_str())
                .collect();
            r.error(
                w.after_marks.get(entry).copied().unwrap_or(w.name_mark),
                item(&child(path, "after"), entry),
                format!(
                    "the steps wait for each other in a cycle: {} (each waits for the next), so none of them would ever start (remove one of these `after:` entries)",
                    shown.join(" → ")
                ),
            );
        }
    }
    named.is_empty()
}

/// The first cycle reached from `start` through `waits`, as the steps in it in waiting order.
fn cycle_from(start: usize, waits: &[Vec<usize>]) -> Option<Vec<usize>> {
    // Depth first, with the path held: a step met again on the path closes a cycle.
    let mut path: Vec<(usize, usize)> = vec![(start, 0)];
    let mut done = vec![false; waits.len()];
    while let Some(&mut (node, ref mut next)) = path.last_mut() {
        let Some(&to) = waits[node].get(*next) else {
            done[node] = true;
            path.pop();
            continue;
        };
        *next += 1;
        if let Some(at) = path.iter().position(|(n, _)| *n == to) {
            return Some(path[at..].iter().map(|(n, _)| *n).collect());
        }
        if !done[to] {
            path.push((to, 0));
        }
    }
    None
}

/// The order a plan shows a scenario's steps in: each after the steps it waits for (after one
/// that waits for a step's injection, when it waits for that step's recovery), else as the file
/// writes them (steps whose conditions hold together start together).
pub fn start_order(scenario: &Scenario) -> Vec<&ScenarioStep> {
    let steps = &scenario.steps;
    let index = |name: &str| steps.iter().position(|s| s.name == name);
    // How far down the chain of waits each step is: an injection is one link, a recovery two.
    // A scenario the reader accepted has no cycle, so this settles within as many rounds as
    // it has steps.
    let mut depth = vec![0usize; steps.len()];
    for _ in 0..steps.len() {
        for (i, step) in steps.iter().enumerate() {
            for after in &step.after {
                let Some(j) = index(after.step()) else {
                    continue;
                };
                let link = match after {
                    After::Injected(_) => 1,
                    After::Recovered(_) => 2,
                };
                depth[i] = depth[i].max(depth[j] + link);
            }
        }
    }
    let mut order: Vec<usize> = (0..steps.len()).collect();
    order.sort_by_key(|&i| (depth[i], i));
    order.into_iter().map(|i| &steps[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, std::path::Path::new("s.yaml")).map_err(|d| d.to_string())
    }

    fn scenario(name: &str, steps: &str) -> String {
        format!(
            "drills:\n  - name: {name}\n    kind: scenario\n    schedule: \"0 9 1 12 *\"\n    duration: 20m\n    steps:\n{steps}"
        )
    }

    const GAME_DAY: &str = r#"      - name: db-down
        kind: pod-kill
        targets: [ { namespace: shop, selector: app=postgres, count: 1 } ]
        success: { rto: 5m }
      - name: failover
        kind: region-failover
        fault: { from: us-east-1, to: eu-west-1, isolate: [ { namespace: shop, selector: app=api } ] }
        after: [ { step: db-down, event: recovered } ]
        when: { step: db-down, rto_at_least: 2m }
      - name: cache-cut
        kind: network-partition
        targets: [ { namespace: shop, selector: app=redis, count: 1 } ]
        after: [ db-down ]
        delay: 30s
      - name: api-stress
        kind: resource-stress
        targets: [ { namespace: shop, selector: app=api, count: 1 } ]
        fault: { resource: cpu, load: 80% }
        after: [ { step: db-down, event: injected } ]
        optional: true
"#;

    fn steps(config: &Config) -> &Scenario {
        match &config.drills[0].fault {
            Settings::Scenario(s) => s,
            other => panic!("not a scenario: {other:?}"),
        }
    }

    #[test]
    fn a_game_day_reads_into_typed_steps() {
        let c = parse(&scenario("annual-dr", GAME_DAY)).unwrap();
        let d = &c.drills[0];
        assert_eq!(d.kind(), Kind::Scenario);
        assert!(d.targets.is_empty());
        let s = steps(&c);
        let names: Vec<&str> = s.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db-down", "failover", "cache-cut", "api-stress"]);
        let [db, failover, cut, stress] = &s.steps[..] else {
            panic!()
        };
        assert_eq!(db.fault.kind(), Kind::PodKill);
        assert_eq!(db.rto, Some(Duration::from_secs(300)));
        assert_eq!(db.targets.len(), 1);
        assert_eq!(db.line, 7);
        assert_eq!(failover.after, [After::Recovered("db-down".into())]);
        assert_eq!(
            failover.when,
            Some(When {
                step: "db-down".into(),
                figure: Figure::RtoAtLeast(Duration::from_secs(120))
            })
        );
        // The short form is `injected`.
        assert_eq!(cut.after, [After::Injected("db-down".into())]);
        assert_eq!(cut.delay, Duration::from_secs(30));
        assert!(!cut.optional);
        assert_eq!(stress.after, cut.after);
        assert!(stress.optional);
        // Waiting for what it waits for: the failover after the two that start together.
        let order: Vec<&str> = start_order(s).iter().map(|s| s.name.as_str()).collect();
        assert_eq!(order, ["db-down", "cache-cut", "api-stress", "failover"]);
    }

    #[test]
    fn a_step_name_fits_a_run_id_of_the_scenario() {
        // "annual-dr": run ids up to 9 + 15 = 24 characters, so steps up to 63 - 25 = 38.
        assert_eq!(longest_step_name("annual-dr"), 38);
        let step = |name: &str| {
            format!("      - {{ name: {name}, kind: pod-kill, targets: [ {{ namespace: shop, selector: app=api, count: 1 }} ] }}\n")
        };
        assert!(parse(&scenario("annual-dr", &step(&"s".repeat(38)))).is_ok());
        let err = parse(&scenario("annual-dr", &step(&"s".repeat(39)))).unwrap_err();
        assert!(
            err.contains("its steps' names are at most 38 characters"),
            "{err}"
        );
        // A scenario whose own run ids take all 63 leaves no room at all, and says how long
        // its name may be.
        let long = "x".repeat(48);
        let err = parse(&scenario(&long, &step("s"))).unwrap_err();
        assert!(err.contains("leaves no room for step names"), "{err}");
        assert!(err.contains("at most 46 characters"), "{err}");
        assert!(parse(&scenario(&"x".repeat(46), &step("s"))).is_ok());
    }

    #[test]
    fn a_cycle_is_named_once_from_its_first_step() {
        let text = scenario(
            "loop",
            "      - { name: a, kind: pod-kill, targets: [ { namespace: s, selector: app=a, count: 1 } ], after: [c] }\n      - { name: b, kind: pod-kill, targets: [ { namespace: s, selector: app=a, count: 1 } ], after: [a] }\n      - { name: c, kind: pod-kill, targets: [ { namespace: s, selector: app=a, count: 1 } ], after: [b] }\n      - { name: d, kind: pod-kill, targets: [ { namespace: s, selector: app=a, count: 1 } ], after: [c] }\n",
        );
        let err = parse(&text).unwrap_err();
        assert_eq!(err.matches("cycle").count(), 1, "{err}");
        assert!(err.contains("steps[0].after[0]"), "{err}");
        assert!(err.contains("a → c → b → a"), "{err}");
    }

    #[test]
    fn a_reference_to_a_step_with_its_own_problems_is_not_also_unknown() {
        let text = scenario(
            "refs",
            "      - { name: a, kind: pod-kil }\n      - { name: b, kind: pod-kill, targets: [ { namespace: s, selector: app=a, count: 1 } ], after: [a] }\n",
        );
        let err = parse(&text).unwrap_err();
        assert!(err.contains("unknown kind \"pod-kil\""), "{err}");
        assert!(!err.contains("no step named"), "{err}");
    }

    #[test]
    fn when_needs_its_step_recovered_first() {
        let text = scenario(
            "when",
            "      - { name: a, kind: pod-kill, targets: [ { namespace: s, selector: app=a, count: 1 } ] }\n      - { name: b, kind: pod-kill, targets: [ { namespace: s, selector: app=a, count: 1 } ], after: [a], when: { step: a, rto_under: 1m } }\n",
        );
        let err = parse(&text).unwrap_err();
        assert!(
            err.contains("add `{ step: a, event: recovered }` to this step's `after:`"),
            "{err}"
        );
        let fixed = text.replace("after: [a]", "after: [ { step: a, event: recovered } ]");
        parse(&fixed).unwrap();
    }

    #[test]
    fn a_scenario_rto_needs_a_measuring_step_or_probes() {
        let cut = "      - { name: cut, kind: network-partition, targets: [ { namespace: s, selector: app=a, count: 1 } ] }\n";
        let text =
            scenario("rto", cut).replace("    steps:", "    success: { rto: 5m }\n    steps:");
        let err = parse(&text).unwrap_err();
        assert!(
            err.contains("no step of this scenario takes a pod down"),
            "{err}"
        );
        let probed = text.replace(
            "    steps:",
            "    steady_state: [ { http: http://api.shop.svc/ } ]\n    steps:",
        );
        parse(&probed).unwrap();
        let killing = text.replace("kind: network-partition", "kind: pod-kill");
        parse(&killing).unwrap();
    }
}
