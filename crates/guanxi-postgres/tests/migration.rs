//! Opening a store whose opportunity rows predate the report columns (schema 3) fills them in
//! from the records: the report is the same as before.

mod common;

use guanxi_core::prelude::*;
use guanxi_core::sales::{Pipeline, SalesQuery};
use guanxi_core::testing::sales_data;
use guanxi_core::{Changes, Write};
use guanxi_postgres::{PgOptions, PgStore};

#[test]
fn report_columns_are_filled_in_for_older_rows() {
    let Some(store) = common::named("backfill") else { return };
    let mut rng = sales_data::Rng::new(11);
    let (opps, history): (Vec<_>, Vec<_>) = (0..60).map(|n| sales_data::opportunity(n, &mut rng)).unzip();
    store
        .apply(&Changes {
            opportunities: opps.into_iter().map(Write::Insert).collect(),
            stage_history: history.into_iter().flatten().collect(),
            ..Default::default()
        })
        .unwrap();
    let p = Pipeline::standard();
    let q = SalesQuery::new("standard");
    let before = store.sales_facts(&p, &q, "CNY").unwrap();
    assert!(!before.stays.is_empty() && !before.won_by_product.is_empty(), "the sample exercises every group");

    // What a schema-2 row looks like: none of the report columns.
    let schema = format!("backfill_{}", std::process::id());
    let params = common::server().unwrap();
    let mut raw = postgres::Client::connect(&params, postgres::NoTls).unwrap();
    raw.batch_execute(&format!(
        "UPDATE {schema}.opportunities SET furthest_stage = NULL, opened_ns = NULL, opened_s = NULL, closed_s = NULL, \
         won = NULL, amount_e4 = NULL, probability = NULL, expected_close = NULL, line_totals = NULL, stays = ''"
    ))
    .unwrap();
    drop(store);

    let reopened = PgStore::connect_with(&params, PgOptions { schema, ..PgOptions::default() }).unwrap();
    assert_eq!(reopened.sales_facts(&p, &q, "CNY").unwrap(), before);
    reopened.drop_schema().unwrap();
}
