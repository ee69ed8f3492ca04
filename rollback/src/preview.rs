//! What a revert of a saved ledger would do, found by doing it: [`replay`] runs against
//! [`AsLeft`], a cluster in memory that holds each object as the run left it, built from the
//! ledger's own records. `rollback --render` prints what this returns, so the preview and the
//! real revert are one code path and cannot disagree on a verdict or an operation.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::error::ClusterError;
use crate::ledger::Ledger;
use crate::object::{apply_merge_patch, merge_patch, ObjectRef, Operation};
use crate::replay::{rehearse, Action, Cluster, Done, Outcome, Rejection, Trust};
use crate::undo::UndoRecord;

/// A cluster holding what a ledger's open entries say the run left: every object it created
/// (labelled with the run), each field, count, selector and cordon at the value the run applied,
/// each external record at its applied state. Its changes happen in memory only, and are kept.
#[derive(Debug, Default)]
pub struct AsLeft {
    objects: Mutex<BTreeMap<ObjectRef, Value>>,
    externals: Mutex<BTreeMap<String, Value>>,
    executed: Mutex<Vec<Operation>>,
}

fn external_key(system: &str, target: &Value) -> String {
    format!("{system} {target}")
}

fn bare(target: &ObjectRef) -> Value {
    let mut metadata = json!({ "name": target.name });
    if let Some(ns) = &target.namespace {
        metadata["namespace"] = json!(ns);
    }
    json!({ "kind": target.kind.to_string(), "metadata": metadata })
}

impl AsLeft {
    /// The cluster as `ledger`'s run left it, from its open entries in the order they were made.
    pub fn of(ledger: &Ledger) -> AsLeft {
        let mut objects: BTreeMap<ObjectRef, Value> = BTreeMap::new();
        let mut externals = BTreeMap::new();
        let mut set = |target: &ObjectRef, patch: Value| {
            let object = objects
                .entry(target.clone())
                .or_insert_with(|| bare(target));
            apply_merge_patch(object, &patch);
        };
        for entry in ledger.entries.iter().filter(|e| e.state.is_open()) {
            match &entry.undo {
                UndoRecord::DeleteCreated { target } => set(
                    target,
                    json!({ "metadata": { "labels": { crate::LABEL_RUN: ledger.run } } }),
                ),
                UndoRecord::RestoreField {
                    target,
                    path,
                    applied,
                    ..
                } => set(target, merge_patch(path, None, applied.as_ref())),
                UndoRecord::Uncordon { node, .. } => set(
                    &ObjectRef::node(node),
                    json!({ "spec": { "unschedulable": true } }),
                ),
                UndoRecord::RestoreReplicas {
                    target, applied, ..
                } => set(target, json!({ "spec": { "replicas": applied } })),
                UndoRecord::RestoreSelector {
                    service, applied, ..
                } => {
                    set(service, json!({ "spec": { "selector": null } }));
                    set(service, json!({ "spec": { "selector": applied } }));
                }
                UndoRecord::External { system, record } => {
                    if let Some(applied) = record.get("applied") {
                        externals.insert(
                            external_key(system, record.get("target").unwrap_or(&Value::Null)),
                            applied.clone(),
                        );
                    }
                }
                UndoRecord::Recreated { .. } => {}
            }
        }
        AsLeft {
            objects: Mutex::new(objects),
            externals: Mutex::new(externals),
            executed: Mutex::new(Vec::new()),
        }
    }

    /// Every change made on it so far, in order.
    pub fn executed(&self) -> Vec<Operation> {
        self.executed.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// The object as it is now in memory.
    pub fn object(&self, target: &ObjectRef) -> Option<Value> {
        self.objects.lock().ok()?.get(target).cloned()
    }
}

impl Cluster for AsLeft {
    async fn get(&self, target: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        Ok(self.object(target))
    }

    async fn execute(&self, operation: &Operation) -> Result<Done, ClusterError> {
        if let Ok(mut executed) = self.executed.lock() {
            executed.push(operation.clone());
        }
        let mut objects = self
            .objects
            .lock()
            .map_err(|e| ClusterError::other(e.to_string()))?;
        match operation {
            Operation::Create { object } => {
                if let Some(target) = ObjectRef::of(object) {
                    objects.insert(target, object.clone());
                }
            }
            Operation::Delete { target } => {
                objects.remove(target);
            }
            Operation::Patch { target, patch } => {
                if let Some(object) = objects.get_mut(target) {
                    apply_merge_patch(object, patch);
                }
            }
            Operation::Kill { .. } => {}
            Operation::External { system, action } => {
                if let (Some(set), Ok(mut externals)) = (action.get("set"), self.externals.lock()) {
                    externals.insert(
                        external_key(system, action.get("target").unwrap_or(&Value::Null)),
                        set.clone(),
                    );
                }
            }
        }
        Ok(Done::Made)
    }

    async fn save(&self, _ledger: &mut Ledger) -> Result<(), ClusterError> {
        Ok(())
    }

    async fn read_external(
        &self,
        system: &str,
        target: &Value,
    ) -> Result<Option<Value>, ClusterError> {
        Ok(self
            .externals
            .lock()
            .map_err(|e| ClusterError::other(e.to_string()))?
            .get(&external_key(system, target))
            .cloned())
    }
}

/// One entry of a preview: what the replay did with it on [`AsLeft`] and, when it changed
/// something, the exact operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Previewed {
    pub action: Action,
    pub operation: Option<Operation>,
    /// Why the entry is not proven firedrill's own, when it is not (checked only with a key).
    pub rejection: Option<Rejection>,
}

/// Replays a copy of `ledger` on [`AsLeft::of`] it, with `trust`: newest first, what the real
/// revert would do to a cluster the run left as it was. Entries already closed are not in it
/// (the replay does not look at them).
pub async fn preview(ledger: &Ledger, trust: &Trust<'_>) -> Vec<Previewed> {
    let cluster = AsLeft::of(ledger);
    let mut copy = ledger.clone();
    let report = rehearse(&cluster, &mut copy, trust).await;
    // The replay makes exactly one call for each entry it reverts, in the order it reports them.
    let mut made = cluster.executed().into_iter();
    report
        .actions
        .into_iter()
        .map(|action| {
            let operation = match action.outcome {
                Outcome::Reverted => made.next(),
                _ => None,
            };
            let rejection = report
                .rejected
                .iter()
                .find(|r| r.step == action.step)
                .map(|r| r.why);
            Previewed {
                action,
                operation,
                rejection,
            }
        })
        .collect()
}
