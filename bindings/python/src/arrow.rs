//! Lists as Arrow: a `Table` exports its rows through the Arrow C stream interface
//! (`__arrow_c_stream__`), so pyarrow, polars and pandas build columns without per-row Python
//! objects. Tags are `list<utf8>`; custom fields a struct with one typed child per definition.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{ArrayRef, RecordBatch, RecordBatchIterator, StructArray};
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, TimeUnit};
use guanxi::{CustomFieldDef, CustomValue, FieldType};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyList, PySlice, PyType};

use crate::errors::GuanxiError;

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

fn timestamp(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), nullable)
}

fn tags_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

fn custom_of<'a>(c: &'a guanxi::Customer, key: &str) -> Option<&'a CustomValue> {
    c.custom.get(key)
}

fn text_column<'a>(n: usize, f: impl Fn(usize) -> Option<&'a str>) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(n, n * 12);
    (0..n).for_each(|i| b.append_option(f(i)));
    Arc::new(b.finish())
}

fn custom_column(rows: &[guanxi::Customer], def: &CustomFieldDef) -> Result<(Field, ArrayRef), ArrowError> {
    let get = |c| custom_of(c, &def.key);
    let name = def.key.as_str();
    Ok(match def.field_type {
        FieldType::Number => {
            let mut b = Int64Builder::with_capacity(rows.len());
            rows.iter().for_each(|c| {
                b.append_option(match get(c) {
                    Some(CustomValue::Number(n)) => Some(*n),
                    _ => None,
                })
            });
            (Field::new(name, DataType::Int64, true), Arc::new(b.finish()))
        }
        FieldType::Decimal => {
            let values: Vec<_> = rows
                .iter()
                .map(|c| match get(c) {
                    Some(CustomValue::Decimal(d)) => Some(*d),
                    _ => None,
                })
                .collect();
            decimal_array(name, &values)?
        }
        FieldType::Date => {
            let mut b = Date32Builder::with_capacity(rows.len());
            rows.iter().for_each(|c| {
                b.append_option(match get(c) {
                    Some(CustomValue::Date(d)) => date32(*d),
                    _ => None,
                })
            });
            (Field::new(name, DataType::Date32, true), Arc::new(b.finish()))
        }
        FieldType::Bool => {
            let mut b = BooleanBuilder::with_capacity(rows.len());
            rows.iter().for_each(|c| {
                b.append_option(match get(c) {
                    Some(CustomValue::Bool(v)) => Some(*v),
                    _ => None,
                })
            });
            (Field::new(name, DataType::Boolean, true), Arc::new(b.finish()))
        }
        FieldType::MultiSelect => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for c in rows {
                match get(c) {
                    Some(CustomValue::MultiSelect(set)) => {
                        set.iter().for_each(|v| b.values().append_value(v));
                        b.append(true);
                    }
                    _ => b.append(false),
                }
            }
            (Field::new(name, tags_type(), true), Arc::new(b.finish()))
        }
        // Text, single-select and any type added later: their text form.
        _ => {
            let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
            rows.iter().for_each(|c| b.append_option(get(c).map(ToString::to_string)));
            (utf8(name), Arc::new(b.finish()))
        }
    })
}

