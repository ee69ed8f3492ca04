//! A scenario's steps judged together (#26, must-show 2): no accepted scenario, taken step by step
//! with [`judged_after`], crosses a `min_healthy` floor, a PodDisruptionBudget or the shared caps
//! that the steps' sum would cross. Each step is decided on the cluster and policy as the steps
//! before it left them; an oracle then judges the union of everything the accepted steps took
//! against the ORIGINAL cluster, as if one drill had taken it all at once.

mod common;
#[path = "../../runner/tests/support/skip.rs"]
mod support;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};

use common::*;
use firedrill_safety::cluster::{Cluster, OwnerKind, Pod};
use firedrill_safety::nodes::{decide_on_nodes, Reach};
use firedrill_safety::scenario::{judged_after, Held};
use firedrill_safety::verdict::{decide, latest_hits, ClusterIndex, Request, Verdict};
use firedrill_safety::{Amount, Percent, PercentRange, Target};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

/// One step: a pod kill (the verdict alone) or a node drain of at most `max_nodes` nodes, with its
/// own targets (the oracle's selectors beside them) and seed.
#[derive(Clone, Debug)]
struct Step {
    drain: Option<usize>,
    targets: Vec<Target>,
    sels: Vec<Sel>,
    seed: u64,
}

type TargetGen = (Index, (u8, Index, Index), Amount);

fn arb_target() -> impl Strategy<Value = TargetGen> {
    (
        any::<Index>(),
        arb_sel(),
        prop_oneof![
            3 => (1u32..5).prop_map(Amount::Count),
            1 => (20u32..=100).prop_map(|lo| Amount::Percent(PercentRange {
                low: Percent::from_hundredths(lo * 100).unwrap(),
                high: Percent::from_hundredths(lo * 100).unwrap(),
            })),
        ],
    )
}

/// A cluster with nodes (its own fire mostly picks something), and 2 to 4 steps: most pod kills,
/// some drains; the first step often takes the case's own targets, so that later steps aim at
/// the same workloads.
fn arb_scenario() -> impl Strategy<Value = (Case, Vec<Step>)> {
    let steps = prop::collection::vec(
        (
            prop::option::weighted(0.3, 1usize..=2),
            prop::collection::vec(arb_target(), 1..3),
            any::<u64>(),
        ),
        2..=4,
    );
    (arb_node_case_of(drains()), steps, prop::bool::weighted(0.5)).prop_map(
        |((mut case, _, _), steps, first_is_case)| {
            // Caps that bind across steps more often than the verdict test's.
            if case.policy.max_targets == 1000 && case.seed % 3 == 0 {
                case.policy.max_targets = 2 + (case.seed % 5) as u32;
            }
            let apps = case.cluster.owners.len().max(1);
            let steps = steps
                .into_iter()
                .enumerate()
                .map(|(k, (drain, targets, seed))| {
                    let (targets, sels) = if k == 0 && first_is_case {
                        (case.targets.clone(), case.target_sels.clone())
                    } else {
                        targets
                            .into_iter()
                            .map(|(w, (s, _, b), amount)| {
                                let sel = make_sel(s, &w, &b, workloads(&case.cluster), 30);
                                let t = Target {
                                    namespace: namespace_of(&case.cluster, w.index(apps)),
                                    selector: sel.selector(),
                                    amount,
                                };
                                (t, sel)
                            })
                            .unzip()
                    };
                    Step {
                        drain,
                        targets,
                        sels,
                        seed,
                    }
                })
                .collect();
            (case, steps)
        },
    )
}

