//! What a call site captures: a compact owned copy of one event, cheap to build and to move
//! through a queue, with all serialization left to the worker.
//!
//! A record is the time, a UUIDv7, the level, where it came from (`&'static` tracing
//! metadata, so target and name cost nothing), and the fields encoded into bytes: on the
//! hot path into the thread's reused scratch buffer, from which they are copied into the
//! thread's ring ([`crate::ring`]); otherwise into a [`CapturedRecord`] of its own. Field
//! encoding is a tag byte, the field name (for an event's own fields, its index in the
//! callsite's field set), and the raw value (`i64` as 8 bytes, strings as a length and the
//! bytes): no JSON escaping, number formatting or allocation on the caller.

use std::cell::Cell;
use std::fmt::{self, Write as _};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use faultline_schema::Level;
use tracing::field::{Field, FieldSet, Visit};

/// Longest field name kept (longer ones are cut on a character boundary).
const MAX_NAME: usize = 255;

/// Tags of encoded items. Named items are `tag, name length (u8), name, value` or, with
/// [`tag::INDEXED`], `tag, index (u8), value`; the others are `tag, value`. Strings are a
/// little-endian `u32` length and UTF-8 bytes.
pub(crate) mod tag {
    pub(crate) const I64: u8 = 1;
    pub(crate) const U64: u8 = 2;
    pub(crate) const F64: u8 = 3;
    pub(crate) const TRUE: u8 = 4;
    pub(crate) const FALSE: u8 = 5;
    pub(crate) const STR: u8 = 6;
    pub(crate) const I128: u8 = 7;
    pub(crate) const U128: u8 = 8;
    /// The event's message (no name).
    pub(crate) const MESSAGE: u8 = 16;
    /// The event's `event` field, its machine key (no name).
    pub(crate) const EVENT: u8 = 17;
    /// A `log` record's target (no name).
    pub(crate) const TARGET: u8 = 18;
    /// A `log` record's source file (no name).
    pub(crate) const FILE: u8 = 19;
    /// A `log` record's source line, a `u32` (no name).
    pub(crate) const LINE: u8 = 20;
    /// Set on a named item's tag when the name is its index (one byte) in the event's own
    /// callsite's fields instead of spelled out: the worker looks the name up in the
    /// metadata, and the call site copies two bytes, not the name.
    pub(crate) const INDEXED: u8 = 0x80;
}

/// Where a captured record came from; decides the default `event` key and the `target`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Origin {
    /// A `tracing` event.
    Tracing(&'static tracing::Metadata<'static>),
    /// A `log` record: target, file and line are items in the buffer.
    Log,
    /// Written by the logger itself (heartbeat, drop report, panic): the event key.
    Internal(&'static str),
}

/// One captured record on its way to an output, owning its items: what goes through an
/// output's shared channel or a ring's side queue, and what the logger writes itself.
#[derive(Clone, Debug)]
pub(crate) struct CapturedRecord {
    /// Nanoseconds on the monotonic clock when captured (see [`now`]), for the lag.
    pub(crate) mono: u64,
    /// Milliseconds since the Unix epoch, the record's `ts`.
    pub(crate) ts_ms: i64,
    /// The record's id, a UUIDv7 chosen here so that every output and every retry carries the
    /// same one.
    pub(crate) id: u128,
    pub(crate) level: Level,
    pub(crate) origin: Origin,
    /// Encoded items: span fields from the outermost span in, then the event's own.
    pub(crate) buf: Vec<u8>,
}

/// A captured record by reference, as the rings take it in and the encoder reads it: a
/// [`CapturedRecord`]'s fields, with its items wherever they are (a thread's scratch buffer,
/// a [`CapturedRecord`]'s own, or a worker's copy out of a ring).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CapturedRecordRef<'a> {
    pub(crate) mono: u64,
    pub(crate) ts_ms: i64,
    pub(crate) id: u128,
    pub(crate) level: Level,
    pub(crate) origin: Origin,
    pub(crate) items: &'a [u8],
}

impl CapturedRecord {
    /// An owned copy of `rec`.
    pub(crate) fn from_ref(rec: &CapturedRecordRef<'_>) -> CapturedRecord {
        CapturedRecord {
            mono: rec.mono,
            ts_ms: rec.ts_ms,
            id: rec.id,
            level: rec.level,
            origin: rec.origin,
            buf: rec.items.to_vec(),
        }
    }

