//! Service (服务): [`Service`].

use chrono::{DateTime, Utc};

use crate::crm::Crm;
use crate::*;
use guanxi_core::service::*;

/// Service (服务): settings, the SLA overview and the service report; tickets have a handle of their own.
///
/// Got from [`Crm`] as `crm.service()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// # use guanxi::service::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// let report = crm.service().report(&alice, &ServiceQuery::default())?;
/// assert_eq!(report.tickets, 0);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Service<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Service<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Service")
    }
}

impl<'a> Service<'a> {
    /// The service settings in force ([`ServiceSettings::default`] until some are stored).
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let admin = Actor::user("admin")?;
    /// let mut s = crm.service().settings(&admin)?;
    /// s.reopen_window_days = 14;
    /// crm.service().set_settings(&admin, s)?;
    /// assert_eq!(crm.service().settings(&admin)?.reopen_window_days, 14);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn settings(&self, actor: &Actor) -> Result<ServiceSettings> {
        self.crm.service_settings(actor)
    }

    /// Replaces the service settings (validated as a whole: calendar, policies, groups and
    /// routes, keywords).
    pub fn set_settings(&self, actor: &Actor, settings: ServiceSettings) -> Result<ServiceSettings> {
        self.crm.set_service_settings(actor, settings)
    }

    /// The SLA of the tickets matching `filter` (the actor's scope applied) at `at`, in id
    /// order; tickets without targets and cancelled ones are left out. Filter with
    /// `open: Some(true)` for the working backlog; keep [`TicketSla::breached`] or
    /// [`TicketSla::at_risk`] ones for the alert lists.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let amy = Actor::user("amy")?;
    /// let t = crm.service().tickets().create(&amy, NewTicket::new("无法登录", TicketKind::Fault, Priority::Urgent))?;
    /// let later = t.created_at + chrono::Duration::days(10);
    /// let open = TicketFilter { open: Some(true), ..Default::default() };
    /// let sla = crm.service().sla_overview(&amy, &open, later)?;
    /// assert!(sla[0].breached());
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn sla_overview(&self, actor: &Actor, filter: &TicketFilter, at: DateTime<Utc>) -> Result<Vec<TicketSla>> {
        self.crm.sla_overview(actor, filter, at)
    }

    /// The service report over the tickets the actor may read (see [`ServiceReport`]).
    pub fn report(&self, actor: &Actor, query: &ServiceQuery) -> Result<ServiceReport> {
        self.crm.service_report(actor, query)
    }

    /// Tickets (工单): create, read, list, count; reply, move, assign, escalate, rate, reprioritize; the SLA state.
    pub fn tickets(&self) -> Tickets<'a> {
        Tickets { crm: self.crm }
    }
}
