//! Reading the run history, never writing it: `history` (the runs, as a table or JSON) and
//! `report` (the compliance report).

use std::process::ExitCode;

use chrono::{SecondsFormat, Utc};

use crate::cli::{load, Format, EXIT_ERROR, EXIT_USAGE};
use crate::config::Config;
use crate::history::store::{Spool, Store};
use crate::run::RunRecord;

pub(super) async fn history(
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
        if let Err(e) = crate::history::report::check_drill(&config, &known, drill) {
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
    Ok(crate::cli::delivered(crate::output::to_stdout(|out| {
        out.write_all(text.as_bytes())
    })))
}

/// Nothing in the period to report.
const EXIT_EMPTY: u8 = 3;

/// `firedrill report`: reads the history (never creating one) and writes the report.
pub(super) async fn report(
    path: &std::path::Path,
    query: &crate::history::report::Query,
    format: crate::history::report::Format,
    output: Option<&std::path::Path>,
) -> Result<ExitCode, ExitCode> {
    use crate::history::report::ReportError;
    let config = load(path)?;
    // Read only: nothing is migrated or replayed.
    let store = open_history(&config).await?;
    let fail = |e: crate::history::store::StoreError| {
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
    crate::history::report::check(&config, &known, query).map_err(said)?;
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
    let report = crate::history::report::build(
        crate::history::report::Inputs {
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
                crate::history::report::render_to(&report, format, &mut out)
            });
            if let Err(e) = written {
                std::mem::forget(report);
                return Ok(ExitCode::from(crate::cli::output_failed(&e)));
            }
        }
        Some(file) => {
            // A regular file whole or not at all; a device or FIFO written into; see output.rs.
            let written = crate::output::to_path(file, |mut out| {
                crate::history::report::render_to(&report, format, &mut out)
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
            use crate::history::store::StoreError;
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
            evidence: Box::new(crate::run::Evidence::new()),
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
