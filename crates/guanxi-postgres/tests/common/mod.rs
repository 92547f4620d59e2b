//! The server the tests run against, and throw-away schemas on it.
#![allow(dead_code, clippy::print_stderr)] // each test binary uses part; skips are said on stderr

use guanxi_core::CrmStore;
use guanxi_core::testing::TestStore;
use guanxi_postgres::{PgOptions, PgStore};

/// A store in a fresh schema, dropped with the holder.
pub(crate) struct Fresh(Option<PgStore>);

impl TestStore for Fresh {
    fn store(&self) -> &dyn CrmStore {
        self.0.as_ref().expect("a store until dropped")
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if let Some(store) = self.0.take() {
            let _ = store.drop_schema();
        }
    }
}

/// The server's connection string, or None (then the case is skipped) outside CI.
pub(crate) fn server() -> Option<String> {
    match std::env::var("GUANXI_TEST_POSTGRES") {
        Ok(s) if !s.is_empty() => Some(s),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but GUANXI_TEST_POSTGRES names no PostgreSQL server")
        }
        _ => {
            eprintln!("skipped: GUANXI_TEST_POSTGRES is not set");
            None
        }
    }
}

pub(crate) fn fresh(inject_failures: bool) -> Option<Fresh> {
    fresh_with(inject_failures, None)
}

/// A store in a fresh schema, with field encryption under `field_key` if given.
pub(crate) fn fresh_with(inject_failures: bool, field_key: Option<guanxi_sql::FieldKey>) -> Option<Fresh> {
    let params = server()?;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let schema = format!("t{}_{}_{}_{n}", std::process::id(), u8::from(inject_failures), u8::from(field_key.is_some()));
    let store = PgStore::connect_with(&params, PgOptions { schema, field_key, ..PgOptions::default() }).unwrap();
    Some(Fresh(Some(if inject_failures { store.with_injected_serialization_failures() } else { store })))
}

/// A store in a fresh schema named after `name` (dropped first, if a run left it behind).
pub(crate) fn named(name: &str) -> Option<PgStore> {
    let schema = format!("{name}_{}", std::process::id());
    let store = PgStore::connect_with(&server()?, PgOptions { schema, ..PgOptions::default() }).unwrap();
    store.drop_schema().unwrap();
    let schema = format!("{name}_{}", std::process::id());
    Some(PgStore::connect_with(&server()?, PgOptions { schema, ..PgOptions::default() }).unwrap())
}
