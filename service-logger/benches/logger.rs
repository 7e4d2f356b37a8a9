//! The logger benchmark (`cargo xtask bench logger`): the same `tracing::info!` call with 3
//! fields through
//!
//! - (a) faultline-logger to a rotating file (64 MiB segments, default `Block` policy), and
//! - (b) `tracing-subscriber`'s JSON formatter over `tracing-appender::non_blocking` to a
//!   rolling file (its defaults: lossy, 128,000 lines buffered).
//!
//! Measured, with 1 and 2 producer threads:
//!
//! 1. Caller-side time per call: calls come in bursts of 4,096 per thread, and the logger
//!    drains (untimed) between bursts, so a call never waits for the writer: this is what a
//!    call costs the service while the logger keeps up. Criterion's median, and every call
//!    timed on its own for the median and p99 (which include reading the clock).
//! 2. Sustained records per second: 2,000,000 records as fast as the producers can go until
//!    the last one is in the file (for (b) with `lossy(false)`, so nothing is dropped and the
//!    rates compare). Here (a)'s callers wait whenever its queue is full.
//!
//! Neither side fsyncs (`Fsync::Never`; tracing-appender never does). Criterion's report goes
//! to standard output first; a Markdown summary follows a `<!-- summary -->` line, and xtask
//! records it in docs/BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use faultline_logger::{FileConfig, Fsync, Output};
use tracing::Dispatch;
use tracing_appender::non_blocking::NonBlockingBuilder;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::prelude::*;

/// Records per producer-thread count in the sustained run.
const SUSTAINED: u64 = 2_000_000;
/// Calls each thread times one by one.
const TIMED_CALLS: u64 = 1_000_000;
/// Calls per thread between drains: within either queue's capacity (8,192 records per
/// thread, and 128,000).
const BURST: u64 = 4_096;
const THREADS: [usize; 2] = [1, 2];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Faultline,
    Appender,
}

impl Kind {
    fn id(self) -> &'static str {
        match self {
            Kind::Faultline => "faultline",
            Kind::Appender => "appender",
        }
    }
}

/// The call under test.
#[inline(always)]
fn log_one(i: u64) {
    tracing::info!(
        order_id = i,
        path = "/api/orders",
        ok = true,
        "order placed"
    );
}

/// What a stopped logger says it did.
struct Stopped {
    written: u64,
    dropped: u64,
}

/// A logger writing into its own temporary directory.
struct Running {
    dispatch: Dispatch,
    /// Records logged so far.
    sent: AtomicU64,
    /// Waits until everything logged so far is written (or, for (b), dropped).
    drain: Box<dyn Fn(u64) + Sync>,
    stop: Box<dyn FnOnce(u64) -> Stopped + Sync>,
    _dir: tempfile::TempDir,
}

