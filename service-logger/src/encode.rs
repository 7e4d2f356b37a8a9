//! From a captured record ([`CapturedRecordRef`]) to one NDJSON line that is a valid Faultline
//! record.
//!
//! The worker writes the JSON straight into the output's buffer, with the bytes
//! `Record::write_json` would produce for the same record (`meta` keys sorted, compact), and
//! applies the record's rules on the way so nothing is shipped that the server would reject:
//!
//! - `event`: the event's `event` field, else an explicit event name (`name: "..."`), else the
//!   target; control characters become `_`, cut at `MAX_EVENT_CHARS`.
//! - `message`: NUL becomes U+FFFD, cut at `MAX_MESSAGE_BYTES` with the truncation marker.
//! - `meta`: static fields, then span fields from the outermost span in, then the event's own
//!   fields; on a repeated key the innermost wins. Reserved keys get their required types:
//!   `trace_id`, `user`, ... are written as strings; `stack` and `breadcrumbs` (which a field
//!   cannot hold as arrays) move to `stack_text` and `breadcrumbs_text`; a `count` that is
//!   not a non-negative integer moves to `count_value`; a raw `user` is anonymized with the
//!   project salt; a `traceparent` becomes `trace_id` and `span_id`. Over `MAX_META_BYTES`,
//!   the longest strings are cut (with the marker) until it fits.

use faultline_schema::{
    Level, MAX_EVENT_CHARS, MAX_MESSAGE_BYTES, MAX_META_BYTES, TRUNCATION_MARKER, anonymize_user,
    is_anonymized_user, truncate_message,
};

use crate::capture::{CapturedRecordRef, Item, Items, Origin, Value};
use crate::json::{self, TimestampCache};
use crate::traceparent::TraceContext;

/// What every record of a logger shares, fixed when the logger is built.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecordConfig {
    /// The validated `service`.
    pub(crate) service: String,
    /// Static `meta` fields (release, environment, host, user-chosen ones), validated.
    pub(crate) statics: Vec<(String, serde_json::Value)>,
    /// The project's public salt for `meta.user`; `None` hashes with an empty salt.
    pub(crate) user_salt: Option<String>,
    /// Add `meta.target` (the module path or `log` target).
    pub(crate) with_target: bool,
    /// Add `meta.file` and `meta.line`.
    pub(crate) with_location: bool,
}

/// Where a string value's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StrSource {
    /// The captured record's items (a field's value, not copied).
    Items,
    /// `Encoder::synth`: text the encoder made (an anonymized `user`, a number as text, a
    /// cut string).
    Synth,
}

/// The value of one `meta` key as the encoder holds it until it writes `meta`.
#[derive(Debug, Clone, Copy)]
enum SlotValue {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    /// Raw UTF-8 at `start..end` of its source, escaped when written.
    Str(StrSource, u32, u32),
    /// Pre-rendered JSON of static field `n`.
    Static(u32),
}

/// Where a key's bytes are: `start..end` of the captured record's items (a field's own name,
/// not copied) or of `Encoder::keys` (static and renamed keys).
#[derive(Debug, Clone, Copy)]
struct Key {
    in_entry: bool,
    start: u32,
    end: u32,
}

