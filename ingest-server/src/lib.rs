//! `faultline-server`: the ingest server (binary `faultline`).
//!
//! # The path of a record through the server
//!
//! 1. **`POST /logs/ingest`** (`ingest.rs`): the key is checked (`auth.rs`; public keys
//!    only from their origins, `cors.rs`), then the key's token bucket (`ratelimit.rs`),
//!    the content type, the body size as sent and after gzip, and then
//!    `faultline_schema::decode_batch` checks every record. Good records for services the
//!    key may write get an id (UUIDv7 unless the client chose one), `received_at`, and a
//!    re-keyed `meta.user`; then sampling (`sampling.rs`, off unless configured) may keep
//!    one in N of a chatty service's records below `WARNING`, weighted.
//!
//!    **`POST /v1/logs`** (`otlp/`, OpenTelemetry logs over OTLP/HTTP) goes through the
//!    same checks and the same path from there (`ingest::admit`, `ingest::store`): only
//!    the decoding differs, protobuf or OTLP/JSON `LogRecord`s mapped to records.
//! 2. **The store** (`faultline_store::FileStore` by default) queues the batch to its writer,
//!    which appends it with every other waiting batch and fsyncs once (group commit). A full
//!    queue answers 503 with `Retry-After` at once.
//! 3. **The 202** (`{"accepted", "duplicates", "rejected": [{"index", "error"}]}`) is sent
//!    only after that fsync: an acknowledged record survives `kill -9`.
//! 4. **Alerts** (`alerts/`): before the store takes the batch, the records some rule looks
//!    at are summarized; after the 202's fsync the summaries go to the evaluator's bounded
//!    queue (never blocking ingest), which decides, persists and notifies. `GET /alerts`,
//!    `POST /alerts/{rule}/reset` and `GET /system/checks/latest` need the admin token.
//! 5. **Reads** (`read.rs`): `/logs/recent` and `/logs/stats` need the admin token.
//!    `/healthz`, `/readyz` and `/metrics` (`health.rs`, `metrics.rs`) are open.
//! 6. **The dashboard** (`dashboard.rs`): every other `GET` is the React app from `www/`,
//!    embedded at build time by `build.rs`; it reads the API above with the admin token.
//!    `GET /panel/config` gives the demo panel its public key and salt.
//!
//! # Layout
//!
//! - `cli.rs`: the `faultline` command line; `serve.rs`: start-up and graceful shutdown;
//!   `http.rs`: the connection loop (header and idle deadlines).
//! - `alerts/`: rules, the evaluator service, notifications, probes, `check-alerts`,
//!   `summary`.
//! - `config.rs`: the TOML config, env overrides; `secrets.rs`: generated secrets.
//! - `error.rs`: [`ApiError`], the one place errors become HTTP responses.
//! - `duration.rs`: `15m`-style durations for config and queries.
//! - `otlp/`: `/v1/logs`; `proto.rs` the OTLP messages, `json.rs` OTLP/JSON, `map.rs`
//!   `LogRecord` to record.
//! - `sampling.rs`: per-service sampling above a rate, with weights.
//! - `inflate.rs`: gzip bodies inflated up to a limit, never further.
//! - `fuzzing.rs`: the invariants the fuzz targets and their regression tests check (hidden).

mod api;
mod app_state;
mod auth;
pub mod cli;
pub mod config;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod inflate;
mod ingest;
mod otlp;
mod ratelimit;
mod sampling;
mod secrets;
mod server;
mod store;

pub use api::app;
pub use app_state::AppState;
pub use auth::KeyRing;
pub use error::ApiError;
pub use faultline_schema::HumanDuration;
pub use inflate::{InflateError, inflate_gzip};
pub use server::{Server, start};
