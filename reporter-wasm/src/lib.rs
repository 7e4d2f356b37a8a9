//! `faultline-reporter`: the WebAssembly core of the npm package `faultline-reporter`.
//!
//! The module does what must be the same in the browser, in services and in the store:
//! it parses JavaScript stacks with [`faultline_schema::stack::parse`] into the schema's
//! frames, anonymizes user ids with [`faultline_schema::anonymize_user`], so the raw id
//! never leaves the page, and scrubs URL secrets with [`faultline_schema::UrlScrubber`],
//! the rule the server applies to every record. It keeps the page's scope ([`scope_set`])
//! and writes every record with it ([`record`], `record.rs`), fitted to the schema's limits
//! with the schema's rules, decides folding, sampling and the per-page cap ([`admit`]), and
//! delivers batches (`outbox.rs`: [`outbox_add`] and the exports after it). The package's
//! JavaScript (`js/`) does the rest: it owns the error listeners and every wrapper in the page
//! (the module attaches its own page-life listeners: `outbox.rs`), reads errors and
//! breadcrumbs from them, and calls the exports below through a guard that catches
//! anything they throw. The other public functions ([`frames`], [`anonymize`],
//! [`fit_event`], [`fit_message`], [`meta_over`], [`fold_of`], [`scrub_names`]) are the
//! parts these use, public for the browser tests; the package does not call them.
//!
//! # The path of an error through the package
//!
//! 1. **Caught** by `js/index.js`: the `error` and `unhandledrejection` listeners,
//!    `console.error` (when enabled), `captureException`, the React `ErrorBoundary`, or the
//!    inline snippet (`js/snippet.js`) before the module has loaded. Its type, message and
//!    stack are read there.
//! 2. **Filtered** in `js/index.js` (the default ignore list, `ignoreErrors` and
//!    `denyUrls`), then **folded, sampled, capped** here ([`admit`]: a repeat within
//!    `foldWindowMs` increments the queued record's `meta.count`; sampling; the per-page
//!    cap).
//! 3. **Built** here ([`record`]): the page's text scrubbed ([`scrub`]'s rule) and its own
//!    fields, with the scope (the user anonymized by [`scope_set`], tags, extra, contexts,
//!    breadcrumbs) and `Error.stack` parsed into `meta.stack`, innermost first, **fitted** to
//!    the schema's limits; after `beforeSend`, fitted again.
//! 4. **Delivered** here (`outbox.rs`): batches by count, bytes and time, one request in
//!    flight through the page's own `fetch` with keepalive, retries with backoff and
//!    `Retry-After`, `localStorage` while failing and when the page is hidden, `sendBeacon`
//!    on the way out, resent on the next load; ids make every replay idempotent.
//!
//! A panic here goes to the module's own panic handler (`panic.rs`; the wasm is `no_std`,
//! so std's panic runtime and message formatting are not in it), which keeps a report with
//! the panic's place; the package takes it with [`panicked`] once the trap reaches its
//! guard, sends it once and switches the reporter off.
//!
//! # Why not all of it is in Rust (yet)
//!
//! The first version had the whole reporter core in Rust. It measured 95 KB of wasm after
//! `wasm-opt -Oz` (45 KB gzip), against a budget of 20 KB for everything: the schema's stack
//! parser and SHA-256 alone are 16 KB gzip on stable Rust (string searching, Unicode tables
//! and the panic machinery they bring), and every further feature costs two to three times
//! its JavaScript size. So the module keeps what must be shared with the server, and the
//! browser's own JSON, timers and `fetch` do the rest. `docs/BENCHMARKS.md` has the figures.
//! Each move into Rust since is measured: scrubbing +4.1 KB gzip, fitting +1.1 KB, the gate
//! +1.0 KB (the JavaScript they replaced was a few hundred bytes). The outbox in Rust
//! (`web-sys` requests, beacons, storage and listeners, `gloo-timers`) passed the browser
//! tests but cost +9.1 KB of wasm, and its glue grew more than `outbox.js` weighed: past
//! `@sentry/browser`'s size. Written again without `js-sys`, `web-sys` or owned closures
//! (the module's own few imports, one callback export that `index.js` wires to the page's
//! events and that the timer and requests call) it costs +6.2 KB gzip in all and is in the
//! module: `outbox.rs` says how.
//! The module built `no_std` with its own panic handler (no std panic runtime, no
//! `core::fmt`) is 2.0 KB gzip smaller (19,936 to 17,967 bytes).
//! Capture itself in the module (a `capture` export for the package's API, the module's own
//! `error` and `unhandledrejection` listeners, the thrown value read and filtered, the
//! record's fields written and `beforeSend` called from here) was built and measured on
//! 2026-12-08: wasm +5.9 KB gzip for 0.5 KB less JavaScript, 1.14x `@sentry/browser` in
//! all, because every step of it reads or writes JavaScript values through imports. Not
//! kept; `docs/BENCHMARKS.md` has the parts.
//!
//! # Layout
//!
//! - `lib.rs`: the exports. `frames.rs`: stacks to frame JSON. `json.rs`: JSON output.
//! - `fit.rs`: `event`, `message` and `meta` fitted to the schema's limits.
//! - `gate.rs`: repeats folded, sampling, the per-page cap.
//! - `scrub.rs`: the page's [`faultline_schema::UrlScrubber`] and its extra names.
//! - `panic.rs`: the panic handler (the hook, with `std`).
//! - `local.rs`: the module's state in one cell, a thread-local with `std`, a static without.
//! - `outbox.rs`: delivery (batches, retries, storage, beacons).
//! - `record.rs`: the scope, and records built and fitted.
//! - `js/`: the package: `index.js` (API, capture, hooks), `notices.js`, `react.js`,
//!   `snippet.js`, `vite.js`, types, README.
//! - `tests/web.rs`: these exports in a real browser (`wasm-pack test --headless --chrome`).

