//! Tags (标签): named, optionally grouped labels on customers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ValidationReason;
use crate::normalize::fold_text;
use crate::validate::limits;

/// A tag. Its name is its identity (unique, folded, trimmed); the group organizes tags
/// ("行业", "来源", "等级").
///
/// ```
/// use guanxi_core::Tag;
/// let t = Tag::new("互联网", Some("行业")).unwrap();
/// assert_eq!(t.group.as_deref(), Some("行业"));
/// assert!(Tag::new("   ", None).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Tag {
    /// Unique name.
    pub name: String,
    /// Group, if any.
    pub group: Option<String>,
    /// When it was defined (set by the facade).
    pub created_at: Option<DateTime<Utc>>,
}

impl Tag {
    /// A validated tag.
    pub fn new(name: &str, group: Option<&str>) -> Result<Tag, crate::Error> {
        let name = normalize_tag_name(name).map_err(|r| crate::Error::invalid("name", r))?;
        if let Some(c) = group.and_then(|g| crate::normalize::forbidden_char(g, false)) {
            return Err(crate::Error::invalid("group", crate::normalize::forbidden_reason(c)));
        }
        let group = group.map(fold_text).filter(|g| !g.is_empty());
        if group.as_ref().is_some_and(|g| g.chars().count() > limits::SHORT) {
            return Err(crate::Error::invalid("group", ValidationReason::TooLong { max: limits::SHORT }));
        }
        Ok(Tag { name, group, created_at: None })
    }
}

/// Normalizes a tag name: folded and trimmed, not empty, at most 100 characters.
///
/// ```
/// use guanxi_core::tag::normalize_tag_name;
/// assert_eq!(normalize_tag_name(" ＶＩＰ ").unwrap(), "VIP");
/// ```
pub fn normalize_tag_name(name: &str) -> Result<String, ValidationReason> {
    if let Some(c) = crate::normalize::forbidden_char(name, false) {
        return Err(crate::normalize::forbidden_reason(c));
    }
    let name = fold_text(name);
    if name.is_empty() {
        Err(ValidationReason::Required)
    } else if name.chars().count() > limits::SHORT {
        Err(ValidationReason::TooLong { max: limits::SHORT })
    } else {
        Ok(name)
    }
}
