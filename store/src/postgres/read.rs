//! Queries and per-minute counts, in SQL, with every value bound as a parameter.

use faultline_schema::{Level, Map, Record, Timestamp, Uuid, Value};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};

use super::schema::ts_to_ms;
use crate::query::{Query, Stats, StatsBucket, StatsQuery};

fn select() -> String {
    format!(
        "SELECT id, {} AS ts_ms, {} AS rcv_ms, service, level, event, message, meta::text AS meta, \
         issue FROM system_logs WHERE true",
        ts_to_ms("ts"),
        ts_to_ms("received_at")
    )
}

/// `text` as an ILIKE pattern matching it anywhere, with its own `%`, `_` and `\` literal.
fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

fn push_time(b: &mut QueryBuilder<'_, Postgres>, op: &str, ts: Timestamp) {
    b.push(format!(" AND ts {op} (timestamptz 'epoch' + "));
    b.push_bind(ts.unix_millis());
    b.push("::bigint * interval '1 millisecond')");
}

/// Appends `q`'s filters as `AND ...` clauses, then its order (newest `ts` first) and limit.
fn push_filters(b: &mut QueryBuilder<'_, Postgres>, q: &Query) {
    push_where(b, q);
    b.push(" ORDER BY ts DESC, id DESC LIMIT ")
        .push_bind(i64::try_from(q.limit).unwrap_or(i64::MAX));
}

/// Appends `q`'s filters as `AND ...` clauses, every value bound.
fn push_where(b: &mut QueryBuilder<'_, Postgres>, q: &Query) {
    if let Some(s) = &q.service {
        b.push(" AND service = ").push_bind(s.clone());
    }
    if let Some(min) = q.min_level {
        let levels: Vec<&str> = Level::ALL
            .iter()
            .filter(|l| **l >= min)
            .map(|l| l.as_str())
            .collect();
        b.push(" AND level = ANY(").push_bind(levels).push(")");
    }
    if let Some(e) = &q.event {
        b.push(" AND event = ").push_bind(e.clone());
    }
    if let Some(i) = &q.issue {
        b.push(" AND issue = ").push_bind(i.clone());
    }
    if let Some(u) = &q.user {
        b.push(" AND meta ->> 'user' = ").push_bind(u.clone());
    }
    if let Some(t) = q.since {
        push_time(b, ">=", t);
    }
    if let Some(t) = q.until {
        push_time(b, "<", t);
    }
    if let Some(text) = &q.text {
        b.push(" AND message ILIKE ")
            .push_bind(contains_pattern(text));
    }
    // Containment, so the GIN (meta jsonb_path_ops) index serves it: one `@>` per way the
    // flattened key can be stored and per JSON type of the value.
    for filter in &q.meta {
        b.push(" AND (");
        for (i, doc) in filter.containments().iter().enumerate() {
            if i > 0 {
                b.push(" OR ");
            }
            b.push("meta @> ")
                .push_bind(doc.to_string())
                .push("::jsonb");
        }
        b.push(")");
    }
    // Keyset paging on the primary key.
    if let Some(c) = q.before {
        b.push(" AND (ts, id) < ((timestamptz 'epoch' + ");
        b.push_bind(c.ts.unix_millis());
        b.push("::bigint * interval '1 millisecond'), ")
            .push_bind(c.id)
            .push(")");
    }
}

/// The records matching `q`, newest `ts` first.
pub(crate) async fn query(pool: &PgPool, q: &Query) -> Result<Vec<Record>, sqlx::Error> {
    let mut b = QueryBuilder::<Postgres>::new(select());
    push_filters(&mut b, q);
    // A cached statement is soon planned once for any value (a generic plan), which guesses
    // that 1% of rows contain a `meta` document and walks the key backwards through all of
    // them; planned for its values, a rare one is read from the GIN index (0.3 ms against
    // 585 ms at a million rows).
    let rows = b
        .build()
        .persistent(q.meta.is_empty())
        .fetch_all(pool)
        .await?;
    rows.iter().map(record).collect()
}

