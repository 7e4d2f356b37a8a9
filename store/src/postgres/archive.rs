//! Archive before delete on PostgreSQL: a daily partition past retention is read in key
//! order into the archive directory (gzip NDJSON, see [`crate::archive`]) and dropped only
//! once its file is durable and the partition still holds exactly the rows archived; expired
//! rows of the default partition are archived, then deleted by key.
//!
//! One node archives at a time (a session advisory lock; the others skip the pass), so
//! nodes sharing a database do not write the same partition twice. Rows are read a page at
//! a time and compressed on a blocking thread, so neither memory nor the runtime's workers
//! grow with a partition's size.

use faultline_schema::{Record, Timestamp, Uuid};
use sqlx::{Connection, PgConnection, PgPool, Row};

use super::read::record;
use super::schema::{expired_partitions, ms_to_ts, ts_to_ms};
use crate::archive::{ArchiveDir, ArchiveState, ArchivedFile, DayFiles};

/// Rows read per round trip.
const PAGE: i64 = 10_000;
/// The advisory lock key of the archiving pass ("faultarc").
const ARCHIVE_LOCK: i64 = 0x6661_756c_7461_7263;

/// Why an archiving pass stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ArchivePassError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// An archive could not be written (already recorded in the archive state).
    #[error("{0}")]
    Archive(String),
}

/// Archives and drops the partitions wholly older than `cutoff`, then archives and deletes
/// the default partition's rows older than it. Returns the partitions dropped; nothing is
/// dropped or deleted that is not archived. Skipped while another node holds the lock.
pub(crate) async fn apply_retention(
    pool: &PgPool,
    cutoff: Timestamp,
    archive: &ArchiveDir,
    state: &ArchiveState,
) -> Result<Vec<String>, ArchivePassError> {
    let mut conn = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(ARCHIVE_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        tracing::debug!("another node is archiving; retention skipped this pass");
        return Ok(Vec::new());
    }
    let result = pass(&mut conn, cutoff, archive, state).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(ARCHIVE_LOCK)
        .execute(&mut *conn)
        .await;
    if unlocked.is_err() {
        // A connection that may still hold the lock must not go back to the pool.
        let _ = conn.detach().close().await;
    }
    result
}

