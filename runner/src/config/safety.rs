//! The `safety:` section, globally and per drill.
//!
//! A drill's `safety:` starts from the file's policy. Settings replace the file's value, key by
//! key (limits too); the lists `protected`, `never_target` and `min_healthy` add to the file's,
//! because a drill may narrow what it touches but never un-protect what the file protects.

use std::time::Duration;

use firedrill_safety::{
    KubeSystemNeighbours, Limits, MinHealthy, NamespacedGlob, Percent, Policy, Quantity,
};

use super::{parse_selector, required_namespace};
use firedrill_reader::duration;
use firedrill_reader::read::{child, read_items, Reader};
use firedrill_reader::yaml::Node;

const POLICY_KEYS: &[&str] = &[
    "protected",
    "never_target",
    "opt_in",
    "min_healthy",
    "max_blast_radius",
    "max_targets",
    "min_pod_age",
    "cooldown",
    "limits",
    "neighbours",
];

const LIMIT_KEYS: &[&str] = &[
    "partition",
    "cpu",
    "memory",
    "error_rate",
    "min_healthy_regions",
];

pub fn read_policy(r: &mut Reader, node: &Node, path: &str, base: &Policy) -> Option<Policy> {
    let (policy, ok) = read_policy_partly(r, node, path, base);
    ok.then_some(policy)
}

/// The policy with every setting that could be read applied, and whether all could. The file's
/// drills are read against it even when some of it is wrong, so that their problems are
/// reported in the same pass (a drill checked against a limit that was read is checked right).
pub fn read_policy_partly(
    r: &mut Reader,
    node: &Node,
    path: &str,
    base: &Policy,
) -> (Policy, bool) {
    let mut policy = base.clone();
    let Some(f) = r.fields(node, path, POLICY_KEYS) else {
        return (policy, false);
    };
    let mut ok = true;
    let at = |key: &str| child(path, key);

    if let Some(n) = f.get("protected") {
        match read_list(
            r,
            n,
            &at("protected"),
            "namespace/name globs",
            NamespacedGlob::parse,
        ) {
            Some(globs) => policy.protected.extend(globs),
            None => ok = false,
        }
    }
    if let Some(n) = f.get("never_target") {
        match read_list(r, n, &at("never_target"), "label selectors", parse_selector) {
            Some(selectors) => policy.never_target.extend(selectors),
            None => ok = false,
        }
    }
    if let Some(n) = f.get("opt_in") {
        match r.boolean(n, &at("opt_in")) {
            Some(v) => policy.opt_in = v,
            None => ok = false,
        }
    }
    if let Some(n) = f.get("min_healthy") {
        match read_min_healthy(r, n, &at("min_healthy")) {
            Some(rules) => policy.min_healthy.extend(rules),
            None => ok = false,
        }
    }
    if let Some(n) = f.get("max_blast_radius") {
        match r.parsed(n, &at("max_blast_radius"), "a percentage", percent) {
            Some(p) if p.hundredths() == 0 => {
                r.error(
                    n.mark,
                    at("max_blast_radius"),
                    "0% lets no drill touch anything (allowed: more than 0% up to 100%)",
                );
                ok = false;
            }
            Some(p) => policy.max_blast_radius = p,
            None => ok = false,
        }
    }
    if let Some(n) = f.get("max_targets") {
        match r.integer(n, &at("max_targets"), 1, 10_000) {
            Some(v) => policy.max_targets = v as u32,
            None => ok = false,
        }
    }
    for (key, slot) in [
        ("min_pod_age", &mut policy.min_pod_age),
        ("cooldown", &mut policy.cooldown),
    ] {
        if let Some(n) = f.get(key) {
            match r.parsed(n, &at(key), "a duration", |s| {
                duration::parse_within(s, Duration::ZERO, Duration::from_secs(365 * 86_400))
            }) {
                Some(d) => *slot = d,
                None => ok = false,
            }
        }
    }
    if let Some(n) = f.get("limits") {
        let (limits, read) = read_limits(r, n, &at("limits"), &policy.limits);
        policy.limits = limits;
        ok &= read;
    }
    if let Some(n) = f.get("neighbours") {
        match read_neighbours(r, n, &at("neighbours")) {
            Some(Some(kube_system)) => policy.kube_system_neighbours = kube_system,
            Some(None) => {}
            None => ok = false,
        }
    }
    (policy, ok)
}

