//! The rule logic, pure: records (as [`Observed`] summaries), probe results and clock ticks
//! go in, transitions, notifications and system checks come out. Time is whatever the
//! caller passes as `now`: the service passes the wall clock, `check-alerts` replays
//! stored records at their own times, and the tests pass a fake clock.
//!
//! Each rule keeps, per group (`group_by` values), a tracker of what its condition needs and
//! an [`AlertState`]:
//!
//! - **threshold**: the times of the matching records still in the window (a record counts
//!   while `now - ts < window`); the condition is `count >= threshold`.
//! - **consecutive**: the recent cycles (values of `cycle_key`) and whether each had a
//!   matching record. Numeric cycles are consecutive integers, so a gap is a clean cycle;
//!   other values are ordered as first seen. The newest cycle, while it has no match yet,
//!   is in progress and does not break the streak; once a newer cycle starts, a clean one
//!   does. The condition is a streak of `threshold` bad cycles; a worker with no cycle for
//!   `window` has no streak.
//! - **health**: the recent results (probe runs, or health-check records whose
//!   `meta.status` is `ok`/`pass`/`up` or `fail`/`failed`/`error`/`down`, else failing when
//!   ERROR or worse). It fires after `threshold` failures in a row and resolves on the first
//!   success.
//! - **absence**: when a matching record was last seen; the condition is
//!   `now - last_seen >= window`. Without a record, the clock starts when the evaluator
//!   starts watching, so a source that never reports fires one window later; an alert that
//!   was firing before a restart stays firing until a record comes.
//! - **new_issue** and **regression**: the store's issue changes (an issue created, or
//!   reopened after it was resolved) still in the window; one is enough to fire, and the
//!   alert resolves a window after the last one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use faultline_schema::{HumanDuration, Level, Record, Timestamp};
use faultline_store::RecentIds;
use faultline_store::issues::{IssueChange, IssueChangeKind};

use crate::alert_config::RuleKind;
use crate::alert_state::{AlertState, AlertStatus, Transition};
use crate::notify::Notification;
use crate::rule::{Action, Condition, Fields, HEALTH_STATUS_KEY, Rule, field_value, meta_text};
use crate::silence::{AlertRef, Inhibit, Silence, SilenceStatus};
use crate::store::{
    CheckKind, CheckStatus, StateChanges, StoredAlert, StoredRule, StoredState, SystemCheck,
};

/// What the evaluator keeps of a record: the fields rules read, nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub(crate) id: Option<u128>,
    pub(crate) ts: Timestamp,
    /// Shared with the batch's other records of the same service (see
    /// [`Interest::observe_after`]).
    pub(crate) service: Arc<str>,
    pub(crate) level: Level,
    pub(crate) event: Arc<str>,
    /// The values of the `meta` keys rules read, by slot.
    pub(crate) meta: Vec<Option<String>>,
    /// The record's issue.
    pub(crate) issue: Option<String>,
    /// Set on an issue's change (then `event` is the kind and `title` its title).
    pub(crate) change: Option<IssueChangeKind>,
    /// The issue's title, on an issue's change.
    pub(crate) title: Option<String>,
}

impl Observed {
    /// The observation of an issue's change, for `new_issue` and `regression` rules. Its id
    /// is made from the issue, the kind and the time, so reading a change twice (priming,
    /// overlapping polls) counts it once.
    pub(crate) fn of_change(change: &IssueChange) -> Observed {
        let issue = u128::from(u64::from_str_radix(&change.issue.id, 16).unwrap_or(0));
        let at = u128::from(change.at.unix_millis().unsigned_abs());
        let kind = match change.kind {
            IssueChangeKind::New => 1u128,
            IssueChangeKind::Regression => 2,
        };
        Observed {
            id: Some((issue << 64) | (at << 2) | kind),
            ts: change.at,
            service: change.issue.service.as_str().into(),
            level: change.issue.level,
            event: match change.kind {
                IssueChangeKind::New => "new_issue",
                IssueChangeKind::Regression => "regression",
            }
            .into(),
            meta: Vec::new(),
            issue: Some(change.issue.id.clone()),
            change: Some(change.kind),
            title: Some(change.issue.title.clone()),
        }
    }
}

impl Fields for Observed {
    fn issue(&self) -> Option<&str> {
        self.issue.as_deref()
    }
    fn change(&self) -> Option<IssueChangeKind> {
        self.change
    }
    fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }
    fn service(&self) -> &str {
        &self.service
    }
    fn level(&self) -> Level {
        self.level
    }
    fn event(&self) -> &str {
        &self.event
    }
    fn meta(&self, slot: usize) -> Option<&str> {
        self.meta.get(slot)?.as_deref()
    }
}

/// Which records any rule looks at, checked on the ingest hot path.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interest {
    rules: Vec<Arc<Rule>>,
    meta_keys: Arc<[String]>,
}

impl Interest {
    pub(crate) fn new(rules: Vec<Arc<Rule>>, meta_keys: &[String]) -> Interest {
        Interest {
            rules,
            meta_keys: meta_keys.into(),
        }
    }

    /// No rule reads records: the hot path can skip everything.
    pub(crate) fn is_empty(&self) -> bool {
        !self.rules.iter().any(|r| r.window_ms > 0)
    }

    /// The summary of `record` if some rule wants it. Records no rule's service, level
    /// and event can match cost a few string comparisons and no allocation.
    pub(crate) fn observe(&self, record: &Record) -> Option<Observed> {
        self.observe_after(record, None)
    }

