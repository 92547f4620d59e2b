//! Duplicates and files in Python: `crm.duplicates` (check, create with a policy, the scan as
//! Arrow tables, not-duplicate marks, merge and undo) and `crm.files` (import templates,
//! import with a progress callback, streamed export to a file).

use std::collections::BTreeMap;

use guanxi::dedup::{self as core, MergeRequest, Survivorship};
use guanxi::{
    CustomerId, DuplicatePolicy, ExportEntity, FileFormat, ImportField, ImportMode, ImportOptions, OnDuplicate,
    ValidationReason,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::PyCrm;
use crate::arrow::{Columns, Table, arrow_err};
use crate::convert::{AuditCheck, Customer, Problems, customer_id_from, invalid_arg, to_python};
use crate::customers::{customer_filter, new_customer};
use crate::match_rules::MatchRules;

fn on_duplicate(s: &str) -> PyResult<OnDuplicate> {
    Ok(match s {
        "allow" => OnDuplicate::Allow,
        "warn" => OnDuplicate::Warn,
        "block" => OnDuplicate::Block,
        "link" => OnDuplicate::Link,
        _ => return Err(invalid_arg("on_duplicate", "must be allow, warn, block or link")),
    })
}

fn survivorship(s: &str) -> PyResult<Survivorship> {
    Ok(match s {
        "most_recent" => Survivorship::MostRecent,
        "most_complete" => Survivorship::MostComplete,
        _ => return Err(invalid_arg("policy", "must be most_recent or most_complete")),
    })
}

fn file_format(s: &str) -> PyResult<FileFormat> {
    Ok(match s {
        "csv" => FileFormat::Csv,
        "xlsx" => FileFormat::Xlsx,
        "jsonl" => FileFormat::JsonLines,
        _ => return Err(invalid_arg("format", "must be csv, xlsx or jsonl")),
    })
}

/// A likely duplicate as a dict: id (None, with code and name empty, for a customer outside
/// the caller's scope), code, name, score, and reasons (dicts with field,
/// similarity, value, other) plus `explanation` (the reasons as sentences).
fn candidate<'py>(py: Python<'py>, c: &core::MatchCandidate) -> PyResult<Bound<'py, PyAny>> {
    let mut v = serde_json::to_value(c).map_err(|e| invalid_arg("candidate", &e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        let text: Vec<String> = c.reasons.iter().map(ToString::to_string).collect();
        o.insert("explanation".into(), text.into());
    }
    let d = to_python(py, &v)?;
    d.set_item("id", c.id.map(|id| id.0))?;
    Ok(d)
}

fn candidates<'py>(py: Python<'py>, cs: &[core::MatchCandidate]) -> PyResult<Vec<Bound<'py, PyAny>>> {
    cs.iter().map(|c| candidate(py, c)).collect()
}

fn merge_request(
    survivor: &Bound<'_, PyAny>,
    merged: Vec<Bound<'_, PyAny>>,
    policy: &str,
    choose: Option<BTreeMap<String, Bound<'_, PyAny>>>,
) -> PyResult<MergeRequest> {
    let ids: Vec<CustomerId> = merged.iter().map(customer_id_from).collect::<PyResult<_>>()?;
    let mut r = MergeRequest::new(customer_id_from(survivor)?, ids).policy(survivorship(policy)?);
    for (field, id) in choose.unwrap_or_default() {
        r = r.choose(field, customer_id_from(&id)?);
    }
    Ok(r)
}

/// The result of a scan: `pairs` (one row per scored link of a cluster) and `members` (one
/// row per customer of a cluster) as Arrow tables, and `stats`.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct ScanResult {
    #[pyo3(get)]
    pairs: Py<Table>,
    #[pyo3(get)]
    members: Py<Table>,
    #[pyo3(get)]
    stats: Py<PyAny>,
}

/// Pairs of customer ids from Python (UUIDs or their text).
fn id_pairs(pairs: &[(Bound<'_, PyAny>, Bound<'_, PyAny>)]) -> PyResult<Vec<(CustomerId, CustomerId)>> {
    pairs.iter().map(|(a, b)| Ok((customer_id_from(a)?, customer_id_from(b)?))).collect()
}

