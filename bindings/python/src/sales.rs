//! Sales in Python (`crm.sales`): pipelines, opportunities and their stage history, leads,
//! tasks and agendas, and the sales report whose tables are Arrow streams. Records are plain
//! read-only mirrors of the Rust ones; inputs are keyword arguments.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use guanxi::sales::{self as core, OpportunityFilter, OpportunityPatch, SalesQuery};
use guanxi::{LeadId, OpportunityId, TaskId};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::PyCrm;
use crate::arrow::{Columns, Table, arrow_err, object, page_request};
use crate::convert::{
    Problems, customer_id_from, decimal_arg, department, entries, from_python, int_arg, invalid_arg, optional,
    parse_name, text, to_python, user, user_id, user_str, uuid_from,
};
use crate::customers::contact_id_from;
use crate::errors::to_py;
use crate::repr::q;
use crate::vocab::Vocab;
use arrow_array::RecordBatch;
use arrow_schema::ArrowError;

type Time = DateTime<Utc>;

fn opportunity_id(v: &Bound<'_, PyAny>) -> PyResult<OpportunityId> {
    uuid_from(v, "opportunity_id").map(OpportunityId)
}

/// One stage of a pipeline.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct Stage {
    key: String,
    name: String,
    /// "open", "won" or "lost".
    kind: Vocab<core::StageKind>,
    probability: Decimal,
    exit_requirements: BTreeSet<String>,
    rotting_days: Option<u32>,
}

#[pymethods]
impl Stage {
    #[new]
    #[pyo3(signature = (key, name, kind, probability, *, exit_requirements = BTreeSet::new(), rotting_days = None))]
    fn new(
        key: String,
        name: String,
        kind: &str,
        probability: Decimal,
        exit_requirements: BTreeSet<String>,
        rotting_days: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let rotting_days: Option<u32> = crate::convert::opt_int_arg(rotting_days, "rotting_days")?;
        let kind = Vocab(parse_name("kind", kind)?);
        Ok(Stage { key, name, kind, probability, exit_requirements, rotting_days })
    }

    fn __repr__(&self) -> String {
        format!("Stage(key={}, kind={}, probability={})", q(&self.key), q(self.kind.name()), self.probability)
    }
}

/// A pipeline: ordered stages, allowed moves (absent: the default rule) and lost reasons.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct Pipeline {
    key: String,
    name: String,
    stages: Vec<Stage>,
    transitions: BTreeMap<String, BTreeSet<String>>,
    lost_reasons: Vec<String>,
}

#[pymethods]
impl Pipeline {
    #[new]
    #[pyo3(signature = (key, name, stages, *, transitions = BTreeMap::new(), lost_reasons = Vec::new()))]
    fn new(
        key: String,
        name: String,
        stages: Vec<Stage>,
        transitions: BTreeMap<String, BTreeSet<String>>,
        lost_reasons: Vec<String>,
    ) -> Self {
        Pipeline { key, name, stages, transitions, lost_reasons }
    }

    fn __repr__(&self) -> String {
        let keys: Vec<&str> = self.stages.iter().map(|s| s.key.as_str()).collect();
        format!("Pipeline(key={}, stages=[{}])", q(&self.key), keys.join(" → "))
    }
}

impl From<core::Pipeline> for Pipeline {
    fn from(p: core::Pipeline) -> Self {
        let stages = p
            .stages
            .into_iter()
            .map(|s| Stage {
                key: s.key,
                name: s.name,
                kind: Vocab(s.kind),
                probability: s.probability,
                exit_requirements: s.exit_requirements,
                rotting_days: s.rotting_days,
            })
            .collect();
        Pipeline { key: p.key, name: p.name, stages, transitions: p.transitions, lost_reasons: p.lost_reasons }
    }
}

impl Pipeline {
    fn into_core(self) -> PyResult<core::Pipeline> {
        let stages = self
            .stages
            .into_iter()
            .map(|s| {
                Ok(core::Stage {
                    kind: s.kind.0,
                    key: s.key,
                    name: s.name,
                    probability: s.probability,
                    exit_requirements: s.exit_requirements,
                    rotting_days: s.rotting_days,
                })
            })
            .collect::<PyResult<_>>()?;
        Ok(core::Pipeline {
            key: self.key,
            name: self.name,
            stages,
            transitions: self.transitions,
            lost_reasons: self.lost_reasons,
        })
    }
}

/// A product line: quantity × unit price − discount, exact.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct ProductLine {
    product: String,
    product_code: Option<String>,
    quantity: Decimal,
    unit_price: Decimal,
    discount: Decimal,
    total: Decimal,
}

#[pymethods]
impl ProductLine {
    /// A checked line (ValidationError names the bad field).
    #[new]
    #[pyo3(signature = (product, quantity, unit_price, discount = Decimal::ZERO))]
    fn new(product: &str, quantity: Decimal, unit_price: Decimal, discount: Decimal) -> PyResult<Self> {
        core::ProductLine::new(product, quantity, unit_price, discount).map(Self::from).map_err(to_py)
    }

    /// A line of the catalog product `code` (its name is filled in from the catalog when the
    /// line is written; product analytics group by the code).
    #[staticmethod]
    #[pyo3(signature = (code, quantity, unit_price, discount = Decimal::ZERO))]
    fn of_product(code: &str, quantity: Decimal, unit_price: Decimal, discount: Decimal) -> PyResult<Self> {
        core::ProductLine::of_product(code, quantity, unit_price, discount).map(Self::from).map_err(to_py)
    }

    fn __repr__(&self) -> String {
        match &self.product_code {
            Some(code) => {
                format!("ProductLine(product={}, product_code={}, total={})", q(&self.product), q(code), self.total)
            }
            None => format!("ProductLine(product={}, total={})", q(&self.product), self.total),
        }
    }
}

impl From<core::ProductLine> for ProductLine {
    fn from(l: core::ProductLine) -> Self {
        ProductLine {
            total: l.total(),
            product: l.product,
            product_code: l.product_code,
            quantity: l.quantity,
            unit_price: l.unit_price,
            discount: l.discount,
        }
    }
}

impl From<ProductLine> for core::ProductLine {
    fn from(l: ProductLine) -> Self {
        core::ProductLine {
            product: l.product,
            product_code: l.product_code,
            quantity: l.quantity,
            unit_price: l.unit_price,
            discount: l.discount,
        }
    }
}

/// A milestone (e.g. 技术交流, 报价, 签约).
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct Milestone {
    name: String,
    due_on: Option<NaiveDate>,
    done_on: Option<NaiveDate>,
}

