//! The facade's side of access control: resolving an actor's permission once per call,
//! checking records against it, masking what is read, auditing sensitive reads, and the
//! elevated, audited calls that change users, departments and roles.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use guanxi_core::access::{AccessModel, Decision, FieldMask, RecordScope, Scoped};
use guanxi_core::changelog::diff_json;
use guanxi_core::{
    Action, Actor, ChangeAction, Contact, CustomerId, Department, DomainEvent, EntityKind, Error, FieldChange, Result,
    Role, RoleId, User, UserId, ValidationReason, Write,
};

use crate::auth::{Totp, TotpAlgorithm, hash_password, verify_password};
use crate::crm::Crm;
use crate::elevation::{Credentials, ElevationProof, MIN_PASSWORD_CHARS};
use crate::handles::Access;
use crate::permission::Allowed;
use crate::plumbing::{decode, to_json};
use crate::write::Entry;

/// Whether an action on an entity is sensitive: it needs an elevated actor.
pub(crate) fn is_sensitive(action: Action, entity: EntityKind) -> bool {
    matches!(action, Action::Delete | Action::Export | Action::Merge)
        || matches!(entity, EntityKind::User | EntityKind::Department | EntityKind::Role) && action != Action::Read
}

impl Crm {
    /// The model in force, if access control is on.
    fn enforced_model(&self) -> Result<Option<Arc<AccessModel>>> {
        Ok(self.store.access_model()?.filter(|m| m.is_enforced()))
    }

    /// The actor's permission for `action` on `entity` (everything, while access control is
    /// off); sensitive actions also need a current elevation.
    pub(crate) fn authorize(&self, actor: &Actor, action: Action, entity: EntityKind) -> Result<Allowed> {
        self.allowed_by(self.enforced_model()?, actor, action, entity)
    }

    /// Another permission of the same actor under the model `allowed` was resolved with (no
    /// second read of the model within one call).
    pub(crate) fn reauthorize(
        &self,
        allowed: &Allowed,
        actor: &Actor,
        action: Action,
        entity: EntityKind,
    ) -> Result<Allowed> {
        self.allowed_by(allowed.model.clone(), actor, action, entity)
    }

    fn allowed_by(
        &self,
        model: Option<Arc<AccessModel>>,
        actor: &Actor,
        action: Action,
        entity: EntityKind,
    ) -> Result<Allowed> {
        let Some(m) = model else {
            return Ok(Allowed { action, entity, scope: RecordScope::all(), mask: FieldMask::none(), model: None });
        };
        let scope = m.permission(actor.user_id(), action, entity)?.scope;
        if is_sensitive(action, entity) {
            self.require_elevation(actor, action, entity)?;
        }
        Ok(Allowed { action, entity, scope, mask: m.field_mask(actor.user_id()), model: Some(m) })
    }

    pub(crate) fn require_elevation(&self, actor: &Actor, action: Action, entity: EntityKind) -> Result<()> {
        if self.elevations.admits(actor, self.clock.now()) {
            Ok(())
        } else {
            Err(Error::ElevationRequired { action: action.as_str().to_owned(), entity })
        }
    }

    /// Logs that `actor` read the sensitive fields of these contacts in clear (only while
    /// access control is on: with it off there is nobody to tell apart).
    pub(crate) fn audit_sensitive_reads(&self, actor: &Actor, allowed: &Allowed, contacts: &[Contact]) -> Result<()> {
        if !allowed.enforced() {
            return Ok(());
        }
        let fields = allowed.mask.clear_sensitive_contact_fields();
        if fields.is_empty() {
            return Ok(());
        }
        let entries: Vec<_> = contacts
            .iter()
            .filter_map(|c| {
                let read: Vec<FieldChange> = fields
                    .iter()
                    .filter(|f| match **f {
                        "phones" => !c.phones.is_empty(),
                        "id_number" => c.id_number.is_some(),
                        _ => false,
                    })
                    .map(|f| FieldChange::new(*f, None, None))
                    .collect();
                (!read.is_empty()).then(|| {
                    Entry::new(EntityKind::Contact, c.id, ChangeAction::Read, read).of_customer(Some(c.customer_id))
                })
            })
            .collect();
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin(allowed, actor);
        for e in entries {
            tx.log(e);
        }
        tx.commit().map(drop)
    }

