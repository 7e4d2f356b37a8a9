//! Delivery: batches by count, bytes and time; one request in flight; retries with backoff, jitter
//! and `Retry-After`; `localStorage` while failing or hidden, per page, claimed by the next page
//! when this one is gone; `sendBeacon` on the way out. Requests go through the page's own `fetch`
//! as it was before the package wrapped it (passed in by `index.js`), with keepalive.
//!
//! Small on purpose (the shipped package must stay under `@sentry/browser`'s size): every import
//! below is a function of wasm-bindgen's glue, every owned closure brings its shims, and
//! `js-sys`/`web-sys` bring more of both. So the module declares the few imports it needs and
//! reaches globals by name (`localStorage.getItem`, `navigator.sendBeacon`, `document.hidden`), and
//! the page calls back into one export, [`on`] (passed in by `index.js` as `outboxOn`, through its
//! guard): the timer (`setTimeout`'s extra argument is the callback itself), the four page-life
//! events (the module attaches it to `window` itself, and detaches it on `close()`, a fault or a
//! panic: [`detach`]) and both ends of a request's promise, told apart by the
//! value they pass. Records are kept as their JSON text (and the object, for folds); each carries
//! its own flags (in the request in flight, handed to a beacon, in this page's stored entry) rather
//! than sets of ids. The request's init is JSON text parsed by the browser; a beacon's body is the
//! text itself (sent as `text/plain;charset=UTF-8`, which the server takes like `text/plain`).

use alloc::string::String;
use alloc::vec::Vec;

use wasm_bindgen::prelude::*;

use crate::json::{push_str, push_u64};

/// Under the 64 KiB the browser allows for beacons and keepalive.
const BEACON_BYTES: usize = 60_000;
const MAX_BACKOFF_MS: f64 = 60_000.0;
/// `localStorage` budget for a page's unsent records.
const STORE_BYTES: usize = 256_000;
/// A page that has not rewritten its entry for this long is gone.
const STALE_MS: f64 = 600_000.0;

/// In the request in flight.
const FLYING: u8 = 1;
/// Handed to a beacon since the page was last visible.
const BEACONED: u8 = 2;
/// In the entry this page last wrote.
const STORED: u8 = 4;
/// The end of the mark a page leaves on the entries it claimed, `{"at":..,"claimed":1}`.
const CLAIMED: &str = ",\"claimed\":1}";
/// In the beacon being sent.
const PICKED: u8 = 8;

#[wasm_bindgen]
extern "C" {
    /// The page's globals, for their getters below.
    type Page;
    /// A fetch `Response`'s headers.
    type Headers;
    /// The page's own `fetch`.
    type Fetch;
    /// What it returns.
    type Request;
    /// A function of the page's.
    type Function;

    #[wasm_bindgen(js_namespace = Date)]
    fn now() -> f64;
    #[wasm_bindgen(js_namespace = Math)]
    fn random() -> f64;
    #[wasm_bindgen(js_namespace = JSON, catch)]
    fn parse(text: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_namespace = JSON)]
    fn stringify(value: &JsValue) -> String;
    /// `target[key]`; an error (not an object) as `Err`.
    #[wasm_bindgen(js_namespace = Reflect, js_name = get, catch)]
    fn field(target: &JsValue, key: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_namespace = Reflect, catch)]
    fn set(target: &JsValue, key: &str, value: f64) -> Result<bool, JsValue>;
    /// `setTimeout(f, ms, f)`: [`on`] called with itself is the timer (nothing else hands
    /// the page the reporter's own callback).
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &Function, ms: f64, tick: &Function) -> f64;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: f64);
    #[wasm_bindgen(js_namespace = localStorage, js_name = getItem, catch)]
    fn get_item(key: &str) -> Result<Option<String>, JsValue>;
    #[wasm_bindgen(js_namespace = localStorage, js_name = setItem, catch)]
    fn set_item(key: &str, value: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(js_namespace = localStorage, js_name = removeItem, catch)]
    fn remove_item(key: &str) -> Result<(), JsValue>;
    #[wasm_bindgen(js_namespace = localStorage, catch)]
    fn key(index: u32) -> Result<Option<String>, JsValue>;
    /// A string body goes as `text/plain;charset=UTF-8`: no preflight either.
    #[wasm_bindgen(js_namespace = navigator, js_name = sendBeacon, catch)]
    fn send_beacon(url: &JsValue, body: &str) -> Result<bool, JsValue>;
    #[wasm_bindgen(static_method_of = Page, js_class = "navigator", js_name = onLine, getter)]
    fn on_line() -> bool;
    #[wasm_bindgen(static_method_of = Page, js_class = "document", getter)]
    fn hidden() -> bool;
    #[wasm_bindgen(method, js_name = call, catch)]
    fn call2(
        this: &Fetch,
        ctx: &JsValue,
        url: &JsValue,
        init: &JsValue,
    ) -> Result<Request, JsValue>;
    #[wasm_bindgen(method)]
    fn then(this: &Request, ok: &Function, failed: &Function) -> JsValue;
    /// A header as a number (the boundary converts the text, `null` to 0).
    #[wasm_bindgen(method, js_name = get)]
    fn number(this: &Headers, name: &str) -> f64;
    #[wasm_bindgen(js_namespace = window, js_name = addEventListener)]
    fn add_listener(kind: &str, f: &JsValue);
    #[wasm_bindgen(js_namespace = window, js_name = removeEventListener)]
    fn remove_listener(kind: &str, f: &JsValue);
}

