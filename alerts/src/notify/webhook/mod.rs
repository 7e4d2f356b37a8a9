//! The generic webhook: its config, and the sender (`send.rs`).

mod send;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use send::Webhook;

use super::delivery::{DeliveryConfig, OtherFields};
use crate::error::{AlertConfigError, err, is_http_url};

/// `kind = "webhook"`: a POST of the notification's JSON body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WebhookConfig {
    /// The URL, when it holds no secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The environment variable holding the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// A file holding the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// The environment variable holding a bearer token sent as `Authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
    /// A file holding that bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// Retries, timeout, events.
    #[serde(flatten)]
    pub delivery: DeliveryConfig,
    /// Fields a webhook channel does not read (an error).
    #[serde(flatten)]
    pub other: OtherFields,
}

impl WebhookConfig {
    pub(crate) const FIELDS: &[&str] = &[
        "url",
        "url_env",
        "url_file",
        "bearer_token_env",
        "bearer_token_file",
    ];

    pub(crate) fn check(&self, at: &str) -> Result<(), AlertConfigError> {
        let sources = [
            self.url.is_some(),
            self.url_env.is_some(),
            self.url_file.is_some(),
        ];
        if sources.iter().filter(|set| **set).count() != 1 {
            return Err(err(
                at,
                Some("url_env"),
                "give exactly one of url, url_env or url_file",
            ));
        }
        if let Some(url) = &self.url
            && !is_http_url(url)
        {
            return Err(err(at, Some("url"), "must start with http:// or https://"));
        }
        if self.bearer_token_env.is_some() && self.bearer_token_file.is_some() {
            return Err(err(
                at,
                Some("bearer_token_env"),
                "give bearer_token_env or bearer_token_file, not both",
            ));
        }
        Ok(())
    }
}
