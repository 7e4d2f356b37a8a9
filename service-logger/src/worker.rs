//! An output's queues and its worker thread.
//!
//! Each producing thread writes its records into its own ring ([`crate::ring`]); on a full
//! ring the output's [`Policy`] decides. A bounded crossbeam channel carries the other
//! messages ([`crate::message`]): flushes, shutdowns, synchronous records, and records from a
//! thread that cannot use its ring (it is ending). The worker takes up to [`MAX_TAKE`]
//! records from each ring at a time, encodes each into its destination's buffer, and lets
//! the destination write when the queues run empty or its buffer is full, so under load one
//! `write` carries thousands of records.
//!
//! The top of the queue side: it uses the rings, the messages and the outputs, none of which
//! knows it.
//!
//! **Waking.** Producers do not wake the worker on every record (a futex wake costs more than
//! the whole call). When the queues run empty the worker first naps for [`LINGER`] without
//! asking to be woken; only if they are still empty after that does it raise `sleeping`
//! and park until a producer sees the flag and unparks it. So under steady traffic no call
//! site pays for a wake-up, and a quiet service costs no CPU.
//!
//! A producer publishes a record with a release store and then reads `sleeping`, without a
//! full fence between them (a fence would cost every call more than the rest of the
//! handoff). The two can pass each other: a record published just as the worker raises the
//! flag may be missed by both sides. So after raising the flag and finding the queues empty,
//! the worker naps [`LINGER`] once more and looks again (by then that record is visible)
//! before it parks for long.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError};
use faultline_schema::Level;

use crate::capture::{
    self, CapturedRecord, CapturedRecordRef, Origin, put_str_field, put_u64_field,
};
use crate::encode::{Encoder, RecordConfig};
use crate::error::InitError;
use crate::message::{Line, Msg, POLL, Signal};
use crate::output::{self, Destination, Kind, Options, Policy};
use crate::ring::{OriginWord, Producer, Reader, Ring, TakenRecord, ThreadProducers};
use crate::stats::{Counters, OutputStats, Reason};
use crate::thread::mark_worker_thread;

/// Messages taken per round before the worker looks at timers.
const MAX_TAKE: usize = 4096;
/// How long an idle worker naps before it asks producers to wake it.
const LINGER: Duration = Duration::from_millis(2);
/// Most messages in the shared channel: it carries flushes, shutdowns, synchronous records
/// and the records of ending threads, while records normally go into the threads' rings.
/// Its slots (about 300 bytes each) are allocated up front.
const CHANNEL_CAPACITY: usize = 1024;
/// The longest a worker parks; a safety net only (wake-ups are not lost).
const MAX_PARK: Duration = Duration::from_secs(1);
/// How long a producer facing a full queue naps before retrying, and how many times, before
/// it waits inside the channel.
const BACKOFF: Duration = Duration::from_micros(50);
const BACKOFF_ROUNDS: usize = 20;
/// How often the wall clock is re-measured against the monotonic one.
const RECALIBRATE: Duration = Duration::from_secs(1);

/// An output as producers and the logger see it: the queue, the policy, the counters.
pub(crate) struct OutputHandle {
    pub(crate) name: String,
    pub(crate) options: Options,
    /// Unique in the process: names this output in the producers' thread-local state.
    id: u64,
    /// The producing threads' rings, and a version that changes with the list.
    rings: Mutex<Vec<Arc<Ring>>>,
    rings_version: AtomicU64,
    /// Records in the channel (it also carries flushes and shutdowns).
    in_channel: AtomicUsize,
    tx: Sender<Msg>,
    /// Kept so the channel never disconnects: whatever is still in it after the worker
    /// stopped stays counted as queued rather than vanishing.
    rx: Receiver<Msg>,
    closed: AtomicBool,
    sleeping: AtomicBool,
    finished: AtomicBool,
    worker: OnceLock<Thread>,
    join: Mutex<Option<JoinHandle<()>>>,
    pub(crate) counters: Arc<Counters>,
}

