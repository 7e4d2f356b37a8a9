//! When a segment's period ends, in UTC or local time, and what closed segments are called.

use std::time::Duration;

use faultline_schema::Timestamp;

/// Time-based rotation: a new segment starts at each boundary of the period, counted in the
/// output's [`Clock`] (a daily file starts at midnight, local or UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    /// No time-based rotation (size-based rotation still applies).
    #[default]
    Never,
    /// At the start of every hour.
    Hourly,
    /// At midnight.
    Daily,
    /// At every multiple of this period since midnight of 1970-01-01 in the clock (at least
    /// one second): `Every(15 minutes)` starts files at :00, :15, :30 and :45.
    Every(Duration),
}

/// The clock of rotation boundaries and file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// UTC (the default); names end in `Z`.
    #[default]
    Utc,
    /// The system's local time zone, daylight-saving changes included.
    Local,
}

impl Rotation {
    fn period_ms(self) -> Option<i64> {
        match self {
            Rotation::Never => None,
            Rotation::Hourly => Some(3_600_000),
            Rotation::Daily => Some(86_400_000),
            Rotation::Every(d) => Some(i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1000)),
        }
    }
}

/// The local UTC offset at `utc_ms`, in milliseconds.
pub(crate) fn local_offset_ms(utc_ms: i64) -> i64 {
    use chrono::{Offset, TimeZone};
    match chrono::Local.timestamp_millis_opt(utc_ms) {
        chrono::LocalResult::Single(dt) | chrono::LocalResult::Ambiguous(dt, _) => {
            i64::from(dt.offset().fix().local_minus_utc()) * 1000
        }
        chrono::LocalResult::None => 0,
    }
}

fn offset_fn(clock: Clock) -> fn(i64) -> i64 {
    match clock {
        Clock::Utc => |_| 0,
        Clock::Local => local_offset_ms,
    }
}

/// The first boundary after `now_ms` (UTC milliseconds), or `None` without time rotation.
pub(crate) fn next_boundary(rotation: Rotation, clock: Clock, now_ms: i64) -> Option<i64> {
    next_boundary_with(rotation, now_ms, offset_fn(clock))
}

/// [`next_boundary`] with the UTC offset (`utc_ms -> offset_ms`) given, for tests.
pub(crate) fn next_boundary_with(
    rotation: Rotation,
    now_ms: i64,
    offset: impl Fn(i64) -> i64,
) -> Option<i64> {
    let period = rotation.period_ms()?;
    let local = now_ms + offset(now_ms);
    let next_local = (local.div_euclid(period) + 1) * period;
    // The offset at the boundary may differ from now (a daylight-saving change in
    // between): convert with the offset in force there.
    let guess = next_local - offset(now_ms);
    let utc = next_local - offset(guess);
    Some(if utc > now_ms {
        utc
    } else {
        guess.max(now_ms + 1)
    })
}

/// `YYYYMMDDTHHMMSS` of `utc_ms` in the clock, with `Z` for UTC.
pub(crate) fn stamp(clock: Clock, utc_ms: i64) -> String {
    let local = utc_ms + offset_fn(clock)(utc_ms);
    let text = Timestamp::from_unix_millis(local).to_string();
    let digits: String = text
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    match clock {
        Clock::Utc => digits + "Z",
        Clock::Local => digits,
    }
}

/// A closed segment's name: `{prefix}.{stamp}.{seq}.ndjson`.
pub(crate) fn closed_name(prefix: &str, stamp: &str, seq: u64) -> String {
    format!("{prefix}.{stamp}.{seq}.ndjson")
}

