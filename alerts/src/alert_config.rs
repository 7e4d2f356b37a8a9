//! Alert configuration as written in TOML (`[alerts]`, `[alerts.channels.NAME]`,
//! `[alerts.probes.NAME]`, `[alerts.rules.NAME]`): the shapes only, checked and compiled by
//! `compile.rs` into the rules the evaluator runs (`rule.rs`).
//!
//! Rules, channels and probes are tables keyed by name, so every scalar in them can be
//! overridden like the rest of the config (`FAULTLINE_ALERTS_RULES_API_ERRORS_WINDOW=30s`),
//! and every error names the table and the field (`alerts.rules.api_errors: window: ...`).
//! Secrets (webhook URLs, routing keys, SMTP passwords) are never read from the config text:
//! only the name of an environment variable (`*_env`) or a file (`*_file`) holding them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use faultline_schema::{HumanDuration, Level};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

pub use crate::error::AlertConfigError;
pub(crate) use crate::error::{NOTICE_ACTION, SYSTEM_CHECK_ACTION};
pub(crate) use crate::notify::{ChannelConfig, NotifyEvent};

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
    /// A channel whose secret's environment variable is not set is skipped instead of
    /// stopping the start: shown as not configured in `GET /alerts`, its notifications
    /// counted in `faultline_alerts_notifications_skipped_total`. On in the embedded default
    /// (so its rules run before any channel is set up), off otherwise.
    #[serde(skip_serializing_if = "is_false")]
    pub skip_unconfigured_channels: bool,
    /// Where notifications go, by name; see [`ChannelConfig`].
    #[serde(deserialize_with = "named_tables")]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Active health checks, by name; see [`ProbeConfig`].
    #[serde(deserialize_with = "named_tables")]
    pub probes: BTreeMap<String, ProbeConfig>,
    /// The rules, by name; see [`RuleConfig`].
    #[serde(deserialize_with = "named_tables")]
    pub rules: BTreeMap<String, RuleConfig>,
    /// Inhibitions (`[[alerts.inhibit]]`): while a source rule fires, the target rules'
    /// notifications are held; see [`InhibitConfig`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inhibit: Vec<InhibitConfig>,
}

/// One `[[alerts.inhibit]]`: while an alert of a `source` rule fires, notifications of the
/// `target` rules' alerts are held (their state and history go on); with `equal`, only
/// targets whose group has the same values of those fields as the firing source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitConfig {
    /// The rule (or rules) whose firing holds the targets.
    pub source: Strings,
    /// The rule (or rules) held.
    pub target: Strings,
    /// Group fields (`service`, `meta.host`) whose values must be equal in the source and
    /// the target alert; empty: any firing source holds every target alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
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
            skip_unconfigured_channels: false,
            channels: BTreeMap::new(),
            probes: BTreeMap::new(),
            rules: BTreeMap::new(),
            inhibit: Vec::new(),
        }
    }
}

/// The `[alerts]` section the server runs without a config file: the four rules of
/// `faultline.example.toml` and the channels they name, each channel's secret from the
/// environment variable the example uses, and [`AlertsConfig::skip_unconfigured_channels`].
const SEEDED: &str = include_str!("default_alerts.toml");

impl AlertsConfig {
    /// The embedded default (`alerts/src/default_alerts.toml`) parsed.
    pub fn seeded() -> AlertsConfig {
        // Checked by a test; a broken embedded file would be a build mistake.
        toml::from_str(SEEDED).unwrap_or_default()
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The contents of `alerts.rules_file`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RulesFile {
    #[serde(deserialize_with = "named_tables")]
    pub(crate) channels: BTreeMap<String, ChannelConfig>,
    #[serde(deserialize_with = "named_tables")]
    pub(crate) probes: BTreeMap<String, ProbeConfig>,
    #[serde(deserialize_with = "named_tables")]
    pub(crate) rules: BTreeMap<String, RuleConfig>,
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
    /// The first event of an issue (error events grouped by fingerprint) was stored.
    #[serde(rename = "new_issue")]
    NewIssue,
    /// An event reopened a resolved issue.
    Regression,
}

impl RuleKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Threshold => "threshold",
            RuleKind::Consecutive => "consecutive",
            RuleKind::Health => "health",
            RuleKind::Absence => "absence",
            RuleKind::NewIssue => "new_issue",
            RuleKind::Regression => "regression",
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

/// One string or a list of them (`service = "api"` or `service = ["api", "worker"]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strings(pub Vec<String>);

impl Strings {
    pub(crate) fn is_empty(&self) -> bool {
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
    /// `threshold`, `consecutive`, `health`, `absence`, `new_issue` or `regression`.
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
    /// Evaluate separately per value of these fields: `service`, `event`, `level`, `issue`
    /// or `meta.KEY` (`group_by = "meta.user"`). Records without the field are skipped.
    /// `new_issue` and `regression` rules group by issue unless told otherwise.
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
    /// The procedure to follow when it fires (an `http://` or `https://` URL, such as a
    /// section of docs/runbook.md): in every notification and on the dashboard's alert card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    /// Channel names (or `system_check`, `notice`) notified; see [`ActionConfig`].
    #[serde(default)]
    pub actions: Vec<ActionConfig>,
}

fn yes() -> bool {
    true
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
    /// The record store archives what retention expires (`[retention] archive_dir`):
    /// fails while the last archive could not be written (retention then deletes nothing).
    Archive,
}

impl ProbeKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Tcp => "tcp",
            ProbeKind::Redis => "redis",
            ProbeKind::Http => "http",
            ProbeKind::Archive => "archive",
        }
    }
}

/// One active health check, `[alerts.probes.NAME]`, run every `interval` by the server
/// (and once by `check-alerts`). Each result is recorded as a system check named after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// `tcp`, `redis`, `http` or `archive`.
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

#[cfg(test)]
mod seeded_tests {
    use super::*;
    use crate::service::build_targets;

    /// The embedded default runs the four shipped rules with no environment: its channels
    /// are not configured, not a failed start; a set variable configures one.
    #[test]
    fn the_embedded_default_runs_the_four_rules_without_secrets() {
        let seeded = AlertsConfig::seeded();
        assert!(seeded.skip_unconfigured_channels);
        let compiled = seeded.compile().unwrap();
        let names: Vec<&str> = compiled.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "api_errors",
                "redis_down",
                "ui_user_errors",
                "worker_behavior_engine"
            ]
        );
        assert!(
            compiled
                .rules
                .iter()
                .all(|r| r.config.runbook_url.is_some())
        );
        let targets = build_targets(&compiled, &|_| None).unwrap();
        assert!(targets.channels.is_empty());
        assert_eq!(
            targets.unconfigured.get("ops_slack").map(String::as_str),
            Some("FAULTLINE_SLACK_WEBHOOK_URL")
        );
        assert_eq!(targets.unconfigured.len(), 4);
        let targets = build_targets(&compiled, &|k| {
            (k == "FAULTLINE_SLACK_WEBHOOK_URL").then(|| "https://hooks.example.com/x".into())
        })
        .unwrap();
        assert!(targets.channels.contains_key("ops_slack"));
        assert_eq!(targets.unconfigured.len(), 3);

        // Without the setting, an unset variable still stops the start.
        let mut strict = AlertsConfig::seeded();
        strict.skip_unconfigured_channels = false;
        let err = build_targets(&strict.compile().unwrap(), &|_| None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("is not set"), "{err}");
    }
}
