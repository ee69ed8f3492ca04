//! The ledger and its replay on an in-memory cluster: every undo type, crashes at every point,
//! replays twice, changes made by others in between, and ledgers that cannot be trusted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use firedrill_rollback::{
    apply, apply_merge_patch, decide, replay, Cluster, Decision, Done, EntryState, Ledger,
    LedgerError, ObjectKind, ObjectRef, Operation, Outcome, Step, Stored, UndoRecord,
};
use proptest::prelude::*;
use serde_json::{json, Value};

/// A cluster in memory. `crash_after` counts calls to `save` and `execute`; when it reaches zero
/// every later call fails, as if the process had died there.
#[derive(Default)]
struct Memory {
    objects: Mutex<HashMap<ObjectRef, Value>>,
    ledgers: Mutex<HashMap<String, Stored>>,
    crash_after: Mutex<Option<usize>>,
}

impl Memory {
    fn alive(&self) -> Result<(), String> {
        let mut left = self.crash_after.lock().unwrap();
        match left.as_mut() {
            Some(0) => Err("process died".to_owned()),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn revive(&self) {
        *self.crash_after.lock().unwrap() = None;
    }

    fn snapshot(&self) -> BTreeMap<String, Value> {
        self.objects
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn stored_ledger(&self, run: &str) -> Ledger {
        let stored = self.ledgers.lock().unwrap()[&firedrill_rollback::ledger_name(run)].clone();
        Ledger::from_stored(&stored).unwrap()
    }
}

impl Cluster for Memory {
    async fn get(&self, target: &ObjectRef) -> Result<Option<Value>, String> {
        Ok(self.objects.lock().unwrap().get(target).cloned())
    }

    async fn execute(&self, operation: &Operation) -> Result<Done, String> {
        self.alive()?;
        let mut objects = self.objects.lock().unwrap();
        match operation {
            Operation::Create { object } => {
                let r = ObjectRef::of(object).ok_or("no reference")?;
                if objects.contains_key(&r) {
                    return Ok(Done::Refused(format!("{r} already exists")));
                }
                objects.insert(r, object.clone());
            }
            Operation::Delete { target } => {
                objects.remove(target);
            }
            Operation::Patch { target, patch } => {
                let object = objects
                    .get_mut(target)
                    .ok_or(format!("{target} not found"))?;
                apply_merge_patch(object, patch);
            }
            Operation::Kill { pod, .. } => {
                objects.remove(pod);
            }
            Operation::External { .. } => return Err("no external systems here".into()),
        }
        Ok(Done::Made)
    }

    async fn save(&self, ledger: &mut Ledger) -> Result<(), String> {
        self.alive()?;
        let mut ledgers = self.ledgers.lock().unwrap();
        let name = ledger.name();
        loop {
            let stored = ledgers.get(&name).cloned();
            match (&ledger.resource_version, stored) {
                (None, Some(_)) => return Err(format!("{name} already exists")),
                (Some(mine), Some(theirs)) if theirs.resource_version.as_ref() != Some(mine) => {
                    ledger.merge(&Ledger::from_stored(&theirs).unwrap());
                    continue;
                }
                (_, before) => {
                    let version = before
                        .and_then(|b| b.resource_version)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                        + 1;
                    ledger.resource_version = Some(version.to_string());
                    let stored = ledger.to_stored();
                    ledgers.insert(name, stored);
                    return Ok(());
                }
            }
        }
    }
}

fn unprotected(_: &ObjectRef) -> Option<String> {
    None
}

fn deployment(name: &str, replicas: i64) -> (ObjectRef, Value) {
    let r = ObjectRef::namespaced(ObjectKind::Deployment, "shop", name);
    (
        r,
        json!({ "kind": "Deployment", "metadata": { "namespace": "shop", "name": name }, "spec": { "replicas": replicas, "paused": false } }),
    )
}

/// The world before a drill: two workloads, a node, a Service, one cordoned node.
fn world() -> Memory {
    let memory = Memory::default();
    let mut objects = memory.objects.lock().unwrap();
    for (name, replicas) in [("api", 3), ("worker", 2)] {
        let (r, v) = deployment(name, replicas);
        objects.insert(r, v);
    }
    objects.insert(
        ObjectRef::node("node-1"),
        json!({ "kind": "Node", "metadata": { "name": "node-1" }, "spec": {} }),
    );
    objects.insert(
        ObjectRef::node("node-2"),
        json!({ "kind": "Node", "metadata": { "name": "node-2" }, "spec": { "unschedulable": true } }),
    );
    objects.insert(
        ObjectRef::namespaced(ObjectKind::Service, "shop", "db"),
        json!({ "kind": "Service", "metadata": { "namespace": "shop", "name": "db" }, "spec": { "selector": { "app": "db", "tier": "primary" } } }),
    );
    drop(objects);
    memory
}

/// Steps of every undo type (but external), as a fault kind would plan them.
fn every_kind_of_step() -> Vec<Step> {
    let service = ObjectRef::namespaced(ObjectKind::Service, "shop", "db");
    vec![
        Step::create(json!({ "kind": "NetworkPolicy", "metadata": { "namespace": "shop", "name": "fd-deny", "labels": { "firedrill.io/artifact": "true" } }, "spec": { "podSelector": {} } })).unwrap(),
        Step::cordon("node-1", false),
        Step::cordon("node-2", true),
        Step::scale(deployment("worker", 2).0, 2, 0, Some("worker-hpa".into())),
        Step::swap_selector(
            service,
            BTreeMap::from([("app".into(), "db".into()), ("tier".into(), "primary".into())]),
            BTreeMap::from([("app".into(), "fault-proxy".into())]),
        ),
        Step::set_field(deployment("api", 3).0, "/spec/paused", Some(json!(false)), Some(json!(true))),
    ]
}

#[tokio::test]
async fn every_undo_type_is_reverted_exactly() {
    let memory = world();
    let before = memory.snapshot();
    let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    apply(&memory, &mut ledger, &every_kind_of_step(), &unprotected)
        .await
        .unwrap();
    assert_ne!(memory.snapshot(), before, "the steps changed things");
    let report = replay(&memory, &mut ledger, &unprotected, false).await;
    assert!(!report.failed(), "{report:?}");
    assert_eq!(memory.snapshot(), before);
    // node-2 was cordoned before: left cordoned, said so.
    assert!(
        report.actions.iter().any(|a| a
            .text
            .contains("Node node-2 was cordoned before the drill; left cordoned")),
        "{report:?}"
    );
    assert!(
        report.actions.iter().any(|a| a
            .text
            .contains("HorizontalPodAutoscaler worker-hpa owns this count")),
        "{report:?}"
    );
    assert!(!memory.stored_ledger("run-1").is_open());
}

#[tokio::test]
async fn every_created_object_carries_the_run_and_its_expiry() {
    let memory = world();
    let mut ledger = Ledger::new("run-1", "drill-a", "test", "2030-01-01T00:00:00Z");
    apply(
        &memory,
        &mut ledger,
        &every_kind_of_step()[..1],
        &unprotected,
    )
    .await
    .unwrap();
    let policy = memory.snapshot()["NetworkPolicy shop/fd-deny"].clone();
    assert_eq!(policy["metadata"]["labels"]["firedrill.io/run"], "run-1");
    assert_eq!(
        policy["metadata"]["labels"]["firedrill.io/drill"],
        "drill-a"
    );
    assert_eq!(
        policy["metadata"]["labels"]["firedrill.io/artifact"],
        "true"
    );
    assert_eq!(
        policy["metadata"]["annotations"]["firedrill.io/expires-at"],
        "2030-01-01T00:00:00Z"
    );
}

#[tokio::test]
async fn a_crash_at_any_point_is_reverted_exactly_by_a_later_replay() {
    let steps = every_kind_of_step();
    // Each step costs a save (write-ahead), an execute and a save (applied): crash before each.
    for crash in 0..=steps.len() * 3 {
        let memory = world();
        let before = memory.snapshot();
        *memory.crash_after.lock().unwrap() = Some(crash);
        let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
        let _ = apply(&memory, &mut ledger, &steps, &unprotected).await;
        memory.revive();
        // A later process: only what the cluster holds.
        let stored = memory
            .ledgers
            .lock()
            .unwrap()
            .get("firedrill-ledger-run-1")
            .cloned();
        let Some(stored) = stored else {
            assert_eq!(
                memory.snapshot(),
                before,
                "no ledger written, nothing changed (crash {crash})"
            );
            continue;
        };
        let mut found = Ledger::from_stored(&stored).unwrap();
        let report = replay(&memory, &mut found, &unprotected, false).await;
        assert!(!report.failed(), "crash {crash}: {report:?}");
        assert_eq!(memory.snapshot(), before, "crash {crash}: {report:?}");
    }
}

#[tokio::test]
async fn a_field_someone_changed_since_is_left_and_reported() {
    let memory = world();
    let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    apply(&memory, &mut ledger, &every_kind_of_step(), &unprotected)
        .await
        .unwrap();
    // An operator scales the worker by hand mid-drill.
    memory
        .execute(&Operation::Patch {
            target: deployment("worker", 0).0,
            patch: json!({ "spec": { "replicas": 5 } }),
        })
        .await
        .unwrap();
    let report = replay(&memory, &mut ledger, &unprotected, false).await;
    let left: Vec<_> = report
        .actions
        .iter()
        .filter(|a| a.outcome == Outcome::Left)
        .collect();
    assert_eq!(left.len(), 1, "{report:?}");
    assert!(
        left[0]
            .text
            .contains("has 5 replicas, not the 0 the drill set; changed since"),
        "{}",
        left[0].text
    );
    assert_eq!(
        memory.snapshot()["Deployment shop/worker"]["spec"]["replicas"],
        5
    );
    assert_eq!(
        memory.stored_ledger("run-1").entries[3].state,
        EntryState::Left
    );
}

#[tokio::test]
async fn a_protected_object_is_never_touched() {
    let memory = world();
    let guard = |r: &ObjectRef| {
        (r.kind == ObjectKind::Service).then(|| "safety.protected shop/db".to_owned())
    };
    let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    let err = apply(&memory, &mut ledger, &every_kind_of_step(), &guard)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("touches Service shop/db, which is protected"),
        "{err}"
    );
    // A ledger that names it (tampered with, or from an older policy): refused, the rest undone.
    let memory = world();
    let mut tampered = Ledger::new("run-2", "drill", "test", "2030-01-01T00:00:00Z");
    apply(&memory, &mut tampered, &every_kind_of_step(), &unprotected)
        .await
        .unwrap();
    let report = replay(&memory, &mut tampered, &guard, false).await;
    assert!(report.failed());
    assert!(report.actions.iter().any(|a| a.outcome == Outcome::Failed && a.text.contains("names Service shop/db, which is protected (safety.protected shop/db); not touched")), "{report:?}");
    assert!(
        tampered.is_open(),
        "what was not undone stays in the ledger"
    );
    assert_eq!(
        report
            .actions
            .iter()
            .filter(|a| a.outcome == Outcome::Reverted)
            .count(),
        4,
        "{report:?}"
    );
}

#[test]
fn foreign_corrupt_and_unknown_ledgers_say_what_and_lose_nothing() {
    let mut ledger = Ledger::new("run-1", "drill", "pod-kill", "2030-01-01T00:00:00Z");
    ledger.push(UndoRecord::Uncordon {
        node: "n".into(),
        was_unschedulable: false,
    });
    ledger.push(UndoRecord::Uncordon {
        node: "m".into(),
        was_unschedulable: false,
    });
    let stored = ledger.to_stored();
    let mut read = Ledger::from_stored(&stored).unwrap();
    read.expires_at = ledger.expires_at.clone();
    assert_eq!(read, ledger);

    let mut foreign = stored.clone();
    foreign.data.remove("format");
    assert!(matches!(
        Ledger::from_stored(&foreign),
        Err(LedgerError::Foreign { .. })
    ));
    assert_eq!(
        Ledger::from_stored(&foreign).unwrap_err().to_string(),
        "ConfigMap firedrill-ledger-run-1 is not a firedrill ledger (no `format` key); it was not touched"
    );
    let mut newer = stored.clone();
    newer
        .data
        .insert("format".into(), "firedrill.io/ledger-v9".into());
    assert!(Ledger::from_stored(&newer)
        .unwrap_err()
        .to_string()
        .contains("format \"firedrill.io/ledger-v9\""));
    let mut renamed = stored.clone();
    renamed.name = "firedrill-ledger-other".into();
    assert!(Ledger::from_stored(&renamed)
        .unwrap_err()
        .to_string()
        .contains("it names run \"run-1\""));

    let mut odd = stored.clone();
    odd.data.insert(
        "step-0001".into(),
        r#"{"undo":{"type":"reboot-region","region":"us-east-1"},"state":"applied"}"#.into(),
    );
    odd.data.insert("step-0003".into(), "{not json".into());
    let read = Ledger::from_stored(&odd).unwrap();
    assert_eq!(read.entries.len(), 1, "the readable entry is kept");
    assert_eq!(read.unreadable.len(), 2);
    assert!(
        read.unreadable[0]
            .error
            .contains("unknown undo record type \"reboot-region\""),
        "{:?}",
        read.unreadable
    );
    assert!(read.is_open(), "an unreadable entry keeps the ledger open");
    // Written back, nothing is lost: the unreadable entries keep their keys and text.
    let again = read.to_stored();
    assert_eq!(again.data["step-0001"], odd.data["step-0001"]);
    assert_eq!(again.data["step-0003"], "{not json");
}

#[test]
fn decisions_judge_the_object_as_it_is_now() {
    let target = deployment("api", 3).0;
    let record = UndoRecord::RestoreField {
        target: target.clone(),
        path: "/spec/paused".into(),
        prior: None,
        applied: Some(json!(true)),
    };
    let paused = json!({ "spec": { "paused": true } });
    match decide("run-1", &record, Some(&paused)) {
        Decision::Apply(Operation::Patch { patch, .. }, _) => {
            assert_eq!(patch, json!({ "spec": { "paused": null } }))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        decide("run-1", &record, Some(&json!({ "spec": {} }))),
        Decision::AlreadyDone(_)
    ));
    assert!(matches!(decide("run-1", &record, None), Decision::Leave(_)));
    let created = UndoRecord::DeleteCreated {
        target: target.clone(),
    };
    assert!(matches!(
        decide("run-1", &created, None),
        Decision::AlreadyDone(_)
    ));
}

/// A random plan of steps over the world's objects.
fn arb_steps() -> impl Strategy<Value = Vec<Step>> {
    let one = prop_oneof![
        (0u8..5).prop_map(|i| Step::create(json!({ "kind": "NetworkPolicy", "metadata": { "namespace": "shop", "name": format!("fd-{i}") } })).unwrap()),
        (0u8..2, proptest::bool::ANY).prop_map(|(n, was)| Step::cordon(&format!("node-{}", n + 1), was)),
        (0i64..6).prop_map(|r| Step::scale(deployment("worker", 2).0, 2, r, None)),
        (0i64..6).prop_map(|r| Step::scale(deployment("api", 3).0, 3, r, None)),
        proptest::bool::ANY.prop_map(|p| Step::set_field(deployment("api", 3).0, "/spec/paused", Some(json!(false)), Some(json!(p)))),
    ];
    proptest::collection::vec(one, 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Replaying twice is replaying once; and the state after equals the state before, however
    /// the steps overlap (the same object changed twice is restored to its first prior).
    #[test]
    fn replay_is_idempotent_and_exact(steps in arb_steps(), crash in proptest::option::of(0usize..30)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let memory = world();
            let before = memory.snapshot();
            // Steps that record a prior the world does not have are not what a planner makes:
            // record the true prior, as planners read it from the snapshot.
            let mut ledger = Ledger::new("run-p", "drill", "test", "2030-01-01T00:00:00Z");
            let mut planned = Vec::new();
            for step in steps {
                let step = with_true_prior(&memory, step).await;
                planned.push(step);
            }
            *memory.crash_after.lock().unwrap() = crash;
            let mut applied = ledger.clone();
            for step in &planned {
                if apply(&memory, &mut applied, std::slice::from_ref(step), &unprotected).await.is_err() {
                    break;
                }
            }
            memory.revive();
            let stored = memory.ledgers.lock().unwrap().get("firedrill-ledger-run-p").cloned();
            if let Some(stored) = stored {
                ledger = Ledger::from_stored(&stored).unwrap();
            }
            let first = replay(&memory, &mut ledger, &unprotected, false).await;
            prop_assert!(!first.failed(), "{:?}", first);
            let after_once = memory.snapshot();
            let second = replay(&memory, &mut ledger, &unprotected, false).await;
            prop_assert!(second.actions.is_empty(), "{:?}", second);
            prop_assert_eq!(memory.snapshot(), after_once.clone());
            prop_assert_eq!(after_once, before);
            Ok(())
        })?;
    }
}

/// A step as a planner would make it now: its prior read from the object as it is.
async fn with_true_prior(memory: &Memory, step: Step) -> Step {
    match step.undo {
        UndoRecord::Uncordon { ref node, .. } => {
            let now = memory.get(&ObjectRef::node(node)).await.unwrap().unwrap();
            Step::cordon(
                node,
                now.pointer("/spec/unschedulable") == Some(&json!(true)),
            )
        }
        UndoRecord::RestoreReplicas {
            target, applied, ..
        } => {
            let now = memory.get(&target).await.unwrap().unwrap();
            Step::scale(
                target,
                now["spec"]["replicas"].as_i64().unwrap(),
                applied,
                None,
            )
        }
        UndoRecord::RestoreField {
            target,
            path,
            applied,
            ..
        } => {
            let now = memory.get(&target).await.unwrap().unwrap();
            let prior = now.pointer(&path).filter(|v| !v.is_null()).cloned();
            Step::set_field(target, &path, prior, applied)
        }
        _ => step,
    }
}

#[tokio::test]
async fn a_run_id_is_used_once_and_concurrent_writers_merge() {
    let memory = world();
    let mut first = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    apply(
        &memory,
        &mut first,
        &every_kind_of_step()[1..2],
        &unprotected,
    )
    .await
    .unwrap();
    // Another run under the same id cannot overwrite the ledger.
    let mut second = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    let err = apply(
        &memory,
        &mut second,
        &every_kind_of_step()[3..4],
        &unprotected,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(memory.stored_ledger("run-1").entries.len(), 1);

    // `stop` reverts from its own copy while the executor goes on applying: neither write is
    // lost. The executor's later step stays recorded; the revert done elsewhere stays done.
    let mut stop_copy = memory.stored_ledger("run-1");
    apply(
        &memory,
        &mut first,
        &every_kind_of_step()[3..4],
        &unprotected,
    )
    .await
    .unwrap();
    replay(&memory, &mut stop_copy, &unprotected, false).await;
    let stored = memory.stored_ledger("run-1");
    assert_eq!(stored.entries.len(), 2, "{stored:?}");
    assert_eq!(stored.entries[0].state, EntryState::Reverted);
    assert_eq!(
        stored.entries[1].state,
        EntryState::Applied,
        "the scale is still to be undone"
    );
    let report = replay(
        &memory,
        &mut memory.stored_ledger("run-1"),
        &unprotected,
        false,
    )
    .await;
    assert!(!report.failed());
    assert!(!memory.stored_ledger("run-1").is_open());
}

#[tokio::test]
async fn an_object_firedrill_did_not_create_is_never_deleted() {
    let memory = world();
    // The name a drill wants already exists: the create is refused, and a revert leaves it.
    let existing =
        json!({ "kind": "NetworkPolicy", "metadata": { "namespace": "shop", "name": "fd-deny" } });
    memory
        .objects
        .lock()
        .unwrap()
        .insert(ObjectRef::of(&existing).unwrap(), existing.clone());
    let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    let applied = apply(
        &memory,
        &mut ledger,
        &every_kind_of_step()[..1],
        &unprotected,
    )
    .await
    .unwrap();
    assert_eq!(applied.refused.len(), 1, "{applied:?}");
    replay(&memory, &mut ledger, &unprotected, false).await;
    assert_eq!(memory.snapshot()["NetworkPolicy shop/fd-deny"], existing);
}

#[tokio::test]
async fn an_external_change_without_its_handler_stays_open() {
    let memory = world();
    let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    ledger.push(UndoRecord::External {
        system: "route53".into(),
        record: json!({ "zone": "Z1" }),
    });
    let report = replay(&memory, &mut ledger, &unprotected, false).await;
    assert!(report.failed(), "{report:?}");
    assert!(ledger.is_open());
}
