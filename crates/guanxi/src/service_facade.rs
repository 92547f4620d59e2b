//! The facade's service calls: settings, tickets (create with routing and auto-assignment,
//! replies and notes, status moves, transfers and escalations, ratings), SLA evaluation, the
//! service report, and the knowledge base. Each runs permission check → validation → one
//! atomic batch (record, entries, log) → events.

use chrono::{DateTime, Utc};

use guanxi_core::access::Scoped;
use guanxi_core::service::{
    Article, ArticleHit, AssignReason, BusinessClock, KbQuery, MatchMode, NewArticle, NewTicket, Priority,
    ServiceQuery, ServiceReport, ServiceSettings, SlaClock, SlaEvaluator, Ticket, TicketChange, TicketEntry,
    TicketFilter, TicketSla, TicketStatus, apply_move, apply_reply, check_satisfaction, reply_body, risk_flags,
    select_policy,
};
use guanxi_core::{
    Action, Actor, ArticleId, ChangeAction, DomainEvent, EntityKind, Error, Page, PageRequest, Result, TicketId,
    UserId, ValidationReason,
};

use crate::crm::Crm;
use crate::handles::{KnowledgeBase, Service, Tickets};
use crate::permission::Allowed;
use crate::plumbing::{check_version, decode, to_json, walk_pages};

const SERVICE_SETTINGS: &str = "service";

/// Who a ticket goes to.
///
/// ```
/// use guanxi::AssignTo;
/// let to = AssignTo::Group("l2".into());
/// assert_ne!(to, AssignTo::Auto);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignTo {
    /// An agent of the ticket's group, by the group's strategy.
    Auto,
    /// This agent (the group stays).
    Agent(UserId),
    /// This group, and an agent of it by its strategy.
    Group(String),
}

/// A reply to the customer or an internal note.
///
/// ```
/// use guanxi::TicketReply;
/// let r = TicketReply::public("您好，已为您重置密码。");
/// assert!(r.public);
/// assert!(!TicketReply::note("客户情绪激动").public);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketReply {
    /// Text.
    pub body: String,
    /// Seen by the customer (a public reply is the first response if none came before).
    pub public: bool,
    /// When (default now; between the ticket's last entry and now): for imports.
    pub at: Option<DateTime<Utc>>,
}

impl TicketReply {
    /// A public reply.
    pub fn public(body: &str) -> TicketReply {
        TicketReply { body: body.to_owned(), public: true, at: None }
    }

    /// An internal note.
    pub fn note(body: &str) -> TicketReply {
        TicketReply { body: body.to_owned(), public: false, at: None }
    }

    /// Sets when it was written.
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = Some(at);
        self
    }
}

/// Options of a status move.
///
/// ```
/// use guanxi::TicketMove;
/// let m = TicketMove::default().resolution("已重置密码");
/// assert_eq!(m.resolution.as_deref(), Some("已重置密码"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketMove {
    /// How it was solved (required when resolving).
    pub resolution: Option<String>,
    /// When (default now; between the ticket's last entry and now).
    pub at: Option<DateTime<Utc>>,
}

impl TicketMove {
    /// Gives the resolution.
    pub fn resolution(mut self, text: &str) -> Self {
        self.resolution = Some(text.to_owned());
        self
    }

    /// Sets when the move happened.
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = Some(at);
        self
    }
}

/// What one ticket change produces: the new record and the entries to append.
type Staged = (Ticket, Vec<TicketChange>);

/// The ticket, if the actor's permission reaches it.
fn check_ticket(actor: &Actor, allowed: &Allowed, t: Ticket) -> Result<Ticket> {
    allowed.check(actor, t.scope_attrs(), format_args!("ticket {}", t.code))?;
    Ok(t)
}

/// A ticket's new entries, numbered on from `after` (its last sequence number).
fn numbered(
    ticket: TicketId,
    after: u32,
    at: DateTime<Utc>,
    actor: &Actor,
    changes: Vec<TicketChange>,
) -> Vec<TicketEntry> {
    (after + 1..)
        .zip(changes)
        .map(|(seq, change)| TicketEntry { ticket_id: ticket, seq, at, by: actor.user_id().clone(), change })
        .collect()
}

