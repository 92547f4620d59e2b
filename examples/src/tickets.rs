//! Imports the "Customer Support Ticket Dataset" (`customer_support_tickets.csv`) into a CRM.
//!
//! Row mapping, quirks kept:
//! - The file starts with a UTF-8 byte-order mark; times are `M/D/YYYY H:MM` with no zone
//!   (read as UTC; the desk is set to work around the clock, so business time is wall time).
//! - Priority `Critical` → urgent; channel `Social media` → social; `Ticket Type` is kept as
//!   the category, and mapped onto our kinds: `Technical issue` → fault, `Product inquiry` and
//!   `Billing inquiry` → inquiry, `Refund request` and `Cancellation request` → complaint.
//! - Status `Open` → assigned (agents come from a round-robin group: the data names none);
//!   `Pending Customer Response` → first public reply at `First Response Time`, then pending
//!   customer; `Closed` → replied, resolved at `Time to Resolution` with `Resolution`, closed,
//!   and rated when a rating is given.
//! - The data has no creation time: a ticket is created at the earliest instant it records
//!   (first response or resolution), or, when it records none, at the file's latest instant.
//!   Resolution before first response (random source times) is kept: the ticket is resolved
//!   first and answered later.
//! - A row that cannot be imported (the trailing empty row, an unknown priority, a bad time) is
//!   reported with its line number and reason; nothing is dropped silently.

use std::collections::BTreeMap;
use std::path::Path;

use guanxi::chrono::{DateTime, NaiveDateTime, Utc};
use guanxi::service::{
    Agent, AssignStrategy, BusinessCalendar, Channel, NewTicket, Priority, ServiceSettings, SkillGroup, TicketKind,
    TicketStatus,
};
use guanxi::{Actor, Crm, Error, Result, TicketMove, TicketReply, UserId, ValidationReason};

/// Agents of the imported desk (the data set names none).
pub const AGENTS: [&str; 5] = ["agent1", "agent2", "agent3", "agent4", "agent5"];

/// One CSV record, by column name.
pub type Row = BTreeMap<String, String>;

/// What the import did.
#[derive(Debug, Default)]
pub struct Imported {
    /// Tickets created.
    pub tickets: usize,
    /// Rows refused: (line number of the record's start, reason).
    pub rejected: Vec<(usize, String)>,
    /// The instant tickets without times were created at (the file's latest instant).
    pub as_of: Option<DateTime<Utc>>,
}

fn bad(field: &str, detail: String) -> Error {
    Error::invalid(field, ValidationReason::Invalid { detail })
}

