//! `crm.analytics()`: purchase summaries, RFM and lifetime value, for Kotlin and Swift. The
//! summaries, scores, configuration and models are guanxi-core's own records.

use std::sync::Arc;

pub use guanxi::analytics::{BgNbd, CustomerPurchases, GammaGamma, RfmConfig, RfmScore};

use crate::commerce::PurchaseFilter;
use crate::{Decimal, Result, Uuid, handle};

/// What `lifetimeValue` computes: the currency whose paid purchases are read, months of value,
/// the monthly discount rate, the days ahead of `expectedPurchases`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct LifetimeValueOptions {
    #[uniffi(default = "CNY")]
    pub currency: String,
    #[uniffi(default = 12)]
    pub months: u32,
    #[uniffi(default = 0.01)]
    pub monthly_discount: f64,
    #[uniffi(default = 90)]
    pub horizon_days: u32,
}

/// One customer's predictions.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CustomerValue {
    pub customer_id: Uuid,
    pub frequency: u32,
    pub recency_days: f64,
    pub age_days: f64,
    pub p_alive: f64,
    pub churn_probability: f64,
    pub expected_purchases: f64,
    pub expected_value: Option<Decimal>,
    pub clv: Option<Decimal>,
}

/// The fitted models and every customer's predictions.
#[derive(Debug, Clone, uniffi::Record)]
pub struct LifetimeValueReport {
    pub purchases: BgNbd,
    pub log_likelihood: f64,
    pub spend: Option<GammaGamma>,
    pub customers: Vec<CustomerValue>,
}

handle! {
    /// `crm.analytics()`: customer analytics over the purchases the user may read.
    Analytics
}

#[uniffi::export]
impl Analytics {
    /// Every customer's paid purchases in `currency` reduced to first and last day, purchase
    /// days, purchases and spend, in customer id order.
    pub fn customer_purchases(&self, filter: PurchaseFilter, currency: String) -> Result<Vec<CustomerPurchases>> {
        Ok(self.inner.analytics().customer_purchases(&self.actor, &filter.into_core(), &currency)?)
    }

    /// RFM scores and segment names of the customers with paid purchases in `currency`.
    pub fn rfm(&self, filter: PurchaseFilter, currency: String, config: RfmConfig) -> Result<Vec<RfmScore>> {
        Ok(self.inner.analytics().rfm(&self.actor, &filter.into_core(), &currency, &config)?)
    }

    /// The default RFM configuration: five bins and the usual named segments.
    pub fn default_rfm_config(&self) -> RfmConfig {
        RfmConfig::default()
    }

    /// Fits BG/NBD and Gamma-Gamma and predicts P(alive), churn, expected purchases and the
    /// discounted lifetime value per customer.
    pub fn lifetime_value(&self, filter: PurchaseFilter, options: LifetimeValueOptions) -> Result<LifetimeValueReport> {
        let o = guanxi::LifetimeValueOptions {
            currency: options.currency,
            months: options.months,
            monthly_discount: options.monthly_discount,
            horizon_days: options.horizon_days,
        };
        let r = self.inner.analytics().lifetime_value(&self.actor, &filter.into_core(), &o)?;
        Ok(LifetimeValueReport {
            purchases: r.purchases,
            log_likelihood: r.log_likelihood,
            spend: r.spend,
            customers: r
                .customers
                .into_iter()
                .map(|c| CustomerValue {
                    customer_id: c.customer_id.0,
                    frequency: c.frequency,
                    recency_days: c.recency_days,
                    age_days: c.age_days,
                    p_alive: c.p_alive,
                    churn_probability: c.churn_probability,
                    expected_purchases: c.expected_purchases,
                    expected_value: c.expected_value,
                    clv: c.clv,
                })
                .collect(),
        })
    }
}

/// The analytics handle of a CRM.
pub(crate) fn analytics(inner: Arc<guanxi::Crm>, actor: guanxi::Actor) -> Arc<Analytics> {
    Arc::new(Analytics { inner, actor })
}
