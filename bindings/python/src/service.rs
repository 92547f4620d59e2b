//! Service in Python (`crm.service`): settings as a dict (the serde shape), tickets and their
//! entries as read-only records, SLA evaluation and the service report as Arrow tables, the
//! knowledge base.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use guanxi::service::{self as core, KbQuery, MatchMode, ServiceQuery, TicketFilter};
use guanxi::{ArticleId, TicketId};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use arrow_array::RecordBatch;
use arrow_schema::ArrowError;

use crate::PyCrm;
use crate::arrow::{Columns, Table, arrow_err, object, page_request};
use crate::convert::{
    Problems, customer_id_from, entries, from_python, invalid_arg, parse_name, text, to_python, user_id as user,
    user_str, uuid_from, vocab,
};
use crate::customers::contact_id_from;
use crate::repr::q;
use crate::vocab::Vocab;

type Time = DateTime<Utc>;

fn ticket_id(v: &Bound<'_, PyAny>) -> PyResult<TicketId> {
    uuid_from(v, "ticket_id").map(TicketId)
}

fn article_id(v: &Bound<'_, PyAny>) -> PyResult<ArticleId> {
    uuid_from(v, "article_id").map(ArticleId)
}

/// A service ticket.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct Ticket {
    id: String,
    code: String,
    customer_id: Option<String>,
    contact_id: Option<String>,
    kind: Vocab<core::TicketKind>,
    priority: Vocab<core::Priority>,
    channel: Vocab<core::Channel>,
    category: Option<String>,
    subject: String,
    description: Option<String>,
    status: Vocab<core::TicketStatus>,
    assignee: Option<String>,
    group: Option<String>,
    skill: Option<String>,
    escalation_level: u32,
    resolution: Option<String>,
    satisfaction: Option<u8>,
    satisfaction_comment: Option<String>,
    risk_flags: BTreeSet<String>,
    sla_policy: Option<String>,
    sla_paused_secs: i64,
    pending_since: Option<Time>,
    reopen_count: u32,
    created_at: Time,
    first_response_at: Option<Time>,
    resolved_at: Option<Time>,
    closed_at: Option<Time>,
    version: u64,
}

#[pymethods]
impl Ticket {
    fn __repr__(&self) -> String {
        format!(
            "Ticket(code={}, status={}, priority={})",
            q(&self.code),
            q(self.status.name()),
            q(self.priority.name())
        )
    }
}

impl From<core::Ticket> for Ticket {
    fn from(t: core::Ticket) -> Self {
        Ticket {
            id: t.id.to_string(),
            code: t.code,
            customer_id: t.customer_id.map(|c| c.to_string()),
            contact_id: t.contact_id.map(|c| c.to_string()),
            kind: Vocab(t.kind),
            priority: Vocab(t.priority),
            channel: Vocab(t.channel),
            category: t.category,
            subject: t.subject,
            description: t.description,
            status: Vocab(t.status),
            assignee: user_str(&t.assignee),
            group: t.group,
            skill: t.skill,
            escalation_level: t.escalation_level,
            resolution: t.resolution,
            satisfaction: t.satisfaction,
            satisfaction_comment: t.satisfaction_comment,
            risk_flags: t.risk_flags,
            sla_policy: t.sla.map(|s| s.policy),
            sla_paused_secs: t.sla_paused_secs,
            pending_since: t.pending_since,
            reopen_count: t.reopen_count,
            created_at: t.created_at,
            first_response_at: t.first_response_at,
            resolved_at: t.resolved_at,
            closed_at: t.closed_at,
            version: t.version,
        }
    }
}

/// One entry of a ticket's history: `type` is "created", "reply", "status", "assigned" or
/// "rated"; `details` holds that type's fields as a dict.
#[pyclass(module = "guanxi._guanxi", frozen, get_all)]
pub struct TicketEntry {
    seq: u32,
    at: Time,
    by: String,
    #[pyo3(name = "type")]
    kind: String,
    details: Py<PyAny>,
}

#[pymethods]
impl TicketEntry {
    fn __repr__(&self) -> String {
        format!("TicketEntry(seq={}, type={})", self.seq, q(&self.kind))
    }
}

