//! Running a drill: `execute` (in the drill's Job: the run itself, its record kept and
//! announced) and `run` (from a workstation: the Job created, and followed with `--wait`).

use std::process::ExitCode;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};

use super::{connect, shutdown_signal};
use crate::cli::{load, EXIT_ERROR, EXIT_USAGE};
use crate::cluster::job::{self, RunRef, Runtime};
use crate::cluster::kubernetes::{Created, Kube};
use crate::config::{Config, Drill};
use crate::drill::executor::{self, Execution, Kept, Sinks};
use crate::drill::gate::Endpoints;
use crate::history::pushgateway::Retry;
use crate::history::store::{Spool, Store};

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

pub(super) async fn execute(
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
        Some(kube) => crate::cluster::ledger::recent_hits(kube, since)
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
            held: Default::default(),
            events: None,
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
                && e.kind == drill.kind().to_string()
                && crate::history::store::timestamp(e.scheduled)
                    == crate::history::store::timestamp(scheduled)
                && e.status == crate::run::RunStatus::Running =>
        {
            Ok(())
        }
        Some(e) => {
            eprintln!(
                "error: run {id} is already recorded ({} of drill {}, scheduled {}); a run id is used once (leave out --run for a fresh one)",
                e.status,
                e.drill,
                crate::history::store::timestamp(e.scheduled)
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

pub(super) async fn run_now(
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
        return Ok(crate::cli::delivered(crate::output::to_stdout(|out| {
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
        return Ok(ExitCode::from(crate::cli::output_failed(&e)));
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
