//! A drill's `preflight`, `abort_when`, `steady_state` and `success` sections.

use std::time::Duration;

use firedrill_experiments::{Kind, Settings};

use crate::drill::gate::{Check, Condition, StatusRange, SteadyProbe, Success};
use firedrill_reader::duration;
use firedrill_reader::read::{child, read_items, Fields, Reader};
use firedrill_reader::yaml::{Node, Value};

/// What the rest of the file says that gates depend on.
pub struct Endpoints {
    pub prometheus: bool,
    pub alertmanager: bool,
}

const KINDS: [&str; 3] = ["http", "promql", "alerts"];
const PREFLIGHT_KEYS: &[&str] = &[
    "http", "promql", "alerts", "expect", "timeout", "min", "max",
];
const ABORT_KEYS: &[&str] = &[
    "http", "promql", "alerts", "expect", "timeout", "above", "below", "for", "failures",
    "interval",
];
const STEADY_KEYS: &[&str] = &["http", "every", "expect", "timeout"];

pub fn read_preflight(
    r: &mut Reader,
    node: &Node,
    path: &str,
    endpoints: &Endpoints,
) -> Option<Vec<Check>> {
    read_items(r, node, path, "preflight checks", |r, node, path| {
        let f = r.fields(node, path, PREFLIGHT_KEYS)?;
        let (min, max) = (number(r, &f, "min"), number(r, &f, "max"));
        // The check is read even when a bound is not, so that its own problems show too.
        let check = read_check(
            r,
            &f,
            endpoints,
            min.flatten(),
            max.flatten(),
            ("min", "max"),
        );
        min.and(max).and(check)
    })
}

pub fn read_abort_when(
    r: &mut Reader,
    node: &Node,
    path: &str,
    endpoints: &Endpoints,
) -> Option<Vec<Condition>> {
    read_items(r, node, path, "abort conditions", |r, node, path| {
        let f = r.fields(node, path, ABORT_KEYS)?;
        // A breach is a value above `above` or below `below`: the check's max and min.
        let (below, above) = (number(r, &f, "below"), number(r, &f, "above"));
        let for_ = optional_duration(
            r,
            &f,
            "for",
            Duration::ZERO,
            Duration::ZERO,
            Duration::from_secs(3600),
        );
        let failures = match f.get("failures") {
            Some(n) => r
                .integer(n, &f.path_of("failures"), 1, 1000)
                .map(|n| n as u32),
            None => Some(1),
        };
        let interval = optional_duration(
            r,
            &f,
            "interval",
            Duration::from_secs(10),
            Duration::from_millis(100),
            Duration::from_secs(3600),
        );
        if let (Some(n), false) = (f.get("failures"), f.has("http")) {
            r.error(
                n.mark,
                f.path_of("failures"),
                "`failures` applies to http conditions (use `for` with promql and alerts)",
            );
        }
        let check = read_check(
            r,
            &f,
            endpoints,
            below.flatten(),
            above.flatten(),
            ("below", "above"),
        );
        below.and(above)?;
        Some(Condition {
            check: check?,
            for_: for_?,
            failures: failures?,
            interval: interval?,
        })
    })
}

pub fn read_steady_state(r: &mut Reader, node: &Node, path: &str) -> Option<Vec<SteadyProbe>> {
    read_items(r, node, path, "steady-state probes", |r, node, path| {
        let f = r.fields(node, path, STEADY_KEYS)?;
        let url = r.required(&f, "http", "the URL to probe").and_then(|n| {
            r.parsed(
                n,
                &f.path_of("http"),
                "an http(s) URL",
                super::parse_http_url,
            )
        });
        let every = optional_duration(
            r,
            &f,
            "every",
            Duration::from_secs(1),
            Duration::from_millis(10),
            Duration::from_secs(3600),
        );
        let expect = read_expect(r, &f);
        let timeout = optional_duration(
            r,
            &f,
            "timeout",
            Duration::from_secs(2),
            Duration::from_millis(10),
            Duration::from_secs(60),
        );
        Some(SteadyProbe {
            url: url?,
            every: every?,
            expect: expect?,
            timeout: timeout?,
        })
    })
}

