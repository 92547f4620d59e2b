//! RFM (最近一次消费, 消费频率, 消费金额): each customer scored 1..=bins on recency, frequency and
//! monetary value by quantiles of the customers scored together, named by a configurable
//! mapping; and the churn warning of customers who stopped buying or slowed down.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Result, ValidationErrors, ValidationReason};
use crate::ids::CustomerId;

/// One customer's purchases reduced to what RFM, churn and lifetime value read: paid
/// purchases in one currency, grouped by the day they were made (several purchases on one day
/// are one purchase occasion, as `lifetimes` counts periods).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct CustomerPurchases {
    /// The customer.
    pub customer_id: CustomerId,
    /// The first day they bought.
    pub first_day: NaiveDate,
    /// The last day they bought.
    pub last_day: NaiveDate,
    /// Days with a purchase.
    pub days: u32,
    /// Purchases.
    pub purchases: u32,
    /// What they spent in all.
    pub total: Decimal,
    /// What they spent after their first day (the repeat purchases).
    pub repeat_total: Decimal,
    /// The last instant they bought.
    pub last_at: DateTime<Utc>,
}

impl CustomerPurchases {
    /// The BG/NBD history in days at `today`: repeat days, days from the first to the last,
    /// days from the first to today, the mean spend of a repeat day.
    ///
    /// ```
    /// use guanxi_core::analytics::CustomerPurchases;
    /// use guanxi_core::CustomerId;
    /// use rust_decimal::Decimal;
    /// let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    /// let c = CustomerPurchases {
    ///     customer_id: CustomerId(uuid::Uuid::nil()), first_day: d("2024-01-01"), last_day: d("2024-01-31"),
    ///     days: 3, purchases: 4, total: Decimal::from(400), repeat_total: Decimal::from(300),
    ///     last_at: "2024-01-31T10:00:00Z".parse().unwrap(),
    /// };
    /// let h = c.history(d("2024-03-01"));
    /// assert_eq!((h.frequency, h.recency, h.age, h.monetary), (2, 30.0, 60.0, 150.0));
    /// ```
    pub fn history(&self, today: NaiveDate) -> crate::analytics::PurchaseHistory {
        use rust_decimal::prelude::ToPrimitive;
        let frequency = self.days.saturating_sub(1);
        let days = |d: NaiveDate| (d - self.first_day).num_days().max(0) as f64;
        let monetary =
            if frequency > 0 { (self.repeat_total / Decimal::from(frequency)).to_f64().unwrap_or(0.0) } else { 0.0 };
        crate::analytics::PurchaseHistory {
            frequency,
            recency: if frequency > 0 { days(self.last_day) } else { 0.0 },
            age: days(today).max(days(self.last_day)),
            monetary,
        }
    }
}

/// A customer's RFM scores (each 1..=bins, higher is better: recent, frequent, big).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RfmScore {
    /// The customer.
    pub customer_id: CustomerId,
    /// Days since the last purchase.
    pub recency_days: u32,
    /// Purchases.
    pub frequency: u32,
    /// Spend.
    pub monetary: Decimal,
    /// Recency score (fewer days: higher).
    pub r: u8,
    /// Frequency score.
    pub f: u8,
    /// Monetary score.
    pub m: u8,
    /// The segment the mapping names (the first rule that matches; "others" when none does).
    pub segment: String,
}

/// A named RFM segment: the scores' ranges it takes (inclusive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RfmSegmentRule {
    /// Its name.
    pub name: String,
    /// Lowest recency score.
    pub r_min: u8,
    /// Highest recency score.
    pub r_max: u8,
    /// Lowest frequency score.
    pub f_min: u8,
    /// Highest frequency score.
    pub f_max: u8,
    /// Lowest monetary score.
    pub m_min: u8,
    /// Highest monetary score.
    pub m_max: u8,
}

