//! Segment benchmarks, each beside hand-written SQL in the same run:
//!
//! - `segment_1m`: the three-predicate segment
//!   `tag:VIP AND region:华东 AND count(event = "page_view", url ~ "ielts", within = 30d) >= 3`
//!   over 1,000,000 customers and 10,000,000 events in a SQLite file (`GUANXI_SEGMENT_CUSTOMERS`
//!   sets fewer; ten events a customer), counted and its first page of 100 members read
//!   through the facade, against a hand-written query of the same expression.
//! - `event_ingest`: 100,000 events (10,000 a batch, ten a customer) recorded through
//!   `crm.marketing().events().record` (checked, permission, idempotency, change log) against
//!   a raw prepared `INSERT` of the same rows (the same ids: v7 of each event's instant) into
//!   the same table, one transaction a batch.
//!
//! - `segment_follow`: one event recorded for one customer while the segment above is saved
//!   (its membership re-evaluated for that customer in the same transaction), against the
//!   same call with no saved segment: the difference is the incremental re-evaluation.
//!
//! The data set can be kept between runs in the file `GUANXI_SEGMENT_BENCH_DB` names.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use guanxi::marketing::{BehaviourEvent, Segment};
use guanxi::prelude::*;
use guanxi::{Actor, Changes, Crm, CustomValue, CustomerId, FixedClock, PageRequest, SqliteStore, TagWrite, Write};
use rusqlite::Connection;

const SEGMENT: &str = "tag:VIP AND region:华东 AND count(event = \"page_view\", url ~ \"ielts\", within = 30d) >= 3";
const EVENTS_PER_CUSTOMER: u64 = 10;

fn customers() -> u64 {
    std::env::var("GUANXI_SEGMENT_CUSTOMERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000)
}

fn now() -> chrono::DateTime<chrono::Utc> {
    "2024-06-01T02:00:00Z".parse().unwrap()
}

const PROVINCES: [&str; 8] = ["浙江省", "江苏省", "上海市", "广东省", "山东省", "北京市", "四川省", "福建省"];
const URLS: [&str; 4] = ["/courses/ielts", "/courses/IELTS/fees", "/courses/toefl", "/"];

/// Event `k` of customer `n`: three in five page views, over the last 60 days.
fn event(n: u64, k: u64, id: CustomerId) -> BehaviourEvent {
    let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    let name = if h % 5 < 3 { "page_view" } else { "purchase" };
    let at = now() - chrono::Duration::minutes((h % (60 * 24 * 60)) as i64);
    let mut e =
        BehaviourEvent::new(id, name, at).property("url", CustomValue::Text(URLS[(h >> 8) as usize % 4].into()));
    e.id = guanxi::EventId(uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        at.timestamp() as u64,
        k as u32,
    )));
    e
}

/// N customers (one in five tagged VIP, provinces in turn) with ten events each, written
/// through the store in batches.
fn build() -> (tempfile::TempDir, std::path::PathBuf, Crm) {
    let dir = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("GUANXI_SEGMENT_BENCH_DB").map(std::path::PathBuf::from);
    let path = kept.clone().unwrap_or_else(|| dir.path().join("segments.db"));
    let reuse = kept.is_some() && path.exists();
    let store = SqliteStore::open(&path).unwrap();
    let n = customers();
    if !reuse {
        store
            .apply(&Changes {
                tags: vec![TagWrite::Ensure(guanxi::Tag::new("VIP", None).unwrap())],
                ..Default::default()
            })
            .unwrap();
        let step = 10_000u64;
        for start in (0..n).step_by(step as usize) {
            let mut changes = Changes::default();
            for i in start..(start + step).min(n) {
                let mut c = guanxi::testing::conformance::sample_customer(i);
                c.deleted_at = None;
                c.region = Some(guanxi::Region {
                    province: PROVINCES[(i % 8) as usize].into(),
                    city: String::new(),
                    district: String::new(),
                });
                if i % 5 == 0 {
                    c.tags.insert("VIP".into());
                }
                changes.events.extend((0..EVENTS_PER_CUSTOMER).map(|k| event(i, k, c.id)));
                changes.customers.push(Write::Insert(c));
            }
            store.apply(&changes).unwrap();
        }
        eprintln!("built {n} customers, {} events", n * EVENTS_PER_CUSTOMER);
    }
    let clock = Arc::new(FixedClock::at(now()));
    (dir, path, Crm::builder().store(Arc::new(store)).clock(clock).build())
}

/// The same expression by hand, as one would write it: from the tag's index, the provinces of
/// 华东, and per remaining customer the qualifying page views in the window (from 2024-05-02
/// 00:00 in UTC+8) off the `(name, customer_id, at)` index.
const HAND_WHERE: &str = "FROM customer_tags t JOIN customers c ON c.id = t.customer_id \
     WHERE t.tag = 'VIP' AND c.deleted_at IS NULL \
     AND c.province IN ('上海市', '江苏省', '浙江省', '安徽省', '福建省', '江西省', '山东省', '台湾省') \
     AND (SELECT count(*) FROM events e WHERE e.customer_id = c.id AND e.name = 'page_view' \
       AND e.at >= '2024-05-01T16:00:00.000000000Z' AND e.at <= '2024-06-01T02:00:00.000000000Z' \
       AND instr(lower(json_extract(e.doc, '$.properties.url.value')), 'ielts') > 0) >= 3";

