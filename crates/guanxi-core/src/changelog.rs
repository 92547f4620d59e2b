//! The append-only change log: one entry per mutation, written in the same transaction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EntityKind;
use crate::ids::{CustomerId, UserId};
use crate::macros::vocabulary;

vocabulary! {
    /// What a mutation did.
    ///
    /// ```
    /// use guanxi_core::ChangeAction;
    /// assert_eq!(ChangeAction::Update.as_str(), "update");
    /// ```
    pub enum ChangeAction {
        /// Record created.
        Create = "create" / "新建",
        /// Fields changed.
        Update = "update" / "修改",
        /// Soft-deleted.
        Delete = "delete" / "删除",
        /// Undeleted.
        Restore = "restore" / "恢复",
        /// Tag added to a customer.
        Tag = "tag" / "添加标签",
        /// Tag removed from a customer.
        Untag = "untag" / "移除标签",
    }
}

/// One changed field: its path and the old and new values as JSON (absent = no value).
///
/// ```
/// use guanxi_core::FieldChange;
/// let c = FieldChange::new("name", Some("甲".into()), Some("乙".into()));
/// assert_eq!(c.to_string(), r#"name: "甲" → "乙""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Field path, e.g. `name`, `region`, `custom.budget`.
    pub field: String,
    /// Value before (None: had none). Left out of the stored JSON when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// Value after (None: has none). Left out of the stored JSON when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

impl FieldChange {
    /// A change of `field`.
    pub fn new(field: impl Into<String>, old: Option<Value>, new: Option<Value>) -> Self {
        FieldChange { field: field.into(), old, new }
    }
}

impl std::fmt::Display for FieldChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "∅".to_owned(), Value::to_string);
        write!(f, "{}: {} → {}", self.field, show(&self.old), show(&self.new))
    }
}

/// A change-log entry. `seq` is assigned by the store when the batch commits (the value
/// carried in a batch is ignored); it is strictly increasing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeLogEntry {
    /// Position in the log, assigned on commit.
    pub seq: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: UserId,
    /// Kind of record changed.
    pub entity: EntityKind,
    /// Id (or key) of the record changed.
    pub entity_id: String,
    /// The customer the record belongs to, for the customer's timeline.
    pub customer_id: Option<CustomerId>,
    /// What happened.
    pub action: ChangeAction,
    /// Field changes (old → new).
    pub changes: Vec<FieldChange>,
}

/// Field-level differences between two serialized records: every top-level key whose value
/// differs, except the ones in `skip`; object-valued keys listed in `nested` (such as
/// `custom`) are compared key by key as `custom.<key>`.
///
/// ```
/// use guanxi_core::changelog::diff_json;
/// use serde_json::json;
/// let old = json!({"name": "甲", "version": 1, "custom": {"a": 1, "b": 2}});
/// let new = json!({"name": "乙", "version": 2, "custom": {"a": 1, "c": 3}});
/// let d = diff_json(&old, &new, &["version"], &["custom"]);
/// let fields: Vec<_> = d.iter().map(|c| c.field.as_str()).collect();
/// assert_eq!(fields, ["custom.b", "custom.c", "name"]);
/// ```
pub fn diff_json(old: &Value, new: &Value, skip: &[&str], nested: &[&str]) -> Vec<FieldChange> {
    let empty = serde_json::Map::new();
    let (o, n) = (old.as_object().unwrap_or(&empty), new.as_object().unwrap_or(&empty));
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        if skip.contains(&key.as_str()) {
            continue;
        }
        let (ov, nv) = (present(o.get(key)), present(n.get(key)));
        if ov == nv {
            continue;
        }
        if nested.contains(&key.as_str()) {
            let prefixed = diff_json(ov.unwrap_or(&Value::Null), nv.unwrap_or(&Value::Null), &[], &[]);
            out.extend(prefixed.into_iter().map(|c| FieldChange { field: format!("{key}.{}", c.field), ..c }));
        } else {
            out.push(FieldChange::new(key.clone(), ov.cloned(), nv.cloned()));
        }
    }
    out
}

/// The fields of a new record worth logging: every non-empty value except `skip`, with the
/// keys listed in `nested` logged key by key. Consumes the serialized record, so no value is
/// copied (creates are the hot path of bulk loads).
///
/// ```
/// use guanxi_core::changelog::created_fields;
/// use serde_json::json;
/// let fields = created_fields(json!({"id": 1, "name": "甲", "address": null, "custom": {"a": 1}}), &["id"], &["custom"]);
/// let shown: Vec<String> = fields.iter().map(|c| c.to_string()).collect();
/// assert_eq!(shown, [r#"custom.a: ∅ → 1"#, r#"name: ∅ → "甲""#]);
/// ```
pub fn created_fields(new: Value, skip: &[&str], nested: &[&str]) -> Vec<FieldChange> {
    let Value::Object(map) = new else { return Vec::new() };
    let mut out = Vec::with_capacity(map.len());
    // serde_json's map is ordered by key, so the output is sorted like `diff_json`'s.
    for (key, value) in map {
        if skip.contains(&key.as_str()) || present(Some(&value)).is_none() {
            continue;
        }
        match value {
            Value::Object(inner) if nested.contains(&key.as_str()) => {
                for (k, v) in inner {
                    if present(Some(&v)).is_some() {
                        out.push(FieldChange::new(format!("{key}.{k}"), None, Some(v)));
                    }
                }
            }
            value => out.push(FieldChange::new(key, None, Some(value))),
        }
    }
    out
}

// Null, empty strings, arrays and objects all mean "no value" in the log.
fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| match v {
        Value::Null => false,
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    })
}

/// A query over the change log. All conditions combine with AND; entries come in `seq` order.
///
/// ```
/// use guanxi_core::ChangeLogQuery;
/// let q = ChangeLogQuery { limit: Some(10), ..Default::default() };
/// assert!(q.entity_id.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeLogQuery {
    /// Only entries about this record.
    pub entity_id: Option<String>,
    /// Only entries belonging to this customer (its own and its contacts', interactions', …).
    pub customer_id: Option<CustomerId>,
    /// Only entries by this user.
    pub actor: Option<UserId>,
    /// Only entries at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Only entries before this instant.
    pub to: Option<DateTime<Utc>>,
    /// Only entries with a larger `seq` (a cursor for sync).
    pub after_seq: Option<u64>,
    /// At most this many entries.
    pub limit: Option<usize>,
}

impl ChangeLogQuery {
    /// Whether an entry satisfies the query's conditions (ignoring `limit`).
    pub fn matches(&self, e: &ChangeLogEntry) -> bool {
        self.entity_id.as_ref().is_none_or(|id| *id == e.entity_id)
            && self.customer_id.is_none_or(|c| e.customer_id == Some(c))
            && self.actor.as_ref().is_none_or(|a| *a == e.actor)
            && self.from.is_none_or(|f| e.at >= f)
            && self.to.is_none_or(|t| e.at < t)
            && self.after_seq.is_none_or(|s| e.seq > s)
    }
}
