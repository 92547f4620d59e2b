//! Python bindings of guanxi: conversions only. Every method converts its arguments, releases
//! the GIL around one call of the `Crm` facade, and converts the result back.
#![allow(unreachable_pub)] // pyo3 classes are reached through the Python module, not Rust paths.

mod arrow;
mod convert;
mod dedup;
mod errors;
mod repr;
mod sales;
mod service;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use guanxi::{
    Actor, ContactId, Crm, CustomFieldDef, CustomerFilter, CustomerPatch, EntityKind, NewCustomer, NewInteraction,
    SubscriptionId,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::*;
use crate::errors::{GuanxiError, to_py};
use crate::repr::q;

/// The shared state of a handle and every view of it (`as_user`, `customers`).
struct Inner {
    crm: Crm,
}

/// An open CRM, acting as one user. Use as a context manager, or call `close()`.
#[pyclass(module = "guanxi._guanxi", name = "Crm", frozen)]
pub struct PyCrm {
    inner: RwLock<Option<Arc<Inner>>>,
    actor: Actor,
}

impl PyCrm {
    fn wrap(crm: Crm, user: &str) -> PyResult<Self> {
        let actor = Actor::user(user).map_err(to_py)?;
        Ok(PyCrm { inner: RwLock::new(Some(Arc::new(Inner { crm }))), actor })
    }

    fn inner(&self) -> PyResult<Arc<Inner>> {
        self.inner
            .read()
            .map_err(|_| GuanxiError::new_err("handle lock poisoned"))?
            .clone()
            .ok_or_else(|| GuanxiError::new_err("the CRM handle is closed"))
    }

    /// Runs `f` on the facade with the GIL released, mapping errors to Python exceptions.
    fn run<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&Crm, &Actor) -> guanxi::Result<T> + Send) -> PyResult<T> {
        let inner = self.inner()?;
        let actor = &self.actor;
        py.detach(|| f(&inner.crm, actor)).map_err(to_py)
    }
}

#[pymethods]
impl PyCrm {
    /// Opens (or creates) a SQLite database file, or connects to a PostgreSQL server when
    /// `path` is a `postgresql://` URL or a libpq string (`host=… dbname=…`), acting as `user`.
    /// With `field_key` (32 bytes), contacts' phones are encrypted at rest under it (SQLite).
    #[staticmethod]
    #[pyo3(signature = (path, *, user, field_key = None, trust_asserted_elevation = false, elevation_verifier = None))]
    fn open(
        py: Python<'_>,
        path: std::path::PathBuf,
        user: &str,
        field_key: Option<Vec<u8>>,
        trust_asserted_elevation: bool,
        elevation_verifier: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let key = field_key.map(|k| guanxi::FieldKey::from_bytes(&k)).transpose().map_err(to_py)?;
        let location = path.to_string_lossy().into_owned();
        let store = py.detach(|| guanxi::open_store(&location, key)).map_err(to_py)?;
        let builder = Crm::builder().store(store);
        Self::wrap(elevation_options(builder, trust_asserted_elevation, elevation_verifier).build(), user)
    }

    /// A CRM kept in memory, acting as `user`. Elevation options as for `open`.
    #[staticmethod]
    #[pyo3(signature = (*, user, trust_asserted_elevation = false, elevation_verifier = None))]
    fn in_memory(user: &str, trust_asserted_elevation: bool, elevation_verifier: Option<Py<PyAny>>) -> PyResult<Self> {
        Self::wrap(elevation_options(Crm::builder(), trust_asserted_elevation, elevation_verifier).build(), user)
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
    ) -> PyResult<Self> {
        let proof = match (password, totp, host_proof) {
            (Some(p), None, None) => guanxi::ElevationProof::Password(p),
            (None, Some(t), None) => guanxi::ElevationProof::Totp(t),
            (None, None, Some(h)) => guanxi::ElevationProof::Host(h),
            _ => return Err(invalid_arg("password", "give exactly one of password, totp or host_proof")),
        };
        let actor = self.run(py, |c, a| c.access().elevate(a, proof))?;
        Ok(PyCrm { inner: RwLock::new(Some(self.inner()?)), actor })
    }

    /// Sets `user`'s password (at least 8 characters; stored as an argon2id hash). Users set
    /// their own first password freely and change it elevated; administrators (elevated) set
    /// anyone's.
    fn set_password(&self, py: Python<'_>, user: &str, password: &str) -> PyResult<()> {
        let user = guanxi::UserId::new(user).map_err(to_py)?;
        self.run(py, |c, a| c.access().set_password(a, &user, password))
    }

