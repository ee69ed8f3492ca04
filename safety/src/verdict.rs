//! The verdict: which pods one fire of a drill may hit, and why every other matching pod is left
//! alone.
//!
//! Rules, in the order they are checked for each pod the targets match:
//!
//! 1. Always protected: kube-system, firedrill's own namespace, firedrill's own pods.
//! 2. `safety.protected` globs (on the pod and on its workload), `safety.never_target` selectors,
//!    `safety.opt_in`.
//! 3. Only pods of a Deployment, StatefulSet, ReplicaSet or DaemonSet that is in the snapshot: their
//!    controller recreates them, and their health can be checked.
//! 4. Only pods that are Running and Ready, at least `min_pod_age` old, whose workload was not hit
//!    within `cooldown`.
//! 5. While picking: every workload keeps its `min_healthy` ready pods (at least one unless a rule
//!    says `min: 0`); no PodDisruptionBudget goes below its allowed disruptions; at most
//!    `max_blast_radius` of the matched pods and `max_targets` in all.
//!
//! Picking is random but seeded, so the same (drill, instant, cluster) always gives the same
//! verdict.

use std::collections::{HashMap, HashSet};

use crate::FastMap;

use crate::cluster::{Cluster, IntOrPercent, Namespace, Owner, OwnerRef, Pdb, Pod};
use crate::{Amount, Policy, Requirement, Selector, Target};

/// The label or annotation that opts a namespace or workload in when `opt_in` is on.
pub const OPT_IN_KEY: &str = "firedrill.io/enabled";

/// Everything one decision needs besides the cluster.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub drill: &'a str,
    /// From [`seed`]: the same fire always picks the same pods.
    pub seed: u64,
    /// The instant the fire is decided for, seconds since the Unix epoch.
    pub now: i64,
    pub targets: &'a [Target],
    pub policy: &'a Policy,
    /// firedrill's own namespace: always protected.
    pub own_namespace: &'a str,
    /// The latest hit of each workload by earlier runs, for `cooldown`.
    pub recent_hits: &'a RecentHits,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    pub namespace: String,
    pub name: String,
    pub owner: Option<OwnerRef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excluded {
    pub namespace: String,
    pub name: String,
    pub reason: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub targets: Vec<Chosen>,
    pub excluded: Vec<Excluded>,
    /// Why nothing may be touched, when nothing may.
    pub blocked: Option<String>,
}

/// The seed of one fire: FNV-1a over the drill name and the scheduled instant.
pub fn seed(drill: &str, scheduled_unix: i64) -> u64 {
    seed_bytes(0, drill.as_bytes()) ^ seed_bytes(1, &scheduled_unix.to_le_bytes())
}

/// FNV-1a of `bytes` starting from `start`, finished with a SplitMix64 step so that nearby
/// inputs spread over the whole range.
pub(crate) fn seed_bytes(start: u64, bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ start;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Rng(hash).next()
}

/// SplitMix64: tiny, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias worth caring about for n < 2^32.
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

/// Seconds as a short human duration: `3m20s`, `2h`, `1d4h`.
pub fn human(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".to_owned();
    }
    let mut rest = seconds;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

fn is_opted_in(labels: &crate::cluster::Labels) -> bool {
    labels.get(OPT_IN_KEY).is_some_and(|v| v == "true")
}

/// Budget state of one PodDisruptionBudget for this decision.
pub(crate) struct Budget {
    pub(crate) allowed: i64,
    pub(crate) explain: String,
}

/// Pods of one namespace, indexed by label on demand: a PDB's budget then looks only at the pods
/// that carry the value its selector requires, not at the whole namespace.
#[derive(Default)]
pub(crate) struct NamespacePods<'c> {
    pub(crate) all: Vec<&'c Pod>,
    by_label: FastMap<&'c str, FastMap<&'c str, Vec<&'c Pod>>>,
}

