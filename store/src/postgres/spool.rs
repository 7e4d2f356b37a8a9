//! The spool: batches accepted while PostgreSQL is unreachable or slow, kept durably on local
//! disk until they are in the database.
//!
//! One file per batch (`{seq:020}.ndjson`), written to a temporary name, fsynced, renamed,
//! and the directory fsynced, so a crash leaves either the whole batch or nothing. Files drain
//! oldest first and are deleted only after PostgreSQL committed them; a crash mid-drain
//! replays a file, which the database's `ON CONFLICT DO NOTHING` on the record id absorbs.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use faultline_schema::Record;

use crate::private::{create_private_dir_all, create_private_file};
use crate::store::StoreError;

/// One spooled batch.
#[derive(Debug, Clone)]
pub(crate) struct SpoolFile {
    pub(crate) seq: u64,
    pub(crate) bytes: u64,
    pub(crate) records: u64,
    pub(crate) created: SystemTime,
}

#[derive(Debug, Default)]
struct State {
    files: VecDeque<SpoolFile>,
    bytes: u64,
    records: u64,
    next_seq: u64,
}

/// The spool directory and what is in it.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
}

/// A snapshot for health and metrics.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SpoolStats {
    pub(crate) batches: usize,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    /// Age of the oldest batch in seconds.
    pub(crate) oldest_age_secs: f64,
}

fn path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.ndjson"))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Spool {
    /// Opens (creating) the spool, removing half-written temporaries of a crash.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> Result<Spool, StoreError> {
        create_private_dir_all(dir)?;
        let mut files = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                fs::remove_file(entry.path()).ok();
                continue;
            }
            let Some(seq) = name
                .strip_suffix(".ndjson")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let meta = entry.metadata()?;
            let text = fs::read(entry.path())?;
            let records = text.iter().filter(|&&b| b == b'\n').count() as u64;
            files.push(SpoolFile {
                seq,
                bytes: meta.len(),
                records,
                created: meta.modified().unwrap_or_else(|_| SystemTime::now()),
            });
        }
        files.sort_by_key(|f| f.seq);
        let state = State {
            bytes: files.iter().map(|f| f.bytes).sum(),
            records: files.iter().map(|f| f.records).sum(),
            next_seq: files.last().map_or(1, |f| f.seq + 1),
            files: files.into(),
        };
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any batch is waiting.
    pub(crate) fn is_empty(&self) -> bool {
        self.lock().files.is_empty()
    }

    /// Writes `records` as a new batch file, durably. Blocking: call from a blocking thread.
    pub(crate) fn append(&self, records: &[Record]) -> Result<(), StoreError> {
        let mut buf = Vec::with_capacity(records.len() * 384);
        for r in records {
            r.write_json(&mut buf);
            buf.push(b'\n');
        }
        let seq = {
            let mut state = self.lock();
            if state.bytes + buf.len() as u64 > self.max_bytes {
                return Err(StoreError::Overloaded);
            }
            // Reserve the space now so concurrent appends cannot overshoot the cap together.
            state.bytes += buf.len() as u64;
            state.next_seq += 1;
            state.next_seq - 1
        };
        let result = self.write_file(seq, &buf);
        let mut state = self.lock();
        match result {
            Ok(()) => {
                let file = SpoolFile {
                    seq,
                    bytes: buf.len() as u64,
                    records: records.len() as u64,
                    created: SystemTime::now(),
                };
                state.records += file.records;
                // Keep the queue ordered by seq even when appends finish out of order.
                let at = state.files.partition_point(|f| f.seq < seq);
                state.files.insert(at, file);
                Ok(())
            }
            Err(e) => {
                state.bytes -= buf.len() as u64;
                let message =
                    format!("PostgreSQL is unreachable and the spool could not be written: {e}");
                Err(if e.kind() == std::io::ErrorKind::StorageFull {
                    StoreError::DiskFull(message)
                } else {
                    StoreError::Unavailable(message)
                })
            }
        }
    }

    fn write_file(&self, seq: u64, buf: &[u8]) -> std::io::Result<()> {
        let target = path(&self.dir, seq);
        let tmp = target.with_extension("tmp");
        let mut f = create_private_file(&tmp)?;
        f.write_all(buf)?;
        f.sync_data()?;
        fs::rename(&tmp, &target)?;
        sync_dir(&self.dir)
    }

    /// The oldest batch and its records, if any. Blocking.
    pub(crate) fn oldest(&self) -> Result<Option<(SpoolFile, Vec<Record>)>, StoreError> {
        let Some(file) = self.lock().files.front().cloned() else {
            return Ok(None);
        };
        let text = fs::read(path(&self.dir, file.seq))?;
        let records = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| Record::from_json(l).ok())
            .collect();
        Ok(Some((file, records)))
    }

    /// Deletes a batch that is now in the database. Blocking.
    pub(crate) fn remove(&self, seq: u64) -> Result<(), StoreError> {
        fs::remove_file(path(&self.dir, seq))?;
        sync_dir(&self.dir)?;
        self.forget(seq);
        Ok(())
    }

    /// Moves a batch the database keeps refusing aside (`failed/`), so it cannot block the
    /// rest; an operator can inspect and re-send it.
    pub(crate) fn quarantine(&self, seq: u64) -> Result<PathBuf, StoreError> {
        let failed = self.dir.join("failed");
        create_private_dir_all(&failed)?;
        let to = failed.join(format!("{seq:020}.ndjson"));
        fs::rename(path(&self.dir, seq), &to)?;
        sync_dir(&self.dir)?;
        self.forget(seq);
        Ok(to)
    }

    /// Drops a batch from the accounting once its file is gone.
    fn forget(&self, seq: u64) {
        let mut state = self.lock();
        if let Some(at) = state.files.iter().position(|f| f.seq == seq)
            && let Some(f) = state.files.remove(at)
        {
            state.bytes -= f.bytes;
            state.records -= f.records;
        }
    }

    pub(crate) fn stats(&self) -> SpoolStats {
        let state = self.lock();
        SpoolStats {
            batches: state.files.len(),
            records: state.records,
            bytes: state.bytes,
            oldest_age_secs: state
                .files
                .front()
                .and_then(|f| f.created.elapsed().ok())
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use faultline_schema::{Level, Timestamp};

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Guards spooled records readable by every user: the spool, its batches and
    /// `failed/` were created 0755 and 0644.
    #[test]
    fn the_spool_and_its_batches_are_private_to_the_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("spool");
        let spool = Spool::open(&dir, 1 << 20).unwrap();
        let record = Record::new(Timestamp::now(), "api", Level::Info, "e", "secret stuff");
        spool.append(std::slice::from_ref(&record)).unwrap();
        spool.append(&[record]).unwrap();
        let first = spool.oldest().unwrap().unwrap().0.seq;
        let failed = spool.quarantine(first).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(failed.parent().unwrap()), 0o700);
        assert_eq!(mode(&failed), 0o600);
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let want = if path.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode(&path), want, "{}", path.display());
        }
    }
}
