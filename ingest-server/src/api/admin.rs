//! [`Admin`]: the admin token, checked before a read handler runs. An ingest key gets 403,
//! nothing or an unknown token 401.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;

use crate::app_state::AppState;
use crate::auth::presented_key;
use crate::error::ApiError;

/// Proof that the request carries the admin token (`Authorization: Bearer`, `X-Faultline-Key`
/// or `?key=`). Take it as a handler argument and the handler runs only for the admin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        // A query that does not parse carries no key; the handler's own `Query` says why.
        let params = Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
            .map(|Query(p)| p)
            .unwrap_or_default();
        let presented = presented_key(&parts.headers, params.get("key").map(String::as_str))
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "missing admin token: send Authorization: Bearer <admin token>".into(),
                )
            })?;
        if state.keys.is_admin(presented) {
            Ok(Admin)
        } else if state.keys.ingest_key(presented).is_some() {
            Err(ApiError::Forbidden(
                "ingest keys can only write: reading needs the admin token".into(),
            ))
        } else {
            Err(ApiError::Unauthorized("unknown admin token".into()))
        }
    }
}
