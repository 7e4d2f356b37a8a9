//! Alert configuration as written in TOML (`[alerts]`, `[alerts.channels.NAME]`,
//! `[alerts.probes.NAME]`, `[alerts.rules.NAME]`), its checks, and the compiled [`Rule`] the
//! evaluator runs.
//!
//! Rules, channels and probes are tables keyed by name, so every scalar in them can be
//! overridden like the rest of the config (`FAULTLINE_ALERTS_RULES_API_ERRORS_WINDOW=30s`),
//! and every error names the table and the field (`alerts.rules.api_errors: window: ...`).
//! Secrets (webhook URLs, routing keys, SMTP passwords) are never read from the config text:
//! only the name of an environment variable (`*_env`) or a file (`*_file`) holding them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use faultline_schema::{Level, Map, Value};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::duration::HumanDuration;

/// The `[alerts]` section: evaluation settings, channels, probes and rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Evaluate the rules inside `faultline serve`, as records arrive and on a timer, and
    /// run the probes. `false` leaves evaluation to `faultline check-alerts` (cron).
    pub enabled: bool,
    /// A TOML file with more `[rules.NAME]`, `[channels.NAME]` and `[probes.NAME]` tables,
    /// merged with the ones here (names must not repeat). Relative to the working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules_file: Option<PathBuf>,
    /// How often windows slide, `for` timers and reminders are checked, and silence is
    /// noticed (absence rules). Records are evaluated as they arrive regardless.
    pub evaluation_interval: HumanDuration,
    /// Record batches waiting for the evaluator. When full, further batches are not
    /// evaluated (counted in `faultline_alerts_records_dropped_total`); ingest never waits.
    pub queue_batches: usize,
    /// The most groups (`group_by` values) one rule tracks; records of further groups are
    /// skipped and counted until old groups expire.
    pub max_groups: usize,
    /// Delivery results kept per rule, shown by `GET /alerts`.
    pub deliveries_kept: usize,
    /// Results kept per system check in the store.
    pub checks_kept: usize,
    /// The dashboard's address, linked from notifications (`https://faultline.example.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// Where notifications go, by name; see [`ChannelConfig`].
    #[serde(deserialize_with = "named_tables")]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Active health checks, by name; see [`ProbeConfig`].
    #[serde(deserialize_with = "named_tables")]
    pub probes: BTreeMap<String, ProbeConfig>,
    /// The rules, by name; see [`RuleConfig`].
    #[serde(deserialize_with = "named_tables")]
    pub rules: BTreeMap<String, RuleConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            rules_file: None,
            evaluation_interval: HumanDuration(Duration::from_secs(1)),
            queue_batches: 4096,
            max_groups: 10_000,
            deliveries_kept: 50,
            checks_kept: 100,
            dashboard_url: None,
            channels: BTreeMap::new(),
            probes: BTreeMap::new(),
            rules: BTreeMap::new(),
        }
    }
}

/// The contents of `alerts.rules_file`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RulesFile {
    #[serde(deserialize_with = "named_tables")]
    channels: BTreeMap<String, ChannelConfig>,
    #[serde(deserialize_with = "named_tables")]
    probes: BTreeMap<String, ProbeConfig>,
    #[serde(deserialize_with = "named_tables")]
    rules: BTreeMap<String, RuleConfig>,
}

/// Deserializes a table of tables one entry at a time, so an error names its entry
/// (`api_errors: unknown field "treshold"`); the caller prefixes the section.
fn named_tables<'de, D, T>(deserializer: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let raw = BTreeMap::<String, toml::Value>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(name, value)| {
            T::deserialize(value)
                .map(|v| (name.clone(), v))
                .map_err(|e| de::Error::custom(format!("{name}: {}", e.message())))
        })
        .collect()
}

/// The rule kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// At least `threshold` matching records within `window`.
    Threshold,
    /// Matching records in `threshold` consecutive cycles (records carrying `cycle_key`).
    Consecutive,
    /// A probe, or ingested health-check records, failing `threshold` times in a row.
    Health,
    /// No matching record within `window`.
    Absence,
}

impl RuleKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Threshold => "threshold",
            RuleKind::Consecutive => "consecutive",
            RuleKind::Health => "health",
            RuleKind::Absence => "absence",
        }
    }
}

/// How urgent a firing alert is; the names and meanings of PagerDuty Events API v2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational; no action needed.
    Info,
    /// Needs attention soon (a low-urgency page).
    #[default]
    Warning,
    /// Something is broken.
    Error,
    /// Needs attention now (a high-urgency page).
    Critical,
}

