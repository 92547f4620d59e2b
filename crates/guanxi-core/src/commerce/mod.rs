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
