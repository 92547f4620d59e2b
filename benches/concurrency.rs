//! Reads while a write batch is open (issue 16, item 5): get-by-id and list-by-tag latency on
//! a SQLite file, idle and while another thread imports a 100,000-row file, which holds the
//! write lock for the whole import (one transaction). The baseline is the same read on the
//! idle store, in the same run. The goal: p99 during the import within 2× of idle. Reads run
//! on the store's read connections under WAL, so they should never wait for the writer.
//!
//! Besides criterion's figures, each read's own latency is recorded and p50/p99 printed.
//! `GUANXI_IMPORT_ROWS` sets the import's size (default 100,000) for quicker runs.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stderr)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use guanxi::*;

fn rows() -> u64 {
    std::env::var("GUANXI_IMPORT_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

/// A CSV file of `rows` new customers, distinct per `round` (so no import is a re-run).
fn import_file(round: u64, rows: u64) -> Vec<u8> {
    let mut text = String::from("客户名称,联系人,手机,标签\n");
    for i in 0..rows {
        text.push_str(&format!("第{round}批{i}号贸易公司,联系人{i},13{:09},导入\n", round * 10_000_000 + i));
    }
    text.into_bytes()
}

/// Per-read latencies, for percentiles.
#[derive(Default)]
struct Latencies(Mutex<Vec<Duration>>);

impl Latencies {
    /// Times `iters` calls of `read` one by one, keeping each.
    fn time(&self, iters: u64, mut read: impl FnMut()) -> Duration {
        let mut each = Vec::with_capacity(iters as usize);
        for _ in 0..iters {
            let t = Instant::now();
            read();
            each.push(t.elapsed());
        }
        let total = each.iter().sum();
        self.0.lock().unwrap().extend(each);
        total
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut all = self.0.lock().unwrap().clone();
        all.sort_unstable();
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default()
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let crm = Crm::open(dir.path().join("crm.db")).unwrap();
    let actor = Actor::user("reader").unwrap();
    let seeded = crm
        .customers()
        .create_many(&actor, (0..10_000).map(|i| NewCustomer::new(format!("常客{i}号公司")).tag("VIP")).collect())
        .unwrap();
    let id = seeded[5_000].id;
    let vip = CustomerFilter::default().tag("VIP");
    let page = PageRequest::first(50);
    let get = || {
        std::hint::black_box(crm.customers().get(&actor, id).unwrap());
    };
    let list = || {
        std::hint::black_box(crm.customers().list(&actor, &vip, page).unwrap());
    };
    let reads: [(&str, &dyn Fn()); 2] = [("get_by_id", &get), ("list_by_tag", &list)];
    let latencies: Vec<[Latencies; 2]> = (0..2).map(|_| Default::default()).collect();

    let mut group = c.benchmark_group("read_during_write");
    group.measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    for (i, (name, read)) in reads.iter().enumerate() {
        group.bench_function(format!("{name}/idle"), |b| b.iter_custom(|n| latencies[i][0].time(n, read)));
    }
    // The writer: one import after another until the reads are measured.
    let (stop, importing, imported) = (AtomicBool::new(false), AtomicBool::new(false), AtomicU64::new(0));
    std::thread::scope(|s| {
        s.spawn(|| {
            let importer = Actor::user("importer").unwrap();
            let options = ImportOptions::default().on_duplicate(DuplicatePolicy::Create);
            for round in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let file = import_file(round, rows());
                importing.store(true, Ordering::Relaxed);
                let r = crm.files().import(&importer, &file, &options, |_| {}).unwrap();
                imported.fetch_add(r.created.len() as u64, Ordering::Relaxed);
            }
        });
        while !importing.load(Ordering::Relaxed) {
            std::thread::yield_now();
        }
        // Let the first import reach its writing (the store's write lock is held from its start).
        std::thread::sleep(Duration::from_millis(200));
        for (i, (name, read)) in reads.iter().enumerate() {
            group.bench_function(format!("{name}/during_import"), |b| b.iter_custom(|n| latencies[i][1].time(n, read)));
        }
        stop.store(true, Ordering::Relaxed);
    });
    group.finish();
    for (i, (name, _)) in reads.iter().enumerate() {
        let [idle, busy] = &latencies[i];
        eprintln!(
            "{name}: idle p50 {:?} p99 {:?}; during import p50 {:?} p99 {:?} (p99 ratio {:.2})",
            idle.percentile(0.5),
            idle.percentile(0.99),
            busy.percentile(0.5),
            busy.percentile(0.99),
            busy.percentile(0.99).as_secs_f64() / idle.percentile(0.99).as_secs_f64().max(1e-9)
        );
    }
    eprintln!("customers imported meanwhile: {}", imported.load(Ordering::Relaxed));
}

criterion_group!(benches, bench);
criterion_main!(benches);
