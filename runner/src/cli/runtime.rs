//! The commands that talk to a cluster, the store or the network: `scheduler`, `execute`, `run`,
//! `status` and `history`. Each sets up logging, a runtime and the shutdown signal, then calls
//! into the library.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use tokio::sync::watch;

use super::{load, ClusterTarget, Command, Format, EXIT_ERROR, EXIT_INVALID, EXIT_USAGE};
use crate::config::{Config, Drill};
use crate::executor::{self, Execution, Kept, Sinks};
use crate::gate::Endpoints;
use crate::job::{self, RunRef, Runtime};
use crate::kubernetes::{Created, Kube};
use crate::ledger::{self, Protection, Selection};
use crate::output::Lines;
use crate::pushgateway::Retry;
use crate::run::RunRecord;
use crate::scheduler::Scheduler;
use crate::store::{Spool, Store};

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

async fn fault_proxy(
    listen: std::net::SocketAddr,
    upstream: url::Url,
    faults: crate::faultproxy::Faults,
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
    if let Err(e) = crate::faultproxy::check_upstream(listen, &upstream) {
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
    let shown = crate::faultproxy::redacted(&upstream);
    tracing::info!(%listen, upstream = %shown, faults = %faults, "fault-proxy listening");
    crate::faultproxy::serve(listener, upstream, faults, shutdown_signal())
        .await
        .map(|()| ExitCode::SUCCESS)
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_ERROR)
        })
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
                let query = crate::report::Query {
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
            } => {
                let faults = crate::faultproxy::Faults {
                    errors,
                    delay,
                    reset: reset.unwrap_or(0),
                    until,
                };
                fault_proxy(listen, upstream, faults).await
            }
            Command::Resume { target } => resume(&target).await,
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

/// A line of a command's output (see `output::Lines`: never a panic, failures kept).
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        $out.line(format_args!($($arg)*))
    };
}

fn find_drill<'c>(config: &'c Config, name: &str) -> Result<&'c Drill, ExitCode> {
    config.drill(name).ok_or_else(|| {
        let names: Vec<&str> = config.drills.iter().map(|d| d.name.as_str()).collect();
        eprintln!(
            "error: {} has no drill named {name:?} (its drills: {})",
            config.source.display(),
            names.join(", ")
        );
        ExitCode::from(EXIT_USAGE)
    })
}

async fn connect(config: &Config) -> Result<Kube, ExitCode> {
    Kube::connect(&config.namespace).await.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_ERROR)
    })
}

