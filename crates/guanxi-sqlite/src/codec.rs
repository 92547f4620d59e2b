//! Conversion between domain records and SQLite rows.
//!
//! Instants are stored as fixed-width RFC 3339 text with nanoseconds (`2024-05-01T08:00:00.000000000Z`),
//! which sorts lexicographically and round-trips exactly; enums by their stable names; nested
//! values (custom fields, phones, attachments, field changes) as JSON.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::Row;
use rusqlite::types::Type;
use serde::Serialize;
use serde::de::DeserializeOwned;

use guanxi_core::{ChangeLogEntry, Contact, CustomFieldDef, CustomValue, Customer, Interaction, Region, Tag, UserId};

/// A row that does not decode into its record.
#[derive(Debug)]
struct CorruptValue(String);

impl std::fmt::Display for CorruptValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CorruptValue {}

fn corrupt(idx: usize, what: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(CorruptValue(what.to_string())))
}

pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

fn parse_ts(idx: usize, s: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| corrupt(idx, e))
}

pub(crate) fn json<T: Serialize>(v: &T) -> String {
    // Serializing plain data (maps of strings, numbers, dates) to JSON cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

fn parse_json<T: DeserializeOwned>(idx: usize, s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| corrupt(idx, e))
}

/// Custom values as stored: decimals normalized so equality filters compare canonical text.
pub(crate) fn custom_json(custom: &BTreeMap<String, CustomValue>) -> String {
    let canonical: BTreeMap<&String, CustomValue> = custom
        .iter()
        .map(|(k, v)| match v {
            CustomValue::Decimal(d) => (k, CustomValue::Decimal(d.normalize())),
            other => (k, other.clone()),
        })
        .collect();
    json(&canonical)
}

fn get<T: FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    let s: String = row.get(idx)?;
    s.parse().map_err(|e: T::Err| corrupt(idx, format!("{s:?}: {e}")))
}

fn get_opt<T: FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    let s: Option<String> = row.get(idx)?;
    s.map(|s| s.parse().map_err(|e: T::Err| corrupt(idx, format!("{s:?}: {e}")))).transpose()
}

fn get_ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    parse_ts(idx, &row.get::<_, String>(idx)?)
}

fn get_ts_opt(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    row.get::<_, Option<String>>(idx)?.map(|s| parse_ts(idx, &s)).transpose()
}

fn get_json<T: DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    parse_json(idx, &row.get::<_, String>(idx)?)
}

fn get_version(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|e| corrupt(idx, e))
}

pub(crate) const CUSTOMER_COLUMNS: &str = "c.id, c.code, c.name, c.kind, c.industry, c.size, c.source, c.status, \
    c.level, c.province, c.city, c.district, c.address, c.owner, c.department, c.custom, c.created_by, \
    c.created_at, c.updated_by, c.updated_at, c.version, c.deleted_at";

/// Decodes a row of [`CUSTOMER_COLUMNS`]; tags are filled in separately.
pub(crate) fn customer_from_row(row: &Row<'_>) -> rusqlite::Result<Customer> {
    let province: Option<String> = row.get(9)?;
    let region = province.map(|province| -> rusqlite::Result<Region> {
        Ok(Region {
            province,
            city: row.get::<_, Option<String>>(10)?.unwrap_or_default(),
            district: row.get::<_, Option<String>>(11)?.unwrap_or_default(),
        })
    });
    Ok(Customer {
        id: get(row, 0)?,
        code: row.get(1)?,
        name: row.get(2)?,
        kind: get(row, 3)?,
        industry: get_opt(row, 4)?,
        size: get_opt(row, 5)?,
        source: row.get(6)?,
        status: get(row, 7)?,
        level: get_opt(row, 8)?,
        region: region.transpose()?,
        address: row.get(12)?,
        owner: get_opt(row, 13)?,
        department: get_opt(row, 14)?,
        tags: Default::default(),
        custom: get_json(row, 15)?,
        created_by: get(row, 16)?,
        created_at: get_ts(row, 17)?,
        updated_by: get(row, 18)?,
        updated_at: get_ts(row, 19)?,
        version: get_version(row, 20)?,
        deleted_at: get_ts_opt(row, 21)?,
    })
}

/// The values of a customer row, in [`CUSTOMER_COLUMNS`] order.
pub(crate) fn customer_values(c: &Customer) -> [rusqlite::types::Value; 22] {
    use rusqlite::types::Value as V;
    let text = |s: &str| V::Text(s.to_owned());
    let opt = |s: Option<&str>| s.map_or(V::Null, text);
    let region = c.region.as_ref();
    let non_empty = |s: &String| if s.is_empty() { V::Null } else { V::Text(s.clone()) };
    [
        text(&c.id.to_string()),
        text(&c.code),
        text(&c.name),
        text(c.kind.as_str()),
        opt(c.industry.map(|i| i.as_str())),
        opt(c.size.map(|s| s.as_str())),
        opt(c.source.as_deref()),
        text(c.status.as_str()),
        opt(c.level.map(|l| l.as_str())),
        opt(region.map(|r| r.province.as_str())),
        region.map_or(V::Null, |r| non_empty(&r.city)),
        region.map_or(V::Null, |r| non_empty(&r.district)),
        opt(c.address.as_deref()),
        opt(c.owner.as_ref().map(UserId::as_str)),
        opt(c.department.as_ref().map(|d| d.as_str())),
        V::Text(custom_json(&c.custom)),
        text(c.created_by.as_str()),
        V::Text(ts(c.created_at)),
        text(c.updated_by.as_str()),
        V::Text(ts(c.updated_at)),
        V::Integer(c.version as i64),
        c.deleted_at.map_or(V::Null, |t| V::Text(ts(t))),
    ]
}

