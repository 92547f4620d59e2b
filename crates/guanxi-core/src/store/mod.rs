//! The storage contract every backend implements, and the in-memory backend.
//!
//! Writes go through [`StoreWrite::apply`] as one [`Changes`] batch: all of it commits or none
//! of it does. Reads are plain getters and filtered, cursor-paged lists. Every backend passes
//! the conformance suite in `guanxi_core::testing` (feature `testing`).

mod copy;
mod memory;
mod segments;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub(crate) use copy::walk;
pub use copy::{CopyReport, copy_store};
pub use memory::MemoryStore;
pub use segments::{SegmentReads, count_segment_members_by_reference, segment_members_by_reference};

use crate::access::{AccessModel, RecordScope, Scoped};
use crate::changelog::{ChangeLogEntry, ChangeLogQuery};
use crate::commerce::{Product, ProductFilter, Purchase, PurchaseFilter, PurchaseKey};
use crate::contact::Contact;
use crate::custom_field::{CustomFieldDef, CustomFilter};
use crate::customer::{Customer, CustomerKind, Level, LifecycleStatus, SizeBand};
use crate::error::{EntityKind, Error, Result};
use crate::ids::{ArticleId, InteractionId, LeadId, OpportunityId, ProductId, PurchaseId, TaskId, TicketId};
use crate::ids::{ContactId, CustomerId, DepartmentId, UserId};
use crate::industry::Industry;
use crate::interaction::Interaction;
use crate::marketing::{
    BehaviourEvent, EventRange, MembershipChange, MembershipQuery, Segment, SegmentContext, SegmentMembership,
};
use crate::normalize::{IdNumber, Phone};
use crate::sales::{
    Lead, LeadFilter, Opportunity, OpportunityFilter, Pipeline, SalesFacts, SalesQuery, StageHistoryEntry, Task,
    TaskFilter,
};
use crate::service::{Article, ArticleHit, KbQuery, SlaClock, Ticket, TicketEntry, TicketFilter};
use crate::tag::Tag;

/// A record write inside a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write<T> {
    /// Insert a new record; an existing id is a [`Error::Duplicate`].
    Insert(T),
    /// Replace a record whose stored version is `expected_version`; another stored version is an
    /// [`Error::Conflict`], a missing record [`Error::NotFound`]. The record carries its new version.
    Update {
        /// The new state.
        record: T,
        /// The version the change was based on.
        expected_version: u64,
    },
}

impl<T> Write<T> {
    /// The record written.
    pub fn record(&self) -> &T {
        match self {
            Write::Insert(r) | Write::Update { record: r, .. } => r,
        }
    }

    /// The record written, by value.
    pub fn into_record(self) -> T {
        match self {
            Write::Insert(r) | Write::Update { record: r, .. } => r,
        }
    }
}

/// A tag write inside a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagWrite {
    /// Create the tag if no tag of that name exists; leave an existing one as it is.
    Ensure(Tag),
    /// Create the tag, or set the group of the existing one.
    Put(Tag),
}

/// Adds (`linked: true`) or removes a tag on a customer. Adding a present tag or removing an
/// absent one changes nothing. The tag must exist (or be created earlier in the same batch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagLink {
    /// Customer.
    pub customer: CustomerId,
    /// Tag name.
    pub tag: String,
    /// Add or remove.
    pub linked: bool,
}

/// Re-points an interaction from one customer to another: what a merge and its undo do
/// (interactions are otherwise immutable). An interaction that is missing or not on `from` is
/// an [`Error::NotFound`] and fails the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionMove {
    /// The interaction.
    pub id: InteractionId,
    /// The customer it is on.
    pub from: CustomerId,
    /// The customer it moves to.
    pub to: CustomerId,
}

/// Re-points a behaviour event from one customer to another: what a merge and its undo do
/// (events are otherwise append-only). An event that is missing or not on `from` is an
/// [`Error::NotFound`] and fails the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMove {
    /// The event.
    pub id: crate::ids::EventId,
    /// The customer it is on.
    pub from: CustomerId,
    /// The customer it moves to.
    pub to: CustomerId,
}

/// A versioned configuration document (a pipeline, the lead rules), stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Key, e.g. `pipeline.standard`.
    pub key: String,
    /// JSON text.
    pub value: String,
    /// 1 on insert, +1 per update.
    pub version: u64,
}

