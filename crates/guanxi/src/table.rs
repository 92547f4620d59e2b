//! Spreadsheet files as rows of text: CSV in UTF-8 (with or without BOM), UTF-16 (with BOM) or
//! GB18030 (which contains GBK, what Chinese Excel writes), and Excel .xlsx (first sheet).

use std::io::Cursor;

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

/// A file read as text: the header row and the data rows with their spreadsheet row numbers
/// (the header is row 1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table {
    pub(crate) headers: Vec<String>,
    pub(crate) rows: Vec<(u64, Vec<String>)>,
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

/// Reads a file of either format into a table. Blank rows are left out (and counted by no one:
/// they hold nothing to import).
pub(crate) fn read_table(bytes: &[u8]) -> Result<Table> {
    let table = match FileFormat::detect(bytes) {
        FileFormat::Xlsx => read_xlsx(bytes)?,
        _ => read_csv(&decode_text(bytes)?)?,
    };
    if table.headers.iter().all(|h| h.is_empty()) {
        return Err(Error::invalid("file", ValidationReason::Required));
    }
    Ok(table)
}

fn read_csv(text: &str) -> Result<Table> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut table = Table::default();
    let mut first = true;
    for record in reader.records() {
        let record = record.map_err(|e| bad_file(format!("is not valid CSV: {e}")))?;
        // A record's position is where the reader started looking, before any blank lines it
        // skipped: step over those to the record's own first line.
        let row = record.position().map_or(0, |p| {
            let rest = &text.as_bytes()[usize::try_from(p.byte()).unwrap_or(0).min(text.len())..];
            let blank = rest.iter().take_while(|b| matches!(b, b'\r' | b'\n')).filter(|b| **b == b'\n').count();
            p.line() + blank as u64
        });
        let cells: Vec<String> = record.iter().map(|c| c.trim().to_owned()).collect();
        if first {
            table.headers = cells;
            first = false;
        } else if cells.iter().any(|c| !c.is_empty()) {
            table.rows.push((row, cells));
        }
    }
    Ok(table)
}

fn read_xlsx(bytes: &[u8]) -> Result<Table> {
    let mut book: Xlsx<_> =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| bad_file(format!("is not a readable .xlsx workbook: {e}")))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| bad_file("has no worksheet"))?
        .map_err(|e| bad_file(format!("has an unreadable first worksheet: {e}")))?;
    let start = range.start().map_or(0, |(r, _)| u64::from(r));
    let mut table = Table::default();
    for (i, row) in range.rows().enumerate() {
        let cells: Vec<String> = row.iter().map(cell_text).collect();
        if i == 0 {
            table.headers = cells;
        } else if cells.iter().any(|c| !c.is_empty()) {
            table.rows.push((start + i as u64 + 1, cells));
        }
    }
    Ok(table)
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
            let t = read_table(&bytes).unwrap();
            assert_eq!(t.headers, ["客户名称", "手机"]);
            assert_eq!(t.rows, vec![(2, vec!["华为技术有限公司".to_owned(), "13812345678".to_owned()])]);
        }
        assert!(matches!(decode_text(&[0xFF, 0xFF, 0x80]), Err(Error::Validation(_))));
    }

    #[test]
    fn blank_rows_are_skipped_and_row_numbers_kept() {
        let t = read_table("name\n\nA\n,\n\"B\nC\"\nD\n".as_bytes()).unwrap();
        let rows: Vec<(u64, &str)> = t.rows.iter().map(|(n, c)| (*n, c[0].as_str())).collect();
        assert_eq!(rows, vec![(3, "A"), (5, "B\nC"), (7, "D")]);
    }
}
