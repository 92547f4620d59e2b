//! Spreadsheet files as rows of text: CSV in UTF-8 (with or without BOM), UTF-16 (with BOM) or
//! GB18030 (which contains GBK, what Chinese Excel writes), and Excel .xlsx (first sheet).

use std::io::{Cursor, Read};

use calamine::{Data, Reader, Xlsx};
use guanxi_core::{Error, Result, ValidationReason};

/// A file format for import and export.
///
/// ```
/// use guanxi::FileFormat;
/// assert_eq!(FileFormat::detect(b"PK\x03\x04rest"), FileFormat::Xlsx);
/// assert_eq!(FileFormat::detect("客户名称\n".as_bytes()), FileFormat::Csv);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileFormat {
    /// Comma-separated values.
    Csv,
    /// Excel workbook (Office Open XML).
    Xlsx,
    /// One JSON object per line (export only).
    JsonLines,
}

impl FileFormat {
    /// The format of a file's bytes: .xlsx files are zip archives; anything else is read as CSV.
    pub fn detect(bytes: &[u8]) -> FileFormat {
        if bytes.starts_with(b"PK\x03\x04") { FileFormat::Xlsx } else { FileFormat::Csv }
    }
}

/// A file read as text, whole: the header row and the data rows with their spreadsheet row
/// numbers (the header is row 1). Imports never hold one; they stream ([`read_rows`]).
#[cfg(test)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table {
    pub(crate) headers: Vec<String>,
    pub(crate) rows: Vec<(u64, Vec<String>)>,
}

/// A data row handler: the row's spreadsheet number and its cells.
pub(crate) type OnRow<'a> = dyn FnMut(u64, Vec<String>) -> Result<()> + 'a;

fn unreadable_workbook(e: impl std::fmt::Display) -> Error {
    bad_file(format!("is not a readable .xlsx workbook: {e}"))
}

fn bad_file(detail: impl Into<String>) -> Error {
    Error::invalid("file", ValidationReason::Invalid { detail: detail.into() })
}

/// The text of a CSV file: a BOM decides the encoding; without one, valid UTF-8 is UTF-8 and
/// anything else must be valid GB18030.
pub(crate) fn decode_text(bytes: &[u8]) -> Result<String> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom..]);
        if had_errors {
            return Err(bad_file(format!("is not valid {} after its byte-order mark", encoding.name())));
        }
        return Ok(text.into_owned());
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    let (text, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(bad_file("is neither UTF-8 nor GB18030/GBK text"));
    }
    Ok(text.into_owned())
}

/// Bounds on what an import reads, so a small or hostile file cannot exhaust the host: each
/// is checked while reading, and passing one is a validation error naming it (`file.bytes`,
/// `file.decompressed_bytes`, `file.rows`, `file.columns`, `file.cell`).
///
/// ```
/// use guanxi::{Actor, Crm, ImportLimits, ImportOptions, ValidationReason};
/// let limits = ImportLimits { max_rows: 1, ..ImportLimits::default() };
/// let options = ImportOptions { limits, ..ImportOptions::default() };
/// let err = Crm::in_memory().files().import(&Actor::user("a")?, "客户名称\n甲\n乙\n".as_bytes(), &options, |_| {}).unwrap_err();
/// let guanxi::Error::Validation(errs) = err else { panic!() };
/// assert_eq!(errs.0[0].field, "file.rows");
/// assert_eq!(errs.0[0].reason, ValidationReason::TooLarge { max: 1, unit: "rows".into() });
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ImportLimits {
    /// The file's size (default 256 MiB).
    pub max_file_bytes: u64,
    /// What an .xlsx file's parts inflate to, all together (default 1 GiB): a zip bomb stops here.
    pub max_decompressed_bytes: u64,
    /// Data rows (default 1,000,000, Excel's own limit being 1,048,576).
    pub max_rows: u64,
    /// Columns of a row (default 1,024).
    pub max_columns: u32,
    /// Characters in one cell (default 32,767, Excel's own limit).
    pub max_cell_chars: u32,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits {
            max_file_bytes: 256 << 20,
            max_decompressed_bytes: 1 << 30,
            max_rows: 1_000_000,
            max_columns: 1_024,
            max_cell_chars: 32_767,
        }
    }
}

impl ImportLimits {
    /// Whether these are the default limits.
    pub fn is_default(&self) -> bool {
        *self == ImportLimits::default()
    }
}

fn too_large(field: &str, max: u64, unit: &str) -> Error {
    Error::invalid(field, ValidationReason::TooLarge { max, unit: unit.to_owned() })
}

