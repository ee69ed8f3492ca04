//! Evaluating one check against HTTP, Prometheus or Alertmanager.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Check, StatusRange};

/// Where checks go, and the HTTP client they share.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub prometheus: Option<url::Url>,
    pub alertmanager: Option<url::Url>,
    client: reqwest::Client,
}

/// The result of one evaluation, with a reason a person can act on.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Pass(String),
    Fail(String),
}

impl Outcome {
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Pass(_))
    }

    pub fn text(&self) -> &str {
        match self {
            Outcome::Pass(t) | Outcome::Fail(t) => t,
        }
    }
}

/// Installs the process-wide TLS provider once (ring; the build has no other).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Endpoints {
    pub fn new(prometheus: Option<url::Url>, alertmanager: Option<url::Url>) -> Self {
        install_tls_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("firedrill/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        Endpoints {
            prometheus,
            alertmanager,
            client,
        }
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// GET `url` on `service` (for messages) at `base`; a failure to get any answer says so.
    async fn fetch(
        &self,
        service: &'static str,
        base: &url::Url,
        url: url::Url,
        timeout: Duration,
    ) -> Result<reqwest::Response, QueryError> {
        self.client
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| QueryError::Unreachable {
                service,
                base: base.clone(),
                why: NoAnswer::new(e, timeout),
            })
    }

    /// GET `url` and return its status and how long the answer took.
    pub async fn get_status(
        &self,
        url: &url::Url,
        timeout: Duration,
    ) -> Result<(u16, Duration), NoAnswer> {
        let started = Instant::now();
        match self.client.get(url.clone()).timeout(timeout).send().await {
            Ok(response) => Ok((response.status().as_u16(), started.elapsed())),
            Err(e) => Err(NoAnswer::new(e, timeout)),
        }
    }
}

/// A request that got no answer, said plainly: timeout, refused, DNS, TLS.
#[derive(Debug, thiserror::Error)]
pub enum NoAnswer {
    #[error("no answer within {}", firedrill_reader::duration::format(*.0))]
    Timeout(Duration),
    /// Shown with every cause in its chain ("connection refused" is often the last).
    #[error("{}", chain(.0))]
    Failed(reqwest::Error),
}

impl NoAnswer {
    fn new(e: reqwest::Error, timeout: Duration) -> Self {
        if e.is_timeout() {
            NoAnswer::Timeout(timeout)
        } else {
            NoAnswer::Failed(e)
        }
    }
}

fn chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Why Prometheus or Alertmanager gave no usable answer to a gate.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("bad {service} URL {base}: {source}")]
    BadUrl {
        service: &'static str,
        base: url::Url,
        #[source]
        source: url::ParseError,
    },
    #[error("{service} at {base} is unreachable: {why}")]
    Unreachable {
        service: &'static str,
        base: url::Url,
        why: NoAnswer,
    },
    /// The answer was not JSON; Prometheus's messages name its status, Alertmanager's do not.
    #[error("{service} at {base} answered {}with no JSON: {source}", .status.map(|s| format!("{s} ")).unwrap_or_default())]
    NoJson {
        service: &'static str,
        base: url::Url,
        status: Option<reqwest::StatusCode>,
        #[source]
        source: reqwest::Error,
    },
    #[error("Prometheus rejected the query ({kind}: {reason})")]
    Rejected { kind: String, reason: String },
    #[error("Prometheus answered an unreadable sample: {0}")]
    UnreadableSample(Value),
    #[error("the query returns a {0} result; use an instant vector or scalar expression")]
    ResultType(String),
    #[error("Alertmanager at {base} answered {status}: {body}")]
    Refused {
        base: url::Url,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("Alertmanager at {base} answered something other than a list of alerts")]
    NotAList { base: url::Url },
}

pub async fn evaluate(check: &Check, endpoints: &Endpoints) -> Outcome {
    match check {
        Check::Http {
            url,
            expect,
            timeout,
        } => http(endpoints, url, *expect, *timeout).await,
        Check::Promql {
            query,
            min,
            max,
            timeout,
        } => promql(endpoints, query, *min, *max, *timeout).await,
        Check::Alerts { labels, timeout } => alerts(endpoints, labels, *timeout).await,
    }
}

async fn http(
    endpoints: &Endpoints,
    url: &url::Url,
    expect: StatusRange,
    timeout: Duration,
) -> Outcome {
    match endpoints.get_status(url, timeout).await {
        Ok((status, took)) if expect.contains(status) => Outcome::Pass(format!(
            "GET {url} answered {status} in {}ms",
            took.as_millis()
        )),
        Ok((status, _)) => {
            Outcome::Fail(format!("GET {url} answered {status} (expected {expect})"))
        }
        Err(e) => Outcome::Fail(format!("GET {url} failed: {e}")),
    }
}

