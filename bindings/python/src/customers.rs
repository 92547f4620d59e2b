//! `crm.customers`, `crm.tags`, `crm.contacts`, `crm.interactions` and `crm.custom_fields`:
//! the Python handles of the customer center, and the keyword arguments they take.

use std::collections::BTreeMap;

use guanxi::{ContactId, CustomFieldDef, CustomerFilter, CustomerPatch, EntityKind, NewCustomer, NewInteraction};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::PyCrm;
use crate::arrow::{CustomerColumns, Table, arrow_err, page_request, record_batch};
use crate::convert::*;

/// The keyword arguments of `customers.create` after the name.
pub(crate) const CUSTOMER_FIELDS: &[&str] = &[
    "kind",
    "industry",
    "size",
    "source",
    "status",
    "level",
    "province",
    "city",
    "district",
    "address",
    "owner",
    "department",
    "tags",
    "custom",
    "identifiers",
    "contacts",
];

/// The keyword arguments of `customers.update`.
const CUSTOMER_CHANGES: &[&str] = &[
    "name",
    "kind",
    "status",
    "industry",
    "size",
    "level",
    "source",
    "address",
    "owner",
    "department",
    "province",
    "city",
    "district",
    "custom",
    "identifiers",
];

/// The keyword filters of customer lists, counts, exports and scans.
const CUSTOMER_FILTERS: &[&str] = &[
    "status",
    "kind",
    "level",
    "industry",
    "size",
    "owner",
    "department",
    "tag",
    "tags",
    "province",
    "city",
    "district",
    "name_contains",
    "deleted",
    "custom",
];

/// The keyword arguments of `contacts.create` after the name.
const CONTACT_FIELDS: &[&str] =
    &["title", "phone", "phones", "email", "emails", "id_number", "role", "primary", "do_not_contact", "custom"];

/// The keyword arguments of `contacts.update`.
const CONTACT_CHANGES: &[&str] =
    &["name", "title", "phones", "emails", "id_number", "role", "do_not_contact", "custom"];

/// `customers.create(name, **fields)` keyword arguments → `NewCustomer`, every bad field in `problems`.
pub(crate) fn customer_input(name: &str, fields: Option<&Bound<'_, PyDict>>, problems: &mut Problems) -> NewCustomer {
    let mut c = NewCustomer::new(name);
    let mut region = guanxi::Region::default();
    let mut has_region = false;
    for (key, value) in entries(fields, problems) {
        if value.is_none() {
            continue;
        }
        let k = key.as_str();
        match k {
            "kind" => c.kind = problems.keep(k, vocab(k, &value)).unwrap_or(c.kind),
            "industry" => c.industry = problems.keep(k, vocab(k, &value)),
            "size" => c.size = problems.keep(k, vocab(k, &value)),
            "source" => c.source = problems.keep(k, text(&value)),
            "status" => c.status = problems.keep(k, vocab(k, &value)).unwrap_or(c.status),
            "level" => c.level = problems.keep(k, vocab(k, &value)),
            "province" | "city" | "district" => {
                let v = problems.keep(k, text(&value)).unwrap_or_default();
                has_region = true;
                match k {
                    "province" => region.province = v,
                    "city" => region.city = v,
                    _ => region.district = v,
                }
            }
            "address" => c.address = problems.keep(k, text(&value)),
            "owner" => c.owner = problems.keep(k, user(k, &value)),
            "department" => c.department = problems.keep(k, department(&value)),
            "tags" => c.tags = problems.keep(k, strings(&value)).unwrap_or_default(),
            "custom" => c.custom = custom_map(&value, problems),
            "identifiers" => c.identifiers = identifiers_from(&value, k, problems),
            "contacts" => {
                let Some(contacts) = problems.keep(k, value.try_iter()) else { continue };
                for (i, contact) in contacts.enumerate() {
                    let mut inner = Problems::default();
                    if let Some(d) = inner.keep("", contact.and_then(|c| Ok(c.cast_into::<PyDict>()?))) {
                        let name = d.get_item("name").ok().flatten();
                        let name = name.and_then(|n| inner.keep("name", text(&n))).unwrap_or_default();
                        let rest = d.copy().ok();
                        if let Some(rest) = &rest {
                            let _ = rest.del_item("name");
                        }
                        c.contacts.push(contact_input(&name, rest.as_ref(), &mut inner));
                    }
                    problems.nest(&format!("contacts[{i}]"), inner);
                }
            }
            other => problems.unknown_key(other, CUSTOMER_FIELDS),
        }
    }
    if has_region {
        c.region = Some(region);
    }
    c
}

