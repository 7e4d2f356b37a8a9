//! What every kind of channel takes besides its own fields: which events it gets, the
//! deadline of an attempt, retries and backoff, the message template.

use std::collections::BTreeMap;

use faultline_schema::HumanDuration;
use serde::{Deserialize, Serialize};

/// What a notification announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyEvent {
    /// The alert started firing.
    Firing,
    /// The alert is still firing (`repeat_interval` reminders).
    Repeat,
    /// The alert stopped firing (or was reset).
    Resolved,
}

impl NotifyEvent {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Firing => "firing",
            NotifyEvent::Repeat => "repeat",
            NotifyEvent::Resolved => "resolved",
        }
    }
}

/// What every kind of channel takes besides its own fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeliveryConfig {
    /// The events sent here unless a rule's action says otherwise (default: `firing`,
    /// `repeat` and `resolved`; for `command`: `firing` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Vec<NotifyEvent>>,
    /// The deadline of one attempt (default 10s; 30s for `command`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Attempts after the first when one fails in a way worth retrying (default 3; 0 for
    /// `command`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// The wait before the first retry, doubled for each next one (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<HumanDuration>,
    /// The message text, with the alert's fields as `{rule}`, `{group}`, `{value}`,
    /// `{threshold}`, `{summary}`, `{runbook}`, `{dashboard}` and the rest of
    /// the template placeholders (Slack's `text`,
    /// Discord's `content`, Telegram's `text`, an email's first paragraph, PagerDuty's
    /// summary; not for `webhook` and `command`, which send every field as JSON). Each kind
    /// has its own text by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// Fields written in a channel's table that its kind does not read: kept (so a config
/// reads back as written) and refused when the config is checked ([`ChannelConfig`](super::ChannelConfig)).
pub type OtherFields = BTreeMap<String, toml::Value>;
