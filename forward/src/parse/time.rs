//! Timestamps as log formatters write them.

use chrono::{Local, NaiveDateTime, TimeZone};
use faultline_schema::{Timestamp, Value};

/// Forms of a date and time without an offset (Python's default `asctime` first).
const NAIVE_FORMATS: [&str; 4] = [
    "%Y-%m-%d %H:%M:%S,%3f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S",
];

/// A timestamp from a JSON value: an RFC 3339 string, a date and time without an offset
/// (read in the local time zone, as Python's `asctime` is written), or a number of seconds
/// (or, if too large for seconds, milliseconds) since the Unix epoch.
pub(crate) fn parse(value: &Value) -> Option<Timestamp> {
    match value {
        Value::String(s) => parse_str(s),
        Value::Number(n) => {
            let x = n.as_f64()?;
            // Seconds until the year 5138; beyond that it can only be milliseconds.
            let ms = if x.abs() < 1e11 { x * 1000.0 } else { x };
            ms.is_finite()
                .then(|| Timestamp::from_unix_millis(ms.round() as i64))
        }
        _ => None,
    }
}

/// [`parse`] for a string.
pub(crate) fn parse_str(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(ts) = Timestamp::parse(s) {
        return Some(ts);
    }
    let naive = NAIVE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())?;
    let local = Local.from_local_datetime(&naive).earliest()?;
    Some(Timestamp::from_unix_millis(local.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_epoch_numbers_and_asctime() {
        let t = parse(&json!("2026-07-01T12:34:56.789Z")).unwrap();
        assert_eq!(t.unix_millis(), 1_782_909_296_789);
        assert_eq!(parse(&json!(1_782_909_296.789)).unwrap(), t);
        assert_eq!(parse(&json!(1_782_909_296_789u64)).unwrap(), t);
        let local = parse(&json!("2026-07-01 12:34:56,789")).unwrap();
        let offset_ms = Local
            .from_local_datetime(
                &NaiveDateTime::parse_from_str("2026-07-01 12:34:56", "%Y-%m-%d %H:%M:%S").unwrap(),
            )
            .earliest()
            .unwrap()
            .offset()
            .local_minus_utc();
        assert_eq!(
            local.unix_millis(),
            t.unix_millis() - i64::from(offset_ms) * 1000
        );
        assert!(parse(&json!("yesterday")).is_none());
        assert!(parse(&json!(true)).is_none());
    }
}
