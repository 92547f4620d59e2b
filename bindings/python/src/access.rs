//! `crm.access` (the organisation, roles, credentials, elevation, `explain`, the field key) and
//! `crm.audit` (the tamper-evident change log).

use guanxi::EntityKind;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::PyCrm;
use crate::convert::*;
use crate::errors::to_py;

/// `crm.access`: departments, users, roles, credentials, elevation and `explain`.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Access {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Access {
    /// Adds or replaces a department (under `parent`, if given). Needs elevation.
    #[pyo3(signature = (id, name, parent = None))]
    fn set_department(&self, py: Python<'_>, id: &str, name: &str, parent: Option<&str>) -> PyResult<()> {
        let d = guanxi::Department::new(id, name, parent).map_err(to_py)?;
        self.crm.get().run(py, |c, a| c.access().set_department(a, d)).map(drop)
    }

    /// Adds or replaces a user. The first user turns access control on and must be an
    /// administrator. `roles` are built-in ("sales_rep", "sales_manager", "customer_service",
    /// "marketing", "administrator") or custom role ids; `regions` provinces or areas (华东…).
    #[pyo3(signature = (id, name, *, department = None, roles = Vec::new(), regions = Vec::new(), active = true))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn set_user(
        &self,
        py: Python<'_>,
        id: &str,
        name: &str,
        department: Option<&str>,
        roles: Vec<String>,
        regions: Vec<String>,
        active: bool,
    ) -> PyResult<()> {
        let mut u = guanxi::User::new(id, name).map_err(to_py)?;
        u.department = department.map(guanxi::DepartmentId::new).transpose().map_err(to_py)?;
        for r in roles {
            u.roles.insert(guanxi::RoleId::new(r).map_err(to_py)?);
        }
        u.regions = regions.into_iter().collect();
        u.active = active;
        self.crm.get().run(py, |c, a| c.access().set_user(a, u)).map(drop)
    }

    /// Adds or replaces a custom role. `grants`: (entity, [actions], scope) tuples, scope one
    /// of "own", "department", "region", "all"; `fields`: (entity, field, "masked" | "hidden").
    #[pyo3(signature = (id, name, *, grants, fields = Vec::new()))]
    fn set_role(
        &self,
        py: Python<'_>,
        id: &str,
        name: &str,
        grants: Vec<(String, Vec<String>, String)>,
        fields: Vec<(String, String, String)>,
    ) -> PyResult<()> {
        let mut role = guanxi::Role::new(id, name).map_err(to_py)?;
        for (entity, actions, scope) in grants {
            role = role.grant_named(&entity, &actions, &scope).map_err(to_py)?;
        }
        for (entity, field, visibility) in fields {
            role = role.field_named(&entity, &field, &visibility).map_err(to_py)?;
        }
        self.crm.get().run(py, |c, a| c.access().set_role(a, role)).map(drop)
    }

    /// Removes a custom role nobody holds. Needs elevation.
    fn remove_role(&self, py: Python<'_>, id: &str) -> PyResult<()> {
        let id = guanxi::RoleId::new(id).map_err(to_py)?;
        self.crm.get().run(py, |c, a| c.access().remove_role(a, &id)).map(drop)
    }

    /// The access model as a dict: departments, users, custom roles.
    fn model<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let model = self.crm.get().run(py, |c, a| c.access().model(a))?;
        to_python(py, &model)
    }

    /// Whether `user` (default: the acting user) may do `action` on `entity` — on one record
    /// of it, when `record_id` is given (a customer, contact, opportunity, lead, task or ticket
    /// id; for interactions, the customer's) — and why: {"allowed": bool, "reasons": [str]}.
    /// The answer is the one lists, counts and reads of that record give.
    #[pyo3(signature = (action, entity, *, record_id = None, user = None))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        action: &str,
        entity: &str,
        record_id: Option<&Bound<'_, PyAny>>,
        user: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut problems = Problems::default();
        let action: Option<guanxi::Action> = problems.keep("action", parse_name("action", action));
        let entity: Option<EntityKind> = problems.keep("entity", parse_name("entity", entity));
        let record = record_id.and_then(|v| problems.keep("record_id", uuid_from(v, "record_id")));
        let (Some(action), Some(entity)) = (action, entity) else { return Err(problems.into_error()) };
        problems.result(())?;
        let crm = self.crm.get();
        let user = match user {
            Some(u) => guanxi::UserId::new(u).map_err(to_py)?,
            None => crm.actor.user_id().clone(),
        };
        let d = crm.run(py, |c, a| c.access().explain(a, &user, action, entity, record))?;
        to_python(py, &d)
    }

    /// Re-encrypts every sensitive field under a new 32-byte key; returns how many records
    /// were rewritten. Needs elevation.
    fn rotate_field_key(&self, py: Python<'_>, key: Vec<u8>) -> PyResult<u64> {
        self.crm.get().run(py, |c, a| c.access().rotate_field_key(a, &key))
    }

    /// Sets `user`'s password (at least 8 characters; stored as an argon2id hash). Users set
    /// their own first password freely and change it elevated; administrators (elevated) set
    /// anyone's.
    fn set_password(&self, py: Python<'_>, user: &str, password: &str) -> PyResult<()> {
        let user = guanxi::UserId::new(user).map_err(to_py)?;
        self.crm.get().run(py, |c, a| c.access().set_password(a, &user, password))
    }

    /// Enrolls `user`'s TOTP authenticator; returns its base32 secret, to show once (as text
    /// or a QR code). Who may do it is as for `set_password`.
    fn enroll_totp(&self, py: Python<'_>, user: &str) -> PyResult<String> {
        let user = guanxi::UserId::new(user).map_err(to_py)?;
        self.crm.get().run(py, |c, a| c.access().enroll_totp(a, &user))
    }

    /// Which credentials `user` has: {"password": bool, "totp": bool}.
    fn credentials<'py>(&self, py: Python<'py>, user: &str) -> PyResult<Bound<'py, PyDict>> {
        let user = guanxi::UserId::new(user).map_err(to_py)?;
        let c = self.crm.get().run(py, |crm, a| crm.access().credentials(a, &user))?;
        let d = PyDict::new(py);
        d.set_item("password", c.password)?;
        d.set_item("totp", c.totp)?;
        Ok(d)
    }

    /// The same CRM acting as the same user, re-verified: give exactly one of `password`,
    /// `totp` (a current code of the enrolled authenticator) or `host_proof` (checked by the
    /// `elevation_verifier` the CRM was opened with). The returned handle may do sensitive
    /// operations for 15 minutes. A refusal raises PermissionDeniedError (action "elevate").
    #[pyo3(signature = (*, password = None, totp = None, host_proof = None))]
    fn elevate(
        &self,
        py: Python<'_>,
        password: Option<String>,
        totp: Option<String>,
        host_proof: Option<String>,
    ) -> PyResult<PyCrm> {
        let proof = match (password, totp, host_proof) {
            (Some(p), None, None) => guanxi::ElevationProof::Password(p),
            (None, Some(t), None) => guanxi::ElevationProof::Totp(t),
            (None, None, Some(h)) => guanxi::ElevationProof::Host(h),
            _ => return Err(invalid_arg("password", "give exactly one of password, totp or host_proof")),
        };
        let crm = self.crm.get();
        let actor = crm.run(py, |c, a| c.access().elevate(a, proof))?;
        crm.with_actor(actor)
    }
}

