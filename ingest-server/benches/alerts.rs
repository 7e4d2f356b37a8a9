//! Alert latency benchmark: from the record that crosses a threshold to the notification
//! arriving at a webhook receiver, against the release `faultline` binary on loopback.
//!
//! Run with `cargo xtask bench alerts` (or `cargo bench -p faultline-server --bench alerts
//! -- --firings 100`). The rule is a threshold of 5 ERROR records per user within a minute,
//! grouped by `meta.user`, notifying a webhook served by this process. Each firing sends
//! four records for a fresh user, then times the fifth: from just before its POST to the
//! webhook request arriving (the whole path: HTTP, validation, fsync and 202, the
//! evaluator's queue, the decision, the state written to disk, and the webhook POST).
//!
//! Two runs: an idle server, and one also taking a steady background of records that no
//! rule reads (so the hot path's "no rule wants this" check and the disk are busy). It
//! prints a Markdown table; nothing is asserted about speed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;

use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};

const KEY: &str = "sk_bench_alerts";
const SALT: &str = "bench-salt";

/// Webhook arrivals by user.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn receive(State(arrivals): State<Arrivals>, body: axum::body::Bytes) -> &'static str {
    let at = Instant::now();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if body["event"] == "firing"
        && let Some(user) = body["labels"]["meta.user"].as_str()
    {
        arrivals.lock().unwrap().insert(user.to_owned(), at);
    }
    "ok"
}

fn firings() -> usize {
    let mut it = std::env::args().skip(1);
    let mut n = 100;
    while let Some(a) = it.next() {
        if a == "--firings" {
            n = it.next().and_then(|v| v.parse().ok()).unwrap_or(100);
        }
    }
    n
}

fn record(service: &str, level: &str, user: &str) -> Value {
    json!({
        "ts": faultline_schema::Timestamp::now().to_string(),
        "service": service,
        "level": level,
        "event": "request_failed",
        "message": "upstream timed out after 30s",
        "meta": { "user": user, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736" },
    })
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Run {
    /// Record POST to webhook arrival, ms.
    total: Vec<f64>,
    /// 202 received to webhook arrival, ms (the evaluator's part).
    after_ack: Vec<f64>,
    background: u64,
    seconds: f64,
}

async fn run(base: &str, arrivals: &Arrivals, firings: usize, label: &str, load: bool) -> Run {
    let client = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let background = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut loaders = Vec::new();
    if load {
        for _ in 0..4 {
            let (client, base, stop, background) = (
                client.clone(),
                base.to_owned(),
                stop.clone(),
                background.clone(),
            );
            loaders.push(tokio::spawn(async move {
                let batch: Vec<Value> = (0..100)
                    .map(|_| record("worker", "INFO", "u_0000000000000000"))
                    .collect();
                let body = serde_json::to_vec(&batch).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let r = client
                        .post(format!("{base}/logs/ingest"))
                        .bearer_auth(KEY)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    if r.is_ok_and(|r| r.status() == 202) {
                        background.fetch_add(100, Ordering::Relaxed);
                    }
                }
            }));
        }
    }
    let started = Instant::now();
    let mut total = Vec::new();
    let mut after_ack = Vec::new();
    for i in 0..firings {
        let user = faultline_schema::anonymize_user(SALT, format!("{label}-{i}"));
        let four: Vec<Value> = (0..4).map(|_| record("api", "ERROR", &user)).collect();
        let r = client
            .post(format!("{base}/logs/ingest"))
            .bearer_auth(KEY)
            .json(&four)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        // The server re-keys meta.user; the webhook reports the stored id, so match on
        // arrival order instead: nothing else fires while this loop waits.
        arrivals.lock().unwrap().clear();
        let sent = Instant::now();
        let r = client
            .post(format!("{base}/logs/ingest"))
            .bearer_auth(KEY)
            .json(&json!([record("api", "ERROR", &user)]))
            .send()
            .await
            .unwrap();
        let acked = Instant::now();
        assert_eq!(r.status(), 202);
        let deadline = Instant::now() + Duration::from_secs(10);
        let arrived = loop {
            if let Some(at) = arrivals.lock().unwrap().values().next().copied() {
                break at;
            }
            assert!(Instant::now() < deadline, "no notification for firing {i}");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        total.push((arrived - sent).as_secs_f64() * 1000.0);
        after_ack.push(arrived.saturating_duration_since(acked).as_secs_f64() * 1000.0);
    }
    let seconds = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        let _ = l.await;
    }
    total.sort_by(f64::total_cmp);
    after_ack.sort_by(f64::total_cmp);
    Run {
        total,
        after_ack,
        background: background.load(Ordering::Relaxed),
        seconds,
    }
}

fn main() {
    let firings = firings();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let arrivals: Arrivals = Arc::default();
    let hook = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(arrivals.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("faultline.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[alerts.channels.hook]
kind = "webhook"
url = "{hook}"

[alerts.rules.user_errors]
kind = "threshold"
filter = {{ service = "api", level = "ERROR" }}
group_by = "meta.user"
window = "1m"
threshold = 5
actions = ["hook"]
"#
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let mut server = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env_remove("DATABASE_URL")
        .env("FAULTLINE_LOG", "warn")
        .env("FAULTLINE_ADMIN_TOKEN", "bench-admin")
        .env("FAULTLINE_INGEST_KEY", KEY)
        .env("FAULTLINE_USER_SALT", SALT)
        .env("FAULTLINE_HMAC_KEY", "bench-hmac")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the faultline binary");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    let (idle, loaded) = rt.block_on(async {
        // Warm up: connections, page cache, the first fsyncs.
        run(&base, &arrivals, 5, "warmup", false).await;
        let idle = run(&base, &arrivals, firings, "idle", false).await;
        let loaded = run(&base, &arrivals, firings, "loaded", true).await;
        (idle, loaded)
    });
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let status = server.wait().unwrap();

    println!(
        "{firings} firings per run; each: 4 records for a new user, then the 5th (the \
         threshold) timed to the webhook's arrival. Server exit: {status}\n"
    );
    println!("| run | firings | p50 ms | p99 ms | max ms | after the 202: p50 ms | p99 ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (label, r) in [
        ("idle server".to_owned(), &idle),
        (
            format!(
                "with {:.0} background records/s (4 connections, batches of 100)",
                loaded.background as f64 / loaded.seconds
            ),
            &loaded,
        ),
    ] {
        println!(
            "| {label} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.total.len(),
            pct(&r.total, 0.5),
            pct(&r.total, 0.99),
            pct(&r.total, 1.0),
            pct(&r.after_ack, 0.5),
            pct(&r.after_ack, 0.99),
        );
    }
    for (label, r) in [("idle", &idle), ("under background ingest", &loaded)] {
        support::load::figure(
            &format!("record to notification, p99, {label}"),
            "ms",
            pct(&r.total, 0.99),
            "lower",
            None,
            Some(1000.0),
        );
    }
}
