//! The module's state (the panic report, the gate, the scrubber, the outbox), in one cell: a
//! thread-local with the standard library; in the shipped `no_std` wasm, which has one
//! thread, a static in wasm-bindgen's single-threaded cell (what its `thread_local_v2`
//! statics expand to; the crate is pinned to one wasm-bindgen version). One cell rather
//! than one per module: each lazy cell brings its own initialization check and
//! constructor call.

use alloc::string::String;
use core::cell::RefCell;

use faultline_schema::UrlScrubber;

use crate::gate::Gate;
use crate::outbox::Outbox;
use crate::record::Scope;

/// Everything the module keeps between calls; each part borrowed on its own, so a panic
/// while one is borrowed can still keep its report.
pub(crate) struct State {
    /// The report of the panic that switched the module off, until the package takes it.
    pub(crate) panic_report: RefCell<String>,
    /// The page's gate, set by the package's options when the module loads.
    pub(crate) gate: RefCell<Gate>,
    /// The page's scrubber with its extra names.
    pub(crate) scrubber: RefCell<UrlScrubber>,
    /// The outbox, once `outboxInit` made it.
    pub(crate) outbox: RefCell<Option<Outbox>>,
    /// The scope and the records' fixed fields.
    pub(crate) scope: RefCell<Scope>,
    /// The outbox's callback, which listens for the page-life events: a panic detaches it
    /// (`outbox::detach`).
    pub(crate) listener: RefCell<Option<wasm_bindgen::JsValue>>,
}

impl State {
    fn new() -> State {
        State {
            panic_report: RefCell::new(String::new()),
            gate: RefCell::new(Gate::new(5_000.0, 1.0, 500.0)),
            scrubber: RefCell::new(UrlScrubber::default()),
            outbox: RefCell::new(None),
            scope: RefCell::new(Scope::default()),
            listener: RefCell::new(None),
        }
    }
}

#[cfg(any(not(target_arch = "wasm32"), feature = "std"))]
std::thread_local! {
    static STATE: State = State::new();
}

/// The `no_std` wasm build's state, initialized on first use.
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
static STATE: wasm_bindgen::__rt::LazyCell<State> = wasm_bindgen::__rt::LazyCell::new(State::new);

/// `f` on the module's state; `None` only with `std`, once the thread-local is gone.
#[cfg(any(not(target_arch = "wasm32"), feature = "std"))]
pub(crate) fn with<R>(f: impl FnOnce(&State) -> R) -> Option<R> {
    // `try_with` rather than `with`: `with` panics, with a formatted message, when the
    // thread-local is gone.
    STATE.try_with(f).ok()
}

/// `f` on the module's state; never `None` here.
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
pub(crate) fn with<R>(f: impl FnOnce(&State) -> R) -> Option<R> {
    Some(f(&STATE))
}

/// Runs `f` on the page's gate (`None` only if it is in use, which a panic can leave).
pub(crate) fn with_gate<R>(f: impl FnOnce(&mut Gate) -> R) -> Option<R> {
    with(|state| state.gate.try_borrow_mut().ok().map(|mut g| f(&mut g))).flatten()
}

/// Runs `f` on the page's scope (`None` only if it is in use, which a panic can leave).
pub(crate) fn with_scope<R>(f: impl FnOnce(&mut Scope) -> R) -> Option<R> {
    with(|state| state.scope.try_borrow_mut().ok().map(|mut s| f(&mut s))).flatten()
}

/// Runs `f` on the page's outbox, if `outboxInit` made one and it is not in use.
pub(crate) fn with_outbox<R>(f: impl FnOnce(&mut Outbox) -> R) -> Option<R> {
    with(|state| {
        state
            .outbox
            .try_borrow_mut()
            .ok()
            .and_then(|mut o| o.as_mut().map(f))
    })
    .flatten()
}

/// Keeps `outbox` as the page's.
pub(crate) fn set_outbox(outbox: Outbox) {
    with(|state| {
        if let Ok(mut slot) = state.outbox.try_borrow_mut() {
            *slot = Some(outbox);
        }
    });
}
