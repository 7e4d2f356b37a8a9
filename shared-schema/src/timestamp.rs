//! `ts` and `received_at`: RFC 3339 in, UTC milliseconds inside, one canonical form out.
//!
//! Hand-written rather than pulled from a date crate: the parser is small, has no
//! dependencies (it ships in the browser bundle) and rejects what it cannot represent.

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// The earliest representable instant, `0000-01-01T00:00:00.000Z`.
const MIN_MS: i64 = -62_167_219_200_000;
/// The latest representable instant, `9999-12-31T23:59:59.999Z`.
const MAX_MS: i64 = 253_402_300_799_999;

/// An instant with millisecond precision, stored as milliseconds since the Unix epoch (UTC).
///
/// Parsed from RFC 3339 with any offset (`2026-07-01T14:34:56.789+02:00`), normalized to UTC;
/// digits past milliseconds are truncated. Always formatted as `YYYY-MM-DDTHH:MM:SS.mmmZ`,
/// so the text form sorts like the instant. Years 0000 to 9999 only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a string is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}: expected RFC 3339 like 2026-07-01T12:34:56.789Z or 2026-07-01T14:34:56+02:00")]
pub struct TimestampError(&'static str);

impl Timestamp {
    /// The earliest representable instant.
    pub const MIN: Timestamp = Timestamp(MIN_MS);
    /// The latest representable instant.
    pub const MAX: Timestamp = Timestamp(MAX_MS);

    /// From milliseconds since the Unix epoch, clamped to the representable range.
    pub const fn from_unix_millis(ms: i64) -> Timestamp {
        if ms < MIN_MS {
            Timestamp(MIN_MS)
        } else if ms > MAX_MS {
            Timestamp(MAX_MS)
        } else {
            Timestamp(ms)
        }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_millis(self) -> i64 {
        self.0
    }

    /// From a `SystemTime` (truncated to milliseconds).
    #[cfg(feature = "std")]
    pub fn from_system_time(t: std::time::SystemTime) -> Timestamp {
        let ms = match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        };
        Timestamp::from_unix_millis(ms)
    }

    /// The current time. Not available on `wasm32-unknown-unknown`, whose `SystemTime` panics:
    /// the browser reporter takes the time from `Date.now()` instead.
    #[cfg(all(feature = "std", not(target_arch = "wasm32")))]
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(std::time::SystemTime::now())
    }

    /// Parses RFC 3339: `T`, `t` or a space between date and time, `Z`/`z` or a `±HH:MM`
    /// (or `±HHMM`) offset, any number of fraction digits. A leap second (`:60`) is read as
    /// `:59.999`.
    pub fn parse(s: &str) -> Result<Timestamp, TimestampError> {
        let b = s.as_bytes();
        if b.len() < 20 {
            return Err(TimestampError("too short"));
        }
        let year = digits(b, 0, 4)?;
        expect(b, 4, b'-')?;
        let month = digits(b, 5, 2)?;
        expect(b, 7, b'-')?;
        let day = digits(b, 8, 2)?;
        if !matches!(b[10], b'T' | b't' | b' ') {
            return Err(TimestampError("missing T between date and time"));
        }
        let hour = digits(b, 11, 2)?;
        expect(b, 13, b':')?;
        let minute = digits(b, 14, 2)?;
        expect(b, 16, b':')?;
        let mut second = digits(b, 17, 2)?;
        let mut i = 19;
        let mut millis = 0;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 3 {
                    millis = millis * 10 + i64::from(b[i] - b'0');
                }
                i += 1;
            }
            match i - start {
                0 => return Err(TimestampError("empty fraction of a second")),
                1 => millis *= 100,
                2 => millis *= 10,
                _ => {}
            }
        }
        let offset_minutes = match b.get(i) {
            Some(b'Z' | b'z') => {
                i += 1;
                0
            }
            Some(&sign @ (b'+' | b'-')) => {
                let oh = digits(b, i + 1, 2)?;
                let colon = usize::from(b.get(i + 3) == Some(&b':'));
                let om = digits(b, i + 3 + colon, 2)?;
                i += 5 + colon;
                if oh > 23 || om > 59 {
                    return Err(TimestampError("offset out of range"));
                }
                let m = oh * 60 + om;
                if sign == b'-' { -m } else { m }
            }
            _ => return Err(TimestampError("missing time zone (Z or ±HH:MM)")),
        };
        if i != b.len() {
            return Err(TimestampError("unexpected characters after the time zone"));
        }
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(TimestampError("no such date"));
        }
        if hour > 23 || minute > 59 || second > 60 {
            return Err(TimestampError("no such time of day"));
        }
        if second == 60 {
            second = 59;
            millis = 999;
        }
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
        let ms = secs * 1000 + millis;
        if !(MIN_MS..=MAX_MS).contains(&ms) {
            return Err(TimestampError("outside years 0000 to 9999 in UTC"));
        }
        Ok(Timestamp(ms))
    }

    /// The canonical 24-byte form, as bytes.
    pub(crate) fn to_bytes(self) -> [u8; 24] {
        let mut out = [0; 24];
        self.format(&mut out);
        out
    }

    /// Writes the canonical 24-byte form into `out`.
    fn format(self, out: &mut [u8; 24]) {
        let days = self.0.div_euclid(DAY_MS);
        let ms_of_day = self.0.rem_euclid(DAY_MS);
        let (y, m, d) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        let fields = [
            (0, 4, y),
            (5, 2, m),
            (8, 2, d),
            (11, 2, secs / 3600),
            (14, 2, secs / 60 % 60),
            (17, 2, secs % 60),
            (20, 3, ms_of_day % 1000),
        ];
        *out = *b"0000-00-00T00:00:00.000Z";
        for (at, width, mut value) in fields {
            for pos in (at..at + width).rev() {
                // `value` is in 0..=9999 for every field; the digit fits in a byte.
                out[pos] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only ASCII digits and separators.
        f.write_str(core::str::from_utf8(&self.to_bytes()).map_err(|_| fmt::Error)?)
    }
}

impl core::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <alloc::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Result<i64, TimestampError> {
    let slice = b.get(at..at + n).ok_or(TimestampError("truncated"))?;
    slice.iter().try_fold(0i64, |acc, &c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + i64::from(c - b'0'))
        } else {
            Err(TimestampError("expected a digit"))
        }
    })
}

