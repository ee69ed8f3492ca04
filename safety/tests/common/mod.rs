//! What the guard's property tests share: the generated clusters and policies (`arb_case`, and
//! `arb_node_case_of` with nodes), the oracle's reading of the rules, and the coverage tally.
//! Each test crate includes it (`mod common;`) and uses part of it.

#![allow(dead_code, unused_imports)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use firedrill_safety::cluster::{
    Cluster, IntOrPercent, Labels, Namespace, Node, Owner, OwnerKind, OwnerRef, Pdb, Pod,
    Resources, Taint, TaintEffect, Toleration,
};
use firedrill_safety::nodes::Reach;
use firedrill_safety::verdict::{decide, latest_hits, RecentHits, Request, Verdict};
use firedrill_safety::{
    Amount, KubeSystemNeighbours, MinHealthy, NamespacedGlob, Percent, PercentRange, Policy,
    Quantity, Selector, Target,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

pub const NOW: i64 = 1_800_000_000;

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

/// Ordinary namespaces first: most workloads are generated there.
pub const NAMESPACES: [&str; 5] = ["apps", "db", "ai", "kube-system", "firedrill"];
pub const OWN_NAMESPACE: &str = "firedrill";

/// A label selector the oracle evaluates itself (the guard gets it parsed).
#[derive(Clone, Debug)]
pub enum Sel {
    All,
    Eq(&'static str, String),
    In(&'static str, Vec<String>),
    NotIn(&'static str, Vec<String>),
    Exists(&'static str),
}

impl Sel {
    pub fn text(&self) -> String {
        match self {
            Sel::All => String::new(),
            Sel::Eq(k, v) => format!("{k}={v}"),
            Sel::In(k, vs) => format!("{k} in ({})", vs.join(",")),
            Sel::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
            Sel::Exists(k) => (*k).to_owned(),
        }
    }

    pub fn selector(&self) -> Selector {
        Selector::parse(&self.text()).unwrap()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        match self {
            Sel::All => true,
            Sel::Eq(k, v) => labels.get(*k) == Some(v),
            Sel::In(k, vs) => labels.get(*k).is_some_and(|v| vs.contains(v)),
            Sel::NotIn(k, vs) => !labels.get(*k).is_some_and(|v| vs.contains(v)),
            Sel::Exists(k) => labels.contains_key(*k),
        }
    }
}

/// A `safety.protected` glob, with its meaning spelled out for the oracle.
#[derive(Clone, Copy, Debug)]
pub enum Glob {
    /// `db/*`
    Namespace,
    /// `apps/w1*`
    Prefix,
    /// `ai/w2-0`
    Exact,
    /// `*/w3`
    AnyNamespace,
}

impl Glob {
    pub const ALL: [Glob; 4] = [
        Glob::Namespace,
        Glob::Prefix,
        Glob::Exact,
        Glob::AnyNamespace,
    ];

    pub fn text(self) -> &'static str {
        match self {
            Glob::Namespace => "db/*",
            Glob::Prefix => "apps/w1*",
            Glob::Exact => "ai/w2-0",
            Glob::AnyNamespace => "*/w3",
        }
    }

    pub fn matches(self, namespace: &str, name: &str) -> bool {
        match self {
            Glob::Namespace => namespace == "db",
            Glob::Prefix => namespace == "apps" && name.starts_with("w1"),
            Glob::Exact => namespace == "ai" && name == "w2-0",
            Glob::AnyNamespace => name == "w3",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Case {
    pub cluster: Cluster,
    pub targets: Vec<Target>,
    pub policy: Policy,
    pub hits: Vec<(OwnerRef, i64)>,
    pub seed: u64,
    /// The oracle's copies of the selectors, parallel to `targets`, `cluster.pdbs`,
    /// `policy.min_healthy`, and of `policy.protected` and `policy.never_target`.
    pub target_sels: Vec<Sel>,
    pub pdb_sels: Vec<Sel>,
    pub rule_sels: Vec<Sel>,
    pub globs: Vec<Glob>,
    pub never: Vec<Sel>,
}

/// One generated pod: (state, young, orphan).
/// state: 0..80 Running and Ready, ..86 Running not ready, ..92 Pending, ..96 Succeeded, else Failed.
pub type PodGen = (u8, bool, bool);

/// A `min_healthy` minimum: as given, or the ready pods of the rule's workload less a slack.
#[derive(Clone, Debug)]
pub enum RuleMin {
    Is(Quantity),
    Slack(u64),
}

#[derive(Clone, Debug)]
pub struct WorkloadGen {
    pub ns: usize,
    pub kind: u8,
    pub listed: bool,
    pub primary: bool,
    pub opted: bool,
    pub ours: bool,
    pub tier: bool,
    pub delta: i64,
    pub pods: Vec<PodGen>,
}

prop_compose! {
    pub fn arb_workload()(
        ns in prop_oneof![40 => Just(0usize), 30 => Just(1), 25 => Just(2), 5 => Just(3), 2 => Just(4)],
        kind in 0u8..100,
        listed in prop::bool::weighted(0.97),
        primary in prop::bool::weighted(0.15),
        opted in prop::bool::weighted(0.7),
        ours in prop::bool::weighted(0.02),
        tier in any::<bool>(),
        delta in -1i64..=1,
        pods in prop_oneof![1 => 1usize..4, 2 => 4usize..9].prop_flat_map(|n| prop::collection::vec((0u8..100, prop::bool::weighted(0.1), prop::bool::weighted(0.02)), n)),
    ) -> WorkloadGen {
        WorkloadGen { ns, kind, listed, primary, opted, ours, tier, delta, pods }
    }
}

pub fn arb_sel() -> impl Strategy<Value = (u8, Index, Index)> {
    (0u8..100, any::<Index>(), any::<Index>())
}

/// A selector over the workloads: mostly one or two of them by `app`, sometimes by tier.
pub fn make_sel(kind: u8, a: &Index, b: &Index, apps: usize, everything: u8) -> Sel {
    let app = |i: &Index| format!("w{}", i.index(apps));
    let (kind, everything) = (u32::from(kind), u32::from(everything));
    match kind {
        k if k < everything => Sel::All,
        k if k < everything + (100 - everything) / 2 => Sel::Eq("app", app(a)),
        k if k < everything + (100 - everything) * 3 / 4 => Sel::In("app", vec![app(a), app(b)]),
        k if k % 2 == 0 => Sel::NotIn("tier", vec!["b".into()]),
        _ => Sel::Exists("app"),
    }
}

pub fn arb_int_or_percent() -> impl Strategy<Value = IntOrPercent> {
    prop_oneof![
        3 => (0u32..5).prop_map(IntOrPercent::Int),
        1 => prop_oneof![Just(25u32), Just(50), Just(75), Just(100), 0u32..=100]
            .prop_map(|p| IntOrPercent::Percent(Percent::from_hundredths(p * 100).unwrap())),
    ]
}

/// Generated cases. `hazard` scales how often the policy's static rules (protected globs,
/// never_target, opt_in, min_pod_age, cooldown) are on: the node test lowers it so that
/// more fires choose pods whose nodes can then be judged.
pub fn arb_case(hazard: f64) -> impl Strategy<Value = Case> {
    let workloads = prop::collection::vec(arb_workload(), 1..7);
    let pdbs = prop::collection::vec(
        (
            arb_sel(),
            0u8..10,
            arb_int_or_percent(),
            prop_oneof![1 => Just(0u32), 4 => 1u32..3],
            prop::option::weighted(0.2, 0u32..3),
        ),
        0..5,
    );
    let targets = prop::collection::vec(
        (
            any::<Index>(),
            arb_sel(),
            prop_oneof![
                (1u32..9).prop_map(Amount::Count),
                (10u32..=100, 0u32..=100).prop_map(|(lo, up)| {
                    let hi = (lo + up).min(100);
                    Amount::Percent(PercentRange {
                        low: Percent::from_hundredths(lo * 100).unwrap(),
                        high: Percent::from_hundredths(hi * 100).unwrap(),
                    })
                }),
            ],
        ),
        1..4,
    );
    let rules = prop::collection::vec(
        (
            any::<Index>(),
            arb_sel(),
            prop_oneof![
                3 => prop_oneof![1 => Just(0u64), 4 => 1u64..4].prop_map(|n| RuleMin::Is(Quantity::Count(n))),
                1 => prop_oneof![Just(25u32), Just(50), Just(75), Just(100), 0u32..=100]
                    .prop_map(|p| RuleMin::Is(Quantity::Percent(Percent::from_hundredths(p * 100).unwrap()))),
                2 => (1u64..3).prop_map(RuleMin::Slack),
            ],
        ),
        0..4,
    );
    let policy = (
        prop::option::weighted(0.2 * hazard, prop::collection::vec(0usize..4, 1..3)),
        prop::bool::weighted(0.25 * hazard),
        prop::bool::weighted(0.2 * hazard),
        prop_oneof![14 => Just(100u32), 5 => 20u32..=100, 1 => 1u32..20],
        prop_oneof![7 => Just(1000u32), 3 => 1u32..12],
        prop::bool::weighted(0.5 * hazard).prop_map(|on| if on { 600u64 } else { 0 }),
        prop::bool::weighted(0.2 * hazard).prop_map(|on| if on { 3600u64 } else { 0 }),
    );
    let hits = prop::collection::vec(
        (
            any::<Index>(),
            prop_oneof![0i64..7200, Just(3599), Just(3600), Just(3601)],
        ),
        0..3,
    );
    let namespaces =
        prop::collection::vec((prop::bool::weighted(0.4), prop::bool::weighted(0.2)), 5);
    (
        workloads,
        pdbs,
        targets,
        rules,
        policy,
        hits,
        namespaces,
        any::<u64>(),
    )
        .prop_map(
            |(workloads, pdbs, targets, rules, policy, hits, ns_opt, seed)| {
                build(workloads, pdbs, targets, rules, policy, hits, ns_opt, seed)
            },
        )
}

#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn build(
    workloads: Vec<WorkloadGen>,
    pdbs: Vec<((u8, Index, Index), u8, IntOrPercent, u32, Option<u32>)>,
    targets: Vec<(Index, (u8, Index, Index), Amount)>,
    rules: Vec<(Index, (u8, Index, Index), RuleMin)>,
    policy: (Option<Vec<usize>>, bool, bool, u32, u32, u64, u64),
    hits: Vec<(Index, i64)>,
    ns_opt: Vec<(bool, bool)>,
    seed: u64,
) -> Case {
    let n = workloads.len();
    let mut cluster = Cluster::default();
    let mut keys = Vec::new();
    for (i, w) in workloads.iter().enumerate() {
        let kind = match w.kind {
            k if k < 50 => OwnerKind::Deployment,
            k if k < 75 => OwnerKind::StatefulSet,
            k if k < 83 => OwnerKind::ReplicaSet,
            k if k < 93 => OwnerKind::DaemonSet,
            k if k < 96 => OwnerKind::Other("Job".into()),
            _ => OwnerKind::Other("Node".into()),
        };
        let key = OwnerRef {
            kind,
            namespace: NAMESPACES[w.ns].into(),
            name: format!("w{i}"),
        };
        let mut l = labels(&[
            ("app", &format!("w{i}")),
            ("role", if w.primary { "primary" } else { "replica" }),
            ("tier", if w.tier { "a" } else { "b" }),
        ]);
        if w.opted {
            l.insert("firedrill.io/enabled".into(), "true".into());
        }
        if w.ours {
            l.insert("firedrill.io/run".into(), "r1".into());
        }
        for (j, &(state, young, orphan)) in w.pods.iter().enumerate() {
            let (ready, phase) = match state {
                s if s < 85 => (true, "Running"),
                s if s < 90 => (false, "Running"),
                s if s < 94 => (false, "Pending"),
                s if s < 96 => (false, "Succeeded"),
                _ => (false, "Failed"),
            };
            // Ages straddle 600 s, the min_pod_age the policy may set.
            let age = if young {
                599 - (j as i64 * 97) % 600
            } else {
                600 + (j as i64 * 1_013) % 6_000
            };
            cluster.pods.push(Pod {
                namespace: key.namespace.clone(),
                name: format!("w{i}-{j}"),
                labels: l.clone(),
                owner: (!orphan).then(|| key.clone()),
                running_and_ready: ready,
                phase: phase.into(),
                created: NOW - age,
                node: None,
                ..Default::default()
            });
        }
        if w.listed {
            keys.push(key.clone());
            cluster.owners.push(Owner {
                key,
                labels: l,
                desired: (w.pods.len() as i64 + w.delta).max(0) as u32,
            });
        }
    }
    for (i, (label, annotation)) in ns_opt.into_iter().enumerate() {
        let opt = |on: bool| {
            if on {
                labels(&[("firedrill.io/enabled", "true")])
            } else {
                Labels::new()
            }
        };
        cluster.namespaces.push(Namespace {
            name: NAMESPACES[i].into(),
            labels: opt(label),
            annotations: opt(annotation),
        });
    }
    let ns_of = |i: &Index| NAMESPACES[workloads[i.index(n)].ns].to_owned();
    let mut pdb_sels = Vec::new();
    // Ready pods of `namespace` that `sel` selects: budgets and floors are often set just
    // below them (a slack of 0 to 2), so that they bind.
    let ready_in = |cluster: &Cluster, namespace: &str, sel: &Sel| {
        cluster
            .pods
            .iter()
            .filter(|p| p.namespace == namespace && p.running_and_ready && sel.matches(&p.labels))
            .count() as u32
    };
    for (k, ((s, a, b), which, q, slack, status)) in pdbs.into_iter().enumerate() {
        let sel = make_sel(s.max(10), &a, &b, n, 10);
        let namespace = ns_of(&a);
        let ready = ready_in(&cluster, &namespace, &sel);
        let (min_available, max_unavailable) = match which {
            0..=2 => (Some(IntOrPercent::Int(ready.saturating_sub(slack))), None),
            3..=5 => (None, Some(IntOrPercent::Int(slack))),
            6..=7 => (Some(q), None),
            8 => (None, Some(q)),
            _ => (None, None),
        };
        cluster.pdbs.push(Pdb {
            namespace,
            name: format!("pdb{k}"),
            selector: Some(sel.selector()),
            min_available,
            max_unavailable,
            disruptions_allowed: status,
        });
        pdb_sels.push(sel);
    }
    let mut target_sels = Vec::new();
    let targets = targets
        .into_iter()
        .map(|(w, (s, _, b), amount)| {
            let sel = make_sel(s, &w, &b, n, 40);
            let t = Target {
                namespace: ns_of(&w),
                selector: sel.selector(),
                amount,
            };
            target_sels.push(sel);
            t
        })
        .collect();
    let mut rule_sels = Vec::new();
    let min_healthy = rules
        .into_iter()
        .map(|(w, (s, _, b), min)| {
            let sel = make_sel(s, &w, &b, n, 40);
            let namespace = ns_of(&w);
            let min = match min {
                RuleMin::Is(q) => q,
                RuleMin::Slack(k) => {
                    let own = Sel::Eq("app", format!("w{}", w.index(n)));
                    Quantity::Count(
                        u64::from(ready_in(&cluster, &namespace, &own)).saturating_sub(k),
                    )
                }
            };
            let rule = MinHealthy {
                namespace,
                selector: sel.selector(),
                min,
            };
            rule_sels.push(sel);
            rule
        })
        .collect();
    let (globs, never_primary, opt_in, blast, max_targets, min_age, cooldown) = policy;
    let globs: Vec<Glob> = globs
        .unwrap_or_default()
        .into_iter()
        .map(|g| Glob::ALL[g])
        .collect();
    let never = if never_primary {
        vec![Sel::Eq("role", "primary".into())]
    } else {
        vec![]
    };
    let policy = Policy {
        protected: globs
            .iter()
            .map(|g| NamespacedGlob::parse(g.text()).unwrap())
            .collect(),
        never_target: never.iter().map(Sel::selector).collect(),
        opt_in,
        min_healthy,
        max_blast_radius: Percent::from_hundredths(blast * 100).unwrap(),
        max_targets,
        min_pod_age: Duration::from_secs(min_age),
        cooldown: Duration::from_secs(cooldown),
        limits: Default::default(),
        kube_system_neighbours: KubeSystemNeighbours::Protect,
        spent: Default::default(),
    };
    let hits = hits
        .into_iter()
        .filter(|_| !keys.is_empty())
        .map(|(w, ago)| (keys[w.index(keys.len())].clone(), NOW - ago))
        .collect();
    Case {
        cluster,
        targets,
        policy,
        hits,
        seed,
        target_sels,
        pdb_sels,
        rule_sels,
        globs,
        never,
    }
}

pub fn request<'a>(case: &'a Case, hits: &'a RecentHits) -> Request<'a> {
    Request {
        drill: "prop",
        seed: case.seed,
        now: NOW,
        targets: &case.targets,
        policy: &case.policy,
        own_namespace: OWN_NAMESPACE,
        recent_hits: hits,
    }
}

pub fn verdict(case: &Case) -> Verdict {
    decide(
        &case.cluster,
        &request(case, &latest_hits(case.hits.iter().cloned())),
    )
}

// ----- The oracle: the rules, read straight off the generated case. -----

/// Why a pod may not be hurt (or picked), one tag per rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    SystemNamespace,
    OwnNamespace,
    OwnPod,
    Protected,
    NeverTarget,
    OptIn,
    NoController,
    NotRecreating,
    NotInSnapshot,
    NotReady,
    Young,
    Cooldown,
    MinHealthy,
    Budget,
    NotPicked,
    Cap,
    UnknownNode,
    NoSchedulableNode,
    NoRoom,
    NoMemory,
}

/// The rule a reason the guard wrote names.
pub fn named(reason: &str) -> Option<Rule> {
    let has = |s: &str| reason.contains(s);
    Some(
        if has("so whether it was cordoned before cannot be recorded") {
            Rule::UnknownNode
        } else if has("would leave no schedulable node") {
            Rule::NoSchedulableNode
        } else if has("memory stress holds") || has("the memory a stress holds cannot be checked") {
            Rule::NoMemory
        } else if has("would leave its pods nowhere to run")
            || has("capacity cannot be checked because node")
        {
            Rule::NoRoom
        } else if has("in kube-system, which is always protected") {
            Rule::SystemNamespace
        } else if has("in firedrill's own namespace") {
            Rule::OwnNamespace
        } else if has("one of firedrill's own pods") {
            Rule::OwnPod
        } else if has("protected by safety.protected") {
            Rule::Protected
        } else if has("matches safety.never_target") {
            Rule::NeverTarget
        } else if has("safety.opt_in is on") {
            Rule::OptIn
        } else if has("has no controller to recreate it") {
            Rule::NoController
        } else if has("which does not recreate deleted pods") {
            Rule::NotRecreating
        } else if has("is not in the cluster snapshot, so its health cannot be checked") {
            Rule::NotInSnapshot
        } else if has("not Running and Ready") {
            Rule::NotReady
        } else if has("safety.min_pod_age") {
            Rule::Young
        } else if has("safety.cooldown") {
            Rule::Cooldown
        } else if has("min_healthy is") {
            Rule::MinHealthy
        } else if has("PodDisruptionBudget") {
            Rule::Budget
        } else if has("not picked: this fire takes") {
            Rule::NotPicked
        } else if has("safety.max_blast_radius") || has("safety.max_targets") {
            Rule::Cap
        } else {
            return None;
        },
    )
}

pub fn workload<'c>(case: &'c Case, pod: &Pod) -> Option<&'c Owner> {
    let key = pod.owner.as_ref()?;
    case.cluster.owners.iter().find(|o| &o.key == key)
}

pub fn opted(labels: &Labels) -> bool {
    labels
        .get("firedrill.io/enabled")
        .is_some_and(|v| v == "true")
}

/// `safety.protected` and `safety.never_target`.
pub fn listed(case: &Case, pod: &Pod) -> Vec<Rule> {
    let mut out = Vec::new();
    if case.globs.iter().any(|g| {
        g.matches(&pod.namespace, &pod.name)
            || pod
                .owner
                .as_ref()
                .is_some_and(|o| g.matches(&o.namespace, &o.name))
    }) {
        out.push(Rule::Protected);
    }
    if case.never.iter().any(|s| s.matches(&pod.labels)) {
        out.push(Rule::NeverTarget);
    }
    out
}

/// What no fault may hurt in any way.
pub fn explicit(case: &Case, pod: &Pod) -> Vec<Rule> {
    let mut out = listed(case, pod);
    if pod.namespace == "kube-system" {
        out.push(Rule::SystemNamespace);
    }
    if pod.namespace == OWN_NAMESPACE {
        out.push(Rule::OwnNamespace);
    }
    if pod
        .labels
        .get("app.kubernetes.io/name")
        .is_some_and(|v| v == "firedrill")
        || pod.labels.contains_key("firedrill.io/run")
    {
        out.push(Rule::OwnPod);
    }
    out
}

/// What no fault may take down: the explicit rules, opt-in, and a known controller.
pub fn protection(case: &Case, pod: &Pod) -> Vec<Rule> {
    let mut out = explicit(case, pod);
    let known = workload(case, pod);
    if case.policy.opt_in {
        let ns = case
            .cluster
            .namespaces
            .iter()
            .find(|n| n.name == pod.namespace);
        let ns_in = ns.is_some_and(|n| opted(&n.labels) || opted(&n.annotations));
        let wl_in = known.is_some_and(|o| opted(&o.labels)) || opted(&pod.labels);
        if !ns_in && !wl_in {
            out.push(Rule::OptIn);
        }
    }
    match &pod.owner {
        None => out.push(Rule::NoController),
        Some(o) if matches!(o.kind, OwnerKind::Other(_)) => out.push(Rule::NotRecreating),
        Some(_) if known.is_none() => out.push(Rule::NotInSnapshot),
        Some(_) => {}
    }
    out
}

/// Every rule that keeps a pod from being picked before counting anything.
pub fn static_rules(case: &Case, pod: &Pod) -> Vec<Rule> {
    let mut out = protection(case, pod);
    if !pod.running_and_ready {
        out.push(Rule::NotReady);
    }
    if NOW - pod.created < case.policy.min_pod_age.as_secs() as i64 {
        out.push(Rule::Young);
    }
    let cooldown = case.policy.cooldown.as_secs() as i64;
    if cooldown > 0
        && case
            .hits
            .iter()
            .any(|(o, at)| Some(o) == pod.owner.as_ref() && NOW - at < cooldown)
    {
        out.push(Rule::Cooldown);
    }
    out
}

pub fn ready_pods(case: &Case, owner: &OwnerRef) -> i64 {
    case.cluster
        .pods
        .iter()
        .filter(|p| p.owner.as_ref() == Some(owner) && p.running_and_ready)
        .count() as i64
}

/// The ready pods a workload keeps: the highest rule covering the pod, else one.
pub fn floor_of(case: &Case, pod: &Pod, owner: &Owner) -> i64 {
    case.policy
        .min_healthy
        .iter()
        .zip(&case.rule_sels)
        .filter(|(r, sel)| r.namespace == pod.namespace && sel.matches(&pod.labels))
        .map(|(r, _)| match r.min {
            Quantity::Count(n) => n as i64,
            Quantity::Percent(p) => {
                (i64::from(p.hundredths()) * i64::from(owner.desired) + 9_999) / 10_000
            }
        })
        .max()
        .unwrap_or(1)
}

pub fn pdb_selects(case: &Case, k: usize, pod: &Pod) -> bool {
    let pdb = &case.cluster.pdbs[k];
    pdb.namespace == pod.namespace && case.pdb_sels[k].matches(&pod.labels)
}

/// The disruptions PodDisruptionBudget `k` allows, as the disruption controller counts.
pub fn pdb_allows(case: &Case, k: usize) -> i64 {
    let pdb = &case.cluster.pdbs[k];
    let selected: Vec<&Pod> = case
        .cluster
        .pods
        .iter()
        .filter(|p| pdb_selects(case, k, p))
        .collect();
    let healthy = selected.iter().filter(|p| p.running_and_ready).count() as i64;
    let mut owners_seen = HashSet::new();
    let mut expected = 0i64;
    for p in &selected {
        match workload(case, p) {
            Some(w) => {
                if owners_seen.insert(w.key.clone()) {
                    expected += i64::from(w.desired);
                }
            }
            None => expected += 1,
        }
    }
    let expected = expected.max(selected.len() as i64);
    let spec = match (pdb.min_available, pdb.max_unavailable) {
        (Some(IntOrPercent::Int(n)), _) => healthy - i64::from(n),
        (Some(IntOrPercent::Percent(p)), _) => {
            healthy - (i64::from(p.hundredths()) * expected + 9_999) / 10_000
        }
        (None, Some(IntOrPercent::Int(n))) => healthy - (expected - i64::from(n)),
        (None, Some(IntOrPercent::Percent(p))) => {
            healthy - (expected - i64::from(p.hundredths()) * expected / 10_000)
        }
        (None, None) => 0,
    };
    pdb.disruptions_allowed
        .map_or(spec, |s| spec.min(i64::from(s)))
        .max(0)
}

/// Whether taking `down` (ready pods with a known workload) breaks a floor or a budget, for
/// the workloads and budgets of the pods in `judged`.
pub fn floors_broken(case: &Case, down: &[&Pod], judged: &[&Pod]) -> BTreeSet<Rule> {
    let mut out = BTreeSet::new();
    for pod in judged {
        let Some(w) = workload(case, pod) else {
            continue;
        };
        let taken = down
            .iter()
            .filter(|d| d.owner.as_ref() == Some(&w.key))
            .count() as i64;
        if ready_pods(case, &w.key) - taken < floor_of(case, pod, w) {
            out.insert(Rule::MinHealthy);
        }
        for k in (0..case.cluster.pdbs.len()).filter(|&k| pdb_selects(case, k, pod)) {
            let hit = down.iter().filter(|d| pdb_selects(case, k, d)).count() as i64;
            if hit > pdb_allows(case, k) {
                out.insert(Rule::Budget);
            }
        }
    }
    out
}

/// Counts of what the cases exercised, printed as one line and asserted on.
pub struct Tally {
    pub cases: usize,
    pub seen: Vec<(&'static str, usize)>,
}

impl Tally {
    pub fn new(names: &[&'static str]) -> Self {
        Tally {
            cases: 0,
            seen: names.iter().map(|n| (*n, 0)).collect(),
        }
    }

    pub fn case(&mut self, hit: &BTreeSet<&'static str>) {
        self.cases += 1;
        for (name, count) in &mut self.seen {
            if hit.contains(name) {
                *count += 1;
            }
        }
    }

    pub fn share(&self, name: &str) -> f64 {
        let count = self
            .seen
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| *c);
        count as f64 / self.cases.max(1) as f64
    }

    pub fn line(&self, test: &str) -> String {
        let parts: Vec<String> = self
            .seen
            .iter()
            .map(|(name, _)| format!("{name} {:.0}%", self.share(name) * 100.0))
            .collect();
        format!(
            "coverage: {test} ({} cases): {}",
            self.cases,
            parts.join(", ")
        )
    }

    /// Prints the line, then fails when a rule was exercised by too few cases.
    pub fn assert(&self, test: &str, floors: &[(&str, f64)]) {
        let line = self.line(test);
        crate::support::coverage(&line);
        for (name, least) in floors {
            assert!(
                self.share(name) >= *least,
                "{test}: only {:.1}% of cases exercised {name} (at least {:.0}% needed): {line}",
                self.share(name) * 100.0,
                least * 100.0
            );
        }
    }
}

/// Runs `cases` generated cases through `test`, which says what each exercised. Failures are
/// persisted beside the calling test's file (`verdict.proptest-regressions`), and replayed first
/// on every run. Said outright: proptest's default looks for a `lib.rs` or `main.rs` above the
/// file, finds none above `tests/`, and lands there only by its fallback, with a warning that
/// reads as if nothing was saved.
#[track_caller]
pub fn run_counted<S: Strategy>(
    cases: u32,
    strategy: S,
    tally: &RefCell<Tally>,
    test: impl Fn(S::Value) -> Result<BTreeSet<&'static str>, TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(Config {
        cases,
        source_file: Some(std::panic::Location::caller().file()),
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    });
    let result = runner.run(&strategy, |value| {
        let hit = test(value)?;
        tally.borrow_mut().case(&hit);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Node cases: a case with its pods spread over three to six nodes (a few unscheduled,
/// some nodes cordoned or not Ready, sometimes one missing from the snapshot). A node fault
/// judges the nodes of the pods its fire chose, so cases whose fire chooses nothing are mostly
/// skipped (one in ten is kept, for the blocked path); the filter shapes the input only, the
/// oracle judges it.
pub fn arb_node_case() -> impl Strategy<Value = (Case, Reach, usize)> {
    arb_node_case_of(
        prop_oneof![6 => Just(true), 5 => Just(false)].prop_flat_map(|drain| {
            if drain {
                drains().boxed()
            } else {
                stresses().boxed()
            }
        }),
    )
}

pub fn drains() -> impl Strategy<Value = Reach> {
    Just(Reach::Drain)
}

/// CPU and I/O stress judge explicit protection only, so they decide few rules: the smallest
/// share. A memory stress's load is mostly modest, so it is refused for a full node about as
/// often as for a high load.
pub fn stresses() -> impl Strategy<Value = Reach> {
    prop_oneof![
        4 => prop_oneof![1 => 1u32..=100, 2 => 1u32..=40].prop_map(|p| Reach::Stress {
            may_evict: true,
            memory_percent: Some(p),
        }),
        1 => Just(Reach::Stress {
            may_evict: false,
            memory_percent: None,
        }),
    ]
}

/// [`arb_node_case`] with the fault's reach drawn from `reach`.
pub fn arb_node_case_of(
    reach: impl Strategy<Value = Reach>,
) -> impl Strategy<Value = (Case, Reach, usize)> {
    (
        arb_case(0.5),
        3usize..=6,
        prop::collection::vec(
            prop_oneof![97 => (0usize..6).prop_map(Some), 3 => Just(None)],
            60,
        ),
        prop::collection::vec((prop::bool::weighted(0.15), prop::bool::weighted(0.9)), 6),
        prop::bool::weighted(0.1),
        reach,
        prop::bool::weighted(0.1),
        (1usize..=3, prop::bool::weighted(0.6)),
        (
            prop::collection::vec(arb_pod_scheduling(), 60),
            prop::collection::vec(arb_node_capacity(), 6),
        ),
    )
        .prop_map(
            |(
                mut case,
                n,
                placement,
                flags,
                missing,
                reach,
                keep_blocked,
                (max_nodes, budget),
                (pod_scheduling, node_capacity),
            )| {
                if budget {
                    case.policy.kube_system_neighbours = KubeSystemNeighbours::Budget;
                }
                let placement: Vec<Option<usize>> =
                    placement.into_iter().map(|p| p.map(|p| p % n)).collect();
                for (i, pod) in case.cluster.pods.iter_mut().enumerate() {
                    pod.node = placement[i % placement.len()].map(|k| format!("n{k}"));
                    let (requests, pool, tolerates) = pod_scheduling[i % 60];
                    pod.requests = requests;
                    if let Some(pool) = pool {
                        pod.placement
                            .node_selector
                            .insert("pool".into(), pool.into());
                    }
                    if tolerates {
                        pod.placement.tolerations.push(Toleration {
                            key: "dedicated".into(),
                            value: "x".into(),
                            ..Toleration::default()
                        });
                    }
                }
                // Sometimes the last node is missing from the snapshot.
                let listed = if missing { n - 1 } else { n };
                case.cluster.nodes = (0..listed)
                    .map(|i| {
                        let (allocatable, pool, taint) = node_capacity[i];
                        Node {
                            name: format!("n{i}"),
                            unschedulable: flags[i].0,
                            ready: flags[i].1,
                            labels: Labels::from([("pool".into(), pool.into())]),
                            allocatable,
                            taints: taint
                                .map(|effect| Taint {
                                    key: "dedicated".into(),
                                    value: "x".into(),
                                    effect,
                                })
                                .into_iter()
                                .collect(),
                        }
                    })
                    .collect();
                (case, reach, keep_blocked, max_nodes)
            },
        )
        .prop_filter("the fire chooses no pod", |(case, _, keep_blocked, _)| {
            *keep_blocked || !verdict(case).targets.is_empty()
        })
        .prop_map(|(case, reach, _, max_nodes)| (case, reach, max_nodes))
}

/// A pod's requests (often none), sometimes a nodeSelector on `pool`, sometimes a toleration
/// of the `dedicated=x` taint.
pub fn arb_pod_scheduling() -> impl Strategy<Value = (Resources, Option<&'static str>, bool)> {
    (
        prop_oneof![1 => Just(0u64), 4 => 1u64..16].prop_map(|c| c * 100),
        prop_oneof![1 => Just(0u64), 4 => 1u64..16].prop_map(|m| m << 27),
        prop_oneof![8 => Just(None), 1 => Just(Some("a")), 1 => Just(Some("b"))],
        prop::bool::weighted(0.3),
    )
        .prop_map(|(cpu, memory, pool, tolerates)| {
            (
                Resources {
                    cpu_millis: cpu,
                    memory_bytes: memory,
                },
                pool,
                tolerates,
            )
        })
}

/// A node's allocatable (now and then not given), its `pool` label and a `dedicated=x` taint.
pub fn arb_node_capacity(
) -> impl Strategy<Value = (Option<Resources>, &'static str, Option<TaintEffect>)> {
    (
        prop::option::weighted(
            0.95,
            (6u64..=32, 6u64..=32).prop_map(|(c, m)| Resources {
                cpu_millis: c * 500,
                memory_bytes: m << 30,
            }),
        ),
        prop_oneof![Just("a"), Just("b")],
        prop_oneof![
            12 => Just(None),
            2 => Just(Some(TaintEffect::NoSchedule)),
            1 => Just(Some(TaintEffect::PreferNoSchedule)),
            1 => Just(Some(TaintEffect::NoExecute)),
        ],
    )
}
