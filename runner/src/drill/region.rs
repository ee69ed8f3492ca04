//! What a region failover does besides its steps: the RPO markers and the hooks (promotion,
//! failback) the user declares.
//!
//! **RPO.** A writer inserts a marker (`run`, `seq`, `written_at_ms`) into the primary database every
//! `every`, from `lead_in` before the first fault until promotion begins. After promotion the
//! newest marker of the run is read on the promoted side. RPO is the write time of the last marker
//! the primary acknowledged minus the write time of the newest marker that survived: the span of
//! acknowledged writes the failover lost. Both instants are this process's clock, so no clock skew
//! between databases enters the figure; its resolution is `every`.

use std::time::Duration;

use chrono::{DateTime, Utc};
pub use firedrill_experiments::region::{hook_job, HookContext};
use firedrill_experiments::region::{Hook, HookAction, Markers, Source};
use futures::StreamExt;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use tokio::sync::watch;

/// Why the RPO markers could not be written or read: which database (`primary` or `promoted`),
/// and what it said.
#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    #[error("the environment variable {name} (fault.data) is not set; set it from a Secret in the firedrill Job")]
    Unset { name: String },
    #[error("the {which} database URL is not valid: {source}")]
    Url {
        which: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot connect to the {which} database: {source}")]
    Connect {
        which: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the {which} database does not answer: {source}")]
    NoAnswer {
        which: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create the marker table {table} on the primary: {source}")]
    Table {
        table: String,
        #[source]
        source: sqlx::Error,
    },
    /// The promoted side is not a replica of the primary (it lacks the table the lead-in made).
    #[error("the marker table {table} is not on the promoted database: is fault.data.promoted the replica of fault.data.primary?")]
    NotReplicated { table: String },
    #[error("cannot read the markers on the promoted database: {source}")]
    Read {
        #[source]
        source: sqlx::Error,
    },
    #[error("{source}")]
    Row {
        #[source]
        source: sqlx::Error,
    },
}

/// As its message: the run's evidence records it as text.
impl serde::Serialize for MarkerError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The URL a source names, from the file or the environment.
pub fn url(source: &Source) -> Result<String, MarkerError> {
    match source {
        Source::Url(url) => Ok(url.clone()),
        Source::Env(name) => std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| MarkerError::Unset { name: name.clone() }),
    }
}

async fn connect(source: &Source, which: &'static str) -> Result<PgPool, MarkerError> {
    let url = url(source)?;
    let options: PgConnectOptions = url
        .parse()
        .map_err(|source| MarkerError::Url { which, source })?;
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|source| MarkerError::Connect { which, source })
}

/// What a dry run checks of the markers: both databases reachable with the URLs the drill
/// names (from the environment, for `url_env`), without writing anything.
pub async fn check(markers: &Markers) -> Result<(), MarkerError> {
    for (source, what) in [
        (&markers.primary, "primary"),
        (&markers.promoted, "promoted"),
    ] {
        let pool = connect(source, what).await?;
        let answer = sqlx::query("SELECT 1").execute(&pool).await;
        pool.close().await;
        answer.map_err(|source| MarkerError::NoAnswer {
            which: what,
            source,
        })?;
    }
    Ok(())
}

/// A marker the primary acknowledged, or the newest that survived.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Marker {
    pub seq: i64,
    pub written_at: DateTime<Utc>,
}

/// What the writer did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Written {
    pub first: Option<Marker>,
    pub last: Option<Marker>,
    pub acknowledged: u64,
    pub failed: u64,
    pub last_error: Option<String>,
}

/// The marker writer, running until [`MarkerWriter::stop`].
pub struct MarkerWriter {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    written: std::sync::Arc<std::sync::Mutex<Written>>,
}

/// Creates the marker table on the primary if it is missing and starts writing.
pub async fn start(markers: &Markers, run: &str) -> Result<MarkerWriter, MarkerError> {
    let pool = connect(&markers.primary, "primary").await?;
    let table = &markers.table;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE IF NOT EXISTS {table} (run text NOT NULL, seq bigint NOT NULL, written_at_ms bigint NOT NULL, PRIMARY KEY (run, seq))"
    )))
    .execute(&pool)
    .await
    .map_err(|source| MarkerError::Table {
        table: table.clone(),
        source,
    })?;
    let (stop, mut stopped) = watch::channel(false);
    let insert = format!("INSERT INTO {table} (run, seq, written_at_ms) VALUES ($1, $2, $3)");
    let (run, every) = (run.to_owned(), markers.every);
    let shared = std::sync::Arc::new(std::sync::Mutex::new(Written::default()));
    let progress = shared.clone();
    let task = tokio::spawn(async move {
        let mut written = Written::default();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seq = 0_i64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped.changed() => break,
            }
            seq += 1;
            let marker = Marker {
                seq,
                written_at: Utc::now(),
            };
            let write = sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
                .bind(&run)
                .bind(seq)
                .bind(marker.written_at.timestamp_millis())
                .execute(&pool);
            // A write the primary does not acknowledge in time is not counted as written.
            match tokio::time::timeout(every.max(Duration::from_secs(1)) * 2, write).await {
                Ok(Ok(_)) => {
                    written.first.get_or_insert(marker);
                    written.last = Some(marker);
                    written.acknowledged += 1;
                }
                Ok(Err(e)) => {
                    written.failed += 1;
                    written.last_error = Some(e.to_string());
                }
                Err(_) => {
                    written.failed += 1;
                    written.last_error = Some("no acknowledgement in time".into());
                }
            }
            if let Ok(mut shared) = progress.lock() {
                *shared = written.clone();
            }
            if *stopped.borrow() {
                break;
            }
        }
        pool.close().await;
    });
    Ok(MarkerWriter {
        stop,
        task,
        written: shared,
    })
}

