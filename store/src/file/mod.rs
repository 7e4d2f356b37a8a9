//! The file store: the embedded default store, NDJSON segments on local disk.
//!
//! # Why it is built this way
//!
//! The server may answer a client only once its records would survive a crash, and an fsync
//! costs milliseconds. So writes are serialized on the caller's task (spreading the CPU work
//! over the runtime), queued to one writer thread, and every batch that queued up while the
//! previous fsync ran shares the next one (group commit). The queue is bounded and a full
//! queue fails the write at once with [`StoreError::Overloaded`]: the server turns that into a
//! 503 with `Retry-After` instead of piling up memory.
//!
//! Records go to append-only segments (`dir/segments/{seq:020}.ndjson`): appends never rewrite
//! data, a crash can only tear the tail of the newest segment, and retention deletes whole
//! files. Each sealed segment gets a small sidecar summary (`{seq:020}.idx.json`) so a start
//! and a query learn a segment's time range without reading it. Readers see the index in
//! memory with each segment's *committed* length, so they never read half a line.
//!
//! # Layout
//!
//! - `config.rs`: [`FileStoreConfig`] and its defaults.
//! - `segment.rs`: file names, the listing, sidecars, torn-tail repair, counted fsyncs.
//! - `filter.rs`: per sealed segment, a Bloom filter of its `meta` values, for rare-value
//!   queries.
//! - `writer.rs`: the writer thread: group commit, dedup, rotation, retention.
//! - `archive.rs`: archive before delete, on a thread of its own (`archive_dir`).
//! - `reader.rs`: backwards reading for queries, the start-up scan.
//! - `issues.rs`: the issue aggregates the writer keeps, their snapshot and replay.
//! - `rollups.rs`: the hourly counts the writer keeps, one file per day, and their replay.
//! - `fuzzing.rs`: the framing and tail-repair invariants the fuzzer checks (hidden).
//! - this file: [`FileStore`], the handle, and its [`RecordStore`] implementation.

mod archive;
mod config;
mod filter;
#[doc(hidden)]
pub mod fuzzing;
mod issues;
mod reader;
mod rollups;
mod segment;
mod writer;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use faultline_schema::{Record, Timestamp};
use tokio::sync::{oneshot, watch};

pub use config::FileStoreConfig;

use crate::issues::{Issue, IssueChange, IssueDetail, IssuePage, IssueQuery, IssueStatus};
use crate::query::{MAX_QUERY_LIMIT, MinuteCounts, Query, Stats, StatsQuery};
use crate::rollup::{RollupBucket, RollupQuery};
use crate::store::{BoxFuture, RecordStore, StoreError, StoreHealth, WriteReceipt};
use issues::FileIssues;
use metrics_names::{QUEUE_DEPTH, SINK_LABEL};
use rollups::FileRollups;
use segment::{Fsyncs, SegmentInfo};
use writer::{WriteRequest, Writer, publish_totals};

/// Metric names, one place so dashboards and code agree.
mod metrics_names {
    /// The `store` label's value on every metric of this store.
    pub(crate) const SINK_LABEL: &str = "file";
    /// Counter: records appended and fsynced.
    pub(crate) const RECORDS_WRITTEN: &str = "faultline_sink_records_written_total";
    /// Counter: records skipped because their id was already stored.
    pub(crate) const DUPLICATES: &str = "faultline_sink_duplicates_total";
    /// Counter: groups that failed to write or fsync.
    pub(crate) const WRITE_ERRORS: &str = "faultline_sink_write_errors_total";
    /// Histogram: seconds per fsync.
    pub(crate) const FSYNC_SECONDS: &str = "faultline_sink_fsync_seconds";
    /// Histogram: write batches made durable by one fsync.
    pub(crate) const GROUP_BATCHES: &str = "faultline_sink_group_batches";
    /// Gauge: batches waiting for the writer.
    pub(crate) const QUEUE_DEPTH: &str = "faultline_sink_queue_depth";
    /// Gauge: bytes in all segments.
    pub(crate) const STORED_BYTES: &str = "faultline_sink_stored_bytes";
    /// Gauge: number of segments.
    pub(crate) const SEGMENTS: &str = "faultline_sink_segments";
}

