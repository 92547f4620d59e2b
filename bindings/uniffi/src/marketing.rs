//! Marketing for Kotlin and Swift: behaviour events as records, segments by their text form;
//! each method converts around one facade call.

use std::collections::HashMap;
use std::sync::Arc;

use guanxi::marketing::{
    CmpOp, CountSource, EventCount, EventRange, Explained, Literal, Predicate, PropertyFilter, Segment, SegmentField,
    SegmentMembership,
};
use guanxi::{CustomValue, Customer, CustomerId};

use crate::{CustomerPage, DateTime, Day, Decimal, PageRequest, Result, Uuid, custom_in, handle, next_of};

/// A behaviour event: what a customer did, when, with typed properties. `id` is null on input
/// (given when recorded); one `externalId` is recorded once however often it is sent.
#[derive(Debug, Clone, uniffi::Record)]
pub struct BehaviourEvent {
    #[uniffi(default = None)]
    pub id: Option<Uuid>,
    pub customer_id: Uuid,
    pub name: String,
    pub at: DateTime,
    /// Which of the customer's contacts did it, when known.
    #[uniffi(default = None)]
    pub contact_id: Option<Uuid>,
    #[uniffi(default)]
    pub properties: HashMap<String, CustomValue>,
    #[uniffi(default = None)]
    pub source: Option<String>,
    #[uniffi(default = None)]
    pub external_id: Option<String>,
}

impl From<guanxi::marketing::BehaviourEvent> for BehaviourEvent {
    fn from(e: guanxi::marketing::BehaviourEvent) -> Self {
        BehaviourEvent {
            id: Some(e.id.0),
            customer_id: e.customer_id.0,
            contact_id: e.contact_id.map(|c| c.0),
            name: e.name,
            at: e.at,
            properties: e.properties.into_iter().collect(),
            source: e.source,
            external_id: e.external_id,
        }
    }
}

impl BehaviourEvent {
    fn into_core(self) -> guanxi::marketing::BehaviourEvent {
        let mut e = guanxi::marketing::BehaviourEvent::new(CustomerId(self.customer_id), self.name, self.at);
        e.contact_id = self.contact_id.map(guanxi::ContactId);
        e.properties = custom_in(self.properties);
        e.source = self.source;
        e.external_id = self.external_id;
        e
    }
}

/// The marketing settings: events older than `eventRetentionDays` (1–36,500; null keeps them
/// for ever) are refused when recorded and removed by `events().purge()`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct MarketingSettings {
    #[uniffi(default = None)]
    pub event_retention_days: Option<u32>,
}

/// What `events().purge()` did: the events before `before` were removed (null: no retention
/// is set, nothing was).
#[derive(Debug, Clone, uniffi::Record)]
pub struct PurgedEvents {
    pub before: Option<DateTime>,
    pub purged: u64,
}

/// What `events().record` did: the ids written, and the external ids left out because an
/// event already carried them.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RecordedEvents {
    pub recorded: Vec<Uuid>,
    pub duplicates: Vec<String>,
}

/// One page of a customer's events, in the order they happened.
#[derive(Debug, Clone, uniffi::Record)]
pub struct EventPage {
    /// The events.
    pub items: Vec<BehaviourEvent>,
    /// Pass as `PageRequest.after` for the next page; null on the last.
    pub next: Option<String>,
}

/// A saved segment: its rule as text (`segment:<name>` refers to another saved one), an
/// optional dynamic tag (added on entry, removed on exit unless `sticky`), and the customers
/// included and excluded by hand.
#[derive(Debug, Clone, uniffi::Record)]
pub struct SavedSegment {
    pub name: String,
    pub expression: String,
    #[uniffi(default = None)]
    pub description: Option<String>,
    #[uniffi(default = None)]
    pub tag: Option<String>,
    #[uniffi(default = false)]
    pub sticky: bool,
    #[uniffi(default = [])]
    pub includes: Vec<Uuid>,
    #[uniffi(default = [])]
    pub excludes: Vec<Uuid>,
}

