//! The record: one log line or error event, the same in the browser, a service and the store.

use crate::prelude::*;
use alloc::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::level::Level;
use crate::timestamp::Timestamp;
use crate::validate::{FieldError, InvalidRecord, Problem};

/// `service`: at most this many characters of `[a-z0-9_.-]` (and at least one).
pub const MAX_SERVICE_CHARS: usize = 64;
/// `event`: at most this many characters (and at least one), no control characters.
pub const MAX_EVENT_CHARS: usize = 128;
/// `message`: at most this many bytes of UTF-8; longer text is cut and ends in
/// [`TRUNCATION_MARKER`], so the result including the marker fits.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// What a truncated `message` ends with.
pub const TRUNCATION_MARKER: &str = "…[truncated]";
/// `meta`: at most this many bytes once serialized as compact JSON, not counting
/// `meta.sample_weight` (which only the server's sampler sets, after the check).
pub const MAX_META_BYTES: usize = 16 * 1024;
/// `meta`: at most this many levels of nesting, `meta` itself being level 1.
pub const MAX_META_DEPTH: usize = 8;

/// `issue`: at most this many characters (the server writes [`crate::ISSUE_ID_HEX_CHARS`]).
pub const MAX_ISSUE_CHARS: usize = 64;

/// `meta.sample_weight`: how many records this one stands for when its service was sampled
/// (see [`Record::sample_weight`]).
pub const SAMPLE_WEIGHT_KEY: &str = "sample_weight";

/// `meta` keys with a defined meaning, and the JSON type each must have.
pub const RESERVED_META_KEYS: [(&str, MetaType); 12] = [
    ("trace_id", MetaType::String),
    ("span_id", MetaType::String),
    ("user", MetaType::String),
    ("release", MetaType::String),
    ("environment", MetaType::String),
    ("url", MetaType::String),
    ("user_agent", MetaType::String),
    ("error_type", MetaType::String),
    ("stack", MetaType::Array),
    ("breadcrumbs", MetaType::Array),
    ("count", MetaType::Count),
    (SAMPLE_WEIGHT_KEY, MetaType::Count),
];

/// The JSON type a reserved `meta` key must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaType {
    /// A string.
    String,
    /// An array (`stack` holds [`crate::Frame`]s, `breadcrumbs` objects).
    Array,
    /// A non-negative integer.
    Count,
}

/// One log line or error event.
///
/// Build one from untrusted JSON with [`Record::from_value`] / [`Record::from_json`], which
/// check every rule and report each bad field; or construct it in code and call
/// [`Record::validate`]. Serializes to the wire and storage form (`id` and `received_at`
/// omitted when unset, `meta` omitted when empty).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// Client- or server-chosen UUID; a record is stored at most once per id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// When it happened (UTC, milliseconds).
    pub ts: Timestamp,
    /// When the ingest server received it; set by the server, never trusted from clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_at: Option<Timestamp>,
    /// Who sent it: 1 to [`MAX_SERVICE_CHARS`] of `[a-z0-9_.-]`.
    pub service: String,
    /// How bad it is.
    pub level: Level,
    /// A short machine key such as `window.onerror` or `payment_failed`.
    pub event: String,
    /// Human text, at most [`MAX_MESSAGE_BYTES`].
    pub message: String,
    /// Structured context; see [`RESERVED_META_KEYS`].
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
    /// The issue this error event belongs to ([`crate::fingerprint::group`]); set by the
    /// server at ingest on every error event and removed from every other record, whatever
    /// the client sent. At most [`MAX_ISSUE_CHARS`] characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issue: Option<String>,
}

impl Record {
    /// A record with empty `meta` and no id. Not yet checked: call [`Record::validate`].
    pub fn new(
        ts: Timestamp,
        service: impl Into<String>,
        level: Level,
        event: impl Into<String>,
        message: impl Into<String>,
    ) -> Record {
        Record {
            id: None,
            ts,
            received_at: None,
            service: service.into(),
            level,
            event: event.into(),
            message: message.into(),
            meta: Map::new(),
            issue: None,
        }
    }

