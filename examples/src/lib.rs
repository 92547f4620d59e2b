//! Runnable examples of guanxi live in this package's `[[example]]` targets; run
//! `cargo run --example quickstart` from the repository root.
