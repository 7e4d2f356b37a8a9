//! `POST /logs/ingest`: from request bytes to durably stored records.
//!
//! The order of checks is the order of cost: key and rate limit before reading the body,
//! size before decompressing, decompressed size while inflating (a gzip bomb is cut off at
//! the limit, never inflated whole), records counted while they are parsed, then per-record
//! validation. Memory is counted before it is spent: every buffer a body needs is first
//! leased from the server's in-flight budget (`body_budget.rs`), and a request that finds
//! no room is answered 503. The 202 goes out only after the store has made the accepted
//! records durable. Whatever the outcome, the key pays for the request (`request_cost.rs`).

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use faultline_schema::{
    BatchError, DecodeOptions, InvalidRecord, Record, Rejected, SAMPLE_WEIGHT_KEY, Timestamp,
    UrlScrubber, UserRekeyer, Uuid, Value, decode_batch_within, fingerprint,
};
use faultline_store::StoreError;
use faultline_symbolicate::Stage;
use http_body_util::BodyExt;
use serde::Serialize;

use crate::app_state::AppState;
use crate::auth::{ClientAddr, Key, presented_key};
use crate::body_budget::{BodyLease, NoRoom};
use crate::config::KeyKind;
use crate::error::ApiError;
use crate::inflate::{Encoding, InflateError, inflate_gzip_within, inflate_within};
use crate::request_cost::RequestCost;

/// The 202 body.
#[derive(Debug, Serialize)]
pub(crate) struct IngestResponse {
    /// Records now durable (including ones already stored under the same id).
    pub accepted: usize,
    /// Of those, records that were already stored (a retried batch).
    pub duplicates: usize,
    /// Of those, records not stored one by one because their service was above its
    /// sampling rate: each is counted in the `meta.sample_weight` of a kept record.
    pub sampled: usize,
    /// Records not accepted, with their batch index and every problem.
    pub rejected: Vec<RejectedRecord>,
}

/// One rejected record in the 202 body.
#[derive(Debug, Serialize)]
pub(crate) struct RejectedRecord {
    /// Zero-based position in the batch.
    pub index: usize,
    /// What was wrong.
    pub error: String,
}

/// Runs an ingest endpoint's work and counts the request: its status (`ok` on success),
/// the reason it was refused, and how long it took.
pub(crate) async fn measured<T>(
    ok: StatusCode,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let started = Instant::now();
    let result = work.await;
    let status = match &result {
        Ok(_) => ok.as_u16(),
        Err(e) => {
            metrics::counter!("faultline_ingest_requests_rejected_total", "reason" => e.reason())
                .increment(1);
            e.status().as_u16()
        }
    };
    metrics::counter!("faultline_ingest_requests_total", "status" => status_label(status))
        .increment(1);
    metrics::histogram!("faultline_ingest_request_seconds").record(started.elapsed());
    result
}

/// Metric labels must be `'static`; map the statuses ingest produces.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        202 => "202",
        400 => "400",
        401 => "401",
        403 => "403",
        408 => "408",
        413 => "413",
        415 => "415",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

pub(crate) async fn ingest_batch(
    state: &AppState,
    client: ClientAddr,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<IngestResponse, ApiError> {
    let mut cost = RequestCost::new(&state.config.limits, client.0);
    let result = async {
        let admitted = admit(
            state,
            headers,
            params.get("key").map(String::as_str),
            body,
            check_content_type,
            &mut cost,
        )
        .await?;
        let max_records = state.config.limits.max_batch_records;
        let mut lease = admitted.lease;
        // The lease covers the body and, as they are built, the records decoded from it.
        let on_body = lease.held();
        let (mut decoded, mut no_room_for) = (0, None);
        let batch = decode_batch_within(&admitted.body, &DecodeOptions { max_records }, |n| {
            decoded = n;
            let covered = lease.cover(on_body.saturating_add(n));
            no_room_for = covered.err();
            covered.is_ok()
        });
        // The records are what the request holds from here, until it is answered.
        drop(admitted.body);
        lease.shrink_to(decoded);
        let batch = batch.map_err(|e| match e {
            BatchError::TooManyRecords { .. } => {
                cost.counted_records(max_records.saturating_add(1));
                ApiError::TooLarge(e.to_string())
            }
            BatchError::NoRoom => no_room(no_room_for.unwrap_or(NoRoom::Now)),
            other => ApiError::bad_request(other.to_string()),
        })?;
        let stored = store(
            state,
            admitted.key,
            batch.records,
            batch.rejected,
            &mut cost,
        )
        .await;
        drop(lease);
        stored
    }
    .await;
    cost.settle(result)
}

/// A request past [`admit`]: its key, what its content type says, its body (inflated), and
/// the share of the in-flight budget the body holds (keep it until the request is
/// answered: the records decoded from the body live until then).
pub(crate) struct Admitted<'s, C> {
    /// The request's key.
    pub key: &'s Key,
    /// What the endpoint's content type check returned.
    pub kind: C,
    /// The body, inflated.
    pub body: Bytes,
    /// The body's share of the in-flight budget.
    pub lease: BodyLease,
}

