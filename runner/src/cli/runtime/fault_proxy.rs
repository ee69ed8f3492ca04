//! `fault-proxy`: an HTTP proxy that fails, delays or resets a share of the requests it passes
//! on.

use std::process::ExitCode;

use chrono::Utc;

use super::shutdown_signal;
use crate::cli::{EXIT_ERROR, EXIT_USAGE};

pub(super) async fn fault_proxy(
    listen: std::net::SocketAddr,
    upstream: url::Url,
    faults: crate::drill::faultproxy::Faults,
    metrics: Option<std::net::SocketAddr>,
) -> Result<ExitCode, ExitCode> {
    let total = faults.errors.iter().map(|(_, s)| s).sum::<u32>() + faults.reset;
    if total > 10_000 {
        eprintln!(
            "error: the --error and --reset shares add up to {}, more than 100%; lower them",
            firedrill_experiments::percent(total)
        );
        return Err(ExitCode::from(EXIT_USAGE));
    }
    if faults.errors.is_empty() && faults.reset == 0 && faults.delay.is_none() {
        eprintln!(
            "error: the proxy would change nothing: give --error CODE:PERCENT, --delay or --reset"
        );
        return Err(ExitCode::from(EXIT_USAGE));
    }
    if let Err(e) = crate::drill::faultproxy::check_upstream(listen, &upstream) {
        eprintln!("error: {e}");
        return Err(ExitCode::from(EXIT_USAGE));
    }
    if faults.until.is_some_and(|until| until <= Utc::now()) {
        tracing::warn!("--until has passed: the proxy passes every request unharmed");
    }
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        eprintln!("error: cannot listen on {listen}: {e}");
        ExitCode::from(EXIT_ERROR)
    })?;
    if metrics.is_some_and(|m| m.port() == listen.port()) {
        eprintln!(
            "error: --metrics and --listen share port {}: give the counts a port of their own",
            listen.port()
        );
        return Err(ExitCode::from(EXIT_USAGE));
    }
    let stop = shutdown_signal();
    let mut registry = prometheus_client::registry::Registry::default();
    let counts = crate::drill::faultproxy::Counts::register(&mut registry);
    if let Some(at) = metrics {
        let metrics_listener = tokio::net::TcpListener::bind(at).await.map_err(|e| {
            eprintln!("error: cannot listen on {at} (--metrics): {e}");
            ExitCode::from(EXIT_ERROR)
        })?;
        tracing::info!(metrics = %at, "fault-proxy serving its counts on /metrics");
        let registry = std::sync::Arc::new(registry);
        tokio::spawn(crate::drill::faultproxy::serve_metrics(
            metrics_listener,
            registry,
            stop.clone(),
        ));
    }
    let shown = crate::drill::faultproxy::redacted(&upstream);
    tracing::info!(%listen, upstream = %shown, faults = %faults, "fault-proxy listening");
    crate::drill::faultproxy::serve_counted(listener, upstream, faults, counts, stop)
        .await
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_ERROR)
        })
}
