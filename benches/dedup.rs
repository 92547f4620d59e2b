//! Duplicate scan of 1,000,000 customers (labelled generator, about a third entered again with
//! typos, other legal forms and phone formats; `GUANXI_DEDUP_ENTITIES` sets fewer), with the
//! default rules weighted and scored by Fellegi–Sunter (m and u estimated by EM in the scan),
//! beside the baseline one writes by hand: group by exact normalized phone and exact name key
//! in a hash map (finds only exact repeats). Precision, recall and F1 of both scorings are
//! printed to stderr.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stderr)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use guanxi::dedup::{MatchProfile, MatchRules, NotDuplicates, Pairs, Scoring, scan};
use guanxi::testing::dedup_data::{labelled, quality};

/// Groups by exact phone key and by exact name key; returns the number of groups of two or more.
fn exact_groups(profiles: &[MatchProfile]) -> usize {
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in profiles.iter().enumerate() {
        for ph in &p.phones {
            groups.entry(ph.as_str()).or_default().push(i);
        }
        groups.entry(p.name_key.as_str()).or_default().push(i);
    }
    groups.values().filter(|g| g.len() > 1).count()
}

fn bench(c: &mut Criterion) {
    let t = Instant::now();
    // 715,000 entities make about 1,000,000 profiles; GUANXI_DEDUP_ENTITIES sets fewer.
    let entities = std::env::var("GUANXI_DEDUP_ENTITIES").ok().and_then(|v| v.parse().ok()).unwrap_or(715_000);
    let (profiles, labels) = labelled(entities, 11);
    eprintln!("{} profiles generated in {:?}", profiles.len(), t.elapsed());
    let rules = MatchRules::default();
    let mut probabilistic = rules.clone();
    probabilistic.scoring = Scoring::Probabilistic { model: None };
    probabilistic.threshold = 0.5;
    for (name, rules) in [("weighted", &rules), ("probabilistic", &probabilistic)] {
        let t = Instant::now();
        let q = quality(&profiles, &labels, rules);
        eprintln!(
            "scan quality ({name}): precision {:.4}, recall {:.4}, F1 {:.4} ({} true pairs, {} found) in {:?}",
            q.precision,
            q.recall,
            q.f1,
            q.true_pairs,
            q.found_pairs,
            t.elapsed()
        );
    }
    let mut g = c.benchmark_group("dedup_scan_1m");
    g.sample_size(10).measurement_time(Duration::from_secs(60));
    g.bench_function("scan_blocking_keys", |b| {
        b.iter(|| {
            let mut n = 0;
            let stats = scan(&profiles, &rules, &NotDuplicates::new(), Pairs::Within, |_| n += 1);
            black_box((n, stats.compared_pairs))
        })
    });
    g.bench_function("scan_probabilistic_em", |b| {
        b.iter(|| {
            let stats = scan(&profiles, &probabilistic, &NotDuplicates::new(), Pairs::Within, |_| {});
            black_box((stats.clusters, stats.compared_pairs))
        })
    });
    g.bench_function("baseline_exact_key_hash_groups", |b| b.iter(|| black_box(exact_groups(&profiles))));
    g.finish();
    let stats = scan(&profiles, &rules, &NotDuplicates::new(), Pairs::Within, |_| {});
    eprintln!("{stats:?}");
}

criterion_group!(benches, bench);
criterion_main!(benches);
