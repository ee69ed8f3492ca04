//! What one fire may touch: the guard's verdict on the targets, each taken only where its node
//! may be hurt for a node fault and by the dependency a dependency fault would fail. `plan --cluster`, `plan
//! --render` and the executor all decide through here, so what a plan shows is what a run does.

use firedrill_safety::cluster::Cluster;
use firedrill_safety::nodes::{decide_on_nodes, Reach};
use firedrill_safety::verdict::{decide_on, ClusterIndex, Request, Verdict};
use firedrill_safety::zones::{decide_zone, ZonePick, ZoneReach};

use crate::fault::Settings;
use crate::node::Resource;
use crate::plan::Choice;
use crate::zone::{ZoneChoice, ZoneMode};

/// The namespaces a fire must read besides its targets': a dependency failure's dependency.
pub fn also_reads(settings: &Settings) -> Option<&str> {
    match settings {
        Settings::DependencyFailure(s) => s.dependency.namespace(),
        _ => None,
    }
}

/// Whether a fire judges whole nodes (a node fault, a zone outage): then every node and every
/// pod of the cluster is read, not only the targets' namespaces.
pub fn reads_every_node(settings: &Settings) -> bool {
    reach(settings).is_some() || matches!(settings, Settings::ZoneOutage(_))
}

/// How a fault reaches a whole node, and how many nodes one fire may take.
pub fn reach(settings: &Settings) -> Option<(Reach, usize)> {
    match settings {
        Settings::NodeDrain(s) => Some((Reach::Drain, s.max_nodes as usize)),
        Settings::ResourceStress(s) => Some((
            Reach::Stress {
                may_evict: s.resource == Resource::Memory,
                memory_percent: (s.resource == Resource::Memory).then(|| s.peak_load()),
            },
            s.max_nodes as usize,
        )),
        _ => None,
    }
}

/// Decides one fire of the fault `settings` sets on a cluster indexed once.
pub fn choose(
    settings: &Settings,
    index: &ClusterIndex,
    cluster: &Cluster,
    request: &Request,
) -> Choice {
    // A region failover targets no pods: what it would cut off is judged instead.
    if let Settings::RegionFailover(rf) = settings {
        return Choice {
            verdict: match crate::region::judge_isolation(rf, cluster, request) {
                Ok(()) => Verdict {
                    targets: crate::region::cut_off(rf, cluster),
                    ..Verdict::default()
                },
                Err(why) => Verdict {
                    blocked: Some(why.to_string()),
                    ..Verdict::default()
                },
            },
            nodes: None,
        };
    }
    if let Settings::ZoneOutage(z) = settings {
        let pick = match &z.zone {
            ZoneChoice::Named { zone, .. } => ZonePick::Named(zone),
            ZoneChoice::Pick(among) => ZonePick::Among(among),
        };
        let reach = match z.mode {
            ZoneMode::Drain => ZoneReach::Drain,
            ZoneMode::Partition => ZoneReach::Partition,
        };
        let (verdict, nodes) = decide_zone(index, request, pick, reach);
        return Choice {
            verdict,
            nodes: Some(nodes),
        };
    }
    let (mut verdict, nodes) = match reach(settings) {
        Some((reach, max_nodes)) => {
            let (verdict, nodes) = decide_on_nodes(index, request, reach, max_nodes);
            (verdict, Some(nodes))
        }
        None => (decide_on(index, request), None),
    };
    if verdict.blocked.is_some() {
        return Choice { verdict, nodes };
    }
    let refused = match settings {
        Settings::DependencyFailure(s) => crate::dependency::judge(s, cluster, request)
            .err()
            .map(|e| e.to_string()),
        Settings::ContainerKill(s) => crate::container::judge(s, cluster, &verdict)
            .err()
            .map(|e| e.to_string()),
        Settings::NetworkDegrade(_) => crate::degrade::judge(cluster, &verdict)
            .err()
            .map(|e| e.to_string()),
        _ => None,
    };
    if let Some(reason) = refused {
        // Nothing is touched: the chosen pods are left, with the reason.
        for t in std::mem::take(&mut verdict.targets) {
            verdict.excluded.push(firedrill_safety::verdict::Excluded {
                namespace: t.namespace,
                name: t.name,
                reason: reason.clone(),
            });
        }
        verdict.blocked = Some(reason);
    }
    Choice { verdict, nodes }
}

