#![no_main]
//! See `acd::fuzzing::digest`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| acd::fuzzing::digest(data));
