//! The run history: every run and every fire, in SQLite (embedded, the default) or PostgreSQL.
//!
//! One schema serves both through sqlx's `Any` driver: text timestamps (RFC 3339, UTC, fixed
//! width, so they sort), JSON as text, `$n` placeholders (SQLite accepts them too). Migrations are
//! versioned and applied when a writer (the scheduler, `execute`) opens the history; applying them
//! twice changes nothing. Readers (`history`, `report`) never create, migrate or write.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Row};

use crate::config::Store as StoreUrl;
pub use crate::run::{Evidence, Hit, Measurements, RunRecord, RunStatus};

/// The runs of a period (`$1` to `$2`), of a cluster (`$3`) and a drill (`$4`), `''` for any.
macro_rules! in_period {
    () => {
        " WHERE scheduled >= $1 AND scheduled < $2 AND ($3 = '' OR cluster = $3) AND ($4 = '' OR drill = $4)"
    };
}

/// The columns of a run, in the order `read_run` expects (a macro, so queries stay literals).
macro_rules! select_run {
    () => {
        "SELECT cluster, id, drill, kind, scheduled, started, ended, status, reason, targets, measurements, evidence FROM runs"
    };
}

// After the macros, which they use.
mod migrations;
mod read;
mod spool;

use migrations::{mark_failed_reverts, MIGRATIONS, ROLLBACK_FAILED_COLUMN};
use read::{joined, read_run, read_runs, read_sqlite, sqlite_parts, RunsPart};
pub use spool::Spool;

/// What a database holds, as far as firedrill is concerned.
enum Shape {
    /// No table at all: a new history for a writer, nothing for a reader.
    Empty,
    Firedrill,
    /// Someone else's database (or no database at all), and why it is taken for one.
    Foreign(String),
}

/// What a path is when it is not a regular file, for messages; `None` for a regular file.
pub fn not_a_file(metadata: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = metadata.file_type();
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// What became of one scheduled fire, as the scheduler saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FireRecord {
    pub drill: String,
    pub scheduled: DateTime<Utc>,
    /// `fired`, `skipped`, `deferred` or `missed`.
    pub status: String,
    pub reason: Option<String>,
    pub run: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {url}: {source} (check `store:` in the drill file)")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("store migration {version} ({name}) failed: {source}")]
    Migrate {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the run history {store} is at schema version {have}, this firedrill reads version {want}: its writer migrates it (start this version's `firedrill scheduler` on it, or run this version's `firedrill execute` with it, with write access); `history` and `report` only read")]
    Outdated { store: String, have: i64, want: i64 },
    #[error("the run history {store} is at schema version {have}, newer than this firedrill reads ({want}): read it with the firedrill version that writes it")]
    Newer { store: String, have: i64, want: i64 },
    #[error("{store} is not a firedrill run history ({why}); it is left untouched (check `store:` in the drill file, or FIREDRILL_STORE)")]
    NotAHistory { store: String, why: String },
    #[error("{path} is not a regular file ({what}): a SQLite history is a file; it is left untouched (check `store:` in the drill file, or FIREDRILL_STORE)")]
    NotAFile { path: String, what: &'static str },
    #[error("store query failed: {0}")]
    Query(sqlx::Error),
    /// The store did not answer in time (no connection free, or an answer too slow).
    #[error("the store did not answer within {}s ({what})", waited.as_secs_f64())]
    Timeout {
        what: &'static str,
        waited: Duration,
    },
    /// The store cannot be reached: not opened, its connections closed, the network.
    #[error("the store is unavailable: {why}")]
    Unavailable { why: String },
    #[error("run {id} is already recorded for drill {drill} ({kind}, scheduled {scheduled}); a record never changes its drill, kind or scheduled instant (give this run another --run id)")]
    Conflict {
        id: String,
        drill: String,
        kind: String,
        scheduled: String,
    },
    #[error("the store holds an unreadable {what}: {value:?}")]
    Corrupt { what: &'static str, value: String },
    #[error("reading the SQLite history failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl From<sqlx::Error> for StoreError {
    /// A timeout and an unreachable store as themselves; anything else the query's failure.
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut => StoreError::Timeout {
                what: "no connection to it came free",
                waited: ACQUIRE_TIMEOUT,
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable { why: e.to_string() },
            other => StoreError::Query(other),
        }
    }
}

impl StoreError {
    /// Whether trying again later may succeed (the store was slow or out of reach).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Timeout { .. } | StoreError::Unavailable { .. }
        )
    }
}

