//! Domain events, delivered to subscribers after the change that caused them commits.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::EntityKind;
use crate::ids::{ArticleId, ContactId, CustomerId, InteractionId, LeadId, OpportunityId, TaskId, TicketId, UserId};

/// What happened.
///
/// ```
/// use guanxi_core::{CustomerId, DomainEvent};
/// let e = DomainEvent::TagAdded { customer: CustomerId(uuid::Uuid::nil()), tag: "VIP".into() };
/// assert_eq!(e.name(), "tag_added");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum DomainEvent {
    /// A customer was created.
    CustomerCreated {
        /// Its id.
        customer: CustomerId,
        /// Its code.
        code: String,
    },
    /// Fields of a customer changed.
    CustomerUpdated {
        /// Its id.
        customer: CustomerId,
        /// The changed field paths.
        fields: Vec<String>,
    },
    /// A customer was soft-deleted.
    CustomerDeleted {
        /// Its id.
        customer: CustomerId,
    },
    /// A soft-deleted customer was restored.
    CustomerRestored {
        /// Its id.
        customer: CustomerId,
    },
    /// A contact was added.
    ContactAdded {
        /// Customer.
        customer: CustomerId,
        /// Contact.
        contact: ContactId,
    },
    /// A contact changed (including becoming or ceasing to be primary).
    ContactUpdated {
        /// Customer.
        customer: CustomerId,
        /// Contact.
        contact: ContactId,
        /// Changed field paths.
        fields: Vec<String>,
    },
    /// A contact was removed.
    ContactRemoved {
        /// Customer.
        customer: CustomerId,
        /// Contact.
        contact: ContactId,
    },
    /// A tag was defined or its group changed.
    TagDefined {
        /// Tag name.
        tag: String,
    },
    /// A tag was added to a customer.
    TagAdded {
        /// Customer.
        customer: CustomerId,
        /// Tag name.
        tag: String,
    },
    /// A tag was removed from a customer.
    TagRemoved {
        /// Customer.
        customer: CustomerId,
        /// Tag name.
        tag: String,
    },
    /// An interaction was logged.
    InteractionLogged {
        /// Customer.
        customer: CustomerId,
        /// Interaction.
        interaction: InteractionId,
    },
    /// A custom field was defined.
    CustomFieldDefined {
        /// Entity.
        entity: EntityKind,
        /// Key.
        key: String,
    },
    /// A user, department or role was added, changed or removed.
    AccessChanged {
        /// User, department or role.
        entity: EntityKind,
        /// Its id.
        id: String,
    },
    /// A pipeline definition or the lead rules changed.
    SalesConfigured {
        /// The setting's key (`pipeline.<key>` or `lead_rules`).
        key: String,
    },
    /// An opportunity was created.
    OpportunityCreated {
        /// Its id.
        opportunity: OpportunityId,
        /// Its code.
        code: String,
    },
    /// Fields of an opportunity changed.
    OpportunityUpdated {
        /// Its id.
        opportunity: OpportunityId,
        /// The changed fields.
        fields: Vec<String>,
    },
    /// An opportunity moved to another stage.
    StageChanged {
        /// Its id.
        opportunity: OpportunityId,
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// A lead was created.
    LeadCreated {
        /// Its id.
        lead: LeadId,
        /// Its code.
        code: String,
    },
    /// A lead became a customer, contact and opportunity.
    LeadConverted {
        /// The lead.
        lead: LeadId,
        /// The customer (new or linked).
        customer: CustomerId,
        /// The opportunity created.
        opportunity: Option<OpportunityId>,
    },
    /// A task was created.
    TaskCreated {
        /// Its id.
        task: TaskId,
    },
    /// A task was done.
    TaskCompleted {
        /// Its id.
        task: TaskId,
    },
    /// A service ticket was raised.
    TicketCreated {
        /// Its id.
        ticket: TicketId,
        /// Its code.
        code: String,
        /// Its customer.
        customer: Option<CustomerId>,
    },
    /// A ticket changed: status, assignment, reply, rating or priority.
    TicketChanged {
        /// Its id.
        ticket: TicketId,
        /// Its status after the change.
        status: crate::service::TicketStatus,
        /// Its customer.
        customer: Option<CustomerId>,
    },
    /// Risk keywords were found in a ticket or a reply: a supervisor should look.
    TicketFlagged {
        /// Its id.
        ticket: TicketId,
        /// The keywords found.
        keywords: Vec<String>,
        /// Its customer.
        customer: Option<CustomerId>,
    },
    /// A ticket was resolved: time to ask the customer for a rating (record it with
    /// `Crm::rate_ticket`).
    SatisfactionSurveyDue {
        /// The ticket.
        ticket: TicketId,
        /// Its customer.
        customer: Option<CustomerId>,
        /// The contact who raised it.
        contact: Option<ContactId>,
    },
    /// A knowledge-base article was created or changed.
    ArticleSaved {
        /// Its id.
        article: ArticleId,
    },
    /// The service settings changed.
    ServiceConfigured,
    /// The marketing settings changed.
    MarketingConfigured,
    /// Behaviour events older than the retention were removed.
    EventsPurged {
        /// Events before this instant were removed.
        before: DateTime<Utc>,
        /// How many.
        count: u64,
    },
    /// A saved segment was saved (created or changed) or deleted.
    SegmentSaved {
        /// Its name.
        segment: String,
        /// True when it was deleted.
        deleted: bool,
    },
    /// A customer entered a saved segment.
    SegmentEntered {
        /// The segment.
        segment: String,
        /// The customer.
        customer: CustomerId,
        /// Why.
        reason: crate::marketing::MembershipReason,
    },
    /// A customer left a saved segment.
    SegmentExited {
        /// The segment.
        segment: String,
        /// The customer.
        customer: CustomerId,
        /// Why.
        reason: crate::marketing::MembershipReason,
    },
    /// A catalog product was created or changed.
    ProductSaved {
        /// Its id.
        product: crate::ids::ProductId,
        /// Its code.
        code: String,
    },
    /// A purchase was recorded.
    PurchaseRecorded {
        /// Its id.
        purchase: crate::ids::PurchaseId,
        /// The customer.
        customer: CustomerId,
    },
    /// A recorded purchase changed (a refund, a corrected amount).
    PurchaseUpdated {
        /// Its id.
        purchase: crate::ids::PurchaseId,
        /// The customer.
        customer: CustomerId,
        /// Its status now.
        status: crate::commerce::PurchaseStatus,
    },
    /// Customers were merged into a survivor (they remain as tombstones).
    CustomersMerged {
        /// The survivor.
        customer: CustomerId,
        /// The merged records.
        merged: Vec<CustomerId>,
        /// The merge, for undo.
        merge_id: String,
    },
    /// A merge was undone: the merged records are back.
    MergeUndone {
        /// The survivor.
        customer: CustomerId,
        /// The records restored.
        restored: Vec<CustomerId>,
        /// The merge.
        merge_id: String,
    },
}

