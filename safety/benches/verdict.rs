//! One verdict over 100,000 pods in 10,000 workloads (target: < 100 ms); one drain decision over
//! 5,000 nodes and 100,000 pods with requests, capacity checked (target: < 200 ms); one zone
//! outage decision over the same nodes in three zones (target: < 200 ms).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use firedrill_safety::cluster::{
    Cluster, IntOrPercent, Labels, Namespace, Node, Owner, OwnerKind, OwnerRef, Pdb, Pod, Resources,
};
use firedrill_safety::nodes::{decide_on_nodes, Reach};
use firedrill_safety::verdict::ClusterIndex;
use firedrill_safety::verdict::{decide, seed, Request};
use firedrill_safety::zones::{decide_zone, ZonePick, ZoneReach, ZONE_LABEL};
use firedrill_safety::{
    Amount, MinHealthy, NamespacedGlob, Percent, PercentRange, Policy, Quantity, Selector, Target,
};

const NOW: i64 = 1_800_000_000;

/// 10,000 Deployments of 10 pods each, spread over `namespaces` namespaces, one PDB per
/// Deployment, a few pods not ready or young.
fn cluster(namespaces: usize) -> Cluster {
    let mut c = Cluster::default();
    for n in 0..namespaces {
        c.namespaces.push(Namespace {
            name: format!("ns-{n}"),
            ..Namespace::default()
        });
    }
    for w in 0..10_000usize {
        let namespace = format!("ns-{}", w % namespaces);
        let key = OwnerRef {
            kind: OwnerKind::Deployment,
            namespace: namespace.clone(),
            name: format!("app-{w}"),
        };
        let labels: Labels = [
            ("app".to_owned(), format!("app-{w}")),
            (
                "tier".to_owned(),
                if w % 3 == 0 { "db" } else { "web" }.to_owned(),
            ),
        ]
        .into();
        c.owners.push(Owner {
            key: key.clone(),
            labels: labels.clone(),
            desired: 10,
        });
        for p in 0..10usize {
            c.pods.push(Pod {
                namespace: namespace.clone(),
                name: format!("app-{w}-{p}"),
                labels: labels.clone(),
                owner: Some(key.clone()),
                running_and_ready: (w + p) % 17 != 0,
                phase: "Running".into(),
                created: NOW - 3600 + if p == 0 { 3500 } else { 0 },
                node: None,
                ..Default::default()
            });
        }
        c.pdbs.push(Pdb {
            namespace,
            name: format!("app-{w}"),
            selector: Some(Selector::parse(&format!("app=app-{w}")).expect("selector")),
            min_available: Some(IntOrPercent::Percent(
                Percent::parse("80%", false).expect("percent"),
            )),
            max_unavailable: None,
            disruptions_allowed: None,
        });
    }
    c
}

fn policy() -> Policy {
    Policy {
        protected: vec![NamespacedGlob::parse("ns-1/app-1*").expect("glob")],
        never_target: vec![Selector::parse("tier=db").expect("selector")],
        min_healthy: vec![MinHealthy {
            namespace: "ns-0".into(),
            selector: Selector::everything(),
            min: Quantity::Count(8),
        }],
        max_blast_radius: Percent::parse("10%", false).expect("percent"),
        max_targets: 50,
        min_pod_age: Duration::from_secs(600),
        ..Policy::default()
    }
}

fn benches(c: &mut Criterion) {
    let spread = cluster(100);
    let targets: Vec<Target> = (0..5)
        .map(|n| Target {
            namespace: format!("ns-{n}"),
            selector: Selector::parse("tier in (web,db)").expect("selector"),
            amount: Amount::Percent(PercentRange::parse("25-50").expect("range")),
        })
        .collect();
    let policy = policy();
    let request = Request {
        drill: "bench",
        seed: seed("bench", NOW),
        now: NOW,
        targets: &targets,
        policy: &policy,
        own_namespace: "firedrill",
        recent_hits: &firedrill_safety::verdict::RecentHits::new(),
    };
    let v = decide(&spread, &request);
    eprintln!(
        "100 namespaces: {} targets, {} excluded",
        v.targets.len(),
        v.excluded.len()
    );
    c.bench_function(
        "verdict: 100k pods, 10k workloads, 100 namespaces, 5 targets",
        |b| b.iter(|| decide(black_box(&spread), &request)),
    );

    let one = cluster(1);
    let everything = [Target {
        namespace: "ns-0".into(),
        selector: Selector::everything(),
        amount: Amount::Count(50),
    }];
    let request = Request {
        targets: &everything,
        ..request
    };
    let v = decide(&one, &request);
    eprintln!(
        "1 namespace: {} targets, {} excluded",
        v.targets.len(),
        v.excluded.len()
    );
    c.bench_function(
        "verdict: 100k pods, 10k workloads, one namespace, every pod matched",
        |b| b.iter(|| decide(black_box(&one), &request)),
    );
}

