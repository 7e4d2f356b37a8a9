//! Full-queue policies, with a writer held shut so the queue fills at a known point: the
//! worker holds exactly one record inside `write`, and the producing thread's queue holds
//! `CAPACITY`. Each thread has its own queue, so everything a test expects to wait or be
//! dropped is logged from that one thread.

use std::sync::mpsc;
use std::time::Duration;

use faultline_logger::{FaultlineLayer, Guard, Output, Policy, builder};
use faultline_schema::Level;

use crate::common::{Gated, dispatch, with_layer};

const CAPACITY: usize = 8;

type Job = Box<dyn FnOnce() + Send>;

/// A thread that logs through the logger, running one job after another.
struct Producer {
    jobs: Option<mpsc::Sender<(Job, mpsc::Sender<()>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Producer {
    fn new(layer: &FaultlineLayer) -> Producer {
        let d = dispatch(layer.clone());
        let (jobs, rx) = mpsc::channel::<(Job, mpsc::Sender<()>)>();
        let thread = std::thread::spawn(move || {
            tracing::dispatcher::with_default(&d, || {
                for (job, done) in rx {
                    job();
                    let _ = done.send(());
                }
            });
        });
        Producer {
            jobs: Some(jobs),
            thread: Some(thread),
        }
    }

    /// Starts `job` on the producing thread; the receiver hears when it is done.
    fn start(&self, job: impl FnOnce() + Send + 'static) -> mpsc::Receiver<()> {
        let (done, finished) = mpsc::channel();
        self.jobs
            .as_ref()
            .unwrap()
            .send((Box::new(job), done))
            .unwrap();
        finished
    }

    /// Runs `job` on the producing thread and waits for it.
    fn run(&self, job: impl FnOnce() + Send + 'static) {
        self.start(job).recv().unwrap();
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A logger whose only output writes to a shut [`Gated`], with one record in the worker and
/// the producer's queue full.
fn full_logger(
    policy: Policy,
    never_drop_errors: bool,
) -> (FaultlineLayer, Guard, Gated, Producer) {
    let gated = Gated::closed();
    let (layer, guard) = builder()
        .service("policy")
        .panic_hook(false)
        .output(
            Output::writer(gated.clone())
                .queue_capacity(CAPACITY)
                .policy(policy)
                .never_drop_errors(never_drop_errors),
        )
        .build()
        .unwrap();
    let producer = Producer::new(&layer);
    producer.run(|| tracing::info!(seq = 0u64, "held by the worker"));
    gated.wait_entered();
    producer.run(|| {
        for i in 1..=CAPACITY as u64 {
            tracing::info!(seq = i, "queued");
        }
    });
    let stats = guard.stats();
    assert_eq!(stats.outputs[0].queue_depth, CAPACITY);
    assert_eq!(stats.dropped().total(), 0);
    (layer, guard, gated, producer)
}

#[test]
fn drop_newest_counts_drops_and_keeps_errors_marked_never_drop() {
    let (_layer, guard, gated, producer) = full_logger(Policy::DropNewest, true);
    producer.run(|| {
        for i in 0..5u64 {
            tracing::info!(seq = 100 + i, "dropped");
        }
    });
    let s = guard.stats();
    assert_eq!(s.outputs[0].dropped.queue_full, 5);
    assert_eq!(s.outputs[0].queue_high_water, CAPACITY);
    assert_eq!(s.outputs[0].enqueued, 1 + CAPACITY as u64);

    // An error waits for room instead of being dropped.
    let error = producer.start(|| tracing::error!(seq = 999u64, "kept"));
    assert!(
        error.recv_timeout(Duration::from_millis(300)).is_err(),
        "the error waits while the queue is full"
    );
    assert_eq!(guard.stats().outputs[0].dropped.total(), 5);
    gated.open();
    error.recv().unwrap();

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
    assert_eq!(report.outputs[0].internal, 1);
}

#[test]
fn block_timeout_waits_then_drops_and_counts() {
    let (_layer, guard, gated, producer) =
        full_logger(Policy::BlockTimeout(Duration::from_millis(50)), false);
    producer.run(|| {
        for i in 0..3u64 {
            tracing::info!(seq = 100 + i, "timed out");
        }
        // Errors are not exempt unless marked never-drop.
        tracing::error!(seq = 200u64, "timed out too");
    });
    let s = guard.stats();
    assert_eq!(s.outputs[0].dropped.timeout, 4);
    assert_eq!(s.outputs[0].dropped.queue_full, 0);
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
    let (_layer, guard, gated, producer) = full_logger(Policy::Block, false);
    let waited = producer.start(|| {
        for i in 0..4u64 {
            tracing::info!(seq = 100 + i, "waited");
        }
    });
    assert!(
        waited.recv_timeout(Duration::from_millis(300)).is_err(),
        "the producer waits for room"
    );
    gated.open();
    waited.recv().unwrap();
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

/// Each thread has its own queue: one thread's full queue neither blocks nor drops another
/// thread's records, and the output's depth counts both.
#[test]
fn each_thread_has_its_own_queue() {
    let (layer, guard, gated, _producer) = full_logger(Policy::DropNewest, false);
    with_layer(&layer, || {
        for i in 0..CAPACITY as u64 {
            tracing::info!(seq = 500 + i, "another thread");
        }
        tracing::info!(seq = 600u64, "dropped: this thread's queue is full too");
    });
    let s = guard.stats();
    assert_eq!(s.outputs[0].queue_depth, 2 * CAPACITY);
    assert_eq!(s.outputs[0].dropped.queue_full, 1);
    gated.open();
    let report = guard.shutdown(Duration::MAX);
    assert!(report.complete);
    let seqs: Vec<u64> = gated
        .records()
        .iter()
        .filter_map(|r| r.meta.get("seq").and_then(|v| v.as_u64()))
        .collect();
    assert_eq!(seqs.len(), 1 + 2 * CAPACITY);
    let theirs: Vec<u64> = seqs.iter().copied().filter(|s| *s >= 500).collect();
    assert_eq!(theirs, (500..500 + CAPACITY as u64).collect::<Vec<_>>());
}

#[test]
fn records_after_shutdown_are_counted_as_closed() {
    let gated = crate::common::open_writer();
    let (layer, guard) = builder()
        .service("policy")
        .output(Output::writer(gated.clone()))
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

/// A shutdown whose timeout passes while the output is stuck reports what is still queued
/// instead of hanging.
#[test]
fn shutdown_timeout_reports_what_is_left() {
    let (_layer, guard, gated, _producer) = full_logger(Policy::Block, false);
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
