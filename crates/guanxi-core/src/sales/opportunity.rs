//! Opportunities (商机) and their append-only stage history.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Pipeline, ProbabilitySource, ProductLine, SalesState, StageMove, lines_total};
use crate::access::{RecordScope, ScopeAttrs, Scoped};
use crate::error::{Error, Result, ValidationErrors, ValidationReason};
use crate::ids::{ContactId, CustomerId, DepartmentId, OpportunityId, UserId};
use crate::validate::{limits, required_text};

/// Decimal places money is kept to (amounts, unit prices, discounts, line totals): 1/10000 of
/// a unit, so sums are exact integers in any backend.
pub const MONEY_SCALE: u32 = 4;

/// Amounts must stay below this (10^14), so sums in 1/10000 units fit 64-bit integers.
pub const MAX_MONEY: Decimal = Decimal::from_parts(276_447_232, 23_283, 0, false, 0);

/// The default currency (ISO 4217) of new opportunities.
pub const DEFAULT_CURRENCY: &str = "CNY";

/// Checks an amount: not negative, at most [`MONEY_SCALE`] decimal places.
pub(crate) fn check_money(errs: &mut ValidationErrors, field: &str, v: Decimal) {
    if v >= MAX_MONEY {
        errs.push(field, ValidationReason::Invalid { detail: format!("must be below {MAX_MONEY}") });
    } else if v < Decimal::ZERO {
        errs.push(field, ValidationReason::Invalid { detail: "must not be negative".into() });
    } else if v.normalize().scale() > MONEY_SCALE {
        errs.push(field, ValidationReason::Invalid { detail: format!("has more than {MONEY_SCALE} decimal places") });
    }
}

/// An ISO 4217 code: three ASCII letters, upper-cased.
///
/// ```
/// use guanxi_core::sales::currency_code;
/// assert_eq!(currency_code(" usd ")?, "USD");
/// assert!(currency_code("元").is_err());
/// # Ok::<(), guanxi_core::Error>(())
/// ```
pub fn currency_code(input: &str) -> Result<String> {
    let c = input.trim().to_ascii_uppercase();
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(c)
    } else {
        Err(Error::invalid(
            "currency",
            ValidationReason::Invalid { detail: format!("'{}' is not a three-letter ISO 4217 code", input.trim()) },
        ))
    }
}

/// A milestone of an opportunity (e.g. 技术交流, 报价, 签约).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Milestone {
    /// What.
    pub name: String,
    /// Planned day.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub due_on: Option<NaiveDate>,
    /// Day it was reached.
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub done_on: Option<NaiveDate>,
}

impl Milestone {
    /// A planned milestone.
    pub fn new(name: &str, due_on: Option<NaiveDate>) -> Milestone {
        Milestone { name: name.to_owned(), due_on, done_on: None }
    }
}

/// A sales opportunity (商机): an amount in a currency moving through a pipeline's stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Opportunity {
    /// UUIDv7 id.
    pub id: OpportunityId,
    /// People-facing code, `O` + yyyymmdd + per-day sequence, e.g. `O20240501001`.
    pub code: String,
    /// The customer (none yet for an early deal whose account is unknown).
    pub customer_id: Option<CustomerId>,
    /// The main contact.
    pub contact_id: Option<ContactId>,
    /// Name.
    pub name: String,
    /// Pipeline key.
    pub pipeline: String,
    /// Current stage key.
    pub stage: String,
    /// The furthest open stage reached (pipeline order): what the funnel counts.
    pub furthest_stage: String,
    /// Win probability in percent.
    pub probability: Decimal,
    /// Where the probability comes from.
    pub probability_source: ProbabilitySource,
    /// Amount: the sum of the product lines when there are lines.
    pub amount: Decimal,
    /// ISO 4217 currency.
    pub currency: String,
    /// Expected close day.
    pub expected_close: Option<NaiveDate>,
    /// Product lines.
    pub lines: Vec<ProductLine>,
    /// Milestones.
    pub milestones: Vec<Milestone>,
    /// Follow up every this many days while open (a cadence rule).
    pub cadence_days: Option<u32>,
    /// Why it was lost, once lost.
    pub lost_reason: Option<String>,
    /// Owner.
    pub owner: Option<UserId>,
    /// Department (the owner's by default).
    pub department: Option<DepartmentId>,
    /// The customer's province when the opportunity was created (for region scopes).
    pub province: Option<String>,
    /// When it entered the pipeline (may precede `created_at` for imported deals).
    pub opened_at: DateTime<Utc>,
    /// When it was won.
    pub won_at: Option<DateTime<Utc>>,
    /// When it was lost.
    pub lost_at: Option<DateTime<Utc>>,
    /// Last change, stage move or completed task: what rotting and cadence count from.
    pub last_activity_at: DateTime<Utc>,
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

