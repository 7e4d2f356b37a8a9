//! JSON output primitives for the worker: string escaping, numbers and timestamps that
//! produce exactly the bytes `serde_json` (and so `Record::write_json`) would.
//!
//! Written by hand because the worker serializes millions of records a second and never
//! builds a `serde_json::Value` on the way: each record goes from the captured form straight
//! into the output buffer.

use faultline_schema::Timestamp;

/// What follows a backslash for bytes that must be escaped; `u` means `\u00XX`; 0 means the
/// byte is copied as is. The same table as `serde_json`'s serializer.
static ESCAPE: [u8; 256] = {
    const UU: u8 = b'u';
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        table[i] = UU;
        i += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const HEX: &[u8; 16] = b"0123456789abcdef";
/// U+FFFD, which replaces NUL: PostgreSQL text and JSONB cannot store NUL, and the record
/// rules replace it the same way.
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Appends `s` as a JSON string (quotes included). `s` must be UTF-8; NUL characters become
/// U+FFFD, as `Record::validate` does.
pub(crate) fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    // Most strings (keys, paths, messages) need no escape: one scan, one copy.
    let plain = faultline_schema::json_plain_prefix(s);
    let (head, rest) = s.split_at(plain);
    out.extend_from_slice(head);
    if !rest.is_empty() {
        string_body(out, rest);
    }
    out.push(b'"');
}

/// [`string`] without the quotes.
pub(crate) fn string_body(out: &mut Vec<u8>, s: &[u8]) {
    let mut rest = s;
    loop {
        // Runs of plain bytes are found eight at a time.
        let plain = faultline_schema::json_plain_prefix(rest);
        let (head, tail) = rest.split_at(plain);
        out.extend_from_slice(head);
        let Some((&b, tail)) = tail.split_first() else {
            return;
        };
        rest = tail;
        let esc = ESCAPE[usize::from(b)];
        if b == 0 {
            out.extend_from_slice(REPLACEMENT);
        } else if esc == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.push(b'\\');
            out.push(esc);
        }
    }
}

/// How long [`string`] output for `s` is, quotes included.
pub(crate) fn string_len(s: &[u8]) -> usize {
    let mut n = 2 + s.len();
    for &b in s {
        match ESCAPE[usize::from(b)] {
            0 => {}
            b'u' if b == 0 => n += REPLACEMENT.len() - 1,
            b'u' => n += 5,
            _ => n += 1,
        }
    }
    n
}

