//! Saved segments through the facade: definitions stored as configuration documents, their
//! membership stored as stays, and the follow-up every write makes — the customers a write
//! touched are re-evaluated, in the same transaction, for the saved segments that write can
//! change (by what each one depends on), and their dynamic tags follow.
//!
//! The rules (what a membership becomes, which changes matter, cycles) are the core's
//! (`guanxi_core::marketing::saved`); this module reads, diffs and writes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use guanxi_core::marketing::saved::SAVED_SEGMENT_KEY_PREFIX;
use guanxi_core::marketing::{
    MAX_SAVED_SEGMENTS, MembershipChange, MembershipQuery, MembershipReason, SavedSegment, Segment, SegmentContext,
    SegmentDependencies, SegmentMembership, check_references,
};
use guanxi_core::store::StoreReads;
use guanxi_core::{
    Action, Actor, ChangeAction, Changes, CustomerFilter, CustomerId, DomainEvent, EntityKind, Error, FieldChange,
    Page, PageRequest, Result, Setting, StoreView, TagWrite,
};

use crate::crm::Crm;
use crate::handles::Segments;
use crate::plumbing::{decode, to_json, walk_pages};
use crate::write::{Entry, WriteTx};

/// Above this many touched customers, a saved segment is evaluated whole (one query) rather
/// than customer by customer.
const WHOLE_ABOVE: usize = 1_000;

/// How deep dynamic tags may set off one another within one write (each level a segment
/// whose tag another segment tests); saving refuses cycles, so this is only a guard.
pub(crate) const MAX_FOLLOW_DEPTH: usize = 16;

/// A saved segment ready to evaluate: its definition, its rule with references inlined, and
/// what that rule depends on.
#[derive(Debug)]
pub(crate) struct LiveSegment {
    def: SavedSegment,
    rule: Segment,
    deps: SegmentDependencies,
}

/// The saved segments as last read, keyed by the (key, version) of every stored definition:
/// a write reads the keys and versions (an index range) and decodes only when they changed.
#[derive(Debug, Default)]
pub(crate) struct SegmentCache(Mutex<Option<CachedSegments>>);

/// The (key, version) of every stored definition, and the live segments they resolve to.
type CachedSegments = (Vec<(String, u64)>, Arc<Vec<LiveSegment>>);

impl SegmentCache {
    fn live(&self, view: &dyn StoreReads) -> Result<Arc<Vec<LiveSegment>>> {
        let stored = view.settings_under(SAVED_SEGMENT_KEY_PREFIX)?;
        let stamp: Vec<(String, u64)> = stored.iter().map(|s| (s.key.clone(), s.version)).collect();
        if let Ok(guard) = self.0.lock()
            && let Some((cached, live)) = guard.as_ref()
            && *cached == stamp
        {
            return Ok(live.clone());
        }
        let defs = decode_all(&stored)?.into_iter().filter(|d| d.deleted_at.is_none()).collect::<Vec<_>>();
        let live = Arc::new(resolve_all(defs)?);
        if let Ok(mut guard) = self.0.lock() {
            *guard = Some((stamp, live.clone()));
        }
        Ok(live)
    }
}

fn decode_all(stored: &[Setting]) -> Result<Vec<SavedSegment>> {
    stored.iter().map(decode::<SavedSegment>).collect()
}

/// Every live definition with its rule resolved (references inlined), checked together
/// (`check_references`: unknown names, cycles of references or of dynamic tags).
fn resolve_all(defs: Vec<SavedSegment>) -> Result<Vec<LiveSegment>> {
    let rules = check_references(&defs).map_err(Error::Validation)?;
    Ok(defs.into_iter().zip(rules).map(|(def, (rule, deps))| LiveSegment { def, rule, deps }).collect())
}

/// The settings key a saved segment is stored under.
fn segment_key(name: &str) -> String {
    format!("{SAVED_SEGMENT_KEY_PREFIX}{}", guanxi_core::normalize::fold_text(name))
}

