//! The ledger's pieces one rule at a time: object kinds, how a ledger is stored and read back,
//! how two writers' copies merge, and the decisions and messages of single undo records. The
//! replay tests (`replay.rs`) drive whole ledgers; these pin the edges that mutation testing
//! (scripts/mutants.sh) found they left open.

use firedrill_rollback::{
    decide, replay, replay_after_sweep, AsLeft, Decision, EntryState, Key, Ledger, ObjectKind,
    ObjectRef, Operation, Outcome, Scope, Trust, UndoRecord,
};
use serde_json::{json, Value};

static KEY: std::sync::LazyLock<Key> =
    std::sync::LazyLock::new(|| Key::from_bytes(&[3; 32]).unwrap());

fn ledger() -> Ledger {
    Ledger::new("run-1", "drill", "pod-kill", "2030-01-01T00:00:00Z")
}

fn uncordon(node: &str) -> UndoRecord {
    UndoRecord::Uncordon {
        node: node.into(),
        was_unschedulable: false,
    }
}

#[test]
fn object_kinds_know_their_api_group_and_scope() {
    let want = [
        (ObjectKind::ConfigMap, "v1", true),
        (ObjectKind::Deployment, "apps/v1", true),
        (ObjectKind::NetworkPolicy, "networking.k8s.io/v1", true),
        (ObjectKind::Node, "v1", false),
        (ObjectKind::Pod, "v1", true),
        (ObjectKind::Service, "v1", true),
        (ObjectKind::StatefulSet, "apps/v1", true),
    ];
    assert_eq!(want.len(), ObjectKind::ALL.len());
    for (kind, api_version, namespaced) in want {
        assert_eq!(kind.api_version(), api_version, "{kind}");
        assert_eq!(kind.is_namespaced(), namespaced, "{kind}");
        assert_eq!(ObjectKind::parse(&kind.to_string()), Some(kind));
    }
    assert_eq!(ObjectKind::parse("Secret"), None);
}

#[test]
fn operations_describe_themselves_for_people() {
    let pod = ObjectRef::namespaced(ObjectKind::Pod, "shop", "web-0");
    let cases = [
        (
            Operation::Create {
                object: json!({ "kind": "NetworkPolicy", "metadata": { "namespace": "shop", "name": "deny" } }),
            },
            "create NetworkPolicy shop/deny",
        ),
        (
            Operation::Delete {
                target: pod.clone(),
            },
            "delete Pod shop/web-0",
        ),
        (
            Operation::Patch {
                target: ObjectRef::node("n1"),
                patch: json!({ "spec": { "unschedulable": true } }),
            },
            "patch Node n1: {\"spec\":{\"unschedulable\":true}}",
        ),
        (
            Operation::Kill {
                pod: pod.clone(),
                evict: true,
                grace_seconds: None,
            },
            "evict Pod shop/web-0",
        ),
        (
            Operation::Kill {
                pod,
                evict: false,
                grace_seconds: Some(0),
            },
            "delete Pod shop/web-0 (grace period 0s)",
        ),
    ];
    for (operation, text) in cases {
        assert_eq!(operation.describe(), text);
    }
}

/// Only `step-` and four or more digits, from 1, name an entry; anything else is kept aside
/// as unreadable, never dropped and never taken for another step.
#[test]
fn entry_keys_are_step_and_a_positive_zero_padded_number() {
    let mut stored = ledger().to_stored();
    let entry =
        r#"{"undo":{"type":"uncordon","node":"n","was_unschedulable":false},"state":"applied"}"#;
    for key in ["step-0000", "step-12", "step-00a1", "step-0002"] {
        stored.data.insert(key.into(), entry.into());
    }
    let read = Ledger::from_stored(&stored).unwrap();
    assert_eq!(read.entries.len(), 1);
    assert_eq!(read.entries[0].seq, 2);
    let mut unreadable: Vec<&str> = read.unreadable.iter().map(|u| u.key.as_str()).collect();
    unreadable.sort_unstable();
    assert_eq!(unreadable, ["step-0000", "step-00a1", "step-12"]);
    assert!(read
        .unreadable
        .iter()
        .all(|u| u.error.contains("not a step key")));
    // A new entry is numbered past every key, the unreadable ones too.
    let mut read = read;
    let i = read.push(uncordon("m"), &KEY);
    assert_eq!(read.entries[i].seq, 3);
}