    /// [`Interest::observe`] for the records of a batch in turn: `prev` is the summary of
    /// an earlier record, whose service and event text are shared when they are the same
    /// (two allocations fewer per record; a batch is mostly one service and event).
    pub(crate) fn observe_after(
        &self,
        record: &Record,
        prev: Option<&Observed>,
    ) -> Option<Observed> {
        if !self
            .rules
            .iter()
            .any(|r| r.wants_head(&record.service, record.level, &record.event))
        {
            return None;
        }
        let observed = Observed {
            id: record.id.map(|id| id.as_u128()),
            ts: record.ts,
            service: match prev {
                Some(p) if *p.service == *record.service => Arc::clone(&p.service),
                _ => record.service.as_str().into(),
            },
            level: record.level,
            event: match prev {
                Some(p) if *p.event == *record.event => Arc::clone(&p.event),
                _ => record.event.as_str().into(),
            },
            meta: self
                .meta_keys
                .iter()
                .map(|k| meta_text(&record.meta, k))
                .collect(),
            issue: record.issue.clone(),
            change: None,
            title: None,
        };
        self.rules
            .iter()
            .any(|r| r.wants(&observed))
            .then_some(observed)
    }
}

/// Record ids remembered against double counting.
const RECENT_IDS: usize = 200_000;
/// Record times remembered per threshold group beyond the threshold (for the count shown).
const WINDOW_CAP: usize = 1024;
/// Cycles remembered per consecutive group.
const CYCLES_CAP: usize = 256;

/// The sliding window of a threshold group: record times, oldest first.
#[derive(Debug, Default)]
struct Window {
    times: VecDeque<i64>,
    cap: usize,
}

impl Window {
    fn add(&mut self, ts: i64) {
        // Mostly in order; a late record is put in its place.
        let at = self.times.partition_point(|&t| t <= ts);
        self.times.insert(at, ts);
        if self.times.len() > self.cap {
            self.times.pop_front();
        }
    }

    fn prune(&mut self, now: i64, window: i64) {
        while self.times.front().is_some_and(|&t| t <= now - window) {
            self.times.pop_front();
        }
    }
}

/// One cycle of a consecutive group.
#[derive(Debug, Clone, Copy)]
struct Cycle {
    bad: bool,
    last_seen: i64,
}

/// The cycle keys: numbers sort as numbers and their gaps are cycles without records;
/// other values are numbered as first seen.
type CycleKey = (u8, i64);

#[derive(Debug, Default)]
struct Cycles {
    cycles: BTreeMap<CycleKey, Cycle>,
    texts: HashMap<String, i64>,
    next_text: i64,
}

impl Cycles {
    fn key(&mut self, value: &str) -> CycleKey {
        if let Ok(n) = value.trim().parse::<i64>() {
            return (0, n);
        }
        if let Some(&seq) = self.texts.get(value) {
            return (1, seq);
        }
        self.next_text += 1;
        self.texts.insert(value.to_owned(), self.next_text);
        (1, self.next_text)
    }

    fn add(&mut self, value: &str, bad: bool, ts: i64) {
        let key = self.key(value);
        let c = self.cycles.entry(key).or_insert(Cycle {
            bad: false,
            last_seen: ts,
        });
        c.bad |= bad;
        c.last_seen = c.last_seen.max(ts);
        while self.cycles.len() > CYCLES_CAP {
            self.cycles.pop_first();
        }
    }

    /// Forgets every cycle once the newest is older than the window: a worker that went
    /// quiet no longer has a streak. (While cycles keep coming, old ones cannot matter: a
    /// clean cycle breaks a streak, and at most [`CYCLES_CAP`] are kept.)
    fn prune(&mut self, now: i64, window: i64) {
        let newest = self.cycles.values().map(|c| c.last_seen).max();
        if newest.is_some_and(|t| t <= now - window) {
            self.cycles.clear();
            self.texts.clear();
        }
    }

    /// The streak of bad cycles ending at the newest finished (or bad) cycle, and the
    /// first and last cycle of it.
    fn streak(&self) -> (u64, Option<(CycleKey, CycleKey)>) {
        let mut iter = self.cycles.iter().rev().peekable();
        // The newest cycle without a match yet is still running: it neither counts nor
        // breaks the streak.
        if iter.peek().is_some_and(|(_, c)| !c.bad) {
            iter.next();
        }
        let mut streak = 0;
        let mut span: Option<(CycleKey, CycleKey)> = None;
        let mut prev: Option<CycleKey> = None;
        for (&key, c) in iter {
            let adjacent = match prev {
                None => true,
                Some((0, p)) if key.0 == 0 => key.1 == p - 1,
                Some(p) => key.0 == p.0 && key.1 == p.1 - 1,
            };
            if !c.bad || !adjacent {
                break;
            }
            streak += 1;
            span = Some((key, span.map_or(key, |s| s.1)));
            prev = Some(key);
        }
        (streak, span)
    }
}

/// One probe run or health-check record.
#[derive(Debug, Clone)]
struct HealthResult {
    at: i64,
    failed: bool,
    detail: String,
}

#[derive(Debug, Default)]
struct Results {
    recent: VecDeque<HealthResult>,
    cap: usize,
}

/// What a group's condition needs, per rule kind.
#[derive(Debug)]
enum Tracker {
    Threshold(Window),
    Consecutive(Cycles),
    Health(Results),
    Absence {
        last_seen: i64,
    },
    /// `new_issue`, `regression`: the changes in the window and the latest one, described.
    Changes {
        window: Window,
        latest: String,
    },
}

/// The health of a health-check record: `meta.status` when it says, else its level.
fn record_failed(obs: &Observed, status_slot: Option<usize>) -> bool {
    let status = status_slot.and_then(|s| obs.meta(s));
    match status.map(str::to_ascii_lowercase).as_deref() {
        Some("ok" | "pass" | "passed" | "up" | "healthy") => false,
        Some("fail" | "failed" | "error" | "down" | "unhealthy" | "critical") => true,
        _ => obs.level >= Level::Error,
    }
}

fn window_text(ms: i64) -> String {
    HumanDuration(std::time::Duration::from_millis(
        u64::try_from(ms).unwrap_or(0),
    ))
    .to_string()
}