    /// Parses and checks one record from JSON bytes.
    ///
    /// Valid records take a typed fast path; anything it cannot take (a missing or mistyped
    /// field, an unknown key, a broken rule) is parsed again through [`Record::from_value`],
    /// which names every problem. Both paths accept and produce the same records.
    pub fn from_json(json: &[u8]) -> Result<Record, InvalidRecord> {
        match core::str::from_utf8(json) {
            Ok(text) => Record::from_json_str(text),
            // Let the parser say where the bad byte is.
            Err(_) => Err(serde_json::from_slice::<Value>(json).map_or_else(
                |e| {
                    InvalidRecord::single(
                        "record",
                        Problem::NotJson,
                        format!("not valid JSON: {e}"),
                    )
                },
                |_| InvalidRecord::single("record", Problem::NotJson, "not valid UTF-8"),
            )),
        }
    }

    /// [`Record::from_json`] for text already known to be UTF-8, which the parser then does
    /// not check again string by string.
    pub fn from_json_str(json: &str) -> Result<Record, InvalidRecord> {
        if let Some(record) = Record::from_json_fast(json) {
            return Ok(record);
        }
        let value: Value = serde_json::from_str(json).map_err(|e| {
            InvalidRecord::single("record", Problem::NotJson, format!("not valid JSON: {e}"))
        })?;
        Record::from_value(value)
    }

