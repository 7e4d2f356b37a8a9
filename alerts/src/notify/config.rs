//! `[alerts.channels.NAME]`: one table per channel, whose `kind` picks the config of that
//! kind (`slack/`, `discord/`, `telegram/`, `pagerduty/`, `email/`, `webhook/`, `command/`), each with the delivery
//! settings every kind takes (`delivery.rs`). A field the kind does not read is an error that says which
//! fields it does read.

use serde::{Deserialize, Serialize};

use super::command::CommandConfig;
use super::delivery::{DeliveryConfig, OtherFields};
use super::discord::DiscordConfig;
use super::email::EmailConfig;
use super::pagerduty::PagerdutyConfig;
use super::slack::SlackConfig;
use super::telegram::TelegramConfig;
use super::webhook::WebhookConfig;
use crate::error::{AlertConfigError, NOTICE_ACTION, SYSTEM_CHECK_ACTION, check_name, err};
use crate::template::{MESSAGE_PLACEHOLDERS, unknown_placeholder};

/// The kinds of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// A Slack-compatible incoming webhook.
    Slack,
    /// A Discord webhook (execute webhook: `content` and an embed).
    Discord,
    /// A Telegram bot's `sendMessage`.
    Telegram,
    /// PagerDuty Events API v2.
    Pagerduty,
    /// Email over SMTP.
    Email,
    /// An HTTP POST of the documented JSON body.
    Webhook,
    /// A program run with the JSON body on stdin.
    Command,
}

impl ChannelKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Discord => "discord",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Pagerduty => "pagerduty",
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Command => "command",
        }
    }
}

/// One channel, `[alerts.channels.NAME]`: where notifications go, by `kind`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ChannelConfig {
    /// `kind = "slack"`.
    Slack(SlackConfig),
    /// `kind = "discord"`.
    Discord(DiscordConfig),
    /// `kind = "telegram"`.
    Telegram(TelegramConfig),
    /// `kind = "pagerduty"`.
    Pagerduty(PagerdutyConfig),
    /// `kind = "email"`.
    Email(EmailConfig),
    /// `kind = "webhook"`.
    Webhook(WebhookConfig),
    /// `kind = "command"`.
    Command(CommandConfig),
}

