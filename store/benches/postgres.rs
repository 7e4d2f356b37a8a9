//! PostgreSQL store benchmark (run by `cargo xtask bench postgres`, which starts a throwaway
//! cluster with durable commits and passes `--url`).
//!
//! 1. Rows/s written straight through `PostgresStore::write`, UNNEST against COPY, at batch
//!    sizes 100 and 1000, with `--writers` concurrent writers for `--seconds` each.
//! 2. `/logs/recent` latency with `--rows` (default 10 million) stored: the rows are made by
//!    the database itself (`generate_series`), then every filter shape is queried through
//!    `RecordStore::query`, the server's own code path, 30 times each.
//!
//! With `--baseline`, only PostgreSQL's own insert rate (issue 27): `--sessions` sessions
//! each committing `INSERT ... SELECT` of 1000 rows the database generates, shaped like the
//! ingest benchmark's records as the server stores them, into a fresh database with the
//! store's migrations. No client builds a row, so this is what the end-to-end rate through
//! `POST /logs/ingest` at batch 1000 is held against (`cargo xtask bench postgres` runs it
//! before and after the end-to-end runs and prints the ratio).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use faultline_schema::{Level, Record, Timestamp, Uuid};
use faultline_store::{PostgresConfig, PostgresStore, Query, RecordStore, WriteMethod};
use sqlx::Connection;

struct Args {
    url: String,
    seconds: u64,
    writers: usize,
    rows: u64,
    /// Only the database's own insert rate (`--baseline`), with this many sessions.
    baseline: bool,
    sessions: usize,
}

fn args() -> Args {
    let mut a = Args {
        url: String::new(),
        seconds: 10,
        writers: 8,
        rows: 10_000_000,
        baseline: false,
        sessions: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match arg.as_str() {
            "--url" => a.url = value(),
            "--seconds" => a.seconds = value().parse().unwrap_or(10),
            "--writers" => a.writers = value().parse().unwrap_or(8),
            "--rows" => a.rows = value().parse().unwrap_or(10_000_000),
            "--baseline" => a.baseline = true,
            "--sessions" => a.sessions = value().parse().unwrap_or(16),
            _ => {}
        }
    }
    assert!(
        !a.url.is_empty(),
        "--url postgres://... (cargo xtask bench postgres passes it)"
    );
    a
}

async fn fresh_db(base: &str) -> String {
    let name = format!("bench_{}", Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    format!("{}/{name}", base.rsplit_once('/').unwrap().0)
}

fn record(i: u64) -> Record {
    let services = ["api", "worker", "ui"];
    let levels = [Level::Info, Level::Warning, Level::Error, Level::Info];
    let mut r = Record::new(
        Timestamp::now(),
        services[(i % 3) as usize],
        levels[(i % 4) as usize],
        "payment_failed",
        format!(
            "card declined for order {}: insufficient funds (issuer 05)",
            100_000 + i
        ),
    );
    r.id = Some(Uuid::now_v7());
    r.received_at = Some(Timestamp::now());
    r.meta.insert(
        "trace_id".into(),
        format!("4bf92f3577b34da6a3ce929d0e0e{:04x}", i % 65536).into(),
    );
    r.meta.insert(
        "user".into(),
        format!("u_3f2a9c0d1b7e{:04x}", i % 65536).into(),
    );
    r.meta.insert("release".into(), "api@1.42.0".into());
    r.meta.insert("url".into(), "/v1/payments".into());
    r
}

async fn write_rate(
    url: &str,
    method: WriteMethod,
    batch: u64,
    writers: usize,
    seconds: u64,
    spool: &std::path::Path,
) -> (f64, f64) {
    let mut config = PostgresConfig::new(url, spool);
    config.write_method = method;
    config.pool_size = writers as u32;
    config.write_timeout = Duration::from_secs(60);
    let store = PostgresStore::open(config).await.unwrap();
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let (mut rows, mut lat) = (0u64, Vec::new());
            let mut i = w as u64 * 1_000_000_000;
            while Instant::now() < end {
                let records: Vec<Record> = (0..batch).map(|k| record(i + k)).collect();
                i += batch;
                let t = Instant::now();
                let r = store.write(records).await.unwrap();
                lat.push(t.elapsed());
                rows += r.written as u64;
            }
            (rows, lat)
        }));
    }
    let (mut rows, mut lat) = (0, Vec::new());
    for t in tasks {
        let (r, l) = t.await.unwrap();
        rows += r;
        lat.extend(l);
    }
    assert_eq!(
        store.health().spool.unwrap().batches,
        0,
        "nothing may be spooled in a write benchmark"
    );
    store.shutdown().await.unwrap();
    lat.sort();
    let p99 = lat
        .get(lat.len() * 99 / 100)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    (rows as f64 / seconds as f64, p99)
}

