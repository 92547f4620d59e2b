//! Contacts (联系人): the people at a customer.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::custom_field::{CustomFieldDef, CustomValue, patch_custom, validate_new_custom};
use crate::error::ValidationErrors;
use crate::ids::{ContactId, CustomerId, UserId};
use crate::macros::vocabulary;
use crate::normalize::{Email, IdNumber, Phone};
use crate::validate::{emails, id_number, limits, optional_text, phones, required_text};

vocabulary! {
    /// A contact's role in the customer's buying decision.
    ///
    /// ```
    /// use guanxi_core::DecisionRole;
    /// assert_eq!("决策者".parse::<DecisionRole>().unwrap(), DecisionRole::DecisionMaker);
    /// ```
    pub enum DecisionRole {
        /// Signs off (决策者).
        DecisionMaker = "decision_maker" / "决策者",
        /// Evaluates offers (评估者).
        Evaluator = "evaluator" / "评估者",
        /// Sways the decision (影响者).
        Influencer = "influencer" / "影响者",
        /// Uses the product (使用者).
        User = "user" / "使用者",
    }
}

/// A contact person of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Contact {
    /// UUIDv7 id.
    pub id: ContactId,
    /// The customer the contact belongs to.
    pub customer_id: CustomerId,
    /// Name.
    pub name: String,
    /// Job title.
    pub title: Option<String>,
    /// Phone numbers, E.164.
    pub phones: Vec<Phone>,
    /// E-mail addresses, lower-case.
    pub emails: Vec<Email>,
    /// Resident identity number (身份证号), a sensitive value.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub id_number: Option<IdNumber>,
    /// Role in the decision chain.
    pub role: Option<DecisionRole>,
    /// Whether this is the customer's primary contact (exactly one per customer with contacts).
    pub primary: bool,
    /// Must not be contacted (opted out).
    pub do_not_contact: bool,
    /// Custom field values.
    pub custom: BTreeMap<String, CustomValue>,
    /// Who created it.
    pub created_by: UserId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who changed it last.
    pub updated_by: UserId,
    /// When it was changed last.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// Set when removed.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Input for a new contact.
///
/// ```
/// use guanxi_core::{DecisionRole, NewContact};
/// let c = NewContact::new("李娜").title("采购经理").phone("+86 139 0000 1111")
///     .email("Li.Na@Example.com").role(DecisionRole::Evaluator);
/// let v = c.validate(&[]).unwrap();
/// assert_eq!(v.emails[0].as_str(), "li.na@example.com");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewContact {
    /// Name (required).
    pub name: String,
    /// Job title.
    pub title: Option<String>,
    /// Phone numbers as written.
    pub phones: Vec<String>,
    /// E-mail addresses as written.
    pub emails: Vec<String>,
    /// Resident identity number as written.
    pub id_number: Option<String>,
    /// Decision role.
    pub role: Option<DecisionRole>,
    /// Make this the primary contact (the first contact of a customer always is).
    pub primary: bool,
    /// Opted out of contact.
    pub do_not_contact: bool,
    /// Custom values.
    pub custom: BTreeMap<String, CustomValue>,
}

impl NewContact {
    /// A contact called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        NewContact { name: name.into(), ..Default::default() }
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// Adds a phone number.
    pub fn phone(mut self, phone: impl Into<String>) -> Self {
        self.phones.push(phone.into());
        self
    }

    /// Adds an e-mail address.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.emails.push(email.into());
        self
    }

    /// Sets the decision role.
    pub fn role(mut self, role: DecisionRole) -> Self {
        self.role = Some(role);
        self
    }

    /// Sets the resident identity number.
    pub fn id_number(mut self, id_number: impl Into<String>) -> Self {
        self.id_number = Some(id_number.into());
        self
    }

    /// Asks for this contact to become primary.
    pub fn primary(mut self) -> Self {
        self.primary = true;
        self
    }

    /// Validates every field against the contact custom field definitions.
    pub fn validate(self, defs: &[CustomFieldDef]) -> Result<ValidContact, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let v = ValidContact {
            name: required_text(&mut errs, "name", &self.name, limits::NAME),
            title: optional_text(&mut errs, "title", self.title.as_deref(), limits::SHORT),
            phones: phones(&mut errs, "phones", &self.phones),
            emails: emails(&mut errs, "emails", &self.emails),
            id_number: id_number(&mut errs, "id_number", self.id_number.as_deref()),
            role: self.role,
            primary: self.primary,
            do_not_contact: self.do_not_contact,
            custom: validate_new_custom(defs, self.custom, &mut errs),
        };
        if errs.is_empty() { Ok(v) } else { Err(errs) }
    }
}

