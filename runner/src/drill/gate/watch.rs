//! Preflight (every gate must pass) and the abort watch (the first breach ends the drill).

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::check::{evaluate, Endpoints, Outcome};
use super::{Check, Condition};

/// One preflight gate and how it went.
#[derive(Clone, Debug, PartialEq)]
pub struct GateResult {
    pub check: String,
    pub outcome: Outcome,
}

/// A short name for a check, for logs and records.
pub fn describe(check: &Check) -> String {
    match check {
        Check::Http { url, .. } => format!("http {url}"),
        Check::Promql { query, .. } => format!("promql `{query}`"),
        Check::Alerts { labels, .. } => format!(
            "alerts {{{}}}",
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// Evaluates every gate at once; the drill may inject only if all passed.
pub async fn preflight(checks: &[Check], endpoints: &Endpoints) -> Vec<GateResult> {
    let mut set = JoinSet::new();
    for (i, check) in checks.iter().enumerate() {
        let (check, endpoints) = (check.clone(), endpoints.clone());
        set.spawn(async move { (i, evaluate(&check, &endpoints).await) });
    }
    let mut results: Vec<Option<Outcome>> = vec![None; checks.len()];
    while let Some(joined) = set.join_next().await {
        if let Ok((i, outcome)) = joined {
            results[i] = Some(outcome);
        }
    }
    checks
        .iter()
        .zip(results)
        .map(|(check, outcome)| GateResult {
            check: describe(check),
            // A gate whose task died did not pass.
            outcome: outcome.unwrap_or_else(|| Outcome::Fail("the check did not complete".into())),
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchResult {
    /// The whole duration passed without a breach.
    Completed,
    /// A condition breached; the fault must be reverted now.
    Breached(String),
}

/// Watches `conditions` for `duration`. Each is evaluated every `interval`; it breaches once it
/// has failed `failures` times in a row for at least `for_`.
pub async fn watch(
    conditions: &[Condition],
    endpoints: &Endpoints,
    duration: Duration,
) -> WatchResult {
    let mut set = JoinSet::new();
    for condition in conditions {
        let (condition, endpoints) = (condition.clone(), endpoints.clone());
        set.spawn(async move { until_breach(&condition, &endpoints).await });
    }
    if set.is_empty() {
        tokio::time::sleep(duration).await;
        return WatchResult::Completed;
    }
    tokio::select! {
        () = tokio::time::sleep(duration) => WatchResult::Completed,
        joined = set.join_next() => match joined {
            Some(Ok(reason)) => WatchResult::Breached(reason),
            // A watcher that died cannot vouch for safety any more.
            Some(Err(e)) => WatchResult::Breached(format!("an abort watcher failed: {e}")),
            None => WatchResult::Completed,
        },
    }
}

async fn until_breach(condition: &Condition, endpoints: &Endpoints) -> String {
    let mut failures: u32 = 0;
    let mut failing_since: Option<Instant> = None;
    loop {
        let started = Instant::now();
        match evaluate(&condition.check, endpoints).await {
            Outcome::Pass(_) => {
                failures = 0;
                failing_since = None;
            }
            Outcome::Fail(reason) => {
                failures += 1;
                let since = *failing_since.get_or_insert(started);
                let lasted = started.duration_since(since);
                if failures >= condition.failures.max(1) && lasted >= condition.for_ {
                    let mut why = reason;
                    if condition.failures > 1 {
                        why.push_str(&format!(" ({failures} times in a row)"));
                    }
                    if !condition.for_.is_zero() {
                        why.push_str(&format!(
                            " (for {}, at least {})",
                            firedrill_reader::duration::format(Duration::from_secs(
                                lasted.as_secs()
                            )),
                            firedrill_reader::duration::format(condition.for_)
                        ));
                    }
                    return why;
                }
            }
        }
        tokio::time::sleep_until(started + condition.interval).await;
    }
}
