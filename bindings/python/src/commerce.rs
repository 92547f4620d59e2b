//! `crm.commerce`: the product catalog (`crm.commerce.products`) and purchases
//! (`crm.commerce.purchases`); their imports are on `crm.files`.

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;
use guanxi::commerce as core;
use guanxi::{CustomerId, ProductId, PurchaseId};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rust_decimal::Decimal;

use crate::PyCrm;
use crate::arrow::{Columns, Table, object, page_request};
use crate::convert::*;
use crate::repr::q;
use crate::sales::ProductLine;

fn product_id(v: &Bound<'_, PyAny>) -> PyResult<ProductId> {
    uuid_from(v, "id").map(ProductId)
}

fn purchase_id(v: &Bound<'_, PyAny>) -> PyResult<PurchaseId> {
    uuid_from(v, "id").map(PurchaseId)
}

/// A product of the catalog (read-only; change it through `products.update` or `sync`).
/// `prices` maps a currency to the list price in it.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct Product {
    id: uuid::Uuid,
    code: String,
    name: String,
    category: Option<String>,
    unit: Option<String>,
    prices: BTreeMap<String, Decimal>,
    tax_rate: Decimal,
    active: bool,
    stock: Option<Decimal>,
    external_id: Option<String>,
    created_by: String,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_by: String,
    updated_at: chrono::DateTime<chrono::Utc>,
    version: u64,
}

#[pymethods]
impl Product {
    fn __repr__(&self) -> String {
        format!("Product(code={}, name={}, version={})", q(&self.code), q(&self.name), self.version)
    }
}

impl From<core::Product> for Product {
    fn from(p: core::Product) -> Self {
        Product {
            id: p.id.0,
            code: p.code,
            name: p.name,
            category: p.category,
            unit: p.unit,
            prices: p.prices.into_iter().map(|p| (p.currency, p.amount)).collect(),
            tax_rate: p.tax_rate,
            active: p.active,
            stock: p.stock,
            external_id: p.external_id,
            created_by: p.created_by.as_str().to_owned(),
            created_at: p.created_at,
            updated_by: p.updated_by.as_str().to_owned(),
            updated_at: p.updated_at,
            version: p.version,
        }
    }
}

/// A purchase (an order, a transaction; read-only).
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct Purchase {
    id: uuid::Uuid,
    customer_id: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
    amount: Decimal,
    currency: String,
    lines: Vec<ProductLine>,
    channel: Option<String>,
    source_system: Option<String>,
    external_id: Option<String>,
    status: String,
    created_by: String,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    version: u64,
}

#[pymethods]
impl Purchase {
    fn __repr__(&self) -> String {
        format!(
            "Purchase(amount={} {}, status={}, version={})",
            self.amount,
            self.currency,
            q(&self.status),
            self.version
        )
    }
}

impl From<core::Purchase> for Purchase {
    fn from(p: core::Purchase) -> Self {
        Purchase {
            id: p.id.0,
            customer_id: p.customer_id.0,
            at: p.at,
            amount: p.amount,
            currency: p.currency,
            lines: p.lines.into_iter().map(ProductLine::from).collect(),
            channel: p.channel,
            source_system: p.source_system,
            external_id: p.external_id,
            status: p.status.as_str().to_owned(),
            created_by: p.created_by.as_str().to_owned(),
            created_at: p.created_at,
            updated_at: p.updated_at,
            version: p.version,
        }
    }
}

/// What a sync did: each input's record id and outcome ("created", "updated" or
/// "unchanged"), in input order, and the counts.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct SyncReport {
    ids: Vec<uuid::Uuid>,
    outcomes: Vec<String>,
    created: u64,
    updated: u64,
    unchanged: u64,
}

#[pymethods]
impl SyncReport {
    fn __repr__(&self) -> String {
        format!("SyncReport(created={}, updated={}, unchanged={})", self.created, self.updated, self.unchanged)
    }
}

impl SyncReport {
    pub(crate) fn ids_len(&self) -> usize {
        self.ids.len()
    }
}

impl From<core::SyncReport> for SyncReport {
    fn from(r: core::SyncReport) -> Self {
        SyncReport {
            ids: r.ids,
            outcomes: r.outcomes.iter().map(|o| o.as_str().to_owned()).collect(),
            created: r.created,
            updated: r.updated,
            unchanged: r.unchanged,
        }
    }
}