    /// The record by reference, as the rings and the encoder take it.
    pub(crate) fn borrowed(&self) -> CapturedRecordRef<'_> {
        CapturedRecordRef {
            mono: self.mono,
            ts_ms: self.ts_ms,
            id: self.id,
            level: self.level,
            origin: self.origin,
            items: self.buf.as_slice(),
        }
    }

    /// A new record stamped now, with no items yet.
    pub(crate) fn new(level: Level, origin: Origin) -> CapturedRecord {
        let (mono, ts_ms) = now();
        CapturedRecord {
            mono,
            ts_ms,
            id: uuid_v7(ts_ms),
            level,
            origin,
            buf: Vec::new(),
        }
    }
}

/// The process-wide clock: one read of the CPU's time-stamp counter (through `quanta`,
/// which calibrates it against the monotonic clock once, and uses the monotonic clock
/// itself where the counter is not invariant) gives both the enqueue instant for lag
/// measurement and, through an offset the workers re-measure every second, the wall time.
/// The counter costs about half of `Instant::now()`.
struct Clock {
    counter: quanta::Clock,
    /// The counter's reading at the origin.
    origin: u64,
    /// Wall-clock nanoseconds since the Unix epoch minus nanoseconds since `origin`.
    offset_ns: AtomicI64,
}

fn clock() -> &'static Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    CLOCK.get_or_init(|| {
        let counter = quanta::Clock::new();
        let origin = counter.raw();
        Clock {
            counter,
            origin,
            offset_ns: AtomicI64::new(wall_ns()),
        }
    })
}

/// Calibrates the clock (up to a few milliseconds, once per process), so the first record
/// does not wait for it.
pub(crate) fn start_clock() {
    clock();
}

fn wall_ns() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

impl Clock {
    #[inline]
    fn mono(&self) -> u64 {
        self.counter.delta_as_nanos(self.origin, self.counter.raw())
    }
}

/// Nanoseconds since the process clock's origin.
pub(crate) fn mono_now() -> u64 {
    clock().mono()
}

/// (monotonic nanoseconds, wall-clock milliseconds since the Unix epoch).
#[inline]
pub(crate) fn now() -> (u64, i64) {
    let c = clock();
    let mono = c.mono();
    let wall = c
        .offset_ns
        .load(Ordering::Relaxed)
        .saturating_add(i64::try_from(mono).unwrap_or(i64::MAX));
    // After 1970 (always, but for a wildly wrong clock) an unsigned division, which is
    // cheaper than the signed one; the quotient is below 2^45.
    let ms = match u64::try_from(wall) {
        Ok(w) => (w / 1_000_000) as i64,
        Err(_) => wall.div_euclid(1_000_000),
    };
    (mono, ms)
}

/// Re-measures the wall clock against the monotonic one, so a wall-clock step (NTP) shows in
/// timestamps within a worker's recalibration interval, and the counter's calibration error
/// never builds up.
pub(crate) fn recalibrate() {
    let c = clock();
    let mono = i64::try_from(c.mono()).unwrap_or(i64::MAX);
    c.offset_ns
        .store(wall_ns().saturating_sub(mono), Ordering::Relaxed);
}

thread_local! {
    /// wyrand state; 0 means not seeded yet.
    static RNG: Cell<u64> = const { Cell::new(0) };
}

fn seed() -> u64 {
    match getrandom::u64() {
        Ok(s) if s != 0 => s,
        // No OS randomness: mix the time and this thread's stack address, which differ
        // between threads and processes.
        _ => {
            let local = 0u8;
            let addr = std::ptr::addr_of!(local) as u64;
            (wall_ns() as u64 ^ addr.rotate_left(32)) | 1
        }
    }
}

/// Two fast per-thread random numbers (wyrand, seeded from the OS once per thread) at the
/// cost of one thread-local access.
fn random_pair() -> (u64, u64) {
    RNG.with(|state| {
        let mut s = state.get();
        if s == 0 {
            s = seed();
        }
        let mut next = || {
            s = s.wrapping_add(0xa076_1d64_78bd_642f);
            let t = u128::from(s).wrapping_mul(u128::from(s ^ 0xe703_7ed1_a0b4_28db));
            ((t >> 64) ^ t) as u64
        };
        let pair = (next(), next());
        state.set(s);
        pair
    })
}

/// A fast per-thread random number (wyrand, seeded from the OS once per thread).
pub(crate) fn random_u64() -> u64 {
    random_pair().0
}

/// A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Time-ordered, so
/// the store's `(ts, id)` key grows at its right edge.
pub(crate) fn uuid_v7(ts_ms: i64) -> u128 {
    let (a, b) = random_pair();
    uuid_v7_with(ts_ms, (u128::from(a) << 64) | u128::from(b))
}

