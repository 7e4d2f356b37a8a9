//! Reading segments: backwards for queries, forwards for the start-up scan.
//!
//! Queries read backwards because the newest records sit at the end of the newest segment
//! and most queries want only the newest hundred: a dashboard refresh should touch a few
//! blocks, not the whole store. The start-up scan reads forwards with a light parse (only the
//! fields it needs, skipping `message` and `meta`) so a restart over a few hundred MB stays
//! quick.

use std::borrow::Cow;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use faultline_schema::{Level, Record, Timestamp, Uuid};
use serde::Deserialize;

use super::config::{FileStoreConfig, millis};
use super::filter::{self, FilterBuilder};
use super::segment::{
    self, Fsyncs, SegmentInfo, SegmentSummary, create_segment, list_segments, read_sidecar,
    repair_tail, segment_path, write_sidecar,
};
use crate::dedup::RecentIds;
use crate::private::with_path;
use crate::query::{MinuteCounts, Query};
use crate::search::for_each_leaf_hash;

/// How much a query reads at a time.
const QUERY_BLOCK: usize = 64 * 1024;
/// The start-up scan's read buffer.
const SCAN_BUFFER: usize = 1024 * 1024;
/// `MinuteCounts` accepts records up to this far ahead of now (clients with fast clocks).
const FUTURE_SLACK_MS: i64 = 3_600_000;

/// Yields the lines of `file[..end]` last first, reading `block` bytes at a time.
///
/// A line is yielded without its `\n`, with the file offset where it starts. The first line
/// yielded has no `\n` after it when the range does not end with one; callers that care
/// compare `start + line.len()` with `end`.
pub(crate) struct BackwardLines<R> {
    file: R,
    block: usize,
    /// File offset of `buf[0]`.
    buf_start: u64,
    buf: Vec<u8>,
    /// `buf[..len]` is what has not been yielded yet.
    len: usize,
}

impl<R: Read + Seek> BackwardLines<R> {
    /// Lines of `file[..end]`.
    pub(crate) fn new(file: R, end: u64, block: usize) -> Self {
        BackwardLines {
            file,
            block: block.max(1),
            buf_start: end,
            buf: Vec::new(),
            len: 0,
        }
    }

    /// The previous line, or `None` at the start of the file.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        loop {
            if self.len == 0 && self.buf_start == 0 {
                return Ok(None);
            }
            let content_end = match self.buf[..self.len].last() {
                Some(b'\n') => self.len - 1,
                _ => self.len,
            };
            if let Some(newline) = memchr::memrchr(b'\n', &self.buf[..content_end]) {
                let start = newline + 1;
                self.len = start;
                return Ok(Some((
                    self.buf_start + start as u64,
                    &self.buf[start..content_end],
                )));
            }
            if self.buf_start == 0 {
                self.len = 0;
                return Ok(Some((0, &self.buf[..content_end])));
            }
            self.read_previous_block()?;
        }
    }

    /// Puts the block before `buf_start` in front of the unyielded bytes.
    ///
    /// Inside a line longer than a block the read grows with what is buffered, so a line of
    /// `n` bytes (a torn tail of zeros has no newline) costs `O(n)` copying, not `O(n²/block)`.
    fn read_previous_block(&mut self) -> io::Result<()> {
        let read = usize::try_from(self.buf_start)
            .unwrap_or(usize::MAX)
            .min(self.block.max(self.len));
        let start = self.buf_start - read as u64;
        self.file.seek(SeekFrom::Start(start))?;
        if self.len == 0 {
            self.buf.resize(read, 0);
            self.file.read_exact(&mut self.buf)?;
        } else {
            // A line longer than what is buffered: keep its end, read what comes before.
            let mut joined = vec![0; read + self.len];
            self.file.read_exact(&mut joined[..read])?;
            joined[read..].copy_from_slice(&self.buf[..self.len]);
            self.buf = joined;
        }
        self.len = self.buf.len();
        self.buf_start = start;
        Ok(())
    }
}