pub(crate) fn record_batch(rows: &[guanxi::Customer], fields: &[CustomFieldDef]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let time = |f: &dyn Fn(&guanxi::Customer) -> Option<chrono::DateTime<chrono::Utc>>| -> ArrayRef {
        let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        rows.iter().for_each(|c| b.append_option(f(c).map(|t| t.timestamp_micros())));
        Arc::new(b.finish())
    };
    let region =
        |i: usize, part: fn(&guanxi::Region) -> &str| rows[i].region.as_ref().map(part).filter(|s| !s.is_empty());
    let ids: Vec<String> = rows.iter().map(|c| c.id.to_string()).collect();
    let mut tags = ListBuilder::new(StringBuilder::new());
    for c in rows {
        c.tags.iter().for_each(|t| tags.values().append_value(t));
        tags.append(true);
    }
    let mut version = Int64Builder::with_capacity(n);
    rows.iter().for_each(|c| version.append_value(i64::try_from(c.version).unwrap_or(i64::MAX)));

    let mut schema_fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("code", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        utf8("industry"),
        utf8("size"),
        utf8("source"),
        Field::new("status", DataType::Utf8, false),
        utf8("level"),
        utf8("province"),
        utf8("city"),
        utf8("district"),
        utf8("address"),
        utf8("owner"),
        utf8("department"),
        Field::new("tags", tags_type(), false),
    ];
    let mut columns: Vec<ArrayRef> = vec![
        text_column(n, |i| Some(&ids[i])),
        text_column(n, |i| Some(rows[i].code.as_str())),
        text_column(n, |i| Some(rows[i].name.as_str())),
        text_column(n, |i| Some(rows[i].kind.as_str())),
        text_column(n, |i| rows[i].industry.map(|i| i.as_str())),
        text_column(n, |i| rows[i].size.map(|s| s.as_str())),
        text_column(n, |i| rows[i].source.as_deref()),
        text_column(n, |i| Some(rows[i].status.as_str())),
        text_column(n, |i| rows[i].level.map(|l| l.as_str())),
        text_column(n, |i| region(i, |r| &r.province)),
        text_column(n, |i| region(i, |r| &r.city)),
        text_column(n, |i| region(i, |r| &r.district)),
        text_column(n, |i| rows[i].address.as_deref()),
        text_column(n, |i| rows[i].owner.as_ref().map(|o| o.as_str())),
        text_column(n, |i| rows[i].department.as_ref().map(|d| d.as_str())),
        Arc::new(tags.finish()),
    ];
    if !fields.is_empty() {
        let (child_fields, children): (Vec<Field>, Vec<ArrayRef>) =
            fields.iter().map(|d| custom_column(rows, d)).collect::<Result<Vec<_>, _>>()?.into_iter().unzip();
        let child_fields = Fields::from(child_fields);
        schema_fields.push(Field::new("custom", DataType::Struct(child_fields.clone()), false));
        columns.push(Arc::new(StructArray::try_new(child_fields, children, None)?));
    }
    schema_fields.extend([
        Field::new("created_by", DataType::Utf8, false),
        timestamp("created_at", false),
        Field::new("updated_by", DataType::Utf8, false),
        timestamp("updated_at", false),
        Field::new("version", DataType::Int64, false),
        timestamp("deleted_at", true),
    ]);
    columns.extend([
        text_column(n, |i| Some(rows[i].created_by.as_str())),
        time(&|c| Some(c.created_at)),
        text_column(n, |i| Some(rows[i].updated_by.as_str())),
        time(&|c| Some(c.updated_at)),
        Arc::new(version.finish()) as ArrayRef,
        time(&|c| c.deleted_at),
    ]);
    RecordBatch::try_new(Arc::new(Schema::new(schema_fields)), columns)
}

/// What a [`Table`]'s rows are: records it hands out as objects (customers, opportunities, …)
/// or report rows, which it hands out as dicts.
pub(crate) trait Rows: Send + Sync {
    /// The Arrow columns of rows `range`.
    fn batch(&self, range: Range<usize>) -> Result<RecordBatch, ArrowError>;
    /// Row `i` as its record object, or None when the rows are report rows.
    fn record(&self, py: Python<'_>, i: usize) -> PyResult<Option<Py<PyAny>>>;
}

/// Report rows: one record batch.
struct ReportRows(RecordBatch);

impl Rows for ReportRows {
    fn batch(&self, range: Range<usize>) -> Result<RecordBatch, ArrowError> {
        Ok(self.0.slice(range.start, range.len()))
    }

    fn record(&self, _py: Python<'_>, _i: usize) -> PyResult<Option<Py<PyAny>>> {
        Ok(None)
    }
}

type BatchOf<T> = Box<dyn Fn(&[T]) -> Result<RecordBatch, ArrowError> + Send + Sync>;

/// Records of one kind, with how to lay them out as columns and how to hand one out.
struct Records<T> {
    items: Vec<T>,
    batch: BatchOf<T>,
    object: fn(Python<'_>, &T) -> PyResult<Py<PyAny>>,
}

impl<T: Send + Sync> Rows for Records<T> {
    fn batch(&self, range: Range<usize>) -> Result<RecordBatch, ArrowError> {
        (self.batch)(&self.items[range])
    }

