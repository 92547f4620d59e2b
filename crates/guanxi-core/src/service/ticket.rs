//! Service tickets (工单): their vocabularies, the status rule, the append-only entries
//! (replies, notes, moves, assignments, ratings) and the list filter.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::access::{RecordScope, ScopeAttrs, Scoped};
use crate::customer::Level;
use crate::error::{Error, Result, ValidationErrors, ValidationReason};
use crate::ids::{ContactId, CustomerId, DepartmentId, TicketId, UserId};
use crate::macros::vocabulary;
use crate::validate::{limits, optional_long_text, optional_text, required_text};

vocabulary! {
    /// What a ticket is about.
    ///
    /// ```
    /// use guanxi_core::service::TicketKind;
    /// assert_eq!("投诉".parse::<TicketKind>().unwrap(), TicketKind::Complaint);
    /// ```
    pub enum TicketKind {
        /// A question.
        Inquiry = "inquiry" / "咨询",
        /// A complaint.
        Complaint = "complaint" / "投诉",
        /// A suggestion.
        Suggestion = "suggestion" / "建议",
        /// Something is broken.
        Fault = "fault" / "故障",
    }
}

vocabulary! {
    /// How urgent a ticket is; SLA policies are chosen by it.
    ///
    /// ```
    /// use guanxi_core::service::Priority;
    /// assert!(Priority::Urgent > Priority::Low);
    /// ```
    pub enum Priority {
        /// Low.
        Low = "low" / "低",
        /// Medium.
        Medium = "medium" / "中",
        /// High.
        High = "high" / "高",
        /// Urgent.
        Urgent = "urgent" / "紧急",
    }
}

vocabulary! {
    /// Where a ticket came in.
    ///
    /// ```
    /// use guanxi_core::service::Channel;
    /// assert_eq!("EMAIL".parse::<Channel>().unwrap(), Channel::Email);
    /// ```
    pub enum Channel {
        /// Web form.
        Web = "web" / "网页",
        /// Telephone.
        Phone = "phone" / "电话",
        /// E-mail.
        Email = "email" / "邮件",
        /// Social media (WeChat, Weibo, …).
        Social = "social" / "社交媒体",
        /// Live chat.
        Chat = "chat" / "在线客服",
        /// Mobile app.
        App = "app" / "应用",
        /// Anything else.
        Other = "other" / "其他",
    }
}

vocabulary! {
    /// A ticket's status. Moves follow [`TicketStatus::allows`]; a ticket becomes `assigned`
    /// only through assignment.
    ///
    /// ```
    /// use guanxi_core::service::TicketStatus::*;
    /// assert!(InProgress.allows(PendingCustomer) && PendingCustomer.allows(InProgress));
    /// assert!(!New.allows(Resolved));
    /// ```
    pub enum TicketStatus {
        /// Just created, nobody assigned.
        New = "new" / "新建",
        /// An agent owns it.
        Assigned = "assigned" / "已分配",
        /// Being worked on.
        InProgress = "in_progress" / "处理中",
        /// Waiting for the customer (the SLA clock is paused).
        PendingCustomer = "pending_customer" / "待客户反馈",
        /// Solved.
        Resolved = "resolved" / "已解决",
        /// Closed for good (it can be reopened within the configured window).
        Closed = "closed" / "已关闭",
        /// Withdrawn or invalid.
        Cancelled = "cancelled" / "已取消",
    }
}

impl TicketStatus {
    /// Whether the ticket still needs work.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            TicketStatus::New | TicketStatus::Assigned | TicketStatus::InProgress | TicketStatus::PendingCustomer
        )
    }

    /// Whether a move from `self` to `to` is allowed (reopening — resolved or closed back to
    /// in progress — is allowed here; the facade also checks the reopen window of closed tickets).
    pub fn allows(self, to: TicketStatus) -> bool {
        use TicketStatus::*;
        matches!(
            (self, to),
            (New | Assigned | InProgress | PendingCustomer, Cancelled)
                | (Assigned | PendingCustomer | Resolved | Closed, InProgress)
                | (Assigned | InProgress, PendingCustomer)
                | (Assigned | InProgress | PendingCustomer, Resolved)
                | (Resolved, Closed)
        )
    }

    /// Whether a move is a reopening.
    pub fn is_reopen(self, to: TicketStatus) -> bool {
        matches!(self, TicketStatus::Resolved | TicketStatus::Closed) && to == TicketStatus::InProgress
    }
}

