//! The append-only change log: one entry per mutation, written in the same transaction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EntityKind;
use crate::ids::{CustomerId, UserId};
use crate::macros::vocabulary;

/// Who writes a record and when: the stamp a new record's `created_*` and `updated_*`
/// fields, and an update's `updated_*` fields, are set from.
///
/// ```
/// use guanxi_core::changelog::Stamp;
/// let s = Stamp::new(guanxi_core::UserId::new("alice")?, chrono::Utc::now());
/// assert_eq!(s.by.as_str(), "alice");
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// The writer.
    pub by: UserId,
    /// The instant of the write.
    pub at: DateTime<Utc>,
}

impl Stamp {
    /// A stamp for `by` at `at`.
    pub fn new(by: UserId, at: DateTime<Utc>) -> Stamp {
        Stamp { by, at }
    }
}

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
        /// Data exported or backed up.
        Export = "export" / "导出",
        /// Sensitive fields read in clear.
        Read = "read" / "查看",
        /// Duplicates merged into a survivor.
        Merge = "merge" / "合并",
        /// A merge undone.
        Unmerge = "unmerge" / "撤销合并",
        /// An elevation granted or refused, or a credential set (never the secret itself).
        Elevate = "elevate" / "提权验证",
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

/// A change-log entry. `seq`, `prev_hash` and `hash` are assigned by the store when the batch
/// commits (the values carried in a batch are ignored): `seq` counts 1, 2, 3, … and `hash` is
/// the SHA-256 of `prev_hash` and the entry (see [`entry_hash`]), chaining every entry to the one
/// before it so that [`verify_chain`] detects any edit, removal, insertion or reordering.
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
    /// Hash of the previous entry ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) of `prev_hash` and this entry.
    pub hash: String,
}

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chained hash of an entry: SHA-256 over `prev_hash`, a newline and a canonical JSON of
/// every field but the hashes (instants at nanosecond precision, UTC).
///
/// ```
/// use guanxi_core::changelog::{GENESIS_HASH, entry_hash};
/// # use guanxi_core::*;
/// let e = ChangeLogEntry { seq: 1, at: "2024-05-01T00:00:00Z".parse().unwrap(), actor: UserId::new("alice").unwrap(),
///     entity: EntityKind::Tag, entity_id: "VIP".into(), customer_id: None, action: ChangeAction::Create,
///     changes: vec![], prev_hash: String::new(), hash: String::new() };
/// let h = entry_hash(GENESIS_HASH, &e)?;
/// assert_eq!(h.len(), 64);
/// assert_ne!(h, entry_hash(&h, &e)?); // a different predecessor, a different hash
/// # Ok::<(), guanxi_core::Error>(())
/// ```
pub fn entry_hash(prev_hash: &str, e: &ChangeLogEntry) -> crate::Result<String> {
    let text = EntryText::of(e)?;
    Ok(stored_entry_hash(prev_hash, &text.stored(e, e.seq, prev_hash)))
}

/// The texts an entry is stored and hashed as, beside the fields it lends as they are.
///
/// ```
/// use guanxi_core::changelog::{EntryText, GENESIS_HASH, entry_hash, stored_entry_hash};
/// # use guanxi_core::*;
/// let e = ChangeLogEntry { seq: 1, at: "2024-05-01T00:00:00Z".parse().unwrap(), actor: UserId::new("alice").unwrap(),
///     entity: EntityKind::Tag, entity_id: "VIP".into(), customer_id: None, action: ChangeAction::Create,
///     changes: vec![], prev_hash: String::new(), hash: String::new() };
/// let text = EntryText::of(&e)?;
/// assert_eq!(text.at, "2024-05-01T00:00:00.000000000Z");
/// assert_eq!(stored_entry_hash(GENESIS_HASH, &text.stored(&e, 1, GENESIS_HASH)), entry_hash(GENESIS_HASH, &e)?);
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct EntryText {
    /// `at` in RFC 3339 at nanosecond precision, UTC.
    pub at: String,
    /// The customer id, hyphenated.
    pub customer_id: Option<String>,
    /// [`canonical_changes`] of the changes.
    pub changes: String,
}

impl EntryText {
    /// The texts of `e`.
    pub fn of(e: &ChangeLogEntry) -> crate::Result<Self> {
        let changes = canonical_changes(&e.changes).map_err(|err| {
            crate::StorageError::with_source(format!("change-log entry {} cannot be encoded", e.seq), err)
        })?;
        Ok(EntryText {
            at: e.at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            customer_id: e.customer_id.map(|c| c.to_string()),
            changes,
        })
    }

