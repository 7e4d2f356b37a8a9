//! Archive before delete: the segments retention dooms are written to the archive directory
//! (gzip NDJSON per day of their records' `ts`, see [`crate::archive`]) on a thread of their
//! own, and deleted only once every file of theirs is durable.
//!
//! Retention runs on the writer thread, at every rotation: compressing a 64 MiB segment
//! there would hold ingest for as long. So the writer hands the doomed sequence numbers to
//! the archiver (a queue of one; when it is busy the writer drops the list, and its next
//! pass hands the still-doomed segments again) and goes on. The archiver takes the segments
//! oldest first; the first one it cannot archive stops the list (nothing after it is deleted
//! either) and is recorded as the store's archive failure, until a later pass succeeds.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};

use faultline_schema::Timestamp;

use super::segment::{delete_segment, segment_path};
use super::writer::publish_totals;
use super::{Shared, read, write};
use crate::archive::{ArchiveDir, ArchivedFile, DayFiles, is_day};

/// The archiver thread's handle: dropping it lets the thread finish the segment it is on
/// (the rest of its list waits for the next start) and exit.
pub(crate) struct Archiver {
    doomed: Option<SyncSender<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Archiver {
    /// Starts the thread archiving into `archive`.
    pub(crate) fn start(shared: Arc<Shared>, archive: ArchiveDir) -> io::Result<Archiver> {
        let (doomed, lists) = mpsc::sync_channel::<Vec<u64>>(1);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("faultline-archive".into())
            .spawn(move || {
                for list in lists {
                    archive_and_delete(&shared, &archive, &list, &stopping);
                }
            })?;
        Ok(Archiver {
            doomed: Some(doomed),
            stop,
            thread: Some(thread),
        })
    }

    /// Hands over the doomed segments, oldest first, unless a list is already waiting.
    pub(crate) fn offer(&self, doomed: Vec<u64>) {
        let Some(sender) = &self.doomed else { return };
        match sender.try_send(doomed) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("the archive thread stopped; retention deletes nothing");
            }
        }
    }
}

