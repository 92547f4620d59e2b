//! Fuzz target: see `guanxi::fuzzing::customer_input`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guanxi::fuzzing::customer_input(data));
