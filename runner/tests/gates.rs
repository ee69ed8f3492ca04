//! Preflight gates, abort conditions and steady-state sampling against local HTTP servers and
//! the real Prometheus, Pushgateway and Alertmanager that scripts/test.sh starts.

mod support;

use std::time::{Duration, Instant};

use firedrill::drill::gate::{
    self, Check, Condition, Endpoints, Outcome, StatusRange, SteadyProbe, WatchResult,
};
use support::{refused_url, serve, service, unique};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn http(url: &url::Url, expect: StatusRange, timeout: Duration) -> Check {
    Check::Http {
        url: url.clone(),
        expect,
        timeout,
    }
}

fn fail_text(outcome: &Outcome) -> &str {
    assert!(!outcome.passed(), "expected a failure, got {outcome:?}");
    outcome.text()
}

#[tokio::test]
async fn http_gates_judge_status_slowness_and_refusal() {
    let ok = serve(|_| (200, Duration::ZERO)).await;
    let unavailable = serve(|_| (503, Duration::ZERO)).await;
    let slow = serve(|_| (200, MS(800))).await;
    let refused = refused_url().await;
    let e = Endpoints::new(None, None);

    assert!(
        gate::evaluate(&http(&ok.url, StatusRange::SUCCESS, MS(2000)), &e)
            .await
            .passed()
    );
    let out = gate::evaluate(&http(&unavailable.url, StatusRange::SUCCESS, MS(2000)), &e).await;
    assert_eq!(
        fail_text(&out),
        format!("GET {} answered 503 (expected 200-299)", unavailable.url)
    );
    let expect_503 = StatusRange::parse("503").unwrap();
    assert!(
        gate::evaluate(&http(&unavailable.url, expect_503, MS(2000)), &e)
            .await
            .passed()
    );
    let out = gate::evaluate(&http(&slow.url, StatusRange::SUCCESS, MS(200)), &e).await;
    assert_eq!(
        fail_text(&out),
        format!("GET {} failed: no answer within 200ms", slow.url)
    );
    let out = gate::evaluate(&http(&refused, StatusRange::SUCCESS, MS(2000)), &e).await;
    assert!(
        fail_text(&out)
            .to_lowercase()
            .contains("connection refused"),
        "{out:?}"
    );
}

#[tokio::test]
async fn preflight_reports_every_gate() {
    let ok = serve(|_| (200, Duration::ZERO)).await;
    let down = serve(|_| (500, Duration::ZERO)).await;
    let e = Endpoints::new(None, None);
    let checks = [
        http(&ok.url, StatusRange::SUCCESS, MS(1000)),
        http(&down.url, StatusRange::SUCCESS, MS(1000)),
        Check::Promql {
            query: "up".into(),
            min: Some(1.0),
            max: None,
            timeout: MS(1000),
        },
    ];
    let results = gate::preflight(&checks, &e).await;
    let passed: Vec<bool> = results.iter().map(|r| r.outcome.passed()).collect();
    assert_eq!(passed, [true, false, false]);
    assert_eq!(results[2].check, "promql `up`");
    assert_eq!(
        results[2].outcome.text(),
        "cannot run `up`: no `prometheus:` URL is configured"
    );
}