impl From<guanxi::marketing::SavedSegment> for SavedSegment {
    fn from(s: guanxi::marketing::SavedSegment) -> Self {
        SavedSegment {
            name: s.name,
            expression: s.expression.to_string(),
            description: s.description,
            sticky: s.tag.as_ref().is_some_and(|t| t.sticky),
            tag: s.tag.map(|t| t.tag),
            includes: s.includes.into_iter().map(|c| c.0).collect(),
            excludes: s.excludes.into_iter().map(|c| c.0).collect(),
        }
    }
}

impl SavedSegment {
    fn into_core(self) -> Result<guanxi::marketing::SavedSegment> {
        let mut s = guanxi::marketing::SavedSegment::new(self.name, segment(&self.expression)?);
        s.description = self.description;
        s.tag = self.tag.map(|tag| guanxi::marketing::DynamicTag { tag, sticky: self.sticky });
        s.includes = self.includes.into_iter().map(CustomerId).collect();
        s.excludes = self.excludes.into_iter().map(CustomerId).collect();
        Ok(s)
    }
}

/// How many customers entered and left, by saved segment name.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Reevaluated {
    pub entered: HashMap<String, u64>,
    pub exited: HashMap<String, u64>,
}

/// One page of stays in a saved segment (when and why each customer entered, and left).
#[derive(Debug, Clone, uniffi::Record)]
pub struct MembershipPage {
    /// The stays.
    pub items: Vec<SegmentMembership>,
    /// Pass as `PageRequest.after` for the next page; null on the last.
    pub next: Option<String>,
}

/// One node of a segment with its value for a customer, in pre-order: `depth` 0 is the whole
/// segment, its parts follow at depth 1, theirs at 2. `count` is what a `count(...)` found.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ExplainedNode {
    pub depth: u32,
    pub node: String,
    pub holds: bool,
    pub count: Option<u64>,
}

fn flatten(e: Explained, depth: u32, out: &mut Vec<ExplainedNode>) {
    out.push(ExplainedNode { depth, node: e.node, holds: e.holds, count: e.count });
    for p in e.parts {
        flatten(p, depth + 1, out);
    }
}

/// One value a segment compares with.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SegmentScalar {
    /// Text (also a vocabulary value, such as `lost` or `流失`).
    Text { value: String },
    /// An exact number.
    Number { value: Decimal },
    /// A calendar day.
    Day { value: Day },
    /// So many days before today (`30d ago`).
    DaysAgo { days: u32 },
    /// True or false.
    Bool { value: bool },
}

/// What a field or property is compared with: one value, or any of several (for `CmpOp.IN`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SegmentValue {
    One { value: SegmentScalar },
    AnyOf { values: Vec<SegmentScalar> },
}

/// A test of an event's property inside a count (`url ~ "ielts"`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PropertyTest {
    pub key: String,
    pub op: CmpOp,
    pub value: SegmentValue,
}

/// What a count counts: events of a name, or interactions (of a kind, or any).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum CountOf {
    Event { name: String },
    Interaction { kind: Option<guanxi::InteractionKind> },
}

/// One node of a segment's tree, in pre-order: `And` and `Or` are followed by their `parts`
/// nodes (each a whole subtree), `Not` by one; the others are tests. Build a list and pass it
/// to `segments().toText` for the text every call takes; `segments().parse` gives a text's.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SegmentNode {
    And {
        parts: u32,
    },
    Or {
        parts: u32,
    },
    Not,
    /// `tag:<name>`.
    Tag {
        name: String,
    },
    /// `tag_group:<name>`.
    TagGroup {
        name: String,
    },
    /// `region:<province, city or macro-area>`.
    Region {
        name: String,
    },
    /// `segment:<name>`: a saved segment's rule.
    Saved {
        name: String,
    },
    /// A field (`status`, `level`, `created_at`, `custom.<key>`, …) compared with a value.
    Field {
        field: String,
        op: CmpOp,
        value: SegmentValue,
    },
    /// A count of events or interactions, filtered and windowed, compared with `n`.
    Count {
        of: CountOf,
        filters: Vec<PropertyTest>,
        within_days: Option<u32>,
        op: CmpOp,
        n: u64,
    },
}

