//! Reads a cluster snapshot — what `kubectl get pods,deployments,statefulsets,replicasets,
//! daemonsets,poddisruptionbudgets,namespaces,nodes -A -o yaml` prints — into the guard's model.
//!
//! Objects are read as JSON values, so the same conversion serves a live cluster's objects.
//! Kinds the guard does not need (Services, Nodes, ...) are skipped. A field that is present but
//! malformed is an error naming the object and field; a missing field takes the value that is
//! safe (a pod with no status is not ready; a pod with no creation time is brand new).

use std::collections::HashMap;
use std::path::Path;

use chrono::DateTime;
use firedrill_safety::cluster::{
    Cluster, IntOrPercent, Labels, Namespace, Owner, OwnerKind, OwnerRef, Pdb, Pod,
};
use firedrill_safety::{Percent, Requirement, Selector};
use serde_json::Value;

use crate::config::yaml;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read {path}: {source} (check the path given to --cluster)")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
}

pub fn load(path: &Path) -> Result<Cluster, SnapshotError> {
    let text = std::fs::read_to_string(path).map_err(|source| SnapshotError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses a snapshot; `file` names it in messages.
pub fn parse(text: &str, file: &str) -> Result<Cluster, SnapshotError> {
    let invalid = |mark: yaml::Mark, message: String| SnapshotError::Invalid {
        file: file.to_owned(),
        line: mark.line,
        column: mark.column,
        message,
    };
    let root = yaml::parse(text).map_err(|e| invalid(e.mark, e.message))?;
    let items: Vec<(yaml::Mark, Value)> = match &root.value {
        yaml::Value::Mapping(entries) => {
            let list = entries.iter().find(
                |(k, _)| matches!(&k.value, yaml::Value::Scalar { text, .. } if text == "items"),
            );
            match list.map(|(_, v)| &v.value) {
                Some(yaml::Value::Sequence(items)) => {
                    items.iter().map(|n| (n.mark, yaml::to_json(n))).collect()
                }
                // A single object rather than a List.
                None => vec![(root.mark, yaml::to_json(&root))],
                Some(_) => {
                    return Err(invalid(
                        root.mark,
                        "items: expected a list of Kubernetes objects".to_owned(),
                    ))
                }
            }
        }
        _ => {
            return Err(invalid(
                root.mark,
                "expected a Kubernetes List (the output of kubectl get ... -o yaml)".to_owned(),
            ))
        }
    };
    let objects: Vec<&Value> = items.iter().map(|(_, v)| v).collect();
    from_objects(&objects).map_err(|(index, message)| invalid(items[index].0, message))
}

/// Builds the model from Kubernetes objects. The error carries the index of the bad object.
pub fn from_objects(objects: &[&Value]) -> Result<Cluster, (usize, String)> {
    let mut cluster = Cluster::default();
    // ReplicaSet (namespace, name) -> its controlling Deployment, to report pods by workload.
    let mut replica_set_parents: HashMap<(String, String), Option<OwnerRef>> = HashMap::new();
    let mut pods: Vec<(usize, &Value)> = Vec::new();

    for (index, object) in objects.iter().enumerate() {
        let o = Object::new(object).map_err(|m| (index, m))?;
        let result = match o.kind.as_str() {
            "Namespace" => o.labels().and_then(|labels| {
                cluster.namespaces.push(Namespace {
                    name: o.name.clone(),
                    labels,
                    annotations: o.string_map("/metadata/annotations")?,
                });
                Ok(())
            }),
            "Deployment" | "StatefulSet" => o.replicas("/spec/replicas", 1).and_then(|desired| {
                cluster.owners.push(o.owner(desired)?);
                Ok(())
            }),
            "DaemonSet" => o
                .replicas("/status/desiredNumberScheduled", 0)
                .and_then(|desired| {
                    cluster.owners.push(o.owner(desired)?);
                    Ok(())
                }),
            "ReplicaSet" => o.controller().and_then(|parent| {
                let parent = parent.filter(|p| p.kind == OwnerKind::Deployment);
                if parent.is_none() {
                    let desired = o.replicas("/spec/replicas", 1)?;
                    cluster.owners.push(o.owner(desired)?);
                }
                replica_set_parents.insert((o.namespace.clone(), o.name.clone()), parent);
                Ok(())
            }),
            "PodDisruptionBudget" => o.pdb().map(|pdb| cluster.pdbs.push(pdb)),
            "Pod" => {
                pods.push((index, object));
                Ok(())
            }
            _ => Ok(()),
        };
        result.map_err(|m| (index, format!("{} {}: {m}", o.kind, o.path())))?;
    }
    for (index, object) in pods {
        let o = Object::new(object).map_err(|m| (index, m))?;
        let pod = o
            .pod(&replica_set_parents)
            .map_err(|m| (index, format!("Pod {}: {m}", o.path())))?;
        cluster.pods.push(pod);
    }
    Ok(cluster)
}

/// One object, with the identifying fields read up front.
struct Object<'a> {
    value: &'a Value,
    kind: String,
    namespace: String,
    name: String,
}

impl<'a> Object<'a> {
    fn new(value: &'a Value) -> Result<Self, String> {
        let text = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
        let kind = text("/kind").ok_or("an object without `kind`")?.to_owned();
        let name = text("/metadata/name")
            .ok_or_else(|| format!("a {kind} without metadata.name"))?
            .to_owned();
        let namespace = text("/metadata/namespace").unwrap_or("").to_owned();
        Ok(Object {
            value,
            kind,
            namespace,
            name,
        })
    }

    fn path(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }

    fn field(pointer: &str) -> String {
        pointer.trim_start_matches('/').replace('/', ".")
    }

    fn string_map(&self, pointer: &str) -> Result<Labels, String> {
        match self.value.pointer(pointer) {
            None | Some(Value::Null) => Ok(Labels::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    Value::Bool(b) => Ok((k.clone(), b.to_string())),
                    Value::Number(n) => Ok((k.clone(), n.to_string())),
                    _ => Err(format!("{}.{k}: expected a string", Self::field(pointer))),
                })
                .collect(),
            Some(_) => Err(format!(
                "{}: expected a mapping of strings",
                Self::field(pointer)
            )),
        }
    }

    fn labels(&self) -> Result<Labels, String> {
        self.string_map("/metadata/labels")
    }

    fn replicas(&self, pointer: &str, default: u32) -> Result<u32, String> {
        match self.value.pointer(pointer) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    format!(
                        "{}: expected a whole number, found {v}",
                        Self::field(pointer)
                    )
                }),
        }
    }

    fn owner(&self, desired: u32) -> Result<Owner, String> {
        Ok(Owner {
            key: OwnerRef {
                kind: OwnerKind::parse(&self.kind),
                namespace: self.namespace.clone(),
                name: self.name.clone(),
            },
            labels: self.labels()?,
            desired,
        })
    }

    /// The owner reference with `controller: true`, if any.
    fn controller(&self) -> Result<Option<OwnerRef>, String> {
        let Some(refs) = self.value.pointer("/metadata/ownerReferences") else {
            return Ok(None);
        };
        let refs = refs
            .as_array()
            .ok_or("metadata.ownerReferences: expected a list")?;
        for r in refs {
            if r.get("controller").and_then(Value::as_bool) == Some(true) {
                let kind = r.get("kind").and_then(Value::as_str);
                let name = r.get("name").and_then(Value::as_str);
                let (Some(kind), Some(name)) = (kind, name) else {
                    return Err(
                        "metadata.ownerReferences: a controller without kind or name".into(),
                    );
                };
                return Ok(Some(OwnerRef {
                    kind: OwnerKind::parse(kind),
                    namespace: self.namespace.clone(),
                    name: name.to_owned(),
                }));
            }
        }
        Ok(None)
    }

    fn pod(
        &self,
        replica_sets: &HashMap<(String, String), Option<OwnerRef>>,
    ) -> Result<Pod, String> {
        let mut owner = self.controller()?;
        if let Some(o) = &owner {
            if o.kind == OwnerKind::ReplicaSet {
                if let Some(Some(parent)) = replica_sets.get(&(o.namespace.clone(), o.name.clone()))
                {
                    owner = Some(parent.clone());
                }
            }
        }
        let terminating = self
            .value
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null());
        let phase = match self.value.pointer("/status/phase") {
            None | Some(Value::Null) => "Unknown".to_owned(),
            Some(Value::String(p)) => p.clone(),
            Some(v) => return Err(format!("status.phase: expected a string, found {v}")),
        };
        let ready = self
            .value
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|conditions| {
                conditions.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Ready")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            });
        let created = match self.value.pointer("/metadata/creationTimestamp") {
            None | Some(Value::Null) => i64::MAX,
            Some(Value::String(t)) => DateTime::parse_from_rfc3339(t)
                .map(|t| t.timestamp())
                .map_err(|e| format!("metadata.creationTimestamp: {t:?} is not RFC 3339 ({e})"))?,
            Some(v) => {
                return Err(format!(
                    "metadata.creationTimestamp: expected a string, found {v}"
                ))
            }
        };
        Ok(Pod {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            labels: self.labels()?,
            owner,
            running_and_ready: phase == "Running" && ready && !terminating,
            phase: if terminating {
                "Terminating".to_owned()
            } else {
                phase
            },
            created,
            node: self
                .value
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    fn int_or_percent(&self, pointer: &str) -> Result<Option<IntOrPercent>, String> {
        match self.value.pointer(pointer) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(|n| Some(IntOrPercent::Int(n)))
                .ok_or_else(|| format!("{}: {n} is not a whole number", Self::field(pointer))),
            Some(Value::String(s)) => Percent::parse(s, false)
                .map(|p| Some(IntOrPercent::Percent(p)))
                .map_err(|e| format!("{}: {e}", Self::field(pointer))),
            Some(v) => Err(format!(
                "{}: expected a number or a percentage, found {v}",
                Self::field(pointer)
            )),
        }
    }

    fn pdb(&self) -> Result<Pdb, String> {
        let selector = match self.value.pointer("/spec/selector") {
            None | Some(Value::Null) => None,
            Some(s) => Some(label_selector(s).map_err(|e| format!("spec.selector: {e}"))?),
        };
        Ok(Pdb {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            selector,
            min_available: self.int_or_percent("/spec/minAvailable")?,
            max_unavailable: self.int_or_percent("/spec/maxUnavailable")?,
            disruptions_allowed: self
                .value
                .pointer("/status/disruptionsAllowed")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok()),
        })
    }
}

