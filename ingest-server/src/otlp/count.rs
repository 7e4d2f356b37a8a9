//! Counting an OTLP request before it is decoded.
//!
//! A decoded message costs far more than its encoding: an empty `LogRecord` is 2 bytes of
//! protobuf (`12 00`) or 3 of JSON (`{},`) and about 176 bytes in memory, an empty
//! `KeyValue` 2 bytes and 56. A 20 MB body could therefore decode into gigabytes before any
//! limit was looked at. So each request is walked first, allocating nothing: the walk
//! counts the repeated messages decoding would allocate (log records, resource and scope
//! groups, and attributes: every `KeyValue` of a resource or a record and every item of an
//! array or map value, at any depth, empty ones included) and stops at the first count past
//! its limit. Only a request within the limits is decoded.
//!
//! The walk follows the messages of `proto.rs` through [`Shape`]: for each message, the
//! fields that hold messages, by protobuf field number and OTLP/JSON name. Fields it does
//! not list are skipped, as decoding skips or reads them into fixed-size values and
//! strings (which cost what they take on the wire).

use std::fmt;
use std::mem::size_of;

use faultline_schema::{Record, Value};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Protobuf messages nested deeper than this are refused (prost's own recursion limit).
const MAX_DEPTH: u32 = 100;

/// The most one request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Log records (`limits.max_batch_records`); also the most resource and scope groups.
    pub records: usize,
    /// Attributes and values nested in them (`limits.max_batch_attributes`).
    pub attributes: usize,
}

/// What was counted in a request (up to where the walk stopped).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// `LogRecord`s.
    pub records: usize,
    /// `ResourceLogs`.
    pub resources: usize,
    /// `ScopeLogs`.
    pub scopes: usize,
    /// `KeyValue`s and array items, at any depth.
    pub attributes: usize,
}

impl Counts {
    /// About the most a request of these counts takes in memory once decoded and mapped to
    /// records (both are held at once): each message at its size, map entries at one and a
    /// half times their key and value, and strings at most three times what the `body`
    /// holds (decoded, then copied into records, where ids become hex).
    pub(crate) fn decoded_bytes(&self, body: usize) -> usize {
        use super::proto::{KeyValue, LogRecord, ResourceLogs, ScopeLogs};
        let entry = (size_of::<String>() + size_of::<Value>()) * 3 / 2;
        let request = self.records * size_of::<LogRecord>()
            + self.resources * size_of::<ResourceLogs>()
            + self.scopes * size_of::<ScopeLogs>()
            + self.attributes * size_of::<KeyValue>();
        let records = self.records * size_of::<Record>() + self.attributes * entry;
        request
            .saturating_add(records)
            .saturating_add(body.saturating_mul(3))
    }
}

/// A request that holds more than its [`Bounds`] allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TooMany {
    /// Log records.
    #[error(
        "at least {} log records in one request, at most {max} allowed: export smaller \
         batches (BatchLogRecordProcessor max_export_batch_size)",
        max + 1
    )]
    Records {
        /// The limit.
        max: usize,
    },
    /// `resource_logs` or `scope_logs` groups.
    #[error(
        "more than {max} {what} groups in one request, at most one per log record is \
         useful: group log records by resource and scope, and export smaller batches"
    )]
    Groups {
        /// `resource_logs` or `scope_logs`.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// Attributes.
    #[error(
        "more than {max} attributes in one request (every key-value of resources and log \
         records, and every item of array and map values, nested and empty ones included): \
         send fewer attributes or smaller batches"
    )]
    Attributes {
        /// The limit.
        max: usize,
    },
}

/// Why a request was not counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CountError {
    /// It holds too much; what was counted before the walk stopped.
    TooMany(TooMany, Counts),
    /// It is not the encoding it claims to be; the message says where.
    Malformed(String),
}

/// The messages the walk knows, named as in `proto.rs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Request,
    ResourceLogs,
    Resource,
    ScopeLogs,
    LogRecord,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

/// A repeated field, by what its items count as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Resource,
    Scope,
    Record,
    Attribute,
}

/// A field of a message that holds a message (or, repeated, several).
struct Field {
    number: u64,
    json: &'static str,
    shape: Shape,
    /// `Some` for a repeated field: what each item counts as.
    repeated: Option<Item>,
}

const fn field(number: u64, json: &'static str, shape: Shape, repeated: Option<Item>) -> Field {
    Field {
        number,
        json,
        shape,
        repeated,
    }
}