    fn from_json_fast(json: &str) -> Option<Record> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Wire<'a> {
            #[serde(borrow, default)]
            id: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            ts: Option<Cow<'a, str>>,
            #[serde(borrow, default)]
            received_at: Option<Cow<'a, str>>,
            #[serde(default)]
            service: Option<String>,
            #[serde(borrow, default)]
            level: Option<Cow<'a, str>>,
            #[serde(default)]
            event: Option<String>,
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            meta: Option<Map<String, Value>>,
            #[serde(default)]
            issue: Option<String>,
        }
        let wire: Wire<'_> = serde_json::from_str(json).ok()?;
        let id = match wire.id {
            None => None,
            Some(s) => Some(Uuid::try_parse(&s).ok().filter(|id| !id.is_nil())?),
        };
        let received_at = match wire.received_at {
            None => None,
            Some(s) => Some(Timestamp::parse(&s).ok()?),
        };
        let mut record = Record {
            id,
            ts: Timestamp::parse(&wire.ts?).ok()?,
            received_at,
            service: wire.service?,
            level: Level::parse(&wire.level?)?,
            event: wire.event?,
            message: wire.message?,
            meta: wire.meta.unwrap_or_default(),
            issue: wire.issue,
        };
        let mut errors = Vec::new();
        record.check_into(&mut errors, Some(json.len()));
        errors.is_empty().then_some(record)
    }

    /// Checks one decoded JSON value and turns it into a record, reporting every bad field.
    ///
    /// Besides the rules of each field: `id` and `received_at` are optional; top-level keys
    /// that are not fields of the record are moved into `meta` (unless `meta` already has
    /// that key) rather than dropped.
    pub fn from_value(value: Value) -> Result<Record, InvalidRecord> {
        let Value::Object(mut obj) = value else {
            return Err(InvalidRecord::single(
                "record",
                Problem::WrongType,
                format!("must be a JSON object, got {}", type_name(&value)),
            ));
        };
        let mut errors = Vec::new();

        let id = match obj.remove("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match Uuid::try_parse(&s) {
                Ok(id) if !id.is_nil() => Some(id),
                _ => {
                    errors.push(FieldError::new(
                        "id",
                        Problem::Invalid,
                        format!("{s:?} is not a UUID: send a v4 or v7 UUID, or omit id"),
                    ));
                    None
                }
            },
            Some(other) => {
                errors.push(wrong_type("id", "a UUID string", &other));
                None
            }
        };
        let ts = take_timestamp(&mut obj, "ts", true, &mut errors);
        let received_at = take_timestamp(&mut obj, "received_at", false, &mut errors);
        let service = take_string(&mut obj, "service", &mut errors);
        let level = match obj.remove("level") {
            None | Some(Value::Null) => {
                errors.push(missing("level"));
                None
            }
            Some(Value::String(s)) => match Level::parse(&s) {
                Some(l) => Some(l),
                None => {
                    let msg = s.parse::<Level>().err().map(|e| e.to_string());
                    errors.push(FieldError::new(
                        "level",
                        Problem::Invalid,
                        msg.unwrap_or_default(),
                    ));
                    None
                }
            },
            Some(other) => {
                errors.push(wrong_type("level", "a level name", &other));
                None
            }
        };
        let event = take_string(&mut obj, "event", &mut errors);
        let message = take_string(&mut obj, "message", &mut errors);
        let issue = match obj.remove("issue") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                errors.push(wrong_type("issue", "an issue id string", &other));
                None
            }
        };
        let mut meta = match obj.remove("meta") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(other) => {
                errors.push(wrong_type("meta", "an object", &other));
                Map::new()
            }
        };
        for (key, value) in obj {
            meta.entry(key).or_insert(value);
        }

        match (ts, service, level, event, message) {
            (Some(ts), Some(service), Some(level), Some(event), Some(message)) => {
                let mut record = Record {
                    id,
                    ts,
                    received_at,
                    service,
                    level,
                    event,
                    message,
                    meta,
                    issue,
                };
                record.check_into(&mut errors, None);
                if errors.is_empty() {
                    Ok(record)
                } else {
                    Err(InvalidRecord { errors })
                }
            }
            (_, service, _, event, _) => {
                // Report the value rules too, so one round trip shows every problem.
                if let Some(s) = service {
                    errors.extend(check_service(&s).err());
                }
                if let Some(e) = event {
                    errors.extend(check_event(&e).err());
                }
                check_meta(&mut meta, &mut errors, None);
                Err(InvalidRecord { errors })
            }
        }
    }

    /// Normalizes (truncates `message`, replaces NUL characters, which PostgreSQL cannot
    /// store) and checks every rule. Call this on records built in code.
    pub fn validate(&mut self) -> Result<(), InvalidRecord> {
        let mut errors = Vec::new();
        self.check_into(&mut errors, None);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(InvalidRecord { errors })
        }
    }

    /// `source_len`: the length of the JSON the record was parsed from, if known.
    fn check_into(&mut self, errors: &mut Vec<FieldError>, source_len: Option<usize>) {
        errors.extend(check_service(&self.service).err());
        errors.extend(check_event(&self.event).err());
        if let Some(issue) = &self.issue {
            errors.extend(check_issue(issue).err());
        }
        scrub_nul(&mut self.message);
        truncate_message(&mut self.message);
        check_meta(&mut self.meta, errors, source_len);
    }

    /// How many records this one stands for: `meta.sample_weight` when a sampler kept it
    /// for others like it, else 1 (a weight of 0 counts as 1).
    pub fn sample_weight(&self) -> u64 {
        self.meta
            .get(SAMPLE_WEIGHT_KEY)
            .and_then(Value::as_u64)
            .map_or(1, |w| w.max(1))
    }

    /// The anonymized user id in `meta.user`, if any.
    pub fn user(&self) -> Option<&str> {
        self.meta.get("user").and_then(Value::as_str)
    }
}

impl<'de> Deserialize<'de> for Record {
    /// Deserializes through [`Record::from_value`], so every rule applies.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Record::from_value(value).map_err(serde::de::Error::custom)
    }
}

