//! The logs: `POST /logs/ingest` (the pipeline is `ingest.rs`), and the reads `GET
//! /logs/recent` and `GET /logs/stats`, which need the admin token.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use faultline_schema::{HumanDuration, Level, Record, Timestamp, anonymize_user};
use faultline_store::{
    Cursor, GroupBy, MAX_META_FILTERS, MAX_QUERY_LIMIT, MetaFilter, Query as RecordQuery,
    RollupBucket, RollupQuery, StatsBucket, StatsQuery, hour_of,
};
use faultline_symbolicate::Stage;
use serde::Serialize;

use super::admin::Admin;
use crate::app_state::AppState;
use crate::auth::ClientAddr;
use crate::error::ApiError;
use crate::ingest::{self, IngestResponse};

/// `POST /logs/ingest`: a batch as a JSON array, `{"records": [...]}` or NDJSON; see
/// `ingest.rs` for the order of checks.
pub(crate) async fn ingest(
    State(state): State<AppState>,
    client: ClientAddr,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<IngestResponse>), ApiError> {
    let result = ingest::measured(
        StatusCode::ACCEPTED,
        ingest::ingest_batch(&state, client, &params, &headers, body),
    )
    .await;
    result.map(|r| (StatusCode::ACCEPTED, Json(r)))
}

/// The longest window `/logs/stats` answers per minute (what the stores keep per minute).
const MAX_MINUTE_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The longest window `/logs/stats` answers per hour. The rollups are kept for the
/// retention period: a longer window is answered, with nothing before it.
const MAX_HOUR_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

/// The `/logs/recent` body.
#[derive(Serialize)]
pub(crate) struct RecentResponse {
    /// Newest `ts` first.
    pub records: Vec<Record>,
    /// Pass as `cursor` for the next page (older records); `null` on the last page.
    pub next: Option<String>,
}

const RECENT_PARAMS: [&str; 14] = [
    "service",
    "level",
    "event",
    "user",
    "raw_user",
    "since",
    "until",
    "q",
    "limit",
    "key",
    "issue",
    "release",
    "environment",
    "cursor",
];

/// `GET /logs/recent`: the fixed filters, `meta.KEY=VALUE` (any number, all must match),
/// `release` and `environment` (`meta.release`, `meta.environment`) and `cursor`.
pub(crate) async fn recent(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
    _: Admin,
) -> Result<Json<RecentResponse>, ApiError> {
    let mut meta = Vec::new();
    let mut params = HashMap::new();
    for (name, value) in pairs {
        if let Some(key) = name.strip_prefix("meta.") {
            meta.push(MetaFilter::new(key, &value).map_err(ApiError::bad_request)?);
        } else if name == "meta" {
            return Err(ApiError::bad_request(
                "meta: write a filter as meta.KEY=VALUE (meta.http.status=500)",
            ));
        } else if params.insert(name.clone(), value).is_some() {
            return Err(ApiError::bad_request(format!("{name}: given twice")));
        }
    }
    reject_unknown(&params, &RECENT_PARAMS)?;
    for key in ["release", "environment"] {
        if let Some(value) = params.get(key) {
            meta.push(MetaFilter::new(key, value).map_err(ApiError::bad_request)?);
        }
    }
    if meta.len() > MAX_META_FILTERS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_META_FILTERS} meta filters (release and environment count)"
        )));
    }
    let now = Timestamp::now();
    let mut query = RecordQuery {
        service: params.get("service").cloned(),
        event: params.get("event").cloned(),
        text: params.get("q").filter(|q| !q.is_empty()).cloned(),
        meta,
        ..RecordQuery::default()
    };
    if let Some(cursor) = params.get("cursor").filter(|c| !c.is_empty()) {
        query.before = Some(
            cursor
                .parse::<Cursor>()
                .map_err(|e| ApiError::bad_request(format!("cursor: {e}")))?,
        );
    }
    if let Some(issue) = params.get("issue") {
        if !faultline_schema::is_issue_id(issue) {
            return Err(ApiError::bad_request(format!(
                "issue: {issue:?} is not an issue id (16 lowercase hex characters)"
            )));
        }
        query.issue = Some(issue.clone());
    }
    if let Some(level) = params.get("level") {
        query.min_level = Some(
            level
                .parse::<Level>()
                .map_err(|e| ApiError::bad_request(format!("level: {e}")))?,
        );
    }
    query.user = match (params.get("user"), params.get("raw_user")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give user or raw_user, not both"));
        }
        // A stored (re-keyed) id, as the dashboard shows it.
        (Some(u), None) => Some(u.clone()),
        // A raw id, as support knows it: anonymized and re-keyed the way ingest does.
        (None, Some(raw)) => Some(state.rekeyer.rekey(&anonymize_user(&*state.user_salt, raw))),
        (None, None) => None,
    };
    query.since = params
        .get("since")
        .map(|s| instant("since", s, now))
        .transpose()?;
    query.until = params
        .get("until")
        .map(|s| instant("until", s, now))
        .transpose()?;
    if let Some(limit) = params.get("limit") {
        query.limit = limit
            .parse()
            .ok()
            .filter(|n| (1..=MAX_QUERY_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit must be 1 to {MAX_QUERY_LIMIT}"))
            })?;
    }
    // One more than the page, to know whether another page follows.
    let limit = query.limit;
    query.limit = limit + 1;
    let mut records = state
        .store
        .query(query)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let next = if records.len() > limit {
        records.truncate(limit);
        records
            .last()
            .and_then(|r| r.id.map(|id| Cursor { ts: r.ts, id }.to_string()))
    } else {
        None
    };
    // Records stored before their release's source maps were uploaded read mapped too.
    state
        .symbolicator
        .symbolicate(&mut records, Stage::Read)
        .await;
    Ok(Json(RecentResponse { records, next }))
}

