//! Hostile input against the real binary: malformed and lying requests, bombs, floods and
//! slow clients. For each: the documented status, a clear JSON error, good records of the
//! same batch kept, the server alive afterwards, and its memory bounded (`VmHWM` from
//! `/proc/<pid>/status`).

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::ADMIN;
use crate::process::{KEY, Proc, client, now_record, spawn_with};

/// The request deadline the servers here run with: slow clients are cut off after it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The most resident memory a server may ever reach in these tests. Bodies are capped at
/// 5 MB as sent and 20 MB inflated; a server holding a 100 MB body or a bomb's output
/// would pass it.
const MAX_HWM_KB: u64 = 192 * 1024;

struct Hostile {
    proc: Proc,
    _dir: TempDir,
    c: reqwest::Client,
}

impl Hostile {
    fn start() -> Hostile {
        Hostile::start_with(&[])
    }

    /// A server with `extra` environment variables besides its request timeout.
    fn start_with(extra: &[(&str, &str)]) -> Hostile {
        let dir = tempfile::tempdir().unwrap();
        let timeout = format!("{}s", REQUEST_TIMEOUT.as_secs());
        let mut env = vec![("FAULTLINE_LIMITS_REQUEST_TIMEOUT", timeout.as_str())];
        env.extend_from_slice(extra);
        let proc = spawn_with(dir.path(), None, true, &env);
        Hostile {
            proc,
            _dir: dir,
            c: client(),
        }
    }

    fn addr(&self) -> &str {
        self.proc.base.trim_start_matches("http://")
    }

    /// `VmHWM` or `VmRSS` of the server process, in kB.
    fn memory_kb(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.proc.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// The server answers `/healthz` and has never held more than [`MAX_HWM_KB`].
    async fn assert_alive_and_bounded(&self, after: &str) {
        let r = self
            .c
            .get(format!("{}/healthz", self.proc.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("server down after {after}: {e}"));
        assert_eq!(r.status().as_u16(), 200, "healthz after {after}");
        let hwm = self.memory_kb("VmHWM");
        assert!(
            hwm < MAX_HWM_KB,
            "after {after}: peak RSS {hwm} kB exceeds {MAX_HWM_KB} kB"
        );
    }

    /// POSTs raw bytes to `/logs/ingest` with the secret key and `headers`.
    async fn ingest(
        &self,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut req = self
            .c
            .post(format!("{}/logs/ingest", self.proc.base))
            .bearer_auth(KEY)
            .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.body(body).send().await.unwrap();
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.c
            .get(format!("{}{path}", self.proc.base))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
    }

    /// The messages of the newest records (up to 1000).
    async fn stored_messages(&self) -> Vec<String> {
        let r = self.get("/logs/recent?limit=1000").await;
        assert_eq!(r.status().as_u16(), 200);
        let body: Value = r.json().await.unwrap();
        body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["message"].as_str().unwrap_or("").to_owned())
            .collect()
    }
}

impl Drop for Hostile {
    /// A failed assertion must not leave the server running.
    fn drop(&mut self) {
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
    }
}

/// A 4xx with the documented `{"error": "..."}` body naming the problem.
#[track_caller]
fn assert_error(case: &str, got: &(u16, Value), status: u16, mentions: &str) {
    assert_eq!(got.0, status, "{case}: {}", got.1);
    let error = got.1["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{case}: no error message in {}", got.1));
    assert!(
        error.to_lowercase().contains(&mentions.to_lowercase()),
        "{case}: error {error:?} does not mention {mentions:?}"
    );
}

/// Writes `bytes` on a fresh connection and reads what comes back until the server closes
/// it or `wait` passes. Returns the response text and whether the server closed.
async fn raw(addr: &str, bytes: &[u8], wait: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading it all: a failed write is expected.
    let _ = s.write_all(bytes).await;
    read_until_closed(&mut s, wait).await
}

