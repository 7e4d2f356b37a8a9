//! Silences: `POST /silences`, `GET /silences`, `DELETE /silences/{id}`, with the admin
//! token. Any node answers: silences are kept in the alert store (the data dir, or
//! PostgreSQL for every node) and the evaluating node reads them every evaluation interval.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use faultline_alerts::{NewSilence, SilenceError, SilenceView};
use serde_json::json;

use super::admin::Admin;
use super::alerts::stopped;
use crate::app_state::AppState;
use crate::error::ApiError;

/// The largest `POST /silences` body.
const MAX_BODY: usize = 64 * 1024;

fn silence_error(e: SilenceError) -> ApiError {
    match e {
        SilenceError::Invalid(message) => ApiError::bad_request(message),
        SilenceError::Stopped(e) => stopped(e),
        SilenceError::Store(e) => ApiError::Unavailable {
            message: format!("cannot read or write the silences: {e}"),
            retry_after: std::time::Duration::from_secs(2),
        },
    }
}

/// `GET /silences`: every silence kept (pending, active, and expired within a week).
pub(crate) async fn list(State(state): State<AppState>, _: Admin) -> Result<Response, ApiError> {
    let silences = state.alerts.silences().await.map_err(silence_error)?;
    Ok(Json(json!({ "silences": silences })).into_response())
}

/// `POST /silences`: `{"matchers": ["rule=api_errors"], "duration": "1h", "comment",
/// "created_by"}` (or `ends_at`, `starts_at`, `until_resolved`); 201 with the silence.
pub(crate) async fn create(
    State(state): State<AppState>,
    _: Admin,
    body: Bytes,
) -> Result<Response, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::bad_request(format!(
            "a silence is at most {MAX_BODY} bytes of JSON"
        )));
    }
    let new: NewSilence = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "not a silence: {e} (send {{\"matchers\": [\"rule=NAME\"], \"duration\": \"1h\", \
             \"comment\": \"why\", \"created_by\": \"who\"}})"
        ))
    })?;
    let silence: SilenceView = state.alerts.add_silence(new).await.map_err(silence_error)?;
    Ok((StatusCode::CREATED, Json(silence)).into_response())
}

/// `DELETE /silences/{id}`: ends the silence now (it stays listed as expired).
pub(crate) async fn expire(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<Response, ApiError> {
    match state
        .alerts
        .expire_silence(&id)
        .await
        .map_err(silence_error)?
    {
        Some(silence) => Ok(Json(silence).into_response()),
        None => Ok((
            StatusCode::NOT_FOUND,
            Json(json!({
                "error": format!("no silence with id {id:?}: GET /silences lists them"),
                "detail": null,
            })),
        )
            .into_response()),
    }
}
