//! The marketing settings, stored by the facade as one document: how long behaviour events
//! are kept.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ValidationErrors, ValidationReason};

/// The longest retention that may be set, in days (a hundred years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// The marketing settings.
///
/// ```
/// use guanxi_core::marketing::MarketingSettings;
/// let s = MarketingSettings { event_retention_days: Some(365) };
/// assert!(s.validate().is_ok());
/// let now = "2024-06-01T00:00:00Z".parse().unwrap();
/// assert_eq!(s.retention_start(now).unwrap().to_rfc3339(), "2023-06-02T00:00:00+00:00");
/// assert!(MarketingSettings { event_retention_days: Some(0) }.validate().is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarketingSettings {
    /// Behaviour events older than this many days are refused when recorded and removed by a
    /// purge; kept for ever when None (the default).
    pub event_retention_days: Option<u32>,
}

impl MarketingSettings {
    /// Checks the settings; every bad field is reported.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        if let Some(days) = self.event_retention_days
            && !(1..=MAX_RETENTION_DAYS).contains(&days)
        {
            errs.push(
                "event_retention_days",
                ValidationReason::Invalid { detail: format!("between 1 and {MAX_RETENTION_DAYS} days") },
            );
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// The earliest instant an event may have at `now` to be kept (None: every event is).
    pub fn retention_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.event_retention_days.map(|d| now - Duration::days(i64::from(d)))
    }
}
