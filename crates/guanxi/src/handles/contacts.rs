//! Contacts (联系人): [`Contacts`].

use crate::crm::Crm;
use crate::*;

/// Contacts (联系人): the people of a customer; add, read, find by phone or identity number, update, make primary, delete.
///
/// Got from [`Crm`] as `crm.contacts()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
/// let p = crm.contacts().create(&alice, c.id, NewContact::new("张伟").phone("13812345678"))?;
/// assert_eq!(crm.contacts().find_by_phone(&alice, "138 1234 5678")?[0].id, p.id);
/// assert_eq!(crm.contacts().list(&alice, c.id)?.len(), 1);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Contacts<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Contacts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Contacts")
    }
}

impl<'a> Contacts<'a> {
    /// Adds a contact to a customer. The customer's first contact becomes primary; a later
    /// one marked primary takes over from the current primary in the same transaction.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// crm.contacts().create(&alice, c.id, NewContact::new("张伟"))?;
    /// crm.contacts().create(&alice, c.id, NewContact::new("李娜").phone("139 0000 1111").primary())?;
    /// let contacts = crm.contacts().list(&alice, c.id)?;
    /// assert_eq!((contacts[0].name.as_str(), contacts[0].primary, contacts[1].primary), ("李娜", true, false));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, customer: CustomerId, input: NewContact) -> Result<Contact> {
        self.crm.add_contact(actor, customer, input)
    }

    /// A live contact by id.
    pub fn get(&self, actor: &Actor, id: ContactId) -> Result<Contact> {
        self.crm.contact(actor, id)
    }

    /// The live contacts with this phone number that the actor may read: the duplicate check
    /// before adding a contact. Encrypted databases answer it from a keyed blind index.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲").contact(NewContact::new("张伟").phone("138 1234 5678")))?;
    /// let found = crm.contacts().find_by_phone(&alice, "+86 13812345678")?;
    /// assert_eq!(found[0].name, "张伟");
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn find_by_phone(&self, actor: &Actor, phone: &str) -> Result<Vec<Contact>> {
        self.crm.find_contacts_by_phone(actor, phone)
    }

    /// The live contacts with this resident identity number that the actor may read.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲").contact(NewContact::new("张伟").id_number("11010519491231002x")))?;
    /// assert_eq!(crm.contacts().find_by_id_number(&alice, "11010519491231002X")?[0].name, "张伟");
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn find_by_id_number(&self, actor: &Actor, id_number: &str) -> Result<Vec<Contact>> {
        self.crm.find_contacts_by_id_number(actor, id_number)
    }

    /// The live contacts of a customer, primary first.
    pub fn list(&self, actor: &Actor, customer: CustomerId) -> Result<Vec<Contact>> {
        self.crm.list_contacts(actor, customer)
    }

    /// Applies a patch to a contact whose current version is `expected_version`.
    pub fn update(&self, actor: &Actor, id: ContactId, expected_version: u64, patch: ContactPatch) -> Result<Contact> {
        self.crm.update_contact(actor, id, expected_version, patch)
    }

    /// Makes a contact its customer's primary contact (the previous primary stops being one).
    pub fn set_primary(&self, actor: &Actor, id: ContactId) -> Result<Contact> {
        self.crm.set_primary_contact(actor, id)
    }

    /// Removes (soft-deletes) a contact: a delete, so elevated when access control is on. If
    /// it was primary, the oldest remaining contact becomes primary in the same transaction.
    pub fn delete(&self, actor: &Actor, id: ContactId, expected_version: u64) -> Result<()> {
        self.crm.remove_contact(actor, id, expected_version)
    }
}
