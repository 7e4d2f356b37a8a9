//! A compiled, checked rule: what the evaluator runs ([`Rule`], its [`Filter`], the fields
//! it groups by), and [`CompiledAlerts`], everything a running evaluator needs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use faultline_schema::{HumanDuration, Level, Map, Value};
use faultline_store::issues::IssueChangeKind;

use crate::alert_config::{
    AlertsConfig, ChannelConfig, NotifyEvent, ProbeConfig, RuleConfig, RuleKind, Severity,
};
use crate::error::{AlertConfigError, err};

/// The `meta` key a health-check record's status is read from.
pub(crate) const HEALTH_STATUS_KEY: &str = "status";

/// A field a rule can group by or read cycles from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Field {
    Service,
    Event,
    Level,
    /// The record's issue (error events only).
    Issue,
    /// The issue's title (observations of `new_issue` and `regression` rules).
    Title,
    /// A `meta` key, by its slot in [`Observed::meta`](super::eval::Observed).
    Meta(usize),
}

impl Field {
    pub(crate) fn parse(
        text: &str,
        meta_keys: &mut Vec<String>,
        at: &str,
        field: &'static str,
    ) -> Result<Field, AlertConfigError> {
        Ok(match text {
            "service" => Field::Service,
            "event" => Field::Event,
            "level" => Field::Level,
            "issue" => Field::Issue,
            other => match other.strip_prefix("meta.") {
                Some(key) if !key.is_empty() => Field::Meta(meta_slot(meta_keys, key)),
                _ => {
                    return Err(err(
                        at,
                        Some(field),
                        format!(
                            "{other:?} is not a field: use service, event, level, issue or meta.KEY"
                        ),
                    ));
                }
            },
        })
    }
}

pub(crate) fn meta_slot(meta_keys: &mut Vec<String>, key: &str) -> usize {
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
    /// The record's issue, if it is an error event.
    fn issue(&self) -> Option<&str> {
        None
    }
    /// What happened to an issue, for the observations of `new_issue` and `regression`
    /// rules (`None` for records).
    fn change(&self) -> Option<IssueChangeKind> {
        None
    }
    /// The issue's title, for those observations.
    fn title(&self) -> Option<&str> {
        None
    }
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

    pub(crate) fn describe(&self, keys: &[String]) -> String {
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
    /// `new_issue` or `regression`: fed by the store's issue changes, not by records.
    IssueChange {
        change: IssueChangeKind,
    },
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
            Condition::IssueChange { .. } => false,
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
        match (&self.condition, r.change()) {
            (Condition::IssueChange { change }, got) => {
                return got == Some(*change)
                    && self.filter.matches_head(r.service(), r.level(), r.event());
            }
            (_, Some(_)) => return false,
            (_, None) => {}
        }
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

    /// The group key of `r` (`name=value` per `group_by` field, comma-separated); `None` if
    /// `r` lacks a `group_by` field.
    pub(crate) fn group_of(&self, r: &impl Fields) -> Option<String> {
        let mut key = String::new();
        self.group_into(r, &mut key).then_some(key)
    }

    /// [`Rule::group_of`] written into `key` (cleared first), so the evaluator reuses one
    /// buffer for every record: `false` when `r` lacks a `group_by` field.
    pub(crate) fn group_into(&self, r: &impl Fields, key: &mut String) -> bool {
        key.clear();
        for (i, (name, field)) in self.group_by.iter().enumerate() {
            if i > 0 {
                key.push(',');
            }
            key.push_str(name);
            key.push('=');
            let Some(value) = field_value(field, r) else {
                return false;
            };
            key.push_str(&value);
        }
        true
    }

    /// The `group_by` labels of `r`, for a group [`Rule::group_of`] found (a field it has
    /// not is left out).
    pub(crate) fn labels_of(&self, r: &impl Fields) -> Vec<(String, String)> {
        self.group_by
            .iter()
            .filter_map(|(name, field)| Some((name.clone(), field_value(field, r)?.into_owned())))
            .collect()
    }

    /// The notification's summary line for a condition `detail` and `value`.
    pub(crate) fn render_summary(&self, group: &str, value: u64, detail: &str) -> String {
        let Some(template) = &self.summary else {
            return detail.to_owned();
        };
        let window = HumanDuration(Duration::from_millis(
            u64::try_from(self.window_ms).unwrap_or(0),
        ));
        crate::template::fill(template, |name| {
            Some(match name {
                "rule" => self.name.clone(),
                "value" => value.to_string(),
                "threshold" => self.threshold().map_or_else(String::new, |t| t.to_string()),
                "window" => window.to_string(),
                "group" => if group.is_empty() { "all" } else { group }.to_owned(),
                "detail" => detail.to_owned(),
                _ => return None,
            })
        })
    }

    /// What the condition's value is compared with: the records of a threshold, the cycles
    /// of a streak, the failures of a health check; none for an absence.
    pub(crate) fn threshold(&self) -> Option<u64> {
        match &self.condition {
            Condition::Threshold { threshold } => Some(u64::from(*threshold)),
            Condition::Consecutive { cycles, .. } => Some(u64::from(*cycles)),
            Condition::Health { failures, .. } => Some(u64::from(*failures)),
            Condition::Absence => None,
            Condition::IssueChange { .. } => Some(1),
        }
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
        Field::Issue => r.issue().map(Cow::Borrowed),
        Field::Title => r.title().map(Cow::Borrowed),
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
