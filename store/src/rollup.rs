//! Hourly rollups: counts per hour, service, level, event and release, kept for the
//! retention period, for `/logs/stats` windows longer than the per-minute counts keep.
//!
//! Every store counts a record once, when it is stored (duplicates never), as
//! [`event_weight`] records (`meta.count` folded duplicates times `meta.sample_weight`), in
//! the UTC hour of its `ts`. Records whose `ts` is more than [`FUTURE_SLACK_MS`] ahead of the
//! store's clock, or older than its retention, are not counted.
//!
//! [`HourlyRollups`] is the in-memory table the file store keeps (and persists, see
//! `file/rollups.rs`); PostgreSQL keeps the same numbers in its `log_rollups` table.

use std::collections::{BTreeMap, HashMap};

use faultline_schema::{Level, Record, Timestamp};
use serde::Serialize;

pub use crate::issues::event_weight;

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// Records at most this far ahead of the store's clock are counted (clients with fast
/// clocks); beyond, a typo'd year would sit in the table until it passes retention.
pub const FUTURE_SLACK_MS: i64 = HOUR_MS;
/// The file store keeps at most this many distinct (service, event, release) per hour; the
/// records of further ones are counted under [`OVERFLOW_KEY`], so a client inventing a new
/// event per record cannot grow the server's memory without bound.
pub const MAX_KEYS_PER_HOUR: usize = 2_000;
/// Service and event of the bucket that counts what [`MAX_KEYS_PER_HOUR`] turned away.
pub const OVERFLOW_KEY: &str = "(other)";

/// Which dimensions a rollup answer is grouped by; the others are summed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupBy {
    /// Per service.
    pub service: bool,
    /// Per level.
    pub level: bool,
    /// Per event.
    pub event: bool,
    /// Per `meta.release` (records without one as `""`).
    pub release: bool,
}

impl Default for GroupBy {
    /// Service and level, like the per-minute counts.
    fn default() -> Self {
        GroupBy {
            service: true,
            level: true,
            event: false,
            release: false,
        }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = String;

    /// A comma-separated list of `service`, `level`, `event`, `release` (empty: no grouping,
    /// one total per hour).
    fn from_str(s: &str) -> Result<GroupBy, String> {
        let mut g = GroupBy {
            service: false,
            level: false,
            event: false,
            release: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let flag = match part {
                "service" => &mut g.service,
                "level" => &mut g.level,
                "event" => &mut g.event,
                "release" => &mut g.release,
                other => {
                    return Err(format!(
                        "{other:?} is not a dimension: group by service, level, event, release"
                    ));
                }
            };
            if *flag {
                return Err(format!("{part} given twice"));
            }
            *flag = true;
        }
        Ok(g)
    }
}

/// A request for hourly counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupQuery {
    /// Start of the window (inclusive), rounded down to the hour.
    pub since: Timestamp,
    /// End of the window (exclusive).
    pub until: Timestamp,
    /// Only this service.
    pub service: Option<String>,
    /// How the answer is grouped.
    pub group_by: GroupBy,
}

/// The count of one hour and group. Dimensions not grouped by are `None` (and absent
/// from the JSON).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RollupBucket {
    /// The start of the hour.
    pub hour: Timestamp,
    /// The service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// The event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// `meta.release`, `""` for records without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Records in that hour (sampled and folded ones as the records they stand for);
    /// saturates at `u64::MAX` (`i64::MAX` on PostgreSQL).
    pub count: u64,
}

/// The string `meta.release` of `record`, `""` if it has none.
pub fn release_of(record: &Record) -> &str {
    record
        .meta
        .get("release")
        .and_then(faultline_schema::Value::as_str)
        .unwrap_or("")
}

/// Counts per level (`Level as usize`).
pub(crate) type LevelCounts = [u64; 5];

/// One hour's counts: service -> event -> release -> per level. Nested so a lookup borrows
/// `&str` and only a key's first record in the hour allocates.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Hour {
    /// Distinct (service, event, release) held.
    pub(crate) keys: usize,
    pub(crate) services: HashMap<String, HashMap<String, HashMap<String, LevelCounts>>>,
}