/// What a batch changed that saved segments can depend on, customer by customer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Touch {
    /// Customers whose record changed (any field may have): created, updated, deleted.
    records: BTreeSet<CustomerId>,
    /// Customers whose tags changed, with the tags.
    tagged: BTreeMap<CustomerId, BTreeSet<String>>,
    /// Customers with new events, by name.
    events: BTreeMap<CustomerId, BTreeSet<String>>,
    /// Customers whose interactions changed.
    interactions: BTreeSet<CustomerId>,
    /// A tag changed group.
    regrouped: bool,
    /// Events were purged.
    purged: bool,
}

/// Which customers of a saved segment to re-evaluate.
enum Affected {
    Nobody,
    Some(Vec<CustomerId>),
    Everyone,
}

impl Touch {
    pub(crate) fn of(changes: &Changes) -> Touch {
        let mut t = Touch::default();
        t.records.extend(changes.customers.iter().map(|w| w.record().id));
        for l in &changes.tag_links {
            t.tagged.entry(l.customer).or_default().insert(l.tag.clone());
        }
        for e in &changes.events {
            t.events.entry(e.customer_id).or_default().insert(e.name.clone());
        }
        t.interactions.extend(changes.interactions.iter().map(|i| i.customer_id));
        t.interactions.extend(changes.interaction_moves.iter().flat_map(|m| [m.from, m.to]));
        // A moved event's name is not in the batch: both customers are re-evaluated whole.
        t.records.extend(changes.event_moves.iter().flat_map(|m| [m.from, m.to]));
        t.regrouped = changes.tags.iter().any(|w| matches!(w, TagWrite::Put(_)));
        t.purged = changes.purge_events_before.is_some();
        t
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.tagged.is_empty()
            && self.events.is_empty()
            && self.interactions.is_empty()
            && !self.regrouped
            && !self.purged
    }

    fn affected(&self, deps: &SegmentDependencies) -> Affected {
        if (self.regrouped && deps.tag_groups) || (self.purged && !deps.event_names.is_empty()) {
            return Affected::Everyone;
        }
        let mut ids = self.records.clone();
        ids.extend(
            self.tagged.iter().filter(|(_, tags)| deps.tag_groups || !tags.is_disjoint(&deps.tags)).map(|(c, _)| *c),
        );
        ids.extend(self.events.iter().filter(|(_, names)| !names.is_disjoint(&deps.event_names)).map(|(c, _)| *c));
        if deps.interactions {
            ids.extend(self.interactions.iter().copied());
        }
        match ids.len() {
            0 => Affected::Nobody,
            n if n > WHOLE_ABOVE => Affected::Everyone,
            _ => Affected::Some(ids.into_iter().collect()),
        }
    }
}

/// A membership change found by a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    Enter(CustomerId, MembershipReason),
    Exit(CustomerId, MembershipReason),
}

/// What an evaluation changed, per segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reevaluated {
    /// Customers that entered, by segment name.
    pub entered: BTreeMap<String, u64>,
    /// Customers that left, by segment name.
    pub exited: BTreeMap<String, u64>,
}

