//! Importing customers from CSV and .xlsx files: a header-to-field mapping, typed errors for
//! every bad row, a duplicate policy, all-or-nothing or keep-good-rows, idempotent re-runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use guanxi_core::dedup::{MatchCandidate, MatchProfile, MatchRules, NotDuplicates, WITHHELD};
use guanxi_core::{
    Action, Actor, ChangeAction, CustomerId, CustomerKind, DomainEvent, EntityKind, Error, FieldChange, IdScheme,
    Identifier, Industry, Level, LifecycleStatus, NewContact, NewCustomer, Region, Result, SizeBand, StoreView, UserId,
    ValidCustomer, ValidationReason,
};

use crate::columns::ImportField;
use crate::crm::Crm;
use crate::dedup_facade::{ProfileCache, Reader, input_profile};
use crate::handles::Files;
use crate::permission::Allowed;
use crate::plumbing::decode;
use crate::table::{FileFormat, ImportLimits, read_rows};
use crate::write::Entry;

/// What an import does with a row that matches an existing customer (or an earlier row of
/// the same file).
///
/// ```
/// use guanxi::DuplicatePolicy;
/// assert_eq!(DuplicatePolicy::default(), DuplicatePolicy::Skip);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicatePolicy {
    /// Leave the existing customer alone; the row is reported as skipped.
    #[default]
    Skip,
    /// Fill the existing customer's fields from the row's non-empty cells, and add its tags
    /// and any contact it lacks.
    Update,
    /// Create a new customer anyway.
    Create,
    /// Add the row's tags and any contact it lacks to the existing customer; change no field.
    Link,
}

/// Whether one bad row stops the import.
///
/// ```
/// use guanxi::ImportMode;
/// assert_eq!(ImportMode::default(), ImportMode::AllOrNothing);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Any rejected row: nothing is written.
    #[default]
    AllOrNothing,
    /// Write the good rows; report the rejected ones.
    KeepGood,
}

/// How to import a file.
///
/// ```
/// use guanxi::{DuplicatePolicy, ImportField, ImportMode, ImportOptions};
/// let o = ImportOptions::default().column("公司", ImportField::Name).on_duplicate(DuplicatePolicy::Update).mode(ImportMode::KeepGood);
/// assert_eq!(o.columns["公司"], ImportField::Name);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOptions {
    /// Explicit header → field mappings; other headers are matched by name
    /// ([`ImportField::for_header`]); headers matching nothing are reported as ignored.
    pub columns: BTreeMap<String, ImportField>,
    /// What to do with duplicates.
    pub on_duplicate: DuplicatePolicy,
    /// Whether one bad row stops the import.
    pub mode: ImportMode,
    /// Bounds on the file's size, rows, columns and cells. Left out of the options' JSON when
    /// default, so files imported before limits existed keep their re-run digest.
    #[serde(default, skip_serializing_if = "ImportLimits::is_default")]
    pub limits: ImportLimits,
}

impl ImportOptions {
    /// Maps a header to a field.
    pub fn column(mut self, header: impl Into<String>, field: ImportField) -> Self {
        self.columns.insert(header.into(), field);
        self
    }

    /// Sets the duplicate policy.
    pub fn on_duplicate(mut self, policy: DuplicatePolicy) -> Self {
        self.on_duplicate = policy;
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: ImportMode) -> Self {
        self.mode = mode;
        self
    }
}

/// Why one row (or one cell of it) was rejected.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let report = crm.files().import(&Actor::user("a")?, "客户名称,规模\n甲,巨型\n".as_bytes(), &ImportOptions::default(), |_| {})?;
/// let e = &report.rejected[0];
/// assert_eq!((e.row, e.column.as_deref(), e.value.as_deref()), (2, Some("规模"), Some("巨型")));
/// assert!(e.reason.contains("small, medium, large"), "{}", e.reason);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// The spreadsheet row (the header is row 1; a CSV row's first line).
    pub row: u64,
    /// The column header, when one cell is at fault.
    pub column: Option<String>,
    /// The cell's text.
    pub value: Option<String>,
    /// Why, in words.
    pub reason: String,
}

