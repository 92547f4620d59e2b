//! Committed events for Kotlin and Swift: each kind of event a typed variant with its fields.

use guanxi::DomainEvent;

use crate::service::TicketStatus;
use crate::{DateTime, EntityKind, Uuid};

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
    pub detail: EventDetail,
}

/// What an event says happened (ids are record ids; codes the people-facing codes).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum EventDetail {
    CustomerCreated {
        customer: Uuid,
        code: String,
    },
    /// `fields`: the changed field paths.
    CustomerUpdated {
        customer: Uuid,
        fields: Vec<String>,
    },
    CustomerDeleted {
        customer: Uuid,
    },
    CustomerRestored {
        customer: Uuid,
    },
    ContactAdded {
        customer: Uuid,
        contact: Uuid,
    },
    ContactUpdated {
        customer: Uuid,
        contact: Uuid,
        fields: Vec<String>,
    },
    ContactRemoved {
        customer: Uuid,
        contact: Uuid,
    },
    TagDefined {
        tag: String,
    },
    TagAdded {
        customer: Uuid,
        tag: String,
    },
    TagRemoved {
        customer: Uuid,
        tag: String,
    },
    InteractionLogged {
        customer: Uuid,
        interaction: Uuid,
    },
    CustomFieldDefined {
        entity: EntityKind,
        key: String,
    },
    /// A user, department or role changed (`id` its key).
    AccessChanged {
        entity: EntityKind,
        id: String,
    },
    /// A pipeline, the lead rules or the match rules were stored (`key` the document).
    SalesConfigured {
        key: String,
    },
    OpportunityCreated {
        opportunity: Uuid,
        code: String,
    },
    OpportunityUpdated {
        opportunity: Uuid,
        fields: Vec<String>,
    },
    StageChanged {
        opportunity: Uuid,
        from: String,
        to: String,
    },
    LeadCreated {
        lead: Uuid,
        code: String,
    },
    LeadConverted {
        lead: Uuid,
        customer: Uuid,
        opportunity: Option<Uuid>,
    },
    TaskCreated {
        task: Uuid,
    },
    TaskCompleted {
        task: Uuid,
    },
    TicketCreated {
        ticket: Uuid,
        code: String,
        customer: Option<Uuid>,
    },
    TicketChanged {
        ticket: Uuid,
        status: TicketStatus,
        customer: Option<Uuid>,
    },
    /// Risk keywords found in the ticket.
    TicketFlagged {
        ticket: Uuid,
        keywords: Vec<String>,
        customer: Option<Uuid>,
    },
    SatisfactionSurveyDue {
        ticket: Uuid,
        customer: Option<Uuid>,
        contact: Option<Uuid>,
    },
    ArticleSaved {
        article: Uuid,
    },
    ServiceConfigured,
    CustomersMerged {
        customer: Uuid,
        merged: Vec<Uuid>,
        merge_id: String,
    },
    MergeUndone {
        customer: Uuid,
        restored: Vec<Uuid>,
        merge_id: String,
    },
    /// A kind of event newer than these bindings (its `name` says which).
    Other,
}

impl From<&guanxi::Event> for Event {
    fn from(e: &guanxi::Event) -> Self {
        Event {
            name: e.payload.name().to_owned(),
            at: e.at,
            user: e.actor.to_string(),
            customer_id: e.payload.customer().map(|c| c.0),
            detail: e.payload.clone().into(),
        }
    }
}

impl From<DomainEvent> for EventDetail {
    fn from(e: DomainEvent) -> Self {
        use EventDetail as D;
        let ids = |v: Vec<guanxi::CustomerId>| v.into_iter().map(|c| c.0).collect();
        match e {
            DomainEvent::CustomerCreated { customer, code } => D::CustomerCreated { customer: customer.0, code },
            DomainEvent::CustomerUpdated { customer, fields } => D::CustomerUpdated { customer: customer.0, fields },
            DomainEvent::CustomerDeleted { customer } => D::CustomerDeleted { customer: customer.0 },
            DomainEvent::CustomerRestored { customer } => D::CustomerRestored { customer: customer.0 },
            DomainEvent::ContactAdded { customer, contact } => {
                D::ContactAdded { customer: customer.0, contact: contact.0 }
            }
            DomainEvent::ContactUpdated { customer, contact, fields } => {
                D::ContactUpdated { customer: customer.0, contact: contact.0, fields }
            }
            DomainEvent::ContactRemoved { customer, contact } => {
                D::ContactRemoved { customer: customer.0, contact: contact.0 }
            }
            DomainEvent::TagDefined { tag } => D::TagDefined { tag },
            DomainEvent::TagAdded { customer, tag } => D::TagAdded { customer: customer.0, tag },
            DomainEvent::TagRemoved { customer, tag } => D::TagRemoved { customer: customer.0, tag },
            DomainEvent::InteractionLogged { customer, interaction } => {
                D::InteractionLogged { customer: customer.0, interaction: interaction.0 }
            }
            DomainEvent::CustomFieldDefined { entity, key } => D::CustomFieldDefined { entity, key },
            DomainEvent::AccessChanged { entity, id } => D::AccessChanged { entity, id },
            DomainEvent::SalesConfigured { key } => D::SalesConfigured { key },
            DomainEvent::OpportunityCreated { opportunity, code } => {
                D::OpportunityCreated { opportunity: opportunity.0, code }
            }
            DomainEvent::OpportunityUpdated { opportunity, fields } => {
                D::OpportunityUpdated { opportunity: opportunity.0, fields }
            }
            DomainEvent::StageChanged { opportunity, from, to } => {
                D::StageChanged { opportunity: opportunity.0, from, to }
            }
            DomainEvent::LeadCreated { lead, code } => D::LeadCreated { lead: lead.0, code },
            DomainEvent::LeadConverted { lead, customer, opportunity } => {
                D::LeadConverted { lead: lead.0, customer: customer.0, opportunity: opportunity.map(|o| o.0) }
            }
            DomainEvent::TaskCreated { task } => D::TaskCreated { task: task.0 },
            DomainEvent::TaskCompleted { task } => D::TaskCompleted { task: task.0 },
            DomainEvent::TicketCreated { ticket, code, customer } => {
                D::TicketCreated { ticket: ticket.0, code, customer: customer.map(|c| c.0) }
            }
            DomainEvent::TicketChanged { ticket, status, customer } => {
                D::TicketChanged { ticket: ticket.0, status, customer: customer.map(|c| c.0) }
            }
            DomainEvent::TicketFlagged { ticket, keywords, customer } => {
                D::TicketFlagged { ticket: ticket.0, keywords, customer: customer.map(|c| c.0) }
            }
            DomainEvent::SatisfactionSurveyDue { ticket, customer, contact } => D::SatisfactionSurveyDue {
                ticket: ticket.0,
                customer: customer.map(|c| c.0),
                contact: contact.map(|c| c.0),
            },
            DomainEvent::ArticleSaved { article } => D::ArticleSaved { article: article.0 },
            DomainEvent::ServiceConfigured => D::ServiceConfigured,
            DomainEvent::CustomersMerged { customer, merged, merge_id } => {
                D::CustomersMerged { customer: customer.0, merged: ids(merged), merge_id }
            }
            DomainEvent::MergeUndone { customer, restored, merge_id } => {
                D::MergeUndone { customer: customer.0, restored: ids(restored), merge_id }
            }
            _ => D::Other,
        }
    }
}
