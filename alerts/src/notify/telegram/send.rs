//! Telegram's Bot API: one `sendMessage` with `parse_mode = "HTML"`. The template's text
//! goes as written; every value filled into it (a group, a summary: what records said) is
//! HTML-escaped and cut to a length that keeps the message within Telegram's 4096
//! characters. The request's URL holds the bot token: it is a [`Secret`], and errors never
//! show it.

use std::time::Duration;

use serde_json::{Value, json};

use super::{TELEGRAM_API_URL, TelegramConfig};
use crate::error::AlertConfigError;
use crate::notify::notification::Notification;
use crate::notify::transport::{Context, Outcome, Secret, cut, post_json, read_secret};

/// Telegram's limit on a message's text.
const MAX_TEXT: usize = 4096;
/// The most of one value put into the text.
const MAX_VALUE: usize = 1000;

/// The message when the channel has no `template`.
const DEFAULT_TEMPLATE: &str =
    "<b>{title}</b>\n{summary}\n{description}\nRunbook: {runbook}\nDashboard: {dashboard}";

pub(crate) struct Telegram {
    /// `<api_url>/bot<token>/sendMessage`.
    url: Secret,
    chat_id: Value,
    silent: bool,
    template: Option<String>,
}

impl Telegram {
    pub(crate) fn new(
        at: &str,
        c: &TelegramConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Telegram, AlertConfigError> {
        let fail = |field: &'static str, message: &str| AlertConfigError {
            at: at.to_owned(),
            field: Some(field),
            message: message.to_owned(),
        };
        let token = read_secret(
            at,
            "bot_token_env",
            c.bot_token_env.as_ref(),
            c.bot_token_file.as_ref(),
            env,
        )?
        .ok_or_else(|| fail("bot_token_env", "give bot_token_env or bot_token_file"))?;
        if token.expose().contains(['/', '?', '#']) || token.expose().contains(char::is_whitespace)
        {
            return Err(fail(
                "bot_token_env",
                "the configured value is not a bot token (it holds /, ?, # or spaces)",
            ));
        }
        let api = c.api_url.as_deref().unwrap_or(TELEGRAM_API_URL);
        let url = Secret::new(format!(
            "{}/bot{}/sendMessage",
            api.trim_end_matches('/'),
            token.expose()
        ));
        Ok(Telegram {
            url,
            chat_id: serde_json::to_value(&c.chat_id).unwrap_or(Value::Null),
            silent: c.silent.unwrap_or(false),
            template: c.delivery.template.clone(),
        })
    }

    pub(crate) async fn send(&self, ctx: &Context, n: &Notification, timeout: Duration) -> Outcome {
        post_json(ctx, self.url.expose(), &self.payload(ctx, n), timeout, None).await
    }

    pub(crate) fn payload(&self, ctx: &Context, n: &Notification) -> Value {
        let fill = |template: &str| {
            n.render(template, ctx.dashboard_url.as_deref(), |v| {
                escape(&cut(v, MAX_VALUE))
            })
        };
        let text = match &self.template {
            Some(t) => fill(t),
            // Lines left empty by unset fields (no description, no runbook) are dropped.
            None => fill(DEFAULT_TEMPLATE)
                .lines()
                .filter(|l| {
                    let l = l.trim();
                    !l.is_empty() && !l.ends_with(':')
                })
                .collect::<Vec<_>>()
                .join("\n"),
        };
        json!({
            "chat_id": self.chat_id,
            "text": cut(&text, MAX_TEXT),
            "parse_mode": "HTML",
            "disable_web_page_preview": true,
            "disable_notification": self.silent,
        })
    }
}

/// Text as Telegram's HTML wants it: `&`, `<`, `>` and `"` as entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}