    /// The stored form of `e` at position `seq` after `prev_hash` (its own hash left empty).
    pub fn stored<'a>(&'a self, e: &'a ChangeLogEntry, seq: u64, prev_hash: &'a str) -> StoredEntry<'a> {
        StoredEntry {
            seq,
            at: &self.at,
            actor: e.actor.as_str(),
            entity: e.entity.as_str(),
            entity_id: &e.entity_id,
            customer_id: self.customer_id.as_deref(),
            action: e.action.as_str(),
            changes: &self.changes,
            prev_hash,
            hash: "",
        }
    }
}

/// An entry's field changes in the canonical JSON the hash covers: an array of
/// `{"field", "new", "old"}` objects (absent values left out) with the keys of every object, at
/// every depth, in sorted order. Stores that keep this text as the entry's changes can verify
/// the chain without decoding it ([`stored_entry_hash`]).
///
/// ```
/// use guanxi_core::changelog::{FieldChange, canonical_changes};
/// let c = vec![FieldChange::new("custom", None, Some(serde_json::json!({"b": 1, "a": 2})))];
/// assert_eq!(canonical_changes(&c)?, r#"[{"field":"custom","new":{"a":2,"b":1}}]"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn canonical_changes(changes: &[FieldChange]) -> serde_json::Result<String> {
    // Serialized straight from borrowed fields, keys in sorted order at every depth (`Sorted`
    // sorts JSON objects itself, so the bytes do not depend on whether serde_json's
    // `preserve_order` feature is on somewhere in the build).
    #[derive(Serialize)]
    struct CanonicalChange<'a> {
        field: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        new: Option<Sorted<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        old: Option<Sorted<'a>>,
    }
    let canonical: Vec<CanonicalChange<'_>> = changes
        .iter()
        .map(|c| CanonicalChange { field: &c.field, new: c.new.as_ref().map(Sorted), old: c.old.as_ref().map(Sorted) })
        .collect();
    serde_json::to_string(&canonical)
}

/// A change-log entry as a store keeps it: text columns, `at` in RFC 3339 at nanosecond
/// precision (UTC), `changes` as [`canonical_changes`] wrote it.
///
/// ```
/// use guanxi_core::changelog::{GENESIS_HASH, StoredEntry, stored_entry_hash};
/// let s = StoredEntry { seq: 1, at: "2024-05-01T00:00:00.000000000Z", actor: "alice", entity: "tag",
///     entity_id: "VIP", customer_id: None, action: "create", changes: "[]", prev_hash: GENESIS_HASH, hash: "" };
/// assert_eq!(stored_entry_hash(GENESIS_HASH, &s).len(), 64);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StoredEntry<'a> {
    /// Position in the log.
    pub seq: u64,
    /// When, as stored.
    pub at: &'a str,
    /// Who.
    pub actor: &'a str,
    /// Kind of record changed ([`EntityKind::as_str`](crate::EntityKind::as_str)).
    pub entity: &'a str,
    /// Id (or key) of the record changed.
    pub entity_id: &'a str,
    /// The customer the record belongs to.
    pub customer_id: Option<&'a str>,
    /// What happened ([`ChangeAction::as_str`]).
    pub action: &'a str,
    /// The field changes, as stored.
    pub changes: &'a str,
    /// Hash of the previous entry, as stored.
    pub prev_hash: &'a str,
    /// This entry's hash, as stored.
    pub hash: &'a str,
}

