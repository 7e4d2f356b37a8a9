//! Settings for the file store, with defaults in one place so the server's config section and
//! the tests start from the same numbers.

use std::path::PathBuf;
use std::time::Duration;

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;

/// Where the file store keeps its segments and when it rotates and deletes them.
///
/// Build one with [`FileStoreConfig::new`] and change the fields you need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStoreConfig {
    /// The store's directory; segments live in `dir/segments/`. Created if missing.
    pub dir: PathBuf,
    /// Rotate before a write would push a non-empty segment past this many bytes
    /// (default 64 MiB). A single write larger than this gets a segment of its own.
    pub segment_max_bytes: u64,
    /// Rotate a non-empty segment once its first write is older than this (default 1 hour),
    /// so retention can delete old data even on a quiet store.
    pub segment_max_age: Duration,
    /// Delete sealed segments whose newest record was received longer ago than this
    /// (default 30 days). Records without `received_at` count by their `ts`.
    pub retention_age: Duration,
    /// Delete the oldest sealed segments while all segments together exceed this many bytes
    /// (default 50 GiB; 0 means no limit). The active segment is never deleted.
    pub retention_bytes: u64,
    /// How many write batches may wait for the writer before writes fail with
    /// `StoreError::Overloaded` (default 1024, at least 1).
    pub queue_capacity: usize,
    /// How many of the most recent record ids are remembered, so a client's retry of an
    /// already stored batch is not stored twice (default 1 000 000; 0 turns deduplication off).
    /// Costs about 50 bytes of memory per id.
    pub dedup_ids: usize,
    /// How long per-minute counts for `RecordStore::stats` are kept (default 24 hours).
    pub stats_window: Duration,
    /// How long an issue is kept after its last event (default 90 days), longer than its
    /// events, so a regression after a quiet month is still recognized.
    pub issue_retention: Duration,
    /// Where retention archives segments before deleting them (`None`, the default: it
    /// deletes them outright). See [`crate::ArchiveDir`].
    pub archive: Option<crate::ArchiveDir>,
}

impl FileStoreConfig {
    /// The defaults, storing under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileStoreConfig {
            dir: dir.into(),
            segment_max_bytes: 64 * MIB,
            segment_max_age: Duration::from_secs(60 * 60),
            retention_age: Duration::from_secs(30 * 24 * 60 * 60),
            retention_bytes: 50 * GIB,
            queue_capacity: 1024,
            dedup_ids: 1_000_000,
            stats_window: Duration::from_secs(24 * 60 * 60),
            issue_retention: crate::issues::DEFAULT_ISSUE_RETENTION,
            archive: None,
        }
    }

    /// Where the segment files are.
    pub(crate) fn segments_dir(&self) -> PathBuf {
        self.dir.join("segments")
    }
}

/// A duration in whole milliseconds, saturating, for arithmetic with [`faultline_schema::Timestamp`].
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
