//! Sales pipelines (销售漏斗): ordered stages with kinds, default win probabilities, allowed
//! transitions, exit requirements and rotting thresholds; opportunity amounts from exact
//! product lines; and the stage-move rule that every change of stage goes through.
//!
//! Pure rules only: storage and the `Crm` facade build on them.
//!
//! ```
//! use guanxi_core::sales::{Pipeline, SalesState, ProbabilitySource};
//! let p = Pipeline::standard();
//! let mut s = SalesState::new(&p, rust_decimal::Decimal::ZERO); // no amount yet
//! assert_eq!((s.stage.as_str(), s.probability.to_string().as_str()), ("lead", "10"));
//! s = p.move_to(&s, "intent", None)?.0;
//! assert_eq!(s.probability.to_string(), "30"); // the stage default, recorded as such
//! assert_eq!(s.probability_source, ProbabilitySource::StageDefault);
//! assert!(p.move_to(&s, "won", None).is_err()); // leaving 意向 needs an amount
//! # Ok::<(), guanxi_core::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ValidationErrors, ValidationReason};
use crate::macros::vocabulary;
use crate::normalize::fold_text;

mod lead;
mod opportunity;
mod report;
mod task;

pub use lead::{
    AssignmentRule, ConversionMatch, GradeRule, Lead, LeadCondition, LeadConversion, LeadFilter, LeadGrade, LeadRules,
    LeadStatus, NewLead, ValidLead, conversion_match,
};
pub(crate) use opportunity::check_money;
pub use opportunity::{
    DEFAULT_CURRENCY, MAX_MONEY, MAX_PAST_MOVES, MONEY_SCALE, Milestone, NewOpportunity, Opportunity,
    OpportunityFilter, OpportunityPatch, PastMove, StageHistoryEntry, currency_code,
};
pub use report::{
    ClosedGroup, CycleStats, ForecastGroup, ForecastMonth, FunnelStage, KeyedAmount, LossGroup, LossReason,
    OpenedGroup, RATIO_SCALE, SalesFacts, SalesQuery, SalesReport, StayGroup, whole_days, whole_seconds,
};
pub use task::{Agenda, AgendaItem, NewTask, Task, TaskFilter, agenda};

vocabulary! {
    /// Whether a stage is still in play or closes the opportunity.
    ///
    /// ```
    /// use guanxi_core::sales::StageKind;
    /// assert_eq!("赢单".parse::<StageKind>().unwrap(), StageKind::Won);
    /// ```
    pub enum StageKind {
        /// In progress.
        Open = "open" / "进行中",
        /// Closed won.
        Won = "won" / "赢单",
        /// Closed lost.
        Lost = "lost" / "丢单",
    }
}

vocabulary! {
    /// Where an opportunity's probability comes from: the explicit, recorded rule.
    ///
    /// ```
    /// use guanxi_core::sales::ProbabilitySource;
    /// assert_eq!(ProbabilitySource::Manual.label_zh(), "手动");
    /// ```
    pub enum ProbabilitySource {
        /// The current stage's default: it follows every stage move.
        StageDefault = "stage_default" / "阶段默认",
        /// Set by hand: kept across open stages until reset; closing sets 100 or 0.
        Manual = "manual" / "手动",
    }
}

/// Fields an exit requirement may name.
pub const REQUIRABLE_FIELDS: &[&str] = &["amount", "expected_close", "lines", "contact"];

/// One stage of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Stable key, unique in the pipeline.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Open, won or lost.
    pub kind: StageKind,
    /// Default win probability in percent, 0–100.
    pub probability: Decimal,
    /// Fields (see [`REQUIRABLE_FIELDS`]) that must be set before an opportunity leaves this stage.
    pub exit_requirements: BTreeSet<String>,
    /// Days without activity after which an opportunity here is rotting.
    pub rotting_days: Option<u32>,
}

impl Stage {
    /// A stage with no exit requirements or rotting threshold.
    pub fn new(key: &str, name: &str, kind: StageKind, probability: u32) -> Stage {
        Stage {
            key: key.to_owned(),
            name: name.to_owned(),
            kind,
            probability: Decimal::from(probability),
            exit_requirements: BTreeSet::new(),
            rotting_days: None,
        }
    }

    /// Requires `field` before leaving the stage.
    pub fn requires(mut self, field: &str) -> Stage {
        self.exit_requirements.insert(field.to_owned());
        self
    }

    /// Sets the rotting threshold.
    pub fn rots_after(mut self, days: u32) -> Stage {
        self.rotting_days = Some(days);
        self
    }
}