async fn read_until_closed(s: &mut TcpStream, wait: Duration) -> (String, bool) {
    let deadline = tokio::time::Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

/// The status code of the first response in raw HTTP text, 0 when there is none.
fn raw_status(text: &str) -> u16 {
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn head(content_length: &str, extra: &str) -> String {
    format!(
        "POST /logs/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {content_length}\r\n{extra}\r\n"
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn kept(marker: &str) -> Value {
    now_record("api", "error", marker)
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_records_are_rejected_one_by_one_and_good_ones_kept() {
    let s = Hostile::start();
    let good = |n: usize| kept(&format!("kept-{n}"));
    let mut wrong: Vec<Value> = Vec::new();
    // Wrong types and nulls in every field.
    for (field, bad) in [
        ("ts", json!(12)),
        ("ts", json!("yesterday")),
        ("service", json!(1)),
        ("level", json!(["error"])),
        ("level", json!("loud")),
        ("event", json!({"a": 1})),
        ("message", json!(true)),
        ("meta", json!("text")),
        ("id", json!("not-a-uuid")),
    ] {
        let mut r = good(0);
        r[field] = bad;
        wrong.push(r);
    }
    for required in ["ts", "service", "level", "event", "message"] {
        let mut r = good(0);
        r[required] = Value::Null;
        wrong.push(r);
    }
    let mut r = good(0);
    r["meta"] = json!({"user": 5, "stack": "not frames"});
    wrong.push(r);
    // 1 MB strings where they cannot fit.
    let mega = "x".repeat(1 << 20);
    for field in ["service", "event"] {
        let mut r = good(0);
        r[field] = json!(mega);
        wrong.push(r);
    }
    let mut r = good(0);
    r["meta"] = json!({ "big": mega });
    wrong.push(r);
    wrong.push(json!("a string, not a record"));
    wrong.push(json!([1, 2, 3]));
    wrong.push(Value::Null);

    let mut batch = vec![good(1)];
    batch.extend(wrong.iter().cloned());
    // A 1 MB message is truncated to the documented maximum, not refused.
    let mut long = good(2);
    long["message"] = json!(format!("kept-2{mega}"));
    batch.push(long);
    batch.push(good(3));
    // Null optional fields are absent ones.
    let mut optional = good(4);
    optional["id"] = Value::Null;
    optional["meta"] = Value::Null;
    batch.push(optional);
    let (status, resp) = s.ingest(&[], serde_json::to_vec(&batch).unwrap()).await;
    assert_eq!(status, 202, "{resp}");
    assert_eq!(resp["accepted"], 4, "{resp}");
    let rejected = resp["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), wrong.len(), "{resp}");
    for (r, want_index) in rejected.iter().zip(1..) {
        assert_eq!(r["index"], want_index);
        assert!(!r["error"].as_str().unwrap().is_empty(), "{r}");
    }

    // Duplicate keys: the last one wins, as in every serde_json object (documented in
    // docs/SECURITY.md); the key's service check sees that same value.
    let dup = r#"{"ts":"2026-07-01T12:00:00Z","service":"web","service":"api","level":"info","event":"e","message":"dup"}"#;
    let (status, resp) = s.ingest(&[], format!("[{dup}]")).await;
    assert_eq!((status, &resp["accepted"]), (202, &json!(1)), "{resp}");
    let r = s.get("/logs/recent?q=dup").await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["records"][0]["service"], "api", "{body}");

    let stored = s.stored_messages().await;
    for n in 1..=4 {
        assert!(
            stored.iter().any(|m| m.starts_with(&format!("kept-{n}"))),
            "kept-{n} stored"
        );
    }
    let truncated = stored.iter().find(|m| m.starts_with("kept-2")).unwrap();
    assert!(
        truncated.len() <= faultline_schema::MAX_MESSAGE_BYTES,
        "{}",
        truncated.len()
    );
    s.assert_alive_and_bounded("malformed records").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_bodies_get_400_and_ndjson_lines_fail_alone() {
    let s = Hostile::start();
    let deep_array = "[".repeat(10_000) + &"]".repeat(10_000);
    let deep_object = "{\"a\":".repeat(10_000) + "1" + &"}".repeat(10_000);
    for (case, body, mentions) in [
        (
            "truncated array",
            br#"[{"ts":"2026-07-01T12:00:00Z","serv"#.to_vec(),
            "JSON",
        ),
        ("a number", b"42".to_vec(), "JSON"),
        ("null", b"null".to_vec(), "JSON"),
        ("a string", br#""records""#.to_vec(), "JSON"),
        (
            "records not an array",
            br#"{"records": {"a": 1}}"#.to_vec(),
            "records",
        ),
        ("records null", br#"{"records": null}"#.to_vec(), "records"),
        ("deep object", deep_object.clone().into_bytes(), "JSON"),
        ("only a BOM", b"\xEF\xBB\xBF".to_vec(), "empty"),
        (
            "invalid UTF-8 in an array",
            b"[{\"message\": \"\xff\xfe\"}]".to_vec(),
            "JSON",
        ),
        ("UTF-16 BOM", b"\xFF\xFE[\x00]\x00".to_vec(), "JSON"),
    ] {
        let got = s.ingest(&[], body).await;
        assert_error(case, &got, 400, mentions);
    }

    // Array elements that nest 10,000 deep or hold a lone surrogate (`\ud800`): each is a
    // rejected record, the good one next to them is kept.
    let body = format!(
        r#"[{deep_array}, {{"message": "\ud800"}}, {}]"#,
        kept("beside")
    );
    let (status, resp) = s.ingest(&[], body).await;
    assert_eq!((status, &resp["accepted"]), (202, &json!(1)), "{resp}");
    for bad in 0..2 {
        let error = resp["rejected"][bad]["error"].as_str().unwrap();
        assert!(error.contains("not valid JSON"), "{error}");
    }

    // A UTF-8 BOM is skipped.
    let bom = [
        b"\xEF\xBB\xBF".as_slice(),
        &serde_json::to_vec(&[kept("bom")]).unwrap(),
    ]
    .concat();
    let (status, resp) = s.ingest(&[], bom).await;
    assert_eq!((status, &resp["accepted"]), (202, &json!(1)), "{resp}");

    // NDJSON: blank lines skipped, each broken line rejected by itself, good lines kept.
    let line = |m: &str| kept(m).to_string();
    let huge = {
        let mut r = kept("nd-huge");
        r["message"] = json!(format!("nd-huge{}", "y".repeat(3 << 20)));
        r.to_string()
    };
    let body = [
        line("nd-1"),
        String::new(),
        "   \t".into(),
        r#"{"ts":"2026-07-01T12:00:00Z","message":"\ud800"}"#.into(),
        "{\"ts\": ".into(),
        deep_object,
        huge,
        "\r".into(),
        line("nd-2"),
        "null".into(),
        line("nd-3"),
    ]
    .join("\n");
    let mut bytes = body.into_bytes();
    bytes.extend_from_slice(b"\n{\"message\": \"\xc3\x28\"}\n");
    bytes.extend_from_slice(line("nd-4").as_bytes());
    let (status, resp) = s
        .ingest(&[("content-type", "application/x-ndjson")], bytes)
        .await;
    assert_eq!(status, 202, "{resp}");
    assert_eq!(resp["accepted"], 5, "{resp}");
    let indexes: Vec<u64> = resp["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(
        indexes,
        [1, 2, 3, 6, 8],
        "blank lines are not counted: {resp}"
    );
    let stored = s.stored_messages().await;
    for m in ["beside", "bom", "nd-1", "nd-2", "nd-3", "nd-4", "nd-huge"] {
        assert!(stored.iter().any(|s| s.starts_with(m)), "{m} stored");
    }
    s.assert_alive_and_bounded("malformed bodies").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lying_lengths_and_encodings_are_refused_and_the_connection_recovers() {
    let s = Hostile::start();
    let body = serde_json::to_vec(&[kept("raw-1")]).unwrap();

    // Longer than what is sent: the deadline answers 408 and closes.
    let started = Instant::now();
    let mut req = head(&(body.len() + 100).to_string(), "").into_bytes();
    req.extend_from_slice(&body);
    let (text, closed) = raw(s.addr(), &req, REQUEST_TIMEOUT * 4).await;
    assert_eq!(raw_status(&text), 408, "{text}");
    assert!(text.contains("\"error\""), "{text}");
    assert!(closed, "the connection is closed after a 408");
    assert!(
        started.elapsed() < REQUEST_TIMEOUT * 3,
        "{:?}",
        started.elapsed()
    );

    // Shorter than what is sent: the declared bytes are the request (a valid batch here),
    // and what follows is a garbage request that gets its own 400.
    let mut req = head(&body.len().to_string(), "").into_bytes();
    req.extend_from_slice(&body);
    req.extend_from_slice(b"trailing junk that is not HTTP\r\n\r\n");
    let (text, _) = raw(s.addr(), &req, REQUEST_TIMEOUT * 2).await;
    assert_eq!(raw_status(&text), 202, "{text}");
    assert!(text.matches("HTTP/1.1 ").count() <= 2, "{text}");

    // Declared shorter than a batch: the truncated JSON is a 400, not a hang.
    let mut req = head(&(body.len() / 2).to_string(), "Connection: close\r\n").into_bytes();
    req.extend_from_slice(&body);
    let (text, _) = raw(s.addr(), &req, REQUEST_TIMEOUT * 2).await;
    assert_eq!(raw_status(&text), 400, "{text}");

    // Lengths that are not one number.
    for cl in ["abc", "-5", "18446744073709551616", "10, 20"] {
        let (text, closed) = raw(
            s.addr(),
            format!("{}{{}}", head(cl, "")).as_bytes(),
            REQUEST_TIMEOUT * 2,
        )
        .await;
        assert_eq!(raw_status(&text), 400, "Content-Length {cl}: {text}");
        assert!(closed, "Content-Length {cl}");
    }
    let (text, _) = raw(
        s.addr(),
        format!("{}{{}}", head("2", "Content-Length: 3\r\n")).as_bytes(),
        REQUEST_TIMEOUT * 2,
    )
    .await;
    assert_eq!(raw_status(&text), 400, "two lengths: {text}");
    // Both a length and chunked: chunked wins (RFC 9112), the length is ignored.
    let chunked = format!(
        "{}{:x}\r\n{}\r\n0\r\n\r\n",
        head("5", "Transfer-Encoding: chunked\r\nConnection: close\r\n"),
        body.len(),
        String::from_utf8_lossy(&body)
    );
    let (text, _) = raw(s.addr(), chunked.as_bytes(), REQUEST_TIMEOUT * 2).await;
    assert!(matches!(raw_status(&text), 202 | 400), "{text}");

    // Content-Encoding that lies.
    let plain = serde_json::to_vec(&[kept("enc")]).unwrap();
    let got = s
        .ingest(&[("content-encoding", "gzip")], plain.clone())
        .await;
    assert_error("gzip header on a plain body", &got, 400, "gzip");
    let got = s
        .ingest(&[("content-encoding", "gzip")], gzip(&plain)[..20].to_vec())
        .await;
    assert_error("truncated gzip", &got, 400, "gzip");
    let got = s
        .ingest(&[("content-encoding", "identity")], gzip(&plain))
        .await;
    assert_error("gzip bytes declared identity", &got, 400, "JSON");
    for enc in ["gzip, gzip", "zstd"] {
        let got = s.ingest(&[("content-encoding", enc)], gzip(&plain)).await;
        assert_error(enc, &got, 415, "gzip");
    }
    // br and deflate are taken (Sentry's SDKs send them): gzip bytes declared as either are
    // a 400 naming the encoding the body is not.
    for (enc, name) in [("br", "brotli"), ("deflate", "deflate")] {
        let got = s.ingest(&[("content-encoding", enc)], gzip(&plain)).await;
        assert_error(enc, &got, 400, name);
    }
    let got = s
        .ingest(&[("content-encoding", "gzip")], gzip(&plain))
        .await;
    assert_eq!(got.0, 202, "{}", got.1);

    let stored = s.stored_messages().await;
    assert!(stored.iter().any(|m| m == "raw-1"));
    assert!(stored.iter().any(|m| m == "enc"));
    s.assert_alive_and_bounded("lying lengths").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bombs_and_huge_bodies_are_413_in_bounded_memory() {
    let s = Hostile::start();
    // 1 GB of one repeated record inflates past the 20 MB limit: 413, never inflated whole.
    // One compressed megabyte repeated as 1,024 gzip members (one body to the server).
    let record = format!("{}\n", kept("bomb"));
    let member = gzip(record.repeat((1 << 20) / record.len()).as_bytes());
    let bomb = member.repeat(1024);
    assert!(
        bomb.len() < 5 << 20,
        "the bomb fits the wire limit: {}",
        bomb.len()
    );
    let got = s
        .ingest(&[("content-encoding", "gzip")], bomb.clone())
        .await;
    assert_error("gzip bomb", &got, 413, "inflates");
    // The same bomb without a Content-Encoding header, found by its magic bytes.
    let got = s.ingest(&[("content-type", "text/plain")], bomb).await;
    assert_error("gzip bomb by magic bytes", &got, 413, "inflates");

    // 100 MB declared: refused before any of it is read.
    let (text, _) = raw(
        s.addr(),
        head(&(100u64 << 20).to_string(), "").as_bytes(),
        REQUEST_TIMEOUT * 2,
    )
    .await;
    assert_eq!(raw_status(&text), 413, "{text}");

    // 100 MB sent chunked, with no length to refuse up front: cut off at the limit.
    let mut stream = TcpStream::connect(s.addr()).await.unwrap();
    let head = format!(
        "POST /logs/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mb = vec![b' '; 1 << 20];
    let mut sent = 0;
    for _ in 0..100 {
        let mut chunk = format!("{:x}\r\n", mb.len()).into_bytes();
        chunk.extend_from_slice(&mb);
        chunk.extend_from_slice(b"\r\n");
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
        sent += 1;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let (text, _) = read_until_closed(&mut stream, REQUEST_TIMEOUT * 2).await;
    assert_eq!(raw_status(&text), 413, "after {sent} MB: {text}");
    assert!(text.contains("\"error\""), "{text}");

    // The largest allowed body still works next to all that.
    let (status, resp) = s
        .ingest(&[], serde_json::to_vec(&[kept("after-bombs")]).unwrap())
        .await;
    assert_eq!(status, 202, "{resp}");
    assert!(s.stored_messages().await.iter().any(|m| m == "after-bombs"));
    s.assert_alive_and_bounded("bombs and 100 MB bodies").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn many_tiny_requests_are_all_answered() {
    let s = Hostile::start();
    let before = s.memory_kb("VmRSS");
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let c = s.c.clone();
            let url = format!("{}/logs/ingest", s.proc.base);
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for i in 0..125 {
                    // Every fifth is empty or broken: errors must cost as little as success.
                    let body = match i % 5 {
                        0 => String::new(),
                        1 => "{".into(),
                        _ => {
                            json!([now_record("api", "info", &format!("tiny-{t}-{i}"))]).to_string()
                        }
                    };
                    let r = c
                        .post(&url)
                        .bearer_auth(KEY)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    statuses.push(r.status().as_u16());
                }
                statuses
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        for status in t.await.unwrap() {
            assert!(matches!(status, 202 | 400), "{status}");
            accepted += usize::from(status == 202);
        }
    }
    assert_eq!(accepted, 16 * 75);
    let r = s.get("/logs/recent?limit=1000&q=tiny-").await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["records"].as_array().unwrap().len(), 1000);
    let after = s.memory_kb("VmRSS");
    assert!(
        after < before + 64 * 1024,
        "2,000 requests grew RSS from {before} kB to {after} kB"
    );
    s.assert_alive_and_bounded("2,000 tiny requests").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_are_cut_off() {
    let s = Hostile::start();
    // A body that trickles in: 408 at the deadline, then the connection is closed.
    let started = Instant::now();
    let mut stream = TcpStream::connect(s.addr()).await.unwrap();
    stream.write_all(head("1000", "").as_bytes()).await.unwrap();
    let trickle = async {
        for _ in 0..40 {
            if stream.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT * 2, trickle)
        .await
        .ok();
    let (text, _) = read_until_closed(&mut stream, REQUEST_TIMEOUT * 3).await;
    assert_eq!(raw_status(&text), 408, "{text}");
    assert!(
        started.elapsed() < REQUEST_TIMEOUT * 6,
        "{:?}",
        started.elapsed()
    );

    // Headers that never end: the connection is closed instead of held forever.
    let started = Instant::now();
    let mut stream = TcpStream::connect(s.addr()).await.unwrap();
    stream
        .write_all(b"POST /logs/ingest HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut closed = false;
    for i in 0..60 {
        if stream
            .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        let mut buf = [0u8; 1024];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await
        {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "slow headers held the connection for {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < REQUEST_TIMEOUT * 6,
        "{:?}",
        started.elapsed()
    );

    // An idle connection that never sends a request is closed too.
    let mut idle = TcpStream::connect(s.addr()).await.unwrap();
    let (_, closed) = read_until_closed(&mut idle, REQUEST_TIMEOUT * 6).await;
    assert!(closed, "an idle connection is closed");
    s.assert_alive_and_bounded("slow clients").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn header_floods_are_431_and_the_server_stays_up() {
    let s = Hostile::start();
    let body = serde_json::to_vec(&[kept("flood")]).unwrap();
    let many: String = (0..1000).map(|i| format!("X-Flood-{i}: {i}\r\n")).collect();
    let huge = format!("X-Huge: {}\r\n", "h".repeat(1 << 20));
    for (case, extra) in [("1,000 headers", many), ("a 1 MB header", huge)] {
        let mut req = head(&body.len().to_string(), &extra).into_bytes();
        req.extend_from_slice(&body);
        let (text, closed) = raw(s.addr(), &req, REQUEST_TIMEOUT * 2).await;
        assert_eq!(raw_status(&text), 431, "{case}: {text}");
        assert!(closed, "{case}: connection closed");
    }
    // A bearer token of 64 KB: refused as unknown, not a crash.
    let got = s
        .ingest(&[("x-faultline-key", &"k".repeat(64 << 10))], body.clone())
        .await;
    assert_eq!(
        got.0, 202,
        "the Authorization header is used first: {}",
        got.1
    );
    s.assert_alive_and_bounded("header floods").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sql_and_html_in_read_queries_are_data_not_code() {
    let s = Hostile::start();
    let (status, resp) = s
        .ingest(&[], serde_json::to_vec(&[kept("plain record")]).unwrap())
        .await;
    assert_eq!(status, 202, "{resp}");
    let evil = [
        "' OR '1'='1",
        "'; DROP TABLE system_logs; --",
        "1 UNION SELECT * FROM keys",
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "%00",
    ];
    for value in evil {
        let enc: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
        // Free-text and exact filters: no record matches, nothing is executed.
        for param in ["q", "service", "event", "user"] {
            let r = s.get(&format!("/logs/recent?{param}={enc}")).await;
            let status = r.status().as_u16();
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(ct.starts_with("application/json"), "{param}={value}: {ct}");
            let body: Value = r.json().await.unwrap();
            match status {
                200 => assert_eq!(body["records"], json!([]), "{param}={value}"),
                400 => assert!(body["error"].is_string(), "{param}={value}: {body}"),
                other => panic!("{param}={value}: {other} {body}"),
            }
        }
        // Typed parameters refuse them with a clear 400.
        for param in ["level", "since", "until", "limit"] {
            let r = s.get(&format!("/logs/recent?{param}={enc}")).await;
            assert_eq!(r.status().as_u16(), 400, "{param}={value}");
            let body: Value = r.json().await.unwrap();
            assert!(
                body["error"].as_str().unwrap().contains(param),
                "{param}={value}: {body}"
            );
        }
        let r = s.get(&format!("/logs/stats?window={enc}")).await;
        assert_eq!(r.status().as_u16(), 400, "window={value}");
    }
    // The store is untouched and still answers.
    let stored = s.stored_messages().await;
    assert_eq!(stored, ["plain record"]);
    s.assert_alive_and_bounded("query injection").await;
}

/// The peak resident memory a server may reach while it answers one of the bodies below:
/// each a hundred KB gzipped that inflates to 20 MB of millions of tiny elements. The
/// inflated body alone is 20 MB; before elements were counted while decoding, one such body
/// took the server to 360 MB (a JSON array of zeros) and past 3 GB (empty OTLP records).
const SWARM_HWM_KB: u64 = 112 * 1024;
/// The same with [`PARALLEL`] of them at once: the server holds at most
/// [`IN_FLIGHT_BYTES`] of bodies and decoded records and answers 503 beyond it (before, 8
/// such bodies took it to 0.8 to 6 GB).
const SWARM_PARALLEL_HWM_KB: u64 = 144 * 1024;
/// How many hostile bodies are sent at once.
const PARALLEL: usize = 8;
/// `limits.max_in_flight_bytes` of the servers here: 48 MiB, room for two inflated bodies.
const IN_FLIGHT_BYTES: &str = "50331648";
/// The inflated size of each hostile body: just under the 20 MiB `max_decompressed_bytes`.
const SWARM_BYTES: usize = (20 << 20) - 4096;

/// A body of copies of `unit` between `open` and `close`, [`SWARM_BYTES`] long in all.
fn swarm(open: &[u8], unit: &[u8], close: &[u8]) -> Vec<u8> {
    let n = (SWARM_BYTES - open.len() - close.len()) / unit.len();
    let mut body = Vec::with_capacity(SWARM_BYTES);
    body.extend_from_slice(open);
    for _ in 0..n {
        body.extend_from_slice(unit);
    }
    body.extend_from_slice(close);
    body
}

/// `ExportLogsServiceRequest` with one resource (`service.name` "api") and one scope whose
/// content is `scope_logs`.
fn pb_request(scope_logs: Vec<u8>) -> Vec<u8> {
    use crate::otlp::{Pb, kv_str};
    let resource = Pb::new().msg(1, kv_str("service.name", "api"));
    Pb::new()
        .msg(1, Pb::new().msg(1, resource).msg(2, Pb(scope_logs)))
        .0
}

/// The content of a `ScopeLogs` holding one `LogRecord` whose content is `record`.
fn pb_one_record(record: Vec<u8>) -> Vec<u8> {
    crate::otlp::Pb::new().msg(2, crate::otlp::Pb(record)).0
}

/// An OTLP/JSON request whose one scope holds `log_records` (the array's inside).
fn json_request(open: &[u8], unit: &[u8], close: &[u8]) -> Vec<u8> {
    let head = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]},"scopeLogs":[{"logRecords":["#;
    let mut prefix = head.to_vec();
    prefix.extend_from_slice(open);
    let mut suffix = close.to_vec();
    suffix.extend_from_slice(b"]}]}]}");
    swarm(&prefix, unit, &suffix)
}

/// A hostile body: where it goes, as what, and the answer it gets alone.
struct Swarm {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    gzipped: Vec<u8>,
    /// The status when it is sent alone.
    status: u16,
    /// Words the answer has (one of them).
    mentions: &'static [&'static str],
}

fn otlp_swarm(name: &'static str, content_type: &'static str, body: &[u8]) -> Swarm {
    Swarm {
        name,
        path: "/v1/logs",
        content_type,
        gzipped: gzip_fast(body),
        status: 413,
        mentions: &["log records", "attributes"],
    }
}

fn gzip_fast(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Protobuf: 10 million empty `LogRecord`s (`12 00`, two bytes each); OTLP/JSON: 7 million
/// `{}`.
fn empty_otlp_records() -> Vec<Swarm> {
    vec![
        otlp_swarm(
            "protobuf empty log records",
            "application/x-protobuf",
            &pb_request(swarm(b"", &[0x12, 0x00], b"")),
        ),
        otlp_swarm(
            "OTLP/JSON empty log records",
            "application/json",
            &json_request(b"", b"{},", b"{}"),
        ),
    ]
}

/// One `LogRecord` with 10 million empty attributes (`32 00`); one attribute whose map
/// value holds 10 million empty `KeyValue`s; OTLP/JSON, 7 million `{}` attributes.
fn empty_otlp_attributes() -> Vec<Swarm> {
    use crate::otlp::Pb;
    let nested = Pb::new()
        .string(1, "a")
        .msg(2, Pb::new().msg(6, Pb(swarm(b"", &[0x0a, 0x00], b""))));
    vec![
        otlp_swarm(
            "protobuf empty attributes",
            "application/x-protobuf",
            &pb_request(pb_one_record(swarm(b"", &[0x32, 0x00], b""))),
        ),
        otlp_swarm(
            "protobuf empty nested key-values",
            "application/x-protobuf",
            &pb_request(pb_one_record(Pb::new().msg(6, nested).0)),
        ),
        otlp_swarm(
            "OTLP/JSON empty attributes",
            "application/json",
            &json_request(br#"{"attributes":["#, b"{},", b"{}]}"),
        ),
    ]
}

/// `[0,0,...]` and `{"records": [0,0,...]}` of 10 million elements; 1,280 records whose
/// `meta` holds 8,000 zeros each (valid records, 16 times their size once decoded); one
/// record of 10 million zeros (more values than a record can hold).
fn json_swarms() -> Vec<Swarm> {
    let json = |name, body: &[u8], status, mentions| Swarm {
        name,
        path: "/logs/ingest",
        content_type: "application/json",
        gzipped: gzip_fast(body),
        status,
        mentions,
    };
    let zeros_record = {
        let mut r = kept("zeros");
        r["meta"] = json!({ "a": vec![0; 8000] });
        r.to_string()
    };
    let (open, close) = zeros_record.split_once("[0,").unwrap();
    let one_huge = format!("[{open}[");
    vec![
        json(
            "array of zeros",
            &swarm(b"[", b"0,", b"0]"),
            413,
            &["records"],
        ),
        json(
            "wrapped array of zeros",
            &swarm(br#"{"records":["#, b"0,", b"0]}"),
            413,
            &["records"],
        ),
        json(
            "records of 8,000 zeros each",
            &swarm(
                b"[",
                format!("{zeros_record},").as_bytes(),
                format!("{zeros_record}]").as_bytes(),
            ),
            413,
            &["memory"],
        ),
        json(
            "one record of 10 million zeros",
            &swarm(one_huge.as_bytes(), b"0,", format!("0,{close}]").as_bytes()),
            202,
            &["JSON values"],
        ),
    ]
}

/// Sends `swarm` gzipped: (status, `Retry-After`, body text).
async fn send_swarm(
    c: &reqwest::Client,
    base: &str,
    swarm: &Swarm,
) -> (u16, Option<String>, String) {
    let r = c
        .post(format!("{base}{}", swarm.path))
        .bearer_auth(KEY)
        .header("content-type", swarm.content_type)
        .header("content-encoding", "gzip")
        .body(swarm.gzipped.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", swarm.name));
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = String::from_utf8_lossy(&r.bytes().await.unwrap()).into_owned();
    (status, retry_after, text)
}

/// Each body alone, on a server of its own, gets its answer within [`SWARM_HWM_KB`]; then
/// [`PARALLEL`] of them at once (the kinds in turn) each get theirs, or 503 with
/// `Retry-After` while the in-flight budget is full, within [`SWARM_PARALLEL_HWM_KB`]; and
/// a good batch is still stored after them.
async fn answered_in_bounded_memory(swarms: Vec<Swarm>) {
    for swarm in &swarms {
        let s = Hostile::start_with(&[("FAULTLINE_LIMITS_MAX_IN_FLIGHT_BYTES", IN_FLIGHT_BYTES)]);
        let (status, _, text) = send_swarm(&s.c, &s.proc.base, swarm).await;
        assert_eq!(status, swarm.status, "{}: {text}", swarm.name);
        assert!(
            swarm.mentions.iter().any(|m| text.contains(m)),
            "{}: {text} mentions none of {:?}",
            swarm.name,
            swarm.mentions
        );
        let hwm = s.memory_kb("VmHWM");
        eprintln!("{}: peak RSS {hwm} kB", swarm.name);
        assert!(
            hwm < SWARM_HWM_KB,
            "{}: peak RSS {hwm} kB exceeds {SWARM_HWM_KB} kB",
            swarm.name
        );
    }
    let s = Hostile::start_with(&[("FAULTLINE_LIMITS_MAX_IN_FLIGHT_BYTES", IN_FLIGHT_BYTES)]);
    let swarms = std::sync::Arc::new(swarms);
    let sends: Vec<_> = (0..PARALLEL)
        .map(|i| {
            let (swarms, c, base) = (swarms.clone(), s.c.clone(), s.proc.base.clone());
            tokio::spawn(async move {
                let swarm = &swarms[i % swarms.len()];
                (i % swarms.len(), send_swarm(&c, &base, swarm).await)
            })
        })
        .collect();
    for send in sends {
        let (i, (status, retry_after, text)) = send.await.unwrap();
        let swarm = &swarms[i];
        if status == 503 {
            assert!(
                retry_after.is_some(),
                "{}: 503 without Retry-After",
                swarm.name
            );
        } else {
            assert_eq!(status, swarm.status, "{} in parallel: {text}", swarm.name);
        }
    }
    let hwm = s.memory_kb("VmHWM");
    eprintln!("{PARALLEL} in parallel: peak RSS {hwm} kB");
    assert!(
        hwm < SWARM_PARALLEL_HWM_KB,
        "{PARALLEL} hostile bodies at once: peak RSS {hwm} kB exceeds {SWARM_PARALLEL_HWM_KB} kB"
    );
    let (status, resp) = s
        .ingest(&[], serde_json::to_vec(&[kept("after-swarm")]).unwrap())
        .await;
    assert_eq!(status, 202, "{resp}");
}

/// Issue 21: an empty `LogRecord` is 2 bytes on the wire and ~176 in memory; log records
/// are counted before the request is decoded.
#[tokio::test(flavor = "multi_thread")]
async fn otlp_millions_of_empty_records_are_refused_in_bounded_memory() {
    answered_in_bounded_memory(empty_otlp_records()).await;
}

/// Issue 21: empty attributes, at the top of a record or nested in a value, were not
/// counted at all; they are counted before the request is decoded.
#[tokio::test(flavor = "multi_thread")]
async fn otlp_millions_of_empty_attributes_are_refused_in_bounded_memory() {
    answered_in_bounded_memory(empty_otlp_attributes()).await;
}

/// Issue 21: a batch's elements were all parsed before their number was checked, and
/// nothing bounded what decoded records take.
#[tokio::test(flavor = "multi_thread")]
async fn json_batches_of_millions_of_elements_are_answered_in_bounded_memory() {
    answered_in_bounded_memory(json_swarms()).await;
}
