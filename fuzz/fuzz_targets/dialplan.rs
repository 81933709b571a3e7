#![no_main]
//! See `acd::fuzzing::dialplan`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| acd::fuzzing::dialplan(data));
