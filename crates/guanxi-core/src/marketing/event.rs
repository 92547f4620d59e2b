//! Behaviour events (行为事件): what a customer did — viewed a page, opened a mail, asked about a
//! course, bought — recorded append-only with typed properties, so that segments can count them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::custom_field::CustomValue;
use crate::error::{ValidationErrors, ValidationReason};
use crate::ids::{CustomerId, EventId};
use crate::validate::{limits, optional_text, required_text};

/// At most this many properties on one event.
pub const MAX_EVENT_PROPERTIES: usize = 32;

/// Characters of a property's text value, at most.
pub const MAX_PROPERTY_TEXT: usize = 2_000;

/// A recorded behaviour event.
///
/// ```
/// use guanxi_core::marketing::BehaviourEvent;
/// use guanxi_core::{CustomValue, CustomerId};
/// let at = "2024-05-06T09:00:00Z".parse().unwrap();
/// let e = BehaviourEvent::new(CustomerId(uuid::Uuid::nil()), "page_view", at)
///     .property("url", CustomValue::Text("/courses/ielts".into()));
/// assert_eq!(e.properties["url"], CustomValue::Text("/courses/ielts".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BehaviourEvent {
    /// Id: a UUIDv7 of `at`, given when the event is recorded (nil before).
    pub id: EventId,
    /// The customer who did it.
    pub customer_id: CustomerId,
    /// Which of the customer's contacts did it, when known (a contact of that customer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<crate::ids::ContactId>,
    /// What happened: `page_view`, `purchase`, `mail_open`, … (folded, at most 100 characters).
    pub name: String,
    /// Typed properties (`url`, `amount`, `product`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, CustomValue>,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Where it was recorded (`web`, `app`, `wechat`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The sender's id for it: an event sent twice with one external id is recorded once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

impl BehaviourEvent {
    /// An event of `name` by `customer` at `at`, without properties.
    pub fn new(customer: CustomerId, name: impl Into<String>, at: DateTime<Utc>) -> BehaviourEvent {
        BehaviourEvent {
            id: EventId(uuid::Uuid::nil()),
            customer_id: customer,
            contact_id: None,
            name: name.into(),
            properties: BTreeMap::new(),
            at,
            source: None,
            external_id: None,
        }
    }

    /// Says which of the customer's contacts did it.
    pub fn by_contact(mut self, contact: crate::ids::ContactId) -> Self {
        self.contact_id = Some(contact);
        self
    }

    /// Sets a property.
    pub fn property(mut self, key: impl Into<String>, value: CustomValue) -> Self {
        self.properties.insert(key.into(), value);
        self
    }

    /// Checks every field, reporting all failures together: the name (required, folded, at
    /// most 100 characters), at most 32 properties with keys of letters, digits and `_` and
    /// text values of at most 2,000 characters, the source and the external id; the checked
    /// event has its text folded.
    ///
    /// ```
    /// use guanxi_core::marketing::BehaviourEvent;
    /// use guanxi_core::{CustomerId, ValidationReason};
    /// let at = "2024-05-06T09:00:00Z".parse().unwrap();
    /// let errs = BehaviourEvent::new(CustomerId(uuid::Uuid::nil()), " ", at).validate().unwrap_err();
    /// assert_eq!(errs.field("name").unwrap().reason, ValidationReason::Required);
    /// ```
    pub fn validate(self) -> Result<BehaviourEvent, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let name = required_text(&mut errs, "name", &self.name, limits::SHORT);
        if self.properties.len() > MAX_EVENT_PROPERTIES {
            errs.push(
                "properties",
                ValidationReason::TooLarge { max: MAX_EVENT_PROPERTIES as u64, unit: "properties".into() },
            );
        }
        for (key, value) in &self.properties {
            let field = format!("properties.{key}");
            if key.is_empty() || key.chars().count() > 64 || !key.chars().all(|c| c.is_alphanumeric() || c == '_') {
                errs.push(&field, ValidationReason::Invalid { detail: "a key is 1-64 letters, digits or _".into() });
            }
            let text = match value {
                CustomValue::Text(s) | CustomValue::Select(s) => s.chars().count(),
                CustomValue::MultiSelect(set) => set.iter().map(|s| s.chars().count()).sum(),
                _ => 0,
            };
            if text > MAX_PROPERTY_TEXT {
                errs.push(&field, ValidationReason::TooLong { max: MAX_PROPERTY_TEXT });
            }
        }
        let source = optional_text(&mut errs, "source", self.source.as_deref(), limits::SHORT);
        let external_id = optional_text(&mut errs, "external_id", self.external_id.as_deref(), limits::SHORT);
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(BehaviourEvent { name, source, external_id, ..self })
    }
}

/// A span of time events are read for: at or after `from`, before `to`; either end open.
///
/// ```
/// use guanxi_core::marketing::EventRange;
/// let t = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
/// let may = EventRange { from: Some(t("2024-05-01T00:00:00Z")), to: Some(t("2024-06-01T00:00:00Z")) };
/// assert!(may.contains(t("2024-05-31T23:59:59Z")) && !may.contains(t("2024-06-01T00:00:00Z")));
/// assert!(EventRange::default().contains(t("1999-01-01T00:00:00Z")));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventRange {
    /// The first instant included.
    pub from: Option<DateTime<Utc>>,
    /// The first instant after the range.
    pub to: Option<DateTime<Utc>>,
}

impl EventRange {
    /// Whether `at` lies in the range.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| at >= f) && self.to.is_none_or(|t| at < t)
    }
}
