//! The facade's sales calls: pipelines and lead rules, opportunities and their stage moves,
//! leads with grading, assignment and conversion, tasks and agendas, and the sales report.
//! Each runs permission check → validation → one atomic batch with its log entries → events.

use chrono::{DateTime, Utc};

use guanxi_core::access::Scoped;
use guanxi_core::changelog::{Stamp, diff_json};
use guanxi_core::sales::{
    Agenda, ConversionMatch, LeadConversion, LeadFilter, LeadRules, LeadStatus, NewLead, NewOpportunity, NewTask,
    Opportunity, OpportunityFilter, OpportunityPatch, Pipeline, SalesQuery, SalesReport, StageHistoryEntry, StageKind,
    Task, TaskFilter, conversion_match, currency_code,
};
use guanxi_core::store::Setting;
use guanxi_core::{
    Action, Actor, ChangeAction, DomainEvent, EntityKind, Error, LeadId, OpportunityId, Page, PageRequest, Result,
    TaskId, ValidationErrors, ValidationReason, sales::Lead,
};

use crate::crm::Crm;
use crate::dedup_facade::{ProfileCache, input_profile};
use crate::handles::{Leads, Opportunities, Sales, Tasks};
use crate::permission::Allowed;
use crate::plumbing::{check_version, decode, to_json, walk_pages};
use crate::write::{Entry, WriteTx};

const LEAD_RULES: &str = "lead_rules";

/// Where stored pipelines live among the settings: `pipeline.<key>`.
const PIPELINE_PREFIX: &str = "pipeline.";

/// A refused past move (`moves[k]` of a new opportunity) as a validation error of that move, so
/// a batch reports it with every other bad field.
fn past_move_error(k: usize, e: Error) -> Error {
    let prefix = format!("moves[{k}]");
    match e {
        Error::Validation(v) => {
            let mut errs = ValidationErrors::default();
            errs.extend_nested(&prefix, v);
            Error::Validation(errs)
        }
        Error::InvalidState(detail) => Error::invalid(format!("{prefix}.stage"), ValidationReason::Invalid { detail }),
        other => other,
    }
}

/// One stage move of `current` by the pipeline's rule, at `at`, after the history entry `last`:
/// the record after it, its history entry and its event. Nothing is staged.
fn stage_move(
    p: &Pipeline,
    current: &Opportunity,
    last: &StageHistoryEntry,
    to: &str,
    lost_reason: Option<&str>,
    at: DateTime<Utc>,
    actor: &Actor,
) -> Result<(Opportunity, StageHistoryEntry, DomainEvent)> {
    let (state, change) = p.move_to(&current.sales_state(), to, lost_reason)?;
    let kind = p.stage(to).map(|s| s.kind);
    let next = Opportunity {
        stage: state.stage.clone(),
        furthest_stage: p.further(&current.furthest_stage, &state.stage).to_owned(),
        probability: state.probability,
        probability_source: state.probability_source,
        lost_reason: state.lost_reason.clone(),
        won_at: (kind == Some(StageKind::Won)).then_some(at),
        lost_at: (kind == Some(StageKind::Lost)).then_some(at),
        last_activity_at: current.last_activity_at.max(at),
        ..current.clone()
    };
    let entry = StageHistoryEntry {
        opportunity_id: current.id,
        seq: last.seq + 1,
        change,
        at,
        by: actor.user_id().clone(),
        from_entered_at: Some(last.at),
        lost_reason: state.lost_reason,
    };
    let event =
        DomainEvent::StageChanged { opportunity: current.id, from: current.stage.clone(), to: next.stage.clone() };
    Ok((next, entry, event))
}

/// The per-day sequence of opportunity codes.
fn opportunity_sequence(day: chrono::NaiveDate) -> String {
    format!("O{}", day.format("%Y%m%d"))
}

fn pipeline_key(key: &str) -> String {
    format!("{PIPELINE_PREFIX}{key}")
}

/// Options of a stage move.
///
/// ```
/// use guanxi::StageChange;
/// let lose = StageChange::default().lost_reason("价格偏高");
/// assert_eq!(lose.lost_reason.as_deref(), Some("价格偏高"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageChange {
    /// Why, when moving to a lost stage (one of the pipeline's reasons).
    pub lost_reason: Option<String>,
    /// When the move happened (default now; not before the previous move, not in the future):
    /// for recording moves made elsewhere, e.g. on import.
    pub at: Option<DateTime<Utc>>,
}

impl StageChange {
    /// Gives the lost reason.
    pub fn lost_reason(mut self, reason: &str) -> Self {
        self.lost_reason = Some(reason.to_owned());
        self
    }

    /// Sets when the move happened.
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = Some(at);
        self
    }
}

/// What converting a lead creates besides the customer and contact.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertLead {
    /// The opportunity to open (its customer and contact are filled in); none opens no opportunity.
    pub opportunity: Option<NewOpportunity>,
}

impl Crm {
    // ----- configuration -----