/// A row that was not written, and why (a duplicate under [`DuplicatePolicy::Skip`], …).
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let report = crm.files().import(&Actor::user("a")?, "客户名称\n星河科技\n星河科技有限公司\n".as_bytes(), &ImportOptions::default(), |_| {})?;
/// assert_eq!((report.skipped[0].row, report.skipped[0].existing), (3, None)); // same as row 2 of the file
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRow {
    /// The spreadsheet row.
    pub row: u64,
    /// The customer it matched, if any.
    pub existing: Option<CustomerId>,
    /// Why.
    pub reason: String,
}

/// What an import did. Every data row is counted exactly once: created, updated, linked,
/// skipped or rejected (a rejected row may carry several errors).
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let file = "客户名称,手机,备注\n甲公司,13800000001,x\n乙公司,123,\n";
/// let r = crm.files().import(&Actor::user("a")?, file.as_bytes(), &ImportOptions::default(), |_| {})?;
/// assert_eq!((r.rows, r.rejected_rows(), r.committed), (2, 1, false)); // all or nothing
/// assert_eq!(r.ignored_columns, ["备注"]);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Data rows read (blank rows aside).
    pub rows: u64,
    /// Customers created.
    pub created: Vec<CustomerId>,
    /// Existing customers updated from a row.
    pub updated: Vec<CustomerId>,
    /// Existing customers a row was linked to.
    pub linked: Vec<CustomerId>,
    /// Rows written nowhere, with the reason.
    pub skipped: Vec<SkippedRow>,
    /// Errors of the rejected rows.
    pub rejected: Vec<RowError>,
    /// Headers that map to no field (their cells are not imported).
    pub ignored_columns: Vec<String>,
    /// Whether anything was written (false for an all-or-nothing import with a rejected row).
    pub committed: bool,
}

impl ImportReport {
    /// How many rows were rejected.
    pub fn rejected_rows(&self) -> u64 {
        self.rejected.iter().map(|e| e.row).collect::<BTreeSet<_>>().len() as u64
    }
}

/// Where an import is.
///
/// ```
/// # use guanxi::*;
/// let mut phases = vec![];
/// Crm::in_memory().files().import(&Actor::user("a")?, "客户名称\n甲\n".as_bytes(), &ImportOptions::default(), |p| phases.push(p.phase))?;
/// assert_eq!(phases, [ImportPhase::Checking, ImportPhase::Done]);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportPhase {
    /// Rows checked (parsed, validated, matched for duplicates).
    Checking,
    /// The write is committed.
    Done,
}

/// Progress, handed to the import's callback every 1,000 rows and at the end.
///
/// ```
/// # use guanxi::*;
/// let mut last = None;
/// Crm::in_memory().files().import(&Actor::user("a")?, "客户名称\n甲\n乙\n".as_bytes(), &ImportOptions::default(), |p| last = Some((p.done, p.total)))?;
/// assert_eq!(last, Some((2, 2)));
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportProgress {
    /// Phase.
    pub phase: ImportPhase,
    /// Rows handled so far.
    pub done: u64,
    /// Rows in the file.
    pub total: u64,
}

/// The stored trace of a committed import, by file digest, so a re-run writes nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ImportRecord {
    at: DateTime<Utc>,
    actor: UserId,
    created: u64,
    updated: u64,
    linked: u64,
}

/// Splits a list cell (tags, several phones) at the separators people type.
fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split([',', ';', '、', '，', '；', '|', '/']).map(str::trim).filter(|t| !t.is_empty())
}

/// Splits a cell of identifiers: at the list separators, but not at a slash or a space,
/// which codes of other countries may contain.
fn split_identifiers(s: &str) -> impl Iterator<Item = &str> {
    s.split([',', ';', '、', '，', '；', '|']).map(str::trim).filter(|t| !t.is_empty())
}

/// One item of an identifiers cell: `scheme:value` (`passport:E12345678`), or a bare value of
/// scheme `other`.
fn parse_identifier(item: &str) -> std::result::Result<Identifier, ValidationReason> {
    match item.split_once([':', '：']) {
        Some((scheme, value))
            if !scheme.trim().is_empty() && scheme.trim().chars().all(|c| c.is_ascii_alphabetic() || c == '_') =>
        {
            Identifier::parse(scheme.trim().to_lowercase().parse::<IdScheme>()?, value)
        }
        _ => Identifier::parse(IdScheme::Other, item),
    }
}

