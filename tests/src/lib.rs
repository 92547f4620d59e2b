//! End-to-end tests of guanxi live in this package's `[[test]]` targets; this library holds
//! what they share: the PostgreSQL server they also run on.

use std::sync::Arc;

use guanxi::{PgOptions, PgStore};

/// A PostgreSQL store in a schema of its own (dropped with it), when `GUANXI_TEST_POSTGRES`
/// names a server; `None` outside CI without one (under `CI=true` a missing server panics).
///
/// ```
/// // Without a server (and outside CI) there is nothing to run on.
/// if std::env::var("GUANXI_TEST_POSTGRES").is_err() && std::env::var("CI").is_err() {
///     assert!(guanxi_tests::postgres("doc").is_none());
/// }
/// ```
pub fn postgres(name: &str) -> Option<TestSchema> {
    postgres_with_key(name, None)
}

/// [`postgres`], with contacts and leads encrypted under `field_key` if given.
pub fn postgres_with_key(name: &str, field_key: Option<guanxi::FieldKey>) -> Option<TestSchema> {
    let params = match std::env::var("GUANXI_TEST_POSTGRES") {
        Ok(s) if !s.is_empty() => s,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but GUANXI_TEST_POSTGRES names no PostgreSQL server")
        }
        _ => return None,
    };
    let options = || PgOptions {
        schema: format!("e2e_{name}_{}", std::process::id()),
        field_key: field_key.clone(),
        ..PgOptions::default()
    };
    PgStore::connect_with(&params, options()).and_then(|s| s.drop_schema()).ok()?;
    let store = Arc::new(PgStore::connect_with(&params, options()).ok()?);
    Some(TestSchema { store, params, options: options() })
}

/// A throw-away schema on the test server: its store, and how to connect to it again.
pub struct TestSchema {
    /// The store.
    pub store: Arc<PgStore>,
    params: String,
    options: PgOptions,
}

impl TestSchema {
    /// A second, independent connection to the same schema (a "reopen").
    pub fn reconnect(&self) -> Arc<PgStore> {
        Arc::new(PgStore::connect_with(&self.params, self.options.clone()).expect("the test server"))
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let _ = self.store.drop_schema();
    }
}