/// The checks every ingest endpoint makes before it looks at records, in the order of their
/// cost: the key, its rate limit, the content type (`content_type` reads it into what the
/// endpoint needs), the body size as sent, and the size after gzip, each buffer leased from
/// the in-flight budget before it is allocated. Bills `cost` to the key once it is known.
pub(crate) async fn admit<'s, C>(
    state: &'s AppState,
    headers: &HeaderMap,
    query_key: Option<&str>,
    body: Body,
    content_type: impl FnOnce(&HeaderMap) -> Result<C, ApiError>,
    cost: &mut RequestCost<'s>,
) -> Result<Admitted<'s, C>, ApiError> {
    let key = admit_key(state, headers, query_key, cost)?;
    let kind = content_type(headers)?;
    let limits = &state.config.limits;
    let mut lease = state.bodies.lease();
    let wire = read_body(headers, body, limits.max_body_bytes, &mut lease, cost).await?;
    metrics::counter!("faultline_ingest_bytes_total").increment(wire.len() as u64);
    let (body, lease) =
        decompress(headers, wire, limits.max_decompressed_bytes, lease, cost).await?;
    Ok(Admitted {
        key,
        kind,
        body,
        lease,
    })
}

/// [`admit`] for a request that may name its key only in its body (a Sentry envelope's
/// header carries its DSN): without a key in the headers or the query, the body is read and
/// inflated first, within the same limits and lease, and `key_in_body` finds the key in it;
/// then the key and its rate limit are checked as [`admit`] checks them.
pub(crate) async fn admit_key_in_body<'s>(
    state: &'s AppState,
    headers: &HeaderMap,
    query_key: Option<&str>,
    body: Body,
    key_in_body: impl FnOnce(&[u8]) -> Option<String>,
    cost: &mut RequestCost<'s>,
) -> Result<Admitted<'s, ()>, ApiError> {
    if presented_key(headers, query_key).is_some() {
        return admit(state, headers, query_key, body, |_| Ok(()), cost).await;
    }
    let limits = &state.config.limits;
    let mut lease = state.bodies.lease();
    let wire = read_body(headers, body, limits.max_body_bytes, &mut lease, cost).await?;
    metrics::counter!("faultline_ingest_bytes_total").increment(wire.len() as u64);
    let (body, lease) =
        decompress(headers, wire, limits.max_decompressed_bytes, lease, cost).await?;
    let found = key_in_body(&body);
    let key = admit_key(state, headers, found.as_deref(), cost)?;
    Ok(Admitted {
        key,
        kind: (),
        body,
        lease,
    })
}

/// The request's key, once it is known and within its rate limit; bills `cost` to it.
pub(crate) fn admit_key<'s>(
    state: &'s AppState,
    headers: &HeaderMap,
    query_key: Option<&str>,
    cost: &mut RequestCost<'s>,
) -> Result<&'s Key, ApiError> {
    let key = authorize(state, headers, query_key)?;
    cost.bill_to(key)?;
    Ok(key)
}

