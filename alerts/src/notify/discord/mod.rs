//! A Discord webhook (execute webhook): its config, and the sender (`send.rs`).

mod send;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use send::Discord;

use super::delivery::{DeliveryConfig, OtherFields};
use crate::error::{AlertConfigError, check_url_source, err, is_http_url};

/// `kind = "discord"`. The webhook URL holds its token, so it is a secret: only the
/// variable or file holding it is written in the config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DiscordConfig {
    /// The environment variable holding the webhook URL
    /// (`https://discord.com/api/webhooks/ID/TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// A file holding the webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// The name shown as the sender instead of the webhook's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The sender's avatar instead of the webhook's own (an `http(s)://` URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// Retries, timeout, events, template.
    #[serde(flatten)]
    pub delivery: DeliveryConfig,
    /// Fields a Discord channel does not read (an error).
    #[serde(flatten)]
    pub other: OtherFields,
}

impl DiscordConfig {
    pub(crate) const FIELDS: &[&str] = &["url_env", "url_file", "username", "avatar_url"];

    pub(crate) fn check(&self, at: &str) -> Result<(), AlertConfigError> {
        check_url_source(at, self.url_env.is_some(), self.url_file.is_some())?;
        if self.username.as_ref().is_some_and(|u| {
            let n = u.chars().count();
            n == 0 || n > 80
        }) {
            return Err(err(at, Some("username"), "1 to 80 characters"));
        }
        if let Some(url) = &self.avatar_url
            && !is_http_url(url)
        {
            return Err(err(
                at,
                Some("avatar_url"),
                "must start with http:// or https://",
            ));
        }
        Ok(())
    }
}
