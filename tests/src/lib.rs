//! End-to-end tests of guanxi live in this package's `[[test]]` targets.