/// The fields of a stored line that the start-up scan, the query pre-filter and the rollups'
/// replay (`rollups.rs`) need.
///
/// Deserializing this skips `message` and the rest of `meta` without building them, several
/// times cheaper than [`Record::from_json`].
#[derive(Debug, Deserialize)]
pub(crate) struct Head<'a> {
    id: Option<Uuid>,
    pub(crate) ts: Timestamp,
    received_at: Option<Timestamp>,
    #[serde(borrow)]
    pub(crate) service: Cow<'a, str>,
    pub(crate) level: Level,
    #[serde(borrow)]
    pub(crate) event: Cow<'a, str>,
    /// Only the reserved keys the counts read; other keys are skipped.
    #[serde(borrow, default)]
    pub(crate) meta: HeadMeta<'a>,
    #[serde(borrow, default)]
    issue: Option<Cow<'a, str>>,
}

/// The part of `meta` the start-up scan and the rollups read.
///
/// Raw, so a line stored before a key was reserved (with a value of another type there)
/// still reads: the value then counts as absent.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct HeadMeta<'a> {
    #[serde(borrow, default)]
    release: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    count: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    sample_weight: Option<&'a serde_json::value::RawValue>,
}

impl HeadMeta<'_> {
    /// How many records the line stands for (`meta.sample_weight`), for the per-minute counts.
    pub(crate) fn sample_weight(&self) -> u64 {
        raw_count(self.sample_weight)
    }

    /// `meta.count` times `meta.sample_weight`, as [`crate::rollup::event_weight`] counts,
    /// for the hourly rollups.
    pub(crate) fn rollup_weight(&self) -> u64 {
        raw_count(self.count).saturating_mul(raw_count(self.sample_weight))
    }

    /// `meta.release` if it is a string, else `""`.
    pub(crate) fn release(&self) -> Cow<'_, str> {
        self.release
            .and_then(|raw| serde_json::from_str::<Cow<'_, str>>(raw.get()).ok())
            .unwrap_or(Cow::Borrowed(""))
    }
}

/// A raw `meta` count (`sample_weight`, `count`): a whole number, at least 1; anything
/// else (absent, another type, a line from before the key was reserved) counts as 1.
fn raw_count(raw: Option<&serde_json::value::RawValue>) -> u64 {
    raw.and_then(|raw| raw.get().parse::<u64>().ok())
        .map_or(1, |n| n.max(1))
}

impl Head<'_> {
    /// Whether the record can match the filters that do not need the full record.
    fn may_match(&self, query: &Query) -> bool {
        query.service.as_deref().is_none_or(|s| s == self.service)
            && query.min_level.is_none_or(|l| self.level >= l)
            && query.event.as_deref().is_none_or(|e| e == self.event)
            && query
                .issue
                .as_deref()
                .is_none_or(|i| self.issue.as_deref() == Some(i))
            && query.since.is_none_or(|t| self.ts >= t)
            && query.until.is_none_or(|t| self.ts < t)
            && query.before.is_none_or(|c| c.before(self.ts, self.id))
    }
}

/// The id of a line the store wrote, read from the `{"id":"…"` prefix that
/// [`Record::to_json`] puts first, without parsing the rest.
fn id_from_prefix(line: &[u8]) -> Option<Option<u128>> {
    if line.starts_with(b"{\"ts\":") {
        // No id: `to_json` writes `id` first when there is one.
        return Some(None);
    }
    let rest = line.strip_prefix(b"{\"id\":\"")?;
    let (uuid, tail) = rest.split_at_checked(36)?;
    if tail.first() != Some(&b'"') {
        return None;
    }
    Uuid::try_parse_ascii(uuid)
        .ok()
        .map(|id| Some(id.as_u128()))
}

/// The rank of a line the store wrote, read from its fixed layout (`{"id":"…","ts":"…"` or
/// `{"ts":"…"`) without parsing: once the top is full, most lines of a segment lose to it,
/// and this rejects them several times faster than even [`Head`].
fn key_from_prefix(line: &[u8]) -> Option<RankKey> {
    let (id, rest) = match line.strip_prefix(b"{\"id\":\"") {
        Some(rest) => {
            let (uuid, rest) = rest.split_at_checked(36)?;
            let id = Uuid::try_parse_ascii(uuid).ok()?;
            (Some(id), rest.strip_prefix(b"\",")?)
        }
        None => (None, line.strip_prefix(b"{")?),
    };
    let rest = rest.strip_prefix(b"\"ts\":\"")?;
    // The canonical form is always 24 bytes: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    let (ts, rest) = rest.split_at_checked(24)?;
    if rest.first() != Some(&b'"') {
        return None;
    }
    let ts = Timestamp::parse(std::str::from_utf8(ts).ok()?).ok()?;
    Some((ts, id))
}

