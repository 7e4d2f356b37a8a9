//! Silences and inhibition: what holds an alert's notifications while its state and history
//! go on.
//!
//! - A [`Silence`] matches alerts by their rule and group values with [`Matcher`]s
//!   (Alertmanager's `=`, `!=`, `=~`, `!~`; a regular expression matches the whole value)
//!   between `starts_at` and `ends_at`. Silences are made through the API (any node) and
//!   persisted in the [`AlertStore`](crate::AlertStore); the evaluator reads them every
//!   evaluation interval.
//! - An [`Inhibit`] (`[[alerts.inhibit]]`) holds the target rules' alerts while an alert of
//!   a source rule fires, optionally only those with equal values of some group fields.
//!
//! The evaluator decides as always; a notification of a muted alert is not sent but held
//! (`AlertState::held`, persisted), collapsed into the one that still matters. When the
//! alert is no longer muted, that one notification goes out: the firing if the alert still
//! fires (not a burst of what was held back), or the resolve if receivers were told it
//! fired and it has resolved since.

use faultline_schema::{HumanDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::alert_config::{AlertConfigError, InhibitConfig};
use crate::error::err;

/// The most matchers one silence has.
pub(crate) const MAX_MATCHERS: usize = 20;
/// The longest matcher value, comment or author, in bytes.
const MAX_TEXT: usize = 1024;
/// The longest a silence lasts.
const MAX_SILENCE_MS: i64 = 366 * 86_400_000;
/// How long a silence "until resolved" lasts at most when the request does not say.
const UNTIL_RESOLVED_MS: i64 = 30 * 86_400_000;
/// The most silences kept (expired ones are forgotten first, oldest first).
pub(crate) const MAX_SILENCES: usize = 1000;
/// Expired silences are kept this long (for `GET /silences`).
pub(crate) const EXPIRED_KEEP_MS: i64 = 7 * 86_400_000;
/// Compiled regular expressions are bounded in size.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MatchOp {
    /// Equal.
    #[serde(rename = "=")]
    Eq,
    /// Not equal.
    #[serde(rename = "!=")]
    Ne,
    /// The regular expression matches the whole value.
    #[serde(rename = "=~")]
    Re,
    /// The regular expression does not match the whole value.
    #[serde(rename = "!~")]
    NotRe,
}

impl MatchOp {
    /// As written: `=`, `!=`, `=~`, `!~`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// One condition of a silence on an alert's value named `name`: `rule` (the rule's name),
/// `group` (the whole group key, `meta.user=u_…`), or a group field (`service`,
/// `meta.user`). A field the alert's group does not have is the empty string.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "MatcherSpec")]
pub struct Matcher {
    /// What it looks at.
    pub name: String,
    /// How it compares.
    pub op: MatchOp,
    /// The value, or the regular expression.
    pub value: String,
    #[serde(skip)]
    regex: Option<regex::Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.op, &self.value) == (&other.name, other.op, &other.value)
    }
}

/// A matcher as sent: `"rule=api_errors"`, or `{"name", "op", "value"}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum MatcherSpec {
    Text(String),
    Parts {
        name: String,
        #[serde(default = "default_op")]
        op: MatchOp,
        value: String,
    },
}

fn default_op() -> MatchOp {
    MatchOp::Eq
}

impl TryFrom<MatcherSpec> for Matcher {
    type Error = String;
    fn try_from(spec: MatcherSpec) -> Result<Matcher, String> {
        match spec {
            MatcherSpec::Text(text) => Matcher::parse(&text),
            MatcherSpec::Parts { name, op, value } => Matcher::new(name, op, value),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), self.value)
    }
}

impl Matcher {
    /// A matcher, its name and value checked and its regular expression compiled.
    pub fn new(name: String, op: MatchOp, value: String) -> Result<Matcher, String> {
        let name_ok = !name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !name_ok {
            return Err(format!(
                "matcher name {name:?}: 1 to 128 of [A-Za-z0-9_.-] (rule, group, or a group \
                 field such as meta.user)"
            ));
        }
        if value.len() > MAX_TEXT {
            return Err(format!(
                "matcher {name}: the value is longer than {MAX_TEXT} bytes"
            ));
        }
        let regex = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| format!("matcher {name}: not a regular expression: {e}"))?,
            ),
            MatchOp::Eq | MatchOp::Ne => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// `name=value`, `name!=value`, `name=~regex` or `name!~regex`.
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let Some(at) = text.find(['=', '!']) else {
            return Err(format!(
                "matcher {text:?}: expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX"
            ));
        };
        let (name, rest) = text.split_at(at);
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            (MatchOp::Re, v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            (MatchOp::NotRe, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (MatchOp::Ne, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (MatchOp::Eq, v)
        } else {
            return Err(format!(
                "matcher {text:?}: expected NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX"
            ));
        };
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Matcher::new(name.trim().to_owned(), op, value.to_owned())
    }

    fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Eq, _) => value == self.value,
            (MatchOp::Ne, _) => value != self.value,
            (MatchOp::Re, Some(re)) => re.is_match(value),
            (MatchOp::NotRe, Some(re)) => !re.is_match(value),
            (MatchOp::Re | MatchOp::NotRe, None) => false,
        }
    }
}

