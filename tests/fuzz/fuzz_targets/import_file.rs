//! Fuzz target: see `guanxi::fuzzing::import_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guanxi::fuzzing::import_file(data));