/// A scan's or a link's clusters as Arrow tables, with its stats.
fn scan_result(py: Python<'_>, clusters: &[core::DuplicateCluster], stats: &core::ScanStats) -> PyResult<ScanResult> {
    let mut links = Vec::new();
    let mut members = Vec::new();
    for (n, cl) in clusters.iter().enumerate() {
        members.extend(cl.members.iter().map(|m| (n as i64, *m, cl.score)));
        links.extend(cl.links.iter().map(|l| (n as i64, l)));
    }
    let pairs = Columns::new(&links)
        .int("cluster", |(n, _)| Some(*n))
        .text("customer_id", |(_, l)| Some(l.from.to_string()))
        .text("other_id", |(_, l)| l.to.id.map(|id| id.to_string()))
        .text("other_code", |(_, l)| Some(&l.to.code))
        .text("other_name", |(_, l)| Some(&l.to.name))
        .float("score", |(_, l)| Some(l.to.score))
        .text("reasons", |(_, l)| Some(l.to.reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))
        .finish()
        .map_err(arrow_err)?;
    let members = Columns::new(&members)
        .int("cluster", |(n, _, _)| Some(*n))
        .text("customer_id", |(_, m, _)| Some(m.to_string()))
        .finish()
        .map_err(arrow_err)?;
    let stats = to_python(py, stats)?;
    Ok(ScanResult { pairs: Py::new(py, pairs)?, members: Py::new(py, members)?, stats: stats.unbind() })
}

