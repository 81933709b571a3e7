#![no_main]
//! See `acd::fuzzing::sip_stream`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| acd::fuzzing::sip_stream(data));