/// How many workloads the case generated (`w0`, `w1`, ...: listed or not).
fn workloads(cluster: &Cluster) -> usize {
    cluster
        .pods
        .iter()
        .filter_map(|p| {
            p.labels
                .get("app")?
                .strip_prefix('w')?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map_or(1, |n| n + 1)
}

/// The namespace of workload `w{i}` (of its pods), or of the first pod.
fn namespace_of(cluster: &Cluster, i: usize) -> String {
    let app = format!("w{}", i % workloads(cluster));
    cluster
        .pods
        .iter()
        .find(|p| p.labels.get("app") == Some(&app))
        .or(cluster.pods.first())
        .map(|p| p.namespace.clone())
        .unwrap_or_default()
}

/// What one step decides on `cluster` and `policy`: the verdict, and the pods its drain evicts.
fn decide_step(
    case: &Case,
    step: &Step,
    cluster: &Cluster,
    policy: &firedrill_safety::Policy,
) -> (Verdict, Option<firedrill_safety::nodes::NodeVerdict>) {
    let hits = latest_hits(case.hits.iter().cloned());
    let request = Request {
        drill: "scenario",
        seed: step.seed,
        now: NOW,
        targets: &step.targets,
        policy,
        own_namespace: OWN_NAMESPACE,
        recent_hits: &hits,
    };
    match step.drain {
        None => (decide(cluster, &request), None),
        Some(max_nodes) => {
            let (v, nodes) = decide_on_nodes(
                &ClusterIndex::new(cluster),
                &request,
                Reach::Drain,
                max_nodes,
            );
            (v, Some(nodes))
        }
    }
}

/// The pods `step`'s targets match in the original cluster, by the oracle's selectors.
fn matched<'c>(case: &'c Case, step: &Step) -> Vec<&'c Pod> {
    case.cluster
        .pods
        .iter()
        .filter(|p| {
            step.targets
                .iter()
                .zip(&step.sels)
                .any(|(t, s)| t.namespace == p.namespace && s.matches(&p.labels))
        })
        .collect()
}

/// Part of its node rather than a workload on it (a DaemonSet's or a mirror pod): a drain leaves
/// it running.
fn is_plumbing(pod: &Pod) -> bool {
    pod.owner.as_ref().is_some_and(|o| {
        o.kind == OwnerKind::DaemonSet || o.kind == OwnerKind::Other("Node".into())
    })
}

/// Runs the scenario step by step, then judges what the accepted steps took together.
fn check_scenario(case: &Case, steps: &[Step]) -> Result<BTreeSet<&'static str>, TestCaseError> {
    let mut hit = BTreeSet::new();
    let mut held = Held::default();
    let pods: HashMap<(&str, &str), &Pod> = case
        .cluster
        .pods
        .iter()
        .map(|p| ((p.namespace.as_str(), p.name.as_str()), p))
        .collect();
    // What the accepted steps took down (targets and drained neighbours), their hits and the
    // pods they matched, by the oracle's own reckoning.
    let mut down: BTreeSet<(&str, &str)> = BTreeSet::new();
    // Every pod a step took as a target (a drain's DaemonSet targets stay up, but stay taken).
    let mut targeted: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut hits = 0usize;
    let mut matched_all: HashSet<(&str, &str)> = HashSet::new();
    let mut accepted = 0;
    for step in steps {
        let (cluster, policy) = judged_after(&case.cluster, &case.policy, &held);
        let (v, nodes) = decide_step(case, step, &cluster, &policy);
        let alone = decide_step(case, step, &case.cluster, &case.policy).0;
        if v.blocked.is_some() {
            prop_assert!(v.targets.is_empty());
            if accepted > 0 && alone.blocked.is_none() {
                hit.insert("refused for earlier steps");
                if step.drain.is_some() {
                    hit.insert("drain refused for earlier steps");
                }
            }
            continue;
        }
        accepted += 1;
        if accepted > 1 && v.targets.len() < alone.targets.len() {
            hit.insert("fewer for earlier steps");
        }
        for e in &v.excluded {
            if accepted > 1 && !alone.excluded.iter().any(|a| a == e) {
                if e.reason.contains("PodDisruptionBudget") {
                    hit.insert("budget for earlier steps");
                } else if e.reason.contains("min_healthy is") {
                    hit.insert("min_healthy for earlier steps");
                } else if e.reason.contains("by earlier steps") {
                    hit.insert("shared cap");
                }
            }
        }
        let targets: Vec<&Pod> = v
            .targets
            .iter()
            .map(|t| pods[&(t.namespace.as_str(), t.name.as_str())])
            .collect();
        for t in &targets {
            let t = (t.namespace.as_str(), t.name.as_str());
            prop_assert!(
                !down.contains(&t) && !targeted.contains(&t),
                "{t:?} taken by two steps"
            );
        }
        targeted.extend(
            targets
                .iter()
                .map(|p| (p.namespace.as_str(), p.name.as_str())),
        );
        // What the step takes down: a pod kill, its targets; a drain, the pods it evicts from
        // the nodes it takes. Those hold every target of the drain but node plumbing (a
        // DaemonSet's or a mirror pod), which a drain leaves running: it spends no floor.
        let took: Vec<(&str, &str)> = match &nodes {
            None => targets
                .iter()
                .map(|p| (p.namespace.as_str(), p.name.as_str()))
                .collect(),
            Some(nodes) => {
                let evicted: Vec<(&str, &str)> = nodes
                    .nodes
                    .iter()
                    .flat_map(|n| &n.pods)
                    .map(|p| {
                        let p = pods[&(p.namespace.as_str(), p.name.as_str())];
                        (p.namespace.as_str(), p.name.as_str())
                    })
                    .collect();
                for t in targets.iter().filter(|t| !is_plumbing(t)) {
                    prop_assert!(
                        evicted.contains(&(t.namespace.as_str(), t.name.as_str())),
                        "{}/{} is a target of the drain, but not evicted: {:?}",
                        t.namespace,
                        t.name,
                        evicted
                    );
                }
                held.add_nodes(nodes, true);
                hit.insert("drain accepted");
                evicted
            }
        };
        held.add(&v);
        hits += v.targets.len();
        down.extend(took);
        matched_all.extend(
            matched(case, step)
                .into_iter()
                .map(|p| (p.namespace.as_str(), p.name.as_str())),
        );
    }
    if accepted >= 2 {
        hit.insert("2+ steps accepted");
    }
    if accepted >= 3 {
        hit.insert("3+ steps accepted");
    }

    // The oracle: everything taken at once, against the original cluster. Only pods that were
    // healthy spend a floor or a disruption.
    let healthy: Vec<&Pod> = down
        .iter()
        .map(|k| pods[k])
        .filter(|p| p.running_and_ready && workload(case, p).is_some())
        .collect();
    let broken = floors_broken(case, &healthy, &healthy);
    prop_assert!(
        broken.is_empty(),
        "the accepted steps together break {broken:?}: {:?}",
        down
    );
    let p = &case.policy;
    let blast = u64::from(p.max_blast_radius.hundredths()) * matched_all.len() as u64 / 10_000;
    let cap = blast.min(u64::from(p.max_targets)) as usize;
    prop_assert!(
        hits <= cap,
        "{hits} hits in all, but the shared cap is {cap} ({} of {} matched, max_targets {})",
        p.max_blast_radius,
        matched_all.len(),
        p.max_targets
    );
    if accepted >= 2 && hits == cap {
        hit.insert("at the shared cap");
    }
    Ok(hit)
}

