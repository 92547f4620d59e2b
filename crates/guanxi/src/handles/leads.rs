//! Leads (线索): [`Leads`].

use crate::crm::Crm;
use crate::*;
use guanxi_core::sales::*;

/// Leads (线索): create (graded and assigned by the lead rules), read, list, count, convert.
///
/// Got from [`Crm`] as `crm.sales().leads()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// # use guanxi::sales::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// let l = crm.sales().leads().create(&alice, NewLead::new("王磊").company("星河科技"))?;
/// assert_eq!(crm.sales().leads().get(&alice, l.id)?.name, "王磊");
/// assert_eq!(crm.sales().leads().count(&alice, &LeadFilter::default())?, 1);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Leads<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Leads<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Leads")
    }
}

impl<'a> Leads<'a> {
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
        self.crm.create_lead(actor, input)
    }

    /// A lead by id.
    pub fn get(&self, actor: &Actor, id: LeadId) -> Result<Lead> {
        self.crm.lead(actor, id)
    }

    /// One page of the leads matching `filter` that the actor may read.
    pub fn list(&self, actor: &Actor, filter: &LeadFilter, page: PageRequest) -> Result<Page<Lead>> {
        self.crm.list_leads(actor, filter, page)
    }

    /// Every lead matching `filter` that the actor may read.
    pub fn list_all(&self, actor: &Actor, filter: &LeadFilter) -> Result<Vec<Lead>> {
        self.crm.all_leads(actor, filter)
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
        self.crm.count_leads(actor, filter)
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
        self.crm.convert_lead(actor, id, options)
    }
}