/// `customers.create`'s arguments, or one ValidationError naming every bad field.
pub(crate) fn new_customer(name: &str, fields: Option<&Bound<'_, PyDict>>) -> PyResult<NewCustomer> {
    let mut problems = Problems::default();
    let input = customer_input(name, fields, &mut problems);
    problems.result(input)
}

/// Contact keyword arguments → `NewContact`, every bad field in `problems`.
fn contact_input(name: &str, fields: Option<&Bound<'_, PyDict>>, problems: &mut Problems) -> guanxi::NewContact {
    let mut c = guanxi::NewContact::new(name);
    for (key, value) in entries(fields, problems) {
        if value.is_none() {
            continue;
        }
        let k = key.as_str();
        match k {
            "title" => c.title = problems.keep(k, text(&value)),
            "phone" | "phones" => c.phones = problems.keep(k, strings(&value)).unwrap_or_default(),
            "email" | "emails" => c.emails = problems.keep(k, strings(&value)).unwrap_or_default(),
            "id_number" => c.id_number = problems.keep(k, text(&value)),
            "role" => c.role = problems.keep(k, vocab(k, &value)),
            "primary" => c.primary = problems.keep(k, value.extract()).unwrap_or_default(),
            "do_not_contact" => c.do_not_contact = problems.keep(k, value.extract()).unwrap_or_default(),
            "custom" => c.custom = custom_map(&value, problems),
            other => problems.unknown_key(other, CONTACT_FIELDS),
        }
    }
    c
}

/// Keyword filters → `CustomerFilter`, or one ValidationError naming every bad filter.
pub(crate) fn customer_filter(filters: Option<&Bound<'_, PyDict>>) -> PyResult<CustomerFilter> {
    let mut f = CustomerFilter::default();
    let mut problems = Problems::default();
    for (key, value) in entries(filters, &mut problems) {
        if value.is_none() {
            continue;
        }
        let k = key.as_str();
        match k {
            "status" => f.status = problems.keep(k, vocab(k, &value)),
            "kind" => f.kind = problems.keep(k, vocab(k, &value)),
            "level" => f.level = problems.keep(k, vocab(k, &value)),
            "industry" => f.industry = problems.keep(k, vocab(k, &value)),
            "size" => f.size = problems.keep(k, vocab(k, &value)),
            "owner" => f.owner = problems.keep(k, user(k, &value)),
            "department" => f.department = problems.keep(k, department(&value)),
            "tag" | "tags" => {
                for t in problems.keep(k, strings(&value)).unwrap_or_default() {
                    f = f.tag(&t);
                }
            }
            "province" => {
                if let Some(p) = problems.keep(k, text(&value)) {
                    f = f.province(&p);
                }
            }
            "city" => {
                if let Some(c) = problems.keep(k, text(&value)) {
                    f = f.city(&c);
                }
            }
            "district" => f.district = problems.keep(k, text(&value)).map(|d| guanxi::normalize::fold_text(&d)),
            "name_contains" => f.name_contains = problems.keep(k, text(&value)),
            "deleted" => {
                let deleted = text(&value).and_then(|d| match d.as_str() {
                    "exclude" => Ok(guanxi::Deleted::Exclude),
                    "only" => Ok(guanxi::Deleted::Only),
                    "include" => Ok(guanxi::Deleted::Include),
                    other => Err(crate::errors::validation_error(vec![guanxi::FieldError::new(
                        "deleted",
                        guanxi::ValidationReason::not_allowed(other, ["exclude", "only", "include"]),
                    )])),
                });
                f.deleted = problems.keep(k, deleted).unwrap_or(f.deleted);
            }
            "custom" => {
                for (key, v) in custom_map(&value, &mut problems) {
                    f.custom.push(guanxi::CustomFilter::new(key, v));
                }
            }
            other => problems.unknown_key(other, CUSTOMER_FILTERS),
        }
    }
    problems.result(f)
}