impl Drop for Archiver {
    fn drop(&mut self) {
        // A shutdown does not wait for a long list (a first start after a long stop).
        self.stop.store(true, Ordering::Relaxed);
        drop(self.doomed.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Archives each of `doomed` still in the index and deletes it; stops at the first failure
/// or once `stop` is set.
fn archive_and_delete(shared: &Shared, archive: &ArchiveDir, doomed: &[u64], stop: &AtomicBool) {
    let Some(state) = &shared.archive else { return };
    let dir = &shared.segments_dir;
    let mut deleted = Vec::new();
    for &seq in doomed {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        // A list handed over twice: what an earlier one deleted is gone from the index.
        let Some(info) = read(&shared.segments)
            .iter()
            .find(|s| s.seq == seq && s.sealed)
            .copied()
        else {
            continue;
        };
        let started = std::time::Instant::now();
        match archive_segment(archive, dir, seq, info.summary.bytes) {
            Ok(files) => {
                tracing::info!(
                    seq,
                    files = files.len(),
                    records = files.iter().map(|f| f.records).sum::<u64>(),
                    bytes = info.summary.bytes,
                    took_ms = started.elapsed().as_millis() as u64,
                    "archived a segment before retention deletes it"
                );
                state.archived(&files);
            }
            Err(e) => {
                state.failed(format!(
                    "cannot archive segment {} into {}: {e}",
                    segment_path(dir, seq).display(),
                    archive.dir.display()
                ));
                break;
            }
        }
        match delete_segment(dir, seq) {
            Ok(()) => deleted.push(seq),
            Err(e) => tracing::warn!(error = %e, "retention could not delete an archived segment"),
        }
    }
    if deleted.is_empty() {
        return;
    }
    if let Err(e) = shared.fsyncs.dir(dir) {
        tracing::warn!(error = %e, "could not fsync the segment directory after retention");
    }
    deleted.sort_unstable();
    let mut segments = write(&shared.segments);
    segments.retain(|s| deleted.binary_search(&s.seq).is_err());
    publish_totals(shared, &segments);
    tracing::info!(
        deleted = deleted.len(),
        remaining = segments.len(),
        "retention deleted old segments (archived first)"
    );
}

/// Writes the first `len` bytes of segment `seq` (its committed lines) to day files of
/// `archive`: `<day>/<node>-segment-<seq>.ndjson.gz`. A line whose day cannot be read (a
/// line the store cannot read either) is left out and counted in a warning.
pub(crate) fn archive_segment(
    archive: &ArchiveDir,
    dir: &Path,
    seq: u64,
    len: u64,
) -> io::Result<Vec<ArchivedFile>> {
    let path = segment_path(dir, seq);
    let file = File::open(&path)?;
    let mut lines = BufReader::with_capacity(256 * 1024, file.take(len));
    let mut files = DayFiles::new(archive, format!("{}-segment-{seq:020}", archive.node));
    let mut line = Vec::with_capacity(4096);
    let mut unreadable = 0u64;
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.is_empty() {
            continue;
        }
        match day_of_line(text) {
            Some(day) if is_day(&day) => files.append(&day, text)?,
            _ => unreadable += 1,
        }
    }
    if unreadable > 0 {
        tracing::warn!(
            segment = %path.display(),
            lines = unreadable,
            "lines without a readable ts left out of the archive"
        );
    }
    files.finish()
}

/// `YYYY-MM-DD` of a stored line's `ts`: read from the layout the store writes
/// (`{"id":"<uuid>","ts":"YYYY-MM-DD...` or `{"ts":"...`), else parsed.
fn day_of_line(line: &[u8]) -> Option<String> {
    let rest = match line.strip_prefix(b"{\"id\":\"") {
        Some(rest) => rest.get(36..)?.strip_prefix(b"\",")?,
        None => line.strip_prefix(b"{")?,
    };
    if let Some(ts) = rest.strip_prefix(b"\"ts\":\"")
        && let Some(day) = ts.get(..10)
        && let Ok(day) = std::str::from_utf8(day)
    {
        return Some(day.to_owned());
    }
    #[derive(serde::Deserialize)]
    struct TsOnly {
        ts: Timestamp,
    }
    let ts = serde_json::from_slice::<TsOnly>(line).ok()?.ts;
    Some(ts.to_string().get(..10)?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_comes_from_the_prefix_or_the_parse() {
        let with_id = br#"{"id":"0190a4a0-0000-7000-8000-000000000001","ts":"2026-03-04T05:06:07.890Z","service":"a"}"#;
        assert_eq!(day_of_line(with_id).as_deref(), Some("2026-03-04"));
        assert_eq!(
            day_of_line(br#"{"ts":"2026-03-05T00:00:00.000Z"}"#).as_deref(),
            Some("2026-03-05")
        );
        assert_eq!(
            day_of_line(br#"{"service":"a","ts":"2026-03-06T23:59:59.999Z"}"#).as_deref(),
            Some("2026-03-06")
        );
        assert_eq!(day_of_line(b"\0\0\0"), None);
    }
}

/// `cargo test -p faultline-store --release --lib archive_throughput -- --ignored --nocapture`:
/// how fast a 64 MiB segment of typical records is archived and read back (printed, not
/// asserted: the numbers in docs/OPERATIONS.md come from here).
#[cfg(test)]
mod throughput {
    use super::*;
    use faultline_schema::{Level, Record, Uuid};

    #[test]
    #[ignore = "a measurement, run by hand in release"]
    fn archive_throughput() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("segments");
        std::fs::create_dir_all(&dir).unwrap();
        let mut bytes = Vec::new();
        let start = 1_780_000_000_000i64;
        let mut n = 0u64;
        while bytes.len() < 64 << 20 {
            let mut r = Record::new(
                Timestamp::from_unix_millis(start + n as i64 * 5),
                "api",
                if n.is_multiple_of(10) {
                    Level::Error
                } else {
                    Level::Info
                },
                "request_done",
                format!("GET /api/v1/orders/{n} answered 200 in {} ms", n % 97),
            );
            r.id = Some(Uuid::now_v7());
            r.received_at = Some(r.ts);
            r.meta.insert("trace_id".into(), format!("{n:032x}").into());
            r.meta
                .insert("user".into(), format!("u_{:016x}", n % 5000).into());
            r.meta.insert("release".into(), "api@2.14.1".into());
            r.write_json(&mut bytes);
            bytes.push(b'\n');
            n += 1;
        }
        std::fs::write(segment_path(&dir, 1), &bytes).unwrap();
        let archive = ArchiveDir::with_node(tmp.path().join("archive"), "bench");
        let t = std::time::Instant::now();
        let files = archive_segment(&archive, &dir, 1, bytes.len() as u64).unwrap();
        let took = t.elapsed().as_secs_f64();
        let gz: u64 = files
            .iter()
            .map(|f| std::fs::metadata(&f.path).unwrap().len())
            .sum();
        let mib = bytes.len() as f64 / (1 << 20) as f64;
        println!(
            "archived {n} records, {mib:.1} MiB in {took:.3} s: {:.0} MiB/s, {:.0} records/s; \
             gzip {:.1} MiB ({:.1}x)",
            mib / took,
            n as f64 / took,
            gz as f64 / (1 << 20) as f64,
            bytes.len() as f64 / gz as f64
        );
        let t = std::time::Instant::now();
        let read: u64 = files
            .iter()
            .map(|f| crate::archive::check_archive(&f.path).unwrap().records)
            .sum();
        let took = t.elapsed().as_secs_f64();
        assert_eq!(read, n);
        println!(
            "read back and checked in {took:.3} s: {:.0} MiB/s, {:.0} records/s",
            mib / took,
            n as f64 / took
        );
    }
}
