//! `firedrill fault-proxy`: an HTTP reverse proxy that fails a share of requests on purpose.
//! The `http-fault` mode of `dependency-failure` deploys it in front of a dependency; run by
//! itself it is the same code.
//!
//! Per request, in this order: a request that has been through this proxy before (its `Via`
//! names it) is answered 508 Loop Detected; a `reset` share of connections is closed with a TCP
//! reset and no answer; an `errors` share is answered with the given status codes; everything
//! else waits `delay` and is passed to the upstream (marked with this proxy's `Via`), streamed
//! both ways. After `until` it only passes on.
//!
//! An upstream that is the proxy's own socket is refused before it starts ([`check_upstream`]).
//! The upstream's password (`http://user:password@...`) is never logged or answered
//! ([`redacted`]). An upstream that does not answer is said once, then counted and summed up
//! at most every [`FAILURES_EVERY`], not logged per request.
//!
//! What it did to requests is counted ([`Counts`]) and served on a port of its own
//! ([`serve_metrics`], `--metrics`): the run reads the counts back to tell whether the fault
//! took effect (ARCHITECTURE.md, principle 10). Not on the proxied port, where `/metrics` is the
//! upstream's.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to requests. Shares are hundredths of a percent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    pub errors: Vec<(u16, u32)>,
    pub delay: Option<Duration>,
    pub reset: u32,
    /// After this instant every request passes unharmed.
    pub until: Option<DateTime<Utc>>,
}

/// `url` as it may be shown: its password, if any, as `***`.
pub fn redacted(url: &url::Url) -> String {
    if url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    // A URL that has a password has a host, so it can have a password set.
    let _ = shown.set_password(Some("***"));
    shown.to_string()
}

/// `text`, a URL as given (perhaps not one at all), as it may be shown: whatever stands between
/// the scheme's `://` and the `@` of the host after a `:` (a password) as `***`.
pub fn redacted_text(text: &str) -> String {
    if let Ok(url) = url::Url::parse(text) {
        if url.password().is_some() {
            return redacted(&url);
        }
    }
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_owned();
    };
    let authority_end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |i| start + i);
    let Some(at) = text[start..authority_end].rfind('@').map(|i| start + i) else {
        return text.to_owned();
    };
    match text[start..at].find(':').map(|i| start + i) {
        Some(colon) => format!("{}:***{}", &text[..colon], &text[at..]),
        None => text.to_owned(),
    }
}

/// Refuses an upstream that is the proxy's own socket: every request it passes on would come
/// back to it, and again (`listen` 0.0.0.0 or `[::]` is every local address; an upstream host
/// is each address its name resolves to, 0.0.0.0 meaning this host).
pub fn check_upstream(listen: SocketAddr, upstream: &url::Url) -> Result<(), OwnAddress> {
    let Some(host) = upstream.host_str() else {
        return Ok(());
    };
    let port = upstream.port_or_known_default().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    // A name that does not resolve here is not this proxy (and says so itself at the first
    // request).
    let Ok(addresses) = (host, port).to_socket_addrs() else {
        return Ok(());
    };
    for address in addresses {
        if same_socket(listen, address) {
            return Err(OwnAddress {
                upstream: redacted(upstream),
                listen,
            });
        }
    }
    Ok(())
}

/// An upstream that is the proxy's own socket; `upstream` as it may be shown (no password).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("--upstream {upstream} is this proxy's own address ({listen}): every request would come back to it; point --upstream at the service the proxy stands in front of")]
pub struct OwnAddress {
    pub upstream: String,
    pub listen: SocketAddr,
}