/// An ordered list of stages and the moves allowed between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Stable key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Stages in order; the first open stage is where opportunities start.
    pub stages: Vec<Stage>,
    /// Allowed moves by stage key. A stage absent here follows the default: from an open
    /// stage to any other stage; from a closed stage, nowhere.
    pub transitions: BTreeMap<String, BTreeSet<String>>,
    /// Reasons a lost opportunity may give (e.g. 价格偏高, 选择竞品).
    pub lost_reasons: Vec<String>,
}

/// The sales-relevant state of an opportunity: what a stage move reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesState {
    /// Current stage key.
    pub stage: String,
    /// Win probability in percent.
    pub probability: Decimal,
    /// Where the probability comes from.
    pub probability_source: ProbabilitySource,
    /// Amount (the sum of product lines when there are lines).
    pub amount: Decimal,
    /// Fields currently set, for exit requirements (`amount` counts when non-zero).
    pub set_fields: BTreeSet<String>,
    /// Why it was lost, once lost.
    pub lost_reason: Option<String>,
}

impl SalesState {
    /// A new opportunity of `amount` in the pipeline's first open stage, at its default probability.
    pub fn new(p: &Pipeline, amount: Decimal) -> SalesState {
        let first = p.stages.iter().find(|s| s.kind == StageKind::Open);
        SalesState {
            stage: first.map(|s| s.key.clone()).unwrap_or_default(),
            probability: first.map_or(Decimal::ZERO, |s| s.probability),
            probability_source: ProbabilitySource::StageDefault,
            amount,
            set_fields: if amount.is_zero() { BTreeSet::new() } else { ["amount".to_owned()].into() },
            lost_reason: None,
        }
    }
}

/// One entry of an opportunity's append-only stage history: the move and the amount and
/// probability at that moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct StageMove {
    /// From (None for the creation entry).
    pub from: Option<String>,
    /// To.
    pub to: String,
    /// Amount at the moment of the move.
    pub amount: Decimal,
    /// Probability after the move.
    pub probability: Decimal,
}

impl Pipeline {
    /// The default pipeline of the seeds: 线索 10% → 意向 30% → 方案 50% → 谈判 70% →
    /// 成交 100% / 丢单 0%. Leaving 意向 needs an amount, leaving 方案 an expected close date.
    pub fn standard() -> Pipeline {
        Pipeline {
            key: "standard".into(),
            name: "标准销售流程".into(),
            stages: vec![
                Stage::new("lead", "线索", StageKind::Open, 10).rots_after(14),
                Stage::new("intent", "意向", StageKind::Open, 30).requires("amount").rots_after(14),
                Stage::new("proposal", "方案", StageKind::Open, 50).requires("expected_close").rots_after(21),
                Stage::new("negotiation", "谈判", StageKind::Open, 70).rots_after(21),
                Stage::new("won", "成交", StageKind::Won, 100),
                Stage::new("lost", "丢单", StageKind::Lost, 0),
            ],
            transitions: BTreeMap::new(),
            lost_reasons: ["价格偏高", "选择竞品", "需求取消", "预算不足", "失去联系"].map(String::from).to_vec(),
        }
    }

    /// Overrides the probability by hand (0–100), recorded as [`ProbabilitySource::Manual`];
    /// `None` returns to the stage default. A closed opportunity's probability is fixed.
    pub fn set_probability(&self, s: &SalesState, percent: Option<Decimal>) -> Result<SalesState> {
        let stage = self
            .stage(&s.stage)
            .ok_or_else(|| Error::invalid("stage", ValidationReason::not_allowed(&s.stage, self.stage_keys())))?;
        if stage.kind != StageKind::Open {
            return Err(Error::InvalidState(format!(
                "the probability of a closed opportunity ({}) is fixed",
                stage.name
            )));
        }
        Ok(match percent {
            Some(p) if p < Decimal::ZERO || p > Decimal::ONE_HUNDRED => {
                return Err(Error::invalid(
                    "probability",
                    ValidationReason::Invalid { detail: "must be 0–100".into() },
                ));
            }
            Some(p) => SalesState { probability: p, probability_source: ProbabilitySource::Manual, ..s.clone() },
            None => SalesState {
                probability: stage.probability,
                probability_source: ProbabilitySource::StageDefault,
                ..s.clone()
            },
        })
    }