/// The column a validation error path comes from.
fn field_of_path(path: &str) -> Option<ImportField> {
    let head = path.split(['.', '[']).next().unwrap_or(path);
    Some(match head {
        "name" => ImportField::Name,
        "kind" => ImportField::Kind,
        "industry" => ImportField::Industry,
        "size" => ImportField::Size,
        "source" => ImportField::Source,
        "status" => ImportField::Status,
        "level" => ImportField::Level,
        "region" if path.contains("city") => ImportField::City,
        "region" if path.contains("district") => ImportField::District,
        "region" => ImportField::Province,
        "address" => ImportField::Address,
        "identifiers" => ImportField::Identifiers,
        "tags" => ImportField::Tags,
        "owner" => ImportField::Owner,
        "contacts" if path.contains("phones") => ImportField::ContactPhone,
        "contacts" if path.contains("emails") => ImportField::ContactEmail,
        "contacts" if path.contains("title") => ImportField::ContactTitle,
        "contacts" => ImportField::ContactName,
        _ => return None,
    })
}

/// A table's columns resolved to fields.
struct Columns {
    index: HashMap<ImportField, usize>,
    headers: Vec<String>,
}

impl Columns {
    fn resolve(headers: &[String], options: &ImportOptions) -> Result<(Columns, Vec<String>)> {
        let mut index = HashMap::new();
        let mut ignored = Vec::new();
        let mut errs = guanxi_core::ValidationErrors::default();
        for (i, h) in headers.iter().enumerate() {
            let field = options.columns.get(h).copied().or_else(|| ImportField::for_header(h));
            match field {
                Some(f) if index.contains_key(&f) => errs.push(
                    format!("columns.{h}"),
                    ValidationReason::Invalid { detail: format!("maps to {} like an earlier column", f.key()) },
                ),
                Some(f) => {
                    index.insert(f, i);
                }
                None if h.is_empty() => {}
                None => ignored.push(h.clone()),
            }
        }
        // A mapping that misses says what the file has, so the caller can fix it in one go.
        let seen = || headers.iter().filter(|h| !h.is_empty()).cloned().collect::<Vec<_>>().join(", ");
        for header in options.columns.keys().filter(|h| !headers.contains(h)) {
            errs.push(
                format!("columns.{header}"),
                ValidationReason::Invalid { detail: format!("is not a header of the file (its headers: {})", seen()) },
            );
        }
        if !index.contains_key(&ImportField::Name) && !index.contains_key(&ImportField::Code) {
            let detail = format!(
                "no column is the customer name (客户名称) or code (客户编号): the file's headers are {}; \
                 map one with columns (field keys: {})",
                seen(),
                ImportField::ALL.iter().map(|f| f.key()).collect::<Vec<_>>().join(", ")
            );
            errs.push("columns.name", ValidationReason::Invalid { detail });
        }
        errs.into_result(())?;
        Ok((Columns { index, headers: headers.to_vec() }, ignored))
    }

    fn cell<'a>(&self, cells: &'a [String], f: ImportField) -> Option<&'a str> {
        self.index.get(&f).and_then(|i| cells.get(*i)).map(String::as_str).filter(|s| !s.is_empty())
    }

    fn header(&self, f: ImportField) -> Option<String> {
        self.index.get(&f).map(|i| self.headers[*i].clone())
    }
}

