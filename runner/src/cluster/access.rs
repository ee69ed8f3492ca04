//! What firedrill's service account must be allowed to do, by fault kind: the one table `check`
//! asks the API server about (SelfSubjectAccessReview, so nothing is changed) and that a test
//! (`runner/tests/stop.rs`) holds equal to what deploy/kubernetes grants and to the calls made.
//! Which of deploy/'s ClusterRoles grants a rule is read from the manifest itself, so the fix
//! `check` names is the file a user applies.

use firedrill_experiments::Kind;

/// Where a rule must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// In each namespace a drill targets (or whose dependency it fails).
    Namespace,
    /// Cluster-scoped objects (nodes, namespaces) or every namespace at once (the sweep, the
    /// pods a node fault judges).
    Cluster,
}

/// One verb on one resource, as an RBAC rule names it (`pods/eviction`: a subresource).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    pub group: &'static str,
    pub resource: &'static str,
    pub verb: &'static str,
    pub scope: Scope,
}

const fn ns(group: &'static str, resource: &'static str, verb: &'static str) -> Rule {
    Rule {
        group,
        resource,
        verb,
        scope: Scope::Namespace,
    }
}

const fn all(group: &'static str, resource: &'static str, verb: &'static str) -> Rule {
    Rule {
        group,
        resource,
        verb,
        scope: Scope::Cluster,
    }
}

/// What the guard reads to decide what a drill may touch (and the pod watch of the recovery
/// clock), and the Event left on each object a drill touches: every kind that changes anything.
const GUARD: &[Rule] = &[
    ns("", "pods", "list"),
    ns("", "pods", "watch"),
    ns("", "services", "list"),
    ns("apps", "deployments", "list"),
    ns("apps", "statefulsets", "list"),
    ns("apps", "replicasets", "list"),
    ns("apps", "daemonsets", "list"),
    ns("policy", "poddisruptionbudgets", "list"),
    ns("", "events", "create"),
    READ_NAMESPACES,
];

/// Reading a namespace (its labels: opt-in, Pod Security).
pub const READ_NAMESPACES: Rule = all("", "namespaces", "get");

/// Node faults judge every node and every pod, in any namespace.
const NODES: &[Rule] = &[all("", "nodes", "list"), all("", "pods", "list")];

/// The sweep (the scheduler's, and `stop`'s): what drills create, found by label everywhere and
/// deleted. Needed whatever the drill file holds.
pub const SWEEP: &[Rule] = &[
    all("networking.k8s.io", "networkpolicies", "list"),
    all("networking.k8s.io", "networkpolicies", "deletecollection"),
    all("", "pods", "list"),
    all("", "pods", "deletecollection"),
    all("", "services", "list"),
    all("", "services", "deletecollection"),
    all("apps", "deployments", "list"),
    all("apps", "deployments", "deletecollection"),
];

/// Killing pods: evicted (budgets enforced by the API server), or deleted with `force: true`.
const KILL: &[Rule] = &[ns("", "pods/eviction", "create"), ns("", "pods", "delete")];

/// A helper pod (or stress pod) created, read back, and deleted on revert.
const HELPER: &[Rule] = &[
    ns("", "pods", "create"),
    ns("", "pods", "get"),
    ns("", "pods", "delete"),
];

/// A helper's report read back from its log: what network-degrade's helper applied and
/// measured, the load a stress pod measured (#25: the fault seen to take effect).
const HELPER_REPORT: &[Rule] = &[ns("", "pods/log", "get")];

/// Chosen pods labelled (and unlabelled), and a NetworkPolicy created and deleted on revert.
const ISOLATE: &[Rule] = &[
    ns("", "pods", "get"),
    ns("", "pods", "patch"),
    ns("networking.k8s.io", "networkpolicies", "create"),
    ns("networking.k8s.io", "networkpolicies", "get"),
    ns("networking.k8s.io", "networkpolicies", "delete"),
];

/// A zone outage's partition: every pod of the zone labelled, and a NetworkPolicy in each of
/// their namespaces, whichever they are.
const ISOLATE_ANYWHERE: &[Rule] = &[
    all("", "pods", "get"),
    all("", "pods", "patch"),
    all("networking.k8s.io", "networkpolicies", "create"),
    all("networking.k8s.io", "networkpolicies", "get"),
    all("networking.k8s.io", "networkpolicies", "delete"),
];

/// A zone outage's partition tried by a canary pod (drill/effect/reach.rs), created, read back
/// and deleted in the namespace of the zone's pod it tries, whichever that is.
const CANARY_ANYWHERE: &[Rule] = &[
    all("", "pods", "create"),
    all("", "pods", "get"),
    all("", "pods", "delete"),
];

/// A zone outage's drain: every pod of the zone evicted, whichever its namespace.
const KILL_ANYWHERE: &[Rule] = &[
    all("", "pods/eviction", "create"),
    all("", "pods", "delete"),
];

/// Replicas scaled down and restored.
const SCALE: &[Rule] = &[
    ns("apps", "deployments", "get"),
    ns("apps", "deployments", "patch"),
    ns("apps", "statefulsets", "get"),
    ns("apps", "statefulsets", "patch"),
];

