//! Batch decoding: a JSON array, `{"records": [...]}` or NDJSON, into good records plus a
//! per-record error list. A bad record never fails its batch.
//!
//! Memory is counted before it is spent: records are counted while the body is parsed
//! (parsing stops at the first one past the limit), an element too large to be a record is
//! refused without being built, and [`decode_batch_within`] asks its caller for room as the
//! decoded records grow.

use crate::prelude::*;
use core::cell::Cell;
use core::fmt;

use core::mem::size_of;

use serde::Deserialize;
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::record::{MAX_META_BYTES, Record};
use crate::validate::{FieldError, InvalidRecord, Problem};

/// The default cap on records in one batch.
pub const DEFAULT_MAX_BATCH_RECORDS: usize = 10_000;

/// The most JSON values (scalars, arrays and objects, at any depth) a valid record can
/// hold: every value but a few top-level fields is in `meta` (unknown top-level keys move
/// there), and each takes at least two bytes of `meta`'s compact JSON.
pub const MAX_RECORD_VALUES: usize = MAX_META_BYTES / 2 + 64;

/// Elements longer than this are counted before they are parsed into a record: a shorter
/// one holds at most half as many values, which cost about 1 MB while being checked.
const COUNTED_ELEMENT_BYTES: usize = 64 * 1024;

/// Options for [`decode_batch_with`].
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// More records than this fail the whole batch with [`BatchError::TooManyRecords`]
    /// before any record is checked. Records are counted as the body is parsed: parsing
    /// stops at the first record past the limit, so what the decoder holds is bounded by
    /// the limit, not by the number of elements a body carries.
    pub max_records: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_records: DEFAULT_MAX_BATCH_RECORDS,
        }
    }
}

/// Which of the three body forms a batch came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchFormat {
    /// `[{...}, {...}]`
    Array,
    /// `{"records": [{...}, {...}]}`
    Wrapped,
    /// One JSON object per line (a single object is a one-line NDJSON body).
    Ndjson,
}

/// A record that was not accepted, with its position in the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Zero-based position among the batch's records (for NDJSON, among non-blank lines).
    pub index: usize,
    /// Every problem found.
    pub error: InvalidRecord,
}

/// The result of decoding a batch: the good records in order and the rejected ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// The body form detected.
    pub format: BatchFormat,
    /// Records that passed every check, in batch order.
    pub records: Vec<Record>,
    /// Records that did not, in batch order.
    pub rejected: Vec<Rejected>,
}

/// Why a whole body could not be read as a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Nothing but whitespace.
    #[error("empty body: send a JSON array of records, {{\"records\": [...]}} or NDJSON")]
    Empty,
    /// Not JSON in any accepted form.
    #[error(
        "body is not JSON ({detail}): send a JSON array of records, {{\"records\": [...]}} or NDJSON"
    )]
    NotJson {
        /// The parser's complaint, with line and column.
        detail: String,
    },
    /// `{"records": ...}` where `records` is not an array.
    #[error("\"records\" must be an array of record objects")]
    RecordsNotArray,
    /// More records than allowed.
    #[error("more than {max} records in one batch: split it into smaller batches")]
    TooManyRecords {
        /// The limit.
        max: usize,
    },
    /// The caller of [`decode_batch_within`] had no room for more decoded records.
    #[error("no room for the decoded records")]
    NoRoom,
}

impl BatchError {
    /// A short stable label for metrics.
    pub const fn reason(&self) -> &'static str {
        match self {
            BatchError::Empty => "empty",
            BatchError::NotJson { .. } | BatchError::RecordsNotArray => "not_json",
            BatchError::TooManyRecords { .. } => "too_many_records",
            BatchError::NoRoom => "no_room",
        }
    }
}

/// [`decode_batch_with`] with the default options.
pub fn decode_batch(body: &[u8]) -> Result<Batch, BatchError> {
    decode_batch_with(body, &DecodeOptions::default())
}

