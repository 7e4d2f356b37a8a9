//! Following a file: read what was appended, notice rotation (the file renamed and a new
//! one created at the path) and truncation, and commit the offset in the state file once
//! the records before it are safe.
//!
//! - **Resume.** On start, the state file names the file by device, inode and fingerprint.
//!   If the path still holds it, reading resumes at the saved offset. If the path now holds
//!   another file, the directory is searched for the old one (rotated while the forwarder
//!   was down), which is finished first. Otherwise the path is read from its start.
//! - **Rotation.** When the path names another file, the old one is read until it has been
//!   quiet for the rotate wait (a program may write to it until it reopens its log), its
//!   last records are settled, and the new file is read from its start.
//! - **Truncation.** A file shorter than the offset, or whose first bytes changed, is read
//!   again from its start.
//! - **Ids.** Each file (and each truncation of it) gets a new generation, saved before a
//!   record is sent; ids derive from it and the line's offset (`id.rs`). A restart that sends
//!   lines again after the last commit sends them with the same ids, and the server stores
//!   each once.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::state_file::{FINGERPRINT_BYTES, FileId, Fingerprint, State, StateError};
use super::{Line, Splitter};
use crate::id::{Ids, new_generation};
use crate::pipeline::Pipeline;

/// How much is read before the records are sent on.
const READ_CHUNK: usize = 256 * 1024;
/// How many records may be sent before an offset is committed while the file is busy.
const SETTLE_EVERY: u64 = 5000;

/// Settings of a followed file.
#[derive(Debug, Clone)]
pub(crate) struct TailConfig {
    pub(crate) path: PathBuf,
    pub(crate) state_file: PathBuf,
    /// How often the file is checked once everything was read.
    pub(crate) poll: Duration,
    /// How long a renamed file must be quiet before the new one is read.
    pub(crate) rotate_wait: Duration,
    /// How long a pause must last before a held-back line is sent without a traceback.
    pub(crate) multiline_wait: Duration,
    /// How long one settle may wait for the server or the spool.
    pub(crate) settle_timeout: Duration,
}

/// Errors that stop the forwarder.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TailError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
}

/// The file being read and where.
#[derive(Debug)]
struct Tail {
    path: PathBuf,
    state_file: PathBuf,
    file: File,
    id: FileId,
    fingerprint: Fingerprint,
    generation: u128,
    read_pos: u64,
    splitter: Splitter,
    /// Since when the file is no longer at the path (or last grew since).
    moved_since: Option<Instant>,
    rotate_wait: Duration,
}