impl Crm {
    // ----- settings -----

    /// The settings in force and their compiled business calendar.
    fn service_clock(&self) -> Result<(ServiceSettings, BusinessClock)> {
        let settings = self.load_service_settings()?;
        let clock = BusinessClock::new(&settings.calendar)?;
        Ok((settings, clock))
    }

    pub(crate) fn load_service_settings(&self) -> Result<ServiceSettings> {
        self.store.setting(SERVICE_SETTINGS)?.map_or_else(|| Ok(ServiceSettings::default()), |s| decode(&s))
    }

    // ----- tickets -----

    /// An agent of `group` by its strategy (None without a group, or when all are full).
    fn pick_agent(
        &self,
        settings: &ServiceSettings,
        group: Option<&str>,
        skill: Option<&str>,
    ) -> Result<Option<UserId>> {
        let mut assigner = BatchAssigner::default();
        if let Some(g) = group {
            assigner.prepare(self, settings, g, 1)?;
        }
        Ok(assigner.pick(settings, group, skill))
    }

    /// Checks a routed ticket's customer, contact and assignee, assigns it and stages it with
    /// its first entries; its code comes from the sequence `codes` (reserved ahead by the batch).
    #[allow(clippy::too_many_arguments)] // one ticket's staging, each part named
    fn stage_ticket(
        &self,
        tx: &mut crate::write::WriteTx<'_>,
        actor: &Actor,
        allowed: &Allowed,
        settings: &ServiceSettings,
        assigner: &mut BatchAssigner,
        routed: RoutedTicket,
        codes: &str,
    ) -> Result<Ticket> {
        let RoutedTicket { input: v, created_at, group, skill } = routed;
        let now = tx.at();
        let customer = match v.customer_id {
            Some(id) => {
                let c = self.live_customer(id)?;
                self.reauthorize(allowed, actor, Action::Read, EntityKind::Customer)?.check_customer(actor, &c)?;
                Some(c)
            }
            None => None,
        };
        if let Some(cid) = v.contact_id {
            self.check_contact_of(cid, v.customer_id, "the ticket's customer")?;
        }
        let (assignee, reason) = match &v.assignee {
            Some(u) => (Some(u.clone()), AssignReason::Transfer),
            None if settings.auto_assign => {
                (assigner.pick(settings, group.as_deref(), skill.as_deref()), AssignReason::Auto)
            }
            None => (None, AssignReason::Auto),
        };
        if let Some(u) = assignee.as_ref().filter(|u| *u != actor.user_id() && reason == AssignReason::Transfer)
            && allowed.enforced()
        {
            allowed.check_owner("assignee", Some(u))?;
            self.reauthorize(allowed, actor, Action::Assign, EntityKind::Ticket)?;
        }
        let text = format!("{}\n{}", v.subject, v.description.as_deref().unwrap_or(""));
        let flags = risk_flags(&settings.risk_keywords, &text);
        let level = customer.as_ref().and_then(|c| c.level);
        let day = now.with_timezone(&self.code_offset).date_naive();
        let seq = tx.next_in_sequence(codes)?;
        let t = Ticket {
            id: TicketId(self.ids.next(now)),
            code: Ticket::code_for(day, seq),
            customer_id: v.customer_id,
            contact_id: v.contact_id,
            kind: v.kind,
            priority: v.priority,
            channel: v.channel,
            category: v.category,
            subject: v.subject,
            description: v.description,
            status: if assignee.is_some() { TicketStatus::Assigned } else { TicketStatus::New },
            department: assignee.as_ref().and_then(|u| allowed.department_of(u)),
            assignee: assignee.clone(),
            group: group.clone(),
            skill,
            escalation_level: 0,
            province: customer.as_ref().and_then(|c| c.region.as_ref().map(|r| r.province.clone())),
            customer_level: level,
            resolution: None,
            satisfaction: None,
            satisfaction_comment: None,
            risk_flags: flags.iter().cloned().collect(),
            sla: select_policy(&settings.sla_policies, v.priority, v.kind, level),
            sla_paused_secs: 0,
            pending_since: None,
            reopen_count: 0,
            created_at,
            first_response_at: None,
            resolved_at: None,
            closed_at: None,
            created_by: actor.user_id().clone(),
            recorded_at: now,
            updated_by: actor.user_id().clone(),
            updated_at: now,
            version: 1,
        };
        let mut entries = vec![TicketChange::Created];
        if assignee.is_some() {
            entries.push(TicketChange::Assigned {
                from_user: None,
                to_user: assignee,
                from_group: None,
                to_group: group,
                reason,
                note: None,
            });
        }
        tx.insert(t.clone());
        tx.attach(|c| c.ticket_entries.extend(numbered(t.id, 0, created_at, actor, entries)));
        Ok(t)
    }