/// A row read into an input, and the errors of the cells that could not be read (left out of
/// the input, so that validation still reports every other failing cell).
fn row_input(cols: &Columns, row: u64, cells: &[String]) -> (NewCustomer, Vec<RowError>) {
    let mut errors = Vec::new();
    let mut bad = |f: ImportField, value: &str, reason: String| {
        errors.push(RowError { row, column: cols.header(f), value: Some(value.to_owned()), reason });
    };
    let mut c = NewCustomer::new(cols.cell(cells, ImportField::Name).unwrap_or_default());
    /// A vocabulary cell; a value outside it is an error listing the allowed values.
    fn parse<T: std::str::FromStr<Err = guanxi_core::UnknownName>>(
        cols: &Columns,
        cells: &[String],
        f: ImportField,
        bad: &mut impl FnMut(ImportField, &str, String),
    ) -> Option<T> {
        let v = cols.cell(cells, f)?;
        match v.parse() {
            Ok(x) => Some(x),
            Err(e) => {
                bad(f, v, ValidationReason::from(e).to_string());
                None
            }
        }
    }
    if let Some(k) = parse::<CustomerKind>(cols, cells, ImportField::Kind, &mut bad) {
        c.kind = k;
    }
    c.industry = parse::<Industry>(cols, cells, ImportField::Industry, &mut bad);
    c.size = parse::<SizeBand>(cols, cells, ImportField::Size, &mut bad);
    if let Some(s) = parse::<LifecycleStatus>(cols, cells, ImportField::Status, &mut bad) {
        c.status = s;
    }
    c.level = parse::<Level>(cols, cells, ImportField::Level, &mut bad);
    c.source = cols.cell(cells, ImportField::Source).map(str::to_owned);
    c.address = cols.cell(cells, ImportField::Address).map(str::to_owned);
    let (p, ci, d) = (
        cols.cell(cells, ImportField::Province),
        cols.cell(cells, ImportField::City),
        cols.cell(cells, ImportField::District),
    );
    if p.is_some() || ci.is_some() || d.is_some() {
        c.region = Some(Region {
            province: p.unwrap_or_default().to_owned(),
            city: ci.unwrap_or_default().to_owned(),
            district: d.unwrap_or_default().to_owned(),
        });
    }
    if let Some(t) = cols.cell(cells, ImportField::Tags) {
        c.tags = split_list(t).map(str::to_owned).collect();
    }
    // Identifiers are checked here, cell by cell, so an error names the column it came from.
    for code in cols.cell(cells, ImportField::Uscc).into_iter().flat_map(split_identifiers) {
        match Identifier::parse(IdScheme::Uscc, code) {
            Ok(id) => c.identifiers.push(id),
            Err(reason) => bad(ImportField::Uscc, code, reason.to_string()),
        }
    }
    for item in cols.cell(cells, ImportField::Identifiers).into_iter().flat_map(split_identifiers) {
        match parse_identifier(item) {
            Ok(id) => c.identifiers.push(id),
            Err(reason) => bad(ImportField::Identifiers, item, reason.to_string()),
        }
    }
    if let Some(o) = cols.cell(cells, ImportField::Owner) {
        match UserId::new(o) {
            Ok(u) => c.owner = Some(u),
            Err(e) => bad(ImportField::Owner, o, e.to_string()),
        }
    }
    let (name, title, phone, email) = (
        cols.cell(cells, ImportField::ContactName),
        cols.cell(cells, ImportField::ContactTitle),
        cols.cell(cells, ImportField::ContactPhone),
        cols.cell(cells, ImportField::ContactEmail),
    );
    if name.is_some() || phone.is_some() || email.is_some() {
        // A row with a number but no contact name: the contact goes by the customer's name.
        let mut contact = NewContact::new(name.unwrap_or(c.name.as_str()));
        contact.title = title.map(str::to_owned);
        contact.phones = phone.map(|p| split_list(p).map(str::to_owned).collect()).unwrap_or_default();
        contact.emails = email.map(|e| split_list(e).map(str::to_owned).collect()).unwrap_or_default();
        c.contacts.push(contact);
    }
    (c, errors)
}

/// What the import will do with one checked row.
enum Plan {
    Create(ValidCustomer),
    Apply { existing: CustomerId, valid: ValidCustomer, overwrite: bool },
}

