#![no_main]
//! See `acd::fuzzing::wav`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| acd::fuzzing::wav(data));