impl Shape {
    /// The fields of this message that hold messages (`proto.rs`). A scope's attributes
    /// are not among them: `InstrumentationScope` keeps only its name, and decoding skips
    /// the rest without allocating.
    fn fields(self) -> &'static [Field] {
        use Shape as S;
        match self {
            S::Request => {
                const {
                    &[field(
                        1,
                        "resourceLogs",
                        S::ResourceLogs,
                        Some(Item::Resource),
                    )]
                }
            }
            S::ResourceLogs => {
                const {
                    &[
                        field(1, "resource", S::Resource, None),
                        field(2, "scopeLogs", S::ScopeLogs, Some(Item::Scope)),
                    ]
                }
            }
            S::Resource => const { &[field(1, "attributes", S::KeyValue, Some(Item::Attribute))] },
            S::ScopeLogs => const { &[field(2, "logRecords", S::LogRecord, Some(Item::Record))] },
            S::LogRecord => {
                const {
                    &[
                        field(5, "body", S::AnyValue, None),
                        field(6, "attributes", S::KeyValue, Some(Item::Attribute)),
                    ]
                }
            }
            S::KeyValue => const { &[field(2, "value", S::AnyValue, None)] },
            S::AnyValue => {
                const {
                    &[
                        field(5, "arrayValue", S::ArrayValue, None),
                        field(6, "kvlistValue", S::KeyValueList, None),
                    ]
                }
            }
            S::ArrayValue => const { &[field(1, "values", S::AnyValue, Some(Item::Attribute))] },
            S::KeyValueList => const { &[field(1, "values", S::KeyValue, Some(Item::Attribute))] },
        }
    }

    fn by_number(self, number: u64) -> Option<&'static Field> {
        self.fields().iter().find(|f| f.number == number)
    }

    fn by_name(self, name: &str) -> Option<&'static Field> {
        self.fields().iter().find(|f| f.json == name)
    }
}

/// Counts against the bounds.
struct Tally {
    bounds: Bounds,
    counts: Counts,
    over: Option<TooMany>,
}

impl Tally {
    fn new(bounds: Bounds) -> Tally {
        Tally {
            bounds,
            counts: Counts::default(),
            over: None,
        }
    }

    /// Counts one item; fails (and remembers why) when it is past its bound.
    fn add(&mut self, item: Item) -> Result<(), TooMany> {
        let Bounds {
            records,
            attributes,
        } = self.bounds;
        let c = &mut self.counts;
        let (count, too_many) = match item {
            Item::Record => (&mut c.records, TooMany::Records { max: records }),
            Item::Resource => (
                &mut c.resources,
                TooMany::Groups {
                    what: "resource_logs",
                    max: records,
                },
            ),
            Item::Scope => (
                &mut c.scopes,
                TooMany::Groups {
                    what: "scope_logs",
                    max: records,
                },
            ),
            Item::Attribute => (&mut c.attributes, TooMany::Attributes { max: attributes }),
        };
        let max = match too_many {
            TooMany::Records { max }
            | TooMany::Groups { max, .. }
            | TooMany::Attributes { max } => max,
        };
        // Counted even when it is one too many: what the request was seen to hold.
        *count = count.saturating_add(1);
        if *count > max {
            self.over = Some(too_many);
            return Err(too_many);
        }
        Ok(())
    }

    fn into_error(self, malformed: impl FnOnce() -> String) -> CountError {
        match self.over {
            Some(too_many) => CountError::TooMany(too_many, self.counts),
            None => CountError::Malformed(malformed()),
        }
    }
}

/// Counts a protobuf `ExportLogsServiceRequest` without decoding it.
pub(crate) fn count_protobuf(body: &[u8], bounds: Bounds) -> Result<Counts, CountError> {
    let mut tally = Tally::new(bounds);
    match walk_protobuf(body, Shape::Request, 0, &mut tally) {
        Ok(()) => Ok(tally.counts),
        Err(Walk::Over) => Err(tally.into_error(String::new)),
        Err(Walk::Malformed(why)) => Err(CountError::Malformed(why.to_owned())),
    }
}

