//! A stand-in for the kubelet and a network plugin, for the effect canaries of
//! network-partition, dependency-failure `block` and zone-outage `partition`
//! (runner/src/drill/effect/reach.rs): on the in-memory cluster pods never run, so it gives each
//! canary the status its script would.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use firedrill::run::{Revert, RunRecord};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{json, Value};

/// How the stand-in network plugin treats a canary.
#[derive(Clone, Copy, PartialEq)]
pub enum Plugin {
    /// Connected once it starts; refused once a firedrill policy is in its namespace.
    Enforces,
    /// Connected once it starts, and ever after: NetworkPolicies change nothing.
    Ignores,
    /// The pod it tries never answers: the canary gives up before the fault (exit 3).
    NoAnswer,
}

/// Stands in for the kubelet and the network plugin: every canary pod (label
/// `firedrill.io/canary`) gets the status its script would give it. Each canary is kept as
/// first seen, for the test to look at.
pub fn plugin(client: kube::Client, plugin: Plugin) -> Arc<Mutex<Vec<Value>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        let all = Api::<Pod>::all(client.clone());
        loop {
            let canaries = all
                .list(&ListParams::default().labels("firedrill.io/canary"))
                .await
                .unwrap()
                .items;
            for canary in canaries {
                let namespace = canary.metadata.namespace.clone().unwrap();
                let name = canary.metadata.name.clone().unwrap();
                let value = serde_json::to_value(&canary).unwrap();
                let pods = Api::<Pod>::namespaced(client.clone(), &namespace);
                let phase = value["status"]["phase"].as_str().unwrap_or_default();
                let status = match (phase, plugin) {
                    ("", Plugin::NoAnswer) => Some(ended(3)),
                    ("", _) => {
                        kept.lock().unwrap().push(value.clone());
                        Some(json!({ "status": { "phase": "Running", "podIP": "10.0.9.9",
                            "conditions": [{ "type": "Ready", "status": "True" }],
                            "containerStatuses": [{ "name": "canary", "ready": true, "restartCount": 0,
                                "image": "busybox", "imageID": "", "state": { "running": {} } }] } }))
                    }
                    ("Running", Plugin::Enforces) => {
                        let policies = Api::<NetworkPolicy>::namespaced(client.clone(), &namespace)
                            .list(&ListParams::default())
                            .await
                            .unwrap()
                            .items;
                        policies
                            .iter()
                            .any(|p| {
                                let n = p.metadata.name.as_deref().unwrap_or_default();
                                [
                                    "firedrill-partition-",
                                    "firedrill-block-",
                                    "firedrill-zone-",
                                ]
                                .iter()
                                .any(|prefix| n.starts_with(prefix))
                            })
                            .then(|| ended(0))
                    }
                    _ => None,
                };
                if let Some(status) = status {
                    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await
                        .unwrap();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    seen
}

/// A canary's status once its script exited `code` now.
pub fn ended(code: i32) -> Value {
    let phase = if code == 0 { "Succeeded" } else { "Failed" };
    json!({ "status": { "phase": phase, "containerStatuses": [{ "name": "canary", "ready": false,
        "restartCount": 0, "image": "busybox", "imageID": "",
        "state": { "terminated": { "exitCode": code, "finishedAt": chrono::Utc::now().to_rfc3339() } } }] } })
}

/// Every canary is gone, and every ledger entry (the canary's creation too) reverted.
pub async fn nothing_left(client: &kube::Client, record: &RunRecord) {
    let canaries = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().labels("firedrill.io/canary"))
        .await
        .unwrap()
        .items;
    assert!(canaries.is_empty(), "{canaries:?}");
    let ledger = super::cluster::ledger_data(client, &record.id).await;
    let steps: Vec<&String> = ledger.keys().filter(|k| k.starts_with("step-")).collect();
    assert!(!steps.is_empty());
    for (key, entry) in ledger.iter().filter(|(k, _)| k.starts_with("step-")) {
        assert!(entry.contains(r#""state":"reverted""#), "{key}: {entry}");
    }
    assert!(
        matches!(record.evidence.revert, Revert::Restored { .. }),
        "{:?}",
        record.evidence.revert
    );
}