impl Opportunity {
    /// The code for the `seq`-th opportunity of `day`.
    ///
    /// ```
    /// use guanxi_core::sales::Opportunity;
    /// let day = chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
    /// assert_eq!(Opportunity::code_for(day, 7), "O20240501007");
    /// ```
    pub fn code_for(day: NaiveDate, seq: u64) -> String {
        crate::customer::day_code('O', day, seq)
    }

    /// The state stage moves read and write.
    pub fn sales_state(&self) -> SalesState {
        let mut set_fields = BTreeSet::new();
        if !self.amount.is_zero() {
            set_fields.insert("amount".to_owned());
        }
        if self.expected_close.is_some() {
            set_fields.insert("expected_close".to_owned());
        }
        if !self.lines.is_empty() {
            set_fields.insert("lines".to_owned());
        }
        if self.contact_id.is_some() {
            set_fields.insert("contact".to_owned());
        }
        SalesState {
            stage: self.stage.clone(),
            probability: self.probability,
            probability_source: self.probability_source,
            amount: self.amount,
            set_fields,
            lost_reason: self.lost_reason.clone(),
        }
    }

    /// When it was won or lost.
    pub fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.won_at.or(self.lost_at)
    }

    /// Whether it is still open.
    pub fn is_open(&self) -> bool {
        self.closed_at().is_none()
    }

    /// Whether it is rotting at `at`: open, in a stage with a rotting threshold, and without
    /// activity for longer than that.
    pub fn is_rotting(&self, p: &Pipeline, at: DateTime<Utc>) -> bool {
        self.is_open()
            && p.stage(&self.stage)
                .and_then(|s| s.rotting_days)
                .is_some_and(|d| at - self.last_activity_at > chrono::Duration::days(i64::from(d)))
    }

    /// When the next follow-up is due under its cadence rule (None without one, or once closed).
    pub fn follow_up_due(&self) -> Option<DateTime<Utc>> {
        self.cadence_days
            .filter(|_| self.is_open())
            .map(|d| self.last_activity_at + chrono::Duration::days(i64::from(d)))
    }
}

impl Scoped for Opportunity {
    fn scope_attrs(&self) -> ScopeAttrs<'_> {
        ScopeAttrs {
            owner: self.owner.as_ref(),
            creator: None,
            department: self.department.as_ref(),
            province: self.province.as_deref(),
        }
    }
}

/// One entry of an opportunity's append-only stage history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct StageHistoryEntry {
    /// Opportunity.
    pub opportunity_id: OpportunityId,
    /// 1 for the creation entry, then +1 per move.
    pub seq: u32,
    /// The move, the amount at that moment and the probability after it.
    #[serde(flatten)]
    pub change: StageMove,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub by: UserId,
    /// When the stage left here was entered: the stay it ends is `at - from_entered_at`.
    pub from_entered_at: Option<DateTime<Utc>>,
    /// The reason, for a move to a lost stage.
    pub lost_reason: Option<String>,
}

/// The most stage moves a new opportunity may carry (a pipeline has a handful of stages; a
/// history replayed from elsewhere rarely needs more than a few dozen moves).
pub const MAX_PAST_MOVES: usize = 64;

/// A stage move made before the opportunity reached guanxi (an import of a deal history): it
/// is applied at creation by the same rule as [`Pipeline::move_to`], at its own instant.
///
/// ```
/// use guanxi_core::sales::{NewOpportunity, PastMove};
/// let closed = "2024-03-01T00:00:00Z".parse().unwrap();
/// let o = NewOpportunity::new("ERP").moved(PastMove::new("lost", closed).lost_reason("价格偏高"));
/// assert_eq!((o.moves[0].stage.as_str(), o.moves[0].lost_reason.as_deref()), ("lost", Some("价格偏高")));
/// ```
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastMove {
    /// The stage moved to.
    pub stage: String,
    /// When (not before the opening nor the previous move, not in the future).
    pub at: DateTime<Utc>,
    /// Why, for a move to a lost stage (one of the pipeline's reasons).
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub lost_reason: Option<String>,
}