/// Decodes a batch body in any of the three forms, detected from its content.
///
/// A body whose first non-blank character is `[` is an array; `{` is either
/// `{"records": [...]}` or NDJSON (a single record is one line of NDJSON). A UTF-8 byte order
/// mark is skipped. In NDJSON, blank lines are skipped and a line that is not JSON rejects
/// that record only; a body in which no line is JSON is [`BatchError::NotJson`].
pub fn decode_batch_with(body: &[u8], options: &DecodeOptions) -> Result<Batch, BatchError> {
    decode_batch_within(body, options, |_| true)
}

/// [`decode_batch_with`], asking `room(bytes)` as records are decoded, `bytes` being about
/// what the batch's decoded records and rejections take in memory so far (see
/// [`decoded_size`]); when it answers `false`, decoding stops with [`BatchError::NoRoom`].
/// A record is counted once it is built, so what the caller allows is exceeded by one
/// record at most, and an element that could not be a record because it holds more than
/// [`MAX_RECORD_VALUES`] values is rejected before it is built.
pub fn decode_batch_within(
    body: &[u8],
    options: &DecodeOptions,
    mut room: impl FnMut(usize) -> bool,
) -> Result<Batch, BatchError> {
    let mut room = Room {
        ask: &mut room,
        used: 0,
    };
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(BatchError::Empty)?;
    match body[start] {
        b'[' => {
            let items = array_items(&mut serde_json::Deserializer::from_slice(body), options)
                .map_err(|e| e.or_else(not_json))?;
            from_raw_items(BatchFormat::Array, &items, &mut room)
        }
        b'{' => {
            if let Some(items) = wrapped_records(body, options)? {
                return from_raw_items(BatchFormat::Wrapped, &items, &mut room);
            }
            from_ndjson(body, options, &mut room)
        }
        _ => Err(BatchError::NotJson {
            detail: "expected '[' or '{' at the start".into(),
        }),
    }
}

/// `Some(items)` when the whole body is one object with a `records` key.
fn wrapped_records<'a>(
    body: &'a [u8],
    options: &DecodeOptions,
) -> Result<Option<Vec<&'a RawValue>>, BatchError> {
    #[derive(Deserialize)]
    struct Probe<'a> {
        // `null` too is a `records` key (that is not an array), not an absent one.
        #[serde(borrow, default, deserialize_with = "present")]
        records: Option<&'a RawValue>,
    }
    fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
        <&RawValue>::deserialize(d).map(Some)
    }
    // Fails for NDJSON (trailing data) and for a broken object; both go line by line.
    let Ok(probe) = serde_json::from_slice::<Probe<'_>>(body) else {
        return Ok(None);
    };
    let Some(records) = probe.records else {
        return Ok(None);
    };
    array_items(
        &mut serde_json::Deserializer::from_str(records.get()),
        options,
    )
    .map(Some)
    .map_err(|e| e.or_else(|_| BatchError::RecordsNotArray))
}

/// Why an array could not be read: too many elements, or what the parser said.
enum ArrayError {
    TooManyRecords { max: usize },
    Json(serde_json::Error),
}

impl ArrayError {
    /// [`BatchError::TooManyRecords`], or the parser's error as `json` makes it.
    fn or_else(self, json: impl FnOnce(serde_json::Error) -> BatchError) -> BatchError {
        match self {
            ArrayError::TooManyRecords { max } => BatchError::TooManyRecords { max },
            ArrayError::Json(e) => json(e),
        }
    }
}

/// The elements of the JSON array `de` reads (and nothing after it), borrowed from the
/// body. Counted as they are parsed: the first element past `options.max_records` stops
/// the parse, so an array of ten million zeros costs no more than one of the limit.
fn array_items<'a, R: serde_json::de::Read<'a>>(
    de: &mut serde_json::Deserializer<R>,
    options: &DecodeOptions,
) -> Result<Vec<&'a RawValue>, ArrayError> {
    let over = Cell::new(false);
    let seed = BoundedItems {
        max: options.max_records,
        over: &over,
    };
    let parsed = seed.deserialize(&mut *de).and_then(|items| {
        de.end()?;
        Ok(items)
    });
    parsed.map_err(|e| {
        if over.get() {
            ArrayError::TooManyRecords {
                max: options.max_records,
            }
        } else {
            ArrayError::Json(e)
        }
    })
}