impl Severity {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

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

/// One string or a list of them (`service = "api"` or `service = ["api", "worker"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strings(pub Vec<String>);

impl Strings {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Strings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A single value stays a string, so an env var can still override it.
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Strings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Strings, E> {
                Ok(Strings(vec![v.to_owned()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Strings, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Strings(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Which records a rule looks at. Every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// The record's service, or one of several.
    #[serde(skip_serializing_if = "Strings::is_empty")]
    pub service: Strings,
    /// The minimum level: `ERROR` means ERROR or CRITICAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// The record's event, or one of several.
    #[serde(skip_serializing_if = "Strings::is_empty")]
    pub event: Strings,
    /// `meta` keys and the values they must have (numbers and booleans compare as text).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

/// A rule action: a channel name (or `system_check`, `notice`), or a table that also says
/// which events it gets: `{ channel = "app_stop", on = ["firing"] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionConfig {
    /// The channel, or a built-in action.
    pub channel: String,
    /// The events sent; the channel's `on` when absent.
    pub on: Option<Vec<NotifyEvent>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionTable {
    channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on: Option<Vec<NotifyEvent>>,
}

impl Serialize for ActionConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.on {
            None => s.serialize_str(&self.channel),
            Some(on) => ActionTable {
                channel: self.channel.clone(),
                on: Some(on.clone()),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ActionConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ActionConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a channel name or { channel = \"...\", on = [...] }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ActionConfig, E> {
                Ok(ActionConfig {
                    channel: v.to_owned(),
                    on: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ActionConfig, A::Error> {
                let t = ActionTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ActionConfig {
                    channel: t.channel,
                    on: t.on,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// One rule, `[alerts.rules.NAME]`; the table's key is the rule's name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// `threshold`, `consecutive`, `health` or `absence`.
    pub kind: RuleKind,
    /// `false` keeps the rule in the config without evaluating it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Which records count (for `consecutive`: which records make a cycle bad; for
    /// `health` without a probe: the health-check records).
    #[serde(default)]
    pub filter: FilterConfig,
    /// `threshold`: the sliding window; `absence`: the longest allowed silence;
    /// `consecutive`: how long after the last cycle a streak is forgotten (default 1h);
    /// `health` records: how long results count (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<HumanDuration>,
    /// `threshold`: the least records that fire; `consecutive`: the cycles in a row;
    /// `health`: failed results in a row (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
    /// Evaluate separately per value of these fields: `service`, `event`, `level` or
    /// `meta.KEY` (`group_by = "meta.user"`). Records without the field are skipped.
    #[serde(default, skip_serializing_if = "Strings::is_empty")]
    pub group_by: Strings,
    /// How long the condition must hold before the alert fires (pending meanwhile).
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_: Option<HumanDuration>,
    /// How often a still-firing alert is sent again; `0s` never (default 4h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<HumanDuration>,
    /// `info`, `warning` (default), `error` or `critical`.
    #[serde(default)]
    pub severity: Severity,
    /// `consecutive`: the field that numbers cycles (default `meta.cycle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_key: Option<String>,
    /// `health`: the probe (a name under `[alerts.probes]`) whose failures count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// The notification's one-line text; `{rule}`, `{value}`, `{threshold}`, `{window}`,
    /// `{group}` and `{detail}` are replaced. A text describing the condition by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Longer text for humans (a runbook link), sent along.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Channel names (or `system_check`, `notice`) notified; see [`ActionConfig`].
    #[serde(default)]
    pub actions: Vec<ActionConfig>,
}

fn yes() -> bool {
    true
}

/// The kinds of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// A Slack-compatible incoming webhook.
    Slack,
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
            ChannelKind::Pagerduty => "pagerduty",
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
            ChannelKind::Command => "command",
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text, for a relay on localhost or a trusted network.
    None,
    /// Plain, then upgraded with STARTTLS (required), usually port 587.
    Starttls,
    /// TLS from the first byte, usually port 465.
    Tls,
}

/// One channel, `[alerts.channels.NAME]`: where notifications go. Which fields apply
/// depends on `kind`; the others are errors.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// `slack`, `pagerduty`, `email`, `webhook` or `command`.
    pub kind: Option<ChannelKind>,
    /// `webhook`: the URL, when it holds no secret; `pagerduty`: the Events API endpoint
    /// (default `https://events.pagerduty.com/v2/enqueue`). Never for `slack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `slack`, `webhook`: the environment variable holding the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// `slack`, `webhook`: a file holding the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// `webhook`: the environment variable holding a bearer token sent as `Authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_env: Option<String>,
    /// `webhook`: a file holding that bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<PathBuf>,
    /// `slack`: post to this channel instead of the webhook's own (`#ops`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// `slack`: the name shown as the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `slack`: the sender's icon (`:rotating_light:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_emoji: Option<String>,
    /// `pagerduty`: the environment variable holding the integration's routing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_env: Option<String>,
    /// `pagerduty`: a file holding the routing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_file: Option<PathBuf>,
    /// `email`: the SMTP server's host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    /// `email`: the SMTP port (default 25 with `tls = "none"`, 587 with `starttls`, 465
    /// with `tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    /// `email`: `none`, `starttls` (default) or `tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SmtpTls>,
    /// `email`: the SMTP user, if the server wants a login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_username: Option<String>,
    /// `email`: the environment variable holding the SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_password_env: Option<String>,
    /// `email`: a file holding the SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_password_file: Option<PathBuf>,
    /// `email`: the sender address (`Faultline <faultline@example.com>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `email`: the recipients.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// `command`: the program and its arguments, run without a shell.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
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
}

/// The kinds of probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    /// A TCP connection can be opened.
    Tcp,
    /// A Redis server answers `PING` with `PONG` (RESP over TCP).
    Redis,
    /// An HTTP GET answers with the expected status.
    Http,
}

impl ProbeKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Tcp => "tcp",
            ProbeKind::Redis => "redis",
            ProbeKind::Http => "http",
        }
    }
}

/// One active health check, `[alerts.probes.NAME]`, run every `interval` by the server
/// (and once by `check-alerts`). Each result is recorded as a system check named after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// `tcp`, `redis` or `http`.
    pub kind: ProbeKind,
    /// `false` stops running it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `tcp`, `redis`: `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `http`: the URL to GET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `http`: the status that means healthy (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<u16>,
    /// `redis`: the environment variable holding the password sent with `AUTH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// `redis`: a file holding that password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// How often it runs.
    #[serde(default = "default_probe_interval")]
    pub interval: HumanDuration,
    /// How long one run may take before it counts as failed.
    #[serde(default = "default_probe_timeout")]
    pub timeout: HumanDuration,
}

fn default_probe_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(15))
}

fn default_probe_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}

/// A configuration problem, naming where (`alerts.rules.api_errors`), the field, and what
/// is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {}{message}", field.map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct AlertConfigError {
    /// The table: `alerts.rules.NAME`, `alerts.channels.NAME`, `alerts.probes.NAME`, or a
    /// file.
    pub at: String,
    /// The field, when one is at fault.
    pub field: Option<&'static str>,
    /// What is wrong and what to write instead.
    pub message: String,
}

fn err(at: &str, field: Option<&'static str>, message: impl Into<String>) -> AlertConfigError {
    AlertConfigError {
        at: at.to_owned(),
        field,
        message: message.into(),
    }
}

/// The built-in action that records the rule's firing (`failed`) and resolution (`ok`) as
/// system checks.
pub(crate) const SYSTEM_CHECK_ACTION: &str = "system_check";
/// The built-in action that shows a firing alert as a notice on the dashboard.
pub(crate) const NOTICE_ACTION: &str = "notice";
/// The PagerDuty Events API v2 endpoint.
pub(crate) const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Rule, channel and probe names: what env var names and URLs can carry.
fn check_name(at: &str, name: &str) -> Result<(), AlertConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(err(
            at,
            None,
            "names are 1 to 64 of [a-z0-9_.-] (use underscores to keep them overridable \
             by environment variables)",
        ))
    }
}