    /// One audited, elevated change of the access model.
    fn change_access(
        &self,
        actor: &Actor,
        entity: EntityKind,
        id: String,
        change: impl FnOnce(&AccessModel) -> Result<AccessModel>,
    ) -> Result<AccessModel> {
        let allowed = self.authorize(actor, Action::Configure, entity)?;
        // Always elevated, even before access control is on: this is how it gets turned on.
        self.require_elevation(actor, Action::Configure, entity)?;
        let stored = self.store.access_model()?;
        let base = stored.as_deref().cloned().unwrap_or_default();
        let mut next = change(&base)?;
        next.version = base.version + 1;
        let part = |m: &AccessModel| match entity {
            EntityKind::User => m.users.iter().find(|(k, _)| k.as_str() == id).map(|(_, v)| to_json(v)),
            EntityKind::Department => m.departments.iter().find(|(k, _)| k.as_str() == id).map(|(_, v)| to_json(v)),
            _ => m.roles.iter().find(|(k, _)| k.as_str() == id).map(|(_, v)| to_json(v)),
        };
        let (old, new) = (part(&base), part(&next));
        let action = match (&old, &new) {
            (None, _) => ChangeAction::Create,
            (Some(_), None) => ChangeAction::Delete,
            _ => ChangeAction::Update,
        };
        let null = serde_json::Value::Null;
        let diff = diff_json(old.as_ref().unwrap_or(&null), new.as_ref().unwrap_or(&null), &[], &[]);
        if diff.is_empty() && action == ChangeAction::Update {
            return Ok(base);
        }
        let write = match stored {
            None => Write::Insert(next.clone()),
            Some(_) => Write::Update { record: next.clone(), expected_version: base.version },
        };
        let mut tx = self.begin(&allowed, actor);
        let entry = Entry::new(entity, &id, action, diff);
        tx.write(|c| c.access = Some(write), entry, [DomainEvent::AccessChanged { entity, id }]);
        tx.commit()?;
        Ok(next)
    }
}

impl Crm {
    /// The record of `entity` with this id, for `explain`.
    fn scoped_record(&self, entity: EntityKind, id: uuid::Uuid) -> Result<Box<dyn Scoped>> {
        fn found<T: Scoped + 'static>(r: Option<T>, entity: EntityKind, id: uuid::Uuid) -> Result<Box<dyn Scoped>> {
            Ok(Box::new(r.ok_or_else(|| Error::not_found(entity, id))?))
        }
        match entity {
            EntityKind::Customer | EntityKind::Interaction => found(self.store.customer(CustomerId(id))?, entity, id),
            EntityKind::Contact => {
                let c = self.store.contact(guanxi_core::ContactId(id))?.ok_or_else(|| Error::not_found(entity, id))?;
                found(self.store.customer(c.customer_id)?, entity, id)
            }
            EntityKind::Opportunity => found(self.store.opportunity(guanxi_core::OpportunityId(id))?, entity, id),
            EntityKind::Lead => found(self.store.lead(guanxi_core::LeadId(id))?, entity, id),
            EntityKind::Task => found(self.store.task(guanxi_core::TaskId(id))?, entity, id),
            EntityKind::Ticket => found(self.store.ticket(guanxi_core::TicketId(id))?, entity, id),
            EntityKind::Purchase => {
                let p =
                    self.store.purchase(guanxi_core::PurchaseId(id))?.ok_or_else(|| Error::not_found(entity, id))?;
                found(self.store.customer(p.customer_id)?, entity, id)
            }
            other => Err(Error::invalid(
                "record",
                guanxi_core::ValidationReason::Invalid {
                    detail: format!("{other} records have no access scope; ask without a record"),
                },
            )),
        }
    }
}