/// Checks the `service` rule: 1 to [`MAX_SERVICE_CHARS`] of `[a-z0-9_.-]`.
pub fn check_service(service: &str) -> Result<(), FieldError> {
    let ok_chars = service
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-'));
    if service.is_empty() {
        Err(FieldError::new(
            "service",
            Problem::Invalid,
            "must not be empty",
        ))
    } else if !ok_chars {
        Err(FieldError::new(
            "service",
            Problem::Invalid,
            format!("{service:?} may only use lowercase a-z, 0-9, '_', '.' and '-'"),
        ))
    } else if service.len() > MAX_SERVICE_CHARS {
        Err(FieldError::new(
            "service",
            Problem::TooLong,
            format!(
                "{} chars, at most {MAX_SERVICE_CHARS} allowed",
                service.len()
            ),
        ))
    } else {
        Ok(())
    }
}

/// Checks the `issue` rule: 1 to [`MAX_ISSUE_CHARS`] of `[a-z0-9]` (the server replaces
/// whatever a client sent; this only keeps stored and exported records well-formed).
pub fn check_issue(issue: &str) -> Result<(), FieldError> {
    if issue.is_empty() || issue.len() > MAX_ISSUE_CHARS {
        Err(FieldError::new(
            "issue",
            Problem::Invalid,
            format!("must be 1 to {MAX_ISSUE_CHARS} characters"),
        ))
    } else if !issue
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Err(FieldError::new(
            "issue",
            Problem::Invalid,
            format!("{issue:?} may only use lowercase a-z and 0-9"),
        ))
    } else {
        Ok(())
    }
}

/// Checks the `event` rule: 1 to [`MAX_EVENT_CHARS`] characters, no control characters.
pub fn check_event(event: &str) -> Result<(), FieldError> {
    let chars = event.chars().count();
    if chars == 0 {
        Err(FieldError::new(
            "event",
            Problem::Invalid,
            "must not be empty",
        ))
    } else if chars > MAX_EVENT_CHARS {
        Err(FieldError::new(
            "event",
            Problem::TooLong,
            format!("{chars} chars, at most {MAX_EVENT_CHARS} allowed: put detail in message"),
        ))
    } else if event.chars().any(char::is_control) {
        Err(FieldError::new(
            "event",
            Problem::Invalid,
            "must not contain control characters",
        ))
    } else {
        Ok(())
    }
}

/// Cuts `message` to [`MAX_MESSAGE_BYTES`] on a character boundary, marker included.
/// Returns whether it was cut.
pub fn truncate_message(message: &mut String) -> bool {
    if message.len() <= MAX_MESSAGE_BYTES {
        return false;
    }
    let mut cut = MAX_MESSAGE_BYTES - TRUNCATION_MARKER.len();
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    message.truncate(cut);
    message.push_str(TRUNCATION_MARKER);
    true
}

/// Compact JSON re-serialized from parsed JSON is at most this many times as long as its
/// source: the worst case is a float written with an exponent (`1e15`, 4 bytes, comes back
/// as `1000000000000000.0`, 18 bytes); strings and structure never grow.
const MAX_REENCODE_GROWTH: usize = 5;

