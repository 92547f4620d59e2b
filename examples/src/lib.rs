//! Runnable examples of guanxi live in this package's `[[example]]` targets; run
//! `cargo run --example quickstart` from the repository root. Importers the examples and the
//! end-to-end tests share live here.

pub mod crm_sales;
pub mod tickets;
