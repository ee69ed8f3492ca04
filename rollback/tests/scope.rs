//! Whatever a replay executes is within what firedrill's planners write, for any ledger entry:
//! random kinds, namespaces, names, JSON-pointer paths (traversal and odd escapes included),
//! values, systems, zones and endpoints. The oracle is a table written here from the planners,
//! not `scope::within`.

use std::collections::BTreeSet;

use firedrill_rollback::scope::{DeclaredDns, PROMOTION, ROUTE53};
use firedrill_rollback::{
    replay, AsLeft, Key, Ledger, ObjectKind, ObjectRef, Operation, Scope, Trust, UndoRecord,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Value};

fn guard(r: &ObjectRef) -> Option<String> {
    match r.namespace.as_deref() {
        Some("kube-system") => Some("kube-system is always protected".into()),
        Some("chaos-testing") => Some("firedrill's own namespace".into()),
        _ => None,
    }
}

fn scope() -> Scope {
    Scope {
        dns: Some(vec![DeclaredDns {
            drill: "fail-over".into(),
            zone: "Z1".into(),
            name: "api.example.com.".into(),
            record_type: "A".into(),
            set_identifiers: BTreeSet::from(["use1".to_owned()]),
            health_checks: BTreeSet::from(["hc-1".to_owned()]),
            endpoints: BTreeSet::from([None]),
        }]),
    }
}

fn label_value(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && (s.is_empty()
                || (s.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && s.ends_with(|c: char| c.is_ascii_alphanumeric())))
    })
}

