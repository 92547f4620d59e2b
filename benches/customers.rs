//! Customer-center benchmarks, each beside its raw-SQLite baseline in the same run:
//!
//! - `batch_create_100k`: 100,000 validated customers (2 tags + 1 contact each, with change-log
//!   entries) through `Crm::create_customers` into a fresh file, vs two raw rusqlite
//!   prepared-statement inserts in one transaction: the same customer, tag-link and contact rows
//!   alone (`raw_rusqlite_insert`), and those rows plus the same two change-log rows per customer
//!   guanxi writes (`raw_rusqlite_insert_with_log`), which isolates guanxi's own overhead.
//! - `single_create`: one customer with its change-log entry, vs a raw insert of one customer
//!   row and one log row in a transaction (both with the store's default durability).
//! - `get_by_id`: `Crm::customer` vs a prepared `SELECT … WHERE id = ?`.
//! - `scan_100k`: every customer through `Customers::scan` (views borrowing the stored rows) and
//!   through `list_all` (records), vs a hand-written select reading each column borrowed.
//! - `list_by_tag`: over 100,000 customers with 20 tags (~10,000 customers each): the first page
//!   of 100, and every member of one tag, vs the same hand-written join query.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use guanxi::{Actor, Crm, CustomerFilter, CustomerId, NewContact, NewCustomer, PageRequest, Region, SqliteStore};
use rusqlite::{Connection, params};

const N: usize = 100_000;
const TAGS: usize = 20;
const PROVINCES: [(&str, &str); 4] = [("山东", "聊城市"), ("广东", "深圳市"), ("浙江", "杭州市"), ("北京", "北京市")];

fn tags_of(i: usize) -> [String; 2] {
    let a = i % TAGS;
    let b = (a + 1 + (i / TAGS) % (TAGS - 1)) % TAGS;
    [format!("标签{a:02}"), format!("标签{b:02}")]
}

fn input(i: usize) -> NewCustomer {
    let (province, city) = PROVINCES[i % PROVINCES.len()];
    let [t1, t2] = tags_of(i);
    NewCustomer::new(format!("客户{i}科技有限公司"))
        .source("展会")
        .region(Region { province: province.into(), city: city.into(), district: String::new() })
        .tag(t1)
        .tag(t2)
        .contact(
            NewContact::new(format!("联系人{i}")).phone(format!("138{:08}", i)).email(format!("user{i}@example.com")),
        )
}

fn inputs(n: usize) -> Vec<NewCustomer> {
    (0..n).map(input).collect()
}

/// The rows the raw baseline writes: already normalized, as a hand-written importer would.
struct RawRow {
    id: String,
    code: String,
    name: String,
    province: String,
    city: String,
    tags: [String; 2],
    contact_id: String,
    contact_name: String,
    phones: String,
    emails: String,
    customer_log: String,
    contact_log: String,
}

fn raw_rows(n: usize) -> Vec<RawRow> {
    (0..n)
        .map(|i| {
            let (province, city) = PROVINCES[i % PROVINCES.len()];
            RawRow {
                id: uuid::Uuid::now_v7().to_string(),
                code: format!("C20240501{:03}", i + 1),
                name: format!("客户{i}科技有限公司"),
                province: guanxi::region::canonical_province(province).unwrap().to_owned(),
                city: city.to_owned(),
                tags: tags_of(i),
                contact_id: uuid::Uuid::now_v7().to_string(),
                contact_name: format!("联系人{i}"),
                phones: format!("[\"+86138{:08}\"]", i),
                emails: format!("[\"user{i}@example.com\"]"),
                // The change-log payloads guanxi writes for these rows, pre-rendered.
                customer_log: format!(
                    "[{{\"field\":\"code\",\"new\":\"C20240501{:03}\"}},{{\"field\":\"kind\",\"new\":\"enterprise\"}},\
                     {{\"field\":\"name\",\"new\":\"客户{i}科技有限公司\"}},{{\"field\":\"owner\",\"new\":\"bench\"}},\
                     {{\"field\":\"region\",\"new\":{{\"city\":\"{city}\",\"district\":\"\",\"province\":\"{province}\"}}}},\
                     {{\"field\":\"source\",\"new\":\"展会\"}},{{\"field\":\"status\",\"new\":\"potential\"}},\
                     {{\"field\":\"tags\",\"new\":[\"{}\",\"{}\"]}}]",
                    i + 1,
                    tags_of(i)[0],
                    tags_of(i)[1]
                ),
                contact_log: format!(
                    "[{{\"field\":\"do_not_contact\",\"new\":false}},{{\"field\":\"emails\",\"new\":[\"user{i}@example.com\"]}},\
                     {{\"field\":\"name\",\"new\":\"联系人{i}\"}},{{\"field\":\"phones\",\"new\":[\"+86138{:08}\"]}},\
                     {{\"field\":\"primary\",\"new\":true}}]",
                    i
                ),
            }
        })
        .collect()
}

