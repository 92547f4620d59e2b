//! The rules of a ticket's replies and status moves, as pure functions of the ticket, the
//! service settings and the instant of the change: which moves are allowed, what a reply
//! stamps, and how much business time a pause (pending the customer, or resolved before a
//! reopen) takes off the resolution SLA. The facade runs them inside one ticket change.

use chrono::{DateTime, Duration, Utc};

use super::{BusinessClock, ServiceSettings, Ticket, TicketChange, TicketStatus, risk_flags};
use crate::error::{Error, Result, ValidationReason};
use crate::limits;
use crate::normalize::clean_multiline;

/// A reply's body, cleaned: required and at most [`limits::LONG`] characters.
///
/// ```
/// use guanxi_core::service::reply_body;
/// assert_eq!(reply_body("  请提供截图 \r\n").unwrap(), "请提供截图");
/// assert!(reply_body("   ").is_err());
/// ```
pub fn reply_body(raw: &str) -> Result<String> {
    let body = clean_multiline(raw);
    if body.is_empty() {
        return Err(Error::invalid("body", ValidationReason::Required));
    }
    if body.chars().count() > limits::LONG {
        return Err(Error::invalid("body", ValidationReason::TooLong { max: limits::LONG }));
    }
    Ok(body)
}

/// The ticket after a reply (`public`) or internal note at `at`, and its history entry: a
/// closed or cancelled ticket takes none; the first public reply is the first response; risk
/// keywords in the body flag the ticket.
pub fn apply_reply(
    t: &Ticket,
    settings: &ServiceSettings,
    body: String,
    public: bool,
    at: DateTime<Utc>,
) -> Result<(Ticket, TicketChange)> {
    if matches!(t.status, TicketStatus::Closed | TicketStatus::Cancelled) {
        return Err(Error::InvalidState(format!("ticket {} is {} and takes no replies", t.code, t.status)));
    }
    let flags = risk_flags(&settings.risk_keywords, &body);
    let mut next = t.clone();
    next.risk_flags.extend(flags.iter().cloned());
    if public && next.first_response_at.is_none() {
        next.first_response_at = Some(at);
    }
    Ok((next, TicketChange::Reply { body, public, risk_flags: flags }))
}