/// Success criteria the drill cannot measure: figures measured on steady-state probes without
/// probes, an RTO with nothing to recover, an RPO without data markers.
pub fn check_success(
    r: &mut Reader,
    f: &Fields,
    success: Option<&Success>,
    kind: Option<Kind>,
    probes: Option<&[SteadyProbe]>,
    fault: Option<&Settings>,
) {
    if let (Some(s), Some(probes)) = (success, probes) {
        let measured =
            s.availability.is_some() || s.p50.is_some() || s.p95.is_some() || s.p99.is_some();
        if measured && probes.is_empty() {
            r.error(
                f.get("success").map_or(f.mark, |n| n.mark),
                f.path_of("success"),
                "success criteria are judged on steady-state measurements; add `steady_state:` probes",
            );
        }
    }
    if let (Some(s), Some(kind), Some(probes)) = (success, kind, probes) {
        // Recovery is workloads back as desired and probes passing: a kind that takes no pod
        // down needs probes to have anything to recover. (Settings that could not be read: by
        // the kind, a zone outage counted as taking pods down.)
        // A scenario recovers when every step has and every probe passes: one of its steps must
        // take pods down (steps that could not be read: assumed to).
        let takes_pods_down = match fault {
            Some(Settings::Scenario(scenario)) => scenario
                .steps
                .iter()
                .any(|step| super::scenario::measures_rto(&step.fault)),
            Some(fault) => fault.takes_pods_down(),
            None => matches!(
                kind,
                Kind::PodKill
                    | Kind::ContainerKill
                    | Kind::NodeDrain
                    | Kind::ZoneOutage
                    | Kind::Scenario
            ),
        };
        if s.rto.is_some() && (kind == Kind::Probe || !takes_pods_down && probes.is_empty()) {
            r.error(
                f.get("success").map_or(f.mark, |n| n.mark),
                child(&f.path_of("success"), "rto"),
                if kind == Kind::Scenario {
                    format!("no step of this scenario takes a pod down (only {} steps measure their recovery), so the scenario's recovery is its steady-state probes passing again: add `steady_state:` probes (or remove `rto`)", super::scenario::MEASURING_KINDS)
                } else if kind == Kind::Probe {
                    "a probe injects nothing, so there is no recovery to time (remove `rto`)".to_owned()
                } else {
                    format!("{} takes no pod down, so its recovery is the steady-state probes passing again: add `steady_state:` probes (or remove `rto`)", match fault {
                        Some(Settings::ZoneOutage(z)) => format!("{kind} in mode {}", z.mode.name()),
                        _ => kind.to_string(),
                    })
                },
            );
        }
    }
    if let (Some(s), Some(kind), Some(fault)) = (success, kind, fault) {
        let markers = matches!(fault, Settings::RegionFailover(rf) if rf.data.is_some());
        if s.rpo.is_some() && !markers {
            r.error(
                f.get("success").map_or(f.mark, |n| n.mark),
                child(&f.path_of("success"), "rpo"),
                if kind == Kind::RegionFailover {
                    "the RPO is measured with data markers: add `fault.data` (and `fault.promote`)"
                        .to_owned()
                } else if kind == Kind::Scenario {
                    "a scenario measures no RPO of its own (remove `rpo`; a region-failover drill of its own measures one)".to_owned()
                } else {
                    format!(
                        "{kind} promotes no database, so there is no RPO to measure (remove `rpo`)"
                    )
                },
            );
        }
    }
}

