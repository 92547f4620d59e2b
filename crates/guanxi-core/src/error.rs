//! The one error type of guanxi and the validation failures it carries.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of record guanxi keeps; used in errors, the change log and events.
///
/// ```
/// use guanxi_core::EntityKind;
/// assert_eq!(EntityKind::Customer.as_str(), "customer");
/// assert_eq!("contact".parse::<EntityKind>(), Ok(EntityKind::Contact));
/// ```
// Exhaustive on purpose: a module that adds a kind must also map it in every binding (Python
// names it), and the compiler is what says where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum EntityKind {
    /// A customer (company or person).
    Customer,
    /// A contact person of a customer.
    Contact,
    /// A tag definition.
    Tag,
    /// An interaction / follow-up record.
    Interaction,
    /// A custom field definition.
    CustomField,
    /// The change (audit) log itself.
    ChangeLog,
    /// A user of the CRM.
    User,
    /// A department.
    Department,
    /// A role.
    Role,
    /// A sales pipeline definition.
    Pipeline,
    /// A sales opportunity.
    Opportunity,
    /// A sales lead.
    Lead,
    /// A task (follow-up to do).
    Task,
    /// A service ticket.
    Ticket,
    /// A knowledge-base article.
    Article,
    /// The service settings (calendar, SLA policies, skill groups, risk keywords).
    ServiceSettings,
    /// The marketing settings (how long behaviour events are kept).
    MarketingSettings,
    /// A saved segment and its stored membership.
    Segment,
    /// A product of the catalog.
    Product,
    /// A purchase (order, transaction).
    Purchase,
}

impl EntityKind {
    /// Every kind, in declaration order.
    pub const ALL: [EntityKind; 20] = [
        EntityKind::Customer,
        EntityKind::Contact,
        EntityKind::Tag,
        EntityKind::Interaction,
        EntityKind::CustomField,
        EntityKind::ChangeLog,
        EntityKind::User,
        EntityKind::Department,
        EntityKind::Role,
        EntityKind::Pipeline,
        EntityKind::Opportunity,
        EntityKind::Lead,
        EntityKind::Task,
        EntityKind::Ticket,
        EntityKind::Article,
        EntityKind::ServiceSettings,
        EntityKind::MarketingSettings,
        EntityKind::Segment,
        EntityKind::Product,
        EntityKind::Purchase,
    ];

    /// The stable snake-case name used in storage and across bindings.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Customer => "customer",
            EntityKind::Contact => "contact",
            EntityKind::Tag => "tag",
            EntityKind::Interaction => "interaction",
            EntityKind::CustomField => "custom_field",
            EntityKind::ChangeLog => "change_log",
            EntityKind::User => "user",
            EntityKind::Department => "department",
            EntityKind::Role => "role",
            EntityKind::Pipeline => "pipeline",
            EntityKind::Opportunity => "opportunity",
            EntityKind::Lead => "lead",
            EntityKind::Task => "task",
            EntityKind::Ticket => "ticket",
            EntityKind::Article => "article",
            EntityKind::ServiceSettings => "service_settings",
            EntityKind::MarketingSettings => "marketing_settings",
            EntityKind::Segment => "segment",
            EntityKind::Product => "product",
            EntityKind::Purchase => "purchase",
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EntityKind {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntityKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName::new(s, EntityKind::ALL.map(EntityKind::as_str)))
    }
}

/// A name that matches none of a vocabulary's values (returned by `FromStr` impls), with the
/// names it accepts; it converts into [`ValidationReason::NotAllowed`].
///
/// ```
/// use guanxi_core::{CustomerKind, ValidationReason};
/// let err = "martian".parse::<CustomerKind>().unwrap_err();
/// assert_eq!(err.to_string(), "unknown name 'martian' (allowed: enterprise, individual)");
/// assert!(matches!(ValidationReason::from(err), ValidationReason::NotAllowed { allowed, .. } if allowed.len() == 2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name '{value}' (allowed: {})", allowed.join(", "))]
pub struct UnknownName {
    /// The name given.
    pub value: String,
    /// The stable names the vocabulary accepts (their Chinese labels are accepted too).
    pub allowed: Vec<String>,
}

impl UnknownName {
    /// `value` is none of `allowed`.
    pub fn new(value: impl Into<String>, allowed: impl IntoIterator<Item = impl Into<String>>) -> Self {
        UnknownName { value: value.into(), allowed: allowed.into_iter().map(Into::into).collect() }
    }
}

impl From<UnknownName> for ValidationReason {
    fn from(e: UnknownName) -> Self {
        ValidationReason::NotAllowed { value: e.value, allowed: e.allowed }
    }
}

