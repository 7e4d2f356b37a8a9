//! Per-thread queues: each producing thread has its own ring of 64-bit words per output, which
//! only that thread writes and only the output's worker reads.
//!
//! A record is copied into the ring as a few header words and its encoded items (about 100
//! bytes for a call with three fields), so a call site touches two cache lines of shared
//! memory instead of a 256-byte queue slot, and never contends with another producer: there
//! is no shared tail to compare-and-swap. The producer keeps its own copy of the worker's
//! read position and reads the shared one only when its copy says the ring is full.
//!
//! Everything is safe Rust: the ring is a slice of `AtomicU64` words written and read with
//! relaxed stores and loads (plain moves on x86-64 and AArch64), published by a release
//! store of the write position and taken by an acquire load of it.
//!
//! **Layout.** A record is a header word (its length in words, its kind, its level) followed
//! by its words; a record never wraps around the end of the ring: when it does not fit
//! before the end, a `WRAP` header fills the rest and the record starts at the beginning.
//! Records too large for the ring, and the logger's own rare records (the panic record),
//! go to the ring's side queue in order, with a `SIDE` header in the ring marking their
//! place, so a thread's records stay in the order it logged them.
//!
//! **Callsites.** A `tracing` event's `&'static Metadata` travels as an index into a
//! process-wide table of callsites, filled the first time each callsite logs and looked up
//! through a small per-thread cache.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use faultline_schema::Level;

use crate::capture::{CapturedRecord, CapturedRecordRef, Origin};
use crate::encode::level_index;
use crate::message::{Line, Msg};

/// Kinds of ring records.
mod kind {
    /// A captured event: header, then its items.
    pub(super) const ENTRY: u64 = 1;
    /// A line encoded by the caller.
    pub(super) const LINE: u64 = 2;
    /// The next record of the side queue.
    pub(super) const SIDE: u64 = 3;
    /// Nothing more before the end of the ring: the next record is at its start.
    pub(super) const WRAP: u64 = 4;
}

/// Where an entry came from, as the ring carries it.
mod origin {
    pub(super) const TRACING: u64 = 0;
    pub(super) const LOG: u64 = 1;
}

/// A record's header word: its length in words (bits 0-23), kind (24-27), level (28-30),
/// whether an entry came from `log` (31), the zero bytes padding its last word (32-34), and
/// an entry's callsite index (35-63).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header(u64);

impl Header {
    fn new(words: usize, kind: u64) -> Header {
        Header(words as u64 | (kind << 24))
    }

    /// With the level, and the padding that makes `bytes` whole words.
    fn with(self, level: Level, bytes: usize) -> Header {
        let pad = (8 - bytes % 8) % 8;
        Header(self.0 | ((level_index(level) as u64) << 28) | ((pad as u64) << 32))
    }

    /// With an entry's origin.
    fn origin(self, kind: u64, index: u32) -> Header {
        Header(self.0 | (kind << 31) | (u64::from(index) << 35))
    }

    fn words(self) -> u64 {
        (self.0 & 0xff_ffff).max(1)
    }

    fn kind(self) -> u64 {
        (self.0 >> 24) & 0xf
    }

    fn level(self) -> Level {
        level_of_u8(((self.0 >> 28) & 0x7) as u8)
    }

    fn origin_kind(self) -> u64 {
        (self.0 >> 31) & 1
    }

    fn index(self) -> u32 {
        (self.0 >> 35) as u32
    }

    /// The bytes after `head` words.
    fn bytes(self, head: usize) -> usize {
        ((self.words() as usize).saturating_sub(head) * 8)
            .saturating_sub(((self.0 >> 32) & 0x7) as usize)
    }
}

/// Words of an entry record before its items: the header, the monotonic time, the id
/// (whose first 48 bits are the record's `ts`).
const ENTRY_HEAD: usize = 4;
/// Words of a line record before its bytes: the header, the monotonic time.
const LINE_HEAD: usize = 2;
/// The most callsites the ring can name (29 bits of the header); events of later ones go
/// to the side queue.
const MAX_CALLSITES: u32 = 1 << 29;
/// Bytes of ring per record of capacity (rounded up to a power of two).
const BYTES_PER_RECORD: usize = 128;
/// The smallest and largest ring, in words.
const MIN_WORDS: usize = 8 << 10;
const MAX_WORDS: usize = 4 << 20;

