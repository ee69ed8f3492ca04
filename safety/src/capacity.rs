//! Whether the pods a drain evicts can run elsewhere: their requests placed, first fit
//! decreasing, on the free allocatable of the nodes left, each pod only on a node its
//! nodeSelector, required node affinity and tolerations allow. First fit is a heuristic (the
//! scheduler may find a packing it misses), so it errs towards refusing: the safe side.

use crate::cluster::{
    Node, NodeOperator, NodeRequirement, NodeSelectorTerm, Placement, Pod, Resources, Taint,
    TaintEffect, Toleration,
};
use crate::quantity::{show_bytes, show_cpu};

/// Nodes named in a shortfall before the rest are counted.
const NODES_SHOWN: usize = 5;

/// Why the pods that move do not fit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Shortfall {
    /// A node that could take pods does not say what it can allocate.
    Unknown { node: String },
    NoRoom {
        need: Resources,
        /// Free room per node, first [`NODES_SHOWN`], then how many more.
        free: Vec<(String, Resources)>,
        more: usize,
        /// The first pod (namespace/name) first fit could place nowhere, and its requests.
        stuck: (String, Resources),
    },
}

impl Shortfall {
    /// The refusal's text after "draining node N would leave its pods nowhere to run: ".
    pub fn explain(&self) -> String {
        match self {
            Shortfall::Unknown { node } => {
                format!("capacity cannot be checked because node {node} reports no allocatable")
            }
            Shortfall::NoRoom {
                need,
                free,
                more,
                stuck,
            } => {
                let mut shown: Vec<String> = free
                    .iter()
                    .map(|(node, r)| format!("{} on {node}", show(*r, false)))
                    .collect();
                if *more > 0 {
                    shown.push(format!("and {more} more"));
                }
                let free = if shown.is_empty() {
                    "none".to_owned()
                } else {
                    shown.join(", ")
                };
                format!(
                    "they need {}; free: {free}; {} ({}) fits on none",
                    show(*need, true),
                    stuck.0,
                    show(stuck.1, true)
                )
            }
        }
    }
}

fn show(r: Resources, round_up: bool) -> String {
    format!(
        "{} and {}",
        show_cpu(r.cpu_millis),
        show_bytes(r.memory_bytes, round_up)
    )
}

/// What is free on `node`: allocatable less the requests of the pods on it that have not
/// finished; `None` when the node does not say what it can allocate.
pub(crate) fn free_on(node: &Node, pods: &[&Pod]) -> Option<Resources> {
    let allocatable = node.allocatable?;
    let used = pods
        .iter()
        .filter(|p| p.phase != "Succeeded" && p.phase != "Failed")
        .fold(Resources::default(), |sum, p| add(sum, p.requests));
    Some(Resources {
        cpu_millis: allocatable.cpu_millis.saturating_sub(used.cpu_millis),
        memory_bytes: allocatable.memory_bytes.saturating_sub(used.memory_bytes),
    })
}

fn add(a: Resources, b: Resources) -> Resources {
    Resources {
        cpu_millis: a.cpu_millis.saturating_add(b.cpu_millis),
        memory_bytes: a.memory_bytes.saturating_add(b.memory_bytes),
    }
}

/// Places `moving` on `rooms` (the nodes left, in snapshot order, `None` free when the node does
/// not say), largest CPU then memory first (ties by namespace and name), each on the first node
/// that allows it and has room. Nothing to move fits anywhere.
pub(crate) fn place(
    moving: &[&Pod],
    rooms: &[(&Node, Option<Resources>)],
) -> Result<(), Shortfall> {
    if moving.is_empty() {
        return Ok(());
    }
    let mut free: Vec<Resources> = Vec::with_capacity(rooms.len());
    for (node, room) in rooms {
        free.push(room.ok_or_else(|| Shortfall::Unknown {
            node: node.name.clone(),
        })?);
    }
    let mut order: Vec<&Pod> = moving.to_vec();
    order.sort_by(|a, b| {
        (b.requests.cpu_millis, b.requests.memory_bytes)
            .cmp(&(a.requests.cpu_millis, a.requests.memory_bytes))
            .then_with(|| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)))
    });
    let before = free.clone();
    for pod in order {
        let r = pod.requests;
        let slot = rooms.iter().zip(&free).position(|((node, _), f)| {
            f.cpu_millis >= r.cpu_millis
                && f.memory_bytes >= r.memory_bytes
                && allows(&pod.placement, node)
        });
        match slot {
            Some(i) => {
                free[i].cpu_millis -= r.cpu_millis;
                free[i].memory_bytes -= r.memory_bytes;
            }
            None => {
                let need = moving
                    .iter()
                    .fold(Resources::default(), |s, p| add(s, p.requests));
                return Err(Shortfall::NoRoom {
                    need,
                    free: rooms
                        .iter()
                        .zip(before)
                        .take(NODES_SHOWN)
                        .map(|((node, _), f)| (node.name.clone(), f))
                        .collect(),
                    more: rooms.len().saturating_sub(NODES_SHOWN),
                    stuck: (format!("{}/{}", pod.namespace, pod.name), r),
                });
            }
        }
    }
    Ok(())
}

/// Whether the scheduler may put a pod with `placement` on `node`: its nodeSelector and required
/// node affinity match, and it tolerates every NoSchedule and NoExecute taint.
pub fn allows(placement: &Placement, node: &Node) -> bool {
    placement
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
        && placement
            .affinity
            .as_ref()
            .is_none_or(|terms| terms.iter().any(|t| term_matches(t, node)))
        && node
            .taints
            .iter()
            .filter(|t| t.effect != TaintEffect::PreferNoSchedule)
            .all(|taint| placement.tolerations.iter().any(|t| tolerates(t, taint)))
}