async fn execute(
    path: &std::path::Path,
    name: &str,
    run: Option<String>,
    scheduled: Option<chrono::DateTime<Utc>>,
    dry_run: bool,
) -> Result<ExitCode, ExitCode> {
    let config = load(path)?;
    let drill = find_drill(&config, name)?;
    if let Some(id) = &run {
        job::validate_run_id(id).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        })?;
    }
    let scheduled = executor::now_or(scheduled);
    let stop = shutdown_signal();
    let endpoints = Endpoints::new(config.prometheus.clone(), config.alertmanager.clone());
    // Cluster and store are reached in parallel. A probe may run without either; anything that
    // mutates is blocked by the executor without a cluster (and, with a cooldown, without the
    // history).
    let (kube, store) = tokio::join!(
        Kube::connect(&config.namespace),
        Store::open(&config.store, &config.cluster)
    );
    let kube = kube
        .inspect_err(|e| tracing::warn!(error = %e, "no cluster access"))
        .ok();
    let store = store
        .inspect_err(|e| tracing::warn!(error = %e, "store unavailable"))
        .ok();
    let spool = Spool::new(config.spool_dir());
    if let Some(store) = &store {
        spool.replay(store).await;
    }
    let run = RunRef {
        drill: drill.name.clone(),
        run: match run {
            Some(id) => {
                check_run_id(store.as_ref(), &id, drill, scheduled).await?;
                id
            }
            None => fresh_run_id(store.as_ref(), drill).await,
        },
        scheduled,
        dry_run,
    };
    // Cooldown reads the history and the ledgers in the cluster (a Job cannot reach the leader's
    // SQLite file, but it can read the ledgers): either is enough; neither blocks the drill.
    let cooldown = chrono::TimeDelta::from_std(drill.safety.cooldown).unwrap_or_default();
    let since = Utc::now() - cooldown;
    let from_store = match &store {
        Some(store) => store.recent_hits(since).await.ok(),
        None => None,
    };
    let from_cluster = match &kube {
        Some(kube) => crate::ledger::recent_hits(kube, since)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "cannot read recent hits from the ledgers"))
            .ok(),
        None => None,
    };
    let recent_hits = match (from_store, from_cluster) {
        (None, None) => None,
        (a, b) => Some(firedrill_safety::verdict::latest_hits(
            a.into_iter().chain(b).flatten(),
        )),
    };
    let record = executor::execute(
        &Execution {
            config: &config,
            drill,
            run: &run,
            kube: kube.as_ref(),
            endpoints: &endpoints,
            kill_switch_every: executor::KILL_SWITCH_EVERY,
            recent_hits,
        },
        stop.clone(),
    )
    .await;
    let sinks = Sinks {
        store: store.as_ref(),
        kube: kube.as_ref(),
        spool: Some(&spool),
        pushgateway: config.pushgateway.as_ref(),
        client: endpoints.client(),
        push_retry: Retry::BOUNDED,
    };
    // The record first, where it lasts and on stdout; metrics and the Event after.
    let kept = executor::keep(&record, &sinks, &stop).await;
    let printed = crate::output::to_stdout(|out| {
        writeln!(
            out,
            "{}",
            serde_json::to_string(&record).unwrap_or_default()
        )
    });
    if let Err(e) = printed {
        // The run's outcome stays the exit code: its record went to the store and the spool.
        tracing::warn!(run = %record.id, error = %e, "the run record could not be written to standard output");
    }
    tracing::info!(
        drill = %record.drill,
        run = %record.id,
        status = %record.status,
        reason = record.reason.as_deref().unwrap_or(""),
        kept = %kept,
        "run finished"
    );
    executor::announce(&record, &kept, &sinks, &stop).await;
    if matches!(kept, Kept::Nowhere | Kept::Conflict(_)) {
        return Ok(ExitCode::from(executor::EXIT_RECORD_LOST));
    }
    Ok(ExitCode::from(executor::exit_code(record.status)))
}

