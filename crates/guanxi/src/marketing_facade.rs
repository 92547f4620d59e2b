//! Marketing (营销) through the facade: behaviour events recorded in bulk under their
//! customers' permissions, and segments evaluated over the customers the actor may see.

use std::collections::{BTreeMap, BTreeSet};

use guanxi_core::marketing::{BehaviourEvent, EventRange, Explained, Segment, SegmentContext, SegmentFacts};
use guanxi_core::{
    Action, Actor, ChangeAction, Customer, CustomerFilter, CustomerId, EntityKind, Error, EventId, FieldChange,
    Interaction, Page, PageRequest, Result, ValidationErrors, ValidationReason,
};

use crate::handles::{Events, Segments};
use crate::write::Entry;

/// At most this many events in one `record` call.
pub const MAX_EVENT_BATCH: usize = 10_000;

/// What [`Events::record`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedEvents {
    /// The events written, with their ids.
    pub recorded: Vec<EventId>,
    /// External ids left out because an event already carried them (stored, or earlier in
    /// the batch): sending a batch twice records it once.
    pub duplicates: Vec<String>,
}

impl Events<'_> {
    /// Records a batch of behaviour events, all or none: each event is checked (every bad
    /// field named, as `events[3].name`), its customer must be live and one the actor may
    /// update; an external id already recorded leaves its event out (reported in
    /// `duplicates`). Each event gets an id of its own instant (a UUIDv7), so ids sort by
    /// when events happened. The change log gets one entry per customer, counting its events.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::marketing::BehaviourEvent;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("李雷").kind(CustomerKind::Individual))?;
    /// let at = "2024-05-06T09:00:00Z".parse().unwrap();
    /// let mut view = BehaviourEvent::new(c.id, "page_view", at).property("url", CustomValue::Text("/ielts".into()));
    /// view.external_id = Some("web-1".into());
    /// let first = crm.marketing().events().record(&alice, vec![view.clone()])?;
    /// let again = crm.marketing().events().record(&alice, vec![view])?;
    /// assert_eq!((first.recorded.len(), again.recorded.len(), again.duplicates.len()), (1, 0, 1));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn record(&self, actor: &Actor, events: Vec<BehaviourEvent>) -> Result<RecordedEvents> {
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Customer)?;
        if events.len() > MAX_EVENT_BATCH {
            return Err(Error::invalid(
                "events",
                ValidationReason::TooLarge { max: MAX_EVENT_BATCH as u64, unit: "events".into() },
            ));
        }
        let mut errs = ValidationErrors::default();
        let mut valid = Vec::with_capacity(events.len());
        for (i, e) in events.into_iter().enumerate() {
            match e.validate() {
                Ok(e) => valid.push(e),
                Err(inner) => errs.extend_nested(&format!("events[{i}]"), inner),
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        let mut tx = self.crm.begin(&allowed, actor);
        let store = tx.view();
        // Every customer once: live, and one the actor may update.
        let customers: BTreeSet<CustomerId> = valid.iter().map(|e| e.customer_id).collect();
        for id in &customers {
            let c = store
                .customer(*id)?
                .filter(|c| !c.is_deleted())
                .ok_or_else(|| Error::not_found(EntityKind::Customer, *id))?;
            allowed.check_customer(actor, &c)?;
        }
        let external: Vec<String> = valid.iter().filter_map(|e| e.external_id.clone()).collect();
        let mut seen: BTreeSet<String> = store.stored_external_ids(&external)?.into_iter().collect();
        let mut report = RecordedEvents::default();
        let mut kept = Vec::with_capacity(valid.len());
        let mut per_customer: BTreeMap<CustomerId, u64> = BTreeMap::new();
        for mut e in valid {
            if let Some(x) = &e.external_id
                && !seen.insert(x.clone())
            {
                report.duplicates.push(x.clone());
                continue;
            }
            e.id = event_id(e.at);
            report.recorded.push(e.id);
            *per_customer.entry(e.customer_id).or_default() += 1;
            kept.push(e);
        }
        tx.attach(|c| c.events.extend(kept));
        for (customer, n) in per_customer {
            let change = FieldChange::new("events", None, Some(serde_json::json!(n)));
            tx.log(
                Entry::new(EntityKind::Customer, customer, ChangeAction::Update, vec![change])
                    .of_customer(Some(customer)),
            );
        }
        tx.commit()?;
        Ok(report)
    }

    /// One page of a customer's events within `range`, in the order they happened; the
    /// customer must be one the actor may read.
    pub fn list(
        &self,
        actor: &Actor,
        customer: CustomerId,
        range: &EventRange,
        page: &PageRequest,
    ) -> Result<Page<BehaviourEvent>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        let c = self.crm.store.customer(customer)?.ok_or_else(|| Error::not_found(EntityKind::Customer, customer))?;
        allowed.check_customer(actor, &c)?;
        self.crm.store.events_of(customer, range, page)
    }
}

/// A UUIDv7 of the event's own instant, its other bits random: ids sort by when events
/// happened, whatever order they arrive in. (The facade's id generator keeps ids monotonic in
/// the order they are made, which would sort late-arriving events last.)
fn event_id(at: chrono::DateTime<chrono::Utc>) -> EventId {
    let secs = u64::try_from(at.timestamp()).unwrap_or(0);
    EventId(uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, at.timestamp_subsec_nanos())))
}

/// Events read per customer for an explanation, a page at a time.
const EVENT_PAGE: usize = 1_000;