impl Key {
    fn bytes<'a>(self, keys: &'a [u8], entry: &'a [u8]) -> &'a [u8] {
        slice(
            if self.in_entry { entry } else { keys },
            self.start,
            self.end,
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: Key,
    val: SlotValue,
    /// Priority on a repeated key: the larger wins.
    order: u32,
}

/// Turns captured records into record lines. One per worker; keeps its scratch buffers
/// between calls.
#[derive(Debug)]
pub(crate) struct Encoder {
    /// `","service":<service>,"level":"<LEVEL>","event":` for each level, in
    /// [`level_index`] order: everything between the timestamp and the event in one copy.
    middles: [Vec<u8>; 5],
    statics: Vec<(Vec<u8>, Vec<u8>)>,
    /// The static fields' slots, their keys at the start of `keys` (kept between records).
    static_slots: Vec<Slot>,
    /// Bytes of `keys` the static fields' names take.
    static_keys: usize,
    salt: String,
    with_target: bool,
    with_location: bool,
    slots: Vec<Slot>,
    keys: Vec<u8>,
    synth: Vec<u8>,
    tmp: Vec<u8>,
    ts: TimestampCache,
    /// One template per callsite (with its [`callsite_key`]), direct-mapped by the
    /// callsite's address.
    templates: Vec<Option<(usize, Template)>>,
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Tracing's macros name events `event <file>:<line>` unless told otherwise.
fn is_generated_name(name: &str) -> bool {
    name.starts_with("event ") && name.contains(':')
}

impl Encoder {
    pub(crate) fn new(config: &RecordConfig) -> Encoder {
        let mut service_json = Vec::new();
        json::string(&mut service_json, config.service.as_bytes());
        let middles = [
            Level::Debug,
            Level::Info,
            Level::Warning,
            Level::Error,
            Level::Critical,
        ]
        .map(|level| {
            let mut m = b"\",\"service\":".to_vec();
            m.extend_from_slice(&service_json);
            m.extend_from_slice(b",\"level\":\"");
            m.extend_from_slice(level.as_str().as_bytes());
            m.extend_from_slice(b"\",\"event\":");
            m
        });
        let statics: Vec<(Vec<u8>, Vec<u8>)> = config
            .statics
            .iter()
            .map(|(k, v)| {
                (
                    k.clone().into_bytes(),
                    serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec()),
                )
            })
            .collect();
        let mut keys = Vec::with_capacity(512);
        let mut static_slots = Vec::with_capacity(statics.len());
        for (i, (k, _)) in statics.iter().enumerate() {
            let start = u32_of(keys.len());
            keys.extend_from_slice(k);
            static_slots.push(Slot {
                key: Key {
                    in_entry: false,
                    start,
                    end: u32_of(keys.len()),
                },
                val: SlotValue::Static(u32_of(i)),
                order: 0,
            });
        }
        let static_keys = keys.len();
        Encoder {
            middles,
            statics,
            static_slots,
            static_keys,
            salt: config.user_salt.clone().unwrap_or_default(),
            with_target: config.with_target,
            with_location: config.with_location,
            slots: Vec::with_capacity(32),
            keys,
            synth: Vec::with_capacity(512),
            tmp: Vec::new(),
            ts: TimestampCache::default(),
            templates: (0..TEMPLATES).map(|_| None).collect(),
        }
    }

    fn key(&mut self, name: &[u8]) -> Key {
        let start = u32_of(self.keys.len());
        self.keys.extend_from_slice(name);
        Key {
            in_entry: false,
            start,
            end: u32_of(self.keys.len()),
        }
    }

    fn synth_str(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> SlotValue {
        let start = u32_of(self.synth.len());
        f(&mut self.synth);
        SlotValue::Str(StrSource::Synth, start, u32_of(self.synth.len()))
    }

    fn push(&mut self, name: &[u8], val: SlotValue, order: u32) {
        let key = self.key(name);
        self.slots.push(Slot { key, val, order });
    }

    /// [`push`](Encoder::push) for a name inside the captured items: kept where it is.
    fn push_named(&mut self, name: &[u8], entry: &[u8], val: SlotValue, order: u32) {
        let start = (name.as_ptr() as usize).wrapping_sub(entry.as_ptr() as usize);
        if start <= entry.len() && name.len() <= entry.len() - start {
            let key = Key {
                in_entry: true,
                start: u32_of(start),
                end: u32_of(start + name.len()),
            };
            self.slots.push(Slot { key, val, order });
        } else {
            self.push(name, val, order);
        }
    }

    /// Text of a value for reserved keys that must be strings.
    fn stringify(&mut self, v: Value<'_>, entry: &[u8], base: usize) -> SlotValue {
        match v {
            Value::Str(s) => entry_str(entry, s, base),
            other => {
                let text = text_of(other);
                self.synth_str(|o| o.extend_from_slice(text.as_bytes()))
            }
        }
    }

    fn value(&mut self, v: Value<'_>, entry: &[u8], start: usize) -> SlotValue {
        match v {
            Value::I64(n) => SlotValue::I64(n),
            Value::U64(n) => SlotValue::U64(n),
            Value::F64(n) => SlotValue::F64(n),
            Value::Bool(b) => SlotValue::Bool(b),
            Value::Str(s) => entry_str(entry, s, start),
            // JSON numbers past 64 bits do not survive serde_json: keep them as text.
            Value::I128(n) => match (i64::try_from(n), u64::try_from(n)) {
                (Ok(n), _) => SlotValue::I64(n),
                (_, Ok(n)) => SlotValue::U64(n),
                _ => self.synth_str(|o| json::int(o, n)),
            },
            Value::U128(n) => match u64::try_from(n) {
                Ok(n) => SlotValue::U64(n),
                Err(_) => self.synth_str(|o| json::int(o, n)),
            },
        }
    }

    /// Adds one field, giving reserved keys their required types. Returns whether the field
    /// went in as it is (its own name, its value unchanged): what a [`Template`] can repeat.
    fn field(&mut self, name: &[u8], v: Value<'_>, entry: &[u8], order: u32) -> bool {
        let base = entry.as_ptr() as usize;
        match name {
            b"trace_id" | b"span_id" | b"release" | b"environment" | b"url" | b"user_agent"
            | b"error_type" => {
                let val = self.stringify(v, entry, base);
                self.push_named(name, entry, val, order);
            }
            b"user" => {
                let text = match v {
                    Value::Str(s) => String::from_utf8_lossy(s),
                    other => std::borrow::Cow::Owned(text_of(other)),
                };
                let val = match v {
                    Value::Str(s) if is_anonymized_user(&text) => entry_str(entry, s, base),
                    _ => {
                        let id = if is_anonymized_user(&text) {
                            text.into_owned()
                        } else {
                            anonymize_user(&self.salt, text.as_bytes())
                        };
                        self.synth_str(|o| o.extend_from_slice(id.as_bytes()))
                    }
                };
                self.push(b"user", val, order);
            }
            b"stack" | b"breadcrumbs" => {
                let val = self.stringify(v, entry, base);
                let key: &[u8] = if name == b"stack" {
                    b"stack_text"
                } else {
                    b"breadcrumbs_text"
                };
                self.push(key, val, order);
            }
            b"count" => {
                let count = match v {
                    Value::U64(n) => Some(n),
                    Value::I64(n) => u64::try_from(n).ok(),
                    Value::I128(n) => u64::try_from(n).ok(),
                    Value::U128(n) => u64::try_from(n).ok(),
                    _ => None,
                };
                match count {
                    Some(n) => self.push(b"count", SlotValue::U64(n), order),
                    None => {
                        let val = self.value(v, entry, base);
                        self.push(b"count_value", val, order);
                    }
                }
            }
            b"traceparent" => {
                let parsed = match v {
                    Value::Str(s) => std::str::from_utf8(s).ok().and_then(TraceContext::parse),
                    _ => None,
                };
                match parsed {
                    Some(tc) => {
                        let t = self.synth_str(|o| {
                            o.extend_from_slice(tc.trace_id().to_string().as_bytes());
                        });
                        self.push(b"trace_id", t, order);
                        let s = self.synth_str(|o| {
                            o.extend_from_slice(tc.span_id().to_string().as_bytes());
                        });
                        self.push(b"span_id", s, order);
                    }
                    None => {
                        let val = self.value(v, entry, base);
                        self.push_named(name, entry, val, order);
                    }
                }
            }
            _ => {
                let val = self.value(v, entry, base);
                self.push_named(name, entry, val, order);
                // 128-bit numbers are written as numbers or as text depending on the value.
                return !matches!(v, Value::I128(_) | Value::U128(_));
            }
        }
        false
    }

    /// Appends the record line for `entry` (JSON and a newline) to `out`.
    ///
    /// A callsite's records have the same field names in the same order, so after the first
    /// the `meta` object's layout (sorted keys, static fields, target and location) is known:
    /// a [`Template`] kept per callsite writes it with only the values filled in. Records a
    /// template does not fit (other fields, reserved keys, repeated keys) take the full path,
    /// which writes the same bytes.
    pub(crate) fn encode(&mut self, entry: &CapturedRecordRef<'_>, out: &mut Vec<u8>) {
        let start = out.len();
        let callsite = callsite_key(entry.origin);
        let at = template_index(callsite);
        if self.encode_with(at, callsite, entry, out) {
            return;
        }
        out.truncate(start);
        // A record no template can repeat leaves the slot's template in place.
        if let Some(t) = self.encode_full(entry, out)
            && let Some(slot) = self.templates.get_mut(at)
        {
            *slot = Some((callsite, t));
        }
    }

    /// The template path: `false` (and `out` partly written) when there is no template for
    /// the callsite or the record does not fit it.
    fn encode_with(
        &mut self,
        at: usize,
        callsite: usize,
        entry: &CapturedRecordRef<'_>,
        out: &mut Vec<u8>,
    ) -> bool {
        // Taken out while it is filled (filling writes through `self`), then put back.
        let Some((owner, t)) = self.templates.get_mut(at).and_then(Option::take) else {
            return false;
        };
        let fits = owner == callsite && self.fill(&t, entry, out);
        if let Some(slot) = self.templates.get_mut(at) {
            *slot = Some((owner, t));
        }
        fits
    }

    fn fill(&mut self, t: &Template, entry: &CapturedRecordRef<'_>, out: &mut Vec<u8>) -> bool {
        let buf = entry.items;
        let mut values = [Value::Bool(false); MAX_TEMPLATE_FIELDS];
        let (mut n, mut message, mut event): (usize, &[u8], Option<&[u8]>) = (0, b"", None);
        for item in Items::with_fields(buf, origin_fields(entry.origin)) {
            match item {
                Item::Message(m) => message = m,
                Item::Event(e) => event = Some(e),
                Item::Field(name, v) => {
                    match (t.shape.get(n), values.get_mut(n)) {
                        (Some((kind, expected)), Some(slot))
                            if *kind == kind_of(v) && **expected == *name =>
                        {
                            *slot = v;
                        }
                        _ => return false,
                    }
                    n += 1;
                }
                Item::Target(_) | Item::File(_) | Item::Line(_) => return false,
            }
        }
        if n != t.shape.len() {
            return false;
        }
        match event {
            None if entry.level == t.level => {
                self.write_head(entry, out);
                out.extend_from_slice(&t.middle);
                write_message(out, message);
            }
            _ => self.write_top(entry, event, origin_target(entry.origin), message, out),
        }
        let meta_start = out.len();
        for (literal, i) in &t.parts {
            out.extend_from_slice(literal);
            if let Some(v) = values.get(*i) {
                write_plain_value(out, *v);
            }
        }
        out.extend_from_slice(&t.tail);
        // The size limit depends on the values: an oversized `meta` takes the full path,
        // which cuts it. (What was written beyond `meta` itself: its key and the line's end.)
        out.len() - meta_start <= MAX_META_BYTES + META_KEY.len() + 2
    }

    /// `{"id":...,"ts":...,"service":...,"level":...,"event":...,"message":...` for `entry`.
    fn write_top(
        &mut self,
        entry: &CapturedRecordRef<'_>,
        event: Option<&[u8]>,
        target: &[u8],
        message: &[u8],
        out: &mut Vec<u8>,
    ) {
        self.write_head(entry, out);
        self.write_middle(
            entry.level,
            event.unwrap_or_else(|| default_event(entry.origin, target)),
            out,
        );
        write_message(out, message);
    }

    /// `{"id":"<uuid>","ts":"<timestamp>` in one fixed-size copy.
    #[inline]
    fn write_head(&mut self, entry: &CapturedRecordRef<'_>, out: &mut Vec<u8>) {
        let mut head = [0u8; HEAD_LEN];
        head[..7].copy_from_slice(b"{\"id\":\"");
        if let Some((id, _)) = head[7..].split_first_chunk_mut::<36>() {
            json::uuid_text(id, entry.id);
        }
        head[43..51].copy_from_slice(b"\",\"ts\":\"");
        self.ts.text(&mut head[51..], entry.ts_ms);
        out.reserve(HEAD_LEN + 256 + entry.items.len());
        out.extend_from_slice(&head);
    }

    /// `","service":...,"level":...,"event":<event>,"message":`.
    fn write_middle(&self, level: Level, event: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.middles[level_index(level)]);
        write_event(out, event);
        out.extend_from_slice(b",\"message\":");
    }

    /// The full path; returns the template for the record's callsite when one can repeat it.
    fn encode_full(
        &mut self,
        entry: &CapturedRecordRef<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Template> {
        self.slots.clear();
        self.slots.extend_from_slice(&self.static_slots);
        self.keys.truncate(self.static_keys);
        self.synth.clear();
        let buf = entry.items;
        let mut target = origin_target(entry.origin);
        let (mut file, mut line) = match entry.origin {
            Origin::Tracing(m) => (m.file().map(str::as_bytes), m.line()),
            Origin::Log | Origin::Internal(_) => (None, None),
        };
        let mut message: &[u8] = b"";
        let mut event: Option<&[u8]> = None;
        let mut order = FIRST_FIELD_ORDER;
        let mut shape = Vec::new();
        let mut repeatable = callsite_key(entry.origin) != 0;
        for item in Items::with_fields(buf, origin_fields(entry.origin)) {
            match item {
                Item::Message(m) => message = m,
                Item::Event(e) => event = Some(e),
                Item::Target(t) => (target, repeatable) = (t, false),
                Item::File(f) => (file, repeatable) = (Some(f), false),
                Item::Line(l) => (line, repeatable) = (Some(l), false),
                Item::Field(name, v) => {
                    order += 1;
                    repeatable &= self.field(name, v, buf, order);
                    if repeatable {
                        shape.push((kind_of(v), Box::<[u8]>::from(name)));
                    }
                }
            }
        }
        if self.with_target {
            let v = self.synth_str(|o| o.extend_from_slice(target));
            self.push(b"target", v, 1);
        }
        if self.with_location {
            if let Some(f) = file {
                let v = self.synth_str(|o| o.extend_from_slice(f));
                self.push(b"file", v, 1);
            }
            if let Some(l) = line {
                self.push(b"line", SlotValue::U64(u64::from(l)), 1);
            }
        }
        self.write_top(entry, event, target, message, out);

        if self.slots.is_empty() {
            out.extend_from_slice(b"}\n");
            return repeatable
                .then(|| self.new_template(entry, shape, Vec::new(), b"}\n".to_vec()));
        }
        let (keys, slots) = (&self.keys, &mut self.slots);
        let cmp = |a: &Slot, b: &Slot| {
            key_cmp(a.key.bytes(keys, buf), b.key.bytes(keys, buf)).then(a.order.cmp(&b.order))
        };
        if slots.len() <= SMALL_SORT {
            // Usually a handful of fields, often in order already.
            for i in 1..slots.len() {
                let mut j = i;
                while j > 0 && cmp(&slots[j], &slots[j - 1]).is_lt() {
                    slots.swap(j, j - 1);
                    j -= 1;
                }
            }
        } else {
            slots.sort_by(cmp);
        }
        // On a repeated key the last (highest order) wins.
        let mut w = 0;
        for r in 0..slots.len() {
            let here = slots[r].key.bytes(keys, buf);
            let last_of_run = slots
                .get(r + 1)
                .is_none_or(|next| next.key.bytes(keys, buf) != here);
            if last_of_run {
                slots[w] = slots[r];
                w += 1;
            }
        }
        repeatable &= w == slots.len() && shape.len() <= MAX_TEMPLATE_FIELDS;
        slots.truncate(w);
        out.extend_from_slice(META_KEY);
        let start = out.len();
        self.write_meta(out, buf);
        if out.len() - start > MAX_META_BYTES {
            out.truncate(start);
            self.shrink_meta(buf);
            self.write_meta(out, buf);
            repeatable = false;
        }
        out.extend_from_slice(b"}\n");
        repeatable.then(|| self.template(shape, entry))
    }

    /// A template for `rec`'s callsite, with what goes between the timestamp and the message
    /// for its records at `rec`'s level without an `event` field.
    fn new_template(
        &self,
        rec: &CapturedRecordRef<'_>,
        shape: Vec<(Kind, Box<[u8]>)>,
        parts: Vec<(Vec<u8>, usize)>,
        tail: Vec<u8>,
    ) -> Template {
        let mut middle = Vec::new();
        let target = origin_target(rec.origin);
        self.write_middle(rec.level, default_event(rec.origin, target), &mut middle);
        Template {
            shape,
            level: rec.level,
            middle,
            parts,
            tail,
        }
    }

    /// The template of the `meta` just written (its slots sorted, none repeated): keys and
    /// every value that is not a field's own become literal bytes.
    fn template(&self, shape: Vec<(Kind, Box<[u8]>)>, rec: &CapturedRecordRef<'_>) -> Template {
        let entry = rec.items;
        let mut parts = Vec::with_capacity(self.slots.len());
        let mut literal = META_KEY.to_vec();
        literal.push(b'{');
        for (i, s) in self.slots.iter().enumerate() {
            if i > 0 {
                literal.push(b',');
            }
            json::string(&mut literal, s.key.bytes(&self.keys, entry));
            literal.push(b':');
            match s.order.checked_sub(FIRST_FIELD_ORDER + 1) {
                Some(field) => parts.push((std::mem::take(&mut literal), field as usize)),
                None => self.write_value(&mut literal, entry, s.val),
            }
        }
        literal.extend_from_slice(b"}}\n");
        self.new_template(rec, shape, parts, literal)
    }

    fn str_bytes<'a>(&'a self, entry: &'a [u8], src: StrSource, a: u32, b: u32) -> &'a [u8] {
        match src {
            StrSource::Items => slice(entry, a, b),
            StrSource::Synth => slice(&self.synth, a, b),
        }
    }

    fn write_value(&self, out: &mut Vec<u8>, entry: &[u8], v: SlotValue) {
        match v {
            SlotValue::I64(n) => json::int(out, n),
            SlotValue::U64(n) => json::int(out, n),
            SlotValue::F64(n) => json::float(out, n),
            SlotValue::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            SlotValue::Str(src, a, b) => json::string(out, self.str_bytes(entry, src, a, b)),
            SlotValue::Static(i) => match self.statics.get(i as usize) {
                Some((_, j)) => out.extend_from_slice(j),
                None => out.extend_from_slice(b"null"),
            },
        }
    }

    fn write_meta(&self, out: &mut Vec<u8>, entry: &[u8]) {
        out.push(b'{');
        for (i, s) in self.slots.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::string(out, s.key.bytes(&self.keys, entry));
            out.push(b':');
            self.write_value(out, entry, s.val);
        }
        out.push(b'}');
    }

    fn rendered_len(&mut self, entry: &[u8], s: Slot) -> usize {
        let mut tmp = std::mem::take(&mut self.tmp);
        tmp.clear();
        self.write_value(&mut tmp, entry, s.val);
        let n = tmp.len() + json::string_len(s.key.bytes(&self.keys, entry)) + 2;
        self.tmp = tmp;
        n
    }

    /// Cuts the longest string values (then drops the largest fields) until `meta` fits in
    /// `MAX_META_BYTES`. Rare: only fields of many kilobytes get here.
    fn shrink_meta(&mut self, entry: &[u8]) {
        const MIN_CUT: usize = 64;
        loop {
            let sizes: Vec<usize> = (0..self.slots.len())
                .map(|i| self.rendered_len(entry, self.slots[i]))
                .collect();
            let total: usize = 2 + sizes.iter().sum::<usize>();
            if total <= MAX_META_BYTES || self.slots.is_empty() {
                return;
            }
            let longest_str = (0..self.slots.len())
                .filter_map(|i| match self.slots[i].val {
                    SlotValue::Str(src, a, b) if (b - a) as usize > MIN_CUT => Some((i, src, a, b)),
                    _ => None,
                })
                .max_by_key(|(_, _, a, b)| b - a);
            match longest_str {
                Some((i, src, a, b)) => {
                    let text = self.str_bytes(entry, src, a, b).to_vec();
                    let mut keep = text.len() / 2;
                    while keep > 0 && (text[keep] & 0xc0) == 0x80 {
                        keep -= 1;
                    }
                    let v = self.synth_str(|o| {
                        o.extend_from_slice(&text[..keep]);
                        o.extend_from_slice(TRUNCATION_MARKER.as_bytes());
                    });
                    self.slots[i].val = v;
                }
                None => {
                    let (i, _) = sizes
                        .iter()
                        .enumerate()
                        .max_by_key(|(_, n)| **n)
                        .unwrap_or((0, &0));
                    self.slots.remove(i);
                }
            }
        }
    }
}

/// `meta`'s key, after the message.
const META_KEY: &[u8] = b",\"meta\":";
/// Slot order of static fields is 0, of target and location 1; fields count up from here.
const FIRST_FIELD_ORDER: u32 = 2;
/// Templates kept (direct-mapped: two callsites on one slot take turns).
const TEMPLATES: usize = 256;
/// Fields a template covers at most.
const MAX_TEMPLATE_FIELDS: usize = 32;

/// A value's kind, as far as a template cares (both booleans are one kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    I64,
    U64,
    F64,
    Bool,
    Str,
    Wide,
}

fn kind_of(v: Value<'_>) -> Kind {
    match v {
        Value::I64(_) => Kind::I64,
        Value::U64(_) => Kind::U64,
        Value::F64(_) => Kind::F64,
        Value::Bool(_) => Kind::Bool,
        Value::Str(_) => Kind::Str,
        Value::I128(_) | Value::U128(_) => Kind::Wide,
    }
}

/// How a callsite's `meta` is written: literal bytes (`,"meta":{"key":`, static values,
/// commas) and, between them, the values of its fields.
#[derive(Debug)]
struct Template {
    /// The fields it applies to, in capture order: kind and name.
    shape: Vec<(Kind, Box<[u8]>)>,
    /// The level of the callsite's records, and what goes between their timestamp and
    /// message (service, level and the event the callsite implies) when they have that level
    /// and no `event` field.
    level: Level,
    middle: Vec<u8>,
    /// Literal bytes, then the value of the field at this capture position.
    parts: Vec<(Vec<u8>, usize)>,
    /// Literal bytes after the last field, the record's closing brace and newline included.
    tail: Vec<u8>,
}

/// What identifies a callsite: its static metadata's address (0: none).
fn callsite_key(origin: Origin) -> usize {
    match origin {
        Origin::Tracing(m) => std::ptr::from_ref(m) as usize,
        Origin::Internal(name) => name.as_ptr() as usize,
        Origin::Log => 0,
    }
}

fn template_index(callsite: usize) -> usize {
    ((callsite >> 3) ^ (callsite >> 11)) % TEMPLATES
}

/// The fields of an event's callsite, which names given by index refer to.
fn origin_fields(origin: Origin) -> Option<&'static tracing::field::FieldSet> {
    match origin {
        Origin::Tracing(m) => Some(m.fields()),
        Origin::Log | Origin::Internal(_) => None,
    }
}

