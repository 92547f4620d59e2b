//! Sales report benchmark: funnel + win rate + forecast (the whole `Crm::sales_report`) over
//! 1,000,000 opportunities and ~4,000,000 stage-history rows in a SQLite file, beside
//! hand-written SQL `GROUP BY` queries computing the same figures in the same run.
//!
//! The data is built once per run with the deterministic generator of the conformance suite
//! (`guanxi_core::testing::sales_data`), written through the store in batches.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use guanxi::sales::SalesQuery;
use guanxi::{Actor, Crm, FixedClock, SqliteStore};
use rusqlite::Connection;

const N: u64 = 1_000_000;

/// Builds the data set in a temporary file, or reuses the file `GUANXI_SALES_BENCH_DB` names
/// (building it there the first time) so repeated runs skip the minute of writing.
fn build() -> (tempfile::TempDir, std::path::PathBuf, Crm) {
    let dir = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("GUANXI_SALES_BENCH_DB").map(std::path::PathBuf::from);
    let path = kept.clone().unwrap_or_else(|| dir.path().join("sales.db"));
    let reuse = kept.is_some() && path.exists();
    let store = SqliteStore::open(&path).unwrap();
    let clock = Arc::new(FixedClock::at("2025-06-01T00:00:00Z".parse().unwrap()));
    if reuse {
        eprintln!("reusing {}", path.display());
        return (dir, path, Crm::builder().store(Arc::new(store)).clock(clock).build());
    }
    let history_rows = guanxi_benches::write_opportunities(&store, N, |_, _, _| {});
    eprintln!("built {N} opportunities, {history_rows} stage-history rows");
    let crm = Crm::builder().store(Arc::new(store)).clock(clock).build();
    (dir, path, crm)
}

/// The same figures by hand: per (stage, furthest stage) counts and sums; completed stays and
/// losses by stage; closed deals by outcome and whole days; won by owner and product; open
/// deals by expected-close month and probability. Returns a checksum so nothing is skipped.
fn hand_written(conn: &Connection) -> i64 {
    let queries = [
        "SELECT stage, furthest_stage, count(*), sum(amount_e4) FROM opportunities \
         WHERE pipeline = 'standard' AND currency = 'CNY' GROUP BY 1, 2",
        "SELECT h.from_stage, h.to_stage = 'lost', coalesce(h.lost_reason, ''), count(*), sum(h.stay_s) \
         FROM opportunities o JOIN stage_history h ON h.opp = o.n \
         WHERE o.pipeline = 'standard' AND o.currency = 'CNY' AND h.stay_s IS NOT NULL GROUP BY 1, 2, 3",
        "SELECT won, (closed_s - opened_s) / 86400, count(*), sum(amount_e4) FROM opportunities \
         WHERE pipeline = 'standard' AND currency = 'CNY' AND closed_ns IS NOT NULL GROUP BY 1, 2",
        "SELECT owner, count(*), sum(amount_e4) FROM opportunities \
         WHERE pipeline = 'standard' AND currency = 'CNY' AND won = 1 GROUP BY 1",
        "SELECT l.product, count(*), sum(l.total_e4) FROM opportunities o JOIN opportunity_lines l ON l.opp = o.n \
         WHERE o.pipeline = 'standard' AND o.currency = 'CNY' AND o.won = 1 GROUP BY 1",
        "SELECT substr(expected_close, 1, 7), probability, count(*), sum(amount_e4) FROM opportunities \
         WHERE pipeline = 'standard' AND currency = 'CNY' AND closed_ns IS NULL GROUP BY 1, 2",
    ];
    let mut sum = 0i64;
    for sql in queries {
        let mut stmt = conn.prepare_cached(sql).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            sum = sum.wrapping_add(r.get::<_, Option<i64>>(n - 1).unwrap().unwrap_or(0));
        }
    }
    sum
}

fn sales_report(c: &mut Criterion) {
    let (_dir, path, crm) = build();
    let analyst = Actor::user("analyst").unwrap();
    let q = SalesQuery::new("standard").currency("CNY");
    let r = crm.sales().report(&analyst, &q).unwrap();
    eprintln!(
        "report: {} won, {} lost, win rate {:?}, {} open, weighted {}",
        r.won.count, r.lost.count, r.win_rate, r.open_count, r.weighted_pipeline
    );
    let conn = Connection::open(&path).unwrap();
    let mut g = c.benchmark_group("sales_report_1m");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("crm_sales_report", |b| b.iter(|| black_box(crm.sales().report(&analyst, &q).unwrap())));
    g.bench_function("hand_written_sql", |b| b.iter(|| black_box(hand_written(&conn))));
    g.finish();
}

criterion_group!(benches, sales_report);
criterion_main!(benches);
