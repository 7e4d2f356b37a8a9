//! The storage JSON of a record, written by hand.
//!
//! Byte for byte what `serde_json` writes for [`Record`]'s `Serialize` (the tests compare
//! the two), without the serializer's per-field dispatch and formatter round trips, and
//! with strings escaped eight bytes at a time: the ingest server writes every record it
//! stores through here, and on its hot path this was a sixth of the CPU.

use crate::prelude::*;
use serde_json::{Map, Value};

use crate::record::Record;

/// Appends `record` as one compact JSON object.
impl Record {
    /// The compact JSON form, one line (NDJSON-ready).
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out);
        // Only UTF-8 strings and ASCII punctuation were written.
        String::from_utf8(out).unwrap_or_default()
    }

    /// Appends the compact JSON form to `out` (no intermediate string).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        write_record(self, out);
    }
}

pub(crate) fn write_record(record: &Record, out: &mut Vec<u8>) {
    out.reserve(160 + record.message.len());
    out.push(b'{');
    if let Some(id) = record.id {
        out.extend_from_slice(b"\"id\":\"");
        let mut buf = uuid::Uuid::encode_buffer();
        out.extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
        out.extend_from_slice(b"\",");
    }
    out.extend_from_slice(b"\"ts\":\"");
    out.extend_from_slice(&record.ts.to_bytes());
    out.push(b'"');
    if let Some(at) = record.received_at {
        out.extend_from_slice(b",\"received_at\":\"");
        out.extend_from_slice(&at.to_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"service\":");
    write_str(&record.service, out);
    out.extend_from_slice(b",\"level\":\"");
    out.extend_from_slice(record.level.as_str().as_bytes());
    out.extend_from_slice(b"\",\"event\":");
    write_str(&record.event, out);
    out.extend_from_slice(b",\"message\":");
    write_str(&record.message, out);
    if !record.meta.is_empty() {
        out.extend_from_slice(b",\"meta\":");
        write_object(&record.meta, out);
    }
    if let Some(issue) = &record.issue {
        out.extend_from_slice(b",\"issue\":");
        write_str(issue, out);
    }
    out.push(b'}');
}

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(key, out);
        out.push(b':');
        write_value(value, out);
    }
    out.push(b'}');
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Integers and floats exactly as serde_json formats them.
        Value::Number(n) => {
            #[cfg(feature = "std")]
            let _ = serde_json::to_writer(&mut *out, n);
            #[cfg(not(feature = "std"))]
            if let Ok(json) = serde_json::to_vec(n) {
                out.extend_from_slice(&json);
            }
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out),
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `w` is a control character, `"` or `\`: the bytes JSON escapes.
fn word_needs_escape(w: u64) -> bool {
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x;
    (below_space | zero_byte(quote) | zero_byte(backslash)) & HIGHS != 0
}

/// The first eight bytes of `s` (all of a shorter one, zeros above) as a little-endian word;
/// built from overlapping loads, not copied into an array (whose byte stores the wide load
/// would wait for).
#[inline]
pub fn short_word(s: &[u8]) -> u64 {
    let s = s.get(..8).unwrap_or(s);
    let n = s.len();
    if let (Some(lo), Some(hi)) = (s.first_chunk::<4>(), s.last_chunk::<4>()) {
        u64::from(u32::from_le_bytes(*lo)) | u64::from(u32::from_le_bytes(*hi)) << (8 * (n - 4))
    } else if let (Some(lo), Some(hi)) = (s.first_chunk::<2>(), s.last_chunk::<2>()) {
        u64::from(u16::from_le_bytes(*lo)) | u64::from(u16::from_le_bytes(*hi)) << (8 * (n - 2))
    } else {
        s.first().map_or(0, |&b| u64::from(b))
    }
}

/// How many leading bytes of `s` a JSON string carries as they are: the length of the
/// prefix without control characters, `"` or `\`. Scans eight bytes at a time, which is
/// what makes writing mostly plain text cheap; shared by every encoder of the record JSON.
#[inline]
pub fn json_plain_prefix(s: &[u8]) -> usize {
    let mut i = 0;
    while let Some(word) = s.get(i..i + 8) {
        let mut w = [0; 8];
        w.copy_from_slice(word);
        if word_needs_escape(u64::from_le_bytes(w)) {
            // The check has no false positives, but the byte-wise scan decides.
            let plain = plain_bytes(word);
            if plain < 8 {
                return i + plain;
            }
        }
        i += 8;
    }
    // Fewer than eight bytes left, all checked at once: a string of eight bytes or more ends
    // with a word that overlaps the one checked last; a shorter one is padded with spaces.
    let last = match s.last_chunk::<8>() {
        Some(w) => u64::from_le_bytes(*w),
        None => short_word(s) | (ONES * 0x20) << (8 * s.len()),
    };
    if word_needs_escape(last) {
        i + plain_bytes(s.get(i..).unwrap_or_default())
    } else {
        s.len()
    }
}