impl Hour {
    /// Adds `counts` to the key's, the key counted under [`OVERFLOW_KEY`] if it is new and
    /// the hour is full.
    fn add(&mut self, service: &str, event: &str, release: &str, counts: &LevelCounts) {
        let known = self
            .services
            .get(service)
            .and_then(|e| e.get(event))
            .is_some_and(|r| r.contains_key(release));
        let (service, event, release) = if known || self.keys < MAX_KEYS_PER_HOUR {
            (service, event, release)
        } else {
            (OVERFLOW_KEY, OVERFLOW_KEY, "")
        };
        let events = match self.services.get_mut(service) {
            Some(e) => e,
            None => self.services.entry(service.to_owned()).or_default(),
        };
        let releases = match events.get_mut(event) {
            Some(r) => r,
            None => events.entry(event.to_owned()).or_default(),
        };
        let into = match releases.get_mut(release) {
            Some(c) => c,
            None => {
                self.keys += 1;
                releases.entry(release.to_owned()).or_default()
            }
        };
        for (a, b) in into.iter_mut().zip(counts) {
            *a = a.saturating_add(*b);
        }
    }

    /// Every (service, event, release, counts).
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &str, &str, &LevelCounts)> {
        self.services.iter().flat_map(|(s, events)| {
            events.iter().flat_map(move |(e, releases)| {
                releases
                    .iter()
                    .map(move |(r, c)| (s.as_str(), e.as_str(), r.as_str(), c))
            })
        })
    }
}

/// Counts per hour and (service, event, release), each with one count per level.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HourlyRollups {
    pub(crate) hours: BTreeMap<i64, Hour>,
}

/// The start of the UTC hour holding `ms`.
pub fn hour_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(HOUR_MS)
}

