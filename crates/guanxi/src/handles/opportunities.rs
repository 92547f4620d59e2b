//! Opportunities (商机): [`Opportunities`].

use crate::crm::Crm;
use crate::*;
use guanxi_core::sales::*;

/// Opportunities (商机): create, read, list, count, update, move through the pipeline, stage history.
///
/// Got from [`Crm`] as `crm.sales().opportunities()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// # use guanxi::sales::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// let o = crm.sales().opportunities().create(&alice, NewOpportunity::new("ERP 项目"))?;
/// assert_eq!(crm.sales().opportunities().get_by_code(&alice, &o.code)?.id, o.id);
/// assert_eq!(crm.sales().opportunities().count(&alice, &OpportunityFilter::default())?, 1);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Opportunities<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Opportunities<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opportunities")
    }
}

impl<'a> Opportunities<'a> {
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
        self.crm.create_opportunity(actor, input)
    }

    /// An opportunity by id.
    pub fn get(&self, actor: &Actor, id: OpportunityId) -> Result<Opportunity> {
        self.crm.opportunity(actor, id)
    }

    /// An opportunity by code.
    pub fn get_by_code(&self, actor: &Actor, code: &str) -> Result<Opportunity> {
        self.crm.opportunity_by_code(actor, code)
    }

    /// One page of the opportunities matching `filter` that the actor may read.
    pub fn list(&self, actor: &Actor, filter: &OpportunityFilter, page: PageRequest) -> Result<Page<Opportunity>> {
        self.crm.list_opportunities(actor, filter, page)
    }

    /// Every opportunity matching `filter` that the actor may read.
    pub fn list_all(&self, actor: &Actor, filter: &OpportunityFilter) -> Result<Vec<Opportunity>> {
        self.crm.all_opportunities(actor, filter)
    }

    /// How many opportunities match `filter` among those the actor may read.
    pub fn count(&self, actor: &Actor, filter: &OpportunityFilter) -> Result<u64> {
        self.crm.count_opportunities(actor, filter)
    }

    /// An opportunity's stage history, oldest first.
    pub fn history(&self, actor: &Actor, id: OpportunityId) -> Result<Vec<StageHistoryEntry>> {
        self.crm.stage_history(actor, id)
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
        self.crm.update_opportunity(actor, id, expected_version, patch)
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
        self.crm.move_opportunity(actor, id, expected_version, to, change)
    }
}
