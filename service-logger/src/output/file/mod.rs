//! The rotating file output: NDJSON records appended to `{dir}/{prefix}.ndjson`, rotated by
//! size and/or time into `{prefix}.{YYYYMMDDTHHMMSS}[Z].{seq}.ndjson` (optionally gzipped),
//! with retention by count, age and total bytes.
//!
//! # Why not `faultline_store::FileStore`
//!
//! The server's file store is a database: group commit with an fsync per acknowledged batch,
//! an id index for deduplication, a data-dir lock and newest-first queries. A service's log
//! file needs none of that and must take millions of records a second, so it is a plain
//! appender with the same line format: every line is a record `faultline serve` and
//! `Record::from_json` accept.
//!
//! # Layout
//!
//! - `rotation.rs`: period boundaries (UTC or local) and segment names.
//! - `maintenance.rs`: gzip and retention on a thread of their own.
//! - this file: [`FileConfig`] and the writer.

mod maintenance;
mod rotation;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, UNIX_EPOCH};

pub use rotation::{Clock, Rotation};

use self::maintenance::{Maintenance, Settings};
use self::rotation::{closed_name, next_boundary, parse_closed, stamp};
use crate::capture::{self, mono_now};
use crate::error::InitError;
use crate::output::destination::{Destination, lines, write_some};
use crate::stats::{Counters, Reason};

/// When the file is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Never: written records are in the operating system's cache, which survives the
    /// process crashing but not the machine.
    Never,
    /// On [`flush`](crate::Logger::flush), shutdown (and so the panic hook) and rotation
    /// (the default).
    #[default]
    OnFlush,
    /// After every write: each batch the worker writes is on disk before it takes the next.
    /// Costs one fsync per batch; batches grow under load, so throughput holds up.
    Always,
}

/// Settings of the rotating file output.
///
/// ```
/// use std::time::Duration;
/// use faultline_logger::{Clock, FileConfig, Rotation};
///
/// let config = FileConfig::new("/var/log/api")
///     .max_bytes(64 * 1024 * 1024)       // rotate at 64 MiB
///     .rotation(Rotation::Daily)        // and at midnight
///     .clock(Clock::Local)              // local midnight, local time in names
///     .keep_files(30)                   // keep 30 closed segments
///     .max_age(Duration::from_secs(14 * 86_400))
///     .max_total_bytes(2 << 30)         // 2 GiB for all of them
///     .gzip(true);                      // compress closed segments
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct FileConfig {
    dir: PathBuf,
    prefix: Option<String>,
    max_bytes: Option<u64>,
    rotation: Rotation,
    clock: Clock,
    keep_files: Option<usize>,
    max_age: Option<Duration>,
    max_total_bytes: Option<u64>,
    gzip: bool,
    fsync: Fsync,
    buffer_bytes: usize,
    max_buffer_bytes: usize,
}

impl FileConfig {
    /// Files under `dir` (created if missing), named after the service, no rotation, no
    /// retention.
    pub fn new(dir: impl Into<PathBuf>) -> FileConfig {
        FileConfig {
            dir: dir.into(),
            prefix: None,
            max_bytes: None,
            rotation: Rotation::Never,
            clock: Clock::Utc,
            keep_files: None,
            max_age: None,
            max_total_bytes: None,
            gzip: false,
            fsync: Fsync::OnFlush,
            buffer_bytes: 256 * 1024,
            max_buffer_bytes: 16 * 1024 * 1024,
        }
    }

    /// The file name before `.ndjson` (default: the service name).
    pub fn prefix(mut self, prefix: impl Into<String>) -> FileConfig {
        self.prefix = Some(prefix.into());
        self
    }

    /// Rotate before a record would take the active file past this many bytes (a record
    /// larger than that gets a file of its own).
    pub fn max_bytes(mut self, bytes: u64) -> FileConfig {
        self.max_bytes = Some(bytes.max(1));
        self
    }

    /// Time-based rotation (default [`Rotation::Never`]).
    pub fn rotation(mut self, rotation: Rotation) -> FileConfig {
        self.rotation = rotation;
        self
    }

    /// The clock of rotation boundaries and file names (default [`Clock::Utc`]).
    pub fn clock(mut self, clock: Clock) -> FileConfig {
        self.clock = clock;
        self
    }

    /// Keep at most this many closed segments, deleting the oldest.
    pub fn keep_files(mut self, n: usize) -> FileConfig {
        self.keep_files = Some(n);
        self
    }

    /// Delete closed segments last written longer ago than this.
    pub fn max_age(mut self, age: Duration) -> FileConfig {
        self.max_age = Some(age);
        self
    }

    /// Delete the oldest closed segments while all files (the active one included) take
    /// more than this many bytes.
    pub fn max_total_bytes(mut self, bytes: u64) -> FileConfig {
        self.max_total_bytes = Some(bytes);
        self
    }

    /// Gzip closed segments (`.ndjson.gz`), on a background thread.
    pub fn gzip(mut self, yes: bool) -> FileConfig {
        self.gzip = yes;
        self
    }

