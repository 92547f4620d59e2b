//! Benchmarks of guanxi live in this package's `[[bench]]` targets: `cargo bench -p guanxi-benches`.