/// A field a rule can group by or read cycles from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Field {
    Service,
    Event,
    Level,
    /// A `meta` key, by its slot in [`Observed::meta`](super::eval::Observed).
    Meta(usize),
}

impl Field {
    fn parse(
        text: &str,
        meta_keys: &mut Vec<String>,
        at: &str,
        field: &'static str,
    ) -> Result<Field, AlertConfigError> {
        Ok(match text {
            "service" => Field::Service,
            "event" => Field::Event,
            "level" => Field::Level,
            other => match other.strip_prefix("meta.") {
                Some(key) if !key.is_empty() => Field::Meta(meta_slot(meta_keys, key)),
                _ => {
                    return Err(err(
                        at,
                        Some(field),
                        format!("{other:?} is not a field: use service, event, level or meta.KEY"),
                    ));
                }
            },
        })
    }
}

fn meta_slot(meta_keys: &mut Vec<String>, key: &str) -> usize {
    match meta_keys.iter().position(|k| k == key) {
        Some(i) => i,
        None => {
            meta_keys.push(key.to_owned());
            meta_keys.len() - 1
        }
    }
}

/// A compiled filter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub services: Vec<String>,
    pub min_level: Option<Level>,
    pub events: Vec<String>,
    /// (`meta` slot, wanted value).
    pub meta: Vec<(usize, String)>,
}

/// What the evaluator can read from a record or its compact summary.
pub(crate) trait Fields {
    fn service(&self) -> &str;
    fn level(&self) -> Level;
    fn event(&self) -> &str;
    /// The `meta` value in `slot`, as text (`None` when absent, null, or not a scalar).
    fn meta(&self, slot: usize) -> Option<&str>;
}

impl Filter {
    /// Whether service, level and event match (the part that needs no `meta`).
    pub(crate) fn matches_head(&self, service: &str, level: Level, event: &str) -> bool {
        (self.services.is_empty() || self.services.iter().any(|s| s == service))
            && self.min_level.is_none_or(|l| level >= l)
            && (self.events.is_empty() || self.events.iter().any(|e| e == event))
    }

    pub(crate) fn matches(&self, r: &impl Fields) -> bool {
        self.matches_head(r.service(), r.level(), r.event())
            && self
                .meta
                .iter()
                .all(|(slot, want)| r.meta(*slot) == Some(want.as_str()))
    }

    /// The store query that finds this filter's records (what SQL or the file index can
    /// narrow by); the rest is checked in memory.
    pub(crate) fn query(&self) -> faultline_store::Query {
        faultline_store::Query {
            service: single(&self.services),
            min_level: self.min_level,
            event: single(&self.events),
            ..faultline_store::Query::default()
        }
    }

    fn describe(&self, keys: &[String]) -> String {
        let mut parts = Vec::new();
        if let Some(l) = self.min_level {
            parts.push(format!("{l}+"));
        }
        if !self.events.is_empty() {
            parts.push(self.events.join("|"));
        }
        let mut s = if parts.is_empty() {
            "records".to_owned()
        } else {
            format!("{} records", parts.join(" "))
        };
        if !self.services.is_empty() {
            s.push_str(&format!(" from {}", self.services.join("|")));
        }
        for (slot, want) in &self.meta {
            let key = keys.get(*slot).map_or("?", String::as_str);
            s.push_str(&format!(" with meta.{key}={want}"));
        }
        s
    }
}

fn single(v: &[String]) -> Option<String> {
    match v {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// A rule's action, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// A configured channel and the events it gets.
    Channel {
        name: String,
        on: Vec<NotifyEvent>,
    },
    SystemCheck,
    Notice,
}

/// What makes a rule's condition, per kind.
#[derive(Debug, Clone)]
pub(crate) enum Condition {
    Threshold {
        threshold: u32,
    },
    Consecutive {
        cycles: u32,
        cycle: Field,
    },
    /// `probe`: a probe's name; `None`: the filter's health-check records.
    Health {
        failures: u32,
        probe: Option<String>,
    },
    Absence,
}

/// A compiled, checked rule: what the evaluator runs.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub name: String,
    pub kind: RuleKind,
    pub condition: Condition,
    pub filter: Filter,
    pub group_by: Vec<(String, Field)>,
    /// Milliseconds. Zero for probe health rules (they read no records).
    pub window_ms: i64,
    pub for_ms: i64,
    /// `None`: no reminders.
    pub repeat_ms: Option<i64>,
    pub severity: Severity,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub actions: Vec<Action>,
    /// Human text for the filter, for details and `GET /alerts`.
    pub filter_text: String,
    /// The config as written, for `GET /alerts`.
    pub config: RuleConfig,
}

impl Rule {
    /// The part of [`Rule::wants`] that needs no `meta`: the ingest hot path asks this
    /// first and builds nothing for records no rule looks at.
    pub(crate) fn wants_head(&self, service: &str, level: Level, event: &str) -> bool {
        match &self.condition {
            Condition::Consecutive { .. } => {
                let services = &self.filter.services;
                services.is_empty() || services.iter().any(|s| s == service)
            }
            Condition::Health { probe: Some(_), .. } => false,
            _ => self.filter.matches_head(service, level, event),
        }
    }

    /// Whether `r` is a record this rule must see: a match of its filter, or (consecutive)
    /// any record of its services that carries the cycle key, since clean cycles count too.
    pub(crate) fn wants(&self, r: &impl Fields) -> bool {
        match &self.condition {
            Condition::Consecutive { cycle, .. } => {
                let services = &self.filter.services;
                (services.is_empty() || services.iter().any(|s| s == r.service()))
                    && field_value(cycle, r).is_some()
            }
            Condition::Health { probe: Some(_), .. } => false,
            _ => self.filter.matches(r),
        }
    }

