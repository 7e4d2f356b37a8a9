//! Issues: error events grouped by fingerprint, the same on every store.
//!
//! The ingest server gives every error event its issue id (`Record::issue`, from
//! `faultline_schema::fingerprint`) before it is stored; a store keeps one aggregate per
//! issue, updated with the records it actually stores (a duplicate id counts nothing):
//! how many events (`meta.count` times `meta.sample_weight`), how many distinct `meta.user`,
//! first and last seen, first and last release, status, regression, and counts per hour
//! over the last [`HOURLY_DAYS`] days.
//!
//! - this file: the types every store answers with ([`Issue`], [`IssueQuery`],
//!   [`IssuePage`], [`IssueDetail`], [`IssueChange`]).
//! - `event.rs`: [`IssueEvent`], what one stored record adds to its issue, and
//!   [`IssueTags`], the top values among an issue's events.
//! - `table.rs`: [`IssueTable`], the aggregates in memory (the file store's, persisted by
//!   `file/issues.rs`); PostgreSQL keeps them in tables (`postgres/issues.rs`).

mod event;
mod table;

use std::fmt;
use std::str::FromStr;

use faultline_schema::{Level, Timestamp};
use serde::{Deserialize, Serialize};

pub use event::{IssueEvent, IssueTags, TagCount, browser_of, event_weight, url_path};
pub use table::IssueTable;

/// Hourly counts are kept for this many days.
pub const HOURLY_DAYS: i64 = 14;
/// The most issues one list answer holds.
pub const MAX_ISSUE_LIMIT: usize = 500;
/// The number of issues a list answer holds when no limit is given.
pub const DEFAULT_ISSUE_LIMIT: usize = 50;
/// How long an issue is kept after its last event, unless configured otherwise.
pub const DEFAULT_ISSUE_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(90 * 24 * 60 * 60);

const HOUR_MS: i64 = 3_600_000;

/// The start of the hour `ts` falls in, in milliseconds.
pub fn hour_of(ts: Timestamp) -> i64 {
    let ms = ts.unix_millis();
    ms - ms.rem_euclid(HOUR_MS)
}

/// What a developer decided about an issue.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum IssueStatus {
    /// Open (the state of a new issue, and of a resolved one that got another event).
    #[default]
    Unresolved,
    /// Fixed; the next event reopens it as a regression.
    Resolved,
    /// Muted: events still count, nothing reopens or alerts on it.
    Ignored,
}

impl IssueStatus {
    /// The lowercase name, as in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueStatus::Unresolved => "unresolved",
            IssueStatus::Resolved => "resolved",
            IssueStatus::Ignored => "ignored",
        }
    }
}

impl FromStr for IssueStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "unresolved" => Ok(IssueStatus::Unresolved),
            "resolved" => Ok(IssueStatus::Resolved),
            "ignored" => Ok(IssueStatus::Ignored),
            other => Err(format!(
                "{other:?} is not a status: use unresolved, resolved or ignored"
            )),
        }
    }
}

impl fmt::Display for IssueStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One issue: the aggregate of its stored error events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    /// The issue id (16 hex characters).
    pub id: String,
    /// `error_type: message` of its first event.
    pub title: String,
    /// Where its first event happened (innermost in-app frame), else its event key.
    pub culprit: String,
    /// The service whose events these are.
    pub service: String,
    /// The worst level among its events.
    pub level: Level,
    /// `meta.error_type` of its first event.
    #[serde(default)]
    pub error_type: Option<String>,
    /// Events: each stored record's `meta.count` (default 1) times its sample weight.
    pub count: u64,
    /// Distinct `meta.user` among its events.
    pub users: u64,
    /// The earliest `ts` among its events.
    pub first_seen: Timestamp,
    /// The latest `ts` among its events.
    pub last_seen: Timestamp,
    /// Unresolved, resolved or ignored.
    pub status: IssueStatus,
    /// `meta.release` of the first stored event that had one.
    #[serde(default)]
    pub release_first: Option<String>,
    /// `meta.release` of the last stored event that had one.
    #[serde(default)]
    pub release_last: Option<String>,
    /// When the store created the issue (the store's clock, not the event's).
    pub created_at: Timestamp,
    /// When an event last reopened it after it was resolved (the store's clock).
    #[serde(default)]
    pub regressed_at: Option<Timestamp>,
    /// `meta.release` of the event that reopened it.
    #[serde(default)]
    pub regressed_in: Option<String>,
    /// When its status was last set through the API.
    #[serde(default)]
    pub status_changed_at: Option<Timestamp>,
}

/// How a list of issues is ordered (always newest or largest first; ties by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IssueSort {
    /// By `last_seen` (the default).
    #[default]
    LastSeen,
    /// By `first_seen`.
    FirstSeen,
    /// By `count`.
    Count,
    /// By `users`.
    Users,
}

impl IssueSort {
    /// The value an issue is ordered by.
    pub fn key(self, issue: &Issue) -> i64 {
        match self {
            IssueSort::LastSeen => issue.last_seen.unix_millis(),
            IssueSort::FirstSeen => issue.first_seen.unix_millis(),
            IssueSort::Count => i64::try_from(issue.count).unwrap_or(i64::MAX),
            IssueSort::Users => i64::try_from(issue.users).unwrap_or(i64::MAX),
        }
    }
}

