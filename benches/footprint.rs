//! Storage footprint (issue 18, item 7): what a minimal customer — a name, a province and one
//! contact with one phone — costs on disk, the change log, hash chain, match keys and indexes
//! included, beside a file holding only the same business rows.
//!
//! - The guanxi file: `GUANXI_FOOTPRINT_CUSTOMERS` customers (default 100,000) created through
//!   `customers().create_many` in batches of 10,000 (as a Python loader would), then closed
//!   (WAL checkpointed into the file). Its size, and the size per customer, are printed.
//! - The baseline: a plain SQLite file with two tables, `customers (id, code, name, province,
//!   created_at)` and `contacts (id, customer_id, name, phone)`, holding the same texts guanxi
//!   stores for those fields, keyed by the id like guanxi's, and no other index.
//!
//! `GUANXI_FOOTPRINT_KEEP=dir` copies both files there.
//!
//! Criterion times one batch of 10,000 into each (a fresh file per sample); the sizes are
//! printed on stderr as `footprint: …` lines (criterion measures time, not bytes).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use guanxi::{Actor, Crm, NewContact, NewCustomer, Region};
use rusqlite::{Connection, params};

const BATCH: usize = 10_000;

fn customers() -> usize {
    std::env::var("GUANXI_FOOTPRINT_CUSTOMERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

fn input(i: usize) -> NewCustomer {
    NewCustomer::new(format!("客户{i}贸易有限公司"))
        .region(Region { province: "山东".into(), city: String::new(), district: String::new() })
        .contact(NewContact::new(format!("联系人{i}")).phone(format!("139{:08}", i)))
}

fn guanxi_file(dir: &Path, n: usize) -> u64 {
    let path = dir.join("crm.db");
    let actor = Actor::user("loader").unwrap();
    {
        let crm = Crm::open(&path).unwrap();
        for start in (0..n).step_by(BATCH) {
            crm.customers().create_many(&actor, (start..(start + BATCH).min(n)).map(input).collect()).unwrap();
        }
    }
    file_bytes(&path)
}

/// The file plus whatever is left beside it (a WAL that was not checkpointed counts too).
fn file_bytes(path: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let side =
        |suffix: &str| size(&path.with_file_name(format!("{}{suffix}", path.file_name().unwrap().to_string_lossy())));
    size(path) + side("-wal") + side("-journal")
}

fn raw_schema(conn: &Connection) {
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE customers (id TEXT PRIMARY KEY, code TEXT NOT NULL, name TEXT NOT NULL, province TEXT,
             created_at TEXT NOT NULL) STRICT;
         CREATE TABLE contacts (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, name TEXT NOT NULL, phone TEXT)
             STRICT;",
    )
    .unwrap();
}

fn raw_insert(conn: &mut Connection, range: std::ops::Range<usize>) {
    let tx = conn.transaction().unwrap();
    {
        let mut customer = tx.prepare_cached("INSERT INTO customers VALUES (?1, ?2, ?3, '山东省', ?4)").unwrap();
        let mut contact = tx.prepare_cached("INSERT INTO contacts VALUES (?1, ?2, ?3, ?4)").unwrap();
        for i in range {
            let id = uuid::Uuid::now_v7().to_string();
            customer
                .execute(params![
                    id,
                    format!("C20240501{:06}", i + 1),
                    format!("客户{i}贸易有限公司"),
                    "2024-05-01T08:00:00.000000000Z"
                ])
                .unwrap();
            contact
                .execute(params![uuid::Uuid::now_v7().to_string(), id, format!("联系人{i}"), format!("+86139{:08}", i)])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

fn raw_file(dir: &Path, n: usize) -> u64 {
    let path = dir.join("raw.db");
    {
        let mut conn = Connection::open(&path).unwrap();
        raw_schema(&conn);
        for start in (0..n).step_by(BATCH) {
            raw_insert(&mut conn, start..(start + BATCH).min(n));
        }
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
    file_bytes(&path)
}

fn footprint(c: &mut Criterion) {
    let n = customers();
    let dir = tempfile::tempdir().unwrap();
    let (guanxi, raw) = (guanxi_file(dir.path(), n), raw_file(dir.path(), n));
    assert!(guanxi > 0 && raw > 0, "both files were written");
    // To see where the bytes go (`sqlite3 crm.db "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"`).
    if let Ok(keep) = std::env::var("GUANXI_FOOTPRINT_KEEP") {
        for f in ["crm.db", "raw.db"] {
            std::fs::copy(dir.path().join(f), Path::new(&keep).join(f)).unwrap();
        }
    }
    let per = |bytes: u64| bytes as f64 / n as f64;
    eprintln!(
        "footprint: {n} minimal customers: guanxi {guanxi} bytes ({:.0} per customer), raw rows {raw} bytes ({:.0} per \
         customer), {:.2}x",
        per(guanxi),
        per(raw),
        guanxi as f64 / raw as f64
    );

    let mut g = c.benchmark_group("footprint_batch_10k");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(1));
    let actor = Actor::user("loader").unwrap();
    g.bench_function("guanxi_create_many_minimal", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let crm = Crm::open(dir.path().join("crm.db")).unwrap();
                (dir, crm, (0..BATCH).map(input).collect::<Vec<_>>())
            },
            |(dir, crm, batch)| {
                black_box(crm.customers().create_many(&actor, batch).unwrap());
                (dir, crm)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("raw_rusqlite_insert_minimal", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let conn = Connection::open(dir.path().join("raw.db")).unwrap();
                conn.execute_batch("PRAGMA synchronous = FULL;").unwrap();
                raw_schema(&conn);
                (dir, conn)
            },
            |(dir, mut conn)| {
                raw_insert(&mut conn, 0..BATCH);
                (dir, conn)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, footprint);
criterion_main!(benches);