/// Hands rows on while enforcing the row, column and cell limits; keeps the header row.
struct RowSink<'a, 'f> {
    limits: &'a ImportLimits,
    headers: Option<Vec<String>>,
    rows: u64,
    on_row: &'a mut OnRow<'f>,
}

impl<'a, 'f> RowSink<'a, 'f> {
    fn new(limits: &'a ImportLimits, on_row: &'a mut OnRow<'f>) -> Self {
        RowSink { limits, headers: None, rows: 0, on_row }
    }

    /// Checks one cell's text against the cell limit.
    fn cell(&self, row: u64, column: usize, text: &str) -> Result<()> {
        if text.len() > self.limits.max_cell_chars as usize
            && text.chars().count() > self.limits.max_cell_chars as usize
        {
            return Err(Error::invalid(
                "file.cell",
                ValidationReason::Invalid {
                    detail: format!(
                        "row {row}, column {}: exceeds the limit of {} characters",
                        column + 1,
                        self.limits.max_cell_chars
                    ),
                },
            ));
        }
        Ok(())
    }

    fn width(&self, columns: usize) -> Result<()> {
        if columns > self.limits.max_columns as usize {
            return Err(too_large("file.columns", u64::from(self.limits.max_columns), "columns"));
        }
        Ok(())
    }

    fn push(&mut self, row: u64, cells: Vec<String>) -> Result<()> {
        if self.headers.is_none() {
            self.headers = Some(cells);
        } else if cells.iter().any(|c| !c.is_empty()) {
            if self.rows >= self.limits.max_rows {
                return Err(too_large("file.rows", self.limits.max_rows, "rows"));
            }
            self.rows += 1;
            (self.on_row)(row, cells)?;
        }
        Ok(())
    }
}

/// Reads a file of either format row by row, within `limits`, handing each data row to
/// `on_row` as it is read (only the row at hand is held), and returns the header row and how
/// many data rows there were. Blank rows are left out (and counted by no one: they hold
/// nothing to import). An error of `on_row` stops the reading and is returned.
pub(crate) fn read_rows(bytes: &[u8], limits: &ImportLimits, on_row: &mut OnRow<'_>) -> Result<(Vec<String>, u64)> {
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(too_large("file.bytes", limits.max_file_bytes, "bytes"));
    }
    let mut sink = RowSink::new(limits, on_row);
    match FileFormat::detect(bytes) {
        FileFormat::Xlsx => read_xlsx(bytes, &mut sink)?,
        _ => read_csv(&decode_text(bytes)?, &mut sink)?,
    };
    let headers = sink.headers.unwrap_or_default();
    if headers.iter().all(|h| h.is_empty()) {
        return Err(Error::invalid("file", ValidationReason::Required));
    }
    Ok((headers, sink.rows))
}

/// The whole file as a table (for tests of the readers).
#[cfg(test)]
pub(crate) fn read_table(bytes: &[u8], limits: &ImportLimits) -> Result<Table> {
    let mut rows = Vec::new();
    let (headers, _) = read_rows(bytes, limits, &mut |row, cells| {
        rows.push((row, cells));
        Ok(())
    })?;
    Ok(Table { headers, rows })
}

fn read_csv(text: &str, out: &mut RowSink<'_, '_>) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    // Row numbers are line numbers, counted here: the reader's own count knows only `\n`, so
    // a file with bare `\r` line ends (old Excel for Mac) would be "all on line 1".
    let (bytes, mut cursor, mut line) = (text.as_bytes(), 0usize, 1u64);
    for record in reader.records() {
        let record = record.map_err(|e| bad_file(format!("is not valid CSV: {e}")))?;
        // A record's position is where the reader started looking, before any blank lines it
        // skipped: step over those to the record's own first line.
        let mut start =
            record.position().map_or(cursor, |p| usize::try_from(p.byte()).unwrap_or(0)).clamp(cursor, bytes.len());
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        for i in cursor..start {
            match bytes[i] {
                b'\n' => line += 1,
                b'\r' if bytes.get(i + 1) != Some(&b'\n') => line += 1,
                _ => {}
            }
        }
        cursor = start;
        let row = line;
        out.width(record.len())?;
        for (i, c) in record.iter().enumerate() {
            out.cell(row, i, c)?;
        }
        out.push(row, record.iter().map(|c| c.trim().to_owned()).collect())?;
    }
    Ok(())
}