#![cfg_attr(all(target_arch = "wasm32", not(feature = "std")), no_std)]

extern crate alloc;

mod fit;
mod frames;
mod gate;
mod json;
mod local;
mod outbox;
mod panic;
mod record;
mod scrub;

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use wasm_bindgen::prelude::*;

/// A small first-fit allocator: the module's allocations are few and short-lived, and
/// dlmalloc would be a fifth of the module.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

pub use fit::META_BUDGET;
pub use frames::{MAX_FRAMES, MAX_STACK_BYTES};

/// Starts the module (with `std`, installs the panic hook; [`scope_set`]'s start calls it).
/// A panic keeps its report for [`panicked`] before the trap that ends the call that
/// panicked.
pub fn start() {
    panic::install();
}

/// The report of the panic that switched the module off (`faultline reporter panicked at
/// FILE:LINE: ...`), once; `""` without one. Works when the module is off.
#[wasm_bindgen]
pub fn panicked() -> String {
    panic::take()
}

/// `meta.stack` for an error: `stack` parsed with [`faultline_schema::stack::parse`] as a
/// JSON array of frames, innermost first, at most [`MAX_FRAMES`]. Without a usable stack,
/// `file`, `line` and `column` (0: unknown) make the one frame; `""` when there is nothing.
pub fn frames(stack: &str, file: &str, line: u32, column: u32) -> String {
    if panic::is_dead() {
        return String::new();
    }
    frames::frames_json(stack, file, line, column)
}

/// `meta.user` for a raw user id: [`faultline_schema::anonymize_user`] with the project's
/// public salt (`"u_"` and 16 hex characters).
pub fn anonymize(salt: &str, raw_id: &str) -> String {
    if panic::is_dead() {
        return String::new();
    }
    faultline_schema::anonymize_user(salt, raw_id)
}

/// Sets the extra secret URL parameter names (`denyUrlParams`) that [`scrub`] filters
/// besides the schema's own, one per line ([`scope_set`]'s 7 does, for the package).
pub fn scrub_names(names: &str) {
    if !panic::is_dead() {
        // Split as bytes (by the schema): `str::split` brings its searcher and `memchr` into
        // the wasm.
        scrub::configure(names.as_bytes());
    }
}

/// `text` without URL credentials and with secret parameters' values `[Filtered]`: the
/// schema's [`faultline_schema::UrlScrubber`], the rule the server applies too. JSON text
/// stays valid JSON.
#[wasm_bindgen]
pub fn scrub(text: &str) -> String {
    if panic::is_dead() {
        return String::new();
    }
    scrub::scrub(text)
}