impl RfmSegmentRule {
    /// A segment of the scores within these inclusive ranges.
    ///
    /// ```
    /// let s = guanxi_core::analytics::RfmSegmentRule::new("vip", (4, 5), (4, 5), (5, 5));
    /// assert_eq!((s.r_min, s.m_max), (4, 5));
    /// ```
    pub fn new(name: &str, r: (u8, u8), f: (u8, u8), m: (u8, u8)) -> RfmSegmentRule {
        RfmSegmentRule { name: name.to_owned(), r_min: r.0, r_max: r.1, f_min: f.0, f_max: f.1, m_min: m.0, m_max: m.1 }
    }

    fn matches(&self, r: u8, f: u8, m: u8) -> bool {
        (self.r_min..=self.r_max).contains(&r)
            && (self.f_min..=self.f_max).contains(&f)
            && (self.m_min..=self.m_max).contains(&m)
    }
}

/// How customers are scored: the number of quantile bins and the segments, first match wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct RfmConfig {
    /// Bins per score (2–10; default 5).
    pub bins: u8,
    /// The named segments, in the order they are tried.
    pub segments: Vec<RfmSegmentRule>,
}

impl Default for RfmConfig {
    /// Five bins and the usual segments: champions (R 4–5, F 4–5, M 4–5), loyal (R 3–5,
    /// F 4–5), potential loyalists (R 4–5, F 2–3), new (R 5, F 1), at risk (R 1–2, F 3–5),
    /// can't lose (R 1–2, F 5, M 5 — tried before at risk), hibernating (R 1–2, F 1–2).
    fn default() -> Self {
        RfmConfig {
            bins: 5,
            segments: vec![
                RfmSegmentRule::new("champions", (4, 5), (4, 5), (4, 5)),
                RfmSegmentRule::new("loyal", (3, 5), (4, 5), (1, 5)),
                RfmSegmentRule::new("potential_loyalists", (4, 5), (2, 3), (1, 5)),
                RfmSegmentRule::new("new", (5, 5), (1, 1), (1, 5)),
                RfmSegmentRule::new("cant_lose", (1, 2), (5, 5), (5, 5)),
                RfmSegmentRule::new("at_risk", (1, 2), (3, 5), (1, 5)),
                RfmSegmentRule::new("hibernating", (1, 2), (1, 2), (1, 5)),
            ],
        }
    }
}

impl RfmConfig {
    /// Checks the bins and every rule's ranges, all together.
    pub fn validate(&self) -> Result<()> {
        let mut errs = ValidationErrors::default();
        if !(2..=10).contains(&self.bins) {
            errs.push("bins", ValidationReason::Invalid { detail: "must be from 2 to 10".into() });
        }
        for (i, s) in self.segments.iter().enumerate() {
            if s.name.trim().is_empty() {
                errs.push(format!("segments[{i}].name"), ValidationReason::Required);
            }
            for (f, (lo, hi)) in [("r", (s.r_min, s.r_max)), ("f", (s.f_min, s.f_max)), ("m", (s.m_min, s.m_max))] {
                if lo < 1 || hi > self.bins || lo > hi {
                    let detail = format!("must be a range within 1..={}", self.bins);
                    errs.push(format!("segments[{i}].{f}"), ValidationReason::Invalid { detail });
                }
            }
        }
        errs.into_result(())
    }
}

/// The 1-based quantile bin of every value (ties share a bin: a value's bin is that of its
/// first position in sorted order), `higher_is_better` deciding the direction.
fn quantile_bins<T: PartialOrd + Copy>(values: &[T], bins: u8, higher_is_better: bool) -> Vec<u8> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| values[*a].partial_cmp(&values[*b]).unwrap_or(std::cmp::Ordering::Equal));
    let mut out = vec![1u8; n];
    let mut first_rank = 0;
    for (rank, &i) in order.iter().enumerate() {
        if rank > 0 && values[order[rank - 1]] < values[i] {
            first_rank = rank;
        }
        // Bins of equal size by rank: rank r of n falls in bin floor(r·bins/n) + 1.
        let bin = (first_rank * usize::from(bins) / n.max(1)) as u8 + 1;
        out[i] = if higher_is_better { bin } else { bins + 1 - bin };
    }
    out
}