#[test]
fn no_scenario_crosses_a_floor_its_steps_together_would() {
    let tally = RefCell::new(Tally::new(&[
        "2+ steps accepted",
        "3+ steps accepted",
        "refused for earlier steps",
        "fewer for earlier steps",
        "min_healthy for earlier steps",
        "budget for earlier steps",
        "shared cap",
        "at the shared cap",
        "drain accepted",
        "drain refused for earlier steps",
    ]));
    run_counted(2_000, arb_scenario(), &tally, |(case, steps)| {
        check_scenario(&case, &steps)
    });
    tally.borrow().assert(
        "no_scenario_crosses_a_floor_its_steps_together_would",
        &[
            ("2+ steps accepted", 0.25),
            ("refused for earlier steps", 0.30),
            ("min_healthy for earlier steps", 0.05),
            ("budget for earlier steps", 0.01),
            ("shared cap", 0.03),
            ("drain accepted", 0.10),
            ("drain refused for earlier steps", 0.07),
        ],
    );
}

/// The first failure on main (#26 must-show 2), the minimal input proptest printed, as it was:
/// pdb0 (`ai`, every `app`, minAvailable 13) covers 15 ready pods and allows 2 disruptions. The
/// first step, a drain, takes the DaemonSet pods `w0-0` and `w0-6` as its targets (their node n3
/// is what it drains) and evicts `w2-7`, its one neighbour that is not node plumbing: one
/// disruption, not three, for a drain leaves DaemonSet pods running.
#[test]
fn regression_a_drains_daemonset_targets_are_not_evicted() {
    use firedrill_safety::cluster::{
        IntOrPercent, Labels, Namespace, Node, Owner, OwnerRef, Pdb, Placement, Resources, Taint,
        TaintEffect, Toleration,
    };
    use firedrill_safety::{MinHealthy, Quantity, Selector};
    let key = |kind, ns: &str, name: &str| OwnerRef {
        kind,
        namespace: ns.into(),
        name: name.into(),
    };
    let w0 = key(OwnerKind::DaemonSet, "ai", "w0");
    let w1 = key(OwnerKind::Deployment, "apps", "w1");
    let w2 = key(OwnerKind::Deployment, "ai", "w2");
    let app = |w: &str| {
        let mut l = labels(&[("app", w), ("role", "replica"), ("tier", "b")]);
        if w == "w2" {
            l.insert("firedrill.io/enabled".into(), "true".into());
        }
        l
    };
    // (name, ready, age in seconds, node, cpu millis, memory in 2^27 bytes, pool, tolerates)
    type Row = (
        &'static str,
        bool,
        i64,
        &'static str,
        u64,
        u64,
        &'static str,
        bool,
    );
    let rows: [Row; 19] = [
        ("w0-0", true, 600, "n3", 1000, 4, "", false),
        ("w0-1", true, 1613, "n0", 0, 10, "", true),
        ("w0-2", true, 2626, "n0", 0, 0, "", false),
        ("w0-3", true, 3639, "n2", 100, 6, "", false),
        ("w0-4", true, 4652, "n2", 200, 10, "", false),
        ("w0-5", true, 5665, "n3", 700, 0, "", false),
        ("w0-6", true, 678, "n3", 1200, 14, "", false),
        ("w0-7", true, 1691, "n3", 100, 8, "a", true),
        ("w1-0", true, 600, "n0", 100, 5, "", false),
        ("w1-1", true, 1613, "n1", 200, 0, "", true),
        ("w1-2", true, 2626, "n0", 1500, 14, "", false),
        ("w2-0", true, 600, "n0", 900, 7, "", false),
        ("w2-1", true, 1613, "n4", 100, 2, "", false),
        ("w2-2", true, 2626, "n2", 1500, 1, "b", true),
        ("w2-3", false, 308, "n2", 500, 11, "", false),
        ("w2-4", true, 4652, "n0", 400, 12, "", true),
        ("w2-5", true, 5665, "n4", 200, 13, "", false),
        ("w2-6", true, 17, "n1", 800, 8, "b", false),
        ("w2-7", true, 1691, "n3", 0, 0, "", false),
    ];
    let pods = rows
        .iter()
        .map(|&(name, ready, age, node, cpu, mem, pool, tolerates)| {
            let w = &name[..2];
            let owner = [&w0, &w1, &w2][usize::from(name.as_bytes()[1] - b'0')].clone();
            Pod {
                namespace: owner.namespace.clone(),
                name: name.into(),
                labels: app(w),
                owner: Some(owner),
                running_and_ready: ready,
                phase: "Running".into(),
                created: NOW - age,
                node: Some(node.into()),
                requests: Resources {
                    cpu_millis: cpu,
                    memory_bytes: mem << 27,
                },
                placement: Placement {
                    node_selector: if pool.is_empty() {
                        Labels::new()
                    } else {
                        labels(&[("pool", pool)])
                    },
                    affinity: None,
                    tolerations: if tolerates {
                        vec![Toleration {
                            key: "dedicated".into(),
                            value: "x".into(),
                            ..Toleration::default()
                        }]
                    } else {
                        vec![]
                    },
                },
            }
        })
        .collect();
    let opted = labels(&[("firedrill.io/enabled", "true")]);
    let namespaces = [
        ("apps", false, false),
        ("db", false, true),
        ("ai", true, true),
        ("kube-system", true, false),
        ("firedrill", true, false),
    ]
    .map(|(name, l, a)| Namespace {
        name: name.into(),
        labels: if l { opted.clone() } else { Labels::new() },
        annotations: if a { opted.clone() } else { Labels::new() },
    })
    .to_vec();
    // (name, cordoned, pool, allocatable in millis and GiB, dedicated=x:NoSchedule)
    let nodes = [
        ("n0", true, "b", Some((8000, 15)), true),
        ("n1", false, "b", Some((6000, 27)), false),
        ("n2", false, "b", Some((14500, 13)), false),
        ("n3", false, "a", None, false),
        ("n4", true, "b", Some((16000, 28)), false),
    ]
    .map(|(name, cordoned, pool, room, tainted)| Node {
        name: name.into(),
        unschedulable: cordoned,
        ready: true,
        labels: labels(&[("pool", pool)]),
        allocatable: room.map(|(cpu, gib): (u64, u64)| Resources {
            cpu_millis: cpu,
            memory_bytes: gib << 30,
        }),
        taints: tainted
            .then(|| Taint {
                key: "dedicated".into(),
                value: "x".into(),
                effect: TaintEffect::NoSchedule,
            })
            .into_iter()
            .collect(),
    })
    .to_vec();
    let cluster = Cluster {
        namespaces,
        owners: vec![
            Owner {
                key: w0.clone(),
                labels: app("w0"),
                desired: 8,
            },
            Owner {
                key: w2.clone(),
                labels: app("w2"),
                desired: 7,
            },
        ],
        pods,
        pdbs: vec![Pdb {
            namespace: "ai".into(),
            name: "pdb0".into(),
            selector: Some(Selector::parse("app").unwrap()),
            min_available: Some(IntOrPercent::Int(13)),
            max_unavailable: None,
            disruptions_allowed: None,
        }],
        nodes,
        ..Cluster::default()
    };
    let target = |ns: &str, s: &Sel, amount| Target {
        namespace: ns.into(),
        selector: s.selector(),
        amount,
    };
    let share = |low: u32, high: u32| {
        Amount::Percent(PercentRange {
            low: Percent::from_hundredths(low).unwrap(),
            high: Percent::from_hundredths(high).unwrap(),
        })
    };
    let eq = |w: &str| Sel::Eq("app", w.into());
    let within = |a: &str, b: &str| Sel::In("app", vec![a.into(), b.into()]);
    let case_sels = vec![Sel::Exists("app"), eq("w1"), Sel::All];
    let case_targets = vec![
        target("apps", &case_sels[0], Amount::Count(5)),
        target("apps", &case_sels[1], share(7000, 10000)),
        target("ai", &case_sels[2], Amount::Count(8)),
    ];
    let rule_sels = vec![eq("w2"), within("w2", "w1"), within("w2", "w0")];
    let policy = firedrill_safety::Policy {
        min_healthy: rule_sels
            .iter()
            .zip([2, 5, 6])
            .map(|(s, min)| MinHealthy {
                namespace: "ai".into(),
                selector: s.selector(),
                min: Quantity::Count(min),
            })
            .collect(),
        max_blast_radius: Percent::HUNDRED,
        max_targets: 1000,
        min_pod_age: std::time::Duration::from_secs(600),
        ..firedrill_safety::Policy::default()
    };
    let case = Case {
        cluster,
        targets: case_targets.clone(),
        policy,
        hits: vec![(w2, 1_799_995_551)],
        seed: 11_123_115_819_184_988_087,
        target_sels: case_sels.clone(),
        pdb_sels: vec![Sel::Exists("app")],
        rule_sels,
        globs: vec![],
        never: vec![],
    };
    let steps = [
        Step {
            drain: Some(2),
            targets: case_targets,
            sels: case_sels,
            seed: 9_963_017_007_987_079_687,
        },
        Step {
            drain: None,
            targets: vec![
                target("ai", &eq("w0"), Amount::Count(2)),
                target("ai", &Sel::All, Amount::Count(2)),
            ],
            sels: vec![eq("w0"), Sel::All],
            seed: 3_880_221_511_463_151_230,
        },
        Step {
            drain: Some(1),
            targets: vec![
                target("apps", &Sel::All, Amount::Count(1)),
                target("ai", &Sel::All, share(6600, 6600)),
            ],
            sels: vec![Sel::All, Sel::All],
            seed: 5_518_342_830_058_487_097,
        },
        Step {
            drain: Some(1),
            targets: vec![target("apps", &eq("w1"), share(8000, 8000))],
            sels: vec![eq("w1")],
            seed: 15_763_372_255_323_106_151,
        },
    ];
    // The drain takes n3 for its DaemonSet targets and evicts w2-7 alone: 1 of the 2 allowed.
    let (v, nodes) = decide_step(&case, &steps[0], &case.cluster, &case.policy);
    let targets: Vec<&str> = v.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(targets, ["w0-0", "w0-6"]);
    let evicted: Vec<(&str, Vec<&str>)> = nodes
        .iter()
        .flat_map(|n| &n.nodes)
        .map(|n| {
            (
                n.node.as_str(),
                n.pods.iter().map(|p| p.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(evicted, [("n3", vec!["w2-7"])]);
    if let Err(e) = check_scenario(&case, &steps) {
        panic!("{e}");
    }
}
