//! [`IssueTable`]: every issue's aggregate in memory, with the same rules as PostgreSQL's
//! `issues` tables.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use faultline_schema::Timestamp;
use serde::{Deserialize, Serialize};

use super::{
    HOUR_MS, HOURLY_DAYS, Issue, IssueChange, IssueChangeKind, IssueCursor, IssueDetail,
    IssueEvent, IssuePage, IssueQuery, IssueStatus, IssueSummary, MAX_ISSUE_LIMIT, hour_of,
    hour_series,
};

/// The aggregates of every issue, updated one stored event at a time.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct IssueTable {
    issues: HashMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    issue: Issue,
    /// The distinct users, as 64-bit ids (an anonymized `u_…` id is already one).
    users: HashSet<u64>,
    /// Events per hour (start of the hour in ms), the last [`HOURLY_DAYS`] days.
    hours: BTreeMap<i64, u64>,
}

/// A user id as 64 bits: the hex of an anonymized id, else a hash of the text.
fn user_key(user: &str) -> u64 {
    let hex = user
        .strip_prefix(faultline_schema::USER_ID_PREFIX)
        .filter(|h| h.len() == faultline_schema::USER_ID_HEX_CHARS)
        .unwrap_or("");
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| {
        let id = faultline_schema::fingerprint::issue_id("user", &[user.to_owned()]);
        u64::from_str_radix(&id, 16).unwrap_or(0)
    })
}

/// The first hour kept for hourly counts when it is `now`.
fn first_hour(now: Timestamp) -> i64 {
    hour_of(now) - (HOURLY_DAYS * 24 - 1) * HOUR_MS
}

impl IssueTable {
    /// An empty table.
    pub fn new() -> IssueTable {
        IssueTable::default()
    }

    /// How many issues it holds.
    pub fn len(&self) -> usize {
        self.issues.len()
    }

    /// Whether it holds no issue.
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// Whether the table holds issue `id`.
    pub fn contains(&self, id: &str) -> bool {
        self.issues.contains_key(id)
    }

    /// Adds one stored event; `now` is the store's clock (`created_at`, `regressed_at`).
    /// Returns whether that created the issue or reopened it.
    pub fn apply(&mut self, event: &IssueEvent, now: Timestamp) -> Option<IssueChangeKind> {
        let hour = hour_of(event.ts);
        let keep_hour = hour >= first_hour(now);
        let Some(entry) = self.issues.get_mut(&event.issue) else {
            let mut entry = Entry {
                issue: Issue {
                    id: event.issue.clone(),
                    title: event.title.clone(),
                    culprit: event.culprit.clone(),
                    service: event.service.clone(),
                    level: event.level,
                    error_type: event.error_type.clone(),
                    count: event.weight,
                    users: u64::from(event.user.is_some()),
                    first_seen: event.ts,
                    last_seen: event.ts,
                    status: IssueStatus::Unresolved,
                    release_first: event.release.clone(),
                    release_last: event.release.clone(),
                    created_at: now,
                    regressed_at: None,
                    regressed_in: None,
                    status_changed_at: None,
                },
                users: event.user.as_deref().map(user_key).into_iter().collect(),
                hours: BTreeMap::new(),
            };
            if keep_hour {
                entry.hours.insert(hour, event.weight);
            }
            self.issues.insert(event.issue.clone(), entry);
            return Some(IssueChangeKind::New);
        };
        let issue = &mut entry.issue;
        issue.count = issue.count.saturating_add(event.weight);
        if let Some(user) = &event.user
            && entry.users.insert(user_key(user))
        {
            issue.users += 1;
        }
        issue.first_seen = issue.first_seen.min(event.ts);
        issue.last_seen = issue.last_seen.max(event.ts);
        issue.level = issue.level.max(event.level);
        if issue.release_first.is_none() {
            issue.release_first.clone_from(&event.release);
        }
        if event.release.is_some() {
            issue.release_last.clone_from(&event.release);
        }
        if keep_hour {
            let slot = entry.hours.entry(hour).or_default();
            *slot = slot.saturating_add(event.weight);
        }
        if issue.status == IssueStatus::Resolved {
            issue.status = IssueStatus::Unresolved;
            issue.regressed_at = Some(now);
            issue.regressed_in.clone_from(&event.release);
            return Some(IssueChangeKind::Regression);
        }
        None
    }

