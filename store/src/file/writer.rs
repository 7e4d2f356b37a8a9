//! The writer thread: the only code that appends to, rotates and deletes segments.
//!
//! One thread owns the active segment, so appends never interleave and every batch that
//! arrived while the previous fsync ran shares the next one (group commit): under load, the
//! cost of an fsync is spread over many batches instead of paid by each. It is a plain thread
//! rather than a tokio task because `write` + `fsync` block for milliseconds and would stall
//! a runtime worker.
//!
//! The fsync itself runs on a second thread, so under load the writer appends the next group
//! while the previous one is being made durable: a group is answered only after its own fsync
//! and every earlier group's, and when a fsync fails, every group written after it is cut off
//! and failed with it (their duplicates may have counted on its records).

use std::collections::HashMap;
use std::fs::File;
use std::io::IoSlice;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

use faultline_schema::{Level, Record, Timestamp};
use tokio::sync::oneshot;

use super::archive::Archiver;
use super::config::{FileStoreConfig, millis};
use super::filter::FilterBuilder;
use super::issues::Covered;
use super::metrics_names::{
    DUPLICATES, GROUP_BATCHES, QUEUE_DEPTH, RECORDS_WRITTEN, SEGMENTS, SINK_LABEL, STORED_BYTES,
    WRITE_ERRORS,
};
use super::segment::{
    SegmentInfo, SegmentSummary, create_segment, delete_segment, segment_path, write_sidecar,
};
use super::{Shared, lock, read, write};
use crate::dedup::RecentIds;
use crate::issues::IssueEvent;
use crate::search::for_each_leaf_hash;
use crate::store::{StoreError, WriteReceipt};

/// A group stops taking more queued batches once it holds this many bytes, so one fsync's
/// latency stays bounded however deep the queue is.
const MAX_GROUP_BYTES: usize = 8 * 1024 * 1024;
/// One day in milliseconds (rollup files are per day).
const DAY_MS: i64 = 86_400_000;
/// Retention and the pruning of per-minute counts run at least this often.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);
/// After an age rotation failed (disk full), wait this long before trying again.
const ROTATION_RETRY: Duration = Duration::from_secs(5);
/// While the last write failed, the writer checks this often whether the disk takes writes
/// again, so readiness recovers without a client having to try (a load balancer that
/// follows `/readyz` sends none).
const FAILURE_PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// What that check writes and fsyncs: room for a typical group. A `.tmp` name, so a crash
/// leftover is removed by the next listing.
const PROBE_BYTES: usize = 64 * 1024;
const PROBE_FILE: &str = "space-probe.tmp";
/// Values of `Shared::hold_appends` (tests): hold the next append; holding.
#[cfg(test)]
pub(crate) const HOLD: u8 = 1;
#[cfg(test)]
pub(crate) const HELD: u8 = 2;

/// One `RecordStore::write` call, serialized by the caller.
///
/// The records themselves stay with the caller (and are freed there, in parallel): the
/// writer gets their lines and the few fields it needs, so its one thread does only what
/// must be serial.
pub(crate) struct WriteRequest {
    /// Every record's JSON line, `\n` included, back to back.
    pub(crate) buf: Vec<u8>,
    /// One entry per record, in order.
    pub(crate) lines: Vec<LineInfo>,
    /// The distinct services of the batch, indexed by [`LineInfo::service`].
    pub(crate) services: Vec<String>,
    /// What the batch's error events add to their issues, indexed by [`LineInfo::event`].
    pub(crate) events: Vec<IssueEvent>,
    /// The hashes of every record's `meta` values, for the segment filter; a record's end
    /// at [`LineInfo::hashes_end`].
    pub(crate) hashes: Vec<u64>,
    /// The distinct (event, release) of the batch, for the hourly rollups, indexed by
    /// [`LineInfo::rollup`].
    pub(crate) rollup_keys: Vec<(String, String)>,
    /// Answered once the batch is durable, or failed.
    pub(crate) ack: oneshot::Sender<Result<WriteReceipt, StoreError>>,
}

