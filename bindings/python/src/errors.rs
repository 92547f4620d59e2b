//! The exception hierarchy, mirroring `guanxi::Error`, and the one mapping into it.

use guanxi::Error;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

use crate::repr::q;

create_exception!(guanxi._guanxi, GuanxiError, PyException, "Base class of every guanxi error.");
create_exception!(guanxi._guanxi, NotFoundError, GuanxiError, "No record with this id or code (or it was deleted).");
create_exception!(
    guanxi._guanxi,
    ValidationError,
    GuanxiError,
    "Input failed validation; `.errors` lists every FieldError, `.field` and `.reason` are the first's."
);
create_exception!(
    guanxi._guanxi,
    ConflictError,
    GuanxiError,
    "An update carried a stale version; nothing was written."
);
create_exception!(guanxi._guanxi, DuplicateError, GuanxiError, "A value that must be unique already exists.");
create_exception!(
    guanxi._guanxi,
    PermissionDeniedError,
    GuanxiError,
    "The acting user may not do this; `.action` names it."
);
create_exception!(
    guanxi._guanxi,
    ElevationRequiredError,
    PermissionDeniedError,
    "A sensitive operation needs an elevated handle (`crm.elevated(until)`); `.action` names it."
);
create_exception!(
    guanxi._guanxi,
    EncryptionError,
    GuanxiError,
    "Encrypted data could not be used: wrong or missing key, or corrupt data; `.kind` says which."
);
create_exception!(guanxi._guanxi, InvalidStateError, GuanxiError, "The operation does not fit the record's state.");
create_exception!(guanxi._guanxi, StorageError, GuanxiError, "The storage backend failed.");

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("GuanxiError", py.get_type::<GuanxiError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("ValidationError", py.get_type::<ValidationError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("DuplicateError", py.get_type::<DuplicateError>())?;
    m.add("PermissionDeniedError", py.get_type::<PermissionDeniedError>())?;
    m.add("InvalidStateError", py.get_type::<InvalidStateError>())?;
    m.add("ElevationRequiredError", py.get_type::<ElevationRequiredError>())?;
    m.add("EncryptionError", py.get_type::<EncryptionError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    Ok(())
}

/// A ValidationError carrying `.errors` (FieldError objects) and the first one's `.field` / `.reason`.
pub(crate) fn validation_error(errors: Vec<guanxi::FieldError>) -> PyErr {
    let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    let err = ValidationError::new_err(message);
    Python::attach(|py| {
        let first = errors.first().cloned();
        let objs: Vec<FieldError> = errors.into_iter().map(FieldError).collect();
        set_attr(py, &err, "errors", objs);
        set_attr(py, &err, "field", first.as_ref().map(|f| f.field.clone()));
        set_attr(py, &err, "reason", first.map(|f| f.reason.to_string()));
    });
    err
}

/// Sets an attribute of an exception about to be raised. Should that fail, Python reports the
/// failure as unraisable (printed, and seen by `sys.unraisablehook`): never dropped silently.
fn set_attr<'py, V: IntoPyObject<'py>>(py: Python<'py>, err: &PyErr, name: &str, value: V) {
    if let Err(e) = err.value(py).setattr(name, value) {
        e.write_unraisable(py, Some(err.value(py).as_any()));
    }
}

/// The one place guanxi errors become Python exceptions.
pub(crate) fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match e {
        Error::Validation(v) => validation_error(v.0),
        Error::NotFound { .. } => NotFoundError::new_err(message),
        Error::Conflict { expected, actual, .. } => {
            let err = ConflictError::new_err(message);
            Python::attach(|py| {
                set_attr(py, &err, "expected", expected);
                set_attr(py, &err, "actual", actual);
            });
            err
        }
        Error::Duplicate { .. } => DuplicateError::new_err(message),
        Error::PermissionDenied { action, .. } => {
            let err = PermissionDeniedError::new_err(message);
            Python::attach(|py| {
                set_attr(py, &err, "action", action);
            });
            err
        }
        Error::ElevationRequired { action, .. } => {
            let err = ElevationRequiredError::new_err(message);
            Python::attach(|py| {
                set_attr(py, &err, "action", action);
            });
            err
        }
        Error::Encryption(kind) => {
            let err = EncryptionError::new_err(message);
            let kind = match kind {
                guanxi::EncryptionError::WrongKey => "wrong_key",
                guanxi::EncryptionError::KeyRequired => "key_required",
                guanxi::EncryptionError::BadKeyLength(_) => "bad_key_length",
                _ => "corrupt",
            };
            Python::attach(|py| {
                set_attr(py, &err, "kind", kind);
            });
            err
        }
        Error::InvalidState(_) => InvalidStateError::new_err(message),
        Error::Storage(_) => StorageError::new_err(message),
        _ => GuanxiError::new_err(message),
    }
}

/// One failed field of a ValidationError.
#[pyclass(module = "guanxi._guanxi", frozen, eq)]
#[derive(PartialEq)]
pub struct FieldError(pub(crate) guanxi::FieldError);

#[pymethods]
impl FieldError {
    /// Path of the field, e.g. "name", "contacts[0].phones[1]", "custom.budget".
    #[getter]
    fn field(&self) -> &str {
        &self.0.field
    }
    /// Why, as a sentence.
    #[getter]
    fn reason(&self) -> String {
        self.0.reason.to_string()
    }
    /// For a value outside a vocabulary, the values that are allowed there (else empty).
    #[getter]
    fn allowed(&self) -> Vec<String> {
        self.0.reason.allowed().to_vec()
    }
    /// Why, as a stable code ("required", "invalid_phone", …).
    #[getter]
    fn code(&self) -> String {
        serde_json::to_value(&self.0.reason)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str().map(str::to_owned)))
            .unwrap_or_default()
    }
    fn __repr__(&self) -> String {
        format!("FieldError(field={}, reason={})", q(&self.0.field), q(&self.0.reason.to_string()))
    }
}
