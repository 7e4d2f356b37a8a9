//! `faultline-logger`: a non-blocking `tracing` layer (and `log` bridge) that turns events
//! into Faultline records and ships them to a rotating file, stdout, PostgreSQL or the
//! ingest endpoint, without ever doing I/O on the caller's thread.
//!
//! ```no_run
//! use faultline_logger::{FileConfig, HttpConfig, Output};
//!
//! let _guard = faultline_logger::builder()
//!     .service("api")
//!     .release(env!("CARGO_PKG_VERSION"))
//!     .output(Output::file(FileConfig::new("/var/log/api").max_bytes(64 << 20).keep_files(20)))
//!     .output(Output::http(HttpConfig::new("https://faultline.internal", "sk_api")).min_level(tracing::Level::ERROR))
//!     .init()?;
//! tracing::info!(order_id = 42, "order placed");
//! # Ok::<(), faultline_logger::InitError>(())
//! ```
//!
//! # Cargo features
//!
//! One per output family, so a service compiles only what it ships to. Standard output,
//! standard error and any `Write` are always there.
//!
//! | Feature | Default | Gives | Pulls in |
//! | --- | --- | --- | --- |
//! | `file` | yes | [`Output::file`]: rotating, pruned NDJSON files | `chrono`, `flate2` |
//! | `http` | yes | [`Output::http`]: the ingest endpoint, batches, retries, spool | `reqwest` (rustls), `tokio` |
//! | `log` | yes | `LogBridge`: records from the `log` facade | `log` |
//! | `postgres` | no | `Output::postgres`: the `system_logs` table | `faultline-store`, `sqlx` |
//! | `unix` | no | `Output::unix`: a local collector (`faultline forward --listen`) | nothing |
//! | `tower` | no | `CorrelationLayer`: `traceparent` and `x-request-id` per request | `tower-layer`, `http` |
//! | `opentelemetry` | no | `tower`, and the request span's OpenTelemetry ids win (with `tracing-opentelemetry`'s layer) | `tracing-opentelemetry`, `opentelemetry` (API only) |
//!
//! A service that only writes files: `faultline-logger = { version = "0.1",
//! default-features = false, features = ["file"] }` (54 crates instead of 176).
//!
//! # Defaults, and why
//!
//! - **[`Builder::init`] filters with `RUST_LOG`**, `info` when it is unset or empty
//!   ([`Builder::default_filter`]), like `env_logger` and `tracing_subscriber::fmt`: a
//!   dependency's `TRACE` chatter costs nothing unless asked for, and an operator turns a
//!   module up without a rebuild. Each output's own [`min_level`](Output::min_level) and
//!   [`targets`](Output::targets) then choose among what passed, so an errors-only output
//!   stays errors-only whatever `RUST_LOG` says.
//! - **Dropping the [`Guard`] waits at most 5 seconds** ([`Builder::shutdown_timeout`],
//!   [`DEFAULT_SHUTDOWN_TIMEOUT`]): a process told to stop should stop, well inside a
//!   container runtime's grace period, even when the ingest endpoint is down (the HTTP output
//!   would otherwise retry for minutes). What was left is said on standard error, one line
//!   per output (`faultline-logger: shutdown gave up after 5s: output http left 1200 records
//!   undelivered (1200 still queued, 0 dropped), 0 spooled`); with a spool directory the
//!   next start delivers it.
//!
//! # Several processes: the local collector
//!
//! With the `unix` feature, each worker process logs to `Output::unix` and one
//! `faultline forward --listen unix:/run/app/faultline.sock` (or `tcp:127.0.0.1:7070`) sends
//! for all of them over one connection to the server. The protocol (`collector`) is
//! length-prefixed frames; a batch stays with its worker until the collector has it
//! acknowledged by the server or spooled, so a collector restart loses nothing. The
//! collector writes `worker_started`, `worker_heartbeat`, `worker_absent` (no heartbeat
//! for three intervals, or a connection that broke without a goodbye) and `worker_stopped`
//! (after a clean shutdown) records in the worker's service, with `meta.worker`.
//!
//! # Correlation ids
//!
//! With the `tower` feature, `CorrelationLayer` reads (or starts) the caller's W3C
//! `traceparent` and `x-request-id`, runs the request in a `request` span with `trace_id`,
//! `span_id` and `correlation_id` (so every record logged while handling it carries them),
//! and returns both headers. With the `opentelemetry` feature and `tracing-opentelemetry`'s
//! layer in the subscriber, the caller's span becomes the OpenTelemetry parent of the
//! request span, and the ids OpenTelemetry gives that span are the ones on the records and
//! in the returned `traceparent`, so logs and exported traces agree.
//!
//! # The path of a record
//!
//! 1. **Call site** (`layer.rs`, `capture.rs`). `tracing::info!(...)` reaches
//!    [`FaultlineLayer::on_event`](tracing_subscriber::Layer::on_event). It asks each output
//!    whether it takes this level and target; if none does, it returns. Otherwise it reads
//!    the clock once (the CPU's time-stamp counter), picks a UUIDv7 id, and encodes the
//!    fields of the event's spans (outermost first, encoded once when each span was
//!    created) and of the event into the thread's reused scratch buffer. The message is
//!    formatted here (its arguments borrow the caller's data); nothing else is.
//! 2. **Queue** (`ring.rs`, `message.rs`, `worker.rs`). Each thread has its own ring per
//!    output, which only it writes and only the output's worker reads: the record is copied
//!    in as a few words (about 100 bytes for three fields), with no lock and no shared
//!    counter. When a thread's ring is full, that output's [`Policy`] decides: wait, wait up
//!    to a limit, or drop and count; `ERROR` and worse can be exempt from dropping. Producers
//!    wake a sleeping worker only when it asked to be woken. Flushes, shutdowns and the
//!    records of ending threads go through a shared channel instead.
//! 3. **Worker** (`worker.rs`, `encode.rs`). Each output has a thread that takes up to 4,096
//!    records from each ring at a time and encodes each straight into the output's buffer as
//!    one NDJSON line: a record that `Record::from_json` accepts, with the record rules
//!    applied (truncated message, reserved `meta` types, anonymized `user`, `meta` under
//!    16 KiB).
//! 4. **Output** (`output/`). The file output writes when its queue runs empty or its buffer
//!    fills, and rotates and prunes files; the HTTP output seals batches and sends them one at
//!    a time with retries, spooling to disk while the endpoint is down; the PostgreSQL output
//!    hands batches to `faultline_store::PostgresStore`.
//! 5. **The end** (`logger.rs`, `panic.rs`). [`Logger::flush`] and [`Logger::shutdown`] put
//!    a marker behind everything queued and wait for each worker to pass it, then return a
//!    [`Report`]: written, dropped by reason, still queued, spooled. Dropping the [`Guard`]
//!    shuts down; the panic hook logs the panic and flushes first.
//!
//! # Guarantees
//!
//! - A call site never does I/O, and never waits unless its output's policy says to (or the
//!   output is [`synchronous`](Output::synchronous)).
//! - Every record is accounted for: written, queued, spooled, or counted in [`Dropped`]
//!   under its reason. After drops, the worker writes a `logger_dropped` warning record.
//! - Records of one thread reach each output in the order they were logged.
//! - Once [`Logger::flush`] or [`Logger::shutdown`] returns complete, everything logged
//!   before it is written (or, for HTTP and PostgreSQL with a spool, durable on local disk).
//! - A logger never panics its host and never makes a call site fail: I/O errors are
//!   counted ([`OutputStats::output_errors`]) and retried where retrying can help.
//!
//! # Before the process ends
//!
//! `std::process::exit` runs no destructors, so a guard in `main` never flushes: call
//! [`exit`] (or [`shutdown`], or `guard.shutdown(timeout)`) instead. On SIGTERM, let your
//! signal handling return from `main` (axum's `with_graceful_shutdown`, or
//! `tokio::signal`), so the guard drops. A panic is covered by the panic hook, including
//! under `panic = "abort"`. Only `SIGKILL` and power loss lose queued records; use
//! [`Fsync::Always`] against the second.
//!
//! # Layout
//!
//! From the top down: a file uses only files further down this list (and, inside one
//! output's folder, its siblings), so no two files import each other.
//!
//! - `builder.rs`: [`Builder`], [`builder()`]: starts the workers and installs the layer,
//!   the `log` bridge and the panic hook.
//! - `log_bridge.rs`: `LogBridge` (feature `log`).
//! - `layer.rs`: [`FaultlineLayer`].
//! - `panic.rs`: the panic hook.
//! - `logger.rs`: [`Logger`], [`Guard`], routing.
//! - `worker.rs`: an output's queues, its full-queue policy, its worker thread.
//! - `ring.rs`: the per-thread rings.
//! - `output/`: [`Output`] and [`Policy`] (`mod.rs`), what a worker drives
//!   (`destination.rs`), and one module per kind (`stream.rs`, `file/`, `http/`,
//!   `postgres.rs`).
//! - `encode.rs` and `json.rs`: captured record to record line.
//! - `message.rs`: what the queues carry besides the records in the rings.
//! - `traceparent.rs`: [`TraceContext`].
//! - `capture.rs`: the captured record, its field encoding, the clock and ids.
//! - `stats.rs`: [`Stats`], [`Report`]; `error.rs`: [`InitError`]; `thread.rs`: which
//!   threads are the logger's own.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod capture;
#[cfg(feature = "tower")]
mod correlation;
mod encode;
mod error;
mod json;
mod layer;
#[cfg(feature = "log")]
mod log_bridge;
mod logger;
mod message;
mod output;
mod panic;
mod ring;
mod stats;
mod thread;
mod traceparent;
mod worker;

