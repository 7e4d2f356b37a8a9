//! OTLP/JSON: the protobuf JSON mapping with OTLP's exceptions. Field names are
//! lowerCamelCase; 64-bit integers come as decimal strings or numbers; enums as integers;
//! `traceId` and `spanId` as hex (not base64, unlike other bytes); `null` means the
//! default; unknown fields are ignored.

use base64::Engine;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::proto::{AnyValue, AnyValueKind, ArrayValue, ExportLogsServiceResponse, KeyValueList};

/// A field that may be `null`, which reads as its default.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A 64-bit integer as a decimal string or a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Int64<T> {
    Number(T),
    Text(String),
}

impl<T: std::str::FromStr> Int64<T> {
    fn get<E: serde::de::Error>(self) -> Result<T, E> {
        match self {
            Int64::Number(n) => Ok(n),
            Int64::Text(s) => s.trim().parse().map_err(|_| {
                E::custom(format!(
                    "{s:?} is not an integer (send it as a decimal string)"
                ))
            }),
        }
    }
}

/// A `fixed64` (timestamps in nanoseconds).
pub(crate) fn uint64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Option::<Int64<u64>>::deserialize(d)? {
        None => Ok(0),
        Some(v) => v.get(),
    }
}

/// `traceId` / `spanId`: hex, or an empty string for none.
pub(crate) fn hex_id<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = Option::<String>::deserialize(d)?.unwrap_or_default();
    from_hex(&text).ok_or_else(|| {
        D::Error::custom(format!(
            "{text:?} is not a hex id: OTLP/JSON sends traceId and spanId as hex strings \
             (32 and 16 hex digits), not base64"
        ))
    })
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

/// Lowercase hex of an id, as records store `trace_id` and `span_id`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Base64, as the protobuf JSON mapping writes `bytes` (and as `meta` keeps them).
pub(crate) fn to_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `AnyValue` in JSON: an object with at most one of the `*Value` fields.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct AnyValueJson {
    string_value: Option<String>,
    bool_value: Option<bool>,
    int_value: Option<Int64<i64>>,
    double_value: Option<Double>,
    array_value: Option<ArrayValue>,
    kvlist_value: Option<KeyValueList>,
    bytes_value: Option<String>,
}

/// A double: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Double {
    Number(f64),
    Text(String),
}

impl TryFrom<AnyValueJson> for AnyValue {
    type Error = String;

    fn try_from(v: AnyValueJson) -> Result<AnyValue, String> {
        let kind = if let Some(s) = v.string_value {
            Some(AnyValueKind::String(s))
        } else if let Some(b) = v.bool_value {
            Some(AnyValueKind::Bool(b))
        } else if let Some(i) = v.int_value {
            Some(AnyValueKind::Int(
                i.get::<serde_json::Error>()
                    .map_err(|e| format!("intValue: {e}"))?,
            ))
        } else if let Some(d) = v.double_value {
            Some(AnyValueKind::Double(match d {
                Double::Number(n) => n,
                Double::Text(t) => t
                    .parse()
                    .map_err(|_| format!("doubleValue: {t:?} is not a number"))?,
            }))
        } else if let Some(a) = v.array_value {
            Some(AnyValueKind::Array(a))
        } else if let Some(m) = v.kvlist_value {
            Some(AnyValueKind::Kvlist(m))
        } else if let Some(b) = v.bytes_value {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map_err(|e| format!("bytesValue: not base64: {e}"))?;
            Some(AnyValueKind::Bytes(bytes))
        } else {
            None
        };
        Ok(AnyValue { value: kind })
    }
}

/// The success body; `partialSuccess` only when something was rejected.
pub(crate) fn response(r: &ExportLogsServiceResponse) -> Value {
    let mut body = Map::new();
    if let Some(p) = &r.partial_success {
        body.insert(
            "partialSuccess".into(),
            json!({
                // int64 is a decimal string in the protobuf JSON mapping.
                "rejectedLogRecords": p.rejected_log_records.to_string(),
                "errorMessage": p.error_message,
            }),
        );
    }
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::proto::ExportLogsServiceRequest;

    #[test]
    fn ids_are_hex_and_integers_strings_or_numbers() {
        let r: ExportLogsServiceRequest = serde_json::from_str(
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
                {"timeUnixNano":"1700000000000000001","observedTimeUnixNano":5,
                 "traceId":"5B8EFFF798038103D269B633813FC60C","spanId":null,
                 "body":{"intValue":"-3"},"unknownField":{"x":1}}]}]}]}"#,
        )
        .unwrap();
        let rec = &r.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(rec.time_unix_nano, 1_700_000_000_000_000_001);
        assert_eq!(rec.observed_time_unix_nano, 5);
        assert_eq!(to_hex(&rec.trace_id), "5b8efff798038103d269b633813fc60c");
        assert!(rec.span_id.is_empty());
        assert_eq!(
            rec.body.as_ref().unwrap().value,
            Some(AnyValueKind::Int(-3))
        );
    }

    #[test]
    fn a_base64_trace_id_is_refused_with_the_reason() {
        let err = serde_json::from_str::<ExportLogsServiceRequest>(
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"W47/95gDgQPSabYzgT/GDA=="}]}]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not base64"), "{err}");
    }
}
