//! Fan-out: PostgreSQL as the primary store and the file store as a second copy.
//!
//! A write is acknowledged only when both have it (the primary counting its spool); reads go
//! to the primary. If the copy fails, the write fails and the client retries; the primary
//! then sees the records again and skips them by id, so nothing is doubled.

use std::sync::Arc;

use faultline_schema::{Record, Timestamp};

use crate::issues::{Issue, IssueChange, IssueDetail, IssuePage, IssueQuery, IssueStatus};
use crate::query::{Query, Stats, StatsQuery};
use crate::rollup::{RollupBucket, RollupQuery};
use crate::store::{BoxFuture, RecordStore, StoreError, StoreHealth, WriteReceipt};

/// Writes to a primary and a copy; reads from the primary.
pub struct FanoutStore {
    primary: Arc<dyn RecordStore>,
    copy: Arc<dyn RecordStore>,
}

impl FanoutStore {
    /// `primary` answers queries; `copy` gets every record too.
    pub fn new(primary: Arc<dyn RecordStore>, copy: Arc<dyn RecordStore>) -> FanoutStore {
        FanoutStore { primary, copy }
    }
}

impl RecordStore for FanoutStore {
    fn write(&self, records: Vec<Record>) -> BoxFuture<'_, Result<WriteReceipt, StoreError>> {
        Box::pin(async move {
            let copy = records.clone();
            let (primary, second) =
                tokio::join!(self.primary.write(records), self.copy.write(copy));
            let receipt = primary?;
            second?;
            Ok(receipt)
        })
    }

    fn query(&self, query: Query) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        self.primary.query(query)
    }

    fn stats(&self, query: StatsQuery) -> BoxFuture<'_, Result<Stats, StoreError>> {
        self.primary.stats(query)
    }

    fn rollups(&self, query: RollupQuery) -> BoxFuture<'_, Result<Vec<RollupBucket>, StoreError>> {
        self.primary.rollups(query)
    }

    fn scan(&self, query: Query, max: usize) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        self.primary.scan(query, max)
    }

    fn issues(&self, query: IssueQuery) -> BoxFuture<'_, Result<IssuePage, StoreError>> {
        self.primary.issues(query)
    }

    fn issue(&self, id: String) -> BoxFuture<'_, Result<Option<IssueDetail>, StoreError>> {
        self.primary.issue(id)
    }

    /// The primary's status only: the copy's aggregates are its own (it is a copy of the
    /// records, for recovery, not a second answer).
    fn set_issue_status(
        &self,
        id: String,
        status: IssueStatus,
    ) -> BoxFuture<'_, Result<Option<Issue>, StoreError>> {
        self.primary.set_issue_status(id, status)
    }

    fn issue_changes(
        &self,
        since: Timestamp,
    ) -> BoxFuture<'_, Result<Vec<IssueChange>, StoreError>> {
        self.primary.issue_changes(since)
    }

    fn health(&self) -> StoreHealth {
        let (p, c) = (self.primary.health(), self.copy.health());
        StoreHealth {
            kind: "fanout",
            ready: p.ready && c.ready,
            last_error: p.last_error.clone().or(c.last_error),
            queue_depth: p.queue_depth + c.queue_depth,
            queue_capacity: c.queue_capacity,
            stored_bytes: c.stored_bytes,
            spool: p.spool,
            archive: match (p.archive, c.archive) {
                (Some(a), Some(b)) => Some(crate::ArchiveHealth {
                    last_error: a.last_error.or(b.last_error),
                    files: a.files + b.files,
                    records: a.records + b.records,
                }),
                (a, b) => a.or(b),
            },
        }
    }

    fn shutdown(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let (p, c) = tokio::join!(self.primary.shutdown(), self.copy.shutdown());
            p.and(c)
        })
    }
}
