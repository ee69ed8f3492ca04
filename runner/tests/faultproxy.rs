//! The fault proxy for real, on loopback: shares of error answers, added delay, TCP resets seen
//! by the client, pass-through of everything else, the expiry, and the command itself; and the
//! corners: an upstream that leads back to the proxy, a password in the upstream, an upstream
//! that does not answer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use firedrill::drill::faultproxy::{serve, Faults};
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
    firedrill::drill::gate::install_tls_provider();
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
        (
            ["--upstream", "http://127.0.0.1:1", "--delay", "-1s"],
            "invalid value '-1s' for '--delay <DURATION>': \"-1s\": a duration cannot be negative (write e.g. 1s)",
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

/// A free port on loopback (nothing listens on it once this returns).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `firedrill fault-proxy` with `args`, its log as JSON lines; ended by SIGTERM (as Kubernetes
/// stops it) by [`ProxyCommand::stop`], or killed however the test ends.
struct ProxyCommand(Option<std::process::Child>);

impl ProxyCommand {
    fn start(args: &[&str]) -> Self {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
            .arg("fault-proxy")
            .args(args)
            .env("FIREDRILL_LOG", "json")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        ProxyCommand(Some(child))
    }

    /// Stops it with SIGTERM; its exit code and everything it logged.
    fn stop(mut self) -> (Option<i32>, String) {
        let child = self.0.take().unwrap();
        let term = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for ProxyCommand {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `port` answers HTTP at all.
async fn answering(client: &reqwest::Client, port: u16) {
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the proxy on {port} never answered");
}

#[tokio::test]
async fn an_upstream_that_is_the_proxy_itself_is_refused() {
    // The library: the listener's own socket, however the upstream names it.
    for (listen, upstream) in [
        ("127.0.0.1:0", "http://127.0.0.1:{port}"),
        ("127.0.0.1:0", "http://localhost:{port}/api"),
        ("127.0.0.1:0", "http://0.0.0.0:{port}"),
        ("0.0.0.0:0", "http://127.0.0.1:{port}"),
        ("0.0.0.0:0", "http://localhost:{port}"),
    ] {
        let listener = TcpListener::bind(listen).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = url::Url::parse(&upstream.replace("{port}", &port.to_string())).unwrap();
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let served = tokio::time::timeout(
            Duration::from_secs(5),
            serve(listener, upstream.clone(), Faults::default(), stop),
        )
        .await
        .unwrap_or_else(|_| panic!("{listen} -> {upstream}: served a loop"));
        let err = served.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
        assert!(
            err.to_string().contains("this proxy's own address"),
            "{err}"
        );
    }
    // Another port is another socket.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let other = url::Url::parse(&format!("http://127.0.0.1:{}", port + 1)).unwrap();
    assert_eq!(
        firedrill::drill::faultproxy::check_upstream(listener.local_addr().unwrap(), &other),
        Ok(())
    );

    // The command says so before it listens, as a usage error.
    let port = free_port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["fault-proxy", "--listen", &format!("0.0.0.0:{port}")])
        .args([
            "--upstream",
            &format!("http://localhost:{port}"),
            "--delay",
            "1ms",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("error: --upstream http://localhost:{port}/ is this proxy's own address (0.0.0.0:{port}): every request would come back to it")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_comes_back_through_a_proxy_is_answered_508() {
    // Two proxies each other's upstream: a loop no address check can see.
    let (a, b) = (
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
    );
    let (at_a, at_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    for (listener, upstream) in [(a, at_b), (b, at_a)] {
        let upstream = url::Url::parse(&format!("http://{upstream}")).unwrap();
        let stop = stop.clone();
        tokio::spawn(async move { serve(listener, upstream, Faults::default(), stop).await });
    }
    let r = client()
        .get(format!("http://{at_a}/around"))
        .send()
        .await
        .expect("answered, not lost in the loop");
    assert_eq!(r.status().as_u16(), 508);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("this request came back to the proxy that passed it on"));
    // A chain that does not loop passes: proxy -> proxy -> upstream.
    let up = upstream().await;
    let second = proxy(up, Faults::default()).await;
    let first = proxy(second, Faults::default()).await;
    let r = client()
        .get(format!("http://{first}/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "upstream /x");
}

#[tokio::test]
async fn a_password_in_the_upstream_is_never_shown() {
    let dead = free_port();
    let port = free_port();
    let upstream = format!("http://drill:s3cret-pw@127.0.0.1:{dead}/base");
    let proxy = ProxyCommand::start(&[
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--upstream",
        &upstream,
        "--delay",
        "1ms",
    ]);
    let client = client();
    answering(&client, port).await;
    let r = client
        .get(format!("http://127.0.0.1:{port}/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(!body.contains("s3cret-pw"), "{body}");
    assert!(
        body.contains(&format!("drill:***@127.0.0.1:{dead}/base")),
        "{body}"
    );
    drop(client);
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("s3cret-pw"), "{log}");
    assert!(
        log.contains("drill:***@"),
        "the upstream is still named: {log}"
    );

    // Nor when the command refuses it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_firedrill"))
        .args(["fault-proxy", "--listen", "127.0.0.1:0", "--delay", "1ms"])
        .args(["--upstream", "https://drill:s3cret-pw@example.invalid/"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("https://drill:***@example.invalid/"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_is_said_once_then_counted_not_logged_per_request() {
    let dead = free_port();
    let port = free_port();
    let proxy = ProxyCommand::start(&[
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--upstream",
        &format!("http://127.0.0.1:{dead}"),
        "--delay",
        "1ms",
    ]);
    let client = client();
    answering(&client, port).await;
    const N: usize = 1000;
    for i in 0..N {
        let r = client
            .get(format!("http://127.0.0.1:{port}/{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502);
    }
    drop(client);
    let (code, log) = proxy.stop();
    assert_eq!(code, Some(0), "{log}");
    let about: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("upstream"))
        })
        .collect();
    // The first failure, then sums every 10 s and when the proxy stops: a few lines, not one
    // per request (the readiness probe above failed too).
    assert!(
        (2..=4).contains(&about.len()),
        "{} lines about the upstream: {log}",
        about.len()
    );
    assert!(about[0]["message"]
        .as_str()
        .unwrap()
        .contains("the upstream did not answer"));
    let counted: u64 = about[1..].iter().filter_map(|l| l["failed"].as_u64()).sum();
    // Every failure after the first (the readiness probe's, said by itself) is counted.
    assert_eq!(counted as usize, N, "{log}");
    assert!(log.len() < 8_000, "{} bytes of log", log.len());
}