#[tokio::test]
async fn http_abort_needs_consecutive_failures() {
    // Fails on every third request only: never three in a row.
    let flaky = serve(|n| (if n % 3 == 2 { 500 } else { 200 }, Duration::ZERO)).await;
    let e = Endpoints::new(None, None);
    let condition = |url: &url::Url| Condition {
        check: http(url, StatusRange::SUCCESS, MS(500)),
        for_: Duration::ZERO,
        failures: 3,
        interval: MS(20),
    };
    assert_eq!(
        gate::watch(&[condition(&flaky.url)], &e, MS(600)).await,
        WatchResult::Completed
    );

    let down = serve(|_| (502, Duration::ZERO)).await;
    let started = Instant::now();
    let result = gate::watch(&[condition(&down.url)], &e, Duration::from_secs(10)).await;
    assert_eq!(
        result,
        WatchResult::Breached(format!(
            "GET {} answered 502 (expected 200-299) (3 times in a row)",
            down.url
        ))
    );
    assert!(
        started.elapsed() >= MS(40) && started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn steady_state_measures_availability_and_latency() {
    // Every tenth answer is a 500; every answer takes at least 30ms.
    let server = serve(|n| (if n % 10 == 9 { 500 } else { 200 }, MS(30 + (n % 5) * 10))).await;
    let e = Endpoints::new(None, None);
    let probe = SteadyProbe {
        url: server.url.clone(),
        every: MS(20),
        expect: StatusRange::SUCCESS,
        timeout: MS(1000),
    };
    let (_stop, stop) = tokio::sync::watch::channel(false);
    let samples = gate::sample(&probe, &e, MS(2000), stop).await;
    let m = samples.measure();
    // A request every 20ms for 2s: about 100, give or take scheduling on a busy machine.
    assert!((80..=101).contains(&m.requests), "{m:?}");
    let availability = m.availability.unwrap();
    assert!((availability - 0.9).abs() <= 0.02, "{m:?}");
    let p50 = m.p50.unwrap();
    assert!(p50 >= MS(40) && p50 < MS(400), "{m:?}");
    assert!(m.p99.unwrap() >= MS(70), "{m:?}");
}

async fn push(e: &Endpoints, pushgateway: &url::Url, group: &str, body: &str) {
    let client = e.client();
    let url = pushgateway
        .join(&format!("metrics/job/firedrill_test/run/{group}"))
        .unwrap();
    let response = client
        .put(url)
        .body(body.to_owned())
        .send()
        .await
        .expect("push to the Pushgateway");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );
}

/// Waits until Prometheus has scraped `query` to `value` (it scrapes every second).
async fn until_scraped(e: &Endpoints, prometheus: &url::Url, query: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = gate::query_prometheus(e, prometheus, query, MS(2000)).await;
        if got.as_deref().ok() == Some(&[value][..]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never showed {query} = {value}: {got:?}"
        );
        tokio::time::sleep(MS(250)).await;
    }
}