/// Appends an integer.
pub(crate) fn int<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends a float exactly as `serde_json` writes one (through it, so the two cannot
/// drift apart); NaN and infinities, which JSON cannot hold, become `null`.
pub(crate) fn float(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        // Writing a number to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &v);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Every byte's two hex digits.
static HEX_PAIRS: [[u8; 2]; 256] = {
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [HEX[i >> 4], HEX[i & 0xf]];
        i += 1;
    }
    table
};

/// Where each of a UUID's 16 bytes goes in its hyphenated form.
const UUID_AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// Writes a UUID's hyphenated lower-case form into `out`.
pub(crate) fn uuid_text(out: &mut [u8; 36], id: u128) {
    for (byte, at) in id.to_be_bytes().into_iter().zip(UUID_AT) {
        out[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
    }
    for at in [8, 13, 18, 23] {
        out[at] = b'-';
    }
}

/// Formats timestamps, reusing the date and time of day while the second does not change
/// (consecutive records almost always share it).
#[derive(Debug, Default)]
pub(crate) struct TimestampCache {
    second: Option<i64>,
    /// `YYYY-MM-DDTHH:MM:SS.` of `second`.
    prefix: [u8; 20],
}

impl TimestampCache {
    /// Appends `ms` (clamped to the representable range) as the quoted canonical form,
    /// `"YYYY-MM-DDTHH:MM:SS.mmmZ"`, the same text as [`Timestamp`]'s `Display`.
    #[cfg(test)]
    pub(crate) fn write(&mut self, out: &mut Vec<u8>, ms: i64) {
        let mut text = [0u8; 24];
        self.text(&mut text, ms);
        out.push(b'"');
        out.extend_from_slice(&text);
        out.push(b'"');
    }

    /// Writes `ms` (clamped to the representable range) unquoted into `out` (24 bytes),
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub(crate) fn text(&mut self, out: &mut [u8], ms: i64) {
        let ms = Timestamp::from_unix_millis(ms).unix_millis();
        let second = ms.div_euclid(1000);
        if self.second != Some(second) {
            let text = Timestamp::from_unix_millis(second * 1000).to_string();
            match text.as_bytes().get(..20) {
                Some(p) => self.prefix.copy_from_slice(p),
                None => {
                    // Cannot happen: the canonical form is always 24 bytes.
                    for (o, b) in out.iter_mut().zip(text.bytes()) {
                        *o = b;
                    }
                    return;
                }
            }
            self.second = Some(second);
        }
        let frac = ms.rem_euclid(1000);
        let mut text = [0u8; 24];
        text[..20].copy_from_slice(&self.prefix);
        // 0..=999, so each digit is 0..=9.
        text[20] = b'0' + (frac / 100) as u8;
        text[21] = b'0' + (frac / 10 % 10) as u8;
        text[22] = b'0' + (frac % 10) as u8;
        text[23] = b'Z';
        if let Some(o) = out.get_mut(..24) {
            o.copy_from_slice(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_exactly_like_serde_json() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "quote \" backslash \\ slash /".into(),
            "tab\tnewline\nreturn\rformfeed\x0cbackspace\x08".into(),
            "\x01\x1f\x7f control".into(),
            "unicode é ✓ 𝄞".into(),
        ];
        samples.extend((0u8..0x80).map(|b| format!("a{}b", char::from(b))));
        // Every position within and across the eight-byte words the scan reads.
        for at in 0..20 {
            for c in ['\0', '\x01', '"', '\\', '\n', '\x1f', '\x7f', 'é'] {
                samples.push(format!("{}{c}{}", "x".repeat(at), "y".repeat(at % 11)));
            }
        }
        for s in samples {
            let expected = serde_json::to_string(&s.replace('\0', "\u{FFFD}")).unwrap();
            let mut out = Vec::new();
            string(&mut out, s.as_bytes());
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{s:?}");
            assert_eq!(string_len(s.as_bytes()), expected.len(), "{s:?}");
        }
    }

    #[test]
    fn nul_becomes_the_replacement_character() {
        let mut out = Vec::new();
        string(&mut out, b"a\0b");
        assert_eq!(out, "\"a\u{FFFD}b\"".as_bytes());
        assert_eq!(string_len(b"a\0b"), out.len());
    }

    #[test]
    fn numbers_match_serde_json() {
        for v in [
            0.0,
            -0.0,
            1.0,
            2.5,
            1e16,
            1e-7,
            123456.789,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let mut out = Vec::new();
            float(&mut out, v);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&v).unwrap()
            );
        }
        let mut out = Vec::new();
        float(&mut out, f64::NAN);
        assert_eq!(out, b"null");
        let mut out = Vec::new();
        int(&mut out, i64::MIN);
        assert_eq!(out, i64::MIN.to_string().as_bytes());
    }

    #[test]
    fn uuid_text_matches_the_uuid_crate() {
        for id in [0u128, u128::MAX, 0x0190_1234_5678_7abc_8def_0123_4567_89ab] {
            let mut out = [0u8; 36];
            uuid_text(&mut out, id);
            assert_eq!(
                std::str::from_utf8(&out).unwrap(),
                uuid::Uuid::from_u128(id).hyphenated().to_string()
            );
        }
    }

    #[test]
    fn timestamps_match_the_schema_display() {
        let mut cache = TimestampCache::default();
        for ms in [
            0,
            1,
            999,
            1000,
            1_782_909_296_789,
            1_782_909_296_001,
            1_782_909_297_000,
            -1,
            -86_400_001,
            253_402_300_799_999,
        ] {
            let mut out = Vec::new();
            cache.write(&mut out, ms);
            let expected = format!("\"{}\"", Timestamp::from_unix_millis(ms));
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{ms}");
        }
    }
}
