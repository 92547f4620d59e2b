//! Products of the catalog (产品库).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{ValidationErrors, ValidationReason};
use crate::ids::{ProductId, UserId};
use crate::sales::{MONEY_SCALE, check_money, currency_code};
use crate::validate::{limits, optional_text, required_text};

/// At most this many list prices (currencies) on one product.
pub const MAX_PRICES: usize = 16;

/// Characters of a product code (SKU), at most.
const MAX_CODE: usize = 64;

/// A list price in one currency.
///
/// ```
/// use guanxi_core::commerce::Price;
/// let p = Price::new("cny", rust_decimal::Decimal::new(1999_00, 2));
/// assert_eq!(p.currency, "cny"); // upper-cased when the product is checked
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Price {
    /// ISO 4217 currency.
    pub currency: String,
    /// Amount per unit (≥ 0, at most 4 decimal places).
    pub amount: Decimal,
}

impl Price {
    /// A price of `amount` in `currency`.
    pub fn new(currency: &str, amount: Decimal) -> Price {
        Price { currency: currency.to_owned(), amount }
    }
}

/// A product of the catalog: what opportunity and purchase lines name by `code`, so product
/// analytics group by the code, never by a typed name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Product {
    /// UUIDv7 id.
    pub id: ProductId,
    /// Code / SKU, unique in the catalog.
    pub code: String,
    /// Name.
    pub name: String,
    /// Category (产品类别).
    pub category: Option<String>,
    /// Unit of sale (件, 套, 年, …).
    pub unit: Option<String>,
    /// List prices, one per currency, sorted by currency.
    pub prices: Vec<Price>,
    /// Tax rate in percent (0–100).
    pub tax_rate: Decimal,
    /// Whether it is still sold.
    pub active: bool,
    /// Stock level, where the ERP keeps one.
    pub stock: Option<Decimal>,
    /// The ERP's id for it: a sync matches on it before the code.
    pub external_id: Option<String>,
    /// Creator.
    pub created_by: UserId,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updater.
    pub updated_by: UserId,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version: 1 on create, +1 per update.
    pub version: u64,
}

impl Product {
    /// The list price in `currency`, if it has one.
    ///
    /// ```
    /// use guanxi_core::commerce::{NewProduct, Price};
    /// use rust_decimal::Decimal;
    /// let p = NewProduct::new("SKU-1", "CRM 授权").price("CNY", Decimal::from(1999)).validate().unwrap();
    /// assert_eq!(p.prices[0], Price::new("CNY", Decimal::from(1999)));
    /// ```
    pub fn price_in(&self, currency: &str) -> Option<Decimal> {
        self.prices.iter().find(|p| p.currency == currency).map(|p| p.amount)
    }

    /// This product with `content` in place of its fields (id and creation kept; the write
    /// path stamps the version and the updater).
    pub fn with_content(&self, content: NewProduct) -> Product {
        Product {
            updated_by: self.updated_by.clone(),
            updated_at: self.updated_at,
            version: self.version,
            ..content.into_product(self.id, &self.created_by, self.created_at)
        }
    }

    /// The fields a sync compares: the product as sent, without id and bookkeeping.
    pub fn content(&self) -> NewProduct {
        NewProduct {
            code: self.code.clone(),
            name: self.name.clone(),
            category: self.category.clone(),
            unit: self.unit.clone(),
            prices: self.prices.clone(),
            tax_rate: self.tax_rate,
            active: self.active,
            stock: self.stock,
            external_id: self.external_id.clone(),
        }
    }
}

/// A product as created or synced: every field but the id and bookkeeping.
///
/// ```
/// use guanxi_core::commerce::NewProduct;
/// use rust_decimal::Decimal;
/// let p = NewProduct::new(" sku-1 ", "CRM 授权").category("软件").unit("套").tax_rate(Decimal::from(13));
/// let p = p.validate().unwrap();
/// assert_eq!((p.code.as_str(), p.active), ("sku-1", true));
/// let errs = NewProduct::new("", "x").tax_rate(Decimal::from(120)).validate().unwrap_err();
/// assert!(errs.field("code").is_some() && errs.field("tax_rate").is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct NewProduct {
    /// Code / SKU (required, at most 64 characters).
    pub code: String,
    /// Name (required).
    pub name: String,
    /// Category.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub category: Option<String>,
    /// Unit of sale.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub unit: Option<String>,
    /// List prices, at most one per currency.
    #[cfg_attr(feature = "uniffi", uniffi(default = []))]
    pub prices: Vec<Price>,
    /// Tax rate in percent (0–100).
    pub tax_rate: Decimal,
    /// Whether it is sold (default true).
    #[cfg_attr(feature = "uniffi", uniffi(default = true))]
    pub active: bool,
    /// Stock level.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub stock: Option<Decimal>,
    /// The ERP's id.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub external_id: Option<String>,
}

impl NewProduct {
    /// An active product with a code and a name, no prices, tax 0.
    pub fn new(code: &str, name: &str) -> NewProduct {
        NewProduct {
            code: code.to_owned(),
            name: name.to_owned(),
            category: None,
            unit: None,
            prices: Vec::new(),
            tax_rate: Decimal::ZERO,
            active: true,
            stock: None,
            external_id: None,
        }
    }

