//! Lists as Arrow: a `CustomerTable` exports its rows through the Arrow C stream interface
//! (`__arrow_c_stream__`), so pyarrow, polars and pandas build columns without per-row Python
//! objects. Tags are `list<utf8>`; custom fields a struct with one typed child per definition.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{ArrayRef, RecordBatch, RecordBatchIterator, StructArray};
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, TimeUnit};
use guanxi::{CustomFieldDef, CustomValue, FieldType};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::convert::Customer;
use crate::errors::GuanxiError;

/// The customers a `list` returned. Convert with `pyarrow.table(t)`, `polars.DataFrame(t)`,
/// `pandas.DataFrame(t)` (via `t.to_pandas()`), or iterate for `Customer` objects.
#[pyclass(module = "guanxi._guanxi", frozen)]
pub struct CustomerTable {
    rows: Arc<Vec<guanxi::Customer>>,
    fields: Vec<CustomFieldDef>,
}

impl CustomerTable {
    pub(crate) fn new(rows: Vec<guanxi::Customer>, fields: Vec<CustomFieldDef>) -> Self {
        CustomerTable { rows: Arc::new(rows), fields }
    }
}

#[pymethods]
impl CustomerTable {
    fn __len__(&self) -> usize {
        self.rows.len()
    }

    fn __getitem__(&self, index: isize) -> PyResult<Customer> {
        let n = self.rows.len() as isize;
        let i = if index < 0 { index + n } else { index };
        if i < 0 || i >= n {
            return Err(pyo3::exceptions::PyIndexError::new_err("customer index out of range"));
        }
        Ok(Customer(self.rows[i as usize].clone()))
    }

    /// The rows as `Customer` objects.
    fn to_list(&self) -> Vec<Customer> {
        self.rows.iter().cloned().map(Customer).collect()
    }

    /// The Arrow PyCapsule stream protocol; `requested_schema` is ignored (allowed by the protocol).
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let (rows, fields) = (self.rows.clone(), self.fields.clone());
        let batch = py.detach(|| record_batch(&rows, &fields)).map_err(arrow_err)?;
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

    fn __repr__(&self) -> String {
        format!("CustomerTable({} rows)", self.rows.len())
    }
}

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

/// A table of report rows or records (funnel, forecast, opportunities …) as one Arrow record
/// batch. Convert with `pyarrow.table(t)`, `polars.DataFrame(t)` or `t.to_pandas()`.
#[pyclass(module = "guanxi._guanxi", frozen)]
#[derive(Clone)]
pub struct Table {
    batch: RecordBatch,
}

#[pymethods]
impl Table {
    fn __len__(&self) -> usize {
        self.batch.num_rows()
    }

    /// The column names, in order.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.batch.schema().fields().iter().map(|f| f.name().clone()).collect()
    }

    /// The Arrow PyCapsule stream protocol; `requested_schema` is ignored (allowed by the protocol).
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        stream_capsule(py, self.batch.clone())
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

    fn __repr__(&self) -> String {
        format!("Table({} rows: {})", self.batch.num_rows(), self.column_names().join(", "))
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

    pub(crate) fn finish(self) -> Result<Table, ArrowError> {
        let batch = RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.arrays)?;
        Ok(Table { batch })
    }
}

fn date32(d: chrono::NaiveDate) -> Option<i32> {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

/// Exact decimals as `decimal128(38, s)`, `s` the largest scale among them.
fn decimal_array(name: &str, values: &[Option<rust_decimal::Decimal>]) -> Result<(Field, ArrayRef), ArrowError> {
    let scale = values.iter().flatten().map(|d| d.scale()).max().unwrap_or(0);
    let mut b = Decimal128Builder::with_capacity(values.len()).with_precision_and_scale(38, scale as i8)?;
    for v in values {
        match v {
            Some(d) => {
                let factor = 10i128.pow(scale - d.scale());
                let v = d.mantissa().checked_mul(factor).ok_or_else(|| {
                    ArrowError::ComputeError(format!("{name}: {d} does not fit decimal128(38, {scale})"))
                })?;
                b.append_value(v);
            }
            None => b.append_null(),
        }
    }
    Ok((Field::new(name, DataType::Decimal128(38, scale as i8), true), Arc::new(b.finish())))
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
