//! URL scrubbing: credentials and secret-looking query or fragment parameters taken out of
//! text, so a URL that carries `?access_token=...` or `https://user:pass@host` is not stored
//! as it was sent. The browser reporter applies the same rule before a record leaves the
//! page; the server applies it to every record it takes in, whoever sent it.
//!
//! # The rule
//!
//! 1. **Credentials.** In every `scheme://userinfo@` (a scheme is a letter, then letters,
//!    digits, `+`, `.`, `-` or `_`, starting a word), the userinfo and its `@` are removed:
//!    `https://user:pass@host/` becomes `https://host/`. The userinfo is what lies between
//!    `://` and the first `@`, containing no whitespace and none of `/ ? # @ " ' < > \`.
//! 2. **Parameters.** Every `name=value` right after `?`, `&` or `#` (in a URL or anywhere in
//!    the text) whose name is secret gets the value [`FILTERED`]: `?code=abc&page=2` becomes
//!    `?code=[Filtered]&page=2`. A name is one or more of `A-Z a-z 0-9 _ . % [ ] -`; the value
//!    runs to the next whitespace or one of `& # " ' < > \` (so it may be empty, and may hold
//!    `?` or `=`). After a parameter, the search goes on after its value.
//! 3. **Secret names.** The name is percent-decoded (kept as written when that fails), split
//!    into words at every character that is not an ASCII letter or digit and before an
//!    uppercase ASCII letter that follows a lowercase one or a digit (`apiKey` is `api`,
//!    `key`), and lowercased. It is secret when one of its words is in
//!    [`SECRET_PARAM_WORDS`] (`key`, `code`, `sig`, ...: whole words only, so `monkey` and
//!    `zipcode` are not), or when its words joined together contain one of
//!    [`SECRET_PARAM_PARTS`] (`token`, `secret`, `auth`, `session`, ...: `access_token`,
//!    `X-Amz-Signature`, `authorization`) or one of the extra names the scrubber was made
//!    with (compared the same way: letters and digits, lowercased).
//!
//! Not covered: secrets in text that is no URL parameter (`password: hunter2`), a URL nested
//! percent-encoded inside another's parameter, and names that do not look secret.
//!
//! No regex and no allocation unless something is replaced: this runs in the browser
//! bundle's crate and on every string of every record the server takes in. For the
//! browser's sake the code also avoids what would add kilobytes to its WebAssembly: no
//! Unicode case tables, no substring searcher, no slicing that can panic (whose message
//! formats characters with Unicode tables); `get` and byte loops instead.

use crate::prelude::*;
use alloc::borrow::Cow;

use serde_json::{Map, Value};

use crate::record::Record;

/// What a secret parameter's value is replaced with.
pub const FILTERED: &str = "[Filtered]";

/// Words that make a parameter name secret when one of its words is exactly one of them.
pub const SECRET_PARAM_WORDS: [&str; 9] = [
    "key", "code", "sig", "pwd", "pass", "pin", "otp", "sid", "ssn",
];

/// Parts that make a parameter name secret when its words, joined, contain one of them.
pub const SECRET_PARAM_PARTS: [&str; 13] = [
    "token",
    "passw",
    "secret",
    "apikey",
    "auth",
    "credential",
    "session",
    "sessid",
    "signature",
    "privatekey",
    "jwt",
    "bearer",
    "cookie",
];

/// Applies the rule above with a set of extra secret names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlScrubber {
    /// The extra names, as compared: ASCII letters and digits, lowercased.
    extra: Vec<String>,
}

impl UrlScrubber {
    /// A scrubber that also treats names containing one of `extra` as secret (compared by
    /// their ASCII letters and digits, lowercased; an entry with none is ignored).
    /// Bytes rather than `str`s: only ASCII letters and digits count, and the browser
    /// reporter passes the lines of one text without decoding it.
    pub fn new<S: AsRef<[u8]>>(extra: &[S]) -> UrlScrubber {
        let mut scrubber = UrlScrubber::default();
        for e in extra {
            scrubber.add(e.as_ref());
        }
        scrubber
    }

    /// [`UrlScrubber::new`] with the names given as the lines of one text (the browser
    /// reporter's `denyUrlParams`, joined by `\n`), without a list of them.
    pub fn from_lines(text: &[u8]) -> UrlScrubber {
        let mut scrubber = UrlScrubber::default();
        for line in text.split(|&b| b == b'\n') {
            scrubber.add(line);
        }
        scrubber
    }

