//! `GET /notices?user=u_…`: the notices for one user, for that user's own page (the
//! reporter's `onNotice`, `<InlineNotice>`), with an ingest key instead of the admin token.
//!
//! The page asks with the anonymized id its records carry in `meta.user` (the raw id never
//! leaves it); the server re-keys it as ingest does and reads that id's alerts only
//! (`faultline_alerts::UserNotice`): no listing, no other user's, and the stored id is not
//! in the answer. A public key is checked as on `POST /logs/ingest` (its origins), sees only
//! rules that count the services it may write, and each request costs one token of its rate
//! limit (and of its client address's), so a page cannot sweep ids faster than it could
//! send records.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use faultline_alerts::{UserNotice, UserNoticeQuery};
use faultline_schema::is_anonymized_user;
use serde::Serialize;

use super::alerts::stopped;
use crate::app_state::AppState;
use crate::auth::ClientAddr;
use crate::error::ApiError;
use crate::ingest::admit_key;
use crate::request_cost::RequestCost;

/// The `GET /notices` body.
#[derive(Debug, Serialize)]
pub(crate) struct NoticesView {
    /// The user's notices now; empty when there are none.
    pub notices: Vec<UserNotice>,
}

/// `GET /notices?user=u_…` (`key` may come in the query too, as for ingest).
pub(crate) async fn for_user(
    State(state): State<AppState>,
    client: ClientAddr,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Json<NoticesView>, ApiError> {
    let mut params = HashMap::new();
    for (name, value) in pairs {
        if name != "user" && name != "key" {
            return Err(ApiError::bad_request(format!(
                "{name}: unknown parameter (GET /notices takes user and key)"
            )));
        }
        if params.insert(name.clone(), value).is_some() {
            return Err(ApiError::bad_request(format!("{name}: given twice")));
        }
    }
    let mut cost = RequestCost::new(&state.config.limits, client.0);
    let key = admit_key(
        &state,
        &headers,
        params.get("key").map(String::as_str),
        &mut cost,
    )?;
    let result = async {
        let user = params
            .get("user")
            .ok_or_else(|| ApiError::bad_request("user: required (the page's meta.user)"))?;
        if !is_anonymized_user(user) {
            // Not echoed: it may be a raw id sent by mistake.
            return Err(ApiError::bad_request(
                "user: not an anonymized user id (\"u_\" and 16 lowercase hex characters, \
                 what the reporter sends in meta.user); never send a raw id",
            ));
        }
        cost.take(1)?;
        let query = UserNoticeQuery {
            stored: state.rekeyer.rekey(user),
            shown: user.clone(),
            services: key.services.as_ref().map(|s| s.iter().cloned().collect()),
        };
        let notices = state.alerts.user_notices(query).await.map_err(stopped)?;
        Ok(Json(NoticesView { notices }))
    }
    .await;
    cost.settle(result)
}
