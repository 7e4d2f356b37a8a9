//! A panic inside the module: reported once, then the module stays off.
//!
//! The module is built with `panic = "abort"`, so a panic ends in a wasm trap. Before it,
//! the module is marked dead (every export then returns at once, touching no state the
//! panic may have left half-changed) and the report is kept in the module's state. The trap
//! surfaces as an exception in the package JavaScript's guard, which takes the report with
//! the export `panicked`, sends it as one record, detaches every listener and wrapper and
//! turns the reporter off: the page never sees the exception.
//!
//! Kept for the JavaScript to take rather than passed to a callback: a `js_sys::Function`
//! held by the module brings wasm-bindgen's `externref` table, its closure shims and the
//! call's exception handling into the wasm, about 1 KB gzip.
//!
//! The shipped wasm is `no_std` and this module is its `#[panic_handler]`: the report is a
//! fixed text with the panic's file and line (and its message only when that is a literal),
//! the message is never formatted, so neither `core::fmt`'s machinery nor std's panic
//! runtime is in the module. With `std` (native tests, `wasm-pack test`), the same report
//! comes from a std panic hook, with the formatted message.

use core::sync::atomic::{AtomicBool, Ordering};

use alloc::string::String;

static DEAD: AtomicBool = AtomicBool::new(false);

/// Whether a panic has switched the module off.
pub(crate) fn is_dead() -> bool {
    DEAD.load(Ordering::Relaxed)
}

/// With `std`, installs the hook that keeps the report (without, the handler below does).
pub(crate) fn install() {
    #[cfg(any(not(target_arch = "wasm32"), feature = "std"))]
    std::panic::set_hook(std::boxed::Box::new(|info| {
        let payload = info.payload();
        let text = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        report(text, info.location().map(|l| (l.file(), l.line())));
    }));
}

/// The shipped module's panic handler: the report, then the trap.
#[cfg(all(target_arch = "wasm32", not(feature = "std"), not(test)))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    report(
        info.message().as_str(),
        info.location().map(|l| (l.file(), l.line())),
    );
    core::arch::wasm32::unreachable()
}

/// Marks the module dead and keeps the report for [`take`], once.
fn report(text: Option<&str>, location: Option<(&str, u32)>) {
    if DEAD.swap(true, Ordering::Relaxed) {
        return; // a panic while reporting a panic: once is enough
    }
    let message = message(text, location);
    crate::local::with(|state| {
        if let Ok(mut slot) = state.panic_report.try_borrow_mut() {
            *slot = message;
        }
    });
    // The page's events no longer reach the module.
    let on = crate::local::with(|s| s.listener.try_borrow_mut().ok().and_then(|mut l| l.take()));
    if let Some(Some(on)) = on {
        crate::outbox::detach(&on);
    }
}

/// The report of the panic that switched the module off, taken (so given once); empty
/// without a panic.
pub(crate) fn take() -> String {
    crate::local::with(|state| {
        state
            .panic_report
            .try_borrow_mut()
            .map(|mut slot| core::mem::take(&mut *slot))
            .unwrap_or_default()
    })
    .unwrap_or_default()
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
        assert_eq!(take(), "");
    }
}
