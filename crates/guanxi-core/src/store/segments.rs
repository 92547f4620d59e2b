//! A segment evaluated over a store by the reference evaluator: every customer the filter
//! admits is read with its events and interactions and tested with [`Segment::matches`]. The
//! memory store answers segments this way; the SQL backends compile the segment into their
//! query instead, and the conformance suite checks both give the same members.

use super::{CustomerFilter, CustomerStore, Page, PageRequest};
use crate::customer::Customer;
use crate::error::Result;
use crate::ids::CustomerId;
use crate::interaction::Interaction;
use crate::marketing::{BehaviourEvent, EventRange, Segment, SegmentContext, SegmentFacts};

/// Customers read per step of the walk.
const STEP: usize = 500;

/// One page of the customers matching `filter` that are in `segment`, in id order, found by
/// the reference evaluator.
///
/// ```
/// use guanxi_core::{prelude::*, CustomerFilter, MemoryStore, PageRequest};
/// use guanxi_core::marketing::{Segment, SegmentContext};
/// use guanxi_core::store::segment_members_by_reference;
/// let store = MemoryStore::new();
/// let ctx = SegmentContext::at(chrono::Utc::now());
/// let vip = Segment::parse("tag:VIP").unwrap();
/// let page = segment_members_by_reference(&store, &CustomerFilter::default(), &vip, &ctx, &PageRequest::first(10)).unwrap();
/// assert!(page.items.is_empty());
/// ```
pub fn segment_members_by_reference<S: CustomerStore + ?Sized>(
    store: &S,
    filter: &CustomerFilter,
    segment: &Segment,
    ctx: &SegmentContext,
    page: &PageRequest,
) -> Result<Page<Customer>> {
    page.check()?;
    let mut members = Vec::new();
    walk(store, filter, segment, ctx, page.after, &mut |c| {
        members.push(c);
        members.len() <= page.limit
    })?;
    Ok(Page::from_overfetch(members, page.limit, |c| c.id.0))
}

/// How many customers matching `filter` are in `segment`, by the reference evaluator.
pub fn count_segment_members_by_reference<S: CustomerStore + ?Sized>(
    store: &S,
    filter: &CustomerFilter,
    segment: &Segment,
    ctx: &SegmentContext,
) -> Result<u64> {
    let mut n = 0u64;
    walk(store, filter, segment, ctx, None, &mut |_| {
        n += 1;
        true
    })?;
    Ok(n)
}

/// What a segment reads of each customer beyond its record — its events, its interactions —
/// found once per evaluation.
///
/// ```
/// use guanxi_core::{prelude::*, CustomerId, MemoryStore};
/// use guanxi_core::marketing::Segment;
/// use guanxi_core::store::SegmentReads;
/// let reads = SegmentReads::of(&Segment::parse("tag:VIP").unwrap());
/// let (events, interactions) = reads.facts(&MemoryStore::new(), CustomerId(uuid::Uuid::nil())).unwrap();
/// assert!(events.is_empty() && interactions.is_empty()); // neither is read: the segment counts none
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SegmentReads {
    events: bool,
    interactions: bool,
}

impl SegmentReads {
    /// What `segment` reads.
    pub fn of(segment: &Segment) -> SegmentReads {
        SegmentReads { events: !segment.event_names().is_empty(), interactions: segment.counts_interactions() }
    }

    /// A customer's events (every one, a page at a time) and interactions, each read only when
    /// the segment counts them.
    pub fn facts<S: CustomerStore + ?Sized>(
        self,
        store: &S,
        customer: CustomerId,
    ) -> Result<(Vec<BehaviourEvent>, Vec<Interaction>)> {
        let mut events = Vec::new();
        if self.events {
            let mut page = PageRequest::first(1_000);
            loop {
                let p = store.events_of(customer, &EventRange::default(), &page)?;
                events.extend(p.items);
                match p.next {
                    Some(next) => page = PageRequest { after: Some(next), limit: 1_000 },
                    None => break,
                }
            }
        }
        let interactions = if self.interactions { store.interactions_of(customer)? } else { Vec::new() };
        Ok((events, interactions))
    }
}

/// Visits the members after `after` in id order until `visit` returns false.
fn walk<S: CustomerStore + ?Sized>(
    store: &S,
    filter: &CustomerFilter,
    segment: &Segment,
    ctx: &SegmentContext,
    after: Option<super::Cursor>,
    visit: &mut dyn FnMut(Customer) -> bool,
) -> Result<()> {
    let reads = SegmentReads::of(segment);
    let mut page = PageRequest { after, limit: STEP };
    loop {
        let batch = store.list_customers(filter, &page)?;
        for c in batch.items {
            let (events, interactions) = reads.facts(store, c.id)?;
            if segment.matches(&c, SegmentFacts { events: &events, interactions: &interactions }, ctx) && !visit(c) {
                return Ok(());
            }
        }
        match batch.next {
            Some(next) => page = PageRequest { after: Some(next), limit: STEP },
            None => return Ok(()),
        }
    }
}
