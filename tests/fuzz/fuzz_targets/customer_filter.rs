//! Fuzz target: see `guanxi::fuzzing::customer_filter`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guanxi::fuzzing::customer_filter(data));