/// The durable file store: NDJSON segments under a directory, group commit, rotation,
/// retention, newest-first queries and in-memory per-minute counts.
///
/// A cheap handle: clones share one store and one writer thread. The thread stops once
/// [`RecordStore::shutdown`] is called or the last handle is dropped, after writing everything
/// already queued. Open a directory with one `FileStore` at a time: nothing stops a second
/// process from writing to the same segments.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` once shut down. Dropping it lets the writer drain the queue and exit. Writers
    /// only read-lock it (`try_send` takes `&self`), so they do not contend.
    sender: RwLock<Option<SyncSender<WriteRequest>>>,
    shared: Arc<Shared>,
    /// Turns `true` (or closes) when the writer thread has exited.
    writer_done: watch::Receiver<bool>,
    queue_capacity: usize,
    dir: PathBuf,
}

/// What the writer thread and the handles share.
pub(crate) struct Shared {
    /// `dir/segments`.
    pub(crate) segments_dir: PathBuf,
    /// Every segment, oldest first; the last one is active. Written only by the writer.
    pub(crate) segments: RwLock<Vec<SegmentInfo>>,
    /// Per-minute counts of stored records, for [`RecordStore::stats`].
    pub(crate) counts: Mutex<MinuteCounts>,
    /// The issues of the stored error records.
    pub(crate) issues: FileIssues,
    /// Hourly counts for the retention period.
    pub(crate) rollups: FileRollups,
    /// Every fsync, counted.
    pub(crate) fsyncs: Fsyncs,
    /// Batches accepted into the queue and not yet taken by the writer.
    pub(crate) queue_depth: AtomicUsize,
    /// Sum of the segments' committed lengths.
    pub(crate) stored_bytes: AtomicU64,
    /// The last write error, until a later write succeeds.
    pub(crate) failure: Mutex<Option<String>>,
    /// How archiving goes, when retention archives before it deletes.
    pub(crate) archive: Option<crate::archive::ArchiveState>,
    /// Makes the writer fail every append with this error (tests of the failure path).
    #[cfg(test)]
    pub(crate) fault: Mutex<Option<std::io::ErrorKind>>,
    /// Makes the next fsync of an appended group fail with this error.
    #[cfg(test)]
    pub(crate) sync_fault: Mutex<Option<std::io::ErrorKind>>,
    /// Set to [`HOLD`] to make the writer wait before its next append; it sets [`HELD`]
    /// while waiting, until the flag is cleared.
    #[cfg(test)]
    pub(crate) hold_appends: std::sync::atomic::AtomicU8,
    /// An exclusive lock on `dir/LOCK`, held while the store is open, so a second process
    /// on the same directory fails at start instead of interleaving writes.
    _lock: std::fs::File,
}

/// The lock file inside the data directory.
const LOCK_FILE: &str = "LOCK";

/// How long `open` waits for a lock that is being released (a store closing in this
/// process, or a restarted server's predecessor still exiting).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Takes the directory's exclusive lock (released by the OS when the file is closed, also on
/// `kill -9`, so a crash never leaves a stale lock).
fn lock_dir(dir: &std::path::Path) -> Result<std::fs::File, StoreError> {
    crate::private::create_private_dir_all(dir)?;
    let file = crate::private::private_open_options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Unavailable(format!(
                    "{} is in use by another process: stop it, or give this one its own \
                     data dir",
                    dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::Io(e)),
        }
    }
}

