//! Settings of the PostgreSQL store, with their defaults in one place.

use std::path::PathBuf;
use std::time::Duration;

/// How a batch is sent to PostgreSQL. Both are one round trip and idempotent on the id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMethod {
    /// `INSERT ... SELECT FROM UNNEST($1::uuid[], ...) ON CONFLICT DO NOTHING`: one statement.
    #[default]
    Unnest,
    /// `COPY` into a temporary table, then `INSERT ... SELECT ... ON CONFLICT DO NOTHING`.
    Copy,
}

/// Settings of [`crate::PostgresStore`].
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// Connections kept open.
    pub pool_size: u32,
    /// UNNEST or COPY.
    pub write_method: WriteMethod,
    /// A batch that PostgreSQL has not committed within this time (including waiting for a
    /// connection and retries) goes to the spool instead, so a slow database does not hold
    /// clients.
    pub write_timeout: Duration,
    /// Partitions older than this (by `ts`) are dropped whole.
    pub retention: Duration,
    /// Daily partitions are created this many days ahead of today.
    pub partitions_ahead: u32,
    /// Where batches wait, durably, while PostgreSQL is unreachable.
    pub spool_dir: PathBuf,
    /// The most the spool may hold; beyond it writes fail with `Overloaded` (503).
    pub spool_max_bytes: u64,
    /// Issues whose last event is older than this are deleted (default 90 days).
    pub issue_retention: Duration,
    /// Where retention archives partitions (and expired rows of the default partition)
    /// before dropping them (`None`, the default: it drops them outright).
    pub archive: Option<crate::ArchiveDir>,
}

impl PostgresConfig {
    /// Defaults for `url`, spooling under `spool_dir`.
    pub fn new(url: impl Into<String>, spool_dir: impl Into<PathBuf>) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            pool_size: 8,
            write_method: WriteMethod::default(),
            write_timeout: Duration::from_secs(5),
            retention: Duration::from_secs(30 * 86_400),
            partitions_ahead: 3,
            spool_dir: spool_dir.into(),
            spool_max_bytes: 1024 * 1024 * 1024,
            issue_retention: crate::issues::DEFAULT_ISSUE_RETENTION,
            archive: None,
        }
    }
}
