//! Steady-state sampling: availability and latency percentiles of an HTTP endpoint while a drill
//! runs, as the disruption suite of seed 003 measures a service under disruption.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::check::Endpoints;
use super::SteadyProbe;

/// When the process started (`main` sets it), for the "first probe" timing the executor logs.
pub static PROCESS_STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Raw results of one probe.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Samples {
    /// Requests sent.
    pub sent: u64,
    /// Answers whose status was in `expect`.
    pub available: u64,
    /// How long each answered request took (any status); requests that got no answer have none.
    pub latencies: Vec<Duration>,
}

/// What the samples say.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub requests: u64,
    /// `available / sent`, in 0..=1; `None` when nothing was sent.
    pub availability: Option<f64>,
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
    pub p99: Option<Duration>,
}

impl Samples {
    /// Nearest-rank percentile: the smallest latency at or above `q` of the answers.
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = (q * sorted.len() as f64).ceil() as usize;
        sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
    }

    pub fn measure(&self) -> Measurement {
        Measurement {
            requests: self.sent,
            availability: (self.sent > 0).then(|| self.available as f64 / self.sent as f64),
            p50: self.percentile(0.50),
            p95: self.percentile(0.95),
            p99: self.percentile(0.99),
        }
    }
}

/// Sends a request every `probe.every` for `duration` (at a fixed rate: a slow answer does not
/// delay the next request), or until `stop` turns true, then waits for the answers in flight.
pub async fn sample(
    probe: &SteadyProbe,
    endpoints: &Endpoints,
    duration: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Samples {
    let mut ticks = tokio::time::interval(probe.every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let end = Instant::now() + duration;
    let mut in_flight = JoinSet::new();
    let mut samples = Samples::default();
    loop {
        if *stop.borrow() {
            break;
        }
        let tick = tokio::select! {
            tick = ticks.tick() => tick,
            _ = stop.changed() => break,
        };
        if tick >= end {
            break;
        }
        if samples.sent == 0 {
            if let Some(started) = PROCESS_STARTED.get() {
                tracing::info!(url = %probe.url, since_process_start_ms = started.elapsed().as_millis() as u64, "first probe");
            }
        }
        samples.sent += 1;
        let (url, timeout, endpoints) = (probe.url.clone(), probe.timeout, endpoints.clone());
        in_flight.spawn(async move { endpoints.get_status(&url, timeout).await });
        // Collect what has finished, so memory stays bounded on long drills.
        while let Some(Ok(result)) = in_flight.try_join_next() {
            record(&mut samples, probe, result);
        }
    }
    while let Some(joined) = in_flight.join_next().await {
        if let Ok(result) = joined {
            record(&mut samples, probe, result);
        }
    }
    samples
}

fn record(
    samples: &mut Samples,
    probe: &SteadyProbe,
    result: Result<(u16, Duration), super::NoAnswer>,
) {
    if let Ok((status, took)) = result {
        if probe.expect.contains(status) {
            samples.available += 1;
        }
        samples.latencies.push(took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples = Samples {
            sent: 10,
            available: 9,
            latencies: (1..=10)
                .rev()
                .map(|ms| Duration::from_millis(ms * 10))
                .collect(),
        };
        let m = samples.measure();
        assert_eq!(m.availability, Some(0.9));
        assert_eq!(m.p50, Some(Duration::from_millis(50)));
        assert_eq!(m.p95, Some(Duration::from_millis(100)));
        assert_eq!(m.p99, Some(Duration::from_millis(100)));
        assert_eq!(Samples::default().measure().availability, None);
        assert_eq!(Samples::default().percentile(0.5), None);
    }
}