fn product_batch(rows: &[core::Product]) -> Result<RecordBatch, ArrowError> {
    let price = |p: &core::Product, c: &str| p.price_in(c);
    Columns::new(rows)
        .text("id", |p| Some(p.id.to_string()))
        .text("code", |p| Some(&p.code))
        .text("name", |p| Some(&p.name))
        .text("category", |p| p.category.as_deref())
        .text("unit", |p| p.unit.as_deref())
        .decimal("price_cny", |p| price(p, "CNY"))?
        .text("prices", |p| {
            Some(p.prices.iter().map(|x| format!("{} {}", x.currency, x.amount)).collect::<Vec<_>>().join("; "))
        })
        .decimal("tax_rate", |p| Some(p.tax_rate))?
        .boolean("active", |p| Some(p.active))
        .decimal("stock", |p| p.stock)?
        .text("external_id", |p| p.external_id.as_deref())
        .time("created_at", |p| Some(p.created_at))
        .time("updated_at", |p| Some(p.updated_at))
        .count("version", |p| p.version)
        .batch()
}

fn products_table(rows: Vec<core::Product>) -> Table {
    Table::records(rows, product_batch, object::<core::Product, Product>)
}

fn purchase_batch(rows: &[core::Purchase]) -> Result<RecordBatch, ArrowError> {
    Columns::new(rows)
        .text("id", |p| Some(p.id.to_string()))
        .text("customer_id", |p| Some(p.customer_id.to_string()))
        .time("at", |p| Some(p.at))
        .decimal("amount", |p| Some(p.amount))?
        .text("currency", |p| Some(&p.currency))
        .text("status", |p| Some(p.status.as_str()))
        .text("channel", |p| p.channel.as_deref())
        .text("products", |p| Some(p.lines.iter().map(|l| l.product_key().to_owned()).collect::<Vec<_>>().join("; ")))
        .count("lines", |p| p.lines.len() as u64)
        .text("source_system", |p| p.source_system.as_deref())
        .text("external_id", |p| p.external_id.as_deref())
        .time("created_at", |p| Some(p.created_at))
        .time("updated_at", |p| Some(p.updated_at))
        .count("version", |p| p.version)
        .batch()
}

fn purchases_table(rows: Vec<core::Purchase>) -> Table {
    Table::records(rows, purchase_batch, object::<core::Purchase, Purchase>)
}

/// The keys of one product dict of `products.sync`.
const PRODUCT_KEYS: &[&str] =
    &["code", "name", "category", "unit", "prices", "tax_rate", "active", "stock", "external_id"];

/// `{"CNY": Decimal("1999"), ...}` as list prices.
fn prices_from(v: &Bound<'_, PyAny>, problems: &mut Problems) -> Vec<core::Price> {
    let Some(d) = problems.keep("prices", v.cast::<PyDict>().map_err(PyErr::from)) else { return Vec::new() };
    let mut out = Vec::new();
    for (currency, amount) in entries(Some(d), problems) {
        if let Some(a) =
            problems.keep(&format!("prices.{currency}"), decimal_arg(&amount, &format!("prices.{currency}")))
        {
            out.push(core::Price::new(&currency, a));
        }
    }
    out
}

/// One product dict, each bad key reported under its name.
fn product_from(d: &Bound<'_, PyDict>, problems: &mut Problems) -> core::NewProduct {
    let mut p = core::NewProduct::new("", "");
    for (key, value) in entries(Some(d), problems) {
        if value.is_none() && !matches!(key.as_str(), "code" | "name" | "prices" | "tax_rate" | "active") {
            continue;
        }
        match key.as_str() {
            "code" => p.code = problems.keep("code", text(&value)).unwrap_or_default(),
            "name" => p.name = problems.keep("name", text(&value)).unwrap_or_default(),
            "category" => p.category = problems.keep("category", text(&value)),
            "unit" => p.unit = problems.keep("unit", text(&value)),
            "prices" => p.prices = prices_from(&value, problems),
            "tax_rate" => p.tax_rate = problems.keep("tax_rate", decimal_arg(&value, "tax_rate")).unwrap_or_default(),
            "active" => p.active = problems.keep("active", value.extract::<bool>()).unwrap_or(true),
            "stock" => p.stock = problems.keep("stock", decimal_arg(&value, "stock")),
            "external_id" => p.external_id = problems.keep("external_id", text(&value)),
            other => problems.unknown_key(other, PRODUCT_KEYS),
        }
    }
    p
}