#[pymethods]
impl Milestone {
    #[new]
    #[pyo3(signature = (name, due_on = None, done_on = None))]
    fn new(name: String, due_on: Option<NaiveDate>, done_on: Option<NaiveDate>) -> Self {
        Milestone { name, due_on, done_on }
    }

    fn __repr__(&self) -> String {
        format!("Milestone(name={})", q(&self.name))
    }
}

impl From<core::Milestone> for Milestone {
    fn from(m: core::Milestone) -> Self {
        Milestone { name: m.name, due_on: m.due_on, done_on: m.done_on }
    }
}

impl From<Milestone> for core::Milestone {
    fn from(m: Milestone) -> Self {
        core::Milestone { name: m.name, due_on: m.due_on, done_on: m.done_on }
    }
}

/// A sales opportunity (商机).
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct Opportunity {
    id: Uuid,
    code: String,
    customer_id: Option<Uuid>,
    contact_id: Option<Uuid>,
    name: String,
    pipeline: String,
    stage: String,
    furthest_stage: String,
    probability: Decimal,
    /// "stage_default" or "manual".
    probability_source: Vocab<core::ProbabilitySource>,
    amount: Decimal,
    currency: String,
    expected_close: Option<NaiveDate>,
    lines: Vec<ProductLine>,
    milestones: Vec<Milestone>,
    cadence_days: Option<u32>,
    lost_reason: Option<String>,
    owner: Option<String>,
    department: Option<String>,
    province: Option<String>,
    opened_at: Time,
    won_at: Option<Time>,
    lost_at: Option<Time>,
    last_activity_at: Time,
    created_by: String,
    created_at: Time,
    updated_by: String,
    updated_at: Time,
    version: u64,
}

#[pymethods]
impl Opportunity {
    /// Neither won nor lost.
    #[getter]
    fn is_open(&self) -> bool {
        self.won_at.is_none() && self.lost_at.is_none()
    }

    fn __repr__(&self) -> String {
        format!(
            "Opportunity(code={}, stage={}, amount={} {})",
            q(&self.code),
            q(&self.stage),
            self.amount,
            self.currency
        )
    }
}

impl From<core::Opportunity> for Opportunity {
    fn from(o: core::Opportunity) -> Self {
        Opportunity {
            id: o.id.0,
            code: o.code,
            customer_id: o.customer_id.map(|c| c.0),
            contact_id: o.contact_id.map(|c| c.0),
            name: o.name,
            pipeline: o.pipeline,
            stage: o.stage,
            furthest_stage: o.furthest_stage,
            probability: o.probability,
            probability_source: Vocab(o.probability_source),
            amount: o.amount,
            currency: o.currency,
            expected_close: o.expected_close,
            lines: o.lines.into_iter().map(ProductLine::from).collect(),
            milestones: o.milestones.into_iter().map(Milestone::from).collect(),
            cadence_days: o.cadence_days,
            lost_reason: o.lost_reason,
            owner: user_str(&o.owner),
            department: o.department.map(|d| d.as_str().to_owned()),
            province: o.province,
            opened_at: o.opened_at,
            won_at: o.won_at,
            lost_at: o.lost_at,
            last_activity_at: o.last_activity_at,
            created_by: o.created_by.as_str().to_owned(),
            created_at: o.created_at,
            updated_by: o.updated_by.as_str().to_owned(),
            updated_at: o.updated_at,
            version: o.version,
        }
    }
}

/// One entry of an opportunity's append-only stage history.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct StageHistoryEntry {
    opportunity_id: Uuid,
    seq: u32,
    /// None for the creation entry.
    from_stage: Option<String>,
    to_stage: String,
    amount: Decimal,
    probability: Decimal,
    at: Time,
    by: String,
    from_entered_at: Option<Time>,
    lost_reason: Option<String>,
}

#[pymethods]
impl StageHistoryEntry {
    fn __repr__(&self) -> String {
        let from = self.from_stage.as_deref().map_or_else(|| "None".to_owned(), q);
        format!("StageHistoryEntry(seq={}, {from} → {})", self.seq, q(&self.to_stage))
    }
}

impl From<core::StageHistoryEntry> for StageHistoryEntry {
    fn from(h: core::StageHistoryEntry) -> Self {
        StageHistoryEntry {
            opportunity_id: h.opportunity_id.0,
            seq: h.seq,
            from_stage: h.change.from,
            to_stage: h.change.to,
            amount: h.change.amount,
            probability: h.change.probability,
            at: h.at,
            by: h.by.as_str().to_owned(),
            from_entered_at: h.from_entered_at,
            lost_reason: h.lost_reason,
        }
    }
}

/// What a converted lead became.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct LeadConversion {
    customer_id: Uuid,
    linked_existing: bool,
    matched_by: Option<String>,
    contact_id: Uuid,
    opportunity_id: Option<Uuid>,
}

#[pymethods]
impl LeadConversion {
    fn __repr__(&self) -> String {
        let linked = if self.linked_existing { "True" } else { "False" };
        format!("LeadConversion(customer_id='{}', linked_existing={linked})", self.customer_id)
    }
}

impl From<core::LeadConversion> for LeadConversion {
    fn from(c: core::LeadConversion) -> Self {
        LeadConversion {
            customer_id: c.customer_id.0,
            linked_existing: c.linked_existing,
            matched_by: c.matched_by,
            contact_id: c.contact_id.0,
            opportunity_id: c.opportunity_id.map(|o| o.0),
        }
    }
}

/// A lead (线索): graded and assigned by the lead rules, converted into a customer.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct Lead {
    id: Uuid,
    code: String,
    name: String,
    company: Option<String>,
    /// E.164.
    phone: Option<String>,
    email: Option<String>,
    source: Option<String>,
    province: Option<String>,
    industry: Option<Vocab<guanxi::Industry>>,
    budget_confirmed: bool,
    need_confirmed: bool,
    /// "a", "b" or "c".
    grade: Vocab<core::LeadGrade>,
    /// "new", "assigned", "converted" or "disqualified".
    status: Vocab<core::LeadStatus>,
    owner: Option<String>,
    department: Option<String>,
    converted: Option<LeadConversion>,
    created_by: String,
    created_at: Time,
    updated_by: String,
    updated_at: Time,
    version: u64,
}

#[pymethods]
impl Lead {
    fn __repr__(&self) -> String {
        format!(
            "Lead(code={}, name={}, grade={}, status={})",
            q(&self.code),
            q(&self.name),
            q(self.grade.name()),
            q(self.status.name())
        )
    }
}