/// The newest records matching `query`, newest `ts` first (ties: larger id first).
///
/// `segments` is the index snapshot, oldest first. Segments deleted since the snapshot was
/// taken are skipped; a segment open while retention deletes it stays readable.
pub(crate) fn query(
    segments_dir: &Path,
    segments: &[SegmentInfo],
    query: &Query,
) -> io::Result<Vec<Record>> {
    if query.limit == 0 {
        return Ok(Vec::new());
    }
    let mut top = TopK::new(query.limit);
    let hash_groups: Vec<Vec<u64>> = query.meta.iter().map(|f| f.hashes()).collect();
    let needles: Vec<&[u8]> = query.meta.iter().filter_map(|f| f.needle()).collect();
    let before = query.before.map(|c| (c.ts, Some(c.id)));
    for info in segments.iter().rev() {
        let Some((min_ts, max_ts)) = info.summary.ts_range() else {
            continue;
        };
        if !query.overlaps(min_ts, max_ts) {
            continue;
        }
        // Segments are ordered by arrival, not by ts (late records exist), so a segment that
        // cannot beat the current top is skipped rather than ending the search.
        if top.floor().is_some_and(|(ts, _)| max_ts < ts) {
            continue;
        }
        // A sealed segment whose filter lacks a `meta` value asked for holds no match.
        if info.sealed
            && !hash_groups.is_empty()
            && filter::may_match(segments_dir, info.seq, &hash_groups) == Some(false)
        {
            continue;
        }
        let path = segment_path(segments_dir, info.seq);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(segment = %path.display(), error = %e, "skipping unreadable segment");
                }
                continue;
            }
        };
        let mut lines = BackwardLines::new(&file, info.summary.bytes, QUERY_BLOCK);
        while let Some((_, line)) = lines.next_line().map_err(|e| with_path(e, &path))? {
            if needles
                .iter()
                .any(|n| memchr::memmem::find(line, n).is_none())
            {
                continue;
            }
            let floor = top.floor();
            if (floor.is_some() || before.is_some())
                && let Some(key) = key_from_prefix(line)
                && (floor.is_some_and(|floor| key <= floor)
                    || before.is_some_and(|before| key >= before))
            {
                continue;
            }
            if let Ok(head) = serde_json::from_slice::<Head<'_>>(line) {
                let beaten = top.floor().is_some_and(|floor| (head.ts, head.id) <= floor);
                if beaten || !head.may_match(query) {
                    continue;
                }
            }
            let Ok(record) = Record::from_json(line) else {
                continue;
            };
            if query.matches(&record) {
                top.offer(record);
            }
        }
    }
    Ok(top.into_sorted())
}

/// The ordering key of query results: `ts`, then id.
type RankKey = (Timestamp, Option<Uuid>);

