//! Ingest benchmark: a load generator against the release `faultline` binary on loopback.
//!
//! Run with `cargo xtask bench ingest` (or `cargo bench -p faultline-server --bench ingest
//! -- --seconds 10`). It starts the server on a temp data dir with durable acks (the only
//! mode there is), then:
//!
//! 1. closed loop at batch sizes 1, 10 and 100: every connection sends its next request as
//!    soon as the previous one is answered; reports records/s, MB/s and latency;
//! 2. open loop at half the batch-100 rate: requests go out on a fixed schedule and latency
//!    is measured from the scheduled time, so a slow response cannot hide the queue it
//!    causes (no coordinated omission).
//!
//! The loader speaks raw HTTP/1.1 on keep-alive connections from one thread, so that as
//! much of the machine as possible is left to the server. It prints a Markdown table.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "sk_bench";

struct Args {
    seconds: u64,
    connections: usize,
    batches: Vec<usize>,
    /// A PostgreSQL superuser URL: the server then stores to a fresh database there.
    database_url: Option<String>,
    /// `unnest` or `copy`.
    pg_method: String,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 10,
        connections: 64,
        batches: vec![1, 10, 100],
        database_url: None,
        pg_method: "unnest".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => a.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(10),
            "--connections" => {
                a.connections = it.next().and_then(|v| v.parse().ok()).unwrap_or(64);
            }
            "--batches" => {
                a.batches = it
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|b| b.parse().ok())
                    .collect();
            }
            "--database-url" => a.database_url = it.next(),
            "--pg-method" => a.pg_method = it.next().unwrap_or_default(),
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

/// A realistic record of about 300 bytes, varied so the store is not writing one line.
fn record(i: usize) -> String {
    const SERVICES: [&str; 3] = ["api", "worker", "ui"];
    const LEVELS: [&str; 4] = ["INFO", "WARNING", "ERROR", "INFO"];
    const EVENTS: [&str; 4] = [
        "payment_failed",
        "job_done",
        "window.onerror",
        "health_check",
    ];
    format!(
        concat!(
            r#"{{"ts":"2026-11-22T14:{:02}:{:02}.{:03}Z","service":"{}","level":"{}","event":"{}","#,
            r#""message":"card declined for order {}: insufficient funds (issuer 05)","#,
            r#""meta":{{"trace_id":"4bf92f3577b34da6a3ce929d0e0e{:04x}","span_id":"00f067aa0ba902b7","#,
            r#""user":"u_3f2a9c0d1b7e{:04x}","release":"api@1.42.0","environment":"production","#,
            r#""url":"/v1/payments","bot_id":{}}}}}"#
        ),
        i % 60,
        (i / 60) % 60,
        i % 1000,
        SERVICES[i % 3],
        LEVELS[i % 4],
        EVENTS[i % 4],
        100_000 + i,
        i % 65536,
        i % 65536,
        i % 97
    )
}

/// Pre-built requests for one batch size (several variants, rotated).
fn requests(batch: usize) -> Vec<Vec<u8>> {
    (0..16)
        .map(|v| {
            let records: Vec<String> = (0..batch).map(|i| record(v * batch + i)).collect();
            let body = format!("[{}]", records.join(","));
            let mut req = format!(
                "POST /logs/ingest HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {KEY}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            req.extend_from_slice(body.as_bytes());
            req
        })
        .collect()
}

/// Sends one request and reads the whole response; returns the status.
async fn round_trip(stream: &mut TcpStream, req: &[u8], buf: &mut Vec<u8>) -> std::io::Result<u16> {
    stream.write_all(req).await?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
            let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(status);
        }
    }
}

#[derive(Default)]
struct Outcome {
    records: u64,
    bytes: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    elapsed: Duration,
}

