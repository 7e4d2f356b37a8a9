//! Standard output, standard error, or any `Write`: NDJSON lines, written in large chunks
//! while busy and as soon as the queue runs empty.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use crate::capture::mono_now;
use crate::output::destination::{Destination, lines, write_some};
use crate::stats::{Counters, Reason};

/// Buffered bytes that trigger a write while the queue is still busy.
const CHUNK: usize = 64 * 1024;

enum Target {
    Stdout,
    Stderr,
    Writer(Box<dyn Write + Send>),
}

pub(crate) struct StreamOutput {
    target: Target,
    buf: Vec<u8>,
    records: u64,
    oldest: Option<u64>,
    counters: Arc<Counters>,
}

impl StreamOutput {
    fn new(target: Target, counters: Arc<Counters>) -> StreamOutput {
        StreamOutput {
            target,
            buf: Vec::with_capacity(CHUNK * 2),
            records: 0,
            oldest: None,
            counters,
        }
    }

    pub(crate) fn stdout(counters: Arc<Counters>) -> StreamOutput {
        StreamOutput::new(Target::Stdout, counters)
    }

    pub(crate) fn stderr(counters: Arc<Counters>) -> StreamOutput {
        StreamOutput::new(Target::Stderr, counters)
    }

    pub(crate) fn writer(w: Box<dyn Write + Send>, counters: Arc<Counters>) -> StreamOutput {
        StreamOutput::new(Target::Writer(w), counters)
    }

    fn write_out(&mut self, and_flush: bool) {
        if self.buf.is_empty() {
            return;
        }
        let (n, err) = match &mut self.target {
            Target::Stdout => {
                let mut out = io::stdout().lock();
                let r = write_some(&mut out, &self.buf);
                (r.0, r.1.or_else(|| out.flush().err()))
            }
            Target::Stderr => write_some(&mut io::stderr().lock(), &self.buf),
            Target::Writer(w) => {
                let r = write_some(w.as_mut(), &self.buf);
                let flushed = if and_flush && r.1.is_none() {
                    w.flush().err()
                } else {
                    None
                };
                (r.0, r.1.or(flushed))
            }
        };
        // Whole lines only in the buffer: counting is needed only after a partial write.
        let written = if n >= self.buf.len() {
            self.records
        } else {
            lines(&self.buf[..n])
        };
        self.counters.wrote(written, self.oldest, mono_now());
        let lost = self.records - written.min(self.records);
        if let Some(e) = err {
            // A closed pipe or a failing writer will not take these later either.
            self.counters.error(format!("write failed: {e}"));
            self.counters.lose(Reason::Failed, lost);
        }
        self.counters.pending.fetch_sub(self.records, Relaxed);
        self.buf.clear();
        self.records = 0;
        self.oldest = None;
    }
}

impl Destination for StreamOutput {
    fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    fn commit(&mut self, _start: usize, mono: u64) {
        self.records += 1;
        self.oldest.get_or_insert(mono);
        if self.buf.len() >= CHUNK {
            self.write_out(false);
        }
    }

    fn poll(&mut self, idle: bool) -> Option<Instant> {
        if idle {
            self.write_out(true);
        }
        None
    }

    fn flush(&mut self, _deadline: Option<Instant>) -> bool {
        self.write_out(true);
        true
    }

    fn close(&mut self, deadline: Option<Instant>) -> bool {
        self.flush(deadline)
    }
}
