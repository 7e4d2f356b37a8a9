//! Fuzz target `inflate`: see `faultline_server::fuzzing::check_inflate` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| faultline_server::fuzzing::check_inflate(data));
