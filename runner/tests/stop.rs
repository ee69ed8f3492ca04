//! `firedrill stop` on the wire, at scale: 1,000 artifacts of each kind across 10 namespaces
//! (4,000 in all), counted call by
//! call. The number of API calls grows with the kinds of artifact and the runs, not with the
//! artifacts: the same stop of 100 artifacts makes exactly the same calls.

#[path = "support/stop_api.rs"]
mod stop_api;
mod support;

use stop_api::stop;

#[tokio::test]
async fn stop_costs_calls_per_kind_of_artifact_not_per_artifact() {
    let (calls, report, api) = stop(1000).await;
    assert!(report.clean(), "{report:#?}");
    assert!(
        api.lock().unwrap().artifacts.is_empty(),
        "every artifact was swept"
    );
    let swept: Vec<(String, usize, usize)> = report
        .swept
        .iter()
        .map(|s| s.as_ref().unwrap())
        .filter(|s| s.count > 0)
        .map(|s| (s.kind.to_string(), s.count, s.namespaces.len()))
        .collect();
    assert_eq!(
        swept,
        [
            ("NetworkPolicy".into(), 1000, 10),
            ("Pod".into(), 1000, 10),
            ("Service".into(), 1000, 10),
            ("Deployment".into(), 1000, 10)
        ]
    );
    assert_eq!(report.ledgers.len(), 10, "ten runs' ledgers, each closed");
    // What the person running it sees, phase by phase (the CLI adds the elapsed time).
    let phases = api.lock().unwrap().phases.clone();
    assert_eq!(
        phases[..3],
        [
            "engaging the kill switch",
            "deleting drill Jobs",
            "sweeping every NetworkPolicy labelled firedrill.io/artifact=true"
        ]
    );
    assert!(
        phases
            .iter()
            .filter(|p| p.starts_with("reverting firedrill-ledger-"))
            .count()
            == 10,
        "{phases:#?}"
    );
    assert_eq!(
        phases.last().map(String::as_str),
        Some("checking that nothing remains")
    );
    // 1 kill switch + 1 Jobs + 4 kinds listed + 4 kinds × 10 namespaces swept + 1 ledger key
    // (by name) + 1 ledger list + 10 ledgers saved (replaced at the version read) + 4 kinds and
    // 1 ledger list to verify.
    assert_eq!(
        calls.len(),
        1 + 1 + 4 + 40 + 1 + 1 + 10 + 4 + 1,
        "{calls:#?}"
    );
    assert!(
        calls.contains(
            &"GET /api/v1/namespaces/chaos-testing/secrets/firedrill-ledger-key?".to_owned()
        ),
        "{calls:#?}"
    );

    let (few, report, _) = stop(100).await;
    assert!(report.clean(), "{report:#?}");
    assert_eq!(
        few.len(),
        calls.len(),
        "100 artifacts cost as many calls as 1,000"
    );
    assert_eq!(few, calls, "the very same calls");
}

use support::{granted, verb};

/// The ClusterRoles grant exactly the rules of `cluster::access` (the table `firedrill check`
/// asks about), and `stop`'s calls outside firedrill's namespace are among them. The calls of
/// each kind are held to the same table where they are recorded (faults.rs).
#[tokio::test]
async fn rbac_grants_exactly_what_rollback_stop_and_the_faults_use() {
    let role = granted("role.yaml");
    let cluster = granted("clusterrole.yaml");
    let (calls, report, _) = stop(50).await;
    assert!(report.clean());
    let table: std::collections::BTreeSet<(String, String, String)> =
        firedrill::cluster::access::every_rule()
            .iter()
            .map(|r| (r.group.to_owned(), r.resource.to_owned(), r.verb.to_owned()))
            .collect();
    for call in &calls {
        let v = verb(call);
        let in_own_namespace = call.contains("/namespaces/chaos-testing/");
        assert!(
            cluster.contains(&v) || (in_own_namespace && role.contains(&v)),
            "{call} needs {v:?}, which deploy/kubernetes does not grant"
        );
        if !in_own_namespace {
            assert!(
                table.contains(&v),
                "{call} needs {v:?}, which cluster::access does not list"
            );
        }
    }
    assert_eq!(
        cluster, table,
        "granted (left) against cluster::access (right)"
    );
    for v in &cluster {
        assert_ne!(v.2, "*", "no wildcard verbs");
        assert_ne!(v.1, "secrets", "no Secrets");
    }
}

/// What no firedrill role may ever grant: everything (`*`), privilege escalation (`escalate`,
/// `bind`, `impersonate`), or reading Secrets (a drill needs none; hook Jobs and drill Jobs get
/// theirs from the kubelet, by reference). Every overlay's roles: `deploy.rs`.
#[test]
fn no_role_grants_wildcards_escalation_or_secrets() {
    for file in ["role.yaml", "clusterrole.yaml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/kubernetes")
            .join(file);
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            support::forbidden_grants(&text),
            Vec::<String>::new(),
            "{file}"
        );
    }
    // And the check reads something: both files grant rules.
    assert!(granted("role.yaml").len() > 5 && granted("clusterrole.yaml").len() > 10);
}
