//! Queries over stored records, the same for every store.

use std::collections::BTreeMap;

use faultline_schema::{Level, Record, Timestamp};
use serde::Serialize;

use crate::search::{Cursor, MetaFilter};

/// The most records one query returns.
pub const MAX_QUERY_LIMIT: usize = 1000;
/// The number of records a query returns when no limit is given.
pub const DEFAULT_QUERY_LIMIT: usize = 100;

/// A filter over records; every set field must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Exact service name.
    pub service: Option<String>,
    /// This level or worse.
    pub min_level: Option<Level>,
    /// Exact event key.
    pub event: Option<String>,
    /// Exact stored (re-keyed) `meta.user`.
    pub user: Option<String>,
    /// `ts` at or after this instant.
    pub since: Option<Timestamp>,
    /// `ts` strictly before this instant.
    pub until: Option<Timestamp>,
    /// Case-insensitive substring of `message`.
    pub text: Option<String>,
    /// Exact `issue` (error records of one issue).
    pub issue: Option<String>,
    /// `meta` values, every one must match (`meta.KEY=VALUE`; see [`MetaFilter`]).
    pub meta: Vec<MetaFilter>,
    /// Only records ranked after this cursor: older `ts`, or the same `ts` and a smaller id
    /// (the next page of a newest-first listing).
    pub before: Option<Cursor>,
    /// At most this many records (1 to [`MAX_QUERY_LIMIT`]).
    pub limit: usize,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            service: None,
            min_level: None,
            event: None,
            user: None,
            since: None,
            until: None,
            text: None,
            issue: None,
            meta: Vec::new(),
            before: None,
            limit: DEFAULT_QUERY_LIMIT,
        }
    }
}

impl Query {
    /// Whether `record` passes every filter.
    pub fn matches(&self, record: &Record) -> bool {
        self.service.as_ref().is_none_or(|s| *s == record.service)
            && self.min_level.is_none_or(|l| record.level >= l)
            && self.event.as_ref().is_none_or(|e| *e == record.event)
            && self
                .user
                .as_deref()
                .is_none_or(|u| record.user() == Some(u))
            && self
                .issue
                .as_deref()
                .is_none_or(|i| record.issue.as_deref() == Some(i))
            && self.since.is_none_or(|t| record.ts >= t)
            && self.until.is_none_or(|t| record.ts < t)
            && self.before.is_none_or(|c| c.before(record.ts, record.id))
            && self
                .text
                .as_deref()
                .is_none_or(|q| contains_ignore_case(&record.message, q))
            && self.meta.iter().all(|f| f.matches(&record.meta))
    }

    /// Whether records with `ts` in `min..=max` can match the time filters (and the
    /// cursor) at all.
    pub fn overlaps(&self, min: Timestamp, max: Timestamp) -> bool {
        self.since.is_none_or(|t| max >= t)
            && self.until.is_none_or(|t| min < t)
            && self.before.is_none_or(|c| min <= c.ts)
    }
}

/// Case-insensitive (Unicode lowercase) substring test.
pub fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    if needle.is_ascii() && haystack.is_ascii() {
        let n = needle.as_bytes();
        return n.is_empty()
            || haystack
                .as_bytes()
                .windows(n.len())
                .any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// A request for per-minute counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    /// Start of the window (inclusive), rounded down to the minute.
    pub since: Timestamp,
    /// End of the window (exclusive).
    pub until: Timestamp,
    /// Only this service.
    pub service: Option<String>,
}

/// Counts of records per minute, service and level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// One entry per (minute, service, level) with a non-zero count, oldest minute first.
    pub buckets: Vec<StatsBucket>,
}

/// The count for one minute, service and level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsBucket {
    /// The start of the minute.
    pub minute: Timestamp,
    /// The service.
    pub service: String,
    /// The level.
    pub level: Level,
    /// Records in that minute: sampled records count as the records they stand for
    /// (`meta.sample_weight`); the sum saturates at `u64::MAX` (`i64::MAX` on PostgreSQL).
    pub count: u64,
}

/// Per-minute counts per service and level over a sliding window, in memory.
///
/// The file store keeps one of these for the last 24 hours and rebuilds it from its
/// segments on start. Records outside the window (by `ts`) are not counted.
#[derive(Debug, Default)]
pub struct MinuteCounts {
    window_ms: i64,
    // minute -> service -> count per level (indexed by `Level as usize`). Keyed by `String`
    // so a lookup borrows `&str` and only a service's first record in a minute allocates.
    minutes: BTreeMap<i64, BTreeMap<String, [u64; 5]>>,
}

impl MinuteCounts {
    /// Counts over the last `window_ms` milliseconds.
    pub fn new(window_ms: i64) -> MinuteCounts {
        MinuteCounts {
            window_ms,
            minutes: BTreeMap::new(),
        }
    }

    /// Counts `record` (as the [`Record::sample_weight`] records it stands for) if its `ts`
    /// lies within the window ending at `now` (or up to an hour ahead of it, for clients
    /// with fast clocks).
    pub fn add(&mut self, record: &Record, now: Timestamp) {
        self.add_parts(
            record.ts,
            &record.service,
            record.level,
            record.sample_weight(),
            now,
        );
    }

