//! Purchases (订单 / 交易): what a customer bought, when, for how much.

use chrono::{DateTime, Months, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{ValidationErrors, ValidationReason};
use crate::ids::{CustomerId, PurchaseId, UserId};
use crate::macros::vocabulary;
use crate::sales::{DEFAULT_CURRENCY, ProductLine, check_money, currency_code, lines_total};
use crate::store::CustomerFilter;
use crate::validate::{limits, optional_text};

/// At most this many lines on one purchase.
pub const MAX_PURCHASE_LINES: usize = 500;

vocabulary! {
    /// Whether a purchase stands.
    ///
    /// ```
    /// use guanxi_core::commerce::PurchaseStatus;
    /// assert_eq!("已退款".parse::<PurchaseStatus>().unwrap(), PurchaseStatus::Refunded);
    /// ```
    #[derive(Default)]
    pub enum PurchaseStatus {
        /// Paid: it counts towards spend.
        #[default]
        Paid = "paid" / "已支付",
        /// Refunded: kept for the record, counted nowhere.
        Refunded = "refunded" / "已退款",
    }
}

/// A purchase (an order or a transaction) of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Purchase {
    /// UUIDv7 id.
    pub id: PurchaseId,
    /// The customer who bought.
    pub customer_id: CustomerId,
    /// When it was bought.
    pub at: DateTime<Utc>,
    /// Amount (the lines' total when it has lines and none was given).
    pub amount: Decimal,
    /// ISO 4217 currency.
    pub currency: String,
    /// Product lines, each naming a catalog product by code or a free-text product.
    pub lines: Vec<ProductLine>,
    /// Sales channel (门店, 官网, 天猫, …).
    pub channel: Option<String>,
    /// The system it came from (an ERP's name).
    pub source_system: Option<String>,
    /// The source system's id for it: unique per source system.
    pub external_id: Option<String>,
    /// Paid or refunded.
    pub status: PurchaseStatus,
    /// Creator.
    pub created_by: UserId,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updater.
    pub updated_by: UserId,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

impl Purchase {
    /// The key a sync matches it on, when it has an external id.
    pub fn key(&self) -> Option<PurchaseKey> {
        PurchaseKey::of(self.source_system.as_deref(), self.external_id.as_deref())
    }

    /// This purchase with `content` in place of its fields (id and creation kept; the write
    /// path stamps the version and the updater).
    pub fn with_content(&self, content: NewPurchase) -> Purchase {
        Purchase {
            updated_by: self.updated_by.clone(),
            updated_at: self.updated_at,
            version: self.version,
            ..content.into_purchase(self.id, &self.created_by, self.created_at)
        }
    }

    /// The fields a sync compares: the purchase as sent.
    pub fn content(&self) -> NewPurchase {
        NewPurchase {
            customer_id: self.customer_id,
            at: self.at,
            amount: Some(self.amount),
            currency: self.currency.clone(),
            lines: self.lines.clone(),
            channel: self.channel.clone(),
            source_system: self.source_system.clone(),
            external_id: self.external_id.clone(),
            status: self.status,
        }
    }
}

/// What identifies a synced purchase: its source system ("" for none) and external id.
///
/// ```
/// use guanxi_core::commerce::PurchaseKey;
/// assert_eq!(PurchaseKey::of(None, Some("SO-1")).unwrap().source_system, "");
/// assert!(PurchaseKey::of(Some("erp"), None).is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PurchaseKey {
    /// Source system, "" when none was given.
    pub source_system: String,
    /// External id.
    pub external_id: String,
}

impl PurchaseKey {
    /// The key of a purchase with these fields (None without an external id).
    pub fn of(source_system: Option<&str>, external_id: Option<&str>) -> Option<PurchaseKey> {
        external_id.map(|x| PurchaseKey {
            source_system: source_system.unwrap_or_default().to_owned(),
            external_id: x.to_owned(),
        })
    }
}

