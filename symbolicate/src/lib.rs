//! `faultline-symbolicate`: stack frames of minified JavaScript read as the original code.
//!
//! # The path of a record through symbolication
//!
//! 1. The ingest server calls [`Symbolicator::symbolicate`] with a batch after stamping and
//!    before sampling (and grouping). Records without a string `meta.release` and an array
//!    `meta.stack` are not looked at.
//! 2. For each release in the batch, the list of its maps comes from a cache, or from the
//!    [`SourceMapStore`](faultline_store::SourceMapStore) once the cached list is older than
//!    `refresh` and the release's version changed (so an upload on another node is seen
//!    within seconds).
//! 3. Each frame's file is matched to a map URL (`names.rs`: exact URL, or `~/path` for any
//!    scheme and host); each map a frame needs is parsed once (`map.rs`, the `sourcemap`
//!    crate) and kept in a bounded LRU cache.
//! 4. On a blocking thread, each frame's runtime line and column are looked up: the frame
//!    gets the original file, line, column, the function's original name (from the caller's
//!    call site), a few lines of `sourcesContent`, and its runtime position in `minified`.
//!    A record that would outgrow `meta`'s limit loses source context first, then keeps its
//!    minified frames. Each frame's result is counted in `/metrics`.
//! 5. Records stored before their maps were uploaded are mapped the same way when read
//!    ([`Stage::Read`]); frames that have `minified` are never mapped twice.
//!
//! # Layout
//!
//! - `names.rs`: release and URL rules ([`check_release`], [`check_url`]) and URL matching.
//! - `map.rs`: [`SourceMap`], one parsed map, and [`Mapped`], what a position maps to.
//! - `symbolicator.rs`: [`Symbolicator`], the cache and the rewriting of frames.

mod map;
mod names;
mod symbolicator;

pub use map::{CONTEXT_LINES, MAX_CONTEXT_LINE_CHARS, MapError, MapSummary, Mapped, SourceMap};
pub use names::{MAX_RELEASE_CHARS, MAX_URL_CHARS, check_release, check_url};
pub use symbolicator::{FrameResult, Outcome, Stage, Symbolicator, SymbolicatorConfig};
