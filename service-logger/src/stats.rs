//! Counters kept by each output, and the [`Stats`] and [`Report`] views of them.
//!
//! Nothing here is touched on the caller's fast path except when a record is dropped: the
//! number enqueued is derived from what the worker took plus what is still queued, so
//! producers never contend on a shared counter.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// Records dropped, by reason. Every record the logger was given is either written, still
/// queued or pending, in a spool, or counted here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// The queue was full under [`Policy::DropNewest`](crate::Policy::DropNewest).
    pub queue_full: u64,
    /// The queue stayed full for the whole [`Policy::BlockTimeout`](crate::Policy::BlockTimeout).
    pub timeout: u64,
    /// Logged after `shutdown`, or after the output's worker stopped.
    pub closed: u64,
    /// Refused by the destination as invalid: an ingest endpoint's 4xx (other than 408 and
    /// 429) or a per-record rejection in its 202.
    pub rejected: u64,
    /// Could not be written and could not be kept: a file write failing until its buffer
    /// limit, a batch still undeliverable at shutdown with no spool, a database error that
    /// is not a connection problem.
    pub failed: u64,
    /// The local spool was at its size limit.
    pub spool_full: u64,
}

impl Dropped {
    /// All reasons together.
    pub fn total(&self) -> u64 {
        self.queue_full + self.timeout + self.closed + self.rejected + self.failed + self.spool_full
    }

    fn add(&mut self, o: &Dropped) {
        self.queue_full += o.queue_full;
        self.timeout += o.timeout;
        self.closed += o.closed;
        self.rejected += o.rejected;
        self.failed += o.failed;
        self.spool_full += o.spool_full;
    }
}

/// Enqueue-to-write lag: from the call site to the moment the output wrote (or sent, or
/// spooled) the record. Measured per written batch, on its oldest record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lag {
    /// Of the last batch written.
    pub last: Duration,
    /// The largest seen.
    pub max: Duration,
    /// The mean over every batch written.
    pub mean: Duration,
}

/// One output's counters at a moment. Counts are totals since the logger started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputStats {
    /// The output's name (`file`, `http`, ... or the one given with `Output::name`).
    pub name: String,
    /// Records accepted into the queue.
    pub enqueued: u64,
    /// Records written: handed to the operating system (file, stdout), acknowledged by the
    /// ingest endpoint (including ones it already had), or accepted by the PostgreSQL output
    /// (committed, or in its durable spool). Includes the logger's own heartbeat and
    /// drop-report records, counted in [`OutputStats::internal`].
    pub written: u64,
    /// Records dropped, by reason.
    pub dropped: Dropped,
    /// Records in the queue now.
    pub queue_depth: usize,
    /// The queue's capacity.
    pub queue_capacity: usize,
    /// The deepest the queue has been (sampled by the worker each time it takes a batch,
    /// and set to the capacity whenever a producer found it full).
    pub queue_high_water: usize,
    /// Records the worker took but has not written yet (in a batch, a buffer, or retrying).
    pub pending: u64,
    /// Records in the local spool, waiting for the destination to come back.
    pub spooled: u64,
    /// Failed writes, sends and file operations (each attempt counts).
    pub output_errors: u64,
    /// The most recent error, if any.
    pub last_error: Option<String>,
    /// Enqueue-to-write lag.
    pub lag: Lag,
    /// Heartbeat and drop-report records the logger wrote itself.
    pub internal: u64,
}

/// Every output's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// One entry per output, in the order they were added.
    pub outputs: Vec<OutputStats>,
}

impl Stats {
    /// Records accepted into any queue (a record routed to two outputs counts twice).
    pub fn enqueued(&self) -> u64 {
        self.outputs.iter().map(|s| s.enqueued).sum()
    }

    /// Records written by all outputs.
    pub fn written(&self) -> u64 {
        self.outputs.iter().map(|s| s.written).sum()
    }

    /// Records dropped by all outputs, by reason.
    pub fn dropped(&self) -> Dropped {
        let mut d = Dropped::default();
        for s in &self.outputs {
            d.add(&s.dropped);
        }
        d
    }