impl From<core::Lead> for Lead {
    fn from(l: core::Lead) -> Self {
        Lead {
            id: l.id.0,
            code: l.code,
            name: l.name,
            company: l.company,
            phone: l.phone.map(|p| p.as_str().to_owned()),
            email: l.email.map(|e| e.as_str().to_owned()),
            source: l.source,
            province: l.province,
            industry: l.industry.map(Vocab),
            budget_confirmed: l.budget_confirmed,
            need_confirmed: l.need_confirmed,
            grade: Vocab(l.grade),
            status: Vocab(l.status),
            owner: user_str(&l.owner),
            department: l.department.map(|d| d.as_str().to_owned()),
            converted: l.converted.map(LeadConversion::from),
            created_by: l.created_by.as_str().to_owned(),
            created_at: l.created_at,
            updated_by: l.updated_by.as_str().to_owned(),
            updated_at: l.updated_at,
            version: l.version,
        }
    }
}

/// A task with a due instant and an owner.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct Task {
    id: Uuid,
    title: String,
    notes: Option<String>,
    due_at: Time,
    owner: String,
    department: Option<String>,
    opportunity_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    done_at: Option<Time>,
    created_by: String,
    created_at: Time,
    updated_by: String,
    updated_at: Time,
    version: u64,
}

#[pymethods]
impl Task {
    fn __repr__(&self) -> String {
        let done = if self.done_at.is_some() { "True" } else { "False" };
        format!("Task(title={}, due_at={}, done={done})", q(&self.title), self.due_at)
    }
}

impl From<core::Task> for Task {
    fn from(t: core::Task) -> Self {
        Task {
            id: t.id.0,
            title: t.title,
            notes: t.notes,
            due_at: t.due_at,
            owner: t.owner.as_str().to_owned(),
            department: t.department.map(|d| d.as_str().to_owned()),
            opportunity_id: t.opportunity_id.map(|o| o.0),
            customer_id: t.customer_id.map(|c| c.0),
            done_at: t.done_at,
            created_by: t.created_by.as_str().to_owned(),
            created_at: t.created_at,
            updated_by: t.updated_by.as_str().to_owned(),
            updated_at: t.updated_at,
            version: t.version,
        }
    }
}

/// Something due on an agenda: an open task, or a cadence follow-up of an opportunity.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct AgendaItem {
    /// "task" or "follow_up".
    kind: String,
    due_at: Time,
    /// The task, for "task".
    task: Option<Task>,
    /// The opportunity, for "follow_up".
    opportunity_id: Option<Uuid>,
    /// Its code, for "follow_up".
    code: Option<String>,
}

#[pymethods]
impl AgendaItem {
    fn __repr__(&self) -> String {
        format!("AgendaItem(kind={}, due_at={})", q(&self.kind), self.due_at)
    }
}

impl From<core::AgendaItem> for AgendaItem {
    fn from(i: core::AgendaItem) -> Self {
        let due_at = i.due_at();
        match i {
            core::AgendaItem::Task(t) => {
                AgendaItem { kind: "task".into(), due_at, task: Some(t.into()), opportunity_id: None, code: None }
            }
            core::AgendaItem::FollowUp { opportunity, code, .. } => AgendaItem {
                kind: "follow_up".into(),
                due_at,
                task: None,
                opportunity_id: Some(opportunity.0),
                code: Some(code),
            },
        }
    }
}

/// A user's agenda at an instant: overdue, due later today, and rotting opportunities (codes).
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct Agenda {
    overdue: Vec<AgendaItem>,
    due_today: Vec<AgendaItem>,
    rotting: Vec<String>,
}

#[pymethods]
impl Agenda {
    fn __repr__(&self) -> String {
        format!(
            "Agenda(overdue={}, due_today={}, rotting={})",
            self.overdue.len(),
            self.due_today.len(),
            self.rotting.len()
        )
    }
}

impl From<core::Agenda> for Agenda {
    fn from(a: core::Agenda) -> Self {
        Agenda {
            overdue: a.overdue.into_iter().map(AgendaItem::from).collect(),
            due_today: a.due_today.into_iter().map(AgendaItem::from).collect(),
            rotting: a.rotting,
        }
    }
}

/// Count, amount, and average and median cycle days of the won (or the lost) deals.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct CycleStats {
    count: u64,
    amount: Decimal,
    average_days: Option<Decimal>,
    median_days: Option<Decimal>,
}

#[pymethods]
impl CycleStats {
    fn __repr__(&self) -> String {
        format!("CycleStats(count={}, amount={})", self.count, self.amount)
    }
}

impl From<core::CycleStats> for CycleStats {
    fn from(c: core::CycleStats) -> Self {
        CycleStats { count: c.count, amount: c.amount, average_days: c.average_days, median_days: c.median_days }
    }
}

/// The sales report: scalar figures as attributes, the breakdowns as Arrow tables
/// (`report.funnel.to_pandas()`).
#[pyclass(module = "guanxi._guanxi", frozen, get_all)]
pub struct SalesReport {
    pipeline: String,
    currency: String,
    /// Per stage: stage, name, kind, count, amount, reached, step_conversion, top_conversion,
    /// avg_days_in_stage, lost_here, below_average.
    funnel: Table,
    /// Per stage and reason: stage, reason, count.
    loss_reasons: Table,
    won: CycleStats,
    lost: CycleStats,
    win_rate: Option<Decimal>,
    /// owner, count, amount.
    won_by_owner: Table,
    /// product, count, amount.
    won_by_product: Table,
    /// month ("YYYY-MM", None for no expected close), count, amount, weighted.
    forecast: Table,
    open_count: u64,
    open_amount: Decimal,
    weighted_pipeline: Decimal,
    velocity_per_day: Option<Decimal>,
}

#[pymethods]
impl SalesReport {
    fn __repr__(&self) -> String {
        let rate = self.win_rate.map_or_else(|| "None".to_owned(), |r| r.to_string());
        format!("SalesReport(pipeline={}, currency={}, win_rate={rate})", q(&self.pipeline), q(&self.currency))
    }
}

fn keyed(rows: &[core::KeyedAmount], key: &str) -> PyResult<Table> {
    Columns::new(rows)
        .text(key, |r| Some(&r.key))
        .count("count", |r| r.count)
        .decimal("amount", |r| Some(r.amount))
        .and_then(Columns::finish)
        .map_err(arrow_err)
}