impl MarkerWriter {
    /// What was written so far.
    pub fn progress(&self) -> Written {
        self.written.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Stops writing; what was written.
    pub async fn stop(self) -> Written {
        let _ = self.stop.send(true);
        let written = self.written.clone();
        let _ = self.task.await;
        let written = written.lock().map(|w| w.clone()).unwrap_or_default();
        written
    }
}

/// The newest marker of the run on the promoted side.
pub async fn newest(markers: &Markers, run: &str) -> Result<Option<Marker>, MarkerError> {
    let pool = connect(&markers.promoted, "promoted").await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT seq, written_at_ms FROM {} WHERE run = $1 ORDER BY seq DESC LIMIT 1",
        markers.table
    )))
    .bind(run)
    .fetch_optional(&pool)
    .await;
    pool.close().await;
    match row {
        Ok(Some(row)) => {
            let seq: i64 = row
                .try_get("seq")
                .map_err(|source| MarkerError::Row { source })?;
            let ms: i64 = row
                .try_get("written_at_ms")
                .map_err(|source| MarkerError::Row { source })?;
            Ok(Some(Marker {
                seq,
                written_at: DateTime::from_timestamp_millis(ms).unwrap_or_default(),
            }))
        }
        Ok(None) => Ok(None),
        // The table is created on the primary before the lead-in: a promoted replica of it has it.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
            Err(MarkerError::NotReplicated {
                table: markers.table.clone(),
            })
        }
        Err(source) => Err(MarkerError::Read { source }),
    }
}

/// The RPO in seconds and how it was found: `(seconds, at_least)`, where `at_least` says no
/// marker survived, so the loss is at least everything written.
pub fn rpo(written: &Written, survived: Option<Marker>) -> Option<(f64, bool)> {
    let last = written.last?;
    let seconds =
        |from: DateTime<Utc>| (last.written_at - from).num_milliseconds().max(0) as f64 / 1000.0;
    match survived {
        // A marker newer than the last acknowledged one (written but acknowledged too late)
        // lost nothing acknowledged.
        Some(s) if s.seq >= last.seq => Some((0.0, false)),
        Some(s) => Some((seconds(s.written_at), false)),
        None => written.first.map(|first| (seconds(first.written_at), true)),
    }
}

/// The RPO evidence: what was written, what survived, the figure.
pub fn evidence(written: &Written, survived: Option<Marker>, table: &str) -> Value {
    let marker = |m: Option<Marker>| {
        m.map(|m| {
            json!({ "seq": m.seq, "written_at": m.written_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true) })
        })
    };
    let rpo = rpo(written, survived);
    json!({
        "table": table,
        "acknowledged": written.acknowledged,
        "failed_writes": written.failed,
        "last_error": written.last_error,
        "last_written": marker(written.last),
        "newest_survived": marker(survived),
        "rpo_seconds": rpo.map(|(s, _)| s),
        "lost_markers": match (written.last, survived) {
            (Some(l), Some(s)) => (l.seq - s.seq).max(0),
            (Some(l), None) => l.seq,
            _ => 0,
        },
        "note": rpo.filter(|(_, at_least)| *at_least).map(|_| "no marker survived: the loss is at least everything written"),
    })
}

/// What became of a hook.
#[derive(Clone, Debug, PartialEq)]
pub struct HookOutcome {
    pub ok: bool,
    pub seconds: f64,
    /// What it said (the tail of its output), or why it failed.
    pub detail: String,
}

impl HookOutcome {
    pub fn to_json(&self, phase: &str) -> Value {
        json!({ "phase": phase, "ok": self.ok, "seconds": self.seconds, "detail": self.detail })
    }
}

/// Runs a hook to the end or its timeout.
pub async fn run_hook(
    hook: &Hook,
    context: &HookContext<'_>,
    kube: Option<&crate::cluster::kubernetes::Kube>,
) -> HookOutcome {
    let started = std::time::Instant::now();
    let (ok, detail) = match &hook.action {
        HookAction::Command(argv) => command(argv, hook.timeout, context).await,
        HookAction::Job(spec) => match kube {
            Some(kube) => job(kube, spec, hook.timeout, context).await,
            None => (false, "a Job hook needs cluster access".to_owned()),
        },
    };
    HookOutcome {
        ok,
        seconds: started.elapsed().as_secs_f64(),
        detail,
    }
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let start = text.len().saturating_sub(2000);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_owned()
}