impl TicketEntry {
    fn new(py: Python<'_>, e: core::TicketEntry) -> PyResult<Self> {
        let mut json = serde_json::to_value(&e.change).map_err(|err| invalid_arg("entry", &err.to_string()))?;
        let kind = e.change.kind().to_owned();
        if let Some(o) = json.as_object_mut() {
            o.remove("type");
        }
        Ok(TicketEntry {
            seq: e.seq,
            at: e.at,
            by: e.by.as_str().to_owned(),
            kind,
            details: to_python(py, &json)?.unbind(),
        })
    }
}

/// A knowledge-base article.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct Article {
    id: String,
    title: String,
    body: String,
    tags: BTreeSet<String>,
    category: Option<String>,
    published: bool,
    updated_at: Time,
    version: u64,
}

#[pymethods]
impl Article {
    fn __repr__(&self) -> String {
        format!("Article(title={}, published={})", q(&self.title), if self.published { "True" } else { "False" })
    }
}

impl From<core::Article> for Article {
    fn from(a: core::Article) -> Self {
        Article {
            id: a.id.to_string(),
            title: a.title,
            body: a.body,
            tags: a.tags,
            category: a.category,
            published: a.published,
            updated_at: a.updated_at,
            version: a.version,
        }
    }
}

/// A search hit: the article and its BM25 score (higher is better).
#[pyclass(module = "guanxi._guanxi", frozen, get_all)]
pub struct ArticleHit {
    article: Article,
    score: f64,
}

#[pymethods]
impl ArticleHit {
    fn __repr__(&self) -> String {
        format!("ArticleHit(title={}, score={:.3})", q(&self.article.title), self.score)
    }
}

/// The service report: scalars as attributes, breakdowns as Arrow tables.
#[pyclass(module = "guanxi._guanxi", frozen, get_all)]
pub struct ServiceReport {
    at: Time,
    tickets: u64,
    /// status, count.
    by_status: Table,
    /// period (first day), kind, channel, priority, count.
    volume: Table,
    /// metric ("first_response" / "resolution"), count, mean_secs, median_secs, p90_secs.
    times: Table,
    /// target ("first_response" / "resolution"), met, breached, rate.
    sla: Table,
    resolved: u64,
    reopened: u64,
    reopen_rate: Option<rust_decimal::Decimal>,
    csat_responses: u64,
    csat_mean: Option<rust_decimal::Decimal>,
    csat_satisfied_rate: Option<rust_decimal::Decimal>,
    /// by ("kind" / "category" / "agent"), key, responses, mean, satisfied_rate.
    csat: Table,
    /// assignee (None: unassigned), open, breached, at_risk.
    backlog: Table,
    flagged: u64,
}

#[pymethods]
impl ServiceReport {
    fn __repr__(&self) -> String {
        format!("ServiceReport(tickets={}, at={})", self.tickets, self.at)
    }
}