/// Why the protobuf walk stopped.
enum Walk {
    Over,
    Malformed(&'static str),
}

impl From<TooMany> for Walk {
    fn from(_: TooMany) -> Walk {
        Walk::Over
    }
}

fn walk_protobuf(mut buf: &[u8], shape: Shape, depth: u32, tally: &mut Tally) -> Result<(), Walk> {
    if depth > MAX_DEPTH {
        return Err(Walk::Malformed("messages nested too deeply"));
    }
    while !buf.is_empty() {
        let (number, wire_type) = tag(&mut buf)?;
        match wire_type {
            2 => {
                let inner = length_delimited(&mut buf)?;
                if let Some(field) = shape.by_number(number) {
                    if let Some(item) = field.repeated {
                        tally.add(item)?;
                    }
                    walk_protobuf(inner, field.shape, depth + 1, tally)?;
                }
            }
            3 => skip_group(&mut buf, number, depth + 1)?,
            other => skip_scalar(&mut buf, other)?,
        }
    }
    Ok(())
}

/// A field's number and wire type.
fn tag(buf: &mut &[u8]) -> Result<(u64, u64), Walk> {
    let key = varint(buf)?;
    let number = key >> 3;
    if number == 0 || number > u64::from(u32::MAX >> 3) {
        return Err(Walk::Malformed("invalid field number"));
    }
    Ok((number, key & 7))
}

fn varint(buf: &mut &[u8]) -> Result<u64, Walk> {
    let mut value = 0u64;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *buf = &buf[i + 1..];
            return Ok(value);
        }
    }
    Err(Walk::Malformed("invalid varint"))
}

fn length_delimited<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], Walk> {
    let len = varint(buf)?;
    let len = usize::try_from(len).map_err(|_| Walk::Malformed("length out of range"))?;
    let (inner, rest) = buf
        .split_at_checked(len)
        .ok_or(Walk::Malformed("a length runs past the end of the body"))?;
    *buf = rest;
    Ok(inner)
}

fn skip_scalar(buf: &mut &[u8], wire_type: u64) -> Result<(), Walk> {
    let skip = match wire_type {
        0 => return varint(buf).map(drop),
        1 => 8,
        5 => 4,
        4 => return Err(Walk::Malformed("an end of group without its start")),
        _ => return Err(Walk::Malformed("invalid wire type")),
    };
    *buf = buf
        .get(skip..)
        .ok_or(Walk::Malformed("a field runs past the end of the body"))?;
    Ok(())
}

/// Skips a (deprecated) group up to its end, as decoding skips it in an unknown field.
fn skip_group(buf: &mut &[u8], number: u64, depth: u32) -> Result<(), Walk> {
    if depth > MAX_DEPTH {
        return Err(Walk::Malformed("messages nested too deeply"));
    }
    loop {
        if buf.is_empty() {
            return Err(Walk::Malformed("a group without its end"));
        }
        let (inner, wire_type) = tag(buf)?;
        match wire_type {
            4 if inner == number => return Ok(()),
            2 => drop(length_delimited(buf)?),
            3 => skip_group(buf, inner, depth + 1)?,
            other => skip_scalar(buf, other)?,
        }
    }
}

/// Counts an OTLP/JSON `ExportLogsServiceRequest` without decoding it. Field names are
/// those decoding reads (lowerCamelCase); other keys, and values that are not the objects
/// and arrays expected, are left for decoding to accept or refuse.
pub(crate) fn count_json(body: &[u8], bounds: Bounds) -> Result<Counts, CountError> {
    let mut tally = Tally::new(bounds);
    let mut de = serde_json::Deserializer::from_slice(body);
    let walked = JsonMessage {
        shape: Shape::Request,
        tally: &mut tally,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match walked {
        Ok(()) => Ok(tally.counts),
        Err(e) => Err(tally.into_error(|| e.to_string())),
    }
}

/// A message in OTLP/JSON: an object (or `null`, its default).
struct JsonMessage<'t> {
    shape: Shape,
    tally: &'t mut Tally,
}

impl<'de> DeserializeSeed<'de> for JsonMessage<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonMessage<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an OTLP {:?} object", self.shape)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(field) = map.next_key_seed(JsonField(self.shape))? {
            match field {
                Some(Field {
                    shape,
                    repeated: Some(item),
                    ..
                }) => map.next_value_seed(JsonRepeated {
                    shape: *shape,
                    item: *item,
                    tally: &mut *self.tally,
                })?,
                Some(Field { shape, .. }) => map.next_value_seed(JsonMessage {
                    shape: *shape,
                    tally: &mut *self.tally,
                })?,
                None => drop(map.next_value::<IgnoredAny>()?),
            }
        }
        Ok(())
    }
}

/// A key of a message's object: the field it names, if it holds messages. Compared where
/// the parser holds it, never copied.
struct JsonField(Shape);

impl<'de> DeserializeSeed<'de> for JsonField {
    type Value = Option<&'static Field>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for JsonField {
    type Value = Option<&'static Field>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(self.0.by_name(name))
    }
}

/// A repeated field in OTLP/JSON: an array of messages (or `null`), each one counted.
struct JsonRepeated<'t> {
    shape: Shape,
    item: Item,
    tally: &'t mut Tally,
}

