//! How much the fault proxy costs a drill: requests per second and latency through it against
//! the same upstream asked directly, with keep-alive clients on loopback, in one run.
//! `cargo bench -p firedrill --bench fault_proxy` prints one table.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 32;

async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_: Request<Incoming>| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                        b"{\"ok\":true}",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Latencies of REQUESTS GETs to `at`, CONCURRENCY at a time, and the wall time they took.
async fn load(at: SocketAddr) -> (Vec<Duration>, Duration) {
    firedrill::drill::gate::install_tls_provider();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let client = client.clone();
        tasks.spawn(async move {
            let mut took = Vec::with_capacity(REQUESTS / CONCURRENCY);
            for _ in 0..REQUESTS / CONCURRENCY {
                let t = Instant::now();
                let r = client.get(format!("http://{at}/")).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
                took.push(t.elapsed());
            }
            took
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.unwrap());
    }
    all.sort();
    (all, started.elapsed())
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let up = upstream().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = listener.local_addr().unwrap();
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let upstream_url = url::Url::parse(&format!("http://{up}")).unwrap();
        tokio::spawn(firedrill::drill::faultproxy::serve(
            listener,
            upstream_url,
            firedrill::drill::faultproxy::Faults::default(),
            stop,
        ));
        // Warm both paths (connections, pools) before measuring.
        load(up).await;
        load(proxy).await;
        let (direct, direct_wall) = load(up).await;
        let (proxied, proxied_wall) = load(proxy).await;
        let rate = |wall: Duration| REQUESTS as f64 / wall.as_secs_f64();
        println!(
            "fault-proxy, {REQUESTS} GETs, {CONCURRENCY} keep-alive clients, loopback, one 2-thread runtime for clients, proxy and upstream"
        );
        println!("{:<10} {:>10} {:>10} {:>10}", "path", "req/s", "p50", "p99");
        for (name, took, wall) in [("direct", &direct, direct_wall), ("proxied", &proxied, proxied_wall)] {
            println!(
                "{name:<10} {:>10.0} {:>10.2?} {:>10.2?}",
                rate(wall),
                quantile(took, 0.5),
                quantile(took, 0.99)
            );
        }
        println!(
            "added p99: {:.2?}",
            quantile(&proxied, 0.99).saturating_sub(quantile(&direct, 0.99))
        );
    });
}
