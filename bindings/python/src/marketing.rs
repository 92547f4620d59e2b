//! `crm.marketing`: behaviour events (`crm.marketing.events`) and segments
//! (`crm.marketing.segments`).

use guanxi::marketing::{BehaviourEvent, EventRange, Explained, MarketingSettings, Segment};
use guanxi::{EntityKind, PageRequest};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::PyCrm;
use crate::arrow::Table;
use crate::convert::*;
use crate::customers::customer_table;
use crate::errors::to_py;

/// `crm.marketing`: behaviour events and segments.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Marketing {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Marketing {
    /// Behaviour events: record in bulk (idempotent by external id), list per customer.
    #[getter]
    fn events(&self, py: Python<'_>) -> Events {
        Events { crm: self.crm.clone_ref(py) }
    }

    /// Segments: the customers an expression selects, and why one is or is not in it.
    #[getter]
    fn segments(&self, py: Python<'_>) -> Segments {
        Segments { crm: self.crm.clone_ref(py) }
    }

    /// The marketing settings: ``{"event_retention_days": int | None}``.
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.crm.get().run(py, |c, a| c.marketing().settings(a))?;
        settings_dict(py, &s)
    }

    /// Replaces the marketing settings: ``event_retention_days`` (1–36,500, or None to keep
    /// events for ever) makes ``events.record`` refuse older events and ``events.purge``
    /// remove them. Returns the settings.
    #[pyo3(signature = (*, event_retention_days = None))]
    fn set_settings<'py>(&self, py: Python<'py>, event_retention_days: Option<u32>) -> PyResult<Bound<'py, PyDict>> {
        let s = MarketingSettings { event_retention_days };
        let s = self.crm.get().run(py, |c, a| c.marketing().set_settings(a, s))?;
        settings_dict(py, &s)
    }
}

fn settings_dict<'py>(py: Python<'py>, s: &MarketingSettings) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("event_retention_days", s.event_retention_days)?;
    Ok(d)
}

/// `crm.marketing.events`: what customers did (page views, enquiries, purchases).
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Events {
    pub(crate) crm: Py<PyCrm>,
}

/// The keys of one event dict.
const EVENT_KEYS: &[&str] = &["customer_id", "name", "at", "properties", "source", "external_id"];

/// One event dict (`{"customer_id", "name", "at", "properties", "source", "external_id"}`),
/// each bad key reported under `events[i].<key>`.
fn event_from(item: &Bound<'_, PyAny>, at: &str, problems: &mut Problems) -> Option<BehaviourEvent> {
    let d = problems.keep(at, item.cast::<PyDict>().map_err(PyErr::from))?;
    let get = |k: &str| d.get_item(k).ok().flatten().filter(|v| !v.is_none());
    unknown_keys(d, at, EVENT_KEYS, problems);
    let mut required = |k: &str| {
        let v = get(k);
        if v.is_none() {
            problems.push(format!("{at}.{k}"), guanxi::ValidationReason::Required);
        }
        v
    };
    let (customer, name, when) = (required("customer_id"), required("name"), required("at"));
    let customer = customer.and_then(|v| problems.keep(&format!("{at}.customer_id"), customer_id_from(&v)));
    let name = name.and_then(|v| problems.keep(&format!("{at}.name"), text(&v)));
    let when = when.and_then(|v| {
        let instant = v.extract::<chrono::DateTime<chrono::Utc>>();
        problems.keep(&format!("{at}.at"), instant)
    });
    let mut e = BehaviourEvent::new(customer?, name?, when?);
    if let Some(props) = get("properties") {
        let mut inner = Problems::default();
        e.properties = custom_map(&props, &mut inner);
        problems.nest(&format!("{at}.properties"), inner);
    }
    e.source = get("source").and_then(|v| problems.keep(&format!("{at}.source"), text(&v)));
    e.external_id = get("external_id").and_then(|v| problems.keep(&format!("{at}.external_id"), text(&v)));
    Some(e)
}

fn event_dict<'py>(py: Python<'py>, e: &BehaviourEvent) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", e.id.0)?;
    d.set_item("customer_id", e.customer_id.0)?;
    d.set_item("name", &e.name)?;
    d.set_item("at", e.at)?;
    let props = PyDict::new(py);
    for (k, v) in &e.properties {
        props.set_item(k, custom_value_to_py(py, v)?)?;
    }
    d.set_item("properties", props)?;
    d.set_item("source", &e.source)?;
    d.set_item("external_id", &e.external_id)?;
    Ok(d)
}