impl FileStore {
    /// Opens (creating) the store: repairs a torn tail, loads the segment index, rebuilds the
    /// per-minute counts (records whose `ts` is within `stats_window`) and the dedup id set
    /// from the newest segments, and starts the writer thread.
    ///
    /// Blocking (it reads the newest segments); no tokio runtime is required. Call it from
    /// `spawn_blocking` or before the server starts.
    pub fn open(config: FileStoreConfig) -> Result<FileStore, StoreError> {
        let lock = lock_dir(&config.dir)?;
        let fsyncs = Fsyncs::default();
        let recovered = reader::recover(&config, &fsyncs)?;
        let issues = FileIssues::open(
            &config.dir,
            &config.segments_dir(),
            &recovered.segments,
            config.issue_retention,
        )?;
        let rollups = FileRollups::open(
            &config.dir,
            &config.segments_dir(),
            &recovered.segments,
            config.retention_age,
        )?;
        let queue_capacity = config.queue_capacity.max(1);
        let shared = Arc::new(Shared {
            segments_dir: config.segments_dir(),
            segments: RwLock::new(recovered.segments),
            counts: Mutex::new(recovered.counts),
            issues,
            rollups,
            fsyncs,
            queue_depth: AtomicUsize::new(0),
            stored_bytes: AtomicU64::new(0),
            failure: Mutex::new(None),
            archive: config
                .archive
                .as_ref()
                .map(|_| crate::archive::ArchiveState::default()),
            #[cfg(test)]
            fault: Mutex::new(None),
            #[cfg(test)]
            sync_fault: Mutex::new(None),
            #[cfg(test)]
            hold_appends: std::sync::atomic::AtomicU8::new(0),
            _lock: lock,
        });
        publish_totals(&shared, &read(&shared.segments));

        let (sender, requests) = mpsc::sync_channel(queue_capacity);
        let (done, writer_done) = watch::channel(false);
        let dir = config.dir.clone();
        let writer = Writer::new(
            Arc::clone(&shared),
            config,
            recovered.active_file,
            recovered.active_first_write,
            recovered.dedup,
            recovered.active_filter,
        )?;
        std::thread::Builder::new()
            .name("faultline-file-store".into())
            .spawn(move || {
                writer.run(requests);
                let _ = done.send(true);
            })?;
        Ok(FileStore {
            inner: Arc::new(Inner {
                sender: RwLock::new(Some(sender)),
                shared,
                writer_done,
                queue_capacity,
                dir,
            }),
        })
    }

    /// Fsyncs done since [`FileStore::open`] began (appends, new segments, sidecars, deletions).
    /// Fewer than the batches written shows group commit at work.
    pub fn fsync_count(&self) -> u64 {
        self.inner.shared.fsyncs.count()
    }

    fn is_closed(&self) -> bool {
        read(&self.inner.sender).is_none()
    }

