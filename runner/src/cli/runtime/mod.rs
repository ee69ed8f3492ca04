//! The commands that talk to a cluster, the store or the network. Each sets up logging, a runtime
//! and the shutdown signal (here), then calls into the library from the module of its concern:
//! running a drill (`drill`: `execute`, `run`), the scheduler (`scheduler`: `scheduler`,
//! `status`), reading the history (`history`: `history`, `report`), the on-call commands
//! (`oncall`: `stop`, `resume`, `rollback`, `skip`, `unskip`), `check` and `fault_proxy`.

use std::io::IsTerminal;
use std::process::ExitCode;

use chrono::Utc;
use tokio::sync::watch;

use super::{Command, EXIT_ERROR, EXIT_USAGE};
use crate::cluster::kubernetes::Kube;
use crate::cluster::ledger::Selection;
use crate::config::Config;

mod check;
mod drill;
mod fault_proxy;
mod history;
mod oncall;
mod scheduler;

use check::check;
use drill::{execute, run_now};
use fault_proxy::fault_proxy;
use history::{history, report};
use oncall::{render_ledger, resume, rollback, skip, stop, unskip};
use scheduler::{scheduler, status};

/// JSON logs in a cluster (or when `FIREDRILL_LOG=json`), readable text on a terminal. The level
/// comes from `FIREDRILL_LOG_LEVEL` (default `info`), in `tracing` filter syntax.
fn init_logging() {
    let (level, format) = super::LOGGING.get().cloned().unwrap_or_default();
    let filter = match level {
        Some(level) => tracing_subscriber::EnvFilter::try_new(&level).unwrap_or_else(|e| {
            eprintln!("warning: --log-level {level:?} is not a filter ({e}); using info");
            tracing_subscriber::EnvFilter::new("info")
        }),
        None => match std::env::var("FIREDRILL_LOG_LEVEL") {
            Ok(level) => tracing_subscriber::EnvFilter::try_new(&level).unwrap_or_else(|e| {
                eprintln!(
                    "warning: FIREDRILL_LOG_LEVEL={level:?} is not a filter ({e}); using info"
                );
                tracing_subscriber::EnvFilter::new("info")
            }),
            Err(_) => tracing_subscriber::EnvFilter::new("info"),
        },
    };
    let terminal = std::io::stderr().is_terminal();
    let json = match format {
        Some(format) => format == super::LogFormat::Json,
        None => match std::env::var("FIREDRILL_LOG").as_deref() {
            Ok("json") => true,
            Ok("text") => false,
            Ok(other) => {
                eprintln!(
                    "warning: FIREDRILL_LOG={other:?} is not a log format (allowed: json, text); using {}",
                    if terminal { "text" } else { "json" }
                );
                !terminal
            }
            Err(_) => !terminal,
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour(terminal))
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org).
pub fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The first SIGTERM or Ctrl-C asks everything to finish (the executor reverts before it exits);
/// a second one exits at once.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        for n in 0.. {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            if n == 0 {
                tracing::warn!("signal received: finishing (a second signal exits at once)");
                let _ = tx.send(true);
            } else {
                tracing::error!("second signal: exiting now");
                std::process::exit(130);
            }
        }
    });
    rx
}

/// Runs one command on a runtime. Long because it is one arm per command, each only unpacking
/// its flags for the function that does the work.
pub fn run(command: Command) -> ExitCode {
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    runtime.block_on(async move {
        let result = match command {
            Command::Scheduler {
                config,
                listen,
                identity,
                tick,
            } => scheduler(&config, listen, identity, tick).await,
            Command::Execute {
                config,
                drill,
                run,
                scheduled,
                dry_run,
            } => execute(&config, &drill, run, scheduled, dry_run).await,
            Command::Run {
                drill,
                config,
                dry_run,
                wait,
                render,
            } => run_now(&config, &drill, dry_run, wait, render).await,
            Command::Status { config } => status(&config).await,
            Command::History {
                config,
                drill,
                since,
                format,
            } => history(&config, drill.as_deref(), since, format).await,
            Command::Report {
                config,
                since,
                until,
                drill,
                cluster,
                format,
                output,
            } => {
                let until = until.unwrap_or_else(Utc::now);
                let query = crate::history::report::Query {
                    since: since.unwrap_or(until - chrono::TimeDelta::days(365)),
                    until,
                    cluster,
                    drill,
                };
                report(&config, &query, format, output.as_deref()).await
            }
            Command::Stop { target, reason } => stop(&target, &reason).await,
            Command::FaultProxy {
                listen,
                upstream,
                errors,
                delay,
                reset,
                until,
                metrics,
            } => {
                let faults = crate::drill::faultproxy::Faults {
                    errors,
                    delay,
                    reset: reset.unwrap_or(0),
                    until,
                };
                fault_proxy(listen, upstream, faults, metrics).await
            }
            Command::Resume { target } => resume(&target).await,
            Command::Check {
                target,
                format,
                network,
                canary_image,
            } => {
                let canary = network.then(|| crate::check::canary::Canary {
                    image: canary_image,
                    ..Default::default()
                });
                check(&target, format, canary.as_ref()).await
            }
            // `--next` is `at` left out (clap requires one of the two).
            Command::Skip {
                drill,
                config,
                at,
                reason,
                ..
            } => skip(&config, &drill, at, &reason).await,
            Command::Unskip {
                drill, config, at, ..
            } => unskip(&config, &drill, at).await,
            Command::Rollback {
                target,
                run,
                drill,
                all,
                dry_run,
                accept_unsigned,
                ledger,
                key,
                render,
            } => match (ledger, run, drill, all) {
                // A preview never reaches the cluster, whatever else was asked (clap refuses
                // the combinations; this is the second lock on the door).
                (Some(file), None, None, false) if render => {
                    render_ledger(&file, target.config.as_deref(), key.as_deref()).await
                }
                _ if render || key.is_some() => Err(ExitCode::from(EXIT_USAGE)),
                (Some(_), ..) => Err(ExitCode::from(EXIT_USAGE)),
                (_, Some(run), _, _) => {
                    rollback(&target, Selection::Run(run), dry_run, accept_unsigned).await
                }
                // Only ever for one run, named (clap requires --run; this is the second lock).
                _ if accept_unsigned => Err(ExitCode::from(EXIT_USAGE)),
                (_, _, Some(drill), _) => {
                    rollback(&target, Selection::Drill(drill), dry_run, false).await
                }
                (_, _, _, true) => rollback(&target, Selection::All, dry_run, false).await,
                _ => Err(ExitCode::from(EXIT_USAGE)),
            },
            Command::Validate { .. }
            | Command::Plan { .. }
            | Command::Completions { .. }
            | Command::Man => Err(ExitCode::from(EXIT_USAGE)),
        };
        result.unwrap_or_else(|code| code)
    })
}

async fn connect(config: &Config) -> Result<Kube, ExitCode> {
    Kube::connect(&config.namespace).await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_ERROR)
    })
}
