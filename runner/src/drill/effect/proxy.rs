//! dependency `http-fault`: whether the fault proxy the Service was pointed at faulted what it
//! answered, told by its own counts (`firedrill fault-proxy --metrics`), read from each of its
//! pods at its IP and the port named [`PROXY_METRICS_PORT_NAME`] and added up.
//!
//! Seen when, over at least [`ENOUGH`] requests, it faulted some (failed, reset or delayed: more
//! than none) in proportion to the shares it was given, within [`SIGMAS`] standard deviations of
//! the binomial count and a request or two in flight. Not seen while it answered nothing (no client reached it through
//! the Service) or faulted nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use firedrill_experiments::dependency::{PROXY_LABEL, PROXY_METRICS_PORT_NAME};
use k8s_openapi::api::core::v1::Pod;

use super::Look;

/// How far a count may stray from its share before it is not the proxy's doing.
const SIGMAS: f64 = 4.0;
/// Requests in flight between one counter and the next when they were read.
const IN_FLIGHT: f64 = 2.0;
/// Fewer requests than this cannot show a share: the proxy is looked at again.
const ENOUGH: u64 = 20;
/// How long one pod's `/metrics` may take to answer.
const READ_WITHIN: Duration = Duration::from_secs(5);

/// The proxy's counts, added up over its pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub requests: u64,
    pub answered: u64,
    pub failed: u64,
    pub reset: u64,
    pub delayed: u64,
}

/// What the proxy was told to do: shares in hundredths of a percent.
#[derive(Clone, Copy, Debug)]
pub(super) struct Shares {
    pub errors: u32,
    pub reset: u32,
    pub delayed: bool,
}

/// Why the proxy's counts could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unread {
    #[error("no pod of the fault proxy is left")]
    NoPod,
    #[error("the fault proxy's counts could not be read ({}; its namespace's NetworkPolicies must let the drill Job reach port {PROXY_METRICS_PORT_NAME} of its pods)", .0.join("; "))]
    Pods(Vec<String>),
    #[error("cannot make an HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Why one pod's counts are not usable.
#[derive(Debug, thiserror::Error)]
pub(super) enum BadAnswer {
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    #[error("answered {0}")]
    Status(reqwest::StatusCode),
    #[error("no {0} in its answer")]
    Missing(String),
}

/// Reads the counts of every pod of the proxy of `run` among `pods`. `Err`: none could be read
/// (each pod's reason said).
pub(super) async fn read(pods: &[Pod], run: &str) -> Result<(Counts, usize), Unread> {
    let mine: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(PROXY_LABEL))
                .is_some_and(|v| v == run)
        })
        .collect();
    if mine.is_empty() {
        return Err(Unread::NoPod);
    }
    crate::drill::gate::install_tls_provider();
    let client = reqwest::Client::builder().timeout(READ_WITHIN).build()?;
    let mut total = Counts::default();
    let (mut read, mut problems) = (0, Vec::new());
    for pod in mine {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(url) = metrics_url(pod) else {
            problems.push(format!(
                "{name}: no IP or no port named {PROXY_METRICS_PORT_NAME} yet"
            ));
            continue;
        };
        match fetch(&client, &url).await {
            Ok(counts) => {
                read += 1;
                total.requests += counts.requests;
                total.answered += counts.answered;
                total.failed += counts.failed;
                total.reset += counts.reset;
                total.delayed += counts.delayed;
            }
            Err(e) => problems.push(format!("{name}: GET {url}: {e}")),
        }
    }
    match read {
        0 => Err(Unread::Pods(problems)),
        _ => Ok((total, read)),
    }
}

/// `http://IP:PORT/metrics` of a proxy pod.
fn metrics_url(pod: &Pod) -> Option<String> {
    let ip = pod.status.as_ref()?.pod_ip.as_deref()?;
    let port = pod
        .spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(PROXY_METRICS_PORT_NAME))?
        .container_port;
    let host = match ip.contains(':') {
        true => format!("[{ip}]"),
        false => ip.to_owned(),
    };
    Some(format!("http://{host}:{port}/metrics"))
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<Counts, BadAnswer> {
    let response = client.get(url).send().await?;
    let status = response.status();
    if !status.is_success() {
        return Err(BadAnswer::Status(status));
    }
    parse(&response.text().await?)
}

/// The counters of the Prometheus text `text`; every one must be there.
pub(super) fn parse(text: &str) -> Result<Counts, BadAnswer> {
    let values: BTreeMap<&str, u64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            let value: f64 = value.split_whitespace().next()?.parse().ok()?;
            Some((name, value.max(0.0) as u64))
        })
        .collect();
    let get = |name: &str| {
        let name = format!("firedrill_fault_proxy_{name}_total");
        values
            .get(name.as_str())
            .copied()
            .ok_or(BadAnswer::Missing(name))
    };
    Ok(Counts {
        requests: get("requests")?,
        answered: get("answered")?,
        failed: get("failed")?,
        reset: get("reset")?,
        delayed: get("delayed")?,
    })
}

