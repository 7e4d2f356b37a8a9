//! Deployment: the systemd unit passes `systemd-analyze verify` (and its sandbox scores
//! well in `systemd-analyze security`), the shutdown deadline closes a connection whose
//! client never finishes, and `/metrics` exports every series once with the build info and
//! process gauges.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{client, metrics_text, spawn_with};

/// The unit with `ExecStart` pointing at the binary under test (`verify` checks that the
/// program exists and is executable).
fn unit_under_test(dir: &Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/faultline.service"),
    )
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/faultline serve"));
    let unit = unit.replace("/usr/local/bin/faultline", env!("CARGO_BIN_EXE_faultline"));
    let path = dir.join("faultline.service");
    std::fs::write(&path, unit).unwrap();
    path
}

#[test]
fn the_systemd_unit_verifies_and_is_sandboxed() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_under_test(dir.path());
    let text = std::fs::read_to_string(&unit).unwrap();
    for option in [
        "DynamicUser=yes",
        "StateDirectory=faultline",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "SystemCallFilter=@system-service",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "MemoryDenyWriteExecute=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(text.contains(option), "{option} missing");
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {stderr}");
    assert!(
        !stderr.contains("faultline.service"),
        "no warning about the unit: {stderr}"
    );
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let exposure: f64 = text
        .split("Overall exposure level for faultline.service:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in {text}"));
    assert!(exposure <= 2.0, "exposure {exposure} (10 is unprotected)");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shutdown_deadline_closes_a_body_that_never_ends() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_with(
        dir.path(),
        None,
        true,
        &[
            ("FAULTLINE_SHUTDOWN_TIMEOUT", "1s"),
            ("FAULTLINE_LIMITS_REQUEST_TIMEOUT", "120s"),
        ],
    );
    let addr = p.base.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /logs/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n[",
        crate::process::KEY
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    p.sigterm();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = Vec::new();
    // EOF or a reset once the deadline closes the connection; a timeout fails the test.
    let read = stream.read_to_end(&mut buf);
    let closed_after = signalled.elapsed();
    assert!(
        read.is_ok()
            || read
                .as_ref()
                .is_err_and(|e| e.kind() != std::io::ErrorKind::WouldBlock),
        "{read:?}"
    );
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(10),
        "closed {closed_after:?} after SIGTERM with shutdown_timeout = 1s"
    );
    let status = p.wait_exit();
    assert!(status.success(), "{status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_export_each_series_once_with_build_and_process_info() {
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_with(dir.path(), None, true, &[]);
    let c = client();
    let batch = serde_json::json!([crate::process::now_record("api", "error", "one")]);
    crate::process::post(&c, &p.base, crate::process::KEY, &batch)
        .await
        .unwrap();
    let text = metrics_text(&c, &p.base).await;
    let mut series = HashSet::new();
    let mut names_bare = HashSet::new();
    let mut names_labelled = HashSet::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let id = line.rsplit_once(' ').unwrap().0;
        assert!(series.insert(id.to_owned()), "{id} exported twice");
        match id.split_once('{') {
            Some((name, _)) => names_labelled.insert(name.to_owned()),
            None => names_bare.insert(id.to_owned()),
        };
    }
    let both: Vec<_> = names_bare.intersection(&names_labelled).collect();
    assert!(both.is_empty(), "with and without labels: {both:?}");
    assert!(
        text.contains(&format!(
            "faultline_build_info{{version=\"{}\",target=\"x86_64-linux-",
            env!("CARGO_PKG_VERSION")
        )),
        "{text}"
    );
    assert!(text.contains("faultline_sink_queue_depth{sink=\"file\"}"));
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing"))
            .parse()
            .unwrap()
    };
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_open_fds") >= 3.0);
    assert!(value("process_threads") >= 2.0);
    let started = value("process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - started).abs() < 120.0,
        "started {started}, now {now}"
    );
    assert!(p.terminate().success());
}
