//! `zone-outage`: one topology zone taken out, by draining every node of it or by cutting its
//! pods off from the rest of the cluster with NetworkPolicies.

use std::collections::BTreeMap;
use std::time::Duration;

use firedrill_reader::read::{read_items, Fields, Reader};
use firedrill_reader::yaml::{Mark, Node, Value as Yaml};
use firedrill_safety::selector::validate_value;
use firedrill_safety::zones::ZONE_LABEL;
use serde_json::{json, Value};

use firedrill_rollback::{ObjectKind, ObjectRef};
use firedrill_safety::verdict::Verdict;

use crate::plan::{isolate, Expect, Plan, Reach, Scene, PARTITION_LABEL};
use crate::values::within;

/// `zone-outage`: every node of one zone drained, or every pod of it cut off.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneOutage {
    pub mode: ZoneMode,
    pub zone: ZoneChoice,
    /// The grace period evicted pods get (drain); `None`: their own.
    pub grace_period: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneMode {
    /// Cordon every node of the zone and evict its pods, through their budgets.
    Drain,
    /// NetworkPolicies cut the zone's pods off from every pod outside it; DNS stays open.
    Partition,
}

impl ZoneMode {
    pub fn name(self) -> &'static str {
        match self {
            ZoneMode::Drain => "drain",
            ZoneMode::Partition => "partition",
        }
    }
}

/// Which zone: one by name (with where the drill file names it, to say so when a cluster has
/// no such zone), or one picked among these (every zone of the cluster when empty).
#[derive(Clone, Debug, PartialEq)]
pub enum ZoneChoice {
    Named {
        zone: String,
        at: Mark,
        path: String,
    },
    Pick(Vec<String>),
}

impl ZoneOutage {
    /// `fault:` of a zone-outage, every problem reported at its line.
    pub fn read(r: &mut Reader, node: &Node, path: &str) -> Option<Self> {
        let f = r.fields(node, path, &["mode", "zone", "pick", "grace_period"])?;
        let mode = match f.get("mode") {
            Some(n) => r.parsed(n, &f.path_of("mode"), "a mode", |s| match s {
                "drain" => Ok(ZoneMode::Drain),
                "partition" => Ok(ZoneMode::Partition),
                _ => Err(format!("{s:?} is not a mode (allowed: drain, partition)")),
            }),
            None => {
                r.required(&f, "mode", "drain or partition");
                None
            }
        };
        let zone = read_zone(r, &f);
        let grace_period = match f.get("grace_period") {
            Some(n) if mode == Some(ZoneMode::Partition) => {
                r.error(
                    n.mark,
                    f.path_of("grace_period"),
                    "`grace_period` is for mode drain: a partition evicts nothing",
                );
                None
            }
            Some(n) => {
                within(r, n, &f.path_of("grace_period"), Duration::from_secs(3600)).map(Some)
            }
            None => Some(None),
        };
        Some(ZoneOutage {
            mode: mode?,
            zone: zone?,
            grace_period: grace_period?,
        })
    }
}

/// `zone: NAME` or `pick: any | [NAME, ...]`: exactly one.
fn read_zone(r: &mut Reader, f: &Fields) -> Option<ZoneChoice> {
    let zone_name = |s: &str| {
        validate_value(s)
            .map(|()| s.to_owned())
            .map_err(|e| format!("{s:?} cannot be a zone: {e}"))
    };
    match (f.get("zone"), f.get("pick")) {
        (Some(_), Some(pick)) => {
            r.error(
                pick.mark,
                f.path_of("pick"),
                "give either `zone` (the zone to take out) or `pick` (`any`, or the zones to pick among), not both",
            );
            None
        }
        (Some(n), None) => {
            let path = f.path_of("zone");
            let zone = r.parsed(n, &path, "a zone name", zone_name)?;
            Some(ZoneChoice::Named {
                zone,
                at: n.mark,
                path,
            })
        }
        (None, Some(n)) if matches!(&n.value, Yaml::Scalar { text, .. } if text == "any") => {
            Some(ZoneChoice::Pick(Vec::new()))
        }
        (None, Some(n)) => {
            let path = f.path_of("pick");
            if matches!(&n.value, Yaml::Sequence(items) if items.is_empty()) {
                r.error(
                    n.mark,
                    path,
                    "an empty list picks no zone: give zone names, or `any`",
                );
                return None;
            }
            read_items(r, n, &path, "zone names (or `any`)", |r, item, at| {
                r.parsed(item, at, "a zone name", zone_name)
            })
            .map(ZoneChoice::Pick)
        }
        (None, None) => {
            r.error(
                f.mark,
                &f.path,
                "missing `zone` or `pick`: give `zone: NAME` (the zone to take out) or `pick: any` (or a list of zones to pick among)",
            );
            None
        }
    }
}

