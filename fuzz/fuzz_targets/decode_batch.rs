//! Fuzz target `decode_batch`: see `faultline_schema::fuzzing::check_decode_batch` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| faultline_schema::fuzzing::check_decode_batch(data));