impl Tail {
    /// Opens the file to follow, resuming from the state file; waits for the path to exist.
    fn open(config: &TailConfig, stop: &AtomicBool) -> Result<Option<Tail>, TailError> {
        let io = |p: &Path| {
            let p = p.to_owned();
            move |e| TailError::Io(p, e)
        };
        let state = State::load(&config.state_file)?;
        if let Some(s) = &state
            && let Some(generation) = s.generation()
        {
            if let Ok(file) = File::open(&config.path)
                && same_file(&file, s).map_err(io(&config.path))?
            {
                return Ok(Some(Tail::resume(config, file, s, generation, None)));
            }
            if let Some(file) = find_moved(&config.path, s) {
                tracing::info!(
                    "{} was rotated while the forwarder was stopped: finishing the old file first",
                    config.path.display()
                );
                return Ok(Some(Tail::resume(
                    config,
                    file,
                    s,
                    generation,
                    Some(Instant::now()),
                )));
            }
        }
        let mut waited = false;
        let file = loop {
            match File::open(&config.path) {
                Ok(f) => break f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if !waited {
                        tracing::info!("waiting for {} to exist", config.path.display());
                        waited = true;
                    }
                    if stop.load(Ordering::Relaxed) {
                        return Ok(None);
                    }
                    std::thread::sleep(config.poll);
                }
                Err(e) => return Err(TailError::Io(config.path.clone(), e)),
            }
        };
        let mut tail = Tail::resume_fresh(config, file).map_err(io(&config.path))?;
        tail.commit(0)?;
        Ok(Some(tail))
    }

    fn resume(
        config: &TailConfig,
        file: File,
        s: &State,
        generation: u128,
        moved_since: Option<Instant>,
    ) -> Tail {
        Tail {
            path: config.path.clone(),
            state_file: config.state_file.clone(),
            file,
            id: s.id(),
            fingerprint: s.fingerprint,
            generation,
            read_pos: s.offset,
            splitter: Splitter::at(s.offset),
            moved_since,
            rotate_wait: config.rotate_wait,
        }
    }

    fn resume_fresh(config: &TailConfig, file: File) -> std::io::Result<Tail> {
        let meta = file.metadata()?;
        Ok(Tail {
            path: config.path.clone(),
            state_file: config.state_file.clone(),
            id: FileId::of(&meta),
            fingerprint: Fingerprint::of(&file)?,
            file,
            generation: new_generation(),
            read_pos: 0,
            splitter: Splitter::at(0),
            moved_since: None,
            rotate_wait: config.rotate_wait,
        })
    }

    fn ids(&self) -> Ids {
        Ids::Offsets(self.generation)
    }

    /// Where the next complete line starts.
    fn position(&self) -> u64 {
        self.splitter.position()
    }

    /// Reads what was appended (up to [`READ_CHUNK`]); whether anything was.
    fn read(&mut self, out: &mut Vec<Line>) -> std::io::Result<bool> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0;
        while total < READ_CHUNK {
            let n = match self.file.read_at(&mut buf, self.read_pos) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.read_pos += n as u64;
            total += n;
            self.splitter.push(&buf[..n], out);
        }
        if total > 0 && self.moved_since.is_some() {
            self.moved_since = Some(Instant::now());
        }
        Ok(total > 0)
    }

    /// Whether the file shrank below what was read, or its first bytes changed: it was
    /// truncated (and perhaps written again). Checked before every read, so that what a
    /// rewritten file holds past the old offset is not taken for an append.
    fn truncated(&self) -> std::io::Result<bool> {
        let len = self.file.metadata()?.len();
        Ok(len < self.read_pos || !self.fingerprint.matches(&self.file)?)
    }

    /// At end of file: has the path named another file for the rotate wait?
    fn rotated(&mut self) -> bool {
        match std::fs::metadata(&self.path) {
            Ok(m) if FileId::of(&m) == self.id => {
                self.moved_since = None;
                false
            }
            other => {
                let since = *self.moved_since.get_or_insert_with(Instant::now);
                other.is_ok() && since.elapsed() >= self.rotate_wait
            }
        }
    }

    /// Records before `offset` are safe: save it.
    fn commit(&mut self, offset: u64) -> Result<(), StateError> {
        if self.fingerprint.len < FINGERPRINT_BYTES as u64
            && let Ok(fp) = Fingerprint::of(&self.file)
            && self.fingerprint.matches(&self.file).unwrap_or(false)
        {
            self.fingerprint = fp;
        }
        State {
            path: self.path.clone(),
            dev: self.id.dev,
            ino: self.id.ino,
            fingerprint: self.fingerprint,
            generation: format!("{:032x}", self.generation),
            offset,
        }
        .save(&self.state_file)
    }

    /// The file was truncated: start it again, as a new generation.
    fn restart(&mut self) -> Result<(), TailError> {
        let io = |e| TailError::Io(self.path.clone(), e);
        self.fingerprint = Fingerprint::of(&self.file).map_err(io)?;
        self.generation = new_generation();
        self.read_pos = 0;
        self.splitter = Splitter::at(0);
        self.commit(0)?;
        Ok(())
    }

    /// The path holds a new file: follow it from its start.
    fn switch(&mut self) -> Result<(), TailError> {
        let file = File::open(&self.path).map_err(|e| TailError::Io(self.path.clone(), e))?;
        let config = TailConfig {
            path: self.path.clone(),
            state_file: self.state_file.clone(),
            poll: Duration::ZERO,
            rotate_wait: self.rotate_wait,
            multiline_wait: Duration::ZERO,
            settle_timeout: Duration::ZERO,
        };
        *self =
            Tail::resume_fresh(&config, file).map_err(|e| TailError::Io(self.path.clone(), e))?;
        self.commit(0)?;
        Ok(())
    }
}

