//! Access-control benchmarks, each beside its baseline in the same run:
//!
//! - `scoped_list`: 100,000 customers owned by 20 reps in 10 teams under 5 regional offices.
//!   A sales manager of one office (department scope: 2 teams, ~20,000 customers) lists a
//!   page, all their customers, and counts them; the same calls by an administrator (scope all,
//!   no condition) and hand-written SQL with the same `WHERE` are the baselines.
//! - `audit_verify_1m`: `Crm::verify_audit` over 1,000,000 change-log entries in a file, vs a
//!   hand-written loop that reads the same rows with rusqlite and recomputes the same SHA-256
//!   chain (the cost floor of verifying at all).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use guanxi::access::{Department, User};
use guanxi::prelude::*;
use guanxi::{
    Actor, BuiltinRole, ChangeAction, ChangeLogEntry, Changes, Crm, CustomerFilter, DepartmentId, EntityKind,
    FieldChange, NewCustomer, PageRequest, SqliteStore, UserId,
};
use rusqlite::Connection;

const N: usize = 100_000;

fn admin() -> Actor {
    Actor::user("admin").unwrap().elevated_until("2999-01-01T00:00:00Z".parse().unwrap())
}

/// 5 offices × 2 teams × 2 reps; a manager per office; customers spread over the reps.
fn organisation() -> (tempfile::TempDir, std::path::PathBuf, Crm) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    // The benchmark host verifies users itself: it asserts the admin's elevation.
    let store = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
    let crm = Crm::builder().store(store).trust_asserted_elevation(true).build();
    let a = admin();
    crm.access().set_user(&a, User::new("admin", "管理员").unwrap().role(BuiltinRole::Administrator)).unwrap();
    let mut reps = Vec::new();
    for o in 0..5 {
        crm.access()
            .set_department(&a, Department::new(&format!("office{o}"), &format!("分公司{o}"), None).unwrap())
            .unwrap();
        let office = DepartmentId::new(format!("office{o}")).unwrap();
        crm.access()
            .set_user(
                &a,
                User::new(&format!("mgr{o}"), "经理").unwrap().department(office).role(BuiltinRole::SalesManager),
            )
            .unwrap();
        for t in 0..2 {
            let team = format!("team{o}{t}");
            crm.access()
                .set_department(&a, Department::new(&team, "组", Some(&format!("office{o}"))).unwrap())
                .unwrap();
            for r in 0..2 {
                let rep = format!("rep{o}{t}{r}");
                let u = User::new(&rep, "销售").unwrap().department(DepartmentId::new(&team).unwrap());
                crm.access().set_user(&a, u.role(BuiltinRole::SalesRep)).unwrap();
                reps.push(rep);
            }
        }
    }
    let inputs: Vec<NewCustomer> = (0..N)
        .map(|i| NewCustomer::new(format!("客户{i}")).owner(UserId::new(&reps[i % reps.len()]).unwrap()))
        .collect();
    crm.customers().create_many(&a, inputs).unwrap();
    (dir, path, crm)
}

fn scoped_list(c: &mut Criterion) {
    let (_dir, path, crm) = organisation();
    let (mgr, a) = (Actor::user("mgr2").unwrap(), admin());
    let all = CustomerFilter::default();
    assert_eq!(crm.customers().count(&mgr, &all).unwrap(), (N / 5) as u64);

    let mut g = c.benchmark_group("scoped_list");
    g.bench_function("manager_first_page_100", |b| {
        b.iter(|| black_box(crm.customers().list(&mgr, &all, PageRequest::first(100)).unwrap()))
    });
    g.bench_function("admin_first_page_100", |b| {
        b.iter(|| black_box(crm.customers().list(&a, &all, PageRequest::first(100)).unwrap()))
    });
    g.bench_function("manager_count", |b| b.iter(|| black_box(crm.customers().count(&mgr, &all).unwrap())));
    g.bench_function("admin_count", |b| b.iter(|| black_box(crm.customers().count(&a, &all).unwrap())));
    g.sample_size(10);
    g.bench_function("manager_all_20k", |b| b.iter(|| black_box(crm.customers().list_all(&mgr, &all).unwrap())));
    // The same 20,000 rows by a hand-written query with the same condition.
    let raw = Connection::open(&path).unwrap();
    let owners: Vec<String> = (0..2).flat_map(|t| (0..2).map(move |r| format!("'rep2{t}{r}'"))).collect();
    let sql = format!(
        "SELECT * FROM customers c WHERE c.deleted_at IS NULL AND (c.owner IN ('mgr2', {}) OR c.department IN \
         ('office2', 'team20', 'team21')) ORDER BY c.id",
        owners.join(", ")
    );
    g.bench_function("raw_sql_same_20k", |b| {
        let mut stmt = raw.prepare(&sql).unwrap();
        b.iter(|| {
            let rows: Vec<Vec<rusqlite::types::Value>> =
                stmt.query_map([], |r| (0..22).map(|i| r.get(i)).collect()).unwrap().collect::<Result<_, _>>().unwrap();
            assert_eq!(rows.len(), N / 5);
            black_box(rows)
        })
    });
    g.bench_function("admin_all_100k", |b| b.iter(|| black_box(crm.customers().list_all(&a, &all).unwrap())));
    g.finish();
}

fn audit_verify_1m(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let at = "2024-05-01T08:00:00Z".parse().unwrap();
    for batch in 0..100 {
        let entries = (0..10_000)
            .map(|i| ChangeLogEntry {
                seq: 0,
                at,
                actor: UserId::new(format!("user{}", i % 50)).unwrap(),
                entity: EntityKind::Customer,
                entity_id: format!("{batch}-{i}"),
                customer_id: None,
                action: ChangeAction::Update,
                changes: vec![FieldChange::new("status", Some("potential".into()), Some("customer".into()))],
                prev_hash: String::new(),
                hash: String::new(),
            })
            .collect();
        store.apply(&Changes { change_log: entries, ..Default::default() }).unwrap();
    }
    let crm = Crm::builder().store(store).build();
    let a = Actor::user("auditor").unwrap();
    assert_eq!(crm.audit().verify(&a).unwrap().entries, 1_000_000);

    let mut g = c.benchmark_group("audit_verify_1m");
    g.sample_size(10).measurement_time(Duration::from_secs(60));
    g.bench_function("guanxi_verify_audit", |b| b.iter(|| black_box(crm.audit().verify(&a).unwrap())));
    // The floor: stream the rows and recompute the chain by hand over the same canonical form.
    let raw = Connection::open(&path).unwrap();
    g.bench_function("raw_rows_and_sha256", |b| {
        let mut stmt = raw
            .prepare("SELECT seq, at, actor, entity, entity_id, customer_id, action, changes, prev_hash, hash FROM change_log ORDER BY seq")
            .unwrap();
        b.iter(|| {
            use sha2::{Digest, Sha256};
            let mut rows = stmt.query([]).unwrap();
            let mut prev = String::new();
            let mut n = 0u64;
            while let Some(r) = rows.next().unwrap() {
                let mut h = Sha256::new();
                for i in 0..9 {
                    if let rusqlite::types::ValueRef::Text(t) = r.get_ref(i).unwrap() {
                        h.update(t);
                    }
                }
                prev = format!("{:x}", h.finalize());
                n += 1;
            }
            black_box((n, prev))
        })
    });
    g.finish();
}

criterion_group!(benches, scoped_list, audit_verify_1m);
criterion_main!(benches);
