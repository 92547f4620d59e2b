//! Committed events for Kotlin and Swift: guanxi-core's `DomainEvent` (each kind a typed
//! variant with its fields) with the event's name, instant, user and customer beside it.

use guanxi::DomainEvent;

use crate::{DateTime, Uuid};

/// A committed domain event.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Event {
    /// The stable name: "customer_created", "tag_added", …
    pub name: String,
    pub at: DateTime,
    pub user: String,
    /// The customer it concerns, when it concerns one.
    pub customer_id: Option<Uuid>,
    /// What happened, with its fields.
    pub detail: DomainEvent,
}

impl From<&guanxi::Event> for Event {
    fn from(e: &guanxi::Event) -> Self {
        Event {
            name: e.payload.name().to_owned(),
            at: e.at,
            user: e.actor.to_string(),
            customer_id: e.payload.customer().map(|c| c.0),
            detail: e.payload.clone(),
        }
    }
}
