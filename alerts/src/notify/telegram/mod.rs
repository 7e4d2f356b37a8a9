//! A Telegram bot's `sendMessage`: its config, and the sender (`send.rs`).

mod send;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) use send::Telegram;

use super::delivery::{DeliveryConfig, OtherFields};
use crate::error::{AlertConfigError, err, is_http_url};

/// The Bot API's address.
pub(crate) const TELEGRAM_API_URL: &str = "https://api.telegram.org";

/// Where a Telegram message goes: a chat's number (`-1001234567890`) or a public
/// channel's `@name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatId {
    /// A chat's number (groups and channels are negative).
    Id(i64),
    /// `@channelusername`, or a number written as text.
    Name(String),
}

/// `kind = "telegram"`. The bot token is a secret: only the variable or file holding it is
/// written in the config.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TelegramConfig {
    /// The environment variable holding the bot's token (`123456:ABC-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token_env: Option<String>,
    /// A file holding the bot's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token_file: Option<PathBuf>,
    /// The chat the bot writes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<ChatId>,
    /// The Bot API's address (default `https://api.telegram.org`); the request goes to
    /// `<api_url>/bot<token>/sendMessage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Send without a sound (`disable_notification`), for quiet chats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silent: Option<bool>,
    /// Retries, timeout, events, template.
    #[serde(flatten)]
    pub delivery: DeliveryConfig,
    /// Fields a Telegram channel does not read (an error).
    #[serde(flatten)]
    pub other: OtherFields,
}

impl TelegramConfig {
    pub(crate) const FIELDS: &[&str] = &[
        "bot_token_env",
        "bot_token_file",
        "chat_id",
        "api_url",
        "silent",
    ];

    pub(crate) fn check(&self, at: &str) -> Result<(), AlertConfigError> {
        if self.bot_token_env.is_some() == self.bot_token_file.is_some() {
            return Err(err(
                at,
                Some("bot_token_env"),
                "give exactly one of bot_token_env or bot_token_file (the bot token is a \
                 secret and is never written in the config)",
            ));
        }
        match &self.chat_id {
            None => return Err(err(at, Some("chat_id"), "missing: the chat to write to")),
            Some(ChatId::Name(name)) if name.trim().is_empty() => {
                return Err(err(at, Some("chat_id"), "is empty"));
            }
            _ => {}
        }
        if let Some(url) = &self.api_url
            && !is_http_url(url)
        {
            return Err(err(
                at,
                Some("api_url"),
                "must start with http:// or https://",
            ));
        }
        Ok(())
    }
}
