//! `POST /v1/logs`: OpenTelemetry logs over OTLP/HTTP, in protobuf
//! (`application/x-protobuf`) or JSON (`application/json`).
//!
//! A request goes through the same gate as `/logs/ingest` (`ingest::admit`: key, rate
//! limit, body size, gzip with its inflation limit, the in-flight budget), its
//! `ExportLogsServiceRequest` is counted (`count.rs`: log records, groups and attributes,
//! 413 past their limits, before anything is allocated) and decoded (`proto.rs`,
//! `json.rs`), every `LogRecord` becomes a record (`map.rs`) and is
//! checked by the schema's rules, and the good ones take the path of any ingested record
//! (`ingest::store`: the key's services, stamping, re-keyed `meta.user`, sampling, the rate
//! limit, the durable write) before the answer goes out. The decoding is `otlp/`.
//!
//! Answers follow the OTLP/HTTP specification, in the request's encoding: 200 with an
//! `ExportLogsServiceResponse`, whose `partial_success` counts and explains rejected
//! records when there are some; otherwise the status tells the exporter what to do (400 for
//! data it must not resend, including a request none of whose records could be taken; 429
//! and 503 with `Retry-After` for data it should resend; 413 too large) with a
//! `google.rpc.Status` body.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use faultline_schema::Timestamp;
use prost::Message as _;

use crate::app_state::AppState;
use crate::auth::ClientAddr;
use crate::body_budget::BodyLease;
use crate::error::ApiError;
use crate::ingest::{self, IngestResponse};
use crate::otlp::count::{self, Bounds, CountError, Counts};
use crate::otlp::proto::{
    self, ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use crate::otlp::{json, map};
use crate::request_cost::RequestCost;

/// How many rejected records a `partial_success.error_message` describes one by one.
const DESCRIBED_REJECTIONS: usize = 5;

/// The two OTLP/HTTP encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn of(headers: &HeaderMap) -> Option<Encoding> {
        let mime = headers
            .get(header::CONTENT_TYPE)?
            .to_str()
            .ok()?
            .split(';')
            .next()?
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        })
    }
}

/// The handler.
pub(crate) async fn logs(
    State(state): State<AppState>,
    client: ClientAddr,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // An unreadable content type is answered in JSON: the error then at least reads.
    let encoding = Encoding::of(&headers).unwrap_or(Encoding::Json);
    let exported = export(&state, client, &params, &headers, body);
    match ingest::measured(StatusCode::OK, exported).await {
        Ok(response) => encode(StatusCode::OK, encoding, &response, json::response),
        Err(e) => failure(e, encoding),
    }
}

