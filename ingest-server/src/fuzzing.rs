//! Invariant checks shared by the fuzz targets (`fuzz/fuzz_targets/`) and the regression
//! tests that replay their corpus (`tests/fuzz_regressions.rs`), so a crash the fuzzer
//! found and the test guarding it run the same code. Each check panics when an invariant
//! breaks.
//!
//! Not part of the crate's API: hidden from the docs and free to change.

// These checks assert by panicking: that is how the fuzzer and the tests see a failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::io::Write;

use crate::config::Config;
use crate::inflate::{InflateError, inflate_gzip};

/// A limit far above anything [`check_inflate`] compresses, for the unlimited comparison.
const LARGE_LIMIT: u64 = 1 << 24;

/// [`inflate_gzip`] on any bytes, with a limit of `data[0] * 64` bytes. When `data[1]` is
/// odd the rest is gzipped first (a valid stream: it must come back whole, or be refused as
/// too large exactly when it is); otherwise the rest is taken as a gzip body as is. Output
/// never exceeds the limit, and a larger limit only ever turns "too large" into more output.
pub fn check_inflate(data: &[u8]) {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let limit = u64::from(*a) * 64;
    if b % 2 == 1 {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(rest).expect("writing to memory");
        let wire = encoder.finish().expect("writing to memory");
        match inflate_gzip(&wire, limit) {
            Ok(out) => assert_eq!(out, rest, "a valid stream inflates to what was compressed"),
            Err(InflateError::TooLarge { limit: l }) => {
                assert_eq!(l, limit);
                assert!(rest.len() as u64 > limit, "refused a body within the limit");
            }
            Err(e) => panic!("a valid stream was refused: {e}"),
        }
        return;
    }
    let bounded = inflate_gzip(rest, limit);
    if let Ok(out) = &bounded {
        assert!(out.len() as u64 <= limit, "output exceeds the limit");
    }
    match (bounded, inflate_gzip(rest, LARGE_LIMIT)) {
        (Ok(out), Ok(more)) => assert_eq!(out, more, "the limit does not change the output"),
        (Ok(out), Err(e)) => panic!("{} bytes within the limit, then {e}", out.len()),
        (Err(InflateError::TooLarge { .. }), Ok(more)) => {
            assert!(more.len() as u64 > limit, "refused {} bytes", more.len());
        }
        (Err(e), Ok(_)) => panic!("{e} under a limit, valid above"),
        (Err(_), Err(_)) => {}
    }
}

/// Any text as a whole config file: a config that parses survives the round trip through a
/// TOML table that env overrides take (and checks the same after it); a config whose alerts
/// check passes also compiles, with one rule per `[alerts.rules.NAME]`; and every compiled
/// rule can look at, group and describe a record its filter matches without panicking.
pub fn check_alert_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = toml::from_str::<Config>(text) else {
        return;
    };
    let table = toml::Table::try_from(&config).expect("a parsed config becomes a table");
    let again: Config = table
        .try_into()
        .unwrap_or_else(|e| panic!("a parsed config reads back from its table: {e}"));
    let checked = config.alerts.check().map_err(|e| e.to_string());
    assert_eq!(
        checked,
        again.alerts.check().map_err(|e| e.to_string()),
        "the round trip changes nothing the check sees"
    );
    faultline_alerts::fuzzing::check_compiled_alerts(config.alerts, checked);
}