/// A UUIDv7 for `ts_ms` whose 74 bits after the time are taken from `bits` (12 from bits
/// 64-75, 62 from bits 0-61).
#[inline]
pub(crate) fn uuid_v7_with(ts_ms: i64, bits: u128) -> u128 {
    let ts = u128::from(u64::try_from(ts_ms).unwrap_or(0)) & 0xffff_ffff_ffff;
    let a = (bits >> 64) & 0xfff;
    let b = bits & 0x3fff_ffff_ffff_ffff;
    (ts << 80) | (0x7 << 76) | (a << 64) | (0b10 << 62) | b
}

/// Appends a named item header.
#[inline]
pub(crate) fn put_name(buf: &mut Vec<u8>, tag: u8, name: &str) {
    if name.len() <= MAX_NAME {
        // At most 255.
        buf.extend_from_slice(&[tag, name.len() as u8]);
        buf.extend_from_slice(name.as_bytes());
        return;
    }
    let mut cut = name.len().min(MAX_NAME);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    buf.push(tag);
    // cut <= 255.
    buf.push(cut as u8);
    buf.extend_from_slice(&name.as_bytes()[..cut]);
}

/// Appends a length-prefixed string.
pub(crate) fn put_str(buf: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&s.as_bytes()[..len as usize]);
}

/// Appends a length-prefixed string produced by formatting `args`.
#[inline]
pub(crate) fn put_fmt(buf: &mut Vec<u8>, args: fmt::Arguments<'_>) {
    /// `fmt::Write` into a byte buffer.
    struct Text<'a>(&'a mut Vec<u8>);
    impl fmt::Write for Text<'_> {
        #[inline]
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    // Formatting into bytes cannot fail; a Display impl that errors leaves what it wrote.
    let _ = Text(buf).write_fmt(args);
    let len = u32::try_from(buf.len() - at - 4).unwrap_or(u32::MAX);
    if let Some(l) = buf.get_mut(at..at + 4) {
        l.copy_from_slice(&len.to_le_bytes());
    }
}

/// Records `tracing` fields into a byte buffer. For an event's own fields, `message`, `event`
/// and a `level` naming a Faultline level are taken out as the record's own fields.
pub(crate) struct Capture<'a> {
    pub(crate) buf: &'a mut Vec<u8>,
    /// `Some` for an event (its level may be raised by a `level` field); `None` for a span.
    pub(crate) level: Option<&'a mut Level>,
    /// The event's callsite: its own fields are written by index (`None` for a span).
    pub(crate) callsite: Option<tracing::callsite::Identifier>,
}

impl Capture<'_> {
    fn special(&mut self, field: &Field) -> Option<u8> {
        self.level.as_ref()?;
        match field.name() {
            "message" => Some(tag::MESSAGE),
            "event" => Some(tag::EVENT),
            _ => None,
        }
    }

    /// An event's string field named `message`, `event` or `level`: taken out as the
    /// record's own field (a `level` only when it names a level).
    #[cold]
    #[inline(never)]
    fn reserved_str(&mut self, field: &Field, value: &str) {
        if let Some(t) = self.special(field) {
            self.buf.push(t);
            put_str(self.buf, value);
            return;
        }
        if let Some(level) = &mut self.level
            && let Some(l) = Level::parse(value)
        {
            **level = l;
            return;
        }
        self.named_str(field, value);
    }

    /// A `Debug` value other than an event's message (out of line, so that the message's
    /// path stays small).
    #[inline(never)]
    fn debug_field(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if let Some(t) = self.special(field) {
            self.buf.push(t);
            put_fmt(self.buf, format_args!("{value:?}"));
            return;
        }
        let start = self.buf.len();
        self.named(tag::STR, field);
        let value_at = self.buf.len();
        put_fmt(self.buf, format_args!("{value:?}"));
        if let Some(level) = &mut self.level
            && field.name() == "level"
        {
            let text = self.buf.as_slice().get(value_at + 4..).unwrap_or_default();
            if let Some(l) = std::str::from_utf8(text).ok().and_then(Level::parse) {
                **level = l;
                self.buf.truncate(start);
            }
        }
    }

    /// The index naming `field` in the items. Only a field of the event's own callsite can
    /// be named by index (a span's, or one of an event built by hand from another
    /// callsite's values, is spelled out).
    #[inline]
    fn index(&self, field: &Field) -> Option<u8> {
        match (&self.callsite, u8::try_from(field.index())) {
            (Some(own), Ok(i)) if field.callsite() == *own => Some(i),
            _ => None,
        }
    }

    fn named(&mut self, t: u8, field: &Field) {
        match self.index(field) {
            Some(i) => self.buf.extend_from_slice(&[t | tag::INDEXED, i]),
            None => self.spelled(t, field),
        }
    }

    /// A named item header with the name spelled out: kept out of line, so that the
    /// visitors' usual path (by index) stays small.
    #[cold]
    #[inline(never)]
    fn spelled(&mut self, t: u8, field: &Field) {
        put_name(self.buf, t, field.name());
    }

    /// A named item with an eight-byte value: by index, the header and the value in one
    /// write.
    #[inline]
    fn named_word(&mut self, t: u8, field: &Field, value: [u8; 8]) {
        match self.index(field) {
            Some(i) => {
                let [a, b, c, d, e, f, g, h] = value;
                let item = [t | tag::INDEXED, i, a, b, c, d, e, f, g, h];
                self.buf.extend_from_slice(&item);
            }
            None => {
                self.spelled(t, field);
                self.buf.extend_from_slice(&value);
            }
        }
    }

    /// A named string item: by index, the header and the length in one write.
    #[inline]
    fn named_str(&mut self, field: &Field, value: &str) {
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        match self.index(field) {
            Some(i) => {
                let [a, b, c, d] = len.to_le_bytes();
                self.buf
                    .extend_from_slice(&[tag::STR | tag::INDEXED, i, a, b, c, d]);
            }
            None => {
                self.spelled(tag::STR, field);
                self.buf.extend_from_slice(&len.to_le_bytes());
            }
        }
        self.buf
            .extend_from_slice(value.as_bytes().get(..len as usize).unwrap_or_default());
    }
}

