//! Service for Kotlin and Swift: tickets, their entries and SLA, the service report and the
//! knowledge base as records; the `Crm` methods convert around one facade call each.

// The vocabularies are guanxi-core's own enums, derived there (feature `uniffi`).
use guanxi::service::{self as core, KbQuery, MatchMode, ServiceQuery, TicketFilter as CoreFilter};
// Records exported as guanxi-core declares them.
pub use guanxi::service::{Article, Route, SlaPolicy, Ticket, TicketSla};
pub use guanxi::service::{AssignReason, AssignStrategy, Channel, Period, Priority, TicketKind, TicketStatus};
use guanxi::{ArticleId, TicketId, UserId};

use std::sync::Arc;

use crate::{DateTime, Result, Uuid, invalid, name_of, user_id as user};
use crate::{PageRequest, handle, next_of, page};

/// A new ticket; `channel` null is the web.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewTicket {
    pub subject: String,
    pub kind: TicketKind,
    pub priority: Priority,
    #[uniffi(default = None)]
    pub description: Option<String>,
    #[uniffi(default = None)]
    pub channel: Option<Channel>,
    #[uniffi(default = None)]
    pub category: Option<String>,
    #[uniffi(default = None)]
    pub customer_id: Option<Uuid>,
    #[uniffi(default = None)]
    pub group: Option<String>,
    #[uniffi(default = None)]
    pub skill: Option<String>,
    #[uniffi(default = None)]
    pub assignee: Option<String>,
    #[uniffi(default = None)]
    pub created_at: Option<DateTime>,
}

impl NewTicket {
    fn into_core(self) -> Result<core::NewTicket> {
        let mut t = core::NewTicket::new(&self.subject, self.kind, self.priority);
        t.description = self.description;
        t.channel = self.channel.map_or(core::Channel::Web, Into::into);
        t.category = self.category;
        t.customer_id = self.customer_id.map(guanxi::CustomerId);
        t.group = self.group;
        t.skill = self.skill;
        t.assignee = self.assignee.map(|u| user("assignee", &u)).transpose()?;
        t.created_at = self.created_at;
        Ok(t)
    }
}

/// One entry of a ticket's history: who did what when.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct TicketEntry {
    /// 1, 2, … per ticket.
    pub seq: u32,
    pub at: DateTime,
    pub by: String,
    pub change: TicketChange,
}

/// What one history entry did to a ticket.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum TicketChange {
    /// The ticket was opened.
    Created,
    /// A reply (public: the customer sees it); the risk keywords it contained.
    Reply { body: String, public: bool, risk_flags: Vec<String> },
    /// A status move, with the resolution given when it resolved.
    Status { from: TicketStatus, to: TicketStatus, resolution: Option<String> },
    /// A hand-over to another agent and/or group.
    Assigned {
        from_user: Option<String>,
        to_user: Option<String>,
        from_group: Option<String>,
        to_group: Option<String>,
        reason: AssignReason,
        note: Option<String>,
    },
    /// The customer's satisfaction rating (1–5).
    Rated { score: u8, comment: Option<String> },
}

impl From<core::TicketEntry> for TicketEntry {
    fn from(e: core::TicketEntry) -> Self {
        let name = |u: Option<UserId>| u.map(|u| u.as_str().to_owned());
        let change = match e.change {
            core::TicketChange::Created => TicketChange::Created,
            core::TicketChange::Reply { body, public, risk_flags } => TicketChange::Reply { body, public, risk_flags },
            core::TicketChange::Status { from, to, resolution } => TicketChange::Status { from, to, resolution },
            core::TicketChange::Assigned { from_user, to_user, from_group, to_group, reason, note } => {
                TicketChange::Assigned {
                    from_user: name(from_user),
                    to_user: name(to_user),
                    from_group,
                    to_group,
                    reason,
                    note,
                }
            }
            core::TicketChange::Rated { score, comment } => TicketChange::Rated { score, comment },
        };
        TicketEntry { seq: e.seq, at: e.at, by: e.by.as_str().to_owned(), change }
    }
}