    /// When to fsync (default [`Fsync::OnFlush`]).
    pub fn fsync(mut self, fsync: Fsync) -> FileConfig {
        self.fsync = fsync;
        self
    }

    /// How many bytes the worker gathers before a `write` while its queue is busy
    /// (default 256 KiB). It always writes as soon as the queue is empty.
    pub fn buffer_bytes(mut self, bytes: usize) -> FileConfig {
        self.buffer_bytes = bytes.max(1);
        self
    }

    /// While writes fail (disk full), how many bytes to hold for a retry before dropping
    /// them as `Dropped::failed` (default 16 MiB).
    pub fn max_buffer_bytes(mut self, bytes: usize) -> FileConfig {
        self.max_buffer_bytes = bytes;
        self
    }
}

/// The file output's worker side.
pub(crate) struct FileOutput {
    config: FileConfig,
    prefix: String,
    active: PathBuf,
    file: Option<File>,
    /// Bytes in the active file.
    size: u64,
    /// When the active segment started (UTC milliseconds), for its name.
    opened_ms: i64,
    next_rotation: Option<i64>,
    next_seq: u64,
    buf: Vec<u8>,
    /// Complete lines in `buf`.
    records: u64,
    oldest: Option<u64>,
    retry_at: Option<Instant>,
    backoff: Duration,
    unsynced: bool,
    maintenance: Maintenance,
    counters: Arc<Counters>,
}