#[test]
fn what_a_ledger_says_of_its_run_survives_the_round_trip() {
    let mut written = ledger();
    written.job = Some("firedrill-drill-123".into());
    written.started = Some("2026-12-06T10:00:00Z".into());
    written.outcome = Some("passed".into());
    written.hits = vec!["Deployment/shop/web".into()];
    written.push(uncordon("n"), &KEY);
    let read = Ledger::from_stored(&written.to_stored()).unwrap();
    assert_eq!(read.job, written.job);
    assert_eq!(read.started, written.started);
    assert_eq!(read.outcome, written.outcome);
    assert_eq!(read.hits, written.hits);

    // No hits: no key at all. Empty values read as absent.
    let bare = ledger().to_stored();
    assert!(!bare.data.contains_key("hits"));
    let mut empty = bare.clone();
    for key in ["job", "started", "outcome"] {
        empty.data.insert(key.into(), String::new());
    }
    let read = Ledger::from_stored(&empty).unwrap();
    assert_eq!((read.job, read.started, read.outcome), (None, None, None));
}

#[test]
fn an_unreadable_entry_says_why_in_plain_words() {
    let mut stored = ledger().to_stored();
    stored.data.insert(
        "step-0001".into(),
        r#"{"undo":{"type":"uncordon","node":"n"},"state":"applied"}"#.into(),
    );
    let read = Ledger::from_stored(&stored).unwrap();
    let error = &read.unreadable[0].error;
    assert!(
        error.starts_with("not a readable undo record: ") && error.contains("was_unschedulable"),
        "a known type with a missing field is not called unknown: {error}"
    );
}

/// Two writers of one ledger (the executor applying, `stop` reverting) each keep what the
/// other cannot have undone: a further state wins, a missing entry is taken in.
#[test]
fn two_copies_merge_to_the_further_state_of_each_entry() {
    let mut base = ledger();
    for node in ["a", "b", "c", "d"] {
        base.push(uncordon(node), &KEY);
    }
    let mut mine = base.clone();
    let mut theirs = base.clone();
    // a: both Intended. b: mine Applied, theirs Intended. c: mine Applied, theirs Reverted.
    // d: mine Left, theirs Applied. e: only theirs.
    mine.entries[1].state = EntryState::Applied;
    mine.entries[2].state = EntryState::Applied;
    theirs.entries[2].state = EntryState::Reverted;
    theirs.entries[2].note = Some("reverted by stop".into());
    mine.entries[3].state = EntryState::Left;
    mine.entries[3].note = Some("left by me".into());
    theirs.entries[3].state = EntryState::Applied;
    theirs.push(uncordon("e"), &KEY);
    theirs.outcome = Some("aborted".into());
    theirs.hits = vec!["Deployment/shop/web".into()];
    theirs.resource_version = Some("42".into());

    mine.merge(&theirs);
    let states: Vec<(usize, EntryState)> = mine
        .entries
        .iter()
        .map(|e| (e.seq, e.state.clone()))
        .collect();
    assert_eq!(
        states,
        [
            (1, EntryState::Intended),
            (2, EntryState::Applied),
            (3, EntryState::Reverted),
            (4, EntryState::Left),
            (5, EntryState::Intended),
        ]
    );
    assert_eq!(mine.entries[2].note.as_deref(), Some("reverted by stop"));
    assert_eq!(mine.entries[3].note.as_deref(), Some("left by me"));
    // Closed on both sides: the copy's own closing stays, note and all.
    let mut closed_here = base.clone();
    closed_here.entries[0].state = EntryState::Left;
    closed_here.entries[0].note = Some("left here".into());
    let mut closed_there = base.clone();
    closed_there.entries[0].state = EntryState::Reverted;
    closed_there.entries[0].note = Some("reverted there".into());
    closed_here.merge(&closed_there);
    assert_eq!(closed_here.entries[0].state, EntryState::Left);
    assert_eq!(closed_here.entries[0].note.as_deref(), Some("left here"));
    assert_eq!(mine.outcome.as_deref(), Some("aborted"));
    assert_eq!(mine.hits, ["Deployment/shop/web"]);
    assert_eq!(mine.resource_version.as_deref(), Some("42"));

    // What this copy knew already stays: its own outcome and hits are not overwritten.
    let mut known = base.clone();
    known.outcome = Some("passed".into());
    known.hits = vec!["StatefulSet/db/pg".into()];
    known.merge(&theirs);
    assert_eq!(known.outcome.as_deref(), Some("passed"));
    assert_eq!(known.hits, ["StatefulSet/db/pg"]);

    // Unreadable entries are taken in once.
    let mut stored = base.to_stored();
    stored.data.insert("step-0009".into(), "{not json".into());
    let odd = Ledger::from_stored(&stored).unwrap();
    let mut twice = base.clone();
    twice.merge(&odd);
    twice.merge(&odd);
    assert_eq!(twice.unreadable.len(), 1);
}

