//! Results pushed to the real Pushgateway, read back from its /metrics with exact names and labels.

mod support;

use std::time::Duration;

use firedrill::drill::gate::Endpoints;
use firedrill::history::pushgateway::{self, Retry};
use firedrill::history::store::{Measurements, RunRecord, RunStatus};
use support::{refused_url, service, unique};

fn run(drill: &str, status: RunStatus) -> RunRecord {
    let t = |s: &str| s.parse().unwrap();
    RunRecord {
        cluster: "eu-1".into(),
        id: format!("{drill}-1"),
        drill: drill.into(),
        kind: "probe".into(),
        scheduled: t("2027-01-15T15:00:00Z"),
        started: Some(t("2027-01-15T15:00:01Z")),
        ended: Some(t("2027-01-15T15:02:01Z")),
        status,
        reason: None,
        targets: Vec::new(),
        measurements: Measurements {
            availability: Some(0.99),
            latency_p95_seconds: Some(0.25),
            ..Measurements::default()
        },
        evidence: Box::new(firedrill::run::Evidence::new()),
    }
}

const QUICK: Retry = Retry {
    attempts: 2,
    first_delay: Duration::from_millis(50),
    max_delay: Duration::from_millis(100),
    budget: Duration::from_secs(5),
};

fn no_signal() -> tokio::sync::watch::Receiver<bool> {
    tokio::sync::watch::channel(false).1
}

/// A port that accepts connections and never answers: the worst kind of outage.
async fn silent_url() -> (url::Url, tokio::net::TcpListener) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    (url.parse().unwrap(), listener)
}

/// The Pushgateway's own exposition of one drill's group, without its bookkeeping metrics.
async fn scrape(client: &reqwest::Client, base: &url::Url, drill: &str) -> Vec<String> {
    let text = client
        .get(base.join("metrics").unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(&format!("drill=\"{drill}\"")))
        .filter(|l| {
            !l.starts_with("push_time_seconds") && !l.starts_with("push_failure_time_seconds")
        })
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn pushed_results_read_back_exactly() {
    let Some(base) = service("FIREDRILL_TEST_PUSHGATEWAY") else {
        return;
    };
    let e = Endpoints::new(None, None);
    let drill = unique("probe").replace('_', "-");
    pushgateway::push(
        e.client(),
        &base,
        &run(&drill, RunStatus::Passed),
        None,
        QUICK,
        no_signal(),
    )
    .await
    .expect("push");
    // The Pushgateway adds the grouping key and `instance`, and prints labels sorted by name.
    let d = format!("cluster=\"eu-1\",drill=\"{drill}\"");
    let labels = format!("{d},instance=\"\",job=\"firedrill\"");
    let typed = format!("{d},experiment_type=\"probe\",instance=\"\",job=\"firedrill\"");
    let got = scrape(e.client(), &base, &drill).await;
    let mut expected = vec![
        format!("chaos_experiment_duration_seconds{{{typed}}} 120"),
        format!("firedrill_availability_ratio{{{labels}}} 0.99"),
        format!("firedrill_latency_seconds{{{labels},quantile=\"0.95\"}} 0.25"),
        format!("firedrill_rollback_failed{{{labels}}} 0"),
        format!("firedrill_run_last_success_timestamp_seconds{{{labels}}} 1.800025321e+09"),
        format!("firedrill_run_last_timestamp_seconds{{{labels}}} 1.800025321e+09"),
        format!("firedrill_safety_violation{{{labels}}} 0"),
    ];
    for status in [
        "aborted",
        "blocked",
        "dry-run",
        "error",
        "failed",
        "ineffective",
        "missed",
        "passed",
        "skipped",
    ] {
        let value = if status == "passed" { 1 } else { 0 };
        expected.push(format!(
            "chaos_experiment_status{{{typed},status=\"{status}\"}} {value}"
        ));
    }
    expected.sort();
    assert_eq!(got, expected);

    // A blocked run replaces the whole group: nothing it did not measure stays on show from
    // the run before. The last success comes from the history, passed in.
    let mut blocked = run(&drill, RunStatus::Blocked);
    blocked.started = None;
    blocked.ended = Some("2027-02-15T15:00:00Z".parse().unwrap());
    blocked.measurements = Measurements::default();
    let passed_at = "2027-01-15T15:02:01Z".parse().unwrap();
    pushgateway::push(
        e.client(),
        &base,
        &blocked,
        Some(passed_at),
        QUICK,
        no_signal(),
    )
    .await
    .expect("push");
    let got = scrape(e.client(), &base, &drill).await;
    let mut expected = vec![
        format!("firedrill_rollback_failed{{{labels}}} 0"),
        format!("firedrill_run_last_success_timestamp_seconds{{{labels}}} 1.800025321e+09"),
        format!("firedrill_run_last_timestamp_seconds{{{labels}}} 1.8027036e+09"),
        format!("firedrill_safety_violation{{{labels}}} 0"),
    ];
    for status in [
        "aborted",
        "blocked",
        "dry-run",
        "error",
        "failed",
        "ineffective",
        "missed",
        "passed",
        "skipped",
    ] {
        let value = if status == "blocked" { 1 } else { 0 };
        expected.push(format!(
            "chaos_experiment_status{{{typed},status=\"{status}\"}} {value}"
        ));
    }
    expected.sort();
    assert_eq!(
        got, expected,
        "no availability, latency or duration left from the run before"
    );
}

#[tokio::test]
async fn an_outage_is_retried_then_reported_not_raised() {
    let e = Endpoints::new(None, None);
    let down = refused_url().await;
    let err = pushgateway::push(
        e.client(),
        &down,
        &run("probe", RunStatus::Passed),
        None,
        QUICK,
        no_signal(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, pushgateway::PushError::Unreachable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("is unreachable"), "{err}");
}

#[tokio::test]
async fn a_silent_pushgateway_costs_the_budget_not_the_retries() {
    let e = Endpoints::new(None, None);
    let (silent, _listener) = silent_url().await;
    let patient = Retry {
        attempts: 50,
        first_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(30),
        budget: Duration::from_millis(800),
    };
    let err = pushgateway::push(
        e.client(),
        &silent,
        &run("probe", RunStatus::Passed),
        None,
        patient,
        no_signal(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, pushgateway::PushError::GaveUp { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("gave up after"), "{err}");
}

#[tokio::test]
async fn a_signal_ends_the_retries() {
    let e = Endpoints::new(None, None);
    let down = refused_url().await;
    let patient = Retry {
        attempts: 50,
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(30),
        budget: Duration::from_secs(600),
    };
    let (signal, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = signal.send(true);
        // Keep the sender alive: a dropped sender must not read as a signal.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    let pushed = tokio::time::timeout(
        Duration::from_secs(60),
        pushgateway::push(
            e.client(),
            &down,
            &run("probe", RunStatus::Passed),
            None,
            patient,
            stop,
        ),
    )
    .await
    .expect("the signal must end the retries, not the 600 s budget");
    let err = pushed.unwrap_err();
    assert!(matches!(err, pushgateway::PushError::Signalled), "{err}");
}
