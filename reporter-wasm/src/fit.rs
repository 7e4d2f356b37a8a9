//! A record's fields fitted to the schema's limits before the record leaves the page, with
//! the schema's own constants and functions: a record the server would reject is lost, so
//! the page makes it one the server takes.
//!
//! - `event`: [`faultline_schema::check_event`]'s rule: control characters become spaces,
//!   at most [`MAX_EVENT_CHARS`] characters, a fallback when nothing is left.
//! - `message`: NUL characters replaced (as the server does) and cut with
//!   [`faultline_schema::truncate_message`] to [`faultline_schema::MAX_MESSAGE_BYTES`].
//! - `meta`: whether its JSON is within [`MAX_META_DEPTH`] levels of nesting and
//!   [`META_BUDGET`] bytes; the package drops the page's additions until it is.

use alloc::string::String;
use faultline_schema::stack::space_len;
use faultline_schema::{MAX_EVENT_CHARS, MAX_META_BYTES, MAX_META_DEPTH, truncate_message};

/// The bytes of `meta` the page fills at most: the schema's [`MAX_META_BYTES`], less room
/// for what the server may still change (its own extra secret parameter names).
pub const META_BUDGET: usize = MAX_META_BYTES - 1_024;

/// `event` as the schema takes it; `fallback` (a valid event) when nothing is left.
///
/// A byte loop: the control characters are U+0000 to U+001F and U+007F (one byte) and
/// U+0080 to U+009F (`C2 80` to `C2 9F`); a character starts at every byte that is not a
/// continuation byte. Runs of the text are copied and each control character becomes a
/// space (decoding and collecting `char`s is more wasm).
pub(crate) fn event(event: &str, fallback: &str) -> String {
    let bytes = event.as_bytes();
    let mut out = String::new();
    // `event` is copied to `out` up to `copied`; `chars` counts characters started.
    let (mut copied, mut chars, mut i) = (0, 0, 0);
    while let Some(&b) = bytes.get(i) {
        if b & 0xc0 != 0x80 {
            if chars == MAX_EVENT_CHARS {
                break;
            }
            chars += 1;
        }
        let len = match (b, bytes.get(i + 1)) {
            (0..=0x1f | 0x7f, _) => 1,
            (0xc2, Some(0x80..=0x9f)) => 2,
            _ => 0,
        };
        if len > 0 {
            out.push_str(event.get(copied..i).unwrap_or_default());
            out.push(' ');
            copied = i + len;
        }
        i += len.max(1);
    }
    out.push_str(event.get(copied..i).unwrap_or_default());
    if is_blank(&out) { fallback.into() } else { out }
}

/// Whether `s` is empty or all white space (`char::is_whitespace`), read as bytes with the
/// stack parser's [`space_len`]: `chars()` brings UTF-8 decoding into the wasm.
fn is_blank(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(rest) = b.get(i..).filter(|r| !r.is_empty()) {
        match space_len(rest) {
            0 => return false,
            n => i += n,
        }
    }
    true
}

/// What a NUL character becomes in a message (`push_str` of a `&str`: `push` of a non-ASCII
/// `char` encodes it at run time).
const REPLACEMENT: &str = "\u{FFFD}";

/// `message` as the schema takes it: NUL characters replaced (with U+FFFD), cut to the
/// schema's limit with its marker. Runs of the text copied between NUL bytes, as
/// [`event`] does.
pub(crate) fn message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut copied = 0;
    for (i, &b) in message.as_bytes().iter().enumerate() {
        if b == 0 {
            out.push_str(message.get(copied..i).unwrap_or_default());
            out.push_str(REPLACEMENT);
            copied = i + 1;
        }
    }
    out.push_str(message.get(copied..).unwrap_or_default());
    truncate_message(&mut out);
    out
}

/// How `json`, the compact JSON of a record's `meta` object, misses the schema's limits:
/// [`TOO_DEEP`] when arrays and objects nest more than [`MAX_META_DEPTH`] levels deep
/// (`meta` itself being level 1, as the schema counts them), else [`TOO_LARGE`] past
/// [`META_BUDGET`] bytes, else 0.
pub(crate) fn meta_over(json: &str) -> u8 {
    if depth(json) > MAX_META_DEPTH {
        TOO_DEEP
    } else if json.len() > META_BUDGET {
        TOO_LARGE
    } else {
        0
    }
}

/// [`meta_over`]: more bytes than [`META_BUDGET`].
pub(crate) const TOO_LARGE: u8 = 1;
/// [`meta_over`]: nested deeper than [`MAX_META_DEPTH`].
pub(crate) const TOO_DEEP: u8 = 2;