async fn pass(
    conn: &mut PgConnection,
    cutoff: Timestamp,
    archive: &ArchiveDir,
    state: &ArchiveState,
) -> Result<Vec<String>, ArchivePassError> {
    let mut dropped = Vec::new();
    for name in expired_partitions(&mut *conn, cutoff).await? {
        let source = format!("postgres-{name}");
        let (files, keys) = archive_rows(conn, archive, state, &source, &name, None).await?;
        let archived = keys.len() as i64;
        let mut tx = conn.begin().await?;
        // Inserts into the partition wait until it is dropped (or this rolls back); a row
        // that arrived since it was read means reading it again next pass.
        sqlx::query(&format!("LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE"))
            .execute(&mut *tx)
            .await?;
        let now: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {name}"))
            .fetch_one(&mut *tx)
            .await?;
        if now != archived {
            tx.rollback().await?;
            remove(&files);
            tracing::warn!(partition = %name, archived, now, "rows arrived while archiving; archiving it again next pass");
            continue;
        }
        sqlx::query(&format!("DROP TABLE IF EXISTS {name}"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        state.archived(&files);
        dropped.push(name);
    }
    let (files, keys) = archive_rows(
        conn,
        archive,
        state,
        "postgres-default",
        "system_logs_default",
        Some(cutoff),
    )
    .await?;
    for chunk in keys.chunks(PAGE as usize) {
        let (ts, ids): (Vec<i64>, Vec<Uuid>) = chunk.iter().copied().unzip();
        sqlx::query(&format!(
            "DELETE FROM system_logs_default d USING UNNEST($1::int8[], $2::uuid[]) AS k(ms, id) \
             WHERE d.ts = {} AND d.id = k.id",
            ms_to_ts("k.ms")
        ))
        .bind(ts)
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    }
    if files.is_empty() {
        state.clear();
    } else {
        state.archived(&files);
    }
    Ok(dropped)
}

fn remove(files: &[ArchivedFile]) {
    for f in files {
        let _ = std::fs::remove_file(&f.path);
    }
}

/// Reads `table` (rows with `ts < before`, if given) in `(ts, id)` order into archive files
/// named after `source`, compressing on a blocking thread. Returns the files and the keys
/// archived; an archive error is recorded in `state`.
async fn archive_rows(
    conn: &mut PgConnection,
    archive: &ArchiveDir,
    state: &ArchiveState,
    source: &str,
    table: &str,
    before: Option<Timestamp>,
) -> Result<(Vec<ArchivedFile>, Vec<(i64, Uuid)>), ArchivePassError> {
    let (pages, receive) = tokio::sync::mpsc::channel::<Vec<Record>>(2);
    let writer = {
        let (archive, source) = (archive.clone(), source.to_owned());
        tokio::task::spawn_blocking(move || write_pages(&archive, &source, receive))
    };
    let read = read_pages(conn, table, before, &pages).await;
    drop(pages);
    let written = writer
        .await
        .map_err(|e| std::io::Error::other(format!("archive task failed: {e}")));
    let keys = read?;
    match written.and_then(|r| r) {
        Ok(files) => Ok((files, keys)),
        Err(e) => {
            let message = format!("cannot archive {table} into {}: {e}", archive.dir.display());
            state.failed(message.clone());
            Err(ArchivePassError::Archive(message))
        }
    }
}

async fn read_pages(
    conn: &mut PgConnection,
    table: &str,
    before: Option<Timestamp>,
    pages: &tokio::sync::mpsc::Sender<Vec<Record>>,
) -> Result<Vec<(i64, Uuid)>, sqlx::Error> {
    // Names come from the catalog and the schema, never from input.
    let sql = format!(
        "SELECT id, {} AS ts_ms, {} AS rcv_ms, service, level, event, message, \
         meta::text AS meta, issue FROM {table} \
         WHERE ts < COALESCE({}, 'infinity'::timestamptz) \
         AND ($2::int8 IS NULL OR (ts, id) > ({}, $3::uuid)) ORDER BY ts, id LIMIT {PAGE}",
        ts_to_ms("ts"),
        ts_to_ms("received_at"),
        ms_to_ts("$1"),
        ms_to_ts("$2"),
    );
    let mut keys = Vec::new();
    let mut after: (Option<i64>, Uuid) = (None, Uuid::nil());
    loop {
        let rows = sqlx::query(&sql)
            .bind(before.map(|t| t.unix_millis()))
            .bind(after.0)
            .bind(after.1)
            .fetch_all(&mut *conn)
            .await?;
        let full = rows.len() as i64 == PAGE;
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            let r = record(row)?;
            let id = r.id.unwrap_or_else(Uuid::nil);
            let ms: i64 = row.try_get("ts_ms")?;
            keys.push((ms, id));
            after = (Some(ms), id);
            page.push(r);
        }
        if !page.is_empty() && pages.send(page).await.is_err() {
            // The writer failed: its error is the one to report.
            break;
        }
        if !full {
            break;
        }
    }
    Ok(keys)
}

fn write_pages(
    archive: &ArchiveDir,
    source: &str,
    mut pages: tokio::sync::mpsc::Receiver<Vec<Record>>,
) -> std::io::Result<Vec<ArchivedFile>> {
    let mut files = DayFiles::new(archive, source);
    let mut line = Vec::with_capacity(4096);
    while let Some(page) = pages.blocking_recv() {
        for r in page {
            line.clear();
            r.write_json(&mut line);
            let ts = r.ts.to_string();
            files.append(ts.get(..10).unwrap_or(&ts), &line)?;
        }
    }
    files.finish()
}