/// One atomic batch of writes, applied in this order: tags, customers, contacts, tag links,
/// interactions, the events purge, events, event moves, segment memberships, interaction moves, custom fields, access model, settings, opportunities, stage history, leads,
/// tasks, tickets, ticket entries, articles, products, purchases, change log (so a customer insert can link a tag created in the
/// same batch, and a contact can belong to a customer created in it).
///
/// Customer writes store every field except `tags`: an insert links the tags it carries, an
/// update leaves links alone (they change only through `tag_links`).
///
/// ```
/// use guanxi_core::{prelude::*, Changes, MemoryStore};
/// let store = MemoryStore::new();
/// store.apply(&Changes::default()).unwrap(); // an empty batch is fine
/// assert!(Changes::default().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Tag definitions.
    pub tags: Vec<TagWrite>,
    /// Customer inserts and updates.
    pub customers: Vec<Write<Customer>>,
    /// Contact inserts and updates.
    pub contacts: Vec<Write<Contact>>,
    /// Tag additions and removals.
    pub tag_links: Vec<TagLink>,
    /// New interactions (interactions are immutable).
    pub interactions: Vec<Interaction>,
    /// Interactions re-pointed to another customer (merges).
    pub interaction_moves: Vec<InteractionMove>,
    /// Behaviour events re-pointed to another customer (merges), after the new events.
    pub event_moves: Vec<EventMove>,
    /// New custom field definitions; an existing (entity, key) is a [`Error::Duplicate`].
    pub custom_fields: Vec<CustomFieldDef>,
    /// The access model (departments, users, custom roles), inserted once then updated.
    pub access: Option<Write<AccessModel>>,
    /// Configuration documents.
    pub settings: Vec<Write<Setting>>,
    /// Opportunity inserts and updates.
    pub opportunities: Vec<Write<Opportunity>>,
    /// Stage-history entries (append-only; an existing (opportunity, seq) is a [`Error::Duplicate`]).
    pub stage_history: Vec<StageHistoryEntry>,
    /// Lead inserts and updates.
    pub leads: Vec<Write<Lead>>,
    /// Task inserts and updates.
    pub tasks: Vec<Write<Task>>,
    /// Ticket inserts and updates.
    pub tickets: Vec<Write<Ticket>>,
    /// Ticket entries (append-only; an existing (ticket, seq) is a [`Error::Duplicate`]).
    pub ticket_entries: Vec<TicketEntry>,
    /// Knowledge-base article inserts and updates.
    pub articles: Vec<Write<Article>>,
    /// Catalog product inserts and updates (a taken code or external id is an
    /// [`Error::Duplicate`]).
    pub products: Vec<Write<Product>>,
    /// Purchase inserts and updates (a taken source system and external id is an
    /// [`Error::Duplicate`]; the customer must exist).
    pub purchases: Vec<Write<Purchase>>,
    /// New behaviour events (append-only). An event whose external id is already stored, or
    /// comes earlier in the batch, is not written again.
    pub events: Vec<BehaviourEvent>,
    /// Removes every behaviour event that happened before this instant (a retention purge),
    /// before the batch's new events are written.
    pub purge_events_before: Option<DateTime<Utc>>,
    /// Stays in saved segments begun and ended, in order (after everything above but the
    /// change log). Entering with a stay open, or a stay id already stored, is an
    /// [`Error::Duplicate`].
    pub memberships: Vec<MembershipChange>,
    /// Change-log entries; the store assigns their `seq`.
    pub change_log: Vec<ChangeLogEntry>,
}

impl Changes {
    /// True when the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
            && self.contacts.is_empty()
            && self.tags.is_empty()
            && self.tag_links.is_empty()
            && self.interactions.is_empty()
            && self.interaction_moves.is_empty()
            && self.event_moves.is_empty()
            && self.custom_fields.is_empty()
            && self.access.is_none()
            && self.settings.is_empty()
            && self.opportunities.is_empty()
            && self.stage_history.is_empty()
            && self.leads.is_empty()
            && self.tasks.is_empty()
            && self.tickets.is_empty()
            && self.ticket_entries.is_empty()
            && self.articles.is_empty()
            && self.products.is_empty()
            && self.purchases.is_empty()
            && self.events.is_empty()
            && self.purge_events_before.is_none()
            && self.memberships.is_empty()
            && self.change_log.is_empty()
    }
}

/// Which soft-deleted records a list includes.
///
/// ```
/// use guanxi_core::Deleted;
/// assert_eq!(Deleted::default(), Deleted::Exclude);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Deleted {
    /// Live records only (the default).
    #[default]
    Exclude,
    /// Soft-deleted records only.
    Only,
    /// Both.
    Include,
}

