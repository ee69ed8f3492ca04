//! `firedrill report` over a seeded year of runs on three clusters, in SQLite and in a real
//! PostgreSQL: the same report from both, pinned in all four formats, its programme adherence
//! checked against the calendar `firedrill plan` prints for the same drill file, and bad input
//! answered with a clear message and the right exit code.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use chrono::{DateTime, Utc};
use firedrill::config::{Config, Store as StoreUrl};
use firedrill::history::report::{self, Format, Query, Report};
use firedrill::history::store::Store;
use support::history::{seed, Seeded};
use support::{service, unique};

/// The example drill file is `us-east`'s; the same programme runs on two more clusters.
const CLUSTERS: [&str; 3] = ["us-east", "eu-west", "ap-south"];

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn example() -> Config {
    let mut config = Config::load(&workspace().join("deploy/examples/firedrill.yaml")).unwrap();
    // As a user names it, so the pinned report does not carry this checkout's path.
    config.source = PathBuf::from("deploy/examples/firedrill.yaml");
    config
}

fn year() -> Query {
    Query {
        since: at("2027-01-01T00:00:00Z"),
        until: at("2028-01-01T00:00:00Z"),
        cluster: None,
        drill: None,
    }
}

/// Seeds the store at `url` for the three clusters and makes the year's report from it.
async fn seeded_report(url: &StoreUrl) -> (Report, Seeded) {
    let config = example();
    let q = year();
    let mut stores = Vec::new();
    for c in CLUSTERS {
        stores.push(Store::open(url, c).await.expect("open"));
    }
    let seeded = seed(&config, &CLUSTERS, q.since, q.until, &stores).await;
    let store = &stores[0];
    let report = report::build(
        report::Inputs {
            config: &config,
            store: "the seeded history".into(),
            runs: store
                .runs_between(q.since, q.until, None, None)
                .await
                .unwrap(),
            fires: store
                .fires_between(q.since, q.until, None, None)
                .await
                .unwrap(),
            known: store.clusters_and_drills().await.unwrap(),
            generated: at("2028-01-02T00:00:00Z"),
        },
        &q,
    )
    .unwrap();
    for s in stores {
        s.close().await;
    }
    (report, seeded)
}

