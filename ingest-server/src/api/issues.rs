//! The issues: `GET /issues`, `GET /issues/{id}`, `PUT /issues/{id}`. They need the admin
//! token. The store keeps the aggregates (`faultline_store::issues`); this file parses the
//! parameters and adds, for one issue, its latest event and the top values among its events.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use faultline_schema::{Record, Timestamp, is_issue_id};
use faultline_store::issues::{
    HOURLY_DAYS, IssueDetail, IssueQuery, IssueStatus, IssueTags, MAX_ISSUE_LIMIT,
};
use faultline_store::{Query as RecordQuery, StoreError};
use faultline_symbolicate::Stage;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::admin::Admin;
use super::logs::{instant, reject_unknown};
use crate::app_state::AppState;
use crate::error::ApiError;

const LIST_PARAMS: [&str; 7] = [
    "service", "status", "sort", "since", "limit", "cursor", "key",
];

/// The most recent events of an issue that its top values are counted over.
const TAG_EVENTS: usize = 10_000;

/// `GET /issues?service=&status=&sort=&since=&limit=&cursor=`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    _: Admin,
) -> Result<Response, ApiError> {
    reject_unknown(&params, &LIST_PARAMS)?;
    let mut query = IssueQuery {
        service: params.get("service").filter(|s| !s.is_empty()).cloned(),
        ..IssueQuery::default()
    };
    if let Some(status) = params.get("status") {
        query.status = match status.as_str() {
            "all" => None,
            other => Some(
                other
                    .parse()
                    .map_err(|e: String| ApiError::bad_request(format!("status: {e} (or all)")))?,
            ),
        };
    }
    if let Some(sort) = params.get("sort") {
        query.sort = sort
            .parse()
            .map_err(|e: String| ApiError::bad_request(format!("sort: {e}")))?;
    }
    query.since = params
        .get("since")
        .map(|s| instant("since", s, Timestamp::now()))
        .transpose()?;
    if let Some(limit) = params.get("limit") {
        query.limit = limit
            .parse()
            .ok()
            .filter(|n| (1..=MAX_ISSUE_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit must be 1 to {MAX_ISSUE_LIMIT}"))
            })?;
    }
    if let Some(cursor) = params.get("cursor").filter(|c| !c.is_empty()) {
        query.cursor = Some(
            cursor
                .parse()
                .map_err(|e: String| ApiError::bad_request(format!("cursor: {e}")))?,
        );
    }
    let page = state.store.issues(query).await.map_err(store_error)?;
    Ok(Json(page).into_response())
}

/// The `GET /issues/{id}` body: the issue, its hourly counts, its latest event and its top
/// values.
#[derive(Serialize)]
struct IssueResponse {
    #[serde(flatten)]
    detail: IssueDetail,
    /// The newest stored event (symbolicated as `/logs/recent` shows it), if any is still
    /// within the records' retention.
    latest_event: Option<Record>,
    /// The most common `release`, `environment`, browser and `url` path among its newest
    /// events (at most [`TAG_EVENTS`] over the last [`HOURLY_DAYS`] days).
    tags: IssueTags,
    /// How many events the tags were counted over.
    tag_events: usize,
}

/// `GET /issues/{id}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Admin,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    let Some(detail) = state.store.issue(id.clone()).await.map_err(store_error)? else {
        return Ok(no_such_issue(&id));
    };
    let since = Timestamp::from_unix_millis(
        Timestamp::now()
            .unix_millis()
            .saturating_sub(HOURLY_DAYS * 24 * 3_600_000),
    );
    let events = state
        .store
        .scan(
            RecordQuery {
                issue: Some(id.clone()),
                since: Some(since),
                ..RecordQuery::default()
            },
            TAG_EVENTS,
        )
        .await
        .map_err(store_error)?;
    let tags = IssueTags::from_records(&events);
    let mut latest: Vec<Record> = match events.into_iter().next() {
        Some(newest) => vec![newest],
        // Older than the tag window: the newest event whenever it was.
        None => state
            .store
            .query(RecordQuery {
                issue: Some(id),
                limit: 1,
                ..RecordQuery::default()
            })
            .await
            .map_err(store_error)?,
    };
    state
        .symbolicator
        .symbolicate(&mut latest, Stage::Read)
        .await;
    let tag_events = tags_total(&tags);
    Ok(Json(IssueResponse {
        detail,
        latest_event: latest.into_iter().next(),
        tags,
        tag_events,
    })
    .into_response())
}

/// Events the tags were counted over: the largest total of any one tag (every event has a
/// browser or not, so no one tag sees them all; this is what the dashboard shows as "of N").
fn tags_total(tags: &IssueTags) -> usize {
    [&tags.release, &tags.environment, &tags.browser, &tags.url]
        .iter()
        .map(|t| t.iter().map(|c| c.count).sum::<u64>())
        .max()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}

/// The `PUT /issues/{id}` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusChange {
    status: String,
}

/// `PUT /issues/{id}` with `{"status": "resolved" | "ignored" | "unresolved"}`.
pub(crate) async fn set_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Admin,
    body: Result<Json<StatusChange>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    let Json(change) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "send {{\"status\": \"resolved\" | \"ignored\" | \"unresolved\"}}: {e}"
        ))
    })?;
    let status: IssueStatus = change
        .status
        .parse()
        .map_err(|e: String| ApiError::bad_request(format!("status: {e}")))?;
    match state
        .store
        .set_issue_status(id.clone(), status)
        .await
        .map_err(store_error)?
    {
        Some(issue) => Ok(Json(issue).into_response()),
        None => Ok(no_such_issue(&id)),
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if is_issue_id(id) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{id:?} is not an issue id (16 lowercase hex characters)"
        )))
    }
}

fn no_such_issue(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "error": format!("no issue {id:?}: GET /issues lists them"),
            "detail": null,
        })),
    )
        .into_response()
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Closed | StoreError::Overloaded | StoreError::Unavailable(_) => {
            ApiError::Unavailable {
                message: format!("the store cannot answer now: {e}"),
                retry_after: std::time::Duration::from_secs(2),
            }
        }
        other => ApiError::Internal(other.to_string()),
    }
}
