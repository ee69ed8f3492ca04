//! The scheduler's commands: `scheduler` (the long-running leader-elected loop, with its metrics
//! endpoint) and `status` (what it is doing, and what fires next).

use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;

use super::{connect, shutdown_signal};
use crate::cli::{load, EXIT_ERROR, EXIT_USAGE};
use crate::cluster::job::Runtime;
use crate::cluster::kubernetes::Kube;
use crate::history::store::{Spool, Store};
use crate::schedule::scheduler::Scheduler;

pub(super) async fn scheduler(
    path: &std::path::Path,
    listen: std::net::SocketAddr,
    identity: Option<String>,
    tick: Duration,
) -> Result<ExitCode, ExitCode> {
    let config = load(path)?;
    check_receivers(&config)?;
    let kube = connect(&config).await?;
    let mut stop = shutdown_signal();
    let store = loop {
        match Store::open(&config.store, &config.cluster).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::error!(error = %e, "store unavailable; retrying in 10s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                    _ = stop.changed() => return Ok(ExitCode::SUCCESS),
                }
            }
        }
    };
    // Records a workstation run could not store wait in the spool: they belong in this history.
    Spool::new(config.spool_dir()).replay(&store).await;
    let identity = identity
        .or_else(|| std::env::var("POD_NAME").ok())
        .or_else(|| {
            // Two schedulers on one host must not share an identity (each would think it
            // holds the Lease): the host name with this process's id.
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| format!("{}-{}", h.trim(), std::process::id()))
        })
        .unwrap_or_else(|| format!("firedrill-{}", std::process::id()));
    let checks = (config.clone(), kube.clone());
    let mut scheduler = Scheduler::new(config, kube, store, Runtime::from_env(), identity.clone());
    let metrics = scheduler.metrics.clone();
    tokio::spawn(run_checks(
        checks.0,
        checks.1,
        metrics.scheduler.clone(),
        stop.clone(),
    ));
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e} (choose another --listen)");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    tokio::spawn(crate::history::metrics::serve(
        listener,
        metrics.clone(),
        tick,
    ));
    tracing::info!(%identity, drills = scheduler.config.drills.len(), %listen, "scheduler started");
    let renewer = scheduler.renewer(stop.clone());
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = ticks.tick() => {}
        }
        scheduler.reload();
        match scheduler.tick(Utc::now()).await {
            Ok(report) => {
                if !report.fired.is_empty()
                    || !report.not_fired.is_empty()
                    || !report.recorded.is_empty()
                {
                    tracing::info!(leader = report.leader, fired = ?report.fired, not_fired = report.not_fired.len(), recorded = ?report.recorded, "tick");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "tick failed");
                metrics.scheduler.tick_errors.inc();
            }
        }
    }
    // The renewer sees the same stop and releases the Lease.
    let _ = renewer.await;
    tracing::info!("scheduler stopped");
    Ok(ExitCode::SUCCESS)
}

/// `firedrill check`'s read-only checks, at start and every [`crate::check::RECHECK_EVERY`],
/// published for `/readyz` and as `firedrill_check`. The drill file is the one the scheduler
/// started with (a reload's drills are checked at the next look).
async fn run_checks(
    config: crate::config::Config,
    kube: Kube,
    metrics: crate::history::metrics::SchedulerMetrics,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match crate::check::run(&kube, Some(&config)).await {
            Ok(report) => {
                for line in report.checks.iter().filter(|l| !l.passed) {
                    tracing::warn!(check = line.check, what = %line.what, fix = line.fix.as_deref().unwrap_or_default(), "check failed");
                }
                metrics.checked(report);
            }
            Err(e) => {
                tracing::error!(error = %e, "checks not run");
                metrics.checked(crate::check::Report::unreachable(&e));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(crate::check::RECHECK_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A receiver whose URL variable holds no http(s) URL is refused at start; one whose variable
/// is unset is said loudly, and the scheduler runs without it.
fn check_receivers(config: &crate::config::Config) -> Result<(), ExitCode> {
    use crate::config::notify::AddressError;
    use crate::schedule::notify;
    let mut refused = false;
    for error in notify::check_addresses(config, &notify::process_env()) {
        match error {
            AddressError::Unset { .. } => {
                eprintln!("warning: {error}");
                tracing::error!(%error, "a notify receiver is sent nothing");
            }
            AddressError::NotHttp { .. } => {
                eprintln!("error: {error}");
                refused = true;
            }
        }
    }
    if refused {
        return Err(ExitCode::from(crate::cli::EXIT_INVALID));
    }
    Ok(())
}

pub(super) async fn status(path: &std::path::Path) -> Result<ExitCode, ExitCode> {
    let config = load(path)?;
    match Kube::connect(&config.namespace).await {
        Ok(kube) => {
            let text = crate::schedule::scheduler::status_report(&config, &kube, Utc::now()).await;
            Ok(crate::cli::delivered(crate::output::to_stdout(|out| {
                out.write_all(text.as_bytes())
            })))
        }
        // Without a cluster the calendar is still known: what fires next, and when.
        Err(e) => {
            eprintln!("error: {e}");
            let text = format!(
                "leader:       unknown (no cluster)\nkill switch:  unknown (no cluster)\nrunning:      unknown (no cluster)\nskipped:      unknown (no cluster)\nnext fires:\n{}",
                crate::schedule::scheduler::next_fires(&config, Utc::now(), None)
            );
            Err(crate::cli::finished(
                EXIT_ERROR,
                crate::output::to_stdout(|out| out.write_all(text.as_bytes())),
            ))
        }
    }
}
