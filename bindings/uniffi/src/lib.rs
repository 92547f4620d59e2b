//! Kotlin and Swift bindings of guanxi through uniffi proc-macros. No logic lives here: every
//! exported method converts its arguments, makes one call on the `guanxi::Crm` facade and
//! converts the result; errors map into one `CrmError` in one place.
#![allow(unreachable_pub, missing_docs)] // the public surface is the generated foreign API

use std::collections::HashMap;
use std::sync::Arc;

use guanxi::{Actor, CustomerId};

mod analytics;
mod commerce;
mod dedup;
mod events;
mod marketing;
mod sales;
mod service;

pub use dedup::{Duplicates, Files};
pub use events::Event;
pub use marketing::{BehaviourEvent, EventPage, Events, ExplainedNode, Marketing, RecordedEvents, Segments};
pub use sales::{Leads, Opportunities, Sales, Tasks};
pub use service::{KnowledgeBase, Service, Tickets};

uniffi::setup_scaffolding!();

// The foreign types of the domain's records, declared once in guanxi-core (its `ffi` module).
use guanxi_core::ffi::{DateTime, Day, Decimal, Uuid};
uniffi::use_remote_type!(guanxi_core::Uuid);
uniffi::use_remote_type!(guanxi_core::Decimal);
uniffi::use_remote_type!(guanxi_core::DateTime);
uniffi::use_remote_type!(guanxi_core::Day);

// guanxi-sqlite's own enum, exported as uniffi's remote types are: the compiler checks the
// variants against it.
type Durability = guanxi::Durability;

#[uniffi::remote(Enum)]
/// SQLite's commit durability: `Full` (the default: a commit is on disk when it returns) or
/// `Normal` (survives an application crash; the last commits may be lost on power failure, the
/// file is never corrupted; faster writes). PostgreSQL keeps the server's own.
pub enum Durability {
    Full,
    Normal,
}

// ----- errors -----

impl From<&guanxi::FieldError> for FieldError {
    fn from(f: &guanxi::FieldError) -> Self {
        FieldError { field: f.field.clone(), reason: f.reason.to_string(), allowed: f.reason.allowed().to_vec() }
    }
}

/// One failed field of a validation error.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FieldError {
    /// Path of the field, e.g. `name`, `contacts[0].phones[1]`, `custom.budget`.
    pub field: String,
    /// Why, as a sentence.
    pub reason: String,
    /// For a value outside a vocabulary, the values that are allowed there (else empty).
    pub allowed: Vec<String>,
}

/// Every guanxi failure (Kotlin `CrmException`, Swift `CrmError`). Fields are named `reason`,
/// never `message`, which Kotlin's Throwable already has.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum CrmError {
    #[error("{reason}")]
    NotFound { reason: String },
    #[error("{reason}")]
    Validation { field: String, reason: String, errors: Vec<FieldError> },
    #[error("{reason}")]
    Conflict { reason: String, expected: u64, actual: u64 },
    #[error("{reason}")]
    Duplicate { reason: String },
    #[error("{reason}")]
    PermissionDenied { action: String, reason: String },
    #[error("{reason}")]
    ElevationRequired { action: String, reason: String },
    #[error("{reason}")]
    Encryption { kind: String, reason: String },
    #[error("{reason}")]
    InvalidState { reason: String },
    #[error("{reason}")]
    Storage { reason: String },
    #[error("{reason}")]
    Other { reason: String },
}

impl From<guanxi::Error> for CrmError {
    fn from(e: guanxi::Error) -> Self {
        let reason = e.to_string();
        match e {
            guanxi::Error::Validation(v) => {
                let errors: Vec<FieldError> = v.iter().map(FieldError::from).collect();
                let field = errors.first().map(|f| f.field.clone()).unwrap_or_default();
                CrmError::Validation { field, reason, errors }
            }
            guanxi::Error::NotFound { .. } => CrmError::NotFound { reason },
            guanxi::Error::Conflict { expected, actual, .. } => CrmError::Conflict { reason, expected, actual },
            guanxi::Error::Duplicate { .. } => CrmError::Duplicate { reason },
            guanxi::Error::PermissionDenied { action, .. } => CrmError::PermissionDenied { action, reason },
            guanxi::Error::ElevationRequired { action, .. } => CrmError::ElevationRequired { action, reason },
            guanxi::Error::Encryption(kind) => {
                let kind = match kind {
                    guanxi::EncryptionError::WrongKey => "wrong_key",
                    guanxi::EncryptionError::KeyRequired => "key_required",
                    guanxi::EncryptionError::BadKeyLength(_) => "bad_key_length",
                    _ => "corrupt",
                };
                CrmError::Encryption { kind: kind.to_owned(), reason }
            }
            guanxi::Error::InvalidState(_) => CrmError::InvalidState { reason },
            guanxi::Error::Storage(_) => CrmError::Storage { reason },
            _ => CrmError::Other { reason },
        }
    }
}

type Result<T> = std::result::Result<T, CrmError>;

fn invalid(field: &str, reason: guanxi::ValidationReason) -> CrmError {
    guanxi::Error::invalid(field, reason).into()
}

/// Converts every input of a batch, each failure filed under `{list}[i]` and all of them
/// reported together (a conversion error other than validation stops at once).
fn convert_all<T, U>(list: &str, inputs: Vec<T>, convert: impl Fn(T) -> Result<U>) -> Result<Vec<U>> {
    let mut out = Vec::with_capacity(inputs.len());
    let mut errors = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        match convert(input) {
            Ok(v) => out.push(v),
            Err(CrmError::Validation { errors: e, .. }) => errors.extend(e.into_iter().map(|mut f| {
                f.field = format!("{list}[{i}].{}", f.field);
                f
            })),
            Err(e) => return Err(e),
        }
    }
    match errors.first() {
        None => Ok(out),
        Some(first) => {
            let field = first.field.clone();
            let reason = format!(
                "validation failed: {}",
                errors.iter().map(|f| format!("{}: {}", f.field, f.reason)).collect::<Vec<_>>().join("; ")
            );
            Err(CrmError::Validation { field, reason, errors })
        }
    }
}

// ----- paging -----

/// Where a page starts (`after`: the `next` of the previous page) and how many rows it holds
/// (1 to 10,000).
#[derive(Debug, Clone, uniffi::Record)]
pub struct PageRequest {
    #[uniffi(default = None)]
    pub after: Option<String>,
    #[uniffi(default = 100)]
    pub limit: u32,
}

