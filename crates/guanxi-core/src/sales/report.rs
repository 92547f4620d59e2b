//! Sales analytics as pure functions: a store reduces its opportunities and stage history to
//! grouped [`SalesFacts`] (SQLite with `GROUP BY`, the memory store with
//! [`SalesFacts::from_records`]); [`SalesReport::from_facts`] turns them into the funnel, win
//! rate, cycle days, won amounts, forecast and velocity with exact decimal arithmetic.
//!
//! Time range semantics (`[from, to)`, each end optional):
//! - funnel, days in stage, loss reasons: opportunities *opened* in the range;
//! - win rate, cycle days, won amounts: opportunities *closed* in the range;
//! - forecast and velocity: opportunities open now whose expected close day falls in the
//!   range (those without a day are listed as unscheduled).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Opportunity, OpportunityFilter, Pipeline, StageHistoryEntry, StageKind};
use crate::access::RecordScope;
use crate::ids::{DepartmentId, UserId};

/// Decimal places of ratios and averages in reports.
pub const RATIO_SCALE: u32 = 4;

/// What a report covers.
///
/// ```
/// use guanxi_core::sales::SalesQuery;
/// let q = SalesQuery::new("standard").between("2024-01-01T00:00:00Z".parse().unwrap(), "2025-01-01T00:00:00Z".parse().unwrap());
/// assert!(q.in_range("2024-06-01T00:00:00Z".parse().unwrap()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesQuery {
    /// Pipeline key.
    pub pipeline: String,
    /// Start (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// End (exclusive).
    pub to: Option<DateTime<Utc>>,
    /// Currency; required when the opportunities matched use several.
    pub currency: Option<String>,
    /// Owner.
    pub owner: Option<UserId>,
    /// Department.
    pub department: Option<DepartmentId>,
    /// The records the caller may see (set by the facade).
    pub scope: Option<RecordScope>,
}

impl SalesQuery {
    /// Everything in a pipeline.
    pub fn new(pipeline: &str) -> SalesQuery {
        SalesQuery {
            pipeline: pipeline.to_owned(),
            from: None,
            to: None,
            currency: None,
            owner: None,
            department: None,
            scope: None,
        }
    }

    /// Restricts to `[from, to)`.
    pub fn between(mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        self.from = Some(from);
        self.to = Some(to);
        self
    }

    /// Restricts to one currency.
    pub fn currency(mut self, currency: &str) -> Self {
        self.currency = Some(currency.to_owned());
        self
    }

    /// Whether an instant is in the range.
    pub fn in_range(&self, t: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|e| t < e)
    }

    /// Whether an expected close day is in the range (compared as UTC days).
    pub fn day_in_range(&self, d: NaiveDate) -> bool {
        self.from.is_none_or(|f| d >= f.date_naive()) && self.to.is_none_or(|e| d < e.date_naive())
    }

    /// The opportunities the report reads, before the range: pipeline, owner, department, scope.
    pub fn filter(&self) -> OpportunityFilter {
        OpportunityFilter {
            pipeline: Some(self.pipeline.clone()),
            owner: self.owner.clone(),
            department: self.department.clone(),
            scope: self.scope.clone(),
            ..Default::default()
        }
    }
}

/// Opportunities opened in the range, grouped by current stage and furthest open stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenedGroup {
    /// Current stage.
    pub stage: String,
    /// Furthest open stage reached.
    pub furthest: String,
    /// How many.
    pub count: u64,
    /// Sum of amounts.
    pub amount: Decimal,
}

/// Completed stays in a stage (moves out of it) of opportunities opened in the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StayGroup {
    /// Stage left.
    pub stage: String,
    /// How many stays.
    pub count: u64,
    /// Their total length in seconds.
    pub seconds: i64,
}

/// Moves to a lost stage of opportunities opened in the range, by the stage left and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LossGroup {
    /// Stage left.
    pub stage: String,
    /// Reason given.
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// Opportunities closed in the range, by outcome and whole days from opening to closing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedGroup {
    /// Won (else lost).
    pub won: bool,
    /// Whole days open.
    pub days: i64,
    /// How many.
    pub count: u64,
    /// Sum of amounts.
    pub amount: Decimal,
}