/// Whether `file` is the one the state describes.
fn same_file(file: &File, s: &State) -> std::io::Result<bool> {
    Ok(FileId::of(&file.metadata()?) == s.id() && s.fingerprint.matches(file)?)
}

/// The state's file under another name in the path's directory (`worker.log.1`, ...).
fn find_moved(path: &Path, s: &State) -> Option<File> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let file = File::open(entry.path()).ok()?;
        same_file(&file, s).ok()?.then_some(file)
    })
}

/// Follows the file until `stop` is set: every line appended, through rotations and
/// truncations, sent once with its offset committed after the output settled.
pub(crate) fn run(
    config: &TailConfig,
    pipeline: &mut Pipeline,
    stop: &AtomicBool,
) -> Result<Ids, TailError> {
    let Some(mut tail) = Tail::open(config, stop)? else {
        return Ok(Ids::Random);
    };
    let mut lines = Vec::new();
    let mut last_input = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let io = |e| TailError::Io(config.path.clone(), e);
        if tail.truncated().map_err(io)? {
            tracing::info!(
                "{} was truncated: reading it from the start",
                tail.path.display()
            );
            pipeline.summary.truncations += 1;
            // Whatever is held came from the old contents.
            pipeline.release_held(tail.ids());
            settle_until_done(&mut tail, pipeline, config, stop)?;
            tail.restart()?;
            continue;
        }
        if tail.read(&mut lines).map_err(io)? {
            last_input = Instant::now();
            pipeline.lines(&lines, tail.ids());
            lines.clear();
            if pipeline.unsettled >= SETTLE_EVERY {
                settle_and_commit(&mut tail, pipeline, config.settle_timeout)?;
            }
            continue;
        }
        if tail.rotated() {
            tracing::info!(
                "{} was rotated: following the new file",
                tail.path.display()
            );
            pipeline.summary.rotations += 1;
            tail.splitter.finish(&mut lines);
            pipeline.lines(&lines, tail.ids());
            lines.clear();
            pipeline.release_held(tail.ids());
            settle_until_done(&mut tail, pipeline, config, stop)?;
            tail.switch()?;
            continue;
        }
        if pipeline.holds() && last_input.elapsed() >= config.multiline_wait {
            pipeline.release_held(tail.ids());
        }
        if pipeline.unsettled > 0 {
            settle_and_commit(&mut tail, pipeline, config.settle_timeout)?;
        }
        std::thread::sleep(config.poll);
    }
    // Stopping: held lines go now; an unfinished last line is read again next time.
    pipeline.release_held(tail.ids());
    settle_and_commit(&mut tail, pipeline, config.settle_timeout)?;
    Ok(tail.ids())
}

/// Settles and, if everything sent is safe, commits the offset.
fn settle_and_commit(
    tail: &mut Tail,
    pipeline: &mut Pipeline,
    timeout: Duration,
) -> Result<bool, TailError> {
    let offset = pipeline.safe_offset(tail.position());
    if !pipeline.settle(timeout) {
        return Ok(false);
    }
    tail.commit(offset)?;
    Ok(true)
}

/// Settles before leaving a file, retrying until it works or the forwarder stops.
fn settle_until_done(
    tail: &mut Tail,
    pipeline: &mut Pipeline,
    config: &TailConfig,
    stop: &AtomicBool,
) -> Result<(), TailError> {
    while !settle_and_commit(tail, pipeline, config.settle_timeout)? {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        tracing::warn!("records are not delivered yet; the file switch waits for them");
    }
    Ok(())
}
