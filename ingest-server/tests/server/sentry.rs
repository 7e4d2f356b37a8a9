//! Sentry's protocol: `POST /api/{project}/envelope/` and `/store/` with real SDKs (the
//! Python `sentry-sdk`, with and without `brotli`, and the `sentry` crate) against the real
//! binary, and the protocol's edges against the router.

use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::common::{ADMIN, ORIGIN, PUBLIC, SECRET, metric, server};
use crate::process::{KEY, client, get, metrics_text, spawn_with};

/// Raw identifiers the SDKs were given; none may be stored anywhere.
const RAW_USERS: [&str; 5] = [
    "user-8841",
    "ann@example.com",
    "203.0.113.9",
    "user-77",
    "bo@example.com",
];

/// Every file under `dir`, as bytes, must hold none of `needles`.
fn assert_nowhere_on_disk(dir: &Path, needles: &[&str]) {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    assert!(!files.is_empty(), "nothing stored under {}", dir.display());
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        for needle in needles {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle:?} is stored in {}",
                file.display()
            );
        }
    }
}

async fn records(c: &reqwest::Client, base: &str, service: &str) -> Vec<Value> {
    let (status, body) = get(c, base, ADMIN, &format!("/logs/recent?service={service}")).await;
    assert_eq!(status, 200, "{body}");
    body["records"].as_array().unwrap().clone()
}

fn by_id<'a>(records: &'a [Value], id: &str) -> &'a Value {
    let id = uuid::Uuid::parse_str(id).unwrap().to_string();
    let found: Vec<&Value> = records.iter().filter(|r| r["id"] == id).collect();
    assert_eq!(found.len(), 1, "event {id} stored once: {records:?}");
    found[0]
}

