#![no_main]
//! See `acd::fuzzing::iso8601`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| acd::fuzzing::iso8601(data));
