//! Imports the customer support tickets data set and prints the service report: volume by
//! status, CSAT by ticket type, response and resolution times, SLA compliance.
//!
//! ```text
//! cargo run --example tickets                       # the 1,000-row copy in tests/data
//! cargo run --example tickets -- ../shared/data/tickets/customer_support_tickets.csv
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use guanxi::service::ServiceQuery;
use guanxi::{Actor, Crm, FixedClock, SqliteStore};

fn hours(secs: Option<i64>) -> String {
    secs.map_or("-".into(), |s| format!("{:.1} h", s as f64 / 3600.0))
}

fn main() -> Result<(), guanxi::Error> {
    let path = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tickets_first_1000.csv"));
    let rows = guanxi_examples::tickets::read(&path)?;
    let as_of = guanxi_examples::tickets::latest_instant(&rows).unwrap_or_else(guanxi::chrono::Utc::now);
    let crm =
        Crm::builder().store(Arc::new(SqliteStore::open_in_memory()?)).clock(Arc::new(FixedClock::at(as_of))).build();
    let analyst = Actor::user("analyst")?;
    let imported = guanxi_examples::tickets::import(&crm, &analyst, &rows)?;
    println!("imported {} tickets as of {as_of}, {} rows rejected", imported.tickets, imported.rejected.len());
    for (line, why) in &imported.rejected {
        println!("  line {line}: {why}");
    }
    let r = crm.service().report(&analyst, &ServiceQuery::default().at(as_of))?;
    println!("\nstatus              tickets");
    for (status, n) in &r.by_status {
        println!("{:<18} {n:>8}", status.as_str());
    }
    println!("\nticket type           ratings  mean  satisfied (4–5)");
    for k in &r.csat_by_category {
        let pct = k
            .csat
            .satisfied_rate
            .map_or("-".into(), |d| format!("{:.1}%", d * guanxi::rust_decimal::Decimal::ONE_HUNDRED));
        println!(
            "{:<20} {:>8}  {:>4}  {pct}",
            k.key,
            k.csat.responses,
            k.csat.mean.map_or("-".into(), |m| m.round_dp(2).to_string())
        );
    }
    println!("\n                 count     mean   median      p90");
    for (name, s) in [("first response", r.first_response), ("resolution", r.resolution)] {
        println!(
            "{name:<15} {:>6} {:>8} {:>8} {:>8}",
            s.count,
            hours(s.mean_secs),
            hours(s.median_secs),
            hours(s.p90_secs)
        );
    }
    let rate = |c: guanxi::service::Compliance| {
        c.rate.map_or("-".into(), |d| format!("{:.1}%", d * guanxi::rust_decimal::Decimal::ONE_HUNDRED))
    };
    println!(
        "\nSLA met: first response {} ({} met, {} breached), resolution {}",
        rate(r.first_response_sla),
        r.first_response_sla.met,
        r.first_response_sla.breached,
        rate(r.resolution_sla)
    );
    println!("flagged by risk keywords: {} of {}", r.flagged, r.tickets);
    Ok(())
}