/// How many leading bytes of `s` need no escape, one byte at a time.
fn plain_bytes(s: &[u8]) -> usize {
    s.iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .unwrap_or(s.len())
}

/// Appends `s` as a JSON string, escaping as serde_json does: `"`, `\` and control
/// characters (the short forms where JSON has them, else `\u00XX`); nothing else.
fn write_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut rest = s.as_bytes();
    loop {
        let plain = json_plain_prefix(rest);
        let (head, tail) = rest.split_at(plain);
        out.extend_from_slice(head);
        let Some((&b, tail)) = tail.split_first() else {
            break;
        };
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        rest = tail;
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Level, Timestamp, Uuid};

    fn serde(record: &Record) -> Vec<u8> {
        serde_json::to_vec(record).unwrap()
    }

    fn ours(record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        write_record(record, &mut out);
        out
    }

    #[test]
    fn short_word_is_the_first_eight_bytes_zero_padded() {
        let bytes: Vec<u8> = (1..=12).collect();
        for n in 0..=bytes.len() {
            let s = &bytes[..n];
            let mut w = [0u8; 8];
            let k = n.min(8);
            w[..k].copy_from_slice(&s[..k]);
            assert_eq!(short_word(s), u64::from_le_bytes(w), "{n} bytes");
        }
    }

    #[test]
    fn plain_prefix_stops_at_the_first_byte_to_escape() {
        for len in 0..24 {
            for at in 0..=len {
                for c in [b'"', b'\\', 0, 0x1f] {
                    let mut s = vec![b'a'; len];
                    if at < len {
                        s[at] = c;
                    }
                    assert_eq!(json_plain_prefix(&s), at, "{len} bytes, {c} at {at}");
                }
            }
        }
    }

    /// Strings that exercise every escape and word boundary.
    fn strings() -> Vec<String> {
        let mut all: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
        all.extend(
            [
                "",
                "plain",
                "exactly8",
                "sixteen bytes ok",
                "quote \" in the middle of a longer string",
                "back\\slash at 5",
                "tab\tnewline\ncr\r",
                "\u{7f}\u{80}é漢字🙂 non-ASCII passes through",
                "control at end of word:\u{1}",
                "\u{1f}\u{0}\u{8}\u{c}",
            ]
            .map(String::from),
        );
        for len in 0..40 {
            let mut s = "a".repeat(len);
            s.push('"');
            s.push_str(&"b".repeat(len % 9));
            all.push(s);
        }
        all
    }

    #[test]
    fn matches_serde_json_byte_for_byte() {
        let mut checked = 0;
        for (n, s) in strings().into_iter().enumerate() {
            let mut r = Record::new(
                Timestamp::from_unix_millis(1_764_000_000_123 + n as i64 * 7_777_777),
                "api",
                Level::ALL[n % Level::ALL.len()],
                s.clone(),
                s.clone(),
            );
            assert_eq!(ours(&r), serde(&r), "{s:?}");
            r.id = Some(Uuid::from_u128(
                0x0192_0000_7000_8000_dead_beef_0000_0000 + n as u128,
            ));
            r.received_at = Some(Timestamp::from_unix_millis(n as i64));
            r.meta.insert(s.clone(), Value::String(s.clone()));
            r.meta.insert(
                "n".into(),
                serde_json::json!([
                    null, true, false, 0, -1, u64::MAX, i64::MIN, 1.5, -0.0, 1e300, 2.5e-8,
                    {"nested": {s.clone(): [s.clone(), {}]}}, []
                ]),
            );
            assert_eq!(ours(&r), serde(&r), "{s:?} with meta");
            checked += 2;
        }
        assert!(checked > 200);
    }

    #[test]
    fn every_byte_pair_escapes_like_serde_json() {
        for a in 0u8..0x80 {
            for b in [0u8, b'"', b'\\', b'a', 0x1f, 0x20, 0x7f] {
                let s: String = [a, b, b'x', b'y', b'z', b'w', b'v', b'u', a, b]
                    .iter()
                    .map(|&c| char::from(c))
                    .collect();
                let mut out = Vec::new();
                write_str(&s, &mut out);
                assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{s:?}");
            }
        }
    }
}
