//! The ledger and its replay on an in-memory cluster: every undo type, crashes at every point,
//! replays twice, changes made by others in between, and ledgers that cannot be trusted.

#[path = "../../runner/tests/support/skip.rs"]
mod support;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use firedrill_rollback::scope::{DeclaredDns, PROXY_LABEL, ROUTE53};
use firedrill_rollback::{
    apply, apply_merge_patch, decide, replay, Access, Cluster, ClusterError, Decision, Done,
    EntryState, Key, Ledger, LedgerError, ObjectKind, ObjectRef, Operation, Outcome, Scope, Step,
    Stored, Trust, UndoRecord,
};
use proptest::prelude::*;
use serde_json::{json, Value};

/// A cluster in memory. `crash_after` counts calls to `save` and `execute`; when it reaches zero
/// every later call fails, as if the process had died there.
///
/// A killed pod is recreated at once by its controller (the same manifest: what the drill cannot
/// and need not restore), and counted in `kills`. One external system, `route53`, holds weighted
/// records by target. `made` logs what every call to `execute` that went through returned.
#[derive(Default)]
struct Memory {
    objects: Mutex<HashMap<ObjectRef, Value>>,
    ledgers: Mutex<HashMap<String, Stored>>,
    crash_after: Mutex<Option<usize>>,
    externals: Mutex<BTreeMap<String, Value>>,
    kills: Mutex<usize>,
    made: Mutex<Vec<Done>>,
    /// What the next calls to `execute` fail with, first first, before they change anything.
    failing: Mutex<Vec<ClusterError>>,
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

    /// Every object, and every external record (as `dns <target>`).
    fn snapshot(&self) -> BTreeMap<String, Value> {
        let mut all: BTreeMap<String, Value> = self
            .objects
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        for (target, value) in self.externals.lock().unwrap().iter() {
            all.insert(format!("dns {target}"), value.clone());
        }
        all
    }

    fn stored_ledger(&self, run: &str) -> Ledger {
        let stored = self.ledgers.lock().unwrap()[&firedrill_rollback::ledger_name(run)].clone();
        Ledger::from_stored(&stored).unwrap()
    }

    /// Makes one change, as an API server (and the controllers behind it) would.
    fn change(&self, operation: &Operation) -> Result<Done, ClusterError> {
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
                let object = objects.get_mut(target).ok_or(ClusterError::NotFound {
                    message: format!("{target} not found"),
                })?;
                apply_merge_patch(object, patch);
            }
            Operation::Kill { pod, .. } => {
                // Its controller recreates it at once, as it was.
                let killed = objects.remove(pod).ok_or(format!("{pod} not found"))?;
                objects.insert(pod.clone(), killed);
                *self.kills.lock().unwrap() += 1;
            }
            Operation::External { system, action } if system == ROUTE53 => {
                let target = action.get("target").ok_or("no target")?.to_string();
                let set = action.get("set").ok_or("no value to set")?.clone();
                self.externals.lock().unwrap().insert(target, set);
            }
            Operation::External { system, .. } => {
                return Err(format!("no handler for {system}").into())
            }
        }
        Ok(Done::Made)
    }
}

impl Cluster for Memory {
    async fn get(&self, target: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        Ok(self.objects.lock().unwrap().get(target).cloned())
    }

    async fn execute(&self, operation: &Operation) -> Result<Done, ClusterError> {
        self.alive()?;
        {
            let mut failing = self.failing.lock().unwrap();
            if !failing.is_empty() {
                return Err(failing.remove(0));
            }
        }
        let done = self.change(operation)?;
        self.made.lock().unwrap().push(done.clone());
        Ok(done)
    }

    async fn read_external(
        &self,
        system: &str,
        target: &Value,
    ) -> Result<Option<Value>, ClusterError> {
        if system != ROUTE53 {
            return Err(ClusterError::other(format!(
                "no handler for changes in {system} in this process"
            )));
        }
        Ok(self
            .externals
            .lock()
            .unwrap()
            .get(&target.to_string())
            .cloned())
    }

