//! From OTLP `LogRecord`s to Faultline records.
//!
//! | OTLP | record |
//! | --- | --- |
//! | resource `service.name` | `service`, lowercased, other characters as `-` |
//! | resource `service.version` | `meta.release` |
//! | resource `deployment.environment.name` (or `deployment.environment`) | `meta.environment` |
//! | `severity_number` (else `severity_text`) | `level` |
//! | `body` | `message` (non-string bodies as JSON text) |
//! | `attributes` | `meta` (`exception.type` also as `meta.error_type`) |
//! | `event_name`, else attribute `event.name` or `event`, else the scope name | `event` |
//! | `trace_id`, `span_id` | `meta.trace_id`, `meta.span_id` (hex) |
//! | `time_unix_nano`, else `observed_time_unix_nano`, else arrival | `ts` |

use faultline_schema::{
    FieldError, InvalidRecord, Level, MAX_EVENT_CHARS, MAX_SERVICE_CHARS, Map, Problem, Record,
    Rejected, Timestamp, Value,
};

use super::json::{to_base64, to_hex};
use super::proto::{AnyValue, AnyValueKind, ExportLogsServiceRequest, KeyValue, LogRecord};

/// The event of a record with no event name and no scope name.
const DEFAULT_EVENT: &str = "otel.log";

/// The records of a request in order, and the ones that could not be mapped or validated
/// (by position among all the request's log records).
pub(crate) struct Mapped {
    pub records: Vec<Record>,
    pub rejected: Vec<Rejected>,
}

/// How many log records the request holds.
pub(crate) fn count(request: &ExportLogsServiceRequest) -> usize {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum()
}

/// Maps and validates every log record; `now` stands in for a record with no time.
pub(crate) fn map(request: ExportLogsServiceRequest, now: Timestamp) -> Mapped {
    let mut out = Mapped {
        records: Vec::with_capacity(count(&request)),
        rejected: Vec::new(),
    };
    let mut index = 0;
    for resource_logs in request.resource_logs {
        let attributes = resource_logs
            .resource
            .map(|r| r.attributes)
            .unwrap_or_default();
        let resource = ResourceInfo::from_attributes(&attributes);
        for scope_logs in resource_logs.scope_logs {
            let scope = scope_logs.scope.map(|s| s.name).unwrap_or_default();
            for log in scope_logs.log_records {
                match map_one(log, &resource, &scope, now) {
                    Ok(record) => out.records.push(record),
                    Err(error) => out.rejected.push(Rejected { index, error }),
                }
                index += 1;
            }
        }
    }
    out
}

/// What a resource gives each of its records.
struct ResourceInfo {
    service: Result<String, FieldError>,
    release: Option<String>,
    environment: Option<String>,
}

impl ResourceInfo {
    fn from_attributes(attributes: &[KeyValue]) -> ResourceInfo {
        let string = |key: &str| {
            attributes.iter().find_map(|kv| match &kv.value {
                Some(AnyValue {
                    value: Some(AnyValueKind::String(s)),
                }) if kv.key == key => Some(s.clone()),
                _ => None,
            })
        };
        let service = match string("service.name") {
            Some(name) => normalize_service(&name),
            None => Err(FieldError::new(
                "service",
                Problem::Missing,
                "the resource has no service.name attribute: set OTEL_SERVICE_NAME or the \
                 service.name resource attribute",
            )),
        };
        ResourceInfo {
            service,
            release: string("service.version"),
            environment: string("deployment.environment.name")
                .or_else(|| string("deployment.environment")),
        }
    }
}

/// `service.name` in Faultline's service rules: lowercase ASCII letters, digits, `_`, `.`
/// and `-`; other characters become `-`. Fails when nothing usable is left.
fn normalize_service(name: &str) -> Result<String, FieldError> {
    let normalized: String = name
        .trim()
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '.' | '-') => c,
            _ => '-',
        })
        .collect();
    let normalized = normalized.trim_matches('-');
    if !normalized.bytes().any(|b| b.is_ascii_alphanumeric()) {
        return Err(FieldError::new(
            "service",
            Problem::Invalid,
            format!(
                "service.name {name:?} has no letters or digits a service name can use \
                 ([a-z0-9_.-]): set OTEL_SERVICE_NAME to a name such as \"api\""
            ),
        ));
    }
    if normalized.len() > MAX_SERVICE_CHARS {
        return Err(FieldError::new(
            "service",
            Problem::TooLong,
            format!(
                "service.name {name:?} is longer than {MAX_SERVICE_CHARS} characters: \
                 set a shorter OTEL_SERVICE_NAME"
            ),
        ));
    }
    Ok(normalized.to_owned())
}