/// An alert as matchers see it: its rule, its group key and its group's values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AlertRef<'a> {
    pub rule: &'a str,
    pub group: &'a str,
    pub labels: &'a [(String, String)],
}

impl AlertRef<'_> {
    fn value(&self, name: &str) -> &str {
        match name {
            "rule" => self.rule,
            "group" => self.group,
            _ => self
                .labels
                .iter()
                .find(|(k, _)| k == name)
                .map_or("", |(_, v)| v.as_str()),
        }
    }
}

/// Where a silence is in its life at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceStatus {
    /// It starts later.
    Pending,
    /// It holds notifications now.
    Active,
    /// It ended (or was expired).
    Expired,
}

/// A silence: while active, alerts every matcher matches send nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Its id (a UUID).
    pub id: String,
    /// Every one must match.
    pub matchers: Vec<Matcher>,
    /// When it starts.
    pub starts_at: Timestamp,
    /// When it ends (set to the expiry time when expired early).
    pub ends_at: Timestamp,
    /// It also ends once no alert it matches is pending or firing (the dashboard's
    /// "until resolved").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub until_resolved: bool,
    /// Why.
    pub comment: String,
    /// Who made it.
    pub created_by: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was last changed (made, or expired).
    pub updated_at: Timestamp,
}

impl Silence {
    /// Where it is at `now`.
    pub fn status(&self, now: Timestamp) -> SilenceStatus {
        if now >= self.ends_at {
            SilenceStatus::Expired
        } else if now < self.starts_at {
            SilenceStatus::Pending
        } else {
            SilenceStatus::Active
        }
    }

    /// Whether it holds `alert`'s notifications at `now`.
    pub(crate) fn mutes(&self, alert: AlertRef<'_>, now: Timestamp) -> bool {
        self.status(now) == SilenceStatus::Active && self.matches(alert)
    }

    /// Whether every matcher matches `alert` (whatever the time).
    pub(crate) fn matches(&self, alert: AlertRef<'_>) -> bool {
        self.matchers
            .iter()
            .all(|m| m.matches(alert.value(&m.name)))
    }

    /// Ends it at `now` (if it has not ended yet); `true` if it changed.
    pub fn expire(&mut self, now: Timestamp) -> bool {
        if self.ends_at <= now {
            return false;
        }
        self.ends_at = now.max(self.starts_at);
        self.updated_at = now;
        true
    }
}

/// The body of `POST /silences` (and what `faultline silence add` sends).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    /// At least one; all must match.
    pub matchers: Vec<Matcher>,
    /// Default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    /// When it ends; or give `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// How long from `starts_at` (`1h`, `4h`), instead of `ends_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<HumanDuration>,
    /// Also ends once no alert it matches is pending or firing (then `ends_at` and
    /// `duration` are optional: 30 days at most).
    #[serde(default)]
    pub until_resolved: bool,
    /// Why (required).
    #[serde(default)]
    pub comment: String,
    /// Who (required).
    #[serde(default)]
    pub created_by: String,
}

