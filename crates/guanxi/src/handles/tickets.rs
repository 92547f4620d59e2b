//! Tickets (工单): [`Tickets`].

use chrono::{DateTime, Utc};

use crate::crm::Crm;
use crate::*;
use guanxi_core::service::*;

/// Tickets (工单): create, read, list, count; reply, move, assign, escalate, rate, reprioritize; the SLA state.
///
/// Got from [`Crm`] as `crm.service().tickets()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// # use guanxi::service::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// let t = crm.service().tickets().create(&alice, NewTicket::new("无法登录", TicketKind::Fault, Priority::High))?;
/// assert_eq!(crm.service().tickets().get_by_code(&alice, &t.code)?.id, t.id);
/// assert_eq!(crm.service().tickets().count(&alice, &TicketFilter::default())?, 1);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Tickets<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Tickets<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tickets")
    }
}

impl<'a> Tickets<'a> {
    /// Raises a ticket: routed to a skill group by the routing rules (unless the input names
    /// one), given to an agent by the group's strategy when auto-assignment is on, checked for
    /// risk keywords, and given the SLA targets of the most specific policy.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let admin = Actor::user("admin")?;
    /// let mut s = ServiceSettings::default();
    /// s.groups.push(SkillGroup::new("l1", "一线", AssignStrategy::RoundRobin).agent(Agent::new(UserId::new("amy")?, 0, &[])));
    /// s.default_group = Some("l1".into());
    /// crm.service().set_settings(&admin, s)?;
    /// let t = crm.service().tickets().create(&admin, NewTicket::new("申请退款", TicketKind::Complaint, Priority::High))?;
    /// assert_eq!((t.status, t.assignee.as_ref().map(|u| u.as_str())), (TicketStatus::Assigned, Some("amy")));
    /// assert!(t.risk_flags.contains("退款"));
    /// assert_eq!(t.sla.unwrap().first_response_secs, 3600);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, input: NewTicket) -> Result<Ticket> {
        self.crm.create_ticket(actor, input)
    }

    /// A ticket by id.
    pub fn get(&self, actor: &Actor, id: TicketId) -> Result<Ticket> {
        self.crm.ticket(actor, id)
    }

    /// A ticket by code.
    pub fn get_by_code(&self, actor: &Actor, code: &str) -> Result<Ticket> {
        self.crm.ticket_by_code(actor, code)
    }

    /// One page of the tickets matching `filter` that the actor may read.
    pub fn list(&self, actor: &Actor, filter: &TicketFilter, page: PageRequest) -> Result<Page<Ticket>> {
        self.crm.list_tickets(actor, filter, page)
    }

    /// Every ticket matching `filter` that the actor may read.
    pub fn list_all(&self, actor: &Actor, filter: &TicketFilter) -> Result<Vec<Ticket>> {
        self.crm.all_tickets(actor, filter)
    }

    /// How many tickets match `filter` among those the actor may read.
    pub fn count(&self, actor: &Actor, filter: &TicketFilter) -> Result<u64> {
        self.crm.count_tickets(actor, filter)
    }

    /// A ticket's history: creation, replies and notes, moves, assignments, rating.
    pub fn entries(&self, actor: &Actor, id: TicketId) -> Result<Vec<TicketEntry>> {
        self.crm.ticket_entries(actor, id)
    }

    /// Adds a public reply or an internal note. The first public reply is the ticket's first
    /// response; risk keywords in the text flag the ticket. Closed and cancelled tickets take
    /// no replies.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let amy = Actor::user("amy")?;
    /// let t = crm.service().tickets().create(&amy, NewTicket::new("发票开错了", TicketKind::Inquiry, Priority::Medium))?;
    /// let t = crm.service().tickets().reply(&amy, t.id, t.version, TicketReply::note("客户说要投诉"))?;
    /// assert!(t.first_response_at.is_none() && t.risk_flags.contains("投诉"));
    /// let t = crm.service().tickets().reply(&amy, t.id, t.version, TicketReply::public("已为您重开发票"))?;
    /// assert!(t.first_response_at.is_some());
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn reply(&self, actor: &Actor, id: TicketId, expected_version: u64, reply: TicketReply) -> Result<Ticket> {
        self.crm.reply_ticket(actor, id, expected_version, reply)
    }

    /// Moves a ticket's status by [`TicketStatus::allows`]: resolving needs a resolution;
    /// pending customer pauses the resolution clock until the next move; a reopen (resolved or
    /// closed → in progress) is allowed for closed tickets within the reopen window, and the
    /// time it spent resolved does not count against the SLA. Tickets become `assigned` only
    /// through [`Tickets::assign`](crate::Tickets::assign).
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let amy = Actor::user("amy")?;
    /// let t = crm.service().tickets().create(&amy, NewTicket::new("无法登录", TicketKind::Fault, Priority::High))?;
    /// let t = crm.service().tickets().assign(&amy, t.id, t.version, AssignTo::Agent(UserId::new("amy")?), None)?;
    /// let t = crm.service().tickets().move_to(&amy, t.id, t.version, TicketStatus::InProgress, TicketMove::default())?;
    /// let err = crm.service().tickets().move_to(&amy, t.id, t.version, TicketStatus::Closed, TicketMove::default()).unwrap_err();
    /// assert!(matches!(err, Error::InvalidState(_)));
    /// let err = crm.service().tickets().move_to(&amy, t.id, t.version, TicketStatus::Resolved, TicketMove::default()).unwrap_err();
    /// assert!(matches!(&err, Error::Validation(v) if v.field("resolution").is_some()));
    /// let t = crm.service().tickets().move_to(&amy, t.id, t.version, TicketStatus::Resolved, TicketMove::default().resolution("已重置密码"))?;
    /// assert!(t.resolved_at.is_some());
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn move_to(
        &self,
        actor: &Actor,
        id: TicketId,
        expected_version: u64,
        to: TicketStatus,
        change: TicketMove,
    ) -> Result<Ticket> {
        self.crm.move_ticket(actor, id, expected_version, to, change)
    }

    /// Gives a ticket to an agent or a group, or lets the group's strategy pick
    /// ([`AssignTo::Auto`]). Giving it to someone other than oneself needs the assign
    /// permission. A `new` ticket that gets an agent becomes `assigned`.
    pub fn assign(
        &self,
        actor: &Actor,
        id: TicketId,
        expected_version: u64,
        to: AssignTo,
        note: Option<&str>,
    ) -> Result<Ticket> {
        self.crm.assign_ticket(actor, id, expected_version, to, note)
    }

    /// Escalates a ticket to its group's escalation group (an agent of it by its strategy).
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let admin = Actor::user("admin")?;
    /// let mut s = ServiceSettings::default();
    /// s.groups = vec![
    ///     SkillGroup::new("l1", "一线", AssignStrategy::RoundRobin).agent(Agent::new(UserId::new("amy")?, 0, &[])).escalate_to("l2"),
    ///     SkillGroup::new("l2", "二线", AssignStrategy::LeastLoaded).agent(Agent::new(UserId::new("bo")?, 0, &[])),
    /// ];
    /// s.default_group = Some("l1".into());
    /// crm.service().set_settings(&admin, s)?;
    /// let t = crm.service().tickets().create(&admin, NewTicket::new("系统宕机", TicketKind::Fault, Priority::Urgent))?;
    /// let t = crm.service().tickets().escalate(&admin, t.id, t.version, Some("需要二线排查"))?;
    /// assert_eq!((t.group.as_deref(), t.assignee.as_ref().map(|u| u.as_str()), t.escalation_level), (Some("l2"), Some("bo"), 1));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn escalate(&self, actor: &Actor, id: TicketId, expected_version: u64, note: Option<&str>) -> Result<Ticket> {
        self.crm.escalate_ticket(actor, id, expected_version, note)
    }

    /// Records the customer's rating (1–5, once, after resolution).
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let amy = Actor::user("amy")?;
    /// let t = crm.service().tickets().create(&amy, NewTicket::new("咨询发票", TicketKind::Inquiry, Priority::Low))?;
    /// assert!(matches!(crm.service().tickets().rate(&amy, t.id, t.version, 5, None), Err(Error::InvalidState(_))));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn rate(
        &self,
        actor: &Actor,
        id: TicketId,
        expected_version: u64,
        score: u8,
        comment: Option<&str>,
    ) -> Result<Ticket> {
        self.crm.rate_ticket(actor, id, expected_version, score, comment)
    }

    /// Changes a ticket's priority; its SLA targets are chosen again (from its creation).
    pub fn set_priority(
        &self,
        actor: &Actor,
        id: TicketId,
        expected_version: u64,
        priority: Priority,
    ) -> Result<Ticket> {
        self.crm.set_ticket_priority(actor, id, expected_version, priority)
    }

    /// One ticket's SLA at `at` (None without targets or when cancelled).
    pub fn sla(&self, actor: &Actor, id: TicketId, at: DateTime<Utc>) -> Result<Option<TicketSla>> {
        self.crm.ticket_sla(actor, id, at)
    }
}
