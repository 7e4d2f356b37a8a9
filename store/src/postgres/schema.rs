//! Migrations, daily partitions and retention.

use faultline_schema::Timestamp;
use sqlx::PgPool;

const DAY_MS: i64 = 86_400_000;

/// Every migration, embedded in the binary.
pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Applies pending migrations (idempotent; sqlx serializes concurrent runs with a lock).
pub(crate) async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// `YYYY-MM-DD` of the UTC day starting at `day_ms`.
fn date(day_ms: i64) -> String {
    Timestamp::from_unix_millis(day_ms).to_string()[..10].to_owned()
}

fn partition_name(day_ms: i64) -> String {
    format!("system_logs_p{}", date(day_ms).replace('-', ""))
}

/// Creates the daily partitions from yesterday to `ahead` days from now. A day whose rows
/// already sit in the default partition (records that arrived before their partition
/// existed) has them moved into its new partition in the same transaction.
pub(crate) async fn ensure_partitions(
    pool: &PgPool,
    now: Timestamp,
    ahead: u32,
) -> Result<u32, sqlx::Error> {
    let today = now.unix_millis().div_euclid(DAY_MS) * DAY_MS;
    let mut created = 0;
    for d in -1..=i64::from(ahead) {
        let day = today + d * DAY_MS;
        let name = partition_name(day);
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&name)
            .fetch_one(pool)
            .await?;
        if exists {
            continue;
        }
        let (from, to) = (date(day), date(day + DAY_MS));
        let bounds = format!("FROM ('{from}T00:00:00Z') TO ('{to}T00:00:00Z')");
        let mut tx = pool.begin().await?;
        // Names and bounds are built from dates, never from input.
        sqlx::query(&format!(
            "CREATE TABLE {name} (LIKE system_logs INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "WITH moved AS (DELETE FROM system_logs_default \
             WHERE ts >= '{from}T00:00:00Z' AND ts < '{to}T00:00:00Z' RETURNING *) \
             INSERT INTO {name} SELECT * FROM moved"
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "ALTER TABLE system_logs ATTACH PARTITION {name} FOR VALUES {bounds}"
        ))
        .execute(&mut *tx)
        .await?;
        match tx.commit().await {
            Ok(()) => created += 1,
            // Another node created it first.
            Err(e) if is_duplicate_table(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

fn is_duplicate_table(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "42P07")
}

/// Drops daily partitions whose whole day is older than `cutoff`, and deletes rows older
/// than it from the default partition. Returns the partitions dropped.
pub(crate) async fn apply_retention(
    pool: &PgPool,
    cutoff: Timestamp,
) -> Result<Vec<String>, sqlx::Error> {
    let mut dropped = Vec::new();
    for name in expired_partitions(pool, cutoff).await? {
        sqlx::query(&format!("DROP TABLE IF EXISTS {name}"))
            .execute(pool)
            .await?;
        dropped.push(name);
    }
    sqlx::query(&format!(
        "DELETE FROM system_logs_default WHERE ts < {}",
        ms_to_ts("$1")
    ))
    .bind(cutoff.unix_millis())
    .execute(pool)
    .await?;
    Ok(dropped)
}

/// The daily partitions whose whole day is older than `cutoff`, oldest first.
pub(crate) async fn expired_partitions<'c, E>(
    executor: E,
    cutoff: Timestamp,
) -> Result<Vec<String>, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Postgres>,
{
    let mut partitions: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent \
         WHERE p.relname = 'system_logs' AND c.relname LIKE 'system_logs\\_p%'",
    )
    .fetch_all(executor)
    .await?;
    let cutoff_day = cutoff.unix_millis().div_euclid(DAY_MS) * DAY_MS;
    let keep_from = partition_name(cutoff_day);
    // Names sort like their dates: system_logs_pYYYYMMDD.
    partitions.retain(|name| {
        let well_formed = name.len() == "system_logs_p".len() + 8
            && name["system_logs_p".len()..]
                .bytes()
                .all(|b| b.is_ascii_digit());
        well_formed && *name < keep_from
    });
    partitions.sort();
    Ok(partitions)
}

/// SQL turning a bigint of Unix milliseconds into a `timestamptz`, exactly.
pub(crate) fn ms_to_ts(param: &str) -> String {
    format!("(timestamptz 'epoch' + {param}::bigint * interval '1 millisecond')")
}

/// SQL turning a `timestamptz` column into Unix milliseconds, exactly.
pub(crate) fn ts_to_ms(column: &str) -> String {
    format!("(extract(epoch FROM {column}) * 1000)::bigint")
}