/// The `/logs/stats` body.
#[derive(Serialize)]
pub(crate) struct StatsResponse {
    /// Start of the window (a minute boundary).
    pub since: Timestamp,
    /// End of the window.
    pub until: Timestamp,
    /// Bucket width.
    pub step: &'static str,
    /// Non-zero counts per minute, service and level, oldest first.
    pub buckets: Vec<StatsBucket>,
    /// Totals over the window per service and level.
    pub totals: Vec<Total>,
}

/// A total over the window.
#[derive(Serialize)]
pub(crate) struct Total {
    /// The service.
    pub service: String,
    /// The level.
    pub level: Level,
    /// Records in the window.
    pub count: u64,
}

/// The `/logs/stats?step=1h` body: hourly rollups.
#[derive(Serialize)]
pub(crate) struct HourlyStatsResponse {
    /// Start of the window (an hour boundary).
    pub since: Timestamp,
    /// End of the window.
    pub until: Timestamp,
    /// Bucket width: `1h`.
    pub step: &'static str,
    /// The dimensions each bucket and total is grouped by.
    pub group_by: Vec<&'static str>,
    /// Non-zero counts per hour and group, oldest first.
    pub buckets: Vec<RollupBucket>,
    /// Totals over the window per group (buckets without `hour`).
    pub totals: Vec<GroupTotal>,
}

/// A total over the window for one group; dimensions not grouped by are absent.
#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GroupTotal {
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<Level>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    release: Option<String>,
    count: u64,
}

/// Either answer of `/logs/stats`.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum StatsAnswer {
    /// `step=1m`.
    Minutes(StatsResponse),
    /// `step=1h`.
    Hours(HourlyStatsResponse),
}