/// `custom={"key": value or None}` in a patch: None removes the value.
fn custom_patch(value: &Bound<'_, PyAny>, problems: &mut Problems) -> BTreeMap<String, Option<guanxi::CustomValue>> {
    let mut out = BTreeMap::new();
    let Some(d) = problems.keep("custom", value.cast::<PyDict>().map_err(PyErr::from)) else { return out };
    for (k, v) in d.iter() {
        let Some(k) = problems.keep("custom", k.extract::<String>()) else { continue };
        if v.is_none() {
            out.insert(k, None);
        } else if let Some(v) = problems.keep(&format!("custom.{k}"), custom_value_from(&v, &k)) {
            out.insert(k, Some(v));
        }
    }
    out
}

/// `customers.update` keyword arguments → the patch, and the region parts given (applied to
/// the stored region, which only the update's transaction reads).
fn customer_patch(changes: Option<&Bound<'_, PyDict>>) -> PyResult<(CustomerPatch, guanxi::RegionChange)> {
    let mut p = CustomerPatch::default();
    let mut region = guanxi::RegionChange::default();
    let mut problems = Problems::default();
    for (key, value) in entries(changes, &mut problems) {
        let k = key.as_str();
        match k {
            "name" => p.name = problems.keep(k, text(&value)),
            "kind" => p.kind = problems.keep(k, vocab(k, &value)),
            "status" => p.status = problems.keep(k, vocab(k, &value)),
            "industry" => p.industry = problems.keep(k, optional(&value, |v| vocab(k, v))),
            "size" => p.size = problems.keep(k, optional(&value, |v| vocab(k, v))),
            "level" => p.level = problems.keep(k, optional(&value, |v| vocab(k, v))),
            "source" => p.source = problems.keep(k, optional(&value, text)),
            "address" => p.address = problems.keep(k, optional(&value, text)),
            "owner" => p.owner = problems.keep(k, optional(&value, |v| user(k, v))),
            "department" => p.department = problems.keep(k, optional(&value, department)),
            "province" => region.province = problems.keep(k, optional(&value, text)),
            "city" => region.city = problems.keep(k, optional(&value, text)),
            "district" => region.district = problems.keep(k, optional(&value, text)),
            "custom" => p.custom = custom_patch(&value, &mut problems),
            // None clears the list, as an empty one does.
            "identifiers" if value.is_none() => p.identifiers = Some(Vec::new()),
            "identifiers" => p.identifiers = Some(identifiers_from(&value, k, &mut problems)),
            other => problems.unknown_key(other, CUSTOMER_CHANGES),
        }
    }
    problems.result((p, region))
}

fn contact_patch(changes: Option<&Bound<'_, PyDict>>) -> PyResult<guanxi::ContactPatch> {
    let mut p = guanxi::ContactPatch::default();
    let mut problems = Problems::default();
    for (key, value) in entries(changes, &mut problems) {
        let k = key.as_str();
        match k {
            "name" => p.name = problems.keep(k, text(&value)),
            "title" => p.title = problems.keep(k, optional(&value, text)),
            "phones" => p.phones = problems.keep(k, strings(&value)),
            "emails" => p.emails = problems.keep(k, strings(&value)),
            "id_number" => p.id_number = problems.keep(k, optional(&value, text)),
            "role" => p.role = problems.keep(k, optional(&value, |v| vocab(k, v))),
            "do_not_contact" => p.do_not_contact = problems.keep(k, value.extract()),
            "custom" => p.custom = custom_patch(&value, &mut problems),
            other => problems.unknown_key(other, CONTACT_CHANGES),
        }
    }
    problems.result(p)
}

pub(crate) fn contact_id_from(v: &Bound<'_, PyAny>) -> PyResult<ContactId> {
    uuid_from(v, "contact_id").map(ContactId)
}