    pub(crate) fn load_pipeline(&self, key: &str) -> Result<Pipeline> {
        match self.store.setting(&pipeline_key(key))? {
            Some(s) => decode(&s),
            None if key == Pipeline::standard().key => Ok(Pipeline::standard()),
            None => {
                // Only on the error path: the pipelines there are, to name them.
                let mut keys = vec![Pipeline::standard().key];
                let stored = self.store.settings()?;
                keys.extend(stored.into_iter().filter_map(|s| s.key.strip_prefix(PIPELINE_PREFIX).map(str::to_owned)));
                keys.sort();
                keys.dedup();
                Err(Error::invalid("pipeline", ValidationReason::not_allowed(key, keys)))
            }
        }
    }

    /// Stores a settings document (insert or versioned update) with its log entry and event.
    #[allow(clippy::too_many_arguments)] // one document write, each part named
    pub(crate) fn put_setting<T: serde::Serialize>(
        &self,
        actor: &Actor,
        granted: &Allowed,
        key: String,
        stored: Option<Setting>,
        value: &T,
        before: Option<serde_json::Value>,
        entity: EntityKind,
        event: DomainEvent,
    ) -> Result<()> {
        let action = if before.is_some() { ChangeAction::Update } else { ChangeAction::Create };
        let diff = diff_json(&before.unwrap_or(serde_json::Value::Null), &to_json(value), &[], &[]);
        let mut tx = self.begin(granted, actor);
        let entry = Entry::new(entity, &key, action, diff);
        tx.put_setting(key, stored, value, [entry], [event])?;
        tx.commit().map(drop)
    }

    fn load_lead_rules(&self) -> Result<LeadRules> {
        self.store.setting(LEAD_RULES)?.map_or_else(|| Ok(LeadRules::standard()), |s| decode(&s))
    }

    // ----- opportunities -----

    /// Validates a new opportunity and adds it, its lines' first history entry and its log
    /// entry to a batch. `staged_customer`: a customer created in the same batch.
    pub(crate) fn stage_opportunity(
        &self,
        tx: &mut WriteTx<'_>,
        actor: &Actor,
        allowed: &Allowed,
        input: NewOpportunity,
        staged_customer: Option<&guanxi_core::Customer>,
    ) -> Result<Opportunity> {
        let now = tx.at();
        let mut v = input.validate().map_err(Error::Validation)?;
        self.resolve_catalog_lines(tx.view(), &mut [(String::new(), &mut v.lines)])?;
        let moves = std::mem::take(&mut v.moves);
        let p = self.load_pipeline(v.pipeline.as_deref().unwrap_or("standard"))?;
        let stage = match &v.stage {
            Some(k) => p.stage(k).filter(|s| s.kind == StageKind::Open).ok_or_else(|| {
                Error::invalid(
                    "stage",
                    ValidationReason::Invalid { detail: format!("{k} is not an open stage of {}", p.key) },
                )
            })?,
            None => {
                p.first_open().ok_or_else(|| Error::InvalidState(format!("pipeline {} has no open stage", p.key)))?
            }
        };
        let opened_at = v.opened_at.unwrap_or(now);
        if opened_at > now {
            return Err(Error::invalid("opened_at", ValidationReason::Invalid { detail: "is in the future".into() }));
        }
        let customer = match (v.customer_id, staged_customer) {
            (Some(id), Some(c)) if c.id == id => Some(c.clone()),
            (Some(id), _) => {
                let c = self.live_customer(id)?;
                self.reauthorize(allowed, actor, Action::Read, EntityKind::Customer)?.check_customer(actor, &c)?;
                Some(c)
            }
            (None, _) => None,
        };
        if let Some(cid) = v.contact_id
            && !tx.staged().contacts.iter().any(|w| w.record().id == cid)
        {
            self.check_contact_of(cid, v.customer_id, "the opportunity's customer")?;
        }
        let owner = v.owner.clone().unwrap_or_else(|| actor.user_id().clone());
        let day = now.with_timezone(&self.code_offset).date_naive();
        let seq = tx.next_in_sequence(&opportunity_sequence(day))?;
        let amount = v.effective_amount();
        let mut state = guanxi_core::sales::SalesState::new(&p, amount);
        state.stage = stage.key.clone();
        state.probability = stage.probability;
        if v.probability.is_some() {
            state = p.set_probability(&state, v.probability.map(|d| d.normalize()))?;
        }
        let o = Opportunity {
            id: OpportunityId(self.ids.next(now)),
            code: Opportunity::code_for(day, seq),
            customer_id: v.customer_id,
            contact_id: v.contact_id,
            name: v.name,
            pipeline: p.key.clone(),
            stage: stage.key.clone(),
            furthest_stage: stage.key.clone(),
            probability: state.probability,
            probability_source: state.probability_source,
            amount,
            currency: v.currency,
            expected_close: v.expected_close,
            lines: v.lines,
            milestones: v.milestones,
            cadence_days: v.cadence_days,
            lost_reason: None,
            department: allowed.department_of(&owner),
            owner: Some(owner),
            province: customer.and_then(|c| c.region.map(|r| r.province)),
            opened_at,
            won_at: None,
            lost_at: None,
            last_activity_at: now,
            created_by: actor.user_id().clone(),
            created_at: now,
            updated_by: actor.user_id().clone(),
            updated_at: now,
            version: 1,
        };
        if allowed.enforced() {
            let what = format!("new opportunity {}", o.name);
            allowed.check(actor, o.scope_attrs(), &what)?;
            if o.owner.as_ref() != Some(actor.user_id()) {
                allowed.check_owner("owner", o.owner.as_ref())?;
                self.reauthorize(allowed, actor, Action::Assign, EntityKind::Opportunity)?.check(
                    actor,
                    o.scope_attrs(),
                    &what,
                )?;
            }
        }
        let first = StageHistoryEntry {
            opportunity_id: o.id,
            seq: 1,
            change: guanxi_core::sales::StageMove {
                from: None,
                to: o.stage.clone(),
                amount,
                probability: o.probability,
            },
            at: opened_at,
            by: actor.user_id().clone(),
            from_entered_at: None,
            lost_reason: None,
        };
        let mut history = vec![first];
        let mut events = Vec::new();
        let mut o = o;
        for (k, m) in moves.iter().enumerate() {
            if m.at > now {
                let detail = "is in the future".into();
                return Err(Error::invalid(format!("moves[{k}].at"), ValidationReason::Invalid { detail }));
            }
            let last = &history[history.len() - 1]; // never empty: it starts with the opening
            let (next, entry, event) = stage_move(&p, &o, last, &m.stage, m.lost_reason.as_deref(), m.at, actor)
                .map_err(|e| past_move_error(k, e))?;
            o = next;
            history.push(entry);
            events.push(event);
        }
        tx.insert(o.clone());
        tx.attach(|c| c.stage_history.extend(history));
        events.into_iter().for_each(|e| tx.queue(e));
        Ok(o)
    }