impl ServiceReport {
    fn new(r: core::ServiceReport) -> PyResult<Self> {
        let by_status = Columns::new(&r.by_status)
            .text("status", |s| Some(s.0.as_str()))
            .count("count", |s| s.1)
            .finish()
            .map_err(arrow_err)?;
        let volume = Columns::new(&r.volume)
            .date("period", |v| Some(v.period))
            .text("kind", |v| Some(v.kind.as_str()))
            .text("channel", |v| Some(v.channel.as_str()))
            .text("priority", |v| Some(v.priority.as_str()))
            .count("count", |v| v.count)
            .finish()
            .map_err(arrow_err)?;
        let times = [("first_response", r.first_response), ("resolution", r.resolution)];
        let times = Columns::new(&times)
            .text("metric", |t| Some(t.0))
            .count("count", |t| t.1.count)
            .int("mean_secs", |t| t.1.mean_secs)
            .int("median_secs", |t| t.1.median_secs)
            .int("p90_secs", |t| t.1.p90_secs)
            .finish()
            .map_err(arrow_err)?;
        let sla = [("first_response", r.first_response_sla), ("resolution", r.resolution_sla)];
        let sla = Columns::new(&sla)
            .text("target", |t| Some(t.0))
            .count("met", |t| t.1.met)
            .count("breached", |t| t.1.breached)
            .decimal("rate", |t| t.1.rate)
            .and_then(Columns::finish)
            .map_err(arrow_err)?;
        let csat: Vec<(&str, &core::KeyedCsat)> =
            [("kind", &r.csat_by_kind), ("category", &r.csat_by_category), ("agent", &r.csat_by_agent)]
                .into_iter()
                .flat_map(|(by, rows)| rows.iter().map(move |k| (by, k)))
                .collect();
        let csat = Columns::new(&csat)
            .text("by", |c| Some(c.0))
            .text("key", |c| Some(&c.1.key))
            .count("responses", |c| c.1.csat.responses)
            .decimal("mean", |c| c.1.csat.mean)
            .and_then(|c| c.decimal("satisfied_rate", |c| c.1.csat.satisfied_rate))
            .and_then(Columns::finish)
            .map_err(arrow_err)?;
        let backlog = Columns::new(&r.backlog)
            .text("assignee", |b| b.assignee.as_ref().map(|u| u.as_str()))
            .count("open", |b| b.open)
            .count("breached", |b| b.breached)
            .count("at_risk", |b| b.at_risk)
            .finish()
            .map_err(arrow_err)?;
        Ok(ServiceReport {
            at: r.at,
            tickets: r.tickets,
            by_status,
            volume,
            times,
            sla,
            resolved: r.resolved,
            reopened: r.reopened,
            reopen_rate: r.reopen_rate,
            csat_responses: r.csat.responses,
            csat_mean: r.csat.mean,
            csat_satisfied_rate: r.csat.satisfied_rate,
            csat,
            backlog,
            flagged: r.flagged,
        })
    }
}

/// The SLA of tickets as a table: one row per ticket.
fn to_hits(hits: Vec<core::ArticleHit>) -> Vec<ArticleHit> {
    hits.into_iter().map(|h| ArticleHit { article: h.article.into(), score: h.score }).collect()
}

fn sla_table(rows: &[core::TicketSla]) -> PyResult<Table> {
    Columns::new(rows)
        .text("ticket_id", |s| Some(s.ticket_id.to_string()))
        .text("code", |s| Some(&s.code))
        .text("status", |s| Some(s.status.as_str()))
        .text("priority", |s| Some(s.priority.as_str()))
        .text("assignee", |s| s.assignee.as_ref().map(|u| u.as_str()))
        .text("policy", |s| Some(&s.policy))
        .text("first_response_state", |s| Some(s.first_response.state.as_str()))
        .int("first_response_remaining_secs", |s| Some(s.first_response.remaining_secs))
        .time("first_response_deadline", |s| s.first_response.deadline)
        .text("resolution_state", |s| Some(s.resolution.state.as_str()))
        .int("resolution_used_secs", |s| Some(s.resolution.used_secs))
        .int("resolution_remaining_secs", |s| Some(s.resolution.remaining_secs))
        .time("resolution_deadline", |s| s.resolution.deadline)
        .boolean("breached", |s| Some(s.breached()))
        .boolean("at_risk", |s| Some(s.at_risk()))
        .finish()
        .map_err(arrow_err)
}

/// Tickets as a table: one row each.
fn ticket_batch(rows: &[core::Ticket]) -> Result<RecordBatch, ArrowError> {
    Columns::new(rows)
        .text("id", |t| Some(t.id.to_string()))
        .text("code", |t| Some(&t.code))
        .text("customer_id", |t| t.customer_id.map(|c| c.to_string()))
        .text("kind", |t| Some(t.kind.as_str()))
        .text("priority", |t| Some(t.priority.as_str()))
        .text("channel", |t| Some(t.channel.as_str()))
        .text("category", |t| t.category.as_deref())
        .text("subject", |t| Some(&t.subject))
        .text("status", |t| Some(t.status.as_str()))
        .text("assignee", |t| t.assignee.as_ref().map(|u| u.as_str()))
        .text("group", |t| t.group.as_deref())
        .int("escalation_level", |t| Some(i64::from(t.escalation_level)))
        .int("satisfaction", |t| t.satisfaction.map(i64::from))
        .text("risk_flags", |t| Some(t.risk_flags.iter().cloned().collect::<Vec<_>>().join(",")))
        .int("reopen_count", |t| Some(i64::from(t.reopen_count)))
        .time("created_at", |t| Some(t.created_at))
        .time("first_response_at", |t| t.first_response_at)
        .time("resolved_at", |t| t.resolved_at)
        .time("closed_at", |t| t.closed_at)
        .batch()
}