    fn readable_ticket(&self, actor: &Actor, allowed: &Allowed, id: TicketId) -> Result<Ticket> {
        let t = self.store.ticket(id)?.ok_or_else(|| Error::not_found(EntityKind::Ticket, id))?;
        check_ticket(actor, allowed, t)
    }

    /// Runs one change of a ticket: read under the actor's scope, version check, `stage` builds
    /// the new record and its entries, then one batch with the log entry and events.
    fn change_ticket(
        &self,
        actor: &Actor,
        id: TicketId,
        expected_version: u64,
        action: Action,
        at: Option<DateTime<Utc>>,
        stage: impl FnOnce(&Ticket, &ServiceSettings, DateTime<Utc>, &Allowed) -> Result<Staged>,
    ) -> Result<Ticket> {
        let allowed = self.authorize(actor, action, EntityKind::Ticket)?;
        let current = self.readable_ticket(actor, &allowed, id)?;
        check_version(EntityKind::Ticket, id, expected_version, current.version)?;
        let now = self.clock.now();
        let entries = self.store.ticket_entries(id)?;
        let last = entries.last().map_or(current.created_at, |e| e.at);
        let at = at.unwrap_or(now);
        if at > now || at < last {
            return Err(Error::invalid(
                "at",
                ValidationReason::Invalid { detail: "must be between the ticket's last entry and now".into() },
            ));
        }
        let settings = self.load_service_settings()?;
        let (staged, changes_made) = stage(&current, &settings, at, &allowed)?;
        let seq0 = entries.last().map_or(0, |e| e.seq);
        let mut tx = self.begin(&allowed, actor);
        let next = tx.update(&current, staged, ChangeAction::Update);
        tx.attach(|c| c.ticket_entries = numbered(id, seq0, at, actor, changes_made));
        let new_flags: Vec<String> = next.risk_flags.difference(&current.risk_flags).cloned().collect();
        if !new_flags.is_empty() {
            tx.queue(DomainEvent::TicketFlagged { ticket: id, keywords: new_flags, customer: next.customer_id });
        }
        if next.status == TicketStatus::Resolved && current.status != TicketStatus::Resolved {
            tx.queue(DomainEvent::SatisfactionSurveyDue {
                ticket: id,
                customer: next.customer_id,
                contact: next.contact_id,
            });
        }
        tx.commit()?;
        Ok(next)
    }

