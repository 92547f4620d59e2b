//! The commerce aggregate on PostgreSQL: products and purchases beside their documents, as
//! on SQLite (the conditions compiled by `guanxi-sql`).

use guanxi_core::rust_decimal::Decimal;

use guanxi_core::commerce::{Product, ProductFilter, Purchase, PurchaseFilter, PurchaseKey};
use guanxi_core::{
    Changes, CommerceStore, CustomerId, EntityKind, Error, Page, PageRequest, ProductId, PurchaseId, Result,
};
use guanxi_sql::report::e4;
use guanxi_sql::{Dialect, SqlValue, ns, where_sql};

use crate::View;
use crate::aggregates::{int, opt_text, text};
use crate::encode;

impl View<'_> {
    /// `Err(Duplicate)` when another row of `table` holds `value` in `column`.
    fn unique(&self, table: &str, column: &str, value: &str, id: &str, entity: EntityKind) -> Result<()> {
        let rows = self.query(&format!("SELECT id FROM {table} WHERE {column} = $1"), &[&value])?;
        match rows.first().map(|r| r.get::<_, String>(0)) {
            Some(h) if h != id => Err(Error::Duplicate { entity, field: column.to_owned(), value: value.to_owned() }),
            _ => Ok(()),
        }
    }

    /// The commerce part of a batch: products, then purchases.
    pub(crate) fn apply_commerce(&self, changes: &Changes) -> Result<()> {
        for w in &changes.products {
            let p = w.record();
            let id = p.id.to_string();
            self.unique("products", "code", &p.code, &id, EntityKind::Product)?;
            if let Some(x) = &p.external_id {
                self.unique("products", "external_id", x, &id, EntityKind::Product)?;
            }
            let values = vec![
                text(&id),
                text(&p.code),
                opt_text(p.external_id.as_ref()),
                opt_text(p.category.as_ref()),
                int(i64::from(p.active)),
                int(p.version as i64),
                text(encode(p)?),
            ];
            let columns = ["id", "code", "external_id", "category", "active", "version", "doc"];
            self.versioned(w, "products", EntityKind::Product, &id, &columns, values, None)?;
        }
        for w in &changes.purchases {
            let p = w.record();
            let id = p.id.to_string();
            if let Some(key) = p.key() {
                let rows = self.query(
                    "SELECT id FROM purchases WHERE source_system = $1 AND external_id = $2",
                    &[&key.source_system, &key.external_id],
                )?;
                if rows.first().is_some_and(|r| r.get::<_, String>(0) != id) {
                    return Err(Error::Duplicate {
                        entity: EntityKind::Purchase,
                        field: "external_id".into(),
                        value: key.external_id,
                    });
                }
            }
            let values = vec![
                text(&id),
                text(p.customer_id),
                int(ns(p.at)?),
                int(e4(p.amount)?),
                text(&p.currency),
                text(p.status.as_str()),
                text(p.source_system.clone().unwrap_or_default()),
                opt_text(p.external_id.as_ref()),
                int(p.version as i64),
                text(encode(p)?),
            ];
            let columns = [
                "id",
                "customer_id",
                "at_ns",
                "amount_e4",
                "currency",
                "status",
                "source_system",
                "external_id",
                "version",
                "doc",
            ];
            let customer = Some((EntityKind::Customer, p.customer_id.to_string()));
            self.versioned(w, "purchases", EntityKind::Purchase, &id, &columns, values, customer)?;
        }
        Ok(())
    }

    fn products_by(&self, column: &str, values: &[String]) -> Result<Vec<Product>> {
        let rows = self.query(&format!("SELECT doc FROM products WHERE {column} = ANY($1)"), &[&values])?;
        rows.iter().map(|r| crate::decode("product", r.get::<_, &str>(0))).collect()
    }
}