impl Tracker {
    fn new(rule: &Rule, baseline: i64) -> Tracker {
        match &rule.condition {
            Condition::Threshold { threshold } => Tracker::Threshold(Window {
                times: VecDeque::new(),
                cap: (*threshold as usize).max(WINDOW_CAP),
            }),
            Condition::Consecutive { .. } => Tracker::Consecutive(Cycles::default()),
            Condition::Health { failures, .. } => Tracker::Health(Results {
                recent: VecDeque::new(),
                cap: (*failures as usize).max(1),
            }),
            Condition::Absence => Tracker::Absence {
                last_seen: baseline,
            },
            Condition::IssueChange { .. } => Tracker::Changes {
                window: Window {
                    times: VecDeque::new(),
                    cap: WINDOW_CAP,
                },
                latest: String::new(),
            },
        }
    }

    /// After a restart: an absence alert that was firing (or pending) is silent since at
    /// least a window before `baseline`, until a record says otherwise.
    fn restore(&mut self, rule: &Rule, state: &AlertState, baseline: i64) {
        if let Tracker::Absence { last_seen } = self
            && matches!(state.status, AlertStatus::Firing | AlertStatus::Pending)
        {
            *last_seen = baseline - rule.window_ms;
        }
    }

    fn add(&mut self, rule: &Rule, obs: &Observed, ts: i64, status_slot: Option<usize>) {
        match (self, &rule.condition) {
            (Tracker::Threshold(w), _) => w.add(ts),
            (Tracker::Consecutive(c), Condition::Consecutive { cycle, .. }) => {
                if let Some(value) = field_value(cycle, obs) {
                    c.add(&value, rule.filter.matches(obs), ts);
                }
            }
            (Tracker::Health(r), _) => {
                let failed = record_failed(obs, status_slot);
                let status = if failed { "failing" } else { "passing" };
                r.push(HealthResult {
                    at: ts,
                    failed,
                    detail: format!("{status} health check from {} ({})", obs.service, obs.event),
                });
            }
            (Tracker::Absence { last_seen }, _) => *last_seen = (*last_seen).max(ts),
            (Tracker::Changes { window, latest }, _) => {
                window.add(ts);
                *latest = format!(
                    "{} in {} ({}, issue {})",
                    obs.title.as_deref().unwrap_or("an issue"),
                    obs.service,
                    obs.level,
                    obs.issue.as_deref().unwrap_or("?")
                );
            }
            (Tracker::Consecutive(_), _) => {}
        }
    }

    fn prune(&mut self, rule: &Rule, now: i64) {
        match self {
            Tracker::Threshold(w) | Tracker::Changes { window: w, .. } => {
                w.prune(now, rule.window_ms)
            }
            Tracker::Consecutive(c) => c.prune(now, rule.window_ms),
            Tracker::Health(r) if rule.window_ms > 0 => {
                while r
                    .recent
                    .front()
                    .is_some_and(|x| x.at <= now - rule.window_ms)
                {
                    r.recent.pop_front();
                }
            }
            Tracker::Health(_) | Tracker::Absence { .. } => {}
        }
    }

    /// Nothing remembered: an `ok` group in this state can be forgotten.
    fn idle(&self) -> bool {
        match self {
            Tracker::Threshold(w) | Tracker::Changes { window: w, .. } => w.times.is_empty(),
            Tracker::Consecutive(c) => c.cycles.is_empty(),
            Tracker::Health(r) => r.recent.is_empty(),
            Tracker::Absence { .. } => false,
        }
    }

    /// Whether the condition holds at `now`, and its value: cheap, evaluated after every
    /// record; [`Tracker::describe`] is asked only when the alert changes state.
    fn assess(&self, rule: &Rule, now: i64, firing: bool) -> (bool, u64) {
        match (self, &rule.condition) {
            (Tracker::Threshold(w), Condition::Threshold { threshold }) => {
                let n = w.times.len() as u64;
                (n >= u64::from(*threshold), n)
            }
            (Tracker::Consecutive(c), Condition::Consecutive { cycles, .. }) => {
                let (streak, _) = c.streak();
                (streak >= u64::from(*cycles), streak)
            }
            (Tracker::Health(r), Condition::Health { failures, .. }) => {
                let in_a_row = r.recent.iter().rev().take_while(|x| x.failed).count() as u64;
                let active = if firing {
                    r.recent.back().is_some_and(|x| x.failed)
                } else {
                    in_a_row >= u64::from(*failures)
                };
                (active, in_a_row)
            }
            (Tracker::Absence { last_seen }, _) => {
                let silent = now.saturating_sub(*last_seen).max(0);
                (
                    silent >= rule.window_ms,
                    u64::try_from(silent / 1000).unwrap_or(0),
                )
            }
            (Tracker::Changes { window: w, .. }, Condition::IssueChange { .. }) => {
                let n = w.times.len() as u64;
                (n >= 1, n)
            }
            _ => (false, 0),
        }
    }

