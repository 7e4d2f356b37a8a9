//! The load generator shared by the ingest benchmarks: realistic records, raw HTTP/1.1 on
//! keep-alive connections from one thread (so as much of the machine as possible is left to
//! the servers), closed or open loop, and the Markdown row of an outcome.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The secret ingest key the benchmarks configure.
pub(crate) const KEY: &str = "sk_bench";

/// A realistic record of about 300 bytes, varied so the store is not writing one line.
pub(crate) fn record(i: usize) -> String {
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
pub(crate) fn requests(batch: usize) -> Vec<Vec<u8>> {
    (0..16)
        .map(|v| {
            ingest_request(
                &(0..batch)
                    .map(|i| record(v * batch + i))
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

/// `POST /logs/ingest` of `records` as a JSON array, with the bench key.
pub(crate) fn ingest_request(records: &[String]) -> Vec<u8> {
    let body = format!("[{}]", records.join(","));
    let mut req = format!(
        "POST /logs/ingest HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body.as_bytes());
    req
}

/// The id every record of an [`IdRequest`] starts with: a valid UUIDv4 whose first 8 hex
/// digits become the stream and last 12 the sequence number.
const ID_TEMPLATE: &str = "00000000-0000-4000-8000-000000000000";

/// A pre-built request whose records carry client ids, and where those ids sit in it, so a
/// sender gives every record a fresh id without rebuilding the body (the checks at the end
/// of a run find each acknowledged id on disk).
pub(crate) struct IdRequest {
    pub(crate) bytes: Vec<u8>,
    id_at: Vec<usize>,
    /// Where each record's 24-byte `ts` value starts.
    ts_at: Vec<usize>,
}

impl IdRequest {
    /// Gives the records the ids `(stream, first)`, `(stream, first + 1)`, ...
    pub(crate) fn stamp(&mut self, stream: u32, first: u64) {
        for (k, &at) in self.id_at.iter().enumerate() {
            put_hex(&mut self.bytes[at..at + 8], u64::from(stream));
            put_hex(&mut self.bytes[at + 24..at + 36], first + k as u64);
        }
    }

    /// Gives every record the current time as its `ts`, as a live service's records have:
    /// a long run's store then grows newest-last, the way the file store's time-ordered
    /// reads expect, instead of holding one fixed minute of timestamps in every segment.
    pub(crate) fn stamp_now(&mut self) {
        let now = faultline_schema::Timestamp::now().to_string();
        for &at in &self.ts_at {
            self.bytes[at..at + now.len()].copy_from_slice(now.as_bytes());
        }
    }
}

fn put_hex(dst: &mut [u8], mut v: u64) {
    for b in dst.iter_mut().rev() {
        *b = b"0123456789abcdef"[(v & 0xf) as usize];
        v >>= 4;
    }
}

/// Like [`requests`], with an id in every record (see [`IdRequest::stamp`]).
pub(crate) fn id_requests(batch: usize) -> Vec<IdRequest> {
    (0..16)
        .map(|v| {
            let records: Vec<String> = (0..batch)
                .map(|i| format!("{{\"id\":\"{ID_TEMPLATE}\",{}", &record(v * batch + i)[1..]))
                .collect();
            let bytes = ingest_request(&records);
            let id_at = (0..bytes.len() - ID_TEMPLATE.len())
                .filter(|&at| bytes[at..].starts_with(ID_TEMPLATE.as_bytes()))
                .collect();
            const TS_KEY: &[u8] = b"\"ts\":\"";
            let ts_at = (0..bytes.len() - TS_KEY.len())
                .filter(|&at| bytes[at..].starts_with(TS_KEY))
                .map(|at| at + TS_KEY.len())
                .collect();
            IdRequest {
                bytes,
                id_at,
                ts_at,
            }
        })
        .collect()
}

/// The `(stream, sequence)` of an id given by [`IdRequest::stamp`].
pub(crate) fn parse_id(id: &[u8]) -> Option<(u32, u64)> {
    let hex = |b: &[u8]| u64::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok();
    if id.len() != ID_TEMPLATE.len() {
        return None;
    }
    Some((u32::try_from(hex(&id[..8])?).ok()?, hex(&id[24..])?))
}

/// Starts the release `faultline` binary (or `FAULTLINE_BENCH_BIN`) on a free port with the file store under `dir`,
/// the bench key unlimited, and `env` on top; returns it and its `host:port`.
pub(crate) fn start_server(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    use std::io::BufRead;
    // Another build of the server, to compare two in one run.
    let binary = std::env::var_os("FAULTLINE_BENCH_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_faultline").into());
    let mut child = std::process::Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("DATABASE_URL")
        .env_remove("FAULTLINE_CONFIG")
        .env("FAULTLINE_LOG", "warn")
        .env("FAULTLINE_ADMIN_TOKEN", ADMIN)
        .env("FAULTLINE_INGEST_KEY", KEY)
        .env(
            "FAULTLINE_LIMITS_SECRET_KEY_RATE_RECORDS_PER_SECOND",
            "1e12",
        )
        .env("FAULTLINE_LIMITS_SECRET_KEY_RATE_BURST", "1e12")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the faultline binary");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited").unwrap();
        let rest = line.split("listening on ").nth(1).and_then(|rest| {
            rest.strip_prefix("http://")
                .or_else(|| rest.strip_prefix("https://"))
        });
        if let Some(rest) = rest {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// The admin token of [`start_server`].
pub(crate) const ADMIN: &str = "bench-admin";

/// Sends one request and reads the whole response; returns the status.
pub(crate) async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    req: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<u16> {
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
pub(crate) struct Outcome {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) errors: u64,
    pub(crate) latencies_us: Vec<u32>,
    pub(crate) elapsed: Duration,
}

impl Outcome {
    /// Adds the counts, time and latencies of another run (rows measured in turns).
    pub(crate) fn add(&mut self, o: Outcome) {
        self.records += o.records;
        self.bytes += o.bytes;
        self.errors += o.errors;
        self.elapsed += o.elapsed;
        self.latencies_us.extend(o.latencies_us);
        self.latencies_us.sort_unstable();
    }
}

/// Runs `connections` loops for `duration`, connection `c` on `addrs[c % addrs.len()]`
/// (round-robin over the nodes). With `rate` set (records/s in total), requests follow a
/// schedule and latency counts from the scheduled time.
pub(crate) async fn load(
    addrs: &[String],
    batch: usize,
    connections: usize,
    duration: Duration,
    rate: Option<f64>,
) -> Outcome {
    load_requests(addrs, requests(batch), batch, connections, duration, rate).await
}

/// [`load`] with pre-built requests of `batch` records each.
pub(crate) async fn load_requests(
    addrs: &[String],
    reqs: Vec<Vec<u8>>,
    batch: usize,
    connections: usize,
    duration: Duration,
    rate: Option<f64>,
) -> Outcome {
    load_over(addrs, None, reqs, batch, connections, duration, rate).await
}

/// A loader's connection: plain TCP or TLS over it.
trait Connection: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Connection for T {}

/// Connects to `addr`, through TLS when `tls` is given (HTTP/1.1: no ALPN is offered).
async fn connect(
    addr: &str,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> std::io::Result<Box<dyn Connection>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    match tls {
        None => Ok(Box::new(stream)),
        Some(tls) => {
            let name = rustls_pki_types::ServerName::try_from("127.0.0.1")
                .map_err(std::io::Error::other)?;
            Ok(Box::new(tls.connect(name, stream).await?))
        }
    }
}

/// [`load_requests`] over TLS when `tls` is given: the handshakes happen before the run's
/// clock starts, as on long-lived keep-alive connections.
pub(crate) async fn load_over(
    addrs: &[String],
    tls: Option<tokio_rustls::TlsConnector>,
    reqs: Vec<Vec<u8>>,
    batch: usize,
    connections: usize,
    duration: Duration,
    rate: Option<f64>,
) -> Outcome {
    let reqs = std::sync::Arc::new(reqs);
    // Time to connect (and for TLS, to shake hands) before the clock starts.
    let setup = if tls.is_some() { 500 } else { 50 };
    let start = Instant::now() + Duration::from_millis(setup);
    let end = start + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let reqs = reqs.clone();
        let addr = addrs[c % addrs.len()].clone();
        let tls = tls.clone();
        tasks.push(tokio::task::spawn_local(async move {
            let mut out = Outcome::default();
            let mut stream = connect(&addr, tls.as_ref()).await.unwrap();
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
                    // 202 from /logs/ingest, 200 from the Sentry and OTLP endpoints.
                    Ok(200 | 202) => {
                        out.records += batch as u64;
                        out.bytes += req.len() as u64;
                        let us = scheduled.elapsed().as_micros().min(u32::MAX as u128) as u32;
                        out.latencies_us.push(us);
                    }
                    Ok(_) => out.errors += 1,
                    Err(_) => {
                        out.errors += 1;
                        stream = connect(&addr, tls.as_ref()).await.unwrap();
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

pub(crate) fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

pub(crate) fn row(label: &str, batch: usize, o: &Outcome) -> String {
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
pub(crate) fn fresh_db(rt: &tokio::runtime::Runtime, base: &str) -> String {
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

/// Prints a headline figure for the summary of docs/BENCHMARKS.md (xtask's `report.rs`):
/// an HTML comment, invisible on the rendered page. `better` is "higher" or "lower".
pub(crate) fn figure(
    name: &str,
    unit: &str,
    value: f64,
    better: &str,
    competitor: Option<(&str, f64)>,
    goal: Option<f64>,
) {
    let mut f = serde_json::json!({"name": name, "unit": unit, "value": value, "better": better});
    if let Some((who, v)) = competitor {
        f["competitor"] = who.into();
        f["competitor_value"] = v.into();
    }
    if let Some(g) = goal {
        f["goal"] = g.into();
    }
    println!("<!-- figure {f} -->");
}