    fn readable_opportunity(&self, actor: &Actor, allowed: &Allowed, id: OpportunityId) -> Result<Opportunity> {
        let o = self.store.opportunity(id)?.ok_or_else(|| Error::not_found(EntityKind::Opportunity, id))?;
        allowed.check(actor, o.scope_attrs(), format_args!("opportunity {}", o.code))?;
        Ok(o)
    }

    // ----- leads -----

    fn readable_lead(&self, actor: &Actor, allowed: &Allowed, id: LeadId) -> Result<Lead> {
        let l = self.store.lead(id)?.ok_or_else(|| Error::not_found(EntityKind::Lead, id))?;
        allowed.check(actor, l.scope_attrs(), format_args!("lead {}", l.code))?;
        Ok(l)
    }
}
impl Sales<'_> {
    /// A pipeline by key: a stored one, or the built-in `standard` pipeline until one of that
    /// key is stored.
    pub fn pipeline(&self, actor: &Actor, key: &str) -> Result<Pipeline> {
        self.crm.authorize(actor, Action::Read, EntityKind::Pipeline)?;
        self.crm.load_pipeline(key)
    }

    /// Stores a pipeline (new, or replacing the one of its key). A stage that opportunities
    /// are still in cannot be removed.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::{Pipeline, Stage, StageKind};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let mut p = Pipeline::standard();
    /// p.key = "renewal".into();
    /// p.stages.retain(|s| s.key != "proposal");
    /// crm.sales().set_pipeline(&alice, p.clone())?;
    /// assert_eq!(crm.sales().pipeline(&alice, "renewal")?, p);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn set_pipeline(&self, actor: &Actor, pipeline: Pipeline) -> Result<Pipeline> {
        let allowed = self.crm.authorize(actor, Action::Configure, EntityKind::Pipeline)?;
        pipeline.validate()?;
        let key = pipeline_key(&pipeline.key);
        let stored = self.crm.store.setting(&key)?;
        let before: Option<Pipeline> = stored.as_ref().map(decode).transpose()?;
        let previous = before.clone().or_else(|| (pipeline.key == "standard").then(Pipeline::standard));
        if let Some(prev) = &previous {
            for s in prev.stages.iter().filter(|s| pipeline.stage(&s.key).is_none()) {
                let f = OpportunityFilter { pipeline: Some(pipeline.key.clone()), ..Default::default() }.stage(&s.key);
                let n = self.crm.store.count_opportunities(&f)?;
                if n > 0 {
                    return Err(Error::invalid(
                        "stages",
                        ValidationReason::Invalid { detail: format!("stage {} still holds {n} opportunities", s.key) },
                    ));
                }
            }
        }
        let event = DomainEvent::SalesConfigured { key: key.clone() };
        self.crm.put_setting(
            actor,
            &allowed,
            key,
            stored,
            &pipeline,
            before.as_ref().map(to_json),
            EntityKind::Pipeline,
            event,
        )?;
        Ok(pipeline)
    }

    /// The lead rules in force (the standard grading until some are stored).
    pub fn lead_rules(&self, actor: &Actor) -> Result<LeadRules> {
        self.crm.authorize(actor, Action::Read, EntityKind::Lead)?;
        self.crm.load_lead_rules()
    }

    /// Stores the lead rules (grading and assignment).
    pub fn set_lead_rules(&self, actor: &Actor, rules: LeadRules) -> Result<LeadRules> {
        let allowed = self.crm.authorize(actor, Action::Configure, EntityKind::Lead)?;
        let stored = self.crm.store.setting(LEAD_RULES)?;
        let before = stored.as_ref().map(|s| decode::<LeadRules>(s).map(|r| to_json(&r))).transpose()?;
        let event = DomainEvent::SalesConfigured { key: LEAD_RULES.to_owned() };
        self.crm.put_setting(
            actor,
            &allowed,
            LEAD_RULES.to_owned(),
            stored,
            &rules,
            before,
            EntityKind::Lead,
            event,
        )?;
        Ok(rules)
    }

    /// The sales report of a pipeline (see [`SalesReport`]) over the opportunities the actor
    /// may read. With opportunities in several currencies the query must name one.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::{NewOpportunity, SalesQuery};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let o = crm.sales().opportunities().create(&alice, NewOpportunity::new("ERP").amount(rust_decimal::Decimal::from(5000)))?;
    /// crm.sales().opportunities().move_to(&alice, o.id, o.version, "won", StageChange::default())?;
    /// let r = crm.sales().report(&alice, &SalesQuery::new("standard"))?;
    /// assert_eq!((r.won.count, r.win_rate.unwrap().to_string().as_str()), (1, "1"));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn report(&self, actor: &Actor, query: &SalesQuery) -> Result<SalesReport> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Opportunity)?;
        let p = self.crm.load_pipeline(&query.pipeline)?;
        let mut q = query.clone();
        q.scope = allowed.query_scope();
        let currency = match &q.currency {
            Some(c) => currency_code(c)?,
            None => {
                let found = self.crm.store.opportunity_currencies(&q.filter())?;
                match found.as_slice() {
                    [] => guanxi_core::sales::DEFAULT_CURRENCY.to_owned(),
                    [one] => one.clone(),
                    many => {
                        return Err(Error::invalid(
                            "currency",
                            ValidationReason::Invalid {
                                detail: format!(
                                    "opportunities are in several currencies ({}); choose one",
                                    many.join(", ")
                                ),
                            },
                        ));
                    }
                }
            }
        };
        let facts = self.crm.store.sales_facts(&p, &q, &currency)?;
        Ok(SalesReport::from_facts(&p, &currency, &facts))
    }

    /// `user`'s agenda at `at`: overdue and due-today tasks and cadence follow-ups, and
    /// rotting opportunities (only what the actor may read).
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::{NewOpportunity, NewTask};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let o = crm.sales().opportunities().create(&alice, NewOpportunity::new("ERP").cadence_days(3))?;
    /// crm.sales().tasks().create(&alice, NewTask::new("发报价", chrono::Utc::now() - chrono::Duration::hours(1)).opportunity(o.id))?;
    /// let a = crm.sales().agenda(&alice, alice.user_id(), chrono::Utc::now() + chrono::Duration::days(30))?;
    /// assert_eq!(a.overdue.len(), 2); // the task and the cadence follow-up
    /// assert_eq!(a.rotting, vec![o.code]); // 线索 rots after 14 days without activity
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn agenda(&self, actor: &Actor, user: &guanxi_core::UserId, at: DateTime<Utc>) -> Result<Agenda> {
        let tasks = self
            .crm
            .sales()
            .tasks()
            .list_all(actor, &TaskFilter { owner: Some(user.clone()), open: Some(true), ..Default::default() })?;
        let opps = self
            .crm
            .sales()
            .opportunities()
            .list_all(actor, &OpportunityFilter::default().owner(user.clone()).open(true))?;
        let mut pipelines: Vec<Pipeline> = Vec::new();
        for o in &opps {
            if !pipelines.iter().any(|p| p.key == o.pipeline) {
                pipelines.push(self.crm.load_pipeline(&o.pipeline)?);
            }
        }
        Ok(guanxi_core::sales::agenda(at, self.crm.code_offset, tasks, &opps, |k| {
            pipelines.iter().find(|p| p.key == k)
        }))
    }
}

