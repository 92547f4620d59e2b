//! # guanxi (关系)
//!
//! An embeddable CRM library: customers, contacts, tags, follow-ups (跟进记录), custom fields
//! and an append-only change log, kept in a SQLite file (or in memory), with validation of
//! Chinese mobile numbers, e-mail, regions and industries built in.
//!
//! Open a [`Crm`], act as a user, and every call validates, writes atomically with its
//! change-log entry, and notifies subscribers after commit:
//!
//! ```
//! use guanxi::{Actor, Crm, CustomerFilter, InteractionKind, NewContact, NewCustomer, NewInteraction, Region};
//!
//! let crm = Crm::in_memory(); // or Crm::open("crm.db")?
//! let alice = Actor::user("alice")?;
//! let huawei = crm.customers().create(
//!     &alice,
//!     NewCustomer::new("华为技术有限公司")
//!         .region(Region { province: "广东".into(), city: "深圳市".into(), district: "龙岗区".into() })
//!         .tag("VIP")
//!         .contact(NewContact::new("张伟").phone("138-1234-5678")),
//! )?;
//! crm.interactions().create(&alice, huawei.id, NewInteraction::new(InteractionKind::Visit, "现场演示"))?;
//!
//! let vips = crm.customers().list(&alice, &CustomerFilter::default().tag("VIP"), Default::default())?;
//! assert_eq!(vips.items[0].code, huawei.code);
//! assert_eq!(crm.contacts().list(&alice, huawei.id)?[0].phones[0].as_str(), "+8613812345678");
//! assert_eq!(crm.customers().timeline(&alice, huawei.id)?.len(), 3); // customer created, contact added, visit
//! # Ok::<(), guanxi::Error>(())
//! ```
//!
//! Errors are one enum, [`Error`]: a validation failure lists every bad field of the record
//! with a typed reason, and leaves the store unchanged.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod access_control;
mod analytics_facade;
mod audit;
pub mod auth;
mod columns;
mod commerce_facade;
mod commerce_import;
mod contacts;
mod crm;
mod customers;
mod dedup_facade;
mod elevation;
mod events;
mod export;
#[cfg(feature = "testing")]
pub mod fuzzing;
mod handles;
mod import;
mod marketing_facade;
mod merge_facade;
mod permission;
mod plumbing;
mod sales_facade;
mod saved_segments;
mod service_facade;
mod table;
mod write;

pub use analytics_facade::{CustomerValue, LifetimeValueOptions, LifetimeValueReport};
pub use columns::ImportField;
pub use commerce_facade::MAX_SYNC_BATCH;
pub use commerce_import::{CommerceImportOptions, CommerceImportReport};
pub use crm::{Crm, CrmBuilder, is_postgres_location, open_store};
pub use dedup_facade::{BlockingReport, CheckedCreate, OnDuplicate};
pub use elevation::{Credentials, ElevationProof, ElevationVerifier, MIN_PASSWORD_CHARS};
pub use events::SubscriptionId;
pub use export::ExportEntity;
pub use guanxi_core::*;
pub use guanxi_postgres::{PgOptions, PgStore};
pub use guanxi_sqlite::{Durability, FieldKey, SqliteOptions, SqliteStore};
pub use handles::{
    Access, Analytics, Audit, Commerce, Contacts, CustomFields, Customers, Duplicates, Events, Files, Interactions,
    KnowledgeBase, Leads, Marketing, Opportunities, Products, Purchases, Sales, Segments, Service, Tags, Tasks,
    Tickets,
};
pub use import::{
    DuplicatePolicy, ImportMode, ImportOptions, ImportPhase, ImportProgress, ImportReport, RowError, SkippedRow,
};
pub use marketing_facade::{MAX_EVENT_BATCH, PurgedEvents, RecordedEvents};
pub use merge_facade::{MergeOutcome, MergePlan};
pub use sales_facade::{ConvertLead, StageChange};
pub use saved_segments::Reevaluated;
pub use service_facade::{AssignTo, TicketMove, TicketReply};
pub use table::{FileFormat, ImportLimits};

/// The README's code examples, compiled and run as doctests so the quickstart stays true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
