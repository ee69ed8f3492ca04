//! What one fire may touch: the guard's verdict on the targets, narrowed by the nodes a node
//! fault would hurt and by the dependency a dependency fault would fail. `plan --cluster`, `plan
//! --render` and the executor all decide through here, so what a plan shows is what a run does.

use firedrill_safety::cluster::Cluster;
use firedrill_safety::nodes::{on_nodes, NodeVerdict, Reach};
use firedrill_safety::verdict::{decide_on, ClusterIndex, Request, Verdict};

use crate::settings::{Resource, Settings};
use crate::Kind;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Choice {
    pub verdict: Verdict,
    /// For node faults: the nodes, with every pod on them the fault hurts, and the nodes left alone.
    pub nodes: Option<NodeVerdict>,
}

/// How a kind's fault reaches a whole node, and how many nodes one fire may take.
pub fn reach(kind: Kind, settings: &Settings) -> Option<(Reach, usize)> {
    match (kind, settings) {
        (Kind::NodeDrain, Settings::NodeDrain(s)) => Some((Reach::Drain, s.max_nodes as usize)),
        (Kind::NodeDrain, _) => Some((Reach::Drain, 1)),
        (Kind::ResourceStress, Settings::ResourceStress(s)) => Some((
            Reach::Stress {
                may_evict: s.resource == Resource::Memory,
            },
            s.max_nodes as usize,
        )),
        (Kind::ResourceStress, _) => Some((Reach::Stress { may_evict: false }, 1)),
        _ => None,
    }
}

/// Decides one fire of `kind` on a cluster indexed once.
pub fn choose(
    kind: Kind,
    settings: &Settings,
    index: &ClusterIndex,
    cluster: &Cluster,
    request: &Request,
) -> Choice {
    let mut verdict = decide_on(index, request);
    if verdict.blocked.is_some() {
        return Choice {
            verdict,
            nodes: None,
        };
    }
    let nodes = reach(kind, settings).map(|(reach, max_nodes)| {
        let mut judged = on_nodes(index, request, &verdict, reach);
        if judged.nodes.len() > max_nodes {
            let over: Vec<_> = judged.nodes.drain(max_nodes..).collect();
            for node in over {
                judged.refused.push((
                    node.node,
                    format!("fault.max_nodes is {max_nodes}: this fire takes no more nodes"),
                ));
            }
        }
        judged.narrow(&mut verdict, index);
        judged
    });
    let refused = match settings {
        Settings::DependencyFailure(s) => crate::dependency::judge(s, cluster, request).err(),
        Settings::ContainerKill(s) => crate::container::judge(s, cluster, &verdict).err(),
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
