//! OTLP/JSON: the protobuf JSON mapping with OTLP's exceptions. Field names are
//! lowerCamelCase; 64-bit integers come as decimal strings or numbers; enums as integers;
//! `traceId` and `spanId` as hex (not base64, unlike other bytes); `null` means the
//! default; unknown fields are ignored.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use base64::Engine;
use serde::de::{Error as _, Unexpected, Visitor};
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
///
/// Read by a visitor that takes either, not by an untagged enum: serde buffers the whole
/// value of an untagged enum before it tries each form, so an array of millions in an
/// `intValue` would have been copied into memory whole before it was refused.
struct Int64<T>(T);

impl<'de, T> Deserialize<'de> for Int64<T>
where
    T: FromStr + TryFrom<u64> + TryFrom<i64>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Int64Visitor(PhantomData))
    }
}

struct Int64Visitor<T>(PhantomData<T>);

impl<T> Visitor<'_> for Int64Visitor<T>
where
    T: FromStr + TryFrom<u64> + TryFrom<i64>,
{
    type Value = Int64<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer in range, as a decimal string or a number")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Int64<T>, E> {
        T::try_from(v)
            .map(Int64)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Int64<T>, E> {
        T::try_from(v)
            .map(Int64)
            .map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Int64<T>, E> {
        s.trim().parse().map(Int64).map_err(|_| {
            E::custom(format!(
                "{s:?} is not an integer (send it as a decimal string)"
            ))
        })
    }
}

/// A `fixed64` (timestamps in nanoseconds).
pub(crate) fn uint64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(Option::<Int64<u64>>::deserialize(d)?.map_or(0, |v| v.0))
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

/// A double: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"` (a visitor, as [`Int64`]).
struct Double(f64);

impl<'de> Deserialize<'de> for Double {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DoubleVisitor)
    }
}

struct DoubleVisitor;

impl Visitor<'_> for DoubleVisitor {
    type Value = Double;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, \"NaN\", \"Infinity\" or \"-Infinity\"")
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Double, E> {
        Ok(Double(v))
    }

    // Integers are numbers too; a double holds them (as JSON parsers read them).
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Double, E> {
        Ok(Double(v as f64))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Double, E> {
        Ok(Double(v as f64))
    }

    fn visit_str<E: serde::de::Error>(self, t: &str) -> Result<Double, E> {
        t.parse()
            .map(Double)
            .map_err(|_| E::custom(format!("{t:?} is not a number")))
    }
}

impl TryFrom<AnyValueJson> for AnyValue {
    type Error = String;

    fn try_from(v: AnyValueJson) -> Result<AnyValue, String> {
        let kind = if let Some(s) = v.string_value {
            Some(AnyValueKind::String(s))
        } else if let Some(b) = v.bool_value {
            Some(AnyValueKind::Bool(b))
        } else if let Some(Int64(i)) = v.int_value {
            Some(AnyValueKind::Int(i))
        } else if let Some(Double(d)) = v.double_value {
            Some(AnyValueKind::Double(d))
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
