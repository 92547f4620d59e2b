//! Fuzz target: see `guanxi::fuzzing::match_rules`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guanxi::fuzzing::match_rules(data));