/// The page-life events the outbox acts on, listened for on `window` (`visibilitychange`,
/// fired at the document, bubbles to it).
const EVENTS: [&str; 4] = ["pagehide", "pageshow", "online", "visibilitychange"];

/// One queued record: its id, the object (for folds) and its serialization.
struct Entry {
    id: String,
    rec: JsValue,
    json: String,
    flags: u8,
}

/// The page's outbox.
pub(crate) struct Outbox {
    queue: Vec<Entry>,
    bytes: usize,
    /// Records the request in flight carries (as it started).
    flying: u32,
    /// The request in flight's promise, or undefined.
    in_flight: JsValue,
    timer: f64,
    retry_at: f64,
    failures: u32,
    closed: bool,
    /// From pagehide to pageshow no request starts.
    gone: bool,
    /// This page's entry, `faultline:<service>:<page>`; its prefix up to the last `:`.
    key: String,
    prefix: usize,
    url: JsValue,
    fetch: Fetch,
    on: Function,
    batch_size: usize,
    max_batch_bytes: usize,
    flush_ms: f64,
    max_queue: usize,
    /// sent, dropped, retries, beacons, rejected.
    stats: [u32; 5],
}

fn get(v: &JsValue, key: &str) -> JsValue {
    field(v, key).unwrap_or(JsValue::UNDEFINED)
}

/// `{"at":<now>` (an entry's start).
fn at() -> String {
    let mut s = String::from("{\"at\":");
    push_u64(&mut s, now() as u64);
    s
}

impl Outbox {
    fn push(&mut self, id: String, rec: JsValue, json: String) -> bool {
        if self.queue.len() >= self.max_queue {
            self.stats[1] += 1;
            return false;
        }
        self.bytes += json.len();
        self.queue.push(Entry {
            id,
            rec,
            json,
            flags: 0,
        });
        true
    }

    /// Drops the records with `flag`.
    fn drop_flagged(&mut self, flag: u8) {
        let bytes = &mut self.bytes;
        self.queue.retain(|e| {
            let keep = e.flags & flag == 0;
            if !keep {
                *bytes -= e.json.len();
            }
            keep
        });
    }

    fn any(&self, flag: u8) -> bool {
        self.queue.iter().any(|e| e.flags & flag != 0)
    }

    fn schedule(&mut self, ms: f64) {
        if !self.closed && self.timer == 0.0 {
            self.timer = set_timeout(&self.on, ms, &self.on);
        }
    }

    fn clear_timer(&mut self) {
        clear_timeout(self.timer);
        self.timer = 0.0;
    }

    /// `[` the records from `*i` on without `skip` that fit `limit` bytes (counting a comma
    /// after each, the first always in), at most `max` of them, `]`; and how many there are.
    /// They get `mark`; `*i` moves past them.
    fn pick(
        &mut self,
        i: &mut usize,
        limit: usize,
        max: usize,
        skip: u8,
        mark: u8,
    ) -> (String, u32) {
        let mut body = String::from("[");
        let mut n = 0;
        while let Some(e) = self.queue.get_mut(*i) {
            if e.flags & skip == 0 {
                if n == max || (n > 0 && body.len() + e.json.len() + 1 > limit) {
                    break;
                }
                if n > 0 {
                    body.push(',');
                }
                body.push_str(&e.json);
                e.flags |= mark;
                n += 1;
            }
            *i += 1;
        }
        body.push(']');
        (body, n as u32)
    }