impl Crm {
    /// An empty import file with every column, in Chinese headers, and one example row: CSV
    /// (UTF-8 with a BOM, so Excel shows the Chinese) or .xlsx.
    ///
    /// ```
    /// # use guanxi::*;
    /// let csv = Crm::import_template(FileFormat::Csv)?;
    /// assert!(String::from_utf8(csv).unwrap().starts_with("\u{feff}客户编号,客户名称,"));
    /// let xlsx = Crm::import_template(FileFormat::Xlsx)?;
    /// assert_eq!(FileFormat::detect(&xlsx), FileFormat::Xlsx);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn import_template(format: FileFormat) -> Result<Vec<u8>> {
        let headers: Vec<&str> = ImportField::ALL.iter().map(|f| f.label()).collect();
        let example = [
            "",
            "深圳市星河科技有限公司",
            "企业",
            "信息传输、软件和信息技术服务业",
            "中型",
            "展会",
            "潜在",
            "",
            "广东省",
            "深圳市",
            "南山区",
            "科技园科苑路 15 号",
            "91350100M000100Y43",
            "",
            "VIP、华南",
            "",
            "张伟",
            "采购经理",
            "13812345678",
            "zhang.wei@example.com",
        ];
        crate::export::write_rows(
            format,
            &headers,
            std::iter::once(Ok(example.iter().map(|s| (*s).to_owned()).collect())),
        )
    }
}

/// Rows checked per written chunk: what an import holds in memory at once.
const CHUNK_ROWS: usize = 1_000;

/// Neighbour profiles an import keeps between chunks (a few hundred bytes each): the bound of
/// its duplicate-check cache, whatever the file's size.
const CACHED_PROFILES: usize = 20_000;

/// One import under way: the rows of the current chunk, what earlier chunks did, and the
/// report.
struct ImportRun<'a> {
    crm: &'a Crm,
    actor: &'a Actor,
    allowed: &'a Allowed,
    options: &'a ImportOptions,
    cols: &'a Columns,
    ctx: &'a guanxi_core::ValidationContext,
    rules: &'a MatchRules,
    reader: &'a Reader,
    now: DateTime<Utc>,
    report: ImportReport,
    /// The checked rows of this chunk, not yet written.
    chunk: Vec<(u64, Plan)>,
    /// Their profiles, for duplicates within the chunk (earlier chunks are in the store).
    chunk_index: ProfileIndex,
    /// Neighbours' profiles, read once while they stay under [`CACHED_PROFILES`] (those a
    /// chunk changes are forgotten when it is written).
    cache: ProfileCache,
    /// Existing customers a row applies to, with that row.
    touched: HashMap<CustomerId, u64>,
    /// Customers this import created, with their row: a later row matching one is a
    /// duplicate within the file, not of a stored customer.
    created_rows: HashMap<CustomerId, u64>,
    /// Events to publish after the commit; none are kept when nobody listens.
    events: Option<Vec<DomainEvent>>,
}

