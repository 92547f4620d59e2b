//! Service benchmarks, each beside a baseline in the same run:
//!
//! - SLA evaluation of 100,000 open tickets at an instant: `Crm::sla_overview` on a SQLite
//!   file (read the narrow rows + evaluate both targets in business time over a calendar with
//!   holidays), the evaluation alone on clocks already in memory, and the floor: raw rusqlite
//!   reading the same packed clock values without decoding or evaluating anything.
//! - Knowledge-base search over 50,000 mixed Chinese / English articles: `Crm::search_articles`
//!   (FTS5 over CJK bigrams, BM25) for a mix of queries, beside a hand-written `LIKE '%…%'`
//!   scan (what one writes without an index). The p50 / p99 latency per query class is
//!   printed to stderr.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use guanxi::chrono::NaiveDate;
use guanxi::prelude::*;
use guanxi::service::{BusinessClock, KbQuery, MatchMode, ServiceSettings, SlaEvaluator, TicketFilter};
use guanxi::testing::service_data;
use guanxi::{Actor, Changes, Crm, FixedClock, SqliteStore, Write};
use rusqlite::Connection;

const OPEN_TICKETS: usize = 100_000;
const ARTICLES: u64 = 50_000;

/// A calendar with 2024's Chinese public holidays and make-up working days.
fn settings() -> ServiceSettings {
    let d = |m, day| NaiveDate::from_ymd_opt(2024, m, day).unwrap();
    let mut s = ServiceSettings::default();
    let holidays = [
        (1, 1),
        (2, 10),
        (2, 11),
        (2, 12),
        (2, 13),
        (2, 14),
        (2, 15),
        (2, 16),
        (2, 17),
        (4, 4),
        (4, 5),
        (4, 6),
        (5, 1),
        (5, 2),
        (5, 3),
        (5, 4),
        (5, 5),
        (6, 10),
        (9, 15),
        (9, 16),
        (9, 17),
        (10, 1),
        (10, 2),
        (10, 3),
        (10, 4),
        (10, 5),
        (10, 6),
        (10, 7),
    ];
    s.calendar.holidays = holidays.iter().map(|(m, x)| d(*m, *x)).collect();
    s.calendar.working_days = [(2, 4), (2, 18), (4, 7), (4, 28), (5, 11), (9, 14), (9, 29), (10, 12)]
        .iter()
        .map(|(m, x)| d(*m, *x))
        .collect();
    s
}

fn build() -> (tempfile::TempDir, std::path::PathBuf, Crm) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service.db");
    let store = SqliteStore::open(&path).unwrap();
    let clock = Arc::new(FixedClock::at(service_data::at()));
    let mut open = 0;
    let mut batch = 0;
    while open < OPEN_TICKETS {
        let tickets: Vec<_> = service_data::tickets(20_000, 100 + batch)
            .into_iter()
            .enumerate()
            .filter(|(_, t)| t.status.is_open())
            .map(|(i, mut t)| {
                // Distinct ids and codes across batches.
                t.id = guanxi::TicketId(uuid::Uuid::from_u128(t.id.0.as_u128() + u128::from(batch) * 1_000_000));
                t.code = format!("T{batch:03}{i:06}");
                t
            })
            .take(OPEN_TICKETS - open)
            .collect();
        open += tickets.len();
        batch += 1;
        store
            .apply(&Changes { tickets: tickets.into_iter().map(Write::Insert).collect(), ..Default::default() })
            .unwrap();
    }
    for start in (0..ARTICLES).step_by(10_000) {
        let articles: Vec<_> =
            service_data::articles(ARTICLES, 5).into_iter().skip(start as usize).take(10_000).collect();
        store
            .apply(&Changes { articles: articles.into_iter().map(Write::Insert).collect(), ..Default::default() })
            .unwrap();
    }
    let crm = Crm::builder().store(Arc::new(store)).clock(clock).build();
    crm.service().set_settings(&Actor::user("admin").unwrap(), settings()).unwrap();
    eprintln!("built {open} open tickets and {ARTICLES} articles");
    (dir, path, crm)
}

/// The floor: the open tickets' packed clock values read with rusqlite into byte vectors,
/// nothing decoded, nothing evaluated.
fn raw_read(conn: &Connection) -> usize {
    let mut stmt = conn.prepare_cached("SELECT clock FROM tickets WHERE open = 1").unwrap();
    let rows: Vec<Vec<u8>> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    rows.len()
}