    fn flush(&mut self) -> JsValue {
        if !self.in_flight.is_undefined() {
            return self.in_flight.clone();
        }
        self.claimed();
        if self.queue.is_empty() || self.gone {
            return JsValue::UNDEFINED;
        }
        let wait = self.retry_at - now();
        if wait > 0.0 {
            self.schedule(wait);
            return JsValue::UNDEFINED;
        }
        // The first records that fit one request.
        let (body, n) = self.pick(
            &mut 0,
            self.max_batch_bytes.saturating_sub(2),
            self.batch_size,
            0,
            FLYING,
        );
        self.flying = n;
        // text/plain needs no CORS preflight: one round trip per batch.
        let mut init = String::from(
            "{\"method\":\"POST\",\"headers\":{\"content-type\":\"text/plain\"},\"credentials\":\"omit\",\"keepalive\":",
        );
        init.push_str(if self.bytes < BEACON_BYTES {
            "true"
        } else {
            "false"
        });
        init.push_str(",\"body\":");
        push_str(&mut init, &body);
        init.push('}');
        match parse(&init).and_then(|init| self.fetch.call2(&JsValue::UNDEFINED, &self.url, &init))
        {
            Ok(p) => {
                self.in_flight = p.then(&self.on, &self.on);
                self.in_flight.clone()
            }
            Err(_) => {
                self.settle(0.0, 0.0);
                JsValue::UNDEFINED
            }
        }
    }

    /// The request in flight ended with `status` (0: failed) and `Retry-After` (seconds).
    fn settle(&mut self, status: f64, retry_after: f64) {
        let done = status == 202.0
            || ((400.0..500.0).contains(&status) && status != 408.0 && status != 429.0);
        let n = core::mem::take(&mut self.flying);
        if done {
            // Confirmed, or refused for good (a 4xx other than 408/429 will never succeed).
            self.drop_flagged(FLYING);
            self.stats[if status == 202.0 { 0 } else { 4 }] += n;
            self.failures = 0;
            self.retry_at = 0.0;
        } else {
            for e in &mut self.queue {
                e.flags &= !FLYING;
            }
            self.stats[2] += 1;
            self.failures += 1;
            let backoff = MAX_BACKOFF_MS.min(1000.0 * (1u32 << (self.failures - 1).min(20)) as f64);
            self.retry_at = now()
                + if retry_after > 0.0 {
                    retry_after * 1000.0
                } else {
                    backoff * (0.5 + random() / 2.0)
                };
        }
        self.persist(false);
        self.in_flight = JsValue::UNDEFINED;
        if !self.queue.is_empty() {
            self.schedule((self.retry_at - now()).max(0.0));
        }
    }

    /// Unconfirmed records to this page's entry, newest dropped first when over budget.
    /// `left` (the page is going away), or hidden: another page may claim them.
    fn persist(&mut self, left: bool) {
        self.claimed();
        let mut s = at();
        if left || Page::hidden() {
            s.push_str(",\"left\":1");
        }
        s.push_str(",\"records\":[");
        let mut size = 0;
        let mut first = true;
        for e in &mut self.queue {
            size += e.json.len();
            e.flags &= !STORED;
            if size <= STORE_BYTES {
                if !first {
                    s.push(',');
                }
                first = false;
                s.push_str(&e.json);
                e.flags |= STORED;
            }
        }
        s.push_str("]}");
        // Storage full or forbidden (private mode): memory only.
        let _ = if first {
            remove_item(&self.key)
        } else {
            set_item(&self.key, &s)
        };
    }

    /// Whether another page claimed this one's entry (it looked gone): those records are its.
    fn claimed(&mut self) {
        if self.any(STORED)
            && get_item(&self.key)
                .ok()
                .flatten()
                .is_some_and(|v| v.ends_with(CLAIMED))
        {
            self.drop_flagged(STORED);
        }
    }

