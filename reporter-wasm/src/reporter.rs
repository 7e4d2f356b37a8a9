//! The reporter core: a state machine from captures to acknowledged batches.
//!
//! It owns the scope, the fold windows, the queue, the batch in flight and the retry
//! state, and does all its I/O through a [`Host`], so every rule below is exercised by
//! native tests with a fake clock.
//!
//! # Custody
//!
//! A record stays in the reporter's custody until the server acknowledges it with a 2xx
//! (or refuses it for good with another 4xx). Along the way:
//!
//! - **Queued** records leave as a batch when `batchSize` records or `maxBatchBytes` are
//!   waiting, or `flushIntervalMs` after the first one was queued. One batch is in flight
//!   at a time.
//! - **Failed** sends (network error, 408, 429, 5xx) are retried with exponential backoff
//!   and jitter, or after `Retry-After` when the server gives one; while the browser is
//!   offline nothing is tried until it is back online. A 413 splits the batch. Any other
//!   4xx drops it: retrying cannot help.
//! - **Stored**: whenever a send fails, and when the page is hidden, every record in custody
//!   is written to `localStorage`. The next page load on this origin sends them again.
//! - **Hidden** (`visibilitychange` to hidden, `pagehide`): everything in custody is stored,
//!   then handed to `sendBeacon` in chunks within the 64 KiB beacon budget. A beacon has no
//!   answer, so those records stay "unconfirmed" (and stored); if the page comes back they
//!   are sent again with `fetch` to get one.
//!
//! Records carry a client id (UUIDv7) from creation, so every path above that may deliver a
//! record twice (a beacon and the next page load, a retry after a lost response) is stored
//! once by the server.

use std::rc::Rc;

use faultline_schema::{Level, MAX_META_BYTES, MAX_META_DEPTH};

use crate::config::Config;
use crate::event::{self, Capture};
use crate::filter;
use crate::fold::{Fold, Folds, FollowUp};
use crate::host::Host;
use crate::id::{self, Rng};
use crate::json;
use crate::queue::{self, Batch, Body, Rec};
use crate::scope::{Refused, Scope};

/// Browsers give `sendBeacon` and keepalive `fetch` 64 KiB in flight per page.
const BEACON_BUDGET: usize = 64_000;
/// Longest wait between retries.
const MAX_BACKOFF_MS: f64 = 300_000.0;
/// First retry delay (before jitter).
const FIRST_BACKOFF_MS: f64 = 1_000.0;
/// While sends are failing, new records are stored at most this often.
const STORE_EVERY_MS: f64 = 1_000.0;

/// What became of a capture.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Filtered, sampled out, over the cap, or the queue was full.
    Dropped,
    /// A repeat, counted into the record with this id.
    Folded([u8; 16]),
    /// A new record with this id, queued.
    Queued([u8; 16]),
    /// A new record waiting for `beforeSend`: its JSON.
    Draft(String),
}

/// A `beforeSend` edit of a draft.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Edit<'a> {
    /// The level name.
    pub(crate) level: &'a str,
    /// The event.
    pub(crate) event: &'a str,
    /// The message.
    pub(crate) message: &'a str,
    /// `meta` as a JSON object.
    pub(crate) meta: &'a str,
}

/// Counters, for `stats()` and the tests.
#[derive(Debug, Default, Clone)]
pub(crate) struct Stats {
    /// Captures seen (before any filtering).
    pub(crate) captured: u32,
    /// Repeats folded into a record.
    pub(crate) folded: u32,
    /// Dropped by the ignore lists.
    pub(crate) filtered: u32,
    /// Dropped by `sampleRate`.
    pub(crate) sampled: u32,
    /// Dropped by the per-page cap.
    pub(crate) capped: u32,
    /// Dropped because `maxQueue` records were waiting.
    pub(crate) queue_full: u32,
    /// Dropped by `beforeSend`.
    pub(crate) before_send: u32,
    /// Records acknowledged by the server (accepted, duplicate or rejected per record).
    pub(crate) sent: u32,
    /// Of those, records the server rejected as invalid.
    pub(crate) rejected: u32,
    /// Records dropped because the server refused their batch for good (4xx).
    pub(crate) refused: u32,
    /// Failed sends that will be retried.
    pub(crate) retries: u32,
    /// Beacons the browser took.
    pub(crate) beacons: u32,
    /// Writes to storage.
    pub(crate) stores: u32,
    /// Records taken over from storage.
    pub(crate) restored: u32,
}