impl ImportRun<'_> {
    /// Checks one row: rejected, skipped, or planned into the chunk (written when full).
    fn row(&mut self, tx: &dyn StoreView, row: u64, cells: &[String]) -> Result<()> {
        let cols = self.cols;
        // Every failing cell of the row is reported: those that could not be read, the code, and
        // what validation finds in the rest.
        let (mut input, mut errors) = row_input(cols, row, cells);
        let by_code = match cols.cell(cells, ImportField::Code) {
            None => None,
            Some(code) => {
                let code = guanxi_core::normalize::code(code);
                let found = tx.customer_by_code(&code)?.filter(|c| !c.is_deleted());
                if found.is_none() {
                    errors.push(RowError {
                        row,
                        column: cols.header(ImportField::Code),
                        value: Some(code),
                        reason: "is not the code of a customer".into(),
                    });
                }
                found
            }
        };
        if input.name.is_empty()
            && let Some(c) = &by_code
        {
            input.name = c.name.clone();
        }
        let valid = match input.validate(self.ctx) {
            Ok(v) if errors.is_empty() => v,
            Ok(_) => {
                self.report.rejected.extend(errors);
                return Ok(());
            }
            Err(errs) => {
                errors.extend(errs.iter().map(|e| {
                    let field = field_of_path(&e.field);
                    RowError {
                        row,
                        column: field.and_then(|f| cols.header(f)),
                        value: field.and_then(|f| cols.cell(cells, f)).map(str::to_owned),
                        reason: format!("{} {}", e.field, e.reason),
                    }
                }));
                self.report.rejected.extend(errors);
                return Ok(());
            }
        };
        let policy = self.options.on_duplicate;
        let mut profile = input_profile(&valid);
        let stored = if policy == DuplicatePolicy::Create {
            Vec::new()
        } else {
            let none = NotDuplicates::new();
            self.crm.raw_candidates(tx, self.reader, &profile, self.rules, &none, &mut self.cache)?
        };
        // An earlier row of the file: one of this chunk, or one an earlier chunk created.
        let earlier = if policy == DuplicatePolicy::Create {
            None
        } else {
            self.chunk_index.best(&profile, self.rules).map(|(r, m, _)| (r, m)).or_else(|| {
                stored.iter().find_map(|(m, _)| {
                    let r = m.id.and_then(|id| self.created_rows.get(&id))?;
                    Some((*r, m.clone()))
                })
            })
        };
        if let Some((earlier, m)) = earlier {
            self.report.skipped.push(SkippedRow {
                row,
                existing: None,
                reason: format!("same customer as row {earlier} ({})", describe(&m)),
            });
            return Ok(());
        }
        // A code names the customer outright; otherwise the rules decide.
        let existing: Option<(Option<CustomerId>, String)> = match &by_code {
            Some(c) if !self.reader.admits(c) => Some((None, format!("has the code of {WITHHELD}"))),
            Some(c) => Some((Some(c.id), format!("has the code of {} {}", c.code, c.name))),
            None => stored.into_iter().next().map(|(m, readable)| {
                let m = self.reader.show(m, readable);
                (m.id, describe(&m))
            }),
        };
        let plan = match (existing, policy) {
            (Some((id, why)), DuplicatePolicy::Skip) => {
                self.report.skipped.push(SkippedRow { row, existing: id, reason: format!("duplicate: {why}") });
                return Ok(());
            }
            // A customer the actor cannot read is neither updated nor linked to, and a
            // second one is not created beside it.
            (Some((None, why)), _) => {
                self.report.skipped.push(SkippedRow {
                    row,
                    existing: None,
                    reason: format!("duplicate, not changed: {why}"),
                });
                return Ok(());
            }
            (Some((Some(id), why)), policy) => {
                if let Some(first) = self.touched.get(&id) {
                    self.report.skipped.push(SkippedRow {
                        row,
                        existing: Some(id),
                        reason: format!("row {first} already applies to the same customer ({why})"),
                    });
                    return Ok(());
                }
                self.touched.insert(id, row);
                Plan::Apply { existing: id, valid, overwrite: policy == DuplicatePolicy::Update }
            }
            (None, _) => Plan::Create(valid),
        };
        if policy != DuplicatePolicy::Create {
            profile.code = format!("row {row}");
            self.chunk_index.add(row, profile, true, self.rules);
        }
        self.chunk.push((row, plan));
        if self.chunk.len() >= CHUNK_ROWS {
            self.flush(tx)?;
        }
        Ok(())
    }

    /// Writes the chunk's rows into the session and starts the next chunk.
    fn flush(&mut self, tx: &dyn StoreView) -> Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let (crm, actor, now) = (self.crm, self.actor, self.now);
        let mut wtx = crm.begin_in(tx, self.allowed, actor, now);
        let mut creates = Vec::new();
        let mut create_rows = Vec::new();
        for (row, plan) in std::mem::take(&mut self.chunk) {
            match plan {
                Plan::Create(v) => {
                    creates.push(v);
                    create_rows.push(row);
                }
                Plan::Apply { existing, valid, overwrite } => {
                    self.cache.forget(existing);
                    let c = crm.stage_link(&mut wtx, actor, self.allowed, existing, valid, overwrite)?;
                    if overwrite { self.report.updated.push(c) } else { self.report.linked.push(c) }
                }
            }
        }
        let first_created = wtx.staged().customers.len();
        crm.stage_customers(&mut wtx, actor, self.allowed, creates)?;
        for (w, row) in wtx.staged().customers[first_created..].iter().zip(create_rows) {
            let id = w.record().id;
            self.report.created.push(id);
            self.created_rows.insert(id, row);
        }
        let (_, events) = wtx.apply_in_session()?;
        if let Some(buffer) = &mut self.events {
            buffer.extend(events);
        }
        self.chunk_index = ProfileIndex::default();
        self.cache.bound(CACHED_PROFILES);
        Ok(())
    }

    /// Writes the import's trace (its digest, so a re-run writes nothing) and log entry.
    fn finish(&mut self, tx: &dyn StoreView, total: u64, digest_key: &str) -> Result<()> {
        let (actor, now, report) = (self.actor, self.now, &self.report);
        let record = ImportRecord {
            at: now,
            actor: actor.user_id().clone(),
            created: report.created.len() as u64,
            updated: report.updated.len() as u64,
            linked: report.linked.len() as u64,
        };
        let mut wtx = self.crm.begin_in(tx, self.allowed, actor, now);
        let entry = Entry::new(
            EntityKind::Customer,
            digest_key,
            ChangeAction::Create,
            vec![
                FieldChange::new("import.rows", None, Some(total.into())),
                FieldChange::new("import.created", None, Some(record.created.into())),
                FieldChange::new("import.updated", None, Some(record.updated.into())),
                FieldChange::new("import.linked", None, Some(record.linked.into())),
                FieldChange::new("import.skipped", None, Some(report.skipped.len().into())),
                FieldChange::new("import.rejected", None, Some(report.rejected_rows().into())),
            ],
        );
        wtx.put_setting(digest_key.to_owned(), None, &record, [entry], [])?;
        wtx.apply_in_session().map(drop)
    }
}