/// A `--run` id already in the store may only be the scheduler's `running` placeholder for this
/// very fire; anything else would merge two runs into one record.
async fn check_run_id(
    store: Option<&Store>,
    id: &str,
    drill: &Drill,
    scheduled: chrono::DateTime<Utc>,
) -> Result<(), ExitCode> {
    let Some(store) = store else { return Ok(()) };
    let existing = match store.run(id).await {
        Ok(existing) => existing,
        Err(e) => {
            tracing::warn!(run = %id, error = %e, "cannot look the run id up in the store");
            return Ok(());
        }
    };
    match existing {
        None => Ok(()),
        Some(e)
            if e.drill == drill.name
                && e.kind == drill.kind.to_string()
                && crate::store::timestamp(e.scheduled) == crate::store::timestamp(scheduled)
                && e.status == crate::run::RunStatus::Running =>
        {
            Ok(())
        }
        Some(e) => {
            eprintln!(
                "error: run {id} is already recorded ({} of drill {}, scheduled {}); a run id is used once (leave out --run for a fresh one)",
                e.status,
                e.drill,
                crate::store::timestamp(e.scheduled)
            );
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// A manual run id the store has not seen.
async fn fresh_run_id(store: Option<&Store>, drill: &Drill) -> String {
    let mut id = job::manual_run_id(&drill.name, Utc::now());
    for _ in 0..5 {
        match store {
            Some(store) if matches!(store.run(&id).await, Ok(Some(_))) => {
                id = job::manual_run_id(&drill.name, Utc::now());
            }
            _ => break,
        }
    }
    id
}

async fn scheduler(
    path: &std::path::Path,
    listen: std::net::SocketAddr,
    identity: Option<String>,
    tick: Duration,
) -> Result<ExitCode, ExitCode> {
    let config = load(path)?;
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
    let mut scheduler = Scheduler::new(config, kube, store, Runtime::from_env(), identity.clone());
    let metrics = scheduler.metrics.clone();
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e} (choose another --listen)");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    tokio::spawn(crate::metrics::serve(listener, metrics.clone(), tick));
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

async fn run_now(
    path: &std::path::Path,
    name: &str,
    dry_run: bool,
    wait: bool,
    render: bool,
) -> Result<ExitCode, ExitCode> {
    let config = load(path)?;
    let drill = find_drill(&config, name)?;
    let now = Utc::now();
    let mut run = RunRef {
        drill: drill.name.clone(),
        run: job::manual_run_id(&drill.name, now),
        scheduled: now,
        dry_run,
    };
    let runtime = Runtime::from_env();
    if render {
        let yaml = job::to_yaml(&job::render(&config, drill, &run, &runtime));
        return Ok(super::delivered(crate::output::to_stdout(|out| {
            out.write_all(yaml.as_bytes())
        })));
    }
    let kube = connect(&config).await?;
    // The image the cluster's scheduler runs, unless this shell names one: a workstation's
    // default tag may not exist in the cluster's registry.
    let runtime = if std::env::var_os("FIREDRILL_IMAGE").is_some() {
        runtime
    } else {
        match kube.scheduler_runtime().await {
            Ok(Some(theirs)) => theirs,
            Ok(None) => {
                eprintln!(
                    "warning: no scheduler Deployment in {}: the Job runs {} (set FIREDRILL_IMAGE to choose)",
                    kube.namespace(),
                    runtime.image
                );
                runtime
            }
            Err(e) => {
                eprintln!("warning: cannot read the scheduler Deployment ({e}): the Job runs {} (set FIREDRILL_IMAGE to choose)", runtime.image);
                runtime
            }
        }
    };
    // A Job of that name already there is another run: draw a new id rather than follow it.
    let mut attempts = 0;
    loop {
        let job = job::render(&config, drill, &run, &runtime);
        match kube.create_job(&job).await {
            Ok(Created::New) => break,
            Ok(Created::AlreadyExists) if attempts < 5 => {
                attempts += 1;
                run.run = job::manual_run_id(&drill.name, Utc::now());
            }
            Ok(Created::AlreadyExists) => {
                eprintln!(
                    "error: Job {} already exists, five fresh ids in a row; not starting",
                    run.run
                );
                return Ok(ExitCode::from(EXIT_ERROR));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_ERROR));
            }
        }
    }
    if let Err(e) = crate::output::to_stdout(|out| writeln!(out, "{}", run.run)) {
        eprintln!("created Job {} in {}", run.run, kube.namespace());
        return Ok(ExitCode::from(super::output_failed(&e)));
    }
    if !wait {
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = executor::budget(drill) + Duration::from_secs(300);
    let started = std::time::Instant::now();
    let progress = |line: &str| {
        eprintln!(
            "{} [{:>6.1}s] job/{}: {line}",
            Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            started.elapsed().as_secs_f64(),
            run.run
        );
    };
    match kube.follow(&run.run, deadline, progress).await {
        Ok(code) => Ok(ExitCode::from(code)),
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(EXIT_ERROR))
        }
    }
}

async fn status(path: &std::path::Path) -> Result<ExitCode, ExitCode> {
    let config = load(path)?;
    match Kube::connect(&config.namespace).await {
        Ok(kube) => {
            let text = crate::scheduler::status_report(&config, &kube, Utc::now()).await;
            Ok(super::delivered(crate::output::to_stdout(|out| {
                out.write_all(text.as_bytes())
            })))
        }
        // Without a cluster the calendar is still known: what fires next, and when.
        Err(e) => {
            eprintln!("error: {e}");
            let text = format!(
                "leader:       unknown (no cluster)\nkill switch:  unknown (no cluster)\nrunning:      unknown (no cluster)\nnext fires:\n{}",
                crate::scheduler::next_fires(&config, Utc::now())
            );
            Err(super::finished(
                EXIT_ERROR,
                crate::output::to_stdout(|out| out.write_all(text.as_bytes())),
            ))
        }
    }
}

async fn history(
    path: &std::path::Path,
    drill: Option<&str>,
    since: Option<chrono::DateTime<Utc>>,
    format: Format,
) -> Result<ExitCode, ExitCode> {
    let config = load(path)?;
    let store = open_history(&config).await?;
    eprintln!("history from {}", config.store);
    if let Some(drill) = drill {
        // A drill neither the file nor the history knows is a typo, not an empty history.
        let known = match store.clusters_and_drills().await {
            Ok(known) => known,
            Err(e) => {
                eprintln!("error: cannot read the run history {}: {e}", config.store);
                return Ok(ExitCode::from(EXIT_ERROR));
            }
        };
        if let Err(e) = crate::report::check_drill(&config, &known, drill) {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    }
    // A reading command never writes: records waiting in the spool are named, not moved in.
    let waiting = Spool::new(config.spool_dir()).waiting();
    if !waiting.is_empty() {
        eprintln!(
            "note: {} record(s) in {} are not in this history yet; the next `firedrill execute` or scheduler start that reaches the store moves them in",
            waiting.len(),
            config.spool_dir().display()
        );
    }
    let runs = match store.runs(drill, since).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&runs).unwrap_or_default() + "\n",
        Format::Table => history_table(&runs),
    };
    Ok(super::delivered(crate::output::to_stdout(|out| {
        out.write_all(text.as_bytes())
    })))
}

