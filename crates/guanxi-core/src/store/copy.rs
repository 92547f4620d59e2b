//! Copying a whole store into an empty one, through the contract alone: what a backup of a
//! server store into a guanxi file, and the restore of such a file into a server, are made of.
//! Works between any two backends.

use super::{Changes, CustomerFilter, Deleted, Page, PageRequest, StoreReads, StoreView, TagWrite, Write};
use crate::changelog::ChangeLogQuery;
use crate::commerce::{ProductFilter, PurchaseFilter};
use crate::error::{EntityKind, Error, Result};
use crate::marketing::EventRange;
use crate::sales::{LeadFilter, OpportunityFilter, TaskFilter};
use crate::service::TicketFilter;

/// Records per batch written to the copy (memory stays flat however large the store).
const CHUNK: usize = 1_000;

/// What [`copy_store`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Records copied (customers, contacts, tags, …, one each), change-log entries aside.
    pub records: u64,
    /// Change-log entries copied.
    pub log_entries: u64,
}

/// Copies every record, setting, sequence and change-log entry of `from` into `to`, which must
/// be empty (an [`Error::InvalidState`] otherwise). The copy's audit chain is checked to end
/// on the same entry and hash as the source's: an entry that did not copy exactly is an error,
/// never a silently different log. Pass a [write session](super::CrmStore::write_session) as
/// `to` to make the copy all or nothing, and a consistent snapshot as `from` (one read
/// transaction) when others may write to the source meanwhile.
///
/// ```
/// use guanxi_core::{prelude::*, MemoryStore, Changes, Tag, TagWrite, store::copy_store};
/// let (from, to) = (MemoryStore::new(), MemoryStore::new());
/// from.apply(&Changes { tags: vec![TagWrite::Put(Tag::new("VIP", None)?)], ..Default::default() })?;
/// from.reserve_sequence("C20240501", 7)?;
/// let report = copy_store(&from, &to)?;
/// assert_eq!(report.records, 2); // the tag and the sequence
/// assert_eq!(to.tags()?, from.tags()?);
/// assert_eq!(to.reserve_sequence("C20240501", 1)?, 8);
/// # Ok::<(), guanxi_core::Error>(())
/// ```
pub fn copy_store(from: &dyn StoreReads, to: &dyn StoreView) -> Result<CopyReport> {
    refuse_unless_empty(to)?;
    let mut report = CopyReport::default();
    let mut write = |changes: Changes, records: usize| -> Result<()> {
        report.records += records as u64;
        if changes.is_empty() { Ok(()) } else { to.apply(&changes) }
    };

    // Configuration first: what records refer to (tags, field definitions) or are checked against.
    let tags: Vec<TagWrite> = from.tags()?.into_iter().map(TagWrite::Put).collect();
    let mut custom_fields = Vec::new();
    for entity in EntityKind::ALL {
        custom_fields.extend(from.custom_fields(entity)?);
    }
    let access = from.access_model()?.map(|m| Write::Insert((*m).clone()));
    let settings: Vec<_> = from.settings()?.into_iter().map(Write::Insert).collect();
    let n = tags.len() + custom_fields.len() + usize::from(access.is_some()) + settings.len();
    write(Changes { tags, custom_fields, access, settings, ..Default::default() }, n)?;

    let everyone = CustomerFilter::default().deleted(Deleted::Include);
    walk(
        |p| from.list_customers(&everyone, p),
        |page| {
            // An insert links the tags the customer carries.
            let n = page.len();
            write(Changes { customers: page.into_iter().map(Write::Insert).collect(), ..Default::default() }, n)
        },
    )?;
    walk(
        |p| from.all_contacts(p),
        |page| {
            let n = page.len();
            write(Changes { contacts: page.into_iter().map(Write::Insert).collect(), ..Default::default() }, n)
        },
    )?;
    walk(
        |p| from.all_interactions(p),
        |page| {
            let n = page.len();
            write(Changes { interactions: page, ..Default::default() }, n)
        },
    )?;
    // Behaviour events, customer by customer, a page at a time.
    walk(
        |p| from.list_customers(&everyone, p),
        |page| {
            for c in page {
                walk(
                    |p| from.events_of(c.id, &EventRange::default(), p),
                    |events| {
                        let n = events.len();
                        write(Changes { events, ..Default::default() }, n)
                    },
                )?;
            }
            Ok(())
        },
    )?;
    // Stays in saved segments (open and closed), segment by segment — deleted ones too,
    // whose definitions stay as tombstones so their history does.
    for setting in from.settings_under(crate::marketing::saved::SAVED_SEGMENT_KEY_PREFIX)? {
        let Some(name) = setting.key.strip_prefix(crate::marketing::saved::SAVED_SEGMENT_KEY_PREFIX) else { continue };
        let query = crate::marketing::MembershipQuery { segment: name.to_owned(), ..Default::default() };
        walk(
            |p| from.segment_memberships(&query, p),
            |stays| {
                let n = stays.len();
                let memberships = stays.into_iter().map(crate::marketing::MembershipChange::Enter).collect();
                write(Changes { memberships, ..Default::default() }, n)
            },
        )?;
    }
    walk(
        |p| from.list_opportunities(&OpportunityFilter::default(), p),
        |page| {
            let mut history = Vec::new();
            for o in &page {
                history.extend(from.stage_history(o.id)?);
            }
            let n = page.len() + history.len();
            let opportunities = page.into_iter().map(Write::Insert).collect();
            write(Changes { opportunities, stage_history: history, ..Default::default() }, n)
        },
    )?;
    walk(
        |p| from.list_leads(&LeadFilter::default(), p),
        |page| {
            let n = page.len();
            write(Changes { leads: page.into_iter().map(Write::Insert).collect(), ..Default::default() }, n)
        },
    )?;
    walk(
        |p| from.list_tasks(&TaskFilter::default(), p),
        |page| {
            let n = page.len();
            write(Changes { tasks: page.into_iter().map(Write::Insert).collect(), ..Default::default() }, n)
        },
    )?;
    walk(
        |p| from.list_tickets(&TicketFilter::default(), p),
        |page| {
            let mut entries = Vec::new();
            for t in &page {
                entries.extend(from.ticket_entries(t.id)?);
            }
            let n = page.len() + entries.len();
            let tickets = page.into_iter().map(Write::Insert).collect();
            write(Changes { tickets, ticket_entries: entries, ..Default::default() }, n)
        },
    )?;
    walk(
        |p| from.list_articles(p),
        |page| {
            let n = page.len();
            write(Changes { articles: page.into_iter().map(Write::Insert).collect(), ..Default::default() }, n)
        },
    )?;
    walk(
        |p| from.list_products(&ProductFilter::default(), p),
        |page| {
            let n = page.len();
            write(Changes { products: page.into_iter().map(Write::Insert).collect(), ..Default::default() }, n)
        },
    )?;
    // Every purchase, deleted customers' too.
    let all_purchases = PurchaseFilter { customers: everyone.clone(), ..Default::default() };
    walk(
        |p| from.list_purchases(&all_purchases, p),
        |page| {
            let n = page.len();
            write(Changes { purchases: page.into_iter().map(Write::Insert).collect(), ..Default::default() }, n)
        },
    )?;

    // The log last, in seq order: the copy chains each entry onto the one before exactly as
    // the source did, so the same content gives the same hashes.
    let mut after = None;
    let mut source_head = None;
    loop {
        let page = from.change_log(&ChangeLogQuery { after_seq: after, limit: Some(CHUNK), ..Default::default() })?;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        source_head = Some((last.seq, last.hash.clone()));
        report.log_entries += page.len() as u64;
        let full = page.len() == CHUNK;
        to.apply(&Changes { change_log: page, ..Default::default() })?;
        if !full {
            break;
        }
    }
    if let Some((seq, hash)) = source_head {
        let copied = to.change_log(&ChangeLogQuery {
            after_seq: Some(seq.saturating_sub(1)),
            limit: Some(1),
            ..Default::default()
        })?;
        if copied.first().is_none_or(|e| e.seq != seq || e.hash != hash) {
            return Err(Error::InvalidState(format!(
                "the copied audit log does not end on the source's entry {seq} and its hash: the source log has gaps or was altered"
            )));
        }
    }

    for (key, value) in from.sequences()? {
        if value > 0 {
            to.reserve_sequence(&key, value)?;
            report.records += 1;
        }
    }
    Ok(report)
}

