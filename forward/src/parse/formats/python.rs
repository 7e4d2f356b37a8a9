//! Python `logging` through a JSON formatter (`python-json-logger` names its keys after the
//! `LogRecord` attributes).
//!
//! | key | record |
//! | --- | --- |
//! | `levelname` (else `level`) | `level` |
//! | `message` (else `msg`) | `message` |
//! | `created` (epoch seconds), else `asctime`, `timestamp`, `time` | `ts` (`asctime` without an offset is local time; dropped once `ts` is read) |
//! | `name` (the logger) | `event` |
//! | `exc_info` (else `exc_text`) | `meta.stack_text`, and `meta.error_type` from its last line |
//! | `levelno` | dropped (same as `levelname`) |
//! | anything else (`funcName`, `lineno`, `module`, `process`, `threadName`, extras) | `meta` |

use serde_json::{Map, Value};

use super::{rest_into_meta, take_first_text, take_level, take_text, take_ts};
use crate::parse::parsed::{Format, Parsed};

pub(super) fn map(mut obj: Map<String, Value>) -> Parsed {
    let message = take_first_text(&mut obj, &["message", "msg"]).unwrap_or_default();
    let mut p = Parsed::new(Format::Python, message);
    p.level = take_level(&mut obj, "levelname").or_else(|| take_level(&mut obj, "level"));
    p.ts = take_ts(&mut obj, &["created", "asctime", "timestamp", "time"]);
    if p.ts.is_some() {
        // The same moment, formatted: `created` has it to the microsecond.
        obj.remove("asctime");
    }
    p.event = take_text(&mut obj, "name");
    obj.remove("levelno");
    if let Some(tb) = take_first_text(&mut obj, &["exc_info", "exc_text"]) {
        p.attach_traceback(tb.trim_end());
    }
    rest_into_meta(&mut p, obj);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::Level;
    use serde_json::json;

    #[test]
    fn python_json_logger_keys() {
        let Value::Object(o) = json!({
            "asctime": "2026-07-01 12:34:56,789", "created": 1_782_909_296.789,
            "levelname": "ERROR", "levelno": 40, "name": "app.payments",
            "message": "charge failed", "funcName": "charge", "lineno": 42,
            "order_id": 7,
            "exc_info": "Traceback (most recent call last):\n  File \"app.py\", line 42, in charge\n    pay()\nValueError: card declined\n"
        }) else {
            unreachable!()
        };
        let p = map(o);
        assert_eq!(p.format, Format::Python);
        assert_eq!(p.level, Some(Level::Error));
        assert_eq!(p.ts.unwrap().unix_millis(), 1_782_909_296_789);
        assert_eq!(p.event.as_deref(), Some("app.payments"));
        assert_eq!(p.message, "charge failed");
        assert_eq!(p.meta["error_type"], "ValueError");
        assert!(
            p.meta["stack_text"]
                .as_str()
                .unwrap()
                .ends_with("ValueError: card declined")
        );
        assert_eq!(p.meta["funcName"], "charge");
        assert_eq!(p.meta["lineno"], 42);
        assert_eq!(p.meta["order_id"], 7);
        for gone in [
            "asctime",
            "created",
            "levelno",
            "exc_info",
            "levelname",
            "name",
        ] {
            assert!(!p.meta.contains_key(gone), "{gone}");
        }
    }

    #[test]
    fn warn_alias_and_msg_key() {
        let Value::Object(o) = json!({"levelname": "WARN", "msg": "slow"}) else {
            unreachable!()
        };
        let p = map(o);
        assert_eq!(
            (p.level, p.message.as_str()),
            (Some(Level::Warning), "slow")
        );
        assert_eq!(p.ts, None);
    }
}
