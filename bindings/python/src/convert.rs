//! Conversions between Python values and guanxi's types, and the read-only record classes.

use std::collections::{BTreeMap, BTreeSet};

use guanxi::{CustomValue, CustomerId, TimelineEntry, TimelineItem, ValidationReason};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString};
use rust_decimal::Decimal;

use crate::errors::validation_error;
use crate::repr::{py_bool, q, q_opt};
use crate::vocab::Vocab;

/// Python's repr of a str (single quotes, like `repr()`), for the classes' `__repr__`.
pub(crate) fn invalid_arg(field: &str, detail: &str) -> PyErr {
    validation_error(vec![guanxi::FieldError::new(field, ValidationReason::Invalid { detail: detail.to_owned() })])
}

/// A user id from text, or a ValueError naming `field`.
pub(crate) fn user_id(field: &str, v: &str) -> PyResult<guanxi::UserId> {
    guanxi::UserId::new(v).map_err(|_| invalid_arg(field, "is not a valid user id"))
}

/// A user id as text.
pub(crate) fn user_str(u: &Option<guanxi::UserId>) -> Option<String> {
    u.as_ref().map(|u| u.as_str().to_owned())
}

/// Parses one of guanxi's vocabularies (status, kind, …) from its stable name or Chinese label.
pub(crate) fn parse_name<T: std::str::FromStr<Err = guanxi::UnknownName>>(field: &str, value: &str) -> PyResult<T> {
    value.parse().map_err(|e: guanxi::UnknownName| validation_error(vec![guanxi::FieldError::new(field, e.into())]))
}

pub(crate) fn uuid_from(v: &Bound<'_, PyAny>, field: &str) -> PyResult<uuid::Uuid> {
    if let Ok(u) = v.extract::<uuid::Uuid>() {
        return Ok(u);
    }
    let s: String = v.extract().map_err(|_| PyTypeError::new_err(format!("{field} must be a UUID or str")))?;
    uuid::Uuid::parse_str(&s).map_err(|_| invalid_arg(field, "is not a UUID"))
}

pub(crate) fn customer_id_from(v: &Bound<'_, PyAny>) -> PyResult<CustomerId> {
    uuid_from(v, "id").map(CustomerId)
}

/// A Python `int` as a Rust integer, or a validation error naming the field and the range
/// (never OverflowError, never a silent wrap): versions, limits, scores.
pub(crate) fn int_arg<T: TryFrom<i128> + Bounded>(v: &Bound<'_, PyAny>, field: &str) -> PyResult<T> {
    let range = || format!("must be an integer from {} to {}", T::MIN_I128, T::MAX_I128);
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(invalid_arg(field, &range()));
    }
    let wide: i128 = v.extract().map_err(|_| invalid_arg(field, &range()))?;
    T::try_from(wide).map_err(|_| invalid_arg(field, &range()))
}

/// [`int_arg`] for an optional argument.
pub(crate) fn opt_int_arg<T: TryFrom<i128> + Bounded>(
    v: Option<&Bound<'_, PyAny>>,
    field: &str,
) -> PyResult<Option<T>> {
    v.map(|v| int_arg(v, field)).transpose()
}

/// The bounds of an integer type, for messages.
pub(crate) trait Bounded {
    const MIN_I128: i128;
    const MAX_I128: i128;
}

macro_rules! bounded {
    ($($t:ty),*) => {$(
        impl Bounded for $t {
            const MIN_I128: i128 = <$t>::MIN as i128;
            const MAX_I128: i128 = <$t>::MAX as i128;
        }
    )*};
}
bounded!(u8, u16, u32, u64, usize, i32, i64);

/// Whether `v` is a `decimal.Decimal` (whatever its value: NaN and infinities included).
fn is_decimal(v: &Bound<'_, PyAny>) -> bool {
    v.get_type().name().is_ok_and(|n| n == "Decimal")
}