/// `event` fitted to the schema's rule (no control characters, at most
/// [`faultline_schema::MAX_EVENT_CHARS`] characters); `fallback` when nothing is left.
pub fn fit_event(event: &str, fallback: &str) -> String {
    if panic::is_dead() {
        return String::new();
    }
    fit::event(event, fallback)
}

/// `message` fitted to the schema's rule: NUL characters replaced, cut to
/// [`faultline_schema::MAX_MESSAGE_BYTES`] with the schema's truncation marker.
pub fn fit_message(message: &str) -> String {
    if panic::is_dead() {
        return String::new();
    }
    fit::message(message)
}

/// How `json`, a record's `meta` as compact JSON, misses the schema's limits: 2 nested
/// deeper than [`faultline_schema::MAX_META_DEPTH`], else 1 past [`META_BUDGET`] bytes,
/// else 0.
pub fn meta_over(json: &str) -> u8 {
    if panic::is_dead() {
        return 0;
    }
    fit::meta_over(json)
}

/// [`scope_set`]'s `what` that panics as a bug would ([`test_panic`]): the package's
/// `__panic()`, for the tests of the panic path.
pub const PANIC: u8 = 9;

/// Changes the page's scope: `what` 0, 1, 2 sets a tag, an extra value or a context `name`
/// to `value`, JSON text, or removes it (`value` empty); 3 sets the user, `value` the raw id,
/// anonymized at once with [`faultline_schema::anonymize_user`] (only that is kept; empty
/// clears it); 4 adds a breadcrumb (`value`: its JSON); 5 saves the scope (`withScope`), 6
/// restores it (breadcrumbs stay); 7 starts the module ([`start`]) and the scope afresh with
/// `name` the project's public salt, `n` breadcrumbs kept and `value` the extra secret URL
/// parameter names, one per line ([`scrub_names`]); [`PANIC`] panics (the package's test
/// hook). Returns the user's anonymized id (`""`: none).
#[wasm_bindgen(js_name = "scopeSet")]
pub fn scope_set(what: u8, name: &str, value: &str, n: u32) -> String {
    if panic::is_dead() {
        return String::new();
    }
    if what == record::INIT {
        start();
        scrub_names(value);
    }
    if what == PANIC {
        test_panic(1);
    }
    local::with_scope(|s| s.set(what, name, value, n).to_owned()).unwrap_or_default()
}

/// A record's JSON, fitted to the schema's limits. `parts`: the record's `event`, `message`,
/// the error's `stack` and `file` (its text scrubbed by the package) and `fields`, the page's
/// JSON object of the record, separated by NUL characters (one string rather than five is
/// less glue; none of them keeps a NUL: the schema replaces it, JSON escapes it). `event`
/// and `message` are fitted by the schema's rules and, when `scoped`, the scope (tags,
/// extra, contexts, breadcrumbs, the anonymized user) and the frames of `stack` (or `file`,
/// `line`, `column`; 0 unknown) are added to `meta`, which is then fitted within its size
/// and depth (dropping breadcrumbs, outer frames, `extra`, `contexts`, `tags`, the
/// component stack, the stack, then the rest, until it is). Not `scoped`: a record
/// `beforeSend` changed, fitted again.
#[wasm_bindgen]
pub fn record(scoped: bool, parts: &str, line: u32, column: u32) -> String {
    if panic::is_dead() {
        return String::new();
    }
    let mut rest = parts;
    let mut next = || {
        let b = rest.as_bytes();
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        let part = rest.get(..end).unwrap_or_default();
        rest = rest.get(end + 1..).unwrap_or_default();
        part
    };
    let (event, message, stack, file) = (next(), next(), next(), next());
    local::with_scope(|s| s.record(scoped, event, message, rest, stack, file, line, column))
        .unwrap_or_default()
}

/// Sets the gate's options: `foldWindowMs`, `sampleRate`, `maxPerPage` ([`outbox_init`]
/// reads them from the package's options).
pub fn gate_init(fold_window_ms: f64, sample_rate: f64, max_per_page: f64) {
    if !panic::is_dead() {
        local::with_gate(|g| g.reset(fold_window_ms, sample_rate, max_per_page));
    }
}

