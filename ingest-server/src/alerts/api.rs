//! The alerts API: `GET /alerts`, `POST /alerts/{rule}/reset`, `GET /system/checks/latest`.
//! All need the admin token. Answers come from the evaluator's run loop, so they show the
//! state it acts on.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use faultline_schema::Timestamp;
use serde::Serialize;
use serde_json::json;

use super::eval::GroupView;
use super::rule::{Action, RuleConfig, RuleKind, Severity};
use super::state::AlertStatus;
use super::store::{Delivery, SystemCheck};
use super::{AlertService, EvaluatorStopped};
use crate::error::ApiError;
use crate::read::require_admin;
use crate::state::AppState;

/// The `GET /alerts` body.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AlertsView {
    /// Whether the server evaluates rules (`alerts.enabled`).
    pub enabled: bool,
    /// Whether this node leads (evaluates and notifies); a standby shows the persisted
    /// state, read again every evaluation interval.
    pub leader: bool,
    /// When this view was taken.
    pub now: Timestamp,
    /// Alerts firing now, over every rule and group.
    pub firing: usize,
    /// Records not evaluated because the evaluator's queue was full, since start.
    pub records_dropped: u64,
    pub rules: Vec<RuleView>,
    /// Firing alerts of rules with the `notice` action: what the dashboard shows inline.
    pub notices: Vec<NoticeView>,
    /// The latest result of every probe.
    pub probes: Vec<SystemCheck>,
}

/// One rule in `GET /alerts`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RuleView {
    pub name: String,
    pub kind: RuleKind,
    pub severity: Severity,
    /// The worst state among its groups.
    pub status: AlertStatus,
    /// What it counts, in words.
    pub filter: String,
    /// Channel names and built-in actions.
    pub actions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_at: Option<Timestamp>,
    /// Records skipped because the rule had `max_groups` groups.
    pub dropped_records: u64,
    /// Groups that are not `ok` or have records in their window, worst first.
    pub groups: Vec<GroupView>,
    /// The newest deliveries, newest first.
    pub deliveries: Vec<Delivery>,
    /// The rule as configured.
    pub config: RuleConfig,
}

/// An inline notice for the dashboard.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NoticeView {
    pub rule: String,
    pub group: String,
    pub severity: Severity,
    pub message: String,
    pub since: Option<Timestamp>,
}

/// The `POST /alerts/{rule}/reset` body.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ResetView {
    pub rule: String,
    pub reset_at: Timestamp,
    /// Firing alerts that were resolved by the reset (each sends its resolve).
    pub resolved: usize,
}

pub(super) fn build_view(s: &AlertService, now: Timestamp) -> AlertsView {
    let mut rules = Vec::new();
    let mut notices = Vec::new();
    let mut firing = 0;
    for (idx, rule) in s.engine.rules().enumerate() {
        let groups = s.engine.groups(idx, now);
        let status = groups
            .iter()
            .map(|g| g.state.status)
            .max()
            .unwrap_or(AlertStatus::Ok);
        for g in &groups {
            if g.state.status != AlertStatus::Firing {
                continue;
            }
            firing += 1;
            if rule.has_action(&Action::Notice) {
                notices.push(NoticeView {
                    rule: rule.name.clone(),
                    group: g.group.clone(),
                    severity: rule.severity,
                    message: rule.render_summary(&g.group, g.current.value, &g.current.detail),
                    since: g.state.fired_at,
                });
            }
        }
        let actions = rule
            .actions
            .iter()
            .map(|a| match a {
                Action::Channel { name, .. } => name.clone(),
                Action::SystemCheck => super::rule::SYSTEM_CHECK_ACTION.to_owned(),
                Action::Notice => super::rule::NOTICE_ACTION.to_owned(),
            })
            .collect();
        let deliveries = s
            .recent
            .get(&rule.name)
            .map(|q| q.iter().rev().cloned().collect())
            .unwrap_or_default();
        rules.push(RuleView {
            name: rule.name.clone(),
            kind: rule.kind,
            severity: rule.severity,
            status,
            filter: rule.filter_text.clone(),
            actions,
            reset_at: s.engine.reset_at(idx),
            dropped_records: s.engine.dropped(idx),
            groups,
            deliveries,
            config: rule.config.clone(),
        });
    }
    let mut probes: Vec<SystemCheck> = s.probe_results.values().cloned().collect();
    probes.sort_by(|a, b| a.name.cmp(&b.name));
    AlertsView {
        enabled: s.compiled.settings.enabled,
        leader: s.handle.is_leader(),
        now,
        firing,
        records_dropped: s.handle.dropped(),
        rules,
        notices,
        probes,
    }
}

fn stopped(_: EvaluatorStopped) -> ApiError {
    ApiError::Unavailable {
        message: "the alert evaluator is not running (the server is stopping)".into(),
        retry_after: Duration::from_secs(2),
    }
}

/// `GET /alerts`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<AlertsView>, ApiError> {
    require_admin(&state, &headers, &params)?;
    state.alerts.view().await.map(Json).map_err(stopped)
}

/// `POST /alerts/{rule}/reset`: resolves the rule's firing alerts (sending their resolve
/// notifications), forgets its groups, and stops counting records older than now.
pub(crate) async fn reset(
    State(state): State<AppState>,
    Path(rule): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers, &params)?;
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

/// The `GET /system/checks/latest` body.
#[derive(Debug, Serialize)]
pub(crate) struct ChecksView {
    /// The latest result of every rule and probe, and of anything else recorded
    /// (`check-alerts` runs), by name.
    pub checks: Vec<SystemCheck>,
}

/// `GET /system/checks/latest`: every rule's and probe's latest result. While the server
/// evaluates, rules show their live state; otherwise the last recorded one.
pub(crate) async fn latest_checks(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<ChecksView>, ApiError> {
    require_admin(&state, &headers, &params)?;
    let checks = state.alerts.checks().await.map_err(stopped)?;
    Ok(Json(ChecksView { checks }))
}
