//! The file store's hourly rollups: a [`HourlyRollups`] kept by the writer thread, persisted
//! as one small file per UTC day, and dropped with retention.
//!
//! The writer adds a group's records when the group is durable (`Writer::commit`, so
//! duplicates never count) and records how far into the segments the table goes, the way
//! the issues do (`issues.rs`). Once a minute, if something changed, the days that changed
//! are written to new files (`rollups/YYYY-MM-DD.GEN.json`, fsynced) and then the manifest
//! (`rollups/manifest.json`: the position covered and each day's current file, replaced
//! atomically) names them; the files it no longer names are deleted afterwards. A crash at
//! any point leaves the old manifest naming complete old files, so on open the table is
//! exactly what the manifest names, and every record stored after its position is read
//! again from the segments: usually under a minute of records, never counted twice.
//!
//! Only the day being written to is rewritten each minute (24 hours of keys: kilobytes),
//! whatever the retention; without a manifest (a store from before rollups, or one whose
//! files were lost), every segment is read once on open.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use faultline_schema::Timestamp;
use serde::{Deserialize, Serialize};

use super::config::millis;
use super::issues::Covered;
use super::lock;
use super::reader::{Head, lines_forward};
use super::segment::{SegmentInfo, segment_path};
use crate::private::{with_path, write_atomically};
use crate::rollup::{HourlyRollups, LevelCounts, RollupBucket, RollupQuery, hour_of};

/// The directory under the store's directory.
pub(crate) const ROLLUP_DIR: &str = "rollups";
const MANIFEST: &str = "manifest.json";
const VERSION: u32 = 1;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    /// Incremented by every write; names the day files written by it.
    generation: u64,
    covered: Covered,
    /// Day (Unix ms of its midnight, UTC) -> the generation of its file.
    days: BTreeMap<i64, u64>,
}

/// One key of one hour in a day's file: `[hour_ms, service, event, release, [DEBUG, INFO,
/// WARNING, ERROR, CRITICAL]]`.
type DayEntry<'a> = (i64, Cow<'a, str>, Cow<'a, str>, Cow<'a, str>, LevelCounts);

/// One day's file.
#[derive(Serialize, Deserialize)]
struct DayFile<'a> {
    #[serde(borrow)]
    entries: Vec<DayEntry<'a>>,
}

/// The table, what it covers and what changed since the last write, behind one lock.
#[derive(Debug, Default)]
pub(crate) struct RollupState {
    pub(crate) table: HourlyRollups,
    pub(crate) covered: Covered,
    /// Days with counts not yet written.
    pub(crate) dirty_days: BTreeSet<i64>,
}

/// The rollups of one file store: the state and its files.
#[derive(Debug)]
pub(crate) struct FileRollups {
    pub(crate) state: Mutex<RollupState>,
    /// The manifest as last written; held while writing, so writes never interleave.
    manifest: Mutex<Manifest>,
    dir: PathBuf,
    /// Hours older than this are dropped (the store's `retention_age`).
    pub(crate) retention: Duration,
}

/// The day holding `ms`.
fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

fn day_path(dir: &Path, day: i64, generation: u64) -> PathBuf {
    let date = &Timestamp::from_unix_millis(day).to_string()[..10];
    dir.join(format!("{date}.{generation}.json"))
}

impl FileRollups {
    /// Loads what the manifest in `store_dir/rollups` names, then counts every record stored
    /// after its position, from `segments` (oldest first, with their committed lengths).
    pub(crate) fn open(
        store_dir: &Path,
        segments_dir: &Path,
        segments: &[SegmentInfo],
        retention: Duration,
    ) -> io::Result<FileRollups> {
        let started = std::time::Instant::now();
        let dir = store_dir.join(ROLLUP_DIR);
        crate::private::create_private_dir_all(&dir).map_err(|e| with_path(e, &dir))?;
        let mut state = RollupState::default();
        let manifest = match load(&dir, &mut state.table) {
            Ok(Some(m)) => m,
            Ok(None) => Manifest::default(),
            Err(e) => {
                tracing::warn!(error = %e, "unreadable rollups; counting them again from the segments");
                state.table = HourlyRollups::default();
                Manifest::default()
            }
        };
        remove_unnamed(&dir, &manifest);
        state.covered = manifest.covered;
        let now = Timestamp::now();
        let oldest = oldest(now, retention);
        let mut replayed = 0u64;
        let mut scanned = 0u64;
        for (info, from) in state.covered.unread(segments) {
            let path = segment_path(segments_dir, info.seq);
            scanned += info.summary.bytes - from;
            replayed += replay(&path, from, info.summary.bytes, &mut state, now, oldest)?;
        }
        if let Some(last) = segments.last() {
            state.covered = Covered {
                seq: last.seq,
                bytes: last.summary.bytes,
            };
        }
        state.table.prune(oldest);
        tracing::info!(
            hours = state.table.hours.len(),
            keys = state.table.len(),
            replayed,
            scanned_bytes = scanned,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "file store rollups loaded"
        );
        Ok(FileRollups {
            state: Mutex::new(state),
            manifest: Mutex::new(manifest),
            dir,
            retention,
        })
    }

    /// The buckets `query` asks for.
    pub(crate) fn query(&self, query: &RollupQuery) -> Vec<RollupBucket> {
        lock(&self.state).table.query(query)
    }

    /// Drops hours past retention (their day files go with the next write).
    pub(crate) fn prune(&self, now: Timestamp) {
        lock(&self.state).table.prune(oldest(now, self.retention));
    }