impl Opportunities<'_> {
    /// Opens an opportunity: in the pipeline's first open stage (or the open stage given), at
    /// the stage's default probability unless one is set by hand, with its first stage-history
    /// entry, in one transaction.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::{NewOpportunity, ProbabilitySource};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// let o = crm.sales().opportunities().create(&alice, NewOpportunity::new("ERP 项目").customer(c.id).amount(rust_decimal::Decimal::from(80_000)))?;
    /// assert!(o.code.starts_with('O'));
    /// assert_eq!((o.stage.as_str(), o.probability.to_string().as_str()), ("lead", "10"));
    /// assert_eq!(o.probability_source, ProbabilitySource::StageDefault);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, input: NewOpportunity) -> Result<Opportunity> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Opportunity)?;
        let mut tx = self.crm.begin(&allowed, actor);
        let o = self.crm.stage_opportunity(&mut tx, actor, &allowed, input, None)?;
        tx.commit()?;
        Ok(o)
    }

    /// Opens many opportunities in one transaction, each as [`create`](Self::create) would: all
    /// of them or, on any failure, none. Every validation failure of every input is reported,
    /// under `opportunities[i].<field>`; another failure (a customer not found, a permission
    /// refused) stops the batch. One call loads a deal list where one call a deal took a
    /// round trip and a transaction each.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::NewOpportunity;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// let deals = crm.sales().opportunities();
    /// let err = deals.create_many(&alice, vec![NewOpportunity::new("ERP").customer(c.id), NewOpportunity::new(" ")]).unwrap_err();
    /// assert!(matches!(&err, Error::Validation(v) if v.field("opportunities[1].name").is_some()));
    /// assert_eq!(deals.count(&alice, &Default::default())?, 0); // nothing written
    /// let made = deals.create_many(&alice, vec![NewOpportunity::new("ERP").customer(c.id), NewOpportunity::new("CRM")])?;
    /// assert_eq!(made.len(), 2);
    /// assert_ne!(made[0].code, made[1].code);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create_many(&self, actor: &Actor, inputs: Vec<NewOpportunity>) -> Result<Vec<Opportunity>> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Opportunity)?;
        // Every input's own fields first, so a batch refused for them reserves no codes (staging
        // validates again: on a normalized input that finds nothing and changes nothing).
        let mut errs = ValidationErrors::default();
        let mut valid = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            match input.validate() {
                Ok(v) => valid.push(v),
                Err(e) => errs.extend_nested(&format!("opportunities[{i}]"), e),
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        let inputs = valid;
        let mut tx = self.crm.begin(&allowed, actor);
        let day = tx.at().with_timezone(&self.crm.code_offset).date_naive();
        tx.reserve_block(&opportunity_sequence(day), inputs.len() as u64)?;
        let mut made = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            match self.crm.stage_opportunity(&mut tx, actor, &allowed, input, None) {
                Ok(o) => made.push(o),
                Err(Error::Validation(e)) => errs.extend_nested(&format!("opportunities[{i}]"), e),
                Err(e) => return Err(e),
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        tx.commit()?;
        Ok(made)
    }

    /// An opportunity by id.
    pub fn get(&self, actor: &Actor, id: OpportunityId) -> Result<Opportunity> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Opportunity)?;
        self.crm.readable_opportunity(actor, &allowed, id)
    }

    /// An opportunity by code.
    pub fn get_by_code(&self, actor: &Actor, code: &str) -> Result<Opportunity> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Opportunity)?;
        let code = guanxi_core::normalize::code(code);
        let o = self
            .crm
            .store
            .opportunity_by_code(&code)?
            .ok_or_else(|| Error::not_found(EntityKind::Opportunity, &code))?;
        allowed.check(actor, o.scope_attrs(), format_args!("opportunity {}", o.code))?;
        Ok(o)
    }

    /// One page of the opportunities matching `filter` that the actor may read.
    pub fn list(&self, actor: &Actor, filter: &OpportunityFilter, page: PageRequest) -> Result<Page<Opportunity>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Opportunity)?;
        let f = OpportunityFilter { scope: allowed.query_scope(), ..filter.clone() };
        self.crm.store.list_opportunities(&f, &page)
    }

    /// Every opportunity matching `filter` that the actor may read.
    pub fn list_all(&self, actor: &Actor, filter: &OpportunityFilter) -> Result<Vec<Opportunity>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Opportunity)?;
        let f = OpportunityFilter { scope: allowed.query_scope(), ..filter.clone() };
        walk_pages(|page| self.crm.store.list_opportunities(&f, page))
    }

    /// How many opportunities match `filter` among those the actor may read.
    pub fn count(&self, actor: &Actor, filter: &OpportunityFilter) -> Result<u64> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Opportunity)?;
        let f = OpportunityFilter { scope: allowed.query_scope(), ..filter.clone() };
        self.crm.store.count_opportunities(&f)
    }

    /// An opportunity's stage history, oldest first.
    pub fn history(&self, actor: &Actor, id: OpportunityId) -> Result<Vec<StageHistoryEntry>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Opportunity)?;
        self.crm.readable_opportunity(actor, &allowed, id)?;
        self.crm.store.stage_history(id)
    }

    /// Changes an opportunity's fields (see [`OpportunityPatch`]); giving it to another owner
    /// needs the assign permission.
    pub fn update(
        &self,
        actor: &Actor,
        id: OpportunityId,
        expected_version: u64,
        patch: OpportunityPatch,
    ) -> Result<Opportunity> {
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Opportunity)?;
        let current = self.crm.readable_opportunity(actor, &allowed, id)?;
        check_version(EntityKind::Opportunity, id, expected_version, current.version)?;
        let p = self.crm.load_pipeline(&current.pipeline)?;
        let mut next = patch.apply_to(&current, &p)?;
        if next.lines != current.lines {
            self.crm.resolve_catalog_lines(self.crm.view(), &mut [(String::new(), &mut next.lines)])?;
        }
        next.probability = next.probability.normalize();
        if next.contact_id != current.contact_id
            && let Some(cid) = next.contact_id
        {
            self.crm.check_contact_of(cid, next.customer_id, "the opportunity's customer")?;
        }
        if next.owner != current.owner {
            next.department =
                allowed.department_of(next.owner.as_ref().unwrap_or(actor.user_id())).or(current.department.clone());
            if allowed.enforced() {
                allowed.check_owner("owner", next.owner.as_ref())?;
                self.crm.reauthorize(&allowed, actor, Action::Assign, EntityKind::Opportunity)?.check(
                    actor,
                    current.scope_attrs(),
                    format_args!("opportunity {}", current.code),
                )?;
            }
        }
        if next == current {
            return Ok(current);
        }
        let mut tx = self.crm.begin(&allowed, actor);
        next.last_activity_at = tx.at();
        let next = tx.update(&current, next, ChangeAction::Update);
        tx.commit()?;
        Ok(next)
    }

    /// Moves an opportunity to another stage under the pipeline's rules: the edge must be
    /// allowed and the current stage's exit requirements met, a lost stage needs one of the
    /// pipeline's reasons. The probability follows [`Pipeline::move_to`]; won and lost stages
    /// set the won / lost instant. An append-only history entry records the move with the
    /// amount and probability at that moment. On any error nothing changes.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::NewOpportunity;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let o = crm.sales().opportunities().create(&alice, NewOpportunity::new("ERP").amount(rust_decimal::Decimal::from(5000)))?;
    /// let o = crm.sales().opportunities().move_to(&alice, o.id, o.version, "intent", StageChange::default())?;
    /// let err = crm.sales().opportunities().move_to(&alice, o.id, o.version, "lost", StageChange::default()).unwrap_err();
    /// assert!(matches!(&err, Error::Validation(v) if v.field("lost_reason").is_some()));
    /// let o = crm.sales().opportunities().move_to(&alice, o.id, o.version, "lost", StageChange::default().lost_reason("选择竞品"))?;
    /// assert!(o.lost_at.is_some());
    /// assert_eq!(crm.sales().opportunities().history(&alice, o.id)?.len(), 3);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn move_to(
        &self,
        actor: &Actor,
        id: OpportunityId,
        expected_version: u64,
        to: &str,
        change: StageChange,
    ) -> Result<Opportunity> {
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Opportunity)?;
        let current = self.crm.readable_opportunity(actor, &allowed, id)?;
        check_version(EntityKind::Opportunity, id, expected_version, current.version)?;
        let p = self.crm.load_pipeline(&current.pipeline)?;
        let now = self.crm.clock.now();
        let history = self.crm.store.stage_history(id)?;
        let last = history
            .last()
            .ok_or_else(|| Error::InvalidState(format!("opportunity {} has no history", current.code)))?;
        let at = change.at.unwrap_or(now);
        if at > now || at < last.at {
            return Err(Error::invalid(
                "at",
                ValidationReason::Invalid { detail: "must be between the previous move and now".into() },
            ));
        }
        let (next, entry, event) = stage_move(&p, &current, last, to, change.lost_reason.as_deref(), at, actor)?;
        let mut tx = self.crm.begin(&allowed, actor);
        let next = tx.update_as(&current, next, ChangeAction::Update, [event]);
        tx.attach(|c| c.stage_history.push(entry));
        tx.commit()?;
        Ok(next)
    }
}

