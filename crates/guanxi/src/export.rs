//! Exporting customers, contacts and follow-ups as CSV, .xlsx or JSON Lines, streamed: the
//! customers are read a page at a time and each row is written as it is read (.xlsx sheets in
//! constant-memory mode), so a million rows never sit in memory at once.

use std::io::Write;
use std::path::Path;

use rust_xlsxwriter::{Format, Workbook, Worksheet};
use serde_json::Value;

use guanxi_core::{
    Action, Actor, ChangeAction, Contact, Customer, CustomerFilter, EntityKind, Error, FieldChange, IdScheme,
    Interaction, PageRequest, Result, StorageError,
};

use crate::columns::ImportField;
use crate::crm::Crm;
use crate::handles::Files;
use crate::table::FileFormat;
use crate::write::Entry;

/// What to export.
///
/// ```
/// use guanxi::ExportEntity;
/// assert_eq!(ExportEntity::Contacts.as_str(), "contacts");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportEntity {
    /// One row per customer, in the import template's columns (with its primary contact), so
    /// an export imports back.
    Customers,
    /// One row per live contact of the customers.
    Contacts,
    /// One row per follow-up of the customers.
    Interactions,
}

impl ExportEntity {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportEntity::Customers => "customers",
            ExportEntity::Contacts => "contacts",
            ExportEntity::Interactions => "interactions",
        }
    }

    fn headers(self) -> Vec<&'static str> {
        match self {
            ExportEntity::Customers => ImportField::ALL.iter().map(|f| f.label()).collect(),
            ExportEntity::Contacts => {
                vec!["客户编号", "客户名称", "联系人", "职务", "手机", "邮箱", "角色", "主联系人"]
            }
            ExportEntity::Interactions => {
                vec!["客户编号", "客户名称", "时间", "类型", "内容", "下一步", "下次联系", "反馈", "记录人"]
            }
        }
    }
}

fn xlsx_err(e: rust_xlsxwriter::XlsxError) -> Error {
    StorageError::with_source("the .xlsx file could not be written", e).into()
}

fn io_err(e: std::io::Error) -> Error {
    StorageError::with_source("the export could not be written", e).into()
}

/// Excel's row limit per sheet: longer exports continue on further sheets.
const XLSX_MAX_ROWS: u32 = 1_048_576;

/// A file being written row by row.
enum Sink<W: Write + Send> {
    Csv(csv::Writer<W>),
    Xlsx { out: W, book: Workbook, sheet: Worksheet, row: u32, headers: Vec<String>, sheets: u32 },
    JsonLines(W),
}

impl<W: Write + Send> Sink<W> {
    fn new(format: FileFormat, headers: &[&str], mut out: W) -> Result<Sink<W>> {
        let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
        Ok(match format {
            FileFormat::Csv => {
                // A BOM, so Excel reads the Chinese as UTF-8.
                out.write_all("\u{feff}".as_bytes()).map_err(io_err)?;
                let mut w = csv::Writer::from_writer(out);
                w.write_record(&headers).map_err(|e| io_err(e.into()))?;
                Sink::Csv(w)
            }
            FileFormat::Xlsx => {
                let mut book = Workbook::new();
                let sheet = new_sheet(&mut book, &headers)?;
                Sink::Xlsx { out, book, sheet, row: 1, headers, sheets: 1 }
            }
            FileFormat::JsonLines => Sink::JsonLines(out),
        })
    }

    fn row(&mut self, cells: &[String], json: &Value) -> Result<()> {
        match self {
            Sink::Csv(w) => w.write_record(cells).map_err(|e| io_err(e.into())),
            Sink::Xlsx { book, sheet, row, headers, sheets, .. } => {
                if *row == XLSX_MAX_ROWS {
                    let full = std::mem::replace(sheet, new_sheet(book, headers)?);
                    book.push_worksheet(full);
                    *sheets += 1;
                    sheet.set_name(format!("Sheet{sheets}")).map_err(xlsx_err)?;
                    *row = 1;
                }
                for (c, text) in cells.iter().enumerate() {
                    if !text.is_empty() {
                        sheet.write_string(*row, c as u16, text).map_err(xlsx_err)?;
                    }
                }
                *row += 1;
                Ok(())
            }
            Sink::JsonLines(w) => {
                serde_json::to_writer(&mut *w, json).map_err(|e| io_err(e.into()))?;
                w.write_all(b"\n").map_err(io_err)
            }
        }
    }

