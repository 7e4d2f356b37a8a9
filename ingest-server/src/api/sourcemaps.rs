//! `/sourcemaps`: uploading, listing and deleting each release's source maps.
//!
//! - `PUT /sourcemaps/{release}?url=URL`: the body is one map (JSON, gzip accepted), stored
//!   for the minified file served at `URL` (absolute, or `~/path` for any scheme and host),
//!   replacing the release's map for that URL. 201 with what was stored; 400 when the map
//!   does not parse (the parser's reason) or the release or URL breaks the rules
//!   (`faultline_symbolicate::check_release`, `check_url`); 413 past
//!   `sourcemaps.max_file_bytes` (from `Content-Length` before anything is read, and while
//!   reading and inflating) or `sourcemaps.max_release_bytes`.
//! - `GET /sourcemaps/{release}`: the release's maps; `GET /sourcemaps`: every release.
//! - `DELETE /sourcemaps/{release}`: deletes its maps.
//!
//! Every route takes [`Uploader`]: the admin token, or a secret key with `sourcemaps = true`.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use faultline_schema::Timestamp;
use faultline_store::{SourceMapError, SourceMapUpload};
use faultline_symbolicate::{SourceMap, check_release, check_url};
use serde::Serialize;

use crate::app_state::AppState;
use crate::auth::presented_key;
use crate::body_budget::BodyLease;
use crate::error::ApiError;
use crate::inflate::{InflateError, inflate_gzip_within};
use crate::ingest::{no_room, read_limited};

/// Proof that the request may manage source maps: the admin token, or a secret ingest key
/// configured with `sourcemaps = true`, in a header (never `?key=`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Uploader;

impl FromRequestParts<AppState> for Uploader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Uploader, ApiError> {
        let Some(presented) = presented_key(&parts.headers, None) else {
            return Err(ApiError::Unauthorized(
                "missing token: send Authorization: Bearer <admin token, or a secret key \
                 with sourcemaps = true>"
                    .into(),
            ));
        };
        if state.keys.is_admin(presented) {
            return Ok(Uploader);
        }
        match state.keys.ingest_key(presented) {
            Some(key) if key.sourcemaps => Ok(Uploader),
            Some(key) => Err(ApiError::Forbidden(format!(
                "key {:?} may not manage source maps: use the admin token, or a secret key \
                 with sourcemaps = true",
                key.name
            ))),
            None => Err(ApiError::Unauthorized("unknown token".into())),
        }
    }
}

/// The 201 body of an upload.
#[derive(Debug, Serialize)]
pub(crate) struct Uploaded {
    release: String,
    url: String,
    bytes: u64,
    sources: u32,
    sources_content: bool,
}

/// One map in `GET /sourcemaps/{release}`.
#[derive(Debug, Serialize)]
pub(crate) struct FileView {
    url: String,
    bytes: u64,
    sources: u32,
    sources_content: bool,
    uploaded_at: Timestamp,
}

/// `GET /sourcemaps/{release}`.
#[derive(Debug, Serialize)]
pub(crate) struct ReleaseView {
    release: String,
    bytes: u64,
    files: Vec<FileView>,
}

/// One release in `GET /sourcemaps`.
#[derive(Debug, Serialize)]
pub(crate) struct ReleaseSummaryView {
    release: String,
    files: usize,
    bytes: u64,
    uploaded_at: Timestamp,
    last_used: Timestamp,
}

/// `GET /sourcemaps`.
#[derive(Debug, Serialize)]
pub(crate) struct ReleasesView {
    releases: Vec<ReleaseSummaryView>,
}

/// `DELETE /sourcemaps/{release}`.
#[derive(Debug, Serialize)]
pub(crate) struct Deleted {
    deleted: usize,
}

fn valid_release(release: &str) -> Result<(), ApiError> {
    check_release(release).map_err(ApiError::bad_request)
}

fn store_error(e: SourceMapError) -> ApiError {
    match e {
        e @ SourceMapError::ReleaseFull { .. } => ApiError::TooLarge(e.to_string()),
        SourceMapError::Unavailable(detail) => {
            tracing::error!(%detail, "source map store unavailable");
            ApiError::Unavailable {
                message: "the source map store is unavailable, nothing changed: retry after \
                          the Retry-After delay"
                    .into(),
                retry_after: std::time::Duration::from_secs(5),
            }
        }
    }
}

