//! The logger handle ([`Logger`]), the [`Guard`] that shuts it down, and routing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tracing_subscriber::filter::LevelFilter;

use crate::capture::{CapturedRecord, CapturedRecordRef, Origin, mono_now, now, put_str_field};
use crate::encode::RecordConfig;
use crate::message::Line;
use crate::output::Output;
use crate::ring;
use crate::stats::{Report, Stats};
use crate::thread::in_worker;
use crate::worker::OutputHandle;
use faultline_schema::Level;

pub(crate) struct Inner {
    pub(crate) outputs: Vec<Arc<OutputHandle>>,
    routes: Routes,
    pub(crate) record: RecordConfig,
    pub(crate) with_thread: bool,
    pub(crate) shutdown_timeout: Option<Duration>,
    pub(crate) panic_flush_timeout: Option<Duration>,
    /// Whether the panic hook logs to and flushes this logger.
    pub(crate) on_panic: bool,
    shut: AtomicBool,
}

/// Routing worked out once: which outputs without a target filter take each level (one bit
/// per output), and which outputs have a target filter and are asked per record.
struct Routes {
    by_level: [u64; 5],
    targeted: u64,
}

impl Routes {
    fn new(outputs: &[Arc<OutputHandle>]) -> Routes {
        let mut routes = Routes {
            by_level: [0; 5],
            targeted: 0,
        };
        for (i, s) in outputs.iter().enumerate() {
            if s.options.targets.is_some() {
                routes.targeted |= 1 << i;
                continue;
            }
            for (at, level) in LEVELS.iter().enumerate() {
                if Output::accepts(&s.options, "", level) {
                    routes.by_level[at] |= 1 << i;
                }
            }
        }
        routes
    }
}

/// `tracing`'s levels, most verbose first, as [`level_index`] numbers them.
const LEVELS: [tracing::Level; 5] = [
    tracing::Level::TRACE,
    tracing::Level::DEBUG,
    tracing::Level::INFO,
    tracing::Level::WARN,
    tracing::Level::ERROR,
];

#[inline]
fn level_index(level: &tracing::Level) -> usize {
    match *level {
        tracing::Level::TRACE => 0,
        tracing::Level::DEBUG => 1,
        tracing::Level::INFO => 2,
        tracing::Level::WARN => 3,
        _ => 4,
    }
}

/// A running logger: its outputs, queues and workers. Cheap to clone.
///
/// Get one from [`Guard::logger`] or [`crate::global`]. Every method is safe to call from
/// any thread, inside or outside an async runtime.
#[derive(Clone)]
pub struct Logger {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("service", &self.inner.record.service)
            .field("outputs", &self.inner.outputs)
            .finish()
    }
}

/// `timeout` from now; `Duration::MAX` (or any overflow) means no limit.
fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

impl Logger {
    pub(crate) fn new(
        outputs: Vec<Arc<OutputHandle>>,
        record: RecordConfig,
        with_thread: bool,
        shutdown_timeout: Option<Duration>,
        panic_flush_timeout: Option<Duration>,
        on_panic: bool,
    ) -> Logger {
        Logger {
            inner: Arc::new(Inner {
                routes: Routes::new(&outputs),
                outputs,
                record,
                with_thread,
                shutdown_timeout,
                panic_flush_timeout,
                on_panic,
                shut: AtomicBool::new(false),
            }),
        }
    }

    /// Which outputs take a record of `level` from `target`, one bit per output.
    #[inline]
    pub(crate) fn route(&self, target: &str, level: &tracing::Level) -> u64 {
        let routes = &self.inner.routes;
        let mask = routes
            .by_level
            .get(level_index(level))
            .copied()
            .unwrap_or_default();
        if routes.targeted == 0 {
            return mask;
        }
        mask | self.route_targeted(target, level)
    }

    /// The outputs with a target filter that take a record of `level` from `target`.
    fn route_targeted(&self, target: &str, level: &tracing::Level) -> u64 {
        let mut mask = 0;
        for (i, s) in self.inner.outputs.iter().enumerate() {
            if self.inner.routes.targeted & (1 << i) != 0
                && Output::accepts(&s.options, target, level)
            {
                mask |= 1 << i;
            }
        }
        mask
    }

