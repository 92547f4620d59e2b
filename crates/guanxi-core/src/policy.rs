//! The permission slot of the call path: every `Crm` operation asks the policy first, before
//! validating or touching storage. The role/scope policy of a later release plugs in here.

use std::fmt;

use crate::error::{EntityKind, Result};
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
/// ```
/// use guanxi_core::Actor;
/// let alice = Actor::user("alice").unwrap();
/// assert_eq!(alice.user_id().as_str(), "alice");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    user: UserId,
}

impl Actor {
    /// An actor for a user id.
    pub fn new(user: UserId) -> Self {
        Actor { user }
    }

    /// An actor for a user id given as text (validated like [`UserId::new`]).
    pub fn user(id: &str) -> Result<Self> {
        Ok(Actor { user: UserId::new(id)? })
    }

    /// The user id.
    pub fn user_id(&self) -> &UserId {
        &self.user
    }
}

/// Decides whether an actor may perform an action on a kind of record.
///
/// ```
/// use guanxi_core::{AccessPolicy, Action, Actor, AllowAll, EntityKind};
/// let alice = Actor::user("alice").unwrap();
/// assert!(AllowAll.check(&alice, Action::Delete, EntityKind::Customer).is_ok());
/// ```
pub trait AccessPolicy: Send + Sync + fmt::Debug {
    /// `Ok(())` to allow, [`crate::Error::PermissionDenied`] to refuse.
    fn check(&self, actor: &Actor, action: Action, entity: EntityKind) -> Result<()>;
}

/// The policy that allows everything: the default until roles are configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl AccessPolicy for AllowAll {
    fn check(&self, _: &Actor, _: Action, _: EntityKind) -> Result<()> {
        Ok(())
    }
}