/// What the writer needs of one record besides its line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineInfo {
    /// Where the record's line ends in `buf`; the next one starts there.
    pub(crate) end: usize,
    /// The record id, for deduplication.
    pub(crate) id: Option<u128>,
    /// For the segment summary and the per-minute counts.
    pub(crate) ts: Timestamp,
    /// For the segment summary (retention).
    pub(crate) received_at: Option<Timestamp>,
    /// For the per-minute counts.
    pub(crate) level: Level,
    /// For the per-minute counts: how many records this one stands for.
    pub(crate) weight: u64,
    /// Index into [`WriteRequest::services`].
    pub(crate) service: u32,
    /// Index into [`WriteRequest::events`], for records that carry an issue.
    pub(crate) event: Option<u32>,
    /// Where the record's `meta` hashes end in [`WriteRequest::hashes`].
    pub(crate) hashes_end: u32,
    /// Index into [`WriteRequest::rollup_keys`].
    pub(crate) rollup: u32,
    /// For the hourly rollups: `meta.count` times the sample weight.
    pub(crate) rollup_weight: u64,
}

impl WriteRequest {
    /// Serializes `records` into lines and summaries (on the caller's task).
    pub(crate) fn new(
        records: &[Record],
        ack: oneshot::Sender<Result<WriteReceipt, StoreError>>,
    ) -> WriteRequest {
        let mut buf = Vec::with_capacity(records.len() * 384);
        let mut lines = Vec::with_capacity(records.len());
        let mut services: Vec<String> = Vec::new();
        let mut events = Vec::new();
        let mut hashes = Vec::new();
        let mut rollup_keys: Vec<(String, String)> = Vec::new();
        let mut rollup_index: HashMap<(&str, &str), u32> = HashMap::new();
        for record in records {
            let release = crate::rollup::release_of(record);
            let next = u32::try_from(rollup_keys.len()).unwrap_or(u32::MAX);
            let rollup = *rollup_index
                .entry((record.event.as_str(), release))
                .or_insert_with(|| {
                    rollup_keys.push((record.event.clone(), release.to_owned()));
                    next
                });
            for_each_leaf_hash(&record.meta, &mut |h| hashes.push(h));
            record.write_json(&mut buf);
            buf.push(b'\n');
            // Batches carry a handful of services: a linear scan beats hashing.
            let service = match services.iter().position(|s| *s == record.service) {
                Some(i) => i,
                None => {
                    services.push(record.service.clone());
                    services.len() - 1
                }
            };
            lines.push(LineInfo {
                end: buf.len(),
                id: record.id.map(|id| id.as_u128()),
                ts: record.ts,
                received_at: record.received_at,
                level: record.level,
                weight: record.sample_weight(),
                service: u32::try_from(service).unwrap_or(u32::MAX),
                // Described (title, culprit) by the writer only if it creates its issue.
                event: IssueEvent::undescribed(record).map(|e| {
                    events.push(e);
                    u32::try_from(events.len() - 1).unwrap_or(u32::MAX)
                }),
                hashes_end: u32::try_from(hashes.len()).unwrap_or(u32::MAX),
                rollup,
                rollup_weight: crate::rollup::event_weight(record),
            });
        }
        WriteRequest {
            buf,
            lines,
            services,
            events,
            hashes,
            rollup_keys,
            ack,
        }
    }
}

/// `event` with the title and culprit of the record stored as `line` (JSON, no newline),
/// for an event that creates its issue; `event` as it is if the line does not read back.
fn described(event: &IssueEvent, line: &[u8]) -> IssueEvent {
    Record::from_json(line)
        .ok()
        .and_then(|r| IssueEvent::from_record(&r))
        .unwrap_or_else(|| event.clone())
}