    /// The keys of the stages, in order: what a stage argument may name.
    ///
    /// ```
    /// let p = guanxi_core::sales::Pipeline::standard();
    /// assert_eq!(p.stage_keys().next(), Some("lead"));
    /// ```
    pub fn stage_keys(&self) -> impl Iterator<Item = &str> {
        self.stages.iter().map(|s| s.key.as_str())
    }

    /// A stage by key.
    pub fn stage(&self, key: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.key == key)
    }

    /// The first open stage: where opportunities start by default.
    pub fn first_open(&self) -> Option<&Stage> {
        self.stages.iter().find(|s| s.kind == StageKind::Open)
    }

    /// Of two stage keys, the one further along the pipeline among open stages: what an
    /// opportunity's furthest stage becomes after entering `entered` (closed stages leave it).
    pub fn further<'a>(&self, furthest: &'a str, entered: &'a str) -> &'a str {
        let pos = |k: &str| self.stages.iter().position(|s| s.key == k && s.kind == StageKind::Open);
        match (pos(furthest), pos(entered)) {
            (Some(a), Some(b)) if b > a => entered,
            (None, Some(_)) => entered,
            _ => furthest,
        }
    }

    /// Checks the definition: keys unique and non-empty, probabilities 0–100, at least one
    /// open, one won and one lost stage, known requirement fields and transition targets.
    pub fn validate(&self) -> Result<()> {
        let mut errs = ValidationErrors::default();
        if fold_text(&self.key).is_empty() {
            errs.push("key", ValidationReason::Required);
        }
        let mut seen = BTreeSet::new();
        for (i, s) in self.stages.iter().enumerate() {
            if s.key.trim().is_empty() {
                errs.push(format!("stages[{i}].key"), ValidationReason::Required);
            } else if !seen.insert(s.key.as_str()) {
                errs.push(format!("stages[{i}].key"), ValidationReason::Invalid { detail: "is used twice".into() });
            }
            if s.probability < Decimal::ZERO || s.probability > Decimal::ONE_HUNDRED {
                errs.push(
                    format!("stages[{i}].probability"),
                    ValidationReason::Invalid { detail: "must be 0–100".into() },
                );
            }
            for f in &s.exit_requirements {
                if !REQUIRABLE_FIELDS.contains(&f.as_str()) {
                    errs.push(
                        format!("stages[{i}].exit_requirements"),
                        ValidationReason::not_allowed(f, REQUIRABLE_FIELDS.iter().copied()),
                    );
                }
            }
        }
        for kind in StageKind::ALL {
            if !self.stages.iter().any(|s| s.kind == *kind) {
                errs.push("stages", ValidationReason::Invalid { detail: format!("needs a {kind} stage") });
            }
        }
        for (from, tos) in &self.transitions {
            for key in std::iter::once(from).chain(tos) {
                if self.stage(key).is_none() {
                    errs.push(format!("transitions.{from}"), ValidationReason::not_allowed(key, self.stage_keys()));
                }
            }
        }
        errs.into_result(())
    }

    /// Whether a move from `from` to `to` is allowed.
    pub fn allows(&self, from: &str, to: &str) -> bool {
        if from == to {
            return false;
        }
        match self.transitions.get(from) {
            Some(tos) => tos.contains(to),
            None => self.stage(from).is_some_and(|s| s.kind == StageKind::Open) && self.stage(to).is_some(),
        }
    }

    /// Moves an opportunity to stage `to`: the edge must be allowed, the current stage's exit
    /// requirements met (except when losing: a deal can be lost at any point), and a lost
    /// stage needs one of the pipeline's lost reasons. The
    /// probability follows the new stage's default unless it was set by hand; a won stage sets
    /// 100 and a lost one 0 regardless. Returns the new state and its history entry; on any
    /// error nothing changes.
    pub fn move_to(&self, s: &SalesState, to: &str, lost_reason: Option<&str>) -> Result<(SalesState, StageMove)> {
        let target = self
            .stage(to)
            .ok_or_else(|| Error::invalid("stage", ValidationReason::not_allowed(to, self.stage_keys())))?;
        if !self.allows(&s.stage, to) {
            return Err(Error::InvalidState(format!("moving from stage {} to {to} is not allowed", s.stage)));
        }
        let mut errs = ValidationErrors::default();
        if let Some(current) = self.stage(&s.stage).filter(|_| target.kind != StageKind::Lost) {
            for f in current.exit_requirements.iter().filter(|f| !s.set_fields.contains(*f)) {
                errs.push(
                    f.clone(),
                    ValidationReason::Invalid { detail: format!("is required to leave stage {}", current.name) },
                );
            }
        }
        let lost_reason = match target.kind {
            StageKind::Lost => match lost_reason.map(fold_text) {
                Some(r) if self.lost_reasons.contains(&r) => Some(r),
                Some(r) => {
                    errs.push("lost_reason", ValidationReason::not_allowed(r, &self.lost_reasons));
                    None
                }
                None => {
                    errs.push("lost_reason", ValidationReason::Required);
                    None
                }
            },
            _ => None,
        };
        errs.into_result(())?;
        let probability = match (target.kind, s.probability_source) {
            (StageKind::Won, _) => Decimal::ONE_HUNDRED,
            (StageKind::Lost, _) => Decimal::ZERO,
            (StageKind::Open, ProbabilitySource::Manual) => s.probability,
            (StageKind::Open, ProbabilitySource::StageDefault) => target.probability,
        };
        let next = SalesState { stage: to.to_owned(), probability, lost_reason, ..s.clone() };
        let entry = StageMove { from: Some(s.stage.clone()), to: to.to_owned(), amount: s.amount, probability };
        Ok((next, entry))
    }
}

