//! The contacts and interactions handles: a customer's people (with the encrypted, blind-indexed
//! lookups by phone and identity number) and the calls, visits and messages logged on it.

use guanxi_core::changelog::created_fields;
use guanxi_core::{
    Action, Actor, ChangeAction, Contact, ContactId, ContactPatch, CustomerId, DomainEvent, EntityKind, Error,
    Interaction, InteractionId, NewContact, NewInteraction, Result,
};

use crate::handles::{Contacts, Interactions};
use crate::permission::Allowed;
use crate::plumbing::{UNLOGGED, check_version, to_json};
use crate::write::{Entry, WriteTx};

impl Contacts<'_> {
    /// The actor's permission for `action` on contacts and the live contact `id`, refused when
    /// the contact is out of the actor's scope.
    fn authorized(&self, actor: &Actor, action: Action, id: ContactId) -> Result<(Allowed, Contact)> {
        let allowed = self.crm.authorize(actor, action, EntityKind::Contact)?;
        let contact = self.crm.live_contact(id)?;
        self.crm.check_contact(actor, &allowed, &contact)?;
        Ok((allowed, contact))
    }

    /// Stages the update that makes each primary contact among `contacts` not primary.
    fn stage_demotions(&self, tx: &mut WriteTx<'_>, contacts: Vec<Contact>) {
        for old in contacts.into_iter().filter(|c| c.primary) {
            self.crm.stage_contact_update(tx, &old, Contact { primary: false, ..old.clone() });
        }
    }

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
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Contact)?;
        let ctx = self.crm.validation_context()?;
        let valid = input.validate(&ctx.contact_fields).map_err(Error::Validation)?;
        let owner = self.crm.live_customer(customer)?;
        allowed.check_customer(actor, &owner)?;
        let existing = self.crm.store.contacts_of(customer)?;
        let mut tx = self.crm.begin(&allowed, actor);
        let primary = valid.primary || existing.is_empty();
        let contact = self.crm.new_contact(actor, tx.at(), customer, valid, primary);
        if primary {
            self.stage_demotions(&mut tx, existing);
        }
        tx.insert(contact.clone());
        tx.commit()?;
        Ok(allowed.show_contact(contact))
    }

    /// A live contact by id.
    pub fn get(&self, actor: &Actor, id: ContactId) -> Result<Contact> {
        let (allowed, c) = self.authorized(actor, Action::Read, id)?;
        self.crm.audit_sensitive_reads(actor, &allowed, std::slice::from_ref(&c))?;
        Ok(allowed.show_contact(c))
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
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Contact)?;
        let phone = guanxi_core::Phone::parse(phone).map_err(|r| Error::invalid("phone", r))?;
        let found = self.crm.store.contacts_by_phone(&phone)?;
        self.crm.readable_contacts(actor, &allowed, found)
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
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Contact)?;
        let id = guanxi_core::IdNumber::parse(id_number).map_err(|r| Error::invalid("id_number", r))?;
        let found = self.crm.store.contacts_by_id_number(&id)?;
        self.crm.readable_contacts(actor, &allowed, found)
    }

    /// The live contacts of a customer, primary first.
    pub fn list(&self, actor: &Actor, customer: CustomerId) -> Result<Vec<Contact>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Contact)?;
        if !allowed.scope.all {
            let owner = self.crm.live_customer(customer)?;
            allowed.check_customer(actor, &owner)?;
        }
        let contacts = self.crm.store.contacts_of(customer)?;
        self.crm.audit_sensitive_reads(actor, &allowed, &contacts)?;
        Ok(contacts.into_iter().map(|c| allowed.show_contact(c)).collect())
    }

    /// Applies a patch to a contact whose current version is `expected_version`.
    pub fn update(&self, actor: &Actor, id: ContactId, expected_version: u64, patch: ContactPatch) -> Result<Contact> {
        let (allowed, current) = self.authorized(actor, Action::Update, id)?;
        let ctx = self.crm.validation_context()?;
        check_version(EntityKind::Contact, id, expected_version, current.version)?;
        let next = patch.apply(&current, &ctx.contact_fields).map_err(Error::Validation)?;
        let mut tx = self.crm.begin(&allowed, actor);
        // Staging computes the diff once; a patch that changes nothing is dropped unwritten.
        if self.crm.stage_contact_update(&mut tx, &current, next).is_empty() {
            return Ok(allowed.show_contact(current));
        }
        let mut written = tx.commit()?.contacts;
        written
            .pop()
            .map(|w| allowed.show_contact(w.into_record()))
            .ok_or_else(|| Error::InvalidState("no contact written".into()))
    }

    /// Makes a contact its customer's primary contact (the previous primary stops being one).
    pub fn set_primary(&self, actor: &Actor, id: ContactId) -> Result<Contact> {
        let (allowed, target) = self.authorized(actor, Action::Update, id)?;
        if target.primary {
            return Ok(allowed.show_contact(target));
        }
        let mut tx = self.crm.begin(&allowed, actor);
        let siblings = self.crm.store.contacts_of(target.customer_id)?;
        self.stage_demotions(&mut tx, siblings);
        self.crm.stage_contact_update(&mut tx, &target, Contact { primary: true, ..target.clone() });
        let mut written = tx.commit()?.contacts;
        written
            .pop()
            .map(|w| allowed.show_contact(w.into_record()))
            .ok_or_else(|| Error::InvalidState("no contact written".into()))
    }

    /// Removes (soft-deletes) a contact: a delete, so elevated when access control is on. If
    /// it was primary, the oldest remaining contact becomes primary in the same transaction.
    pub fn delete(&self, actor: &Actor, id: ContactId, expected_version: u64) -> Result<()> {
        let (allowed, current) = self.authorized(actor, Action::Delete, id)?;
        check_version(EntityKind::Contact, id, expected_version, current.version)?;
        let mut tx = self.crm.begin(&allowed, actor);
        let now = tx.at();
        if current.primary {
            let successor = self
                .crm
                .store
                .contacts_of(current.customer_id)?
                .into_iter()
                .filter(|c| c.id != id)
                .min_by_key(|c| c.id);
            if let Some(s) = successor {
                self.crm.stage_contact_update(&mut tx, &s, Contact { primary: true, ..s.clone() });
            }
        }
        let removed = Contact { deleted_at: Some(now), primary: false, ..current.clone() };
        self.crm.stage_contact_update(&mut tx, &current, removed);
        tx.commit().map(drop)
    }
}

