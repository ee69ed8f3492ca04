//! Undo records: what a ledger keeps for each change, and how each is undone from the state the
//! object is in now. Deciding is pure; the replayer fetches the object and carries the decision
//! out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::object::{merge_patch, ObjectRef, Operation};

/// How to undo one change. Every record holds the exact prior state: nothing is ever restored to
/// a hard-coded "normal".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum UndoRecord {
    /// firedrill created the object: delete it.
    DeleteCreated { target: ObjectRef },
    /// firedrill set the field at `path` (a JSON pointer) from `prior` to `applied` (`None`:
    /// absent): restore `prior`, unless the field holds something else by now.
    RestoreField {
        target: ObjectRef,
        path: String,
        prior: Option<Value>,
        applied: Option<Value>,
    },
    /// firedrill cordoned the node: uncordon it, unless it was cordoned before.
    Uncordon {
        node: String,
        was_unschedulable: bool,
    },
    /// firedrill changed a workload's replicas: restore the count, unless it changed since.
    RestoreReplicas {
        target: ObjectRef,
        prior: i64,
        applied: i64,
        /// A HorizontalPodAutoscaler that owns the count, noted in the report.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hpa: Option<String>,
    },
    /// firedrill swapped a Service's selector: restore the recorded one, unless it changed since.
    RestoreSelector {
        service: ObjectRef,
        prior: BTreeMap<String, String>,
        applied: BTreeMap<String, String>,
    },
    /// A change outside Kubernetes (a DNS record set, a health check): the handler registered for
    /// `system` undoes it from `record`, which holds the exact prior state.
    External { system: String, record: Value },
    /// firedrill killed a pod; its controller (`owner`, `Kind/name`) recreates it. Nothing to
    /// undo: the record says what was done, and recovery is measured, not restored.
    Recreated { pod: ObjectRef, owner: String },
}

/// A step nothing undoes (a database promotion), written ahead like every change and kept in
/// the ledger so that every revert, `stop` and `rollback` says so. On the wire it is the
/// `promotion` external record `{irreversible, from, to}` (the format open ledgers already hold);
/// this type is the one place that knows that shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Irreversible {
    /// What was done and how to undo it by hand, for people.
    pub note: String,
    /// The region it was done from and in.
    pub from: String,
    pub to: String,
}

impl Irreversible {
    pub fn record(&self) -> UndoRecord {
        UndoRecord::External {
            system: crate::scope::PROMOTION.to_owned(),
            record: serde_json::json!({
                "irreversible": self.note,
                "from": self.from,
                "to": self.to,
            }),
        }
    }

    /// The irreversible step an external record is, if it is one: a `promotion` record with a
    /// note (from and to may be absent in what other writers left).
    fn of(system: &str, record: &Value) -> Option<Irreversible> {
        let text = |k: &str| record.get(k).and_then(Value::as_str).map(str::to_owned);
        (system == crate::scope::PROMOTION).then_some(())?;
        Some(Irreversible {
            note: text("irreversible")?,
            from: text("from").unwrap_or_default(),
            to: text("to").unwrap_or_default(),
        })
    }
}

impl UndoRecord {
    /// The irreversible step this record is, if it is one.
    pub fn irreversible(&self) -> Option<Irreversible> {
        match self {
            UndoRecord::External { system, record } => Irreversible::of(system, record),
            _ => None,
        }
    }

    /// The object the record restores, if it lives in Kubernetes.
    pub fn target(&self) -> Option<ObjectRef> {
        match self {
            UndoRecord::DeleteCreated { target }
            | UndoRecord::RestoreField { target, .. }
            | UndoRecord::RestoreReplicas { target, .. } => Some(target.clone()),
            UndoRecord::RestoreSelector { service, .. } => Some(service.clone()),
            UndoRecord::Uncordon { node, .. } => Some(ObjectRef::node(node)),
            UndoRecord::External { .. } | UndoRecord::Recreated { .. } => None,
        }
    }
}