/// A count and an amount under a key (owner, product, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct KeyedAmount {
    /// Key (empty for none).
    pub key: String,
    /// How many.
    pub count: u64,
    /// Sum of amounts.
    pub amount: Decimal,
}

/// Open opportunities by expected close month and probability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForecastGroup {
    /// `YYYY-MM`, or None when no close day is expected.
    pub month: Option<String>,
    /// Probability in percent.
    pub probability: Decimal,
    /// How many.
    pub count: u64,
    /// Sum of amounts.
    pub amount: Decimal,
}

/// A store's grouped reduction of the opportunities a [`SalesQuery`] matches, in one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesFacts {
    /// Opened in range.
    pub opened: Vec<OpenedGroup>,
    /// Completed stays.
    pub stays: Vec<StayGroup>,
    /// Losses.
    pub losses: Vec<LossGroup>,
    /// Closed in range.
    pub closed: Vec<ClosedGroup>,
    /// Won in range, by owner.
    pub won_by_owner: Vec<KeyedAmount>,
    /// Won in range, by product line (line totals).
    pub won_by_product: Vec<KeyedAmount>,
    /// Open now, by expected close month.
    pub open_by_month: Vec<ForecastGroup>,
}

/// Whole days from `from` to `to`: whole seconds between them (each instant truncated to
/// its second), floor-divided into 24-hour periods.
///
/// ```
/// use guanxi_core::sales::whole_days;
/// let t = |s: &str| s.parse().unwrap();
/// assert_eq!(whole_days(t("2024-05-01T08:00:00Z"), t("2024-05-03T07:59:59Z")), 1);
/// ```
pub fn whole_days(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to.timestamp() - from.timestamp()).div_euclid(86_400)
}

/// Whole seconds from `from` to `to` (each instant truncated to its second).
pub fn whole_seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    to.timestamp() - from.timestamp()
}