/// Reads a batch of dicts with `read`, and reports the binding's problems together with the
/// core's validation of what could be read, each under `{field}[i]`.
fn batch_from<T: Clone>(
    items: &Bound<'_, PyAny>,
    field: &str,
    read: impl Fn(&Bound<'_, PyDict>, &mut Problems) -> T,
    validate: impl Fn(T) -> Result<T, guanxi::ValidationErrors>,
) -> PyResult<Vec<T>> {
    let mut problems = Problems::default();
    let mut batch = Vec::new();
    let mut any_bad = false;
    if let Some(iter) = problems.keep(field, items.try_iter()) {
        for (i, item) in iter.enumerate() {
            let at = format!("{field}[{i}]");
            let mut inner = Problems::default();
            let d = item.and_then(|v| Ok(v.cast_into::<PyDict>()?));
            if let Some(d) = inner.keep("", d) {
                batch.push((read(&d, &mut inner), i));
            }
            any_bad |= !inner.is_empty();
            problems.nest(&at, inner);
        }
    }
    if any_bad || !problems.is_empty() {
        for (input, i) in &batch {
            if let Err(errs) = validate(input.clone()) {
                for e in errs.0 {
                    problems.push(format!("{field}[{i}].{}", e.field), e.reason);
                }
            }
        }
    }
    problems.result(batch.into_iter().map(|(t, _)| t).collect())
}

/// `crm.commerce`: the product catalog and purchases.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Commerce {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Commerce {
    /// The product catalog: create, sync from an ERP (idempotent), update, get, list, count.
    #[getter]
    fn products(&self, py: Python<'_>) -> Products {
        Products { crm: self.crm.clone_ref(py) }
    }

    /// Purchases: record in bulk (idempotent by source system and external id), refund,
    /// get, list, count, refresh levels.
    #[getter]
    fn purchases(&self, py: Python<'_>) -> Purchases {
        Purchases { crm: self.crm.clone_ref(py) }
    }
}

/// `crm.commerce.products`: the catalog (产品库).
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Products {
    pub(crate) crm: Py<PyCrm>,
}

#[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
fn new_product(
    code: &str,
    name: &str,
    category: Option<String>,
    unit: Option<String>,
    prices: Option<&Bound<'_, PyAny>>,
    tax_rate: Option<&Bound<'_, PyAny>>,
    active: bool,
    stock: Option<&Bound<'_, PyAny>>,
    external_id: Option<String>,
) -> PyResult<core::NewProduct> {
    let mut problems = Problems::default();
    let mut p = core::NewProduct::new(code, name);
    p.category = category;
    p.unit = unit;
    p.prices = prices.map(|v| prices_from(v, &mut problems)).unwrap_or_default();
    p.tax_rate = tax_rate.and_then(|v| problems.keep("tax_rate", decimal_arg(v, "tax_rate"))).unwrap_or_default();
    p.active = active;
    p.stock = stock.and_then(|v| problems.keep("stock", decimal_arg(v, "stock")));
    p.external_id = external_id;
    problems.result(p)
}

