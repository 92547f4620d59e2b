//! Survivorship: which value of each field the merged customer keeps.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::customer::Customer;
use crate::error::{Error, Result, StorageError, ValidationErrors, ValidationReason};
use crate::ids::CustomerId;

/// The customer fields a merge chooses a value for (custom fields are chosen key by key, as
/// `custom.<key>`). Id, code, tags, identifiers and bookkeeping stay the survivor's; tags and
/// identifiers are united.
///
/// ```
/// assert!(guanxi_core::dedup::MERGED_FIELDS.contains(&"address"));
/// ```
pub const MERGED_FIELDS: &[&str] =
    &["name", "kind", "industry", "size", "source", "status", "level", "region", "address", "owner", "department"];

/// How a merge picks each field's value among the records that have one.
///
/// ```
/// use guanxi_core::dedup::Survivorship;
/// assert_eq!(Survivorship::default(), Survivorship::MostRecent);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Survivorship {
    /// The value of the most recently updated record that has one.
    #[default]
    MostRecent,
    /// The value of the record with the most fields filled in that has one.
    MostComplete,
}

/// What to merge: the survivor, the records merged into it, the policy, and explicit choices
/// (`field → record`) that override the policy for single fields.
///
/// ```
/// use guanxi_core::dedup::{MergeRequest, Survivorship};
/// use guanxi_core::CustomerId;
/// let (a, b) = (CustomerId(uuid::Uuid::from_u128(1)), CustomerId(uuid::Uuid::from_u128(2)));
/// let r = MergeRequest::new(a, [b]).policy(Survivorship::MostComplete).choose("name", b);
/// assert_eq!(r.choices["name"], b);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRequest {
    /// The record that remains.
    pub survivor: CustomerId,
    /// The records merged into it (they become tombstones).
    pub merged: Vec<CustomerId>,
    /// The default way of choosing values.
    pub policy: Survivorship,
    /// Field (a [`MERGED_FIELDS`] name or `custom.<key>`) → the record whose value it takes.
    pub choices: BTreeMap<String, CustomerId>,
}

impl MergeRequest {
    /// Merges `merged` into `survivor`, most recent value first.
    pub fn new(survivor: CustomerId, merged: impl IntoIterator<Item = CustomerId>) -> MergeRequest {
        MergeRequest {
            survivor,
            merged: merged.into_iter().collect(),
            policy: Survivorship::default(),
            choices: BTreeMap::new(),
        }
    }

    /// Sets the policy.
    pub fn policy(mut self, policy: Survivorship) -> Self {
        self.policy = policy;
        self
    }

    /// Takes `field` from `record`, whatever the policy says.
    pub fn choose(mut self, field: impl Into<String>, record: CustomerId) -> Self {
        self.choices.insert(field.into(), record);
        self
    }

    /// Checks the request's shape: at least one merged record, none twice, not the survivor.
    pub fn check(&self) -> Result<()> {
        let mut errs = ValidationErrors::default();
        if self.merged.is_empty() {
            errs.push("merged", ValidationReason::Required);
        }
        let mut seen = BTreeSet::new();
        for (i, id) in self.merged.iter().enumerate() {
            if *id == self.survivor {
                errs.push(format!("merged[{i}]"), ValidationReason::Invalid { detail: "is the survivor".into() });
            } else if !seen.insert(*id) {
                errs.push(format!("merged[{i}]"), ValidationReason::Invalid { detail: "is listed twice".into() });
            }
        }
        for (field, id) in &self.choices {
            if *id != self.survivor && !self.merged.contains(id) {
                errs.push(
                    format!("choices.{field}"),
                    ValidationReason::Invalid { detail: "names a record outside the merge".into() },
                );
            }
        }
        errs.into_result(())
    }
}

/// A field whose records disagreed, and the value the merge keeps.
///
/// ```
/// use guanxi_core::dedup::{survive, MergeRequest};
/// use guanxi_core::testing::conformance::sample_customer;
/// let (a, mut b) = (sample_customer(1), sample_customer(2));
/// b.name = "另一个名字".into();
/// let (_, choices) = survive(&a, &[b.clone()], &MergeRequest::new(a.id, [b.id]).choose("name", b.id)).unwrap();
/// let name = choices.iter().find(|c| c.field == "name").unwrap();
/// assert_eq!((name.from, name.value.as_str()), (b.id, Some("另一个名字")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChoice {
    /// The field (`name`, `custom.budget`, …).
    pub field: String,
    /// The record the value comes from.
    pub from: CustomerId,
    /// The value kept (JSON, as the record serializes; null for none).
    pub value: Value,
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Field name → value, for the merged fields and each custom key.
fn fields_of(c: &Customer) -> Result<BTreeMap<String, Value>> {
    let json = serde_json::to_value(c).map_err(|e| StorageError::with_source("customer does not encode", e))?;
    let mut out = BTreeMap::new();
    for f in MERGED_FIELDS {
        out.insert((*f).to_owned(), json.get(*f).cloned().unwrap_or(Value::Null));
    }
    if let Some(Value::Object(custom)) = json.get("custom") {
        for (k, v) in custom {
            out.insert(format!("custom.{k}"), v.clone());
        }
    }
    Ok(out)
}

