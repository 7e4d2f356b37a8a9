//! Batched, idempotent inserts: UNNEST (one statement) or COPY (staging table).
//!
//! A batch with error events inserts its records and what they add to their issues in one
//! statement: the records' `INSERT ... ON CONFLICT DO NOTHING RETURNING` says which rows
//! are new, and only those feed `issue_users` (a user counts when its row is new) and the
//! appended `issue_deltas` and `issue_hour_deltas`, which [`FOLD`] adds into `issues` and
//! `issue_hours` (every second, and before every read of issues). A deadlock is retried as
//! transient.

use std::time::Duration;

use faultline_schema::{Record, Timestamp, Uuid};
use sqlx::{Connection, PgPool, Postgres};

use super::WriteMethod;
use super::rollups;
use super::schema::ms_to_ts;
use crate::issues::IssueEvent;

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

/// The error events of a batch, column by column, for the issue upserts.
#[derive(Default)]
struct EventColumns {
    id: Vec<Uuid>,
    ts: Vec<i64>,
    issue: Vec<String>,
    service: Vec<String>,
    title: Vec<String>,
    culprit: Vec<String>,
    error_type: Vec<Option<String>>,
    level: Vec<i16>,
    weight: Vec<i64>,
    user: Vec<Option<String>>,
    release: Vec<Option<String>>,
}

impl EventColumns {
    fn new(records: &[Record], ids: &[Uuid]) -> EventColumns {
        let mut c = EventColumns::default();
        for (r, id) in records.iter().zip(ids) {
            let Some(e) = IssueEvent::from_record(r) else {
                continue;
            };
            c.id.push(*id);
            c.ts.push(e.ts.unix_millis());
            c.issue.push(e.issue);
            c.service.push(e.service);
            c.title.push(e.title);
            c.culprit.push(e.culprit);
            c.error_type.push(e.error_type);
            c.level.push(e.level as i16);
            c.weight.push(i64::try_from(e.weight).unwrap_or(i64::MAX));
            c.user.push(e.user);
            c.release.push(e.release);
        }
        c
    }

    fn is_empty(&self) -> bool {
        self.id.is_empty()
    }

    /// Binds the columns, in the order [`issue_deltas`] numbers them.
    fn bind<'q>(
        self,
        q: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        q.bind(self.id)
            .bind(self.ts)
            .bind(self.issue)
            .bind(self.service)
            .bind(self.title)
            .bind(self.culprit)
            .bind(self.error_type)
            .bind(self.level)
            .bind(self.weight)
            .bind(self.user)
            .bind(self.release)
    }
}

/// The CTEs that follow `ins` (the records' insert, `RETURNING id, ts`) and record what
/// the rows it inserted add to their issues; the event columns are parameters `$p` to
/// `$p+10`.
///
/// The batch appends one row per issue to `issue_deltas` and one per issue and hour to
/// `issue_hour_deltas` instead of updating `issues` and `issue_hours`: an update locks its
/// row until the commit's WAL flush, so concurrent batches of the same issues took turns,
/// one flush each (issue 23). Appends lock nothing; [`FOLD`] adds them up later, and every
/// read of issues folds first. `issue_users` is still inserted here: a user already counted
/// conflicts without a lock, and only a new one decides the issue's `users`.
fn issue_deltas(p: usize) -> String {
    let big = "9223372036854775807";
    format!(
        ", ev AS (SELECT * FROM UNNEST(${p}::uuid[], ${}::int8[], ${}::text[], ${}::text[], \
             ${}::text[], ${}::text[], ${}::text[], ${}::int2[], ${}::int8[], ${}::text[], \
             ${}::text[]) WITH ORDINALITY \
             AS ev(id, ts, issue, service, title, culprit, error_type, lvl, weight, usr, release, ord)), \
         e AS (SELECT ev.* FROM ev JOIN ins ON ins.id = ev.id AND ins.ts = {ev_ts}), \
         new_users AS (INSERT INTO issue_users (issue, user_id) \
             SELECT DISTINCT issue, usr FROM e WHERE usr IS NOT NULL ORDER BY 1, 2 \
             ON CONFLICT DO NOTHING RETURNING issue), \
         hours AS (INSERT INTO issue_hour_deltas (issue, hour, count) \
             SELECT issue, date_trunc('hour', {ev_ts_e}), LEAST(sum(weight), {big})::bigint \
             FROM e GROUP BY 1, 2 RETURNING 1), \
         deltas AS (INSERT INTO issue_deltas (issue, service, title, culprit, level, error_type, \
             count, users, first_seen, last_seen, release_first, release_last, release_head) \
             SELECT issue, \
             (array_agg(service ORDER BY ord))[1], \
             (array_agg(title ORDER BY ord))[1], \
             (array_agg(culprit ORDER BY ord))[1], \
             max(lvl), \
             (array_agg(error_type ORDER BY ord))[1], \
             LEAST(sum(weight), {big})::bigint, \
             (SELECT count(*) FROM new_users u WHERE u.issue = e.issue), \
             {first}, {last}, \
             (array_agg(release ORDER BY ord) FILTER (WHERE release IS NOT NULL))[1], \
             (array_agg(release ORDER BY ord DESC) FILTER (WHERE release IS NOT NULL))[1], \
             (array_agg(release ORDER BY ord))[1] \
             FROM e GROUP BY issue ORDER BY issue RETURNING 1) ",
        p + 1,
        p + 2,
        p + 3,
        p + 4,
        p + 5,
        p + 6,
        p + 7,
        p + 8,
        p + 9,
        p + 10,
        ev_ts = ms_to_ts("ev.ts"),
        ev_ts_e = ms_to_ts("ts"),
        first = ms_to_ts("min(ts)"),
        last = ms_to_ts("max(ts)"),
    )
}