/// A `decimal.Decimal` (or `int`, or `str`) as an exact decimal, or a validation error naming
/// the field: NaN, infinities and values beyond ±7.9e28 (28 places) are refused by name.
pub(crate) fn decimal_arg(v: &Bound<'_, PyAny>, field: &str) -> PyResult<Decimal> {
    const RANGE: &str = "must be a finite decimal number within ±79228162514264337593543950335";
    if v.is_instance_of::<PyFloat>() {
        return Err(invalid_arg(field, "must not be a float: pass decimal.Decimal, int or str"));
    }
    if let Ok(d) = v.extract::<Decimal>() {
        return Ok(d);
    }
    if v.is_instance_of::<PyBool>() {
        return Err(invalid_arg(field, "must be a decimal.Decimal, int or str"));
    }
    if v.is_instance_of::<PyInt>() {
        return int_arg::<i64>(v, field).map(Decimal::from).map_err(|_| invalid_arg(field, RANGE));
    }
    if is_decimal(v) {
        return Err(invalid_arg(field, RANGE));
    }
    let s: String = v.extract().map_err(|_| invalid_arg(field, "must be a decimal.Decimal, int or str"))?;
    Decimal::from_str_exact(s.trim()).map_err(|_| invalid_arg(field, RANGE))
}

/// A Python value → a custom field value. Floats are refused: money and measures are exact.
pub(crate) fn custom_value_from(v: &Bound<'_, PyAny>, key: &str) -> PyResult<CustomValue> {
    if v.is_instance_of::<PyBool>() {
        return Ok(CustomValue::Bool(v.extract()?));
    }
    let field = format!("custom.{key}");
    if v.is_instance_of::<PyInt>() {
        return Ok(CustomValue::Number(int_arg(v, &field)?));
    }
    if v.is_instance_of::<PyFloat>() {
        return Err(invalid_arg(&field, "must not be a float: pass decimal.Decimal or str"));
    }
    if v.is_instance_of::<PyString>() {
        return Ok(CustomValue::Text(v.extract()?));
    }
    if is_decimal(v) {
        return Ok(CustomValue::Decimal(decimal_arg(v, &field)?));
    }
    if let Ok(d) = v.extract::<chrono::NaiveDate>() {
        return Ok(CustomValue::Date(d));
    }
    if let Ok(items) = v.extract::<Vec<String>>() {
        return Ok(CustomValue::MultiSelect(items.into_iter().collect::<BTreeSet<_>>()));
    }
    Err(PyTypeError::new_err(format!(
        "custom.{key}: unsupported value type {}",
        v.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}

pub(crate) fn custom_value_to_py<'py>(py: Python<'py>, v: &CustomValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        CustomValue::Text(s) | CustomValue::Select(s) => s.into_pyobject(py)?.into_any(),
        CustomValue::Number(n) => n.into_pyobject(py)?.into_any(),
        CustomValue::Decimal(d) => d.into_pyobject(py)?.into_any(),
        CustomValue::Date(d) => d.into_pyobject(py)?.into_any(),
        CustomValue::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        CustomValue::MultiSelect(set) => set.iter().collect::<Vec<_>>().into_pyobject(py)?.into_any(),
    })
}

fn custom_dict<'py>(py: Python<'py>, custom: &BTreeMap<String, CustomValue>) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in custom {
        d.set_item(k, custom_value_to_py(py, v)?)?;
    }
    Ok(d)
}

pub(crate) fn custom_map(d: &Bound<'_, PyAny>, problems: &mut Problems) -> BTreeMap<String, CustomValue> {
    let mut out = BTreeMap::new();
    let Some(d) = problems.keep("custom", d.cast::<PyDict>().map_err(PyErr::from)) else { return out };
    for (k, v) in d.iter() {
        let Some(k) = problems.keep("custom", k.extract::<String>()) else { continue };
        if let Some(value) = problems.keep(&format!("custom.{k}"), custom_value_from(&v, &k)) {
            out.insert(k, value);
        }
    }
    out
}

