//! The storage conformance suite on PostgreSQL, on a real
//! server: each case gets a schema of its own, dropped afterwards. The server is named by
//! `GUANXI_TEST_POSTGRES` (a libpq connection string; `.ci/run` starts a throw-away one). Without
//! it the cases are skipped, saying so, except under `CI=true`, where a missing server fails.

mod common;

mod on_postgres {
    guanxi_core::store_conformance_tests!(match crate::common::fresh(false) {
        Some(holder) => holder,
        None => return,
    });
}

/// Every batch's first attempt fails with a serialization failure (SQLSTATE 40001), as on a
/// SERIALIZABLE engine under contention: the retry must make that invisible.
mod with_serialization_failures {
    guanxi_core::store_conformance_tests!(match crate::common::fresh(true) {
        Some(holder) => holder,
        None => return,
    });
}

/// Field encryption is invisible to the contract: the same cases pass with a key.
mod encrypted {
    guanxi_core::store_conformance_tests!(
        match crate::common::fresh_with(false, Some(guanxi_sql::FieldKey::generate())) {
            Some(holder) => holder,
            None => return,
        }
    );
}