    /// The output called `name`.
    pub fn output(&self, name: &str) -> Option<&OutputStats> {
        self.outputs.iter().find(|s| s.name == name)
    }
}

/// What [`flush`](crate::Logger::flush) or [`shutdown`](crate::Logger::shutdown) achieved.
/// Counts are totals since the logger started, summed over outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Records written (see [`OutputStats::written`]).
    pub written: u64,
    /// Records dropped, by reason.
    pub dropped: Dropped,
    /// Records still in a queue or pending in a worker when the call returned: lost if the
    /// process exits now.
    pub queued: u64,
    /// Records kept in a local spool: durable, delivered by the next logger that opens the
    /// same spool directory.
    pub spooled: u64,
    /// Whether every output finished before the timeout.
    pub complete: bool,
    /// The per-output detail.
    pub outputs: Vec<OutputStats>,
}

impl Report {
    pub(crate) fn from_stats(stats: Stats, complete: bool) -> Report {
        Report {
            written: stats.written(),
            dropped: stats.dropped(),
            queued: stats
                .outputs
                .iter()
                .map(|s| s.queue_depth as u64 + s.pending)
                .sum(),
            spooled: stats.outputs.iter().map(|s| s.spooled).sum(),
            complete,
            outputs: stats.outputs,
        }
    }
}

/// Why a record was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    QueueFull,
    Timeout,
    Closed,
    Rejected,
    Failed,
    SpoolFull,
}

/// The live counters of one output, shared by its producers and its worker.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) dequeued: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) pending: AtomicU64,
    pub(crate) spooled: AtomicU64,
    pub(crate) output_errors: AtomicU64,
    pub(crate) internal: AtomicU64,
    pub(crate) high_water: AtomicUsize,
    dropped: [AtomicU64; 6],
    lag_last_ns: AtomicU64,
    lag_max_ns: AtomicU64,
    lag_sum_ns: AtomicU64,
    lag_count: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    pub(crate) fn lose(&self, reason: Reason, n: u64) {
        self.dropped[reason as usize].fetch_add(n, Relaxed);
    }

    pub(crate) fn dropped(&self) -> Dropped {
        let d = |r: Reason| self.dropped[r as usize].load(Relaxed);
        Dropped {
            queue_full: d(Reason::QueueFull),
            timeout: d(Reason::Timeout),
            closed: d(Reason::Closed),
            rejected: d(Reason::Rejected),
            failed: d(Reason::Failed),
            spool_full: d(Reason::SpoolFull),
        }
    }

    /// `n` records written, the oldest captured at `oldest_mono` (monotonic ns).
    pub(crate) fn wrote(&self, n: u64, oldest_mono: Option<u64>, now_mono: u64) {
        if n == 0 {
            return;
        }
        self.written.fetch_add(n, Relaxed);
        if let Some(t) = oldest_mono {
            let lag = now_mono.saturating_sub(t);
            self.lag_last_ns.store(lag, Relaxed);
            self.lag_max_ns.fetch_max(lag, Relaxed);
            self.lag_sum_ns.fetch_add(lag, Relaxed);
            self.lag_count.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn error(&self, e: impl std::fmt::Display) {
        self.output_errors.fetch_add(1, Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    pub(crate) fn snapshot(&self, name: &str, depth: usize, capacity: usize) -> OutputStats {
        let count = self.lag_count.load(Relaxed);
        OutputStats {
            name: name.to_owned(),
            enqueued: self.dequeued.load(Relaxed) + depth as u64,
            written: self.written.load(Relaxed),
            dropped: self.dropped(),
            queue_depth: depth,
            queue_capacity: capacity,
            queue_high_water: self.high_water.load(Relaxed).max(depth),
            pending: self.pending.load(Relaxed),
            spooled: self.spooled.load(Relaxed),
            output_errors: self.output_errors.load(Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            lag: Lag {
                last: Duration::from_nanos(self.lag_last_ns.load(Relaxed)),
                max: Duration::from_nanos(self.lag_max_ns.load(Relaxed)),
                mean: Duration::from_nanos(
                    self.lag_sum_ns
                        .load(Relaxed)
                        .checked_div(count)
                        .unwrap_or(0),
                ),
            },
            internal: self.internal.load(Relaxed),
        }
    }
}