#[test]
fn a_created_object_is_deleted_only_when_it_carries_this_run() {
    let target = ObjectRef::namespaced(ObjectKind::NetworkPolicy, "shop", "fd-deny");
    let record = UndoRecord::DeleteCreated {
        target: target.clone(),
    };
    let ours = json!({ "metadata": { "labels": { "firedrill.io/run": "run-1" } } });
    assert_eq!(
        decide("run-1", &record, Some(&ours)),
        Decision::Apply(
            Operation::Delete { target },
            "delete NetworkPolicy shop/fd-deny, which the drill created".into()
        )
    );
    for other in [
        json!({ "metadata": { "labels": { "firedrill.io/run": "run-2" } } }),
        json!({ "metadata": { "name": "fd-deny" } }),
    ] {
        let decision = decide("run-1", &record, Some(&other));
        assert!(
            matches!(&decision, Decision::Leave(t) if t.contains("was not created by run run-1")),
            "{other}: {decision:?}"
        );
    }
    assert!(matches!(
        decide("run-1", &record, None),
        Decision::AlreadyDone(_)
    ));
}

#[test]
fn a_field_decision_shows_the_values_it_compared() {
    let record = UndoRecord::RestoreField {
        target: ObjectRef::namespaced(ObjectKind::Pod, "shop", "web-0"),
        path: "/metadata/labels/firedrill.io~1partition".into(),
        prior: None,
        applied: Some(json!("run-1")),
    };
    let applied = json!({ "metadata": { "labels": { "firedrill.io/partition": "run-1" } } });
    let decision = decide("run-1", &record, Some(&applied));
    assert_eq!(
        decision.text(),
        "restore Pod shop/web-0 /metadata/labels/firedrill.io~1partition to (absent)"
    );
    let changed = json!({ "metadata": { "labels": { "firedrill.io/partition": "run-9" } } });
    let decision = decide("run-1", &record, Some(&changed));
    assert_eq!(
        decision.text(),
        "Pod shop/web-0 /metadata/labels/firedrill.io~1partition changed since the drill set it to \"run-1\" (now \"run-9\"); left alone, restore (absent) by hand if it should be"
    );
    let gone = decide("run-1", &record, Some(&json!({ "metadata": {} })));
    assert_eq!(
        gone,
        Decision::AlreadyDone(
            "Pod shop/web-0 /metadata/labels/firedrill.io~1partition is already (absent)".into()
        )
    );
}

fn dns(prior: Value, applied: Value) -> UndoRecord {
    UndoRecord::External {
        system: "route53".into(),
        record: json!({
            "target": { "zone": "Z1", "name": "api.example.com.", "type": "A", "set": "primary",
                        "endpoint": "http://127.0.0.1:1", "wait_seconds": 30, "region": null },
            "prior": prior,
            "applied": applied,
        }),
    }
}

#[test]
fn an_external_record_is_named_by_its_target_and_judged_on_its_keys() {
    let record = dns(json!({ "weight": 100 }), json!({ "weight": 0 }));
    // Named by the target's fields, without where the handler calls or how long it waits.
    let applied = json!({ "weight": 0, "ttl": 60 });
    let decision = decide("run-1", &record, Some(&applied));
    assert_eq!(
        decision,
        Decision::Apply(
            Operation::External {
                system: "route53".into(),
                action: json!({
                    "target": { "zone": "Z1", "name": "api.example.com.", "type": "A", "set": "primary",
                                "endpoint": "http://127.0.0.1:1", "wait_seconds": 30, "region": null },
                    "set": { "weight": 100 },
                }),
            },
            "restore route53 name api.example.com. set primary type A zone Z1 to {\"weight\":100}"
                .into()
        )
    );
    assert!(matches!(
        decide("run-1", &record, Some(&json!({ "weight": 100, "ttl": 60 }))),
        Decision::AlreadyDone(_)
    ));
    let moved = decide("run-1", &record, Some(&json!({ "weight": 50 })));
    assert!(
        matches!(&moved, Decision::Leave(t) if t.contains("changed since the drill set")),
        "{moved:?}"
    );
    // A plain value (not an object) is compared whole.
    let whole = dns(json!("on"), json!("off"));
    assert!(matches!(
        decide("run-1", &whole, Some(&json!("off"))),
        Decision::Apply(..)
    ));
    assert!(matches!(
        decide("run-1", &whole, Some(&json!("on"))),
        Decision::AlreadyDone(_)
    ));
}

