//! `crm.commerce()`: the product catalog and purchases, for Kotlin and Swift. The records are
//! guanxi-core's own (`Product`, `NewProduct`, `Purchase`, `NewPurchase`, `SyncReport`, …).

use std::sync::Arc;

pub use guanxi::commerce::{NewProduct, NewPurchase, Product, ProductFilter, Purchase, PurchaseStatus, SyncReport};
use guanxi::{CustomerId, ProductId, PurchaseId};
use uuid::Uuid;

use crate::dedup::{ImportMode, RowError};
use crate::{DateTime, PageRequest, Result, handle, next_of, page};

page!(
    /// One page of products.
    ProductPage of Product
);

page!(
    /// One page of purchases.
    PurchasePage of Purchase
);

/// Which purchases a list reads (each condition optional; the reader's scope always applies).
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct PurchaseFilter {
    /// One customer's.
    #[uniffi(default = None)]
    pub customer_id: Option<Uuid>,
    /// At or after this instant.
    #[uniffi(default = None)]
    pub since: Option<DateTime>,
    /// Before this instant.
    #[uniffi(default = None)]
    pub until: Option<DateTime>,
    /// Paid or refunded.
    #[uniffi(default = None)]
    pub status: Option<PurchaseStatus>,
    /// Currency.
    #[uniffi(default = None)]
    pub currency: Option<String>,
    /// Source system.
    #[uniffi(default = None)]
    pub source_system: Option<String>,
}

impl PurchaseFilter {
    pub(crate) fn into_core(self) -> guanxi::commerce::PurchaseFilter {
        guanxi::commerce::PurchaseFilter {
            customer_id: self.customer_id.map(CustomerId),
            from: self.since,
            to: self.until,
            status: self.status,
            currency: self.currency,
            source_system: self.source_system,
            customers: Default::default(),
        }
    }
}

/// How a catalog or purchase file is imported.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct CommerceImportOptions {
    /// All or nothing (null: all or nothing), or keep the good rows.
    #[uniffi(default = None)]
    pub mode: Option<ImportMode>,
    /// The source system of rows that name none.
    #[uniffi(default = None)]
    pub source_system: Option<String>,
    /// Headers mapped to field keys by hand (`sales_price` → `price`).
    #[uniffi(default = [])]
    pub columns: Vec<ColumnMapping>,
}

/// A header mapped to a field key.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ColumnMapping {
    /// The file's header.
    pub header: String,
    /// The field key (`code`, `name`, `price`, `customer_code`, `amount`, …).
    pub field: String,
}

impl CommerceImportOptions {
    fn into_core(self) -> guanxi::CommerceImportOptions {
        let mut o = guanxi::CommerceImportOptions { source_system: self.source_system, ..Default::default() };
        o.mode = match self.mode {
            None | Some(ImportMode::AllOrNothing) => guanxi::ImportMode::AllOrNothing,
            Some(ImportMode::KeepGood) => guanxi::ImportMode::KeepGood,
        };
        for c in self.columns {
            o = o.column(&c.header, &c.field);
        }
        o
    }
}

/// What a catalog or purchase import did.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CommerceImportReport {
    /// Data rows read.
    pub rows: u64,
    /// The rows synced, in file order.
    pub sync: SyncReport,
    /// The rejected rows' errors.
    pub rejected: Vec<RowError>,
    /// Headers that map to no field.
    pub ignored_columns: Vec<String>,
    /// Whether anything was written.
    pub committed: bool,
}

impl From<guanxi::CommerceImportReport> for CommerceImportReport {
    fn from(r: guanxi::CommerceImportReport) -> Self {
        CommerceImportReport {
            rows: r.rows,
            sync: r.sync,
            rejected: r
                .rejected
                .into_iter()
                .map(|e| RowError { row: e.row, column: e.column, value: e.value, reason: e.reason })
                .collect(),
            ignored_columns: r.ignored_columns,
            committed: r.committed,
        }
    }
}

handle! {
    /// `crm.commerce()`: the product catalog and purchases.
    Commerce
}

handle! {
    /// `crm.commerce().products()`: the catalog (产品库).
    Products
}

handle! {
    /// `crm.commerce().purchases()`: orders and transactions.
    Purchases
}