impl PageRequest {
    fn into_core(self) -> Result<guanxi::PageRequest> {
        let mut errors = guanxi::ValidationErrors::default();
        let after = self.after.and_then(|a| match Uuid::parse_str(&a) {
            Ok(id) => Some(guanxi::Cursor::after(id)),
            Err(_) => {
                errors
                    .push("after", guanxi::ValidationReason::Invalid { detail: "is not a page's next cursor".into() });
                None
            }
        });
        if !(1..=10_000).contains(&self.limit) {
            errors.push("limit", guanxi::ValidationReason::Invalid { detail: "must be from 1 to 10000".into() });
        }
        Ok(errors.into_result(guanxi::PageRequest { after, limit: self.limit as usize })?)
    }
}

/// The cursor of the page after `page`, as text.
/// The builder with the level rule, when one is given.
fn with_level_rule(builder: guanxi::CrmBuilder, rule: Option<guanxi::LevelRule>) -> guanxi::CrmBuilder {
    match rule {
        Some(r) => builder.level_rule(r),
        None => builder,
    }
}

fn next_of<T>(page: &guanxi::Page<T>) -> Option<String> {
    page.next.as_ref().map(|c| c.last_id().to_string())
}

/// Declares the page record of a list: its rows and the cursor of the next page.
macro_rules! page {
    ($(#[$doc:meta])* $name:ident of $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, uniffi::Record)]
        pub struct $name {
            /// The rows, oldest first.
            pub items: Vec<$item>,
            /// Pass as `PageRequest.after` for the next page; null on the last.
            pub next: Option<String>,
        }

        impl<T: Into<$item>> From<guanxi::Page<T>> for $name {
            fn from(page: guanxi::Page<T>) -> Self {
                let next = next_of(&page);
                $name { items: page.items.into_iter().map(Into::into).collect(), next }
            }
        }
    };
}
pub(crate) use page;

page!(
    /// One page of customers.
    CustomerPage of Customer
);

// ----- vocabularies -----

// The vocabularies and records are guanxi-core's own types, derived there (feature `uniffi`).
pub use guanxi::{
    Action, ChangeAction, CustomerKind, DecisionRole, EntityKind, FieldType, InteractionKind, Level, LifecycleStatus,
    Scope, SizeBand, Visibility,
};
pub use guanxi::{Contact, CustomValue, Customer, Industry, Interaction, Region, Tag};

fn custom_in(m: HashMap<String, CustomValue>) -> std::collections::BTreeMap<String, guanxi::CustomValue> {
    m.into_iter().collect()
}

// ----- records -----

/// Input for a new contact.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewContact {
    pub name: String,
    #[uniffi(default = None)]
    pub title: Option<String>,
    #[uniffi(default = [])]
    pub phones: Vec<String>,
    #[uniffi(default = [])]
    pub emails: Vec<String>,
    #[uniffi(default = None)]
    pub id_number: Option<String>,
    #[uniffi(default = None)]
    pub role: Option<DecisionRole>,
    #[uniffi(default = false)]
    pub primary: bool,
    #[uniffi(default = false)]
    pub do_not_contact: bool,
}

impl From<NewContact> for guanxi::NewContact {
    fn from(c: NewContact) -> Self {
        guanxi::NewContact {
            name: c.name,
            title: c.title,
            phones: c.phones,
            emails: c.emails,
            id_number: c.id_number,
            role: c.role,
            primary: c.primary,
            do_not_contact: c.do_not_contact,
            custom: Default::default(),
        }
    }
}

/// Input for a new customer; everything but the name is optional.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewCustomer {
    pub name: String,
    #[uniffi(default = None)]
    pub kind: Option<CustomerKind>,
    #[uniffi(default = None)]
    pub industry: Option<Industry>,
    #[uniffi(default = None)]
    pub size: Option<SizeBand>,
    #[uniffi(default = None)]
    pub source: Option<String>,
    #[uniffi(default = None)]
    pub status: Option<LifecycleStatus>,
    #[uniffi(default = None)]
    pub province: Option<String>,
    #[uniffi(default = None)]
    pub city: Option<String>,
    #[uniffi(default = None)]
    pub district: Option<String>,
    #[uniffi(default = None)]
    pub address: Option<String>,
    #[uniffi(default = None)]
    pub owner: Option<String>,
    #[uniffi(default = [])]
    pub tags: Vec<String>,
    #[uniffi(default)]
    pub custom: HashMap<String, CustomValue>,
    /// Identity numbers and registration codes (统一社会信用代码, passport, …), each checked
    /// by its scheme.
    #[uniffi(default = [])]
    pub identifiers: Vec<guanxi::Identifier>,
    #[uniffi(default = [])]
    pub contacts: Vec<NewContact>,
}

fn region(province: Option<String>, city: Option<String>, district: Option<String>) -> Option<guanxi::Region> {
    if province.is_none() && city.is_none() && district.is_none() {
        return None;
    }
    Some(guanxi::Region {
        province: province.unwrap_or_default(),
        city: city.unwrap_or_default(),
        district: district.unwrap_or_default(),
    })
}

/// A user id from text, or a validation error on `field`.
fn user_id(field: &str, v: &str) -> Result<guanxi::UserId> {
    guanxi::UserId::new(v)
        .map_err(|_| invalid(field, guanxi::ValidationReason::Invalid { detail: "is not a valid user id".into() }))
}

/// A user id as text.
fn name_of(u: Option<guanxi::UserId>) -> Option<String> {
    u.map(|u| u.as_str().to_owned())
}

impl NewCustomer {
    fn into_core(self) -> Result<guanxi::NewCustomer> {
        Ok(guanxi::NewCustomer {
            name: self.name,
            kind: self.kind.unwrap_or_default(),
            industry: self.industry,
            size: self.size,
            source: self.source,
            status: self.status.unwrap_or_default(),
            level: None,
            region: region(self.province, self.city, self.district),
            address: self.address,
            owner: self.owner.map(guanxi::UserId::new).transpose()?,
            department: None,
            tags: self.tags,
            custom: custom_in(self.custom),
            identifiers: self.identifiers,
            contacts: self.contacts.into_iter().map(Into::into).collect(),
        })
    }
}