/// The chained hash of a stored entry: the same bytes [`entry_hash`] hashes when the stored
/// text is the entry's own canonical form (SHA-256 over `prev_hash`, a newline and the canonical
/// JSON object of the fields, keys sorted). Each text is JSON-quoted here and `changes` must be
/// one JSON value, so no two different entries share the hashed bytes.
///
/// ```
/// use guanxi_core::changelog::{GENESIS_HASH, StoredEntry, stored_entry_hash};
/// let s = StoredEntry { seq: 1, at: "2024-05-01T00:00:00.000000000Z", actor: "alice", entity: "tag",
///     entity_id: "VIP", customer_id: None, action: "create", changes: "[]", prev_hash: GENESIS_HASH, hash: "" };
/// let h = stored_entry_hash(GENESIS_HASH, &s);
/// assert_ne!(h, stored_entry_hash(&h, &s)); // a different predecessor, a different hash
/// ```
pub fn stored_entry_hash(prev_hash: &str, s: &StoredEntry<'_>) -> String {
    use sha2::{Digest, Sha256};
    struct Hashing<'a>(&'a mut Sha256);
    impl std::io::Write for Hashing<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    // Writing a `&str` as JSON into a hasher cannot fail.
    let quoted = |h: &mut Sha256, text: &str| {
        let _ = serde_json::to_writer(Hashing(h), text);
    };
    h.update(br#"{"action":"#);
    quoted(&mut h, s.action);
    h.update(br#","actor":"#);
    quoted(&mut h, s.actor);
    h.update(br#","at":"#);
    quoted(&mut h, s.at);
    h.update(br#","changes":"#);
    h.update(s.changes.as_bytes());
    h.update(br#","customer_id":"#);
    match s.customer_id {
        Some(c) => quoted(&mut h, c),
        None => h.update(b"null"),
    }
    h.update(br#","entity":"#);
    quoted(&mut h, s.entity);
    h.update(br#","entity_id":"#);
    quoted(&mut h, s.entity_id);
    h.update(br#","seq":"#);
    h.update(s.seq.to_string().as_bytes());
    h.update(b"}");
    hex(&h.finalize())
}

/// Lower-case hex of a digest.
fn hex(digest: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(digest.len() * 2);
    for b in digest {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A JSON value serialized with the keys of every object in sorted order.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                let mut m = ser.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    m.serialize_entry(k, &Sorted(v))?;
                }
                m.end()
            }
            Value::Array(items) => {
                let mut s = ser.serialize_seq(Some(items.len()))?;
                for v in items {
                    s.serialize_element(&Sorted(v))?;
                }
                s.end()
            }
            other => other.serialize(ser),
        }
    }
}

/// Assigns `seq`, `prev_hash` and `hash` to entries appended after `last` (the log's current
/// last entry: its seq and hash), as a store does on commit.
pub fn chain_entries<'a>(
    last: Option<(u64, &str)>,
    entries: impl IntoIterator<Item = &'a mut ChangeLogEntry>,
) -> crate::Result<()> {
    let (mut seq, mut prev) = last.map_or((0, GENESIS_HASH.to_owned()), |(s, h)| (s, h.to_owned()));
    for e in entries {
        seq += 1;
        e.seq = seq;
        e.prev_hash = prev;
        e.hash = entry_hash(&e.prev_hash, e)?;
        prev = e.hash.clone();
    }
    Ok(())
}

/// The result of checking the change log's hash chain.
///
/// ```
/// use guanxi_core::changelog::verify_chain;
/// let check = verify_chain(&[]);
/// assert!(check.is_intact());
/// assert_eq!(check.entries, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheck {
    /// Entries checked.
    pub entries: u64,
    /// Hash of the last entry: keep it outside the database to detect a truncated log later.
    pub head: Option<String>,
    /// The first entry that breaks the chain, if any.
    pub broken_at: Option<u64>,
    /// Why it breaks the chain.
    pub reason: Option<String>,
}

impl AuditCheck {
    /// True when every entry links to its predecessor and hashes to its stored hash.
    pub fn is_intact(&self) -> bool {
        self.broken_at.is_none()
    }
}

/// Checks a whole log, in stored order: consecutive `seq` from 1, each `prev_hash` equal to the
/// previous `hash`, each `hash` equal to the recomputed one. Reports the first break.
pub fn verify_chain<'a>(entries: impl IntoIterator<Item = &'a ChangeLogEntry>) -> AuditCheck {
    let mut v = ChainVerifier::default();
    for e in entries {
        v.feed(e);
    }
    v.finish()
}

/// Verifies a log fed in order, a page at a time, so a log of millions of entries never has
/// to be in memory at once.
///
/// ```
/// use guanxi_core::changelog::ChainVerifier;
/// let v = ChainVerifier::default();
/// assert!(v.finish().is_intact());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ChainVerifier {
    entries: u64,
    prev: Option<String>,
    broken: Option<(u64, String)>,
}

impl ChainVerifier {
    /// Checks the next entry against the one before it.
    pub fn feed(&mut self, e: &ChangeLogEntry) {
        self.check(e.seq, &e.prev_hash, &e.hash, |prev| entry_hash(prev, e).ok().as_deref() == Some(e.hash.as_str()));
    }

