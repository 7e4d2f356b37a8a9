//! The rotating file output: volume and order, rotation, retention, gzip, errors.

use std::collections::HashSet;
use std::fs::File;
use std::time::{Duration, SystemTime};

use faultline_logger::{Clock, FileConfig, InitError, Output, Rotation, builder};
use faultline_schema::Level;

use crate::common::{closed_segments, dispatch, read_all, read_text, with_layer};

/// The volume test: every record once, each thread's in the order it logged them,
/// across rotated segments.
#[test]
fn eight_threads_of_100k_records_arrive_once_and_in_per_thread_order() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = builder()
        .service("volume")
        // Exact counts: a failing test elsewhere in this binary must not add its panic here.
        .panic_hook(false)
        .output(Output::file(
            FileConfig::new(dir.path()).max_bytes(32 << 20),
        ))
        .build()
        .unwrap();
    let d = dispatch(layer);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let d = d.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&d, || {
                    for i in 0..PER_THREAD {
                        tracing::info!(thread = t, seq = i, path = "/api/orders", "record");
                    }
                });
            });
        }
    });
    let report = guard.shutdown(Duration::MAX);
    assert!(report.complete);
    assert_eq!(report.written, THREADS * PER_THREAD);
    assert_eq!(report.dropped.total(), 0);
    assert_eq!(report.queued, 0);
    assert_eq!(report.outputs[0].enqueued, THREADS * PER_THREAD);

    assert!(
        closed_segments(dir.path(), "volume").len() >= 2,
        "the run crosses rotations"
    );
    let records = read_all(dir.path(), "volume");
    assert_eq!(records.len() as u64, THREADS * PER_THREAD);
    let mut next = vec![0u64; THREADS as usize];
    let mut ids = HashSet::new();
    for r in &records {
        let t = r.meta["thread"].as_u64().unwrap() as usize;
        let seq = r.meta["seq"].as_u64().unwrap();
        assert_eq!(seq, next[t], "thread {t} out of order");
        next[t] += 1;
        assert!(ids.insert(r.id.unwrap()), "duplicate id");
    }
    assert!(next.iter().all(|&n| n == PER_THREAD));
}

/// Tiny limits: each segment stays under its size, only the newest three survive, and what
/// survives is the tail of what was logged, in order.
#[test]
fn size_rotation_and_count_retention_keep_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = builder()
        .service("tiny")
        .host(None)
        .output(Output::file(
            FileConfig::new(dir.path()).max_bytes(2048).keep_files(3),
        ))
        .build()
        .unwrap();
    with_layer(&layer, || {
        for i in 0..300u64 {
            tracing::info!(seq = i, "record number {i}");
        }
    });
    let report = guard.shutdown(Duration::MAX);
    assert_eq!(report.written, 300);
    let closed = closed_segments(dir.path(), "tiny");
    assert_eq!(closed.len(), 3, "{closed:?}");
    for p in &closed {
        let len = std::fs::metadata(p).unwrap().len();
        assert!(len <= 2048 && len > 1024, "{} is {len} bytes", p.display());
    }
    let records = read_all(dir.path(), "tiny");
    let seqs: Vec<u64> = records
        .iter()
        .map(|r| r.meta["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(*seqs.last().unwrap(), 299);
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "a contiguous tail"
    );
    assert!(seqs.len() < 300, "older segments were deleted");
}

/// Closed segments are gzipped; the total-size limit counts the active file.
#[test]
fn gzipped_segments_and_total_bytes_retention() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = builder()
        .service("gz")
        .output(Output::file(
            FileConfig::new(dir.path())
                .max_bytes(4096)
                .gzip(true)
                .max_total_bytes(6000),
        ))
        .build()
        .unwrap();
    with_layer(&layer, || {
        for i in 0..2000u64 {
            tracing::warn!(seq = i, payload = "x".repeat(64), "record");
        }
    });
    let report = guard.shutdown(Duration::MAX);
    assert!(report.complete);
    let closed = closed_segments(dir.path(), "gz");
    let listing: Vec<(String, u64)> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    assert!(!closed.is_empty(), "{listing:?} {:?}", report.outputs[0]);
    let mut total = std::fs::metadata(dir.path().join("gz.ndjson"))
        .unwrap()
        .len();
    for p in &closed {
        assert!(
            p.to_string_lossy().ends_with(".ndjson.gz"),
            "{}",
            p.display()
        );
        total += std::fs::metadata(p).unwrap().len();
        let lines = crate::common::parse_lines(&read_text(p));
        assert!(!lines.is_empty());
        assert!(lines.iter().all(|r| r.level == Level::Warning));
    }
    assert!(total <= 6000, "{total} bytes kept");
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.ends_with(".tmp") || (n.ends_with(".ndjson") && n != "gz.ndjson")
        })
        .count();
    assert_eq!(
        leftovers, 0,
        "every closed segment compressed, no temporaries"
    );
}