/// Queries by class: one word, two words, a Chinese phrase (all terms), a ticket's text (any).
fn queries() -> Vec<(&'static str, KbQuery)> {
    let words: Vec<&str> = service_data::WORDS.iter().flat_map(|(c, e)| [*c, *e]).collect();
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        out.push(("one word", KbQuery::new(w)));
        out.push(("two words", KbQuery::new(&format!("{w} {}", words[(i * 7 + 3) % words.len()]))));
        out.push(("phrase", KbQuery::new(&format!("如何处理{w}"))));
    }
    for t in [
        "我的退款申请已经提交三天了，还没有到账，请问物流和发票怎么处理？",
        "Router keeps dropping the network after the latest install, warranty still valid?",
        "会员积分没有到账，优惠券也无法使用，订单支付失败",
        "登录时提示密码错误，账户被锁定了",
        "Where is my order? The delivery is late and the coupon did not apply to the payment.",
    ] {
        out.push(("ticket text", KbQuery::new(t).mode(MatchMode::Any).limit(5)));
    }
    out
}

/// p50 / p99 of each query class over `rounds` passes, printed to stderr.
fn latencies(crm: &Crm, admin: &Actor, qs: &[(&'static str, KbQuery)], rounds: usize) {
    let mut by_class: std::collections::BTreeMap<&str, Vec<Duration>> = Default::default();
    let mut all = Vec::new();
    for _ in 0..rounds {
        for (class, q) in qs {
            let t = Instant::now();
            black_box(crm.kb().search(admin, q).unwrap().len());
            let d = t.elapsed();
            by_class.entry(class).or_default().push(d);
            all.push(d);
        }
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() as f64 * p).ceil() as usize).max(1) - 1]
    };
    for (class, mut v) in by_class {
        eprintln!("  {class:<12} n={:<5} p50 {:?}  p99 {:?}", v.len(), pct(&mut v, 0.5), pct(&mut v, 0.99));
    }
    eprintln!(
        "kb search over {ARTICLES} articles, all classes: p50 {:?}, p99 {:?}",
        pct(&mut all, 0.5),
        pct(&mut all, 0.99)
    );
}

fn bench(c: &mut Criterion) {
    let (_dir, path, crm) = build();
    let admin = Actor::user("admin").unwrap();
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA cache_size = -65536").unwrap(); // as the store's default
    let open = TicketFilter { open: Some(true), ..Default::default() };
    let at = service_data::at();
    let overview = crm.service().sla_overview(&admin, &open, at).unwrap();
    let breached = overview.iter().filter(|s| s.breached()).count();
    let risky = overview.iter().filter(|s| s.at_risk()).count();
    eprintln!("{} open tickets evaluated: {breached} breached, {risky} at risk", overview.len());
    let clocks = crm.store().sla_clocks(&open).unwrap();
    let plan: Vec<String> = conn
        .prepare("EXPLAIN QUERY PLAN SELECT t.clock FROM tickets t WHERE t.open = ?1")
        .unwrap()
        .query_map([1], |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    eprintln!("sla clock plan: {plan:?}");
    let clock = BusinessClock::new(&settings().calendar).unwrap();

    let mut g = c.benchmark_group("sla_100k_open");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.bench_function("crm_sla_overview_sqlite", |b| {
        b.iter(|| black_box(crm.service().sla_overview(&admin, &open, at).unwrap().len()))
    });
    g.bench_function("store_sla_clocks_sqlite", |b| b.iter(|| black_box(crm.store().sla_clocks(&open).unwrap().len())));
    g.bench_function("evaluate_in_memory", |b| {
        b.iter(|| {
            let eval = SlaEvaluator::new(&clock, at, 20);
            black_box(clocks.iter().filter_map(|c| eval.evaluate(c).unwrap()).filter(|s| s.breached()).count())
        })
    });
    g.bench_function("baseline_raw_rusqlite_read", |b| b.iter(|| black_box(raw_read(&conn))));
    g.finish();

    let qs = queries();
    latencies(&crm, &admin, &qs, 20);
    let hits: usize = qs.iter().map(|(_, q)| crm.kb().search(&admin, q).unwrap().len()).sum();
    eprintln!("{} queries, {hits} hits in all", qs.len());

    let mut g = c.benchmark_group("kb_search_50k");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    let mut i = 0;
    g.bench_function("crm_search_articles_fts5", |b| {
        b.iter(|| {
            i += 1;
            black_box(crm.kb().search(&admin, &qs[i % qs.len()].1).unwrap().len())
        })
    });
    let mut like = conn.prepare("SELECT id FROM articles WHERE doc LIKE ?1 LIMIT 10").unwrap();
    let mut j = 0;
    g.bench_function("baseline_like_scan", |b| {
        b.iter(|| {
            j += 1;
            let w = qs[j % qs.len()].1.text.split_whitespace().next().unwrap_or("").to_owned();
            black_box(like.query_map([format!("%{w}%")], |r| r.get::<_, String>(0)).unwrap().count())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
