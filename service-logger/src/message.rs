//! The messages an output's queues carry besides the records in its rings: records that go
//! through the shared channel or a ring's side queue, lines encoded by the caller, and the
//! flushes, shutdowns and synchronous records a caller waits on ([`Signal`]).
//!
//! Below both the rings ([`crate::ring`]) that queue them and the worker that handles them.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use faultline_schema::Level;

use crate::capture::CapturedRecord;

/// How often blocked producers and waiters re-check whether the worker is still alive.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// What goes through an output's shared channel, or waits in a ring's side queue.
pub(crate) enum Msg {
    Record(CapturedRecord),
    /// A record encoded by the caller (see [`Logger::send_record`](crate::Logger::send_record)).
    Line(Line),
    /// A record whose caller waits until it is written.
    Sync(CapturedRecord, Arc<Signal>),
    Flush(Arc<Signal>),
    Shutdown(Arc<Signal>),
}

impl Msg {
    /// Whether it carries a record (counted in the queue depth), not a flush or shutdown.
    pub(crate) fn is_record(&self) -> bool {
        matches!(self, Msg::Record(_) | Msg::Line(_) | Msg::Sync(..))
    }
}

/// One NDJSON record line (with its `\n`) built outside the logger.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) bytes: Vec<u8>,
    pub(crate) level: Level,
    /// When it was handed over (monotonic nanoseconds), for the lag.
    pub(crate) mono: u64,
}

/// A completion a caller waits for (flush, shutdown, a synchronous record).
#[derive(Debug)]
pub(crate) struct Signal {
    state: Mutex<Option<bool>>,
    cv: Condvar,
    pub(crate) deadline: Option<Instant>,
}

impl Signal {
    pub(crate) fn new(deadline: Option<Instant>) -> Arc<Signal> {
        Arc::new(Signal {
            state: Mutex::new(None),
            cv: Condvar::new(),
            deadline,
        })
    }

    pub(crate) fn done(&self, complete: bool) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(complete);
        self.cv.notify_all();
    }

    /// Waits until done (`Some(complete)`), `until` passes, or the worker is gone (`None`).
    pub(crate) fn wait(&self, until: Option<Instant>, alive: impl Fn() -> bool) -> Option<bool> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(c) = *state {
                return Some(c);
            }
            let now = Instant::now();
            if until.is_some_and(|u| now >= u) || !alive() {
                return None;
            }
            let step = until.map_or(POLL, |u| (u - now).min(POLL));
            state = self
                .cv
                .wait_timeout(state, step)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}
