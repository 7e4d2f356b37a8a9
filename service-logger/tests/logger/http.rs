//! The HTTP output against a real `faultline serve`: delivery, an outage, a restart of the
//! service, and the retry rules, with the server's own limits set low to provoke 429 and 413.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use faultline_logger::{HttpConfig, Output, builder};
use faultline_schema::{Level, Uuid};

use crate::common::{KEY, Server, eventually, free_port, with_layer};

fn http(base: &str) -> HttpConfig {
    HttpConfig::new(base, KEY).backoff(Duration::from_millis(50), Duration::from_millis(500))
}

#[test]
fn delivers_batches_to_a_real_server() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), "127.0.0.1:0");
    let (layer, guard) = builder()
        .service("httptest")
        .output(Output::http(http(&server.base)).batch_size(100))
        .build()
        .unwrap();
    with_layer(&layer, || {
        let span = tracing::info_span!("job", trace_id = "4bf92f3577b34da6a3ce929d0e0e4736");
        let _e = span.enter();
        for i in 0..499u64 {
            tracing::info!(seq = i, "shipped");
        }
        tracing::error!(seq = 499u64, user = "bob", "failed");
    });
    let report = guard.shutdown(Duration::MAX);
    assert!(report.complete, "{report:?}");
    assert_eq!((report.written, report.dropped.total()), (500, 0));
    let stored = server.recent("httptest");
    assert_eq!(stored.len(), 500);
    let seqs: HashSet<u64> = stored
        .iter()
        .map(|r| r.meta["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 500);
    let failed = stored.iter().find(|r| r.message == "failed").unwrap();
    assert_eq!(failed.level, Level::Error);
    assert_eq!(failed.meta["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    // Anonymized in the service, re-keyed by the server: never the raw id.
    assert!(failed.meta["user"].as_str().unwrap().starts_with("u_"));
}

/// The outage test: the server is killed mid-stream and comes back on the same
/// port; records logged meanwhile wait in the spool and are stored exactly once.
#[test]
fn rides_out_a_server_outage_and_delivers_each_record_once() {
    let data = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), "127.0.0.1:0");
    let addr = server.addr();
    let (layer, guard) = builder()
        .service("outage")
        .output(
            Output::http(http(&server.base).spool_dir(spool.path()))
                .batch_size(50)
                .linger(Duration::from_millis(20)),
        )
        .build()
        .unwrap();
    let log = |from: u64, to: u64| {
        with_layer(&layer, || {
            for i in from..to {
                tracing::info!(seq = i, "across an outage");
            }
        })
    };
    log(0, 100);
    assert_eq!(guard.flush().written, 100);

    server.kill();
    log(100, 300);
    let report = guard.flush();
    assert!(
        report.complete,
        "a failing endpoint leaves the records durable"
    );
    assert_eq!(report.written, 100);
    assert_eq!(report.spooled, 200, "{report:?}");
    assert!(report.outputs[0].output_errors > 0);
    std::thread::sleep(Duration::from_millis(300));

    let server = Server::start(data.path(), &addr);
    log(300, 400);
    let report = eventually(Duration::from_secs(60), || {
        let r = guard.flush_timeout(Duration::from_secs(5));
        (r.spooled == 0 && r.written == 400).then_some(r)
    });
    assert_eq!(report.dropped.total(), 0);
    let stored = server.recent("outage");
    let ids: HashSet<Uuid> = stored.iter().map(|r| r.id.unwrap()).collect();
    assert_eq!(stored.len(), 400, "each record stored once");
    assert_eq!(ids.len(), 400);
    let seqs: HashSet<u64> = stored
        .iter()
        .map(|r| r.meta["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..400).collect());
    drop(guard);
}

/// Batches spooled by one run of a service are delivered by the next.
#[test]
fn the_spool_survives_a_restart_of_the_service() {
    let data = tempfile::tempdir().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{addr}");
    let first = builder()
        .service("restart")
        .output(Output::http(http(&base).spool_dir(spool.path())))
        .build()
        .unwrap();
    with_layer(&first.0, || {
        for i in 0..50u64 {
            tracing::info!(seq = i, "spooled by the first run");
        }
    });
    let report = first.1.shutdown(Duration::MAX);
    assert!(report.complete);
    assert_eq!((report.written, report.spooled), (0, 50));

    let server = Server::start(data.path(), &addr);
    let (_layer, guard) = builder()
        .service("restart")
        .output(Output::http(http(&base).spool_dir(spool.path())))
        .build()
        .unwrap();
    let report = guard.shutdown(Duration::MAX);
    assert_eq!((report.written, report.spooled), (50, 0), "{report:?}");
    assert_eq!(server.recent("restart").len(), 50);
}

/// The server's rate limit answers 429 with `Retry-After`; the output waits that long instead
/// of its own (much shorter) backoff, so the one retry succeeds.
#[test]
fn retry_after_from_a_rate_limited_server_is_honored() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        data.path(),
        "127.0.0.1:0",
        &[
            ("FAULTLINE_LIMITS_SECRET_KEY_RATE_RECORDS_PER_SECOND", "10"),
            ("FAULTLINE_LIMITS_SECRET_KEY_RATE_BURST", "10"),
        ],
    );
    let (layer, guard) = builder()
        .service("retry")
        .output(Output::http(http(&server.base)).batch_size(10))
        .build()
        .unwrap();
    let log = |from: u64| {
        with_layer(&layer, || {
            for i in from..from + 10 {
                tracing::info!(seq = i, "rate limited");
            }
        })
    };
    log(0);
    assert_eq!(
        guard.flush().written,
        10,
        "the first batch empties the bucket"
    );
    let started = Instant::now();
    log(10);
    let report = guard.flush();
    let waited = started.elapsed();
    assert_eq!(
        (report.written, report.dropped.total()),
        (20, 0),
        "{report:?}"
    );
    assert_eq!(
        report.outputs[0].output_errors, 1,
        "one 429, then one retry after Retry-After (a 50 ms backoff would have hit it again)"
    );
    assert!(
        report.outputs[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("429")
    );
    assert!(
        waited >= Duration::from_millis(900),
        "retried after {waited:?}"
    );
    assert_eq!(server.ingest_requests(429), 1);
    let seqs: HashSet<u64> = server
        .recent("retry")
        .iter()
        .map(|r| r.meta["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..20).collect());
}

/// A 4xx other than 408, 413 and 429 cannot succeed on retry: the batch is dropped as
/// rejected after one attempt, and the error says why.
#[test]
fn a_refused_key_is_not_retried() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), "127.0.0.1:0");
    let config = HttpConfig::new(&server.base, "sk_wrong")
        .backoff(Duration::from_millis(50), Duration::from_millis(500));
    let (layer, guard) = builder()
        .service("refused")
        .output(Output::http(config))
        .build()
        .unwrap();
    with_layer(&layer, || {
        for _ in 0..3 {
            tracing::info!("refused");
        }
    });
    let report = guard.shutdown(Duration::MAX);
    assert!(report.complete);
    assert_eq!((report.written, report.dropped.rejected), (0, 3));
    assert_eq!(report.outputs[0].output_errors, 1);
    assert!(
        report.outputs[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("401")
    );
    assert_eq!(server.ingest_requests(401), 1);
}

/// A batch over the server's record limit gets 413 and is sent again in halves.
#[test]
fn a_batch_too_large_for_the_server_is_split() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        data.path(),
        "127.0.0.1:0",
        &[("FAULTLINE_LIMITS_MAX_BATCH_RECORDS", "5")],
    );
    let (layer, guard) = builder()
        .service("split")
        .output(Output::http(http(&server.base)).batch_size(10))
        .build()
        .unwrap();
    with_layer(&layer, || {
        for i in 0..10u64 {
            tracing::info!(seq = i, "split");
        }
    });
    let report = guard.shutdown(Duration::MAX);
    assert_eq!((report.written, report.dropped.total()), (10, 0));
    assert_eq!(server.ingest_requests(413), 1);
    assert_eq!(server.ingest_requests(202), 2);
    assert_eq!(server.recent("split").len(), 10);
}

