//! Sales for Kotlin and Swift: records mirroring `guanxi::sales`, and the `Crm` methods that
//! convert them around one facade call each. Lead rules travel as their JSON document (the
//! serde shape of `guanxi::sales::LeadRules`), since their conditions nest.

use std::collections::HashMap;

// The vocabularies are guanxi-core's own enums, derived there (feature `uniffi`).
pub use guanxi::sales::{LeadGrade, StageKind};
// Records exported as guanxi-core declares them.
use guanxi::sales as core;
pub use guanxi::sales::{
    Lead, LeadConversion, Milestone, Opportunity, ProductLine, SalesReport, StageHistoryEntry, Task,
};
use guanxi::{LeadId, OpportunityId, TaskId, UserId};

use std::sync::Arc;

use crate::{DateTime, Day, Decimal, Result, Uuid, user_id};
use crate::{PageRequest, handle, next_of, page};

fn user(field: &str, v: Option<String>) -> Result<Option<UserId>> {
    v.map(|u| user_id(field, &u)).transpose()
}

/// One stage of a pipeline.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Stage {
    pub key: String,
    pub name: String,
    pub kind: StageKind,
    pub probability: Decimal,
    #[uniffi(default = [])]
    pub exit_requirements: Vec<String>,
    #[uniffi(default = None)]
    pub rotting_days: Option<u32>,
}

/// A pipeline: ordered stages, allowed moves by stage (absent: the default rule), lost reasons.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Pipeline {
    pub key: String,
    pub name: String,
    pub stages: Vec<Stage>,
    #[uniffi(default = [])]
    pub lost_reasons: Vec<String>,
    #[uniffi(default)]
    pub transitions: HashMap<String, Vec<String>>,
}

impl From<core::Pipeline> for Pipeline {
    fn from(p: core::Pipeline) -> Self {
        Pipeline {
            stages: p
                .stages
                .into_iter()
                .map(|s| Stage {
                    key: s.key,
                    name: s.name,
                    kind: s.kind,
                    probability: s.probability,
                    exit_requirements: s.exit_requirements.into_iter().collect(),
                    rotting_days: s.rotting_days,
                })
                .collect(),
            key: p.key,
            name: p.name,
            lost_reasons: p.lost_reasons,
            transitions: p.transitions.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect(),
        }
    }
}

impl Pipeline {
    fn into_core(self) -> Result<core::Pipeline> {
        Ok(core::Pipeline {
            stages: self
                .stages
                .into_iter()
                .map(|s| {
                    Ok(core::Stage {
                        kind: s.kind,
                        key: s.key,
                        name: s.name,
                        probability: s.probability,
                        exit_requirements: s.exit_requirements.into_iter().collect(),
                        rotting_days: s.rotting_days,
                    })
                })
                .collect::<Result<_>>()?,
            key: self.key,
            name: self.name,
            lost_reasons: self.lost_reasons,
            transitions: self.transitions.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect(),
        })
    }
}

/// Product lines as given, each validated as `ProductLine::new` does (a struct literal skips it).
fn lines_in(lines: Vec<ProductLine>) -> Result<Vec<ProductLine>> {
    Ok(lines
        .into_iter()
        .map(|l| core::ProductLine::new(&l.product, l.quantity, l.unit_price, l.discount))
        .collect::<guanxi::Result<_>>()?)
}

/// A new opportunity; unset fields take the facade's defaults (standard pipeline, its first
/// open stage, CNY, the stage's probability, the acting user as owner, opened now).
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct NewOpportunity {
    pub name: String,
    #[uniffi(default = None)]
    pub customer_id: Option<Uuid>,
    #[uniffi(default = None)]
    pub contact_id: Option<Uuid>,
    #[uniffi(default = None)]
    pub pipeline: Option<String>,
    #[uniffi(default = None)]
    pub stage: Option<String>,
    #[uniffi(default = None)]
    pub amount: Option<Decimal>,
    #[uniffi(default = None)]
    pub currency: Option<String>,
    #[uniffi(default = None)]
    pub probability: Option<Decimal>,
    #[uniffi(default = None)]
    pub expected_close: Option<Day>,
    #[uniffi(default = [])]
    pub lines: Vec<ProductLine>,
    #[uniffi(default = [])]
    pub milestones: Vec<Milestone>,
    #[uniffi(default = None)]
    pub cadence_days: Option<u32>,
    #[uniffi(default = None)]
    pub owner: Option<String>,
    #[uniffi(default = None)]
    pub opened_at: Option<DateTime>,
    /// Stage moves made before it reached guanxi (an imported deal already won or lost),
    /// applied in order, each at its own instant.
    #[uniffi(default = [])]
    pub moves: Vec<core::PastMove>,
}

