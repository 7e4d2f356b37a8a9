//! Fuzz target `stack_parse`: see `faultline_schema::fuzzing::check_stack_parse` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| faultline_schema::fuzzing::check_stack_parse(data));
