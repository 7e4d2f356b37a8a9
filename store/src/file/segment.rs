//! Segment files on disk: names, the listing, sidecar summaries and torn-tail repair.
//!
//! A segment is an NDJSON file that only ever grows while it is active and never changes once
//! sealed. The sidecar summary exists so that a start does not have to read every sealed
//! segment to learn its time range, and so queries can skip segments without opening them.
//! Everything here is plain blocking file I/O: it runs on the writer thread, in `open`, or in
//! a query's blocking task.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use faultline_schema::Timestamp;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use super::filter::filter_path;
use super::metrics_names::{FSYNC_SECONDS, SINK_LABEL};
use super::reader::BackwardLines;
use crate::private::{private_open_options, with_path};

const SEGMENT_EXT: &str = ".ndjson";
const SIDECAR_EXT: &str = ".idx.json";
const FILTER_EXT: &str = ".filter";
/// The ending of [`crate::private::tmp_path`]: such files are left from an interrupted write.
const TMP_EXT: &str = ".tmp";
/// Digits in a segment's sequence number: file names sort like the numbers.
const SEQ_DIGITS: usize = 20;
/// How far the tail repair reads at a time.
const REPAIR_BLOCK: usize = 64 * 1024;

/// What is known about one segment without reading it.
///
/// This is also the sidecar file's format (`{seq}.idx.json`), written when a segment is sealed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentSummary {
    /// Records stored (lines written by the store; unreadable lines are not counted).
    pub(crate) records: u64,
    /// Committed length in bytes: every byte up to here is a whole, fsynced line.
    pub(crate) bytes: u64,
    /// The oldest `ts`, `None` while empty.
    pub(crate) min_ts: Option<Timestamp>,
    /// The newest `ts`, `None` while empty.
    pub(crate) max_ts: Option<Timestamp>,
    /// The newest `received_at` (a record without one counts by its `ts`); retention's clock.
    pub(crate) max_received_at: Option<Timestamp>,
}

impl SegmentSummary {
    /// Takes one stored record into account (not its bytes).
    pub(crate) fn observe(&mut self, ts: Timestamp, received_at: Option<Timestamp>) {
        self.records += 1;
        self.min_ts = Some(self.min_ts.map_or(ts, |m| m.min(ts)));
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
        let received = received_at.unwrap_or(ts);
        self.max_received_at = Some(self.max_received_at.map_or(received, |m| m.max(received)));
    }

    /// `(min_ts, max_ts)` when the segment holds any record.
    pub(crate) fn ts_range(&self) -> Option<(Timestamp, Timestamp)> {
        self.min_ts.zip(self.max_ts)
    }
}

/// One entry of the in-memory segment index that the writer keeps and readers snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    /// The sequence number (the file name).
    pub(crate) seq: u64,
    /// Size and time range; for the active segment, as of the last fsync.
    pub(crate) summary: SegmentSummary,
    /// Whether the segment will never be written again (every segment but the newest).
    pub(crate) sealed: bool,
}

/// `dir/{seq:020}.ndjson`
pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:0SEQ_DIGITS$}{SEGMENT_EXT}"))
}

/// `dir/{seq:020}.idx.json`
pub(crate) fn sidecar_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:0SEQ_DIGITS$}{SIDECAR_EXT}"))
}

fn parse_seq(stem: &str) -> Option<u64> {
    if stem.len() == SEQ_DIGITS && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

/// The sequence numbers of the segments in `dir`, oldest first.
///
/// Cleans up after crashes on the way: half-written sidecars (`*.tmp`) and sidecars whose
/// segment retention already deleted are removed. Other files are left alone.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut segments = Vec::new();
    let mut sidecars = Vec::new();
    let mut filters = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(TMP_EXT) {
            remove_if_exists(&entry.path())?;
        } else if let Some(seq) = name.strip_suffix(SEGMENT_EXT).and_then(parse_seq) {
            segments.push(seq);
        } else if let Some(seq) = name.strip_suffix(SIDECAR_EXT).and_then(parse_seq) {
            sidecars.push(seq);
        } else if let Some(seq) = name.strip_suffix(FILTER_EXT).and_then(parse_seq) {
            filters.push(seq);
        }
    }
    segments.sort_unstable();
    for seq in sidecars {
        if segments.binary_search(&seq).is_err() {
            remove_if_exists(&sidecar_path(dir, seq))?;
        }
    }
    for seq in filters {
        if segments.binary_search(&seq).is_err() {
            remove_if_exists(&filter_path(dir, seq))?;
        }
    }
    Ok(segments)
}

