//! The uniffi side of the domain types (feature `uniffi`): the foreign types the records use,
//! declared once here so the Kotlin and Swift bindings export the domain's own records and
//! enums instead of mirroring them. `bindings/uniffi` re-uses these with
//! `uniffi::use_remote_type!`; `uniffi.toml` beside this crate's manifest maps them to
//! `java.util.UUID`, `BigDecimal`, `LocalDate` and their Swift counterparts.
#![allow(missing_docs, unreachable_pub)] // aliases that only name foreign types for uniffi

/// A UUID (ids, as text on the wire).
pub type Uuid = uuid::Uuid;
/// An exact decimal (money, probabilities), as its text on the wire so no digit is lost.
pub type Decimal = rust_decimal::Decimal;
/// An instant in UTC (Kotlin `java.time.Instant`, Swift `Date`).
pub type DateTime = chrono::DateTime<chrono::Utc>;
/// A calendar day (Kotlin `java.time.LocalDate`, Swift `DateComponents`).
pub type Day = chrono::NaiveDate;
/// A set of texts (tags, flags, skills), a sorted list on the wire.
pub type TextSet = std::collections::BTreeSet<String>;
/// Custom field values by key, a map on the wire.
pub type CustomValues = std::collections::BTreeMap<String, crate::CustomValue>;

uniffi::custom_type!(Uuid, String, {
    remote,
    try_lift: |s| Ok(uuid::Uuid::parse_str(&s)?),
    lower: |u| u.to_string(),
});
uniffi::custom_type!(Decimal, String, {
    remote,
    try_lift: |s| Ok(rust_decimal::Decimal::from_str_exact(&s)?),
    lower: |d| d.to_string(),
});
uniffi::custom_type!(DateTime, std::time::SystemTime, { remote });
uniffi::custom_type!(Day, String, {
    remote,
    try_lift: |s| Ok(chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")?),
    lower: |d| d.format("%Y-%m-%d").to_string(),
});
uniffi::custom_type!(TextSet, Vec<String>, {
    remote,
    try_lift: |v| Ok(v.into_iter().collect()),
    lower: |s| s.into_iter().collect(),
});
uniffi::custom_type!(CustomValues, std::collections::HashMap<String, crate::CustomValue>, {
    remote,
    try_lift: |m| Ok(m.into_iter().collect()),
    lower: |m| m.into_iter().collect(),
});