fn month_of(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

fn add<K: Ord>(map: &mut BTreeMap<K, (u64, Decimal)>, key: K, amount: Decimal) {
    let e = map.entry(key).or_insert((0, Decimal::ZERO));
    e.0 += 1;
    e.1 += amount;
}

impl SalesFacts {
    /// Sorts every group list into the order [`SalesFacts::from_records`] produces (by key;
    /// probabilities numerically), so facts from any backend compare equal.
    pub fn canonicalize(&mut self) {
        self.opened.sort_by(|a, b| (&a.stage, &a.furthest).cmp(&(&b.stage, &b.furthest)));
        self.stays.sort_by(|a, b| a.stage.cmp(&b.stage));
        self.losses.sort_by(|a, b| (&a.stage, &a.reason).cmp(&(&b.stage, &b.reason)));
        self.closed.sort_by_key(|g| (g.won, g.days));
        self.won_by_owner.sort_by(|a, b| a.key.cmp(&b.key));
        self.won_by_product.sort_by(|a, b| a.key.cmp(&b.key));
        self.open_by_month.sort_by(|a, b| (&a.month, a.probability).cmp(&(&b.month, b.probability)));
    }

    /// The reference reduction, record by record: what a backend's grouped queries must equal.
    /// `opportunities` are all of the store's; `history` gives one opportunity's stage history.
    pub fn from_records<'a>(
        p: &Pipeline,
        q: &SalesQuery,
        currency: &str,
        opportunities: impl IntoIterator<Item = &'a Opportunity>,
        history: impl Fn(&Opportunity) -> Vec<StageHistoryEntry>,
    ) -> SalesFacts {
        let filter = q.filter();
        let mut opened = BTreeMap::new();
        let mut stays: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        let mut losses: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut closed = BTreeMap::new();
        let mut by_owner = BTreeMap::new();
        let mut by_product = BTreeMap::new();
        let mut by_month = BTreeMap::new();
        let lost_stages: Vec<&str> =
            p.stages.iter().filter(|s| s.kind == StageKind::Lost).map(|s| s.key.as_str()).collect();
        for o in opportunities.into_iter().filter(|o| o.currency == currency && filter.matches(o)) {
            if q.in_range(o.opened_at) {
                add(&mut opened, (o.stage.clone(), o.furthest_stage.clone()), o.amount);
                for h in history(o) {
                    if let (Some(from), Some(entered)) = (&h.change.from, h.from_entered_at) {
                        let e = stays.entry(from.clone()).or_insert((0, 0));
                        e.0 += 1;
                        e.1 += whole_seconds(entered, h.at);
                        if lost_stages.contains(&h.change.to.as_str()) {
                            *losses.entry((from.clone(), h.lost_reason.clone().unwrap_or_default())).or_insert(0) += 1;
                        }
                    }
                }
            }
            match o.closed_at() {
                Some(c) if q.in_range(c) => {
                    let won = o.won_at.is_some();
                    add(&mut closed, (won, whole_days(o.opened_at, c)), o.amount);
                    if won {
                        add(&mut by_owner, o.owner.as_ref().map(|u| u.to_string()).unwrap_or_default(), o.amount);
                        for l in &o.lines {
                            add(&mut by_product, l.product_key().to_owned(), l.total());
                        }
                    }
                }
                Some(_) => {}
                None => {
                    if o.expected_close.is_none_or(|d| q.day_in_range(d)) {
                        add(&mut by_month, (o.expected_close.map(month_of), o.probability), o.amount);
                    }
                }
            }
        }
        let keyed = |m: BTreeMap<String, (u64, Decimal)>| {
            m.into_iter().map(|(key, (count, amount))| KeyedAmount { key, count, amount }).collect()
        };
        SalesFacts {
            opened: opened
                .into_iter()
                .map(|((stage, furthest), (count, amount))| OpenedGroup { stage, furthest, count, amount })
                .collect(),
            stays: stays.into_iter().map(|(stage, (count, seconds))| StayGroup { stage, count, seconds }).collect(),
            losses: losses.into_iter().map(|((stage, reason), count)| LossGroup { stage, reason, count }).collect(),
            closed: closed
                .into_iter()
                .map(|((won, days), (count, amount))| ClosedGroup { won, days, count, amount })
                .collect(),
            won_by_owner: keyed(by_owner),
            won_by_product: keyed(by_product),
            open_by_month: by_month
                .into_iter()
                .map(|((month, probability), (count, amount))| ForecastGroup { month, probability, count, amount })
                .collect(),
        }
    }
}

/// Lost opportunities of one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct LossReason {
    /// The reason as recorded.
    pub reason: String,
    /// How many were lost for it.
    pub count: u64,
}

/// One stage of the funnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct FunnelStage {
    /// Stage key.
    pub stage: String,
    /// Stage name.
    pub name: String,
    /// Open, won or lost.
    pub kind: StageKind,
    /// Opportunities (opened in range) now in this stage.
    pub count: u64,
    /// Their amount.
    pub amount: Decimal,
    /// How many reached this stage or beyond (open stages by pipeline order; a won
    /// opportunity passed every open stage; closed stages: those now in them).
    pub reached: u64,
    /// reached(next open stage, or won after the last) / reached(this); open stages only.
    pub step_conversion: Option<Decimal>,
    /// reached(this) / reached(first stage).
    pub top_conversion: Option<Decimal>,
    /// Mean length of completed stays in this stage, in days.
    pub avg_days_in_stage: Option<Decimal>,
    /// Lost straight out of this stage.
    pub lost_here: u64,
    /// Reasons of those losses, most frequent first.
    pub loss_reasons: Vec<LossReason>,
    /// The step conversion is below the average step conversion of the open stages.
    pub below_average: bool,
}

/// Days open of closed opportunities.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct CycleStats {
    /// How many.
    pub count: u64,
    /// Total amount.
    pub amount: Decimal,
    /// Mean whole days open.
    pub average_days: Option<Decimal>,
    /// Median whole days open (the mean of the middle two for an even count).
    pub median_days: Option<Decimal>,
}