/// A service ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Ticket {
    /// UUIDv7 id.
    pub id: TicketId,
    /// People-facing code, `T` + yyyymmdd + per-day sequence, e.g. `T20240501001`.
    pub code: String,
    /// The customer.
    pub customer_id: Option<CustomerId>,
    /// The contact who raised it.
    pub contact_id: Option<ContactId>,
    /// Kind.
    pub kind: TicketKind,
    /// Priority.
    pub priority: Priority,
    /// Channel.
    pub channel: Channel,
    /// A finer, free-text classification (e.g. 退款申请, "Billing inquiry").
    pub category: Option<String>,
    /// Subject.
    pub subject: String,
    /// Description.
    pub description: Option<String>,
    /// Status.
    pub status: TicketStatus,
    /// The agent who owns it.
    pub assignee: Option<UserId>,
    /// The skill group it is queued in.
    pub group: Option<String>,
    /// The skill it needs (for skill-based assignment).
    pub skill: Option<String>,
    /// How many times it was escalated.
    pub escalation_level: u32,
    /// The assignee's department (for department scopes).
    pub department: Option<DepartmentId>,
    /// The customer's province at creation (for region scopes).
    pub province: Option<String>,
    /// The customer's level at creation (SLA policies may depend on it).
    pub customer_level: Option<Level>,
    /// How it was solved.
    pub resolution: Option<String>,
    /// The customer's rating, 1–5.
    pub satisfaction: Option<u8>,
    /// The customer's comment with the rating.
    pub satisfaction_comment: Option<String>,
    /// Risk keywords found in it or its replies.
    pub risk_flags: BTreeSet<String>,
    /// The SLA targets chosen for it (none when no policy applies).
    pub sla: Option<SlaTargets>,
    /// Business seconds its resolution clock was paused so far (pending customer, and the
    /// time between a resolve and a reopen).
    pub sla_paused_secs: i64,
    /// Since when it waits for the customer.
    pub pending_since: Option<DateTime<Utc>>,
    /// How many times it was reopened.
    pub reopen_count: u32,
    /// Created (may precede `recorded_at` for imported tickets).
    pub created_at: DateTime<Utc>,
    /// First public reply by an agent.
    pub first_response_at: Option<DateTime<Utc>>,
    /// Last resolved (cleared on reopen).
    pub resolved_at: Option<DateTime<Utc>>,
    /// Closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Creator.
    pub created_by: UserId,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Last updater.
    pub updated_by: UserId,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

impl Ticket {
    /// The code for the `seq`-th ticket of `day`.
    ///
    /// ```
    /// use guanxi_core::service::Ticket;
    /// let day = chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
    /// assert_eq!(Ticket::code_for(day, 12), "T20240501012");
    /// ```
    pub fn code_for(day: NaiveDate, seq: u64) -> String {
        crate::customer::day_code('T', day, seq)
    }
}

impl Scoped for Ticket {
    fn scope_attrs(&self) -> ScopeAttrs<'_> {
        ScopeAttrs {
            owner: self.assignee.as_ref(),
            creator: Some(&self.created_by),
            department: self.department.as_ref(),
            province: self.province.as_deref(),
        }
    }
}

/// A new ticket.
///
/// ```
/// use guanxi_core::service::{NewTicket, Priority, TicketKind};
/// let t = NewTicket::new("无法登录", TicketKind::Fault, Priority::High).description("提示密码错误").validate()?;
/// assert_eq!(t.subject, "无法登录");
/// assert!(NewTicket::new(" ", TicketKind::Inquiry, Priority::Low).validate().is_err());
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    /// Subject.
    pub subject: String,
    /// Description.
    pub description: Option<String>,
    /// Kind.
    pub kind: TicketKind,
    /// Priority.
    pub priority: Priority,
    /// Channel (default web).
    pub channel: Channel,
    /// Category.
    pub category: Option<String>,
    /// Customer.
    pub customer_id: Option<CustomerId>,
    /// Contact (of the customer).
    pub contact_id: Option<ContactId>,
    /// Skill group to queue it in (default: by the routing rules).
    pub group: Option<String>,
    /// Skill it needs (default: by the routing rules).
    pub skill: Option<String>,
    /// Agent to give it to (default: auto-assignment, when on).
    pub assignee: Option<UserId>,
    /// When it was raised (default now; not in the future): for imports.
    pub created_at: Option<DateTime<Utc>>,
}

