//! Marketing (营销): behaviour events a customer leaves (page views, course enquiries,
//! purchases) and segments (客群) — boolean expressions over a customer's fields, tags and
//! events, with a text form, a parser with line:column errors, a printer and the reference
//! evaluator every store must agree with.

pub mod event;
pub mod saved;
pub mod segment;
pub mod settings;

mod parse;

pub use event::{BehaviourEvent, EventRange, MAX_EVENT_PROPERTIES, MAX_PROPERTY_TEXT};
pub use parse::{MAX_SEGMENT_PREDICATES, MAX_SEGMENT_TEXT, MAX_SEGMENT_VALUES, SegmentSyntaxError};
pub use saved::{
    DynamicTag, MAX_MANUAL_MEMBERS, MAX_SAVED_SEGMENTS, MAX_SEGMENT_DESCRIPTION, MAX_SEGMENT_NAME, MembershipChange,
    MembershipQuery, MembershipReason, SavedSegment, SegmentDependencies, SegmentMembership, check_references,
};
pub use segment::{
    CmpOp, CountSource, EventCount, Explained, Literal, Predicate, PropertyFilter, Segment, SegmentContext,
    SegmentFacts, SegmentField, fold_literal,
};
pub use settings::{MAX_RETENTION_DAYS, MarketingSettings};