/// Nothing in the period to report.
const EXIT_EMPTY: u8 = 3;

/// `firedrill report`: reads the history (never creating one) and writes the report.
async fn report(
    path: &std::path::Path,
    query: &crate::report::Query,
    format: crate::report::Format,
    output: Option<&std::path::Path>,
) -> Result<ExitCode, ExitCode> {
    use crate::report::ReportError;
    let config = load(path)?;
    // Read only: nothing is migrated or replayed.
    let store = open_history(&config).await?;
    let fail = |e: crate::store::StoreError| {
        eprintln!("error: cannot read the run history {}: {e}", config.store);
        ExitCode::from(EXIT_ERROR)
    };
    let started = std::time::Instant::now();
    let phase = |name: &str| {
        tracing::debug!(
            phase = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "report"
        )
    };
    let known = store.clusters_and_drills().await.map_err(fail)?;
    phase("known");
    let said = |e: ReportError| {
        eprintln!("error: {e}");
        ExitCode::from(match e {
            ReportError::Nothing { .. } => EXIT_EMPTY,
            _ => EXIT_USAGE,
        })
    };
    crate::report::check(&config, &known, query).map_err(said)?;
    let (cluster, drill) = (query.cluster.as_deref(), query.drill.as_deref());
    let runs = store
        .runs_between(query.since, query.until, cluster, drill)
        .await
        .map_err(fail)?;
    phase("runs read");
    let fires = store
        .fires_between(query.since, query.until, cluster, drill)
        .await
        .map_err(fail)?;
    store.close().await;
    phase("fires read");
    let report = crate::report::build(
        crate::report::Inputs {
            config: &config,
            store: config.store.to_string(),
            runs,
            fires,
            known,
            generated: Utc::now(),
        },
        query,
    )
    .map_err(said)?;
    phase("built");
    let (planned, runs, clusters) = (
        report.summary.planned,
        report.drills.iter().map(|d| d.runs.len()).sum::<usize>(),
        report.clusters.len(),
    );
    match output {
        None => {
            let written = crate::output::to_stdout(|mut out| {
                crate::report::render_to(&report, format, &mut out)
            });
            if let Err(e) = written {
                std::mem::forget(report);
                return Ok(ExitCode::from(super::output_failed(&e)));
            }
        }
        Some(file) => {
            // A regular file whole or not at all; a device or FIFO written into; see output.rs.
            let written = crate::output::to_path(file, |mut out| {
                crate::report::render_to(&report, format, &mut out)
            });
            if let Err(e) = written {
                eprintln!("error: the report was not written ({e}); check --output");
                std::mem::forget(report);
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            eprintln!(
                "report of {planned} planned fire(s) and {runs} run(s) on {clusters} cluster(s) written to {}",
                file.display()
            );
        }
    }
    phase("written");
    // The process ends with this command: a year of rows is left for the exit to free rather
    // than freed one string at a time (a tenth of a second over 100,000 runs).
    std::mem::forget(report);
    Ok(ExitCode::SUCCESS)
}

/// Opens the history to read it (`history`, `report`), never writing: a missing SQLite file is a
/// wrong path, said as such, never created; a path that is not a regular file, a database that is
/// not a firedrill history or a history at another schema is refused, named, untouched. Read
/// only, an auditor's read-only credentials suffice.
async fn open_history(config: &Config) -> Result<Store, ExitCode> {
    if let crate::config::Store::Sqlite(file) = &config.store {
        if !std::path::Path::new(file).exists() {
            eprintln!(
                "error: no run history at {file}: nothing has been recorded there (store: in {} is resolved against FIREDRILL_DATA_DIR, else the drill file's directory)",
                config.source.display()
            );
            return Err(ExitCode::from(EXIT_ERROR));
        }
    }
    Store::open_existing(&config.store, &config.cluster)
        .await
        .map_err(|e| {
            use crate::store::StoreError;
            match e {
                StoreError::Open { .. }
                | StoreError::NotAFile { .. }
                | StoreError::NotAHistory { .. }
                | StoreError::Outdated { .. }
                | StoreError::Newer { .. } => eprintln!("error: {e}"),
                e => eprintln!("error: cannot read the run history {}: {e}", config.store),
            }
            ExitCode::from(EXIT_ERROR)
        })
}

/// The cluster and the protection the on-call commands act with: firedrill's namespace from
/// `--namespace`, else the drill file's `namespace:`, else the kubeconfig context's namespace.
/// Only a file given and invalid stops them (a wrong file must not silently change the
/// namespace).
async fn resolve_target(
    target: &ClusterTarget,
) -> Result<(Kube, Protection, Option<Config>), ExitCode> {
    let config = target.config.as_deref().map(load).transpose()?;
    let namespace = target
        .namespace
        .clone()
        .or_else(|| config.as_ref().map(|c| c.namespace.clone()));
    let kube = Kube::connect(namespace.as_deref().unwrap_or("default"))
        .await
        .map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_ERROR)
        })?;
    let kube = match namespace {
        Some(_) => kube,
        None => {
            let context = kube.client().default_namespace().to_owned();
            Kube::new(kube.client().clone(), context)
        }
    };
    let mut protection = match &config {
        Some(config) => Protection::of(config),
        None => Protection::without_drill_file(""),
    };
    protection.own_namespace = kube.namespace().to_owned();
    Ok((kube, protection, config))
}