/// The id of the record that an error with fold key `key` repeats at `now` (ms since the
/// epoch), or `""`.
pub fn fold_of(key: &str, now: f64) -> String {
    if panic::is_dead() {
        return String::new();
    }
    local::with_gate(|g| g.fold_of(key, now).map(str::to_owned))
        .flatten()
        .unwrap_or_default()
}

/// What becomes of an error with fold key `key` at `now` (ms since the epoch): the id of
/// the queued record it repeats, whose `meta.count` is raised (a record a request carries
/// takes no repeat); else `id` when it is to become record `id` (repeats of `key` now fold
/// into it); `"1"` when the sample rate (`random`: `Math.random()`) did not draw it, `"2"`
/// past the per-page cap.
#[wasm_bindgen]
pub fn admit(key: &str, id: &str, now: f64, random: f64) -> String {
    if panic::is_dead() {
        return "2".into();
    }
    let fold = fold_of(key, now);
    if !fold.is_empty() && local::with_outbox(|b| outbox::bump(b, &fold)) == Some(true) {
        return fold;
    }
    match local::with_gate(|g| g.admit(key, id, now, random)) {
        Some(gate::Verdict::Capture) => id.into(),
        Some(gate::Verdict::Sampled) => "1".into(),
        _ => "2".into(),
    }
}

/// Starts the outbox and the gate: this page's storage key (`faultline:<service>:<page>`),
/// the package's options (`url`, `fetch`, `batchSize`, `maxBatchBytes`, `flushIntervalMs`,
/// `maxQueue`; for the gate `foldWindowMs`, `sampleRate`, `maxPerPage`) and [`outbox_on`] as
/// the page calls it.
#[wasm_bindgen(js_name = "outboxInit")]
pub fn outbox_init(key: &str, options: JsValue, on: JsValue) {
    let number = |name| outbox::number(&options, name);
    gate_init(
        number("foldWindowMs"),
        number("sampleRate"),
        number("maxPerPage"),
    );
    if !panic::is_dead() {
        local::with(|s| s.listener.replace(Some(on.clone())));
        local::set_outbox(outbox::new(key, options, on));
        local::with_outbox(outbox::start);
    }
}

/// The outbox's callback: its timer, the page-life events (the module attaches it to them
/// when it starts, and detaches it on close and on a panic), a request's end, and `{type:
/// "close"}` from the package's `close()` (and from a fault the package caught).
#[wasm_bindgen(js_name = "outboxOn")]
pub fn outbox_on(v: JsValue) {
    if !panic::is_dead() {
        local::with_outbox(|b| outbox::on(b, v));
    }
}

/// Queues record `rec` (`json`: its serialization); false when the outbox is full.
#[wasm_bindgen(js_name = "outboxAdd")]
pub fn outbox_add(rec: JsValue, json: &str) -> bool {
    !panic::is_dead() && local::with_outbox(|b| outbox::add(b, rec, json.into())).unwrap_or(false)
}

/// Milliseconds until the next request may start; -1 when nothing is queued, -2 when
/// records are queued but none may go now.
#[wasm_bindgen(js_name = "outboxWait")]
pub fn outbox_wait() -> f64 {
    if panic::is_dead() {
        -1.0
    } else {
        local::with_outbox(|b| outbox::wait(b)).unwrap_or(-1.0)
    }
}

/// Starts the next request; its promise, or undefined.
#[wasm_bindgen(js_name = "outboxSend")]
pub fn outbox_send() -> JsValue {
    if panic::is_dead() {
        JsValue::UNDEFINED
    } else {
        local::with_outbox(outbox::send).unwrap_or(JsValue::UNDEFINED)
    }
}

/// The outbox's counter `i`: queued, sent, dropped, retries, beacons, rejected.
#[wasm_bindgen(js_name = "outboxStat")]
pub fn outbox_stat(i: usize) -> u32 {
    local::with_outbox(|b| outbox::stat(b, i)).unwrap_or(0)
}

/// Panics reading past the end of an empty list, as a bug would: the tests of the panic
/// path call it through the package's guard. A `panic!` with a literal message rather than
/// `empty[index]`: indexing's panic formats the index and length, and was the last path
/// that kept core's integer formatting (its digit table) in the wasm.
pub fn test_panic(index: usize) -> u8 {
    let empty: Vec<u8> = Vec::new();
    match empty.get(index) {
        Some(&b) => b,
        None => panic!("index out of bounds (the package's test hook)"),
    }
}
