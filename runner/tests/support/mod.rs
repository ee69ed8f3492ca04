//! Helpers shared by the integration tests: local HTTP servers with scripted answers, and the
//! real services `scripts/test.sh` starts.

#![allow(dead_code)]

pub mod cluster;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A service from `scripts/services.sh`, by its environment variable. Missing under CI is a
/// failure, not a skip; elsewhere the test says it is skipping and why.
pub fn service(var: &str) -> Option<url::Url> {
    match std::env::var(var) {
        Ok(value) => Some(url::Url::parse(&value).unwrap_or_else(|e| panic!("{var}={value}: {e}"))),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{var} is not set under CI: the test needs the service scripts/test.sh starts")
        }
        Err(_) => {
            eprintln!(
                "skipping: {var} is not set (run scripts/test.sh, or source .test-services/env)"
            );
            None
        }
    }
}

/// A loopback HTTP server answering each request as `answer(n)` says: (status, delay), where
/// `n` counts requests from 0.
pub struct Server {
    pub url: url::Url,
    pub requests: Arc<AtomicU64>,
}

pub async fn serve(answer: impl Fn(u64) -> (u16, Duration) + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = url::Url::parse(&format!(
        "http://{}/health",
        listener.local_addr().expect("addr")
    ))
    .expect("url");
    let requests = Arc::new(AtomicU64::new(0));
    let counter = requests.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => buf.extend_from_slice(&chunk[..read]),
                    }
                }
                let (status, delay) = answer(n);
                tokio::time::sleep(delay).await;
                let response = format!(
                    "HTTP/1.1 {status} Scripted\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Server { url, requests }
}

/// A URL on a loopback port nothing listens on: connections are refused.
pub async fn refused_url() -> url::Url {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    url::Url::parse(&format!("http://{addr}/")).expect("url")
}

/// A name no other test run shares, for labels and grouping keys.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}_{}_{nanos}", std::process::id())
}