    fn reassign(
        &self,
        t: &Ticket,
        allowed: &Allowed,
        group: Option<String>,
        user: Option<UserId>,
        reason: AssignReason,
        note: Option<String>,
    ) -> Result<Staged> {
        if !t.status.is_open() {
            return Err(Error::InvalidState(format!("ticket {} is {} and cannot be reassigned", t.code, t.status)));
        }
        let mut next = t.clone();
        next.assignee = user.clone();
        next.group = group.clone();
        next.department = user.as_ref().and_then(|u| allowed.department_of(u));
        next.status = match (t.status, &user) {
            (TicketStatus::New, Some(_)) => TicketStatus::Assigned,
            (TicketStatus::Assigned, None) => TicketStatus::New,
            (s, _) => s,
        };
        let entry = TicketChange::Assigned {
            from_user: t.assignee.clone(),
            to_user: user,
            from_group: t.group.clone(),
            to_group: group,
            reason,
            note,
        };
        Ok((next, vec![entry]))
    }
}
impl Service<'_> {
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
        self.crm.authorize(actor, Action::Read, EntityKind::ServiceSettings)?;
        self.crm.load_service_settings()
    }

    /// Replaces the service settings (validated as a whole: calendar, policies, groups and
    /// routes, keywords).
    pub fn set_settings(&self, actor: &Actor, settings: ServiceSettings) -> Result<ServiceSettings> {
        let allowed = self.crm.authorize(actor, Action::Configure, EntityKind::ServiceSettings)?;
        settings.validate()?;
        let stored = self.crm.store.setting(SERVICE_SETTINGS)?;
        let before = stored.as_ref().map(decode::<ServiceSettings>).transpose()?.map(|b| to_json(&b));
        self.crm.put_setting(
            actor,
            &allowed,
            SERVICE_SETTINGS.to_owned(),
            stored,
            &settings,
            before,
            EntityKind::ServiceSettings,
            DomainEvent::ServiceConfigured,
        )?;
        Ok(settings)
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
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Ticket)?;
        let (settings, clock) = self.crm.service_clock()?;
        let eval = SlaEvaluator::new(&clock, at, settings.at_risk_percent);
        let mut clocks = self.crm.store.sla_clocks(&TicketFilter { scope: allowed.query_scope(), ..filter.clone() })?;
        clocks.sort_unstable_by_key(|c| c.ticket_id);
        // Two halves on two threads: evaluation is pure and the clocks are independent.
        let half = clocks.len().div_ceil(2);
        let second = clocks.split_off(half);
        let run = |part: Vec<SlaClock>| -> Result<Vec<TicketSla>> {
            let mut out = Vec::with_capacity(part.len());
            for c in part {
                out.extend(eval.evaluate_owned(c)?);
            }
            Ok(out)
        };
        let (first, rest) = std::thread::scope(|s| {
            let other = s.spawn(|| run(second));
            let mine = run(clocks);
            (mine, other.join())
        });
        let mut out = first?;
        out.extend(rest.map_err(|_| Error::InvalidState("SLA evaluation thread panicked".into()))??);
        Ok(out)
    }

    /// The service report over the tickets the actor may read (see [`ServiceReport`]).
    pub fn report(&self, actor: &Actor, query: &ServiceQuery) -> Result<ServiceReport> {
        let tickets = self.crm.service().tickets().list_all(actor, &query.filter)?;
        let (settings, clock) = self.crm.service_clock()?;
        ServiceReport::from_tickets(
            &tickets,
            &clock,
            query.period,
            query.at.unwrap_or_else(|| self.crm.clock.now()),
            settings.at_risk_percent,
        )
    }
}

/// A new ticket validated and routed: its group and skill known before any agent is picked.
struct RoutedTicket {
    input: NewTicket,
    created_at: DateTime<Utc>,
    group: Option<String>,
    skill: Option<String>,
}

/// Validates a new ticket and routes it to a skill group by the settings' rules (pure).
fn route_ticket(settings: &ServiceSettings, input: NewTicket, now: DateTime<Utc>) -> Result<RoutedTicket> {
    let v = input.validate()?;
    let created_at = v.created_at.unwrap_or(now);
    if created_at > now {
        return Err(Error::invalid("created_at", ValidationReason::Invalid { detail: "is in the future".into() }));
    }
    let (routed_group, routed_skill) = settings.route(&v);
    let group = v.group.clone().or(routed_group);
    if let Some(g) = group.as_deref().filter(|g| settings.group(g).is_none()) {
        return Err(Error::invalid("group", ValidationReason::not_allowed(g, settings.group_keys())));
    }
    let skill = v.skill.clone().or(routed_skill);
    Ok(RoutedTicket { input: v, created_at, group, skill })
}

/// Picks agents for a batch of tickets (or one): each group's open-ticket loads are read once
/// and grow with every ticket the batch gives out; round-robin turns are reserved for the whole
/// batch in one step per group (the turn is a store counter shared by every handle on a file; a
/// counter, not a record: reserved outside the batch's write, a failed batch skips turns and
/// nothing more).
#[derive(Default)]
struct BatchAssigner {
    /// Per group: its agents' loads (store + batch) and the next turn.
    groups: std::collections::HashMap<String, (Vec<UserId>, Vec<u64>, u64)>,
}

