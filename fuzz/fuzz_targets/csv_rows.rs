#![no_main]
//! See `acd::fuzzing::csv_rows`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| acd::fuzzing::csv_rows(data));