/// The check named by exactly one of `http`, `promql` or `alerts`. `bounds` are the keys that
/// bound a PromQL value in this section (`min`/`max`, or `below`/`above`).
fn read_check(
    r: &mut Reader,
    f: &Fields,
    endpoints: &Endpoints,
    low: Option<f64>,
    high: Option<f64>,
    bounds: (&str, &str),
) -> Option<Check> {
    let kind = check_kind(r, f)?;
    let misplaced = |r: &mut Reader, key: &str, belongs: &str| {
        if let Some(n) = f.get(key) {
            r.error(
                n.mark,
                f.path_of(key),
                format!("`{key}` applies to {belongs} checks, not {kind}"),
            );
        }
    };
    let node = f.get(kind)?;
    let path = f.path_of(kind);
    let default_timeout = if kind == "http" { 2 } else { 5 };
    let timeout = optional_duration(
        r,
        f,
        "timeout",
        Duration::from_secs(default_timeout),
        Duration::from_millis(10),
        Duration::from_secs(60),
    );
    match kind {
        "http" => {
            misplaced(r, bounds.0, "promql");
            misplaced(r, bounds.1, "promql");
            let url = r.parsed(node, &path, "an http(s) URL", super::parse_http_url);
            let expect = read_expect(r, f);
            Some(Check::Http {
                url: url?,
                expect: expect?,
                timeout: timeout?,
            })
        }
        "promql" => {
            misplaced(r, "expect", "http");
            let query = r
                .text(node, &path, "a PromQL expression")
                .map(str::to_owned);
            if low.is_none() && high.is_none() && !f.has(bounds.0) && !f.has(bounds.1) {
                r.error(
                    f.mark,
                    &path,
                    format!("a promql check needs `{}` and/or `{}`", bounds.0, bounds.1),
                );
                return None;
            }
            let mut ok = bounds_in_order(r, f, low, high, bounds);
            if !endpoints.prometheus {
                r.error(
                    node.mark,
                    &path,
                    "promql checks need `prometheus:` (the Prometheus URL) at the top of the file",
                );
                ok = false;
            }
            if !ok {
                return None;
            }
            Some(Check::Promql {
                query: query?,
                min: low,
                max: high,
                timeout: timeout?,
            })
        }
        _ => {
            misplaced(r, "expect", "http");
            misplaced(r, bounds.0, "promql");
            misplaced(r, bounds.1, "promql");
            let labels = read_labels(r, node, &path);
            if !endpoints.alertmanager {
                r.error(node.mark, &path, "alerts checks need `alertmanager:` (the Alertmanager URL) at the top of the file");
                return None;
            }
            Some(Check::Alerts {
                labels: labels?,
                timeout: timeout?,
            })
        }
    }
}

/// Which of `http`, `promql` or `alerts` the check is; reports none or more than one.
fn check_kind(r: &mut Reader, f: &Fields) -> Option<&'static str> {
    let given: Vec<&'static str> = KINDS.iter().copied().filter(|k| f.has(k)).collect();
    match given.as_slice() {
        [one] => Some(*one),
        [] => {
            r.error(
                f.mark,
                &f.path,
                "a check needs one of `http`, `promql` or `alerts`",
            );
            None
        }
        [_, second, ..] => {
            let mark = f.get(second).map_or(f.mark, |n| n.mark);
            r.error(
                mark,
                f.path_of(second),
                format!(
                    "a check has one of `http`, `promql` or `alerts`, not both `{}` and `{second}`",
                    given[0]
                ),
            );
            None
        }
    }
}

/// Whether a PromQL check's bounds are in order; reports a pair that is not. Preflight passes
/// within [min, max]: never, when min > max. An abort condition breaches below `below` or above
/// `above`: always, when below > above.
fn bounds_in_order(
    r: &mut Reader,
    f: &Fields,
    low: Option<f64>,
    high: Option<f64>,
    bounds: (&str, &str),
) -> bool {
    let (Some(lo), Some(hi)) = (low, high) else {
        return true;
    };
    if lo <= hi {
        return true;
    }
    let why = if bounds.0 == "min" {
        format!("min {lo} is above max {hi}, so the check can never pass (it passes when min <= value <= max; swap them)")
    } else {
        format!("below {lo} is above `above` {hi}, so every value breaches and the drill would always abort (a value breaches when it is below `below` or above `above`; swap them)")
    };
    r.error(
        f.get(bounds.0).map_or(f.mark, |n| n.mark),
        f.path_of(bounds.0),
        why,
    );
    false
}

