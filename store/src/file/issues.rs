//! The file store's issues: an [`IssueTable`] kept by the writer thread and persisted.
//!
//! The writer applies a group's error events to the table when the group is durable (in
//! `Writer::commit`, so only records actually stored count, duplicates never), and records
//! how far into the segments the table goes: the active segment and its committed length.
//! The table and that position are written together to `dir/issues.json` (a temporary file,
//! fsynced, renamed over the old one, the directory fsynced) once a minute when something
//! changed, when a status is set, and when the store closes. On open, the snapshot is read
//! and every record stored after its position is applied again, so a restart, clean or not,
//! neither loses nor doubles a count; without a snapshot every segment is read.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use faultline_schema::{Record, Timestamp};
use serde::{Deserialize, Serialize};

use super::lock;
use super::reader::lines_forward;
use super::segment::{SegmentInfo, segment_path};
use crate::issues::{IssueEvent, IssueTable};
use crate::private::{with_path, write_atomically};

/// The snapshot's file name in the store's directory.
pub(crate) const SNAPSHOT_FILE: &str = "issues.json";
const SNAPSHOT_VERSION: u32 = 1;

/// How far into the segments the table goes: every record before `bytes` of segment `seq`
/// (and in every earlier segment) is in it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Covered {
    pub(crate) seq: u64,
    pub(crate) bytes: u64,
}

impl Covered {
    /// The segments (of `segments`, oldest first, with their committed lengths) holding
    /// records after this position, each with the offset they start at.
    pub(crate) fn unread(
        self,
        segments: &[SegmentInfo],
    ) -> impl Iterator<Item = (&SegmentInfo, u64)> {
        segments.iter().filter_map(move |info| {
            let from = match info.seq.cmp(&self.seq) {
                std::cmp::Ordering::Less => return None,
                std::cmp::Ordering::Equal => self.bytes.min(info.summary.bytes),
                std::cmp::Ordering::Greater => 0,
            };
            (from < info.summary.bytes).then_some((info, from))
        })
    }
}

/// The table and what it covers, behind one lock.
#[derive(Debug, Default)]
pub(crate) struct IssueState {
    pub(crate) table: IssueTable,
    pub(crate) covered: Covered,
    /// Changed since the last snapshot.
    pub(crate) dirty: bool,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    covered: Covered,
    table: IssueTable,
}

/// The issues of one file store: the state and the snapshot file.
#[derive(Debug)]
pub(crate) struct FileIssues {
    pub(crate) state: Mutex<IssueState>,
    /// Held while a snapshot is taken and written, so two writers cannot rename an older
    /// snapshot over a newer one.
    snapshot: Mutex<()>,
    path: PathBuf,
    pub(crate) retention: Duration,
}

impl FileIssues {
    /// Loads the snapshot in `dir` (if any) and applies every record stored after it, from
    /// `segments` (oldest first, with their committed lengths).
    pub(crate) fn open(
        dir: &Path,
        segments_dir: &Path,
        segments: &[SegmentInfo],
        retention: Duration,
    ) -> io::Result<FileIssues> {
        let path = dir.join(SNAPSHOT_FILE);
        let mut state = IssueState::default();
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Snapshot>(&bytes) {
                Ok(s) if s.version == SNAPSHOT_VERSION => {
                    state.table = s.table;
                    state.covered = s.covered;
                }
                Ok(s) => tracing::warn!(
                    version = s.version,
                    "unknown issues snapshot version; rebuilding issues from the segments"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "unreadable issues snapshot; rebuilding issues from the segments"
                ),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(with_path(e, &path)),
        }
        let mut replayed = 0u64;
        for (info, from) in state.covered.unread(segments) {
            let seg = segment_path(segments_dir, info.seq);
            replayed += replay(&seg, from, info.summary.bytes, &mut state.table)?;
        }
        if let Some(last) = segments.last() {
            state.covered = Covered {
                seq: last.seq,
                bytes: last.summary.bytes,
            };
        }
        state.dirty = replayed > 0;
        tracing::info!(
            issues = state.table.len(),
            replayed,
            "file store issues loaded"
        );
        Ok(FileIssues {
            state: Mutex::new(state),
            snapshot: Mutex::new(()),
            path,
            retention,
        })
    }

    /// Writes the snapshot if anything changed since the last one.
    pub(crate) fn snapshot_if_dirty(&self) -> io::Result<()> {
        let _writing = lock(&self.snapshot);
        let bytes = {
            let mut state = lock(&self.state);
            if !state.dirty {
                return Ok(());
            }
            state.dirty = false;
            serialize(&state)
        };
        let written = write_atomically(&self.path, &bytes);
        if written.is_err() {
            lock(&self.state).dirty = true;
        }
        written
    }

    /// Forgets issues past retention and old hourly counts.
    pub(crate) fn prune(&self, now: Timestamp) {
        let mut state = lock(&self.state);
        if state.table.prune(now, self.retention) > 0 {
            state.dirty = true;
        }
    }
}

