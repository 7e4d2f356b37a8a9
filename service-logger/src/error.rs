//! Errors of building a logger. Once running, a logger never returns errors to call sites:
//! it counts them ([`SinkStats::sink_errors`](crate::SinkStats::sink_errors),
//! [`Dropped`](crate::Dropped)) and keeps the last one for [`Stats`](crate::Stats).

use std::path::PathBuf;

/// Why a logger could not be built.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A record setting breaks the record contract (a `service` with upper-case letters, a
    /// static field of the wrong type for a reserved key, ...).
    #[error("invalid logger settings: {0}")]
    Invalid(String),
    /// A file or directory a sink needs could not be created or opened.
    #[error("sink {sink}: cannot use {}: {source}", path.display())]
    Io {
        /// The sink's name.
        sink: String,
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A sink's settings are unusable (a malformed URL, an HTTP client that cannot start).
    #[error("sink {sink}: {message}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// What is wrong.
        message: String,
    },
    /// A worker thread could not be started, or stopped while opening its sink.
    #[error("sink {sink}: worker thread failed: {message}")]
    Worker {
        /// The sink's name.
        sink: String,
        /// What happened.
        message: String,
    },
    /// [`Builder::init`](crate::Builder::init) found a global `tracing` subscriber already
    /// set; use [`Builder::build`](crate::Builder::build) and compose the layer instead.
    #[error("a global tracing subscriber is already set")]
    AlreadyInitialized,
}