impl BatchAssigner {
    fn new(crm: &Crm, settings: &ServiceSettings, routed: &[RoutedTicket]) -> Result<Self> {
        let mut wanted: std::collections::BTreeMap<&str, u64> = Default::default();
        if settings.auto_assign {
            for r in routed.iter().filter(|r| r.input.assignee.is_none()) {
                if let Some(g) = r.group.as_deref() {
                    *wanted.entry(g).or_default() += 1;
                }
            }
        }
        let mut assigner = BatchAssigner::default();
        for (key, count) in wanted {
            assigner.prepare(crm, settings, key, count)?;
        }
        Ok(assigner)
    }

    /// Reads the loads of group `key`'s agents and reserves `count` turns (nothing for a group
    /// the settings lack).
    fn prepare(&mut self, crm: &Crm, settings: &ServiceSettings, key: &str, count: u64) -> Result<()> {
        let Some(g) = settings.group(key) else { return Ok(()) };
        let users: Vec<UserId> = g.agents.iter().map(|a| a.user.clone()).collect();
        let loads = crm.store.open_ticket_loads(&users)?;
        let first_turn = crm.store.reserve_sequence(&format!("ticket.turn.{}", g.key), count)?;
        self.groups.insert(g.key.clone(), (users, loads, first_turn - 1));
        Ok(())
    }

    /// An agent of `group` by its strategy (None without a group, or when all are full).
    fn pick(&mut self, settings: &ServiceSettings, group: Option<&str>, skill: Option<&str>) -> Option<UserId> {
        let g = group.and_then(|k| settings.group(k))?;
        let (users, loads, turn) = self.groups.get_mut(&g.key)?;
        let chosen = g.pick(skill, |u| users.iter().position(|x| x == u).map_or(0, |i| loads[i]), *turn);
        *turn += 1;
        if let Some(i) = chosen.as_ref().and_then(|u| users.iter().position(|x| x == u)) {
            loads[i] += 1;
        }
        chosen
    }
}

