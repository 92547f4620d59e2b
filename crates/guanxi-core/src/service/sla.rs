//! SLA policies and their evaluation at an instant, in business time.
//!
//! A ticket gets its targets when it is created (and again when its priority changes): the
//! most specific policy for its priority, kind and customer level. Evaluation needs only the
//! ticket's clock fields ([`SlaClock`]) and a [`BusinessClock`], so a store can hand out narrow
//! rows for a whole backlog.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::calendar::BusinessClock;
use super::ticket::{Priority, SlaTargets, Ticket, TicketKind, TicketStatus};
use crate::customer::Level;
use crate::error::{Result, ValidationErrors, ValidationReason};
use crate::ids::{TicketId, UserId};

/// Targets for the tickets of one priority, optionally narrowed to a kind or a customer level.
///
/// ```
/// use guanxi_core::service::{Priority, SlaPolicy};
/// let p = SlaPolicy::new("urgent", Priority::Urgent, 30, 4 * 60);
/// assert_eq!((p.first_response_minutes, p.resolution_minutes), (30, 240));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SlaPolicy {
    /// Name, recorded on the tickets it applies to.
    pub name: String,
    /// Priority it applies to.
    pub priority: Priority,
    /// Only tickets of this kind.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub kind: Option<TicketKind>,
    /// Only customers of this level.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub customer_level: Option<Level>,
    /// First public reply within this many business minutes.
    pub first_response_minutes: u32,
    /// Resolved within this many business minutes (pending-customer time excluded).
    pub resolution_minutes: u32,
}

impl SlaPolicy {
    /// A policy for every ticket of a priority.
    pub fn new(name: &str, priority: Priority, first_response_minutes: u32, resolution_minutes: u32) -> SlaPolicy {
        SlaPolicy {
            name: name.to_owned(),
            priority,
            kind: None,
            customer_level: None,
            first_response_minutes,
            resolution_minutes,
        }
    }

    /// Typical desk targets: urgent 30 min / 4 h, high 1 h / 8 h, medium 4 h / 24 h, low 8 h /
    /// 40 h (business time).
    pub fn defaults() -> Vec<SlaPolicy> {
        vec![
            SlaPolicy::new("urgent", Priority::Urgent, 30, 4 * 60),
            SlaPolicy::new("high", Priority::High, 60, 8 * 60),
            SlaPolicy::new("medium", Priority::Medium, 4 * 60, 24 * 60),
            SlaPolicy::new("low", Priority::Low, 8 * 60, 40 * 60),
        ]
    }

    fn specificity(&self) -> u8 {
        u8::from(self.kind.is_some()) + u8::from(self.customer_level.is_some())
    }

    fn applies(&self, priority: Priority, kind: TicketKind, level: Option<Level>) -> bool {
        self.priority == priority
            && self.kind.is_none_or(|k| k == kind)
            && self.customer_level.is_none_or(|l| Some(l) == level)
    }

    pub(crate) fn validate(policies: &[SlaPolicy], errs: &mut ValidationErrors) {
        for (i, p) in policies.iter().enumerate() {
            if p.name.trim().is_empty() {
                errs.push(format!("sla_policies[{i}].name"), ValidationReason::Required);
            }
            if p.first_response_minutes == 0 {
                errs.push(
                    format!("sla_policies[{i}].first_response_minutes"),
                    ValidationReason::Invalid { detail: "must be positive".into() },
                );
            }
            if p.resolution_minutes < p.first_response_minutes {
                errs.push(
                    format!("sla_policies[{i}].resolution_minutes"),
                    ValidationReason::Invalid { detail: "must not be shorter than the first-response target".into() },
                );
            }
        }
    }
}