/// Ticket list conditions (all optional, combined with AND).
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct TicketFilter {
    #[uniffi(default = None)]
    pub status: Option<TicketStatus>,
    #[uniffi(default = None)]
    pub open: Option<bool>,
    #[uniffi(default = None)]
    pub assignee: Option<String>,
    #[uniffi(default = None)]
    pub group: Option<String>,
    #[uniffi(default = None)]
    pub kind: Option<TicketKind>,
    #[uniffi(default = None)]
    pub priority: Option<Priority>,
    #[uniffi(default = None)]
    pub created_from: Option<DateTime>,
    #[uniffi(default = None)]
    pub created_to: Option<DateTime>,
    #[uniffi(default = None)]
    pub customer_id: Option<Uuid>,
    #[uniffi(default = None)]
    pub channel: Option<Channel>,
}

impl TicketFilter {
    fn into_core(self) -> Result<CoreFilter> {
        Ok(CoreFilter {
            status: self.status,
            open: self.open,
            assignee: self.assignee.map(|u| user("assignee", &u)).transpose()?,
            group: self.group,
            kind: self.kind,
            priority: self.priority,
            created_from: self.created_from,
            created_to: self.created_to,
            customer_id: self.customer_id.map(guanxi::CustomerId),
            channel: self.channel,
            ..CoreFilter::default()
        })
    }
}

/// Durations in business seconds.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DurationStats {
    pub count: u64,
    pub mean_secs: Option<i64>,
    pub median_secs: Option<i64>,
    pub p90_secs: Option<i64>,
}

impl From<core::DurationStats> for DurationStats {
    fn from(d: core::DurationStats) -> Self {
        DurationStats { count: d.count, mean_secs: d.mean_secs, median_secs: d.median_secs, p90_secs: d.p90_secs }
    }
}

/// Satisfaction figures of a group (`key`: kind, category or agent).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct KeyedCsat {
    pub key: String,
    pub responses: u64,
    pub mean: Option<crate::Decimal>,
    pub satisfied_rate: Option<crate::Decimal>,
}

impl From<core::KeyedCsat> for KeyedCsat {
    fn from(k: core::KeyedCsat) -> Self {
        KeyedCsat { key: k.key, responses: k.csat.responses, mean: k.csat.mean, satisfied_rate: k.csat.satisfied_rate }
    }
}

/// Tickets per status.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct StatusCount {
    pub status: TicketStatus,
    pub count: u64,
}

/// An agent's open tickets (`assignee` None: unassigned).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Backlog {
    pub assignee: Option<String>,
    pub open: u64,
    pub breached: u64,
    pub at_risk: u64,
}

/// The service report.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ServiceReport {
    pub at: DateTime,
    pub tickets: u64,
    pub by_status: Vec<StatusCount>,
    pub first_response: DurationStats,
    pub resolution: DurationStats,
    pub first_response_met: u64,
    pub first_response_breached: u64,
    pub resolution_met: u64,
    pub resolution_breached: u64,
    pub reopen_rate: Option<crate::Decimal>,
    pub csat_responses: u64,
    pub csat_mean: Option<crate::Decimal>,
    pub csat_by_kind: Vec<KeyedCsat>,
    pub csat_by_category: Vec<KeyedCsat>,
    pub csat_by_agent: Vec<KeyedCsat>,
    pub backlog: Vec<Backlog>,
    pub flagged: u64,
}

impl From<core::ServiceReport> for ServiceReport {
    fn from(r: core::ServiceReport) -> Self {
        ServiceReport {
            at: r.at,
            tickets: r.tickets,
            by_status: r.by_status.into_iter().map(|(s, count)| StatusCount { status: s, count }).collect(),
            first_response: r.first_response.into(),
            resolution: r.resolution.into(),
            first_response_met: r.first_response_sla.met,
            first_response_breached: r.first_response_sla.breached,
            resolution_met: r.resolution_sla.met,
            resolution_breached: r.resolution_sla.breached,
            reopen_rate: r.reopen_rate,
            csat_responses: r.csat.responses,
            csat_mean: r.csat.mean,
            csat_by_kind: r.csat_by_kind.into_iter().map(Into::into).collect(),
            csat_by_category: r.csat_by_category.into_iter().map(Into::into).collect(),
            csat_by_agent: r.csat_by_agent.into_iter().map(Into::into).collect(),
            backlog: r
                .backlog
                .into_iter()
                .map(|b| Backlog {
                    assignee: name_of(b.assignee),
                    open: b.open,
                    breached: b.breached,
                    at_risk: b.at_risk,
                })
                .collect(),
            flagged: r.flagged,
        }
    }
}

