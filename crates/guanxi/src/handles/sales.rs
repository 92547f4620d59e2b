//! Sales (销售): [`Sales`].

use chrono::{DateTime, Utc};

use crate::crm::Crm;
use crate::*;
use guanxi_core::sales::*;

/// Sales (销售): pipelines, lead rules, the report and agendas; opportunities, leads and tasks have handles of their own.
///
/// Got from [`Crm`] as `crm.sales()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// # use guanxi::sales::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// let stages = crm.sales().pipeline(&alice, "standard")?.stages;
/// assert!(stages.iter().any(|s| s.key == "won"));
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Sales<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Sales<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sales")
    }
}

impl<'a> Sales<'a> {
    /// A pipeline by key: a stored one, or the built-in `standard` pipeline until one of that
    /// key is stored.
    pub fn pipeline(&self, actor: &Actor, key: &str) -> Result<Pipeline> {
        self.crm.pipeline(actor, key)
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
        self.crm.put_pipeline(actor, pipeline)
    }

    /// The lead rules in force (the standard grading until some are stored).
    pub fn lead_rules(&self, actor: &Actor) -> Result<LeadRules> {
        self.crm.lead_rules(actor)
    }

    /// Stores the lead rules (grading and assignment).
    pub fn set_lead_rules(&self, actor: &Actor, rules: LeadRules) -> Result<LeadRules> {
        self.crm.set_lead_rules(actor, rules)
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
        self.crm.sales_report(actor, query)
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
        self.crm.agenda(actor, user, at)
    }

    /// Opportunities (商机): create, read, list, count, update, move through the pipeline, stage history.
    pub fn opportunities(&self) -> Opportunities<'a> {
        Opportunities { crm: self.crm }
    }

    /// Leads (线索): create (graded and assigned by the lead rules), read, list, count, convert.
    pub fn leads(&self) -> Leads<'a> {
        Leads { crm: self.crm }
    }

    /// Tasks (任务): follow-ups with a due date; create, complete, list.
    pub fn tasks(&self) -> Tasks<'a> {
        Tasks { crm: self.crm }
    }
}
