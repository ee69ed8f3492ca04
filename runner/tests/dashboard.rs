//! The Grafana dashboard in deploy/grafana asks only for metrics firedrill exports: the names
//! are read from what a run really pushes to the real Pushgateway and from the scheduler's own
//! /metrics exposition, and every panel's query is checked against them by
//! `scripts/check-dashboard.py` (a PromQL tokenizer).

mod support;

use std::collections::BTreeSet;
use std::process::Command;

use firedrill::drill::gate::Endpoints;
use firedrill::history::metrics::Exposition;
use firedrill::history::pushgateway::{self, Retry};
use firedrill::history::store::{Measurements, RunRecord, RunStatus};
use support::{service, unique};

fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_dashboard_query_uses_only_metrics_firedrill_exports() {
    let Some(base) = service("FIREDRILL_TEST_PUSHGATEWAY") else {
        return;
    };
    let e = Endpoints::new(None, None);
    let cluster = unique("dash").replace('_', "-");
    // A run with everything a run can push: measured figures, their targets, latency.
    let t = |s: &str| s.parse().unwrap();
    let run = RunRecord {
        cluster: cluster.clone(),
        id: "region-1".into(),
        drill: "region".into(),
        kind: "region-failover".into(),
        scheduled: t("2027-03-16T13:00:00Z"),
        started: Some(t("2027-03-16T13:00:01Z")),
        ended: Some(t("2027-03-16T13:30:00Z")),
        status: RunStatus::Passed,
        reason: None,
        targets: Vec::new(),
        measurements: Measurements {
            availability: Some(0.99),
            latency_p50_seconds: Some(0.02),
            latency_p95_seconds: Some(0.1),
            latency_p99_seconds: Some(0.3),
            requests: Some(100),
            rto_seconds: Some(300.0),
            rpo_seconds: Some(2.5),
        },
        evidence: Box::new(firedrill::run::Evidence::from_value(
            &serde_json::json!({ "criteria": { "availability": 0.95, "rto_seconds": 900.0, "rpo_seconds": 300.0 } }),
        )),
    };
    let quick = Retry {
        attempts: 2,
        first_delay: std::time::Duration::from_millis(50),
        max_delay: std::time::Duration::from_millis(100),
        budget: std::time::Duration::from_secs(5),
    };
    let (_tx, stop) = tokio::sync::watch::channel(false);
    pushgateway::push(e.client(), &base, &run, None, quick, stop)
        .await
        .expect("push");
    let pushed = e
        .client()
        .get(base.join("metrics").unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mine: String = pushed
        .lines()
        .filter(|l| l.contains(&format!("cluster=\"{cluster}\"")))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut names = sample_names(&mine);
    assert!(names.contains("firedrill_rto_target_seconds"), "{names:?}");
    // The scheduler's families, every label value made to appear.
    let exposition = Exposition::for_cluster(&cluster);
    exposition
        .scheduler
        .fire(firedrill::history::metrics::FireStatus::fired);
    exposition.scheduler.tick_errors.inc();
    exposition
        .scheduler
        .reload(firedrill::history::metrics::ReloadResult::applied);
    names.extend(sample_names(&exposition.encode()));
    assert!(
        names.contains("firedrill_scheduler_fires_total"),
        "{names:?}"
    );

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let allowed = std::env::temp_dir().join(format!("{cluster}.names"));
    std::fs::write(
        &allowed,
        names.iter().map(|n| format!("{n}\n")).collect::<String>(),
    )
    .unwrap();
    let check = |args: &[&str]| {
        let out = Command::new("python3")
            .arg("scripts/check-dashboard.py")
            .args(args)
            .current_dir(&root)
            .output()
            .expect("python3 runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, said) = check(&["--self-test"]);
    assert!(ok, "{said}");
    let dashboard = "deploy/grafana/firedrill-dashboard.json";
    let (ok, said) = check(&[dashboard, "--allowed", allowed.to_str().unwrap()]);
    assert!(
        ok,
        "the dashboard asks for metrics firedrill does not export:\n{said}"
    );
    // It reads something: the dashboard's queries name most of what firedrill exports.
    let (ok, used) = check(&[dashboard]);
    assert!(ok, "{used}");
    let used: BTreeSet<&str> = used.lines().collect();
    assert!(used.len() >= 15, "{used:?}");
    // And the check can fail: without one exported name, the panels that use it are named.
    let fewer: String = names
        .iter()
        .filter(|n| *n != "firedrill_rto_target_seconds")
        .map(|n| format!("{n}\n"))
        .collect();
    std::fs::write(&allowed, fewer).unwrap();
    let (ok, said) = check(&[dashboard, "--allowed", allowed.to_str().unwrap()]);
    assert!(
        !ok && said.contains("firedrill_rto_target_seconds"),
        "{said}"
    );
    std::fs::remove_file(&allowed).ok();
}