    /// The condition at `now` in words, for notifications and the view.
    fn describe(&self, rule: &Rule, now: i64) -> String {
        let window = window_text(rule.window_ms);
        match (self, &rule.condition) {
            (Tracker::Threshold(w), Condition::Threshold { threshold }) => {
                let n = w.times.len();
                let shown = if n >= w.cap {
                    format!("at least {n}")
                } else {
                    n.to_string()
                };
                format!(
                    "{shown} {} in {window} (threshold {threshold})",
                    rule.filter_text
                )
            }
            (Tracker::Consecutive(c), Condition::Consecutive { cycles, .. }) => {
                let (streak, span) = c.streak();
                let which = match span {
                    Some(((0, a), (0, b))) if a != b => format!(", cycles {a} to {b}"),
                    Some(((0, a), _)) => format!(", cycle {a}"),
                    _ => String::new(),
                };
                format!(
                    "{} in {streak} consecutive cycles{which} (threshold {cycles})",
                    rule.filter_text
                )
            }
            (Tracker::Health(r), Condition::Health { failures, probe }) => {
                let in_a_row = r.recent.iter().rev().take_while(|x| x.failed).count();
                let what = probe
                    .as_deref()
                    .map_or_else(|| "health checks".to_owned(), |p| format!("probe {p}"));
                let last = r
                    .recent
                    .back()
                    .map_or("no result yet", |x| x.detail.as_str());
                if in_a_row > 0 {
                    format!(
                        "{what} failed {in_a_row} time(s) in a row (threshold {failures}): {last}"
                    )
                } else {
                    format!("{what} passing: {last}")
                }
            }
            (Tracker::Absence { last_seen }, _) => {
                let silent = now.saturating_sub(*last_seen).max(0);
                format!(
                    "no {} for {} (allowed {window})",
                    rule.filter_text,
                    window_text(silent - silent % 1000)
                )
            }
            (Tracker::Changes { window: w, latest }, Condition::IssueChange { change }) => {
                let what = match change {
                    IssueChangeKind::New => "new issue",
                    IssueChangeKind::Regression => "regression",
                };
                match w.times.len() {
                    0 => format!("no {what} in {window}"),
                    1 => format!("{what}: {latest}"),
                    n => format!("{n} times {what} in {window}, latest: {latest}"),
                }
            }
            _ => String::new(),
        }
    }
}

impl Results {
    fn push(&mut self, r: HealthResult) {
        self.recent.push_back(r);
        while self.recent.len() > self.cap {
            self.recent.pop_front();
        }
    }
}

/// One group of one rule.
#[derive(Debug)]
struct Group {
    labels: Vec<(String, String)>,
    tracker: Tracker,
    alert: AlertState,
    /// Changed since the last [`Evaluator::take_changes`].
    dirty: bool,
    /// Has a row in the store.
    stored: bool,
}

impl Group {
    /// Evaluates the group's condition at `now` and moves its alert: the transition, if
    /// any (its detail written only then: words cost more than the check).
    fn step(&mut self, rule: &Rule, now: Timestamp) -> Option<Transition> {
        let at = now.unix_millis();
        self.tracker.prune(rule, at);
        let firing = self.alert.status == AlertStatus::Firing;
        let (active, value) = self.tracker.assess(rule, at, firing);
        let t = self
            .alert
            .step(active, value, now, rule.for_ms, rule.repeat_ms)?;
        self.alert.detail = self.tracker.describe(rule, at);
        self.dirty = true;
        Some(t)
    }
}

/// A rule and its groups.
#[derive(Debug)]
struct RuleEval {
    rule: Arc<Rule>,
    groups: HashMap<String, Group>,
    reset_at: Option<Timestamp>,
    evaluated_at: Option<Timestamp>,
    /// Where absence clocks start: the start of what has been read.
    baseline: i64,
    /// The slot of `meta.status` (health records).
    status_slot: Option<usize>,
    rule_dirty: bool,
    /// Stored groups forgotten since the last [`Evaluator::take_changes`].
    deleted: Vec<String>,
    /// Records skipped because the rule had `max_groups` groups.
    dropped: u64,
}

/// What evaluation produced since the last [`Evaluator::take_effects`].
#[derive(Debug, Default)]
pub(crate) struct Effects {
    pub notifications: Vec<Notification>,
    pub checks: Vec<SystemCheck>,
}

/// An alert as `GET /alerts` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupView {
    /// The group's key (`meta.user=u_...`), empty for an ungrouped rule.
    pub group: String,
    /// The group's values by field.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Its state, as persisted.
    #[serde(flatten)]
    pub state: AlertState,
    /// The condition now (the stored `value`/`detail` are from the last transition).
    pub current: CurrentView,
    /// The active silence holding its notifications, by id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silenced_by: Option<String>,
    /// The firing alert inhibiting it (`rule` or `rule/group`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inhibited_by: Option<String>,
}

/// Why an alert's notifications are held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MutedBy {
    /// An active silence, by id.
    Silence(String),
    /// A firing alert of an inhibiting rule (`rule` or `rule/group`).
    Inhibit(String),
}

/// The condition at the moment of the view.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CurrentView {
    /// Whether the condition holds now.
    pub active: bool,
    /// Its value now (records, cycles, failures, seconds of silence).
    pub value: u64,
    /// The condition in words.
    pub detail: String,
}

/// Every rule's evaluation state.
pub(crate) struct Evaluator {
    rules: Vec<RuleEval>,
    ids: RecentIds,
    /// The group key of the record being fed (see [`Evaluator::feed`]).
    key: String,
    max_groups: usize,
    effects: Effects,
    /// Who records the system checks: `evaluator` or `check-alerts`.
    source: &'static str,
    /// Stored alerts of rules that no longer exist, to delete.
    orphans: Vec<(String, String)>,
    /// The silences, as last read from the store.
    silences: Vec<Silence>,
    /// `[[alerts.inhibit]]`.
    inhibits: Vec<Inhibit>,
    /// Rule indices in tick order: inhibiting rules first, so a source firing in the same
    /// tick as its target holds it.
    order: Vec<usize>,
}