/// The ticket after moving its status to `to` at `at`, and its history entry.
///
/// The status rule ([`TicketStatus::allows`]) decides the move; "assigned" comes only from
/// assigning; "resolved" needs a resolution. Leaving "pending customer" adds the pause, in
/// business time of the settings' calendar, to `sla_paused_secs`; so does reopening a resolved
/// ticket (the time it sat resolved), which is refused once it has been closed longer than the
/// reopen window.
pub fn apply_move(
    t: &Ticket,
    settings: &ServiceSettings,
    to: TicketStatus,
    resolution: Option<String>,
    at: DateTime<Utc>,
) -> Result<(Ticket, TicketChange)> {
    let resolution = resolution.as_deref().map(clean_multiline).filter(|r| !r.is_empty());
    let from = t.status;
    if to == TicketStatus::Assigned {
        return Err(Error::InvalidState(format!("ticket {} becomes assigned only by assigning it", t.code)));
    }
    if !from.allows(to) {
        return Err(Error::InvalidState(format!("ticket {} cannot move from {from} to {to}", t.code)));
    }
    if to == TicketStatus::Resolved && resolution.is_none() {
        return Err(Error::invalid("resolution", ValidationReason::Required));
    }
    // Business time a pause took; the calendar is compiled only when a pause ends.
    let paused = |since| BusinessClock::new(&settings.calendar).map(|c| c.between(since, at).max(0));
    let mut next = t.clone();
    next.status = to;
    if let Some(p) = t.pending_since {
        next.sla_paused_secs += paused(p)?;
        next.pending_since = None;
    }
    if from.is_reopen(to) {
        if let Some(closed) = t.closed_at {
            let window = Duration::days(i64::from(settings.reopen_window_days));
            if at - closed > window {
                return Err(Error::InvalidState(format!(
                    "ticket {} was closed more than {} days ago and cannot be reopened",
                    t.code, settings.reopen_window_days
                )));
            }
        }
        if let Some(r) = t.resolved_at {
            next.sla_paused_secs += paused(r)?;
        }
        next.resolved_at = None;
        next.closed_at = None;
        next.reopen_count += 1;
    }
    match to {
        TicketStatus::PendingCustomer => next.pending_since = Some(at),
        TicketStatus::Resolved => {
            next.resolved_at = Some(at);
            next.resolution = resolution.clone();
        }
        TicketStatus::Closed => next.closed_at = Some(at),
        _ => {}
    }
    let resolution = resolution.filter(|_| to == TicketStatus::Resolved);
    Ok((next, TicketChange::Status { from, to, resolution }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::TimeZone;

    use super::*;
    use crate::service::{Channel, Priority, TicketKind};
    use crate::{TicketId, UserId};

    /// Monday 2024-05-06 10:00 in China (02:00 UTC): inside office hours.
    fn monday(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 6, hour - 8, 0, 0).unwrap()
    }

    fn ticket(status: TicketStatus) -> Ticket {
        let user = UserId::new("amy").unwrap();
        Ticket {
            id: TicketId(uuid::Uuid::from_u128(1)),
            code: "T20240506001".into(),
            customer_id: None,
            contact_id: None,
            kind: TicketKind::Fault,
            priority: Priority::High,
            channel: Channel::Web,
            category: None,
            subject: "无法登录".into(),
            description: None,
            status,
            assignee: Some(user.clone()),
            group: None,
            skill: None,
            escalation_level: 0,
            department: None,
            province: None,
            customer_level: None,
            resolution: None,
            satisfaction: None,
            satisfaction_comment: None,
            risk_flags: BTreeSet::new(),
            sla: None,
            sla_paused_secs: 0,
            pending_since: None,
            reopen_count: 0,
            created_at: monday(9),
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            created_by: user.clone(),
            recorded_at: monday(9),
            updated_by: user,
            updated_at: monday(9),
            version: 1,
        }
    }

    #[test]
    fn the_first_public_reply_is_the_first_response_and_notes_are_not() {
        let s = ServiceSettings::default();
        let t = ticket(TicketStatus::InProgress);
        let (noted, _) = apply_reply(&t, &s, "内部备注".into(), false, monday(10)).unwrap();
        assert_eq!(noted.first_response_at, None);
        let (replied, change) = apply_reply(&noted, &s, "我要投诉你们".into(), true, monday(11)).unwrap();
        assert_eq!(replied.first_response_at, Some(monday(11)));
        assert!(matches!(change, TicketChange::Reply { public: true, .. }));
        let (again, _) = apply_reply(&replied, &s, "补充".into(), true, monday(12)).unwrap();
        assert_eq!(again.first_response_at, Some(monday(11)));
        let closed = ticket(TicketStatus::Closed);
        assert!(matches!(apply_reply(&closed, &s, "x".into(), true, monday(10)), Err(Error::InvalidState(_))));
    }

    #[test]
    fn a_pause_pending_the_customer_takes_its_business_time_off_the_sla() {
        let s = ServiceSettings::default(); // 09:00–12:00 and 13:30–18:00, Monday to Friday
        let t = ticket(TicketStatus::InProgress);
        let (pending, _) = apply_move(&t, &s, TicketStatus::PendingCustomer, None, monday(10)).unwrap();
        assert_eq!(pending.pending_since, Some(monday(10)));
        let (back, change) = apply_move(&pending, &s, TicketStatus::InProgress, None, monday(14)).unwrap();
        // 10:00–12:00 and 13:30–14:00: the lunch break is not business time.
        assert_eq!((back.pending_since, back.sla_paused_secs), (None, 9000));
        let expected = TicketChange::Status {
            from: TicketStatus::PendingCustomer,
            to: TicketStatus::InProgress,
            resolution: None,
        };
        assert_eq!(change, expected);
    }

    #[test]
    fn resolving_needs_a_resolution_and_reopening_counts_the_time_resolved_as_paused() {
        let s = ServiceSettings::default();
        let t = ticket(TicketStatus::InProgress);
        let refused = apply_move(&t, &s, TicketStatus::Resolved, Some("  ".into()), monday(10));
        assert!(matches!(refused, Err(Error::Validation(v)) if v.field("resolution").is_some()));
        let (resolved, _) = apply_move(&t, &s, TicketStatus::Resolved, Some("已重置".into()), monday(10)).unwrap();
        assert_eq!((resolved.resolved_at, resolved.resolution.as_deref()), (Some(monday(10)), Some("已重置")));
        let (reopened, _) = apply_move(&resolved, &s, TicketStatus::InProgress, None, monday(11)).unwrap();
        assert_eq!((reopened.reopen_count, reopened.resolved_at, reopened.sla_paused_secs), (1, None, 3600));
        assert!(matches!(apply_move(&t, &s, TicketStatus::Assigned, None, monday(10)), Err(Error::InvalidState(_))));
    }

    #[test]
    fn a_ticket_closed_longer_than_the_window_stays_closed() {
        let s = ServiceSettings::default();
        let mut closed = ticket(TicketStatus::Closed);
        closed.resolved_at = Some(monday(10));
        closed.closed_at = Some(monday(11));
        let late = monday(11) + Duration::days(i64::from(s.reopen_window_days) + 1);
        assert!(matches!(apply_move(&closed, &s, TicketStatus::InProgress, None, late), Err(Error::InvalidState(_))));
        let (reopened, _) = apply_move(&closed, &s, TicketStatus::InProgress, None, monday(15)).unwrap();
        assert_eq!((reopened.closed_at, reopened.reopen_count), (None, 1));
    }
}