/// Pads a value to its own pair of cache lines, so the producer's and the worker's
/// positions do not share one.
#[repr(align(128))]
#[derive(Default)]
struct Padded<T>(T);

/// One producing thread's queue into one output.
pub(crate) struct Ring {
    words: Box<[AtomicU64]>,
    /// `words.len() - 1` (the length is a power of two).
    mask: u64,
    /// Most records that may wait.
    capacity: u64,
    /// Written by the producer: words and records published.
    tail: Padded<(AtomicU64, AtomicU64)>,
    /// Written by the worker: words and records taken.
    head: Padded<(AtomicU64, AtomicU64)>,
    /// Records that do not go into the words, in order; each has a `SIDE` record.
    side: Mutex<VecDeque<Msg>>,
    /// The producing thread has ended: once empty, the ring can go.
    producer_gone: AtomicBool,
    /// The worker has stopped: the producer forgets the ring.
    consumer_gone: AtomicBool,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("words", &self.words.len())
            .field("depth", &self.depth())
            .finish_non_exhaustive()
    }
}

impl Ring {
    /// A ring for `capacity` records (and `capacity` x 128 bytes).
    pub(crate) fn new(capacity: usize) -> Ring {
        let words = (capacity.saturating_mul(BYTES_PER_RECORD) / 8)
            .clamp(MIN_WORDS, MAX_WORDS)
            .next_power_of_two();
        Ring {
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            mask: words as u64 - 1,
            capacity: capacity as u64,
            tail: Padded::default(),
            head: Padded::default(),
            side: Mutex::new(VecDeque::new()),
            producer_gone: AtomicBool::new(false),
            consumer_gone: AtomicBool::new(false),
        }
    }

    /// Records waiting.
    pub(crate) fn depth(&self) -> usize {
        let published = self.tail.0.1.load(Ordering::Acquire);
        let taken = self.head.0.1.load(Ordering::Acquire);
        usize::try_from(published.saturating_sub(taken)).unwrap_or(usize::MAX)
    }

    /// Whether nothing is waiting (a sequentially consistent read of the write position, for
    /// the worker's checks after announcing that it sleeps).
    pub(crate) fn is_empty(&self) -> bool {
        self.tail.0.0.load(Ordering::SeqCst) == self.head.0.0.load(Ordering::Relaxed)
    }

    /// Whether the producer is gone and everything it wrote was taken.
    pub(crate) fn is_finished(&self) -> bool {
        self.producer_gone.load(Ordering::Acquire) && self.is_empty()
    }

