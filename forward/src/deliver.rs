//! The way out: the service logger's HTTP output (`faultline_logger`), which batches, gzips,
//! retries with backoff and spools to disk while the endpoint is down. The forwarder only
//! hands it finished records and asks it to flush before committing an offset.

use std::path::PathBuf;
use std::time::Duration;

use faultline_logger::{Guard, HttpConfig, InitError, Output, Report};
use faultline_schema::Record;

/// Records per request, and how long a batch waits for more.
const BATCH_RECORDS: usize = 1000;
const LINGER: Duration = Duration::from_millis(200);

/// The HTTP output, running on its own worker thread.
#[derive(Debug)]
pub(crate) struct Delivery {
    guard: Guard,
}

impl Delivery {
    /// Starts the output for `endpoint` (the server's base URL or its ingest URL) with the
    /// secret key `key`, spooling to `spool` when given.
    pub(crate) fn open(
        endpoint: &str,
        key: &str,
        spool: Option<PathBuf>,
    ) -> Result<Delivery, InitError> {
        let mut http = HttpConfig::new(endpoint, key);
        if let Some(dir) = spool {
            http = http.spool_dir(dir);
        }
        let output = Output::http(http)
            .name("forward")
            .batch_size(BATCH_RECORDS)
            .linger(LINGER)
            .heartbeat(false);
        // The logger's own service name is only used for records it writes itself, and the
        // forwarder asks for none (no heartbeat, a blocking queue that never drops).
        let (_layer, guard) = faultline_logger::builder()
            .service("faultline-forward")
            .host(None)
            .panic_hook(false)
            .log_bridge(false)
            .output(output)
            .build()?;
        Ok(Delivery { guard })
    }

    /// Queues one record; waits while the output's queue is full.
    pub(crate) fn send(&self, record: &Record) {
        self.guard.logger().send_record(record);
    }

    /// Waits (at most `timeout`) until everything sent so far is acknowledged, spooled or
    /// counted as dropped; see [`Report::complete`].
    pub(crate) fn settle(&self, timeout: Duration) -> Report {
        self.guard.flush_timeout(timeout)
    }

    /// The final flush: what cannot be delivered within `timeout` goes to the spool when
    /// there is one.
    pub(crate) fn close(self, timeout: Duration) -> Report {
        self.guard.shutdown(timeout)
    }
}