/// Duplicate operations of a `Crm` (`crm.duplicates`).
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Duplicates {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Duplicates {
    /// The likely duplicates of a customer not yet created (`create`'s arguments), best first.
    #[pyo3(signature = (name, **fields))]
    fn find<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let input = new_customer(name, fields)?;
        let found = self.crm.get().run(py, |c, a| c.duplicates().find(a, &input))?;
        candidates(py, &found)
    }

    /// The likely duplicates of a stored customer, best first.
    fn of<'py>(&self, py: Python<'py>, id: &Bound<'_, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let id = customer_id_from(id)?;
        let found = self.crm.get().run(py, |c, a| c.duplicates().of(a, id))?;
        candidates(py, &found)
    }

    /// Scans the customers matching the keyword filters (as `customers.list` takes) for
    /// clusters of likely duplicates.
    #[pyo3(signature = (**filters))]
    fn scan(&self, py: Python<'_>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<ScanResult> {
        let filter = customer_filter(filters)?;
        let (clusters, stats) = self.crm.get().run(py, |c, a| {
            let mut clusters = Vec::new();
            let stats = c.duplicates().scan(a, &filter, |cl| clusters.push(cl))?;
            Ok((clusters, stats))
        })?;
        scan_result(py, &clusters, &stats)
    }

    /// The match rules, scoring and blocking duplicates are judged by.
    fn rules(&self, py: Python<'_>) -> PyResult<MatchRules> {
        Ok(MatchRules(self.crm.get().run(py, |c, a| c.duplicates().rules(a))?))
    }

    /// Replaces the match rules (checked first: every bad rule is named); returns them.
    fn set_rules(&self, py: Python<'_>, rules: MatchRules) -> PyResult<MatchRules> {
        Ok(MatchRules(self.crm.get().run(py, |c, a| c.duplicates().set_rules(a, rules.0))?))
    }

    /// Estimates the probabilistic model from the customers matching the keyword filters (as
    /// `customers.list` takes), stores it in the rules, and returns them.
    #[pyo3(signature = (**filters))]
    fn train(&self, py: Python<'_>, filters: Option<&Bound<'_, PyDict>>) -> PyResult<MatchRules> {
        let filter = customer_filter(filters)?;
        Ok(MatchRules(self.crm.get().run(py, |c, a| c.duplicates().train(a, &filter))?))
    }

    /// Learns the probabilistic model from `same` (pairs of customer ids confirmed as one
    /// customer) and the pairs marked not duplicate, stores it in the rules, and returns them.
    fn learn(&self, py: Python<'_>, same: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)>) -> PyResult<MatchRules> {
        let same = id_pairs(&same)?;
        Ok(MatchRules(self.crm.get().run(py, |c, a| c.duplicates().learn(a, &same))?))
    }

    /// Links the customers matching `left` (filters as `customers.list` takes them) against
    /// those matching `right`: only pairs with one customer from each side are compared.
    #[pyo3(signature = (left, right))]
    fn link(&self, py: Python<'_>, left: &Bound<'_, PyDict>, right: &Bound<'_, PyDict>) -> PyResult<ScanResult> {
        let (left, right) = (customer_filter(Some(left))?, customer_filter(Some(right))?);
        let (clusters, stats) = self.crm.get().run(py, |c, a| {
            let mut clusters = Vec::new();
            let stats = c.duplicates().link(a, &left, &right, |cl| clusters.push(cl))?;
            Ok((clusters, stats))
        })?;
        scan_result(py, &clusters, &stats)
    }

    /// Of pairs known to be duplicates (customer ids), how many blocking compares and how many
    /// then score as duplicates: {"known", "compared", "matched", "ceiling", "missed",
    /// "unmatched", "stats"}; `missed` pairs are lost by blocking, `unmatched` by scoring.
    fn blocking_report<'py>(
        &self,
        py: Python<'py>,
        known: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let known = id_pairs(&known)?;
        let r = self.crm.get().run(py, |c, a| c.duplicates().blocking_report(a, &known))?;
        let pairs = |v: &[(CustomerId, CustomerId)]| v.iter().map(|(a, b)| (a.0, b.0)).collect::<Vec<_>>();
        let d = PyDict::new(py);
        d.set_item("known", r.known)?;
        d.set_item("compared", r.compared)?;
        d.set_item("matched", r.matched)?;
        d.set_item("ceiling", r.ceiling())?;
        d.set_item("missed", pairs(&r.missed))?;
        d.set_item("unmatched", pairs(&r.unmatched))?;
        d.set_item("stats", to_python(py, &r.stats)?)?;
        Ok(d)
    }

    /// The pairs marked as not duplicates, each once.
    fn not_duplicates(&self, py: Python<'_>) -> PyResult<Vec<(uuid::Uuid, uuid::Uuid)>> {
        let marks = self.crm.get().run(py, |c, a| c.duplicates().not_duplicates(a))?;
        Ok(marks.pairs().map(|(a, b)| (a.0, b.0)).collect())
    }

    /// Marks two customers as not duplicates: never proposed again.
    fn mark_not_duplicate(&self, py: Python<'_>, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<()> {
        let (x, y) = (customer_id_from(a)?, customer_id_from(b)?);
        self.crm.get().run(py, |c, actor| c.duplicates().mark_not_duplicate(actor, x, y))
    }

    /// What merging `merged` into `survivor` would do (nothing is written): {"survivor",
    /// "fields", "tags_added", "contacts", "interactions", "opportunities", "tickets", "tasks"}.
    /// `policy`: "most_recent" or "most_complete"; `choose`: {field: customer id}.
    #[pyo3(signature = (survivor, merged, *, policy = "most_recent", choose = None))]
    fn plan_merge<'py>(
        &self,
        py: Python<'py>,
        survivor: &Bound<'_, PyAny>,
        merged: Vec<Bound<'_, PyAny>>,
        policy: &str,
        choose: Option<BTreeMap<String, Bound<'_, PyAny>>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let request = merge_request(survivor, merged, policy, choose)?;
        let plan = self.crm.get().run(py, |c, a| c.duplicates().plan_merge(a, &request))?;
        plan_dict(py, plan)
    }

    /// Merges; returns the plan's dict with "merge_id" added (for `undo_merge`).
    #[pyo3(signature = (survivor, merged, *, policy = "most_recent", choose = None))]
    fn merge<'py>(
        &self,
        py: Python<'py>,
        survivor: &Bound<'_, PyAny>,
        merged: Vec<Bound<'_, PyAny>>,
        policy: &str,
        choose: Option<BTreeMap<String, Bound<'_, PyAny>>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let request = merge_request(survivor, merged, policy, choose)?;
        let done = self.crm.get().run(py, |c, a| c.duplicates().merge(a, &request))?;
        let d = plan_dict(py, done.plan)?;
        d.set_item("merge_id", done.merge_id)?;
        Ok(d)
    }

    /// Undoes a merge: every record back as it was.
    fn undo_merge(&self, py: Python<'_>, merge_id: &str) -> PyResult<()> {
        self.crm.get().run(py, |c, a| c.duplicates().undo_merge(a, merge_id))
    }

    /// The survivor a merged customer now lives on (None if it was not merged).
    fn merged_into(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<Option<uuid::Uuid>> {
        let id = customer_id_from(id)?;
        Ok(self.crm.get().run(py, |c, a| c.duplicates().merged_into(a, id))?.map(|s| s.0))
    }
}

