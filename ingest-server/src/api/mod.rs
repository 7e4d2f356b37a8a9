//! The HTTP API: one file per resource, each a set of axum handlers over [`AppState`].
//!
//! - `logs.rs`: `POST /logs/ingest`, `GET /logs/recent`, `GET /logs/stats`.
//! - `otlp.rs`: `POST /v1/logs` (OpenTelemetry); the decoding is `otlp/`.
//! - `sentry.rs`: `POST /api/{project_id}/envelope/` and `/store/` (Sentry SDKs); the
//!   envelope format and mapping are `sentry/`.
//! - `issues.rs`: `GET /issues`, `GET /issues/{id}`, `PUT /issues/{id}` (error events
//!   grouped into issues).
//! - `alerts.rs`: `GET /alerts`, `POST /alerts/{rule}/reset`; `checks.rs`:
//!   `GET /system/checks/latest`; `silences.rs`: `POST`, `GET /silences`,
//!   `DELETE /silences/{id}`.
//! - `health.rs`: `/healthz`, `/readyz`; `metrics.rs`: `/metrics` (and the recorder).
//! - `dashboard.rs`: the embedded dashboard and `GET /panel/config`.
//! - `sourcemaps.rs`: `PUT`, `GET`, `DELETE /sourcemaps/{release}` and `GET /sourcemaps`
//!   (source maps for symbolication).
//! - `notices.rs`: `GET /notices?user=u_…`, one user's notices for their own page (an
//!   ingest key, not the admin token).
//! - `admin.rs`: the [`Admin`](admin::Admin) extractor every read takes; `cors.rs`: CORS
//!   for the browser-facing routes (ingest and notices).

mod admin;
mod alerts;
mod checks;
mod client;
mod cors;
mod dashboard;
mod health;
mod issues;
mod logs;
pub(crate) mod metrics;
mod notices;
mod otlp;
mod sentry;
mod silences;
mod sourcemaps;

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use crate::app_state::AppState;
use crate::error::ApiError;

/// The HTTP API. Tests call it with `oneshot`; [`start`](crate::start) serves it on a socket.
pub fn app(state: AppState) -> Router {
    let ingest = Router::new()
        .route(
            "/logs/ingest",
            post(logs::ingest).options(preflight_fallback),
        )
        .route("/v1/logs", post(otlp::logs).options(preflight_fallback))
        .route(
            "/notices",
            get(notices::for_user).options(preflight_fallback),
        )
        .route(
            "/api/{project}/envelope/",
            post(sentry::envelope).options(preflight_fallback),
        )
        .route(
            "/api/{project}/store/",
            post(sentry::store).options(preflight_fallback),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), cors::layer));
    Router::new()
        .merge(ingest)
        .route("/logs/recent", get(logs::recent))
        .route("/logs/stats", get(logs::stats))
        .route("/issues", get(issues::list))
        .route("/issues/{id}", get(issues::get).put(issues::set_status))
        .route("/alerts", get(alerts::list))
        .route("/alerts/{rule}/reset", post(alerts::reset))
        .route("/silences", get(silences::list).post(silences::create))
        .route("/silences/{id}", axum::routing::delete(silences::expire))
        .route("/system/checks/latest", get(checks::latest))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::render))
        .route("/panel/config", get(dashboard::panel_config))
        .route("/sourcemaps", get(sourcemaps::releases))
        .route(
            "/sourcemaps/{release}",
            put(sourcemaps::upload)
                .get(sourcemaps::release)
                .delete(sourcemaps::delete),
        )
        .fallback(dashboard::serve)
        .layer(middleware::from_fn(dashboard::pages))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .with_state(state)
}

/// An `OPTIONS` that is not a CORS preflight (those are answered by the CORS layer).
async fn preflight_fallback() -> impl IntoResponse {
    axum::http::StatusCode::NO_CONTENT
}

/// The whole-request deadline: a body that stalls gets 408 instead of holding a connection.
async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit: Duration = state.config.limits.request_timeout.0;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limit).into_response(),
    }
}