impl DomainEvent {
    /// Stable snake-case name of the event type.
    pub fn name(&self) -> &'static str {
        match self {
            DomainEvent::CustomerCreated { .. } => "customer_created",
            DomainEvent::CustomerUpdated { .. } => "customer_updated",
            DomainEvent::CustomerDeleted { .. } => "customer_deleted",
            DomainEvent::CustomerRestored { .. } => "customer_restored",
            DomainEvent::ContactAdded { .. } => "contact_added",
            DomainEvent::ContactUpdated { .. } => "contact_updated",
            DomainEvent::ContactRemoved { .. } => "contact_removed",
            DomainEvent::TagDefined { .. } => "tag_defined",
            DomainEvent::TagAdded { .. } => "tag_added",
            DomainEvent::TagRemoved { .. } => "tag_removed",
            DomainEvent::InteractionLogged { .. } => "interaction_logged",
            DomainEvent::CustomFieldDefined { .. } => "custom_field_defined",
            DomainEvent::AccessChanged { .. } => "access_changed",
            DomainEvent::SalesConfigured { .. } => "sales_configured",
            DomainEvent::OpportunityCreated { .. } => "opportunity_created",
            DomainEvent::OpportunityUpdated { .. } => "opportunity_updated",
            DomainEvent::StageChanged { .. } => "stage_changed",
            DomainEvent::LeadCreated { .. } => "lead_created",
            DomainEvent::LeadConverted { .. } => "lead_converted",
            DomainEvent::TaskCreated { .. } => "task_created",
            DomainEvent::TaskCompleted { .. } => "task_completed",
            DomainEvent::TicketCreated { .. } => "ticket_created",
            DomainEvent::TicketChanged { .. } => "ticket_changed",
            DomainEvent::TicketFlagged { .. } => "ticket_flagged",
            DomainEvent::SatisfactionSurveyDue { .. } => "satisfaction_survey_due",
            DomainEvent::ArticleSaved { .. } => "article_saved",
            DomainEvent::ServiceConfigured => "service_configured",
            DomainEvent::MarketingConfigured => "marketing_configured",
            DomainEvent::EventsPurged { .. } => "events_purged",
            DomainEvent::SegmentSaved { .. } => "segment_saved",
            DomainEvent::SegmentEntered { .. } => "segment_entered",
            DomainEvent::SegmentExited { .. } => "segment_exited",
            DomainEvent::ProductSaved { .. } => "product_saved",
            DomainEvent::PurchaseRecorded { .. } => "purchase_recorded",
            DomainEvent::PurchaseUpdated { .. } => "purchase_updated",
            DomainEvent::CustomersMerged { .. } => "customers_merged",
            DomainEvent::MergeUndone { .. } => "merge_undone",
        }
    }

    /// The customer the event concerns, if any.
    pub fn customer(&self) -> Option<CustomerId> {
        match self {
            DomainEvent::CustomerCreated { customer, .. }
            | DomainEvent::CustomerUpdated { customer, .. }
            | DomainEvent::CustomerDeleted { customer }
            | DomainEvent::CustomerRestored { customer }
            | DomainEvent::ContactAdded { customer, .. }
            | DomainEvent::ContactUpdated { customer, .. }
            | DomainEvent::ContactRemoved { customer, .. }
            | DomainEvent::TagAdded { customer, .. }
            | DomainEvent::TagRemoved { customer, .. }
            | DomainEvent::InteractionLogged { customer, .. }
            | DomainEvent::LeadConverted { customer, .. }
            | DomainEvent::CustomersMerged { customer, .. }
            | DomainEvent::SegmentEntered { customer, .. }
            | DomainEvent::SegmentExited { customer, .. }
            | DomainEvent::PurchaseRecorded { customer, .. }
            | DomainEvent::PurchaseUpdated { customer, .. }
            | DomainEvent::MergeUndone { customer, .. } => Some(*customer),
            DomainEvent::TicketCreated { customer, .. }
            | DomainEvent::TicketChanged { customer, .. }
            | DomainEvent::TicketFlagged { customer, .. }
            | DomainEvent::SatisfactionSurveyDue { customer, .. } => *customer,
            DomainEvent::TagDefined { .. }
            | DomainEvent::ProductSaved { .. }
            | DomainEvent::CustomFieldDefined { .. }
            | DomainEvent::AccessChanged { .. }
            | DomainEvent::SalesConfigured { .. }
            | DomainEvent::OpportunityCreated { .. }
            | DomainEvent::OpportunityUpdated { .. }
            | DomainEvent::StageChanged { .. }
            | DomainEvent::LeadCreated { .. }
            | DomainEvent::TaskCreated { .. }
            | DomainEvent::TaskCompleted { .. }
            | DomainEvent::ArticleSaved { .. }
            | DomainEvent::ServiceConfigured
            | DomainEvent::MarketingConfigured
            | DomainEvent::SegmentSaved { .. }
            | DomainEvent::EventsPurged { .. } => None,
        }
    }
}

/// An event with when it happened and who caused it.
///
/// ```
/// use guanxi_core::{DomainEvent, Event, UserId};
/// let e = Event { at: chrono::Utc::now(), actor: UserId::new("alice").unwrap(),
///                 payload: DomainEvent::TagDefined { tag: "VIP".into() } };
/// assert_eq!(e.payload.name(), "tag_defined");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Commit instant (from the injected clock).
    pub at: DateTime<Utc>,
    /// The acting user.
    pub actor: UserId,
    /// What happened.
    pub payload: DomainEvent,
}