fn map_one(
    log: LogRecord,
    resource: &ResourceInfo,
    scope: &str,
    now: Timestamp,
) -> Result<Record, InvalidRecord> {
    let mut errors = Vec::new();
    let service = resource.service.clone().unwrap_or_else(|e| {
        errors.push(e);
        String::new()
    });
    let level = level(log.severity_number, &log.severity_text).unwrap_or_else(|e| {
        errors.push(e);
        Level::Info
    });
    // Any u64 of nanoseconds is within the years a timestamp holds (before 2555).
    let ts = timestamp(&log).map_or(now, |ns| {
        Timestamp::from_unix_millis(i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX))
    });

    let mut meta = Map::new();
    if let Some(release) = &resource.release {
        meta.insert("release".into(), Value::from(release.as_str()));
    }
    if let Some(environment) = &resource.environment {
        meta.insert("environment".into(), Value::from(environment.as_str()));
    }
    for kv in log.attributes {
        meta.insert(kv.key, kv.value.map_or(Value::Null, to_json));
    }
    if let Some(Value::String(t)) = meta.get("exception.type")
        && !meta.contains_key("error_type")
    {
        let t = t.clone();
        meta.insert("error_type".into(), Value::String(t));
    }
    for (field, bytes, len) in [
        ("trace_id", &log.trace_id, 16),
        ("span_id", &log.span_id, 8),
    ] {
        if bytes.is_empty() || bytes.iter().all(|b| *b == 0) {
            continue;
        }
        if bytes.len() == len {
            meta.insert(field.into(), Value::String(to_hex(bytes)));
        } else {
            errors.push(FieldError::new(
                field,
                Problem::Invalid,
                format!("{} bytes, must be {len}", bytes.len()),
            ));
        }
    }

    let event = take_event(log.event_name, &mut meta, scope);
    let message = match log.body.and_then(|b| b.value) {
        None => String::new(),
        Some(AnyValueKind::String(s)) => s,
        Some(other) => to_json(AnyValue { value: Some(other) }).to_string(),
    };
    let mut record = Record::new(ts, service, level, event, message);
    record.meta = meta;
    if let Err(invalid) = record.validate() {
        errors.extend(invalid.errors);
    }
    if errors.is_empty() {
        Ok(record)
    } else {
        Err(InvalidRecord { errors })
    }
}

/// The record's time: when it happened, else when it was observed; `None` when neither is
/// set.
fn timestamp(log: &LogRecord) -> Option<u64> {
    [log.time_unix_nano, log.observed_time_unix_nano]
        .into_iter()
        .find(|t| *t > 0)
}

/// `severity_number` by its ranges; when unspecified (0), `severity_text` by name; when
/// both are unset, INFO.
fn level(number: i32, text: &str) -> Result<Level, FieldError> {
    Ok(match number {
        1..=8 => Level::Debug,
        9..=12 => Level::Info,
        13..=16 => Level::Warning,
        17..=20 => Level::Error,
        21..=24 => Level::Critical,
        0 => {
            // Texts such as "INFO2" or "WARN3" name the steps inside a range.
            let name = text.trim().trim_end_matches(|c: char| c.is_ascii_digit());
            match Level::parse(name) {
                Some(level) => level,
                None if name.is_empty() => Level::Info,
                None => {
                    return Err(FieldError::new(
                        "level",
                        Problem::Invalid,
                        format!(
                            "severity_text {text:?} is not a level and severity_number is \
                             unset: set severity_number (1-24)"
                        ),
                    ));
                }
            }
        }
        n => {
            return Err(FieldError::new(
                "level",
                Problem::Invalid,
                format!("severity_number {n} is outside 0-24"),
            ));
        }
    })
}

/// The event: the record's event name, else an `event.name` or `event` attribute (taken out
/// of `meta`), else the instrumentation scope (a Python logger's name), else `otel.log`.
fn take_event(event_name: String, meta: &mut Map<String, Value>, scope: &str) -> String {
    if !event_name.is_empty() {
        return event_name;
    }
    for key in ["event.name", "event"] {
        if let Some(Value::String(_)) = meta.get(key)
            && let Some(Value::String(e)) = meta.remove(key)
        {
            return e;
        }
    }
    if scope.is_empty() {
        DEFAULT_EVENT.to_owned()
    } else {
        scope.chars().take(MAX_EVENT_CHARS).collect()
    }
}

/// An `AnyValue` as JSON: maps become objects, bytes base64 (as in OTLP/JSON), doubles
/// that JSON cannot hold (NaN, infinities) `null`.
fn to_json(value: AnyValue) -> Value {
    match value.value {
        None => Value::Null,
        Some(AnyValueKind::String(s)) => Value::String(s),
        Some(AnyValueKind::Bool(b)) => Value::Bool(b),
        Some(AnyValueKind::Int(i)) => Value::from(i),
        Some(AnyValueKind::Double(d)) => {
            serde_json::Number::from_f64(d).map_or(Value::Null, Value::Number)
        }
        Some(AnyValueKind::Array(a)) => Value::Array(a.values.into_iter().map(to_json).collect()),
        Some(AnyValueKind::Kvlist(m)) => Value::Object(
            m.values
                .into_iter()
                .map(|kv| (kv.key, kv.value.map_or(Value::Null, to_json)))
                .collect(),
        ),
        Some(AnyValueKind::Bytes(b)) => Value::String(to_base64(&b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_normalized_or_refused_with_the_reason() {
        assert_eq!(normalize_service("Checkout API").unwrap(), "checkout-api");
        assert_eq!(
            normalize_service("unknown_service:python3").unwrap(),
            "unknown_service-python3"
        );
        let e = normalize_service("日本").unwrap_err();
        assert!(e.message.contains("OTEL_SERVICE_NAME"), "{e}");
        assert_eq!(
            normalize_service(&"a".repeat(65)).unwrap_err().problem,
            Problem::TooLong
        );
    }

    #[test]
    fn severity_ranges_and_texts() {
        assert_eq!(level(1, "").unwrap(), Level::Debug);
        assert_eq!(level(9, "whatever").unwrap(), Level::Info);
        assert_eq!(level(13, "").unwrap(), Level::Warning);
        assert_eq!(level(17, "").unwrap(), Level::Error);
        assert_eq!(level(24, "").unwrap(), Level::Critical);
        assert_eq!(level(0, "WARN2").unwrap(), Level::Warning);
        assert_eq!(level(0, "").unwrap(), Level::Info);
        assert!(level(0, "loud").is_err());
        assert!(level(25, "").is_err());
    }
}