impl Leads<'_> {
    /// Creates a lead, graded by the lead rules and, without an owner given, assigned by them.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::{NewLead, LeadGrade};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let l = crm.sales().leads().create(&alice, NewLead::new("王磊").company("星河科技").source("行业峰会"))?;
    /// assert_eq!((l.grade, l.code.starts_with('L')), (LeadGrade::A, true));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, input: NewLead) -> Result<Lead> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Lead)?;
        let v = input.validate().map_err(Error::Validation)?;
        let rules = self.crm.load_lead_rules()?;
        let grade = rules.grade(&v);
        let mut tx = self.crm.begin(&allowed, actor);
        let owner = match &v.owner {
            Some(o) => Some(o.clone()),
            None => rules.assignee(
                &v,
                || tx.reserve_sequence("lead.round_robin", 1).map(|n| n - 1),
                |u| {
                    self.crm.store.count_leads(&LeadFilter {
                        open: Some(true),
                        owner: Some(u.clone()),
                        ..Default::default()
                    })
                },
            )?,
        };
        let now = tx.at();
        let day = now.with_timezone(&self.crm.code_offset).date_naive();
        let seq = tx.reserve_sequence(&format!("L{}", day.format("%Y%m%d")), 1)?;
        let department = owner.as_ref().and_then(|o| allowed.department_of(o));
        let stamp = Stamp::new(actor.user_id().clone(), now);
        let lead = v.clone().into_lead(
            LeadId(self.crm.ids.next(now)),
            Lead::code_for(day, seq),
            grade,
            owner,
            department,
            &stamp,
        );
        if allowed.enforced() && v.owner.as_ref().is_some_and(|o| o != actor.user_id()) {
            allowed.check_owner("owner", lead.owner.as_ref())?;
            self.crm.reauthorize(&allowed, actor, Action::Assign, EntityKind::Lead)?.check(
                actor,
                lead.scope_attrs(),
                format_args!("new lead {}", lead.name),
            )?;
        }
        tx.insert(lead.clone());
        tx.commit()?;
        Ok(lead)
    }

    /// A lead by id.
    pub fn get(&self, actor: &Actor, id: LeadId) -> Result<Lead> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Lead)?;
        self.crm.readable_lead(actor, &allowed, id)
    }

    /// One page of the leads matching `filter` that the actor may read.
    pub fn list(&self, actor: &Actor, filter: &LeadFilter, page: PageRequest) -> Result<Page<Lead>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Lead)?;
        let f = LeadFilter { scope: allowed.query_scope(), ..filter.clone() };
        self.crm.store.list_leads(&f, &page)
    }

    /// Every lead matching `filter` that the actor may read.
    pub fn list_all(&self, actor: &Actor, filter: &LeadFilter) -> Result<Vec<Lead>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Lead)?;
        let f = LeadFilter { scope: allowed.query_scope(), ..filter.clone() };
        walk_pages(|page| self.crm.store.list_leads(&f, page))
    }

    /// How many leads match `filter` among those the actor may read.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::{LeadFilter, NewLead};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.sales().leads().create(&alice, NewLead::new("王磊"))?;
    /// assert_eq!(crm.sales().leads().count(&alice, &LeadFilter::default())?, 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn count(&self, actor: &Actor, filter: &LeadFilter) -> Result<u64> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Lead)?;
        let f = LeadFilter { scope: allowed.query_scope(), ..filter.clone() };
        self.crm.store.count_leads(&f)
    }

    /// Converts an open lead into a customer, its primary contact and (optionally) an
    /// opportunity, in one transaction. The lead is first checked as the customer it would
    /// become, by the duplicate engine over the whole base, with the stored match rules and
    /// the pairs marked not duplicate (as [`Customers::create_checked`](crate::Customers::create_checked) does): the best
    /// match the actor can read is linked instead of creating a duplicate (its contact with
    /// the lead's phone or e-mail reused, else the lead's person added), and the conversion
    /// says why. When only customers outside the actor's scope match, the conversion is
    /// refused with [`Error::Duplicate`] on the strongest field, naming no customer (someone
    /// who can read both converts it).
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::{NewLead, NewOpportunity};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let existing = crm.customers().create(&alice, NewCustomer::new("星河科技").contact(NewContact::new("王磊").phone("13800138000")))?;
    /// let l = crm.sales().leads().create(&alice, NewLead::new("王磊").company("星河科技").phone("138 0013 8000"))?;
    /// let conv = crm.sales().leads().convert(&alice, l.id, ConvertLead { opportunity: Some(NewOpportunity::new("扩容")) })?;
    /// assert!(conv.linked_existing);
    /// assert_eq!(conv.customer_id, existing.id);
    /// assert!(conv.matched_by.unwrap().contains("same phone"));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn convert(&self, actor: &Actor, id: LeadId, options: ConvertLead) -> Result<LeadConversion> {
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Lead)?;
        let lead = self.crm.readable_lead(actor, &allowed, id)?;
        if !lead.is_open() {
            return Err(Error::InvalidState(format!("lead {} is {}", lead.code, lead.status)));
        }
        let mut tx = self.crm.begin(&allowed, actor);
        let now = tx.at();
        let owner = lead.owner.clone().unwrap_or_else(|| actor.user_id().clone());
        // The lead is checked as the customer it would become, by the duplicate engine with
        // the stored rules and the pairs marked not duplicate (the check on create does the
        // same): phone, e-mail, name and address, over the whole base.
        let create = self.crm.reauthorize(&allowed, actor, Action::Create, EntityKind::Customer);
        let input =
            lead.customer_input(owner.clone()).validate(&self.crm.validation_context()?).map_err(Error::Validation)?;
        let reader = self.crm.reader(&allowed, actor);
        let candidates = self.crm.raw_candidates(
            self.crm.view(),
            &reader,
            &input_profile(&input),
            &self.crm.load_match_rules()?,
            &self.crm.load_not_duplicates()?,
            &mut ProfileCache::default(),
        )?;
        let (customer, contact_id, linked, matched_by) = match conversion_match(&candidates) {
            ConversionMatch::Refuse(field) => {
                // Only customers outside the actor's scope match: said without naming them;
                // someone who can read both converts the lead.
                return Err(Error::Duplicate {
                    entity: EntityKind::Customer,
                    field: field.as_str().to_owned(),
                    value: guanxi_core::dedup::WITHHELD.to_owned(),
                });
            }
            ConversionMatch::Link(i) => {
                let (best, _) = &candidates[i];
                let cust = self
                    .crm
                    .live_customer(best.id.ok_or_else(|| Error::InvalidState("candidate without id".into()))?)?;
                let why = reader
                    .show(best.clone(), true)
                    .reasons
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                match lead.same_contact(&self.crm.store.contacts_of(cust.id)?) {
                    Some(c) => {
                        let cid = c.id;
                        (cust, cid, true, Some(why))
                    }
                    None => {
                        self.crm
                            .reauthorize(&allowed, actor, Action::Create, EntityKind::Contact)?
                            .check_customer(actor, &cust)?;
                        let ctx = self.crm.validation_context()?;
                        let valid = lead.contact_input().validate(&ctx.contact_fields).map_err(Error::Validation)?;
                        let contact = self.crm.new_contact(actor, now, cust.id, valid, false);
                        let cid = contact.id;
                        tx.insert(contact);
                        (cust, cid, true, Some(why))
                    }
                }
            }
            ConversionMatch::Create => {
                let create = create?;
                self.crm.stage_customers(&mut tx, actor, &create, vec![input])?;
                let cust = tx
                    .staged()
                    .customers
                    .last()
                    .map(|w| w.record().clone())
                    .ok_or_else(|| Error::InvalidState("no customer staged".into()))?;
                let cid = tx
                    .staged()
                    .contacts
                    .last()
                    .map(|w| w.record().id)
                    .ok_or_else(|| Error::InvalidState("no contact staged".into()))?;
                (cust, cid, false, None)
            }
        };
        let opportunity = match options.opportunity {
            Some(mut o) => {
                o.customer_id = Some(customer.id);
                o.contact_id = Some(contact_id);
                o.owner = o.owner.or(Some(owner));
                let create = self.crm.reauthorize(&allowed, actor, Action::Create, EntityKind::Opportunity)?;
                let staged = (!linked).then_some(&customer);
                Some(self.crm.stage_opportunity(&mut tx, actor, &create, o, staged)?.id)
            }
            None => None,
        };
        let conversion = LeadConversion {
            customer_id: customer.id,
            linked_existing: linked,
            matched_by,
            contact_id,
            opportunity_id: opportunity,
        };
        let next = Lead { status: LeadStatus::Converted, converted: Some(conversion.clone()), ..lead.clone() };
        tx.update(&lead, next, ChangeAction::Update);
        tx.commit()?;
        Ok(conversion)
    }
}