    /// Enrolls `user`'s TOTP authenticator; returns its base32 secret, to show once (as text
    /// or a QR code). Who may do it is as for `set_password`.
    fn enroll_totp(&self, py: Python<'_>, user: &str) -> PyResult<String> {
        let user = guanxi::UserId::new(user).map_err(to_py)?;
        self.run(py, |c, a| c.access().enroll_totp(a, &user))
    }

    /// Which credentials `user` has: {"password": bool, "totp": bool}.
    fn credentials<'py>(&self, py: Python<'py>, user: &str) -> PyResult<Bound<'py, PyDict>> {
        let user = guanxi::UserId::new(user).map_err(to_py)?;
        let c = self.run(py, |crm, a| crm.access().credentials(a, &user))?;
        let d = PyDict::new(py);
        d.set_item("password", c.password)?;
        d.set_item("totp", c.totp)?;
        Ok(d)
    }

    /// The acting user.
    #[getter]
    fn user(&self) -> &str {
        self.actor.user_id().as_str()
    }

    /// The same CRM acting as another user.
    fn as_user(&self, user: &str) -> PyResult<Self> {
        let actor = Actor::user(user).map_err(to_py)?;
        Ok(PyCrm { inner: RwLock::new(Some(self.inner()?)), actor })
    }

    /// The same CRM acting as the same user, with an elevation the host *asserts* until `until`
    /// (a UTC datetime). It counts only in a CRM opened with `trust_asserted_elevation=True`
    /// (a host that re-verifies users itself); otherwise use `elevate`.
    fn elevated(&self, until: chrono::DateTime<chrono::Utc>) -> PyResult<Self> {
        Ok(PyCrm { inner: RwLock::new(Some(self.inner()?)), actor: self.actor.clone().elevated_until(until) })
    }

    /// Adds or replaces a department (under `parent`, if given). Needs elevation.
    #[pyo3(signature = (id, name, parent = None))]
    fn put_department(&self, py: Python<'_>, id: &str, name: &str, parent: Option<&str>) -> PyResult<()> {
        let d = guanxi::Department::new(id, name, parent).map_err(to_py)?;
        self.run(py, |c, a| c.access().set_department(a, d)).map(drop)
    }

    /// Adds or replaces a user. The first user turns access control on and must be an
    /// administrator. `roles` are built-in ("sales_rep", "sales_manager", "customer_service",
    /// "marketing", "administrator") or custom role ids; `regions` provinces or areas (华东…).
    #[pyo3(signature = (id, name, *, department = None, roles = Vec::new(), regions = Vec::new(), active = true))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn put_user(
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
        self.run(py, |c, a| c.access().set_user(a, u)).map(drop)
    }

    /// Adds or replaces a custom role. `grants`: (entity, [actions], scope) tuples, scope one
    /// of "own", "department", "region", "all"; `fields`: (entity, field, "masked" | "hidden").
    #[pyo3(signature = (id, name, *, grants, fields = Vec::new()))]
    fn put_role(
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
        self.run(py, |c, a| c.access().set_role(a, role)).map(drop)
    }

    /// Removes a custom role nobody holds. Needs elevation.
    fn remove_role(&self, py: Python<'_>, id: &str) -> PyResult<()> {
        let id = guanxi::RoleId::new(id).map_err(to_py)?;
        self.run(py, |c, a| c.access().remove_role(a, &id)).map(drop)
    }

    /// The access model as a dict: departments, users, custom roles.
    fn access_model<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let model = self.run(py, |c, a| c.access().model(a))?;
        json_to_py(py, &serde_json::to_value(model).map_err(|e| GuanxiError::new_err(e.to_string()))?)
    }

    /// Whether `user` (default: the acting user) may do `action` on `entity` — on one record
    /// of it, when `record_id` is given (a customer, contact, opportunity, lead, task or ticket
    /// id; for interactions, the customer's) — and why: {"allowed": bool, "reasons": [str]}.
    /// The answer is the one lists, counts and reads of that record give. `customer_id` is the
    /// earlier name of `record_id`.
    #[pyo3(signature = (action, entity, *, record_id = None, customer_id = None, user = None))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        action: &str,
        entity: &str,
        record_id: Option<&Bound<'_, PyAny>>,
        customer_id: Option<&Bound<'_, PyAny>>,
        user: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let action: guanxi::Action = parse_name("action", action)?;
        let entity: EntityKind = parse_name("entity", entity)?;
        if record_id.is_some() && customer_id.is_some() {
            return Err(invalid_arg("customer_id", "give record_id or customer_id, not both"));
        }
        let record = record_id.or(customer_id).map(|v| crate::convert::uuid_from(v, "record_id")).transpose()?;
        let user = match user {
            Some(u) => guanxi::UserId::new(u).map_err(to_py)?,
            None => self.actor.user_id().clone(),
        };
        let d = self.run(py, |c, a| c.access().explain(a, &user, action, entity, record))?;
        json_to_py(py, &serde_json::to_value(d).map_err(|e| GuanxiError::new_err(e.to_string()))?)
    }

    /// Re-encrypts every sensitive field under a new 32-byte key; returns how many records
    /// were rewritten. Needs elevation.
    fn rotate_field_key(&self, py: Python<'_>, key: Vec<u8>) -> PyResult<u64> {
        self.run(py, |c, a| c.access().rotate_field_key(a, &key))
    }

    /// Customer operations.
    #[getter]
    fn customers(slf: Py<Self>) -> Customers {
        Customers { crm: slf }
    }

    /// Sales operations: pipelines, opportunities, leads, tasks, the sales report.
    #[getter]
    fn sales(slf: Py<Self>) -> sales::Sales {
        sales::Sales { crm: slf }
    }

    /// Duplicates: the check on create, the scan, not-duplicate marks, merge and undo.
    #[getter]
    fn duplicates(slf: Py<Self>) -> dedup::Duplicates {
        dedup::Duplicates { crm: slf }
    }

    /// Files: import templates, import, streamed export.
    #[getter]
    fn files(slf: Py<Self>) -> dedup::Files {
        dedup::Files { crm: slf }
    }

    /// Service operations: tickets, SLAs, the knowledge base, the service report.
    #[getter]
    fn service(slf: Py<Self>) -> service::Service {
        service::Service { crm: slf }
    }

    /// Closes this handle (the database closes when its last handle does).
    fn close(&self) -> PyResult<()> {
        *self.inner.write().map_err(|_| GuanxiError::new_err("handle lock poisoned"))? = None;
        Ok(())
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.read().map(|i| i.is_none()).unwrap_or(true)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close()?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("Crm(user={}, closed={})", q(self.user()), if self.closed() { "True" } else { "False" })
    }

    /// Calls `callback(event: dict)` after every committed change; returns an id for `unsubscribe`.
    fn subscribe(&self, callback: Py<PyAny>) -> PyResult<u64> {
        let inner = self.inner()?;
        let id = inner.crm.subscribe(move |event| {
            Python::attach(|py| {
                let delivered = event_to_py(py, event).and_then(|e| callback.call1(py, (e,)));
                if let Err(err) = delivered {
                    // A failing listener must not break the write that already committed.
                    err.write_unraisable(py, None);
                }
            })
        });
        Ok(id.get())
    }

    /// Stops a subscription; False if it was not active.
    fn unsubscribe(&self, id: u64) -> PyResult<bool> {
        let inner = self.inner()?;
        Ok(inner.crm.unsubscribe(SubscriptionId::from_raw(id)))
    }

    /// Defines a custom field of `entity` ("customer" or "contact").
    #[pyo3(signature = (entity, key, label, field_type, *, required = false, allowed_values = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn define_custom_field(
        &self,
        py: Python<'_>,
        entity: &str,
        key: &str,
        label: &str,
        field_type: &str,
        required: bool,
        allowed_values: Option<Vec<String>>,
    ) -> PyResult<CustomField> {
        let entity: EntityKind = parse_name("entity", entity)?;
        let mut def = CustomFieldDef::new(entity, key, label, parse_name("field_type", field_type)?);
        def.required = required;
        def.allowed_values = allowed_values.unwrap_or_default();
        self.run(py, |crm, actor| crm.custom_fields().create(actor, def)).map(CustomField)
    }

    /// Defines a tag (or moves it to another group).
    #[pyo3(signature = (name, group = None))]
    fn define_tag(&self, py: Python<'_>, name: &str, group: Option<&str>) -> PyResult<Tag> {
        self.run(py, |crm, actor| crm.tags().create(actor, name, group)).map(Tag)
    }

    /// The custom fields of "customer" or "contact".
    #[pyo3(signature = (entity = "customer"))]
    fn custom_fields(&self, py: Python<'_>, entity: &str) -> PyResult<Vec<CustomField>> {
        let entity: EntityKind = parse_name("entity", entity)?;
        Ok(self.run(py, |crm, actor| crm.custom_fields().list(actor, entity))?.into_iter().map(CustomField).collect())
    }

    /// Every tag, by group then name.
    fn tags(&self, py: Python<'_>) -> PyResult<Vec<Tag>> {
        Ok(self.run(py, |crm, actor| crm.tags().list(actor))?.into_iter().map(Tag).collect())
    }

    /// Checks the change log's hash chain (edits, removals, insertions, reordering).
    fn verify_audit(&self, py: Python<'_>) -> PyResult<AuditCheck> {
        self.run(py, |crm, actor| crm.audit().verify(actor)).map(AuditCheck)
    }

    /// Writes a consistent online backup to the new file `path`; returns the copy's audit check.
    fn backup(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<AuditCheck> {
        self.run(py, |crm, actor| crm.files().backup(actor, &path)).map(AuditCheck)
    }

    /// Restores a backup into `into` after checking its audit chain (a broken one is refused).
    /// `into` is a new SQLite file or a PostgreSQL connection string (its guanxi schema must
    /// hold no data yet); `field_key` reads a backup whose fields are encrypted.
    #[staticmethod]
    #[pyo3(signature = (backup, into, *, field_key = None))]
    fn restore(
        py: Python<'_>,
        backup: std::path::PathBuf,
        into: std::path::PathBuf,
        field_key: Option<Vec<u8>>,
    ) -> PyResult<AuditCheck> {
        let key = field_key.map(|k| guanxi::FieldKey::from_bytes(&k)).transpose().map_err(to_py)?;
        py.detach(|| Crm::restore_with_key(&backup, &into, key)).map(AuditCheck).map_err(to_py)
    }

    /// Change-log entries (who, when, entity, field changes), oldest first.
    #[pyo3(signature = (*, entity_id = None, customer_id = None, user = None, after_seq = None, limit = None))]
    fn change_log(
        &self,
        py: Python<'_>,
        entity_id: Option<String>,
        customer_id: Option<&Bound<'_, PyAny>>,
        user: Option<&str>,
        after_seq: Option<&Bound<'_, PyAny>>,
        limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Vec<ChangeLogEntry>> {
        let after_seq: Option<u64> = crate::convert::opt_int_arg(after_seq, "after_seq")?;
        let limit: Option<usize> = crate::convert::opt_int_arg(limit, "limit")?;
        let query = guanxi::ChangeLogQuery {
            entity_id,
            customer_id: customer_id.map(customer_id_from).transpose()?,
            actor: user.map(guanxi::UserId::new).transpose().map_err(to_py)?,
            after_seq,
            limit,
            ..Default::default()
        };
        Ok(self.run(py, |crm, actor| crm.audit().entries(actor, &query))?.into_iter().map(ChangeLogEntry).collect())
    }
}

/// Customer operations of a `Crm` (`crm.customers`).
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Customers {
    crm: Py<PyCrm>,
}

#[pymethods]
impl Customers {
    /// Creates a customer (with contacts given as dicts) and returns it.
    #[pyo3(signature = (name, **fields))]
    fn create(&self, py: Python<'_>, name: &str, fields: Option<&Bound<'_, PyDict>>) -> PyResult<Customer> {
        let input = new_customer(name, fields)?;
        let crm = self.crm.get();
        crm.run(py, |c, a| c.customers().create(a, input)).map(Customer)
    }

    /// Creates many customers in one transaction: all or none. Each row is a dict of `create`'s arguments.
    fn create_many(&self, py: Python<'_>, rows: &Bound<'_, PyAny>) -> PyResult<Vec<Customer>> {
        let mut inputs: Vec<NewCustomer> = Vec::new();
        for row in rows.try_iter()? {
            let row = row?;
            let row = row.cast::<PyDict>()?;
            let name: String = row.get_item("name")?.ok_or_else(|| missing("name"))?.extract()?;
            let rest = row.copy()?;
            rest.del_item("name")?;
            inputs.push(new_customer(&name, Some(&rest))?);
        }
        let crm = self.crm.get();
        Ok(crm.run(py, |c, a| c.customers().create_many(a, inputs))?.into_iter().map(Customer).collect())
    }

    /// A customer by id (UUID or str).
    fn get(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Customer> {
        let id = customer_id_from(id)?;
        self.crm.get().run(py, |c, a| c.customers().get(a, id)).map(Customer)
    }

    /// A customer by its code, e.g. "C20240501001".
    fn get_by_code(&self, py: Python<'_>, code: &str) -> PyResult<Customer> {
        self.crm.get().run(py, |c, a| c.customers().get_by_code(a, code)).map(Customer)
    }

    /// Changes fields of the customer whose current version is `version`; a stale version
    /// raises ConflictError. Pass None to clear an optional field; `custom={"k": None}` removes a value.
    #[pyo3(signature = (id, version, **changes))]
    fn update(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        changes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Customer> {
        let version: u64 = crate::convert::int_arg(version, "version")?;
        let id = customer_id_from(id)?;
        let patch = customer_patch(changes)?;
        self.crm.get().run(py, |c, a| c.customers().update(a, id, version, patch)).map(Customer)
    }

    /// Soft-deletes a customer.
    fn delete(&self, py: Python<'_>, id: &Bound<'_, PyAny>, version: u64) -> PyResult<Customer> {
        let id = customer_id_from(id)?;
        self.crm.get().run(py, |c, a| c.customers().delete(a, id, version)).map(Customer)
    }

    /// Restores a soft-deleted customer.
    fn restore(&self, py: Python<'_>, id: &Bound<'_, PyAny>, version: u64) -> PyResult<Customer> {
        let id = customer_id_from(id)?;
        self.crm.get().run(py, |c, a| c.customers().restore(a, id, version)).map(Customer)
    }

    /// Every customer matching the keyword filters, as a table that converts to pyarrow,
    /// polars or pandas without per-row Python objects (and iterates as Customer objects).
    #[pyo3(signature = (**filters))]
    fn list(&self, py: Python<'_>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<arrow::CustomerTable> {
        let filter = customer_filter(filters)?;
        let (rows, fields) = self.crm.get().run(py, |c, a| {
            Ok((c.customers().list_all(a, &filter)?, c.custom_fields().list(a, EntityKind::Customer)?))
        })?;
        Ok(arrow::CustomerTable::new(rows, fields))
    }

    /// Exports every customer matching the keyword filters that the user may export (masked as
    /// their field rules say, logged); needs elevation when access control is on.
    #[pyo3(signature = (**filters))]
    fn export(&self, py: Python<'_>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<arrow::CustomerTable> {
        let filter = customer_filter(filters)?;
        let (rows, fields) = self.crm.get().run(py, |c, a| {
            Ok((c.customers().export(a, &filter)?, c.custom_fields().list(a, EntityKind::Customer)?))
        })?;
        Ok(arrow::CustomerTable::new(rows, fields))
    }

    /// The live contacts with this phone number the user may read (the duplicate check).
    fn find_contacts_by_phone(&self, py: Python<'_>, phone: &str) -> PyResult<Vec<Contact>> {
        Ok(self.crm.get().run(py, |c, a| c.contacts().find_by_phone(a, phone))?.into_iter().map(Contact).collect())
    }

    /// The live contacts with this resident identity number the user may read.
    fn find_contacts_by_id_number(&self, py: Python<'_>, id_number: &str) -> PyResult<Vec<Contact>> {
        let found = self.crm.get().run(py, |c, a| c.contacts().find_by_id_number(a, id_number))?;
        Ok(found.into_iter().map(Contact).collect())
    }

    /// How many customers match the keyword filters.
    #[pyo3(signature = (**filters))]
    fn count(&self, py: Python<'_>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<u64> {
        let filter = customer_filter(filters)?;
        self.crm.get().run(py, |c, a| c.customers().count(a, &filter))
    }

    /// Adds a tag (created if new).
    fn add_tag(&self, py: Python<'_>, id: &Bound<'_, PyAny>, tag: &str) -> PyResult<Customer> {
        let id = customer_id_from(id)?;
        self.crm.get().run(py, |c, a| c.tags().add(a, id, tag)).map(Customer)
    }

    /// Removes a tag.
    fn remove_tag(&self, py: Python<'_>, id: &Bound<'_, PyAny>, tag: &str) -> PyResult<Customer> {
        let id = customer_id_from(id)?;
        self.crm.get().run(py, |c, a| c.tags().remove(a, id, tag)).map(Customer)
    }

    /// Adds a contact; the first is primary, or pass primary=True.
    #[pyo3(signature = (id, name, **fields))]
    fn add_contact(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        name: &str,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Contact> {
        let id = customer_id_from(id)?;
        let input = new_contact(name, fields)?;
        self.crm.get().run(py, |c, a| c.contacts().create(a, id, input)).map(Contact)
    }

    /// Changes fields of a contact whose current version is `version` (name, title, phones,
    /// emails, id_number, role, do_not_contact, custom); None clears title, id_number or role.
    #[pyo3(signature = (contact_id, version, **changes))]
    fn update_contact(
        &self,
        py: Python<'_>,
        contact_id: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        changes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Contact> {
        let version: u64 = crate::convert::int_arg(version, "version")?;
        let id = contact_id_from(contact_id)?;
        let patch = contact_patch(changes)?;
        self.crm.get().run(py, |c, a| c.contacts().update(a, id, version, patch)).map(Contact)
    }

    /// Makes a contact its customer's primary contact.
    fn set_primary_contact(&self, py: Python<'_>, contact_id: &Bound<'_, PyAny>) -> PyResult<Contact> {
        let id = contact_id_from(contact_id)?;
        self.crm.get().run(py, |c, a| c.contacts().set_primary(a, id)).map(Contact)
    }

    /// Removes a contact (the oldest remaining one becomes primary if it was).
    fn remove_contact(&self, py: Python<'_>, contact_id: &Bound<'_, PyAny>, version: u64) -> PyResult<()> {
        let id = contact_id_from(contact_id)?;
        self.crm.get().run(py, |c, a| c.contacts().delete(a, id, version))
    }

    /// The live contacts of a customer, primary first.
    fn contacts(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Vec<Contact>> {
        let id = customer_id_from(id)?;
        Ok(self.crm.get().run(py, |c, a| c.contacts().list(a, id))?.into_iter().map(Contact).collect())
    }

    /// Logs an interaction ("call", "visit", "email", "meeting", "message", "other").
    #[pyo3(signature = (id, kind, content, *, at = None, contact_id = None, next_step = None, next_contact_on = None, feedback = None))]
    #[allow(clippy::too_many_arguments)]
    fn log_interaction(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        kind: &str,
        content: String,
        at: Option<chrono::DateTime<chrono::Utc>>,
        contact_id: Option<&Bound<'_, PyAny>>,
        next_step: Option<String>,
        next_contact_on: Option<chrono::NaiveDate>,
        feedback: Option<String>,
    ) -> PyResult<Interaction> {
        let id = customer_id_from(id)?;
        let mut input = NewInteraction::new(parse_name("kind", kind)?, content);
        input.at = at;
        input.contact_id = contact_id.map(contact_id_from).transpose()?;
        input.next_step = next_step;
        input.next_contact_on = next_contact_on;
        input.feedback = feedback;
        self.crm.get().run(py, |c, a| c.interactions().create(a, id, input)).map(Interaction)
    }

    /// The interactions of a customer, oldest first.
    fn interactions(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Vec<Interaction>> {
        let id = customer_id_from(id)?;
        Ok(self.crm.get().run(py, |c, a| c.interactions().list(a, id))?.into_iter().map(Interaction).collect())
    }

    /// The customer's timeline, oldest first: dicts with "at", "type" ("change" or
    /// "interaction") and the entry's fields.
    fn timeline<'py>(&self, py: Python<'py>, id: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let id = customer_id_from(id)?;
        let entries = self.crm.get().run(py, |c, a| c.customers().timeline(a, id))?;
        let out = PyList::empty(py);
        for e in entries {
            out.append(timeline_entry_to_py(py, e)?)?;
        }
        Ok(out)
    }
}

fn missing(field: &str) -> PyErr {
    errors::validation_error(vec![guanxi::FieldError::new(field, guanxi::ValidationReason::Required)])
}

/// Keyword filters → `CustomerFilter`.
pub(crate) fn customer_filter(filters: Option<&Bound<'_, PyDict>>) -> PyResult<CustomerFilter> {
    let mut f = CustomerFilter::default();
    let Some(filters) = filters else { return Ok(f) };
    for (key, value) in filters.iter() {
        let key: String = key.extract()?;
        if value.is_none() {
            continue;
        }
        match key.as_str() {
            "status" => f.status = Some(parse_name("status", &value.extract::<String>()?)?),
            "kind" => f.kind = Some(parse_name("kind", &value.extract::<String>()?)?),
            "level" => f.level = Some(parse_name("level", &value.extract::<String>()?)?),
            "industry" => f.industry = Some(parse_name("industry", &value.extract::<String>()?)?),
            "size" => f.size = Some(parse_name("size", &value.extract::<String>()?)?),
            "owner" => f.owner = Some(guanxi::UserId::new(value.extract::<String>()?).map_err(to_py)?),
            "department" => f.department = Some(guanxi::DepartmentId::new(value.extract::<String>()?).map_err(to_py)?),
            "tag" => f = f.tag(&value.extract::<String>()?),
            "tags" => {
                for t in value.extract::<Vec<String>>()? {
                    f = f.tag(&t);
                }
            }
            "province" => f = f.province(&value.extract::<String>()?),
            "city" => f = f.city(&value.extract::<String>()?),
            "district" => f.district = Some(guanxi::normalize::fold_text(&value.extract::<String>()?)),
            "name_contains" => f.name_contains = Some(value.extract()?),
            "deleted" => {
                f.deleted = match value.extract::<String>()?.as_str() {
                    "exclude" => guanxi::Deleted::Exclude,
                    "only" => guanxi::Deleted::Only,
                    "include" => guanxi::Deleted::Include,
                    other => return Err(invalid_arg("deleted", &format!("'{other}' is not exclude/only/include"))),
                }
            }
            "custom" => {
                let d = value.cast::<PyDict>()?;
                for (k, v) in d.iter() {
                    f.custom.push(guanxi::CustomFilter::new(
                        k.extract::<String>()?,
                        custom_value_from(&v, &k.to_string())?,
                    ));
                }
            }
            other => return Err(invalid_arg(other, "is not a customer filter")),
        }
    }
    Ok(f)
}

/// A patch value for an optional text field: None clears it.
fn opt_text(v: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    if v.is_none() { Ok(None) } else { v.extract().map(Some) }
}

/// `custom={"key": value or None}` in a patch: None removes the value.
fn custom_patch(value: &Bound<'_, PyAny>) -> PyResult<BTreeMap<String, Option<guanxi::CustomValue>>> {
    let mut out = BTreeMap::new();
    for (k, v) in value.cast::<PyDict>()?.iter() {
        let k: String = k.extract()?;
        let v = if v.is_none() { None } else { Some(custom_value_from(&v, &k)?) };
        out.insert(k, v);
    }
    Ok(out)
}

fn contact_id_from(v: &Bound<'_, PyAny>) -> PyResult<ContactId> {
    uuid_from(v, "contact_id").map(ContactId)
}

fn contact_patch(changes: Option<&Bound<'_, PyDict>>) -> PyResult<guanxi::ContactPatch> {
    let mut p = guanxi::ContactPatch::default();
    let Some(changes) = changes else { return Ok(p) };
    for (key, value) in changes.iter() {
        let key: String = key.extract()?;
        match key.as_str() {
            "name" => p.name = Some(value.extract()?),
            "title" => p.title = Some(opt_text(&value)?),
            "phones" => p.phones = Some(value.extract()?),
            "emails" => p.emails = Some(value.extract()?),
            "id_number" => p.id_number = Some(opt_text(&value)?),
            "role" => p.role = Some(opt_text(&value)?.map(|r| parse_name("role", &r)).transpose()?),
            "do_not_contact" => p.do_not_contact = Some(value.extract()?),
            "custom" => p.custom = custom_patch(&value)?,
            other => return Err(invalid_arg(other, "is not a contact field")),
        }
    }
    Ok(p)
}

fn customer_patch(changes: Option<&Bound<'_, PyDict>>) -> PyResult<CustomerPatch> {
    let mut p = CustomerPatch::default();
    let Some(changes) = changes else { return Ok(p) };
    let mut region: Option<(Option<String>, Option<String>, Option<String>)> = None;
    for (key, value) in changes.iter() {
        let key: String = key.extract()?;
        match key.as_str() {
            "name" => p.name = Some(value.extract()?),
            "kind" => p.kind = Some(parse_name("kind", &value.extract::<String>()?)?),
            "status" => p.status = Some(parse_name("status", &value.extract::<String>()?)?),
            "industry" => p.industry = Some(opt_text(&value)?.map(|v| parse_name("industry", &v)).transpose()?),
            "size" => p.size = Some(opt_text(&value)?.map(|v| parse_name("size", &v)).transpose()?),
            "level" => p.level = Some(opt_text(&value)?.map(|v| parse_name("level", &v)).transpose()?),
            "source" => p.source = Some(opt_text(&value)?),
            "address" => p.address = Some(opt_text(&value)?),
            "owner" => p.owner = Some(opt_text(&value)?.map(guanxi::UserId::new).transpose().map_err(to_py)?),
            "department" => {
                p.department = Some(opt_text(&value)?.map(guanxi::DepartmentId::new).transpose().map_err(to_py)?)
            }
            "province" | "city" | "district" => {
                let r = region.get_or_insert((None, None, None));
                let v = opt_text(&value)?;
                match key.as_str() {
                    "province" => r.0 = v,
                    "city" => r.1 = v,
                    _ => r.2 = v,
                }
            }
            "custom" => p.custom = custom_patch(&value)?,
            other => return Err(invalid_arg(other, "is not a customer field")),
        }
    }
    if let Some((province, city, district)) = region {
        p.region = Some(province.map(|province| guanxi::Region {
            province,
            city: city.unwrap_or_default(),
            district: district.unwrap_or_default(),
        }));
    }
    Ok(p)
}

fn totp(secret: &str, digits: u8, algorithm: &str) -> PyResult<guanxi::auth::Totp> {
    let algorithm = match algorithm.to_ascii_lowercase().as_str() {
        "sha1" => guanxi::auth::TotpAlgorithm::Sha1,
        "sha256" => guanxi::auth::TotpAlgorithm::Sha256,
        "sha512" => guanxi::auth::TotpAlgorithm::Sha512,
        other => return Err(invalid_arg("algorithm", &format!("'{other}' is not sha1, sha256 or sha512"))),
    };
    guanxi::auth::Totp::from_base32(secret, algorithm, digits).map_err(to_py)
}

/// Hashes a password with argon2id into a PHC string (salted; the GIL is released).
#[pyfunction]
fn hash_password(py: Python<'_>, password: &str) -> PyResult<String> {
    py.detach(|| guanxi::auth::hash_password(password)).map_err(to_py)
}

/// Whether a password matches a PHC hash from `hash_password`.
#[pyfunction]
fn verify_password(py: Python<'_>, password: &str, password_hash: &str) -> PyResult<bool> {
    py.detach(|| guanxi::auth::verify_password(password, password_hash)).map_err(to_py)
}

/// A new random TOTP secret, base32 (for authenticator apps).
#[pyfunction]
fn generate_totp_secret() -> String {
    guanxi::auth::Totp::generate_secret()
}

/// The RFC 6238 code for the 30-second step containing `at`.
#[pyfunction]
#[pyo3(signature = (secret, at, *, digits = 6, algorithm = "sha1"))]
fn totp_code(secret: &str, at: chrono::DateTime<chrono::Utc>, digits: u8, algorithm: &str) -> PyResult<String> {
    Ok(totp(secret, digits, algorithm)?.code_at(at))
}

/// Whether `code` is right at `at`, allowing `drift_steps` steps of clock drift either way.
#[pyfunction]
#[pyo3(signature = (secret, code, at, *, digits = 6, algorithm = "sha1", drift_steps = 1))]
fn verify_totp(
    secret: &str,
    code: &str,
    at: chrono::DateTime<chrono::Utc>,
    digits: u8,
    algorithm: &str,
    drift_steps: u8,
) -> PyResult<bool> {
    Ok(totp(secret, digits, algorithm)?.verify(code, at, drift_steps))
}

/// A fresh random 32-byte key for field encryption (keep it in the platform keychain).
#[pyfunction]
fn generate_field_key() -> Vec<u8> {
    guanxi::FieldKey::generate().as_bytes().to_vec()
}

/// The native module `guanxi._guanxi`; the `guanxi` package re-exports it.
#[pymodule]
fn _guanxi(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCrm>()?;
    m.add_class::<Customers>()?;
    m.add_class::<dedup::Duplicates>()?;
    m.add_class::<dedup::Files>()?;
    m.add_class::<dedup::ScanResult>()?;
    m.add_class::<dedup::ImportReport>()?;
    m.add_class::<Customer>()?;
    m.add_class::<Contact>()?;
    m.add_class::<Interaction>()?;
    m.add_class::<Tag>()?;
    m.add_class::<CustomField>()?;
    m.add_class::<ChangeLogEntry>()?;
    m.add_class::<errors::FieldError>()?;
    m.add_class::<AuditCheck>()?;
    m.add_class::<arrow::CustomerTable>()?;
    m.add_function(wrap_pyfunction!(hash_password, m)?)?;
    m.add_function(wrap_pyfunction!(verify_password, m)?)?;
    m.add_function(wrap_pyfunction!(generate_totp_secret, m)?)?;
    m.add_function(wrap_pyfunction!(totp_code, m)?)?;
    m.add_function(wrap_pyfunction!(verify_totp, m)?)?;
    m.add_function(wrap_pyfunction!(generate_field_key, m)?)?;
    sales::register(m)?;
    service::register(m)?;
    errors::register(m)?;
    Ok(())
}

/// A Python callable `(user: str, proof: str) -> bool` as the host's elevation verifier.
#[derive(Debug)]
struct PyVerifier(Py<PyAny>);

impl guanxi::ElevationVerifier for PyVerifier {
    fn verify(&self, user: &guanxi::UserId, proof: &str) -> guanxi::Result<bool> {
        Python::attach(|py| {
            self.0
                .call1(py, (user.as_str(), proof))
                .and_then(|r| r.extract::<bool>(py))
                .map_err(|e| guanxi::Error::InvalidState(format!("the elevation verifier failed: {e}")))
        })
    }
}

fn elevation_options(
    builder: guanxi::CrmBuilder,
    trust_asserted: bool,
    verifier: Option<Py<PyAny>>,
) -> guanxi::CrmBuilder {
    let builder = builder.trust_asserted_elevation(trust_asserted);
    match verifier {
        Some(v) => builder.elevation_verifier(Arc::new(PyVerifier(v))),
        None => builder,
    }
}