/// Whether connecting to `to` reaches a socket listening on `listen`.
fn same_socket(listen: SocketAddr, to: SocketAddr) -> bool {
    if listen.port() != to.port() {
        return false;
    }
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let (listen_ip, mut to_ip) = (canonical(listen.ip()), canonical(to.ip()));
    // Connecting to 0.0.0.0 (or ::) connects to this host.
    if to_ip.is_unspecified() {
        to_ip = match to_ip {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
    }
    if listen_ip == to_ip {
        return true;
    }
    let local = |ip: IpAddr| ip.is_loopback() || std::net::UdpSocket::bind((ip, 0)).is_ok();
    match listen_ip {
        // 0.0.0.0 takes every local IPv4 address.
        IpAddr::V4(v4) if v4.is_unspecified() => to_ip.is_ipv4() && local(to_ip),
        // [::] takes every local address (IPv4 too, on a dual-stack socket).
        IpAddr::V6(v6) if v6.is_unspecified() => local(to_ip),
        _ => false,
    }
}

/// How often an upstream that keeps failing is said again, with how many requests failed.
pub const FAILURES_EVERY: Duration = Duration::from_secs(10);

/// An upstream that does not answer: said when it starts, then summed up at most every
/// [`FAILURES_EVERY`] and when it answers again (or the proxy stops), never once per request.
#[derive(Default)]
struct Failures {
    state: Mutex<FailureState>,
}

#[derive(Default)]
struct FailureState {
    /// Since the first failure after the last answer.
    failing: Option<Instant>,
    /// Failures not yet said, since `said`.
    unsaid: u64,
    said: Option<Instant>,
    last_error: String,
}

impl Failures {
    fn failed(&self, upstream: &str, error: &str) {
        let Ok(mut s) = self.state.lock() else { return };
        let now = Instant::now();
        if s.failing.is_none() {
            s.failing = Some(now);
            s.said = Some(now);
            s.unsaid = 0;
            tracing::warn!(%upstream, %error, "fault-proxy: the upstream did not answer; answering 502 (further failures are counted and said every {}s)", FAILURES_EVERY.as_secs());
            return;
        }
        s.unsaid += 1;
        s.last_error = error.to_owned();
        if s.said.is_none_or(|said| now - said >= FAILURES_EVERY) {
            Self::say(&mut s, upstream, now);
        }
    }

    fn say(s: &mut FailureState, upstream: &str, now: Instant) {
        let since = s.said.map_or(0, |said| (now - said).as_secs());
        tracing::warn!(%upstream, failed = s.unsaid, seconds = since, error = %s.last_error, "fault-proxy: the upstream still does not answer: {} more requests answered 502 in {}s", s.unsaid, since);
        s.unsaid = 0;
        s.said = Some(now);
    }

    fn answered(&self, upstream: &str) {
        let Ok(mut s) = self.state.lock() else { return };
        if let Some(since) = s.failing.take() {
            let (unsaid, down) = (s.unsaid, since.elapsed().as_secs());
            s.unsaid = 0;
            tracing::info!(%upstream, failed_unsaid = unsaid, down_seconds = down, "fault-proxy: the upstream answers again");
        }
    }

    /// What is left unsaid, said (when the proxy stops).
    fn flush(&self, upstream: &str) {
        let Ok(mut s) = self.state.lock() else { return };
        if s.failing.is_some() && s.unsaid > 0 {
            Self::say(&mut s, upstream, Instant::now());
        }
    }
}

/// What one request gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Reset,
    Error(u16),
    Pass,
}

/// SplitMix64 over an atomic counter: a fair, lock-free draw per request.
struct Dice(AtomicU64);

impl Dice {
    fn roll(&self) -> u32 {
        (self.roll_u64() % 10_000) as u32
    }

