//! guanxi on PostgreSQL beside hand-written SQL on the same server, in the same run (issue 16,
//! item 8): batch create of customers (2 tags + 1 contact each), list by tag (first page of
//! 100), and the sales report over generated opportunities with their stage history.
//!
//! The server is `GUANXI_TEST_POSTGRES` (skipped without one). Sizes: `GUANXI_PG_CUSTOMERS`
//! (default 100,000) and `GUANXI_PG_OPPORTUNITIES` (default 1,000,000); in test mode
//! (`-- --test`) 2,000 of each.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use guanxi::sales::{Opportunity, SalesQuery, StageHistoryEntry};
use guanxi::{Actor, Crm, CustomerFilter, FixedClock, NewContact, NewCustomer, PageRequest, PgOptions, PgStore};
use postgres::{Client, NoTls};

fn size(var: &str, default: u64) -> u64 {
    if std::env::args().any(|a| a == "--test") {
        return 2_000;
    }
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A store in a fresh schema of its own, and a plain client with the baseline tables.
fn fresh(server: &str, name: &str) -> (Arc<PgStore>, Client) {
    let options = || PgOptions { schema: format!("bench_{name}_{}", std::process::id()), ..PgOptions::default() };
    PgStore::connect_with(server, options()).unwrap().drop_schema().unwrap();
    let store = Arc::new(PgStore::connect_with(server, options()).unwrap());
    let mut raw = Client::connect(server, NoTls).unwrap();
    let schema = format!("raw_{name}_{}", std::process::id());
    raw.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}"
    ))
    .unwrap();
    (store, raw)
}

fn customers(n: u64) -> Vec<NewCustomer> {
    (0..n)
        .map(|i| {
            NewCustomer::new(format!("批量客户{i:07}"))
                .tag(["VIP", "华东", "展会", "老客户"][(i % 4) as usize])
                .tag(["制造", "零售", "金融"][(i % 3) as usize])
                .contact(NewContact::new(format!("联系人{i}")).phone(format!("139{:08}", i % 100_000_000)))
        })
        .collect()
}

/// The same business rows by hand: a customer, its two tags and a contact, in one transaction.
fn raw_create(raw: &mut Client, n: u64, round: u64) {
    let mut tx = raw.transaction().unwrap();
    let customer = tx.prepare("INSERT INTO customers (id, code, name) VALUES ($1, $2, $3)").unwrap();
    let tag = tx.prepare("INSERT INTO customer_tags (customer_id, tag) VALUES ($1, $2)").unwrap();
    let contact = tx.prepare("INSERT INTO contacts (id, customer_id, name, phone) VALUES ($1, $2, $3, $4)").unwrap();
    for i in 0..n {
        let id = uuid::Uuid::now_v7().to_string();
        tx.execute(&customer, &[&id, &format!("R{round}-{i}"), &format!("批量客户{i:07}")]).unwrap();
        for t in [["VIP", "华东", "展会", "老客户"][(i % 4) as usize], ["制造", "零售", "金融"][(i % 3) as usize]]
        {
            tx.execute(&tag, &[&id, &t]).unwrap();
        }
        tx.execute(&contact, &[&uuid::Uuid::now_v7().to_string(), &id, &format!("联系人{i}"), &format!("139{:08}", i)])
            .unwrap();
    }
    tx.commit().unwrap();
}