/// Adds the pending deltas into `issues` and `issue_hours` and deletes them, in one
/// statement (one transaction). Two folds at once fold each delta once: the second waits
/// for the rows the first deletes and skips them once it has committed. Deltas are taken
/// in the order they were appended, so an issue's title, culprit and `release_first` are
/// its first event's; each upsert takes its rows in key order, so concurrent folds lock
/// them in the same order. Returns how many issues changed.
pub(crate) const FOLD: &str = "\
    WITH d AS (DELETE FROM issue_deltas RETURNING *), \
    hd AS (DELETE FROM issue_hour_deltas RETURNING issue, hour, count), \
    agg AS (SELECT issue, \
        (array_agg(service ORDER BY seq))[1] AS service, \
        (array_agg(title ORDER BY seq))[1] AS title, \
        (array_agg(culprit ORDER BY seq))[1] AS culprit, \
        (array_agg(error_type ORDER BY seq))[1] AS error_type, \
        max(level) AS lvl, LEAST(sum(count), 9223372036854775807)::bigint AS n, \
        sum(users)::bigint AS users, min(first_seen) AS first_seen, max(last_seen) AS last_seen, \
        (array_agg(release_first ORDER BY seq) FILTER (WHERE release_first IS NOT NULL))[1] AS release_first, \
        (array_agg(release_last ORDER BY seq DESC) FILTER (WHERE release_last IS NOT NULL))[1] AS release_last, \
        (array_agg(release_head ORDER BY seq))[1] AS release_head \
        FROM d GROUP BY issue), \
    hours AS (INSERT INTO issue_hours (issue, hour, count) \
        SELECT issue, hour, LEAST(sum(count), 9223372036854775807)::bigint \
        FROM hd GROUP BY 1, 2 ORDER BY 1, 2 \
        ON CONFLICT (issue, hour) DO UPDATE \
        SET count = LEAST(issue_hours.count::numeric + excluded.count, 9223372036854775807)::bigint \
        RETURNING 1), \
    up AS (INSERT INTO issues (id, service, title, culprit, level, error_type, count, users, \
        first_seen, last_seen, status, release_first, release_last, created_at) \
        SELECT a.issue, a.service, a.title, a.culprit, a.lvl, a.error_type, a.n, a.users, \
        a.first_seen, a.last_seen, 'unresolved', a.release_first, a.release_last, now() \
        FROM agg a ORDER BY a.issue \
        ON CONFLICT (id) DO UPDATE SET \
        count = LEAST(issues.count::numeric + excluded.count, 9223372036854775807)::bigint, \
        users = issues.users + excluded.users, \
        first_seen = LEAST(issues.first_seen, excluded.first_seen), \
        last_seen = GREATEST(issues.last_seen, excluded.last_seen), \
        level = GREATEST(issues.level, excluded.level), \
        release_first = COALESCE(issues.release_first, excluded.release_first), \
        release_last = COALESCE(excluded.release_last, issues.release_last), \
        status = CASE WHEN issues.status = 'resolved' THEN 'unresolved' ELSE issues.status END, \
        regressed_at = CASE WHEN issues.status = 'resolved' THEN now() \
            ELSE issues.regressed_at END, \
        regressed_in = CASE WHEN issues.status = 'resolved' \
            THEN (SELECT g.release_head FROM agg g WHERE g.issue = excluded.id) \
            ELSE issues.regressed_in END \
        RETURNING 1) \
    SELECT count(*)::int8 FROM up";

