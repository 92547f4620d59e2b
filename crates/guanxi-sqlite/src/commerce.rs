//! The commerce aggregate on SQLite: products and purchases as narrow rows beside their
//! record as JSON (`doc`). A purchase's amount is an integer of 1/10000 units, so sums are
//! exact; its instant integer nanoseconds.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};
use rust_decimal::Decimal;

use guanxi_core::commerce::{Product, ProductFilter, Purchase, PurchaseFilter, PurchaseKey};
use guanxi_core::{Changes, CustomerId, EntityKind, Error, Page, PageRequest, Result};
use guanxi_sql::report::e4;
use guanxi_sql::{Dialect, where_sql};

use crate::query::Bind;
use crate::sales::{count, docs, ns, opt_text, text, to_doc, versioned};
use crate::sql_err;

/// `Err(Duplicate)` when another row of `table` holds `value` in `column`.
fn unique(tx: &Connection, table: &str, column: &str, value: &str, id: &str, entity: EntityKind) -> Result<()> {
    let holder: Option<String> = tx
        .prepare_cached(&format!("SELECT id FROM {table} WHERE {column} = ?1"))
        .map_err(sql_err)?
        .query_row([value], |r| r.get(0))
        .optional()
        .map_err(sql_err)?;
    match holder {
        Some(h) if h != id => Err(Error::Duplicate { entity, field: column.to_owned(), value: value.to_owned() }),
        _ => Ok(()),
    }
}

/// Applies the commerce part of a batch: products, then purchases.
pub(crate) fn apply(tx: &Connection, changes: &Changes) -> Result<()> {
    for w in &changes.products {
        let p = w.record();
        let id = p.id.to_string();
        unique(tx, "products", "code", &p.code, &id, EntityKind::Product)?;
        if let Some(x) = &p.external_id {
            unique(tx, "products", "external_id", x, &id, EntityKind::Product)?;
        }
        versioned(
            tx,
            w,
            "products",
            EntityKind::Product,
            &id,
            (
                "INSERT INTO products (id, code, external_id, category, active, version, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                "UPDATE products SET code = ?2, external_id = ?3, category = ?4, active = ?5, version = ?6, \
                 doc = ?7 WHERE id = ?1 AND version = ?8",
            ),
            vec![
                text(id.clone()),
                text(p.code.clone()),
                opt_text(p.external_id.clone()),
                opt_text(p.category.clone()),
                Value::Integer(i64::from(p.active)),
                Value::Integer(p.version as i64),
                text(to_doc(p)?),
            ],
            None,
        )?;
    }
    for w in &changes.purchases {
        let p = w.record();
        let id = p.id.to_string();
        if let Some(key) = p.key() {
            let holder: Option<String> = tx
                .prepare_cached("SELECT id FROM purchases WHERE source_system = ?1 AND external_id = ?2")
                .map_err(sql_err)?
                .query_row([&key.source_system, &key.external_id], |r| r.get(0))
                .optional()
                .map_err(sql_err)?;
            if holder.is_some_and(|h| h != id) {
                return Err(Error::Duplicate {
                    entity: EntityKind::Purchase,
                    field: "external_id".into(),
                    value: key.external_id,
                });
            }
        }
        versioned(
            tx,
            w,
            "purchases",
            EntityKind::Purchase,
            &id,
            (
                "INSERT INTO purchases (id, customer_id, at_ns, amount_e4, currency, status, source_system, \
                 external_id, version, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                "UPDATE purchases SET customer_id = ?2, at_ns = ?3, amount_e4 = ?4, currency = ?5, status = ?6, \
                 source_system = ?7, external_id = ?8, version = ?9, doc = ?10 WHERE id = ?1 AND version = ?11",
            ),
            vec![
                text(id.clone()),
                text(p.customer_id.to_string()),
                Value::Integer(ns(p.at)?),
                Value::Integer(e4(p.amount)?),
                text(p.currency.clone()),
                text(p.status.as_str()),
                text(p.source_system.clone().unwrap_or_default()),
                opt_text(p.external_id.clone()),
                Value::Integer(p.version as i64),
                text(to_doc(p)?),
            ],
            Some((EntityKind::Customer, p.customer_id.to_string())),
        )?;
    }
    Ok(())
}

