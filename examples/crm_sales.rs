//! Imports the CRM Sales Opportunities data set and prints its sales report: counts per
//! stage, win rate, won value per product and per agent, cycle days, and the funnel.
//!
//! Run it with `cargo run --release --example crm_sales`.

use std::path::Path;
use std::sync::Arc;

use guanxi::sales::SalesQuery;
use guanxi::{Actor, Crm, FixedClock, SqliteStore};

fn main() -> Result<(), guanxi::Error> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    // The data set ends in 2017: import "at" the start of 2018.
    let clock = Arc::new(FixedClock::at(
        "2018-01-01T00:00:00Z".parse().map_err(|_| guanxi::Error::InvalidState("clock".into()))?,
    ));
    let crm = Crm::builder().store(Arc::new(SqliteStore::open_in_memory()?)).clock(clock).build();
    let analyst = Actor::user("analyst")?;
    let imported = guanxi_examples::crm_sales::import(&crm, &analyst, &data)?;
    println!(
        "imported {} customers, {} opportunities ({} without an account), {} rows rejected",
        imported.customers,
        imported.opportunities,
        imported.without_account,
        imported.rejected.len()
    );
    for (row, why) in &imported.rejected {
        println!("  row {row}: {why}");
    }
    let r = crm.sales().report(&analyst, &SalesQuery::new("crm_sales"))?;
    println!("\nstage         count   reached  step    from top  avg days");
    for s in &r.funnel {
        let pct = |d: Option<guanxi::rust_decimal::Decimal>| {
            d.map_or("-".to_owned(), |d| format!("{:.1}%", d * guanxi::rust_decimal::Decimal::ONE_HUNDRED))
        };
        println!(
            "{:<12} {:>6} {:>9}  {:<7} {:<9} {}{}",
            s.name,
            s.count,
            s.reached,
            pct(s.step_conversion),
            pct(s.top_conversion),
            s.avg_days_in_stage.map_or("-".to_owned(), |d| d.round_dp(1).to_string()),
            if s.below_average { "  (below average)" } else { "" }
        );
    }
    println!(
        "\nwin rate: {}",
        r.win_rate.map_or("-".to_owned(), |w| format!("{:.2}%", w * guanxi::rust_decimal::Decimal::ONE_HUNDRED))
    );
    println!(
        "cycle days: won mean {} median {}; lost mean {} median {}",
        r.won.average_days.unwrap_or_default().round_dp(1),
        r.won.median_days.unwrap_or_default(),
        r.lost.average_days.unwrap_or_default().round_dp(1),
        r.lost.median_days.unwrap_or_default()
    );
    println!("\nwon value per product ({}):", r.currency);
    for k in &r.won_by_product {
        println!("  {:<16} {:>5} deals {:>12}", k.key, k.count, k.amount);
    }
    println!("\nwon value per agent (top 10 of {}):", r.won_by_owner.len());
    for k in r.won_by_owner.iter().take(10) {
        println!("  {:<20} {:>5} deals {:>12}", k.key, k.count, k.amount);
    }
    println!("\nopen pipeline: {} deals, {} weighted {}", r.open_count, r.open_amount, r.weighted_pipeline);
    Ok(())
}