use std::time::Duration;

pub use builder::{Builder, DEFAULT_FILTER, DEFAULT_SHUTDOWN_TIMEOUT, builder};
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use correlation::{
    Correlation, CorrelationFuture, CorrelationLayer, CorrelationService, MAX_REQUEST_ID_LEN,
    REQUEST_ID_HEADER, TRACEPARENT_HEADER,
};
pub use error::InitError;
pub use layer::FaultlineLayer;
#[cfg(feature = "log")]
#[cfg_attr(docsrs, doc(cfg(feature = "log")))]
pub use log_bridge::LogBridge;
pub use logger::{Guard, Logger};
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use output::HttpConfig;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use output::PostgresConfig;
#[cfg(feature = "unix")]
#[cfg_attr(docsrs, doc(cfg(feature = "unix")))]
pub use output::UnixConfig;
#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub use output::{Clock, FileConfig, Fsync, Rotation};
pub use output::{DEFAULT_QUEUE_CAPACITY, Output, Policy};

/// The collector protocol of `Output::unix` (what `faultline forward --listen` speaks):
/// frames of a 4-byte big-endian length, a type byte and a payload.
#[cfg(feature = "unix")]
#[cfg_attr(docsrs, doc(cfg(feature = "unix")))]
pub mod collector {
    pub use crate::output::unix::{
        ACK, BATCH, BYE, CollectorAddr, HEARTBEAT, HELLO, MAX_FRAME, read_frame, write_frame,
    };
}
pub use stats::{Dropped, Lag, OutputStats, Report, Stats};
pub use traceparent::{SpanId, TraceContext, TraceId};
/// Per-target routing directives for [`Output::targets`].
pub use tracing_subscriber::filter::Targets;

/// The logger [`Builder::init`] installed, if any.
pub fn global() -> Option<Logger> {
    builder::GLOBAL.get().cloned()
}

/// Flushes the global logger (see [`Logger::flush_timeout`]); `None` without one.
pub fn flush(timeout: Duration) -> Option<Report> {
    global().map(|l| l.flush_timeout(timeout))
}

/// Shuts the global logger down (see [`Logger::shutdown`]); `None` without one.
pub fn shutdown(timeout: Duration) -> Option<Report> {
    global().map(|l| l.shutdown(timeout))
}

/// Shuts the global logger down (waiting as long as its builder's
/// [`shutdown_timeout`](Builder::shutdown_timeout) allows) and exits the process with
/// `code`: `std::process::exit` for programs that log.
pub fn exit(code: i32) -> ! {
    if let Some(l) = global() {
        l.shutdown_bounded();
    }
    std::process::exit(code)
}
