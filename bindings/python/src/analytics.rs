//! `crm.analytics`: per-customer purchase summaries, RFM scores and lifetime value, as tables.

use std::collections::BTreeMap;

use guanxi::analytics::{RfmConfig, RfmSegmentRule};
use guanxi::commerce::PurchaseFilter;
use guanxi::{CustomerId, LifetimeValueOptions};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::PyCrm;
use crate::arrow::{Columns, Table, arrow_err};
use crate::convert::*;

fn filter(
    customer_id: Option<&Bound<'_, PyAny>>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> PyResult<PurchaseFilter> {
    let customer_id = customer_id.map(|v| uuid_from(v, "customer_id").map(CustomerId)).transpose()?;
    Ok(PurchaseFilter { customer_id, from: since, to: until, ..Default::default() })
}

/// `segments=[{"name": "vip", "r": (4, 5), "f": (4, 5), "m": (5, 5)}, ...]`.
fn segment_rules(v: &Bound<'_, PyAny>) -> PyResult<Vec<RfmSegmentRule>> {
    let mut problems = Problems::default();
    let mut out = Vec::new();
    for (i, item) in v.try_iter()?.enumerate() {
        let mut inner = Problems::default();
        let d = item.and_then(|v| Ok(v.cast_into::<PyDict>()?));
        if let Some(d) = inner.keep("", d) {
            let mut rule = RfmSegmentRule::new("", (1, 5), (1, 5), (1, 5));
            for (key, value) in entries(Some(&d), &mut inner) {
                match key.as_str() {
                    "name" => rule.name = inner.keep("name", text(&value)).unwrap_or_default(),
                    "r" | "f" | "m" => {
                        if let Some((lo, hi)) = inner.keep(&key, value.extract::<(u8, u8)>()) {
                            match key.as_str() {
                                "r" => (rule.r_min, rule.r_max) = (lo, hi),
                                "f" => (rule.f_min, rule.f_max) = (lo, hi),
                                _ => (rule.m_min, rule.m_max) = (lo, hi),
                            }
                        }
                    }
                    other => inner.unknown_key(other, &["name", "r", "f", "m"]),
                }
            }
            out.push(rule);
        }
        problems.nest(&format!("segments[{i}]"), inner);
    }
    problems.result(out)
}

/// What `lifetime_value` fitted and predicted: the BG/NBD parameters (days) and, when some
/// customers bought on more than one day, the Gamma-Gamma ones; per customer a table.
#[pyclass(module = "guanxi._guanxi", frozen, get_all)]
pub struct LifetimeValue {
    purchases_model: BTreeMap<String, f64>,
    spend_model: Option<BTreeMap<String, f64>>,
    log_likelihood: f64,
    customers: Py<Table>,
}

#[pymethods]
impl LifetimeValue {
    fn __repr__(&self) -> String {
        Python::attach(|py| {
            format!(
                "LifetimeValue(customers={}, log_likelihood={:.6})",
                self.customers.bind(py).len().unwrap_or(0),
                self.log_likelihood
            )
        })
    }
}