/// dependency-failure's http-fault: a copy of the dependency's Service and the fault-proxy
/// Deployment created, the Service's selector swapped to the proxy and back, both deleted.
const PROXY: &[Rule] = &[
    ns("", "services", "create"),
    ns("", "services", "get"),
    ns("", "services", "patch"),
    ns("", "services", "delete"),
    ns("apps", "deployments", "create"),
    ns("apps", "deployments", "get"),
    ns("apps", "deployments", "delete"),
];

/// Cordon and uncordon.
const CORDON: &[Rule] = &[all("", "nodes", "get"), all("", "nodes", "patch")];

/// `check --network`'s canary, in firedrill's own namespace: a listener and a client pod and a
/// NetworkPolicy created, read back, and deleted on revert. The base's ClusterRoles grant them
/// there as everywhere; the namespaced overlay's Role does not (run the canary with your own
/// credentials there).
pub const CANARY: &[Rule] = &[
    ns("", "pods", "create"),
    ns("", "pods", "get"),
    ns("", "pods", "delete"),
    ns("networking.k8s.io", "networkpolicies", "create"),
    ns("networking.k8s.io", "networkpolicies", "get"),
    ns("networking.k8s.io", "networkpolicies", "delete"),
];

/// Every rule a drill of `kind` needs beyond firedrill's own namespace. dependency-failure is
/// taken with all its modes (block, scale-to-zero, http-fault): the table is by kind.
pub fn needs(kind: Kind) -> Vec<Rule> {
    let own: &[&[Rule]] = match kind {
        Kind::Probe => return Vec::new(),
        Kind::PodKill => &[KILL],
        Kind::ContainerKill => &[HELPER],
        Kind::NetworkDegrade => &[HELPER, HELPER_REPORT],
        Kind::NodeDrain => &[NODES, CORDON, KILL],
        Kind::ResourceStress => &[NODES, HELPER, HELPER_REPORT],
        // HELPER: the effect canary (drill/effect/reach.rs), a pod created and deleted.
        Kind::NetworkPartition => &[ISOLATE, HELPER],
        Kind::DependencyFailure => &[ISOLATE, HELPER, SCALE, PROXY],
        Kind::RegionFailover => &[ISOLATE, SCALE],
        // Taken with both modes (drain, partition): the table is by kind.
        Kind::ZoneOutage => &[
            NODES,
            CORDON,
            KILL_ANYWHERE,
            ISOLATE_ANYWHERE,
            CANARY_ANYWHERE,
        ],
        // A scenario's own reads are the guard's; each step needs its own kind's rules.
        Kind::Scenario => &[],
    };
    let mut rules: Vec<Rule> = GUARD
        .iter()
        .chain(own.iter().copied().flatten())
        .copied()
        .collect();
    rules.sort();
    rules.dedup();
    rules
}

/// Every rule of every kind, the sweep's and the canary's: what the ClusterRoles of deploy/kubernetes must
/// grant, exactly.
pub fn every_rule() -> Vec<Rule> {
    let mut rules: Vec<Rule> = Kind::ALL.into_iter().flat_map(needs).collect();
    rules.extend(SWEEP);
    rules.extend(CANARY);
    rules.sort();
    rules.dedup();
    rules
}

/// deploy/kubernetes's ClusterRoles, as shipped in this binary.
const CLUSTER_ROLES: &str = include_str!("../../../deploy/kubernetes/clusterrole.yaml");
/// Where they are, for people to apply.
pub const CLUSTER_ROLE_FILE: &str = "deploy/kubernetes/clusterrole.yaml";
pub const CLUSTER_ROLE_BINDING_FILE: &str = "deploy/kubernetes/clusterrolebinding.yaml";

/// The ClusterRole of deploy/kubernetes that grants `rule`, by name.
pub fn granted_by(rule: &Rule) -> Option<String> {
    for doc in CLUSTER_ROLES.split("\n---\n") {
        let Ok(node) = firedrill_reader::yaml::parse(doc) else {
            continue;
        };
        let value = firedrill_reader::yaml::to_json(&node);
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let grants = value["rules"].as_array().is_some_and(|rules| {
            rules.iter().any(|r| {
                strings(&r["apiGroups"]).iter().any(|g| g == rule.group)
                    && strings(&r["resources"]).iter().any(|x| x == rule.resource)
                    && strings(&r["verbs"]).iter().any(|v| v == rule.verb)
            })
        });
        if grants {
            return value["metadata"]["name"].as_str().map(str::to_owned);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_granted_by_a_shipped_cluster_role() {
        for rule in every_rule() {
            assert!(granted_by(&rule).is_some(), "{rule:?}");
        }
        assert_eq!(
            granted_by(&ns("", "pods/eviction", "create")).as_deref(),
            Some("firedrill-faults")
        );
        assert_eq!(
            granted_by(&all("", "nodes", "list")).as_deref(),
            Some("firedrill-guard")
        );
        assert_eq!(granted_by(&ns("", "secrets", "list")), None);
    }

    #[test]
    fn a_probe_needs_nothing_and_a_drain_cordons() {
        assert!(needs(Kind::Probe).is_empty());
        assert!(needs(Kind::NodeDrain).contains(&all("", "nodes", "patch")));
        assert!(!needs(Kind::PodKill).contains(&all("", "nodes", "patch")));
    }
}
