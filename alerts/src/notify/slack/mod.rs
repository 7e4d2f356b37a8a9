//! A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): its config, and
//! the sender (`send.rs`).

mod send;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use send::Slack;

use super::delivery::{DeliveryConfig, OtherFields};
use crate::error::{AlertConfigError, check_url_source};

/// `kind = "slack"`. The webhook URL is a secret: only the variable or file holding it is
/// written in the config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SlackConfig {
    /// The environment variable holding the webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// A file holding the webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// Post to this channel instead of the webhook's own (`#ops`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The name shown as the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The sender's icon (`:rotating_light:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_emoji: Option<String>,
    /// Retries, timeout, events.
    #[serde(flatten)]
    pub delivery: DeliveryConfig,
    /// Fields a Slack channel does not read (an error).
    #[serde(flatten)]
    pub other: OtherFields,
}

impl SlackConfig {
    pub(crate) const FIELDS: &[&str] =
        &["url_env", "url_file", "channel", "username", "icon_emoji"];

    pub(crate) fn check(&self, at: &str) -> Result<(), AlertConfigError> {
        check_url_source(at, self.url_env.is_some(), self.url_file.is_some())?;
        Ok(())
    }
}