/// The statement's last part: how many records were inserted (the issue CTEs run whether
/// or not they are read).
const COUNT_INSERTED: &str = "SELECT count(*)::int8 FROM ins";

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
    let mut issue = Vec::with_capacity(n);
    for r in records {
        ids.push(id(r));
        issue.push(r.issue.as_deref());
        ts.push(r.ts.unix_millis());
        rcv.push(received(r));
        service.push(r.service.as_str());
        level.push(r.level.as_str());
        event.push(r.event.as_str());
        message.push(r.message.as_str());
        meta.push(meta_json(r));
    }
    let events = EventColumns::new(records, &ids);
    let insert = format!(
        "INSERT INTO system_logs (id, ts, received_at, service, level, event, message, meta, issue) \
         SELECT u.id, {}, {}, u.service, u.level, u.event, u.message, u.meta::jsonb, u.issue \
         FROM UNNEST($1::uuid[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], \
                     $7::text[], $8::text[], $9::text[]) \
              AS u(id, ts, rcv, service, level, event, message, meta, issue) \
         ON CONFLICT DO NOTHING",
        ms_to_ts("u.ts"),
        ms_to_ts("u.rcv")
    );
    let sql = statement(&insert, (!events.is_empty()).then(|| issue_deltas(10)));
    let q = sqlx::query(&sql)
        .bind(ids)
        .bind(ts)
        .bind(rcv)
        .bind(service)
        .bind(level)
        .bind(event)
        .bind(message)
        .bind(meta)
        .bind(issue);
    let q = if events.is_empty() { q } else { events.bind(q) };
    let inserted: i64 = sqlx::Row::try_get(&q.fetch_one(pool).await?, 0)?;
    Ok(u64::try_from(inserted).unwrap_or(0))
}

/// The whole statement around the records' `insert`: the hourly rollup deltas of the rows
/// it inserted (`rollups.rs`), then `issues` (the issue CTEs, for a batch with error events),
/// answering how many rows were inserted.
fn statement(insert: &str, issues: Option<String>) -> String {
    format!(
        "WITH ins AS ({insert} RETURNING {}){}{} {COUNT_INSERTED}",
        rollups::returning(),
        rollups::deltas(),
        issues.unwrap_or_default()
    )
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
    let ids: Vec<Uuid> = records.iter().map(id).collect();
    for (r, id) in records.iter().zip(&ids) {
        let _ = write!(data, "{}\t{}\t{}\t", id, r.ts.unix_millis(), received(r));
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
        data.push(b'\t');
        match &r.issue {
            Some(issue) => copy_escape(&mut data, issue),
            None => data.extend_from_slice(b"\\N"),
        }
        data.push(b'\n');
    }
    let events = EventColumns::new(records, &ids);
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS faultline_stage_v2 \
         (id uuid, ts int8, rcv int8, service text, level text, event text, message text, meta text, \
          issue text) \
         ON COMMIT DELETE ROWS",
    )
    .execute(&mut *tx)
    .await?;
    let mut copy = tx
        .copy_in_raw("COPY faultline_stage_v2 FROM STDIN (FORMAT text)")
        .await?;
    copy.send(data).await?;
    copy.finish().await?;
    let insert = format!(
        "INSERT INTO system_logs (id, ts, received_at, service, level, event, message, meta, issue) \
         SELECT id, {}, {}, service, level, event, message, meta::jsonb, issue \
         FROM faultline_stage_v2 \
         ON CONFLICT DO NOTHING",
        ms_to_ts("ts"),
        ms_to_ts("rcv")
    );
    let inserted = {
        let sql = statement(&insert, (!events.is_empty()).then(|| issue_deltas(1)));
        let q = sqlx::query(&sql);
        let q = if events.is_empty() { q } else { events.bind(q) };
        let row = q.fetch_one(&mut *tx).await?;
        u64::try_from(sqlx::Row::try_get::<i64, _>(&row, 0)?).unwrap_or(0)
    };
    tx.commit().await?;
    Ok(inserted)
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
