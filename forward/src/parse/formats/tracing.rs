//! `tracing-subscriber`'s JSON format (`fmt().json()`), as Rust services write it.
//!
//! | key | record |
//! | --- | --- |
//! | `timestamp` | `ts` |
//! | `level` (`TRACE` .. `ERROR`) | `level` (`TRACE` becomes `DEBUG`) |
//! | `fields.message` | `message` |
//! | other `fields.*` | `meta.*` |
//! | `target` | `event` |
//! | `span`, `spans` | `meta.span`, `meta.spans` |
//! | anything else (`threadName`, `filename`, `line_number`) | `meta` |

use serde_json::{Map, Value};

use super::{rest_into_meta, take_level, take_text, take_ts};
use crate::parse::parsed::{Format, Parsed};

pub(super) fn map(mut obj: Map<String, Value>) -> Parsed {
    let mut fields = match obj.remove("fields") {
        Some(Value::Object(f)) => f,
        Some(other) => Map::from_iter([("fields".to_owned(), other)]),
        None => Map::new(),
    };
    let message = take_text(&mut fields, "message").unwrap_or_default();
    let mut p = Parsed::new(Format::Tracing, message);
    p.ts = take_ts(&mut obj, &["timestamp"]);
    p.level = take_level(&mut obj, "level");
    p.event = take_text(&mut obj, "target");
    p.meta = fields;
    rest_into_meta(&mut p, obj);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::Level;
    use serde_json::json;

    #[test]
    fn tracing_subscriber_json() {
        let Value::Object(o) = json!({
            "timestamp": "2026-07-01T12:34:56.789123Z", "level": "WARN",
            "fields": {"message": "slow query", "elapsed_ms": 812},
            "target": "api::db", "span": {"name": "request", "id": 3},
            "spans": [{"name": "request", "id": 3}], "threadName": "tokio-1"
        }) else {
            unreachable!()
        };
        let p = map(o);
        assert_eq!(p.format, Format::Tracing);
        assert_eq!(p.level, Some(Level::Warning));
        assert_eq!(p.message, "slow query");
        assert_eq!(p.event.as_deref(), Some("api::db"));
        assert_eq!(p.ts.unwrap().unix_millis(), 1_782_909_296_789);
        assert_eq!(p.meta["elapsed_ms"], 812);
        assert_eq!(p.meta["span"]["name"], "request");
        assert_eq!(p.meta["spans"][0]["id"], 3);
        assert_eq!(p.meta["threadName"], "tokio-1");
    }
}