fn functions(record: &Value) -> Vec<String> {
    record["meta"]["stack"]
        .as_array()
        .unwrap_or_else(|| panic!("no stack: {record}"))
        .iter()
        .map(|f| f["function"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The real `sentry-sdk` from PyPI (installed by `cargo xtask provision`), once sending
/// brotli and once (`brotli` hidden from it) gzip, against the real binary.
#[tokio::test(flavor = "multi_thread")]
async fn the_python_sdk_with_and_without_brotli() {
    let dir = tempfile::tempdir().unwrap();
    let proc = spawn_with(dir.path(), None, true, &[]);
    let c = client();
    let host = proc.base.trim_start_matches("http://").to_owned();
    let dsn = format!("http://{KEY}@{host}/42");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/server/python/sentry_app.py"
    );
    for compression in ["br", "gzip"] {
        let dsn = dsn.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("python3")
                .args([script, &dsn, compression])
                .output()
                .expect("python3 runs (cargo xtask provision installs sentry-sdk and brotli)")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the app failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ids: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(ids["compression"], compression, "{ids}");

        let stored = records(&c, &proc.base, "sentry-42").await;
        let error = by_id(&stored, ids["error"].as_str().unwrap());
        assert_eq!(error["level"], "ERROR", "{error}");
        assert_eq!(error["event"], "exception", "{error}");
        assert_eq!(
            error["message"],
            "ValueError: invalid literal for int() with base 10: '12,99'"
        );
        let meta = &error["meta"];
        assert_eq!(meta["error_type"], "ValueError");
        assert_eq!(meta["release"], "shop@1.4.2");
        assert_eq!(meta["environment"], "test");
        assert_eq!(meta["tags"]["region"], "eu-west");
        assert_eq!(meta["tags"]["plan"], "pro");
        assert_eq!(meta["sdk"]["name"], "sentry.python");
        let user = meta["user"].as_str().unwrap();
        assert!(
            user.starts_with("u_") && user.len() == 18,
            "re-keyed: {user}"
        );
        let crumbs: Vec<&str> = meta["breadcrumbs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["category"].as_str().unwrap())
            .collect();
        assert_eq!(crumbs, ["auth", "cart"], "{meta}");
        let frames = functions(error);
        assert_eq!(
            frames[..2],
            ["parse_total", "checkout"],
            "innermost first: {frames:?}"
        );
        assert_eq!(meta["stack"][0]["module"], "__main__");
        assert!(meta["stack"][0]["line"].as_u64().unwrap() > 0);
        assert_eq!(meta["stack"][0]["context_line"], "    return int(text)");
        assert!(error["issue"].is_string(), "grouped: {error}");

        let message = by_id(&stored, ids["message"].as_str().unwrap());
        assert_eq!(message["level"], "WARNING");
        assert_eq!(message["event"], "message");
        assert_eq!(message["message"], "disk almost full on db-1");
        assert_eq!(
            message["meta"]["user"], meta["user"],
            "the same user, re-keyed"
        );
    }
    let text = metrics_text(&c, &proc.base).await;
    assert_eq!(
        metric(
            &text,
            "faultline_sentry_items_total{type=\"event\",outcome=\"mapped\"}"
        ),
        Some(4.0),
        "{text}"
    );
    assert!(proc.terminate().success());
    assert_nowhere_on_disk(dir.path(), &RAW_USERS);
}

#[derive(Debug)]
struct MailRefused;

impl std::fmt::Display for MailRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mail server refused the message")
    }
}

impl std::error::Error for MailRefused {}

#[inline(never)]
fn deliver_mail() -> Result<(), MailRefused> {
    Err(MailRefused)
}

#[inline(never)]
fn run_job() -> sentry::types::Uuid {
    match deliver_mail() {
        Ok(()) => unreachable!(),
        Err(e) => sentry::capture_error(&e),
    }
}

/// A transport that posts each envelope as the SDK writes it, with the `X-Sentry-Auth` the
/// SDK derives from its DSN, to the DSN's envelope URL (plain HTTP/1.1 on loopback), and
/// keeps its bytes.
struct Post {
    dsn: sentry::types::Dsn,
    kept: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl sentry::Transport for Post {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        use std::io::Read as _;
        let mut body = Vec::new();
        envelope.to_writer(&mut body).unwrap();
        let url = self.dsn.envelope_api_url();
        let auth = self.dsn.to_auth(Some("sentry.rust/test"));
        let host = format!("{}:{}", self.dsn.host(), self.dsn.port());
        let mut stream = std::net::TcpStream::connect(&host).unwrap();
        write!(
            stream,
            "POST {} HTTP/1.1\r\nHost: {host}\r\nX-Sentry-Auth: {auth}\r\n\
             Content-Type: application/x-sentry-envelope\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            url.path(),
            body.len()
        )
        .unwrap();
        stream.write_all(&body).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        self.kept.lock().unwrap().push(body);
    }
}

/// Runs `f` with a client of its own (so tests in parallel do not share the SDK's hub).
fn with_sdk<T>(options: sentry::ClientOptions, f: impl FnOnce() -> T) -> T {
    let client = Arc::new(sentry::Client::from(sentry::apply_defaults(options)));
    let hub = Arc::new(sentry::Hub::new(
        Some(client.clone()),
        Arc::new(sentry::Scope::default()),
    ));
    let out = sentry::Hub::run(hub, || {
        sentry::configure_scope(|scope| {
            scope.set_user(Some(sentry::User {
                id: Some("user-77".into()),
                email: Some("bo@example.com".into()),
                ..Default::default()
            }));
            scope.set_tag("queue", "emails");
        });
        sentry::add_breadcrumb(sentry::Breadcrumb {
            category: Some("job".into()),
            message: Some("picked up".into()),
            ..Default::default()
        });
        f()
    });
    assert!(client.flush(Some(Duration::from_secs(10))), "flushed");
    out
}

fn sdk_options(dsn: &str) -> sentry::ClientOptions {
    // ClientOptions is non_exhaustive: start from the defaults and set fields.
    let mut options = sentry::ClientOptions::default();
    options.dsn = Some(dsn.parse().unwrap());
    options.release = Some("mailer@2.0.0".into());
    options.environment = Some("test".into());
    options.attach_stacktrace = true;
    options
}

/// The `sentry` crate: `capture_error` posted as the SDK writes and authenticates it to the real binary;
/// then its envelopes as written, sent twice (stored once) and with a broken item after the
/// event (400, the event stored).
#[tokio::test(flavor = "multi_thread")]
async fn the_rust_sdk_captures_errors_once() {
    let dir = tempfile::tempdir().unwrap();
    let proc = spawn_with(dir.path(), None, true, &[]);
    let c = client();
    let host = proc.base.trim_start_matches("http://").to_owned();
    let dsn = format!("http://{KEY}@{host}/7");

    let kept = Arc::new(Mutex::new(Vec::new()));
    let mut options = sdk_options(&dsn);
    let sink = kept.clone();
    let parsed: sentry::types::Dsn = dsn.parse().unwrap();
    options.transport = Some(Arc::new(move |_: &sentry::ClientOptions| {
        Arc::new(Post {
            dsn: parsed.clone(),
            kept: sink.clone(),
        }) as Arc<dyn sentry::Transport>
    }));
    let id = tokio::task::spawn_blocking(move || with_sdk(options, run_job))
        .await
        .unwrap();
    let stored = records(&c, &proc.base, "sentry-7").await;
    let error = by_id(&stored, &id.to_string());
    assert_eq!(error["level"], "ERROR", "{error}");
    assert_eq!(error["meta"]["error_type"], "MailRefused", "{error}");
    assert_eq!(
        error["message"],
        "MailRefused: mail server refused the message"
    );
    assert_eq!(error["meta"]["release"], "mailer@2.0.0");
    assert_eq!(error["meta"]["tags"]["queue"], "emails");
    assert_eq!(error["meta"]["sdk"]["name"], "sentry.rust");
    assert_eq!(error["meta"]["breadcrumbs"][0]["message"], "picked up");
    let user = error["meta"]["user"].as_str().unwrap();
    assert!(
        user.starts_with("u_") && user.len() == 18,
        "re-keyed: {user}"
    );
    let frames = functions(error);
    let at = |name: &str| {
        frames
            .iter()
            .position(|f| f.contains(name))
            .unwrap_or_else(|| panic!("{name} in {frames:?}"))
    };
    assert!(
        at("sentry::run_job") < at("sentry::with_sdk"),
        "innermost first: {frames:?}"
    );

    // The envelope as the SDK wrote it, sent again: stored once.
    let envelope = kept.lock().unwrap().pop().expect("an envelope");
    let post = |body: Vec<u8>| {
        c.post(format!("{}/api/7/envelope/", proc.base))
            .header(
                "x-sentry-auth",
                format!("Sentry sentry_key={KEY}, sentry_version=7, sentry_client=test/1"),
            )
            .body(body)
            .send()
    };
    for _ in 0..2 {
        let r = post(envelope.clone()).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap()["id"],
            id.simple().to_string()
        );
    }
    let stored = records(&c, &proc.base, "sentry-7").await;
    by_id(&stored, &id.to_string());

    // A broken item after a good event: 400 naming it, the event stored.
    let envelope = String::from_utf8(envelope).unwrap();
    let fresh = uuid::Uuid::now_v7().simple().to_string();
    let damaged = envelope.replace(&id.simple().to_string(), &fresh)
        + "\n{\"type\":\"attachment\",\"length\":500}\nshort\n";
    let r = post(damaged.into_bytes()).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    let why = body["error"].as_str().unwrap();
    assert!(why.contains("says 500 bytes but only"), "{why}");
    let stored = records(&c, &proc.base, "sentry-7").await;
    by_id(&stored, &fresh);

    assert!(proc.terminate().success());
    assert_nowhere_on_disk(dir.path(), &RAW_USERS);
}