/// Changes to a customer: set fields are changed; names in `clear` are emptied
/// ("source", "address", "owner", "industry", "size", "region"); `custom` values are set and
/// `clear_custom` keys removed.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct CustomerPatch {
    #[uniffi(default = None)]
    pub name: Option<String>,
    #[uniffi(default = None)]
    pub status: Option<LifecycleStatus>,
    #[uniffi(default = None)]
    pub kind: Option<CustomerKind>,
    #[uniffi(default = None)]
    pub source: Option<String>,
    #[uniffi(default = None)]
    pub address: Option<String>,
    #[uniffi(default = None)]
    pub owner: Option<String>,
    #[uniffi(default = None)]
    pub province: Option<String>,
    #[uniffi(default = None)]
    pub city: Option<String>,
    #[uniffi(default = None)]
    pub district: Option<String>,
    #[uniffi(default = [])]
    pub clear: Vec<String>,
    #[uniffi(default)]
    pub custom: HashMap<String, CustomValue>,
    #[uniffi(default = [])]
    pub clear_custom: Vec<String>,
    /// The new identifier list, replacing the old one whole (an empty list clears it).
    #[uniffi(default = None)]
    pub identifiers: Option<Vec<guanxi::Identifier>>,
}

impl CustomerPatch {
    fn into_core(self) -> Result<guanxi::CustomerPatch> {
        let mut p = guanxi::CustomerPatch {
            name: self.name,
            status: self.status,
            kind: self.kind,
            source: self.source.map(Some),
            address: self.address.map(Some),
            owner: self.owner.map(guanxi::UserId::new).transpose()?.map(Some),
            region: region(self.province, self.city, self.district).map(Some),
            identifiers: self.identifiers,
            ..Default::default()
        };
        for field in &self.clear {
            match field.as_str() {
                "source" => p.source = Some(None),
                "address" => p.address = Some(None),
                "owner" => p.owner = Some(None),
                "industry" => p.industry = Some(None),
                "size" => p.size = Some(None),
                "region" => p.region = Some(None),
                other => {
                    return Err(invalid(
                        other,
                        guanxi::ValidationReason::Invalid { detail: "cannot be cleared".into() },
                    ));
                }
            }
        }
        p.custom = self.custom.into_iter().map(|(k, v)| (k, Some(v))).collect();
        p.custom.extend(self.clear_custom.into_iter().map(|k| (k, None)));
        Ok(p)
    }
}

/// Conditions on a customer list; all combine with AND.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct CustomerFilter {
    #[uniffi(default = None)]
    pub status: Option<LifecycleStatus>,
    #[uniffi(default = None)]
    pub kind: Option<CustomerKind>,
    #[uniffi(default = None)]
    pub owner: Option<String>,
    #[uniffi(default = [])]
    pub tags: Vec<String>,
    #[uniffi(default = None)]
    pub province: Option<String>,
    #[uniffi(default = None)]
    pub city: Option<String>,
    #[uniffi(default = None)]
    pub name_contains: Option<String>,
    #[uniffi(default)]
    pub custom: HashMap<String, CustomValue>,
    /// A GB/T 4754 section: its name ("manufacturing"), Chinese name or letter.
    #[uniffi(default = None)]
    pub industry: Option<Industry>,
    #[uniffi(default = None)]
    pub size: Option<SizeBand>,
    #[uniffi(default = None)]
    pub level: Option<Level>,
    #[uniffi(default = None)]
    pub department: Option<String>,
    #[uniffi(default = None)]
    pub district: Option<String>,
}

impl CustomerFilter {
    fn into_core(self) -> Result<guanxi::CustomerFilter> {
        let mut f = guanxi::CustomerFilter {
            status: self.status,
            kind: self.kind,
            owner: self.owner.map(guanxi::UserId::new).transpose()?,
            name_contains: self.name_contains,
            custom: self.custom.into_iter().map(|(k, v)| guanxi::CustomFilter::new(k, v)).collect(),
            industry: self.industry,
            size: self.size,
            level: self.level,
            department: self.department.map(guanxi::DepartmentId::new).transpose()?,
            district: self.district.as_deref().map(guanxi::normalize::fold_text),
            ..Default::default()
        };
        for t in &self.tags {
            f = f.tag(t);
        }
        if let Some(p) = &self.province {
            f = f.province(p);
        }
        if let Some(c) = &self.city {
            f = f.city(c);
        }
        Ok(f)
    }
}

/// Changes to a contact; unset fields stay as they are. `clear_title` / `clear_role` empty them.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct ContactPatch {
    #[uniffi(default = None)]
    pub name: Option<String>,
    #[uniffi(default = None)]
    pub title: Option<String>,
    #[uniffi(default = false)]
    pub clear_title: bool,
    #[uniffi(default = None)]
    pub phones: Option<Vec<String>>,
    #[uniffi(default = None)]
    pub emails: Option<Vec<String>>,
    #[uniffi(default = None)]
    pub id_number: Option<String>,
    #[uniffi(default = false)]
    pub clear_id_number: bool,
    #[uniffi(default = None)]
    pub role: Option<DecisionRole>,
    #[uniffi(default = false)]
    pub clear_role: bool,
    #[uniffi(default = None)]
    pub do_not_contact: Option<bool>,
}

impl From<ContactPatch> for guanxi::ContactPatch {
    fn from(p: ContactPatch) -> Self {
        guanxi::ContactPatch {
            name: p.name,
            title: if p.clear_title { Some(None) } else { p.title.map(Some) },
            phones: p.phones,
            emails: p.emails,
            id_number: if p.clear_id_number { Some(None) } else { p.id_number.map(Some) },
            role: if p.clear_role { Some(None) } else { p.role.map(Some) },
            do_not_contact: p.do_not_contact,
            custom: Default::default(),
        }
    }
}

/// One item of a customer's timeline: a change or an interaction.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TimelineEntry {
    pub at: DateTime,
    pub change: Option<ChangeLogEntry>,
    pub interaction: Option<Interaction>,
}

/// Input for a new interaction.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewInteraction {
    pub kind: InteractionKind,
    pub content: String,
    #[uniffi(default = None)]
    pub at: Option<DateTime>,
    #[uniffi(default = None)]
    pub contact_id: Option<Uuid>,
    #[uniffi(default = None)]
    pub next_step: Option<String>,
    #[uniffi(default = None)]
    pub next_contact_on: Option<Day>,
    #[uniffi(default = None)]
    pub feedback: Option<String>,
}

/// A custom field definition.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct CustomField {
    /// Customer or contact.
    pub entity: EntityKind,
    pub key: String,
    pub label: String,
    pub field_type: FieldType,
    #[uniffi(default = false)]
    pub required: bool,
    #[uniffi(default = [])]
    pub allowed_values: Vec<String>,
}