    /// The store query for priming and replay: every record [`Rule::wants`] is among its
    /// results.
    pub(crate) fn query(&self) -> faultline_store::Query {
        match &self.condition {
            Condition::Consecutive { .. } => faultline_store::Query {
                service: single(&self.filter.services),
                ..faultline_store::Query::default()
            },
            _ => self.filter.query(),
        }
    }

    /// How far back records matter: what is read from the store on start.
    pub(crate) fn horizon_ms(&self) -> i64 {
        self.window_ms
    }

    /// The group key and its labels for `r`; `None` if `r` lacks a `group_by` field.
    pub(crate) fn group_of(&self, r: &impl Fields) -> Option<(String, Vec<(String, String)>)> {
        if self.group_by.is_empty() {
            return Some((String::new(), Vec::new()));
        }
        let mut labels = Vec::with_capacity(self.group_by.len());
        for (name, field) in &self.group_by {
            labels.push((name.clone(), field_value(field, r)?.into_owned()));
        }
        let key = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        Some((key, labels))
    }

    /// The notification's summary line for a condition `detail` and `value`.
    pub(crate) fn render_summary(&self, group: &str, value: u64, detail: &str) -> String {
        let Some(template) = &self.summary else {
            return detail.to_owned();
        };
        let threshold = match &self.condition {
            Condition::Threshold { threshold } => threshold.to_string(),
            Condition::Consecutive { cycles, .. } => cycles.to_string(),
            Condition::Health { failures, .. } => failures.to_string(),
            Condition::Absence => String::new(),
        };
        let window = HumanDuration(Duration::from_millis(
            u64::try_from(self.window_ms).unwrap_or(0),
        ))
        .to_string();
        template
            .replace("{rule}", &self.name)
            .replace("{value}", &value.to_string())
            .replace("{threshold}", &threshold)
            .replace("{window}", &window)
            .replace("{group}", if group.is_empty() { "all" } else { group })
            .replace("{detail}", detail)
    }

    pub(crate) fn has_action(&self, action: &Action) -> bool {
        self.actions.contains(action)
    }
}

/// The value of `field` in `r`, as text.
pub(crate) fn field_value<'a>(
    field: &Field,
    r: &'a impl Fields,
) -> Option<std::borrow::Cow<'a, str>> {
    use std::borrow::Cow;
    match field {
        Field::Service => Some(Cow::Borrowed(r.service())),
        Field::Event => Some(Cow::Borrowed(r.event())),
        Field::Level => Some(Cow::Borrowed(r.level().as_str())),
        Field::Meta(slot) => r.meta(*slot).map(Cow::Borrowed),
    }
}

/// A `meta` value as the text rules compare: strings as they are, numbers and booleans
/// as written; anything else has no text.
pub(crate) fn meta_text(meta: &Map<String, Value>, key: &str) -> Option<String> {
    match meta.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Everything a running evaluator needs from the config: compiled rules, the channels and
/// probes as configured (secrets are read by `notify` and `probe`), the `meta` keys rules
/// read, and the settings.
#[derive(Debug, Clone)]
pub(crate) struct CompiledAlerts {
    pub settings: AlertsConfig,
    pub rules: Vec<Arc<Rule>>,
    pub channels: BTreeMap<String, ChannelConfig>,
    pub probes: BTreeMap<String, ProbeConfig>,
    /// The `meta` keys any rule reads, in slot order.
    pub meta_keys: Vec<String>,
}

impl AlertsConfig {
    /// Checks the rules, channels and probes written in the config itself (not the rules
    /// file, read at start). Needs no environment: secrets are looked up at start.
    pub fn check(&self) -> Result<(), AlertConfigError> {
        if self.evaluation_interval.0 < Duration::from_millis(10) {
            return Err(err(
                "alerts",
                Some("evaluation_interval"),
                "must be at least 10ms",
            ));
        }
        if self.queue_batches == 0 || self.max_groups == 0 {
            return Err(err(
                "alerts",
                Some("queue_batches"),
                "queue_batches and max_groups must be above 0",
            ));
        }
        if let Some(url) = &self.dashboard_url
            && !is_http_url(url)
        {
            return Err(err(
                "alerts",
                Some("dashboard_url"),
                "must start with http:// or https://",
            ));
        }
        compile(
            self.clone(),
            self.channels.clone(),
            self.probes.clone(),
            self.rules.clone(),
        )
        .map(|_| ())
    }

    /// Reads `rules_file` (if any), merges it, and compiles everything.
    pub(crate) fn compile(&self) -> Result<CompiledAlerts, AlertConfigError> {
        let mut channels = self.channels.clone();
        let mut probes = self.probes.clone();
        let mut rules = self.rules.clone();
        if let Some(path) = &self.rules_file {
            let file = read_rules_file(path)?;
            let at = path.display().to_string();
            merge(&mut channels, file.channels, &at, "channel")?;
            merge(&mut probes, file.probes, &at, "probe")?;
            merge(&mut rules, file.rules, &at, "rule")?;
        }
        compile(self.clone(), channels, probes, rules)
    }
}

fn read_rules_file(path: &Path) -> Result<RulesFile, AlertConfigError> {
    let at = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(&at, Some("rules_file"), format!("cannot read it: {e}")))?;
    toml::from_str(&text).map_err(|e| err(&at, None, e.to_string()))
}

fn merge<T>(
    into: &mut BTreeMap<String, T>,
    from: BTreeMap<String, T>,
    at: &str,
    what: &str,
) -> Result<(), AlertConfigError> {
    for (name, value) in from {
        if into.contains_key(&name) {
            return Err(err(
                at,
                None,
                format!("{what} {name:?} is also defined in the config file: names must be unique"),
            ));
        }
        into.insert(name, value);
    }
    Ok(())
}

fn is_http_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

fn compile(
    settings: AlertsConfig,
    channels: BTreeMap<String, ChannelConfig>,
    probes: BTreeMap<String, ProbeConfig>,
    rules: BTreeMap<String, RuleConfig>,
) -> Result<CompiledAlerts, AlertConfigError> {
    for (name, channel) in &channels {
        check_channel(&format!("alerts.channels.{name}"), name, channel)?;
    }
    for (name, probe) in &probes {
        check_probe(&format!("alerts.probes.{name}"), name, probe)?;
    }
    let mut meta_keys = Vec::new();
    let mut compiled = Vec::with_capacity(rules.len());
    for (name, rule) in &rules {
        let at = format!("alerts.rules.{name}");
        let rule = compile_rule(&at, name, rule, &channels, &probes, &mut meta_keys)?;
        if rule.config.enabled {
            compiled.push(Arc::new(rule));
        }
    }
    Ok(CompiledAlerts {
        settings,
        rules: compiled,
        channels,
        probes,
        meta_keys,
    })
}