impl PastMove {
    /// A move to `stage` at `at`.
    pub fn new(stage: &str, at: DateTime<Utc>) -> PastMove {
        PastMove { stage: stage.to_owned(), at, lost_reason: None }
    }

    /// Gives the lost reason.
    pub fn lost_reason(mut self, reason: &str) -> Self {
        self.lost_reason = Some(reason.to_owned());
        self
    }
}

/// What a new opportunity needs; everything else has defaults.
///
/// ```
/// use guanxi_core::sales::NewOpportunity;
/// use rust_decimal::Decimal;
/// let o = NewOpportunity::new("ERP 升级").amount(Decimal::new(120_000_00, 2)).currency("cny");
/// assert_eq!(o.currency, "cny"); // normalized on validation
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewOpportunity {
    /// Name.
    pub name: String,
    /// Customer.
    pub customer_id: Option<CustomerId>,
    /// Main contact (must belong to the customer).
    pub contact_id: Option<ContactId>,
    /// Pipeline key (default `standard`).
    pub pipeline: Option<String>,
    /// Starting stage (default: the pipeline's first open stage).
    pub stage: Option<String>,
    /// Amount; ignored when lines are given (their sum is the amount).
    pub amount: Option<Decimal>,
    /// Currency (default CNY).
    pub currency: String,
    /// Hand-set probability; the stage default otherwise.
    pub probability: Option<Decimal>,
    /// Expected close day.
    pub expected_close: Option<NaiveDate>,
    /// Product lines.
    pub lines: Vec<ProductLine>,
    /// Milestones.
    pub milestones: Vec<Milestone>,
    /// Cadence rule: follow up every this many days while open.
    pub cadence_days: Option<u32>,
    /// Owner (default: the actor).
    pub owner: Option<UserId>,
    /// When it entered the pipeline (default now; earlier for imported deals, never later).
    pub opened_at: Option<DateTime<Utc>>,
    /// Moves made before it reached guanxi, applied in order after it opens (an imported deal
    /// that is already won or lost), each recorded in the stage history at its own instant.
    pub moves: Vec<PastMove>,
}

impl NewOpportunity {
    /// A new opportunity with a name.
    pub fn new(name: &str) -> NewOpportunity {
        NewOpportunity { name: name.to_owned(), currency: DEFAULT_CURRENCY.to_owned(), ..Default::default() }
    }

    /// Sets the customer.
    pub fn customer(mut self, id: CustomerId) -> Self {
        self.customer_id = Some(id);
        self
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

    /// Sets the pipeline.
    pub fn pipeline(mut self, key: &str) -> Self {
        self.pipeline = Some(key.to_owned());
        self
    }

    /// Sets the starting stage.
    pub fn stage(mut self, key: &str) -> Self {
        self.stage = Some(key.to_owned());
        self
    }

    /// Sets the expected close day.
    pub fn expected_close(mut self, day: NaiveDate) -> Self {
        self.expected_close = Some(day);
        self
    }

    /// Adds a product line.
    pub fn line(mut self, line: ProductLine) -> Self {
        self.lines.push(line);
        self
    }

    /// Sets the owner.
    pub fn owner(mut self, owner: UserId) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Sets the cadence rule.
    pub fn cadence_days(mut self, days: u32) -> Self {
        self.cadence_days = Some(days);
        self
    }

    /// Sets when it entered the pipeline.
    pub fn opened_at(mut self, at: DateTime<Utc>) -> Self {
        self.opened_at = Some(at);
        self
    }

    /// Adds a move made before it reached guanxi (applied in the order added).
    pub fn moved(mut self, past: PastMove) -> Self {
        self.moves.push(past);
        self
    }

    /// Normalizes and checks the fields that need no store: name, currency, money, lines,
    /// probability, milestones, cadence. Every failure is reported.
    pub fn validate(mut self) -> std::result::Result<NewOpportunity, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        self.name = required_text(&mut errs, "name", &self.name, limits::NAME);
        match currency_code(&self.currency) {
            Ok(c) => self.currency = c,
            Err(_) => errs
                .push("currency", ValidationReason::Invalid { detail: "is not a three-letter ISO 4217 code".into() }),
        }
        if let Some(a) = self.amount {
            check_money(&mut errs, "amount", a);
        }
        check_lines(&mut errs, &self.lines);
        if let Some(p) = self.probability {
            check_probability(&mut errs, p);
        }
        check_milestones(&mut errs, &mut self.milestones);
        if self.cadence_days == Some(0) {
            errs.push("cadence_days", ValidationReason::Invalid { detail: "must be at least 1".into() });
        }
        check_moves(&mut errs, &mut self.moves, self.opened_at);
        if errs.is_empty() { Ok(self) } else { Err(errs) }
    }