/// `crm.customers.create_checked`: the create with a duplicate policy.
pub(crate) fn create_checked<'py>(
    crm: &PyCrm,
    py: Python<'py>,
    name: &str,
    on_duplicate: &str,
    fields: Option<&Bound<'_, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (input, policy) = (new_customer(name, fields)?, self::on_duplicate(on_duplicate)?);
    let done = crm.run(py, |c, a| c.customers().create_checked(a, input, policy))?;
    let d = PyDict::new(py);
    d.set_item("customer", Customer(done.customer))?;
    d.set_item("created", done.created)?;
    d.set_item("duplicates", candidates(py, &done.duplicates)?)?;
    Ok(d.into_any())
}

fn plan_dict(py: Python<'_>, plan: guanxi::MergePlan) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("survivor", Customer(plan.survivor))?;
    d.set_item("merged", plan.merged.iter().map(|m| m.id.0).collect::<Vec<_>>())?;
    d.set_item("fields", to_python(py, &plan.fields)?)?;
    d.set_item("tags_added", plan.tags_added)?;
    d.set_item("contacts", plan.contacts.iter().map(|x| x.0).collect::<Vec<_>>())?;
    d.set_item("interactions", plan.interactions.iter().map(|x| x.0).collect::<Vec<_>>())?;
    d.set_item("opportunities", plan.opportunities.iter().map(|x| x.0).collect::<Vec<_>>())?;
    d.set_item("tickets", plan.tickets.iter().map(|x| x.0).collect::<Vec<_>>())?;
    d.set_item("tasks", plan.tasks.iter().map(|x| x.0).collect::<Vec<_>>())?;
    Ok(d)
}

/// What a catalog or purchase import did: the rows read, the sync report of the rows
/// written (ids and outcomes in file order), `rejected` as an Arrow table (row, column,
/// value, reason), the ignored headers, and whether it was committed.
#[pyclass(module = "guanxi._guanxi", frozen, get_all)]
pub struct CommerceImportReport {
    rows: u64,
    sync: crate::commerce::SyncReport,
    rejected: Py<Table>,
    ignored_columns: Vec<String>,
    committed: bool,
}

#[pymethods]
impl CommerceImportReport {
    fn __repr__(&self) -> String {
        format!(
            "CommerceImportReport(rows={}, synced={}, rejected={}, committed={})",
            self.rows,
            self.sync.ids_len(),
            Python::attach(|py| self.rejected.bind(py).len().unwrap_or(0)),
            if self.committed { "True" } else { "False" }
        )
    }
}

fn commerce_options(
    mode: &str,
    source_system: Option<String>,
    columns: Option<BTreeMap<String, String>>,
) -> PyResult<guanxi::CommerceImportOptions> {
    let mut options = guanxi::CommerceImportOptions { source_system, ..Default::default() };
    match mode {
        "all_or_nothing" => options.mode = ImportMode::AllOrNothing,
        "keep_good" => options.mode = ImportMode::KeepGood,
        other => {
            let mut problems = Problems::default();
            problems.push("mode", ValidationReason::not_allowed(other, ["all_or_nothing", "keep_good"]));
            return Err(problems.into_error());
        }
    }
    for (header, key) in columns.unwrap_or_default() {
        options = options.column(&header, &key);
    }
    Ok(options)
}

