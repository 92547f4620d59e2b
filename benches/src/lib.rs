//! Benchmarks of guanxi live in this package's `[[bench]]` targets: `cargo bench -p guanxi-benches`.
//! This library holds what several of them build.

use guanxi::sales::{Opportunity, StageHistoryEntry};
use guanxi::testing::sales_data;
use guanxi::{Changes, StoreWrite, Write};

/// Writes `n` generated opportunities with their stage history (the conformance suite's
/// deterministic generator, seed 11) through `store`, 20,000 a batch, handing each batch to
/// `also` first (a baseline's own copy); returns how many history rows there were.
///
/// ```
/// let store = guanxi::MemoryStore::new();
/// let history = guanxi_benches::write_opportunities(&store, 10, |_, _, _| {});
/// assert!(history >= 10);
/// ```
pub fn write_opportunities(
    store: &dyn StoreWrite,
    n: u64,
    mut also: impl FnMut(u64, &[Opportunity], &[StageHistoryEntry]),
) -> usize {
    let mut rng = sales_data::Rng::new(11);
    let mut history_rows = 0;
    for start in (0..n).step_by(20_000) {
        let (opps, history): (Vec<_>, Vec<_>) =
            (start..(start + 20_000).min(n)).map(|i| sales_data::opportunity(i, &mut rng)).unzip();
        let history: Vec<_> = history.into_iter().flatten().collect();
        history_rows += history.len();
        also(start, &opps, &history);
        store
            .apply(&Changes {
                opportunities: opps.into_iter().map(Write::Insert).collect(),
                stage_history: history,
                ..Default::default()
            })
            .expect("generated opportunities are valid");
    }
    history_rows
}
