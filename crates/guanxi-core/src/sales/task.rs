//! Tasks (待办) and a user's agenda at an instant: due and overdue tasks, follow-ups due under
//! cadence rules, rotting opportunities.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::{Opportunity, Pipeline};
use crate::access::{ScopeAttrs, Scoped};
use crate::error::ValidationErrors;
use crate::ids::{CustomerId, DepartmentId, OpportunityId, TaskId, UserId};
use crate::validate::{limits, optional_long_text, required_text};

/// A task with a due instant and an owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Task {
    /// UUIDv7 id.
    pub id: TaskId,
    /// What to do.
    pub title: String,
    /// Details.
    pub notes: Option<String>,
    /// Due.
    pub due_at: DateTime<Utc>,
    /// Who does it.
    pub owner: UserId,
    /// The owner's department.
    pub department: Option<DepartmentId>,
    /// Opportunity it is about.
    pub opportunity_id: Option<OpportunityId>,
    /// Customer it is about.
    pub customer_id: Option<CustomerId>,
    /// When it was done.
    pub done_at: Option<DateTime<Utc>>,
    /// Creator.
    pub created_by: UserId,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updater.
    pub updated_by: UserId,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

impl Scoped for Task {
    fn scope_attrs(&self) -> ScopeAttrs<'_> {
        ScopeAttrs { owner: Some(&self.owner), creator: None, department: self.department.as_ref(), province: None }
    }
}

/// A new task.
///
/// ```
/// use guanxi_core::sales::NewTask;
/// let t = NewTask::new("发送报价单", "2024-05-03T02:00:00Z".parse().unwrap()).validate().unwrap();
/// assert_eq!(t.title, "发送报价单");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    /// What to do.
    pub title: String,
    /// Details.
    pub notes: Option<String>,
    /// Due.
    pub due_at: DateTime<Utc>,
    /// Owner (default: the actor).
    pub owner: Option<UserId>,
    /// Opportunity.
    pub opportunity_id: Option<OpportunityId>,
    /// Customer (default: the opportunity's).
    pub customer_id: Option<CustomerId>,
}

impl NewTask {
    /// A task due at an instant.
    pub fn new(title: &str, due_at: DateTime<Utc>) -> NewTask {
        NewTask { title: title.to_owned(), notes: None, due_at, owner: None, opportunity_id: None, customer_id: None }
    }

    /// About an opportunity.
    pub fn opportunity(mut self, id: OpportunityId) -> Self {
        self.opportunity_id = Some(id);
        self
    }

    /// For an owner.
    pub fn owner(mut self, owner: UserId) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Checks the text fields.
    pub fn validate(mut self) -> Result<NewTask, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        self.title = required_text(&mut errs, "title", &self.title, limits::NAME);
        self.notes = optional_long_text(&mut errs, "notes", self.notes.as_deref(), limits::LONG);
        if errs.is_empty() { Ok(self) } else { Err(errs) }
    }
}

/// Why something is on an agenda.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgendaItem {
    /// An open task.
    Task(Task),
    /// A follow-up due under the opportunity's cadence rule.
    FollowUp {
        /// The opportunity.
        opportunity: OpportunityId,
        /// Its code.
        code: String,
        /// When the follow-up is due.
        due_at: DateTime<Utc>,
    },
}

impl AgendaItem {
    /// When it is due.
    pub fn due_at(&self) -> DateTime<Utc> {
        match self {
            AgendaItem::Task(t) => t.due_at,
            AgendaItem::FollowUp { due_at, .. } => *due_at,
        }
    }
}

/// A user's agenda at an instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agenda {
    /// Past due, oldest first.
    pub overdue: Vec<AgendaItem>,
    /// Due later on the same calendar day, earliest first.
    pub due_today: Vec<AgendaItem>,
    /// Open opportunities rotting in their stage (codes, oldest activity first).
    pub rotting: Vec<String>,
}

/// Builds an agenda at `at` from a user's open tasks and open opportunities: tasks and
/// cadence follow-ups past due are overdue; those due later the same day (in `offset`) are
/// due today; opportunities without activity beyond their stage's threshold are rotting.
///
/// ```
/// use guanxi_core::sales::{agenda, Agenda};
/// let at = "2024-05-01T08:00:00Z".parse().unwrap();
/// let offset = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
/// assert_eq!(agenda(at, offset, vec![], &[], |_| None), Agenda::default());
/// ```
pub fn agenda<'p>(
    at: DateTime<Utc>,
    offset: FixedOffset,
    tasks: Vec<Task>,
    opportunities: &[Opportunity],
    pipeline_of: impl Fn(&str) -> Option<&'p Pipeline>,
) -> Agenda {
    let today = at.with_timezone(&offset).date_naive();
    let mut out = Agenda::default();
    let items = tasks.into_iter().filter(|t| t.done_at.is_none()).map(AgendaItem::Task).chain(
        opportunities.iter().filter_map(|o| {
            o.follow_up_due().map(|due_at| AgendaItem::FollowUp { opportunity: o.id, code: o.code.clone(), due_at })
        }),
    );
    for item in items {
        let due = item.due_at();
        if due < at {
            out.overdue.push(item);
        } else if due.with_timezone(&offset).date_naive() == today {
            out.due_today.push(item);
        }
    }
    out.overdue.sort_by_key(AgendaItem::due_at);
    out.due_today.sort_by_key(AgendaItem::due_at);
    let mut rotting: Vec<&Opportunity> =
        opportunities.iter().filter(|o| pipeline_of(&o.pipeline).is_some_and(|p| o.is_rotting(p, at))).collect();
    rotting.sort_by_key(|o| o.last_activity_at);
    out.rotting = rotting.into_iter().map(|o| o.code.clone()).collect();
    out
}

/// Conditions on a task list.
///
/// ```
/// use guanxi_core::sales::TaskFilter;
/// let f = TaskFilter { open: Some(true), ..Default::default() };
/// assert!(f.owner.is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    /// Owner.
    pub owner: Option<UserId>,
    /// Opportunity.
    pub opportunity_id: Option<OpportunityId>,
    /// Not done (true) or done (false).
    pub open: Option<bool>,
    /// The records the caller may see (set by the facade).
    pub scope: Option<crate::access::RecordScope>,
}

impl TaskFilter {
    /// The reference semantics.
    pub fn matches(&self, t: &Task) -> bool {
        self.scope.as_ref().is_none_or(|s| s.admits(t.scope_attrs()))
            && self.owner.as_ref().is_none_or(|u| &t.owner == u)
            && self.opportunity_id.is_none_or(|o| t.opportunity_id == Some(o))
            && self.open.is_none_or(|o| t.done_at.is_none() == o)
    }
}