/// A purchase as recorded or synced.
///
/// ```
/// use guanxi_core::commerce::NewPurchase;
/// use guanxi_core::sales::ProductLine;
/// use guanxi_core::CustomerId;
/// use rust_decimal::Decimal;
/// let at = "2024-05-06T09:00:00Z".parse().unwrap();
/// let line = ProductLine::new("SKU-1", Decimal::from(2), Decimal::from(100), Decimal::ZERO)?;
/// let p = NewPurchase::new(CustomerId(uuid::Uuid::nil()), at).line(line).validate().unwrap();
/// assert_eq!(p.amount, Some(Decimal::from(200))); // from the lines
/// let errs = NewPurchase::new(CustomerId(uuid::Uuid::nil()), at).validate().unwrap_err();
/// assert!(errs.field("amount").is_some());
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NewPurchase {
    /// The customer.
    pub customer_id: CustomerId,
    /// When it was bought.
    pub at: DateTime<Utc>,
    /// Amount; None: the lines' total (then it needs lines).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub amount: Option<Decimal>,
    /// ISO 4217 currency (default CNY).
    #[cfg_attr(feature = "uniffi", uniffi(default = "CNY"))]
    pub currency: String,
    /// Product lines.
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub lines: Vec<ProductLine>,
    /// Sales channel.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub channel: Option<String>,
    /// Source system.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub source_system: Option<String>,
    /// The source system's id.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub external_id: Option<String>,
    /// Paid or refunded.
    pub status: PurchaseStatus,
}

impl NewPurchase {
    /// A paid purchase in CNY with no amount or lines yet.
    pub fn new(customer: CustomerId, at: DateTime<Utc>) -> NewPurchase {
        NewPurchase {
            customer_id: customer,
            at,
            amount: None,
            currency: DEFAULT_CURRENCY.to_owned(),
            lines: Vec::new(),
            channel: None,
            source_system: None,
            external_id: None,
            status: PurchaseStatus::Paid,
        }
    }

    /// Sets the amount.
    pub fn amount(mut self, amount: Decimal) -> Self {
        self.amount = Some(amount);
        self
    }

    /// Sets the currency.
    pub fn currency(mut self, currency: &str) -> Self {
        self.currency = currency.to_owned();
        self
    }

    /// Adds a line.
    pub fn line(mut self, line: ProductLine) -> Self {
        self.lines.push(line);
        self
    }

    /// Sets the channel.
    pub fn channel(mut self, channel: &str) -> Self {
        self.channel = Some(channel.to_owned());
        self
    }

    /// Sets the source system and its id for the purchase.
    pub fn external(mut self, source_system: &str, external_id: &str) -> Self {
        self.source_system = Some(source_system.to_owned());
        self.external_id = Some(external_id.to_owned());
        self
    }

    /// Sets the status.
    pub fn status(mut self, status: PurchaseStatus) -> Self {
        self.status = status;
        self
    }

    /// Checks every field, reporting all failures together: the amount (≥ 0, 4 decimals,
    /// or the lines' total when not given), the currency, at most 500 lines each valid, the
    /// texts. The checked purchase has its amount set and its text folded.
    pub fn validate(self) -> Result<NewPurchase, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let currency = match currency_code(&self.currency) {
            Ok(c) => c,
            Err(crate::Error::Validation(e)) => {
                errs.0.extend(e.0);
                self.currency.clone()
            }
            Err(e) => {
                errs.push("currency", ValidationReason::Invalid { detail: e.to_string() });
                self.currency.clone()
            }
        };
        if self.lines.len() > MAX_PURCHASE_LINES {
            errs.push("lines", ValidationReason::TooLarge { max: MAX_PURCHASE_LINES as u64, unit: "lines".into() });
        }
        let mut lines = Vec::with_capacity(self.lines.len());
        for (i, l) in self.lines.iter().enumerate() {
            match ProductLine::new(&l.product, l.quantity, l.unit_price, l.discount) {
                Ok(mut checked) => {
                    checked.product_code =
                        optional_text(&mut errs, &format!("lines[{i}].product_code"), l.product_code.as_deref(), 64);
                    check_money(&mut errs, &format!("lines[{i}].unit_price"), l.unit_price);
                    lines.push(checked);
                }
                Err(crate::Error::Validation(e)) => errs.extend_nested(&format!("lines[{i}]"), e),
                Err(e) => errs.push(format!("lines[{i}]"), ValidationReason::Invalid { detail: e.to_string() }),
            }
        }
        let amount = match self.amount {
            Some(a) => {
                check_money(&mut errs, "amount", a);
                Some(a.normalize())
            }
            None if self.lines.is_empty() => {
                errs.push("amount", ValidationReason::Required);
                None
            }
            None => match lines_total(&lines) {
                Some(t) if lines.len() == self.lines.len() => {
                    check_money(&mut errs, "amount", t);
                    Some(t.normalize())
                }
                Some(_) => None, // a bad line is reported already
                None => {
                    errs.push("amount", ValidationReason::Invalid { detail: "the lines' total overflows".into() });
                    None
                }
            },
        };
        let channel = optional_text(&mut errs, "channel", self.channel.as_deref(), limits::SHORT);
        let source_system = optional_text(&mut errs, "source_system", self.source_system.as_deref(), limits::SHORT);
        let external_id = optional_text(&mut errs, "external_id", self.external_id.as_deref(), limits::SHORT);
        if source_system.is_some() && external_id.is_none() {
            errs.push("external_id", ValidationReason::Invalid { detail: "is required with a source system".into() });
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(NewPurchase {
            customer_id: self.customer_id,
            at: self.at,
            amount,
            currency,
            lines,
            channel,
            source_system,
            external_id,
            status: self.status,
        })
    }