impl Visit for Capture<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.named_word(tag::I64, field, value.to_le_bytes());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.named_word(tag::U64, field, value.to_le_bytes());
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.named(tag::I128, field);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.named(tag::U128, field);
        self.buf.extend_from_slice(&value.to_le_bytes());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.named_word(tag::F64, field, value.to_le_bytes());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.named(if value { tag::TRUE } else { tag::FALSE }, field);
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.level.is_some() && matches!(field.name(), "message" | "event" | "level") {
            self.reserved_str(field, value);
            return;
        }
        self.named_str(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The message: an event's one field that is nearly always there.
        if self.level.is_some() && field.name() == "message" {
            self.buf.push(tag::MESSAGE);
            put_fmt(self.buf, format_args!("{value:?}"));
            return;
        }
        self.debug_field(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.named(tag::STR, field);
        put_fmt(self.buf, format_args!("{}", ErrorChain(value)));
    }
}

/// An error and its sources: `outer: inner: root`.
pub(crate) struct ErrorChain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

/// A decoded field value, borrowing from the buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
    /// UTF-8 text (validated when it was captured from a `&str` or a formatter).
    Str(&'a [u8]),
}

/// A decoded item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Item<'a> {
    Field(&'a [u8], Value<'a>),
    Message(&'a [u8]),
    Event(&'a [u8]),
    Target(&'a [u8]),
    File(&'a [u8]),
    Line(u32),
}

/// Iterates the items of an encoded buffer. Stops at the first malformed byte, which only a
/// bug could produce: never panics on it.
pub(crate) struct Items<'a> {
    rest: &'a [u8],
    /// The fields of the event's callsite, for names given by index.
    fields: Option<&'static FieldSet>,
}

impl<'a> Items<'a> {
    #[cfg(test)]
    pub(crate) fn new(buf: &'a [u8]) -> Items<'a> {
        Items::with_fields(buf, None)
    }

    /// Items of an event from the callsite with `fields`.
    pub(crate) fn with_fields(buf: &'a [u8], fields: Option<&'static FieldSet>) -> Items<'a> {
        Items { rest: buf, fields }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            self.rest = &[];
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.array()?);
        self.take(len as usize)
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = Item<'a>;

    fn next(&mut self) -> Option<Item<'a>> {
        let t = *self.take(1)?.first()?;
        Some(match t {
            tag::MESSAGE => Item::Message(self.string()?),
            tag::EVENT => Item::Event(self.string()?),
            tag::TARGET => Item::Target(self.string()?),
            tag::FILE => Item::File(self.string()?),
            tag::LINE => Item::Line(u32::from_le_bytes(self.array()?)),
            _ => {
                let name: &'a [u8] = if t & tag::INDEXED != 0 {
                    let i = usize::from(*self.take(1)?.first()?);
                    match self.fields.and_then(|f| f.iter().nth(i)) {
                        Some(field) => field.name().as_bytes(),
                        None => {
                            self.rest = &[];
                            return None;
                        }
                    }
                } else {
                    let name_len = usize::from(*self.take(1)?.first()?);
                    self.take(name_len)?
                };
                let value = match t & !tag::INDEXED {
                    tag::I64 => Value::I64(i64::from_le_bytes(self.array()?)),
                    tag::U64 => Value::U64(u64::from_le_bytes(self.array()?)),
                    tag::I128 => Value::I128(i128::from_le_bytes(self.array()?)),
                    tag::U128 => Value::U128(u128::from_le_bytes(self.array()?)),
                    tag::F64 => Value::F64(f64::from_le_bytes(self.array()?)),
                    tag::TRUE => Value::Bool(true),
                    tag::FALSE => Value::Bool(false),
                    tag::STR => Value::Str(self.string()?),
                    _ => {
                        self.rest = &[];
                        return None;
                    }
                };
                Item::Field(name, value)
            }
        })
    }
}

