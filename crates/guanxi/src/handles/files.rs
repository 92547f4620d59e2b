//! Files (导入导出): [`Files`].

use std::io::Write;
use std::path::Path;

use crate::crm::Crm;
use crate::*;

/// Files (导入导出): importing customers, exporting records, and backups.
///
/// Got from [`Crm`] as `crm.files()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
/// let mut csv = Vec::new();
/// let n = crm.files().export_to(&alice, ExportEntity::Customers, &CustomerFilter::default(), FileFormat::Csv, &mut csv)?;
/// assert_eq!(n, 1);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Files<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Files<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Files")
    }
}

impl<'a> Files<'a> {
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
        self.crm.backup(actor, dest)
    }

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
        self.crm.export_to_path(actor, entity, filter, format, path)
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
        self.crm.export_to(actor, entity, filter, format, out)
    }

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
        progress: impl FnMut(ImportProgress),
    ) -> Result<ImportReport> {
        self.crm.import_customers(actor, bytes, options, progress)
    }
}
