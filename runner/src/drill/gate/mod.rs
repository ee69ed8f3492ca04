//! Gates and watches around a drill: preflight checks that must all pass before anything is
//! injected, abort conditions watched while the fault is in place, and steady-state sampling of
//! availability and latency.
//!
//! Fail safe (ARCHITECTURE.md, principle 4): a Prometheus or Alertmanager that cannot be reached, a query
//! that errors or returns nothing, an HTTP check that times out — each counts as a failed gate or
//! a breach, and the reason says which.

mod check;
mod steady;
mod watch;

use std::time::Duration;

pub use check::{
    evaluate, install_tls_provider, query_prometheus, Endpoints, NoAnswer, Outcome, QueryError,
};
pub use steady::{sample, Measurement, Samples, PROCESS_STARTED};
pub use watch::{preflight, watch, GateResult, WatchResult};

/// Accepted HTTP status codes, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange {
    pub low: u16,
    pub high: u16,
}

impl StatusRange {
    pub const SUCCESS: StatusRange = StatusRange {
        low: 200,
        high: 299,
    };

    pub fn contains(self, status: u16) -> bool {
        (self.low..=self.high).contains(&status)
    }

    /// `200` or `"200-299"`.
    pub fn parse(text: &str) -> Result<Self, StatusRangeError> {
        let bad = || StatusRangeError::NotStatus(text.to_owned());
        let (low, high) = text.split_once('-').unwrap_or((text, text));
        let code = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
        };
        let (low, high) = (code(low).ok_or_else(bad)?, code(high).ok_or_else(bad)?);
        if low > high {
            return Err(StatusRangeError::Backwards(text.to_owned()));
        }
        Ok(StatusRange { low, high })
    }
}

/// Why an expected status (`expect:`) is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatusRangeError {
    #[error("{0:?} is not an HTTP status or range (write e.g. 200 or \"200-299\")")]
    NotStatus(String),
    #[error("{0:?} runs backwards; write the lower status first")]
    Backwards(String),
}

impl std::fmt::Display for StatusRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

/// One thing to look at.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// GET `url`; the answer's status must be in `expect`.
    Http {
        url: url::Url,
        expect: StatusRange,
        timeout: Duration,
    },
    /// An instant PromQL query; every sample must lie within `[min, max]`.
    Promql {
        query: String,
        min: Option<f64>,
        max: Option<f64>,
        timeout: Duration,
    },
    /// No alert may be firing (active, not silenced, not inhibited) with all these labels.
    Alerts {
        labels: Vec<(String, String)>,
        timeout: Duration,
    },
}

/// An abort condition: `check` failing is a breach once it has failed for `for_` (PromQL and
/// alerts) or `failures` times in a row (HTTP). Evaluated every `interval`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub check: Check,
    pub for_: Duration,
    pub failures: u32,
    pub interval: Duration,
}

/// What a run must show to pass, judged on its steady-state measurements.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Success {
    pub availability: Option<firedrill_safety::Percent>,
    /// `availability` was not written: it is [`Success::DEFAULT_AVAILABILITY`].
    pub availability_by_default: bool,
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
    pub p99: Option<Duration>,
    /// Recovery: from the first fault until every affected workload is back to its desired ready
    /// replicas. Judged for kinds that change something.
    pub rto: Option<Duration>,
    /// Data loss: acknowledged writes the failover lost, measured by data markers (region
    /// failover).
    pub rpo: Option<Duration>,
}

impl Success {
    /// Steady state must hold: without `success.availability`, a drill with steady-state probes
    /// must keep 95% of probe requests answered as expected, or it fails. A run whose probes all
    /// failed never passes because nobody wrote a criterion.
    pub const DEFAULT_AVAILABILITY: u32 = 9_500;

    pub fn is_empty(&self) -> bool {
        *self == Success::default()
    }

    /// Applies the default availability floor when none was written.
    pub fn with_default_availability(mut self) -> Self {
        if self.availability.is_none() {
            self.availability =
                firedrill_safety::Percent::from_hundredths(Self::DEFAULT_AVAILABILITY);
            self.availability_by_default = true;
        }
        self
    }

    /// Every criterion that the measurement misses, said plainly; empty when all hold. A
    /// criterion with nothing measured to judge it by is missed (fail safe).
    pub fn misses(&self, m: &Measurement) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(want) = self.availability {
            match m.availability {
                Some(got) if got >= want.as_fraction() => {}
                Some(got) => out.push(format!(
                    "availability {:.2}% is below {want}{}",
                    got * 100.0,
                    if self.availability_by_default {
                        " (the default; set success.availability to change it)"
                    } else {
                        ""
                    }
                )),
                None => out.push(format!("availability was not measured (required {want})")),
            }
        }
        for (name, want, got) in [
            ("p50", self.p50, m.p50),
            ("p95", self.p95, m.p95),
            ("p99", self.p99, m.p99),
        ] {
            let Some(want) = want else { continue };
            match got {
                Some(got) if got <= want => {}
                Some(got) => out.push(format!(
                    "latency {name} {}ms is above {}",
                    got.as_millis(),
                    firedrill_reader::duration::format(want)
                )),
                None => out.push(format!(
                    "latency {name} was not measured (required {})",
                    firedrill_reader::duration::format(want)
                )),
            }
        }
        out
    }
}

/// A steady-state probe: GET `url` every `every`, counting answers in `expect` as available.
#[derive(Clone, Debug, PartialEq)]
pub struct SteadyProbe {
    pub url: url::Url,
    pub every: Duration,
    pub expect: StatusRange,
    pub timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges() {
        assert_eq!(
            StatusRange::parse("200"),
            Ok(StatusRange {
                low: 200,
                high: 200
            })
        );
        assert_eq!(StatusRange::parse("200-299"), Ok(StatusRange::SUCCESS));
        assert!(StatusRange::parse("299-200")
            .unwrap_err()
            .to_string()
            .contains("backwards"));
        assert!(StatusRange::parse("99").is_err());
        assert!(StatusRange::parse("ok").is_err());
        assert!(StatusRange::SUCCESS.contains(204) && !StatusRange::SUCCESS.contains(302));
    }
}