impl std::fmt::Debug for OutputHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputHandle")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl OutputHandle {
    /// Starts the worker, which opens the destination; returns once it is open.
    pub(crate) fn spawn(
        kind: Kind,
        options: Options,
        name: String,
        record: &RecordConfig,
        heartbeat: Option<Duration>,
    ) -> Result<Arc<OutputHandle>, InitError> {
        let (tx, rx) = crossbeam_channel::bounded(options.capacity.min(CHANNEL_CAPACITY));
        let heartbeat = heartbeat.filter(|_| options.heartbeat);
        static IDS: AtomicU64 = AtomicU64::new(1);
        let handle = Arc::new(OutputHandle {
            name: name.clone(),
            options,
            id: IDS.fetch_add(1, Ordering::Relaxed),
            rings: Mutex::new(Vec::new()),
            rings_version: AtomicU64::new(0),
            in_channel: AtomicUsize::new(0),
            tx,
            rx,
            closed: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            worker: OnceLock::new(),
            join: Mutex::new(None),
            counters: Arc::new(Counters::default()),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let worker_handle = handle.clone();
        let encoder = Encoder::new(record);
        let service = record.service.clone();
        let join = std::thread::Builder::new()
            .name(format!("faultline-{name}"))
            .spawn(move || {
                mark_worker_thread();
                let h = worker_handle;
                let _ = h.worker.set(std::thread::current());
                let _finish = FinishOnExit(&h);
                match output::open(kind, &h.name, &service, &h.options, h.counters.clone()) {
                    Ok(destination) => {
                        let _ = ready_tx.send(Ok(()));
                        Worker::new(&h, destination, encoder, heartbeat).run();
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| InitError::Worker {
                output: name.clone(),
                message: e.to_string(),
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {
                *handle.join.lock().unwrap_or_else(|p| p.into_inner()) = Some(join);
                Ok(handle)
            }
            Ok(Err(e)) => {
                let _ = join.join();
                Err(e)
            }
            Err(_) => Err(InitError::Worker {
                output: name,
                message: "stopped while opening the output".into(),
            }),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.options.capacity
    }

    fn alive(&self) -> bool {
        !self.finished.load(Ordering::Acquire)
    }

    #[cold]
    fn wake(&self) {
        if let Some(t) = self.worker.get() {
            t.unpark();
        }
    }

    /// Queues a record under the output's policy, into this thread's ring. Never blocks
    /// unless the policy (or never-drop for errors) says so.
    ///
    /// `words` are the entry's items as whole words (zero-padded), when the caller has them
    /// so (see [`Producer::push_entry`]).
    #[inline]
    pub(crate) fn offer(
        &self,
        local: &mut ThreadProducers,
        origin: OriginWord,
        entry: &CapturedRecordRef<'_>,
        words: Option<&[[u8; 8]]>,
    ) {
        if self.options.synchronous || self.closed.load(Ordering::Relaxed) {
            // The shared path writes a synchronous record through, and counts one a closed
            // output refuses.
            self.offer_copy(entry);
            return;
        }
        let p = self.producer(local);
        if p.push_entry(entry, words, origin) {
            self.sent();
            return;
        }
        self.ring_full(p, entry.level, |p| p.push_entry(entry, words, origin));
    }

    /// [`offer_shared`](OutputHandle::offer_shared) of an owned copy of `entry` (out of line:
    /// only synchronous and closed outputs take it).
    #[cold]
    #[inline(never)]
    fn offer_copy(&self, entry: &CapturedRecordRef<'_>) {
        self.offer_shared(CapturedRecord::from_ref(entry));
    }

    /// [`offer`](OutputHandle::offer) when this thread cannot use its ring (it is ending, or
    /// the record comes from inside another one): through the shared channel.
    pub(crate) fn offer_shared(&self, entry: CapturedRecord) {
        if self.closed.load(Ordering::Relaxed) {
            self.counters.lose(Reason::Closed, 1);
            return;
        }
        if self.options.synchronous {
            self.send_sync(entry);
            return;
        }
        self.enqueue(Msg::Record(entry));
    }

    /// [`offer`](OutputHandle::offer) for a line encoded by the caller. On a synchronous output
    /// it returns once the line is written, like a synchronous record.
    pub(crate) fn offer_line(&self, local: Option<&mut ThreadProducers>, line: &Line) {
        if self.closed.load(Ordering::Relaxed) {
            self.counters.lose(Reason::Closed, 1);
            return;
        }
        if self.options.synchronous {
            match self.send_blocking(Msg::Line(line.clone()), None) {
                Ok(()) => {
                    let signal = self.request_flush(None);
                    self.wait(signal, None);
                }
                Err(reason) => self.counters.lose(reason, 1),
            }
            return;
        }
        let Some(local) = local else {
            self.enqueue(Msg::Line(line.clone()));
            return;
        };
        let p = self.producer(local);
        if p.push_line(line) {
            self.sent();
            return;
        }
        self.ring_full(p, line.level, |p| p.push_line(line));
    }

    /// This thread's producer into the output, with a new ring the first time.
    #[inline]
    fn producer<'l>(&self, local: &'l mut ThreadProducers) -> &'l mut Producer {
        local.producer(self.id, || {
            let mut rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
            // The ring of a thread that ended, if the worker has emptied one; it stays
            // registered.
            if let Some(ring) = rings.iter().find(|r| r.adopt()) {
                return ring.clone();
            }
            let ring = Arc::new(Ring::new(self.capacity()));
            rings.push(ring.clone());
            // Sequentially consistent: a worker going to sleep reads it after announcing
            // that it sleeps (see `Worker::idle`).
            self.rings_version.fetch_add(1, Ordering::SeqCst);
            ring
        })
    }

    /// A record of `level` found its queue full: records the high-water mark, wakes the
    /// worker, and says how long to wait for room (`Some(None)`: as long as it takes), or
    /// counts the record dropped (`None`).
    fn when_full(&self, level: Option<Level>) -> Option<Option<Instant>> {
        self.counters
            .high_water
            .fetch_max(self.capacity(), Ordering::Relaxed);
        self.wake();
        let never_drop = self.options.never_drop_errors && level >= Some(Level::Error);
        match (self.options.policy, never_drop) {
            (_, true) | (Policy::Block, _) => Some(None),
            (Policy::BlockTimeout(d), _) => Some(Some(Instant::now() + d)),
            (Policy::DropNewest, _) => {
                self.counters.lose(Reason::QueueFull, 1);
                None
            }
        }
    }

    /// This thread's ring is full: wait for room or drop, as the policy says.
    #[cold]
    fn ring_full(
        &self,
        p: &mut Producer,
        level: Level,
        mut push: impl FnMut(&mut Producer) -> bool,
    ) {
        let Some(deadline) = self.when_full(Some(level)) else {
            return;
        };
        loop {
            if !self.alive() || self.closed.load(Ordering::Relaxed) {
                self.counters.lose(Reason::Closed, 1);
                return;
            }
            let nap = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        self.counters.lose(Reason::Timeout, 1);
                        return;
                    }
                    (d - now).min(BACKOFF)
                }
                None => BACKOFF,
            };
            std::thread::sleep(nap);
            if push(p) {
                self.sent();
                return;
            }
            self.wake();
        }
    }

    #[inline]
    fn enqueue(&self, msg: Msg) {
        let record = self.count_in_channel(&msg, 1);
        match self.tx.try_send(msg) {
            Ok(()) => self.sent(),
            Err(TrySendError::Full(msg)) => {
                self.count_in_channel(&msg, -1);
                self.full(msg);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.in_channel
                    .fetch_sub(usize::from(record), Ordering::Relaxed);
                self.counters.lose(Reason::Closed, 1);
            }
        }
    }

    /// Counts a record going into (`1`) or not into (`-1`) the channel; whether it is one.
    fn count_in_channel(&self, msg: &Msg, delta: isize) -> bool {
        let record = msg.is_record();
        if record {
            if delta > 0 {
                self.in_channel.fetch_add(1, Ordering::Relaxed);
            } else {
                self.in_channel.fetch_sub(1, Ordering::Relaxed);
            }
        }
        record
    }

    #[inline]
    fn sent(&self) {
        // Pairs with the worker's `sleeping` store and queue checks: either this load sees
        // `true`, or the worker's second look sees the record (see the module's notes).
        if self.sleeping.load(Ordering::SeqCst) {
            self.wake();
        }
    }

    #[cold]
    fn full(&self, msg: Msg) {
        let level = match &msg {
            Msg::Record(e) => Some(e.level),
            Msg::Line(l) => Some(l.level),
            _ => None,
        };
        let Some(deadline) = self.when_full(level) else {
            return;
        };
        if let Err(reason) = self.send_blocking(msg, deadline) {
            self.counters.lose(reason, 1);
        }
    }

    /// Sends, waiting for room until `deadline`, the output closing, or its worker stopping.
    ///
    /// First it naps and retries a few times without registering with the channel: a
    /// sender waiting inside the channel makes the worker wake it (a futex call) for every
    /// record it takes, which under a full queue costs the worker more than the records.
    fn send_blocking(&self, msg: Msg, deadline: Option<Instant>) -> Result<(), Reason> {
        let record = self.count_in_channel(&msg, 1);
        let sent = self.send_blocking_uncounted(msg, deadline);
        if sent.is_err() && record {
            self.in_channel.fetch_sub(1, Ordering::Relaxed);
        }
        sent
    }

    fn send_blocking_uncounted(
        &self,
        mut msg: Msg,
        deadline: Option<Instant>,
    ) -> Result<(), Reason> {
        for round in 0..BACKOFF_ROUNDS {
            if round > 0 {
                if deadline.is_some_and(|d| Instant::now() + BACKOFF >= d) {
                    break;
                }
                std::thread::sleep(BACKOFF);
            }
            match self.tx.try_send(msg) {
                Ok(()) => {
                    self.sent();
                    return Ok(());
                }
                Err(TrySendError::Full(m)) => {
                    msg = self.still_waiting(m)?;
                }
                Err(TrySendError::Disconnected(_)) => return Err(Reason::Closed),
            }
        }
        loop {
            let now = Instant::now();
            let step = match deadline {
                Some(d) if d <= now => return Err(Reason::Timeout),
                Some(d) => (d - now).min(POLL),
                None => POLL,
            };
            match self.tx.send_timeout(msg, step) {
                Ok(()) => {
                    self.sent();
                    return Ok(());
                }
                Err(SendTimeoutError::Timeout(m)) => {
                    msg = self.still_waiting(m)?;
                }
                Err(SendTimeoutError::Disconnected(_)) => return Err(Reason::Closed),
            }
        }
    }

    /// A message that found no room: back to the sender to try again (with the worker woken),
    /// or `Closed` when the output stopped taking it.
    fn still_waiting(&self, m: Msg) -> Result<Msg, Reason> {
        if !self.alive() || (self.closed.load(Ordering::Relaxed) && m.is_record()) {
            return Err(Reason::Closed);
        }
        self.wake();
        Ok(m)
    }

    fn send_sync(&self, entry: CapturedRecord) {
        let signal = Signal::new(None);
        if let Err(reason) = self.send_blocking(Msg::Sync(entry, signal.clone()), None) {
            self.counters.lose(reason, 1);
            return;
        }
        self.wake();
        signal.wait(None, || self.alive());
    }

    /// Sends a control message (flush or shutdown), waiting for room until `deadline`.
    fn control(
        &self,
        make: impl FnOnce(Arc<Signal>) -> Msg,
        deadline: Option<Instant>,
    ) -> Option<Arc<Signal>> {
        if !self.alive() {
            return None;
        }
        let signal = Signal::new(deadline);
        self.send_blocking(make(signal.clone()), deadline).ok()?;
        self.wake();
        Some(signal)
    }

    /// Asks the worker to write everything queued before now.
    pub(crate) fn request_flush(&self, deadline: Option<Instant>) -> Option<Arc<Signal>> {
        self.control(Msg::Flush, deadline)
    }

    /// Stops accepting records and asks the worker to finish.
    pub(crate) fn request_shutdown(&self, deadline: Option<Instant>) -> Option<Arc<Signal>> {
        self.closed.store(true, Ordering::Release);
        self.control(Msg::Shutdown, deadline)
    }

    /// Waits for a flush or shutdown; whether it completed in time.
    pub(crate) fn wait(&self, signal: Option<Arc<Signal>>, deadline: Option<Instant>) -> bool {
        match signal {
            Some(s) => s.wait(deadline, || self.alive()).unwrap_or(false),
            // The worker is gone: complete only if nothing is left.
            None => self.queued() == 0 && self.counters.pending.load(Ordering::Relaxed) == 0,
        }
    }

    /// Joins the worker if it has stopped.
    pub(crate) fn join_if_finished(&self) {
        if !self.alive() {
            let join = self.join.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(j) = join {
                let _ = j.join();
            }
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    pub(crate) fn stats(&self) -> OutputStats {
        self.counters
            .snapshot(&self.name, self.queued(), self.capacity())
    }

    /// Records waiting: in the rings and in the shared channel.
    fn queued(&self) -> usize {
        let rings = self.rings.lock().unwrap_or_else(|p| p.into_inner());
        self.in_channel.load(Ordering::Relaxed) + rings.iter().map(|r| r.depth()).sum::<usize>()
    }
}

/// Marks the output finished and closed when the worker thread ends, however it ends (a panic
/// in a destination included), so producers and waiters stop waiting for it.
struct FinishOnExit<'a>(&'a Arc<OutputHandle>);

impl Drop for FinishOnExit<'_> {
    fn drop(&mut self) {
        let h = self.0;
        h.closed.store(true, Ordering::Release);
        h.finished.store(true, Ordering::Release);
        for ring in h.rings.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            ring.close();
        }
        if std::thread::panicking() {
            h.counters.error("worker stopped by a panic");
        }
    }
}

