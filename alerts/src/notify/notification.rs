//! What is sent: [`Notification`], an alert's firing, reminder or resolution (also the
//! generic webhook's JSON body and a command's standard input).

use std::collections::BTreeMap;

use faultline_schema::Timestamp;
use serde::Serialize;

use super::delivery::NotifyEvent;
use crate::alert_config::{RuleKind, Severity};
use crate::alert_state::AlertState;
use crate::rule::Rule;

/// `dedup_key` is at most this long (PagerDuty's limit).
pub(super) const MAX_DEDUP_KEY: usize = 255;

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
    /// What the value is compared with (records, cycles, failures); absent for `absence`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    /// The rule's `runbook_url`: what to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
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
            threshold: rule.threshold(),
            runbook_url: rule.config.runbook_url.clone(),
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

impl Notification {
    /// A channel's `template` filled with this notification's fields (see
    /// [`MESSAGE_PLACEHOLDERS`](crate::template::MESSAGE_PLACEHOLDERS)), each value passed
    /// through `escape` (the channel's markup) while the template's own text stays as
    /// written. An unset field is empty; `dashboard` is the `dashboard_url` setting.
    pub(crate) fn render(
        &self,
        template: &str,
        dashboard: Option<&str>,
        escape: impl Fn(&str) -> String,
    ) -> String {
        crate::template::fill(template, |name| {
            let value = match name {
                "title" => self.title(),
                "event" => self.event.as_str().to_owned(),
                "status" => self.status.to_owned(),
                "rule" => self.rule.clone(),
                "kind" => self.kind.as_str().to_owned(),
                "severity" => self.severity.as_str().to_owned(),
                "group" => self.group.clone(),
                "value" => self.value.to_string(),
                "threshold" => self.threshold.map_or_else(String::new, |t| t.to_string()),
                "summary" => self.summary.clone(),
                "detail" => self.detail.clone(),
                "description" => self.description.clone().unwrap_or_default(),
                "runbook" => self.runbook_url.clone().unwrap_or_default(),
                "dashboard" => dashboard.unwrap_or_default().to_owned(),
                "fired_at" => self.fired_at.map_or_else(String::new, |t| t.to_string()),
                _ => return None,
            };
            Some(escape(&value))
        })
    }
}

/// `faultline/<rule>[/<group>]`, with a long group replaced by its hash so the key stays
/// within PagerDuty's 255 characters and stable.
pub(super) fn dedup_key(rule: &str, group: &str) -> String {
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
