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
use firedrill_safety::cluster::{Cluster, Pod};
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
        let mut took: Vec<(&str, &str)> = v
            .targets
            .iter()
            .map(|t| {
                let p = pods[&(t.namespace.as_str(), t.name.as_str())];
                (p.namespace.as_str(), p.name.as_str())
            })
            .collect();
        for t in &took {
            prop_assert!(!down.contains(t), "{t:?} taken by two steps");
        }
        if let Some(nodes) = &nodes {
            for p in nodes.nodes.iter().flat_map(|n| &n.pods) {
                let p = pods[&(p.namespace.as_str(), p.name.as_str())];
                took.push((p.namespace.as_str(), p.name.as_str()));
            }
            held.add_nodes(nodes, true);
            hit.insert("drain accepted");
        }
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
