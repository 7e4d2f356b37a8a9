//! The PostgreSQL output against the real PostgreSQL that `cargo xtask test` starts
//! (`FAULTLINE_TEST_DATABASE_URL`); each test creates its own database.

use std::time::Duration;

use faultline_logger::{Output, PostgresConfig, builder};
use sqlx::{Connection, Row};

use crate::common::{block_on, eventually, free_port, with_layer};

fn fresh_db() -> String {
    let base = std::env::var("FAULTLINE_TEST_DATABASE_URL").expect(
        "FAULTLINE_TEST_DATABASE_URL is not set: `cargo xtask test` starts a throwaway \
         PostgreSQL and sets it; to run these tests by hand, point it at a superuser URL",
    );
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "logger_{}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    block_on(async {
        let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
    });
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{name}")
}

fn query<T>(url: &str, f: impl AsyncFnOnce(&mut sqlx::PgConnection) -> T) -> T {
    block_on(async {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        f(&mut c).await
    })
}

fn count(url: &str, service: &str) -> (i64, i64) {
    query(url, async |c| {
        let row =
            sqlx::query("SELECT count(*), count(DISTINCT id) FROM system_logs WHERE service = $1")
                .bind(service)
                .fetch_one(c)
                .await
                .unwrap();
        (row.get::<i64, _>(0), row.get::<i64, _>(1))
    })
}

#[test]
fn writes_batches_into_system_logs() {
    let url = fresh_db();
    let spool = tempfile::tempdir().unwrap();
    let mut config = PostgresConfig::new(&url, spool.path());
    config.write_timeout = Duration::from_secs(5);
    let (layer, guard) = builder()
        .service("pgtest")
        .output(Output::postgres(config).batch_size(250))
        .build()
        .unwrap();
    with_layer(&layer, || {
        let span = tracing::info_span!("job", trace_id = "4bf92f3577b34da6a3ce929d0e0e4736");
        let _e = span.enter();
        for i in 0..1999u64 {
            tracing::info!(seq = i, "row");
        }
        tracing::error!(seq = 1999u64, "the last one");
    });
    let report = guard.shutdown(Duration::MAX);
    assert!(report.complete, "{report:?}");
    assert_eq!(
        (report.written, report.dropped.total(), report.spooled),
        (2000, 0, 0)
    );
    assert_eq!(count(&url, "pgtest"), (2000, 2000));
    let (level, trace, seq): (String, String, i64) = query(&url, async |c| {
        let row = sqlx::query(
            "SELECT level, meta->>'trace_id', (meta->>'seq')::int8 FROM system_logs \
             WHERE message = 'the last one'",
        )
        .fetch_one(c)
        .await
        .unwrap();
        (row.get(0), row.get(1), row.get(2))
    });
    assert_eq!(
        (level.as_str(), trace.as_str(), seq),
        ("ERROR", "4bf92f3577b34da6a3ce929d0e0e4736", 1999)
    );
}

/// While PostgreSQL is unreachable the records wait in the output's durable spool; a later
/// logger with the same spool drains them into the database exactly once.
#[test]
fn an_unreachable_database_spools_and_drains_once() {
    let url = fresh_db();
    let spool = tempfile::tempdir().unwrap();
    let (_, tail) = url.split_once('@').unwrap();
    let db_name = tail.rsplit('/').next().unwrap();
    let dead = format!(
        "postgres://nobody@127.0.0.1:{}/{db_name}?connect_timeout=1",
        free_port()
    );
    let mut config = PostgresConfig::new(&dead, spool.path());
    config.write_timeout = Duration::from_secs(1);
    let (layer, guard) = builder()
        .service("pgoutage")
        .output(Output::postgres(config).batch_size(100))
        .build()
        .unwrap();
    with_layer(&layer, || {
        for i in 0..300u64 {
            tracing::info!(seq = i, "spooled");
        }
    });
    let report = guard.shutdown(Duration::MAX);
    assert!(report.complete);
    assert_eq!(
        (report.spooled, report.dropped.total()),
        (300, 0),
        "{report:?}"
    );

    let mut config = PostgresConfig::new(&url, spool.path());
    config.write_timeout = Duration::from_secs(5);
    let (_layer, guard) = builder()
        .service("pgoutage")
        .output(Output::postgres(config))
        .build()
        .unwrap();
    eventually(Duration::from_secs(60), || {
        (count(&url, "pgoutage").0 == 300).then_some(())
    });
    assert_eq!(count(&url, "pgoutage"), (300, 300));
    assert_eq!(guard.shutdown(Duration::MAX).spooled, 0);
}