    /// Takes over the ring of a thread that ended, once the worker has taken everything it
    /// wrote: a new thread (a pool replacing its threads) reuses memory that is already
    /// mapped instead of faulting in a new ring page by page. Whether it was taken.
    pub(crate) fn adopt(&self) -> bool {
        self.is_finished()
            && self
                .producer_gone
                .compare_exchange(true, false, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Marks the worker stopped.
    pub(crate) fn close(&self) {
        self.consumer_gone.store(true, Ordering::Release);
    }

    /// The `words` words of a record reserved at `at` (contiguous: a record never wraps).
    #[inline]
    fn record(&self, at: u64, words: usize) -> &[AtomicU64] {
        let start = (at & self.mask) as usize;
        self.words.get(start..start + words).unwrap_or_default()
    }

    /// Largest record kept in the words; larger ones go to the side queue.
    fn max_record_words(&self) -> usize {
        self.words.len() / 8
    }

    #[inline(always)]
    fn store(&self, at: u64, word: u64) {
        if let Some(w) = self.words.get((at & self.mask) as usize) {
            w.store(word, Ordering::Relaxed);
        }
    }

    #[inline(always)]
    fn load(&self, at: u64) -> u64 {
        self.words
            .get((at & self.mask) as usize)
            .map_or(0, |w| w.load(Ordering::Relaxed))
    }

    /// Takes up to `max` records written so far (at most those there when it starts),
    /// handing each to `take`; returns how many. Only the output's worker calls it.
    #[inline]
    pub(crate) fn drain(
        &self,
        max: usize,
        reader: &mut Reader,
        mut take: impl FnMut(TakenRecord<'_>),
    ) -> usize {
        let Reader { scratch, callsites } = reader;
        let tail = self.tail.0.0.load(Ordering::Acquire);
        let mut head = self.head.0.0.load(Ordering::Relaxed);
        let mut taken = self.head.0.1.load(Ordering::Relaxed);
        let mut n = 0;
        while head < tail && n < max {
            let hdr = Header(self.load(head));
            let len = hdr.words();
            let k = hdr.kind();
            if k == kind::WRAP {
                head += len;
                continue;
            }
            // Counted as taken before it is handled (the worker may block writing it): it
            // is the worker's now, not queued. Its words are given back later, in bulk.
            taken += 1;
            self.head.0.1.store(taken, Ordering::Release);
            match k {
                kind::ENTRY => {
                    let origin = match hdr.origin_kind() {
                        origin::TRACING => callsites.get(hdr.index()).map(Origin::Tracing),
                        _ => Some(Origin::Log),
                    };
                    self.read_bytes(head + ENTRY_HEAD as u64, hdr.bytes(ENTRY_HEAD), scratch);
                    if let Some(origin) = origin {
                        let id = u128::from(self.load(head + 2))
                            | (u128::from(self.load(head + 3)) << 64);
                        take(TakenRecord::Captured(CapturedRecordRef {
                            mono: self.load(head + 1),
                            ts_ms: (id >> 80) as i64,
                            id,
                            level: hdr.level(),
                            origin,
                            items: scratch,
                        }));
                    }
                }
                kind::LINE => {
                    self.read_bytes(head + LINE_HEAD as u64, hdr.bytes(LINE_HEAD), scratch);
                    take(TakenRecord::Line {
                        mono: self.load(head + 1),
                        bytes: scratch,
                    });
                }
                _ => {
                    let next = self
                        .side
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .pop_front();
                    if let Some(m) = next {
                        take(TakenRecord::Side(m));
                    }
                }
            }
            head += len;
            n += 1;
            if n % 256 == 0 {
                self.head.0.0.store(head, Ordering::Release);
            }
        }
        self.head.0.0.store(head, Ordering::Release);
        n
    }

    fn read_bytes(&self, at: u64, len: usize, out: &mut Vec<u8>) {
        out.clear();
        let words = len.div_ceil(8) as u64;
        for i in 0..words {
            out.extend_from_slice(&self.load(at + i).to_le_bytes());
        }
        out.truncate(len);
    }
}

/// A record taken out of a ring, as the worker handles it.
pub(crate) enum TakenRecord<'a> {
    /// A captured record (its items in the worker's scratch buffer).
    Captured(CapturedRecordRef<'a>),
    /// A line encoded by the caller.
    Line { mono: u64, bytes: &'a [u8] },
    /// A message from the side queue.
    Side(Msg),
}

/// The inverse of [`level_index`].
fn level_of_u8(level: u8) -> Level {
    match level {
        0 => Level::Debug,
        1 => Level::Info,
        2 => Level::Warning,
        3 => Level::Error,
        _ => Level::Critical,
    }
}

/// The process-wide table of callsites that have logged.
fn callsites() -> &'static RwLock<Vec<&'static tracing::Metadata<'static>>> {
    static TABLE: RwLock<Vec<&'static tracing::Metadata<'static>>> = RwLock::new(Vec::new());
    &TABLE
}

/// What a worker keeps for reading rings: where a record's items are copied out, and its
/// own copy of the callsite table.
#[derive(Default)]
pub(crate) struct Reader {
    scratch: Vec<u8>,
    callsites: KnownCallsites,
}

/// The callsites a worker knows: its copy of the process-wide table. The table only grows,
/// so the copy is brought up to date only when a record names a callsite it does not have
/// yet: no lock per record (a shared read lock is an atomic read-modify-write, and its cache
/// line moved between cores).
#[derive(Default)]
struct KnownCallsites(Vec<&'static tracing::Metadata<'static>>);

impl KnownCallsites {
    /// The callsite at `index` in the table.
    #[inline]
    fn get(&mut self, index: u32) -> Option<&'static tracing::Metadata<'static>> {
        if let Some(meta) = self.0.get(index as usize) {
            return Some(*meta);
        }
        self.refresh(index)
    }

    #[cold]
    fn refresh(&mut self, index: u32) -> Option<&'static tracing::Metadata<'static>> {
        let table = callsites().read().unwrap_or_else(|p| p.into_inner());
        self.0
            .extend_from_slice(table.get(self.0.len()..).unwrap_or_default());
        self.0.get(index as usize).copied()
    }
}

/// The index of `meta` in the table, adding it the first time.
#[cold]
#[inline(never)]
fn intern_slow(meta: &'static tracing::Metadata<'static>) -> u32 {
    static INDEX: OnceLock<Mutex<HashMap<usize, u32>>> = OnceLock::new();
    let key = std::ptr::from_ref(meta) as usize;
    let mut index = INDEX
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    *index.entry(key).or_insert_with(|| {
        let mut table = callsites().write().unwrap_or_else(|p| p.into_inner());
        table.push(meta);
        u32::try_from(table.len() - 1).unwrap_or(u32::MAX)
    })
}

/// Callsites cached per thread (direct-mapped by address).
const CACHE: usize = 64;

/// What a producing thread keeps for its rings: its producer into each output it has logged
/// to, the state of its record ids, and its cache of callsite indexes.
pub(crate) struct ThreadProducers {
    /// The random part of this thread's next record id (0: not chosen yet).
    ids: u128,
    producers: Vec<Producer>,
    cache: [(usize, u32); CACHE],
}

/// What a thread keeps for logging: its producers, and the scratch buffer its call sites
/// encode a record's items into before they are copied into rings.
struct PerThread {
    scratch: Vec<u8>,
    producers: ThreadProducers,
}

thread_local! {
    static PER_THREAD: RefCell<PerThread> = const {
        RefCell::new(PerThread {
            scratch: Vec::new(),
            producers: ThreadProducers {
                ids: 0,
                producers: Vec::new(),
                cache: [(0, 0); CACHE],
            },
        })
    };
}

/// Runs `f` with this thread's scratch buffer and producers; `None` when they are not
/// available (the thread is ending, or a record is being written from inside another one
/// on this thread).
#[inline(always)]
pub(crate) fn with_this_thread<R>(
    f: impl FnOnce(&mut Vec<u8>, &mut ThreadProducers) -> R,
) -> Option<R> {
    PER_THREAD
        .try_with(|t| {
            t.try_borrow_mut().ok().map(|mut t| {
                let PerThread { scratch, producers } = &mut *t;
                f(scratch, producers)
            })
        })
        .ok()
        .flatten()
}

/// How an entry's origin is written: `None` for one that goes to the side queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OriginWord(Option<(u64, u32)>);

impl ThreadProducers {
    /// A UUIDv7 for a record stamped `ts_ms`. Its 74 bits after the time are a counter that
    /// starts at a random point for each thread (RFC 9562, section 6.2, method 1 without
    /// resetting): unique within the thread, and across threads as unlikely to meet as two
    /// random ids, for the price of an addition.
    #[inline]
    pub(crate) fn next_id(&mut self, ts_ms: i64) -> u128 {
        if self.ids == 0 {
            self.seed_ids();
        }
        self.ids = self.ids.wrapping_add(1);
        crate::capture::uuid_v7_with(ts_ms, self.ids)
    }

    /// Chooses the thread's random starting point for ids (once per thread).
    #[cold]
    #[inline(never)]
    fn seed_ids(&mut self) {
        self.ids = crate::capture::uuid_v7(0) | 1;
    }

    /// The word form of `origin`.
    #[inline]
    pub(crate) fn origin(&mut self, origin: Origin) -> OriginWord {
        OriginWord(match origin {
            Origin::Tracing(meta) => {
                let key = std::ptr::from_ref(meta) as usize;
                let slot = (key >> 4) % CACHE;
                match self.cache.get_mut(slot) {
                    Some((k, i)) if *k == key => Some((origin::TRACING, *i)),
                    Some(entry) => {
                        let i = intern_slow(meta);
                        *entry = (key, i);
                        Some((origin::TRACING, i))
                    }
                    None => None,
                }
            }
            Origin::Log => Some((origin::LOG, 0)),
            Origin::Internal(_) => None,
        })
    }

    /// This thread's producer for the output `id`; the first time, `ring` gives the ring
    /// (see [`Ring::adopt`]).
    #[inline]
    pub(crate) fn producer(&mut self, id: u64, ring: impl FnOnce() -> Arc<Ring>) -> &mut Producer {
        let at = match self.producers.iter().position(|p| p.output_id == id) {
            Some(at) => at,
            None => self.add_producer(id, ring),
        };
        &mut self.producers[at]
    }

    /// Adds this thread's producer for the output `id` (out of line: once per thread and
    /// output); returns its index.
    #[cold]
    #[inline(never)]
    fn add_producer(&mut self, id: u64, ring: impl FnOnce() -> Arc<Ring>) -> usize {
        // Rings of stopped workers are forgotten here.
        self.producers
            .retain(|p| !p.ring.consumer_gone.load(Ordering::Acquire));
        let ring = ring();
        self.producers.push(Producer {
            output_id: id,
            tail: ring.tail.0.0.load(Ordering::Acquire),
            head: ring.head.0.0.load(Ordering::Acquire),
            published: ring.tail.0.1.load(Ordering::Acquire),
            taken: ring.head.0.1.load(Ordering::Acquire),
            ring,
        });
        self.producers.len() - 1
    }
}

/// The producing thread's side of one ring, with its own copies of the positions.
pub(crate) struct Producer {
    output_id: u64,
    ring: Arc<Ring>,
    tail: u64,
    /// The worker's position when last read.
    head: u64,
    published: u64,
    taken: u64,
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.ring.producer_gone.store(true, Ordering::Release);
    }
}

impl Producer {
    /// Room for a record of `words` words: the index of its header word, after writing a
    /// `WRAP` record if it starts over at the beginning; `None` if the ring is full.
    #[inline]
    fn reserve(&mut self, words: usize) -> Option<u64> {
        let size = self.ring.words.len() as u64;
        let words = words as u64;
        let to_end = size - (self.tail & self.ring.mask);
        let need = if words > to_end {
            to_end + words
        } else {
            words
        };
        let full = |p: &Producer| {
            p.tail + need - p.head > size || p.published - p.taken >= p.ring.capacity
        };
        if full(self) {
            self.head = self.ring.head.0.0.load(Ordering::Acquire);
            self.taken = self.ring.head.0.1.load(Ordering::Acquire);
            if full(self) {
                return None;
            }
        }
        if words > to_end {
            self.ring
                .store(self.tail, Header::new(to_end as usize, kind::WRAP).0);
            self.tail += to_end;
        }
        Some(self.tail)
    }

    /// Publishes the record of `words` words written at the reserved position.
    #[inline]
    fn publish(&mut self, words: usize) {
        self.tail += words as u64;
        self.published += 1;
        self.ring.tail.0.1.store(self.published, Ordering::Relaxed);
        // Release only: the worker's second look before it parks covers the record a
        // sleeping worker might miss (see `worker`).
        self.ring.tail.0.0.store(self.tail, Ordering::Release);
    }

    /// Writes `entry`; `false` if the ring is full. `padded`, when given, are its items as
    /// whole words, the last one padded with zeros (as the call site leaves its scratch
    /// buffer), copied as they are; otherwise the last word is padded here.
    #[inline]
    pub(crate) fn push_entry(
        &mut self,
        entry: &CapturedRecordRef<'_>,
        padded: Option<&[[u8; 8]]>,
        origin: OriginWord,
    ) -> bool {
        let items = entry.items;
        let words = ENTRY_HEAD + items.len().div_ceil(8);
        let Some((origin_kind, index)) = origin.0.filter(|(_, i)| *i < MAX_CALLSITES) else {
            return self.push_side(Msg::Record(CapturedRecord::from_ref(entry)));
        };
        if words > self.ring.max_record_words() {
            return self.push_side(Msg::Record(CapturedRecord::from_ref(entry)));
        }
        let Some(at) = self.reserve(words) else {
            return false;
        };
        let Some((head, rest)) = self
            .ring
            .record(at, words)
            .split_first_chunk::<ENTRY_HEAD>()
        else {
            return false;
        };
        let head_words = [
            Header::new(words, kind::ENTRY)
                .with(entry.level, items.len())
                .origin(origin_kind, index)
                .0,
            entry.mono,
            entry.id as u64,
            (entry.id >> 64) as u64,
        ];
        for (w, v) in head.iter().zip(head_words) {
            w.store(v, Ordering::Relaxed);
        }
        match padded {
            Some(whole) => write_words(rest, whole),
            None => write_bytes(rest, items),
        }
        self.publish(words);
        true
    }

    /// Writes `line`; `false` if the ring is full.
    pub(crate) fn push_line(&mut self, line: &Line) -> bool {
        let words = LINE_HEAD + line.bytes.len().div_ceil(8);
        if words > self.ring.max_record_words() {
            return self.push_side(Msg::Line(line.clone()));
        }
        let Some(at) = self.reserve(words) else {
            return false;
        };
        let Some((head, rest)) = self.ring.record(at, words).split_first_chunk::<LINE_HEAD>()
        else {
            return false;
        };
        let head_words = [
            Header::new(words, kind::LINE)
                .with(line.level, line.bytes.len())
                .0,
            line.mono,
        ];
        for (w, v) in head.iter().zip(head_words) {
            w.store(v, Ordering::Relaxed);
        }
        write_bytes(rest, &line.bytes);
        self.publish(words);
        true
    }

    /// Queues `msg` on the side, marked in the ring; `false` if the ring is full.
    #[cold]
    fn push_side(&mut self, msg: Msg) -> bool {
        let Some(at) = self.reserve(1) else {
            return false;
        };
        self.ring
            .side
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(msg);
        self.ring.store(at, Header::new(1, kind::SIDE).0);
        self.publish(1);
        true
    }
}

/// Stores `whole` into `words`, one to a word (little-endian).
#[inline]
fn write_words(words: &[AtomicU64], whole: &[[u8; 8]]) {
    debug_assert_eq!(
        words.len(),
        whole.len(),
        "a record's words, reserved for its items"
    );
    for (w, b) in words.iter().zip(whole) {
        w.store(u64::from_le_bytes(*b), Ordering::Relaxed);
    }
}

/// Stores `bytes` into `words`, eight to a word (little-endian; the last one padded with
/// zeros).
#[inline]
fn write_bytes(words: &[AtomicU64], bytes: &[u8]) {
    let (whole, rest) = bytes.as_chunks::<8>();
    let (head, tail) = words.split_at_checked(whole.len()).unwrap_or((words, &[]));
    write_words(head, whole);
    if !rest.is_empty()
        && let Some(w) = tail.first()
    {
        let last = rest
            .iter()
            .rev()
            .fold(0u64, |w, b| (w << 8) | u64::from(*b));
        w.store(last, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> ThreadProducers {
        ThreadProducers {
            ids: 0,
            producers: Vec::new(),
            cache: [(0, 0); CACHE],
        }
    }

    fn rec(items: &[u8], n: u64) -> CapturedRecordRef<'_> {
        let ts_ms = 1_782_909_296_789 + n as i64;
        CapturedRecordRef {
            mono: n,
            ts_ms,
            id: crate::capture::uuid_v7(ts_ms),
            level: Level::Warning,
            origin: Origin::Log,
            items,
        }
    }

    /// What the worker would see: (mono, items) of each entry, and the lines' bytes.
    fn drain_all(ring: &Ring, max: usize) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        ring.drain(max, &mut Reader::default(), |t| match t {
            TakenRecord::Captured(r) => {
                assert_eq!(r.ts_ms, 1_782_909_296_789 + r.mono as i64);
                assert_eq!((r.id >> 76) & 0xf, 7, "a UUIDv7");
                assert_eq!(r.level, Level::Warning);
                out.push((r.mono, r.items.to_vec()));
            }
            TakenRecord::Line { mono, bytes } => out.push((mono, bytes.to_vec())),
            TakenRecord::Side(Msg::Record(e)) => out.push((e.mono, e.buf.clone())),
            TakenRecord::Side(_) => panic!("unexpected side message"),
        });
        out
    }

    fn items(n: u64) -> Vec<u8> {
        (0..(n * 7) % 61).map(|i| (i as u8) ^ (n as u8)).collect()
    }

    #[test]
    fn records_of_every_size_come_out_in_order_across_many_wraps() {
        let mut l = local();
        let ring = {
            let p = l.producer(1, || Arc::new(Ring::new(64)));
            p.ring.clone()
        };
        let words = ring.words.len() as u64;
        let origin = l.origin(Origin::Log);
        let (mut sent, mut got) = (0u64, Vec::new());
        while ring.tail.0.0.load(Ordering::Relaxed) < 5 * words {
            let p = l.producer(1, || panic!("registered twice"));
            let it = items(sent);
            // Every other record comes as whole padded words, as a call site gives them.
            let mut padded = it.clone();
            padded.resize(it.len().div_ceil(8) * 8, 0);
            let words = (sent % 2 == 0).then(|| padded.as_chunks::<8>().0);
            if p.push_entry(&rec(&it, sent), words, origin) {
                sent += 1;
            } else {
                // Full: by records (64) or by words; the worker takes some.
                got.extend(drain_all(&ring, 7));
            }
        }
        got.extend(drain_all(&ring, usize::MAX));
        assert_eq!(got.len() as u64, sent);
        for (n, (mono, bytes)) in got.iter().enumerate() {
            assert_eq!(*mono, n as u64);
            assert_eq!(*bytes, items(n as u64));
        }
        assert_eq!(ring.depth(), 0);
        assert!(ring.is_empty());
    }

    #[test]
    fn a_header_keeps_every_field() {
        for level in [
            Level::Debug,
            Level::Info,
            Level::Warning,
            Level::Error,
            Level::Critical,
        ] {
            for (bytes, index, origin) in [(0usize, 0, 0), (7, MAX_CALLSITES - 1, 0), (8, 5, 1)] {
                let words = ENTRY_HEAD + bytes.div_ceil(8);
                let h = Header::new(words, kind::ENTRY)
                    .with(level, bytes)
                    .origin(origin, index);
                assert_eq!(
                    (h.words(), h.kind(), h.level(), h.origin_kind(), h.index()),
                    (words as u64, kind::ENTRY, level, origin, index)
                );
                assert_eq!(h.bytes(ENTRY_HEAD), bytes);
            }
        }
        let wrap = Header::new(MAX_WORDS, kind::WRAP);
        assert_eq!((wrap.words(), wrap.kind()), (MAX_WORDS as u64, kind::WRAP));
    }

    #[test]
    fn a_full_ring_refuses_until_the_worker_takes() {
        let mut l = local();
        let origin = l.origin(Origin::Log);
        let p = l.producer(1, || Arc::new(Ring::new(3)));
        for n in 0..3 {
            assert!(p.push_entry(&rec(b"abc", n), None, origin));
        }
        assert!(!p.push_entry(&rec(b"abc", 3), None, origin));
        assert_eq!(p.ring.depth(), 3);
        let ring = p.ring.clone();
        assert_eq!(drain_all(&ring, 1).len(), 1);
        assert!(p.push_entry(&rec(b"abc", 3), None, origin));
        let monos: Vec<u64> = drain_all(&ring, usize::MAX).iter().map(|r| r.0).collect();
        assert_eq!(monos, [1, 2, 3]);
    }

    #[test]
    fn large_records_and_lines_keep_their_place() {
        let mut l = local();
        let origin = l.origin(Origin::Log);
        let p = l.producer(1, || Arc::new(Ring::new(16)));
        let big = vec![7u8; p.ring.max_record_words() * 8];
        assert!(p.push_entry(&rec(b"first", 0), None, origin));
        assert!(p.push_entry(&rec(&big, 1), None, origin));
        let line = Line {
            bytes: b"{\"a\":1}\n".to_vec(),
            level: Level::Info,
            mono: 2,
        };
        assert!(p.push_line(&line));
        // An origin the ring cannot carry goes to the side queue too.
        let internal = l.origin(Origin::Internal("panic"));
        let p = l.producer(1, || Arc::new(Ring::new(16)));
        let mut r = rec(b"internal", 3);
        r.origin = Origin::Internal("panic");
        assert!(p.push_entry(&r, None, internal));
        assert!(p.push_entry(&rec(b"last", 4), None, origin));
        let ring = p.ring.clone();
        let got = drain_all(&ring, usize::MAX);
        let monos: Vec<u64> = got.iter().map(|r| r.0).collect();
        assert_eq!(monos, [0, 1, 2, 3, 4]);
        assert_eq!(got[1].1, big);
        assert_eq!(got[2].1, line.bytes);
    }

    #[test]
    fn a_finished_thread_leaves_its_ring_to_be_removed_once_empty() {
        let mut l = local();
        let origin = l.origin(Origin::Log);
        let ring = {
            let p = l.producer(1, || Arc::new(Ring::new(8)));
            assert!(p.push_entry(&rec(b"x", 0), None, origin));
            p.ring.clone()
        };
        drop(l);
        assert!(!ring.is_finished(), "a record is still waiting");
        assert_eq!(drain_all(&ring, usize::MAX).len(), 1);
        assert!(ring.is_finished());
    }

    #[test]
    fn a_new_thread_adopts_an_emptied_ring_and_carries_on_from_its_positions() {
        let mut l = local();
        let origin = l.origin(Origin::Log);
        let ring = l.producer(1, || Arc::new(Ring::new(8))).ring.clone();
        for n in 0..5 {
            assert!(
                l.producer(1, || unreachable!())
                    .push_entry(&rec(b"old", n), None, origin)
            );
        }
        drop(l);
        assert!(!ring.adopt(), "records are still waiting");
        assert_eq!(drain_all(&ring, usize::MAX).len(), 5);
        assert!(ring.adopt());
        assert!(!ring.adopt(), "adopted once");
        let mut next = local();
        let p = next.producer(1, || ring.clone());
        for n in 5..13 {
            assert!(p.push_entry(&rec(b"new", n), None, origin));
        }
        assert!(!p.push_entry(&rec(b"full", 13), None, origin));
        let monos: Vec<u64> = drain_all(&ring, usize::MAX).iter().map(|r| r.0).collect();
        assert_eq!(monos, (5..13).collect::<Vec<_>>());
    }

    #[test]
    fn rings_of_stopped_workers_are_forgotten() {
        let mut l = local();
        let first = l.producer(1, || Arc::new(Ring::new(8))).ring.clone();
        first.close();
        let mut registered = 0;
        l.producer(2, || {
            registered += 1;
            Arc::new(Ring::new(8))
        });
        assert_eq!(registered, 1);
        assert_eq!(
            l.producers.len(),
            1,
            "the stopped worker's ring was dropped"
        );
    }

    #[test]
    fn ids_are_version_7_distinct_and_carry_the_time() {
        let ts = 1_782_909_296_789;
        let mut a = local();
        let mut b = local();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            for l in [&mut a, &mut b] {
                let id = uuid::Uuid::from_u128(l.next_id(ts));
                assert_eq!(id.get_version_num(), 7);
                assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
                let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
                assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, ts as u64);
                assert!(seen.insert(id), "{id} twice");
            }
        }
    }

    #[test]
    fn callsites_are_interned_once() {
        let mut l = local();
        struct Cs;
        static CS: Cs = Cs;
        static META: tracing::Metadata<'static> = tracing::Metadata::new(
            "interned",
            "ring_test",
            tracing::Level::INFO,
            None,
            None,
            None,
            tracing::field::FieldSet::new(&[], tracing::callsite::Identifier(&CS)),
            tracing::metadata::Kind::EVENT,
        );
        impl tracing::callsite::Callsite for Cs {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                &META
            }
        }
        let a = l.origin(Origin::Tracing(&META));
        let b = local().origin(Origin::Tracing(&META));
        let (Some((_, i)), Some((_, j))) = (a.0, b.0) else {
            panic!("not interned")
        };
        assert_eq!(i, j);
        let mut known = KnownCallsites::default();
        assert!(std::ptr::eq(known.get(i).unwrap(), &META));
        assert!(std::ptr::eq(known.get(i).unwrap(), &META), "from the copy");
        assert!(known.get(u32::MAX >> 3).is_none());
    }
}