/// Why one field failed validation. Typed so callers can match on it; `Display` gives
/// the human sentence.
///
/// ```
/// use guanxi_core::ValidationReason;
/// assert_eq!(ValidationReason::Required.to_string(), "is required");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ValidationReason {
    /// The field is required but empty or missing.
    Required,
    /// The value is longer than allowed.
    TooLong {
        /// Maximum length in characters.
        max: usize,
    },
    /// Not a valid mobile phone number.
    InvalidPhone,
    /// Not a well-formed e-mail address.
    InvalidEmail,
    /// Not a valid resident identity number (18 characters, GB 11643 check digit, real birth date).
    InvalidIdNumber,
    /// Not a province-level division of China.
    UnknownProvince,
    /// A value outside the allowed set.
    NotAllowed {
        /// The offending value.
        value: String,
        /// The values that are allowed here (empty when they cannot be listed).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        allowed: Vec<String>,
    },
    /// The value has the wrong type for the field.
    WrongType {
        /// The type the field expects.
        expected: String,
    },
    /// No such custom field is defined for this entity.
    UnknownField,
    /// The input is larger than a configured limit allows (bytes, rows, columns, characters).
    TooLarge {
        /// The limit.
        max: u64,
        /// What is counted (`bytes`, `rows`, …).
        unit: String,
    },
    /// The value is malformed in some other way, explained by the text.
    Invalid {
        /// Explanation.
        detail: String,
    },
}

impl ValidationReason {
    /// [`ValidationReason::NotAllowed`]: `value` is none of `allowed`.
    ///
    /// ```
    /// use guanxi_core::ValidationReason;
    /// let r = ValidationReason::not_allowed("gold", ["a", "b"]);
    /// assert_eq!(r.to_string(), "'gold' is not one of the allowed values (a, b)");
    /// ```
    pub fn not_allowed(value: impl Into<String>, allowed: impl IntoIterator<Item = impl Into<String>>) -> Self {
        UnknownName::new(value, allowed).into()
    }

    /// The values allowed where this failed: those of a [`ValidationReason::NotAllowed`],
    /// empty for every other reason.
    ///
    /// ```
    /// use guanxi_core::ValidationReason;
    /// assert_eq!(ValidationReason::not_allowed("gold", ["a", "b"]).allowed(), ["a", "b"]);
    /// assert!(ValidationReason::Required.allowed().is_empty());
    /// ```
    pub fn allowed(&self) -> &[String] {
        match self {
            ValidationReason::NotAllowed { allowed, .. } => allowed,
            _ => &[],
        }
    }
}

impl fmt::Display for ValidationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidationReason::Required => f.write_str("is required"),
            ValidationReason::TooLong { max } => write!(f, "is longer than {max} characters"),
            ValidationReason::InvalidPhone => f.write_str(
                "is not a valid mobile number (Chinese mobiles have 11 digits starting 13-19; others need +country code)",
            ),
            ValidationReason::InvalidEmail => f.write_str("is not a well-formed e-mail address"),
            ValidationReason::InvalidIdNumber => {
                f.write_str("is not a valid resident identity number (18 characters with a GB 11643 check digit)")
            }
            ValidationReason::UnknownProvince => {
                f.write_str("is not a province-level division of China")
            }
            ValidationReason::NotAllowed { value, allowed } if allowed.is_empty() => {
                write!(f, "'{value}' is not one of the allowed values")
            }
            ValidationReason::NotAllowed { value, allowed } => {
                write!(f, "'{value}' is not one of the allowed values ({})", allowed.join(", "))
            }
            ValidationReason::WrongType { expected } => write!(f, "must be a {expected}"),
            ValidationReason::UnknownField => f.write_str("is not a defined custom field"),
            ValidationReason::TooLarge { max, unit } => write!(f, "exceeds the limit of {max} {unit}"),
            ValidationReason::Invalid { detail } => f.write_str(detail),
        }
    }
}

/// One failed field: a path such as `name`, `contacts[0].phones[1]` or `custom.budget`, and why.
///
/// ```
/// use guanxi_core::{FieldError, ValidationReason};
/// let e = FieldError::new("name", ValidationReason::Required);
/// assert_eq!(e.to_string(), "name: is required");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the field that failed.
    pub field: String,
    /// Why it failed.
    pub reason: ValidationReason,
}

impl FieldError {
    /// A failure of `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: ValidationReason) -> Self {
        FieldError { field: field.into(), reason }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Every failure of one record (or one batch), reported together. Never empty when returned
/// inside [`Error::Validation`].
///
/// ```
/// use guanxi_core::{ValidationErrors, ValidationReason};
/// let mut errs = ValidationErrors::default();
/// errs.push("name", ValidationReason::Required);
/// errs.push("email", ValidationReason::InvalidEmail);
/// assert_eq!(errs.len(), 2);
/// assert!(errs.to_string().starts_with("name: is required; email:"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Records a failure.
    pub fn push(&mut self, field: impl Into<String>, reason: ValidationReason) {
        self.0.push(FieldError::new(field, reason));
    }