/// What every ingest endpoint does with decoded records: refuses services the key may not
/// write and a client's `meta.sample_weight`, stamps the rest (and refuses what stamping
/// made too large), samples them, charges the key's rate limit, and answers once the store
/// has made them durable.
///
/// `records` are the good records in batch order and `invalid` the bad ones by index
/// (sorted), as [`decode_batch_within`] returns them; the position of each good record is
/// recovered from the gaps between the bad ones.
pub(crate) async fn store(
    state: &AppState,
    key: &Key,
    good: Vec<Record>,
    invalid: Vec<Rejected>,
    cost: &mut RequestCost<'_>,
) -> Result<IngestResponse, ApiError> {
    // The rate limit is charged for every record the client sent, rejected and sampled
    // ones included: it protects the server from the client, whatever is then kept.
    cost.take(good.len() + invalid.len())?;
    let mut rejected: Vec<RejectedRecord> = Vec::with_capacity(invalid.len());
    // Collected, not borrowed: a closure over `invalid` held across the write's await
    // would make the handler's future not `Send` for every lifetime.
    let bad: Vec<usize> = invalid.iter().map(|r| r.index).collect();
    let mut bad_indexes = bad.into_iter().peekable();
    for r in &invalid {
        metrics::counter!("faultline_ingest_records_rejected_total", "reason" => r.error.reason())
            .increment(1);
    }
    let mut records = Vec::with_capacity(good.len());
    let mut forbidden = 0;
    let mut index = 0;
    let now = Timestamp::now();
    for mut record in good {
        while bad_indexes.peek() == Some(&index) {
            bad_indexes.next();
            index += 1;
        }
        if !key.allows_service(&record.service) {
            forbidden += 1;
            rejected.push(RejectedRecord {
                index,
                error: format!(
                    "service: key {:?} may not write records for service {:?}",
                    key.name, record.service
                ),
            });
        } else if record.meta.contains_key(SAMPLE_WEIGHT_KEY) {
            // Only the sampler says how many records one stands for: a client's weight
            // would inflate the counts (and overflow their sums).
            metrics::counter!("faultline_ingest_records_rejected_total", "reason" => "reserved_key")
                .increment(1);
            rejected.push(RejectedRecord {
                index,
                error: format!(
                    "meta.{SAMPLE_WEIGHT_KEY}: set only by the server's sampler; remove it \
                     (or send the value under another key)"
                ),
            });
        } else if let Err(e) = stamp(&mut record, now, &state.rekeyer, &state.scrubber) {
            metrics::counter!("faultline_ingest_records_rejected_total", "reason" => e.reason())
                .increment(1);
            rejected.push(RejectedRecord {
                index,
                error: format!(
                    "{e} (counted after the server's changes: meta.user re-keyed to 18 \
                     characters, secret URL parameters replaced with [Filtered])"
                ),
            });
        } else {
            records.push(record);
        }
        index += 1;
    }
    if forbidden > 0 {
        metrics::counter!("faultline_ingest_records_rejected_total", "reason" => "forbidden_service")
            .increment(forbidden as u64);
        if records.is_empty() && invalid.is_empty() && rejected.len() == forbidden {
            return Err(ApiError::Forbidden(format!(
                "key {:?} may not write records for the services in this batch",
                key.name
            )));
        }
    }
    rejected.extend(invalid.into_iter().map(|r| RejectedRecord {
        index: r.index,
        error: r.error.to_string(),
    }));
    rejected.sort_by_key(|r| r.index);

    // Frames of minified code read as the original source, before anything looks at them.
    state
        .symbolicator
        .symbolicate(&mut records, Stage::Ingest)
        .await;
    // Grouping reads the symbolicated frames. Every error event gets its issue, whatever a
    // client sent in `issue`; other records carry none.
    for record in &mut records {
        record.issue = fingerprint::issue_of(record);
    }

    let accepted = records.len();
    let (records, sampled) = state.sampler.sample(records);
    // What the alert rules need, taken before the store takes the records (nothing is built
    // for records no rule looks at); handed over only once they are durable.
    let observed = state.alerts.observe(&records);
    let stored = records.len();
    let receipt = if records.is_empty() {
        Default::default()
    } else {
        state.store.write(records).await.map_err(store_error)?
    };
    if let Some(observed) = observed
        && receipt.duplicates < stored
    {
        state.alerts.submit(observed);
    }
    metrics::counter!("faultline_ingest_records_accepted_total").increment(accepted as u64);
    metrics::counter!("faultline_ingest_records_duplicate_total")
        .increment(receipt.duplicates as u64);
    Ok(IngestResponse {
        accepted,
        duplicates: receipt.duplicates,
        sampled,
        rejected,
    })
}

