//! The `RecordStore` trait: what the ingest server needs from a store.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use faultline_schema::{Record, Timestamp, Uuid};

use crate::issues::{Issue, IssueChange, IssueDetail, IssuePage, IssueQuery, IssueStatus};
use crate::query::{MAX_QUERY_LIMIT, Query, Stats, StatsQuery};
use crate::rollup::{RollupBucket, RollupQuery};

/// A boxed future, so `RecordStore` can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A durable store of records.
///
/// The server calls [`RecordStore::write`] with validated records that already carry an `id` and
/// `received_at`, and answers the client only when the returned future resolves: a store
/// resolves it only once the records would survive a crash (fsynced, or committed).
pub trait RecordStore: Send + Sync + 'static {
    /// Stores `records` durably. Records whose `id` was already stored are skipped and counted
    /// as duplicates, so a client's retry never creates a second copy.
    fn write(&self, records: Vec<Record>) -> BoxFuture<'_, Result<WriteReceipt, StoreError>>;

    /// The records matching `query`, newest `ts` first, at most `query.limit`.
    fn query(&self, query: Query) -> BoxFuture<'_, Result<Vec<Record>, StoreError>>;

    /// Counts per minute, service and level.
    fn stats(&self, query: StatsQuery) -> BoxFuture<'_, Result<Stats, StoreError>>;

    /// Counts per hour, grouped as `query` asks (see [`RollupQuery`]), oldest hour first,
    /// then by group. A store that keeps no rollups answers nothing.
    fn rollups(&self, query: RollupQuery) -> BoxFuture<'_, Result<Vec<RollupBucket>, StoreError>> {
        let _ = query;
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// Every record matching `query` (whose `limit` is ignored), newest `ts` first, at most
    /// `max`: what the alert evaluator reads to refill its windows on start, and what
    /// `faultline check-alerts` replays.
    ///
    /// The default pages backwards through [`RecordStore::query`] (each page ends where the last one
    /// did, records sharing that millisecond are told apart by `id`); a store that can read a
    /// whole window in one pass should override it.
    fn scan(&self, query: Query, max: usize) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        Box::pin(scan_by_pages(self, query, max))
    }

    /// A page of issues (see [`crate::issues`]). A store that keeps no issues answers an
    /// empty page.
    fn issues(&self, query: IssueQuery) -> BoxFuture<'_, Result<IssuePage, StoreError>> {
        let _ = query;
        Box::pin(std::future::ready(Ok(IssuePage::default())))
    }

    /// One issue with its hourly counts, or `None` if there is no such issue.
    fn issue(&self, id: String) -> BoxFuture<'_, Result<Option<IssueDetail>, StoreError>> {
        let _ = id;
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Sets an issue's status durably; `None` if there is no such issue.
    fn set_issue_status(
        &self,
        id: String,
        status: IssueStatus,
    ) -> BoxFuture<'_, Result<Option<Issue>, StoreError>> {
        let _ = (id, status);
        Box::pin(std::future::ready(Ok(None)))
    }

    /// Issues created or regressed at or after `since` (the store's clock), oldest first:
    /// what the alert rules `new_issue` and `regression` read.
    fn issue_changes(
        &self,
        since: Timestamp,
    ) -> BoxFuture<'_, Result<Vec<IssueChange>, StoreError>> {
        let _ = since;
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    /// A cheap snapshot for readiness checks and metrics.
    fn health(&self) -> StoreHealth;

    /// Stops accepting writes, finishes every write already accepted, and makes it durable.
    fn shutdown(&self) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// [`RecordStore::scan`] on top of [`RecordStore::query`]: pages of [`MAX_QUERY_LIMIT`] records, each
/// ending at (and including) the oldest `ts` of the previous one, skipping the ids already
/// returned for that millisecond. If a whole page shares one millisecond, the rest of that
/// millisecond is skipped rather than looping.
async fn scan_by_pages<S: RecordStore + ?Sized>(
    store: &S,
    mut query: Query,
    max: usize,
) -> Result<Vec<Record>, StoreError> {
    let mut out: Vec<Record> = Vec::new();
    query.limit = MAX_QUERY_LIMIT;
    let mut boundary: Option<(Timestamp, HashSet<Option<Uuid>>)> = None;
    while out.len() < max {
        let page = store.query(query.clone()).await?;
        let full = page.len() >= query.limit;
        let Some(oldest) = page.last().map(|r| r.ts) else {
            break;
        };
        let before = out.len();
        for record in page {
            let seen = boundary
                .as_ref()
                .is_some_and(|(ts, ids)| record.ts == *ts && ids.contains(&record.id));
            if !seen && out.len() < max {
                out.push(record);
            }
        }
        if !full {
            break;
        }
        if out.len() == before {
            query.until = Some(oldest);
            boundary = None;
        } else {
            let ids = out
                .iter()
                .rev()
                .take_while(|r| r.ts == oldest)
                .map(|r| r.id)
                .collect();
            boundary = Some((oldest, ids));
            query.until = Some(Timestamp::from_unix_millis(oldest.unix_millis() + 1));
        }
    }
    Ok(out)
}