/// A forwarder's path: records built elsewhere, with their own ids and services, go through
/// the HTTP output; a complete flush means the server has them, and sending them again (a
/// restarted forwarder re-reading its input) stores nothing twice.
#[test]
fn pre_built_records_are_delivered_once_by_id_and_flush_reports_it() {
    use faultline_schema::{Record, Timestamp};

    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), "127.0.0.1:0");
    let (_layer, guard) = builder()
        .service("forwarder")
        .host(None)
        .output(Output::http(http(&server.base)).heartbeat(false))
        .build()
        .unwrap();
    let records: Vec<Record> = (0..50u64)
        .map(|i| {
            let mut r = Record::new(
                Timestamp::from_unix_millis(1_780_000_000_000 + i as i64),
                "worker",
                if i == 7 { Level::Error } else { Level::Info },
                "log",
                format!("line {i}"),
            );
            r.id = Some(Uuid::from_u128(
                0x0190_0000_0000_7000_8000_0000_0000_0000 + u128::from(i),
            ));
            r
        })
        .collect();
    for r in &records {
        guard.logger().send_record(r);
    }
    let report = guard.flush_timeout(Duration::from_secs(30));
    assert!(report.complete, "{report:?}");
    assert_eq!((report.written, report.dropped.total()), (50, 0));
    for r in &records[..10] {
        guard.logger().send_record(r);
    }
    let report = guard.shutdown(Duration::from_secs(30));
    assert_eq!((report.written, report.dropped.total()), (60, 0));
    let stored = server.recent("worker");
    assert_eq!(stored.len(), 50, "each id stored once");
    let line7 = stored.iter().find(|r| r.message == "line 7").unwrap();
    assert_eq!(line7.level, Level::Error);
    assert_eq!(line7.id, records[7].id);
    assert!(
        line7.meta.get("host").is_none(),
        "sent as built: {:?}",
        line7.meta
    );
}
