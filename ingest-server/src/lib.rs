//! `faultline-server`: the ingest server (binary `faultline`).
//!
//! # The path of a record through the server
//!
//! 1. **`POST /logs/ingest`** (`api/logs.rs`, over `ingest.rs`): the key is checked
//!    (`auth.rs`; public keys only from their origins, `api/cors.rs`), then the key's token
//!    bucket (`ratelimit.rs`), the content type, the body size as sent and after gzip
//!    (`inflate.rs`), each buffer leased from the in-flight budget before it is allocated
//!    (`body_budget.rs`), and then `faultline_schema::decode_batch_within` counts the
//!    records while it parses them and checks every one. Whatever the answer, the key pays
//!    for the request (`request_cost.rs`). Good
//!    records for services the key may write get an id (UUIDv7 unless the client chose one),
//!    `received_at`, a re-keyed `meta.user`, and URLs without credentials or secret
//!    parameters (`faultline_schema::UrlScrubber`, `[privacy]`), and are checked again if
//!    that made them longer; then sampling (`sampling.rs`, off unless
//!    configured) may keep one in N of a chatty service's records below `WARNING`, weighted.
//!
//!    **`POST /v1/logs`** (`api/otlp.rs`, decoding in `otlp/`: OpenTelemetry logs over
//!    OTLP/HTTP) goes through the same checks and the same path from there
//!    (`ingest::admit`, `ingest::store`): only the decoding differs, protobuf or OTLP/JSON
//!    `LogRecord`s counted before they are decoded (`otlp/count.rs`), then mapped to
//!    records.
//! 2. **The record store** (`faultline_store::FileStore` by default, opened by `store.rs`)
//!    queues the batch to its writer, which appends it with every other waiting batch and
//!    fsyncs once (group commit). A full queue answers 503 with `Retry-After` at once.
//! 3. **The 202** (`{"accepted", "duplicates", "rejected": [{"index", "error"}]}`) is sent
//!    only after that fsync: an acknowledged record survives `kill -9`.
//! 4. **Alerts** (the `faultline_alerts` crate): before the store takes the batch, the
//!    records some rule looks at are summarized; after the 202's fsync the summaries go to
//!    the evaluator's bounded queue (never blocking ingest), which decides, persists and
//!    notifies. `GET /alerts`, `POST /alerts/{rule}/reset` (`api/alerts.rs`) and
//!    `GET /system/checks/latest` (`api/checks.rs`) render what it answers.
//! 5. **Reads** (`api/logs.rs`): `/logs/recent` and `/logs/stats`; every read takes the
//!    `Admin` extractor (`api/admin.rs`: the admin token from a header, never `?key=`).
//!    `/healthz`, `/readyz` (its error text only for the admin) and `/metrics`
//!    (`api/health.rs`, `api/metrics.rs`) are open.
//! 6. **The dashboard** (`api/dashboard.rs`): every other `GET` is the React app from
//!    `www/`, embedded at build time by `build.rs`; it reads the API above with the admin
//!    token. `GET /panel/config` gives the demo panel its public key and salt.
//!
//! # Layout
//!
//! From the top down; a file imports only files below it.
//!
//! - `main.rs` (thin) and `cli/`: the `faultline` command line, one file per subcommand
//!   (`serve.rs`, `migrate.rs`, `check_alerts.rs`, `summary.rs`; `forward` is the
//!   `faultline-forward` crate).
//! - `server.rs`: start-up and graceful shutdown; `http.rs`: the connection loop (header
//!   and idle deadlines).
//! - `api/`: the HTTP API, one file per resource, and the router.
//! - `ingest.rs`: the ingest pipeline both ingest endpoints share; `otlp/`: OTLP decoding.
//! - `store.rs`: the record store and the alert state, opened in one place for `serve`,
//!   `check-alerts` and `summary`.
//! - `request_cost.rs`: what a request costs its key, charged whatever the answer;
//!   `quota.rs`: the keys' daily record quotas and their persisted counts.
//! - `live.rs`: the configuration a SIGHUP reloads (keys, limits, sampling, alert rules),
//!   swapped as one snapshot that every request reads once.
//! - `app_state.rs`: what every handler shares; `auth.rs` (keys), `ratelimit.rs`,
//!   `sampling.rs`, `secrets.rs` (generated secrets), `body_budget.rs` (the memory all
//!   requests' bodies and records may hold at once).
//! - `config.rs`: the TOML config and env overrides (a leaf: the `[alerts]` section is
//!   `faultline_alerts::AlertsConfig`).
//! - `error.rs`: [`ApiError`], the one place errors become HTTP responses.
//! - `access_log.rs`: the JSON access log's writer (a thread behind a bounded queue).
//! - `inflate.rs`: gzip bodies inflated up to a limit, never further.
//! - `fuzzing.rs`: the invariants the fuzz targets and their regression tests check (hidden).

mod access_log;
mod api;
mod app_state;
mod auth;
mod body_budget;
pub mod cli;
pub mod config;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod inflate;
mod ingest;
mod live;
mod otlp;
mod process_metrics;
mod quota;
mod ratelimit;
mod reload;
mod request_cost;
mod sampling;
mod secrets;
mod sentry;
mod server;
mod store;
mod tls;

pub use api::app;
pub use app_state::AppState;
pub use auth::KeyRing;
pub use error::ApiError;
pub use faultline_schema::HumanDuration;
pub use inflate::{Encoding, InflateError, inflate_gzip, inflate_gzip_within, inflate_within};
pub use server::{Server, start};