/// The keyword filters of ticket lists, counts, the SLA overview and the report.
const TICKET_FILTERS: &[&str] =
    &["status", "open", "assignee", "group", "customer_id", "kind", "priority", "channel", "start", "end"];

fn ticket_filter(filters: Option<&Bound<'_, PyDict>>) -> PyResult<TicketFilter> {
    let mut f = TicketFilter::default();
    let mut problems = Problems::default();
    for (key, v) in entries(filters, &mut problems) {
        if v.is_none() {
            continue;
        }
        let k = key.as_str();
        match k {
            "status" => f.status = problems.keep(k, vocab(k, &v)),
            "open" => f.open = problems.keep(k, v.extract()),
            "assignee" => f.assignee = problems.keep(k, crate::convert::user(k, &v)),
            "group" => f.group = problems.keep(k, text(&v)),
            "customer_id" => f.customer_id = problems.keep(k, customer_id_from(&v)),
            "kind" => f.kind = problems.keep(k, vocab(k, &v)),
            "priority" => f.priority = problems.keep(k, vocab(k, &v)),
            "channel" => f.channel = problems.keep(k, vocab(k, &v)),
            "start" => f.created_from = problems.keep(k, v.extract()),
            "end" => f.created_to = problems.keep(k, v.extract()),
            other => problems.unknown_key(other, TICKET_FILTERS),
        }
    }
    problems.result(f)
}

fn settings_to_py<'py>(py: Python<'py>, v: &core::ServiceSettings) -> PyResult<Bound<'py, PyAny>> {
    to_python(py, v)
}

/// `crm.service`: the service settings, the SLA overview and the service report; `.tickets`.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Service {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Service {
    /// Tickets: create, get, list (paged), count, reply, move, assign, escalate, rate.
    #[getter]
    fn tickets(&self, py: Python<'_>) -> Tickets {
        Tickets { crm: self.crm.clone_ref(py) }
    }

    /// The service settings as a dict: calendar (utc_offset_minutes, weekly — seven lists of
    /// {"start": "09:00:00", "end": …} —, holidays, working_days, working_day_hours),
    /// sla_policies, at_risk_percent, groups (key, name, agents, strategy, escalate_to),
    /// routes, default_group, auto_assign, reopen_window_days, risk_keywords.
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.crm.get().run(py, |c, a| c.service().settings(a))?;
        settings_to_py(py, &s)
    }

    /// Replaces the settings (the dict shape `settings()` returns); returns them.
    fn set_settings<'py>(&self, py: Python<'py>, settings: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let s: core::ServiceSettings = from_python(settings, "settings")?;
        self.crm.get().run(py, |c, a| c.service().set_settings(a, s))?;
        self.settings(py)
    }

    /// The SLA of the matching tickets at `at` (default now) as an Arrow table: states
    /// ("met", "breached", "at_risk", "running", "paused"), remaining business seconds,
    /// deadlines, and `breached` / `at_risk` flags. Filters as for `tickets.list`.
    #[pyo3(signature = (*, at = None, **filters))]
    fn sla_overview(&self, py: Python<'_>, at: Option<Time>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<Table> {
        let f = ticket_filter(filters)?;
        let rows = self.crm.get().run(py, |c, a| c.service().sla_overview(a, &f, at.unwrap_or_else(|| c.now())))?;
        py.detach(|| sla_table(&rows))
    }

    /// The service report over the matching tickets (filters as for `tickets.list`; `period` is
    /// "day", "week" or "month"; `at` judges open tickets, default now).
    #[pyo3(signature = (*, period = "day", at = None, **filters))]
    fn report(
        &self,
        py: Python<'_>,
        period: &str,
        at: Option<Time>,
        filters: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<ServiceReport> {
        let period: core::Period = parse_name("period", period)?;
        let query = ServiceQuery { filter: ticket_filter(filters)?, period, at };
        let r = self.crm.get().run(py, |c, a| c.service().report(a, &query))?;
        py.detach(|| ServiceReport::new(r))
    }
}