fn serialize(state: &IssueState) -> Vec<u8> {
    #[derive(Serialize)]
    struct SnapshotRef<'a> {
        version: u32,
        covered: Covered,
        table: &'a IssueTable,
    }
    serde_json::to_vec(&SnapshotRef {
        version: SNAPSHOT_VERSION,
        covered: state.covered,
        table: &state.table,
    })
    .unwrap_or_default()
}

/// Applies the error events stored in `path[from..to]` to `table`; returns how many.
fn replay(path: &Path, from: u64, to: u64, table: &mut IssueTable) -> io::Result<u64> {
    use std::io::{BufReader, Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).map_err(|e| with_path(e, path))?;
    file.seek(SeekFrom::Start(from))
        .map_err(|e| with_path(e, path))?;
    let reader = BufReader::with_capacity(1 << 20, file.take(to - from));
    let finder = memchr::memmem::Finder::new(b"\"issue\":\"");
    let mut applied = 0u64;
    lines_forward(reader, |line| {
        if finder.find(line).is_none() {
            return;
        }
        let Ok(record) = Record::from_json(line) else {
            return;
        };
        if let Some(event) = IssueEvent::from_record(&record) {
            let at = record.received_at.unwrap_or(record.ts);
            table.apply(&event, at);
            applied += 1;
        }
    })
    .map_err(|e| with_path(e, path))?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::super::{FileStore, FileStoreConfig};
    use super::*;
    use crate::RecordStore;
    use crate::issues::{IssueQuery, IssueStatus};
    use faultline_schema::{Level, Uuid};

    fn error(n: u128, issue: &str, user: &str) -> Record {
        let mut r = Record::new(
            Timestamp::now(),
            "ui",
            Level::Error,
            "e",
            format!("boom {n}"),
        );
        r.id = Some(Uuid::from_u128(n));
        r.received_at = Some(Timestamp::now());
        r.issue = Some(issue.to_owned());
        r.meta.insert("user".into(), user.into());
        r
    }

    async fn counts(store: &FileStore) -> Vec<(String, u64, u64, IssueStatus)> {
        let page = store
            .issues(IssueQuery {
                status: None,
                ..IssueQuery::default()
            })
            .await
            .unwrap();
        let mut v: Vec<_> = page
            .issues
            .into_iter()
            .map(|s| (s.issue.id, s.issue.count, s.issue.users, s.issue.status))
            .collect();
        v.sort();
        v
    }

    /// Guards restarts: counts come back from the snapshot plus the records after it, never
    /// doubled, also when the last snapshot is older than the last records (a crash), and a
    /// retried batch counts once.
    #[tokio::test(flavor = "multi_thread")]
    async fn counts_survive_restarts_and_crashes_without_doubling() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = ("000000000000000a", "000000000000000b");
        let store = FileStore::open(FileStoreConfig::new(tmp.path())).unwrap();
        let first: Vec<Record> = (1..=10)
            .map(|n| error(n, a, "u_0000000000000001"))
            .collect();
        store.write(first.clone()).await.unwrap();
        let receipt = store.write(first).await.unwrap();
        assert_eq!(receipt.duplicates, 10);
        store
            .set_issue_status(a.into(), IssueStatus::Resolved)
            .await
            .unwrap()
            .unwrap();
        let early = std::fs::read(tmp.path().join(SNAPSHOT_FILE)).unwrap();
        store
            .write(
                (11..=15)
                    .map(|n| error(n, b, &format!("u_{n:016x}")))
                    .collect(),
            )
            .await
            .unwrap();
        store
            .write(vec![error(16, a, "u_0000000000000002")])
            .await
            .unwrap();
        let want = vec![
            (a.to_owned(), 11, 2, IssueStatus::Unresolved),
            (b.to_owned(), 5, 5, IssueStatus::Unresolved),
        ];
        assert_eq!(counts(&store).await, want);
        store.shutdown().await.unwrap();
        drop(store);

        let store = FileStore::open(FileStoreConfig::new(tmp.path())).unwrap();
        assert_eq!(counts(&store).await, want, "clean restart");
        store.shutdown().await.unwrap();
        drop(store);

        // As if the process died right after the status change: the records after that
        // snapshot are read again from the segments.
        std::fs::write(tmp.path().join(SNAPSHOT_FILE), early).unwrap();
        let store = FileStore::open(FileStoreConfig::new(tmp.path())).unwrap();
        assert_eq!(counts(&store).await, want, "restart from an older snapshot");
        store.shutdown().await.unwrap();
        drop(store);

        std::fs::remove_file(tmp.path().join(SNAPSHOT_FILE)).unwrap();
        let store = FileStore::open(FileStoreConfig::new(tmp.path())).unwrap();
        let rebuilt = counts(&store).await;
        assert_eq!(
            rebuilt.iter().map(|c| (c.1, c.2)).collect::<Vec<_>>(),
            [(11, 2), (5, 5)],
            "rebuilt from the segments alone (statuses are only in the snapshot)"
        );
        store.shutdown().await.unwrap();
    }
}