    /// Writes the days that changed and then the manifest, if anything changed or a day
    /// left retention.
    pub(crate) fn write_if_dirty(&self) -> io::Result<()> {
        let mut manifest = lock(&self.manifest);
        let first_hour = {
            let state = lock(&self.state);
            state.table.hours.keys().next().copied()
        };
        let expired: Vec<i64> = manifest
            .days
            .keys()
            .copied()
            .filter(|&d| first_hour.is_none_or(|h| d + DAY_MS <= day_of(h)))
            .collect();
        let generation = manifest.generation + 1;
        let (days, covered) = {
            let mut state = lock(&self.state);
            if state.dirty_days.is_empty() && expired.is_empty() {
                return Ok(());
            }
            let dirty = std::mem::take(&mut state.dirty_days);
            let days: Vec<(i64, Vec<u8>)> = dirty
                .iter()
                .map(|&day| (day, serialize_day(&state.table, day)))
                .collect();
            (days, state.covered)
        };
        let written = self.write(&mut manifest, generation, &days, &expired, covered);
        if written.is_err() {
            lock(&self.state)
                .dirty_days
                .extend(days.iter().map(|(d, _)| *d));
        }
        written
    }

    fn write(
        &self,
        manifest: &mut Manifest,
        generation: u64,
        days: &[(i64, Vec<u8>)],
        expired: &[i64],
        covered: Covered,
    ) -> io::Result<()> {
        let mut next = Manifest {
            version: VERSION,
            generation,
            covered,
            days: manifest.days.clone(),
        };
        let mut superseded = Vec::new();
        for (day, bytes) in days {
            let path = day_path(&self.dir, *day, generation);
            let mut file =
                crate::private::create_private_file(&path).map_err(|e| with_path(e, &path))?;
            file.write_all(bytes).map_err(|e| with_path(e, &path))?;
            file.sync_all().map_err(|e| with_path(e, &path))?;
            if let Some(old) = next.days.insert(*day, generation) {
                superseded.push(day_path(&self.dir, *day, old));
            }
        }
        for day in expired {
            if let Some(old) = next.days.remove(day) {
                superseded.push(day_path(&self.dir, *day, old));
            }
        }
        let bytes = serde_json::to_vec(&next).map_err(io::Error::other)?;
        write_atomically(&self.dir.join(MANIFEST), &bytes)?;
        *manifest = next;
        for path in superseded {
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(error = %e, path = %path.display(), "could not delete an old rollup file");
            }
        }
        Ok(())
    }
}

/// The oldest instant still counted.
fn oldest(now: Timestamp, retention: Duration) -> Timestamp {
    Timestamp::from_unix_millis(now.unix_millis().saturating_sub(millis(retention)))
}

fn serialize_day(table: &HourlyRollups, day: i64) -> Vec<u8> {
    let mut entries = Vec::new();
    for (&hour, counts) in table.hours.range(day..day + DAY_MS) {
        for (service, event, release, c) in counts.entries() {
            entries.push((
                hour,
                Cow::Borrowed(service),
                Cow::Borrowed(event),
                Cow::Borrowed(release),
                *c,
            ));
        }
    }
    serde_json::to_vec(&DayFile { entries }).unwrap_or_default()
}

/// Reads the manifest and the day files it names into `table`; `None` without a manifest.
fn load(dir: &Path, table: &mut HourlyRollups) -> io::Result<Option<Manifest>> {
    let path = dir.join(MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(with_path(e, &path)),
    };
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| with_path(io::Error::new(io::ErrorKind::InvalidData, e), &path))?;
    if manifest.version != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: unknown version {}", path.display(), manifest.version),
        ));
    }
    for (&day, &generation) in &manifest.days {
        let path = day_path(dir, day, generation);
        let bytes = std::fs::read(&path).map_err(|e| with_path(e, &path))?;
        let file: DayFile<'_> = serde_json::from_slice(&bytes)
            .map_err(|e| with_path(io::Error::new(io::ErrorKind::InvalidData, e), &path))?;
        for (hour, service, event, release, counts) in file.entries {
            table.merge(hour_of(hour), &service, &event, &release, counts);
        }
    }
    Ok(Some(manifest))
}

/// Deletes what a crash left behind: day files the manifest does not name, temporary files.
fn remove_unnamed(dir: &Path, manifest: &Manifest) {
    let named: BTreeSet<PathBuf> = manifest
        .days
        .iter()
        .map(|(&d, &g)| day_path(dir, d, g))
        .collect();
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in listing.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name.to_str() == Some(MANIFEST) || named.contains(&path) {
            continue;
        }
        let _ = std::fs::remove_file(&path);
    }
}

/// Counts the records in `path[from..to]`; returns how many.
fn replay(
    path: &Path,
    from: u64,
    to: u64,
    state: &mut RollupState,
    now: Timestamp,
    oldest: Timestamp,
) -> io::Result<u64> {
    use std::io::{BufReader, Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(|e| with_path(e, path))?;
    file.seek(SeekFrom::Start(from))
        .map_err(|e| with_path(e, path))?;
    let reader = BufReader::with_capacity(1 << 20, file.take(to - from));
    let mut counted = 0u64;
    lines_forward(reader, |line| {
        let Ok(head) = serde_json::from_slice::<Head<'_>>(line) else {
            return;
        };
        let hour = state.table.add(
            head.ts,
            &head.service,
            head.level,
            &head.event,
            &head.meta.release(),
            head.meta.rollup_weight(),
            now,
            oldest,
        );
        if let Some(hour) = hour {
            state.dirty_days.insert(day_of(hour));
            counted += 1;
        }
    })
    .map_err(|e| with_path(e, path))?;
    Ok(counted)
}
