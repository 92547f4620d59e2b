//! What the facade's test files share: the same `Crm` on each backend, with a clock the test
//! moves.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use guanxi::{Crm, FixedClock, SqliteStore};

/// A backend under test: its name, the handle, its clock, and the directory of its file.
pub(crate) type Backend = (&'static str, Crm, Arc<FixedClock>, Option<tempfile::TempDir>);

/// A `Crm` on the memory store and one on a SQLite file, each with its own clock at `t0`.
/// They trust asserted elevations (`Actor::elevated_until`), as a host that verifies users
/// itself would: proven elevation has tests of its own (`access.rs`).
pub(crate) fn backends(t0: DateTime<Utc>) -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("crm.db")).unwrap();
    let c1 = Arc::new(FixedClock::at(t0));
    let c2 = Arc::new(FixedClock::at(t0));
    vec![
        ("memory", Crm::builder().clock(c1.clone()).trust_asserted_elevation(true).build(), c1, None),
        (
            "sqlite",
            Crm::builder().store(Arc::new(sqlite)).clock(c2.clone()).trust_asserted_elevation(true).build(),
            c2,
            Some(dir),
        ),
    ]
}
