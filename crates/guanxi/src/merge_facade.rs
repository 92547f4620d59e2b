//! Merging duplicate customers: a plan first (a dry run), then one atomic write that moves
//! every related record to the survivor and leaves the others as tombstones, and an undo that
//! puts every record back as it was.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use guanxi_core::changelog::diff_json;
use guanxi_core::dedup::{FieldChoice, MergeRequest, survive};
use guanxi_core::sales::{Opportunity, OpportunityFilter, Task, TaskFilter};
use guanxi_core::service::{Ticket, TicketFilter};
use guanxi_core::{
    Action, Actor, ChangeAction, Changes, Contact, ContactId, Customer, CustomerId, DomainEvent, EntityKind, Error,
    FieldChange, InteractionId, InteractionMove, OpportunityId, Result, TagLink, TaskId, TicketId, UserId, Write,
};

use crate::crm::Crm;
use crate::handles::Duplicates;
use crate::plumbing::{NESTED, UNLOGGED, check_version, log, to_json, walk_pages};
use crate::plumbing::{decode, setting_write};

/// What a merge will do, computed without writing anything: the survivor as it will read,
/// the fields whose records disagree and the value each keeps, and every record that moves.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let a = Actor::user("a")?;
/// let x = crm.customers().create(&a, NewCustomer::new("甲公司"))?;
/// let y = crm.customers().create(&a, NewCustomer::new("甲有限公司").source("展会"))?;
/// let plan = crm.duplicates().plan_merge(&a, &guanxi::dedup::MergeRequest::new(x.id, [y.id]))?;
/// assert_eq!(plan.survivor.source.as_deref(), Some("展会"));
/// assert!(plan.fields.iter().any(|f| f.field == "name" && f.from == y.id)); // the more recent
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MergePlan {
    /// The survivor after the merge.
    pub survivor: Customer,
    /// The records that become tombstones, as they are now.
    pub merged: Vec<Customer>,
    /// Fields whose records disagree, with the value kept and where it comes from.
    pub fields: Vec<FieldChoice>,
    /// Tags the survivor gains.
    pub tags_added: Vec<String>,
    /// Contacts that move to the survivor.
    pub contacts: Vec<ContactId>,
    /// Follow-ups that move.
    pub interactions: Vec<InteractionId>,
    /// Opportunities that move.
    pub opportunities: Vec<OpportunityId>,
    /// Tickets that move.
    pub tickets: Vec<TicketId>,
    /// Tasks that move.
    pub tasks: Vec<TaskId>,
}

/// A merge carried out: its id (for [`Duplicates::undo_merge`](crate::Duplicates::undo_merge)) and what it did.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let a = Actor::user("a")?;
/// let (x, y) = (crm.customers().create(&a, NewCustomer::new("甲"))?, crm.customers().create(&a, NewCustomer::new("乙"))?);
/// let done = crm.duplicates().merge(&a, &guanxi::dedup::MergeRequest::new(x.id, [y.id]))?;
/// assert_eq!(done.plan.survivor.version, 2); // the stored survivor
/// crm.duplicates().undo_merge(&a, &done.merge_id)?;
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOutcome {
    /// Pass to [`Duplicates::undo_merge`](crate::Duplicates::undo_merge).
    pub merge_id: String,
    /// The plan that was applied (its `survivor` is the stored record).
    pub plan: MergePlan,
}

/// What undo needs: every record the merge changed, as it was before.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MergeRecord {
    id: String,
    at: DateTime<Utc>,
    actor: UserId,
    survivor: Customer,
    merged: Vec<Customer>,
    contacts: Vec<Contact>,
    opportunities: Vec<Opportunity>,
    tickets: Vec<Ticket>,
    tasks: Vec<Task>,
    /// Interaction → the customer it was on.
    interactions: Vec<(InteractionId, CustomerId)>,
    tags_added: Vec<String>,
    undone_at: Option<DateTime<Utc>>,
}

fn merge_key(id: &str) -> String {
    format!("merge.{id}")
}

/// The bookkeeping every versioned record carries.
trait Versioned: Clone {
    const ENTITY: EntityKind;
    fn version(&self) -> u64;
    fn id_text(&self) -> String;
    /// The record as written by `actor` at `now` over stored version `version`.
    fn written(self, actor: &Actor, now: DateTime<Utc>, version: u64) -> Self;
}

macro_rules! versioned {
    ($($t:ty => $entity:ident),* $(,)?) => {$(
        impl Versioned for $t {
            const ENTITY: EntityKind = EntityKind::$entity;
            fn version(&self) -> u64 {
                self.version
            }
            fn id_text(&self) -> String {
                self.id.to_string()
            }
            fn written(mut self, actor: &Actor, now: DateTime<Utc>, version: u64) -> Self {
                self.version = version + 1;
                self.updated_at = now;
                self.updated_by = actor.user_id().clone();
                self
            }
        }
    )*};
}

