//! Results to the Prometheus Pushgateway after every run.
//!
//! Grouping key `/metrics/job/firedrill/cluster/<cluster>/drill/<name>`: stable per drill and
//! cluster, never a run id. Pushed with PUT, which replaces the whole group: a blocked or missed
//! run never leaves the previous run's availability, latency or RTO on show as if current.
//! `firedrill_run_last_success_timestamp_seconds` survives a failed run because it is read from
//! the run history and pushed again with every run. The body is the Prometheus text format
//! 0.0.4, which the Pushgateway expects.

use std::fmt::Write as _;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};

use crate::run::{RunRecord, RunStatus};

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics of one finished run, in text format 0.0.4. `last_success` is when the drill
/// last passed on this cluster (the history's answer, or this run's end if it passed).
pub fn render(run: &RunRecord, last_success: Option<DateTime<Utc>>) -> String {
    let kind = escape(&run.kind);
    let mut out = String::new();
    family(
        &mut out,
        "chaos_experiment_status",
        "Outcome of the drill's last run: 1 for its status, 0 for the others.",
    );
    // One series per final status: a bounded label set.
    for status in RunStatus::ALL.into_iter().filter(|s| s.is_final()) {
        let value = u8::from(run.status == status);
        let _ = writeln!(
            out,
            "chaos_experiment_status{{experiment_type=\"{kind}\",status=\"{status}\"}} {value}"
        );
    }
    if let (Some(started), Some(ended)) = (run.started, run.ended) {
        family(
            &mut out,
            "chaos_experiment_duration_seconds",
            "How long the drill's last run took, from start to end.",
        );
        let seconds = (ended - started).num_milliseconds() as f64 / 1000.0;
        let _ = writeln!(
            out,
            "chaos_experiment_duration_seconds{{experiment_type=\"{kind}\"}} {seconds}"
        );
    }
    let finished = run.ended.unwrap_or(run.scheduled).timestamp();
    family(
        &mut out,
        "firedrill_run_last_timestamp_seconds",
        "When the drill's last run ended, in seconds since the epoch.",
    );
    let _ = writeln!(out, "firedrill_run_last_timestamp_seconds {finished}");
    let last_success = match run.status {
        RunStatus::Passed => Some(finished),
        _ => last_success.map(|t| t.timestamp()),
    };
    if let Some(at) = last_success {
        family(
            &mut out,
            "firedrill_run_last_success_timestamp_seconds",
            "When the drill last passed, in seconds since the epoch.",
        );
        let _ = writeln!(out, "firedrill_run_last_success_timestamp_seconds {at}");
    }
    let m = &run.measurements;
    let c = run.criteria();
    let gauges = [
        (
            "firedrill_rto_seconds",
            "Recovery time measured by the drill's last run.",
            m.rto_seconds,
        ),
        (
            "firedrill_rto_target_seconds",
            "The recovery time objective the drill's last run was judged against.",
            c.rto_seconds,
        ),
        (
            "firedrill_rpo_seconds",
            "Data loss measured by the drill's last run (acknowledged writes lost, in seconds).",
            m.rpo_seconds,
        ),
        (
            "firedrill_rpo_target_seconds",
            "The recovery point objective the drill's last run was judged against.",
            c.rpo_seconds,
        ),
        (
            "firedrill_availability_ratio",
            "Share of steady-state probes answered as expected during the drill's last run.",
            m.availability,
        ),
        (
            "firedrill_availability_target_ratio",
            "The availability the drill's last run had to keep.",
            c.availability,
        ),
        (
            "firedrill_rollback_failed",
            "1 if the last run's revert left something undone (its ledger stays open), else 0.",
            Some(f64::from(u8::from(run.rollback_failed()))),
        ),
        (
            "firedrill_safety_violation",
            "1 if one of the drill's abort conditions was breached during the last run, else 0.",
            Some(f64::from(u8::from(run.safety_violated()))),
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            family(&mut out, name, help);
            let _ = writeln!(out, "{name} {value}");
        }
    }
    let quantiles = [
        ("0.5", m.latency_p50_seconds),
        ("0.95", m.latency_p95_seconds),
        ("0.99", m.latency_p99_seconds),
    ];
    if quantiles.iter().any(|(_, v)| v.is_some()) {
        family(
            &mut out,
            "firedrill_latency_seconds",
            "Steady-state probe latency quantiles during the drill's last run.",
        );
        for (q, v) in quantiles {
            if let Some(v) = v {
                let _ = writeln!(out, "firedrill_latency_seconds{{quantile=\"{q}\"}} {v}");
            }
        }
    }
    out
}

/// How hard to try before giving up on a push.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub attempts: usize,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// The whole push, retries included, ends after this long: metrics never hold up a run's
    /// exit (the record is already kept by then).
    pub budget: Duration,
}

impl Retry {
    /// Rides out a blip (a Pushgateway restarting), never more than 15 seconds.
    pub const BOUNDED: Retry = Retry {
        attempts: 6,
        first_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(4),
        budget: Duration::from_secs(15),
    };
}

/// Why a run's metrics were not pushed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{base} cannot be a Pushgateway URL")]
    NotABase { base: url::Url },
    #[error("Pushgateway at {base} is unreachable: {source}")]
    Unreachable {
        base: url::Url,
        #[source]
        source: reqwest::Error,
    },
    /// The Pushgateway answered with an error status; `body` is what it said, trimmed.
    #[error("Pushgateway at {base} answered {status}: {body}")]
    Refused {
        base: url::Url,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("Pushgateway at {base}: gave up after {budget:?}")]
    GaveUp { base: url::Url, budget: Duration },
    #[error("not pushed: the process is stopping")]
    Stopping,
    #[error("not pushed: a signal ended the retries")]
    Signalled,
}