fn describe(m: &MatchCandidate) -> String {
    let reasons: Vec<String> = m.reasons.iter().map(ToString::to_string).collect();
    format!("{} (score {:.2})", reasons.join("; "), m.score)
}

/// The digest key of a file and the options it was imported with.
fn import_key(bytes: &[u8], options: &ImportOptions) -> Result<String> {
    let mut h = Sha256::new();
    h.update(bytes);
    h.update(serde_json::to_vec(options).map_err(|e| guanxi_core::StorageError::with_source("import options", e))?);
    let hex: String = h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
    Ok(format!("import.{hex}"))
}

/// Profiles indexed by the match rules' block keys, in memory: the rows of the chunk being
/// checked (the store does not hold them yet). Keys shared by more than the rules' block cap
/// are ignored, as the scan does.
#[derive(Default)]
struct ProfileIndex {
    /// Each profile with its tag and whether the importing actor may read its customer.
    profiles: Vec<(u64, MatchProfile, bool)>,
    /// Profiles by the rules' block keys ([`guanxi_core::dedup::Blocking::lookup_keys`]).
    by_key: HashMap<u64, Vec<usize>>,
}

impl ProfileIndex {
    /// The best-scoring duplicate of `p` at or above the threshold, with its tag (the row).
    fn best(&self, p: &MatchProfile, rules: &MatchRules) -> Option<(u64, MatchCandidate, bool)> {
        let max = rules.blocking.max_block as usize;
        let mut seen = BTreeSet::new();
        let mut best: Option<(u64, MatchCandidate, bool)> = None;
        for k in rules.blocking.lookup_keys(p) {
            let Some(block) = self.by_key.get(&k).filter(|b| b.len() <= max) else { continue };
            for &i in block {
                if !seen.insert(i) {
                    continue;
                }
                let (tag, other, readable) = &self.profiles[i];
                if let Some(m) = rules.duplicate(p, other)
                    && best.as_ref().is_none_or(|(_, b, _)| m.score > b.score)
                {
                    best = Some((*tag, m, *readable));
                }
            }
        }
        best
    }

    fn add(&mut self, tag: u64, p: MatchProfile, readable: bool, rules: &MatchRules) {
        let i = self.profiles.len();
        for k in rules.blocking.lookup_keys(&p) {
            self.by_key.entry(k).or_default().push(i);
        }
        self.profiles.push((tag, p, readable));
    }
}

