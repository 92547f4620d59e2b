//! The authorized permission a facade call works under: an actor's scope and field mask for
//! one action on one kind of record, resolved once per call by `Crm::authorize`
//! (access_control.rs), and the mask the change log stores sensitive values under.

use std::fmt;
use std::sync::{Arc, LazyLock};

use guanxi_core::access::{AccessModel, FieldMask, RecordScope, ScopeAttrs, Scoped};
use guanxi_core::{Action, Actor, Contact, Customer, EntityKind, Error, FieldChange, Result, UserId};

/// What sensitive values look like in the change log: masked, whoever reads it.
pub(crate) static AT_REST: LazyLock<FieldMask> = LazyLock::new(FieldMask::at_rest);

/// An actor's permission for one action on one kind of record, resolved once per call.
#[derive(Debug)]
pub(crate) struct Allowed {
    pub(crate) action: Action,
    pub(crate) entity: EntityKind,
    pub(crate) scope: RecordScope,
    pub(crate) mask: FieldMask,
    /// The model in force; `None` while access control is off.
    pub(crate) model: Option<Arc<AccessModel>>,
}

impl Allowed {
    /// What any user may do to their own account (set their own credentials), whatever the
    /// model says: no record scope is involved.
    pub(crate) fn own_account() -> Allowed {
        Allowed {
            action: Action::Configure,
            entity: EntityKind::User,
            scope: RecordScope::all(),
            mask: FieldMask::none(),
            model: None,
        }
    }

    /// Whether access control is on (the model has users).
    pub(crate) fn enforced(&self) -> bool {
        self.model.is_some()
    }

    /// `Ok` when the customer is in scope (see [`Allowed::check`]).
    pub(crate) fn check_customer(&self, actor: &Actor, c: &Customer) -> Result<()> {
        self.check(actor, c.scope_attrs(), format_args!("customer {}", c.code))
    }

    /// The scope a store query carries: none when the actor sees everything.
    pub(crate) fn query_scope(&self) -> Option<RecordScope> {
        (!self.scope.all).then(|| self.scope.clone())
    }

    /// The department a new record of `user` defaults to: theirs, when access control is on.
    pub(crate) fn department_of(&self, user: &UserId) -> Option<guanxi_core::DepartmentId> {
        self.model.as_ref().and_then(|m| m.users.get(user)).and_then(|u| u.department.clone())
    }

    /// Refuses an owner who is not a user, when access control is on.
    pub(crate) fn check_owner(&self, field: &str, owner: Option<&UserId>) -> Result<()> {
        if let (Some(m), Some(o)) = (&self.model, owner)
            && !m.users.contains_key(o)
        {
            return Err(Error::invalid(
                field,
                guanxi_core::ValidationReason::Invalid { detail: format!("{o} is not a user of this CRM") },
            ));
        }
        Ok(())
    }

    /// `Ok` when the record is in scope; [`Error::PermissionDenied`] naming the action otherwise.
    pub(crate) fn check(&self, actor: &Actor, record: ScopeAttrs<'_>, what: impl fmt::Display) -> Result<()> {
        if self.scope.admits(record) {
            return Ok(());
        }
        Err(Error::PermissionDenied {
            action: self.action.as_str().to_owned(),
            entity: self.entity,
            reason: format!("{what} is outside the {} scope of user {}", self.action, actor.user_id()),
        })
    }

    /// A customer as this actor may see it.
    pub(crate) fn show_customer(&self, mut c: Customer) -> Customer {
        self.mask.apply_customer(&mut c);
        c
    }

    /// A contact as this actor may see it.
    pub(crate) fn show_contact(&self, mut c: Contact) -> Contact {
        self.mask.apply_contact(&mut c);
        c
    }

    /// Change-log field changes as this actor may see them.
    pub(crate) fn show_changes(&self, entity: EntityKind, changes: &mut [FieldChange]) {
        if !self.mask.is_empty() {
            for ch in changes {
                self.mask.apply_change(entity, ch);
            }
        }
    }
}
