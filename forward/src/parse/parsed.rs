//! [`Parsed`]: what a format made of a line, and how it becomes a valid record.

use faultline_schema::{
    Level, MAX_EVENT_CHARS, MAX_META_BYTES, MetaType, RESERVED_META_KEYS, Record, Timestamp, Uuid,
    check_service,
};
use serde_json::{Map, Value};

/// Which mapper read a line (counted in the summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// A JSON line in the Faultline schema.
    Faultline,
    /// Python `logging` through a JSON formatter (`python-json-logger` keys).
    Python,
    /// Bunyan (Node.js).
    Bunyan,
    /// `tracing-subscriber`'s JSON format (Rust).
    Tracing,
    /// Some other JSON object.
    Json,
    /// A plain-text line.
    Text,
    /// A Python traceback with no log line before it.
    Traceback,
}

impl Format {
    pub(crate) const ALL: [Format; 7] = [
        Format::Faultline,
        Format::Python,
        Format::Bunyan,
        Format::Tracing,
        Format::Json,
        Format::Text,
        Format::Traceback,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Faultline => "faultline",
            Format::Python => "python",
            Format::Bunyan => "bunyan",
            Format::Tracing => "tracing",
            Format::Json => "json",
            Format::Text => "text",
            Format::Traceback => "traceback",
        }
    }
}

/// A line read by one format, before the record rules are applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed {
    pub(crate) format: Format,
    pub(crate) id: Option<Uuid>,
    pub(crate) ts: Option<Timestamp>,
    /// Only Faultline-schema lines name their service; the rest get `--service`.
    pub(crate) service: Option<String>,
    /// `None`: the line did not say (forwarded as `INFO`).
    pub(crate) level: Option<Level>,
    pub(crate) event: Option<String>,
    pub(crate) message: String,
    pub(crate) meta: Map<String, Value>,
}

impl Parsed {
    pub(crate) fn new(format: Format, message: impl Into<String>) -> Parsed {
        Parsed {
            format,
            id: None,
            ts: None,
            service: None,
            level: None,
            event: None,
            message: message.into(),
            meta: Map::new(),
        }
    }

    /// Whether a traceback on the next lines may belong to this line: a warning or worse
    /// that carries no stack of its own (`logger.exception(...)` writes its message, then
    /// the traceback).
    pub(crate) fn may_take_traceback(&self) -> bool {
        self.level.is_some_and(|l| l >= Level::Warning) && !self.meta.contains_key("stack_text")
    }

    /// Sets `meta.stack_text`, and `meta.error_type` from the traceback's last line unless
    /// the line named one.
    pub(crate) fn attach_traceback(&mut self, text: &str) {
        if let Some(t) = error_type(text) {
            self.meta
                .entry("error_type")
                .or_insert_with(|| Value::String(t.to_owned()));
        }
        self.meta
            .insert("stack_text".into(), Value::String(text.to_owned()));
    }

    /// The record: defaults filled in, and whatever the server would refuse made to fit
    /// (reserved `meta` keys of the wrong type renamed or turned into strings, an invalid
    /// event cleaned, `meta` over its size limit cut), so a forwarded line is never lost to
    /// a rejection.
    pub(crate) fn into_record(mut self, service: &str, now: Timestamp) -> Record {
        fit_reserved(&mut self.meta);
        let service = self
            .service
            .filter(|s| check_service(s).is_ok())
            .unwrap_or_else(|| service.to_owned());
        let event = clean_event(self.event.as_deref().unwrap_or("log"));
        let mut record = Record::new(
            self.ts.unwrap_or(now),
            service,
            self.level.unwrap_or(Level::Info),
            event,
            self.message,
        );
        record.id = self.id;
        record.meta = self.meta;
        if record.validate().is_err() {
            fit_size(&mut record.meta);
            if record.validate().is_err() {
                // Too deep: every nested value becomes its JSON text.
                for v in record.meta.values_mut() {
                    if v.is_object() || v.is_array() {
                        *v = Value::String(v.to_string());
                    }
                }
                fit_size(&mut record.meta);
                let _ = record.validate();
            }
        }
        record
    }
}

/// The exception type on a Python traceback's last line (`ValueError: bad input`,
/// `app.errors.PaymentDeclined`).
pub(crate) fn error_type(traceback: &str) -> Option<&str> {
    let last = traceback
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with([' ', '\t']))?;
    let name = last.split_once(':').map_or(last, |(n, _)| n).trim();
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
    ok.then_some(name)
}