/// Runs `connections` loops for `duration`. With `rate` set (records/s in total), requests
/// follow a schedule and latency counts from the scheduled time.
async fn load(
    addr: &str,
    batch: usize,
    connections: usize,
    duration: Duration,
    rate: Option<f64>,
) -> Outcome {
    let reqs = std::sync::Arc::new(requests(batch));
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let reqs = reqs.clone();
        let addr = addr.to_owned();
        tasks.push(tokio::task::spawn_local(async move {
            let mut out = Outcome::default();
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut buf = Vec::with_capacity(8192);
            let interval =
                rate.map(|r| Duration::from_secs_f64(connections as f64 * batch as f64 / r));
            let offset =
                interval.map_or(Duration::ZERO, |i| i.mul_f64(c as f64 / connections as f64));
            tokio::time::sleep_until((start + offset).into()).await;
            let mut k: u32 = 0;
            loop {
                let scheduled = match interval {
                    Some(i) => start + offset + i * k,
                    None => Instant::now(),
                };
                if scheduled >= end {
                    break;
                }
                if interval.is_some() {
                    tokio::time::sleep_until(scheduled.into()).await;
                }
                let req = &reqs[(c + k as usize) % reqs.len()];
                match round_trip(&mut stream, req, &mut buf).await {
                    Ok(202) => {
                        out.records += batch as u64;
                        out.bytes += req.len() as u64;
                        let us = scheduled.elapsed().as_micros().min(u32::MAX as u128) as u32;
                        out.latencies_us.push(us);
                    }
                    Ok(_) => out.errors += 1,
                    Err(_) => {
                        out.errors += 1;
                        stream = TcpStream::connect(&addr).await.unwrap();
                    }
                }
                k += 1;
            }
            out
        }));
    }
    let mut total = Outcome::default();
    for t in tasks {
        let o = t.await.unwrap();
        total.records += o.records;
        total.bytes += o.bytes;
        total.errors += o.errors;
        total.latencies_us.extend(o.latencies_us);
    }
    total.elapsed = duration;
    total.latencies_us.sort_unstable();
    total
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn row(label: &str, batch: usize, o: &Outcome) -> String {
    let secs = o.elapsed.as_secs_f64();
    format!(
        "| {label} | {batch} | {:.0} | {:.1} | {:.2} | {:.2} | {:.2} | {} |",
        o.records as f64 / secs,
        o.bytes as f64 / secs / 1e6,
        pct(&o.latencies_us, 0.5),
        pct(&o.latencies_us, 0.99),
        pct(&o.latencies_us, 1.0),
        o.errors
    )
}

/// A fresh database on the cluster at `base` (a superuser URL).
fn fresh_db(rt: &tokio::runtime::Runtime, base: &str) -> String {
    use sqlx::Connection;
    let name = format!("bench_{}", uuid::Uuid::now_v7().simple());
    rt.block_on(async {
        let mut admin = sqlx::PgConnection::connect(base).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
    });
    format!("{}/{name}", base.rsplit_once('/').unwrap().0)
}

fn main() {
    let args = args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let database = args.database_url.as_deref().map(|base| fresh_db(&rt, base));
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_faultline"));
    if let Some(url) = &database {
        server
            .env("DATABASE_URL", url)
            .env("FAULTLINE_POSTGRES_WRITE_METHOD", &args.pg_method)
            .env("FAULTLINE_POSTGRES_POOL_SIZE", "16")
            .env("FAULTLINE_POSTGRES_WRITE_TIMEOUT", "30s");
    } else {
        server.env_remove("DATABASE_URL");
    }
    let mut server = server
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("FAULTLINE_CONFIG")
        .env("FAULTLINE_LOG", "warn")
        .env("FAULTLINE_ADMIN_TOKEN", "bench-admin")
        .env("FAULTLINE_INGEST_KEY", KEY)
        .env(
            "FAULTLINE_LIMITS_SECRET_KEY_RATE_RECORDS_PER_SECOND",
            "1e12",
        )
        .env("FAULTLINE_LIMITS_SECRET_KEY_RATE_BURST", "1e12")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the faultline binary");
    let stdout = server.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    let local = tokio::task::LocalSet::new();
    let duration = Duration::from_secs(args.seconds);
    let mut rows = Vec::new();
    let mut rate_at_100 = None;
    local.block_on(&rt, async {
        // Warm up: page cache, allocator, connection setup.
        load(&addr, 10, args.connections, Duration::from_secs(1), None).await;
        for &batch in &args.batches {
            let o = load(&addr, batch, args.connections, duration, None).await;
            eprintln!(
                "batch {batch}: {:.0} records/s",
                o.records as f64 / duration.as_secs_f64()
            );
            if batch == 100 {
                rate_at_100 = Some(o.records as f64 / duration.as_secs_f64());
            }
            rows.push(row("max throughput (closed loop)", batch, &o));
        }
        if let Some(rate) = rate_at_100 {
            let o = load(&addr, 100, args.connections, duration, Some(rate / 2.0)).await;
            rows.push(row(
                &format!("open loop at {:.0} records/s (half of max)", rate / 2.0),
                100,
                &o,
            ));
        }
    });
    let spool = local.block_on(&rt, async {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let mut buf = Vec::new();
        let req = b"GET /readyz HTTP/1.1\r\nHost: bench\r\n\r\n";
        round_trip(&mut stream, req, &mut buf).await.ok();
        let body = buf
            .split(|&b| b == b'\n')
            .next_back()
            .unwrap_or_default()
            .to_vec();
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .map(|v| v["store"]["spool"].clone())
    });
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .ok();
    let status = server.wait().unwrap();

    let store = match &database {
        Some(_) => format!(
            "PostgreSQL ({}, pool 16, durable commits); spool at the end: {}",
            args.pg_method,
            spool.map_or("?".into(), |s| s.to_string())
        ),
        None => "file store, durable acks (fsync before 202)".into(),
    };
    println!(
        "{} s per run, {} keep-alive connections, records of about {} bytes, {store}; server exit: {status}\n",
        args.seconds,
        args.connections,
        record(7).len()
    );
    println!("| run | batch | records/s | MB/s | p50 ms | p99 ms | max ms | errors |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in rows {
        println!("{r}");
    }
}
