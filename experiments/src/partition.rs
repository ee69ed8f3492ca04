//! `network-partition`: the chosen pods marked, and a NetworkPolicy per namespace that isolates
//! the marked pods.

use std::collections::BTreeMap;

use firedrill_safety::verdict::Verdict;
use serde_json::{json, Value};

use crate::plan::{isolate, Plan, PARTITION_LABEL};

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

/// Marks each chosen pod, then one NetworkPolicy per namespace isolates the marked pods. Undo:
/// delete the policies, unmark the pods.
pub fn partition(run: &str, settings: &NetworkPartition, verdict: Option<&Verdict>) -> Plan {
    Plan::one(isolate(run, verdict, |namespace| {
        network_policy(run, namespace, settings)
    }))
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
