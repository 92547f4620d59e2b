//! The in-memory backend: for tests, ephemeral use, and as the executable reference of the
//! storage contract.
//!
//! State lives in persistent (structurally shared) maps. A batch is applied to a cheap clone
//! and swapped in only if every write succeeded, so atomicity holds by construction.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use chrono::{DateTime, Utc};
use imbl::{HashMap, OrdMap, OrdSet, Vector};

use super::{
    AuditStore, Changes, CommerceStore, CrmStore, CustomerFilter, CustomerStore, Page, PageRequest, SalesStore,
    ServiceStore, Setting, StoreView, StoreWrite, TagWrite, Write,
};
use crate::access::AccessModel;
use crate::changelog::{ChangeLogEntry, ChangeLogQuery};
use crate::commerce::{Product, ProductFilter, Purchase, PurchaseFilter, PurchaseKey, PurchaseStatus};
use crate::contact::Contact;
use crate::custom_field::CustomFieldDef;
use crate::customer::Customer;
use crate::error::{EntityKind, Error, Result, StorageError};
use crate::ids::{
    ArticleId, ContactId, CustomerId, EventId, InteractionId, LeadId, OpportunityId, ProductId, PurchaseId, TaskId,
    TicketId, UserId,
};
use crate::interaction::Interaction;
use crate::marketing::{
    BehaviourEvent, EventRange, MembershipChange, MembershipQuery, Segment, SegmentContext, SegmentMembership,
};
use crate::normalize::{IdNumber, Phone};
use crate::sales::{
    Lead, LeadFilter, Opportunity, OpportunityFilter, Pipeline, SalesFacts, SalesQuery, StageHistoryEntry, Task,
    TaskFilter,
};
use crate::service::{Article, ArticleHit, KbQuery, SlaClock, Ticket, TicketEntry, TicketFilter, rank_articles};
use crate::tag::Tag;

#[derive(Debug, Clone, Default)]
struct State {
    customers: OrdMap<CustomerId, Customer>,
    codes: HashMap<String, CustomerId>,
    tag_members: OrdMap<String, OrdSet<CustomerId>>,
    contacts: OrdMap<ContactId, Contact>,
    contacts_by_customer: OrdMap<CustomerId, OrdSet<ContactId>>,
    tags: OrdMap<String, Tag>,
    interactions: OrdMap<InteractionId, Interaction>,
    interactions_by_customer: OrdMap<CustomerId, OrdSet<InteractionId>>,
    custom_fields: OrdMap<(EntityKind, String), CustomFieldDef>,
    change_log: Vector<ChangeLogEntry>,
    sequences: HashMap<String, u64>,
    access: Option<Arc<AccessModel>>,
    settings: OrdMap<String, Setting>,
    opportunities: OrdMap<OpportunityId, Opportunity>,
    opportunity_codes: HashMap<String, OpportunityId>,
    stage_history: OrdMap<(OpportunityId, u32), StageHistoryEntry>,
    leads: OrdMap<LeadId, Lead>,
    lead_codes: HashMap<String, LeadId>,
    tasks: OrdMap<TaskId, Task>,
    tickets: OrdMap<TicketId, Ticket>,
    ticket_codes: HashMap<String, TicketId>,
    ticket_entries: OrdMap<(TicketId, u32), TicketEntry>,
    articles: OrdMap<ArticleId, Article>,
    /// Behaviour events by (customer, id): a customer's in time order.
    events: OrdMap<(CustomerId, EventId), BehaviourEvent>,
    /// External id → the event that carried it.
    external_ids: HashMap<String, EventId>,
    /// Stays in saved segments by id.
    memberships: OrdMap<uuid::Uuid, SegmentMembership>,
    /// (segment, customer) → its open stay.
    open_memberships: HashMap<(String, CustomerId), uuid::Uuid>,
    products: OrdMap<ProductId, Product>,
    product_codes: HashMap<String, ProductId>,
    product_external_ids: HashMap<String, ProductId>,
    purchases: OrdMap<PurchaseId, Purchase>,
    purchase_keys: HashMap<PurchaseKey, PurchaseId>,
    /// Match key (contact key?, key) → (customer, source record); as SQLite's `match_keys`.
    match_keys: OrdMap<(bool, u64), OrdSet<(CustomerId, uuid::Uuid)>>,
    /// Source record → the keys it contributed.
    match_sources: HashMap<uuid::Uuid, Vec<(bool, u64, CustomerId)>>,
}

/// Moves a unique index entry of record `id` from `old` to `new`: a `new` another record holds
/// is a duplicate of `(entity, field)`, shown as `shown` gives it.
fn reindex<K: std::hash::Hash + Eq + Clone, V: Copy + Eq>(
    index: &mut HashMap<K, V>,
    (old, new): (Option<K>, Option<K>),
    id: V,
    (entity, field): (EntityKind, &str),
    shown: impl Fn(&K) -> String,
) -> Result<()> {
    if old == new {
        return Ok(());
    }
    if let Some(n) = &new
        && index.get(n).is_some_and(|holder| *holder != id)
    {
        return Err(duplicate(entity, field, shown(n)));
    }
    if let Some(o) = old {
        index.remove(&o);
    }
    if let Some(n) = new {
        index.insert(n, id);
    }
    Ok(())
}