impl NewTicket {
    /// A ticket with a subject, kind and priority, from the web channel.
    pub fn new(subject: &str, kind: TicketKind, priority: Priority) -> NewTicket {
        NewTicket {
            subject: subject.to_owned(),
            description: None,
            kind,
            priority,
            channel: Channel::Web,
            category: None,
            customer_id: None,
            contact_id: None,
            group: None,
            skill: None,
            assignee: None,
            created_at: None,
        }
    }

    /// Sets the description.
    pub fn description(mut self, text: &str) -> Self {
        self.description = Some(text.to_owned());
        self
    }

    /// Sets the channel.
    pub fn channel(mut self, channel: Channel) -> Self {
        self.channel = channel;
        self
    }

    /// Sets the category.
    pub fn category(mut self, category: &str) -> Self {
        self.category = Some(category.to_owned());
        self
    }

    /// Sets the customer.
    pub fn customer(mut self, id: CustomerId) -> Self {
        self.customer_id = Some(id);
        self
    }

    /// Sets the skill group.
    pub fn group(mut self, key: &str) -> Self {
        self.group = Some(key.to_owned());
        self
    }

    /// Sets the skill needed.
    pub fn skill(mut self, skill: &str) -> Self {
        self.skill = Some(skill.to_owned());
        self
    }

    /// Sets when it was raised.
    pub fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.created_at = Some(at);
        self
    }

    /// Normalizes and checks every field, reporting all failures.
    pub fn validate(self) -> Result<NewTicket> {
        let mut errs = ValidationErrors::default();
        let subject = required_text(&mut errs, "subject", &self.subject, limits::NAME);
        let description = optional_long_text(&mut errs, "description", self.description.as_deref(), limits::LONG);
        let group = optional_text(&mut errs, "group", self.group.as_deref(), limits::SHORT);
        let category = optional_text(&mut errs, "category", self.category.as_deref(), limits::SHORT);
        let skill = optional_text(&mut errs, "skill", self.skill.as_deref(), limits::SHORT).map(|s| s.to_lowercase());
        if self.contact_id.is_some() && self.customer_id.is_none() {
            errs.push("contact_id", ValidationReason::Invalid { detail: "needs the ticket's customer".into() });
        }
        errs.into_result(NewTicket { subject, description, group, skill, category, ..self })
    }
}

/// Why a ticket changed hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum AssignReason {
    /// Chosen by the assignment rules.
    Auto,
    /// Given to an agent or group by someone.
    Transfer,
    /// Moved up a level.
    Escalation,
}

impl AssignReason {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignReason::Auto => "auto",
            AssignReason::Transfer => "transfer",
            AssignReason::Escalation => "escalation",
        }
    }
}

/// What one ticket entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TicketChange {
    /// The ticket was raised.
    Created,
    /// A public reply to the customer, or an internal note (`public: false`).
    Reply {
        /// Text.
        body: String,
        /// Seen by the customer.
        public: bool,
        /// Risk keywords found in it.
        risk_flags: Vec<String>,
    },
    /// The status moved.
    Status {
        /// From.
        from: TicketStatus,
        /// To.
        to: TicketStatus,
        /// The resolution given when resolving.
        resolution: Option<String>,
    },
    /// The assignee or group changed.
    Assigned {
        /// Previous agent.
        from_user: Option<UserId>,
        /// New agent.
        to_user: Option<UserId>,
        /// Previous group.
        from_group: Option<String>,
        /// New group.
        to_group: Option<String>,
        /// Why.
        reason: AssignReason,
        /// A note on the hand-over.
        note: Option<String>,
    },
    /// The customer rated the service.
    Rated {
        /// 1–5.
        score: u8,
        /// Comment.
        comment: Option<String>,
    },
}