/// A knowledge-base article's content.
#[derive(Debug, Clone, uniffi::Record)]
pub struct NewArticle {
    pub title: String,
    pub body: String,
    #[uniffi(default = [])]
    pub tags: Vec<String>,
    #[uniffi(default = None)]
    pub category: Option<String>,
    #[uniffi(default = true)]
    pub published: bool,
}

impl From<NewArticle> for core::NewArticle {
    fn from(a: NewArticle) -> Self {
        core::NewArticle { title: a.title, body: a.body, tags: a.tags, category: a.category, published: a.published }
    }
}

/// A search hit with its BM25 score (higher is better).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ArticleHit {
    pub article: Article,
    pub score: f64,
}

/// A knowledge-base search: every word (or, with `match_any`, any of them), optionally within
/// a category or tag, drafts too when `include_unpublished`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ArticleQuery {
    pub text: String,
    #[uniffi(default = 10)]
    pub limit: u32,
    #[uniffi(default = false)]
    pub match_any: bool,
    #[uniffi(default = None)]
    pub category: Option<String>,
    #[uniffi(default = None)]
    pub tag: Option<String>,
    #[uniffi(default = false)]
    pub include_unpublished: bool,
}

impl From<ArticleQuery> for KbQuery {
    fn from(q: ArticleQuery) -> Self {
        KbQuery {
            text: q.text,
            mode: if q.match_any { MatchMode::Any } else { MatchMode::All },
            limit: q.limit as usize,
            category: q.category,
            tag: q.tag,
            include_unpublished: q.include_unpublished,
        }
    }
}

fn hits(v: Vec<core::ArticleHit>) -> Vec<ArticleHit> {
    v.into_iter().map(|h| ArticleHit { article: h.article, score: h.score }).collect()
}

handle! {
    /// `crm.service()`: the service settings, the SLA overview, the service report; `tickets()`.
    Service
}

#[uniffi::export]
impl Service {
    /// service tickets, their SLAs and their history.
    pub fn tickets(&self) -> Arc<Tickets> {
        Arc::new(Tickets { inner: self.inner.clone(), actor: self.actor.clone() })
    }

    /// The service settings: calendar, SLA policies, skill groups, routes, risk keywords.
    pub fn settings(&self) -> Result<ServiceSettings> {
        Ok(self.inner.service().settings(&self.actor)?.into())
    }

    /// Replaces the service settings (checked as a whole first); returns them.
    pub fn set_settings(&self, settings: ServiceSettings) -> Result<ServiceSettings> {
        let s = settings.into_core()?;
        Ok(self.inner.service().set_settings(&self.actor, s)?.into())
    }

    /// The SLA of the matching tickets at `at`.
    pub fn sla_overview(&self, filter: TicketFilter, at: DateTime) -> Result<Vec<TicketSla>> {
        Ok(self.inner.service().sla_overview(&self.actor, &filter.into_core()?, at)?.into_iter().collect())
    }

    /// The service report over the matching tickets, bucketed by `period`.
    pub fn report(&self, filter: TicketFilter, period: Period, at: Option<DateTime>) -> Result<ServiceReport> {
        let period: core::Period = period;
        let q = ServiceQuery { filter: filter.into_core()?, period, at };
        Ok(self.inner.service().report(&self.actor, &q)?.into())
    }
}

handle! {
    /// `crm.service().tickets()`: service tickets, their SLAs and their history.
    Tickets
}

#[uniffi::export]
impl Tickets {
    /// Raises a ticket (routed, auto-assigned, flagged and given SLA targets).
    pub fn create(&self, input: NewTicket) -> Result<Ticket> {
        Ok(self.inner.service().tickets().create(&self.actor, input.into_core()?)?)
    }

    /// Raises many tickets in one transaction, each as `create` would (auto-assignment counts
    /// the tickets given out earlier in the batch): all of them or, on any failure, none. Every
    /// bad field of every input is reported together, under `tickets[i].<field>`.
    pub fn create_many(&self, inputs: Vec<NewTicket>) -> Result<Vec<Ticket>> {
        let inputs = crate::convert_all("tickets", inputs, NewTicket::into_core)?;
        Ok(self.inner.service().tickets().create_many(&self.actor, inputs)?)
    }

    /// A ticket by id.
    pub fn get(&self, id: Uuid) -> Result<Ticket> {
        Ok(self.inner.service().tickets().get(&self.actor, TicketId(id))?)
    }

