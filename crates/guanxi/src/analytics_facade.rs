//! Customer analytics through the facade: per-customer purchase summaries, RFM scores and
//! lifetime value, over the purchases the actor may read (any customer filter — a saved
//! segment's, a region's — narrows them further).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use guanxi_core::analytics::{
    BgNbd, CustomerPurchases, GammaGamma, RfmConfig, RfmScore, customer_lifetime_value, rfm_scores,
};
use guanxi_core::commerce::{PurchaseFilter, PurchaseStatus};
use guanxi_core::rust_decimal::Decimal;
use guanxi_core::rust_decimal::prelude::FromPrimitive;
use guanxi_core::{Actor, CustomerId, Error, Result, ValidationReason};

use crate::handles::Analytics;

/// What [`Analytics::lifetime_value`] computes and over what.
///
/// ```
/// let o = guanxi::LifetimeValueOptions::default();
/// assert_eq!((o.currency.as_str(), o.months, o.horizon_days), ("CNY", 12, 90));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LifetimeValueOptions {
    /// The currency whose paid purchases are read.
    pub currency: String,
    /// Months of lifetime value.
    pub months: u32,
    /// Discount rate a month (0.01: 1%).
    pub monthly_discount: f64,
    /// Days ahead of `expected_purchases`.
    pub horizon_days: u32,
}

impl Default for LifetimeValueOptions {
    fn default() -> Self {
        LifetimeValueOptions { currency: "CNY".into(), months: 12, monthly_discount: 0.01, horizon_days: 90 }
    }
}

/// One customer's predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerValue {
    /// The customer.
    pub customer_id: CustomerId,
    /// Repeat purchase days.
    pub frequency: u32,
    /// Days from the first purchase to the last.
    pub recency_days: f64,
    /// Days from the first purchase to today.
    pub age_days: f64,
    /// The probability the customer is still a customer.
    pub p_alive: f64,
    /// 1 − `p_alive`.
    pub churn_probability: f64,
    /// Purchase days expected within the horizon.
    pub expected_purchases: f64,
    /// The expected value of a purchase day (repeat buyers; none without a spend model).
    pub expected_value: Option<Decimal>,
    /// Discounted lifetime value over the months asked (none without a spend model).
    pub clv: Option<Decimal>,
}

/// The fitted models and every customer's predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct LifetimeValueReport {
    /// BG/NBD, in days.
    pub purchases: BgNbd,
    /// Its mean log-likelihood.
    pub log_likelihood: f64,
    /// Gamma-Gamma, when some customers bought more than once.
    pub spend: Option<GammaGamma>,
    /// Per customer, in id order.
    pub customers: Vec<CustomerValue>,
}

/// One customer's purchase days (spend and purchases each) and last instant, as read.
type Buyer = (BTreeMap<NaiveDate, (Decimal, u32)>, chrono::DateTime<chrono::Utc>);

fn money(v: f64) -> Option<Decimal> {
    Decimal::from_f64(v).map(|d| d.round_dp(guanxi_core::sales::MONEY_SCALE))
}

