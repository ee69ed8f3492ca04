//! The run history on SQLite and on a real PostgreSQL: migrations from empty and twice, runs and
//! fires written, replaced and read back.

mod support;

use chrono::{DateTime, TimeDelta, Utc};
use firedrill::config::Store as StoreUrl;
use firedrill::history::store::{FireRecord, Measurements, RunRecord, RunStatus, Store};
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
        evidence: Box::new(firedrill::run::Evidence::new()),
    }
}

async fn exercise(url: StoreUrl) {
    let store = Store::open(&url, "default")
        .await
        .expect("open and migrate");
    assert_eq!(store.migrations().await.unwrap(), [1, 2, 3, 4, 5]);
    // Migrating again, and opening again, changes nothing.
    store.migrate().await.expect("migrate twice");
    let again = Store::open(&url, "default").await.expect("reopen");
    assert_eq!(again.migrations().await.unwrap(), [1, 2, 3, 4, 5]);
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
    first.targets = vec![firedrill::history::store::Hit {
        namespace: "pake-api".into(),
        name: "api-1".into(),
        owner: None,
    }];
    *first.evidence = firedrill::run::Evidence::from_value(
        &serde_json::json!({"preflight": [{"check": "http", "passed": true}]}),
    );
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
    assert_eq!(store.migrations().await.unwrap(), [1, 2, 3, 4, 5]);
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
            firedrill::history::store::Recorded {
                cluster: "us-east".into(),
                drill: "kill-b".into(),
                first_fire: None,
            },
            firedrill::history::store::Recorded {
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
    use firedrill::drill::executor::{keep, Kept, Sinks};
    use firedrill::history::pushgateway::Retry;
    use firedrill::history::store::Spool;
    let dir = std::env::temp_dir().join(unique("firedrill-keep"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(
        &StoreUrl::Sqlite(dir.join("h.db").display().to_string()),
        "default",
    )
    .await
    .unwrap();
    let spool = Spool::new(dir.join("firedrill-spool"));
    let endpoints = firedrill::drill::gate::Endpoints::new(None, None);
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

/// `firedrill COMMAND` on the example drill file with `store` (FIREDRILL_STORE): its exit code
/// and standard error. A command still running after 30 s is killed and fails the test (a
/// FIFO once hung `report` for ever).
fn firedrill_on(store: &str, command: &[&str]) -> (i32, String) {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = std::env::temp_dir().join(unique("firedrill-data"));
    let out = support::output_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .args(command)
            .args(["--config", "deploy/examples/firedrill.yaml"])
            .env("FIREDRILL_STORE", store)
            .env("FIREDRILL_DATA_DIR", &data)
            .env("FIREDRILL_LOG_LEVEL", "warn")
            .current_dir(workspace),
        std::time::Duration::from_secs(30),
        &format!("`firedrill {command:?}` on {store}"),
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A SQLite file made by another program: one table `x`, one row.
fn someone_elses(path: &std::path::Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("CREATE TABLE x (a TEXT); INSERT INTO x VALUES ('theirs');")
        .unwrap();
}

/// `history` and `report` read: a file that is not a firedrill history (someone else's
/// database, an empty file, text) is refused with its name, exit 4, and left byte for byte as
/// it was. (`history` used to migrate it into a firedrill history.)
#[test]
fn reading_commands_refuse_what_is_not_a_firedrill_history_and_write_nothing() {
    let dir = std::env::temp_dir().join(unique("firedrill-foreign"));
    std::fs::create_dir_all(&dir).unwrap();
    let foreign = dir.join("theirs.db");
    someone_elses(&foreign);
    let empty = dir.join("empty.db");
    std::fs::write(&empty, "").unwrap();
    let text = dir.join("notes.db");
    std::fs::write(
        &text,
        "not a database, only text long enough to fill a header",
    )
    .unwrap();
    for (file, why) in [
        (&foreign, "it holds the table x, and none of firedrill's"),
        (&empty, "it holds no tables"),
        (&text, "not a SQLite database"),
    ] {
        let before = std::fs::read(file).unwrap();
        for command in [&["history"][..], &["report"], &["history", "--drill", "x"]] {
            let (code, err) = firedrill_on(&format!("sqlite://{}", file.display()), command);
            assert_eq!(code, 4, "{command:?} {}: {err}", file.display());
            assert!(
                err.contains(&format!(
                    "sqlite://{} is not a firedrill run history ({why}",
                    file.display()
                )),
                "{command:?}: {err}"
            );
            assert_eq!(
                std::fs::read(file).unwrap(),
                before,
                "{command:?} changed {}",
                file.display()
            );
        }
    }
    // A writer (the scheduler, `execute`) leaves someone else's SQLite file alone too.
    let before = std::fs::read(&foreign).unwrap();
    let url = StoreUrl::Sqlite(foreign.display().to_string());
    let refused = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(Store::open(&url, "default"));
    let err = refused.err().expect("someone else's database is refused");
    assert!(
        err.to_string().contains("is not a firedrill run history"),
        "{err}"
    );
    assert_eq!(std::fs::read(&foreign).unwrap(), before);
    std::fs::remove_dir_all(&dir).ok();
}

/// A history at an older schema is not migrated by a reading command; the message names what
/// migrates it: its writer, the scheduler or `execute` of this version.
#[test]
fn an_older_history_is_left_to_its_writer_to_migrate() {
    let dir = std::env::temp_dir().join(unique("firedrill-older"));
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join("old.db");
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch(
            "CREATE TABLE firedrill_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
             INSERT INTO firedrill_migrations VALUES (1, 'runs and fires', '2026-11-01T00:00:00.000Z'), (2, 'scheduler state', '2026-11-01T00:00:00.000Z');",
        )
        .unwrap();
    let before = std::fs::read(&old).unwrap();
    for command in ["history", "report"] {
        let (code, err) = firedrill_on(&format!("sqlite://{}", old.display()), &[command]);
        assert_eq!(code, 4, "{command}: {err}");
        assert!(
            err.contains("is at schema version 2, this firedrill reads version 5")
                && err.contains("`firedrill scheduler`")
                && err.contains("`firedrill execute`")
                && !err.contains("`firedrill history`"),
            "{command}: {err}"
        );
        assert_eq!(std::fs::read(&old).unwrap(), before, "{command} wrote");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// SQLite would wait on a FIFO for ever: a store path that is not a regular file is refused
/// before it is opened, by the readers (exit 4) and the writers alike.
#[test]
fn a_store_that_is_not_a_regular_file_is_refused_up_front() {
    let dir = std::env::temp_dir().join(unique("firedrill-fifo"));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("history.db");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for (path, what) in [(fifo.clone(), "a FIFO"), (dir.clone(), "a directory")] {
        for command in ["history", "report"] {
            let (code, err) = firedrill_on(&format!("sqlite://{}", path.display()), &[command]);
            assert_eq!(code, 4, "{command} {what}: {err}");
            assert!(
                err.contains(&format!(
                    "{} is not a regular file ({what})",
                    path.display()
                )),
                "{command}: {err}"
            );
        }
    }
    let url = StoreUrl::Sqlite(fifo.display().to_string());
    let opened = tokio::runtime::Runtime::new().unwrap().block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            Store::open(&url, "default"),
        )
        .await
    });
    let Ok(Err(e)) = opened else {
        panic!("a writer must refuse a FIFO at once");
    };
    assert!(e.to_string().contains("(a FIFO)"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `history --drill` with a drill neither the drill file nor the history knows is a typo: exit 2,
/// with the drills known (as `report` does), instead of an empty table.
#[tokio::test]
async fn history_of_an_unknown_drill_is_a_usage_error_naming_the_known_ones() {
    let dir = std::env::temp_dir().join(unique("firedrill-drills"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h.db");
    let url = StoreUrl::Sqlite(path.display().to_string());
    let store = Store::open(&url, "us-east").await.unwrap();
    // A drill since removed from the drill file: its history is still there to read.
    let mut retired = run(
        "retired-1",
        "retired-drill",
        "2027-01-15T15:00:00Z",
        RunStatus::Passed,
    );
    retired.cluster = "us-east".into();
    store.record_run(&retired).await.unwrap();
    store.close().await;
    let store = format!("sqlite://{}", path.display());
    let (code, err) = tokio::task::spawn_blocking({
        let store = store.clone();
        move || firedrill_on(&store, &["history", "--drill", "nope"])
    })
    .await
    .unwrap();
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no drill \"nope\" in the drill file or the history (drills known: ")
            && err.contains("pod-kill-monthly")
            && err.contains("retired-drill"),
        "{err}"
    );
    let (code, err) = tokio::task::spawn_blocking(move || {
        firedrill_on(&store, &["history", "--drill", "retired-drill"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "a drill the history knows is read: {err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A PostgreSQL database without firedrill's tables (empty, or another program's) gets none from
/// `history` or `report`: refused, named, exit 4, and its tables are as they were.
#[tokio::test]
async fn postgres_without_firedrill_tables_gets_none_from_a_reading_command() {
    let Some(admin) = service("FIREDRILL_TEST_POSTGRES") else {
        return;
    };
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(admin.as_str())
        .await
        .expect("connect to PostgreSQL");
    let tables = |url: String| async move {
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
        names
    };
    for theirs in [None, Some("CREATE TABLE x (a TEXT)")] {
        // An isolated database per case, as #[sqlx::test] does; the name is ours, not input.
        let name = unique("fd").to_lowercase();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .expect("create database");
        let mut url = admin.clone();
        url.set_path(&format!("/{name}"));
        if let Some(statement) = theirs {
            use sqlx::Connection;
            let mut c = sqlx::AnyConnection::connect(url.as_str()).await.unwrap();
            sqlx::query(statement).execute(&mut c).await.unwrap();
            c.close().await.unwrap();
        }
        let before = tables(url.to_string()).await;
        for command in ["history", "report"] {
            let store = url.to_string();
            let (code, err) = tokio::task::spawn_blocking(move || firedrill_on(&store, &[command]))
                .await
                .unwrap();
            assert_eq!(code, 4, "{command} {theirs:?}: {err}");
            assert!(
                err.contains(&format!("/{name} is not a firedrill run history")),
                "{command}: {err}"
            );
            assert_eq!(
                tables(url.to_string()).await,
                before,
                "{command} created tables"
            );
        }
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
            .execute(&pool)
            .await
            .ok();
    }
}

/// The history `tests/fixtures/history-v4.sql` holds, loaded into `url` as the release that
/// wrote it left it (schema version 4, its rows as that release's store wrote them).
async fn load_history_v4(url: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let dump = include_str!("fixtures/history-v4.sql");
    let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
    for line in dump
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
    {
        let statement = line.strip_suffix(';').unwrap_or(line).to_owned();
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    c.close().await.unwrap();
}

/// `firedrill report` of 2027 on the example drill file, in `format`, from `store`, its
/// `generated` instant and the store's address (a temporary file) blanked.
fn report_of(store: &str, format: &str) -> String {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(unique("firedrill-report"));
    let run = support::output_within(
        std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .args(["report", "--config", "deploy/examples/firedrill.yaml"])
            .args([
                "--since",
                "2027-01-01T00:00:00Z",
                "--until",
                "2028-01-01T00:00:00Z",
            ])
            .args(["--format", format, "--output"])
            .arg(&out)
            .env("FIREDRILL_STORE", store)
            .env("FIREDRILL_LOG_LEVEL", "warn")
            .current_dir(workspace),
        std::time::Duration::from_secs(60),
        "firedrill report",
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).ok();
    text.split('\n')
        .map(|l| {
            if l.starts_with("- Generated: ") {
                "- Generated: <generated>".to_owned()
            } else if l.starts_with("  \"generated\": ") {
                "  \"generated\": \"<generated>\",".to_owned()
            } else if l.starts_with("- Run history: ") {
                "- Run history: `<store>`".to_owned()
            } else if l.starts_with("  \"store\": ") {
                "  \"store\": \"<store>\",".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A history the previous release wrote (schema 4, untyped evidence: failed reverts found by
/// their text, a failed injection's `revert`, rollbacks closed later, a dry run, a region
/// failover) is migrated by this release's writer and reports exactly as that release reported
/// it (`history-v4.report.*` is its output with two additions: the adherence table's
/// `provenance` column, which that release did not have, and the adherence note's mention of
/// fires vetoed with `firedrill skip`; without them the bytes are the release's).
async fn a_history_written_by_the_previous_release(url: &str) {
    load_history_v4(url).await;
    let store_url = if url.starts_with("sqlite:") {
        StoreUrl::Sqlite(
            url.trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap()
                .to_owned(),
        )
    } else {
        StoreUrl::Postgres(url.to_owned())
    };
    let store = Store::open(&store_url, "us-east").await.expect("migrates");
    assert_eq!(store.migrations().await.unwrap(), [1, 2, 3, 4, 5]);
    {
        // The migration marks the failed reverts in their column; the oracle is the text the
        // release wrote for one (what migration 4 searched for).
        use sqlx::{Connection, Row};
        let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
        let rows = sqlx::query("SELECT cluster, id, evidence, rollback_failed FROM runs")
            .fetch_all(&mut c)
            .await
            .unwrap();
        let (mut marked, mut oracle) = (Vec::new(), Vec::new());
        for row in &rows {
            let run = format!("{}/{}", row.get::<String, _>(0), row.get::<String, _>(1));
            let evidence: String = row.get(2);
            if evidence.contains(r#""revert_error":"#)
                || evidence.contains(r#""revert":"REVERT FAILED"#)
            {
                oracle.push(run.clone());
            }
            if row.get::<i64, _>(3) == 1 {
                marked.push(run);
            }
        }
        marked.sort();
        oracle.sort();
        assert!(oracle.len() >= 3, "{oracle:?}");
        assert_eq!(marked, oracle);
        c.close().await.unwrap();
    }
    assert_eq!(
        store.open_rollbacks().await.unwrap(),
        ["pod-kill-monthly-hand-2"],
        "the failed revert still open, as the release left it (the others were found closed)"
    );
    let failed = store
        .run("pod-kill-monthly-hand-2")
        .await
        .unwrap()
        .expect("an old record reads");
    assert!(
        failed.rollback_failed(),
        "`REVERT FAILED: …` of the old shape is a failed revert"
    );
    let left = store
        .run("network-partition-quarterly-hand-3")
        .await
        .unwrap()
        .unwrap();
    assert!(!left.rollback_failed());
    store.close().await;
    let store = match &store_url {
        StoreUrl::Sqlite(path) => format!("sqlite://{path}"),
        StoreUrl::Postgres(url) => url.clone(),
    };
    assert_eq!(
        report_of(&store, "md"),
        include_str!("fixtures/history-v4.report.md")
    );
    assert_eq!(
        report_of(&store, "json"),
        include_str!("fixtures/history-v4.report.json")
    );
}

#[tokio::test]
async fn a_sqlite_history_written_by_the_previous_release_reads_and_reports_the_same() {
    let dir = std::env::temp_dir().join(unique("firedrill-v4"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.db");
    a_history_written_by_the_previous_release(&format!("sqlite://{}?mode=rwc", path.display()))
        .await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_postgres_history_written_by_the_previous_release_reads_and_reports_the_same() {
    let Some(admin) = service("FIREDRILL_TEST_POSTGRES") else {
        return;
    };
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
    a_history_written_by_the_previous_release(url.as_str()).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
        .execute(&pool)
        .await
        .ok();
}

/// A failed revert is a column of its run, written with the record and rewritten with it.
#[tokio::test]
async fn a_failed_revert_is_a_column_of_its_run() {
    use firedrill::run::{Revert, RevertWhen};
    use sqlx::Connection;
    let dir = std::env::temp_dir().join(unique("firedrill-column"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.db");
    let store = Store::open(&StoreUrl::Sqlite(path.display().to_string()), "default")
        .await
        .unwrap();
    let column = || async {
        let mut c = sqlx::AnyConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let v: i64 = sqlx::query_scalar("SELECT rollback_failed FROM runs WHERE id = 'k-1'")
            .fetch_one(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        v
    };
    let mut r = run("k-1", "k", "2027-01-01T00:00:00Z", RunStatus::Error);
    r.evidence.revert = Revert::Failed {
        when: RevertWhen::AfterAFailedInjection,
        error: "forbidden".into(),
    };
    store.record_run(&r).await.unwrap();
    assert_eq!(column().await, 1);
    assert_eq!(store.open_rollbacks().await.unwrap(), ["k-1"]);
    let back = store.run("k-1").await.unwrap().unwrap();
    assert_eq!(
        back.evidence, r.evidence,
        "the evidence reads back as written"
    );
    r.evidence.revert = Revert::Left {
        when: RevertWhen::AfterTheRun,
        lines: vec!["l step-0001: LEFT (changed since): x".into()],
    };
    store.record_run(&r).await.unwrap();
    assert_eq!(column().await, 0);
    store.close().await;
    std::fs::remove_dir_all(&dir).ok();
}