/// One str, or a list of them.
pub(crate) fn strings(v: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if v.is_instance_of::<PyString>() { Ok(vec![v.extract()?]) } else { v.extract() }
}

/// Identifiers as `guanxi.fields.Identifier` dicts: `{"scheme": IdScheme, "value": str}`.
pub(crate) fn identifier_dicts<'py>(py: Python<'py>, ids: &[guanxi::Identifier]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for id in ids {
        let d = PyDict::new(py);
        d.set_item("scheme", Vocab(id.scheme))?;
        d.set_item("value", &id.value)?;
        list.append(d)?;
    }
    Ok(list)
}

/// A sequence of `Identifier` dicts (`{"scheme": ..., "value": ...}`) as raw identifiers for
/// the core to check; each malformed item is reported under `field[i]` with the others.
pub(crate) fn identifiers_from(v: &Bound<'_, PyAny>, field: &str, problems: &mut Problems) -> Vec<guanxi::Identifier> {
    let mut out = Vec::new();
    let Some(items) = problems.keep(field, v.try_iter()) else { return out };
    for (i, item) in items.enumerate() {
        let at = format!("{field}[{i}]");
        let Some(d) = problems.keep(&at, item.and_then(|x| Ok(x.cast_into::<PyDict>()?))) else { continue };
        let part = |name: &str| d.get_item(name).ok().flatten();
        let scheme = match part("scheme") {
            None => {
                problems.push(format!("{at}.scheme"), ValidationReason::Required);
                None
            }
            Some(s) => problems
                .keep(&format!("{at}.scheme"), text(&s))
                .and_then(|s| s.parse::<guanxi::IdScheme>().map_err(|r| problems.push(format!("{at}.scheme"), r)).ok()),
        };
        let value = match part("value") {
            None => {
                problems.push(format!("{at}.value"), ValidationReason::Required);
                None
            }
            Some(v) => problems.keep(&format!("{at}.value"), text(&v)),
        };
        unknown_keys(&d, &at, &["scheme", "value"], problems);
        if let (Some(scheme), Some(value)) = (scheme, value) {
            out.push(guanxi::Identifier::new(scheme, value));
        }
    }
    out
}

/// Reports each key of a dict argument outside `allowed`, under `at.<key>`.
pub(crate) fn unknown_keys(d: &Bound<'_, PyDict>, at: &str, allowed: &[&str], problems: &mut Problems) {
    for key in d.keys() {
        let key = key.extract::<String>().unwrap_or_default();
        if !allowed.contains(&key.as_str()) {
            problems.unknown_key(&format!("{at}.{key}"), allowed);
        }
    }
}

/// A str argument, or a TypeError saying what was given.
pub(crate) fn text(v: &Bound<'_, PyAny>) -> PyResult<String> {
    v.extract::<String>().map_err(|_| {
        let given = v.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        pyo3::exceptions::PyTypeError::new_err(format!("must be a str, not {given}"))
    })
}

/// A vocabulary value (its stable name or label) from a str argument.
pub(crate) fn vocab<T: std::str::FromStr<Err = guanxi::UnknownName>>(field: &str, v: &Bound<'_, PyAny>) -> PyResult<T> {
    parse_name(field, &text(v)?)
}

/// A patch value of an optional field: None clears it.
pub(crate) fn optional<T>(
    v: &Bound<'_, PyAny>,
    f: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>,
) -> PyResult<Option<T>> {
    if v.is_none() { Ok(None) } else { f(v).map(Some) }
}

pub(crate) fn user(field: &str, v: &Bound<'_, PyAny>) -> PyResult<guanxi::UserId> {
    user_id(field, &text(v)?)
}

pub(crate) fn department(v: &Bound<'_, PyAny>) -> PyResult<guanxi::DepartmentId> {
    guanxi::DepartmentId::new(text(v)?).map_err(crate::errors::to_py)
}