impl Evaluator {
    /// An evaluator for `rules`, continuing from `restored` at `now`. Absence clocks start
    /// at `now` (see [`Evaluator::set_baseline`]).
    pub(crate) fn new(
        rules: &[Arc<Rule>],
        meta_keys: &[String],
        max_groups: usize,
        source: &'static str,
        restored: StoredState,
        now: Timestamp,
    ) -> Evaluator {
        let status_slot = meta_keys.iter().position(|k| k == HEALTH_STATUS_KEY);
        let mut evals: Vec<RuleEval> = rules
            .iter()
            .map(|rule| {
                let stored = restored.rules.iter().find(|r| r.rule == rule.name);
                RuleEval {
                    rule: Arc::clone(rule),
                    groups: HashMap::new(),
                    reset_at: stored.and_then(|r| r.reset_at),
                    evaluated_at: stored.and_then(|r| r.evaluated_at),
                    baseline: now.unix_millis(),
                    status_slot,
                    rule_dirty: false,
                    deleted: Vec::new(),
                    dropped: 0,
                }
            })
            .collect();
        let mut orphans = Vec::new();
        for alert in restored.alerts {
            let Some(eval) = evals.iter_mut().find(|e| e.rule.name == alert.rule) else {
                orphans.push((alert.rule, alert.group));
                continue;
            };
            let mut tracker = Tracker::new(&eval.rule, eval.baseline);
            tracker.restore(&eval.rule, &alert.state, eval.baseline);
            eval.groups.insert(
                alert.group,
                Group {
                    labels: alert.labels.into_iter().collect(),
                    tracker,
                    alert: alert.state,
                    dirty: false,
                    stored: true,
                },
            );
        }
        for eval in &mut evals {
            eval.ensure_ungrouped_absence();
        }
        let order = (0..evals.len()).collect();
        Evaluator {
            rules: evals,
            ids: RecentIds::new(RECENT_IDS),
            key: String::new(),
            max_groups,
            effects: Effects::default(),
            source,
            orphans,
            silences: Vec::new(),
            inhibits: Vec::new(),
            order,
        }
    }

    /// Stored alerts (rule, group) to delete on the next commit: those of a rule whose
    /// definition a reload changed.
    pub(crate) fn forget(&mut self, alerts: Vec<(String, String)>) {
        self.orphans.extend(alerts);
    }

    /// The inhibitions; their source rules are evaluated first on every tick.
    pub(crate) fn set_inhibits(&mut self, inhibits: Vec<Inhibit>) {
        let is_source = |e: &RuleEval| inhibits.iter().any(|i| i.sources.contains(&e.rule.name));
        let (mut first, rest): (Vec<usize>, Vec<usize>) =
            (0..self.rules.len()).partition(|&i| is_source(&self.rules[i]));
        first.extend(rest);
        self.order = first;
        self.inhibits = inhibits;
    }

    /// The silences as stored now (read every evaluation interval and after a change).
    pub(crate) fn set_silences(&mut self, silences: Vec<Silence>) {
        self.silences = silences;
    }

    /// Why the notifications of (rule `idx`, group `key`) are held at `now`, if they are.
    pub(crate) fn muted(&self, idx: usize, key: &str, now: Timestamp) -> Option<MutedBy> {
        let e = self.rules.get(idx)?;
        let g = e.groups.get(key)?;
        let alert = AlertRef {
            rule: &e.rule.name,
            group: key,
            labels: &g.labels,
        };
        if let Some(s) = self.silences.iter().find(|s| s.mutes(alert, now)) {
            return Some(MutedBy::Silence(s.id.clone()));
        }
        for inhibit in self
            .inhibits
            .iter()
            .filter(|i| i.targets.contains(&e.rule.name))
        {
            for src in self
                .rules
                .iter()
                .filter(|s| inhibit.sources.contains(&s.rule.name))
            {
                for (skey, sg) in &src.groups {
                    let source = AlertRef {
                        rule: &src.rule.name,
                        group: skey,
                        labels: &sg.labels,
                    };
                    if sg.alert.status == AlertStatus::Firing && inhibit.holds(source, alert) {
                        return Some(MutedBy::Inhibit(if skey.is_empty() {
                            src.rule.name.clone()
                        } else {
                            format!("{}/{skey}", src.rule.name)
                        }));
                    }
                }
            }
        }
        None
    }

    /// Alerts no longer muted send the one notification held for them (see
    /// [`AlertState::release`]).
    pub(crate) fn release(&mut self, now: Timestamp) {
        for idx in 0..self.rules.len() {
            let keys: Vec<String> = self.rules[idx]
                .groups
                .iter()
                .filter(|(_, g)| g.alert.held.is_some())
                .map(|(k, _)| k.clone())
                .collect();
            for key in keys {
                if self.muted(idx, &key, now).is_some() {
                    continue;
                }
                let e = &mut self.rules[idx];
                let Some(g) = e.groups.get_mut(&key) else {
                    continue;
                };
                g.dirty = true;
                let Some(event) = g.alert.release(now) else {
                    continue;
                };
                let t = match event {
                    crate::alert_config::NotifyEvent::Firing => Transition::Firing,
                    crate::alert_config::NotifyEvent::Repeat => Transition::Repeat,
                    crate::alert_config::NotifyEvent::Resolved => Transition::Resolved,
                };
                let rule = Arc::clone(&e.rule);
                let (labels, state) = (g.labels.clone(), g.alert.clone());
                self.announce(&rule, &key, &labels, &state, t, now, false);
            }
        }
    }

    /// Silences "until resolved" that no longer match a pending or firing alert end now;
    /// returns them, changed, to be stored.
    pub(crate) fn end_until_resolved(&mut self, now: Timestamp) -> Vec<Silence> {
        let mut ended = Vec::new();
        for i in 0..self.silences.len() {
            let s = &self.silences[i];
            if !s.until_resolved || s.status(now) != SilenceStatus::Active {
                continue;
            }
            let live = self.rules.iter().any(|e| {
                e.groups.iter().any(|(key, g)| {
                    matches!(g.alert.status, AlertStatus::Firing | AlertStatus::Pending)
                        && s.matches(AlertRef {
                            rule: &e.rule.name,
                            group: key,
                            labels: &g.labels,
                        })
                })
            });
            if !live && self.silences[i].expire(now) {
                ended.push(self.silences[i].clone());
            }
        }
        ended
    }