fn envelope(event_id: &str, dsn: Option<&str>, items: &[(&str, Value)]) -> String {
    let mut header = json!({ "event_id": event_id });
    if let Some(dsn) = dsn {
        header["dsn"] = dsn.into();
    }
    let mut out = header.to_string();
    for (kind, payload) in items {
        out.push('\n');
        out.push_str(&json!({ "type": kind }).to_string());
        out.push('\n');
        out.push_str(&payload.to_string());
    }
    out.push('\n');
    out
}

fn event(id: &str, message: &str) -> Value {
    json!({
        "event_id": id,
        "level": "error",
        "platform": "javascript",
        "exception": {"values": [{"type": "TypeError", "value": message,
            "mechanism": {"type": "onerror", "handled": false},
            "stacktrace": {"frames": [
                {"function": "outer", "filename": "https://shop.example/app.js", "lineno": 1, "colno": 10, "in_app": true},
                {"function": "inner", "filename": "https://shop.example/app.js", "lineno": 2, "colno": 20, "in_app": true}
            ]}}]},
        "request": {"url": "https://shop.example/cart?session=abc123&page=2", "headers": {"User-Agent": "Mozilla/5.0"}}
    })
}

/// Keys as SDKs present them, the browser's CORS, items not stored, `/store/`, encodings,
/// and the rate limit's headers, against the router.
#[tokio::test]
async fn keys_items_encodings_and_rate_limits() {
    let s = server().await;
    let post = |path: &str, key_query: bool, headers: &[(&str, &str)], body: Vec<u8>| {
        let uri = if key_query {
            format!("{path}?sentry_key={PUBLIC}&sentry_version=7")
        } else {
            path.to_owned()
        };
        let mut req = Request::post(uri)
            .header("origin", ORIGIN)
            .header("content-type", "text/plain;charset=UTF-8");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(Body::from(body)).unwrap()
    };
    let id = "0123456789abcdef0123456789abcdef";
    let body = envelope(id, None, &[("event", event(id, "x is undefined"))]);
    let (status, headers, answer) = s
        .send(post("/api/1/envelope/", true, &[], body.into_bytes()))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({ "id": id }));
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert!(headers["access-control-expose-headers"].contains("x-sentry-rate-limits"));
    let stored = s.recent("service=ui").await;
    let r = by_id(&stored, id);
    assert_eq!(
        r["event"], "window.onerror",
        "the public key's one service: {r}"
    );
    assert_eq!(r["meta"]["stack"][0]["function"], "inner");
    assert_eq!(r["meta"]["stack"][0]["in_app"], true);
    assert_eq!(
        r["meta"]["url"], "https://shop.example/cart?session=[Filtered]&page=2",
        "scrubbed like every URL"
    );

    // Only the envelope header's DSN names the key; deflate; items not stored alongside.
    let id2 = "11111111111111111111111111111111";
    let dsn = format!("http://{PUBLIC}@localhost/1");
    let body = envelope(
        id2,
        Some(&dsn),
        &[
            ("session", json!({"sid": "s", "status": "ok"})),
            ("event", event(id2, "y is null")),
            ("client_report", json!({"discarded_events": []})),
        ],
    );
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(body.as_bytes()).unwrap();
    let (status, _, answer) = s
        .send(post(
            "/api/1/envelope/",
            false,
            &[("content-encoding", "deflate")],
            z.finish().unwrap(),
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    by_id(&s.recent("service=ui").await, id2);

    // Only items Faultline does not store: accepted.
    let body = envelope(
        "",
        None,
        &[("transaction", json!({})), ("profile", json!({}))],
    );
    let (status, _, _) = s
        .send(post("/api/1/envelope/", true, &[], body.into_bytes()))
        .await;
    assert_eq!(status, 200);

    // The legacy store endpoint with X-Sentry-Auth; the secret key names two services, so
    // records go to sentry-<project>, which it may not write.
    let id3 = "22222222222222222222222222222222";
    let auth = format!("Sentry sentry_key={PUBLIC}, sentry_version=7");
    let (status, _, answer) = s
        .send(post(
            "/api/1/store/",
            false,
            &[("x-sentry-auth", &auth)],
            event(id3, "z").to_string().into_bytes(),
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    by_id(&s.recent("service=ui").await, id3);
    let req = Request::post("/api/9/store/")
        .header("x-sentry-auth", format!("Sentry sentry_key={SECRET}"))
        .body(Body::from(event(id3, "z").to_string()))
        .unwrap();
    let (status, _, answer) = s.send(req).await;
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("sentry-9"),
        "{answer}"
    );

    // No key at all; an unreadable envelope header.
    let req = Request::post("/api/1/envelope/")
        .body(Body::from(envelope(id, None, &[])))
        .unwrap();
    assert_eq!(s.send(req).await.0, 401);
    let (status, _, answer) = s
        .send(post("/api/1/envelope/", true, &[], b"not json\n".to_vec()))
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("envelope header"),
        "{answer}"
    );

    // The public key's burst (5 records) runs out: 429 with what SDKs read.
    let mut limited = None;
    for n in 0..20 {
        let id = format!("{n:032x}");
        let body = envelope(&id, None, &[("event", event(&id, "again"))]);
        let (status, headers, _) = s
            .send(post("/api/1/envelope/", true, &[], body.into_bytes()))
            .await;
        if status == 429 {
            limited = Some(headers);
            break;
        }
    }
    let headers = limited.expect("rate limited within 20 events");
    let retry = &headers["retry-after"];
    assert_eq!(headers["x-sentry-rate-limits"], format!("{retry}::key"));
}
