//! Errors of building a logger. Once running, a logger never returns errors to call sites:
//! it counts them ([`OutputStats::output_errors`](crate::OutputStats::output_errors),
//! [`Dropped`](crate::Dropped)) and keeps the last one for [`Stats`](crate::Stats).

use std::path::PathBuf;

/// Why a logger could not be built.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A record setting breaks the record contract (a `service` with upper-case letters, a
    /// static field of the wrong type for a reserved key, ...).
    #[error("invalid logger settings: {0}")]
    Invalid(String),
    /// A file or directory an output needs could not be created or opened.
    #[error("output {output}: cannot use {}: {source}", path.display())]
    Io {
        /// The output's name.
        output: String,
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// An output's settings are unusable (a malformed URL, an HTTP client that cannot start).
    #[error("output {output}: {message}")]
    Output {
        /// The output's name.
        output: String,
        /// What is wrong.
        message: String,
    },
    /// A worker thread could not be started, or stopped while opening its output.
    #[error("output {output}: worker thread failed: {message}")]
    Worker {
        /// The output's name.
        output: String,
        /// What happened.
        message: String,
    },
    /// [`Builder::init`](crate::Builder::init) found a global `tracing` subscriber already
    /// set; use [`Builder::build`](crate::Builder::build) and compose the layer instead.
    #[error("a global tracing subscriber is already set")]
    AlreadyInitialized,
}
