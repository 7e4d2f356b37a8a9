//! `faultline-reporter`: the browser reporter, the WebAssembly core of the npm package
//! `faultline-reporter`.
//!
//! This file is the whole `#[wasm_bindgen]` surface. It is not the package's public API:
//! `js/index.js` is. That script owns everything that touches the page (listeners, the
//! `console`/`fetch`/`XMLHttpRequest`/`history` wrappers, timers, `fetch` and
//! `sendBeacon`, `localStorage`) and calls the exports below through one guard that
//! catches whatever they throw, so no fault of the reporter can reach the host page.
//!
//! # The path of an error through the reporter
//!
//! 1. **Caught** in the page by `js/index.js` (`window` `error` and `unhandledrejection`
//!    listeners, `console.error`, `captureException`, the React `ErrorBoundary`), or by the
//!    inline snippet (`js/snippet.js`) before the module has loaded; its name, message and
//!    stack are read there and passed to [`capture`].
//! 2. **Filtered** (`filter.rs`): `Script error.` without details, ResizeObserver loops and
//!    browser-extension URLs by default, then the page's `ignoreErrors` and `denyUrls`.
//! 3. **Folded** (`fold.rs`): a repeat of an error seen within `foldWindowMs` increments the
//!    first record's `meta.count` instead of making a record. New records are sampled
//!    (`sampleRate`) and counted against `maxEventsPerPage`.
//! 4. **Built** (`event.rs`): `Error.stack` becomes `meta.stack` through
//!    `faultline_schema::stack::parse`; the scope (`scope.rs`: the user, anonymized with
//!    `faultline_schema::anonymize_user` when `setUser` is called, tags, contexts and
//!    breadcrumbs) is added within the schema's `meta` limits; the record gets a UUIDv7
//!    (`id.rs`). With `beforeSend` the record goes back to the page as a draft first.
//! 5. **Queued and sent** (`reporter.rs`, `queue.rs`): batches by count, bytes and time,
//!    one in flight, retried with backoff and `Retry-After`, stored in `localStorage` while
//!    failing and when the page is hidden, beaconed on the way out, resent on the next
//!    page load. Every I/O goes through the `Host` (`host.rs`) the page provides.
//!
//! A panic inside the module is caught by a hook (`panic.rs`) that beacons one report and
//! switches the reporter off; the trap that follows is caught by the JavaScript guard.
//!
//! # Layout
//!
//! - `lib.rs`: the exports; `js.rs`: the page's host object and options.
//! - `reporter.rs`: the core state machine, with its tests in `reporter/tests.rs`.
//! - `config.rs`: options, defaults, checks. `host.rs`: what the core asks of the page.
//! - `event.rs`: records from captures. `scope.rs`: user, tags, contexts, breadcrumbs.
//! - `fold.rs`: repeat folding. `filter.rs`: ignore lists. `queue.rs`: records, batches,
//!   stored text. `id.rs`: randomness and UUIDv7. `json.rs`: JSON output.
//! - `panic.rs`: the panic hook.
//! - `js/`: the package's JavaScript (`index.js`, `react.js`, `snippet.js`), types and README.

mod config;
mod event;
mod filter;
mod fold;
mod host;
mod id;
mod js;
mod json;
mod panic;
mod queue;
mod reporter;
mod scope;

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

pub use js::JsHost;

use crate::config::Config;
use crate::event::Capture;
use crate::reporter::{Edit, Outcome, Reporter};

/// A small first-fit allocator: allocations here are few and short-lived, and dlmalloc would
/// be a third of the module.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lol_alloc::LockedAllocator<lol_alloc::FreeListAllocator> =
    lol_alloc::LockedAllocator::new(lol_alloc::FreeListAllocator::new());

thread_local! {
    static REPORTER: RefCell<Option<Reporter<JsHost>>> = const { RefCell::new(None) };
}

/// Runs `f` on the reporter, unless it is not started, is dead after a panic, or is already
/// in use (a host call re-entering the module), in which case nothing happens.
fn with<R>(f: impl FnOnce(&mut Reporter<JsHost>) -> R) -> Option<R> {
    if panic::is_dead() {
        return None;
    }
    REPORTER.with(|cell| cell.try_borrow_mut().ok()?.as_mut().map(f))
}

/// Starts (or restarts) the reporter with the page's `init()` options, the host object, 32
/// random bytes and `navigator.userAgent`. Invalid options are an error naming the option.
#[wasm_bindgen]
pub fn start(
    options: &JsValue,
    host: JsHost,
    seed: &[u8],
    user_agent: &str,
) -> Result<(), JsError> {
    if panic::is_dead() {
        return Err(JsError::new("faultline: disabled after an internal error"));
    }
    let cfg = Config::from_options(&js::JsOptions(options), user_agent)
        .map_err(|e| JsError::new(&e.0))?;
    let mut reporter = Reporter::new(host, cfg, seed);
    let panic_id = reporter.fresh_id();
    panic::install(reporter.config(), panic_id);
    REPORTER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            *slot = Some(reporter);
            Ok(())
        }
        Err(_) => Err(JsError::new(
            "faultline: start called while the reporter is busy",
        )),
    })
}

