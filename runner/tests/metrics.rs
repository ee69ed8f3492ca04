//! The scheduler's `/metrics`, `/healthz` and `/readyz` over HTTP: the exposition read with the
//! Prometheus project's own OpenMetrics parser (Python `prometheus_client`), a slow or half-open
//! client holding nobody up, and accept errors backing off instead of spinning.

#[path = "support/skip.rs"]
mod skip;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use firedrill::history::metrics::{Exposition, FireStatus};
use tokio::io::AsyncWriteExt;

async fn serving(exposition: Exposition) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(firedrill::history::metrics::serve(
        listener,
        exposition,
        Duration::from_secs(5),
    ));
    base
}

async fn get(base: &str, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (
        response.status().as_u16(),
        content_type,
        response.text().await.unwrap(),
    )
}

/// The families in an exposition, as the Prometheus client library's parser reads them:
/// `name type sample=value ...` lines; `None` when the parser is not installed outside CI.
fn parsed(text: &str) -> Option<String> {
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    samples = " ".join(f"{s.name}{dict(sorted(s.labels.items())) if s.labels else ''}={s.value}" for s in family.samples)
    print(family.name, family.type, samples)
"#;
    let found = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip::skip("the parse: python3 has no prometheus_client (pip install prometheus_client; scripts/test.sh installs it)");
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all_sync(text.as_bytes());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

trait WriteAllSync {
    fn write_all_sync(self, bytes: &[u8]);
}

impl WriteAllSync for std::process::ChildStdin {
    fn write_all_sync(mut self, bytes: &[u8]) {
        std::io::Write::write_all(&mut self, bytes).unwrap();
    }
}

#[tokio::test]
async fn metrics_health_and_readiness_over_http() {
    firedrill::drill::gate::install_tls_provider();
    let exposition = Exposition::for_cluster("eu-1");
    let base = serving(exposition.clone()).await;
    assert_eq!(get(&base, "/healthz").await.0, 200);
    let (status, _, body) = get(&base, "/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (503, "no recent tick\n"),
        "not ready before a tick"
    );
    exposition.scheduler.ticked(Utc::now());
    assert_eq!(get(&base, "/readyz").await.0, 200);
    exposition
        .scheduler
        .ticked(Utc::now() - chrono::TimeDelta::seconds(60));
    assert_eq!(
        get(&base, "/readyz").await.0,
        503,
        "ticks stopped: not ready"
    );
    assert_eq!(get(&base, "/nope").await.0, 404);

    exposition.scheduler.leader.set(1);
    exposition.scheduler.fire(FireStatus::fired);
    exposition.scheduler.fire(FireStatus::fired);
    exposition.scheduler.fire(FireStatus::missed);
    exposition.scheduler.tick_errors.inc();
    exposition
        .scheduler
        .unverified
        .get_or_create(&firedrill::history::metrics::UnverifiedLabels {
            reason: firedrill::history::metrics::UnverifiedReason::wrong_code,
        })
        .inc();
    let (status, content_type, text) = get(&base, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let Some(families) = parsed(&text) else {
        return;
    };
    for line in [
        "firedrill_scheduler_leader gauge firedrill_scheduler_leader{'cluster': 'eu-1'}=1",
        "firedrill_kill_switch_engaged gauge firedrill_kill_switch_engaged{'cluster': 'eu-1'}=0",
        "firedrill_scheduler_tick_errors counter firedrill_scheduler_tick_errors_total{'cluster': 'eu-1'}=1",
        "firedrill_ledger_entries_unverified counter firedrill_ledger_entries_unverified_total{'cluster': 'eu-1', 'reason': 'wrong_code'}=1",
    ] {
        assert!(
            families.lines().any(|l| l == line),
            "{line:?} not in\n{families}"
        );
    }
    let fires = families
        .lines()
        .find(|l| l.starts_with("firedrill_scheduler_fires counter"))
        .unwrap_or_else(|| panic!("no fires family in\n{families}"));
    assert!(
        fires.contains("firedrill_scheduler_fires_total{'cluster': 'eu-1', 'status': 'fired'}=2"),
        "{fires}"
    );
    assert!(
        fires.contains("firedrill_scheduler_fires_total{'cluster': 'eu-1', 'status': 'missed'}=1"),
        "{fires}"
    );
}

#[tokio::test]
async fn a_slow_or_half_open_client_holds_nobody_up() {
    firedrill::drill::gate::install_tls_provider();
    let base = serving(Exposition::default()).await;
    let address = base.trim_start_matches("http://").to_owned();
    // One connects and says nothing; another sends half a request head and stops.
    let _silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /metr").await.unwrap();
    // Everyone else is answered meanwhile.
    for _ in 0..5 {
        let answered = tokio::time::timeout(Duration::from_secs(5), get(&base, "/healthz")).await;
        assert_eq!(answered.expect("answered despite the slow clients").0, 200);
    }
}

#[tokio::test]
async fn accept_errors_back_off_instead_of_spinning() {
    let attempts = Arc::new(AtomicU64::new(0));
    let counted = attempts.clone();
    let serving = tokio::spawn(firedrill::history::metrics::serve_with(
        move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                // Yields, so that a loop without backoff would count up, not hang the test.
                tokio::task::yield_now().await;
                Err::<(tokio::net::TcpStream, std::net::SocketAddr), _>(std::io::Error::other(
                    "Too many open files (os error 24)",
                ))
            }
        },
        Exposition::default(),
        Duration::from_secs(5),
    ));
    tokio::time::sleep(Duration::from_millis(450)).await;
    serving.abort();
    let n = attempts.load(Ordering::SeqCst);
    // One attempt per backoff (100 ms), not millions.
    assert!((2..=8).contains(&n), "{n} accept attempts in 450 ms");
}