fn expect(b: &[u8], at: usize, c: u8) -> Result<(), TimestampError> {
    if b.get(at) == Some(&c) {
        Ok(())
    } else {
        Err(TimestampError("misplaced separator"))
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Timestamp::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalizes_offsets_to_utc_millis() {
        assert_eq!(
            canon("2026-07-01T12:34:56.789Z"),
            "2026-07-01T12:34:56.789Z"
        );
        assert_eq!(
            canon("2026-07-01T14:34:56.789+02:00"),
            "2026-07-01T12:34:56.789Z"
        );
        assert_eq!(
            canon("2026-07-01T07:04:56.7-05:30"),
            "2026-07-01T12:34:56.700Z"
        );
        assert_eq!(canon("2026-07-01T12:34:56Z"), "2026-07-01T12:34:56.000Z");
        assert_eq!(
            canon("2026-07-01t12:34:56.123456789z"),
            "2026-07-01T12:34:56.123Z"
        );
        assert_eq!(
            canon("2026-07-01 12:34:56.12+0000"),
            "2026-07-01T12:34:56.120Z"
        );
        assert_eq!(
            canon("2026-01-01T00:30:00+01:00"),
            "2025-12-31T23:30:00.000Z"
        );
        assert_eq!(canon("2016-12-31T23:59:60Z"), "2016-12-31T23:59:59.999Z");
    }

    #[test]
    fn unix_epoch_and_known_instants() {
        assert_eq!(
            Timestamp::parse("1970-01-01T00:00:00Z")
                .unwrap()
                .unix_millis(),
            0
        );
        assert_eq!(
            Timestamp::parse("2001-09-09T01:46:40.5Z")
                .unwrap()
                .unix_millis(),
            1_000_000_000_500
        );
        assert_eq!(
            Timestamp::from_unix_millis(-1).to_string(),
            "1969-12-31T23:59:59.999Z"
        );
        assert_eq!(Timestamp::MIN.to_string(), "0000-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "2026-07-01",
            "2026-07-01T12:34:56",
            "2026-07-01T12:34:56.Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-07-01T24:00:00Z",
            "2026-07-01T12:60:00Z",
            "2026-07-01T12:34:56+24:00",
            "2026-07-01T12:34:56Z trailing",
            "2026/07/01T12:34:56Z",
            "+2026-07-01T12:34:56Z",
            "0000-01-01T00:00:00+00:01",
            "1782901234567",
            "２０２６-07-01T12:34:56Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(Timestamp::parse("2024-02-29T00:00:00Z").is_ok());
    }

    #[test]
    fn civil_conversion_round_trips_over_four_centuries() {
        let start = days_from_civil(1900, 1, 1);
        for days in (start..start + 146_097).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