fn io_error(name: &str, path: &Path, source: io::Error) -> InitError {
    InitError::Io {
        output: name.to_owned(),
        path: path.to_owned(),
        source,
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn wall_ms() -> i64 {
    capture::now().1
}

impl FileOutput {
    pub(crate) fn open(
        config: FileConfig,
        name: &str,
        service: &str,
        counters: Arc<Counters>,
    ) -> Result<FileOutput, InitError> {
        let prefix = config.prefix.clone().unwrap_or_else(|| service.to_owned());
        std::fs::create_dir_all(&config.dir).map_err(|e| io_error(name, &config.dir, e))?;
        let active = config.dir.join(format!("{prefix}.ndjson"));
        let mut file = open_append(&active).map_err(|e| io_error(name, &active, e))?;
        let meta = file.metadata().map_err(|e| io_error(name, &active, e))?;
        let mut size = meta.len();
        if size > 0 && !ends_with_newline(&active).map_err(|e| io_error(name, &active, e))? {
            // A crash cut the last line: end it, so the next record starts a line of its own.
            file.write_all(b"\n")
                .map_err(|e| io_error(name, &active, e))?;
            size += 1;
        }
        let now = wall_ms();
        let opened_ms = if size > 0 {
            meta.created()
                .or_else(|_| meta.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(now, |d| i64::try_from(d.as_millis()).unwrap_or(now))
        } else {
            now
        };
        let next_seq = std::fs::read_dir(&config.dir)
            .map_err(|e| io_error(name, &config.dir, e))?
            .flatten()
            .filter_map(|e| parse_closed(&prefix, &e.file_name().to_string_lossy()).map(|p| p.0))
            .max()
            .map_or(1, |s| s + 1);
        let maintenance = Maintenance::start(
            Settings {
                dir: config.dir.clone(),
                prefix: prefix.clone(),
                active: active.clone(),
                keep_files: config.keep_files,
                max_age: config.max_age,
                max_total_bytes: config.max_total_bytes,
                gzip: config.gzip,
            },
            counters.clone(),
        )
        .map_err(|e| InitError::Worker {
            output: name.to_owned(),
            message: e.to_string(),
        })?;
        let mut out = FileOutput {
            next_rotation: next_boundary(config.rotation, config.clock, opened_ms),
            buf: Vec::with_capacity(config.buffer_bytes + 64 * 1024),
            config,
            prefix,
            active,
            file: Some(file),
            size,
            opened_ms,
            next_seq,
            records: 0,
            oldest: None,
            retry_at: None,
            backoff: Duration::from_millis(100),
            unsynced: false,
            maintenance,
            counters,
        };
        // A segment left by a previous run whose period is over is closed now.
        if out.next_rotation.is_some_and(|t| t <= now) {
            out.rotate(now, true);
        }
        Ok(out)
    }

    /// Writes `buf[..upto]`; whether all of it went out.
    fn write_out(&mut self, upto: usize) -> bool {
        if upto == 0 {
            return true;
        }
        let now = Instant::now();
        if self.file.is_none() {
            if self.retry_at.is_some_and(|t| now < t) {
                return false;
            }
            match open_append(&self.active) {
                Ok(f) => self.file = Some(f),
                Err(e) => {
                    self.failed(format!("cannot open {}: {e}", self.active.display()), now);
                    return false;
                }
            }
        }
        let Some(file) = &mut self.file else {
            return false;
        };
        let (n, err) = write_some(file, &self.buf[..upto]);
        // The buffer holds whole lines only: written in full, it was `records` of them, and
        // counting newlines (a scan of every byte) is needed only after a partial write.
        let done = if n == self.buf.len() {
            self.records
        } else {
            lines(&self.buf[..n]).min(self.records)
        };
        self.size += n as u64;
        self.counters.wrote(done, self.oldest, mono_now());
        self.counters.pending.fetch_sub(done, Relaxed);
        self.records -= done;
        self.buf.drain(..n);
        if self.records == 0 {
            self.oldest = None;
        }
        if n > 0 {
            self.unsynced = true;
        }
        if let Some(e) = err {
            self.file = None;
            self.failed(format!("cannot write {}: {e}", self.active.display()), now);
            return false;
        }
        self.retry_at = None;
        self.backoff = Duration::from_millis(100);
        if self.config.fsync == Fsync::Always {
            self.sync();
        }
        true
    }

    fn failed(&mut self, message: String, now: Instant) {
        self.counters.error(message);
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_secs(5));
        if self.buf.len() > self.config.max_buffer_bytes {
            self.counters.lose(Reason::Failed, self.records);
            self.counters.pending.fetch_sub(self.records, Relaxed);
            self.buf.clear();
            self.records = 0;
            self.oldest = None;
        }
    }

    fn sync(&mut self) {
        if !self.unsynced {
            return;
        }
        if let Some(f) = &self.file {
            match f.sync_data() {
                Ok(()) => self.unsynced = false,
                Err(e) => self
                    .counters
                    .error(format!("cannot fsync {}: {e}", self.active.display())),
            }
        }
    }

    /// Closes the active segment under its final name and starts a new one; with
    /// `write_first`, the buffer goes into the closing segment first.
    fn rotate(&mut self, now_ms: i64, write_first: bool) {
        self.next_rotation = next_boundary(self.config.rotation, self.config.clock, now_ms);
        if (write_first && !self.write_out(self.buf.len())) || self.file.is_none() {
            return;
        }
        if self.size == 0 {
            self.opened_ms = now_ms;
            return;
        }
        if self.config.fsync != Fsync::Never {
            self.sync();
        }
        let name = closed_name(
            &self.prefix,
            &stamp(self.config.clock, self.opened_ms),
            self.next_seq,
        );
        let closed = self.config.dir.join(name);
        self.file = None;
        if let Err(e) = std::fs::rename(&self.active, &closed) {
            self.counters.error(format!(
                "cannot rename {} to {}: {e}",
                self.active.display(),
                closed.display()
            ));
            // Go on appending to the active file; the next rotation tries again.
            self.file = open_append(&self.active).ok();
            return;
        }
        self.next_seq += 1;
        self.size = 0;
        self.opened_ms = now_ms;
        match open_append(&self.active) {
            Ok(f) => self.file = Some(f),
            Err(e) => self.failed(
                format!("cannot create {}: {e}", self.active.display()),
                Instant::now(),
            ),
        }
        if self.config.fsync != Fsync::Never
            && let Err(e) = File::open(&self.config.dir).and_then(|d| d.sync_all())
        {
            self.counters
                .error(format!("cannot fsync {}: {e}", self.config.dir.display()));
        }
        self.maintenance.rotated();
    }
}

fn ends_with_newline(path: &Path) -> io::Result<bool> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

impl Destination for FileOutput {
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    fn commit(&mut self, start: usize, mono: u64) {
        if let Some(max) = self.config.max_bytes {
            let with_line = self.size + self.buf.len() as u64;
            let before_line = self.size + start as u64;
            // Everything before this line belongs to the current segment; the line starts
            // the next one.
            if with_line > max && before_line > 0 && self.write_out(start) {
                self.rotate(wall_ms(), false);
            }
        }
        self.records += 1;
        self.oldest.get_or_insert(mono);
        if self.buf.len() >= self.config.buffer_bytes {
            self.write_out(self.buf.len());
        }
    }

    fn poll(&mut self, idle: bool) -> Option<Instant> {
        let now_ms = wall_ms();
        if self.next_rotation.is_some_and(|t| now_ms >= t) {
            self.rotate(now_ms, true);
        }
        if idle || self.buf.len() >= self.config.buffer_bytes {
            self.write_out(self.buf.len());
        }
        let rotation = self.next_rotation.map(|t| {
            Instant::now() + Duration::from_millis(u64::try_from(t - now_ms).unwrap_or(0))
        });
        let retry = self.retry_at.filter(|_| !self.buf.is_empty());
        match (rotation, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn flush(&mut self, deadline: Option<Instant>) -> bool {
        // Retry a failing file until the deadline; without one, once.
        loop {
            self.retry_at = None;
            if self.write_out(self.buf.len()) {
                break;
            }
            match deadline {
                Some(d) if Instant::now() + self.backoff < d => std::thread::sleep(self.backoff),
                _ => break,
            }
        }
        if self.config.fsync != Fsync::Never {
            self.sync();
        }
        self.buf.is_empty()
    }

    fn close(&mut self, deadline: Option<Instant>) -> bool {
        let complete = self.flush(deadline);
        if !complete {
            // The process is going: what could not be written is lost.
            self.counters.lose(Reason::Failed, self.records);
            self.counters.pending.fetch_sub(self.records, Relaxed);
            self.records = 0;
            self.buf.clear();
        }
        self.maintenance.stop(deadline);
        complete
    }
}
