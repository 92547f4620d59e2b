//! BG/NBD and Gamma-Gamma against the Python `lifetimes` package (0.11.3) on the same data:
//! 2,000 histories drawn from known parameters by `clv_data::histories` (checked in as
//! `tests/data/clv/histories.csv`, compared with a fresh draw here), fitted by
//! `tests/data/clv/lifetimes_expected.py`, whose output is `expected.json`.
//!
//! Set `GUANXI_WRITE_CLV_DATA=1` to rewrite the CSV (then re-run the script).

#![allow(clippy::print_stderr)] // the differences to lifetimes are printed for the record

use guanxi_core::analytics::{BgNbd, GammaGamma, PurchaseHistory, customer_lifetime_value};
use guanxi_core::testing::clv_data;
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/clv");

fn data() -> Vec<PurchaseHistory> {
    let drawn = clv_data::histories(2_000, 21);
    let path = format!("{DIR}/histories.csv");
    let csv = clv_data::to_csv(&drawn);
    if std::env::var("GUANXI_WRITE_CLV_DATA").is_ok() {
        std::fs::write(&path, &csv).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), csv, "the checked-in histories are the generator's");
    drawn
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/expected.json")).unwrap()).unwrap()
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"))
}

fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol, "{what}: {got} vs lifetimes {want} (|Δ| {} > {tol})", (got - want).abs());
}

#[test]
fn the_fitted_parameters_match_lifetimes_within_1e_3() {
    let data = data();
    let want = expected();
    let bg = BgNbd::fit(&data).unwrap();
    for (name, got) in [("r", bg.model.r), ("alpha", bg.model.alpha), ("a", bg.model.a), ("b", bg.model.b)] {
        close(&format!("BG/NBD {name}"), got, num(&want["bgnbd"], name), 1e-3);
        eprintln!(
            "BG/NBD {name}: {got} (lifetimes {}, |Δ| {:.1e})",
            num(&want["bgnbd"], name),
            (got - num(&want["bgnbd"], name)).abs()
        );
    }
    close("BG/NBD mean log-likelihood", bg.log_likelihood, -num(&want["bgnbd"], "neg_log_likelihood"), 1e-6);
    let gg = GammaGamma::fit(&data).unwrap();
    for (name, got) in [("p", gg.model.p), ("q", gg.model.q), ("v", gg.model.v)] {
        close(&format!("Gamma-Gamma {name}"), got, num(&want["gamma_gamma"], name), 1e-3);
        let w = num(&want["gamma_gamma"], name);
        eprintln!("Gamma-Gamma {name}: {got} (lifetimes {w}, |Δ| {:.1e})", (got - w).abs());
    }
    // The parameters the data was drawn from are recovered roughly (2,000 customers).
    let truth = clv_data::TRUE_PURCHASES;
    assert!((bg.model.r - truth.r).abs() < 0.1 && (bg.model.b - truth.b).abs() < 1.5, "{:?}", bg.model);
}

#[test]
fn the_predictions_match_lifetimes_within_1e_5() {
    let data = data();
    let want = expected();
    let rows = want["predictions"].as_array().unwrap();
    // With lifetimes' own parameters, the formulas agree to rounding; with ours, within 1e-5.
    let theirs = |m: &Value| BgNbd { r: num(m, "r"), alpha: num(m, "alpha"), a: num(m, "a"), b: num(m, "b") };
    let theirs_gg = |m: &Value| GammaGamma { p: num(m, "p"), q: num(m, "q"), v: num(m, "v") };
    let ours = BgNbd::fit(&data).unwrap().model;
    let ours_gg = GammaGamma::fit(&data).unwrap().model;
    for (bg, gg, tol) in [(theirs(&want["bgnbd"]), theirs_gg(&want["gamma_gamma"]), 1e-9), (ours, ours_gg, 1e-5)] {
        for row in rows {
            let i = row["index"].as_u64().unwrap() as usize;
            let h = &data[i];
            close(&format!("P(alive) of {i}"), bg.probability_alive(h), num(row, "p_alive"), tol);
            close(
                &format!("purchases in 10 weeks of {i}"),
                bg.expected_purchases(10.0, h),
                num(row, "expected_10"),
                tol,
            );
            close(
                &format!("purchases in 52 weeks of {i}"),
                bg.expected_purchases(52.0, h),
                num(row, "expected_52"),
                tol,
            );
            if h.frequency > 0 {
                let value = gg.expected_average_value(h.frequency, h.monetary);
                close(
                    &format!("average value of {i}"),
                    value,
                    num(row, "expected_value"),
                    tol * num(row, "expected_value").max(1.0),
                );
                let clv = customer_lifetime_value(&bg, &gg, h, 12, 0.01, 4.345);
                close(&format!("CLV of {i}"), clv, num(row, "clv_12m"), tol * num(row, "clv_12m").abs().max(1.0));
            }
        }
    }
}

#[test]
fn bad_histories_are_named_together() {
    let bad = [
        PurchaseHistory::new(0, 3.0, 10.0),
        PurchaseHistory::new(2, 12.0, 10.0),
        PurchaseHistory::new(1, 1.0, f64::NAN),
    ];
    let err = BgNbd::fit(&bad).unwrap_err();
    let guanxi_core::Error::Validation(v) = err else { panic!("{err:?}") };
    let fields: Vec<&str> = v.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["histories[0].recency", "histories[1].recency", "histories[2].age"]);
    assert!(BgNbd::fit(&[]).is_err());
    let no_value = [PurchaseHistory::new(2, 5.0, 10.0)];
    assert!(GammaGamma::fit(&no_value).is_err());
}
