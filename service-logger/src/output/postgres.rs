//! The PostgreSQL output: the server's own [`faultline_store::PostgresStore`], driven from the
//! worker: the same `system_logs` table and migrations, the same batched idempotent writes
//! (`INSERT ... ON CONFLICT DO NOTHING` on the record id), and the same durable local spool
//! while the database is unreachable, drained in order when it returns.
//!
//! The worker parses each record line back into a `Record` (the schema's fast path), gathers
//! batches, and hands one at a time to the store on a small runtime of its own; it keeps
//! taking records while a write runs.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use faultline_schema::Record;
use faultline_store::{PostgresStore, RecordStore as _, StoreError, WriteReceipt};

use crate::capture::mono_now;
use crate::error::InitError;
use crate::output::destination::Destination;
use crate::stats::{Counters, Reason};

/// Settings of the PostgreSQL output: `faultline_store::PostgresConfig`, the server's own
/// (`url`, `pool_size`, `write_method`, `write_timeout`, `retention`, `partitions_ahead`,
/// `spool_dir`, `spool_max_bytes`).
///
/// ```
/// use faultline_logger::PostgresConfig;
///
/// let config = PostgresConfig::new("postgres://faultline@db/faultline", "/var/lib/worker/pg-spool");
/// # let _ = config;
/// ```
pub use faultline_store::PostgresConfig;

/// Sealed batches that may wait behind the write in progress before the worker waits too.
const MAX_WAITING: usize = 16;

struct Batch {
    records: Vec<Record>,
    oldest: Option<u64>,
}

type WriteTask = tokio::task::JoinHandle<Result<WriteReceipt, StoreError>>;

pub(crate) struct PgOutput {
    rt: Option<tokio::runtime::Runtime>,
    store: PostgresStore,
    line: Vec<u8>,
    batch: Vec<Record>,
    batch_oldest: Option<u64>,
    batch_started: Option<Instant>,
    batch_size: usize,
    linger: Duration,
    waiting: VecDeque<Batch>,
    in_flight: Option<(usize, Option<u64>, WriteTask)>,
    counters: Arc<Counters>,
    worker: std::thread::Thread,
}

impl PgOutput {
    pub(crate) fn open(
        config: PostgresConfig,
        name: &str,
        batch_size: usize,
        linger: Duration,
        counters: Arc<Counters>,
    ) -> Result<PgOutput, InitError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name(format!("faultline-{name}-io"))
            .on_thread_start(crate::thread::mark_worker_thread)
            .build()
            .map_err(|e| InitError::Output {
                output: name.to_owned(),
                message: format!("runtime: {e}"),
            })?;
        let pg = rt
            .block_on(PostgresStore::open(config))
            .map_err(|e| InitError::Output {
                output: name.to_owned(),
                message: e.to_string(),
            })?;
        let out = PgOutput {
            rt: Some(rt),
            store: pg,
            line: Vec::with_capacity(4096),
            batch: Vec::with_capacity(batch_size.max(1)),
            batch_oldest: None,
            batch_started: None,
            batch_size: batch_size.max(1),
            linger,
            waiting: VecDeque::new(),
            in_flight: None,
            counters,
            worker: std::thread::current(),
        };
        out.spool_gauge();
        Ok(out)
    }

    fn spool_gauge(&self) {
        let spooled = self.store.health().spool.map_or(0, |s| s.records);
        self.counters.spooled.store(spooled, Relaxed);
    }

    fn seal(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let records = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
        self.waiting.push_back(Batch {
            records,
            oldest: self.batch_oldest.take(),
        });
        self.batch_started = None;
    }

    fn start_next(&mut self) {
        if self.in_flight.is_some() {
            return;
        }
        let (Some(b), Some(rt)) = (self.waiting.pop_front(), &self.rt) else {
            return;
        };
        let n = b.records.len();
        let (store, worker) = (self.store.clone(), self.worker.clone());
        let handle = rt.spawn(async move {
            let r = store.write(b.records).await;
            worker.unpark();
            r
        });
        self.in_flight = Some((n, b.oldest, handle));
    }

    /// Handles the write in progress if it finished, waiting for it when `wait`.
    fn reap(&mut self, wait: bool) -> bool {
        let Some((_, _, handle)) = &self.in_flight else {
            return true;
        };
        if !wait && !handle.is_finished() {
            return false;
        }
        let (Some((n, oldest, handle)), Some(rt)) = (self.in_flight.take(), &self.rt) else {
            return true;
        };
        let n = n as u64;
        match rt.block_on(handle) {
            Ok(Ok(_receipt)) => {
                // New and already-stored records alike are in the database (or its spool).
                self.counters.wrote(n, oldest, mono_now());
            }
            Ok(Err(StoreError::Overloaded)) => {
                self.counters.error("PostgreSQL spool is full");
                self.counters.lose(Reason::SpoolFull, n);
            }
            Ok(Err(StoreError::Closed)) => self.counters.lose(Reason::Closed, n),
            Ok(Err(e)) => {
                self.counters.error(&e);
                self.counters.lose(Reason::Failed, n);
            }
            Err(e) => {
                self.counters.error(format!("write task failed: {e}"));
                self.counters.lose(Reason::Failed, n);
            }
        }
        self.counters.pending.fetch_sub(n, Relaxed);
        self.spool_gauge();
        true
    }
}