impl<'de> DeserializeSeed<'de> for JsonRepeated<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonRepeated<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of OTLP {:?} objects", self.shape)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let item = JsonMessage {
                shape: self.shape,
                tally: &mut *self.tally,
            };
            if seq.next_element_seed(item)?.is_none() {
                return Ok(());
            }
            self.tally.add(self.item).map_err(de::Error::custom)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::otlp::proto::{AnyValue, AnyValueKind, ExportLogsServiceRequest, KeyValue};

    const WIDE: Bounds = Bounds {
        records: usize::MAX,
        attributes: usize::MAX,
    };

    /// What decoding allocated, counted on the decoded request: the walk must agree.
    fn decoded_counts(request: &ExportLogsServiceRequest) -> Counts {
        fn value(v: Option<&AnyValue>) -> usize {
            match v.and_then(|v| v.value.as_ref()) {
                Some(AnyValueKind::Array(a)) => {
                    a.values.len() + a.values.iter().map(|v| value(Some(v))).sum::<usize>()
                }
                Some(AnyValueKind::Kvlist(m)) => attributes(&m.values),
                _ => 0,
            }
        }
        fn attributes(kvs: &[KeyValue]) -> usize {
            kvs.len() + kvs.iter().map(|kv| value(kv.value.as_ref())).sum::<usize>()
        }
        let mut c = Counts {
            resources: request.resource_logs.len(),
            ..Counts::default()
        };
        for r in &request.resource_logs {
            c.scopes += r.scope_logs.len();
            c.attributes += r.resource.as_ref().map_or(0, |r| attributes(&r.attributes));
            for s in &r.scope_logs {
                c.records += s.log_records.len();
                for l in &s.log_records {
                    c.attributes += attributes(&l.attributes) + value(l.body.as_ref());
                }
            }
        }
        c
    }

    /// A request with every kind of nesting, in OTLP/JSON.
    fn nested_json() -> serde_json::Value {
        let kv = |k: &str, v: serde_json::Value| serde_json::json!({ "key": k, "value": v });
        serde_json::json!({"resourceLogs": [
            {"resource": {"attributes": [kv("service.name", serde_json::json!({"stringValue": "api"})), {}]},
             "scopeLogs": [
                {"scope": {"name": "s", "attributes": [{}, {}]}, "logRecords": [
                    {"attributes": [
                        kv("a", serde_json::json!({"arrayValue": {"values": [
                            {"intValue": "1"}, {}, {"kvlistValue": {"values": [{}, kv("b", serde_json::json!({}))]}}
                        ]}})),
                        {}
                     ],
                     "body": {"kvlistValue": {"values": [{"key": "k"}, {}]}},
                     "unknown": {"attributes": [{}, {}, {}]}},
                    {}
                ]},
                {"logRecords": null},
                {}
             ]},
            {}
        ]})
    }

    #[test]
    fn the_walk_counts_what_decoding_allocates_in_both_encodings() {
        let json = nested_json().to_string();
        let request: ExportLogsServiceRequest = serde_json::from_str(&json).unwrap();
        let want = decoded_counts(&request);
        assert_eq!(
            want,
            Counts {
                records: 2,
                resources: 2,
                scopes: 3,
                attributes: 2 + 2 + 3 + 2 + 2
            }
        );
        assert_eq!(count_json(json.as_bytes(), WIDE).unwrap(), want);
        let protobuf = request.encode_to_vec();
        assert_eq!(count_protobuf(&protobuf, WIDE).unwrap(), want);
        let again = ExportLogsServiceRequest::decode(&protobuf[..]).unwrap();
        assert_eq!(decoded_counts(&again), want);
    }

    #[test]
    fn the_walk_stops_at_the_first_item_past_a_bound() {
        let json = nested_json().to_string();
        let protobuf = serde_json::from_str::<ExportLogsServiceRequest>(&json)
            .unwrap()
            .encode_to_vec();
        for (bounds, want) in [
            (
                Bounds {
                    records: 1,
                    attributes: 100,
                },
                TooMany::Records { max: 1 },
            ),
            (
                Bounds {
                    records: 2,
                    attributes: 100,
                },
                TooMany::Groups {
                    what: "scope_logs",
                    max: 2,
                },
            ),
            (
                Bounds {
                    records: 10,
                    attributes: 10,
                },
                TooMany::Attributes { max: 10 },
            ),
        ] {
            for (encoding, counted) in [
                ("json", count_json(json.as_bytes(), bounds)),
                ("protobuf", count_protobuf(&protobuf, bounds)),
            ] {
                match counted {
                    Err(CountError::TooMany(got, _)) => assert_eq!(got, want, "{encoding}"),
                    other => panic!("{encoding} {bounds:?}: {other:?}"),
                }
            }
        }
        // At the bounds exactly, nothing is refused.
        let exact = Bounds {
            records: 3,
            attributes: 11,
        };
        assert!(count_json(json.as_bytes(), exact).is_ok());
        assert!(count_protobuf(&protobuf, exact).is_ok());
    }

    #[test]
    fn millions_of_empty_elements_stop_at_the_bound() {
        let bounds = Bounds {
            records: 10_000,
            attributes: 200_000,
        };
        // ScopeLogs { log_records: [{} x 1M] } inside one ResourceLogs.
        let mut scope = Vec::new();
        for _ in 0..1_000_000 {
            scope.extend_from_slice(&[0x12, 0x00]);
        }
        let body = nest(&[0x0a, 0x12], scope);
        match count_protobuf(&body, bounds) {
            Err(CountError::TooMany(TooMany::Records { max: 10_000 }, counts)) => {
                assert_eq!(counts.records, 10_001, "the limit and the one past it");
            }
            other => panic!("{other:?}"),
        }
        // One LogRecord with 1M empty attributes.
        let mut record = Vec::new();
        for _ in 0..1_000_000 {
            record.extend_from_slice(&[0x32, 0x00]);
        }
        let body = nest(&[0x0a, 0x12, 0x12], record);
        assert!(matches!(
            count_protobuf(&body, bounds),
            Err(CountError::TooMany(TooMany::Attributes { max: 200_000 }, _))
        ));
        let json = format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"attributes":[{}{{}}]}}]}}]}}]}}"#,
            "{},".repeat(1_000_000)
        );
        assert!(matches!(
            count_json(json.as_bytes(), bounds),
            Err(CountError::TooMany(TooMany::Attributes { max: 200_000 }, _))
        ));
    }

    /// `inner` as the content of length-delimited fields `tags` (outermost first).
    fn nest(tags: &[u8], inner: Vec<u8>) -> Vec<u8> {
        tags.iter().rev().fold(inner, |inner, &tag| {
            let mut out = vec![tag];
            let mut n = inner.len();
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
            out.extend_from_slice(&inner);
            out
        })
    }

    #[test]
    fn malformed_protobuf_is_refused_and_unknown_fields_and_groups_are_skipped() {
        for (body, why) in [
            (&[0x0a, 0x05, 0x12][..], "past the end"),
            (&[0x0a][..], "varint"),
            (&[0x00][..], "field number"),
            (&[0x0c][..], "end of group"),
            (&[0x0e][..], "wire type"),
            (&[0x0b, 0x08, 0x01][..], "without its end"),
        ] {
            match count_protobuf(body, WIDE) {
                Err(CountError::Malformed(m)) => assert!(m.contains(why), "{body:?}: {m}"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
        // An unknown group (field 9: start 0x4b, a varint inside, end 0x4c), an unknown
        // varint, fixed64 and fixed32: skipped, the records after them counted.
        let body = [
            0x4b, 0x08, 0x01, 0x4c, 0x50, 0x01, 0x59, 0, 0, 0, 0, 0, 0, 0, 0, 0x5d, 0, 0, 0, 0,
            0x0a, 0x04, 0x12, 0x02, 0x12, 0x00,
        ];
        assert_eq!(
            count_protobuf(&body, WIDE).unwrap(),
            Counts {
                records: 1,
                resources: 1,
                scopes: 1,
                attributes: 0
            }
        );
        assert!(ExportLogsServiceRequest::decode(&body[..]).is_ok());
        let deep = nest(&[0x0a, 0x12, 0x12, 0x2a], {
            // AnyValue { array_value { values [ AnyValue { array_value ... } ] } }, 200 deep.
            (0..200).fold(Vec::new(), |inner, _| nest(&[0x2a, 0x0a], inner))
        });
        match count_protobuf(&deep, WIDE) {
            Err(CountError::Malformed(m)) => assert!(m.contains("nested too deeply"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_that_is_not_a_request_is_malformed() {
        for body in [
            &b"[1]"[..],
            b"{\"resourceLogs\": 5}",
            b"{\"resourceLogs\": [5]}",
            b"{} trailing",
            b"{\"resourceLogs\": [",
        ] {
            assert!(
                matches!(count_json(body, WIDE), Err(CountError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(count_json(b"{}", WIDE).unwrap(), Counts::default());
        assert_eq!(
            count_json(b"{\"resourceLogs\": null}", WIDE).unwrap(),
            Counts::default()
        );
    }
}
