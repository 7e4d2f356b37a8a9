//! The PostgreSQL store: the production store.
//!
//! # The path of a batch
//!
//! 1. [`RecordStore::write`] inserts the batch in one statement (UNNEST) or one COPY, idempotent on
//!    `(id, ts)`: a replay inserts nothing and counts as duplicates. Transient errors are
//!    retried with backoff within `write_timeout`.
//! 2. If PostgreSQL is unreachable, failing, or slower than `write_timeout`, the batch goes
//!    to the local spool (`spool.rs`), fsynced before the write returns: the client's 202 is
//!    as durable as with the file store. While anything is spooled, new batches queue behind
//!    it, so batches reach the database in the order they were accepted.
//! 3. A drainer task moves spooled batches into PostgreSQL oldest first, deleting each file
//!    only after its commit; a crash mid-drain replays a file, which `ON CONFLICT DO NOTHING`
//!    absorbs.
//! 4. A batch's error events append what they add to their issues (`issue_deltas`); a task
//!    folds those into `issues` every second, and reads of issues fold first (`write.rs`).
//! 5. A maintenance task applies migrations (also when the database was down at start),
//!    creates daily partitions ahead of time and drops those past retention.
//!
//! # Layout
//!
//! `config.rs` settings, `schema.rs` migrations/partitions/retention, `archive.rs` archive
//! before delete (`archive_dir`), `write.rs` inserts
//! (with the issue upserts), `read.rs` queries, `issues.rs` issue reads, status and
//! retention, `spool.rs` the outage spool.

mod archive;
mod config;
mod issues;
mod read;
mod rollups;
mod schema;
mod spool;
mod write;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use faultline_schema::{Record, Timestamp};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::{Notify, watch};

pub use config::{PostgresConfig, WriteMethod};

use self::spool::Spool;
use crate::issues::{Issue, IssueChange, IssueDetail, IssuePage, IssueQuery, IssueStatus};
use crate::query::{Query, Stats, StatsQuery};
use crate::rollup::{RollupBucket, RollupQuery};
use crate::store::{BoxFuture, RecordStore, SpoolHealth, StoreError, StoreHealth, WriteReceipt};

const LABEL: &str = "postgres";
/// How often partitions and retention are looked after.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(600);
/// How often the issue deltas the writes append are folded into `issues` (reads of issues
/// fold too, so this only bounds how many wait).
const FOLD_INTERVAL: Duration = Duration::from_secs(1);
/// A spooled batch the database refuses this many times (not a connection problem) is set
/// aside so it cannot block the rest.
const MAX_DRAIN_ATTEMPTS: u32 = 5;

/// The PostgreSQL store. A cheap handle; clones share the pool, spool and tasks.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    config: PostgresConfig,
    spool: Spool,
    /// Wakes the drainer when a batch was spooled.
    spooled: Notify,
    migrated: AtomicBool,
    closed: AtomicBool,
    last_error: std::sync::Mutex<Option<String>>,
    /// How archiving goes, when retention archives before it drops.
    archive: Option<crate::archive::ArchiveState>,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("spool", &self.inner.config.spool_dir)
            .finish_non_exhaustive()
    }
}

fn connect_options(url: &str) -> Result<PgConnectOptions, StoreError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Unavailable(format!("invalid database URL: {e}")))?;
    // Timestamps cross the wire as epoch milliseconds; UTC keeps any textual view honest.
    Ok(options
        .options([("timezone", "UTC")])
        .application_name("faultline"))
}

