//! Conversion between domain records and SQLite rows.
//!
//! Instants are stored as fixed-width RFC 3339 text with nanoseconds (`2024-05-01T08:00:00.000000000Z`),
//! which sorts lexicographically and round-trips exactly; enums by their stable names; nested
//! values (custom fields, phones, attachments, field changes) as JSON.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::Type;
use rusqlite::{Row, Statement};
use serde::Serialize;
use serde::de::DeserializeOwned;

use guanxi_core::scan::{CustomerView, TagsView};
use guanxi_core::{
    ChangeAction, ChangeLogEntry, Contact, ContactId, CustomFieldDef, Customer, CustomerKind, DecisionRole,
    EncryptionError, Error, Identifier, Industry, Interaction, InteractionKind, Level, LifecycleStatus, SizeBand, Tag,
    UserId,
};
use guanxi_sql::Cipher;

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

pub(crate) use guanxi_sql::ts;

fn parse_ts(idx: usize, s: &str) -> rusqlite::Result<DateTime<Utc>> {
    if let Some(t) = parse_stored_ts(s) {
        return Ok(t);
    }
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| corrupt(idx, e))
}

/// Fast path for the exact form [`ts`] writes, `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`; anything else
/// (or an invalid date) returns `None` and goes through the general RFC 3339 parser.
fn parse_stored_ts(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() != 30
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[29] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0')))
    };
    let date = chrono::NaiveDate::from_ymd_opt(i32::try_from(num(0..4)?).ok()?, num(5..7)?, num(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_nano_opt(num(11..13)?, num(14..16)?, num(17..19)?, num(20..29)?)?;
    Some(date.and_time(time).and_utc())
}

pub(crate) fn json<T: Serialize>(v: &T) -> String {
    // Serializing plain data (maps of strings, numbers, dates) to JSON cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

fn parse_json<T: DeserializeOwned + Default>(idx: usize, s: &str) -> rusqlite::Result<T> {
    // Most records have no custom values and few tags: skip the parser for the empty forms.
    if s == "{}" || s == "[]" {
        return Ok(T::default());
    }
    serde_json::from_str(s).map_err(|e| corrupt(idx, e))
}

pub(crate) use guanxi_sql::custom_json;

/// Decodes a stored vocabulary name (exact match: stored names are canonical).
pub(crate) trait StoredName: Sized {
    fn from_stored(name: &str) -> Option<Self>;
}

macro_rules! stored_names {
    ($($t:ty),*) => { $(impl StoredName for $t { fn from_stored(n: &str) -> Option<Self> { <$t>::from_name(n) } })* };
}
stored_names!(CustomerKind, SizeBand, LifecycleStatus, Level, DecisionRole, InteractionKind, ChangeAction, Industry);

fn name<T: StoredName>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let s = text(row, idx)?;
    T::from_stored(s).ok_or_else(|| corrupt(idx, format!("unknown name {s:?}")))
}

fn name_opt<T: StoredName>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>> {
    match text_opt(row, idx)? {
        None => Ok(None),
        Some(s) => T::from_stored(s).map(Some).ok_or_else(|| corrupt(idx, format!("unknown name {s:?}"))),
    }
}

// The readers below borrow the column's text (`get_ref`) and parse it in place: no String is
// allocated only to be parsed and dropped.
pub(crate) fn text<'r>(row: &'r Row<'_>, idx: usize) -> rusqlite::Result<&'r str> {
    row.get_ref(idx)?.as_str().map_err(|e| corrupt(idx, e))
}

fn text_opt<'r>(row: &'r Row<'_>, idx: usize) -> rusqlite::Result<Option<&'r str>> {
    row.get_ref(idx)?.as_str_or_null().map_err(|e| corrupt(idx, e))
}

fn get<T: FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    let s = text(row, idx)?;
    s.parse().map_err(|e: T::Err| corrupt(idx, format!("{s:?}: {e}")))
}

fn get_opt<T: FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    text_opt(row, idx)?.map(|s| s.parse().map_err(|e: T::Err| corrupt(idx, format!("{s:?}: {e}")))).transpose()
}

fn get_ts(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    parse_ts(idx, text(row, idx)?)
}

fn get_ts_opt(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    text_opt(row, idx)?.map(|s| parse_ts(idx, s)).transpose()
}

/// A JSON column decoded (a record stored whole, such as an event).
pub(crate) fn get_json_at<T: DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    serde_json::from_str(text(row, idx)?).map_err(|e| corrupt(idx, e))
}