    /// Captures one record and hands it to the outputs in `mask`: stamped now, its items
    /// written by `fill` (which may raise the level) into this thread's scratch buffer, then
    /// copied into this thread's ring of each output. When the thread cannot use its rings (it
    /// is ending, or `fill` itself logs), into a [`CapturedRecord`] through the shared channel.
    #[inline]
    pub(crate) fn log(
        &self,
        mask: u64,
        level: Level,
        origin: Origin,
        fill: impl Fn(&mut Vec<u8>, &mut Level),
    ) {
        let done = ring::with_this_thread(|items, local| {
            items.clear();
            let (mono, ts_ms) = now();
            let mut level = level;
            fill(items, &mut level);
            let len = items.len();
            // Zeros up to a whole word, so the items go into the rings word by word.
            items.extend_from_slice(&[0; 7]);
            let (words, _) = items.as_chunks::<8>();
            let rec = CapturedRecordRef {
                mono,
                ts_ms,
                id: local.next_id(ts_ms),
                level,
                origin,
                items: items.get(..len).unwrap_or_default(),
            };
            let word = local.origin(origin);
            for s in self.chosen(mask) {
                s.offer(local, word, &rec, Some(words));
            }
        });
        if done.is_none() {
            self.log_shared(mask, level, origin, fill);
        }
    }

    /// [`log`](Logger::log) for a thread that cannot use its rings (out of line: it is
    /// ending, or `fill` itself logs): into a [`CapturedRecord`] through the shared channel.
    #[cold]
    #[inline(never)]
    fn log_shared(
        &self,
        mask: u64,
        level: Level,
        origin: Origin,
        fill: impl Fn(&mut Vec<u8>, &mut Level),
    ) {
        let mut entry = CapturedRecord::new(level, origin);
        fill(&mut entry.buf, &mut entry.level);
        self.offer_shared(entry, mask);
    }

    /// The outputs in `mask`.
    fn chosen(&self, mask: u64) -> impl Iterator<Item = &Arc<OutputHandle>> {
        let outputs = &self.inner.outputs;
        let mut rest = mask;
        std::iter::from_fn(move || {
            while rest != 0 {
                let i = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if let Some(s) = outputs.get(i) {
                    return Some(s);
                }
            }
            None
        })
    }

    /// Hands `entry` to the outputs in `mask` through the shared channel.
    fn offer_shared(&self, entry: CapturedRecord, mask: u64) {
        for s in self.chosen(mask) {
            s.offer_shared(entry.clone());
        }
    }

    /// Hands `entry` to the outputs in `mask`: into this thread's ring of each, or through
    /// the shared channel when the thread cannot use its rings.
    pub(crate) fn dispatch(&self, entry: CapturedRecord, mask: u64) {
        let done = ring::with_this_thread(|_, local| {
            let origin = local.origin(entry.origin);
            for s in self.chosen(mask) {
                s.offer(local, origin, &entry.borrowed(), None);
            }
        });
        if done.is_none() {
            self.offer_shared(entry, mask);
        }
    }