    fn roll_u64(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Faults {
    fn fate(&self, roll: u32, now: DateTime<Utc>) -> Fate {
        if self.until.is_some_and(|until| now >= until) {
            return Fate::Pass;
        }
        let mut edge = self.reset;
        if roll < edge {
            return Fate::Reset;
        }
        for &(code, share) in &self.errors {
            edge += share;
            if roll < edge {
                return Fate::Error(code);
            }
        }
        Fate::Pass
    }
}

/// What the proxy did to requests since it started, as `firedrill_fault_proxy_*_total` counters.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Every request taken.
    requests: Counter,
    /// Every request answered (all but the reset ones): injected errors and the upstream's.
    answered: Counter,
    /// Answered with an injected error status.
    failed: Counter,
    /// Closed with a TCP reset, unanswered.
    reset: Counter,
    /// Held for `--delay` before being passed on.
    delayed: Counter,
}

impl Counts {
    /// The counters, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Counts {
        let counts = Counts::default();
        let families = [
            (
                "firedrill_fault_proxy_requests",
                "Requests the fault proxy took",
                &counts.requests,
            ),
            (
                "firedrill_fault_proxy_answered",
                "Requests it answered (all but the reset ones)",
                &counts.answered,
            ),
            (
                "firedrill_fault_proxy_failed",
                "Requests it answered with an injected error status",
                &counts.failed,
            ),
            (
                "firedrill_fault_proxy_reset",
                "Requests whose connection it reset, unanswered",
                &counts.reset,
            ),
            (
                "firedrill_fault_proxy_delayed",
                "Requests it held for the added delay before passing them on",
                &counts.delayed,
            ),
        ];
        for (name, help, counter) in families {
            registry.register(name, help, counter.clone());
        }
        counts
    }
}

type Body = BoxBody<Bytes, hyper::Error>;

struct Proxy {
    faults: Faults,
    counts: Counts,
    upstream: hyper::Uri,
    /// The upstream as it may be shown.
    shown: String,
    /// The upstream's password, to keep out of anything shown.
    secret: Option<String>,
    /// This proxy's name in the `Via` of what it passes on.
    via: String,
    client: Client<HttpConnector, Incoming>,
    dice: Dice,
    expired_said: AtomicBool,
    failures: Failures,
}

/// A connection that is closed with a TCP reset when its request drew `reset`.
struct Conn {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.reset.load(Ordering::Relaxed) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The reason a reset request ends its connection.
#[derive(Debug)]
struct ResetByFiredrill;

impl std::fmt::Display for ResetByFiredrill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by firedrill fault-proxy")
    }
}

impl std::error::Error for ResetByFiredrill {}

fn text(status: StatusCode, message: String) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(message))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response
}

/// Headers that belong to one hop and are not passed on (RFC 9110 section 7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

impl Proxy {
    /// `text` with the upstream's password, if it holds it, as `***`.
    fn scrub(&self, text: String) -> String {
        match &self.secret {
            Some(secret) if text.contains(secret.as_str()) => text.replace(secret.as_str(), "***"),
            _ => text,
        }
    }

