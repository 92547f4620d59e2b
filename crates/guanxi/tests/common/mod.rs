//! What the facade's test files share: the same `Crm` on each backend, with a clock the test
//! moves. PostgreSQL joins when `GUANXI_TEST_POSTGRES` names a server (`.ci/run` starts one;
//! under `CI=true` a missing server fails): each use gets a schema of its own, dropped after.
#![allow(dead_code)] // each test binary uses part

use std::sync::Arc;

use chrono::{DateTime, Utc};
use guanxi::{Crm, DynStore, FixedClock, PgOptions, PgStore, SqliteStore};

/// Whatever must live as long as a backend's store (its directory, its schema).
pub(crate) type Guard = Option<Box<dyn std::any::Any>>;

/// A backend under test: its name, the handle, its clock, and what keeps its store alive.
pub(crate) type Backend = (&'static str, Crm, Arc<FixedClock>, Guard);

/// Drops a test schema when the test is done with it.
struct Schema(Arc<PgStore>);

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = self.0.drop_schema();
    }
}

/// The PostgreSQL server the tests may use.
pub(crate) fn postgres_server() -> Option<String> {
    match std::env::var("GUANXI_TEST_POSTGRES") {
        Ok(s) if !s.is_empty() => Some(s),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but GUANXI_TEST_POSTGRES names no PostgreSQL server")
        }
        _ => None,
    }
}

/// The stores under test: memory, a SQLite file, and PostgreSQL when a server is given.
pub(crate) fn stores() -> Vec<(&'static str, DynStore, Guard)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("crm.db")).unwrap();
    let mut out: Vec<(&'static str, DynStore, Guard)> =
        vec![("memory", Arc::new(guanxi::MemoryStore::new()), None), ("sqlite", Arc::new(sqlite), Some(Box::new(dir)))];
    if let Some(params) = postgres_server() {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let schema = format!("facade_{}_{n}", std::process::id());
        let store = Arc::new(PgStore::connect_with(&params, PgOptions { schema, ..PgOptions::default() }).unwrap());
        out.push(("postgres", store.clone(), Some(Box::new(Schema(store)))));
    }
    out
}

/// A `Crm` on each store, each with its own clock at `t0`. They trust asserted elevations
/// (`Actor::elevated_until`), as a host that verifies users itself would: proven elevation
/// has tests of its own (`access.rs`).
pub(crate) fn backends(t0: DateTime<Utc>) -> Vec<Backend> {
    stores()
        .into_iter()
        .map(|(name, store, guard)| {
            let clock = Arc::new(FixedClock::at(t0));
            let crm = Crm::builder().store(store).clock(clock.clone()).trust_asserted_elevation(true).build();
            (name, crm, clock, guard)
        })
        .collect()
}

/// An elevated administrator `root` (until ten minutes after `t0`) and users of built-in
/// roles, set up on `crm`; returns root.
pub(crate) fn staff(crm: &Crm, t0: DateTime<Utc>, users: &[(&str, guanxi::BuiltinRole)]) -> guanxi::Actor {
    use guanxi::access::User;
    let root = guanxi::Actor::user("root").unwrap().elevated_until(t0 + chrono::Duration::minutes(10));
    let admin = User::new("root", "管理员").unwrap().role(guanxi::BuiltinRole::Administrator);
    crm.access().set_user(&root, admin).unwrap();
    for (id, role) in users {
        crm.access().set_user(&root, User::new(id, id).unwrap().role(*role)).unwrap();
    }
    root
}

/// A customer tagged VIP owned by `owner`, created by `by`.
pub(crate) fn vip_of(crm: &Crm, by: &guanxi::Actor, owner: &str, name: &str) -> guanxi::Customer {
    let input = guanxi::NewCustomer::new(name).tag("VIP").owner(guanxi::UserId::new(owner).unwrap());
    crm.customers().create(by, input).unwrap()
}

/// What the marketing test files share: their instant, their user, a page view.
pub(crate) mod marketing {
    use chrono::{DateTime, Utc};
    use guanxi::marketing::BehaviourEvent;
    use guanxi::{Actor, CustomValue, CustomerId};

    /// 2024-06-01 10:00 in UTC+8, the store's (default) zone.
    pub(crate) fn t0() -> DateTime<Utc> {
        "2024-06-01T02:00:00Z".parse().unwrap()
    }

    pub(crate) fn alice() -> Actor {
        Actor::user("alice").unwrap()
    }

    /// A page view of `url` by `customer` at `at`.
    pub(crate) fn view(customer: CustomerId, url: &str, at: DateTime<Utc>) -> BehaviourEvent {
        BehaviourEvent::new(customer, "page_view", at).property("url", CustomValue::Text(url.into()))
    }
}