/// Checks a versioned write against the stored version: an insert over an existing record
/// is a duplicate, an update needs the expected version.
fn check_write<T>(w: &Write<T>, stored: Option<u64>, entity: EntityKind, id: impl ToString) -> Result<()> {
    match (w, stored) {
        (Write::Insert(_), Some(_)) => Err(duplicate(entity, "id", id.to_string())),
        (Write::Update { .. }, None) => Err(Error::not_found(entity, id.to_string())),
        (Write::Update { expected_version, .. }, Some(v)) if *expected_version != v => {
            Err(conflict(entity, id.to_string(), *expected_version, v))
        }
        _ => Ok(()),
    }
}

/// A store that keeps everything in memory; dropped with the handle.
///
/// ```
/// use guanxi_core::{prelude::*, MemoryStore};
/// let store = MemoryStore::new();
/// assert_eq!(store.reserve_sequence("C20240501", 3).unwrap(), 1);
/// assert_eq!(store.reserve_sequence("C20240501", 1).unwrap(), 4);
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: RwLock<State>,
    /// Held by every write (a batch, a sequence, a whole write session), so a session's
    /// result is never swapped over a write made meanwhile; readers take only `state`.
    writer: Mutex<()>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, State>> {
        self.state.read().map_err(|_| StorageError::msg("memory store lock poisoned").into())
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, State>> {
        self.state.write().map_err(|_| StorageError::msg("memory store lock poisoned").into())
    }

    fn writer(&self) -> Result<MutexGuard<'_, ()>> {
        self.writer.lock().map_err(|_| StorageError::msg("memory store writer lock poisoned").into())
    }

    /// Applies `f` to a clone of the state and swaps the result in: atomic by construction.
    fn update<R>(&self, f: impl FnOnce(&mut State) -> Result<R>) -> Result<R> {
        let _writer = self.writer()?;
        let mut next = self.read()?.clone();
        let r = f(&mut next)?;
        *self.write()? = next;
        Ok(r)
    }
}

fn conflict(entity: EntityKind, id: impl ToString, expected: u64, actual: u64) -> Error {
    Error::Conflict { entity, id: id.to_string(), expected, actual }
}

fn duplicate(entity: EntityKind, field: &str, value: impl ToString) -> Error {
    Error::Duplicate { entity, field: field.to_owned(), value: value.to_string() }
}