fn custom_field_out(d: guanxi::CustomFieldDef) -> CustomField {
    CustomField {
        entity: d.entity,
        key: d.key,
        label: d.label,
        field_type: d.field_type,
        required: d.required,
        allowed_values: d.allowed_values,
    }
}

/// One change of a change-log entry: the field's value before and after (null: had none).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<LoggedValue>,
    pub new: Option<LoggedValue>,
}

/// A value as the change log recorded it: the log keeps any field of any record, so a value
/// is a text, number, flag, list or object (a region, a product line), typed as such.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum LoggedValue {
    Null,
    Bool {
        value: bool,
    },
    /// Exact, as text (a decimal keeps its digits).
    Number {
        value: String,
    },
    Text {
        value: String,
    },
    /// A list (tags, phones, product lines, …).
    Items {
        items: Vec<LoggedValue>,
    },
    /// An object (a region, a product line), field by field.
    Fields {
        fields: HashMap<String, LoggedValue>,
    },
}

impl From<serde_json::Value> for LoggedValue {
    fn from(v: serde_json::Value) -> Self {
        use serde_json::Value as J;
        match v {
            J::Null => LoggedValue::Null,
            J::Bool(value) => LoggedValue::Bool { value },
            J::Number(n) => LoggedValue::Number { value: n.to_string() },
            J::String(value) => LoggedValue::Text { value },
            J::Array(items) => LoggedValue::Items { items: items.into_iter().map(Into::into).collect() },
            J::Object(fields) => {
                LoggedValue::Fields { fields: fields.into_iter().map(|(k, v)| (k, v.into())).collect() }
            }
        }
    }
}

/// A change-log entry.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ChangeLogEntry {
    pub seq: u64,
    pub at: DateTime,
    pub user: String,
    pub entity: EntityKind,
    pub entity_id: String,
    pub action: ChangeAction,
    pub changes: Vec<FieldChange>,
}

impl From<guanxi::ChangeLogEntry> for ChangeLogEntry {
    fn from(e: guanxi::ChangeLogEntry) -> Self {
        ChangeLogEntry {
            seq: e.seq,
            at: e.at,
            user: e.actor.to_string(),
            entity: e.entity,
            entity_id: e.entity_id,
            action: e.action,
            changes: e
                .changes
                .into_iter()
                .map(|c| FieldChange { field: c.field, old: c.old.map(Into::into), new: c.new.map(Into::into) })
                .collect(),
        }
    }
}

/// The result of checking the change log's hash chain.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct AuditCheck {
    pub entries: u64,
    /// Hash of the last entry: keep it elsewhere to detect truncation later.
    pub head: Option<String>,
    pub intact: bool,
    pub broken_at: Option<u64>,
    pub reason: Option<String>,
}

impl From<guanxi::AuditCheck> for AuditCheck {
    fn from(c: guanxi::AuditCheck) -> Self {
        AuditCheck { entries: c.entries, intact: c.is_intact(), head: c.head, broken_at: c.broken_at, reason: c.reason }
    }
}

/// Restores a backup into `into` (close every handle on it first) after checking the backup's
/// audit chain; a broken chain is refused. `into` is a new SQLite file or a PostgreSQL
/// connection string (its guanxi schema must hold no data yet); `fieldKey` (32 bytes) reads a
/// backup whose fields are encrypted.
#[uniffi::export(default(field_key = None))]
pub fn restore_backup(backup: String, into: String, field_key: Option<Vec<u8>>) -> Result<AuditCheck> {
    let key = field_key.map(|k| guanxi::FieldKey::from_bytes(&k)).transpose()?;
    Ok(guanxi::Crm::restore_with_key(std::path::Path::new(&backup), std::path::Path::new(&into), key)?.into())
}

/// The HMAC of a TOTP generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum TotpAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

fn totp(secret_base32: &str, digits: u8, algorithm: TotpAlgorithm) -> Result<guanxi::auth::Totp> {
    let algorithm = match algorithm {
        TotpAlgorithm::Sha1 => guanxi::auth::TotpAlgorithm::Sha1,
        TotpAlgorithm::Sha256 => guanxi::auth::TotpAlgorithm::Sha256,
        TotpAlgorithm::Sha512 => guanxi::auth::TotpAlgorithm::Sha512,
    };
    Ok(guanxi::auth::Totp::from_base32(secret_base32, algorithm, digits)?)
}

/// Hashes a password with argon2id into a PHC string.
#[uniffi::export]
pub fn hash_password(password: String) -> Result<String> {
    Ok(guanxi::auth::hash_password(&password)?)
}

/// Whether a password matches a PHC hash from `hash_password`.
#[uniffi::export]
pub fn verify_password(password: String, password_hash: String) -> Result<bool> {
    Ok(guanxi::auth::verify_password(&password, &password_hash)?)
}

/// A new random TOTP secret, base32.
#[uniffi::export]
pub fn generate_totp_secret() -> String {
    guanxi::auth::Totp::generate_secret()
}

/// The RFC 6238 code for the 30-second step containing `at`.
#[uniffi::export]
pub fn totp_code(secret_base32: String, at: DateTime, digits: u8, algorithm: TotpAlgorithm) -> Result<String> {
    Ok(totp(&secret_base32, digits, algorithm)?.code_at(at))
}

/// Whether `code` is right at `at`, allowing `drift_steps` steps of drift either way.
#[uniffi::export]
pub fn verify_totp(
    secret_base32: String,
    code: String,
    at: DateTime,
    digits: u8,
    algorithm: TotpAlgorithm,
    drift_steps: u8,
) -> Result<bool> {
    Ok(totp(&secret_base32, digits, algorithm)?.verify(&code, at, drift_steps))
}

/// What a user presents to be elevated.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ElevationProof {
    /// The user's password.
    Password { password: String },
    /// A current code of the user's TOTP authenticator.
    Totp { code: String },
    /// What the host's `ElevationVerifier` checks.
    Host { token: String },
}

/// Which credentials a user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct Credentials {
    /// A password is set.
    pub password: bool,
    /// A TOTP authenticator is enrolled.
    pub totp: bool,
}

/// The host's own check of a user for `ElevationProof.Host` (its identity provider, a
/// biometric prompt, …): true when `token` re-verifies `user` now.
#[uniffi::export(callback_interface)]
pub trait ElevationVerifier: Send + Sync {
    /// Whether `token` re-verifies `user`.
    fn verify(&self, user: String, token: String) -> bool;
}

/// A foreign verifier as the facade's.
struct ForeignVerifier(Box<dyn ElevationVerifier>);

impl std::fmt::Debug for ForeignVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForeignVerifier")
    }
}

