#![no_main]
//! See `acd::fuzzing::http_response`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| acd::fuzzing::http_response(data));
