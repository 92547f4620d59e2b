//! Access (权限): [`Access`].

use crate::crm::Crm;
use crate::*;
use guanxi_core::access::*;

/// Access (权限): departments, users and roles, explanations of a decision, credentials and elevation, the field key.
///
/// Got from [`Crm`] as `crm.access()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// let why = crm.access().explain(&alice, alice.user_id(), Action::Read, EntityKind::Customer, None)?;
/// assert!(why.allowed);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Access<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Access<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Access")
    }
}

impl<'a> Access<'a> {
    /// Whether `user` may do `action` on `entity` — on one record of it, when `record` is
    /// given — and why, role by role. `record` is the id of a customer, contact, opportunity,
    /// lead, task or ticket (as `entity` says; contacts are judged by their customer, and for
    /// interactions, which are read per customer, give the customer's id): the answer is the
    /// one lists, counts and single reads of that record give. Anyone may ask about
    /// themselves; asking about another user needs read access to roles.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::access::User;
    /// let crm = Crm::in_memory();
    /// crm.access().set_password(&Actor::user("root")?, &UserId::new("root")?, "correct horse battery")?;
    /// let root = crm.access().elevate(&Actor::user("root")?, ElevationProof::Password("correct horse battery".into()))?;
    /// crm.access().set_user(&root, User::new("root", "管理员")?.role(BuiltinRole::Administrator))?;
    /// crm.access().set_user(&root, User::new("wang", "王伟")?.role(BuiltinRole::SalesRep))?;
    /// let c = crm.customers().create(&root, NewCustomer::new("甲"))?; // owned by root
    /// let wang = Actor::user("wang")?;
    /// let why = crm.access().explain(&wang, wang.user_id(), Action::Read, EntityKind::Customer, Some(c.id.0))?;
    /// assert!(!why.allowed);
    /// assert!(matches!(crm.customers().get(&wang, c.id), Err(Error::PermissionDenied { .. })));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn explain(
        &self,
        actor: &Actor,
        user: &UserId,
        action: Action,
        entity: EntityKind,
        record: Option<uuid::Uuid>,
    ) -> Result<Decision> {
        self.crm.explain(actor, user, action, entity, record)
    }

    /// The access model: departments, users and custom roles (built-in roles are in
    /// [`AccessModel::all_roles`]).
    pub fn model(&self, actor: &Actor) -> Result<AccessModel> {
        self.crm.access_model(actor)
    }

    /// Adds or replaces a department. Needs an elevated actor allowed to configure departments.
    pub fn set_department(&self, actor: &Actor, department: Department) -> Result<AccessModel> {
        self.crm.put_department(actor, department)
    }

    /// Adds or replaces a user. The first user turns access control on and must be able to
    /// configure roles (an administrator). Needs an elevated actor.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::access::User;
    /// let crm = Crm::in_memory();
    /// let root = Actor::user("root")?;
    /// let first = User::new("root", "管理员")?.role(BuiltinRole::Administrator);
    /// assert!(matches!(crm.access().set_user(&root, first.clone()), Err(Error::ElevationRequired { .. })));
    /// crm.access().set_password(&root, root.user_id(), "correct horse battery")?;
    /// let root = crm.access().elevate(&root, ElevationProof::Password("correct horse battery".into()))?;
    /// assert_eq!(crm.access().set_user(&root, first)?.users.len(), 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn set_user(&self, actor: &Actor, user: User) -> Result<AccessModel> {
        self.crm.put_user(actor, user)
    }

    /// Adds or replaces a custom role. Needs an elevated actor.
    pub fn set_role(&self, actor: &Actor, role: Role) -> Result<AccessModel> {
        self.crm.put_role(actor, role)
    }

    /// Removes a custom role nobody holds. Needs an elevated actor.
    pub fn remove_role(&self, actor: &Actor, role: &RoleId) -> Result<AccessModel> {
        self.crm.remove_role(actor, role)
    }

    /// Re-encrypts every sensitive field under `new_key` (32 bytes) in one transaction and
    /// logs the rotation with the new key's fingerprint. A sensitive operation: it needs an
    /// elevated actor allowed to configure roles. Returns how many records were rewritten.
    ///
    /// ```
    /// # use guanxi::*;
    /// let dir = tempfile::tempdir().unwrap();
    /// let key = FieldKey::generate();
    /// let crm = Crm::open_with(dir.path().join("crm.db"), SqliteOptions::default().field_key(key))?;
    /// crm.access().set_password(&Actor::user("admin")?, &UserId::new("admin")?, "correct horse battery")?;
    /// let admin = crm.access().elevate(&Actor::user("admin")?, ElevationProof::Password("correct horse battery".into()))?;
    /// crm.customers().create(&admin, NewCustomer::new("甲").contact(NewContact::new("张伟").phone("13812345678")))?;
    /// let new_key = FieldKey::generate();
    /// assert_eq!(crm.access().rotate_field_key(&admin, new_key.as_bytes())?, 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn rotate_field_key(&self, actor: &Actor, new_key: &[u8]) -> Result<u64> {
        self.crm.rotate_field_key(actor, new_key)
    }

    /// Sets `user`'s password (stored as an argon2id hash), which [`Access::elevate`](crate::Access::elevate) then
    /// checks. A user sets their own first password freely and changes it while elevated; an
    /// elevated administrator of users may set anyone's. Logged, without the password.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// assert!(matches!(crm.access().set_password(&alice, alice.user_id(), "short"), Err(Error::Validation(_))));
    /// crm.access().set_password(&alice, alice.user_id(), "correct horse battery")?;
    /// let elevated = crm.access().elevate(&alice, ElevationProof::Password("correct horse battery".into()))?;
    /// assert!(elevated.elevation_proof().is_some());
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn set_password(&self, actor: &Actor, user: &UserId, password: &str) -> Result<()> {
        self.crm.set_password(actor, user, password)
    }

    /// Enrolls (or replaces) `user`'s TOTP authenticator and returns its new base32 secret,
    /// for the host to show once (as text or a QR code); [`Access::elevate`](crate::Access::elevate) then accepts its
    /// codes. Who may do it is as for [`Access::set_password`](crate::Access::set_password).
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let secret = crm.access().enroll_totp(&alice, alice.user_id())?;
    /// let code = guanxi::auth::Totp::from_base32(&secret, guanxi::auth::TotpAlgorithm::Sha1, 6)?.code_at(chrono::Utc::now());
    /// assert!(crm.access().elevate(&alice, ElevationProof::Totp(code)).is_ok());
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn enroll_totp(&self, actor: &Actor, user: &UserId) -> Result<String> {
        self.crm.enroll_totp(actor, user)
    }

    /// Which credentials `user` has (the user themselves, or whoever may read users).
    pub fn credentials(&self, actor: &Actor, user: &UserId) -> Result<Credentials> {
        self.crm.credentials(actor, user)
    }

    /// Re-verifies `actor`'s user and returns the actor elevated for this handle's window (15
    /// minutes by default), with a proof only this handle accepts. Every attempt is logged
    /// (method and outcome, never the secret); a refused one is
    /// [`Error::PermissionDenied`] on action `elevate`.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::access::User;
    /// let crm = Crm::in_memory();
    /// let root = Actor::user("root")?;
    /// crm.access().set_password(&root, root.user_id(), "correct horse battery")?;
    /// let admin = crm.access().elevate(&root, ElevationProof::Password("correct horse battery".into()))?;
    /// crm.access().set_user(&admin, User::new("root", "管理员")?.role(BuiltinRole::Administrator))?;
    /// // Access control is on now: an asserted elevation no longer counts, a proven one does.
    /// let asserted = root.clone().elevated_until("2999-01-01T00:00:00Z".parse().unwrap());
    /// assert!(matches!(crm.access().set_user(&asserted, User::new("wang", "王")?), Err(Error::ElevationRequired { .. })));
    /// crm.access().set_user(&admin, User::new("wang", "王")?)?;
    /// assert!(matches!(crm.access().elevate(&root, ElevationProof::Password("wrong".into())), Err(Error::PermissionDenied { .. })));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn elevate(&self, actor: &Actor, proof: ElevationProof) -> Result<Actor> {
        self.crm.elevate(actor, proof)
    }
}
