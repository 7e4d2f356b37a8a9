//! `examples/axum_service.rs` as users run it: a request with a `traceparent` is logged with
//! its trace, and SIGTERM ends the process only after everything logged is written.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use faultline_schema::{Level, Record};

use crate::common::{block_on, example_bin};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[test]
fn the_axum_example_logs_requests_with_their_trace_and_flushes_on_sigterm() {
    let mut child = Command::new(example_bin("axum_service"))
        .env("LISTEN", "127.0.0.1:0")
        .env_remove("FAULTLINE_LOG_DIR")
        .env_remove("FAULTLINE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = Record::from_json(lines.next().unwrap().unwrap().as_bytes()).unwrap();
    assert_eq!(first.message, "listening");
    let addr = first.meta["addr"].as_str().unwrap().to_owned();

    let (ok, failed, traceparent) = block_on(async {
        let client = reqwest::Client::new();
        let ok = client
            .get(format!("http://{addr}/orders/42"))
            .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
            .send()
            .await
            .unwrap();
        let traceparent = ok.headers()["traceparent"].to_str().unwrap().to_owned();
        let failed = client
            .get(format!("http://{addr}/orders/0"))
            .send()
            .await
            .unwrap();
        (ok.status().as_u16(), failed.status().as_u16(), traceparent)
    });
    assert_eq!((ok, failed), (200, 500));
    assert!(traceparent.starts_with(&format!("00-{TRACE}-")));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let records: Vec<Record> = lines
        .map(|l| Record::from_json(l.unwrap().as_bytes()).unwrap())
        .collect();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");

    let served = records
        .iter()
        .find(|r| r.event == "http_request" && r.meta.get("status").is_some_and(|s| s == 200))
        .expect("the request record");
    assert_eq!(served.meta["trace_id"], TRACE);
    assert_eq!(served.meta["path"], "/orders/42");
    assert!(
        records
            .iter()
            .any(|r| r.level == Level::Error && r.meta.get("status").is_some_and(|s| s == 500))
    );
    // Logged after SIGTERM, just before the guard drops: the last record of the process, and
    // still written. Records of different threads go through different rings, so the output
    // may write it before a request thread's earlier record: "last" is by time, not by line.
    let stopped = records
        .iter()
        .find(|r| r.message == "stopped")
        .expect("the record logged at shutdown is written");
    assert!(
        records.iter().all(|r| r.ts <= stopped.ts),
        "a record is newer than the shutdown record: {records:?}"
    );
}