fn get_json<T: DeserializeOwned + Default>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    parse_json(idx, text(row, idx)?)
}

fn get_version(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(idx)?;
    u64::try_from(v).map_err(|e| corrupt(idx, e))
}

/// The stored columns of `customers`, in binding order.
pub(crate) const CUSTOMER_FIELDS: &str = "id, code, name, kind, industry, size, source, status, level, province, \
    city, district, address, owner, department, custom, created_by, created_at, updated_by, updated_at, version, \
    deleted_at, merged_into, identifiers";

/// What a customer read selects from `customers c`: the stored columns, then the tag names as a
/// JSON array from the (customer_id, tag) primary key, so one query returns whole records.
pub(crate) const CUSTOMER_COLUMNS: &str = "c.id, c.code, c.name, c.kind, c.industry, c.size, c.source, c.status, \
    c.level, c.province, c.city, c.district, c.address, c.owner, c.department, c.custom, c.created_by, \
    c.created_at, c.updated_by, c.updated_at, c.version, c.deleted_at, \
    (SELECT json_group_array(t.tag) FROM customer_tags t WHERE t.customer_id = c.id), c.merged_into, c.identifiers";

/// [`CUSTOMER_COLUMNS`] without the tags (a scan reads them beside the rows), at the same
/// positions.
pub(crate) const CUSTOMER_SCAN_COLUMNS: &str = "c.id, c.code, c.name, c.kind, c.industry, c.size, c.source, \
    c.status, c.level, c.province, c.city, c.district, c.address, c.owner, c.department, c.custom, c.created_by, \
    c.created_at, c.updated_by, c.updated_at, c.version, c.deleted_at, NULL, c.merged_into, c.identifiers";

/// Decodes a row of [`CUSTOMER_COLUMNS`]; its identifiers are decrypted with `cipher`.
pub(crate) fn customer_from_row(row: &Row<'_>, cipher: Option<&Cipher>) -> rusqlite::Result<Customer> {
    let tags: Vec<String> = get_json(row, 22)?;
    let custom = customer_custom(row)?;
    let identifiers = customer_identifiers(row, cipher)?;
    customer_view(row, &tags, &custom, &identifiers)?.to_customer().map_err(|e| corrupt(13, e))
}

/// A row of [`CUSTOMER_COLUMNS`] (its tags column aside) as a view borrowing the row's text,
/// with the tags, custom values and identifiers decoded by the caller.
pub(crate) fn customer_view<'r>(
    row: &'r Row<'_>,
    tags: &'r [String],
    custom: &'r std::collections::BTreeMap<String, guanxi_core::CustomValue>,
    identifiers: &'r [Identifier],
) -> rusqlite::Result<CustomerView<'r>> {
    let province = text_opt(row, 9)?;
    Ok(CustomerView {
        id: get(row, 0)?,
        code: text(row, 1)?,
        name: text(row, 2)?,
        kind: name(row, 3)?,
        industry: name_opt(row, 4)?,
        size: name_opt(row, 5)?,
        source: text_opt(row, 6)?,
        status: name(row, 7)?,
        level: name_opt(row, 8)?,
        province,
        // A stored region keeps a missing city or district as empty text.
        city: province.and(text_opt(row, 10)?).and_then(non_empty),
        district: province.and(text_opt(row, 11)?).and_then(non_empty),
        address: text_opt(row, 12)?,
        owner: text_opt(row, 13)?,
        department: text_opt(row, 14)?,
        tags: TagsView::List(tags),
        custom,
        identifiers,
        created_by: text(row, 16)?,
        created_at: get_ts(row, 17)?,
        updated_by: text(row, 18)?,
        updated_at: get_ts(row, 19)?,
        version: get_version(row, 20)?,
        deleted_at: get_ts_opt(row, 21)?,
        merged_into: get_opt(row, 23)?,
    })
}

/// The decoded custom values of a row of [`CUSTOMER_COLUMNS`].
pub(crate) fn customer_custom(
    row: &Row<'_>,
) -> rusqlite::Result<std::collections::BTreeMap<String, guanxi_core::CustomValue>> {
    get_json(row, 15)
}

