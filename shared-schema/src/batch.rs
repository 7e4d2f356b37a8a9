//! Batch decoding: a JSON array, `{"records": [...]}` or NDJSON, into good records plus a
//! per-record error list. A bad record never fails its batch.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::record::Record;
use crate::validate::{InvalidRecord, Problem};

/// The default cap on records in one batch.
pub const DEFAULT_MAX_BATCH_RECORDS: usize = 10_000;

/// Options for [`decode_batch_with`].
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    /// More records than this fail the whole batch with [`BatchError::TooManyRecords`]
    /// before any record is checked.
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
}

impl BatchError {
    /// A short stable label for metrics.
    pub const fn reason(&self) -> &'static str {
        match self {
            BatchError::Empty => "empty",
            BatchError::NotJson { .. } | BatchError::RecordsNotArray => "not_json",
            BatchError::TooManyRecords { .. } => "too_many_records",
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
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or(BatchError::Empty)?;
    match body[start] {
        b'[' => {
            let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(not_json)?;
            from_raw_items(BatchFormat::Array, &items, options)
        }
        b'{' => {
            if let Some(items) = wrapped_records(body)? {
                return from_raw_items(BatchFormat::Wrapped, &items, options);
            }
            from_ndjson(body, options)
        }
        _ => Err(BatchError::NotJson {
            detail: "expected '[' or '{' at the start".into(),
        }),
    }
}

/// `Some(items)` when the whole body is one object with a `records` key.
fn wrapped_records(body: &[u8]) -> Result<Option<Vec<&RawValue>>, BatchError> {
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
    serde_json::from_str::<Vec<&RawValue>>(records.get())
        .map(Some)
        .map_err(|_| BatchError::RecordsNotArray)
}

fn from_raw_items(
    format: BatchFormat,
    items: &[&RawValue],
    options: &DecodeOptions,
) -> Result<Batch, BatchError> {
    if items.len() > options.max_records {
        return Err(BatchError::TooManyRecords {
            max: options.max_records,
        });
    }
    let mut batch = Batch {
        format,
        records: Vec::with_capacity(items.len()),
        rejected: Vec::new(),
    };
    for (index, raw) in items.iter().enumerate() {
        batch.push(index, Record::from_json_str(raw.get()));
    }
    Ok(batch)
}

fn from_ndjson(body: &[u8], options: &DecodeOptions) -> Result<Batch, BatchError> {
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
        let result = Record::from_json(line).map_err(|mut e| {
            if e.reason() == Problem::NotJson.code() {
                // Say which line, so a client can find it in what it sent.
                let first = &mut e.errors[0];
                first.message = format!("line {}: {}", line_no + 1, first.message);
                first_error.get_or_insert_with(|| first.message.clone());
            }
            e
        });
        batch.push(index, result);
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
    fn push(&mut self, index: usize, result: Result<Record, InvalidRecord>) {
        match result {
            Ok(record) => self.records.push(record),
            Err(error) => self.rejected.push(Rejected { index, error }),
        }
    }
}

fn not_json(e: serde_json::Error) -> BatchError {
    BatchError::NotJson {
        detail: e.to_string(),
    }
}