    /// Adds one extra name (see [`UrlScrubber::new`]).
    fn add(&mut self, e: &[u8]) {
        let mut name = String::new();
        for &b in e {
            if b.is_ascii_alphanumeric() {
                name.push(char::from(b.to_ascii_lowercase()));
            }
        }
        if !name.is_empty() {
            self.extra.push(name);
        }
    }

    /// Whether a URL parameter called `name` (as written in the URL) holds a secret.
    pub fn is_secret_param(&self, name: &str) -> bool {
        // Bytes rather than `char`s: a character outside ASCII ends a word (its bytes are no
        // ASCII letter or digit), except the two whose lowercase holds one (below). No UTF-8
        // decoding, and the decoded name need not become a `String`.
        let decoded = percent_decode(name);
        let bytes: &[u8] = &decoded;
        // ASCII letters and digits only: bytes, so a push encodes no `char`.
        let mut joined: Vec<u8> = Vec::with_capacity(bytes.len());
        let mut word_start = 0;
        let mut secret_word = false;
        let mut prev = 0u8;
        let mut end_word = |joined: &mut Vec<u8>, start: &mut usize| {
            secret_word |= joined
                .get(*start..)
                .is_some_and(|w| SECRET_PARAM_WORDS.iter().any(|s| s.as_bytes() == w));
            *start = joined.len();
        };
        // Bytes still to skip: the rest of U+212A or U+0130, read at their first byte.
        let mut skip = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            if b.is_ascii_uppercase() && (prev.is_ascii_lowercase() || prev.is_ascii_digit()) {
                end_word(&mut joined, &mut word_start);
            }
            prev = b;
            // The byte lowercased, as far as ASCII letters and digits go: the only
            // characters outside ASCII whose lowercase holds one are U+212A KELVIN SIGN
            // (`k`) and U+0130 (`i`, then a combining dot, which ends the word).
            let l = match b {
                0x80.. => {
                    let rest = bytes.get(i..).unwrap_or_default();
                    if rest.starts_with("\u{212A}".as_bytes()) {
                        skip = 2;
                        b'k'
                    } else if rest.starts_with("\u{130}".as_bytes()) {
                        skip = 1;
                        joined.push(b'i');
                        b
                    } else {
                        b
                    }
                }
                _ => b.to_ascii_lowercase(),
            };
            if l.is_ascii_lowercase() || l.is_ascii_digit() {
                joined.push(l);
            } else {
                end_word(&mut joined, &mut word_start);
            }
        }
        end_word(&mut joined, &mut word_start);
        secret_word
            || SECRET_PARAM_PARTS.iter().any(|p| contains(&joined, p))
            || self.extra.iter().any(|p| contains(&joined, p))
    }

    /// `text` without URL credentials and with secret parameters' values [`FILTERED`];
    /// borrowed when nothing was replaced.
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        // Credentials need an `@` and parameters one of `?&#`: most strings (and a stack's
        // file URLs) have none, and cost one pass.
        if !text.bytes().any(|b| matches!(b, b'?' | b'&' | b'#' | b'@')) {
            return Cow::Borrowed(text);
        }
        let without_credentials = strip_credentials(text);
        match self.filter_params(&without_credentials) {
            Some(filtered) => Cow::Owned(filtered),
            None => without_credentials,
        }
    }

    /// [`UrlScrubber::scrub`] in place; returns whether `text` changed.
    pub fn scrub_string(&self, text: &mut String) -> bool {
        match self.scrub(text) {
            Cow::Borrowed(_) => false,
            Cow::Owned(scrubbed) => {
                *text = scrubbed;
                true
            }
        }
    }

    /// Scrubs `record.message` and every string in `record.meta`, at any depth (keys are
    /// left as they are). Returns whether anything changed; the record may then be longer
    /// than before and should be checked again ([`Record::validate`]).
    pub fn scrub_record(&self, record: &mut Record) -> bool {
        let mut changed = self.scrub_string(&mut record.message);
        for value in record.meta.values_mut() {
            changed |= self.scrub_value(value);
        }
        changed
    }

    fn scrub_value(&self, value: &mut Value) -> bool {
        match value {
            Value::String(s) => self.scrub_string(s),
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, v| self.scrub_value(v) | changed),
            Value::Object(map) => self.scrub_map(map),
            _ => false,
        }
    }

    fn scrub_map(&self, map: &mut Map<String, Value>) -> bool {
        map.values_mut()
            .fold(false, |changed, v| self.scrub_value(v) | changed)
    }

    /// Rule 2 over `text`; `None` when no value was replaced.
    fn filter_params(&self, text: &str) -> Option<String> {
        let bytes = text.as_bytes();
        let mut out: Option<String> = None;
        // Copied to `out` up to here.
        let mut copied = 0;
        let mut i = 0;
        while i < bytes.len() {
            if !matches!(bytes[i], b'?' | b'&' | b'#') {
                i += 1;
                continue;
            }
            let name_start = i + 1;
            let name_end = name_start
                + bytes
                    .get(name_start..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|&&b| is_name_byte(b))
                    .count();
            if name_end == name_start || bytes.get(name_end) != Some(&b'=') {
                i += 1;
                continue;
            }
            let value_start = name_end + 1;
            let value_end = value_end(text, value_start);
            // A value already filtered is left as it is (the same text, but no change).
            if text.get(value_start..value_end) != Some(FILTERED)
                && self.is_secret_param(text.get(name_start..name_end).unwrap_or_default())
            {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 16));
                o.push_str(text.get(copied..value_start).unwrap_or_default());
                o.push_str(FILTERED);
                copied = value_end;
            }
            i = value_end.max(i + 1);
        }
        let mut o = out?;
        o.push_str(text.get(copied..).unwrap_or_default());
        Some(o)
    }
}