/// The sequence number of a closed segment called `name` (`.ndjson` or `.ndjson.gz`), or
/// `None` for any other file.
pub(crate) fn parse_closed(prefix: &str, name: &str) -> Option<(u64, bool)> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('.')?;
    let (rest, gz) = match rest.strip_suffix(".ndjson.gz") {
        Some(r) => (r, true),
        None => (rest.strip_suffix(".ndjson")?, false),
    };
    let (stamp, seq) = rest.rsplit_once('.')?;
    let stamp_ok = (15..=16).contains(&stamp.len())
        && stamp.as_bytes().get(8) == Some(&b'T')
        && stamp
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 8 && b == b'T') || (i == 15 && b == b'Z'));
    if !stamp_ok {
        return None;
    }
    Some((seq.parse().ok()?, gz))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-07-01T12:34:56.789Z
    const T: i64 = 1_782_909_296_789;
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 86_400_000;

    #[test]
    fn utc_boundaries() {
        assert_eq!(next_boundary(Rotation::Never, Clock::Utc, T), None);
        let h = next_boundary(Rotation::Hourly, Clock::Utc, T).unwrap();
        assert_eq!(
            Timestamp::from_unix_millis(h).to_string(),
            "2026-07-01T13:00:00.000Z"
        );
        let d = next_boundary(Rotation::Daily, Clock::Utc, T).unwrap();
        assert_eq!(
            Timestamp::from_unix_millis(d).to_string(),
            "2026-07-02T00:00:00.000Z"
        );
        let q = next_boundary(Rotation::Every(Duration::from_secs(900)), Clock::Utc, T).unwrap();
        assert_eq!(
            Timestamp::from_unix_millis(q).to_string(),
            "2026-07-01T12:45:00.000Z"
        );
        // Exactly on a boundary: the next one.
        assert_eq!(
            next_boundary(Rotation::Hourly, Clock::Utc, h),
            Some(h + HOUR)
        );
        // Periods under a second are raised to one.
        assert_eq!(
            next_boundary(Rotation::Every(Duration::from_millis(1)), Clock::Utc, T),
            Some(T - T % 1000 + 1000)
        );
    }

    #[test]
    fn local_boundaries_follow_the_offset() {
        // UTC+2: local midnight is 22:00 UTC the day before.
        let d = next_boundary_with(Rotation::Daily, T, |_| 2 * HOUR).unwrap();
        assert_eq!(
            Timestamp::from_unix_millis(d).to_string(),
            "2026-07-01T22:00:00.000Z"
        );
        // UTC-5 (New York winter).
        let d = next_boundary_with(Rotation::Daily, T, |_| -5 * HOUR).unwrap();
        assert_eq!(
            Timestamp::from_unix_millis(d).to_string(),
            "2026-07-02T05:00:00.000Z"
        );
        // A daylight-saving change before the boundary: +1h now, +2h from 20:00 UTC.
        let change = T - T.rem_euclid(DAY) + 20 * HOUR;
        let dst = move |ms: i64| if ms >= change { 2 * HOUR } else { HOUR };
        let d = next_boundary_with(Rotation::Daily, T, dst).unwrap();
        assert_eq!(
            Timestamp::from_unix_millis(d).to_string(),
            "2026-07-01T22:00:00.000Z"
        );
        // Boundaries always lie ahead.
        for off in [-14 * HOUR, -HOUR, 0, HOUR, 14 * HOUR] {
            for now in [T, T - T % DAY, T + 123_456_789] {
                let b = next_boundary_with(Rotation::Hourly, now, |_| off).unwrap();
                assert!(b > now && b - now <= HOUR, "{off} {now} {b}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(stamp(Clock::Utc, T), "20260701T123456Z");
        let name = closed_name("api", &stamp(Clock::Utc, T), 42);
        assert_eq!(name, "api.20260701T123456Z.42.ndjson");
        assert_eq!(parse_closed("api", &name), Some((42, false)));
        assert_eq!(parse_closed("api", &format!("{name}.gz")), Some((42, true)));
        assert_eq!(
            parse_closed("api", "api.20260701T123456.7.ndjson"),
            Some((7, false))
        );
        for other in [
            "api.ndjson",
            "api.ndjson.gz",
            "api.20260701T123456Z.x.ndjson",
            "api.2026.1.ndjson",
            "apix.20260701T123456Z.1.ndjson",
            "api.20260701T123456Z.1.ndjson.gz.tmp",
            "worker.20260701T123456Z.1.ndjson",
        ] {
            assert_eq!(parse_closed("api", other), None, "{other}");
        }
        // A prefix with dots.
        assert_eq!(
            parse_closed("my.app", "my.app.20260701T123456Z.3.ndjson"),
            Some((3, false))
        );
    }
}