versioned!(Customer => Customer, Contact => Contact, Opportunity => Opportunity, Ticket => Ticket, Task => Task);

/// An update of `record` from its stored state `stored`.
fn update<T: Versioned>(stored: &T, record: T, actor: &Actor, now: DateTime<Utc>) -> Write<T> {
    let expected_version = stored.version();
    Write::Update { record: record.written(actor, now, expected_version), expected_version }
}

/// The records of the merged customers that move, as they are now.
struct Related {
    contacts: Vec<Contact>,
    interactions: Vec<(InteractionId, CustomerId)>,
    opportunities: Vec<Opportunity>,
    tickets: Vec<Ticket>,
    tasks: Vec<Task>,
}

impl Crm {
    fn related(&self, merged: &[Customer]) -> Result<Related> {
        let mut r =
            Related { contacts: vec![], interactions: vec![], opportunities: vec![], tickets: vec![], tasks: vec![] };
        for m in merged {
            r.contacts.extend(self.store.contacts_of(m.id)?);
            r.interactions.extend(self.store.interactions_of(m.id)?.into_iter().map(|i| (i.id, m.id)));
            let f = OpportunityFilter::default().customer(m.id);
            r.opportunities.extend(walk_pages(|p| self.store.list_opportunities(&f, p))?);
            let f = TicketFilter { customer_id: Some(m.id), ..Default::default() };
            r.tickets.extend(walk_pages(|p| self.store.list_tickets(&f, p))?);
        }
        let ids: Vec<CustomerId> = merged.iter().map(|m| m.id).collect();
        r.tasks = self
            .store
            .tasks(&TaskFilter::default())?
            .into_iter()
            .filter(|t| t.customer_id.is_some_and(|c| ids.contains(&c)))
            .collect();
        Ok(r)
    }

    /// The survivor and merged records, live and in the actor's merge scope.
    fn merge_parties(&self, actor: &Actor, request: &MergeRequest) -> Result<(Customer, Vec<Customer>)> {
        let allowed = self.authorize(actor, Action::Merge, EntityKind::Customer)?;
        request.check()?;
        let survivor = self.live_customer(request.survivor)?;
        allowed.check_customer(actor, &survivor)?;
        let mut merged = Vec::with_capacity(request.merged.len());
        for id in &request.merged {
            let c = self.live_customer(*id)?;
            allowed.check_customer(actor, &c)?;
            merged.push(c);
        }
        Ok((survivor, merged))
    }

    fn plan(&self, request: &MergeRequest, survivor: &Customer, merged: Vec<Customer>) -> Result<(MergePlan, Related)> {
        let (kept, fields) = survive(survivor, &merged, request)?;
        let related = self.related(&merged)?;
        let plan = MergePlan {
            tags_added: kept.tags.difference(&survivor.tags).cloned().collect(),
            survivor: kept,
            merged,
            fields,
            contacts: related.contacts.iter().map(|c| c.id).collect(),
            interactions: related.interactions.iter().map(|(i, _)| *i).collect(),
            opportunities: related.opportunities.iter().map(|o| o.id).collect(),
            tickets: related.tickets.iter().map(|t| t.id).collect(),
            tasks: related.tasks.iter().map(|t| t.id).collect(),
        };
        Ok((plan, related))
    }
}

/// Stages the return of each record to its state before the merge, reading its current state
/// with `fetch`.
fn restore_all<T: Versioned>(
    writes: &mut Vec<Write<T>>,
    befores: &[T],
    fetch: impl Fn(&T) -> Result<Option<T>>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    for before in befores {
        let current = fetch(before)?.ok_or_else(|| Error::not_found(T::ENTITY, before.id_text()))?;
        restore(writes, before, &current, actor, now)?;
    }
    Ok(())
}

/// Stages the return of a record to its state before the merge: refused if it changed since
/// (its version is no longer the one the merge wrote).
fn restore<T: Versioned>(
    writes: &mut Vec<Write<T>>,
    before: &T,
    current: &T,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    check_version(T::ENTITY, before.id_text(), before.version() + 1, current.version())?;
    writes.push(update(current, before.clone(), actor, now));
    Ok(())
}

