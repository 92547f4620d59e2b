//! Merging duplicate customers: a plan first (a dry run), then one atomic write that moves
//! every related record to the survivor and leaves the others as tombstones, and an undo that
//! puts every record back as it was.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use guanxi_core::commerce::{Purchase, PurchaseFilter};
use guanxi_core::dedup::{FieldChoice, MergeRequest, survive};
use guanxi_core::marketing::EventRange;
use guanxi_core::sales::{Opportunity, OpportunityFilter, Task, TaskFilter};
use guanxi_core::service::{Ticket, TicketFilter};
use guanxi_core::{
    Action, Actor, ChangeAction, Contact, ContactId, Customer, CustomerId, DomainEvent, EntityKind, Error, EventId,
    EventMove, FieldChange, InteractionId, InteractionMove, OpportunityId, Result, TagLink, TaskId, TicketId, UserId,
};

use crate::crm::Crm;
use crate::handles::Duplicates;
use crate::permission::Allowed;
use crate::plumbing::{check_version, decode, walk_pages};
use crate::write::{Record, WriteTx};

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
    /// Behaviour event → the customer it was on (absent from merges made before events moved).
    #[serde(default)]
    events: Vec<(EventId, CustomerId)>,
    /// The merged customers' purchases as they were (absent from merges made before purchases).
    #[serde(default)]
    purchases: Vec<Purchase>,
    tags_added: Vec<String>,
    undone_at: Option<DateTime<Utc>>,
}

fn merge_key(id: &str) -> String {
    format!("merge.{id}")
}

/// The records of the merged customers that move, as they are now.
struct Related {
    contacts: Vec<Contact>,
    interactions: Vec<(InteractionId, CustomerId)>,
    events: Vec<(EventId, CustomerId)>,
    opportunities: Vec<Opportunity>,
    tickets: Vec<Ticket>,
    tasks: Vec<Task>,
    purchases: Vec<Purchase>,
}

