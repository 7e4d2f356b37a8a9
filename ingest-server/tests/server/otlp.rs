//! `POST /v1/logs` (OTLP/HTTP logs) through the router: protobuf bodies written here with a
//! protobuf encoder of the test's own (so a wrong field number in the server's messages
//! shows), OTLP/JSON bodies in the specification's example shape, partial success, and bad
//! input with the statuses and `google.rpc.Status` bodies exporters act on.

use std::io::Write;

use axum::body::Body;
use axum::http::Request;
use faultline_server::config::RateLimit;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::{SECRET, TestServer, server, server_with};
use crate::router::gzip;

/// A protobuf message under construction.
#[derive(Default)]
pub struct Pb(pub Vec<u8>);

impl Pb {
    pub fn new() -> Pb {
        Pb::default()
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u64, wire_type: u64) {
        self.varint(field << 3 | wire_type);
    }

    pub fn bytes(mut self, field: u64, b: &[u8]) -> Pb {
        self.tag(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    pub fn string(self, field: u64, s: &str) -> Pb {
        self.bytes(field, s.as_bytes())
    }

    pub fn msg(self, field: u64, m: Pb) -> Pb {
        self.bytes(field, &m.0)
    }

    pub fn int(mut self, field: u64, v: i64) -> Pb {
        self.tag(field, 0);
        self.varint(v as u64);
        self
    }

    pub fn fixed64(mut self, field: u64, v: u64) -> Pb {
        self.tag(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
}

/// `KeyValue { key, value: AnyValue { string_value } }`
pub fn kv_str(key: &str, value: &str) -> Pb {
    Pb::new().string(1, key).msg(2, Pb::new().string(1, value))
}

/// `KeyValue { key, value: AnyValue { int_value } }`
pub fn kv_int(key: &str, value: i64) -> Pb {
    Pb::new().string(1, key).msg(2, Pb::new().int(3, value))
}

/// `ExportLogsServiceRequest` with one resource (`service.name`) and one scope.
pub fn export_request(service: &str, scope: &str, records: Vec<Pb>) -> Vec<u8> {
    let resource = Pb::new()
        .msg(1, kv_str("service.name", service))
        .msg(1, kv_str("service.version", "1.4.2"));
    let mut scope_logs = Pb::new().msg(1, Pb::new().string(1, scope));
    for r in records {
        scope_logs = scope_logs.msg(2, r);
    }
    Pb::new()
        .msg(1, Pb::new().msg(1, resource).msg(2, scope_logs))
        .0
}

/// A `LogRecord` with a time, a severity and a string body.
pub fn log_record(severity: i64, text: &str, body: &str) -> Pb {
    Pb::new()
        .fixed64(1, 1_782_908_096_789_000_000) // 2026-07-01T12:14:56.789Z
        .int(2, severity)
        .string(3, text)
        .msg(5, Pb::new().string(1, body))
}

/// Reads the fields of a protobuf message: (field number, varint or bytes).
fn fields(mut b: &[u8]) -> Vec<(u64, Result<u64, Vec<u8>>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0;
        for shift in (0..64).step_by(7) {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let tag = varint(&mut b);
        match tag & 7 {
            0 => out.push((tag >> 3, Ok(varint(&mut b)))),
            2 => {
                let len = varint(&mut b) as usize;
                out.push((tag >> 3, Err(b[..len].to_vec())));
                b = &b[len..];
            }
            other => panic!("wire type {other} not expected in a response"),
        }
    }
    out
}

fn string_field(fields: &[(u64, Result<u64, Vec<u8>>)], n: u64) -> String {
    fields
        .iter()
        .find_map(|(f, v)| match v {
            Err(b) if *f == n => Some(String::from_utf8(b.clone()).unwrap()),
            _ => None,
        })
        .unwrap_or_default()
}

struct Answer {
    status: u16,
    content_type: String,
    retry_after: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&self.body));
        })
    }

    /// A protobuf `google.rpc.Status`: (code, message).
    fn status_pb(&self) -> (u64, String) {
        assert_eq!(self.content_type, "application/x-protobuf");
        let f = fields(&self.body);
        let code = f
            .iter()
            .find_map(|(n, v)| (*n == 1).then(|| *v.as_ref().unwrap()))
            .unwrap_or(0);
        (code, string_field(&f, 2))
    }
}

