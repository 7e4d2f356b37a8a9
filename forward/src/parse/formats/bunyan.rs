//! Bunyan (Node.js) JSON lines.
//!
//! | key | record |
//! | --- | --- |
//! | `level` 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal | `DEBUG`, `DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL` |
//! | `msg` | `message` |
//! | `time` | `ts` |
//! | `name` (the logger) | `event` |
//! | `hostname` | `meta.host` |
//! | `err.stack`, `err.name` | `meta.stack_text` and `meta.stack` (parsed frames), `meta.error_type`; the rest of `err` stays in `meta.err` |
//! | `v` | dropped (the format version) |
//! | anything else (`pid`, `req_id`, ...) | `meta` |

use faultline_schema::{Level, stack};
use serde_json::{Map, Value};

use super::{rest_into_meta, take_text, take_ts};
use crate::parse::parsed::{Format, Parsed};

pub(super) fn map(mut obj: Map<String, Value>) -> Parsed {
    let mut p = Parsed::new(
        Format::Bunyan,
        take_text(&mut obj, "msg").unwrap_or_default(),
    );
    if let Some(n) = obj.get("level").and_then(Value::as_f64) {
        p.level = Some(level(n));
        obj.remove("level");
    }
    p.ts = take_ts(&mut obj, &["time"]);
    p.event = take_text(&mut obj, "name");
    if let Some(host) = take_text(&mut obj, "hostname") {
        p.meta.insert("host".into(), Value::String(host));
    }
    obj.remove("v");
    if let Some(Value::Object(err)) = obj.get_mut("err") {
        if let Some(Value::String(name)) = err.remove("name") {
            p.meta.insert("error_type".into(), Value::String(name));
        }
        if let Some(Value::String(text)) = err.remove("stack") {
            let frames = stack::parse(&text);
            if !frames.is_empty()
                && let Ok(frames) = serde_json::to_value(frames)
            {
                p.meta.insert("stack".into(), frames);
            }
            p.meta.insert("stack_text".into(), Value::String(text));
        }
        if err.is_empty() {
            obj.remove("err");
        }
    }
    rest_into_meta(&mut p, obj);
    p
}

/// Bunyan's numeric levels; values between the named ones round up.
fn level(n: f64) -> Level {
    match n {
        n if n <= 20.0 => Level::Debug,
        n if n <= 30.0 => Level::Info,
        n if n <= 40.0 => Level::Warning,
        n if n <= 50.0 => Level::Error,
        _ => Level::Critical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bunyan_keys_and_levels() {
        let Value::Object(o) = json!({
            "name": "checkout", "hostname": "web-1", "pid": 4242, "level": 50,
            "msg": "payment failed", "time": "2026-07-01T12:34:56.789Z", "v": 0,
            "err": {"message": "declined", "name": "CardError", "code": "E42",
                    "stack": "CardError: declined\n    at charge (/srv/app/pay.js:10:5)\n    at main (/srv/app/index.js:3:1)"}
        }) else {
            unreachable!()
        };
        let p = map(o);
        assert_eq!(p.format, Format::Bunyan);
        assert_eq!(p.level, Some(Level::Error));
        assert_eq!(p.message, "payment failed");
        assert_eq!(p.event.as_deref(), Some("checkout"));
        assert_eq!(p.ts.unwrap().unix_millis(), 1_782_909_296_789);
        assert_eq!(p.meta["host"], "web-1");
        assert_eq!(p.meta["pid"], 4242);
        assert_eq!(p.meta["error_type"], "CardError");
        assert!(
            p.meta["stack_text"]
                .as_str()
                .unwrap()
                .starts_with("CardError: declined")
        );
        assert_eq!(p.meta["stack"][0]["function"], "charge");
        assert_eq!(p.meta["err"], json!({"message": "declined", "code": "E42"}));
        assert!(!p.meta.contains_key("v"));
        let levels: Vec<Level> = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 35.0]
            .map(level)
            .to_vec();
        assert_eq!(
            levels,
            [
                Level::Debug,
                Level::Debug,
                Level::Info,
                Level::Warning,
                Level::Error,
                Level::Critical,
                Level::Warning
            ]
        );
    }
}