    async fn save(&self, ledger: &mut Ledger) -> Result<(), ClusterError> {
        self.alive()?;
        let mut ledgers = self.ledgers.lock().unwrap();
        let name = ledger.name();
        loop {
            let stored = ledgers.get(&name).cloned();
            match (&ledger.resource_version, stored) {
                (None, Some(_)) => {
                    return Err(ClusterError::Conflict {
                        message: format!("{name} already exists"),
                    })
                }
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

/// The ledger key every writer and replayer in these tests shares.
static KEY: std::sync::LazyLock<Key> =
    std::sync::LazyLock::new(|| Key::from_bytes(&[7; 32]).unwrap());

fn unprotected(_: &ObjectRef) -> Option<String> {
    None
}

/// What a drill file declaring the api record gives a replay: every record the steps here
/// write is in it.
fn scope() -> &'static Scope {
    static SCOPE: OnceLock<Scope> = OnceLock::new();
    SCOPE.get_or_init(|| Scope {
        dns: Some(vec![DeclaredDns {
            drill: "region".into(),
            zone: "Z1".into(),
            name: "api.example.com.".into(),
            record_type: "A".into(),
            set_identifiers: BTreeSet::from(["primary".to_owned()]),
            health_checks: BTreeSet::new(),
            endpoints: BTreeSet::from([None]),
        }]),
    })
}

/// Nothing protected; the planners' scope.
/// Nothing protected, the planners' scope, entries signed and verified with [`KEY`].
fn planners_only() -> Trust<'static> {
    Trust::new(&unprotected, scope(), &KEY)
}

fn deployment(name: &str, replicas: i64) -> (ObjectRef, Value) {
    let r = ObjectRef::namespaced(ObjectKind::Deployment, "shop", name);
    (
        r,
        json!({
            "kind": "Deployment",
            "metadata": { "namespace": "shop", "name": name, "annotations": { "team": "shop" } },
            "spec": {
                "replicas": replicas,
                "paused": false,
                "template": { "spec": { "nodeSelector": { "disk": "ssd" } } }
            }
        }),
    )
}

fn pod(name: &str) -> ObjectRef {
    ObjectRef::namespaced(ObjectKind::Pod, "shop", name)
}

/// The target of a weighted DNS record in the in-memory `route53` system.
fn dns_record(name: &str) -> Value {
    json!({ "zone": "Z1", "name": format!("{name}.example.com."), "type": "A", "set_identifier": "primary" })
}

/// A weighted record set's state, as the route53 handler records it (the parts used here).
fn record_state(name: &str, weight: i64) -> Value {
    json!({ "name": format!("{name}.example.com."), "type": "A", "set_identifier": "primary", "weight": weight })
}

/// Point a weighted DNS record elsewhere: an external step, as the route53 fault records it.
fn set_weight(name: &str, prior: i64, weight: i64) -> Step {
    let target = dns_record(name);
    Step {
        forward: Operation::External {
            system: ROUTE53.into(),
            action: json!({ "target": target, "set": record_state(name, weight) }),
        },
        undo: UndoRecord::External {
            system: ROUTE53.into(),
            record: json!({ "target": target, "prior": record_state(name, prior), "applied": record_state(name, weight) }),
        },
    }
}

/// The world before a drill: two workloads and their pods, a node, a Service, one cordoned node,
/// and a DNS record.
fn world() -> Memory {
    let memory = Memory::default();
    let mut objects = memory.objects.lock().unwrap();
    for (name, replicas) in [("api", 3), ("worker", 2)] {
        let (r, v) = deployment(name, replicas);
        objects.insert(r, v);
        for i in 0..replicas {
            let name = format!("{name}-{i}");
            objects.insert(
                pod(&name),
                json!({ "kind": "Pod", "metadata": { "namespace": "shop", "name": name, "labels": { "app": "api" } } }),
            );
        }
    }
    memory
        .externals
        .lock()
        .unwrap()
        .insert(dns_record("api").to_string(), record_state("api", 100));
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

/// Steps of every undo type, as a fault kind would plan them.
fn every_kind_of_step() -> Vec<Step> {
    let service = ObjectRef::namespaced(ObjectKind::Service, "shop", "db");
    vec![
        Step::create(json!({ "kind": "NetworkPolicy", "metadata": { "namespace": "shop", "name": "firedrill-deny", "labels": { "firedrill.io/artifact": "true" } }, "spec": { "podSelector": {} } })).unwrap(),
        Step::cordon("node-1", false),
        Step::cordon("node-2", true),
        Step::scale(deployment("worker", 2).0, 2, 0, Some("worker-hpa".into())),
        Step::swap_selector(
            service,
            BTreeMap::from([("app".into(), "db".into()), ("tier".into(), "primary".into())]),
            BTreeMap::from([(PROXY_LABEL.into(), "run-1".into())]),
        ),
        Step::set_field(pod("api-1"), PARTITION_PATH, None, Some(json!("run-1"))),
        Step::kill(pod("api-0"), "Deployment/api", true, None),
        set_weight("api", 100, 0),
    ]
}

#[tokio::test]
async fn every_undo_type_is_reverted_exactly() {
    let memory = world();
    let before = memory.snapshot();
    let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    apply(
        &memory,
        &mut ledger,
        &every_kind_of_step(),
        &planners_only(),
    )
    .await
    .unwrap();
    assert_ne!(memory.snapshot(), before, "the steps changed things");
    let report = replay(&memory, &mut ledger, &planners_only(), false).await;
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
    assert!(
        report.actions.iter().any(|a| a
            .text
            .contains("was killed; its controller Deployment/api recreates it")),
        "{report:?}"
    );
    assert_eq!(*memory.kills.lock().unwrap(), 1);
    assert_done(&memory, "run-1", &before, "every undo type").await;
}

#[tokio::test]
async fn every_created_object_carries_the_run_and_its_expiry() {
    let memory = world();
    let mut ledger = Ledger::new("run-1", "drill-a", "test", "2030-01-01T00:00:00Z");
    apply(
        &memory,
        &mut ledger,
        &every_kind_of_step()[..1],
        &planners_only(),
    )
    .await
    .unwrap();
    let policy = memory.snapshot()["NetworkPolicy shop/firedrill-deny"].clone();
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

/// What the cluster holds of a run's ledger, read as a later process reads it.
fn read_back(memory: &Memory, run: &str) -> Option<Ledger> {
    let stored = memory
        .ledgers
        .lock()
        .unwrap()
        .get(&firedrill_rollback::ledger_name(run))
        .cloned();
    stored.map(|s| Ledger::from_stored(&s).unwrap())
}

/// A replay left the world as it was before the drill and closed every entry: the ledger read
/// back is closed, and replaying it changes nothing and says nothing.
async fn assert_done(memory: &Memory, run: &str, before: &BTreeMap<String, Value>, what: &str) {
    assert_eq!(&memory.snapshot(), before, "{what}");
    let mut again = read_back(memory, run).unwrap();
    assert!(!again.is_open(), "{what}: still open: {:?}", again.entries);
    let report = replay(memory, &mut again, &planners_only(), false).await;
    assert!(report.actions.is_empty(), "{what}: {report:?}");
    assert_eq!(&memory.snapshot(), before, "{what}");
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
        let _ = apply(&memory, &mut ledger, &steps, &planners_only()).await;
        memory.revive();
        // A later process: only what the cluster holds.
        let Some(mut found) = read_back(&memory, "run-1") else {
            assert_eq!(
                memory.snapshot(),
                before,
                "no ledger written, nothing changed (crash {crash})"
            );
            continue;
        };
        let report = replay(&memory, &mut found, &planners_only(), false).await;
        assert!(!report.failed(), "crash {crash}: {report:?}");
        assert!(
            report.actions.iter().all(|a| a.outcome != Outcome::Left),
            "crash {crash}: {report:?}"
        );
        assert_done(&memory, "run-1", &before, &format!("crash {crash}")).await;
    }
}

#[tokio::test]
async fn a_crash_during_a_replay_is_finished_exactly_by_the_next() {
    let steps = every_kind_of_step();
    // A replay costs an execute per change to undo and one save at the end: crash before each.
    for crash in 0..=steps.len() + 1 {
        let memory = world();
        let before = memory.snapshot();
        let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
        apply(&memory, &mut ledger, &steps, &planners_only())
            .await
            .unwrap();
        *memory.crash_after.lock().unwrap() = Some(crash);
        let mut dying = read_back(&memory, "run-1").unwrap();
        let _ = replay(&memory, &mut dying, &planners_only(), false).await;
        memory.revive();
        let mut found = read_back(&memory, "run-1").unwrap();
        let report = replay(&memory, &mut found, &planners_only(), false).await;
        assert!(!report.failed(), "crash {crash}: {report:?}");
        assert!(
            report.actions.iter().all(|a| a.outcome != Outcome::Left),
            "crash {crash}: {report:?}"
        );
        assert_done(&memory, "run-1", &before, &format!("crash {crash}")).await;
    }
}

#[tokio::test]
async fn a_field_someone_changed_since_is_left_and_reported() {
    let memory = world();
    let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    apply(
        &memory,
        &mut ledger,
        &every_kind_of_step(),
        &planners_only(),
    )
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
    let report = replay(&memory, &mut ledger, &planners_only(), false).await;
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
    let guarded = Trust::new(&guard, scope(), &KEY);
    let err = apply(&memory, &mut ledger, &every_kind_of_step(), &guarded)
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
    apply(
        &memory,
        &mut tampered,
        &every_kind_of_step(),
        &planners_only(),
    )
    .await
    .unwrap();
    let report = replay(&memory, &mut tampered, &guarded, false).await;
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
        5,
        "{report:?}"
    );
}

#[test]
fn foreign_corrupt_and_unknown_ledgers_say_what_and_lose_nothing() {
    let mut ledger = Ledger::new("run-1", "drill", "pod-kill", "2030-01-01T00:00:00Z");
    ledger.push(
        UndoRecord::Uncordon {
            node: "n".into(),
            was_unschedulable: false,
        },
        &KEY,
    );
    ledger.push(
        UndoRecord::Uncordon {
            node: "m".into(),
            was_unschedulable: false,
        },
        &KEY,
    );
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

/// One step of a generated plan over the world's objects. Its prior is not generated: planning
/// reads it from the world as the steps before it left it, as a fault kind records it.
#[derive(Clone, Debug)]
enum Plan {
    /// Create NetworkPolicy `firedrill-<n>` (a name may come twice: the second create is refused).
    Create(u8),
    /// Cordon node-1 (schedulable) or node-2 (cordoned before the drill).
    Cordon(u8),
    /// Scale api or worker, maybe owned by an autoscaler.
    Scale(u8, i64, bool),
    /// Point Service shop/db at one of three proxy selectors.
    Swap(u8),
    /// Mark a pod of api with the partition label (a key that needs escaping in a JSON pointer),
    /// to one of three values. A pod is marked once, as the planners do: a pod marked already
    /// is killed instead.
    Field(u8, u8),
    /// Kill a pod of api.
    Kill(u8),
    /// Set the weight of the api DNS record.
    Weight(i64),
}

const PLAN_KINDS: usize = 7;

fn arb_plan_of(kind: usize) -> BoxedStrategy<Plan> {
    match kind {
        0 => (0u8..3).prop_map(Plan::Create).boxed(),
        1 => (0u8..2).prop_map(Plan::Cordon).boxed(),
        2 => (0u8..2, 0i64..5, proptest::bool::ANY)
            .prop_map(|(w, r, h)| Plan::Scale(w, r, h))
            .boxed(),
        3 => (0u8..3).prop_map(Plan::Swap).boxed(),
        4 => (0u8..3, 0u8..3)
            .prop_map(|(p, v)| Plan::Field(p, v))
            .boxed(),
        5 => (0u8..3).prop_map(Plan::Kill).boxed(),
        _ => prop_oneof![Just(0i64), Just(50), Just(100)]
            .prop_map(Plan::Weight)
            .boxed(),
    }
}

fn arb_plan() -> BoxedStrategy<Plan> {
    (0..PLAN_KINDS).prop_flat_map(arb_plan_of).boxed()
}

/// Mostly one step of every kind plus a few more, shuffled (so that kinds meet, and objects and
/// fields are changed more than once); sometimes a short plan of anything.
fn arb_plans() -> impl Strategy<Value = Vec<Plan>> {
    prop_oneof![
        3 => (
            (0..PLAN_KINDS).map(arb_plan_of).collect::<Vec<_>>(),
            proptest::collection::vec(arb_plan(), 0..7),
        )
            .prop_map(|(mut every, more)| {
                every.extend(more);
                every
            })
            .prop_shuffle(),
        1 => proptest::collection::vec(arb_plan(), 0..6),
    ]
}

const WORKLOADS: [&str; 2] = ["api", "worker"];

/// The one field firedrill sets on an object: a pod's partition label.
const PARTITION_PATH: &str = "/metadata/labels/firedrill.io~1partition";

fn selector_of(k: u8) -> BTreeMap<String, String> {
    let pairs: &[(&str, &str)] = match k {
        0 => &[(PROXY_LABEL, "run-a")],
        1 => &[(PROXY_LABEL, "run-b")],
        _ => &[(PROXY_LABEL, "run-c")],
    };
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// Plans one step on `model` (a copy of the world the steps are planned on): its prior is what
/// the model holds now, and the model then moves on by the step.
async fn plan(model: &Memory, p: &Plan) -> Step {
    let now = |r: &ObjectRef| model.objects.lock().unwrap()[r].clone();
    let step = match *p {
        Plan::Create(n) => Step::create(json!({
            "kind": "NetworkPolicy",
            "metadata": { "namespace": "shop", "name": format!("firedrill-{n}") },
            "spec": { "podSelector": {} }
        }))
        .unwrap(),
        Plan::Cordon(n) => {
            let node = format!("node-{}", n + 1);
            let was =
                now(&ObjectRef::node(&node)).pointer("/spec/unschedulable") == Some(&json!(true));
            Step::cordon(&node, was)
        }
        Plan::Scale(w, replicas, hpa) => {
            let target = deployment(WORKLOADS[usize::from(w)], 0).0;
            let prior = now(&target)["spec"]["replicas"].as_i64().unwrap_or(1);
            Step::scale(target, prior, replicas, hpa.then(|| "shop-hpa".to_owned()))
        }
        Plan::Swap(k) => {
            let service = ObjectRef::namespaced(ObjectKind::Service, "shop", "db");
            let prior = serde_json::from_value(now(&service)["spec"]["selector"].clone()).unwrap();
            Step::swap_selector(service, prior, selector_of(k))
        }
        Plan::Field(p, v) => {
            let target = pod(&format!("api-{p}"));
            match now(&target).pointer(PARTITION_PATH) {
                Some(_) => Step::kill(target, "Deployment/api", false, None),
                None => Step::set_field(
                    target,
                    PARTITION_PATH,
                    None,
                    Some(json!(["run-a", "run-b", "run-c"][usize::from(v % 3)])),
                ),
            }
        }
        Plan::Kill(n) => Step::kill(pod(&format!("api-{n}")), "Deployment/api", n % 2 == 0, None),
        Plan::Weight(weight) => {
            let prior = model.externals.lock().unwrap()[&dns_record("api").to_string()]["weight"]
                .as_i64()
                .unwrap();
            set_weight("api", prior, weight)
        }
    };
    model.execute(&step.forward).await.unwrap();
    step
}

/// Where the process dies, counting calls to `execute` and `save` (modulo the calls there are:
/// applying a step costs three, a replay one per open entry at most and one save).
#[derive(Clone, Copy, Debug)]
enum Crash {
    Never,
    /// While applying the steps.
    Apply(usize),
    /// During the first replay; the next replay starts from what the cluster holds.
    Replay(usize),
}

/// What a record changes and on what: steps with the same key act on one field of one object.
fn key_of(undo: &UndoRecord) -> (usize, String) {
    let kind = match undo {
        UndoRecord::DeleteCreated { .. } => 0,
        UndoRecord::Uncordon { .. } => 1,
        UndoRecord::RestoreReplicas { .. } => 2,
        UndoRecord::RestoreSelector { .. } => 3,
        UndoRecord::RestoreField { .. } => 4,
        UndoRecord::Recreated { .. } => 5,
        UndoRecord::External { .. } => 6,
    };
    let key = match undo {
        UndoRecord::RestoreField { target, path, .. } => format!("{target} {path}"),
        UndoRecord::External { record, .. } => record["target"].to_string(),
        UndoRecord::Recreated { pod, .. } => pod.to_string(),
        other => other.target().unwrap().to_string(),
    };
    (kind, key)
}

/// Whether undoing a record whose change was made puts anything back (the oracle's reading of
/// the undo types; decide() is not asked).
fn puts_back(undo: &UndoRecord) -> bool {
    match undo {
        UndoRecord::DeleteCreated { .. } => true,
        UndoRecord::RestoreField { prior, applied, .. } => prior != applied,
        UndoRecord::Uncordon {
            was_unschedulable, ..
        } => !was_unschedulable,
        UndoRecord::RestoreReplicas { prior, applied, .. } => prior != applied,
        UndoRecord::RestoreSelector { prior, applied, .. } => prior != applied,
        UndoRecord::External { record, .. } => record["prior"] != record["applied"],
        UndoRecord::Recreated { .. } => false,
    }
}

/// Replaying is exact and idempotent, for plans of every undo type that change the same fields
/// several times, with the process dying anywhere while applying or while replaying:
///
/// - the world after the replay is the world before the drill, exactly;
/// - without a crash in the replay, each open entry comes out as the oracle says: reverted when
///   its change was made and puts something back, already done otherwise (not made, a kill, a
///   node cordoned before, a value set to what it was);
/// - every entry is closed, in memory and in the ledger the cluster holds, and replaying a fresh
///   copy read back from the cluster does nothing and says nothing.
fn check_replay(plans: &[Plan], crash: Crash) -> Result<BTreeSet<&'static str>, TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut hit = BTreeSet::new();
        let model = world();
        let mut steps = Vec::new();
        for p in plans {
            steps.push(plan(&model, p).await);
        }
        let kinds: BTreeSet<usize> = steps.iter().map(|s| key_of(&s.undo).0).collect();
        if kinds.len() == PLAN_KINDS {
            hit.insert("every undo type");
        }
        if kinds.contains(&3) {
            hit.insert("selector swap");
        }
        if kinds.contains(&5) {
            hit.insert("pod kill");
        }
        let mut keys = BTreeSet::new();
        if steps
            .iter()
            .filter(|s| !matches!(s.undo, UndoRecord::Recreated { .. }))
            .any(|s| !keys.insert(key_of(&s.undo)))
        {
            hit.insert("one field twice");
        }

        let memory = world();
        let before = memory.snapshot();
        if let Crash::Apply(n) = crash {
            *memory.crash_after.lock().unwrap() = Some(n % (3 * steps.len() + 1));
        }
        let mut ledger = Ledger::new("run-p", "drill", "test", "2030-01-01T00:00:00Z");
        let applied = apply(&memory, &mut ledger, &steps, &planners_only()).await;
        memory.revive();
        if applied.is_err() {
            hit.insert("crash in apply");
        }
        // What each step's change came to, in order; a step past the crash has none.
        let forward: Vec<Done> = memory.made.lock().unwrap().clone();
        let Some(mut found) = read_back(&memory, "run-p") else {
            prop_assert_eq!(
                memory.snapshot(),
                before,
                "no ledger, so nothing may have changed"
            );
            return Ok(hit);
        };
        prop_assert!(found.entries.len() <= steps.len());
        for (i, entry) in found.entries.iter().enumerate() {
            prop_assert_eq!(entry.seq, i + 1);
            prop_assert_eq!(&entry.undo, &steps[i].undo);
        }

        if let Crash::Replay(n) = crash {
            let calls = found.entries.iter().filter(|e| e.state.is_open()).count() + 1;
            *memory.crash_after.lock().unwrap() = Some(n % calls);
            let dying = replay(&memory, &mut found, &planners_only(), false).await;
            memory.revive();
            if dying.failed() {
                hit.insert("crash in replay");
            }
            // A later process: only what the cluster holds.
            found = read_back(&memory, "run-p").unwrap();
        }
        let open: Vec<(String, usize)> = found
            .entries
            .iter()
            .rev()
            .filter(|e| e.state.is_open())
            .map(|e| (format!("step-{:04}", e.seq), e.seq - 1))
            .collect();
        let first = replay(&memory, &mut found, &planners_only(), false).await;
        prop_assert!(!first.failed(), "{:?}", first);
        prop_assert_eq!(memory.snapshot(), before.clone(), "{:?}", first);
        if !matches!(crash, Crash::Replay(_)) {
            // What the run created and still exists: deleted by the last open record naming it
            // (a create that crashed before it was made may name an object an earlier one made).
            let mut created: BTreeSet<ObjectRef> = steps
                .iter()
                .zip(&forward)
                .filter_map(|(s, done)| match (&s.undo, done) {
                    (UndoRecord::DeleteCreated { target }, Done::Made) => Some(target.clone()),
                    _ => None,
                })
                .collect();
            let expected: Vec<(String, Outcome)> = open
                .iter()
                .map(|(step, i)| {
                    let outcome = match (&steps[*i].undo, forward.get(*i)) {
                        (UndoRecord::DeleteCreated { target }, _) if created.remove(target) => {
                            Outcome::Reverted
                        }
                        (UndoRecord::DeleteCreated { .. }, _) => Outcome::AlreadyDone,
                        (undo, Some(Done::Made)) if puts_back(undo) => Outcome::Reverted,
                        _ => Outcome::AlreadyDone,
                    };
                    (step.clone(), outcome)
                })
                .collect();
            let got: Vec<(String, Outcome)> = first
                .actions
                .iter()
                .map(|a| (a.step.clone(), a.outcome.clone()))
                .collect();
            prop_assert_eq!(got, expected, "{:?}", first);
            // Only a refused change was closed before the replay (when it was refused, unless
            // the process died before it could say so).
            for (i, entry) in found.entries.iter().enumerate() {
                let refused = matches!(forward.get(i), Some(Done::Refused(_)));
                let closed = open.iter().all(|(_, j)| *j != i);
                prop_assert!(
                    !closed || refused,
                    "step {} closed before the replay: {:?}",
                    i + 1,
                    entry
                );
            }
            prop_assert!(
                found
                    .entries
                    .iter()
                    .all(|e| e.state == EntryState::Reverted),
                "{:?}",
                found.entries
            );
        }
        if first.actions.iter().any(|a| a.outcome == Outcome::Reverted) {
            hit.insert("reverted");
        }
        if first.actions.iter().any(|a| a.outcome == Outcome::Left) {
            hit.insert("left after a crash");
        }
        prop_assert!(!found.is_open(), "{:?}", found.entries);

        // Twice: a fresh copy as the cluster holds it, not the ledger the first replay closed.
        let mut again = read_back(&memory, "run-p").unwrap();
        prop_assert_eq!(
            &again.entries,
            &found.entries,
            "the ledger the cluster holds is the one replayed"
        );
        prop_assert!(!again.is_open(), "{:?}", again.entries);
        let second = replay(&memory, &mut again, &planners_only(), false).await;
        prop_assert!(second.actions.is_empty(), "{:?}", second);
        prop_assert_eq!(memory.snapshot(), before);
        Ok(hit)
    })
}

#[test]
fn replay_is_idempotent_and_exact() {
    let names = [
        "every undo type",
        "selector swap",
        "pod kill",
        "one field twice",
        "crash in apply",
        "crash in replay",
        "reverted",
        "left after a crash",
    ];
    let seen: RefCell<(usize, Vec<usize>)> = RefCell::new((0, vec![0; names.len()]));
    let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: 400,
        source_file: Some(file!()),
        ..proptest::test_runner::Config::default()
    });
    let crash = prop_oneof![
        2 => Just(Crash::Never),
        3 => (0usize..1000).prop_map(Crash::Apply),
        3 => (0usize..1000).prop_map(Crash::Replay),
    ];
    let result = runner.run(&(arb_plans(), crash), |(plans, crash)| {
        let hit = check_replay(&plans, crash)?;
        let mut seen = seen.borrow_mut();
        seen.0 += 1;
        for (i, name) in names.iter().enumerate() {
            if hit.contains(name) {
                seen.1[i] += 1;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (cases, counts) = seen.into_inner();
    let share = |i: usize| counts[i] as f64 / cases.max(1) as f64;
    let line = names
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{name} {:.0}%", share(i) * 100.0))
        .collect::<Vec<_>>()
        .join(", ");
    let line = format!("coverage: replay_is_idempotent_and_exact ({cases} cases): {line}");
    support::coverage(&line);
    for (name, least) in [
        ("every undo type", 0.5),
        ("selector swap", 0.5),
        ("pod kill", 0.5),
        ("one field twice", 0.3),
        ("crash in apply", 0.2),
        ("crash in replay", 0.15),
        ("reverted", 0.5),
    ] {
        let i = names.iter().position(|n| *n == name).unwrap();
        assert!(
            share(i) >= least,
            "only {:.1}% of cases exercised {name} (at least {:.0}% needed): {line}",
            share(i) * 100.0,
            least * 100.0
        );
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
        &planners_only(),
    )
    .await
    .unwrap();
    // Another run under the same id cannot overwrite the ledger.
    let mut second = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    let err = apply(
        &memory,
        &mut second,
        &every_kind_of_step()[3..4],
        &planners_only(),
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
        &planners_only(),
    )
    .await
    .unwrap();
    replay(&memory, &mut stop_copy, &planners_only(), false).await;
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
        &planners_only(),
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
    let existing = json!({ "kind": "NetworkPolicy", "metadata": { "namespace": "shop", "name": "firedrill-deny" } });
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
        &planners_only(),
    )
    .await
    .unwrap();
    assert_eq!(applied.refused.len(), 1, "{applied:?}");
    replay(&memory, &mut ledger, &planners_only(), false).await;
    assert_eq!(
        memory.snapshot()["NetworkPolicy shop/firedrill-deny"],
        existing
    );
}

#[tokio::test]
async fn an_external_change_without_its_handler_stays_open() {
    let memory = world();
    let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    ledger.push(
        UndoRecord::External {
            system: "route53".into(),
            record: json!({ "zone": "Z1" }),
        },
        &KEY,
    );
    let report = replay(&memory, &mut ledger, &planners_only(), false).await;
    assert!(report.failed(), "{report:?}");
    assert!(ledger.is_open());
}

/// Issue #22: a step outside what the planners write (a planner bug) is refused by the applier
/// before its ledger entry is written: nothing recorded, nothing changed.
#[tokio::test]
async fn the_applier_refuses_a_step_no_planner_writes() {
    let memory = world();
    let before = memory.snapshot();
    let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    let steps = [
        Step::cordon("node-1", false),
        Step::set_field(
            deployment("api", 3).0,
            "/spec/paused",
            Some(json!(false)),
            Some(json!(true)),
        ),
    ];
    let err = apply(&memory, &mut ledger, &steps, &planners_only())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            firedrill_rollback::ApplyError::OutOfScope { step: 2, .. }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "step 2 (patch Deployment shop/api: {\"spec\":{\"paused\":true}}) is outside what firedrill's planners write (restore-field names Deployment shop/api, a kind firedrill never changes this way (only Pod)); not made (a firedrill bug: please report it)"
    );
    let stored = memory.stored_ledger("run-1");
    assert_eq!(stored.entries.len(), 1, "only the cordon is recorded");
    // The cordon was made; the refused step was not.
    assert_eq!(
        memory.snapshot()["Deployment shop/api"],
        before["Deployment shop/api"]
    );
}

/// The same entries under another run's name, each stored with the code `mac` gives it (by its
/// place in the list, from 1) and state `applied`, read back as a replayer would.
fn forged(
    run: &str,
    undo: &[UndoRecord],
    mac: impl Fn(usize, &UndoRecord) -> Option<String>,
) -> Stored {
    let mut ledger = Ledger::new(run, "drill", "test", "2030-01-01T00:00:00Z");
    for (i, u) in undo.iter().enumerate() {
        ledger.entries.push(firedrill_rollback::Entry {
            seq: i + 1,
            undo: u.clone(),
            state: EntryState::Applied,
            note: None,
            mac: mac(i + 1, u),
        });
    }
    ledger.to_stored()
}

#[tokio::test]
async fn entries_firedrill_cannot_prove_it_wrote_are_never_applied_and_the_real_ledger_still_reverts(
) {
    let memory = world();
    let before = memory.snapshot();
    let mut real = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    apply(&memory, &mut real, &every_kind_of_step(), &planners_only())
        .await
        .unwrap();
    let during = memory.snapshot();
    let records: Vec<UndoRecord> = real.entries.iter().map(|e| e.undo.clone()).collect();
    let other = Key::from_bytes(&[8; 32]).unwrap();
    let scale = records
        .iter()
        .find(|u| matches!(u, UndoRecord::RestoreReplicas { .. }))
        .unwrap()
        .clone();
    // Signed for its place, then one field changed in the stored text: the prior count.
    let mut changed = forged("run-f", std::slice::from_ref(&scale), |seq, u| {
        Some(KEY.seal("run-f", "drill", seq, u))
    });
    let text = changed.data["step-0001"].replace("\"prior\":2", "\"prior\":9");
    assert_ne!(text, changed.data["step-0001"]);
    changed.data.insert("step-0001".into(), text);
    let cases: Vec<(&str, Stored, &str)> = vec![
        (
            "no code",
            forged("run-a", &records, |_, _| None),
            "carries no authentication code",
        ),
        (
            "wrong code",
            forged("run-b", &records, |_, _| Some("0".repeat(64))),
            "does not match",
        ),
        (
            "malformed code",
            forged("run-b2", &records, |_, _| Some("zz".into())),
            "not 64 hex digits",
        ),
        (
            "another key",
            forged("run-c", &records, |seq, u| {
                Some(other.seal("run-c", "drill", seq, u))
            }),
            "does not match",
        ),
        (
            "copied from another run",
            forged("run-d", &records, |seq, _| {
                real.entries[seq - 1].mac.clone()
            }),
            "does not match",
        ),
        (
            "another step",
            forged("run-e", &records, |seq, u| {
                Some(KEY.seal("run-e", "drill", seq + 1, u))
            }),
            "does not match",
        ),
        ("one field changed", changed, "does not match"),
    ];
    for (case, stored, why) in cases {
        let made = memory.made.lock().unwrap().len();
        let mut ledger = Ledger::from_stored(&stored).unwrap();
        let open = ledger.entries.len();
        let report = replay(&memory, &mut ledger, &planners_only(), false).await;
        assert_eq!(report.rejected.len(), open, "{case}: {report:#?}");
        assert_eq!(report.actions.len(), open, "{case}: {report:#?}");
        for action in &report.actions {
            assert_eq!(action.outcome, Outcome::Failed, "{case}: {action:?}");
            assert!(
                action.text.contains("DOES NOT VERIFY, not applied") && action.text.contains(why),
                "{case}: {}",
                action.text
            );
        }
        assert_eq!(
            memory.made.lock().unwrap().len(),
            made,
            "{case}: a call was made"
        );
        assert_eq!(memory.snapshot(), during, "{case}: something changed");
        assert!(
            ledger.is_open(),
            "{case}: the ledger stays open for a person"
        );
    }
    // The real ledger, next to them, reverts as before.
    let report = replay(&memory, &mut real, &planners_only(), false).await;
    assert!(
        !report.failed() && report.rejected.is_empty(),
        "{report:#?}"
    );
    assert_eq!(memory.snapshot(), before);
}

#[tokio::test]
async fn an_unsigned_ledger_from_before_signing_is_applied_only_when_a_person_accepts_it() {
    let memory = world();
    let before = memory.snapshot();
    let mut real = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    apply(&memory, &mut real, &every_kind_of_step(), &planners_only())
        .await
        .unwrap();
    let during = memory.snapshot();
    // As an older firedrill wrote it: format v1, no codes.
    let mut stored = real.to_stored();
    stored
        .data
        .insert("format".into(), firedrill_rollback::FORMAT_UNSIGNED.into());
    for (key, text) in stored.data.iter_mut() {
        if key.starts_with("step-") {
            let mut v: Value = serde_json::from_str(text).unwrap();
            v.as_object_mut().unwrap().remove("mac");
            *text = v.to_string();
        }
    }
    let mut old = Ledger::from_stored(&stored).unwrap();
    assert!(old.unsigned);
    let report = replay(&memory, &mut old, &planners_only(), false).await;
    assert!(
        report.actions.iter().all(|a| a.outcome == Outcome::Failed
            && a.text
                .contains("firedrill rollback --run run-1 --accept-unsigned")),
        "{report:#?}"
    );
    assert_eq!(report.rejected.len(), old.entries.len());
    assert_eq!(report.rejected[0].why.label(), "unsigned_ledger");
    assert_eq!(memory.snapshot(), during);
    // Written back as it was read: still v1, still unsigned.
    assert_eq!(
        old.to_stored().data["format"],
        firedrill_rollback::FORMAT_UNSIGNED
    );
    // A person accepts it: reverted, still within the guard.
    let guard = |r: &ObjectRef| (r.kind == ObjectKind::Service).then(|| "protected".to_owned());
    let accepted = Trust {
        accept_unsigned: true,
        ..Trust::new(&guard, scope(), &KEY)
    };
    let report = replay(&memory, &mut old, &accepted, false).await;
    assert!(report.rejected.is_empty(), "{report:#?}");
    assert!(
        report
            .actions
            .iter()
            .any(|a| a.text.contains("names Service shop/db, which is protected")),
        "{report:#?}"
    );
    let mut after = memory.snapshot();
    let mut expected = before.clone();
    after.remove("Service shop/db");
    expected.remove("Service shop/db");
    assert_eq!(after, expected);
}

#[tokio::test]
async fn without_the_key_a_real_replay_applies_nothing_and_a_dry_run_says_it_did_not_check() {
    let memory = world();
    let mut real = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    apply(&memory, &mut real, &every_kind_of_step(), &planners_only())
        .await
        .unwrap();
    let during = memory.snapshot();
    let err = apply(
        &memory,
        &mut Ledger::new("run-2", "drill", "test", "2030-01-01T00:00:00Z"),
        &every_kind_of_step(),
        &Trust::without_key(&unprotected, scope()),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no ledger key to sign"), "{err}");
    assert!(
        !memory
            .ledgers
            .lock()
            .unwrap()
            .contains_key("firedrill-ledger-run-2"),
        "no key, no entry"
    );
    // A dry run without the key judges as one with it, and says it did not check.
    let dry = replay(
        &memory,
        &mut real.clone(),
        &Trust::without_key(&unprotected, scope()),
        true,
    )
    .await;
    let checked = replay(&memory, &mut real.clone(), &planners_only(), true).await;
    assert_eq!(dry.actions.len(), checked.actions.len());
    assert!(checked
        .actions
        .iter()
        .any(|a| a.outcome == Outcome::WouldRevert));
    for (unchecked, checked) in dry.actions.iter().zip(&checked.actions) {
        assert_eq!(unchecked.outcome, checked.outcome);
        if checked.outcome == Outcome::WouldRevert {
            assert_eq!(
                unchecked.text,
                format!("{} (signature not checked: no key given)", checked.text)
            );
        }
    }
    let report = replay(
        &memory,
        &mut real,
        &Trust::without_key(&unprotected, scope()),
        false,
    )
    .await;
    assert_eq!(report.rejected.len(), real.entries.len(), "{report:#?}");
    assert_eq!(report.rejected[0].why.label(), "no_key");
    assert!(report.actions.iter().all(|a| a.outcome == Outcome::Failed));
    assert_eq!(memory.snapshot(), during);
    assert!(real.is_open());
}

/// A promotion cannot be undone: its record is left, with its note, every time, without asking
/// a handler this process may not have for it.
#[tokio::test]
async fn an_irreversible_record_is_left_with_its_note_and_no_handler_is_asked() {
    let memory = world();
    let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
    ledger.push(
        UndoRecord::External {
            system: firedrill_rollback::scope::PROMOTION.into(),
            record: json!({ "irreversible": "run-1 promoted the standby; fail back by hand", "from": "a", "to": "b" }),
        },
        &KEY,
    );
    ledger.entries[0].state = EntryState::Applied;
    let report = replay(&memory, &mut ledger, &planners_only(), false).await;
    assert_eq!(report.actions.len(), 1, "{report:?}");
    assert_eq!(report.actions[0].outcome, Outcome::Left, "{report:?}");
    assert_eq!(
        report.actions[0].text,
        "promotion: run-1 promoted the standby; fail back by hand"
    );
    assert_eq!(ledger.entries[0].state, EntryState::Left);
}

/// A drill that scaled the worker from 2 to 0, applied; its ledger.
async fn scaled_worker(memory: &Memory) -> Ledger {
    let mut ledger = Ledger::new("run-e", "drill", "test", "2030-01-01T00:00:00Z");
    let worker = deployment("worker", 0).0;
    apply(
        memory,
        &mut ledger,
        &[Step::scale(worker, 2, 0, None)],
        &planners_only(),
    )
    .await
    .unwrap();
    ledger
}

fn failing_with(memory: &Memory, errors: Vec<ClusterError>) {
    *memory.failing.lock().unwrap() = errors;
}

/// The object went between the replay's read and its undo: judged again as gone, by the ledger's
/// rules (a created object already deleted is done; a field on a gone object is left), not
/// reported as a failure.
#[tokio::test]
async fn an_undo_that_finds_its_object_gone_is_judged_again_as_gone() {
    let memory = world();
    let mut ledger = scaled_worker(&memory).await;
    let gone = || ClusterError::NotFound {
        message: "deployments.apps \"worker\" not found".into(),
    };
    failing_with(&memory, vec![gone()]);
    let report = replay(&memory, &mut ledger, &planners_only(), false).await;
    assert_eq!(report.actions.len(), 1, "{report:?}");
    assert_eq!(report.actions[0].outcome, Outcome::Left, "{report:?}");
    assert!(
        report.actions[0].text.contains("no longer exists"),
        "{report:?}"
    );
    assert_eq!(
        memory.stored_ledger("run-e").entries[0].state,
        EntryState::Left
    );

    let mut ledger = Ledger::new("run-n", "drill", "test", "2030-01-01T00:00:00Z");
    let policy = Step::create(json!({ "kind": "NetworkPolicy", "metadata": { "namespace": "shop", "name": "firedrill-deny" }, "spec": { "podSelector": {} } })).unwrap();
    apply(&memory, &mut ledger, &[policy], &planners_only())
        .await
        .unwrap();
    failing_with(&memory, vec![gone()]);
    let report = replay(&memory, &mut ledger, &planners_only(), false).await;
    assert_eq!(
        report.actions[0].outcome,
        Outcome::AlreadyDone,
        "{report:?}"
    );
    assert!(!ledger.is_open());
}

/// A conflict is read again and judged again; one that keeps conflicting leaves the entry open.
#[tokio::test]
async fn a_conflicting_undo_is_read_again_and_retried_then_left_open() {
    let memory = world();
    let conflict = || ClusterError::Conflict {
        message: "the object has been modified".into(),
    };
    let mut ledger = scaled_worker(&memory).await;
    failing_with(&memory, vec![conflict()]);
    let report = replay(&memory, &mut ledger, &planners_only(), false).await;
    assert_eq!(report.actions[0].outcome, Outcome::Reverted, "{report:?}");
    assert_eq!(
        memory.snapshot()["Deployment shop/worker"]["spec"]["replicas"],
        2
    );

    let memory = world();
    let mut ledger = scaled_worker(&memory).await;
    failing_with(&memory, (0..4).map(|_| conflict()).collect());
    let report = replay(&memory, &mut ledger, &planners_only(), false).await;
    assert_eq!(report.actions[0].outcome, Outcome::Failed, "{report:?}");
    assert!(
        report.actions[0]
            .text
            .ends_with("failed: the object has been modified"),
        "{report:?}"
    );
    assert!(ledger.is_open());
    // The next replay finishes it.
    let report = replay(&memory, &mut ledger, &planners_only(), false).await;
    assert_eq!(report.actions[0].outcome, Outcome::Reverted, "{report:?}");
}

/// Forbidden: left open, naming the rule to grant. Transient: left open for the next sweep.
#[tokio::test]
async fn a_forbidden_or_passing_failure_leaves_the_entry_open_and_says_what_to_do() {
    let memory = world();
    let mut ledger = scaled_worker(&memory).await;
    failing_with(
        &memory,
        vec![ClusterError::Forbidden {
            access: Access {
                verb: "patch".into(),
                resource: "deployments.apps".into(),
                namespace: Some("shop".into()),
            },
            message: "patch Deployment shop/worker: forbidden".into(),
        }],
    );
    let report = replay(&memory, &mut ledger, &planners_only(), false).await;
    let action = &report.actions[0];
    assert_eq!(action.outcome, Outcome::Failed, "{report:?}");
    assert!(
        action.text.contains(
            "failed: patch Deployment shop/worker: forbidden; forbidden: firedrill may not patch deployments.apps in namespace shop: grant that"
        ),
        "{}",
        action.text
    );
    assert!(ledger.is_open());
    assert_eq!(
        memory.snapshot()["Deployment shop/worker"]["spec"]["replicas"],
        0
    );

    failing_with(
        &memory,
        vec![ClusterError::Transient {
            message: "503 Service Unavailable".into(),
        }],
    );
    let report = replay(&memory, &mut ledger, &planners_only(), false).await;
    assert_eq!(report.actions[0].outcome, Outcome::Failed, "{report:?}");
    assert!(
        report.actions[0]
            .text
            .ends_with("503 Service Unavailable; a passing failure: the ledger stays open and the next sweep or rollback tries again"),
        "{report:?}"
    );
    assert!(ledger.is_open());
    let report = replay(&memory, &mut ledger, &planners_only(), false).await;
    assert_eq!(report.actions[0].outcome, Outcome::Reverted, "{report:?}");
}