/// The checks the scheduler ran at start: each on `/readyz` ✓ or ✗ with its fix, as
/// `firedrill_check{check}` 1 or 0; a failed critical one (API, RBAC, ledger key) makes
/// `/readyz` fail, another does not.
#[tokio::test]
async fn readyz_lists_the_checks_and_only_a_critical_failure_makes_it_fail() {
    use firedrill::check::{Line, Report};
    firedrill::drill::gate::install_tls_provider();
    let exposition = Exposition::for_cluster("eu-1");
    let base = serving(exposition.clone()).await;
    exposition.scheduler.ticked(Utc::now());
    let line = |check: &'static str, passed: bool, what: &str| Line {
        check,
        passed,
        what: what.to_owned(),
        fix: (!passed).then(|| "do this".to_owned()),
        checked: true,
    };
    exposition.scheduler.checked(Report {
        checks: vec![
            line("api", true, "Kubernetes API answers: v1.32.2"),
            line("rbac", true, "RBAC cluster-wide: 9 verbs allowed"),
            line(
                "pushgateway",
                false,
                "Pushgateway http://pg:9091/ does not answer",
            ),
        ],
    });
    let (status, _, body) = get(&base, "/readyz").await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            "ready\n✓ Kubernetes API answers: v1.32.2\n✓ RBAC cluster-wide: 9 verbs allowed\n✗ Pushgateway http://pg:9091/ does not answer; fix: do this\n1 of 3 checks failed\n"
        )
    );
    exposition.scheduler.checked(Report {
        checks: vec![
            line("api", true, "Kubernetes API answers: v1.32.2"),
            line("rbac", true, "RBAC in namespace apps: 11 verbs allowed"),
            line(
                "rbac",
                false,
                "RBAC: create pods/eviction in namespace apps is denied",
            ),
            line("ledger-key", true, "ledger key readable"),
        ],
    });
    let (status, _, body) = get(&base, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("not ready: the rbac check failed (its fix is below; the checks run again every 15 minutes)\n✓ Kubernetes API answers"),
        "{body}"
    );
    assert!(
        body.contains("✗ RBAC: create pods/eviction in namespace apps is denied; fix: do this\n"),
        "{body}"
    );
    let (_, _, text) = get(&base, "/metrics").await;
    for sample in [
        r#"firedrill_check{cluster="eu-1",check="api"} 1"#,
        r#"firedrill_check{cluster="eu-1",check="rbac"} 0"#,
        r#"firedrill_check{cluster="eu-1",check="ledger-key"} 1"#,
    ] {
        assert!(text.contains(sample), "{sample} not in\n{text}");
    }
    assert!(
        !text.contains(r#"check="pushgateway""#),
        "from the first look only, not run at the second: gone\n{text}"
    );
    if let Some(families) = parsed(&text) {
        assert!(families.contains("firedrill_check gauge"), "{families}");
    }
}