/// How long a query waits for a connection of the pool.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Store {
    pool: AnyPool,
    /// Where the history is, for reports, which read it through its own driver.
    url: StoreUrl,
    /// The cluster whose fires, state and cooldowns this process reads and writes.
    cluster: String,
}

/// A drill a cluster's history has records of, and since when its scheduler planned it.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub cluster: String,
    pub drill: String,
    /// The scheduled instant of its first fire record (none: only runs, e.g. by hand).
    pub first_fire: Option<DateTime<Utc>>,
}

/// Fixed-width UTC text, so that text order is time order.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt {
            what: "timestamp",
            value: text.to_owned(),
        })
}

fn parse_targets(text: &str) -> Result<Vec<Hit>, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt {
        what: "list of targets",
        value: text.to_owned(),
    })
}

fn parse_json(text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt {
        what: "JSON document",
        value: text.to_owned(),
    })
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates: what the writers (the scheduler,
    /// `execute`) do. Fires, state, cooldowns and `run`/`runs` are those of `cluster`; a run is
    /// recorded under the cluster it names. A SQLite file that holds other tables but not
    /// firedrill's is someone else's database: refused, untouched. (A PostgreSQL database is
    /// made for firedrill by whoever runs the server, and may hold other tables by design, e.g.
    /// an extension's: it is migrated.)
    pub async fn open(url: &StoreUrl, cluster: &str) -> Result<Store, StoreError> {
        let store = Store::connect(url, cluster, false).await?;
        if let StoreUrl::Sqlite(_) = url {
            if let Shape::Foreign(why) = store.shape().await? {
                return Err(StoreError::NotAHistory {
                    store: url.to_string(),
                    why,
                });
            }
        }
        store.migrate().await?;
        Ok(store)
    }

    /// What the database holds: nothing yet, firedrill's history, or something else.
    async fn shape(&self) -> Result<Shape, StoreError> {
        let query = match self.url {
            StoreUrl::Sqlite(_) => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            }
            StoreUrl::Postgres(_) => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name"
            }
        };
        let tables: Vec<String> = match sqlx::query_scalar(query).fetch_all(&self.pool).await {
            Ok(tables) => tables,
            // SQLITE_NOTADB: a file that is not a SQLite database at all.
            Err(e)
                if e.as_database_error()
                    .and_then(|d| d.code())
                    .is_some_and(|c| c == "26") =>
            {
                return Ok(Shape::Foreign("not a SQLite database".to_owned()))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(if tables.iter().any(|t| t == "firedrill_migrations") {
            Shape::Firedrill
        } else if tables.is_empty() {
            Shape::Empty
        } else {
            let shown = tables.len().min(5);
            Shape::Foreign(format!(
                "it holds the table{} {}{}, and none of firedrill's",
                if tables.len() == 1 { "" } else { "s" },
                tables[..shown].join(", "),
                if tables.len() > shown { ", ..." } else { "" }
            ))
        })
    }

    /// `read_only`: a SQLite file is opened `mode=ro` (a missing file is an error, never a new
    /// empty history).
    async fn connect(url: &StoreUrl, cluster: &str, read_only: bool) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        // SQLite would wait on a FIFO for ever and cannot keep a history in a device or a
        // directory: a path that exists must be a regular file.
        if let StoreUrl::Sqlite(path) = url {
            if let Some(what) = std::fs::metadata(path).ok().and_then(|m| not_a_file(&m)) {
                return Err(StoreError::NotAFile {
                    path: path.clone(),
                    what,
                });
            }
        }
        let (connect, max) = match url {
            // sqlx decodes the path: encode what would otherwise end it or be decoded.
            StoreUrl::Sqlite(path) => (
                format!(
                    "sqlite://{}?mode={}",
                    path.replace('%', "%25")
                        .replace('?', "%3F")
                        .replace('#', "%23"),
                    if read_only { "ro" } else { "rwc" }
                ),
                1,
            ),
            StoreUrl::Postgres(url) => (url.clone(), 4),
        };
        // One direct connection first: a wrong URL or a refused port fails at once, with the
        // driver's own words, instead of after the pool's acquire timeout.
        let probe = sqlx::AnyConnection::connect(&connect)
            .await
            .map_err(|source| StoreError::Open {
                url: redact(&connect),
                source,
            })?;
        let _ = probe.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(&connect)
            .await
            .map_err(|source| StoreError::Open {
                url: redact(&connect),
                source,
            })?;
        Ok(Store {
            pool,
            url: url.clone(),
            cluster: cluster.to_owned(),
        })
    }

    /// Opens a history to read it only (`history`, `report`): nothing is created, migrated or
    /// written, so read-only credentials suffice. A database that is not a firedrill history
    /// (empty, or someone else's) is refused; a history at another schema is said to be so,
    /// with what migrates it.
    pub async fn open_existing(url: &StoreUrl, cluster: &str) -> Result<Store, StoreError> {
        let store = Store::connect(url, cluster, true).await?;
        store.at_current_schema().await?;
        Ok(store)
    }

    /// `check`: the history opens with write access, is a firedrill history at this version's
    /// schema (nothing is migrated: a command writes only what it names), and takes a write: a
    /// row inserted in a transaction rolled back. A missing SQLite file is said, never created.
    pub async fn check_writable(url: &StoreUrl, cluster: &str) -> Result<(), StoreError> {
        if let StoreUrl::Sqlite(path) = url {
            if !std::path::Path::new(path).exists() {
                return Err(StoreError::NotAHistory {
                    store: url.to_string(),
                    why: "the file does not exist".to_owned(),
                });
            }
        }
        let store = Store::connect(url, cluster, false).await?;
        let checked = async {
            store.at_current_schema().await?;
            let mut tx = store.pool.begin().await?;
            sqlx::query(
                "INSERT INTO scheduler_state (key, value, cluster) VALUES ($1, $2, $3) ON CONFLICT (cluster, key) DO NOTHING",
            )
            .bind("firedrill-check")
            .bind("")
            .bind(cluster)
            .execute(&mut *tx)
            .await?;
            tx.rollback().await?;
            Ok(())
        }
        .await;
        store.close().await;
        checked
    }

    /// Refuses a database that is not a firedrill history (empty, or someone else's), or a
    /// history at another schema, saying what migrates it.
    async fn at_current_schema(&self) -> Result<(), StoreError> {
        let url = &self.url;
        let why = match self.shape().await? {
            Shape::Firedrill => None,
            Shape::Empty => Some("it holds no tables: nothing has been recorded there".to_owned()),
            Shape::Foreign(why) => Some(why),
        };
        if let Some(why) = why {
            return Err(StoreError::NotAHistory {
                store: url.to_string(),
                why,
            });
        }
        let want = MIGRATIONS.last().map_or(0, |m| m.0);
        let have: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM firedrill_migrations")
            .fetch_one(&self.pool)
            .await?;
        let (have, store_name) = (have.unwrap_or(0), url.to_string());
        match have.cmp(&want) {
            std::cmp::Ordering::Equal => Ok(()),
            std::cmp::Ordering::Less => Err(StoreError::Outdated {
                store: store_name,
                have,
                want,
            }),
            std::cmp::Ordering::Greater => Err(StoreError::Newer {
                store: store_name,
                have,
                want,
            }),
        }
    }

    /// Applies the migrations not yet applied, each in its own transaction.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS firedrill_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        for &(version, name, sql) in MIGRATIONS {
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT version FROM firedrill_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await?;
            if applied.is_some() {
                continue;
            }
            let fail = |source| StoreError::Migrate {
                version,
                name,
                source,
            };
            let mut tx = self.pool.begin().await.map_err(fail)?;
            for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                // `$1` in a migration is the name of the cluster whose process opens the
                // history first: rows from before the fleet are that cluster's.
                let query = sqlx::query(statement);
                let query = if statement.contains("$1") {
                    query.bind(&self.cluster)
                } else {
                    query
                };
                query.execute(&mut *tx).await.map_err(fail)?;
            }
            if version == ROLLBACK_FAILED_COLUMN {
                mark_failed_reverts(&mut tx).await.map_err(fail)?;
            }
            sqlx::query(
                "INSERT INTO firedrill_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(version)
            .bind(name)
            .bind(timestamp(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
        }
        Ok(())
    }

    /// The versions applied so far.
    pub async fn migrations(&self) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT version FROM firedrill_migrations ORDER BY version")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Inserts the run, or updates the run with this id, which must be of the same drill, kind
    /// and scheduled instant: a record never changes what it is a record of.
    pub async fn record_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "INSERT INTO runs (id, drill, kind, scheduled, started, ended, status, reason, targets, measurements, evidence, recorded_at, cluster, rollback_failed)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (cluster, id) DO UPDATE SET
               started = excluded.started, ended = excluded.ended, status = excluded.status,
               reason = excluded.reason, targets = excluded.targets,
               measurements = excluded.measurements, evidence = excluded.evidence,
               recorded_at = excluded.recorded_at, rollback_failed = excluded.rollback_failed
             WHERE runs.drill = excluded.drill AND runs.kind = excluded.kind
               AND runs.scheduled = excluded.scheduled",
        )
        .bind(&run.id)
        .bind(&run.drill)
        .bind(&run.kind)
        .bind(timestamp(run.scheduled))
        .bind(run.started.map(timestamp))
        .bind(run.ended.map(timestamp))
        .bind(run.status.as_str())
        .bind(run.reason.as_deref())
        .bind(serde_json::to_string(&run.targets).unwrap_or_else(|_| "[]".into()))
        .bind(serde_json::to_string(&run.measurements).unwrap_or_else(|_| "{}".into()))
        // Cannot fail: every map in the evidence has text keys.
        .bind(serde_json::to_string(&run.evidence).unwrap_or_else(|_| "{}".into()))
        .bind(timestamp(Utc::now()))
        .bind(&run.cluster)
        .bind(i64::from(run.rollback_failed()))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            let existing = self.run_of(&run.cluster, &run.id).await?;
            return Err(match existing {
                Some(e) => StoreError::Conflict {
                    id: e.id,
                    drill: e.drill,
                    kind: e.kind,
                    scheduled: timestamp(e.scheduled),
                },
                None => StoreError::Corrupt {
                    what: "run that was neither inserted nor updated",
                    value: run.id.clone(),
                },
            });
        }
        // A revert that failed leaves its ledger open: the scheduler watches for it to close.
        if run.rollback_failed() && run.rollback_closed().is_none() {
            sqlx::query(
                "INSERT INTO open_rollbacks (cluster, run, recorded_at) VALUES ($1, $2, $3)
                 ON CONFLICT (cluster, run) DO NOTHING",
            )
            .bind(&run.cluster)
            .bind(&run.id)
            .bind(timestamp(Utc::now()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The runs of this cluster whose revert failed and whose ledger is not yet known closed.
    pub async fn open_rollbacks(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT run FROM open_rollbacks WHERE cluster = $1 ORDER BY run")
            .bind(&self.cluster)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Records that the ledger a run's failed revert left open was found no longer open at
    /// `at` (`restored`: replayed to the end; else deleted while open; `how`: what was found),
    /// in the run's evidence (`rollback_closed`), and stops tracking it. Returns whether the
    /// run was found.
    pub async fn close_rollback(
        &self,
        run: &str,
        at: DateTime<Utc>,
        restored: bool,
        how: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let evidence: Option<String> =
            sqlx::query_scalar("SELECT evidence FROM runs WHERE cluster = $1 AND id = $2")
                .bind(&self.cluster)
                .bind(run)
                .fetch_optional(&mut *tx)
                .await?;
        let found = evidence.is_some();
        if let Some(text) = evidence {
            // Edited as the JSON document it is, so that what a newer version wrote and this
            // one does not know is kept.
            let mut evidence = parse_json(&text)?;
            if let Some(map) = evidence.as_object_mut() {
                let closed = crate::run::Closed {
                    at: Some(timestamp(at)),
                    how: Some(how.to_owned()),
                    restored,
                };
                map.insert(
                    "rollback_closed".to_owned(),
                    serde_json::to_value(closed).unwrap_or_default(),
                );
            }
            sqlx::query("UPDATE runs SET evidence = $1 WHERE cluster = $2 AND id = $3")
                .bind(evidence.to_string())
                .bind(&self.cluster)
                .bind(run)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM open_rollbacks WHERE cluster = $1 AND run = $2")
            .bind(&self.cluster)
            .bind(run)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(found)
    }

    /// Records a run, retrying with backoff for a bounded time; a conflict is not retried.
    pub async fn record_run_with_retry(&self, run: &RunRecord) -> Result<(), StoreError> {
        (|| self.record_run(run))
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(2))
                    .with_max_times(5),
            )
            .when(|e| !matches!(e, StoreError::Conflict { .. }))
            .notify(|e, after| tracing::warn!(run = %run.id, error = %e, retry_in = ?after, "store write failed"))
            .await
    }

    /// The run `id` of this store's cluster.
    pub async fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.run_of(&self.cluster, id).await
    }

    async fn run_of(&self, cluster: &str, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(concat!(select_run!(), " WHERE cluster = $1 AND id = $2"))
            .bind(cluster)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(read_run).transpose()
    }

    /// Runs, newest first, optionally of one drill and scheduled at or after `since`.
    pub async fn runs(
        &self,
        drill: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            select_run!(),
            " WHERE cluster = $3 AND ($1 = '' OR drill = $1) AND scheduled >= $2 ORDER BY scheduled DESC, id"
        ))
        .bind(drill.unwrap_or(""))
        .bind(since.map(timestamp).unwrap_or_default())
        .bind(&self.cluster)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_run).collect()
    }

    /// When `drill` last passed on this store's cluster (the end of its newest passed run).
    pub async fn last_success(&self, drill: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let ended: Option<String> = sqlx::query_scalar(
            "SELECT MAX(ended) FROM runs WHERE cluster = $1 AND drill = $2 AND status = 'passed'",
        )
        .bind(&self.cluster)
        .bind(drill)
        .fetch_one(&self.pool)
        .await?;
        ended.as_deref().map(parse_timestamp).transpose()
    }

    /// Every run of every cluster scheduled in `[since, until)`, optionally of one cluster and
    /// one drill, in no particular order. Rows are
    /// read one at a time and kept only as typed, so a year of hourly runs never sits in memory
    /// twice. A long period is read in two halves side by side (on two connections, decoded on
    /// two threads): the read and the decoding are most of a year's report.
    pub async fn runs_between(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        cluster: Option<&str>,
        drill: Option<&str>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let part = |since, until, rows: Option<(i64, i64)>| RunsPart {
            since: timestamp(since),
            until: timestamp(until),
            cluster: cluster.unwrap_or("").to_owned(),
            drill: drill.unwrap_or("").to_owned(),
            rows,
        };
        let path = match &self.url {
            StoreUrl::Sqlite(path) => path,
            StoreUrl::Postgres(url) => {
                // On PostgreSQL's own driver (`Any` copies every value once more), each half
                // planned as the server sees fit (its statistics say how).
                let middle = since + (until - since) / 2;
                let halves = [(since, middle), (middle, until)].map(|(from, to)| {
                    let (url, part) = (url.clone(), part(from, to, None));
                    tokio::spawn(async move {
                        let mut c = sqlx::PgConnection::connect(&url).await?;
                        let runs = {
                            let rows = sqlx::query(concat!(select_run!(), in_period!()));
                            read_runs(part.bind(rows).fetch(&mut c)).await
                        };
                        let _ = c.close().await;
                        runs
                    })
                });
                return joined(halves.into()).await;
            }
        };
        // SQLite is read in place (rusqlite, on blocking threads): each value is decoded from
        // the page it is on, where sqlx would copy it and hand it to another thread first.
        let (path, part) = (path.clone(), part(since, until, None));
        let planned = path.clone();
        let parts = tokio::task::spawn_blocking(move || sqlite_parts(&planned, since, until, part))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        let readers = parts.into_iter().map(|(sql, part)| {
            let path = path.clone();
            tokio::task::spawn_blocking(move || read_sqlite(&path, sql, &part))
        });
        joined(readers.collect()).await
    }

    /// Every fire the schedulers of every cluster recorded for an instant in `[since, until)`,
    /// with its cluster.
    pub async fn fires_between(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        cluster: Option<&str>,
        drill: Option<&str>,
    ) -> Result<Vec<(String, FireRecord)>, StoreError> {
        let rows = sqlx::query(
            "SELECT cluster, drill, scheduled, status, reason, run FROM fires
             WHERE scheduled >= $1 AND scheduled < $2 AND ($3 = '' OR cluster = $3) AND ($4 = '' OR drill = $4)",
        )
        .bind(timestamp(since))
        .bind(timestamp(until))
        .bind(cluster.unwrap_or(""))
        .bind(drill.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("cluster")?,
                    FireRecord {
                        drill: r.try_get("drill")?,
                        scheduled: parse_timestamp(&r.try_get::<String, _>("scheduled")?)?,
                        status: r.try_get("status")?,
                        reason: r.try_get("reason")?,
                        run: r.try_get("run")?,
                    },
                ))
            })
            .collect()
    }

    /// The clusters with anything in the history, each drill each has a record of (a run or a
    /// fire, of any outcome), and the instant of its first fire record: from then on that
    /// cluster's scheduler planned the drill. In order of cluster and drill.
    pub async fn clusters_and_drills(&self) -> Result<Vec<Recorded>, StoreError> {
        let mut known: std::collections::BTreeMap<(String, String), Option<String>> =
            Default::default();
        // Each table's index on (cluster, drill, scheduled) answers its part.
        for row in sqlx::query("SELECT DISTINCT cluster, drill FROM runs")
            .fetch_all(&self.pool)
            .await?
        {
            known.insert((row.try_get(0)?, row.try_get(1)?), None);
        }
        for row in
            sqlx::query("SELECT cluster, drill, MIN(scheduled) FROM fires GROUP BY cluster, drill")
                .fetch_all(&self.pool)
                .await?
        {
            known.insert((row.try_get(0)?, row.try_get(1)?), Some(row.try_get(2)?));
        }
        known
            .into_iter()
            .map(|((cluster, drill), first)| {
                Ok(Recorded {
                    cluster,
                    drill,
                    first_fire: first.as_deref().map(parse_timestamp).transpose()?,
                })
            })
            .collect()
    }

    pub async fn record_fire(&self, fire: &FireRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO fires (drill, scheduled, status, reason, run, recorded_at, cluster) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (cluster, drill, scheduled) DO UPDATE SET status = excluded.status, reason = excluded.reason,
               run = excluded.run, recorded_at = excluded.recorded_at",
        )
        .bind(&fire.drill)
        .bind(timestamp(fire.scheduled))
        .bind(&fire.status)
        .bind(fire.reason.as_deref())
        .bind(fire.run.as_deref())
        .bind(timestamp(Utc::now()))
        .bind(&self.cluster)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The workloads runs started at or after `since` acted on, and when: what `cooldown` needs.
    /// Runs that changed nothing (dry runs, blocked, missed) hit nothing.
    pub async fn recent_hits(
        &self,
        since: DateTime<Utc>,
    ) -> Result<firedrill_safety::verdict::RecentHits, StoreError> {
        let rows = sqlx::query(
            "SELECT started, targets FROM runs WHERE cluster = $2 AND started >= $1 AND status IN ('running', 'passed', 'failed', 'aborted', 'error')",
        )
        .bind(timestamp(since))
        .bind(&self.cluster)
        .fetch_all(&self.pool)
        .await?;
        let mut hits = Vec::new();
        for row in &rows {
            let started = parse_timestamp(&row.try_get::<String, _>("started")?)?.timestamp();
            let targets = parse_targets(&row.try_get::<String, _>("targets")?)?;
            hits.extend(
                targets
                    .into_iter()
                    .filter_map(|t| t.owner)
                    .map(|o| (o, started)),
            );
        }
        Ok(firedrill_safety::verdict::latest_hits(hits))
    }

    /// (drill, scheduled) of every fire recorded for an instant at or after `from`.
    pub async fn fires_since(
        &self,
        from: DateTime<Utc>,
    ) -> Result<std::collections::HashSet<(String, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT drill, scheduled FROM fires WHERE cluster = $2 AND scheduled >= $1",
        )
        .bind(timestamp(from))
        .bind(&self.cluster)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("drill")?,
                    parse_timestamp(&r.try_get::<String, _>("scheduled")?)?,
                ))
            })
            .collect()
    }

    /// The fire of `drill` at `scheduled`, if the scheduler recorded one.
    pub async fn fire(
        &self,
        drill: &str,
        scheduled: DateTime<Utc>,
    ) -> Result<Option<FireRecord>, StoreError> {
        let row = sqlx::query("SELECT drill, scheduled, status, reason, run FROM fires WHERE cluster = $3 AND drill = $1 AND scheduled = $2")
            .bind(drill)
            .bind(timestamp(scheduled))
            .bind(&self.cluster)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> Result<FireRecord, StoreError> {
            Ok(FireRecord {
                drill: r.try_get("drill")?,
                scheduled: parse_timestamp(&r.try_get::<String, _>("scheduled")?)?,
                status: r.try_get("status")?,
                reason: r.try_get("reason")?,
                run: r.try_get("run")?,
            })
        })
        .transpose()
    }

    /// A value the scheduler keeps between restarts (e.g. the last instant it handled).
    pub async fn state(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM scheduler_state WHERE cluster = $2 AND key = $1")
                .bind(key)
                .bind(&self.cluster)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_state(&self, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO scheduler_state (key, value, cluster) VALUES ($1, $2, $3) ON CONFLICT (cluster, key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .bind(&self.cluster)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// A URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timeout and a store out of reach are errors of their own (retried, said as such);
    /// any other failure is the query's.
    #[test]
    fn a_timeout_and_an_unreachable_store_are_said_as_themselves() {
        let e = StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(e, StoreError::Timeout { .. }) && e.is_transient());
        assert_eq!(
            e.to_string(),
            "the store did not answer within 10s (no connection to it came free)"
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = StoreError::from(sqlx::Error::Io(refused));
        assert!(
            matches!(e, StoreError::Unavailable { .. }) && e.is_transient(),
            "{e}"
        );
        assert!(
            e.to_string().starts_with("the store is unavailable: "),
            "{e}"
        );
        let e = StoreError::from(sqlx::Error::PoolClosed);
        assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
        let e = StoreError::from(sqlx::Error::RowNotFound);
        assert!(
            matches!(e, StoreError::Query(_)) && !e.is_transient(),
            "{e}"
        );
    }
}