const RAW_CUSTOMERS: &str = "DROP TABLE IF EXISTS contacts, customer_tags, customers;
    CREATE TABLE customers (id text COLLATE \"C\" PRIMARY KEY, code text UNIQUE, name text);
    CREATE TABLE customer_tags (customer_id text COLLATE \"C\" REFERENCES customers, tag text, PRIMARY KEY (customer_id, tag));
    CREATE INDEX customer_tags_by_tag ON customer_tags (tag, customer_id);
    CREATE TABLE contacts (id text PRIMARY KEY, customer_id text REFERENCES customers, name text, phone text);
    CREATE INDEX contacts_by_phone ON contacts (phone);";

fn bench_customers(c: &mut Criterion, server: &str) {
    let n = size("GUANXI_PG_CUSTOMERS", 100_000);
    let (store, mut raw) = fresh(server, "customers");
    let crm = Crm::builder().store(store.clone()).build();
    let actor = Actor::user("bench").unwrap();
    let mut group = c.benchmark_group(format!("postgres_{n}_customers"));
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    let schema = || PgOptions { schema: format!("bench_customers_{}", std::process::id()), ..PgOptions::default() };
    group.bench_function("guanxi_create_customers", |b| {
        b.iter_batched(
            // Each run into an empty schema, as the baseline's into empty tables.
            || {
                store.drop_schema().unwrap();
                let fresh = Crm::builder().store(Arc::new(PgStore::connect_with(server, schema()).unwrap())).build();
                (customers(n), fresh)
            },
            |(input, fresh)| black_box(fresh.customers().create_many(&actor, input).unwrap().len()),
            BatchSize::PerIteration,
        )
    });
    let mut round = 0;
    let raw_cell = std::cell::RefCell::new(&mut raw);
    group.bench_function("raw_sql_insert", |b| {
        b.iter_batched(
            || raw_cell.borrow_mut().batch_execute(RAW_CUSTOMERS).unwrap(),
            |()| {
                round += 1;
                raw_create(&mut raw_cell.borrow_mut(), n, round);
            },
            BatchSize::PerIteration,
        )
    });
    // Lists read a store holding the rows (the last run's, and as many again); the baseline's
    // tables hold its last run's (or one run's, when a filter skipped the insert benchmark).
    crm.customers().create_many(&actor, customers(n)).unwrap();
    if round == 0 {
        raw.batch_execute(RAW_CUSTOMERS).unwrap();
        raw_create(&mut raw, n, 1);
    }
    let vip = CustomerFilter::default().tag("VIP");
    group.bench_function("guanxi_list_by_tag_first_100", |b| {
        b.iter(|| black_box(crm.customers().list(&actor, &vip, PageRequest::first(100)).unwrap().items.len()))
    });
    let page = raw
        .prepare(
            "SELECT c.id, c.code, c.name FROM customer_tags t JOIN customers c ON c.id = t.customer_id \
             WHERE t.tag = $1 ORDER BY t.customer_id LIMIT 100",
        )
        .unwrap();
    group.bench_function("raw_sql_list_by_tag_first_100", |b| {
        b.iter(|| black_box(raw.query(&page, &[&"VIP"]).unwrap().len()))
    });
    group.finish();
    store.drop_schema().unwrap();
}

const RAW_SALES: &str = "DROP TABLE IF EXISTS history, lines, opps;
    CREATE TABLE opps (n bigint PRIMARY KEY, pipeline text, currency text, stage text, furthest text, amount_e4 bigint,
        won boolean, opened_s bigint, closed_s bigint, owner text, expected_month text, probability text);
    CREATE TABLE history (opp bigint, from_stage text, to_stage text, stay_s bigint, lost_reason text);
    CREATE TABLE lines (opp bigint, product text, total_e4 bigint);";

fn e4(d: guanxi::rust_decimal::Decimal) -> i64 {
    (d * guanxi::rust_decimal::Decimal::from(10_000)).trunc().try_into().unwrap_or(0)
}

/// The same facts in plain rows.
fn raw_insert(raw: &mut Client, start: u64, opps: &[Opportunity], history: &[StageHistoryEntry]) {
    let mut tx = raw.transaction().unwrap();
    let o = tx.prepare("INSERT INTO opps VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)").unwrap();
    let h = tx.prepare("INSERT INTO history VALUES ($1, $2, $3, $4, $5)").unwrap();
    let l = tx.prepare("INSERT INTO lines VALUES ($1, $2, $3)").unwrap();
    let index: std::collections::HashMap<_, i64> =
        opps.iter().enumerate().map(|(i, x)| (x.id, (start + i as u64) as i64)).collect();
    for (i, x) in opps.iter().enumerate() {
        let n = (start + i as u64) as i64;
        let won = if x.won_at.is_some() {
            Some(true)
        } else if x.lost_at.is_some() {
            Some(false)
        } else {
            None
        };
        let month = x.expected_close.map(|d| d.format("%Y-%m").to_string());
        tx.execute(
            &o,
            &[
                &n,
                &x.pipeline,
                &x.currency,
                &x.stage,
                &x.furthest_stage,
                &e4(x.amount),
                &won,
                &x.opened_at.timestamp(),
                &x.closed_at().map(|t| t.timestamp()),
                &x.owner.as_ref().map(|u| u.to_string()),
                &month,
                &x.probability.normalize().to_string(),
            ],
        )
        .unwrap();
        for line in &x.lines {
            tx.execute(&l, &[&n, &line.product, &e4(line.total())]).unwrap();
        }
    }
    for e in history {
        let stay = e.from_entered_at.map(|t| (e.at - t).num_seconds());
        tx.execute(&h, &[&index[&e.opportunity_id], &e.change.from, &e.change.to, &stay, &e.lost_reason]).unwrap();
    }
    tx.commit().unwrap();
}

fn hand_written(raw: &mut Client) -> i64 {
    let queries = [
        "SELECT stage, furthest, count(*), sum(amount_e4)::bigint FROM opps WHERE pipeline = 'standard' AND currency = 'CNY' GROUP BY 1, 2",
        "SELECT h.from_stage, h.to_stage = 'lost', coalesce(h.lost_reason, ''), count(*), sum(h.stay_s)::bigint \
         FROM opps o JOIN history h ON h.opp = o.n \
         WHERE o.pipeline = 'standard' AND o.currency = 'CNY' AND h.stay_s IS NOT NULL GROUP BY 1, 2, 3",
        "SELECT won, (closed_s - opened_s) / 86400, count(*), sum(amount_e4)::bigint FROM opps \
         WHERE pipeline = 'standard' AND currency = 'CNY' AND closed_s IS NOT NULL GROUP BY 1, 2",
        "SELECT owner, count(*), sum(amount_e4)::bigint FROM opps WHERE pipeline = 'standard' AND currency = 'CNY' AND won GROUP BY 1",
        "SELECT l.product, count(*), sum(l.total_e4)::bigint FROM opps o JOIN lines l ON l.opp = o.n \
         WHERE o.pipeline = 'standard' AND o.currency = 'CNY' AND o.won GROUP BY 1",
        "SELECT expected_month, probability, count(*), sum(amount_e4)::bigint FROM opps \
         WHERE pipeline = 'standard' AND currency = 'CNY' AND closed_s IS NULL GROUP BY 1, 2",
    ];
    let mut sum = 0i64;
    for sql in queries {
        for r in raw.query(sql, &[]).unwrap() {
            sum = sum.wrapping_add(r.get::<_, Option<i64>>(r.len() - 1).unwrap_or(0));
        }
    }
    sum
}

fn bench_sales(c: &mut Criterion, server: &str) {
    let n = size("GUANXI_PG_OPPORTUNITIES", 1_000_000);
    let (store, mut raw) = fresh(server, "sales");
    raw.batch_execute(RAW_SALES).unwrap();
    let t = Instant::now();
    guanxi_benches::write_opportunities(&*store, n, |start, opps, history| raw_insert(&mut raw, start, opps, history));
    raw.batch_execute("ANALYZE").unwrap();
    eprintln!("built {n} opportunities in {:?}", t.elapsed());
    let clock = Arc::new(FixedClock::at("2025-06-01T00:00:00Z".parse().unwrap()));
    let crm = Crm::builder().store(store.clone()).clock(clock).build();
    let analyst = Actor::user("analyst").unwrap();
    let mut group = c.benchmark_group(format!("postgres_sales_report_{n}"));
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.bench_function("guanxi_sales_report", |b| {
        b.iter(|| black_box(crm.sales().report(&analyst, &SalesQuery::new("standard").currency("CNY")).unwrap()))
    });
    group.bench_function("hand_written_group_by", |b| b.iter(|| black_box(hand_written(&mut raw))));
    group.finish();
    store.drop_schema().unwrap();
}

fn bench(c: &mut Criterion) {
    let Some(server) = std::env::var("GUANXI_TEST_POSTGRES").ok().filter(|s| !s.is_empty()) else {
        eprintln!("skipped: GUANXI_TEST_POSTGRES names no PostgreSQL server");
        return;
    };
    bench_customers(c, &server);
    bench_sales(c, &server);
}

criterion_group!(benches, bench);
criterion_main!(benches);