    /// Takes over the entries of pages that are gone, and the shared entry of older versions.
    fn claim(&mut self) {
        self.claimed();
        let mut keys = Vec::new();
        while let Ok(Some(k)) = key(keys.len() as u32) {
            keys.push(k);
        }
        let t = now();
        let mut taken = Vec::new();
        for k in keys {
            let ours = k
                .strip_prefix(self.key.get(..self.prefix).unwrap_or_default())
                .is_some_and(|rest| matches!(rest.as_bytes().first(), None | Some(b':')));
            if k == self.key || !ours {
                continue;
            }
            // A corrupt entry is taken, with nothing in it.
            let v = get_item(&k)
                .ok()
                .flatten()
                .and_then(|s| parse(&s).ok())
                .unwrap_or(JsValue::NULL);
            let stale = get(&v, "at").as_f64().is_none_or(|at| t - at >= STALE_MS);
            if get(&v, "claimed").is_truthy() {
                if stale {
                    let _ = remove_item(&k); // its page never came back
                }
                continue;
            }
            if !stale && !get(&v, "left").is_truthy() {
                continue; // a live page's
            }
            taken.push(k);
            // Older versions kept the array itself.
            let mut records = get(&v, "records");
            if records.is_undefined() {
                records = v;
            }
            for i in 0.. {
                let mut index = String::new();
                push_u64(&mut index, i);
                let r = get(&records, &index);
                if r.is_undefined() {
                    break;
                }
                let Some(id) = get(&r, "id").as_string().filter(|s| !s.is_empty()) else {
                    continue;
                };
                if self.queue.iter().any(|e| e.id == id) {
                    continue;
                }
                let json = stringify(&r);
                // push() stops at maxQueue; persist() at STORE_BYTES.
                self.push(id, r, json);
            }
        }
        if taken.is_empty() {
            return;
        }
        // Ours first: a page that closes now leaves the records stored twice, never nowhere.
        self.persist(false);
        let mut mark = at();
        mark.push_str(CLAIMED);
        for k in taken {
            let _ = set_item(&k, &mark);
        }
    }

    /// The page may be going away: everything to beacons, kept stored until confirmed.
    /// Offline, a beacon can only fail: the stored copy goes out later instead.
    fn leave(&mut self) {
        self.persist(true);
        if !Page::on_line() {
            return;
        }
        let mut i = 0;
        loop {
            let (body, n) = self.pick(&mut i, BEACON_BYTES, usize::MAX, BEACONED, PICKED);
            if n == 0 {
                return;
            }
            let sent = send_beacon(&self.url, &body) == Ok(true);
            if sent {
                self.stats[3] += 1;
            }
            for e in &mut self.queue {
                if e.flags & PICKED != 0 {
                    e.flags ^= if sent { PICKED | BEACONED } else { PICKED };
                }
            }
        }
    }

    /// Visible again, or back from the back/forward cache: the entry is this page's again.
    fn show(&mut self) {
        self.gone = false;
        if self.any(STORED) {
            self.persist(false);
        }
    }
}

/// The outbox of this page's storage key, the package's options (`url`, `fetch`: the page's
/// own as it was before the package wrapped it, `batchSize`, `maxBatchBytes`,
/// `flushIntervalMs`, `maxQueue`) and [`on`] as the page calls it (for the timer and
/// requests). The module's state keeps it (`local.rs`); [`start`] then runs.
pub(crate) fn new(key: &str, o: JsValue, on: JsValue) -> Outbox {
    let number = |name| number(&o, name);
    Outbox {
        queue: Vec::new(),
        bytes: 0,
        flying: 0,
        in_flight: JsValue::UNDEFINED,
        timer: 0.0,
        retry_at: 0.0,
        failures: 0,
        closed: false,
        gone: false,
        prefix: key.bytes().rposition(|b| b == b':').unwrap_or(0),
        key: key.into(),
        url: get(&o, "url"),
        fetch: get(&o, "fetch").unchecked_into(),
        on: on.unchecked_into(),
        batch_size: number("batchSize") as usize,
        max_batch_bytes: number("maxBatchBytes") as usize,
        flush_ms: number("flushIntervalMs"),
        max_queue: number("maxQueue") as usize,
        stats: [0; 5],
    }
}

/// The package's option `name`, a number (0 when missing).
pub(crate) fn number(o: &JsValue, name: &str) -> f64 {
    get(o, name).as_f64().unwrap_or(0.0)
}

/// Listens for the page-life events with [`on`] (`outboxInit` keeps it in the module's state
/// too, so that a panic can [`detach`] it), then claims gone pages' entries and sends them
/// soon if there were any.
pub(crate) fn start(b: &mut Outbox) {
    for kind in EVENTS {
        add_listener(kind, b.on.as_ref());
    }
    b.claim();
    if !b.queue.is_empty() {
        b.schedule(0.0);
    }
}