impl Duplicates<'_> {
    /// What merging would do, without doing it (a dry run): see [`MergePlan`]. Needs the merge
    /// permission (a sensitive operation: elevated, when access control is on) on every record.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::dedup::{MergeRequest, Survivorship};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let a = crm.customers().create(&alice, NewCustomer::new("华为技术有限公司").contact(NewContact::new("张伟")))?;
    /// let b = crm.customers().create(&alice, NewCustomer::new("华为技术股份有限公司").address("深圳市龙岗区坂田").contact(NewContact::new("李娜")))?;
    /// let plan = crm.duplicates().plan_merge(&alice, &MergeRequest::new(a.id, [b.id]).policy(Survivorship::MostComplete))?;
    /// assert_eq!(plan.survivor.address.as_deref(), Some("深圳市龙岗区坂田"));
    /// assert_eq!(plan.contacts.len(), 1);
    /// assert_eq!(crm.contacts().list(&alice, a.id)?.len(), 1); // nothing written
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn plan_merge(&self, actor: &Actor, request: &MergeRequest) -> Result<MergePlan> {
        let (survivor, merged) = self.crm.merge_parties(actor, request)?;
        Ok(self.crm.plan(request, &survivor, merged)?.0)
    }

    /// Merges duplicates into a survivor in one transaction: the survivor takes the values the
    /// plan chose and the union of the tags; contacts, follow-ups, opportunities, tickets and
    /// tasks move to it; each merged record stays as a deleted tombstone whose `merged_into`
    /// names the survivor. Logged on every record, with a [`DomainEvent::CustomersMerged`].
    /// Undo with [`Duplicates::undo_merge`](crate::Duplicates::undo_merge).
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::dedup::MergeRequest;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let a = crm.customers().create(&alice, NewCustomer::new("华为技术有限公司").contact(NewContact::new("张伟")))?;
    /// let b = crm.customers().create(&alice, NewCustomer::new("华为技术股份有限公司").tag("VIP").contact(NewContact::new("李娜")))?;
    /// let done = crm.duplicates().merge(&alice, &MergeRequest::new(a.id, [b.id]))?;
    /// assert_eq!(crm.contacts().list(&alice, a.id)?.len(), 2);
    /// assert!(crm.customers().get(&alice, a.id)?.tags.contains("VIP"));
    /// assert_eq!(crm.duplicates().merged_into(&alice, b.id)?, Some(a.id));
    /// crm.duplicates().undo_merge(&alice, &done.merge_id)?;
    /// assert_eq!(crm.contacts().list(&alice, b.id)?[0].name, "李娜");
    /// assert_eq!(crm.duplicates().merged_into(&alice, b.id)?, None);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn merge(&self, actor: &Actor, request: &MergeRequest) -> Result<MergeOutcome> {
        let (survivor, merged) = self.crm.merge_parties(actor, request)?;
        let (plan, related) = self.crm.plan(request, &survivor, merged)?;
        let now = self.crm.clock.now();
        let merge_id = self.crm.ids.next(now).to_string();
        let mut changes = Changes::default();

        let kept = plan.survivor.clone().written(actor, now, survivor.version);
        let mut diff = diff_json(&to_json(&survivor), &to_json(&kept), UNLOGGED, NESTED);
        diff.retain(|c| c.field != "tags");
        let codes: Vec<String> = plan.merged.iter().map(|m| m.code.clone()).collect();
        diff.push(FieldChange::new("merged", None, Some(codes.join(",").into())));
        changes.change_log.push(log(
            now,
            actor,
            EntityKind::Customer,
            survivor.id.to_string(),
            Some(survivor.id),
            ChangeAction::Merge,
            diff,
        ));
        changes.customers.push(Write::Update { record: kept.clone(), expected_version: survivor.version });
        for t in &plan.tags_added {
            changes.tag_links.push(TagLink { customer: survivor.id, tag: t.clone(), linked: true });
        }
        for m in &plan.merged {
            let tomb = Customer { deleted_at: Some(now), merged_into: Some(survivor.id), ..m.clone() };
            changes.customers.push(update(m, tomb, actor, now));
            changes.change_log.push(log(
                now,
                actor,
                EntityKind::Customer,
                m.id.to_string(),
                Some(m.id),
                ChangeAction::Merge,
                vec![FieldChange::new("merged_into", None, Some(survivor.code.clone().into()))],
            ));
        }
        let keeps_primary = self.crm.store.contacts_of(survivor.id)?.iter().any(|c| c.primary);
        let mut primary_taken = keeps_primary;
        for c in &related.contacts {
            let primary = c.primary && !primary_taken;
            primary_taken |= primary;
            let moved = Contact { customer_id: survivor.id, primary, ..c.clone() };
            changes.contacts.push(update(c, moved, actor, now));
        }
        changes.interaction_moves = related
            .interactions
            .iter()
            .map(|(id, from)| InteractionMove { id: *id, from: *from, to: survivor.id })
            .collect();
        for o in &related.opportunities {
            changes.opportunities.push(update(
                o,
                Opportunity { customer_id: Some(survivor.id), ..o.clone() },
                actor,
                now,
            ));
        }
        for t in &related.tickets {
            changes.tickets.push(update(t, Ticket { customer_id: Some(survivor.id), ..t.clone() }, actor, now));
        }
        for t in &related.tasks {
            changes.tasks.push(update(t, Task { customer_id: Some(survivor.id), ..t.clone() }, actor, now));
        }
        let record = MergeRecord {
            id: merge_id.clone(),
            at: now,
            actor: actor.user_id().clone(),
            survivor: survivor.clone(),
            merged: plan.merged.clone(),
            contacts: related.contacts,
            opportunities: related.opportunities,
            tickets: related.tickets,
            tasks: related.tasks,
            interactions: related.interactions,
            tags_added: plan.tags_added.clone(),
            undone_at: None,
        };
        changes.settings.push(setting_write(merge_key(&merge_id), None, &record)?);
        let merged_ids = plan.merged.iter().map(|m| m.id).collect();
        let event =
            DomainEvent::CustomersMerged { customer: survivor.id, merged: merged_ids, merge_id: merge_id.clone() };
        self.crm.commit(actor, now, &changes, vec![event])?;
        let mut plan = plan;
        plan.survivor = kept;
        Ok(MergeOutcome { merge_id, plan })
    }

    /// Undoes a merge: every record it changed returns to its state before the merge (with a
    /// new version), the survivor loses the tags it gained, the follow-ups move back, and the
    /// tombstones are live again. Refused with [`Error::Conflict`] when one of those records
    /// changed since the merge (undo would lose that change), and with
    /// [`Error::InvalidState`] when the merge was already undone. Records added to the
    /// survivor after the merge stay on it.
    pub fn undo_merge(&self, actor: &Actor, merge_id: &str) -> Result<()> {
        let allowed = self.crm.authorize(actor, Action::Merge, EntityKind::Customer)?;
        let key = merge_key(merge_id);
        let stored = self.crm.store.setting(&key)?.ok_or_else(|| Error::not_found(EntityKind::Customer, &key))?;
        let mut record: MergeRecord = decode(&stored)?;
        if let Some(at) = record.undone_at {
            return Err(Error::InvalidState(format!("merge {merge_id} was already undone at {at}")));
        }
        let now = self.crm.clock.now();
        let mut changes = Changes::default();
        let current = self.crm.store.customer(record.survivor.id)?;
        let survivor_now = current.ok_or_else(|| Error::not_found(EntityKind::Customer, record.survivor.id))?;
        allowed.check_customer(actor, &survivor_now)?;
        restore(&mut changes.customers, &record.survivor, &survivor_now, actor, now)?;
        for t in &record.tags_added {
            changes.tag_links.push(TagLink { customer: record.survivor.id, tag: t.clone(), linked: false });
        }
        for m in &record.merged {
            let now_m = self.crm.store.customer(m.id)?.ok_or_else(|| Error::not_found(EntityKind::Customer, m.id))?;
            restore(&mut changes.customers, m, &now_m, actor, now)?;
            changes.change_log.push(log(
                now,
                actor,
                EntityKind::Customer,
                m.id.to_string(),
                Some(m.id),
                ChangeAction::Unmerge,
                vec![FieldChange::new("merged_into", Some(record.survivor.code.clone().into()), None)],
            ));
        }
        let store = &self.crm.store;
        restore_all(&mut changes.contacts, &record.contacts, |c| store.contact(c.id), actor, now)?;
        restore_all(&mut changes.opportunities, &record.opportunities, |o| store.opportunity(o.id), actor, now)?;
        restore_all(&mut changes.tickets, &record.tickets, |t| store.ticket(t.id), actor, now)?;
        restore_all(&mut changes.tasks, &record.tasks, |t| store.task(t.id), actor, now)?;
        changes.interaction_moves = record
            .interactions
            .iter()
            .map(|(id, to)| InteractionMove { id: *id, from: record.survivor.id, to: *to })
            .collect();
        changes.change_log.push(log(
            now,
            actor,
            EntityKind::Customer,
            record.survivor.id.to_string(),
            Some(record.survivor.id),
            ChangeAction::Unmerge,
            vec![FieldChange::new("merge", Some(merge_id.into()), None)],
        ));
        let restored = record.merged.iter().map(|m| m.id).collect();
        let event = DomainEvent::MergeUndone { customer: record.survivor.id, restored, merge_id: merge_id.to_owned() };
        record.undone_at = Some(now);
        changes.settings.push(setting_write(key, Some(stored), &record)?);
        self.crm.commit(actor, now, &changes, vec![event])
    }

    /// The survivor a merged customer (a tombstone) was merged into; None for a customer that
    /// was not merged, or whose merge was undone.
    pub fn merged_into(&self, actor: &Actor, id: CustomerId) -> Result<Option<CustomerId>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        let c = self.crm.store.customer(id)?.ok_or_else(|| Error::not_found(EntityKind::Customer, id))?;
        allowed.check_customer(actor, &c)?;
        Ok(c.merged_into)
    }
}