#[test]
fn an_irreversible_record_is_left_and_said_every_time() {
    let record = UndoRecord::External {
        system: "promotion".into(),
        record: json!({ "irreversible": "the standby was promoted; fail back by hand" }),
    };
    assert_eq!(record.target(), None);
    assert_eq!(
        decide("run-1", &record, None),
        Decision::Leave("promotion: the standby was promoted; fail back by hand".into())
    );
}

fn open_ledger() -> Ledger {
    let mut ledger = ledger();
    ledger.push(uncordon("n1"), &KEY);
    ledger.push(
        UndoRecord::DeleteCreated {
            target: ObjectRef::namespaced(ObjectKind::NetworkPolicy, "shop", "firedrill-deny"),
        },
        &KEY,
    );
    for entry in &mut ledger.entries {
        entry.state = EntryState::Applied;
    }
    ledger
}

fn unprotected(_: &ObjectRef) -> Option<String> {
    None
}

/// A dry run says what it would do and does nothing: no call, and the ledger as it was.
#[tokio::test]
async fn a_dry_run_changes_neither_the_cluster_nor_the_ledger() {
    let mut ledger = open_ledger();
    let cluster = AsLeft::of(&ledger);
    let scope = Scope::without_drill_file();
    let trust = Trust::new(&unprotected, &scope, &KEY);
    let before = ledger.clone();
    let report = replay(&cluster, &mut ledger, &trust, true).await;
    assert!(cluster.executed().is_empty(), "{:?}", cluster.executed());
    assert_eq!(ledger, before);
    let outcomes: Vec<Outcome> = report.actions.iter().map(|a| a.outcome.clone()).collect();
    assert_eq!(outcomes, [Outcome::WouldRevert, Outcome::WouldRevert]);
    // The same for real: both undone, the ledger closed.
    let report = replay(&cluster, &mut ledger, &trust, false).await;
    assert!(!report.failed(), "{report:?}");
    assert_eq!(cluster.executed().len(), 2);
    assert!(!ledger.is_open());
}

/// After `stop`'s sweep by label, what the sweep deleted is closed without a call; the rest is
/// replayed as usual.
#[tokio::test]
async fn after_a_sweep_what_it_deleted_is_closed_without_a_call() {
    let mut ledger = open_ledger();
    let cluster = AsLeft::of(&ledger);
    let scope = Scope::without_drill_file();
    let trust = Trust::new(&unprotected, &scope, &KEY);
    let swept = |r: &ObjectRef| r.kind == ObjectKind::NetworkPolicy;
    let report = replay_after_sweep(&cluster, &mut ledger, &trust, &swept).await;
    let outcomes: Vec<(&str, Outcome)> = report
        .actions
        .iter()
        .map(|a| (a.step.as_str(), a.outcome.clone()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("step-0002", Outcome::AlreadyDone),
            ("step-0001", Outcome::Reverted)
        ]
    );
    assert!(report.actions[0].text.contains("removed by the sweep"));
    // Only the uncordon was a call.
    assert_eq!(cluster.executed().len(), 1);
    assert!(!ledger.is_open());
}

/// A preview replays the ledger on the cluster as the run left it: every open entry's verdict,
/// newest first, and the exact call for each it reverts, the calls on two DNS records kept
/// apart.
#[tokio::test]
async fn a_preview_shows_each_entrys_verdict_and_exact_call() {
    use firedrill_rollback::scope::{DeclaredDns, ROUTE53};
    let record = |set: &str, prior: i64, applied: i64| UndoRecord::External {
        system: ROUTE53.into(),
        record: json!({
            "target": { "zone": "Z1", "name": "api.example.com.", "type": "A", "set_identifier": set },
            "prior": { "name": "api.example.com.", "type": "A", "set_identifier": set, "weight": prior },
            "applied": { "name": "api.example.com.", "type": "A", "set_identifier": set, "weight": applied },
        }),
    };
    let mut ledger = ledger();
    ledger.push(uncordon("n1"), &KEY);
    ledger.push(record("primary", 100, 0), &KEY);
    ledger.push(record("secondary", 0, 100), &KEY);
    for entry in &mut ledger.entries {
        entry.state = EntryState::Applied;
    }
    let scope = Scope {
        dns: Some(vec![DeclaredDns {
            drill: "region".into(),
            zone: "Z1".into(),
            name: "api.example.com.".into(),
            record_type: "A".into(),
            set_identifiers: ["primary".to_owned(), "secondary".to_owned()].into(),
            health_checks: Default::default(),
            endpoints: [None].into(),
        }]),
    };
    let trust = Trust::new(&unprotected, &scope, &KEY);
    let previewed = firedrill_rollback::preview(&ledger, &trust).await;
    let shown: Vec<(&str, Outcome, Option<String>)> = previewed
        .iter()
        .map(|p| {
            (
                p.action.step.as_str(),
                p.action.outcome.clone(),
                p.operation.as_ref().map(Operation::describe),
            )
        })
        .collect();
    let call = |set: &str, weight: i64| {
        format!(
            "route53: {{\"set\":{{\"name\":\"api.example.com.\",\"set_identifier\":\"{set}\",\"type\":\"A\",\"weight\":{weight}}},\"target\":{{\"name\":\"api.example.com.\",\"set_identifier\":\"{set}\",\"type\":\"A\",\"zone\":\"Z1\"}}}}"
        )
    };
    assert_eq!(
        shown,
        [
            ("step-0003", Outcome::Reverted, Some(call("secondary", 0))),
            ("step-0002", Outcome::Reverted, Some(call("primary", 100))),
            (
                "step-0001",
                Outcome::Reverted,
                Some("patch Node n1: {\"spec\":{\"unschedulable\":null}}".to_owned())
            ),
        ]
    );
    // The ledger itself is untouched: a preview is a copy.
    assert!(ledger
        .entries
        .iter()
        .all(|e| e.state == EntryState::Applied));
}

