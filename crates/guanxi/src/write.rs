//! The one write path: a [`WriteTx`] opened from an authorized permission collects a call's
//! records, derives each one's change-log entry from the change itself (created fields, or the
//! diff of current and next), stamps versions and `updated_*`, queues the event each change
//! implies, and commits them as one atomic batch before the events go out.
//!
//! Nothing else in the facade applies a batch: a record cannot be staged without its entry, and
//! [`WriteTx::commit`] refuses a batch that would write rows with no entry at all.

use chrono::{DateTime, Utc};
use serde::Serialize;

use guanxi_core::changelog::{created_fields, diff_json};
use guanxi_core::sales::{Lead, Opportunity, Task};
use guanxi_core::service::{Article, Ticket};
use guanxi_core::{
    Actor, ChangeAction, ChangeLogEntry, Changes, Contact, Customer, CustomerId, DomainEvent, EntityKind, Error,
    FieldChange, Result, Setting, StoreView, Tag, TagLink, TagWrite, UserId, Write,
};

use crate::crm::Crm;
use crate::permission::{AT_REST, Allowed};
use crate::plumbing::{NESTED, UNLOGGED, setting_write, to_json};
use crate::saved_segments::Touch;

/// A versioned record the write path knows how to stamp, log and announce.
pub(crate) trait Record: Serialize + Clone {
    /// The kind its log entries carry.
    const KIND: EntityKind;
    /// Object-valued fields logged key by key.
    const NESTED: &'static [&'static str] = &[];
    /// Fields a create entry leaves out beyond the bookkeeping ones (already on the entry).
    const IMPLIED: &'static [&'static str] = &[];
    /// The id its log entries carry.
    fn log_id(&self) -> String;
    /// The customer its log entries are filed under (for timelines).
    fn customer_of(&self) -> Option<CustomerId>;
    fn version(&self) -> u64;
    /// Sets the version and who changed it when.
    fn stamp(&mut self, version: u64, at: DateTime<Utc>, by: &UserId);
    /// Where its writes go in a batch.
    fn slot(changes: &mut Changes) -> &mut Vec<Write<Self>>;
    /// The record as its log entries see it (a lead's phone masked, say).
    fn logged(&self) -> serde_json::Value {
        to_json(self)
    }
    /// The events a change of this record implies (`fields` are the changed ones).
    fn events(&self, action: ChangeAction, fields: Vec<String>) -> Vec<DomainEvent>;
}

macro_rules! versioned {
    ($slot:ident, customer: |$r:ident| $customer:expr) => {
        fn log_id(&self) -> String {
            self.id.to_string()
        }
        fn customer_of(&self) -> Option<CustomerId> {
            let $r = self;
            $customer
        }
        fn version(&self) -> u64 {
            self.version
        }
        fn stamp(&mut self, version: u64, at: DateTime<Utc>, by: &UserId) {
            self.version = version;
            self.updated_at = at;
            self.updated_by = by.clone();
        }
        fn slot(changes: &mut Changes) -> &mut Vec<Write<Self>> {
            &mut changes.$slot
        }
    };
}

impl Record for Customer {
    const KIND: EntityKind = EntityKind::Customer;
    const NESTED: &'static [&'static str] = NESTED;
    versioned!(customers, customer: |r| Some(r.id));
    fn events(&self, action: ChangeAction, fields: Vec<String>) -> Vec<DomainEvent> {
        let customer = self.id;
        match action {
            ChangeAction::Create => std::iter::once(DomainEvent::CustomerCreated { customer, code: self.code.clone() })
                .chain(self.tags.iter().map(|t| DomainEvent::TagAdded { customer, tag: t.clone() }))
                .collect(),
            ChangeAction::Delete => vec![DomainEvent::CustomerDeleted { customer }],
            ChangeAction::Restore => vec![DomainEvent::CustomerRestored { customer }],
            _ => vec![DomainEvent::CustomerUpdated { customer, fields }],
        }
    }
}

impl Record for Contact {
    const KIND: EntityKind = EntityKind::Contact;
    const NESTED: &'static [&'static str] = NESTED;
    const IMPLIED: &'static [&'static str] = &["customer_id"];
    versioned!(contacts, customer: |r| Some(r.customer_id));
    fn events(&self, action: ChangeAction, fields: Vec<String>) -> Vec<DomainEvent> {
        let (customer, contact) = (self.customer_id, self.id);
        vec![match action {
            ChangeAction::Create => DomainEvent::ContactAdded { customer, contact },
            ChangeAction::Delete => DomainEvent::ContactRemoved { customer, contact },
            _ => DomainEvent::ContactUpdated { customer, contact, fields },
        }]
    }
}

