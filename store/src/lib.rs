//! `faultline-store`: where records go once the ingest server (or a service) has them.
//!
//! # The path of a record through a store
//!
//! 1. The caller hands [`RecordStore::write`] a batch of validated records, each with an `id` and
//!    `received_at`.
//! 2. The file store serializes them on the caller's task, queues them to its writer thread
//!    (a bounded queue: when full, the write fails at once with [`StoreError::Overloaded`]),
//!    and the writer appends every queued batch to the active NDJSON segment, skips ids it
//!    has already stored, and fsyncs once for all of them (group commit).
//! 3. Only then does the caller's future resolve, so an acknowledged record is on disk.
//! 4. Queries ([`RecordStore::query`]) read segments newest first, backwards; per-minute counts
//!    ([`RecordStore::stats`]) come from memory ([`MinuteCounts`]), rebuilt from segments on start.
//!
//! # Layout
//!
//! - `store.rs`: the [`RecordStore`] trait and its result types.
//! - `query.rs`: [`Query`], [`StatsQuery`], [`MinuteCounts`], shared by every store.
//! - `file/`: [`FileStore`], the embedded default store.
//! - `postgres/`: [`PostgresStore`], the production store, with its outage spool.
//! - `fanout.rs`: [`FanoutStore`], PostgreSQL plus a file copy.
//! - `archive/`: [`ArchiveDir`] and [`ArchiveReader`]: what retention writes before it
//!   deletes (gzip NDJSON per day) and what `faultline import` reads back.
//! - `issues/`: [`issues`], error events grouped by fingerprint: the types every store
//!   answers with and the in-memory aggregates ([`issues::IssueTable`]).
//! - `sourcemaps/`: [`SourceMapStore`], each release's uploaded source maps, in the data dir
//!   ([`FileSourceMaps`]) or PostgreSQL ([`PostgresSourceMaps`]).
//! - `private.rs`: files 0600 and directories 0700, for every store (and the alert state).

mod archive;
mod dedup;
mod fanout;
mod file;
pub mod issues;
mod postgres;
mod private;
mod query;
mod rollup;
mod search;
mod sourcemaps;
mod store;

pub use archive::{ArchiveDir, ArchiveError, ArchiveReader, ArchiveSummary, check_archive};
pub use dedup::RecentIds;
pub use fanout::FanoutStore;
#[doc(hidden)]
pub use file::fuzzing;
pub use file::{FileStore, FileStoreConfig};
pub use postgres::{PostgresConfig, PostgresStore, WriteMethod};
pub use private::{
    PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, create_private_dir_all, create_private_file,
    private_open_options, restrict_dir,
};
pub use query::{
    DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT, MinuteCounts, Query, Stats, StatsBucket, StatsQuery,
    contains_ignore_case,
};
pub use rollup::{
    FUTURE_SLACK_MS, GroupBy, HOUR_MS, HourlyRollups, MAX_KEYS_PER_HOUR, OVERFLOW_KEY,
    RollupBucket, RollupQuery, event_weight, hour_of, release_of,
};
pub use search::{Cursor, MAX_META_FILTERS, MAX_META_KEY_PARTS, MetaFilter};
pub use sourcemaps::{
    FileSourceMaps, PostgresSourceMaps, ReleaseMaps, ReleaseSummary, SourceMapError, SourceMapFile,
    SourceMapStore, SourceMapUpload,
};
pub use store::{
    ArchiveHealth, BoxFuture, RecordStore, SpoolHealth, StoreError, StoreHealth, WriteReceipt,
};
