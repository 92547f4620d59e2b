//! `crm.marketing`: behaviour events (`crm.marketing.events`) and segments
//! (`crm.marketing.segments`).

use guanxi::marketing::{
    BehaviourEvent, EventRange, Explained, MarketingSettings, SavedSegment, Segment, SegmentMembership,
};
use guanxi::{EntityKind, PageRequest};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::PyCrm;
use crate::arrow::{Columns, Table, arrow_err};
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
const EVENT_KEYS: &[&str] = &["customer_id", "contact_id", "name", "at", "properties", "source", "external_id"];

/// One event dict (`{"customer_id", "contact_id", "name", "at", "properties", "source",
/// "external_id"}`),
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
    e.contact_id = get("contact_id").and_then(|v| {
        let field = format!("{at}.contact_id");
        problems.keep(&field, uuid_from(&v, &field).map(guanxi::ContactId))
    });
    e.source = get("source").and_then(|v| problems.keep(&format!("{at}.source"), text(&v)));
    e.external_id = get("external_id").and_then(|v| problems.keep(&format!("{at}.external_id"), text(&v)));
    Some(e)
}

fn event_dict<'py>(py: Python<'py>, e: &BehaviourEvent) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", e.id.0)?;
    d.set_item("customer_id", e.customer_id.0)?;
    d.set_item("contact_id", e.contact_id.map(|c| c.0))?;
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

    /// Saves a segment under ``name`` (new, or replacing the one saved under it) and
    /// evaluates it at once; from then on every write that can change it keeps its stored
    /// membership current. ``tag`` binds a dynamic tag (added on entry, removed on exit unless
    /// ``sticky``). ``includes`` / ``excludes`` (customer ids) replace the manual lists; None
    /// keeps the ones stored. ``segment:<name>`` in the expression refers to another saved
    /// segment; cycles are refused. Returns the saved segment.
    #[pyo3(signature = (name, segment, *, description = None, tag = None, sticky = false, includes = None, excludes = None))]
    #[allow(clippy::too_many_arguments)] // one keyword each, as Python callers name them
    fn save<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        segment: &Bound<'py, PyAny>,
        description: Option<String>,
        tag: Option<String>,
        sticky: bool,
        includes: Option<&Bound<'py, PyAny>>,
        excludes: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let expression = segment_from(segment)?;
        let includes = includes.map(customer_ids).transpose()?;
        let excludes = excludes.map(customer_ids).transpose()?;
        let mut def = SavedSegment::new(name, expression);
        def.description = description;
        if let Some(t) = tag {
            def = def.with_tag(t, sticky);
        }
        let saved = self.crm.get().run(py, |c, a| {
            let segments = c.marketing().segments();
            let stored = match segments.get(a, name) {
                Ok(s) => Some(s),
                Err(guanxi::Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            def.includes = match includes {
                Some(ids) => ids.into_iter().collect(),
                None => stored.as_ref().map(|s| s.includes.clone()).unwrap_or_default(),
            };
            def.excludes = match excludes {
                Some(ids) => ids.into_iter().collect(),
                None => stored.map(|s| s.excludes).unwrap_or_default(),
            };
            segments.save(a, def)
        })?;
        saved_dict(py, &saved)
    }

    /// A saved segment by name: ``{"name", "description", "expression" (text), "tag",
    /// "sticky", "includes", "excludes"}``.
    fn get<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let s = self.crm.get().run(py, |c, a| c.marketing().segments().get(a, name))?;
        saved_dict(py, &s)
    }

    /// Every saved segment, by name, as dicts (see ``get``).
    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let all = self.crm.get().run(py, |c, a| c.marketing().segments().list(a))?;
        let out = PyList::empty(py);
        for s in &all {
            out.append(saved_dict(py, s)?)?;
        }
        Ok(out)
    }

    /// Deletes a saved segment: its members leave, its history stays readable. One another
    /// saved segment refers to is refused.
    fn delete(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        self.crm.get().run(py, |c, a| c.marketing().segments().delete(a, name))
    }

    /// Keeps these customers in the saved segment whatever its rule says; they enter at once.
    fn include<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        customer_ids: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.manual(py, name, customer_ids, |s, a, n, ids| s.include(a, n, ids))
    }

    /// Keeps these customers out of the saved segment whatever its rule says; members among
    /// them leave at once.
    fn exclude<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        customer_ids: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.manual(py, name, customer_ids, |s, a, n, ids| s.exclude(a, n, ids))
    }

    /// Takes these customers off the saved segment's includes and excludes: its rule decides
    /// for them again.
    fn reset_manual<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        customer_ids: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.manual(py, name, customer_ids, |s, a, n, ids| s.reset_manual(a, n, ids))
    }

    /// Re-evaluates one saved segment whole: ``{"entered": {name: n}, "exited": {name: n}}``.
    fn reevaluate<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyDict>> {
        let r = self.crm.get().run(py, |c, a| c.marketing().segments().reevaluate(a, name))?;
        reevaluated_dict(py, &r)
    }

    /// Re-evaluates every saved segment that depends on the date (windows, ``30d ago``) at
    /// the CRM's now — what a scheduler calls: ``{"entered": {name: n}, "exited": {name: n}}``.
    fn reevaluate_due<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let r = self.crm.get().run(py, |c, a| c.marketing().segments().reevaluate_due(a))?;
        reevaluated_dict(py, &r)
    }

    /// The saved segment's current members' stays (when and why each entered) that the user
    /// may read, as a table in the order they entered. With ``limit``, one page after the
    /// cursor ``after`` (a page's ``next``; a page may hold fewer rows than ``limit``).
    #[pyo3(signature = (name, *, after = None, limit = None))]
    fn current(&self, py: Python<'_>, name: &str, after: Option<&str>, limit: Option<i64>) -> PyResult<Table> {
        self.stays(py, name, None, true, after, limit)
    }

    /// The saved segment's membership history — every stay, open or closed, of every
    /// customer or of ``customer_id`` — that the user may read, as a table. With ``limit``,
    /// one page after the cursor ``after``.
    #[pyo3(signature = (name, *, customer_id = None, after = None, limit = None))]
    fn history(
        &self,
        py: Python<'_>,
        name: &str,
        customer_id: Option<&Bound<'_, PyAny>>,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> PyResult<Table> {
        let customer = customer_id.map(customer_id_from).transpose()?;
        self.stays(py, name, customer, false, after, limit)
    }
}

