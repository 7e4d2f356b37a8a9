//! `POST /api/{project_id}/envelope/` and the legacy `POST /api/{project_id}/store/`:
//! Sentry SDKs send here when their DSN points at Faultline
//! (`http://KEY@faultline.example.com/PROJECT_ID`).
//!
//! The key is the DSN's public key, as SDKs present it: `X-Sentry-Auth: Sentry
//! sentry_key=KEY, ...` (or the same in `Authorization`), `?sentry_key=KEY`, or only the
//! `dsn` in the envelope's header (then the body is read before the key is checked, within
//! the same limits). Faultline's own `Authorization: Bearer`, `X-Faultline-Key` and `?key=`
//! work too. The request then takes the path of every ingest request (`ingest::admit`:
//! rate limit, body size, gzip, deflate or br within the inflation limit, the in-flight
//! budget; `ingest::store`: the key's services, stamping with re-keyed `meta.user` and
//! scrubbed URLs, sampling, the durable write) before the answer goes out.
//!
//! Records go to the key's service when the key is limited to one service, else to service
//! `sentry-<project_id>`. The mapping is `sentry/`.
//!
//! Answers are Sentry's: 200 `{"id": EVENT_ID}`; 400 naming what was wrong when an item
//! (or the whole envelope) could not be read or a record was refused, after the good items
//! are stored; 429 and 503 with `Retry-After` and `X-Sentry-Rate-Limits`, so SDKs back off.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use faultline_schema::{Record, Rejected, Timestamp};
use serde_json::json;

use crate::app_state::AppState;
use crate::auth::{ClientAddr, Key};
use crate::error::ApiError;
use crate::ingest;
use crate::request_cost::RequestCost;
use crate::sentry::envelope::{self, Envelope, Item};
use crate::sentry::{item_label, map};

/// How many bytes parsed JSON takes per byte of payload, at most: what the lease covers
/// before events are parsed.
const PARSED_PER_BYTE: usize = 8;

/// The header SDKs read to stop sending.
const RATE_LIMITS: HeaderName = HeaderName::from_static("x-sentry-rate-limits");

/// Which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Envelope,
    Store,
}

/// `POST /api/{project_id}/envelope/`.
pub(crate) async fn envelope(
    State(state): State<AppState>,
    client: ClientAddr,
    Path(project): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        ingest::measured(
            StatusCode::OK,
            receive(
                &state,
                client,
                Endpoint::Envelope,
                &project,
                &params,
                &headers,
                body,
            ),
        )
        .await,
    )
}

/// `POST /api/{project_id}/store/`: one event as JSON.
pub(crate) async fn store(
    State(state): State<AppState>,
    client: ClientAddr,
    Path(project): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(
        ingest::measured(
            StatusCode::OK,
            receive(
                &state,
                client,
                Endpoint::Store,
                &project,
                &params,
                &headers,
                body,
            ),
        )
        .await,
    )
}

/// 200 with the event id, or the error with what SDKs read to back off.
fn respond(result: Result<Option<String>, ApiError>) -> Response {
    match result {
        Ok(id) => (StatusCode::OK, axum::Json(json!({ "id": id }))).into_response(),
        Err(e) => {
            let mut response = e.into_response();
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            {
                let secs = response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("1")
                    .to_owned();
                // All categories (empty), for this key.
                if let Ok(v) = HeaderValue::from_str(&format!("{secs}::key")) {
                    response.headers_mut().insert(RATE_LIMITS, v);
                }
            }
            response
        }
    }
}

/// The key SDKs present: `X-Sentry-Auth` (or `Authorization: Sentry ...`), `?sentry_key=`,
/// else Faultline's own `?key=` (its headers are read by `ingest::admit`).
pub(super) fn sdk_key<'a>(
    headers: &'a HeaderMap,
    params: &'a HashMap<String, String>,
) -> Option<&'a str> {
    ["x-sentry-auth", "authorization"]
        .into_iter()
        .filter_map(|h| headers.get(h)?.to_str().ok())
        .find_map(envelope::auth_header_key)
        .or_else(|| params.get("sentry_key").map(String::as_str))
        .or_else(|| params.get("key").map(String::as_str))
        .filter(|k| !k.is_empty())
}

/// The service records of `project` go to for `key`.
fn service(key: &Key, project: &str) -> Result<String, ApiError> {
    if let Some(services) = &key.services
        && services.len() == 1
        && let Some(only) = services.iter().next()
    {
        return Ok(only.clone());
    }
    let ok = !project.is_empty()
        && project.len() <= 50
        && project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !ok {
        return Err(ApiError::bad_request(format!(
            "project id {project:?} in the URL is not 1 to 50 letters, digits, '_', '-' or \
             '.': use the DSN's project id"
        )));
    }
    let service = format!("sentry-{}", project.to_ascii_lowercase());
    if !key.allows_service(&service) {
        return Err(ApiError::Forbidden(format!(
            "key {:?} may write more than one service, so DSN project {project:?} writes to \
             service {service:?}, which the key may not write: add it to the key's services \
             (or use a key limited to one service)",
            key.name
        )));
    }
    Ok(service)
}