/// Customers as a table: the customer columns, tags as `list<utf8>`, custom fields as a struct.
pub(crate) fn customer_table(rows: Vec<guanxi::Customer>, fields: Vec<CustomFieldDef>) -> Table {
    Table::records(rows, move |rows| record_batch(rows, &fields), customer_object)
}

fn customer_object(py: Python<'_>, c: &guanxi::Customer) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, Customer(c.clone()))?.into_any())
}

impl Customers {
    /// `input` when the binding found nothing wrong; else one ValidationError with the binding's
    /// problems and the core's (a bad `size` no longer hides a bad phone).
    fn checked(&self, py: Python<'_>, input: NewCustomer, mut problems: Problems) -> PyResult<NewCustomer> {
        if problems.is_empty() {
            return Ok(input);
        }
        self.check_into(py, input, &mut problems)?;
        Err(problems.into_error())
    }

    /// Adds the core's validation errors of `input` to `problems` (other errors are raised).
    fn check_into(&self, py: Python<'_>, input: NewCustomer, problems: &mut Problems) -> PyResult<()> {
        match self.crm.get().run(py, |c, a| c.customers().check(a, input)) {
            Ok(()) => Ok(()),
            Err(e) if e.is_instance_of::<crate::errors::ValidationError>(py) => {
                problems.keep("", Err::<(), _>(e));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// A table of the customers a scan visits, with the custom-field columns the user may see,
    /// filled straight from the store's rows into Arrow columns: no record is built per row.
    fn scanned(
        &self,
        py: Python<'_>,
        scan: impl FnOnce(
            &guanxi::Crm,
            &guanxi::Actor,
            &mut (dyn FnMut(&guanxi::CustomerView<'_>) -> guanxi::Result<()> + Send),
        ) -> guanxi::Result<u64>
        + Send,
    ) -> PyResult<Table> {
        // A builder's failure stops the scan; it is reported as itself, not as the scan's error.
        let mut failed = None;
        let columns = self.crm.get().run(py, |c, a| {
            let mut columns = CustomerColumns::new(c.custom_fields().list(a, EntityKind::Customer)?, 0);
            scan(c, a, &mut |row| {
                columns.push(row).map_err(|e| {
                    let stop = guanxi::StorageError::msg(e.to_string()).into();
                    failed = Some(e);
                    stop
                })
            })?;
            Ok(columns)
        });
        if let Some(e) = failed {
            return Err(arrow_err(e));
        }
        Table::scanned_customers(columns?).map_err(arrow_err)
    }
}

/// `crm.customers`: create, read, list, count, update, delete and restore customers.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Customers {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Customers {
    /// Creates a customer (with contacts given as dicts) and returns it.
    #[pyo3(signature = (name, **fields))]
    fn create(&self, py: Python<'_>, name: &str, fields: Option<&Bound<'_, PyDict>>) -> PyResult<Customer> {
        let mut problems = Problems::default();
        let input = customer_input(name, fields, &mut problems);
        let input = self.checked(py, input, problems)?;
        self.crm.get().run(py, |c, a| c.customers().create(a, input)).map(Customer)
    }

    /// Creates many customers in one transaction: all or none. Each row is a dict of `create`'s
    /// arguments; a bad field is reported under its row (`customers[3].industry`), every one together.
    fn create_many(&self, py: Python<'_>, rows: &Bound<'_, PyAny>) -> PyResult<Vec<Customer>> {
        let mut read: Vec<(Option<NewCustomer>, Problems)> = Vec::new();
        for row in rows.try_iter()? {
            let mut inner = Problems::default();
            let mut input = None;
            if let Some(row) = inner.keep("", row.and_then(|r| Ok(r.cast_into::<PyDict>()?))) {
                // A missing name is the core's to report, with the row's other failures.
                let name = row.get_item("name")?.and_then(|n| inner.keep("name", text(&n))).unwrap_or_default();
                let rest = row.copy()?;
                if rest.contains("name")? {
                    rest.del_item("name")?;
                }
                input = Some(customer_input(&name, Some(&rest), &mut inner));
            }
            read.push((input, inner));
        }
        if read.iter().all(|(input, p)| input.is_some() && p.is_empty()) {
            let inputs: Vec<NewCustomer> = read.into_iter().filter_map(|(i, _)| i).collect();
            let created = self.crm.get().run(py, |c, a| c.customers().create_many(a, inputs))?;
            return Ok(created.into_iter().map(Customer).collect());
        }
        // Nothing will be written: the core checks every row too, so each row's errors, the
        // binding's and the core's, are reported together under `customers[i]`, as Rust does.
        let mut problems = Problems::default();
        for (i, (input, mut inner)) in read.into_iter().enumerate() {
            if let Some(input) = input {
                self.check_into(py, input, &mut inner)?;
            }
            problems.nest(&format!("customers[{i}]"), inner);
        }
        Err(problems.into_error())
    }

    /// Checks a new customer as `create` would (permission and every field, all reported
    /// together in one ValidationError) and writes nothing: for a form, before it submits.
    #[pyo3(signature = (name, **fields))]
    fn check(&self, py: Python<'_>, name: &str, fields: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        let mut problems = Problems::default();
        let input = customer_input(name, fields, &mut problems);
        self.check_into(py, input, &mut problems)?;
        problems.result(())
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
    /// raises ConflictError. Pass None to clear an optional field; `custom={"k": None}` removes a
    /// value. A region part given replaces the parts under it and keeps those above (`city=`
    /// alone keeps the province); `province=None` clears the region.
    #[pyo3(signature = (id, version, **changes))]
    fn update(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        changes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Customer> {
        let version: u64 = int_arg(version, "version")?;
        let id = customer_id_from(id)?;
        let (mut patch, region) = customer_patch(changes)?;
        self.crm
            .get()
            .run(py, |c, a| {
                if !region.is_empty() {
                    let current = if region.keeps_current() { c.customers().get(a, id)?.region } else { None };
                    patch.region = Some(region.apply(current.as_ref()));
                }
                c.customers().update(a, id, version, patch)
            })
            .map(Customer)
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

    /// One page of the customers matching the keyword filters, oldest first: `limit` rows
    /// after the cursor `after` (a page's `next`). The table converts to pyarrow, polars or
    /// pandas without per-row Python objects, and iterates as Customer objects.
    #[pyo3(signature = (*, after = None, limit = 100, **filters))]
    fn list(
        &self,
        py: Python<'_>,
        after: Option<&str>,
        limit: i64,
        filters: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Table> {
        let page = page_request(after, limit)?;
        let filter = customer_filter(filters)?;
        let (page, fields) = self.crm.get().run(py, |c, a| {
            Ok((c.customers().list(a, &filter, page)?, c.custom_fields().list(a, EntityKind::Customer)?))
        })?;
        Ok(customer_table(page.items, fields).page(page.next))
    }

    /// Every customer matching the keyword filters, as one table.
    #[pyo3(signature = (**filters))]
    fn list_all(&self, py: Python<'_>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<Table> {
        let filter = customer_filter(filters)?;
        self.scanned(py, |c, a, visit| c.customers().scan(a, &filter, visit))
    }

    /// Exports every customer matching the keyword filters that the user may export (masked as
    /// their field rules say, logged); needs elevation when access control is on.
    #[pyo3(signature = (**filters))]
    fn export(&self, py: Python<'_>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<Table> {
        let filter = customer_filter(filters)?;
        self.scanned(py, |c, a, visit| c.customers().export_scan(a, &filter, visit))
    }

    /// How many customers match the keyword filters.
    #[pyo3(signature = (**filters))]
    fn count(&self, py: Python<'_>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<u64> {
        let filter = customer_filter(filters)?;
        self.crm.get().run(py, |c, a| c.customers().count(a, &filter))
    }

    /// The customer's timeline, oldest first: dicts with "at", "type" ("change" or
    /// "interaction") and the entry ("change": a ChangeLogEntry, "interaction": an Interaction).
    fn timeline<'py>(&self, py: Python<'py>, id: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let id = customer_id_from(id)?;
        let entries = self.crm.get().run(py, |c, a| c.customers().timeline(a, id))?;
        let out = PyList::empty(py);
        for e in entries {
            out.append(timeline_entry_to_py(py, e)?)?;
        }
        Ok(out)
    }

    /// Creates a customer after checking for likely duplicates, as `on_duplicate` says:
    /// "allow" (create, no check), "warn" (create, return the candidates), "block" (raise
    /// DuplicateError when there are candidates) or "link" (return the best existing match
    /// instead of creating). Returns {"customer": Customer, "created": bool, "candidates": [...]}.
    #[pyo3(signature = (name, *, on_duplicate = "warn", **fields))]
    fn create_checked<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        on_duplicate: &str,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::dedup::create_checked(self.crm.get(), py, name, on_duplicate, fields)
    }
}

/// `crm.tags`: define tags and put them on customers.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Tags {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Tags {
    /// Defines a tag (or moves it to another group).
    #[pyo3(signature = (name, group = None))]
    fn create(&self, py: Python<'_>, name: &str, group: Option<&str>) -> PyResult<Tag> {
        self.crm.get().run(py, |c, a| c.tags().create(a, name, group)).map(Tag)
    }

    /// Every tag, by group then name.
    fn list(&self, py: Python<'_>) -> PyResult<Vec<Tag>> {
        Ok(self.crm.get().run(py, |c, a| c.tags().list(a))?.into_iter().map(Tag).collect())
    }

    /// Puts a tag on a customer (the tag is created if new); returns the customer.
    fn add(&self, py: Python<'_>, customer_id: &Bound<'_, PyAny>, tag: &str) -> PyResult<Customer> {
        let id = customer_id_from(customer_id)?;
        self.crm.get().run(py, |c, a| c.tags().add(a, id, tag)).map(Customer)
    }

    /// Takes a tag off a customer; returns the customer.
    fn remove(&self, py: Python<'_>, customer_id: &Bound<'_, PyAny>, tag: &str) -> PyResult<Customer> {
        let id = customer_id_from(customer_id)?;
        self.crm.get().run(py, |c, a| c.tags().remove(a, id, tag)).map(Customer)
    }
}

/// `crm.contacts`: the people of a customer.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Contacts {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Contacts {
    /// Adds a contact to a customer; the first is primary, or pass primary=True.
    #[pyo3(signature = (customer_id, name, **fields))]
    fn create(
        &self,
        py: Python<'_>,
        customer_id: &Bound<'_, PyAny>,
        name: &str,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Contact> {
        let id = customer_id_from(customer_id)?;
        let mut problems = Problems::default();
        let input = contact_input(name, fields, &mut problems);
        let input = problems.result(input)?;
        self.crm.get().run(py, |c, a| c.contacts().create(a, id, input)).map(Contact)
    }

    /// A contact by id.
    fn get(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Contact> {
        let id = contact_id_from(id)?;
        self.crm.get().run(py, |c, a| c.contacts().get(a, id)).map(Contact)
    }

    /// The live contacts of a customer, primary first.
    fn list(&self, py: Python<'_>, customer_id: &Bound<'_, PyAny>) -> PyResult<Vec<Contact>> {
        let id = customer_id_from(customer_id)?;
        Ok(self.crm.get().run(py, |c, a| c.contacts().list(a, id))?.into_iter().map(Contact).collect())
    }

    /// The live contacts with this phone number the user may read (the duplicate check).
    fn find_by_phone(&self, py: Python<'_>, phone: &str) -> PyResult<Vec<Contact>> {
        Ok(self.crm.get().run(py, |c, a| c.contacts().find_by_phone(a, phone))?.into_iter().map(Contact).collect())
    }

    /// The live contacts with this resident identity number the user may read.
    fn find_by_id_number(&self, py: Python<'_>, id_number: &str) -> PyResult<Vec<Contact>> {
        let found = self.crm.get().run(py, |c, a| c.contacts().find_by_id_number(a, id_number))?;
        Ok(found.into_iter().map(Contact).collect())
    }

    /// Changes fields of a contact whose current version is `version` (name, title, phones,
    /// emails, id_number, role, do_not_contact, custom); None clears title, id_number or role.
    #[pyo3(signature = (id, version, **changes))]
    fn update(
        &self,
        py: Python<'_>,
        id: &Bound<'_, PyAny>,
        version: &Bound<'_, PyAny>,
        changes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Contact> {
        let version: u64 = int_arg(version, "version")?;
        let id = contact_id_from(id)?;
        let patch = contact_patch(changes)?;
        self.crm.get().run(py, |c, a| c.contacts().update(a, id, version, patch)).map(Contact)
    }

    /// Makes a contact its customer's primary contact.
    fn set_primary(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Contact> {
        let id = contact_id_from(id)?;
        self.crm.get().run(py, |c, a| c.contacts().set_primary(a, id)).map(Contact)
    }

    /// Removes a contact (the oldest remaining one becomes primary if it was).
    fn delete(&self, py: Python<'_>, id: &Bound<'_, PyAny>, version: u64) -> PyResult<()> {
        let id = contact_id_from(id)?;
        self.crm.get().run(py, |c, a| c.contacts().delete(a, id, version))
    }
}

/// `crm.interactions`: calls, visits and other follow-ups with a customer.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Interactions {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Interactions {
    /// Logs an interaction ("call", "visit", "email", "meeting", "message", "other").
    #[pyo3(signature = (customer_id, kind, content, *, at = None, contact_id = None, next_step = None, next_contact_on = None, feedback = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn create(
        &self,
        py: Python<'_>,
        customer_id: &Bound<'_, PyAny>,
        kind: &str,
        content: String,
        at: Option<chrono::DateTime<chrono::Utc>>,
        contact_id: Option<&Bound<'_, PyAny>>,
        next_step: Option<String>,
        next_contact_on: Option<chrono::NaiveDate>,
        feedback: Option<String>,
    ) -> PyResult<Interaction> {
        let id = customer_id_from(customer_id)?;
        let mut input = NewInteraction::new(parse_name("kind", kind)?, content);
        input.at = at;
        input.contact_id = contact_id.map(contact_id_from).transpose()?;
        input.next_step = next_step;
        input.next_contact_on = next_contact_on;
        input.feedback = feedback;
        self.crm.get().run(py, |c, a| c.interactions().create(a, id, input)).map(Interaction)
    }

    /// The interactions of a customer, oldest first.
    fn list(&self, py: Python<'_>, customer_id: &Bound<'_, PyAny>) -> PyResult<Vec<Interaction>> {
        let id = customer_id_from(customer_id)?;
        Ok(self.crm.get().run(py, |c, a| c.interactions().list(a, id))?.into_iter().map(Interaction).collect())
    }
}

/// `crm.custom_fields`: the fields a deployment adds to customers and contacts.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct CustomFields {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl CustomFields {
    /// Defines a custom field of `entity` ("customer" or "contact").
    #[pyo3(signature = (entity, key, label, field_type, *, required = false, allowed_values = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the Python keyword arguments
    fn create(
        &self,
        py: Python<'_>,
        entity: &str,
        key: &str,
        label: &str,
        field_type: &str,
        required: bool,
        allowed_values: Option<Vec<String>>,
    ) -> PyResult<CustomField> {
        let mut problems = Problems::default();
        let entity: Option<EntityKind> = problems.keep("entity", parse_name("entity", entity));
        let field_type = problems.keep("field_type", parse_name("field_type", field_type));
        let (Some(entity), Some(field_type)) = (entity, field_type) else { return Err(problems.into_error()) };
        let mut def = CustomFieldDef::new(entity, key, label, field_type);
        def.required = required;
        def.allowed_values = allowed_values.unwrap_or_default();
        self.crm.get().run(py, |c, a| c.custom_fields().create(a, def)).map(CustomField)
    }

    /// The custom fields of "customer" or "contact".
    #[pyo3(signature = (entity = "customer"))]
    fn list(&self, py: Python<'_>, entity: &str) -> PyResult<Vec<CustomField>> {
        let entity: EntityKind = parse_name("entity", entity)?;
        Ok(self.crm.get().run(py, |c, a| c.custom_fields().list(a, entity))?.into_iter().map(CustomField).collect())
    }
}

/// Registers the customer-center classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Customers>()?;
    m.add_class::<Tags>()?;
    m.add_class::<Contacts>()?;
    m.add_class::<Interactions>()?;
    m.add_class::<CustomFields>()?;
    Ok(())
}