/// Members read per page when all of a segment's are asked for.
const MEMBER_PAGE: usize = 500;

impl Segments<'_> {
    /// Every live customer in `segment` that the actor may read (masked as the actor sees
    /// them), in id order, evaluated by the store (inside its SQL query on SQLite and
    /// PostgreSQL) at the clock's now in the store's time zone. The actor's scope is part of
    /// the query, so a segment never yields a record the actor may not see.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::marketing::Segment;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲").tag("VIP"))?;
    /// crm.customers().create(&alice, NewCustomer::new("乙"))?;
    /// let vip = Segment::parse("tag:VIP AND NOT status = lost")?;
    /// assert_eq!(crm.marketing().segments().members(&alice, &vip)?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn members(&self, actor: &Actor, segment: &Segment) -> Result<Vec<Customer>> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(MEMBER_PAGE);
        loop {
            let p = self.members_page(actor, segment, page)?;
            out.extend(p.items);
            match p.next {
                Some(next) => page = PageRequest { after: Some(next), limit: MEMBER_PAGE },
                None => return Ok(out),
            }
        }
    }

    /// One page of [`members`](Self::members): `page.limit` customers after the cursor.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::marketing::Segment;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// for name in ["甲", "乙", "丙"] {
    ///     crm.customers().create(&alice, NewCustomer::new(name).tag("VIP"))?;
    /// }
    /// let vip = Segment::parse("tag:VIP")?;
    /// let first = crm.marketing().segments().members_page(&alice, &vip, PageRequest::first(2))?;
    /// assert_eq!(first.items.len(), 2);
    /// let rest = crm.marketing().segments().members_page(&alice, &vip, PageRequest::after(first.next.unwrap(), 2))?;
    /// assert_eq!(rest.items.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn members_page(&self, actor: &Actor, segment: &Segment, page: PageRequest) -> Result<Page<Customer>> {
        let allowed = self.readable(actor, segment)?;
        let filter = self.crm.scoped_filter(&CustomerFilter::default(), &allowed)?;
        let p = self.crm.store.segment_members(&filter, segment, &self.context()?, &page)?;
        Ok(Page { items: p.items.into_iter().map(|c| allowed.show_customer(c)).collect(), next: p.next })
    }

    /// How many live customers the actor may read are in `segment`: as many as
    /// [`members`](Self::members) gives.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::marketing::Segment;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲").tag("VIP"))?;
    /// assert_eq!(crm.marketing().segments().count(&alice, &Segment::parse("tag:VIP")?)?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn count(&self, actor: &Actor, segment: &Segment) -> Result<u64> {
        let allowed = self.readable(actor, segment)?;
        let filter = self.crm.scoped_filter(&CustomerFilter::default(), &allowed)?;
        self.crm.store.count_segment_members(&filter, segment, &self.context()?)
    }

    /// Every node of `segment` with its value for one customer the actor may read: why it is
    /// (or is not) a member.
    pub fn explain(&self, actor: &Actor, customer: CustomerId, segment: &Segment) -> Result<Explained> {
        let allowed = self.readable(actor, segment)?;
        let c = self.crm.live_customer(customer)?;
        allowed.check_customer(actor, &c)?;
        let (events, interactions) = self.facts(&Reads::of(segment), c.id)?;
        Ok(segment.explain(&c, SegmentFacts { events: &events, interactions: &interactions }, &self.context()?))
    }

    /// The actor's read permission on customers, refused when the segment tests a custom
    /// field the actor's field rules mask or hide: its members would tell the value.
    fn readable(&self, actor: &Actor, segment: &Segment) -> Result<crate::permission::Allowed> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        let masked = |key: &&str| allowed.mask.visibility(EntityKind::Customer, &format!("custom.{key}")).is_some();
        if let Some(key) = segment.custom_fields().into_iter().find(masked) {
            return Err(Error::PermissionDenied {
                action: "read".into(),
                entity: EntityKind::Customer,
                reason: format!("the segment tests custom.{key}, which your field rules mask"),
            });
        }
        Ok(allowed)
    }

    fn context(&self) -> Result<SegmentContext> {
        let mut ctx = SegmentContext::at(self.crm.clock.now());
        ctx.offset = self.crm.code_offset;
        ctx.tag_groups = self.crm.store.tags()?.into_iter().filter_map(|t| t.group.map(|g| (t.name, g))).collect();
        Ok(ctx)
    }

    /// A customer's events and interactions, each read only when the segment counts them.
    fn facts(&self, reads: &Reads, customer: CustomerId) -> Result<(Vec<BehaviourEvent>, Vec<Interaction>)> {
        let mut events = Vec::new();
        if reads.events {
            let mut page = PageRequest::first(EVENT_PAGE);
            loop {
                let p = self.crm.store.events_of(customer, &EventRange::default(), &page)?;
                events.extend(p.items);
                match p.next {
                    Some(next) => page = PageRequest { after: Some(next), limit: EVENT_PAGE },
                    None => break,
                }
            }
        }
        let interactions = if reads.interactions { self.crm.store.interactions_of(customer)? } else { Vec::new() };
        Ok((events, interactions))
    }
}

/// What a segment reads of each customer beyond its record, found once per evaluation.
struct Reads {
    events: bool,
    interactions: bool,
}

impl Reads {
    fn of(segment: &Segment) -> Reads {
        Reads { events: !segment.event_names().is_empty(), interactions: segment.counts_interactions() }
    }
}
