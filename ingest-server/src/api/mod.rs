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
//! - `notices.rs`: `POST /notices`, one user's notices for their own page (an
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
            post(notices::for_user).options(preflight_fallback),
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
    let router = Router::new()
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
        .layer(middleware::from_fn_with_state(state.clone(), deadline));
    let router = if state.access_log.is_some() {
        router.layer(middleware::from_fn_with_state(state.clone(), access_log))
    } else {
        router
    };
    router.with_state(state)
}

/// One access log line per request (`access_log`): the key's *name* only, the path without
/// its query (`?key=`, `?sentry_key=`).
async fn access_log(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(log) = state.access_log.clone() else {
        return next.run(request).await;
    };
    let started = std::time::Instant::now();
    let ts = faultline_schema::Timestamp::now().to_string();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let headers = request.headers();
    let bytes_in = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let client = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| state.keys.client_address(c.0.ip(), headers));
    let key = key_name(&state, headers, request.uri());
    let response = next.run(request).await;
    let bytes_out = axum::body::HttpBody::size_hint(response.body()).exact();
    log.log(crate::access_log::AccessLine {
        ts,
        method: method.as_str(),
        path: &path,
        status: response.status().as_u16(),
        bytes_in,
        bytes_out,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        client,
        key: key.as_deref(),
    });
    response
}

/// The name of the credential a request presents, wherever it comes from (the headers
/// `ingest::admit` and the Sentry endpoints read, `?key=`, `?sentry_key=`): an ingest key's
/// name, `"admin"`, or `"unknown"`. A Sentry envelope's DSN in its body is not read here.
fn key_name(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    uri: &axum::http::Uri,
) -> Option<String> {
    let params: std::collections::HashMap<String, String> =
        axum::extract::Query::try_from_uri(uri).map_or_else(|_| Default::default(), |q| q.0);
    let presented =
        crate::auth::presented_key(headers, None).or_else(|| sentry::sdk_key(headers, &params))?;
    if state.keys.is_admin(presented) {
        return Some("admin".to_owned());
    }
    Some(match state.keys.ingest_key(presented) {
        Some(key) => key.name.clone(),
        None => "unknown".to_owned(),
    })
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