    fn record(&self, py: Python<'_>, i: usize) -> PyResult<Option<Py<PyAny>>> {
        (self.object)(py, &self.items[i]).map(Some)
    }
}

/// A record object from a core record, through its Python class.
pub(crate) fn object<T: Clone, W: pyo3::PyClass + From<T> + Into<PyClassInitializer<W>>>(
    py: Python<'_>,
    item: &T,
) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, W::from(item.clone()))?.into_any())
}

/// Every list and report: rows as Arrow columns, converted without per-row Python objects
/// (`pyarrow.table(t)`, `polars.DataFrame(t)`, `t.to_pandas()`, `t.to_polars()`), and a
/// sequence of its records (or, for reports, of dicts): `len`, index, slice, iterate.
/// A page of a paged list carries `next`, the cursor to pass as `after=` for the next page.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct Table {
    rows: Arc<dyn Rows>,
    range: Range<usize>,
    next: Option<String>,
    columns: OnceLock<RecordBatch>,
}

impl Clone for Table {
    fn clone(&self) -> Self {
        Table { rows: self.rows.clone(), range: self.range.clone(), next: self.next.clone(), columns: OnceLock::new() }
    }
}

impl Table {
    /// A table of report rows.
    pub(crate) fn report(batch: RecordBatch) -> Table {
        let n = batch.num_rows();
        Table::over(Arc::new(ReportRows(batch)), n)
    }

    /// A table of records: `batch` lays them out as columns, `object` hands one out.
    pub(crate) fn records<T: Send + Sync + 'static>(
        items: Vec<T>,
        batch: impl Fn(&[T]) -> Result<RecordBatch, ArrowError> + Send + Sync + 'static,
        object: fn(Python<'_>, &T) -> PyResult<Py<PyAny>>,
    ) -> Table {
        let n = items.len();
        Table::over(Arc::new(Records { items, batch: Box::new(batch), object }), n)
    }

    /// One page of a paged list, with the cursor of the next.
    pub(crate) fn page(mut self, next: Option<guanxi::Cursor>) -> Table {
        self.next = next.map(|c| c.last_id().to_string());
        self
    }

    fn over(rows: Arc<dyn Rows>, n: usize) -> Table {
        Table { rows, range: 0..n, next: None, columns: OnceLock::new() }
    }

    fn columns(&self) -> Result<&RecordBatch, ArrowError> {
        if let Some(b) = self.columns.get() {
            return Ok(b);
        }
        let batch = self.rows.batch(self.range.clone())?;
        Ok(self.columns.get_or_init(|| batch))
    }

    fn slice(&self, start: usize, end: usize) -> Table {
        let range = self.range.start + start..self.range.start + end.max(start);
        Table { rows: self.rows.clone(), range, next: None, columns: OnceLock::new() }
    }

    fn row(slf: &Bound<'_, Self>, i: usize) -> PyResult<Py<PyAny>> {
        let t = slf.get();
        match t.rows.record(slf.py(), t.range.start + i)? {
            Some(record) => Ok(record),
            None => {
                let one = Bound::new(slf.py(), t.slice(i, i + 1))?;
                Ok(Self::to_arrow(&one)?.call_method0("to_pylist")?.get_item(0)?.unbind())
            }
        }
    }
}

/// A page request from a list's `after` (a cursor from `Table.next`) and `limit` (1 to 10,000).
pub(crate) fn page_request(after: Option<&str>, limit: i64) -> PyResult<guanxi::PageRequest> {
    let mut problems = crate::convert::Problems::default();
    let after = after.and_then(|a| {
        let cursor = uuid::Uuid::parse_str(a).map(guanxi::Cursor::after);
        problems
            .keep("after", cursor.map_err(|_| crate::convert::invalid_arg("after", "is not a cursor from Table.next")))
    });
    let limit = match usize::try_from(limit) {
        Ok(n @ 1..=10_000) => n,
        _ => {
            problems.push("limit", guanxi::ValidationReason::Invalid { detail: "must be from 1 to 10000".into() });
            0
        }
    };
    problems.result(guanxi::PageRequest { after, limit })
}

#[pymethods]
impl Table {
    fn __len__(&self) -> usize {
        self.range.len()
    }