/// One batch of 1000 rows made by the database, like the ingest benchmark's records once
/// the server has stamped them (`support::load::record`): three services, a quarter at
/// `ERROR` with an issue id (three issues, one per service), the message with an order
/// number, seven `meta` keys with a re-keyed user among 65,536. `$1` is the first row's
/// number. `ON CONFLICT DO NOTHING` as the store's insert does.
const GENERATED_BATCH: &str = "\
    INSERT INTO system_logs (id, ts, received_at, service, level, event, message, meta, issue) \
    SELECT gen_random_uuid(), clock_timestamp(), now(), \
           (ARRAY['api','worker','ui'])[1 + g % 3], \
           (ARRAY['INFO','WARNING','ERROR','INFO'])[1 + g % 4], \
           (ARRAY['payment_failed','job_done','window.onerror','health_check'])[1 + g % 4], \
           'card declined for order ' || (100000 + g) || ': insufficient funds (issuer 05)', \
           jsonb_build_object( \
               'trace_id', '4bf92f3577b34da6a3ce929d0e0e' || lpad(to_hex(g % 65536), 4, '0'), \
               'span_id', '00f067aa0ba902b7', \
               'user', 'u_' || substr(md5((g % 65536)::text), 1, 16), \
               'release', 'api@1.42.0', 'environment', 'production', \
               'url', '/v1/payments', 'bot_id', g % 97), \
           CASE WHEN g % 4 = 2 THEN substr(md5('issue' || g % 3), 1, 16) END \
    FROM generate_series($1::bigint, $1::bigint + 999) AS g \
    ON CONFLICT DO NOTHING";