impl Crm {
    /// The context `segments` are evaluated in at `at`: the store's zone, and the tag groups
    /// (read once, only when one of them tests a group).
    fn segment_context<'a>(
        &self,
        view: &dyn StoreReads,
        at: DateTime<Utc>,
        segments: impl IntoIterator<Item = &'a LiveSegment>,
    ) -> Result<SegmentContext> {
        let mut ctx = SegmentContext::at(at);
        ctx.offset = self.code_offset;
        if segments.into_iter().any(|s| s.deps.tag_groups) {
            ctx.tag_groups = view.tags()?.into_iter().filter_map(|t| t.group.map(|g| (t.name, g))).collect();
        }
        Ok(ctx)
    }

    /// Stages the moves that bring a whole saved segment's stored membership up to date;
    /// returns them.
    fn restage_whole(
        &self,
        tx: &mut WriteTx<'_>,
        view: &dyn StoreReads,
        s: &LiveSegment,
        ctx: &SegmentContext,
    ) -> Result<Vec<Move>> {
        let moves = self.diff_whole(view, s, ctx)?;
        stage_moves(tx, view, &s.def, &moves)?;
        Ok(moves)
    }

    /// The follow-up of a batch just applied to `view`: the saved segments it can change are
    /// re-evaluated for the customers it touched (all of them when it touched many, or
    /// changed something every member depends on), membership and dynamic tags written in a
    /// follow-up transaction in the same session. Returns the events to publish.
    pub(crate) fn follow_segments(
        &self,
        view: &dyn StoreView,
        actor: &Actor,
        at: DateTime<Utc>,
        touch: &Touch,
        depth: usize,
    ) -> Result<Vec<DomainEvent>> {
        if touch.is_empty() || depth > MAX_FOLLOW_DEPTH {
            return Ok(Vec::new());
        }
        let live = self.segment_cache.live(view)?;
        if live.is_empty() {
            return Ok(Vec::new());
        }
        let affected: Vec<(&LiveSegment, Affected)> =
            live.iter().map(|s| (s, touch.affected(&s.deps))).filter(|(_, a)| !matches!(a, Affected::Nobody)).collect();
        if affected.is_empty() {
            return Ok(Vec::new());
        }
        let ctx = self.segment_context(view, at, affected.iter().map(|(s, _)| *s))?;
        let mut tx = self.begin_follow(view, actor, at, depth + 1);
        for (s, affected) in affected {
            match affected {
                Affected::Nobody => {}
                Affected::Some(ids) => {
                    let moves = self.diff_customers(view, s, &ids, &ctx)?;
                    stage_moves(&mut tx, view, &s.def, &moves)?;
                }
                Affected::Everyone => {
                    self.restage_whole(&mut tx, view, s, &ctx)?;
                }
            }
        }
        Ok(tx.apply_in_session()?.1)
    }

    /// The moves that bring the stored membership of `ids` up to date: the store evaluates
    /// the rule for just these customers (inside its query on SQLite and PostgreSQL, off the
    /// indexes), so a customer's long history is not read.
    fn diff_customers(
        &self,
        view: &dyn StoreReads,
        s: &LiveSegment,
        ids: &[CustomerId],
        ctx: &SegmentContext,
    ) -> Result<Vec<Move>> {
        let only = CustomerFilter::default().ids(ids.iter().copied());
        let holders: BTreeSet<CustomerId> =
            walk_pages(|p| view.segment_members(&only, &s.rule, ctx, p))?.into_iter().map(|c| c.id).collect();
        let open: BTreeSet<CustomerId> =
            view.open_memberships(&s.def.name, ids)?.into_iter().map(|m| m.customer_id).collect();
        let mut moves = Vec::new();
        for id in ids {
            let holds = holders.contains(id);
            // Whether a customer the rule leaves out is live matters only for an include or an exit.
            let live = holds
                || ((s.def.includes.contains(id) || open.contains(id))
                    && view.customer(*id)?.is_some_and(|c| !c.is_deleted()));
            match (s.def.membership_for(*id, holds, live), open.contains(id)) {
                (Some(reason), false) => moves.push(Move::Enter(*id, reason)),
                (None, true) => moves.push(Move::Exit(*id, s.def.exit_reason(*id, live))),
                _ => {}
            }
        }
        Ok(moves)
    }

    /// The moves that bring a whole saved segment's stored membership up to date: the
    /// store's members of the rule (one query), the live includes, less the excludes,
    /// against the open stays.
    fn diff_whole(&self, view: &dyn StoreReads, s: &LiveSegment, ctx: &SegmentContext) -> Result<Vec<Move>> {
        let mut desired: BTreeMap<CustomerId, MembershipReason> = BTreeMap::new();
        let everyone = CustomerFilter::default();
        let mut page = PageRequest::first(1_000);
        loop {
            let p = view.segment_members(&everyone, &s.rule, ctx, &page)?;
            for c in p.items {
                if let Some(r) = s.def.membership_for(c.id, true, true) {
                    desired.insert(c.id, r);
                }
            }
            match p.next {
                Some(next) => page = PageRequest::after(next, 1_000),
                None => break,
            }
        }
        for id in &s.def.includes {
            if !desired.contains_key(id) && view.customer(*id)?.is_some_and(|c| !c.is_deleted()) {
                desired.extend(s.def.membership_for(*id, false, true).map(|r| (*id, r)));
            }
        }
        let query = MembershipQuery { segment: s.def.name.clone(), customer: None, current_only: true };
        let open: BTreeSet<CustomerId> =
            walk_pages(|p| view.segment_memberships(&query, p))?.into_iter().map(|m| m.customer_id).collect();
        let mut moves: Vec<Move> =
            desired.iter().filter(|(id, _)| !open.contains(id)).map(|(id, r)| Move::Enter(*id, *r)).collect();
        for id in open.iter().filter(|id| !desired.contains_key(id)) {
            let live = view.customer(*id)?.is_some_and(|c| !c.is_deleted());
            moves.push(Move::Exit(*id, s.def.exit_reason(*id, live)));
        }
        Ok(moves)
    }

    /// `segment` with its `segment:<name>` references replaced by the saved segments' rules
    /// (as cached; a name not saved is a validation error on `expression`).
    pub(crate) fn resolve_references(&self, segment: &Segment) -> Result<Segment> {
        let live = self.segment_cache.live(&*self.store)?;
        let lookup = |name: &str| live.iter().find(|s| s.def.name == name).map(|s| s.rule.clone());
        segment.resolve(&lookup).map_err(Error::Validation)
    }

    /// Every stored definition, deleted ones included.
    fn saved_definitions(&self, view: &dyn StoreReads) -> Result<Vec<(Setting, SavedSegment)>> {
        let stored = view.settings_under(SAVED_SEGMENT_KEY_PREFIX)?;
        let defs = decode_all(&stored)?;
        Ok(stored.into_iter().zip(defs).collect())
    }
}