impl Stats {
    /// The counters as a JSON object.
    pub(crate) fn to_json(&self) -> String {
        let fields = [
            ("captured", self.captured),
            ("folded", self.folded),
            ("filtered", self.filtered),
            ("sampled", self.sampled),
            ("capped", self.capped),
            ("queue_full", self.queue_full),
            ("before_send", self.before_send),
            ("sent", self.sent),
            ("rejected", self.rejected),
            ("refused", self.refused),
            ("retries", self.retries),
            ("beacons", self.beacons),
            ("stores", self.stores),
            ("restored", self.restored),
        ];
        let mut out = String::from("{");
        for (i, (k, v)) in fields.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::push_key(&mut out, k);
            json::push_u64(&mut out, u64::from(v));
        }
        out.push('}');
        out
    }
}

/// The reporter; see the module docs.
#[derive(Debug)]
pub(crate) struct Reporter<H: Host> {
    host: H,
    cfg: Config,
    rng: Rng,
    scope: Scope,
    folds: Folds,
    /// Oldest first, sorted by `seq` (records put back in front have `seq` 0).
    queue: Vec<Rec>,
    queue_bytes: usize,
    drafts: Vec<Rec>,
    /// The batch being sent, or waiting to be retried.
    batch: Option<Batch>,
    in_flight: bool,
    /// When the waiting batch may be retried.
    retry_at: f64,
    waiting_online: bool,
    /// Records handed to `sendBeacon`, not acknowledged.
    unconfirmed: Vec<Rc<str>>,
    /// When the host timer fires (`INFINITY`: not armed).
    timer_at: f64,
    /// Whether storage holds records of this page.
    stored: bool,
    last_store: f64,
    store_due: Option<f64>,
    page_records: u32,
    cap_noted: bool,
    next_seq: u32,
    /// Records per batch: `batchSize`, halved after each 413.
    batch_records: usize,
    flush_all: bool,
    closed: bool,
    stats: Stats,
}

impl<H: Host> Reporter<H> {
    /// A reporter with nothing queued. `seed` seeds the ids and jitter (32 random bytes).
    pub(crate) fn new(host: H, cfg: Config, seed: &[u8]) -> Reporter<H> {
        Reporter {
            host,
            rng: Rng::from_seed(seed),
            scope: Scope::new(cfg.max_breadcrumbs),
            folds: Folds::default(),
            queue: Vec::new(),
            queue_bytes: 0,
            drafts: Vec::new(),
            batch: None,
            in_flight: false,
            retry_at: 0.0,
            waiting_online: false,
            unconfirmed: Vec::new(),
            timer_at: f64::INFINITY,
            stored: false,
            last_store: f64::NEG_INFINITY,
            store_due: None,
            page_records: 0,
            cap_noted: false,
            next_seq: 1,
            batch_records: cfg.batch_size,
            flush_all: false,
            closed: false,
            stats: Stats::default(),
            cfg,
        }
    }

    /// The settings.
    pub(crate) fn config(&self) -> &Config {
        &self.cfg
    }

    /// The counters.
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A new record id for now.
    pub(crate) fn fresh_id(&mut self) -> [u8; 16] {
        id::uuid_v7(self.host.now() as i64, &mut self.rng)
    }