    /// A ticket by code, e.g. "T20240501001".
    pub fn get_by_code(&self, code: String) -> Result<Ticket> {
        Ok(self.inner.service().tickets().get_by_code(&self.actor, &code)?)
    }

    /// Every ticket matching the filter, oldest first.
    /// One page of the tickets matching `filter`, oldest first.
    pub fn list(&self, filter: TicketFilter, page: PageRequest) -> Result<TicketPage> {
        Ok(self.inner.service().tickets().list(&self.actor, &filter.into_core()?, page.into_core()?)?.into())
    }

    /// Every ticket matching `filter`, oldest first.
    pub fn list_all(&self, filter: TicketFilter) -> Result<Vec<Ticket>> {
        Ok(self.inner.service().tickets().list_all(&self.actor, &filter.into_core()?)?.into_iter().collect())
    }

    /// A ticket's history, oldest first.
    pub fn entries(&self, id: Uuid) -> Result<Vec<TicketEntry>> {
        Ok(self.inner.service().tickets().entries(&self.actor, TicketId(id))?.into_iter().map(Into::into).collect())
    }

    /// A public reply (the first is the first response) or an internal note.
    pub fn reply(&self, id: Uuid, version: u64, body: String, public: bool, at: Option<DateTime>) -> Result<Ticket> {
        let reply = guanxi::TicketReply { body, public, at };
        Ok(self.inner.service().tickets().reply(&self.actor, TicketId(id), version, reply)?)
    }

    /// Moves a ticket's status; an illegal move is an InvalidState error and changes nothing.
    pub fn move_to(
        &self,
        id: Uuid,
        version: u64,
        status: TicketStatus,
        resolution: Option<String>,
        at: Option<DateTime>,
    ) -> Result<Ticket> {
        let to: core::TicketStatus = status;
        Ok(self.inner.service().tickets().move_to(
            &self.actor,
            TicketId(id),
            version,
            to,
            guanxi::TicketMove { resolution, at },
        )?)
    }

    /// Gives a ticket to an agent, or a group, or (neither) an agent of its group.
    pub fn assign(
        &self,
        id: Uuid,
        version: u64,
        agent: Option<String>,
        group: Option<String>,
        note: Option<String>,
    ) -> Result<Ticket> {
        let to = match (agent, group) {
            (Some(a), None) => guanxi::AssignTo::Agent(user("agent", &a)?),
            (None, Some(g)) => guanxi::AssignTo::Group(g),
            (None, None) => guanxi::AssignTo::Auto,
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "agent",
                    guanxi::ValidationReason::Invalid { detail: "give an agent or a group, not both".into() },
                ));
            }
        };
        Ok(self.inner.service().tickets().assign(&self.actor, TicketId(id), version, to, note.as_deref())?)
    }

    /// Escalates a ticket to its group's escalation group.
    pub fn escalate(&self, id: Uuid, version: u64, note: Option<String>) -> Result<Ticket> {
        Ok(self.inner.service().tickets().escalate(&self.actor, TicketId(id), version, note.as_deref())?)
    }

    /// The customer's rating, 1–5, once, after resolution.
    pub fn rate(&self, id: Uuid, version: u64, score: u8, comment: Option<String>) -> Result<Ticket> {
        Ok(self.inner.service().tickets().rate(&self.actor, TicketId(id), version, score, comment.as_deref())?)
    }

    /// Changes a ticket's priority; its SLA targets are chosen again.
    pub fn set_priority(&self, id: Uuid, version: u64, priority: Priority) -> Result<Ticket> {
        let priority: core::Priority = priority;
        Ok(self.inner.service().tickets().set_priority(&self.actor, TicketId(id), version, priority)?)
    }

    /// One ticket's SLA at `at` (null when no policy applies).
    pub fn sla(&self, id: Uuid, at: DateTime) -> Result<Option<TicketSla>> {
        Ok(self.inner.service().tickets().sla(&self.actor, TicketId(id), at)?)
    }
}

handle! {
    /// `crm.kb()`: articles, ranked search, suggestions for a ticket.
    KnowledgeBase
}

#[uniffi::export]
impl KnowledgeBase {
    /// Adds an article.
    pub fn create(&self, input: NewArticle) -> Result<Article> {
        Ok(self.inner.kb().create(&self.actor, input.into())?)
    }

