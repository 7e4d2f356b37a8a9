//! Any other JSON object, by the key names loggers commonly use.
//!
//! | keys tried, in order | record |
//! | --- | --- |
//! | `message`, `msg`, `text`, `log` | `message` (else the whole line) |
//! | `level`, `severity`, `levelname`, `lvl`, `loglevel` | `level` (a name or alias; others stay in `meta`) |
//! | `ts`, `timestamp`, `time`, `@timestamp`, `date` | `ts` |
//! | `event` | `event` |
//! | anything else | `meta` |

use serde_json::{Map, Value};

use super::{rest_into_meta, take_first_text, take_level, take_text, take_ts};
use crate::parse::parsed::{Format, Parsed};

pub(super) fn map(mut obj: Map<String, Value>) -> Parsed {
    let message = take_first_text(&mut obj, &["message", "msg", "text", "log"]);
    let whole = message
        .is_none()
        .then(|| Value::Object(obj.clone()).to_string());
    let mut p = Parsed::new(Format::Json, message.or(whole).unwrap_or_default());
    p.level = ["level", "severity", "levelname", "lvl", "loglevel"]
        .iter()
        .find_map(|k| take_level(&mut obj, k));
    p.ts = take_ts(&mut obj, &["ts", "timestamp", "time", "@timestamp", "date"]);
    p.event = take_text(&mut obj, "event");
    rest_into_meta(&mut p, obj);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::Level;
    use serde_json::json;

    #[test]
    fn common_key_names() {
        let Value::Object(o) = json!({"severity": "error", "msg": "down", "@timestamp": "2026-07-01T12:34:56.789Z", "region": "eu"})
        else {
            unreachable!()
        };
        let p = map(o);
        assert_eq!((p.level, p.message.as_str()), (Some(Level::Error), "down"));
        assert_eq!(p.ts.unwrap().unix_millis(), 1_782_909_296_789);
        assert_eq!(p.meta["region"], "eu");
        let Value::Object(o) = json!({"level": "loud", "code": 3}) else {
            unreachable!()
        };
        let p = map(o);
        assert_eq!(p.level, None);
        assert_eq!(p.message, r#"{"code":3,"level":"loud"}"#);
        assert_eq!(p.meta["level"], "loud");
    }
}