    /// Sends a record built elsewhere, such as a log line a forwarder parsed, to every output
    /// that takes its level (its `event` is the target that [`Output::targets`] sees), under
    /// each output's queue policy, like a logged event.
    ///
    /// The record goes out as it is: its own `id`, `ts` and `service`, none of the builder's
    /// static fields or user salt. Check it first with `Record::validate`, or the endpoint
    /// may reject it. Give it an `id` when it may be sent again (a restarted forwarder
    /// re-reading a line): the server stores a record once per id.
    ///
    /// To know when records are safe, [`flush`](Logger::flush): once it returns
    /// [`complete`](Report::complete), every record sent before it was acknowledged by the
    /// endpoint (or written, for other outputs), is durable in a spool, or is counted in
    /// [`Report::dropped`].
    pub fn send_record(&self, record: &faultline_schema::Record) {
        use faultline_schema::Level;
        let level = match record.level {
            Level::Debug => tracing::Level::DEBUG,
            Level::Info => tracing::Level::INFO,
            Level::Warning => tracing::Level::WARN,
            Level::Error | Level::Critical => tracing::Level::ERROR,
        };
        let mask = self.route(&record.event, &level);
        if mask == 0 {
            return;
        }
        let mut bytes = Vec::with_capacity(256);
        record.write_json(&mut bytes);
        bytes.push(b'\n');
        let line = Line {
            bytes,
            level: record.level,
            mono: mono_now(),
        };
        let offer = |mut local: Option<&mut ring::ThreadProducers>| {
            for s in self.chosen(mask) {
                s.offer_line(local.as_deref_mut(), &line);
            }
        };
        if ring::with_this_thread(|_, local| offer(Some(local))).is_none() {
            offer(None);
        }
    }

    /// The most verbose level any output takes.
    pub(crate) fn max_level(&self) -> LevelFilter {
        self.inner
            .outputs
            .iter()
            .map(|s| LevelFilter::from_level(s.options.min_level))
            .max()
            .unwrap_or(LevelFilter::OFF)
    }

    pub(crate) fn with_thread(&self) -> bool {
        self.inner.with_thread
    }

    /// Writes everything logged before this call, waiting as long as that takes: files and
    /// stdout written (and fsynced per their settings), HTTP batches acknowledged or spooled,
    /// PostgreSQL batches committed or spooled. The report says what was written, dropped,
    /// and is still queued.
    pub fn flush(&self) -> Report {
        self.flush_until(None)
    }

    /// [`flush`](Logger::flush), waiting at most `timeout`; [`Report::complete`] says whether
    /// it finished.
    pub fn flush_timeout(&self, timeout: Duration) -> Report {
        self.flush_until(deadline(Some(timeout)))
    }

    pub(crate) fn flush_until(&self, deadline: Option<Instant>) -> Report {
        if in_worker() {
            // A worker waiting for itself would never return.
            return Report::from_stats(self.stats(), false);
        }
        let signals: Vec<_> = self
            .inner
            .outputs
            .iter()
            .map(|s| s.request_flush(deadline))
            .collect();
        let mut complete = true;
        for (s, signal) in self.inner.outputs.iter().zip(signals) {
            complete &= s.wait(signal, deadline);
        }
        Report::from_stats(self.stats(), complete)
    }

    /// Stops taking records (later ones are counted in `Dropped::closed`), writes everything
    /// queued, closes every output (HTTP batches that cannot be delivered go to the spool,
    /// when there is one), and stops the workers, waiting at most `timeout`
    /// (`Duration::MAX`: as long as it takes). Calling it again only reports.
    pub fn shutdown(&self, timeout: Duration) -> Report {
        self.shutdown_until(deadline(Some(timeout)))
    }

    pub(crate) fn shutdown_until(&self, deadline: Option<Instant>) -> Report {
        if in_worker() {
            return Report::from_stats(self.stats(), false);
        }
        self.inner.shut.store(true, Ordering::Release);
        let signals: Vec<_> = self
            .inner
            .outputs
            .iter()
            .map(|s| s.request_shutdown(deadline))
            .collect();
        let mut complete = true;
        for (s, signal) in self.inner.outputs.iter().zip(signals) {
            complete &= s.wait(signal, deadline);
            s.join_if_finished();
        }
        Report::from_stats(self.stats(), complete)
    }

    pub(crate) fn is_shut(&self) -> bool {
        self.inner.shut.load(Ordering::Acquire)
    }

    /// Every output's counters now.
    pub fn stats(&self) -> Stats {
        Stats {
            outputs: self.inner.outputs.iter().map(|s| s.stats()).collect(),
        }
    }

    /// The `service` every record carries.
    pub fn service(&self) -> &str {
        &self.inner.record.service
    }

