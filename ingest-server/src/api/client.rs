//! [`ClientAddr`] taken from a request: the address its key ring believes (the connection's
//! peer, or `X-Forwarded-For` behind a trusted proxy). The extractor lives with the API, not
//! beside the type in `auth.rs`, which the state it reads is built from.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::app_state::AppState;
use crate::auth::ClientAddr;

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| state.keys.client_address(peer.ip(), &parts.headers)),
        ))
    }
}
