//! The CRM Sales Opportunities import (the `crm_sales` example) against an independent
//! calculation over the CSV written here: counts per stage, win rate, won value per product and
//! per agent, average cycle days for won and lost, and the funnel.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use guanxi::chrono::NaiveDate;
use guanxi::rust_decimal::Decimal;
use guanxi::sales::SalesQuery;
use guanxi::{Actor, Crm, FixedClock, SqliteStore};

struct Deal {
    agent: String,
    product: String,
    stage: String,
    engage: Option<NaiveDate>,
    close: Option<NaiveDate>,
    value: i64,
}

fn deals(dir: &Path) -> Vec<Deal> {
    let mut r = csv::Reader::from_path(dir.join("crm_sales_pipeline.csv")).unwrap();
    let date = |s: &str| (!s.is_empty()).then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            Deal {
                agent: rec[1].to_owned(),
                product: rec[2].to_owned(),
                stage: rec[4].to_owned(),
                engage: date(&rec[5]),
                close: date(&rec[6]),
                value: rec[7].parse().unwrap_or(0),
            }
        })
        .collect()
}

fn mean(v: &[i64]) -> Decimal {
    (Decimal::from(v.iter().sum::<i64>()) / Decimal::from(v.len())).round_dp(4)
}

#[test]
fn report_matches_an_independent_calculation_over_the_csv() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let clock = Arc::new(FixedClock::at("2018-01-01T00:00:00Z".parse().unwrap()));
    let pg = guanxi_tests::postgres("crm_sales");
    let mut stores: Vec<(&str, guanxi::DynStore)> = vec![("sqlite", Arc::new(SqliteStore::open_in_memory().unwrap()))];
    stores.extend(pg.as_ref().map(|pg| ("postgres", pg.store.clone() as guanxi::DynStore)));
    for (backend, store) in stores {
        report_matches_on(backend, Crm::builder().store(store).clock(clock.clone()).build(), &dir);
    }
}

fn report_matches_on(backend: &str, crm: Crm, dir: &Path) {
    let dir = dir.to_path_buf();
    let analyst = Actor::user("analyst").unwrap();
    let imported = guanxi_examples::crm_sales::import(&crm, &analyst, &dir).unwrap();
    let deals = deals(&dir);
    assert!(imported.rejected.is_empty(), "{backend}: {:?}", imported.rejected);
    assert_eq!(imported.opportunities, deals.len(), "{backend}");
    assert_eq!(imported.without_account, 1425); // early deals with no account, kept as they are

    let r = crm.sales().report(&analyst, &SalesQuery::new("crm_sales")).unwrap();
    assert_eq!(r.currency, "USD");
    let mut per_stage: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &deals {
        *per_stage.entry(d.stage.as_str()).or_default() += 1;
    }
    for s in &r.funnel {
        assert_eq!(s.count, per_stage[s.stage.as_str()], "stage {}", s.stage);
    }
    let (won, lost) = (per_stage["Won"], per_stage["Lost"]);
    assert_eq!(r.win_rate, Some((Decimal::from(won) / Decimal::from(won + lost)).round_dp(4)));
    // Funnel: everyone was prospected; everyone with an engage date got to Engaging.
    let engaged = deals.iter().filter(|d| d.engage.is_some()).count() as u64;
    assert_eq!((r.funnel[0].reached, r.funnel[1].reached), (deals.len() as u64, engaged));
    assert_eq!(r.funnel[0].step_conversion, Some((Decimal::from(engaged) / Decimal::from(deals.len())).round_dp(4)));
    assert_eq!(r.funnel[1].step_conversion, Some((Decimal::from(won) / Decimal::from(engaged)).round_dp(4)));

    let mut by_product: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_agent: BTreeMap<String, i64> = BTreeMap::new();
    let (mut won_days, mut lost_days) = (Vec::new(), Vec::new());
    for d in &deals {
        let days = d.close.zip(d.engage).map(|(c, e)| (c - e).num_days());
        match d.stage.as_str() {
            "Won" => {
                *by_product.entry(d.product.clone()).or_default() += d.value;
                *by_agent.entry(d.agent.clone()).or_default() += d.value;
                won_days.push(days.unwrap());
            }
            "Lost" => lost_days.push(days.unwrap()),
            _ => {}
        }
    }
    let got: BTreeMap<String, Decimal> = r.won_by_product.iter().map(|k| (k.key.clone(), k.amount)).collect();
    assert_eq!(got, by_product.into_iter().map(|(k, v)| (k, Decimal::from(v))).collect());
    assert!(got.contains_key("GTXPro"), "the product is kept as the data writes it");
    let got: BTreeMap<String, Decimal> = r.won_by_owner.iter().map(|k| (k.key.clone(), k.amount)).collect();
    assert_eq!(got, by_agent.into_iter().map(|(k, v)| (k, Decimal::from(v))).collect());
    assert_eq!(r.won.average_days, Some(mean(&won_days)));
    assert_eq!(r.lost.average_days, Some(mean(&lost_days)));
    // Engaging stays that ended: every won and lost deal's time from engage to close.
    let stays: Vec<i64> = won_days.iter().chain(&lost_days).copied().collect();
    assert_eq!(r.funnel[1].avg_days_in_stage, Some(mean(&stays)));
}
