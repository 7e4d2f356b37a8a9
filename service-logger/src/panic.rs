//! The panic hook: before a panic takes the thread (or, with `panic = "abort"`, the process)
//! down, it logs the panic as a `CRITICAL` record and flushes every live logger, so every
//! record logged before the panic is written. Then the previous hook runs (by default it
//! prints the panic message).

use std::sync::{Arc, Mutex, Once, Weak};

use crate::logger::{Inner, Logger};
use crate::thread::in_worker;

/// Loggers the hook flushes: every one built and not dropped.
static LIVE: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

pub(crate) fn register(logger: &Logger) {
    let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
    live.retain(|w| w.strong_count() > 0);
    live.push(Arc::downgrade(&logger.inner));
}

/// Installs the hook once per process, in front of whatever hook was there.
pub(crate) fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A panic on a worker must not wait for that worker.
            if !in_worker() {
                let live: Vec<Arc<Inner>> = LIVE
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .filter_map(Weak::upgrade)
                    .collect();
                for inner in live {
                    let logger = Logger { inner };
                    if logger.is_shut() || !logger.inner.on_panic {
                        continue;
                    }
                    logger.record_panic(info);
                    let timeout = logger.inner.panic_flush_timeout;
                    logger.flush_until(
                        timeout.and_then(|t| std::time::Instant::now().checked_add(t)),
                    );
                }
            }
            previous(info);
        }));
    });
}
