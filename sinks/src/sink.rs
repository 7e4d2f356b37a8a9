//! The `Sink` trait: what the ingest server needs from a store.

use std::future::Future;
use std::pin::Pin;

use faultline_schema::Record;

use crate::query::{Query, Stats, StatsQuery};

/// A boxed future, so `Sink` can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A durable store of records.
///
/// The server calls [`Sink::write`] with validated records that already carry an `id` and
/// `received_at`, and answers the client only when the returned future resolves: a sink
/// resolves it only once the records would survive a crash (fsynced, or committed).
pub trait Sink: Send + Sync + 'static {
    /// Stores `records` durably. Records whose `id` was already stored are skipped and counted
    /// as duplicates, so a client's retry never creates a second copy.
    fn write(&self, records: Vec<Record>) -> BoxFuture<'_, Result<WriteReceipt, SinkError>>;

    /// The records matching `query`, newest `ts` first, at most `query.limit`.
    fn query(&self, query: Query) -> BoxFuture<'_, Result<Vec<Record>, SinkError>>;

    /// Counts per minute, service and level.
    fn stats(&self, query: StatsQuery) -> BoxFuture<'_, Result<Stats, SinkError>>;

    /// A cheap snapshot for readiness checks and metrics.
    fn health(&self) -> SinkHealth;

    /// Stops accepting writes, finishes every write already accepted, and makes it durable.
    fn shutdown(&self) -> BoxFuture<'_, Result<(), SinkError>>;
}

/// What a completed write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReceipt {
    /// Records newly stored.
    pub written: usize,
    /// Records skipped because their id was already stored.
    pub duplicates: usize,
}

/// Why a sink could not do what was asked. Every variant is retryable by the client
/// except where noted; the server maps them to 503 with `Retry-After`.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The write queue is full; nothing was written.
    #[error("sink queue is full")]
    Overloaded,
    /// The sink is shutting down or has stopped; nothing was written.
    #[error("sink is closed")]
    Closed,
    /// The storage failed (disk full, I/O error, database down); nothing was acknowledged.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// An I/O error while reading.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// A point-in-time view of a sink's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkHealth {
    /// Which store: `file`, `postgres`, or `fanout`.
    pub kind: &'static str,
    /// Whether the sink is accepting and completing writes.
    pub ready: bool,
    /// Batches waiting to be written.
    pub queue_depth: usize,
    /// The most batches that may wait before writes are refused.
    pub queue_capacity: usize,
    /// Bytes currently stored.
    pub stored_bytes: u64,
    /// The last storage error, if the sink is not ready.
    pub last_error: Option<String>,
    /// The outage spool, for sinks that have one.
    pub spool: Option<SpoolHealth>,
}

/// What waits in a sink's outage spool.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpoolHealth {
    /// Batches waiting.
    pub batches: usize,
    /// Records in them.
    pub records: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// The most the spool may hold before writes are refused with 503.
    pub capacity_bytes: u64,
    /// Age of the oldest waiting batch.
    pub oldest_age_secs: f64,
}