/// `crm.audit`: the change log, and the check of its hash chain.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Audit {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Audit {
    /// Checks the change log's hash chain (edits, removals, insertions, reordering).
    fn verify(&self, py: Python<'_>) -> PyResult<AuditCheck> {
        self.crm.get().run(py, |c, a| c.audit().verify(a)).map(AuditCheck)
    }

    /// Change-log entries (who, when, entity, field changes), oldest first: `limit` of them
    /// after the entry numbered `after_seq`.
    #[pyo3(signature = (*, entity_id = None, customer_id = None, user = None, after_seq = None, limit = None))]
    fn entries(
        &self,
        py: Python<'_>,
        entity_id: Option<String>,
        customer_id: Option<&Bound<'_, PyAny>>,
        user: Option<&str>,
        after_seq: Option<&Bound<'_, PyAny>>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<ChangeLogEntry>> {
        let after_seq: Option<u64> = opt_int_arg(after_seq, "after_seq")?;
        let limit: Option<usize> = opt_int_arg(limit, "limit")?;
        let query = guanxi::ChangeLogQuery {
            entity_id,
            customer_id: customer_id.map(customer_id_from).transpose()?,
            actor: user.map(guanxi::UserId::new).transpose().map_err(to_py)?,
            after_seq,
            limit,
            ..Default::default()
        };
        Ok(self.crm.get().run(py, |c, a| c.audit().entries(a, &query))?.into_iter().map(ChangeLogEntry).collect())
    }
}

/// Registers the access and audit classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Access>()?;
    m.add_class::<Audit>()?;
    Ok(())
}