/// Rejected rows' errors as a table: row, column, value, reason.
fn row_errors(errors: &[guanxi::RowError]) -> PyResult<Table> {
    Columns::new(errors)
        .count("row", |e| e.row)
        .text("column", |e| e.column.as_deref())
        .text("value", |e| e.value.as_deref())
        .text("reason", |e| Some(&e.reason))
        .finish()
        .map_err(arrow_err)
}

fn commerce_report(py: Python<'_>, r: guanxi::CommerceImportReport) -> PyResult<CommerceImportReport> {
    let rejected = row_errors(&r.rejected)?;
    Ok(CommerceImportReport {
        rows: r.rows,
        sync: r.sync.into(),
        rejected: Py::new(py, rejected)?,
        ignored_columns: r.ignored_columns,
        committed: r.committed,
    })
}

/// What an import did: ids created / updated / linked, `skipped` and `rejected` as Arrow
/// tables (row, column, value, reason), the ignored headers, and whether it was committed.
#[pyclass(module = "guanxi._guanxi", frozen, get_all)]
pub struct ImportReport {
    rows: u64,
    created: Vec<uuid::Uuid>,
    updated: Vec<uuid::Uuid>,
    linked: Vec<uuid::Uuid>,
    skipped: Py<Table>,
    rejected: Py<Table>,
    ignored_columns: Vec<String>,
    committed: bool,
}

#[pymethods]
impl ImportReport {
    fn __repr__(&self) -> String {
        format!(
            "ImportReport(rows={}, created={}, updated={}, linked={}, committed={})",
            self.rows,
            self.created.len(),
            self.updated.len(),
            self.linked.len(),
            if self.committed { "True" } else { "False" }
        )
    }
}

/// File operations of a `Crm` (`crm.files`): import and export.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Files {
    pub(crate) crm: Py<PyCrm>,
}

