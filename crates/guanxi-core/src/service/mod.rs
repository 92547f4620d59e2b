//! Service (客服): tickets with a status rule, SLAs in business time, assignment to skill
//! groups, a knowledge base searchable in Chinese and English, quality flags and CSAT, and the
//! service report.
//!
//! Everything here is pure: the `Crm` facade stores [`ServiceSettings`] as one document and
//! runs each ticket operation through them.

mod assign;
mod calendar;
mod kb;
mod quality;
mod report;
mod sla;
mod ticket;
mod workflow;

use serde::{Deserialize, Serialize};

pub use assign::{Agent, AssignStrategy, Route, SkillGroup};
pub use calendar::{BusinessCalendar, BusinessClock, WorkingHours};
pub use kb::{
    Article, ArticleHit, Bm25, COLUMN_WEIGHTS, COMMON_TERM_MIN_DOCS, COMMON_TERM_SHARE, KbQuery, MAX_ANY_TERMS,
    MAX_BODY, MAX_QUERY_TERMS, MatchMode, NewArticle, rank_articles, tokenize,
};
pub use quality::{Csat, DEFAULT_RISK_KEYWORDS, risk_flags};
pub use report::{Backlog, Compliance, DurationStats, KeyedCsat, Period, ServiceQuery, ServiceReport, VolumeRow};
pub use sla::{SlaClock, SlaEvaluator, SlaPolicy, SlaState, TargetStatus, TicketSla, select_policy};
pub use ticket::{
    AssignReason, Channel, NewTicket, Priority, SlaTargets, Ticket, TicketChange, TicketEntry, TicketFilter,
    TicketKind, TicketStatus, check_satisfaction,
};
pub use workflow::{apply_move, apply_reply, reply_body};

use crate::error::{FieldError, Result, ValidationErrors, ValidationReason};

/// How the service desk works: its calendar, SLA policies, skill groups and routes, risk
/// keywords and reopen window. Stored as one settings document; the defaults are a Chinese
/// office calendar, [`SlaPolicy::defaults`], no groups, and [`DEFAULT_RISK_KEYWORDS`].
///
/// ```
/// use guanxi_core::service::ServiceSettings;
/// let s = ServiceSettings::default();
/// assert_eq!((s.at_risk_percent, s.reopen_window_days, s.auto_assign), (20, 7, true));
/// s.validate()?;
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSettings {
    /// Business hours and holidays.
    pub calendar: BusinessCalendar,
    /// SLA policies.
    pub sla_policies: Vec<SlaPolicy>,
    /// A running target with less than this share left is at risk (percent).
    pub at_risk_percent: u8,
    /// Skill groups.
    pub groups: Vec<SkillGroup>,
    /// Routing rules, first match wins.
    pub routes: Vec<Route>,
    /// Group for tickets no route matches.
    pub default_group: Option<String>,
    /// Assign new tickets to an agent of their group on creation.
    pub auto_assign: bool,
    /// A closed ticket can be reopened this many days after closing.
    pub reopen_window_days: u32,
    /// Words that flag tickets and replies.
    pub risk_keywords: Vec<String>,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            calendar: BusinessCalendar::china_office(),
            sla_policies: SlaPolicy::defaults(),
            at_risk_percent: 20,
            groups: vec![],
            routes: vec![],
            default_group: None,
            auto_assign: true,
            reopen_window_days: 7,
            risk_keywords: DEFAULT_RISK_KEYWORDS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

impl ServiceSettings {
    /// Checks every part, reporting all failures.
    pub fn validate(&self) -> Result<()> {
        let mut errs = match self.calendar.validate() {
            Err(crate::Error::Validation(v)) => ValidationErrors(
                v.0.into_iter().map(|e| FieldError::new(format!("calendar.{}", e.field), e.reason)).collect(),
            ),
            _ => ValidationErrors::default(),
        };
        SlaPolicy::validate(&self.sla_policies, &mut errs);
        if self.at_risk_percent > 100 {
            errs.push("at_risk_percent", ValidationReason::Invalid { detail: "must be at most 100".into() });
        }
        assign::validate(&self.groups, &self.routes, self.default_group.as_deref(), &mut errs);
        for (i, k) in self.risk_keywords.iter().enumerate() {
            if k.trim().is_empty() {
                errs.push(format!("risk_keywords[{i}]"), ValidationReason::Required);
            }
        }
        errs.into_result(())
    }

    /// The keys of the skill groups: what a group argument may name.
    ///
    /// ```
    /// use guanxi_core::service::{AssignStrategy, ServiceSettings, SkillGroup};
    /// let mut s = ServiceSettings::default();
    /// s.groups.push(SkillGroup::new("l1", "一线", AssignStrategy::RoundRobin));
    /// assert_eq!(s.group_keys().collect::<Vec<_>>(), ["l1"]);
    /// ```
    pub fn group_keys(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.key.as_str())
    }

    /// A group by key.
    pub fn group(&self, key: &str) -> Option<&SkillGroup> {
        self.groups.iter().find(|g| g.key == key)
    }

    /// The group and skill a ticket is queued with: the first matching route, else the default.
    pub fn route(&self, t: &NewTicket) -> (Option<String>, Option<String>) {
        let text = format!("{} {}", t.subject, t.description.as_deref().unwrap_or(""));
        match self.routes.iter().find(|r| r.matches(t.kind, t.channel, t.priority, &text)) {
            Some(r) => (Some(r.group.clone()), r.skill.clone()),
            None => (self.default_group.clone(), None),
        }
    }
}