impl<'c> NamespacePods<'c> {
    /// A superset of the pods `selector` matches, as small as an equality or `in` lets it be.
    fn candidates(&mut self, selector: &'c Selector) -> Vec<&'c Pod> {
        let narrowing = selector.requirements().iter().find_map(|r| match r {
            Requirement::Equals(key, value) => Some((key.as_str(), vec![value.as_str()])),
            Requirement::In(key, values) => {
                Some((key.as_str(), values.iter().map(String::as_str).collect()))
            }
            _ => None,
        });
        let Some((key, values)) = narrowing else {
            return self.all.clone();
        };
        let all = &self.all;
        let index = self.by_label.entry(key).or_insert_with(|| {
            let mut index: FastMap<&str, Vec<&Pod>> = FastMap::default();
            for pod in all {
                if let Some(v) = pod.labels.get(key) {
                    index.entry(v.as_str()).or_default().push(pod);
                }
            }
            index
        });
        values
            .iter()
            .filter_map(|v| index.get(v))
            .flatten()
            .copied()
            .collect()
    }
}

pub(crate) fn budget<'c>(
    pdb: &'c Pdb,
    pods: &mut NamespacePods<'c>,
    owner_index: &FastMap<&OwnerRef, usize>,
    owners: &[Owner],
) -> Budget {
    let Some(selector) = &pdb.selector else {
        return Budget {
            allowed: i64::MAX,
            explain: String::new(),
        };
    };
    let selected: Vec<&Pod> = pods
        .candidates(selector)
        .into_iter()
        .filter(|p| selector.matches(&p.labels))
        .collect();
    let healthy = selected.iter().filter(|p| p.running_and_ready).count() as i64;
    // Expected pods: the desired replicas of the owners of the selected pods (as the disruption
    // controller counts them), or the pod itself when it has no known owner.
    let mut seen: HashSet<&OwnerRef> = HashSet::new();
    let mut expected: i64 = 0;
    for pod in &selected {
        match pod
            .owner
            .as_ref()
            .and_then(|o| owner_index.get(o).map(|&i| (o, &owners[i])))
        {
            Some((key, owner)) => {
                if seen.insert(key) {
                    expected += i64::from(owner.desired);
                }
            }
            None => expected += 1,
        }
    }
    let expected = expected.max(selected.len() as i64);
    let name = format!("{}/{}", pdb.namespace, pdb.name);
    let (computed, rule) = match (pdb.min_available, pdb.max_unavailable) {
        (Some(min), _) => {
            let need = match min {
                IntOrPercent::Int(n) => i64::from(n),
                IntOrPercent::Percent(p) => p.of_ceil(expected as u64) as i64,
            };
            (healthy - need, format!("minAvailable {min}"))
        }
        (None, Some(max)) => {
            // Rounded down: the safe direction for a maximum.
            let max_unavailable = match max {
                IntOrPercent::Int(n) => i64::from(n),
                IntOrPercent::Percent(p) => p.of_floor(expected as u64) as i64,
            };
            (
                healthy - (expected - max_unavailable),
                format!("maxUnavailable {max}"),
            )
        }
        // Neither set: without a status to go by, assume it allows nothing (fail safe).
        (None, None) => (0, "no minAvailable or maxUnavailable".to_owned()),
    };
    let allowed = match pdb.disruptions_allowed {
        Some(status) => computed.min(i64::from(status)),
        None => computed,
    }
    .max(0);
    Budget {
        allowed,
        explain: format!(
            "PodDisruptionBudget {name} ({rule}, {healthy} of {expected} healthy) allows no more disruptions"
        ),
    }
}

/// Decides one fire. Pure: the same inputs always give the same verdict.
pub fn decide(cluster: &Cluster, request: &Request) -> Verdict {
    decide_on(&ClusterIndex::new(cluster), request)
}