    /// Row `key` (a record, or a dict for report rows; negative counts from the end), or a
    /// table of the rows of a slice (step 1).
    fn __getitem__<'py>(slf: &Bound<'py, Self>, key: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        let n = slf.get().range.len();
        if let Ok(s) = key.cast::<PySlice>() {
            let idx = s.indices(n as isize)?;
            if idx.step != 1 {
                return Err(pyo3::exceptions::PyValueError::new_err("a Table slices with step 1 only"));
            }
            let (start, stop) = (idx.start.max(0) as usize, idx.stop.max(0) as usize);
            return Ok(Py::new(slf.py(), slf.get().slice(start, stop))?.into_any());
        }
        let index: isize = key.extract()?;
        let i = if index < 0 { index + n as isize } else { index };
        if i < 0 || i as usize >= n {
            return Err(pyo3::exceptions::PyIndexError::new_err("table index out of range"));
        }
        Self::row(slf, i as usize)
    }

    fn __iter__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::to_list(slf)?.as_any().try_iter().map(Bound::into_any)
    }

    /// The rows as a list: record objects, or dicts for report rows.
    fn to_list<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyList>> {
        let t = slf.get();
        let py = slf.py();
        if t.range.is_empty() || t.rows.record(py, t.range.start)?.is_some() {
            let out = PyList::empty(py);
            for i in t.range.clone() {
                if let Some(r) = t.rows.record(py, i)? {
                    out.append(r)?;
                }
            }
            return Ok(out);
        }
        Ok(Self::to_arrow(slf)?.call_method0("to_pylist")?.cast_into::<PyList>()?)
    }

    /// The cursor of the next page (pass it as `after=`), or None on the last page and on
    /// tables that are not pages.
    #[getter]
    fn next(&self) -> Option<String> {
        self.next.clone()
    }

    /// The column names, in order.
    #[getter]
    fn column_names(&self) -> PyResult<Vec<String>> {
        Ok(self.columns().map_err(arrow_err)?.schema().fields().iter().map(|f| f.name().clone()).collect())
    }

    /// The Arrow PyCapsule stream protocol; `requested_schema` is ignored (allowed by the protocol).
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let batch = py.detach(|| self.columns().cloned()).map_err(arrow_err)?;
        stream_capsule(py, batch)
    }

    /// A `pyarrow.Table` (needs pyarrow).
    fn to_arrow<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py().import("pyarrow")?.call_method1("table", (slf,))
    }

    /// A `pandas.DataFrame` (needs pyarrow and pandas).
    fn to_pandas<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        Self::to_arrow(slf)?.call_method0("to_pandas")
    }

    /// A `polars.DataFrame` (needs polars).
    fn to_polars<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py().import("polars")?.call_method1("DataFrame", (slf,))
    }

    /// `Table[Customer]` in annotations evaluated at run time.
    #[classmethod]
    fn __class_getitem__<'py>(cls: &Bound<'py, PyType>, item: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        cls.py().import("types")?.getattr("GenericAlias")?.call1((cls, item))
    }

    fn __repr__(&self) -> String {
        let more = if self.next.is_some() { ", more after" } else { "" };
        format!("Table({} rows{more})", self.range.len())
    }
}

