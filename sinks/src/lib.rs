//! `faultline-sinks`: where records go once the ingest server (or a service) has them.
//!
//! # The path of a record through a sink
//!
//! 1. The caller hands [`Sink::write`] a batch of validated records, each with an `id` and
//!    `received_at`.
//! 2. The file sink serializes them on the caller's task, queues them to its writer thread
//!    (a bounded queue: when full, the write fails at once with [`SinkError::Overloaded`]),
//!    and the writer appends every queued batch to the active NDJSON segment, skips ids it
//!    has already stored, and fsyncs once for all of them (group commit).
//! 3. Only then does the caller's future resolve, so an acknowledged record is on disk.
//! 4. Queries ([`Sink::query`]) read segments newest first, backwards; per-minute counts
//!    ([`Sink::stats`]) come from memory ([`MinuteCounts`]), rebuilt from segments on start.
//!
//! # Layout
//!
//! - `sink.rs`: the [`Sink`] trait and its result types.
//! - `query.rs`: [`Query`], [`StatsQuery`], [`MinuteCounts`], shared by every sink.
//! - `file/`: [`FileSink`], the embedded default store.
//! - `postgres/`: [`PostgresSink`], the production store, with its outage spool.
//! - `fanout.rs`: [`FanoutSink`], PostgreSQL plus a file copy.

mod fanout;
mod file;
mod postgres;
mod query;
mod sink;

pub use fanout::FanoutSink;
#[doc(hidden)]
pub use file::fuzzing;
pub use file::{FileSink, FileSinkConfig};
pub use postgres::{PostgresConfig, PostgresSink, WriteMethod};
pub use query::{
    DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT, MinuteCounts, Query, Stats, StatsBucket, StatsQuery,
    contains_ignore_case,
};
pub use sink::{BoxFuture, Sink, SinkError, SinkHealth, SpoolHealth, WriteReceipt};