impl State {
    fn apply_membership(&mut self, m: &MembershipChange) -> Result<()> {
        match m {
            MembershipChange::Enter(stay) => {
                let key = (stay.segment.clone(), stay.customer_id);
                if self.open_memberships.contains_key(&key) || self.memberships.contains_key(&stay.id) {
                    return Err(duplicate(
                        EntityKind::Segment,
                        "membership",
                        format!("{} {}", stay.segment, stay.customer_id),
                    ));
                }
                if stay.exited_at.is_none() {
                    self.open_memberships.insert(key, stay.id);
                }
                self.memberships.insert(stay.id, stay.clone());
            }
            MembershipChange::Exit { segment, customer, at, reason } => {
                if let Some(id) = self.open_memberships.remove(&(segment.clone(), *customer))
                    && let Some(stay) = self.memberships.get_mut(&id)
                {
                    stay.exited_at = Some(*at);
                    stay.exited_because = Some(*reason);
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, changes: &Changes) -> Result<()> {
        for t in changes.tags.iter().cloned() {
            match t {
                TagWrite::Ensure(tag) => {
                    if !self.tags.contains_key(&tag.name) {
                        self.tags.insert(tag.name.clone(), tag);
                    }
                }
                TagWrite::Put(tag) => {
                    let kept = self.tags.get(&tag.name).and_then(|t| t.created_at);
                    self.tags.insert(tag.name.clone(), Tag { created_at: kept.or(tag.created_at), ..tag });
                }
            }
        }
        for w in changes.customers.iter().cloned() {
            let c = w.record();
            let names = crate::dedup::customer_match_keys(c.kind, &c.name).into_iter().map(|k| (false, k));
            let identifiers = crate::dedup::identifier_match_keys(&c.identifiers).into_iter().map(|k| (true, k));
            self.index_match_keys(c.id.0, c.id, names.chain(identifiers).collect());
            self.write_customer(w)?;
        }
        for w in changes.contacts.iter().cloned() {
            let c = w.record();
            let keys = if c.deleted_at.is_none() {
                crate::dedup::contact_match_keys(&c.phones, &c.emails)
            } else {
                Vec::new()
            };
            self.index_match_keys(c.id.0, c.customer_id, keys.into_iter().map(|k| (true, k)).collect());
            self.write_contact(w)?;
        }
        for link in &changes.tag_links {
            self.link(link.customer, &link.tag, link.linked)?;
        }
        for i in changes.interactions.iter().cloned() {
            if !self.customers.contains_key(&i.customer_id) {
                return Err(Error::not_found(EntityKind::Customer, i.customer_id));
            }
            if let Some(c) = i.contact_id.filter(|c| !self.contacts.contains_key(c)) {
                return Err(Error::not_found(EntityKind::Contact, c));
            }
            if self.interactions.contains_key(&i.id) {
                return Err(duplicate(EntityKind::Interaction, "id", i.id));
            }
            self.interactions_by_customer.entry(i.customer_id).or_default().insert(i.id);
            self.interactions.insert(i.id, i);
        }
        if let Some(before) = changes.purge_events_before {
            let old: Vec<_> = self
                .events
                .iter()
                .filter(|(_, e)| e.at < before)
                .map(|(key, e)| (*key, e.external_id.clone()))
                .collect();
            for (key, external) in old {
                self.events.remove(&key);
                if let Some(x) = external {
                    self.external_ids.remove(&x);
                }
            }
        }
        for e in &changes.events {
            if !self.customers.contains_key(&e.customer_id) {
                return Err(Error::not_found(EntityKind::Customer, e.customer_id));
            }
            if let Some(x) = &e.external_id {
                if self.external_ids.contains_key(x) {
                    continue;
                }
                self.external_ids.insert(x.clone(), e.id);
            }
            if self.events.contains_key(&(e.customer_id, e.id)) {
                return Err(duplicate(EntityKind::Customer, "event id", e.id));
            }
            self.events.insert((e.customer_id, e.id), e.clone());
        }
        for m in &changes.event_moves {
            if !self.customers.contains_key(&m.to) {
                return Err(Error::not_found(EntityKind::Customer, m.to));
            }
            let Some(mut e) = self.events.remove(&(m.from, m.id)) else {
                return Err(Error::not_found(EntityKind::Customer, format!("event {}", m.id)));
            };
            e.customer_id = m.to;
            self.events.insert((m.to, m.id), e);
        }
        for m in &changes.memberships {
            self.apply_membership(m)?;
        }
        for m in &changes.interaction_moves {
            if !self.customers.contains_key(&m.to) {
                return Err(Error::not_found(EntityKind::Customer, m.to));
            }
            let Some(mut i) = self.interactions.get(&m.id).filter(|i| i.customer_id == m.from).cloned() else {
                return Err(Error::not_found(EntityKind::Interaction, m.id));
            };
            if let Some(set) = self.interactions_by_customer.get_mut(&m.from) {
                set.remove(&m.id);
            }
            self.interactions_by_customer.entry(m.to).or_default().insert(m.id);
            i.customer_id = m.to;
            self.interactions.insert(m.id, i);
        }
        for def in changes.custom_fields.iter().cloned() {
            let key = (def.entity, def.key.clone());
            if self.custom_fields.contains_key(&key) {
                return Err(duplicate(EntityKind::CustomField, "key", &def.key));
            }
            self.custom_fields.insert(key, def);
        }
        if let Some(w) = &changes.access {
            let stored = self.access.as_ref().map(|m| m.version);
            match (w, stored) {
                (Write::Insert(_), Some(_)) => return Err(duplicate(EntityKind::Role, "access model", "")),
                (Write::Update { expected_version, .. }, Some(v)) if *expected_version != v => {
                    return Err(conflict(EntityKind::Role, "access model", *expected_version, v));
                }
                (Write::Update { .. }, None) => return Err(Error::not_found(EntityKind::Role, "access model")),
                _ => self.access = Some(Arc::new(w.record().clone())),
            }
        }
        for w in &changes.settings {
            let key = &w.record().key;
            check_write(w, self.settings.get(key).map(|s| s.version), EntityKind::Pipeline, key)?;
            self.settings.insert(key.clone(), w.record().clone());
        }
        for w in &changes.opportunities {
            let o = w.record();
            let stored = self.opportunities.get(&o.id);
            check_write(w, stored.map(|s| s.version), EntityKind::Opportunity, o.id)?;
            if let Some(c) = o.customer_id.filter(|c| !self.customers.contains_key(c)) {
                return Err(Error::not_found(EntityKind::Customer, c));
            }
            let old_code = stored.map(|s| s.code.clone());
            if old_code.as_ref() != Some(&o.code) {
                if self.opportunity_codes.contains_key(&o.code) {
                    return Err(duplicate(EntityKind::Opportunity, "code", &o.code));
                }
                if let Some(old) = old_code {
                    self.opportunity_codes.remove(&old);
                }
                self.opportunity_codes.insert(o.code.clone(), o.id);
            }
            self.opportunities.insert(o.id, o.clone());
        }
        for h in &changes.stage_history {
            if !self.opportunities.contains_key(&h.opportunity_id) {
                return Err(Error::not_found(EntityKind::Opportunity, h.opportunity_id));
            }
            let key = (h.opportunity_id, h.seq);
            if self.stage_history.contains_key(&key) {
                return Err(duplicate(EntityKind::Opportunity, "stage_history.seq", h.seq));
            }
            self.stage_history.insert(key, h.clone());
        }
        for w in &changes.leads {
            let l = w.record();
            let stored = self.leads.get(&l.id);
            check_write(w, stored.map(|s| s.version), EntityKind::Lead, l.id)?;
            if stored.is_none() {
                if self.lead_codes.contains_key(&l.code) {
                    return Err(duplicate(EntityKind::Lead, "code", &l.code));
                }
                self.lead_codes.insert(l.code.clone(), l.id);
            }
            self.leads.insert(l.id, l.clone());
        }
        for w in &changes.tasks {
            let t = w.record();
            check_write(w, self.tasks.get(&t.id).map(|s| s.version), EntityKind::Task, t.id)?;
            if let Some(o) = t.opportunity_id.filter(|o| !self.opportunities.contains_key(o)) {
                return Err(Error::not_found(EntityKind::Opportunity, o));
            }
            self.tasks.insert(t.id, t.clone());
        }
        for w in &changes.tickets {
            let t = w.record();
            let stored = self.tickets.get(&t.id);
            check_write(w, stored.map(|s| s.version), EntityKind::Ticket, t.id)?;
            if let Some(c) = t.customer_id.filter(|c| !self.customers.contains_key(c)) {
                return Err(Error::not_found(EntityKind::Customer, c));
            }
            if stored.is_none() {
                if self.ticket_codes.contains_key(&t.code) {
                    return Err(duplicate(EntityKind::Ticket, "code", &t.code));
                }
                self.ticket_codes.insert(t.code.clone(), t.id);
            }
            self.tickets.insert(t.id, t.clone());
        }
        for e in &changes.ticket_entries {
            if !self.tickets.contains_key(&e.ticket_id) {
                return Err(Error::not_found(EntityKind::Ticket, e.ticket_id));
            }
            let key = (e.ticket_id, e.seq);
            if self.ticket_entries.contains_key(&key) {
                return Err(duplicate(EntityKind::Ticket, "entries.seq", e.seq));
            }
            self.ticket_entries.insert(key, e.clone());
        }
        for w in &changes.articles {
            let a = w.record();
            check_write(w, self.articles.get(&a.id).map(|s| s.version), EntityKind::Article, a.id)?;
            self.articles.insert(a.id, a.clone());
        }
        for w in &changes.products {
            let p = w.record();
            let stored = self.products.get(&p.id).cloned();
            check_write(w, stored.as_ref().map(|s| s.version), EntityKind::Product, p.id)?;
            let codes = (stored.as_ref().map(|s| s.code.clone()), Some(p.code.clone()));
            reindex(&mut self.product_codes, codes, p.id, (EntityKind::Product, "code"), String::clone)?;
            let external = (stored.as_ref().and_then(|s| s.external_id.clone()), p.external_id.clone());
            reindex(
                &mut self.product_external_ids,
                external,
                p.id,
                (EntityKind::Product, "external_id"),
                String::clone,
            )?;
            self.products.insert(p.id, p.clone());
        }
        for w in &changes.purchases {
            let p = w.record();
            let stored = self.purchases.get(&p.id).cloned();
            check_write(w, stored.as_ref().map(|s| s.version), EntityKind::Purchase, p.id)?;
            if !self.customers.contains_key(&p.customer_id) {
                return Err(Error::not_found(EntityKind::Customer, p.customer_id));
            }
            let keys = (stored.as_ref().and_then(Purchase::key), p.key());
            let field = (EntityKind::Purchase, "external_id");
            reindex(&mut self.purchase_keys, keys, p.id, field, |k| k.external_id.clone())?;
            self.purchases.insert(p.id, p.clone());
        }
        let mut appended = changes.change_log.clone();
        let last = self.change_log.last().map(|e| (e.seq, e.hash.as_str()));
        crate::changelog::chain_entries(last, appended.iter_mut())?;
        self.change_log.extend(appended);
        Ok(())
    }

    fn history_of(&self, id: OpportunityId) -> Vec<StageHistoryEntry> {
        self.stage_history.range((id, 0)..=(id, u32::MAX)).map(|(_, h)| h.clone()).collect()
    }

    /// Replaces the match keys one record (a customer, or a contact) contributes, each with
    /// whether it is a sensitive key (looked up as a contact's are).
    fn index_match_keys(&mut self, source: uuid::Uuid, customer: CustomerId, keys: Vec<(bool, u64)>) {
        for (c, k, owner) in self.match_sources.remove(&source).unwrap_or_default() {
            if let Some(set) = self.match_keys.get_mut(&(c, k)) {
                set.remove(&(owner, source));
            }
        }
        for k in &keys {
            self.match_keys.entry(*k).or_default().insert((customer, source));
        }
        self.match_sources.insert(source, keys.into_iter().map(|(s, k)| (s, k, customer)).collect());
    }

    fn write_customer(&mut self, w: Write<Customer>) -> Result<()> {
        match w {
            Write::Insert(c) => {
                if self.customers.contains_key(&c.id) {
                    return Err(duplicate(EntityKind::Customer, "id", c.id));
                }
                if self.codes.contains_key(&c.code) {
                    return Err(duplicate(EntityKind::Customer, "code", &c.code));
                }
                if let Some(t) = c.tags.iter().find(|t| !self.tags.contains_key(*t)) {
                    return Err(Error::not_found(EntityKind::Tag, t));
                }
                for t in &c.tags {
                    self.tag_members.entry(t.clone()).or_default().insert(c.id);
                }
                self.codes.insert(c.code.clone(), c.id);
                self.customers.insert(c.id, c);
            }
            Write::Update { mut record, expected_version } => {
                let current =
                    self.customers.get(&record.id).ok_or_else(|| Error::not_found(EntityKind::Customer, record.id))?;
                if current.version != expected_version {
                    return Err(conflict(EntityKind::Customer, record.id, expected_version, current.version));
                }
                if current.code != record.code {
                    if self.codes.contains_key(&record.code) {
                        return Err(duplicate(EntityKind::Customer, "code", &record.code));
                    }
                    self.codes.remove(&current.code);
                    self.codes.insert(record.code.clone(), record.id);
                }
                record.tags = current.tags.clone();
                self.customers.insert(record.id, record);
            }
        }
        Ok(())
    }

    fn write_contact(&mut self, w: Write<Contact>) -> Result<()> {
        let c = w.record();
        if !self.customers.contains_key(&c.customer_id) {
            return Err(Error::not_found(EntityKind::Customer, c.customer_id));
        }
        match w {
            Write::Insert(c) => {
                if self.contacts.contains_key(&c.id) {
                    return Err(duplicate(EntityKind::Contact, "id", c.id));
                }
                self.contacts_by_customer.entry(c.customer_id).or_default().insert(c.id);
                self.contacts.insert(c.id, c);
            }
            Write::Update { record, expected_version } => {
                let current =
                    self.contacts.get(&record.id).ok_or_else(|| Error::not_found(EntityKind::Contact, record.id))?;
                if current.version != expected_version {
                    return Err(conflict(EntityKind::Contact, record.id, expected_version, current.version));
                }
                if current.customer_id != record.customer_id {
                    let old = current.customer_id;
                    if let Some(set) = self.contacts_by_customer.get_mut(&old) {
                        set.remove(&record.id);
                    }
                    self.contacts_by_customer.entry(record.customer_id).or_default().insert(record.id);
                }
                self.contacts.insert(record.id, record);
            }
        }
        Ok(())
    }

    fn link(&mut self, customer: CustomerId, tag: &str, linked: bool) -> Result<()> {
        if !self.tags.contains_key(tag) {
            return Err(Error::not_found(EntityKind::Tag, tag));
        }
        let c = self.customers.get_mut(&customer).ok_or_else(|| Error::not_found(EntityKind::Customer, customer))?;
        if linked {
            c.tags.insert(tag.to_owned());
            self.tag_members.entry(tag.to_owned()).or_default().insert(customer);
        } else {
            c.tags.remove(tag);
            if let Some(m) = self.tag_members.get_mut(tag) {
                m.remove(&customer);
            }
        }
        Ok(())
    }
}

impl StoreWrite for MemoryStore {
    fn apply(&self, changes: &Changes) -> Result<()> {
        self.update(|state| state.apply(changes))
    }

    fn reserve_sequence(&self, key: &str, count: u64) -> Result<u64> {
        self.update(|s| {
            let first = s.sequences.get(key).copied().unwrap_or(0) + 1;
            s.sequences.insert(key.to_owned(), first + count.saturating_sub(1));
            Ok(first)
        })
    }
}

impl CustomerStore for MemoryStore {
    fn customer(&self, id: CustomerId) -> Result<Option<Customer>> {
        Ok(self.read()?.customers.get(&id).cloned())
    }

    fn customer_by_code(&self, code: &str) -> Result<Option<Customer>> {
        let s = self.read()?;
        Ok(s.codes.get(code).and_then(|id| s.customers.get(id)).cloned())
    }

    fn list_customers(&self, filter: &CustomerFilter, page: &PageRequest) -> Result<Page<Customer>> {
        page.check()?;
        let s = self.read()?;
        let start = page.after.map(|c| CustomerId(c.last_id()));
        let after = |id: &CustomerId| start.is_none_or(|s| *id > s);
        let rows: Vec<Customer> = match (filter.ids.as_ref(), filter.tags.first()) {
            // A few ids: read them, in id order.
            (Some(ids), _) => {
                let wanted: std::collections::BTreeSet<CustomerId> = ids.iter().copied().filter(after).collect();
                wanted
                    .into_iter()
                    .filter_map(|id| s.customers.get(&id))
                    .filter(|c| filter.matches(c))
                    .take(page.limit + 1)
                    .cloned()
                    .collect()
            }
            // Drive the scan from the tag's member index rather than every customer.
            (None, Some(tag)) => s
                .tag_members
                .get(tag)
                .into_iter()
                .flat_map(|m| m.iter())
                .filter(|id| after(id))
                .filter_map(|id| s.customers.get(id))
                .filter(|c| filter.matches(c))
                .take(page.limit + 1)
                .cloned()
                .collect(),
            (None, None) => s
                .customers
                .values()
                .filter(|c| after(&c.id) && filter.matches(c))
                .take(page.limit + 1)
                .cloned()
                .collect(),
        };
        Ok(Page::from_overfetch(rows, page.limit, |c| c.id.0))
    }

    fn count_customers(&self, filter: &CustomerFilter) -> Result<u64> {
        let s = self.read()?;
        Ok(s.customers.values().filter(|c| filter.matches(c)).count() as u64)
    }

    fn scan_customers(&self, filter: &CustomerFilter, visit: &mut crate::scan::CustomerVisit<'_>) -> Result<u64> {
        // One snapshot, visited after the lock is released: a visitor may read the store.
        let rows: Vec<Customer> = self.read()?.customers.values().filter(|c| filter.matches(c)).cloned().collect();
        for c in &rows {
            visit(&crate::scan::CustomerView::of(c))?;
        }
        Ok(rows.len() as u64)
    }

    fn contact(&self, id: ContactId) -> Result<Option<Contact>> {
        Ok(self.read()?.contacts.get(&id).cloned())
    }

    fn contacts_of(&self, customer: CustomerId) -> Result<Vec<Contact>> {
        let s = self.read()?;
        let mut out: Vec<Contact> = s
            .contacts_by_customer
            .get(&customer)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| s.contacts.get(id))
            .filter(|c| c.deleted_at.is_none())
            .cloned()
            .collect();
        out.sort_by_key(|c| (!c.primary, c.id));
        Ok(out)
    }

    fn contacts_by_phone(&self, phone: &Phone) -> Result<Vec<Contact>> {
        let s = self.read()?;
        Ok(s.contacts.values().filter(|c| c.deleted_at.is_none() && c.phones.contains(phone)).cloned().collect())
    }

    fn contacts_by_id_number(&self, id_number: &IdNumber) -> Result<Vec<Contact>> {
        let s = self.read()?;
        Ok(s.contacts
            .values()
            .filter(|c| c.deleted_at.is_none() && c.id_number.as_ref() == Some(id_number))
            .cloned()
            .collect())
    }

    fn customers_by_match_keys(&self, keys: &crate::dedup::MatchKeys, max_block: usize) -> Result<Vec<CustomerId>> {
        let s = self.read()?;
        let mut found = BTreeSet::new();
        let wanted = keys.names.iter().map(|k| (false, *k)).chain(keys.contacts.iter().map(|k| (true, *k)));
        for key in wanted {
            let live: BTreeSet<CustomerId> = s
                .match_keys
                .get(&key)
                .into_iter()
                .flatten()
                .map(|(c, _)| *c)
                .filter(|c| s.customers.get(c).is_some_and(|c| c.deleted_at.is_none()))
                .collect();
            if live.len() <= max_block {
                found.extend(live);
            }
        }
        Ok(found.into_iter().collect())
    }

    fn tag(&self, name: &str) -> Result<Option<Tag>> {
        Ok(self.read()?.tags.get(name).cloned())
    }

    fn tags(&self) -> Result<Vec<Tag>> {
        let mut out: Vec<Tag> = self.read()?.tags.values().cloned().collect();
        out.sort_by(|a, b| (&a.group, &a.name).cmp(&(&b.group, &b.name)));
        Ok(out)
    }

    fn interactions_of(&self, customer: CustomerId) -> Result<Vec<Interaction>> {
        let s = self.read()?;
        let mut out: Vec<Interaction> = s
            .interactions_by_customer
            .get(&customer)
            .into_iter()
            .flat_map(|ids| ids.iter())
            .filter_map(|id| s.interactions.get(id))
            .cloned()
            .collect();
        out.sort_by_key(|i| (i.at, i.id));
        Ok(out)
    }

    fn custom_fields(&self, entity: EntityKind) -> Result<Vec<CustomFieldDef>> {
        let s = self.read()?;
        Ok(s.custom_fields.values().filter(|d| d.entity == entity).cloned().collect())
    }

    fn all_contacts(&self, page: &PageRequest) -> Result<Page<Contact>> {
        page.check()?;
        let s = self.read()?;
        Ok(page_of(&s.contacts, page, ContactId, |id| id.0))
    }

    fn all_interactions(&self, page: &PageRequest) -> Result<Page<Interaction>> {
        page.check()?;
        let s = self.read()?;
        Ok(page_of(&s.interactions, page, InteractionId, |id| id.0))
    }

    fn events_of(&self, customer: CustomerId, range: &EventRange, page: &PageRequest) -> Result<Page<BehaviourEvent>> {
        page.check()?;
        let s = self.read()?;
        let start = page.after.map_or(EventId(uuid::Uuid::nil()), |c| EventId(c.last_id()));
        let first = (customer, start);
        let items: Vec<BehaviourEvent> = s
            .events
            .range(first..)
            .take_while(|((c, _), _)| *c == customer)
            .filter(|((_, id), e)| (page.after.is_none() || *id > start) && range.contains(e.at))
            .take(page.limit + 1)
            .map(|(_, e)| e.clone())
            .collect();
        Ok(Page::from_overfetch(items, page.limit, |e| e.id.0))
    }

    fn stored_external_ids(&self, ids: &[String]) -> Result<Vec<String>> {
        let s = self.read()?;
        Ok(ids.iter().filter(|x| s.external_ids.contains_key(*x)).cloned().collect())
    }

    fn count_events_before(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(self.read()?.events.values().filter(|e| e.at < before).count() as u64)
    }

    fn segment_members(
        &self,
        filter: &CustomerFilter,
        segment: &Segment,
        ctx: &SegmentContext,
        page: &PageRequest,
    ) -> Result<Page<Customer>> {
        super::segment_members_by_reference(self, filter, segment, ctx, page)
    }

    fn count_segment_members(&self, filter: &CustomerFilter, segment: &Segment, ctx: &SegmentContext) -> Result<u64> {
        super::count_segment_members_by_reference(self, filter, segment, ctx)
    }

    fn segment_memberships(&self, query: &MembershipQuery, page: &PageRequest) -> Result<Page<SegmentMembership>> {
        page.check()?;
        let s = self.read()?;
        let start = page.after.map_or(uuid::Uuid::nil(), |c| c.last_id());
        let items: Vec<SegmentMembership> = s
            .memberships
            .range(start..)
            .filter(|(id, m)| {
                (page.after.is_none() || **id > start)
                    && m.segment == query.segment
                    && query.customer.is_none_or(|c| c == m.customer_id)
                    && (!query.current_only || m.exited_at.is_none())
            })
            .take(page.limit + 1)
            .map(|(_, m)| m.clone())
            .collect();
        Ok(Page::from_overfetch(items, page.limit, |m| m.id))
    }

    fn open_memberships(&self, segment: &str, customers: &[CustomerId]) -> Result<Vec<SegmentMembership>> {
        let s = self.read()?;
        Ok(customers
            .iter()
            .filter_map(|c| s.open_memberships.get(&(segment.to_owned(), *c)))
            .filter_map(|id| s.memberships.get(id).cloned())
            .collect())
    }
}

/// One page of a map keyed by a UUID-backed id, in id order.
fn page_of<K: Ord + Clone, V: Clone>(
    map: &OrdMap<K, V>,
    page: &PageRequest,
    key: impl Fn(uuid::Uuid) -> K,
    uuid: impl Fn(&K) -> uuid::Uuid,
) -> Page<V> {
    use std::ops::Bound;
    let start = page.after.map_or(Bound::Unbounded, |c| Bound::Excluded(key(c.last_id())));
    let rows: Vec<(K, V)> =
        map.range((start, Bound::Unbounded)).take(page.limit + 1).map(|(k, v)| (k.clone(), v.clone())).collect();
    let page = Page::from_overfetch(rows, page.limit, |(k, _)| uuid(k));
    Page { items: page.items.into_iter().map(|(_, v)| v).collect(), next: page.next }
}

/// One page of `rows` (kept by id, so in id order) that `keep` admits, after the page's cursor.
fn page_by_id<K: Ord + Clone, T: Clone>(
    rows: &OrdMap<K, T>,
    page: &PageRequest,
    key: impl Fn(uuid::Uuid) -> K,
    keep: impl Fn(&T) -> bool,
    id: impl Fn(&T) -> uuid::Uuid,
) -> Result<Page<T>> {
    page.check()?;
    let start = page.after.map(|c| key(c.last_id()));
    let after = |k: &K| start.as_ref().is_none_or(|s| k > s);
    let items: Vec<T> =
        rows.iter().filter(|(k, v)| after(k) && keep(v)).map(|(_, v)| v.clone()).take(page.limit + 1).collect();
    Ok(Page::from_overfetch(items, page.limit, id))
}

impl SalesStore for MemoryStore {
    fn opportunity(&self, id: OpportunityId) -> Result<Option<Opportunity>> {
        Ok(self.read()?.opportunities.get(&id).cloned())
    }

    fn opportunity_by_code(&self, code: &str) -> Result<Option<Opportunity>> {
        let s = self.read()?;
        Ok(s.opportunity_codes.get(code).and_then(|id| s.opportunities.get(id)).cloned())
    }

    fn list_opportunities(&self, filter: &OpportunityFilter, page: &PageRequest) -> Result<Page<Opportunity>> {
        page_by_id(&self.read()?.opportunities, page, OpportunityId, |o| filter.matches(o), |o| o.id.0)
    }

    fn count_opportunities(&self, filter: &OpportunityFilter) -> Result<u64> {
        Ok(self.read()?.opportunities.values().filter(|o| filter.matches(o)).count() as u64)
    }

    fn opportunity_currencies(&self, filter: &OpportunityFilter) -> Result<Vec<String>> {
        let s = self.read()?;
        let set: std::collections::BTreeSet<String> =
            s.opportunities.values().filter(|o| filter.matches(o)).map(|o| o.currency.clone()).collect();
        Ok(set.into_iter().collect())
    }

    fn stage_history(&self, id: OpportunityId) -> Result<Vec<StageHistoryEntry>> {
        Ok(self.read()?.history_of(id))
    }

    fn sales_facts(&self, pipeline: &Pipeline, query: &SalesQuery, currency: &str) -> Result<SalesFacts> {
        let s = self.read()?;
        Ok(SalesFacts::from_records(pipeline, query, currency, s.opportunities.values(), |o| s.history_of(o.id)))
    }

    fn lead(&self, id: LeadId) -> Result<Option<Lead>> {
        Ok(self.read()?.leads.get(&id).cloned())
    }

    fn list_leads(&self, filter: &LeadFilter, page: &PageRequest) -> Result<Page<Lead>> {
        page_by_id(&self.read()?.leads, page, LeadId, |l| filter.matches(l), |l| l.id.0)
    }

    fn count_leads(&self, filter: &LeadFilter) -> Result<u64> {
        Ok(self.read()?.leads.values().filter(|l| filter.matches(l)).count() as u64)
    }

    fn task(&self, id: TaskId) -> Result<Option<Task>> {
        Ok(self.read()?.tasks.get(&id).cloned())
    }

    fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let s = self.read()?;
        let mut out: Vec<Task> = s.tasks.values().filter(|t| filter.matches(t)).cloned().collect();
        out.sort_by_key(|t| (t.due_at, t.id));
        Ok(out)
    }

    fn list_tasks(&self, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>> {
        page_by_id(&self.read()?.tasks, page, TaskId, |t| filter.matches(t), |t| t.id.0)
    }

    fn count_tasks(&self, filter: &TaskFilter) -> Result<u64> {
        Ok(self.read()?.tasks.values().filter(|t| filter.matches(t)).count() as u64)
    }
}

impl ServiceStore for MemoryStore {
    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        Ok(self.read()?.tickets.get(&id).cloned())
    }

    fn ticket_by_code(&self, code: &str) -> Result<Option<Ticket>> {
        let s = self.read()?;
        Ok(s.ticket_codes.get(code).and_then(|id| s.tickets.get(id)).cloned())
    }

    fn list_tickets(&self, filter: &TicketFilter, page: &PageRequest) -> Result<Page<Ticket>> {
        page_by_id(&self.read()?.tickets, page, TicketId, |t| filter.matches(t), |t| t.id.0)
    }

    fn count_tickets(&self, filter: &TicketFilter) -> Result<u64> {
        Ok(self.read()?.tickets.values().filter(|t| filter.matches(t)).count() as u64)
    }

    fn open_ticket_loads(&self, users: &[UserId]) -> Result<Vec<u64>> {
        let s = self.read()?;
        let open: Vec<&Ticket> = s.tickets.values().filter(|t| t.status.is_open()).collect();
        Ok(users.iter().map(|u| open.iter().filter(|t| t.assignee.as_ref() == Some(u)).count() as u64).collect())
    }

    fn sla_clocks(&self, filter: &TicketFilter) -> Result<Vec<SlaClock>> {
        Ok(self.read()?.tickets.values().filter(|t| filter.matches(t)).map(SlaClock::from).collect())
    }

    fn ticket_entries(&self, id: TicketId) -> Result<Vec<TicketEntry>> {
        let s = self.read()?;
        Ok(s.ticket_entries.range((id, 0)..=(id, u32::MAX)).map(|(_, e)| e.clone()).collect())
    }

    fn article(&self, id: ArticleId) -> Result<Option<Article>> {
        Ok(self.read()?.articles.get(&id).cloned())
    }

    fn search_articles(&self, query: &KbQuery) -> Result<Vec<ArticleHit>> {
        let s = self.read()?;
        let all: Vec<Article> = s.articles.values().cloned().collect();
        Ok(rank_articles(&all, query))
    }

    fn list_articles(&self, page: &PageRequest) -> Result<Page<Article>> {
        page.check()?;
        let s = self.read()?;
        Ok(page_of(&s.articles, page, ArticleId, |id| id.0))
    }
}

impl CommerceStore for MemoryStore {
    fn product(&self, id: ProductId) -> Result<Option<Product>> {
        Ok(self.read()?.products.get(&id).cloned())
    }