/// `neighbours:` — how a node fault judges the pods beside its targets: `kube_system: protect`
/// (never hurt, the default) or `budget` (evicted through their budgets, as `kubectl drain`
/// does).
fn read_neighbours(
    r: &mut Reader,
    node: &Node,
    path: &str,
) -> Option<Option<KubeSystemNeighbours>> {
    let f = r.fields(node, path, &["kube_system"])?;
    let Some(n) = f.get("kube_system") else {
        return Some(None);
    };
    r.parsed(
        n,
        &f.path_of("kube_system"),
        "protect or budget",
        |s| match s {
            "protect" => Ok(KubeSystemNeighbours::Protect),
            "budget" => Ok(KubeSystemNeighbours::Budget),
            _ => Err(format!(
                "{s:?} is not a way to judge kube-system neighbours (allowed: protect, budget)"
            )),
        },
    )
    .map(Some)
}

fn percent(text: &str) -> Result<Percent, firedrill_safety::QuantityError> {
    Percent::parse(text, false)
}

fn read_list<T, E: std::fmt::Display>(
    r: &mut Reader,
    node: &Node,
    path: &str,
    what: &str,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Option<Vec<T>> {
    read_items(r, node, path, what, |r, n, at| {
        r.parsed(n, at, what, &parse)
    })
}

fn read_min_healthy(r: &mut Reader, node: &Node, path: &str) -> Option<Vec<MinHealthy>> {
    read_items(
        r,
        node,
        path,
        "{ namespace, selector, min } rules",
        |r, n, path| {
            let f = r.fields(n, path, &["namespace", "selector", "min"])?;
            let namespace = required_namespace(r, &f, path);
            let selector = r
                .required(&f, "selector", "a label selector such as app=api")
                .and_then(|n| {
                    r.parsed(
                        n,
                        &child(path, "selector"),
                        "a label selector",
                        parse_selector,
                    )
                });
            let min = r
                .required(
                    &f,
                    "min",
                    "a number of pods or a percentage such as \"50%\"",
                )
                .and_then(|n| {
                    r.parsed(n, &child(path, "min"), "a number or a percentage", quantity)
                });
            Some(MinHealthy {
                namespace: namespace?,
                selector: selector?,
                min: min?,
            })
        },
    )
}

// Result<_, String>: the message for a person is the whole point: placed at file:line:col by the
// reader.
fn quantity(text: &str) -> Result<Quantity, String> {
    if text.trim_end().ends_with('%') {
        return Percent::parse(text, false)
            .map(Quantity::Percent)
            .map_err(|e| e.to_string());
    }
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n <= 100_000)
        .map(Quantity::Count)
        .ok_or_else(|| {
            format!(
                "{text:?} is neither a number of pods nor a percentage (write e.g. 2 or \"50%\")"
            )
        })
}

/// The limits with every one that could be read applied, and whether all could.
fn read_limits(r: &mut Reader, node: &Node, path: &str, base: &Limits) -> (Limits, bool) {
    let mut limits = base.clone();
    let Some(f) = r.fields(node, path, LIMIT_KEYS) else {
        return (limits, false);
    };
    let mut ok = true;
    if let Some(n) = f.get("partition") {
        match r.parsed(n, &child(path, "partition"), "a duration", |s| {
            duration::parse_within(s, Duration::from_secs(1), Duration::from_secs(86_400))
        }) {
            Some(d) => limits.partition = Some(d),
            None => ok = false,
        }
    }
    for (key, slot) in [
        ("cpu", &mut limits.cpu),
        ("memory", &mut limits.memory),
        ("error_rate", &mut limits.error_rate),
    ] {
        if let Some(n) = f.get(key) {
            match r.parsed(n, &child(path, key), "a percentage", percent) {
                Some(p) => *slot = Some(p),
                None => ok = false,
            }
        }
    }
    if let Some(n) = f.get("min_healthy_regions") {
        match r.integer(n, &child(path, "min_healthy_regions"), 0, 100) {
            Some(v) => limits.min_healthy_regions = Some(v as u32),
            None => ok = false,
        }
    }
    (limits, ok)
}
