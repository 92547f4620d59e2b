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
/// **Identity is the host's assertion.** guanxi is a library inside the host's process: it has
/// no login of its own, and `Actor::user("wang")` means "the host has authenticated wang". A
/// host must build actors only from its own authenticated session, never from user input.
///
/// **Elevation is proven.** Sensitive operations — delete, export, merge, access changes —
/// need an actor with a current elevation. By default the `Crm` accepts only elevations it
/// granted itself (`Crm::elevate`, after checking the user's password, a TOTP code or the
/// host's verifier), each carrying a proof the `Crm` can check and lasting at most its window
/// (15 minutes by default). An elevation the host merely asserts ([`Actor::elevated_until`])
/// counts only where the host has said it verifies users itself
/// (`CrmBuilder::trust_asserted_elevation`).
///
/// ```
/// use guanxi_core::Actor;
/// let alice = Actor::user("alice").unwrap();
/// assert_eq!(alice.user_id().as_str(), "alice");
/// let now = "2024-05-01T08:00:00Z".parse().unwrap();
/// let asserted = alice.clone().elevated_until("2024-05-01T08:05:00Z".parse().unwrap());
/// assert!(asserted.is_elevated_at(now) && !alice.is_elevated_at(now));
/// assert!(asserted.elevation_proof().is_none()); // asserted, not proven
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor {
    user: UserId,
    elevated_until: Option<DateTime<Utc>>,
    proof: Option<[u8; 32]>,
}

impl Actor {
    /// An actor for a user id.
    pub fn new(user: UserId) -> Self {
        Actor { user, elevated_until: None, proof: None }
    }

    /// An actor for a user id given as text (validated like [`UserId::new`]).
    pub fn user(id: &str) -> Result<Self> {
        Ok(Actor::new(UserId::new(id)?))
    }

    /// The user id.
    pub fn user_id(&self) -> &UserId {
        &self.user
    }

    /// This actor with an elevation the host *asserts* until `until` (no proof). Honoured only
    /// by a `Crm` built with `trust_asserted_elevation`; otherwise use `Crm::elevate`.
    pub fn elevated_until(self, until: DateTime<Utc>) -> Self {
        Actor { elevated_until: Some(until), proof: None, ..self }
    }

    /// This actor with an elevation until `until` and the proof its grantor computed (what
    /// `Crm::elevate` returns; a proof made for another user or instant does not verify).
    pub fn with_proven_elevation(self, until: DateTime<Utc>, proof: [u8; 32]) -> Self {
        Actor { elevated_until: Some(until), proof: Some(proof), ..self }
    }

    /// The end of the elevation, if any.
    pub fn elevation(&self) -> Option<DateTime<Utc>> {
        self.elevated_until
    }

    /// The proof of a granted elevation, if any.
    pub fn elevation_proof(&self) -> Option<&[u8; 32]> {
        self.proof.as_ref()
    }

    /// Whether the actor carries an elevation that has not ended at `now` (proven or not: the
    /// `Crm` decides whether it counts).
    pub fn is_elevated_at(&self, now: DateTime<Utc>) -> bool {
        self.elevated_until.is_some_and(|until| now < until)
    }
}
