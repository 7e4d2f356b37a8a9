//! JSON log formats, recognized by their keys, each mapped to the record by its own module.
//!
//! | format | recognized by | module |
//! | --- | --- | --- |
//! | Faultline schema | `ts`, a string `level`, and `message` or `event` | `faultline.rs` |
//! | Bunyan | a numeric `v` and `level`, and `msg` | `bunyan.rs` |
//! | `tracing-subscriber` JSON | `timestamp`, a string `level`, and `fields` or `target` | `tracing.rs` |
//! | Python (`python-json-logger`) | `levelname`, `asctime` or `exc_info` | `python.rs` |
//! | any other object | none of the above | `generic.rs` |
//!
//! Keys a mapper does not use go to `meta` under their own names.

mod bunyan;
mod faultline;
mod generic;
mod python;
mod tracing;

use faultline_schema::{Level, Timestamp};
use serde_json::{Map, Value};

use super::parsed::Parsed;

/// Maps one JSON object to a [`Parsed`] line with the mapper its keys call for.
pub(crate) fn map(obj: Map<String, Value>) -> Parsed {
    let has = |k: &str| obj.contains_key(k);
    let is_str = |k: &str| obj.get(k).is_some_and(Value::is_string);
    let is_num = |k: &str| obj.get(k).is_some_and(Value::is_number);
    if has("ts") && is_str("level") && (has("message") || has("event")) {
        faultline::map(obj)
    } else if is_num("v") && is_num("level") && has("msg") {
        bunyan::map(obj)
    } else if has("timestamp") && is_str("level") && (has("fields") || has("target")) {
        tracing::map(obj)
    } else if has("levelname") || has("asctime") || has("exc_info") {
        python::map(obj)
    } else {
        generic::map(obj)
    }
}

/// Removes `key` and returns it as text: strings as they are, other scalars printed,
/// `null` as absent. Objects and arrays are left in place (they stay in `meta`).
fn take_text(obj: &mut Map<String, Value>, key: &str) -> Option<String> {
    let text = match obj.get(key)? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => {
            obj.remove(key);
            return None;
        }
        Value::Object(_) | Value::Array(_) => return None,
    };
    obj.remove(key);
    Some(text)
}

/// The first of `keys` that holds text (see [`take_text`]).
fn take_first_text(obj: &mut Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| take_text(obj, k))
}

/// Removes `key` if it holds a level name or alias; an unknown name stays in `meta`.
fn take_level(obj: &mut Map<String, Value>, key: &str) -> Option<Level> {
    let level = Level::parse(obj.get(key)?.as_str()?)?;
    obj.remove(key);
    Some(level)
}

/// Removes the first of `keys` that holds a timestamp (see `time::parse`); one that cannot
/// be read stays in `meta`.
fn take_ts(obj: &mut Map<String, Value>, keys: &[&str]) -> Option<Timestamp> {
    keys.iter().find_map(|k| {
        let ts = super::time::parse(obj.get(*k)?)?;
        obj.remove(*k);
        Some(ts)
    })
}

/// What is left of the object becomes `meta` (keys already in `meta` win).
fn rest_into_meta(parsed: &mut Parsed, obj: Map<String, Value>) {
    for (k, v) in obj {
        parsed.meta.entry(k).or_insert(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parsed::Format;
    use serde_json::json;

    fn format_of(v: Value) -> Format {
        let Value::Object(o) = v else { unreachable!() };
        map(o).format
    }

    #[test]
    fn detection_by_keys() {
        assert_eq!(
            format_of(json!({"ts": "2026-07-01T00:00:00Z", "level": "info", "message": "m"})),
            Format::Faultline
        );
        assert_eq!(
            format_of(json!({"v": 0, "level": 30, "msg": "m", "time": "2026-07-01T00:00:00Z"})),
            Format::Bunyan
        );
        assert_eq!(
            format_of(
                json!({"timestamp": "2026-07-01T00:00:00Z", "level": "INFO", "fields": {"message": "m"}, "target": "a"})
            ),
            Format::Tracing
        );
        assert_eq!(
            format_of(json!({"levelname": "INFO", "message": "m"})),
            Format::Python
        );
        assert_eq!(format_of(json!({"msg": "m"})), Format::Json);
    }
}
