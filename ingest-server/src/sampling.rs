//! Sampling above a rate: per service, records below `WARNING` beyond the configured rate
//! per minute are kept one in N, and each kept record says how many it stands for.
//!
//! # The scheme
//!
//! Each service has a window that opens with its first record and lasts a minute. Within
//! it, the `n`-th record below `WARNING` is kept outright while `n <= rate`; past the rate
//! the stride is `N = ceil(n / rate)`: a record is kept once the records of its level skipped
//! since the last kept one reach `N - 1`. So the stride grows with the volume seen in the
//! window, and a window that sees `n` records keeps about `rate * (1 + ln(n / rate))`
//! of them (10,000 against a rate of 500: about 1,800; 100,000: about 3,100).
//!
//! That overshoot is the price of not knowing a burst's size in advance, and it is paid
//! once: a window that follows a full one straight away starts from the previous window's
//! count (`n` is the larger of the two), so a service that stays chatty keeps about `rate`
//! records a minute (10,000 a minute at 500: about 500 from the second minute on). A
//! service whose volume drops keeps fewer than `rate` for one window, each standing for
//! more; after a quiet minute the next window starts from nothing again.
//!
//! A kept record's weight is the number of records of its level since the previous kept
//! one, itself included, written to `meta.sample_weight` when above 1. (Ingest refuses a
//! client's own `meta.sample_weight`, so every record reaching the sampler counts as one;
//! the sums saturate all the same.) The weights therefore add up exactly to the records
//! seen, except for the records skipped since the last kept one: fewer than N per level,
//! which is at most `n / rate` (a fraction `1 / rate` of the window's volume). Those are
//! not lost: the window's skipped tail is carried into the weight of the next record kept
//! at that level, in whichever window that is.
//!
//! Counting is deterministic (no random draws): the same input keeps the same records,
//! which makes the bounds above exact rather than expected values.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use faultline_schema::{Level, Record, SAMPLE_WEIGHT_KEY as WEIGHT_KEY, Value};

use crate::config::Sampling;

/// How long a service's window lasts.
const WINDOW: Duration = Duration::from_secs(60);

/// Beyond this many services with a window, expired windows are forgotten (their skipped
/// tails with them) so a key allowed every service cannot grow the map without bound.
const MAX_IDLE_WINDOWS: usize = 4096;

/// The sampler shared by every ingest endpoint.
#[derive(Debug)]
pub(crate) struct Sampler {
    config: Sampling,
    windows: Mutex<HashMap<String, Window>>,
}

/// One service's current window.
#[derive(Debug)]
struct Window {
    opened: Instant,
    /// Records below `WARNING` seen in this window.
    seen: u64,
    /// What the window before saw, if it ended when this one opened (else 0): the volume
    /// this one expects.
    prior: u64,
    /// Per sampled level (`DEBUG`, `INFO`): the gap since its last kept record.
    levels: [LevelGap; 2],
}

/// The records of one level skipped since the last one kept.
#[derive(Debug, Default, Clone, Copy)]
struct LevelGap {
    /// How many.
    skipped: u64,
    /// Their weights added up (each 1 unless the client set one).
    skipped_weight: u64,
    /// How many records the next kept one should stand for: `ceil(seen / rate)` when the
    /// last one was kept.
    stride: u64,
}