impl Record for Opportunity {
    const KIND: EntityKind = EntityKind::Opportunity;
    versioned!(opportunities, customer: |r| r.customer_id);
    fn events(&self, action: ChangeAction, fields: Vec<String>) -> Vec<DomainEvent> {
        vec![match action {
            ChangeAction::Create => DomainEvent::OpportunityCreated { opportunity: self.id, code: self.code.clone() },
            _ => DomainEvent::OpportunityUpdated { opportunity: self.id, fields },
        }]
    }
}

impl Record for Lead {
    const KIND: EntityKind = EntityKind::Lead;
    versioned!(leads, customer: |r| r.converted.as_ref().map(|c| c.customer_id));
    fn logged(&self) -> serde_json::Value {
        to_json(&Lead { phone: self.phone.as_ref().map(|p| p.masked()), ..self.clone() })
    }
    fn events(&self, action: ChangeAction, _fields: Vec<String>) -> Vec<DomainEvent> {
        match (action, &self.converted) {
            (ChangeAction::Create, _) => vec![DomainEvent::LeadCreated { lead: self.id, code: self.code.clone() }],
            (_, Some(c)) => {
                vec![DomainEvent::LeadConverted {
                    lead: self.id,
                    customer: c.customer_id,
                    opportunity: c.opportunity_id,
                }]
            }
            (_, None) => Vec::new(),
        }
    }
}

impl Record for Task {
    const KIND: EntityKind = EntityKind::Task;
    versioned!(tasks, customer: |r| r.customer_id);
    fn events(&self, action: ChangeAction, _fields: Vec<String>) -> Vec<DomainEvent> {
        match action {
            ChangeAction::Create => vec![DomainEvent::TaskCreated { task: self.id }],
            _ if self.done_at.is_some() => vec![DomainEvent::TaskCompleted { task: self.id }],
            _ => Vec::new(),
        }
    }
}

impl Record for Ticket {
    const KIND: EntityKind = EntityKind::Ticket;
    versioned!(tickets, customer: |r| r.customer_id);
    fn events(&self, action: ChangeAction, _fields: Vec<String>) -> Vec<DomainEvent> {
        let (ticket, customer) = (self.id, self.customer_id);
        let mut events = vec![match action {
            ChangeAction::Create => DomainEvent::TicketCreated { ticket, code: self.code.clone(), customer },
            _ => DomainEvent::TicketChanged { ticket, status: self.status, customer },
        }];
        if action == ChangeAction::Create && !self.risk_flags.is_empty() {
            let keywords = self.risk_flags.iter().cloned().collect();
            events.push(DomainEvent::TicketFlagged { ticket, keywords, customer });
        }
        events
    }
}

impl Record for guanxi_core::commerce::Product {
    const KIND: EntityKind = EntityKind::Product;
    versioned!(products, customer: |_r| None);
    fn events(&self, _action: ChangeAction, _fields: Vec<String>) -> Vec<DomainEvent> {
        vec![DomainEvent::ProductSaved { product: self.id, code: self.code.clone() }]
    }
}

impl Record for guanxi_core::commerce::Purchase {
    const KIND: EntityKind = EntityKind::Purchase;
    const IMPLIED: &'static [&'static str] = &["customer_id"];
    versioned!(purchases, customer: |r| Some(r.customer_id));
    fn events(&self, action: ChangeAction, _fields: Vec<String>) -> Vec<DomainEvent> {
        let (purchase, customer) = (self.id, self.customer_id);
        vec![match action {
            ChangeAction::Create => DomainEvent::PurchaseRecorded { purchase, customer },
            _ => DomainEvent::PurchaseUpdated { purchase, customer, status: self.status },
        }]
    }
}

impl Record for Article {
    const KIND: EntityKind = EntityKind::Article;
    versioned!(articles, customer: |_r| None);
    fn events(&self, _action: ChangeAction, _fields: Vec<String>) -> Vec<DomainEvent> {
        vec![DomainEvent::ArticleSaved { article: self.id }]
    }
}