fn read_labels(r: &mut Reader, node: &Node, path: &str) -> Option<Vec<(String, String)>> {
    let Value::Mapping(entries) = &node.value else {
        r.error(
            node.mark,
            path,
            format!(
                "expected label matchers such as {{ severity: critical }}, found {}",
                node.describe()
            ),
        );
        return None;
    };
    if entries.is_empty() {
        r.error(
            node.mark,
            path,
            "name at least one label, e.g. { severity: critical }",
        );
        return None;
    }
    let mut labels = Vec::new();
    let mut ok = true;
    for (k, v) in entries {
        let key = r.text(k, path, "a label name").map(str::to_owned);
        let value = key
            .as_deref()
            .and_then(|key| r.text(v, &child(path, key), "a label value"))
            .map(str::to_owned);
        match (key, value) {
            (Some(k), Some(v)) => labels.push((k, v)),
            _ => ok = false,
        }
    }
    ok.then_some(labels)
}

fn read_expect(r: &mut Reader, f: &Fields) -> Option<StatusRange> {
    match f.get("expect") {
        Some(n) => r.parsed(
            n,
            &f.path_of("expect"),
            "an HTTP status or range",
            StatusRange::parse,
        ),
        None => Some(StatusRange::SUCCESS),
    }
}

/// An optional number; `Some(None)` when absent, `None` when present but invalid.
fn number(r: &mut Reader, f: &Fields, key: &str) -> Option<Option<f64>> {
    match f.get(key) {
        None => Some(None),
        Some(n) => r
            .parsed(n, &f.path_of(key), "a number", |s| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| format!("{s:?} is not a number (write e.g. 2 or 0.25)"))
            })
            .map(Some),
    }
}

fn optional_duration(
    r: &mut Reader,
    f: &Fields,
    key: &str,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Option<Duration> {
    match f.get(key) {
        None => Some(default),
        Some(n) => r.parsed(n, &f.path_of(key), "a duration", |s| {
            duration::parse_within(s, min, max)
        }),
    }
}

/// `success:`: availability as a percentage, latency percentiles as durations.
pub fn read_success(r: &mut Reader, node: &Node, path: &str) -> Option<Success> {
    let f = r.fields(
        node,
        path,
        &["availability", "p50", "p95", "p99", "rto", "rpo"],
    )?;
    let availability = match f.get("availability") {
        Some(n) => r
            .parsed(n, &f.path_of("availability"), "a percentage", |s| {
                firedrill_safety::Percent::parse(s, false).map_err(|e| e.to_string())
            })
            .map(Some),
        None => Some(None),
    };
    let mut latency = |key: &str| match f.get(key) {
        Some(n) => r
            .parsed(n, &f.path_of(key), "a duration", |s| {
                duration::parse_within(s, Duration::from_millis(1), Duration::from_secs(3600))
            })
            .map(Some),
        None => Some(None),
    };
    let (p50, p95, p99) = (latency("p50"), latency("p95"), latency("p99"));
    let mut objective = |key: &str, min: Duration| match f.get(key) {
        Some(n) => r
            .parsed(n, &f.path_of(key), "a duration", |s| {
                duration::parse_within(s, min, Duration::from_secs(86_400))
            })
            .map(Some),
        None => Some(None),
    };
    let rto = objective("rto", Duration::from_secs(1));
    // An RPO of 0s is a real target: no acknowledged write lost.
    let rpo = objective("rpo", Duration::ZERO);
    Some(Success {
        availability: availability?,
        availability_by_default: false,
        p50: p50?,
        p95: p95?,
        p99: p99?,
        rto: rto?,
        rpo: rpo?,
    })
}