impl Tasks<'_> {
    /// Creates a task (owner: the actor unless given, which needs the assign permission).
    pub fn create(&self, actor: &Actor, input: NewTask) -> Result<Task> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Task)?;
        let v = input.validate().map_err(Error::Validation)?;
        let mut customer = v.customer_id;
        if let Some(oid) = v.opportunity_id {
            let read = self.crm.reauthorize(&allowed, actor, Action::Read, EntityKind::Opportunity)?;
            let o = self.crm.readable_opportunity(actor, &read, oid)?;
            customer = customer.or(o.customer_id);
        }
        let mut tx = self.crm.begin(&allowed, actor);
        let now = tx.at();
        let owner = v.owner.clone().unwrap_or_else(|| actor.user_id().clone());
        let task = Task {
            id: TaskId(self.crm.ids.next(now)),
            title: v.title,
            notes: v.notes,
            due_at: v.due_at,
            department: allowed.department_of(&owner),
            owner,
            opportunity_id: v.opportunity_id,
            customer_id: customer,
            done_at: None,
            created_by: actor.user_id().clone(),
            created_at: now,
            updated_by: actor.user_id().clone(),
            updated_at: now,
            version: 1,
        };
        if allowed.enforced() && &task.owner != actor.user_id() {
            allowed.check_owner("owner", Some(&task.owner))?;
            self.crm.reauthorize(&allowed, actor, Action::Assign, EntityKind::Task)?.check(
                actor,
                task.scope_attrs(),
                format_args!("task {}", task.title),
            )?;
        }
        tx.insert(task.clone());
        tx.commit()?;
        Ok(task)
    }

    /// Marks a task done; it counts as activity on its opportunity (rotting and cadence
    /// restart from now).
    pub fn complete(&self, actor: &Actor, id: TaskId, expected_version: u64) -> Result<Task> {
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Task)?;
        let current = self.crm.store.task(id)?.ok_or_else(|| Error::not_found(EntityKind::Task, id))?;
        allowed.check(actor, current.scope_attrs(), format_args!("task {}", current.title))?;
        check_version(EntityKind::Task, id, expected_version, current.version)?;
        if current.done_at.is_some() {
            return Err(Error::InvalidState(format!("task {} is already done", current.title)));
        }
        let mut tx = self.crm.begin(&allowed, actor);
        let now = tx.at();
        let next = tx.update(&current, Task { done_at: Some(now), ..current.clone() }, ChangeAction::Update);
        if let Some(o) = current.opportunity_id.map(|o| self.crm.store.opportunity(o)).transpose()?.flatten() {
            // Activity on the opportunity, logged as such (no event: the task's says it).
            tx.update_as(&o, Opportunity { last_activity_at: now, ..o.clone() }, ChangeAction::Update, []);
        }
        tx.commit()?;
        Ok(next)
    }

    /// A task by id (refused when outside the actor's scope).
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::{NewTask, TaskFilter};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let due = "2030-05-03T02:00:00Z".parse().unwrap();
    /// let t = crm.sales().tasks().create(&alice, NewTask::new("发送报价单", due))?;
    /// crm.sales().tasks().create(&alice, NewTask::new("回访", due))?;
    /// assert_eq!(crm.sales().tasks().get(&alice, t.id)?, t);
    /// let page = crm.sales().tasks().list(&alice, &TaskFilter::default(), PageRequest::first(1))?;
    /// assert_eq!((page.items.len(), page.next.is_some()), (1, true));
    /// assert_eq!(crm.sales().tasks().count(&alice, &TaskFilter::default())?, 2);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn get(&self, actor: &Actor, id: TaskId) -> Result<Task> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Task)?;
        let t = self.crm.store.task(id)?.ok_or_else(|| Error::not_found(EntityKind::Task, id))?;
        allowed.check(actor, t.scope_attrs(), format_args!("task {}", t.title))?;
        Ok(t)
    }

    /// One page of the tasks matching `filter` that the actor may read, in creation order.
    pub fn list(&self, actor: &Actor, filter: &TaskFilter, page: PageRequest) -> Result<Page<Task>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Task)?;
        let f = TaskFilter { scope: allowed.query_scope(), ..filter.clone() };
        self.crm.store.list_tasks(&f, &page)
    }

    /// How many tasks match `filter` that the actor may read.
    pub fn count(&self, actor: &Actor, filter: &TaskFilter) -> Result<u64> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Task)?;
        let f = TaskFilter { scope: allowed.query_scope(), ..filter.clone() };
        self.crm.store.count_tasks(&f)
    }

    /// Every task matching `filter` that the actor may read, by due instant (an agenda's
    /// order; [`Tasks::list`] pages).
    pub fn list_all(&self, actor: &Actor, filter: &TaskFilter) -> Result<Vec<Task>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Task)?;
        let f = TaskFilter { scope: allowed.query_scope(), ..filter.clone() };
        self.crm.store.tasks(&f)
    }
}