/// Creates an empty segment and makes its directory entry durable.
pub(crate) fn create_segment(dir: &Path, seq: u64, fsyncs: &Fsyncs) -> io::Result<File> {
    let path = segment_path(dir, seq);
    let file = private_open_options()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| with_path(e, &path))?;
    if let Err(e) = fsyncs.dir(dir) {
        // An entry that may not survive a crash is not a segment to write into.
        let _ = fs::remove_file(&path);
        return Err(with_path(e, dir));
    }
    Ok(file)
}

/// Opens an existing segment for appending.
pub(crate) fn open_for_append(dir: &Path, seq: u64) -> io::Result<File> {
    let path = segment_path(dir, seq);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| with_path(e, &path))
}

/// Writes `{seq}.idx.json` atomically (see [`write_atomically`]), so a crash leaves either
/// no sidecar or a complete one.
pub(crate) fn write_sidecar(
    dir: &Path,
    seq: u64,
    summary: &SegmentSummary,
    fsyncs: &Fsyncs,
) -> io::Result<()> {
    let json = serde_json::to_vec(summary).map_err(io::Error::other)?;
    write_atomically(dir, &sidecar_path(dir, seq), &json, fsyncs)
}

/// Writes `path` in `dir` as `bytes` through a temporary file beside it (write, fsync,
/// rename, directory fsync, each fsync counted): a crash leaves the old file or none, never
/// a part.
pub(crate) fn write_atomically(
    dir: &Path,
    path: &Path,
    bytes: &[u8],
    fsyncs: &Fsyncs,
) -> io::Result<()> {
    crate::private::write_atomically_with(path, bytes, |f| fsyncs.all(f), |_| fsyncs.dir(dir))
}

/// The sidecar of `seq`, if there is one that describes a file of exactly `file_len` bytes.
/// Anything else (missing, unreadable, stale) means the segment has to be scanned.
pub(crate) fn read_sidecar(dir: &Path, seq: u64, file_len: u64) -> Option<SegmentSummary> {
    let bytes = fs::read(sidecar_path(dir, seq)).ok()?;
    let summary: SegmentSummary = serde_json::from_slice(&bytes).ok()?;
    (summary.bytes == file_len).then_some(summary)
}

/// Deletes a segment, its sidecar and its filter. A file that is already gone is not an
/// error.
pub(crate) fn delete_segment(dir: &Path, seq: u64) -> io::Result<()> {
    remove_if_exists(&segment_path(dir, seq))?;
    remove_if_exists(&sidecar_path(dir, seq))?;
    remove_if_exists(&filter_path(dir, seq))
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(with_path(e, path)),
        _ => Ok(()),
    }
}

/// Cuts the torn tail off the active segment after a crash; returns the new length.
///
/// Acknowledged records were fsynced before their ack, so what a crash can leave behind the
/// last of them was never acknowledged: a line without its `\n` (the crash hit mid-write), or
/// lines that are not JSON at all (blocks the file system extended but never filled, which
/// read as zeros). Those trailing lines are dropped. Complete JSON lines stay, acknowledged or
/// not (a client's retry finds them by id), and so does a JSON line this version cannot read
/// as a record: a crash cannot produce one, but a newer version of the store can, and a
/// downgrade must not delete its data. Readers skip lines they cannot read.
pub(crate) fn repair_tail(path: &Path, fsyncs: &Fsyncs) -> io::Result<u64> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| with_path(e, path))?;
    let len = file.metadata()?.len();
    let keep = intact_len(&file, len, REPAIR_BLOCK).map_err(|e| with_path(e, path))?;
    if keep < len {
        tracing::warn!(
            segment = %path.display(),
            dropped_bytes = len - keep,
            "cut a torn tail off the active segment (a write that was never acknowledged)"
        );
        file.set_len(keep).map_err(|e| with_path(e, path))?;
        fsyncs.data(&file).map_err(|e| with_path(e, path))?;
    }
    Ok(keep)
}

/// How much of `file[..len]` a torn write left intact: everything up to and including the
/// last line that ends in `\n` and is JSON. What follows (a line cut short, or garbage that a
/// crash left behind) was never acknowledged.
pub(crate) fn intact_len<R: Read + Seek>(file: R, len: u64, block: usize) -> io::Result<u64> {
    let mut keep = len;
    let mut lines = BackwardLines::new(file, len, block);
    while let Some((start, line)) = lines.next_line()? {
        let terminated = start + (line.len() as u64) < len;
        if terminated && serde_json::from_slice::<IgnoredAny>(line).is_ok() {
            break;
        }
        keep = start;
    }
    Ok(keep)
}

/// Does the fsyncs and counts them, so tests and metrics can see group commit at work.
#[derive(Debug, Default)]
pub(crate) struct Fsyncs(AtomicU64);

impl Fsyncs {
    /// `fdatasync`: the file's data and the metadata needed to read it back (its length).
    pub(crate) fn data(&self, file: &File) -> io::Result<()> {
        self.timed(|| file.sync_data())
    }

