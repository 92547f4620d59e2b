//! Fuzz target: see `guanxi::fuzzing::segment`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guanxi::fuzzing::segment(data));