struct Ranked {
    key: RankKey,
    record: Record,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

/// The `limit` highest-ranked records seen so far.
struct TopK {
    limit: usize,
    /// A min-heap: the top is the record that goes first when a better one comes.
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopK {
    fn new(limit: usize) -> Self {
        TopK {
            limit,
            heap: BinaryHeap::with_capacity(limit.min(crate::MAX_QUERY_LIMIT) + 1),
        }
    }

    /// Once full, the key a record must beat to get in.
    fn floor(&self) -> Option<RankKey> {
        if self.heap.len() < self.limit {
            return None;
        }
        self.heap.peek().map(|r| r.0.key)
    }

    fn offer(&mut self, record: Record) {
        let key = (record.ts, record.id);
        if self.floor().is_some_and(|floor| key <= floor) {
            return;
        }
        self.heap.push(Reverse(Ranked { key, record }));
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }

    /// Best first.
    fn into_sorted(self) -> Vec<Record> {
        // Ascending `Reverse` order is descending rank.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.0.record)
            .collect()
    }
}

/// What [`recover`] found on disk.
pub(crate) struct Recovered {
    /// Every segment, oldest first; the last one is active.
    pub(crate) segments: Vec<SegmentInfo>,
    /// The active segment, open for appending.
    pub(crate) active_file: File,
    /// When the active segment got its first record, if it has any.
    pub(crate) active_first_write: Option<Instant>,
    /// The most recent ids, newest last.
    pub(crate) dedup: RecentIds,
    /// Per-minute counts of the records within the stats window.
    pub(crate) counts: MinuteCounts,
    /// The `meta` filter of the records already in the active segment.
    pub(crate) active_filter: FilterBuilder,
}

/// Opens the store as a crash left it: repairs the active segment's tail, rebuilds missing
/// sidecars, and rebuilds the dedup ids and the per-minute counts from the newest segments.
pub(crate) fn recover(config: &FileStoreConfig, fsyncs: &Fsyncs) -> io::Result<Recovered> {
    let dir = config.segments_dir();
    if !dir.is_dir() {
        crate::private::create_private_dir_all(&dir).map_err(|e| with_path(e, &dir))?;
        fsyncs
            .dir(&config.dir)
            .map_err(|e| with_path(e, &config.dir))?;
    }
    let mut seqs = list_segments(&dir).map_err(|e| with_path(e, &dir))?;
    if seqs.is_empty() {
        drop(create_segment(&dir, 1, fsyncs)?);
        seqs.push(1);
    }
    let started = Instant::now();
    let now = Timestamp::now();
    let stats_since = now
        .unix_millis()
        .saturating_sub(millis(config.stats_window));
    let mut counts = MinuteCounts::new(millis(config.stats_window));
    let mut scan = Scan {
        counts: &mut counts,
        now,
        stats_since,
    };
    // Newest first, so the dedup ids are the most recent ones; reversed below.
    let mut id_chunks: Vec<Vec<u128>> = Vec::new();
    let mut ids_seen = 0usize;
    let mut segments = Vec::with_capacity(seqs.len());
    let mut scanned_bytes = 0u64;
    for (newest_first, &seq) in seqs.iter().rev().enumerate() {
        let active = newest_first == 0;
        let path = segment_path(&dir, seq);
        let len = if active {
            repair_tail(&path, fsyncs)?
        } else {
            std::fs::metadata(&path)
                .map_err(|e| with_path(e, &path))?
                .len()
        };
        let want_ids = ids_seen < config.dedup_ids;
        let mut ids = Vec::new();
        let sidecar = if active {
            None
        } else {
            read_sidecar(&dir, seq, len)
        };
        let summary = match sidecar {
            Some(summary) => {
                let in_window = summary
                    .max_ts
                    .is_some_and(|t| t.unix_millis() >= stats_since);
                if in_window {
                    scan.heads(&path, len, want_ids.then_some(&mut ids))?;
                    scanned_bytes += len;
                } else if want_ids {
                    scan_ids(&path, len, &mut ids)?;
                    scanned_bytes += len;
                }
                summary
            }
            None => {
                let summary = scan.heads(&path, len, want_ids.then_some(&mut ids))?;
                scanned_bytes += len;
                if !active {
                    // Sealed without a sidecar: the crash came during rotation.
                    if let Err(e) = write_sidecar(&dir, seq, &summary, fsyncs) {
                        tracing::warn!(error = %e, "could not rebuild a segment sidecar; will retry on the next start");
                    }
                }
                summary
            }
        };
        ids_seen += ids.len();
        id_chunks.push(ids);
        segments.push(SegmentInfo {
            seq,
            summary,
            sealed: !active,
        });
    }
    segments.reverse();

    let mut dedup = RecentIds::new(config.dedup_ids);
    for id in id_chunks.iter().rev().flatten() {
        dedup.insert(*id);
    }

    let active_seq = seqs.last().copied().unwrap_or(1);
    let active_file = segment::open_for_append(&dir, active_seq)?;
    // The active segment's filter was in memory only: rebuilt from its records.
    let mut active_filter = FilterBuilder::new(config.segment_max_bytes);
    if let Some(active) = segments.last().filter(|s| s.summary.records > 0) {
        let path = segment_path(&dir, active.seq);
        for_each_line(&path, active.summary.bytes, |line| {
            if let Ok(m) = serde_json::from_slice::<MetaOnly>(line) {
                for_each_leaf_hash(&m.meta, &mut |h| active_filter.insert(h));
            }
        })?;
    }
    let has_records = segments.last().is_some_and(|s| s.summary.records > 0);
    let active_first_write = has_records.then(|| first_write_estimate(&active_file));
    tracing::info!(
        segments = segments.len(),
        scanned_bytes,
        dedup_ids = dedup.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "file store opened"
    );
    Ok(Recovered {
        segments,
        active_file,
        active_first_write,
        dedup,
        counts,
        active_filter,
    })
}

/// A stored line's `meta` alone.
#[derive(Deserialize)]
struct MetaOnly {
    #[serde(default)]
    meta: faultline_schema::Map<String, faultline_schema::Value>,
}

/// When a reopened active segment got its first record, for age-based rotation: the file's
/// creation time where the file system records one, else now (rotation comes one max age
/// later than it would have without the restart, never earlier).
fn first_write_estimate(file: &File) -> Instant {
    let now = Instant::now();
    let age = file
        .metadata()
        .and_then(|m| m.created())
        .ok()
        .and_then(|created| SystemTime::now().duration_since(created).ok())
        .unwrap_or(Duration::ZERO);
    now.checked_sub(age).unwrap_or(now)
}

/// State shared by the light scans of one start.
struct Scan<'a> {
    counts: &'a mut MinuteCounts,
    now: Timestamp,
    stats_since: i64,
}

impl Scan<'_> {
    /// Reads every line's head: returns the summary, counts records in the stats window, and
    /// collects ids if asked.
    fn heads(
        &mut self,
        path: &Path,
        len: u64,
        mut ids: Option<&mut Vec<u128>>,
    ) -> io::Result<SegmentSummary> {
        let mut summary = SegmentSummary {
            bytes: len,
            ..SegmentSummary::default()
        };
        let until = self.now.unix_millis().saturating_add(FUTURE_SLACK_MS);
        for_each_line(path, len, |line| {
            let Ok(head) = serde_json::from_slice::<Head<'_>>(line) else {
                return;
            };
            summary.observe(head.ts, head.received_at);
            if let (Some(ids), Some(id)) = (ids.as_deref_mut(), head.id) {
                ids.push(id.as_u128());
            }
            let ts = head.ts.unix_millis();
            if ts >= self.stats_since && ts <= until {
                self.counts.add_parts(
                    head.ts,
                    &head.service,
                    head.level,
                    head.meta.sample_weight(),
                    self.now,
                );
            }
        })?;
        Ok(summary)
    }
}