#[uniffi::export]
impl Commerce {
    /// The product catalog.
    pub fn products(&self) -> Arc<Products> {
        Arc::new(Products { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// Purchases.
    pub fn purchases(&self) -> Arc<Purchases> {
        Arc::new(Purchases { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// Imports a catalog from the bytes of an ERP's CSV or .xlsx export, synced by external
    /// id, else code (a re-import writes nothing); every bad cell with its row and column.
    pub fn import_products(&self, data: Vec<u8>, options: CommerceImportOptions) -> Result<CommerceImportReport> {
        Ok(self.inner.files().import_products(&self.actor, &data, &options.into_core())?.into())
    }

    /// Imports purchases, one a row, recorded once per source system and order number.
    pub fn import_purchases(&self, data: Vec<u8>, options: CommerceImportOptions) -> Result<CommerceImportReport> {
        Ok(self.inner.files().import_purchases(&self.actor, &data, &options.into_core())?.into())
    }
}

#[uniffi::export]
impl Products {
    /// Adds a product; a taken code or external id is `CrmError.Duplicate`.
    pub fn create(&self, product: NewProduct) -> Result<Product> {
        Ok(self.inner.commerce().products().create(&self.actor, product)?)
    }

    /// Creates or updates products as an ERP sends them, all or none (by external id, else
    /// code); equal ones are left alone.
    pub fn sync(&self, products: Vec<NewProduct>) -> Result<SyncReport> {
        Ok(self.inner.commerce().products().sync(&self.actor, products)?)
    }

    /// Replaces the fields of the product whose current version is `version`.
    pub fn update(&self, id: Uuid, version: u64, product: NewProduct) -> Result<Product> {
        Ok(self.inner.commerce().products().update(&self.actor, ProductId(id), version, product)?)
    }

    /// A product by id.
    pub fn get(&self, id: Uuid) -> Result<Product> {
        Ok(self.inner.commerce().products().get(&self.actor, ProductId(id))?)
    }

    /// A product by code.
    pub fn get_by_code(&self, code: String) -> Result<Product> {
        Ok(self.inner.commerce().products().get_by_code(&self.actor, &code)?)
    }

    /// One page of the products matching `filter`, oldest first.
    pub fn list(&self, filter: ProductFilter, page: PageRequest) -> Result<ProductPage> {
        Ok(self.inner.commerce().products().list(&self.actor, &filter, page.into_core()?)?.into())
    }

    /// How many products match `filter`.
    pub fn count(&self, filter: ProductFilter) -> Result<u64> {
        Ok(self.inner.commerce().products().count(&self.actor, &filter)?)
    }
}

#[uniffi::export]
impl Purchases {
    /// Records purchases, all or none, once per (source system, external id): one already
    /// recorded is left alone when equal and updated when not; with a level rule, the buyers'
    /// spend and level follow.
    pub fn record(&self, purchases: Vec<NewPurchase>) -> Result<SyncReport> {
        Ok(self.inner.commerce().purchases().record(&self.actor, purchases)?)
    }

    /// Marks the purchase whose current version is `version` refunded.
    pub fn refund(&self, id: Uuid, version: u64) -> Result<Purchase> {
        Ok(self.inner.commerce().purchases().refund(&self.actor, PurchaseId(id), version)?)
    }

    /// A purchase by id (its customer must be one the user may see).
    pub fn get(&self, id: Uuid) -> Result<Purchase> {
        Ok(self.inner.commerce().purchases().get(&self.actor, PurchaseId(id))?)
    }

    /// One page of the purchases the user may see matching `filter`, oldest first.
    pub fn list(&self, filter: PurchaseFilter, page: PageRequest) -> Result<PurchasePage> {
        Ok(self.inner.commerce().purchases().list(&self.actor, &filter.into_core(), page.into_core()?)?.into())
    }

    /// How many purchases `list` pages through.
    pub fn count(&self, filter: PurchaseFilter) -> Result<u64> {
        Ok(self.inner.commerce().purchases().count(&self.actor, &filter.into_core())?)
    }

    /// Re-states every buyer's trailing-12-month spend and level now; how many changed.
    pub fn refresh_levels(&self) -> Result<u64> {
        Ok(self.inner.commerce().purchases().refresh_levels(&self.actor)?)
    }
}