/// The lookups every decision on one cluster needs, built once: a plan decides a year of fires
/// on the same snapshot.
pub struct ClusterIndex<'c> {
    pub(crate) cluster: &'c Cluster,
    pub(crate) namespaces: HashMap<&'c str, &'c Namespace>,
    /// Each workload gets an index once; per-pod work then uses the index, not the key's hash.
    pub(crate) owner_index: FastMap<&'c OwnerRef, usize>,
    pub(crate) pdbs: PdbIndex<'c>,
}

impl<'c> ClusterIndex<'c> {
    pub fn new(cluster: &'c Cluster) -> Self {
        let mut pdbs: PdbIndex = FastMap::default();
        for (at, pdb) in cluster.pdbs.iter().enumerate() {
            pdbs.entry(pdb.namespace.as_str()).or_default().add(at, pdb);
        }
        ClusterIndex {
            cluster,
            namespaces: cluster.namespace_index(),
            owner_index: cluster
                .owners
                .iter()
                .enumerate()
                .map(|(i, o)| (&o.key, i))
                .collect(),
            pdbs,
        }
    }
}

/// The latest instant (seconds since the Unix epoch) each workload was hit, for `cooldown`.
pub type RecentHits = HashMap<OwnerRef, i64>;

/// Folds hits into the latest per workload.
pub fn latest_hits(hits: impl IntoIterator<Item = (OwnerRef, i64)>) -> RecentHits {
    let mut latest = RecentHits::new();
    for (owner, at) in hits {
        let entry = latest.entry(owner).or_insert(at);
        *entry = (*entry).max(at);
    }
    latest
}

/// [`decide`] on a cluster indexed once.
pub fn decide_on(index: &ClusterIndex, request: &Request) -> Verdict {
    decide_admitting(index, request, &mut |_| None)
}

/// [`decide_on`], with one more rule a pod must pass when every other rule has: `admit` says why
/// it may not be taken (it is then excluded with that reason and the next pod in the seeded
/// order is tried), or takes it. A node fault admits a pod when its node may be hurt
/// ([`crate::nodes::decide_on_nodes`]), so a refused node does not block the fire while another
/// candidate's node passes.
pub fn decide_admitting<'c>(
    index: &ClusterIndex<'c>,
    request: &Request,
    admit: &mut dyn FnMut(&'c Pod) -> Option<String>,
) -> Verdict {
    let policy = request.policy;
    let cluster = index.cluster;
    let (owner_index, pdbs) = (&index.owner_index, &index.pdbs);

    // 1. The pods the targets match; a pod matched by several targets counts for the first.
    let Matches {
        matched,
        mut pods_by_namespace,
        mut ready,
    } = match_targets(index, request);
    let mut verdict = Verdict::default();
    if matched.is_empty() {
        verdict.blocked = Some("no pod matches the drill's targets".to_owned());
        return verdict;
    }

    // 2. Static exclusions.
    let (mut eligible, matched_per_target) =
        statically_eligible(index, request, &matched, &mut verdict.excluded);

    // 3. Caps.
    let total = matched.len() as u64;
    let (cap, cap_reason) = cap(policy, total, &matched);

    // 4. Pick, target by target, in seeded random order.
    let mut rng = Rng(request.seed);
    let mut budgets: FastMap<(&str, &str), Budget> = FastMap::default();
    for (t, target) in request.targets.iter().enumerate() {
        let pool = &mut eligible[t];
        // A seeded random order that depends only on the fire and the pods' names, not on
        // the order the snapshot lists them in.
        let fire_seed = rng.next();
        pool.sort_by_cached_key(|(p, _)| {
            (seed_bytes(fire_seed, p.name.as_bytes()), p.name.as_str())
        });
        let wanted = wanted(target, &mut rng, matched_per_target[t]);
        let not_picked = format!(
            "not picked: this fire takes {wanted} of the {} pods target {} matches",
            matched_per_target[t],
            t + 1
        );
        let mut taken = 0usize;
        for &(pod, owner) in pool.iter() {
            let reason = if taken >= wanted {
                Some(not_picked.clone())
            } else if verdict.targets.len() >= cap {
                Some(cap_reason.clone())
            } else {
                pick_exclusion(
                    pod,
                    &cluster.owners[owner],
                    ready[owner],
                    request,
                    owner_index,
                    &cluster.owners,
                    &mut pods_by_namespace,
                    pdbs,
                    &mut budgets,
                )
                .or_else(|| admit(pod))
            };
            match reason {
                Some(reason) => verdict.excluded.push(Excluded {
                    namespace: pod.namespace.clone(),
                    name: pod.name.clone(),
                    reason,
                }),
                None => {
                    ready[owner] -= 1;
                    for pdb in matching_pdbs(pdbs, pod) {
                        if let Some(b) =
                            budgets.get_mut(&(pdb.namespace.as_str(), pdb.name.as_str()))
                        {
                            b.allowed -= 1;
                        }
                    }
                    taken += 1;
                    verdict.targets.push(Chosen {
                        namespace: pod.namespace.clone(),
                        name: pod.name.clone(),
                        owner: pod.owner.clone(),
                    });
                }
            }
        }
    }

    if verdict.targets.is_empty() {
        verdict.blocked = Some(nothing_picked(&verdict.excluded, total));
    }
    verdict
}