impl NewSilence {
    /// The silence it asks for at `now`, or what is wrong with it.
    pub fn build(self, now: Timestamp) -> Result<Silence, String> {
        if self.matchers.is_empty() {
            return Err("matchers: at least one is needed (such as rule=api_errors)".into());
        }
        if self.matchers.len() > MAX_MATCHERS {
            return Err(format!("matchers: at most {MAX_MATCHERS}"));
        }
        let comment = self.comment.trim().to_owned();
        let created_by = self.created_by.trim().to_owned();
        if comment.is_empty() {
            return Err("comment: required (why the silence)".into());
        }
        if created_by.is_empty() {
            return Err("created_by: required (who makes the silence)".into());
        }
        if comment.len() > MAX_TEXT || created_by.len() > MAX_TEXT {
            return Err(format!(
                "comment and created_by are at most {MAX_TEXT} bytes"
            ));
        }
        let starts_at = self.starts_at.unwrap_or(now).max(now);
        let start = starts_at.unix_millis();
        let ends_at = match (self.ends_at, self.duration) {
            (Some(_), Some(_)) => return Err("give ends_at or duration, not both".into()),
            (Some(end), None) => end,
            (None, Some(d)) => {
                let ms = i64::try_from(d.0.as_millis()).unwrap_or(i64::MAX);
                Timestamp::from_unix_millis(start.saturating_add(ms.min(MAX_SILENCE_MS + 1)))
            }
            (None, None) if self.until_resolved => {
                Timestamp::from_unix_millis(start + UNTIL_RESOLVED_MS)
            }
            (None, None) => return Err("ends_at or duration: required".into()),
        };
        if ends_at <= starts_at {
            return Err("ends_at: must be after starts_at (and after now)".into());
        }
        if ends_at.unix_millis() - start > MAX_SILENCE_MS {
            return Err("a silence lasts at most 366 days".into());
        }
        Ok(Silence {
            id: uuid::Uuid::now_v7().to_string(),
            matchers: self.matchers,
            starts_at,
            ends_at,
            until_resolved: self.until_resolved,
            comment,
            created_by,
            created_at: now,
            updated_at: now,
        })
    }
}

/// A silence as `GET /silences` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SilenceView {
    /// The silence.
    #[serde(flatten)]
    pub silence: Silence,
    /// Where it is now.
    pub status: SilenceStatus,
}

impl SilenceView {
    /// `silence` at `now`.
    pub fn at(silence: Silence, now: Timestamp) -> SilenceView {
        SilenceView {
            status: silence.status(now),
            silence,
        }
    }
}

/// Keeps what is worth keeping of `silences`: expired ones for [`EXPIRED_KEEP_MS`], and at
/// most [`MAX_SILENCES`] (the oldest expired first). Returns the ids dropped.
pub(crate) fn prune(silences: &mut Vec<Silence>, now: Timestamp) -> Vec<String> {
    let mut dropped = Vec::new();
    let cutoff = now.unix_millis() - EXPIRED_KEEP_MS;
    silences.retain(|s| {
        let keep = s.ends_at.unix_millis() > cutoff;
        if !keep {
            dropped.push(s.id.clone());
        }
        keep
    });
    if silences.len() > MAX_SILENCES {
        silences.sort_by_key(|s| (s.status(now) != SilenceStatus::Expired, s.ends_at));
        let extra = silences.len() - MAX_SILENCES;
        dropped.extend(silences.drain(..extra).map(|s| s.id));
    }
    dropped
}

/// A compiled `[[alerts.inhibit]]`.
#[derive(Debug, Clone)]
pub(crate) struct Inhibit {
    pub sources: Vec<String>,
    pub targets: Vec<String>,
    pub equal: Vec<String>,
}

impl Inhibit {
    /// Whether a firing `source` alert holds `target`.
    pub(crate) fn holds(&self, source: AlertRef<'_>, target: AlertRef<'_>) -> bool {
        self.sources.iter().any(|s| s == source.rule)
            && self.targets.iter().any(|t| t == target.rule)
            && !(source.rule == target.rule && source.group == target.group)
            && self
                .equal
                .iter()
                .all(|f| source.value(f) == target.value(f))
    }
}

