//! # guanxi-core
//!
//! The pure domain of guanxi (关系), an embeddable CRM: customers, contacts, tags,
//! interactions and custom fields, their validation and normalization, the change log, domain
//! events, and the storage contract ([`CrmStore`]) with an in-memory backend.
//!
//! This crate does no I/O of its own: time comes from an injected [`Clock`], storage from a
//! [`CrmStore`]. Applications use the `guanxi` crate, whose `Crm` facade wires these together.
//!
//! ```
//! use guanxi_core::{NewContact, NewCustomer, ValidationContext};
//! let errs = NewCustomer::new("")
//!     .contact(NewContact::new("张伟").phone("12345"))
//!     .validate(&ValidationContext::default())
//!     .unwrap_err();
//! // Every failure of the record is reported, each naming its field.
//! let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
//! assert_eq!(fields, ["name", "contacts[0].phones[0]"]);
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod macros;

// The scaffolding of the domain types' uniffi derives (Kotlin/Swift bindings only).
#[cfg(feature = "uniffi")]
uniffi::setup_scaffolding!();
#[cfg(feature = "uniffi")]
pub mod ffi;

pub mod access;
pub mod analytics;
pub mod changelog;
pub mod clock;
pub mod commerce;
pub mod contact;
pub mod custom_field;
pub mod customer;
pub mod dedup;
pub mod error;
pub mod event;
pub mod identifier;
pub mod ids;
pub mod industry;
pub mod interaction;
pub mod marketing;
pub mod normalize;
pub mod policy;
pub mod region;
pub mod sales;
pub mod scan;
pub mod service;
pub mod store;
pub mod tag;
#[cfg(feature = "testing")]
pub mod testing;
mod validate;

pub use access::{AccessModel, BuiltinRole, Department, RecordScope, Role, Scope, Scoped, User, Visibility};
pub use changelog::{AuditCheck, ChangeAction, ChangeLogEntry, ChangeLogQuery, FieldChange};
pub use clock::{Clock, FixedClock, IdGenerator, SystemClock};
pub use contact::{Contact, ContactPatch, DecisionRole, NewContact, ValidContact};
pub use custom_field::{CustomFieldDef, CustomFilter, CustomValue, FieldType, MAX_DECIMAL_SCALE};
pub use customer::{
    Customer, CustomerKind, CustomerPatch, Level, LevelRule, LifecycleStatus, NewCustomer, SizeBand, ValidCustomer,
    ValidationContext,
};
pub use error::{
    EncryptionError, EntityKind, Error, FieldError, Result, StorageError, UnknownName, ValidationErrors,
    ValidationReason,
};
pub use event::{DomainEvent, Event};
pub use identifier::{IdScheme, Identifier};
pub use ids::{
    ArticleId, ContactId, CustomerId, DepartmentId, EventId, InteractionId, LeadId, OpportunityId, ProductId,
    PurchaseId, RoleId, TaskId, TicketId, UserId,
};
pub use industry::Industry;
pub use interaction::{Attachment, Interaction, InteractionKind, NewInteraction};
pub use normalize::{Email, IdNumber, Phone};
pub use policy::{Action, Actor};
pub use region::{Region, RegionChange};
pub use scan::{CustomerView, TagsView};
pub use store::{
    AuditStore, Changes, CommerceStore, CrmStore, Cursor, CustomerFilter, CustomerStore, Deleted, DynStore, EventMove,
    InteractionMove, MemoryStore, Page, PageRequest, ReadThrough, SalesStore, ServiceStore, Setting, StoreReads,
    StoreView, StoreWrite, TagLink, TagWrite, TimelineEntry, TimelineItem, Write,
};
pub use tag::Tag;
pub use validate::limits;

/// The storage traits in one import, for code that calls a store directly.
///
/// ```
/// use guanxi_core::prelude::*;
/// let store = guanxi_core::MemoryStore::new();
/// assert_eq!(store.count_customers(&guanxi_core::CustomerFilter::default()).unwrap(), 0);
/// ```
pub mod prelude {
    pub use crate::store::{
        AuditStore, CommerceStore, CrmStore, CustomerStore, SalesStore, ServiceStore, StoreReads, StoreView, StoreWrite,
    };
}

// Re-exported so users name the same versions guanxi uses.
pub use chrono;
pub use rust_decimal;
pub use uuid;