    /// The amount the record will carry: the lines' sum when there are lines.
    pub fn effective_amount(&self) -> Decimal {
        if self.lines.is_empty() {
            self.amount.unwrap_or(Decimal::ZERO)
        } else {
            lines_total(&self.lines).unwrap_or(Decimal::ZERO)
        }
    }
}

/// Past moves: bounded in number, each naming a stage, in time order from the opening.
fn check_moves(errs: &mut ValidationErrors, moves: &mut [PastMove], opened_at: Option<DateTime<Utc>>) {
    if moves.len() > MAX_PAST_MOVES {
        errs.push("moves", ValidationReason::TooLarge { max: MAX_PAST_MOVES as u64, unit: "moves".into() });
        return;
    }
    let mut previous = opened_at;
    for (i, m) in moves.iter_mut().enumerate() {
        m.stage = required_text(errs, &format!("moves[{i}].stage"), &m.stage, limits::SHORT);
        if previous.is_some_and(|p| m.at < p) {
            let detail = if i == 0 { "is before the opening" } else { "is before the previous move" };
            errs.push(format!("moves[{i}].at"), ValidationReason::Invalid { detail: detail.into() });
        }
        previous = Some(previous.map_or(m.at, |p| p.max(m.at)));
    }
}

fn check_probability(errs: &mut ValidationErrors, p: Decimal) {
    if p < Decimal::ZERO || p > Decimal::ONE_HUNDRED {
        errs.push("probability", ValidationReason::Invalid { detail: "must be 0–100".into() });
    }
}

fn check_lines(errs: &mut ValidationErrors, lines: &[ProductLine]) {
    for (i, l) in lines.iter().enumerate() {
        // Lines are built through ProductLine::new; recheck what a hand-built one may break.
        if let Err(Error::Validation(v)) =
            ProductLine::new(&l.product, l.quantity, l.unit_price, l.discount).map(|_| ())
        {
            errs.extend_nested(&format!("lines[{i}]"), v);
        }
        for (f, v) in [("unit_price", l.unit_price), ("discount", l.discount), ("total", l.total())] {
            check_money(errs, &format!("lines[{i}].{f}"), v);
        }
    }
    if lines_total(lines).is_none() {
        errs.push("lines", ValidationReason::Invalid { detail: "the total overflows".into() });
    }
}

fn check_milestones(errs: &mut ValidationErrors, milestones: &mut [Milestone]) {
    for (i, m) in milestones.iter_mut().enumerate() {
        m.name = required_text(errs, &format!("milestones[{i}].name"), &m.name, limits::SHORT);
    }
}

/// Changes to an opportunity's fields (stage moves go through their own call). `None` leaves
/// a field as it is; for optional fields `Some(None)` clears it.
///
/// ```
/// use guanxi_core::sales::OpportunityPatch;
/// let p = OpportunityPatch { probability: Some(None), ..Default::default() }; // back to the stage default
/// assert!(!p.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpportunityPatch {
    /// Name.
    pub name: Option<String>,
    /// Amount (refused while the opportunity has lines: change the lines instead).
    pub amount: Option<Decimal>,
    /// Currency.
    pub currency: Option<String>,
    /// Hand-set probability, or `Some(None)` to return to the stage default.
    pub probability: Option<Option<Decimal>>,
    /// Expected close day.
    pub expected_close: Option<Option<NaiveDate>>,
    /// Product lines (the amount follows).
    pub lines: Option<Vec<ProductLine>>,
    /// Milestones.
    pub milestones: Option<Vec<Milestone>>,
    /// Cadence rule.
    pub cadence_days: Option<Option<u32>>,
    /// Main contact.
    pub contact_id: Option<Option<ContactId>>,
    /// Owner (needs the assign permission).
    pub owner: Option<UserId>,
}