fn saved_dict<'py>(py: Python<'py>, s: &SavedSegment) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", &s.name)?;
    d.set_item("description", &s.description)?;
    d.set_item("expression", s.expression.to_string())?;
    d.set_item("tag", s.tag.as_ref().map(|t| t.tag.clone()))?;
    d.set_item("sticky", s.tag.as_ref().is_some_and(|t| t.sticky))?;
    d.set_item("includes", s.includes.iter().map(|c| c.0).collect::<Vec<_>>())?;
    d.set_item("excludes", s.excludes.iter().map(|c| c.0).collect::<Vec<_>>())?;
    Ok(d)
}

fn reevaluated_dict<'py>(py: Python<'py>, r: &guanxi::Reevaluated) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("entered", r.entered.clone())?;
    d.set_item("exited", r.exited.clone())?;
    Ok(d)
}

/// Stays as a table: one row each (``customer_id``, ``entered_at``, ``entered_because``,
/// ``exited_at``, ``exited_because``, ``id``).
fn stays_table(stays: &[SegmentMembership], next: Option<guanxi::Cursor>) -> PyResult<Table> {
    let t = Columns::new(stays)
        .text("id", |m| Some(m.id.to_string()))
        .text("customer_id", |m| Some(m.customer_id.to_string()))
        .time("entered_at", |m| Some(m.entered_at))
        .text("entered_because", |m| Some(m.entered_because.as_str()))
        .time("exited_at", |m| m.exited_at)
        .text("exited_because", |m| m.exited_because.map(|r| r.as_str()))
        .finish()
        .map_err(arrow_err)?;
    Ok(t.page(next))
}

fn customer_ids(items: &Bound<'_, PyAny>) -> PyResult<Vec<guanxi::CustomerId>> {
    let mut problems = Problems::default();
    let mut out = Vec::new();
    if let Some(it) = problems.keep("customer_ids", items.try_iter()) {
        for (i, item) in it.enumerate() {
            let at = format!("customer_ids[{i}]");
            if let Some(item) = problems.keep(&at, item) {
                out.extend(problems.keep(&at, uuid_from(&item, &at).map(guanxi::CustomerId)));
            }
        }
    }
    problems.result(out)
}

impl Segments {
    fn manual<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        customer_ids: &Bound<'py, PyAny>,
        // A change of the saved segment's manual lists (`include`, `exclude`, `reset_manual`).
        change: impl Fn(&guanxi::Segments<'_>, &guanxi::Actor, &str, &[guanxi::CustomerId]) -> guanxi::Result<SavedSegment>
        + Sync,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ids = self::customer_ids(customer_ids)?;
        let s = self.crm.get().run(py, |c, a| change(&c.marketing().segments(), a, name, &ids))?;
        saved_dict(py, &s)
    }

    fn stays(
        &self,
        py: Python<'_>,
        name: &str,
        customer: Option<guanxi::CustomerId>,
        current_only: bool,
        after: Option<&str>,
        limit: Option<i64>,
    ) -> PyResult<Table> {
        let read = |c: &guanxi::Crm, a: &guanxi::Actor, page: PageRequest| {
            let s = c.marketing().segments();
            if current_only { s.current(a, name, page) } else { s.history(a, name, customer, page) }
        };
        if let Some(limit) = limit {
            let page = crate::arrow::page_request(after, limit)?;
            let p = self.crm.get().run(py, |c, a| read(c, a, page))?;
            return stays_table(&p.items, p.next);
        }
        let all = self.crm.get().run(py, |c, a| {
            let mut out = Vec::new();
            let mut page = PageRequest::first(1_000);
            loop {
                let p = read(c, a, page)?;
                out.extend(p.items);
                match p.next {
                    Some(next) => page = PageRequest::after(next, 1_000),
                    None => return Ok(out),
                }
            }
        })?;
        stays_table(&all, None)
    }
}

/// Registers the marketing classes.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Marketing>()?;
    m.add_class::<Events>()?;
    m.add_class::<Segments>()?;
    Ok(())
}
