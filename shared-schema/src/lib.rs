//! `faultline-schema`: the Faultline record, shared by the browser reporter, the service
//! logger and the ingest server, so a record means one thing everywhere.
//!
//! # The path of a record through this crate
//!
//! 1. **In the browser or a service**, a [`Record`] is built in code ([`Record::new`]), a raw
//!    user id becomes `meta.user` through [`anonymize_user`], and a JavaScript `Error.stack`
//!    becomes `meta.stack` through [`stack::parse`]. [`Record::validate`] applies the same
//!    rules the server will, so a client never ships what will be rejected.
//! 2. **At the ingest server**, a request body goes through [`decode_batch`], which detects
//!    the form (JSON array, `{"records": [...]}` or NDJSON), checks each record field by field
//!    ([`Record::from_value`]) and returns the good records with a [`Rejected`] entry (index
//!    and every problem) for each bad one. One bad record never fails its batch.
//! 3. **Before storing**, the server re-keys `meta.user` with [`rekey_user`] and its secret,
//!    and takes credentials and secret parameters out of URLs with [`UrlScrubber`].
//! 4. **In the store**, a record is the compact JSON of [`Record::to_json`] (one NDJSON line)
//!    and is read back through the same checks.
//!
//! # Layout
//!
//! - `record.rs`: [`Record`], its limits as constants, field rules, message truncation.
//! - `level.rs`: [`Level`], ordering and aliases.
//! - `timestamp.rs`: [`Timestamp`], RFC 3339 parsing, UTC millisecond normalization.
//! - `validate.rs`: [`FieldError`], [`InvalidRecord`], [`Problem`].
//! - `batch.rs`: [`decode_batch`] and the batch result types.
//! - `encode.rs`: [`Record::write_json`]'s hand-written serializer (the same bytes as
//!   `serde_json`, faster).
//! - `anonymize.rs`: [`anonymize_user`], [`rekey_user`].
//! - `scrub.rs`: [`UrlScrubber`], the rule for credentials and secret parameters in URLs
//!   that the reporter and the server share.
//! - `stack.rs`: [`stack::parse`] for Chrome, Firefox and Safari stacks.
//! - `fingerprint.rs`: [`fingerprint::group`], which error events are one issue (the
//!   fingerprint, the issue id, title and culprit), pure so the reporter can fold by it too.
//! - `duration.rs`: [`HumanDuration`] (`500ms`, `15m`, `30d`), for config and queries of
//!   every crate that reads durations.
//! - `fuzzing.rs`: the invariants the fuzz targets and their regression tests check (hidden).
//!
//! The crate builds for `wasm32-unknown-unknown`: no tokio, no regex, no clock reads on wasm.
//! Without its default `std` feature it is `#![no_std]` (with `alloc`), as the browser
//! reporter builds it: the clock (`Timestamp::now`) is then left out.

#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(not(any(feature = "std", feature = "alloc")))]
compile_error!("faultline-schema needs its `std` (default) or its `alloc` feature");

extern crate alloc;

/// What the `std` prelude has and `core`'s lacks, for the `no_std` build (the same items
/// with `std`).
#[allow(unused_imports)]
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec::Vec;
    pub(crate) use alloc::{format, vec};
}

mod anonymize;
mod batch;
mod duration;
mod encode;
pub mod fingerprint;
#[doc(hidden)]
pub mod fuzzing;
mod level;
mod record;
mod scrub;
pub mod stack;
mod timestamp;
mod validate;

pub use anonymize::{
    USER_ID_HEX_CHARS, USER_ID_PREFIX, UserRekeyer, anonymize_user, is_anonymized_user, rekey_user,
};
pub use batch::{
    Batch, BatchError, BatchFormat, DEFAULT_MAX_BATCH_RECORDS, DecodeOptions, MAX_RECORD_VALUES,
    Rejected, decode_batch, decode_batch_with, decode_batch_within, decoded_size,
};
pub use duration::HumanDuration;
pub use encode::{json_plain_prefix, short_word};
pub use fingerprint::{Grouping, ISSUE_ID_HEX_CHARS, is_error_event, is_issue_id};
pub use level::{Level, UnknownLevel};
pub use record::{
    MAX_EVENT_CHARS, MAX_ISSUE_CHARS, MAX_MESSAGE_BYTES, MAX_META_BYTES, MAX_META_DEPTH,
    MAX_SERVICE_CHARS, MetaType, RESERVED_META_KEYS, Record, SAMPLE_WEIGHT_KEY, TRUNCATION_MARKER,
    check_event, check_issue, check_service, json_len, truncate_message,
};
pub use scrub::{FILTERED, SECRET_PARAM_PARTS, SECRET_PARAM_WORDS, UrlScrubber};
pub use stack::{Frame, Location};
pub use timestamp::{Timestamp, TimestampError};
pub use uuid::Uuid;
pub use validate::{FieldError, InvalidRecord, Problem};

/// `meta` is a JSON object; re-exported so users need no direct `serde_json` dependency.
pub use serde_json::{Map, Value};