/// What a step's accepted choice holds for the steps of its scenario judged after it: its
/// targets and the pods they matched, every pod on the nodes it hurts, and those nodes when it
/// drains them (a drain cordons what it takes; a stress or a partition does not). The run and
/// `plan` both judge later steps on this.
pub fn hold(held: &mut firedrill_safety::scenario::Held, choice: &Choice, fault: &Settings) {
    held.add(&choice.verdict);
    if let Some(nodes) = &choice.nodes {
        held.add_nodes(nodes, fault.takes_pods_down());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeDrain;
    use firedrill_safety::cluster::{Node, Owner, OwnerKind, OwnerRef, Pod};
    use firedrill_safety::verdict::RecentHits;
    use firedrill_safety::{Amount, Policy, Selector, Target};

    fn cluster() -> Cluster {
        let web = OwnerRef {
            kind: OwnerKind::Deployment,
            namespace: "shop".into(),
            name: "web".into(),
        };
        Cluster {
            owners: vec![Owner {
                key: web.clone(),
                labels: Default::default(),
                desired: 6,
            }],
            pods: (0..6)
                .map(|i| Pod {
                    namespace: "shop".into(),
                    name: format!("web-{i}"),
                    labels: [("app".to_owned(), "web".to_owned())].into(),
                    owner: Some(web.clone()),
                    running_and_ready: true,
                    phase: "Running".into(),
                    created: 0,
                    node: Some(format!("n{}", i % 3)),
                    ..Default::default()
                })
                .collect(),
            nodes: (0..4)
                .map(|i| Node {
                    name: format!("n{i}"),
                    unschedulable: false,
                    ready: true,
                    labels: Default::default(),
                    allocatable: Some(firedrill_safety::cluster::Resources {
                        cpu_millis: 64_000,
                        memory_bytes: 256 << 30,
                    }),
                    ..Node::default()
                })
                .collect(),
            ..Cluster::default()
        }
    }

    #[test]
    fn a_drain_takes_at_most_max_nodes_and_says_why_it_left_the_others() {
        let c = cluster();
        let index = ClusterIndex::new(&c);
        let policy = Policy {
            max_blast_radius: firedrill_safety::Percent::from_hundredths(10_000).unwrap(),
            ..Policy::default()
        };
        let targets = [Target {
            namespace: "shop".into(),
            selector: Selector::parse("app=web").unwrap(),
            amount: Amount::Count(2),
        }];
        let hits = RecentHits::new();
        let request = Request {
            drill: "d",
            seed: 7,
            now: 1_000_000,
            targets: &targets,
            policy: &policy,
            own_namespace: "chaos",
            recent_hits: &hits,
        };
        // Find a fire whose two chosen pods sit on two nodes.
        let mut seed = 0;
        let choice = loop {
            let request = Request {
                seed,
                ..request.clone()
            };
            let choice = choose(
                &Settings::NodeDrain(NodeDrain::default()),
                &index,
                &c,
                &request,
            );
            let refused = choice.nodes.as_ref().map_or(0, |n| n.refused.len());
            if refused == 1 {
                break choice;
            }
            seed += 1;
            assert!(seed < 100, "no fire chose pods on two nodes");
        };
        let judged = choice.nodes.unwrap();
        assert_eq!(judged.nodes.len(), 1);
        let (node, why) = &judged.refused[0];
        assert_eq!(
            why,
            &format!("node {node}: fault.max_nodes is 1: this fire takes no more nodes")
        );
        // The target on the refused node is left, with that reason; the fire takes its second
        // pod on the node it has (web-i sits on n(i % 3), two per node).
        assert!(choice.verdict.excluded.iter().any(|e| &e.reason == why));
        assert_eq!(choice.verdict.targets.len(), 2);
        let on = |name: &str| format!("n{}", name[4..].parse::<usize>().unwrap() % 3);
        for t in &choice.verdict.targets {
            assert_eq!(on(&t.name), judged.nodes[0].node);
        }
    }

    #[test]
    fn a_memory_stress_carries_its_highest_load_to_the_guard() {
        use crate::node::{Ramp, ResourceStress};
        let stress = |resource, ramp| {
            Settings::ResourceStress(ResourceStress {
                resource,
                load: 70,
                ramp,
                max_nodes: 2,
                ..ResourceStress::default()
            })
        };
        let ramp = Some(Ramp {
            from: 60,
            to: 90,
            over: std::time::Duration::from_secs(300),
        });
        let memory = |memory_percent| {
            Some((
                Reach::Stress {
                    may_evict: true,
                    memory_percent,
                },
                2,
            ))
        };
        assert_eq!(reach(&stress(Resource::Memory, None)), memory(Some(70)));
        assert_eq!(
            reach(&stress(Resource::Memory, ramp)),
            memory(Some(90)),
            "a ramp's top, not its start"
        );
        for resource in [Resource::Cpu, Resource::Io] {
            assert_eq!(
                reach(&stress(resource, ramp)),
                Some((
                    Reach::Stress {
                        may_evict: false,
                        memory_percent: None,
                    },
                    2
                )),
                "{resource:?} stress holds no memory"
            );
        }
    }
}
