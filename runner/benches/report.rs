//! `firedrill report` over 100,000 runs (a year of four hourly drills on three clusters: 105,120
//! planned fires and as many runs), as users run it: the release binary, timed whole and its
//! peak memory read by `/usr/bin/time`, on SQLite and on PostgreSQL (when
//! `FIREDRILL_TEST_POSTGRES` names one). Target: under 2 s. The history is seeded once into
//! `target/bench-data/` (and a database `firedrill_bench_report2`) and reused.
//!
//! `cargo bench -p firedrill --bench report`

#[path = "../tests/support/history.rs"]
mod history;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{DateTime, Utc};
use firedrill::config::{Config, Store as StoreUrl};
use firedrill::history::store::{timestamp, Store};
use sqlx::Connection;

const CLUSTERS: [&str; 3] = ["c-east", "c-west", "c-south"];
const RUNS: usize = 5;

fn drill_file(dir: &Path) -> PathBuf {
    let mut text = String::from(
        "timezone: UTC\ncluster: c-east\nstore: sqlite://report-100k-v2.db\ndrills:\n",
    );
    for (i, name) in ["probe-api", "probe-db", "probe-cache", "probe-queue"]
        .iter()
        .enumerate()
    {
        text.push_str(&format!(
            "  - name: {name}\n    kind: probe\n    schedule: \"{} * * * *\"\n    duration: 1m\n    steady_state:\n      - http: http://{name}.example:8080/healthz\n        every: 5s\n",
            i * 10
        ));
    }
    let path = dir.join("report-100k.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Seeds every planned fire of the year on each cluster as a run, in one transaction per
/// cluster (the store's own writes commit one by one, which would take minutes here).
async fn seed(
    url: &StoreUrl,
    config: &Config,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> usize {
    Store::open(url, "c-east").await.unwrap().close().await;
    let connect = match url {
        StoreUrl::Sqlite(p) => format!("sqlite://{p}"),
        StoreUrl::Postgres(u) => u.clone(),
    };
    let mut c = sqlx::AnyConnection::connect(&connect).await.unwrap();
    let planned = firedrill::schedule::plan(
        &config.planned_drills(),
        config.timezone,
        &config.blackouts,
        config.concurrency as usize,
        since,
        until,
    );
    let mut n = 0;
    for cluster in CLUSTERS {
        let mut tx = c.begin().await.unwrap();
        for fire in &planned {
            let drill = &config.drills[fire.drill];
            let id = firedrill::cluster::job::run_id(&drill.name, fire.scheduled);
            let h = fire.scheduled.timestamp() as u64 ^ (cluster.len() as u64 * 0x9e37_79b9);
            let status = match h % 50 {
                0 => firedrill::run::RunStatus::Failed,
                1 => firedrill::run::RunStatus::Aborted,
                _ => firedrill::run::RunStatus::Passed,
            };
            let r = history::run(
                cluster,
                drill,
                &id,
                fire.scheduled,
                fire.scheduled,
                status,
                h.wrapping_mul(0x2545_f491_4f6c_dd1d),
            );
            sqlx::query("INSERT INTO runs (cluster, id, drill, kind, scheduled, started, ended, status, reason, targets, measurements, evidence, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
                .bind(&r.cluster)
                .bind(&r.id)
                .bind(&r.drill)
                .bind(&r.kind)
                .bind(timestamp(r.scheduled))
                .bind(r.started.map(timestamp))
                .bind(r.ended.map(timestamp))
                .bind(r.status.as_str())
                .bind(r.reason.as_deref())
                .bind(serde_json::to_string(&r.targets).unwrap())
                .bind(serde_json::to_string(&r.measurements).unwrap())
                .bind(serde_json::to_string(&r.evidence).unwrap())
                .bind(timestamp(r.scheduled))
                .execute(&mut *tx)
                .await
                .unwrap();
            n += 1;
        }
        // Each cluster's scheduler planned the drills before the year began: a report holds a
        // cluster to the drills it has fire records of, from the first.
        for drill in &config.drills {
            sqlx::query("INSERT INTO fires (cluster, drill, scheduled, status, reason, run, recorded_at) VALUES ($1, $2, $3, 'skipped', 'seeded', NULL, $3)")
                .bind(cluster)
                .bind(&drill.name)
                .bind(timestamp(since - chrono::TimeDelta::days(7)))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    n
}

/// Median wall time and peak RSS of the release binary's report.
fn measure(bin: &str, config: &Path, store: &str, format: &str) -> (f64, u64, usize) {
    let mut times = Vec::new();
    let mut peak = 0;
    let mut size = 0;
    for _ in 0..RUNS {
        let out = std::env::temp_dir().join(format!("firedrill-bench-report.{format}"));
        let started = Instant::now();
        let run = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(bin)
            .args(["report", "--config"])
            .arg(config)
            .args([
                "--since",
                "2027-01-01T00:00:00Z",
                "--until",
                "2028-01-01T00:00:00Z",
                "--format",
                format,
                "--output",
            ])
            .arg(&out)
            .env("FIREDRILL_STORE", store)
            .output()
            .unwrap();
        times.push(started.elapsed().as_secs_f64());
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{err}");
        peak = peak.max(
            err.lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(0),
        );
        size = std::fs::metadata(&out)
            .map(|m| m.len() as usize)
            .unwrap_or(0);
    }
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], peak, size)
}

#[tokio::main]
async fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let file = drill_file(&dir);
    let config = Config::load(&file).unwrap();
    let (since, until): (DateTime<Utc>, DateTime<Utc>) = (
        "2027-01-01T00:00:00Z".parse().unwrap(),
        "2028-01-01T00:00:00Z".parse().unwrap(),
    );
    let mut stores = Vec::new();
    let db = dir.join("report-100k-v2.db");
    if !db.exists() {
        let t = Instant::now();
        let n = seed(
            &StoreUrl::Sqlite(db.display().to_string()),
            &config,
            since,
            until,
        )
        .await;
        eprintln!(
            "seeded {n} runs into {} in {:.1}s",
            db.display(),
            t.elapsed().as_secs_f64()
        );
    }
    // A history seeded by an earlier version is migrated as its writer would (`report` reads
    // only a history at this version's schema).
    Store::open(&StoreUrl::Sqlite(db.display().to_string()), "c-east")
        .await
        .unwrap()
        .close()
        .await;
    stores.push(("SQLite", format!("sqlite://{}", db.display())));
    if let Ok(admin) = std::env::var("FIREDRILL_TEST_POSTGRES") {
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&admin).await.unwrap();
        let fresh = sqlx::query("CREATE DATABASE firedrill_bench_report2")
            .execute(&mut c)
            .await
            .is_ok();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path("/firedrill_bench_report2");
        if fresh {
            let t = Instant::now();
            let n = seed(&StoreUrl::Postgres(url.to_string()), &config, since, until).await;
            eprintln!(
                "seeded {n} runs into PostgreSQL in {:.1}s",
                t.elapsed().as_secs_f64()
            );
        }
        Store::open(&StoreUrl::Postgres(url.to_string()), "c-east")
            .await
            .unwrap()
            .close()
            .await;
        stores.push(("PostgreSQL", url.to_string()));
    } else {
        eprintln!("PostgreSQL: FIREDRILL_TEST_POSTGRES is not set (scripts/services.sh start); SQLite only");
    }
    let bin = env!("CARGO_BIN_EXE_firedrill");
    println!("| store | format | runs | median of {RUNS} (s) | peak RSS (MiB) | output (MiB) | target 2 s |");
    println!("|---|---|---|---|---|---|---|");
    for (name, store) in &stores {
        for format in ["json", "md", "csv", "html"] {
            let (median, peak_kib, size) = measure(bin, &file, store, format);
            println!(
                "| {name} | {format} | 105120 | {median:.2} | {:.0} | {:.1} | {} |",
                peak_kib as f64 / 1024.0,
                size as f64 / 1_048_576.0,
                if median < 2.0 { "met" } else { "MISSED" }
            );
        }
    }
}