/// The `target` of an origin before any item overrides it.
fn origin_target(origin: Origin) -> &'static [u8] {
    match origin {
        Origin::Tracing(m) => m.target().as_bytes(),
        Origin::Log => b"log",
        Origin::Internal(_) => b"faultline_logger",
    }
}

/// A field's value as the full path writes a field that went in as it is.
fn write_plain_value(out: &mut Vec<u8>, v: Value<'_>) {
    match v {
        Value::I64(n) => json::int(out, n),
        Value::U64(n) => json::int(out, n),
        Value::F64(n) => json::float(out, n),
        Value::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Value::Str(s) => json::string(out, s),
        // Never in a template (written as a number or as text depending on the value).
        Value::I128(_) | Value::U128(_) => out.extend_from_slice(b"null"),
    }
}

/// Fields sorted by insertion up to this many; `sort_by` beyond.
const SMALL_SORT: usize = 32;

/// Orders byte strings as `Ord for [u8]` does, comparing the first eight bytes as one
/// number (keys are short, and a call to `memcmp` per comparison was a visible cost).
#[inline]
fn key_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let word = |s: &[u8]| match s.first_chunk::<8>() {
        Some(w) => u64::from_be_bytes(*w),
        None => faultline_schema::short_word(s).swap_bytes(),
    };
    match word(a).cmp(&word(b)) {
        // Zero padding makes "ab" and "ab\0" equal words: past the word, or by length.
        std::cmp::Ordering::Equal if a.len() > 8 && b.len() > 8 => a[8..].cmp(&b[8..]),
        std::cmp::Ordering::Equal => a.len().cmp(&b.len()),
        other => other,
    }
}