impl Tickets<'_> {
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
        let mut made = self.create_batch(actor, vec![input], None)?;
        made.pop().ok_or_else(|| Error::InvalidState("no ticket created".into()))
    }

    /// Raises many tickets in one transaction, each as [`create`](Self::create) would (routing,
    /// auto-assignment, risk keywords, SLA targets): all of them or, on any failure, none. Every
    /// validation failure of every input is reported, under `tickets[i].<field>`; another
    /// failure (a customer not found, a permission refused) stops the batch. Auto-assignment
    /// counts the tickets given out earlier in the batch, so least-loaded groups spread a batch
    /// and round robin takes its turns in order.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let admin = Actor::user("admin")?;
    /// let mut s = ServiceSettings::default();
    /// s.groups.push(SkillGroup::new("l1", "一线", AssignStrategy::LeastLoaded)
    ///     .agent(Agent::new(UserId::new("amy")?, 0, &[]))
    ///     .agent(Agent::new(UserId::new("bob")?, 0, &[])));
    /// s.default_group = Some("l1".into());
    /// crm.service().set_settings(&admin, s)?;
    /// let tickets = crm.service().tickets();
    /// let bad = vec![NewTicket::new("无法登录", TicketKind::Fault, Priority::High), NewTicket::new(" ", TicketKind::Inquiry, Priority::Low)];
    /// let Err(Error::Validation(v)) = tickets.create_many(&admin, bad) else { panic!() };
    /// assert!(v.field("tickets[1].subject").is_some());
    /// let made = tickets.create_many(&admin, vec![
    ///     NewTicket::new("无法登录", TicketKind::Fault, Priority::High),
    ///     NewTicket::new("发票抬头", TicketKind::Inquiry, Priority::Low),
    /// ])?;
    /// let agents: Vec<_> = made.iter().map(|t| t.assignee.as_ref().unwrap().as_str()).collect();
    /// assert_eq!(agents, ["amy", "bob"]); // the second sees the first's load
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create_many(&self, actor: &Actor, inputs: Vec<NewTicket>) -> Result<Vec<Ticket>> {
        self.create_batch(actor, inputs, Some("tickets"))
    }

    /// Validates, routes, assigns and stages every input, then commits them together; an
    /// input's validation failures are filed under `{list}[i]` when a list name is given.
    fn create_batch(&self, actor: &Actor, inputs: Vec<NewTicket>, list: Option<&str>) -> Result<Vec<Ticket>> {
        let nest = |errs: &mut guanxi_core::ValidationErrors, i: usize, e: guanxi_core::ValidationErrors| match list {
            Some(name) => errs.extend_nested(&format!("{name}[{i}]"), e),
            None => errs.0.extend(e.0),
        };
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Ticket)?;
        let now = self.crm.clock.now();
        let settings = self.crm.load_service_settings()?;
        let mut errs = guanxi_core::ValidationErrors::default();
        let mut routed = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            match route_ticket(&settings, input, now) {
                Ok(r) => routed.push(r),
                Err(Error::Validation(e)) => nest(&mut errs, i, e),
                Err(e) => return Err(e),
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        let mut assigner = BatchAssigner::new(self.crm, &settings, &routed)?;
        let day = now.with_timezone(&self.crm.code_offset).date_naive();
        let mut tx = self.crm.begin(&allowed, actor);
        let codes = format!("T{}", day.format("%Y%m%d"));
        tx.reserve_block(&codes, routed.len() as u64)?;
        let mut made = Vec::with_capacity(routed.len());
        for (i, r) in routed.into_iter().enumerate() {
            match self.crm.stage_ticket(&mut tx, actor, &allowed, &settings, &mut assigner, r, &codes) {
                Ok(t) => made.push(t),
                Err(Error::Validation(e)) => nest(&mut errs, i, e),
                Err(e) => return Err(e),
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        tx.commit()?;
        Ok(made)
    }

    /// A ticket by id.
    pub fn get(&self, actor: &Actor, id: TicketId) -> Result<Ticket> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Ticket)?;
        self.crm.readable_ticket(actor, &allowed, id)
    }

    /// A ticket by code.
    pub fn get_by_code(&self, actor: &Actor, code: &str) -> Result<Ticket> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Ticket)?;
        let code = guanxi_core::normalize::code(code);
        let t = self.crm.store.ticket_by_code(&code)?.ok_or_else(|| Error::not_found(EntityKind::Ticket, &code))?;
        check_ticket(actor, &allowed, t)
    }

    /// One page of the tickets matching `filter` that the actor may read.
    pub fn list(&self, actor: &Actor, filter: &TicketFilter, page: PageRequest) -> Result<Page<Ticket>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Ticket)?;
        let f = TicketFilter { scope: allowed.query_scope(), ..filter.clone() };
        self.crm.store.list_tickets(&f, &page)
    }

    /// Every ticket matching `filter` that the actor may read.
    pub fn list_all(&self, actor: &Actor, filter: &TicketFilter) -> Result<Vec<Ticket>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Ticket)?;
        let f = TicketFilter { scope: allowed.query_scope(), ..filter.clone() };
        walk_pages(|p| self.crm.store.list_tickets(&f, p))
    }

    /// How many tickets match `filter` among those the actor may read.
    pub fn count(&self, actor: &Actor, filter: &TicketFilter) -> Result<u64> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Ticket)?;
        self.crm.store.count_tickets(&TicketFilter { scope: allowed.query_scope(), ..filter.clone() })
    }

    /// A ticket's history: creation, replies and notes, moves, assignments, rating.
    pub fn entries(&self, actor: &Actor, id: TicketId) -> Result<Vec<TicketEntry>> {
        self.crm.service().tickets().get(actor, id)?;
        self.crm.store.ticket_entries(id)
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
        let body = reply_body(&reply.body)?;
        self.crm.change_ticket(actor, id, expected_version, Action::Update, reply.at, |t, settings, at, _| {
            let (next, change) = apply_reply(t, settings, body, reply.public, at)?;
            Ok((next, vec![change]))
        })
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
        self.crm.change_ticket(actor, id, expected_version, Action::Update, change.at, |t, settings, at, _| {
            let (next, entry) = apply_move(t, settings, to, change.resolution.clone(), at)?;
            Ok((next, vec![entry]))
        })
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
        let action = match &to {
            AssignTo::Agent(u) if u == actor.user_id() => Action::Update,
            _ => Action::Assign,
        };
        let note = note.map(guanxi_core::normalize::clean_multiline).filter(|n| !n.is_empty());
        let at = None;
        self.crm.change_ticket(actor, id, expected_version, action, at, |t, settings, _, allowed| {
            let (group, user, reason) = match to {
                AssignTo::Agent(u) => {
                    if allowed.enforced() {
                        allowed.check_owner("assignee", Some(&u))?;
                    }
                    (t.group.clone(), Some(u), AssignReason::Transfer)
                }
                AssignTo::Group(g) => {
                    if settings.group(&g).is_none() {
                        return Err(Error::invalid("group", ValidationReason::not_allowed(g, settings.group_keys())));
                    }
                    let user = self.crm.pick_agent(settings, Some(&g), t.skill.as_deref())?;
                    (Some(g), user, AssignReason::Transfer)
                }
                AssignTo::Auto => {
                    let user = self.crm.pick_agent(settings, t.group.as_deref(), t.skill.as_deref())?;
                    (t.group.clone(), user, AssignReason::Auto)
                }
            };
            self.crm.reassign(t, allowed, group, user, reason, note)
        })
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
        let note = note.map(guanxi_core::normalize::clean_multiline).filter(|n| !n.is_empty());
        self.crm.change_ticket(actor, id, expected_version, Action::Update, None, |t, settings, _, allowed| {
            let target = t
                .group
                .as_deref()
                .and_then(|g| settings.group(g))
                .and_then(|g| g.escalate_to.clone())
                .ok_or_else(|| Error::InvalidState(format!("ticket {} has no group to escalate to", t.code)))?;
            let user = self.crm.pick_agent(settings, Some(&target), t.skill.as_deref())?;
            let (mut next, entries) =
                self.crm.reassign(t, allowed, Some(target), user, AssignReason::Escalation, note)?;
            next.escalation_level += 1;
            Ok((next, entries))
        })
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
        check_satisfaction(score)?;
        let comment = comment.map(guanxi_core::normalize::clean_multiline).filter(|c| !c.is_empty());
        self.crm.change_ticket(actor, id, expected_version, Action::Update, None, |t, settings, _, _| {
            if !matches!(t.status, TicketStatus::Resolved | TicketStatus::Closed) {
                return Err(Error::InvalidState(format!("ticket {} is not resolved yet", t.code)));
            }
            if t.satisfaction.is_some() {
                return Err(Error::InvalidState(format!("ticket {} was already rated", t.code)));
            }
            let mut next = t.clone();
            next.satisfaction = Some(score);
            let flags = comment.as_deref().map(|c| risk_flags(&settings.risk_keywords, c)).unwrap_or_default();
            next.risk_flags.extend(flags);
            next.satisfaction_comment = comment.clone();
            Ok((next, vec![TicketChange::Rated { score, comment }]))
        })
    }

    /// Changes a ticket's priority; its SLA targets are chosen again (from its creation).
    pub fn set_priority(
        &self,
        actor: &Actor,
        id: TicketId,
        expected_version: u64,
        priority: Priority,
    ) -> Result<Ticket> {
        self.crm.change_ticket(actor, id, expected_version, Action::Update, None, |t, settings, _, _| {
            let mut next = t.clone();
            next.priority = priority;
            next.sla = select_policy(&settings.sla_policies, priority, t.kind, t.customer_level);
            Ok((next, vec![]))
        })
    }

    /// One ticket's SLA at `at` (None without targets or when cancelled).
    pub fn sla(&self, actor: &Actor, id: TicketId, at: DateTime<Utc>) -> Result<Option<TicketSla>> {
        let t = self.crm.service().tickets().get(actor, id)?;
        let (settings, clock) = self.crm.service_clock()?;
        SlaEvaluator::new(&clock, at, settings.at_risk_percent).evaluate(&SlaClock::from(&t))
    }
}