/// The bad fields of one call, gathered so that all of them are reported together in one
/// ValidationError (vocabulary, type and unknown-key errors alike), each under its path
/// (`rows[3].industry`, `contacts[0].phones`).
#[derive(Default)]
pub(crate) struct Problems {
    errors: Vec<guanxi::FieldError>,
}

impl Problems {
    /// The value of `r`, or None, with why not kept under `field`.
    pub(crate) fn keep<T>(&mut self, field: &str, r: PyResult<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.absorb(field, e);
                None
            }
        }
    }

    /// Keeps a failure: a ValidationError's field errors as they are, anything else (a
    /// TypeError of a conversion) as an error of `field`.
    fn absorb(&mut self, field: &str, e: PyErr) {
        Python::attach(|py| {
            if e.is_instance_of::<crate::errors::ValidationError>(py)
                && let Ok(errors) = e.value(py).getattr("errors")
                && let Ok(errors) = errors.extract::<Vec<PyRef<'_, crate::errors::FieldError>>>()
            {
                self.errors.extend(errors.iter().map(|f| f.0.clone()));
                return;
            }
            let detail = e.value(py).to_string();
            self.errors.push(guanxi::FieldError::new(field, ValidationReason::Invalid { detail }));
        });
    }

    /// Records one bad field.
    pub(crate) fn push(&mut self, field: impl Into<String>, reason: ValidationReason) {
        self.errors.push(guanxi::FieldError::new(field, reason));
    }

    /// A key that is none of `allowed`.
    pub(crate) fn unknown_key(&mut self, key: &str, allowed: &[&str]) {
        self.push(key, ValidationReason::not_allowed(key, allowed.iter().copied()));
    }

    /// Takes the problems of a nested value (a contact of a customer, a row of a batch) under `prefix`.
    pub(crate) fn nest(&mut self, prefix: &str, inner: Problems) {
        self.errors.extend(inner.errors.into_iter().map(|mut e| {
            e.field = if e.field.is_empty() { prefix.to_owned() } else { format!("{prefix}.{}", e.field) };
            e
        }));
    }

    /// Whether nothing was wrong.
    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// One ValidationError listing every problem.
    pub(crate) fn into_error(self) -> PyErr {
        validation_error(self.errors)
    }

    /// `value` when nothing was wrong, else one ValidationError listing every problem.
    pub(crate) fn result<T>(self, value: T) -> PyResult<T> {
        if self.errors.is_empty() { Ok(value) } else { Err(validation_error(self.errors)) }
    }
}

/// A dict's entries, its keys as str (a key that is not is a problem).
pub(crate) fn entries<'py>(
    d: Option<&Bound<'py, PyDict>>,
    problems: &mut Problems,
) -> Vec<(String, Bound<'py, PyAny>)> {
    let Some(d) = d else { return Vec::new() };
    d.iter().filter_map(|(k, v)| problems.keep("", k.extract::<String>()).map(|k| (k, v))).collect()
}

/// A customer (read-only; change it through `crm.customers.update`).
#[pyclass(module = "guanxi._guanxi", frozen, eq)]
#[derive(PartialEq)]
pub struct Customer(pub(crate) guanxi::Customer);

