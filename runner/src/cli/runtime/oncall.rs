//! The on-call commands, which act on a cluster with or without a drill file: `stop` (the kill
//! switch, and everything undone), `resume`, and `rollback` (a run's ledger reverted, or a saved
//! ledger's revert shown offline with `--render`); and, with the drill file, `skip` and `unskip`
//! (one fire vetoed, or the veto taken back).

use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::cli::{load, ClusterTarget, EXIT_ERROR, EXIT_INVALID, EXIT_USAGE};
use crate::cluster::kubernetes::Kube;
use crate::cluster::ledger::{self, Protection, Selection};
use crate::cluster::skips;
use crate::config::Config;
use crate::output::Lines;

/// A line of a command's output (see `output::Lines`: never a panic, failures kept).
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        $out.line(format_args!($($arg)*))
    };
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

pub(super) async fn stop(target: &ClusterTarget, reason: &str) -> Result<ExitCode, ExitCode> {
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
    Ok(crate::cli::finished(
        if report.clean() { 0 } else { 1 },
        out.finish(),
    ))
}

/// The fire `skip` or `unskip` names (`--at`, else the drill's next), or the usage error said:
/// checked against the drill file before any cluster is reached.
fn chosen_fire(
    config: &Config,
    drill: &str,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ExitCode> {
    skips::choose(config, drill, at, now).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

/// What a refused mark or unmark exits with: 2 for a fire that is (or is not) marked, 4 when
/// the cluster did not answer or the ConfigMap is not firedrill's.
fn refused(e: &skips::SkipError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(match e {
        skips::SkipError::AlreadySkipped { .. } | skips::SkipError::NotSkipped { .. } => EXIT_USAGE,
        _ => EXIT_ERROR,
    })
}

pub(super) async fn skip(
    path: &std::path::Path,
    drill: &str,
    at: Option<DateTime<Utc>>,
    reason: &str,
) -> Result<ExitCode, ExitCode> {
    let config = load(path)?;
    let now = Utc::now();
    let scheduled = chosen_fire(&config, drill, at, now)?;
    let kube = super::connect(&config).await?;
    let mark = skips::Skip {
        drill: drill.to_owned(),
        scheduled,
        reason: reason.to_owned(),
        by: skips::whoami(&kube).await,
        marked: now,
    };
    if let Err(e) = skips::mark(&kube, &mark, now).await {
        return Err(refused(&e));
    }
    let at = scheduled.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut out = Lines::new();
    say!(
        out,
        "skipped: {drill} at {at} ({}); the scheduler records it skipped instead of running it",
        mark.describe()
    );
    say!(
        out,
        "take it back before then: firedrill unskip {drill} --at {at} --config {}",
        path.display()
    );
    Ok(crate::cli::finished(0, out.finish()))
}

pub(super) async fn unskip(
    path: &std::path::Path,
    drill: &str,
    at: Option<DateTime<Utc>>,
) -> Result<ExitCode, ExitCode> {
    let config = load(path)?;
    let now = Utc::now();
    // A fire named is taken back even if the calendar no longer has it (the file changed).
    let scheduled = match at {
        Some(at) => {
            skips::known(&config, drill).map_err(|e| {
                eprintln!("error: {e}");
                ExitCode::from(EXIT_USAGE)
            })?;
            at
        }
        None => chosen_fire(&config, drill, None, now)?,
    };
    let kube = super::connect(&config).await?;
    let was = skips::unmark(&kube, drill, scheduled, now)
        .await
        .map_err(|e| refused(&e))?;
    let mut out = Lines::new();
    say!(
        out,
        "unskipped: {drill} at {} (it was {}); it fires as planned",
        scheduled.to_rfc3339_opts(SecondsFormat::Secs, true),
        was.describe()
    );
    Ok(crate::cli::finished(0, out.finish()))
}

pub(super) async fn resume(target: &ClusterTarget) -> Result<ExitCode, ExitCode> {
    let (kube, _, config) = resolve_target(target).await?;
    let namespace = kube.namespace().to_owned();
    let mut out = Lines::new();
    match ledger::release(&kube).await {
        Ok(true) => say!(out, "kill switch released in {namespace}"),
        Ok(false) => say!(out, "the kill switch was not engaged in {namespace}"),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(crate::cli::finished(EXIT_ERROR, out.finish()));
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
    Ok(crate::cli::finished(0, out.finish()))
}

pub(super) async fn rollback(
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
    Ok(crate::cli::finished(
        if failed { 1 } else { 0 },
        out.finish(),
    ))
}

/// `rollback --ledger FILE --render`: a saved ledger's revert, offline.
pub(super) async fn render_ledger(
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
    let text = crate::config::read_text(path, firedrill_reader::yaml::Limits::LEDGER.max_bytes)
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
    let node = firedrill_reader::yaml::parse_within(&text, firedrill_reader::yaml::Limits::LEDGER)
        .map_err(|e| invalid(format!("{}:{}: {}", e.mark.line, e.mark.column, e.message)))?;
    let object = firedrill_reader::yaml::to_json(&node);
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
    Ok(crate::cli::finished(
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