    /// The rules, in evaluation order.
    pub(crate) fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.rules.iter().map(|e| &e.rule)
    }

    pub(crate) fn rule_index(&self, name: &str) -> Option<usize> {
        self.rules.iter().position(|e| e.rule.name == name)
    }

    pub(crate) fn reset_at(&self, idx: usize) -> Option<Timestamp> {
        self.rules.get(idx).and_then(|e| e.reset_at)
    }

    pub(crate) fn evaluated_at(&self, idx: usize) -> Option<Timestamp> {
        self.rules.get(idx).and_then(|e| e.evaluated_at)
    }

    /// Records where the evaluation of rule `idx` stopped: the end of a `check-alerts` run,
    /// or the server's latest persisted decision. The next `check-alerts` continues from
    /// there.
    pub(crate) fn set_evaluated_at(&mut self, idx: usize, at: Timestamp) {
        if let Some(e) = self.rules.get_mut(idx) {
            e.evaluated_at = Some(at);
            e.rule_dirty = true;
        }
    }

    /// [`Evaluator::set_evaluated_at`] for every rule.
    pub(crate) fn set_all_evaluated_at(&mut self, at: Timestamp) {
        for idx in 0..self.rules.len() {
            self.set_evaluated_at(idx, at);
        }
    }

    /// Whether [`Evaluator::take_changes`] has anything to persist.
    pub(crate) fn has_changes(&self) -> bool {
        !self.orphans.is_empty()
            || self.rules.iter().any(|e| {
                e.rule_dirty || !e.deleted.is_empty() || e.groups.values().any(|g| g.dirty)
            })
    }

    /// Starts absence clocks of rule `idx` at `at`: a source silent since then fires one
    /// window later. The server starts them when it starts; `check-alerts` at the start of
    /// what it reads, or of its window on a rule's first run. An alert restored as firing
    /// or pending stays so until a record comes. Call it before anything is read.
    pub(crate) fn set_baseline(&mut self, idx: usize, at: Timestamp) {
        if let Some(e) = self.rules.get_mut(idx) {
            e.baseline = at.unix_millis();
            for g in e.groups.values_mut() {
                g.tracker = Tracker::new(&e.rule, e.baseline);
                g.tracker.restore(&e.rule, &g.alert, e.baseline);
            }
        }
    }

    /// A record as it arrives: counted once per id by every rule that wants it, and those
    /// groups evaluated at once.
    pub(crate) fn observe(&mut self, obs: &Observed, now: Timestamp) {
        if let Some(id) = obs.id
            && !self.ids.insert(id)
        {
            return;
        }
        for idx in 0..self.rules.len() {
            if self.rules[idx].rule.wants(obs) {
                self.feed(idx, obs, now, true);
            }
        }
    }

    /// A stored record read on start: remembered by rule `idx` without evaluating (the
    /// stored state already reflects it).
    pub(crate) fn prime(&mut self, idx: usize, obs: &Observed) {
        if let Some(id) = obs.id {
            self.ids.insert(id);
        }
        if self.rules.get(idx).is_some_and(|e| e.rule.wants(obs)) {
            self.feed(idx, obs, obs.ts, false);
        }
    }

    /// A stored record replayed by `check-alerts` at its own time: counted and evaluated.
    pub(crate) fn replay(&mut self, idx: usize, obs: &Observed) {
        if self.rules.get(idx).is_some_and(|e| e.rule.wants(obs)) {
            self.feed(idx, obs, obs.ts, true);
        }
    }

    fn feed(&mut self, idx: usize, obs: &Observed, now: Timestamp, live: bool) {
        // One key buffer for every record (a known group costs no allocation); taken out
        // of `self` while `decided` borrows it, and put back.
        let mut key = std::mem::take(&mut self.key);
        self.feed_with(idx, obs, now, live, &mut key);
        self.key = key;
    }

    fn feed_with(
        &mut self,
        idx: usize,
        obs: &Observed,
        now: Timestamp,
        live: bool,
        key: &mut String,
    ) {
        let max_groups = self.max_groups;
        let e = &mut self.rules[idx];
        if e.reset_at.is_some_and(|r| obs.ts < r) {
            return;
        }
        if !e.rule.group_into(obs, key) {
            return;
        }
        let key = key.as_str();
        let ts = obs.ts.min(now).unix_millis();
        let status_slot = e.status_slot;
        // One hash of the key for a known group: the common case.
        let g = match e.groups.get_mut(key) {
            Some(g) => g,
            None => {
                if e.groups.len() >= max_groups {
                    e.evict_idle();
                }
                if e.groups.len() >= max_groups {
                    e.dropped += 1;
                    return;
                }
                e.groups.entry(key.to_owned()).or_insert(Group {
                    labels: e.rule.labels_of(obs),
                    tracker: Tracker::new(&e.rule, e.baseline),
                    alert: AlertState::new(now),
                    dirty: false,
                    stored: false,
                })
            }
        };
        g.tracker.add(&e.rule, obs, ts, status_slot);
        if live && let Some(t) = g.step(&e.rule, now) {
            self.decided(idx, key, t, now);
        }
    }

    /// A probe's result: fed to every health rule on that probe.
    pub(crate) fn probe_result(
        &mut self,
        probe: &str,
        failed: bool,
        detail: &str,
        at: Timestamp,
        live: bool,
    ) {
        for idx in 0..self.rules.len() {
            let e = &mut self.rules[idx];
            let Condition::Health { probe: Some(p), .. } = &e.rule.condition else {
                continue;
            };
            if p != probe || e.reset_at.is_some_and(|r| at < r) {
                continue;
            }
            let rule = Arc::clone(&e.rule);
            let g = e.groups.entry(String::new()).or_insert_with(|| Group {
                labels: Vec::new(),
                tracker: Tracker::new(&rule, 0),
                alert: AlertState::new(at),
                dirty: false,
                stored: false,
            });
            if let Tracker::Health(r) = &mut g.tracker {
                r.push(HealthResult {
                    at: at.unix_millis(),
                    failed,
                    detail: detail.to_owned(),
                });
            }
            if live {
                self.evaluate(idx, "", at);
            }
        }
    }

    /// Evaluates every group of every rule at `now`: windows slide, `for` and reminders
    /// come due, silence is noticed.
    pub(crate) fn tick(&mut self, now: Timestamp) {
        for i in 0..self.order.len() {
            self.tick_rule(self.order[i], now);
        }
        self.release(now);
    }

    /// [`Evaluator::tick`] for one rule.
    pub(crate) fn tick_rule(&mut self, idx: usize, now: Timestamp) {
        let Some(e) = self.rules.get(idx) else { return };
        let keys: Vec<String> = e.groups.keys().cloned().collect();
        for key in keys {
            self.evaluate(idx, &key, now);
        }
        if let Some(e) = self.rules.get_mut(idx) {
            e.evict_idle();
        }
    }

    fn evaluate(&mut self, idx: usize, key: &str, now: Timestamp) {
        let e = &mut self.rules[idx];
        if let Some(t) = e.groups.get_mut(key).and_then(|g| g.step(&e.rule, now)) {
            self.decided(idx, key, t, now);
        }
    }

    /// A transition of (rule `idx`, group `key`) was decided: its effects, with the
    /// notification held instead if the alert is muted.
    fn decided(&mut self, idx: usize, key: &str, t: Transition, now: Timestamp) {
        let muted = t.event().is_some() && self.muted(idx, key, now).is_some();
        let e = &mut self.rules[idx];
        let Some(g) = e.groups.get_mut(key) else {
            return;
        };
        let event = t.event();
        let send = match event {
            Some(event) if muted => {
                g.alert.hold(event);
                None
            }
            Some(event) => g.alert.merge_held(event),
            None => None,
        };
        let rule = Arc::clone(&e.rule);
        let (labels, state) = (g.labels.clone(), g.alert.clone());
        self.announce(&rule, key, &labels, &state, t, now, true);
        if event.is_some() && send != event {
            // The system check (history) stays; the notification is held, or merged with
            // the one held before.
            self.effects.notifications.pop();
            if let Some(send) = send {
                let n = Notification::new(&rule, key, &labels, &state, send, now);
                self.effects.notifications.push(n);
            }
        }
    }

    /// Effects of a transition: the notification, and the system check if the rule asks
    /// and `check` (not for a held notification released later).
    #[allow(clippy::too_many_arguments)]
    fn announce(
        &mut self,
        rule: &Rule,
        key: &str,
        labels: &[(String, String)],
        state: &AlertState,
        t: Transition,
        now: Timestamp,
        check: bool,
    ) {
        let Some(event) = t.event() else { return };
        let n = Notification::new(rule, key, labels, state, event, now);
        if check
            && rule.has_action(&Action::SystemCheck)
            && event != crate::alert_config::NotifyEvent::Repeat
        {
            self.effects.checks.push(SystemCheck {
                name: rule.name.clone(),
                kind: CheckKind::Rule,
                status: if t == Transition::Firing {
                    CheckStatus::Failed
                } else {
                    CheckStatus::Ok
                },
                detail: n.summary.clone(),
                group: (!key.is_empty()).then(|| key.to_owned()),
                source: self.source.to_owned(),
                checked_at: now,
            });
        }
        self.effects.notifications.push(n);
    }

    /// A manual reset of rule `idx`: firing groups resolve (and say so, reason `reset`),
    /// every group is forgotten, and records older than `now` no longer count. Returns how
    /// many alerts were firing.
    pub(crate) fn reset(&mut self, idx: usize, now: Timestamp) -> usize {
        let Some(e) = self.rules.get_mut(idx) else {
            return 0;
        };
        e.reset_at = Some(now);
        e.baseline = now.unix_millis();
        e.rule_dirty = true;
        let rule = Arc::clone(&e.rule);
        let mut resolved = Vec::new();
        let keys: Vec<String> = e.groups.keys().cloned().collect();
        for key in keys {
            let Some(mut g) = e.groups.remove(&key) else {
                continue;
            };
            match g.alert.reset(now) {
                Some(t) => {
                    // Kept (resolved, with its notification owed) until it is delivered.
                    g.tracker = Tracker::new(&rule, e.baseline);
                    g.dirty = true;
                    resolved.push((key.clone(), t));
                    e.groups.insert(key, g);
                }
                None if g.stored => e.deleted.push(key),
                None => {}
            }
        }
        e.ensure_ungrouped_absence();
        let n = resolved.len();
        for (key, t) in resolved {
            self.decided(idx, &key, t, now);
        }
        n
    }

    /// `event` of (rule, group) was delivered on every channel.
    pub(crate) fn delivered(
        &mut self,
        rule: &str,
        group: &str,
        event: crate::alert_config::NotifyEvent,
    ) {
        if let Some(g) = self
            .rules
            .iter_mut()
            .find(|e| e.rule.name == rule)
            .and_then(|e| e.groups.get_mut(group))
            && g.alert.delivered(event)
        {
            g.dirty = true;
        }
    }

    /// Notifications decided before a restart and never delivered, to send now.
    pub(crate) fn owed(&self, now: Timestamp) -> Vec<Notification> {
        let mut out = Vec::new();
        for e in &self.rules {
            for (key, g) in &e.groups {
                for &event in &g.alert.owed {
                    out.push(Notification::new(
                        &e.rule, key, &g.labels, &g.alert, event, now,
                    ));
                }
            }
        }
        out
    }

    pub(crate) fn take_effects(&mut self) -> Effects {
        std::mem::take(&mut self.effects)
    }

    /// What changed since the last call, for [`AlertStore::save`](super::store::AlertStore).
    pub(crate) fn take_changes(&mut self) -> StateChanges {
        let mut changes = StateChanges {
            delete: std::mem::take(&mut self.orphans),
            ..StateChanges::default()
        };
        for e in &mut self.rules {
            if std::mem::take(&mut e.rule_dirty) {
                changes.rules.push(StoredRule {
                    rule: e.rule.name.clone(),
                    reset_at: e.reset_at,
                    evaluated_at: e.evaluated_at,
                });
            }
            for key in e.deleted.drain(..) {
                changes.delete.push((e.rule.name.clone(), key));
            }
            for (key, g) in &mut e.groups {
                if !std::mem::take(&mut g.dirty) {
                    continue;
                }
                if g.alert.status == AlertStatus::Ok && g.alert.owed.is_empty() {
                    if std::mem::take(&mut g.stored) {
                        changes.delete.push((e.rule.name.clone(), key.clone()));
                    }
                } else {
                    g.stored = true;
                    changes.upsert.push(StoredAlert {
                        rule: e.rule.name.clone(),
                        group: key.clone(),
                        labels: g.labels.iter().cloned().collect(),
                        state: g.alert.clone(),
                    });
                }
            }
        }
        changes
    }

    /// Every group of rule `idx`, worst first, with its condition at `now`.
    pub(crate) fn groups(&self, idx: usize, now: Timestamp) -> Vec<GroupView> {
        let Some(e) = self.rules.get(idx) else {
            return Vec::new();
        };
        let mut out: Vec<GroupView> = e
            .groups
            .iter()
            .filter(|(_, g)| g.alert.status != AlertStatus::Ok || !g.tracker.idle())
            .map(|(key, g)| self.group_view(idx, e, key, g, now))
            .collect();
        out.sort_by(|a, b| {
            b.state
                .status
                .cmp(&a.state.status)
                .then(b.current.value.cmp(&a.current.value))
                .then(a.group.cmp(&b.group))
        });
        out
    }

    /// The firing groups of rule `idx` whose `label` is `value` (one user's alerts), as
    /// [`Evaluator::groups`] shows them: only those groups' conditions are computed.
    pub(crate) fn firing_with(
        &self,
        idx: usize,
        label: &str,
        value: &str,
        now: Timestamp,
    ) -> Vec<GroupView> {
        let Some(e) = self.rules.get(idx) else {
            return Vec::new();
        };
        e.groups
            .iter()
            .filter(|(_, g)| {
                g.alert.status == AlertStatus::Firing
                    && g.labels.iter().any(|(k, v)| k == label && v == value)
            })
            .map(|(key, g)| self.group_view(idx, e, key, g, now))
            .collect()
    }

    fn group_view(
        &self,
        idx: usize,
        e: &RuleEval,
        key: &str,
        g: &Group,
        now: Timestamp,
    ) -> GroupView {
        let firing = g.alert.status == AlertStatus::Firing;
        let (active, value) = g.tracker.assess(&e.rule, now.unix_millis(), firing);
        let muted = self.muted(idx, key, now);
        GroupView {
            group: key.to_owned(),
            labels: g.labels.iter().cloned().collect(),
            state: g.alert.clone(),
            current: CurrentView {
                active,
                value,
                detail: g.tracker.describe(&e.rule, now.unix_millis()),
            },
            silenced_by: match &muted {
                Some(MutedBy::Silence(id)) => Some(id.clone()),
                _ => None,
            },
            inhibited_by: match muted {
                Some(MutedBy::Inhibit(by)) => Some(by),
                _ => None,
            },
        }
    }

    /// The rule's result as a system check: failed while any group fires, pending while
    /// any is pending, else ok; with the worst group's detail.
    pub(crate) fn check(&self, idx: usize, now: Timestamp) -> Option<SystemCheck> {
        let e = self.rules.get(idx)?;
        let worst = self.groups(idx, now).into_iter().next();
        let (status, detail, group) = match &worst {
            Some(g) if g.state.status == AlertStatus::Firing => (
                CheckStatus::Failed,
                g.current.detail.clone(),
                Some(g.group.clone()),
            ),
            Some(g) if g.state.status == AlertStatus::Pending => (
                CheckStatus::Pending,
                g.current.detail.clone(),
                Some(g.group.clone()),
            ),
            Some(g) => (CheckStatus::Ok, g.current.detail.clone(), None),
            None => (
                CheckStatus::Ok,
                format!("no {} in the window", e.rule.filter_text),
                None,
            ),
        };
        let detail = if e.rule.kind == RuleKind::Health && worst.is_none() {
            "no result yet".to_owned()
        } else {
            detail
        };
        Some(SystemCheck {
            name: e.rule.name.clone(),
            kind: CheckKind::Rule,
            status,
            detail,
            group: group.filter(|g| !g.is_empty()),
            source: self.source.to_owned(),
            checked_at: now,
        })
    }

    /// Alerts firing now: (rule, group view).
    pub(crate) fn firing(&self, now: Timestamp) -> Vec<(Arc<Rule>, GroupView)> {
        let mut out = Vec::new();
        for (idx, e) in self.rules.iter().enumerate() {
            for g in self.groups(idx, now) {
                if g.state.status == AlertStatus::Firing {
                    out.push((Arc::clone(&e.rule), g));
                }
            }
        }
        out
    }

    /// Records skipped because a rule was at `max_groups`, per rule.
    pub(crate) fn dropped(&self, idx: usize) -> u64 {
        self.rules.get(idx).map_or(0, |e| e.dropped)
    }
}

impl RuleEval {
    /// An ungrouped absence rule has its one group from the start, so silence from the
    /// very beginning is noticed.
    fn ensure_ungrouped_absence(&mut self) {
        if self.rule.kind == RuleKind::Absence && self.rule.group_by.is_empty() {
            let rule = Arc::clone(&self.rule);
            let baseline = self.baseline;
            self.groups.entry(String::new()).or_insert_with(|| Group {
                labels: Vec::new(),
                tracker: Tracker::new(&rule, baseline),
                alert: AlertState::new(Timestamp::from_unix_millis(baseline)),
                dirty: false,
                stored: false,
            });
        }
    }

    /// Forgets `ok` groups with nothing in their window.
    fn evict_idle(&mut self) {
        let deleted = &mut self.deleted;
        self.groups.retain(|key, g| {
            let keep =
                g.alert.status != AlertStatus::Ok || !g.alert.owed.is_empty() || !g.tracker.idle();
            if !keep && g.stored {
                deleted.push(key.clone());
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests;
