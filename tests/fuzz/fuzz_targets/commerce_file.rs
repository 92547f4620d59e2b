//! Fuzz target: see `guanxi::fuzzing::commerce_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guanxi::fuzzing::commerce_file(data));
