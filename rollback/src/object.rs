//! The objects an undo record can name, and the changes made to them, as data.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kinds of object firedrill may change or create. A closed set: an adapter knows how to
/// reach each, and a ledger naming anything else is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ObjectKind {
    ConfigMap,
    Deployment,
    NetworkPolicy,
    Node,
    Pod,
    Service,
    StatefulSet,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 7] = [
        ObjectKind::ConfigMap,
        ObjectKind::Deployment,
        ObjectKind::NetworkPolicy,
        ObjectKind::Node,
        ObjectKind::Pod,
        ObjectKind::Service,
        ObjectKind::StatefulSet,
    ];

    /// `apiVersion` of the kind.
    pub fn api_version(self) -> &'static str {
        match self {
            ObjectKind::Deployment | ObjectKind::StatefulSet => "apps/v1",
            ObjectKind::NetworkPolicy => "networking.k8s.io/v1",
            ObjectKind::ConfigMap | ObjectKind::Node | ObjectKind::Pod | ObjectKind::Service => {
                "v1"
            }
        }
    }

    /// The resource an RBAC rule names for the kind (`deployments.apps`).
    pub fn resource(self) -> &'static str {
        match self {
            ObjectKind::ConfigMap => "configmaps",
            ObjectKind::Deployment => "deployments.apps",
            ObjectKind::NetworkPolicy => "networkpolicies.networking.k8s.io",
            ObjectKind::Node => "nodes",
            ObjectKind::Pod => "pods",
            ObjectKind::Service => "services",
            ObjectKind::StatefulSet => "statefulsets.apps",
        }
    }

    pub fn is_namespaced(self) -> bool {
        self != ObjectKind::Node
    }

    pub fn parse(text: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|k| k.to_string() == text)
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One object: kind, namespace (none for a Node) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: ObjectKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn namespaced(kind: ObjectKind, namespace: &str, name: &str) -> Self {
        ObjectRef {
            kind,
            namespace: Some(namespace.to_owned()),
            name: name.to_owned(),
        }
    }

    pub fn node(name: &str) -> Self {
        ObjectRef {
            kind: ObjectKind::Node,
            namespace: None,
            name: name.to_owned(),
        }
    }

    /// The reference of a manifest (`kind`, `metadata.namespace`, `metadata.name`).
    pub fn of(object: &Value) -> Option<ObjectRef> {
        let kind = ObjectKind::parse(object.get("kind")?.as_str()?)?;
        ObjectRef::named(object, kind)
    }

    /// The reference of an object of `kind` (as a list returns them: without `kind`).
    pub fn named(object: &Value, kind: ObjectKind) -> Option<ObjectRef> {
        let metadata = object.get("metadata")?;
        Some(ObjectRef {
            kind,
            namespace: metadata
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_owned),
            name: metadata.get("name")?.as_str()?.to_owned(),
        })
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// A change to make, as data: what a fault kind plans, what a revert does, what `--render`
/// prints. Only the applier turns it into an API call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Operation {
    /// Create this manifest (it carries firedrill's labels and expiry).
    Create { object: Value },
    /// Delete the object (gone already is fine).
    Delete { target: ObjectRef },
    /// A JSON merge patch (RFC 7386) of the object: `null` removes a field.
    Patch { target: ObjectRef, patch: Value },
    /// Kill a pod: through the Eviction API (PodDisruptionBudgets are enforced by the API
    /// server), or by deleting it with a grace period.
    Kill {
        pod: ObjectRef,
        evict: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grace_seconds: Option<i64>,
    },
    /// A change outside Kubernetes (e.g. a DNS record set), for the handler of `system`.
    External { system: String, action: Value },
}

impl Operation {
    /// What the operation touches, for messages and the protection check.
    pub fn target(&self) -> Option<ObjectRef> {
        match self {
            Operation::Create { object } => ObjectRef::of(object),
            Operation::Delete { target } | Operation::Patch { target, .. } => Some(target.clone()),
            Operation::Kill { pod, .. } => Some(pod.clone()),
            Operation::External { .. } => None,
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Operation::Create { object } => match ObjectRef::of(object) {
                Some(r) => format!("create {r}"),
                None => "create an object".to_owned(),
            },
            Operation::Delete { target } => format!("delete {target}"),
            Operation::Patch { target, patch } => format!("patch {target}: {patch}"),
            Operation::Kill {
                pod, evict: true, ..
            } => format!("evict {pod}"),
            Operation::Kill {
                pod, grace_seconds, ..
            } => match grace_seconds {
                Some(g) => format!("delete {pod} (grace period {g}s)"),
                None => format!("delete {pod}"),
            },
            Operation::External { system, action } => format!("{system}: {action}"),
        }
    }
}

/// The merge patch that sets the field at `path` (JSON pointer of object keys) to `value`
/// (`None`: removes it), given what the field holds now. Mappings are diffed all the way down:
/// keys present now but not wanted are nulled at every depth, so the result equals `value`
/// exactly (a merge patch alone would keep them).
pub fn merge_patch(path: &str, current: Option<&Value>, value: Option<&Value>) -> Value {
    let mut leaf = match value {
        Some(want) => diff(current, want),
        None => Value::Null,
    };
    for key in path
        .trim_start_matches('/')
        .rsplit('/')
        .filter(|k| !k.is_empty())
    {
        let key = key.replace("~1", "/").replace("~0", "~");
        let mut wrapper = serde_json::Map::new();
        wrapper.insert(key, leaf);
        leaf = Value::Object(wrapper);
    }
    leaf
}

/// The merge patch that turns `current` into `want`.
fn diff(current: Option<&Value>, want: &Value) -> Value {
    match (current, want) {
        (Some(Value::Object(now)), Value::Object(want)) => {
            let mut patch = serde_json::Map::new();
            for (key, value) in want {
                patch.insert(key.clone(), diff(now.get(key), value));
            }
            for key in now.keys() {
                if !want.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            Value::Object(patch)
        }
        (_, want) => want.clone(),
    }
}

/// Applies a merge patch to a document (RFC 7386): what an API server does with one (used by
/// in-memory clusters in tests).
pub fn apply_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                apply_merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}