/// `source_len` lets the size check be skipped when the whole record's source is too short
/// for `meta` to reach the limit, which saves serializing `meta` once more per record.
fn check_meta(
    meta: &mut Map<String, Value>,
    errors: &mut Vec<FieldError>,
    source_len: Option<usize>,
) {
    // One pass over `meta` (a map lookup per reserved key cost more on the ingest path);
    // mistyped keys are reported in the order of RESERVED_META_KEYS.
    let mut mistyped: Vec<(usize, &'static str, MetaType, &Value)> = Vec::new();
    for (key, value) in meta.iter() {
        let Some(index) = reserved_index(key) else {
            continue;
        };
        let (name, expected) = RESERVED_META_KEYS[index];
        let ok = match expected {
            MetaType::String => value.is_string(),
            MetaType::Array => value.is_array(),
            MetaType::Count => value.is_u64(),
        };
        if !ok {
            mistyped.push((index, name, expected, value));
        }
    }
    mistyped.sort_by_key(|m| m.0);
    for (_, key, expected, value) in mistyped {
        let want = match (expected, key) {
            (MetaType::Array, "stack") => {
                "an array of frames (put raw stack text in meta.stack_text)"
            }
            (MetaType::Array, _) => "an array",
            (MetaType::String, _) => "a string",
            (MetaType::Count, _) => "a non-negative integer",
        };
        errors.push(wrong_type(&format!("meta.{key}"), want, value));
    }
    let mut depth_exceeded = false;
    for value in meta.values_mut() {
        depth_exceeded |= scrub_value(value, 2);
    }
    scrub_keys(meta);
    if depth_exceeded {
        errors.push(FieldError::new(
            "meta",
            Problem::TooDeep,
            format!("nested more than {MAX_META_DEPTH} levels deep"),
        ));
        return;
    }
    if source_len.is_some_and(|n| n.saturating_mul(MAX_REENCODE_GROWTH) <= MAX_META_BYTES) {
        return;
    }
    let size = serialized_len(meta).saturating_sub(sample_weight_len(meta));
    if size > MAX_META_BYTES {
        errors.push(FieldError::new(
            "meta",
            Problem::TooLarge,
            format!("{size} bytes as JSON, at most {MAX_META_BYTES} allowed"),
        ));
    }
}

/// The bytes `meta.sample_weight` takes in `meta`'s compact JSON (key, colon, number and the
/// comma before or after it), which [`MAX_META_BYTES`] does not count: the server's sampler
/// adds the key to records that were checked before (at most 37 bytes), and an acknowledged
/// record must still read back.
fn sample_weight_len(meta: &Map<String, Value>) -> usize {
    let Some(weight) = meta.get(SAMPLE_WEIGHT_KEY).and_then(Value::as_u64) else {
        return 0;
    };
    let digits = weight.checked_ilog10().map_or(1, |d| d as usize + 1);
    let comma = usize::from(meta.len() > 1);
    SAMPLE_WEIGHT_KEY.len() + 2 + 1 + digits + comma
}

/// The position of `key` in [`RESERVED_META_KEYS`].
fn reserved_index(key: &str) -> Option<usize> {
    Some(match key {
        "trace_id" => 0,
        "span_id" => 1,
        "user" => 2,
        "release" => 3,
        "environment" => 4,
        "url" => 5,
        "user_agent" => 6,
        "error_type" => 7,
        "stack" => 8,
        "breadcrumbs" => 9,
        "count" => 10,
        SAMPLE_WEIGHT_KEY => 11,
        _ => return None,
    })
}

/// Replaces NUL characters in strings (PostgreSQL text and JSONB reject them) and reports
/// whether anything below `value` lies deeper than [`MAX_META_DEPTH`]. `depth` is the level
/// of `value` itself.
fn scrub_value(value: &mut Value, depth: usize) -> bool {
    match value {
        Value::String(s) => {
            scrub_nul(s);
            false
        }
        Value::Array(items) => {
            depth > MAX_META_DEPTH || items.iter_mut().any(|v| scrub_value(v, depth + 1))
        }
        Value::Object(map) => {
            if depth > MAX_META_DEPTH {
                return true;
            }
            let mut deep = false;
            for v in map.values_mut() {
                deep |= scrub_value(v, depth + 1);
            }
            scrub_keys(map);
            deep
        }
        _ => false,
    }
}

/// Replaces NUL characters in the keys of `map` (keys of nested objects too: PostgreSQL's
/// `jsonb` refuses them anywhere, and one such key would fail the whole batch's insert).
/// A scrubbed key that collides with an existing one replaces it, as a duplicate key does.
fn scrub_keys(map: &mut Map<String, Value>) {
    if map.keys().any(|k| k.contains('\0')) {
        let old = core::mem::take(map);
        *map = old
            .into_iter()
            .map(|(mut k, v)| {
                scrub_nul(&mut k);
                (k, v)
            })
            .collect();
    }
}

fn scrub_nul(s: &mut String) {
    if s.contains('\0') {
        *s = s.replace('\0', "\u{FFFD}");
    }
}

fn serialized_len(meta: &Map<String, Value>) -> usize {
    json_len(meta)
}

/// The length in bytes of `value`'s compact JSON (as `serde_json::to_vec` writes it),
/// counted without building the JSON.
#[cfg(feature = "std")]
pub fn json_len<T: Serialize + ?Sized>(value: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing to a counter cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// The length in bytes of `value`'s compact JSON (as `serde_json::to_vec` writes it);
/// without `std` (no `io::Write` to count through) the JSON is built.
#[cfg(not(feature = "std"))]
pub fn json_len<T: Serialize + ?Sized>(value: &T) -> usize {
    serde_json::to_vec(value).map_or(0, |json| json.len())
}

fn take_string(
    obj: &mut Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match obj.remove(field) {
        Some(Value::String(s)) => Some(s),
        None | Some(Value::Null) => {
            errors.push(missing(field));
            None
        }
        Some(other) => {
            errors.push(wrong_type(field, "a string", &other));
            None
        }
    }
}

fn take_timestamp(
    obj: &mut Map<String, Value>,
    field: &str,
    required: bool,
    errors: &mut Vec<FieldError>,
) -> Option<Timestamp> {
    match obj.remove(field) {
        Some(Value::String(s)) => match Timestamp::parse(&s) {
            Ok(ts) => Some(ts),
            Err(e) => {
                errors.push(FieldError::new(
                    field,
                    Problem::Invalid,
                    format!("{s:?}: {e}"),
                ));
                None
            }
        },
        None | Some(Value::Null) => {
            if required {
                errors.push(missing(field));
            }
            None
        }
        Some(other) => {
            errors.push(wrong_type(field, "an RFC 3339 string", &other));
            None
        }
    }
}

fn missing(field: &str) -> FieldError {
    FieldError::new(field, Problem::Missing, "is required")
}

fn wrong_type(field: &str, expected: &str, got: &Value) -> FieldError {
    FieldError::new(
        field,
        Problem::WrongType,
        format!("must be {expected}, got {}", type_name(got)),
    )
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_index_knows_every_reserved_key() {
        for (i, (key, _)) in RESERVED_META_KEYS.iter().enumerate() {
            assert_eq!(reserved_index(key), Some(i), "{key}");
        }
        for other in ["", "users", "Trace_id", "stack_text"] {
            assert_eq!(reserved_index(other), None, "{other}");
        }
    }

    /// Guards the stored form of error records: `issue` is a top-level field that reads back
    /// through both parsers, is written last, and is refused when malformed.
    #[test]
    fn issue_round_trips_and_is_checked() {
        let line = r#"{"ts":"2026-01-01T00:00:00.000Z","service":"ui","level":"ERROR","event":"e","message":"m","issue":"0123456789abcdef"}"#;
        let fast = Record::from_json(line.as_bytes()).unwrap();
        assert_eq!(fast.issue.as_deref(), Some("0123456789abcdef"));
        assert!(fast.meta.is_empty(), "issue is not moved into meta");
        assert_eq!(fast.to_json(), line);
        assert_eq!(serde_json::to_string(&fast).unwrap(), line);
        let slow = Record::from_value(serde_json::from_str(line).unwrap()).unwrap();
        assert_eq!(slow, fast);
        for bad in [r#""ABC""#, r#""""#, "7", r#""a b""#] {
            let text = line.replace(r#""0123456789abcdef""#, bad);
            let err = Record::from_json(text.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("issue"), "{bad}: {err}");
        }
    }
}