/// A change-log entry before the store numbers and chains it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) entity: EntityKind,
    pub(crate) id: String,
    pub(crate) customer: Option<CustomerId>,
    pub(crate) action: ChangeAction,
    pub(crate) changes: Vec<FieldChange>,
}

impl Entry {
    pub(crate) fn new(entity: EntityKind, id: impl ToString, action: ChangeAction, changes: Vec<FieldChange>) -> Self {
        Entry { entity, id: id.to_string(), customer: None, action, changes }
    }

    /// Files the entry under a customer (it shows in their timeline).
    pub(crate) fn of_customer(mut self, customer: Option<CustomerId>) -> Self {
        self.customer = customer;
        self
    }
}

/// One call's writes, entries and events, committed together. Opened by [`Crm::begin`] (a
/// call's own transaction) or [`Crm::begin_in`] (a part of a store write session).
#[must_use = "a write transaction writes nothing until it is committed"]
pub(crate) struct WriteTx<'a> {
    crm: &'a Crm,
    view: &'a dyn StoreView,
    in_session: bool,
    actor: &'a Actor,
    at: DateTime<Utc>,
    changes: Changes,
    events: Vec<DomainEvent>,
    /// Tags known to be defined, in the store or by this transaction: a batch of customers
    /// sharing a tag reads it once.
    known_tags: std::collections::BTreeSet<String>,
    /// Sequence values reserved ahead for a batch, by key: the next one and the end.
    blocks: std::collections::HashMap<String, (u64, u64)>,
    /// How many follow-ups deep this transaction is (0: a call's own; 1: the saved-segment
    /// follow-up of a call's writes; more: dynamic tags setting off other segments).
    depth: usize,
}

impl Crm {
    /// A write transaction for an actor under a permission this call resolved (the permission
    /// is the proof the call was authorized; its scope checks stay the caller's).
    pub(crate) fn begin<'a>(&'a self, _granted: &Allowed, actor: &'a Actor) -> WriteTx<'a> {
        WriteTx::open(self, self.view(), false, actor, self.clock.now())
    }

    /// A write transaction inside a store write session (`view`), stamped `at`: its batch is
    /// applied to the session and its events handed back for after the session commits.
    pub(crate) fn begin_in<'a>(
        &'a self,
        view: &'a dyn StoreView,
        _granted: &Allowed,
        actor: &'a Actor,
        at: DateTime<Utc>,
    ) -> WriteTx<'a> {
        WriteTx::open(self, view, true, actor, at)
    }

    /// The follow-up of an authorized write inside its session (`depth` levels down): the
    /// writes the store makes because of it — saved segment membership, dynamic tags —
    /// logged under the same actor and instant.
    pub(crate) fn begin_follow<'a>(
        &'a self,
        view: &'a dyn StoreView,
        actor: &'a Actor,
        at: DateTime<Utc>,
        depth: usize,
    ) -> WriteTx<'a> {
        let mut tx = WriteTx::open(self, view, true, actor, at);
        tx.depth = depth;
        tx
    }

    /// A transaction that only records an attempt in the log (an elevation try, a user's own
    /// credentials), which by its nature comes before any permission.
    pub(crate) fn begin_attempt<'a>(&'a self, actor: &'a Actor) -> WriteTx<'a> {
        WriteTx::open(self, self.view(), false, actor, self.clock.now())
    }
}

impl<'a> WriteTx<'a> {
    fn open(crm: &'a Crm, view: &'a dyn StoreView, in_session: bool, actor: &'a Actor, at: DateTime<Utc>) -> Self {
        WriteTx {
            crm,
            view,
            in_session,
            actor,
            at,
            changes: Changes::default(),
            events: Vec::new(),
            known_tags: Default::default(),
            blocks: Default::default(),
            depth: 0,
        }
    }

    /// A new record id, ordered after every id made before it.
    pub(crate) fn new_id(&self) -> uuid::Uuid {
        self.crm.ids.next(self.at)
    }

