//! Interactions (跟进记录): [`Interactions`].

use crate::crm::Crm;
use crate::*;

/// Interactions (跟进记录): calls, visits and messages logged on a customer.
///
/// Got from [`Crm`] as `crm.interactions()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
/// crm.interactions().create(&alice, c.id, NewInteraction::new(InteractionKind::Call, "确认预算"))?;
/// assert_eq!(crm.interactions().list(&alice, c.id)?.len(), 1);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Interactions<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Interactions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interactions")
    }
}

impl<'a> Interactions<'a> {
    /// Logs an interaction with a customer. `at` defaults to now and the author to the actor;
    /// a contact given must be a live contact of this customer.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// let i = crm.interactions().create(&alice, c.id, NewInteraction::new(InteractionKind::Call, "确认预算").next_step("发报价"))?;
    /// assert_eq!(i.author.as_str(), "alice");
    /// assert_eq!(crm.interactions().list(&alice, c.id)?, vec![i]);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, customer: CustomerId, input: NewInteraction) -> Result<Interaction> {
        self.crm.log_interaction(actor, customer, input)
    }

    /// The interactions of a customer, oldest first.
    pub fn list(&self, actor: &Actor, customer: CustomerId) -> Result<Vec<Interaction>> {
        self.crm.list_interactions(actor, customer)
    }
}
