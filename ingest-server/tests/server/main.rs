//! The server's one integration test binary: router tests with `oneshot` against a real
//! file store, and process tests that start the real `faultline` binary on port 0.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod alerts;
mod alerts_support;
mod archive;
mod common;
mod dashboard;
mod deploy;
mod faults;
mod forward;
mod fuzz_regressions;
mod hostile;
mod integrity;
mod issues;
mod notices;
mod operations;
mod otlp;
mod pg;
mod postgres;
mod process;
mod reload;
mod router;
mod sampling;
mod scaleout;
mod search;
mod security;
mod sentry;
mod silences;
mod sourcemaps;
mod tls;