    fn finish(self) -> Result<()> {
        match self {
            Sink::Csv(mut w) => w.flush().map_err(io_err),
            Sink::Xlsx { out, mut book, sheet, .. } => {
                book.push_worksheet(sheet);
                book.save_to_writer(out).map_err(xlsx_err)
            }
            Sink::JsonLines(mut w) => w.flush().map_err(io_err),
        }
    }
}

fn new_sheet(book: &mut Workbook, headers: &[String]) -> Result<Worksheet> {
    let mut sheet = book.new_worksheet_with_constant_memory().map_err(xlsx_err)?;
    let bold = Format::new().set_bold();
    for (c, h) in headers.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, h, &bold).map_err(xlsx_err)?;
    }
    Ok(sheet)
}

/// Writes rows (headers first) into a new file of `format`, in memory (for small files such
/// as the import template).
pub(crate) fn write_rows(
    format: FileFormat,
    headers: &[&str],
    rows: impl Iterator<Item = Result<Vec<String>>>,
) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut sink = Sink::new(format, headers, &mut buf)?;
    for r in rows {
        let cells = r?;
        let json: Value = headers.iter().zip(&cells).map(|(h, c)| ((*h).to_owned(), Value::from(c.as_str()))).collect();
        sink.row(&cells, &json)?;
    }
    sink.finish()?;
    Ok(buf)
}

/// A list cell, joined with the separator import splits at.
fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join("、")
}

fn customer_cells(c: &Customer, primary: Option<&Contact>) -> Vec<String> {
    let opt = |s: Option<&str>| s.unwrap_or_default().to_owned();
    let region = c.region.as_ref();
    ImportField::ALL
        .iter()
        .map(|f| match f {
            ImportField::Code => c.code.clone(),
            ImportField::Name => c.name.clone(),
            ImportField::Kind => c.kind.label_zh().to_owned(),
            ImportField::Industry => opt(c.industry.map(|i| i.name_zh())),
            ImportField::Size => opt(c.size.map(|s| s.label_zh())),
            ImportField::Source => opt(c.source.as_deref()),
            ImportField::Status => c.status.label_zh().to_owned(),
            ImportField::Level => opt(c.level.map(|l| l.label_zh())),
            ImportField::Province => opt(region.map(|r| r.province.as_str())),
            ImportField::City => opt(region.map(|r| r.city.as_str())),
            ImportField::District => opt(region.map(|r| r.district.as_str())),
            ImportField::Address => opt(c.address.as_deref()),
            ImportField::Uscc => {
                list(c.identifiers.iter().filter(|i| i.scheme == IdScheme::Uscc).map(|i| i.value.as_str()))
            }
            // The other identifiers as `scheme:value`, which import reads back.
            ImportField::Identifiers => c
                .identifiers
                .iter()
                .filter(|i| i.scheme != IdScheme::Uscc)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("、"),
            ImportField::Tags => list(c.tags.iter().map(String::as_str)),
            ImportField::Owner => opt(c.owner.as_ref().map(|o| o.as_str())),
            ImportField::ContactName => opt(primary.map(|p| p.name.as_str())),
            ImportField::ContactTitle => opt(primary.and_then(|p| p.title.as_deref())),
            ImportField::ContactPhone => primary.map(|p| list(p.phones.iter().map(|x| x.as_str()))).unwrap_or_default(),
            ImportField::ContactEmail => primary.map(|p| list(p.emails.iter().map(|x| x.as_str()))).unwrap_or_default(),
        })
        .collect()
}