#[pymethods]
impl Files {
    /// An import template: "csv" (UTF-8 with BOM) or "xlsx", Chinese headers, one example row.
    #[staticmethod]
    #[pyo3(signature = (format = "csv"))]
    fn import_template<'py>(py: Python<'py>, format: &str) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = guanxi::Crm::import_template(file_format(format)?).map_err(crate::errors::to_py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Imports customers from the bytes of a CSV or .xlsx file. `columns`: {header: field
    /// key} for headers not named like a field; `on_duplicate`: "skip", "update", "create" or
    /// "link"; `mode`: "all_or_nothing" or "keep_good"; `progress(done, total)` is called every
    /// 1,000 rows and at the end.
    /// Imports a catalog from an ERP's CSV or .xlsx export (`data`: the file's bytes), synced
    /// as `crm.commerce.products.sync` syncs (by external id, else code; a re-import writes
    /// nothing). Headers such as 产品编码, 产品名称, 类别, 单价, 税率 or their English keys;
    /// `columns` maps other headers to field keys (``{"sales_price": "price"}``); `mode`:
    /// "all_or_nothing" or "keep_good".
    #[pyo3(signature = (data, *, mode = "all_or_nothing", source_system = None, columns = None))]
    fn import_products(
        &self,
        py: Python<'_>,
        data: Vec<u8>,
        mode: &str,
        source_system: Option<String>,
        columns: Option<BTreeMap<String, String>>,
    ) -> PyResult<CommerceImportReport> {
        let options = commerce_options(mode, source_system, columns)?;
        let r = self.crm.get().run(py, |c, a| c.files().import_products(a, &data, &options))?;
        commerce_report(py, r)
    }

    /// Imports purchases, one a row (客户编号 or 客户ID, 下单时间, 金额, 币种, 产品编码, 数量,
    /// 单价, 渠道, 订单号, 状态 — or their English keys), recorded as
    /// `crm.commerce.purchases.record` records them (a re-import writes nothing; a refund in a
    /// later export updates the order). `source_system` names the ERP of rows that name none.
    #[pyo3(signature = (data, *, mode = "all_or_nothing", source_system = None, columns = None))]
    fn import_purchases(
        &self,
        py: Python<'_>,
        data: Vec<u8>,
        mode: &str,
        source_system: Option<String>,
        columns: Option<BTreeMap<String, String>>,
    ) -> PyResult<CommerceImportReport> {
        let options = commerce_options(mode, source_system, columns)?;
        let r = self.crm.get().run(py, |c, a| c.files().import_purchases(a, &data, &options))?;
        commerce_report(py, r)
    }

    #[pyo3(signature = (data, *, columns = None, on_duplicate = "skip", mode = "all_or_nothing", progress = None))]
    fn import_customers(
        &self,
        py: Python<'_>,
        data: Vec<u8>,
        columns: Option<BTreeMap<String, String>>,
        on_duplicate: &str,
        mode: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<ImportReport> {
        let mut options = ImportOptions::default();
        let mut problems = Problems::default();
        let keys = || ImportField::ALL.iter().map(|f| f.key());
        for (header, key) in columns.unwrap_or_default() {
            match ImportField::ALL.iter().copied().find(|f| f.key() == key) {
                Some(field) => options = options.column(header, field),
                None => problems.push(format!("columns.{header}"), ValidationReason::not_allowed(key, keys())),
            }
        }
        match on_duplicate {
            "skip" => options.on_duplicate = DuplicatePolicy::Skip,
            "update" => options.on_duplicate = DuplicatePolicy::Update,
            "create" => options.on_duplicate = DuplicatePolicy::Create,
            "link" => options.on_duplicate = DuplicatePolicy::Link,
            other => problems
                .push("on_duplicate", ValidationReason::not_allowed(other, ["skip", "update", "create", "link"])),
        }
        match mode {
            "all_or_nothing" => options.mode = ImportMode::AllOrNothing,
            "keep_good" => options.mode = ImportMode::KeepGood,
            other => problems.push("mode", ValidationReason::not_allowed(other, ["all_or_nothing", "keep_good"])),
        }
        let options = problems.result(options)?;
        let r = self.crm.get().run(py, |c, a| {
            c.files().import(a, &data, &options, |p| {
                if let Some(cb) = &progress {
                    Python::attach(|py| {
                        if let Err(err) = cb.call1(py, (p.done, p.total)) {
                            // A failing callback must not break the import.
                            err.write_unraisable(py, None);
                        }
                    });
                }
            })
        })?;
        let skipped = Columns::new(&r.skipped)
            .count("row", |s| s.row)
            .text("existing", |s| s.existing.map(|e| e.to_string()))
            .text("reason", |s| Some(&s.reason))
            .finish()
            .map_err(arrow_err)?;
        let rejected = row_errors(&r.rejected)?;
        let ids = |v: &[CustomerId]| v.iter().map(|c| c.0).collect();
        Ok(ImportReport {
            rows: r.rows,
            created: ids(&r.created),
            updated: ids(&r.updated),
            linked: ids(&r.linked),
            skipped: Py::new(py, skipped)?,
            rejected: Py::new(py, rejected)?,
            ignored_columns: r.ignored_columns,
            committed: r.committed,
        })
    }

    /// Streams "customers", "contacts" or "interactions" of the customers matching the keyword
    /// filters into a new file at `path` as "csv", "xlsx" or "jsonl"; returns the row count.
    /// Needs elevation when access control is on.
    #[pyo3(signature = (path, *, entity = "customers", format = "csv", **filters))]
    fn export_to_path(
        &self,
        py: Python<'_>,
        path: std::path::PathBuf,
        entity: &str,
        format: &str,
        filters: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<u64> {
        let entity = match entity {
            "customers" => ExportEntity::Customers,
            "contacts" => ExportEntity::Contacts,
            "interactions" => ExportEntity::Interactions,
            _ => return Err(invalid_arg("entity", "must be customers, contacts or interactions")),
        };
        let (format, filter) = (file_format(format)?, customer_filter(filters)?);
        self.crm.get().run(py, |c, a| c.files().export_to_path(a, entity, &filter, format, &path))
    }

    /// Writes a consistent online backup to the new file `path`; returns the copy's audit check.
    fn backup(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<AuditCheck> {
        self.crm.get().run(py, |c, a| c.files().backup(a, &path)).map(AuditCheck)
    }
}
