//! Conditions of the commerce aggregate's lists, shared by the SQL backends: products over
//! `products o`, purchases over `purchases p` (whose customers are the customer query's).

use guanxi_core::commerce::{ProductFilter, PurchaseFilter};
use guanxi_core::{CustomerFilter, Deleted};

use crate::{Dialect, Params, SqlValue, customer_query, ns};

/// Conditions of a product filter over `products o` (`active` is 0 or 1).
///
/// ```
/// use guanxi_core::commerce::ProductFilter;
/// let mut params = Vec::new();
/// let f = ProductFilter { active: Some(true), category: Some("软件".into()) };
/// let conds = guanxi_sql::product_where(guanxi_sql::Dialect::Postgres, &f, &mut params);
/// assert_eq!(conds, ["o.active = 1", "o.category = $1"]);
/// ```
pub fn product_where(d: Dialect, f: &ProductFilter, params: &mut dyn Params) -> Vec<String> {
    let mut conds = Vec::new();
    if let Some(active) = f.active {
        conds.push(format!("o.active = {}", i32::from(active)));
    }
    if let Some(c) = &f.category {
        params.push(SqlValue::Text(c.clone()));
        conds.push(format!("o.category = {}", d.placeholder(params.len())));
    }
    conds
}

/// Conditions of a purchase filter over `purchases p` (`at_ns` nanoseconds; `source_system`
/// '' for none). The customer filter becomes a sub-query of the customer query (its scope
/// included), so whose purchases a reader sees is decided as for the customers themselves.
/// Its parameters come first: call it on empty `params`.
///
/// ```
/// use guanxi_core::commerce::PurchaseFilter;
/// let mut params = Vec::new();
/// let conds = guanxi_sql::purchase_where(guanxi_sql::Dialect::Sqlite, &PurchaseFilter::default(), &mut params).unwrap();
/// assert_eq!(conds, ["p.customer_id IN (SELECT c.id FROM customers c WHERE c.deleted_at IS NULL)"]);
/// ```
pub fn purchase_where(d: Dialect, f: &PurchaseFilter, params: &mut dyn Params) -> guanxi_core::Result<Vec<String>> {
    debug_assert!(params.is_empty(), "the customer sub-query numbers its parameters from 1");
    let mut conds = Vec::new();
    let everyone = CustomerFilter::default().deleted(Deleted::Include);
    if f.customers != everyone {
        let q = customer_query(d, &f.customers, None, false);
        for v in q.params.iter().cloned() {
            params.push(v);
        }
        conds.push(format!("p.customer_id IN ({})", q.select("c.id")));
    }
    let bind = |params: &mut dyn Params, v: SqlValue| {
        params.push(v);
        d.placeholder(params.len())
    };
    if let Some(c) = f.customer_id {
        let p = bind(params, SqlValue::Text(c.to_string()));
        conds.push(format!("p.customer_id = {p}"));
    }
    if let Some(from) = f.from {
        let p = bind(params, SqlValue::Integer(ns(from)?));
        conds.push(format!("p.at_ns >= {p}"));
    }
    if let Some(to) = f.to {
        let p = bind(params, SqlValue::Integer(ns(to)?));
        conds.push(format!("p.at_ns < {p}"));
    }
    if let Some(s) = f.status {
        let p = bind(params, SqlValue::Text(s.as_str().to_owned()));
        conds.push(format!("p.status = {p}"));
    }
    if let Some(c) = &f.currency {
        let p = bind(params, SqlValue::Text(c.clone()));
        conds.push(format!("p.currency = {p}"));
    }
    if let Some(s) = &f.source_system {
        let p = bind(params, SqlValue::Text(s.clone()));
        conds.push(format!("p.source_system = {p}"));
    }
    Ok(conds)
}