impl NewOpportunity {
    fn into_core(self) -> Result<core::NewOpportunity> {
        let mut o = core::NewOpportunity::new(&self.name);
        o.customer_id = self.customer_id.map(guanxi::CustomerId);
        o.contact_id = self.contact_id.map(guanxi::ContactId);
        o.pipeline = self.pipeline;
        o.stage = self.stage;
        o.amount = self.amount;
        if let Some(c) = self.currency {
            o.currency = c;
        }
        o.probability = self.probability;
        o.expected_close = self.expected_close;
        o.lines = lines_in(self.lines)?;
        o.milestones = self.milestones.into_iter().collect();
        o.cadence_days = self.cadence_days;
        o.owner = user("owner", self.owner)?;
        o.opened_at = self.opened_at;
        o.moves = self.moves;
        Ok(o)
    }
}

/// Changes to an opportunity: null leaves a field; `reset_probability` returns to the stage
/// default, `clear_expected_close` removes the day.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct OpportunityPatch {
    #[uniffi(default = None)]
    pub name: Option<String>,
    #[uniffi(default = None)]
    pub amount: Option<Decimal>,
    #[uniffi(default = None)]
    pub currency: Option<String>,
    #[uniffi(default = None)]
    pub probability: Option<Decimal>,
    #[uniffi(default = false)]
    pub reset_probability: bool,
    #[uniffi(default = None)]
    pub expected_close: Option<Day>,
    #[uniffi(default = false)]
    pub clear_expected_close: bool,
    #[uniffi(default = None)]
    pub lines: Option<Vec<ProductLine>>,
    #[uniffi(default = None)]
    pub cadence_days: Option<u32>,
    #[uniffi(default = None)]
    pub owner: Option<String>,
}

impl OpportunityPatch {
    fn into_core(self) -> Result<core::OpportunityPatch> {
        Ok(core::OpportunityPatch {
            name: self.name,
            amount: self.amount,
            currency: self.currency,
            probability: if self.reset_probability { Some(None) } else { self.probability.map(Some) },
            expected_close: if self.clear_expected_close { Some(None) } else { self.expected_close.map(Some) },
            lines: self.lines.map(lines_in).transpose()?,
            milestones: None,
            cadence_days: self.cadence_days.map(Some),
            contact_id: None,
            owner: user("owner", self.owner)?,
        })
    }
}

/// A new lead.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct NewLead {
    pub name: String,
    #[uniffi(default = None)]
    pub company: Option<String>,
    #[uniffi(default = None)]
    pub phone: Option<String>,
    #[uniffi(default = None)]
    pub email: Option<String>,
    #[uniffi(default = None)]
    pub source: Option<String>,
    #[uniffi(default = None)]
    pub province: Option<String>,
    #[uniffi(default = None)]
    pub industry: Option<guanxi::Industry>,
    #[uniffi(default = false)]
    pub budget_confirmed: bool,
    #[uniffi(default = false)]
    pub need_confirmed: bool,
    #[uniffi(default = None)]
    pub owner: Option<String>,
}

/// Something due on an agenda.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum AgendaItem {
    Task { task: Task },
    FollowUp { opportunity_id: Uuid, code: String, due_at: DateTime },
}

impl From<core::AgendaItem> for AgendaItem {
    fn from(i: core::AgendaItem) -> Self {
        match i {
            core::AgendaItem::Task(t) => AgendaItem::Task { task: t },
            core::AgendaItem::FollowUp { opportunity, code, due_at } => {
                AgendaItem::FollowUp { opportunity_id: opportunity.0, code, due_at }
            }
        }
    }
}

/// A user's agenda at an instant.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Agenda {
    pub overdue: Vec<AgendaItem>,
    pub due_today: Vec<AgendaItem>,
    /// Codes of rotting opportunities.
    pub rotting: Vec<String>,
}