/// Progress on stderr, with the time since the command started.
fn progress(started: std::time::Instant, line: &str) {
    eprintln!("[{:>5.1}s] {line}", started.elapsed().as_secs_f64());
}

async fn stop(target: &ClusterTarget, reason: &str) -> Result<ExitCode, ExitCode> {
    let started = std::time::Instant::now();
    let (kube, protection, _) = resolve_target(target).await?;
    let namespace = kube.namespace().to_owned();
    let by = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    progress(started, &format!("stopping every drill in {namespace}"));
    let say = |phase: &str| progress(started, phase);
    let report = ledger::stop_saying(&kube, reason, &by, &protection, &say).await;
    let mut out = Lines::new();
    match &report.kill_switch {
        Ok(text) => say!(out, "{text}"),
        Err(e) => say!(out, "{e}"),
    }
    match &report.jobs {
        Ok(()) => say!(out, "drill Jobs deleted"),
        Err(e) => say!(out, "DRILL JOBS NOT DELETED: {e}"),
    }
    for swept in &report.swept {
        match swept {
            Ok(s) if s.count == 0 => {}
            Ok(s) => say!(
                out,
                "swept {} {}{} in {} namespace{}",
                s.count,
                s.kind,
                if s.count == 1 { "" } else { "s" },
                s.namespaces.len(),
                if s.namespaces.len() == 1 { "" } else { "s" }
            ),
            Err(e) => say!(out, "SWEEP FAILED: {e}"),
        }
    }
    for outcome in &report.ledgers {
        for line in ledger::describe(outcome) {
            say!(out, "{line}");
        }
    }
    for left in &report.remaining {
        say!(out, "REMAINS: {left}");
    }
    progress(
        started,
        if report.clean() {
            "stopped: nothing remains; the kill switch stays engaged until `firedrill resume`"
        } else {
            "NOT everything was undone: see the lines above, and runbooks/emergency-stop.md"
        },
    );
    Ok(super::finished(
        if report.clean() { 0 } else { 1 },
        out.finish(),
    ))
}

async fn resume(target: &ClusterTarget) -> Result<ExitCode, ExitCode> {
    let (kube, _, config) = resolve_target(target).await?;
    let namespace = kube.namespace().to_owned();
    let mut out = Lines::new();
    match ledger::release(&kube).await {
        Ok(true) => say!(out, "kill switch released in {namespace}"),
        Ok(false) => say!(out, "the kill switch was not engaged in {namespace}"),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(super::finished(EXIT_ERROR, out.finish()));
        }
    }
    // What still keeps drills from running, so nobody expects them to start at once.
    let cluster = ledger::KubeCluster::new(&kube);
    match cluster.ledgers().await {
        Ok(ledgers) => {
            for (name, l) in ledgers {
                if l.as_ref().map_or(true, firedrill_rollback::Ledger::is_open) {
                    say!(out, "still open: ledger {name} (revert it: firedrill rollback --run RUN, or --all)");
                }
            }
        }
        Err(e) => say!(out, "ledgers unknown: {e}"),
    }
    if let Some(config) = &config {
        let covering =
            crate::schedule::blackout::covering(config.timezone, &config.blackouts, Utc::now());
        for (b, until) in covering {
            say!(
                out,
                "in blackout {} until {}: nothing fires before then",
                b.name,
                until.to_rfc3339_opts(SecondsFormat::Secs, true)
            );
        }
    }
    Ok(super::finished(0, out.finish()))
}

