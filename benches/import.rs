//! Import of a 100,000-row CSV file into a SQLite store that already holds 100,000 customers:
//! read, map, validate, check every row for duplicates against the store and the rows before
//! it (skip policy), insert customers, contacts, tags, match keys and change-log entries in one
//! transaction. The baseline is what one writes by hand with rusqlite: parse the same CSV and
//! insert the same rows (a customer and a contact each) into two indexed tables, in one
//! transaction, with no validation, no duplicate check and no log.
//!
//! `GUANXI_IMPORT_ROWS` sets the size (default 100,000) for quicker runs.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stderr)]

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use guanxi::dedup::MatchProfile;
use guanxi::testing::dedup_data::labelled;
use guanxi::*;

fn rows() -> u64 {
    std::env::var("GUANXI_IMPORT_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

/// One CSV row per profile: name, kind, address, first phone, first e-mail.
fn csv_of(profiles: &[MatchProfile]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["客户名称", "客户类型", "地址", "联系人", "手机", "邮箱"]).unwrap();
    for p in profiles {
        let kind = p.kind.label_zh();
        let phone = p.phones.iter().next().map(String::as_str).unwrap_or("");
        let email = p.emails.iter().next().map(String::as_str).unwrap_or("");
        let contact = if phone.is_empty() && email.is_empty() { "" } else { "联系人" };
        w.write_record([p.name.as_str(), kind, p.address_key.as_deref().unwrap_or(""), contact, phone, email]).unwrap();
    }
    w.into_inner().unwrap()
}

/// A store on `path` holding the base customers, imported through the same path.
fn seed(path: &Path, base: &[u8]) {
    let crm = Crm::builder().store(Arc::new(SqliteStore::open(path).unwrap())).build();
    let options = ImportOptions::default().on_duplicate(DuplicatePolicy::Create).mode(ImportMode::KeepGood);
    let r = crm.files().import(&Actor::user("seed").unwrap(), base, &options, |_| {}).unwrap();
    eprintln!("base: {} customers ({} rows rejected)", r.created.len(), r.rejected_rows());
}

fn raw_insert(path: &Path, file: &[u8]) -> usize {
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE customers (id TEXT PRIMARY KEY, code TEXT UNIQUE, name TEXT, kind TEXT, address TEXT);
         CREATE TABLE contacts (id TEXT PRIMARY KEY, customer_id TEXT REFERENCES customers (id), name TEXT, phone TEXT, email TEXT);
         CREATE INDEX contacts_by_customer ON contacts (customer_id);
         CREATE INDEX contacts_by_phone ON contacts (phone);",
    )
    .unwrap();
    let tx = conn.transaction().unwrap();
    let mut n = 0;
    {
        let mut c = tx.prepare("INSERT INTO customers VALUES (?1, ?2, ?3, ?4, ?5)").unwrap();
        let mut k = tx.prepare("INSERT INTO contacts VALUES (?1, ?2, ?3, ?4, ?5)").unwrap();
        let mut reader = csv::Reader::from_reader(file);
        for rec in reader.records() {
            let rec = rec.unwrap();
            let id = uuid::Uuid::now_v7().to_string();
            c.execute(rusqlite::params![id, format!("C{n:09}"), &rec[0], &rec[1], &rec[2]]).unwrap();
            if !rec[4].is_empty() || !rec[5].is_empty() {
                k.execute(rusqlite::params![uuid::Uuid::now_v7().to_string(), id, &rec[3], &rec[4], &rec[5]]).unwrap();
            }
            n += 1;
        }
    }
    tx.commit().unwrap();
    n
}

fn bench(c: &mut Criterion) {
    let n = rows();
    // Entities of the generator come with about 1.4 records each; a third are repeats.
    let (profiles, _) = labelled(n * 10 / 7, 5);
    let (base, incoming) = profiles.split_at(profiles.len() / 2);
    let (base, incoming) = (csv_of(base), csv_of(&incoming[..incoming.len().min(n as usize)]));
    let dir = tempfile::tempdir().unwrap();
    let seeded = dir.path().join("base.db");
    let t = Instant::now();
    seed(&seeded, &base);
    eprintln!("seeded in {:?}", t.elapsed());
    let store_copy = |name: &str| {
        let to = dir.path().join(name);
        let _ = std::fs::remove_file(&to);
        let _ = std::fs::remove_file(to.with_extension("db-wal"));
        Crm::restore(&seeded, &to).unwrap();
        to
    };

    let crm = Crm::builder().store(Arc::new(SqliteStore::open(store_copy("probe.db")).unwrap())).build();
    let t = Instant::now();
    let mut checked = Duration::ZERO;
    let options = ImportOptions::default().mode(ImportMode::KeepGood);
    let r = crm
        .files()
        .import(&Actor::user("alice").unwrap(), &incoming, &options, |p| {
            if p.phase == ImportPhase::Checking && p.done == p.total {
                checked = t.elapsed();
            }
        })
        .unwrap();
    eprintln!(
        "one import: {:?} (checked in {checked:?}): {} rows, {} created, {} skipped as duplicates, {} rejected",
        t.elapsed(),
        r.rows,
        r.created.len(),
        r.skipped.len(),
        r.rejected_rows()
    );

    let mut g = c.benchmark_group("import_100k_csv");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    g.bench_function("guanxi_import_skip_duplicates", |b| {
        b.iter_batched(
            || Crm::builder().store(Arc::new(SqliteStore::open(store_copy("run.db")).unwrap())).build(),
            |crm| {
                let options = ImportOptions::default().mode(ImportMode::KeepGood);
                black_box(crm.files().import(&Actor::user("alice").unwrap(), &incoming, &options, |_| {}).unwrap())
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("baseline_raw_rusqlite_insert", |b| {
        b.iter_batched(
            || {
                let p = dir.path().join("raw.db");
                for ext in ["db", "db-wal", "db-shm"] {
                    let _ = std::fs::remove_file(p.with_extension(ext));
                }
                p
            },
            |p| black_box(raw_insert(&p, &incoming)),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