/// A `metav1.LabelSelector` (matchLabels and matchExpressions) as a selector.
pub fn label_selector(value: &Value) -> Result<Selector, String> {
    let mut selector = Selector::everything();
    if let Some(labels) = value.get("matchLabels").filter(|v| !v.is_null()) {
        let labels = labels
            .as_object()
            .ok_or("matchLabels: expected a mapping")?;
        for (k, v) in labels {
            let v = v
                .as_str()
                .ok_or_else(|| format!("matchLabels.{k}: expected a string"))?;
            selector = selector.with(Requirement::Equals(k.clone(), v.to_owned()));
        }
    }
    if let Some(expressions) = value.get("matchExpressions").filter(|v| !v.is_null()) {
        let expressions = expressions
            .as_array()
            .ok_or("matchExpressions: expected a list")?;
        for (i, e) in expressions.iter().enumerate() {
            let key = e
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("matchExpressions[{i}].key: missing"))?
                .to_owned();
            let values = e
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| {
                    vs.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let requirement = match e.get("operator").and_then(Value::as_str) {
                Some("In") => Requirement::In(key, values),
                Some("NotIn") => Requirement::NotIn(key, values),
                Some("Exists") => Requirement::Exists(key),
                Some("DoesNotExist") => Requirement::DoesNotExist(key),
                other => {
                    return Err(format!(
                        "matchExpressions[{i}].operator: {other:?} is not In, NotIn, Exists or DoesNotExist"
                    ))
                }
            };
            selector = selector.with(requirement);
        }
    }
    Ok(selector)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNAPSHOT: &str = r#"
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Namespace
    metadata: { name: pake-api, labels: { team: api }, annotations: { firedrill.io/enabled: "true" } }
  - apiVersion: apps/v1
    kind: Deployment
    metadata: { name: api, namespace: pake-api, labels: { app: pake-api } }
    spec: { replicas: 3 }
  - apiVersion: apps/v1
    kind: ReplicaSet
    metadata:
      name: api-7d9f
      namespace: pake-api
      ownerReferences: [{ apiVersion: apps/v1, kind: Deployment, name: api, controller: true, uid: x }]
    spec: { replicas: 3 }
  - apiVersion: v1
    kind: Pod
    metadata:
      name: api-7d9f-abcde
      namespace: pake-api
      labels: { app: pake-api }
      creationTimestamp: "2026-11-01T10:00:00Z"
      ownerReferences: [{ apiVersion: apps/v1, kind: ReplicaSet, name: api-7d9f, controller: true, uid: y }]
    spec: { nodeName: node-1 }
    status:
      phase: Running
      conditions: [{ type: Ready, status: "True" }]
  - apiVersion: v1
    kind: Pod
    metadata:
      name: api-7d9f-zzzzz
      namespace: pake-api
      labels: { app: pake-api }
      deletionTimestamp: "2026-11-02T10:00:00Z"
      ownerReferences: [{ apiVersion: apps/v1, kind: ReplicaSet, name: api-7d9f, controller: true, uid: y }]
    status: { phase: Running, conditions: [{ type: Ready, status: "True" }] }
  - apiVersion: policy/v1
    kind: PodDisruptionBudget
    metadata: { name: api, namespace: pake-api }
    spec:
      minAvailable: "50%"
      selector:
        matchLabels: { app: pake-api }
        matchExpressions: [{ key: tier, operator: NotIn, values: [batch] }]
    status: { disruptionsAllowed: 1 }
  - apiVersion: v1
    kind: Service
    metadata: { name: api, namespace: pake-api }
"#;

    #[test]
    fn a_kubectl_list_becomes_the_guard_model() {
        let c = parse(SNAPSHOT, "snap.yaml").unwrap();
        assert_eq!(c.namespaces.len(), 1);
        assert_eq!(c.namespaces[0].annotations["firedrill.io/enabled"], "true");
        assert_eq!(
            c.owners.len(),
            1,
            "the ReplicaSet folds into its Deployment"
        );
        assert_eq!(c.owners[0].desired, 3);
        let pod = &c.pods[0];
        assert_eq!(
            pod.owner.as_ref().map(ToString::to_string).as_deref(),
            Some("Deployment/pake-api/api")
        );
        assert!(pod.running_and_ready);
        assert_eq!(pod.created, 1_793_527_200);
        assert_eq!(pod.node.as_deref(), Some("node-1"));
        assert!(!c.pods[1].running_and_ready);
        assert_eq!(c.pods[1].phase, "Terminating");
        assert_eq!(
            c.pods[1].created,
            i64::MAX,
            "no creation time reads as brand new"
        );
        let pdb = &c.pdbs[0];
        assert_eq!(
            pdb.min_available,
            Some(IntOrPercent::Percent(Percent::parse("50%", false).unwrap()))
        );
        assert_eq!(pdb.disruptions_allowed, Some(1));
        assert_eq!(
            pdb.selector.as_ref().map(ToString::to_string).as_deref(),
            Some("app=pake-api,tier notin (batch)")
        );
    }

    #[test]
    fn malformed_objects_are_named() {
        let bad = "kind: List\nitems:\n  - kind: Deployment\n    metadata: {name: api, namespace: x}\n    spec: {replicas: many}\n";
        let err = parse(bad, "snap.yaml").unwrap_err().to_string();
        assert_eq!(err, "snap.yaml:3:5: Deployment x/api: spec.replicas: expected a whole number, found \"many\"");
        let err = parse("kind: List\nitems:\n  - metadata: {name: a}\n", "s.yaml")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "s.yaml:3:5: an object without `kind`");
        let err = parse("- a\n- b\n", "s.yaml").unwrap_err().to_string();
        assert!(err.contains("expected a Kubernetes List"), "{err}");
        let pdb = "kind: PodDisruptionBudget\nmetadata: {name: p, namespace: n}\nspec: {maxUnavailable: lots}\n";
        let err = parse(pdb, "s.yaml").unwrap_err().to_string();
        assert!(err.starts_with("s.yaml:1:1: PodDisruptionBudget n/p: spec.maxUnavailable: \"lots\" is not a percentage"), "{err}");
    }
}