impl Interactions<'_> {
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
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Interaction)?;
        let mut tx = self.crm.begin(&allowed, actor);
        let now = tx.at();
        let input = NewInteraction { at: Some(input.at.unwrap_or(now)), ..input };
        let mut v = input.validate().map_err(Error::Validation)?;
        let owner = self.crm.live_customer(customer)?;
        allowed.check_customer(actor, &owner)?;
        if let Some(cid) = v.contact_id {
            self.crm.check_contact_of(cid, Some(customer), "this customer")?;
        }
        let interaction = Interaction {
            id: InteractionId(self.crm.ids.next(now)),
            customer_id: customer,
            contact_id: v.contact_id,
            kind: v.kind,
            at: v.at.unwrap_or(now),
            author: v.author.take().unwrap_or_else(|| actor.user_id().clone()),
            content: v.content,
            next_step: v.next_step,
            next_contact_on: v.next_contact_on,
            feedback: v.feedback,
            attachments: v.attachments,
            created_by: actor.user_id().clone(),
            created_at: now,
        };
        let diff = created_fields(to_json(&interaction), &[UNLOGGED, &["customer_id"]].concat(), &[]);
        let event = DomainEvent::InteractionLogged { customer, interaction: interaction.id };
        tx.write(
            |c| c.interactions.push(interaction.clone()),
            Entry::new(EntityKind::Interaction, interaction.id, ChangeAction::Create, diff).of_customer(Some(customer)),
            [event],
        );
        tx.commit()?;
        Ok(interaction)
    }

    /// The interactions of a customer, oldest first.
    pub fn list(&self, actor: &Actor, customer: CustomerId) -> Result<Vec<Interaction>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Interaction)?;
        if !allowed.scope.all {
            let owner =
                self.crm.store.customer(customer)?.ok_or_else(|| Error::not_found(EntityKind::Customer, customer))?;
            allowed.check_customer(actor, &owner)?;
        }
        self.crm.store.interactions_of(customer)
    }
}