/// An entry that does not verify is reported with what it names, so a person can look at it.
#[tokio::test]
async fn an_entry_that_does_not_verify_says_what_it_names() {
    let mut ledger = open_ledger();
    ledger.push(
        UndoRecord::External {
            system: firedrill_rollback::scope::PROMOTION.into(),
            record: json!({ "irreversible": "promoted", "from": "a", "to": "b" }),
        },
        &KEY,
    );
    for entry in &mut ledger.entries {
        entry.state = EntryState::Applied;
        entry.mac = Some("0".repeat(64));
    }
    let cluster = AsLeft::of(&ledger);
    let scope = Scope::without_drill_file();
    let report = replay(
        &cluster,
        &mut ledger,
        &Trust::new(&unprotected, &scope, &KEY),
        false,
    )
    .await;
    let texts: Vec<&str> = report.actions.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(texts.len(), 3);
    for (text, names) in texts.iter().zip([
        "It names promotion; the ledger stays open",
        "It names NetworkPolicy shop/firedrill-deny",
        "It names Node n1",
    ]) {
        assert!(
            text.starts_with("DOES NOT VERIFY") && text.contains(names),
            "{text}"
        );
    }
    assert!(cluster.executed().is_empty());
}

/// A preview says which entries do not verify, each by its own step.
#[tokio::test]
async fn a_preview_says_which_entry_does_not_verify() {
    let mut ledger = open_ledger();
    ledger.entries[0].mac = Some("0".repeat(64));
    let scope = Scope::without_drill_file();
    let previewed =
        firedrill_rollback::preview(&ledger, &Trust::new(&unprotected, &scope, &KEY)).await;
    let rejections: Vec<(&str, Option<firedrill_rollback::Rejection>)> = previewed
        .iter()
        .map(|p| (p.action.step.as_str(), p.rejection))
        .collect();
    assert_eq!(
        rejections,
        [
            ("step-0002", None),
            (
                "step-0001",
                Some(firedrill_rollback::Rejection::Unverified(
                    firedrill_rollback::Unverified::Mismatch
                ))
            ),
        ]
    );
}

/// An irreversible step is typed, and its wire shape is the one open ledgers already hold (the
/// `promotion` external record), so a ledger written before the type existed still reads as one,
/// and is left, saying why, by every revert.
#[test]
fn an_irreversible_step_is_the_promotion_record_open_ledgers_hold() {
    let step = firedrill_rollback::Irreversible {
        note: "run r promoted the database in eu-west-1; fail back by the runbook".into(),
        from: "us-east-1".into(),
        to: "eu-west-1".into(),
    };
    let record = step.record();
    let written_before = UndoRecord::External {
        system: "promotion".into(),
        record: json!({
            "irreversible": "run r promoted the database in eu-west-1; fail back by the runbook",
            "from": "us-east-1",
            "to": "eu-west-1",
        }),
    };
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        serde_json::to_value(&written_before).unwrap()
    );
    assert_eq!(written_before.irreversible(), Some(step));
    match decide("r", &written_before, None) {
        Decision::Leave(why) => assert!(why.contains("fail back by the runbook"), "{why}"),
        other => panic!("an irreversible step is left, saying why: {other:?}"),
    }
    // Another system's record with the same field is not one (and is out of scope anyway).
    let route53 = UndoRecord::External {
        system: "route53".into(),
        record: json!({ "irreversible": "x" }),
    };
    assert_eq!(route53.irreversible(), None);
}