    /// The instant every write of this transaction is stamped with.
    pub(crate) fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// The store as this transaction reads it (inside a session, with the session's writes).
    pub(crate) fn view(&self) -> &'a dyn StoreView {
        self.view
    }

    /// The batch staged so far (to look up a record staged earlier in the same call).
    pub(crate) fn staged(&self) -> &Changes {
        &self.changes
    }

    /// Reserves `count` values of a sequence through this transaction's view (inside a session
    /// the reservation belongs to it).
    pub(crate) fn reserve_sequence(&self, key: &str, count: u64) -> Result<u64> {
        self.view.reserve_sequence(key, count)
    }

    /// Reserves `count` values of a sequence at once for a batch, which
    /// [`next_in_sequence`](Self::next_in_sequence) then hands out one by one: one store write
    /// instead of one per record.
    pub(crate) fn reserve_block(&mut self, key: &str, count: u64) -> Result<()> {
        if count > 0 {
            let first = self.view.reserve_sequence(key, count)?;
            self.blocks.insert(key.to_owned(), (first, first + count));
        }
        Ok(())
    }

    /// The next value of a sequence: from a block reserved ahead, else reserved on its own.
    pub(crate) fn next_in_sequence(&mut self, key: &str) -> Result<u64> {
        if let Some((next, end)) = self.blocks.get_mut(key)
            && *next < *end
        {
            *next += 1;
            return Ok(*next - 1);
        }
        self.view.reserve_sequence(key, 1)
    }

    /// Stages a new record with its create entry (every field set) and its events.
    pub(crate) fn insert<R: Record>(&mut self, record: R) {
        let events = record.events(ChangeAction::Create, Vec::new());
        self.insert_as(record, events);
    }

    /// [`WriteTx::insert`] with the events given instead of the record's own.
    pub(crate) fn insert_as<R: Record>(&mut self, record: R, events: impl IntoIterator<Item = DomainEvent>) {
        let fields = created_fields(record.logged(), &[UNLOGGED, R::IMPLIED].concat(), R::NESTED);
        self.entry(
            Entry::new(R::KIND, record.log_id(), ChangeAction::Create, fields).of_customer(record.customer_of()),
        );
        self.events.extend(events);
        R::slot(&mut self.changes).push(Write::Insert(record));
    }

    /// Stages `next` as the new version of `current`: stamped, logged as the diff of the two
    /// under `action`, with the events it implies. Returns the stamped record.
    pub(crate) fn update<R: Record>(&mut self, current: &R, next: R, action: ChangeAction) -> R {
        self.update_logged(current, next, action, Vec::new(), None).0
    }

    /// [`WriteTx::update`] with the events given instead of the record's own.
    pub(crate) fn update_as<R: Record>(
        &mut self,
        current: &R,
        next: R,
        action: ChangeAction,
        events: impl IntoIterator<Item = DomainEvent>,
    ) -> R {
        self.update_logged(current, next, action, Vec::new(), Some(events.into_iter().collect())).0
    }

    /// The general update: the entry is the diff plus `also` (changes the diff cannot see, such
    /// as tag links); `events` replace the record's own when given. Returns the stamped record
    /// and the entry's changes.
    pub(crate) fn update_logged<R: Record>(
        &mut self,
        current: &R,
        mut next: R,
        action: ChangeAction,
        also: Vec<FieldChange>,
        events: Option<Vec<DomainEvent>>,
    ) -> (R, Vec<FieldChange>) {
        let mut diff = diff_json(&current.logged(), &next.logged(), UNLOGGED, R::NESTED);
        diff.extend(also);
        next.stamp(current.version() + 1, self.at, self.actor.user_id());
        let fields = diff.iter().map(|c| c.field.clone()).collect();
        self.events.extend(events.unwrap_or_else(|| next.events(action, fields)));
        self.entry(Entry::new(R::KIND, next.log_id(), action, diff.clone()).of_customer(next.customer_of()));
        R::slot(&mut self.changes).push(Write::Update { record: next.clone(), expected_version: current.version() });
        (next, diff)
    }

    /// Stages rows that are not versioned records (tags, custom field definitions,
    /// interactions, the access model) together with the entry that records them.
    pub(crate) fn write(
        &mut self,
        rows: impl FnOnce(&mut Changes),
        entry: Entry,
        events: impl IntoIterator<Item = DomainEvent>,
    ) {
        rows(&mut self.changes);
        self.entry(entry);
        self.events.extend(events);
    }

    /// Adds a tag to a customer or removes it, logged as a tag or untag of the customer. A tag
    /// added that is not defined yet (in the store or earlier in this transaction) is defined,
    /// ungrouped.
    pub(crate) fn link_tag(&mut self, customer: CustomerId, tag: &str, linked: bool) -> Result<()> {
        if linked {
            self.ensure_tag(tag)?;
        }
        self.changes.tag_links.push(TagLink { customer, tag: tag.to_owned(), linked });
        let (action, change, event) = if linked {
            let change = FieldChange::new("tags", None, Some(tag.into()));
            (ChangeAction::Tag, change, DomainEvent::TagAdded { customer, tag: tag.to_owned() })
        } else {
            let change = FieldChange::new("tags", Some(tag.into()), None);
            (ChangeAction::Untag, change, DomainEvent::TagRemoved { customer, tag: tag.to_owned() })
        };
        self.entry(Entry::new(EntityKind::Customer, customer, action, vec![change]).of_customer(Some(customer)));
        self.events.push(event);
        Ok(())
    }

    /// Defines a tag a new record carries, unless it is defined (in the store or earlier in
    /// this transaction): part of that record's create entry, which lists its tags.
    pub(crate) fn ensure_tag(&mut self, tag: &str) -> Result<()> {
        if self.known_tags.contains(tag) {
            return Ok(());
        }
        let defined = self.view.tag(tag)?.is_some()
            || self.changes.tags.iter().any(|w| matches!(w, TagWrite::Ensure(x) | TagWrite::Put(x) if x.name == tag));
        self.known_tags.insert(tag.to_owned());
        if !defined {
            let created_at = Some(self.at);
            self.changes.tags.push(TagWrite::Ensure(Tag { name: tag.to_owned(), group: None, created_at }));
        }
        Ok(())
    }

    /// Stages rows that belong to a change already logged in this transaction (stage history
    /// of an opportunity, entries of a ticket, the tag links and interaction moves of a merge).
    pub(crate) fn attach(&mut self, rows: impl FnOnce(&mut Changes)) {
        rows(&mut self.changes);
    }

    /// Stores a settings document under `key` (insert, or update of `stored`), with the
    /// entries that record it.
    pub(crate) fn put_setting<T: Serialize>(
        &mut self,
        key: String,
        stored: Option<Setting>,
        value: &T,
        entries: impl IntoIterator<Item = Entry>,
        events: impl IntoIterator<Item = DomainEvent>,
    ) -> Result<()> {
        let write = setting_write(key, stored, value)?;
        self.changes.settings.push(write);
        for e in entries {
            self.entry(e);
        }
        self.events.extend(events);
        Ok(())
    }

    /// Adds an entry that records something other than a stored row (a read, an export, an
    /// elevation, a tag link).
    pub(crate) fn log(&mut self, entry: Entry) {
        self.entry(entry);
    }

    /// Queues an event beyond the ones the staged changes imply.
    pub(crate) fn queue(&mut self, event: DomainEvent) {
        self.events.push(event);
    }

    fn entry(&mut self, mut e: Entry) {
        // Sensitive values are masked here, so they never reach the log in clear.
        if AT_REST.restricts(e.entity) {
            for ch in &mut e.changes {
                AT_REST.apply_change(e.entity, ch);
            }
        }
        self.changes.change_log.push(ChangeLogEntry {
            seq: 0,
            at: self.at,
            actor: self.actor.user_id().clone(),
            entity: e.entity,
            entity_id: e.id,
            customer_id: e.customer,
            action: e.action,
            changes: e.changes,
            prev_hash: String::new(),
            hash: String::new(),
        });
    }

    fn check(&self) -> Result<()> {
        if self.changes.change_log.is_empty() && !self.changes.is_empty() {
            return Err(Error::InvalidState("a write batch without a change-log entry was refused".into()));
        }
        Ok(())
    }

    /// Applies the batch atomically, then hands its events to the listeners. Returns the batch
    /// as written (its records carry their stamps).
    ///
    /// A batch that touches customers (records, tags, events, interactions) is applied in a
    /// write session together with its saved-segment follow-up: the segments it can change
    /// are re-evaluated for the customers it touched, in the same transaction.
    pub(crate) fn commit(self) -> Result<Changes> {
        debug_assert!(!self.in_session, "a session's transaction is applied with apply_in_session");
        self.check()?;
        let mut events = self.events;
        if !self.changes.is_empty() {
            let touch = Touch::of(&self.changes);
            let levels = self.crm.level_rule.is_some() && !self.changes.purchases.is_empty();
            if touch.is_empty() && !levels {
                self.crm.store.apply(&self.changes)?;
            } else {
                let mut followed = Vec::new();
                self.crm.store.write_session(&mut |view| {
                    view.apply(&self.changes)?;
                    followed = self.crm.follow_levels(view, self.actor, self.at, &self.changes, self.depth)?;
                    followed.extend(self.crm.follow_segments(view, self.actor, self.at, &touch, self.depth)?);
                    Ok(())
                })?;
                events.extend(followed);
            }
        }
        self.crm.publish(self.actor, self.at, events);
        Ok(self.changes)
    }

    /// Applies the batch to the session this transaction was opened in, with its
    /// saved-segment follow-up (see [`commit`](Self::commit)); returns its events, to be
    /// published once the session commits.
    pub(crate) fn apply_in_session(self) -> Result<(Changes, Vec<DomainEvent>)> {
        self.check()?;
        let mut events = self.events;
        if !self.changes.is_empty() {
            self.view.apply(&self.changes)?;
            let touch = Touch::of(&self.changes);
            events.extend(self.crm.follow_levels(self.view, self.actor, self.at, &self.changes, self.depth)?);
            events.extend(self.crm.follow_segments(self.view, self.actor, self.at, &touch, self.depth)?);
        }
        Ok((self.changes, events))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use guanxi_core::{ChangeLogQuery, NewCustomer};

    use super::*;

    fn alice() -> Actor {
        Actor::user("alice").unwrap()
    }

    #[test]
    fn a_batch_that_writes_rows_without_any_entry_is_refused_and_writes_nothing() {
        let crm = Crm::in_memory();
        let c = crm.customers().create(&alice(), NewCustomer::new("甲")).unwrap();
        let actor = alice();
        let granted = Allowed::own_account();
        let mut tx = crm.begin(&granted, &actor);
        tx.attach(|ch| ch.tag_links.push(TagLink { customer: c.id, tag: "VIP".into(), linked: true }));
        assert!(matches!(tx.commit(), Err(Error::InvalidState(_))));
        assert!(crm.customers().get(&actor, c.id).unwrap().tags.is_empty());
    }

    #[test]
    fn an_update_is_stamped_logged_as_its_diff_and_announced() {
        let crm = Crm::in_memory();
        let actor = alice();
        let c = crm.customers().create(&actor, NewCustomer::new("甲")).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        crm.subscribe(move |e| sink.lock().unwrap().push(e.payload.clone()));
        let granted = Allowed::own_account();
        let bob = Actor::user("bob").unwrap();
        let mut tx = crm.begin(&granted, &bob);
        let next = tx.update(&c, Customer { name: "乙".into(), ..c.clone() }, ChangeAction::Update);
        assert_eq!((next.version, next.updated_by.as_str()), (2, "bob"));
        // Nothing is visible before the commit.
        assert_eq!(crm.customers().get(&actor, c.id).unwrap().name, "甲");
        assert!(seen.lock().unwrap().is_empty());
        tx.commit().unwrap();
        assert_eq!(crm.customers().get(&actor, c.id).unwrap().version, 2);
        let log = crm.audit().entries(&actor, &ChangeLogQuery::default()).unwrap();
        let last = log.last().unwrap();
        assert_eq!((last.action, last.actor.as_str(), last.customer_id), (ChangeAction::Update, "bob", Some(c.id)));
        let fields: Vec<&str> = last.changes.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["name"]);
        assert_eq!(
            *seen.lock().unwrap(),
            [DomainEvent::CustomerUpdated { customer: c.id, fields: vec!["name".into()] }]
        );
    }

    #[test]
    fn an_insert_logs_every_set_field_and_masks_contact_secrets() {
        let crm = Crm::in_memory();
        let actor = alice();
        let c = crm
            .customers()
            .create(&actor, NewCustomer::new("甲").contact(guanxi_core::NewContact::new("张伟").phone("13812345678")))
            .unwrap();
        let log = crm.audit().entries(&actor, &ChangeLogQuery::default()).unwrap();
        let contact = log.iter().find(|e| e.entity == EntityKind::Contact).unwrap();
        assert_eq!(contact.customer_id, Some(c.id));
        let phones = contact.changes.iter().find(|f| f.field == "phones").unwrap();
        let logged = phones.new.as_ref().unwrap().to_string();
        assert!(!logged.contains("13812345678"), "{logged}");
        assert!(!contact.changes.iter().any(|f| f.field == "customer_id" || f.field == "version"));
    }
}
