//! The end of a process: a panic under `panic = "abort"` semantics, `exit`, and `init`'s
//! process-wide pieces. Each runs in a child process (this test binary, re-run on one test
//! with `FAULTLINE_LOGGER_CHILD` set), since they end the process or set globals.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use faultline_logger::{FileConfig, InitError, Output, builder};
use faultline_schema::Level;

use crate::common::read_all;

const CHILD_ENV: &str = "FAULTLINE_LOGGER_CHILD";
const PANIC_RECORDS: u64 = 200_000;
const EXIT_RECORDS: u64 = 100_000;

fn run_child(mode: &str, dir: &Path) -> std::process::ExitStatus {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "panic::child_entry",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, format!("{mode}:{}", dir.display()))
        .env("RUST_BACKTRACE", "0")
        .status()
        .unwrap()
}

/// Not a test on its own: the body of the child processes below. Returns at once unless
/// `FAULTLINE_LOGGER_CHILD` is set.
#[test]
fn child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, dir) = spec.split_once(':').unwrap();
    let output = Output::file(FileConfig::new(dir)).queue_capacity(1 << 18);
    match mode {
        "panic" => {
            // Stands in for `panic = "abort"`: the process dies as soon as the hooks ran,
            // and no destructor (no guard) runs.
            std::panic::set_hook(Box::new(|_| std::process::abort()));
            let _guard = builder().service("child").output(output).init().unwrap();
            for i in 0..PANIC_RECORDS {
                tracing::info!(seq = i, "before the panic");
            }
            panic!("boom");
        }
        "exit" => {
            let _guard = builder().service("child").output(output).init().unwrap();
            for i in 0..EXIT_RECORDS {
                tracing::info!(seq = i, "before exit");
            }
            faultline_logger::exit(3);
        }
        "init" => {
            let guard = builder().service("child").output(output).init().unwrap();
            let again = builder().service("child").build().map(|_| ());
            assert!(again.is_ok(), "building is always possible");
            let err = builder()
                .service("child")
                .output(Output::stderr())
                .init()
                .unwrap_err();
            assert!(matches!(err, InitError::AlreadyInitialized));
            tracing::info!(via = "tracing", "hello");
            log::warn!(target: "old_crate", "from log");
            assert!(faultline_logger::global().is_some());
            let report = faultline_logger::shutdown(Duration::MAX).unwrap();
            assert!(report.complete);
            assert_eq!(report.written, 2);
            drop(guard);
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// The panic test: every record logged before the panic is on disk, though the
/// process aborts and no destructor runs, and the panic itself is a `CRITICAL` record.
#[test]
fn records_logged_before_a_panic_are_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let status = run_child("panic", dir.path());
    assert_eq!(status.signal(), Some(6), "the child aborts: {status:?}");
    let records = read_all(dir.path(), "child");
    let seqs: Vec<u64> = records
        .iter()
        .filter_map(|r| r.meta.get("seq").and_then(|v| v.as_u64()))
        .collect();
    assert_eq!(seqs, (0..PANIC_RECORDS).collect::<Vec<_>>());
    let panic = records.last().unwrap();
    assert_eq!(
        (panic.level, panic.event.as_str()),
        (Level::Critical, "panic")
    );
    assert_eq!(panic.message, "boom");
    assert!(
        panic.meta["location"]
            .as_str()
            .unwrap()
            .contains("panic.rs")
    );
}

/// `faultline_logger::exit` shuts down before `process::exit`, which runs no destructors.
#[test]
fn exit_writes_everything_before_the_process_ends() {
    let dir = tempfile::tempdir().unwrap();
    let status = run_child("exit", dir.path());
    assert_eq!(status.code(), Some(3));
    assert_eq!(read_all(dir.path(), "child").len() as u64, EXIT_RECORDS);
}

/// `init` sets the global subscriber and the `log` bridge once.
#[test]
fn init_installs_the_subscriber_and_the_log_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let status = run_child("init", dir.path());
    assert!(status.success(), "{status:?}");
    let records = read_all(dir.path(), "child");
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].meta["via"], "tracing");
    assert_eq!(records[1].event, "old_crate");
    assert_eq!(records[1].level, Level::Warning);
}