/// The stage a history ends in (it replays to the current stage: a property the tests check).
pub fn replay(history: &[StageMove]) -> Option<&str> {
    history.last().map(|m| m.to.as_str())
}

/// One product line: quantity × unit price − discount, exact.
///
/// ```
/// use guanxi_core::sales::ProductLine;
/// use rust_decimal::Decimal;
/// let l = ProductLine::new("CRM 授权", Decimal::new(3, 0), Decimal::new(1999_90, 2), Decimal::new(99_70, 2))?;
/// assert_eq!(l.total().to_string(), "5900.00");
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct ProductLine {
    /// Product name (the catalog product's name when `product_code` is set).
    pub product: String,
    /// The catalog product's code, when the line names one: product analytics group by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub product_code: Option<String>,
    /// Quantity (> 0).
    pub quantity: Decimal,
    /// Unit price (≥ 0).
    pub unit_price: Decimal,
    /// Discount off the line (0 ≤ discount ≤ quantity × unit price).
    pub discount: Decimal,
}

impl ProductLine {
    /// A validated line.
    pub fn new(product: &str, quantity: Decimal, unit_price: Decimal, discount: Decimal) -> Result<ProductLine> {
        let mut errs = ValidationErrors::default();
        let product = fold_text(product);
        if product.is_empty() {
            errs.push("product", ValidationReason::Required);
        }
        if quantity <= Decimal::ZERO {
            errs.push("quantity", ValidationReason::Invalid { detail: "must be positive".into() });
        }
        if unit_price < Decimal::ZERO {
            errs.push("unit_price", ValidationReason::Invalid { detail: "must not be negative".into() });
        }
        match quantity.checked_mul(unit_price) {
            Some(gross) if discount >= Decimal::ZERO && discount <= gross => {}
            Some(_) => errs.push(
                "discount",
                ValidationReason::Invalid { detail: "must be between 0 and the line's gross".into() },
            ),
            None => {
                errs.push("quantity", ValidationReason::Invalid { detail: "quantity × unit price overflows".into() })
            }
        }
        errs.into_result(ProductLine { product, product_code: None, quantity, unit_price, discount })
    }

    /// A line of the catalog product `code` (its name is filled in from the catalog when the
    /// line is written).
    ///
    /// ```
    /// use guanxi_core::sales::ProductLine;
    /// use rust_decimal::Decimal;
    /// let l = ProductLine::of_product("SKU-1", Decimal::from(2), Decimal::from(50), Decimal::ZERO)?;
    /// assert_eq!((l.product_code.as_deref(), l.total()), (Some("SKU-1"), Decimal::from(100)));
    /// # Ok::<(), guanxi_core::Error>(())
    /// ```
    pub fn of_product(code: &str, quantity: Decimal, unit_price: Decimal, discount: Decimal) -> Result<ProductLine> {
        let mut line = ProductLine::new(code, quantity, unit_price, discount)?;
        line.product_code = Some(line.product.clone());
        Ok(line)
    }

    /// What product analytics group the line by: the catalog code when it names one, else
    /// the product text.
    pub fn product_key(&self) -> &str {
        self.product_code.as_deref().unwrap_or(&self.product)
    }

    /// quantity × unit price − discount.
    pub fn total(&self) -> Decimal {
        self.quantity * self.unit_price - self.discount
    }
}