async fn post(
    s: &TestServer,
    content_type: &str,
    extra: &[(&str, &str)],
    body: impl Into<Body>,
) -> Answer {
    let mut req = Request::post("/v1/logs").header("content-type", content_type);
    if !extra.iter().any(|(k, _)| *k == "authorization") {
        req = req.header("authorization", format!("Bearer {SECRET}"));
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let response = faultline_server::app(s.state.clone())
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let status = response.status().as_u16();
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        retry_after,
        body,
    }
}

#[tokio::test]
async fn protobuf_log_records_become_records() {
    let s = server().await;
    let trace = [
        0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6,
        0x0c,
    ];
    let error = log_record(17, "ERROR", "card declined")
        .msg(6, kv_str("event", "payment_failed"))
        .msg(6, kv_int("attempt", 3))
        .msg(6, kv_str("exception.type", "CardError"))
        .msg(6, kv_str("user", "u_3f2a9c0d1b7e4a55"))
        .bytes(9, &trace)
        .bytes(10, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let structured = Pb::new()
        .fixed64(11, 1_782_908_100_000_000_000) // observed time only
        .int(2, 9)
        .msg(5, Pb::new().msg(6, Pb::new().msg(1, kv_int("queued", 12))));
    let body = export_request("API", "app.payments", vec![error, structured]);
    let a = post(&s, "application/x-protobuf", &[], gzip(&body)).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.content_type, "application/x-protobuf");
    assert!(
        a.body.is_empty(),
        "no partial_success when nothing was rejected"
    );

    let records = s.recent("service=api").await;
    assert_eq!(records.len(), 2, "{records:?}");
    let err = records.iter().find(|r| r["level"] == "ERROR").unwrap();
    assert_eq!(err["service"], "api", "service.name lowercased");
    assert_eq!(err["event"], "payment_failed", "the event attribute");
    assert_eq!(err["message"], "card declined");
    assert_eq!(err["ts"], "2026-07-01T12:14:56.789Z");
    assert_eq!(err["meta"]["trace_id"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(err["meta"]["span_id"], "0102030405060708");
    assert_eq!(err["meta"]["attempt"], 3);
    assert_eq!(err["meta"]["error_type"], "CardError");
    assert_eq!(err["meta"]["release"], "1.4.2");
    assert!(err["meta"].get("event").is_none(), "moved to event");
    let user = err["meta"]["user"].as_str().unwrap();
    assert!(
        user.starts_with("u_") && user != "u_3f2a9c0d1b7e4a55",
        "re-keyed: {user}"
    );
    let info = records.iter().find(|r| r["level"] == "INFO").unwrap();
    assert_eq!(
        info["event"], "app.payments",
        "the scope name when nothing else names it"
    );
    assert_eq!(
        info["message"], r#"{"queued":12}"#,
        "a map body as JSON text"
    );
    assert_eq!(info["ts"], "2026-07-01T12:15:00.000Z", "observed time");
}

/// The shape of the example in the OTLP specification's `examples/logs.json`.
fn canonical_json(trace_id: &str) -> Value {
    json!({
      "resourceLogs": [{
        "resource": {
          "attributes": [{ "key": "service.name", "value": { "stringValue": "my.service" } }]
        },
        "scopeLogs": [{
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [{ "key": "my.scope.attribute", "value": { "stringValue": "some scope attribute" } }]
          },
          "logRecords": [{
            "timeUnixNano": "1544712660300000000",
            "observedTimeUnixNano": "1544712660300000000",
            "severityNumber": 10,
            "severityText": "Information",
            "traceId": trace_id,
            "spanId": "eee19b7ec3c1b174",
            "body": { "stringValue": "Example log record" },
            "attributes": [
              { "key": "string.attribute", "value": { "stringValue": "some string" } },
              { "key": "boolean.attribute", "value": { "boolValue": true } },
              { "key": "int.attribute", "value": { "intValue": "10" } },
              { "key": "double.attribute", "value": { "doubleValue": 637.704 } },
              { "key": "array.attribute", "value": { "arrayValue": { "values": [
                  { "stringValue": "many" }, { "stringValue": "values" } ] } } },
              { "key": "map.attribute", "value": { "kvlistValue": { "values": [
                  { "key": "some.map.key", "value": { "stringValue": "some value" } } ] } } }
            ]
          }]
        }]
      }]
    })
}

fn any_service(c: &mut faultline_server::config::Config) {
    c.keys[0].services = vec!["*".into()];
}

#[tokio::test]
async fn otlp_json_in_the_specification_shape() {
    let s = server_with(any_service).await;
    let body = canonical_json("5b8efff798038103d269b633813fc60c").to_string();
    let a = post(&s, "application/json", &[], body).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.content_type, "application/json");
    assert_eq!(a.json(), json!({}));

    let records = s.recent("service=my.service").await;
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["level"], "INFO");
    assert_eq!(r["event"], "my.library");
    assert_eq!(r["message"], "Example log record");
    assert_eq!(r["ts"], "2018-12-13T14:51:00.300Z");
    assert_eq!(r["meta"]["trace_id"], "5b8efff798038103d269b633813fc60c");
    assert_eq!(r["meta"]["span_id"], "eee19b7ec3c1b174");
    assert_eq!(r["meta"]["int.attribute"], 10);
    assert_eq!(r["meta"]["boolean.attribute"], true);
    assert_eq!(r["meta"]["double.attribute"], 637.704);
    assert_eq!(r["meta"]["array.attribute"], json!(["many", "values"]));
    assert_eq!(
        r["meta"]["map.attribute"],
        json!({"some.map.key": "some value"})
    );
}

