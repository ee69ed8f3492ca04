//! `firedrill fault-proxy`: an HTTP reverse proxy that fails a share of requests on purpose.
//! The `http-fault` mode of `dependency-failure` deploys it in front of a dependency; run by
//! itself it is the same code.
//!
//! Per request, in this order: a `reset` share of connections is closed with a TCP reset and no
//! answer; an `errors` share is answered with the given status codes; everything else waits
//! `delay` and is passed to the upstream, streamed both ways. After `until` it only passes on.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Utc};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
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

/// `503:10%` -> (503, 1000). Codes are 400 to 599: the proxy fails requests, it does not
/// redirect them.
pub fn parse_error(text: &str) -> Result<(u16, u32), String> {
    if text.contains(',') {
        return Err(format!(
            "{text:?}: one code per --error (write --error 503:10% --error 429:5%)"
        ));
    }
    let (code, share) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not CODE:PERCENT (e.g. 503:10%)"))?;
    let code: u16 = code
        .trim()
        .parse()
        .ok()
        .filter(|c| (400..=599).contains(c))
        .ok_or_else(|| {
            format!(
                "{code:?} is not an HTTP error status (allowed: 400 to 599, e.g. 503, 504, 429)"
            )
        })?;
    Ok((code, parse_share(share.trim())?))
}

/// `2.5%` -> 250 hundredths, from 0% to 100%.
pub fn parse_share(text: &str) -> Result<u32, String> {
    let p = firedrill_safety::Percent::parse(text, false)?;
    if p.hundredths() > 10_000 {
        return Err(format!("{text:?} is more than 100%"));
    }
    Ok(p.hundredths())
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
        let mut z = self
            .0
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % 10_000) as u32
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

type Body = BoxBody<Bytes, hyper::Error>;

struct Proxy {
    faults: Faults,
    upstream: hyper::Uri,
    client: Client<HttpConnector, Incoming>,
    dice: Dice,
    expired_said: AtomicBool,
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
    async fn handle(
        &self,
        mut request: Request<Incoming>,
        reset: &AtomicBool,
    ) -> Result<Response<Body>, ResetByFiredrill> {
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
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                return Ok(text(
                    status,
                    format!("firedrill fault-proxy: injected {code}\n"),
                ));
            }
            Fate::Pass => {}
        }
        if let Some(delay) = self.faults.delay.filter(|_| !expired) {
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
        match self.client.request(request).await {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                for header in HOP_BY_HOP {
                    parts.headers.remove(*header);
                }
                Ok(Response::from_parts(parts, body.boxed()))
            }
            Err(e) => {
                tracing::warn!(upstream = %self.upstream, error = %e, "fault-proxy: the upstream did not answer; 502");
                Ok(text(
                    StatusCode::BAD_GATEWAY,
                    format!("firedrill fault-proxy: upstream {}: {e}\n", self.upstream),
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
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let upstream: hyper::Uri = upstream
        .as_str()
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let seed = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let proxy = Arc::new(Proxy {
        faults,
        upstream,
        client,
        dice: Dice(AtomicU64::new(seed)),
        expired_said: AtomicBool::new(false),
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
    Ok(())
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
        assert_eq!(parse_error("503:10%"), Ok((503, 1000)));
        assert_eq!(parse_error("429: 2.5%"), Ok((429, 250)));
        assert!(parse_error("200:10%").unwrap_err().contains("400 to 599"));
        assert!(parse_error("503").unwrap_err().contains("CODE:PERCENT"));
        assert!(parse_share("120%").is_err());
    }

    #[test]
    fn the_dice_are_fair() {
        let dice = Dice(AtomicU64::new(7));
        let low = (0..100_000).filter(|_| dice.roll() < 1000).count();
        assert!((9_500..10_500).contains(&low), "{low}");
    }
}