impl SalesReport {
    fn new(r: core::SalesReport) -> PyResult<Self> {
        let funnel = Columns::new(&r.funnel)
            .text("stage", |s| Some(&s.stage))
            .text("name", |s| Some(&s.name))
            .text("kind", |s| Some(s.kind.as_str()))
            .count("count", |s| s.count)
            .decimal("amount", |s| Some(s.amount))
            .map_err(arrow_err)?
            .count("reached", |s| s.reached)
            .decimal("step_conversion", |s| s.step_conversion)
            .and_then(|c| c.decimal("top_conversion", |s| s.top_conversion))
            .and_then(|c| c.decimal("avg_days_in_stage", |s| s.avg_days_in_stage))
            .map_err(arrow_err)?
            .count("lost_here", |s| s.lost_here)
            .boolean("below_average", |s| Some(s.below_average))
            .finish()
            .map_err(arrow_err)?;
        let losses: Vec<(&str, &str, u64)> = r
            .funnel
            .iter()
            .flat_map(|s| s.loss_reasons.iter().map(move |l| (s.stage.as_str(), l.reason.as_str(), l.count)))
            .collect();
        let loss_reasons = Columns::new(&losses)
            .text("stage", |l| Some(l.0))
            .text("reason", |l| Some(l.1))
            .count("count", |l| l.2)
            .finish()
            .map_err(arrow_err)?;
        let forecast = Columns::new(&r.forecast)
            .text("month", |m| m.month.as_deref())
            .count("count", |m| m.count)
            .decimal("amount", |m| Some(m.amount))
            .and_then(|c| c.decimal("weighted", |m| Some(m.weighted)))
            .and_then(Columns::finish)
            .map_err(arrow_err)?;
        Ok(SalesReport {
            funnel,
            loss_reasons,
            won_by_owner: keyed(&r.won_by_owner, "owner")?,
            won_by_product: keyed(&r.won_by_product, "product")?,
            forecast,
            pipeline: r.pipeline,
            currency: r.currency,
            won: r.won.into(),
            lost: r.lost.into(),
            win_rate: r.win_rate,
            open_count: r.open_count,
            open_amount: r.open_amount,
            weighted_pipeline: r.weighted_pipeline,
            velocity_per_day: r.velocity_per_day,
        })
    }
}

/// Opportunities as a table: one row each (lines and milestones stay on the objects).
fn opportunity_batch(rows: &[core::Opportunity]) -> Result<RecordBatch, ArrowError> {
    Columns::new(rows)
        .text("id", |o| Some(o.id.to_string()))
        .text("code", |o| Some(&o.code))
        .text("customer_id", |o| o.customer_id.map(|c| c.to_string()))
        .text("name", |o| Some(&o.name))
        .text("pipeline", |o| Some(&o.pipeline))
        .text("stage", |o| Some(&o.stage))
        .text("furthest_stage", |o| Some(&o.furthest_stage))
        .decimal("probability", |o| Some(o.probability))?
        .text("probability_source", |o| Some(o.probability_source.as_str()))
        .decimal("amount", |o| Some(o.amount))?
        .text("currency", |o| Some(&o.currency))
        .date("expected_close", |o| o.expected_close)
        .int("cadence_days", |o| o.cadence_days.map(i64::from))
        .text("lost_reason", |o| o.lost_reason.as_deref())
        .text("owner", |o| user_str(&o.owner))
        .text("department", |o| o.department.as_ref().map(|d| d.as_str()))
        .text("province", |o| o.province.as_deref())
        .time("opened_at", |o| Some(o.opened_at))
        .time("won_at", |o| o.won_at)
        .time("lost_at", |o| o.lost_at)
        .time("last_activity_at", |o| Some(o.last_activity_at))
        .time("created_at", |o| Some(o.created_at))
        .time("updated_at", |o| Some(o.updated_at))
        .count("version", |o| o.version)
        .batch()
}

fn lead_batch(rows: &[core::Lead]) -> Result<RecordBatch, ArrowError> {
    Columns::new(rows)
        .text("id", |l| Some(l.id.to_string()))
        .text("code", |l| Some(&l.code))
        .text("name", |l| Some(&l.name))
        .text("company", |l| l.company.as_deref())
        .text("phone", |l| l.phone.as_ref().map(|p| p.as_str()))
        .text("email", |l| l.email.as_ref().map(|e| e.as_str()))
        .text("source", |l| l.source.as_deref())
        .text("province", |l| l.province.as_deref())
        .text("industry", |l| l.industry.map(|i| i.as_str()))
        .boolean("budget_confirmed", |l| Some(l.budget_confirmed))
        .boolean("need_confirmed", |l| Some(l.need_confirmed))
        .text("grade", |l| Some(l.grade.as_str()))
        .text("status", |l| Some(l.status.as_str()))
        .text("owner", |l| user_str(&l.owner))
        .text("department", |l| l.department.as_ref().map(|d| d.as_str()))
        .text("customer_id", |l| l.converted.as_ref().map(|c| c.customer_id.to_string()))
        .time("created_at", |l| Some(l.created_at))
        .time("updated_at", |l| Some(l.updated_at))
        .count("version", |l| l.version)
        .batch()
}

fn task_batch(rows: &[core::Task]) -> Result<RecordBatch, ArrowError> {
    Columns::new(rows)
        .text("id", |t| Some(t.id.to_string()))
        .text("title", |t| Some(&t.title))
        .text("notes", |t| t.notes.as_deref())
        .time("due_at", |t| Some(t.due_at))
        .text("owner", |t| Some(t.owner.as_str()))
        .text("department", |t| t.department.as_ref().map(|d| d.as_str()))
        .text("opportunity_id", |t| t.opportunity_id.map(|o| o.to_string()))
        .text("customer_id", |t| t.customer_id.map(|c| c.to_string()))
        .time("done_at", |t| t.done_at)
        .time("created_at", |t| Some(t.created_at))
        .time("updated_at", |t| Some(t.updated_at))
        .count("version", |t| t.version)
        .batch()
}

/// The keyword arguments of `opportunities.create` after the name.
const OPPORTUNITY_FIELDS: &[&str] = &[
    "customer_id",
    "contact_id",
    "pipeline",
    "stage",
    "amount",
    "currency",
    "probability",
    "expected_close",
    "lines",
    "milestones",
    "cadence_days",
    "owner",
    "opened_at",
    "moves",
];

/// The keyword arguments of `opportunities.update`.
const OPPORTUNITY_CHANGES: &[&str] = &[
    "name",
    "amount",
    "currency",
    "probability",
    "expected_close",
    "lines",
    "milestones",
    "cadence_days",
    "contact_id",
    "owner",
];

/// The keyword filters of opportunity lists and counts.
const OPPORTUNITY_FILTERS: &[&str] = &["pipeline", "stage", "open", "customer_id", "owner", "department"];