/// Whether `counts` show the fault: what was seen, or what was seen instead.
pub(super) fn judge(counts: Counts, shares: Shares, pods: usize) -> Look {
    let n = counts.requests;
    let said = format!(
        "the fault proxy ({pods} pod{}) took {n} requests: answered {}, failed {} ({}; {} configured), reset {} ({}; {} configured), delayed {}{}",
        if pods == 1 { "" } else { "s" },
        counts.answered,
        counts.failed,
        share_of(counts.failed, n),
        firedrill_experiments::percent(shares.errors),
        counts.reset,
        share_of(counts.reset, n),
        firedrill_experiments::percent(shares.reset),
        counts.delayed,
        if shares.delayed { " (every request passed on is delayed)" } else { "" },
    );
    if n == 0 {
        return Look::Not(
            "the fault proxy took no request: nothing reached it through the Service".to_owned(),
        );
    }
    if n < ENOUGH {
        return Look::Not(format!(
            "{said}: too few to judge its shares by (fewer than {ENOUGH})"
        ));
    }
    let faulted = counts.failed + counts.reset + if shares.delayed { counts.delayed } else { 0 };
    if faulted == 0 {
        return Look::Not(format!("{said}: it faulted none"));
    }
    let mut off = Vec::new();
    for (what, count, share) in [
        ("failed", counts.failed, shares.errors),
        ("reset", counts.reset, shares.reset),
    ] {
        if !within(count, n, f64::from(share) / 10_000.0) {
            off.push(what);
        }
    }
    // Every request not failed or reset is held for the delay before it is passed on.
    let passed = n.saturating_sub(counts.failed + counts.reset);
    let delayed_off = match shares.delayed {
        true => (counts.delayed as f64 - passed as f64).abs() > IN_FLIGHT,
        false => counts.delayed > 0,
    };
    if delayed_off {
        off.push("delayed");
    }
    match off.is_empty() {
        true => Look::Seen(said),
        false => Look::Not(format!(
            "{said}: {} not in proportion to the configured shares",
            off.join(", ")
        )),
    }
}

/// Whether `count` of `n` is what a share `p` gives, within [`SIGMAS`] and what is in flight.
fn within(count: u64, n: u64, p: f64) -> bool {
    let (n, count) = (n as f64, count as f64);
    let sigma = (n * p * (1.0 - p)).sqrt();
    (count - n * p).abs() <= SIGMAS * sigma + IN_FLIGHT
}

fn share_of(count: u64, n: u64) -> String {
    match n {
        0 => "-".to_owned(),
        n => format!("{:.1}%", count as f64 * 100.0 / n as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(requests: u64, failed: u64, reset: u64, delayed: u64) -> Counts {
        Counts {
            requests,
            answered: requests - reset,
            failed,
            reset,
            delayed,
        }
    }

    const SHARES: Shares = Shares {
        errors: 1500,
        reset: 500,
        delayed: true,
    };

    #[test]
    fn faulted_answers_in_proportion_are_the_fault() {
        assert!(matches!(
            judge(counts(1000, 148, 52, 800), SHARES, 2),
            Look::Seen(_)
        ));
    }

    #[test]
    fn nothing_answered_or_nothing_faulted_is_not() {
        let Look::Not(why) = judge(Counts::default(), SHARES, 2) else {
            panic!()
        };
        assert!(why.contains("took no request"), "{why}");
        let Look::Not(why) = judge(counts(200, 0, 0, 0), SHARES, 2) else {
            panic!()
        };
        assert!(why.contains("faulted none"), "{why}");
    }

    #[test]
    fn counts_out_of_proportion_are_not() {
        // A tenth failed where 15% were asked for, over 1000 requests: 5 sigma off.
        let Look::Not(why) = judge(counts(1000, 95, 50, 855), SHARES, 1) else {
            panic!()
        };
        assert!(why.contains("failed not in proportion"), "{why}");
        // Passed on without the delay.
        let Look::Not(why) = judge(counts(1000, 150, 50, 10), SHARES, 1) else {
            panic!()
        };
        assert!(why.contains("delayed not in proportion"), "{why}");
    }

    #[test]
    fn the_text_format_is_read_strictly() {
        let text = "# HELP x\nfiredrill_fault_proxy_requests_total 10\nfiredrill_fault_proxy_answered_total 9\nfiredrill_fault_proxy_failed_total 2\nfiredrill_fault_proxy_reset_total 1\nfiredrill_fault_proxy_delayed_total 7\n# EOF\n";
        assert_eq!(parse(text).unwrap(), counts(10, 2, 1, 7));
        let missing = parse("firedrill_fault_proxy_requests_total 10\n").unwrap_err();
        assert!(missing.to_string().contains("answered"), "{missing}");
    }
}