/// The page calling back: the timer (`on` itself), a page-life event, or the request in flight's
/// response (or its failure).
pub(crate) fn on(b: &mut Outbox, v: JsValue) {
    if AsRef::<JsValue>::as_ref(&b.on) == &v {
        b.timer = 0.0;
        b.flush();
        return;
    }
    let kind = get(&v, "type").as_string().unwrap_or_default();
    // The page-life events ([`start`] listens), matched as strings: smaller in the wasm than
    // a position in an array of them.
    match kind.as_str() {
        // Closed (an event dispatched before the listeners were detached).
        "pagehide" | "pageshow" | "online" | "visibilitychange" if b.closed => {}
        "pagehide" => {
            b.gone = true;
            b.leave();
        }
        "pageshow" => b.show(),
        // The package's `close()`.
        "close" => close(b),
        "online" => {
            if !b.gone {
                b.retry_at = 0.0;
                b.claim();
                b.flush();
            }
        }
        "visibilitychange" => {
            if Page::hidden() {
                b.leave();
            } else {
                // Back from hidden: beacons may or may not have arrived; ids make a
                // resend safe.
                for e in &mut b.queue {
                    e.flags &= !BEACONED;
                }
                b.show();
                b.flush();
            }
        }
        // A request's end: its response, or why it failed.
        _ => {
            if !b.in_flight.is_undefined() {
                let status = get(&v, "status").as_f64();
                let retry = status.map_or(0.0, |_| {
                    get(&v, "headers")
                        .unchecked_into::<Headers>()
                        .number("retry-after")
                });
                b.settle(status.unwrap_or(0.0), retry);
            }
        }
    }
}

/// Queues a record; false when the outbox is full (counted as dropped) or missing.
pub(crate) fn add(b: &mut Outbox, rec: JsValue, json: String) -> bool {
    let id = get(&rec, "id").as_string().unwrap_or_default();
    if !b.push(id, rec, json) {
        return false;
    }
    if b.queue.len() >= b.batch_size || b.bytes >= b.max_batch_bytes {
        b.clear_timer();
        b.flush();
    } else {
        b.schedule(b.flush_ms);
    }
    true
}

/// Folds a repeat into a queued record that no request carries yet.
pub(crate) fn bump(b: &mut Outbox, id: &str) -> bool {
    let Some(e) = b
        .queue
        .iter_mut()
        .find(|e| e.id == id && e.flags & FLYING == 0)
    else {
        return false;
    };
    let meta = get(&e.rec, "meta");
    let count = get(&meta, "count")
        .as_f64()
        .filter(|&c| c != 0.0)
        .unwrap_or(1.0);
    let _ = set(&meta, "count", count + 1.0);
    let json = stringify(&e.rec);
    b.bytes = b.bytes + json.len() - e.json.len();
    e.json = json;
    true
}

/// For `flush()`: how long to wait before the next request (ms); -1 when there is nothing
/// to send, -2 when records are left but none may go (the outbox is closed, or the page is
/// going away).
pub(crate) fn wait(b: &Outbox) -> f64 {
    if b.queue.is_empty() {
        -1.0
    } else if b.closed || b.gone {
        -2.0
    } else {
        (b.retry_at - now()).max(0.0)
    }
}

/// Sends the next batch now; the request's promise (resolved once settled), or undefined.
pub(crate) fn send(b: &mut Outbox) -> JsValue {
    b.flush()
}

/// Counter `i`: queued, sent, dropped, retries, beacons, rejected.
pub(crate) fn stat(b: &Outbox, i: usize) -> u32 {
    match i.checked_sub(1) {
        None => b.queue.len() as u32,
        Some(i) => b.stats.get(i).copied().unwrap_or(0),
    }
}

/// Detaches `on`, the page-life listener [`start`] attached (on `close()`, a fault, a panic).
pub(crate) fn detach(on: &JsValue) {
    for kind in EVENTS {
        remove_listener(kind, on);
    }
}

/// Stops: no timer, the page-life listeners detached; what is queued stays stored.
pub(crate) fn close(b: &mut Outbox) {
    detach(b.on.as_ref());
    b.closed = true;
    b.clear_timer();
    b.persist(false);
}