impl PostgresStore {
    /// Opens the store: a lazy pool (the database may be down: writes then spool), the spool,
    /// the drainer and the maintenance task. Must be called inside a tokio runtime.
    pub async fn open(config: PostgresConfig) -> Result<PostgresStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size.max(1))
            .acquire_timeout(config.write_timeout)
            .connect_lazy_with(connect_options(&config.url)?);
        let spool_dir = config.spool_dir.clone();
        let spool_max = config.spool_max_bytes;
        let spool = tokio::task::spawn_blocking(move || Spool::open(&spool_dir, spool_max))
            .await
            .map_err(|e| StoreError::Unavailable(format!("spool start-up failed: {e}")))??;
        let (stop, _) = watch::channel(false);
        let archive = config
            .archive
            .as_ref()
            .map(|_| crate::archive::ArchiveState::default());
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                config,
                spool,
                spooled: Notify::new(),
                migrated: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                last_error: std::sync::Mutex::new(None),
                archive,
                stop,
                tasks: std::sync::Mutex::new(Vec::new()),
            }),
        };
        if let Err(e) = store.maintain().await {
            tracing::warn!(error = %e, "PostgreSQL not ready at start; spooling until it is");
        }
        let maintenance = tokio::spawn(store.clone().maintenance_loop());
        let drainer = tokio::spawn(store.clone().drain_loop());
        let folder = tokio::spawn(store.clone().fold_loop());
        store.tasks().extend([maintenance, drainer, folder]);
        let rollups = tokio::spawn(store.clone().rollup_loop());
        store.tasks().push(rollups);
        Ok(store)
    }

    /// Applies the migrations and creates today's partitions (`faultline migrate`).
    pub async fn migrate(url: &str, partitions_ahead: u32) -> Result<(), StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(connect_options(url)?)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        schema::migrate(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        schema::ensure_partitions(&pool, Timestamp::now(), partitions_ahead)
            .await
            .map_err(db_error)?;
        pool.close().await;
        Ok(())
    }

    /// The pool, for other stores (alert state, system checks) sharing the database.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The records matching `query` (at most `query.limit`) received at or after `after`,
    /// oldest `received_at` first: what every node wrote, for an evaluator that reads the
    /// shared store instead of its own ingest (issue 10). A record committed late (a node's
    /// batch in flight, or its spool draining) can carry a `received_at` older than a
    /// previous read's newest: read again with an overlap, and skip ids already seen.
    pub async fn received_since(
        &self,
        query: &Query,
        after: faultline_schema::Timestamp,
    ) -> Result<Vec<Record>, StoreError> {
        read::received_since(&self.inner.pool, query, after)
            .await
            .map_err(db_error)
    }

    /// `EXPLAIN` of the SQL a [`Query`] runs, with sequential scans disabled, so tests can
    /// check that an index serves it.
    pub async fn explain(&self, query: &Query) -> Result<String, StoreError> {
        read::explain(&self.inner.pool, query)
            .await
            .map_err(db_error)
    }

    /// Creates partitions ahead and applies retention now (also done every ten minutes).
    pub async fn maintain(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        if !inner.migrated.load(Ordering::Acquire) {
            schema::migrate(&inner.pool)
                .await
                .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
            inner.migrated.store(true, Ordering::Release);
        }
        let now = Timestamp::now();
        let created = schema::ensure_partitions(&inner.pool, now, inner.config.partitions_ahead)
            .await
            .map_err(db_error)?;
        let retention_ms = i64::try_from(inner.config.retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = Timestamp::from_unix_millis(now.unix_millis().saturating_sub(retention_ms));
        let mut archive_failure = None;
        let dropped = match (&inner.config.archive, &inner.archive) {
            (Some(dir), Some(state)) => {
                match archive::apply_retention(&inner.pool, cutoff, dir, state).await {
                    Ok(dropped) => dropped,
                    Err(archive::ArchivePassError::Db(e)) => return Err(db_error(e)),
                    Err(archive::ArchivePassError::Archive(e)) => {
                        archive_failure = Some(e);
                        Vec::new()
                    }
                }
            }
            _ => schema::apply_retention(&inner.pool, cutoff)
                .await
                .map_err(db_error)?,
        };
        if created > 0 || !dropped.is_empty() {
            tracing::info!(created, dropped = ?dropped, "PostgreSQL partitions maintained");
        }
        let issue_ms = i64::try_from(inner.config.issue_retention.as_millis()).unwrap_or(i64::MAX);
        let issue_cutoff = Timestamp::from_unix_millis(now.unix_millis().saturating_sub(issue_ms));
        let forgotten = issues::apply_retention(&inner.pool, issue_cutoff)
            .await
            .map_err(db_error)?;
        if forgotten > 0 {
            tracing::info!(forgotten, "issues past retention deleted");
        }
        match archive_failure {
            Some(e) => Err(StoreError::Unavailable(e)),
            None => Ok(()),
        }
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<tokio::task::JoinHandle<()>>> {
        self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_error(&self, e: Option<String>) {
        *self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = e;
    }

    async fn maintenance_loop(self) {
        let mut stop = self.inner.stop.subscribe();
        loop {
            let wait = if self.inner.migrated.load(Ordering::Acquire) {
                MAINTENANCE_INTERVAL
            } else {
                Duration::from_secs(5)
            };
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                () = tokio::time::sleep(wait) => {}
            }
            if let Err(e) = self.maintain().await {
                tracing::warn!(error = %e, "PostgreSQL maintenance failed; will retry");
            }
        }
    }

    /// Folds the issue deltas every [`FOLD_INTERVAL`] (see `write.rs`).
    async fn fold_loop(self) {
        let mut stop = self.inner.stop.subscribe();
        loop {
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                () = tokio::time::sleep(FOLD_INTERVAL) => {}
            }
            if !self.inner.migrated.load(Ordering::Acquire) {
                continue;
            }
            if let Err(e) = issues::fold(&self.inner.pool).await {
                // Transient or not, the deltas wait: the next fold or read takes them.
                tracing::debug!(error = %e, "folding issue deltas failed; will retry");
            }
        }
    }

    /// Folds the hourly rollup deltas every [`rollups::FOLD_INTERVAL`] and deletes the
    /// hours past retention every [`MAINTENANCE_INTERVAL`] (see `rollups.rs`).
    async fn rollup_loop(self) {
        let mut stop = self.inner.stop.subscribe();
        let mut last_retention: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => return,
                () = tokio::time::sleep(rollups::FOLD_INTERVAL) => {}
            }
            if !self.inner.migrated.load(Ordering::Acquire) {
                continue;
            }
            let retention =
                i64::try_from(self.inner.config.retention.as_millis()).unwrap_or(i64::MAX);
            let oldest = Timestamp::from_unix_millis(
                Timestamp::now().unix_millis().saturating_sub(retention),
            );
            if let Err(e) = rollups::fold(&self.inner.pool, oldest).await {
                // The deltas wait for the next fold; reads count them meanwhile.
                tracing::debug!(error = %e, "folding rollup deltas failed; will retry");
            }
            if last_retention.is_none_or(|t| t.elapsed() >= MAINTENANCE_INTERVAL) {
                match rollups::apply_retention(&self.inner.pool, oldest).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(rows = n, "rollup hours past retention deleted")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "rollup retention failed; will retry"),
                }
                last_retention = Some(Instant::now());
            }
        }
    }

    /// Moves spooled batches into PostgreSQL, oldest first, backing off while it is down.
    async fn drain_loop(self) {
        let mut stop = self.inner.stop.subscribe();
        let mut backoff = Duration::from_millis(200);
        let mut attempts = 0u32;
        loop {
            if self.inner.spool.is_empty() {
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    () = self.inner.spooled.notified() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            if *stop.borrow() {
                return;
            }
            match self.drain_one().await {
                Ok(()) => {
                    backoff = Duration::from_millis(200);
                    attempts = 0;
                }
                Err((e, transient)) => {
                    attempts += 1;
                    if !transient && attempts >= MAX_DRAIN_ATTEMPTS {
                        self.quarantine_oldest(&e).await;
                        attempts = 0;
                        continue;
                    }
                    tokio::select! {
                        _ = stop.wait_for(|stopped| *stopped) => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    async fn drain_one(&self) -> Result<(), (String, bool)> {
        let store = self.clone();
        let oldest = tokio::task::spawn_blocking(move || store.inner.spool.oldest())
            .await
            .map_err(|e| (e.to_string(), true))?
            .map_err(|e| (e.to_string(), true))?;
        let Some((file, records)) = oldest else {
            return Ok(());
        };
        if !self.inner.migrated.load(Ordering::Acquire) {
            self.maintain().await.map_err(|e| (e.to_string(), true))?;
        }
        let started = Instant::now();
        match write::insert_with_retry(
            &self.inner.pool,
            self.inner.config.write_method,
            &records,
            self.inner.config.write_timeout,
        )
        .await
        {
            Ok(inserted) => {
                let store = self.clone();
                tokio::task::spawn_blocking(move || store.inner.spool.remove(file.seq))
                    .await
                    .map_err(|e| (e.to_string(), true))?
                    .map_err(|e| (e.to_string(), true))?;
                metrics::counter!("faultline_spool_drained_records_total").increment(inserted);
                metrics::histogram!("faultline_sink_write_seconds", "sink" => LABEL)
                    .record(started.elapsed());
                self.set_error(None);
                tracing::debug!(
                    seq = file.seq,
                    records = records.len(),
                    inserted,
                    "spooled batch drained"
                );
                Ok(())
            }
            Err(e) => {
                let transient = write::is_transient(&e);
                self.set_error(Some(format!("PostgreSQL: {e}")));
                Err((e.to_string(), transient))
            }
        }
    }

    async fn quarantine_oldest(&self, error: &str) {
        let store = self.clone();
        let moved = tokio::task::spawn_blocking(move || {
            let file = store.inner.spool.oldest()?.map(|(f, _)| f.seq);
            file.map(|seq| store.inner.spool.quarantine(seq))
                .transpose()
        })
        .await;
        tracing::error!(error, moved = ?moved, "PostgreSQL keeps refusing a spooled batch; set aside in spool/failed");
        metrics::counter!("faultline_spool_quarantined_total").increment(1);
    }

    async fn spool(&self, records: Vec<Record>) -> Result<WriteReceipt, StoreError> {
        let n = records.len();
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.inner.spool.append(&records))
            .await
            .map_err(|e| StoreError::Unavailable(format!("spool task failed: {e}")))??;
        metrics::counter!("faultline_spool_records_total").increment(n as u64);
        self.inner.spooled.notify_one();
        Ok(WriteReceipt {
            written: n,
            duplicates: 0,
        })
    }
}

fn db_error(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL: {e}"))
}

impl RecordStore for PostgresStore {
    fn write(&self, records: Vec<Record>) -> BoxFuture<'_, Result<WriteReceipt, StoreError>> {
        Box::pin(async move {
            if self.inner.closed.load(Ordering::Acquire) {
                return Err(StoreError::Closed);
            }
            if records.is_empty() {
                return Ok(WriteReceipt::default());
            }
            // Behind a non-empty spool, so the database sees batches in the order accepted.
            if !self.inner.migrated.load(Ordering::Acquire) || !self.inner.spool.is_empty() {
                return self.spool(records).await;
            }
            let started = Instant::now();
            let result = write::insert_with_retry(
                &self.inner.pool,
                self.inner.config.write_method,
                &records,
                self.inner.config.write_timeout,
            )
            .await;
            match result {
                Ok(inserted) => {
                    metrics::histogram!("faultline_sink_write_seconds", "sink" => LABEL)
                        .record(started.elapsed());
                    metrics::counter!("faultline_sink_records_written_total", "sink" => LABEL)
                        .increment(inserted);
                    let inserted = usize::try_from(inserted).unwrap_or(records.len());
                    Ok(WriteReceipt {
                        written: inserted,
                        duplicates: records.len().saturating_sub(inserted),
                    })
                }
                Err(e) if write::is_transient(&e) => {
                    tracing::warn!(error = %e, records = records.len(), "PostgreSQL unavailable; spooling the batch");
                    self.set_error(Some(format!("PostgreSQL: {e}")));
                    self.spool(records).await
                }
                Err(e) => {
                    metrics::counter!("faultline_sink_write_errors_total", "sink" => LABEL)
                        .increment(1);
                    Err(db_error(e))
                }
            }
        })
    }

    fn query(&self, query: Query) -> BoxFuture<'_, Result<Vec<Record>, StoreError>> {
        Box::pin(async move {
            read::query(&self.inner.pool, &query)
                .await
                .map_err(db_error)
        })
    }

    fn stats(&self, query: StatsQuery) -> BoxFuture<'_, Result<Stats, StoreError>> {
        Box::pin(async move {
            read::stats(&self.inner.pool, &query)
                .await
                .map_err(db_error)
        })
    }

    fn rollups(&self, query: RollupQuery) -> BoxFuture<'_, Result<Vec<RollupBucket>, StoreError>> {
        Box::pin(async move {
            rollups::query(&self.inner.pool, &query)
                .await
                .map_err(db_error)
        })
    }

    fn issues(&self, query: IssueQuery) -> BoxFuture<'_, Result<IssuePage, StoreError>> {
        Box::pin(async move {
            issues::list(&self.inner.pool, &query)
                .await
                .map_err(db_error)
        })
    }

    fn issue(&self, id: String) -> BoxFuture<'_, Result<Option<IssueDetail>, StoreError>> {
        Box::pin(async move { issues::get(&self.inner.pool, &id).await.map_err(db_error) })
    }

    fn set_issue_status(
        &self,
        id: String,
        status: IssueStatus,
    ) -> BoxFuture<'_, Result<Option<Issue>, StoreError>> {
        Box::pin(async move {
            issues::set_status(&self.inner.pool, &id, status)
                .await
                .map_err(db_error)
        })
    }

    fn issue_changes(
        &self,
        since: Timestamp,
    ) -> BoxFuture<'_, Result<Vec<IssueChange>, StoreError>> {
        Box::pin(async move {
            issues::changes_since(&self.inner.pool, since)
                .await
                .map_err(db_error)
        })
    }

    fn health(&self) -> StoreHealth {
        let s = self.inner.spool.stats();
        let cap = self.inner.config.spool_max_bytes;
        metrics::gauge!("faultline_spool_batches").set(s.batches as f64);
        metrics::gauge!("faultline_spool_bytes").set(s.bytes as f64);
        metrics::gauge!("faultline_spool_oldest_age_seconds").set(s.oldest_age_secs);
        let last_error = self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        StoreHealth {
            kind: LABEL,
            // Writes are accepted (into the spool if need be) until the spool is nearly full.
            ready: !self.inner.closed.load(Ordering::Acquire)
                && (s.bytes as f64) < 0.9 * cap as f64,
            queue_depth: s.batches,
            queue_capacity: 0,
            stored_bytes: 0,
            last_error,
            spool: Some(SpoolHealth {
                batches: s.batches,
                records: s.records,
                bytes: s.bytes,
                capacity_bytes: cap,
                oldest_age_secs: s.oldest_age_secs,
            }),
            archive: self.inner.archive.as_ref().map(|a| a.snapshot()),
        }
    }

    fn shutdown(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.inner.closed.store(true, Ordering::Release);
            // `send_replace`, not `send`, which leaves the value unchanged while no task has
            // subscribed yet (right after `open`); and the tasks wait with `wait_for`, not
            // `changed`, which would miss a stop sent before they subscribed: either way a
            // task waited forever and so did shutdown.
            self.inner.stop.send_replace(true);
            let tasks: Vec<_> = self.tasks().drain(..).collect();
            for t in tasks {
                let _ = t.await;
            }
            self.inner.pool.close().await;
            Ok(())
        })
    }
}