impl KnowledgeBase<'_> {
    /// Adds an article to the knowledge base.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let admin = Actor::user("admin")?;
    /// crm.kb().create(&admin, NewArticle::new("如何申请退款", "在订单详情页点击申请退款，三个工作日内到账。").tag("退款"))?;
    /// crm.kb().create(&admin, NewArticle::new("Reset your password", "Use the forgot-password link on the login page."))?;
    /// let hits = crm.kb().search(&admin, &KbQuery::new("退款"))?;
    /// assert_eq!(hits[0].article.title, "如何申请退款");
    /// assert_eq!(crm.kb().search(&admin, &KbQuery::new("PASSWORD login"))?.len(), 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, input: NewArticle) -> Result<Article> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Article)?;
        let v = input.validate()?;
        let mut tx = self.crm.begin(&allowed, actor);
        let now = tx.at();
        let a = Article {
            id: ArticleId(self.crm.ids.next(now)),
            title: v.title,
            body: v.body,
            tags: v.tags.into_iter().collect(),
            category: v.category,
            published: v.published,
            created_by: actor.user_id().clone(),
            created_at: now,
            updated_by: actor.user_id().clone(),
            updated_at: now,
            version: 1,
        };
        tx.insert(a.clone());
        tx.commit()?;
        Ok(a)
    }

    /// Replaces an article's content.
    pub fn update(&self, actor: &Actor, id: ArticleId, expected_version: u64, input: NewArticle) -> Result<Article> {
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Article)?;
        let current = self.crm.store.article(id)?.ok_or_else(|| Error::not_found(EntityKind::Article, id))?;
        check_version(EntityKind::Article, id, expected_version, current.version)?;
        let v = input.validate()?;
        let next = Article {
            title: v.title,
            body: v.body,
            tags: v.tags.into_iter().collect(),
            category: v.category,
            published: v.published,
            ..current.clone()
        };
        let mut tx = self.crm.begin(&allowed, actor);
        let next = tx.update(&current, next, ChangeAction::Update);
        tx.commit()?;
        Ok(next)
    }

    /// An article by id (an unpublished one only for those who may edit articles).
    pub fn get(&self, actor: &Actor, id: ArticleId) -> Result<Article> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Article)?;
        let a = self.crm.store.article(id)?.ok_or_else(|| Error::not_found(EntityKind::Article, id))?;
        if !a.published {
            self.crm.reauthorize(&allowed, actor, Action::Update, EntityKind::Article)?;
        }
        Ok(a)
    }

    /// Ranked knowledge-base search (see [`KbQuery`]; unpublished articles only for those who
    /// may edit articles).
    pub fn search(&self, actor: &Actor, query: &KbQuery) -> Result<Vec<ArticleHit>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Article)?;
        if query.include_unpublished {
            self.crm.reauthorize(&allowed, actor, Action::Update, EntityKind::Article)?;
        }
        self.crm.store.search_articles(query)
    }

    /// Published articles that may answer a ticket: its subject and description as an
    /// any-term query.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let admin = Actor::user("admin")?;
    /// crm.kb().create(&admin, NewArticle::new("发票重开流程", "发票抬头错误可申请重开发票。"))?;
    /// crm.kb().create(&admin, NewArticle::new("物流查询", "在订单页查看快递单号。"))?;
    /// let t = crm.service().tickets().create(&admin, NewTicket::new("发票抬头写错了", TicketKind::Inquiry, Priority::Low))?;
    /// let s = crm.kb().suggest(&admin, t.id, 3)?;
    /// assert_eq!(s[0].article.title, "发票重开流程");
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn suggest(&self, actor: &Actor, ticket: TicketId, limit: usize) -> Result<Vec<ArticleHit>> {
        let t = self.crm.service().tickets().get(actor, ticket)?;
        let text = format!("{} {}", t.subject, t.description.as_deref().unwrap_or(""));
        self.crm.kb().search(actor, &KbQuery::new(&text).mode(MatchMode::Any).limit(limit))
    }
}