/// Product lines or milestones from a list of their classes.
fn lines(v: &Bound<'_, PyAny>) -> PyResult<Vec<core::ProductLine>> {
    Ok(v.extract::<Vec<ProductLine>>()?.into_iter().map(Into::into).collect())
}

/// The keys of one past move (`opportunities.create(moves=[...])`).
const PAST_MOVE_KEYS: &[&str] = &["stage", "at", "lost_reason"];

/// `moves=[{"stage": "won", "at": datetime, "lost_reason": None}, ...]`: every bad key or value
/// reported under `moves[i]`.
fn past_moves(v: &Bound<'_, PyAny>) -> PyResult<Vec<core::PastMove>> {
    let mut problems = Problems::default();
    let mut moves = Vec::new();
    for (i, item) in v.try_iter()?.enumerate() {
        let mut inner = Problems::default();
        let read = item.and_then(|d| Ok(d.cast_into::<PyDict>()?));
        if let Some(d) = inner.keep("", read) {
            let (mut stage, mut at, mut lost_reason) = (None, None, None);
            for (key, value) in entries(Some(&d), &mut inner) {
                match key.as_str() {
                    "stage" => stage = inner.keep("stage", text(&value)),
                    "at" => at = inner.keep("at", value.extract::<chrono::DateTime<chrono::Utc>>()),
                    "lost_reason" if value.is_none() => {}
                    "lost_reason" => lost_reason = inner.keep("lost_reason", text(&value)),
                    other => inner.unknown_key(other, PAST_MOVE_KEYS),
                }
            }
            for (field, missing) in [("stage", stage.is_none()), ("at", at.is_none())] {
                if missing && !d.contains(field)? {
                    inner.push(field, guanxi::ValidationReason::Required);
                }
            }
            if let (Some(stage), Some(at)) = (stage, at) {
                moves.push(core::PastMove { stage, at, lost_reason });
            }
        }
        problems.nest(&format!("moves[{i}]"), inner);
    }
    problems.result(moves)
}

fn milestones(v: &Bound<'_, PyAny>) -> PyResult<Vec<core::Milestone>> {
    Ok(v.extract::<Vec<Milestone>>()?.into_iter().map(Into::into).collect())
}

/// `opportunities.create`'s keyword arguments → `NewOpportunity` (also `leads.convert(opportunity=…)`),
/// or one ValidationError naming every bad field.
fn new_opportunity(name: &str, fields: Option<&Bound<'_, PyDict>>) -> PyResult<core::NewOpportunity> {
    let mut problems = Problems::default();
    let o = opportunity_input(name, fields, &mut problems);
    problems.result(o)
}

/// The core's new opportunity from `create`'s arguments, with what could be read; what could
/// not is in `problems`.
fn opportunity_input(name: &str, fields: Option<&Bound<'_, PyDict>>, problems: &mut Problems) -> core::NewOpportunity {
    let mut o = core::NewOpportunity::new(name);
    for (key, value) in entries(fields, problems) {
        if value.is_none() {
            continue;
        }
        let k = key.as_str();
        match k {
            "customer_id" => o.customer_id = problems.keep(k, customer_id_from(&value)),
            "contact_id" => o.contact_id = problems.keep(k, contact_id_from(&value)),
            "pipeline" => o.pipeline = problems.keep(k, text(&value)),
            "stage" => o.stage = problems.keep(k, text(&value)),
            "amount" => o.amount = problems.keep(k, decimal_arg(&value, k)),
            "currency" => o.currency = problems.keep(k, text(&value)).unwrap_or(o.currency),
            "probability" => o.probability = problems.keep(k, decimal_arg(&value, k)),
            "expected_close" => o.expected_close = problems.keep(k, value.extract()),
            "lines" => o.lines = problems.keep(k, lines(&value)).unwrap_or_default(),
            "milestones" => o.milestones = problems.keep(k, milestones(&value)).unwrap_or_default(),
            "cadence_days" => o.cadence_days = problems.keep(k, int_arg(&value, k)),
            "owner" => o.owner = problems.keep(k, user(k, &value)),
            "opened_at" => o.opened_at = problems.keep(k, value.extract()),
            "moves" => o.moves = problems.keep(k, past_moves(&value)).unwrap_or_default(),
            other => problems.unknown_key(other, OPPORTUNITY_FIELDS),
        }
    }
    o
}

fn opportunity_patch(changes: Option<&Bound<'_, PyDict>>) -> PyResult<OpportunityPatch> {
    let mut p = OpportunityPatch::default();
    let mut problems = Problems::default();
    for (key, value) in entries(changes, &mut problems) {
        let k = key.as_str();
        match k {
            "name" => p.name = problems.keep(k, text(&value)),
            "amount" => p.amount = problems.keep(k, decimal_arg(&value, k)),
            "currency" => p.currency = problems.keep(k, text(&value)),
            "probability" => p.probability = problems.keep(k, optional(&value, |v| decimal_arg(v, k))),
            "expected_close" => p.expected_close = problems.keep(k, value.extract()),
            "lines" => p.lines = problems.keep(k, lines(&value)),
            "milestones" => p.milestones = problems.keep(k, milestones(&value)),
            "cadence_days" => p.cadence_days = problems.keep(k, optional(&value, |v| int_arg(v, k))),
            "contact_id" => p.contact_id = problems.keep(k, optional(&value, contact_id_from)),
            "owner" => p.owner = problems.keep(k, user(k, &value)),
            other => problems.unknown_key(other, OPPORTUNITY_CHANGES),
        }
    }
    problems.result(p)
}

fn opportunity_filter(filters: Option<&Bound<'_, PyDict>>) -> PyResult<OpportunityFilter> {
    let mut f = OpportunityFilter::default();
    let mut problems = Problems::default();
    for (key, value) in entries(filters, &mut problems) {
        if value.is_none() {
            continue;
        }
        let k = key.as_str();
        match k {
            "pipeline" => f.pipeline = problems.keep(k, text(&value)),
            "stage" => f.stage = problems.keep(k, text(&value)),
            "open" => f.open = problems.keep(k, value.extract()),
            "customer_id" => f.customer_id = problems.keep(k, customer_id_from(&value)),
            "owner" => f.owner = problems.keep(k, user(k, &value)),
            "department" => f.department = problems.keep(k, department(&value)),
            other => problems.unknown_key(other, OPPORTUNITY_FILTERS),
        }
    }
    problems.result(f)
}