impl Access<'_> {
    /// Whether `user` may do `action` on `entity` — on one record of it, when `record` is
    /// given — and why, role by role. `record` is the id of a customer, contact, opportunity,
    /// lead, task, ticket or purchase (as `entity` says; contacts and purchases are judged by
    /// their customer, and for
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
        if user != actor.user_id() {
            self.crm.authorize(actor, Action::Read, EntityKind::Role)?;
        }
        let model = self.crm.store.access_model()?.unwrap_or_default();
        let record = record.map(|id| self.crm.scoped_record(entity, id)).transpose()?;
        let mut d = model.explain(user, action, entity, record.as_deref().map(Scoped::scope_attrs));
        if model.is_enforced() && is_sensitive(action, entity) {
            d.reasons.push(format!("{action} on {entity} is sensitive: it also needs an elevated context"));
        }
        Ok(d)
    }

    /// The access model: departments, users and custom roles (built-in roles are in
    /// [`AccessModel::all_roles`]).
    pub fn model(&self, actor: &Actor) -> Result<AccessModel> {
        self.crm.authorize(actor, Action::Read, EntityKind::Role)?;
        Ok(self.crm.store.access_model()?.map(|m| (*m).clone()).unwrap_or_default())
    }

    /// Adds or replaces a department. Needs an elevated actor allowed to configure departments.
    pub fn set_department(&self, actor: &Actor, department: Department) -> Result<AccessModel> {
        let id = department.id.to_string();
        self.crm.change_access(actor, EntityKind::Department, id, |m| m.with_department(department))
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
        let id = user.id.to_string();
        self.crm.change_access(actor, EntityKind::User, id, |m| m.with_user(user))
    }

    /// Adds or replaces a custom role. Needs an elevated actor.
    pub fn set_role(&self, actor: &Actor, role: Role) -> Result<AccessModel> {
        let id = role.id.to_string();
        self.crm.change_access(actor, EntityKind::Role, id, |m| m.with_role(role))
    }

    /// Removes a custom role nobody holds. Needs an elevated actor.
    pub fn remove_role(&self, actor: &Actor, role: &RoleId) -> Result<AccessModel> {
        self.crm.change_access(actor, EntityKind::Role, role.to_string(), |m| m.without_role(role))
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
        let allowed = self.crm.authorize(actor, Action::Configure, EntityKind::Role)?;
        self.crm.require_elevation(actor, Action::Configure, EntityKind::Role)?;
        // The store rewrites every value under the new key in its own transaction (it holds
        // the keys); the entry follows it.
        let n = self.crm.store.rotate_field_key(new_key)?;
        let fingerprint = self.crm.store.field_key_fingerprint()?.map(serde_json::Value::from);
        let changes =
            vec![FieldChange::new("field_key", None, fingerprint), FieldChange::new("rewritten", None, Some(n.into()))];
        let mut tx = self.crm.begin(&allowed, actor);
        tx.log(Entry::new(EntityKind::Contact, "field_key", ChangeAction::Update, changes));
        tx.commit()?;
        Ok(n)
    }
}

const CREDENTIALS: &str = "auth.credentials";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stored {
    /// PHC string of the password's argon2id hash.
    password: Option<String>,
    /// Base32 TOTP secret.
    totp: Option<String>,
}

impl Crm {
    fn stored_credentials(&self) -> Result<(Option<guanxi_core::Setting>, BTreeMap<UserId, Stored>)> {
        let stored = self.store.setting(CREDENTIALS)?;
        let map = stored.as_ref().map(decode).transpose()?.unwrap_or_default();
        Ok((stored, map))
    }

    /// Whoever may change `user`'s credentials: the user themselves (elevated, once they have
    /// one of that kind), or an elevated administrator of users.
    fn may_set_credentials(&self, actor: &Actor, user: &UserId, has_one: bool) -> Result<Allowed> {
        if actor.user_id() == user {
            if has_one {
                self.require_elevation(actor, Action::Configure, EntityKind::User)?;
            }
            return Ok(Allowed::own_account());
        }
        self.authorize(actor, Action::Configure, EntityKind::User)
    }