/// `crm.service.tickets`: service tickets, their SLAs and their history.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Tickets {
    pub(crate) crm: Py<PyCrm>,
}

/// The arguments of `tickets.create`, as Python gave them.
struct TicketArgs<'a, 'py> {
    subject: &'a str,
    /// None when a row left it out (a required field).
    kind: Option<&'a str>,
    priority: Option<&'a str>,
    description: Option<String>,
    channel: &'a str,
    category: Option<String>,
    customer_id: Option<&'a Bound<'py, PyAny>>,
    contact_id: Option<&'a Bound<'py, PyAny>>,
    group: Option<String>,
    skill: Option<String>,
    assignee: Option<&'a str>,
    created_at: Option<Time>,
}

/// A required vocabulary value by name (a missing or unknown one is a problem of `field`).
fn required_name<T: std::str::FromStr<Err = guanxi::UnknownName>>(
    problems: &mut Problems,
    field: &str,
    name: Option<&str>,
) -> Option<T> {
    match name {
        Some(n) => problems.keep(field, parse_name(field, n)),
        None => {
            problems.push(field, guanxi::ValidationReason::Required);
            None
        }
    }
}

/// The core's new ticket from `create`'s arguments; every bad one reported together.
fn new_ticket(a: TicketArgs<'_, '_>) -> PyResult<core::NewTicket> {
    let mut problems = Problems::default();
    let kind = required_name(&mut problems, "kind", a.kind);
    let priority = required_name(&mut problems, "priority", a.priority);
    let channel = problems.keep("channel", parse_name("channel", a.channel));
    let customer_id = a.customer_id.and_then(|c| problems.keep("customer_id", customer_id_from(c)));
    let contact_id = a.contact_id.and_then(|c| problems.keep("contact_id", contact_id_from(c)));
    let assignee = a.assignee.and_then(|u| problems.keep("assignee", user("assignee", u)));
    let (Some(kind), Some(priority), Some(channel)) = (kind, priority, channel) else {
        return Err(problems.into_error());
    };
    let mut input = problems.result(core::NewTicket::new(a.subject, kind, priority))?;
    input.description = a.description;
    input.channel = channel;
    input.category = a.category;
    input.customer_id = customer_id;
    input.contact_id = contact_id;
    input.group = a.group;
    input.skill = a.skill;
    input.assignee = assignee;
    input.created_at = a.created_at;
    Ok(input)
}

/// The keys a row of `tickets.create_many` may carry.
const TICKET_ROW_KEYS: &[&str] = &[
    "subject",
    "kind",
    "priority",
    "description",
    "channel",
    "category",
    "customer_id",
    "contact_id",
    "group",
    "skill",
    "assignee",
    "created_at",
];

/// One row of `tickets.create_many` as `create`'s arguments (None when a value had the wrong
/// type: that is in `problems`).
fn ticket_row(row: &Bound<'_, PyDict>, problems: &mut Problems) -> PyResult<Option<core::NewTicket>> {
    let get = |k: &str| -> PyResult<Option<Bound<'_, PyAny>>> { Ok(row.get_item(k)?.filter(|v| !v.is_none())) };
    for (key, _) in entries(Some(row), problems) {
        if !TICKET_ROW_KEYS.contains(&key.as_str()) {
            problems.unknown_key(&key, TICKET_ROW_KEYS);
        }
    }
    let string = |k: &str, problems: &mut Problems| -> PyResult<Option<String>> {
        Ok(get(k)?.and_then(|v| problems.keep(k, v.extract::<String>())))
    };
    let subject = string("subject", problems)?.unwrap_or_default();
    let (kind, priority) = (string("kind", problems)?, string("priority", problems)?);
    let channel = string("channel", problems)?.unwrap_or_else(|| "web".to_owned());
    let (customer_id, contact_id) = (get("customer_id")?, get("contact_id")?);
    let assignee = string("assignee", problems)?;
    let created_at = get("created_at")?.and_then(|v| problems.keep("created_at", v.extract::<Time>()));
    let args = TicketArgs {
        subject: &subject,
        kind: kind.as_deref(),
        priority: priority.as_deref(),
        description: string("description", problems)?,
        channel: &channel,
        category: string("category", problems)?,
        customer_id: customer_id.as_ref(),
        contact_id: contact_id.as_ref(),
        group: string("group", problems)?,
        skill: string("skill", problems)?,
        assignee: assignee.as_deref(),
        created_at,
    };
    Ok(problems.keep("", new_ticket(args)))
}