/// The sum of line totals, exact (None on overflow).
pub fn lines_total(lines: &[ProductLine]) -> Option<Decimal> {
    lines.iter().try_fold(Decimal::ZERO, |acc, l| acc.checked_add(l.total()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_standard_pipeline_is_valid() {
        Pipeline::standard().validate().unwrap();
        let mut broken = Pipeline::standard();
        broken.stages.retain(|s| s.kind != StageKind::Lost);
        broken.stages[1].exit_requirements.insert("horoscope".into());
        let err = broken.validate().unwrap_err();
        assert!(
            matches!(&err, Error::Validation(v) if v.field("stages").is_some() && v.field("stages[1].exit_requirements").is_some()),
            "{err}"
        );
    }

    #[test]
    fn disallowed_edges_unmet_requirements_and_missing_reasons_change_nothing() {
        let p = Pipeline::standard();
        let s = SalesState::new(&p, Decimal::ZERO);
        let (s, _) = p.move_to(&s, "intent", None).unwrap();
        // Leaving 意向 needs an amount.
        let err = p.move_to(&s, "proposal", None).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("amount").is_some()), "{err}");
        // Lost needs a known reason.
        let err = p.move_to(&s, "lost", Some("天气不好")).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("lost_reason").is_some()), "{err}");
        let (lost, m) = p.move_to(&s, "lost", Some(" 价格偏高 ")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((lost.lost_reason.as_deref(), m.probability), (Some("价格偏高"), Decimal::ZERO));
        // Closed stages go nowhere by default.
        assert!(matches!(p.move_to(&lost, "lead", None), Err(Error::InvalidState(_))));
    }

    fn arb_moves() -> impl Strategy<Value = Vec<(usize, bool, Option<u8>)>> {
        proptest::collection::vec((0usize..6, any::<bool>(), proptest::option::of(0u8..=100)), 0..20)
    }

    proptest! {
        /// Random attempted moves: the history always replays to the current stage, every
        /// refused move changes nothing, and the probability is the stage default unless it
        /// was set by hand (closing stages always 100 / 0).
        #[test]
        fn history_replays_and_probability_follows_the_rule(moves in arb_moves(), amount in 0i64..1_000_000) {
            let p = Pipeline::standard();
            let mut s = SalesState::new(&p, Decimal::new(amount, 0));
            s.set_fields.insert("expected_close".into());
            let mut history = vec![StageMove { from: None, to: s.stage.clone(), amount: s.amount, probability: s.probability }];
            for (target, lost_ok, manual) in moves {
                if let Some(pct) = manual {
                    match p.set_probability(&s, Some(Decimal::from(pct))) {
                        Ok(next) => s = next,
                        Err(_) => prop_assert_ne!(p.stage(&s.stage).unwrap().kind, StageKind::Open),
                    }
                }
                let to = p.stages[target].key.clone();
                let before = s.clone();
                match p.move_to(&s, &to, lost_ok.then_some("选择竞品")) {
                    Ok((next, m)) => {
                        prop_assert_eq!(m.from.as_deref(), Some(before.stage.as_str()));
                        history.push(m);
                        s = next;
                    }
                    Err(_) => prop_assert_eq!(&s, &before),
                }
                prop_assert_eq!(replay(&history), Some(s.stage.as_str()));
                let stage = p.stage(&s.stage).unwrap();
                let expected = match (stage.kind, s.probability_source) {
                    (StageKind::Won, _) => Decimal::ONE_HUNDRED,
                    (StageKind::Lost, _) => Decimal::ZERO,
                    (_, ProbabilitySource::StageDefault) => stage.probability,
                    (_, ProbabilitySource::Manual) => s.probability,
                };
                prop_assert_eq!(s.probability, expected);
            }
        }

        /// Line totals are exact: the sum equals the same arithmetic on integer cents.
        #[test]
        fn line_totals_are_exact(lines in proptest::collection::vec((1i64..1000, 0i64..10_000_000, 0i64..100), 0..30)) {
            let mut cents = 0i128;
            let built: Vec<ProductLine> = lines
                .iter()
                .map(|(q, price_cents, pct)| {
                    let gross = i128::from(*q) * i128::from(*price_cents);
                    let discount = gross * i128::from(*pct) / 100;
                    cents += gross - discount;
                    ProductLine::new("p", Decimal::from(*q), Decimal::new(*price_cents, 2), Decimal::from_i128_with_scale(discount, 2)).unwrap()
                })
                .collect();
            prop_assert_eq!(lines_total(&built), Some(Decimal::from_i128_with_scale(cents, 2)));
        }
    }
}