/// The deepest nesting of arrays and objects in JSON text (0 for a scalar).
fn depth(json: &str) -> usize {
    let (mut open, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                open += 1;
                deepest = deepest.max(open);
            }
            b']' | b'}' => open = open.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_schema::{MAX_MESSAGE_BYTES, Record, check_event};

    /// Whether the server's parser takes a record with this `meta` JSON.
    fn server_takes(meta: &str) -> bool {
        let record = format!(
            r#"{{"ts":"2026-07-01T12:34:56.789Z","service":"ui","level":"ERROR","event":"e","message":"m","meta":{meta}}}"#
        );
        Record::from_json(record.as_bytes()).is_ok()
    }

    fn nested(levels: usize) -> String {
        let mut inner = String::from("1");
        for i in 0..levels {
            inner = if i % 2 == 0 {
                format!(r#"{{"k\"[{{":{inner}}}"#)
            } else {
                format!("[{inner}]")
            };
        }
        format!(r#"{{"extra":{inner}}}"#)
    }

    #[test]
    fn blank_and_nul_read_as_bytes_as_chars_would() {
        for c in (0..0x11_0000).filter_map(char::from_u32) {
            for s in [format!("{c}"), format!(" {c}\u{3000}"), format!("{c}a")] {
                assert_eq!(is_blank(&s), s.chars().all(char::is_whitespace), "{s:?}");
                let nul = format!("\0{s}\0{c}");
                let chars: String = nul
                    .chars()
                    .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
                    .collect();
                assert_eq!(message(&nul), chars);
            }
        }
        assert!(is_blank(""));
    }

    #[test]
    fn depth_is_counted_as_the_schema_counts_it() {
        for levels in 0..12 {
            let meta = nested(levels);
            assert_eq!(depth(&meta), levels + 1, "{meta}");
            assert_eq!(meta_over(&meta) == 0, server_takes(&meta), "{meta}");
            assert_eq!(meta_over(&meta) == TOO_DEEP, levels + 1 > MAX_META_DEPTH);
        }
        assert_eq!(meta_over(r#"{"a":"[[[[[[[[[[{{{{{{{{{"}"#), 0);
        assert_eq!(depth(r#"{"a":"\\","b":[[]]}"#), 3);
        assert_eq!(depth("1"), 0);
    }

    #[test]
    fn meta_within_the_budget_reaches_the_server() {
        let under = format!(r#"{{"extra":"{}"}}"#, "x".repeat(META_BUDGET - 12));
        assert!(under.len() <= META_BUDGET && meta_over(&under) == 0 && server_takes(&under));
        let over = format!(r#"{{"extra":"{}"}}"#, "x".repeat(MAX_META_BYTES));
        assert!(meta_over(&over) == TOO_LARGE && !server_takes(&over));
    }

    #[test]
    fn events_become_valid() {
        for e in [
            "react.error_boundary",
            "",
            "   ",
            "a\nb\u{0}c\u{9f}",
            &"é".repeat(300),
        ] {
            let fitted = event(e, "captureMessage");
            assert!(check_event(&fitted).is_ok(), "{e:?} -> {fitted:?}");
        }
        assert_eq!(event("a\nb", "x"), "a b");
        assert_eq!(event("\n", "x"), "x");
        assert_eq!(event("ok", "x"), "ok");
    }

    /// The byte loop is the rule as `char`s say it.
    #[test]
    fn events_match_the_char_rule() {
        let by_chars = |e: &str, fallback: &str| {
            let out: String = e
                .chars()
                .take(MAX_EVENT_CHARS)
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            if out.trim().is_empty() {
                fallback.to_owned()
            } else {
                out
            }
        };
        let long = format!("{}\u{85}x", "é\u{9f}".repeat(64));
        for e in [
            "a\u{7f}b\u{80}c\u{a0}\u{c2}\u{85}",
            "\u{2003}\u{85}\t",
            "\u{3000}",
            "\u{1f600}\u{9f}\u{100}",
            &"x".repeat(MAX_EVENT_CHARS),
            &"😀".repeat(200),
            &long,
        ] {
            assert_eq!(event(e, "f"), by_chars(e, "f"), "{e:?}");
        }
    }

    #[test]
    fn messages_fit_with_the_schema_marker() {
        assert_eq!(message("a\u{0}b"), "a\u{FFFD}b");
        let long = message(&"😀".repeat(5_000));
        assert!(long.len() <= MAX_MESSAGE_BYTES);
        assert!(long.ends_with(faultline_schema::TRUNCATION_MARKER));
        assert_eq!(message("short"), "short");
    }
}