/// Stages membership moves (stays, log entries, events) and the dynamic tag's links.
fn stage_moves(tx: &mut WriteTx<'_>, view: &dyn StoreReads, def: &SavedSegment, moves: &[Move]) -> Result<()> {
    let at = tx.at();
    for m in moves {
        let (customer, change, event) = match *m {
            Move::Enter(customer, reason) => {
                let stay = SegmentMembership {
                    id: tx.new_id(),
                    segment: def.name.clone(),
                    customer_id: customer,
                    entered_at: at,
                    entered_because: reason,
                    exited_at: None,
                    exited_because: None,
                };
                tx.attach(|c| c.memberships.push(MembershipChange::Enter(stay)));
                let change = FieldChange::new(
                    "members",
                    None,
                    Some(serde_json::json!({ "customer": customer, "because": reason })),
                );
                (customer, change, DomainEvent::SegmentEntered { segment: def.name.clone(), customer, reason })
            }
            Move::Exit(customer, reason) => {
                let exit = MembershipChange::Exit { segment: def.name.clone(), customer, at, reason };
                tx.attach(|c| c.memberships.push(exit));
                let change = FieldChange::new(
                    "members",
                    Some(serde_json::json!({ "customer": customer, "because": reason })),
                    None,
                );
                (customer, change, DomainEvent::SegmentExited { segment: def.name.clone(), customer, reason })
            }
        };
        tx.log(
            Entry::new(EntityKind::Segment, &def.name, ChangeAction::Update, vec![change]).of_customer(Some(customer)),
        );
        tx.queue(event);
        if let Some(tag) = &def.tag {
            let Some(c) = view.customer(customer)?.filter(|c| !c.is_deleted()) else { continue };
            let has = c.tags.contains(&tag.tag);
            match m {
                Move::Enter(..) if !has => tx.link_tag(customer, &tag.tag, true)?,
                Move::Exit(..) if has && !tag.sticky => tx.link_tag(customer, &tag.tag, false)?,
                _ => {}
            }
        }
    }
    Ok(())
}