/// Open pipeline expected to close in a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ForecastMonth {
    /// `YYYY-MM`, or None for unscheduled.
    pub month: Option<String>,
    /// How many.
    pub count: u64,
    /// Sum of amounts.
    pub amount: Decimal,
    /// Σ amount × probability / 100.
    pub weighted: Decimal,
}

/// The sales report of one pipeline in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SalesReport {
    /// Pipeline key.
    pub pipeline: String,
    /// Currency of every amount.
    pub currency: String,
    /// Stages in pipeline order.
    pub funnel: Vec<FunnelStage>,
    /// Won in range.
    pub won: CycleStats,
    /// Lost in range.
    pub lost: CycleStats,
    /// won / (won + lost).
    pub win_rate: Option<Decimal>,
    /// Won amount by owner, largest first.
    pub won_by_owner: Vec<KeyedAmount>,
    /// Won amount by product, largest first.
    pub won_by_product: Vec<KeyedAmount>,
    /// Forecast by expected close month (unscheduled last).
    pub forecast: Vec<ForecastMonth>,
    /// Open opportunities counted in the forecast.
    pub open_count: u64,
    /// Their amount.
    pub open_amount: Decimal,
    /// Their weighted amount.
    pub weighted_pipeline: Decimal,
    /// Sales velocity, amount per day: open count × win rate × average won amount / average
    /// won cycle days.
    pub velocity_per_day: Option<Decimal>,
}

fn ratio(a: Decimal, b: Decimal) -> Option<Decimal> {
    (!b.is_zero()).then(|| (a / b).round_dp(RATIO_SCALE))
}

fn cycle_stats(groups: &[&ClosedGroup]) -> CycleStats {
    let count: u64 = groups.iter().map(|g| g.count).sum();
    let amount = groups.iter().map(|g| g.amount).sum();
    if count == 0 {
        return CycleStats { count, amount, average_days: None, median_days: None };
    }
    let total: i128 = groups.iter().map(|g| i128::from(g.days) * i128::from(g.count)).sum();
    let mut by_days: Vec<(i64, u64)> = groups.iter().map(|g| (g.days, g.count)).collect();
    by_days.sort_unstable();
    // The k-th smallest value (0-based) from the histogram.
    let nth = |k: u64| {
        let mut seen = 0;
        by_days.iter().find(|(_, c)| {
            seen += c;
            seen > k
        })
    };
    let lo = nth((count - 1) / 2).map_or(0, |(d, _)| *d);
    let hi = nth(count / 2).map_or(0, |(d, _)| *d);
    CycleStats {
        count,
        amount,
        average_days: ratio(Decimal::from_i128_with_scale(total, 0), Decimal::from(count)),
        median_days: Some((Decimal::from(lo) + Decimal::from(hi)) / Decimal::TWO),
    }
}

fn sorted_by_amount(mut rows: Vec<KeyedAmount>) -> Vec<KeyedAmount> {
    rows.sort_by(|a, b| b.amount.cmp(&a.amount).then_with(|| a.key.cmp(&b.key)));
    rows
}