/// The survivor as the merge leaves it, and the fields whose records disagreed with the value
/// each keeps. Records are `survivor` then `merged` in order; ties go to the earlier record.
/// Tags are united. An explicit choice of a field no record has is a validation error.
///
/// ```
/// use guanxi_core::dedup::{survive, MergeRequest, Survivorship};
/// use guanxi_core::testing::conformance::sample_customer;
/// let mut a = sample_customer(1);
/// let mut b = sample_customer(2);
/// a.address = None;
/// b.updated_at = a.updated_at + chrono::Duration::days(1);
/// b.address = Some("南山区科技园".into());
/// let (kept, choices) = survive(&a, &[b.clone()], &MergeRequest::new(a.id, [b.id])).unwrap();
/// assert_eq!((kept.id, kept.address.as_deref()), (a.id, Some("南山区科技园")));
/// assert!(choices.iter().any(|c| c.field == "address" && c.from == b.id));
/// ```
pub fn survive(
    survivor: &Customer,
    merged: &[Customer],
    request: &MergeRequest,
) -> Result<(Customer, Vec<FieldChoice>)> {
    request.check()?;
    let records: Vec<&Customer> = std::iter::once(survivor).chain(merged).collect();
    let fields: Vec<BTreeMap<String, Value>> = records.iter().map(|c| fields_of(c)).collect::<Result<_>>()?;
    let filled: Vec<usize> = fields.iter().map(|f| f.values().filter(|v| !is_empty(v)).count()).collect();
    let mut names: BTreeSet<&String> = fields.iter().flat_map(|f| f.keys()).collect();
    let mut errs = ValidationErrors::default();
    for field in request.choices.keys() {
        if !names.contains(field) {
            let known = MERGED_FIELDS.contains(&field.as_str()) || field.starts_with("custom.");
            if !known {
                errs.push(format!("choices.{field}"), ValidationReason::UnknownField);
            }
        }
    }
    errs.into_result(())?;
    let mut json =
        serde_json::to_value(survivor).map_err(|e| StorageError::with_source("customer does not encode", e))?;
    let mut choices = Vec::new();
    names.extend(request.choices.keys());
    for field in names {
        let value_of = |i: usize| fields[i].get(field).cloned().unwrap_or(Value::Null);
        let chosen = match request.choices.get(field) {
            Some(id) => records.iter().position(|c| c.id == *id).unwrap_or(0),
            None => {
                let having = (0..records.len()).filter(|i| !is_empty(&value_of(*i)));
                let best = match request.policy {
                    // max_by_key keeps the last maximum: reverse so ties go to the earlier record.
                    Survivorship::MostRecent => having.rev().max_by_key(|i| records[*i].updated_at),
                    Survivorship::MostComplete => having.rev().max_by_key(|i| filled[*i]),
                };
                best.unwrap_or(0)
            }
        };
        let value = value_of(chosen);
        let disagree = (0..records.len()).any(|i| value_of(i) != value);
        if disagree {
            choices.push(FieldChoice { field: field.clone(), from: records[chosen].id, value: value.clone() });
        }
        set_field(&mut json, field, value);
    }
    let mut kept: Customer = serde_json::from_value(json)
        .map_err(|e| Error::InvalidState(format!("the merged values do not form a customer: {e}")))?;
    // Tags and identifiers are united: a merge loses neither a label nor a registration code.
    for m in merged {
        kept.tags.extend(m.tags.iter().cloned());
        kept.add_identifiers(m.identifiers.iter().cloned());
    }
    Ok((kept, choices))
}

fn set_field(json: &mut Value, field: &str, value: Value) {
    let Value::Object(obj) = json else { return };
    match field.strip_prefix("custom.") {
        Some(key) => {
            if let Value::Object(custom) = obj.entry("custom").or_insert_with(|| Value::Object(Default::default())) {
                if value.is_null() {
                    custom.remove(key);
                } else {
                    custom.insert(key.to_owned(), value);
                }
            }
        }
        None => {
            obj.insert(field.to_owned(), value);
        }
    }
}
