//! `network-partition`: the chosen pods marked, and a NetworkPolicy per namespace that isolates
//! the marked pods.

use std::collections::BTreeMap;

use firedrill_reader::name::namespace_name;
use firedrill_reader::read::{read_items, Reader};
use firedrill_reader::yaml::Node;
use firedrill_safety::verdict::Verdict;
use serde_json::{json, Value};

use firedrill_rollback::{ObjectKind, ObjectRef};

use crate::plan::{isolate, Expect, Plan, Reach, CANARY_LABEL_KEYS, PARTITION_LABEL};
use crate::values::{cidr, equal_labels};

/// `network-partition`: NetworkPolicies that isolate the chosen pods. NetworkPolicies only allow,
/// so a partition denies all traffic in `direction` except to and from the `allow` peers.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkPartition {
    pub direction: Direction,
    pub allow: Vec<Peer>,
    /// Keep DNS (UDP and TCP 53) open for egress, so the pods fail on the partition, not on
    /// name resolution. Default true.
    pub allow_dns: bool,
}

impl Default for NetworkPartition {
    fn default() -> Self {
        NetworkPartition {
            direction: Direction::Both,
            allow: Vec::new(),
            allow_dns: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
    Both,
}

/// A peer that stays reachable during a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Pods with these labels (`matchLabels`), in the target's namespace.
    Pods(std::collections::BTreeMap<String, String>),
    /// Every pod of a namespace.
    Namespace(String),
    /// An IP block.
    Cidr(String),
}

/// What a drill's effect canary runs (busybox `sh` and `nc`): connects to `$TARGET:$PORT` until
/// it can (exit 3 after 30 tries: the pod did not answer before the fault), says so by creating
/// `$CONNECTED` (default /tmp/connected, its readiness probe), then connects until it cannot:
/// exit 0, refused.
pub const CANARY_SCRIPT: &str = r#"connected="${CONNECTED:-/tmp/connected}"
i=0
until nc -z -w 2 "$TARGET" "$PORT" </dev/null; do i=$((i+1)); [ "$i" -ge 30 ] && exit 3; sleep 1; done
touch "$connected"
while nc -z -w 2 "$TARGET" "$PORT" </dev/null; do sleep 1; done
exit 0
"#;

/// Marks each chosen pod, then one NetworkPolicy per namespace isolates the marked pods. Undo:
/// delete the policies, unmark the pods.
pub fn partition(run: &str, settings: &NetworkPartition, verdict: Option<&Verdict>) -> Plan {
    let mut plan = Plan::one(isolate(run, verdict, |namespace| {
        network_policy(run, namespace, settings)
    }));
    // One canary tells whether the plugin enforces the policy: the first chosen pod's.
    plan.effect = verdict.and_then(|v| v.targets.first()).map(|t| {
        vec![Expect::Unreachable {
            pod: ObjectRef::namespaced(ObjectKind::Pod, &t.namespace, &t.name),
            reach: canary_reach(settings, &t.namespace),
        }]
    });
    plan
}

/// How a canary outside the partition can try it, or why it cannot: it connects into the marked
/// pod, so the partition must deny ingress and no `allow` peer may admit the canary itself.
fn canary_reach(settings: &NetworkPartition, namespace: &str) -> Reach {
    if settings.direction == Direction::Egress {
        return Reach::Unchecked("the partition denies only the pods' egress, and a canary connecting to a pod tries its ingress".to_owned());
    }
    for peer in &settings.allow {
        let admits = match peer {
            Peer::Pods(labels) => labels
                .keys()
                .all(|k| CANARY_LABEL_KEYS.contains(&k.as_str()))
                .then(|| {
                    format!("`allow` selector {labels:?} could select the canary's own labels")
                }),
            Peer::Namespace(name) => (name == namespace)
                .then(|| format!("`allow` admits every pod of {name}, the canary's namespace")),
            Peer::Cidr(cidr) => Some(format!(
                "`allow` admits {cidr}, which may hold the canary's address"
            )),
        };
        if let Some(why) = admits {
            return Reach::Unchecked(why);
        }
    }
    Reach::Into
}

/// The NetworkPolicy isolating the marked pods of one namespace.
pub fn network_policy(run: &str, namespace: &str, settings: &NetworkPartition) -> Value {
    let peers: Vec<Value> = settings
        .allow
        .iter()
        .map(|peer| match peer {
            Peer::Pods(labels) => json!({ "podSelector": { "matchLabels": labels } }),
            Peer::Namespace(name) => json!({ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": name } } }),
            Peer::Cidr(cidr) => json!({ "ipBlock": { "cidr": cidr } }),
        })
        .collect();
    let (ingress, egress) = match settings.direction {
        Direction::Ingress => (true, false),
        Direction::Egress => (false, true),
        Direction::Both => (true, true),
    };
    let mut types = Vec::new();
    let mut spec = serde_json::Map::new();
    spec.insert(
        "podSelector".into(),
        json!({ "matchLabels": BTreeMap::from([(PARTITION_LABEL, run)]) }),
    );
    if ingress {
        types.push("Ingress");
        let rules: Vec<Value> = if peers.is_empty() {
            Vec::new()
        } else {
            vec![json!({ "from": peers })]
        };
        spec.insert("ingress".into(), json!(rules));
    }
    if egress {
        types.push("Egress");
        let mut rules: Vec<Value> = if peers.is_empty() {
            Vec::new()
        } else {
            vec![json!({ "to": peers })]
        };
        if settings.allow_dns {
            rules.push(json!({ "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }] }));
        }
        spec.insert("egress".into(), json!(rules));
    }
    spec.insert("policyTypes".into(), json!(types));
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": format!("firedrill-partition-{run}").chars().take(253).collect::<String>(), "namespace": namespace },
        "spec": spec,
    })
}

impl NetworkPartition {
    /// `fault:` of a network-partition, every problem reported at its line.
    pub fn read(r: &mut Reader, node: &Node, path: &str) -> Option<Self> {
        let f = r.fields(node, path, &["direction", "allow", "allow_dns"])?;
        let d = NetworkPartition::default();
        let direction = match f.get("direction") {
            Some(n) => r.parsed(n, &f.path_of("direction"), "a direction", |s| match s {
                "ingress" => Ok(Direction::Ingress),
                "egress" => Ok(Direction::Egress),
                "both" => Ok(Direction::Both),
                _ => Err(format!(
                    "{s:?} is not a direction (allowed: ingress, egress, both)"
                )),
            }),
            None => Some(d.direction),
        };
        let allow_dns = f
            .get("allow_dns")
            .map_or(Some(d.allow_dns), |n| r.boolean(n, &f.path_of("allow_dns")));
        let allow = match f.get("allow") {
            None => Some(Vec::new()),
            Some(n) => read_items(
                r,
                n,
                &f.path_of("allow"),
                "peers: {selector: ...}, {namespace: ...} or {cidr: ...}",
                read_peer,
            ),
        };
        Some(NetworkPartition {
            direction: direction?,
            allow: allow?,
            allow_dns: allow_dns?,
        })
    }
}

/// One peer of `allow`: exactly one of `selector`, `namespace` or `cidr`.
fn read_peer(r: &mut Reader, node: &Node, at: &str) -> Option<Peer> {
    let pf = r.fields(node, at, &["selector", "namespace", "cidr"])?;
    let given: Vec<&str> = ["selector", "namespace", "cidr"]
        .into_iter()
        .filter(|k| pf.has(k))
        .collect();
    if given.len() != 1 {
        r.error(
            node.mark,
            at,
            "give exactly one of `selector`, `namespace` or `cidr`",
        );
        return None;
    }
    match given[0] {
        "selector" => r
            .parsed(
                pf.get("selector")?,
                &pf.path_of("selector"),
                "key=value labels",
                equal_labels,
            )
            .map(Peer::Pods),
        "namespace" => r.parsed(
            pf.get("namespace")?,
            &pf.path_of("namespace"),
            "a namespace name",
            |s| namespace_name(s).map(Peer::Namespace),
        ),
        _ => r
            .parsed(pf.get("cidr")?, &pf.path_of("cidr"), "a CIDR", cidr)
            .map(Peer::Cidr),
    }
}