/// Whether `part` occurs in `text` (a byte loop: `str::contains` brings a two-way
/// searcher into the browser's WebAssembly).
fn contains(text: &[u8], part: &str) -> bool {
    part.is_empty() || text.windows(part.len()).any(|w| w == part.as_bytes())
}

/// The bytes a parameter name is made of.
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'%' | b'[' | b']' | b'-')
}

/// Whether `b` starts with white space as JavaScript's `\s` has it (the reporter's side of
/// the rule): Unicode white space and the byte order mark, but not U+0085. Read as bytes
/// with the stack parser's table: `char_indices` brings UTF-8 decoding into the browser's
/// WebAssembly.
fn starts_with_space(b: &[u8]) -> bool {
    match b {
        [0xc2, 0x85, ..] => false,
        [0xef, 0xbb, 0xbf, ..] => true, // U+FEFF
        _ => crate::stack::space_len(b) > 0,
    }
}

/// The first byte offset from `from` in `text` where white space or one of `# " ' < > \`
/// starts, and `/ ? @` in `userinfo`, else `&`. Every such byte starts a character, so the
/// offset is a character boundary.
fn find_stop(text: &str, from: usize, userinfo: bool) -> Option<usize> {
    let b = text.as_bytes();
    (from..b.len()).find(|&i| match b.get(i..) {
        Some(rest @ [c, ..]) if *c >= 0x80 => starts_with_space(rest),
        Some([c, ..]) => {
            matches!(
                c,
                b'\t'..=b'\r' | b' ' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'\\'
            ) || if userinfo {
                matches!(c, b'/' | b'?' | b'@')
            } else {
                *c == b'&'
            }
        }
        _ => false,
    })
}

/// Where a parameter value starting at `start` ends: at whitespace or `& # " ' < > \`.
fn value_end(text: &str, start: usize) -> usize {
    find_stop(text, start, false).unwrap_or(text.len())
}

/// Rule 1: `text` without the userinfo (and its `@`) of every `scheme://userinfo@`.
fn strip_credentials(text: &str) -> Cow<'_, str> {
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text
        .as_bytes()
        .get(from..)
        .and_then(|b| b.windows(3).position(|w| w == b"://"))
    {
        let at = from + found;
        from = at + 3;
        if !has_scheme(text.get(..at).unwrap_or_default()) {
            continue;
        }
        let userinfo =
            find_stop(text, from, true).filter(|&end| text.as_bytes().get(end) == Some(&b'@'));
        if let Some(end) = userinfo {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(text.get(copied..from).unwrap_or_default());
            copied = end + 1;
            from = copied;
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(text.get(copied..).unwrap_or_default());
            Cow::Owned(o)
        }
    }
}

/// Whether `before` (the text before a `://`) ends in a scheme: a run of ASCII letters,
/// digits, `_ + . -` holding a letter at the start of a word (the text's start, or after a
/// character that is not an ASCII letter, digit or `_`).
fn has_scheme(before: &str) -> bool {
    let bytes = before.as_bytes();
    let run = bytes
        .iter()
        .rev()
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'.' | b'-'))
        .count();
    let start = bytes.len() - run;
    (start..bytes.len()).any(|i| {
        bytes[i].is_ascii_alphabetic()
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'))
    })
}