/// Pushes one run's metrics within the retry's budget; `stop` turning true (a signal) ends the
/// retries at once. An error is returned for logging; it never fails the drill.
pub async fn push(
    client: &reqwest::Client,
    base: &url::Url,
    run: &RunRecord,
    last_success: Option<DateTime<Utc>>,
    retry: Retry,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), PushError> {
    let url = group_url(base, &run.cluster, &run.drill)?;
    let body = render(run, last_success);
    let attempt = || async {
        let response = client
            .put(url.clone())
            .header("Content-Type", "text/plain; version=0.0.4")
            .body(body.clone())
            .timeout(retry.budget.min(Duration::from_secs(5)))
            .send()
            .await
            .map_err(|source| PushError::Unreachable {
                base: base.clone(),
                source,
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = response.text().await.unwrap_or_default();
            Err(PushError::Refused {
                base: base.clone(),
                status,
                body: text.trim().to_owned(),
            })
        }
    };
    let pushed = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(retry.first_delay)
                .with_max_delay(retry.max_delay)
                .with_max_times(retry.attempts.saturating_sub(1)),
        )
        .notify(|e, after| tracing::warn!(drill = %run.drill, error = %e, retry_in = ?after, "push failed"));
    if *stop.borrow_and_update() {
        return Err(PushError::Stopping);
    }
    tokio::select! {
        result = tokio::time::timeout(retry.budget, pushed) => result.unwrap_or_else(|_| {
            Err(PushError::GaveUp {
                base: base.clone(),
                budget: retry.budget,
            })
        }),
        () = stopping(&mut stop) => Err(PushError::Signalled),
    }
}

/// Resolves when `stop` turns true; never when nobody can send it any more.
pub async fn stopping(stop: &mut tokio::sync::watch::Receiver<bool>) {
    if stop.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// `<base>/metrics/job/firedrill/cluster/<cluster>/drill/<name>`.
pub fn group_url(base: &url::Url, cluster: &str, drill: &str) -> Result<url::Url, PushError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| PushError::NotABase { base: base.clone() })?
        .pop_if_empty()
        .extend([
            "metrics",
            "job",
            "firedrill",
            "cluster",
            cluster,
            "drill",
            drill,
        ]);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Measurements;

    #[test]
    fn text_format_has_the_contracted_names() {
        let t = |s: &str| s.parse().unwrap();
        let run = RunRecord {
            cluster: "default".into(),
            id: "probe-1".into(),
            drill: "probe".into(),
            kind: "probe".into(),
            scheduled: t("2027-01-15T15:00:00Z"),
            started: Some(t("2027-01-15T15:00:01Z")),
            ended: Some(t("2027-01-15T15:01:01.5Z")),
            status: RunStatus::Passed,
            reason: None,
            targets: Vec::new(),
            measurements: Measurements {
                availability: Some(0.995),
                latency_p50_seconds: Some(0.02),
                latency_p95_seconds: Some(0.1),
                latency_p99_seconds: Some(0.3),
                ..Measurements::default()
            },
            evidence: Box::new(crate::run::Evidence {
                criteria: Some(crate::run::Criteria {
                    availability: Some(0.99),
                    rto_seconds: Some(60.0),
                    ..crate::run::Criteria::default()
                }),
                ..crate::run::Evidence::new()
            }),
        };
        let text = render(&run, None);
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "chaos_experiment_status{experiment_type=\"probe\",status=\"passed\"} 1",
                "chaos_experiment_status{experiment_type=\"probe\",status=\"failed\"} 0",
                "chaos_experiment_status{experiment_type=\"probe\",status=\"aborted\"} 0",
                "chaos_experiment_status{experiment_type=\"probe\",status=\"blocked\"} 0",
                "chaos_experiment_status{experiment_type=\"probe\",status=\"dry-run\"} 0",
                "chaos_experiment_status{experiment_type=\"probe\",status=\"missed\"} 0",
                "chaos_experiment_status{experiment_type=\"probe\",status=\"skipped\"} 0",
                "chaos_experiment_status{experiment_type=\"probe\",status=\"error\"} 0",
                "chaos_experiment_status{experiment_type=\"probe\",status=\"ineffective\"} 0",
                "chaos_experiment_duration_seconds{experiment_type=\"probe\"} 60.5",
                "firedrill_run_last_timestamp_seconds 1800025261",
                "firedrill_run_last_success_timestamp_seconds 1800025261",
                "firedrill_rto_target_seconds 60",
                "firedrill_availability_ratio 0.995",
                "firedrill_availability_target_ratio 0.99",
                "firedrill_rollback_failed 0",
                "firedrill_safety_violation 0",
                "firedrill_latency_seconds{quantile=\"0.5\"} 0.02",
                "firedrill_latency_seconds{quantile=\"0.95\"} 0.1",
                "firedrill_latency_seconds{quantile=\"0.99\"} 0.3",
            ]
        );
        let base: url::Url = "http://pushgateway.monitoring.svc:9091/".parse().unwrap();
        assert_eq!(
            group_url(&base, "eu-1", "probe").unwrap().as_str(),
            "http://pushgateway.monitoring.svc:9091/metrics/job/firedrill/cluster/eu-1/drill/probe"
        );
    }
}