    /// `fsync`: data and all metadata.
    pub(crate) fn all(&self, file: &File) -> io::Result<()> {
        self.timed(|| file.sync_all())
    }

    /// Makes entries created, renamed or removed in `dir` durable.
    pub(crate) fn dir(&self, dir: &Path) -> io::Result<()> {
        if cfg!(unix) {
            self.timed(|| File::open(dir)?.sync_all())
        } else {
            // Directories cannot be opened as files elsewhere; their entries are durable
            // once the file operations return.
            Ok(())
        }
    }

    /// How many fsyncs were done.
    pub(crate) fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn timed(&self, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        let started = Instant::now();
        let result = sync();
        self.0.fetch_add(1, Ordering::Relaxed);
        metrics::histogram!(FSYNC_SECONDS, "sink" => SINK_LABEL)
            .record(started.elapsed().as_secs_f64());
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_like_numbers_and_round_trip() {
        let dir = Path::new("/x");
        let a = segment_path(dir, 9);
        let b = segment_path(dir, 10);
        assert!(a < b);
        assert_eq!(
            a.file_name().and_then(|n| n.to_str()),
            Some("00000000000000000009.ndjson")
        );
        assert_eq!(parse_seq("00000000000000000010"), Some(10));
        assert_eq!(parse_seq("10"), None);
        assert_eq!(parse_seq("0000000000000000001x"), None);
    }

    #[test]
    fn summary_tracks_ranges() {
        let mut s = SegmentSummary::default();
        assert_eq!(s.ts_range(), None);
        s.observe(Timestamp::from_unix_millis(5), None);
        s.observe(
            Timestamp::from_unix_millis(3),
            Some(Timestamp::from_unix_millis(4)),
        );
        assert_eq!(s.records, 2);
        assert_eq!(
            s.ts_range(),
            Some((
                Timestamp::from_unix_millis(3),
                Timestamp::from_unix_millis(5)
            ))
        );
        // The record without received_at counts by its ts.
        assert_eq!(s.max_received_at, Some(Timestamp::from_unix_millis(5)));
    }

    #[test]
    fn listing_cleans_crash_leftovers() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let fsyncs = Fsyncs::default();
        create_segment(dir, 2, &fsyncs).unwrap();
        create_segment(dir, 1, &fsyncs).unwrap();
        write_sidecar(dir, 1, &SegmentSummary::default(), &fsyncs).unwrap();
        fs::write(sidecar_path(dir, 7), b"{}").unwrap();
        fs::write(dir.join("00000000000000000003.idx.json.tmp"), b"{").unwrap();
        fs::write(dir.join("notes.txt"), b"mine").unwrap();
        assert_eq!(list_segments(dir).unwrap(), [1, 2]);
        assert!(sidecar_path(dir, 1).exists());
        assert!(!sidecar_path(dir, 7).exists(), "orphan sidecar removed");
        assert!(!dir.join("00000000000000000003.idx.json.tmp").exists());
        assert!(
            dir.join("notes.txt").exists(),
            "unknown files are not ours to delete"
        );
        assert_eq!(read_sidecar(dir, 1, 0), Some(SegmentSummary::default()));
        assert_eq!(read_sidecar(dir, 1, 10), None, "stale sidecar is ignored");
    }

    #[test]
    fn repair_keeps_whole_records_and_drops_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.ndjson");
        let good = faultline_schema::Record::new(
            Timestamp::from_unix_millis(1),
            "api",
            faultline_schema::Level::Info,
            "e",
            "m",
        )
        .to_json();
        let clean = format!("{good}\n{good}\n");
        let fsyncs = Fsyncs::default();

        fs::write(&path, format!("{clean}\0\0\0\0\n{{\"ts\":\"20")).unwrap();
        assert_eq!(repair_tail(&path, &fsyncs).unwrap(), clean.len() as u64);
        assert_eq!(fs::read_to_string(&path).unwrap(), clean);

        // Nothing to do: nothing changes and nothing is synced.
        let before = fsyncs.count();
        assert_eq!(repair_tail(&path, &fsyncs).unwrap(), clean.len() as u64);
        assert_eq!(fsyncs.count(), before);

        // A complete record missing only its newline was never acknowledged.
        fs::write(&path, format!("{clean}{good}")).unwrap();
        assert_eq!(repair_tail(&path, &fsyncs).unwrap(), clean.len() as u64);

        fs::write(&path, "garbage").unwrap();
        assert_eq!(repair_tail(&path, &fsyncs).unwrap(), 0);

        // JSON that is not a record (for this version) is not crash debris: it stays.
        let newer = format!("{clean}{{\"ts\":\"2026-07-01T00:00:00Z\",\"level\":\"NOTICE\"}}\n");
        fs::write(&path, &newer).unwrap();
        assert_eq!(repair_tail(&path, &fsyncs).unwrap(), newer.len() as u64);
    }
}
