//! Router tests: the HTTP contract of every endpoint, with `oneshot` and a real file store.

use std::io::Write;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use faultline_schema::{anonymize_user, rekey_user};
use serde_json::{Value, json};

use crate::common::*;

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn mixed_batch_keeps_good_records_and_reports_bad_ones_by_index() {
    let s = server().await;
    let body = json!([
        record("api", "error", "payment_failed", "card declined"),
        record("api", "LOUD", "x", "bad level"),
        { "service": "api" },
        record("worker", "warn", "slow_job", "took 3s"),
    ]);
    let (status, resp) = s.ingest(body.to_string()).await;
    assert_eq!(status, 202, "{resp}");
    assert_eq!(resp["accepted"], 2);
    let rejected = resp["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["index"], 1);
    assert!(
        rejected[0]["error"]
            .as_str()
            .unwrap()
            .contains("unknown level \"LOUD\"")
    );
    assert_eq!(rejected[1]["index"], 2);
    assert!(
        rejected[1]["error"]
            .as_str()
            .unwrap()
            .contains("ts: is required")
    );

    let records = s.recent("").await;
    assert_eq!(records.len(), 2);
    for r in &records {
        assert!(
            r["id"].as_str().unwrap().len() == 36,
            "server assigned an id: {r}"
        );
        assert!(r["received_at"].is_string());
    }
    let levels: Vec<_> = records
        .iter()
        .map(|r| r["level"].as_str().unwrap())
        .collect();
    assert!(levels.contains(&"ERROR") && levels.contains(&"WARNING"));
}

#[tokio::test]
async fn ndjson_wrapped_and_text_plain_bodies() {
    let s = server().await;
    let line = record("api", "info", "a", "ndjson").to_string();
    let (status, resp) = s.ingest(format!("{line}\n\n{line}\n")).await;
    assert_eq!((status, resp["accepted"].as_u64()), (202, Some(2)));

    let wrapped = json!({ "records": [record("api", "info", "b", "wrapped")] });
    let (status, resp) = s.ingest(wrapped.to_string()).await;
    assert_eq!((status, resp["accepted"].as_u64()), (202, Some(1)));

    let req = Request::post("/logs/ingest?key=".to_owned() + SECRET)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(Body::from(
            json!([record("api", "info", "c", "beacon")]).to_string(),
        ))
        .unwrap();
    let (status, _, resp) = s.send(req).await;
    assert_eq!(
        (status, resp["accepted"].as_u64()),
        (202, Some(1)),
        "{resp}"
    );
    assert_eq!(s.recent("").await.len(), 4);
}

#[tokio::test]
async fn gzip_by_header_and_by_magic_bytes() {
    let s = server().await;
    let body = gzip(
        json!([record("api", "info", "gz", "zipped")])
            .to_string()
            .as_bytes(),
    );
    let req = Request::post("/logs/ingest")
        .header("x-faultline-key", SECRET)
        .header("content-encoding", "gzip")
        .body(Body::from(body.clone()))
        .unwrap();
    let (status, _, resp) = s.send(req).await;
    assert_eq!(
        (status, resp["accepted"].as_u64()),
        (202, Some(1)),
        "{resp}"
    );
    // sendBeacon cannot set Content-Encoding: the gzip magic bytes are enough.
    let (status, resp) = s.ingest(body).await;
    assert_eq!(
        (status, resp["accepted"].as_u64()),
        (202, Some(1)),
        "{resp}"
    );
}

#[tokio::test]
async fn gzip_bomb_is_413_without_inflating_it_all() {
    let s = server().await;
    // 64 MiB of zeros compress to about 64 KiB; the decompressed limit is 20 MiB.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..64 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 200_000);
    let req = Request::post("/logs/ingest")
        .header("authorization", format!("Bearer {SECRET}"))
        .header("content-encoding", "gzip")
        .body(Body::from(bomb))
        .unwrap();
    let (status, _, resp) = s.send(req).await;
    assert_eq!(status, 413, "{resp}");
    assert!(
        resp["error"]
            .as_str()
            .unwrap()
            .contains("inflates to more than")
    );
    let (status, _, _) = s
        .send(
            Request::post("/logs/ingest")
                .header("authorization", format!("Bearer {SECRET}"))
                .header("content-encoding", "gzip")
                .body(Body::from(b"\x1f\x8bnot gzip".to_vec()))
                .unwrap(),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn oversized_bodies_are_413_by_declared_and_by_actual_length() {
    let s = server_with(|c| c.limits.max_body_bytes = 1000).await;
    let big = json!([record("api", "info", "big", &"x".repeat(2000))]).to_string();
    let (status, resp) = s.ingest(big.clone()).await;
    assert_eq!(status, 413, "{resp}");
    // No Content-Length (a stream): caught while reading.
    let stream = futures_stream(big.into_bytes());
    let (status, resp) = s.ingest(Body::from_stream(stream)).await;
    assert_eq!(status, 413, "{resp}");
}

fn futures_stream(
    bytes: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(100).map(|c| Ok(c.to_vec())).collect();
    tokio_stream::iter(chunks)
}

#[tokio::test]
async fn too_many_records_is_413() {
    let s = server_with(|c| c.limits.max_batch_records = 3).await;
    let body = json!(vec![record("api", "info", "e", "m"); 4]);
    let (status, resp) = s.ingest(body.to_string()).await;
    assert_eq!(status, 413, "{resp}");
    assert!(
        resp["error"]
            .as_str()
            .unwrap()
            .contains("more than 3 records")
    );
}

#[tokio::test]
async fn keys_missing_unknown_admin_and_wrong_service() {
    let s = server().await;
    let body = json!([record("api", "info", "e", "m")]).to_string();
    let post = |auth: Option<&str>| {
        let mut r = Request::post("/logs/ingest");
        if let Some(a) = auth {
            r = r.header("authorization", format!("Bearer {a}"));
        }
        r.body(Body::from(body.clone())).unwrap()
    };
    let (status, _, resp) = s.send(post(None)).await;
    assert_eq!(status, 401);
    assert!(
        resp["error"].as_str().unwrap().contains("X-Faultline-Key"),
        "{resp}"
    );
    assert_eq!(s.send(post(Some("nope"))).await.0, 401);
    assert_eq!(
        s.send(post(Some(ADMIN))).await.0,
        401,
        "the admin token cannot ingest"
    );

    // A secret key for api/worker writing for ui: that record alone is rejected...
    let mixed = json!([
        record("api", "info", "e", "ok"),
        record("ui", "info", "e", "not yours")
    ]);
    let (status, resp) = s.ingest(mixed.to_string()).await;
    assert_eq!(status, 202);
    assert_eq!(resp["accepted"], 1);
    assert_eq!(resp["rejected"][0]["index"], 1);
    assert!(
        resp["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("may not write")
    );
    // ...and a batch entirely for another service is 403.
    let (status, _) = s
        .ingest(json!([record("ui", "info", "e", "m")]).to_string())
        .await;
    assert_eq!(status, 403);

    // Reading needs the admin token; an ingest key gets 403.
    let read = |key: &str| {
        Request::get("/logs/recent")
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(s.send(read(SECRET)).await.0, 403);
    assert_eq!(s.send(read("nope")).await.0, 401);
    assert_eq!(s.send(read(ADMIN)).await.0, 200);
}

#[tokio::test]
async fn public_key_only_from_its_origins_with_cors_and_preflight() {
    let s = server().await;
    let body = json!([record("ui", "error", "window.onerror", "boom")]).to_string();
    let post = |origin: Option<&str>| {
        let mut r = Request::post("/logs/ingest").header("x-faultline-key", PUBLIC);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.body(Body::from(body.clone())).unwrap()
    };
    let (status, headers, _) = s.send(post(Some(ORIGIN))).await;
    assert_eq!(status, 202);
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .map(String::as_str),
        Some(ORIGIN)
    );
    let (status, headers, resp) = s.send(post(Some("https://evil.example"))).await;
    assert_eq!(status, 403, "{resp}");
    assert!(!headers.contains_key("access-control-allow-origin"));
    assert_eq!(
        s.send(post(None)).await.0,
        403,
        "public keys are for browsers"
    );

    let preflight = |origin: &str| {
        Request::options("/logs/ingest")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, x-faultline-key",
            )
            .body(Body::empty())
            .unwrap()
    };
    let (status, headers, _) = s.send(preflight(ORIGIN)).await;
    assert_eq!(status, 204);
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert!(headers["access-control-allow-headers"].contains("x-faultline-key"));
    assert_eq!(s.send(preflight("https://evil.example")).await.0, 403);
}

/// `n` records for `ui` with the panel key, from its origin. The key allows a burst of 5
/// records, then 1 per second.
fn panel_batch(n: usize) -> Request<Body> {
    Request::post("/logs/ingest")
        .header("x-faultline-key", PUBLIC)
        .header("origin", ORIGIN)
        .body(Body::from(
            json!(vec![record("ui", "info", "e", "m"); n]).to_string(),
        ))
        .unwrap()
}

#[tokio::test]
async fn rate_limit_is_429_with_retry_after() {
    let s = server().await;
    assert_eq!(s.send(panel_batch(4)).await.0, 202);
    let (status, headers, resp) = s.send(panel_batch(4)).await;
    assert_eq!(status, 429, "{resp}");
    let retry: u64 = headers["retry-after"].parse().unwrap();
    assert!((1..=5).contains(&retry), "{retry}");
    assert_eq!(resp["detail"]["retry_after_seconds"], retry);
}

/// A server whose secret key has a burst of `burst` records and refills a token an hour.
async fn slow_bucket(
    burst: f64,
    tweak: impl FnOnce(&mut faultline_server::config::Config),
) -> TestServer {
    server_with(|c| {
        c.limits.secret_key_rate = faultline_server::config::RateLimit {
            records_per_second: 1.0 / 3600.0,
            burst,
        };
        tweak(c);
    })
    .await
}

/// Issue 21: requests the server refuses, or whose records it rejects, made it work too;
/// each is charged to its key (at least one token, or the records it held, or its bytes),
/// so a key cannot make the server work for free. Good requests pay as before.
#[tokio::test]
async fn refused_and_rejected_requests_are_charged_to_their_key() {
    let good = || json!([record("api", "info", "e", "m")]).to_string();
    // Three bodies that are not JSON, one token each, spend a burst of three.
    let s = slow_bucket(3.0, |_| {}).await;
    for _ in 0..3 {
        assert_eq!(s.ingest("not json").await.0, 400);
    }
    let (status, resp) = s.ingest(good()).await;
    assert_eq!(status, 429, "three 400s spent the burst: {resp}");

    // A batch whose three records are all rejected costs three tokens.
    let s = slow_bucket(3.0, |_| {}).await;
    let (status, resp) = s.ingest(json!([{}, {}, {}]).to_string()).await;
    assert_eq!((status, &resp["accepted"]), (202, &json!(0)), "{resp}");
    assert_eq!(s.ingest(good()).await.0, 429, "all rejected, all charged");

    // Too many records: the records counted before the refusal (the limit and one).
    let s = slow_bucket(4.0, |c| c.limits.max_batch_records = 3).await;
    let (status, _) = s
        .ingest(json!(vec![record("api", "info", "e", "m"); 10]).to_string())
        .await;
    assert_eq!(status, 413);
    assert_eq!(s.ingest(good()).await.0, 429, "4 tokens charged for a 413");

    // A body too large, sent without a length: the bytes read, one token per
    // max_decompressed_bytes / max_batch_records (here 100) bytes.
    let s = slow_bucket(5.0, |c| {
        c.limits.max_body_bytes = 1000;
        c.limits.max_decompressed_bytes = 1000;
        c.limits.max_batch_records = 10;
    })
    .await;
    let (status, _) = s
        .ingest(Body::from_stream(futures_stream(vec![b' '; 1500])))
        .await;
    assert_eq!(status, 413);
    assert_eq!(s.ingest(good()).await.0, 429, "1,100 bytes read: 11 tokens");

    // Good requests pay one token per record, as before: a burst of three takes three.
    let s = slow_bucket(3.0, |_| {}).await;
    let three = json!(vec![record("api", "info", "e", "m"); 3]).to_string();
    assert_eq!(s.ingest(three).await.0, 202);
    assert_eq!(s.ingest(good()).await.0, 429);
}

/// Issue 21: the bodies the server holds at once are bounded (`limits.max_in_flight_bytes`):
/// while requests that have not finished sending hold the budget, another is answered 503
/// with `Retry-After`; once they are gone, it is taken.
#[tokio::test]
async fn a_full_in_flight_budget_is_503_with_retry_after() {
    // Room for five bodies at the 5 MiB limit and change.
    let s = server_with(|c| c.limits.max_in_flight_bytes = 26 << 20).await;
    let declared = (5u64 << 20).to_string();
    let stalled: Vec<_> = (0..5)
        .map(|_| {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
            let req = Request::post("/logs/ingest")
                .header("authorization", format!("Bearer {SECRET}"))
                .header("content-length", &declared)
                .body(Body::from_stream(
                    tokio_stream::wrappers::ReceiverStream::new(rx),
                ))
                .unwrap();
            let app = faultline_server::app(s.state.clone());
            // The sender is kept: the body never ends.
            (
                tx,
                tokio::spawn(async move { tower::ServiceExt::oneshot(app, req).await }),
            )
        })
        .collect();
    let five_mib = || {
        Request::post("/logs/ingest")
            .header("authorization", format!("Bearer {SECRET}"))
            .header("content-length", &declared)
            .body(Body::from(vec![b' '; 5 << 20]))
            .unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (status, headers, resp) = loop {
        let answer = s.send(five_mib()).await;
        if answer.0 == 503 || std::time::Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 503, "{resp}");
    assert!(resp["error"].as_str().unwrap().contains("retry"), "{resp}");
    assert_eq!(headers["retry-after"], "1");
    for (tx, task) in stalled {
        task.abort();
        drop(tx);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, _, resp) = s.send(five_mib()).await;
    assert_eq!(
        status, 400,
        "read whole once there is room (and all blank): {resp}"
    );
}

#[tokio::test]
async fn content_type_and_encoding_are_checked() {
    let s = server().await;
    let req = |ct: &str, ce: Option<&str>| {
        let mut r = Request::post("/logs/ingest")
            .header("authorization", format!("Bearer {SECRET}"))
            .header("content-type", ct);
        if let Some(ce) = ce {
            r = r.header("content-encoding", ce);
        }
        r.body(Body::from(
            json!([record("api", "info", "e", "m")]).to_string(),
        ))
        .unwrap()
    };
    let (status, _, resp) = s.send(req("application/x-www-form-urlencoded", None)).await;
    assert_eq!(status, 415);
    assert!(resp["error"].as_str().unwrap().contains("application/json"));
    let (status, _, resp) = s.send(req("application/json", Some("zstd"))).await;
    assert_eq!(status, 415, "{resp}");
    assert!(resp["error"].as_str().unwrap().contains("gzip"), "{resp}");
    // br is taken (Sentry's Python SDK sends it): a body that is not brotli is a 400.
    let (status, _, resp) = s.send(req("application/json", Some("br"))).await;
    assert_eq!(status, 400, "{resp}");
    assert_eq!(s.send(req("application/x-ndjson", None)).await.0, 202);
}

#[tokio::test]
async fn malformed_bodies_get_a_clear_400() {
    let s = server().await;
    for body in ["{\"ts\": ", "hello", "", "[1,2"] {
        let (status, resp) = s.ingest(body.to_owned()).await;
        assert_eq!(status, 400, "{body:?}: {resp}");
        let error = resp["error"].as_str().unwrap();
        assert!(error.contains("JSON") || error.contains("empty"), "{error}");
        assert!(resp.get("detail").is_some());
    }
    // Invalid UTF-8 and deep nesting in one NDJSON line reject that line only.
    let good = record("api", "info", "e", "kept").to_string();
    let mut body = format!("{good}\n{}\n", "[".repeat(10_000)).into_bytes();
    body.extend_from_slice(b"{\"message\": \"\xff\"}\n");
    body.extend_from_slice(good.as_bytes());
    let (status, resp) = s.ingest(body).await;
    assert_eq!(status, 202, "{resp}");
    assert_eq!(resp["accepted"], 2);
    assert_eq!(resp["rejected"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn replayed_batch_with_client_ids_is_stored_once() {
    let s = server().await;
    let batch: Vec<Value> = (0..5)
        .map(|i| {
            let mut r = record("api", "error", "e", &format!("m{i}"));
            r["id"] = json!(format!("0190a8f4-5b1c-7cc0-9a6b-1d2e3f40516{i}"));
            r
        })
        .collect();
    let (_, first) = s.ingest(json!(batch).to_string()).await;
    assert_eq!(
        (first["accepted"].as_u64(), first["duplicates"].as_u64()),
        (Some(5), Some(0))
    );
    let (status, second) = s.ingest(json!(batch).to_string()).await;
    assert_eq!(status, 202);
    assert_eq!(
        (second["accepted"].as_u64(), second["duplicates"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(s.recent("").await.len(), 5);
}

#[tokio::test]
async fn user_ids_are_rekeyed_and_queryable_by_stored_or_raw_id() {
    let s = server().await;
    let client_side = anonymize_user(SALT, "alice@example.com");
    let mut r = record("api", "error", "e", "for alice");
    r["meta"] = json!({ "user": client_side });
    s.ingest(json!([r, record("api", "error", "e", "nobody")]).to_string())
        .await;
    let stored = rekey_user(HMAC, &client_side);
    let records = s.recent(&format!("user={stored}")).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["meta"]["user"], stored.as_str());
    assert_ne!(stored, client_side, "the client-side id is never stored");
    let records = s.recent("raw_user=alice@example.com").await;
    assert_eq!(records.len(), 1);
}

#[tokio::test]
async fn recent_filters_order_and_limits() {
    let s = server().await;
    let mut batch = Vec::new();
    for (i, (service, level, event)) in [
        ("api", "DEBUG", "tick"),
        ("api", "ERROR", "payment_failed"),
        ("worker", "CRITICAL", "behavior_engine"),
        ("worker", "INFO", "heartbeat"),
        ("api", "WARNING", "slow"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = record(service, level, event, &format!("Message number {i}"));
        r["ts"] = json!(format!("2026-07-01T12:00:0{i}.000Z"));
        batch.push(r);
    }
    s.ingest(json!(batch).to_string()).await;

    let all = s.recent("").await;
    let ts: Vec<_> = all
        .iter()
        .map(|r| r["ts"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = ts.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ts, sorted, "newest first");

    assert_eq!(s.recent("level=error").await.len(), 2, "ERROR or worse");
    assert_eq!(s.recent("service=worker").await.len(), 2);
    assert_eq!(s.recent("event=heartbeat").await.len(), 1);
    assert_eq!(s.recent("q=NUMBER%203").await.len(), 1);
    assert_eq!(
        s.recent("since=2026-07-01T12:00:01Z&until=2026-07-01T12:00:03Z")
            .await
            .len(),
        2
    );
    assert_eq!(s.recent("limit=2").await.len(), 2);
    for bad in [
        "limit=0",
        "limit=1001",
        "level=loud",
        "since=yesterday",
        "colour=red",
    ] {
        let (status, body) = s.get(&format!("/logs/recent?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string());
    }
}

#[tokio::test]
async fn stats_count_per_minute_service_and_level() {
    let s = server().await;
    let now = faultline_schema::Timestamp::now().to_string();
    let mut batch = Vec::new();
    for (service, level) in [("api", "ERROR"), ("api", "ERROR"), ("worker", "INFO")] {
        let mut r = record(service, level, "e", "m");
        r["ts"] = json!(now);
        batch.push(r);
    }
    s.ingest(json!(batch).to_string()).await;
    let (status, stats) = s.get("/logs/stats?window=15m").await;
    assert_eq!(status, 200, "{stats}");
    let totals = stats["totals"].as_array().unwrap();
    let api = totals
        .iter()
        .find(|t| t["service"] == "api" && t["level"] == "ERROR")
        .unwrap();
    assert_eq!(api["count"], 2);
    assert_eq!(stats["step"], "1m");
    for bad in [
        "window=400d",
        "window=2d&step=1m",
        "window=1h&step=5m",
        "window=1h&step=1m&group_by=event",
        "group_by=host",
        "group_by=level,level",
    ] {
        let (status, body) = s.get(&format!("/logs/stats?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

/// Past 24 hours, or grouped, the counts come per hour from the rollups.
#[tokio::test]
async fn stats_past_a_day_come_per_hour_grouped_as_asked() {
    let s = server().await;
    let now = faultline_schema::Timestamp::now().unix_millis();
    let mut batch = Vec::new();
    for (age_h, event, release) in [
        (0, "a", "1.0"),
        (0, "a", "1.0"),
        (50, "b", "2.0"),
        (50, "a", ""),
    ] {
        let mut r = record("api", "ERROR", event, "m");
        r["ts"] = json!(
            faultline_schema::Timestamp::from_unix_millis(now - age_h * 3_600_000).to_string()
        );
        if !release.is_empty() {
            r["meta"] = json!({"release": release});
        }
        batch.push(r);
    }
    s.ingest(json!(batch).to_string()).await;
    let (status, stats) = s.get("/logs/stats?window=7d").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["step"], "1h");
    assert_eq!(stats["group_by"], json!(["service", "level"]));
    assert_eq!(stats["buckets"].as_array().unwrap().len(), 2, "{stats}");
    assert_eq!(
        stats["totals"],
        json!([{"service": "api", "level": "ERROR", "count": 4}])
    );
    let (status, stats) = s.get("/logs/stats?window=30d&group_by=event,release").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        stats["totals"],
        json!([
            {"event": "a", "release": "", "count": 1},
            {"event": "a", "release": "1.0", "count": 2},
            {"event": "b", "release": "2.0", "count": 1}
        ])
    );
    let (_, day) = s.get("/logs/stats?window=24h&group_by=event").await;
    assert_eq!(day["step"], "1h");
    assert_eq!(day["totals"], json!([{"event": "a", "count": 2}]));
}

#[tokio::test]
async fn health_ready_metrics_and_not_found() {
    let s = server().await;
    let (status, body) = s.get("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = s.get("/readyz").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ready")),
        "{body}"
    );
    s.ingest(json!([record("api", "info", "e", "m"), {"bad": 1}]).to_string())
        .await;
    let (status, text) = s.get("/metrics").await;
    assert_eq!(status, 200);
    let text = text.as_str().unwrap();
    assert!(
        text.contains("faultline_ingest_records_accepted_total"),
        "{text}"
    );
    assert!(text.contains("faultline_ingest_records_rejected_total{reason=\"missing\"}"));
    assert!(text.contains("faultline_sink_queue_capacity"));
    // Off the API prefixes an unknown path is the dashboard's (index.html once www/dist is
    // built): ask under /logs/ for the API's own 404.
    let (status, body) = s.get("/logs/nope").await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn a_stalled_body_gets_408() {
    let s = server_with(|c| {
        c.limits.request_timeout = faultline_server::HumanDuration(Duration::from_millis(200));
    })
    .await;
    let stalled = tokio_stream::pending::<Result<Vec<u8>, std::io::Error>>();
    let (status, resp) = s.ingest(Body::from_stream(stalled)).await;
    assert_eq!(status, 408, "{resp}");
    assert!(resp["error"].as_str().unwrap().contains("timed out"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_ingest_queue_is_503_with_retry_after_and_loses_nothing_acknowledged() {
    let s = std::sync::Arc::new(server_with(|c| c.limits.ingest_queue_batches = 1).await);
    let mut tasks = Vec::new();
    for t in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let batch: Vec<Value> = (0..50)
                .map(|i| {
                    let mut r = record("api", "info", "flood", &format!("{t}-{i}"));
                    r["id"] = json!(uuid::Uuid::now_v7().to_string());
                    r
                })
                .collect();
            let req = Request::post("/logs/ingest")
                .header("authorization", format!("Bearer {SECRET}"))
                .body(Body::from(json!(batch).to_string()))
                .unwrap();
            let (status, headers, _) = s.send(req).await;
            (status, headers.get("retry-after").cloned(), batch)
        }));
    }
    let mut accepted = 0;
    let mut refused = 0;
    for t in tasks {
        let (status, retry_after, batch) = t.await.unwrap();
        match status {
            202 => accepted += batch.len(),
            503 => {
                refused += 1;
                assert!(retry_after.is_some(), "503 without Retry-After");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        refused > 0,
        "64 concurrent batches never filled a one-batch queue"
    );
    let query = faultline_store::Query {
        event: Some("flood".into()),
        ..Default::default()
    };
    let stored = s.state.store.scan(query, 100_000).await.unwrap();
    assert_eq!(
        stored.len(),
        accepted,
        "exactly the acknowledged records are stored"
    );
}

/// Every refused ingest request is counted on `/metrics` by reason and by status (issue 3):
/// 401, 413, 415, 429 and 503. The recorder is shared by every test in this binary, so each
/// counter must have grown by at least what this test caused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_requests_are_counted_by_reason_on_metrics() {
    const REFUSALS: [(&str, u16); 5] = [
        ("unauthorized", 401),
        ("too_large", 413),
        ("unsupported_media_type", 415),
        ("rate_limited", 429),
        ("unavailable", 503),
    ];
    let s = std::sync::Arc::new(
        server_with(|c| {
            c.limits.ingest_queue_batches = 1;
            c.limits.max_batch_records = 100;
        })
        .await,
    );
    let counters = || async {
        let (status, text) = s.get("/metrics").await;
        assert_eq!(status, 200);
        let text = text.as_str().unwrap().to_owned();
        REFUSALS.map(|(reason, status)| {
            let series = |name: &str| metric(&text, name).unwrap_or(0.0);
            (
                series(&format!(
                    "faultline_ingest_requests_rejected_total{{reason=\"{reason}\"}}"
                )),
                series(&format!(
                    "faultline_ingest_requests_total{{status=\"{status}\"}}"
                )),
            )
        })
    };
    let before = counters().await;
    let post = |key: Option<&str>, content_type: &str, records: usize| {
        let mut r = Request::post("/logs/ingest").header("content-type", content_type);
        if let Some(k) = key {
            r = r.header("x-faultline-key", k);
        }
        r.body(Body::from(
            json!(vec![record("api", "info", "e", "m"); records]).to_string(),
        ))
        .unwrap()
    };
    let mut caused = [0u16; 5];
    let mut expect = |i: usize, status: u16| {
        assert_eq!(status, REFUSALS[i].1, "{}", REFUSALS[i].0);
        caused[i] += 1;
    };
    expect(0, s.send(post(None, "application/json", 1)).await.0);
    expect(0, s.send(post(Some("nope"), "application/json", 1)).await.0);
    expect(
        1,
        s.send(post(Some(SECRET), "application/json", 101)).await.0,
    );
    expect(
        2,
        s.send(post(Some(SECRET), "application/x-www-form-urlencoded", 1))
            .await
            .0,
    );
    assert_eq!(s.send(panel_batch(4)).await.0, 202);
    expect(3, s.send(panel_batch(4)).await.0);
    // A one-batch ingest queue under 64 concurrent batches.
    let mut flood = Vec::new();
    for _ in 0..64 {
        let s = s.clone();
        flood.push(tokio::spawn(async move {
            s.send(post(Some(SECRET), "application/json", 50)).await.0
        }));
    }
    for f in flood {
        match f.await.unwrap() {
            202 => {}
            status => expect(4, status),
        }
    }
    assert!(
        caused[4] > 0,
        "64 concurrent batches never filled a one-batch queue"
    );

    let after = counters().await;
    for (i, (reason, status)) in REFUSALS.iter().enumerate() {
        let n = f64::from(caused[i]);
        assert!(
            after[i].0 - before[i].0 >= n,
            "reason {reason}: {} -> {}, caused {n}",
            before[i].0,
            after[i].0
        );
        assert!(
            after[i].1 - before[i].1 >= n,
            "status {status}: {} -> {}, caused {n}",
            before[i].1,
            after[i].1
        );
    }
}