async fn rollback(
    target: &ClusterTarget,
    selection: Selection,
    dry_run: bool,
    accept_unsigned: bool,
) -> Result<ExitCode, ExitCode> {
    let started = std::time::Instant::now();
    let (kube, protection, _) = resolve_target(target).await?;
    let cluster = ledger::KubeCluster::new(&kube);
    let outcomes =
        match ledger::rollback(&cluster, &selection, &protection, dry_run, accept_unsigned).await {
            Ok(o) => o,
            Err(ledger::RollbackError::NoLedger(e)) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_USAGE));
            }
            Err(ledger::RollbackError::Api(e)) => {
                eprintln!("error: {e}");
                return Ok(ExitCode::from(EXIT_ERROR));
            }
            Err(ledger::RollbackError::Key(e)) => {
                eprintln!("error: nothing was reverted: {e}");
                return Ok(ExitCode::from(EXIT_ERROR));
            }
        };
    let mut out = Lines::new();
    if outcomes.is_empty() {
        say!(
            out,
            "no open ledger matches in namespace {}: nothing to revert",
            kube.namespace()
        );
    }
    for outcome in &outcomes {
        for line in ledger::describe(outcome) {
            say!(out, "{line}");
        }
    }
    let failed = outcomes.iter().any(ledger::LedgerOutcome::failed);
    progress(
        started,
        if failed {
            "NOT everything was reverted: see the lines above, and runbooks/rollback.md"
        } else if dry_run {
            "dry run: nothing was changed"
        } else {
            "done"
        },
    );
    Ok(super::finished(if failed { 1 } else { 0 }, out.finish()))
}

/// `rollback --ledger FILE --render`: a saved ledger's revert, offline.
async fn render_ledger(
    path: &std::path::Path,
    config: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
) -> Result<ExitCode, ExitCode> {
    // The drill file only bounds what a revert may do (protected objects, declared DNS); it is
    // read, never a way to a cluster.
    let config = config.map(load).transpose()?;
    let key = key.map(read_key).transpose()?;
    let invalid = |message: String| {
        eprintln!("{}: {message}", path.display());
        ExitCode::from(EXIT_INVALID)
    };
    // A saved ledger gets a drill file's bounds: /dev/zero or an endless pipe is read no further.
    let text = crate::config::read_text(path, crate::config::yaml::Limits::LEDGER.max_bytes)
        .map_err(|e| match e {
            crate::config::TextError::Io(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                ExitCode::from(EXIT_USAGE)
            }
            e @ crate::config::TextError::TooLarge { .. } => {
                invalid(format!("{e} for a saved ledger"))
            }
            e @ crate::config::TextError::NotUtf8 { mark, .. } => {
                invalid(format!("{}:{}: {e}", mark.line, mark.column))
            }
        })?;
    let node = crate::config::yaml::parse_within(&text, crate::config::yaml::Limits::LEDGER)
        .map_err(|e| invalid(format!("{}:{}: {}", e.mark.line, e.mark.column, e.message)))?;
    let object = crate::config::yaml::to_json(&node);
    if object.get("kind").and_then(serde_json::Value::as_str) != Some("ConfigMap") {
        return Err(invalid(
            "not a ConfigMap (save one with `kubectl get configmap firedrill-ledger-RUN -o yaml`)"
                .to_owned(),
        ));
    }
    let strings = |pointer: &str| -> std::collections::BTreeMap<String, String> {
        object
            .pointer(pointer)
            .and_then(serde_json::Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let stored = firedrill_rollback::Stored {
        resource_version: None,
        name: object
            .pointer("/metadata/name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        labels: strings("/metadata/labels"),
        annotations: strings("/metadata/annotations"),
        data: strings("/data"),
    };
    let ledger =
        firedrill_rollback::Ledger::from_stored(&stored).map_err(|e| invalid(e.to_string()))?;
    // As a real revert would judge it: the drill file's protection and declared DNS, else
    // kube-system and the namespace the ledger was saved from, and no external record.
    let protection = match &config {
        Some(config) => Protection::of(config),
        None => Protection::without_drill_file(
            object
                .pointer("/metadata/namespace")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default(),
        ),
    };
    let mut out = Lines::new();
    say!(
        out,
        "# ledger of run {} (drill {}, {}), {} change{}, newest first",
        ledger.run,
        ledger.drill,
        ledger.kind,
        ledger.entries.len() + ledger.unreadable.len(),
        if ledger.entries.len() + ledger.unreadable.len() == 1 {
            ""
        } else {
            "s"
        }
    );
    out.text(&ledger::render(&ledger, &protection, key.as_ref()).await);
    Ok(super::finished(
        if ledger.unreadable.is_empty() {
            0
        } else {
            EXIT_INVALID
        },
        out.finish(),
    ))
}

/// A ledger key saved to a file: its 32 bytes, as the Secret holds them (base64-decoded).
fn read_key(path: &std::path::Path) -> Result<firedrill_rollback::Key, ExitCode> {
    // A key is 32 bytes: anything much longer is not one, and is read no further.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(path).map_err(|e| {
                eprintln!("error: cannot read the ledger key {}: {e}", path.display());
                ExitCode::from(EXIT_USAGE)
            })?,
            1024,
        ),
        &mut bytes,
    )
    .map_err(|e| {
        eprintln!("error: cannot read the ledger key {}: {e}", path.display());
        ExitCode::from(EXIT_USAGE)
    })?;
    firedrill_rollback::Key::from_bytes(&bytes).map_err(|e| {
        eprintln!(
            "{}: not a ledger key ({e}); save it with `kubectl -n NAMESPACE get secret firedrill-ledger-key -o jsonpath='{{.data.key}}' | base64 -d > {}`",
            path.display(),
            path.display()
        );
        ExitCode::from(EXIT_INVALID)
    })
}

