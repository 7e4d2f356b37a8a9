//! Integration tests of `faultline-logger`: real files, a real `faultline serve`, the real
//! PostgreSQL of `cargo xtask test`, child processes that panic or exit, and the axum example.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

#[cfg(feature = "unix")]
mod collector;
mod common;
#[cfg(all(feature = "file", feature = "http", feature = "log"))]
mod defaults;
#[cfg(all(feature = "file", feature = "http", feature = "tower"))]
mod example;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "log")]
mod layer;
#[cfg(feature = "opentelemetry")]
mod otel;
#[cfg(all(feature = "file", feature = "log"))]
mod panic;
mod policy;
#[cfg(feature = "postgres")]
mod postgres;