/// What undoing one record takes, judged on the object as it is now.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Make this call; the text says what it restores.
    Apply(Operation, String),
    /// Nothing to do: the object is already as it was before the drill (or gone, for something
    /// firedrill created). Replaying twice lands here the second time.
    AlreadyDone(String),
    /// Someone changed it since: left as it is, and said.
    Leave(String),
}

impl Decision {
    /// What the decision says, for people.
    pub fn text(&self) -> &str {
        match self {
            Decision::Apply(_, text) | Decision::AlreadyDone(text) | Decision::Leave(text) => text,
        }
    }
}

fn field<'v>(object: &'v Value, path: &str) -> Option<&'v Value> {
    object.pointer(path).filter(|v| !v.is_null())
}

fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "(absent)".to_owned(), Value::to_string)
}

/// Decides how to undo `record` of run `run`, given the object as it is now (`None`: it does
/// not exist). External records are decided by their handler, not here.
pub fn decide(run: &str, record: &UndoRecord, current: Option<&Value>) -> Decision {
    match record {
        UndoRecord::DeleteCreated { target } => decide_delete(run, target, current),
        UndoRecord::RestoreField {
            target,
            path,
            prior,
            applied,
        } => decide_field(target, path, prior.as_ref(), applied.as_ref(), current),
        UndoRecord::Uncordon {
            node,
            was_unschedulable,
        } => decide_uncordon(node, *was_unschedulable, current),
        UndoRecord::RestoreReplicas {
            target,
            prior,
            applied,
            hpa,
        } => decide_replicas(target, *prior, *applied, hpa.as_deref(), current),
        UndoRecord::RestoreSelector {
            service,
            prior,
            applied,
        } => decide_selector(service, prior, applied, current),
        UndoRecord::External { system, record } => decide_external(system, record, current),
        UndoRecord::Recreated { pod, owner } => Decision::AlreadyDone(format!(
            "{pod} was killed; its controller {owner} recreates it (nothing to undo)"
        )),
    }
}

/// An object the drill created is deleted, but only while it is this run's: an object of that
/// name from anyone else (it existed before, or was made after a crash) is not firedrill's to
/// remove.
fn decide_delete(run: &str, target: &ObjectRef, current: Option<&Value>) -> Decision {
    match current {
        None => Decision::AlreadyDone(format!("{target} is already gone")),
        Some(object)
            if object.pointer("/metadata/labels/firedrill.io~1run").and_then(Value::as_str)
                != Some(run) =>
        {
            Decision::Leave(format!(
                "{target} exists but was not created by run {run} (it is not labelled firedrill.io/run={run}); left alone"
            ))
        }
        Some(_) => Decision::Apply(
            Operation::Delete {
                target: target.clone(),
            },
            format!("delete {target}, which the drill created"),
        ),
    }
}

/// A field is restored to `prior` while it still holds what the drill `applied`.
fn decide_field(
    target: &ObjectRef,
    path: &str,
    prior: Option<&Value>,
    applied: Option<&Value>,
    current: Option<&Value>,
) -> Decision {
    let Some(object) = current else {
        return Decision::Leave(format!(
            "{target} no longer exists; nothing to restore {path} on"
        ));
    };
    let now = field(object, path);
    if now == prior {
        Decision::AlreadyDone(format!("{target} {path} is already {}", show(now)))
    } else if now == applied {
        Decision::Apply(
            Operation::Patch {
                target: target.clone(),
                patch: merge_patch(path, now, prior),
            },
            format!("restore {target} {path} to {}", show(prior)),
        )
    } else {
        Decision::Leave(format!(
            "{target} {path} changed since the drill set it to {} (now {}); left alone, restore {} by hand if it should be",
            show(applied),
            show(now),
            show(prior)
        ))
    }
}

