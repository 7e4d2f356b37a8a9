//! Integration tests of `faultline-logger`: real files, a real `faultline serve`, the real
//! PostgreSQL of `cargo xtask test`, child processes that panic or exit, and the axum example.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod common;
mod example;
mod file;
mod http;
mod layer;
mod panic;
mod policy;
mod postgres;