#[tokio::test]
async fn promql_gates_and_aborts_against_real_prometheus() {
    let (Some(prometheus), Some(pushgateway)) = (
        service("FIREDRILL_TEST_PROMETHEUS"),
        service("FIREDRILL_TEST_PUSHGATEWAY"),
    ) else {
        return;
    };
    let run = unique("gate");
    let e = Endpoints::new(Some(prometheus.clone()), None);
    push(
        &e,
        &pushgateway,
        &run,
        "firedrill_test_healthy_replicas 3\n",
    )
    .await;
    let query = format!("sum(firedrill_test_healthy_replicas{{run=\"{run}\"}})");
    until_scraped(&e, &prometheus, &query, 3.0).await;

    let check = |min: Option<f64>, max: Option<f64>| Check::Promql {
        query: query.clone(),
        min,
        max,
        timeout: MS(2000),
    };
    let out = gate::evaluate(&check(Some(2.0), None), &e).await;
    assert_eq!(out, Outcome::Pass(format!("`{query}` = 3")));
    let out = gate::evaluate(&check(Some(5.0), None), &e).await;
    assert_eq!(
        fail_text(&out),
        format!("`{query}` = 3, below the minimum 5")
    );
    let out = gate::evaluate(&check(None, Some(2.5)), &e).await;
    assert_eq!(
        fail_text(&out),
        format!("`{query}` = 3, above the maximum 2.5")
    );

    let nothing = Check::Promql {
        query: format!("firedrill_test_absent{{run=\"{run}\"}}"),
        min: Some(0.0),
        max: None,
        timeout: MS(2000),
    };
    assert!(fail_text(&gate::evaluate(&nothing, &e).await)
        .ends_with("returned nothing (no series match; fail safe)"));
    let broken = Check::Promql {
        query: "sum(".into(),
        min: Some(0.0),
        max: None,
        timeout: MS(2000),
    };
    assert!(fail_text(&gate::evaluate(&broken, &e).await)
        .starts_with("`sum(`: Prometheus rejected the query (bad_data:"));
    let unreachable = Endpoints::new(Some(refused_url().await), None);
    assert!(
        fail_text(&gate::evaluate(&check(Some(1.0), None), &unreachable).await)
            .contains("is unreachable")
    );

    // Abort: the value above 2 for at least 300ms breaches; it is above from the start.
    let started = Instant::now();
    let condition = Condition {
        check: check(None, Some(2.0)),
        for_: MS(300),
        failures: 1,
        interval: MS(100),
    };
    match gate::watch(
        std::slice::from_ref(&condition),
        &e,
        Duration::from_secs(10),
    )
    .await
    {
        WatchResult::Breached(reason) => {
            assert!(reason.contains("above the maximum 2 (for"), "{reason}")
        }
        other => panic!("expected a breach, got {other:?}"),
    }
    assert!(
        started.elapsed() >= MS(300),
        "breached before `for` had passed: {:?}",
        started.elapsed()
    );

    // Once the value is back under the threshold, the same condition holds for the whole drill.
    push(
        &e,
        &pushgateway,
        &run,
        "firedrill_test_healthy_replicas 1\n",
    )
    .await;
    until_scraped(&e, &prometheus, &query, 1.0).await;
    assert_eq!(
        gate::watch(&[condition], &e, MS(800)).await,
        WatchResult::Completed
    );

    // An unreachable Prometheus during the drill is a breach (fail safe).
    let blind = Condition {
        check: check(None, Some(2.0)),
        for_: Duration::ZERO,
        failures: 1,
        interval: MS(100),
    };
    assert!(
        matches!(gate::watch(&[blind], &unreachable, Duration::from_secs(10)).await, WatchResult::Breached(r) if r.contains("unreachable"))
    );
}

#[tokio::test]
async fn alert_gates_against_real_alertmanager() {
    let Some(alertmanager) = service("FIREDRILL_TEST_ALERTMANAGER") else {
        return;
    };
    let run = unique("alert");
    let e = Endpoints::new(None, Some(alertmanager.clone()));
    let alert = serde_json::json!([{
        "labels": { "alertname": "FiredrillTestDatabaseDown", "severity": "critical", "test_run": run },
        "annotations": { "summary": "posted by firedrill's tests" },
        "startsAt": chrono::Utc::now().to_rfc3339(),
        "endsAt": (chrono::Utc::now() + chrono::TimeDelta::minutes(10)).to_rfc3339(),
    }]);
    let response = e
        .client()
        .post(alertmanager.join("api/v2/alerts").unwrap())
        .json(&alert)
        .send()
        .await
        .expect("post an alert");
    assert!(
        response.status().is_success(),
        "{:?}",
        response.text().await
    );

    let check = |run: &str| Check::Alerts {
        labels: vec![
            ("severity".into(), "critical".into()),
            ("test_run".into(), run.into()),
        ],
        timeout: MS(2000),
    };
    let out = gate::evaluate(&check(&run), &e).await;
    assert_eq!(
        fail_text(&out),
        format!(
            "alert firing with {{severity=critical,test_run={run}}}: FiredrillTestDatabaseDown"
        )
    );
    let quiet = gate::evaluate(&check("nobody"), &e).await;
    assert_eq!(
        quiet,
        Outcome::Pass("no alert firing with {severity=critical,test_run=nobody}".into())
    );

    let condition = Condition {
        check: check(&run),
        for_: Duration::ZERO,
        failures: 1,
        interval: MS(100),
    };
    assert!(
        matches!(gate::watch(&[condition], &e, Duration::from_secs(10)).await, WatchResult::Breached(r) if r.contains("FiredrillTestDatabaseDown"))
    );

    let unreachable = Endpoints::new(None, Some(refused_url().await));
    assert!(
        fail_text(&gate::evaluate(&check(&run), &unreachable).await).contains("Alertmanager at")
    );
}
