//! The level of a plain-text line, guessed from a leading level word.

use faultline_schema::Level;

/// Words taken as a level when they open a line, alone or in brackets (`ERROR`, `[info]`,
/// `<warn>`, `WARN:`, `error -`). Single letters (`E`, `W`) are not: too many messages start
/// with one. Anything `Level::parse` knows is accepted too (`err`, `fatal`, `trace`).
const EXTRA: [(&str, Level); 5] = [
    ("notice", Level::Info),
    ("information", Level::Info),
    ("severe", Level::Error),
    ("crit", Level::Critical),
    ("emerg", Level::Critical),
];

/// The level a text line opens with, and the rest of the line (the separator after the
/// level word and leading white space removed). `None` when the line does not open with a
/// level word.
///
/// The word may follow a timestamp-like prefix (`2026-07-01 12:00:00,123 ERROR ...` as
/// Python's default `%(asctime)s %(levelname)s` format writes it); the returned rest then
/// still starts after the level word, and the prefix is dropped.
pub(crate) fn guess(line: &str) -> Option<(Level, &str)> {
    let trimmed = line.trim_start();
    if let Some(found) = leading_level(trimmed) {
        return Some(found);
    }
    // A timestamp prefix: tokens made only of digits and `-:.,T+Z/` before the level.
    let mut rest = trimmed;
    for _ in 0..3 {
        let end = rest.find(char::is_whitespace)?;
        let (token, after) = rest.split_at(end);
        let token = token.trim_matches(|c| c == '[' || c == ']');
        if token.is_empty()
            || !token.bytes().any(|b| b.is_ascii_digit())
            || !token
                .bytes()
                .all(|b| b.is_ascii_digit() || b"-:.,T+Z/".contains(&b))
        {
            return None;
        }
        rest = after.trim_start();
        if let Some(found) = leading_level(rest) {
            return Some(found);
        }
    }
    None
}

/// A level word at the very start of `s`.
fn leading_level(s: &str) -> Option<(Level, &str)> {
    let (open, close) = match s.as_bytes().first()? {
        b'[' => (1, Some(']')),
        b'<' => (1, Some('>')),
        b'(' => (1, Some(')')),
        _ => (0, None),
    };
    let body = &s[open..];
    let word_len = body
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(body.len());
    if word_len < 3 {
        return None;
    }
    let word = &body[..word_len];
    let level = Level::parse(word).or_else(|| {
        EXTRA
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map(|(_, l)| *l)
    })?;
    let mut rest = &body[word_len..];
    match close {
        Some(c) => rest = rest.strip_prefix(c)?,
        // A bare word must end the line or be followed by a separator, so that "Errors
        // were found" or "information:" inside prose does not count.
        None => {
            if !(rest.is_empty()
                || rest.starts_with(|c: char| c.is_whitespace() || c == ':' || c == '|'))
            {
                return None;
            }
        }
    }
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix([':', '|', '-'])
        .unwrap_or(rest)
        .trim_start();
    Some((level, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(line: &str) -> Option<(Level, &str)> {
        guess(line)
    }

    #[test]
    fn level_words_in_the_usual_shapes() {
        assert_eq!(
            g("ERROR something broke"),
            Some((Level::Error, "something broke"))
        );
        assert_eq!(
            g("WARN: disk at 91%"),
            Some((Level::Warning, "disk at 91%"))
        );
        assert_eq!(g("[info] started"), Some((Level::Info, "started")));
        assert_eq!(g("<debug> x=1"), Some((Level::Debug, "x=1")));
        assert_eq!(
            g("warning - low memory"),
            Some((Level::Warning, "low memory"))
        );
        assert_eq!(g("CRITICAL"), Some((Level::Critical, "")));
        assert_eq!(g("  fatal | boom"), Some((Level::Critical, "boom")));
        assert_eq!(g("TRACE enter"), Some((Level::Debug, "enter")));
        assert_eq!(g("err: nope"), Some((Level::Error, "nope")));
        assert_eq!(g("NOTICE rotated"), Some((Level::Info, "rotated")));
    }

    #[test]
    fn after_a_timestamp_prefix() {
        assert_eq!(
            g("2026-07-01 12:00:00,123 ERROR payment failed"),
            Some((Level::Error, "payment failed"))
        );
        assert_eq!(
            g("[2026-07-01T12:00:00Z] [warn] slow"),
            Some((Level::Warning, "slow"))
        );
        assert_eq!(g("12:00:01 INFO ready"), Some((Level::Info, "ready")));
    }

    #[test]
    fn not_guessed() {
        // Single letters are too ambiguous ("E" in glog, but also "E coli found").
        assert_eq!(g("E something"), None);
        assert_eq!(g("W0701 12:00:00 warn-ish"), None);
        assert_eq!(g("Errors were found in 3 files"), None);
        assert_eq!(g("information:"), Some((Level::Info, "")));
        assert_eq!(g("informational text"), None);
        assert_eq!(g("[errors] x"), None);
        assert_eq!(g("hello world"), None);
        assert_eq!(g(""), None);
        assert_eq!(g("2026-07-01 started"), None);
    }
}