    /// The page of issues `query` asks for, each with its last 24 hours ending at `now`.
    pub fn list(&self, query: &IssueQuery, now: Timestamp) -> IssuePage {
        let mut hits: Vec<&Entry> = self
            .issues
            .values()
            .filter(|e| query.matches(&e.issue) && query.after_cursor(&e.issue))
            .collect();
        let sort = query.sort;
        hits.sort_unstable_by(|a, b| {
            (sort.key(&b.issue), &b.issue.id).cmp(&(sort.key(&a.issue), &a.issue.id))
        });
        let limit = query.limit.clamp(1, MAX_ISSUE_LIMIT);
        let next = (hits.len() > limit).then(|| {
            let last = &hits[limit - 1].issue;
            IssueCursor {
                value: sort.key(last),
                id: last.id.clone(),
            }
            .to_string()
        });
        hits.truncate(limit);
        IssuePage {
            issues: hits
                .into_iter()
                .map(|e| IssueSummary {
                    issue: e.issue.clone(),
                    hourly_24h: e
                        .hours_series(now, 24)
                        .into_iter()
                        .map(|h| h.count)
                        .collect(),
                })
                .collect(),
            next,
        }
    }

    /// One issue with its hourly counts over the last [`HOURLY_DAYS`] days ending at `now`.
    pub fn get(&self, id: &str, now: Timestamp) -> Option<IssueDetail> {
        let entry = self.issues.get(id)?;
        Some(IssueDetail {
            issue: entry.issue.clone(),
            hourly: entry.hours_series(now, HOURLY_DAYS * 24),
        })
    }

    /// Sets an issue's status; `None` if there is no such issue.
    pub fn set_status(&mut self, id: &str, status: IssueStatus, now: Timestamp) -> Option<Issue> {
        let entry = self.issues.get_mut(id)?;
        entry.issue.status = status;
        entry.issue.status_changed_at = Some(now);
        Some(entry.issue.clone())
    }

    /// Issues created or regressed at or after `since` (the store's clock), oldest first.
    pub fn changes_since(&self, since: Timestamp) -> Vec<IssueChange> {
        let mut out = Vec::new();
        for e in self.issues.values() {
            if e.issue.created_at >= since {
                out.push(IssueChange {
                    kind: IssueChangeKind::New,
                    at: e.issue.created_at,
                    issue: e.issue.clone(),
                });
            }
            if let Some(at) = e.issue.regressed_at.filter(|t| *t >= since) {
                out.push(IssueChange {
                    kind: IssueChangeKind::Regression,
                    at,
                    issue: e.issue.clone(),
                });
            }
        }
        out.sort_by(|a, b| (a.at, &a.issue.id).cmp(&(b.at, &b.issue.id)));
        out
    }

    /// Forgets issues whose last event is older than `retention` before `now`, and hourly
    /// counts older than [`HOURLY_DAYS`]. Returns how many issues were forgotten.
    pub fn prune(&mut self, now: Timestamp, retention: Duration) -> usize {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now.unix_millis().saturating_sub(retention_ms);
        let before = self.issues.len();
        self.issues
            .retain(|_, e| e.issue.last_seen.unix_millis() >= cutoff);
        let first = first_hour(now);
        for e in self.issues.values_mut() {
            if e.hours.first_key_value().is_some_and(|(h, _)| *h < first) {
                e.hours = e.hours.split_off(&first);
            }
        }
        before - self.issues.len()
    }
}