impl FromStr for IssueSort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "last_seen" => Ok(IssueSort::LastSeen),
            "first_seen" => Ok(IssueSort::FirstSeen),
            "count" => Ok(IssueSort::Count),
            "users" => Ok(IssueSort::Users),
            other => Err(format!(
                "{other:?} is not a sort: use last_seen, first_seen, count or users"
            )),
        }
    }
}

/// Where the previous page of a list ended: its last issue's sort value and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueCursor {
    /// The sort value of the last issue returned.
    pub value: i64,
    /// Its id.
    pub id: String,
}

impl fmt::Display for IssueCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.value, self.id)
    }
}

impl FromStr for IssueCursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a cursor: pass the `next` of the previous answer");
        let (value, id) = s.rsplit_once('_').ok_or_else(bad)?;
        let value = value.parse().map_err(|_| bad())?;
        if !faultline_schema::is_issue_id(id) {
            return Err(bad());
        }
        Ok(IssueCursor {
            value,
            id: id.to_owned(),
        })
    }
}

/// Which issues to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueQuery {
    /// Only this service's.
    pub service: Option<String>,
    /// Only issues with this status; `None` for all.
    pub status: Option<IssueStatus>,
    /// The order.
    pub sort: IssueSort,
    /// Only issues seen (`last_seen`) at or after this instant.
    pub since: Option<Timestamp>,
    /// At most this many (1 to [`MAX_ISSUE_LIMIT`]).
    pub limit: usize,
    /// Continue after this position.
    pub cursor: Option<IssueCursor>,
}

impl Default for IssueQuery {
    fn default() -> Self {
        IssueQuery {
            service: None,
            status: Some(IssueStatus::Unresolved),
            sort: IssueSort::LastSeen,
            since: None,
            limit: DEFAULT_ISSUE_LIMIT,
            cursor: None,
        }
    }
}

impl IssueQuery {
    /// Whether `issue` passes the filters (not the cursor).
    pub fn matches(&self, issue: &Issue) -> bool {
        self.service.as_ref().is_none_or(|s| *s == issue.service)
            && self.status.is_none_or(|s| s == issue.status)
            && self.since.is_none_or(|t| issue.last_seen >= t)
    }

    /// Whether `issue` comes after the cursor in this order.
    pub fn after_cursor(&self, issue: &Issue) -> bool {
        self.cursor.as_ref().is_none_or(|c| {
            let key = self.sort.key(issue);
            key < c.value || (key == c.value && issue.id.as_str() < c.id.as_str())
        })
    }
}

/// A page of issues and where the next one starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IssuePage {
    /// The issues, in the query's order, each with its last 24 hours.
    pub issues: Vec<IssueSummary>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// An issue in a list: the issue and its counts per hour over the last 24 hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueSummary {
    /// The issue.
    #[serde(flatten)]
    pub issue: Issue,
    /// Events per hour over the last 24 hours, oldest first; the last entry is the current
    /// hour.
    pub hourly_24h: Vec<u64>,
}

/// One issue with its counts per hour over the last [`HOURLY_DAYS`] days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueDetail {
    /// The issue.
    #[serde(flatten)]
    pub issue: Issue,
    /// One entry per hour, oldest first, the last being the current hour (`HOURLY_DAYS * 24`
    /// entries, zeros included).
    pub hourly: Vec<HourCount>,
}

/// Events in one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HourCount {
    /// The start of the hour.
    pub hour: Timestamp,
    /// Events in it.
    pub count: u64,
}

/// `hours` ending with the hour of `now`, zeros filled in, from sparse `(hour_ms, count)`.
pub fn hour_series(sparse: &[(i64, u64)], now: Timestamp, hours: i64) -> Vec<HourCount> {
    let last = hour_of(now);
    let first = last - (hours - 1) * HOUR_MS;
    let mut out: Vec<HourCount> = (0..hours)
        .map(|i| HourCount {
            hour: Timestamp::from_unix_millis(first + i * HOUR_MS),
            count: 0,
        })
        .collect();
    for &(hour, count) in sparse {
        if hour >= first && hour <= last {
            let i = usize::try_from((hour - first) / HOUR_MS).unwrap_or(0);
            if let Some(slot) = out.get_mut(i) {
                slot.count = slot.count.saturating_add(count);
            }
        }
    }
    out
}

/// What happened to an issue that alert rules care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueChangeKind {
    /// Its first event was stored.
    New,
    /// An event reopened it after it was resolved.
    Regression,
}

/// An issue that was created or regressed, for the alert rules `new_issue` and
/// `regression`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueChange {
    /// What happened.
    pub kind: IssueChangeKind,
    /// When (the store's clock): `created_at` or `regressed_at`.
    pub at: Timestamp,
    /// The issue as it is now.
    pub issue: Issue,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = IssueCursor {
            value: -5,
            id: "0123456789abcdef".into(),
        };
        assert_eq!(c.to_string().parse::<IssueCursor>().unwrap(), c);
        for bad in ["", "5", "x_0123456789abcdef", "5_xyz", "5_0123456789ABCDEF"] {
            assert!(bad.parse::<IssueCursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn hour_series_fills_zeros_and_drops_old_hours() {
        let now = Timestamp::from_unix_millis(100 * HOUR_MS + 5);
        let s = hour_series(&[(99 * HOUR_MS, 3), (100 * HOUR_MS, 2), (1, 9)], now, 3);
        let counts: Vec<u64> = s.iter().map(|h| h.count).collect();
        assert_eq!(counts, [0, 3, 2]);
        assert_eq!(s[2].hour, Timestamp::from_unix_millis(100 * HOUR_MS));
    }
}