    /// Hands a serialized batch to the writer without waiting.
    fn submit(&self, request: WriteRequest) -> Result<(), StoreError> {
        let sender = read(&self.inner.sender);
        let Some(sender) = sender.as_ref() else {
            return Err(StoreError::Closed);
        };
        // Counted before sending, so the writer's decrement can never come first.
        let depth = &self.inner.shared.queue_depth;
        let queued = depth.fetch_add(1, Relaxed) + 1;
        match sender.try_send(request) {
            Ok(()) => {
                metrics::gauge!(QUEUE_DEPTH, "sink" => SINK_LABEL).set(queued as f64);
                Ok(())
            }
            Err(TrySendError::Full(_)) => {
                depth.fetch_sub(1, Relaxed);
                Err(StoreError::Overloaded)
            }
            Err(TrySendError::Disconnected(_)) => {
                depth.fetch_sub(1, Relaxed);
                Err(StoreError::Closed)
            }
        }
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl RecordStore for FileStore {
    fn write(&self, records: Vec<Record>) -> BoxFuture<'_, Result<WriteReceipt, StoreError>> {
        Box::pin(async move {
            if records.is_empty() {
                return if self.is_closed() {
                    Err(StoreError::Closed)
                } else {
                    Ok(WriteReceipt::default())
                };
            }
            let (ack, answer) = oneshot::channel();
            let request = WriteRequest::new(&records, ack);
            // Freed here, on the caller's task, not on the writer's one thread.
            drop(records);
            self.submit(request)?;
            answer.await.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "file store writer stopped before answering".into(),
                ))
            })
        })
    }

    fn query(&self, query: Query) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        // One past the page limit, so a caller can ask whether another page follows.
        let limit = query.limit.min(MAX_QUERY_LIMIT + 1);
        self.scan(query, limit)
    }

    /// One backwards pass over the segments that overlap the window, keeping the newest
    /// `max` matches (the same reader as [`RecordStore::query`], without its page limit).
    fn scan(&self, mut query: Query, max: usize) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        Box::pin(async move {
            query.limit = max;
            let shared = Arc::clone(&self.inner.shared);
            let segments = read(&shared.segments).clone();
            tokio::task::spawn_blocking(move || {
                reader::query(&shared.segments_dir, &segments, &query)
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("query task failed: {e}")))?
            .map_err(StoreError::Io)
        })
    }

    fn stats(&self, query: StatsQuery) -> BoxFuture<'_, Result<Stats, StoreError>> {
        let stats = {
            let mut counts = lock(&self.inner.shared.counts);
            counts.prune(Timestamp::now());
            counts.query(&query)
        };
        Box::pin(std::future::ready(Ok(stats)))
    }

    fn rollups(&self, query: RollupQuery) -> BoxFuture<'_, Result<Vec<RollupBucket>, StoreError>> {
        let buckets = self.inner.shared.rollups.query(&query);
        Box::pin(std::future::ready(Ok(buckets)))
    }

    fn issues(&self, query: IssueQuery) -> BoxFuture<'_, Result<IssuePage, StoreError>> {
        let page = lock(&self.inner.shared.issues.state)
            .table
            .list(&query, Timestamp::now());
        Box::pin(std::future::ready(Ok(page)))
    }

    fn issue(&self, id: String) -> BoxFuture<'_, Result<Option<IssueDetail>, StoreError>> {
        let detail = lock(&self.inner.shared.issues.state)
            .table
            .get(&id, Timestamp::now());
        Box::pin(std::future::ready(Ok(detail)))
    }

    /// Written to the snapshot before the future resolves, so a status survives a crash.
    fn set_issue_status(
        &self,
        id: String,
        status: IssueStatus,
    ) -> BoxFuture<'_, Result<Option<Issue>, StoreError>> {
        Box::pin(async move {
            if self.is_closed() {
                return Err(StoreError::Closed);
            }
            let shared = Arc::clone(&self.inner.shared);
            tokio::task::spawn_blocking(move || {
                let changed = {
                    let mut state = lock(&shared.issues.state);
                    let changed = state.table.set_status(&id, status, Timestamp::now());
                    state.dirty |= changed.is_some();
                    changed
                };
                if changed.is_some() {
                    shared.issues.snapshot_if_dirty()?;
                }
                Ok(changed)
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("issue status task failed: {e}")))?
        })
    }

    fn issue_changes(
        &self,
        since: Timestamp,
    ) -> BoxFuture<'_, Result<Vec<IssueChange>, StoreError>> {
        let changes = lock(&self.inner.shared.issues.state)
            .table
            .changes_since(since);
        Box::pin(std::future::ready(Ok(changes)))
    }

    fn health(&self) -> StoreHealth {
        let inner = &self.inner;
        let writer_gone = inner.writer_done.has_changed().is_err() || *inner.writer_done.borrow();
        let last_error = lock(&inner.shared.failure).clone();
        StoreHealth {
            kind: "file",
            ready: !self.is_closed() && !writer_gone && last_error.is_none(),
            queue_depth: inner.shared.queue_depth.load(Relaxed),
            queue_capacity: inner.queue_capacity,
            stored_bytes: inner.shared.stored_bytes.load(Relaxed),
            last_error,
            spool: None,
            archive: inner.shared.archive.as_ref().map(|a| a.snapshot()),
        }
    }

    /// Refuses new writes from the moment it is called (even if the future is never
    /// awaited); the future resolves once every batch queued before is durable and
    /// answered and the writer thread has exited. The active segment stays active for the
    /// next open.
    fn shutdown(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        drop(write(&self.inner.sender).take());
        let mut writer_done = self.inner.writer_done.clone();
        Box::pin(async move {
            // An error means the thread is gone too (it dropped its end on the way out).
            let _ = writer_done.wait_for(|done| *done).await;
            Ok(())
        })
    }
}