/// As Kubernetes matches them: `Exists` with no key tolerates every taint; no effect, every
/// effect.
fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let key = t.key == taint.key || t.exists && t.key.is_empty();
    let value = t.exists || t.value == taint.value;
    key && value && t.effect.is_none_or(|e| e == taint.effect)
}

fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    if term.expressions.is_empty() && term.fields.is_empty() {
        return false;
    }
    term.expressions
        .iter()
        .all(|r| requirement_holds(r, node.labels.get(&r.key).map(String::as_str)))
        && term.fields.iter().all(|r| {
            let value = (r.key == "metadata.name").then_some(node.name.as_str());
            requirement_holds(r, value)
        })
}

fn requirement_holds(r: &NodeRequirement, value: Option<&str>) -> bool {
    let number = || value.and_then(|v| v.parse::<i64>().ok());
    match &r.operator {
        NodeOperator::In(values) => value.is_some_and(|v| values.iter().any(|x| x == v)),
        NodeOperator::NotIn(values) => !value.is_some_and(|v| values.iter().any(|x| x == v)),
        NodeOperator::Exists => value.is_some(),
        NodeOperator::DoesNotExist => value.is_none(),
        NodeOperator::Gt(n) => number().is_some_and(|v| v > *n),
        NodeOperator::Lt(n) => number().is_some_and(|v| v < *n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Labels;

    fn node(name: &str, labels: &[(&str, &str)], taints: Vec<Taint>) -> Node {
        Node {
            name: name.into(),
            ready: true,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            allocatable: Some(Resources {
                cpu_millis: 1000,
                memory_bytes: 1 << 30,
            }),
            taints,
            ..Node::default()
        }
    }

    #[test]
    fn selectors_affinity_and_taints_decide_where_a_pod_may_go() {
        let gpu = node(
            "gpu",
            &[("pool", "gpu"), ("cores", "8")],
            vec![Taint {
                key: "gpu".into(),
                value: "yes".into(),
                effect: TaintEffect::NoSchedule,
            }],
        );
        let plain = node(
            "plain",
            &[("pool", "std")],
            vec![Taint {
                key: "soft".into(),
                value: String::new(),
                effect: TaintEffect::PreferNoSchedule,
            }],
        );
        let mut p = Placement::default();
        assert!(!allows(&p, &gpu), "an untolerated NoSchedule taint binds");
        assert!(allows(&p, &plain), "PreferNoSchedule does not bind");
        p.tolerations.push(Toleration {
            key: "gpu".into(),
            value: "yes".into(),
            ..Toleration::default()
        });
        assert!(allows(&p, &gpu));
        p.node_selector = Labels::from([("pool".into(), "std".into())]);
        assert!(!allows(&p, &gpu) && allows(&p, &plain));
        let term = |key: &str, operator| NodeSelectorTerm {
            expressions: vec![NodeRequirement {
                key: key.into(),
                operator,
            }],
            fields: Vec::new(),
        };
        let affinity = |terms| Placement {
            affinity: Some(terms),
            tolerations: vec![Toleration {
                exists: true,
                ..Toleration::default()
            }],
            ..Placement::default()
        };
        assert!(allows(
            &affinity(vec![term("cores", NodeOperator::Gt(4))]),
            &gpu
        ));
        assert!(!allows(
            &affinity(vec![term("cores", NodeOperator::Lt(4))]),
            &gpu
        ));
        assert!(!allows(
            &affinity(vec![term("cores", NodeOperator::Gt(4))]),
            &plain
        ));
        let either = vec![
            term("pool", NodeOperator::In(vec!["x".into()])),
            term("cores", NodeOperator::DoesNotExist),
        ];
        assert!(allows(&affinity(either.clone()), &plain) && !allows(&affinity(either), &gpu));
        assert!(
            !allows(&affinity(vec![NodeSelectorTerm::default()]), &plain),
            "an empty term matches nothing"
        );
        let by_name = NodeSelectorTerm {
            expressions: Vec::new(),
            fields: vec![NodeRequirement {
                key: "metadata.name".into(),
                operator: NodeOperator::NotIn(vec!["gpu".into()]),
            }],
        };
        assert!(
            allows(&affinity(vec![by_name.clone()]), &plain)
                && !allows(&affinity(vec![by_name]), &gpu)
        );
    }

    #[test]
    fn first_fit_decreasing_names_the_shortfall() {
        let pod = |name: &str, cpu: u64, gib: u64| Pod {
            namespace: "apps".into(),
            name: name.into(),
            phase: "Running".into(),
            requests: Resources {
                cpu_millis: cpu,
                memory_bytes: gib << 30,
            },
            ..Pod::default()
        };
        let (a, b) = (node("a", &[], Vec::new()), node("b", &[], Vec::new()));
        let half = Resources {
            cpu_millis: 500,
            memory_bytes: 1 << 30,
        };
        let rooms = [(&a, Some(half)), (&b, Some(half))];
        let (big, small) = (pod("big", 400, 1), pod("small", 100, 0));
        assert_eq!(place(&[&small, &big], &rooms), Ok(()));
        let huge = pod("huge", 600, 0);
        let err = place(&[&small, &huge], &rooms).unwrap_err();
        assert_eq!(
            err.explain(),
            "they need 0.7 CPU and 0 B; free: 0.5 CPU and 1 GiB on a, 0.5 CPU and 1 GiB on b; apps/huge (0.6 CPU and 0 B) fits on none"
        );
        let unknown = [(&a, Some(half)), (&b, None)];
        assert_eq!(
            place(&[&small], &unknown).unwrap_err().explain(),
            "capacity cannot be checked because node b reports no allocatable"
        );
        assert_eq!(
            place(&[], &unknown),
            Ok(()),
            "nothing to move needs no room"
        );
    }
}