/// An instant query. Every sample must lie in `[min, max]`; no sample at all is a failure.
async fn promql(
    endpoints: &Endpoints,
    query: &str,
    min: Option<f64>,
    max: Option<f64>,
    timeout: Duration,
) -> Outcome {
    let Some(base) = &endpoints.prometheus else {
        return Outcome::Fail(format!(
            "cannot run `{query}`: no `prometheus:` URL is configured"
        ));
    };
    let samples = match query_prometheus(endpoints, base, query, timeout).await {
        Ok(samples) => samples,
        Err(e) => return Outcome::Fail(format!("`{query}`: {e}")),
    };
    if samples.is_empty() {
        return Outcome::Fail(format!(
            "`{query}` returned nothing (no series match; fail safe)"
        ));
    }
    let shown = samples
        .iter()
        .map(|v| format_number(*v))
        .collect::<Vec<_>>()
        .join(", ");
    for v in &samples {
        if v.is_nan() {
            return Outcome::Fail(format!("`{query}` = NaN (no data to judge by; fail safe)"));
        }
        if let Some(min) = min.filter(|m| v < m) {
            return Outcome::Fail(format!(
                "`{query}` = {shown}, below the minimum {}",
                format_number(min)
            ));
        }
        if let Some(max) = max.filter(|m| v > m) {
            return Outcome::Fail(format!(
                "`{query}` = {shown}, above the maximum {}",
                format_number(max)
            ));
        }
    }
    Outcome::Pass(format!("`{query}` = {shown}"))
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The values of an instant query's result (vector or scalar).
pub async fn query_prometheus(
    endpoints: &Endpoints,
    base: &url::Url,
    query: &str,
    timeout: Duration,
) -> Result<Vec<f64>, QueryError> {
    let mut url = base
        .join("api/v1/query")
        .map_err(|source| QueryError::BadUrl {
            service: "Prometheus",
            base: base.clone(),
            source,
        })?;
    url.query_pairs_mut().append_pair("query", query);
    let response = endpoints.fetch("Prometheus", base, url, timeout).await?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|source| QueryError::NoJson {
        service: "Prometheus",
        base: base.clone(),
        status: Some(status),
        source,
    })?;
    if body["status"] != "success" {
        return Err(QueryError::Rejected {
            kind: body["errorType"].as_str().unwrap_or("error").to_owned(),
            reason: body["error"]
                .as_str()
                .unwrap_or("no reason given")
                .to_owned(),
        });
    }
    let value_of = |pair: &Value| -> Result<f64, QueryError> {
        pair.get(1)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| QueryError::UnreadableSample(pair.clone()))
    };
    match body["data"]["resultType"].as_str() {
        Some("vector") => body["data"]["result"]
            .as_array()
            .map(|series| series.iter().map(|s| value_of(&s["value"])).collect())
            .unwrap_or_else(|| Ok(Vec::new())),
        Some("scalar") => value_of(&body["data"]["result"]).map(|v| vec![v]),
        other => Err(QueryError::ResultType(
            other.unwrap_or("unknown").to_owned(),
        )),
    }
}

/// Firing alerts carrying all `labels` (active, not silenced, not inhibited).
async fn alerts(endpoints: &Endpoints, labels: &[(String, String)], timeout: Duration) -> Outcome {
    let wanted = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let Some(base) = &endpoints.alertmanager else {
        return Outcome::Fail(format!(
            "cannot check alerts {{{wanted}}}: no `alertmanager:` URL is configured"
        ));
    };
    match firing_alerts(endpoints, base, labels, timeout).await {
        Ok(names) if names.is_empty() => {
            Outcome::Pass(format!("no alert firing with {{{wanted}}}"))
        }
        Ok(names) => Outcome::Fail(format!(
            "alert{} firing with {{{wanted}}}: {}",
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        )),
        Err(e) => Outcome::Fail(e.to_string()),
    }
}

async fn firing_alerts(
    endpoints: &Endpoints,
    base: &url::Url,
    labels: &[(String, String)],
    timeout: Duration,
) -> Result<Vec<String>, QueryError> {
    let mut url = base
        .join("api/v2/alerts")
        .map_err(|source| QueryError::BadUrl {
            service: "Alertmanager",
            base: base.clone(),
            source,
        })?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("active", "true")
            .append_pair("silenced", "false")
            .append_pair("inhibited", "false");
        for (k, v) in labels {
            let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
            query.append_pair("filter", &format!("{k}=\"{escaped}\""));
        }
    }
    let response = endpoints.fetch("Alertmanager", base, url, timeout).await?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(QueryError::Refused {
            base: base.clone(),
            status,
            body: body.trim().to_owned(),
        });
    }
    let alerts: Value = response.json().await.map_err(|source| QueryError::NoJson {
        service: "Alertmanager",
        base: base.clone(),
        status: None,
        source,
    })?;
    let alerts = alerts
        .as_array()
        .ok_or_else(|| QueryError::NotAList { base: base.clone() })?;
    let mut names: Vec<String> = alerts
        .iter()
        // The filters already apply; checking again guards against a server that ignores them.
        .filter(|a| {
            labels
                .iter()
                .all(|(k, v)| a["labels"][k].as_str() == Some(v))
        })
        .map(|a| {
            a["labels"]["alertname"]
                .as_str()
                .unwrap_or("(unnamed)")
                .to_owned()
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}