    fn products_by_codes(&self, codes: &[String]) -> Result<Vec<Product>> {
        let s = self.read()?;
        Ok(codes.iter().filter_map(|c| s.product_codes.get(c)).filter_map(|id| s.products.get(id)).cloned().collect())
    }

    fn products_by_external_ids(&self, ids: &[String]) -> Result<Vec<Product>> {
        let s = self.read()?;
        Ok(ids
            .iter()
            .filter_map(|c| s.product_external_ids.get(c))
            .filter_map(|id| s.products.get(id))
            .cloned()
            .collect())
    }

    fn list_products(&self, filter: &ProductFilter, page: &PageRequest) -> Result<Page<Product>> {
        page_by_id(&self.read()?.products, page, ProductId, |p| filter.matches(p), |p| p.id.0)
    }

    fn count_products(&self, filter: &ProductFilter) -> Result<u64> {
        Ok(self.read()?.products.values().filter(|p| filter.matches(p)).count() as u64)
    }

    fn purchase(&self, id: PurchaseId) -> Result<Option<Purchase>> {
        Ok(self.read()?.purchases.get(&id).cloned())
    }

    fn purchases_by_keys(&self, keys: &[PurchaseKey]) -> Result<Vec<Purchase>> {
        let s = self.read()?;
        Ok(keys.iter().filter_map(|k| s.purchase_keys.get(k)).filter_map(|id| s.purchases.get(id)).cloned().collect())
    }