    fn seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        self.next_seq
    }

    /// Takes one error or message.
    pub(crate) fn capture(&mut self, c: &Capture<'_>) -> Outcome {
        if self.closed {
            return Outcome::Dropped;
        }
        let now = self.host.now();
        self.stats.captured += 1;
        let frames = event::frames(c);
        let culprit = filter::culprit_url(&frames, c.file);
        if self
            .cfg
            .filters
            .check(c.error_type, c.message, &frames, culprit)
            .is_some()
        {
            self.stats.filtered += 1;
            return Outcome::Dropped;
        }
        let ts = c.ts.unwrap_or(now);
        let folding = self.cfg.fold_window_ms > 0.0;
        let fp = event::fingerprint(c, &frames);
        if folding {
            let mut follow = Vec::new();
            self.folds.expire(now, self.cfg.fold_window_ms, &mut follow);
            self.enqueue_follow_ups(follow, now);
            if let Some(f) = self.folds.find(fp) {
                if !f.kept {
                    self.stats.sampled += 1;
                    return Outcome::Dropped;
                }
                self.stats.folded += 1;
                f.last_ts = ts;
                let (seq, id) = (f.seq, f.id);
                let target = match self.queue.binary_search_by_key(&seq, |r| r.seq) {
                    Ok(i) => self.queue.get_mut(i),
                    Err(_) => self.drafts.iter_mut().find(|r| r.seq == seq),
                };
                match target.map(|r| &mut r.body) {
                    Some(Body::Parts { count, .. }) => *count = count.saturating_add(1),
                    _ => f.extra = f.extra.saturating_add(1),
                }
                self.arm_timer(now);
                return Outcome::Folded(id);
            }
        }

        let kept = if self.cfg.sample_rate < 1.0 && self.rng.unit() >= self.cfg.sample_rate {
            self.stats.sampled += 1;
            false
        } else if self.page_records >= self.cfg.max_events_per_page {
            self.stats.capped += 1;
            self.note_cap(c, now);
            false
        } else if self.queue.len() + self.drafts.len() >= self.cfg.max_queue {
            self.stats.queue_full += 1;
            return Outcome::Dropped;
        } else {
            true
        };
        let seq = self.seq();
        if !kept {
            if folding {
                self.open_fold(fp, now, ts, false, seq, [0; 16], None);
            }
            return Outcome::Dropped;
        }
        self.page_records += 1;
        let level = c.level.unwrap_or(Level::Error);
        let head: Rc<str> = event::head(&self.cfg.service, level, c.event, c.message).into();
        let tail: Rc<str> = event::tail(c, &frames, &self.cfg, &self.scope).into();
        let id = id::uuid_v7(ts as i64, &mut self.rng);
        if folding {
            let template = Some((Rc::clone(&head), Rc::clone(&tail)));
            self.open_fold(fp, now, ts, true, seq, id, template);
        }
        let rec = Rec {
            seq,
            queued: now,
            body: Body::Parts {
                id,
                ts: ts as i64,
                head,
                tail,
                count: 1,
            },
        };
        if self.cfg.before_send {
            let mut json = String::new();
            rec.write(&mut json);
            self.drafts.push(rec);
            return Outcome::Draft(json);
        }
        self.push(rec);
        self.pump(now);
        Outcome::Queued(id)
    }

    #[allow(clippy::too_many_arguments)]
    fn open_fold(
        &mut self,
        fp: u64,
        now: f64,
        ts: f64,
        kept: bool,
        seq: u32,
        id: [u8; 16],
        template: Option<(Rc<str>, Rc<str>)>,
    ) {
        let mut evicted = Vec::new();
        self.folds.open(
            Fold {
                fp,
                start: now,
                kept,
                seq,
                id,
                extra: 0,
                last_ts: ts,
                template,
            },
            &mut evicted,
        );
        self.enqueue_follow_ups(evicted, now);
    }

    /// Queues one warning, the first time the per-page cap drops a record.
    fn note_cap(&mut self, c: &Capture<'_>, now: f64) {
        if self.cap_noted {
            return;
        }
        self.cap_noted = true;
        let mut message = String::from("more than ");
        json::push_u64(&mut message, u64::from(self.cfg.max_events_per_page));
        message.push_str(
            " new errors on this page (maxEventsPerPage): later ones are dropped until the next page load",
        );
        let note = Capture {
            event: "faultline.capped",
            page_url: c.page_url,
            ..Capture::default()
        };
        let head = event::head(&self.cfg.service, Level::Warning, note.event, &message);
        let tail = event::tail(&note, &[], &self.cfg, &Scope::new(0));
        let rec = Rec {
            seq: self.seq(),
            queued: now,
            body: Body::Parts {
                id: id::uuid_v7(now as i64, &mut self.rng),
                ts: now as i64,
                head: head.into(),
                tail: tail.into(),
                count: 1,
            },
        };
        self.push(rec);
    }

    fn enqueue_follow_ups(&mut self, follow: Vec<FollowUp>, now: f64) {
        for f in follow {
            if self.queue.len() >= self.cfg.max_queue {
                self.stats.queue_full += 1;
                continue;
            }
            let rec = Rec {
                seq: self.seq(),
                queued: now,
                body: Body::Parts {
                    id: id::uuid_v7(f.ts as i64, &mut self.rng),
                    ts: f.ts as i64,
                    head: f.template.0,
                    tail: f.template.1,
                    count: f.count,
                },
            };
            self.push(rec);
        }
    }

    fn push(&mut self, rec: Rec) {
        self.queue_bytes += rec.len();
        self.queue.push(rec);
        if self.batch.is_some() && !self.in_flight {
            // Sends are failing: keep what arrives meanwhile safe too.
            self.store_soon(self.host.now());
        }
    }

    /// Finishes a draft with `beforeSend`'s edit (or unchanged with `None`). An edit that
    /// breaks the record's rules is ignored and the original sent.
    pub(crate) fn commit(&mut self, id: &str, edit: Option<Edit<'_>>) -> bool {
        let Some(at) = self.draft_index(id) else {
            return false;
        };
        let mut rec = self.drafts.remove(at);
        let mut applied = true;
        if let (Some(e), Body::Parts { head, tail, .. }) = (edit, &mut rec.body) {
            let level = event::parse_level(e.level);
            let meta_ok = json::is_object(e.meta)
                && json::depth(e.meta) <= MAX_META_DEPTH
                && e.meta.len() + 24 <= MAX_META_BYTES;
            match level {
                Some(level) if meta_ok && event::valid_event(e.event) => {
                    *head = event::head(&self.cfg.service, level, e.event, e.message).into();
                    let mut body = String::from(json::object_body(e.meta));
                    body.push_str("}}");
                    *tail = body.into();
                    self.folds.retemplate(rec.seq, head, tail);
                }
                _ => applied = false,
            }
        }
        let now = self.host.now();
        self.push(rec);
        self.pump(now);
        applied
    }

    /// Drops a draft `beforeSend` refused; its repeats are dropped with it.
    pub(crate) fn discard(&mut self, id: &str) {
        if let Some(at) = self.draft_index(id) {
            let rec = self.drafts.remove(at);
            self.folds.drop_record(rec.seq);
            self.stats.before_send += 1;
        }
    }

    fn draft_index(&self, id: &str) -> Option<usize> {
        let mut text = String::from("{\"id\":\"");
        text.push_str(id);
        let id = queue::wire_id(&text)?;
        self.drafts.iter().position(|r| r.id() == Some(id))
    }

    /// Adds a breadcrumb (`data`: a JSON object or empty).
    pub(crate) fn breadcrumb(&mut self, category: &str, message: &str, level: &str, data: &str) {
        let ts = self.host.now() as i64;
        self.scope.add_crumb(ts, category, message, level, data);
    }

    /// `setUser`: anonymized here with the configured salt; the raw id is not kept.
    pub(crate) fn set_user(&mut self, raw_id: Option<&str>) -> Result<(), Refused> {
        self.scope.set_user(self.cfg.salt.as_deref(), raw_id)
    }

    /// `setTag`.
    pub(crate) fn set_tag(&mut self, key: &str, value: Option<&str>) -> Result<(), Refused> {
        self.scope.set_tag(key, value)
    }

    /// `setContext` (a JSON object, or `None` to remove).
    pub(crate) fn set_context(&mut self, name: &str, json: Option<&str>) -> Result<(), Refused> {
        self.scope.set_context(name, json)
    }

    /// The host timer fired.
    pub(crate) fn tick(&mut self) {
        self.timer_at = f64::INFINITY;
        let now = self.host.now();
        let mut follow = Vec::new();
        self.folds.expire(now, self.cfg.fold_window_ms, &mut follow);
        self.enqueue_follow_ups(follow, now);
        if self.store_due.is_some_and(|t| now >= t) {
            self.store(now);
        }
        self.pump(now);
    }

    /// The server answered batch `seq` with `status` (0: network error), `Retry-After`
    /// converted to milliseconds (negative: none), and the number of records it rejected.
    pub(crate) fn on_response(
        &mut self,
        seq: u32,
        status: u16,
        retry_after_ms: f64,
        rejected: u32,
    ) {
        let now = self.host.now();
        let Some(batch) = self
            .batch
            .as_mut()
            .filter(|b| b.seq == seq && self.in_flight)
        else {
            return; // an answer to a batch handed over to a beacon since
        };
        self.in_flight = false;
        match status {
            200..=299 => {
                self.stats.sent += batch.records.len() as u32;
                self.stats.rejected += rejected;
                self.batch = None;
                if self.stored {
                    self.store(now);
                }
            }
            413 => {
                let records = std::mem::take(&mut batch.records);
                self.batch = None;
                if records.len() > 1 {
                    self.batch_records = (records.len() / 2).max(1);
                    for r in records.into_iter().rev() {
                        self.requeue_front(r, now);
                    }
                } else {
                    self.stats.refused += records.len() as u32;
                }
                if self.stored {
                    self.store(now);
                }
            }
            0 | 408 | 429 | 500..=599 => {
                batch.attempts += 1;
                let attempts = batch.attempts;
                self.stats.retries += 1;
                let delay = if retry_after_ms >= 0.0 {
                    // Never before the server's time; a little after, so clients spread out.
                    retry_after_ms + self.rng.unit() * (retry_after_ms * 0.1).min(1_000.0)
                } else {
                    let base = (FIRST_BACKOFF_MS * f64::from(1u32 << (attempts - 1).min(16)))
                        .min(MAX_BACKOFF_MS);
                    base / 2.0 + self.rng.unit() * base / 2.0
                };
                self.retry_at = now + delay;
                if status == 0 && !self.host.online() {
                    self.waiting_online = true;
                }
                self.store(now);
            }
            _ => {
                self.stats.refused += batch.records.len() as u32;
                self.batch = None;
                if self.stored {
                    self.store(now);
                }
            }
        }
        self.pump(now);
    }

    fn requeue_front(&mut self, r: Rc<str>, now: f64) {
        // Sequence 0 keeps the queue sorted and is never a fold target.
        self.queue_bytes += r.len();
        self.queue.insert(
            0,
            Rec {
                seq: 0,
                queued: now,
                body: Body::Wire(r),
            },
        );
    }

    /// The page is being hidden or unloaded: store everything in custody, then beacon it.
    pub(crate) fn hidden(&mut self) {
        let now = self.host.now();
        let mut follow = Vec::new();
        self.folds.drain_repeats(&mut follow);
        self.enqueue_follow_ups(follow, now);
        let mut fresh: Vec<Rc<str>> = Vec::new();
        if let Some(b) = self.batch.take() {
            fresh.extend(b.records);
        }
        self.in_flight = false;
        self.retry_at = 0.0;
        self.waiting_online = false;
        fresh.extend(self.queue.drain(..).map(|r| r.to_wire()));
        self.queue_bytes = 0;
        if fresh.is_empty() {
            self.arm_timer(now);
            return;
        }
        let start = self.unconfirmed.len();
        self.unconfirmed.extend(fresh);
        self.store(now);
        if self.host.online() {
            let budget = self.cfg.max_batch_bytes.min(BEACON_BUDGET);
            for body in queue::chunks(&self.unconfirmed[start..], budget) {
                if !self.host.beacon(&self.cfg.url, &body) {
                    break; // the rest stays stored for the next page load
                }
                self.stats.beacons += 1;
            }
        }
        self.arm_timer(now);
    }

    /// The page is visible again: beaconed records are sent once more to be acknowledged
    /// (the server stores them once either way).
    pub(crate) fn visible(&mut self) {
        if self.unconfirmed.is_empty() {
            return;
        }
        let now = self.host.now();
        for r in std::mem::take(&mut self.unconfirmed).into_iter().rev() {
            self.requeue_front(r, now);
        }
        self.pump(now);
    }

    /// The browser is back online: retry now.
    pub(crate) fn online(&mut self) {
        self.waiting_online = false;
        if let Some(b) = &mut self.batch {
            b.attempts = 0;
            self.retry_at = 0.0;
        }
        let now = self.host.now();
        self.pump(now);
    }

    /// Sends everything now: queued records without waiting for the interval, and repeats
    /// without waiting for their window. A batch waiting out a backoff keeps waiting.
    pub(crate) fn flush(&mut self) {
        let now = self.host.now();
        let mut follow = Vec::new();
        self.folds.drain_repeats(&mut follow);
        self.enqueue_follow_ups(follow, now);
        self.flush_all = true;
        self.pump(now);
    }

    /// Flushes and takes no more captures.
    pub(crate) fn close(&mut self) {
        self.flush();
        self.closed = true;
    }

    /// Records not yet acknowledged (queued, in flight, repeats, drafts).
    pub(crate) fn pending(&self) -> usize {
        self.queue.len()
            + self.batch.as_ref().map_or(0, |b| b.records.len())
            + self.folds.pending()
            + self.drafts.len()
    }

    /// Takes over records stored by earlier pages (several stored texts joined by newlines).
    /// Returns how many were taken.
    pub(crate) fn restore(&mut self, text: &str) -> usize {
        let now = self.host.now();
        let mut seen: Vec<[u8; 16]> = self.queue.iter().filter_map(Rec::id).collect();
        let mut taken = 0;
        for line in queue::stored_records(text, now as i64) {
            if self.queue.len() >= self.cfg.max_queue {
                break;
            }
            let Some(id) = queue::wire_id(line) else {
                continue;
            };
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            let rec = Rec {
                seq: self.seq(),
                queued: now,
                body: Body::Wire(line.into()),
            };
            self.queue_bytes += rec.len();
            self.queue.push(rec);
            taken += 1;
        }
        if taken > 0 {
            self.stats.restored += taken as u32;
            self.store(now);
            self.pump(now);
        }
        taken
    }

    /// Starts a batch when one is due, sends a batch that may go, and re-arms the timer.
    fn pump(&mut self, now: f64) {
        if self.batch.is_none() && !self.queue.is_empty() && self.due(now) {
            let records = self.take_batch();
            let seq = self.seq();
            self.batch = Some(Batch {
                seq,
                records,
                attempts: 0,
            });
            self.retry_at = 0.0;
        }
        if self.queue.is_empty() {
            self.flush_all = false;
        }
        if !self.in_flight && !self.waiting_online && now >= self.retry_at && self.batch.is_some() {
            if self.host.online() {
                let seq = self.seq();
                if let Some(b) = &mut self.batch {
                    b.seq = seq;
                    self.in_flight = true;
                    self.host.send(seq, &self.cfg.url, &b.body());
                }
            } else {
                self.waiting_online = true;
                self.store(now);
            }
        }
        self.arm_timer(now);
    }

    fn due(&self, now: f64) -> bool {
        self.flush_all
            || self.queue.len() >= self.batch_records
            || self.queue_bytes >= self.cfg.max_batch_bytes
            || self
                .queue
                .first()
                .is_some_and(|r| now - r.queued >= self.cfg.flush_interval_ms)
    }

    fn take_batch(&mut self) -> Vec<Rc<str>> {
        let mut size = 2;
        let mut n = 0;
        for r in &self.queue {
            let len = r.len() + 1;
            if n > 0 && (n >= self.batch_records || size + len > self.cfg.max_batch_bytes) {
                break;
            }
            size += len;
            n += 1;
        }
        let records: Vec<Rc<str>> = self.queue.drain(..n).map(|r| r.to_wire()).collect();
        self.queue_bytes = self.queue.iter().map(Rec::len).sum();
        records
    }

    /// Arms the host timer for the earliest thing that needs one; calls the host only when
    /// that time changes.
    fn arm_timer(&mut self, now: f64) {
        let mut next = f64::INFINITY;
        if self.batch.is_none()
            && let Some(r) = self.queue.first()
        {
            next = r.queued + self.cfg.flush_interval_ms;
        }
        if self.batch.is_some() && !self.in_flight && !self.waiting_online {
            next = next.min(self.retry_at);
        }
        if let Some(d) = self.folds.next_deadline(self.cfg.fold_window_ms) {
            next = next.min(d);
        }
        if let Some(d) = self.store_due {
            next = next.min(d);
        }
        if next == self.timer_at {
            return;
        }
        self.timer_at = next;
        if next.is_finite() {
            self.host.schedule((next - now).max(0.0));
        } else {
            self.host.schedule(-1.0);
        }
    }

    /// Stores now, or within [`STORE_EVERY_MS`] of the last store.
    fn store_soon(&mut self, now: f64) {
        if now - self.last_store >= STORE_EVERY_MS {
            self.store(now);
        } else if self.store_due.is_none() {
            self.store_due = Some(self.last_store + STORE_EVERY_MS);
            self.arm_timer(now);
        }
    }

    /// Writes every record in custody to storage (or clears it when there are none).
    fn store(&mut self, now: f64) {
        self.store_due = None;
        self.last_store = now;
        let queued: Vec<Rc<str>> = self.queue.iter().map(Rec::to_wire).collect();
        let all = self
            .unconfirmed
            .iter()
            .chain(self.batch.iter().flat_map(|b| b.records.iter()))
            .chain(queued.iter())
            .map(|r| &**r);
        match queue::store_text(all) {
            Some(text) => {
                self.host.store(&text);
                self.stored = true;
                self.stats.stores += 1;
            }
            None if self.stored => {
                self.host.store("");
                self.stored = false;
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests;