async fn export(
    state: &AppState,
    client: ClientAddr,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<ExportLogsServiceResponse, ApiError> {
    let mut cost = RequestCost::new(&state.config.limits, client.0);
    let result = async {
        let admitted = ingest::admit(
            state,
            headers,
            params.get("key").map(String::as_str),
            body,
            |h| {
                Encoding::of(h).ok_or_else(|| {
                    ApiError::UnsupportedMediaType(
                        "OTLP/HTTP bodies are application/x-protobuf or application/json: \
                         set Content-Type to one of them"
                            .into(),
                    )
                })
            },
            &mut cost,
        )
        .await?;
        let limits = &state.config.limits;
        let bounds = Bounds {
            records: limits.max_batch_records,
            attributes: limits.max_batch_attributes,
        };
        let mut lease = admitted.lease;
        let decoded = decode(admitted.kind, &admitted.body, bounds, &mut lease);
        // The request holds its records from here; its lease stays until the end.
        drop(admitted.body);
        let request = decoded.map_err(|(error, counts)| {
            cost.counted_records(counts.records);
            error
        })?;
        let total = map::count(&request);
        let mapped = map::map(request, Timestamp::now());
        let response = ingest::store(
            state,
            admitted.key,
            mapped.records,
            mapped.rejected,
            &mut cost,
        )
        .await?;
        drop(lease);
        if total > 0 && response.accepted == 0 {
            return Err(ApiError::bad_request(describe(&response, total)));
        }
        let partial_success = (!response.rejected.is_empty()).then(|| ExportLogsPartialSuccess {
            rejected_log_records: i64::try_from(response.rejected.len()).unwrap_or(i64::MAX),
            error_message: describe(&response, total),
        });
        Ok(ExportLogsServiceResponse { partial_success })
    }
    .await;
    cost.settle(result)
}

/// Counts the request within `bounds` (413 past them), has `lease` cover what it will take
/// decoded and mapped to records (503 or 413 without room), then decodes it (400 when it
/// is not the encoding it claims). On failure, also what was counted.
fn decode(
    encoding: Encoding,
    body: &[u8],
    bounds: Bounds,
    lease: &mut BodyLease,
) -> Result<ExportLogsServiceRequest, (ApiError, Counts)> {
    let (counted, decoded) = match encoding {
        Encoding::Protobuf => (
            count::count_protobuf(body, bounds),
            "a protobuf ExportLogsServiceRequest",
        ),
        Encoding::Json => (
            count::count_json(body, bounds),
            "an OTLP/JSON ExportLogsServiceRequest",
        ),
    };
    let malformed =
        |e: &dyn std::fmt::Display| ApiError::bad_request(format!("body is not {decoded}: {e}"));
    let counts = match counted {
        Ok(counts) => counts,
        Err(CountError::TooMany(too_many, counts)) => {
            return Err((ApiError::TooLarge(too_many.to_string()), counts));
        }
        Err(CountError::Malformed(why)) => return Err((malformed(&why), Counts::default())),
    };
    let needed = lease
        .held()
        .saturating_add(counts.decoded_bytes(body.len()));
    lease
        .cover(needed)
        .map_err(|why| (ingest::no_room(why), counts))?;
    let request = match encoding {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(body).map_err(|e| malformed(&e)),
        Encoding::Json => serde_json::from_slice(body).map_err(|e| malformed(&e)),
    };
    request.map_err(|e| (e, counts))
}

/// What was rejected and why, for an exporter's log: the count and the first few records.
fn describe(response: &IngestResponse, total: usize) -> String {
    let mut text = format!(
        "{} of {total} log records rejected",
        response.rejected.len()
    );
    for (i, r) in response.rejected.iter().enumerate() {
        if i == DESCRIBED_REJECTIONS {
            text.push_str("; ...");
            break;
        }
        let _ = write!(text, "; record {}: {}", r.index, r.error);
    }
    text
}

/// A body in the request's encoding.
fn encode<M: prost::Message>(
    status: StatusCode,
    encoding: Encoding,
    message: &M,
    as_json: impl FnOnce(&M) -> serde_json::Value,
) -> Response {
    let body = match encoding {
        Encoding::Protobuf => message.encode_to_vec(),
        Encoding::Json => as_json(message).to_string().into_bytes(),
    };
    (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response()
}

/// An error as OTLP/HTTP wants it: the status (and `Retry-After`) the server gives any
/// client, with a `google.rpc.Status` body in the request's encoding.
fn failure(error: ApiError, encoding: Encoding) -> Response {
    let status = proto::Status {
        code: grpc_code(error.status()),
        message: error.to_string(),
    };
    // The common path logs the error and sets the status and Retry-After.
    let common = error.into_response();
    let mut response = encode(
        common.status(),
        encoding,
        &status,
        |s| serde_json::json!({ "code": s.code, "message": s.message }),
    );
    if let Some(retry_after) = common.headers().get(header::RETRY_AFTER) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after.clone());
    }
    response
}

/// The `google.rpc.Code` closest to an HTTP status, as gRPC's HTTP mapping has it.
fn grpc_code(status: StatusCode) -> i32 {
    match status.as_u16() {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        404 => 5,             // NOT_FOUND
        408 => 4,             // DEADLINE_EXCEEDED
        429 => 8,             // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 13,              // INTERNAL
    }
}
