//! Fuzz target `alert_config`: see `faultline_server::fuzzing::check_alert_config` for the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| faultline_server::fuzzing::check_alert_config(data));
