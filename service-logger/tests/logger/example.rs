//! `examples/axum_service.rs` as users run it: the `CorrelationLayer` in a real axum
//! service (a request's `traceparent` and `x-request-id` in, the span's fields on its
//! records, the headers out), and SIGTERM ending the process only after everything logged
//! is written.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use faultline_schema::{Level, Record};

use crate::common::{block_on, example_bin};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[test]
fn the_axum_example_logs_requests_with_their_trace_and_flushes_on_sigterm() {
    let mut child = Command::new(example_bin("axum_service"))
        .env("LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info,axum_service=debug")
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

    let header = |r: &reqwest::Response, name: &str| r.headers()[name].to_str().unwrap().to_owned();
    let (ok, failed, ok_headers, failed_headers) = block_on(async {
        let client = reqwest::Client::new();
        let ok = client
            .get(format!("http://{addr}/orders/42"))
            .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
            .header("x-request-id", "req-abc-123")
            .send()
            .await
            .unwrap();
        let failed = client
            .get(format!("http://{addr}/orders/0"))
            .header("traceparent", "00-not-a-valid-header-01")
            .send()
            .await
            .unwrap();
        (
            ok.status().as_u16(),
            failed.status().as_u16(),
            (header(&ok, "traceparent"), header(&ok, "x-request-id")),
            (
                header(&failed, "traceparent"),
                header(&failed, "x-request-id"),
            ),
        )
    });
    assert_eq!((ok, failed), (200, 500));
    // Out: the caller's trace continued with a new span id, the caller's request id echoed.
    let (traceparent, request_id) = ok_headers;
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", TRACE, "01"));
    assert_ne!(parts[2], PARENT, "a new span id for this service's span");
    let our_span = parts[2].to_owned();
    assert_eq!(request_id, "req-abc-123");
    // A malformed traceparent and no request id: a new trace and a new (UUID) request id.
    let (new_traceparent, new_request_id) = failed_headers;
    let new_trace = new_traceparent.split('-').nth(1).unwrap().to_owned();
    assert_eq!(new_trace.len(), 32);
    assert_ne!(new_trace, TRACE);
    assert_eq!(new_request_id.len(), 36, "{new_request_id}");

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
    // The span's fields on the records: the request record and the handler's own.
    assert_eq!(served.meta["trace_id"], TRACE);
    assert_eq!(served.meta["span_id"], our_span.as_str());
    assert_eq!(served.meta["correlation_id"], "req-abc-123");
    assert_eq!(served.meta["path"], "/orders/42");
    let loading = records
        .iter()
        .find(|r| r.message == "loading order")
        .expect("the handler's record");
    assert_eq!(loading.meta["correlation_id"], "req-abc-123");
    assert_eq!(loading.meta["span_id"], our_span.as_str());
    let failed = records
        .iter()
        .find(|r| r.level == Level::Error && r.meta.get("status").is_some_and(|s| s == 500))
        .expect("the failed request's record");
    assert_eq!(failed.meta["trace_id"], new_trace.as_str());
    assert_eq!(failed.meta["correlation_id"], new_request_id.as_str());
    let handler_error = records
        .iter()
        .find(|r| r.message.starts_with("order 0 does not exist"))
        .expect("the handler's error record");
    assert_eq!(
        handler_error.meta["correlation_id"],
        new_request_id.as_str()
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
