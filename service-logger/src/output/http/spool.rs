//! The HTTP output's outage spool: batches waiting on local disk while the ingest endpoint is
//! unreachable, delivered oldest first when it returns.
//!
//! One file per batch (`{seq:020}.ndjson`, the request body uncompressed), written to a
//! temporary name, fsynced, renamed and the directory fsynced, so a crash leaves a whole
//! batch or none. A file is deleted only after the endpoint acknowledged it; a crash in
//! between replays it, and the records' ids make the replay a no-op on the server.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why a batch could not be spooled.
#[derive(Debug)]
pub(crate) enum SpoolError {
    /// The spool is at its size limit.
    Full,
    Io(io::Error),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct SpoolFile {
    pub(crate) seq: u64,
    pub(crate) bytes: u64,
    pub(crate) records: u64,
}

#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    fsync: bool,
    files: VecDeque<SpoolFile>,
    bytes: u64,
    records: u64,
    next_seq: u64,
}

fn path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.ndjson"))
}

impl Spool {
    /// Opens (creating) the spool, removing temporaries a crash left behind.
    pub(crate) fn open(dir: &Path, max_bytes: u64, fsync: bool) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut files = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some(seq) = name
                .strip_suffix(".ndjson")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let data = fs::read(entry.path())?;
            files.push(SpoolFile {
                seq,
                bytes: data.len() as u64,
                records: data.iter().filter(|&&b| b == b'\n').count() as u64,
            });
        }
        files.sort_by_key(|f| f.seq);
        let next_seq = files.last().map_or(1, |f| f.seq + 1);
        // Probe now, so an unwritable directory is an error at start, not during an outage.
        let probe = dir.join(".probe.tmp");
        File::create(&probe)?;
        fs::remove_file(&probe)?;
        Ok(Spool {
            dir: dir.to_owned(),
            max_bytes,
            fsync,
            bytes: files.iter().map(|f| f.bytes).sum(),
            records: files.iter().map(|f| f.records).sum(),
            files: files.into(),
            next_seq,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub(crate) fn records(&self) -> u64 {
        self.records
    }

    /// Stores one batch durably.
    pub(crate) fn append(&mut self, body: &[u8], records: u64) -> Result<(), SpoolError> {
        if self.bytes + body.len() as u64 > self.max_bytes {
            return Err(SpoolError::Full);
        }
        let seq = self.next_seq;
        let final_path = path(&self.dir, seq);
        let tmp = final_path.with_extension("ndjson.tmp");
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(body)?;
            if self.fsync {
                f.sync_all()?;
            }
            fs::rename(&tmp, &final_path)?;
            if self.fsync {
                File::open(&self.dir)?.sync_all()?;
            }
            Ok(())
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(SpoolError::Io(e));
        }
        self.next_seq += 1;
        self.bytes += body.len() as u64;
        self.records += records;
        self.files.push_back(SpoolFile {
            seq,
            bytes: body.len() as u64,
            records,
        });
        Ok(())
    }

    /// The oldest batch's file and its bytes.
    pub(crate) fn oldest(&self) -> Option<io::Result<(SpoolFile, Vec<u8>)>> {
        let f = *self.files.front()?;
        Some(fs::read(path(&self.dir, f.seq)).map(|data| (f, data)))
    }

    /// Deletes a delivered (or refused) batch. It leaves the queue even when the file
    /// cannot be deleted (the next start then replays it, which the ids make harmless), so a
    /// stuck file never blocks the rest.
    pub(crate) fn remove(&mut self, seq: u64) -> io::Result<()> {
        let Some(pos) = self.files.iter().position(|f| f.seq == seq) else {
            return Ok(());
        };
        if let Some(f) = self.files.remove(pos) {
            self.bytes -= f.bytes;
            self.records -= f.records;
        }
        match fs::remove_file(path(&self.dir, seq)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_survive_a_reopen_in_order_and_respect_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path(), 100, true).unwrap();
        s.append(b"{\"a\":1}\n{\"a\":2}\n", 2).unwrap();
        s.append(b"{\"a\":3}\n", 1).unwrap();
        assert!(matches!(s.append(&[b'x'; 90], 1), Err(SpoolError::Full)));
        std::fs::write(dir.path().join("00000000000000000009.ndjson.tmp"), b"torn").unwrap();
        drop(s);

        let mut s = Spool::open(dir.path(), 100, true).unwrap();
        assert_eq!(s.records(), 3);
        let (f, data) = s.oldest().unwrap().unwrap();
        assert_eq!(data, b"{\"a\":1}\n{\"a\":2}\n");
        s.remove(f.seq).unwrap();
        let (f, data) = s.oldest().unwrap().unwrap();
        assert_eq!(data, b"{\"a\":3}\n");
        s.remove(f.seq).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.records(), 0);
        assert!(!dir.path().join("00000000000000000009.ndjson.tmp").exists());
        // New batches continue the sequence.
        s.append(b"{}\n", 1).unwrap();
        assert_eq!(s.oldest().unwrap().unwrap().0.seq, 3);
    }
}