impl Deleted {
    /// Whether a record with this deletion state passes.
    pub fn admits(self, deleted_at: Option<DateTime<Utc>>) -> bool {
        match self {
            Deleted::Exclude => deleted_at.is_none(),
            Deleted::Only => deleted_at.is_some(),
            Deleted::Include => true,
        }
    }
}

/// Conditions on a customer list; all combine with AND. An empty filter lists every live customer.
///
/// ```
/// use guanxi_core::{CustomerFilter, LifecycleStatus};
/// let f = CustomerFilter::default().status(LifecycleStatus::Customer).tag("VIP").province("山东");
/// assert_eq!(f.province.as_deref(), Some("山东省")); // canonicalized
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFilter {
    /// Lifecycle status.
    pub status: Option<LifecycleStatus>,
    /// Kind.
    pub kind: Option<CustomerKind>,
    /// Level.
    pub level: Option<Level>,
    /// Industry.
    pub industry: Option<Industry>,
    /// Size band.
    pub size: Option<SizeBand>,
    /// Owner.
    pub owner: Option<UserId>,
    /// Department.
    pub department: Option<DepartmentId>,
    /// Customers carrying every one of these tags.
    pub tags: Vec<String>,
    /// Province (full official name).
    pub province: Option<String>,
    /// City.
    pub city: Option<String>,
    /// District.
    pub district: Option<String>,
    /// Name contains this text (case-insensitive for ASCII).
    pub name_contains: Option<String>,
    /// Custom field conditions.
    pub custom: Vec<CustomFilter>,
    /// Soft-deleted records.
    pub deleted: Deleted,
    /// The records the caller may see. The `Crm` facade sets it from the actor's permission
    /// (replacing any value given); stores apply it inside their query like any condition.
    pub scope: Option<RecordScope>,
    /// Only these customers (None: no restriction; an empty list matches none). At most
    /// [`MAX_FILTER_IDS`].
    pub ids: Option<Vec<CustomerId>>,
}

/// At most this many ids in [`CustomerFilter::ids`].
pub const MAX_FILTER_IDS: usize = 1_000;

impl CustomerFilter {
    /// Requires a status.
    pub fn status(mut self, status: LifecycleStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Requires an owner.
    pub fn owner(mut self, owner: UserId) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Requires a tag (normalized like tag names).
    pub fn tag(mut self, tag: &str) -> Self {
        self.tags.push(crate::normalize::fold_text(tag));
        self
    }

    /// Requires a province, given by full or short name (an unknown name matches nothing).
    pub fn province(mut self, province: &str) -> Self {
        let p = crate::region::canonical_province(province).map_or_else(|| province.to_owned(), str::to_owned);
        self.province = Some(p);
        self
    }

    /// Requires a city.
    pub fn city(mut self, city: &str) -> Self {
        self.city = Some(crate::normalize::fold_text(city));
        self
    }

    /// Requires a custom field condition.
    pub fn custom(mut self, filter: CustomFilter) -> Self {
        self.custom.push(filter);
        self
    }

    /// Sets which soft-deleted records are listed.
    pub fn deleted(mut self, deleted: Deleted) -> Self {
        self.deleted = deleted;
        self
    }

    /// Restricts the list to these customers (at most [`MAX_FILTER_IDS`]).
    pub fn ids(mut self, ids: impl IntoIterator<Item = CustomerId>) -> Self {
        self.ids = Some(ids.into_iter().collect());
        self
    }

    /// Restricts the list to a permission scope.
    pub fn scope(mut self, scope: RecordScope) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Whether a customer satisfies the filter: the reference semantics every backend's
    /// query must reproduce (the conformance suite checks them against each other).
    pub fn matches(&self, c: &Customer) -> bool {
        let region = c.region.as_ref();
        self.scope.as_ref().is_none_or(|s| s.admits(c.scope_attrs()))
            && self.ids.as_ref().is_none_or(|ids| ids.contains(&c.id))
            && self.deleted.admits(c.deleted_at)
            && self.status.is_none_or(|s| c.status == s)
            && self.kind.is_none_or(|k| c.kind == k)
            && self.level.is_none_or(|l| c.level == Some(l))
            && self.industry.is_none_or(|i| c.industry == Some(i))
            && self.size.is_none_or(|s| c.size == Some(s))
            && self.owner.as_ref().is_none_or(|o| c.owner.as_ref() == Some(o))
            && self.department.as_ref().is_none_or(|d| c.department.as_ref() == Some(d))
            && self.tags.iter().all(|t| c.tags.contains(t))
            && self.province.as_ref().is_none_or(|p| region.is_some_and(|r| &r.province == p))
            && self.city.as_ref().is_none_or(|x| region.is_some_and(|r| &r.city == x))
            && self.district.as_ref().is_none_or(|x| region.is_some_and(|r| &r.district == x))
            && self.name_contains.as_ref().is_none_or(|n| contains_ascii_ci(&c.name, n))
            && self.custom.iter().all(|f| c.custom.get(&f.key).is_some_and(|v| v.matches(&f.value)))
    }
}

/// Case-insensitive (ASCII) substring test, the semantics of SQLite's `instr(lower(..))`.
pub(crate) fn contains_ascii_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_ascii_lowercase().contains(&needle.to_ascii_lowercase())
}