fn contact_cells(c: &Customer, p: &Contact) -> Vec<String> {
    vec![
        c.code.clone(),
        c.name.clone(),
        p.name.clone(),
        p.title.clone().unwrap_or_default(),
        list(p.phones.iter().map(|x| x.as_str())),
        list(p.emails.iter().map(|x| x.as_str())),
        p.role.map(|r| r.label_zh().to_owned()).unwrap_or_default(),
        if p.primary { "是" } else { "否" }.to_owned(),
    ]
}

fn interaction_cells(c: &Customer, i: &Interaction) -> Vec<String> {
    vec![
        c.code.clone(),
        c.name.clone(),
        i.at.to_rfc3339(),
        i.kind.label_zh().to_owned(),
        i.content.clone(),
        i.next_step.clone().unwrap_or_default(),
        i.next_contact_on.map(|d| d.to_string()).unwrap_or_default(),
        i.feedback.clone().unwrap_or_default(),
        i.author.as_str().to_owned(),
    ]
}

impl Crm {
    /// [`Files::export_to`](crate::Files::export_to) once the export is authorized.
    fn export_allowed<W: Write + Send>(
        &self,
        actor: &Actor,
        allowed: &crate::permission::Allowed,
        entity: ExportEntity,
        filter: &CustomerFilter,
        format: FileFormat,
        out: W,
    ) -> Result<u64> {
        let scoped = self.scoped_filter(filter, allowed)?;
        let mut sink = Sink::new(format, &entity.headers(), out)?;
        let mut rows = 0u64;
        let mut page = PageRequest::first(1000);
        loop {
            let p = self.store.list_customers(&scoped, &page)?;
            for c in p.items {
                let c = allowed.show_customer(c);
                match entity {
                    ExportEntity::Customers => {
                        let contacts = self.store.contacts_of(c.id)?;
                        let primary = contacts.into_iter().find(|x| x.primary).map(|x| allowed.show_contact(x));
                        let json = crate::plumbing::to_json(&c);
                        sink.row(&customer_cells(&c, primary.as_ref()), &json)?;
                        rows += 1;
                    }
                    ExportEntity::Contacts => {
                        for x in self.store.contacts_of(c.id)? {
                            let x = allowed.show_contact(x);
                            sink.row(&contact_cells(&c, &x), &crate::plumbing::to_json(&x))?;
                            rows += 1;
                        }
                    }
                    ExportEntity::Interactions => {
                        for i in self.store.interactions_of(c.id)? {
                            sink.row(&interaction_cells(&c, &i), &crate::plumbing::to_json(&i))?;
                            rows += 1;
                        }
                    }
                }
            }
            match p.next {
                Some(next) => page = PageRequest::after(next, 1000),
                None => break,
            }
        }
        sink.finish()?;
        self.log_export(
            actor,
            allowed,
            vec![
                FieldChange::new("rows", None, Some(Value::from(rows))),
                FieldChange::new("entity", None, Some(Value::from(entity.as_str()))),
                FieldChange::new("format", None, Some(Value::from(format!("{format:?}")))),
                FieldChange::new("filter", None, Some(Value::from(format!("{filter:?}")))),
            ],
        )?;
        Ok(rows)
    }
}