/// `crm.sales`: pipelines, lead rules, the sales report and the agenda; `.opportunities`,
/// `.leads` and `.tasks`.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Sales {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Sales {
    /// Opportunities: create, get, list (paged), count, update, move between stages.
    #[getter]
    fn opportunities(&self, py: Python<'_>) -> Opportunities {
        Opportunities { crm: self.crm.clone_ref(py) }
    }

    /// Leads: create (graded and assigned by the lead rules), get, list, count, convert.
    #[getter]
    fn leads(&self, py: Python<'_>) -> Leads {
        Leads { crm: self.crm.clone_ref(py) }
    }

    /// Tasks: create, complete, list.
    #[getter]
    fn tasks(&self, py: Python<'_>) -> Tasks {
        Tasks { crm: self.crm.clone_ref(py) }
    }

    /// A pipeline by key (the built-in "standard" one until another of that key is stored).
    #[pyo3(signature = (key = "standard"))]
    fn pipeline(&self, py: Python<'_>, key: &str) -> PyResult<Pipeline> {
        self.crm.get().run(py, |c, a| c.sales().pipeline(a, key)).map(Pipeline::from)
    }

    /// Stores a pipeline (new, or replacing the one of its key).
    fn set_pipeline(&self, py: Python<'_>, pipeline: Pipeline) -> PyResult<Pipeline> {
        let p = pipeline.into_core()?;
        self.crm.get().run(py, |c, a| c.sales().set_pipeline(a, p)).map(Pipeline::from)
    }

    /// The lead rules as a dict: {"grading": [{"grade": "a", "when": {"source_in": ["行业峰会"]}}, …],
    /// "assignment": [{"round_robin": ["u1", "u2"]}, {"by_province": {"广东省": "u3"}}, …]}.
    fn lead_rules<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rules = self.crm.get().run(py, |c, a| c.sales().lead_rules(a))?;
        to_python(py, &rules)
    }

    /// Replaces the lead rules (the dict shape `lead_rules()` returns).
    fn set_lead_rules<'py>(&self, py: Python<'py>, rules: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let rules: core::LeadRules = from_python(rules, "rules")?;
        self.crm.get().run(py, |c, a| c.sales().set_lead_rules(a, rules))?;
        self.lead_rules(py)
    }

    /// The funnel, win rate, cycle times, won amounts and forecast of a pipeline. `start` and
    /// `end` (UTC datetimes, end exclusive) bound when deals opened (funnel), closed (win rate,
    /// cycles, won amounts) or are expected to close (forecast). `currency` is required when
    /// the opportunities use several.
    #[pyo3(signature = (pipeline = "standard", *, start = None, end = None, currency = None, owner = None, department = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn report(
        &self,
        py: Python<'_>,
        pipeline: &str,
        start: Option<Time>,
        end: Option<Time>,
        currency: Option<String>,
        owner: Option<&str>,
        department: Option<&str>,
    ) -> PyResult<SalesReport> {
        let mut query = SalesQuery::new(pipeline);
        query.from = start;
        query.to = end;
        query.currency = currency;
        query.owner = owner.map(|o| user_id("owner", o)).transpose()?;
        query.department = department.map(guanxi::DepartmentId::new).transpose().map_err(to_py)?;
        let r = self.crm.get().run(py, |c, a| c.sales().report(a, &query))?;
        py.detach(|| SalesReport::new(r))
    }

    /// `user`'s agenda (default: the acting user) at `at` (default: now by the CRM's clock).
    #[pyo3(signature = (user = None, *, at = None))]
    fn agenda(&self, py: Python<'_>, user: Option<&str>, at: Option<Time>) -> PyResult<Agenda> {
        let crm = self.crm.get();
        let user = match user {
            Some(u) => user_id("user", u)?,
            None => crm.actor.user_id().clone(),
        };
        crm.run(py, |c, a| c.sales().agenda(a, &user, at.unwrap_or_else(|| c.now()))).map(Agenda::from)
    }
}

fn opportunities_table(rows: Vec<core::Opportunity>) -> Table {
    Table::records(rows, opportunity_batch, object::<core::Opportunity, Opportunity>)
}