/// `name`'s bytes with `%XX` sequences decoded, or as written when one is malformed or the
/// result is not UTF-8 (the way `decodeURIComponent` fails in the browser).
fn percent_decode(name: &str) -> Cow<'_, [u8]> {
    let bytes = name.as_bytes();
    // The stack parser's byte loop: `contains` brings `memchr` into the browser's wasm.
    if !crate::stack::has_byte(name, b"%") {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            // Two hex digits (ASCII, so the slice is on character boundaries when they are
            // there), read by the stack parser's `parse_u32`.
            let hex = name
                .get(i + 1..i + 3)
                .and_then(|h| crate::stack::parse_u32(h, 16))
                .and_then(|n| u8::try_from(n).ok());
            let Some(b) = hex else {
                return Cow::Borrowed(bytes);
            };
            out.push(b);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    if is_utf8(&out) {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(bytes)
    }
}

/// Whether `bytes` are UTF-8 (`str::from_utf8(bytes).is_ok()`, in a few lines: core's
/// validator, built for speed, is a kilobyte of the browser's wasm with its table).
fn is_utf8(bytes: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        // The sequence's length and the range of its second byte (the others: 80 to BF).
        let (len, second) = match b {
            0x00..=0x7f => (1, 0..=0xff),
            0xc2..=0xdf => (2, 0x80..=0xbf),
            0xe0 => (3, 0xa0..=0xbf),
            0xed => (3, 0x80..=0x9f),
            0xe1..=0xef => (3, 0x80..=0xbf),
            0xf0 => (4, 0x90..=0xbf),
            0xf1..=0xf3 => (4, 0x80..=0xbf),
            0xf4 => (4, 0x80..=0x8f),
            _ => return false,
        };
        let ok = (1..len).all(|k| {
            bytes.get(i + k).is_some_and(|&c| {
                if k == 1 {
                    second.contains(&c)
                } else {
                    c & 0xc0 == 0x80
                }
            })
        });
        if !ok {
            return false;
        }
        i += len;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrub(text: &str) -> String {
        UrlScrubber::default().scrub(text).into_owned()
    }

    /// The names' lowercasing maps only U+212A and U+0130 outside ASCII: every other
    /// character's lowercase holds no ASCII letter or digit, as `char::to_lowercase` says.
    #[test]
    fn lines_are_names() {
        assert_eq!(
            UrlScrubber::from_lines(b"a\nE-mail\n\n\xff%\nx_y\n"),
            UrlScrubber::new(&["a", "E-mail", "", "%", "x_y", ""])
        );
        assert_eq!(UrlScrubber::from_lines(b""), UrlScrubber::default());
        assert!(UrlScrubber::from_lines(b"email").is_secret_param("userEmail"));
    }

    #[test]
    fn only_two_characters_outside_ascii_lowercase_into_it() {
        let into_ascii: Vec<(char, String)> = ('\u{80}'..=char::MAX)
            .map(|c| (c, c.to_lowercase().collect::<String>()))
            .filter(|(_, l)| l.bytes().any(|b| b.is_ascii_alphanumeric()))
            .collect();
        assert_eq!(
            into_ascii,
            [('\u{130}', "i\u{307}".into()), ('\u{212A}', "k".into())]
        );
        let s = UrlScrubber::default();
        assert!(s.is_secret_param("\u{212A}ey"));
        assert!(s.is_secret_param("x_\u{130}key") == s.is_secret_param("x_i\u{307}key"));
        assert!(s.is_secret_param("%E2%84%AAey"));
    }

    /// The small validator agrees with `str::from_utf8` on every sequence of up to three
    /// bytes and on four-byte ones around every boundary.
    #[test]
    fn is_utf8_is_from_utf8() {
        let mut seqs: Vec<Vec<u8>> = Vec::new();
        for a in 0..=255u8 {
            seqs.push(vec![a]);
            for b in 0..=255u8 {
                seqs.push(vec![a, b]);
                if a >= 0xc0 {
                    for c in [0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff] {
                        seqs.push(vec![a, b, c]);
                        if a >= 0xf0 {
                            seqs.push(vec![a, b, c, 0x80]);
                            seqs.push(vec![a, b, c, 0xbf]);
                            seqs.push(vec![a, b, c, 0xc0]);
                        }
                    }
                }
            }
        }
        for seq in seqs {
            assert_eq!(
                is_utf8(&seq),
                core::str::from_utf8(&seq).is_ok(),
                "{seq:x?}"
            );
            let padded = [b"a".as_slice(), &seq, b"z"].concat();
            assert_eq!(is_utf8(&padded), core::str::from_utf8(&padded).is_ok());
        }
    }

    #[test]
    fn the_issue_names_are_secret_and_harmless_ones_are_not() {
        let s = UrlScrubber::default();
        for name in [
            "token",
            "access_token",
            "id_token",
            "refresh_token",
            "auth",
            "authorization",
            "password",
            "passwd",
            "pwd",
            "secret",
            "client_secret",
            "api_key",
            "apikey",
            "key",
            "session",
            "sessionid",
            "code",
            "signature",
            "sig",
            "jwt",
            "credentials",
            "ACCESS_TOKEN",
            "apiKey",
            "X-Amz-Signature",
            "X-Amz-Credential",
            "access%5Ftoken",
            "user[password]",
        ] {
            assert!(s.is_secret_param(name), "{name} should be secret");
        }
        for name in [
            "page", "q", "monkey", "zipcode", "keyword", "design", "sort", "id", "lang", "",
        ] {
            assert!(!s.is_secret_param(name), "{name} should not be secret");
        }
    }

    #[test]
    fn extra_names_extend_the_list() {
        let s = UrlScrubber::new(&["X-Tenant", "", "--"]);
        assert!(s.is_secret_param("x_tenant_id"));
        assert!(s.is_secret_param("xTenant"));
        assert!(!s.is_secret_param("tenant"));
        assert!(!UrlScrubber::default().is_secret_param("x_tenant_id"));
    }

    #[test]
    fn secret_values_are_filtered_in_queries_fragments_and_text() {
        assert_eq!(
            scrub("https://app.example/cb?code=abc&page=2#access_token=x.y.z&state=s"),
            "https://app.example/cb?code=[Filtered]&page=2#access_token=[Filtered]&state=s"
        );
        assert_eq!(
            scrub("GET /api?apiKey=123 failed: \"https://h/?token=t\""),
            "GET /api?apiKey=[Filtered] failed: \"https://h/?token=[Filtered]\""
        );
        assert_eq!(scrub("?token="), "?token=[Filtered]");
        assert_eq!(scrub("a?b=c?token=t"), "a?b=c?token=t", "inside a value");
        assert_eq!(scrub("issue #12, a & b, x=1"), "issue #12, a & b, x=1");
        assert_eq!(scrub("?page=2&q=keys"), "?page=2&q=keys");
        assert_eq!(
            scrub("{\"u\":\"/x?session=abc\"}"),
            "{\"u\":\"/x?session=[Filtered]\"}"
        );
    }

    #[test]
    fn credentials_in_urls_are_removed() {
        assert_eq!(
            scrub("db at postgres://app:hunter2@db:5432/x down"),
            "db at postgres://db:5432/x down"
        );
        assert_eq!(scrub("http://KEY@host/1"), "http://host/1");
        assert_eq!(scrub("https://host:8080/a@b"), "https://host:8080/a@b");
        assert_eq!(scrub("mail bob@example.com"), "mail bob@example.com");
        assert_eq!(
            scrub("1x://u:p@h"),
            "1x://u:p@h",
            "no scheme starts a word there"
        );
        assert_eq!(
            scrub("a://u@h b://v:w@i?pass=1"),
            "a://h b://i?pass=[Filtered]"
        );
    }

    #[test]
    fn nothing_is_allocated_when_nothing_changes() {
        let s = UrlScrubber::default();
        for text in ["plain text", "https://h/p?page=1", "a: b"] {
            assert!(matches!(s.scrub(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn a_record_is_scrubbed_in_its_message_and_every_meta_string() {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "ts": "2026-07-01T12:00:00Z", "service": "api", "level": "info", "event": "e",
            "message": "GET https://u:p@h/?token=t",
            "meta": {
                "url": "https://h/?code=c",
                "breadcrumbs": [{"data": {"url": "/x?sig=s"}}],
                "n": 1,
                "?token=k": "key stays"
            }
        }))
        .unwrap();
        assert!(UrlScrubber::default().scrub_record(&mut r));
        assert_eq!(r.message, "GET https://h/?token=[Filtered]");
        assert_eq!(r.meta["url"], "https://h/?code=[Filtered]");
        assert_eq!(r.meta["breadcrumbs"][0]["data"]["url"], "/x?sig=[Filtered]");
        assert_eq!(r.meta["?token=k"], "key stays");
        assert!(!UrlScrubber::default().scrub_record(&mut r), "idempotent");
    }
}
