//! A panic inside the module: reported once, then the module stays off.
//!
//! The module is built with `panic = "abort"`, so a panic ends in a wasm trap. The hook runs
//! first: it marks the module dead (every export then returns at once, touching no state
//! the panic may have left half-changed) and hands the panic message to the callback the
//! package's JavaScript passed to `start`. The trap itself surfaces as an exception in that
//! JavaScript's guard, which sends the message as one record, detaches every listener and
//! wrapper and turns the reporter off: the page never sees the exception.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use js_sys::Function;
use wasm_bindgen::JsValue;

static DEAD: AtomicBool = AtomicBool::new(false);

thread_local! {
    static ON_PANIC: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Whether a panic has switched the module off.
pub(crate) fn is_dead() -> bool {
    DEAD.load(Ordering::Relaxed)
}

/// Installs the hook; `on_panic` receives the message once.
pub(crate) fn install(on_panic: Function) {
    // `try_with` rather than `with` here and below: `with` panics, with a formatted message,
    // when the thread-local is gone (never, on wasm), and that formatting costs wasm bytes.
    let _ = ON_PANIC.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = Some(on_panic);
        }
    });
    std::panic::set_hook(Box::new(|info| {
        if DEAD.swap(true, Ordering::Relaxed) {
            return; // a panic while reporting a panic: once is enough
        }
        let payload = info.payload();
        let text = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        let message = message(text, info.location().map(|l| (l.file(), l.line())));
        let _ = ON_PANIC.try_with(|slot| {
            if let Ok(slot) = slot.try_borrow()
                && let Some(f) = slot.as_ref()
            {
                // `call1` catches whatever the callback throws.
                let _ = f.call1(&JsValue::UNDEFINED, &JsValue::from_str(&message));
            }
        });
    }));
}

/// The report's text: `panicked at src/x.rs:12: message`.
pub(crate) fn message(text: Option<&str>, location: Option<(&str, u32)>) -> String {
    let mut out = String::from("faultline reporter panicked");
    if let Some((file, line)) = location {
        out.push_str(" at ");
        out.push_str(file);
        out.push(':');
        crate::json::push_u64(&mut out, u64::from(line));
    }
    out.push_str(": ");
    out.push_str(crate::json::clip(text.unwrap_or("(no message)"), 1_024));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_place() {
        assert_eq!(
            message(Some("index out of bounds"), Some(("src/lib.rs", 7))),
            "faultline reporter panicked at src/lib.rs:7: index out of bounds"
        );
        assert_eq!(
            message(None, None),
            "faultline reporter panicked: (no message)"
        );
        assert!(!is_dead());
    }
}
