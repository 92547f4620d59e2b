//! Marketing (营销) through the facade: behaviour events recorded in bulk under their
//! customers' permissions, and segments evaluated over the customers the actor may see.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use guanxi_core::marketing::{
    BehaviourEvent, EventRange, Explained, MarketingSettings, Segment, SegmentContext, SegmentFacts,
};
use guanxi_core::store::SegmentReads;
use guanxi_core::{
    Action, Actor, ChangeAction, Customer, CustomerFilter, CustomerId, DomainEvent, EntityKind, Error, EventId,
    FieldChange, Page, PageRequest, Result, ValidationErrors, ValidationReason,
};

use crate::handles::{Events, Marketing, Segments};
use crate::plumbing::{decode, to_json, walk_pages};
use crate::write::Entry;

/// The settings document's key.
const MARKETING_SETTINGS: &str = "marketing";

impl Marketing<'_> {
    /// The marketing settings (the defaults when never set: events kept for ever).
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// assert_eq!(crm.marketing().settings(&alice)?.event_retention_days, None);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn settings(&self, actor: &Actor) -> Result<MarketingSettings> {
        self.crm.authorize(actor, Action::Read, EntityKind::MarketingSettings)?;
        self.crm.load_marketing_settings()
    }

    /// Replaces the marketing settings (checked; logged as a diff; raises
    /// `MarketingConfigured`). A retention makes `events().record` refuse older events and
    /// `events().purge` remove them.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::marketing::MarketingSettings;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.marketing().set_settings(&alice, MarketingSettings { event_retention_days: Some(730) })?;
    /// assert_eq!(crm.marketing().settings(&alice)?.event_retention_days, Some(730));
    /// let err = crm.marketing().set_settings(&alice, MarketingSettings { event_retention_days: Some(0) });
    /// assert!(matches!(err, Err(Error::Validation(_))));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn set_settings(&self, actor: &Actor, settings: MarketingSettings) -> Result<MarketingSettings> {
        let allowed = self.crm.authorize(actor, Action::Configure, EntityKind::MarketingSettings)?;
        settings.validate().map_err(Error::Validation)?;
        let stored = self.crm.store.setting(MARKETING_SETTINGS)?;
        let before = stored.as_ref().map(decode::<MarketingSettings>).transpose()?.map(|b| to_json(&b));
        self.crm.put_setting(
            actor,
            &allowed,
            MARKETING_SETTINGS.to_owned(),
            stored,
            &settings,
            before,
            EntityKind::MarketingSettings,
            DomainEvent::MarketingConfigured,
        )?;
        Ok(settings)
    }
}

impl crate::Crm {
    fn load_marketing_settings(&self) -> Result<MarketingSettings> {
        self.store.setting(MARKETING_SETTINGS)?.map_or_else(|| Ok(MarketingSettings::default()), |s| decode(&s))
    }
}