async fn command(argv: &[String], timeout: Duration, c: &HookContext<'_>) -> (bool, String) {
    let Some((program, args)) = argv.split_first() else {
        return (false, "the hook's command is empty".into());
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .env("FIREDRILL_PHASE", c.phase)
        .env("FIREDRILL_RUN", c.run)
        .env("FIREDRILL_DRILL", c.drill)
        .env("FIREDRILL_FROM_REGION", c.from)
        .env("FIREDRILL_TO_REGION", c.to)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // Its own process group, so that a hook past its timeout is killed with everything it
        // started (a shell's children too).
        .process_group(0)
        .kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return (false, format!("cannot start {program}: {e}")),
    };
    let group = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => {
            if let Some(group) = group {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{group}")])
                    .status();
            }
            (
                false,
                format!(
                    "{program} did not finish within {} (killed, with every process it started; what it did is unknown)",
                    firedrill_reader::duration::format(timeout)
                ),
            )
        }
        Ok(Err(e)) => (false, format!("{program}: {e}")),
        Ok(Ok(out)) => {
            let said = [tail(&out.stdout), tail(&out.stderr)]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("\n");
            match out.status.code() {
                Some(0) => (true, said),
                Some(code) => (false, format!("{program} exited with {code}: {said}")),
                None => (false, format!("{program} was killed by a signal: {said}")),
            }
        }
    }
}

async fn job(
    kube: &crate::cluster::kubernetes::Kube,
    spec: &Value,
    timeout: Duration,
    c: &HookContext<'_>,
) -> (bool, String) {
    use k8s_openapi::api::batch::v1::Job;
    let manifest = hook_job(kube.namespace(), spec, c);
    let job: Job = match serde_json::from_value(manifest) {
        Ok(job) => job,
        Err(e) => return (false, format!("the hook's Job is not a valid Job: {e}")),
    };
    let name = job.metadata.name.clone().unwrap_or_default();
    let api: kube::Api<Job> = kube::Api::namespaced(kube.client().clone(), kube.namespace());
    if let Err(e) = api.create(&kube::api::PostParams::default(), &job).await {
        return (false, format!("cannot create the hook Job {name}: {e}"));
    }
    // The Job's own verdict (its retries are its business), as the API server reports it.
    let verdict = |job: &Job, kind: &str| {
        job.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == kind && c.status == "True"))
    };
    let ended = async {
        let mut updates = std::pin::pin!(crate::cluster::kubernetes::watch_one(api.clone(), &name));
        while let Some(update) = updates.next().await {
            match update {
                Ok(Some(job)) if verdict(&job, "Complete") => {
                    return Ok((true, format!("Job {}/{name} succeeded", kube.namespace())));
                }
                Ok(Some(job)) if verdict(&job, "Failed") => {
                    return Ok((
                        false,
                        format!(
                            "Job {}/{name} failed (kubectl -n {} logs job/{name})",
                            kube.namespace(),
                            kube.namespace()
                        ),
                    ));
                }
                Ok(Some(_)) => {}
                Ok(None) => return Ok((false, format!("the hook Job {name} was deleted"))),
                Err(e) if crate::cluster::kubernetes::watch_forbidden(&e) => {
                    return Err(format!(
                        "could not be watched (firedrill's Role needs watch on jobs: {e})"
                    ));
                }
                Err(e) => tracing::warn!(job = %name, error = %e, "cannot watch the hook Job"),
            }
        }
        Err("could not be watched to its end".to_owned())
    };
    let unseen = match tokio::time::timeout(timeout, ended).await {
        Ok(Ok(ended)) => return ended,
        Ok(Err(why)) => why,
        Err(_) => format!(
            "did not finish within {}",
            firedrill_reader::duration::format(timeout)
        ),
    };
    // Stopped with its pods, so that it cannot finish later unseen.
    let deleted = api
        .delete(
            &name,
            &kube::api::DeleteParams {
                propagation_policy: Some(kube::api::PropagationPolicy::Foreground),
                ..Default::default()
            },
        )
        .await
        .map_or_else(
            |e| format!("; deleting it failed: {e}"),
            |_| "; deleted".to_owned(),
        );
    (
        false,
        format!(
            "Job {}/{name} {unseen}{deleted} (what it did is unknown)",
            kube.namespace()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn rpo_is_the_span_of_acknowledged_writes_lost() {
        let written = Written {
            first: Some(Marker {
                seq: 1,
                written_at: at(0),
            }),
            last: Some(Marker {
                seq: 10,
                written_at: at(9),
            }),
            acknowledged: 10,
            ..Written::default()
        };
        assert_eq!(
            rpo(
                &written,
                Some(Marker {
                    seq: 10,
                    written_at: at(9)
                })
            ),
            Some((0.0, false))
        );
        assert_eq!(
            rpo(
                &written,
                Some(Marker {
                    seq: 6,
                    written_at: at(5)
                })
            ),
            Some((4.0, false))
        );
        // Nothing survived: at least everything written.
        assert_eq!(rpo(&written, None), Some((9.0, true)));
        // Nothing acknowledged: no figure.
        assert_eq!(rpo(&Written::default(), None), None);
    }
}