/// `crm.sales.opportunities`: deals through the stages of a pipeline.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Opportunities {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Opportunities {
    /// Creates an opportunity. Keywords: customer_id, contact_id, pipeline, stage, amount,
    /// currency (default "CNY"), probability, expected_close, lines (ProductLine list),
    /// milestones (Milestone list), cadence_days, owner, opened_at, and moves (the stage moves
    /// of an imported deal, each {"stage", "at", "lost_reason"}, applied in order).
    #[pyo3(signature = (name, **fields))]
    fn create(&self, py: Python<'_>, name: &str, fields: Option<&Bound<'_, PyDict>>) -> PyResult<Opportunity> {
        let input = new_opportunity(name, fields)?;
        self.crm.get().run(py, |c, a| c.sales().opportunities().create(a, input)).map(Opportunity::from)
    }

    /// Creates many opportunities in one transaction, all or none. Each row is a dict of
    /// `create`'s arguments with its "name"; a bad field is reported under its row
    /// (`opportunities[3].currency`), every one together.
    fn create_many(&self, py: Python<'_>, rows: &Bound<'_, PyAny>) -> PyResult<Vec<Opportunity>> {
        let mut read: Vec<(Option<core::NewOpportunity>, Problems)> = Vec::new();
        for row in rows.try_iter()? {
            let mut inner = Problems::default();
            let input = row.and_then(|r| {
                let rest = r.cast_into::<PyDict>()?.copy()?;
                // A missing name is the core's to report, with the row's other failures.
                let name = rest.get_item("name")?.and_then(|n| inner.keep("name", text(&n))).unwrap_or_default();
                if rest.contains("name")? {
                    rest.del_item("name")?;
                }
                Ok(opportunity_input(&name, Some(&rest), &mut inner))
            });
            let input = inner.keep("", input);
            read.push((input, inner));
        }
        if read.iter().all(|(input, p)| input.is_some() && p.is_empty()) {
            let inputs = read.into_iter().filter_map(|(i, _)| i).collect();
            let made = self.crm.get().run(py, |c, a| c.sales().opportunities().create_many(a, inputs))?;
            return Ok(made.into_iter().map(Opportunity::from).collect());
        }
        // Nothing will be written: each row's own failures and the core's validation of what
        // could be read are reported together under `opportunities[i]`, as Rust does.
        let mut problems = Problems::default();
        for (i, (input, mut inner)) in read.into_iter().enumerate() {
            if let Some(Err(errors)) = input.map(core::NewOpportunity::validate) {
                errors.0.into_iter().for_each(|e| inner.push(e.field, e.reason));
            }
            problems.nest(&format!("opportunities[{i}]"), inner);
        }
        Err(problems.into_error())
    }

    /// An opportunity by id.
    fn get(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Opportunity> {
        let id = opportunity_id(id)?;
        self.crm.get().run(py, |c, a| c.sales().opportunities().get(a, id)).map(Opportunity::from)
    }

    /// An opportunity by code, e.g. "O20240501001".
    fn get_by_code(&self, py: Python<'_>, code: &str) -> PyResult<Opportunity> {
        self.crm.get().run(py, |c, a| c.sales().opportunities().get_by_code(a, code)).map(Opportunity::from)
    }

    /// Changes fields of the opportunity whose current version is `version` (name, amount,
    /// currency, probability — None returns to the stage default —, expected_close, lines,
    /// milestones, cadence_days, contact_id, owner).
    #[pyo3(signature = (id, version, **changes))]
    fn update(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        changes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Opportunity> {
        let version: u64 = crate::convert::int_arg(version, "version")?;
        let id = opportunity_id(id)?;
        let patch = opportunity_patch(changes)?;
        self.crm.get().run(py, |c, a| c.sales().opportunities().update(a, id, version, patch)).map(Opportunity::from)
    }

    /// Moves an opportunity to `stage`; a disallowed move or unmet exit requirement raises
    /// and changes nothing. `lost_reason` for a lost stage; `at` records an earlier move.
    #[pyo3(signature = (id, version, stage, *, lost_reason = None, at = None))]
    fn move_to(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        stage: &str,
        lost_reason: Option<String>,
        at: Option<Time>,
    ) -> PyResult<Opportunity> {
        let version: u64 = crate::convert::int_arg(version, "version")?;
        let id = opportunity_id(id)?;
        let change = guanxi::StageChange { lost_reason, at };
        self.crm
            .get()
            .run(py, |c, a| c.sales().opportunities().move_to(a, id, version, stage, change))
            .map(Opportunity::from)
    }

    /// An opportunity's stage history, oldest first.
    fn history(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Vec<StageHistoryEntry>> {
        let id = opportunity_id(id)?;
        let rows = self.crm.get().run(py, |c, a| c.sales().opportunities().history(a, id))?;
        Ok(rows.into_iter().map(StageHistoryEntry::from).collect())
    }

    /// One page of the opportunities matching the keyword filters (pipeline, stage, open,
    /// customer_id, owner, department), oldest first: `limit` after the cursor `after`.
    #[pyo3(signature = (*, after = None, limit = 100, **filters))]
    fn list(
        &self,
        py: Python<'_>,
        after: Option<&str>,
        limit: i64,
        filters: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Table> {
        let page = page_request(after, limit)?;
        let f = opportunity_filter(filters)?;
        let page = self.crm.get().run(py, |c, a| c.sales().opportunities().list(a, &f, page))?;
        Ok(opportunities_table(page.items).page(page.next))
    }

    /// Every opportunity matching the keyword filters, as one table.
    #[pyo3(signature = (**filters))]
    fn list_all(&self, py: Python<'_>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<Table> {
        let f = opportunity_filter(filters)?;
        Ok(opportunities_table(self.crm.get().run(py, |c, a| c.sales().opportunities().list_all(a, &f))?))
    }

    /// How many opportunities match the keyword filters.
    #[pyo3(signature = (**filters))]
    fn count(&self, py: Python<'_>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<u64> {
        let f = opportunity_filter(filters)?;
        self.crm.get().run(py, |c, a| c.sales().opportunities().count(a, &f))
    }
}

fn leads_table(rows: Vec<core::Lead>) -> Table {
    Table::records(rows, lead_batch, object::<core::Lead, Lead>)
}

fn lead_filter(
    status: Option<&str>,
    open: Option<bool>,
    owner: Option<&str>,
    grade: Option<&str>,
) -> PyResult<core::LeadFilter> {
    let mut problems = Problems::default();
    let f = core::LeadFilter {
        status: status.and_then(|s| problems.keep("status", parse_name("status", s))),
        open,
        owner: owner.and_then(|o| problems.keep("owner", user_id("owner", o))),
        grade: grade.and_then(|g| problems.keep("grade", parse_name("grade", g))),
        scope: None,
    };
    problems.result(f)
}

/// `crm.sales.leads`: prospects before they are customers.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Leads {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Leads {
    /// Creates a lead, graded and assigned by the lead rules.
    #[pyo3(signature = (name, *, company = None, phone = None, email = None, source = None, province = None, industry = None, budget_confirmed = false, need_confirmed = false, owner = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn create(
        &self,
        py: Python<'_>,
        name: &str,
        company: Option<String>,
        phone: Option<String>,
        email: Option<String>,
        source: Option<String>,
        province: Option<String>,
        industry: Option<&str>,
        budget_confirmed: bool,
        need_confirmed: bool,
        owner: Option<&str>,
    ) -> PyResult<Lead> {
        let mut problems = Problems::default();
        let input = core::NewLead {
            name: name.to_owned(),
            company,
            phone,
            email,
            source,
            province,
            industry: industry.and_then(|i| problems.keep("industry", parse_name("industry", i))),
            budget_confirmed,
            need_confirmed,
            owner: owner.and_then(|o| problems.keep("owner", user_id("owner", o))),
        };
        let input = problems.result(input)?;
        self.crm.get().run(py, |c, a| c.sales().leads().create(a, input)).map(Lead::from)
    }

    /// A lead by id.
    fn get(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Lead> {
        let id = LeadId(uuid_from(id, "lead_id")?);
        self.crm.get().run(py, |c, a| c.sales().leads().get(a, id)).map(Lead::from)
    }

    /// One page of the leads matching the filters, oldest first: `limit` after the cursor `after`.
    #[pyo3(signature = (*, after = None, limit = 100, status = None, open = None, owner = None, grade = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn list(
        &self,
        py: Python<'_>,
        after: Option<&str>,
        limit: i64,
        status: Option<&str>,
        open: Option<bool>,
        owner: Option<&str>,
        grade: Option<&str>,
    ) -> PyResult<Table> {
        let page = page_request(after, limit)?;
        let f = lead_filter(status, open, owner, grade)?;
        let page = self.crm.get().run(py, |c, a| c.sales().leads().list(a, &f, page))?;
        Ok(leads_table(page.items).page(page.next))
    }

    /// Every lead matching the filters, as one table.
    #[pyo3(signature = (*, status = None, open = None, owner = None, grade = None))]
    fn list_all(
        &self,
        py: Python<'_>,
        status: Option<&str>,
        open: Option<bool>,
        owner: Option<&str>,
        grade: Option<&str>,
    ) -> PyResult<Table> {
        let f = lead_filter(status, open, owner, grade)?;
        Ok(leads_table(self.crm.get().run(py, |c, a| c.sales().leads().list_all(a, &f))?))
    }

    /// How many leads match the filters.
    #[pyo3(signature = (*, status = None, open = None, owner = None, grade = None))]
    fn count(
        &self,
        py: Python<'_>,
        status: Option<&str>,
        open: Option<bool>,
        owner: Option<&str>,
        grade: Option<&str>,
    ) -> PyResult<u64> {
        let f = lead_filter(status, open, owner, grade)?;
        self.crm.get().run(py, |c, a| c.sales().leads().count(a, &f))
    }

    /// Converts a lead into a customer, primary contact and — given `opportunity`, a dict of
    /// `opportunities.create`'s arguments with "name" — an opportunity, in one transaction. An
    /// existing matching customer is linked instead (`linked_existing`, `matched_by`).
    #[pyo3(signature = (id, *, opportunity = None))]
    fn convert(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        opportunity: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<LeadConversion> {
        let id = LeadId(uuid_from(id, "lead_id")?);
        let opportunity = opportunity
            .map(|d| {
                let rest = d.copy()?;
                let name: String =
                    rest.get_item("name")?.ok_or_else(|| invalid_arg("opportunity.name", "is required"))?.extract()?;
                rest.del_item("name")?;
                new_opportunity(&name, Some(&rest))
            })
            .transpose()?;
        let options = guanxi::ConvertLead { opportunity };
        self.crm.get().run(py, |c, a| c.sales().leads().convert(a, id, options)).map(LeadConversion::from)
    }
}

fn tasks_table(rows: Vec<core::Task>) -> Table {
    Table::records(rows, task_batch, object::<core::Task, Task>)
}

/// `crm.sales.tasks`: to-dos with a due instant, on an opportunity or a customer.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Tasks {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Tasks {
    /// Creates a task due at `due_at`.
    #[pyo3(signature = (title, due_at, *, notes = None, owner = None, opportunity_id = None, customer_id = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn create(
        &self,
        py: Python<'_>,
        title: &str,
        due_at: Time,
        notes: Option<String>,
        owner: Option<&str>,
        opportunity_id: Option<&Bound<'_, PyAny>>,
        customer_id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Task> {
        let mut input = core::NewTask::new(title, due_at);
        input.notes = notes;
        input.owner = owner.map(|o| user_id("owner", o)).transpose()?;
        input.opportunity_id = opportunity_id.map(self::opportunity_id).transpose()?;
        input.customer_id = customer_id.map(customer_id_from).transpose()?;
        self.crm.get().run(py, |c, a| c.sales().tasks().create(a, input)).map(Task::from)
    }

    /// Marks a task done (counts as activity on its opportunity).
    fn complete(&self, py: Python<'_>, id: &Bound<'_, PyAny>, version: u64) -> PyResult<Task> {
        let id = TaskId(uuid_from(id, "task_id")?);
        self.crm.get().run(py, |c, a| c.sales().tasks().complete(a, id, version)).map(Task::from)
    }

    /// A task by id.
    fn get(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Task> {
        let id = TaskId(uuid_from(id, "task_id")?);
        self.crm.get().run(py, |c, a| c.sales().tasks().get(a, id)).map(Task::from)
    }

    /// One page of the tasks matching the filters, oldest first: `limit` after the cursor `after`.
    #[pyo3(signature = (*, after = None, limit = 100, owner = None, opportunity_id = None, open = None))]
    fn list(
        &self,
        py: Python<'_>,
        after: Option<&str>,
        limit: i64,
        owner: Option<&str>,
        opportunity_id: Option<&Bound<'_, PyAny>>,
        open: Option<bool>,
    ) -> PyResult<Table> {
        let page = page_request(after, limit)?;
        let f = task_filter(owner, opportunity_id, open)?;
        let page = self.crm.get().run(py, |c, a| c.sales().tasks().list(a, &f, page))?;
        Ok(tasks_table(page.items).page(page.next))
    }

    /// Every task matching the filters, by due instant, as one table.
    #[pyo3(signature = (*, owner = None, opportunity_id = None, open = None))]
    fn list_all(
        &self,
        py: Python<'_>,
        owner: Option<&str>,
        opportunity_id: Option<&Bound<'_, PyAny>>,
        open: Option<bool>,
    ) -> PyResult<Table> {
        let f = task_filter(owner, opportunity_id, open)?;
        Ok(tasks_table(self.crm.get().run(py, |c, a| c.sales().tasks().list_all(a, &f))?))
    }

    /// How many tasks match the filters.
    #[pyo3(signature = (*, owner = None, opportunity_id = None, open = None))]
    fn count(
        &self,
        py: Python<'_>,
        owner: Option<&str>,
        opportunity_id: Option<&Bound<'_, PyAny>>,
        open: Option<bool>,
    ) -> PyResult<u64> {
        let f = task_filter(owner, opportunity_id, open)?;
        self.crm.get().run(py, |c, a| c.sales().tasks().count(a, &f))
    }
}

fn task_filter(
    owner: Option<&str>,
    opportunity_id: Option<&Bound<'_, PyAny>>,
    open: Option<bool>,
) -> PyResult<core::TaskFilter> {
    Ok(core::TaskFilter {
        owner: owner.map(|o| user_id("owner", o)).transpose()?,
        opportunity_id: opportunity_id.map(self::opportunity_id).transpose()?,
        open,
        scope: None,
    })
}

/// Registers the sales classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Sales>()?;
    m.add_class::<Stage>()?;
    m.add_class::<Pipeline>()?;
    m.add_class::<ProductLine>()?;
    m.add_class::<Milestone>()?;
    m.add_class::<Opportunity>()?;
    m.add_class::<StageHistoryEntry>()?;
    m.add_class::<Lead>()?;
    m.add_class::<LeadConversion>()?;
    m.add_class::<Task>()?;
    m.add_class::<AgendaItem>()?;
    m.add_class::<Agenda>()?;
    m.add_class::<CycleStats>()?;
    m.add_class::<SalesReport>()?;
    m.add_class::<Opportunities>()?;
    m.add_class::<Leads>()?;
    m.add_class::<Tasks>()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_lines_round_trip_exactly() {
        let core =
            core::ProductLine::new("GTX Pro", Decimal::from(3), Decimal::new(49_999, 2), Decimal::new(10, 0)).unwrap();
        let mirrored = ProductLine::from(core.clone());
        assert_eq!(mirrored.total, Decimal::new(148_997, 2));
        assert_eq!(core::ProductLine::from(mirrored), core);
    }

    #[test]
    fn pipelines_round_trip() {
        let p = core::Pipeline::standard();
        assert_eq!(Pipeline::from(p.clone()).into_core().ok(), Some(p));
    }
}
