//! Imports the Maven Analytics "CRM Sales Opportunities" data set (`tests/data/crm_sales_*`)
//! into a CRM: accounts become customers, `sales_pipeline.csv` rows become opportunities in a
//! pipeline of its own stages (Prospecting → Engaging → Won / Lost).
//!
//! Row mapping, quirks kept: `engage_date` is the move out of Prospecting, `close_date` the
//! close, `close_value` the won amount (other deals carry the product's list price); deals
//! without an account have no customer; the product is kept as written (`GTXPro`, while the
//! price list says `GTX Pro`: the price is found with spaces ignored). Deals still in
//! Prospecting have no dates: they are opened at the import instant.

use std::collections::HashMap;
use std::path::Path;

use guanxi::chrono::{DateTime, NaiveDate, Utc};
use guanxi::rust_decimal::Decimal;
use guanxi::sales::{NewOpportunity, PastMove, Pipeline, ProductLine, Stage, StageKind};
use guanxi::{Actor, Crm, CustomerId, Error, NewCustomer, Result, UserId, ValidationReason};

/// The pipeline of the data set.
pub fn pipeline() -> Pipeline {
    Pipeline {
        key: "crm_sales".into(),
        name: "CRM Sales Opportunities".into(),
        stages: vec![
            Stage::new("Prospecting", "Prospecting", StageKind::Open, 10),
            Stage::new("Engaging", "Engaging", StageKind::Open, 50),
            Stage::new("Won", "Won", StageKind::Won, 100),
            Stage::new("Lost", "Lost", StageKind::Lost, 0),
        ],
        transitions: Default::default(),
        // The data set records no reasons.
        lost_reasons: vec!["未记录".into()],
    }
}

/// What the import did.
#[derive(Debug, Default)]
pub struct Imported {
    /// Customers created from accounts.
    pub customers: usize,
    /// Opportunities created.
    pub opportunities: usize,
    /// Of which without an account.
    pub without_account: usize,
    /// Rows refused, with the reason (none expected; reported, never dropped).
    pub rejected: Vec<(usize, String)>,
}

fn rows(path: &Path) -> Result<Vec<HashMap<String, String>>> {
    let bad =
        |e: csv::Error| Error::invalid(path.display().to_string(), ValidationReason::Invalid { detail: e.to_string() });
    let mut r = csv::Reader::from_path(path).map_err(bad)?;
    let headers = r.headers().map_err(bad)?.clone();
    r.records()
        .map(|rec| rec.map(|rec| headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect()))
        .collect::<std::result::Result<_, _>>()
        .map_err(bad)
}

fn day_start(s: &str) -> Result<DateTime<Utc>> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .map_err(|e| Error::invalid("date", ValidationReason::Invalid { detail: format!("{s}: {e}") }))
}

/// Imports the data set from `dir` (holding `crm_sales_accounts.csv`, `crm_sales_products.csv`
/// and `crm_sales_pipeline.csv`) as `actor`.
pub fn import(crm: &Crm, actor: &Actor, dir: &Path) -> Result<Imported> {
    let mut out = Imported::default();
    crm.sales().set_pipeline(actor, pipeline())?;
    let prices: HashMap<String, Decimal> = rows(&dir.join("crm_sales_products.csv"))?
        .into_iter()
        .filter_map(|r| Some((r["product"].replace(' ', ""), r["sales_price"].parse().ok()?)))
        .collect();
    let accounts = rows(&dir.join("crm_sales_accounts.csv"))?;
    let created = crm
        .customers()
        .create_many(actor, accounts.iter().map(|a| NewCustomer::new(a["account"].as_str())).collect())?;
    out.customers = created.len();
    let by_name: HashMap<String, CustomerId> = created.into_iter().map(|c| (c.name, c.id)).collect();
    // Every deal with its history (opened, engaged, won or lost) in one call and one
    // transaction; a row that cannot be read is set aside with its line number.
    let mut inputs = Vec::new();
    for (i, r) in rows(&dir.join("crm_sales_pipeline.csv"))?.into_iter().enumerate() {
        match deal_input(&r, &prices, &by_name) {
            Ok((input, has_account)) => {
                inputs.push(input);
                out.without_account += usize::from(!has_account);
            }
            Err(e) => out.rejected.push((i + 2, e.to_string())),
        }
    }
    out.opportunities = crm.sales().opportunities().create_many(actor, inputs)?.len();
    Ok(out)
}

/// One row of the pipeline file as a new opportunity carrying its stage moves, and whether its
/// account is known.
fn deal_input(
    r: &HashMap<String, String>,
    prices: &HashMap<String, Decimal>,
    customers: &HashMap<String, CustomerId>,
) -> Result<(NewOpportunity, bool)> {
    let stage = r["deal_stage"].as_str();
    let product = r["product"].as_str();
    let amount = match stage {
        "Won" => r["close_value"]
            .parse::<Decimal>()
            .map_err(|e| Error::invalid("close_value", ValidationReason::Invalid { detail: e.to_string() }))?,
        _ => prices
            .get(&product.replace(' ', ""))
            .copied()
            .ok_or_else(|| Error::invalid("product", ValidationReason::not_allowed(product, prices.keys())))?,
    };
    let engaged = (!r["engage_date"].is_empty()).then(|| day_start(&r["engage_date"])).transpose()?;
    let mut input = NewOpportunity::new(&r["opportunity_id"])
        .pipeline("crm_sales")
        .currency("USD")
        .owner(UserId::new(&r["sales_agent"])?)
        .line(ProductLine::new(product, Decimal::ONE, amount, Decimal::ZERO)?);
    if let Some(at) = engaged {
        input = input.opened_at(at).moved(PastMove::new("Engaging", at));
    }
    if matches!(stage, "Won" | "Lost") {
        input = input.moved(PastMove::new(stage, day_start(&r["close_date"])?).lost_reason("未记录"));
    }
    let account = customers.get(r["account"].as_str()).copied();
    if let Some(c) = account {
        input = input.customer(c);
    }
    Ok((input, account.is_some()))
}