#[pymethods]
impl Products {
    /// Adds a product; a code or external id already in the catalog raises DuplicateError.
    /// `prices` maps a currency to a list price (``{"CNY": Decimal("1999")}``); `tax_rate` is
    /// a percentage (13 for 13%).
    #[pyo3(signature = (code, name, *, category = None, unit = None, prices = None, tax_rate = None, active = true, stock = None, external_id = None))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn create(
        &self,
        py: Python<'_>,
        code: &str,
        name: &str,
        category: Option<String>,
        unit: Option<String>,
        prices: Option<&Bound<'_, PyAny>>,
        tax_rate: Option<&Bound<'_, PyAny>>,
        active: bool,
        stock: Option<&Bound<'_, PyAny>>,
        external_id: Option<String>,
    ) -> PyResult<Product> {
        let p = new_product(code, name, category, unit, prices, tax_rate, active, stock, external_id)?;
        self.crm.get().run(py, |c, a| c.commerce().products().create(a, p)).map(Product::from)
    }

    /// Creates or updates products as an ERP sends them (dicts of `create`'s arguments), all
    /// or none: matched by external id, else code; equal ones are left alone. Every bad field
    /// is reported together (``products[3].tax_rate``).
    fn sync(&self, py: Python<'_>, products: &Bound<'_, PyAny>) -> PyResult<SyncReport> {
        let batch = batch_from(products, "products", product_from, core::NewProduct::validate)?;
        self.crm.get().run(py, |c, a| c.commerce().products().sync(a, batch)).map(SyncReport::from)
    }

    /// Replaces the fields of the product whose current version is `version`.
    #[pyo3(signature = (id, version, code, name, *, category = None, unit = None, prices = None, tax_rate = None, active = true, stock = None, external_id = None))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn update(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        code: &str,
        name: &str,
        category: Option<String>,
        unit: Option<String>,
        prices: Option<&Bound<'_, PyAny>>,
        tax_rate: Option<&Bound<'_, PyAny>>,
        active: bool,
        stock: Option<&Bound<'_, PyAny>>,
        external_id: Option<String>,
    ) -> PyResult<Product> {
        let id = product_id(id)?;
        let version: u64 = int_arg(version, "version")?;
        let p = new_product(code, name, category, unit, prices, tax_rate, active, stock, external_id)?;
        self.crm.get().run(py, |c, a| c.commerce().products().update(a, id, version, p)).map(Product::from)
    }

    /// A product by id.
    fn get(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Product> {
        let id = product_id(id)?;
        self.crm.get().run(py, |c, a| c.commerce().products().get(a, id)).map(Product::from)
    }

    /// A product by code.
    fn get_by_code(&self, py: Python<'_>, code: &str) -> PyResult<Product> {
        self.crm.get().run(py, |c, a| c.commerce().products().get_by_code(a, code)).map(Product::from)
    }

    /// One page of the products (sold or not: `active`; of a `category`), oldest first.
    #[pyo3(signature = (*, active = None, category = None, after = None, limit = 100))]
    fn list(
        &self,
        py: Python<'_>,
        active: Option<bool>,
        category: Option<String>,
        after: Option<&str>,
        limit: i64,
    ) -> PyResult<Table> {
        let page = page_request(after, limit)?;
        let f = core::ProductFilter { active, category };
        let page = self.crm.get().run(py, |c, a| c.commerce().products().list(a, &f, page))?;
        Ok(products_table(page.items).page(page.next))
    }

    /// Every product matching the filters, as one table.
    #[pyo3(signature = (*, active = None, category = None))]
    fn list_all(&self, py: Python<'_>, active: Option<bool>, category: Option<String>) -> PyResult<Table> {
        let f = core::ProductFilter { active, category };
        Ok(products_table(self.crm.get().run(py, |c, a| c.commerce().products().list_all(a, &f))?))
    }

    /// How many products match the filters.
    #[pyo3(signature = (*, active = None, category = None))]
    fn count(&self, py: Python<'_>, active: Option<bool>, category: Option<String>) -> PyResult<u64> {
        let f = core::ProductFilter { active, category };
        self.crm.get().run(py, |c, a| c.commerce().products().count(a, &f))
    }
}

/// The keys of one purchase dict of `purchases.record`.
const PURCHASE_KEYS: &[&str] =
    &["customer_id", "at", "amount", "currency", "lines", "channel", "source_system", "external_id", "status"];

