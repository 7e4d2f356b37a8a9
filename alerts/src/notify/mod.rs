//! Notifications: what is sent (`notification.rs`), the channels it goes to, and delivery
//! with a deadline per attempt, retries with exponential backoff, and a [`Delivery`] record
//! of every outcome.
//!
//! Secrets (webhook URLs, routing keys, bot tokens, SMTP passwords, bearer tokens) are read from the
//! environment or files when the channels are built, kept in `Secret` (whose `Debug`
//! prints nothing), and never written to logs or delivery records: HTTP errors are
//! reported without their URL.
//!
//! # Layout
//!
//! - `config.rs`: [`ChannelConfig`], one variant per kind; `delivery.rs`: the settings every
//!   kind takes.
//! - `slack/`, `discord/`, `telegram/`, `pagerduty/`, `email/`, `webhook/`, `command/`:
//!   one folder per kind, the same
//!   shape each: `mod.rs` its config and checks, `send.rs` one attempt of one delivery.
//! - `notification.rs`: the payload; `transport.rs`: secrets, the HTTP client, a JSON POST.
//! - this file: a ready [`Channel`] and its retries.

mod command;
mod config;
mod delivery;
mod discord;
mod email;
mod notification;
mod pagerduty;
mod slack;
mod telegram;
mod transport;
mod webhook;

use std::fmt;
use std::time::{Duration, Instant};

use faultline_schema::Timestamp;

pub use command::CommandConfig;
pub use config::{ChannelConfig, ChannelKind};
pub use delivery::{DeliveryConfig, NotifyEvent, OtherFields};
pub use discord::DiscordConfig;
pub use email::{EmailConfig, SmtpTls};
pub(crate) use notification::Notification;
pub use pagerduty::PagerdutyConfig;
pub use slack::SlackConfig;
pub use telegram::{ChatId, TelegramConfig};
pub(crate) use transport::Context;
pub(crate) use transport::{Secret, read_secret};
pub use webhook::WebhookConfig;

use crate::error::AlertConfigError;
use crate::store::{Delivery, DeliveryStatus};
use transport::Outcome;

/// The most a retry waits, whatever the backoff or a `Retry-After` says.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The kind-specific part of a channel.
enum Target {
    Slack(slack::Slack),
    Discord(discord::Discord),
    Telegram(telegram::Telegram),
    PagerDuty(pagerduty::PagerDuty),
    Email(email::Email),
    Webhook(webhook::Webhook),
    Command(command::Command),
}

/// A ready channel: its target and its delivery settings.
pub(crate) struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    target: Target,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// Builds channel `name`, reading its secrets through `env`.
    pub(crate) fn new(
        name: &str,
        c: &ChannelConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Channel, AlertConfigError> {
        let at = format!("alerts.channels.{name}");
        let kind = c.kind();
        let target = match c {
            ChannelConfig::Slack(c) => Target::Slack(slack::Slack::new(&at, c, env)?),
            ChannelConfig::Discord(c) => Target::Discord(discord::Discord::new(&at, c, env)?),
            ChannelConfig::Telegram(c) => Target::Telegram(telegram::Telegram::new(&at, c, env)?),
            ChannelConfig::Pagerduty(c) => {
                Target::PagerDuty(pagerduty::PagerDuty::new(&at, c, env)?)
            }
            ChannelConfig::Email(c) => Target::Email(email::Email::new(&at, c, env)?),
            ChannelConfig::Webhook(c) => Target::Webhook(webhook::Webhook::new(&at, c, env)?),
            ChannelConfig::Command(c) => Target::Command(command::Command::new(c)),
        };
        let command = kind == ChannelKind::Command;
        let c = c.delivery();
        Ok(Channel {
            name: name.to_owned(),
            kind,
            target,
            timeout: c
                .timeout
                .map_or(Duration::from_secs(if command { 30 } else { 10 }), |t| t.0),
            retries: c.retries.unwrap_or(if command { 0 } else { 3 }),
            backoff: c.backoff.map_or(Duration::from_secs(1), |b| b.0),
        })
    }

    async fn attempt(&self, ctx: &Context, n: &Notification) -> Outcome {
        let run = async {
            match &self.target {
                Target::Slack(t) => t.send(ctx, n, self.timeout).await,
                Target::Discord(t) => t.send(ctx, n, self.timeout).await,
                Target::Telegram(t) => t.send(ctx, n, self.timeout).await,
                Target::PagerDuty(t) => t.send(ctx, n, self.timeout).await,
                Target::Email(t) => t.send(ctx, n).await,
                Target::Webhook(t) => t.send(ctx, n, self.timeout).await,
                Target::Command(t) => t.run(n, self.timeout).await,
            }
        };
        // The targets enforce the deadline themselves (and clean up: a command is killed);
        // this is the backstop.
        match tokio::time::timeout(self.timeout + Duration::from_secs(1), run).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Retry {
                error: format!("timed out after {:?}", self.timeout),
                code: None,
                after: None,
            },
        }
    }

    /// Delivers `n` with retries and backoff, and says how it went.
    pub(crate) async fn deliver(&self, ctx: &Context, n: &Notification) -> Delivery {
        let started = Instant::now();
        let mut attempts = 0;
        let (status, error, code) = loop {
            attempts += 1;
            match self.attempt(ctx, n).await {
                Outcome::Sent { code } => break (DeliveryStatus::Sent, None, code),
                Outcome::Fail { error, code } => break (DeliveryStatus::Failed, Some(error), code),
                Outcome::Retry { error, code, after } => {
                    if attempts > self.retries {
                        break (DeliveryStatus::Failed, Some(error), code);
                    }
                    let wait = after.unwrap_or_else(|| backoff(self.backoff, attempts));
                    tracing::debug!(
                        channel = %self.name, rule = %n.rule, attempt = attempts, %error,
                        wait_ms = wait.as_millis() as u64, "notification failed; retrying"
                    );
                    tokio::time::sleep(wait.min(MAX_BACKOFF)).await;
                }
            }
        };
        Delivery {
            rule: n.rule.clone(),
            group: n.group.clone(),
            channel: self.name.clone(),
            event: n.event,
            status,
            attempts,
            error,
            code,
            at: Timestamp::now(),
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// `base * 2^(attempt-1)`, capped, with up to 25 % of jitter so retries from many alerts
/// do not arrive together.
fn backoff(base: Duration, attempt: u32) -> Duration {
    use std::hash::BuildHasher;
    let exp = base.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let jitter = std::collections::hash_map::RandomState::new().hash_one(attempt) % 1000;
    let exp = exp.min(MAX_BACKOFF);
    exp + exp.mul_f64(jitter as f64 / 4000.0)
}

#[cfg(test)]
mod tests;
