//! What every kind of output is to its worker: a [`Destination`] that takes record lines into
//! a buffer and writes, sends or spools them; and the helpers the kinds share for buffers of
//! whole NDJSON lines.
//!
//! The kinds (`stream.rs`, `file/`, `http/`, `postgres.rs`) import this file and nothing of
//! each other or of `mod.rs`, which opens them.

use std::io::{self, Write};
use std::time::Instant;

/// A destination as its worker drives it. Implementations run on the output's worker thread
/// only; they count what they write, drop and spool in the shared
/// [`Counters`](crate::stats::Counters).
pub(crate) trait Destination: Send {
    /// Where the worker appends the next record line (JSON and `\n`).
    fn buffer(&mut self) -> &mut Vec<u8>;

    /// A line was appended at `start..` of the buffer; `mono` is when it was captured.
    fn commit(&mut self, start: usize, mono: u64);

    /// Periodic work (write an idle buffer, send a batch whose linger ran out, retry, rotate).
    /// `idle`: the queue is empty. Returns when it wants to be called again at the latest.
    fn poll(&mut self, idle: bool) -> Option<Instant>;

    /// Writes, sends or spools everything pending (and syncs, per the output's settings),
    /// giving up at `deadline`. Returns whether nothing is left pending.
    fn flush(&mut self, deadline: Option<Instant>) -> bool;

    /// The final flush; releases the destination. Returns whether nothing was left pending.
    fn close(&mut self, deadline: Option<Instant>) -> bool;
}

/// Writes as much of `buf` as `w` takes; returns the bytes written and the error that
/// stopped it, if any. Retries `Interrupted`.
pub(crate) fn write_some(w: &mut dyn Write, buf: &[u8]) -> (usize, Option<io::Error>) {
    let mut off = 0;
    while off < buf.len() {
        match w.write(&buf[off..]) {
            Ok(0) => return (off, Some(io::ErrorKind::WriteZero.into())),
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (off, Some(e)),
        }
    }
    (off, None)
}

/// Complete lines in `bytes`.
pub(crate) fn lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}