/// The pods the targets match, and what picking needs to know of the target namespaces.
struct Matches<'c> {
    /// Target, pod and the index of its workload, in the snapshot's order.
    matched: Vec<(usize, &'c Pod, Option<usize>)>,
    /// Every pod of each target namespace.
    pods_by_namespace: FastMap<&'c str, NamespacePods<'c>>,
    /// Ready pods per workload (by index), counted from the pods themselves.
    ready: Vec<i64>,
}

/// The pods the targets match (a pod matched by several targets counts for the first), in one
/// pass over the snapshot's pods that looks only at the target namespaces.
fn match_targets<'c>(index: &ClusterIndex<'c>, request: &Request) -> Matches<'c> {
    let cluster = index.cluster;
    let owner_index = &index.owner_index;
    let target_namespaces: HashSet<&str> = request
        .targets
        .iter()
        .map(|t| t.namespace.as_str())
        .collect();
    let mut matched: Vec<(usize, &Pod, Option<usize>)> = Vec::new();
    let mut pods_by_namespace: FastMap<&str, NamespacePods> = FastMap::default();
    // Ready pods per workload, counted from the pods themselves. A workload's pods live in its
    // namespace, so the target namespaces hold every count a pick can need.
    let mut ready: Vec<i64> = vec![0; cluster.owners.len()];
    // Snapshots list pods namespace by namespace: remember the last namespace's answer.
    let mut last_namespace: Option<(&str, bool)> = None;
    // The current run of pods of one namespace, moved into `pods_by_namespace` when it ends.
    let mut run: Vec<&Pod> = Vec::new();
    for pod in &cluster.pods {
        let namespace = pod.namespace.as_str();
        let targeted = match last_namespace {
            Some((last, targeted)) if last == namespace => targeted,
            previous => {
                if let (Some((last, true)), false) = (previous, run.is_empty()) {
                    pods_by_namespace
                        .entry(last)
                        .or_default()
                        .all
                        .append(&mut run);
                }
                let targeted = target_namespaces.contains(namespace);
                last_namespace = Some((namespace, targeted));
                targeted
            }
        };
        if !targeted {
            continue;
        }
        let owner = pod.owner.as_ref().and_then(|o| owner_index.get(o).copied());
        if let (true, Some(i)) = (pod.running_and_ready, owner) {
            ready[i] += 1;
        }
        run.push(pod);
        if let Some(t) = request
            .targets
            .iter()
            .position(|t| t.namespace == pod.namespace && t.selector.matches(&pod.labels))
        {
            matched.push((t, pod, owner));
        }
    }
    if let Some((last, true)) = last_namespace {
        pods_by_namespace
            .entry(last)
            .or_default()
            .all
            .append(&mut run);
    }
    Matches {
        matched,
        pods_by_namespace,
        ready,
    }
}

