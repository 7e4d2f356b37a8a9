//! Records waiting to be sent, batches, and the text kept in `localStorage`.

use std::rc::Rc;

use crate::id;
use crate::json;

/// A record in the reporter's custody.
#[derive(Debug, Clone)]
pub(crate) struct Rec {
    /// Order of creation; the queue is sorted by it.
    pub(crate) seq: u32,
    /// When it entered the queue (host clock, ms), for the flush interval.
    pub(crate) queued: f64,
    /// Its JSON.
    pub(crate) body: Body,
}

/// A record's JSON.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// Built here: `meta.count` can still change.
    Parts {
        /// The client id, which makes retries idempotent.
        id: [u8; 16],
        /// `ts`, ms since the Unix epoch.
        ts: i64,
        /// See `event.rs`: up to and including `"meta":{`.
        head: Rc<str>,
        /// `meta`'s other members and `}}`.
        tail: Rc<str>,
        /// Occurrences folded into this record.
        count: u32,
    },
    /// Finished JSON (restored from storage, or taken back from a batch).
    Wire(Rc<str>),
}

/// `{"id":"` + 36 + `","ts":"` + 24 + `",`: where `head` starts in a built record.
const PREFIX_LEN: usize = 77;

impl Rec {
    /// The record's id, as written in its JSON.
    pub(crate) fn id(&self) -> Option<[u8; 16]> {
        match &self.body {
            Body::Parts { id, .. } => Some(*id),
            Body::Wire(text) => wire_id(text),
        }
    }

    /// Bytes of JSON.
    pub(crate) fn len(&self) -> usize {
        match &self.body {
            Body::Parts {
                head, tail, count, ..
            } => PREFIX_LEN + head.len() + tail.len() + count_len(*count, tail),
            Body::Wire(text) => text.len(),
        }
    }

    /// Appends the record's JSON.
    pub(crate) fn write(&self, out: &mut String) {
        match &self.body {
            Body::Parts {
                id,
                ts,
                head,
                tail,
                count,
            } => {
                out.reserve(self.len());
                out.push_str("{\"id\":\"");
                id::push_uuid(out, id);
                out.push_str("\",\"ts\":\"");
                json::push_ts(out, *ts);
                out.push_str("\",");
                out.push_str(head);
                if *count > 1 {
                    out.push_str("\"count\":");
                    json::push_u64(out, u64::from(*count));
                    if !tail.starts_with('}') {
                        out.push(',');
                    }
                }
                out.push_str(tail);
            }
            Body::Wire(text) => out.push_str(text),
        }
    }

    /// The finished JSON.
    pub(crate) fn to_wire(&self) -> Rc<str> {
        match &self.body {
            Body::Wire(text) => Rc::clone(text),
            Body::Parts { .. } => {
                let mut s = String::new();
                self.write(&mut s);
                s.into()
            }
        }
    }
}

fn count_len(count: u32, tail: &str) -> usize {
    if count <= 1 {
        return 0;
    }
    let digits = count.checked_ilog10().map_or(1, |d| d as usize + 1);
    "\"count\":".len() + digits + usize::from(!tail.starts_with('}'))
}

/// The id of a record's JSON as this module writes it (`{"id":"…"`), if it has that shape.
pub(crate) fn wire_id(text: &str) -> Option<[u8; 16]> {
    let hex = text.strip_prefix("{\"id\":\"")?.get(..36)?;
    let mut id = [0u8; 16];
    let mut digits = hex.bytes().filter(|b| *b != b'-');
    for byte in &mut id {
        let hi = hex_val(digits.next()?)?;
        let lo = hex_val(digits.next()?)?;
        *byte = hi << 4 | lo;
    }
    Some(id)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// When a record of this module was made (ms since the epoch): the time its UUIDv7 id
/// carries, which is its `ts`.
pub(crate) fn wire_ms(text: &str) -> Option<i64> {
    let id = wire_id(text)?;
    let mut ms = [0u8; 8];
    ms[2..].copy_from_slice(&id[..6]);
    i64::try_from(u64::from_be_bytes(ms)).ok()
}

/// Records sent together, kept until the server answers.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Matches a response to its request; a new number for every send.
    pub(crate) seq: u32,
    /// Each record's JSON.
    pub(crate) records: Vec<Rc<str>>,
    /// Failed attempts so far.
    pub(crate) attempts: u32,
}

impl Batch {
    /// The request body: a JSON array.
    pub(crate) fn body(&self) -> String {
        join(&self.records)
    }
}

/// A JSON array of records.
pub(crate) fn join(records: &[Rc<str>]) -> String {
    let mut body = String::with_capacity(records.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(r);
    }
    body.push(']');
    body
}

/// Splits records into JSON arrays of at most `max_bytes` each (a record larger than that
/// goes alone).
pub(crate) fn chunks(records: &[Rc<str>], max_bytes: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 2;
    for (i, r) in records.iter().enumerate() {
        if i > start && size + r.len() + 1 > max_bytes {
            out.push(join(&records[start..i]));
            start = i;
            size = 2;
        }
        size += r.len() + 1;
    }
    if start < records.len() {
        out.push(join(&records[start..]));
    }
    out
}

