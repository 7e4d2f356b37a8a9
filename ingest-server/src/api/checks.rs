//! `GET /system/checks/latest`, with the admin token: the latest result of every rule and
//! probe, from the alert evaluator, and the store's own `archive` check when
//! `[retention] archive_dir` is set.

use axum::Json;
use axum::extract::State;
use faultline_alerts::{CheckKind, CheckStatus, SystemCheck};
use faultline_schema::Timestamp;
use faultline_store::StoreHealth;
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
    let mut checks = state.alerts.checks().await.map_err(stopped)?;
    checks.extend(archive_check(&state.store.health()));
    Ok(Json(ChecksView { checks }))
}

/// The name of the store's archive check.
pub(crate) const ARCHIVE_CHECK: &str = "archive";

/// Archiving before retention deletes, as a check: failed while the last archive could not
/// be written (retention then deletes nothing). `None` without an archive directory.
pub(crate) fn archive_check(health: &StoreHealth) -> Option<SystemCheck> {
    let archive = health.archive.as_ref()?;
    let (status, detail) = match &archive.last_error {
        Some(e) => (
            CheckStatus::Failed,
            format!("retention deletes nothing until archives can be written: {e}"),
        ),
        None => (
            CheckStatus::Ok,
            format!(
                "{} files, {} records archived since start",
                archive.files, archive.records
            ),
        ),
    };
    Some(SystemCheck {
        name: ARCHIVE_CHECK.into(),
        kind: CheckKind::Probe,
        status,
        detail,
        group: None,
        source: "store".into(),
        checked_at: Timestamp::now(),
    })
}