fn unprotected_name(r: &ObjectRef) -> bool {
    let ns_ok = match (r.kind, r.namespace.as_deref()) {
        (ObjectKind::Node, None) => true,
        (ObjectKind::Node, Some(_)) | (_, None) => false,
        (_, Some(ns)) => ns == "shop" || ns == "pake-api",
    };
    ns_ok
        && !r.name.is_empty()
        && r.name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The table: every call firedrill's reverts may make, by what the planners write.
fn allowed(op: &Operation) -> bool {
    match op {
        // Only what it created: four kinds, named firedrill-….
        Operation::Delete { target } => {
            [
                ObjectKind::Pod,
                ObjectKind::NetworkPolicy,
                ObjectKind::Service,
                ObjectKind::Deployment,
            ]
            .contains(&target.kind)
                && target.name.starts_with("firedrill-")
                && unprotected_name(target)
        }
        Operation::Patch { target, patch } if unprotected_name(target) => match target.kind {
            // Removing the partition label: the whole patch, nothing else.
            ObjectKind::Pod => {
                *patch == json!({ "metadata": { "labels": { "firedrill.io/partition": null } } })
            }
            ObjectKind::Node => *patch == json!({ "spec": { "unschedulable": null } }),
            ObjectKind::Deployment | ObjectKind::StatefulSet => {
                patch
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .is_some_and(|n| (0..=10_000).contains(&n))
                    && patch.as_object().map(|m| m.len()) == Some(1)
                    && patch["spec"].as_object().map(|m| m.len()) == Some(1)
            }
            ObjectKind::Service => {
                patch.as_object().map(|m| m.len()) == Some(1)
                    && patch["spec"].as_object().map(|m| m.len()) == Some(1)
                    && patch["spec"]["selector"].as_object().is_some_and(|m| {
                        m.iter().all(|(k, v)| {
                            !k.is_empty() && !k.contains(' ') && (v.is_null() || label_value(v))
                        })
                    })
            }
            _ => false,
        },
        Operation::External { system, action } if system == ROUTE53 => {
            let t = &action["target"];
            let set = &action["set"];
            let record_set = t["zone"] == "Z1"
                && t["name"] == "api.example.com."
                && t["type"] == "A"
                && t["set_identifier"] == "use1"
                && t.get("endpoint").is_none_or(Value::is_null)
                && set["name"] == "api.example.com."
                && set["set_identifier"] == "use1";
            let check = t["health_check"] == "hc-1"
                && t.get("endpoint").is_none_or(Value::is_null)
                && set.as_object().map(|m| m.len()) == Some(1)
                && set["inverted"].is_boolean();
            record_set || check
        }
        _ => false,
    }
}

/// Any object, of kind `likely` half the time (so that enough records are in scope to act on).
fn arb_ref(likely: ObjectKind) -> impl Strategy<Value = ObjectRef> {
    (
        prop_oneof![
            Just(likely),
            proptest::sample::select(ObjectKind::ALL.to_vec())
        ],
        proptest::sample::select(vec![
            Some("shop"),
            Some("shop"),
            Some("shop"),
            Some("kube-system"),
            Some("chaos-testing"),
            Some("Bad_NS"),
            None,
            None,
        ]),
        proptest::sample::select(vec![
            "firedrill-x",
            "firedrill-x",
            "api",
            "api-0",
            "node-1",
            "a/b",
            "",
        ]),
    )
        .prop_map(|(kind, ns, name)| ObjectRef {
            kind,
            namespace: ns.map(str::to_owned),
            name: name.to_owned(),
        })
}

fn arb_value() -> impl Strategy<Value = Option<Value>> {
    proptest::sample::select(vec![
        None,
        None,
        Some(json!("run-1")),
        Some(json!("run-1")),
        Some(json!("other")),
        Some(json!("not a label!")),
        Some(json!(true)),
        Some(json!(3)),
        Some(json!({ "a": "b" })),
        Some(json!("evil:latest")),
    ])
}

fn arb_path() -> impl Strategy<Value = String> {
    proptest::sample::select(vec![
        "/metadata/labels/firedrill.io~1partition",
        "/metadata/labels/firedrill.io~1partition",
        "/metadata/labels/firedrill.io~1partition",
        "/metadata/../spec/template/spec/containers/0/image",
        "/spec/template/spec/containers/0/image",
        "/metadata/labels/firedrill.io~1..~1partition",
        "/metadata//labels/firedrill.io~1partition",
        "/metadata~1labels/firedrill.io~1partition",
        "/metadata/labels/firedrill.io~2partition",
        "/spec/paused",
        "/spec/replicas",
        "/spec/unschedulable",
        "/metadata/annotations/firedrill.io~1fault",
    ])
    .prop_map(str::to_owned)
}

fn arb_selector() -> impl Strategy<Value = std::collections::BTreeMap<String, String>> {
    proptest::collection::btree_map(
        proptest::sample::select(vec![
            "app",
            "firedrill.io/proxy",
            "firedrill.io/proxy",
            "tier",
            "bad key",
        ]),
        proptest::sample::select(vec!["db", "run-1", "x y", ""]),
        0..3,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    })
}

fn arb_external() -> impl Strategy<Value = UndoRecord> {
    (
        proptest::sample::select(vec![ROUTE53, PROMOTION, "dns", "gcp"]),
        proptest::sample::select(vec!["Z1", "Z2"]),
        proptest::sample::select(vec!["use1", "other"]),
        proptest::sample::select(vec![Value::Null, json!("http://evil.example")]),
        proptest::sample::select(vec!["api.example.com.", "www.example.com."]),
        0i64..300,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(system, zone, set, endpoint, written, weight, health, irreversible)| {
                let mut record = if health {
                    json!({ "target": { "health_check": if zone == "Z1" { "hc-1" } else { "hc-9" }, "endpoint": endpoint },
                            "prior": { "inverted": false }, "applied": { "inverted": true } })
                } else {
                    let state = |w: i64| json!({ "name": written, "type": "A", "set_identifier": set, "weight": w });
                    json!({ "target": { "zone": zone, "name": "api.example.com.", "type": "A", "set_identifier": set, "endpoint": endpoint },
                            "prior": state(weight), "applied": state(0) })
                };
                if irreversible {
                    record["irreversible"] = json!("promoted");
                }
                UndoRecord::External {
                    system: system.to_owned(),
                    record,
                }
            },
        )
}

