//! The state file: which file the forwarder reads and how far its records are safe.
//!
//! A file is known by its device and inode and by a fingerprint of its first bytes (an
//! inode number can be reused by a new file once the old one is deleted). The state is
//! written after the records before `offset` were acknowledged by the server or put in the
//! spool, atomically (a temporary file, fsync, rename, fsync of the directory), so a crash
//! leaves the old state or the new one.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How many leading bytes make the fingerprint.
pub(crate) const FINGERPRINT_BYTES: usize = 256;

/// The first bytes of a file, hashed (FNV-1a), and how many there were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    pub(crate) len: u64,
    pub(crate) hash: u64,
}

impl Fingerprint {
    /// Of the file's first [`FINGERPRINT_BYTES`] (fewer if the file is shorter).
    pub(crate) fn of(file: &File) -> io::Result<Fingerprint> {
        let bytes = read_prefix(file, FINGERPRINT_BYTES)?;
        Ok(Fingerprint {
            len: bytes.len() as u64,
            hash: fnv1a(&bytes),
        })
    }

    /// Whether `file` starts with the same bytes (it may have grown since).
    pub(crate) fn matches(&self, file: &File) -> io::Result<bool> {
        let bytes = read_prefix(file, self.len as usize)?;
        Ok(bytes.len() as u64 == self.len && fnv1a(&bytes) == self.hash)
    }
}

fn read_prefix(file: &File, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match file.read_at(&mut buf[got..], got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl FileId {
    pub(crate) fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct State {
    /// The path that was followed (for people reading the file).
    pub(crate) path: PathBuf,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) fingerprint: Fingerprint,
    /// The generation record ids are derived from (hex).
    pub(crate) generation: String,
    /// Every record that starts before this byte is acknowledged or spooled.
    pub(crate) offset: u64,
}

impl State {
    pub(crate) fn id(&self) -> FileId {
        FileId {
            dev: self.dev,
            ino: self.ino,
        }
    }

    pub(crate) fn generation(&self) -> Option<u128> {
        u128::from_str_radix(&self.generation, 16).ok()
    }

    /// Reads the state file; `None` when there is none yet.
    pub(crate) fn load(path: &Path) -> Result<Option<State>, StateError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StateError::Io(path.to_owned(), e)),
        };
        let state: State = serde_json::from_str(&text)
            .map_err(|e| StateError::Corrupt(path.to_owned(), e.to_string()))?;
        if state.generation().is_none() {
            return Err(StateError::Corrupt(
                path.to_owned(),
                "generation is not hexadecimal".into(),
            ));
        }
        Ok(Some(state))
    }

    /// Replaces the state file atomically and durably.
    pub(crate) fn save(&self, path: &Path) -> Result<(), StateError> {
        let io_err = |e| StateError::Io(path.to_owned(), e);
        let tmp = path.with_extension("tmp");
        let mut text = serde_json::to_vec_pretty(self).unwrap_or_default();
        text.push(b'\n');
        {
            let f = File::create(&tmp).map_err(io_err)?;
            io::Write::write_all(&mut &f, &text).map_err(io_err)?;
            f.sync_all().map_err(io_err)?;
        }
        std::fs::rename(&tmp, path).map_err(io_err)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err)
    }
}

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    #[error("state file {0}: {1}")]
    Io(PathBuf, #[source] io::Error),
    #[error(
        "state file {0} is not a forwarder state ({1}): move it away to start the file from \
         its beginning, or pass another --state-file"
    )]
    Corrupt(PathBuf, String),
    #[error(
        "state file {0} is in use by another `faultline forward`: run one forwarder per file, \
         or give each its own --state-file"
    )]
    Locked(PathBuf),
}

/// Holds `<state file>.lock` for as long as it lives, so two forwarders never follow one
/// file with one state.
#[derive(Debug)]
pub(crate) struct StateLock {
    _file: File,
}

impl StateLock {
    pub(crate) fn acquire(state: &Path) -> Result<StateLock, StateError> {
        let mut name = state.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StateError::Io(path.clone(), e))?;
        match file.try_lock() {
            Ok(()) => Ok(StateLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StateError::Locked(state.to_owned())),
            Err(std::fs::TryLockError::Error(e)) => Err(StateError::Io(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_follow_the_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, b"first line\n").unwrap();
        let fp = Fingerprint::of(&File::open(&p).unwrap()).unwrap();
        assert_eq!(fp.len, 11);
        std::fs::write(&p, b"first line\nsecond line\n").unwrap();
        assert!(
            fp.matches(&File::open(&p).unwrap()).unwrap(),
            "grown, same start"
        );
        std::fs::write(&p, b"other line\n").unwrap();
        assert!(!fp.matches(&File::open(&p).unwrap()).unwrap());
        std::fs::write(&p, b"first").unwrap();
        assert!(!fp.matches(&File::open(&p).unwrap()).unwrap(), "shorter");
    }

    #[test]
    fn state_round_trips_and_bad_files_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        assert_eq!(State::load(&p).unwrap(), None);
        let s = State {
            path: "/var/log/w.log".into(),
            dev: 1,
            ino: 2,
            fingerprint: Fingerprint { len: 3, hash: 4 },
            generation: format!("{:x}", u128::MAX),
            offset: 99,
        };
        s.save(&p).unwrap();
        assert_eq!(State::load(&p).unwrap(), Some(s));
        std::fs::write(&p, "{}").unwrap();
        let e = State::load(&p).unwrap_err().to_string();
        assert!(e.contains("move it away"), "{e}");
        let _lock = StateLock::acquire(&p).unwrap();
        let e = StateLock::acquire(&p).unwrap_err().to_string();
        assert!(e.contains("in use"), "{e}");
    }
}