/// What a completed write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteReceipt {
    /// Records newly stored.
    pub written: usize,
    /// Records skipped because their id was already stored.
    pub duplicates: usize,
}

/// Why a store could not do what was asked. Every variant is retryable by the client
/// except where noted; the server maps them to 503 with `Retry-After`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write queue is full; nothing was written.
    #[error("store queue is full")]
    Overloaded,
    /// The store is shutting down or has stopped; nothing was written.
    #[error("store is closed")]
    Closed,
    /// The disk holding the store (or the outage spool) has no space left; nothing was
    /// acknowledged. Writes succeed again once space is freed, without a restart.
    #[error("disk full: {0}")]
    DiskFull(String),
    /// The storage failed (I/O error, database down); nothing was acknowledged.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// An I/O error while reading.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// A point-in-time view of a store's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreHealth {
    /// Which store: `file`, `postgres`, or `fanout`.
    pub kind: &'static str,
    /// Whether the store is accepting and completing writes.
    pub ready: bool,
    /// Batches waiting to be written.
    pub queue_depth: usize,
    /// The most batches that may wait before writes are refused.
    pub queue_capacity: usize,
    /// Bytes currently stored.
    pub stored_bytes: u64,
    /// The last storage error, if the store is not ready.
    pub last_error: Option<String>,
    /// The outage spool, for stores that have one.
    pub spool: Option<SpoolHealth>,
    /// Archiving before retention deletes, when an archive directory is set.
    pub archive: Option<ArchiveHealth>,
}

/// How archiving before deletion goes (`[retention] archive_dir`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveHealth {
    /// Why the last archive could not be written, until one is: while it is set,
    /// retention deletes nothing (the store grows past its retention instead).
    pub last_error: Option<String>,
    /// Archive files written since the store was opened.
    pub files: u64,
    /// Records archived since the store was opened.
    pub records: u64,
}

/// What waits in a store's outage spool.
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

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::Level;

    /// Answers `query` from memory with the same contract as a real store (newest first,
    /// ties by larger id first, at most `limit`), so the default `scan` is tested alone.
    struct Memory(Vec<Record>);

    impl RecordStore for Memory {
        fn write(&self, _: Vec<Record>) -> BoxFuture<'_, Result<WriteReceipt, StoreError>> {
            Box::pin(async { Err(StoreError::Closed) })
        }
        fn query(&self, query: Query) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
            let mut hits: Vec<Record> = self
                .0
                .iter()
                .filter(|r| query.matches(r))
                .cloned()
                .collect();
            hits.sort_by_key(|r| std::cmp::Reverse((r.ts, r.id)));
            hits.truncate(query.limit);
            Box::pin(async move { Ok(hits) })
        }
        fn stats(&self, _: StatsQuery) -> BoxFuture<'_, Result<Stats, StoreError>> {
            Box::pin(async { Ok(Stats::default()) })
        }
        fn health(&self) -> StoreHealth {
            StoreHealth::default()
        }
        fn shutdown(&self) -> BoxFuture<'_, Result<(), StoreError>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn record(n: u128, ms: i64) -> Record {
        let mut r = Record::new(
            Timestamp::from_unix_millis(ms),
            "api",
            Level::Error,
            "e",
            "m",
        );
        r.id = Some(Uuid::from_u128(n));
        r
    }

    fn block_on<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn default_scan_pages_through_ties_without_losing_or_doubling() {
        // 2,600 records, ten per millisecond, so page boundaries fall inside a millisecond.
        let store = Memory(
            (0..2600)
                .map(|n| record(n, 1_000 + n as i64 / 10))
                .collect(),
        );
        let all = block_on(store.scan(Query::default(), usize::MAX)).unwrap();
        let ids: HashSet<_> = all.iter().map(|r| r.id).collect();
        assert_eq!((all.len(), ids.len()), (2600, 2600));
        assert!(all.windows(2).all(|w| w[0].ts >= w[1].ts), "newest first");
        assert_eq!(
            block_on(store.scan(Query::default(), 1500)).unwrap().len(),
            1500
        );
        let since = Query {
            since: Some(Timestamp::from_unix_millis(1_200)),
            ..Query::default()
        };
        assert_eq!(block_on(store.scan(since, usize::MAX)).unwrap().len(), 600);
    }

    #[test]
    fn default_scan_ends_when_a_whole_page_shares_one_millisecond() {
        let mut records: Vec<Record> = (0..1500).map(|n| record(n, 5_000)).collect();
        records.extend((1500..1510).map(|n| record(n, 4_000)));
        let all = block_on(Memory(records).scan(Query::default(), usize::MAX)).unwrap();
        assert_eq!(
            all.len(),
            1010,
            "one page of the crowded millisecond, then older ones"
        );
    }
}