#[pymethods]
impl Customer {
    #[getter]
    fn id(&self) -> uuid::Uuid {
        self.0.id.0
    }
    #[getter]
    fn code(&self) -> &str {
        &self.0.code
    }
    #[getter]
    fn name(&self) -> &str {
        &self.0.name
    }
    #[getter]
    fn kind(&self) -> Vocab<guanxi::CustomerKind> {
        Vocab(self.0.kind)
    }
    #[getter]
    fn industry(&self) -> Option<Vocab<guanxi::Industry>> {
        self.0.industry.map(Vocab)
    }
    #[getter]
    fn size(&self) -> Option<Vocab<guanxi::SizeBand>> {
        self.0.size.map(Vocab)
    }
    #[getter]
    fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }
    #[getter]
    fn status(&self) -> Vocab<guanxi::LifecycleStatus> {
        Vocab(self.0.status)
    }
    #[getter]
    fn level(&self) -> Option<Vocab<guanxi::Level>> {
        self.0.level.map(Vocab)
    }
    #[getter]
    fn province(&self) -> Option<&str> {
        self.0.region.as_ref().map(|r| r.province.as_str())
    }
    #[getter]
    fn city(&self) -> Option<&str> {
        self.0.region.as_ref().map(|r| r.city.as_str()).filter(|s| !s.is_empty())
    }
    #[getter]
    fn district(&self) -> Option<&str> {
        self.0.region.as_ref().map(|r| r.district.as_str()).filter(|s| !s.is_empty())
    }
    #[getter]
    fn address(&self) -> Option<&str> {
        self.0.address.as_deref()
    }
    #[getter]
    fn owner(&self) -> Option<&str> {
        self.0.owner.as_ref().map(|o| o.as_str())
    }
    #[getter]
    fn department(&self) -> Option<&str> {
        self.0.department.as_ref().map(|d| d.as_str())
    }
    #[getter]
    fn tags(&self) -> Vec<String> {
        self.0.tags.iter().cloned().collect()
    }
    #[getter]
    fn identifiers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        identifier_dicts(py, &self.0.identifiers)
    }
    #[getter]
    fn custom<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        custom_dict(py, &self.0.custom)
    }
    #[getter]
    fn created_by(&self) -> &str {
        self.0.created_by.as_str()
    }
    #[getter]
    fn created_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.created_at
    }
    #[getter]
    fn updated_by(&self) -> &str {
        self.0.updated_by.as_str()
    }
    #[getter]
    fn updated_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.updated_at
    }
    #[getter]
    fn version(&self) -> u64 {
        self.0.version
    }
    #[getter]
    fn deleted_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.0.deleted_at
    }
    fn __repr__(&self) -> String {
        format!(
            "Customer(code={}, name={}, status={}, version={})",
            q(&self.0.code),
            q(&self.0.name),
            q(self.0.status.as_str()),
            self.0.version
        )
    }
}

/// A contact person of a customer.
#[pyclass(module = "guanxi._guanxi", frozen, eq)]
#[derive(PartialEq)]
pub struct Contact(pub(crate) guanxi::Contact);

#[pymethods]
impl Contact {
    #[getter]
    fn id(&self) -> uuid::Uuid {
        self.0.id.0
    }
    #[getter]
    fn customer_id(&self) -> uuid::Uuid {
        self.0.customer_id.0
    }
    #[getter]
    fn name(&self) -> &str {
        &self.0.name
    }
    #[getter]
    fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }
    #[getter]
    fn phones(&self) -> Vec<String> {
        self.0.phones.iter().map(|p| p.as_str().to_owned()).collect()
    }
    #[getter]
    fn emails(&self) -> Vec<String> {
        self.0.emails.iter().map(|e| e.as_str().to_owned()).collect()
    }
    /// Resident identity number (身份证号), as the user may see it.
    #[getter]
    fn id_number(&self) -> Option<&str> {
        self.0.id_number.as_ref().map(|n| n.as_str())
    }
    #[getter]
    fn role(&self) -> Option<Vocab<guanxi::DecisionRole>> {
        self.0.role.map(Vocab)
    }
    #[getter]
    fn primary(&self) -> bool {
        self.0.primary
    }
    #[getter]
    fn do_not_contact(&self) -> bool {
        self.0.do_not_contact
    }
    #[getter]
    fn custom<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        custom_dict(py, &self.0.custom)
    }
    #[getter]
    fn version(&self) -> u64 {
        self.0.version
    }
    fn __repr__(&self) -> String {
        format!(
            "Contact(name={}, phones=[{}], primary={})",
            q(&self.0.name),
            self.0.phones.iter().map(|p| q(p.as_str())).collect::<Vec<_>>().join(", "),
            py_bool(self.0.primary)
        )
    }
}

