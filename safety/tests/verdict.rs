//! The guard's verdicts: each rule on its own, then properties over generated clusters.

use std::collections::BTreeMap;
use std::time::Duration;

use firedrill_safety::cluster::{
    Cluster, IntOrPercent, Labels, Namespace, Node, Owner, OwnerKind, OwnerRef, Pdb, Pod,
};
use firedrill_safety::nodes::{on_nodes, Reach};
use firedrill_safety::verdict::{
    decide, decide_on, latest_hits, seed, ClusterIndex, RecentHits, Request, Verdict,
};
use firedrill_safety::{
    Amount, MinHealthy, NamespacedGlob, Percent, PercentRange, Policy, Quantity, Selector, Target,
};

const NOW: i64 = 1_800_000_000;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

fn owner(kind: OwnerKind, namespace: &str, name: &str) -> OwnerRef {
    OwnerRef {
        kind,
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// A Deployment with `ready` of `pods` pods ready, all an hour old.
fn deployment(
    cluster: &mut Cluster,
    namespace: &str,
    name: &str,
    pods: u32,
    ready: u32,
    extra: &[(&str, &str)],
) {
    let key = owner(OwnerKind::Deployment, namespace, name);
    let mut pod_labels = labels(&[("app", name)]);
    pod_labels.extend(labels(extra));
    cluster.owners.push(Owner {
        key: key.clone(),
        labels: pod_labels.clone(),
        desired: pods,
    });
    for i in 0..pods {
        cluster.pods.push(Pod {
            namespace: namespace.into(),
            name: format!("{name}-{i}"),
            labels: pod_labels.clone(),
            owner: Some(key.clone()),
            running_and_ready: i < ready,
            phase: if i < ready { "Running" } else { "Pending" }.into(),
            created: NOW - 3600,
            node: None,
        });
    }
}

fn target(namespace: &str, selector: &str, amount: Amount) -> Target {
    Target {
        namespace: namespace.into(),
        selector: Selector::parse(selector).unwrap(),
        amount,
    }
}

fn percent(text: &str) -> Amount {
    Amount::Percent(PercentRange::parse(text).unwrap())
}

fn lenient() -> Policy {
    Policy {
        max_blast_radius: Percent::HUNDRED,
        max_targets: 1000,
        min_pod_age: Duration::ZERO,
        ..Policy::default()
    }
}

fn run(cluster: &Cluster, targets: &[Target], policy: &Policy) -> Verdict {
    run_with(cluster, targets, policy, &[])
}

fn run_with(
    cluster: &Cluster,
    targets: &[Target],
    policy: &Policy,
    hits: &[(OwnerRef, i64)],
) -> Verdict {
    decide(
        cluster,
        &Request {
            drill: "d",
            seed: seed("d", NOW),
            now: NOW,
            targets,
            policy,
            own_namespace: "firedrill",
            recent_hits: &latest_hits(hits.iter().cloned()),
        },
    )
}

fn reasons(v: &Verdict) -> Vec<String> {
    v.excluded
        .iter()
        .map(|e| format!("{}/{}: {}", e.namespace, e.name, e.reason))
        .collect()
}

#[test]
fn min_healthy_is_explained_per_workload() {
    let mut c = Cluster::default();
    deployment(&mut c, "pake-api", "api", 3, 3, &[]);
    let mut policy = lenient();
    policy.min_healthy.push(MinHealthy {
        namespace: "pake-api".into(),
        selector: Selector::parse("app=api").unwrap(),
        min: Quantity::Count(2),
    });
    let v = run(
        &c,
        &[target("pake-api", "app=api", Amount::Count(3))],
        &policy,
    );
    assert_eq!(v.targets.len(), 1, "{v:?}");
    let r = reasons(&v);
    assert_eq!(r.len(), 2);
    assert!(
        r[0].ends_with("would leave Deployment/pake-api/api with 1 ready pod; min_healthy is 2"),
        "{r:?}"
    );
}

#[test]
fn a_workload_never_loses_its_last_ready_pod_unless_a_rule_allows_it() {
    let mut c = Cluster::default();
    deployment(&mut c, "db", "replica", 2, 2, &[]);
    let v = run(
        &c,
        &[target("db", "app=replica", percent("100"))],
        &lenient(),
    );
    assert_eq!(v.targets.len(), 1);
    let mut policy = lenient();
    policy.min_healthy.push(MinHealthy {
        namespace: "db".into(),
        selector: Selector::everything(),
        min: Quantity::Count(0),
    });
    let v = run(&c, &[target("db", "app=replica", percent("100"))], &policy);
    assert_eq!(v.targets.len(), 2);
}

#[test]
fn percent_min_healthy_rounds_up_against_desired_replicas() {
    let mut c = Cluster::default();
    deployment(&mut c, "db", "pg", 5, 5, &[]);
    let mut policy = lenient();
    policy.min_healthy.push(MinHealthy {
        namespace: "db".into(),
        selector: Selector::parse("app=pg").unwrap(),
        min: Quantity::Percent(Percent::parse("50%", false).unwrap()),
    });
    // 50% of 5 is 2.5: three must stay, so two may go.
    let v = run(&c, &[target("db", "app=pg", percent("100"))], &policy);
    assert_eq!(v.targets.len(), 2);
}

#[test]
fn pod_disruption_budgets_hold() {
    let mut c = Cluster::default();
    deployment(&mut c, "pake-ai", "worker", 4, 4, &[]);
    c.pdbs.push(Pdb {
        namespace: "pake-ai".into(),
        name: "worker-pdb".into(),
        selector: Some(Selector::parse("app=worker").unwrap()),
        min_available: Some(IntOrPercent::Int(3)),
        max_unavailable: None,
        disruptions_allowed: None,
    });
    let v = run(
        &c,
        &[target("pake-ai", "app=worker", percent("100"))],
        &lenient(),
    );
    assert_eq!(v.targets.len(), 1);
    assert!(reasons(&v)[0].contains("PodDisruptionBudget pake-ai/worker-pdb (minAvailable 3, 4 of 4 healthy) allows no more disruptions"), "{:?}", reasons(&v));

    // maxUnavailable 50% of 4 is 2; one pod is already unready, so one more may go.
    let mut c = Cluster::default();
    deployment(&mut c, "pake-ai", "worker", 4, 3, &[]);
    c.pdbs.push(Pdb {
        namespace: "pake-ai".into(),
        name: "worker-pdb".into(),
        selector: Some(Selector::parse("app=worker").unwrap()),
        min_available: None,
        max_unavailable: Some(IntOrPercent::Percent(Percent::parse("50%", false).unwrap())),
        disruptions_allowed: None,
    });
    let v = run(
        &c,
        &[target("pake-ai", "app=worker", percent("100"))],
        &lenient(),
    );
    assert_eq!(v.targets.len(), 1, "{:?}", reasons(&v));

    // The status may be stricter than the spec: it wins.
    c.pdbs[0].disruptions_allowed = Some(0);
    let v = run(
        &c,
        &[target("pake-ai", "app=worker", percent("100"))],
        &lenient(),
    );
    assert!(v.targets.is_empty());
    assert!(v
        .blocked
        .as_deref()
        .unwrap_or("")
        .starts_with("nothing may be touched: all 4 matching pods are excluded"));
}

#[test]
fn always_protected_namespaces_and_pods() {
    let mut c = Cluster::default();
    deployment(&mut c, "kube-system", "coredns", 3, 3, &[]);
    deployment(&mut c, "firedrill", "scheduler", 3, 3, &[]);
    deployment(
        &mut c,
        "apps",
        "runner",
        3,
        3,
        &[("firedrill.io/run", "r1")],
    );
    let targets = [
        target("kube-system", "", percent("100")),
        target("firedrill", "", percent("100")),
        target("apps", "", percent("100")),
    ];
    let v = run(&c, &targets, &lenient());
    assert!(v.targets.is_empty());
    let r = reasons(&v);
    assert!(r[0].ends_with("in kube-system, which is always protected"));
    assert!(r[3].ends_with("in firedrill's own namespace firedrill, which is always protected"));
    assert!(r[6].ends_with("one of firedrill's own pods, which are always protected"));
}

#[test]
fn protected_never_target_and_opt_in() {
    let mut c = Cluster::default();
    deployment(&mut c, "monitoring", "prometheus-server", 3, 3, &[]);
    deployment(&mut c, "database", "pg", 3, 3, &[("role", "primary")]);
    deployment(&mut c, "apps", "web", 3, 3, &[]);
    let mut policy = lenient();
    policy
        .protected
        .push(NamespacedGlob::parse("monitoring/prometheus*").unwrap());
    policy
        .never_target
        .push(Selector::parse("role=primary").unwrap());
    policy.opt_in = true;
    let targets = [
        target("monitoring", "", percent("100")),
        target("database", "", percent("100")),
        target("apps", "", percent("100")),
    ];
    let v = run(&c, &targets, &policy);
    assert!(v.targets.is_empty());
    let r = reasons(&v);
    assert!(
        r[0].ends_with("protected by safety.protected monitoring/prometheus*"),
        "{r:?}"
    );
    assert!(
        r[3].ends_with("matches safety.never_target role=primary"),
        "{r:?}"
    );
    assert!(r[6].ends_with("safety.opt_in is on and neither namespace apps nor its workload carries firedrill.io/enabled=true"), "{r:?}");

    // Opting the namespace in by annotation is enough.
    c.namespaces.push(Namespace {
        name: "apps".into(),
        labels: BTreeMap::new(),
        annotations: labels(&[("firedrill.io/enabled", "true")]),
    });
    let v = run(&c, &targets, &policy);
    assert_eq!(v.targets.len(), 2);
}

#[test]
fn age_cooldown_readiness_and_ownership() {
    let mut c = Cluster::default();
    deployment(&mut c, "apps", "web", 3, 2, &[]);
    c.pods[0].created = NOW - 60;
    c.pods.push(Pod {
        namespace: "apps".into(),
        name: "bare".into(),
        labels: labels(&[("app", "web")]),
        owner: None,
        running_and_ready: true,
        phase: "Running".into(),
        created: NOW - 3600,
        node: None,
    });
    c.pods.push(Pod {
        owner: Some(owner(OwnerKind::Other("Job".into()), "apps", "backup")),
        name: "backup-x".into(),
        ..c.pods[3].clone()
    });
    c.pods.push(Pod {
        owner: Some(owner(OwnerKind::Deployment, "apps", "ghost")),
        name: "ghost-x".into(),
        ..c.pods[3].clone()
    });
    let mut policy = lenient();
    policy.min_pod_age = Duration::from_secs(600);
    let v = run(&c, &[target("apps", "app=web", percent("100"))], &policy);
    let r = reasons(&v);
    assert!(
        r.contains(&"apps/web-0: only 1m old; safety.min_pod_age is 10m".to_owned()),
        "{r:?}"
    );
    assert!(
        r.contains(
            &"apps/web-2: not Running and Ready (phase Pending), so not healthy to begin with"
                .to_owned()
        ),
        "{r:?}"
    );
    assert!(
        r.contains(&"apps/bare: has no controller to recreate it".to_owned()),
        "{r:?}"
    );
    assert!(
        r.iter()
            .any(|x| x
                .starts_with("apps/backup-x: owned by Job/apps/backup, which does not recreate")),
        "{r:?}"
    );
    assert!(
        r.iter().any(|x| x.starts_with(
            "apps/ghost-x: its workload Deployment/apps/ghost is not in the cluster snapshot"
        )),
        "{r:?}"
    );
    // web-1 is the only candidate left; taking it would leave web with 1 ready pod (web-0), fine.
    assert_eq!(v.targets.len(), 1);
    assert_eq!(v.targets[0].name, "web-1");

    policy.cooldown = Duration::from_secs(86_400);
    let hits = [(owner(OwnerKind::Deployment, "apps", "web"), NOW - 7200)];
    let v = run_with(
        &c,
        &[target("apps", "app=web", percent("100"))],
        &policy,
        &hits,
    );
    assert!(v.targets.is_empty());
    assert!(reasons(&v).contains(
        &"apps/web-1: its workload Deployment/apps/web was hit 2h ago; safety.cooldown is 1d"
            .to_owned()
    ));
}

#[test]
fn caps_and_amounts() {
    let mut c = Cluster::default();
    deployment(&mut c, "apps", "web", 10, 10, &[]);
    let mut policy = lenient();
    policy.max_blast_radius = Percent::parse("30%", false).unwrap();
    let v = run(&c, &[target("apps", "app=web", percent("100"))], &policy);
    assert_eq!(v.targets.len(), 3);
    assert!(reasons(&v)[0]
        .ends_with("safety.max_blast_radius 30% of 10 matched pods allows 3, all taken"));

    policy.max_targets = 2;
    let v = run(&c, &[target("apps", "app=web", percent("100"))], &policy);
    assert_eq!(v.targets.len(), 2);
    assert!(reasons(&v)[0].ends_with("safety.max_targets 2 reached"));

    let v = run(
        &c,
        &[target("apps", "app=web", percent("25-50"))],
        &lenient(),
    );
    assert!((2..=5).contains(&v.targets.len()), "{v:?}");
    let v = run(
        &c,
        &[target("apps", "app=web", Amount::Count(4))],
        &lenient(),
    );
    assert_eq!(v.targets.len(), 4);
    assert!(
        reasons(&v)[0].ends_with("not picked: this fire takes 4 of the 10 pods target 1 matches")
    );

    let none = run(
        &c,
        &[target("apps", "app=nothing", Amount::Count(1))],
        &lenient(),
    );
    assert_eq!(
        none.blocked.as_deref(),
        Some("no pod matches the drill's targets")
    );
}

#[test]
fn the_same_fire_picks_the_same_pods_and_another_fire_may_not() {
    let mut c = Cluster::default();
    deployment(&mut c, "apps", "web", 20, 20, &[]);
    let t = [target("apps", "app=web", Amount::Count(3))];
    let a = run(&c, &t, &lenient());
    assert_eq!(a, run(&c, &t, &lenient()));
    let other = decide(
        &c,
        &Request {
            drill: "d",
            seed: seed("d", NOW + 86_400),
            now: NOW,
            targets: &t,
            policy: &lenient(),
            own_namespace: "firedrill",
            recent_hits: &RecentHits::new(),
        },
    );
    assert_ne!(
        a.targets, other.targets,
        "different fires should usually differ"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    const NAMESPACES: [&str; 5] = ["kube-system", "firedrill", "apps", "db", "ai"];

    #[derive(Clone, Debug)]
    struct Case {
        cluster: Cluster,
        targets: Vec<Target>,
        policy: Policy,
        hits: Vec<(OwnerRef, i64)>,
        seed: u64,
    }

    fn arb_quantity() -> impl Strategy<Value = IntOrPercent> {
        prop_oneof![
            (0u32..6).prop_map(IntOrPercent::Int),
            (0u32..=100)
                .prop_map(|p| IntOrPercent::Percent(Percent::from_hundredths(p * 100).unwrap())),
        ]
    }

    prop_compose! {
        fn arb_owner(i: usize)(
            ns in 0usize..5,
            kind in prop_oneof![Just(OwnerKind::Deployment), Just(OwnerKind::StatefulSet), Just(OwnerKind::DaemonSet), Just(OwnerKind::Other("Job".into()))],
            desired in 0u32..6,
            primary in any::<bool>(),
            opted in any::<bool>(),
            listed in prop::bool::weighted(0.9),
            pods in prop::collection::vec((any::<bool>(), prop_oneof![0i64..3600, Just(599), Just(600), Just(601)], any::<bool>()), 0..7),
        ) -> (Option<Owner>, Vec<Pod>) {
            let key = OwnerRef { kind, namespace: NAMESPACES[ns].into(), name: format!("w{i}") };
            let mut l = labels(&[("app", &format!("w{i}")), ("role", if primary { "primary" } else { "replica" })]);
            if opted { l.insert("firedrill.io/enabled".into(), "true".into()); }
            let pods = pods.into_iter().enumerate().map(|(j, (ready, age, owned))| Pod {
                namespace: key.namespace.clone(),
                name: format!("w{i}-{j}"),
                labels: l.clone(),
                owner: owned.then(|| key.clone()),
                running_and_ready: ready,
                phase: if ready { "Running" } else { "Pending" }.into(),
                created: NOW - age,
                node: None,
            }).collect();
            (listed.then_some(Owner { key, labels: l, desired }), pods)
        }
    }

    fn arb_case() -> impl Strategy<Value = Case> {
        let owners = (1usize..9).prop_flat_map(|n| (0..n).map(arb_owner).collect::<Vec<_>>());
        let pdbs = prop::collection::vec(
            (
                0usize..5,
                0usize..9,
                prop::option::of(arb_quantity()),
                prop::option::of(arb_quantity()),
                prop::option::of(0u32..4),
            ),
            0..4,
        );
        let targets = prop::collection::vec(
            (
                0usize..5,
                prop::option::of(0usize..9),
                prop_oneof![
                    (1u32..8).prop_map(Amount::Count),
                    (1u32..=100, 0u32..=100).prop_map(|(a, b)| {
                        let (lo, hi) = (a.min(a + b).min(100), (a + b).min(100));
                        Amount::Percent(PercentRange {
                            low: Percent::from_hundredths(lo * 100).unwrap(),
                            high: Percent::from_hundredths(hi * 100).unwrap(),
                        })
                    })
                ],
            ),
            1..4,
        );
        let policy = (
            prop::collection::vec(
                prop_oneof![
                    Just("db/*"),
                    Just("apps/w1*"),
                    Just("ai/w2-0"),
                    Just("*/w3")
                ],
                0..3,
            ),
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec((0usize..5, 0u64..5, any::<bool>()), 0..3),
            1u32..=100,
            1u32..12,
            prop_oneof![Just(0u64), Just(600), 0u64..1800],
            prop_oneof![Just(0u64), Just(3600), 0u64..7200],
        );
        let hits = prop::collection::vec(
            (
                0usize..9,
                prop_oneof![0i64..7200, Just(3599), Just(3600), Just(3601)],
            ),
            0..3,
        );
        let namespaces = prop::collection::vec(any::<bool>(), 5);
        (
            owners,
            pdbs,
            targets,
            policy,
            hits,
            namespaces,
            any::<u64>(),
        )
            .prop_map(|(owners, pdbs, targets, policy, hits, ns_opt, seed)| {
                let mut cluster = Cluster::default();
                let mut keys = Vec::new();
                for (owner, pods) in owners {
                    if let Some(o) = owner {
                        keys.push(o.key.clone());
                        cluster.owners.push(o);
                    }
                    cluster.pods.extend(pods);
                }
                for (i, opted) in ns_opt.into_iter().enumerate() {
                    let mut l = Labels::new();
                    if opted {
                        l.insert("firedrill.io/enabled".into(), "true".into());
                    }
                    cluster.namespaces.push(Namespace {
                        name: NAMESPACES[i].into(),
                        labels: l,
                        annotations: Labels::new(),
                    });
                }
                for (k, (ns, w, min, max, status)) in pdbs.into_iter().enumerate() {
                    cluster.pdbs.push(Pdb {
                        namespace: NAMESPACES[ns].into(),
                        name: format!("pdb{k}"),
                        selector: Some(Selector::parse(&format!("app=w{w}")).unwrap()),
                        min_available: min,
                        max_unavailable: max,
                        disruptions_allowed: status,
                    });
                }
                let targets = targets
                    .into_iter()
                    .map(|(ns, w, amount)| Target {
                        namespace: NAMESPACES[ns].into(),
                        selector: w
                            .map(|w| Selector::parse(&format!("app in (w{w},w{})", w + 1)).unwrap())
                            .unwrap_or_default(),
                        amount,
                    })
                    .collect();
                let (
                    protected,
                    never_primary,
                    opt_in,
                    rules,
                    blast,
                    max_targets,
                    min_age,
                    cooldown,
                ) = policy;
                let policy = Policy {
                    protected: protected
                        .into_iter()
                        .map(|g| NamespacedGlob::parse(g).unwrap())
                        .collect(),
                    never_target: if never_primary {
                        vec![Selector::parse("role=primary").unwrap()]
                    } else {
                        vec![]
                    },
                    opt_in,
                    min_healthy: rules
                        .into_iter()
                        .map(|(ns, n, pct)| MinHealthy {
                            namespace: NAMESPACES[ns].into(),
                            selector: Selector::everything(),
                            min: if pct {
                                Quantity::Percent(
                                    Percent::from_hundredths((n * 2500) as u32).unwrap(),
                                )
                            } else {
                                Quantity::Count(n)
                            },
                        })
                        .collect(),
                    max_blast_radius: Percent::from_hundredths(blast * 100).unwrap(),
                    max_targets,
                    min_pod_age: Duration::from_secs(min_age),
                    cooldown: Duration::from_secs(cooldown),
                    limits: Default::default(),
                };
                let hits = hits
                    .into_iter()
                    .filter_map(|(w, ago)| {
                        keys.get(w % keys.len().max(1))
                            .map(|k| (k.clone(), NOW - ago))
                    })
                    .collect();
                Case {
                    cluster,
                    targets,
                    policy,
                    hits,
                    seed,
                }
            })
    }

    fn verdict(case: &Case) -> Verdict {
        decide(
            &case.cluster,
            &Request {
                drill: "prop",
                seed: case.seed,
                now: NOW,
                targets: &case.targets,
                policy: &case.policy,
                own_namespace: "firedrill",
                recent_hits: &latest_hits(case.hits.iter().cloned()),
            },
        )
    }

    /// The disruptions a PDB allows, computed independently of the engine.
    fn pdb_allows(case: &Case, pdb: &Pdb) -> i64 {
        let selector = pdb.selector.as_ref().unwrap();
        let selected: Vec<&Pod> = case
            .cluster
            .pods
            .iter()
            .filter(|p| p.namespace == pdb.namespace && selector.matches(&p.labels))
            .collect();
        let healthy = selected.iter().filter(|p| p.running_and_ready).count() as i64;
        let mut owners_seen = HashSet::new();
        let mut expected = 0i64;
        for p in &selected {
            match p
                .owner
                .as_ref()
                .and_then(|o| case.cluster.owners.iter().find(|w| &w.key == o))
            {
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
                healthy - (i64::from(p.hundredths()) * expected + 9999) / 10_000
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

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn no_verdict_breaks_a_rule(case in arb_case()) {
            let v = verdict(&case);
            let p = &case.policy;
            let pods: HashMap<(&str, &str), &Pod> = case.cluster.pods.iter().map(|p| ((p.namespace.as_str(), p.name.as_str()), p)).collect();
            let matched: Vec<&Pod> = case.cluster.pods.iter().filter(|pod| case.targets.iter().any(|t| t.namespace == pod.namespace && t.selector.matches(&pod.labels))).collect();

            // Every matched pod is accounted for exactly once.
            let mut seen = HashSet::new();
            for (ns, name) in v.targets.iter().map(|t| (&t.namespace, &t.name)).chain(v.excluded.iter().map(|e| (&e.namespace, &e.name))) {
                prop_assert!(seen.insert((ns.clone(), name.clone())), "{ns}/{name} reported twice");
            }
            prop_assert_eq!(seen.len(), matched.len());
            prop_assert!(v.excluded.iter().all(|e| !e.reason.is_empty()));
            prop_assert_eq!(v.blocked.is_some(), v.targets.is_empty());

            let mut per_owner: HashMap<&OwnerRef, i64> = HashMap::new();
            for chosen in &v.targets {
                let pod = pods[&(chosen.namespace.as_str(), chosen.name.as_str())];
                prop_assert!(pod.namespace != "kube-system" && pod.namespace != "firedrill");
                prop_assert!(!p.protected.iter().any(|g| g.matches(&pod.namespace, &pod.name)));
                let owner = pod.owner.as_ref().expect("chosen pods have owners");
                prop_assert!(!p.protected.iter().any(|g| g.matches(&owner.namespace, &owner.name)));
                prop_assert!(!p.never_target.iter().any(|s| s.matches(&pod.labels)));
                prop_assert!(owner.kind.recreates_pods());
                let workload = case.cluster.owners.iter().find(|o| &o.key == owner).expect("owner in snapshot");
                if p.opt_in {
                    let ns_in = case.cluster.namespaces.iter().any(|n| n.name == pod.namespace && n.labels.get("firedrill.io/enabled").is_some_and(|v| v == "true"));
                    let wl_in = workload.labels.get("firedrill.io/enabled").is_some_and(|v| v == "true");
                    prop_assert!(ns_in || wl_in);
                }
                prop_assert!(pod.running_and_ready);
                prop_assert!(NOW - pod.created >= p.min_pod_age.as_secs() as i64);
                prop_assert!(!case.hits.iter().any(|(o, at)| o == owner && NOW - at < p.cooldown.as_secs() as i64));
                *per_owner.entry(owner).or_default() += 1;
            }
            // min_healthy (and the implicit last pod) per workload.
            for (owner, taken) in &per_owner {
                let workload = case.cluster.owners.iter().find(|o| &o.key == *owner).unwrap();
                let ready = case.cluster.pods.iter().filter(|p| p.owner.as_ref() == Some(*owner) && p.running_and_ready).count() as i64;
                let sample = case.cluster.pods.iter().find(|p| p.owner.as_ref() == Some(*owner)).unwrap();
                let min = p.min_healthy.iter().filter(|r| r.namespace == owner.namespace && r.selector.matches(&sample.labels)).map(|r| r.min.resolve_ceil(u64::from(workload.desired)) as i64).max().unwrap_or(1);
                prop_assert!(ready - taken >= min, "{owner}: {ready} ready, {taken} taken, min {min}");
            }
            // PodDisruptionBudgets.
            for pdb in &case.cluster.pdbs {
                let selector = pdb.selector.as_ref().unwrap();
                let hit = v.targets.iter().filter(|t| t.namespace == pdb.namespace && selector.matches(&pods[&(t.namespace.as_str(), t.name.as_str())].labels)).count() as i64;
                prop_assert!(hit == 0 || hit <= pdb_allows(&case, pdb), "{}: {hit} > {}", pdb.name, pdb_allows(&case, pdb));
            }
            // Caps.
            prop_assert!(v.targets.len() as u64 <= p.max_blast_radius.of_floor(matched.len() as u64));
            prop_assert!(v.targets.len() <= p.max_targets as usize);
        }

        /// Node faults: every pod on an accepted node is judged like a target, and the floors
        /// hold counting every pod the fault takes down on every accepted node.
        #[test]
        fn no_node_fault_breaks_a_rule(
            case in arb_case(),
            placement in prop::collection::vec(0usize..3, 64),
            cordoned in prop::collection::vec(any::<bool>(), 3),
            ready in prop::collection::vec(prop::bool::weighted(0.8), 3),
            listed_nodes in 1usize..=3,
            reach in prop_oneof![Just(Reach::Drain), Just(Reach::Stress { may_evict: true }), Just(Reach::Stress { may_evict: false })],
        ) {
            let mut case = case;
            for (i, pod) in case.cluster.pods.iter_mut().enumerate() {
                pod.node = Some(format!("n{}", placement[i % placement.len()]));
            }
            case.cluster.nodes = (0..listed_nodes).map(|i| Node { name: format!("n{i}"), unschedulable: cordoned[i], ready: ready[i], labels: Labels::new() }).collect();
            let hits = latest_hits(case.hits.iter().cloned());
            let request = Request { drill: "prop", seed: case.seed, now: NOW, targets: &case.targets, policy: &case.policy, own_namespace: "firedrill", recent_hits: &hits };
            let index = ClusterIndex::new(&case.cluster);
            let mut v = decide_on(&index, &request);
            let judged = on_nodes(&index, &request, &v, reach);
            judged.narrow(&mut v, &index);
            let p = &case.policy;
            let accepted: HashSet<&str> = judged.nodes.iter().map(|n| n.node.as_str()).collect();
            let plumbing = |pod: &Pod| pod.owner.as_ref().is_some_and(|o| o.kind == OwnerKind::DaemonSet);
            let listed = |pod: &Pod| p.protected.iter().any(|g| g.matches(&pod.namespace, &pod.name) || pod.owner.as_ref().is_some_and(|o| g.matches(&o.namespace, &o.name))) || p.never_target.iter().any(|s| s.matches(&pod.labels));
            let goes_down = reach != Reach::Stress { may_evict: false };
            let mut down: HashMap<&OwnerRef, i64> = HashMap::new();
            let mut down_pods: Vec<&Pod> = Vec::new();
            for pod in case.cluster.pods.iter().filter(|p| accepted.contains(p.node.as_deref().unwrap())) {
                if plumbing(pod) {
                    prop_assert!(reach == Reach::Drain || !listed(pod), "{}/{} listed and stressed", pod.namespace, pod.name);
                    continue;
                }
                prop_assert!(pod.namespace != "kube-system" && pod.namespace != "firedrill", "{}/{}", pod.namespace, pod.name);
                prop_assert!(!listed(pod), "{}/{} is protected", pod.namespace, pod.name);
                if p.opt_in && goes_down {
                    let ns_in = case.cluster.namespaces.iter().any(|n| n.name == pod.namespace && n.labels.get("firedrill.io/enabled").is_some_and(|v| v == "true"));
                    let wl_in = pod.owner.as_ref().and_then(|o| case.cluster.owners.iter().find(|w| &w.key == o)).is_some_and(|w| w.labels.get("firedrill.io/enabled").is_some_and(|v| v == "true"));
                    prop_assert!(ns_in || wl_in, "{}/{} is not opted in", pod.namespace, pod.name);
                }
                let node = judged.nodes.iter().find(|n| Some(n.node.as_str()) == pod.node.as_deref()).unwrap();
                prop_assert!(node.pods.iter().any(|c| c.namespace == pod.namespace && c.name == pod.name), "{}/{} on {} not listed", pod.namespace, pod.name, node.node);
                if goes_down {
                    let owner = pod.owner.as_ref();
                    prop_assert!(owner.is_some_and(|o| o.kind.recreates_pods() && case.cluster.owners.iter().any(|w| &w.key == o)), "{}/{} cannot come back", pod.namespace, pod.name);
                    if pod.running_and_ready {
                        *down.entry(owner.unwrap()).or_default() += 1;
                        down_pods.push(pod);
                    }
                }
            }
            for (owner, taken) in &down {
                let workload = case.cluster.owners.iter().find(|o| &o.key == *owner).unwrap();
                let ready = case.cluster.pods.iter().filter(|p| p.owner.as_ref() == Some(*owner) && p.running_and_ready).count() as i64;
                let sample = case.cluster.pods.iter().find(|p| p.owner.as_ref() == Some(*owner)).unwrap();
                let min = p.min_healthy.iter().filter(|r| r.namespace == owner.namespace && r.selector.matches(&sample.labels)).map(|r| r.min.resolve_ceil(u64::from(workload.desired)) as i64).max().unwrap_or(1);
                prop_assert!(ready - taken >= min, "{owner}: {ready} ready, {taken} down, min {min}");
            }
            for pdb in &case.cluster.pdbs {
                let selector = pdb.selector.as_ref().unwrap();
                let hit = down_pods.iter().filter(|d| d.namespace == pdb.namespace && selector.matches(&d.labels)).count() as i64;
                prop_assert!(hit == 0 || hit <= pdb_allows(&case, pdb), "{}: {hit} > {}", pdb.name, pdb_allows(&case, pdb));
            }
            if reach == Reach::Drain && judged.nodes.iter().any(|n| !n.was_unschedulable) {
                let left = case.cluster.nodes.iter().filter(|n| !n.unschedulable && n.ready && !accepted.contains(n.name.as_str())).count();
                prop_assert!(left >= 1, "no schedulable node left");
                prop_assert!(judged.nodes.iter().all(|n| case.cluster.nodes.iter().any(|k| k.name == n.node)));
            }
            for t in &v.targets {
                let pod = case.cluster.pods.iter().find(|p| p.namespace == t.namespace && p.name == t.name).unwrap();
                prop_assert!(accepted.contains(pod.node.as_deref().unwrap()));
            }
            prop_assert_eq!(v.blocked.is_some(), v.targets.is_empty());
        }

        #[test]
        fn the_same_seed_gives_the_same_verdict(case in arb_case(), rotate in 0usize..50) {
            let first = verdict(&case);
            prop_assert_eq!(&first, &verdict(&case));
            // An index built once and reused for several fires (as `plan` does) decides alike.
            let index = ClusterIndex::new(&case.cluster);
            let hits = latest_hits(case.hits.iter().cloned());
            for _ in 0..2 {
                let reused = decide_on(&index, &Request {
                    drill: "prop",
                    seed: case.seed,
                    now: NOW,
                    targets: &case.targets,
                    policy: &case.policy,
                    own_namespace: "firedrill",
                    recent_hits: &hits,
                });
                prop_assert_eq!(&first, &reused);
            }
            // The order the snapshot lists pods in does not change who is picked.
            let mut shuffled = case.clone();
            let n = shuffled.cluster.pods.len().max(1);
            shuffled.cluster.pods.rotate_left(rotate % n);
            let mut a: Vec<_> = first.targets.iter().map(|t| (t.namespace.clone(), t.name.clone())).collect();
            let mut b: Vec<_> = verdict(&shuffled).targets.iter().map(|t| (t.namespace.clone(), t.name.clone())).collect();
            a.sort();
            b.sort();
            prop_assert_eq!(a, b);
        }
    }
}