impl HourlyRollups {
    /// Counts `weight` records of `service`, `level`, `event` and `release` at `ts`; returns
    /// the hour counted in, or `None` if `ts` is outside `[oldest, now + FUTURE_SLACK_MS]`.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        ts: Timestamp,
        service: &str,
        level: Level,
        event: &str,
        release: &str,
        weight: u64,
        now: Timestamp,
        oldest: Timestamp,
    ) -> Option<i64> {
        let ts = ts.unix_millis();
        if ts < oldest.unix_millis() || ts > now.unix_millis().saturating_add(FUTURE_SLACK_MS) {
            return None;
        }
        let hour = hour_of(ts);
        let mut counts = LevelCounts::default();
        counts[level as usize] = weight;
        // Saturating: weights are large by design, a capped count beats a wrapped one.
        self.hours
            .entry(hour)
            .or_default()
            .add(service, event, release, &counts);
        Some(hour)
    }

    /// Adds `counts` to one hour and key (a day file read back from disk).
    pub(crate) fn merge(
        &mut self,
        hour: i64,
        service: &str,
        event: &str,
        release: &str,
        counts: LevelCounts,
    ) {
        self.hours
            .entry(hour)
            .or_default()
            .add(service, event, release, &counts);
    }

    /// Forgets hours that end before `oldest`; returns how many.
    pub fn prune(&mut self, oldest: Timestamp) -> usize {
        let keep = self.hours.split_off(&hour_of(oldest.unix_millis()));
        let dropped = self.hours.len();
        self.hours = keep;
        dropped
    }

    /// The buckets `query` asks for, oldest hour first, then by group.
    pub fn query(&self, query: &RollupQuery) -> Vec<RollupBucket> {
        let since = hour_of(query.since.unix_millis());
        let g = query.group_by;
        let mut out = Vec::new();
        for (&hour, table) in self.hours.range(since..query.until.unix_millis()) {
            let mut groups: BTreeMap<RollupBucket, u64> = BTreeMap::new();
            for (service, event, release, counts) in table.entries() {
                if query.service.as_ref().is_some_and(|s| s != service) {
                    continue;
                }
                for level in Level::ALL {
                    let n = counts[level as usize];
                    if n == 0 {
                        continue;
                    }
                    let group = RollupBucket {
                        hour: Timestamp::from_unix_millis(hour),
                        service: g.service.then(|| service.to_owned()),
                        level: g.level.then_some(level),
                        event: g.event.then(|| event.to_owned()),
                        release: g.release.then(|| release.to_owned()),
                        count: 0,
                    };
                    let sum = groups.entry(group).or_default();
                    *sum = sum.saturating_add(n);
                }
            }
            out.extend(
                groups
                    .into_iter()
                    .map(|(bucket, count)| RollupBucket { count, ..bucket }),
            );
        }
        out
    }

    /// Distinct (hour, service, event, release) held.
    pub fn len(&self) -> usize {
        self.hours.values().map(|h| h.keys).sum()
    }

    /// Whether nothing is counted.
    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Half past an hour, so a few ms earlier is the same hour.
    const NOW: i64 = 1_000 * HOUR_MS + HOUR_MS / 2;

    fn ts(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms)
    }

    fn add(r: &mut HourlyRollups, at: i64, service: &str, level: Level, event: &str, rel: &str) {
        r.add(ts(at), service, level, event, rel, 1, ts(NOW), ts(0));
    }

    #[test]
    fn groups_sum_over_the_dimensions_left_out() {
        let mut r = HourlyRollups::default();
        add(&mut r, NOW - 10, "api", Level::Error, "a", "1.0");
        add(&mut r, NOW - 20, "api", Level::Error, "b", "");
        add(&mut r, NOW - 30, "ui", Level::Info, "a", "1.0");
        add(&mut r, NOW - HOUR_MS, "api", Level::Error, "a", "1.0");
        let q = |group_by: &str| RollupQuery {
            since: ts(0),
            until: ts(NOW + HOUR_MS),
            service: None,
            group_by: group_by.parse().unwrap(),
        };
        let all = r.query(&q(""));
        assert_eq!(
            all.iter().map(|b| b.count).collect::<Vec<_>>(),
            [1, 3],
            "one total per hour"
        );
        let by_release = r.query(&q("release"));
        let last: Vec<_> = by_release
            .iter()
            .filter(|b| b.hour == ts(hour_of(NOW - 10)))
            .map(|b| (b.release.clone().unwrap(), b.count))
            .collect();
        assert_eq!(last, [(String::new(), 1), ("1.0".into(), 2)]);
        let by_service_event = r.query(&RollupQuery {
            service: Some("api".into()),
            ..q("service,event")
        });
        assert_eq!(by_service_event.len(), 3);
        assert!(by_service_event.iter().all(|b| b.level.is_none()));
    }

    #[test]
    fn outside_the_kept_range_is_not_counted_and_prune_drops_whole_hours() {
        let mut r = HourlyRollups::default();
        let oldest = ts(NOW - 3 * HOUR_MS);
        assert!(
            r.add(
                ts(NOW - 4 * HOUR_MS),
                "a",
                Level::Info,
                "e",
                "",
                1,
                ts(NOW),
                oldest
            )
            .is_none()
        );
        assert!(
            r.add(
                ts(NOW + 2 * HOUR_MS),
                "a",
                Level::Info,
                "e",
                "",
                1,
                ts(NOW),
                oldest
            )
            .is_none()
        );
        for h in 0..3 {
            r.add(
                ts(NOW - h * HOUR_MS),
                "a",
                Level::Info,
                "e",
                "",
                1,
                ts(NOW),
                oldest,
            );
        }
        assert_eq!(r.prune(ts(NOW - HOUR_MS + 1)), 1);
        assert_eq!(r.hours.len(), 2);
    }

    /// Guards memory: invented events past the cap fold into one bucket, none is lost.
    #[test]
    fn keys_past_the_cap_are_counted_under_other() {
        let mut r = HourlyRollups::default();
        for n in 0..MAX_KEYS_PER_HOUR + 50 {
            add(&mut r, NOW, "api", Level::Info, &format!("e{n}"), "");
        }
        assert_eq!(r.len(), MAX_KEYS_PER_HOUR + 1);
        let q = RollupQuery {
            since: ts(0),
            until: ts(NOW + HOUR_MS),
            service: Some(OVERFLOW_KEY.into()),
            group_by: GroupBy::default(),
        };
        assert_eq!(r.query(&q)[0].count, 50);
    }

    #[test]
    fn group_by_parses_and_refuses() {
        let g: GroupBy = "event, release".parse().unwrap();
        assert!(g.event && g.release && !g.service && !g.level);
        assert!(
            "host"
                .parse::<GroupBy>()
                .unwrap_err()
                .contains("service, level")
        );
        assert!("level,level".parse::<GroupBy>().is_err());
    }
}