    /// The key a sync matches it on, when it has an external id.
    pub fn key(&self) -> Option<PurchaseKey> {
        PurchaseKey::of(self.source_system.as_deref(), self.external_id.as_deref())
    }

    /// The stored purchase this (checked) content becomes.
    pub fn into_purchase(self, id: PurchaseId, by: &UserId, at: DateTime<Utc>) -> Purchase {
        Purchase {
            id,
            customer_id: self.customer_id,
            at: self.at,
            amount: self.amount.unwrap_or_default(),
            currency: self.currency,
            lines: self.lines,
            channel: self.channel,
            source_system: self.source_system,
            external_id: self.external_id,
            status: self.status,
            created_by: by.clone(),
            created_at: at,
            updated_by: by.clone(),
            updated_at: at,
            version: 1,
        }
    }
}

/// Conditions on a purchase list; all combine with AND. `customers` restricts whose purchases
/// (the `Crm` facade sets its scope from the reader's permission); its default admits the
/// purchases of every live customer.
///
/// ```
/// use guanxi_core::commerce::{PurchaseFilter, PurchaseStatus};
/// let f = PurchaseFilter { status: Some(PurchaseStatus::Paid), ..Default::default() };
/// assert!(f.customer_id.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurchaseFilter {
    /// One customer's.
    pub customer_id: Option<CustomerId>,
    /// At or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Status.
    pub status: Option<PurchaseStatus>,
    /// Currency.
    pub currency: Option<String>,
    /// Source system.
    pub source_system: Option<String>,
    /// Whose: the customers matching this filter.
    pub customers: CustomerFilter,
}

impl PurchaseFilter {
    /// Whether a purchase (of `customer`) passes: the reference every backend reproduces.
    pub fn matches(&self, p: &Purchase, customer: &crate::Customer) -> bool {
        self.customer_id.is_none_or(|c| p.customer_id == c)
            && self.from.is_none_or(|f| p.at >= f)
            && self.to.is_none_or(|t| p.at < t)
            && self.status.is_none_or(|s| p.status == s)
            && self.currency.as_ref().is_none_or(|c| &p.currency == c)
            && self.source_system.as_ref().is_none_or(|s| p.source_system.as_ref() == Some(s))
            && self.customers.matches(customer)
    }
}

/// The trailing twelve months ending at `now`: `[now − 12 months, now]` as `(from, to)` with
/// `to` exclusive (one nanosecond after `now`), what the level rule's spend counts.
///
/// ```
/// use guanxi_core::commerce::trailing_spend_window;
/// let now = "2025-03-31T12:00:00Z".parse().unwrap();
/// let (from, _) = trailing_spend_window(now);
/// assert_eq!(from.to_rfc3339(), "2024-03-31T12:00:00+00:00");
/// ```
pub fn trailing_spend_window(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = now.checked_sub_months(Months::new(12)).unwrap_or(DateTime::<Utc>::MIN_UTC);
    (from, now + chrono::Duration::nanoseconds(1))
}