#[pymethods]
impl Events {
    /// Records a batch of events, all or none: every bad field is reported together
    /// (``events[2].name``); each customer must be one the user may update; an external id
    /// already recorded leaves its event out. Returns ``{"recorded": [ids], "duplicates":
    /// [external ids]}``.
    fn record<'py>(&self, py: Python<'py>, events: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let mut problems = Problems::default();
        let mut batch = Vec::new();
        if let Some(items) = problems.keep("events", events.try_iter()) {
            for (i, item) in items.enumerate() {
                let at = format!("events[{i}]");
                if let Some(item) = problems.keep(&at, item) {
                    batch.extend(event_from(&item, &at, &mut problems).map(|e| (at, e)));
                }
            }
        }
        // With the binding's problems, the core's are reported too (one error for the call).
        if !problems.is_empty() {
            for (at, e) in &batch {
                if let Err(errs) = e.clone().validate() {
                    for err in errs.0 {
                        problems.push(format!("{at}.{}", err.field), err.reason);
                    }
                }
            }
        }
        let batch = problems.result(batch.into_iter().map(|(_, e)| e).collect::<Vec<_>>())?;
        let done = self.crm.get().run(py, |c, a| c.marketing().events().record(a, batch))?;
        let d = PyDict::new(py);
        d.set_item("recorded", done.recorded.iter().map(|id| id.0).collect::<Vec<_>>())?;
        d.set_item("duplicates", done.duplicates)?;
        Ok(d)
    }

    /// Removes every event older than the retention the settings keep (elevated, by a user
    /// who may delete every customer): ``{"before": datetime | None, "purged": int}``.
    fn purge<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let done = self.crm.get().run(py, |c, a| c.marketing().events().purge(a))?;
        let d = PyDict::new(py);
        d.set_item("before", done.before)?;
        d.set_item("purged", done.purged)?;
        Ok(d)
    }

    /// A customer's events in the order they happened, at or after ``since`` and before
    /// ``until`` (each optional), as dicts.
    #[pyo3(signature = (customer_id, *, since = None, until = None))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        customer_id: &Bound<'py, PyAny>,
        since: Option<chrono::DateTime<chrono::Utc>>,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let id = customer_id_from(customer_id)?;
        let range = EventRange { from: since, to: until };
        let events = self.crm.get().run(py, |c, a| {
            let mut out = Vec::new();
            let mut page = PageRequest::first(1_000);
            loop {
                let p = c.marketing().events().list(a, id, &range, &page)?;
                out.extend(p.items);
                match p.next {
                    Some(next) => page = PageRequest::after(next, 1_000),
                    None => return Ok(out),
                }
            }
        })?;
        let list = PyList::empty(py);
        for e in &events {
            list.append(event_dict(py, e)?)?;
        }
        Ok(list)
    }
}

/// `crm.marketing.segments`: customers selected by an expression such as
/// ``tag:VIP AND count(event = "page_view", url ~ "ielts", within = 30d) >= 3``.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Segments {
    pub(crate) crm: Py<PyCrm>,
}

/// A segment from its text (parsed: a ValidationError on ``segment`` says where it went
/// wrong) or from its tree as plain dicts and lists (the shape ``segments.parse`` gives).
fn segment_from(segment: &Bound<'_, PyAny>) -> PyResult<Segment> {
    if let Ok(text) = segment.extract::<String>() {
        return Segment::parse(&text).map_err(|e| to_py(e.into()));
    }
    let tree: Segment = from_python(segment, "segment")?;
    tree.validate().map_err(|e| to_py(guanxi::Error::Validation(e)))?;
    Ok(tree)
}

fn explained_dict<'py>(py: Python<'py>, e: &Explained) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("node", &e.node)?;
    d.set_item("holds", e.holds)?;
    d.set_item("count", e.count)?;
    let parts = PyList::empty(py);
    for p in &e.parts {
        parts.append(explained_dict(py, p)?)?;
    }
    d.set_item("parts", parts)?;
    Ok(d)
}

#[pymethods]
impl Segments {
    /// The segment's tree, from its text, as plain dicts and lists (``{"and": [...]}``,
    /// ``{"is": {"tag": "VIP"}}``, …): change it and pass it wherever a segment's text goes.
    fn parse<'py>(&self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
        let segment = Segment::parse(text).map_err(|e| to_py(e.into()))?;
        to_python(py, &segment)
    }

    /// The text form of a segment (text or tree), normalized: what ``parse`` reads back.
    fn to_text(&self, segment: &Bound<'_, PyAny>) -> PyResult<String> {
        Ok(segment_from(segment)?.to_string())
    }

    /// The customers in the segment that the user may read, as a table (``to_pandas()``,
    /// ``to_polars()``, iteration gives ``Customer`` objects).
    fn members(&self, py: Python<'_>, segment: &Bound<'_, PyAny>) -> PyResult<Table> {
        let segment = segment_from(segment)?;
        let (rows, fields) = self.crm.get().run(py, |c, a| {
            Ok((c.marketing().segments().members(a, &segment)?, c.custom_fields().list(a, EntityKind::Customer)?))
        })?;
        Ok(customer_table(rows, fields))
    }

    /// One page of the segment's members: ``limit`` customers after the cursor ``after`` (a
    /// page's ``next``), as a table.
    #[pyo3(signature = (segment, *, after = None, limit = 100))]
    fn members_page(
        &self,
        py: Python<'_>,
        segment: &Bound<'_, PyAny>,
        after: Option<&str>,
        limit: i64,
    ) -> PyResult<Table> {
        let segment = segment_from(segment)?;
        let page = crate::arrow::page_request(after, limit)?;
        let (page, fields) = self.crm.get().run(py, |c, a| {
            Ok((
                c.marketing().segments().members_page(a, &segment, page)?,
                c.custom_fields().list(a, EntityKind::Customer)?,
            ))
        })?;
        Ok(customer_table(page.items, fields).page(page.next))
    }

    /// How many customers the user may read are in the segment (as many as ``members`` gives).
    fn count(&self, py: Python<'_>, segment: &Bound<'_, PyAny>) -> PyResult<u64> {
        let segment = segment_from(segment)?;
        self.crm.get().run(py, |c, a| c.marketing().segments().count(a, &segment))
    }

    /// Every node of the segment with its value for one customer: ``{"node", "holds",
    /// "count", "parts"}``.
    fn explain<'py>(
        &self,
        py: Python<'py>,
        customer_id: &Bound<'py, PyAny>,
        segment: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let id = customer_id_from(customer_id)?;
        let segment = segment_from(segment)?;
        let e = self.crm.get().run(py, |c, a| c.marketing().segments().explain(a, id, &segment))?;
        explained_dict(py, &e)
    }
}

/// Registers the marketing classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Marketing>()?;
    m.add_class::<Events>()?;
    m.add_class::<Segments>()?;
    Ok(())
}
