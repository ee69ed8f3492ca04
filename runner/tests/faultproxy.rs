//! The fault proxy for real, on loopback: shares of error answers, added delay, TCP resets seen
//! by the client, pass-through of everything else, the expiry, and the command itself.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use firedrill::faultproxy::{serve, Faults};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An upstream that answers 200 with the path it was asked for, and a header saying it was it.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    let path = request
                        .uri()
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .to_owned();
                    Ok::<_, std::convert::Infallible>(
                        Response::builder()
                            .header("x-upstream", "yes")
                            .body(Full::new(Bytes::from(format!("upstream {path}"))))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A proxy with `faults` in front of `upstream`; it lives as long as the test's runtime.
async fn proxy(upstream: SocketAddr, faults: Faults) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    std::mem::forget(stop_tx);
    let upstream = url::Url::parse(&format!("http://{upstream}")).unwrap();
    tokio::spawn(async move { serve(listener, upstream, faults, stop).await });
    addr
}

fn client() -> reqwest::Client {
    firedrill::gate::install_tls_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_and_reset_shares_hold_over_2000_requests_and_the_rest_passes_through() {
    let faults = Faults {
        errors: vec![(503, 1000), (504, 500), (429, 500)],
        reset: 500,
        ..Faults::default()
    };
    let at = proxy(upstream().await, faults).await;
    let client = client();
    let mut tasks = tokio::task::JoinSet::new();
    const N: usize = 2000;
    let per_task = N / 16;
    for t in 0..16 {
        let client = client.clone();
        tasks.spawn(async move {
            let mut out = Vec::new();
            for i in 0..per_task {
                let n = t * per_task + i;
                let url = format!("http://{at}/item?n={n}");
                out.push(match client.get(&url).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let upstream = r.headers().contains_key("x-upstream");
                        let body = r.text().await.unwrap_or_default();
                        if status == 200 {
                            assert!(upstream, "a passed answer comes from the upstream");
                            assert_eq!(body, format!("upstream /item?n={n}"));
                        }
                        Ok(status)
                    }
                    Err(e) => Err(e.to_string()),
                });
            }
            out
        });
    }
    let mut results = Vec::new();
    while let Some(done) = tasks.join_next().await {
        results.extend(done.unwrap());
    }
    assert_eq!(results.len(), N);
    let share = |f: &dyn Fn(&Result<u16, String>) -> bool| {
        100.0 * results.iter().filter(|r| f(r)).count() as f64 / N as f64
    };
    let measured = [
        ("503", share(&|r| r == &Ok(503)), 10.0),
        ("504", share(&|r| r == &Ok(504)), 5.0),
        ("429", share(&|r| r == &Ok(429)), 5.0),
        ("reset", share(&|r| r.is_err()), 5.0),
        ("passed", share(&|r| r == &Ok(200)), 75.0),
    ];
    // The dice are seeded from the clock: each share is binomial, held to within 4.5 standard
    // deviations (a false alarm about once in 150,000 runs; a wrong share by a few points, or a
    // fault that never fires, still fails).
    for (what, got, want) in measured {
        let p = want / 100.0;
        let tolerance = 4.5 * 100.0 * (p * (1.0 - p) / N as f64).sqrt();
        assert!(
            (got - want).abs() <= tolerance,
            "{what}: {got:.1}% of {N} requests, want {want}% ± {tolerance:.1} points ({measured:?})"
        );
    }
    let other = share(&|r| matches!(r, Ok(s) if ![200, 503, 504, 429].contains(s)));
    assert_eq!(other, 0.0, "no other status");
    eprintln!("measured shares over {N} requests: {measured:?}");
}

#[tokio::test]
async fn added_delay_is_within_tolerance() {
    let up = upstream().await;
    let delayed = proxy(
        up,
        Faults {
            delay: Some(Duration::from_millis(100)),
            ..Faults::default()
        },
    )
    .await;
    let client = client();
    let mut took = Vec::new();
    for i in 0..20 {
        let started = Instant::now();
        let r = client
            .get(format!("http://{delayed}/d{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        took.push(started.elapsed());
    }
    took.sort();
    let median = took[took.len() / 2];
    assert!(took[0] >= Duration::from_millis(100), "{took:?}");
    // On loopback the proxy and upstream add a few milliseconds; a busy 2-core machine more.
    assert!(
        median < Duration::from_millis(180),
        "median {median:?}: {took:?}"
    );
}

#[tokio::test]
async fn a_reset_is_a_tcp_reset_with_no_answer() {
    let at = proxy(
        upstream().await,
        Faults {
            reset: 10_000,
            ..Faults::default()
        },
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(at).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf).await {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Ok(n) => panic!("expected a reset, read {n} bytes: {:?}", &buf[..n]),
    }
}

#[tokio::test]
async fn after_until_everything_passes() {
    let at = proxy(
        upstream().await,
        Faults {
            errors: vec![(503, 5_000)],
            reset: 5_000,
            delay: Some(Duration::from_secs(2)),
            until: Some(chrono::Utc::now() - chrono::TimeDelta::seconds(1)),
        },
    )
    .await;
    let client = client();
    for _ in 0..20 {
        let started = Instant::now();
        let r = client.get(format!("http://{at}/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no delay after --until"
        );
    }
}

#[tokio::test]
async fn the_command_serves_with_its_flags_and_refuses_bad_ones() {
    let up = upstream().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    /// Killed however the test ends, so no proxy outlives it.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args([
            "fault-proxy",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--upstream",
            &format!("http://{up}"),
            "--error",
            "429:100%",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(Child)
        .unwrap();
    let client = client();
    let mut status = None;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/")).send().await {
            status = Some(r.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(child);
    assert_eq!(status, Some(429));
    let nothing = std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args([
            "fault-proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(nothing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("the proxy would change nothing"));

    for (flags, says) in [
        (
            ["--upstream", "https://example.invalid", "--error", "503:5%"],
            "the proxy speaks plain HTTP to its upstream (write http://...)",
        ),
        (
            ["--upstream", "http://127.0.0.1:1", "--error", "200:5%"],
            "\"200\" is not an HTTP error status (allowed: 400 to 599, e.g. 503, 504, 429)",
        ),
        (
            ["--upstream", "http://127.0.0.1:1", "--error", "503:70%"],
            "",
        ),
        (
            [
                "--upstream",
                "http://127.0.0.1:1",
                "--error",
                "503:10%,429:5%",
            ],
            "one code per --error (write --error 503:10% --error 429:5%)",
        ),
    ] {
        let mut args = vec!["fault-proxy", "--listen", "127.0.0.1:0"];
        args.extend(flags);
        if says.is_empty() {
            args.extend(["--reset", "40%"]);
        }
        let bad = std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(bad.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        let says = if says.is_empty() {
            "the --error and --reset shares add up to 110%, more than 100%; lower them"
        } else {
            says
        };
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_proxy_answers_the_requests_in_flight() {
    let up = upstream().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = listener.local_addr().unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let faults = Faults {
        delay: Some(Duration::from_millis(600)),
        ..Faults::default()
    };
    let upstream_url = url::Url::parse(&format!("http://{up}")).unwrap();
    let server = tokio::spawn(async move { serve(listener, upstream_url, faults, stop).await });
    let in_flight =
        tokio::spawn(async move { client().get(format!("http://{at}/slow")).send().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_tx.send(true).unwrap();
    let answer = in_flight.await.unwrap().expect("answered, not dropped");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "upstream /slow");
    // And then it is gone: no new connection is taken.
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the proxy stops")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(at).await.is_err());
}