impl Segments<'_> {
    /// Saves a segment under its name (new, or replacing the one saved under it), checked —
    /// every bad field named; `segment:<name>` references must name saved segments and form
    /// no cycle, nor may dynamic tags feed back into the segments that set them — and
    /// evaluated at once: its membership (and every segment referring to it) is brought up to
    /// date in the same transaction, the dynamic tag following. From then on every write
    /// that can change it re-evaluates the customers it touched.
    ///
    /// Needs the right to configure segments (and tags, for a dynamic tag); a segment on a
    /// custom field the actor's field rules mask is refused.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::marketing::{SavedSegment, Segment};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲").tag("VIP"))?;
    /// let vip = SavedSegment::new("vip", Segment::parse("tag:VIP")?).with_tag("重点", false);
    /// crm.marketing().segments().save(&alice, vip)?;
    /// assert_eq!(crm.marketing().segments().current(&alice, "vip", PageRequest::first(10))?.items.len(), 1);
    /// assert!(crm.customers().get(&alice, c.id)?.tags.contains("重点"));
    /// crm.tags().remove(&alice, c.id, "VIP")?; // leaves at once, and the dynamic tag goes
    /// assert!(!crm.customers().get(&alice, c.id)?.tags.contains("重点"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, actor: &Actor, segment: SavedSegment) -> Result<SavedSegment> {
        let allowed = self.crm.authorize(actor, Action::Configure, EntityKind::Segment)?;
        if segment.tag.is_some() {
            self.crm.authorize(actor, Action::Configure, EntityKind::Tag)?;
        }
        let mut segment = segment.validate().map_err(Error::Validation)?;
        segment.deleted_at = None;
        let reader = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        let mut saved = None;
        let mut raised = Vec::new();
        let at = self.crm.clock.now();
        self.crm.store.write_session(&mut |view| {
            let all = self.crm.saved_definitions(view)?;
            let stored = all.iter().find(|(_, d)| d.name == segment.name).map(|(s, d)| (s.clone(), d.clone()));
            let mut live: Vec<SavedSegment> =
                all.into_iter().map(|(_, d)| d).filter(|d| d.deleted_at.is_none() && d.name != segment.name).collect();
            if live.len() >= MAX_SAVED_SEGMENTS {
                let reason = guanxi_core::ValidationReason::TooLarge {
                    max: MAX_SAVED_SEGMENTS as u64,
                    unit: "saved segments".into(),
                };
                return Err(Error::invalid("name", reason));
            }
            live.push(segment.clone());
            let resolved = resolve_all(live)?;
            let this = resolved
                .iter()
                .find(|s| s.def.name == segment.name)
                .ok_or_else(|| Error::InvalidState("saved segment vanished".into()))?;
            self.refuse_masked(&reader, &this.rule)?;
            let mut tx = self.crm.begin_in(view, &allowed, actor, at);
            let key = segment_key(&segment.name);
            let before = stored.as_ref().map(|(_, d)| to_json(d));
            let action = if stored.as_ref().is_some_and(|(_, d)| d.deleted_at.is_none()) {
                ChangeAction::Update
            } else {
                ChangeAction::Create
            };
            let diff = guanxi_core::changelog::diff_json(
                &before.unwrap_or(serde_json::Value::Null),
                &to_json(&segment),
                &[],
                &[],
            );
            let entry = Entry::new(EntityKind::Segment, &segment.name, action, diff);
            let event = DomainEvent::SegmentSaved { segment: segment.name.clone(), deleted: false };
            tx.put_setting(key, stored.map(|(s, _)| s), &segment, [entry], [event])?;
            let (_, mut events) = tx.apply_in_session()?;
            // This segment and every one referring to it, evaluated whole.
            let changed: Vec<&LiveSegment> = resolved
                .iter()
                .filter(|s| s.def.name == segment.name || refers_to(&s.def, &segment.name, &resolved))
                .collect();
            let ctx = self.crm.segment_context(view, at, changed.iter().copied())?;
            let mut follow = self.crm.begin_follow(view, actor, at, 1);
            for s in changed {
                self.crm.restage_whole(&mut follow, view, s, &ctx)?;
            }
            events.extend(follow.apply_in_session()?.1);
            raised = events;
            saved = Some(segment.clone());
            Ok(())
        })?;
        self.crm.publish(actor, at, std::mem::take(&mut raised));
        saved.ok_or_else(|| Error::InvalidState("the segment was not saved".into()))
    }

    /// A saved segment by name (deleted ones are not found).
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::marketing::{SavedSegment, Segment};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.marketing().segments().save(&alice, SavedSegment::new("vip", Segment::parse("tag:VIP")?))?;
    /// assert_eq!(crm.marketing().segments().get(&alice, "vip")?.expression.to_string(), "tag:VIP");
    /// assert!(crm.marketing().segments().get(&alice, "nope").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, actor: &Actor, name: &str) -> Result<SavedSegment> {
        self.crm.authorize(actor, Action::Read, EntityKind::Segment)?;
        self.live_definition(name)
    }

    /// Every saved segment, by name.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::marketing::{SavedSegment, Segment};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.marketing().segments().save(&alice, SavedSegment::new("vip", Segment::parse("tag:VIP")?))?;
    /// assert_eq!(crm.marketing().segments().list(&alice)?.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn list(&self, actor: &Actor) -> Result<Vec<SavedSegment>> {
        self.crm.authorize(actor, Action::Read, EntityKind::Segment)?;
        let defs = self.crm.saved_definitions(&*self.crm.store)?;
        Ok(defs.into_iter().map(|(_, d)| d).filter(|d| d.deleted_at.is_none()).collect())
    }

    /// Deletes a saved segment: every member leaves (`segment_deleted`, dynamic tags removed
    /// unless sticky); its history stays readable. A segment another one refers to is
    /// refused, naming it.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::marketing::{SavedSegment, Segment};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲").tag("VIP"))?;
    /// crm.marketing().segments().save(&alice, SavedSegment::new("vip", Segment::parse("tag:VIP")?))?;
    /// crm.marketing().segments().delete(&alice, "vip")?;
    /// assert!(crm.marketing().segments().list(&alice)?.is_empty());
    /// let history = crm.marketing().segments().history(&alice, "vip", None, PageRequest::first(10))?;
    /// assert!(history.items[0].exited_at.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn delete(&self, actor: &Actor, name: &str) -> Result<()> {
        let allowed = self.crm.authorize(actor, Action::Configure, EntityKind::Segment)?;
        let at = self.crm.clock.now();
        let mut raised = Vec::new();
        self.crm.store.write_session(&mut |view| {
            let all = self.crm.saved_definitions(view)?;
            let Some((stored, def)) = all.iter().find(|(_, d)| d.name == name && d.deleted_at.is_none()).cloned()
            else {
                return Err(Error::not_found(EntityKind::Segment, name));
            };
            if let Some((_, user)) =
                all.iter().find(|(_, d)| d.deleted_at.is_none() && d.expression.referenced_segments().contains(name))
            {
                let detail = format!("segment:{name} is used by the saved segment {}", user.name);
                return Err(Error::invalid("name", guanxi_core::ValidationReason::Invalid { detail }));
            }
            let mut tx = self.crm.begin_in(view, &allowed, actor, at);
            let gone = SavedSegment { deleted_at: Some(at), ..def.clone() };
            let entry = Entry::new(EntityKind::Segment, name, ChangeAction::Delete, Vec::new());
            let event = DomainEvent::SegmentSaved { segment: name.to_owned(), deleted: true };
            tx.put_setting(stored.key.clone(), Some(stored), &gone, [entry], [event])?;
            let query = MembershipQuery { segment: name.to_owned(), customer: None, current_only: true };
            let moves: Vec<Move> = walk_pages(|p| view.segment_memberships(&query, p))?
                .into_iter()
                .map(|m| Move::Exit(m.customer_id, MembershipReason::SegmentDeleted))
                .collect();
            stage_moves(&mut tx, view, &def, &moves)?;
            raised = tx.apply_in_session()?.1;
            Ok(())
        })?;
        self.crm.publish(actor, at, std::mem::take(&mut raised));
        Ok(())
    }

    /// Keeps customers in a saved segment whatever its rule says (taking them off its
    /// excludes); they enter at once. Each must be one the actor may read.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::marketing::{MembershipReason, SavedSegment, Segment};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// crm.marketing().segments().save(&alice, SavedSegment::new("vip", Segment::parse("tag:VIP")?))?;
    /// crm.marketing().segments().include(&alice, "vip", &[c.id])?;
    /// let current = crm.marketing().segments().current(&alice, "vip", PageRequest::first(10))?;
    /// assert_eq!(current.items[0].entered_because, MembershipReason::Included);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn include(&self, actor: &Actor, name: &str, customers: &[CustomerId]) -> Result<SavedSegment> {
        self.manual(actor, name, customers, |d, id| {
            d.excludes.remove(&id);
            d.includes.insert(id);
        })
    }

    /// Keeps customers out of a saved segment whatever its rule says (taking them off its
    /// includes); members among them leave at once (`excluded`).
    pub fn exclude(&self, actor: &Actor, name: &str, customers: &[CustomerId]) -> Result<SavedSegment> {
        self.manual(actor, name, customers, |d, id| {
            d.includes.remove(&id);
            d.excludes.insert(id);
        })
    }

    /// Takes customers off a saved segment's includes and excludes: its rule decides for them
    /// again.
    pub fn reset_manual(&self, actor: &Actor, name: &str, customers: &[CustomerId]) -> Result<SavedSegment> {
        self.manual(actor, name, customers, |d, id| {
            d.includes.remove(&id);
            d.excludes.remove(&id);
        })
    }

    fn manual(
        &self,
        actor: &Actor,
        name: &str,
        customers: &[CustomerId],
        change: impl Fn(&mut SavedSegment, CustomerId),
    ) -> Result<SavedSegment> {
        let reader = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        for id in customers {
            let c = self.crm.store.customer(*id)?.ok_or_else(|| Error::not_found(EntityKind::Customer, *id))?;
            reader.check_customer(actor, &c)?;
        }
        let mut def = self.live_definition(name)?;
        for id in customers {
            change(&mut def, *id);
        }
        self.save(actor, def)
    }

    /// Re-evaluates every saved segment that depends on the date — a window (`within = 30d`),
    /// a relative date (`30d ago`), any count — at the clock's now: what a scheduler calls
    /// (daily, hourly) so time moves customers in and out. Returns how many entered and left,
    /// by segment.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::marketing::{SavedSegment, Segment};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.marketing().segments().save(&alice, SavedSegment::new("new", Segment::parse("created_at >= 7d ago")?))?;
    /// let done = crm.marketing().segments().reevaluate_due(&alice)?;
    /// assert!(done.entered.is_empty() && done.exited.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reevaluate_due(&self, actor: &Actor) -> Result<Reevaluated> {
        self.reevaluate_where(actor, |s| s.deps.windows)
    }

    /// Re-evaluates one saved segment whole (after a change no write announces, such as a
    /// store restored from elsewhere).
    pub fn reevaluate(&self, actor: &Actor, name: &str) -> Result<Reevaluated> {
        self.live_definition(name)?;
        self.reevaluate_where(actor, |s| s.def.name == name)
    }

    fn reevaluate_where(&self, actor: &Actor, which: impl Fn(&LiveSegment) -> bool) -> Result<Reevaluated> {
        self.crm.authorize(actor, Action::Configure, EntityKind::Segment)?;
        let at = self.crm.clock.now();
        let mut done = Reevaluated::default();
        let mut raised = Vec::new();
        self.crm.store.write_session(&mut |view| {
            done = Reevaluated::default();
            let live = self.crm.segment_cache.live(view)?;
            let due: Vec<&LiveSegment> = live.iter().filter(|s| which(s)).collect();
            let ctx = self.crm.segment_context(view, at, due.iter().copied())?;
            let mut tx = self.crm.begin_follow(view, actor, at, 1);
            for s in due {
                for m in self.crm.restage_whole(&mut tx, view, s, &ctx)? {
                    let bucket = if matches!(m, Move::Enter(..)) { &mut done.entered } else { &mut done.exited };
                    *bucket.entry(s.def.name.clone()).or_default() += 1;
                }
            }
            raised = tx.apply_in_session()?.1;
            Ok(())
        })?;
        self.crm.publish(actor, at, std::mem::take(&mut raised));
        Ok(done)
    }

    /// One page of a saved segment's current members' stays (when and why each entered), in
    /// the order they entered, holding only customers the actor may read — a page may hold
    /// fewer than `page.limit`; follow `next` to the end.
    pub fn current(&self, actor: &Actor, name: &str, page: PageRequest) -> Result<Page<SegmentMembership>> {
        self.stays(actor, MembershipQuery { segment: name.to_owned(), customer: None, current_only: true }, page)
    }

    /// One page of a saved segment's membership history — every stay, open or closed, of
    /// every customer or of one — in the order they began, holding only customers the actor
    /// may read. A deleted segment's history stays readable.
    pub fn history(
        &self,
        actor: &Actor,
        name: &str,
        customer: Option<CustomerId>,
        page: PageRequest,
    ) -> Result<Page<SegmentMembership>> {
        self.stays(actor, MembershipQuery { segment: name.to_owned(), customer, current_only: false }, page)
    }

    fn stays(&self, actor: &Actor, query: MembershipQuery, page: PageRequest) -> Result<Page<SegmentMembership>> {
        self.crm.authorize(actor, Action::Read, EntityKind::Segment)?;
        let reader = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        // A deleted segment's history stays readable.
        let def = self.stored_definition(&query.segment)?;
        // Membership tells what the rule tests: refused when it tests a field the actor may not see.
        let rule = self.crm.resolve_references(&def.expression).unwrap_or(def.expression);
        self.refuse_masked(&reader, &rule)?;
        let p = self.crm.store.segment_memberships(&query, &page)?;
        let mut items = Vec::with_capacity(p.items.len());
        for m in p.items {
            if let Some(c) = self.crm.store.customer(m.customer_id)?
                && reader.check_customer(actor, &c).is_ok()
            {
                items.push(m);
            }
        }
        Ok(Page { items, next: p.next })
    }

    /// A stored definition by name, a deleted one's tombstone included.
    fn stored_definition(&self, name: &str) -> Result<SavedSegment> {
        let stored = self.crm.store.setting(&segment_key(name))?;
        decode(&stored.ok_or_else(|| Error::not_found(EntityKind::Segment, name))?)
    }

    fn live_definition(&self, name: &str) -> Result<SavedSegment> {
        Some(self.stored_definition(name)?)
            .filter(|d| d.deleted_at.is_none())
            .ok_or_else(|| Error::not_found(EntityKind::Segment, name))
    }
}

/// Whether `def`'s rule refers to `name`, directly or through other saved segments.
fn refers_to(def: &SavedSegment, name: &str, all: &[LiveSegment]) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = def.expression.referenced_segments().into_iter().map(str::to_owned).collect();
    while let Some(n) = todo.pop() {
        if n == name {
            return true;
        }
        if seen.insert(n.clone())
            && let Some(s) = all.iter().find(|s| s.def.name == n)
        {
            todo.extend(s.def.expression.referenced_segments().into_iter().map(str::to_owned));
        }
    }
    false
}