/// Reads the records (BOM stripped), each with the line it starts on.
pub fn read(path: &Path) -> Result<Vec<(usize, Row)>> {
    let text = std::fs::read_to_string(path).map_err(|e| bad("path", format!("{}: {e}", path.display())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
    let headers = r.headers().map_err(|e| bad("header", e.to_string()))?.clone();
    r.records()
        .map(|rec| {
            let rec = rec.map_err(|e| bad("record", e.to_string()))?;
            // csv counts the line before the record's first; people count the record's own.
            let line = rec.position().map_or(0, |p| p.line() as usize + 1);
            Ok((line, headers.iter().zip(rec.iter()).map(|(h, v)| (h.to_owned(), v.to_owned())).collect()))
        })
        .collect()
}

/// A `M/D/YYYY H:MM` time (blank: none).
pub fn time(field: &str, s: &str) -> Result<Option<DateTime<Utc>>> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    NaiveDateTime::parse_from_str(s.trim(), "%m/%d/%Y %H:%M")
        .map(|t| Some(t.and_utc()))
        .map_err(|e| bad(field, format!("'{s}': {e}")))
}

/// The priority of a row.
pub fn priority(s: &str) -> Result<Priority> {
    match s {
        "Low" => Ok(Priority::Low),
        "Medium" => Ok(Priority::Medium),
        "High" => Ok(Priority::High),
        "Critical" => Ok(Priority::Urgent),
        _ => Err(Error::invalid(
            "Ticket Priority",
            ValidationReason::not_allowed(s, ["Low", "Medium", "High", "Critical"]),
        )),
    }
}

fn channel(s: &str) -> Result<Channel> {
    match s {
        "Email" => Ok(Channel::Email),
        "Phone" => Ok(Channel::Phone),
        "Chat" => Ok(Channel::Chat),
        "Social media" => Ok(Channel::Social),
        _ => Err(Error::invalid(
            "Ticket Channel",
            ValidationReason::not_allowed(s, ["Email", "Phone", "Chat", "Social media"]),
        )),
    }
}

fn kind(s: &str) -> Result<TicketKind> {
    match s {
        "Technical issue" => Ok(TicketKind::Fault),
        "Product inquiry" | "Billing inquiry" => Ok(TicketKind::Inquiry),
        "Refund request" | "Cancellation request" => Ok(TicketKind::Complaint),
        _ => Err(Error::invalid(
            "Ticket Type",
            ValidationReason::not_allowed(
                s,
                ["Technical issue", "Product inquiry", "Billing inquiry", "Refund request", "Cancellation request"],
            ),
        )),
    }
}

/// The desk the import sets up: around-the-clock hours, one round-robin group of [`AGENTS`].
pub fn settings() -> Result<ServiceSettings> {
    let group = AGENTS.iter().try_fold(SkillGroup::new("support", "Support", AssignStrategy::RoundRobin), |g, a| {
        Ok::<_, Error>(g.agent(Agent::new(UserId::new(a)?, 0, &[])))
    })?;
    Ok(ServiceSettings {
        calendar: BusinessCalendar::around_the_clock(),
        groups: vec![group],
        default_group: Some("support".into()),
        ..ServiceSettings::default()
    })
}

/// The latest instant the records mention (None when they mention none).
pub fn latest_instant(rows: &[(usize, Row)]) -> Option<DateTime<Utc>> {
    rows.iter()
        .flat_map(|(_, r)| {
            ["First Response Time", "Time to Resolution"]
                .map(|c| time(c, r.get(c).map_or("", String::as_str)).ok().flatten())
        })
        .flatten()
        .max()
}

/// Imports records read by [`read`] as `actor`: sets up the desk ([`settings`]), then one
/// ticket per record. The CRM's clock must not be before [`latest_instant`].
pub fn import(crm: &Crm, actor: &Actor, rows: &[(usize, Row)]) -> Result<Imported> {
    crm.service().set_settings(actor, settings()?)?;
    let as_of = latest_instant(rows).unwrap_or_else(|| crm.now());
    let mut out = Imported { as_of: Some(as_of), ..Imported::default() };
    for (line, r) in rows {
        match import_row(crm, actor, r, as_of) {
            Ok(()) => out.tickets += 1,
            Err(e) => out.rejected.push((*line, e.to_string())),
        }
    }
    Ok(out)
}

fn import_row(crm: &Crm, actor: &Actor, r: &Row, as_of: DateTime<Utc>) -> Result<()> {
    let col = |c: &str| r.get(c).map_or("", String::as_str);
    if r.values().all(|v| v.trim().is_empty()) {
        return Err(bad("row", "is empty".into()));
    }
    let first_response = time("First Response Time", col("First Response Time"))?;
    let resolved = time("Time to Resolution", col("Time to Resolution"))?;
    let status = col("Ticket Status");
    let created = first_response.into_iter().chain(resolved).min().unwrap_or(as_of);
    let mut input = NewTicket::new(col("Ticket Subject"), kind(col("Ticket Type"))?, priority(col("Ticket Priority"))?)
        .description(col("Ticket Description"))
        .channel(channel(col("Ticket Channel"))?)
        .category(col("Ticket Type"))
        .created_at(created);
    input.subject = format!("#{} {}", col("Ticket ID"), input.subject);
    let rating = match col("Customer Satisfaction Rating").trim() {
        "" => None,
        s => Some(
            s.parse::<f64>()
                .ok()
                .filter(|v| v.fract() == 0.0 && (1.0..=5.0).contains(v))
                .map(|v| v as u8)
                .ok_or_else(|| bad("Customer Satisfaction Rating", format!("'{s}' is not a whole number 1–5")))?,
        ),
    };
    // Check what the status needs before writing anything.
    match status {
        "Open" => {}
        "Pending Customer Response" if first_response.is_some() => {}
        "Closed" if first_response.is_some() && resolved.is_some() => {}
        "Pending Customer Response" | "Closed" => {
            return Err(bad("Ticket Status", format!("{status} needs its response and resolution times")));
        }
        _ => {
            let allowed = ["Open", "Pending Customer Response", "Closed"];
            return Err(Error::invalid("Ticket Status", ValidationReason::not_allowed(status, allowed)));
        }
    }
    let mut t = crm.service().tickets().create(actor, input)?;
    if status == "Open" {
        return Ok(());
    }
    t = crm.service().tickets().move_to(
        actor,
        t.id,
        t.version,
        TicketStatus::InProgress,
        TicketMove::default().at(created),
    )?;
    let fr = first_response.unwrap_or(created);
    let reply = || TicketReply::public("(reply recorded by the source system)").at(fr);
    if status == "Pending Customer Response" {
        t = crm.service().tickets().reply(actor, t.id, t.version, reply())?;
        crm.service().tickets().move_to(
            actor,
            t.id,
            t.version,
            TicketStatus::PendingCustomer,
            TicketMove::default().at(fr),
        )?;
        return Ok(());
    }
    let res = resolved.unwrap_or(fr);
    let resolution = match col("Resolution").trim() {
        "" => "(not recorded)",
        s => s,
    };
    let resolve = TicketMove::default().resolution(resolution).at(res);
    if res < fr {
        t = crm.service().tickets().move_to(actor, t.id, t.version, TicketStatus::Resolved, resolve)?;
        t = crm.service().tickets().reply(actor, t.id, t.version, reply())?;
    } else {
        t = crm.service().tickets().reply(actor, t.id, t.version, reply())?;
        t = crm.service().tickets().move_to(actor, t.id, t.version, TicketStatus::Resolved, resolve)?;
    }
    t = crm.service().tickets().move_to(
        actor,
        t.id,
        t.version,
        TicketStatus::Closed,
        TicketMove::default().at(res.max(fr)),
    )?;
    if let Some(score) = rating {
        crm.service().tickets().rate(actor, t.id, t.version, score, None)?;
    }
    Ok(())
}
