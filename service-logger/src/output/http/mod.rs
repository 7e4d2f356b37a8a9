//! The HTTP output: batches of records to the ingest endpoint (`POST /logs/ingest`).
//!
//! # The path of a batch
//!
//! 1. The worker appends record lines to the open batch; it is sealed at the output's
//!    `batch_size` records, at [`HttpConfig::max_batch_bytes`], or once its first record has
//!    waited the output's `linger`.
//! 2. One request at a time (so batches arrive in order) runs on a small runtime owned by
//!    the output: gzip, `Authorization: Bearer <key>`, NDJSON. The worker goes on taking
//!    records while it runs, so a slow endpoint never stalls the queue.
//! 3. A 202 counts the accepted and duplicate records as written and per-record rejections
//!    as dropped. 408, 429, 5xx and connection errors are retried with exponential backoff
//!    and jitter, or after exactly the `Retry-After` the server asked for; 413 splits the
//!    batch in two; other 4xx drop it (retrying cannot help).
//! 4. With a spool directory, a batch that fails goes to disk, and so does every batch after
//!    it until the endpoint answers again; the spool is then delivered oldest first. Every
//!    record carries a client-chosen id, so a batch the server stored but never acknowledged
//!    is not stored twice when it is sent again.

mod send;
mod spool;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::thread::Thread;
use std::time::{Duration, Instant};

use self::send::{Outcome, Request};
use self::spool::{Spool, SpoolError};
use crate::capture::{mono_now, random_u64};
use crate::error::InitError;
use crate::output::destination::{Destination, lines};
use crate::stats::{Counters, Reason};

/// Settings of the HTTP output.
///
/// ```
/// use std::time::Duration;
/// use faultline_logger::HttpConfig;
///
/// let config = HttpConfig::new("https://faultline.internal", std::env::var("FAULTLINE_KEY").unwrap_or_default())
///     .spool_dir("/var/lib/api/faultline-spool")   // ride out outages on local disk
///     .spool_max_bytes(512 << 20)
///     .request_timeout(Duration::from_secs(10));
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct HttpConfig {
    endpoint: String,
    key: String,
    max_batch_bytes: usize,
    gzip: bool,
    request_timeout: Duration,
    backoff_initial: Duration,
    backoff_max: Duration,
    retry_for: Duration,
    max_pending_bytes: usize,
    spool_dir: Option<PathBuf>,
    spool_max_bytes: u64,
    spool_fsync: bool,
}

impl HttpConfig {
    /// Records to `endpoint` with the secret ingest key `key`. `endpoint` is the server's
    /// base URL (`https://faultline.internal`, to which `/logs/ingest` is added) or the full
    /// ingest URL.
    pub fn new(endpoint: impl Into<String>, key: impl Into<String>) -> HttpConfig {
        HttpConfig {
            endpoint: endpoint.into(),
            key: key.into(),
            max_batch_bytes: 1024 * 1024,
            gzip: true,
            request_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            retry_for: Duration::from_secs(300),
            max_pending_bytes: 32 * 1024 * 1024,
            spool_dir: None,
            spool_max_bytes: 256 * 1024 * 1024,
            spool_fsync: true,
        }
    }

    /// Seal a batch before its (uncompressed) body passes this many bytes (default 1 MiB;
    /// the server takes up to 20 MiB decompressed).
    pub fn max_batch_bytes(mut self, bytes: usize) -> HttpConfig {
        self.max_batch_bytes = bytes.max(1);
        self
    }

    /// Gzip request bodies (default `true`).
    pub fn gzip(mut self, yes: bool) -> HttpConfig {
        self.gzip = yes;
        self
    }