    /// Logs a panic as a `CRITICAL` record (event `panic`) to every output taking errors.
    pub(crate) fn record_panic(&self, info: &std::panic::PanicHookInfo<'_>) {
        let mask = self.route("panic", &tracing::Level::ERROR);
        if mask == 0 || self.inner.outputs.iter().all(|s| s.is_closed()) {
            return;
        }
        let mut e =
            CapturedRecord::new(faultline_schema::Level::Critical, Origin::Internal("panic"));
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("Box<dyn Any>");
        e.buf.push(crate::capture::tag::MESSAGE);
        crate::capture::put_str(&mut e.buf, payload);
        if let Some(loc) = info.location() {
            put_str_field(
                &mut e.buf,
                "location",
                &format!("{}:{}:{}", loc.file(), loc.line(), loc.column()),
            );
        }
        if let Some(name) = std::thread::current().name() {
            put_str_field(&mut e.buf, "thread", name);
        }
        let bt = std::backtrace::Backtrace::capture();
        if bt.status() == std::backtrace::BacktraceStatus::Captured {
            put_str_field(&mut e.buf, "stack_text", &bt.to_string());
        }
        self.dispatch(e, mask);
    }
}

/// Keeps the logger running; dropping it shuts the logger down (see [`Logger::shutdown`])
/// with the builder's [`shutdown_timeout`](crate::Builder::shutdown_timeout), 5 seconds by
/// default. When the time runs out first, it writes one line per output that left records
/// behind to standard error (`faultline-logger: shutdown gave up after 5s: output http left
/// 1200 records undelivered (1200 still queued, 0 dropped), 0 spooled`) and returns, so the
/// process can end.
///
/// Keep it alive for as long as the program logs: `let _guard = ...init()?;` in `main`
/// (not `let _ = ...`, which drops it at once).
#[must_use = "dropping the guard shuts the logger down"]
#[derive(Debug)]
pub struct Guard {
    pub(crate) logger: Logger,
}

impl Guard {
    /// The logger, for stats, flushes and shutdown from elsewhere.
    pub fn logger(&self) -> &Logger {
        &self.logger
    }

    /// See [`Logger::flush`].
    pub fn flush(&self) -> Report {
        self.logger.flush()
    }

    /// See [`Logger::flush_timeout`].
    pub fn flush_timeout(&self, timeout: Duration) -> Report {
        self.logger.flush_timeout(timeout)
    }

    /// See [`Logger::stats`].
    pub fn stats(&self) -> Stats {
        self.logger.stats()
    }

    /// Shuts down now, waiting at most `timeout`, and returns the report (which dropping
    /// the guard cannot).
    pub fn shutdown(self, timeout: Duration) -> Report {
        self.logger.shutdown(timeout)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.logger.is_shut() {
            self.logger.shutdown_bounded();
        }
    }
}

impl Logger {
    /// Shuts down within the builder's `shutdown_timeout`, and says on standard error what
    /// was left when the time ran out (the guard's drop and [`crate::exit`]).
    pub(crate) fn shutdown_bounded(&self) -> Report {
        let timeout = self.inner.shutdown_timeout;
        let report = self.shutdown_until(deadline(timeout));
        if !report.complete {
            let waited = timeout.map_or_else(|| "waiting".to_owned(), |t| format!("{t:?}"));
            for o in &report.outputs {
                let queued = o.queue_depth as u64 + o.pending;
                let dropped = o.dropped.total();
                if queued + dropped > 0 || o.spooled > 0 {
                    eprintln!(
                        "faultline-logger: shutdown gave up after {waited}: output {} left {} records undelivered ({queued} still queued, {dropped} dropped), {} spooled{}",
                        o.name,
                        queued + dropped,
                        o.spooled,
                        o.last_error
                            .as_deref()
                            .map(|e| format!(" (last error: {e})"))
                            .unwrap_or_default(),
                    );
                }
            }
            if report.queued + report.dropped.total() == 0 && report.spooled == 0 {
                eprintln!(
                    "faultline-logger: shutdown gave up after {waited} with no record left undelivered"
                );
            }
        }
        report
    }
}