    /// Checks the next entry from its stored text, without decoding it when the text is the
    /// canonical form it was hashed in (what a store writes: one JSON parse-free hash per row).
    /// `decode` is called only when that hash differs — text written in another form, such as an
    /// older store's — and the decoded entry is then hashed the usual way.
    ///
    /// ```
    /// use guanxi_core::changelog::{ChainVerifier, GENESIS_HASH, StoredEntry, stored_entry_hash};
    /// let mut s = StoredEntry { seq: 1, at: "2024-05-01T00:00:00.000000000Z", actor: "alice", entity: "tag",
    ///     entity_id: "VIP", customer_id: None, action: "create", changes: "[]", prev_hash: GENESIS_HASH, hash: "" };
    /// let hash = stored_entry_hash(GENESIS_HASH, &s);
    /// s.hash = &hash;
    /// let mut v = ChainVerifier::default();
    /// v.feed_stored(&s, || unreachable!());
    /// assert!(v.finish().is_intact());
    /// ```
    pub fn feed_stored(&mut self, s: &StoredEntry<'_>, decode: impl FnOnce() -> crate::Result<ChangeLogEntry>) {
        self.check(s.seq, s.prev_hash, s.hash, |prev| {
            // The changes text goes into the hashed bytes as it is: it must be one JSON value, or
            // bytes could be moved between it and the fields after it.
            let one_value = serde_json::from_str::<serde::de::IgnoredAny>(s.changes).is_ok();
            (one_value && stored_entry_hash(prev, s) == s.hash)
                || decode().is_ok_and(|e| entry_hash(prev, &e).ok().as_deref() == Some(s.hash))
        });
    }

    fn check(&mut self, seq: u64, prev_hash: &str, hash: &str, content_matches: impl FnOnce(&str) -> bool) {
        self.entries += 1;
        if self.broken.is_none() {
            let prev = self.prev.as_deref().unwrap_or(GENESIS_HASH);
            let reason = if seq != self.entries {
                Some(format!(
                    "sequence {seq} where {} was expected (an entry was removed, inserted or moved)",
                    self.entries
                ))
            } else if prev_hash != prev {
                Some("does not link to the entry before it".to_owned())
            } else if !content_matches(prev) {
                Some("its content does not match its hash (it was edited)".to_owned())
            } else {
                None
            };
            if let Some(r) = reason {
                self.broken = Some((seq, r));
            }
        }
        let head = self.prev.get_or_insert_with(String::new);
        head.clear();
        head.push_str(hash);
    }

    /// The result over everything fed.
    pub fn finish(self) -> AuditCheck {
        let (broken_at, reason) = self.broken.map_or((None, None), |(s, r)| (Some(s), Some(r)));
        AuditCheck { entries: self.entries, head: self.prev, broken_at, reason }
    }
}