/// A node the drill cordoned is uncordoned; one that was cordoned before stays cordoned.
fn decide_uncordon(node: &str, was_unschedulable: bool, current: Option<&Value>) -> Decision {
    let Some(object) = current else {
        return Decision::Leave(format!("Node {node} no longer exists"));
    };
    let unschedulable = field(object, "/spec/unschedulable") == Some(&Value::Bool(true));
    if was_unschedulable {
        Decision::AlreadyDone(format!(
            "Node {node} was cordoned before the drill; left cordoned"
        ))
    } else if !unschedulable {
        Decision::AlreadyDone(format!("Node {node} is already schedulable"))
    } else {
        Decision::Apply(
            Operation::Patch {
                target: ObjectRef::node(node),
                patch: serde_json::json!({ "spec": { "unschedulable": null } }),
            },
            format!("uncordon Node {node} (it was schedulable before the drill)"),
        )
    }
}

/// A workload's replica count goes back to `prior` while it is still the count the drill
/// `applied`; an autoscaler that owns the count is named in every answer.
fn decide_replicas(
    target: &ObjectRef,
    prior: i64,
    applied: i64,
    hpa: Option<&str>,
    current: Option<&Value>,
) -> Decision {
    let Some(object) = current else {
        return Decision::Leave(format!("{target} no longer exists"));
    };
    // An absent count is 1, as the API server defaults it.
    let now = field(object, "/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let owned = hpa
        .map(|h| format!(" (HorizontalPodAutoscaler {h} owns this count and may change it)"))
        .unwrap_or_default();
    if now == prior {
        Decision::AlreadyDone(format!("{target} already has {prior} replicas{owned}"))
    } else if now == applied {
        Decision::Apply(
            Operation::Patch {
                target: target.clone(),
                patch: serde_json::json!({ "spec": { "replicas": prior } }),
            },
            format!("scale {target} back from {applied} to {prior} replicas{owned}"),
        )
    } else {
        Decision::Leave(format!(
            "{target} has {now} replicas, not the {applied} the drill set; changed since{owned}; left alone (it had {prior} before)"
        ))
    }
}

/// A Service's selector goes back to `prior` while it is still the one the drill `applied`.
fn decide_selector(
    service: &ObjectRef,
    prior: &BTreeMap<String, String>,
    applied: &BTreeMap<String, String>,
    current: Option<&Value>,
) -> Decision {
    let Some(object) = current else {
        return Decision::Leave(format!("{service} no longer exists"));
    };
    let now: Option<BTreeMap<String, String>> =
        field(object, "/spec/selector").and_then(|v| serde_json::from_value(v.clone()).ok());
    let now = now.unwrap_or_default();
    if &now == prior {
        Decision::AlreadyDone(format!("{service} already selects {prior:?}"))
    } else if &now == applied {
        Decision::Apply(
            Operation::Patch {
                target: service.clone(),
                patch: merge_patch(
                    "/spec/selector",
                    Some(&serde_json::json!(now)),
                    Some(&serde_json::json!(prior)),
                ),
            },
            format!("restore {service} selector to {prior:?}"),
        )
    } else {
        Decision::Leave(format!(
            "{service} selector changed since the drill set {applied:?} (now {now:?}); left alone, it was {prior:?}"
        ))
    }
}

/// What an external record names, for people: its target's fields.
pub fn external_target(system: &str, record: &Value) -> String {
    let target = record.get("target").and_then(Value::as_object);
    let fields: Vec<String> = target
        .into_iter()
        .flatten()
        .filter(|(k, v)| !v.is_null() && *k != "endpoint" && *k != "wait_seconds")
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k} {s}"),
            other => format!("{k} {other}"),
        })
        .collect();
    format!("{system} {}", fields.join(" "))
}

