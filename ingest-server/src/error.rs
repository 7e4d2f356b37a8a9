//! The HTTP edge's errors: one `IntoResponse` that picks the status telling a client what to
//! do. 5xx are logged as errors, 4xx at debug; internal detail never reaches the client.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Everything a handler can answer with instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; retrying it unchanged will not help.
    #[error("{message}")]
    BadRequest {
        /// What was wrong and what to send instead.
        message: String,
        /// Machine-readable context (parser position, the limit).
        detail: Option<Value>,
    },
    /// 401: no key, or one the server does not know.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a known key that may not do this (service, origin, or an ingest key on a read).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such route.
    #[error("no such endpoint: see the HTTP API in the README")]
    NotFound,
    /// 408: the request took longer than the configured deadline.
    #[error("request timed out: send the whole body within {0:?}")]
    Timeout(Duration),
    /// 413: too large before or after decompression, or too many records.
    #[error("{0}")]
    TooLarge(String),
    /// 415: a content type or encoding the server does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: the key's rate limit, or its limit for one client address; retry after the
    /// given time.
    #[error(
        "rate limit of key {key:?}{} exceeded: retry after the Retry-After delay",
        if *.per_client { " for this client address" } else { "" }
    )]
    RateLimited {
        /// The key's name.
        key: String,
        /// Whether the client address's bucket refused (a public key's
        /// `limits.public_client_rate`) rather than the key's own.
        per_client: bool,
        /// When enough tokens will be available.
        retry_after: Duration,
    },
    /// 429: the key's daily record quota is used up; retry at the next UTC day.
    #[error(
        "daily quota of key {key:?} ({quota} records) used up, or this batch would pass it: \
         retry after the Retry-After delay (the next UTC day)"
    )]
    QuotaExceeded {
        /// The key's name.
        key: String,
        /// Its quota, records per UTC day.
        quota: u64,
        /// Until the next UTC midnight.
        retry_after: Duration,
    },
    /// 503: the store is full, down or shutting down; retry after the given time.
    #[error("{message}")]
    Unavailable {
        /// What is going on.
        message: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// 500: a bug or an unexpected failure; the detail is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// A 400 with just a message.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            message: message.into(),
            detail: None,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } | ApiError::QuotaExceeded { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::Timeout(_) => "timeout",
            ApiError::TooLarge(_) => "too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::QuotaExceeded { .. } => "quota_exceeded",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            match &self {
                ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
                other => tracing::error!(error = %other, "request failed"),
            }
        } else {
            tracing::debug!(status = status.as_u16(), error = %self, "request rejected");
        }
        let retry_after = match &self {
            ApiError::RateLimited { retry_after, .. }
            | ApiError::QuotaExceeded { retry_after, .. }
            | ApiError::Unavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let detail = match &self {
            ApiError::BadRequest { detail, .. } => detail.clone().unwrap_or(Value::Null),
            _ => retry_after.map_or(Value::Null, |d| json!({ "retry_after_seconds": secs(d) })),
        };
        let mut response = (
            status,
            Json(json!({ "error": self.to_string(), "detail": detail })),
        )
            .into_response();
        if let Some(d) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs(d)));
        }
        response
    }
}

/// Whole seconds, rounded up, at least 1 (`Retry-After: 0` invites a hot loop).
fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0).max(u64::from(d.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(secs(Duration::ZERO), 1);
        assert_eq!(secs(Duration::from_millis(10)), 1);
        assert_eq!(secs(Duration::from_millis(1500)), 2);
        assert_eq!(secs(Duration::from_secs(3)), 3);
    }

    #[test]
    fn internal_detail_is_not_sent() {
        let r = ApiError::Internal("disk /dev/sda1 exploded".into()).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