impl Crm {
    fn related(&self, merged: &[Customer]) -> Result<Related> {
        let mut r = Related {
            contacts: vec![],
            interactions: vec![],
            events: vec![],
            opportunities: vec![],
            tickets: vec![],
            tasks: vec![],
            purchases: vec![],
        };
        for m in merged {
            r.contacts.extend(self.store.contacts_of(m.id)?);
            r.interactions.extend(self.store.interactions_of(m.id)?.into_iter().map(|i| (i.id, m.id)));
            let events = walk_pages(|p| self.store.events_of(m.id, &EventRange::default(), p))?;
            r.events.extend(events.into_iter().map(|e| (e.id, m.id)));
            let f = OpportunityFilter::default().customer(m.id);
            r.opportunities.extend(walk_pages(|p| self.store.list_opportunities(&f, p))?);
            let f = TicketFilter { customer_id: Some(m.id), ..Default::default() };
            r.tickets.extend(walk_pages(|p| self.store.list_tickets(&f, p))?);
            let f = PurchaseFilter {
                customer_id: Some(m.id),
                customers: guanxi_core::CustomerFilter::default().deleted(guanxi_core::Deleted::Include),
                ..Default::default()
            };
            r.purchases.extend(walk_pages(|p| self.store.list_purchases(&f, p))?);
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
    fn merge_parties(&self, actor: &Actor, request: &MergeRequest) -> Result<(Allowed, Customer, Vec<Customer>)> {
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
        Ok((allowed, survivor, merged))
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
fn restore_all<T: Record>(tx: &mut WriteTx<'_>, befores: &[T], fetch: impl Fn(&T) -> Result<Option<T>>) -> Result<()> {
    for before in befores {
        let current = fetch(before)?.ok_or_else(|| Error::not_found(T::KIND, before.log_id()))?;
        restore(tx, before, &current, Vec::new())?;
    }
    Ok(())
}

/// Stages the return of a record to its state before the merge: refused if it changed since
/// (its version is no longer the one the merge wrote).
fn restore<T: Record>(tx: &mut WriteTx<'_>, before: &T, current: &T, also: Vec<FieldChange>) -> Result<()> {
    check_version(T::KIND, before.log_id(), before.version() + 1, current.version())?;
    tx.update_logged(current, before.clone(), ChangeAction::Unmerge, also, Some(Vec::new()));
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
        let (_, survivor, merged) = self.crm.merge_parties(actor, request)?;
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
        let (allowed, survivor, merged) = self.crm.merge_parties(actor, request)?;
        let (mut plan, related) = self.crm.plan(request, &survivor, merged)?;
        let mut tx = self.crm.begin(&allowed, actor);
        let now = tx.at();
        if !related.purchases.is_empty() {
            let parties: Vec<CustomerId> =
                std::iter::once(survivor.id).chain(plan.merged.iter().map(|m| m.id)).collect();
            plan.survivor = self.crm.merged_spend(plan.survivor, &parties, now)?;
        }
        let merge_id = self.crm.ids.next(now).to_string();

        // Every record the merge changes is logged under it; one event says what happened.
        let codes: Vec<String> = plan.merged.iter().map(|m| m.code.clone()).collect();
        let merged_codes = FieldChange::new("merged", None, Some(codes.join(",").into()));
        let (kept, _) =
            tx.update_logged(&survivor, plan.survivor.clone(), ChangeAction::Merge, vec![merged_codes], Some(vec![]));
        // The tag links the survivor gained (its entry lists its tags before and after).
        tx.attach(|c| {
            c.tag_links.extend(plan.tags_added.iter().map(|t| TagLink {
                customer: survivor.id,
                tag: t.clone(),
                linked: true,
            }));
        });
        for m in &plan.merged {
            let tomb = Customer { deleted_at: Some(now), merged_into: Some(survivor.id), ..m.clone() };
            tx.update_as(m, tomb, ChangeAction::Merge, []);
        }
        let keeps_primary = self.crm.store.contacts_of(survivor.id)?.iter().any(|c| c.primary);
        let mut primary_taken = keeps_primary;
        for c in &related.contacts {
            let primary = c.primary && !primary_taken;
            primary_taken |= primary;
            tx.update_as(c, Contact { customer_id: survivor.id, primary, ..c.clone() }, ChangeAction::Merge, []);
        }
        // The follow-ups move with their customer's entries (interactions are immutable rows).
        tx.attach(|c| {
            c.interaction_moves = related
                .interactions
                .iter()
                .map(|(id, from)| InteractionMove { id: *id, from: *from, to: survivor.id })
                .collect();
            // Their behaviour events too: the survivor's segments count what they did.
            c.event_moves =
                related.events.iter().map(|(id, from)| EventMove { id: *id, from: *from, to: survivor.id }).collect();
        });
        for o in &related.opportunities {
            tx.update_as(o, Opportunity { customer_id: Some(survivor.id), ..o.clone() }, ChangeAction::Merge, []);
        }
        for t in &related.tickets {
            tx.update_as(t, Ticket { customer_id: Some(survivor.id), ..t.clone() }, ChangeAction::Merge, []);
        }
        for t in &related.tasks {
            tx.update_as(t, Task { customer_id: Some(survivor.id), ..t.clone() }, ChangeAction::Merge, []);
        }
        // Purchases too: the survivor's spend (and level) counts what the merged ones bought.
        for p in &related.purchases {
            tx.update_as(p, Purchase { customer_id: survivor.id, ..p.clone() }, ChangeAction::Merge, []);
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
            events: related.events,
            purchases: related.purchases,
            tags_added: plan.tags_added.clone(),
            undone_at: None,
        };
        let merged_ids = plan.merged.iter().map(|m| m.id).collect();
        let event =
            DomainEvent::CustomersMerged { customer: survivor.id, merged: merged_ids, merge_id: merge_id.clone() };
        tx.put_setting(merge_key(&merge_id), None, &record, [], [event])?;
        tx.commit()?;
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
        let mut tx = self.crm.begin(&allowed, actor);
        let current = self.crm.store.customer(record.survivor.id)?;
        let survivor_now = current.ok_or_else(|| Error::not_found(EntityKind::Customer, record.survivor.id))?;
        allowed.check_customer(actor, &survivor_now)?;
        let undone = FieldChange::new("merge", Some(merge_id.into()), None);
        restore(&mut tx, &record.survivor, &survivor_now, vec![undone])?;
        let survivor_id = record.survivor.id;
        tx.attach(|c| {
            c.tag_links.extend(record.tags_added.iter().map(|t| TagLink {
                customer: survivor_id,
                tag: t.clone(),
                linked: false,
            }));
            c.interaction_moves = record
                .interactions
                .iter()
                .map(|(id, to)| InteractionMove { id: *id, from: survivor_id, to: *to })
                .collect();
            c.event_moves =
                record.events.iter().map(|(id, to)| EventMove { id: *id, from: survivor_id, to: *to }).collect();
        });
        for m in &record.merged {
            let now_m = self.crm.store.customer(m.id)?.ok_or_else(|| Error::not_found(EntityKind::Customer, m.id))?;
            restore(&mut tx, m, &now_m, Vec::new())?;
        }
        let store = &self.crm.store;
        restore_all(&mut tx, &record.contacts, |c| store.contact(c.id))?;
        restore_all(&mut tx, &record.opportunities, |o| store.opportunity(o.id))?;
        restore_all(&mut tx, &record.tickets, |t| store.ticket(t.id))?;
        restore_all(&mut tx, &record.tasks, |t| store.task(t.id))?;
        restore_all(&mut tx, &record.purchases, |p| store.purchase(p.id))?;
        let restored = record.merged.iter().map(|m| m.id).collect();
        let event = DomainEvent::MergeUndone { customer: survivor_id, restored, merge_id: merge_id.to_owned() };
        record.undone_at = Some(tx.at());
        tx.put_setting(key, Some(stored), &record, [], [event])?;
        tx.commit().map(drop)
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