/// The ingest key for this request, checked against its origin if it is public.
fn authorize<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    query_key: Option<&str>,
) -> Result<&'a Key, ApiError> {
    let presented = presented_key(headers, query_key).ok_or_else(|| {
        ApiError::Unauthorized(
            "missing ingest key: send Authorization: Bearer <key>, X-Faultline-Key, or ?key="
                .into(),
        )
    })?;
    let key = state.keys.ingest_key(presented).ok_or_else(|| {
        ApiError::Unauthorized(
            "unknown ingest key: check the key configured for this service".into(),
        )
    })?;
    if key.kind == KeyKind::Public {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        match origin {
            Some(o) if key.origins.contains(o) => {}
            Some(o) => {
                return Err(ApiError::Forbidden(format!(
                    "origin {o:?} is not allowed for public key {:?}: add it to the key's origins",
                    key.name
                )));
            }
            None => {
                return Err(ApiError::Forbidden(format!(
                    "public key {:?} is for browsers on its configured origins; \
                     services must use a secret key",
                    key.name
                )));
            }
        }
    }
    Ok(key)
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let mime = ct
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ok = matches!(
        mime.as_str(),
        "application/json"
            | "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines"
            | "text/plain"
            | "text/x-ndjson"
            | "application/octet-stream"
    ) || (mime.starts_with("application/") && mime.ends_with("+json"));
    if ok {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "content type {mime:?} is not accepted: send application/json, \
             application/x-ndjson or text/plain"
        )))
    }
}

/// Reads the body, at most `limit` bytes, into one buffer that `lease` covers before it is
/// allocated or grown (sized by `Content-Length` when there is one).
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
    lease: &mut BodyLease,
    cost: &mut RequestCost<'_>,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::TooLarge(format!(
            "request body is larger than {limit} bytes: send smaller batches"
        ))
    };
    read_limited(
        headers,
        body,
        limit,
        lease,
        |n| cost.add_bytes(n as u64),
        too_large,
    )
    .await
    .map(Bytes::from)
}

/// Reads at most `limit` bytes of `body`, answering `too_large()` for a larger
/// `Content-Length` before reading anything or once the bytes pass it. Each buffer is
/// leased from the in-flight budget before it is allocated: sized by `Content-Length` when
/// there is one, else grown by doubling. `seen` is told each chunk's size as it arrives.
pub(crate) async fn read_limited(
    headers: &HeaderMap,
    mut body: Body,
    limit: u64,
    lease: &mut BodyLease,
    mut seen: impl FnMut(usize),
    too_large: impl Fn() -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut buf = Vec::new();
    if let Some(n) = declared.and_then(|n| usize::try_from(n).ok()) {
        lease.cover(n).map_err(no_room)?;
        buf.reserve_exact(n);
    }
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen(data.len());
        let len = buf.len() + data.len();
        if len > limit {
            return Err(too_large());
        }
        if len > buf.capacity() {
            let capacity = buf.capacity().saturating_mul(2).clamp(len, limit);
            lease.cover(capacity).map_err(no_room)?;
            buf.reserve_exact(capacity - buf.len());
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf)
}

/// A request the in-flight budget has no room for: 503 while other requests hold it, 413
/// when it needs more than the whole budget.
pub(crate) fn no_room(why: NoRoom) -> ApiError {
    match why {
        NoRoom::Now => ApiError::Unavailable {
            message: "the server holds as many requests as it may at once: retry after the \
                      Retry-After delay"
                .into(),
            retry_after: std::time::Duration::from_secs(1),
        },
        NoRoom::Ever => ApiError::TooLarge(
            "this request needs more memory than the server holds for all requests at once \
             (limits.max_in_flight_bytes): send smaller batches"
                .into(),
        ),
    }
}