    /// How long one request may take, connecting included (default 10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> HttpConfig {
        self.request_timeout = timeout;
        self
    }

    /// The first retry delay and the largest (default 200 ms, doubling up to 30 s, with
    /// jitter). A `Retry-After` from the server replaces the delay (honored up to an hour).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> HttpConfig {
        self.backoff_initial = initial;
        self.backoff_max = max.max(initial);
        self
    }

    /// Without a spool: how long a batch is retried before it is dropped and counted in
    /// `Dropped::failed` (default 5 minutes). With a spool, a failed batch goes to disk at
    /// once and is retried until delivered.
    pub fn retry_for(mut self, duration: Duration) -> HttpConfig {
        self.retry_for = duration;
        self
    }

    /// Without a spool: how many bytes of sealed batches may wait in memory; past it the
    /// oldest are dropped (`Dropped::failed`). With a spool they move to disk (default 32 MiB).
    pub fn max_pending_bytes(mut self, bytes: usize) -> HttpConfig {
        self.max_pending_bytes = bytes;
        self
    }

    /// Keep batches in this directory while the endpoint is unreachable, and deliver them
    /// when it returns, also across restarts (default: no spool).
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> HttpConfig {
        self.spool_dir = Some(dir.into());
        self
    }

    /// The most the spool may hold; past it new batches are dropped (`Dropped::spool_full`)
    /// (default 256 MiB, about 700,000 records).
    pub fn spool_max_bytes(mut self, bytes: u64) -> HttpConfig {
        self.spool_max_bytes = bytes;
        self
    }

    /// Fsync each spooled batch (default `true`: a spooled batch survives a power loss).
    pub fn spool_fsync(mut self, yes: bool) -> HttpConfig {
        self.spool_fsync = yes;
        self
    }
}

#[derive(Debug)]
struct Batch {
    body: Arc<Vec<u8>>,
    records: u64,
    oldest: Option<u64>,
    first_failure: Option<Instant>,
    /// Set when the batch is a spool file.
    spool_seq: Option<u64>,
}

pub(crate) struct HttpOutput {
    config: HttpConfig,
    batch_size: usize,
    linger: Duration,
    request: Request,
    rt: Option<tokio::runtime::Runtime>,
    current: Vec<u8>,
    current_records: u64,
    current_oldest: Option<u64>,
    current_started: Option<Instant>,
    queue: VecDeque<Batch>,
    queue_bytes: usize,
    spool: Option<Spool>,
    in_flight: Option<(Batch, tokio::task::JoinHandle<Outcome>)>,
    next_attempt: Option<Instant>,
    backoff: Duration,
    failing: bool,
    counters: Arc<Counters>,
    worker: Thread,
}

fn output_error(name: &str, message: impl std::fmt::Display) -> InitError {
    InitError::Output {
        output: name.to_owned(),
        message: message.to_string(),
    }
}