    /// Sets the category.
    pub fn category(mut self, category: &str) -> Self {
        self.category = Some(category.to_owned());
        self
    }

    /// Sets the unit.
    pub fn unit(mut self, unit: &str) -> Self {
        self.unit = Some(unit.to_owned());
        self
    }

    /// Adds a list price.
    pub fn price(mut self, currency: &str, amount: Decimal) -> Self {
        self.prices.push(Price::new(currency, amount));
        self
    }

    /// Sets the tax rate in percent.
    pub fn tax_rate(mut self, percent: Decimal) -> Self {
        self.tax_rate = percent;
        self
    }

    /// Sets the stock level.
    pub fn stock(mut self, stock: Decimal) -> Self {
        self.stock = Some(stock);
        self
    }

    /// Sets the ERP's id.
    pub fn external_id(mut self, id: &str) -> Self {
        self.external_id = Some(id.to_owned());
        self
    }

    /// Marks it no longer sold.
    pub fn inactive(mut self) -> Self {
        self.active = false;
        self
    }

    /// Checks every field, reporting all failures together; the checked product has its text
    /// folded, currencies upper-cased and prices sorted by currency.
    pub fn validate(self) -> Result<NewProduct, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let code = required_text(&mut errs, "code", &self.code, MAX_CODE);
        let name = required_text(&mut errs, "name", &self.name, limits::NAME);
        let category = optional_text(&mut errs, "category", self.category.as_deref(), limits::SHORT);
        let unit = optional_text(&mut errs, "unit", self.unit.as_deref(), limits::SHORT);
        let external_id = optional_text(&mut errs, "external_id", self.external_id.as_deref(), limits::SHORT);
        if self.prices.len() > MAX_PRICES {
            errs.push("prices", ValidationReason::TooLarge { max: MAX_PRICES as u64, unit: "prices".into() });
        }
        let mut prices: Vec<Price> = Vec::with_capacity(self.prices.len());
        for (i, p) in self.prices.iter().enumerate() {
            check_money(&mut errs, &format!("prices[{i}].amount"), p.amount);
            match currency_code(&p.currency) {
                Ok(c) if prices.iter().any(|q| q.currency == c) => errs.push(
                    format!("prices[{i}].currency"),
                    ValidationReason::Invalid { detail: format!("{c} is priced twice") },
                ),
                Ok(c) => prices.push(Price { currency: c, amount: p.amount.normalize() }),
                Err(crate::Error::Validation(e)) => errs.extend_nested(&format!("prices[{i}]"), e),
                Err(e) => {
                    errs.push(format!("prices[{i}].currency"), ValidationReason::Invalid { detail: e.to_string() })
                }
            }
        }
        prices.sort_by(|a, b| a.currency.cmp(&b.currency));
        if self.tax_rate < Decimal::ZERO || self.tax_rate > Decimal::ONE_HUNDRED {
            errs.push("tax_rate", ValidationReason::Invalid { detail: "must be a percentage from 0 to 100".into() });
        } else if self.tax_rate.normalize().scale() > MONEY_SCALE {
            errs.push(
                "tax_rate",
                ValidationReason::Invalid { detail: format!("has more than {MONEY_SCALE} decimal places") },
            );
        }
        if let Some(s) = self.stock
            && (s.normalize().scale() > MONEY_SCALE || s.abs() >= crate::sales::MAX_MONEY)
        {
            errs.push(
                "stock",
                ValidationReason::Invalid {
                    detail: format!("must be below 10^14 with at most {MONEY_SCALE} decimals"),
                },
            );
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(NewProduct {
            code,
            name,
            category,
            unit,
            prices,
            tax_rate: self.tax_rate.normalize(),
            active: self.active,
            stock: self.stock.map(|s| s.normalize()),
            external_id,
        })
    }

    /// The stored product this content becomes.
    pub fn into_product(self, id: ProductId, by: &UserId, at: DateTime<Utc>) -> Product {
        Product {
            id,
            code: self.code,
            name: self.name,
            category: self.category,
            unit: self.unit,
            prices: self.prices,
            tax_rate: self.tax_rate,
            active: self.active,
            stock: self.stock,
            external_id: self.external_id,
            created_by: by.clone(),
            created_at: at,
            updated_by: by.clone(),
            updated_at: at,
            version: 1,
        }
    }
}

/// Conditions on a product list; all combine with AND.
///
/// ```
/// use guanxi_core::commerce::ProductFilter;
/// let f = ProductFilter { active: Some(true), category: Some("软件".into()) };
/// assert_ne!(f, ProductFilter::default());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ProductFilter {
    /// Sold or not.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub active: Option<bool>,
    /// Category.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub category: Option<String>,
}

impl ProductFilter {
    /// Whether a product passes: the reference every backend's query reproduces.
    pub fn matches(&self, p: &Product) -> bool {
        self.active.is_none_or(|a| p.active == a)
            && self.category.as_ref().is_none_or(|c| p.category.as_ref() == Some(c))
    }
}