const NOW: &str = "2024-05-01T08:00:00.000000000Z";

fn raw_insert(conn: &mut Connection, rows: &[RawRow], with_log: bool) {
    let tx = conn.transaction().unwrap();
    {
        let mut tag =
            tx.prepare("INSERT OR IGNORE INTO tags (name, group_name, created_at) VALUES (?1, NULL, ?2)").unwrap();
        for t in 0..TAGS {
            tag.execute(params![format!("标签{t:02}"), NOW]).unwrap();
        }
        let mut customer = tx
            .prepare(
                "INSERT INTO customers (id, code, name, kind, source, status, province, city, owner, custom, \
                 created_by, created_at, updated_by, updated_at, version) \
                 VALUES (?1, ?2, ?3, 'enterprise', '展会', 'potential', ?4, ?5, 'bench', '{}', 'bench', ?6, 'bench', ?6, 1)",
            )
            .unwrap();
        let mut link = tx.prepare("INSERT INTO customer_tags (customer_id, tag) VALUES (?1, ?2)").unwrap();
        let mut contact = tx
            .prepare(
                "INSERT INTO contacts (id, customer_id, name, phones, emails, is_primary, do_not_contact, custom, \
                 created_by, created_at, updated_by, updated_at, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, 0, '{}', 'bench', ?6, 'bench', ?6, 1)",
            )
            .unwrap();
        let mut log = tx
            .prepare(
                "INSERT INTO change_log (at, actor, entity, entity_id, customer_id, action, changes, prev_hash, hash) \
                 VALUES (?1, 'bench', ?2, ?3, ?4, 'create', ?5, ?6, ?7)",
            )
            .unwrap();
        // The same chaining guanxi does: each entry's SHA-256 over its predecessor's and its own text.
        let mut prev = guanxi::changelog::GENESIS_HASH.to_owned();
        let mut chained = |changes: &str| -> (String, String) {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(prev.as_bytes());
            h.update(b"\n");
            h.update(changes.as_bytes());
            let hash: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
            (std::mem::replace(&mut prev, hash.clone()), hash)
        };
        for r in rows {
            customer.execute(params![r.id, r.code, r.name, r.province, r.city, NOW]).unwrap();
            for t in &r.tags {
                link.execute(params![r.id, t]).unwrap();
            }
            contact.execute(params![r.contact_id, r.id, r.contact_name, r.phones, r.emails, NOW]).unwrap();
            if with_log {
                let (p, h) = chained(&r.customer_log);
                log.execute(params![NOW, "customer", r.id, r.id, r.customer_log, p, h]).unwrap();
                let (p, h) = chained(&r.contact_log);
                log.execute(params![NOW, "contact", r.contact_id, r.id, r.contact_log, p, h]).unwrap();
            }
        }
    }
    tx.commit().unwrap();
}

/// A fresh, migrated database file in a new temporary directory.
fn fresh_file() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    drop(SqliteStore::open(&path).unwrap());
    (dir, path)
}

fn raw_connection(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    // The same settings guanxi's store uses, so only the work differs.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536;",
    )
    .unwrap();
    conn
}