async fn receive(
    state: &AppState,
    client: ClientAddr,
    endpoint: Endpoint,
    project: &str,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Option<String>, ApiError> {
    let mut cost = RequestCost::new(&state.config.limits, client.0);
    let result = async {
        let key_in_body = |body: &[u8]| {
            let first = body.split(|b| *b == b'\n').next()?;
            let header: envelope::Header = serde_json::from_slice(first).ok()?;
            envelope::dsn_key(header.dsn.as_deref()?).map(str::to_owned)
        };
        let admitted = ingest::admit_key_in_body(
            state,
            headers,
            sdk_key(headers, params),
            body,
            |body| match endpoint {
                Endpoint::Envelope => key_in_body(body),
                Endpoint::Store => None,
            },
            &mut cost,
        )
        .await?;
        let service = service(admitted.key, project)?;
        let mut lease = admitted.lease;
        let needed = lease
            .held()
            .saturating_add(admitted.body.len().saturating_mul(PARSED_PER_BYTE));
        lease.cover(needed).map_err(ingest::no_room)?;
        let max_items = state.config.limits.max_batch_records;
        let parsed = match endpoint {
            Endpoint::Envelope => {
                envelope::parse(&admitted.body, max_items).map_err(|e| match e {
                    envelope::EnvelopeError::TooManyItems(_) => ApiError::TooLarge(e.to_string()),
                    envelope::EnvelopeError::Header(_) => ApiError::bad_request(e.to_string()),
                })?
            }
            Endpoint::Store => Envelope {
                header: envelope::Header::default(),
                items: vec![Item {
                    kind: "event".into(),
                    payload: &admitted.body,
                }],
                broken: None,
            },
        };
        let cx = map::Context {
            service: &service,
            sent_at: parsed
                .header
                .sent_at
                .as_deref()
                .and_then(|s| Timestamp::parse(s).ok()),
            now: Timestamp::now(),
            ip_as_user: state.config.privacy.sentry_ip_as_user,
            client_ip: client.0,
        };
        let mapped = to_records(&parsed, &cx);
        let event_id = mapped.event_id.or_else(|| parsed.header.event_id.clone());
        if mapped.records.is_empty() && mapped.invalid.is_empty() {
            // Nothing Faultline stores (sessions, client reports, ...): counted, accepted.
            return match parsed.broken {
                Some(why) => Err(ApiError::bad_request(why)),
                None => Ok(event_id),
            };
        }
        let stored = ingest::store(
            state,
            admitted.key,
            mapped.records,
            mapped.invalid,
            &mut cost,
        )
        .await?;
        drop(lease);
        let mut problems: Vec<String> = stored
            .rejected
            .iter()
            .map(|r| {
                let at = mapped.labels.get(r.index).map_or("an item", String::as_str);
                format!("{at}: {}", r.error)
            })
            .collect();
        problems.extend(parsed.broken);
        if problems.is_empty() {
            Ok(event_id)
        } else {
            let stored_note = if stored.accepted > 0 {
                format!("; the other {} records were stored", stored.accepted)
            } else {
                String::new()
            };
            Err(ApiError::bad_request(format!(
                "{}{stored_note}",
                problems.join("; ")
            )))
        }
    }
    .await;
    cost.settle(result)
}

/// An envelope's items as records, with each record's description (for errors) and the
/// event's id.
struct Mapped {
    records: Vec<Record>,
    invalid: Vec<Rejected>,
    labels: Vec<String>,
    event_id: Option<String>,
}

fn to_records(envelope: &Envelope<'_>, cx: &map::Context<'_>) -> Mapped {
    let mut out = Mapped {
        records: Vec::new(),
        invalid: Vec::new(),
        labels: Vec::new(),
        event_id: None,
    };
    let event_id = envelope.header.event_id.as_deref();
    for (n, item) in envelope.items.iter().enumerate() {
        let label = item_label(&item.kind);
        let results = match item.kind.as_str() {
            "event" => {
                let result = map::event(item.payload, event_id, cx);
                if let Ok(r) = &result {
                    out.event_id = r.id.map(|id| id.simple().to_string());
                }
                vec![result]
            }
            "log" => map::logs(item.payload, cx),
            _ => {
                metrics::counter!("faultline_sentry_items_total", "type" => label, "outcome" => "ignored")
                    .increment(1);
                continue;
            }
        };
        let many = results.len() > 1;
        for (i, result) in results.into_iter().enumerate() {
            let index = out.labels.len();
            out.labels.push(if many {
                format!("item {} ({}) entry {}", n + 1, item.kind, i + 1)
            } else {
                format!("item {} ({})", n + 1, item.kind)
            });
            let outcome = match result {
                Ok(record) => {
                    out.records.push(record);
                    "mapped"
                }
                Err(error) => {
                    out.invalid.push(Rejected { index, error });
                    "invalid"
                }
            };
            metrics::counter!("faultline_sentry_items_total", "type" => label, "outcome" => outcome)
                .increment(1);
        }
    }
    out
}
