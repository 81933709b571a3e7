#![no_main]
//! See `acd::fuzzing::sdp`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| acd::fuzzing::sdp(data));
