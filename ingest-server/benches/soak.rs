//! Soak benchmark: the release `faultline` binary on the file store under steady load for
//! `--minutes` (10 by default). Run with `cargo xtask bench soak [--minutes N] [--rate R]`.
//!
//! 1. Capacity: a 10 s closed loop at batch 100 (skipped when `--rate` gives the records/s).
//! 2. Soak at half of it, open loop (latency from the scheduled time): batches of 1, 10 and
//!    100 records, each size sending the same number of requests per second, every record
//!    with an id of its own; beside it, `GET /logs/recent` and `GET /logs/stats` ten times a
//!    second.
//! 3. Every 30 s: the server's RSS (`VmRSS` of `/proc/PID/status`), the p99 latencies, the
//!    p99 fsync time (from the `/metrics` histogram, as a bucket bound) and the machine's
//!    dirty page cache, which together show when slow requests waited on the disk.
//! 4. After a graceful stop, every acknowledged id is looked up in the segments.
//!
//! It prints a table over time and a verdict (RSS plateau: the last third's highest sample
//! against the middle third's; no acknowledged record lost), and draws RSS and ingest p99
//! over time to `docs/bench/soak.svg`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use support::load::{ADMIN, id_requests, load, parse_id, pct, round_trip, start_server};

/// How often RSS and latency are sampled.
const SAMPLE: Duration = Duration::from_secs(30);
/// Batch sizes, and the connections each sends on. A connection carries one request at a
/// time, so each must send seldom enough (here every 28 to 56 ms at 126,000 records/s) that
/// a slow fsync leaves it time to catch up: with a handful of connections sending every
/// 3.5 ms, a few slow milliseconds put a connection behind its schedule for good, and the
/// loader, not the server, set the latency.
const CLASSES: [(usize, u32); 3] = [(1, 64), (10, 32), (100, 32)];
/// The verdict's bound on RSS growth from the middle third to the last.
const PLATEAU_PERCENT: f64 = 10.0;

struct Args {
    minutes: f64,
    rate: Option<f64>,
}

fn args() -> Args {
    let mut a = Args {
        minutes: 10.0,
        rate: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--minutes" => a.minutes = it.next().and_then(|v| v.parse().ok()).unwrap_or(10.0),
            "--rate" => a.rate = it.next().and_then(|v| v.parse().ok()),
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

/// One bit per sequence number.
#[derive(Default, Clone)]
struct Bits(Vec<u64>);

impl Bits {
    /// Sets bit `i`; returns whether it was set before.
    fn set(&mut self, i: u64) -> bool {
        let (word, bit) = ((i / 64) as usize, 1u64 << (i % 64));
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        let was = self.0[word] & bit != 0;
        self.0[word] |= bit;
        was
    }

    fn get(&self, i: u64) -> bool {
        self.0
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn ones(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            (0..64)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| w as u64 * 64 + b)
        })
    }
}

/// What the load saw since the last sample.
#[derive(Default)]
struct Window {
    ingest_us: Vec<u32>,
    query_us: Vec<u32>,
    records: u64,
    errors: u64,
}

struct Sample {
    at: Duration,
    rss_mib: f64,
    records_per_s: f64,
    ingest_p99_ms: f64,
    query_p99_ms: f64,
    /// The histogram bucket bound under which 99 % of the interval's fsyncs fell.
    fsync_p99_ms: f64,
    /// The machine's dirty and under-writeback page cache at the sample.
    dirty_mib: f64,
    errors: u64,
}

/// `Dirty` + `Writeback` of `/proc/meminfo`: file data the kernel still has to write.
fn dirty_mib() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |key: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (kb("Dirty:") + kb("Writeback:")) / 1024.0
}

/// A `GET` of `path` with the admin token.
fn admin_get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {ADMIN}\r\n\r\n")
        .into_bytes()
}

