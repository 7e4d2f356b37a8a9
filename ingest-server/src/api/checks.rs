//! `GET /system/checks/latest`, with the admin token: the latest result of every rule and
//! probe, from the alert evaluator.

use axum::Json;
use axum::extract::State;
use faultline_alerts::SystemCheck;
use serde::Serialize;

use super::admin::Admin;
use super::alerts::stopped;
use crate::app_state::AppState;
use crate::error::ApiError;

/// The `GET /system/checks/latest` body.
#[derive(Debug, Serialize)]
pub(crate) struct ChecksView {
    /// The latest result of every rule and probe, and of anything else recorded
    /// (`check-alerts` runs), by name.
    pub checks: Vec<SystemCheck>,
}

/// `GET /system/checks/latest`: every rule's and probe's latest result. While the server
/// evaluates, rules show their live state; otherwise the last recorded one.
pub(crate) async fn latest(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<ChecksView>, ApiError> {
    let checks = state.alerts.checks().await.map_err(stopped)?;
    Ok(Json(ChecksView { checks }))
}