/// An opaque position in a list: pass a page's `next` back to get the following page.
/// Lists are ordered by id (UUIDv7, so by creation), which makes paging stable under inserts.
///
/// ```
/// use guanxi_core::Cursor;
/// let c = Cursor::from_token("01890a5d-ac96-774b-bcce-b302099a8057").unwrap();
/// assert_eq!(c.token(), "01890a5d-ac96-774b-bcce-b302099a8057");
/// assert!(Cursor::from_token("garbage").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor(pub(crate) uuid::Uuid);

impl Cursor {
    /// The cursor after a given record id.
    pub fn after(id: uuid::Uuid) -> Cursor {
        Cursor(id)
    }

    /// The last id of the previous page.
    pub fn last_id(&self) -> uuid::Uuid {
        self.0
    }

    /// Text form, for handing to a client.
    pub fn token(&self) -> String {
        self.0.to_string()
    }

    /// Parses the text form; a malformed token is a validation error on `cursor`.
    pub fn from_token(token: &str) -> Result<Cursor> {
        uuid::Uuid::parse_str(token).map(Cursor).map_err(|_| {
            Error::invalid("cursor", crate::ValidationReason::Invalid { detail: "is not a cursor token".into() })
        })
    }
}

/// Which page of a list to return.
///
/// ```
/// use guanxi_core::PageRequest;
/// assert_eq!(PageRequest::default().limit, 100);
/// assert_eq!(PageRequest::first(10).limit, 10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Start after this position (None: from the start).
    pub after: Option<Cursor>,
    /// Page size, at least 1.
    pub limit: usize,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { after: None, limit: 100 }
    }
}

impl PageRequest {
    /// The first `limit` records.
    pub fn first(limit: usize) -> Self {
        PageRequest { after: None, limit }
    }

    /// The `limit` records after `cursor`.
    pub fn after(cursor: Cursor, limit: usize) -> Self {
        PageRequest { after: Some(cursor), limit }
    }

    /// Rejects a zero limit.
    pub fn check(&self) -> Result<()> {
        if self.limit == 0 {
            return Err(Error::invalid(
                "limit",
                crate::ValidationReason::Invalid { detail: "must be at least 1".into() },
            ));
        }
        Ok(())
    }
}

/// A page of results and the cursor of the next page (None when this is the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The records.
    pub items: Vec<T>,
    /// Where the next page starts.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` fetched rows: the extra row only signals that more exist.
    pub fn from_overfetch(mut rows: Vec<T>, limit: usize, id_of: impl Fn(&T) -> uuid::Uuid) -> Page<T> {
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| Cursor(id_of(r)))
        } else {
            None
        };
        Page { items: rows, next }
    }
}

/// One item of a customer's timeline.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimelineItem {
    /// A follow-up.
    Interaction(Interaction),
    /// A change to the customer or one of its records.
    Change(ChangeLogEntry),
}

/// A timeline item with its instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub item: TimelineItem,
}

/// Merges interactions and change-log entries into one timeline, oldest first; at equal
/// instants changes come before interactions, each kind in its own order (seq, id). The log
/// entry recording an interaction's creation is left out: the interaction itself stands there.
///
/// ```
/// use guanxi_core::store::merge_timeline;
/// assert!(merge_timeline(vec![], vec![]).is_empty());
/// ```
pub fn merge_timeline(interactions: Vec<Interaction>, changes: Vec<ChangeLogEntry>) -> Vec<TimelineEntry> {
    let mut out: Vec<(DateTime<Utc>, u8, u128, TimelineItem)> = changes
        .into_iter()
        .filter(|c| !(c.entity == EntityKind::Interaction && c.action == crate::ChangeAction::Create))
        .map(|c| (c.at, 0, u128::from(c.seq), TimelineItem::Change(c)))
        .chain(interactions.into_iter().map(|i| (i.at, 1, i.id.0.as_u128(), TimelineItem::Interaction(i))))
        .collect();
    out.sort_by_key(|(at, rank, key, _)| (*at, *rank, *key));
    out.into_iter().map(|(at, _, _, item)| TimelineEntry { at, item }).collect()
}

