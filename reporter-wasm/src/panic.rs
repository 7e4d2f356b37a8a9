//! A panic inside the reporter: reported once, then the reporter stays off.
//!
//! The module is built with `panic = "abort"`, so a panic ends in a wasm trap. The hook runs
//! before the trap: it marks the module dead (every export checks that first and returns at
//! once, touching no state that the panic may have left half-changed) and sends one record
//! about the panic with `navigator.sendBeacon`, built from text prepared at start so the
//! hook needs no reporter state. The trap itself surfaces as an exception in the package's
//! JavaScript guard, which detaches every listener and wrapper: the page never sees it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use faultline_schema::Level;

use crate::config::Config;
use crate::id;
use crate::json;

static DEAD: AtomicBool = AtomicBool::new(false);

/// The record sent when the reporter panics, prepared at start.
#[derive(Debug)]
struct Prepared {
    url: String,
    id: [u8; 16],
    /// From `"service"` to `"message":` included.
    head: String,
    /// `,"meta":{...}}`.
    meta: String,
}

thread_local! {
    static PREPARED: RefCell<Option<Prepared>> = const { RefCell::new(None) };
}

/// Whether a panic has switched the reporter off.
pub(crate) fn is_dead() -> bool {
    DEAD.load(Ordering::Relaxed)
}

/// Prepares the panic record for `cfg` and installs the hook.
pub(crate) fn install(cfg: &Config, id: [u8; 16]) {
    let prepared = prepare(cfg, id);
    PREPARED.with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            *p = Some(prepared);
        }
    });
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("panic");
        let location = info.location().map(|l| (l.file(), l.line()));
        report(message, location);
    }));
}

fn prepare(cfg: &Config, id: [u8; 16]) -> Prepared {
    let mut head = String::new();
    json::push_field(&mut head, "service", &cfg.service);
    head.push(',');
    json::push_field(&mut head, "level", Level::Error.as_str());
    head.push(',');
    json::push_field(&mut head, "event", "faultline.reporter_panic");
    head.push(',');
    json::push_key(&mut head, "message");
    let mut meta = String::from(",\"meta\":{");
    json::push_field(&mut meta, "user_agent", &cfg.user_agent);
    if let Some(r) = &cfg.release {
        meta.push(',');
        json::push_field(&mut meta, "release", r);
    }
    if let Some(e) = &cfg.environment {
        meta.push(',');
        json::push_field(&mut meta, "environment", e);
    }
    meta.push_str("}}");
    Prepared {
        url: cfg.url.clone(),
        id,
        head,
        meta,
    }
}

/// Marks the reporter dead and, the first time, builds and beacons the panic record.
fn report(message: &str, location: Option<(&str, u32)>) {
    if DEAD.swap(true, Ordering::Relaxed) {
        return; // a panic while reporting a panic: once is enough
    }
    let Some(p) = PREPARED.with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take())) else {
        return;
    };
    beacon(&p.url, &body(&p, message, location, now_ms()));
}

fn body(p: &Prepared, message: &str, location: Option<(&str, u32)>, now: f64) -> String {
    let mut text = String::from("faultline reporter panicked and disabled itself: ");
    text.push_str(json::clip(message, 1_024));
    if let Some((file, line)) = location {
        text.push_str(" at ");
        text.push_str(file);
        text.push(':');
        json::push_u64(&mut text, u64::from(line));
    }
    let mut out = String::from("[{\"id\":\"");
    id::push_uuid(&mut out, &p.id);
    out.push_str("\",");
    out.push_str("\"ts\":\"");
    json::push_ts(&mut out, now as i64);
    out.push_str("\",");
    out.push_str(&p.head);
    json::push_str(&mut out, &text);
    out.push_str(&p.meta);
    out.push(']');
    out
}

#[cfg(target_arch = "wasm32")]
fn now_ms() -> f64 {
    js_sys::Date::now()
}

#[cfg(not(target_arch = "wasm32"))]
fn now_ms() -> f64 {
    0.0
}

#[cfg(target_arch = "wasm32")]
fn beacon(url: &str, body: &str) {
    if let Some(window) = web_sys::window() {
        // `send_beacon` is a `catch` import: a refusal is an `Err`, never a throw.
        let _ = window.navigator().send_beacon_with_opt_str(url, Some(body));
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn beacon(_url: &str, _body: &str) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::Opts;

    #[test]
    fn the_panic_record_is_valid() {
        let cfg = Config::from_options(&Opts::minimal(), "UA").unwrap();
        let p = prepare(&cfg, id::uuid_v7(1, &mut id::Rng::from_seed(&[1; 32])));
        let body = body(&p, "index out of bounds \"x\"", Some(("src/a.rs", 7)), 1e12);
        let batch = faultline_schema::decode_batch(body.as_bytes()).unwrap();
        assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
        let r = &batch.records[0];
        assert_eq!(r.event, "faultline.reporter_panic");
        assert_eq!(
            r.message,
            "faultline reporter panicked and disabled itself: index out of bounds \"x\" at src/a.rs:7"
        );
        assert_eq!(r.meta["user_agent"], "UA");
    }
}
