//! `faultline-reporter`: the WebAssembly core of the npm package `faultline-reporter`.
//!
//! The module does what must be the same in the browser, in services and in the store:
//! it parses JavaScript stacks with [`faultline_schema::stack::parse`] into the schema's
//! frames, anonymizes user ids with [`faultline_schema::anonymize_user`], so the raw id
//! never leaves the page, and scrubs URL secrets with [`faultline_schema::UrlScrubber`],
//! the rule the server applies to every record. It fits records to the schema's limits
//! with the schema's rules ([`fit_event`], [`fit_message`], [`meta_over`]), and decides
//! folding, sampling and the per-page cap ([`fold_of`], [`admit`]), and delivers batches
//! (`outbox.rs`: [`outbox_add`] and the exports after it). The package's JavaScript (`js/`)
//! does the rest: it owns every listener and wrapper in the page and builds records, and
//! calls the exports below through a guard that catches anything they throw.
//!
//! # The path of an error through the package
//!
//! 1. **Caught** by `js/index.js`: the `error` and `unhandledrejection` listeners,
//!    `console.error` (when enabled), `captureException`, the React `ErrorBoundary`, or the
//!    inline snippet (`js/snippet.js`) before the module has loaded. Its type, message and
//!    stack are read there.
//! 2. **Parsed** here: [`frames`] turns `Error.stack` into `meta.stack`, innermost first.
//! 3. **Filtered** in `js/index.js` (the default ignore list, `ignoreErrors` and
//!    `denyUrls`), **folded, sampled, capped** here ([`fold_of`]: a repeat within
//!    `foldWindowMs` increments the queued record's `meta.count`; [`admit`]: sampling, the
//!    per-page cap), **built** in `js/index.js` with the scope (user, tags, contexts,
//!    breadcrumbs), `beforeSend`, and **fitted** here to the schema's limits. The user id in
//!    the scope came from [`anonymize`]; every URL and text went through [`scrub`].
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
//! - `js/`: the package: `index.js` (API, capture, scope, hooks),
//!   `record.js` (values to JSON-safe data), `react.js`, `snippet.js`, types, README.
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

/// Starts the module (with `std`, installs the panic hook). A panic keeps its report for
/// [`panicked`] before the trap that ends the call that panicked.
#[wasm_bindgen]
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
#[wasm_bindgen]
pub fn frames(stack: &str, file: &str, line: u32, column: u32) -> String {
    if panic::is_dead() {
        return String::new();
    }
    frames::frames_json(stack, file, line, column)
}

/// `meta.user` for a raw user id: [`faultline_schema::anonymize_user`] with the project's
/// public salt (`"u_"` and 16 hex characters).
#[wasm_bindgen]
pub fn anonymize(salt: &str, raw_id: &str) -> String {
    if panic::is_dead() {
        return String::new();
    }
    faultline_schema::anonymize_user(salt, raw_id)
}

/// Sets the extra secret URL parameter names (`denyUrlParams`) that [`scrub`] filters
/// besides the schema's own, one per line.
#[wasm_bindgen(js_name = "scrubNames")]
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
#[wasm_bindgen(js_name = "fitEvent")]
pub fn fit_event(event: &str, fallback: &str) -> String {
    if panic::is_dead() {
        return String::new();
    }
    fit::event(event, fallback)
}

/// `message` fitted to the schema's rule: NUL characters replaced, cut to
/// [`faultline_schema::MAX_MESSAGE_BYTES`] with the schema's truncation marker.
#[wasm_bindgen(js_name = "fitMessage")]
pub fn fit_message(message: &str) -> String {
    if panic::is_dead() {
        return String::new();
    }
    fit::message(message)
}

/// How `json`, a record's `meta` as compact JSON, misses the schema's limits: 2 nested
/// deeper than [`faultline_schema::MAX_META_DEPTH`], else 1 past [`META_BUDGET`] bytes,
/// else 0.
#[wasm_bindgen(js_name = "metaOver")]
pub fn meta_over(json: &str) -> u8 {
    if panic::is_dead() {
        return 0;
    }
    fit::meta_over(json)
}

/// Sets the gate's options: `foldWindowMs`, `sampleRate`, `maxPerPage`.
#[wasm_bindgen(js_name = "gateInit")]
pub fn gate_init(fold_window_ms: f64, sample_rate: f64, max_per_page: f64) {
    if !panic::is_dead() {
        local::with_gate(|g| g.reset(fold_window_ms, sample_rate, max_per_page));
    }
}

/// The id of the record that an error with fold key `key` repeats at `now` (ms since the
/// epoch), or `""`.
#[wasm_bindgen(js_name = "foldOf")]
pub fn fold_of(key: &str, now: f64) -> String {
    if panic::is_dead() {
        return String::new();
    }
    local::with_gate(|g| g.fold_of(key, now).map(str::to_owned))
        .flatten()
        .unwrap_or_default()
}

/// Whether an error that folded into nothing becomes record `id`: 0 yes (repeats of `key`
/// now fold into it), 1 not drawn by the sample rate (`random`: `Math.random()`), 2 past the
/// per-page cap.
#[wasm_bindgen]
pub fn admit(key: &str, id: &str, now: f64, random: f64) -> u8 {
    if panic::is_dead() {
        return gate::Verdict::Capped as u8;
    }
    local::with_gate(|g| g.admit(key, id, now, random))
        .map_or(gate::Verdict::Capped as u8, |v| v as u8)
}

/// Starts the outbox: this page's storage key (`faultline:<service>:<page>`), the
/// package's options (`url`, `fetch`, `batchSize`, `maxBatchBytes`, `flushIntervalMs`,
/// `maxQueue`) and [`outbox_on`] as the page calls it.
#[wasm_bindgen(js_name = "outboxInit")]
pub fn outbox_init(key: &str, options: JsValue, on: JsValue) {
    if !panic::is_dead() {
        local::set_outbox(outbox::new(key, options, on));
        local::with_outbox(outbox::start);
    }
}

/// The outbox's callback: its timer, the page-life events, a request's end.
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

/// Folds a repeat into queued record `id`, unless a request carries it.
#[wasm_bindgen(js_name = "outboxBump")]
pub fn outbox_bump(id: &str) -> bool {
    !panic::is_dead() && local::with_outbox(|b| outbox::bump(b, id)).unwrap_or(false)
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

/// Stops the outbox; what is queued stays stored.
#[wasm_bindgen(js_name = "outboxClose")]
pub fn outbox_close() {
    if !panic::is_dead() {
        local::with_outbox(outbox::close);
    }
}

/// Panics reading past the end of an empty list, as a bug would: the tests of the panic
/// path call it through the package's guard. A `panic!` with a literal message rather than
/// `empty[index]`: indexing's panic formats the index and length, and was the last path
/// that kept core's integer formatting (its digit table) in the wasm.
#[wasm_bindgen(js_name = "__panic")]
pub fn test_panic(index: usize) -> u8 {
    let empty: Vec<u8> = Vec::new();
    match empty.get(index) {
        Some(&b) => b,
        None => panic!("index out of bounds (the package's test hook)"),
    }
}