    /// Replaces an article's content.
    pub fn update(&self, id: Uuid, version: u64, input: NewArticle) -> Result<Article> {
        Ok(self.inner.kb().update(&self.actor, ArticleId(id), version, input.into())?)
    }

    /// An article by id.
    pub fn get(&self, id: Uuid) -> Result<Article> {
        Ok(self.inner.kb().get(&self.actor, ArticleId(id))?)
    }

    /// Ranked search in Chinese or English (BM25, best first).
    pub fn search(&self, query: ArticleQuery) -> Result<Vec<ArticleHit>> {
        Ok(hits(self.inner.kb().search(&self.actor, &query.into())?))
    }

    /// Published articles that may answer a ticket.
    pub fn suggest(&self, ticket: Uuid, limit: u32) -> Result<Vec<ArticleHit>> {
        Ok(hits(self.inner.kb().suggest(&self.actor, TicketId(ticket), limit as usize)?))
    }
}

page!(
    /// One page of tickets.
    TicketPage of Ticket
);

/// A span of working time, in seconds after local midnight (09:00 is 32400).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct WorkingHours {
    pub start_seconds: u32,
    pub end_seconds: u32,
}

/// The working week, holidays and make-up working days of the service desk.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct BusinessCalendar {
    /// Minutes east of UTC (China: 480).
    pub utc_offset_minutes: i32,
    /// Seven days, Monday first, each its working spans.
    pub weekly: Vec<Vec<WorkingHours>>,
    #[uniffi(default = [])]
    pub holidays: Vec<crate::Day>,
    /// Weekend days worked (调休).
    #[uniffi(default = [])]
    pub working_days: Vec<crate::Day>,
    /// The spans of those days.
    #[uniffi(default = [])]
    pub working_day_hours: Vec<WorkingHours>,
}

/// An agent of a skill group.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Agent {
    pub user: String,
    /// Most open tickets at once (0: no limit).
    #[uniffi(default = 0)]
    pub capacity: u32,
    #[uniffi(default = [])]
    pub skills: Vec<String>,
}

/// A group of agents tickets are routed to.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SkillGroup {
    pub key: String,
    pub name: String,
    pub agents: Vec<Agent>,
    #[uniffi(default = None)]
    pub strategy: Option<AssignStrategy>,
    #[uniffi(default = None)]
    pub escalate_to: Option<String>,
}

/// How the service desk works (the typed form of the service-settings document).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ServiceSettings {
    pub calendar: BusinessCalendar,
    pub sla_policies: Vec<SlaPolicy>,
    /// Share of a target used (percent) from which a running SLA is at risk.
    pub at_risk_percent: u8,
    pub groups: Vec<SkillGroup>,
    pub routes: Vec<Route>,
    pub default_group: Option<String>,
    pub auto_assign: bool,
    pub reopen_window_days: u32,
    pub risk_keywords: Vec<String>,
}

fn hours_out(h: &core::WorkingHours) -> WorkingHours {
    use chrono::Timelike;
    WorkingHours { start_seconds: h.start.num_seconds_from_midnight(), end_seconds: h.end.num_seconds_from_midnight() }
}

/// Working spans from seconds; a second past the day is an error under `path`.
fn hours_in(errs: &mut guanxi::ValidationErrors, path: &str, hours: Vec<WorkingHours>) -> Vec<core::WorkingHours> {
    let time = |s: u32| chrono::NaiveTime::from_num_seconds_from_midnight_opt(s, 0);
    let mut out = Vec::new();
    for (i, h) in hours.into_iter().enumerate() {
        match (time(h.start_seconds), time(h.end_seconds)) {
            (Some(start), Some(end)) => out.push(core::WorkingHours { start, end }),
            _ => errs.push(
                format!("{path}[{i}]"),
                guanxi::ValidationReason::Invalid { detail: "seconds must be below 86400".into() },
            ),
        }
    }
    out
}