    /// Whether this proxy passed this request on before: it came back (a loop).
    fn came_back(&self, request: &Request<Incoming>) -> bool {
        request
            .headers()
            .get_all(hyper::header::VIA)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|hop| hop.split_whitespace().nth(1) == Some(self.via.as_str()))
    }

    /// One request, counted with what became of it.
    async fn handle(
        &self,
        request: Request<Incoming>,
        reset: &AtomicBool,
    ) -> Result<Response<Body>, ResetByFiredrill> {
        self.counts.requests.inc();
        let answered = self.answer(request, reset).await;
        match &answered {
            Ok(_) => self.counts.answered.inc(),
            Err(ResetByFiredrill) => self.counts.reset.inc(),
        };
        answered
    }

    /// One request's fate (see the module's documentation).
    async fn answer(
        &self,
        mut request: Request<Incoming>,
        reset: &AtomicBool,
    ) -> Result<Response<Body>, ResetByFiredrill> {
        if self.came_back(&request) {
            tracing::warn!(upstream = %self.shown, "fault-proxy: a request came back through this proxy (a loop: the upstream leads back here); answering 508");
            return Ok(text(
                StatusCode::LOOP_DETECTED,
                format!(
                    "firedrill fault-proxy: this request came back to the proxy that passed it on: upstream {} leads back here (point --upstream at the service itself)\n",
                    self.shown
                ),
            ));
        }
        let now = Utc::now();
        let expired = self.faults.until.is_some_and(|until| now >= until);
        if expired && !self.expired_said.swap(true, Ordering::Relaxed) {
            tracing::info!(until = ?self.faults.until, "fault-proxy: past --until, passing every request unharmed");
        }
        match self.faults.fate(self.dice.roll(), now) {
            Fate::Reset => {
                reset.store(true, Ordering::Relaxed);
                return Err(ResetByFiredrill);
            }
            Fate::Error(code) => {
                self.counts.failed.inc();
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                return Ok(text(
                    status,
                    format!("firedrill fault-proxy: injected {code}\n"),
                ));
            }
            Fate::Pass => {}
        }
        if let Some(delay) = self.faults.delay.filter(|_| !expired) {
            self.counts.delayed.inc();
            tokio::time::sleep(delay).await;
        }
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let base = self.upstream.path().trim_end_matches('/');
        let uri = format!(
            "{}://{}{base}{path}",
            self.upstream.scheme_str().unwrap_or("http"),
            self.upstream.authority().map_or("", |a| a.as_str())
        );
        match uri.parse::<hyper::Uri>() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(e) => return Ok(text(StatusCode::BAD_GATEWAY, format!("bad path: {e}\n"))),
        }
        for header in HOP_BY_HOP {
            request.headers_mut().remove(*header);
        }
        // Marked as passed through here, so that it is known again if it comes back.
        if let Ok(via) = hyper::header::HeaderValue::from_str(&format!("1.1 {}", self.via)) {
            request.headers_mut().append(hyper::header::VIA, via);
        }
        match self.client.request(request).await {
            Ok(response) => {
                self.failures.answered(&self.shown);
                let (mut parts, body) = response.into_parts();
                for header in HOP_BY_HOP {
                    parts.headers.remove(*header);
                }
                Ok(Response::from_parts(parts, body.boxed()))
            }
            Err(e) => {
                let error = self.scrub(error_chain(&e));
                self.failures.failed(&self.shown, &error);
                Ok(text(
                    StatusCode::BAD_GATEWAY,
                    format!("firedrill fault-proxy: upstream {}: {error}\n", self.shown),
                ))
            }
        }
    }
}

/// Serves until `stop` turns true. Accept errors (too many open files, a connection reset
/// before it was accepted) are logged and slowed down, never spun on.
pub async fn serve(
    listener: TcpListener,
    upstream: url::Url,
    faults: Faults,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    serve_counted(listener, upstream, faults, Counts::default(), stop).await
}

/// [`serve`], counting what it does in `counts`.
pub async fn serve_counted(
    listener: TcpListener,
    upstream: url::Url,
    faults: Faults,
    counts: Counts,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    // Resolving the upstream's name blocks: not on the runtime's own threads.
    let (listen, checked) = (listener.local_addr()?, upstream.clone());
    tokio::task::spawn_blocking(move || check_upstream(listen, &checked))
        .await
        .map_err(std::io::Error::other)?
        .map_err(|e| invalid(e.to_string()))?;
    let upstream_url = upstream;
    let upstream: hyper::Uri = upstream_url
        .as_str()
        .parse()
        .map_err(|e| invalid(format!("{}: {e}", redacted(&upstream_url))))?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let seed = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let proxy = Arc::new(Proxy {
        faults,
        counts,
        upstream,
        shown: redacted(&upstream_url),
        secret: upstream_url
            .password()
            .filter(|p| !p.is_empty())
            .map(str::to_owned),
        via: format!(
            "firedrill-fault-proxy-{:016x}",
            Dice(AtomicU64::new(seed ^ u64::from(std::process::id()))).roll_u64()
        ),
        client,
        dice: Dice(AtomicU64::new(seed)),
        expired_said: AtomicBool::new(false),
        failures: Failures::default(),
    });
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => break,
        };
        let (stream, _peer): (TcpStream, SocketAddr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "fault-proxy: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let reset = Arc::new(AtomicBool::new(false));
        let conn = Conn {
            stream,
            reset: reset.clone(),
        };
        let proxy = proxy.clone();
        let mut stopping = stop.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (proxy, reset) = (proxy.clone(), reset.clone());
                async move { proxy.handle(request, &reset).await }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(conn), service);
            tokio::pin!(connection);
            // A reset request ends its connection with an error: that is the point. On stop,
            // the request in flight is answered and the connection then closed.
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopping.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    // Stopping: requests in flight get their answers, for at most the grace period.
    let _ = tokio::time::timeout(STOP_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    proxy.failures.flush(&proxy.shown);
    Ok(())
}