fn scalar_in(v: SegmentScalar) -> Literal {
    match v {
        SegmentScalar::Text { value } => Literal::Text(value),
        SegmentScalar::Number { value } => Literal::Number(value.normalize()),
        SegmentScalar::Day { value } => Literal::Date(value),
        SegmentScalar::DaysAgo { days } => Literal::DaysAgo(days),
        SegmentScalar::Bool { value } => Literal::Bool(value),
    }
}

fn value_in(v: SegmentValue) -> Literal {
    match v {
        SegmentValue::One { value } => scalar_in(value),
        SegmentValue::AnyOf { values } => Literal::List(values.into_iter().map(scalar_in).collect()),
    }
}

fn scalar_out(v: Literal, at: &str) -> Result<SegmentScalar> {
    Ok(match v {
        Literal::Text(value) => SegmentScalar::Text { value },
        Literal::Number(value) => SegmentScalar::Number { value },
        Literal::Date(value) => SegmentScalar::Day { value },
        Literal::DaysAgo(days) => SegmentScalar::DaysAgo { days },
        Literal::Bool(value) => SegmentScalar::Bool { value },
        Literal::List(_) => return Err(node_error(at, "a list inside a list has no node form")),
    })
}

fn value_out(v: Literal, at: &str) -> Result<SegmentValue> {
    Ok(match v {
        Literal::List(items) => {
            SegmentValue::AnyOf { values: items.into_iter().map(|i| scalar_out(i, at)).collect::<Result<_>>()? }
        }
        one => SegmentValue::One { value: scalar_out(one, at)? },
    })
}

fn node_error(at: &str, detail: &str) -> crate::CrmError {
    guanxi::Error::invalid(at, guanxi::ValidationReason::Invalid { detail: detail.into() }).into()
}

/// The segment a pre-order node list describes, checked (bounds, vocabulary values, every
/// node used): a validation error on `segment[i]` names the node that does not fit.
fn segment_of_nodes(nodes: Vec<SegmentNode>) -> Result<Segment> {
    if nodes.len() > 4 * guanxi::marketing::MAX_SEGMENT_PREDICATES {
        let max = 4 * guanxi::marketing::MAX_SEGMENT_PREDICATES as u64;
        return Err(guanxi::Error::invalid(
            "segment",
            guanxi::ValidationReason::TooLarge { max, unit: "nodes".into() },
        )
        .into());
    }
    let mut it = nodes.into_iter().enumerate();
    let s = subtree(&mut it, 0)?;
    if let Some((i, _)) = it.next() {
        return Err(node_error(&format!("segment[{i}]"), "comes after the whole segment ended"));
    }
    // Text and back: vocabulary values canonicalized and checked as the parser checks them.
    let s = segment(&s.to_string())?;
    Ok(s)
}