/// Segments older than the age limit are deleted at start; younger ones and other files stay.
#[test]
fn age_retention_deletes_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("aged.20200101T000000Z.1.ndjson");
    let young = dir.path().join("aged.20200101T000000Z.2.ndjson");
    let other = dir.path().join("notes.txt");
    for p in [&old, &young, &other] {
        std::fs::write(p, b"").unwrap();
    }
    File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(10 * 86_400))
        .unwrap();
    let (_layer, guard) = builder()
        .service("aged")
        .output(Output::file(
            FileConfig::new(dir.path()).max_age(Duration::from_secs(86_400)),
        ))
        .build()
        .unwrap();
    assert!(guard.shutdown(Duration::MAX).complete);
    assert!(!old.exists());
    assert!(young.exists());
    assert!(other.exists());
}

/// A one-second period starts a new file at each boundary; names carry the clock.
#[test]
fn time_rotation_starts_a_file_per_period() {
    for clock in [Clock::Utc, Clock::Local] {
        let dir = tempfile::tempdir().unwrap();
        let (layer, guard) = builder()
            .service("timed")
            .output(Output::file(
                FileConfig::new(dir.path())
                    .rotation(Rotation::Every(Duration::from_secs(1)))
                    .clock(clock),
            ))
            .build()
            .unwrap();
        with_layer(&layer, || {
            for i in 0..25u64 {
                tracing::info!(seq = i, "tick");
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        assert!(guard.shutdown(Duration::MAX).complete);
        let closed = closed_segments(dir.path(), "timed");
        assert!(closed.len() >= 2, "{clock:?}: {closed:?}");
        for p in &closed {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(name.contains("Z."), clock == Clock::Utc, "{name}");
        }
        let seqs: Vec<u64> = read_all(dir.path(), "timed")
            .iter()
            .map(|r| r.meta["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (0..25).collect::<Vec<_>>());
    }
}

/// Regression guard: a directory that cannot be created is an error from `build`, never a
/// panic.
#[test]
fn an_unusable_directory_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let err = builder()
        .service("api")
        .output(Output::file(FileConfig::new(file.join("logs"))))
        .build()
        .unwrap_err();
    match &err {
        InitError::Io { output, path, .. } => {
            assert_eq!(output, "file");
            assert!(path.starts_with(&file));
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("cannot use"));
}

/// The directory vanishing under a running logger: errors are counted, nothing panics, and
/// writing resumes once the directory is back.
#[test]
fn write_errors_at_runtime_are_counted_and_recovered_from() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("logs");
    let (layer, guard) = builder()
        .service("flaky")
        .output(Output::file(FileConfig::new(&dir).max_bytes(512)))
        .build()
        .unwrap();
    with_layer(&layer, || tracing::info!("before"));
    guard.flush();
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, b"in the way").unwrap();
    with_layer(&layer, || {
        for i in 0..20 {
            tracing::info!(seq = i, "while broken");
        }
    });
    let report = guard.flush();
    let stats = &report.outputs[0];
    assert!(stats.output_errors > 0);
    assert!(stats.last_error.as_deref().unwrap_or("").contains("flaky"));

    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    with_layer(&layer, || tracing::info!("after"));
    let report = guard.shutdown(Duration::MAX);
    assert!(report.complete, "{report:?}");
    let records = read_all(&dir, "flaky");
    assert!(
        records.iter().any(|r| r.message == "after"),
        "writing resumed"
    );
}

/// Regression guard: a crash that cut the last line must not glue the next record to it.
#[test]
fn a_torn_last_line_is_ended_before_appending() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("torn.ndjson"), b"{\"id\":\"0190").unwrap();
    let (layer, guard) = builder()
        .service("torn")
        .output(Output::file(FileConfig::new(dir.path())))
        .build()
        .unwrap();
    with_layer(&layer, || tracing::info!("whole"));
    assert!(guard.shutdown(Duration::MAX).complete);
    let text = std::fs::read_to_string(dir.path().join("torn.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0], "{\"id\":\"0190");
    assert_eq!(crate::common::parse_lines(lines[1])[0].message, "whole");
}

/// A synchronous output has written the record when the call returns.
#[test]
fn synchronous_mode_writes_before_the_call_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (layer, guard) = builder()
        .service("sync")
        .output(Output::file(FileConfig::new(dir.path())).synchronous())
        .build()
        .unwrap();
    with_layer(&layer, || {
        for i in 0..50u64 {
            tracing::info!(seq = i, "written through");
            let on_disk = read_all(dir.path(), "sync");
            assert_eq!(on_disk.len() as u64, i + 1);
        }
    });
    assert!(guard.shutdown(Duration::MAX).complete);
}