impl Files<'_> {
    /// Exports like [`Files::export_to`](crate::Files::export_to) into the file at `path`, created or replaced only when
    /// the export succeeds: the rows go to a temporary file beside it, renamed over `path` at
    /// the end. A refused export (no permission, no elevation) or a failed one leaves an
    /// existing file untouched.
    ///
    /// ```
    /// # use guanxi::*;
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("customers.csv");
    /// let crm = Crm::in_memory();
    /// crm.customers().create(&Actor::user("alice")?, NewCustomer::new("甲公司"))?;
    /// assert_eq!(crm.files().export_to_path(&Actor::user("alice")?, ExportEntity::Customers, &CustomerFilter::default(), FileFormat::Csv, &path)?, 1);
    /// assert!(std::fs::read_to_string(&path).unwrap().contains("甲公司"));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn export_to_path(
        &self,
        actor: &Actor,
        entity: ExportEntity,
        filter: &CustomerFilter,
        format: FileFormat,
        path: &std::path::Path,
    ) -> Result<u64> {
        // Refuse before touching the file system at all.
        let allowed = self.crm.authorize(actor, Action::Export, EntityKind::Customer)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        let cannot = |e: std::io::Error| -> Error {
            StorageError::with_source(format!("cannot write {}", path.display()), e).into()
        };
        let tmp = tempfile::Builder::new().prefix(".guanxi-export-").tempfile_in(dir).map_err(cannot)?;
        let mut out = std::io::BufWriter::new(tmp);
        let rows = self.crm.export_allowed(actor, &allowed, entity, filter, format, &mut out)?;
        let tmp = out.into_inner().map_err(|e| cannot(e.into_error()))?;
        tmp.as_file().sync_all().map_err(cannot)?;
        tmp.persist(path).map_err(|e| cannot(e.error))?;
        Ok(rows)
    }

    /// Streams the customers matching `filter` that the actor may export — or their contacts,
    /// or their follow-ups — into `out` as CSV (UTF-8 with a BOM), .xlsx or JSON Lines (one
    /// record per line, as the record serializes), and returns the number of rows. Masked like
    /// any read; a sensitive operation (elevated, when access control is on), logged with its
    /// size, entity, format and filter.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("华为技术有限公司").tag("VIP").contact(NewContact::new("张伟").phone("13812345678")))?;
    /// let mut csv = Vec::new();
    /// let n = crm.files().export_to(&alice, ExportEntity::Customers, &CustomerFilter::default(), FileFormat::Csv, &mut csv)?;
    /// assert_eq!(n, 1);
    /// let text = String::from_utf8(csv).unwrap();
    /// assert!(text.lines().nth(1).unwrap().contains("华为技术有限公司,企业"));
    /// // An export imports back: the code column finds the same customer.
    /// let report = crm.files().import(&alice, text.as_bytes(), &ImportOptions::default(), |_| {})?;
    /// assert_eq!((report.created.len(), report.skipped.len()), (0, 1));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn export_to<W: Write + Send>(
        &self,
        actor: &Actor,
        entity: ExportEntity,
        filter: &CustomerFilter,
        format: FileFormat,
        out: W,
    ) -> Result<u64> {
        let allowed = self.crm.authorize(actor, Action::Export, EntityKind::Customer)?;
        self.crm.export_allowed(actor, &allowed, entity, filter, format, out)
    }

    /// Writes a consistent online backup to a new file `dest` (writers may keep writing), after
    /// logging the backup itself; returns the audit check of the copy.
    ///
    /// ```
    /// # use guanxi::*;
    /// let dir = tempfile::tempdir().unwrap();
    /// let crm = Crm::open(dir.path().join("crm.db"))?;
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// let check = crm.files().backup(&alice, &dir.path().join("backup.db"))?;
    /// assert!(check.is_intact());
    /// assert_eq!(check.entries, 2); // the create, and the backup itself
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn backup(&self, actor: &Actor, dest: &Path) -> Result<guanxi_core::AuditCheck> {
        let allowed = self.crm.authorize_log(actor, Action::Export)?;
        // Refuse before logging, so the log never records a backup that could not be made.
        if dest.exists() {
            return Err(Error::InvalidState(format!("backup target {} already exists", dest.display())));
        }
        let record = |change: FieldChange| {
            let mut tx = self.crm.begin(&allowed, actor);
            tx.log(Entry::new(EntityKind::ChangeLog, "backup", ChangeAction::Export, vec![change]));
            tx.commit().map(drop)
        };
        record(FieldChange::new("backup", None, Some(Value::from(dest.display().to_string()))))?;
        if let Err(e) = self.crm.store.backup_to(dest) {
            // The attempt is on record; so is its failure.
            record(FieldChange::new("failed", None, Some(Value::from(e.to_string()))))?;
            return Err(e);
        }
        self.crm.store.open_backup(dest)?.verify_change_log()
    }
}