/// Per target, the pods that may be picked, each with its workload's index.
type Eligible<'c> = Vec<Vec<(&'c Pod, usize)>>;

/// Each target's pods that pass the static rules, with their workload's index, and how many pods
/// each target matched; the others are excluded with the reason.
fn statically_eligible<'c>(
    index: &ClusterIndex<'c>,
    request: &Request,
    matched: &[(usize, &'c Pod, Option<usize>)],
    excluded: &mut Vec<Excluded>,
) -> (Eligible<'c>, Vec<usize>) {
    let cluster = index.cluster;
    excluded.reserve(matched.len());
    let mut eligible: Eligible = vec![Vec::new(); request.targets.len()];
    let mut matched_per_target = vec![0usize; request.targets.len()];
    for &(t, pod, owner) in matched {
        matched_per_target[t] += 1;
        let known_owner = owner.map(|i| &cluster.owners[i]);
        match (
            static_exclusion(pod, request, &index.namespaces, known_owner),
            owner,
        ) {
            (None, Some(i)) => eligible[t].push((pod, i)),
            (reason, _) => excluded.push(Excluded {
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                // Static rules pass only pods with a known workload.
                reason: reason
                    .unwrap_or_else(|| "its workload is not in the cluster snapshot".into()),
            }),
        }
    }
    (eligible, matched_per_target)
}

/// How many pods the fire may take in all (the smaller of the blast radius and the target cap),
/// and the reason a pod past it is not taken. A scenario's step shares both caps with the steps
/// before it ([`crate::scenario`]): their hits count, and the blast radius is a share of every pod
/// any of them matched.
fn cap(policy: &Policy, total: u64, matched: &[(usize, &Pod, Option<usize>)]) -> (usize, String) {
    let spent = &policy.spent;
    if spent.is_empty() {
        return cap_alone(policy, total);
    }
    let here: HashSet<(&str, &str)> = matched
        .iter()
        .map(|(_, p, _)| (p.namespace.as_str(), p.name.as_str()))
        .collect();
    let before = spent
        .matched
        .iter()
        .filter(|(ns, name)| !here.contains(&(ns.as_str(), name.as_str())))
        .count() as u64;
    let total = total + before;
    let blast_cap = policy.max_blast_radius.of_floor(total);
    let hits = u64::from(spent.hits);
    let cap = blast_cap
        .min(u64::from(policy.max_targets))
        .saturating_sub(hits) as usize;
    let cap_reason = if blast_cap <= u64::from(policy.max_targets) {
        format!(
            "safety.max_blast_radius {} of the {total} pods this scenario's steps matched allows {blast_cap}, {hits} by earlier steps, all taken",
            policy.max_blast_radius
        )
    } else {
        format!(
            "safety.max_targets {} reached, {hits} by earlier steps of the scenario",
            policy.max_targets
        )
    };
    (cap, cap_reason)
}

/// [`cap`] for a drill of its own.
fn cap_alone(policy: &Policy, total: u64) -> (usize, String) {
    let blast_cap = policy.max_blast_radius.of_floor(total);
    let cap = blast_cap.min(u64::from(policy.max_targets)) as usize;
    let cap_reason = if blast_cap <= u64::from(policy.max_targets) {
        format!(
            "safety.max_blast_radius {} of {total} matched pods allows {blast_cap}, all taken",
            policy.max_blast_radius
        )
    } else {
        format!("safety.max_targets {} reached", policy.max_targets)
    };
    (cap, cap_reason)
}

/// How many pods this fire takes of a target's `matched`: its count, or a share drawn from its
/// percent range (at least one).
fn wanted(target: &Target, rng: &mut Rng, matched: usize) -> usize {
    match target.amount {
        Amount::Count(n) => n as usize,
        Amount::Percent(range) => {
            let span = range.high.hundredths() - range.low.hundredths();
            let drawn = range.low.hundredths() as usize + rng.below(span as usize + 1);
            (drawn * matched / 10_000).max(1)
        }
    }
}

/// Why the fire is blocked when every matching pod was excluded, with the first as an example.
fn nothing_picked(excluded: &[Excluded], total: u64) -> String {
    let first = excluded
        .first()
        .map(|e| format!(" (e.g. {}/{}: {})", e.namespace, e.name, e.reason))
        .unwrap_or_default();
    format!(
        "nothing may be touched: all {total} matching pod{} excluded{first}",
        if total == 1 { " is" } else { "s are" }
    )
}

/// The PodDisruptionBudgets of each namespace.
pub(crate) type PdbIndex<'c> = FastMap<&'c str, NamespacePdbs<'c>>;

/// One namespace's budgets, each with its place in the snapshot, filed under a label its
/// selector requires (the first equality or `in`), so a pod is matched against the budgets
/// that could select it, not against every budget of its namespace.
#[derive(Default)]
pub(crate) struct NamespacePdbs<'c> {
    by_label: FastMap<(&'c str, &'c str), Vec<(usize, &'c Pdb)>>,
    /// Selectors that require no one value (and budgets with no selector, which match nothing).
    rest: Vec<(usize, &'c Pdb)>,
}

impl<'c> NamespacePdbs<'c> {
    fn add(&mut self, at: usize, pdb: &'c Pdb) {
        let narrowing = pdb.selector.as_ref().and_then(|s| {
            s.requirements().iter().find_map(|r| match r {
                Requirement::Equals(key, value) => Some((key.as_str(), vec![value.as_str()])),
                Requirement::In(key, values) => {
                    Some((key.as_str(), values.iter().map(String::as_str).collect()))
                }
                _ => None,
            })
        });
        match narrowing {
            Some((key, values)) => {
                for value in values {
                    self.by_label
                        .entry((key, value))
                        .or_default()
                        .push((at, pdb));
                }
            }
            None => self.rest.push((at, pdb)),
        }
    }
}

/// The budgets whose selector matches `pod`, in snapshot order.
pub(crate) fn matching_pdbs<'c>(pdbs: &PdbIndex<'c>, pod: &Pod) -> Vec<&'c Pdb> {
    let Some(index) = pdbs.get(pod.namespace.as_str()) else {
        return Vec::new();
    };
    let mut found: Vec<(usize, &Pdb)> = pod
        .labels
        .iter()
        .filter_map(|(k, v)| index.by_label.get(&(k.as_str(), v.as_str())))
        .flatten()
        .chain(&index.rest)
        .copied()
        .filter(|(_, pdb)| {
            pdb.selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.labels))
        })
        .collect();
    found.sort_unstable_by_key(|(at, _)| *at);
    found.into_iter().map(|(_, pdb)| pdb).collect()
}

