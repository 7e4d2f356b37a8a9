//! Invariant checks shared by the fuzz targets (`fuzz/fuzz_targets/`) and the regression
//! tests that replay their corpus (`tests/fuzz_regressions.rs`), so a crash found by the
//! fuzzer and the test guarding it run the same code. Each check panics when an invariant
//! breaks; a clean return means the input was handled as documented.
//!
//! Not part of the crate's API: hidden from the docs and free to change.

// These checks assert by panicking: that is how the fuzzer and the tests see a failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use serde_json::value::RawValue;

use crate::batch::{BatchError, BatchFormat, DecodeOptions, decode_batch, decode_batch_with};
use crate::prelude::*;
use crate::record::Record;
use crate::stack;

/// The cap used for the second decode of every input, small enough that the fuzzer hits it.
const SMALL_MAX_RECORDS: usize = 3;

/// [`decode_batch`] on any bytes: no panic, every record counted once (accepted or rejected,
/// rejected indexes increasing and in range), every accepted record re-encodes to JSON that
/// decodes to the same record, the typed fast path agrees with the `Value` path, and a small
/// `max_records` refuses exactly the batches that are larger.
pub fn check_decode_batch(body: &[u8]) {
    let Ok(batch) = decode_batch(body) else {
        return;
    };
    let total = count_items(body, batch.format);
    assert_eq!(
        batch.records.len() + batch.rejected.len(),
        total,
        "every record is accepted or rejected, once"
    );
    let mut previous = None;
    for r in &batch.rejected {
        assert!(r.index < total, "rejected index {} out of range", r.index);
        assert!(previous < Some(r.index), "rejected indexes increase");
        assert!(!r.error.errors.is_empty(), "a rejection names a problem");
        previous = Some(r.index);
    }
    for record in &batch.records {
        assert_no_nul(record);
        let json = record.to_json();
        let again = Record::from_json(json.as_bytes())
            .unwrap_or_else(|e| panic!("re-encoded record is rejected: {e}\n{json}"));
        assert_eq!(&again, record, "re-encoded record decodes the same");
        let value: serde_json::Value = serde_json::from_str(&json).expect("to_json is JSON");
        let slow = Record::from_value(value).expect("the value path accepts it too");
        assert_eq!(&slow, record, "fast and value paths agree");
    }
    let small = decode_batch_with(
        body,
        &DecodeOptions {
            max_records: SMALL_MAX_RECORDS,
        },
    );
    if total > SMALL_MAX_RECORDS {
        assert_eq!(
            small,
            Err(BatchError::TooManyRecords {
                max: SMALL_MAX_RECORDS
            })
        );
    } else {
        assert_eq!(small, Ok(batch), "the cap changes nothing below it");
    }
}

/// No NUL in any string or key of an accepted record: PostgreSQL's `text` and `jsonb` refuse
/// them, and one such record would fail its whole batch there.
fn assert_no_nul(record: &Record) {
    fn walk(value: &serde_json::Value) {
        match value {
            serde_json::Value::String(s) => assert!(!s.contains('\0'), "NUL in {s:?}"),
            serde_json::Value::Array(items) => items.iter().for_each(walk),
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    assert!(!k.contains('\0'), "NUL in key {k:?}");
                    walk(v);
                }
            }
            _ => {}
        }
    }
    for text in [&record.service, &record.event, &record.message] {
        assert!(!text.contains('\0'), "NUL in {text:?}");
    }
    walk(&serde_json::Value::Object(record.meta.clone()));
}

/// How many records `body` holds in `format`, counted independently of the decoder.
fn count_items(body: &[u8], format: BatchFormat) -> usize {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match format {
        BatchFormat::Array => serde_json::from_slice::<Vec<&RawValue>>(body)
            .map(|items| items.len())
            .expect("an array batch is a JSON array"),
        BatchFormat::Wrapped => {
            #[derive(serde::Deserialize)]
            struct Wrapped<'a> {
                #[serde(borrow)]
                records: Vec<&'a RawValue>,
            }
            serde_json::from_slice::<Wrapped<'_>>(body)
                .map(|w| w.records.len())
                .expect("a wrapped batch has a records array")
        }
        BatchFormat::Ndjson => body
            .split(|&b| b == b'\n')
            .filter(|line| !line.trim_ascii().is_empty())
            .count(),
    }
}

/// [`stack::parse`] on any text: no panic, at most one frame per line, names and files are
/// never empty and come from the input (V8's `new `/`async ` prefixes and Firefox's `/<`
/// markers are only ever cut off; `eval` is the one name supplied; a file is in the input
/// as is, or as `scheme:(//rest` when Safari wrote `scheme://rest` that way), and frames
/// survive a JSON round trip.
pub fn check_stack_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let frames = stack::parse(&text);
    let lines = 1 + text.bytes().filter(|&b| b == b'\n' || b == b'\r').count();
    assert!(
        frames.len() <= lines,
        "{} frames from {lines} lines",
        frames.len()
    );
    for frame in &frames {
        if let Some(function) = &frame.function {
            assert!(!function.is_empty(), "an empty name is None");
            assert!(
                function == "eval" || text.contains(function.as_str()),
                "function {function:?} is not in the input"
            );
        }
        if let Some(file) = &frame.file {
            assert!(!file.is_empty(), "an empty file is None");
            let in_parens = file.replacen("://", ":(//", 1);
            assert!(
                text.contains(file.as_str()) || text.contains(in_parens.as_str()),
                "file {file:?} is not in the input"
            );
        }
    }
    let json = serde_json::to_string(&frames).expect("frames serialize");
    let back: Vec<stack::Frame> = serde_json::from_str(&json).expect("frames deserialize");
    assert_eq!(back, frames, "frames survive a JSON round trip");
}

/// Runs `check` on every file of `fuzz/corpus/<target>` and `fuzz/regressions/<target>`
/// (the inputs the fuzzer kept and the ones that once broke an invariant), naming the file
/// that fails. Returns how many ran; panics when there are none, so a moved corpus fails
/// loudly instead of testing nothing.
#[cfg(feature = "std")]
pub fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut ran = 0;
    for kind in ["corpus", "regressions"] {
        let dir = root.join(kind).join(target);
        // `regressions/<target>` exists only once the fuzzer has found something.
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<_> = entries
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        paths.sort();
        for path in paths.iter().filter(|p| p.is_file()) {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Err(panic) = std::panic::catch_unwind(|| check(&data)) {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)");
                panic!("{target}: {} fails: {message}", path.display());
            }
            ran += 1;
        }
    }
    assert!(ran > 0, "no inputs for {target} under {}", root.display());
    ran
}