/// The report's query: `from`/`to` bound when deals opened (funnel), closed (win rate, cycles,
/// won amounts) or are expected to close (forecast); `currency` is needed with several.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct SalesQuery {
    #[uniffi(default = "standard")]
    pub pipeline: String,
    #[uniffi(default = None)]
    pub from: Option<DateTime>,
    #[uniffi(default = None)]
    pub to: Option<DateTime>,
    #[uniffi(default = None)]
    pub currency: Option<String>,
    #[uniffi(default = None)]
    pub owner: Option<String>,
}

fn opportunity_filter(
    stage: Option<String>,
    open: Option<bool>,
    owner: Option<String>,
) -> Result<core::OpportunityFilter> {
    Ok(core::OpportunityFilter { stage, open, owner: user("owner", owner)?, ..Default::default() })
}

handle! {
    /// `crm.sales()`: pipelines, lead rules, the sales report, the agenda; `opportunities()`, `leads()`, `tasks()`.
    Sales
}

#[uniffi::export]
impl Sales {
    /// deals through the stages of a pipeline.
    pub fn opportunities(&self) -> Arc<Opportunities> {
        Arc::new(Opportunities { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// prospects before they are customers.
    pub fn leads(&self) -> Arc<Leads> {
        Arc::new(Leads { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// to-dos with a due instant.
    pub fn tasks(&self) -> Arc<Tasks> {
        Arc::new(Tasks { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// A pipeline by key (the built-in "standard" until one of that key is stored).
    pub fn pipeline(&self, key: String) -> Result<Pipeline> {
        Ok(self.inner.sales().pipeline(&self.actor, &key)?.into())
    }

    /// Stores a pipeline (new, or replacing the one of its key).
    pub fn set_pipeline(&self, pipeline: Pipeline) -> Result<Pipeline> {
        Ok(self.inner.sales().set_pipeline(&self.actor, pipeline.into_core()?)?.into())
    }

    /// The lead rules: how new leads are graded and to whom they are assigned.
    pub fn lead_rules(&self) -> Result<LeadRules> {
        Ok(self.inner.sales().lead_rules(&self.actor)?.into())
    }

    /// Replaces the lead rules; an unknown user or industry is a validation error naming the rule.
    pub fn set_lead_rules(&self, rules: LeadRules) -> Result<LeadRules> {
        let rules = rules.into_core()?;
        Ok(self.inner.sales().set_lead_rules(&self.actor, rules)?.into())
    }

    /// The funnel, win rate, cycle times, won amounts and forecast of a pipeline.
    pub fn report(&self, query: SalesQuery) -> Result<SalesReport> {
        let mut q = core::SalesQuery::new(&query.pipeline);
        q.from = query.from;
        q.to = query.to;
        q.currency = query.currency;
        q.owner = user("owner", query.owner)?;
        Ok(self.inner.sales().report(&self.actor, &q)?)
    }

    /// `user`'s agenda (null: the acting user) at `at` (null: now by the CRM's clock).
    pub fn agenda(&self, user: Option<String>, at: Option<DateTime>) -> Result<Agenda> {
        let who = match self::user("user", user)? {
            Some(u) => u,
            None => self.actor.user_id().clone(),
        };
        let a = self.inner.sales().agenda(&self.actor, &who, at.unwrap_or_else(|| self.inner.now()))?;
        Ok(Agenda {
            overdue: a.overdue.into_iter().map(Into::into).collect(),
            due_today: a.due_today.into_iter().map(Into::into).collect(),
            rotting: a.rotting,
        })
    }
}

handle! {
    /// `crm.sales().opportunities()`: deals through the stages of a pipeline.
    Opportunities
}

#[uniffi::export]
impl Opportunities {
    /// Creates an opportunity.
    pub fn create(&self, input: NewOpportunity) -> Result<Opportunity> {
        Ok(self.inner.sales().opportunities().create(&self.actor, input.into_core()?)?)
    }

    /// Opens many opportunities in one transaction: all of them or, on any failure, none.
    /// Every bad field of every input is reported together, under `opportunities[i].<field>`.
    pub fn create_many(&self, inputs: Vec<NewOpportunity>) -> Result<Vec<Opportunity>> {
        let inputs = crate::convert_all("opportunities", inputs, NewOpportunity::into_core)?;
        Ok(self.inner.sales().opportunities().create_many(&self.actor, inputs)?)
    }

    /// An opportunity by id.
    pub fn get(&self, id: Uuid) -> Result<Opportunity> {
        Ok(self.inner.sales().opportunities().get(&self.actor, OpportunityId(id))?)
    }

    /// An opportunity by code, e.g. "O20240501001".
    pub fn get_by_code(&self, code: String) -> Result<Opportunity> {
        Ok(self.inner.sales().opportunities().get_by_code(&self.actor, &code)?)
    }

    /// Changes the fields the patch sets; a stale `version` is a Conflict.
    pub fn update(&self, id: Uuid, version: u64, patch: OpportunityPatch) -> Result<Opportunity> {
        Ok(self.inner.sales().opportunities().update(&self.actor, OpportunityId(id), version, patch.into_core()?)?)
    }

    /// Moves to `stage`; a disallowed move or unmet exit requirement is an error and changes nothing.
    pub fn move_to(
        &self,
        id: Uuid,
        version: u64,
        stage: String,
        lost_reason: Option<String>,
        at: Option<DateTime>,
    ) -> Result<Opportunity> {
        let change = guanxi::StageChange { lost_reason, at };
        Ok(self.inner.sales().opportunities().move_to(&self.actor, OpportunityId(id), version, &stage, change)?)
    }

    /// An opportunity's stage history, oldest first.
    pub fn history(&self, id: Uuid) -> Result<Vec<StageHistoryEntry>> {
        Ok(self.inner.sales().opportunities().history(&self.actor, OpportunityId(id))?.into_iter().collect())
    }

    /// Opportunities by stage, open or closed, and owner (each null for any).
    pub fn list_all(
        &self,
        stage: Option<String>,
        open: Option<bool>,
        owner: Option<String>,
    ) -> Result<Vec<Opportunity>> {
        let f = opportunity_filter(stage, open, owner)?;
        Ok(self.inner.sales().opportunities().list_all(&self.actor, &f)?.into_iter().collect())
    }

    /// One page of the opportunities by stage, open or closed, and owner (each null for any).
    pub fn list(
        &self,
        stage: Option<String>,
        open: Option<bool>,
        owner: Option<String>,
        page: PageRequest,
    ) -> Result<OpportunityPage> {
        let f = opportunity_filter(stage, open, owner)?;
        Ok(self.inner.sales().opportunities().list(&self.actor, &f, page.into_core()?)?.into())
    }

    /// How many opportunities match.
    pub fn count(&self, stage: Option<String>, open: Option<bool>, owner: Option<String>) -> Result<u64> {
        Ok(self.inner.sales().opportunities().count(&self.actor, &opportunity_filter(stage, open, owner)?)?)
    }
}

handle! {
    /// `crm.sales().leads()`: prospects before they are customers.
    Leads
}

#[uniffi::export]
impl Leads {
    /// Creates a lead, graded and assigned by the lead rules.
    pub fn create(&self, input: NewLead) -> Result<Lead> {
        let lead = core::NewLead {
            name: input.name,
            company: input.company,
            phone: input.phone,
            email: input.email,
            source: input.source,
            province: input.province,
            industry: input.industry,
            budget_confirmed: input.budget_confirmed,
            need_confirmed: input.need_confirmed,
            owner: user("owner", input.owner)?,
        };
        Ok(self.inner.sales().leads().create(&self.actor, lead)?)
    }

    /// A lead by id.
    pub fn get(&self, id: Uuid) -> Result<Lead> {
        Ok(self.inner.sales().leads().get(&self.actor, LeadId(id))?)
    }

    /// Leads by owner and open (new or assigned), each null for any.
    /// One page of the leads by owner and open or closed (each null for any).
    pub fn list(&self, owner: Option<String>, open: Option<bool>, page: PageRequest) -> Result<LeadPage> {
        let f = core::LeadFilter { owner: user("owner", owner)?, open, ..Default::default() };
        Ok(self.inner.sales().leads().list(&self.actor, &f, page.into_core()?)?.into())
    }

    /// How many leads match.
    pub fn count(&self, owner: Option<String>, open: Option<bool>) -> Result<u64> {
        let f = core::LeadFilter { owner: user("owner", owner)?, open, ..Default::default() };
        Ok(self.inner.sales().leads().count(&self.actor, &f)?)
    }

    /// Every lead by owner and open or closed (each null for any).
    pub fn list_all(&self, owner: Option<String>, open: Option<bool>) -> Result<Vec<Lead>> {
        let f = core::LeadFilter { owner: user("owner", owner)?, open, ..Default::default() };
        Ok(self.inner.sales().leads().list_all(&self.actor, &f)?.into_iter().collect())
    }

    /// Converts a lead into customer, primary contact and (given) opportunity in one
    /// transaction, linking an existing matching customer instead of duplicating it.
    pub fn convert(&self, id: Uuid, opportunity: Option<NewOpportunity>) -> Result<LeadConversion> {
        let options = guanxi::ConvertLead { opportunity: opportunity.map(NewOpportunity::into_core).transpose()? };
        Ok(self.inner.sales().leads().convert(&self.actor, LeadId(id), options)?)
    }
}

handle! {
    /// `crm.sales().tasks()`: to-dos with a due instant.
    Tasks
}

#[uniffi::export]
impl Tasks {
    /// Creates a task due at `due_at`.
    pub fn create(
        &self,
        title: String,
        due_at: DateTime,
        opportunity_id: Option<Uuid>,
        owner: Option<String>,
    ) -> Result<Task> {
        let mut t = core::NewTask::new(&title, due_at);
        t.opportunity_id = opportunity_id.map(OpportunityId);
        t.owner = user("owner", owner)?;
        Ok(self.inner.sales().tasks().create(&self.actor, t)?)
    }

    /// Marks a task done (counts as activity on its opportunity).
    pub fn complete(&self, id: Uuid, version: u64) -> Result<Task> {
        Ok(self.inner.sales().tasks().complete(&self.actor, TaskId(id), version)?)
    }

    /// A task by id.
    pub fn get(&self, id: Uuid) -> Result<Task> {
        Ok(self.inner.sales().tasks().get(&self.actor, TaskId(id))?)
    }

    /// One page of the tasks by owner and open or done (each null for any), oldest first.
    pub fn list(&self, owner: Option<String>, open: Option<bool>, page: PageRequest) -> Result<TaskPage> {
        let f = core::TaskFilter { owner: user("owner", owner)?, open, ..Default::default() };
        Ok(self.inner.sales().tasks().list(&self.actor, &f, page.into_core()?)?.into())
    }

    /// How many tasks match.
    pub fn count(&self, owner: Option<String>, open: Option<bool>) -> Result<u64> {
        let f = core::TaskFilter { owner: user("owner", owner)?, open, ..Default::default() };
        Ok(self.inner.sales().tasks().count(&self.actor, &f)?)
    }

    /// Every task by owner and open or done (each null for any), by due instant.
    pub fn list_all(&self, owner: Option<String>, open: Option<bool>) -> Result<Vec<Task>> {
        let f = core::TaskFilter { owner: user("owner", owner)?, open, ..Default::default() };
        Ok(self.inner.sales().tasks().list_all(&self.actor, &f)?.into_iter().collect())
    }
}

page!(
    /// One page of tasks.
    TaskPage of Task
);

page!(
    /// One page of opportunities.
    OpportunityPage of Opportunity
);

page!(
    /// One page of leads.
    LeadPage of Lead
);

/// One condition a lead meets; a grade rule holds when all of its conditions do.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum LeadCondition {
    /// Its source is one of these.
    SourceIn { sources: Vec<String> },
    /// Its industry is one of these.
    IndustryIn { industries: Vec<guanxi::Industry> },
    /// The budget is confirmed.
    BudgetConfirmed,
    /// The need is confirmed.
    NeedConfirmed,
}

/// A lead gets `grade` when every condition holds; the first rule that holds wins, else C.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct GradeRule {
    pub grade: LeadGrade,
    pub when_all: Vec<LeadCondition>,
}

/// Who a new lead goes to; the first rule that names someone wins.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum AssignmentRule {
    /// By the lead's province (full name, e.g. 广东省) → user.
    ByProvince { owners: HashMap<String, String> },
    /// By the lead's industry → user.
    ByIndustry { owners: HashMap<guanxi::Industry, String> },
    /// These users in turn.
    RoundRobin { users: Vec<String> },
    /// Whichever of these users has the fewest open leads.
    LeastLoaded { users: Vec<String> },
}

/// How leads are graded and assigned (the typed form of the lead-rules document).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct LeadRules {
    #[uniffi(default = [])]
    pub grading: Vec<GradeRule>,
    #[uniffi(default = [])]
    pub assignment: Vec<AssignmentRule>,
}

/// The conditions of a core condition, flattened: `All` is a conjunction, so nesting adds nothing.
fn flatten(c: core::LeadCondition, out: &mut Vec<LeadCondition>) {
    match c {
        core::LeadCondition::SourceIn(sources) => out.push(LeadCondition::SourceIn { sources }),
        core::LeadCondition::IndustryIn(i) => {
            out.push(LeadCondition::IndustryIn { industries: i.into_iter().collect() })
        }
        core::LeadCondition::BudgetConfirmed => out.push(LeadCondition::BudgetConfirmed),
        core::LeadCondition::NeedConfirmed => out.push(LeadCondition::NeedConfirmed),
        core::LeadCondition::All(all) => all.into_iter().for_each(|c| flatten(c, out)),
    }
}

impl From<core::LeadRules> for LeadRules {
    fn from(r: core::LeadRules) -> Self {
        let grading = r
            .grading
            .into_iter()
            .map(|g| {
                let mut when_all = Vec::new();
                flatten(g.when, &mut when_all);
                GradeRule { grade: g.grade, when_all }
            })
            .collect();
        let names = |users: Vec<UserId>| users.into_iter().map(|u| u.to_string()).collect();
        let assignment = r
            .assignment
            .into_iter()
            .map(|a| match a {
                core::AssignmentRule::ByProvince(m) => {
                    AssignmentRule::ByProvince { owners: m.into_iter().map(|(p, u)| (p, u.to_string())).collect() }
                }
                core::AssignmentRule::ByIndustry(m) => {
                    AssignmentRule::ByIndustry { owners: m.into_iter().map(|(i, u)| (i, u.to_string())).collect() }
                }
                core::AssignmentRule::RoundRobin(u) => AssignmentRule::RoundRobin { users: names(u) },
                core::AssignmentRule::LeastLoaded(u) => AssignmentRule::LeastLoaded { users: names(u) },
            })
            .collect();
        LeadRules { grading, assignment }
    }
}

impl LeadRules {
    /// The core rules; every bad user id is reported, under its rule's path.
    fn into_core(self) -> Result<core::LeadRules> {
        let mut errs = guanxi::ValidationErrors::default();
        let grading = self
            .grading
            .into_iter()
            .map(|g| {
                let all = g
                    .when_all
                    .into_iter()
                    .map(|c| match c {
                        LeadCondition::SourceIn { sources } => core::LeadCondition::SourceIn(sources),
                        LeadCondition::IndustryIn { industries } => {
                            core::LeadCondition::IndustryIn(industries.into_iter().collect())
                        }
                        LeadCondition::BudgetConfirmed => core::LeadCondition::BudgetConfirmed,
                        LeadCondition::NeedConfirmed => core::LeadCondition::NeedConfirmed,
                    })
                    .collect();
                core::GradeRule { grade: g.grade, when: core::LeadCondition::All(all) }
            })
            .collect();
        let mut assignment = Vec::new();
        for (i, a) in self.assignment.into_iter().enumerate() {
            let path = format!("assignment[{i}]");
            assignment.push(match a {
                AssignmentRule::ByProvince { owners } => {
                    let (provinces, names): (Vec<String>, Vec<String>) = owners.into_iter().unzip();
                    let ids = users(&mut errs, &path, names);
                    core::AssignmentRule::ByProvince(provinces.into_iter().zip(ids).collect())
                }
                AssignmentRule::ByIndustry { owners } => {
                    let (sections, names): (Vec<guanxi::Industry>, Vec<String>) = owners.into_iter().unzip();
                    let ids = users(&mut errs, &path, names);
                    core::AssignmentRule::ByIndustry(sections.into_iter().zip(ids).collect())
                }
                AssignmentRule::RoundRobin { users: names } => {
                    core::AssignmentRule::RoundRobin(users(&mut errs, &path, names))
                }
                AssignmentRule::LeastLoaded { users: names } => {
                    core::AssignmentRule::LeastLoaded(users(&mut errs, &path, names))
                }
            });
        }
        Ok(errs.into_result(core::LeadRules { grading, assignment })?)
    }
}

/// User ids by name; each bad one is a reason under `path`.
fn users(errs: &mut guanxi::ValidationErrors, path: &str, names: Vec<String>) -> Vec<UserId> {
    let mut out = Vec::new();
    for n in names {
        match UserId::new(&n) {
            Ok(u) => out.push(u),
            Err(_) => errs.push(path, guanxi::ValidationReason::Invalid { detail: format!("'{n}' is not a user id") }),
        }
    }
    out
}
