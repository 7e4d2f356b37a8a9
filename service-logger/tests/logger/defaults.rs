//! The defaults a service gets from `init()`: a guard whose drop is bounded (5 s unless set)
//! and says what it left on standard error, and `RUST_LOG` filtering in front of each
//! output's own levels. Each case runs in a child process (this test binary, re-run on one
//! test with `FAULTLINE_DEFAULTS_CHILD` set), since `init` sets process-wide globals and the
//! point is how the process ends.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output as ProcessOutput, Stdio};
use std::time::{Duration, Instant};

use faultline_logger::{FileConfig, HttpConfig, Output, builder};

use crate::common::{free_port, read_all};

const CHILD_ENV: &str = "FAULTLINE_DEFAULTS_CHILD";
const RECORDS: u64 = 500;

fn run_child(mode: &str, arg: &str, rust_log: Option<&str>) -> (ProcessOutput, Duration) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "defaults::child_entry",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(CHILD_ENV, format!("{mode}|{arg}"))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    match rust_log {
        Some(v) => cmd.env("RUST_LOG", v),
        None => cmd.env_remove("RUST_LOG"),
    };
    let started = Instant::now();
    let out = cmd.output().unwrap();
    (out, started.elapsed())
}

/// Not a test on its own: the body of the child processes below. Returns at once unless
/// `FAULTLINE_DEFAULTS_CHILD` is set.
#[test]
fn child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mode, arg) = spec.split_once('|').unwrap();
    match mode {
        // Logs to an endpoint that never answers, then returns from "main".
        "drop" | "drop_1s" => {
            let mut b = builder()
                .service("child")
                .output(Output::http(HttpConfig::new(arg, "sk_child")));
            if mode == "drop_1s" {
                b = b.shutdown_timeout(Duration::from_secs(1));
            }
            let _guard = b.init().unwrap();
            for i in 0..RECORDS {
                tracing::error!(seq = i, "cannot be delivered");
            }
        }
        "levels" => {
            let _guard = builder()
                .service("child")
                .output(Output::file(FileConfig::new(format!("{arg}/all"))))
                .output(
                    Output::file(FileConfig::new(format!("{arg}/errors")))
                        .min_level(tracing::Level::ERROR),
                )
                .init()
                .unwrap();
            tracing::trace!(target: "app::db", "tracing trace app::db");
            tracing::debug!(target: "app::db", "tracing debug app::db");
            tracing::info!(target: "app::db", "tracing info app::db");
            tracing::debug!(target: "other", "tracing debug other");
            tracing::info!(target: "other", "tracing info other");
            tracing::warn!(target: "other", "tracing warn other");
            tracing::error!(target: "other", "tracing error other");
            log::debug!(target: "app::db", "log debug app::db");
            log::debug!(target: "other", "log debug other");
            log::info!(target: "other", "log info other");
            log::error!(target: "app::db", "log error app::db");
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// A TCP port that accepts connections and never answers: the worst endpoint, where every
/// request waits for its timeout.
fn black_hole() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    (listener, url)
}

fn stderr_of(out: &ProcessOutput) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn dropping_the_guard_gives_up_after_five_seconds_and_says_what_it_left() {
    let (hole, url) = black_hole();
    // Accept (and hold) whatever the child connects, so its requests hang rather than fail.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in hole.incoming() {
            held.push(c);
        }
    });
    let (out, took) = run_child("drop", &url, None);
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    // The default bound is 5 s; the child also starts up and logs.
    assert!(
        took >= Duration::from_millis(4500) && took < Duration::from_secs(9),
        "took {took:?}\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with("faultline-logger: shutdown gave up after 5s: output http left "))
        .unwrap_or_else(|| panic!("no report on stderr:\n{stderr}"));
    let left: u64 = line
        .trim_start_matches("faultline-logger: shutdown gave up after 5s: output http left ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(left, RECORDS, "{line}");
}

#[test]
fn the_drop_bound_is_configurable() {
    // Nothing listens there: connections are refused, and the output keeps retrying.
    let url = format!("http://127.0.0.1:{}", free_port());
    let (out, took) = run_child("drop_1s", &url, None);
    let stderr = stderr_of(&out);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    assert!(took < Duration::from_secs(4), "took {took:?}\n{stderr}");
    assert!(
        stderr.contains(
            "faultline-logger: shutdown gave up after 1s: output http left 500 records undelivered"
        ),
        "{stderr}"
    );
}

fn messages(dir: &Path) -> Vec<String> {
    let mut m: Vec<String> = read_all(dir, "child")
        .into_iter()
        .map(|r| r.message)
        .collect();
    m.sort();
    m
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn init_takes_info_and_up_when_rust_log_is_unset() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run_child("levels", dir.path().to_str().unwrap(), None);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        messages(&dir.path().join("all")),
        sorted(&[
            "tracing info app::db",
            "tracing info other",
            "tracing warn other",
            "tracing error other",
            "log info other",
            "log error app::db",
        ])
    );
    assert_eq!(
        messages(&dir.path().join("errors")),
        sorted(&["tracing error other", "log error app::db"])
    );
}

#[test]
fn init_honours_rust_log_and_each_output_keeps_its_level() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run_child(
        "levels",
        dir.path().to_str().unwrap(),
        Some("warn,app::db=debug"),
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        messages(&dir.path().join("all")),
        sorted(&[
            "tracing debug app::db",
            "tracing info app::db",
            "tracing warn other",
            "tracing error other",
            "log debug app::db",
            "log error app::db",
        ])
    );
    // RUST_LOG=trace does not widen an output that takes only errors.
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run_child("levels", dir.path().to_str().unwrap(), Some("trace"));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(messages(&dir.path().join("all")).len(), 11);
    assert_eq!(
        messages(&dir.path().join("errors")),
        sorted(&["tracing error other", "log error app::db"])
    );
}