/// The text of a non-string value, for keys that must hold strings.
fn text_of(v: Value<'_>) -> String {
    match v {
        Value::Str(s) => String::from_utf8_lossy(s).into_owned(),
        Value::I64(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::I128(n) => n.to_string(),
        Value::U128(n) => n.to_string(),
        Value::F64(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
    }
}

fn slice(b: &[u8], start: u32, end: u32) -> &[u8] {
    b.get(start as usize..end as usize).unwrap_or_default()
}

/// A string inside the captured items as a range.
fn entry_str(entry: &[u8], s: &[u8], base: usize) -> SlotValue {
    let start = (s.as_ptr() as usize).wrapping_sub(base);
    if start <= entry.len() && start + s.len() <= entry.len() {
        SlotValue::Str(StrSource::Items, u32_of(start), u32_of(start + s.len()))
    } else {
        SlotValue::Str(StrSource::Items, 0, 0)
    }
}

/// The event of a record without an `event` field: the callsite's own name (tracing's
/// `name:`) or internal name, else the target.
fn default_event(origin: Origin, target: &[u8]) -> &[u8] {
    match origin {
        Origin::Internal(name) => name.as_bytes(),
        Origin::Tracing(m) if !is_generated_name(m.name()) => m.name().as_bytes(),
        _ => target,
    }
}

/// `event`: 1 to `MAX_EVENT_CHARS` characters without control characters.
fn write_event(out: &mut Vec<u8>, event: &[u8]) {
    let clean = !event.is_empty()
        && event.len() <= MAX_EVENT_CHARS
        && event.iter().all(|&b| (0x20..0x7f).contains(&b));
    if clean {
        json::string(out, event);
        return;
    }
    let text = String::from_utf8_lossy(event);
    let mut fixed: String = text
        .chars()
        .take(MAX_EVENT_CHARS)
        .map(|c| if c.is_control() { '_' } else { c })
        .collect();
    if fixed.is_empty() {
        fixed.push_str("log");
    }
    json::string(out, fixed.as_bytes());
}

/// `message`: NUL replaced, then cut to `MAX_MESSAGE_BYTES` with the marker.
fn write_message(out: &mut Vec<u8>, message: &[u8]) {
    // `json::string` replaces NUL itself; only a message that replacing NUL (one byte to
    // three) could take past the limit needs the check.
    if message.len() <= MAX_MESSAGE_BYTES / 3
        || (message.len() <= MAX_MESSAGE_BYTES && !message.contains(&0))
    {
        json::string(out, message);
        return;
    }
    let mut text = String::from_utf8_lossy(message).replace('\0', "\u{FFFD}");
    truncate_message(&mut text);
    json::string(out, text.as_bytes());
}

/// Bytes of `{"id":"<uuid>","ts":"<timestamp>`.
const HEAD_LEN: usize = 7 + 36 + 8 + 24;

/// Where a level's entry is in `Encoder::middles`.
pub(crate) fn level_index(level: Level) -> usize {
    match level {
        Level::Debug => 0,
        Level::Info => 1,
        Level::Warning => 2,
        Level::Error => 3,
        Level::Critical => 4,
    }
}

/// The level of a `tracing` level: `TRACE` is `DEBUG` in the record contract.
pub(crate) fn level_of(level: &tracing::Level) -> Level {
    match *level {
        tracing::Level::ERROR => Level::Error,
        tracing::Level::WARN => Level::Warning,
        tracing::Level::INFO => Level::Info,
        _ => Level::Debug,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{
        CapturedRecord, put_fmt, put_name, put_str, put_str_field, put_u64_field, tag,
    };
    use faultline_schema::Record;

    fn config() -> RecordConfig {
        RecordConfig {
            service: "api".into(),
            statics: vec![
                ("environment".into(), "prod".into()),
                ("release".into(), "1.2.3".into()),
            ],
            user_salt: Some("salt".into()),
            with_target: true,
            with_location: false,
        }
    }

    fn entry(build: impl FnOnce(&mut Vec<u8>)) -> CapturedRecord {
        let mut e = CapturedRecord::new(Level::Info, Origin::Internal("test_event"));
        e.ts_ms = 1_782_909_296_789;
        build(&mut e.buf);
        e
    }

    fn encode(e: &CapturedRecord) -> (String, Record) {
        let mut enc = Encoder::new(&config());
        let mut out = Vec::new();
        enc.encode(&e.borrowed(), &mut out);
        // Again: the second time through the callsite's template, when it made one.
        let mut again = Vec::new();
        enc.encode(&e.borrowed(), &mut again);
        assert_eq!(
            String::from_utf8_lossy(&again),
            String::from_utf8_lossy(&out),
            "the template path wrote other bytes"
        );
        let line = String::from_utf8(out).unwrap();
        assert!(line.ends_with('\n'));
        let record = Record::from_json(line.trim_end().as_bytes())
            .unwrap_or_else(|err| panic!("{line}: {err}"));
        // The line is exactly what the schema crate writes for the record it parses to.
        assert_eq!(record.to_json(), line.trim_end());
        (line, record)
    }

    #[test]
    fn a_plain_event_is_a_valid_record_with_sorted_meta() {
        let e = entry(|b| {
            b.push(tag::MESSAGE);
            put_fmt(b, format_args!("request {} done", 7));
            put_name(b, tag::I64, "status");
            b.extend_from_slice(&200i64.to_le_bytes());
            put_name(b, tag::F64, "latency_ms");
            b.extend_from_slice(&12.5f64.to_le_bytes());
            put_name(b, tag::TRUE, "cached");
            put_str_field(b, "path", "/api/\"x\"\n");
        });
        let (_, r) = encode(&e);
        assert_eq!(r.service, "api");
        assert_eq!(r.event, "test_event");
        assert_eq!(r.message, "request 7 done");
        assert_eq!(r.id, Some(uuid::Uuid::from_u128(e.id)));
        assert_eq!(r.ts.unix_millis(), 1_782_909_296_789);
        assert_eq!(r.meta["status"], 200);
        assert_eq!(r.meta["latency_ms"], 12.5);
        assert_eq!(r.meta["cached"], true);
        assert_eq!(r.meta["path"], "/api/\"x\"\n");
        assert_eq!(r.meta["environment"], "prod");
        assert_eq!(r.meta["target"], "faultline_logger");
    }

    #[test]
    fn inner_fields_win_over_outer_ones_and_statics() {
        let e = entry(|b| {
            put_str_field(b, "request", "outer");
            put_str_field(b, "trace_id", "aaaa");
            put_str_field(b, "request", "inner");
            put_str_field(b, "environment", "canary");
        });
        let (_, r) = encode(&e);
        assert_eq!(r.meta["request"], "inner");
        assert_eq!(r.meta["environment"], "canary");
        assert_eq!(r.meta["trace_id"], "aaaa");
    }

    #[test]
    fn reserved_keys_get_their_types() {
        let e = entry(|b| {
            put_u64_field(b, "trace_id", 42);
            put_str_field(b, "user", "alice@example.com");
            put_str_field(b, "stack", "at main.rs:1");
            put_name(b, tag::I64, "count");
            b.extend_from_slice(&(-3i64).to_le_bytes());
            put_name(b, tag::I128, "big");
            b.extend_from_slice(&(i128::MAX).to_le_bytes());
        });
        let (_, r) = encode(&e);
        assert_eq!(r.meta["trace_id"], "42");
        assert_eq!(r.meta["user"], anonymize_user("salt", "alice@example.com"));
        assert_eq!(r.meta["stack_text"], "at main.rs:1");
        assert!(r.meta.get("stack").is_none());
        assert_eq!(r.meta["count_value"], -3);
        assert_eq!(r.meta["big"], i128::MAX.to_string());

        let already = anonymize_user("other", "bob");
        let e = entry(|b| {
            put_str_field(b, "user", &already);
            put_u64_field(b, "count", 3);
        });
        let (_, r) = encode(&e);
        assert_eq!(r.meta["user"], already.as_str(), "anonymized ids are kept");
        assert_eq!(r.meta["count"], 3);
    }

    #[test]
    fn traceparent_becomes_trace_and_span_ids() {
        let e = entry(|b| {
            put_str_field(
                b,
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            );
        });
        let (_, r) = encode(&e);
        assert_eq!(r.meta["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(r.meta["span_id"], "00f067aa0ba902b7");
        assert!(r.meta.get("traceparent").is_none());
    }

    #[test]
    fn oversized_and_dirty_text_is_made_valid() {
        let long = "x".repeat(20_000);
        let e = entry(|b| {
            b.push(tag::MESSAGE);
            put_str(b, &format!("a\0b{long}"));
            b.push(tag::EVENT);
            put_str(b, &format!("bad\nevent{}", "e".repeat(300)));
            put_str_field(b, "blob", &"y".repeat(40_000));
            put_str_field(b, "other", &"z".repeat(10_000));
            put_str_field(b, "nul\0key", "v\0");
        });
        let (line, r) = encode(&e);
        assert!(r.message.starts_with("a\u{FFFD}b"));
        assert!(r.message.ends_with(TRUNCATION_MARKER));
        assert!(r.message.len() <= MAX_MESSAGE_BYTES);
        assert!(r.event.starts_with("bad_event"));
        assert_eq!(r.event.chars().count(), MAX_EVENT_CHARS);
        assert!(
            r.meta["blob"]
                .as_str()
                .unwrap()
                .ends_with(TRUNCATION_MARKER)
        );
        assert_eq!(r.meta["nul\u{FFFD}key"], "v\u{FFFD}");
        assert!(line.len() < 40_000);
        assert!(serde_json::to_string(&r.meta).unwrap().len() <= MAX_META_BYTES);
    }

    #[test]
    fn empty_and_control_events_fall_back() {
        let e = entry(|b| {
            b.push(tag::EVENT);
            put_str(b, "");
        });
        let (_, r) = encode(&e);
        assert_eq!(r.event, "log");
    }

    /// The full path's bytes for `e` (a fresh encoder has no template).
    fn full(e: &CapturedRecord) -> Vec<u8> {
        let mut out = Vec::new();
        Encoder::new(&config()).encode(&e.borrowed(), &mut out);
        out
    }

    #[test]
    fn a_callsite_template_writes_what_the_full_path_writes() {
        let mut enc = Encoder::new(&config());
        let record = |n: i64, path: &str, ok: bool, ratio: f64| {
            entry(|b| {
                b.push(tag::MESSAGE);
                put_str(b, "order placed");
                put_name(b, tag::I64, "order_id");
                b.extend_from_slice(&n.to_le_bytes());
                put_str_field(b, "path", path);
                put_name(b, if ok { tag::TRUE } else { tag::FALSE }, "ok");
                put_name(b, tag::F64, "ratio");
                b.extend_from_slice(&ratio.to_le_bytes());
            })
        };
        let huge = "x".repeat(MAX_META_BYTES + 100);
        let cases = [
            record(1, "/api/orders", true, 0.5),
            record(-7, "quote \" tab \t nul \0 é", false, f64::NAN),
            record(i64::MAX, "", true, -0.0),
            // Over the meta limit: cut as the full path cuts it.
            record(3, &huge, true, 1.0),
            record(4, "/back/to/normal", false, 1e300),
        ];
        for e in &cases {
            let mut out = Vec::new();
            enc.encode(&e.borrowed(), &mut out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&full(e))
            );
        }
        // Another shape at the same callsite (a field more, a reserved key, a repeated key,
        // a 128-bit number), then the first shape again.
        let other = [
            entry(|b| put_str_field(b, "path", "/a")),
            entry(|b| {
                put_str_field(b, "path", "/a");
                put_str_field(b, "user", "alice");
            }),
            entry(|b| {
                put_str_field(b, "path", "/a");
                put_str_field(b, "path", "/b");
            }),
            entry(|b| {
                put_name(b, tag::U128, "big");
                b.extend_from_slice(&u128::MAX.to_le_bytes());
            }),
            entry(|b| put_str_field(b, "release", "overrides the static field")),
            record(5, "/again", true, 2.0),
            // The template's shape with an `event` of its own, and at another level: the
            // template's event and level parts do not apply.
            {
                let mut e = record(6, "/with/event", true, 3.0);
                e.buf.push(tag::EVENT);
                put_str(&mut e.buf, "order.placed");
                e
            },
            {
                let mut e = record(7, "/louder", false, 4.0);
                e.level = Level::Error;
                e
            },
            record(8, "/and/back", true, 5.0),
        ];
        for e in other.iter().chain(&cases).chain(&other) {
            let mut out = Vec::new();
            enc.encode(&e.borrowed(), &mut out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&full(e))
            );
        }
    }

    #[test]
    fn keys_sort_as_byte_strings_do() {
        let keys: Vec<&[u8]> = vec![
            b"",
            b"a",
            b"ab",
            b"ab\0",
            b"ab\0\0\0\0\0\0",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefghi",
            b"abcdefgi",
            b"abcdefgh_long_tail",
            b"b",
            b"\xff",
            b"z\xffy",
            b"user",
            b"user_agent",
            b"url",
        ];
        for a in &keys {
            for b in &keys {
                assert_eq!(key_cmp(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn levels_map_to_the_record_contract() {
        assert_eq!(level_of(&tracing::Level::TRACE), Level::Debug);
        assert_eq!(level_of(&tracing::Level::DEBUG), Level::Debug);
        assert_eq!(level_of(&tracing::Level::INFO), Level::Info);
        assert_eq!(level_of(&tracing::Level::WARN), Level::Warning);
        assert_eq!(level_of(&tracing::Level::ERROR), Level::Error);
    }
}