    /// [`MinuteCounts::add`] from the four values it reads.
    pub fn add_parts(
        &mut self,
        ts: Timestamp,
        service: &str,
        level: Level,
        weight: u64,
        now: Timestamp,
    ) {
        let ts = ts.unix_millis();
        let now = now.unix_millis();
        if ts < now - self.window_ms || ts > now + 3_600_000 {
            return;
        }
        let minute = ts - ts.rem_euclid(60_000);
        let per_minute = self.minutes.entry(minute).or_default();
        let counts = match per_minute.get_mut(service) {
            Some(c) => c,
            None => per_minute.entry(service.to_owned()).or_default(),
        };
        // Saturating: weights are large by design (a sampled record stands for many), and a
        // wrapped or panicking count would be worse than a capped one.
        let count = &mut counts[level as usize];
        *count = count.saturating_add(weight);
    }

    /// Forgets minutes that have left the window ending at `now`.
    pub fn prune(&mut self, now: Timestamp) {
        let oldest = now.unix_millis() - self.window_ms;
        let oldest_minute = oldest - oldest.rem_euclid(60_000);
        self.minutes = self.minutes.split_off(&oldest_minute);
    }

    /// The buckets that `query` asks for.
    pub fn query(&self, query: &StatsQuery) -> Stats {
        let since = query.since.unix_millis();
        let since = since - since.rem_euclid(60_000);
        let mut buckets = Vec::new();
        for (&minute, services) in self.minutes.range(since..query.until.unix_millis()) {
            for (service, counts) in services {
                if query.service.as_ref().is_some_and(|s| s != service) {
                    continue;
                }
                for level in Level::ALL {
                    let count = counts[level as usize];
                    if count > 0 {
                        buckets.push(StatsBucket {
                            minute: Timestamp::from_unix_millis(minute),
                            service: service.clone(),
                            level,
                            count,
                        });
                    }
                }
            }
        }
        Stats { buckets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts: i64, service: &str, level: Level, message: &str) -> Record {
        Record::new(
            Timestamp::from_unix_millis(ts),
            service,
            level,
            "e",
            message,
        )
    }

    #[test]
    fn filters_combine() {
        let r = rec(1_000, "api", Level::Error, "Card Declined");
        let mut q = Query {
            service: Some("api".into()),
            min_level: Some(Level::Warning),
            text: Some("card decl".into()),
            since: Some(Timestamp::from_unix_millis(1_000)),
            until: Some(Timestamp::from_unix_millis(1_001)),
            ..Query::default()
        };
        assert!(q.matches(&r));
        q.min_level = Some(Level::Critical);
        assert!(!q.matches(&r), "ERROR is below CRITICAL");
        q.min_level = None;
        q.until = Some(Timestamp::from_unix_millis(1_000));
        assert!(!q.matches(&r), "until is exclusive");
    }

    #[test]
    fn text_search_ignores_case_beyond_ascii() {
        assert!(contains_ignore_case("Größe überschritten", "ÜBER"));
        assert!(contains_ignore_case("abc", ""));
        assert!(!contains_ignore_case("abc", "abcd"));
    }

    #[test]
    fn minute_counts_add_up_sample_weights() {
        // A sampled record counts as the records it stands for, so /logs/stats shows volume.
        let now = 10 * 60_000;
        let mut c = MinuteCounts::new(5 * 60_000);
        let mut sampled = rec(now - 1, "api", Level::Info, "");
        sampled
            .meta
            .insert(faultline_schema::SAMPLE_WEIGHT_KEY.into(), 40.into());
        c.add(&sampled, Timestamp::from_unix_millis(now));
        c.add(
            &rec(now - 2, "api", Level::Info, ""),
            Timestamp::from_unix_millis(now),
        );
        let q = StatsQuery {
            since: Timestamp::from_unix_millis(0),
            until: Timestamp::from_unix_millis(now + 60_000),
            service: None,
        };
        let counts: Vec<_> = c.query(&q).buckets.iter().map(|b| b.count).collect();
        assert_eq!(counts, [41]);
    }

    /// Guards the file store's writer thread, which panicked (debug) or wrapped (release)
    /// adding up weights past `u64::MAX`.
    #[test]
    fn minute_counts_saturate() {
        let now = Timestamp::from_unix_millis(10 * 60_000);
        let mut c = MinuteCounts::new(5 * 60_000);
        for _ in 0..3 {
            c.add_parts(now, "api", Level::Info, u64::MAX / 2, now);
        }
        let q = StatsQuery {
            since: Timestamp::from_unix_millis(0),
            until: Timestamp::from_unix_millis(20 * 60_000),
            service: None,
        };
        assert_eq!(c.query(&q).buckets[0].count, u64::MAX);
    }

    #[test]
    fn minute_counts_window_and_prune() {
        let now = 10 * 60_000;
        let mut c = MinuteCounts::new(5 * 60_000);
        for ts in [now - 1, now - 2, now - 61_000, now - 6 * 60_000] {
            c.add(
                &rec(ts, "api", Level::Error, ""),
                Timestamp::from_unix_millis(now),
            );
        }
        let q = StatsQuery {
            since: Timestamp::from_unix_millis(0),
            until: Timestamp::from_unix_millis(now + 60_000),
            service: None,
        };
        let counts: Vec<_> = c.query(&q).buckets.iter().map(|b| b.count).collect();
        assert_eq!(
            counts,
            [1, 2],
            "the record 6 minutes old is outside the window"
        );
        c.prune(Timestamp::from_unix_millis(now + 4 * 60_000));
        assert_eq!(c.query(&q).buckets.len(), 1);
    }
}