/// `crm.analytics`: customer analytics over the purchases the user may read.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Analytics {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Analytics {
    /// Every customer's paid purchases in `currency` reduced to first and last day, purchase
    /// days, purchases and spend (exact decimals), as a table.
    #[pyo3(signature = (*, currency = "CNY", customer_id = None, since = None, until = None))]
    fn customer_purchases(
        &self,
        py: Python<'_>,
        currency: &str,
        customer_id: Option<&Bound<'_, PyAny>>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> PyResult<Table> {
        let f = filter(customer_id, since, until)?;
        let rows = self.crm.get().run(py, |c, a| c.analytics().customer_purchases(a, &f, currency))?;
        Columns::new(&rows)
            .text("customer_id", |r| Some(r.customer_id.to_string()))
            .date("first_day", |r| Some(r.first_day))
            .date("last_day", |r| Some(r.last_day))
            .count("days", |r| u64::from(r.days))
            .count("purchases", |r| u64::from(r.purchases))
            .decimal("total", |r| Some(r.total))
            .map_err(arrow_err)?
            .decimal("repeat_total", |r| Some(r.repeat_total))
            .map_err(arrow_err)?
            .time("last_at", |r| Some(r.last_at))
            .finish()
            .map_err(arrow_err)
    }

    /// RFM scores (1..=`bins`, higher is better) and segment names of the customers with paid
    /// purchases in `currency`. `segments` replaces the default mapping (champions, loyal,
    /// potential_loyalists, new, cant_lose, at_risk, hibernating): dicts of a name and inclusive
    /// (low, high) ranges of "r", "f" and "m"; the first that matches names a customer.
    #[pyo3(signature = (*, currency = "CNY", bins = 5, segments = None, customer_id = None, since = None, until = None))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn rfm(
        &self,
        py: Python<'_>,
        currency: &str,
        bins: u8,
        segments: Option<&Bound<'_, PyAny>>,
        customer_id: Option<&Bound<'_, PyAny>>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> PyResult<Table> {
        let mut config = RfmConfig { bins, ..RfmConfig::default() };
        if let Some(s) = segments {
            config.segments = segment_rules(s)?;
        }
        let f = filter(customer_id, since, until)?;
        let rows = self.crm.get().run(py, |c, a| c.analytics().rfm(a, &f, currency, &config))?;
        Columns::new(&rows)
            .text("customer_id", |r| Some(r.customer_id.to_string()))
            .count("recency_days", |r| u64::from(r.recency_days))
            .count("frequency", |r| u64::from(r.frequency))
            .decimal("monetary", |r| Some(r.monetary))
            .map_err(arrow_err)?
            .count("r", |r| u64::from(r.r))
            .count("f", |r| u64::from(r.f))
            .count("m", |r| u64::from(r.m))
            .text("segment", |r| Some(&r.segment))
            .finish()
            .map_err(arrow_err)
    }

    /// Fits BG/NBD and Gamma-Gamma to the customers with paid purchases in `currency` and
    /// predicts, per customer: P(alive), churn probability, purchase days expected within
    /// `horizon_days`, the expected value of one, and the lifetime value over `months`
    /// discounted at `monthly_discount` (probabilities and counts as floats, money as exact
    /// decimals).
    #[pyo3(signature = (*, currency = "CNY", months = 12, monthly_discount = 0.01, horizon_days = 90, customer_id = None, since = None, until = None))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn lifetime_value(
        &self,
        py: Python<'_>,
        currency: &str,
        months: u32,
        monthly_discount: f64,
        horizon_days: u32,
        customer_id: Option<&Bound<'_, PyAny>>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> PyResult<LifetimeValue> {
        let options = LifetimeValueOptions { currency: currency.to_owned(), months, monthly_discount, horizon_days };
        let f = filter(customer_id, since, until)?;
        let r = self.crm.get().run(py, |c, a| c.analytics().lifetime_value(a, &f, &options))?;
        let customers = Columns::new(&r.customers)
            .text("customer_id", |c| Some(c.customer_id.to_string()))
            .count("frequency", |c| u64::from(c.frequency))
            .float("recency_days", |c| Some(c.recency_days))
            .float("age_days", |c| Some(c.age_days))
            .float("p_alive", |c| Some(c.p_alive))
            .float("churn_probability", |c| Some(c.churn_probability))
            .float("expected_purchases", |c| Some(c.expected_purchases))
            .decimal("expected_value", |c| c.expected_value)
            .map_err(arrow_err)?
            .decimal("clv", |c| c.clv)
            .map_err(arrow_err)?
            .finish()
            .map_err(arrow_err)?;
        let m = r.purchases;
        Ok(LifetimeValue {
            purchases_model: [("r", m.r), ("alpha", m.alpha), ("a", m.a), ("b", m.b)]
                .map(|(k, v)| (k.to_owned(), v))
                .into(),
            spend_model: r.spend.map(|g| [("p", g.p), ("q", g.q), ("v", g.v)].map(|(k, v)| (k.to_owned(), v)).into()),
            log_likelihood: r.log_likelihood,
            customers: Py::new(py, customers)?,
        })
    }
}
