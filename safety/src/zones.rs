//! The guard for a zone outage: every node of one topology zone (`topology.kubernetes.io/zone`)
//! taken out at once, by draining it or by cutting its pods off the network.
//!
//! A zone is judged whole: each of its nodes as a drain judges one ([`crate::nodes`]), with every
//! node of the zone before it counted down, so `min_healthy` and every budget count all the
//! zone's pods, and a workload whose every ready pod is in the zone goes down with it (refused
//! unless a `min_healthy` rule allows 0). Another zone must have a Ready, schedulable node to
//! take over; a drain must also leave room there for every pod it moves. A partition moves
//! nothing, but its pods are as good as down: it is judged by the same rules.
//!
//! A named zone is judged alone; otherwise the candidate zones are tried in a seeded order (the
//! same fire always tries them in the same order) and the first that passes is taken.

use std::collections::{BTreeMap, HashSet};

use crate::cluster::{Cluster, Node};
use crate::nodes::{NodeJudge, NodeVerdict, Reach};
use crate::verdict::{seed_bytes, ClusterIndex, Request, Verdict};

/// The label that says which zone a node is in.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// How a zone outage takes the zone out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneReach {
    /// Cordon and evict every node of the zone: its pods move to the other zones.
    Drain,
    /// NetworkPolicies cut the zone's pods off from the rest: nothing moves.
    Partition,
}

/// Which zone a fire takes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZonePick<'a> {
    /// This zone, or none.
    Named(&'a str),
    /// The first of these that passes, in the fire's seeded order; every zone of the cluster
    /// when empty.
    Among(&'a [String]),
}

/// Each zone of the cluster and its nodes, by name (not in the order a snapshot happens to list
/// them: the same cluster always gives the same plan); nodes without the label are in no zone.
pub fn zones(cluster: &Cluster) -> BTreeMap<&str, Vec<&Node>> {
    let mut zones: BTreeMap<&str, Vec<&Node>> = BTreeMap::new();
    for node in &cluster.nodes {
        if let Some(zone) = zone_of(node) {
            zones.entry(zone).or_default().push(node);
        }
    }
    for nodes in zones.values_mut() {
        nodes.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    }
    zones
}

fn zone_of(node: &Node) -> Option<&str> {
    node.labels.get(ZONE_LABEL).map(String::as_str)
}

/// Why a zone may not be taken out: the text is the zone's reason in the verdict.
#[derive(Debug, thiserror::Error)]
enum ZoneRefusal {
    #[error("zone {zone}: no node carries {ZONE_LABEL}={zone} (the cluster's zones: {known})")]
    Unknown { zone: String, known: String },
    #[error("zone {zone}: no other zone has a Ready, schedulable node to take over")]
    NoOtherZone { zone: String },
    /// A node of the zone may not be hurt: `why` is the node's reason.
    #[error("zone {zone}: {why}")]
    Node { zone: String, why: String },
    #[error("zone {zone}: taking it out would leave its pods nowhere to run: {why}")]
    NoRoom { zone: String, why: String },
}

/// Decides one fire of a zone outage: the zone taken (its nodes, with every pod on them the
/// outage hurts, in `NodeVerdict::nodes`; those pods as the verdict's targets), and the zones
/// refused with why (`NodeVerdict::refused` and `tried` name zones). Pure and seeded, like
/// [`crate::verdict::decide_on`].
pub fn decide_zone(
    index: &ClusterIndex,
    request: &Request,
    pick: ZonePick,
    reach: ZoneReach,
) -> (Verdict, NodeVerdict) {
    let zones = zones(index.cluster);
    let mut candidates: Vec<&str> = match pick {
        ZonePick::Named(zone) => vec![zone],
        ZonePick::Among([]) => zones.keys().copied().collect(),
        ZonePick::Among(among) => among.iter().map(String::as_str).collect(),
    };
    candidates.sort_by_cached_key(|z| (seed_bytes(request.seed, z.as_bytes()), *z));
    candidates.dedup();
    let mut out = NodeVerdict::default();
    // Every pod of a zone goes down (or is cut off), so each is judged as a drain judges it.
    let mut judge = NodeJudge::new(index, request, Reach::Drain, usize::MAX);
    for zone in candidates {
        out.tried.push(zone.to_owned());
        let saved = judge.checkpoint();
        let judged = judge_zone(&mut judge, index, zone, &zones, reach);
        if judged.is_err() {
            judge.restore(saved);
        }
        match judged {
            Ok(nodes) => {
                let targets = nodes.iter().flat_map(|n| n.pods.clone()).collect();
                out.zone = Some(zone.to_owned());
                out.nodes = nodes;
                let verdict = Verdict {
                    targets,
                    ..Verdict::default()
                };
                return (verdict, out);
            }
            Err(why) => out.refused.push((zone.to_owned(), why.to_string())),
        }
    }
    let blocked = match (pick, out.refused.as_slice()) {
        (ZonePick::Named(_), [(_, why)]) => why.clone(),
        (_, []) => format!("no node carries {ZONE_LABEL}: the cluster has no zone to take out"),
        (_, refused) => format!(
            "no zone may be taken out: {} tried ({})",
            refused.len(),
            refused
                .iter()
                .map(|(_, why)| why.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    let verdict = Verdict {
        blocked: Some(blocked),
        ..Verdict::default()
    };
    (verdict, out)
}

/// `zone` judged whole: every node of it taken, or why not. The cheap checks come first: a
/// drain's room for what it moves is one pass, judging every pod of the zone is the most work.
fn judge_zone<'c>(
    judge: &mut NodeJudge<'_, 'c>,
    index: &ClusterIndex<'c>,
    zone: &str,
    zones: &BTreeMap<&str, Vec<&'c Node>>,
    reach: ZoneReach,
) -> Result<Vec<crate::nodes::NodeChoice>, ZoneRefusal> {
    let Some(nodes) = zones.get(zone) else {
        return Err(ZoneRefusal::Unknown {
            zone: zone.to_owned(),
            known: known(zones),
        });
    };
    let takes_over = index
        .cluster
        .nodes
        .iter()
        .any(|n| n.ready && !n.unschedulable && zone_of(n).is_some_and(|z| z != zone));
    if !takes_over {
        return Err(ZoneRefusal::NoOtherZone {
            zone: zone.to_owned(),
        });
    }
    if reach == ZoneReach::Drain {
        let names: HashSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        judge
            .room_outside(&names)
            .map_err(|shortfall| ZoneRefusal::NoRoom {
                zone: zone.to_owned(),
                why: shortfall.explain(),
            })?;
    }
    let mut taken = Vec::with_capacity(nodes.len());
    for node in nodes {
        taken.push(judge.take(node).map_err(|refusal| ZoneRefusal::Node {
            zone: zone.to_owned(),
            why: refusal.to_string(),
        })?);
    }
    Ok(taken)
}

fn known(zones: &BTreeMap<&str, Vec<&Node>>) -> String {
    if zones.is_empty() {
        "none".to_owned()
    } else {
        zones.keys().copied().collect::<Vec<_>>().join(", ")
    }
}