/// `Write::write_all_vectored` (not yet stable): writes every part, resuming after short
/// writes and interruptions.
fn write_all_vectored(mut file: &File, mut parts: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut parts, 0);
    while !parts.is_empty() {
        match file.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The segment being appended to.
struct Active {
    seq: u64,
    /// Shared with the fsync thread.
    file: Arc<File>,
    /// `bytes` is the committed length: everything before it is fsynced whole lines.
    summary: SegmentSummary,
    /// When an age rotation is due (set by the first record).
    rotate_at: Option<Instant>,
    /// The `meta` values of its committed records, written beside the sidecar at sealing.
    filter: FilterBuilder,
    /// Bytes past the committed length may be in the file (a failed write that could not
    /// be cut off yet); they must go before the next append.
    dirty: bool,
}

/// A group appended to the active segment whose fsync is running.
struct InFlight {
    group: Vec<WriteRequest>,
    /// Per request: its receipt and which of its lines were written (not duplicates).
    plans: Vec<(WriteReceipt, Vec<bool>)>,
    /// The dedup claims of the written lines.
    claims: Vec<u64>,
    /// Bytes appended.
    total: usize,
}

/// Runs the active segment's fsyncs on their own thread, one at a time.
struct Syncer {
    files: SyncSender<Arc<File>>,
    results: Receiver<io::Result<()>>,
}

impl Syncer {
    fn start(shared: Arc<Shared>) -> io::Result<Syncer> {
        let (files, requests) = mpsc::sync_channel::<Arc<File>>(1);
        let (done, results) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("faultline-fsync".into())
            .spawn(move || {
                for file in requests {
                    #[cfg(test)]
                    if let Some(kind) = lock(&shared.sync_fault).take() {
                        if done.send(Err(io::Error::from(kind))).is_err() {
                            break;
                        }
                        continue;
                    }
                    if done.send(shared.fsyncs.data(&file)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Syncer { files, results })
    }

    /// Starts an fsync of `file`; [`Syncer::wait`] gives its result.
    fn sync(&self, file: &Arc<File>) {
        // If the thread is gone, `wait` reports it.
        let _ = self.files.send(Arc::clone(file));
    }

    fn wait(&self) -> io::Result<()> {
        self.results
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("the fsync thread stopped")))
    }
}

/// Seals the search filters of rotated segments on their own thread, one at a time, so the
/// writer thread never folds, writes and fsyncs a filter of up to 16 MiB between two groups
/// (at peak a 64 MiB segment fills in about half a second). At most one filter waits while
/// another is written: a third rotation waits for the sealer, which bounds their memory. A
/// filter not yet written only means its segment is read by queries, never a missed record;
/// dropping the sealer (the writer thread ending) writes what is queued first.
struct Sealer {
    filters: Option<SyncSender<(FilterBuilder, u64)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sealer {
    fn start(shared: Arc<Shared>) -> io::Result<Sealer> {
        let (filters, requests) = mpsc::sync_channel::<(FilterBuilder, u64)>(1);
        let thread = std::thread::Builder::new()
            .name("faultline-filter".into())
            .spawn(move || {
                for (filter, seq) in requests {
                    if let Err(e) = filter.seal(&shared.segments_dir, seq, &shared.fsyncs) {
                        tracing::warn!(error = %e, seq, "could not write a segment filter; queries read the segment");
                    }
                }
            })?;
        Ok(Sealer {
            filters: Some(filters),
            thread: Some(thread),
        })
    }

    /// Queues `filter` of sealed segment `seq` (waits while one is queued already).
    fn seal(&self, filter: FilterBuilder, seq: u64) {
        let Some(filters) = &self.filters else { return };
        if filters.send((filter, seq)).is_err() {
            tracing::warn!(seq, "the filter thread stopped; queries read the segment");
        }
    }
}

impl Drop for Sealer {
    fn drop(&mut self) {
        drop(self.filters.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread's state.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    config: FileStoreConfig,
    active: Active,
    dedup: RecentIds,
    last_housekeeping: Instant,
    syncer: Syncer,
    sealer: Sealer,
    /// Archives doomed segments before deleting them, when `config.archive` is set.
    archiver: Option<Archiver>,
    /// The group whose fsync is running, answered by [`Writer::settle`].
    pending: Option<InFlight>,
}

impl Writer {
    /// A writer appending to the last of `shared.segments`, opened as `file`; starts the
    /// fsync thread.
    pub(crate) fn new(
        shared: Arc<Shared>,
        config: FileStoreConfig,
        file: File,
        first_write: Option<Instant>,
        dedup: RecentIds,
        filter: FilterBuilder,
    ) -> io::Result<Self> {
        let (seq, summary) = read(&shared.segments)
            .last()
            .map(|s| (s.seq, s.summary))
            .unwrap_or_default();
        let rotate_at = first_write.and_then(|t| t.checked_add(config.segment_max_age));
        let archiver = match &config.archive {
            Some(archive) => Some(Archiver::start(Arc::clone(&shared), archive.clone())?),
            None => None,
        };
        Ok(Writer {
            archiver,
            syncer: Syncer::start(Arc::clone(&shared))?,
            sealer: Sealer::start(Arc::clone(&shared))?,
            pending: None,
            shared,
            config,
            active: Active {
                seq,
                file: Arc::new(file),
                summary,
                rotate_at,
                filter,
                dirty: false,
            },
            dedup,
            last_housekeeping: Instant::now(),
        })
    }

    /// Serves requests until every sender is gone and the queue is empty.
    pub(crate) fn run(mut self, requests: Receiver<WriteRequest>) {
        // The store may have been closed for a while: apply retention before taking writes.
        self.retention();
        loop {
            // While a group's fsync runs, whatever is queued is written beside it; with
            // nothing queued, that group is answered first rather than after more arrive.
            if self.pending.is_some() {
                match requests.try_recv() {
                    Ok(request) => {
                        self.take_group(request, &requests);
                        continue;
                    }
                    Err(_) => {
                        let _ = self.settle();
                        continue;
                    }
                }
            }
            let mut wait = self
                .next_housekeeping()
                .saturating_duration_since(Instant::now());
            let failed = lock(&self.shared.failure).is_some();
            if failed {
                wait = wait.min(FAILURE_PROBE_INTERVAL);
            }
            match requests.recv_timeout(wait) {
                Ok(request) => self.take_group(request, &requests),
                Err(RecvTimeoutError::Timeout) => {
                    if failed {
                        self.probe_after_failure();
                    }
                    self.housekeeping();
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = self.settle();
        if let Err(e) = self.shared.issues.snapshot_if_dirty() {
            tracing::warn!(error = %e, "could not write the issues snapshot; the next start rebuilds it from the segments");
        }
        if let Err(e) = self.shared.rollups.write_if_dirty() {
            tracing::warn!(error = %e, "could not write the hourly rollups; the next start counts them from the segments");
        }
        tracing::debug!("file store writer stopped: queue drained and closed");
    }

    /// Takes `first` and what else is queued (up to [`MAX_GROUP_BYTES`]) as one group and
    /// writes it.
    fn take_group(&mut self, first: WriteRequest, requests: &Receiver<WriteRequest>) {
        let mut bytes = first.buf.len();
        let mut group = vec![first];
        while bytes < MAX_GROUP_BYTES {
            match requests.try_recv() {
                Ok(request) => {
                    bytes += request.buf.len();
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        let depth = self
            .shared
            .queue_depth
            .fetch_sub(group.len(), Relaxed)
            .saturating_sub(group.len());
        metrics::gauge!(QUEUE_DEPTH, "sink" => SINK_LABEL).set(depth as f64);
        self.commit_group(group);
        if Instant::now() >= self.next_housekeeping() {
            let _ = self.settle();
            self.housekeeping();
        }
    }

    fn next_housekeeping(&self) -> Instant {
        let periodic = self.next_retention();
        self.active.rotate_at.map_or(periodic, |r| r.min(periodic))
    }

    fn next_retention(&self) -> Instant {
        self.last_housekeeping
            .checked_add(HOUSEKEEPING_INTERVAL)
            .unwrap_or(self.last_housekeeping)
    }

    /// Age rotation, retention and pruning of the per-minute counts.
    fn housekeeping(&mut self) {
        let now = Instant::now();
        if self.active.rotate_at.is_some_and(|at| now >= at)
            && let Err(e) = self.rotate()
        {
            tracing::warn!(error = %e, "age rotation failed; retrying shortly");
            self.active.rotate_at = now.checked_add(ROTATION_RETRY);
        }
        // A rotation just ran retention; otherwise it is due once a minute.
        if now >= self.next_retention() {
            self.retention();
        }
    }

    /// Appends the group's new records, fsyncs once, then answers every request.
    fn commit_group(&mut self, group: Vec<WriteRequest>) {
        // The group is written straight from the requests' buffers (one vectored write, no
        // copy): runs of kept lines, as (request, start, end), merged while contiguous.
        let mut runs: Vec<(usize, usize, usize)> = Vec::with_capacity(group.len());
        let mut total = 0usize;
        let mut claims = Vec::new();
        let mut plans = Vec::with_capacity(group.len());
        for (r, request) in group.iter().enumerate() {
            let mut receipt = WriteReceipt::default();
            let mut kept = Vec::with_capacity(request.lines.len());
            let mut start = 0;
            for info in &request.lines {
                let line_start = start;
                start = info.end;
                let duplicate = match info.id {
                    Some(id) if self.dedup.enabled() => match self.dedup.claim(id) {
                        Some(fp) => {
                            claims.push(fp);
                            false
                        }
                        None => true,
                    },
                    _ => false,
                };
                if duplicate {
                    receipt.duplicates += 1;
                } else {
                    match runs.last_mut() {
                        Some((lr, _, end)) if *lr == r && *end == line_start => *end = info.end,
                        _ => runs.push((r, line_start, info.end)),
                    }
                    total += info.end - line_start;
                    receipt.written += 1;
                }
                kept.push(!duplicate);
            }
            plans.push((receipt, kept));
        }
        let duplicates: usize = plans.iter().map(|(r, _)| r.duplicates).sum();
        metrics::counter!(DUPLICATES, "sink" => SINK_LABEL).increment(duplicates as u64);
        if total == 0 {
            // Only records stored before; some may be in the group whose fsync is running,
            // so these are answered after it, and fail with it.
            match self.settle() {
                Ok(()) => {
                    for (request, (receipt, _)) in group.into_iter().zip(plans) {
                        let _ = request.ack.send(Ok(receipt));
                    }
                }
                Err(e) => self.fail_group(group, &claims, &e),
            }
            return;
        }

        let segment_max = self.config.segment_max_bytes;
        let unsynced = self.pending.as_ref().map_or(0, |p| p.total as u64);
        let size = self.active.summary.bytes + unsynced;
        if size > 0 && size + total as u64 > segment_max {
            // A segment is sealed only with everything in it durable.
            if let Err(e) = self.settle() {
                self.fail_group(group, &claims, &e);
                return;
            }
            if let Err(e) = self.rotate() {
                // Writing on past the size limit beats refusing writes.
                tracing::warn!(error = %e, "size rotation failed; appending to the current segment");
            }
        }

        let mut parts: Vec<IoSlice<'_>> = runs
            .iter()
            .map(|&(r, a, b)| IoSlice::new(group[r].buf.get(a..b).unwrap_or_default()))
            .collect();
        let appended = self.append(&mut parts);
        drop(parts);
        // The previous group's fsync ran while this one was written.
        let earlier = self.settle();
        match appended.and(earlier) {
            Ok(()) => {
                self.syncer.sync(&self.active.file);
                self.pending = Some(InFlight {
                    group,
                    plans,
                    claims,
                    total,
                });
            }
            Err(e) => {
                self.cut_back();
                self.fail_group(group, &claims, &e);
            }
        }
    }

    /// Waits for the running fsync, if any, and answers its group: on success the group is
    /// committed; on failure it is failed, the file is cut back to its committed length, and
    /// the error is returned so that groups written after it fail too.
    fn settle(&mut self) -> io::Result<()> {
        let Some(flight) = self.pending.take() else {
            return Ok(());
        };
        match self.syncer.wait() {
            Ok(()) => {
                self.commit(flight);
                Ok(())
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.cut_back();
                self.fail_group(flight.group, &flight.claims, &e);
                Err(copy)
            }
        }
    }

    /// Publishes a durable group and answers its batches.
    fn commit(&mut self, flight: InFlight) {
        let InFlight {
            group,
            plans,
            claims,
            total,
        } = flight;
        let now = Timestamp::now();
        let oldest = Timestamp::from_unix_millis(
            now.unix_millis()
                .saturating_sub(millis(self.config.retention_age)),
        );
        {
            let mut counts = lock(&self.shared.counts);
            let mut issues = lock(&self.shared.issues.state);
            let mut rollups = lock(&self.shared.rollups.state);
            for (request, (_, kept)) in group.iter().zip(&plans) {
                let mut start = 0;
                let mut hashes_start = 0;
                for (info, keep) in request.lines.iter().zip(kept) {
                    let line = start..info.end.saturating_sub(1);
                    start = info.end;
                    let hashes = hashes_start..info.hashes_end as usize;
                    hashes_start = info.hashes_end as usize;
                    if !*keep {
                        continue;
                    }
                    for h in request.hashes.get(hashes).unwrap_or_default() {
                        self.active.filter.insert(*h);
                    }
                    if let Some(event) = info.event.and_then(|i| request.events.get(i as usize)) {
                        if issues.table.contains(&event.issue) {
                            issues.table.apply(event, now);
                        } else {
                            issues
                                .table
                                .apply(&described(event, &request.buf[line]), now);
                        }
                        issues.dirty = true;
                    }
                    self.active.summary.observe(info.ts, info.received_at);
                    let service = request.services.get(info.service as usize);
                    let service = service.map_or("", String::as_str);
                    counts.add_parts(info.ts, service, info.level, info.weight, now);
                    let (event, release) = request
                        .rollup_keys
                        .get(info.rollup as usize)
                        .map_or(("", ""), |(e, r)| (e.as_str(), r.as_str()));
                    if let Some(hour) = rollups.table.add(
                        info.ts,
                        service,
                        info.level,
                        event,
                        release,
                        info.rollup_weight,
                        now,
                        oldest,
                    ) {
                        rollups.dirty_days.insert(hour.div_euclid(DAY_MS) * DAY_MS);
                    }
                }
            }
            rollups.covered = Covered {
                seq: self.active.seq,
                bytes: self.active.summary.bytes + total as u64,
            };
        }
        self.active.summary.bytes += total as u64;
        // The table now holds exactly the records before this point.
        lock(&self.shared.issues.state).covered = Covered {
            seq: self.active.seq,
            bytes: self.active.summary.bytes,
        };
        self.dedup.commit(&claims);
        if self.active.rotate_at.is_none() {
            self.active.rotate_at = Instant::now().checked_add(self.config.segment_max_age);
        }
        {
            let mut segments = write(&self.shared.segments);
            if let Some(last) = segments.last_mut().filter(|s| s.seq == self.active.seq) {
                last.summary = self.active.summary;
            }
            publish_totals(&self.shared, &segments);
        }
        *lock(&self.shared.failure) = None;

        let written: usize = plans.iter().map(|(r, _)| r.written).sum();
        metrics::counter!(RECORDS_WRITTEN, "sink" => SINK_LABEL).increment(written as u64);
        metrics::histogram!(GROUP_BATCHES, "sink" => SINK_LABEL).record(group.len() as f64);
        for (request, (receipt, _)) in group.into_iter().zip(plans) {
            let _ = request.ack.send(Ok(receipt));
        }
    }

    /// Answers every batch of a group that was not stored with `error`.
    fn fail_group(&mut self, group: Vec<WriteRequest>, claims: &[u64], error: &io::Error) {
        let full = error.kind() == io::ErrorKind::StorageFull;
        let path = segment_path(&self.shared.segments_dir, self.active.seq);
        let message = format!("{}: {error}", path.display());
        tracing::error!(
            error = %message,
            batches = group.len(),
            "file store write failed; the group was cut off and not acknowledged"
        );
        metrics::counter!(WRITE_ERRORS, "sink" => SINK_LABEL).increment(1);
        *lock(&self.shared.failure) = Some(message.clone());
        // Not stored, so not duplicates when the clients retry them.
        self.dedup.release(claims);
        for request in group {
            let error = if full {
                StoreError::DiskFull(message.clone())
            } else {
                StoreError::Unavailable(message.clone())
            };
            let _ = request.ack.send(Err(error));
        }
    }

    /// After a failed write, with no writes coming: clears the failure once a probe file of
    /// [`PROBE_BYTES`] can be written and fsynced next to the segments.
    fn probe_after_failure(&mut self) {
        let path = self.shared.segments_dir.join(PROBE_FILE);
        let probe = || -> io::Result<()> {
            #[cfg(test)]
            if let Some(kind) = *lock(&self.shared.fault) {
                return Err(io::Error::from(kind));
            }
            let mut file = crate::private::create_private_file(&path)?;
            file.write_all(&[0; PROBE_BYTES])?;
            self.shared.fsyncs.data(&file)
        };
        let result = probe();
        let _ = std::fs::remove_file(&path);
        if result.is_ok() {
            tracing::info!("the file store's disk takes writes again");
            *lock(&self.shared.failure) = None;
        }
    }

    /// Appends `parts` (not yet durable: [`Syncer::sync`] follows). A failed append leaves
    /// the file to be cut back with [`Writer::cut_back`].
    fn append(&mut self, parts: &mut [IoSlice<'_>]) -> io::Result<()> {
        #[cfg(test)]
        if self.shared.hold_appends.load(Relaxed) == HOLD {
            self.shared.hold_appends.store(HELD, Relaxed);
            while self.shared.hold_appends.load(Relaxed) == HELD {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        if self.active.dirty {
            // Only after a failure, when nothing is in flight.
            self.active.file.set_len(self.active.summary.bytes)?;
            self.active.dirty = false;
        }
        #[cfg(test)]
        if let Some(kind) = *lock(&self.shared.fault) {
            // A disk that fills up halfway through the group.
            let first: &[u8] = parts.first().map_or(&[], |p| &p[..p.len() / 2]);
            (&*self.active.file).write_all(first)?;
            return Err(io::Error::from(kind));
        }
        write_all_vectored(&self.active.file, parts)
    }

    /// Cuts the file back to its committed length after a failure, so no partial or
    /// unacknowledged group stays behind for readers or the next start; if that fails too,
    /// the next append tries again.
    fn cut_back(&mut self) {
        self.active.dirty = self.active.file.set_len(self.active.summary.bytes).is_err();
    }

    /// Seals the active segment and starts the next one, then runs retention.
    fn rotate(&mut self) -> io::Result<()> {
        let dir = self.shared.segments_dir.clone();
        if self.active.dirty {
            self.active.file.set_len(self.active.summary.bytes)?;
            self.active.dirty = false;
        }
        let seq = self.active.seq + 1;
        let file = Arc::new(create_segment(&dir, seq, &self.shared.fsyncs)?);
        let sealed = std::mem::replace(
            &mut self.active,
            Active {
                seq,
                file,
                summary: SegmentSummary::default(),
                rotate_at: None,
                filter: FilterBuilder::new(self.config.segment_max_bytes),
                dirty: false,
            },
        );
        // The filter on the sealer's thread: until it is written the segment is read.
        self.sealer.seal(sealed.filter, sealed.seq);
        if let Err(e) = write_sidecar(&dir, sealed.seq, &sealed.summary, &self.shared.fsyncs) {
            tracing::warn!(error = %e, "could not write a segment sidecar; the next start rebuilds it");
        }
        {
            let mut segments = write(&self.shared.segments);
            if let Some(last) = segments.last_mut().filter(|s| s.seq == sealed.seq) {
                last.summary = sealed.summary;
                last.sealed = true;
            }
            segments.push(SegmentInfo {
                seq,
                summary: SegmentSummary::default(),
                sealed: false,
            });
            publish_totals(&self.shared, &segments);
        }
        tracing::debug!(
            sealed = sealed.seq,
            records = sealed.summary.records,
            bytes = sealed.summary.bytes,
            "rotated segment"
        );
        self.retention();
        Ok(())
    }

    /// Deletes sealed segments past `retention_age`, then the oldest sealed ones while the
    /// store is over `retention_bytes` (with an archive directory, the archiver archives and
    /// deletes them). Also prunes the per-minute counts.
    fn retention(&mut self) {
        self.last_housekeeping = Instant::now();
        let now = Timestamp::now();
        lock(&self.shared.counts).prune(now);
        self.shared.issues.prune(now);
        if let Err(e) = self.shared.issues.snapshot_if_dirty() {
            tracing::warn!(error = %e, "could not write the issues snapshot; retrying in a minute");
        }
        self.shared.rollups.prune(now);
        if let Err(e) = self.shared.rollups.write_if_dirty() {
            tracing::warn!(error = %e, "could not write the hourly rollups; retrying in a minute");
        }
        let cutoff = now
            .unix_millis()
            .saturating_sub(millis(self.config.retention_age));
        let max_bytes = self.config.retention_bytes;
        let doomed: Vec<u64> = {
            let segments = read(&self.shared.segments);
            let mut total: u64 = segments.iter().map(|s| s.summary.bytes).sum();
            let mut doomed = Vec::new();
            for s in segments.iter().filter(|s| s.sealed) {
                let expired = s
                    .summary
                    .max_received_at
                    .is_none_or(|t| t.unix_millis() < cutoff);
                let over = max_bytes > 0 && total > max_bytes;
                if expired || over {
                    doomed.push(s.seq);
                    total = total.saturating_sub(s.summary.bytes);
                }
            }
            doomed
        };
        if doomed.is_empty() {
            if let Some(state) = &self.shared.archive {
                state.clear();
            }
            return;
        }
        if let Some(archiver) = &self.archiver {
            archiver.offer(doomed);
            return;
        }
        let dir = &self.shared.segments_dir;
        let mut deleted = Vec::with_capacity(doomed.len());
        for seq in doomed {
            match delete_segment(dir, seq) {
                Ok(()) => deleted.push(seq),
                Err(e) => tracing::warn!(error = %e, "retention could not delete a segment"),
            }
        }
        if let Err(e) = self.shared.fsyncs.dir(dir) {
            tracing::warn!(error = %e, "could not fsync the segment directory after retention");
        }
        let mut segments = write(&self.shared.segments);
        segments.retain(|s| deleted.binary_search(&s.seq).is_err());
        publish_totals(&self.shared, &segments);
        tracing::info!(
            deleted = deleted.len(),
            remaining = segments.len(),
            "retention deleted old segments"
        );
    }
}

/// Publishes the store's size to health and metrics; called with the index just changed.
pub(crate) fn publish_totals(shared: &Shared, segments: &[SegmentInfo]) {
    let bytes: u64 = segments.iter().map(|s| s.summary.bytes).sum();
    shared.stored_bytes.store(bytes, Relaxed);
    metrics::gauge!(STORED_BYTES, "sink" => SINK_LABEL).set(bytes as f64);
    metrics::gauge!(SEGMENTS, "sink" => SINK_LABEL).set(segments.len() as f64);
}
