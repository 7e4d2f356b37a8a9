//! The module's state (the gate, the scrubber, the panic callback): a thread-local with the
//! standard library; in the shipped `no_std` wasm, which has one thread, a static in
//! wasm-bindgen's single-threaded cell (what its `thread_local_v2` statics expand to; the
//! crate is pinned to one wasm-bindgen version). `local!` declares either, and callers use
//! the same `try_with` on both.

/// A static of the `no_std` wasm build, initialized on first use.
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
pub(crate) struct Local<T: 'static>(wasm_bindgen::__rt::LazyCell<T>);

#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
impl<T: 'static> Local<T> {
    /// A cell that `init` fills on first use.
    pub(crate) const fn new(init: fn() -> T) -> Local<T> {
        Local(wasm_bindgen::__rt::LazyCell::new(init))
    }

    /// `f` on the value; never fails (the `Result` matches `LocalKey::try_with`).
    pub(crate) fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Result<R, ()> {
        Ok(f(&self.0))
    }
}

/// `static NAME: TYPE = INIT;` as a thread-local (with `std`) or a `Local` (without).
macro_rules! local {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        #[cfg(any(not(target_arch = "wasm32"), feature = "std"))]
        std::thread_local! {
            $(#[$attr])*
            static $name: $t = $init;
        }
        #[cfg(all(target_arch = "wasm32", not(feature = "std")))]
        $(#[$attr])*
        static $name: $crate::local::Local<$t> = $crate::local::Local::new(|| $init);
    };
}

pub(crate) use local;
