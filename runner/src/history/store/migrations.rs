//! The history's schema: versioned migrations, applied in order by a writer, and the one that
//! fills a column from the records already there.

use sqlx::Row;

use super::Evidence;

/// Versioned migrations, applied in order. Never edit one that has shipped; add the next.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "runs and fires",
        "CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY,
        drill TEXT NOT NULL,
        kind TEXT NOT NULL,
        scheduled TEXT NOT NULL,
        started TEXT,
        ended TEXT,
        status TEXT NOT NULL,
        reason TEXT,
        targets TEXT NOT NULL,
        measurements TEXT NOT NULL,
        evidence TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS runs_by_drill ON runs (drill, scheduled);
    CREATE INDEX IF NOT EXISTS runs_by_scheduled ON runs (scheduled);
    CREATE TABLE IF NOT EXISTS fires (
        drill TEXT NOT NULL,
        scheduled TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        run TEXT,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (drill, scheduled)
    )",
    ),
    (
        2,
        "scheduler state",
        "CREATE TABLE IF NOT EXISTS scheduler_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    (
        3,
        "the fleet: every row names its cluster",
        // One PostgreSQL holds many clusters' histories: run ids, fires and the scheduler's state
        // are unique per cluster. Rows written before carry the default cluster's name.
        "CREATE TABLE runs_by_cluster (
        cluster TEXT NOT NULL,
        id TEXT NOT NULL,
        drill TEXT NOT NULL,
        kind TEXT NOT NULL,
        scheduled TEXT NOT NULL,
        started TEXT,
        ended TEXT,
        status TEXT NOT NULL,
        reason TEXT,
        targets TEXT NOT NULL,
        measurements TEXT NOT NULL,
        evidence TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (cluster, id)
    );
    INSERT INTO runs_by_cluster (cluster, id, drill, kind, scheduled, started, ended, status, reason, targets, measurements, evidence, recorded_at)
        SELECT CAST($1 AS TEXT), id, drill, kind, scheduled, started, ended, status, reason, targets, measurements, evidence, recorded_at FROM runs;
    DROP TABLE runs;
    ALTER TABLE runs_by_cluster RENAME TO runs;
    CREATE INDEX runs_by_drill ON runs (cluster, drill, scheduled);
    CREATE INDEX runs_by_scheduled ON runs (scheduled);
    CREATE TABLE fires_by_cluster (
        cluster TEXT NOT NULL,
        drill TEXT NOT NULL,
        scheduled TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        run TEXT,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (cluster, drill, scheduled)
    );
    INSERT INTO fires_by_cluster (cluster, drill, scheduled, status, reason, run, recorded_at)
        SELECT CAST($1 AS TEXT), drill, scheduled, status, reason, run, recorded_at FROM fires;
    DROP TABLE fires;
    ALTER TABLE fires_by_cluster RENAME TO fires;
    CREATE INDEX fires_by_scheduled ON fires (scheduled);
    CREATE TABLE state_by_cluster (
        cluster TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (cluster, key)
    );
    INSERT INTO state_by_cluster (cluster, key, value) SELECT CAST($1 AS TEXT), key, value FROM scheduler_state;
    DROP TABLE scheduler_state;
    ALTER TABLE state_by_cluster RENAME TO scheduler_state",
    ),
    (
        4,
        "open rollbacks",
        "CREATE TABLE open_rollbacks (
        cluster TEXT NOT NULL,
        run TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (cluster, run)
    );
    INSERT INTO open_rollbacks (cluster, run, recorded_at)
        SELECT cluster, id, recorded_at FROM runs
        WHERE evidence LIKE '%\"revert_error\":%' OR evidence LIKE '%\"revert\":\"REVERT FAILED%'",
    ),
    (
        ROLLBACK_FAILED_COLUMN,
        "a failed revert is a column",
        // Filled for the rows already there by `mark_failed_reverts`, which reads each
        // record's evidence as the report does.
        "ALTER TABLE runs ADD COLUMN rollback_failed BIGINT NOT NULL DEFAULT 0",
    ),
];

/// The migration that adds `runs.rollback_failed`: 1 where the run's revert left something
/// undone (its ledger stayed open), written with every record from then on.
pub(super) const ROLLBACK_FAILED_COLUMN: i64 = 5;

/// Sets `rollback_failed` on the runs already recorded whose revert failed, as their evidence
/// says (read as every reader reads it: a `revert_error`, or a failed injection's
/// `REVERT FAILED: …`). Only records that mention a revert are read.
pub(super) async fn mark_failed_reverts(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
) -> Result<(), sqlx::Error> {
    let rows = sqlx::query("SELECT cluster, id, evidence FROM runs WHERE evidence LIKE '%revert%'")
        .fetch_all(&mut **tx)
        .await?;
    let mut failed = Vec::new();
    for row in &rows {
        let text: String = row.try_get(2)?;
        if Evidence::parse(&text).is_ok_and(|e| e.revert.failed()) {
            failed.push((row.try_get::<String, _>(0)?, row.try_get::<String, _>(1)?));
        }
    }
    for (cluster, id) in failed {
        sqlx::query("UPDATE runs SET rollback_failed = 1 WHERE cluster = $1 AND id = $2")
            .bind(cluster)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
