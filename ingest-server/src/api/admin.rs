//! [`Admin`]: the admin token, checked before a read handler runs. An ingest key gets 403,
//! nothing or an unknown token 401.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use crate::app_state::AppState;
use crate::auth::presented_key;
use crate::error::ApiError;

/// Proof that the request carries the admin token in a header (`Authorization: Bearer` or
/// `X-Faultline-Key`). Take it as a handler argument and the handler runs only for the
/// admin; take `Option<Admin>` to answer everyone and the admin with more.
///
/// Never from `?key=`: a URL ends up in proxy and access logs, browser history and
/// `Referer` headers, and the token reads every record. (Ingest keys may still come as
/// `?key=`, which `sendBeacon` needs; they can only write.)
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
        let Some(presented) = presented_key(&parts.headers, None) else {
            let in_query = parts
                .uri
                .query()
                .is_some_and(|q| q.split('&').any(|p| p.starts_with("key=")));
            return Err(ApiError::Unauthorized(if in_query {
                "the admin token is not accepted as ?key= (URLs end up in logs): send \
                 Authorization: Bearer <admin token>"
                    .into()
            } else {
                "missing admin token: send Authorization: Bearer <admin token>".into()
            }));
        };
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

impl OptionalFromRequestParts<AppState> for Admin {
    type Rejection = std::convert::Infallible;

    /// `Some` for the admin token in a header, `None` for anything else (no token, a wrong
    /// one, an ingest key): for open endpoints that tell the admin more.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Admin>, Self::Rejection> {
        Ok(presented_key(&parts.headers, None)
            .filter(|k| state.keys.is_admin(k))
            .map(|_| Admin))
    }
}