/// Which fields each channel kind reads.
fn channel_fields(kind: ChannelKind) -> &'static [&'static str] {
    match kind {
        ChannelKind::Slack => &["url_env", "url_file", "channel", "username", "icon_emoji"],
        ChannelKind::Pagerduty => &["url", "routing_key_env", "routing_key_file"],
        ChannelKind::Email => &[
            "smtp_host",
            "smtp_port",
            "tls",
            "smtp_username",
            "smtp_password_env",
            "smtp_password_file",
            "from",
            "to",
        ],
        ChannelKind::Webhook => &[
            "url",
            "url_env",
            "url_file",
            "bearer_token_env",
            "bearer_token_file",
        ],
        ChannelKind::Command => &["command"],
    }
}

fn check_channel(at: &str, name: &str, c: &ChannelConfig) -> Result<(), AlertConfigError> {
    check_name(at, name)?;
    if name == SYSTEM_CHECK_ACTION || name == NOTICE_ACTION {
        return Err(err(
            at,
            None,
            format!("{name:?} is a built-in action: give the channel another name"),
        ));
    }
    let Some(kind) = c.kind else {
        return Err(err(
            at,
            Some("kind"),
            "missing: slack, pagerduty, email, webhook or command",
        ));
    };
    let set: [(&'static str, bool); 19] = [
        ("url", c.url.is_some()),
        ("url_env", c.url_env.is_some()),
        ("url_file", c.url_file.is_some()),
        ("bearer_token_env", c.bearer_token_env.is_some()),
        ("bearer_token_file", c.bearer_token_file.is_some()),
        ("channel", c.channel.is_some()),
        ("username", c.username.is_some()),
        ("icon_emoji", c.icon_emoji.is_some()),
        ("routing_key_env", c.routing_key_env.is_some()),
        ("routing_key_file", c.routing_key_file.is_some()),
        ("smtp_host", c.smtp_host.is_some()),
        ("smtp_port", c.smtp_port.is_some()),
        ("tls", c.tls.is_some()),
        ("smtp_username", c.smtp_username.is_some()),
        ("smtp_password_env", c.smtp_password_env.is_some()),
        ("smtp_password_file", c.smtp_password_file.is_some()),
        ("from", c.from.is_some()),
        ("to", !c.to.is_empty()),
        ("command", !c.command.is_empty()),
    ];
    let allowed = channel_fields(kind);
    if let Some((field, _)) = set.iter().find(|(f, on)| *on && !allowed.contains(f)) {
        if kind == ChannelKind::Slack && *field == "url" {
            return Err(err(
                at,
                Some("url"),
                "a Slack webhook URL is a secret and must not be written in the config: put \
                 it in an environment variable (url_env) or a file (url_file)",
            ));
        }
        return Err(err(
            at,
            Some(field),
            format!(
                "does not apply to a {} channel (it reads: {})",
                kind.as_str(),
                allowed.join(", ")
            ),
        ));
    }
    let sources = |a: bool, b: bool, c: bool| usize::from(a) + usize::from(b) + usize::from(c);
    match kind {
        ChannelKind::Slack | ChannelKind::Webhook => {
            if sources(c.url.is_some(), c.url_env.is_some(), c.url_file.is_some()) != 1 {
                let which = if kind == ChannelKind::Slack {
                    "url_env or url_file"
                } else {
                    "url, url_env or url_file"
                };
                return Err(err(
                    at,
                    Some("url_env"),
                    format!("give exactly one of {which}"),
                ));
            }
            if let Some(url) = &c.url
                && !is_http_url(url)
            {
                return Err(err(at, Some("url"), "must start with http:// or https://"));
            }
            if c.bearer_token_env.is_some() && c.bearer_token_file.is_some() {
                return Err(err(
                    at,
                    Some("bearer_token_env"),
                    "give bearer_token_env or bearer_token_file, not both",
                ));
            }
        }
        ChannelKind::Pagerduty => {
            if sources(
                c.routing_key_env.is_some(),
                c.routing_key_file.is_some(),
                false,
            ) != 1
            {
                return Err(err(
                    at,
                    Some("routing_key_env"),
                    "give exactly one of routing_key_env or routing_key_file (the routing \
                     key is a secret and is never written in the config)",
                ));
            }
            if let Some(url) = &c.url
                && !is_http_url(url)
            {
                return Err(err(at, Some("url"), "must start with http:// or https://"));
            }
        }
        ChannelKind::Email => {
            if c.smtp_host.as_deref().is_none_or(str::is_empty) {
                return Err(err(
                    at,
                    Some("smtp_host"),
                    "missing: the SMTP server's host",
                ));
            }
            let from = c.from.as_deref().unwrap_or("");
            if from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(err(
                    at,
                    Some("from"),
                    format!("{from:?} is not an address (faultline@example.com)"),
                ));
            }
            if c.to.is_empty() {
                return Err(err(at, Some("to"), "missing: at least one recipient"));
            }
            for to in &c.to {
                if to.parse::<lettre::message::Mailbox>().is_err() {
                    return Err(err(at, Some("to"), format!("{to:?} is not an address")));
                }
            }
            if c.smtp_password_env.is_some() && c.smtp_password_file.is_some() {
                return Err(err(
                    at,
                    Some("smtp_password_env"),
                    "give smtp_password_env or smtp_password_file, not both",
                ));
            }
            if (c.smtp_password_env.is_some() || c.smtp_password_file.is_some())
                && c.smtp_username.is_none()
            {
                return Err(err(
                    at,
                    Some("smtp_username"),
                    "a password needs a user name",
                ));
            }
        }
        ChannelKind::Command => {
            if c.command.first().is_none_or(String::is_empty) {
                return Err(err(
                    at,
                    Some("command"),
                    "missing: the program and its arguments, [\"/usr/bin/systemctl\", \"restart\", \"worker\"]",
                ));
            }
        }
    }
    if let Some(on) = &c.on
        && on.is_empty()
    {
        return Err(err(
            at,
            Some("on"),
            "lists no event: firing, repeat, resolved",
        ));
    }
    if c.timeout.is_some_and(|t| t.0.is_zero()) {
        return Err(err(at, Some("timeout"), "must be above 0"));
    }
    if c.retries.is_some_and(|r| r > 10) {
        return Err(err(at, Some("retries"), "at most 10"));
    }
    Ok(())
}