impl CommerceStore for View<'_> {
    fn product(&self, id: ProductId) -> Result<Option<Product>> {
        Ok(self.docs("product", "SELECT doc FROM products WHERE id = $1", &[SqlValue::Text(id.to_string())])?.pop())
    }

    fn products_by_codes(&self, codes: &[String]) -> Result<Vec<Product>> {
        self.products_by("code", codes)
    }

    fn products_by_external_ids(&self, ids: &[String]) -> Result<Vec<Product>> {
        self.products_by("external_id", ids)
    }

    fn list_products(&self, filter: &ProductFilter, page: &PageRequest) -> Result<Page<Product>> {
        let mut values = Vec::new();
        let conds = guanxi_sql::product_where(Dialect::Postgres, filter, &mut values);
        self.page("products", conds, values, page, |p: &Product| p.id.0)
    }

    fn count_products(&self, filter: &ProductFilter) -> Result<u64> {
        let mut values = Vec::new();
        let conds = guanxi_sql::product_where(Dialect::Postgres, filter, &mut values);
        self.count(&format!("SELECT count(*) FROM products o WHERE {}", where_sql(&conds)), &values)
    }

    fn purchase(&self, id: PurchaseId) -> Result<Option<Purchase>> {
        Ok(self.docs("purchase", "SELECT doc FROM purchases WHERE id = $1", &[SqlValue::Text(id.to_string())])?.pop())
    }

    fn purchases_by_keys(&self, keys: &[PurchaseKey]) -> Result<Vec<Purchase>> {
        let sources: Vec<&str> = keys.iter().map(|k| k.source_system.as_str()).collect();
        let ids: Vec<&str> = keys.iter().map(|k| k.external_id.as_str()).collect();
        let rows = self.query(
            "SELECT p.doc FROM purchases p JOIN unnest($1::text[], $2::text[]) AS k (source_system, external_id) \
             ON p.source_system = k.source_system AND p.external_id = k.external_id",
            &[&sources, &ids],
        )?;
        rows.iter().map(|r| crate::decode("purchase", r.get::<_, &str>(0))).collect()
    }

    fn list_purchases(&self, filter: &PurchaseFilter, page: &PageRequest) -> Result<Page<Purchase>> {
        let mut values = Vec::new();
        let conds = guanxi_sql::purchase_where(Dialect::Postgres, filter, &mut values)?;
        self.page("purchases", conds, values, page, |p: &Purchase| p.id.0)
    }

    fn count_purchases(&self, filter: &PurchaseFilter) -> Result<u64> {
        let mut values = Vec::new();
        let conds = guanxi_sql::purchase_where(Dialect::Postgres, filter, &mut values)?;
        self.count(&format!("SELECT count(*) FROM purchases p WHERE {}", where_sql(&conds)), &values)
    }

    fn paid_spend(
        &self,
        customers: &[CustomerId],
        currency: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Decimal>> {
        let ids: Vec<String> = customers.iter().map(ToString::to_string).collect();
        // numeric: no sum of stored amounts overflows.
        let rows = self.query(
            "SELECT customer_id, sum(amount_e4)::text FROM purchases WHERE customer_id = ANY($1) AND currency = $2 \
             AND at_ns >= $3 AND at_ns < $4 AND status = 'paid' GROUP BY customer_id",
            &[&ids, &currency, &ns(from)?, &ns(to)?],
        )?;
        let mut sums = std::collections::HashMap::new();
        for r in &rows {
            let e4: Decimal = r
                .get::<_, &str>(1)
                .parse()
                .map_err(|e| guanxi_core::StorageError::with_source("a sum does not parse", e))?;
            sums.insert(r.get::<_, String>(0), (e4 / Decimal::from(10_000)).normalize());
        }
        Ok(ids.iter().map(|id| sums.get(id).copied().unwrap_or_default()).collect())
    }

    fn customers_with_purchases(
        &self,
        currency: &str,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(
            "SELECT DISTINCT customer_id FROM purchases WHERE currency = $1 AND customer_id > $2 \
             ORDER BY customer_id LIMIT $3",
            &[&currency, &after, &limit],
        )?;
        rows.iter()
            .map(|r| {
                r.get::<_, &str>(0)
                    .parse()
                    .map(CustomerId)
                    .map_err(|e| guanxi_core::StorageError::with_source("bad customer id", e).into())
            })
            .collect()
    }
}
