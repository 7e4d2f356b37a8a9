//! Notifications: what is sent ([`Notification`], also the generic webhook's JSON body),
//! the channels it goes to, and delivery with a deadline per attempt, retries with
//! exponential backoff, and a [`Delivery`] record of every outcome.
//!
//! Secrets (webhook URLs, routing keys, SMTP passwords, bearer tokens) are read from the
//! environment or files when the channels are built, kept in [`Secret`] (whose `Debug`
//! prints nothing), and never written to logs or delivery records: HTTP errors are
//! reported without their URL.
//!
//! # Layout
//!
//! - `slack.rs`, `pagerduty.rs`, `email.rs`, `webhook.rs`, `command.rs`: one attempt of one
//!   delivery per channel kind, and its payload.
//! - this file: the payload model, channel construction, retries.

mod command;
mod email;
mod pagerduty;
mod slack;
mod webhook;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use faultline_schema::Timestamp;
use serde::Serialize;

use super::rule::{
    AlertConfigError, ChannelConfig, ChannelKind, NotifyEvent, Rule, RuleKind, Severity,
};
use super::state::AlertState;
use super::store::{Delivery, DeliveryStatus};

/// The most a retry waits, whatever the backoff or a `Retry-After` says.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// `dedup_key` is at most this long (PagerDuty's limit).
const MAX_DEDUP_KEY: usize = 255;

/// One notification: an alert's firing, reminder or resolution. Serialized as is, it is the
/// generic webhook's body and the command's stdin (`version` 1, documented in
/// docs/OPERATIONS.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Notification {
    /// The body's format version.
    pub version: u32,
    /// Always `faultline`.
    pub source: &'static str,
    /// `firing`, `repeat` or `resolved`.
    pub event: NotifyEvent,
    /// The alert's state after the event: `firing` or `resolved`.
    pub status: &'static str,
    pub rule: String,
    pub kind: RuleKind,
    pub severity: Severity,
    /// The group key (`meta.user=u_…`), empty when the rule has no `group_by`.
    pub group: String,
    pub labels: BTreeMap<String, String>,
    /// One line for humans (the rule's `summary`, or the condition).
    pub summary: String,
    /// The condition in words, at the transition.
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The condition's value (records, cycles, failures, seconds of silence).
    pub value: u64,
    pub started_at: Option<Timestamp>,
    pub fired_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    /// Why it resolved if not by its condition (`reset`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolve_reason: Option<String>,
    /// Stable per rule and group: PagerDuty's `dedup_key`, for receivers to deduplicate.
    pub dedup_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// When it was decided.
    pub sent_at: Timestamp,
}

impl Notification {
    pub(crate) fn new(
        rule: &Rule,
        group: &str,
        labels: &[(String, String)],
        state: &AlertState,
        event: NotifyEvent,
        now: Timestamp,
    ) -> Notification {
        Notification {
            version: 1,
            source: "faultline",
            event,
            status: if event == NotifyEvent::Resolved {
                "resolved"
            } else {
                "firing"
            },
            rule: rule.name.clone(),
            kind: rule.kind,
            severity: rule.severity,
            group: group.to_owned(),
            labels: labels.iter().cloned().collect(),
            summary: rule.render_summary(group, state.value, &state.detail),
            detail: state.detail.clone(),
            description: rule.description.clone(),
            value: state.value,
            started_at: state.active_since.or(state.fired_at),
            fired_at: state.fired_at,
            resolved_at: state.resolved_at,
            resolve_reason: state.resolve_reason.clone(),
            dedup_key: dedup_key(&rule.name, group),
            dashboard_url: None,
            sent_at: now,
        }
    }

    /// `[FIRING] api_errors (critical)`: the start of every subject and message.
    pub(crate) fn title(&self) -> String {
        let tag = match self.event {
            NotifyEvent::Firing => "FIRING",
            NotifyEvent::Repeat => "STILL FIRING",
            NotifyEvent::Resolved => "RESOLVED",
        };
        let group = if self.group.is_empty() {
            String::new()
        } else {
            format!(" [{}]", self.group)
        };
        format!("[{tag}] {}{group} ({})", self.rule, self.severity.as_str())
    }
}

/// `faultline/<rule>[/<group>]`, with a long group replaced by its hash so the key stays
/// within PagerDuty's 255 characters and stable.
fn dedup_key(rule: &str, group: &str) -> String {
    if group.is_empty() {
        return format!("faultline/{rule}");
    }
    let key = format!("faultline/{rule}/{group}");
    if key.len() <= MAX_DEDUP_KEY {
        return key;
    }
    // FNV-1a: stable across runs and builds, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in group.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("faultline/{rule}/{h:016x}")
}

