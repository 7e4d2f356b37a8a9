//! Fuzz target `ndjson_framing`: see `faultline_store::fuzzing::check_ndjson_framing` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| faultline_store::fuzzing::check_ndjson_framing(data));