struct Worker<'a> {
    h: &'a OutputHandle,
    destination: Box<dyn Destination>,
    encoder: Encoder,
    heartbeat: Option<Duration>,
    next_heartbeat: Option<Instant>,
    last_calibration: Instant,
    reported_drops: u64,
    /// The producers' rings as of `rings_version`.
    rings: Vec<Arc<Ring>>,
    rings_version: u64,
    /// Where a record's items are copied out of its ring, and the callsites it names.
    reader: Reader,
}

impl<'a> Worker<'a> {
    fn new(
        h: &'a OutputHandle,
        destination: Box<dyn Destination>,
        encoder: Encoder,
        heartbeat: Option<Duration>,
    ) -> Worker<'a> {
        Worker {
            h,
            destination,
            encoder,
            heartbeat,
            next_heartbeat: heartbeat.map(|d| Instant::now() + d),
            last_calibration: Instant::now(),
            reported_drops: 0,
            rings: Vec::new(),
            rings_version: u64::MAX,
            reader: Reader::default(),
        }
    }

    #[inline]
    fn push(&mut self, entry: &CapturedRecordRef<'_>) {
        let buf = self.destination.buffer();
        let start = buf.len();
        self.encoder.encode(entry, buf);
        self.destination.commit(start, entry.mono);
    }

    fn push_internal(&mut self, entry: &CapturedRecord) {
        self.h.counters.internal.fetch_add(1, Ordering::Relaxed);
        self.h.counters.pending.fetch_add(1, Ordering::Relaxed);
        self.push(&entry.borrowed());
    }

    #[inline]
    fn push_line(&mut self, bytes: &[u8], mono: u64) {
        self.h.counters.pending.fetch_add(1, Ordering::Relaxed);
        let buf = self.destination.buffer();
        let start = buf.len();
        buf.extend_from_slice(bytes);
        self.destination.commit(start, mono);
    }

    /// Picks up rings registered or removed since the last look.
    fn refresh_rings(&mut self) {
        let version = self.h.rings_version.load(Ordering::SeqCst);
        if version != self.rings_version {
            let rings = self.h.rings.lock().unwrap_or_else(|p| p.into_inner());
            self.rings.clone_from(&rings);
            self.rings_version = version;
        }
    }

    /// Takes up to `max` records from each ring (at most what each held when it was
    /// reached); returns how many. Rings whose thread ended are removed once empty.
    fn drain_rings(&mut self, max: usize) -> u64 {
        self.refresh_rings();
        let rings = std::mem::take(&mut self.rings);
        let mut reader = std::mem::take(&mut self.reader);
        let mut took = 0;
        let mut finished = false;
        for ring in &rings {
            took += ring.drain(max, &mut reader, |t| match t {
                TakenRecord::Captured(rec) => {
                    self.h.counters.pending.fetch_add(1, Ordering::Relaxed);
                    self.push(&rec);
                }
                TakenRecord::Line { mono, bytes } => self.push_line(bytes, mono),
                TakenRecord::Side(msg) => {
                    self.handle(msg);
                }
            }) as u64;
            finished |= ring.is_finished();
        }
        self.rings = rings;
        self.reader = reader;
        if finished {
            let mut all = self.h.rings.lock().unwrap_or_else(|p| p.into_inner());
            all.retain(|r| !r.is_finished());
            self.h.rings_version.fetch_add(1, Ordering::Release);
        }
        took
    }

    /// Whether every ring is empty (sequentially consistent reads; see `idle`).
    fn rings_empty(&self) -> bool {
        self.rings.iter().all(|r| r.is_empty())
    }

    /// Records waiting in the rings this worker knows.
    fn rings_depth(&self) -> usize {
        self.rings.iter().map(|r| r.depth()).sum()
    }

    /// Handles one message; `Some(signal)` when it asked to shut down. Inlined so that a
    /// record is encoded where it was taken out of the queue, not copied again.
    #[inline(always)]
    fn handle(&mut self, msg: Msg) -> Option<Arc<Signal>> {
        match msg {
            Msg::Record(e) => {
                self.h.counters.pending.fetch_add(1, Ordering::Relaxed);
                self.push(&e.borrowed());
            }
            Msg::Line(line) => self.push_line(&line.bytes, line.mono),
            Msg::Sync(e, signal) => {
                self.h.counters.pending.fetch_add(1, Ordering::Relaxed);
                self.push(&e.borrowed());
                let complete = self.destination.flush(None);
                signal.done(complete);
            }
            Msg::Flush(signal) => {
                // Everything a thread logged before asking for the flush is in its ring.
                self.h
                    .counters
                    .dequeued
                    .fetch_add(self.drain_rings(usize::MAX), Ordering::Relaxed);
                self.report_drops();
                let complete = self.destination.flush(signal.deadline);
                signal.done(complete);
            }
            Msg::Shutdown(signal) => return Some(signal),
        }
        None
    }

    fn run(mut self) {
        loop {
            self.refresh_rings();
            let depth = self.h.in_channel.load(Ordering::Relaxed) + self.rings_depth();
            self.h
                .counters
                .high_water
                .fetch_max(depth, Ordering::Relaxed);
            let from_rings = self.drain_rings(MAX_TAKE);
            self.h
                .counters
                .dequeued
                .fetch_add(from_rings, Ordering::Relaxed);
            let (mut took, mut counted) = (0u64, 0u64);
            let mut shutdown = None;
            while took < MAX_TAKE as u64 {
                let Ok(msg) = self.h.rx.try_recv() else { break };
                let record = msg.is_record();
                took += u64::from(record);
                self.h
                    .in_channel
                    .fetch_sub(usize::from(record), Ordering::Relaxed);
                if !matches!(msg, Msg::Record(_) | Msg::Line(_)) {
                    // Whoever waits on this message reads the stats as soon as it is done:
                    // the records taken before it must already count as enqueued.
                    self.h
                        .counters
                        .dequeued
                        .fetch_add(took - counted, Ordering::Relaxed);
                    counted = took;
                }
                if let Some(s) = self.handle(msg) {
                    shutdown = Some(s);
                    break;
                }
            }
            self.h
                .counters
                .dequeued
                .fetch_add(took - counted, Ordering::Relaxed);
            if let Some(signal) = shutdown {
                self.finish(&signal);
                return;
            }
            let now = Instant::now();
            self.timers(now);
            let idle = self.h.rx.is_empty() && self.rings_empty();
            let next = self.destination.poll(idle);
            if idle {
                self.idle(next);
            }
        }
    }

    fn timers(&mut self, now: Instant) {
        if now.duration_since(self.last_calibration) >= RECALIBRATE {
            capture::recalibrate();
            self.last_calibration = now;
        }
        self.report_drops();
        if let (Some(every), Some(due)) = (self.heartbeat, self.next_heartbeat)
            && now >= due
        {
            let s = self.h.stats();
            let mut e = CapturedRecord::new(Level::Info, Origin::Internal("heartbeat"));
            e.buf.push(crate::capture::tag::MESSAGE);
            crate::capture::put_str(&mut e.buf, "faultline-logger heartbeat");
            put_str_field(&mut e.buf, "sink", &self.h.name);
            put_u64_field(&mut e.buf, "queue_depth", s.queue_depth as u64);
            put_u64_field(&mut e.buf, "written", s.written);
            put_u64_field(&mut e.buf, "dropped", s.dropped.total());
            put_u64_field(&mut e.buf, "spooled", s.spooled);
            put_u64_field(&mut e.buf, "sink_errors", s.output_errors);
            put_u64_field(
                &mut e.buf,
                "lag_max_us",
                u64::try_from(s.lag.max.as_micros()).unwrap_or(u64::MAX),
            );
            self.push_internal(&e);
            self.next_heartbeat = Some(if now.duration_since(due) >= every {
                now + every
            } else {
                due + every
            });
        }
    }

    /// Writes a `logger_dropped` warning for the records dropped since the last one.
    fn report_drops(&mut self) {
        let d = self.h.counters.dropped();
        let drops = d.queue_full + d.timeout;
        if drops > self.reported_drops {
            let mut e = CapturedRecord::new(Level::Warning, Origin::Internal("logger_dropped"));
            e.buf.push(crate::capture::tag::MESSAGE);
            crate::capture::put_fmt(
                &mut e.buf,
                format_args!(
                    "faultline-logger dropped {} records: the {} queue was full",
                    drops - self.reported_drops,
                    self.h.name
                ),
            );
            put_str_field(&mut e.buf, "sink", &self.h.name);
            put_u64_field(&mut e.buf, "dropped", drops - self.reported_drops);
            put_u64_field(&mut e.buf, "dropped_queue_full_total", d.queue_full);
            put_u64_field(&mut e.buf, "dropped_timeout_total", d.timeout);
            self.reported_drops = drops;
            self.push_internal(&e);
        }
    }

    /// The queue is empty: nap, then sleep until woken or `next`.
    fn idle(&mut self, next: Option<Instant>) {
        let next = match (next, self.next_heartbeat) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let until = |cap: Duration| {
            let now = Instant::now();
            next.map_or(cap, |n| n.saturating_duration_since(now).min(cap))
        };
        std::thread::park_timeout(until(LINGER));
        if !self.h.rx.is_empty() || !self.rings_empty() {
            return;
        }
        self.h.sleeping.store(true, Ordering::SeqCst);
        // A ring registered before a producer missed the flag is seen here.
        self.refresh_rings();
        if self.h.rx.is_empty() && self.rings_empty() {
            std::thread::park_timeout(until(LINGER));
            self.refresh_rings();
            if self.h.rx.is_empty() && self.rings_empty() {
                let wait = until(MAX_PARK);
                if !wait.is_zero() {
                    std::thread::park_timeout(wait);
                }
            }
        }
        self.h.sleeping.store(false, Ordering::SeqCst);
    }

    fn finish(&mut self, signal: &Signal) {
        // Records that raced the close flag still get written.
        let from_rings = self.drain_rings(usize::MAX);
        self.h
            .counters
            .dequeued
            .fetch_add(from_rings, Ordering::Relaxed);
        while let Ok(msg) = self.h.rx.try_recv() {
            if msg.is_record() {
                self.h.in_channel.fetch_sub(1, Ordering::Relaxed);
                self.h.counters.dequeued.fetch_add(1, Ordering::Relaxed);
            }
            match msg {
                Msg::Shutdown(other) => other.done(false),
                m => {
                    self.handle(m);
                }
            }
        }
        // Drops since the last round are reported even when the shutdown came in the same
        // round as the records, before the timers ran.
        self.report_drops();
        let complete = self.destination.close(signal.deadline);
        signal.done(complete);
    }
}