/// A secret read from the environment or a file. Prints as `***`.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn for_tests(s: &str) -> Secret {
        Secret(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Reads a secret named by `<field>_env` or `<field>_file`; `None` if neither is set.
pub(crate) fn read_secret(
    at: &str,
    field: &'static str,
    var: Option<&String>,
    file: Option<&PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, AlertConfigError> {
    let fail = |message: String| AlertConfigError {
        at: at.to_owned(),
        field: Some(field),
        message,
    };
    if let Some(var) = var {
        let value = env(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| fail(format!("environment variable {var} is not set")))?;
        return Ok(Some(Secret(value)));
    }
    if let Some(path) = file {
        let value = std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
        let value = value.trim().to_owned();
        if value.is_empty() {
            return Err(fail(format!("{} is empty", path.display())));
        }
        return Ok(Some(Secret(value)));
    }
    Ok(None)
}

/// How one attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Delivered; the receiver's code.
    Sent { code: Option<i32> },
    /// Failed in a way worth another attempt (network, timeout, 429, 5xx, SMTP 4xx), after
    /// `after` if the receiver said so.
    Retry {
        error: String,
        code: Option<i32>,
        after: Option<Duration>,
    },
    /// Failed for good (a 4xx, a permanent SMTP error, a bad message).
    Fail { error: String, code: Option<i32> },
}

/// The kind-specific part of a channel.
enum Target {
    Slack(slack::Slack),
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

/// What every attempt needs.
#[derive(Clone)]
pub(crate) struct Context {
    pub http: reqwest::Client,
    pub dashboard_url: Option<String>,
}

impl Context {
    pub(crate) fn new(dashboard_url: Option<String>) -> Context {
        let http = reqwest::Client::builder()
            // A notification is one request: a redirect is a misconfiguration, and
            // following it could carry the payload somewhere unexpected.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("faultline/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Context {
            http,
            dashboard_url,
        }
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
        let fail = |field: &'static str, message: &str| AlertConfigError {
            at: at.clone(),
            field: Some(field),
            message: message.to_owned(),
        };
        let kind = c.kind.ok_or_else(|| fail("kind", "missing"))?;
        let target = match kind {
            ChannelKind::Slack => Target::Slack(slack::Slack::new(&at, c, env)?),
            ChannelKind::Pagerduty => Target::PagerDuty(pagerduty::PagerDuty::new(&at, c, env)?),
            ChannelKind::Email => Target::Email(email::Email::new(&at, c, env)?),
            ChannelKind::Webhook => Target::Webhook(webhook::Webhook::new(&at, c, env)?),
            ChannelKind::Command => Target::Command(command::Command::new(c)),
        };
        let command = kind == ChannelKind::Command;
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
                Target::PagerDuty(t) => t.send(ctx, n, self.timeout).await,
                Target::Email(t) => t.send(n).await,
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

/// POSTs JSON and classifies the answer: 2xx sent; 408, 429 and 5xx retried (honoring
/// `Retry-After`); other statuses failed. Errors never include the URL, which may be secret.
pub(crate) async fn post_json<T: Serialize + ?Sized>(
    ctx: &Context,
    url: &str,
    body: &T,
    timeout: Duration,
    bearer: Option<&Secret>,
) -> Outcome {
    let mut request = ctx.http.post(url).timeout(timeout).json(body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token.expose());
    }
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Retry {
                error: http_error(e),
                code: None,
                after: None,
            };
        }
    };
    let status = response.status();
    let code = Some(i32::from(status.as_u16()));
    if status.is_success() {
        return Outcome::Sent { code };
    }
    let after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    let error = format!("HTTP {}{}", status.as_u16(), snippet(&text));
    if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
        Outcome::Retry { error, code, after }
    } else {
        Outcome::Fail { error, code }
    }
}

/// A reqwest error without its URL.
fn http_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail = format!("{detail}: {s}");
        source = s.source();
    }
    format!("{kind}: {detail}")
}

/// The start of a receiver's answer, on one line, for the delivery record.
fn snippet(text: &str) -> String {
    let one_line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if one_line.is_empty() {
        String::new()
    } else {
        format!(": {one_line}")
    }
}

#[cfg(test)]
mod tests;