/// The same 100,000 pods on 5,000 nodes (20 each, from 20 workloads), 100m and 256Mi each. With
/// `full`, every node but the last has no room left, so first fit scans them all for each pod;
/// with `none`, the last has none either, so every candidate's node is tried and refused.
fn on_nodes(full: bool, none: bool) -> Cluster {
    const NODES: usize = 5_000;
    let mut c = cluster(100);
    for (i, pod) in c.pods.iter_mut().enumerate() {
        pod.node = Some(format!("node-{}", i % NODES));
        pod.requests = Resources {
            cpu_millis: 100,
            memory_bytes: 256 << 20,
        };
    }
    c.nodes = (0..NODES)
        .map(|i| Node {
            name: format!("node-{i}"),
            ready: true,
            allocatable: Some(if full && (none || i + 1 < NODES) {
                Resources {
                    cpu_millis: 2_000,
                    memory_bytes: 5 << 30,
                }
            } else {
                Resources {
                    cpu_millis: 8_000,
                    memory_bytes: 32 << 30,
                }
            }),
            ..Node::default()
        })
        .collect();
    c
}

fn drains(c: &mut Criterion) {
    let policy = Policy {
        max_targets: 50,
        ..Policy::default()
    };
    let targets = [Target {
        namespace: "ns-0".into(),
        selector: Selector::parse("tier=web").expect("selector"),
        amount: Amount::Count(1),
    }];
    let hits = firedrill_safety::verdict::RecentHits::new();
    let request = Request {
        drill: "bench",
        seed: seed("bench", NOW),
        now: NOW,
        targets: &targets,
        policy: &policy,
        own_namespace: "firedrill",
        recent_hits: &hits,
    };
    for (full, none, name) in [
        (
            false,
            false,
            "drain: 5k nodes, 100k pods with requests, room to spare",
        ),
        (
            true,
            false,
            "drain: 5k nodes, 100k pods with requests, room on the last node only",
        ),
        (
            true,
            true,
            "drain: 5k nodes, 100k pods with requests, no room: every candidate refused",
        ),
    ] {
        let cluster = on_nodes(full, none);
        let (v, judged) = decide_on_nodes(&ClusterIndex::new(&cluster), &request, Reach::Drain, 1);
        eprintln!(
            "{name}: {} targets, {} nodes taken, {} refused{}",
            v.targets.len(),
            judged.nodes.len(),
            judged.refused.len(),
            judged
                .refused
                .first()
                .map(|(_, why)| format!(" (first: {})", why.chars().take(160).collect::<String>()))
                .unwrap_or_default()
        );
        // The index is built per fire, as the executor does: it is part of the decision.
        c.bench_function(name, |b| {
            b.iter(|| {
                decide_on_nodes(
                    &ClusterIndex::new(black_box(&cluster)),
                    &request,
                    Reach::Drain,
                    1,
                )
            })
        });
    }
}

/// The drain cluster's nodes in three zones (node i in zone i mod 3), each workload's budget
/// allowing half its pods down, so a zone (a third of every workload) may go.
fn in_zones(full: bool) -> Cluster {
    let mut c = on_nodes(full, full);
    for (i, node) in c.nodes.iter_mut().enumerate() {
        node.labels
            .insert(ZONE_LABEL.to_owned(), format!("zone-{}", i % 3));
    }
    for pdb in &mut c.pdbs {
        pdb.min_available = None;
        pdb.max_unavailable = Some(IntOrPercent::Percent(
            Percent::parse("50%", false).expect("percent"),
        ));
    }
    c
}

fn zone_outages(c: &mut Criterion) {
    let policy = Policy::default();
    let hits = firedrill_safety::verdict::RecentHits::new();
    let request = Request {
        drill: "bench",
        seed: seed("bench", NOW),
        now: NOW,
        targets: &[],
        policy: &policy,
        own_namespace: "firedrill",
        recent_hits: &hits,
    };
    for (full, reach, name) in [
        (
            false,
            ZoneReach::Drain,
            "zone outage: 5k nodes in 3 zones, 100k pods, drain, room to spare",
        ),
        (
            true,
            ZoneReach::Drain,
            "zone outage: 5k nodes in 3 zones, 100k pods, drain, no room: every zone refused",
        ),
        (
            false,
            ZoneReach::Partition,
            "zone outage: 5k nodes in 3 zones, 100k pods, partition",
        ),
    ] {
        let cluster = in_zones(full);
        let decide = || {
            decide_zone(
                &ClusterIndex::new(black_box(&cluster)),
                &request,
                ZonePick::Among(&[]),
                reach,
            )
        };
        let (v, judged) = decide();
        eprintln!(
            "{name}: zone {:?}, {} nodes, {} pods, {} zones refused{}",
            judged.zone,
            judged.nodes.len(),
            v.targets.len(),
            judged.refused.len(),
            judged
                .refused
                .first()
                .map(|(_, why)| format!(" (first: {})", why.chars().take(160).collect::<String>()))
                .unwrap_or_default()
        );
        // The index is built per fire, as the executor does: it is part of the decision.
        c.bench_function(name, |b| b.iter(decide));
    }
}

criterion_group! {
    name = verdict;
    config = Criterion::default().sample_size(10);
    targets = benches, drains, zone_outages
}
criterion_main!(verdict);