    /// Moves the failures of a nested record in, prefixing their paths with `prefix.`.
    pub fn extend_nested(&mut self, prefix: &str, other: ValidationErrors) {
        for e in other.0 {
            self.0.push(FieldError::new(format!("{prefix}.{}", e.field), e.reason));
        }
    }

    /// Number of failures.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing failed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The failures, in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// The failure of a given field path, if any.
    pub fn field(&self, path: &str) -> Option<&FieldError> {
        self.0.iter().find(|e| e.field == path)
    }

    /// `Ok(value)` when nothing failed, else `Err(Error::Validation(self))`.
    pub fn into_result<T>(self, value: T) -> Result<T, Error> {
        if self.is_empty() { Ok(value) } else { Err(Error::Validation(self)) }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A failure inside a storage backend (I/O, SQL, corrupt row). Keeps the backend's error as
/// its source.
///
/// ```
/// use guanxi_core::StorageError;
/// let e = StorageError::msg("disk full");
/// assert_eq!(e.to_string(), "disk full");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StorageError {
    /// A storage failure described by a message alone.
    pub fn msg(message: impl Into<String>) -> Self {
        StorageError { message: message.into(), source: None }
    }

    /// A storage failure caused by a backend error.
    pub fn with_source(message: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        StorageError { message: message.into(), source: Some(Box::new(source)) }
    }
}

/// The error of every guanxi operation.
///
/// ```
/// use guanxi_core::{EntityKind, Error};
/// let e = Error::NotFound { entity: EntityKind::Customer, key: "C20240501001".into() };
/// assert_eq!(e.to_string(), "customer C20240501001 not found");
/// assert!(matches!(e, Error::NotFound { .. }));
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No record with this id or code (or it was deleted).
    #[error("{entity} {key} not found")]
    NotFound {
        /// Kind of record looked up.
        entity: EntityKind,
        /// The id or code that was looked up.
        key: String,
    },
    /// The input failed validation; every failure of the record is listed.
    #[error("validation failed: {0}")]
    Validation(ValidationErrors),
    /// An update carried a stale version: someone else changed the record first. Nothing was written.
    #[error("{entity} {id} was changed concurrently: expected version {expected}, found {actual}")]
    Conflict {
        /// Kind of record.
        entity: EntityKind,
        /// Its id.
        id: String,
        /// The version the caller based the update on.
        expected: u64,
        /// The version currently stored.
        actual: u64,
    },
    /// A value that must be unique already exists.
    #[error("{entity} with {field} '{value}' already exists")]
    Duplicate {
        /// Kind of record.
        entity: EntityKind,
        /// The unique field.
        field: String,
        /// The clashing value.
        value: String,
    },
    /// The actor may not perform this action.
    #[error("permission denied: {action} on {entity}: {reason}")]
    PermissionDenied {
        /// The action refused (`read`, `create`, …).
        action: String,
        /// The kind of record.
        entity: EntityKind,
        /// Why.
        reason: String,
    },
    /// A sensitive operation (delete, export, merge, access changes) was attempted without an
    /// elevated context: the host must re-verify the user and call `Actor::elevated`.
    #[error("elevation required: {action} on {entity} is a sensitive operation; re-verify the user first")]
    ElevationRequired {
        /// The action refused.
        action: String,
        /// The kind of record.
        entity: EntityKind,
    },
    /// Encrypted data could not be read or written: a wrong or missing key, or corrupt data.
    #[error("encryption error: {0}")]
    Encryption(EncryptionError),
    /// The operation is not valid for the record's current state (e.g. updating a deleted record).
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// The storage backend failed.
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
}

impl Error {
    /// Shorthand for a single-field validation error.
    ///
    /// ```
    /// use guanxi_core::{Error, ValidationReason};
    /// let e = Error::invalid("name", ValidationReason::Required);
    /// assert_eq!(e.to_string(), "validation failed: name: is required");
    /// ```
    pub fn invalid(field: impl Into<String>, reason: ValidationReason) -> Self {
        Error::Validation(ValidationErrors(vec![FieldError::new(field, reason)]))
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(entity: EntityKind, key: impl fmt::Display) -> Self {
        Error::NotFound { entity, key: key.to_string() }
    }
}

/// Why encrypted data could not be used.
///
/// ```
/// use guanxi_core::EncryptionError;
/// assert_eq!(EncryptionError::WrongKey.to_string(), "the key does not match the one the data was encrypted with");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptionError {
    /// The key given is not the database's key.
    #[error("the key does not match the one the data was encrypted with")]
    WrongKey,
    /// The database holds encrypted fields but no key was given.
    #[error("the database has encrypted fields; open it with its key")]
    KeyRequired,
    /// A key of the wrong length.
    #[error("a field key is 32 bytes, got {0}")]
    BadKeyLength(usize),
    /// A ciphertext failed authentication or is malformed.
    #[error("encrypted value of {field} is corrupt or was tampered with")]
    Corrupt {
        /// Where it was found.
        field: String,
    },
}

/// The result type of guanxi operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
