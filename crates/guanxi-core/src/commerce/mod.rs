//! Commerce (交易): the product catalog (产品库) a host syncs from its ERP, and the purchases
//! (orders, transactions) customers make — what spend, levels and the customer analytics are
//! computed from.
//!
//! Both are synced idempotently: a product by its external id (else its code), a purchase by
//! its source system and external id, so sending the same record twice writes it once.

mod product;
mod purchase;

pub use product::{MAX_PRICES, NewProduct, Price, Product, ProductFilter};
pub use purchase::{
    MAX_PURCHASE_LINES, NewPurchase, Purchase, PurchaseFilter, PurchaseKey, PurchaseStatus, trailing_spend_window,
};

/// What a sync did to one record: created it, changed it, or found it already as sent.
///
/// ```
/// use guanxi_core::commerce::SyncOutcome;
/// assert_eq!(SyncOutcome::Unchanged.as_str(), "unchanged");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum SyncOutcome {
    /// A new record was written.
    Created,
    /// The stored record differed and was updated.
    Updated,
    /// The stored record already was as sent: nothing was written.
    Unchanged,
}

impl SyncOutcome {
    /// The stable snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncOutcome::Created => "created",
            SyncOutcome::Updated => "updated",
            SyncOutcome::Unchanged => "unchanged",
        }
    }
}

/// What a sync call did, record by record in the order sent: each one's id and outcome, and
/// the counts.
///
/// ```
/// use guanxi_core::commerce::{SyncOutcome, SyncReport};
/// let mut r = SyncReport::default();
/// r.push(uuid::Uuid::nil(), SyncOutcome::Created);
/// r.push(uuid::Uuid::nil(), SyncOutcome::Unchanged);
/// assert_eq!((r.created, r.updated, r.unchanged), (1, 0, 1));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SyncReport {
    /// The record each input became (or already was), in input order.
    pub ids: Vec<uuid::Uuid>,
    /// What happened to each, in input order.
    pub outcomes: Vec<SyncOutcome>,
    /// How many were created.
    pub created: u64,
    /// How many were updated.
    pub updated: u64,
    /// How many were already as sent.
    pub unchanged: u64,
}

impl SyncReport {
    /// Records one input's outcome.
    pub fn push(&mut self, id: uuid::Uuid, outcome: SyncOutcome) {
        self.ids.push(id);
        self.outcomes.push(outcome);
        match outcome {
            SyncOutcome::Created => self.created += 1,
            SyncOutcome::Updated => self.updated += 1,
            SyncOutcome::Unchanged => self.unchanged += 1,
        }
    }
}