impl HttpOutput {
    pub(crate) fn open(
        config: HttpConfig,
        name: &str,
        batch_size: usize,
        linger: Duration,
        counters: Arc<Counters>,
    ) -> Result<HttpOutput, InitError> {
        let mut url = reqwest::Url::parse(&config.endpoint).map_err(|e| {
            output_error(name, format!("invalid endpoint {:?}: {e}", config.endpoint))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(output_error(name, format!("endpoint {url} is not http(s)")));
        }
        if url.path() == "/" || url.path().is_empty() {
            url.set_path("/logs/ingest");
        }
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .user_agent(concat!("faultline-logger/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| output_error(name, format!("HTTP client: {e}")))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name(format!("faultline-{name}-io"))
            .on_thread_start(crate::thread::mark_worker_thread)
            .build()
            .map_err(|e| output_error(name, format!("runtime: {e}")))?;
        let spool = match &config.spool_dir {
            Some(dir) => Some(
                Spool::open(dir, config.spool_max_bytes, config.spool_fsync).map_err(|e| {
                    InitError::Io {
                        output: name.to_owned(),
                        path: dir.clone(),
                        source: e,
                    }
                })?,
            ),
            None => None,
        };
        if let Some(s) = &spool {
            counters.spooled.store(s.records(), Relaxed);
        }
        Ok(HttpOutput {
            request: Request {
                client,
                url,
                auth: format!("Bearer {}", config.key).into(),
                gzip: config.gzip,
            },
            backoff: config.backoff_initial,
            config,
            batch_size: batch_size.max(1),
            linger,
            rt: Some(rt),
            current: Vec::with_capacity(64 * 1024),
            current_records: 0,
            current_oldest: None,
            current_started: None,
            queue: VecDeque::new(),
            queue_bytes: 0,
            spool,
            in_flight: None,
            next_attempt: None,
            failing: false,
            counters,
            worker: std::thread::current(),
        })
    }

    fn spool_gauge(&self) {
        if let Some(s) = &self.spool {
            self.counters.spooled.store(s.records(), Relaxed);
        }
    }

    fn spool_nonempty(&self) -> bool {
        self.spool.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// Closes the open batch.
    fn seal(&mut self) {
        if self.current_records == 0 {
            return;
        }
        let body = std::mem::replace(&mut self.current, Vec::with_capacity(64 * 1024));
        let batch = Batch {
            body: Arc::new(body),
            records: std::mem::take(&mut self.current_records),
            oldest: self.current_oldest.take(),
            first_failure: None,
            spool_seq: None,
        };
        self.current_started = None;
        if self.spool_nonempty() {
            // Behind what waits on disk, so batches arrive in order.
            self.spool_batch(batch);
        } else {
            self.queue_bytes += batch.body.len();
            self.queue.push_back(batch);
            self.limit_memory();
        }
    }

    /// Puts a memory batch into the spool; without a spool or when it fails, the batch is
    /// dropped and counted.
    fn spool_batch(&mut self, batch: Batch) {
        let Some(spool) = &mut self.spool else {
            self.counters.lose(Reason::Failed, batch.records);
            self.counters.pending.fetch_sub(batch.records, Relaxed);
            return;
        };
        match spool.append(&batch.body, batch.records) {
            Ok(()) => {}
            Err(SpoolError::Full) => self.counters.lose(Reason::SpoolFull, batch.records),
            Err(SpoolError::Io(e)) => {
                self.counters.error(format!("spool: {e}"));
                self.counters.lose(Reason::Failed, batch.records);
            }
        }
        self.counters.pending.fetch_sub(batch.records, Relaxed);
        self.spool_gauge();
    }

    fn limit_memory(&mut self) {
        while self.queue_bytes > self.config.max_pending_bytes {
            let Some(oldest) = self.queue.pop_front() else {
                break;
            };
            self.queue_bytes -= oldest.body.len();
            self.spool_batch(oldest);
        }
    }

    /// Everything in memory to the spool (the endpoint is failing).
    fn spool_memory(&mut self) {
        while let Some(b) = self.queue.pop_front() {
            self.queue_bytes -= b.body.len();
            self.spool_batch(b);
        }
    }

    fn start_next(&mut self, now: Instant) {
        if self.in_flight.is_some() || self.next_attempt.is_some_and(|t| now < t) {
            return;
        }
        let batch = if let Some(spool) = &mut self.spool
            && let Some(oldest) = spool.oldest()
        {
            match oldest {
                Ok((file, body)) => Batch {
                    body: Arc::new(body),
                    records: file.records,
                    oldest: None,
                    first_failure: None,
                    spool_seq: Some(file.seq),
                },
                Err(e) => {
                    // An unreadable spool file cannot be delivered; do not let it block the rest.
                    self.counters
                        .error(format!("spool: cannot read a batch: {e}"));
                    if let Some((f, _)) = spool.oldest().and_then(Result::ok) {
                        self.counters.lose(Reason::Failed, f.records);
                        let _ = spool.remove(f.seq);
                    }
                    self.spool_gauge();
                    return;
                }
            }
        } else if let Some(b) = self.queue.pop_front() {
            self.queue_bytes -= b.body.len();
            b
        } else {
            return;
        };
        let Some(rt) = &self.rt else { return };
        let (req, body, records, worker) = (
            self.request.clone(),
            batch.body.clone(),
            batch.records,
            self.worker.clone(),
        );
        let handle = rt.spawn(async move {
            let outcome = send::send(req, body, records).await;
            worker.unpark();
            outcome
        });
        self.in_flight = Some((batch, handle));
    }

    /// Handles the in-flight request if it finished (waiting for it until `wait_until` when
    /// given); whether nothing is in flight afterwards.
    fn reap(&mut self, wait_until: Option<Option<Instant>>) -> bool {
        let (Some((_, handle)), Some(rt)) = (&mut self.in_flight, &self.rt) else {
            return true;
        };
        // The output is taken by the same poll that sees the task finish: a `JoinHandle`
        // polled again after it completed panics.
        let joined = match wait_until {
            None if !handle.is_finished() => return false,
            None => rt.block_on(&mut *handle),
            Some(deadline) => {
                let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                let waited = rt.block_on(async {
                    match remaining {
                        Some(r) => tokio::time::timeout(r, &mut *handle).await.ok(),
                        None => Some((&mut *handle).await),
                    }
                });
                match waited {
                    Some(joined) => joined,
                    None => return false,
                }
            }
        };
        let Some((batch, _)) = self.in_flight.take() else {
            return true;
        };
        let outcome = joined.unwrap_or_else(|e| Outcome::Retry {
            retry_after: None,
            error: format!("request task failed: {e}"),
        });
        self.complete(batch, outcome);
        true
    }

    fn complete(&mut self, mut batch: Batch, outcome: Outcome) {
        let now = Instant::now();
        match outcome {
            Outcome::Accepted {
                accepted,
                duplicates,
                rejected,
                first_error,
            } => {
                self.failing = false;
                self.backoff = self.config.backoff_initial;
                self.next_attempt = None;
                let rejected = rejected.min(batch.records);
                // `duplicates` were stored by an earlier attempt: delivered all the same.
                let _ = (accepted, duplicates);
                self.delivered(&batch, batch.records - rejected);
                if rejected > 0 {
                    self.counters.lose(Reason::Rejected, rejected);
                    self.counters.error(format!(
                        "{rejected} records rejected: {}",
                        first_error.unwrap_or_default()
                    ));
                }
                self.finished(&batch);
            }
            Outcome::Retry { retry_after, error } => {
                self.counters.error(&error);
                self.failing = true;
                let delay = retry_after.unwrap_or_else(|| {
                    // Full jitter on the upper half: [backoff/2, backoff].
                    let unit = (random_u64() >> 11) as f64 / (1u64 << 53) as f64;
                    self.backoff.mul_f64(0.5 + unit / 2.0)
                });
                self.backoff = (self.backoff * 2).min(self.config.backoff_max);
                self.next_attempt = Some(now + delay);
                if batch.spool_seq.is_some() {
                    return;
                }
                if self.spool.is_some() {
                    // The endpoint is down: this batch and everything after it go to disk,
                    // in order.
                    let rest: Vec<Batch> = self.queue.drain(..).collect();
                    self.queue_bytes = 0;
                    self.spool_batch(batch);
                    for b in rest {
                        self.spool_batch(b);
                    }
                    return;
                }
                let first = *batch.first_failure.get_or_insert(now);
                if now.duration_since(first) >= self.config.retry_for {
                    self.counters.lose(Reason::Failed, batch.records);
                    self.counters.pending.fetch_sub(batch.records, Relaxed);
                } else {
                    self.queue_bytes += batch.body.len();
                    self.queue.push_front(batch);
                }
            }
            Outcome::TooLarge if batch.records > 1 => {
                let (a, b) = split(&batch.body);
                let halves = [a, b].map(|body| Batch {
                    records: lines(&body),
                    body: Arc::new(body),
                    oldest: batch.oldest,
                    first_failure: None,
                    spool_seq: None,
                });
                if let Some(seq) = batch.spool_seq {
                    for h in halves {
                        if let Some(s) = &mut self.spool
                            && let Err(e) = s.append(&h.body, h.records)
                        {
                            self.counters.error(format!("spool: {e:?}"));
                            self.counters.lose(Reason::Failed, h.records);
                        }
                    }
                    self.remove_spooled(seq);
                } else {
                    for h in halves.into_iter().rev() {
                        self.queue_bytes += h.body.len();
                        self.queue.push_front(h);
                    }
                }
            }
            Outcome::TooLarge | Outcome::Rejected { .. } => {
                let error = match outcome {
                    Outcome::Rejected { error } => error,
                    _ => "HTTP 413: a single record is larger than the server takes".into(),
                };
                self.counters.error(format!("batch refused: {error}"));
                self.counters.lose(Reason::Rejected, batch.records);
                self.finished(&batch);
            }
        }
    }

    /// `n` of the batch's records were stored.
    fn delivered(&mut self, batch: &Batch, n: u64) {
        self.counters.wrote(n, batch.oldest, mono_now());
    }

    /// The batch is done with (delivered or refused): forget it.
    fn finished(&mut self, batch: &Batch) {
        match batch.spool_seq {
            Some(seq) => self.remove_spooled(seq),
            None => {
                self.counters.pending.fetch_sub(batch.records, Relaxed);
            }
        }
    }

    fn remove_spooled(&mut self, seq: u64) {
        if let Some(s) = &mut self.spool
            && let Err(e) = s.remove(seq)
        {
            self.counters
                .error(format!("spool: cannot delete a delivered batch: {e}"));
        }
        self.spool_gauge();
    }

    fn has_work(&self) -> bool {
        !self.queue.is_empty() || self.spool_nonempty()
    }
}

/// Splits an NDJSON body into two bodies of about half the lines each.
fn split(body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let total = lines(body);
    let mut seen = 0;
    let mut cut = body.len();
    for (i, &b) in body.iter().enumerate() {
        if b == b'\n' {
            seen += 1;
            if seen == total / 2 {
                cut = i + 1;
                break;
            }
        }
    }
    (body[..cut].to_vec(), body[cut..].to_vec())
}

impl Destination for HttpOutput {
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.current
    }

    fn commit(&mut self, _start: usize, mono: u64) {
        self.current_records += 1;
        self.current_oldest.get_or_insert(mono);
        if self.current_started.is_none() {
            self.current_started = Some(Instant::now());
        }
        if self.current_records >= self.batch_size as u64
            || self.current.len() >= self.config.max_batch_bytes
        {
            self.seal();
            self.reap(None);
            self.start_next(Instant::now());
        }
    }

    fn poll(&mut self, _idle: bool) -> Option<Instant> {
        self.reap(None);
        let now = Instant::now();
        if self
            .current_started
            .is_some_and(|t| now.duration_since(t) >= self.linger)
        {
            self.seal();
        }
        self.start_next(now);
        let linger = self.current_started.map(|t| t + self.linger);
        let retry = self
            .next_attempt
            .filter(|_| self.in_flight.is_none() && self.has_work());
        match (linger, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn flush(&mut self, deadline: Option<Instant>) -> bool {
        self.seal();
        loop {
            if !self.reap(Some(deadline)) {
                return false;
            }
            let now = Instant::now();
            let gate_closed = self.next_attempt.is_some_and(|t| now < t);
            if self.queue.is_empty() && (!self.spool_nonempty() || (self.failing && gate_closed)) {
                // Delivered, or durable on disk while the endpoint is failing.
                return true;
            }
            if self.failing && gate_closed && self.spool.is_some() {
                self.spool_memory();
                continue;
            }
            if let Some(t) = self.next_attempt.filter(|t| now < *t) {
                if deadline.is_some_and(|d| t > d) {
                    return self.queue.is_empty();
                }
                std::thread::sleep(t - now);
            }
            self.start_next(Instant::now());
            if self.in_flight.is_none() && !self.has_work() {
                return true;
            }
        }
    }

    fn close(&mut self, deadline: Option<Instant>) -> bool {
        let mut complete = self.flush(deadline);
        if let Some((batch, handle)) = self.in_flight.take() {
            // Cut short by the deadline. The server may have stored it: the spool's replay
            // is harmless (ids), and without a spool it counts as failed.
            handle.abort();
            complete = false;
            if batch.spool_seq.is_none() {
                self.spool_batch(batch);
            }
        }
        self.seal();
        if !self.queue.is_empty() {
            complete = false;
            self.spool_memory();
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
        complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_halves_by_lines() {
        let (a, b) = split(b"1\n2\n3\n4\n5\n");
        assert_eq!(
            (a.as_slice(), b.as_slice()),
            (&b"1\n2\n"[..], &b"3\n4\n5\n"[..])
        );
        let (a, b) = split(b"1\n2\n");
        assert_eq!((lines(&a), lines(&b)), (1, 1));
    }
}