fn batch_create(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_create_100k");
    g.sample_size(10).measurement_time(Duration::from_secs(30)).warm_up_time(Duration::from_secs(1));
    let actor = Actor::user("bench").unwrap();
    g.bench_function("guanxi_create_customers", |b| {
        b.iter_batched(
            || {
                let (dir, path) = fresh_file();
                (dir, Crm::open(&path).unwrap(), inputs(N))
            },
            |(dir, crm, batch)| {
                black_box(crm.customers().create_many(&actor, batch).unwrap());
                (dir, crm)
            },
            BatchSize::PerIteration,
        )
    });
    for (name, with_log) in [("raw_rusqlite_insert", false), ("raw_rusqlite_insert_with_log", true)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let (dir, path) = fresh_file();
                    (dir, raw_connection(&path), raw_rows(N))
                },
                |(dir, mut conn, rows)| {
                    raw_insert(&mut conn, &rows, with_log);
                    (dir, conn)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// A file holding the 100,000 benchmark customers, loaded through the facade.
fn populated() -> (tempfile::TempDir, std::path::PathBuf, Crm, Vec<CustomerId>) {
    let (dir, path) = fresh_file();
    let crm = Crm::open(&path).unwrap();
    let created = crm.customers().create_many(&Actor::user("bench").unwrap(), inputs(N)).unwrap();
    let ids = created.iter().map(|c| c.id).collect();
    (dir, path, crm, ids)
}

fn reads(c: &mut Criterion) {
    let (_dir, path, crm, ids) = populated();
    let actor = Actor::user("bench").unwrap();
    let raw = raw_connection(&path);

    let mut g = c.benchmark_group("get_by_id");
    let mut i = 0usize;
    g.bench_function("guanxi_customer", |b| {
        b.iter(|| {
            i = (i + 7919) % ids.len();
            black_box(crm.customers().get(&actor, ids[i]).unwrap())
        })
    });
    let mut stmt = raw
        .prepare_cached(
            "SELECT id, code, name, kind, industry, size, source, status, level, province, city, district, address, \
             owner, department, custom, created_by, created_at, updated_by, updated_at, version, deleted_at \
             FROM customers WHERE id = ?1",
        )
        .unwrap();
    let keys: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    g.bench_function("raw_select_by_id", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let row = stmt
                .query_row([&keys[i]], |r| {
                    Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(15)?))
                })
                .unwrap();
            black_box(row)
        })
    });
    drop(stmt);
    g.finish();

    let mut g = c.benchmark_group("list_by_tag");
    let filter = CustomerFilter::default().tag("标签07");
    g.bench_function("guanxi_first_page_100", |b| {
        b.iter(|| black_box(crm.customers().list(&actor, &filter, PageRequest::first(100)).unwrap()))
    });
    // The best hand-written query: every column of the record plus its tags, in the tag index's
    // order, each row decoded into plain SQLite values.
    let page_sql = "SELECT c.*, (SELECT json_group_array(x.tag) FROM customer_tags x WHERE x.customer_id = c.id) \
                    FROM customer_tags t JOIN customers c ON c.id = t.customer_id \
                    WHERE t.tag = ?1 AND c.deleted_at IS NULL ORDER BY t.customer_id LIMIT ?2";
    let decode =
        |r: &rusqlite::Row<'_>| (0..23).map(|i| r.get::<_, rusqlite::types::Value>(i)).collect::<Result<Vec<_>, _>>();
    g.bench_function("raw_join_first_page_100", |b| {
        let mut stmt = raw.prepare_cached(page_sql).unwrap();
        b.iter(|| {
            let rows: Vec<Vec<rusqlite::types::Value>> =
                stmt.query_map(params!["标签07", 101], decode).unwrap().collect::<Result<_, _>>().unwrap();
            black_box(rows)
        })
    });
    g.sample_size(20);
    g.bench_function("guanxi_all_members_10k", |b| {
        b.iter(|| black_box(crm.customers().list_all(&actor, &filter).unwrap()))
    });
    g.bench_function("raw_join_all_members_10k", |b| {
        let mut stmt = raw.prepare_cached(page_sql).unwrap();
        b.iter(|| {
            let rows: Vec<Vec<rusqlite::types::Value>> =
                stmt.query_map(params!["标签07", -1], decode).unwrap().collect::<Result<_, _>>().unwrap();
            black_box(rows)
        })
    });
    g.finish();

    // Every customer, each row's fields borrowed and touched once: what a columnar reader
    // (the Python binding's Arrow tables) costs on top of the store's read, beside the same
    // rows read by hand and the records `list_all` builds.
    let mut g = c.benchmark_group("scan_100k");
    g.sample_size(10);
    let all = CustomerFilter::default();
    g.bench_function("guanxi_scan_views", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            crm.customers()
                .scan(&actor, &all, |v| {
                    bytes +=
                        v.code.len() + v.name.len() + v.created_by.len() + v.tags.iter().map(str::len).sum::<usize>();
                    Ok(())
                })
                .unwrap();
            black_box(bytes)
        })
    });
    g.bench_function("guanxi_list_all_records", |b| {
        b.iter(|| black_box(crm.customers().list_all(&actor, &all).unwrap()))
    });
    g.bench_function("raw_select_borrowed", |b| {
        let mut stmt = raw
            .prepare_cached(
                "SELECT c.*, (SELECT group_concat(t.tag) FROM customer_tags t WHERE t.customer_id = c.id) \
                 FROM customers c WHERE c.deleted_at IS NULL ORDER BY c.id",
            )
            .unwrap();
        b.iter(|| {
            let mut rows = stmt.query([]).unwrap();
            let mut bytes = 0usize;
            while let Some(r) = rows.next().unwrap() {
                for i in 0..24 {
                    if let Ok(s) = r.get_ref(i).unwrap().as_str() {
                        bytes += s.len();
                    }
                }
            }
            black_box(bytes)
        })
    });
    g.finish();
}

