//! Python bindings of guanxi: conversions only. Every method converts its arguments, releases
//! the GIL around one call of the `Crm` facade, and converts the result back.
#![allow(unreachable_pub)] // pyo3 classes are reached through the Python module, not Rust paths.

mod access;
mod analytics;
mod arrow;
mod commerce;
mod convert;
mod customers;
mod dedup;
mod errors;
mod marketing;
mod match_rules;
mod repr;
mod sales;
mod service;
mod vocab;

use std::sync::{Arc, RwLock};

use guanxi::{Actor, Crm, SubscriptionId};
use pyo3::prelude::*;

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
    /// The same handle acting as `actor`.
    fn with_actor(&self, actor: Actor) -> PyResult<Self> {
        Ok(PyCrm { inner: RwLock::new(Some(self.inner()?)), actor })
    }

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
    /// `durability` is SQLite's commit durability: "full" (the default: a commit is on disk when
    /// it returns) or "normal" (survives a crash of the application; the last commits may be
    /// lost on power failure, the file never corrupted; faster writes). PostgreSQL keeps the
    /// server's own.
    #[staticmethod]
    #[pyo3(signature = (path, *, user, field_key = None, durability = "full", trust_asserted_elevation = false, elevation_verifier = None, level_rule = None))]
    #[allow(clippy::too_many_arguments)] // the keyword arguments of one Python call
    fn open(
        py: Python<'_>,
        path: std::path::PathBuf,
        user: &str,
        field_key: Option<Vec<u8>>,
        durability: &str,
        trust_asserted_elevation: bool,
        elevation_verifier: Option<Py<PyAny>>,
        level_rule: Option<LevelRule>,
    ) -> PyResult<Self> {
        let key = field_key.map(|k| guanxi::FieldKey::from_bytes(&k)).transpose().map_err(to_py)?;
        let durability = match durability {
            "full" => guanxi::Durability::Full,
            "normal" => guanxi::Durability::Normal,
            other => {
                let reason = guanxi::ValidationReason::NotAllowed {
                    value: other.to_owned(),
                    allowed: vec!["full".into(), "normal".into()],
                };
                return Err(to_py(guanxi::Error::invalid("durability", reason)));
            }
        };
        let location = path.to_string_lossy().into_owned();
        let store = py.detach(|| guanxi::open_store(&location, key, durability)).map_err(to_py)?;
        let builder = with_level_rule(Crm::builder().store(store), level_rule);
        Self::wrap(elevation_options(builder, trust_asserted_elevation, elevation_verifier).build(), user)
    }

    /// A CRM kept in memory, acting as `user`. Elevation options and `level_rule` as for `open`.
    #[staticmethod]
    #[pyo3(signature = (*, user, trust_asserted_elevation = false, elevation_verifier = None, level_rule = None))]
    fn in_memory(
        user: &str,
        trust_asserted_elevation: bool,
        elevation_verifier: Option<Py<PyAny>>,
        level_rule: Option<LevelRule>,
    ) -> PyResult<Self> {
        let builder = with_level_rule(Crm::builder(), level_rule);
        Self::wrap(elevation_options(builder, trust_asserted_elevation, elevation_verifier).build(), user)
    }

    /// The acting user.
    #[getter]
    fn user(&self) -> &str {
        self.actor.user_id().as_str()
    }

    /// The same CRM acting as another user.
    fn as_user(&self, user: &str) -> PyResult<Self> {
        self.with_actor(Actor::user(user).map_err(to_py)?)
    }

    /// The same CRM acting as the same user, with an elevation the host *asserts* until `until`
    /// (a UTC datetime). It counts only in a CRM opened with `trust_asserted_elevation=True`
    /// (a host that re-verifies users itself); otherwise use `elevate`.
    fn elevated(&self, until: chrono::DateTime<chrono::Utc>) -> PyResult<Self> {
        self.with_actor(self.actor.clone().elevated_until(until))
    }

    /// Customers: create, get, list (paged), count, update, delete, restore, timeline.
    #[getter]
    fn customers(slf: Py<Self>) -> customers::Customers {
        customers::Customers { crm: slf }
    }

    /// Tags: define them, put them on customers and take them off.
    #[getter]
    fn tags(slf: Py<Self>) -> customers::Tags {
        customers::Tags { crm: slf }
    }

    /// Contacts: the people of each customer.
    #[getter]
    fn contacts(slf: Py<Self>) -> customers::Contacts {
        customers::Contacts { crm: slf }
    }

    /// Interactions: calls, visits and other follow-ups.
    #[getter]
    fn interactions(slf: Py<Self>) -> customers::Interactions {
        customers::Interactions { crm: slf }
    }

    /// Custom fields of customers and contacts.
    #[getter]
    fn custom_fields(slf: Py<Self>) -> customers::CustomFields {
        customers::CustomFields { crm: slf }
    }

    /// Sales: pipelines, lead rules, the sales report, the agenda; `.opportunities`, `.leads`, `.tasks`.
    #[getter]
    fn sales(slf: Py<Self>) -> sales::Sales {
        sales::Sales { crm: slf }
    }

    /// Marketing: `.events` (behaviour events) and `.segments`.
    #[getter]
    fn marketing(slf: Py<Self>) -> marketing::Marketing {
        marketing::Marketing { crm: slf }
    }

    /// Analytics: purchase summaries, RFM and lifetime value over the purchases the user may read.
    #[getter]
    fn analytics(slf: Py<Self>) -> analytics::Analytics {
        analytics::Analytics { crm: slf }
    }

    /// Commerce: the product catalog (`.products`) and purchases (`.purchases`).
    #[getter]
    fn commerce(slf: Py<Self>) -> commerce::Commerce {
        commerce::Commerce { crm: slf }
    }

    /// Service: settings, SLA overview, the service report; `.tickets`.
    #[getter]
    fn service(slf: Py<Self>) -> service::Service {
        service::Service { crm: slf }
    }

    /// The knowledge base: articles, search, suggestions for a ticket.
    #[getter]
    fn kb(slf: Py<Self>) -> service::KnowledgeBase {
        service::KnowledgeBase { crm: slf }
    }

    /// Duplicates: match rules, the check, the scan, not-duplicate marks, merge and undo.
    #[getter]
    fn duplicates(slf: Py<Self>) -> dedup::Duplicates {
        dedup::Duplicates { crm: slf }
    }

    /// Files: import templates, import, streamed export, backups.
    #[getter]
    fn files(slf: Py<Self>) -> dedup::Files {
        dedup::Files { crm: slf }
    }

    /// Access: departments, users, roles, credentials, elevation, explain, the field key.
    #[getter]
    fn access(slf: Py<Self>) -> access::Access {
        access::Access { crm: slf }
    }

    /// Audit: the change log and the check of its hash chain.
    #[getter]
    fn audit(slf: Py<Self>) -> access::Audit {
        access::Audit { crm: slf }
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

    #[pyo3(signature = (_exc_type, _exc, _tb, /))]
    fn __exit__(
        &self,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
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
/// Every closed vocabulary with its stable names, in declaration order: what `guanxi.fields`
/// declares as enums (checked by the tests), and what a form or a validation layer can offer.
#[pyfunction]
fn vocabularies() -> std::collections::BTreeMap<&'static str, Vec<&'static str>> {
    fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
        all.iter().map(|v| name(*v)).collect()
    }
    use guanxi::sales::{LeadGrade, LeadStatus, ProbabilitySource, StageKind};
    use guanxi::service::{Channel, Period, Priority, TicketKind, TicketStatus};
    std::collections::BTreeMap::from([
        ("Action", names(guanxi::Action::ALL, guanxi::Action::as_str)),
        ("ChangeAction", names(guanxi::ChangeAction::ALL, guanxi::ChangeAction::as_str)),
        ("Channel", names(Channel::ALL, Channel::as_str)),
        ("CustomerKind", names(guanxi::CustomerKind::ALL, guanxi::CustomerKind::as_str)),
        ("DecisionRole", names(guanxi::DecisionRole::ALL, guanxi::DecisionRole::as_str)),
        ("EntityKind", names(&guanxi::EntityKind::ALL, guanxi::EntityKind::as_str)),
        ("FieldType", names(&guanxi::FieldType::ALL, guanxi::FieldType::as_str)),
        ("IdScheme", names(&guanxi::IdScheme::ALL, guanxi::IdScheme::as_str)),
        ("Industry", names(guanxi::Industry::ALL, guanxi::Industry::as_str)),
        ("InteractionKind", names(guanxi::InteractionKind::ALL, guanxi::InteractionKind::as_str)),
        ("LeadGrade", names(LeadGrade::ALL, LeadGrade::as_str)),
        ("LeadStatus", names(LeadStatus::ALL, LeadStatus::as_str)),
        ("Level", names(guanxi::Level::ALL, guanxi::Level::as_str)),
        ("LifecycleStatus", names(guanxi::LifecycleStatus::ALL, guanxi::LifecycleStatus::as_str)),
        ("Period", names(Period::ALL, Period::as_str)),
        ("Priority", names(Priority::ALL, Priority::as_str)),
        ("ProbabilitySource", names(ProbabilitySource::ALL, ProbabilitySource::as_str)),
        ("Scope", names(guanxi::Scope::ALL, guanxi::Scope::as_str)),
        ("SizeBand", names(guanxi::SizeBand::ALL, guanxi::SizeBand::as_str)),
        ("StageKind", names(StageKind::ALL, StageKind::as_str)),
        ("TicketKind", names(TicketKind::ALL, TicketKind::as_str)),
        ("TicketStatus", names(TicketStatus::ALL, TicketStatus::as_str)),
        ("Visibility", names(guanxi::Visibility::ALL, guanxi::Visibility::as_str)),
    ])
}

#[pyfunction]
fn generate_field_key() -> Vec<u8> {
    guanxi::FieldKey::generate().as_bytes().to_vec()
}

/// The native module `guanxi._guanxi`; the `guanxi` package re-exports it.
#[pymodule]
fn _guanxi(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyCrm>()?;
    m.add_class::<analytics::Analytics>()?;
    m.add_class::<analytics::LifetimeValue>()?;
    m.add_class::<commerce::Commerce>()?;
    m.add_class::<commerce::Products>()?;
    m.add_class::<commerce::Purchases>()?;
    m.add_class::<commerce::Product>()?;
    m.add_class::<commerce::Purchase>()?;
    m.add_class::<commerce::SyncReport>()?;
    m.add_class::<dedup::CommerceImportReport>()?;
    m.add_class::<LevelRule>()?;
    m.add_class::<dedup::Duplicates>()?;
    m.add_class::<dedup::Files>()?;
    m.add_class::<dedup::ScanResult>()?;
    m.add_class::<dedup::ImportReport>()?;
    match_rules::register(m)?;
    m.add_class::<Customer>()?;
    m.add_class::<Contact>()?;
    m.add_class::<Interaction>()?;
    m.add_class::<Tag>()?;
    m.add_class::<CustomField>()?;
    m.add_class::<ChangeLogEntry>()?;
    m.add_class::<errors::FieldError>()?;
    m.add_class::<AuditCheck>()?;
    m.add_class::<arrow::Table>()?;
    m.add_function(wrap_pyfunction!(hash_password, m)?)?;
    m.add_function(wrap_pyfunction!(verify_password, m)?)?;
    m.add_function(wrap_pyfunction!(generate_totp_secret, m)?)?;
    m.add_function(wrap_pyfunction!(totp_code, m)?)?;
    m.add_function(wrap_pyfunction!(verify_totp, m)?)?;
    m.add_function(wrap_pyfunction!(generate_field_key, m)?)?;
    m.add_function(wrap_pyfunction!(vocabularies, m)?)?;
    customers::register(m)?;
    access::register(m)?;
    sales::register(m)?;
    service::register(m)?;
    marketing::register(m)?;
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

/// The rule that derives a customer's level (A/B/C) from a numeric custom field — by default
/// `spend_12m`, kept at the paid spend of the trailing twelve months in `currency` once
/// purchases are recorded: A from `a_min`, B from `b_min`, else C.
#[pyclass(module = "guanxi._guanxi", frozen, get_all, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct LevelRule {
    field: String,
    a_min: rust_decimal::Decimal,
    b_min: rust_decimal::Decimal,
    currency: String,
}

#[pymethods]
impl LevelRule {
    #[new]
    #[pyo3(signature = (*, field = "spend_12m".to_owned(), a_min = rust_decimal::Decimal::from(500_000), b_min = rust_decimal::Decimal::from(100_000), currency = "CNY".to_owned()))]
    fn new(field: String, a_min: rust_decimal::Decimal, b_min: rust_decimal::Decimal, currency: String) -> Self {
        LevelRule { field, a_min, b_min, currency }
    }

    fn __repr__(&self) -> String {
        format!(
            "LevelRule(field={:?}, a_min={}, b_min={}, currency={:?})",
            self.field, self.a_min, self.b_min, self.currency
        )
    }
}

fn with_level_rule(builder: guanxi::CrmBuilder, rule: Option<LevelRule>) -> guanxi::CrmBuilder {
    match rule {
        Some(r) => builder.level_rule(guanxi::LevelRule {
            field: r.field,
            a_min: r.a_min,
            b_min: r.b_min,
            currency: r.currency,
        }),
        None => builder,
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
