//! Scans: every record a filter matches, handed one at a time to a visitor as a view that
//! borrows the store's row. A columnar reader (the Python binding's Arrow tables, a file
//! writer) copies each field once, into its own buffers, instead of building a record of
//! owned strings per row and copying it again.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::custom_field::CustomValue;
use crate::customer::{Customer, CustomerKind, Level, LifecycleStatus, SizeBand};
use crate::error::{Result, StorageError};
use crate::identifier::Identifier;
use crate::ids::{CustomerId, DepartmentId, UserId};
use crate::industry::Industry;
use crate::region::Region;
use crate::store::{CustomerFilter, CustomerStore};

/// The tags of a [`CustomerView`]: a record's set, or a store's list in name order.
///
/// ```
/// use guanxi_core::scan::TagsView;
/// let list = ["A".to_owned(), "VIP".to_owned()];
/// assert_eq!(TagsView::List(&list).iter().collect::<Vec<_>>(), ["A", "VIP"]);
/// assert_eq!(TagsView::List(&list).len(), 2);
/// ```
#[derive(Debug, Clone, Copy)]
pub enum TagsView<'a> {
    /// A record's tags.
    Set(&'a BTreeSet<String>),
    /// Tags read from a store, sorted by name.
    List(&'a [String]),
}

impl<'a> TagsView<'a> {
    /// The tag names, sorted.
    pub fn iter(self) -> impl Iterator<Item = &'a str> {
        let (set, list) = match self {
            TagsView::Set(s) => (Some(s.iter()), None),
            TagsView::List(l) => (None, Some(l.iter())),
        };
        set.into_iter().flatten().chain(list.into_iter().flatten()).map(String::as_str)
    }

    /// How many tags.
    pub fn len(self) -> usize {
        match self {
            TagsView::Set(s) => s.len(),
            TagsView::List(l) => l.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// A customer as a scan reads it: the fields of a [`Customer`], its text borrowed from the
/// store's row. A region's missing city or district is `None`, as are empty ones.
///
/// ```
/// use guanxi_core::scan::CustomerView;
/// let c = guanxi_core::testing::conformance::sample_customer(7);
/// let view = CustomerView::of(&c);
/// assert_eq!(view.name, c.name);
/// assert_eq!(view.to_customer().unwrap(), c);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CustomerView<'a> {
    /// Id.
    pub id: CustomerId,
    /// People-facing code.
    pub code: &'a str,
    /// Name.
    pub name: &'a str,
    /// Enterprise or individual.
    pub kind: CustomerKind,
    /// Industry section.
    pub industry: Option<Industry>,
    /// Size band.
    pub size: Option<SizeBand>,
    /// Source / channel.
    pub source: Option<&'a str>,
    /// Lifecycle status.
    pub status: LifecycleStatus,
    /// Level.
    pub level: Option<Level>,
    /// Province.
    pub province: Option<&'a str>,
    /// City.
    pub city: Option<&'a str>,
    /// District.
    pub district: Option<&'a str>,
    /// Street address.
    pub address: Option<&'a str>,
    /// Owner's user id.
    pub owner: Option<&'a str>,
    /// Department id.
    pub department: Option<&'a str>,
    /// Tag names, sorted.
    pub tags: TagsView<'a>,
    /// Custom field values by key.
    pub custom: &'a BTreeMap<String, CustomValue>,
    /// Identifiers, sorted.
    pub identifiers: &'a [Identifier],
    /// Who created it.
    pub created_by: &'a str,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who changed it last.
    pub updated_by: &'a str,
    /// When it was changed last.
    pub updated_at: DateTime<Utc>,
    /// Version.
    pub version: u64,
    /// When it was soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The survivor it was merged into.
    pub merged_into: Option<CustomerId>,
}

fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

/// A stored user or department id that no longer passes validation: the store is damaged.
fn stored<T>(field: &str, id: Result<T>) -> Result<T> {
    id.map_err(|e| StorageError::with_source(format!("stored customer {field} is not valid"), e).into())
}

impl<'a> CustomerView<'a> {
    /// A view of a record.
    pub fn of(c: &'a Customer) -> CustomerView<'a> {
        let region = c.region.as_ref();
        CustomerView {
            id: c.id,
            code: &c.code,
            name: &c.name,
            kind: c.kind,
            industry: c.industry,
            size: c.size,
            source: c.source.as_deref(),
            status: c.status,
            level: c.level,
            province: region.map(|r| r.province.as_str()),
            city: region.and_then(|r| non_empty(&r.city)),
            district: region.and_then(|r| non_empty(&r.district)),
            address: c.address.as_deref(),
            owner: c.owner.as_ref().map(UserId::as_str),
            department: c.department.as_ref().map(DepartmentId::as_str),
            tags: TagsView::Set(&c.tags),
            custom: &c.custom,
            identifiers: &c.identifiers,
            created_by: c.created_by.as_str(),
            created_at: c.created_at,
            updated_by: c.updated_by.as_str(),
            updated_at: c.updated_at,
            version: c.version,
            deleted_at: c.deleted_at,
            merged_into: c.merged_into,
        }
    }

    /// The record, with owned copies of every field; a user or department id the store holds
    /// that no longer validates is a storage error.
    pub fn to_customer(&self) -> Result<Customer> {
        Ok(Customer {
            id: self.id,
            code: self.code.to_owned(),
            name: self.name.to_owned(),
            kind: self.kind,
            industry: self.industry,
            size: self.size,
            source: self.source.map(str::to_owned),
            status: self.status,
            level: self.level,
            region: self.province.map(|p| Region {
                province: p.to_owned(),
                city: self.city.unwrap_or_default().to_owned(),
                district: self.district.unwrap_or_default().to_owned(),
            }),
            address: self.address.map(str::to_owned),
            owner: self.owner.map(|o| stored("owner", UserId::new(o))).transpose()?,
            department: self.department.map(|d| stored("department", DepartmentId::new(d))).transpose()?,
            tags: self.tags.iter().map(str::to_owned).collect(),
            custom: self.custom.clone(),
            identifiers: self.identifiers.to_vec(),
            created_by: stored("created_by", UserId::new(self.created_by))?,
            created_at: self.created_at,
            updated_by: stored("updated_by", UserId::new(self.updated_by))?,
            updated_at: self.updated_at,
            version: self.version,
            deleted_at: self.deleted_at,
            merged_into: self.merged_into,
        })
    }
}

/// What a customer scan calls for each row; an error it returns stops the scan and is the
/// scan's error.
pub type CustomerVisit<'v> = dyn FnMut(&CustomerView<'_>) -> Result<()> + Send + 'v;

/// A customer scan through pages of [`CustomerStore::list_customers`]: for stores whose rows
/// become records anyway. Returns how many rows were visited.
///
/// ```
/// use guanxi_core::prelude::*;
/// use guanxi_core::{CustomerFilter, MemoryStore, scan::scan_customers_by_pages};
/// let store = MemoryStore::new();
/// let mut names = Vec::new();
/// let n = scan_customers_by_pages(&store, &CustomerFilter::default(), &mut |c| {
///     names.push(c.name.to_owned());
///     Ok(())
/// })?;
/// assert_eq!((n, names.len()), (0, 0));
/// # Ok::<(), guanxi_core::Error>(())
/// ```
pub fn scan_customers_by_pages(
    store: &(impl CustomerStore + ?Sized),
    filter: &CustomerFilter,
    visit: &mut CustomerVisit<'_>,
) -> Result<u64> {
    let mut seen = 0u64;
    crate::store::walk(
        |page| store.list_customers(filter, page),
        |items| {
            for c in &items {
                visit(&CustomerView::of(c))?;
                seen += 1;
            }
            Ok(())
        },
    )?;
    Ok(seen)
}