impl SalesReport {
    /// Computes the report from a store's facts.
    ///
    /// ```
    /// use guanxi_core::sales::{Pipeline, SalesFacts, SalesReport};
    /// let r = SalesReport::from_facts(&Pipeline::standard(), "CNY", &SalesFacts::default());
    /// assert_eq!((r.funnel.len(), r.win_rate), (6, None));
    /// ```
    pub fn from_facts(p: &Pipeline, currency: &str, f: &SalesFacts) -> SalesReport {
        let order = |key: &str| p.stages.iter().position(|s| s.key == key);
        let kind = |key: &str| p.stage(key).map(|s| s.kind);
        let open_stages: Vec<usize> =
            p.stages.iter().enumerate().filter(|(_, s)| s.kind == StageKind::Open).map(|(i, _)| i).collect();
        let won_now: u64 = f.opened.iter().filter(|g| kind(&g.stage) == Some(StageKind::Won)).map(|g| g.count).sum();
        let reached = |i: usize| -> u64 {
            match p.stages[i].kind {
                StageKind::Open => f
                    .opened
                    .iter()
                    .filter(|g| kind(&g.stage) == Some(StageKind::Won) || order(&g.furthest).is_some_and(|fi| fi >= i))
                    .map(|g| g.count)
                    .sum(),
                _ => f.opened.iter().filter(|g| g.stage == p.stages[i].key).map(|g| g.count).sum(),
            }
        };
        let top = open_stages.first().map_or(0, |i| reached(*i));
        let mut funnel: Vec<FunnelStage> = p
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let now: Vec<&OpenedGroup> = f.opened.iter().filter(|g| g.stage == s.key).collect();
                let r = reached(i);
                let step = match s.kind {
                    StageKind::Open => {
                        let next = open_stages.iter().find(|j| **j > i).map_or(won_now, |j| reached(*j));
                        ratio(Decimal::from(next), Decimal::from(r))
                    }
                    _ => None,
                };
                let stay = f.stays.iter().find(|g| g.stage == s.key);
                let mut reasons: Vec<LossReason> = f
                    .losses
                    .iter()
                    .filter(|g| g.stage == s.key)
                    .map(|g| LossReason { reason: g.reason.clone(), count: g.count })
                    .collect();
                reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
                FunnelStage {
                    stage: s.key.clone(),
                    name: s.name.clone(),
                    kind: s.kind,
                    count: now.iter().map(|g| g.count).sum(),
                    amount: now.iter().map(|g| g.amount).sum(),
                    reached: r,
                    step_conversion: step,
                    top_conversion: ratio(Decimal::from(r), Decimal::from(top)),
                    avg_days_in_stage: stay
                        .and_then(|g| ratio(Decimal::from(g.seconds), Decimal::from(g.count) * Decimal::from(86_400))),
                    lost_here: reasons.iter().map(|r| r.count).sum(),
                    loss_reasons: reasons,
                    below_average: false,
                }
            })
            .collect();
        let steps: Vec<Decimal> = funnel.iter().filter_map(|s| s.step_conversion).collect();
        if let Some(avg) = ratio(steps.iter().sum(), Decimal::from(steps.len())) {
            for s in &mut funnel {
                s.below_average = s.step_conversion.is_some_and(|c| c < avg);
            }
        }
        let won = cycle_stats(&f.closed.iter().filter(|g| g.won).collect::<Vec<_>>());
        let lost = cycle_stats(&f.closed.iter().filter(|g| !g.won).collect::<Vec<_>>());
        let win_rate = ratio(Decimal::from(won.count), Decimal::from(won.count + lost.count));
        let mut months: BTreeMap<(bool, Option<String>), ForecastMonth> = BTreeMap::new();
        for g in &f.open_by_month {
            let m = months.entry((g.month.is_none(), g.month.clone())).or_insert(ForecastMonth {
                month: g.month.clone(),
                count: 0,
                amount: Decimal::ZERO,
                weighted: Decimal::ZERO,
            });
            m.count += g.count;
            m.amount += g.amount;
            m.weighted += g.amount * g.probability / Decimal::ONE_HUNDRED;
        }
        let forecast: Vec<ForecastMonth> = months.into_values().collect();
        let open_count = forecast.iter().map(|m| m.count).sum();
        let open_amount = forecast.iter().map(|m| m.amount).sum();
        let weighted_pipeline = forecast.iter().map(|m| m.weighted).sum();
        let velocity_per_day = match (win_rate, ratio(won.amount, Decimal::from(won.count)), won.average_days) {
            (Some(w), Some(avg_amount), Some(days)) if !days.is_zero() => {
                Some((Decimal::from(open_count) * w * avg_amount / days).round_dp(RATIO_SCALE))
            }
            _ => None,
        };
        SalesReport {
            pipeline: p.key.clone(),
            currency: currency.to_owned(),
            funnel,
            won,
            lost,
            win_rate,
            won_by_owner: sorted_by_amount(f.won_by_owner.clone()),
            won_by_product: sorted_by_amount(f.won_by_product.clone()),
            forecast,
            open_count,
            open_amount,
            weighted_pipeline,
            velocity_per_day,
        }
    }
}