/// `GET /logs/stats?window=60m&service=api`: per minute (windows up to 24 hours) or, with
/// `step=1h` (the default past 24 hours or with `group_by`), per hour from the rollups,
/// grouped by `group_by` (`service,level` by default; also `event`, `release`).
pub(crate) async fn stats(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    _: Admin,
) -> Result<Json<StatsAnswer>, ApiError> {
    reject_unknown(&params, &["window", "service", "key", "step", "group_by"])?;
    let window = match params.get("window") {
        Some(w) => {
            HumanDuration::parse(w)
                .map_err(|e| ApiError::bad_request(format!("window: {e}")))?
                .0
        }
        None => Duration::from_secs(3600),
    };
    let group_by = params
        .get("group_by")
        .map(|g| g.parse::<GroupBy>())
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("group_by: {e}")))?;
    let hourly = match params.get("step").map(String::as_str) {
        None => window > MAX_MINUTE_WINDOW || group_by.is_some(),
        Some("1h") => true,
        Some("1m") if group_by.is_some() => {
            return Err(ApiError::bad_request(
                "group_by: counts are grouped by the hour: use step=1h",
            ));
        }
        Some("1m") => false,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "step: {other:?} is not a step: 1m (windows up to 24h) or 1h"
            )));
        }
    };
    let max = if hourly {
        MAX_HOUR_WINDOW
    } else {
        MAX_MINUTE_WINDOW
    };
    if window.is_zero() || window > max {
        return Err(ApiError::bad_request(if hourly {
            "window must be between 1m and 366d"
        } else {
            "window must be between 1m and 24h per minute (step=1h for longer)"
        }));
    }
    let until = Timestamp::now();
    let since_ms = until.unix_millis() - i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    if hourly {
        let group_by = group_by.unwrap_or_default();
        let since = Timestamp::from_unix_millis(hour_of(since_ms));
        let buckets = state
            .store
            .rollups(RollupQuery {
                since,
                until,
                service: params.get("service").cloned(),
                group_by,
            })
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        return Ok(Json(StatsAnswer::Hours(HourlyStatsResponse {
            since,
            until,
            step: "1h",
            group_by: [
                (group_by.service, "service"),
                (group_by.level, "level"),
                (group_by.event, "event"),
                (group_by.release, "release"),
            ]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect(),
            totals: group_totals(&buckets),
            buckets,
        })));
    }
    let since = Timestamp::from_unix_millis(since_ms - since_ms.rem_euclid(60_000));
    let stats = state
        .store
        .stats(StatsQuery {
            since,
            until,
            service: params.get("service").cloned(),
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut totals: BTreeMap<(String, Level), u64> = BTreeMap::new();
    for b in &stats.buckets {
        // Saturating, like the counts: weights are large by design.
        let total = totals.entry((b.service.clone(), b.level)).or_default();
        *total = total.saturating_add(b.count);
    }
    Ok(Json(StatsAnswer::Minutes(StatsResponse {
        since,
        until,
        step: "1m",
        buckets: stats.buckets,
        totals: totals
            .into_iter()
            .map(|((service, level), count)| Total {
                service,
                level,
                count,
            })
            .collect(),
    })))
}

/// The buckets summed over their hours, per group.
fn group_totals(buckets: &[RollupBucket]) -> Vec<GroupTotal> {
    let mut totals: BTreeMap<GroupTotal, u64> = BTreeMap::new();
    for b in buckets {
        let key = GroupTotal {
            service: b.service.clone(),
            level: b.level,
            event: b.event.clone(),
            release: b.release.clone(),
            count: 0,
        };
        let total = totals.entry(key).or_default();
        *total = total.saturating_add(b.count);
    }
    totals
        .into_iter()
        .map(|(key, count)| GroupTotal { count, ..key })
        .collect()
}

/// An instant from RFC 3339 or a duration ago (`15m` = fifteen minutes before now).
pub(super) fn instant(name: &str, value: &str, now: Timestamp) -> Result<Timestamp, ApiError> {
    if let Ok(ts) = Timestamp::parse(value) {
        return Ok(ts);
    }
    let ago = HumanDuration::parse(value).map_err(|_| {
        ApiError::bad_request(format!(
            "{name}: {value:?} is neither RFC 3339 (2026-07-01T12:00:00Z) nor a duration ago (15m)"
        ))
    })?;
    let ms = i64::try_from(ago.0.as_millis()).unwrap_or(i64::MAX);
    Ok(Timestamp::from_unix_millis(
        now.unix_millis().saturating_sub(ms),
    ))
}

pub(super) fn reject_unknown(
    params: &HashMap<String, String>,
    known: &[&str],
) -> Result<(), ApiError> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_request(format!(
            "unknown parameter {k:?}: known are {}",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}