/// Collects the ids of a segment through the prefix fast path.
fn scan_ids(path: &Path, len: u64, ids: &mut Vec<u128>) -> io::Result<()> {
    for_each_line(path, len, |line| {
        let id = match id_from_prefix(line) {
            Some(id) => id,
            // Not the store's own layout: fall back to parsing.
            None => serde_json::from_slice::<Head<'_>>(line)
                .ok()
                .and_then(|h| h.id)
                .map(|id| id.as_u128()),
        };
        ids.extend(id);
    })
}

/// Calls `f` with every line of `path[..len]`, without its `\n`.
fn for_each_line(path: &Path, len: u64, f: impl FnMut(&[u8])) -> io::Result<()> {
    let file = File::open(path).map_err(|e| with_path(e, path))?;
    let reader = BufReader::with_capacity(SCAN_BUFFER, file.take(len));
    lines_forward(reader, f).map_err(|e| with_path(e, path))
}

/// Calls `f` with every line `reader` holds, without its `\n`; a last line without one is
/// passed as it is.
pub(crate) fn lines_forward(mut reader: impl BufRead, mut f: impl FnMut(&[u8])) -> io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        f(line.strip_suffix(b"\n").unwrap_or(&line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_backwards(content: &[u8], block: usize) -> Vec<(u64, Vec<u8>)> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        let mut lines = BackwardLines::new(&file, content.len() as u64, block);
        let mut out = Vec::new();
        while let Some((start, line)) = lines.next_line().unwrap() {
            out.push((start, line.to_vec()));
        }
        out
    }

    #[test]
    fn backward_lines_across_block_boundaries() {
        let content = b"alpha\nbe\n\ngamma-long-line\nd\n";
        let expected: Vec<(u64, Vec<u8>)> = vec![
            (26, b"d".to_vec()),
            (10, b"gamma-long-line".to_vec()),
            (9, b"".to_vec()),
            (6, b"be".to_vec()),
            (0, b"alpha".to_vec()),
        ];
        for block in [1, 2, 3, 7, 64 * 1024] {
            assert_eq!(lines_backwards(content, block), expected, "block {block}");
        }
        assert!(lines_backwards(b"", 4).is_empty());
        assert_eq!(
            lines_backwards(b"a\ntail", 3),
            [(2, b"tail".to_vec()), (0, b"a".to_vec())],
            "an unterminated last line is yielded as is"
        );
    }

    /// Reading back through a line far longer than a block must not re-read and re-copy
    /// the line once per block: a torn tail of zeros made the start-up repair quadratic.
    #[test]
    fn a_long_line_is_read_in_few_growing_blocks() {
        struct Counted<'a>(std::io::Cursor<&'a [u8]>, usize);
        impl Read for Counted<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0.read(buf)
            }
        }
        impl Seek for Counted<'_> {
            fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
                self.1 += 1;
                self.0.seek(to)
            }
        }
        let mut content = vec![0u8; 1 << 20];
        content.extend_from_slice(b"\n{}\n");
        let mut counted = Counted(std::io::Cursor::new(&content), 0);
        let mut lines = BackwardLines::new(&mut counted, content.len() as u64, 64);
        assert_eq!(lines.next_line().unwrap().unwrap().1, b"{}");
        assert_eq!(lines.next_line().unwrap().unwrap().1.len(), 1 << 20);
        assert!(lines.next_line().unwrap().is_none());
        drop(lines);
        assert!(counted.1 < 40, "{} reads for a 1 MB line", counted.1);
    }

    #[test]
    fn id_prefix_fast_path_agrees_with_the_record() {
        let mut r = Record::new(Timestamp::from_unix_millis(0), "api", Level::Info, "e", "m");
        assert_eq!(id_from_prefix(r.to_json().as_bytes()), Some(None));
        let id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
        r.id = Some(id);
        assert_eq!(
            id_from_prefix(r.to_json().as_bytes()),
            Some(Some(id.as_u128()))
        );
        assert_eq!(id_from_prefix(b"{\"id\":\"nope\"}"), None);

        let ts = r.ts;
        assert_eq!(
            key_from_prefix(r.to_json().as_bytes()),
            Some((ts, Some(id)))
        );
        r.id = None;
        assert_eq!(key_from_prefix(r.to_json().as_bytes()), Some((ts, None)));
        assert_eq!(key_from_prefix(b"{\"ts\":\"2026\"}"), None);
    }

    /// The reserved `meta` keys the counts read are raw: a value of another type (a line
    /// stored before the key was reserved) still reads the head, and counts as absent.
    #[test]
    fn a_head_reads_meta_keys_of_any_type() {
        let head = |meta: &str| {
            format!(
                r#"{{"ts":"2026-01-01T00:00:00Z","service":"api","level":"INFO","event":"e","message":"m","meta":{meta}}}"#
            )
        };
        let line = head(r#"{"release":"1.0","count":3,"sample_weight":40,"other":[1]}"#);
        let h = serde_json::from_str::<Head<'_>>(&line).unwrap();
        assert_eq!(h.meta.release(), "1.0");
        assert_eq!(h.meta.sample_weight(), 40);
        assert_eq!(h.meta.rollup_weight(), 120);
        for odd in [
            r#"{"release":2,"count":"lots","sample_weight":{"a":1}}"#,
            r#"{"release":null,"count":-1,"sample_weight":1.5}"#,
            r#"{"release":["x"],"count":0,"sample_weight":0}"#,
            "{}",
        ] {
            let line = head(odd);
            let h = serde_json::from_str::<Head<'_>>(&line).unwrap();
            assert_eq!(h.meta.release(), "", "{odd}");
            assert_eq!(h.meta.sample_weight(), 1, "{odd}");
            assert_eq!(h.meta.rollup_weight(), 1, "{odd}");
        }
        let saturating = head(&format!(r#"{{"count":{0},"sample_weight":{0}}}"#, u64::MAX));
        let h = serde_json::from_str::<Head<'_>>(&saturating).unwrap();
        assert_eq!(h.meta.rollup_weight(), u64::MAX);
    }

    #[test]
    fn top_k_keeps_the_newest() {
        let mut top = TopK::new(2);
        for ts in [5, 1, 9, 7, 3] {
            top.offer(Record::new(
                Timestamp::from_unix_millis(ts),
                "api",
                Level::Info,
                "e",
                "m",
            ));
        }
        let kept: Vec<i64> = top
            .into_sorted()
            .iter()
            .map(|r| r.ts.unix_millis())
            .collect();
        assert_eq!(kept, [9, 7]);
    }
}
