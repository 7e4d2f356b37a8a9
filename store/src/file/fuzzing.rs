//! Invariant checks shared by the fuzz targets (`fuzz/fuzz_targets/`) and the regression
//! tests that replay their corpus (`tests/fuzz_regressions.rs`): the NDJSON framing of
//! segments, read backwards (queries, tail repair) and forwards (the start-up scan), and the
//! torn-tail cut. Each check panics when an invariant breaks.
//!
//! Not part of the crate's API: hidden from the docs and free to change.

// These checks assert by panicking: that is how the fuzzer and the tests see a failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::Cursor;

use super::reader::{BackwardLines, lines_forward};
use super::segment::intact_len;

/// Reads `data[1..]` as a segment, in blocks of `1 + data[0] % 64` bytes so that lines
/// straddle block boundaries: backward and forward framing yield the same lines at the
/// same offsets; the torn-tail cut keeps whole lines only, ends on a `\n` after a JSON
/// line, drops only lines that are unterminated or not JSON, does not depend on the block
/// size, and finds nothing more to cut in what it kept.
pub fn check_ndjson_framing(data: &[u8]) {
    let Some((&seed, content)) = data.split_first() else {
        return;
    };
    let block = 1 + usize::from(seed % 64);
    let len = content.len() as u64;

    let mut backward = Vec::new();
    let mut lines = BackwardLines::new(Cursor::new(content), len, block);
    while let Some((start, line)) = lines.next_line().expect("reading memory cannot fail") {
        backward.push((start, line.to_vec()));
    }
    backward.reverse();
    let mut forward = Vec::new();
    let mut offset = 0u64;
    lines_forward(content, |line| {
        forward.push((offset, line.to_vec()));
        offset += line.len() as u64 + 1;
    })
    .expect("reading memory cannot fail");
    assert_eq!(backward, forward, "backward and forward framing agree");
    for (start, line) in &forward {
        let end = usize::try_from(*start).expect("offset fits") + line.len();
        assert_eq!(
            &content[end - line.len()..end],
            line.as_slice(),
            "offset is right"
        );
        assert!(!line.contains(&b'\n'), "a line has no newline inside");
    }

    let keep = intact_len(Cursor::new(content), len, block).expect("reading memory cannot fail");
    assert!(keep <= len, "the cut is inside the segment");
    let keep_at = usize::try_from(keep).expect("offset fits");
    if keep > 0 {
        assert_eq!(
            content[keep_at - 1],
            b'\n',
            "what is kept ends with a newline"
        );
        let last = forward
            .iter()
            .rev()
            .find(|(start, _)| *start < keep)
            .expect("a kept line");
        assert!(
            serde_json::from_slice::<serde::de::IgnoredAny>(&last.1).is_ok(),
            "the last kept line is JSON"
        );
    }
    for (start, line) in forward.iter().filter(|(start, _)| *start >= keep) {
        let terminated = start + (line.len() as u64) < len;
        assert!(
            !terminated || serde_json::from_slice::<serde::de::IgnoredAny>(line).is_err(),
            "a complete JSON line at {start} was cut"
        );
    }
    let whole = intact_len(Cursor::new(content), len, 1 << 16).expect("reading memory");
    assert_eq!(whole, keep, "the cut does not depend on the block size");
    let again = intact_len(Cursor::new(&content[..keep_at]), keep, block).expect("reading memory");
    assert_eq!(again, keep, "nothing more to cut after a repair");
}
