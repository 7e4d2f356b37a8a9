//! Sentry's envelope format: a JSON header line, then items, each a JSON header line and a
//! payload (`length` bytes when its header says, else up to the next newline).
//!
//! Parsing borrows the body: items are slices of it. A broken envelope header fails the
//! whole envelope; a broken item stops the parse there, keeping the items before it and
//! saying what was wrong, so the good items of a damaged envelope are still stored.

use serde::Deserialize;

/// The envelope header: the fields Faultline reads.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Header {
    /// The event the envelope carries, 32 hex digits (or a hyphenated UUID).
    #[serde(default)]
    pub event_id: Option<String>,
    /// The DSN the SDK was configured with: its user part is the key.
    #[serde(default)]
    pub dsn: Option<String>,
    /// When the SDK sent the envelope (RFC 3339).
    #[serde(default)]
    pub sent_at: Option<String>,
}

/// An item header.
#[derive(Debug, Deserialize)]
struct ItemHeader {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    length: Option<u64>,
}

/// One item: its type and its payload, a slice of the body.
#[derive(Debug)]
pub(crate) struct Item<'a> {
    /// `event`, `transaction`, `log`, `attachment`, ...
    pub kind: String,
    /// The payload bytes.
    pub payload: &'a [u8],
}

/// A parsed envelope.
#[derive(Debug)]
pub(crate) struct Envelope<'a> {
    /// Its header.
    pub header: Header,
    /// Its items up to the first broken one.
    pub items: Vec<Item<'a>>,
    /// Why parsing stopped before the end, naming the item (counted from 1).
    pub broken: Option<String>,
}

/// Why an envelope could not be read at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EnvelopeError {
    /// The first line is not a JSON object.
    #[error(
        "envelope header (the first line) is not a JSON object: {0}; a Sentry envelope is a \
         JSON header line, then per item a JSON item header line and its payload"
    )]
    Header(String),
    /// More items than the server takes in one request.
    #[error("envelope holds more than {0} items: send fewer per envelope")]
    TooManyItems(usize),
}

/// Splits `body` into its header and items, at most `max_items` of them.
pub(crate) fn parse(body: &[u8], max_items: usize) -> Result<Envelope<'_>, EnvelopeError> {
    let (first, mut rest) = split_line(body);
    let header: Header =
        serde_json::from_slice(first).map_err(|e| EnvelopeError::Header(e.to_string()))?;
    let mut envelope = Envelope {
        header,
        items: Vec::new(),
        broken: None,
    };
    let mut n = 0;
    loop {
        // Blank lines between items (and the newline ending the last payload) are allowed.
        while let [b'\n' | b'\r' | b' ' | b'\t', tail @ ..] = rest {
            rest = tail;
        }
        if rest.is_empty() {
            return Ok(envelope);
        }
        n += 1;
        if n > max_items {
            return Err(EnvelopeError::TooManyItems(max_items));
        }
        let (line, after) = split_line(rest);
        let item: ItemHeader = match serde_json::from_slice(line) {
            Ok(item) => item,
            Err(e) => {
                envelope.broken = Some(format!(
                    "item {n}: its header is not a JSON object with a \"type\": {e}"
                ));
                return Ok(envelope);
            }
        };
        let payload = match item.length {
            Some(length) => {
                let Some(length) = usize::try_from(length).ok().filter(|l| *l <= after.len())
                else {
                    envelope.broken = Some(format!(
                        "item {n} ({}): its header says {length} bytes but only {} follow",
                        item.kind,
                        after.len()
                    ));
                    return Ok(envelope);
                };
                let (payload, tail) = after.split_at(length);
                rest = tail;
                payload
            }
            None => {
                let (payload, tail) = split_line(after);
                rest = tail;
                payload
            }
        };
        envelope.items.push(Item {
            kind: item.kind,
            payload,
        });
    }
}

/// The line up to the first `\n` (without it) and what follows it.
fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match memchr(bytes) {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[]),
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

/// The public key in a DSN (`https://KEY@host/PROJECT`; a legacy `KEY:SECRET` gives KEY).
pub(crate) fn dsn_key(dsn: &str) -> Option<&str> {
    let (_, rest) = dsn.split_once("://")?;
    let (user, _) = rest.split_once('@')?;
    let key = user.split(':').next()?;
    (!key.is_empty()).then_some(key)
}

/// The key in an `X-Sentry-Auth` (or `Authorization`) value:
/// `Sentry sentry_key=KEY, sentry_version=7, sentry_client=...`.
pub(crate) fn auth_header_key(value: &str) -> Option<&str> {
    let value = value.trim();
    let rest = value
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("sentry "))
        .map(|_| &value[7..])?;
    rest.split(',').find_map(|part| {
        let (name, key) = part.trim().split_once('=')?;
        (name.trim() == "sentry_key")
            .then(|| key.trim())
            .filter(|k| !k.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_with_and_without_length() {
        let body =
            b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\",\"dsn\":\"https://k1@h/1\"}\n\
            {\"type\":\"attachment\",\"length\":10}\n\
            helloworld\n\
            {\"type\":\"event\"}\n\
            {\"message\":\"hi\"}\n";
        let e = parse(body, 10).unwrap();
        assert_eq!(e.header.dsn.as_deref().and_then(dsn_key), Some("k1"));
        assert_eq!(e.items.len(), 2);
        assert_eq!(e.items[0].kind, "attachment");
        assert_eq!(e.items[0].payload, b"helloworld");
        assert_eq!(e.items[1].payload, b"{\"message\":\"hi\"}");
        assert!(e.broken.is_none());
        // No trailing newline, a payload with a newline inside its length.
        let body = b"{}\n{\"type\":\"event\",\"length\":3}\na\nb";
        let e = parse(body, 10).unwrap();
        assert_eq!(e.items[0].payload, b"a\nb");
    }

    #[test]
    fn a_broken_item_keeps_the_ones_before_it() {
        let body = b"{}\n{\"type\":\"event\"}\n{}\nnot json\n{\"type\":\"event\"}\n{}\n";
        let e = parse(body, 10).unwrap();
        assert_eq!(e.items.len(), 1);
        assert!(e.broken.unwrap().starts_with("item 2: its header"));
        let body = b"{}\n{\"type\":\"event\",\"length\":99}\n{}\n";
        let e = parse(body, 10).unwrap();
        assert!(e.items.is_empty());
        assert!(e.broken.unwrap().contains("99 bytes but only 3 follow"));
        assert!(matches!(
            parse(b"nope\n", 10),
            Err(EnvelopeError::Header(_))
        ));
        assert!(matches!(
            parse(b"{}\n{\"type\":\"a\"}\n{}\n{\"type\":\"a\"}\n{}\n", 1),
            Err(EnvelopeError::TooManyItems(1))
        ));
    }

    #[test]
    fn keys_from_dsn_and_auth_header() {
        assert_eq!(dsn_key("http://abc@localhost:8080/42"), Some("abc"));
        assert_eq!(dsn_key("http://abc:secret@localhost/42"), Some("abc"));
        assert_eq!(dsn_key("http://localhost/42"), None);
        assert_eq!(
            auth_header_key("Sentry sentry_key=abc, sentry_version=7, sentry_client=x/1"),
            Some("abc")
        );
        assert_eq!(
            auth_header_key("sentry sentry_version=7,sentry_key=abc"),
            Some("abc")
        );
        assert_eq!(auth_header_key("Bearer abc"), None);
        assert_eq!(auth_header_key("Sentry sentry_key="), None);
    }
}