/// The most specific policy for a ticket (kind and level narrow; among equals the first
/// listed), as targets.
///
/// ```
/// use guanxi_core::service::{select_policy, Priority, SlaPolicy, TicketKind};
/// let mut vip = SlaPolicy::new("vip-urgent", Priority::Urgent, 10, 120);
/// vip.customer_level = Some(guanxi_core::Level::A);
/// let policies = vec![SlaPolicy::new("urgent", Priority::Urgent, 30, 240), vip];
/// let t = select_policy(&policies, Priority::Urgent, TicketKind::Fault, Some(guanxi_core::Level::A)).unwrap();
/// assert_eq!((t.policy.as_str(), t.first_response_secs), ("vip-urgent", 600));
/// assert!(select_policy(&policies, Priority::Low, TicketKind::Fault, None).is_none());
/// ```
pub fn select_policy(
    policies: &[SlaPolicy],
    priority: Priority,
    kind: TicketKind,
    level: Option<Level>,
) -> Option<SlaTargets> {
    let mut best: Option<&SlaPolicy> = None;
    for p in policies.iter().filter(|p| p.applies(priority, kind, level)) {
        if best.is_none_or(|b| p.specificity() > b.specificity()) {
            best = Some(p);
        }
    }
    best.map(|p| SlaTargets {
        policy: p.name.clone(),
        first_response_secs: i64::from(p.first_response_minutes) * 60,
        resolution_secs: i64::from(p.resolution_minutes) * 60,
    })
}

/// What SLA evaluation reads of a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaClock {
    /// Ticket.
    pub ticket_id: TicketId,
    /// Its code.
    pub code: String,
    /// Status.
    pub status: TicketStatus,
    /// Priority.
    pub priority: Priority,
    /// Assignee.
    pub assignee: Option<UserId>,
    /// Targets.
    pub targets: Option<SlaTargets>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// First response.
    pub first_response_at: Option<DateTime<Utc>>,
    /// Resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Pending since.
    pub pending_since: Option<DateTime<Utc>>,
    /// Paused business seconds so far.
    pub paused_secs: i64,
}

impl From<&Ticket> for SlaClock {
    fn from(t: &Ticket) -> SlaClock {
        SlaClock {
            ticket_id: t.id,
            code: t.code.clone(),
            status: t.status,
            priority: t.priority,
            assignee: t.assignee.clone(),
            targets: t.sla.clone(),
            created_at: t.created_at,
            first_response_at: t.first_response_at,
            resolved_at: t.resolved_at,
            pending_since: t.pending_since,
            paused_secs: t.sla_paused_secs,
        }
    }
}

/// Where one target stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum SlaState {
    /// Done within the target.
    Met,
    /// Done late, or still running past the target.
    Breached,
    /// Running with less than the at-risk share of the target left.
    AtRisk,
    /// Running, in time.
    Running,
    /// Stopped while the ticket waits for the customer.
    Paused,
}

impl SlaState {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaState::Met => "met",
            SlaState::Breached => "breached",
            SlaState::AtRisk => "at_risk",
            SlaState::Running => "running",
            SlaState::Paused => "paused",
        }
    }
}

/// One target of a ticket at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct TargetStatus {
    /// Target, business seconds.
    pub target_secs: i64,
    /// Business seconds used (up to completion, or up to the instant).
    pub used_secs: i64,
    /// `target_secs - used_secs` (negative when late).
    pub remaining_secs: i64,
    /// When it falls due (None while paused).
    pub deadline: Option<DateTime<Utc>>,
    /// Where it stands.
    pub state: SlaState,
}

/// A ticket's SLA at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct TicketSla {
    /// Ticket.
    pub ticket_id: TicketId,
    /// Code.
    pub code: String,
    /// Status.
    pub status: TicketStatus,
    /// Priority.
    pub priority: Priority,
    /// Assignee.
    pub assignee: Option<UserId>,
    /// Policy name.
    pub policy: String,
    /// First response.
    pub first_response: TargetStatus,
    /// Resolution.
    pub resolution: TargetStatus,
}

