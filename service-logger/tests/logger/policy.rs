//! Full-queue policies, with a writer held shut so the queue fills at a known point: the
//! worker holds exactly one record inside `write`, and the queue holds `CAPACITY`.

use std::time::Duration;

use faultline_logger::{FaultlineLayer, Guard, Policy, Sink, builder};
use faultline_schema::Level;

use crate::common::{Gated, dispatch, with_layer};

const CAPACITY: usize = 8;

/// A logger whose only sink writes to a shut [`Gated`], with one record in the worker and
/// the queue full.
fn full_logger(policy: Policy, never_drop_errors: bool) -> (FaultlineLayer, Guard, Gated) {
    let gated = Gated::closed();
    let (layer, guard) = builder()
        .service("policy")
        .panic_hook(false)
        .sink(
            Sink::writer(gated.clone())
                .queue_capacity(CAPACITY)
                .policy(policy)
                .never_drop_errors(never_drop_errors),
        )
        .build()
        .unwrap();
    with_layer(&layer, || tracing::info!(seq = 0u64, "held by the worker"));
    gated.wait_entered();
    with_layer(&layer, || {
        for i in 1..=CAPACITY as u64 {
            tracing::info!(seq = i, "queued");
        }
    });
    let stats = guard.stats();
    assert_eq!(stats.sinks[0].queue_depth, CAPACITY);
    assert_eq!(stats.dropped().total(), 0);
    (layer, guard, gated)
}

#[test]
fn drop_newest_counts_drops_and_keeps_errors_marked_never_drop() {
    let (layer, guard, gated) = full_logger(Policy::DropNewest, true);
    with_layer(&layer, || {
        for i in 0..5u64 {
            tracing::info!(seq = 100 + i, "dropped");
        }
    });
    let s = guard.stats();
    assert_eq!(s.sinks[0].dropped.queue_full, 5);
    assert_eq!(s.sinks[0].queue_high_water, CAPACITY);
    assert_eq!(s.sinks[0].enqueued, 1 + CAPACITY as u64);

    // An error waits for room instead of being dropped.
    let d = dispatch(layer.clone());
    let error = std::thread::spawn(move || {
        tracing::dispatcher::with_default(&d, || tracing::error!(seq = 999u64, "kept"));
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !error.is_finished(),
        "the error waits while the queue is full"
    );
    assert_eq!(guard.stats().sinks[0].dropped.total(), 5);
    gated.open();
    error.join().unwrap();

    let report = guard.shutdown(Duration::MAX);
    assert!(report.complete);
    assert_eq!(report.dropped.queue_full, 5);
    assert_eq!(report.dropped.total(), 5);
    let records = gated.records();
    let seqs: Vec<u64> = records
        .iter()
        .filter_map(|r| r.meta.get("seq").and_then(|v| v.as_u64()))
        .collect();
    let mut expected: Vec<u64> = (0..=CAPACITY as u64).collect();
    expected.push(999);
    assert_eq!(seqs, expected);
    // The loss is visible in the log itself.
    let report_record = records
        .iter()
        .find(|r| r.event == "logger_dropped")
        .expect("a logger_dropped record");
    assert_eq!(report_record.level, Level::Warning);
    assert_eq!(report_record.meta["dropped"], 5);
    assert_eq!(report.written, records.len() as u64);
    assert_eq!(report.sinks[0].internal, 1);
}

#[test]
fn block_timeout_waits_then_drops_and_counts() {
    let (layer, guard, gated) = full_logger(Policy::BlockTimeout(Duration::from_millis(50)), false);
    with_layer(&layer, || {
        for i in 0..3u64 {
            tracing::info!(seq = 100 + i, "timed out");
        }
        // Errors are not exempt unless marked never-drop.
        tracing::error!(seq = 200u64, "timed out too");
    });
    let s = guard.stats();
    assert_eq!(s.sinks[0].dropped.timeout, 4);
    assert_eq!(s.sinks[0].dropped.queue_full, 0);
    gated.open();
    let report = guard.shutdown(Duration::MAX);
    assert_eq!(report.dropped.timeout, 4);
    assert_eq!(
        report.written,
        1 + CAPACITY as u64 + 1,
        "records and the drop report"
    );
}

#[test]
fn block_waits_for_room_and_loses_nothing() {
    let (layer, guard, gated) = full_logger(Policy::Block, false);
    let d = dispatch(layer.clone());
    let producer = std::thread::spawn(move || {
        tracing::dispatcher::with_default(&d, || {
            for i in 0..4u64 {
                tracing::info!(seq = 100 + i, "waited");
            }
        });
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!producer.is_finished(), "the producer waits for room");
    gated.open();
    producer.join().unwrap();
    let report = guard.shutdown(Duration::MAX);
    assert!(report.complete);
    assert_eq!(report.dropped.total(), 0);
    assert_eq!(report.written, 1 + CAPACITY as u64 + 4);
    let seqs: Vec<u64> = gated
        .records()
        .iter()
        .map(|r| r.meta["seq"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (0..=CAPACITY as u64).chain(100..104).collect();
    assert_eq!(seqs, expected);
}

#[test]
fn records_after_shutdown_are_counted_as_closed() {
    let gated = crate::common::open_writer();
    let (layer, guard) = builder()
        .service("policy")
        .sink(Sink::writer(gated.clone()))
        .build()
        .unwrap();
    let logger = guard.logger().clone();
    with_layer(&layer, || tracing::info!("before"));
    let report = guard.shutdown(Duration::MAX);
    assert_eq!(report.written, 1);
    with_layer(&layer, || {
        for _ in 0..3 {
            tracing::info!("after");
        }
    });
    let stats = logger.stats();
    assert_eq!(stats.dropped().closed, 3);
    assert_eq!(stats.written(), 1);
    // A second shutdown only reports.
    assert_eq!(logger.shutdown(Duration::from_secs(1)).dropped.closed, 3);
}

/// A shutdown whose timeout passes while the sink is stuck reports what is still queued
/// instead of hanging.
#[test]
fn shutdown_timeout_reports_what_is_left() {
    let (_layer, guard, gated) = full_logger(Policy::Block, false);
    let logger = guard.logger().clone();
    let report = logger.shutdown(Duration::from_millis(200));
    assert!(!report.complete);
    assert_eq!(
        report.queued,
        1 + CAPACITY as u64,
        "the held record and the queue"
    );
    assert_eq!(report.written, 0);
    gated.open();
    drop(guard);
}