fn check_probe(at: &str, name: &str, p: &ProbeConfig) -> Result<(), AlertConfigError> {
    check_name(at, name)?;
    match p.kind {
        ProbeKind::Tcp | ProbeKind::Redis => {
            let Some(address) = &p.address else {
                return Err(err(at, Some("address"), "missing: host:port"));
            };
            if address
                .rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
            {
                return Err(err(
                    at,
                    Some("address"),
                    format!("{address:?} is not host:port"),
                ));
            }
            if p.url.is_some() || p.expect_status.is_some() {
                return Err(err(
                    at,
                    Some("url"),
                    format!("does not apply to a {} probe", p.kind.as_str()),
                ));
            }
        }
        ProbeKind::Http => {
            if !p.url.as_deref().is_some_and(is_http_url) {
                return Err(err(
                    at,
                    Some("url"),
                    "missing or not an http:// or https:// URL",
                ));
            }
            if p.address.is_some() {
                return Err(err(at, Some("address"), "does not apply to an http probe"));
            }
            if p.expect_status.is_some_and(|s| !(100..=599).contains(&s)) {
                return Err(err(at, Some("expect_status"), "must be 100 to 599"));
            }
        }
    }
    if p.kind != ProbeKind::Redis && (p.password_env.is_some() || p.password_file.is_some()) {
        return Err(err(
            at,
            Some("password_env"),
            "only a redis probe sends a password",
        ));
    }
    if p.interval.0 < Duration::from_millis(100) {
        return Err(err(at, Some("interval"), "must be at least 100ms"));
    }
    if p.timeout.0.is_zero() {
        return Err(err(at, Some("timeout"), "must be above 0"));
    }
    Ok(())
}