    fn write_credentials(
        &self,
        actor: &Actor,
        granted: &Allowed,
        user: &UserId,
        stored: Option<guanxi_core::Setting>,
        map: &BTreeMap<UserId, Stored>,
        what: &str,
    ) -> Result<()> {
        // The fact, never the secret or its hash.
        let entry = Entry::new(
            EntityKind::User,
            user,
            ChangeAction::Elevate,
            vec![FieldChange::new(what, None, Some("set".into()))],
        );
        let mut tx = self.begin(granted, actor);
        tx.put_setting(CREDENTIALS.to_owned(), stored, map, [entry], [])?;
        tx.commit().map(drop)
    }
}

fn refusal(user: &UserId, why: &str) -> Error {
    Error::PermissionDenied { action: "elevate".into(), entity: EntityKind::User, reason: format!("user {user} {why}") }
}

impl Access<'_> {
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
        if password.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Error::invalid(
                "password",
                ValidationReason::Invalid { detail: format!("must have at least {MIN_PASSWORD_CHARS} characters") },
            ));
        }
        let (stored, mut map) = self.crm.stored_credentials()?;
        let granted = self.crm.may_set_credentials(actor, user, map.get(user).is_some_and(|c| c.password.is_some()))?;
        map.entry(user.clone()).or_default().password = Some(hash_password(password)?);
        self.crm.write_credentials(actor, &granted, user, stored, &map, "password")
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
        let (stored, mut map) = self.crm.stored_credentials()?;
        let granted = self.crm.may_set_credentials(actor, user, map.get(user).is_some_and(|c| c.totp.is_some()))?;
        let secret = Totp::generate_secret();
        map.entry(user.clone()).or_default().totp = Some(secret.clone());
        self.crm.write_credentials(actor, &granted, user, stored, &map, "totp")?;
        Ok(secret)
    }

    /// Which credentials `user` has (the user themselves, or whoever may read users).
    pub fn credentials(&self, actor: &Actor, user: &UserId) -> Result<Credentials> {
        if actor.user_id() != user {
            self.crm.authorize(actor, Action::Read, EntityKind::User)?;
        }
        let (_, map) = self.crm.stored_credentials()?;
        Ok(map
            .get(user)
            .map(|c| Credentials { password: c.password.is_some(), totp: c.totp.is_some() })
            .unwrap_or_default())
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
        let user = actor.user_id();
        let now = self.crm.clock.now();
        let checked: Result<bool> = match &proof {
            ElevationProof::Password(p) => {
                match self.crm.stored_credentials()?.1.get(user).and_then(|c| c.password.clone()) {
                    Some(phc) => verify_password(p, &phc),
                    None => Err(refusal(user, "has no password set")),
                }
            }
            ElevationProof::Totp(code) => match self.crm.stored_credentials()?.1.get(user).and_then(|c| c.totp.clone())
            {
                Some(secret) => Totp::from_base32(&secret, TotpAlgorithm::Sha1, 6).map(|t| t.verify(code, now, 1)),
                None => Err(refusal(user, "has no TOTP authenticator enrolled")),
            },
            ElevationProof::Host(token) => match &self.crm.elevations.verifier {
                Some(v) => v.verify(user, token),
                None => Err(Error::InvalidState("no host elevation verifier is configured".into())),
            },
        };
        let ok = matches!(checked, Ok(true));
        let until = now + self.crm.elevations.window;
        let mut change = vec![FieldChange::new("method", None, Some(proof.method().into()))];
        change.push(if ok {
            FieldChange::new("elevated_until", None, Some(until.to_rfc3339().into()))
        } else {
            FieldChange::new("refused", None, Some(true.into()))
        });
        // An attempt is on record whatever its outcome, before any permission exists.
        let mut tx = self.crm.begin_attempt(actor);
        tx.log(Entry::new(EntityKind::User, user, ChangeAction::Elevate, change));
        tx.commit()?;
        match checked {
            Ok(true) => {
                Ok(Actor::new(user.clone()).with_proven_elevation(until, self.crm.elevations.sign(user, until)))
            }
            Ok(false) => Err(refusal(user, &format!("did not pass the {} check", proof.method()))),
            Err(e) => Err(e),
        }
    }
}