/// Defines a read trait, and implements it for every [`ReadThrough`] store by running each
/// method on the view the store lends: one list of methods, no delegation written by hand.
macro_rules! read_trait {
    ($(#[$meta:meta])* pub trait $name:ident {
        $($(#[$fmeta:meta])* fn $f:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)*
    }) => {
        $(#[$meta])*
        pub trait $name {
            $($(#[$fmeta])* fn $f(&self $(, $arg: $ty)*) -> $ret;)*
        }

        impl<S: ReadThrough> $name for S {
            $(fn $f(&self $(, $arg: $ty)*) -> $ret {
                self.read_through(|view| view.$f($($arg),*))
            })*
        }
    };
}

/// A store that answers every read by running it on a view it lends (a pooled read
/// connection, say): implementing this one method implements [`CustomerStore`],
/// [`SalesStore`], [`ServiceStore`] and [`AuditStore`], each method delegated.
///
/// ```
/// use guanxi_core::prelude::*;
/// use guanxi_core::{MemoryStore, Result, store::{ReadThrough, StoreReads}};
/// /// A store that reads through another one.
/// struct Proxy(MemoryStore);
/// impl ReadThrough for Proxy {
///     fn read_through<R: Send>(&self, read: impl FnOnce(&dyn StoreReads) -> Result<R> + Send) -> Result<R> {
///         read(&self.0)
///     }
/// }
/// assert_eq!(Proxy(MemoryStore::new()).tags().unwrap(), vec![]);
/// ```
pub trait ReadThrough {
    /// Runs `read` on a view of the store.
    fn read_through<R: Send>(&self, read: impl FnOnce(&dyn StoreReads) -> Result<R> + Send) -> Result<R>;
}

read_trait! {
/// Reads of customers and what hangs off them: contacts, tags, interactions, custom field
/// definitions and the duplicate-matching index.
pub trait CustomerStore {
    /// A customer by id (soft-deleted ones included).
    fn customer(&self, id: CustomerId) -> Result<Option<Customer>>;
    /// A customer by code (soft-deleted ones included).
    fn customer_by_code(&self, code: &str) -> Result<Option<Customer>>;
    /// One page of the customers matching `filter`, ordered by id.
    fn list_customers(&self, filter: &CustomerFilter, page: &PageRequest) -> Result<Page<Customer>>;
    /// How many customers match `filter`.
    fn count_customers(&self, filter: &CustomerFilter) -> Result<u64>;
    /// Every customer matching `filter`, in id order, handed to `visit` one at a time as a
    /// view of the stored row (see [`crate::scan`]); returns how many. An error `visit`
    /// returns stops the scan and is returned. The rows are those [`Self::list_customers`]
    /// pages through, read in one snapshot where the store has them.
    fn scan_customers(&self, filter: &CustomerFilter, visit: &mut crate::scan::CustomerVisit<'_>) -> Result<u64>;
    /// A contact by id (removed ones included).
    fn contact(&self, id: ContactId) -> Result<Option<Contact>>;
    /// The live contacts of a customer, primary first, then by id.
    fn contacts_of(&self, customer: CustomerId) -> Result<Vec<Contact>>;
    /// The live contacts with this phone number, by id (an exact match, for duplicate checks;
    /// encrypted stores answer it from a keyed blind index).
    fn contacts_by_phone(&self, phone: &Phone) -> Result<Vec<Contact>>;
    /// The live contacts with this resident identity number, by id (exact match, through the
    /// blind index when encrypted).
    fn contacts_by_id_number(&self, id_number: &IdNumber) -> Result<Vec<Contact>>;
    /// The live customers whose stored match keys share at least one of `keys` (names with
    /// names, contacts with contacts; see [`crate::dedup::match_keys`]), by id. A key shared
    /// by more than `max_block` live customers is ignored (it says nothing about any pair).
    /// The keys of a customer are those of its name and of its live contacts.
    fn customers_by_match_keys(&self, keys: &crate::dedup::MatchKeys, max_block: usize) -> Result<Vec<CustomerId>>;
    /// A tag by name.
    fn tag(&self, name: &str) -> Result<Option<Tag>>;
    /// Every tag, by group then name (ungrouped first).
    fn tags(&self) -> Result<Vec<Tag>>;
    /// The interactions of a customer, oldest first (by time, then id).
    fn interactions_of(&self, customer: CustomerId) -> Result<Vec<Interaction>>;
    /// The custom field definitions of an entity, by key.
    fn custom_fields(&self, entity: EntityKind) -> Result<Vec<CustomFieldDef>>;
    /// One page of every contact, removed ones included, ordered by id (what a copy of the
    /// store walks).
    fn all_contacts(&self, page: &PageRequest) -> Result<Page<Contact>>;
    /// One page of every interaction, ordered by id.
    fn all_interactions(&self, page: &PageRequest) -> Result<Page<Interaction>>;
    /// One page of a customer's behaviour events within `range`, ordered by id: by when they
    /// happened.
    fn events_of(&self, customer: CustomerId, range: &EventRange, page: &PageRequest) -> Result<Page<BehaviourEvent>>;
    /// Which of these external ids a stored event already has (in no particular order).
    fn stored_external_ids(&self, ids: &[String]) -> Result<Vec<String>>;
    /// How many behaviour events happened before `before` (what a purge at it removes).
    fn count_events_before(&self, before: DateTime<Utc>) -> Result<u64>;
    /// One page of the customers matching `filter` that are in `segment` at `ctx`, ordered by
    /// id. The SQL backends evaluate the segment inside their query; every backend must give
    /// what [`segment_members_by_reference`] gives (the conformance suite checks it on random
    /// segments and data).
    fn segment_members(&self, filter: &CustomerFilter, segment: &Segment, ctx: &SegmentContext, page: &PageRequest) -> Result<Page<Customer>>;
    /// How many customers matching `filter` are in `segment` at `ctx`: as many as
    /// [`segment_members`](CustomerStore::segment_members) pages through.
    fn count_segment_members(&self, filter: &CustomerFilter, segment: &Segment, ctx: &SegmentContext) -> Result<u64>;
    /// One page of the stays in saved segments matching `query`, ordered by id (by when
    /// they began).
    fn segment_memberships(&self, query: &MembershipQuery, page: &PageRequest) -> Result<Page<SegmentMembership>>;
    /// The open stays in `segment` of these customers, in no particular order.
    fn open_memberships(&self, segment: &str, customers: &[CustomerId]) -> Result<Vec<SegmentMembership>>;
}
}

read_trait! {
/// Reads of the sales aggregate: opportunities and their stage history, leads, tasks, and the
/// grouped facts of the sales report.
pub trait SalesStore {
    /// An opportunity by id.
    fn opportunity(&self, id: OpportunityId) -> Result<Option<Opportunity>>;
    /// An opportunity by code.
    fn opportunity_by_code(&self, code: &str) -> Result<Option<Opportunity>>;
    /// One page of the opportunities matching `filter`, ordered by id.
    fn list_opportunities(&self, filter: &OpportunityFilter, page: &PageRequest) -> Result<Page<Opportunity>>;
    /// How many opportunities match `filter`.
    fn count_opportunities(&self, filter: &OpportunityFilter) -> Result<u64>;
    /// The currencies of the opportunities matching `filter`, sorted.
    fn opportunity_currencies(&self, filter: &OpportunityFilter) -> Result<Vec<String>>;
    /// An opportunity's stage history, oldest first.
    fn stage_history(&self, id: OpportunityId) -> Result<Vec<StageHistoryEntry>>;
    /// The grouped facts a sales report is computed from, for the opportunities of `query`
    /// in `currency`: equal to [`SalesFacts::from_records`] over the same records.
    fn sales_facts(&self, pipeline: &Pipeline, query: &SalesQuery, currency: &str) -> Result<SalesFacts>;
    /// A lead by id.
    fn lead(&self, id: LeadId) -> Result<Option<Lead>>;
    /// One page of the leads matching `filter`, ordered by id.
    fn list_leads(&self, filter: &LeadFilter, page: &PageRequest) -> Result<Page<Lead>>;
    /// How many leads match `filter`.
    fn count_leads(&self, filter: &LeadFilter) -> Result<u64>;
    /// A task by id.
    fn task(&self, id: TaskId) -> Result<Option<Task>>;
    /// The tasks matching `filter`, by due instant then id.
    fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>>;
    /// One page of the tasks matching `filter`, ordered by id.
    fn list_tasks(&self, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>>;
    /// How many tasks match `filter`.
    fn count_tasks(&self, filter: &TaskFilter) -> Result<u64>;
}
}

read_trait! {
/// Reads of the service aggregate: tickets, their entries and SLA clocks, and the knowledge base.
pub trait ServiceStore {
    /// A ticket by id.
    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>>;
    /// A ticket by code.
    fn ticket_by_code(&self, code: &str) -> Result<Option<Ticket>>;
    /// One page of the tickets matching `filter`, ordered by id.
    fn list_tickets(&self, filter: &TicketFilter, page: &PageRequest) -> Result<Page<Ticket>>;
    /// How many tickets match `filter`.
    fn count_tickets(&self, filter: &TicketFilter) -> Result<u64>;
    /// Open tickets per user, for the users given (in their order; 0 for a user with none).
    fn open_ticket_loads(&self, users: &[UserId]) -> Result<Vec<u64>>;
    /// The SLA clock fields of the tickets matching `filter`, in no particular order: what
    /// SLA evaluation reads, without the rest of each record.
    fn sla_clocks(&self, filter: &TicketFilter) -> Result<Vec<SlaClock>>;
    /// A ticket's entries, oldest first.
    fn ticket_entries(&self, id: TicketId) -> Result<Vec<TicketEntry>>;
    /// An article by id.
    fn article(&self, id: ArticleId) -> Result<Option<Article>>;
    /// Ranked search: equal to [`crate::service::rank_articles`] over every stored article
    /// (same hits; scores equal up to floating-point summation order).
    fn search_articles(&self, query: &KbQuery) -> Result<Vec<ArticleHit>>;
    /// One page of every article, ordered by id.
    fn list_articles(&self, page: &PageRequest) -> Result<Page<Article>>;
}
}

read_trait! {
/// Reads of the commerce aggregate: the product catalog and purchases.
pub trait CommerceStore {
    /// A product by id.
    fn product(&self, id: ProductId) -> Result<Option<Product>>;
    /// The products with these codes, in no particular order (unknown codes are left out).
    fn products_by_codes(&self, codes: &[String]) -> Result<Vec<Product>>;
    /// The products with these external ids, in no particular order.
    fn products_by_external_ids(&self, ids: &[String]) -> Result<Vec<Product>>;
    /// One page of the products matching `filter`, ordered by id.
    fn list_products(&self, filter: &ProductFilter, page: &PageRequest) -> Result<Page<Product>>;
    /// How many products match `filter`.
    fn count_products(&self, filter: &ProductFilter) -> Result<u64>;
    /// A purchase by id.
    fn purchase(&self, id: PurchaseId) -> Result<Option<Purchase>>;
    /// The purchases with these keys (source system, external id), in no particular order.
    fn purchases_by_keys(&self, keys: &[PurchaseKey]) -> Result<Vec<Purchase>>;
    /// One page of the purchases matching `filter`, ordered by id.
    fn list_purchases(&self, filter: &PurchaseFilter, page: &PageRequest) -> Result<Page<Purchase>>;
    /// How many purchases match `filter`.
    fn count_purchases(&self, filter: &PurchaseFilter) -> Result<u64>;
    /// Per customer (in the order given), the sum of their paid purchases in `currency` made
    /// at or after `from` and before `to` (zero for none): what the level rule reads.
    fn paid_spend(&self, customers: &[CustomerId], currency: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<rust_decimal::Decimal>>;
    /// The customers with any purchase in `currency`, ordered by id, after `after`, at most
    /// `limit` (what a level refresh walks).
    fn customers_with_purchases(&self, currency: &str, after: Option<CustomerId>, limit: usize) -> Result<Vec<CustomerId>>;
}
}

read_trait! {
/// Reads of the change log, configuration documents and the access model.
pub trait AuditStore {
    /// Change-log entries matching the query, in `seq` order.
    fn change_log(&self, query: &ChangeLogQuery) -> Result<Vec<ChangeLogEntry>>;
    /// Checks the whole change log's hash chain (as [`crate::changelog::verify_chain`] would
    /// over every entry), streaming it: a store reads its rows in order and hashes their stored
    /// text without decoding them where it can.
    fn verify_change_log(&self) -> Result<crate::AuditCheck>;
    /// A configuration document by key.
    fn setting(&self, key: &str) -> Result<Option<Setting>>;
    /// The stored access model, if one was ever written.
    fn access_model(&self) -> Result<Option<Arc<AccessModel>>>;
    /// Every configuration document, by key (not the access model, nor what a backend keeps
    /// for itself such as its field-key check).
    fn settings(&self) -> Result<Vec<Setting>>;
    /// The configuration documents whose keys start with `prefix`, by key.
    fn settings_under(&self, prefix: &str) -> Result<Vec<Setting>>;
    /// Every sequence with the last value it handed out, by key.
    fn sequences(&self) -> Result<Vec<(String, u64)>>;
}
}

/// The one way data changes: an atomic batch. Sequences are reserved here too (they are
/// writes, and inside a [write session](CrmStore::write_session) they belong to it).
pub trait StoreWrite {
    /// Applies a batch atomically: on any error nothing of it is visible.
    fn apply(&self, changes: &Changes) -> Result<()>;
    /// Reserves `count` consecutive values of the named sequence and returns the first.
    /// Sequences start at 1; values are never handed out twice.
    fn reserve_sequence(&self, key: &str, count: u64) -> Result<u64>;
}

/// Every read trait joined (what [`ReadThrough::read_through`] lends).
pub trait StoreReads: CustomerStore + SalesStore + ServiceStore + CommerceStore + AuditStore {}

impl<T: CustomerStore + SalesStore + ServiceStore + CommerceStore + AuditStore + ?Sized> StoreReads for T {}

/// Everything a store can be asked inside one transaction: every read, and writes. A
/// [`CrmStore`] is one; so is the transaction a [`CrmStore::write_session`] hands out, whose
/// reads see the session's own uncommitted writes.
pub trait StoreView: StoreReads + StoreWrite {
    /// Everything that happened to a customer, oldest first.
    fn timeline(&self, customer: CustomerId) -> Result<Vec<TimelineEntry>> {
        let changes = self.change_log(&ChangeLogQuery { customer_id: Some(customer), ..Default::default() })?;
        Ok(merge_timeline(self.interactions_of(customer)?, changes))
    }
}

impl<T: StoreReads + StoreWrite + ?Sized> StoreView for T {}

/// The storage contract: the per-aggregate traits ([`CustomerStore`], [`SalesStore`],
/// [`ServiceStore`], [`AuditStore`], [`StoreWrite`]) joined, plus what only a whole store
/// does (write sessions, backup, key rotation). Implementations are `Send + Sync` and
/// internally synchronized; [`apply`](StoreWrite::apply) is atomic. A module added later
/// brings its own read trait and joins it here.
pub trait CrmStore: StoreView + Send + Sync + fmt::Debug {
    /// Runs `work` inside ONE write transaction: each `apply` it makes through the view is
    /// atomic on its own (a failed one leaves the session as it was), every read sees the
    /// session's writes so far, and nothing is visible to others until `work` returns `Ok`,
    /// when all of it commits at once; an `Err` rolls all of it back. Other writers wait for
    /// the session; readers do not (they see the state before it). What a bulk import uses
    /// to write a file in bounded chunks yet all or nothing.
    ///
    /// ```
    /// use guanxi_core::{prelude::*, MemoryStore};
    /// let store = MemoryStore::new();
    /// let r = store.write_session(&mut |tx| {
    ///     tx.reserve_sequence("n", 1)?;
    ///     Err(guanxi_core::Error::InvalidState("changed my mind".into()))
    /// });
    /// assert!(r.is_err());
    /// assert_eq!(store.reserve_sequence("n", 1).unwrap(), 1); // rolled back
    /// ```
    fn write_session(&self, work: &mut dyn FnMut(&dyn StoreView) -> Result<()>) -> Result<()>;

    /// Writes a consistent snapshot of the whole store to a new file at `dest`, while other
    /// writers may go on writing. Stores with no file format refuse with [`Error::InvalidState`].
    fn backup_to(&self, dest: &std::path::Path) -> Result<()> {
        Err(Error::InvalidState(format!("this store cannot be backed up to a file ({})", dest.display())))
    }

    /// Opens a backup this store made with [`CrmStore::backup_to`] for reading, without
    /// changing it (to verify its audit chain, say). Stores with no file format refuse with
    /// [`Error::InvalidState`].
    fn open_backup(&self, path: &std::path::Path) -> Result<Box<dyn CrmStore>> {
        Err(Error::InvalidState(format!("this store has no backup files ({})", path.display())))
    }
    /// Re-encrypts the store's sensitive fields under a new 32-byte key (see the SQLite
    /// backend). Stores that keep nothing at rest refuse with [`Error::InvalidState`].
    fn rotate_field_key(&self, new_key: &[u8]) -> Result<u64> {
        let _ = new_key;
        Err(Error::InvalidState("this store does not encrypt fields at rest".into()))
    }
    /// A short fingerprint of the field key in use, if fields are encrypted with a known key.
    fn field_key_fingerprint(&self) -> Result<Option<String>> {
        Ok(None)
    }
}

/// A shared, type-erased store.
pub type DynStore = Arc<dyn CrmStore>;