/// Reserved keys with the wrong type: strings are made of scalars; anything else moves to
/// `<key>_raw`.
fn fit_reserved(meta: &mut Map<String, Value>) {
    for (key, want) in RESERVED_META_KEYS {
        let Some(v) = meta.get(key) else { continue };
        let fits = match want {
            MetaType::String => v.is_string(),
            MetaType::Array => v.is_array(),
            MetaType::Count => v.is_u64(),
        };
        if fits {
            continue;
        }
        let fixed = match (want, v) {
            (MetaType::String, Value::Number(n)) => Some(Value::String(n.to_string())),
            (MetaType::String, Value::Bool(b)) => Some(Value::String(b.to_string())),
            _ => None,
        };
        match fixed {
            Some(f) => {
                meta.insert(key.to_owned(), f);
            }
            None => {
                if let Some(v) = meta.remove(key) {
                    meta.insert(format!("{key}_raw"), v);
                }
            }
        }
    }
}

/// `meta` over [`MAX_META_BYTES`]: `stack_text` keeps its head and tail, then the largest
/// values are replaced by a note until it fits.
fn fit_size(meta: &mut Map<String, Value>) {
    let size = |m: &Map<String, Value>| serde_json::to_vec(m).map_or(0, |v| v.len());
    let mut over = size(meta).saturating_sub(MAX_META_BYTES);
    if over == 0 {
        return;
    }
    if let Some(Value::String(st)) = meta.get_mut("stack_text")
        && st.len() > 2048
    {
        // The end of a traceback (the exception) and its start matter most.
        let keep = st.len().saturating_sub(over + 64).max(1024);
        let head_end = floor_char(st, keep / 2);
        let tail_start = ceil_char(st, st.len() - keep / 2);
        *st = format!("{}\n…[cut]…\n{}", &st[..head_end], &st[tail_start..]);
        over = size(meta).saturating_sub(MAX_META_BYTES);
    }
    while over > 0 {
        let Some((key, len)) = meta
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string().len()))
            .max_by_key(|(_, len)| *len)
        else {
            return;
        };
        if len < 64 {
            // Many small keys: keep the first ones.
            let drop: Vec<String> = meta.keys().rev().take(8).cloned().collect();
            for k in drop {
                meta.remove(&k);
            }
        } else {
            meta.insert(
                key,
                Value::String(format!("…[dropped: {len} bytes over the meta limit]")),
            );
        }
        over = size(meta).saturating_sub(MAX_META_BYTES);
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// An event key the server takes: control characters become `_`, at most
/// [`MAX_EVENT_CHARS`] characters, `log` when nothing is left.
fn clean_event(event: &str) -> String {
    let cleaned: String = event
        .trim()
        .chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .take(MAX_EVENT_CHARS)
        .collect();
    if cleaned.is_empty() {
        "log".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: Timestamp = Timestamp::from_unix_millis(1_782_909_296_789);

    #[test]
    fn defaults_and_repairs_make_a_valid_record() {
        let mut p = Parsed::new(Format::Json, "hi");
        p.service = Some("NOT valid".into());
        p.event = Some("a\nb".into());
        p.meta.insert("user".into(), json!(42));
        p.meta.insert("stack".into(), json!("not frames"));
        p.meta.insert("count".into(), json!(-1));
        let r = p.into_record("api", NOW);
        assert_eq!((r.service.as_str(), r.event.as_str()), ("api", "a_b"));
        assert_eq!((r.level, r.ts), (Level::Info, NOW));
        assert_eq!(r.meta["user"], "42");
        assert_eq!(r.meta["stack_raw"], "not frames");
        assert_eq!(r.meta["count_raw"], -1);
        assert!(!r.meta.contains_key("stack") && !r.meta.contains_key("count"));
    }

    #[test]
    fn oversized_meta_is_cut_to_fit() {
        let mut p = Parsed::new(Format::Python, "boom");
        p.level = Some(Level::Error);
        let tb = format!(
            "Traceback (most recent call last):\n{}ValueError: bad",
            "  File \"x.py\", line 1, in f\n    f()\n".repeat(1000)
        );
        p.attach_traceback(&tb);
        p.meta.insert("blob".into(), json!("x".repeat(20_000)));
        let mut r = p.into_record("api", NOW);
        assert!(r.validate().is_ok());
        let st = r.meta["stack_text"].as_str().unwrap();
        assert!(
            st.starts_with("Traceback") && st.ends_with("ValueError: bad"),
            "{st}"
        );
        assert_eq!(r.meta["error_type"], "ValueError");
    }

    #[test]
    fn error_types_from_the_last_line() {
        assert_eq!(
            error_type("Traceback...\n  x\nKeyError: 'a'"),
            Some("KeyError")
        );
        assert_eq!(
            error_type("T\n  x\napp.errors.Declined: card"),
            Some("app.errors.Declined")
        );
        assert_eq!(error_type("T\n  x\nStopIteration"), Some("StopIteration"));
        assert_eq!(error_type("T\n  x\nsomething else: here"), None);
    }
}