/// First line of the stored text; anything else is ignored on restore.
pub(crate) const STORE_HEADER: &str = "faultline/1";
/// Most bytes written to `localStorage` (the whole origin usually has 5 MB).
pub(crate) const MAX_STORED_BYTES: usize = 256 * 1024;
/// Stored records older than this are not sent again.
pub(crate) const MAX_STORED_AGE_MS: i64 = 7 * 24 * 3600 * 1000;

/// The stored form: the header, then one record per line (JSON has no raw newlines), oldest
/// first, up to [`MAX_STORED_BYTES`].
pub(crate) fn store_text<'a>(records: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut text = String::from(STORE_HEADER);
    let mut any = false;
    for r in records {
        if text.len() + r.len() + 1 > MAX_STORED_BYTES {
            break;
        }
        text.push('\n');
        text.push_str(r);
        any = true;
    }
    any.then_some(text)
}

/// The records of stored texts (several, joined by newlines), skipping anything that is not
/// a record of ours or is older than [`MAX_STORED_AGE_MS`] at `now_ms`.
pub(crate) fn stored_records(text: &str, now_ms: i64) -> impl Iterator<Item = &str> {
    text.lines().filter(move |line| {
        line.ends_with('}')
            && wire_id(line).is_some()
            && wire_ms(line).is_some_and(|ts| now_ms - ts <= MAX_STORED_AGE_MS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(count: u32, tail: &str) -> Rec {
        Rec {
            seq: 1,
            queued: 0.0,
            body: Body::Parts {
                id: [
                    0x01, 0x90, 0xa1, 0xb2, 0xc3, 0xd4, 0x7e, 0x5f, 0x8a, 0x6b, 0x7c, 0x8d, 0x9e,
                    0x0f, 0x1a, 0x2b,
                ],
                ts: 1_782_909_296_789,
                head: r#""service":"ui","level":"ERROR","event":"e","message":"m","meta":{"#.into(),
                tail: tail.into(),
                count,
            },
        }
    }

    #[test]
    fn records_serialize_with_count_only_when_folded() {
        let r = built(1, r#""url":"u"}}"#);
        let mut s = String::new();
        r.write(&mut s);
        assert_eq!(
            s,
            r#"{"id":"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b","ts":"2026-07-01T12:34:56.789Z","service":"ui","level":"ERROR","event":"e","message":"m","meta":{"url":"u"}}"#
        );
        assert_eq!(r.len(), s.len());
        let r = built(500, r#""url":"u"}}"#);
        let s = r.to_wire();
        assert!(s.contains(r#""meta":{"count":500,"url":"u"}}"#), "{s}");
        assert_eq!(r.len(), s.len());
        let r = built(12, "}}");
        let s = r.to_wire();
        assert!(s.ends_with(r#""meta":{"count":12}}"#), "{s}");
        assert_eq!(r.len(), s.len());
        let rec = faultline_schema::Record::from_json(s.as_bytes()).unwrap();
        assert_eq!(rec.meta["count"], 12);
    }

    #[test]
    fn wire_fields_read_back() {
        let s = built(1, "}}").to_wire();
        assert_eq!(wire_id(&s), built(1, "}}").id());
        assert_eq!(wire_ms(&s), Some(0x0190_a1b2_c3d4));
        assert_eq!(wire_id(r#"{"id":"nope"}"#), None);
        assert_eq!(wire_ms("{}"), None);
    }

    #[test]
    fn store_round_trip_skips_junk_and_old_records() {
        let a = built(1, "}}").to_wire();
        let text = store_text([&*a, &*a].into_iter()).unwrap();
        assert!(text.starts_with("faultline/1\n"));
        let now = 0x0190_a1b2_c3d4 + 1000;
        let junk = format!("{text}\nnot json\n{{\"id\":\"x\"}}\n");
        assert_eq!(stored_records(&junk, now).count(), 2);
        let later = now + MAX_STORED_AGE_MS;
        assert_eq!(stored_records(&text, later).count(), 0);
        assert_eq!(store_text(std::iter::empty()), None);
        let big = "x".repeat(MAX_STORED_BYTES);
        assert_eq!(
            store_text([&*a, big.as_str(), &*a].into_iter())
                .unwrap()
                .lines()
                .count(),
            2
        );
    }

    #[test]
    fn chunks_respect_the_byte_budget() {
        let recs: Vec<Rc<str>> = (0..10).map(|_| Rc::from("x".repeat(99).as_str())).collect();
        let parts = chunks(&recs, 350);
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.len() <= 350), "{parts:?}");
        let one: Vec<Rc<str>> = vec![Rc::from("y".repeat(1000).as_str())];
        assert_eq!(chunks(&one, 350).len(), 1);
        assert!(chunks(&[], 350).is_empty());
    }
}
