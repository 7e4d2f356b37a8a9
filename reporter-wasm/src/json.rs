//! Hand-written JSON output, and the two checks the reporter needs on JSON text it did not
//! write (`JSON.stringify` output from the page): nesting depth and being an object.
//!
//! `serde_json` would cost several kilobytes of wasm for what is, here, string escaping and
//! number printing; the reporter never parses JSON.

/// Appends `s` as a JSON string literal (quotes included).
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends `"key":` (the key must not need escaping).
pub(crate) fn push_key(out: &mut String, key: &str) {
    out.push('"');
    out.push_str(key);
    out.push_str("\":");
}

/// Appends `"key":"value"`, escaping the value.
pub(crate) fn push_field(out: &mut String, key: &str, value: &str) {
    push_key(out, key);
    push_str(out, value);
}

/// Appends an unsigned integer in decimal.
pub(crate) fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        // `n % 10` is a single digit.
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

/// Appends `ms` (milliseconds since the Unix epoch) as RFC 3339 in UTC with milliseconds,
/// the schema's canonical form (`2026-07-01T12:34:56.789Z`). Years outside 0000 to 9999 are
/// clamped, as the schema does.
pub(crate) fn push_ts(out: &mut String, ms: i64) {
    const DAY_MS: i64 = 86_400_000;
    let ms = ms.clamp(-62_167_219_200_000, 253_402_300_799_999);
    let days = ms.div_euclid(DAY_MS);
    let in_day = ms.rem_euclid(DAY_MS);
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let secs = in_day / 1_000;
    let fields = [
        (y, 4, '-'),
        (m, 2, '-'),
        (d, 2, 'T'),
        (secs / 3_600, 2, ':'),
        (secs / 60 % 60, 2, ':'),
        (secs % 60, 2, '.'),
        (in_day % 1_000, 3, 'Z'),
    ];
    for (value, width, sep) in fields {
        let mut div = 1;
        for _ in 1..width {
            div *= 10;
        }
        let mut v = value;
        while div > 0 {
            // One decimal digit.
            out.push(char::from(b'0' + (v / div % 10) as u8));
            v %= div;
            div /= 10;
        }
        out.push(sep);
    }
}

/// The deepest nesting of objects and arrays in `json` (0 for a scalar), ignoring brackets
/// inside strings. Assumes well-formed JSON, as `JSON.stringify` produces.
pub(crate) fn depth(json: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
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
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Whether `json` is a JSON object (`{...}`), as far as its first and last bytes tell.
pub(crate) fn is_object(json: &str) -> bool {
    let t = json.trim();
    t.len() >= 2 && t.starts_with('{') && t.ends_with('}')
}

/// The members of a JSON object without its braces (`{"a":1}` → `"a":1`); empty for `{}`.
pub(crate) fn object_body(json: &str) -> &str {
    let t = json.trim();
    t.get(1..t.len().saturating_sub(1)).unwrap_or("").trim()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(s: &str) -> String {
        let mut out = String::new();
        push_str(&mut out, s);
        out
    }

    #[test]
    fn strings_are_escaped_like_json() {
        assert_eq!(quoted("plain"), r#""plain""#);
        assert_eq!(quoted("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quoted("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(quoted("\u{0}\u{1f}"), r#""\u0000\u001f""#);
        assert_eq!(quoted("é → 😀"), "\"é → 😀\"");
        assert_eq!(quoted(""), r#""""#);
    }

    #[test]
    fn numbers_print_in_decimal() {
        for n in [0u64, 7, 10, 42, 1_000_000, u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn timestamps_match_the_schema_form() {
        use faultline_schema::Timestamp;
        for ms in [
            0,
            1_782_909_296_789,
            -1,
            951_782_400_000, // 2000-02-29
            253_402_300_799_999,
            -62_167_219_200_000,
            i64::MAX,
        ] {
            let mut out = String::new();
            push_ts(&mut out, ms);
            assert_eq!(out, Timestamp::from_unix_millis(ms).to_string(), "{ms}");
        }
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(depth("1"), 0);
        assert_eq!(depth("{}"), 1);
        assert_eq!(depth(r#"{"a":[{"b":1}]}"#), 3);
        assert_eq!(depth(r#"{"a":"[[[{{{\"]]"}"#), 1);
        assert_eq!(depth(r#"[[],[[]],[]]"#), 3);
    }

    #[test]
    fn object_helpers() {
        assert!(is_object(r#" {"a":1} "#));
        assert!(!is_object("[1]"));
        assert!(!is_object("{"));
        assert_eq!(object_body(r#"{"a":1,"b":2}"#), r#""a":1,"b":2"#);
        assert_eq!(object_body("{}"), "");
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("héllo", 3), "hé");
        assert_eq!(clip("abc", 10), "abc");
    }
}