/// Verifies a log read a page at a time through `page(after_seq, limit)` (entries in `seq`
/// order after the given one): what a store without a faster way implements
/// [`AuditStore::verify_change_log`](crate::store::AuditStore::verify_change_log) with.
///
/// ```
/// use guanxi_core::changelog::verify_pages;
/// let check = verify_pages(|_after, _limit| Ok(vec![]))?;
/// assert_eq!(check.entries, 0);
/// # Ok::<(), guanxi_core::Error>(())
/// ```
pub fn verify_pages(
    mut page: impl FnMut(Option<u64>, usize) -> crate::Result<Vec<ChangeLogEntry>>,
) -> crate::Result<AuditCheck> {
    const PAGE: usize = 10_000;
    let mut v = ChainVerifier::default();
    let mut after = None;
    loop {
        let entries = page(after, PAGE)?;
        for e in &entries {
            v.feed(e);
        }
        match entries.last() {
            Some(last) if entries.len() == PAGE => after = Some(last.seq),
            _ => return Ok(v.finish()),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EntityKind, UserId};
    use proptest::prelude::*;

    fn chain(n: usize) -> Vec<ChangeLogEntry> {
        let mut entries: Vec<ChangeLogEntry> = (0..n)
            .map(|i| ChangeLogEntry {
                seq: 0,
                at: chrono::DateTime::from_timestamp(1_714_521_600 + i as i64, 7).unwrap_or_default(),
                actor: UserId::new(["alice", "bob"][i % 2]).unwrap(),
                entity: EntityKind::Customer,
                entity_id: format!("c{}", i % 3),
                customer_id: None,
                action: ChangeAction::Update,
                changes: vec![FieldChange::new("name", Some(format!("old{i}").into()), Some(format!("new{i}").into()))],
                prev_hash: String::new(),
                hash: String::new(),
            })
            .collect();
        chain_entries(None, entries.iter_mut()).unwrap();
        entries
    }

    #[derive(Debug, Clone)]
    enum Tamper {
        EditField(usize),
        EditActor(usize),
        EditTime(usize),
        Remove(usize),
        Insert(usize),
        Swap(usize),
        RehashEdited(usize),
    }

    fn tamper() -> impl Strategy<Value = Tamper> {
        prop_oneof![
            (0usize..100).prop_map(Tamper::EditField),
            (0usize..100).prop_map(Tamper::EditActor),
            (0usize..100).prop_map(Tamper::EditTime),
            (0usize..100).prop_map(Tamper::Remove),
            (0usize..100).prop_map(Tamper::Insert),
            (0usize..100).prop_map(Tamper::Swap),
            (0usize..100).prop_map(Tamper::RehashEdited),
        ]
    }

    /// The hash format of stored logs: SHA-256 over the predecessor, a newline, and the JSON of
    /// a `serde_json::Value` object of the entry. `entry_hash` must reproduce it byte for byte.
    fn reference_hash(prev_hash: &str, e: &ChangeLogEntry) -> String {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::json!({
            "seq": e.seq,
            "at": e.at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "actor": e.actor.as_str(),
            "entity": e.entity.as_str(),
            "entity_id": e.entity_id,
            "customer_id": e.customer_id.map(|c| c.to_string()),
            "action": e.action.as_str(),
            "changes": e.changes,
        });
        let mut hasher = Sha256::new();
        hasher.update(prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(canonical.to_string().as_bytes());
        format!("{:x}", hasher.finalize())
    }

    proptest! {
        #[test]
        fn entry_hash_matches_the_stored_format(
            seq in 1u64..u64::MAX,
            nanos in 0i64..4_000_000_000_000_000_000,
            text in "\\PC{0,12}",
            with_customer in any::<bool>(),
            n in 0usize..4,
        ) {
            let changes = (0..n)
                .map(|i| match i % 3 {
                    0 => FieldChange::new(format!("f{i}"), None, Some(serde_json::json!({"b": [1, text.clone()], "a": null}))),
                    1 => FieldChange::new(text.clone(), Some(serde_json::json!(1.5)), None),
                    _ => FieldChange::new("x", Some(serde_json::json!(text.clone())), Some(serde_json::json!(-3))),
                })
                .collect();
            let e = ChangeLogEntry {
                seq,
                at: DateTime::from_timestamp_nanos(nanos),
                actor: UserId::new("alice").unwrap(),
                entity: EntityKind::Contact,
                entity_id: format!("{text}\"\u{1}"),
                customer_id: with_customer.then(|| crate::CustomerId(uuid::Uuid::from_u128(u128::from(seq)))),
                action: ChangeAction::Update,
                changes,
                prev_hash: String::new(),
                hash: String::new(),
            };
            prop_assert_eq!(entry_hash(GENESIS_HASH, &e).unwrap(), reference_hash(GENESIS_HASH, &e));
        }
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let entries = chain(10);
        let check = verify_chain(&entries);
        assert!(check.is_intact(), "{check:?}");
        assert_eq!((check.entries, check.head.as_deref()), (10, Some(entries[9].hash.as_str())));
    }

    proptest! {
        /// Any single edit, removal, insertion or reordering of a stored entry is detected,
        /// even when the attacker recomputes the edited entry's own hash.
        #[test]
        fn any_single_tampering_is_detected(n in 2usize..12, how in tamper()) {
            let mut entries = chain(n);
            let at = |i: usize| i % n;
            match how {
                Tamper::EditField(i) => entries[at(i)].changes[0].new = Some("forged".into()),
                Tamper::EditActor(i) => entries[at(i)].actor = UserId::new("mallory").unwrap(),
                Tamper::EditTime(i) => entries[at(i)].at += chrono::Duration::nanoseconds(1),
                Tamper::Remove(i) => {
                    // Removing the very last entry is a truncation: see `AuditCheck::head`.
                    let i = at(i).min(n - 2);
                    entries.remove(i);
                }
                Tamper::Insert(i) => {
                    let mut forged = entries[at(i)].clone();
                    forged.entity_id = "forged".into();
                    entries.insert(at(i), forged);
                }
                Tamper::Swap(i) => {
                    let i = at(i).min(n - 2);
                    entries.swap(i, i + 1);
                }
                Tamper::RehashEdited(i) => {
                    let e = &mut entries[at(i)];
                    e.changes[0].old = None;
                    e.hash = entry_hash(&e.prev_hash, e).unwrap();
                    // ...and the next entry no longer links to it (unless it is the last: truncation-like).
                    if at(i) == n - 1 {
                        entries[0].entity_id = "forged".into();
                    }
                }
            }
            prop_assert!(!verify_chain(&entries).is_intact());
        }
    }

    /// Issue 15, item 12: the canonical form sorts object keys itself, so the hash does not
    /// depend on the insertion order of a JSON object (which serde_json keeps when its
    /// `preserve_order` feature is on anywhere in the build), and it is pinned by a vector.
    #[test]
    fn the_hash_does_not_depend_on_object_key_order() {
        let mut forward = serde_json::Map::new();
        let mut backward = serde_json::Map::new();
        for k in ["a", "b", "c", "d"] {
            forward.insert(k.to_owned(), Value::from(k));
        }
        for k in ["d", "c", "b", "a"] {
            backward.insert(k.to_owned(), Value::from(k));
        }
        let entry = |v: Value| ChangeLogEntry {
            seq: 1,
            at: "2024-05-01T00:00:00Z".parse().unwrap(),
            actor: crate::UserId::new("alice").unwrap(),
            entity: crate::EntityKind::Customer,
            entity_id: "x".into(),
            customer_id: None,
            action: crate::ChangeAction::Update,
            changes: vec![crate::FieldChange::new("custom", None, Some(Value::Array(vec![v])))],
            prev_hash: String::new(),
            hash: String::new(),
        };
        let a = entry_hash(GENESIS_HASH, &entry(Value::Object(forward))).unwrap();
        let b = entry_hash(GENESIS_HASH, &entry(Value::Object(backward))).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, GOLDEN, "the canonical form changed: old logs would no longer verify");
    }

    const GOLDEN: &str = "6bd6c92ea4ee6cc56c36808968a4815d4c6260ccd783d0a0ca69063962b4f83b";
}

#[cfg(test)]
mod pinned_hash {
    use super::*;
    use crate::{CustomerId, EntityKind, UserId};

    /// The chain's bytes are a stored format: a change to the canonical form would break every
    /// stored log. This hash was computed before `stored_entry_hash` took over.
    #[test]
    fn the_hash_of_an_entry_is_unchanged() {
        let e = ChangeLogEntry {
            seq: 42,
            at: "2024-05-01T08:00:00.123456789Z".parse().unwrap(),
            actor: UserId::new("alice").unwrap(),
            entity: EntityKind::Contact,
            entity_id: "id \"quoted\" 甲".into(),
            customer_id: Some(CustomerId::from(uuid::Uuid::from_u128(7))),
            action: ChangeAction::Update,
            changes: vec![
                FieldChange::new("name", Some("甲\n".into()), Some("乙".into())),
                FieldChange::new("custom", None, Some(serde_json::json!({"z": [1, {"b": 2, "a": null}], "a": 1.5}))),
                FieldChange::new("gone", Some(true.into()), None),
            ],
            prev_hash: String::new(),
            hash: String::new(),
        };
        let pinned = "a8b7bc15a9ab7007e65013ecd29ddb7ba3fc3048eafc2c772f324071a5243326";
        assert_eq!(entry_hash(GENESIS_HASH, &e).unwrap(), pinned);
        let (at, customer, changes) = (
            "2024-05-01T08:00:00.123456789Z",
            e.customer_id.map(|c| c.to_string()),
            canonical_changes(&e.changes).unwrap(),
        );
        let stored = StoredEntry {
            seq: 42,
            at,
            actor: "alice",
            entity: "contact",
            entity_id: &e.entity_id,
            customer_id: customer.as_deref(),
            action: "update",
            changes: &changes,
            prev_hash: GENESIS_HASH,
            hash: pinned,
        };
        assert_eq!(stored_entry_hash(GENESIS_HASH, &stored), pinned);
    }
}