/// An interaction / follow-up with a customer.
#[pyclass(module = "guanxi._guanxi", frozen, eq)]
#[derive(PartialEq)]
pub struct Interaction(pub(crate) guanxi::Interaction);

#[pymethods]
impl Interaction {
    #[getter]
    fn id(&self) -> uuid::Uuid {
        self.0.id.0
    }
    #[getter]
    fn customer_id(&self) -> uuid::Uuid {
        self.0.customer_id.0
    }
    #[getter]
    fn kind(&self) -> Vocab<guanxi::InteractionKind> {
        Vocab(self.0.kind)
    }
    #[getter]
    fn at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.at
    }
    #[getter]
    fn author(&self) -> &str {
        self.0.author.as_str()
    }
    #[getter]
    fn content(&self) -> &str {
        &self.0.content
    }
    #[getter]
    fn next_step(&self) -> Option<&str> {
        self.0.next_step.as_deref()
    }
    #[getter]
    fn next_contact_on(&self) -> Option<chrono::NaiveDate> {
        self.0.next_contact_on
    }
    #[getter]
    fn feedback(&self) -> Option<&str> {
        self.0.feedback.as_deref()
    }
    fn __repr__(&self) -> String {
        format!("Interaction(kind={}, at='{}', content={})", q(self.0.kind.as_str()), self.0.at, q(&self.0.content))
    }
}

/// A tag and its group.
#[pyclass(module = "guanxi._guanxi", frozen, eq)]
#[derive(PartialEq)]
pub struct Tag(pub(crate) guanxi::Tag);

#[pymethods]
impl Tag {
    #[getter]
    fn name(&self) -> &str {
        &self.0.name
    }
    #[getter]
    fn group(&self) -> Option<&str> {
        self.0.group.as_deref()
    }
    fn __repr__(&self) -> String {
        format!("Tag(name={}, group={})", q(&self.0.name), q_opt(self.0.group.as_deref()))
    }
}

/// A custom field definition.
#[pyclass(module = "guanxi._guanxi", frozen, eq)]
#[derive(PartialEq)]
pub struct CustomField(pub(crate) guanxi::CustomFieldDef);

#[pymethods]
impl CustomField {
    #[getter]
    fn entity(&self) -> Vocab<guanxi::EntityKind> {
        Vocab(self.0.entity)
    }
    #[getter]
    fn key(&self) -> &str {
        &self.0.key
    }
    #[getter]
    fn label(&self) -> &str {
        &self.0.label
    }
    #[getter]
    fn field_type(&self) -> Vocab<guanxi::FieldType> {
        Vocab(self.0.field_type)
    }
    #[getter]
    fn required(&self) -> bool {
        self.0.required
    }
    #[getter]
    fn allowed_values(&self) -> Vec<String> {
        self.0.allowed_values.clone()
    }
    fn __repr__(&self) -> String {
        format!(
            "CustomField(entity={}, key={}, field_type={})",
            q(self.0.entity.as_str()),
            q(&self.0.key),
            q(self.0.field_type.as_str())
        )
    }
}

/// One change-log entry: who changed what, when, old → new.
#[pyclass(module = "guanxi._guanxi", frozen, eq)]
#[derive(PartialEq)]
pub struct ChangeLogEntry(pub(crate) guanxi::ChangeLogEntry);

