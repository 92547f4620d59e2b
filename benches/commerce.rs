//! Purchase ingest (issue 21, item 1): `purchases().record` of an ERP batch — checked,
//! matched by (source system, external id), catalog lines resolved, one audit entry per
//! purchase, the buyers' spend and level restated in the same transaction — into a fresh
//! SQLite file, against hand-written rusqlite inserts of the same rows (narrow columns and
//! the JSON document, one transaction, a prepared statement) in the same run; and the re-sync
//! of the same batch (every purchase found unchanged, nothing written) against looking each
//! key up by hand.
//!
//! `GUANXI_PURCHASE_ROWS` sets the batch size (default 1,000).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use guanxi::commerce::{NewProduct, NewPurchase};
use guanxi::sales::ProductLine;
use guanxi::{Actor, Crm, CustomerId, LevelRule, NewCustomer};
use rust_decimal::Decimal;

fn rows() -> usize {
    std::env::var("GUANXI_PURCHASE_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000)
}

fn actor() -> Actor {
    Actor::user("erp").unwrap()
}

/// A fresh file with 100 customers and 5 products, the level rule on (or not).
fn fresh_with(levels: bool) -> (tempfile::TempDir, Crm, Vec<CustomerId>) {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(guanxi::SqliteStore::open(dir.path().join("crm.db")).unwrap());
    let builder = Crm::builder().store(store);
    let crm = if levels { builder.level_rule(LevelRule::spend_12m_default()) } else { builder }.build();
    let customers = (0..100).map(|i| NewCustomer::new(format!("客户{i:03}"))).collect();
    let ids = crm.customers().create_many(&actor(), customers).unwrap().into_iter().map(|c| c.id).collect();
    let products = (0..5).map(|i| NewProduct::new(&format!("SKU-{i}"), &format!("产品{i}"))).collect();
    crm.commerce().products().sync(&actor(), products).unwrap();
    (dir, crm, ids)
}

fn fresh() -> (tempfile::TempDir, Crm, Vec<CustomerId>) {
    fresh_with(true)
}

fn batch(customers: &[CustomerId], n: usize) -> Vec<NewPurchase> {
    let at = guanxi::chrono::Utc::now() - guanxi::chrono::Duration::days(30);
    (0..n)
        .map(|i| {
            let line = ProductLine::of_product(
                &format!("SKU-{}", i % 5),
                Decimal::from(1 + i % 3),
                Decimal::from(199),
                Decimal::ZERO,
            )
            .unwrap();
            NewPurchase::new(customers[i % customers.len()], at + guanxi::chrono::Duration::minutes(i as i64))
                .line(line)
                .channel("官网")
                .external("erp", &format!("SO-{i:06}"))
        })
        .collect()
}

/// The baseline's table: the same narrow columns and document.
const BASELINE_SCHEMA: &str = "CREATE TABLE purchases (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, at_ns INTEGER NOT NULL, \
    amount_e4 INTEGER NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, source_system TEXT NOT NULL, external_id TEXT, \
    version INTEGER NOT NULL, doc TEXT NOT NULL) STRICT, WITHOUT ROWID; \
    CREATE UNIQUE INDEX purchases_by_key ON purchases (source_system, external_id) WHERE external_id IS NOT NULL; \
    CREATE INDEX purchases_by_customer ON purchases (customer_id, currency, at_ns, status, amount_e4);";

fn baseline_file() -> (tempfile::TempDir, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;").unwrap();
    conn.execute_batch(BASELINE_SCHEMA).unwrap();
    (dir, conn)
}

fn raw_insert(conn: &mut rusqlite::Connection, inputs: &[NewPurchase]) {
    let tx = conn.transaction().unwrap();
    {
        let mut stmt =
            tx.prepare_cached("INSERT INTO purchases VALUES (?1, ?2, ?3, ?4, ?5, 'paid', ?6, ?7, 1, ?8)").unwrap();
        for (i, p) in inputs.iter().enumerate() {
            let amount: Decimal = p.lines.iter().map(ProductLine::total).sum();
            let doc = serde_json::to_string(p).unwrap();
            stmt.execute(rusqlite::params![
                format!("{i:032x}"),
                p.customer_id.to_string(),
                p.at.timestamp_nanos_opt().unwrap(),
                (amount * Decimal::from(10_000)).to_string().parse::<i64>().unwrap_or(0),
                p.currency,
                p.source_system.as_deref().unwrap_or_default(),
                p.external_id,
                doc
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

fn bench(c: &mut Criterion) {
    let n = rows();
    let mut g = c.benchmark_group(format!("purchases_{n}"));
    g.sample_size(10).measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_secs(1));
    g.bench_function("record_new", |b| {
        b.iter_batched(
            || {
                let (dir, crm, ids) = fresh();
                let inputs = batch(&ids, n);
                (dir, crm, inputs)
            },
            |(_dir, crm, inputs)| black_box(crm.commerce().purchases().record(&actor(), inputs).unwrap()),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("record_new_without_level_rule", |b| {
        b.iter_batched(
            || {
                let (dir, crm, ids) = fresh_with(false);
                let inputs = batch(&ids, n);
                (dir, crm, inputs)
            },
            |(_dir, crm, inputs)| black_box(crm.commerce().purchases().record(&actor(), inputs).unwrap()),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("raw_rusqlite_insert", |b| {
        let ids: Vec<CustomerId> = (0..100u128).map(|i| CustomerId(uuid::Uuid::from_u128(i + 1))).collect();
        b.iter_batched(
            || {
                let (dir, conn) = baseline_file();
                (dir, conn, batch(&ids, n))
            },
            |(_dir, mut conn, inputs)| raw_insert(&mut conn, &inputs),
            BatchSize::PerIteration,
        )
    });
    // Re-syncing a batch already recorded: every purchase is found equal, nothing is written.
    let (_dir, crm, ids) = fresh();
    let inputs = batch(&ids, n);
    crm.commerce().purchases().record(&actor(), inputs.clone()).unwrap();
    g.bench_function("record_again_unchanged", |b| {
        b.iter(|| black_box(crm.commerce().purchases().record(&actor(), inputs.clone()).unwrap()))
    });
    let (_raw_dir, mut conn) = baseline_file();
    raw_insert(&mut conn, &inputs);
    g.bench_function("raw_rusqlite_key_lookups", |b| {
        b.iter(|| {
            let mut stmt =
                conn.prepare_cached("SELECT doc FROM purchases WHERE source_system = ?1 AND external_id = ?2").unwrap();
            for p in &inputs {
                let doc: String =
                    stmt.query_row(rusqlite::params![p.source_system, p.external_id], |r| r.get(0)).unwrap();
                black_box(serde_json::from_str::<NewPurchase>(&doc).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
