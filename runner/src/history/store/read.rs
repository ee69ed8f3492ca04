//! Reading runs back: a period's runs in parts (PostgreSQL through sqlx, SQLite through rusqlite
//! on blocking threads, read in parallel), each row into a [`RunRecord`].

use super::*;

/// One part of a period's runs, as bound to the query that reads it: the period, the cluster and
/// drill (`""`: any) and, for a part of a table read through, its rowids.
#[derive(Clone)]
pub(super) struct RunsPart {
    pub(super) since: String,
    pub(super) until: String,
    pub(super) cluster: String,
    pub(super) drill: String,
    pub(super) rows: Option<(i64, i64)>,
}

impl RunsPart {
    pub(super) fn bind<'q, DB: sqlx::Database>(
        self,
        query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    ) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
    where
        String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    {
        let query = query
            .bind(self.since)
            .bind(self.until)
            .bind(self.cluster)
            .bind(self.drill);
        match self.rows {
            Some((low, high)) => query.bind(low).bind(high),
            None => query,
        }
    }
}

/// Every run of a stream of rows in `select_run!`'s columns.
pub(super) async fn read_runs<'r, R>(
    mut rows: futures::stream::BoxStream<'r, Result<R, sqlx::Error>>,
) -> Result<Vec<RunRecord>, StoreError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    use futures::TryStreamExt;
    let mut runs = Vec::new();
    while let Some(row) = rows.try_next().await? {
        runs.push(read_run(&row)?);
    }
    Ok(runs)
}

/// A SQLite history opened to be read: read only, its pages mapped rather than read one call at
/// a time.
pub(super) fn open_sqlite(path: &str) -> Result<rusqlite::Connection, StoreError> {
    use rusqlite::OpenFlags;
    let c = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.pragma_update(None, "mmap_size", 1_073_741_824_i64)?;
    Ok(c)
}

/// How to read `part` (the runs of `since` to `until`) of a SQLite history: the queries, each
/// with what it binds. SQLite, unlike PostgreSQL, keeps no statistics of its own: for a period
/// that covers most of the history, it is told to read the table through, in two halves of its
/// rows read side by side, rather than look each row up from the index (three times faster over
/// a year of hourly runs). Otherwise the index finds the period, read in one.
pub(super) fn sqlite_parts(
    path: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    part: RunsPart,
) -> Result<Vec<(&'static str, RunsPart)>, StoreError> {
    let c = open_sqlite(path)?;
    let (first, last, low, high): (Option<String>, Option<String>, Option<i64>, Option<i64>) = c
        .query_row(
            "SELECT MIN(scheduled), MAX(scheduled), MIN(rowid), MAX(rowid) FROM runs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
    let scan = match (first, last, low, high) {
        (Some(first), Some(last), Some(low), Some(high))
            if part.cluster.is_empty() && part.drill.is_empty() =>
        {
            let (first, last) = (parse_timestamp(&first)?, parse_timestamp(&last)?);
            ((until.min(last) - since.max(first)) * 2 >= last - first).then_some((low, high))
        }
        _ => None,
    };
    let Some((low, high)) = scan else {
        return Ok(vec![(concat!(select_run!(), in_period!()), part)]);
    };
    let middle = low + (high - low) / 2;
    Ok([(low, middle), (middle + 1, high)]
        .into_iter()
        .map(|rows| {
            let half = RunsPart {
                rows: Some(rows),
                ..part.clone()
            };
            (
                concat!(
                    select_run!(),
                    " NOT INDEXED",
                    in_period!(),
                    " AND rowid BETWEEN $5 AND $6"
                ),
                half,
            )
        })
        .collect())
}

/// Every run `sql` finds in a SQLite history for `part`.
pub(super) fn read_sqlite(
    path: &str,
    sql: &str,
    part: &RunsPart,
) -> Result<Vec<RunRecord>, StoreError> {
    let c = open_sqlite(path)?;
    let mut statement = c.prepare(sql)?;
    let mut rows = match part.rows {
        Some((low, high)) => statement.query(rusqlite::params![
            part.since,
            part.until,
            part.cluster,
            part.drill,
            low,
            high
        ])?,
        None => statement.query(rusqlite::params![
            part.since,
            part.until,
            part.cluster,
            part.drill
        ])?,
    };
    let mut runs = Vec::new();
    while let Some(row) = rows.next()? {
        let text = |i: usize| -> Result<Option<&str>, StoreError> {
            row.get_ref(i)?.as_str_or_null().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    i,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
                .into()
            })
        };
        runs.push(run_of_text(text)?);
    }
    Ok(runs)
}

/// The evidence of a run from its stored text.
pub(super) fn evidence(text: &str) -> Result<Evidence, StoreError> {
    Evidence::parse(text).map_err(|_| StoreError::Corrupt {
        what: "JSON document",
        value: text.to_owned(),
    })
}

/// The runs the reading tasks found, together.
pub(super) async fn joined(
    parts: Vec<tokio::task::JoinHandle<Result<Vec<RunRecord>, StoreError>>>,
) -> Result<Vec<RunRecord>, StoreError> {
    let mut runs = Vec::new();
    for part in parts {
        let part = match part.await {
            Ok(part) => part?,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        if runs.is_empty() {
            runs = part;
        } else {
            runs.extend(part);
        }
    }
    Ok(runs)
}

/// A run from its row; `evidence` reads the evidence column's text.
pub(super) fn read_run<'r, R>(row: &'r R) -> Result<RunRecord, StoreError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    // Without asking each value its type first: every column is text, and a report reads
    // 100,000 rows of twelve.
    run_of_text(|i| Ok(row.try_get_unchecked::<Option<&str>, _>(i)?))
}

/// A run from its columns in `select_run!`'s order, each read as text (`None`: NULL) by
/// position.
pub(super) fn run_of_text<'r>(
    column: impl Fn(usize) -> Result<Option<&'r str>, StoreError>,
) -> Result<RunRecord, StoreError> {
    let text = |i: usize| {
        column(i)?.ok_or(StoreError::Corrupt {
            what: "run (a required column is NULL)",
            value: format!("column {i}"),
        })
    };
    let time = |t: Option<&str>| t.map(parse_timestamp).transpose();
    let status = text(7)?;
    let measurements = text(10)?;
    Ok(RunRecord {
        cluster: text(0)?.to_owned(),
        id: text(1)?.to_owned(),
        drill: text(2)?.to_owned(),
        kind: text(3)?.to_owned(),
        scheduled: parse_timestamp(text(4)?)?,
        started: time(column(5)?)?,
        ended: time(column(6)?)?,
        status: RunStatus::parse(status).ok_or_else(|| StoreError::Corrupt {
            what: "run status",
            value: status.to_owned(),
        })?,
        reason: column(8)?.map(str::to_owned),
        targets: parse_targets(text(9)?)?,
        measurements: serde_json::from_str(measurements).map_err(|_| StoreError::Corrupt {
            what: "measurements",
            value: measurements.to_owned(),
        })?,
        evidence: Box::new(evidence(text(11)?)?),
    })
}