/// Checks `[[alerts.inhibit]]` against the rules' names and compiles it.
pub(crate) fn compile_inhibits(
    configs: &[InhibitConfig],
    is_rule: impl Fn(&str) -> bool,
) -> Result<Vec<Inhibit>, AlertConfigError> {
    let mut out = Vec::with_capacity(configs.len());
    for (i, c) in configs.iter().enumerate() {
        let at = format!("alerts.inhibit[{i}]");
        for (field, names) in [("source", &c.source), ("target", &c.target)] {
            if names.0.is_empty() {
                return Err(err(&at, Some(field), "missing: one rule name or a list"));
            }
            if let Some(unknown) = names.0.iter().find(|n| !is_rule(n)) {
                return Err(err(&at, Some(field), format!("no rule named {unknown:?}")));
            }
        }
        out.push(Inhibit {
            sources: c.source.0.clone(),
            targets: c.target.0.clone(),
            equal: c.equal.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_unix_millis(s * 1000)
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn matchers_parse_and_compare_like_alertmanager() {
        let l = labels(&[("meta.user", "u_42"), ("service", "ui")]);
        let alert = AlertRef {
            rule: "ui_user_errors",
            group: "meta.user=u_42,service=ui",
            labels: &l,
        };
        for (text, expect) in [
            ("rule=ui_user_errors", true),
            ("rule!=ui_user_errors", false),
            ("rule=~ui_.*", true),
            ("rule=~ui", false),
            ("rule!~api_.*", true),
            ("meta.user=\"u_42\"", true),
            ("service!=api", true),
            ("meta.host=", true),
            ("meta.host!=", false),
            ("group=meta.user=u_42,service=ui", true),
        ] {
            let m = Matcher::parse(text).unwrap();
            assert_eq!(m.matches(alert.value(&m.name)), expect, "{text}");
        }
        for bad in ["rule", "=x", "rule=~(", "ru le=x"] {
            assert!(Matcher::parse(bad).is_err(), "{bad}");
        }
        let m: Matcher =
            serde_json::from_value(serde_json::json!({"name": "rule", "op": "=~", "value": "a.*"}))
                .unwrap();
        assert_eq!(m.to_string(), "rule=~a.*");
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"name": "rule", "op": "=~", "value": "a.*"})
        );
    }

    #[test]
    fn a_silence_is_active_between_its_start_and_end_and_can_be_expired() {
        let new = NewSilence {
            matchers: vec![Matcher::parse("rule=api_errors").unwrap()],
            starts_at: Some(at(100)),
            duration: Some(HumanDuration(std::time::Duration::from_secs(60))),
            comment: "deploy".into(),
            created_by: "ops".into(),
            ..NewSilence::default()
        };
        let mut s = new.build(at(10)).unwrap();
        let l = Vec::new();
        let api = AlertRef {
            rule: "api_errors",
            group: "",
            labels: &l,
        };
        assert!(!s.mutes(api, at(99)), "pending");
        assert!(s.mutes(api, at(100)));
        assert!(!s.mutes(
            AlertRef {
                rule: "other",
                ..api
            },
            at(120)
        ));
        assert!(!s.mutes(api, at(160)), "ended");
        assert!(s.expire(at(130)));
        assert_eq!(s.status(at(130)), SilenceStatus::Expired);
        assert!(!s.expire(at(131)), "once");
        for (body, why) in [
            (
                serde_json::json!({"matchers": [], "duration": "1h", "comment": "c", "created_by": "o"}),
                "matchers",
            ),
            (
                serde_json::json!({"matchers": ["rule=a"], "duration": "1h", "created_by": "o"}),
                "comment",
            ),
            (
                serde_json::json!({"matchers": ["rule=a"], "comment": "c", "created_by": "o"}),
                "ends_at or duration",
            ),
            (
                serde_json::json!({"matchers": ["rule=a"], "ends_at": "2000-01-01T00:00:00Z", "comment": "c", "created_by": "o"}),
                "after",
            ),
        ] {
            let new: NewSilence = serde_json::from_value(body).unwrap();
            let e = new.build(at(1_000_000_000)).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn the_config_check_names_an_inhibition_of_an_unknown_rule() {
        let rules = "[rules.a]\nkind = \"threshold\"\nwindow = \"1m\"\nthreshold = 1\n";
        for (inhibit, want) in [
            (
                "source = \"nope\"\ntarget = \"a\"",
                "alerts.inhibit[0]: source: no rule named \"nope\"",
            ),
            (
                "source = \"a\"\ntarget = []",
                "alerts.inhibit[0]: target: missing",
            ),
        ] {
            let config: crate::AlertsConfig =
                toml::from_str(&format!("{rules}[[inhibit]]\n{inhibit}\n")).unwrap();
            let e = config.compile().err().unwrap().to_string();
            assert!(e.starts_with(want), "{e}");
        }
        let ok: crate::AlertsConfig = toml::from_str(&format!(
            "{rules}[[inhibit]]\nsource = \"a\"\ntarget = [\"a\"]\nequal = [\"service\"]\n"
        ))
        .unwrap();
        assert!(ok.compile().is_ok());
    }

    #[test]
    fn an_inhibition_needs_equal_values() {
        let inhibit = Inhibit {
            sources: vec!["redis_down".into()],
            targets: vec!["api_errors".into()],
            equal: vec!["service".into()],
        };
        let (a, b) = (labels(&[("service", "api")]), labels(&[("service", "ui")]));
        let src = AlertRef {
            rule: "redis_down",
            group: "service=api",
            labels: &a,
        };
        let same = AlertRef {
            rule: "api_errors",
            group: "service=api",
            labels: &a,
        };
        let other = AlertRef {
            rule: "api_errors",
            group: "service=ui",
            labels: &b,
        };
        assert!(inhibit.holds(src, same));
        assert!(!inhibit.holds(src, other));
        assert!(!inhibit.holds(same, src), "not the other way round");
    }
}