impl From<core::ServiceSettings> for ServiceSettings {
    fn from(s: core::ServiceSettings) -> Self {
        let c = s.calendar;
        ServiceSettings {
            calendar: BusinessCalendar {
                utc_offset_minutes: c.utc_offset_minutes,
                weekly: c.weekly.iter().map(|day| day.iter().map(hours_out).collect()).collect(),
                holidays: c.holidays.into_iter().collect(),
                working_days: c.working_days.into_iter().collect(),
                working_day_hours: c.working_day_hours.iter().map(hours_out).collect(),
            },
            sla_policies: s
                .sla_policies
                .into_iter()
                .map(|p| SlaPolicy {
                    name: p.name,
                    priority: p.priority,
                    kind: p.kind,
                    customer_level: p.customer_level,
                    first_response_minutes: p.first_response_minutes,
                    resolution_minutes: p.resolution_minutes,
                })
                .collect(),
            at_risk_percent: s.at_risk_percent,
            groups: s
                .groups
                .into_iter()
                .map(|g| SkillGroup {
                    key: g.key,
                    name: g.name,
                    agents: g
                        .agents
                        .into_iter()
                        .map(|a| Agent {
                            user: a.user.to_string(),
                            capacity: a.capacity,
                            skills: a.skills.into_iter().collect(),
                        })
                        .collect(),
                    strategy: Some(g.strategy),
                    escalate_to: g.escalate_to,
                })
                .collect(),
            routes: s
                .routes
                .into_iter()
                .map(|r| Route {
                    kind: r.kind,
                    channel: r.channel,
                    priority: r.priority,
                    keyword: r.keyword,
                    group: r.group,
                    skill: r.skill,
                })
                .collect(),
            default_group: s.default_group,
            auto_assign: s.auto_assign,
            reopen_window_days: s.reopen_window_days,
            risk_keywords: s.risk_keywords,
        }
    }
}

impl ServiceSettings {
    /// The core settings; every malformed part (a day count other than seven, a second past the
    /// day, a bad user id) is reported, and the core checks the rest.
    fn into_core(self) -> Result<core::ServiceSettings> {
        let mut errs = guanxi::ValidationErrors::default();
        let c = self.calendar;
        if c.weekly.len() != 7 {
            errs.push(
                "calendar.weekly",
                guanxi::ValidationReason::Invalid { detail: "must have seven days, Monday first".into() },
            );
        }
        let mut weekly: [Vec<core::WorkingHours>; 7] = Default::default();
        for (d, day) in c.weekly.into_iter().enumerate().take(7) {
            weekly[d] = hours_in(&mut errs, &format!("calendar.weekly[{d}]"), day);
        }
        let working_day_hours = hours_in(&mut errs, "calendar.working_day_hours", c.working_day_hours);
        let mut groups = Vec::new();
        for (g, group) in self.groups.into_iter().enumerate() {
            let mut agents = Vec::new();
            for (a, agent) in group.agents.into_iter().enumerate() {
                match UserId::new(&agent.user) {
                    Ok(user) => agents.push(core::Agent {
                        user,
                        capacity: agent.capacity,
                        skills: agent.skills.iter().map(|s| s.to_lowercase()).collect(),
                    }),
                    Err(_) => errs.push(
                        format!("groups[{g}].agents[{a}].user"),
                        guanxi::ValidationReason::Invalid { detail: format!("'{}' is not a user id", agent.user) },
                    ),
                }
            }
            groups.push(core::SkillGroup {
                key: group.key,
                name: group.name,
                agents,
                strategy: group.strategy.unwrap_or_default(),
                escalate_to: group.escalate_to,
            });
        }
        let settings = core::ServiceSettings {
            calendar: core::BusinessCalendar {
                utc_offset_minutes: c.utc_offset_minutes,
                weekly,
                holidays: c.holidays.into_iter().collect(),
                working_days: c.working_days.into_iter().collect(),
                working_day_hours,
            },
            sla_policies: self
                .sla_policies
                .into_iter()
                .map(|p| {
                    let mut policy =
                        core::SlaPolicy::new(&p.name, p.priority, p.first_response_minutes, p.resolution_minutes);
                    policy.kind = p.kind;
                    policy.customer_level = p.customer_level;
                    policy
                })
                .collect(),
            at_risk_percent: self.at_risk_percent,
            groups,
            routes: self
                .routes
                .into_iter()
                .map(|r| core::Route {
                    kind: r.kind,
                    channel: r.channel,
                    priority: r.priority,
                    keyword: r.keyword,
                    group: r.group,
                    skill: r.skill,
                })
                .collect(),
            default_group: self.default_group,
            auto_assign: self.auto_assign,
            reopen_window_days: self.reopen_window_days,
            risk_keywords: self.risk_keywords,
        };
        Ok(errs.into_result(settings)?)
    }
}