/// An external record (`{target, prior, applied}`) judged like a field: restore `prior` while
/// the target still holds what the drill applied. `current` is compared on the keys the record
/// holds, so the adapter may read more than it recorded.
fn decide_external(system: &str, record: &Value, current: Option<&Value>) -> Decision {
    // A step that cannot be undone (a database promotion) is kept in the ledger so that every
    // revert says so.
    if let Some(step) = Irreversible::of(system, record) {
        return Decision::Leave(format!("{system}: {}", step.note));
    }
    let what = external_target(system, record);
    let (Some(prior), Some(applied)) = (record.get("prior"), record.get("applied")) else {
        return Decision::Leave(format!(
            "the record of {what} has no prior or applied state; undo it by hand"
        ));
    };
    let Some(current) = current else {
        return Decision::Leave(format!("{what} no longer exists; nothing to restore"));
    };
    let keys: Vec<&String> = prior
        .as_object()
        .into_iter()
        .chain(applied.as_object())
        .flat_map(|m| m.keys())
        .collect();
    let seen = |want: &Value| match want.as_object() {
        Some(_) => keys
            .iter()
            .all(|k| current.get(k.as_str()) == want.get(k.as_str())),
        None => current == want,
    };
    if seen(prior) {
        Decision::AlreadyDone(format!("{what} is already as before the drill ({prior})"))
    } else if seen(applied) {
        Decision::Apply(
            Operation::External {
                system: system.to_owned(),
                action: serde_json::json!({ "target": record.get("target"), "set": prior }),
            },
            format!("restore {what} to {prior}"),
        )
    } else {
        Decision::Leave(format!(
            "{what} changed since the drill set {applied} (now {current}); left alone, restore {prior} by hand if it should be"
        ))
    }
}

/// One step a fault kind plans: the change, and how to undo it. The applier writes `undo` to the
/// ledger before it makes `forward`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub forward: Operation,
    pub undo: UndoRecord,
}

impl Step {
    /// Create an object; undo: delete it.
    pub fn create(object: Value) -> Option<Step> {
        let target = ObjectRef::of(&object)?;
        Some(Step {
            forward: Operation::Create { object },
            undo: UndoRecord::DeleteCreated { target },
        })
    }

    /// Cordon a node, remembering whether it already was.
    pub fn cordon(node: &str, was_unschedulable: bool) -> Step {
        Step {
            forward: Operation::Patch {
                target: ObjectRef::node(node),
                patch: serde_json::json!({ "spec": { "unschedulable": true } }),
            },
            undo: UndoRecord::Uncordon {
                node: node.to_owned(),
                was_unschedulable,
            },
        }
    }

    /// Scale a workload from `prior` to `replicas`.
    pub fn scale(target: ObjectRef, prior: i64, replicas: i64, hpa: Option<String>) -> Step {
        Step {
            forward: Operation::Patch {
                target: target.clone(),
                patch: serde_json::json!({ "spec": { "replicas": replicas } }),
            },
            undo: UndoRecord::RestoreReplicas {
                target,
                prior,
                applied: replicas,
                hpa,
            },
        }
    }

    /// Point a Service at other pods.
    pub fn swap_selector(
        service: ObjectRef,
        prior: BTreeMap<String, String>,
        selector: BTreeMap<String, String>,
    ) -> Step {
        Step {
            forward: Operation::Patch {
                target: service.clone(),
                patch: merge_patch(
                    "/spec/selector",
                    Some(&serde_json::json!(prior)),
                    Some(&serde_json::json!(selector)),
                ),
            },
            undo: UndoRecord::RestoreSelector {
                service,
                prior,
                applied: selector,
            },
        }
    }

    /// Kill a pod of a workload (`owner`, `Kind/name`) that recreates it.
    pub fn kill(pod: ObjectRef, owner: &str, evict: bool, grace_seconds: Option<i64>) -> Step {
        Step {
            forward: Operation::Kill {
                pod: pod.clone(),
                evict,
                grace_seconds,
            },
            undo: UndoRecord::Recreated {
                pod,
                owner: owner.to_owned(),
            },
        }
    }

    /// Set one field of an object.
    pub fn set_field(
        target: ObjectRef,
        path: &str,
        prior: Option<Value>,
        value: Option<Value>,
    ) -> Step {
        Step {
            forward: Operation::Patch {
                target: target.clone(),
                patch: merge_patch(path, prior.as_ref(), value.as_ref()),
            },
            undo: UndoRecord::RestoreField {
                target,
                path: path.to_owned(),
                prior,
                applied: value,
            },
        }
    }
}