/// The records matching `q` (its limit too) that were received at or after `after`, in the
/// order they were received (`received_at`, then `id`).
pub(crate) async fn received_since(
    pool: &PgPool,
    q: &Query,
    after: Timestamp,
) -> Result<Vec<Record>, sqlx::Error> {
    let mut b = QueryBuilder::<Postgres>::new(select());
    push_where(&mut b, q);
    b.push(" AND received_at >= (timestamptz 'epoch' + ");
    b.push_bind(after.unix_millis());
    b.push("::bigint * interval '1 millisecond') ORDER BY received_at, id LIMIT ")
        .push_bind(i64::try_from(q.limit).unwrap_or(i64::MAX));
    let rows = b.build().fetch_all(pool).await?;
    rows.iter().map(record).collect()
}

pub(crate) fn record(row: &PgRow) -> Result<Record, sqlx::Error> {
    let level: String = row.try_get("level")?;
    let meta: String = row.try_get("meta")?;
    let meta: Map<String, Value> = serde_json::from_str(&meta).unwrap_or_default();
    Ok(Record {
        id: Some(row.try_get::<Uuid, _>("id")?),
        ts: Timestamp::from_unix_millis(row.try_get("ts_ms")?),
        received_at: Some(Timestamp::from_unix_millis(row.try_get("rcv_ms")?)),
        service: row.try_get("service")?,
        level: Level::parse(&level).unwrap_or(Level::Info),
        event: row.try_get("event")?,
        message: row.try_get("message")?,
        meta,
        issue: row.try_get("issue")?,
    })
}

/// How many records a row stands for: `meta.sample_weight` when it is a positive whole
/// number (ingest makes sure of that; rows stored before the key was reserved may hold
/// anything), else 1.
const SAMPLE_WEIGHT: &str = "CASE WHEN jsonb_typeof(meta->'sample_weight') = 'number' \
     AND (meta->>'sample_weight') ~ '^[0-9]{1,15}$' \
     THEN GREATEST((meta->>'sample_weight')::bigint, 1) ELSE 1 END";

/// Per-minute counts per service and level, sampled records counted as the records they
/// stand for. The sum (a `numeric`) is capped at the largest `bigint` before the cast, which
/// would otherwise fail the whole query.
pub(crate) async fn stats(pool: &PgPool, q: &StatsQuery) -> Result<Stats, sqlx::Error> {
    let mut b = QueryBuilder::<Postgres>::new(format!(
        "SELECT {} AS minute_ms, service, level, \
         LEAST(sum({SAMPLE_WEIGHT}), 9223372036854775807)::bigint AS n \
         FROM system_logs WHERE true",
        ts_to_ms("date_trunc('minute', ts)")
    ));
    push_time(&mut b, ">=", q.since);
    push_time(&mut b, "<", q.until);
    if let Some(s) = &q.service {
        b.push(" AND service = ").push_bind(s.clone());
    }
    b.push(" GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
    let rows = b.build().fetch_all(pool).await?;
    let mut buckets = Vec::with_capacity(rows.len());
    for row in rows {
        let level: String = row.try_get("level")?;
        let Some(level) = Level::parse(&level) else {
            continue;
        };
        buckets.push(StatsBucket {
            minute: Timestamp::from_unix_millis(row.try_get("minute_ms")?),
            service: row.try_get("service")?,
            level,
            count: u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0),
        });
    }
    Ok(Stats { buckets })
}

/// For tests: `EXPLAIN` of the query `/logs/recent` would run for `q`.
pub(crate) async fn explain(pool: &PgPool, q: &Query) -> Result<String, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    // Tiny test tables make a sequential scan cheapest; forbid it to see that an index fits.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut *conn)
        .await?;
    let mut b = QueryBuilder::<Postgres>::new(format!("EXPLAIN {}", select()));
    push_filters(&mut b, q);
    let rows = b.build().fetch_all(&mut *conn).await?;
    sqlx::query("RESET enable_seqscan")
        .execute(&mut *conn)
        .await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect::<Vec<_>>()
        .join("\n"))
}