/// PostgreSQL's own insert rate: `sessions` connections, each committing [`GENERATED_BATCH`]
/// (durable commits, one transaction per batch) for `seconds`, into a fresh database with
/// the store's migrations and today's partition. Returns rows/s.
async fn baseline_rate(url: &str, sessions: usize, seconds: u64, spool: &std::path::Path) -> f64 {
    // The store's own migrations and partitions, then nothing of the store's write path.
    PostgresStore::open(PostgresConfig::new(url, spool))
        .await
        .unwrap()
        .shutdown()
        .await
        .unwrap();
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for s in 0..sessions {
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let (mut rows, mut first) = (0u64, s as i64 * 1_000_000_000);
            while Instant::now() < end {
                rows += sqlx::query(GENERATED_BATCH)
                    .bind(first)
                    .execute(&mut c)
                    .await
                    .unwrap()
                    .rows_affected();
                first += 1000;
            }
            rows
        }));
    }
    let mut rows = 0;
    for t in tasks {
        rows += t.await.unwrap();
    }
    rows as f64 / start.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let a = args();
    let spool = tempfile::tempdir().unwrap();
    if a.baseline {
        let url = fresh_db(&a.url).await;
        let rate = baseline_rate(&url, a.sessions, a.seconds, spool.path()).await;
        eprintln!("INSERT ... SELECT, batch 1000: {rate:.0} rows/s");
        println!(
            "PostgreSQL alone: `INSERT ... SELECT` of 1000 generated rows per transaction, \
             {} sessions, {} s: {rate:.0} rows/s",
            a.sessions, a.seconds
        );
        println!("<!-- baseline {rate:.1} -->");
        return;
    }
    println!(
        "Direct writes through `PostgresStore::write`, {} concurrent writers, {} s each, durable commits:\n",
        a.writers, a.seconds
    );
    println!("| method | batch | rows/s | p99 write ms |");
    println!("| --- | ---: | ---: | ---: |");
    for method in [WriteMethod::Unnest, WriteMethod::Copy] {
        for batch in [100, 1000] {
            let url = fresh_db(&a.url).await;
            let (rate, p99) =
                write_rate(&url, method, batch, a.writers, a.seconds, spool.path()).await;
            eprintln!("{method:?} batch {batch}: {rate:.0} rows/s");
            println!("| {method:?} | {batch} | {rate:.0} | {p99:.1} |");
        }
    }

    // Query latency with many rows stored: generated by the database, spread over 7 days.
    let url = fresh_db(&a.url).await;
    let store = PostgresStore::open(PostgresConfig {
        partitions_ahead: 1,
        ..PostgresConfig::new(&url, spool.path())
    })
    .await
    .unwrap();
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    for d in 1..=7 {
        let day = Timestamp::from_unix_millis(
            (Timestamp::now().unix_millis().div_euclid(86_400_000) - d) * 86_400_000,
        );
        let date = &day.to_string()[..10];
        let next = &Timestamp::from_unix_millis(day.unix_millis() + 86_400_000).to_string()[..10];
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS system_logs_p{} PARTITION OF system_logs FOR VALUES FROM ('{date}T00:00:00Z') TO ('{next}T00:00:00Z')",
            date.replace('-', "")
        ))
        .execute(&mut c)
        .await
        .unwrap();
    }
    let loaded = Instant::now();
    let per_chunk = 1_000_000u64;
    let mut done = 0;
    while done < a.rows {
        let n = per_chunk.min(a.rows - done);
        sqlx::query(
            "INSERT INTO system_logs (id, ts, received_at, service, level, event, message, meta) \
             SELECT gen_random_uuid(), now() - (g * interval '60 ms'), now(), \
                    (ARRAY['api','worker','ui'])[1 + g % 3], \
                    (ARRAY['DEBUG','INFO','INFO','INFO','WARNING','ERROR','CRITICAL'])[1 + g % 7], \
                    (ARRAY['payment_failed','job_done','window.onerror','health_check','behavior_engine'])[1 + g % 5], \
                    'card declined for order ' || g || ': insufficient funds', \
                    jsonb_build_object('user', 'u_' || lpad(to_hex(g % 100000), 16, '0'), 'trace_id', md5(g::text), 'release', 'api@1.42.0') \
             FROM generate_series($1::bigint, $2::bigint) AS g",
        )
        .bind(done as i64)
        .bind((done + n - 1) as i64)
        .execute(&mut c)
        .await
        .unwrap();
        done += n;
        eprintln!("loaded {done} rows");
    }
    sqlx::query("ANALYZE system_logs")
        .execute(&mut c)
        .await
        .unwrap();
    let load_secs = loaded.elapsed().as_secs_f64();
    let size: String = sqlx::query_scalar("SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits WHERE inhparent = 'system_logs'::regclass")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let now = Timestamp::now();
    let hour_ago = Timestamp::from_unix_millis(now.unix_millis() - 3_600_000);
    let cases: Vec<(&str, Query)> = vec![
        ("newest 100, no filter", Query::default()),
        (
            "service=api&level=ERROR",
            Query {
                service: Some("api".into()),
                min_level: Some(Level::Error),
                ..Query::default()
            },
        ),
        (
            "event=behavior_engine",
            Query {
                event: Some("behavior_engine".into()),
                ..Query::default()
            },
        ),
        (
            "user=u_…(one of 100,000)",
            Query {
                user: Some(format!("u_{:0>16}", "c350")),
                ..Query::default()
            },
        ),
        (
            "since=1h&level=CRITICAL",
            Query {
                since: Some(hour_ago),
                min_level: Some(Level::Critical),
                ..Query::default()
            },
        ),
        (
            "q=order 4242 (substring, newest 100)",
            Query {
                text: Some("order 4242".into()),
                ..Query::default()
            },
        ),
        (
            "limit=1000",
            Query {
                limit: 1000,
                ..Query::default()
            },
        ),
    ];
    println!(
        "\n`/logs/recent` through `RecordStore::query` with {} rows stored ({size}, loaded in {load_secs:.0} s), 30 runs each:\n",
        a.rows
    );
    println!("| query | rows returned | p50 ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, q) in cases {
        let mut lat = Vec::new();
        let mut n = 0;
        for _ in 0..30 {
            let t = Instant::now();
            n = store.query(q.clone()).await.unwrap().len();
            lat.push(t.elapsed());
        }
        lat.sort();
        println!(
            "| {name} | {n} | {:.1} | {:.1} |",
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        );
    }
    store.shutdown().await.unwrap();
}