#[pymethods]
impl ChangeLogEntry {
    #[getter]
    fn seq(&self) -> u64 {
        self.0.seq
    }
    #[getter]
    fn at(&self) -> chrono::DateTime<chrono::Utc> {
        self.0.at
    }
    #[getter]
    fn user(&self) -> &str {
        self.0.actor.as_str()
    }
    #[getter]
    fn entity(&self) -> Vocab<guanxi::EntityKind> {
        Vocab(self.0.entity)
    }
    #[getter]
    fn entity_id(&self) -> &str {
        &self.0.entity_id
    }
    #[getter]
    fn action(&self) -> Vocab<guanxi::ChangeAction> {
        Vocab(self.0.action)
    }
    /// The changed fields as (field, old, new) tuples; old/new are JSON texts or None.
    #[getter]
    fn changes(&self) -> Vec<(String, Option<String>, Option<String>)> {
        self.0
            .changes
            .iter()
            .map(|c| (c.field.clone(), c.old.as_ref().map(|v| v.to_string()), c.new.as_ref().map(|v| v.to_string())))
            .collect()
    }
    fn __repr__(&self) -> String {
        format!(
            "ChangeLogEntry(seq={}, user={}, action={}, entity={}, entity_id={})",
            self.0.seq,
            q(self.0.actor.as_str()),
            q(self.0.action.as_str()),
            q(self.0.entity.as_str()),
            q(&self.0.entity_id)
        )
    }
}

pub(crate) fn event_to_py<'py>(py: Python<'py>, event: &guanxi::Event) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item("type", event.payload.name())?;
    d.set_item("at", event.at)?;
    d.set_item("user", event.actor.as_str())?;
    d.set_item("customer_id", event.payload.customer().map(|c| c.0))?;
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&event.payload) {
        for (k, v) in fields {
            if k != "type" && k != "customer" {
                d.set_item(k, v.to_string().trim_matches('"'))?;
            }
        }
    }
    Ok(d.into_any())
}

pub(crate) fn timeline_entry_to_py<'py>(py: Python<'py>, e: TimelineEntry) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item("at", e.at)?;
    match e.item {
        TimelineItem::Interaction(i) => {
            d.set_item("type", "interaction")?;
            d.set_item("interaction", Interaction(i))?;
        }
        TimelineItem::Change(c) => {
            d.set_item("type", "change")?;
            d.set_item("change", ChangeLogEntry(c))?;
        }
        _ => d.set_item("type", "other")?,
    }
    Ok(d.into_any())
}

/// The result of checking the change log's hash chain (`crm.verify_audit()`).
#[pyclass(module = "guanxi._guanxi", frozen, eq)]
#[derive(PartialEq)]
pub struct AuditCheck(pub(crate) guanxi::AuditCheck);

#[pymethods]
impl AuditCheck {
    /// Entries checked.
    #[getter]
    fn entries(&self) -> u64 {
        self.0.entries
    }
    /// Hash of the last entry; keep it elsewhere to detect truncation later.
    #[getter]
    fn head(&self) -> Option<&str> {
        self.0.head.as_deref()
    }
    /// True when every entry links to its predecessor and matches its hash.
    #[getter]
    fn intact(&self) -> bool {
        self.0.is_intact()
    }
    /// The first entry breaking the chain.
    #[getter]
    fn broken_at(&self) -> Option<u64> {
        self.0.broken_at
    }
    /// Why it breaks the chain.
    #[getter]
    fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    fn __bool__(&self) -> bool {
        self.0.is_intact()
    }
    fn __repr__(&self) -> String {
        format!(
            "AuditCheck(entries={}, intact={}, broken_at={})",
            self.0.entries,
            py_bool(self.0.is_intact()),
            self.0.broken_at.map_or_else(|| "None".to_owned(), |s| s.to_string())
        )
    }
}

/// A serializable document (settings, rules, reports' details, the access model) as plain Python
/// objects (dict, list, str, int, bool, None), through serde.
pub(crate) fn to_python<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, v).map_err(|e| crate::errors::GuanxiError::new_err(e.to_string()))
}

/// A document from plain Python objects (the shape [`to_python`] gives), or a ValidationError
/// naming `field` and what did not fit.
pub(crate) fn from_python<T: serde::de::DeserializeOwned>(v: &Bound<'_, PyAny>, field: &str) -> PyResult<T> {
    pythonize::depythonize(v).map_err(|e| invalid_arg(field, &e.to_string()))
}