/// Rules that depend only on the pod, the policy and the cluster as it is.
fn static_exclusion(
    pod: &Pod,
    request: &Request,
    namespaces: &HashMap<&str, &Namespace>,
    known_owner: Option<&Owner>,
) -> Option<String> {
    if let Some(reason) = protection(pod, request, namespaces, known_owner) {
        return Some(reason);
    }
    let policy = request.policy;
    let owner = pod.owner.as_ref()?;
    if !pod.running_and_ready {
        return Some(format!(
            "not Running and Ready (phase {}), so not healthy to begin with",
            pod.phase
        ));
    }
    let age = request.now.saturating_sub(pod.created).max(0) as u64;
    let min_age = policy.min_pod_age.as_secs();
    if age < min_age {
        return Some(format!(
            "only {} old; safety.min_pod_age is {}",
            human(age),
            human(min_age)
        ));
    }
    let cooldown = policy.cooldown.as_secs() as i64;
    if cooldown > 0 {
        if let Some(&at) = request
            .recent_hits
            .get(owner)
            .filter(|&&at| request.now - at < cooldown)
        {
            return Some(format!(
                "its workload {owner} was hit {} ago; safety.cooldown is {}",
                human((request.now - at).max(0) as u64),
                human(cooldown as u64)
            ));
        }
    }
    None
}

