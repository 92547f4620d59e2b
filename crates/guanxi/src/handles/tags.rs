//! Tags (标签): [`Tags`].

use crate::crm::Crm;
use crate::*;

/// Tags (标签): define them, list them, and put them on customers or take them off.
///
/// Got from [`Crm`] as `crm.tags()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
/// crm.tags().create(&alice, "VIP", Some("等级"))?;
/// let c = crm.tags().add(&alice, c.id, "VIP")?;
/// assert!(c.tags.iter().any(|t| t == "VIP"));
/// assert_eq!(crm.tags().list(&alice)?.len(), 1);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Tags<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Tags<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tags")
    }
}

impl<'a> Tags<'a> {
    /// Defines a tag, or moves an existing one to another group.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.tags().create(&alice, "互联网", Some("行业"))?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// assert!(crm.tags().add(&alice, c.id, "互联网")?.tags.contains("互联网"));
    /// assert_eq!(crm.tags().list(&alice)?[0].group.as_deref(), Some("行业"));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, name: &str, group: Option<&str>) -> Result<Tag> {
        self.crm.define_tag(actor, name, group)
    }

    /// Every tag, by group then name.
    pub fn list(&self, actor: &Actor) -> Result<Vec<Tag>> {
        self.crm.list_tags(actor)
    }

    /// Adds a tag to a customer (creating the tag, ungrouped, if it does not exist). Adding a
    /// tag the customer already has changes nothing.
    pub fn add(&self, actor: &Actor, customer: CustomerId, tag: &str) -> Result<Customer> {
        self.crm.add_tag(actor, customer, tag)
    }

    /// Removes a tag from a customer. Removing a tag it does not have changes nothing.
    pub fn remove(&self, actor: &Actor, customer: CustomerId, tag: &str) -> Result<Customer> {
        self.crm.remove_tag(actor, customer, tag)
    }
}
