//! Fitting the lifetime-value models (issue 21, item 4; goal: 100,000 customers in < 1 s):
//! BG/NBD and Gamma-Gamma by L-BFGS over 100,000 histories drawn from known parameters
//! (`clv_data::histories`), and the per-customer predictions over all of them. The reference
//! is the Python `lifetimes` package on the same kind of data, timed by
//! `tests/data/clv/lifetimes_expected.py` (it cannot run inside criterion): 1.07 s for both
//! fits of 100,000 customers on this machine.
//!
//! `GUANXI_CLV_CUSTOMERS` sets the number of customers (default 100,000).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use guanxi::analytics::{BgNbd, GammaGamma, customer_lifetime_value};
use guanxi::testing::clv_data;

fn customers() -> usize {
    std::env::var("GUANXI_CLV_CUSTOMERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

fn bench(c: &mut Criterion) {
    let n = customers();
    let data = clv_data::histories(n, 7);
    let mut g = c.benchmark_group(format!("clv_{n}"));
    g.sample_size(10).measurement_time(Duration::from_secs(10)).warm_up_time(Duration::from_secs(1));
    g.bench_function("fit_bgnbd_and_gamma_gamma", |b| {
        b.iter(|| black_box((BgNbd::fit(&data).unwrap(), GammaGamma::fit(&data).unwrap())))
    });
    let (bg, gg) = (BgNbd::fit(&data).unwrap().model, GammaGamma::fit(&data).unwrap().model);
    g.bench_function("predict_alive_and_clv_12m", |b| {
        b.iter(|| {
            let total: f64 = data
                .iter()
                .map(|h| bg.probability_alive(h) + customer_lifetime_value(&bg, &gg, h, 12, 0.01, 4.345))
                .sum();
            black_box(total)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