/// The rules that say a pod may not be hurt at all, as a target or as a neighbour: always
/// protected places and pods, `protected`, `never_target`, `opt_in`, and a controller that
/// recreates it and is known.
pub fn protection(
    pod: &Pod,
    request: &Request,
    namespaces: &HashMap<&str, &Namespace>,
    known_owner: Option<&Owner>,
) -> Option<String> {
    if let Some(reason) = explicit_protection(pod, request) {
        return Some(reason);
    }
    let policy = request.policy;
    if policy.opt_in {
        let namespace_in = namespaces
            .get(pod.namespace.as_str())
            .is_some_and(|n| is_opted_in(&n.labels) || is_opted_in(&n.annotations));
        let workload_in =
            known_owner.is_some_and(|o| is_opted_in(&o.labels)) || is_opted_in(&pod.labels);
        if !namespace_in && !workload_in {
            return Some(format!(
                "safety.opt_in is on and neither namespace {} nor its workload carries {OPT_IN_KEY}=true",
                pod.namespace
            ));
        }
    }
    controller_protection(pod, known_owner)
}

/// The rule a pod that goes down must pass: a known controller recreates it.
pub fn controller_protection(pod: &Pod, known_owner: Option<&Owner>) -> Option<String> {
    let Some(owner) = pod.owner.as_ref() else {
        return Some("has no controller to recreate it".to_owned());
    };
    if !owner.kind.recreates_pods() {
        return Some(format!(
            "owned by {owner}, which does not recreate deleted pods (only Deployment, StatefulSet, ReplicaSet and DaemonSet pods are targeted)"
        ));
    }
    if known_owner.is_none() {
        return Some(format!(
            "its workload {owner} is not in the cluster snapshot, so its health cannot be checked"
        ));
    }
    None
}

/// Always protected (kube-system, firedrill's own namespace and pods), `safety.protected` and
/// `safety.never_target`: what no fault may hurt in any way.
pub fn explicit_protection(pod: &Pod, request: &Request) -> Option<String> {
    if pod.namespace == "kube-system" {
        return Some("in kube-system, which is always protected".to_owned());
    }
    own_or_listed_protection(pod, request)
}

/// [`explicit_protection`] but for kube-system: firedrill's own namespace and pods,
/// `safety.protected` and `safety.never_target`.
pub fn own_or_listed_protection(pod: &Pod, request: &Request) -> Option<String> {
    if pod.namespace == request.own_namespace {
        return Some(format!(
            "in firedrill's own namespace {}, which is always protected",
            request.own_namespace
        ));
    }
    if pod
        .labels
        .get("app.kubernetes.io/name")
        .is_some_and(|v| v == "firedrill")
        || pod.labels.contains_key("firedrill.io/run")
    {
        return Some("one of firedrill's own pods, which are always protected".to_owned());
    }
    listed_protection(pod, request.policy)
}

/// `safety.protected` (on the pod or its workload) and `safety.never_target`.
pub fn listed_protection(pod: &Pod, policy: &crate::Policy) -> Option<String> {
    let owner = pod.owner.as_ref();
    if let Some(glob) = policy.protected.iter().find(|g| {
        g.matches(&pod.namespace, &pod.name)
            || owner.is_some_and(|o| g.matches(&o.namespace, &o.name))
    }) {
        return Some(format!("protected by safety.protected {glob}"));
    }
    if let Some(selector) = policy.never_target.iter().find(|s| s.matches(&pod.labels)) {
        return Some(format!("matches safety.never_target {selector}"));
    }
    None
}

