//! Human durations in config and query strings: `500ms`, `30s`, `15m`, `1h`, `30d`.

use crate::prelude::*;
use core::fmt;
use core::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `Duration` written as a number and a unit (`ms`, `s`, `m`, `h`, `d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// The longest duration [`HumanDuration::parse`] accepts: 36,500 days (about a hundred
    /// years). Longer is an error rather than a value that overflows a deadline or a
    /// timestamp computed from it.
    pub const MAX: Duration = Duration::from_secs(36_500 * 86_400);

    /// Parses `500ms`, `30s`, `15m`, `1h`, `30d`, or combinations like `1h30m`, up to
    /// [`HumanDuration::MAX`].
    pub fn parse(s: &str) -> Result<HumanDuration, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty duration: write e.g. 30s, 15m, 1h or 30d".into());
        }
        let mut total = Duration::ZERO;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let unit_len = rest[digits..]
                .bytes()
                .take_while(u8::is_ascii_alphabetic)
                .count();
            if digits == 0 || unit_len == 0 {
                return Err(format!(
                    "{s:?} is not a duration: write e.g. 500ms, 30s, 15m, 1h or 30d"
                ));
            }
            let n: u64 = rest[..digits]
                .parse()
                .map_err(|_| format!("{s:?}: number too large"))?;
            let unit = &rest[digits..digits + unit_len];
            let ms_per = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => {
                    return Err(format!(
                        "{s:?}: unknown unit {unit:?}, use ms, s, m, h or d"
                    ));
                }
            };
            let too_long = || format!("{s:?} is too long: at most 36500d");
            total = n
                .checked_mul(ms_per)
                .and_then(|ms| total.checked_add(Duration::from_millis(ms)))
                .filter(|t| *t <= Self::MAX)
                .ok_or_else(too_long)?;
            rest = &rest[digits + unit_len..];
        }
        Ok(HumanDuration(total))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        for (unit, per) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
        ] {
            if ms >= per && ms.is_multiple_of(per) {
                return write!(f, "{}{unit}", ms / per);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        HumanDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl core::str::FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HumanDuration::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let d = |s| HumanDuration::parse(s).unwrap().0;
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("15m"), Duration::from_secs(900));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("30d"), Duration::from_secs(30 * 86_400));
        assert_eq!(HumanDuration(Duration::from_secs(5400)).to_string(), "90m");
        assert_eq!(HumanDuration(Duration::from_secs(86_400)).to_string(), "1d");
        for bad in ["", "15", "m", "15x", "1.5h", "-1s"] {
            assert!(HumanDuration::parse(bad).is_err(), "{bad}");
        }
    }

    /// Guards a panic: many terms that each fit added up past `Duration::MAX` ("overflow
    /// when adding durations"), and a huge value overflowed deadlines computed from it.
    #[test]
    fn too_long_is_an_error_not_a_panic() {
        assert_eq!(
            HumanDuration::parse("36500d").unwrap().0,
            HumanDuration::MAX
        );
        let each = format!("{}ms", u64::MAX);
        for long in [each.repeat(1_100), "36501d".into(), "36500d1ms".into()] {
            let err = HumanDuration::parse(&long).unwrap_err();
            assert!(err.contains("too long"), "{err}");
        }
        let err = HumanDuration::parse("99999999999999999999999d").unwrap_err();
        assert!(err.contains("too large"), "{err}");
    }
}