#[tokio::test]
async fn some_records_rejected_is_a_partial_success() {
    let s = server().await;
    let records = vec![
        log_record(9, "INFO", "fine"),
        log_record(99, "", "severity out of range"),
        log_record(13, "WARN", "short trace id").bytes(9, &[1, 2, 3]),
        log_record(17, "ERROR", "fine too"),
    ];
    let body = export_request("worker", "jobs", records);
    let a = post(&s, "application/x-protobuf", &[], body).await;
    assert_eq!(a.status, 200);
    let response = fields(&a.body);
    let partial = match &response[..] {
        [(1, Err(partial))] => fields(partial),
        other => panic!("expected partial_success only: {other:?}"),
    };
    let rejected = partial
        .iter()
        .find_map(|(n, v)| (*n == 1).then(|| *v.as_ref().unwrap()));
    assert_eq!(rejected, Some(2));
    let message = string_field(&partial, 2);
    assert!(
        message.contains("2 of 4")
            && message.contains("record 1: level: severity_number 99")
            && message.contains("record 2: trace_id: 3 bytes, must be 16"),
        "{message}"
    );
    assert_eq!(s.recent("service=worker").await.len(), 2);

    // The same in JSON: rejectedLogRecords is an int64, a string in OTLP/JSON.
    let mut body = canonical_json("5b8efff798038103d269b633813fc60c");
    body["resourceLogs"][0]["resource"]["attributes"][0]["value"]["stringValue"] = json!("worker");
    let logs = &mut body["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
    let mut bad = logs[0].clone();
    bad["attributes"] = json!([{ "key": "user", "value": { "intValue": 5 } }]);
    logs.as_array_mut().unwrap().push(bad);
    let a = post(&s, "application/json; charset=utf-8", &[], body.to_string()).await;
    assert_eq!(a.status, 200);
    let p = &a.json()["partialSuccess"];
    assert_eq!(p["rejectedLogRecords"], "1");
    assert!(
        p["errorMessage"]
            .as_str()
            .unwrap()
            .contains("record 1: meta.user: must be a string"),
        "{p}"
    );
}

#[tokio::test]
async fn bad_input_gets_the_status_and_a_google_rpc_status_body() {
    let s = server().await;
    // Not protobuf at all: 400, INVALID_ARGUMENT, in protobuf.
    let a = post(&s, "application/x-protobuf", &[], vec![0xff, 0xff, 0xff]).await;
    assert_eq!(a.status, 400);
    let (code, message) = a.status_pb();
    assert_eq!(code, 3);
    assert!(
        message.contains("not a protobuf ExportLogsServiceRequest"),
        "{message}"
    );

    // A base64 trace id in JSON: 400 saying ids are hex, in JSON.
    let a = post(
        &s,
        "application/json",
        &[],
        canonical_json("W47/95gDgQPSabYzgT/GDA==").to_string(),
    )
    .await;
    assert_eq!(a.status, 400);
    let status = a.json();
    assert_eq!(status["code"], 3);
    assert!(
        status["message"].as_str().unwrap().contains("hex"),
        "{status}"
    );

    // No service.name on the resource: nothing could be taken, so 400 with the fix.
    let body = Pb::new()
        .msg(
            1,
            Pb::new().msg(2, Pb::new().msg(2, log_record(9, "", "x"))),
        )
        .0;
    let a = post(&s, "application/x-protobuf", &[], body).await;
    assert_eq!(a.status, 400);
    let (_, message) = a.status_pb();
    assert!(message.contains("OTEL_SERVICE_NAME"), "{message}");

    // A service.name that cannot be a service name says why.
    let body = export_request("日本", "s", vec![log_record(9, "", "x")]);
    let a = post(&s, "application/x-protobuf", &[], body).await;
    assert_eq!(a.status, 400);
    assert!(
        a.status_pb().1.contains("no letters or digits"),
        "{}",
        a.status_pb().1
    );

    // Content type, key, and a service the key may not write.
    let a = post(&s, "text/plain", &[], "hello").await;
    assert_eq!((a.status, a.json()["code"].as_i64()), (415, Some(3)));
    let a = post(
        &s,
        "application/json",
        &[("authorization", "Bearer nope")],
        "{}",
    )
    .await;
    assert_eq!((a.status, a.json()["code"].as_i64()), (401, Some(16)));
    let body = export_request("billing", "s", vec![log_record(9, "", "x")]);
    let a = post(&s, "application/x-protobuf", &[], body).await;
    assert_eq!((a.status, a.status_pb().0), (403, 7));

    // A gzip bomb is cut off at the inflation limit.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![0u8; 64 * 1024 * 1024]).unwrap();
    let bomb = e.finish().unwrap();
    let a = post(
        &s,
        "application/x-protobuf",
        &[("content-encoding", "gzip")],
        bomb,
    )
    .await;
    assert_eq!(a.status, 413);
    assert!(
        a.status_pb().1.contains("inflates to more than"),
        "{}",
        a.status_pb().1
    );

    assert!(s.recent("").await.is_empty(), "nothing was stored");
}

/// A server taking 3 log records a request, and a burst of 3 refilled at 0.5 a second.
async fn three_records_a_request_and_a_burst() -> TestServer {
    server_with(|c| {
        c.limits.max_batch_records = 3;
        c.limits.secret_key_rate = RateLimit {
            records_per_second: 0.5,
            burst: 3.0,
        };
    })
    .await
}

#[tokio::test]
async fn rate_limits_say_when_to_retry() {
    let s = three_records_a_request_and_a_burst().await;
    let three = export_request("api", "s", (0..3).map(|_| log_record(9, "", "x")).collect());
    let a = post(&s, "application/x-protobuf", &[], three.clone()).await;
    assert_eq!(a.status, 200);
    let a = post(&s, "application/x-protobuf", &[], three).await;
    assert_eq!(a.status, 429, "the burst is spent");
    assert_eq!(a.status_pb().0, 8, "RESOURCE_EXHAUSTED");
    let retry: u64 = a.retry_after.as_deref().unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After tells the exporter when to retry");
}

/// Issue 21: a request the server refuses still made it work; its key pays for what was
/// counted (here 4 log records, past a burst of 3), so the next request waits.
#[tokio::test]
async fn a_refused_request_is_charged_to_its_key() {
    let s = three_records_a_request_and_a_burst().await;
    let four = export_request("api", "s", (0..4).map(|_| log_record(9, "", "x")).collect());
    let a = post(&s, "application/x-protobuf", &[], four).await;
    assert_eq!(a.status, 413);
    assert!(
        a.status_pb().1.contains("4 log records"),
        "{}",
        a.status_pb().1
    );
    let one = export_request("api", "s", vec![log_record(9, "", "x")]);
    let a = post(&s, "application/x-protobuf", &[], one).await;
    assert_eq!(a.status, 429, "the refused request was charged");
    let retry: u64 = a.retry_after.as_deref().unwrap().parse().unwrap();
    assert!(
        retry >= 3,
        "one token of debt and one to pay, at 0.5 a second: {retry}"
    );
}

/// The OpenTelemetry Python SDK (`opentelemetry-sdk` and
/// `opentelemetry-exporter-otlp-proto-http`, installed by `cargo xtask provision`) logging
/// through Python `logging` to the real binary, gzip-compressed protobuf; then OTLP/JSON in
/// the specification's shape to the same server.
#[tokio::test(flavor = "multi_thread")]
async fn the_opentelemetry_python_sdk_exports_to_the_real_server() {
    use crate::common::ADMIN;
    use crate::process::{KEY, client, get, spawn_with};

    let dir = tempfile::tempdir().unwrap();
    let proc = spawn_with(dir.path(), None, true, &[]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/server/python/otel_logs.py"
    );
    let base = proc.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(&base)
            .env("FAULTLINE_KEY", KEY)
            .output()
            .expect("python3 runs (cargo xtask provision installs the OpenTelemetry SDK)")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SDK's exports failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<&str> = stdout.split_whitespace().collect();
    let [trace_id, span_id] = ids[..] else {
        panic!("expected the trace and span ids: {stdout}");
    };

    let c = client();
    let (status, body) = get(&c, &proc.base, ADMIN, "/logs/recent?service=checkout").await;
    assert_eq!(status, 200, "{body}");
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{body}");
    let error = records.iter().find(|r| r["level"] == "ERROR").unwrap();
    assert_eq!(
        error["service"], "checkout",
        "service.name Checkout, normalized"
    );
    assert_eq!(error["event"], "payment_failed", "the event attribute");
    assert_eq!(error["message"], "card declined for order o-17");
    assert_eq!(
        error["meta"]["trace_id"], trace_id,
        "the active span's trace"
    );
    assert_eq!(error["meta"]["span_id"], span_id);
    assert_eq!(error["meta"]["order_id"], "o-17");
    assert_eq!(error["meta"]["amount_cents"], 1299);
    assert_eq!(error["meta"]["release"], "2.0.1");
    assert_eq!(error["meta"]["environment"], "test");
    let info = records.iter().find(|r| r["level"] == "INFO").unwrap();
    assert_eq!(info["event"], "checkout.payments", "the logger's name");
    assert_eq!(info["meta"]["attempt"], 2);
    assert!(
        info["meta"].get("trace_id").is_none(),
        "logged outside the span"
    );
    assert!(records.iter().any(|r| r["level"] == "WARNING"));

    let r = c
        .post(format!("{}/v1/logs", proc.base))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(canonical_json("5b8efff798038103d269b633813fc60c").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    let (_, body) = get(&c, &proc.base, ADMIN, "/logs/recent?service=my.service").await;
    assert_eq!(body["records"][0]["meta"]["span_id"], "eee19b7ec3c1b174");
    assert!(proc.terminate().success());
}
