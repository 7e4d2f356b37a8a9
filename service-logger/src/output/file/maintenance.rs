//! Closed segments: gzip and retention, on a thread of their own so compressing a 64 MiB
//! segment never stalls the worker. Only this thread touches closed segments, so compression
//! and deletion never race.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::rotation::parse_closed;
use crate::stats::Counters;

/// What the maintenance thread needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) dir: PathBuf,
    pub(crate) prefix: String,
    pub(crate) active: PathBuf,
    pub(crate) keep_files: Option<usize>,
    pub(crate) max_age: Option<Duration>,
    pub(crate) max_total_bytes: Option<u64>,
    pub(crate) gzip: bool,
}

/// A request to look at the closed segments: sent at start and after each rotation.
struct Sweep;

/// The maintenance thread's handle.
pub(crate) struct Maintenance {
    tx: Option<Sender<Sweep>>,
    join: Option<JoinHandle<()>>,
}

impl Maintenance {
    pub(crate) fn start(settings: Settings, counters: Arc<Counters>) -> io::Result<Maintenance> {
        let (tx, rx) = channel();
        let join = std::thread::Builder::new()
            .name(format!("faultline-{}-files", settings.prefix))
            .spawn(move || {
                crate::thread::mark_worker_thread();
                run(&settings, &counters, &rx);
            })?;
        let m = Maintenance {
            tx: Some(tx),
            join: Some(join),
        };
        m.sweep();
        Ok(m)
    }

    fn sweep(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Sweep);
        }
    }

    /// A segment was closed.
    pub(crate) fn rotated(&self) {
        self.sweep();
    }

    /// Lets queued jobs finish, waiting until `deadline` at most (what is left uncompressed
    /// is compressed by the next start).
    pub(crate) fn stop(&mut self, deadline: Option<Instant>) {
        self.tx = None;
        let Some(join) = self.join.take() else { return };
        while !join.is_finished() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = join.join();
    }
}

fn run(s: &Settings, counters: &Counters, rx: &Receiver<Sweep>) {
    while rx.recv().is_ok() {
        // One round covers every rotation queued meanwhile. Everything is compressed before
        // retention looks at sizes: rotations faster than compression would otherwise have
        // the total-size limit count (and delete) segments still waiting to be compressed.
        while rx.try_recv().is_ok() {}
        for (_, path, _, gz) in closed_segments(s, counters) {
            if path.to_string_lossy().ends_with(".tmp") {
                // Only this thread writes `.gz.tmp` files: one seen here is a crash's leftover.
                remove(&path, counters);
            } else if s.gzip && !gz {
                compress(&path, counters);
            }
        }
        retention(s, counters);
    }
}

/// Closed segments (and stray `.gz.tmp` files), oldest first: (sequence, path, bytes,
/// gzipped).
fn closed_segments(s: &Settings, counters: &Counters) -> Vec<(u64, PathBuf, u64, bool)> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(&s.dir) {
        Ok(e) => e,
        Err(e) => {
            counters.error(format!("cannot list {}: {e}", s.dir.display()));
            return out;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let (parsed, path) = match name.strip_suffix(".tmp") {
            Some(base) => (parse_closed(&s.prefix, base), entry.path()),
            None => (parse_closed(&s.prefix, &name), entry.path()),
        };
        if let Some((seq, gz)) = parsed {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((seq, path, len, gz));
        }
    }
    out.sort_by_key(|e| e.0);
    out
}

fn remove(path: &Path, counters: &Counters) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => counters.error(format!("cannot delete {}: {e}", path.display())),
    }
}

/// `x.ndjson` to `x.ndjson.gz`, through `x.ndjson.gz.tmp`, fsynced before the original goes.
fn compress(path: &Path, counters: &Counters) {
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    let gz = PathBuf::from(gz);
    let mut tmp = gz.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| -> io::Result<()> {
        let mut src = BufReader::with_capacity(256 * 1024, File::open(path)?);
        let out = File::create(&tmp)?;
        let mut enc = GzEncoder::new(
            BufWriter::with_capacity(256 * 1024, out),
            Compression::fast(),
        );
        io::copy(&mut src, &mut enc)?;
        let out = enc.finish()?.into_inner().map_err(|e| e.into_error())?;
        out.sync_all()?;
        fs::rename(&tmp, &gz)?;
        fs::remove_file(path)?;
        Ok(())
    })();
    if let Err(e) = result {
        counters.error(format!("cannot compress {}: {e}", path.display()));
        remove(&tmp, counters);
    }
}

/// Deletes the oldest closed segments past the count, age and total-size limits. The active
/// segment is never deleted; it counts towards the total.
fn retention(s: &Settings, counters: &Counters) {
    if s.keep_files.is_none() && s.max_age.is_none() && s.max_total_bytes.is_none() {
        return;
    }
    let mut segments: Vec<(PathBuf, u64, SystemTime)> = closed_segments(s, counters)
        .into_iter()
        .filter(|(_, p, _, _)| !p.to_string_lossy().ends_with(".tmp"))
        // A segment rotated since this round listed the directory is still to be compressed:
        // counted at its raw size it would push out compressed ones, and itself. The round
        // its rotation queued compresses it and applies retention again.
        .filter(|(_, _, _, gz)| *gz || !s.gzip)
        .map(|(_, p, len, _)| {
            let modified = fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            (p, len, modified)
        })
        .collect();
    let mut doomed = Vec::new();
    if let Some(keep) = s.keep_files {
        while segments.len() > keep {
            doomed.push(segments.remove(0).0);
        }
    }
    if let Some(age) = s.max_age
        && let Some(cutoff) = SystemTime::now().checked_sub(age)
    {
        segments.retain(|(p, _, modified)| {
            let old = *modified < cutoff;
            if old {
                doomed.push(p.clone());
            }
            !old
        });
    }
    if let Some(max) = s.max_total_bytes {
        let active = fs::metadata(&s.active).map(|m| m.len()).unwrap_or(0);
        let mut total = active + segments.iter().map(|(_, len, _)| len).sum::<u64>();
        while total > max && !segments.is_empty() {
            let (p, len, _) = segments.remove(0);
            total -= len;
            doomed.push(p);
        }
    }
    for p in doomed {
        remove(&p, counters);
    }
}
