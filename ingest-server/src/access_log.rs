//! The JSON access log (`access_log = "stdout"` or a file path): one line per request,
//! written by a thread of its own so a slow disk never holds a request.
//!
//! A line holds the time, method, path (never the query, where `?key=` and `?sentry_key=`
//! travel), status, bytes in and out, duration, client address and the *name* of the key
//! or `"admin"`: never a key or token itself. The lines wait in a bounded queue of
//! [`QUEUE_LINES`]; when it is full (the writer cannot keep up) a line is dropped and
//! counted in `faultline_access_log_dropped_total`, and the request goes on.

use std::io::Write;
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

use serde::Serialize;

/// Lines waiting for the writer at most.
pub(crate) const QUEUE_LINES: usize = 16_384;

/// Paths longer than this are cut (a client chooses the path).
const MAX_PATH_CHARS: usize = 1024;

/// Why the access log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the access log {target}: {source}")]
pub(crate) struct AccessLogError {
    target: String,
    source: std::io::Error,
}

/// One request, as logged.
#[derive(Debug, Serialize)]
pub(crate) struct AccessLine<'a> {
    /// When the request arrived, RFC 3339 UTC.
    pub ts: String,
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The response status.
    pub status: u16,
    /// The request body's declared length (`Content-Length`), if any.
    pub bytes_in: Option<u64>,
    /// The response body's length, when known before it is sent.
    pub bytes_out: Option<u64>,
    /// From arrival to the response's head, in milliseconds.
    pub duration_ms: f64,
    /// The client address (after `trusted_proxies`), when the request came over a socket.
    pub client: Option<IpAddr>,
    /// The name of the ingest key presented, `"admin"` for the admin token, `"unknown"` for
    /// a credential that matches nothing; absent without one.
    pub key: Option<&'a str>,
}

/// The sending side: cheap to share.
#[derive(Debug, Clone)]
pub(crate) struct AccessLog {
    lines: SyncSender<String>,
}

impl AccessLog {
    /// Opens `target` (`"stdout"` or a file, created or appended to) and starts the writer.
    pub(crate) fn open(target: &str) -> Result<AccessLog, AccessLogError> {
        let out: Box<dyn Write + Send> = if target == "stdout" {
            Box::new(std::io::stdout())
        } else {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(target)
                .map_err(|source| AccessLogError {
                    target: target.to_owned(),
                    source,
                })?;
            Box::new(file)
        };
        let (lines, queue) = sync_channel(QUEUE_LINES);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(queue, out))
            .map_err(|source| AccessLogError {
                target: target.to_owned(),
                source,
            })?;
        Ok(AccessLog { lines })
    }

    /// Queues `line`; drops and counts it when the queue is full.
    pub(crate) fn log(&self, mut line: AccessLine<'_>) {
        if line.path.len() > MAX_PATH_CHARS {
            let mut end = MAX_PATH_CHARS;
            while !line.path.is_char_boundary(end) {
                end -= 1;
            }
            line.path = &line.path[..end];
        }
        let Ok(text) = serde_json::to_string(&line) else {
            return;
        };
        match self.lines.try_send(text) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                metrics::counter!("faultline_access_log_dropped_total").increment(1);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The writer thread: lines as they come, flushed whenever the queue is empty.
fn write_lines(queue: Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::new(out);
    let mut failing = false;
    while let Ok(first) = queue.recv() {
        let mut next = Some(first);
        while let Some(line) = next {
            let written = out
                .write_all(line.as_bytes())
                .and_then(|()| out.write_all(b"\n"));
            report(&mut failing, written);
            next = queue.recv_timeout(Duration::ZERO).ok();
        }
        report(&mut failing, out.flush());
    }
}

/// Logs a write error once until writing works again.
fn report(failing: &mut bool, result: std::io::Result<()>) {
    match result {
        Ok(()) => *failing = false,
        Err(e) => {
            if !*failing {
                tracing::error!(error = %e, "cannot write the access log");
            }
            *failing = true;
        }
    }
}
