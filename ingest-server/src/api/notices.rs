//! `POST /notices` with `{"user": "u_…"}`: the notices for one user, for that user's own
//! page (the reporter's `onNotice`, `<InlineNotice>`), with an ingest key instead of the
//! admin token.
//!
//! The page asks with the anonymized id its records carry in `meta.user` (the raw id never
//! leaves it); the server re-keys it as ingest does and reads that id's alerts only
//! (`faultline_alerts::UserNotice`): no listing, no other user's, and the stored id is not
//! in the answer. A public key is checked as on `POST /logs/ingest` (its origins), sees only
//! rules that count the services it may write, and each request costs one token of its rate
//! limit (and of its client address's), so a page cannot sweep ids faster than it could
//! send records.
//!
//! A `POST`, not a `GET`: browsers send `Origin` (which a public key is checked against)
//! on every `POST` but not on a same-origin `GET`, and the id stays out of URLs and access
//! logs. The body may come as `text/plain`, so a cross-origin page needs no preflight.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use faultline_alerts::{UserNotice, UserNoticeQuery};
use faultline_schema::is_anonymized_user;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use super::alerts::stopped;
use crate::app_state::AppState;
use crate::auth::ClientAddr;
use crate::error::ApiError;
use crate::ingest::admit_key;
use crate::request_cost::RequestCost;

/// The largest body read: `{"user": "u_0123456789abcdef"}` is 31 bytes.
const MAX_BODY_BYTES: usize = 1024;

/// The `POST /notices` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoticesRequest {
    /// The page's anonymized user id (`meta.user` as the reporter sends it).
    user: String,
}

/// The `POST /notices` answer.
#[derive(Debug, Serialize)]
pub(crate) struct NoticesView {
    /// The user's notices now; empty when there are none.
    pub notices: Vec<UserNotice>,
}

/// `POST /notices` (the key may come as `?key=`, as for ingest).
pub(crate) async fn for_user(
    State(state): State<AppState>,
    client: ClientAddr,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<NoticesView>, ApiError> {
    let mut cost = RequestCost::new(&state.config.limits, client.0);
    let key = admit_key(
        &state,
        &headers,
        params.get("key").map(String::as_str),
        &mut cost,
    )?;
    let result = async {
        let body = to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
            ApiError::TooLarge(format!(
                "a notices request is at most {MAX_BODY_BYTES} bytes: {{\"user\": \"u_...\"}}"
            ))
        })?;
        let request: NoticesRequest = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "body: {e}: send {{\"user\": \"u_...\"}} (the page's meta.user)"
            ))
        })?;
        let user = request.user;
        if !is_anonymized_user(&user) {
            // Not echoed: it may be a raw id sent by mistake.
            return Err(ApiError::bad_request(
                "user: not an anonymized user id (\"u_\" and 16 lowercase hex characters, \
                 what the reporter sends in meta.user); never send a raw id",
            ));
        }
        cost.take(1)?;
        let query = UserNoticeQuery {
            stored: state.rekeyer.rekey(&user),
            shown: user,
            services: key.services.as_ref().map(|s| s.iter().cloned().collect()),
        };
        let notices = state.alerts.user_notices(query).await.map_err(stopped)?;
        Ok(Json(NoticesView { notices }))
    }
    .await;
    cost.settle(result)
}