fn subtree(it: &mut impl Iterator<Item = (usize, SegmentNode)>, depth: usize) -> Result<Segment> {
    let Some((i, node)) = it.next() else {
        return Err(node_error("segment", "ends before every and / or / not has its parts"));
    };
    let at = format!("segment[{i}]");
    if depth > 64 {
        return Err(node_error(&at, "is nested more than 64 levels deep"));
    }
    Ok(match node {
        SegmentNode::And { parts: n } | SegmentNode::Or { parts: n } if n == 0 => {
            return Err(node_error(&at, "has no parts"));
        }
        SegmentNode::And { parts: n } => Segment::And((0..n).map(|_| subtree(it, depth + 1)).collect::<Result<_>>()?),
        SegmentNode::Or { parts: n } => Segment::Or((0..n).map(|_| subtree(it, depth + 1)).collect::<Result<_>>()?),
        SegmentNode::Not => Segment::Not(Box::new(subtree(it, depth + 1)?)),
        SegmentNode::Tag { name } => Segment::Is(Predicate::Tag(name)),
        SegmentNode::TagGroup { name } => Segment::Is(Predicate::TagGroup(name)),
        SegmentNode::Region { name } => Segment::Is(Predicate::Region(name)),
        SegmentNode::Saved { name } => Segment::Is(Predicate::Segment(name)),
        SegmentNode::Field { field, op, value } => {
            let Some(field) = SegmentField::from_name(&field) else {
                let allowed = SegmentField::names().join(", ");
                return Err(node_error(&format!("{at}.field"), &format!("'{field}' is none of {allowed}")));
            };
            Segment::Is(Predicate::Field { field, op, value: value_in(value) })
        }
        SegmentNode::Count { of, filters, within_days, op, n } => {
            let source = match of {
                CountOf::Event { name } => CountSource::Event(name),
                CountOf::Interaction { kind } => CountSource::Interaction(kind),
            };
            let filters = filters
                .into_iter()
                .map(|f| PropertyFilter { key: f.key, op: f.op, value: value_in(f.value) })
                .collect();
            Segment::Is(Predicate::Count(EventCount { source, filters, within_days, op, n }))
        }
    })
}

/// A segment as its pre-order node list.
fn nodes_of(s: Segment, out: &mut Vec<SegmentNode>) -> Result<()> {
    let at = format!("segment[{}]", out.len());
    match s {
        Segment::And(parts) | Segment::Or(parts) if parts.is_empty() => {
            return Err(node_error(&at, "an and / or of no parts has no node form"));
        }
        Segment::And(parts) => {
            out.push(SegmentNode::And { parts: u32::try_from(parts.len()).unwrap_or(u32::MAX) });
            parts.into_iter().try_for_each(|p| nodes_of(p, out))?;
        }
        Segment::Or(parts) => {
            out.push(SegmentNode::Or { parts: u32::try_from(parts.len()).unwrap_or(u32::MAX) });
            parts.into_iter().try_for_each(|p| nodes_of(p, out))?;
        }
        Segment::Not(inner) => {
            out.push(SegmentNode::Not);
            nodes_of(*inner, out)?;
        }
        Segment::Is(p) => out.push(match p {
            Predicate::Tag(name) => SegmentNode::Tag { name },
            Predicate::TagGroup(name) => SegmentNode::TagGroup { name },
            Predicate::Region(name) => SegmentNode::Region { name },
            Predicate::Segment(name) => SegmentNode::Saved { name },
            Predicate::Field { field, op, value } => {
                SegmentNode::Field { field: field.to_string(), op, value: value_out(value, &at)? }
            }
            Predicate::Count(c) => SegmentNode::Count {
                of: match c.source {
                    CountSource::Event(name) => CountOf::Event { name },
                    CountSource::Interaction(kind) => CountOf::Interaction { kind },
                },
                filters: c
                    .filters
                    .into_iter()
                    .map(|f| Ok(PropertyTest { key: f.key, op: f.op, value: value_out(f.value, &at)? }))
                    .collect::<Result<_>>()?,
                within_days: c.within_days,
                op: c.op,
                n: c.n,
            },
        }),
    }
    Ok(())
}

/// A segment's text parsed, or a validation error on `segment` saying where it went wrong.
fn segment(text: &str) -> Result<Segment> {
    Segment::parse(text).map_err(|e| guanxi::Error::from(e).into())
}

handle! {
    /// `crm.marketing()`: behaviour events and segments.
    Marketing
}

handle! {
    /// `crm.marketing().events()`: record in bulk (idempotent by external id), list per customer.
    Events
}

handle! {
    /// `crm.marketing().segments()`: the customers an expression selects, and why.
    Segments
}