/// The ready pods `pod`'s workload must keep: the highest `min_healthy` rule that covers it, and
/// without one still its last ready pod.
pub fn floor(policy: &crate::Policy, pod: &Pod, owner: &Owner) -> i64 {
    policy
        .min_healthy
        .iter()
        .filter(|r| r.namespace == pod.namespace && r.selector.matches(&pod.labels))
        .map(|r| r.min.resolve_ceil(u64::from(owner.desired)))
        .max()
        .unwrap_or(1) as i64
}

/// Rules that depend on what this fire has already picked: min_healthy and PDBs.
#[allow(clippy::too_many_arguments)]
fn pick_exclusion<'c>(
    pod: &'c Pod,
    owner: &Owner,
    ready_now: i64,
    request: &Request,
    owner_index: &FastMap<&OwnerRef, usize>,
    owners: &'c [Owner],
    pods_by_namespace: &mut FastMap<&'c str, NamespacePods<'c>>,
    pdbs: &PdbIndex<'c>,
    budgets: &mut FastMap<(&'c str, &'c str), Budget>,
) -> Option<String> {
    let owner_ref = &owner.key;
    let min = floor(request.policy, pod, owner);
    if ready_now - 1 < min {
        return Some(format!(
            "would leave {owner_ref} with {} ready pod{}; min_healthy is {min}",
            ready_now - 1,
            if ready_now - 1 == 1 { "" } else { "s" }
        ));
    }
    let in_namespace = pods_by_namespace.entry(pod.namespace.as_str()).or_default();
    for pdb in matching_pdbs(pdbs, pod) {
        let b = budgets
            .entry((pdb.namespace.as_str(), pdb.name.as_str()))
            .or_insert_with(|| budget(pdb, in_namespace, owner_index, owners));
        if b.allowed <= 0 {
            return Some(b.explain.clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{seed, seed_bytes, Rng};

    /// The pick of a fire is reproducible on every platform and release (`plan` shows what the
    /// Job will hit): the generator is SplitMix64 and the hash FNV-1a 64, checked against their
    /// published test vectors, not against this code's own output.
    #[test]
    fn the_seed_and_the_generator_are_the_published_algorithms() {
        let mut rng = Rng(0);
        assert_eq!(
            [rng.next(), rng.next(), rng.next()],
            [
                0xe220_a839_7b1d_cdaf,
                0x6e78_9e6a_a1b9_65f4,
                0x06c4_5d18_8009_454f
            ]
        );
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c; the seed finishes it with one SplitMix64 step.
        assert_eq!(seed_bytes(0, b"a"), Rng(0xaf63_dc4c_8601_ec8c).next());
        assert_eq!(seed_bytes(0, b""), Rng(0xcbf2_9ce4_8422_2325).next());
        // Drill and instant are hashed apart (1 marks the instant's hash) and combined by xor.
        assert_eq!(
            seed("pod-kill-monthly", 1_767_225_600),
            0x8607_2478_61e3_834f
        );
    }

    /// `below(n)` is the high 32 bits of the output scaled to `n`: in range, spread evenly.
    #[test]
    fn below_is_uniform_over_its_range() {
        let mut rng = Rng(42);
        let first: Vec<usize> = (0..10).map(|_| rng.below(5)).collect();
        assert_eq!(first, [3, 0, 1, 1, 0, 4, 1, 4, 1, 3]);
        let mut counts = [0_u32; 7];
        for _ in 0..70_000 {
            counts[rng.below(7)] += 1;
        }
        for (i, &n) in counts.iter().enumerate() {
            assert!((9_500..10_500).contains(&n), "bucket {i}: {counts:?}");
        }
    }
}