/// Locks, ignoring poisoning: every critical section leaves the data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks, ignoring poisoning (see [`lock`]).
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks, ignoring poisoning (see [`lock`]).
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::{Level, Uuid};
    use writer::{HELD, HOLD};

    fn record(n: u128) -> Record {
        let mut r = Record::new(Timestamp::now(), "api", Level::Error, "e", format!("r{n}"));
        r.id = Some(Uuid::from_u128(n));
        r.received_at = Some(Timestamp::now());
        r
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn scan_returns_a_whole_window_beyond_the_query_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileStore::open(FileStoreConfig::new(tmp.path())).unwrap();
        let records: Vec<Record> = (1..=2500).map(record).collect();
        store.write(records).await.unwrap();
        let all = store.scan(Query::default(), usize::MAX).await.unwrap();
        assert_eq!(all.len(), 2500);
        let capped = store.scan(Query::default(), 10).await.unwrap();
        assert_eq!(capped.len(), 10);
        assert_eq!(store.query(Query::default()).await.unwrap().len(), 100);
        store.shutdown().await.unwrap();
    }

    #[test]
    fn handle_is_send_sync_and_a_sink_object() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<FileStore>();
        let _: Option<Box<dyn RecordStore>> =
            None::<Box<FileStore>>.map(|s| s as Box<dyn RecordStore>);
    }

    /// A store in a temp dir holding `record(1)`, and its first segment's path.
    async fn store_with_one_record() -> (tempfile::TempDir, FileStore, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileStore::open(FileStoreConfig::new(tmp.path())).unwrap();
        store.write(vec![record(1)]).await.unwrap();
        let segment = segment::segment_path(&tmp.path().join("segments"), 1);
        (tmp, store, segment)
    }

    /// Waits (up to 10 s) until the store reports ready again after a failure.
    async fn wait_until_ready(store: &FileStore) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !store.health().ready {
            assert!(std::time::Instant::now() < deadline, "never ready again");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Guards the disk-full path: a failed group is cut off, never acknowledged, not
    /// remembered as stored, and the store recovers (readiness first) once the disk takes
    /// writes again.
    #[tokio::test(flavor = "multi_thread")]
    async fn failed_write_is_cut_off_and_the_sink_recovers() {
        let (_tmp, store, segment) = store_with_one_record().await;
        let len = std::fs::metadata(&segment).unwrap().len();

        *lock(&store.inner.shared.fault) = Some(std::io::ErrorKind::StorageFull);
        let err = store.write(vec![record(2), record(3)]).await.unwrap_err();
        assert!(matches!(err, StoreError::DiskFull(_)), "{err:?}");
        let health = store.health();
        assert!(!health.ready);
        assert!(health.last_error.is_some());
        assert_eq!(
            std::fs::metadata(&segment).unwrap().len(),
            len,
            "half-written group cut off"
        );
        assert_eq!(store.query(Query::default()).await.unwrap().len(), 1);

        // Space returns: readiness follows without a write having to try first.
        *lock(&store.inner.shared.fault) = None;
        wait_until_ready(&store).await;
        let receipt = store.write(vec![record(2), record(3)]).await.unwrap();
        assert_eq!(
            receipt.written, 2,
            "ids of the failed group were not remembered"
        );
        let health = store.health();
        assert!(health.ready, "{health:?}");
        assert_eq!(health.last_error, None);
        let messages: Vec<String> = store
            .query(Query::default())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.message)
            .collect();
        assert_eq!(messages.len(), 3);
        store.shutdown().await.unwrap();
        let content = std::fs::read_to_string(&segment).unwrap();
        assert_eq!(content.lines().count(), 3);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failed_fsync_fails_the_group_written_beside_it() {
        let (_tmp, store, segment) = store_with_one_record().await;
        let len = std::fs::metadata(&segment).unwrap().len();

        // A fills a group on its own, so B is written while A's fsync runs (the writer is
        // held at A's append until B is queued); B repeats one of A's ids, which must not
        // count as stored when A's fsync fails.
        let big = |n: u128| {
            let mut r = record(n);
            r.message = "x".repeat(64 * 1024);
            r
        };
        let a: Vec<Record> = (10..150).map(big).collect();
        let b = vec![record(10), record(200)];
        let shared = &store.inner.shared;
        *lock(&shared.sync_fault) = Some(std::io::ErrorKind::Other);
        shared.hold_appends.store(HOLD, Relaxed);
        let both = tokio::spawn({
            let (store, a, b) = (store.clone(), a.clone(), b.clone());
            async move { tokio::join!(store.write(a), store.write(b)) }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while shared.hold_appends.load(Relaxed) != HELD || shared.queue_depth.load(Relaxed) != 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer never held A with B queued"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        shared.hold_appends.store(0, Relaxed);
        let (ra, rb) = both.await.unwrap();
        assert!(matches!(ra, Err(StoreError::Unavailable(_))), "{ra:?}");
        assert!(matches!(rb, Err(StoreError::Unavailable(_))), "{rb:?}");
        assert_eq!(
            std::fs::metadata(&segment).unwrap().len(),
            len,
            "both groups cut off"
        );
        assert_eq!(store.query(Query::default()).await.unwrap().len(), 1);

        assert_eq!(*lock(&shared.sync_fault), None, "one fsync failed");
        wait_until_ready(&store).await;
        assert_eq!(store.write(a).await.unwrap().written, 140);
        let receipt = store.write(b).await.unwrap();
        assert_eq!((receipt.written, receipt.duplicates), (1, 1));
        store.shutdown().await.unwrap();
        let content = std::fs::read_to_string(&segment).unwrap();
        assert_eq!(content.lines().count(), 142);
    }
}