impl ChannelConfig {
    /// Its kind.
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelConfig::Slack(_) => ChannelKind::Slack,
            ChannelConfig::Discord(_) => ChannelKind::Discord,
            ChannelConfig::Telegram(_) => ChannelKind::Telegram,
            ChannelConfig::Pagerduty(_) => ChannelKind::Pagerduty,
            ChannelConfig::Email(_) => ChannelKind::Email,
            ChannelConfig::Webhook(_) => ChannelKind::Webhook,
            ChannelConfig::Command(_) => ChannelKind::Command,
        }
    }

    /// The delivery settings.
    pub fn delivery(&self) -> &DeliveryConfig {
        match self {
            ChannelConfig::Slack(c) => &c.delivery,
            ChannelConfig::Discord(c) => &c.delivery,
            ChannelConfig::Telegram(c) => &c.delivery,
            ChannelConfig::Pagerduty(c) => &c.delivery,
            ChannelConfig::Email(c) => &c.delivery,
            ChannelConfig::Webhook(c) => &c.delivery,
            ChannelConfig::Command(c) => &c.delivery,
        }
    }

    /// The first environment variable naming one of its secrets that `env` does not have
    /// (unset or blank): such a channel is not configured.
    pub(crate) fn unset_secret(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        let vars: Vec<&Option<String>> = match self {
            ChannelConfig::Slack(c) => vec![&c.url_env],
            ChannelConfig::Discord(c) => vec![&c.url_env],
            ChannelConfig::Telegram(c) => vec![&c.bot_token_env],
            ChannelConfig::Pagerduty(c) => vec![&c.routing_key_env],
            ChannelConfig::Email(c) => vec![&c.smtp_password_env],
            ChannelConfig::Webhook(c) => vec![&c.url_env, &c.bearer_token_env],
            ChannelConfig::Command(_) => Vec::new(),
        };
        vars.into_iter()
            .flatten()
            .find(|var| env(var).is_none_or(|v| v.trim().is_empty()))
            .cloned()
    }

    /// The fields its kind reads, and those written that it does not.
    fn fields(&self) -> (&'static [&'static str], &OtherFields) {
        match self {
            ChannelConfig::Slack(c) => (SlackConfig::FIELDS, &c.other),
            ChannelConfig::Discord(c) => (DiscordConfig::FIELDS, &c.other),
            ChannelConfig::Telegram(c) => (TelegramConfig::FIELDS, &c.other),
            ChannelConfig::Pagerduty(c) => (PagerdutyConfig::FIELDS, &c.other),
            ChannelConfig::Email(c) => (EmailConfig::FIELDS, &c.other),
            ChannelConfig::Webhook(c) => (WebhookConfig::FIELDS, &c.other),
            ChannelConfig::Command(c) => (CommandConfig::FIELDS, &c.other),
        }
    }

    /// Checks channel `name` (at `at`, `alerts.channels.NAME`). Needs no environment:
    /// secrets are read when the channel is built.
    pub(crate) fn check(&self, at: &str, name: &str) -> Result<(), AlertConfigError> {
        check_name(at, name)?;
        if name == SYSTEM_CHECK_ACTION || name == NOTICE_ACTION {
            return Err(err(
                at,
                None,
                format!("{name:?} is a built-in action: give the channel another name"),
            ));
        }
        let kind = self.kind();
        let (allowed, other) = self.fields();
        if let Some(field) = other.keys().next() {
            if matches!(kind, ChannelKind::Slack | ChannelKind::Discord) && field == "url" {
                return Err(err(
                    at,
                    Some("url"),
                    "a webhook URL is a secret and must not be written in the config: put \
                     it in an environment variable (url_env) or a file (url_file)",
                ));
            }
            return Err(AlertConfigError {
                at: at.to_owned(),
                field: None,
                message: format!(
                    "{field}: does not apply to a {} channel (it reads: {})",
                    kind.as_str(),
                    allowed.join(", ")
                ),
            });
        }
        match self {
            ChannelConfig::Slack(c) => c.check(at)?,
            ChannelConfig::Discord(c) => c.check(at)?,
            ChannelConfig::Telegram(c) => c.check(at)?,
            ChannelConfig::Pagerduty(c) => c.check(at)?,
            ChannelConfig::Email(c) => c.check(at)?,
            ChannelConfig::Webhook(c) => c.check(at)?,
            ChannelConfig::Command(c) => c.check(at)?,
        }
        let d = self.delivery();
        if let Some(on) = &d.on
            && on.is_empty()
        {
            return Err(err(
                at,
                Some("on"),
                "lists no event: firing, repeat, resolved",
            ));
        }
        if let Some(template) = &d.template {
            if matches!(kind, ChannelKind::Webhook | ChannelKind::Command) {
                return Err(err(
                    at,
                    Some("template"),
                    format!(
                        "a {} channel sends every field as JSON and takes no template",
                        kind.as_str()
                    ),
                ));
            }
            if template.trim().is_empty() {
                return Err(err(at, Some("template"), "is empty"));
            }
            if let Some(name) = unknown_placeholder(template, MESSAGE_PLACEHOLDERS) {
                return Err(err(
                    at,
                    Some("template"),
                    format!(
                        "{{{name}}} is not a placeholder (it takes: {})",
                        MESSAGE_PLACEHOLDERS.join(", ")
                    ),
                ));
            }
        }
        if d.timeout.is_some_and(|t| t.0.is_zero()) {
            return Err(err(at, Some("timeout"), "must be above 0"));
        }
        if d.retries.is_some_and(|r| r > 10) {
            return Err(err(at, Some("retries"), "at most 10"));
        }
        Ok(())
    }
}