/// The decoded identifiers of a row of [`CUSTOMER_COLUMNS`] (NULL when it has none),
/// decrypted with `cipher` when they are encrypted.
pub(crate) fn customer_identifiers(row: &Row<'_>, cipher: Option<&Cipher>) -> rusqlite::Result<Vec<Identifier>> {
    let Some(stored) = row.get_ref(24)?.as_str_or_null()? else { return Ok(Vec::new()) };
    decode_identifiers(stored, text(row, 0)?, cipher).map_err(typed)
}

/// Where a customer's encrypted identifiers are bound (associated data of the ciphertext).
fn identifiers_context(id: &str) -> String {
    format!("customers.identifiers:{id}")
}

/// A stored identifiers column (a JSON array, or its ciphertext) as identifiers.
pub(crate) fn decode_identifiers(
    stored: &str,
    id: &str,
    cipher: Option<&Cipher>,
) -> guanxi_core::Result<Vec<Identifier>> {
    let json = if Cipher::is_encrypted(stored) {
        let cipher = cipher.ok_or(Error::Encryption(EncryptionError::KeyRequired))?;
        std::borrow::Cow::Owned(cipher.decrypt(&identifiers_context(id), stored)?)
    } else {
        std::borrow::Cow::Borrowed(stored)
    };
    serde_json::from_str(&json)
        .map_err(|e| guanxi_core::StorageError::with_source("stored customer identifiers do not decode", e).into())
}

/// A customer's identifiers as stored: a JSON array, encrypted under `cipher` when the store
/// encrypts; NULL when there are none.
pub(crate) fn identifiers_column(c: &Customer, cipher: Option<&Cipher>) -> guanxi_core::Result<Option<String>> {
    if c.identifiers.is_empty() {
        return Ok(None);
    }
    let plain = json(&c.identifiers);
    match cipher {
        Some(cipher) => cipher.encrypt(&identifiers_context(&c.id.to_string()), &plain).map(Some),
        None => Ok(Some(plain)),
    }
}

fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

/// Binds a customer's columns to parameters 1..=24 (in [`CUSTOMER_FIELDS`] order), borrowing
/// rather than copying its text; its identifiers as prepared by [`identifiers_column`].
pub(crate) fn bind_customer(stmt: &mut Statement<'_>, c: &Customer, identifiers: Option<&str>) -> rusqlite::Result<()> {
    let region = c.region.as_ref();
    stmt.raw_bind_parameter(1, c.id.to_string())?;
    stmt.raw_bind_parameter(2, &c.code)?;
    stmt.raw_bind_parameter(3, &c.name)?;
    stmt.raw_bind_parameter(4, c.kind.as_str())?;
    stmt.raw_bind_parameter(5, c.industry.map(|i| i.as_str()))?;
    stmt.raw_bind_parameter(6, c.size.map(|s| s.as_str()))?;
    stmt.raw_bind_parameter(7, c.source.as_deref())?;
    stmt.raw_bind_parameter(8, c.status.as_str())?;
    stmt.raw_bind_parameter(9, c.level.map(|l| l.as_str()))?;
    stmt.raw_bind_parameter(10, region.map(|r| r.province.as_str()))?;
    stmt.raw_bind_parameter(11, region.and_then(|r| non_empty(&r.city)))?;
    stmt.raw_bind_parameter(12, region.and_then(|r| non_empty(&r.district)))?;
    stmt.raw_bind_parameter(13, c.address.as_deref())?;
    stmt.raw_bind_parameter(14, c.owner.as_ref().map(UserId::as_str))?;
    stmt.raw_bind_parameter(15, c.department.as_ref().map(|d| d.as_str()))?;
    stmt.raw_bind_parameter(16, custom_json(&c.custom))?;
    stmt.raw_bind_parameter(17, c.created_by.as_str())?;
    stmt.raw_bind_parameter(18, ts(c.created_at))?;
    stmt.raw_bind_parameter(19, c.updated_by.as_str())?;
    stmt.raw_bind_parameter(20, ts(c.updated_at))?;
    stmt.raw_bind_parameter(21, c.version as i64)?;
    stmt.raw_bind_parameter(22, c.deleted_at.map(ts))?;
    stmt.raw_bind_parameter(23, c.merged_into.map(|m| m.to_string()))?;
    stmt.raw_bind_parameter(24, identifiers)
}

pub(crate) const CONTACT_COLUMNS: &str = "id, customer_id, name, title, phones, emails, role, is_primary, \
    do_not_contact, custom, created_by, created_at, updated_by, updated_at, version, deleted_at, id_number";

/// Where a contact's encrypted value of `column` is bound (associated data of the ciphertext).
fn context(column: &str, id: &str) -> String {
    format!("contacts.{column}:{id}")
}