const DEFAULT_REPEAT: Duration = Duration::from_secs(4 * 3600);
const DEFAULT_MEMORY: Duration = Duration::from_secs(3600);

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn compile_rule(
    at: &str,
    name: &str,
    c: &RuleConfig,
    channels: &BTreeMap<String, ChannelConfig>,
    probes: &BTreeMap<String, ProbeConfig>,
    meta_keys: &mut Vec<String>,
) -> Result<Rule, AlertConfigError> {
    check_name(at, name)?;
    let not_for = |field: &'static str| {
        err(
            at,
            Some(field),
            format!("does not apply to a {} rule", c.kind.as_str()),
        )
    };
    let positive = |v: Option<u32>, field: &'static str| -> Result<Option<u32>, AlertConfigError> {
        match v {
            Some(0) => Err(err(at, Some(field), "must be at least 1")),
            other => Ok(other),
        }
    };
    let threshold = positive(c.threshold, "threshold")?;
    if let Some(w) = c.window
        && w.0 < Duration::from_secs(1)
    {
        return Err(err(at, Some("window"), "must be at least 1s"));
    }
    let window = c.window.map(|w| w.0);

    let filter = Filter {
        services: c.filter.service.0.clone(),
        min_level: c.filter.level,
        events: c.filter.event.0.clone(),
        meta: c
            .filter
            .meta
            .iter()
            .map(|(k, v)| (meta_slot(meta_keys, k), v.clone()))
            .collect(),
    };
    for s in &filter.services {
        if faultline_schema::check_service(s).is_err() {
            return Err(err(
                at,
                Some("filter.service"),
                format!("{s:?} is not a service name ([a-z0-9_.-], 1 to 64)"),
            ));
        }
    }
    let filter_empty = c.filter == FilterConfig::default();

    let (condition, window_ms) = match c.kind {
        RuleKind::Threshold => {
            let threshold = threshold.ok_or_else(|| {
                err(
                    at,
                    Some("threshold"),
                    "missing: the least records that fire",
                )
            })?;
            let window = window.ok_or_else(|| {
                err(
                    at,
                    Some("window"),
                    "missing: the sliding window, such as 1m",
                )
            })?;
            if c.cycle_key.is_some() {
                return Err(not_for("cycle_key"));
            }
            (Condition::Threshold { threshold }, millis(window))
        }
        RuleKind::Consecutive => {
            let cycles = threshold.ok_or_else(|| {
                err(
                    at,
                    Some("threshold"),
                    "missing: how many cycles in a row fire",
                )
            })?;
            let key = c.cycle_key.as_deref().unwrap_or("meta.cycle");
            let cycle = Field::parse(key, meta_keys, at, "cycle_key")?;
            if filter_empty {
                return Err(err(
                    at,
                    Some("filter"),
                    "missing: which records make a cycle bad (event, level, service)",
                ));
            }
            (
                Condition::Consecutive { cycles, cycle },
                millis(window.unwrap_or(DEFAULT_MEMORY)),
            )
        }
        RuleKind::Health => {
            if c.cycle_key.is_some() {
                return Err(not_for("cycle_key"));
            }
            let failures = threshold.unwrap_or(1);
            match &c.probe {
                Some(probe) => {
                    if !probes.contains_key(probe) {
                        return Err(err(
                            at,
                            Some("probe"),
                            format!(
                                "no probe named {probe:?} under [alerts.probes] (probes: {})",
                                names(probes)
                            ),
                        ));
                    }
                    if !filter_empty {
                        return Err(err(
                            at,
                            Some("filter"),
                            "give a probe or a filter for health-check records, not both",
                        ));
                    }
                    if window.is_some() {
                        return Err(err(
                            at,
                            Some("window"),
                            "does not apply to a probe: it runs every probe interval",
                        ));
                    }
                    if !c.group_by.is_empty() {
                        return Err(err(
                            at,
                            Some("group_by"),
                            "does not apply to a probe: it has one result at a time",
                        ));
                    }
                    (
                        Condition::Health {
                            failures,
                            probe: Some(probe.clone()),
                        },
                        0,
                    )
                }
                None => {
                    if filter_empty {
                        return Err(err(
                            at,
                            Some("probe"),
                            "missing: a probe, or a filter for ingested health-check records \
                             (filter = { event = \"health_check\" })",
                        ));
                    }
                    // The status of a health-check record is read from meta.status.
                    meta_slot(meta_keys, HEALTH_STATUS_KEY);
                    (
                        Condition::Health {
                            failures,
                            probe: None,
                        },
                        millis(window.unwrap_or(DEFAULT_MEMORY)),
                    )
                }
            }
        }
        RuleKind::Absence => {
            let window = window.ok_or_else(|| {
                err(
                    at,
                    Some("window"),
                    "missing: the longest allowed silence, such as 5m",
                )
            })?;
            if threshold.is_some() {
                return Err(not_for("threshold"));
            }
            if c.cycle_key.is_some() {
                return Err(not_for("cycle_key"));
            }
            (Condition::Absence, millis(window))
        }
    };
    if c.kind != RuleKind::Health && c.probe.is_some() {
        return Err(not_for("probe"));
    }
    let mut group_by = Vec::new();
    for g in &c.group_by.0 {
        group_by.push((g.clone(), Field::parse(g, meta_keys, at, "group_by")?));
    }
    let for_ms = c.for_.map_or(0, |d| millis(d.0));
    let repeat = c.repeat_interval.map_or(DEFAULT_REPEAT, |d| d.0);
    let repeat_ms = (!repeat.is_zero()).then(|| millis(repeat));
    if repeat_ms.is_some_and(|r| r < 1000) {
        return Err(err(
            at,
            Some("repeat_interval"),
            "must be at least 1s, or 0s for no reminders",
        ));
    }

    let mut actions = Vec::new();
    for a in &c.actions {
        let action = match a.channel.as_str() {
            SYSTEM_CHECK_ACTION | NOTICE_ACTION if a.on.is_some() => {
                return Err(err(
                    at,
                    Some("actions"),
                    format!("{:?} is built in and takes no `on`", a.channel),
                ));
            }
            SYSTEM_CHECK_ACTION => Action::SystemCheck,
            NOTICE_ACTION => Action::Notice,
            channel => {
                let Some(cfg) = channels.get(channel) else {
                    return Err(err(
                        at,
                        Some("actions"),
                        format!(
                            "no channel named {channel:?} under [alerts.channels] (channels: {}; \
                             built in: {SYSTEM_CHECK_ACTION}, {NOTICE_ACTION})",
                            names(channels)
                        ),
                    ));
                };
                let on = match (&a.on, &cfg.on) {
                    (Some(on), _) | (None, Some(on)) => on.clone(),
                    (None, None) if cfg.kind == Some(ChannelKind::Command) => {
                        vec![NotifyEvent::Firing]
                    }
                    (None, None) => vec![
                        NotifyEvent::Firing,
                        NotifyEvent::Repeat,
                        NotifyEvent::Resolved,
                    ],
                };
                if on.is_empty() {
                    return Err(err(
                        at,
                        Some("actions"),
                        format!("{channel}: `on` lists no event"),
                    ));
                }
                Action::Channel {
                    name: channel.to_owned(),
                    on,
                }
            }
        };
        if actions.contains(&action) {
            return Err(err(
                at,
                Some("actions"),
                format!("{:?} is listed twice", a.channel),
            ));
        }
        actions.push(action);
    }
    let filter_text = filter.describe(meta_keys);
    Ok(Rule {
        name: name.to_owned(),
        kind: c.kind,
        condition,
        filter,
        group_by,
        window_ms,
        for_ms,
        repeat_ms,
        severity: c.severity,
        summary: c.summary.clone(),
        description: c.description.clone(),
        actions,
        filter_text,
        config: c.clone(),
    })
}

/// The `meta` key a health-check record's status is read from.
pub(crate) const HEALTH_STATUS_KEY: &str = "status";