/// Runs as a table, newest first, columns as wide as their widest cell.
pub fn history_table(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "(no runs recorded)\n".to_owned();
    }
    let header = [
        "RUN",
        "DRILL",
        "SCHEDULED",
        "STATUS",
        "AVAIL",
        "P95",
        "REASON",
    ];
    let rows: Vec<[String; 7]> = runs
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.drill.clone(),
                r.scheduled.to_rfc3339_opts(SecondsFormat::Secs, true),
                r.status.to_string(),
                r.measurements
                    .availability
                    .map(|a| format!("{:.2}%", a * 100.0))
                    .unwrap_or_else(|| "-".into()),
                r.measurements
                    .latency_p95_seconds
                    .map(|s| format!("{:.0}ms", s * 1000.0))
                    .unwrap_or_else(|| "-".into()),
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 7]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            match i {
                // Numbers align right; the reason runs on.
                4 | 5 => text.push_str(&format!("{}{cell}  ", " ".repeat(pad))),
                6 => text.push_str(cell),
                _ => text.push_str(&format!("{cell}{}  ", " ".repeat(pad))),
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in &rows {
        line(row.each_ref().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Measurements, RunStatus};

    fn record(id: &str, drill: &str, availability: Option<f64>) -> RunRecord {
        RunRecord {
            cluster: "default".into(),
            id: id.into(),
            drill: drill.into(),
            kind: "probe".into(),
            scheduled: "2027-01-15T10:00:00Z".parse().unwrap(),
            started: None,
            ended: None,
            status: RunStatus::Passed,
            reason: Some("why".into()),
            targets: Vec::new(),
            measurements: Measurements {
                availability,
                ..Measurements::default()
            },
            evidence: serde_json::json!({}),
        }
    }

    #[test]
    fn history_columns_line_up_whatever_the_lengths() {
        let long = "a-drill-name-of-fifty-two-characters-exactly-abcdefg";
        let table = history_table(&[
            record("x-1", "x", Some(1.0)),
            record(&format!("{long}-m25suvgf6z"), long, None),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        let column = |line: &str, word: &str| line.find(word).unwrap();
        let status = column(lines[0], "STATUS");
        assert_eq!(column(lines[1], "passed"), status, "{table}");
        assert_eq!(column(lines[2], "passed"), status, "{table}");
        let reason = column(lines[0], "REASON");
        assert!(
            lines[1..].iter().all(|l| column(l, "why") == reason),
            "{table}"
        );
    }
}
