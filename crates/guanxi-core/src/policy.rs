//! Who acts ([`Actor`]) and what they do ([`Action`]): the inputs of every permission check.
//! The policy itself is [`crate::access::AccessModel`].

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::ids::UserId;
use crate::macros::vocabulary;

vocabulary! {
    /// What an operation does, for permission checks.
    ///
    /// ```
    /// use guanxi_core::Action;
    /// assert_eq!(Action::Configure.as_str(), "configure");
    /// ```
    pub enum Action {
        /// Read records.
        Read = "read" / "查看",
        /// Create records.
        Create = "create" / "新建",
        /// Change records.
        Update = "update" / "修改",
        /// Delete (or restore) records.
        Delete = "delete" / "删除",
        /// Export records.
        Export = "export" / "导出",
        /// Merge duplicates.
        Merge = "merge" / "合并",
        /// Assign owners.
        Assign = "assign" / "分配",
        /// Change configuration (custom fields, tags).
        Configure = "configure" / "配置",
    }
}

/// The user on whose behalf an operation runs. Every `Crm` call takes one.
///
/// An actor may carry an elevation: the host grants it, until an instant, after re-verifying
/// the user (password, TOTP). Sensitive operations — delete, export, merge, access changes —
/// refuse actors without a current elevation.
///
/// ```
/// use guanxi_core::Actor;
/// let alice = Actor::user("alice").unwrap();
/// assert_eq!(alice.user_id().as_str(), "alice");
/// let now = "2024-05-01T08:00:00Z".parse().unwrap();
/// let elevated = alice.clone().elevated_until("2024-05-01T08:05:00Z".parse().unwrap());
/// assert!(elevated.is_elevated_at(now) && !alice.is_elevated_at(now));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    user: UserId,
    elevated_until: Option<DateTime<Utc>>,
}

impl Actor {
    /// An actor for a user id.
    pub fn new(user: UserId) -> Self {
        Actor { user, elevated_until: None }
    }

    /// An actor for a user id given as text (validated like [`UserId::new`]).
    pub fn user(id: &str) -> Result<Self> {
        Ok(Actor::new(UserId::new(id)?))
    }

    /// The user id.
    pub fn user_id(&self) -> &UserId {
        &self.user
    }

    /// This actor, elevated until `until`. Call it only after re-verifying the user.
    pub fn elevated_until(self, until: DateTime<Utc>) -> Self {
        Actor { elevated_until: Some(until), ..self }
    }

    /// The end of the elevation, if any.
    pub fn elevation(&self) -> Option<DateTime<Utc>> {
        self.elevated_until
    }

    /// Whether the actor is elevated at `now`.
    pub fn is_elevated_at(&self, now: DateTime<Utc>) -> bool {
        self.elevated_until.is_some_and(|until| now < until)
    }
}