/// Drain: cordon every node of the zone (but those cordoned before) and evict every pod the
/// guard listed; the controllers recreate them in the other zones and recovery waits for them.
/// Partition: mark the zone's pods, and a NetworkPolicy in each of their namespaces lets them
/// reach, and be reached by, only one another (and DNS). Undo: uncordon, or delete the policies
/// and unmark.
pub fn plan(run: &str, settings: &ZoneOutage, scene: &Scene) -> Plan {
    match settings.mode {
        ZoneMode::Drain => crate::node::drain_nodes(settings.grace_period, scene),
        ZoneMode::Partition => {
            let mut plan = Plan::one(isolate(run, scene.verdict(), |namespace| {
                zone_policy(run, namespace)
            }));
            plan.effect = Some(canary(scene.verdict()));
            plan
        }
    }
}

/// One canary tells whether the network plugin enforces the cut: it carries no mark, so it is
/// outside the cut wherever it runs, and connects into a pod of the zone that declares a port
/// (the runner reads which do; with none, nothing is checked and the record says why).
fn canary(verdict: Option<&Verdict>) -> Vec<Expect> {
    let pods: Vec<ObjectRef> = verdict
        .map(|v| v.targets.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|t| ObjectRef::namespaced(ObjectKind::Pod, &t.namespace, &t.name))
        .collect();
    match pods.first() {
        Some(first) => vec![Expect::Unreachable {
            pod: first.clone(),
            reach: Reach::IntoOneOf(pods.clone()),
        }],
        // Nothing cut off: nothing to see (the run's record says so).
        None => Vec::new(),
    }
}

/// The NetworkPolicy that cuts the marked pods of one namespace off from every pod that is not
/// marked by the same run (in any namespace); DNS stays open so they fail on the partition, not
/// on name resolution.
pub fn zone_policy(run: &str, namespace: &str) -> Value {
    let marked = BTreeMap::from([(PARTITION_LABEL, run)]);
    let peer = json!([{ "namespaceSelector": {}, "podSelector": { "matchLabels": marked } }]);
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": format!("firedrill-zone-{run}").chars().take(253).collect::<String>(),
            "namespace": namespace,
        },
        "spec": {
            "podSelector": { "matchLabels": marked },
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{ "from": peer }],
            "egress": [
                { "to": peer },
                { "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }] },
            ],
        },
    })
}

/// A zone the drill names that no node of `nodes` is in: the problem at the drill file's
/// `zone:`, with the zones there are. `None` when the zone is there (or is picked).
pub fn unknown_zone<'n>(
    settings: &ZoneOutage,
    nodes: impl IntoIterator<Item = &'n firedrill_safety::cluster::Node>,
) -> Option<(Mark, String, String)> {
    let ZoneChoice::Named { zone, at, path } = &settings.zone else {
        return None;
    };
    let mut zones: Vec<&str> = nodes
        .into_iter()
        .filter_map(|n| n.labels.get(ZONE_LABEL).map(String::as_str))
        .collect();
    zones.sort_unstable();
    zones.dedup();
    if zones.contains(&zone.as_str()) {
        return None;
    }
    let known = if zones.is_empty() {
        format!("none: no node carries {ZONE_LABEL}")
    } else {
        zones.join(", ")
    };
    Some((
        *at,
        path.clone(),
        format!("zone {zone:?} is not in the cluster (its zones: {known})"),
    ))
}