/// Walks every page of a list, a chunk at a time.
pub(crate) fn walk<T>(
    mut fetch: impl FnMut(&PageRequest) -> Result<Page<T>>,
    mut each: impl FnMut(Vec<T>) -> Result<()>,
) -> Result<()> {
    let mut request = PageRequest::first(CHUNK);
    loop {
        let page = fetch(&request)?;
        let next = page.next;
        each(page.items)?;
        match next {
            Some(cursor) => request = PageRequest::after(cursor, CHUNK),
            None => return Ok(()),
        }
    }
}

/// A copy goes into an empty store only: merging two stores would interleave two audit chains.
fn refuse_unless_empty(to: &dyn StoreView) -> Result<()> {
    let first = PageRequest::first(1);
    let everyone = CustomerFilter::default().deleted(Deleted::Include);
    let holds_data = !to.tags()?.is_empty()
        || to.count_customers(&everyone)? > 0
        || !to.change_log(&ChangeLogQuery { limit: Some(1), ..Default::default() })?.is_empty()
        || !to.list_opportunities(&OpportunityFilter::default(), &first)?.items.is_empty()
        || !to.list_leads(&LeadFilter::default(), &first)?.items.is_empty()
        || !to.list_tasks(&TaskFilter::default(), &first)?.items.is_empty()
        || !to.list_tickets(&TicketFilter::default(), &first)?.items.is_empty()
        || !to.list_articles(&first)?.items.is_empty()
        || !to.list_products(&ProductFilter::default(), &first)?.items.is_empty()
        || !to.settings()?.is_empty()
        || to.access_model()?.is_some()
        || !to.sequences()?.is_empty();
    if holds_data {
        return Err(Error::InvalidState("a store is copied into an empty store only; this one holds data".into()));
    }
    Ok(())
}
