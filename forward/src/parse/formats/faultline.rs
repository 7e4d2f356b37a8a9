//! JSON lines already in the Faultline schema: each field to itself.
//!
//! `id` (a UUID) is kept, so a line the forwarder reads twice is stored once; `service` is
//! kept when valid (else `--service`); `received_at` is dropped (the server sets it); keys
//! that are not fields go to `meta`, as the server itself does.

use faultline_schema::Uuid;
use serde_json::{Map, Value};

use super::{rest_into_meta, take_level, take_text, take_ts};
use crate::parse::parsed::{Format, Parsed};

pub(super) fn map(mut obj: Map<String, Value>) -> Parsed {
    let mut p = Parsed::new(
        Format::Faultline,
        take_text(&mut obj, "message").unwrap_or_default(),
    );
    if let Some(id) = obj
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::try_parse(s).ok())
        .filter(|id| !id.is_nil())
    {
        p.id = Some(id);
        obj.remove("id");
    }
    p.ts = take_ts(&mut obj, &["ts"]);
    p.service = take_text(&mut obj, "service");
    p.level = take_level(&mut obj, "level");
    p.event = take_text(&mut obj, "event");
    obj.remove("received_at");
    if let Some(Value::Object(meta)) = obj.get("meta") {
        p.meta = meta.clone();
        obj.remove("meta");
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
    fn fields_map_to_themselves() {
        let Value::Object(o) = json!({
            "id": "0190b0a0-0000-7000-8000-000000000001",
            "ts": "2026-07-01T12:34:56.789Z", "service": "billing", "level": "warn",
            "event": "payment_failed", "message": "card declined",
            "meta": {"trace_id": "abc"}, "received_at": "2026-07-01T12:34:57Z", "extra": 1
        }) else {
            unreachable!()
        };
        let p = map(o);
        assert_eq!(p.format, Format::Faultline);
        assert_eq!(
            p.id.unwrap().to_string(),
            "0190b0a0-0000-7000-8000-000000000001"
        );
        assert_eq!(p.ts.unwrap().unix_millis(), 1_782_909_296_789);
        assert_eq!(p.service.as_deref(), Some("billing"));
        assert_eq!(p.level, Some(Level::Warning));
        assert_eq!(p.event.as_deref(), Some("payment_failed"));
        assert_eq!(p.message, "card declined");
        assert_eq!(
            p.meta,
            json!({"trace_id": "abc", "extra": 1})
                .as_object()
                .unwrap()
                .clone()
        );
    }
}