pub(crate) const CONTACT_COLUMNS: &str = "id, customer_id, name, title, phones, emails, role, is_primary, \
    do_not_contact, custom, created_by, created_at, updated_by, updated_at, version, deleted_at";

pub(crate) fn contact_from_row(row: &Row<'_>) -> rusqlite::Result<Contact> {
    Ok(Contact {
        id: get(row, 0)?,
        customer_id: get(row, 1)?,
        name: row.get(2)?,
        title: row.get(3)?,
        phones: get_json(row, 4)?,
        emails: get_json(row, 5)?,
        role: get_opt(row, 6)?,
        primary: row.get(7)?,
        do_not_contact: row.get(8)?,
        custom: get_json(row, 9)?,
        created_by: get(row, 10)?,
        created_at: get_ts(row, 11)?,
        updated_by: get(row, 12)?,
        updated_at: get_ts(row, 13)?,
        version: get_version(row, 14)?,
        deleted_at: get_ts_opt(row, 15)?,
    })
}

pub(crate) fn contact_values(c: &Contact) -> [rusqlite::types::Value; 16] {
    use rusqlite::types::Value as V;
    [
        V::Text(c.id.to_string()),
        V::Text(c.customer_id.to_string()),
        V::Text(c.name.clone()),
        c.title.clone().map_or(V::Null, V::Text),
        V::Text(json(&c.phones)),
        V::Text(json(&c.emails)),
        c.role.map_or(V::Null, |r| V::Text(r.as_str().to_owned())),
        V::Integer(i64::from(c.primary)),
        V::Integer(i64::from(c.do_not_contact)),
        V::Text(custom_json(&c.custom)),
        V::Text(c.created_by.to_string()),
        V::Text(ts(c.created_at)),
        V::Text(c.updated_by.to_string()),
        V::Text(ts(c.updated_at)),
        V::Integer(c.version as i64),
        c.deleted_at.map_or(V::Null, |t| V::Text(ts(t))),
    ]
}

pub(crate) const INTERACTION_COLUMNS: &str = "id, customer_id, contact_id, kind, at, author, content, next_step, \
    next_contact_on, feedback, attachments, created_by, created_at";

pub(crate) fn interaction_from_row(row: &Row<'_>) -> rusqlite::Result<Interaction> {
    let next: Option<String> = row.get(8)?;
    Ok(Interaction {
        id: get(row, 0)?,
        customer_id: get(row, 1)?,
        contact_id: get_opt(row, 2)?,
        kind: get(row, 3)?,
        at: get_ts(row, 4)?,
        author: get(row, 5)?,
        content: row.get(6)?,
        next_step: row.get(7)?,
        next_contact_on: next
            .map(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_err(|e| corrupt(8, e)))
            .transpose()?,
        feedback: row.get(9)?,
        attachments: get_json(row, 10)?,
        created_by: get(row, 11)?,
        created_at: get_ts(row, 12)?,
    })
}

pub(crate) fn interaction_values(i: &Interaction) -> [rusqlite::types::Value; 13] {
    use rusqlite::types::Value as V;
    [
        V::Text(i.id.to_string()),
        V::Text(i.customer_id.to_string()),
        i.contact_id.map_or(V::Null, |c| V::Text(c.to_string())),
        V::Text(i.kind.as_str().to_owned()),
        V::Text(ts(i.at)),
        V::Text(i.author.to_string()),
        V::Text(i.content.clone()),
        i.next_step.clone().map_or(V::Null, V::Text),
        i.next_contact_on.map_or(V::Null, |d| V::Text(d.format("%Y-%m-%d").to_string())),
        i.feedback.clone().map_or(V::Null, V::Text),
        V::Text(json(&i.attachments)),
        V::Text(i.created_by.to_string()),
        V::Text(ts(i.created_at)),
    ]
}

pub(crate) fn tag_from_row(row: &Row<'_>) -> rusqlite::Result<Tag> {
    Ok(Tag { name: row.get(0)?, group: row.get(1)?, created_at: get_ts_opt(row, 2)? })
}

pub(crate) const FIELD_COLUMNS: &str =
    "entity, key, label, field_type, required, allowed_values, created_by, created_at";

pub(crate) fn field_from_row(row: &Row<'_>) -> rusqlite::Result<CustomFieldDef> {
    Ok(CustomFieldDef {
        entity: get(row, 0)?,
        key: row.get(1)?,
        label: row.get(2)?,
        field_type: get(row, 3)?,
        required: row.get(4)?,
        allowed_values: get_json(row, 5)?,
        created_by: get_opt(row, 6)?,
        created_at: get_ts_opt(row, 7)?,
    })
}

pub(crate) const LOG_COLUMNS: &str = "seq, at, actor, entity, entity_id, customer_id, action, changes";

pub(crate) fn log_from_row(row: &Row<'_>) -> rusqlite::Result<ChangeLogEntry> {
    let seq: i64 = row.get(0)?;
    Ok(ChangeLogEntry {
        seq: u64::try_from(seq).map_err(|e| corrupt(0, e))?,
        at: get_ts(row, 1)?,
        actor: get(row, 2)?,
        entity: get(row, 3)?,
        entity_id: row.get(4)?,
        customer_id: get_opt(row, 5)?,
        action: get(row, 6)?,
        changes: get_json(row, 7)?,
    })
}