/// Encodes a named string field (used for `log` key-values and the logger's own records).
pub(crate) fn put_str_field(buf: &mut Vec<u8>, name: &str, value: &str) {
    put_name(buf, tag::STR, name);
    put_str(buf, value);
}

/// Encodes a named unsigned field.
pub(crate) fn put_u64_field(buf: &mut Vec<u8>, name: &str, value: u64) {
    put_name(buf, tag::U64, name);
    buf.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip() {
        let mut b = Vec::new();
        put_name(&mut b, tag::I64, "n");
        b.extend_from_slice(&(-5i64).to_le_bytes());
        put_str_field(&mut b, "path", "/api/x");
        b.push(tag::MESSAGE);
        put_fmt(&mut b, format_args!("hello {}", 42));
        put_u64_field(&mut b, "count", 7);
        b.push(tag::LINE);
        b.extend_from_slice(&12u32.to_le_bytes());
        let items: Vec<_> = Items::new(b.as_slice()).collect();
        assert_eq!(
            items,
            vec![
                Item::Field(b"n", Value::I64(-5)),
                Item::Field(b"path", Value::Str(b"/api/x")),
                Item::Message(b"hello 42"),
                Item::Field(b"count", Value::U64(7)),
                Item::Line(12),
            ]
        );
        // Truncated input ends the iteration instead of panicking.
        let cut = &b.as_slice()[..b.len() - 3];
        assert!(Items::new(cut).count() < 5);
    }

    /// Captures each event as the layer does and decodes it against its callsite's fields.
    struct Decoding(std::sync::Mutex<Vec<String>>);

    impl tracing::Subscriber for Decoding {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut buf = Vec::new();
            let mut level = Level::Info;
            event.record(&mut Capture {
                buf: &mut buf,
                level: Some(&mut level),
                callsite: Some(event.metadata().callsite()),
            });
            let fields = event.metadata().fields();
            let items = Items::with_fields(buf.as_slice(), Some(fields)).map(|i| match i {
                Item::Field(name, v) => format!("{}={v:?}", String::from_utf8_lossy(name)),
                other => format!("{other:?}"),
            });
            self.0.lock().unwrap().extend(items);
            // Without the callsite's fields an indexed name cannot be read: the items stop.
            assert!(Items::new(buf.as_slice()).all(|i| !matches!(i, Item::Field(..))));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn an_events_field_names_travel_as_indexes_into_its_callsite() {
        let subscriber = std::sync::Arc::new(Decoding(std::sync::Mutex::new(Vec::new())));
        tracing::subscriber::with_default(subscriber.clone(), || {
            tracing::info!(order_id = 7u64, path = "/api", ok = true, "placed {}", 1);
        });
        let got = subscriber.0.lock().unwrap().clone();
        assert_eq!(
            got,
            [
                "Message([112, 108, 97, 99, 101, 100, 32, 49])",
                "order_id=U64(7)",
                "path=Str([47, 97, 112, 105])",
                "ok=Bool(true)",
            ]
        );
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let name = "é".repeat(200);
        let mut b = Vec::new();
        put_name(&mut b, tag::TRUE, &name);
        let Some(Item::Field(n, _)) = Items::new(b.as_slice()).next() else {
            panic!("no item");
        };
        assert!(n.len() <= MAX_NAME);
        assert!(std::str::from_utf8(n).is_ok());
    }

    #[test]
    fn uuids_are_version_7_and_carry_the_time() {
        let ts = 1_782_909_296_789;
        let a = uuid::Uuid::from_u128(uuid_v7(ts));
        let b = uuid::Uuid::from_u128(uuid_v7(ts));
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        let (secs, nanos) = a.get_timestamp().unwrap().to_unix();
        assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, ts as u64);
    }

    #[test]
    fn clock_tracks_the_wall_clock() {
        recalibrate();
        let (_, ms) = now();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((wall - ms).abs() < 1000, "{wall} vs {ms}");
    }
}
