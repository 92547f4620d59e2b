//! A segment evaluated over a store by the reference evaluator: every customer the filter
//! admits is read with its events and interactions and tested with [`Segment::matches`]. The
//! memory store answers segments this way; the SQL backends compile the segment into their
//! query instead, and the conformance suite checks both give the same members.

use super::{CustomerFilter, CustomerStore, Page, PageRequest};
use crate::customer::Customer;
use crate::error::Result;
use crate::marketing::{EventRange, Segment, SegmentContext, SegmentFacts};

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

/// Visits the members after `after` in id order until `visit` returns false.
fn walk<S: CustomerStore + ?Sized>(
    store: &S,
    filter: &CustomerFilter,
    segment: &Segment,
    ctx: &SegmentContext,
    after: Option<super::Cursor>,
    visit: &mut dyn FnMut(Customer) -> bool,
) -> Result<()> {
    let (reads_events, reads_interactions) = (!segment.event_names().is_empty(), segment.counts_interactions());
    let mut page = PageRequest { after, limit: STEP };
    loop {
        let batch = store.list_customers(filter, &page)?;
        for c in batch.items {
            let events = if reads_events { events_of(store, &c)? } else { Vec::new() };
            let interactions = if reads_interactions { store.interactions_of(c.id)? } else { Vec::new() };
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

/// Every event of a customer, a page at a time.
fn events_of<S: CustomerStore + ?Sized>(store: &S, c: &Customer) -> Result<Vec<crate::marketing::BehaviourEvent>> {
    let mut events = Vec::new();
    let mut page = PageRequest::first(1_000);
    loop {
        let p = store.events_of(c.id, &EventRange::default(), &page)?;
        events.extend(p.items);
        match p.next {
            Some(next) => page = PageRequest { after: Some(next), limit: 1_000 },
            None => return Ok(events),
        }
    }
}