fn segment_1m(c: &mut Criterion) {
    let (_dir, path, crm) = build();
    let analyst = Actor::user("analyst").unwrap();
    let segment = Segment::parse(SEGMENT).unwrap();
    let conn = Connection::open(&path).unwrap();
    let hand_count = || -> i64 { conn.query_row(&format!("SELECT count(*) {HAND_WHERE}"), [], |r| r.get(0)).unwrap() };
    let ours = crm.marketing().segments().count(&analyst, &segment).unwrap();
    assert_eq!(ours as i64, hand_count(), "the hand-written query finds the same members");
    eprintln!("segment: {ours} members of {} customers", customers());

    let mut g = c.benchmark_group("segment_1m");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("guanxi_count", |b| {
        b.iter(|| black_box(crm.marketing().segments().count(&analyst, &segment).unwrap()))
    });
    g.bench_function("hand_sql_count", |b| b.iter(|| black_box(hand_count())));
    g.bench_function("guanxi_first_page_100", |b| {
        b.iter(|| {
            black_box(crm.marketing().segments().members_page(&analyst, &segment, PageRequest::first(100)).unwrap())
        })
    });
    let mut page =
        conn.prepare(&format!("SELECT c.id, c.name, c.custom {HAND_WHERE} ORDER BY t.customer_id LIMIT 101")).unwrap();
    g.bench_function("hand_sql_first_page_100", |b| {
        b.iter(|| {
            let rows: Vec<(String, String, String)> =
                page.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
            black_box(rows)
        })
    });
    g.finish();
}

fn event_ingest(c: &mut Criterion) {
    let (_dir, path, crm) = build();
    let analyst = Actor::user("analyst").unwrap();
    let n = customers();
    // Events for 1,000 customers a batch, ten each; every iteration a new round of them.
    let round = std::cell::Cell::new(0u64);
    let batch = |r: u64, b: u64| -> Vec<BehaviourEvent> {
        (0..1_000u64)
            .flat_map(|j| {
                let i = (b * 1_000 + j) % n;
                let id = guanxi::testing::conformance::sample_customer(i).id;
                (0..EVENTS_PER_CUSTOMER).map(move |k| event(i, 100 + r * 10 + k, id))
            })
            .collect()
    };
    let conn = Connection::open(&path).unwrap();
    let mut g = c.benchmark_group("event_ingest");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(criterion::Throughput::Elements(100_000));
    g.bench_function("guanxi_record_100k", |b| {
        b.iter(|| {
            let r = round.get();
            round.set(r + 1);
            for k in 0..10 {
                black_box(crm.marketing().events().record(&analyst, batch(r, k)).unwrap());
            }
        })
    });
    g.bench_function("raw_insert_100k", |b| {
        b.iter(|| {
            let r = round.get();
            round.set(r + 1);
            for k in 0..10 {
                let events = batch(r, k);
                let tx = conn.unchecked_transaction().unwrap();
                {
                    let mut insert = tx
                        .prepare_cached(
                            "INSERT INTO events (id, customer_id, at, external_id, name, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )
                        .unwrap();
                    for e in &events {
                        // The id the facade gives: a v7 of the event's own instant.
                        let (secs, nanos) = (e.at.timestamp() as u64, e.at.timestamp_subsec_nanos());
                        let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos)).to_string();
                        let at = e.at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                        let doc = serde_json::to_string(e).unwrap();
                        insert.execute(rusqlite::params![id, e.customer_id.to_string(), at, e.external_id, e.name, doc]).unwrap();
                    }
                }
                tx.commit().unwrap();
            }
        })
    });
    g.finish();
}

fn segment_follow(c: &mut Criterion) {
    let (_dir, _path, crm) = build();
    let analyst = Actor::user("analyst").unwrap();
    // Customers 40, 80, 120, … in turn: each a VIP (every fifth) in 浙江 (华东) with its ten
    // events, so every call re-evaluates one ordinary customer.
    let tick = std::cell::Cell::new(0u64);
    let one = || {
        let k = tick.get();
        tick.set(k + 1);
        let who = guanxi::testing::conformance::sample_customer(40 * (1 + k % (customers() / 40 - 1))).id;
        let at = now() - chrono::Duration::milliseconds(k as i64);
        vec![BehaviourEvent::new(who, "page_view", at).property("url", CustomValue::Text("/ielts".into()))]
    };
    let mut g = c.benchmark_group("segment_follow");
    g.sample_size(50).measurement_time(Duration::from_secs(10));
    g.bench_function("record_one_event_no_saved_segment", |b| {
        b.iter(|| black_box(crm.marketing().events().record(&analyst, one()).unwrap()))
    });
    let saved = guanxi::marketing::SavedSegment::new("ielts_vip", Segment::parse(SEGMENT).unwrap());
    crm.marketing().segments().save(&analyst, saved).unwrap();
    let members = crm.marketing().segments().current(&analyst, "ielts_vip", PageRequest::first(1)).unwrap();
    assert!(!members.items.is_empty(), "the saved segment has members");
    g.bench_function("record_one_event_saved_segment_followed", |b| {
        b.iter(|| black_box(crm.marketing().events().record(&analyst, one()).unwrap()))
    });
    g.finish();
    // A kept file goes back to no saved segment (the history stays).
    crm.marketing().segments().delete(&analyst, "ielts_vip").unwrap();
}

criterion_group!(benches, segment_1m, segment_follow, event_ingest);
criterion_main!(benches);
