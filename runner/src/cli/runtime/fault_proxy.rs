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
    let shown = crate::drill::faultproxy::redacted(&upstream);
    tracing::info!(%listen, upstream = %shown, faults = %faults, "fault-proxy listening");
    crate::drill::faultproxy::serve(listener, upstream, faults, shutdown_signal())
        .await
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_ERROR)
        })
}