impl guanxi::ElevationVerifier for ForeignVerifier {
    fn verify(&self, user: &guanxi::UserId, proof: &str) -> guanxi::Result<bool> {
        Ok(self.0.verify(user.to_string(), proof.to_owned()))
    }
}

fn elevation_options(
    builder: guanxi::CrmBuilder,
    trust_asserted: bool,
    verifier: Option<Box<dyn ElevationVerifier>>,
) -> guanxi::CrmBuilder {
    let builder = builder.trust_asserted_elevation(trust_asserted);
    match verifier {
        Some(v) => builder.elevation_verifier(Arc::new(ForeignVerifier(v))),
        None => builder,
    }
}

/// Receives events after their change commits (a Kotlin or Swift object).
#[uniffi::export(callback_interface)]
pub trait EventListener: Send + Sync {
    fn on_event(&self, event: Event);
}

// ----- access control -----

/// Actions `actions` ("read", "create", …) on `entity` at `scope` ("own", "department",
/// "region", "all").
#[derive(Debug, Clone, uniffi::Record)]
pub struct Grant {
    pub entity: EntityKind,
    pub actions: Vec<Action>,
    pub scope: Scope,
}

/// A field a role sees "masked" or "hidden".
#[derive(Debug, Clone, uniffi::Record)]
pub struct FieldRule {
    pub entity: EntityKind,
    pub field: String,
    pub visibility: Visibility,
}

/// A custom role.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub grants: Vec<Grant>,
    pub fields: Vec<FieldRule>,
}

/// A department of the tree.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Department {
    pub id: String,
    pub name: String,
    pub parent: Option<String>,
}

/// A user of the CRM: roles are built-in ("sales_rep", "sales_manager", "customer_service",
/// "marketing", "administrator") or custom ids; regions are provinces or areas (华东…).
#[derive(Debug, Clone, uniffi::Record)]
pub struct User {
    pub id: String,
    pub name: String,
    pub department: Option<String>,
    pub roles: Vec<String>,
    pub regions: Vec<String>,
    pub active: bool,
}

/// Departments, users and custom roles.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AccessModel {
    pub version: u64,
    pub departments: Vec<Department>,
    pub users: Vec<User>,
    pub roles: Vec<Role>,
}

/// Whether an action is allowed, and why.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Decision {
    pub allowed: bool,
    pub reasons: Vec<String>,
}

impl Role {
    fn into_core(self) -> Result<guanxi::Role> {
        let mut role = guanxi::Role::new(&self.id, &self.name)?;
        for g in self.grants {
            let actions: Vec<guanxi::Action> = g.actions.into_iter().collect();
            role = role.grant(g.entity, &actions, g.scope);
        }
        for f in self.fields {
            role = role.field(f.entity, &f.field, f.visibility);
        }
        Ok(role)
    }
}

impl From<&guanxi::Role> for Role {
    fn from(r: &guanxi::Role) -> Self {
        Role {
            id: r.id.to_string(),
            name: r.name.clone(),
            grants: r
                .grants
                .iter()
                .map(|g| Grant { entity: g.entity, actions: g.actions.iter().copied().collect(), scope: g.scope })
                .collect(),
            fields: r
                .fields
                .iter()
                .map(|f| FieldRule { entity: f.entity, field: f.field.clone(), visibility: f.visibility })
                .collect(),
        }
    }
}

impl User {
    fn into_core(self) -> Result<guanxi::User> {
        let mut u = guanxi::User::new(&self.id, &self.name)?;
        u.department = self.department.map(guanxi::DepartmentId::new).transpose()?;
        u.roles = self.roles.into_iter().map(guanxi::RoleId::new).collect::<guanxi::Result<_>>()?;
        u.regions = self.regions.into_iter().collect();
        u.active = self.active;
        Ok(u)
    }
}

impl From<guanxi::AccessModel> for AccessModel {
    fn from(m: guanxi::AccessModel) -> Self {
        AccessModel {
            version: m.version,
            departments: m
                .departments
                .values()
                .map(|d| Department {
                    id: d.id.to_string(),
                    name: d.name.clone(),
                    parent: d.parent.as_ref().map(ToString::to_string),
                })
                .collect(),
            users: m
                .users
                .values()
                .map(|u| User {
                    id: u.id.to_string(),
                    name: u.name.clone(),
                    department: u.department.as_ref().map(ToString::to_string),
                    roles: u.roles.iter().map(ToString::to_string).collect(),
                    regions: u.regions.iter().cloned().collect(),
                    active: u.active,
                })
                .collect(),
            roles: m.roles.values().map(Role::from).collect(),
        }
    }
}

/// A fresh random 32-byte key for field encryption (keep it in the platform keychain).
#[uniffi::export]
pub fn generate_field_key() -> Vec<u8> {
    guanxi::FieldKey::generate().as_bytes().to_vec()
}

/// Declares a handle: a view of the CRM, as one user, for one noun (`crm.customers()`), with
/// the same verbs as the Rust handle of that name.
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(uniffi::Object)]
        pub struct $name {
            pub(crate) inner: std::sync::Arc<guanxi::Crm>,
            pub(crate) actor: guanxi::Actor,
        }
    };
}
pub(crate) use handle;

// ----- the handle -----

/// An open CRM acting as one user. Kotlin: close it with `use { }`; Swift: released by ARC.
#[derive(uniffi::Object)]
pub struct Crm {
    inner: Arc<guanxi::Crm>,
    actor: Actor,
}

fn id(u: Uuid) -> CustomerId {
    CustomerId(u)
}

#[uniffi::export]
impl Crm {
    /// Opens (or creates) a SQLite database file, or connects to a PostgreSQL server when
    /// `path` is a `postgresql://` URL or a libpq string (`host=… dbname=…`), acting as `user`.
    #[uniffi::constructor]
    pub fn open(path: String, user: String) -> Result<Arc<Self>> {
        Ok(Arc::new(Crm { inner: Arc::new(guanxi::Crm::open(path)?), actor: Actor::user(&user)? }))
    }

    /// A CRM kept in memory, acting as `user`.
    #[uniffi::constructor]
    pub fn in_memory(user: String) -> Result<Arc<Self>> {
        Ok(Arc::new(Crm { inner: Arc::new(guanxi::Crm::in_memory()), actor: Actor::user(&user)? }))
    }