fn single_create(c: &mut Criterion) {
    let (_dir, path, crm, _) = populated();
    let actor = Actor::user("bench").unwrap();
    let mut g = c.benchmark_group("single_create");
    let mut i = N;
    g.bench_function("guanxi_create_customer", |b| {
        b.iter(|| {
            i += 1;
            black_box(crm.customers().create(&actor, NewCustomer::new(format!("单个客户{i}"))).unwrap())
        })
    });
    let mut raw = raw_connection(&path);
    g.bench_function("raw_insert_customer_and_log_row", |b| {
        b.iter(|| {
            i += 1;
            let id = uuid::Uuid::now_v7().to_string();
            let tx = raw.transaction().unwrap();
            tx.prepare_cached(
                "INSERT INTO customers (id, code, name, kind, status, owner, custom, created_by, created_at, \
                 updated_by, updated_at, version) VALUES (?1, ?2, ?3, 'enterprise', 'potential', 'bench', '{}', \
                 'bench', ?4, 'bench', ?4, 1)",
            )
            .unwrap()
            .execute(params![id, format!("R{i}"), format!("单个客户{i}"), NOW])
            .unwrap();
            // Chained like guanxi's log: the predecessor's hash, then SHA-256 over it and the entry.
            let prev: String = tx
                .prepare_cached("SELECT hash FROM change_log ORDER BY seq DESC LIMIT 1")
                .unwrap()
                .query_row([], |r| r.get(0))
                .unwrap_or_else(|_| guanxi::changelog::GENESIS_HASH.to_owned());
            let hash: String = {
                use sha2::{Digest, Sha256};
                let mut h = Sha256::new();
                h.update(prev.as_bytes());
                h.update(b"\n[]");
                h.finalize().iter().map(|b| format!("{b:02x}")).collect()
            };
            tx.prepare_cached(
                "INSERT INTO change_log (at, actor, entity, entity_id, customer_id, action, changes, prev_hash, hash) \
                 VALUES (?1, 'bench', 'customer', ?2, ?2, 'create', '[]', ?3, ?4)",
            )
            .unwrap()
            .execute(params![NOW, id, prev, hash])
            .unwrap();
            tx.commit().unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, batch_create, reads, single_create);
criterion_main!(benches);