/// Reads a sensitive text column, decrypting it when it is encrypted (none given for an
/// encrypted value is [`EncryptionError::KeyRequired`]).
fn sensitive_text(
    row: &Row<'_>,
    idx: usize,
    column: &str,
    id: &str,
    cipher: Option<&Cipher>,
) -> rusqlite::Result<Option<String>> {
    let Some(stored) = row.get_ref(idx)?.as_str_or_null()? else { return Ok(None) };
    if !Cipher::is_encrypted(stored) {
        return Ok(Some(stored.to_owned()));
    }
    let cipher = cipher.ok_or_else(|| typed(Error::Encryption(EncryptionError::KeyRequired)))?;
    cipher.decrypt(&context(column, id), stored).map(Some).map_err(typed)
}

/// Decodes a contact row; encrypted columns are decrypted with `cipher`.
pub(crate) fn contact_from_row(row: &Row<'_>, cipher: Option<&Cipher>) -> rusqlite::Result<Contact> {
    let id: ContactId = get(row, 0)?;
    let key = id.to_string();
    let phones = sensitive_text(row, 4, "phones", &key, cipher)?.unwrap_or_default();
    let id_number = sensitive_text(row, 16, "id_number", &key, cipher)?;
    Ok(Contact {
        id,
        customer_id: get(row, 1)?,
        name: row.get(2)?,
        title: row.get(3)?,
        phones: serde_json::from_str(&phones).map_err(|e| corrupt(4, e))?,
        emails: get_json(row, 5)?,
        id_number: id_number.map(|s| guanxi_core::IdNumber::parse(&s)).transpose().map_err(|e| corrupt(16, e))?,
        role: name_opt(row, 6)?,
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

/// A contact's sensitive columns as stored: plain, or encrypted when a cipher is given.
pub(crate) struct SensitiveColumns {
    phones: String,
    id_number: Option<String>,
}

impl SensitiveColumns {
    pub(crate) fn phones(&self) -> &str {
        &self.phones
    }

    pub(crate) fn id_number(&self) -> Option<&str> {
        self.id_number.as_deref()
    }

    pub(crate) fn of(c: &Contact, cipher: Option<&Cipher>) -> guanxi_core::Result<SensitiveColumns> {
        let key = c.id.to_string();
        let seal = |column: &str, plain: String| match cipher {
            Some(cipher) => cipher.encrypt(&context(column, &key), &plain),
            None => Ok(plain),
        };
        Ok(SensitiveColumns {
            phones: seal("phones", json(&c.phones))?,
            id_number: c.id_number.as_ref().map(|n| seal("id_number", n.to_string())).transpose()?,
        })
    }
}

/// A domain error carried through rusqlite's row mapping (as a conversion failure); `sql_err`
/// unwraps it again.
pub(crate) fn typed(e: Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(4, Type::Text, Box::new(e))
}

/// Binds a contact's columns to parameters 1..=17 (in [`CONTACT_COLUMNS`] order), with its
/// sensitive columns as prepared by [`SensitiveColumns::of`].
pub(crate) fn bind_contact(stmt: &mut Statement<'_>, c: &Contact, sealed: &SensitiveColumns) -> rusqlite::Result<()> {
    stmt.raw_bind_parameter(1, c.id.to_string())?;
    stmt.raw_bind_parameter(2, c.customer_id.to_string())?;
    stmt.raw_bind_parameter(3, &c.name)?;
    stmt.raw_bind_parameter(4, c.title.as_deref())?;
    stmt.raw_bind_parameter(5, &sealed.phones)?;
    stmt.raw_bind_parameter(6, json(&c.emails))?;
    stmt.raw_bind_parameter(7, c.role.map(|r| r.as_str()))?;
    stmt.raw_bind_parameter(8, c.primary)?;
    stmt.raw_bind_parameter(9, c.do_not_contact)?;
    stmt.raw_bind_parameter(10, custom_json(&c.custom))?;
    stmt.raw_bind_parameter(11, c.created_by.as_str())?;
    stmt.raw_bind_parameter(12, ts(c.created_at))?;
    stmt.raw_bind_parameter(13, c.updated_by.as_str())?;
    stmt.raw_bind_parameter(14, ts(c.updated_at))?;
    stmt.raw_bind_parameter(15, c.version as i64)?;
    stmt.raw_bind_parameter(16, c.deleted_at.map(ts))?;
    stmt.raw_bind_parameter(17, sealed.id_number.as_deref())
}

pub(crate) const INTERACTION_COLUMNS: &str = "id, customer_id, contact_id, kind, at, author, content, next_step, \
    next_contact_on, feedback, attachments, created_by, created_at";

pub(crate) fn interaction_from_row(row: &Row<'_>) -> rusqlite::Result<Interaction> {
    let next: Option<String> = row.get(8)?;
    Ok(Interaction {
        id: get(row, 0)?,
        customer_id: get(row, 1)?,
        contact_id: get_opt(row, 2)?,
        kind: name(row, 3)?,
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

/// Binds an interaction's columns to parameters 1..=13 (in [`INTERACTION_COLUMNS`] order).
pub(crate) fn bind_interaction(stmt: &mut Statement<'_>, i: &Interaction) -> rusqlite::Result<()> {
    stmt.raw_bind_parameter(1, i.id.to_string())?;
    stmt.raw_bind_parameter(2, i.customer_id.to_string())?;
    stmt.raw_bind_parameter(3, i.contact_id.map(|c| c.to_string()))?;
    stmt.raw_bind_parameter(4, i.kind.as_str())?;
    stmt.raw_bind_parameter(5, ts(i.at))?;
    stmt.raw_bind_parameter(6, i.author.as_str())?;
    stmt.raw_bind_parameter(7, &i.content)?;
    stmt.raw_bind_parameter(8, i.next_step.as_deref())?;
    stmt.raw_bind_parameter(9, i.next_contact_on.map(|d| d.format("%Y-%m-%d").to_string()))?;
    stmt.raw_bind_parameter(10, i.feedback.as_deref())?;
    stmt.raw_bind_parameter(11, json(&i.attachments))?;
    stmt.raw_bind_parameter(12, i.created_by.as_str())?;
    stmt.raw_bind_parameter(13, ts(i.created_at))
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

pub(crate) const LOG_COLUMNS: &str = "seq, at, actor, entity, entity_id, customer_id, action, changes, prev_hash, hash";

pub(crate) fn log_from_row(row: &Row<'_>) -> rusqlite::Result<ChangeLogEntry> {
    let seq: i64 = row.get(0)?;
    Ok(ChangeLogEntry {
        seq: u64::try_from(seq).map_err(|e| corrupt(0, e))?,
        at: get_ts(row, 1)?,
        actor: get(row, 2)?,
        entity: get(row, 3)?,
        entity_id: row.get(4)?,
        customer_id: get_opt(row, 5)?,
        action: name(row, 6)?,
        changes: get_json(row, 7)?,
        prev_hash: row.get(8)?,
        hash: row.get(9)?,
    })
}

/// The columns of a stay in a saved segment, in [`membership_from_row`] order.
pub(crate) const MEMBERSHIP_COLUMNS: &str =
    "id, segment, customer_id, entered_at, entered_because, exited_at, exited_because";

/// A stay in a saved segment from its row (columns as [`MEMBERSHIP_COLUMNS`]).
pub(crate) fn membership_from_row(row: &Row<'_>) -> rusqlite::Result<guanxi_core::marketing::SegmentMembership> {
    Ok(guanxi_core::marketing::SegmentMembership {
        id: get(row, 0)?,
        segment: row.get(1)?,
        customer_id: get(row, 2)?,
        entered_at: get_ts(row, 3)?,
        entered_because: get(row, 4)?,
        exited_at: get_ts_opt(row, 5)?,
        exited_because: get_opt(row, 6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_timestamps_round_trip_through_the_fast_path() {
        for t in ["2024-05-01T08:00:00Z", "1999-12-31T23:59:59.999999999Z", "2026-02-28T00:00:00.000000001Z"] {
            let t: DateTime<Utc> = t.parse().unwrap();
            assert_eq!(parse_stored_ts(&ts(t)), Some(t));
            assert_eq!(parse_ts(0, &ts(t)).unwrap(), t);
        }
        // Other RFC 3339 forms still parse; invalid dates fall through to the general parser's error.
        assert_eq!(parse_ts(0, "2024-05-01T16:00:00+08:00").unwrap().to_rfc3339(), "2024-05-01T08:00:00+00:00");
        assert_eq!(parse_stored_ts("2024-02-30T00:00:00.000000000Z"), None);
        assert!(parse_ts(0, "2024-02-30T00:00:00.000000000Z").is_err());
    }
}