/// A writer that counts the lines tracing-appender's worker hands it (one `write` per
/// formatted line), so the sustained run knows when the last record is in the file.
struct Counted<W> {
    inner: W,
    lines: Arc<AtomicU64>,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n == buf.len() && buf.last() == Some(&b'\n') {
            self.lines.fetch_add(1, Ordering::Relaxed);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn start(kind: Kind, lossy: bool) -> Running {
    let dir = tempfile::tempdir().unwrap();
    match kind {
        Kind::Faultline => {
            let (layer, guard) = faultline_logger::builder()
                .service("bench")
                .panic_hook(false)
                .output(Output::file(
                    FileConfig::new(dir.path())
                        .max_bytes(64 << 20)
                        .keep_files(4)
                        .fsync(Fsync::Never),
                ))
                .build()
                .unwrap();
            let logger = guard.logger().clone();
            Running {
                dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
                sent: AtomicU64::new(0),
                drain: Box::new(move |_| {
                    logger.flush();
                }),
                stop: Box::new(move |_| {
                    let report = guard.shutdown(Duration::MAX);
                    Stopped {
                        written: report.written,
                        dropped: report.dropped.total(),
                    }
                }),
                _dir: dir,
            }
        }
        Kind::Appender => {
            let file = RollingFileAppender::builder()
                .rotation(Rotation::HOURLY)
                .filename_prefix("bench")
                .filename_suffix("ndjson")
                .build(dir.path())
                .unwrap();
            let lines = Arc::new(AtomicU64::new(0));
            let counted = Counted {
                inner: file,
                lines: lines.clone(),
            };
            let (writer, guard) = NonBlockingBuilder::default().lossy(lossy).finish(counted);
            let errors = writer.error_counter();
            let (drain_lines, drain_errors) = (lines.clone(), errors.clone());
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_writer(writer)
                .finish();
            Running {
                dispatch: Dispatch::new(subscriber),
                sent: AtomicU64::new(0),
                drain: Box::new(move |expected| {
                    while drain_lines.load(Ordering::Relaxed)
                        + (drain_errors.dropped_lines() as u64)
                        < expected
                    {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }),
                stop: Box::new(move |expected| {
                    drop(guard);
                    // The guard waits about a second at most; the worker goes on writing.
                    let deadline = Instant::now() + Duration::from_secs(120);
                    let dropped = errors.dropped_lines() as u64;
                    while lines.load(Ordering::Relaxed) + dropped < expected
                        && Instant::now() < deadline
                    {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Stopped {
                        written: lines.load(Ordering::Relaxed),
                        dropped,
                    }
                }),
                _dir: dir,
            }
        }
    }
}

/// Runs `each` on `threads` threads started together, each with the logger as its
/// subscriber; `each` gets the shared barrier.
fn on_threads<T: Send>(
    dispatch: &Dispatch,
    threads: usize,
    each: impl Fn(&Barrier) -> T + Sync,
) -> Vec<T> {
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (barrier, each) = (&barrier, &each);
                s.spawn(move || {
                    tracing::dispatcher::with_default(dispatch, || {
                        barrier.wait();
                        each(barrier)
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// `calls` calls on each of `threads` threads in bursts of [`BURST`], the logger draining
/// between bursts while no thread is timed; `burst(first, n, acc)` makes and measures one.
fn in_bursts<T: Send>(
    running: &Running,
    threads: usize,
    calls: u64,
    init: impl Fn() -> T + Sync,
    burst: impl Fn(u64, u64, &mut T) + Sync,
) -> Vec<T> {
    on_threads(&running.dispatch, threads, |barrier| {
        let mut acc = init();
        let mut done = 0;
        while done < calls {
            let n = BURST.min(calls - done);
            burst(done, n, &mut acc);
            done += n;
            running.sent.fetch_add(n, Ordering::Relaxed);
            if barrier.wait().is_leader() {
                (running.drain)(running.sent.load(Ordering::Relaxed));
            }
            barrier.wait();
        }
        acc
    })
}

/// Criterion: the mean over threads of the time their `iters` calls took.
fn caller_time(running: &Running, threads: usize, iters: u64) -> Duration {
    let times = in_bursts(
        running,
        threads,
        iters,
        || Duration::ZERO,
        |first, n, total| {
            let started = Instant::now();
            for i in first..first + n {
                log_one(i);
            }
            *total += started.elapsed();
        },
    );
    times.iter().sum::<Duration>() / threads as u32
}

/// Every call timed on its own: (median, p99) in ns over all threads.
fn per_call(running: &Running, threads: usize) -> (u64, u64) {
    let warm = |_: u64, n: u64, _: &mut ()| (0..n).for_each(log_one);
    in_bursts(running, threads, 4 * BURST, || (), warm);
    let samples = in_bursts(
        running,
        threads,
        TIMED_CALLS,
        || Vec::with_capacity(TIMED_CALLS as usize),
        |first, n, ns: &mut Vec<u64>| {
            for i in first..first + n {
                let t = Instant::now();
                log_one(i);
                ns.push(t.elapsed().as_nanos() as u64);
            }
        },
    );
    let mut all: Vec<u64> = samples.into_iter().flatten().collect();
    all.sort_unstable();
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize];
    (at(0.5), at(0.99))
}

/// The machine's speed at the moment: ns per step of a fixed single-threaded workload
/// (formatting a number into a buffer and mixing it into a hash, all in L1), the median
/// of five runs of 200,000 steps. On this shared virtual machine the same build runs in
/// two modes 1.5 to 1.8 times apart (most likely another guest busy on the same physical
/// core; `steal` does not show it); this figure, taken before and after each logger's
/// criterion runs, says which one a run met.
fn reference_ns() -> f64 {
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let mut text = String::with_capacity(32);
            let mut hash = 0u64;
            let started = Instant::now();
            for i in 0..200_000u64 {
                text.clear();
                std::fmt::Write::write_fmt(&mut text, format_args!("{i}")).unwrap();
                for b in text.bytes() {
                    hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
                }
            }
            std::hint::black_box(hash);
            started.elapsed().as_nanos() as f64 / 200_000.0
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[2]
}

/// The cost of the timing itself: two clock reads and a push.
fn timer_overhead() -> u64 {
    let mut ns = Vec::with_capacity(TIMED_CALLS as usize);
    for _ in 0..TIMED_CALLS {
        let t = Instant::now();
        ns.push(t.elapsed().as_nanos() as u64);
    }
    ns.sort_unstable();
    ns[ns.len() / 2]
}

/// `SUSTAINED` records on `threads` threads until the last is in the file: records/s, and
/// what the logger says it wrote and dropped.
fn sustained(kind: Kind, threads: usize) -> (f64, Stopped) {
    let running = start(kind, false);
    let per_thread = SUSTAINED / threads as u64;
    let started = Instant::now();
    on_threads(&running.dispatch, threads, |_| {
        for i in 0..per_thread {
            log_one(i);
        }
    });
    let stopped = (running.stop)(per_thread * threads as u64);
    let rate = stopped.written as f64 / started.elapsed().as_secs_f64();
    (rate, stopped)
}

fn criterion_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("criterion")
}

/// Criterion's median estimate (ns per call) of one benchmark.
fn criterion_median(dir: &std::path::Path, kind: Kind, threads: usize) -> Option<f64> {
    let path = dir
        .join("caller")
        .join(kind.id())
        .join(threads.to_string())
        .join("new/estimates.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// The machine's CPU time so far (all CPUs, in clock ticks): (total, stolen by the
/// hypervisor). `None` where `/proc/stat` does not say.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    Some((ticks.iter().sum(), *ticks.get(7)?))
}

/// Percent of the machine's CPU time the hypervisor took between two [`cpu_ticks`]: on a
/// shared virtual machine, time a measured thread may have waited for its core.
fn steal_percent(before: Option<(u64, u64)>, after: Option<(u64, u64)>) -> String {
    match (before, after) {
        (Some((t0, s0)), Some((t1, s1))) if t1 > t0 => {
            format!("{:.0} %", 100.0 * (s1 - s0) as f64 / (t1 - t0) as f64)
        }
        _ => "-".into(),
    }
}

fn ratio(ours: f64, theirs: f64) -> String {
    if ours > 0.0 {
        format!("{:.1}x", theirs / ours)
    } else {
        "-".into()
    }
}

fn main() {
    let dir = criterion_dir();
    let mut c = Criterion::default()
        .output_directory(&dir)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    // Caller-side time per call.
    let mut appender_dropped = Vec::new();
    let mut steal = Vec::new();
    let mut reference = Vec::new();
    {
        let mut group = c.benchmark_group("caller");
        group.throughput(Throughput::Elements(1));
        for kind in [Kind::Faultline, Kind::Appender] {
            for threads in THREADS {
                let running = start(kind, true);
                let before = (cpu_ticks(), reference_ns());
                group.bench_function(BenchmarkId::new(kind.id(), threads), |b| {
                    b.iter_custom(|iters| caller_time(&running, threads, iters));
                });
                let after = (cpu_ticks(), reference_ns());
                steal.push((
                    format!("criterion, {}, {threads} thread(s)", kind.id()),
                    steal_percent(before.0, after.0),
                ));
                reference.push((
                    format!("{}, {threads} thread(s)", kind.id()),
                    before.1,
                    after.1,
                ));
                let stopped = (running.stop)(0);
                if kind == Kind::Appender {
                    appender_dropped.push(stopped.dropped);
                }
            }
        }
        group.finish();
    }
    c.final_summary();

    let mut per_call_rows = Vec::new();
    for threads in THREADS {
        let mut row = Vec::new();
        for kind in [Kind::Faultline, Kind::Appender] {
            let running = start(kind, true);
            let before = cpu_ticks();
            row.push(per_call(&running, threads));
            steal.push((
                format!("each call timed, {}, {threads} thread(s)", kind.id()),
                steal_percent(before, cpu_ticks()),
            ));
            (running.stop)(0);
        }
        per_call_rows.push(row);
    }
    let overhead = timer_overhead();

    let mut sustained_rows = Vec::new();
    for threads in THREADS {
        let before = cpu_ticks();
        let ours = sustained(Kind::Faultline, threads);
        let between = cpu_ticks();
        let theirs = sustained(Kind::Appender, threads);
        for (kind, span) in [
            (Kind::Faultline, steal_percent(before, between)),
            (Kind::Appender, steal_percent(between, cpu_ticks())),
        ] {
            steal.push((
                format!("sustained, {}, {threads} producer(s)", kind.id()),
                span,
            ));
        }
        sustained_rows.push((ours, theirs));
    }

    let mut out = String::new();
    out.push_str("<!-- summary -->\n");
    out.push_str(
        "`tracing::info!(order_id = i, path = \"/api/orders\", ok = true, \"order placed\")` \
         through (a) faultline-logger to a rotating file (64 MiB segments, `Policy::Block`, \
         `Fsync::Never`) and (b) `tracing_subscriber::fmt().json()` over \
         `tracing_appender::non_blocking` (defaults: lossy, 128,000 lines) to a \
         `RollingFileAppender` (hourly). Ratio: (b) / (a).\n\n",
    );
    out.push_str("| Caller-side ns per call | (a) faultline-logger | (b) tracing-appender + JSON | ratio |\n");
    out.push_str("| --- | ---: | ---: | ---: |\n");
    for (i, threads) in THREADS.iter().enumerate() {
        let (a, b) = (
            criterion_median(&dir, Kind::Faultline, *threads).unwrap_or(0.0),
            criterion_median(&dir, Kind::Appender, *threads).unwrap_or(0.0),
        );
        out.push_str(&format!(
            "| {threads} thread(s), criterion median | {a:.0} | {b:.0} | {} |\n",
            ratio(a, b)
        ));
        let row = &per_call_rows[i];
        let ((am, ap), (bm, bp)) = (row[0], row[1]);
        out.push_str(&format!(
            "| {threads} thread(s), each call timed: median | {am} | {bm} | {} |\n",
            ratio(am as f64, bm as f64)
        ));
        out.push_str(&format!(
            "| {threads} thread(s), each call timed: p99 | {ap} | {bp} | {} |\n",
            ratio(ap as f64, bp as f64)
        ));
    }
    out.push_str(&format!(
        "\nCalls come in bursts of {BURST} per thread with the logger drained (untimed) between \
         bursts. Each-call timings include the clock reads (median {overhead} ns on this \
         machine). During the criterion runs (b) dropped {} (1 thread) and {} (2 threads) \
         lines.\n\n",
        appender_dropped.first().copied().unwrap_or(0),
        appender_dropped.get(1).copied().unwrap_or(0),
    ));
    out.push_str(&format!(
        "| Sustained, {SUSTAINED} records until the last is in the file | (a) records/s | (b) records/s, `lossy(false)` | (a) / (b) |\n"
    ));
    out.push_str("| --- | ---: | ---: | ---: |\n");
    for (threads, ((ra, sa), (rb, sb))) in THREADS.iter().zip(&sustained_rows) {
        out.push_str(&format!(
            "| {threads} producer thread(s) | {ra:.0} (written {}, dropped {}) | {rb:.0} (written {}, dropped {}) | {:.1}x |\n",
            sa.written,
            sa.dropped,
            sb.written,
            sb.dropped,
            ra / rb.max(1.0)
        ));
    }
    out.push_str(
        "\nCPU time the hypervisor took from this virtual machine (steal, from `/proc/stat`) \
         during each measurement; a measured thread may have waited that share of the time \
         for its core: ",
    );
    let spans: Vec<String> = steal
        .iter()
        .map(|(what, p)| format!("{what} {p}"))
        .collect();
    out.push_str(&spans.join("; "));
    out.push_str(".\n");
    out.push_str(
        "\nThe machine's speed before and after each criterion run (ns per step of a fixed \
         workload, see `reference_ns`; lower is faster, and the same build measures 1.5 to \
         1.8 times slower in the machine's slow mode): ",
    );
    let spans: Vec<String> = reference
        .iter()
        .map(|(what, a, b)| format!("{what} {a:.1} and {b:.1}"))
        .collect();
    out.push_str(&spans.join("; "));
    out.push_str(".\n");
    // Headline figures for the summary of docs/BENCHMARKS.md (HTML comments, see xtask's
    // report.rs): one thread, criterion median, and sustained with one producer.
    let (a, b) = (
        criterion_median(&dir, Kind::Faultline, 1).unwrap_or(0.0),
        criterion_median(&dir, Kind::Appender, 1).unwrap_or(0.0),
    );
    out.push_str(&format!(
        "<!-- figure {{\"name\": \"caller ns per call, 1 thread (criterion median)\", \"unit\": \"ns\", \"value\": {a:.0}, \"better\": \"lower\", \"competitor\": \"tracing-appender + JSON\", \"competitor_value\": {b:.0}, \"goal\": 200}} -->\n"
    ));
    if let Some((threads, ((ra, _), (rb, _)))) = THREADS.iter().zip(&sustained_rows).next() {
        out.push_str(&format!(
            "<!-- figure {{\"name\": \"sustained records/s, {threads} producer\", \"unit\": \"records/s\", \"value\": {ra:.0}, \"better\": \"higher\", \"competitor\": \"tracing-appender + JSON, lossy(false)\", \"competitor_value\": {rb:.0}, \"goal\": 2000000}} -->\n"
        ));
    }
    println!("\n{out}");
}