/// What [`Events::purge`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgedEvents {
    /// Events that happened before this instant were removed (None: no retention is set, and
    /// nothing was).
    pub before: Option<DateTime<Utc>>,
    /// How many were removed.
    pub purged: u64,
}

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
        let settings = self.crm.load_marketing_settings()?;
        let kept_from = settings.retention_start(self.crm.clock.now());
        for (i, e) in events.into_iter().enumerate() {
            if let Some(from) = kept_from.filter(|from| e.at < *from) {
                let days = settings.event_retention_days.unwrap_or_default();
                let detail = format!("older than the retention of {days} days (events are kept from {from})");
                errs.push(format!("events[{i}].at"), ValidationReason::Invalid { detail });
            }
            match e.validate() {
                Ok(e) => valid.push(e),
                Err(inner) => errs.extend_nested(&format!("events[{i}]"), inner),
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        // A contact named must be a live contact of the event's customer.
        for (i, e) in valid.iter().enumerate() {
            if let Some(contact) = e.contact_id {
                let theirs = self
                    .crm
                    .store
                    .contact(contact)?
                    .filter(|c| c.customer_id == e.customer_id && c.deleted_at.is_none());
                if theirs.is_none() {
                    let detail = format!("{contact} is not a contact of customer {}", e.customer_id);
                    errs.push(format!("events[{i}].contact_id"), ValidationReason::Invalid { detail });
                }
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

    /// Removes every behaviour event older than the retention the settings keep (none when
    /// no retention is set), in one logged batch that raises `EventsPurged`. Removing
    /// customers' data is a sensitive action: the actor must be elevated and may delete every
    /// customer (scope all).
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::marketing::{BehaviourEvent, MarketingSettings};
    /// let clock = std::sync::Arc::new(FixedClock::at("2024-06-01T00:00:00Z".parse().unwrap()));
    /// let crm = Crm::builder().clock(clock.clone()).build();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("李雷").kind(CustomerKind::Individual))?;
    /// let at = "2024-05-01T00:00:00Z".parse().unwrap();
    /// crm.marketing().events().record(&alice, vec![BehaviourEvent::new(c.id, "page_view", at)])?;
    /// crm.marketing().set_settings(&alice, MarketingSettings { event_retention_days: Some(7) })?;
    /// assert_eq!(crm.marketing().events().purge(&alice)?.purged, 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn purge(&self, actor: &Actor) -> Result<PurgedEvents> {
        let allowed = self.crm.authorize(actor, Action::Delete, EntityKind::Customer)?;
        if !allowed.scope.all {
            return Err(Error::PermissionDenied {
                action: "delete".into(),
                entity: EntityKind::Customer,
                reason: "purging events removes every customer's: it needs the right to delete all customers".into(),
            });
        }
        let Some(before) = self.crm.load_marketing_settings()?.retention_start(self.crm.clock.now()) else {
            return Ok(PurgedEvents { before: None, purged: 0 });
        };
        let (mut purged, mut raised) = (0, Vec::new());
        self.crm.store.write_session(&mut |view| {
            purged = view.count_events_before(before)?;
            if purged == 0 {
                return Ok(());
            }
            let mut tx = self.crm.begin_in(view, &allowed, actor, self.crm.clock.now());
            tx.attach(|c| c.purge_events_before = Some(before));
            let details = vec![
                FieldChange::new("before", None, Some(serde_json::json!(before))),
                FieldChange::new("events", Some(serde_json::json!(purged)), None),
            ];
            tx.log(Entry::new(EntityKind::MarketingSettings, MARKETING_SETTINGS, ChangeAction::Delete, details));
            tx.queue(DomainEvent::EventsPurged { before, count: purged });
            raised = tx.apply_in_session()?.1;
            Ok(())
        })?;
        self.crm.publish(actor, self.crm.clock.now(), raised);
        Ok(PurgedEvents { before: Some(before), purged })
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
        // One permission, scope and instant for every page: the pages agree with each other.
        let (allowed, filter, ctx, segment) = self.evaluation(actor, segment)?;
        let members = walk_pages(|page| self.crm.store.segment_members(&filter, &segment, &ctx, page))?;
        Ok(members.into_iter().map(|c| allowed.show_customer(c)).collect())
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
        let (allowed, filter, ctx, segment) = self.evaluation(actor, segment)?;
        let p = self.crm.store.segment_members(&filter, &segment, &ctx, &page)?;
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
        let (_, filter, ctx, segment) = self.evaluation(actor, segment)?;
        self.crm.store.count_segment_members(&filter, &segment, &ctx)
    }

    /// Every node of `segment` with its value for one customer the actor may read: why it is
    /// (or is not) a member. A `segment:<name>` shows as the saved segment's rule, inlined.
    pub fn explain(&self, actor: &Actor, customer: CustomerId, segment: &Segment) -> Result<Explained> {
        let segment = &*self.resolved(segment)?;
        let allowed = self.readable(actor, segment)?;
        let c = self.crm.live_customer(customer)?;
        allowed.check_customer(actor, &c)?;
        let (events, interactions) = SegmentReads::of(segment).facts(&*self.crm.store, c.id)?;
        Ok(segment.explain(&c, SegmentFacts { events: &events, interactions: &interactions }, &self.context()?))
    }

    /// The actor's read permission on customers, for a segment within its bounds
    /// (`Segment::validate`); refused when the segment tests a custom
    /// field the actor's field rules mask or hide: its members would tell the value.
    fn readable(&self, actor: &Actor, segment: &Segment) -> Result<crate::permission::Allowed> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        segment.validate().map_err(Error::Validation)?;
        self.refuse_masked(&allowed, segment)?;
        Ok(allowed)
    }

    /// Refuses a segment that tests a custom field the actor's field rules mask or hide.
    pub(crate) fn refuse_masked(&self, allowed: &crate::permission::Allowed, segment: &Segment) -> Result<()> {
        let masked = |key: &&str| allowed.mask.visibility(EntityKind::Customer, &format!("custom.{key}")).is_some();
        if let Some(key) = segment.custom_fields().into_iter().find(masked) {
            return Err(Error::PermissionDenied {
                action: "read".into(),
                entity: EntityKind::Customer,
                reason: format!("the segment tests custom.{key}, which your field rules mask"),
            });
        }
        Ok(())
    }

    /// What an evaluation of `segment` for the actor runs with: the permission (for masking),
    /// the scope as a filter, and the context at the clock's now.
    fn evaluation<'s>(
        &self,
        actor: &Actor,
        segment: &'s Segment,
    ) -> Result<(crate::permission::Allowed, CustomerFilter, SegmentContext, std::borrow::Cow<'s, Segment>)> {
        let segment = self.resolved(segment)?;
        let allowed = self.readable(actor, &segment)?;
        let filter = self.crm.scoped_filter(&CustomerFilter::default(), &allowed)?;
        Ok((allowed, filter, self.context()?, segment))
    }

    /// The segment with its `segment:<name>` references replaced by the saved segments'
    /// rules (a name not saved is a validation error on `expression`).
    fn resolved<'s>(&self, segment: &'s Segment) -> Result<std::borrow::Cow<'s, Segment>> {
        if segment.referenced_segments().is_empty() {
            return Ok(std::borrow::Cow::Borrowed(segment));
        }
        Ok(std::borrow::Cow::Owned(self.crm.resolve_references(segment)?))
    }

    fn context(&self) -> Result<SegmentContext> {
        let mut ctx = SegmentContext::at(self.crm.clock.now());
        ctx.offset = self.crm.code_offset;
        ctx.tag_groups = self.crm.store.tags()?.into_iter().filter_map(|t| t.group.map(|g| (t.name, g))).collect();
        Ok(ctx)
    }
}