fn names<T>(map: &BTreeMap<String, T>) -> String {
    if map.is_empty() {
        "none".to_owned()
    } else {
        map.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CompiledAlerts, String> {
        let c: AlertsConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.check().map_err(|e| e.to_string())?;
        c.compile().map_err(|e| e.to_string())
    }

    const CHANNELS: &str = r#"
[channels.ops]
kind = "slack"
url_env = "SLACK_URL"
[channels.pd]
kind = "pagerduty"
routing_key_env = "PD_KEY"
"#;

    #[test]
    fn a_threshold_rule_compiles_with_defaults() {
        let c = parse(&format!(
            "{CHANNELS}\n[rules.api_errors]\nkind = \"threshold\"\n\
             filter = {{ service = \"api\", level = \"error\" }}\nwindow = \"1m\"\n\
             threshold = 5\nactions = [\"ops\", \"system_check\"]\n"
        ))
        .unwrap();
        let r = &c.rules[0];
        assert_eq!(r.window_ms, 60_000);
        assert_eq!(r.for_ms, 0);
        assert_eq!(r.repeat_ms, Some(4 * 3_600_000));
        assert_eq!(r.severity, Severity::Warning);
        assert_eq!(r.filter.min_level, Some(Level::Error));
        assert_eq!(r.actions.len(), 2);
        assert_eq!(r.filter_text, "ERROR+ records from api");
    }

    #[test]
    fn errors_name_the_rule_and_the_field() {
        let cases = [
            (
                "[rules.a]\nkind = \"threshold\"\nwindow = \"1m\"\n",
                "alerts.rules.a: threshold: missing",
            ),
            (
                "[rules.a]\nkind = \"threshold\"\nthreshold = 5\n",
                "alerts.rules.a: window: missing",
            ),
            (
                "[rules.a]\nkind = \"threshold\"\nthreshold = 0\nwindow = \"1m\"\n",
                "alerts.rules.a: threshold: must be at least 1",
            ),
            (
                "[rules.a]\nkind = \"absence\"\nwindow = \"1m\"\nthreshold = 2\n",
                "alerts.rules.a: threshold: does not apply",
            ),
            (
                "[rules.a]\nkind = \"threshold\"\nwindow = \"1m\"\nthreshold = 1\nactions = [\"nope\"]\n",
                "alerts.rules.a: actions: no channel named \"nope\"",
            ),
            (
                "[rules.a]\nkind = \"threshold\"\nwindow = \"1m\"\nthreshold = 1\ngroup_by = \"meta\"\n",
                "alerts.rules.a: group_by:",
            ),
            (
                "[rules.a]\nkind = \"health\"\nprobe = \"redis\"\n",
                "alerts.rules.a: probe: no probe named \"redis\"",
            ),
            (
                "[rules.a]\nkind = \"health\"\n",
                "alerts.rules.a: probe: missing",
            ),
            (
                "[rules.Bad]\nkind = \"absence\"\nwindow = \"1m\"\n",
                "alerts.rules.Bad: names are",
            ),
            (
                "[channels.s]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/x\"\n",
                "alerts.channels.s: url: a Slack webhook URL is a secret",
            ),
            (
                "[channels.p]\nkind = \"pagerduty\"\n",
                "alerts.channels.p: routing_key_env: give exactly one",
            ),
            (
                "[channels.e]\nkind = \"email\"\nsmtp_host = \"x\"\nfrom = \"nope\"\nto = [\"a@b.c\"]\n",
                "alerts.channels.e: from:",
            ),
            (
                "[channels.w]\nkind = \"webhook\"\nurl = \"http://x\"\nsmtp_host = \"y\"\n",
                "alerts.channels.w: smtp_host: does not apply to a webhook channel",
            ),
            (
                "[probes.r]\nkind = \"redis\"\naddress = \"localhost\"\n",
                "alerts.probes.r: address: \"localhost\" is not host:port",
            ),
        ];
        for (text, want) in cases {
            let got = parse(text).unwrap_err();
            assert!(got.contains(want), "{text}\n  got: {got}\n  want: {want}");
        }
    }

    #[test]
    fn unknown_fields_name_the_rule() {
        let got = parse("[rules.api_errors]\nkind = \"threshold\"\ntreshold = 5\n").unwrap_err();
        assert!(
            got.contains("api_errors") && got.contains("treshold"),
            "{got}"
        );
    }

    #[test]
    fn actions_take_events_and_command_defaults_to_firing_only() {
        let c = parse(
            "[channels.restart]\nkind = \"command\"\ncommand = [\"true\"]\n\
             [channels.stop]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/stop\"\n\
             [rules.r]\nkind = \"absence\"\nwindow = \"1m\"\n\
             actions = [\"restart\", { channel = \"stop\", on = [\"firing\"] }, \"notice\"]\n",
        )
        .unwrap();
        let want = |name: &str| Action::Channel {
            name: name.into(),
            on: vec![NotifyEvent::Firing],
        };
        assert_eq!(
            c.rules[0].actions,
            [want("restart"), want("stop"), Action::Notice]
        );
    }

    #[test]
    fn disabled_rules_are_checked_but_not_run() {
        let c = parse("[rules.a]\nkind = \"absence\"\nwindow = \"1m\"\nenabled = false\n").unwrap();
        assert!(c.rules.is_empty());
        assert!(parse("[rules.a]\nkind = \"absence\"\nenabled = false\n").is_err());
    }

    #[test]
    fn shipped_example_has_the_four_rules_of_the_issue() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../faultline.example.toml");
        let config =
            crate::config::Config::load(Some(&path), &Default::default(), &|_| None).unwrap();
        let c = config.alerts.compile().unwrap();
        let rule = |name: &str| c.rules.iter().find(|r| r.name == name).unwrap();
        let channels = |name: &str| -> Vec<String> {
            rule(name)
                .actions
                .iter()
                .map(|a| match a {
                    Action::Channel { name, .. } => name.clone(),
                    Action::SystemCheck => SYSTEM_CHECK_ACTION.into(),
                    Action::Notice => NOTICE_ACTION.into(),
                })
                .collect()
        };
        let api = rule("api_errors");
        assert!(matches!(
            api.condition,
            Condition::Threshold { threshold: 5 }
        ));
        assert_eq!(api.window_ms, 60_000);
        assert_eq!(channels("api_errors"), ["ops_slack", "system_check"]);
        let worker = rule("worker_behavior_engine");
        assert!(matches!(
            worker.condition,
            Condition::Consecutive { cycles: 3, .. }
        ));
        assert_eq!(
            channels("worker_behavior_engine"),
            ["worker_restart", "pagerduty"]
        );
        assert_eq!(worker.severity, Severity::Warning);
        let ui = rule("ui_user_errors");
        assert!(matches!(
            ui.condition,
            Condition::Threshold { threshold: 10 }
        ));
        assert_eq!(
            (ui.window_ms, ui.group_by[0].0.as_str()),
            (600_000, "meta.user")
        );
        assert_eq!(channels("ui_user_errors"), ["support_email", "notice"]);
        let redis = rule("redis_down");
        assert!(
            matches!(&redis.condition, Condition::Health { probe: Some(p), .. } if p == "redis")
        );
        assert_eq!(redis.severity, Severity::Critical);
        assert_eq!(channels("redis_down"), ["app_stop", "pagerduty"]);
        let defaults = AlertsConfig::default();
        assert_eq!(
            config.alerts.evaluation_interval,
            defaults.evaluation_interval
        );
        assert_eq!(config.alerts.queue_batches, defaults.queue_batches);
        assert_eq!(config.alerts.max_groups, defaults.max_groups);
    }

    #[test]
    fn summary_placeholders() {
        let c = parse(
            "[rules.u]\nkind = \"threshold\"\nwindow = \"10m\"\nthreshold = 10\n\
             group_by = \"meta.user\"\nsummary = \"{value} errors for {group} in {window} (>= {threshold})\"\n",
        )
        .unwrap();
        assert_eq!(
            c.rules[0].render_summary("meta.user=u_1", 12, "d"),
            "12 errors for meta.user=u_1 in 10m (>= 10)"
        );
    }
}