/// Inflates every part of the archive into nothing, counting: the parts calamine will read
/// (shared strings, the sheet) can then not inflate past the limit, whatever their headers
/// claim.
fn check_inflated_size(bytes: &[u8], limits: &ImportLimits) -> Result<()> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(unreadable_workbook)?;
    let mut left = limits.max_decompressed_bytes;
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).map_err(unreadable_workbook)?;
        if part.size() > left {
            return Err(too_large("file.decompressed_bytes", limits.max_decompressed_bytes, "bytes"));
        }
        let n = std::io::copy(&mut (&mut part).take(left + 1), &mut std::io::sink()).map_err(unreadable_workbook)?;
        if n > left {
            return Err(too_large("file.decompressed_bytes", limits.max_decompressed_bytes, "bytes"));
        }
        left -= n;
    }
    Ok(())
}

/// Reads the first sheet as a stream of the cells present (never a grid sized by the sheet's
/// declared dimension: two cells at A1 and XFD1048576 are two cells).
fn read_xlsx(bytes: &[u8], out: &mut RowSink<'_, '_>) -> Result<()> {
    check_inflated_size(bytes, out.limits)?;
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(unreadable_workbook)?;
    let sheet = book.sheet_names().first().cloned().ok_or_else(|| bad_file("has no worksheet"))?;
    let mut cells =
        book.worksheet_cells_reader(&sheet).map_err(|e| bad_file(format!("has an unreadable first worksheet: {e}")))?;
    // Cells arrive row by row; a row is complete when one of a later row arrives.
    // The header is the first row holding a cell; data rows keep their sheet row numbers.
    let mut current: Option<(u32, Vec<String>)> = None;
    loop {
        let cell = cells.next_cell().map_err(|e| bad_file(format!("has an unreadable first worksheet: {e}")))?;
        let Some(cell) = cell else { break };
        let (r, c) = cell.get_position();
        let text = cell_text(&Data::from(cell.get_value().clone()));
        if text.is_empty() {
            continue;
        }
        out.width(c as usize + 1)?;
        out.cell(u64::from(r) + 1, c as usize, &text)?;
        match current.as_ref().map(|(row, _)| row.cmp(&r)) {
            Some(std::cmp::Ordering::Greater) => {
                return Err(bad_file(format!("has its rows out of order at row {}", r + 1)));
            }
            Some(std::cmp::Ordering::Less) => {
                if let Some((row, values)) = current.take() {
                    out.push(u64::from(row) + 1, values)?;
                }
            }
            _ => {}
        }
        let values = &mut current.get_or_insert_with(|| (r, Vec::new())).1;
        if values.len() <= c as usize {
            values.resize(c as usize + 1, String::new());
        }
        values[c as usize] = text;
    }
    if let Some((row, values)) = current {
        out.push(u64::from(row) + 1, values)?;
    }
    Ok(())
}

/// A cell as the text a person typed: whole numbers without a decimal point (phone numbers
/// are often stored as numbers), dates as ISO dates.
fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_owned(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.date().to_string(),
            Some(t) => t.to_string(),
            None => dt.to_string(),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_detected() {
        let text = "客户名称,手机\n华为技术有限公司,13812345678\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        let with_bom = [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat();
        for bytes in [text.as_bytes().to_vec(), with_bom, gbk.into_owned()] {
            let t = read_table(&bytes, &ImportLimits::default()).unwrap();
            assert_eq!(t.headers, ["客户名称", "手机"]);
            assert_eq!(t.rows, vec![(2, vec!["华为技术有限公司".to_owned(), "13812345678".to_owned()])]);
        }
        assert!(matches!(decode_text(&[0xFF, 0xFF, 0x80]), Err(Error::Validation(_))));
    }

    #[test]
    fn blank_rows_are_skipped_and_row_numbers_kept() {
        let t = read_table("name\n\nA\n,\n\"B\nC\"\nD\n".as_bytes(), &ImportLimits::default()).unwrap();
        let rows: Vec<(u64, &str)> = t.rows.iter().map(|(n, c)| (*n, c[0].as_str())).collect();
        assert_eq!(rows, vec![(3, "A"), (5, "B\nC"), (7, "D")]);
        // Found by fuzzing: bare CR line ends numbered every row 1.
        for text in ["name\rA\r\rB\r", "name\r\nA\r\n\r\nB\r\n"] {
            let t = read_table(text.as_bytes(), &ImportLimits::default()).unwrap();
            let rows: Vec<(u64, &str)> = t.rows.iter().map(|(n, c)| (*n, c[0].as_str())).collect();
            assert_eq!(rows, vec![(2, "A"), (4, "B")], "{text:?}");
        }
    }
}