impl Sampler {
    /// A sampler with the configured rates.
    pub(crate) fn new(config: Sampling) -> Sampler {
        Sampler {
            config,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps or drops each record; returns the kept ones (in order) and how many were
    /// dropped. Counts the dropped ones per service in
    /// `faultline_ingest_records_sampled_total`.
    pub(crate) fn sample(&self, records: Vec<Record>) -> (Vec<Record>, usize) {
        if !self.config.enabled() || records.iter().all(|r| r.level >= Level::Warning) {
            return (records, 0);
        }
        self.sample_at(records, Instant::now())
    }

    fn sample_at(&self, records: Vec<Record>, now: Instant) -> (Vec<Record>, usize) {
        let mut dropped: HashMap<String, u64> = HashMap::new();
        let mut kept = Vec::with_capacity(records.len());
        {
            let mut windows = match self.windows.lock() {
                Ok(w) => w,
                // A panic elsewhere while counting leaves counts that are still counts.
                Err(poisoned) => poisoned.into_inner(),
            };
            for mut record in records {
                let slot = match record.level {
                    Level::Debug => 0,
                    Level::Info => 1,
                    _ => {
                        kept.push(record);
                        continue;
                    }
                };
                let Some(rate) = self.config.per_minute(&record.service) else {
                    kept.push(record);
                    continue;
                };
                if !windows.contains_key(&record.service) && windows.len() >= MAX_IDLE_WINDOWS {
                    windows.retain(|_, w| now.duration_since(w.opened) < WINDOW);
                }
                let window = windows
                    .entry(record.service.clone())
                    .or_insert_with(|| Window {
                        opened: now,
                        seen: 0,
                        prior: 0,
                        levels: [LevelGap::default(); 2],
                    });
                let age = now.duration_since(window.opened);
                if age >= WINDOW {
                    // A new window; the skipped tails carry over into the next weights, and
                    // a window that follows straight on expects the volume of the last.
                    window.prior = if age < 2 * WINDOW { window.seen } else { 0 };
                    window.opened = now;
                    window.seen = 0;
                }
                window.seen += 1;
                let basis = window.seen.max(window.prior);
                let level = &mut window.levels[slot];
                let own = record.sample_weight();
                if basis <= rate || level.skipped + 1 >= level.stride {
                    if level.skipped > 0 {
                        let weight = level.skipped_weight.saturating_add(own);
                        record
                            .meta
                            .insert(WEIGHT_KEY.to_owned(), Value::from(weight));
                    }
                    level.stride = basis.div_ceil(rate);
                    level.skipped = 0;
                    level.skipped_weight = 0;
                    kept.push(record);
                } else {
                    level.skipped += 1;
                    level.skipped_weight = level.skipped_weight.saturating_add(own);
                    *dropped.entry(record.service).or_default() += 1;
                }
            }
        }
        let mut total = 0;
        for (service, n) in dropped {
            metrics::counter!("faultline_ingest_records_sampled_total", "service" => service)
                .increment(n);
            total += n;
        }
        (kept, usize::try_from(total).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::Timestamp;

    fn sampler(rate: u64) -> Sampler {
        Sampler::new(Sampling {
            default_per_minute: rate,
            ..Sampling::default()
        })
    }

    fn records(service: &str, level: Level, n: usize) -> Vec<Record> {
        (0..n)
            .map(|_| Record::new(Timestamp::now(), service, level, "e", "m"))
            .collect()
    }

    fn weight(r: &Record) -> u64 {
        r.sample_weight()
    }

    #[test]
    fn keeps_up_to_the_rate_then_weights_add_up_to_what_was_seen() {
        let s = sampler(500);
        let now = Instant::now();
        let (kept, dropped) = s.sample_at(records("api", Level::Info, 10_000), now);
        assert_eq!(kept.len() + dropped, 10_000);
        assert!(kept[..500].iter().all(|r| weight(r) == 1));
        // rate * (1 + ln(n / rate)) = 500 * (1 + ln 20) ~ 1998; the harmonic sum it
        // approximates gives 1799.
        assert!((1_700..=2_000).contains(&kept.len()), "{}", kept.len());
        let total: u64 = kept.iter().map(weight).sum();
        // Only the skipped tail since the last kept record is missing: under n / rate.
        assert!((10_000 - 20..=10_000).contains(&total), "{total}");
    }

    #[test]
    fn warning_and_worse_and_unconfigured_services_are_never_sampled() {
        let s = Sampler::new(Sampling {
            default_per_minute: 0,
            services: [("api".to_owned(), 10)].into_iter().collect(),
        });
        let now = Instant::now();
        let mut batch = records("api", Level::Error, 1_000);
        batch.extend(records("worker", Level::Info, 1_000));
        let (kept, dropped) = s.sample_at(batch, now);
        assert_eq!((kept.len(), dropped), (2_000, 0));
        let (kept, _) = s.sample_at(records("api", Level::Debug, 1_000), now);
        assert!(kept.len() < 100, "{}", kept.len());
    }

    #[test]
    fn the_skipped_tail_is_carried_into_the_next_window() {
        let s = sampler(10);
        let start = Instant::now();
        let (kept, _) = s.sample_at(records("api", Level::Info, 1_000), start);
        let first: u64 = kept.iter().map(weight).sum();
        // After a quiet minute, the next window keeps its first record, carrying the tail.
        let (kept, _) = s.sample_at(records("api", Level::Info, 1), start + 2 * WINDOW);
        assert_eq!(first + weight(&kept[0]), 1_001);
    }

    #[test]
    fn a_service_that_stays_chatty_keeps_about_the_rate_from_its_second_minute() {
        let s = sampler(500);
        let start = Instant::now();
        let (first, _) = s.sample_at(records("api", Level::Info, 10_000), start);
        assert!((1_700..=2_000).contains(&first.len()), "{}", first.len());
        let (second, _) = s.sample_at(records("api", Level::Info, 10_000), start + WINDOW);
        assert!((480..=520).contains(&second.len()), "{}", second.len());
        let total: u64 = first.iter().chain(&second).map(weight).sum();
        assert!((20_000 - 20..=20_000).contains(&total), "{total}");
        // After a quiet minute the next window starts from nothing: the first 500 are kept.
        let (third, _) = s.sample_at(records("api", Level::Info, 600), start + 3 * WINDOW);
        assert!(third[..500].iter().skip(1).all(|r| weight(r) == 1));
    }

    #[test]
    fn levels_keep_their_own_weights() {
        let s = sampler(10);
        let now = Instant::now();
        let mut batch = Vec::new();
        for _ in 0..500 {
            batch.extend(records("api", Level::Debug, 1));
            batch.extend(records("api", Level::Info, 1));
        }
        let (kept, _) = s.sample_at(batch, now);
        let sum = |level| -> u64 { kept.iter().filter(|r| r.level == level).map(weight).sum() };
        // Each level's skipped tail is under the stride, n / rate = 100.
        assert!(
            (401..=500).contains(&sum(Level::Debug)),
            "{}",
            sum(Level::Debug)
        );
        assert!(
            (401..=500).contains(&sum(Level::Info)),
            "{}",
            sum(Level::Info)
        );
    }

    #[test]
    fn a_client_weight_is_added_up() {
        let s = sampler(1);
        let mut batch = records("api", Level::Info, 4);
        for r in &mut batch {
            r.meta.insert(WEIGHT_KEY.into(), Value::from(10));
        }
        let (kept, _) = s.sample_at(batch, Instant::now());
        // Kept: the 1st and 2nd (stride 1), then the 4th for the 3rd and itself.
        assert_eq!(kept.len(), 3);
        let total: u64 = kept.iter().map(weight).sum();
        assert_eq!(total, 40);
    }
}