impl OpportunityPatch {
    /// True when it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == OpportunityPatch::default()
    }

    /// Applies the patch to `o` under its pipeline, checking every field; on error `o` is untouched.
    pub fn apply_to(self, o: &Opportunity, p: &Pipeline) -> Result<Opportunity> {
        let mut errs = ValidationErrors::default();
        let mut next = o.clone();
        if let Some(n) = self.name {
            next.name = required_text(&mut errs, "name", &n, limits::NAME);
        }
        if let Some(c) = self.currency {
            match currency_code(&c) {
                Ok(c) => next.currency = c,
                Err(_) => errs.push(
                    "currency",
                    ValidationReason::Invalid { detail: "is not a three-letter ISO 4217 code".into() },
                ),
            }
        }
        if let Some(lines) = self.lines {
            check_lines(&mut errs, &lines);
            next.amount = lines_total(&lines).unwrap_or(Decimal::ZERO);
            next.lines = lines;
        }
        if let Some(a) = self.amount {
            if next.lines.is_empty() {
                check_money(&mut errs, "amount", a);
                next.amount = a;
            } else {
                errs.push("amount", ValidationReason::Invalid { detail: "follows the product lines".into() });
            }
        }
        if let Some(d) = self.expected_close {
            next.expected_close = d;
        }
        if let Some(mut ms) = self.milestones {
            check_milestones(&mut errs, &mut ms);
            next.milestones = ms;
        }
        if let Some(c) = self.cadence_days {
            if c == Some(0) {
                errs.push("cadence_days", ValidationReason::Invalid { detail: "must be at least 1".into() });
            }
            next.cadence_days = c;
        }
        if let Some(c) = self.contact_id {
            next.contact_id = c;
        }
        if let Some(o) = self.owner {
            next.owner = Some(o);
        }
        errs.into_result(())?;
        if let Some(prob) = self.probability {
            let s = p.set_probability(&next.sales_state(), prob)?;
            next.probability = s.probability;
            next.probability_source = s.probability_source;
        }
        Ok(next)
    }
}

/// Conditions on an opportunity list; all combine with AND.
///
/// ```
/// use guanxi_core::sales::OpportunityFilter;
/// let f = OpportunityFilter::default().stage("proposal").open(true);
/// assert_eq!(f.stage.as_deref(), Some("proposal"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpportunityFilter {
    /// Pipeline key.
    pub pipeline: Option<String>,
    /// Current stage key.
    pub stage: Option<String>,
    /// Open (true) or closed (false).
    pub open: Option<bool>,
    /// Customer.
    pub customer_id: Option<CustomerId>,
    /// Owner.
    pub owner: Option<UserId>,
    /// Department.
    pub department: Option<DepartmentId>,
    /// The records the caller may see (set by the `Crm` facade).
    pub scope: Option<RecordScope>,
}

impl OpportunityFilter {
    /// Requires a stage.
    pub fn stage(mut self, stage: &str) -> Self {
        self.stage = Some(stage.to_owned());
        self
    }

    /// Requires open or closed.
    pub fn open(mut self, open: bool) -> Self {
        self.open = Some(open);
        self
    }

    /// Requires an owner.
    pub fn owner(mut self, owner: UserId) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Requires a customer.
    pub fn customer(mut self, customer: CustomerId) -> Self {
        self.customer_id = Some(customer);
        self
    }

    /// The reference semantics every backend's query reproduces.
    pub fn matches(&self, o: &Opportunity) -> bool {
        self.scope.as_ref().is_none_or(|s| s.admits(o.scope_attrs()))
            && self.pipeline.as_ref().is_none_or(|p| &o.pipeline == p)
            && self.stage.as_ref().is_none_or(|s| &o.stage == s)
            && self.open.is_none_or(|open| o.is_open() == open)
            && self.customer_id.is_none_or(|c| o.customer_id == Some(c))
            && self.owner.as_ref().is_none_or(|u| o.owner.as_ref() == Some(u))
            && self.department.as_ref().is_none_or(|d| o.department.as_ref() == Some(d))
    }
}