/// Reads a JSON array of at most `max` elements as borrowed raw values; sets `over` (and
/// fails) at the first element past it.
struct BoundedItems<'c> {
    max: usize,
    over: &'c Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BoundedItems<'_> {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for BoundedItems<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        // A borrowed element is a slice of the body: reading one allocates nothing, and
        // the vector never grows past the limit.
        while let Some(item) = seq.next_element::<&RawValue>()? {
            if items.len() == self.max {
                self.over.set(true);
                return Err(A::Error::custom(format_args!(
                    "more than {} records",
                    self.max
                )));
            }
            items.push(item);
        }
        Ok(items)
    }
}

fn from_raw_items(
    format: BatchFormat,
    items: &[&RawValue],
    room: &mut Room<'_>,
) -> Result<Batch, BatchError> {
    let mut batch = Batch {
        format,
        records: Vec::with_capacity(items.len()),
        rejected: Vec::new(),
    };
    room.take(items.len() * size_of::<Record>())?;
    for (index, raw) in items.iter().enumerate() {
        let json = raw.get();
        let result = match refuse_if_too_many_values(json.as_bytes()) {
            Some(refused) => Err(refused),
            None => Record::from_json_str(json),
        };
        batch.push(index, result, room)?;
    }
    Ok(batch)
}

fn from_ndjson(
    body: &[u8],
    options: &DecodeOptions,
    room: &mut Room<'_>,
) -> Result<Batch, BatchError> {
    let mut batch = Batch {
        format: BatchFormat::Ndjson,
        records: Vec::new(),
        rejected: Vec::new(),
    };
    let mut index = 0;
    let mut first_error = None;
    for (line_no, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        if index == options.max_records {
            return Err(BatchError::TooManyRecords {
                max: options.max_records,
            });
        }
        let parsed = match refuse_if_too_many_values(line) {
            Some(refused) => Err(refused),
            None => Record::from_json(line),
        };
        let result = parsed.map_err(|mut e| {
            if e.reason() == Problem::NotJson.code() {
                // Say which line, so a client can find it in what it sent.
                let first = &mut e.errors[0];
                first.message = format!("line {}: {}", line_no + 1, first.message);
                first_error.get_or_insert_with(|| first.message.clone());
            }
            e
        });
        batch.push(index, result, room)?;
        index += 1;
    }
    let all_broken = batch.records.is_empty()
        && batch
            .rejected
            .iter()
            .all(|r| r.error.reason() == Problem::NotJson.code());
    match first_error {
        Some(detail) if all_broken => Err(BatchError::NotJson { detail }),
        _ => Ok(batch),
    }
}

impl Batch {
    /// Keeps a decoded record or its rejection, and counts what it takes.
    fn push(
        &mut self,
        index: usize,
        result: Result<Record, InvalidRecord>,
        room: &mut Room<'_>,
    ) -> Result<(), BatchError> {
        match result {
            Ok(record) => {
                // The record itself was counted with the vector that holds it.
                room.take(decoded_size(&record) - size_of::<Record>())?;
                self.records.push(record);
            }
            Err(error) => {
                room.take(size_of::<Rejected>() + rejection_size(&error))?;
                self.rejected.push(Rejected { index, error });
            }
        }
        Ok(())
    }
}

/// What a caller of [`decode_batch_within`] allows, and what decoding has taken of it.
struct Room<'a> {
    ask: &'a mut dyn FnMut(usize) -> bool,
    used: usize,
}