/// Inflates gzip bodies (by header, or by magic bytes for sendBeacon, which cannot set
/// `Content-Encoding`), and `deflate` and `br` bodies by header, stopping at `limit` bytes;
/// `lease` covers the wire, the decoder's state and the output buffer before it is
/// allocated or grown, and afterwards the output buffer only.
pub(crate) async fn decompress(
    headers: &HeaderMap,
    wire: Bytes,
    limit: u64,
    mut lease: BodyLease,
    cost: &mut RequestCost<'_>,
) -> Result<(Bytes, BodyLease), ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let other = match encoding.as_deref() {
        None if wire.starts_with(&[0x1f, 0x8b]) => None,
        None | Some("" | "identity") => return Ok((wire, lease)),
        Some("gzip" | "x-gzip") => None,
        Some("deflate") => Some(Encoding::Deflate),
        Some("br") => Some(Encoding::Brotli),
        Some(other) => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "content encoding {other:?} is not accepted: send gzip, deflate, br or no \
                 encoding"
            )));
        }
    };
    let inflate = move || {
        // The wire and the decoder's state stay until the output is whole.
        let held = wire
            .len()
            .saturating_add(other.map_or(0, |e| e.state_bytes(&wire)));
        let room = |n: usize| lease.cover(held.saturating_add(n)).is_ok();
        let result = match other {
            None => inflate_gzip_within(&wire, limit, room),
            Some(encoding) => inflate_within(encoding, &wire, limit, room),
        };
        drop(wire);
        if let Ok(out) = &result {
            lease.shrink_to(out.capacity());
        }
        (result, lease)
    };
    let (result, lease) = tokio::task::spawn_blocking(inflate)
        .await
        .map_err(|e| ApiError::Internal(format!("inflate task failed: {e}")))?;
    match result {
        Ok(out) => {
            cost.add_bytes(out.len() as u64);
            Ok((Bytes::from(out), lease))
        }
        Err(e @ InflateError::TooLarge { .. }) => {
            cost.add_bytes(limit);
            Err(ApiError::TooLarge(e.to_string()))
        }
        Err(e @ (InflateError::Invalid(_) | InflateError::InvalidAs(..))) => {
            Err(ApiError::bad_request(e.to_string()))
        }
        Err(InflateError::NoRoom) => Err(no_room(NoRoom::Now)),
    }
}

/// Server-side stamping: an id for idempotent storage, `received_at`, re-keyed `meta.user`,
/// and URL credentials and secret parameters taken out of the message and every string of
/// `meta` (`[privacy]`).
///
/// Both may make the record longer than what `decode_batch` checked (`"user": ""` becomes
/// 18 characters, `?key=1` becomes `?key=[Filtered]`), so a record that grew is checked
/// again: one that no longer fits is refused here, never acknowledged and then unreadable.
fn stamp(
    record: &mut Record,
    now: Timestamp,
    rekeyer: &UserRekeyer,
    scrubber: &UrlScrubber,
) -> Result<(), InvalidRecord> {
    if record.id.is_none() {
        record.id = Some(Uuid::now_v7());
    }
    record.received_at = Some(now);
    let mut grew = false;
    if let Some(Value::String(user)) = record.meta.get_mut("user") {
        let rekeyed = rekeyer.rekey(user);
        // A re-keyed id is plain hex, so it is no longer as JSON unless it has more bytes.
        grew = rekeyed.len() > user.len();
        *user = rekeyed;
    }
    grew |= scrubber.scrub_record(record);
    if grew {
        // Truncates a message that grew; refuses a `meta` that did.
        record.validate()?;
    }
    Ok(())
}

fn store_error(e: StoreError) -> ApiError {
    use std::time::Duration;
    match e {
        StoreError::Overloaded => ApiError::Unavailable {
            message: "ingest queue is full: retry after the Retry-After delay".into(),
            retry_after: Duration::from_secs(1),
        },
        StoreError::Closed => ApiError::Unavailable {
            message: "server is shutting down: retry shortly".into(),
            retry_after: Duration::from_secs(2),
        },
        // The writer logged the path and the error; the client learns only what to do.
        StoreError::DiskFull(_) => ApiError::Unavailable {
            message: "the server's disk is full, nothing was stored: retry after the \
                      Retry-After delay"
                .into(),
            retry_after: Duration::from_secs(5),
        },
        StoreError::Unavailable(detail) => {
            tracing::error!(%detail, "store unavailable");
            ApiError::Unavailable {
                message: "store is unavailable, nothing was stored: retry after the \
                          Retry-After delay"
                    .into(),
                retry_after: Duration::from_secs(5),
            }
        }
        StoreError::Io(e) => ApiError::Internal(e.to_string()),
    }
}
