//! The alerts: `GET /alerts` and `POST /alerts/{rule}/reset`, with the admin token. Answers
//! come from the evaluator's run loop (`faultline_alerts`), so they show the state it acts
//! on; this file only renders them.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use faultline_alerts::{AlertsView, EvaluatorStopped};
use serde_json::json;

use super::admin::Admin;
use crate::app_state::AppState;
use crate::error::ApiError;

/// The evaluator is gone (the server is stopping): 503, try again.
pub(super) fn stopped(_: EvaluatorStopped) -> ApiError {
    ApiError::Unavailable {
        message: "the alert evaluator is not running (the server is stopping)".into(),
        retry_after: Duration::from_secs(2),
    }
}

/// `GET /alerts`.
pub(crate) async fn list(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<AlertsView>, ApiError> {
    state.alerts.view().await.map(Json).map_err(stopped)
}

/// `POST /alerts/{rule}/reset`: resolves the rule's firing alerts (sending their resolve
/// notifications), forgets its groups, and stops counting records older than now.
pub(crate) async fn reset(
    State(state): State<AppState>,
    Path(rule): Path<String>,
    _: Admin,
) -> Result<Response, ApiError> {
    if !state.alerts.is_leader() {
        return Err(ApiError::Unavailable {
            message: "this node stands by: another node evaluates the alert rules (send the \
                      reset to the node whose /readyz says alerts.leader = true)"
                .into(),
            retry_after: Duration::from_secs(2),
        });
    }
    match state.alerts.reset(&rule).await.map_err(stopped)? {
        Some(done) => Ok(Json(done).into_response()),
        None => Ok((
            StatusCode::NOT_FOUND,
            Json(json!({
                "error": format!("no alert rule named {rule:?}: GET /alerts lists them"),
                "detail": null,
            })),
        )
            .into_response()),
    }
}