    fn list_purchases(&self, filter: &PurchaseFilter, page: &PageRequest) -> Result<Page<Purchase>> {
        let s = self.read()?;
        let keep = |p: &Purchase| s.customers.get(&p.customer_id).is_some_and(|c| filter.matches(p, c));
        page_by_id(&s.purchases, page, PurchaseId, keep, |p| p.id.0)
    }

    fn count_purchases(&self, filter: &PurchaseFilter) -> Result<u64> {
        let s = self.read()?;
        let keep = |p: &&Purchase| s.customers.get(&p.customer_id).is_some_and(|c| filter.matches(p, c));
        Ok(s.purchases.values().filter(keep).count() as u64)
    }

    fn paid_spend(
        &self,
        customers: &[CustomerId],
        currency: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<rust_decimal::Decimal>> {
        let s = self.read()?;
        let mut sums: std::collections::HashMap<CustomerId, rust_decimal::Decimal> =
            customers.iter().map(|c| (*c, rust_decimal::Decimal::ZERO)).collect();
        for p in s.purchases.values() {
            if p.status == PurchaseStatus::Paid
                && p.currency == currency
                && p.at >= from
                && p.at < to
                && let Some(sum) = sums.get_mut(&p.customer_id)
            {
                *sum += p.amount;
            }
        }
        Ok(customers.iter().map(|c| sums[c]).collect())
    }

    fn customers_with_purchases(
        &self,
        currency: &str,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>> {
        let s = self.read()?;
        let ids: BTreeSet<CustomerId> = s
            .purchases
            .values()
            .filter(|p| p.currency == currency && after.is_none_or(|a| p.customer_id > a))
            .map(|p| p.customer_id)
            .collect();
        Ok(ids.into_iter().take(limit).collect())
    }
}

impl AuditStore for MemoryStore {
    fn change_log(&self, query: &ChangeLogQuery) -> Result<Vec<ChangeLogEntry>> {
        let s = self.read()?;
        Ok(s.change_log.iter().filter(|e| query.matches(e)).take(query.limit.unwrap_or(usize::MAX)).cloned().collect())
    }

    fn verify_change_log(&self) -> Result<crate::AuditCheck> {
        Ok(crate::changelog::verify_chain(self.read()?.change_log.iter()))
    }

    fn setting(&self, key: &str) -> Result<Option<Setting>> {
        Ok(self.read()?.settings.get(key).cloned())
    }

    fn access_model(&self) -> Result<Option<Arc<AccessModel>>> {
        Ok(self.read()?.access.clone())
    }

    fn settings(&self) -> Result<Vec<Setting>> {
        Ok(self.read()?.settings.values().cloned().collect())
    }

    fn settings_under(&self, prefix: &str) -> Result<Vec<Setting>> {
        let s = self.read()?;
        Ok(s.settings
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
            .collect())
    }

    fn sequences(&self) -> Result<Vec<(String, u64)>> {
        let mut out: Vec<(String, u64)> = self.read()?.sequences.iter().map(|(k, v)| (k.clone(), *v)).collect();
        out.sort();
        Ok(out)
    }
}

impl CrmStore for MemoryStore {
    fn write_session(&self, work: &mut dyn FnMut(&dyn StoreView) -> Result<()>) -> Result<()> {
        let _writer = self.writer()?;
        // The session writes to a store of its own over a clone (structurally shared, so
        // cheap) and readers go on reading the state before it until the swap.
        let session = MemoryStore { state: RwLock::new(self.read()?.clone()), writer: Mutex::new(()) };
        work(&session)?;
        let state = session.state.into_inner().map_err(|_| StorageError::msg("memory store lock poisoned"))?;
        *self.write()? = state;
        Ok(())
    }
}
