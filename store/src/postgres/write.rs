//! Batched, idempotent inserts: UNNEST (one statement) or COPY (staging table).

use std::time::Duration;

use faultline_schema::{Record, Timestamp, Uuid};
use sqlx::{Connection, PgPool};

use super::WriteMethod;
use super::schema::ms_to_ts;

/// Inserts `records`; returns how many rows were new (the rest were already stored).
pub(crate) async fn insert(
    pool: &PgPool,
    method: WriteMethod,
    records: &[Record],
) -> Result<u64, sqlx::Error> {
    match method {
        WriteMethod::Unnest => insert_unnest(pool, records).await,
        WriteMethod::Copy => insert_copy(pool, records).await,
    }
}

fn received(r: &Record) -> i64 {
    r.received_at.unwrap_or_else(Timestamp::now).unix_millis()
}

fn meta_json(r: &Record) -> String {
    serde_json::to_string(&r.meta).unwrap_or_else(|_| "{}".into())
}

/// Records without an id (written by a service directly, not through the server) get one
/// here, so the table's key and replays work the same for every writer.
fn id(r: &Record) -> Uuid {
    r.id.unwrap_or_else(Uuid::now_v7)
}

async fn insert_unnest(pool: &PgPool, records: &[Record]) -> Result<u64, sqlx::Error> {
    let n = records.len();
    let mut ids = Vec::with_capacity(n);
    let mut ts = Vec::with_capacity(n);
    let mut rcv = Vec::with_capacity(n);
    let mut service = Vec::with_capacity(n);
    let mut level = Vec::with_capacity(n);
    let mut event = Vec::with_capacity(n);
    let mut message = Vec::with_capacity(n);
    let mut meta = Vec::with_capacity(n);
    for r in records {
        ids.push(id(r));
        ts.push(r.ts.unix_millis());
        rcv.push(received(r));
        service.push(r.service.as_str());
        level.push(r.level.as_str());
        event.push(r.event.as_str());
        message.push(r.message.as_str());
        meta.push(meta_json(r));
    }
    let sql = format!(
        "INSERT INTO system_logs (id, ts, received_at, service, level, event, message, meta) \
         SELECT u.id, {}, {}, u.service, u.level, u.event, u.message, u.meta::jsonb \
         FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], \
                     $7::text[], $8::text[]) AS u(id, ts, rcv, service, level, event, message, meta) \
         ON CONFLICT DO NOTHING",
        ms_to_ts("u.ts"),
        ms_to_ts("u.rcv")
    );
    let done = sqlx::query(&sql)
        .bind(ids)
        .bind(ts)
        .bind(rcv)
        .bind(service)
        .bind(level)
        .bind(event)
        .bind(message)
        .bind(meta)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Escapes a value for COPY's text format.
fn copy_escape(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

async fn insert_copy(pool: &PgPool, records: &[Record]) -> Result<u64, sqlx::Error> {
    use std::io::Write;
    let mut data = Vec::with_capacity(records.len() * 400);
    for r in records {
        let _ = write!(data, "{}\t{}\t{}\t", id(r), r.ts.unix_millis(), received(r));
        for (i, field) in [
            r.service.as_str(),
            r.level.as_str(),
            r.event.as_str(),
            r.message.as_str(),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                data.push(b'\t');
            }
            copy_escape(&mut data, field);
        }
        data.push(b'\t');
        copy_escape(&mut data, &meta_json(r));
        data.push(b'\n');
    }
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS faultline_stage \
         (id uuid, ts int8, rcv int8, service text, level text, event text, message text, meta text) \
         ON COMMIT DELETE ROWS",
    )
    .execute(&mut *tx)
    .await?;
    let mut copy = tx
        .copy_in_raw("COPY faultline_stage FROM STDIN (FORMAT text)")
        .await?;
    copy.send(data).await?;
    copy.finish().await?;
    let sql = format!(
        "INSERT INTO system_logs (id, ts, received_at, service, level, event, message, meta) \
         SELECT id, {}, {}, service, level, event, message, meta::jsonb FROM faultline_stage \
         ON CONFLICT DO NOTHING",
        ms_to_ts("ts"),
        ms_to_ts("rcv")
    );
    let done = sqlx::query(&sql).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Whether an error may go away by itself (the database down, restarting, overloaded,
/// not migrated yet), so the batch should be retried or spooled rather than refused.
pub(crate) fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            // 08 connection, 53 resources, 57 operator intervention (shutdown), 58 system,
            // 40 serialization/deadlock, 42P01 table missing (migrations not applied yet).
            ["08", "53", "57", "58", "40"]
                .iter()
                .any(|p| c.starts_with(p))
                || c == "42P01"
        }),
        _ => false,
    }
}

/// [`insert`] with retries of transient errors, exponential backoff, within `budget`.
pub(crate) async fn insert_with_retry(
    pool: &PgPool,
    method: WriteMethod,
    records: &[Record],
    budget: Duration,
) -> Result<u64, sqlx::Error> {
    let deadline = tokio::time::Instant::now() + budget;
    let mut backoff = Duration::from_millis(50);
    loop {
        let attempt = tokio::time::timeout_at(deadline, insert(pool, method, records)).await;
        match attempt {
            Ok(Ok(n)) => return Ok(n),
            Ok(Err(e)) if is_transient(&e) => {
                if tokio::time::Instant::now() + backoff >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(sqlx::Error::PoolTimedOut),
        }
    }
}