/// `PUT /sourcemaps/{release}?url=URL`.
pub(crate) async fn upload(
    State(state): State<AppState>,
    _: Uploader,
    Path(release): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    valid_release(&release)?;
    if let Some(other) = params.keys().find(|k| k.as_str() != "url") {
        return Err(ApiError::bad_request(format!(
            "unknown parameter {other:?}: only url is accepted"
        )));
    }
    let url = params.get("url").map_or("", String::as_str);
    check_url(url).map_err(ApiError::bad_request)?;
    let limit = state.config.sourcemaps.max_file_bytes;
    let mut lease = state.bodies.lease();
    let wire = read_limited(
        &headers,
        body,
        limit,
        &mut lease,
        |_| {},
        || too_large(limit),
    )
    .await?;
    let map = inflate(&headers, wire, limit, lease).await?;
    let (map, summary) = tokio::task::spawn_blocking(move || {
        let parsed = SourceMap::parse(&map).map(|m| m.summary());
        (map, parsed)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("source map parse task failed: {e}")))?;
    let summary = summary
        .map_err(|e| ApiError::bad_request(format!("the source map does not parse: {e}")))?;
    let stored = state
        .symbolicator
        .store()
        .put(
            SourceMapUpload {
                release: release.clone(),
                url: url.to_owned(),
                map,
                sources: summary.sources,
                sources_content: summary.sources_content,
            },
            state.config.sourcemaps.max_release_bytes,
        )
        .await
        .map_err(store_error)?;
    state.symbolicator.invalidate(&release);
    metrics::counter!("faultline_sourcemaps_uploaded_total").increment(1);
    metrics::counter!("faultline_sourcemaps_uploaded_bytes_total").increment(stored.bytes);
    Ok((
        StatusCode::CREATED,
        Json(Uploaded {
            release,
            url: stored.url,
            bytes: stored.bytes,
            sources: stored.sources,
            sources_content: stored.sources_content,
        }),
    ))
}

/// `GET /sourcemaps/{release}`: its maps (none is an empty list).
pub(crate) async fn release(
    State(state): State<AppState>,
    _: Uploader,
    Path(release): Path<String>,
) -> Result<Json<ReleaseView>, ApiError> {
    valid_release(&release)?;
    let maps = state
        .symbolicator
        .store()
        .release(&release)
        .await
        .map_err(store_error)?;
    let (bytes, files) = maps.map_or((0, Vec::new()), |m| {
        (
            m.bytes(),
            m.files
                .into_iter()
                .map(|f| FileView {
                    url: f.url,
                    bytes: f.bytes,
                    sources: f.sources,
                    sources_content: f.sources_content,
                    uploaded_at: f.uploaded_at,
                })
                .collect(),
        )
    });
    Ok(Json(ReleaseView {
        release,
        bytes,
        files,
    }))
}

/// `GET /sourcemaps`: every release with maps, newest upload first.
pub(crate) async fn releases(
    State(state): State<AppState>,
    _: Uploader,
) -> Result<Json<ReleasesView>, ApiError> {
    let list = state
        .symbolicator
        .store()
        .releases()
        .await
        .map_err(store_error)?;
    Ok(Json(ReleasesView {
        releases: list
            .into_iter()
            .map(|r| ReleaseSummaryView {
                release: r.release,
                files: r.files,
                bytes: r.bytes,
                uploaded_at: r.uploaded_at,
                last_used: r.last_used,
            })
            .collect(),
    }))
}

/// `DELETE /sourcemaps/{release}`.
pub(crate) async fn delete(
    State(state): State<AppState>,
    _: Uploader,
    Path(release): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    valid_release(&release)?;
    let deleted = state
        .symbolicator
        .store()
        .delete(&release)
        .await
        .map_err(store_error)?;
    state.symbolicator.invalidate(&release);
    Ok(Json(Deleted { deleted }))
}

fn too_large(limit: u64) -> ApiError {
    ApiError::TooLarge(format!(
        "the source map is larger than {limit} bytes (sourcemaps.max_file_bytes)"
    ))
}

/// Inflates a gzip body (by `Content-Encoding` or its magic bytes) up to `limit`.
async fn inflate(
    headers: &HeaderMap,
    wire: Vec<u8>,
    limit: u64,
    mut lease: BodyLease,
) -> Result<Vec<u8>, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let gzip = match encoding.as_deref() {
        None => wire.starts_with(&[0x1f, 0x8b]),
        Some("" | "identity") => false,
        Some("gzip" | "x-gzip") => true,
        Some(other) => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "content encoding {other:?} is not accepted: send gzip or no encoding"
            )));
        }
    };
    if !gzip {
        return Ok(wire);
    }
    let result = tokio::task::spawn_blocking(move || {
        let on_wire = wire.len();
        let out = inflate_gzip_within(&wire, limit, |n| {
            lease.cover(on_wire.saturating_add(n)).is_ok()
        });
        drop(lease);
        out
    })
    .await
    .map_err(|e| ApiError::Internal(format!("gzip task failed: {e}")))?;
    match result {
        Ok(out) => Ok(out),
        Err(InflateError::TooLarge { .. }) => Err(too_large(limit)),
        Err(e @ (InflateError::Invalid(_) | InflateError::InvalidAs(..))) => {
            Err(ApiError::bad_request(e.to_string()))
        }
        Err(InflateError::NoRoom) => Err(no_room(crate::body_budget::NoRoom::Now)),
    }
}