impl TicketChange {
    /// The stable name of the kind of change (its serialized `type`).
    ///
    /// ```
    /// use guanxi_core::service::TicketChange;
    /// assert_eq!(TicketChange::Created.kind(), "created");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            TicketChange::Created => "created",
            TicketChange::Reply { .. } => "reply",
            TicketChange::Status { .. } => "status",
            TicketChange::Assigned { .. } => "assigned",
            TicketChange::Rated { .. } => "rated",
        }
    }
}

/// One append-only entry of a ticket's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketEntry {
    /// The ticket.
    pub ticket_id: TicketId,
    /// 1, 2, … per ticket.
    pub seq: u32,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub by: UserId,
    /// What.
    pub change: TicketChange,
}

/// Conditions on a ticket list; all combine with AND.
///
/// ```
/// use guanxi_core::service::{TicketFilter, TicketStatus};
/// let f = TicketFilter { open: Some(true), ..Default::default() };
/// assert!(f.status.is_none());
/// let _ = TicketFilter::default().status(TicketStatus::New);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    /// Exact status.
    pub status: Option<TicketStatus>,
    /// Open (new, assigned, in progress, pending) or not.
    pub open: Option<bool>,
    /// Assignee.
    pub assignee: Option<UserId>,
    /// Skill group.
    pub group: Option<String>,
    /// Customer.
    pub customer_id: Option<CustomerId>,
    /// Kind.
    pub kind: Option<TicketKind>,
    /// Priority.
    pub priority: Option<Priority>,
    /// Channel.
    pub channel: Option<Channel>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
    /// The records the caller may see (set by the facade).
    pub scope: Option<RecordScope>,
}

impl TicketFilter {
    /// Requires a status.
    pub fn status(mut self, status: TicketStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Requires an assignee.
    pub fn assignee(mut self, user: UserId) -> Self {
        self.assignee = Some(user);
        self
    }

    /// The reference semantics every backend reproduces.
    pub fn matches(&self, t: &Ticket) -> bool {
        self.scope.as_ref().is_none_or(|s| s.admits(t.scope_attrs()))
            && self.status.is_none_or(|s| t.status == s)
            && self.open.is_none_or(|o| t.status.is_open() == o)
            && self.assignee.as_ref().is_none_or(|a| t.assignee.as_ref() == Some(a))
            && self.group.as_ref().is_none_or(|g| t.group.as_ref() == Some(g))
            && self.customer_id.is_none_or(|c| t.customer_id == Some(c))
            && self.kind.is_none_or(|k| t.kind == k)
            && self.priority.is_none_or(|p| t.priority == p)
            && self.channel.is_none_or(|c| t.channel == c)
            && self.created_from.is_none_or(|f| t.created_at >= f)
            && self.created_to.is_none_or(|e| t.created_at < e)
    }
}

/// Checks a satisfaction score: 1 to 5.
///
/// ```
/// use guanxi_core::service::check_satisfaction;
/// assert!(check_satisfaction(5).is_ok() && check_satisfaction(0).is_err());
/// ```
pub fn check_satisfaction(score: u8) -> Result<()> {
    if (1..=5).contains(&score) {
        Ok(())
    } else {
        Err(Error::invalid("satisfaction", ValidationReason::Invalid { detail: format!("{score} is not 1–5") }))
    }
}

/// The targets a ticket runs against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SlaTargets {
    /// The policy they come from.
    pub policy: String,
    /// First-response target, business seconds.
    pub first_response_secs: i64,
    /// Resolution target, business seconds.
    pub resolution_secs: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rule_table() {
        use TicketStatus::*;
        let allowed: Vec<(TicketStatus, TicketStatus)> = TicketStatus::ALL
            .iter()
            .flat_map(|a| TicketStatus::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.allows(*b))
            .collect();
        assert_eq!(
            allowed,
            [
                (New, Cancelled),
                (Assigned, InProgress),
                (Assigned, PendingCustomer),
                (Assigned, Resolved),
                (Assigned, Cancelled),
                (InProgress, PendingCustomer),
                (InProgress, Resolved),
                (InProgress, Cancelled),
                (PendingCustomer, InProgress),
                (PendingCustomer, Resolved),
                (PendingCustomer, Cancelled),
                (Resolved, InProgress),
                (Resolved, Closed),
                (Closed, InProgress),
            ]
        );
        assert!(!Cancelled.is_open() && Closed.is_reopen(InProgress));
    }
}
