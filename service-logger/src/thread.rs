//! Which threads belong to the logger: its workers, and the runtime and maintenance threads
//! its outputs start. Events from these threads are ignored, so an output's own HTTP client
//! logging through the logger cannot feed itself forever, and a flush asked for on one of
//! them does not wait for itself.
//!
//! A leaf: it imports nothing from the crate. The outputs mark the threads they start, the
//! worker marks itself, and the layer, the `log` bridge, the logger and the panic hook ask.

thread_local! {
    static IN_WORKER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread belongs to a logger (a worker, or a thread an output started).
#[inline]
pub(crate) fn in_worker() -> bool {
    IN_WORKER.with(std::cell::Cell::get)
}

/// Marks this thread as the logger's own.
pub(crate) fn mark_worker_thread() {
    IN_WORKER.with(|f| f.set(true));
}