impl TicketSla {
    /// Whether either target is breached.
    pub fn breached(&self) -> bool {
        self.first_response.state == SlaState::Breached || self.resolution.state == SlaState::Breached
    }

    /// Whether either target is at risk (and none breached).
    pub fn at_risk(&self) -> bool {
        !self.breached() && (self.first_response.state == SlaState::AtRisk || self.resolution.state == SlaState::AtRisk)
    }
}

/// Evaluates SLA clocks at one instant over one business clock.
///
/// ```
/// use guanxi_core::service::{BusinessCalendar, BusinessClock, SlaEvaluator};
/// let clock = BusinessClock::new(&BusinessCalendar::china_office())?;
/// let eval = SlaEvaluator::new(&clock, "2024-05-06T03:00:00Z".parse().unwrap(), 20);
/// assert_eq!(eval.at_risk_percent(), 20);
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SlaEvaluator<'a> {
    clock: &'a BusinessClock,
    at: DateTime<Utc>,
    at_b: i64,
    at_risk_percent: u8,
}

impl<'a> SlaEvaluator<'a> {
    /// An evaluator at `at`; a running target with under `at_risk_percent`% of it left is at risk.
    pub fn new(clock: &'a BusinessClock, at: DateTime<Utc>, at_risk_percent: u8) -> SlaEvaluator<'a> {
        SlaEvaluator { clock, at, at_b: clock.seconds_at(at), at_risk_percent }
    }

    /// The at-risk threshold in percent.
    pub fn at_risk_percent(&self) -> u8 {
        self.at_risk_percent
    }

    fn state(&self, target: i64, used: i64, done: bool, paused: bool) -> SlaState {
        if used > target {
            SlaState::Breached
        } else if done {
            SlaState::Met
        } else if paused {
            SlaState::Paused
        } else if (target - used) * 100 < target * i64::from(self.at_risk_percent) {
            SlaState::AtRisk
        } else {
            SlaState::Running
        }
    }

    /// The SLA of one ticket (None without targets, or when cancelled).
    pub fn evaluate(&self, c: &SlaClock) -> Result<Option<TicketSla>> {
        Ok(self.targets(c)?.map(|(first_response, resolution)| TicketSla {
            ticket_id: c.ticket_id,
            code: c.code.clone(),
            status: c.status,
            priority: c.priority,
            assignee: c.assignee.clone(),
            policy: c.targets.as_ref().map(|t| t.policy.clone()).unwrap_or_default(),
            first_response,
            resolution,
        }))
    }

    /// The same, consuming the clock (its texts move into the result: no copies, for backlogs).
    pub fn evaluate_owned(&self, c: SlaClock) -> Result<Option<TicketSla>> {
        Ok(self.targets(&c)?.map(|(first_response, resolution)| TicketSla {
            ticket_id: c.ticket_id,
            code: c.code,
            status: c.status,
            priority: c.priority,
            assignee: c.assignee,
            policy: c.targets.map(|t| t.policy).unwrap_or_default(),
            first_response,
            resolution,
        }))
    }

    /// First-response and resolution status of a clock with targets.
    fn targets(&self, c: &SlaClock) -> Result<Option<(TargetStatus, TargetStatus)>> {
        let Some(targets) = &c.targets else { return Ok(None) };
        if c.status == TicketStatus::Cancelled {
            return Ok(None);
        }
        let start = self.clock.seconds_at(c.created_at);
        // First response: not paused (asking the customer is itself a response).
        let fr_end = c.first_response_at.map_or(self.at_b, |t| self.clock.seconds_at(t));
        let fr_used = (fr_end - start).max(0);
        let fr_target = targets.first_response_secs;
        let fr_deadline = self.clock.instant_at(start + fr_target, c.created_at)?;
        let first_response = TargetStatus {
            target_secs: fr_target,
            used_secs: fr_used,
            remaining_secs: fr_target - fr_used,
            deadline: Some(fr_deadline),
            state: self.state(fr_target, fr_used, c.first_response_at.is_some(), false),
        };
        let done = c.resolved_at.is_some();
        let paused_now = match (c.pending_since, done) {
            (Some(p), false) => (self.at_b - self.clock.seconds_at(p)).max(0),
            _ => 0,
        };
        let res_end = c.resolved_at.map_or(self.at_b, |t| self.clock.seconds_at(t));
        let res_used = (res_end - start - c.paused_secs - paused_now).max(0);
        let res_target = targets.resolution_secs;
        let paused = c.pending_since.is_some() && !done;
        let res_deadline =
            if paused { None } else { Some(self.clock.instant_at(start + c.paused_secs + res_target, c.created_at)?) };
        let resolution = TargetStatus {
            target_secs: res_target,
            used_secs: res_used,
            remaining_secs: res_target - res_used,
            deadline: res_deadline,
            state: self.state(res_target, res_used, done, paused),
        };
        Ok(Some((first_response, resolution)))
    }

    /// The instant evaluated at.
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::BusinessCalendar;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn clock_of(created: &str) -> SlaClock {
        SlaClock {
            ticket_id: TicketId(uuid::Uuid::nil()),
            code: "T1".into(),
            status: TicketStatus::InProgress,
            priority: Priority::High,
            assignee: None,
            targets: Some(SlaTargets { policy: "high".into(), first_response_secs: 3600, resolution_secs: 8 * 3600 }),
            created_at: at(created),
            first_response_at: None,
            resolved_at: None,
            pending_since: None,
            paused_secs: 0,
        }
    }

    #[test]
    fn running_at_risk_breached_paused_met() {
        let clock = BusinessClock::new(&BusinessCalendar::china_office()).unwrap();
        // Monday 2024-05-06 09:00 Beijing.
        let c = clock_of("2024-05-06T01:00:00Z");
        let e = |s: &str| SlaEvaluator::new(&clock, at(s), 20).evaluate(&c).unwrap().unwrap();
        let r = e("2024-05-06T01:30:00Z");
        assert_eq!((r.first_response.state, r.first_response.remaining_secs), (SlaState::Running, 1800));
        assert_eq!(r.first_response.deadline, Some(at("2024-05-06T02:00:00Z")));
        // 8 business hours from 09:00 with a 1.5 h lunch: Monday 18:00 is 7.5 h, so Tuesday 09:30.
        assert_eq!(r.resolution.deadline, Some(at("2024-05-07T01:30:00Z")));
        assert_eq!(e("2024-05-06T01:50:00Z").first_response.state, SlaState::AtRisk);
        let late = e("2024-05-06T02:00:01Z");
        assert!(late.breached() && late.first_response.remaining_secs == -1);
        // Lunch does not use time: 12:10 and 13:20 Beijing are the same business instant.
        assert_eq!(e("2024-05-06T04:10:00Z").resolution.used_secs, e("2024-05-06T05:20:00Z").resolution.used_secs);

        let mut pending = c.clone();
        pending.first_response_at = Some(at("2024-05-06T01:10:00Z"));
        pending.pending_since = Some(at("2024-05-06T02:00:00Z"));
        let p = SlaEvaluator::new(&clock, at("2024-05-08T02:00:00Z"), 20).evaluate(&pending).unwrap().unwrap();
        assert_eq!((p.first_response.state, p.resolution.state), (SlaState::Met, SlaState::Paused));
        assert_eq!((p.resolution.used_secs, p.resolution.deadline), (3600, None));

        let mut done = c;
        done.first_response_at = Some(at("2024-05-06T03:00:00Z"));
        done.resolved_at = Some(at("2024-05-06T06:00:00Z"));
        let d = SlaEvaluator::new(&clock, at("2024-06-01T00:00:00Z"), 20).evaluate(&done).unwrap().unwrap();
        assert_eq!((d.first_response.state, d.resolution.state), (SlaState::Breached, SlaState::Met));
    }
}