/// Takes one error or message. Returns `""` when it was dropped, `"="` and the record id
/// when it was queued or folded into a record, or `"?"` and the record's JSON when it waits
/// for `beforeSend` (then [`commit`] or [`discard`] it).
///
/// `event`: the record's event; `level`: a level name; `error_type`, `message`, `stack`:
/// from the error; `file`, `line`, `column`: the position the browser gave when there is no
/// stack; `url`: `location.href`; `extra`: a JSON object for `meta.extra` or `""`; `tags`:
/// JSON object members for this record's tags or `""`; `component_stack`: a React component
/// stack or `""`; `ts`: when it happened in ms since the epoch (0: now); `early`: queued
/// before the module loaded.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub fn capture(
    event: &str,
    level: &str,
    error_type: &str,
    message: &str,
    stack: &str,
    file: &str,
    line: u32,
    column: u32,
    url: &str,
    extra: &str,
    tags: &str,
    component_stack: &str,
    ts: f64,
    early: bool,
) -> String {
    let event = if event::valid_event(event) {
        event
    } else {
        "exception"
    };
    let c = Capture {
        event,
        level: event::parse_level(level),
        error_type,
        message,
        stack,
        file,
        line,
        column,
        page_url: url,
        extra,
        tags,
        component_stack,
        ts: (ts > 0.0).then_some(ts),
        early,
    };
    let outcome = with(|r| r.capture(&c)).unwrap_or(Outcome::Dropped);
    match outcome {
        Outcome::Dropped => String::new(),
        Outcome::Folded(id) | Outcome::Queued(id) => {
            let mut s = String::with_capacity(37);
            s.push('=');
            id::push_uuid(&mut s, &id);
            s
        }
        Outcome::Draft(json) => {
            let mut s = String::with_capacity(json.len() + 1);
            s.push('?');
            s.push_str(&json);
            s
        }
    }
}

/// Queues a draft after `beforeSend`: with `edited`, its `level`, `event`, `message` and
/// `meta` (a JSON object) replace the draft's when they keep the record valid. Returns
/// whether the edit was applied.
#[wasm_bindgen]
pub fn commit(id: &str, edited: bool, level: &str, event: &str, message: &str, meta: &str) -> bool {
    let edit = edited.then_some(Edit {
        level,
        event,
        message,
        meta,
    });
    with(|r| r.commit(id, edit)).unwrap_or(false)
}

/// Drops a draft `beforeSend` refused.
#[wasm_bindgen]
pub fn discard(id: &str) {
    with(|r| r.discard(id));
}

/// Adds a breadcrumb; `data` is a JSON object or `""`.
#[wasm_bindgen]
pub fn breadcrumb(category: &str, message: &str, level: &str, data: &str) {
    with(|r| r.breadcrumb(category, message, level, data));
}

/// Sets the user (`None` clears it). The id is anonymized at once; returns `false` when no
/// salt is configured, and nothing is set.
#[wasm_bindgen]
pub fn set_user(raw_id: Option<String>) -> bool {
    with(|r| r.set_user(raw_id.as_deref()).is_ok()).unwrap_or(false)
}

/// Sets a tag (`None` removes it). Returns whether it was accepted.
#[wasm_bindgen]
pub fn set_tag(key: &str, value: Option<String>) -> bool {
    with(|r| r.set_tag(key, value.as_deref()).is_ok()).unwrap_or(false)
}

/// Sets a named context from a JSON object (`None` removes it). Returns whether it was
/// accepted.
#[wasm_bindgen]
pub fn set_context(name: &str, json: Option<String>) -> bool {
    with(|r| r.set_context(name, json.as_deref()).is_ok()).unwrap_or(false)
}

/// The host timer fired.
#[wasm_bindgen]
pub fn tick() {
    with(|r| r.tick());
}

/// The answer to batch `seq`: HTTP status (0: network error), `Retry-After` in ms
/// (negative: none), records the server rejected.
#[wasm_bindgen]
pub fn response(seq: u32, status: u16, retry_after_ms: f64, rejected: u32) {
    with(|r| r.on_response(seq, status, retry_after_ms, rejected));
}

/// The page is being hidden or unloaded.
#[wasm_bindgen]
pub fn hidden() {
    with(|r| r.hidden());
}

/// The page is visible again.
#[wasm_bindgen]
pub fn visible() {
    with(|r| r.visible());
}

/// The browser is back online.
#[wasm_bindgen]
pub fn online() {
    with(|r| r.online());
}

/// Sends everything queued now.
#[wasm_bindgen]
pub fn flush() {
    with(|r| r.flush());
}

/// Flushes and takes no more captures.
#[wasm_bindgen]
pub fn close() {
    with(|r| r.close());
}

/// Records not yet acknowledged by the server.
#[wasm_bindgen]
pub fn pending() -> u32 {
    with(|r| r.pending() as u32).unwrap_or(0)
}

/// Takes over records stored by earlier pages; returns how many.
#[wasm_bindgen]
pub fn restore(text: &str) -> u32 {
    with(|r| r.restore(text) as u32).unwrap_or(0)
}

/// The reporter's counters as JSON (`{"captured":…,"sent":…,…}`), `""` before start.
#[wasm_bindgen]
pub fn stats() -> String {
    with(|r| r.stats().to_json()).unwrap_or_default()
}

/// Whether the reporter switched itself off after an internal error.
#[wasm_bindgen]
pub fn dead() -> bool {
    panic::is_dead()
}

/// Panics inside the reporter, as a bug would: for the tests of the panic path.
#[wasm_bindgen(js_name = "__panic")]
pub fn test_panic() {
    with(|r| {
        if r.config().max_queue > 0 {
            panic!("deliberate panic (faultline test hook)");
        }
    });
}