/// A validated new contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidContact {
    /// Name.
    pub name: String,
    /// Title.
    pub title: Option<String>,
    /// Phones.
    pub phones: Vec<Phone>,
    /// E-mails.
    pub emails: Vec<Email>,
    /// Identity number.
    pub id_number: Option<IdNumber>,
    /// Role.
    pub role: Option<DecisionRole>,
    /// Requested primary.
    pub primary: bool,
    /// Opted out.
    pub do_not_contact: bool,
    /// Custom values.
    pub custom: BTreeMap<String, CustomValue>,
}

impl ValidContact {
    /// The stored contact this input becomes: version 1, created and updated by `stamp`, of
    /// `customer`, primary or not as the customer's contacts decide.
    ///
    /// ```
    /// use guanxi_core::changelog::Stamp;
    /// use guanxi_core::{ContactId, CustomerId, NewContact, UserId};
    /// let v = NewContact::new("张伟").phone("138 1234 5678").validate(&[]).unwrap();
    /// let stamp = Stamp::new(UserId::new("alice")?, chrono::Utc::now());
    /// let c = v.into_contact(ContactId(uuid::Uuid::nil()), CustomerId(uuid::Uuid::nil()), true, &stamp);
    /// assert_eq!((c.primary, c.version, c.phones[0].as_str()), (true, 1, "+8613812345678"));
    /// # Ok::<(), guanxi_core::Error>(())
    /// ```
    pub fn into_contact(
        self,
        id: ContactId,
        customer: CustomerId,
        primary: bool,
        stamp: &crate::changelog::Stamp,
    ) -> Contact {
        Contact {
            id,
            customer_id: customer,
            name: self.name,
            title: self.title,
            phones: self.phones,
            emails: self.emails,
            id_number: self.id_number,
            role: self.role,
            primary,
            do_not_contact: self.do_not_contact,
            custom: self.custom,
            created_by: stamp.by.clone(),
            created_at: stamp.at,
            updated_by: stamp.by.clone(),
            updated_at: stamp.at,
            version: 1,
            deleted_at: None,
        }
    }
}

/// Changes to a contact; `None` leaves a field alone. The primary flag changes through
/// `Crm::set_primary_contact`, so the one-primary rule holds.
///
/// ```
/// use guanxi_core::ContactPatch;
/// let p = ContactPatch { do_not_contact: Some(true), ..Default::default() };
/// assert!(p.name.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactPatch {
    /// New name.
    pub name: Option<String>,
    /// New title.
    pub title: Option<Option<String>>,
    /// Replaces all phones.
    pub phones: Option<Vec<String>>,
    /// Replaces all e-mails.
    pub emails: Option<Vec<String>>,
    /// New identity number (`Some(None)` clears it).
    pub id_number: Option<Option<String>>,
    /// New role.
    pub role: Option<Option<DecisionRole>>,
    /// New do-not-contact flag.
    pub do_not_contact: Option<bool>,
    /// Custom values to set or remove.
    pub custom: BTreeMap<String, Option<CustomValue>>,
}

impl ContactPatch {
    /// Applies the patch to `current`, validating every touched field.
    pub fn apply(self, current: &Contact, defs: &[CustomFieldDef]) -> Result<Contact, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let mut next = current.clone();
        if let Some(name) = self.name {
            next.name = required_text(&mut errs, "name", &name, limits::NAME);
        }
        if let Some(title) = self.title {
            next.title = optional_text(&mut errs, "title", title.as_deref(), limits::SHORT);
        }
        if let Some(p) = self.phones {
            next.phones = phones(&mut errs, "phones", &p);
        }
        if let Some(e) = self.emails {
            next.emails = emails(&mut errs, "emails", &e);
        }
        if let Some(id) = self.id_number {
            next.id_number = id_number(&mut errs, "id_number", id.as_deref());
        }
        if let Some(role) = self.role {
            next.role = role;
        }
        if let Some(dnc) = self.do_not_contact {
            next.do_not_contact = dnc;
        }
        next.custom = patch_custom(defs, &current.custom, self.custom, &mut errs);
        if errs.is_empty() { Ok(next) } else { Err(errs) }
    }
}