fn purchase_from(d: &Bound<'_, PyDict>, problems: &mut Problems) -> core::NewPurchase {
    let mut p = core::NewPurchase::new(CustomerId(uuid::Uuid::nil()), chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let (mut customer, mut at) = (false, false);
    for (key, value) in entries(Some(d), problems) {
        if value.is_none() && !matches!(key.as_str(), "customer_id" | "at") {
            continue;
        }
        match key.as_str() {
            "customer_id" => {
                customer = true;
                if let Some(c) = problems.keep("customer_id", uuid_from(&value, "customer_id")) {
                    p.customer_id = CustomerId(c);
                }
            }
            "at" => {
                at = true;
                if let Some(t) = problems.keep("at", value.extract::<chrono::DateTime<chrono::Utc>>()) {
                    p.at = t;
                }
            }
            "amount" => p.amount = problems.keep("amount", decimal_arg(&value, "amount")),
            "currency" => p.currency = problems.keep("currency", text(&value)).unwrap_or_default(),
            "lines" => {
                let lines = value.extract::<Vec<ProductLine>>();
                p.lines = problems.keep("lines", lines).unwrap_or_default().into_iter().map(Into::into).collect();
            }
            "channel" => p.channel = problems.keep("channel", text(&value)),
            "source_system" => p.source_system = problems.keep("source_system", text(&value)),
            "external_id" => p.external_id = problems.keep("external_id", text(&value)),
            "status" => {
                let s = text(&value).and_then(|s| parse_name("status", &s));
                p.status = problems.keep("status", s).unwrap_or_default();
            }
            other => problems.unknown_key(other, PURCHASE_KEYS),
        }
    }
    for (field, given) in [("customer_id", customer), ("at", at)] {
        if !given {
            problems.push(field, guanxi::ValidationReason::Required);
        }
    }
    p
}

fn purchase_filter(
    customer_id: Option<&Bound<'_, PyAny>>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
    status: Option<&str>,
    currency: Option<String>,
    source_system: Option<String>,
) -> PyResult<core::PurchaseFilter> {
    let mut problems = Problems::default();
    let f = core::PurchaseFilter {
        customer_id: customer_id
            .and_then(|v| problems.keep("customer_id", uuid_from(v, "customer_id").map(CustomerId))),
        from: since,
        to: until,
        status: status.and_then(|s| problems.keep("status", parse_name("status", s))),
        currency,
        source_system,
        customers: Default::default(),
    };
    problems.result(f)
}

/// `crm.commerce.purchases`: orders and transactions.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Purchases {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Purchases {
    /// Records purchases (dicts: ``customer_id``, ``at``, ``amount`` — or ``lines`` of
    /// ``ProductLine`` —, ``currency``, ``channel``, ``source_system``, ``external_id``,
    /// ``status``), all or none. One already recorded under its source system and external
    /// id is left alone when equal and updated when not (a refund synced later). Every bad
    /// field is reported together (``purchases[3].amount``). With a level rule, the buyers'
    /// spend and level follow.
    fn record(&self, py: Python<'_>, purchases: &Bound<'_, PyAny>) -> PyResult<SyncReport> {
        let batch = batch_from(purchases, "purchases", purchase_from, core::NewPurchase::validate)?;
        self.crm.get().run(py, |c, a| c.commerce().purchases().record(a, batch)).map(SyncReport::from)
    }

    /// Marks the purchase whose current version is `version` refunded.
    fn refund(&self, py: Python<'_>, id: &Bound<'_, PyAny>, version: &Bound<'_, PyAny>) -> PyResult<Purchase> {
        let id = purchase_id(id)?;
        let version: u64 = int_arg(version, "version")?;
        self.crm.get().run(py, |c, a| c.commerce().purchases().refund(a, id, version)).map(Purchase::from)
    }

    /// A purchase by id (its customer must be one the user may see).
    fn get(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Purchase> {
        let id = purchase_id(id)?;
        self.crm.get().run(py, |c, a| c.commerce().purchases().get(a, id)).map(Purchase::from)
    }

    /// One page of the purchases the user may see (of `customer_id`; at or after `since`,
    /// before `until`; by `status`, `currency`, `source_system`), oldest first.
    #[pyo3(signature = (*, customer_id = None, since = None, until = None, status = None, currency = None, source_system = None, after = None, limit = 100))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn list(
        &self,
        py: Python<'_>,
        customer_id: Option<&Bound<'_, PyAny>>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        until: Option<chrono::DateTime<chrono::Utc>>,
        status: Option<&str>,
        currency: Option<String>,
        source_system: Option<String>,
        after: Option<&str>,
        limit: i64,
    ) -> PyResult<Table> {
        let page = page_request(after, limit)?;
        let f = purchase_filter(customer_id, since, until, status, currency, source_system)?;
        let page = self.crm.get().run(py, |c, a| c.commerce().purchases().list(a, &f, page))?;
        Ok(purchases_table(page.items).page(page.next))
    }

    /// Every purchase `list` pages through, as one table.
    #[pyo3(signature = (*, customer_id = None, since = None, until = None, status = None, currency = None, source_system = None))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn list_all(
        &self,
        py: Python<'_>,
        customer_id: Option<&Bound<'_, PyAny>>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        until: Option<chrono::DateTime<chrono::Utc>>,
        status: Option<&str>,
        currency: Option<String>,
        source_system: Option<String>,
    ) -> PyResult<Table> {
        let f = purchase_filter(customer_id, since, until, status, currency, source_system)?;
        Ok(purchases_table(self.crm.get().run(py, |c, a| c.commerce().purchases().list_all(a, &f))?))
    }

    /// How many purchases `list` pages through.
    #[pyo3(signature = (*, customer_id = None, since = None, until = None, status = None, currency = None, source_system = None))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn count(
        &self,
        py: Python<'_>,
        customer_id: Option<&Bound<'_, PyAny>>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        until: Option<chrono::DateTime<chrono::Utc>>,
        status: Option<&str>,
        currency: Option<String>,
        source_system: Option<String>,
    ) -> PyResult<u64> {
        let f = purchase_filter(customer_id, since, until, status, currency, source_system)?;
        self.crm.get().run(py, |c, a| c.commerce().purchases().count(a, &f))
    }

    /// Re-states every buyer's trailing-12-month spend and level now (a daily job); returns
    /// how many customers changed.
    fn refresh_levels(&self, py: Python<'_>) -> PyResult<u64> {
        self.crm.get().run(py, |c, a| c.commerce().purchases().refresh_levels(a))
    }
}