fn sqlite_url() -> (StoreUrl, PathBuf) {
    let dir = std::env::temp_dir().join(unique("firedrill-report"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("history.db");
    (StoreUrl::Sqlite(path.display().to_string()), path)
}

async fn postgres_url() -> Option<StoreUrl> {
    let admin = service("FIREDRILL_TEST_POSTGRES")?;
    let name = unique("fdreport").to_lowercase();
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(admin.as_str()).await.unwrap();
    // The name is ours (letters, digits and underscores), not user input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    let mut url = admin.clone();
    url.set_path(&format!("/{name}"));
    Some(StoreUrl::Postgres(url.to_string()))
}

#[tokio::test]
async fn a_seeded_year_on_three_clusters_reports_the_same_from_sqlite_and_postgres() {
    let (sqlite, path) = sqlite_url();
    let (report, seeded) = seeded_report(&sqlite).await;

    // What the seeder decided is what the report counts.
    let s = &report.summary;
    assert_eq!(
        (s.planned, s.passed, s.failed, s.aborted, s.error, s.blocked),
        (
            seeded.planned,
            seeded.passed,
            seeded.failed,
            seeded.aborted,
            seeded.error,
            seeded.blocked
        )
    );
    assert_eq!(
        (s.skipped, s.missed, s.unaccounted, s.unplanned_runs),
        (
            seeded.skipped,
            seeded.missed,
            seeded.unaccounted,
            seeded.manual
        )
    );
    assert!(
        seeded.failed > 0 && seeded.unaccounted > 0 && seeded.missed > 0 && seeded.error > 0,
        "the seed exercises every outcome: {seeded:?}"
    );
    // The example's drills defer past blackouts (none skips): 4 fires a year, on each cluster.
    assert_eq!(s.deferred, 12);
    assert_eq!(s.ran, s.passed + s.failed + s.aborted + s.error);
    let due = s.planned - s.skipped - s.pending;
    assert_eq!(
        s.adherence_percent.map(|p| (p * 1000.0).round()),
        Some((f64::from(s.ran) * 100.0 / f64::from(due) * 1000.0).round())
    );
    assert_eq!(report.clusters, ["ap-south", "eu-west", "us-east"]);
    assert_eq!(report.fleet.len(), 3);
    assert_eq!(
        report.fleet.iter().map(|c| c.tally.planned).sum::<u32>(),
        s.planned
    );
    // Every failure is a follow-up; a failed rollback stays open whatever came after.
    let failures = report
        .drills
        .iter()
        .flat_map(|d| &d.runs)
        .filter(|r| matches!(r.status.as_str(), "failed" | "aborted" | "error"))
        .count();
    let from_runs = report
        .follow_ups
        .iter()
        .filter(|f| f.run.is_some() && !f.what.starts_with("rollback failed"))
        .count();
    assert_eq!(from_runs, failures);
    assert_eq!(
        report
            .follow_ups
            .iter()
            .filter(|f| f.what.starts_with("rollback failed") && f.state == "open")
            .count() as u32,
        seeded.error
    );

    for format in [Format::Md, Format::Html, Format::Json, Format::Csv] {
        let text = report::render(&report, format);
        // Long tables are made in parts on two threads: where they are cut changes nothing.
        for rows in [1, 3, 64] {
            assert_eq!(
                report::render_with(&report, format, rows),
                text,
                "{format:?} in parts of {rows} row(s)"
            );
        }
        if format == Format::Json {
            // JSON is laid out part by part as serde_json lays out the whole.
            assert_eq!(text, serde_json::to_string_pretty(&report).unwrap() + "\n");
        }
        let name = format!("{format:?}").to_lowercase();
        insta::assert_snapshot!(format!("report_{name}"), text);
    }

    // The same history in PostgreSQL gives the very same report, in every format.
    if let Some(pg) = postgres_url().await {
        let (from_pg, seeded_pg) = seeded_report(&pg).await;
        assert_eq!(seeded_pg, seeded);
        for format in [Format::Md, Format::Html, Format::Json, Format::Csv] {
            assert_eq!(
                report::render(&from_pg, format),
                report::render(&report, format),
                "{format:?} differs between SQLite and PostgreSQL"
            );
        }
    }
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

/// The report's programme is the calendar `firedrill plan` prints for the same file and period:
/// every planned fire, on every cluster, with the same status.
#[tokio::test]
async fn adherence_follows_the_calendar_plan_prints() {
    let (sqlite, path) = sqlite_url();
    let (report, _) = seeded_report(&sqlite).await;
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args([
            "plan",
            "--config",
            "deploy/examples/firedrill.yaml",
            "--from",
            "2027-01-01T00:00:00Z",
            "--until",
            "2028-01-01T00:00:00Z",
            "--format",
            "json",
        ])
        .current_dir(workspace())
        .output()
        .unwrap();
    assert!(out.status.success());
    let plan: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan.len() > 20, "a year of the example programme");
    for cluster in CLUSTERS {
        let mut planned: Vec<(String, String, String)> = plan
            .iter()
            .map(|f| {
                let scheduled: DateTime<Utc> = f["scheduled"].as_str().unwrap().parse().unwrap();
                (
                    f["drill"].as_str().unwrap().to_owned(),
                    scheduled.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    f["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let mut reported: Vec<(String, String, String)> = report
            .adherence
            .iter()
            .filter(|a| a.cluster == cluster)
            .map(|a| (a.drill.clone(), a.scheduled.clone(), a.planned.clone()))
            .collect();
        planned.sort();
        reported.sort();
        assert_eq!(reported, planned, "{cluster}");
    }
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

/// A cluster is held to the drills its own history shows it runs, from the first record of
/// each; the file's own cluster to every drill in the file. The fleet's worst RTO carries the
/// target that run was judged by, not the newest.
#[tokio::test]
async fn each_cluster_is_held_to_its_own_programme_from_its_first_record() {
    use firedrill::history::store::FireRecord;
    use firedrill::run::{Measurements, RunRecord, RunStatus};
    let (url, path) = sqlite_url();
    let config = example();
    let own = Store::open(&url, "us-east").await.unwrap();
    let other = Store::open(&url, "eu-west").await.unwrap();
    let q = year();
    let calendar = |drill: &str| -> Vec<String> {
        firedrill::schedule::plan(
            &config.planned_drills(),
            config.timezone,
            &config.blackouts,
            config.concurrency as usize,
            q.since,
            q.until,
        )
        .into_iter()
        .filter(|f| config.drills[f.drill].name == drill)
        .map(|f| {
            f.scheduled
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .collect()
    };
    // The calendar's June and July pod kills (10:00 in the file's time zone).
    let kills = calendar("pod-kill-monthly");
    let (june, july) = (kills[5].clone(), kills[6].clone());
    // eu-west's scheduler plans only the monthly pod kill, from June (someone also ran the
    // partition drill there once by hand: that puts it in no programme); us-east's partition
    // drill began in April; us-east never recorded anything of its other drills.
    let run = |cluster: &str, drill: &str, scheduled: &str, rto: f64, target: f64| RunRecord {
        cluster: cluster.to_owned(),
        id: firedrill::cluster::job::run_id(drill, at(scheduled)),
        drill: drill.to_owned(),
        kind: "pod-kill".to_owned(),
        scheduled: at(scheduled),
        started: Some(at(scheduled)),
        ended: Some(at(scheduled) + chrono::TimeDelta::minutes(5)),
        status: RunStatus::Passed,
        reason: None,
        targets: Vec::new(),
        measurements: Measurements {
            rto_seconds: Some(rto),
            ..Measurements::default()
        },
        evidence: Box::new(firedrill::run::Evidence::from_value(
            &serde_json::json!({ "criteria": { "rto_seconds": target } }),
        )),
    };
    for month in [&june, &july] {
        other
            .record_fire(&FireRecord {
                drill: "pod-kill-monthly".to_owned(),
                scheduled: at(month),
                status: "fired".to_owned(),
                reason: None,
                run: None,
            })
            .await
            .unwrap();
    }
    let mut by_hand = run(
        "eu-west",
        "network-partition-quarterly",
        "2027-02-01T12:00:00Z",
        10.0,
        60.0,
    );
    by_hand.id = firedrill::cluster::job::manual_run_id(
        "network-partition-quarterly",
        at("2027-02-01T12:00:00Z"),
    );
    other.record_run(&by_hand).await.unwrap();
    // The longest RTO was judged against 50 s; the newest run's target is 200 s.
    other
        .record_run(&run("eu-west", "pod-kill-monthly", &june, 100.0, 50.0))
        .await
        .unwrap();
    other
        .record_run(&run("eu-west", "pod-kill-monthly", &july, 30.0, 200.0))
        .await
        .unwrap();
    own.record_fire(&FireRecord {
        drill: "network-partition-quarterly".to_owned(),
        scheduled: at("2027-04-08T10:00:00Z"),
        status: "missed".to_owned(),
        reason: Some("the scheduler was down".to_owned()),
        run: None,
    })
    .await
    .unwrap();
    let report_of = |q: Query| {
        let (own, config) = (&own, &config);
        async move {
            let (cluster, drill) = (q.cluster.as_deref(), q.drill.as_deref());
            report::build(
                report::Inputs {
                    config,
                    store: "two clusters".into(),
                    runs: own
                        .runs_between(q.since, q.until, cluster, drill)
                        .await
                        .unwrap(),
                    fires: own
                        .fires_between(q.since, q.until, cluster, drill)
                        .await
                        .unwrap(),
                    known: own.clusters_and_drills().await.unwrap(),
                    generated: at("2028-01-02T00:00:00Z"),
                },
                &q,
            )
        }
    };
    let report = report_of(q.clone()).await.unwrap();
    // A drill not in the cluster's programme, and no run of it in the period: nothing.
    let none = report_of(Query {
        cluster: Some("eu-west".into()),
        drill: Some("resource-stress-quarterly".into()),
        ..q.clone()
    })
    .await;
    assert!(
        matches!(none, Err(report::ReportError::Nothing { .. })),
        "{none:?}"
    );
    // The year read through the table and one month read through the index: the same runs.
    let all = own
        .runs_between(q.since, q.until, None, None)
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let one_month = own
        .runs_between(
            at("2027-06-01T00:00:00Z"),
            at("2027-07-01T00:00:00Z"),
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(one_month.len(), 1);
    assert_eq!(one_month[0].measurements.rto_seconds, Some(100.0));
    own.close().await;
    other.close().await;

    let rows = |cluster: &str, drill: &str| -> Vec<String> {
        report
            .adherence
            .iter()
            .filter(|a| a.cluster == cluster && a.drill == drill)
            .map(|a| a.scheduled.clone())
            .collect()
    };
    // eu-west: only the pod kill, from its first record on.
    assert_eq!(kills.len(), 12);
    let from_june: Vec<String> = kills
        .iter()
        .filter(|t| t.as_str() >= june.as_str())
        .cloned()
        .collect();
    assert_eq!(rows("eu-west", "pod-kill-monthly"), from_june);
    let eu: BTreeSet<String> = report
        .adherence
        .iter()
        .filter(|a| a.cluster == "eu-west")
        .map(|a| a.drill)
        .collect();
    assert_eq!(eu, BTreeSet::from(["pod-kill-monthly".to_owned()]));
    // The run by hand is reported, outside the calendar.
    assert_eq!(
        report
            .drills
            .iter()
            .filter(|d| d.cluster == "eu-west")
            .map(|d| (d.drill.as_str(), d.tally.planned, d.tally.unplanned_runs))
            .collect::<Vec<_>>(),
        [
            ("network-partition-quarterly", 0, 1),
            ("pod-kill-monthly", 7, 0)
        ]
    );
    // us-east: a drill it has no record of is planned the whole period (a gap, in plain
    // sight); one it recorded is planned from its first record.
    assert_eq!(rows("us-east", "pod-kill-monthly"), kills);
    assert!(report
        .adherence
        .iter()
        .filter(|a| a.cluster == "us-east" && a.drill == "pod-kill-monthly")
        .all(|a| a.outcome == "unaccounted" || a.outcome == "skipped"));
    let partitions: Vec<String> = calendar("network-partition-quarterly")
        .into_iter()
        .filter(|t| t.as_str() >= "2027-04-08")
        .collect();
    assert_eq!(partitions.len(), 3);
    assert_eq!(rows("us-east", "network-partition-quarterly"), partitions);

    let eu = report
        .fleet
        .iter()
        .find(|c| c.cluster == "eu-west")
        .unwrap();
    let worst = eu.worst_rto.as_ref().unwrap();
    assert_eq!(
        (worst.drill.as_str(), worst.seconds, worst.target_seconds),
        ("pod-kill-monthly", 100.0, Some(50.0))
    );
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

fn firedrill(store: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["report", "--config", "deploy/examples/firedrill.yaml"])
        .args(args)
        .env("FIREDRILL_STORE", store)
        .env("FIREDRILL_DATA_DIR", std::env::temp_dir())
        .current_dir(workspace())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_command_writes_a_report_and_answers_bad_input_with_its_exit_code() {
    let (sqlite, path) = sqlite_url();
    seeded_report(&sqlite).await;
    let store = format!("sqlite://{}", path.display());
    let period = [
        "--since",
        "2027-01-01T00:00:00Z",
        "--until",
        "2028-01-01T00:00:00Z",
    ];

    let html = path.with_file_name("report.html");
    let (code, _, err) = firedrill(
        &store,
        &[
            &period[..],
            &["--format", "html", "--output", html.to_str().unwrap()],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("written to"), "{err}");
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.starts_with("<!DOCTYPE html>") && text.contains("<svg"));
    // JSON is written as it is made, to a file and to standard output alike, and whole.
    let json = path.with_file_name("report.json");
    let (code, _, err) = firedrill(
        &store,
        &[
            &period[..],
            &["--format", "json", "--output", json.to_str().unwrap()],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = firedrill(&store, &[&period[..], &["--format", "json"]].concat());
    assert_eq!(code, 0, "{err}");
    let written = std::fs::read_to_string(&json).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert!(parsed["drills"].as_array().is_some_and(|d| !d.is_empty()));
    assert!(written.ends_with("}\n"));
    // The two differ only in when they were generated.
    let without_time = |text: &str| {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        v["generated"] = serde_json::Value::Null;
        v
    };
    assert_eq!(without_time(&written), without_time(&out));

    let (code, out, err) = firedrill(
        &store,
        &[
            &period[..],
            &[
                "--cluster",
                "eu-west",
                "--drill",
                "pod-kill-monthly",
                "--format",
                "csv",
            ],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r.starts_with("eu-west,pod-kill-monthly,")),
        "{out}"
    );

    let cases: [(&[&str], i32, &str); 5] = [
        (&["--cluster", "mars-1"], 2, "no cluster \"mars-1\" in the history or the drill file (clusters known: ap-south, eu-west, us-east)"),
        (&["--drill", "nope"], 2, "no drill \"nope\" in the drill file or the history"),
        (&["--since", "2027-06-01T00:00:00Z", "--until", "2027-01-01T00:00:00Z"], 2, "--since 2027-06-01T00:00:00Z is not before --until 2027-01-01T00:00:00Z: the period is empty"),
        (&["--since", "1990-01-01T00:00:00Z", "--until", "1990-01-02T00:00:00Z"], 3, "nothing to report: the drill file plans no fire from 1990-01-01T00:00:00Z to 1990-01-02T00:00:00Z"),
        (&["--since", "yesterday"], 2, "yesterday"),
    ];
    for (args, want, says) in cases {
        let (code, out, err) = firedrill(&store, args);
        assert_eq!(code, want, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: nothing on stdout: {out}");
    }
    // No history where the store says: named, never created.
    let missing = path.with_file_name("nowhere.db");
    let (code, _, err) = firedrill(&format!("sqlite://{}", missing.display()), &period);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("no run history at") && !missing.exists(),
        "{err}"
    );
    // A file that is not a history.
    let junk = path.with_file_name("junk.db");
    std::fs::write(
        &junk,
        "not a database, just text that is long enough to be read as a header",
    )
    .unwrap();
    let (code, _, err) = firedrill(&format!("sqlite://{}", junk.display()), &period);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("error:") && err.contains("junk.db"), "{err}");
    // A history an older firedrill wrote is not migrated by a report (read only): it says so.
    let old = path.with_file_name("old.db");
    {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&format!("sqlite://{}?mode=rwc", old.display()))
            .await
            .unwrap();
        for statement in [
            "CREATE TABLE firedrill_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
            "INSERT INTO firedrill_migrations VALUES (1, 'runs and fires', '2026-11-01T00:00:00.000Z'), (2, 'scheduler state', '2026-11-01T00:00:00.000Z')",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&mut c).await.unwrap();
        }
        c.close().await.unwrap();
    }
    let before = std::fs::read(&old).unwrap();
    let (code, _, err) = firedrill(&format!("sqlite://{}", old.display()), &period);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("is at schema version 2, this firedrill reads version 5"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&old).unwrap(),
        before,
        "the report changed nothing"
    );
    // A report that cannot be written where asked loses nothing and says where.
    let (code, _, err) = firedrill(
        &store,
        &[&period[..], &["--output", "/nonexistent/dir/r.md"]].concat(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("the report was not written (cannot write /nonexistent/dir/r.md"),
        "{err}"
    );
    // --output writes what the path names and nothing else (output.rs has the unit tests).
    use std::os::unix::fs::FileTypeExt;
    let md = [&period[..], &["--format", "md", "--output"]].concat();
    let (code, _, err) = firedrill(&store, &[&md[..], &["/dev/full"]].concat());
    assert_eq!(code, 2, "a full device is a failed write: {err}");
    assert!(
        err.contains("No space left on device") && !err.contains("written to"),
        "{err}"
    );
    assert!(std::fs::metadata("/dev/full")
        .unwrap()
        .file_type()
        .is_char_device());
    let (code, _, err) = firedrill(&store, &[&md[..], &["/dev/null"]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device(),
        "/dev/null was replaced by a regular file"
    );
    let dir = path.parent().unwrap();
    let (code, _, err) = firedrill(&store, &[&md[..], &[dir.to_str().unwrap()]].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is a directory"), "{err}");
    let target = path.with_file_name("target.md");
    std::fs::write(&target, "old").unwrap();
    let link = path.with_file_name("link.md");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (code, _, err) = firedrill(&store, &[&md[..], &[link.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&target).unwrap().starts_with("# "));
    // Standard output that cannot take the report: said, exit 2, no panic.
    let full = Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["report", "--config", "deploy/examples/firedrill.yaml"])
        .args(period)
        .env("FIREDRILL_STORE", &store)
        .current_dir(workspace())
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot write to standard output") && !err.contains("panicked"),
        "{err}"
    );
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

/// The HTML report as a reader gets it: opened in headless Chromium (Debian's), it makes no
/// request but for itself, logs no error, draws its charts, and prints to a PDF of several
/// pages (each main section starts a page). The screenshot and the PDF stay in
/// `target/report/` to look at.
#[tokio::test]
async fn the_html_report_opens_in_chromium_without_requests_or_errors_and_prints_to_pdf() {
    let ready = std::path::Path::new("/usr/bin/chromium").exists()
        && Command::new("python3")
            .args(["-c", "import playwright, pypdf"])
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        support::skip("no /usr/bin/chromium, or python3 lacks playwright or pypdf (scripts/test.sh installs them)");
        return;
    }
    let (sqlite, path) = sqlite_url();
    let (report, _) = seeded_report(&sqlite).await;
    let out = workspace().join("target/report");
    std::fs::create_dir_all(&out).unwrap();
    let html = out.join("report.html");
    std::fs::write(&html, report::render(&report, Format::Html)).unwrap();
    let run = Command::new("python3")
        .arg(workspace().join("scripts/report-browser.py"))
        .arg(&html)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(seen["console"], serde_json::json!([]), "{seen}");
    assert_eq!(seen["page_errors"], serde_json::json!([]), "{seen}");
    let uri = format!("file://{}", html.canonicalize().unwrap().display());
    assert_eq!(
        seen["requests"],
        serde_json::json!([uri]),
        "no request but the page itself"
    );
    // A chart per measured figure per drill and cluster, each point drawn.
    let charts = report
        .drills
        .iter()
        .map(|d| {
            [
                d.runs.iter().any(|r| r.rto_seconds.is_some()),
                d.runs.iter().any(|r| r.rpo_seconds.is_some()),
                d.runs.iter().any(|r| r.availability.is_some()),
            ]
            .into_iter()
            .filter(|x| *x)
            .count()
        })
        .sum::<usize>();
    assert!(charts >= 15, "{charts}");
    assert_eq!(seen["svgs"].as_u64(), Some(charts as u64), "{seen}");
    let points: usize = report
        .drills
        .iter()
        .flat_map(|d| &d.runs)
        .map(|r| {
            usize::from(r.rto_seconds.is_some())
                + usize::from(r.rpo_seconds.is_some())
                + usize::from(r.availability.is_some())
        })
        .sum();
    assert_eq!(seen["chart_points"].as_u64(), Some(points as u64), "{seen}");
    let pages = seen["pdf_pages"].as_u64().unwrap();
    assert!((5..400).contains(&pages), "{pages} pages");
    assert!(std::fs::metadata(out.join("report.png")).unwrap().len() > 10_000);
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
}

/// The report shows of a run's Job and Event only what its record holds. An `execute` without a
/// cluster ran in no Job and left no Event: the report says so, instead of `Job: <run>` and an
/// Event composed from the status; a record that predates them says "not recorded".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_job_and_event_are_reported_as_recorded_never_inferred() {
    let server = support::serve(|_| (200, std::time::Duration::from_millis(5))).await;
    let dir = std::env::temp_dir().join(unique("firedrill-evidence"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("firedrill.yaml");
    std::fs::write(
        &config,
        format!(
            "store: sqlite://h.db\ndrills:\n  - {{ name: api-probe, kind: probe, schedule: \"@daily\", duration: 1s, steady_state: [{{ http: \"{}\", every: 100ms }}] }}\n",
            server.url
        ),
    )
    .unwrap();
    let run = |args: Vec<String>| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_firedrill"))
                .args(&args)
                .arg("--config")
                .arg(&config)
                .current_dir("/")
                .env("KUBECONFIG", "/nonexistent")
                .env_remove("KUBERNETES_SERVICE_HOST")
                .env_remove("FIREDRILL_DATA_DIR")
                .env_remove("FIREDRILL_JOB")
                .env("FIREDRILL_LOG_LEVEL", "warn")
                .output()
                .unwrap()
        })
    };
    let out = run(vec!["execute".into(), "--drill".into(), "api-probe".into()])
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let id = record["id"].as_str().unwrap().to_owned();
    // A record written before the executor kept either (evidence without them).
    let store = Store::open(
        &StoreUrl::Sqlite(dir.join("h.db").display().to_string()),
        "default",
    )
    .await
    .unwrap();
    let mut older: firedrill::history::store::RunRecord =
        serde_json::from_value(record.clone()).unwrap();
    older.id = "api-probe-older".into();
    older.scheduled -= chrono::TimeDelta::hours(1);
    *older.evidence = firedrill::run::Evidence::default();
    store.record_run(&older).await.unwrap();
    store.close().await;

    let out = run(vec![
        "report".into(),
        "--drill".into(),
        "api-probe".into(),
        "--format".into(),
        "md".into(),
    ])
    .await
    .unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A run's evidence: the lines under its name.
    let evidence = |run: &str| -> String {
        let start = md
            .find(&format!("- **{run}**"))
            .unwrap_or_else(|| panic!("no evidence of {run} in {md}"));
        md[start..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("  - "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let ran = evidence(&id);
    assert!(
        ran.contains("- Job: none: the run executed in no Job")
            && ran.contains("- Events: none created: no cluster access"),
        "{ran}"
    );
    let old = evidence("api-probe-older");
    assert!(
        old.contains("- Job: not recorded") && old.contains("- Events: not recorded"),
        "{old}"
    );
    assert!(
        !md.contains(&format!("Job/{id}")) && !md.contains("DrillPassed"),
        "nothing composed from the status: {md}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

// ------------------------------------------------------------- a fire and the run that names it

/// The example's monthly pod kills of 2027 (10:00 on the 15th, New York time).
fn pod_kills() -> Vec<DateTime<Utc>> {
    let config = example();
    let q = year();
    firedrill::schedule::plan(
        &config.planned_drills(),
        config.timezone,
        &config.blackouts,
        config.concurrency as usize,
        q.since,
        q.until,
    )
    .into_iter()
    .filter(|f| config.drills[f.drill].name == "pod-kill-monthly")
    .map(|f| f.scheduled)
    .collect()
}

/// A finished run of `drill` on us-east for `scheduled`, recorded as a Job records it (`job`:
/// the Job it ran in, `null` for none) or, with `job` `None`, as a release that did not keep
/// its Job recorded it.
fn named_run(
    drill: &str,
    id: &str,
    scheduled: DateTime<Utc>,
    status: firedrill::run::RunStatus,
    job: Option<Option<&str>>,
) -> firedrill::history::store::RunRecord {
    let mut evidence = serde_json::json!({});
    if let Some(name) = job {
        evidence["job"] = serde_json::json!({ "name": name });
    }
    firedrill::history::store::RunRecord {
        cluster: "us-east".to_owned(),
        id: id.to_owned(),
        drill: drill.to_owned(),
        kind: "pod-kill".to_owned(),
        scheduled,
        started: Some(scheduled + chrono::TimeDelta::seconds(2)),
        ended: Some(scheduled + chrono::TimeDelta::minutes(5)),
        status,
        reason: (status == firedrill::run::RunStatus::Failed).then(|| "RTO missed".to_owned()),
        targets: Vec::new(),
        measurements: Default::default(),
        evidence: Box::new(firedrill::run::Evidence::from_value(&evidence)),
    }
}

/// The year's report of us-east from a history holding only `runs` and `fires`: in SQLite, and
/// the very same (in every format) from PostgreSQL when there is one.
async fn us_east_year(
    runs: &[firedrill::history::store::RunRecord],
    fires: &[firedrill::history::store::FireRecord],
) -> Report {
    let config = example();
    let q = Query {
        cluster: Some("us-east".into()),
        ..year()
    };
    let report_from = |url: StoreUrl| {
        let (config, q) = (&config, &q);
        async move {
            let store = Store::open(&url, "us-east").await.unwrap();
            for r in runs {
                store.record_run(r).await.unwrap();
            }
            for f in fires {
                store.record_fire(f).await.unwrap();
            }
            let report = report::build(
                report::Inputs {
                    config,
                    store: "a history".into(),
                    runs: store
                        .runs_between(q.since, q.until, Some("us-east"), None)
                        .await
                        .unwrap(),
                    fires: store
                        .fires_between(q.since, q.until, Some("us-east"), None)
                        .await
                        .unwrap(),
                    known: store.clusters_and_drills().await.unwrap(),
                    generated: at("2028-01-02T00:00:00Z"),
                },
                q,
            )
            .unwrap();
            store.close().await;
            report
        }
    };
    let (sqlite, path) = sqlite_url();
    let report = report_from(sqlite).await;
    std::fs::remove_dir_all(path.parent().unwrap()).ok();
    if let Some(pg) = postgres_url().await {
        let from_pg = report_from(pg).await;
        for format in [Format::Md, Format::Html, Format::Json, Format::Csv] {
            assert_eq!(
                report::render(&from_pg, format),
                report::render(&report, format),
                "{format:?} differs between SQLite and PostgreSQL"
            );
        }
    }
    report
}

/// The adherence row of pod-kill-monthly's fire at `scheduled`: (outcome, run, provenance,
/// reason).
fn pod_kill_row(
    report: &Report,
    scheduled: DateTime<Utc>,
) -> (
    String,
    Option<String>,
    Option<report::Provenance>,
    Option<String>,
) {
    let at = scheduled.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let a = report
        .adherence
        .iter()
        .find(|a| a.drill == "pod-kill-monthly" && a.scheduled == at)
        .unwrap_or_else(|| panic!("no adherence row for the fire at {at}"));
    (a.outcome, a.run, a.provenance, a.reason)
}

/// Whether the report lists run `id` outside the calendar.
fn unplanned(report: &Report, id: &str) -> bool {
    let run = report
        .drills
        .iter()
        .flat_map(|d| &d.runs)
        .find(|r| r.run == id)
        .unwrap_or_else(|| panic!("no run {id} in the report"));
    run.unplanned
}

/// The scheduler created the Job and its run recorded, but the scheduler's own fire record is
/// missing (a store hiccup between the two writes): the run accounts for the fire, fired by the
/// scheduler, whether its record says which Job it ran in or predates that. A second run by
/// hand for the same instant does not displace the scheduler's; it stays outside the calendar.
#[tokio::test]
async fn a_fire_without_its_fire_record_is_accounted_for_by_the_run_that_names_it() {
    use firedrill::run::RunStatus;
    let kills = pod_kills();
    let (first, second) = (kills[0], kills[1]);
    let id = |t| firedrill::cluster::job::run_id("pod-kill-monthly", t);
    let again = firedrill::cluster::job::manual_run_id("pod-kill-monthly", first);
    let report = us_east_year(
        &[
            // By hand first in the history's order: the scheduler's run still accounts.
            named_run(
                "pod-kill-monthly",
                &again,
                first,
                RunStatus::Failed,
                Some(None),
            ),
            named_run(
                "pod-kill-monthly",
                &id(first),
                first,
                RunStatus::Passed,
                Some(Some(&id(first))),
            ),
            named_run(
                "pod-kill-monthly",
                &id(second),
                second,
                RunStatus::Passed,
                None,
            ),
        ],
        &[],
    )
    .await;
    for t in [first, second] {
        assert_eq!(
            pod_kill_row(&report, t),
            (
                "passed".to_owned(),
                Some(id(t)),
                Some(report::Provenance::Scheduler),
                None
            ),
            "{t}"
        );
        assert!(!unplanned(&report, &id(t)));
    }
    assert!(unplanned(&report, &again));
    let pod_kill = report
        .drills
        .iter()
        .find(|d| d.drill == "pod-kill-monthly")
        .unwrap();
    assert_eq!(
        (
            pod_kill.tally.planned,
            pod_kill.tally.passed,
            pod_kill.tally.unaccounted,
            pod_kill.tally.unplanned_runs
        ),
        (12, 2, 10, 1)
    );
    let md = report::render(&report, Format::Md);
    assert!(
        md.contains(&format!(
            "| us-east | pod-kill-monthly | {} | fires | passed | {} | scheduler |  |",
            first.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            id(first)
        )),
        "{md}"
    );
}

/// A person ran `firedrill execute --scheduled T` for a planned fire the scheduler never
/// fired (no fire record): with a manual run id, or with the fire's own id outside any Job;
/// and for one the scheduler recorded missed, to make it up. Each run accounts for its fire,
/// shown as run by hand, and is not counted outside the calendar; nor is the scheduler's
/// record of the missed fire.
#[tokio::test]
async fn a_run_by_hand_for_a_planned_instant_accounts_for_that_fire() {
    use firedrill::run::RunStatus;
    let kills = pod_kills();
    let (made_up, first, second) = (kills[2], kills[3], kills[4]);
    let manual = firedrill::cluster::job::manual_run_id("pod-kill-monthly", first);
    let own_id = firedrill::cluster::job::run_id("pod-kill-monthly", second);
    let late = firedrill::cluster::job::manual_run_id("pod-kill-monthly", made_up);
    let missed_id = firedrill::cluster::job::run_id("pod-kill-monthly", made_up);
    // As the scheduler records a fire it could not fire before its deadline.
    let mut missed = named_run(
        "pod-kill-monthly",
        &missed_id,
        made_up,
        RunStatus::Missed,
        Some(None),
    );
    missed.started = None;
    missed.reason = Some("past its deadline".to_owned());
    let report = us_east_year(
        &[
            missed,
            named_run(
                "pod-kill-monthly",
                &late,
                made_up,
                RunStatus::Passed,
                Some(None),
            ),
            named_run(
                "pod-kill-monthly",
                &manual,
                first,
                RunStatus::Failed,
                Some(None),
            ),
            named_run(
                "pod-kill-monthly",
                &own_id,
                second,
                RunStatus::Passed,
                Some(None),
            ),
        ],
        // The scheduler's first record of the drill: it is planned from here on.
        &[firedrill::history::store::FireRecord {
            drill: "pod-kill-monthly".to_owned(),
            scheduled: made_up,
            status: "missed".to_owned(),
            reason: Some("past its deadline".to_owned()),
            run: Some(missed_id.clone()),
        }],
    )
    .await;
    assert_eq!(
        pod_kill_row(&report, made_up),
        (
            "passed".to_owned(),
            Some(late.clone()),
            Some(report::Provenance::ByHand),
            None
        )
    );
    assert!(!unplanned(&report, &late) && !unplanned(&report, &missed_id));
    assert_eq!(
        pod_kill_row(&report, first),
        (
            "failed".to_owned(),
            Some(manual.clone()),
            Some(report::Provenance::ByHand),
            Some("RTO missed".to_owned())
        )
    );
    assert_eq!(
        pod_kill_row(&report, second),
        (
            "passed".to_owned(),
            Some(own_id.clone()),
            Some(report::Provenance::ByHand),
            None
        )
    );
    assert!(!unplanned(&report, &manual) && !unplanned(&report, &own_id));
    assert_eq!(report.summary.unplanned_runs, 0);
    let pod_kill = report
        .drills
        .iter()
        .find(|d| d.drill == "pod-kill-monthly")
        .unwrap();
    assert_eq!(
        (
            pod_kill.tally.planned,
            pod_kill.tally.ran,
            pod_kill.tally.missed,
            pod_kill.tally.unaccounted
        ),
        (10, 3, 0, 7)
    );
    // Every format that shows adherence shows it.
    let t = first.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let md = report::render(&report, Format::Md);
    assert!(
        md.contains(&format!(
            "| us-east | pod-kill-monthly | {t} | fires | failed | {manual} | by hand | RTO missed |"
        )),
        "{md}"
    );
    let html = report::render(&report, Format::Html);
    assert!(
        html.contains(&format!(
            "<td>{manual}</td><td>by hand</td><td>RTO missed</td></tr>"
        )) && html.contains("<th>provenance</th>"),
        "{html}"
    );
    let csv = report::render(&report, Format::Csv);
    assert!(csv.lines().next().unwrap().ends_with(",provenance"));
    let row = csv
        .lines()
        .find(|l| l.contains(&manual))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(
        row.starts_with(&format!(
            "us-east,pod-kill-monthly,pod-kill,{t},fires,failed,{manual},RTO missed,"
        )) && row.ends_with(",by hand"),
        "{row}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&report::render(&report, Format::Json)).unwrap();
    let row = json["adherence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["run"] == manual.as_str())
        .unwrap();
    assert_eq!(row["provenance"], "by-hand");
}

/// A fire a person vetoed (`firedrill skip`) is recorded by the scheduler as a skipped run with
/// who and why, and its fire record: the report shows it skipped, the scheduler's, with that
/// reason; it is counted skipped, not due (adherence is not lowered), not a follow-up, and the
/// next fire, run as planned, accounts for itself.
#[tokio::test]
async fn a_vetoed_fire_is_reported_skipped_with_who_and_why() {
    use firedrill::run::RunStatus;
    let kills = pod_kills();
    let (vetoed, next) = (kills[3], kills[4]);
    let vetoed_id = firedrill::cluster::job::run_id("pod-kill-monthly", vetoed);
    let next_id = firedrill::cluster::job::run_id("pod-kill-monthly", next);
    let why = "skipped by ana@example.com: INC-7 database failover";
    // As the scheduler records it (schedule::scheduler, `handle`).
    let mut skipped = named_run(
        "pod-kill-monthly",
        &vetoed_id,
        vetoed,
        RunStatus::Skipped,
        Some(None),
    );
    skipped.started = None;
    skipped.reason = Some(why.to_owned());
    skipped.evidence.skipped = Some(firedrill::run::SkipNote {
        by: "ana@example.com".into(),
        reason: "INC-7 database failover".into(),
        marked: "2027-04-14T09:00:00Z".into(),
    });
    let report = us_east_year(
        &[
            skipped,
            named_run(
                "pod-kill-monthly",
                &next_id,
                next,
                RunStatus::Passed,
                Some(Some(&next_id)),
            ),
        ],
        &[
            firedrill::history::store::FireRecord {
                drill: "pod-kill-monthly".to_owned(),
                scheduled: vetoed,
                status: "skipped".to_owned(),
                reason: Some(why.to_owned()),
                run: Some(vetoed_id.clone()),
            },
            firedrill::history::store::FireRecord {
                drill: "pod-kill-monthly".to_owned(),
                scheduled: next,
                status: "fired".to_owned(),
                reason: None,
                run: Some(next_id.clone()),
            },
        ],
    )
    .await;
    assert_eq!(
        pod_kill_row(&report, vetoed),
        (
            "skipped".to_owned(),
            Some(vetoed_id.clone()),
            Some(report::Provenance::Scheduler),
            Some(why.to_owned())
        )
    );
    assert_eq!(
        pod_kill_row(&report, next),
        (
            "passed".to_owned(),
            Some(next_id.clone()),
            Some(report::Provenance::Scheduler),
            None
        )
    );
    assert!(!unplanned(&report, &vetoed_id));
    let pod_kill = report
        .drills
        .iter()
        .find(|d| d.drill == "pod-kill-monthly")
        .unwrap();
    // From the vetoed fire on: it, the next (passed), and the rest of the year unaccounted.
    assert_eq!(
        (
            pod_kill.tally.planned,
            pod_kill.tally.skipped,
            pod_kill.tally.ran,
            pod_kill.tally.passed
        ),
        (9, 1, 1, 1)
    );
    let ran_of_due = pod_kill.tally.adherence_percent.unwrap();
    assert!((ran_of_due - 100.0 / 8.0).abs() < 1e-9, "{ran_of_due}");
    let md = report::render(&report, Format::Md);
    let t = vetoed.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(
        md.contains(&format!(
            "| us-east | pod-kill-monthly | {t} | fires | skipped | {vetoed_id} | scheduler | {why} |"
        )),
        "{md}"
    );
}

/// A fire with neither the scheduler's fire record nor a run that names it is unaccounted,
/// with no provenance; a run one second off, or of another drill at the same instant, names
/// another fire and stays outside the calendar. The scheduler's record alone (fired, and no
/// run recorded) is the scheduler's, and still a gap.
#[tokio::test]
async fn a_fire_with_neither_record_is_unaccounted() {
    use firedrill::run::RunStatus;
    let kills = pod_kills();
    // The fire record comes first: a drill is planned from its first fire record on.
    let (fired, lost) = (kills[6], kills[8]);
    let off = lost + chrono::TimeDelta::seconds(1);
    let near = firedrill::cluster::job::manual_run_id("pod-kill-monthly", off);
    let other = firedrill::cluster::job::manual_run_id("network-partition-quarterly", lost);
    let report = us_east_year(
        &[
            named_run(
                "pod-kill-monthly",
                &near,
                off,
                RunStatus::Passed,
                Some(None),
            ),
            named_run(
                "network-partition-quarterly",
                &other,
                lost,
                RunStatus::Passed,
                Some(None),
            ),
        ],
        &[firedrill::history::store::FireRecord {
            drill: "pod-kill-monthly".to_owned(),
            scheduled: fired,
            status: "fired".to_owned(),
            reason: None,
            run: Some(firedrill::cluster::job::run_id("pod-kill-monthly", fired)),
        }],
    )
    .await;
    assert_eq!(
        pod_kill_row(&report, lost),
        (
            "unaccounted".to_owned(),
            None,
            None,
            Some("no record of this fire: was the scheduler running?".to_owned())
        )
    );
    assert_eq!(
        pod_kill_row(&report, fired),
        (
            "unaccounted".to_owned(),
            None,
            Some(report::Provenance::Scheduler),
            Some("fired, but the run left no record".to_owned())
        )
    );
    assert!(unplanned(&report, &near) && unplanned(&report, &other));
    assert_eq!(report.summary.unplanned_runs, 2);
    let md = report::render(&report, Format::Md);
    assert!(
        md.contains(&format!(
            "| us-east | pod-kill-monthly | {} | fires | unaccounted |  |  | no record of this fire: was the scheduler running? |",
            lost.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )),
        "{md}"
    );
}

/// End to end: a person runs `firedrill execute --scheduled T` for a planned instant the
/// scheduler never fired; `firedrill report` accounts for that fire by the run, run by hand, in
/// every format, and the next fire, with neither record, stays unaccounted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_reports_a_run_by_hand_for_a_planned_instant_as_its_fire() {
    let server = support::serve(|_| (200, std::time::Duration::from_millis(5))).await;
    let dir = std::env::temp_dir().join(unique("firedrill-by-hand"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("firedrill.yaml");
    std::fs::write(
        &config,
        format!(
            "armed: true\nstore: sqlite://h.db\ndrills:\n  - {{ name: api-probe, kind: probe, schedule: \"@daily\", duration: 1s, steady_state: [{{ http: \"{}\", every: 100ms }}] }}\n",
            server.url
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let (config, args) = (
            config.clone(),
            args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        );
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_firedrill"))
                .args(&args)
                .arg("--config")
                .arg(&config)
                .current_dir("/")
                .env("KUBECONFIG", "/nonexistent")
                .env_remove("KUBERNETES_SERVICE_HOST")
                .env_remove("FIREDRILL_DATA_DIR")
                .env_remove("FIREDRILL_JOB")
                .env("FIREDRILL_LOG_LEVEL", "warn")
                .output()
                .unwrap()
        })
    };
    let out = run(&[
        "execute",
        "--drill",
        "api-probe",
        "--scheduled",
        "2026-01-01T00:00:00Z",
    ])
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let id = record["id"].as_str().unwrap().to_owned();
    assert_ne!(
        id,
        firedrill::cluster::job::run_id("api-probe", at("2026-01-01T00:00:00Z")),
        "a manual run id"
    );
    let report = |format: &'static str| {
        let run = &run;
        async move {
            let out = run(&[
                "report",
                "--since",
                "2026-01-01T00:00:00Z",
                "--until",
                "2026-01-03T00:00:00Z",
                "--format",
                format,
            ])
            .await
            .unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
    };
    let json: serde_json::Value = serde_json::from_str(&report("json").await).unwrap();
    let rows: Vec<(&str, &str, &serde_json::Value, &serde_json::Value)> = json["adherence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["scheduled"].as_str().unwrap(),
                a["outcome"].as_str().unwrap(),
                &a["run"],
                &a["provenance"],
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "2026-01-01T00:00:00Z",
                "passed",
                &serde_json::json!(id),
                &serde_json::json!("by-hand")
            ),
            (
                "2026-01-02T00:00:00Z",
                "unaccounted",
                &serde_json::Value::Null,
                &serde_json::Value::Null
            ),
        ]
    );
    assert_eq!(
        (
            &json["summary"]["ran"],
            &json["summary"]["unaccounted"],
            &json["summary"]["unplanned_runs"]
        ),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(0)
        )
    );
    let md = report("md").await;
    assert!(
        md.contains(&format!(
            "| default | api-probe | 2026-01-01T00:00:00Z | fires | passed | {id} | by hand |"
        )),
        "{md}"
    );
    let html = report("html").await;
    assert!(
        html.contains(&format!("<td>{id}</td><td>by hand</td>")),
        "{html}"
    );
    let csv = report("csv").await;
    assert!(
        csv.lines()
            .any(|l| l.contains(&format!(",passed,{id},")) && l.ends_with(",by hand")),
        "{csv}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