impl Files<'_> {
    /// Imports customers from a CSV or .xlsx file (detected from its bytes), with contacts and
    /// tags, checking each row for duplicates against the store and the rows before it.
    /// Every bad row is reported with its row, column, value and reason; with
    /// [`ImportMode::AllOrNothing`] any bad row means nothing is written. The same file
    /// imported again writes nothing (its rows are reported skipped). `progress` hears about
    /// every 1,000 rows and the end.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let file = "客户名称,手机,标签\n华为技术有限公司,13812345678,VIP\n星河科技,1381234,\n华为技术股份有限公司,,\n";
    /// let report = crm.files().import(&alice, file.as_bytes(), &ImportOptions::default().mode(ImportMode::KeepGood), |_| {})?;
    /// assert_eq!((report.created.len(), report.skipped.len(), report.rejected_rows()), (1, 1, 1));
    /// assert_eq!(report.rejected[0].row, 3);
    /// assert_eq!(report.rejected[0].column.as_deref(), Some("手机"));
    /// assert_eq!(report.rejected[0].value.as_deref(), Some("1381234"));
    /// assert!(report.skipped[0].reason.contains("华为技术有限公司"));
    /// let again = crm.files().import(&alice, file.as_bytes(), &ImportOptions::default().mode(ImportMode::KeepGood), |_| {})?;
    /// assert!(again.created.is_empty());
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn import(
        &self,
        actor: &Actor,
        bytes: &[u8],
        options: &ImportOptions,
        mut progress: impl FnMut(ImportProgress),
    ) -> Result<ImportReport> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Customer)?;
        // A first pass checks the file's shape and limits and counts its rows, holding none:
        // a file that cannot be read whole fails before anything is written.
        let (headers, total) = read_rows(bytes, &options.limits, &mut |_, _| Ok(()))?;
        let (cols, ignored_columns) = Columns::resolve(&headers, options)?;
        let mut report = ImportReport { rows: total, ignored_columns, ..Default::default() };

        let digest_key = import_key(bytes, options)?;
        if let Some(done) = self.crm.store.setting(&digest_key)? {
            let record: ImportRecord = decode(&done)?;
            let reason = format!("already imported by {} at {}", record.actor, record.at);
            read_rows(bytes, &options.limits, &mut |row, _| {
                report.skipped.push(SkippedRow { row, existing: None, reason: reason.clone() });
                Ok(())
            })?;
            progress(ImportProgress { phase: ImportPhase::Done, done: total, total });
            return Ok(report);
        }

        let ctx = self.crm.validation_context()?;
        let rules = self.crm.load_match_rules()?;
        // Duplicates outside the actor's read scope are named to no one (see MatchCandidate).
        let reader = self.crm.reader(&allowed, actor);
        let mut run = ImportRun {
            crm: self.crm,
            actor,
            allowed: &allowed,
            options,
            cols: &cols,
            ctx: &ctx,
            rules: &rules,
            reader: &reader,
            now: self.crm.clock.now(),
            report,
            chunk: Vec::new(),
            chunk_index: ProfileIndex::default(),
            cache: ProfileCache::default(),
            touched: HashMap::new(),
            created_rows: HashMap::new(),
            events: self.crm.events.has_listeners().then(Vec::new),
        };
        // One write session: rows are checked and written a chunk at a time (memory holds
        // one chunk, never the file), and all of it commits at the end or none of it does.
        let mut rolled_back = false;
        let outcome = self.crm.store.write_session(&mut |tx| {
            let mut done = 0u64;
            read_rows(bytes, &options.limits, &mut |row, cells| {
                if done.is_multiple_of(1000) && done > 0 {
                    progress(ImportProgress { phase: ImportPhase::Checking, done, total });
                }
                done += 1;
                run.row(tx, row, &cells)
            })?;
            run.flush(tx)?;
            progress(ImportProgress { phase: ImportPhase::Checking, done: total, total });
            if options.mode == ImportMode::AllOrNothing && !run.report.rejected.is_empty() {
                rolled_back = true;
                return Err(Error::InvalidState("a rejected row rolls the import back".into()));
            }
            run.finish(tx, total, &digest_key)
        });
        let ImportRun { mut report, events, now, .. } = run;
        match outcome {
            Err(_) if rolled_back => {
                report.created.clear();
                report.updated.clear();
                report.linked.clear();
                return Ok(report);
            }
            Err(e) => return Err(e),
            Ok(()) => {}
        }
        self.crm.publish(actor, now, events.unwrap_or_default());
        report.committed = true;
        progress(ImportProgress { phase: ImportPhase::Done, done: total, total });
        Ok(report)
    }
}