impl Entry {
    fn hours_series(&self, now: Timestamp, hours: i64) -> Vec<super::HourCount> {
        let since = hour_of(now) - (hours - 1) * HOUR_MS;
        let sparse: Vec<(i64, u64)> = self.hours.range(since..).map(|(h, c)| (*h, *c)).collect();
        hour_series(&sparse, now, hours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issues::{IssueSort, event::IssueEvent};
    use faultline_schema::Level;

    fn event(issue: &str, ts: i64, user: Option<&str>, release: Option<&str>) -> IssueEvent {
        IssueEvent {
            issue: issue.into(),
            service: "ui".into(),
            level: Level::Error,
            title: format!("title {issue}"),
            culprit: "c".into(),
            error_type: None,
            ts: Timestamp::from_unix_millis(ts),
            weight: 2,
            user: user.map(str::to_owned),
            release: release.map(str::to_owned),
        }
    }

    #[test]
    fn counts_users_releases_and_regressions() {
        let now = Timestamp::from_unix_millis(1_000 * HOUR_MS);
        let at = now.unix_millis();
        let mut t = IssueTable::new();
        let a = "000000000000000a";
        assert_eq!(
            t.apply(&event(a, at - 10, Some("u_0000000000000001"), None), now),
            Some(IssueChangeKind::New)
        );
        assert_eq!(
            t.apply(
                &event(a, at - 20, Some("u_0000000000000001"), Some("1.0")),
                now
            ),
            None
        );
        t.apply(&event(a, at - 5, Some("someone"), Some("1.1")), now);
        let d = t.get(a, now).unwrap();
        assert_eq!((d.issue.count, d.issue.users), (6, 2));
        assert_eq!(d.issue.first_seen.unix_millis(), at - 20);
        assert_eq!(d.issue.last_seen.unix_millis(), at - 5);
        assert_eq!(d.issue.release_first.as_deref(), Some("1.0"));
        assert_eq!(d.issue.release_last.as_deref(), Some("1.1"));
        assert_eq!(d.hourly.len(), (HOURLY_DAYS * 24) as usize);
        assert_eq!(d.hourly.iter().map(|h| h.count).sum::<u64>(), 6);

        t.set_status(a, IssueStatus::Ignored, now).unwrap();
        assert_eq!(
            t.apply(&event(a, at, None, None), now),
            None,
            "ignored stays"
        );
        t.set_status(a, IssueStatus::Resolved, now).unwrap();
        let later = Timestamp::from_unix_millis(at + 1);
        assert_eq!(
            t.apply(&event(a, at, None, Some("1.2")), later),
            Some(IssueChangeKind::Regression)
        );
        let i = t.get(a, later).unwrap().issue;
        assert_eq!(i.status, IssueStatus::Unresolved);
        assert_eq!(i.regressed_at, Some(later));
        assert_eq!(i.regressed_in.as_deref(), Some("1.2"));
        let kinds: Vec<_> = t.changes_since(now).iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [IssueChangeKind::New, IssueChangeKind::Regression]);
        assert_eq!(t.changes_since(later).len(), 1);
    }

    #[test]
    fn lists_page_by_cursor_without_gaps_or_repeats() {
        let now = Timestamp::from_unix_millis(1_000 * HOUR_MS);
        let mut t = IssueTable::new();
        for i in 0..25u64 {
            let id = format!("{i:016x}");
            // Pairs share a last_seen, so ties are broken by id across page boundaries.
            t.apply(
                &event(&id, now.unix_millis() - (i / 2) as i64, None, None),
                now,
            );
        }
        let mut q = IssueQuery {
            limit: 4,
            status: None,
            ..IssueQuery::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = t.list(&q, now);
            seen.extend(page.issues.iter().map(|s| s.issue.id.clone()));
            match page.next {
                Some(next) => q.cursor = Some(next.parse().unwrap()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25);
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        sorted.dedup();
        assert_eq!(sorted.len(), 25, "no repeats");
        q.sort = IssueSort::Count;
        q.cursor = None;
        q.service = Some("api".into());
        assert!(t.list(&q, now).issues.is_empty());
    }

    #[test]
    fn prune_forgets_old_issues_and_hours() {
        let now = Timestamp::from_unix_millis(10_000 * HOUR_MS);
        let mut t = IssueTable::new();
        t.apply(
            &event(
                "000000000000000a",
                now.unix_millis() - 20 * 24 * HOUR_MS,
                None,
                None,
            ),
            now,
        );
        t.apply(
            &event("000000000000000b", now.unix_millis(), None, None),
            now,
        );
        assert_eq!(t.prune(now, Duration::from_secs(10 * 24 * 3600)), 1);
        assert_eq!(t.len(), 1);
    }
}