/// Scores customers on recency (days from their last purchase to `today`), frequency
/// (purchases) and monetary value (spend), each by quantiles among them, and names each by the
/// first segment rule it matches.
///
/// ```
/// use guanxi_core::analytics::{CustomerPurchases, RfmConfig, rfm_scores};
/// use guanxi_core::CustomerId;
/// use rust_decimal::Decimal;
/// let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
/// let buyer = |n: u128, last: &str, purchases: u32, total: i64| CustomerPurchases {
///     customer_id: CustomerId(uuid::Uuid::from_u128(n)), first_day: d("2023-01-01"), last_day: d(last),
///     days: purchases, purchases, total: Decimal::from(total), repeat_total: Decimal::ZERO,
///     last_at: format!("{last}T00:00:00Z").parse().unwrap(),
/// };
/// let rows = [buyer(1, "2024-05-30", 12, 90_000), buyer(2, "2023-02-01", 1, 100), buyer(3, "2024-03-01", 4, 5_000)];
/// let scores = rfm_scores(&rows, d("2024-06-01"), &RfmConfig { bins: 3, segments: vec![] })?;
/// assert_eq!((scores[0].r, scores[0].f, scores[0].m), (3, 3, 3));
/// assert_eq!((scores[1].r, scores[1].f, scores[1].m), (1, 1, 1));
/// assert_eq!(scores[1].segment, "others");
/// # Ok::<(), guanxi_core::Error>(())
/// ```
pub fn rfm_scores(rows: &[CustomerPurchases], today: NaiveDate, config: &RfmConfig) -> Result<Vec<RfmScore>> {
    config.validate()?;
    let recency: Vec<u32> =
        rows.iter().map(|c| (today - c.last_day).num_days().clamp(0, i64::from(u32::MAX)) as u32).collect();
    let frequency: Vec<u32> = rows.iter().map(|c| c.purchases).collect();
    let monetary: Vec<Decimal> = rows.iter().map(|c| c.total).collect();
    let (r, f, m) = (
        quantile_bins(&recency, config.bins, false),
        quantile_bins(&frequency, config.bins, true),
        quantile_bins(&monetary, config.bins, true),
    );
    Ok(rows
        .iter()
        .enumerate()
        .map(|(i, c)| RfmScore {
            customer_id: c.customer_id,
            recency_days: recency[i],
            frequency: frequency[i],
            monetary: monetary[i],
            r: r[i],
            f: f[i],
            m: m[i],
            segment: config
                .segments
                .iter()
                .find(|s| s.matches(r[i], f[i], m[i]))
                .map_or_else(|| "others".to_owned(), |s| s.name.clone()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]
        /// Every score is within 1..=bins, and a larger value never scores lower (higher is
        /// better) — or higher (lower is better).
        #[test]
        fn quantile_bins_are_in_range_and_monotone(values in proptest::collection::vec(0u32..50, 1..60), bins in 2u8..=10) {
            let up = quantile_bins(&values, bins, true);
            let down = quantile_bins(&values, bins, false);
            for i in 0..values.len() {
                prop_assert!((1..=bins).contains(&up[i]) && (1..=bins).contains(&down[i]));
                for j in 0..values.len() {
                    if values[i] < values[j] {
                        prop_assert!(up[i] <= up[j] && down[i] >= down[j]);
                    }
                    if values[i] == values[j] {
                        prop_assert_eq!(up[i], up[j]);
                    }
                }
            }
        }
    }

    #[test]
    fn a_bad_config_names_every_problem() {
        let mut c = RfmConfig { bins: 11, ..RfmConfig::default() };
        c.segments[0].r_max = 12;
        c.segments[1].name = " ".into();
        let err = c.validate().unwrap_err();
        let Error::Validation(v) = err else { panic!("{err:?}") };
        let fields: Vec<&str> = v.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["bins", "segments[0].r", "segments[1].name"]);
    }
}