/// Answers `GET /metrics` with `registry` in the Prometheus text format until `stop` turns true
/// (anything else: 404).
pub async fn serve_metrics(
    listener: TcpListener,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => return Ok(()),
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "fault-proxy: accept failed on the metrics port");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let registry = registry.clone();
                async move {
                    if request.uri().path() != "/metrics" {
                        return Ok::<_, std::convert::Infallible>(text(
                            StatusCode::NOT_FOUND,
                            "not found: the fault proxy's counts are at /metrics\n".to_owned(),
                        ));
                    }
                    let mut out = String::new();
                    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
                    let mut response = text(StatusCode::OK, out);
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static(
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        ),
                    );
                    Ok(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// An error and its causes, as one line (hyper's own says only "client error (Connect)").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How long a stopping proxy lets requests in flight finish.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl std::fmt::Display for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = self
            .errors
            .iter()
            .map(|(code, share)| format!("{code} for {}", firedrill_experiments::percent(*share)))
            .collect();
        if self.reset > 0 {
            parts.push(format!(
                "reset {}",
                firedrill_experiments::percent(self.reset)
            ));
        }
        if let Some(delay) = self.delay {
            parts.push(format!("delay {}ms", delay.as_millis()));
        }
        if let Some(until) = self.until {
            parts.push(format!("until {}", until.to_rfc3339()));
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use firedrill_experiments::dependency::{parse_error, parse_share};

    #[test]
    fn shares_split_the_rolls_in_order() {
        let faults = Faults {
            errors: vec![(503, 1000), (429, 500)],
            reset: 200,
            ..Faults::default()
        };
        let now = Utc::now();
        assert_eq!(faults.fate(0, now), Fate::Reset);
        assert_eq!(faults.fate(199, now), Fate::Reset);
        assert_eq!(faults.fate(200, now), Fate::Error(503));
        assert_eq!(faults.fate(1199, now), Fate::Error(503));
        assert_eq!(faults.fate(1200, now), Fate::Error(429));
        assert_eq!(faults.fate(1700, now), Fate::Pass);
        let expired = Faults {
            until: Some(now - chrono::TimeDelta::seconds(1)),
            ..faults
        };
        assert_eq!(expired.fate(0, now), Fate::Pass);
    }

    #[test]
    fn flags_are_read_strictly() {
        assert_eq!(parse_error("503:10%").unwrap(), (503, 1000));
        assert_eq!(parse_error("429: 2.5%").unwrap(), (429, 250));
        assert!(parse_error("200:10%")
            .unwrap_err()
            .to_string()
            .contains("400 to 599"));
        assert!(parse_error("503")
            .unwrap_err()
            .to_string()
            .contains("CODE:PERCENT"));
        assert!(parse_share("120%").is_err());
    }

    #[test]
    fn the_dice_are_fair() {
        let dice = Dice(AtomicU64::new(7));
        let low = (0..100_000).filter(|_| dice.roll() < 1000).count();
        assert!((9_500..10_500).contains(&low), "{low}");
    }
}
