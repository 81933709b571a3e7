#![no_main]
//! See `acd::fuzzing::sip_message`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| acd::fuzzing::sip_message(data));