    /// Opens a SQLite file, or connects to PostgreSQL (as `open`), with contacts' sensitive
    /// fields encrypted at rest under `field_key` (32 bytes); a wrong key is
    /// `CrmError.Encryption` with kind "wrong_key".
    #[uniffi::constructor]
    pub fn open_encrypted(path: String, user: String, field_key: Vec<u8>) -> Result<Arc<Self>> {
        let store = guanxi::open_store(&path, Some(guanxi::FieldKey::from_bytes(&field_key)?), Default::default())?;
        Ok(Arc::new(Crm { inner: Arc::new(guanxi::Crm::builder().store(store).build()), actor: Actor::user(&user)? }))
    }

    #[uniffi::constructor(default(
        field_key = None,
        durability = None,
        trust_asserted_elevation = false,
        elevation_verifier = None,
        level_rule = None
    ))]
    /// Opens (or creates) a SQLite file, or connects to PostgreSQL (as `open`), acting as
    /// `user`, with explicit options: a field key (32 bytes) to encrypt contacts' phones at
    /// rest, SQLite's commit `durability` (null: `Full`), whether asserted elevations count
    /// (`trustAssertedElevation`, for hosts that re-verify users themselves), and the host's
    /// own elevation verifier (for `ElevationProof.Host`), and the `levelRule` that keeps a
    /// customer's level at its trailing-12-month spend once purchases are recorded.
    pub fn open_with(
        path: String,
        user: String,
        field_key: Option<Vec<u8>>,
        durability: Option<Durability>,
        trust_asserted_elevation: bool,
        elevation_verifier: Option<Box<dyn ElevationVerifier>>,
        level_rule: Option<guanxi::LevelRule>,
    ) -> Result<Arc<Self>> {
        let key = field_key.map(|k| guanxi::FieldKey::from_bytes(&k)).transpose()?;
        let store = guanxi::open_store(&path, key, durability.unwrap_or_default())?;
        let builder = with_level_rule(guanxi::Crm::builder().store(store), level_rule);
        let crm = elevation_options(builder, trust_asserted_elevation, elevation_verifier);
        Ok(Arc::new(Crm { inner: Arc::new(crm.build()), actor: Actor::user(&user)? }))
    }

    /// A CRM kept in memory, with the elevation options and level rule of `openWith`.
    #[uniffi::constructor(default(trust_asserted_elevation = false, elevation_verifier = None, level_rule = None))]
    pub fn in_memory_with(
        user: String,
        trust_asserted_elevation: bool,
        elevation_verifier: Option<Box<dyn ElevationVerifier>>,
        level_rule: Option<guanxi::LevelRule>,
    ) -> Result<Arc<Self>> {
        let builder = with_level_rule(guanxi::Crm::builder(), level_rule);
        let crm = elevation_options(builder, trust_asserted_elevation, elevation_verifier);
        Ok(Arc::new(Crm { inner: Arc::new(crm.build()), actor: Actor::user(&user)? }))
    }

    /// The same CRM acting as another user.
    pub fn as_user(&self, user: String) -> Result<Arc<Crm>> {
        Ok(Arc::new(Crm { inner: self.inner.clone(), actor: Actor::user(&user)? }))
    }

    /// The same CRM and user, with an elevation the host *asserts* until `until`. It counts
    /// only in a CRM opened with `trustAssertedElevation` (a host that re-verifies users
    /// itself); otherwise use `elevate`.
    pub fn elevated(&self, until: DateTime) -> Arc<Crm> {
        Arc::new(Crm { inner: self.inner.clone(), actor: self.actor.clone().elevated_until(until) })
    }

    /// create, read, list, count, update, delete and restore customers.
    pub fn customers(&self) -> Arc<Customers> {
        Arc::new(Customers { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// define tags and put them on customers.
    pub fn tags(&self) -> Arc<Tags> {
        Arc::new(Tags { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// the people of each customer.
    pub fn contacts(&self) -> Arc<Contacts> {
        Arc::new(Contacts { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// calls, visits and other follow-ups.
    pub fn interactions(&self) -> Arc<Interactions> {
        Arc::new(Interactions { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// the fields a deployment adds to customers and contacts.
    pub fn custom_fields(&self) -> Arc<CustomFields> {
        Arc::new(CustomFields { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// the change log and the check of its hash chain.
    pub fn audit(&self) -> Arc<Audit> {
        Arc::new(Audit { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// departments, users, roles, credentials, elevation, `explain`, the field key.
    pub fn access(&self) -> Arc<Access> {
        Arc::new(Access { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// import, streamed export, backups.
    pub fn files(&self) -> Arc<Files> {
        Arc::new(Files { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// the check, the scan, not-duplicate marks, merge and undo.
    pub fn duplicates(&self) -> Arc<Duplicates> {
        Arc::new(Duplicates { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// purchase summaries, RFM and lifetime value over the purchases the user may read.
    pub fn analytics(&self) -> Arc<analytics::Analytics> {
        analytics::analytics(self.inner.clone(), self.actor.clone())
    }

    /// the product catalog and purchases; `products()`, `purchases()`, and their imports.
    pub fn commerce(&self) -> Arc<commerce::Commerce> {
        Arc::new(commerce::Commerce { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// behaviour events and segments; `events()`, `segments()`.
    pub fn marketing(&self) -> Arc<Marketing> {
        Arc::new(Marketing { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// pipelines, lead rules, the sales report, the agenda; `opportunities()`, `leads()`, `tasks()`.
    pub fn sales(&self) -> Arc<Sales> {
        Arc::new(Sales { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// the service settings, the SLA overview, the service report; `tickets()`.
    pub fn service(&self) -> Arc<Service> {
        Arc::new(Service { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// articles, ranked search, suggestions for a ticket.
    pub fn kb(&self) -> Arc<KnowledgeBase> {
        Arc::new(KnowledgeBase { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// The acting user.
    pub fn user(&self) -> String {
        self.actor.user_id().to_string()
    }

    /// Delivers every committed event to `listener`; returns an id for `unsubscribe`.
    pub fn subscribe(&self, listener: Box<dyn EventListener>) -> u64 {
        self.inner.subscribe(move |e| listener.on_event(e.into())).get()
    }

    /// Stops a subscription; false if it was not active.
    pub fn unsubscribe(&self, subscription: u64) -> bool {
        self.inner.unsubscribe(guanxi::SubscriptionId::from_raw(subscription))
    }
}

handle! {
    /// `crm.customers()`: create, read, list, count, update, delete and restore customers.
    Customers
}

#[uniffi::export]
impl Customers {
    /// Every customer matching `filter` the user may export, masked, logged; needs elevation.
    pub fn export(&self, filter: CustomerFilter) -> Result<Vec<Customer>> {
        let rows = self.inner.customers().export(&self.actor, &filter.into_core()?)?;
        Ok(rows.into_iter().collect())
    }

    /// Checks a new customer as `create` would (permission and every field), writing nothing.
    pub fn check(&self, input: NewCustomer) -> Result<()> {
        Ok(self.inner.customers().check(&self.actor, input.into_core()?)?)
    }

    /// Creates a customer (with its contacts) and returns it.
    pub fn create(&self, input: NewCustomer) -> Result<Customer> {
        Ok(self.inner.customers().create(&self.actor, input.into_core()?)?)
    }

    /// Creates many customers in one transaction: all of them or, on any failure, none. Every
    /// bad field of every input is reported together, under `customers[i].<field>`.
    pub fn create_many(&self, inputs: Vec<NewCustomer>) -> Result<Vec<Customer>> {
        let inputs = convert_all("customers", inputs, NewCustomer::into_core)?;
        Ok(self.inner.customers().create_many(&self.actor, inputs)?)
    }

    /// A customer by id.
    pub fn get(&self, id: Uuid) -> Result<Customer> {
        Ok(self.inner.customers().get(&self.actor, CustomerId(id))?)
    }

    /// A customer by its code, e.g. "C20240501001".
    pub fn get_by_code(&self, code: String) -> Result<Customer> {
        Ok(self.inner.customers().get_by_code(&self.actor, &code)?)
    }

    /// Changes the fields the patch sets; a stale `version` is a Conflict.
    pub fn update(&self, id: Uuid, version: u64, patch: CustomerPatch) -> Result<Customer> {
        Ok(self.inner.customers().update(&self.actor, CustomerId(id), version, patch.into_core()?)?)
    }

    /// Soft-deletes a customer.
    pub fn delete(&self, id: Uuid, version: u64) -> Result<Customer> {
        Ok(self.inner.customers().delete(&self.actor, CustomerId(id), version)?)
    }

    /// Restores a soft-deleted customer.
    pub fn restore(&self, id: Uuid, version: u64) -> Result<Customer> {
        Ok(self.inner.customers().restore(&self.actor, CustomerId(id), version)?)
    }

    /// One page of the customers matching `filter`, oldest first.
    pub fn list(&self, filter: CustomerFilter, page: PageRequest) -> Result<CustomerPage> {
        Ok(self.inner.customers().list(&self.actor, &filter.into_core()?, page.into_core()?)?.into())
    }

    /// Every customer matching `filter`, oldest first.
    pub fn list_all(&self, filter: CustomerFilter) -> Result<Vec<Customer>> {
        Ok(self.inner.customers().list_all(&self.actor, &filter.into_core()?)?.into_iter().collect())
    }

    /// How many customers match `filter`.
    pub fn count(&self, filter: CustomerFilter) -> Result<u64> {
        Ok(self.inner.customers().count(&self.actor, &filter.into_core()?)?)
    }

    /// Everything that happened to a customer, oldest first.
    pub fn timeline(&self, customer: Uuid) -> Result<Vec<TimelineEntry>> {
        Ok(self
            .inner
            .customers()
            .timeline(&self.actor, id(customer))?
            .into_iter()
            .map(|e| match e.item {
                guanxi::TimelineItem::Change(c) => {
                    TimelineEntry { at: e.at, change: Some(c.into()), interaction: None }
                }
                guanxi::TimelineItem::Interaction(i) => TimelineEntry { at: e.at, change: None, interaction: Some(i) },
                _ => TimelineEntry { at: e.at, change: None, interaction: None },
            })
            .collect())
    }
}

handle! {
    /// `crm.tags()`: define tags and put them on customers.
    Tags
}

#[uniffi::export]
impl Tags {
    /// Puts a tag on a customer (the tag is created if new).
    pub fn add(&self, customer: Uuid, tag: String) -> Result<Customer> {
        Ok(self.inner.tags().add(&self.actor, id(customer), &tag)?)
    }

    /// Takes a tag off a customer.
    pub fn remove(&self, customer: Uuid, tag: String) -> Result<Customer> {
        Ok(self.inner.tags().remove(&self.actor, id(customer), &tag)?)
    }

    /// Defines a tag (or moves it to another group).
    pub fn create(&self, name: String, group: Option<String>) -> Result<Tag> {
        Ok(self.inner.tags().create(&self.actor, &name, group.as_deref())?)
    }

    /// Every tag, by group then name.
    pub fn list(&self) -> Result<Vec<Tag>> {
        Ok(self.inner.tags().list(&self.actor)?.into_iter().collect())
    }
}

handle! {
    /// `crm.contacts()`: the people of each customer.
    Contacts
}

#[uniffi::export]
impl Contacts {
    /// The live contacts with this phone number the user may read (the duplicate check).
    pub fn find_by_phone(&self, phone: String) -> Result<Vec<Contact>> {
        Ok(self.inner.contacts().find_by_phone(&self.actor, &phone)?.into_iter().collect())
    }

    /// The live contacts with this resident identity number the user may read.
    pub fn find_by_id_number(&self, id_number: String) -> Result<Vec<Contact>> {
        Ok(self.inner.contacts().find_by_id_number(&self.actor, &id_number)?.into_iter().collect())
    }

    /// Adds a contact to a customer; the first is primary unless another says so.
    pub fn create(&self, customer: Uuid, contact: NewContact) -> Result<Contact> {
        Ok(self.inner.contacts().create(&self.actor, id(customer), contact.into())?)
    }

    /// Changes the fields the patch sets; a stale `version` is a Conflict.
    pub fn update(&self, contact: Uuid, version: u64, patch: ContactPatch) -> Result<Contact> {
        Ok(self.inner.contacts().update(&self.actor, guanxi::ContactId(contact), version, patch.into())?)
    }

    /// Makes a contact its customer's primary contact.
    pub fn set_primary(&self, contact: Uuid) -> Result<Contact> {
        Ok(self.inner.contacts().set_primary(&self.actor, guanxi::ContactId(contact))?)
    }

    /// Removes a contact (the oldest remaining one becomes primary if it was).
    pub fn delete(&self, contact: Uuid, version: u64) -> Result<()> {
        Ok(self.inner.contacts().delete(&self.actor, guanxi::ContactId(contact), version)?)
    }

    /// The live contacts of a customer, primary first.
    pub fn list(&self, customer: Uuid) -> Result<Vec<Contact>> {
        Ok(self.inner.contacts().list(&self.actor, id(customer))?.into_iter().collect())
    }
}

handle! {
    /// `crm.interactions()`: calls, visits and other follow-ups.
    Interactions
}

#[uniffi::export]
impl Interactions {
    /// Logs an interaction with a customer.
    pub fn create(&self, customer: Uuid, input: NewInteraction) -> Result<Interaction> {
        let mut core = guanxi::NewInteraction::new(input.kind, input.content);
        core.at = input.at;
        core.contact_id = input.contact_id.map(guanxi::ContactId);
        core.next_step = input.next_step;
        core.next_contact_on = input.next_contact_on;
        core.feedback = input.feedback;
        Ok(self.inner.interactions().create(&self.actor, id(customer), core)?)
    }

    /// The interactions of a customer, oldest first.
    pub fn list(&self, customer: Uuid) -> Result<Vec<Interaction>> {
        Ok(self.inner.interactions().list(&self.actor, id(customer))?.into_iter().collect())
    }
}

handle! {
    /// `crm.customFields()`: the fields a deployment adds to customers and contacts.
    CustomFields
}

#[uniffi::export]
impl CustomFields {
    /// The custom fields of customers or contacts.
    pub fn list(&self, entity: EntityKind) -> Result<Vec<CustomField>> {
        let defs = self.inner.custom_fields().list(&self.actor, entity)?;
        Ok(defs.into_iter().map(custom_field_out).collect())
    }

    /// Defines a custom field of customers or contacts.
    pub fn create(&self, field: CustomField) -> Result<CustomField> {
        let mut def = guanxi::CustomFieldDef::new(field.entity, &field.key, &field.label, field.field_type);
        def.required = field.required;
        def.allowed_values = field.allowed_values;
        Ok(custom_field_out(self.inner.custom_fields().create(&self.actor, def)?))
    }
}

handle! {
    /// `crm.audit()`: the change log and the check of its hash chain.
    Audit
}

#[uniffi::export]
impl Audit {
    /// Checks the change log's hash chain (edits, removals, insertions, reordering).
    pub fn verify(&self) -> Result<AuditCheck> {
        Ok(self.inner.audit().verify(&self.actor)?.into())
    }

    /// Change-log entries, oldest first; pass an id to see one record's history.
    pub fn entries(&self, entity_id: Option<String>) -> Result<Vec<ChangeLogEntry>> {
        let q = guanxi::ChangeLogQuery { entity_id, ..Default::default() };
        Ok(self.inner.audit().entries(&self.actor, &q)?.into_iter().map(Into::into).collect())
    }
}

handle! {
    /// `crm.access()`: departments, users, roles, credentials, elevation, `explain`, the field key.
    Access
}

#[uniffi::export]
impl Access {
    /// The same CRM and user, re-verified by `proof` (password, TOTP code, or the host
    /// verifier's token): it may do sensitive operations for 15 minutes. A refusal is
    /// `CrmError.PermissionDenied` with action "elevate".
    pub fn elevate(&self, proof: ElevationProof) -> Result<Arc<Crm>> {
        let proof = match proof {
            ElevationProof::Password { password } => guanxi::ElevationProof::Password(password),
            ElevationProof::Totp { code } => guanxi::ElevationProof::Totp(code),
            ElevationProof::Host { token } => guanxi::ElevationProof::Host(token),
        };
        Ok(Arc::new(Crm { inner: self.inner.clone(), actor: self.inner.access().elevate(&self.actor, proof)? }))
    }

    /// Sets `user`'s password (at least 8 characters, stored as an argon2id hash). Users set
    /// their own first password freely and change it elevated; administrators (elevated) set
    /// anyone's.
    pub fn set_password(&self, user: String, password: String) -> Result<()> {
        Ok(self.inner.access().set_password(&self.actor, &guanxi::UserId::new(user)?, &password)?)
    }

    /// Enrolls `user`'s TOTP authenticator; returns its base32 secret, to show once.
    pub fn enroll_totp(&self, user: String) -> Result<String> {
        Ok(self.inner.access().enroll_totp(&self.actor, &guanxi::UserId::new(user)?)?)
    }

    /// Which credentials `user` has.
    pub fn credentials(&self, user: String) -> Result<Credentials> {
        let c = self.inner.access().credentials(&self.actor, &guanxi::UserId::new(user)?)?;
        Ok(Credentials { password: c.password, totp: c.totp })
    }

    /// Adds or replaces a department. Needs elevation.
    pub fn set_department(&self, department: Department) -> Result<()> {
        let d = guanxi::Department::new(&department.id, &department.name, department.parent.as_deref())?;
        self.inner.access().set_department(&self.actor, d).map(drop).map_err(Into::into)
    }

    /// Adds or replaces a user; the first must be an administrator. Needs elevation.
    pub fn set_user(&self, user: User) -> Result<()> {
        self.inner.access().set_user(&self.actor, user.into_core()?).map(drop).map_err(Into::into)
    }

    /// Adds or replaces a custom role. Needs elevation.
    pub fn set_role(&self, role: Role) -> Result<()> {
        self.inner.access().set_role(&self.actor, role.into_core()?).map(drop).map_err(Into::into)
    }

    /// Removes a custom role nobody holds. Needs elevation.
    pub fn remove_role(&self, id: String) -> Result<()> {
        self.inner.access().remove_role(&self.actor, &guanxi::RoleId::new(id)?).map(drop).map_err(Into::into)
    }

    /// Departments, users and custom roles.
    pub fn model(&self) -> Result<AccessModel> {
        Ok(self.inner.access().model(&self.actor)?.into())
    }

    /// Whether `user` (default: the acting user) may do `action` on `entity` — on one record
    /// of it, when `record` is given (a customer, contact, opportunity, lead, task or ticket
    /// id; for interactions, the customer's) — and why: the answer lists, counts and reads of
    /// that record give.
    pub fn explain(
        &self,
        action: Action,
        entity: EntityKind,
        record: Option<Uuid>,
        user: Option<String>,
    ) -> Result<Decision> {
        let user = match user {
            Some(u) => guanxi::UserId::new(u)?,
            None => self.actor.user_id().clone(),
        };
        let d = self.inner.access().explain(&self.actor, &user, action, entity, record)?;
        Ok(Decision { allowed: d.allowed, reasons: d.reasons })
    }

    /// Re-encrypts every sensitive field under a new 32-byte key. Needs elevation.
    pub fn rotate_field_key(&self, key: Vec<u8>) -> Result<u64> {
        Ok(self.inner.access().rotate_field_key(&self.actor, &key)?)
    }
}