/// `?1, ?2, …` for `n` parameters after `offset`.
fn marks(offset: usize, n: usize) -> String {
    (offset + 1..=offset + n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
}

pub(crate) fn product(conn: &Connection, id: &str) -> Result<Option<Product>> {
    Ok(docs(conn, "SELECT doc FROM products WHERE id = ?1", &[text(id)])?.pop())
}

pub(crate) fn products_by(conn: &Connection, column: &str, values: &[String]) -> Result<Vec<Product>> {
    let mut out = Vec::new();
    for chunk in values.chunks(500) {
        let params: Vec<Value> = chunk.iter().map(|v| text(v.clone())).collect();
        let sql = format!("SELECT doc FROM products WHERE {column} IN ({})", marks(0, chunk.len()));
        out.extend(docs::<Product>(conn, &sql, &params)?);
    }
    Ok(out)
}

pub(crate) fn list_products(conn: &Connection, f: &ProductFilter, page: &PageRequest) -> Result<Page<Product>> {
    page.check()?;
    let mut params = Vec::new();
    let mut conds = guanxi_sql::product_where(Dialect::Sqlite, f, &mut Bind(&mut params));
    if let Some(after) = page.after {
        params.push(text(after.last_id().to_string()));
        conds.push(format!("o.id > ?{}", params.len()));
    }
    let sql = format!(
        "SELECT o.doc FROM products o WHERE {} ORDER BY o.id LIMIT {}",
        where_sql(&conds),
        page.limit.saturating_add(1)
    );
    Ok(Page::from_overfetch(docs(conn, &sql, &params)?, page.limit, |p: &Product| p.id.0))
}

pub(crate) fn count_products(conn: &Connection, f: &ProductFilter) -> Result<u64> {
    let mut params = Vec::new();
    let conds = guanxi_sql::product_where(Dialect::Sqlite, f, &mut Bind(&mut params));
    count(conn, &format!("SELECT count(*) FROM products o WHERE {}", where_sql(&conds)), &params)
}

pub(crate) fn purchase(conn: &Connection, id: &str) -> Result<Option<Purchase>> {
    Ok(docs(conn, "SELECT doc FROM purchases WHERE id = ?1", &[text(id)])?.pop())
}

pub(crate) fn purchases_by_keys(conn: &Connection, keys: &[PurchaseKey]) -> Result<Vec<Purchase>> {
    let mut stmt = conn
        .prepare_cached("SELECT doc FROM purchases WHERE source_system = ?1 AND external_id = ?2")
        .map_err(sql_err)?;
    let mut out = Vec::new();
    for k in keys {
        let doc: Option<String> =
            stmt.query_row([&k.source_system, &k.external_id], |r| r.get(0)).optional().map_err(sql_err)?;
        if let Some(doc) = doc {
            out.push(crate::sales::from_doc(&doc).map_err(sql_err)?);
        }
    }
    Ok(out)
}

pub(crate) fn list_purchases(conn: &Connection, f: &PurchaseFilter, page: &PageRequest) -> Result<Page<Purchase>> {
    page.check()?;
    let mut params = Vec::new();
    let mut conds = guanxi_sql::purchase_where(Dialect::Sqlite, f, &mut Bind(&mut params))?;
    if let Some(after) = page.after {
        params.push(text(after.last_id().to_string()));
        conds.push(format!("p.id > ?{}", params.len()));
    }
    let sql = format!(
        "SELECT p.doc FROM purchases p WHERE {} ORDER BY p.id LIMIT {}",
        where_sql(&conds),
        page.limit.saturating_add(1)
    );
    Ok(Page::from_overfetch(docs(conn, &sql, &params)?, page.limit, |p: &Purchase| p.id.0))
}

pub(crate) fn count_purchases(conn: &Connection, f: &PurchaseFilter) -> Result<u64> {
    let mut params = Vec::new();
    let conds = guanxi_sql::purchase_where(Dialect::Sqlite, f, &mut Bind(&mut params))?;
    count(conn, &format!("SELECT count(*) FROM purchases p WHERE {}", where_sql(&conds)), &params)
}

pub(crate) fn paid_spend(
    conn: &Connection,
    customers: &[CustomerId],
    currency: &str,
    (from, to): (i64, i64),
) -> Result<Vec<Decimal>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT amount_e4 FROM purchases WHERE customer_id = ?1 AND currency = ?2 AND at_ns >= ?3 \
             AND at_ns < ?4 AND status = 'paid'",
        )
        .map_err(sql_err)?;
    customers
        .iter()
        .map(|c| {
            let rows = stmt
                .query_map(rusqlite::params![c.to_string(), currency, from, to], |r| r.get::<_, i64>(0))
                .map_err(sql_err)?;
            // Summed in 128 bits: no sum of stored amounts overflows.
            let mut sum: i128 = 0;
            for r in rows {
                sum += i128::from(r.map_err(sql_err)?);
            }
            Ok(Decimal::from_i128_with_scale(sum, 4).normalize())
        })
        .collect()
}

pub(crate) fn customers_with_purchases(
    conn: &Connection,
    currency: &str,
    after: Option<CustomerId>,
    limit: usize,
) -> Result<Vec<CustomerId>> {
    let after = after.map(|a| a.to_string()).unwrap_or_default();
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT customer_id FROM purchases WHERE currency = ?1 AND customer_id > ?2 \
             ORDER BY customer_id LIMIT ?3",
        )
        .map_err(sql_err)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(rusqlite::params![currency, after, limit], |r| r.get::<_, String>(0)).map_err(sql_err)?;
    rows.map(|r| {
        let s = r.map_err(sql_err)?;
        s.parse().map(CustomerId).map_err(|e| guanxi_core::StorageError::with_source("bad customer id", e).into())
    })
    .collect()
}
