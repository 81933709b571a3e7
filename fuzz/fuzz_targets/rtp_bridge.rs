#![no_main]
//! See `acd::fuzzing::rtp_bridge`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| acd::fuzzing::rtp_bridge(data));