#[uniffi::export]
impl Marketing {
    /// Behaviour events.
    pub fn events(&self) -> Arc<Events> {
        Arc::new(Events { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// Segments.
    pub fn segments(&self) -> Arc<Segments> {
        Arc::new(Segments { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// The marketing settings.
    pub fn settings(&self) -> Result<MarketingSettings> {
        let s = self.inner.marketing().settings(&self.actor)?;
        Ok(MarketingSettings { event_retention_days: s.event_retention_days })
    }

    /// Replaces the marketing settings (checked); returns them.
    pub fn set_settings(&self, settings: MarketingSettings) -> Result<MarketingSettings> {
        let core = guanxi::marketing::MarketingSettings { event_retention_days: settings.event_retention_days };
        let s = self.inner.marketing().set_settings(&self.actor, core)?;
        Ok(MarketingSettings { event_retention_days: s.event_retention_days })
    }
}

#[uniffi::export]
impl Events {
    /// Records a batch, all or none: every bad field together (`events[2].name`); each
    /// customer must be one the user may update.
    pub fn record(&self, events: Vec<BehaviourEvent>) -> Result<RecordedEvents> {
        let batch = events.into_iter().map(BehaviourEvent::into_core).collect();
        let done = self.inner.marketing().events().record(&self.actor, batch)?;
        Ok(RecordedEvents { recorded: done.recorded.into_iter().map(|id| id.0).collect(), duplicates: done.duplicates })
    }

    /// Removes every event older than the retention (elevated, by a user who may delete
    /// every customer).
    pub fn purge(&self) -> Result<PurgedEvents> {
        let done = self.inner.marketing().events().purge(&self.actor)?;
        Ok(PurgedEvents { before: done.before, purged: done.purged })
    }

    /// One page of a customer's events at or after `since` and before `until` (each
    /// optional), in the order they happened.
    pub fn list(
        &self,
        customer: Uuid,
        since: Option<DateTime>,
        until: Option<DateTime>,
        page: PageRequest,
    ) -> Result<EventPage> {
        let range = EventRange { from: since, to: until };
        let p = self.inner.marketing().events().list(&self.actor, CustomerId(customer), &range, &page.into_core()?)?;
        let next = next_of(&p);
        Ok(EventPage { items: p.items.into_iter().map(Into::into).collect(), next })
    }
}

#[uniffi::export]
impl Segments {
    /// The customers in the segment (its text form) that the user may read.
    pub fn members(&self, segment_text: String) -> Result<Vec<Customer>> {
        Ok(self.inner.marketing().segments().members(&self.actor, &segment(&segment_text)?)?)
    }

    /// One page of the segment's members, in id order.
    pub fn members_page(&self, segment_text: String, page: PageRequest) -> Result<CustomerPage> {
        let s = segment(&segment_text)?;
        Ok(self.inner.marketing().segments().members_page(&self.actor, &s, page.into_core()?)?.into())
    }

    /// How many customers the user may read are in the segment.
    pub fn count(&self, segment_text: String) -> Result<u64> {
        Ok(self.inner.marketing().segments().count(&self.actor, &segment(&segment_text)?)?)
    }

    /// Saves a segment under its name (new, or replacing the one saved under it) and
    /// evaluates it; its stored membership then follows every write. Returns it as saved.
    pub fn save(&self, segment: SavedSegment) -> Result<SavedSegment> {
        Ok(self.inner.marketing().segments().save(&self.actor, segment.into_core()?)?.into())
    }

    /// A saved segment by name.
    pub fn get(&self, name: String) -> Result<SavedSegment> {
        Ok(self.inner.marketing().segments().get(&self.actor, &name)?.into())
    }

    /// Every saved segment, by name.
    pub fn list(&self) -> Result<Vec<SavedSegment>> {
        Ok(self.inner.marketing().segments().list(&self.actor)?.into_iter().map(Into::into).collect())
    }

    /// Deletes a saved segment (its members leave; its history stays).
    pub fn delete(&self, name: String) -> Result<()> {
        Ok(self.inner.marketing().segments().delete(&self.actor, &name)?)
    }

    /// Keeps these customers in the saved segment whatever its rule says.
    pub fn include(&self, name: String, customers: Vec<Uuid>) -> Result<SavedSegment> {
        let ids: Vec<CustomerId> = customers.into_iter().map(CustomerId).collect();
        Ok(self.inner.marketing().segments().include(&self.actor, &name, &ids)?.into())
    }

    /// Keeps these customers out of the saved segment whatever its rule says.
    pub fn exclude(&self, name: String, customers: Vec<Uuid>) -> Result<SavedSegment> {
        let ids: Vec<CustomerId> = customers.into_iter().map(CustomerId).collect();
        Ok(self.inner.marketing().segments().exclude(&self.actor, &name, &ids)?.into())
    }

    /// Takes these customers off the includes and excludes: the rule decides again.
    pub fn reset_manual(&self, name: String, customers: Vec<Uuid>) -> Result<SavedSegment> {
        let ids: Vec<CustomerId> = customers.into_iter().map(CustomerId).collect();
        Ok(self.inner.marketing().segments().reset_manual(&self.actor, &name, &ids)?.into())
    }

    /// Re-evaluates one saved segment whole.
    pub fn reevaluate(&self, name: String) -> Result<Reevaluated> {
        Ok(reevaluated(self.inner.marketing().segments().reevaluate(&self.actor, &name)?))
    }

    /// Re-evaluates every saved segment that depends on the date, at the CRM's now.
    pub fn reevaluate_due(&self) -> Result<Reevaluated> {
        Ok(reevaluated(self.inner.marketing().segments().reevaluate_due(&self.actor)?))
    }

    /// One page of the current members' stays the user may read (a page may hold fewer
    /// than the limit; follow `next`).
    pub fn current(&self, name: String, page: PageRequest) -> Result<MembershipPage> {
        let p = self.inner.marketing().segments().current(&self.actor, &name, page.into_core()?)?;
        let next = next_of(&p);
        Ok(MembershipPage { items: p.items, next })
    }

    /// One page of the membership history — every stay, of one customer when given — the
    /// user may read.
    pub fn history(&self, name: String, customer: Option<Uuid>, page: PageRequest) -> Result<MembershipPage> {
        let p = self.inner.marketing().segments().history(
            &self.actor,
            &name,
            customer.map(CustomerId),
            page.into_core()?,
        )?;
        let next = next_of(&p);
        Ok(MembershipPage { items: p.items, next })
    }

    /// A segment's tree as its pre-order node list (to inspect or change, then `toText`).
    pub fn parse(&self, segment_text: String) -> Result<Vec<SegmentNode>> {
        let mut out = Vec::new();
        nodes_of(segment(&segment_text)?, &mut out)?;
        Ok(out)
    }

    /// The normalized text of a segment given as a pre-order node list (checked: a
    /// validation error on `segment[i]` names a node that does not fit): what every call
    /// taking a segment's text takes.
    pub fn to_text(&self, nodes: Vec<SegmentNode>) -> Result<String> {
        Ok(segment_of_nodes(nodes)?.to_string())
    }

    /// Every node of the segment with its value for one customer, in pre-order.
    pub fn explain(&self, customer: Uuid, segment_text: String) -> Result<Vec<ExplainedNode>> {
        let e =
            self.inner.marketing().segments().explain(&self.actor, CustomerId(customer), &segment(&segment_text)?)?;
        let mut out = Vec::new();
        flatten(e, 0, &mut out);
        Ok(out)
    }
}

fn reevaluated(r: guanxi::Reevaluated) -> Reevaluated {
    Reevaluated { entered: r.entered.into_iter().collect(), exited: r.exited.into_iter().collect() }
}