/// Builds a [`Table`] column by column, from rows of any type.
pub(crate) struct Columns<'a, T> {
    rows: &'a [T],
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl<'a, T> Columns<'a, T> {
    pub(crate) fn new(rows: &'a [T]) -> Self {
        Columns { rows, fields: Vec::new(), arrays: Vec::new() }
    }

    fn push(mut self, field: Field, array: ArrayRef) -> Self {
        self.fields.push(field);
        self.arrays.push(array);
        self
    }

    pub(crate) fn text<S: AsRef<str>>(self, name: &str, f: impl Fn(&'a T) -> Option<S>) -> Self {
        let rows: &'a [T] = self.rows;
        let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 12);
        rows.iter().for_each(|r| b.append_option(f(r)));
        self.push(utf8(name), Arc::new(b.finish()))
    }

    pub(crate) fn int(self, name: &str, f: impl Fn(&T) -> Option<i64>) -> Self {
        let mut b = Int64Builder::with_capacity(self.rows.len());
        self.rows.iter().for_each(|r| b.append_option(f(r)));
        self.push(Field::new(name, DataType::Int64, true), Arc::new(b.finish()))
    }

    pub(crate) fn float(self, name: &str, f: impl Fn(&T) -> Option<f64>) -> Self {
        let mut b = Float64Builder::with_capacity(self.rows.len());
        self.rows.iter().for_each(|r| b.append_option(f(r)));
        self.push(Field::new(name, DataType::Float64, true), Arc::new(b.finish()))
    }

    pub(crate) fn count(self, name: &str, f: impl Fn(&T) -> u64) -> Self {
        self.int(name, |r| Some(i64::try_from(f(r)).unwrap_or(i64::MAX)))
    }

    pub(crate) fn boolean(self, name: &str, f: impl Fn(&T) -> Option<bool>) -> Self {
        let mut b = BooleanBuilder::with_capacity(self.rows.len());
        self.rows.iter().for_each(|r| b.append_option(f(r)));
        self.push(Field::new(name, DataType::Boolean, true), Arc::new(b.finish()))
    }

    pub(crate) fn time(self, name: &str, f: impl Fn(&T) -> Option<chrono::DateTime<chrono::Utc>>) -> Self {
        let mut b = TimestampMicrosecondBuilder::with_capacity(self.rows.len()).with_timezone("UTC");
        self.rows.iter().for_each(|r| b.append_option(f(r).map(|t| t.timestamp_micros())));
        self.push(timestamp(name, true), Arc::new(b.finish()))
    }

    pub(crate) fn date(self, name: &str, f: impl Fn(&T) -> Option<chrono::NaiveDate>) -> Self {
        let mut b = Date32Builder::with_capacity(self.rows.len());
        self.rows.iter().for_each(|r| b.append_option(f(r).and_then(date32)));
        self.push(Field::new(name, DataType::Date32, true), Arc::new(b.finish()))
    }

    /// An exact decimal column at the smallest scale holding every value.
    pub(crate) fn decimal(
        self,
        name: &str,
        f: impl Fn(&T) -> Option<rust_decimal::Decimal>,
    ) -> Result<Self, ArrowError> {
        let values: Vec<_> = self.rows.iter().map(f).collect();
        let (field, array) = decimal_array(name, &values)?;
        Ok(self.push(field, array))
    }

    /// The columns as one record batch.
    pub(crate) fn batch(self) -> Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.arrays)
    }

    /// The columns as a report table.
    pub(crate) fn finish(self) -> Result<Table, ArrowError> {
        self.batch().map(Table::report)
    }
}

fn date32(d: chrono::NaiveDate) -> Option<i32> {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

/// The one scale of every decimal column, so tables of different runs concatenate: money
/// and rates need far fewer places, and 28 integer digits remain.
const DECIMAL_SCALE: u32 = guanxi::MAX_DECIMAL_SCALE;

/// Exact decimals as `decimal128(38, 10)` whatever the values; a value with more places than
/// that is an error naming the column, never rounded.
fn decimal_array(name: &str, values: &[Option<rust_decimal::Decimal>]) -> Result<(Field, ArrayRef), ArrowError> {
    let data_type = DataType::Decimal128(38, DECIMAL_SCALE as i8);
    let mut b = Decimal128Builder::with_capacity(values.len()).with_data_type(data_type.clone());
    for v in values {
        match v {
            Some(d) => {
                let d = d.normalize();
                let too_precise =
                    || ArrowError::ComputeError(format!("{name}: {d} does not fit decimal128(38, {DECIMAL_SCALE})"));
                let factor = 10i128.checked_pow(DECIMAL_SCALE.checked_sub(d.scale()).ok_or_else(too_precise)?);
                let v = factor.and_then(|f| d.mantissa().checked_mul(f)).ok_or_else(too_precise)?;
                b.append_value(v);
            }
            None => b.append_null(),
        }
    }
    Ok((Field::new(name, data_type, true), Arc::new(b.finish())))
}

/// One record batch as an `arrow_array_stream` capsule (the Arrow PyCapsule interface).
fn stream_capsule(py: Python<'_>, batch: RecordBatch) -> PyResult<Bound<'_, PyCapsule>> {
    let schema = batch.schema();
    let reader = RecordBatchIterator::new(vec![Ok(batch)], schema);
    PyCapsule::new_with_value(py, FFI_ArrowArrayStream::new(Box::new(reader)), c"arrow_array_stream")
}

/// An Arrow failure as a Python exception.
pub(crate) fn arrow_err(e: ArrowError) -> PyErr {
    GuanxiError::new_err(format!("arrow conversion failed: {e}"))
}
