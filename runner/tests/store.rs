//! The run history on SQLite and on a real PostgreSQL: migrations from empty and twice, runs and
//! fires written, replaced and read back.

mod support;

use chrono::{DateTime, TimeDelta, Utc};
use firedrill::config::Store as StoreUrl;
use firedrill::store::{FireRecord, Measurements, RunRecord, RunStatus, Store};
use support::{service, unique};

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn run(id: &str, drill: &str, scheduled: &str, status: RunStatus) -> RunRecord {
    RunRecord {
        cluster: "default".into(),
        id: id.into(),
        drill: drill.into(),
        kind: "probe".into(),
        scheduled: at(scheduled),
        started: Some(at(scheduled) + TimeDelta::seconds(2)),
        ended: None,
        status,
        reason: None,
        targets: Vec::new(),
        measurements: Measurements::default(),
        evidence: serde_json::json!({}),
    }
}

async fn exercise(url: StoreUrl) {
    let store = Store::open(&url, "default")
        .await
        .expect("open and migrate");
    assert_eq!(store.migrations().await.unwrap(), [1, 2, 3, 4]);
    // Migrating again, and opening again, changes nothing.
    store.migrate().await.expect("migrate twice");
    let again = Store::open(&url, "default").await.expect("reopen");
    assert_eq!(again.migrations().await.unwrap(), [1, 2, 3, 4]);
    again.close().await;

    let mut first = run(
        "probe-a-1",
        "probe-a",
        "2027-01-15T15:00:00Z",
        RunStatus::Running,
    );
    store.record_run(&first).await.unwrap();
    first.status = RunStatus::Passed;
    first.ended = Some(at("2027-01-15T15:05:00Z"));
    first.reason = Some("availability 99.9% >= 99.5%".into());
    first.measurements = Measurements {
        availability: Some(0.999),
        latency_p95_seconds: Some(0.120),
        requests: Some(300),
        ..Measurements::default()
    };
    first.targets = vec![firedrill::store::Hit {
        namespace: "pake-api".into(),
        name: "api-1".into(),
        owner: None,
    }];
    first.evidence = serde_json::json!({"preflight": [{"check": "http", "passed": true}]});
    store.record_run(&first).await.unwrap();
    store
        .record_run(&run(
            "probe-b-1",
            "probe-b",
            "2027-02-15T15:00:00Z",
            RunStatus::Failed,
        ))
        .await
        .unwrap();
    store
        .record_run(&run(
            "probe-a-0",
            "probe-a",
            "2026-12-15T15:00:00Z",
            RunStatus::Missed,
        ))
        .await
        .unwrap();

    assert_eq!(store.run("probe-a-1").await.unwrap(), Some(first.clone()));
    // A record never changes its drill, kind or scheduled instant: the same id for another run
    // is refused (and not retried), and the first record stays whole.
    for other in [
        run(
            "probe-a-1",
            "probe-b",
            "2027-01-15T15:00:00Z",
            RunStatus::Failed,
        ),
        run(
            "probe-a-1",
            "probe-a",
            "2027-01-15T15:00:01Z",
            RunStatus::Failed,
        ),
        RunRecord {
            kind: "pod-kill".into(),
            ..run(
                "probe-a-1",
                "probe-a",
                "2027-01-15T15:00:00Z",
                RunStatus::Failed,
            )
        },
    ] {
        let err = store.record_run_with_retry(&other).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("run probe-a-1 is already recorded for drill probe-a (probe, scheduled 2027-01-15T15:00:00.000Z)"),
            "{err}"
        );
    }
    assert_eq!(store.run("probe-a-1").await.unwrap(), Some(first.clone()));
    // What cooldown reads: the workloads runs acted on (a dry run acts on nothing).
    let mut dry = run(
        "probe-a-dry",
        "probe-a",
        "2027-01-15T16:00:00Z",
        RunStatus::DryRun,
    );
    dry.targets = serde_json::from_value(
        serde_json::json!([{"namespace": "pake-api", "name": "api-2", "owner": "Deployment/api"}]),
    )
    .unwrap();
    store.record_run(&dry).await.unwrap();
    let mut hit = run("kill-1", "kill", "2027-01-15T17:00:00Z", RunStatus::Passed);
    hit.targets = serde_json::from_value(
        serde_json::json!([{"namespace": "pake-api", "name": "api-1", "owner": "Deployment/api"}]),
    )
    .unwrap();
    store.record_run(&hit).await.unwrap();
    let hits = store.recent_hits(at("2027-01-15T00:00:00Z")).await.unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let (owner, when) = hits.iter().next().unwrap();
    assert_eq!(owner.to_string(), "Deployment/pake-api/api");
    assert_eq!(*when, at("2027-01-15T17:00:02Z").timestamp());
    assert_eq!(store.run("nope").await.unwrap(), None);
    let all: Vec<String> = store
        .runs(None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        all,
        [
            "probe-b-1",
            "kill-1",
            "probe-a-dry",
            "probe-a-1",
            "probe-a-0"
        ]
    );
    let a: Vec<String> = store
        .runs(Some("probe-a"), None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(a, ["probe-a-dry", "probe-a-1", "probe-a-0"]);
    let recent = store
        .runs(None, Some(at("2027-01-01T00:00:00Z")))
        .await
        .unwrap();
    assert_eq!(recent.len(), 4);

    let fire = FireRecord {
        drill: "probe-a".into(),
        scheduled: at("2027-01-15T15:00:00Z"),
        status: "fired".into(),
        reason: None,
        run: Some("probe-a-1".into()),
    };
    store.record_fire(&fire).await.unwrap();
    store.record_fire(&fire).await.unwrap();
    assert_eq!(store.state("handled_until").await.unwrap(), None);
    store
        .set_state("handled_until", "2027-01-15T15:00:00Z")
        .await
        .unwrap();
    store
        .set_state("handled_until", "2027-01-15T16:00:00Z")
        .await
        .unwrap();
    assert_eq!(
        store.state("handled_until").await.unwrap().as_deref(),
        Some("2027-01-15T16:00:00Z")
    );
    assert_eq!(
        store.fire("probe-a", fire.scheduled).await.unwrap(),
        Some(fire.clone())
    );
    assert_eq!(
        store.last_success("probe-a").await.unwrap(),
        Some(at("2027-01-15T15:05:00Z"))
    );
    assert_eq!(store.last_success("probe-b").await.unwrap(), None);

    // The fleet: a second cluster in the same store has runs under the same ids, fires, state
    // and cooldowns of its own, and sees none of the first cluster's.
    let us = Store::open(&url, "us-1")
        .await
        .expect("open for another cluster");
    assert_eq!(us.run("probe-a-1").await.unwrap(), None);
    assert!(us
        .recent_hits(at("2027-01-01T00:00:00Z"))
        .await
        .unwrap()
        .is_empty());
    let mut theirs = run(
        "probe-a-1",
        "probe-a",
        "2027-03-15T15:00:00Z",
        RunStatus::Failed,
    );
    theirs.cluster = "us-1".into();
    theirs.targets = hit.targets.clone();
    us.record_run(&theirs).await.unwrap();
    assert_eq!(us.run("probe-a-1").await.unwrap(), Some(theirs.clone()));
    assert_eq!(store.run("probe-a-1").await.unwrap(), Some(first.clone()));
    assert_eq!(us.runs(None, None).await.unwrap(), [theirs]);
    assert_eq!(us.last_success("probe-a").await.unwrap(), None);
    assert_eq!(
        us.recent_hits(at("2027-01-01T00:00:00Z"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .recent_hits(at("2027-01-01T00:00:00Z"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(us.fire("probe-a", fire.scheduled).await.unwrap(), None);
    assert_eq!(us.state("handled_until").await.unwrap(), None);
    us.set_state("handled_until", "2027-03-01T00:00:00Z")
        .await
        .unwrap();
    assert_eq!(
        store.state("handled_until").await.unwrap().as_deref(),
        Some("2027-01-15T16:00:00Z")
    );
    us.close().await;
    store.close().await;
}

/// A history written before the fleet (migrations 1 and 2 only) keeps every row, under the
/// name of the cluster whose drill file opens it first.
#[tokio::test]
async fn a_history_from_before_the_fleet_moves_to_the_cluster_that_opens_it() {
    let dir = std::env::temp_dir().join(unique("firedrill-v2"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("old.db");
    sqlx::any::install_default_drivers();
    {
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        // The schema exactly as migrations 1 and 2 shipped it, and one row in each table.
        for statement in [
            "CREATE TABLE firedrill_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
            "INSERT INTO firedrill_migrations VALUES (1, 'runs and fires', '2026-11-01T00:00:00.000Z'), (2, 'scheduler state', '2026-11-01T00:00:00.000Z')",
            "CREATE TABLE runs (id TEXT PRIMARY KEY, drill TEXT NOT NULL, kind TEXT NOT NULL, scheduled TEXT NOT NULL, started TEXT, ended TEXT, status TEXT NOT NULL, reason TEXT, targets TEXT NOT NULL, measurements TEXT NOT NULL, evidence TEXT NOT NULL, recorded_at TEXT NOT NULL)",
            "CREATE INDEX runs_by_drill ON runs (drill, scheduled)",
            "CREATE INDEX runs_by_scheduled ON runs (scheduled)",
            "CREATE TABLE fires (drill TEXT NOT NULL, scheduled TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, run TEXT, recorded_at TEXT NOT NULL, PRIMARY KEY (drill, scheduled))",
            "CREATE TABLE scheduler_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "INSERT INTO runs VALUES ('probe-a-1', 'probe-a', 'probe', '2026-10-15T15:00:00.000Z', NULL, '2026-10-15T15:05:00.000Z', 'passed', NULL, '[]', '{}', '{}', '2026-10-15T15:05:00.000Z')",
            r#"INSERT INTO runs VALUES ('kill-b-1', 'kill-b', 'pod-kill', '2026-10-16T15:00:00.000Z', NULL, '2026-10-16T15:05:00.000Z', 'error', 'REVERT FAILED', '[]', '{}', '{"injected":{"changed":["x"]},"revert_error":"forbidden"}', '2026-10-16T15:05:00.000Z')"#,
            "INSERT INTO fires VALUES ('probe-a', '2026-10-15T15:00:00.000Z', 'fired', NULL, 'probe-a-1', '2026-10-15T15:00:00.000Z')",
            "INSERT INTO scheduler_state VALUES ('handled_until', '2026-10-15T15:00:00Z')",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut c).await.unwrap();
        }
        c.close().await.unwrap();
    }
    let store = Store::open(&StoreUrl::Sqlite(path.display().to_string()), "us-east")
        .await
        .expect("migrates to the fleet schema");
    assert_eq!(store.migrations().await.unwrap(), [1, 2, 3, 4]);
    let old = store
        .run("probe-a-1")
        .await
        .unwrap()
        .expect("the old run is kept");
    assert_eq!(
        (old.cluster.as_str(), old.status),
        ("us-east", RunStatus::Passed)
    );
    assert_eq!(
        store.clusters_and_drills().await.unwrap(),
        [
            firedrill::store::Recorded {
                cluster: "us-east".into(),
                drill: "kill-b".into(),
                first_fire: None,
            },
            firedrill::store::Recorded {
                cluster: "us-east".into(),
                drill: "probe-a".into(),
                first_fire: Some(at("2026-10-15T15:00:00Z")),
            }
        ]
    );
    assert_eq!(
        store.open_rollbacks().await.unwrap(),
        ["kill-b-1"],
        "migration 4 finds the failed reverts already recorded"
    );
    assert!(store
        .fire("probe-a", at("2026-10-15T15:00:00Z"))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.state("handled_until").await.unwrap().as_deref(),
        Some("2026-10-15T15:00:00Z")
    );
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn sqlite_store() {
    let dir = std::env::temp_dir().join(unique("firedrill-store"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.db");
    exercise(StoreUrl::Sqlite(path.display().to_string())).await;
    assert!(path.exists(), "the SQLite file is created on first open");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn postgres_store() {
    let Some(admin) = service("FIREDRILL_TEST_POSTGRES") else {
        return;
    };
    // An isolated database per test, as #[sqlx::test] does.
    let name = unique("fd").to_lowercase();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(admin.as_str())
        .await
        .expect("connect to PostgreSQL");
    // The name is ours (letters, digits and underscores), not user input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("create database");
    let mut url = admin.clone();
    url.set_path(&format!("/{name}"));
    exercise(StoreUrl::Postgres(url.to_string())).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&pool)
        .await
        .ok();
}

#[tokio::test]
async fn an_unreachable_store_says_where() {
    let err = match Store::open(
        &StoreUrl::Postgres("postgres://firedrill:secret@127.0.0.1:1/none".into()),
        "default",
    )
    .await
    {
        Ok(_) => panic!("nothing listens on port 1"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with("cannot open the store postgres://firedrill:***@127.0.0.1:1/none"),
        "{err}"
    );
}

#[tokio::test]
async fn a_record_whose_id_names_another_run_is_kept_aside_never_merged() {
    use firedrill::executor::{keep, Kept, Sinks};
    use firedrill::pushgateway::Retry;
    use firedrill::store::Spool;
    let dir = std::env::temp_dir().join(unique("firedrill-keep"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(
        &StoreUrl::Sqlite(dir.join("h.db").display().to_string()),
        "default",
    )
    .await
    .unwrap();
    let spool = Spool::new(dir.join("firedrill-spool"));
    let endpoints = firedrill::gate::Endpoints::new(None, None);
    let client = endpoints.client().clone();
    let sinks = Sinks {
        store: Some(&store),
        kube: None,
        spool: Some(&spool),
        pushgateway: None,
        client: &client,
        push_retry: Retry::BOUNDED,
    };
    let (signal, stop) = tokio::sync::watch::channel(false);
    let first = run(
        "same-id",
        "drill-a",
        "2027-01-15T15:00:00Z",
        RunStatus::Passed,
    );
    assert_eq!(keep(&first, &sinks, &stop).await, Kept::Store);
    let other = run(
        "same-id",
        "drill-b",
        "2027-01-15T15:00:00Z",
        RunStatus::Failed,
    );
    let Kept::Conflict(path) = keep(&other, &sinks, &stop).await else {
        panic!("a conflicting record must be kept aside");
    };
    assert!(
        path.display()
            .to_string()
            .ends_with("same-id.conflict.json"),
        "{}",
        path.display()
    );
    assert_eq!(
        spool.replay(&store).await,
        0,
        "a conflict is never replayed"
    );
    assert!(path.exists());
    assert_eq!(
        store.run("same-id").await.unwrap().unwrap().drill,
        "drill-a"
    );

    // Stopping (a first SIGTERM during the drill): the record still goes to a working store.
    signal.send(true).unwrap();
    let aborted = run(
        "stopped-1",
        "drill-a",
        "2027-01-15T16:00:00Z",
        RunStatus::Aborted,
    );
    assert_eq!(keep(&aborted, &sinks, &stop).await, Kept::Store);

    // Two records under one id never overwrite each other in the spool.
    let a = spool
        .write(
            &run("dup-1", "x", "2027-01-15T15:00:00Z", RunStatus::Passed),
            false,
        )
        .unwrap();
    let b = spool
        .write(
            &run("dup-1", "y", "2027-01-15T15:00:00Z", RunStatus::Failed),
            false,
        )
        .unwrap();
    assert_ne!(a, b);
    assert!(a.exists() && b.exists());
    let _ = std::fs::remove_dir_all(dir);
}