impl Analytics<'_> {
    /// Every customer's paid purchases in `currency` reduced to first and last day, purchase
    /// days, purchases and spend: over the purchases `filter` selects that the actor may read,
    /// in customer id order.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::commerce::{NewPurchase, PurchaseFilter};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// let day = chrono::Duration::days(1);
    /// let orders = (0..3).map(|i| NewPurchase::new(c.id, crm.now() - day * (10 * i)).amount(100.into())).collect();
    /// crm.commerce().purchases().record(&alice, orders)?;
    /// let s = crm.analytics().customer_purchases(&alice, &PurchaseFilter::default(), "CNY")?;
    /// assert_eq!((s[0].days, s[0].total, s[0].repeat_total), (3, 300.into(), 200.into()));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn customer_purchases(
        &self,
        actor: &Actor,
        filter: &PurchaseFilter,
        currency: &str,
    ) -> Result<Vec<CustomerPurchases>> {
        let currency = guanxi_core::sales::currency_code(currency)?;
        let filter = PurchaseFilter { status: Some(PurchaseStatus::Paid), currency: Some(currency), ..filter.clone() };
        // Authorized once: the pages are read from the store under the scoped filter.
        let filter = self.crm.commerce().purchases().scoped(actor, &filter)?;
        let offset = self.crm.code_offset;
        // Per customer: each purchase day's spend and purchases, and the last instant.
        let mut by_customer: HashMap<CustomerId, Buyer> = HashMap::new();
        let mut page = guanxi_core::PageRequest::first(1_000);
        loop {
            let p = self.crm.store.list_purchases(&filter, &page)?;
            for purchase in &p.items {
                let day = purchase.at.with_timezone(&offset).date_naive();
                let entry = by_customer.entry(purchase.customer_id).or_insert_with(|| (BTreeMap::new(), purchase.at));
                let d = entry.0.entry(day).or_insert((Decimal::ZERO, 0));
                d.0 += purchase.amount;
                d.1 += 1;
                entry.1 = entry.1.max(purchase.at);
            }
            match p.next {
                Some(next) => page = guanxi_core::PageRequest::after(next, 1_000),
                None => break,
            }
        }
        let mut out: Vec<CustomerPurchases> = by_customer
            .into_iter()
            .filter_map(|(customer_id, (days, last_at))| {
                let (&first_day, &(first_total, _)) = days.iter().next()?;
                let (&last_day, _) = days.iter().next_back()?;
                let total: Decimal = days.values().map(|(t, _)| *t).sum();
                Some(CustomerPurchases {
                    customer_id,
                    first_day,
                    last_day,
                    days: days.len() as u32,
                    purchases: days.values().map(|(_, n)| *n).sum(),
                    total,
                    repeat_total: total - first_total,
                    last_at,
                })
            })
            .collect();
        out.sort_by_key(|c| c.customer_id);
        Ok(out)
    }

    /// RFM scores of the customers with paid purchases in `currency` (see
    /// [`rfm_scores`]), at the clock's today.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::analytics::RfmConfig;
    /// use guanxi::commerce::{NewPurchase, PurchaseFilter};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// for (name, amount) in [("甲", 100), ("乙", 9_000)] {
    ///     let c = crm.customers().create(&alice, NewCustomer::new(name))?;
    ///     crm.commerce().purchases().record(&alice, vec![NewPurchase::new(c.id, crm.now()).amount(amount.into())])?;
    /// }
    /// let scores = crm.analytics().rfm(&alice, &PurchaseFilter::default(), "CNY", &RfmConfig { bins: 2, segments: vec![] })?;
    /// assert_eq!(scores.iter().map(|s| s.m).collect::<Vec<_>>(), [1, 2]);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn rfm(
        &self,
        actor: &Actor,
        filter: &PurchaseFilter,
        currency: &str,
        config: &RfmConfig,
    ) -> Result<Vec<RfmScore>> {
        config.validate()?;
        let rows = self.customer_purchases(actor, filter, currency)?;
        let today = self.crm.clock.now().with_timezone(&self.crm.code_offset).date_naive();
        rfm_scores(&rows, today, config)
    }

    /// Fits BG/NBD (purchase days) and, when some customers bought on more than one day,
    /// Gamma-Gamma (spend per day) to the customers with paid purchases in the options'
    /// currency, and predicts for each: P(alive), churn probability, purchases expected within
    /// the horizon, expected value and discounted lifetime value.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::commerce::{NewPurchase, PurchaseFilter};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let day = chrono::Duration::days(1);
    /// for i in 0..40i32 {
    ///     let c = crm.customers().create(&alice, NewCustomer::new(&format!("客户{i}")))?;
    ///     let orders = (0..(i % 4 + 1)).map(|k| NewPurchase::new(c.id, crm.now() - day * (i * 3 + k * 11 + 1)).amount((100 + i * 10).into())).collect();
    ///     crm.commerce().purchases().record(&alice, orders)?;
    /// }
    /// let r = crm.analytics().lifetime_value(&alice, &PurchaseFilter::default(), &LifetimeValueOptions::default())?;
    /// assert_eq!(r.customers.len(), 40);
    /// assert!(r.customers.iter().all(|c| (0.0..=1.0).contains(&c.p_alive)));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn lifetime_value(
        &self,
        actor: &Actor,
        filter: &PurchaseFilter,
        options: &LifetimeValueOptions,
    ) -> Result<LifetimeValueReport> {
        let mut errs = guanxi_core::ValidationErrors::default();
        if options.months == 0 || options.months > 600 {
            errs.push("months", ValidationReason::Invalid { detail: "must be from 1 to 600".into() });
        }
        if !options.monthly_discount.is_finite() || !(0.0..1.0).contains(&options.monthly_discount) {
            errs.push("monthly_discount", ValidationReason::Invalid { detail: "must be from 0 to below 1".into() });
        }
        if options.horizon_days == 0 || options.horizon_days > 36_500 {
            errs.push("horizon_days", ValidationReason::Invalid { detail: "must be from 1 to 36,500".into() });
        }
        errs.into_result(())?;
        let rows = self.customer_purchases(actor, filter, &options.currency)?;
        if rows.is_empty() {
            return Err(Error::invalid(
                "purchases",
                ValidationReason::Invalid { detail: format!("no paid purchases in {}", options.currency) },
            ));
        }
        let today = self.crm.clock.now().with_timezone(&self.crm.code_offset).date_naive();
        let histories: Vec<_> = rows.iter().map(|c| c.history(today)).collect();
        let fitted = BgNbd::fit(&histories)?;
        let spend =
            if histories.iter().any(|h| h.frequency > 0) { Some(GammaGamma::fit(&histories)?.model) } else { None };
        let bg = fitted.model;
        let customers = rows
            .iter()
            .zip(&histories)
            .map(|(c, h)| {
                let p_alive = bg.probability_alive(h);
                CustomerValue {
                    customer_id: c.customer_id,
                    frequency: h.frequency,
                    recency_days: h.recency,
                    age_days: h.age,
                    p_alive,
                    churn_probability: 1.0 - p_alive,
                    expected_purchases: bg.expected_purchases(f64::from(options.horizon_days), h),
                    expected_value: spend
                        .filter(|_| h.frequency > 0)
                        .and_then(|gg| money(gg.expected_average_value(h.frequency, h.monetary))),
                    clv: spend.filter(|_| h.frequency > 0).and_then(|gg| {
                        money(customer_lifetime_value(&bg, &gg, h, options.months, options.monthly_discount, 30.0))
                    }),
                }
            })
            .collect();
        Ok(LifetimeValueReport { purchases: bg, log_likelihood: fitted.log_likelihood, spend, customers })
    }
}
