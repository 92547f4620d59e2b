//! Helpers every facade module shares: record JSON, version checks,
//! paging through a store list, and stored settings documents.

use serde_json::Value;

use guanxi_core::{EntityKind, Error, Page, PageRequest, Result, Setting, Write};

/// Bookkeeping fields left out of change-log diffs: they change on every write.
pub(crate) const UNLOGGED: &[&str] = &["id", "version", "created_at", "created_by", "updated_at", "updated_by"];

/// Object-valued fields logged key by key.
pub(crate) const NESTED: &[&str] = &["custom"];

/// A record as JSON, for change-log diffs and exports. Our records always serialize; should one
/// ever fail, the failure is logged (an error event) rather than passed off silently as `null`,
/// and the value stands as `null` so the write is not lost.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Value {
    match serde_json::to_value(v) {
        Ok(value) => value,
        Err(e) => {
            tracing::error!(error = %e, type_name = std::any::type_name::<T>(), "record does not serialize to JSON");
            Value::Null
        }
    }
}

/// Every record of a paged store list, a thousand at a time.
pub(crate) fn walk_pages<T>(mut fetch: impl FnMut(&PageRequest) -> Result<Page<T>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(1000);
    loop {
        let p = fetch(&page)?;
        out.extend(p.items);
        match p.next {
            Some(next) => page = PageRequest::after(next, 1000),
            None => return Ok(out),
        }
    }
}

pub(crate) fn check_version(entity: EntityKind, id: impl ToString, expected: u64, actual: u64) -> Result<()> {
    if expected == actual { Ok(()) } else { Err(Error::Conflict { entity, id: id.to_string(), expected, actual }) }
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(s: &Setting) -> Result<T> {
    serde_json::from_str(&s.value)
        .map_err(|e| guanxi_core::StorageError::with_source(format!("setting {} does not decode", s.key), e).into())
}

/// The write that stores `value` under `key`: an insert, or an update of the stored version.
pub(crate) fn setting_write<T: serde::Serialize>(
    key: String,
    stored: Option<Setting>,
    value: &T,
) -> Result<Write<Setting>> {
    let json = serde_json::to_string(value)
        .map_err(|e| guanxi_core::StorageError::with_source("setting does not encode", e))?;
    Ok(match stored {
        Some(s) => {
            Write::Update { record: Setting { key, value: json, version: s.version + 1 }, expected_version: s.version }
        }
        None => Write::Insert(Setting { key, value: json, version: 1 }),
    })
}