#[pymethods]
impl Tickets {
    /// Raises a ticket (routed, auto-assigned, flagged and given SLA targets by the settings).
    /// kind: inquiry / complaint / suggestion / fault; priority: low / medium / high / urgent.
    #[pyo3(signature = (subject, *, kind, priority, description = None, channel = "web", category = None, customer_id = None, contact_id = None, group = None, skill = None, assignee = None, created_at = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn create(
        &self,
        py: Python<'_>,
        subject: &str,
        kind: &str,
        priority: &str,
        description: Option<String>,
        channel: &str,
        category: Option<String>,
        customer_id: Option<&Bound<'_, PyAny>>,
        contact_id: Option<&Bound<'_, PyAny>>,
        group: Option<String>,
        skill: Option<String>,
        assignee: Option<&str>,
        created_at: Option<Time>,
    ) -> PyResult<Ticket> {
        let input = new_ticket(TicketArgs {
            subject,
            kind: Some(kind),
            priority: Some(priority),
            description,
            channel,
            category,
            customer_id,
            contact_id,
            group,
            skill,
            assignee,
            created_at,
        })?;
        self.crm.get().run(py, |c, a| c.service().tickets().create(a, input)).map(Ticket::from)
    }

    /// Raises many tickets in one transaction, all or none, each as `create` would (the
    /// auto-assignment of each counts the tickets given out before it). Each row is a dict of
    /// `create`'s arguments with its "subject"; a bad field is reported under its row
    /// (`tickets[3].priority`), every one together.
    fn create_many(&self, py: Python<'_>, rows: &Bound<'_, PyAny>) -> PyResult<Vec<Ticket>> {
        let mut problems = Problems::default();
        let mut inputs = Vec::new();
        for (i, row) in rows.try_iter()?.enumerate() {
            let mut inner = Problems::default();
            let read = row.and_then(|r| ticket_row(&r.cast_into::<PyDict>()?, &mut inner));
            inputs.extend(inner.keep("", read).flatten());
            problems.nest(&format!("tickets[{i}]"), inner);
        }
        let inputs = problems.result(inputs)?;
        let made = self.crm.get().run(py, |c, a| c.service().tickets().create_many(a, inputs))?;
        Ok(made.into_iter().map(Ticket::from).collect())
    }

    /// A ticket by id.
    fn get(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Ticket> {
        let id = ticket_id(id)?;
        self.crm.get().run(py, |c, a| c.service().tickets().get(a, id)).map(Ticket::from)
    }

    /// A ticket by code, e.g. "T20240501001".
    fn get_by_code(&self, py: Python<'_>, code: &str) -> PyResult<Ticket> {
        self.crm.get().run(py, |c, a| c.service().tickets().get_by_code(a, code)).map(Ticket::from)
    }

    /// One page of the tickets matching the keyword filters (status, open, assignee, group,
    /// customer_id, kind, priority, channel, start, end — on creation, end exclusive), oldest
    /// first: `limit` after the cursor `after`.
    #[pyo3(signature = (*, after = None, limit = 100, **filters))]
    fn list(
        &self,
        py: Python<'_>,
        after: Option<&str>,
        limit: i64,
        filters: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Table> {
        let page = page_request(after, limit)?;
        let f = ticket_filter(filters)?;
        let page = self.crm.get().run(py, |c, a| c.service().tickets().list(a, &f, page))?;
        Ok(tickets_table(page.items).page(page.next))
    }

    /// Every ticket matching the keyword filters, as one table.
    #[pyo3(signature = (**filters))]
    fn list_all(&self, py: Python<'_>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<Table> {
        let f = ticket_filter(filters)?;
        Ok(tickets_table(self.crm.get().run(py, |c, a| c.service().tickets().list_all(a, &f))?))
    }

    /// How many tickets match the keyword filters.
    #[pyo3(signature = (**filters))]
    fn count(&self, py: Python<'_>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<u64> {
        let f = ticket_filter(filters)?;
        self.crm.get().run(py, |c, a| c.service().tickets().count(a, &f))
    }

    /// A ticket's history, oldest first.
    fn entries(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Vec<TicketEntry>> {
        let id = ticket_id(id)?;
        let entries = self.crm.get().run(py, |c, a| c.service().tickets().entries(a, id))?;
        entries.into_iter().map(|e| TicketEntry::new(py, e)).collect()
    }

    /// Adds a public reply (the first is the first response) or, with public=False, an
    /// internal note. `at` records an earlier reply.
    #[pyo3(signature = (id, version, body, *, public = true, at = None))]
    fn reply(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        body: &str,
        public: bool,
        at: Option<Time>,
    ) -> PyResult<Ticket> {
        let version: u64 = crate::convert::int_arg(version, "version")?;
        let id = ticket_id(id)?;
        let reply = guanxi::TicketReply { body: body.to_owned(), public, at };
        self.crm.get().run(py, |c, a| c.service().tickets().reply(a, id, version, reply)).map(Ticket::from)
    }

    /// Moves a ticket's status ("in_progress", "pending_customer", "resolved" — needs
    /// `resolution` —, "closed", "cancelled"); an illegal move raises InvalidStateError and
    /// changes nothing.
    #[pyo3(signature = (id, version, status, *, resolution = None, at = None))]
    fn move_to(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        status: &str,
        resolution: Option<String>,
        at: Option<Time>,
    ) -> PyResult<Ticket> {
        let version: u64 = crate::convert::int_arg(version, "version")?;
        let id = ticket_id(id)?;
        let to = parse_name("status", status)?;
        let m = guanxi::TicketMove { resolution, at };
        self.crm.get().run(py, |c, a| c.service().tickets().move_to(a, id, version, to, m)).map(Ticket::from)
    }

    /// Gives a ticket to an agent (`agent=`), a group (`group=`; an agent of it by its
    /// strategy), or, with neither, an agent of its group by the group's strategy.
    #[pyo3(signature = (id, version, *, agent = None, group = None, note = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn assign(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        agent: Option<&str>,
        group: Option<String>,
        note: Option<String>,
    ) -> PyResult<Ticket> {
        let version: u64 = crate::convert::int_arg(version, "version")?;
        let id = ticket_id(id)?;
        let to = match (agent, group) {
            (Some(_), Some(_)) => return Err(invalid_arg("agent", "give an agent or a group, not both")),
            (Some(u), None) => guanxi::AssignTo::Agent(user("agent", u)?),
            (None, Some(g)) => guanxi::AssignTo::Group(g),
            (None, None) => guanxi::AssignTo::Auto,
        };
        self.crm
            .get()
            .run(py, |c, a| c.service().tickets().assign(a, id, version, to, note.as_deref()))
            .map(Ticket::from)
    }

    /// Escalates a ticket to its group's escalation group.
    #[pyo3(signature = (id, version, *, note = None))]
    fn escalate(&self, py: Python<'_>, id: &Bound<'_, PyAny>, version: u64, note: Option<String>) -> PyResult<Ticket> {
        let id = ticket_id(id)?;
        self.crm.get().run(py, |c, a| c.service().tickets().escalate(a, id, version, note.as_deref())).map(Ticket::from)
    }

    /// Records the customer's rating (1–5, once, after resolution).
    #[pyo3(signature = (id, version, score, *, comment = None))]
    fn rate(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        score: &Bound<'_, PyAny>,
        comment: Option<String>,
    ) -> PyResult<Ticket> {
        let version: u64 = crate::convert::int_arg(version, "version")?;
        let score: i64 = crate::convert::int_arg(score, "score")?;
        let id = ticket_id(id)?;
        let score = u8::try_from(score).map_err(|_| invalid_arg("satisfaction", &format!("{score} is not 1–5")))?;
        self.crm
            .get()
            .run(py, |c, a| c.service().tickets().rate(a, id, version, score, comment.as_deref()))
            .map(Ticket::from)
    }

    /// Changes a ticket's priority (its SLA targets are chosen again).
    fn set_priority(&self, py: Python<'_>, id: &Bound<'_, PyAny>, version: u64, priority: &str) -> PyResult<Ticket> {
        let id = ticket_id(id)?;
        let p = parse_name("priority", priority)?;
        self.crm.get().run(py, |c, a| c.service().tickets().set_priority(a, id, version, p)).map(Ticket::from)
    }

    /// The SLA state of one ticket at `at` (default now), as a table of one row (none for a
    /// ticket without SLA targets).
    #[pyo3(signature = (id, *, at = None))]
    fn sla(&self, py: Python<'_>, id: &Bound<'_, PyAny>, at: Option<Time>) -> PyResult<Table> {
        let id = ticket_id(id)?;
        let row = self.crm.get().run(py, |c, a| c.service().tickets().sla(a, id, at.unwrap_or_else(|| c.now())))?;
        let rows: Vec<core::TicketSla> = row.into_iter().collect();
        py.detach(|| sla_table(&rows))
    }
}

fn tickets_table(rows: Vec<core::Ticket>) -> Table {
    Table::records(rows, ticket_batch, object::<core::Ticket, Ticket>)
}

/// `crm.kb`: the knowledge base: articles, ranked search, suggestions for a ticket.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct KnowledgeBase {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl KnowledgeBase {
    /// Adds a knowledge-base article.
    #[pyo3(signature = (title, body, *, tags = Vec::new(), category = None, published = true))]
    fn create(
        &self,
        py: Python<'_>,
        title: &str,
        body: &str,
        tags: Vec<String>,
        category: Option<String>,
        published: bool,
    ) -> PyResult<Article> {
        let input = core::NewArticle { title: title.to_owned(), body: body.to_owned(), tags, category, published };
        self.crm.get().run(py, |c, a| c.kb().create(a, input)).map(Article::from)
    }

    /// Replaces an article's content.
    #[pyo3(signature = (id, version, title, body, *, tags = Vec::new(), category = None, published = true))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn update(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        title: &str,
        body: &str,
        tags: Vec<String>,
        category: Option<String>,
        published: bool,
    ) -> PyResult<Article> {
        let version: u64 = crate::convert::int_arg(version, "version")?;
        let id = article_id(id)?;
        let input = core::NewArticle { title: title.to_owned(), body: body.to_owned(), tags, category, published };
        self.crm.get().run(py, |c, a| c.kb().update(a, id, version, input)).map(Article::from)
    }

    /// An article by id.
    fn get(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Article> {
        let id = article_id(id)?;
        self.crm.get().run(py, |c, a| c.kb().get(a, id)).map(Article::from)
    }

    /// Ranked search in Chinese or English. `match` is "all" (every word) or "any".
    #[pyo3(signature = (text, *, limit = None, r#match = "all", category = None, tag = None, include_unpublished = false))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn search(
        &self,
        py: Python<'_>,
        text: &str,
        limit: Option<&Bound<'_, PyAny>>,
        r#match: &str,
        category: Option<String>,
        tag: Option<String>,
        include_unpublished: bool,
    ) -> PyResult<Vec<ArticleHit>> {
        let mode = match r#match {
            "all" => MatchMode::All,
            "any" => MatchMode::Any,
            other => return Err(invalid_arg("match", &format!("'{other}' is not all or any"))),
        };
        let limit: usize = crate::convert::opt_int_arg(limit, "limit")?.unwrap_or(10);
        let q = KbQuery { text: text.to_owned(), mode, limit, category, tag, include_unpublished };
        let hits = self.crm.get().run(py, |c, a| c.kb().search(a, &q))?;
        Ok(to_hits(hits))
    }

    /// Published articles that may answer a ticket.
    #[pyo3(signature = (id, *, limit = None))]
    fn suggest(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<ArticleHit>> {
        let id = ticket_id(id)?;
        let limit: usize = crate::convert::opt_int_arg(limit, "limit")?.unwrap_or(5);
        let hits = self.crm.get().run(py, |c, a| c.kb().suggest(a, id, limit))?;
        Ok(to_hits(hits))
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Service>()?;
    m.add_class::<Tickets>()?;
    m.add_class::<KnowledgeBase>()?;
    m.add_class::<Ticket>()?;
    m.add_class::<TicketEntry>()?;
    m.add_class::<Article>()?;
    m.add_class::<ArticleHit>()?;
    m.add_class::<ServiceReport>()?;
    Ok(())
}