impl Room<'_> {
    fn take(&mut self, bytes: usize) -> Result<(), BatchError> {
        self.used = self.used.saturating_add(bytes);
        if (self.ask)(self.used) {
            Ok(())
        } else {
            Err(BatchError::NoRoom)
        }
    }
}

/// About what a decoded record takes in memory: the record, its strings and `meta`'s
/// values, map entries counted at one and a half times their key and value for the nodes
/// that hold them. An estimate (allocators round up), for budgets, not an exact count.
pub fn decoded_size(record: &Record) -> usize {
    size_of::<Record>()
        + record.service.capacity()
        + record.event.capacity()
        + record.message.capacity()
        + record.issue.as_ref().map_or(0, String::capacity)
        + map_size(&record.meta)
}

const MAP_ENTRY_BYTES: usize = (size_of::<String>() + size_of::<Value>()) * 3 / 2;

fn map_size(map: &Map<String, Value>) -> usize {
    map.iter()
        .map(|(k, v)| MAP_ENTRY_BYTES + k.capacity() + value_size(v))
        .sum()
}

/// What a value holds beyond itself.
fn value_size(value: &Value) -> usize {
    match value {
        Value::String(s) => s.capacity(),
        Value::Array(items) => {
            items.capacity() * size_of::<Value>() + items.iter().map(value_size).sum::<usize>()
        }
        Value::Object(map) => map_size(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

fn rejection_size(error: &InvalidRecord) -> usize {
    error
        .errors
        .iter()
        .map(|e| size_of::<FieldError>() + e.field.capacity() + e.message.capacity())
        .sum()
}

/// A rejection for an element too large to be a record, found by counting its values
/// without building them; `None` for anything else (including text that is not JSON, which
/// the record's own parse reports).
fn refuse_if_too_many_values(json: &[u8]) -> Option<InvalidRecord> {
    if json.len() <= COUNTED_ELEMENT_BYTES {
        return None;
    }
    let mut left = MAX_RECORD_VALUES;
    let over = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(json);
    let _ = CountValues {
        left: &mut left,
        over: &over,
    }
    .deserialize(&mut de);
    over.get().then(|| {
        InvalidRecord::single(
            "record",
            Problem::TooLarge,
            format!(
                "holds more than {MAX_RECORD_VALUES} JSON values, more than a record can \
                 (meta is at most {MAX_META_BYTES} bytes as JSON)"
            ),
        )
    })
}

/// Counts JSON values down from `left`, building none; sets `over` (and fails) past it.
struct CountValues<'a> {
    left: &'a mut usize,
    over: &'a Cell<bool>,
}

impl CountValues<'_> {
    fn count<E: serde::de::Error>(&mut self) -> Result<(), E> {
        if *self.left == 0 {
            self.over.set(true);
            return Err(E::custom("too many values"));
        }
        *self.left -= 1;
        Ok(())
    }

    fn nested(&mut self) -> CountValues<'_> {
        CountValues {
            left: &mut *self.left,
            over: self.over,
        }
    }
}

impl<'de> DeserializeSeed<'de> for CountValues<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountValues<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(mut self, _: bool) -> Result<(), E> {
        self.count()
    }

    fn visit_i64<E: serde::de::Error>(mut self, _: i64) -> Result<(), E> {
        self.count()
    }

    fn visit_u64<E: serde::de::Error>(mut self, _: u64) -> Result<(), E> {
        self.count()
    }

    fn visit_f64<E: serde::de::Error>(mut self, _: f64) -> Result<(), E> {
        self.count()
    }

    fn visit_str<E: serde::de::Error>(mut self, _: &str) -> Result<(), E> {
        self.count()
    }

    fn visit_unit<E: serde::de::Error>(mut self) -> Result<(), E> {
        self.count()
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.count()?;
        while seq.next_element_seed(self.nested())?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.count()?;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(self.nested())?;
        }
        Ok(())
    }
}

fn not_json(e: serde_json::Error) -> BatchError {
    BatchError::NotJson {
        detail: e.to_string(),
    }
}