fn arb_record() -> impl Strategy<Value = UndoRecord> {
    prop_oneof![
        arb_ref(ObjectKind::NetworkPolicy).prop_map(|target| UndoRecord::DeleteCreated { target }),
        (
            arb_ref(ObjectKind::Pod),
            arb_path(),
            arb_value(),
            arb_value()
        )
            .prop_map(|(target, path, prior, applied)| UndoRecord::RestoreField {
                target,
                path,
                prior,
                applied,
            }),
        (
            proptest::sample::select(vec!["node-1", "Node_1", ""]),
            any::<bool>()
        )
            .prop_map(|(node, was)| UndoRecord::Uncordon {
                node: node.to_owned(),
                was_unschedulable: was,
            }),
        (
            arb_ref(ObjectKind::Deployment),
            prop_oneof![0i64..20, -2i64..20_000],
            0i64..3
        )
            .prop_map(|(target, prior, applied)| {
                UndoRecord::RestoreReplicas {
                    target,
                    prior,
                    applied,
                    hpa: None,
                }
            }),
        (arb_ref(ObjectKind::Service), arb_selector(), arb_selector()).prop_map(
            |(service, prior, applied)| {
                UndoRecord::RestoreSelector {
                    service,
                    prior,
                    applied,
                }
            }
        ),
        arb_external(),
        (
            arb_ref(ObjectKind::Pod),
            proptest::sample::select(vec!["ReplicaSet/api", "x"])
        )
            .prop_map(|(pod, owner)| UndoRecord::Recreated {
                pod,
                owner: owner.to_owned(),
            }),
    ]
}

/// Every entry is signed: what is tested here is the scope, which holds whatever the key says.
static KEY: std::sync::LazyLock<Key> =
    std::sync::LazyLock::new(|| Key::from_bytes(&[5; 32]).unwrap());

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Replayed for real on a cluster that holds every object as the record says the run left
    /// it (so each record that passes is acted on): every call made is in the table.
    #[test]
    fn whatever_replay_executes_is_within_the_planners_table(
        records in proptest::collection::vec(arb_record(), 1..6)
    ) {
        let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
        for r in records {
            ledger.push(r, &KEY);
        }
        let cluster = AsLeft::of(&ledger);
        let scope = scope();
        let trust = Trust::new(&guard, &scope, &KEY);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let report = rt.block_on(replay(&cluster, &mut ledger, &trust, false));
        for op in cluster.executed() {
            prop_assert!(allowed(&op), "executed outside the planners' table: {op:?}\n{report:?}");
        }
        // A refused entry stays open for a person.
        for action in report.actions.iter().filter(|a| a.text.starts_with("refused: ")) {
            let entry = ledger.entries.iter().find(|e| format!("step-{:04}", e.seq) == action.step).unwrap();
            prop_assert!(entry.state.is_open(), "{entry:?}");
        }
    }
}

/// The property above is not vacuous: the same generator makes many calls and many refusals.
#[test]
fn the_property_exercises_both_sides() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let scope = scope();
    let (mut made, mut refused) = (0, 0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for _ in 0..2000 {
        let records = proptest::collection::vec(arb_record(), 1..6)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let mut ledger = Ledger::new("run-1", "drill", "test", "2030-01-01T00:00:00Z");
        for r in records {
            ledger.push(r, &KEY);
        }
        let cluster = AsLeft::of(&ledger);
        let trust = Trust::new(&guard, &scope, &KEY);
        let report = rt.block_on(replay(&cluster, &mut ledger, &trust, false));
        made += cluster.executed().len();

        refused += report
            .actions
            .iter()
            .filter(|a| a.text.starts_with("refused: "))
            .count();
    }
    println!("2000 random ledgers: {made} calls made, {refused} entries refused");
    assert!(made > 200, "only {made} calls made");
    assert!(refused > 2000, "only {refused} entries refused");
}