impl Destination for PgOutput {
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.line
    }

    fn commit(&mut self, start: usize, mono: u64) {
        let line = self.line.get(start..).unwrap_or_default();
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        match Record::from_json(text) {
            Ok(r) => {
                self.batch.push(r);
                self.batch_oldest.get_or_insert(mono);
                if self.batch_started.is_none() {
                    self.batch_started = Some(Instant::now());
                }
            }
            Err(e) => {
                // The encoder makes valid records; this would be a bug, not bad input.
                self.counters.error(format!("invalid record: {e}"));
                self.counters.lose(Reason::Failed, 1);
                self.counters.pending.fetch_sub(1, Relaxed);
            }
        }
        self.line.clear();
        if self.batch.len() >= self.batch_size {
            self.seal();
            self.reap(self.waiting.len() >= MAX_WAITING);
            self.start_next();
        }
    }

    fn poll(&mut self, _idle: bool) -> Option<Instant> {
        self.reap(false);
        if self
            .batch_started
            .is_some_and(|t| t.elapsed() >= self.linger)
        {
            self.seal();
        }
        self.start_next();
        self.batch_started.map(|t| t + self.linger)
    }

    fn flush(&mut self, deadline: Option<Instant>) -> bool {
        self.seal();
        while self.in_flight.is_some() || !self.waiting.is_empty() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            self.start_next();
            // `PostgresStore::write` returns within its write_timeout (spooling if need be).
            self.reap(true);
        }
        true
    }

    fn close(&mut self, deadline: Option<Instant>) -> bool {
        let complete = self.flush(deadline);
        if let Some((n, _, handle)) = self.in_flight.take() {
            handle.abort();
            self.counters.lose(Reason::Failed, n as u64);
            self.counters.pending.fetch_sub(n as u64, Relaxed);
        }
        let left: u64 = self
            .waiting
            .drain(..)
            .map(|b| b.records.len() as u64)
            .sum::<u64>()
            + self.batch.len() as u64;
        self.batch.clear();
        if left > 0 {
            self.counters.lose(Reason::Failed, left);
            self.counters.pending.fetch_sub(left, Relaxed);
        }
        if let Some(rt) = self.rt.take() {
            if let Err(e) = rt.block_on(self.store.shutdown()) {
                self.counters.error(&e);
            }
            self.spool_gauge();
            rt.shutdown_background();
        }
        complete && left == 0
    }
}