/// The file store's fsync histogram from `/metrics`: (bucket bound in seconds, cumulative
/// count), `+Inf` last.
async fn fsync_buckets(addr: &str) -> Vec<(f64, u64)> {
    let req = admin_get("/metrics");
    let Ok(mut conn) = TcpStream::connect(addr).await else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    if round_trip(&mut conn, &req, &mut buf).await.ok() != Some(200) {
        return Vec::new();
    }
    String::from_utf8_lossy(&buf)
        .lines()
        .filter(|l| l.starts_with("faultline_sink_fsync_seconds_bucket"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// The bucket bound (ms) under which 99 % of the fsyncs between two readings fell.
fn fsync_p99_ms(before: &[(f64, u64)], after: &[(f64, u64)]) -> f64 {
    let delta: Vec<(f64, u64)> = after
        .iter()
        .map(|&(le, n)| {
            let was = before.iter().find(|b| b.0 == le).map_or(0, |b| b.1);
            (le, n.saturating_sub(was))
        })
        .collect();
    let total = delta.last().map_or(0, |d| d.1);
    delta
        .iter()
        .find(|d| total > 0 && d.1 as f64 >= 0.99 * total as f64)
        .map_or(f64::NAN, |d| d.0 * 1000.0)
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// One ingest connection's schedule.
struct Sender {
    addr: String,
    batch: usize,
    /// The id stream its records carry.
    stream: u32,
    interval: Duration,
    start: Instant,
    end: Instant,
}

/// Sends `batch`-record requests every `interval` until `end`; acknowledged sequence
/// numbers are set in `acked`.
async fn ingest_connection(
    Sender {
        addr,
        batch,
        stream,
        interval,
        start,
        end,
    }: Sender,
    window: Rc<RefCell<Window>>,
    acked: Rc<RefCell<Vec<Bits>>>,
) {
    let mut reqs = id_requests(batch);
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    conn.set_nodelay(true).unwrap();
    let mut buf = Vec::with_capacity(8192);
    let mut seq = 0u64;
    for k in 0u32.. {
        let scheduled = start + interval * k;
        if scheduled >= end {
            break;
        }
        tokio::time::sleep_until(scheduled.into()).await;
        let n = reqs.len();
        let req = &mut reqs[k as usize % n];
        req.stamp(stream, seq);
        req.stamp_now();
        let result = round_trip(&mut conn, &req.bytes, &mut buf).await;
        if let Ok(202) = result {
            let us = scheduled.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
            let mut w = window.borrow_mut();
            w.ingest_us.push(us);
            w.records += batch as u64;
            let mut acked = acked.borrow_mut();
            for s in seq..seq + batch as u64 {
                acked[stream as usize].set(s);
            }
        } else {
            window.borrow_mut().errors += 1;
        }
        if result.is_err() {
            conn = TcpStream::connect(&addr).await.unwrap();
        }
        seq += batch as u64;
    }
}

/// Dashboard-like reads beside the load: recent records and stats, alternating.
async fn queries(addr: String, end: Instant, window: Rc<RefCell<Window>>) {
    let reqs: Vec<Vec<u8>> = ["/logs/recent?limit=100", "/logs/stats?window=1h"]
        .iter()
        .map(|path| admin_get(path))
        .collect();
    let mut conn = TcpStream::connect(&addr).await.unwrap();
    let mut buf = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    for k in 0usize.. {
        ticker.tick().await;
        if Instant::now() >= end {
            break;
        }
        let sent = Instant::now();
        let result = round_trip(&mut conn, &reqs[k % reqs.len()], &mut buf).await;
        let us = sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        if let Ok(200) = result {
            window.borrow_mut().query_us.push(us);
        } else {
            window.borrow_mut().errors += 1;
        }
        if result.is_err() {
            conn = TcpStream::connect(&addr).await.unwrap();
        }
    }
}

/// Every id in the segments under `dir`: per stream, the sequence numbers seen, and how many
/// ids were seen more than once.
fn ids_on_disk(dir: &Path, streams: usize) -> (Vec<Bits>, u64) {
    const KEY: &[u8] = br#""id":""#;
    let mut seen = vec![Bits::default(); streams];
    let mut doubled = 0;
    for entry in std::fs::read_dir(dir.join("segments")).unwrap().flatten() {
        if entry.path().extension().is_none_or(|e| e != "ndjson") {
            continue;
        }
        let bytes = std::fs::read(entry.path()).unwrap();
        for line in bytes.split(|&b| b == b'\n') {
            let Some(at) = line.windows(KEY.len()).position(|w| w == KEY) else {
                continue;
            };
            let id = line
                .get(at + KEY.len()..at + KEY.len() + 36)
                .unwrap_or_default();
            if let Some((stream, seq)) = parse_id(id)
                && let Some(bits) = seen.get_mut(stream as usize)
                && bits.set(seq)
            {
                doubled += 1;
            }
        }
    }
    (seen, doubled)
}

/// RSS (left axis) and ingest p99 (right axis) over time, as plain SVG.
fn chart(samples: &[Sample]) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 320.0, 60.0, 60.0, 30.0, 40.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let t_max = samples.last().map_or(1.0, |s| s.at.as_secs_f64()).max(1.0);
    let rss_max = samples.iter().map(|s| s.rss_mib).fold(1.0, f64::max) * 1.1;
    let p99_max = samples.iter().map(|s| s.ingest_p99_ms).fold(1.0, f64::max) * 1.1;
    let line = |value: &dyn Fn(&Sample) -> f64, max: f64| {
        samples
            .iter()
            .map(|s| {
                format!(
                    "{:.1},{:.1}",
                    left + pw * s.at.as_secs_f64() / t_max,
                    top + ph * (1.0 - value(s) / max)
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">
<rect width="{w}" height="{h}" fill="#fff"/>
<text x="{left}" y="18">faultline soak: RSS (blue, left) and ingest p99 (orange, right) over time</text>
<line x1="{left}" y1="{top}" x2="{left}" y2="{y0}" stroke="#888"/>
<line x1="{left}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#888"/>
<line x1="{x1}" y1="{top}" x2="{x1}" y2="{y0}" stroke="#888"/>
"##,
        y0 = top + ph,
        x1 = left + pw,
    );
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let y = top + ph * (1.0 - f);
        let _ = writeln!(
            svg,
            r##"<text x="{:.0}" y="{y:.0}" text-anchor="end" fill="#1f77b4">{:.0} MiB</text><text x="{:.0}" y="{y:.0}" fill="#ff7f0e">{:.1} ms</text>"##,
            left - 4.0,
            rss_max * f,
            left + pw + 4.0,
            p99_max * f
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.0}" y="{:.0}" text-anchor="middle">{:.1} min</text>"##,
            left + pw * f,
            top + ph + 16.0,
            t_max * f / 60.0
        );
    }
    let rss = line(&|s| s.rss_mib, rss_max);
    let p99 = line(&|s| s.ingest_p99_ms, p99_max);
    for (color, points) in [("#1f77b4", rss), ("#ff7f0e", p99)] {
        let _ = writeln!(
            svg,
            r##"<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>"##
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn main() {
    let args = args();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start_server(dir.path(), &[]);
    let pid = server.id();

    let rate = args.rate.unwrap_or_else(|| {
        let o = local.block_on(
            &rt,
            load(
                std::slice::from_ref(&addr),
                100,
                64,
                Duration::from_secs(10),
                None,
            ),
        );
        let capacity = o.records as f64 / 10.0;
        eprintln!("capacity: {capacity:.0} records/s (closed loop, batch 100)");
        capacity / 2.0
    });
    // Each batch size sends the same requests per second: rate = r * (1 + 10 + 100).
    let per_class = rate / CLASSES.iter().map(|&(b, _)| b as f64).sum::<f64>();
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let streams: u32 = CLASSES.iter().map(|&(_, c)| c).sum();
    let window: Rc<RefCell<Window>> = Rc::default();
    let acked: Rc<RefCell<Vec<Bits>>> =
        Rc::new(RefCell::new(vec![Bits::default(); streams as usize]));
    eprintln!(
        "soak: {rate:.0} records/s for {:.1} min ({per_class:.0} requests/s at each of batch 1, 10, 100)",
        args.minutes
    );

    let began = Instant::now();
    let samples = local.block_on(&rt, async {
        let start = Instant::now() + Duration::from_millis(50);
        let end = start + duration;
        let mut tasks = Vec::new();
        let mut stream = 0;
        for (batch, connections) in CLASSES {
            let interval = Duration::from_secs_f64(f64::from(connections) / per_class);
            for c in 0..connections {
                let offset = interval.mul_f64(f64::from(c) / f64::from(connections));
                tasks.push(tokio::task::spawn_local(ingest_connection(
                    Sender {
                        addr: addr.clone(),
                        batch,
                        stream,
                        interval,
                        start: start + offset,
                        end,
                    },
                    window.clone(),
                    acked.clone(),
                )));
                stream += 1;
            }
        }
        tasks.push(tokio::task::spawn_local(queries(
            addr.clone(),
            end,
            window.clone(),
        )));
        let mut samples = Vec::new();
        let mut fsyncs = fsync_buckets(&addr).await;
        let mut next = start + SAMPLE;
        while next <= end + Duration::from_millis(500) {
            tokio::time::sleep_until(next.into()).await;
            let mut w = std::mem::take(&mut *window.borrow_mut());
            w.ingest_us.sort_unstable();
            w.query_us.sort_unstable();
            let now_fsyncs = fsync_buckets(&addr).await;
            let s = Sample {
                at: next - start,
                rss_mib: rss_mib(pid),
                records_per_s: w.records as f64 / SAMPLE.as_secs_f64(),
                ingest_p99_ms: pct(&w.ingest_us, 0.99),
                query_p99_ms: pct(&w.query_us, 0.99),
                fsync_p99_ms: fsync_p99_ms(&fsyncs, &now_fsyncs),
                dirty_mib: dirty_mib(),
                errors: w.errors,
            };
            fsyncs = now_fsyncs;
            eprintln!(
                "{:>5.1} min: RSS {:.0} MiB, {:.0} records/s, p99 ingest {:.2} ms, p99 query {:.2} ms, p99 fsync <= {} ms, dirty {:.0} MiB, {} errors",
                s.at.as_secs_f64() / 60.0,
                s.rss_mib,
                s.records_per_s,
                s.ingest_p99_ms,
                s.query_p99_ms,
                s.fsync_p99_ms,
                s.dirty_mib,
                s.errors
            );
            samples.push(s);
            next += SAMPLE;
        }
        for t in tasks {
            t.await.unwrap();
        }
        samples
    });
    let ran = began.elapsed();

    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success(), "the server's exit");
    let acked = acked.borrow();
    let (seen, doubled) = ids_on_disk(dir.path(), streams as usize);
    let total: u64 = acked.iter().map(|b| b.ones().count() as u64).sum();
    let lost: u64 = acked
        .iter()
        .zip(&seen)
        .map(|(a, s)| a.ones().filter(|&i| !s.get(i)).count() as u64)
        .sum();

    println!(
        "Load: {rate:.0} records/s offered ({}), batches of 1, 10 and 100 at {per_class:.0} requests/s each; `GET /logs/recent` and `GET /logs/stats` 10 times a second; {:.1} min.\n",
        if args.rate.is_some() {
            "given with --rate".to_owned()
        } else {
            format!("half of the {:.0} measured at batch 100", rate * 2.0)
        },
        ran.as_secs_f64() / 60.0
    );
    println!(
        "| minute | RSS MiB | records/s acknowledged | ingest p99 ms | query p99 ms | fsync p99 ms (bucket) | dirty page cache MiB | errors |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for s in &samples {
        println!(
            "| {:.1} | {:.0} | {:.0} | {:.2} | {:.2} | ≤ {} | {:.0} | {} |",
            s.at.as_secs_f64() / 60.0,
            s.rss_mib,
            s.records_per_s,
            s.ingest_p99_ms,
            s.query_p99_ms,
            s.fsync_p99_ms,
            s.dirty_mib,
            s.errors
        );
    }
    let third = samples.len() / 3;
    let rss = if third == 0 {
        "not judged (fewer than three samples)".to_owned()
    } else {
        let max_rss = |part: &[Sample]| part.iter().map(|s| s.rss_mib).fold(f64::NAN, f64::max);
        let middle = max_rss(&samples[third..2 * third]);
        let last = max_rss(&samples[2 * third..]);
        let growth = (last - middle) / middle * 100.0;
        support::load::figure(
            "soak: RSS growth, last third against the middle third",
            "%",
            growth,
            "lower",
            None,
            Some(PLATEAU_PERCENT),
        );
        format!(
            "{} (highest sample of the last third {last:.0} MiB against {middle:.0} MiB in the \
             middle third: {growth:+.1} %, bound {PLATEAU_PERCENT} %)",
            if growth <= PLATEAU_PERCENT {
                "plateaus"
            } else {
                "still grows"
            }
        )
    };
    println!(
        "\nVerdict: RSS {rss}; {total} records acknowledged, {lost} lost, {doubled} stored twice."
    );
    let svg = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bench/soak.svg");
    std::fs::create_dir_all(svg.parent().unwrap()).unwrap();
    std::fs::write(&svg, chart(&samples)).unwrap();
    println!("\n![RSS and ingest p99 over the soak](bench/soak.svg)");
    support::load::figure(
        "soak: acknowledged records lost or doubled",
        "records",
        (lost + doubled) as f64,
        "lower",
        None,
        Some(0.0),
    );
    assert_eq!(
        (lost, doubled),
        (0, 0),
        "acknowledged records lost or doubled"
    );
}
