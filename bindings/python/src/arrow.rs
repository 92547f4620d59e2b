//! Lists as Arrow: a `Table` exports its rows through the Arrow C stream interface
//! (`__arrow_c_stream__`), so pyarrow, polars and pandas build columns without per-row Python
//! objects. Tags are `list<utf8>`; identifiers `list<struct<scheme: utf8, value: utf8>>`;
//! custom fields a struct with one typed child per definition.

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder, ListBuilder,
    StringBuilder, StructBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int64Array, ListArray, RecordBatch,
    RecordBatchIterator, StringArray, StructArray, TimestampMicrosecondArray,
};
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, TimeUnit};
use guanxi::{CustomFieldDef, CustomValue, CustomerView, FieldType};
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

/// The fields of one identifier: its scheme and its value.
fn identifier_fields() -> Fields {
    Fields::from(vec![Field::new("scheme", DataType::Utf8, false), Field::new("value", DataType::Utf8, false)])
}

fn identifiers_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Struct(identifier_fields()), true)))
}

fn identifiers_builder(rows: usize) -> ListBuilder<StructBuilder> {
    let children: Vec<Box<dyn ArrayBuilder>> = vec![Box::new(texts(rows, 8)), Box::new(texts(rows, 18))];
    ListBuilder::with_capacity(StructBuilder::new(identifier_fields(), children), rows)
        .with_field(Arc::new(Field::new("item", DataType::Struct(identifier_fields()), true)))
}

/// The text columns a customer table starts with, and whether each may be null.
const CUSTOMER_TEXT: [(&str, bool); 15] = [
    ("id", false),
    ("code", false),
    ("name", false),
    ("kind", false),
    ("industry", true),
    ("size", true),
    ("source", true),
    ("status", false),
    ("level", true),
    ("province", true),
    ("city", true),
    ("district", true),
    ("address", true),
    ("owner", true),
    ("department", true),
];

/// One custom field's column, typed by its definition.
enum CustomColumn {
    Number(Int64Builder),
    Decimal(Decimal128Builder),
    Date(Date32Builder),
    Bool(BooleanBuilder),
    MultiSelect(ListBuilder<StringBuilder>),
    /// Text and single-select: their text.
    Text(StringBuilder),
}

impl CustomColumn {
    fn new(field_type: FieldType) -> CustomColumn {
        match field_type {
            FieldType::Number => CustomColumn::Number(Int64Builder::new()),
            FieldType::Decimal => CustomColumn::Decimal(Decimal128Builder::new().with_data_type(decimal_type())),
            FieldType::Date => CustomColumn::Date(Date32Builder::new()),
            FieldType::Bool => CustomColumn::Bool(BooleanBuilder::new()),
            FieldType::MultiSelect => CustomColumn::MultiSelect(ListBuilder::new(StringBuilder::new())),
            FieldType::Text | FieldType::SingleSelect => CustomColumn::Text(StringBuilder::new()),
        }
    }

    /// Appends a record's value; a value of another type than the definition's (left from
    /// before a definition changed) is null here, as the store's filters treat it.
    fn push(&mut self, name: &str, value: Option<&CustomValue>) -> Result<(), ArrowError> {
        match (self, value) {
            (CustomColumn::Number(b), v) => b.append_option(match v {
                Some(CustomValue::Number(n)) => Some(*n),
                _ => None,
            }),
            (CustomColumn::Decimal(b), Some(CustomValue::Decimal(d))) => b.append_value(decimal128(name, *d)?),
            (CustomColumn::Decimal(b), _) => b.append_null(),
            (CustomColumn::Date(b), v) => b.append_option(match v {
                Some(CustomValue::Date(d)) => date32(*d),
                _ => None,
            }),
            (CustomColumn::Bool(b), v) => b.append_option(match v {
                Some(CustomValue::Bool(v)) => Some(*v),
                _ => None,
            }),
            (CustomColumn::MultiSelect(b), Some(CustomValue::MultiSelect(set))) => {
                set.iter().for_each(|v| b.values().append_value(v));
                b.append(true);
            }
            (CustomColumn::MultiSelect(b), _) => b.append(false),
            (CustomColumn::Text(b), v) => b.append_option(v.map(ToString::to_string)),
        }
        Ok(())
    }

    fn finish(self, name: &str) -> (Field, ArrayRef) {
        let (data_type, array): (DataType, ArrayRef) = match self {
            CustomColumn::Number(mut b) => (DataType::Int64, Arc::new(b.finish())),
            CustomColumn::Decimal(mut b) => (decimal_type(), Arc::new(b.finish())),
            CustomColumn::Date(mut b) => (DataType::Date32, Arc::new(b.finish())),
            CustomColumn::Bool(mut b) => (DataType::Boolean, Arc::new(b.finish())),
            CustomColumn::MultiSelect(mut b) => (tags_type(), Arc::new(b.finish())),
            CustomColumn::Text(mut b) => (DataType::Utf8, Arc::new(b.finish())),
        };
        (Field::new(name, data_type, true), array)
    }
}

/// A customer table's columns, filled one customer at a time: from a store scan's views
/// (no record built) or from records.
pub(crate) struct CustomerColumns {
    defs: Vec<CustomFieldDef>,
    text: Vec<StringBuilder>,
    tags: ListBuilder<StringBuilder>,
    identifiers: ListBuilder<StructBuilder>,
    custom: Vec<CustomColumn>,
    created_by: StringBuilder,
    created_at: TimestampMicrosecondBuilder,
    updated_by: StringBuilder,
    updated_at: TimestampMicrosecondBuilder,
    version: Int64Builder,
    deleted_at: TimestampMicrosecondBuilder,
    merged_into: StringBuilder,
}

fn micros(rows: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC")
}

fn texts(rows: usize, bytes_each: usize) -> StringBuilder {
    StringBuilder::with_capacity(rows, rows * bytes_each)
}

impl CustomerColumns {
    /// Empty columns, with one custom column per definition, sized for about `rows` rows (a
    /// hint: they grow past it).
    pub(crate) fn new(defs: Vec<CustomFieldDef>, rows: usize) -> CustomerColumns {
        CustomerColumns {
            custom: defs.iter().map(|d| CustomColumn::new(d.field_type)).collect(),
            defs,
            // An id is 36 bytes; a Chinese name or address about 30; most others a few words.
            text: CUSTOMER_TEXT.iter().map(|(name, _)| texts(rows, if *name == "id" { 36 } else { 16 })).collect(),
            tags: ListBuilder::with_capacity(texts(rows * 2, 12), rows),
            identifiers: identifiers_builder(rows),
            created_by: texts(rows, 8),
            created_at: micros(rows),
            updated_by: texts(rows, 8),
            updated_at: micros(rows),
            version: Int64Builder::with_capacity(rows),
            deleted_at: micros(rows),
            merged_into: texts(rows, 0),
        }
    }

    /// Appends one customer.
    pub(crate) fn push(&mut self, c: &CustomerView<'_>) -> Result<(), ArrowError> {
        let mut id = uuid::Uuid::encode_buffer();
        let id = c.id.0.hyphenated().encode_lower(&mut id);
        let texts = [
            Some(&*id),
            Some(c.code),
            Some(c.name),
            Some(c.kind.as_str()),
            c.industry.map(|i| i.as_str()),
            c.size.map(|s| s.as_str()),
            c.source,
            Some(c.status.as_str()),
            c.level.map(|l| l.as_str()),
            c.province.filter(|p| !p.is_empty()),
            c.city,
            c.district,
            c.address,
            c.owner,
            c.department,
        ];
        self.text.iter_mut().zip(texts).for_each(|(b, t)| b.append_option(t));
        c.tags.iter().for_each(|t| self.tags.values().append_value(t));
        self.tags.append(true);
        let entries = self.identifiers.values();
        for id in c.identifiers {
            for (child, text) in [(0, id.scheme.as_str()), (1, id.value.as_str())] {
                entries
                    .field_builder::<StringBuilder>(child)
                    .ok_or_else(|| ArrowError::SchemaError("identifier fields are not text".into()))?
                    .append_value(text);
            }
            entries.append(true);
        }
        self.identifiers.append(true);
        for (column, def) in self.custom.iter_mut().zip(&self.defs) {
            column.push(&def.key, c.custom.get(&def.key))?;
        }
        self.created_by.append_value(c.created_by);
        self.created_at.append_value(c.created_at.timestamp_micros());
        self.updated_by.append_value(c.updated_by);
        self.updated_at.append_value(c.updated_at.timestamp_micros());
        self.version.append_value(i64::try_from(c.version).unwrap_or(i64::MAX));
        self.deleted_at.append_option(c.deleted_at.map(|t| t.timestamp_micros()));
        self.merged_into.append_option(c.merged_into.map(|m| m.to_string()));
        Ok(())
    }

    /// The columns as one record batch.
    pub(crate) fn finish(self) -> Result<RecordBatch, ArrowError> {
        let mut fields: Vec<Field> =
            CUSTOMER_TEXT.iter().map(|(name, nullable)| Field::new(*name, DataType::Utf8, *nullable)).collect();
        let mut columns: Vec<ArrayRef> = self.text.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef).collect();
        let mut tags = self.tags;
        fields.push(Field::new("tags", tags_type(), false));
        columns.push(Arc::new(tags.finish()));
        let mut identifiers = self.identifiers;
        fields.push(Field::new("identifiers", identifiers_type(), false));
        columns.push(Arc::new(identifiers.finish()));
        if !self.defs.is_empty() {
            let (child_fields, children): (Vec<Field>, Vec<ArrayRef>) =
                self.custom.into_iter().zip(&self.defs).map(|(c, d)| c.finish(&d.key)).unzip();
            let child_fields = Fields::from(child_fields);
            fields.push(Field::new("custom", DataType::Struct(child_fields.clone()), false));
            columns.push(Arc::new(StructArray::try_new(child_fields, children, None)?));
        }
        let (mut created_by, mut created_at, mut updated_by, mut updated_at) =
            (self.created_by, self.created_at, self.updated_by, self.updated_at);
        let (mut version, mut deleted_at, mut merged_into) = (self.version, self.deleted_at, self.merged_into);
        fields.extend([
            Field::new("created_by", DataType::Utf8, false),
            timestamp("created_at", false),
            Field::new("updated_by", DataType::Utf8, false),
            timestamp("updated_at", false),
            Field::new("version", DataType::Int64, false),
            timestamp("deleted_at", true),
            utf8("merged_into"),
        ]);
        columns.extend([
            Arc::new(created_by.finish()) as ArrayRef,
            Arc::new(created_at.finish()),
            Arc::new(updated_by.finish()),
            Arc::new(updated_at.finish()),
            Arc::new(version.finish()),
            Arc::new(deleted_at.finish()),
            Arc::new(merged_into.finish()),
        ]);
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
    }
}

/// Customer records as columns.
pub(crate) fn record_batch(rows: &[guanxi::Customer], defs: &[CustomFieldDef]) -> Result<RecordBatch, ArrowError> {
    let mut columns = CustomerColumns::new(defs.to_vec(), rows.len());
    for c in rows {
        columns.push(&CustomerView::of(c))?;
    }
    columns.finish()
}

/// Customers scanned into columns: the table holds the columns alone, and a row handed out
/// as a `Customer` is read back from them.
struct ScannedCustomers {
    batch: RecordBatch,
    defs: Vec<CustomFieldDef>,
}

impl Rows for ScannedCustomers {
    fn batch(&self, range: Range<usize>) -> Result<RecordBatch, ArrowError> {
        Ok(self.batch.slice(range.start, range.len()))
    }

    fn record(&self, py: Python<'_>, i: usize) -> PyResult<Option<Py<PyAny>>> {
        let c = customer_at(&self.batch, &self.defs, i).map_err(arrow_err)?;
        Ok(Some(Py::new(py, crate::convert::Customer(c))?.into_any()))
    }
}

fn column<'b, A: 'static>(batch: &'b RecordBatch, name: &str) -> Result<&'b A, ArrowError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<A>())
        .ok_or_else(|| ArrowError::SchemaError(format!("no {name} column of the expected type")))
}

fn text_at<'b>(batch: &'b RecordBatch, name: &str, i: usize) -> Result<Option<&'b str>, ArrowError> {
    let a: &StringArray = column(batch, name)?;
    Ok(a.is_valid(i).then(|| a.value(i)))
}

fn vocab<T>(name: &str, text: Option<&str>, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, ArrowError> {
    text.map(|t| parse(t).ok_or_else(|| ArrowError::ParseError(format!("{name}: unknown value {t:?}")))).transpose()
}

fn required<T>(name: &str, v: Option<T>) -> Result<T, ArrowError> {
    v.ok_or_else(|| ArrowError::InvalidArgumentError(format!("{name} is null")))
}

fn instant_at(batch: &RecordBatch, name: &str, i: usize) -> Result<Option<chrono::DateTime<chrono::Utc>>, ArrowError> {
    let a: &TimestampMicrosecondArray = column(batch, name)?;
    a.is_valid(i)
        .then(|| {
            chrono::DateTime::from_timestamp_micros(a.value(i))
                .ok_or_else(|| ArrowError::ParseError(format!("{name}: instant out of range")))
        })
        .transpose()
}

/// The custom value of row `i` in a custom column of `field_type`.
fn custom_at(array: &ArrayRef, field_type: FieldType, i: usize) -> Option<CustomValue> {
    if !array.is_valid(i) {
        return None;
    }
    let any = array.as_any();
    Some(match field_type {
        FieldType::Number => CustomValue::Number(any.downcast_ref::<Int64Array>()?.value(i)),
        FieldType::Decimal => CustomValue::Decimal(
            rust_decimal::Decimal::try_from_i128_with_scale(
                any.downcast_ref::<Decimal128Array>()?.value(i),
                DECIMAL_SCALE,
            )
            .ok()?
            .normalize(),
        ),
        FieldType::Date => {
            CustomValue::Date(chrono::NaiveDate::from_epoch_days(any.downcast_ref::<Date32Array>()?.value(i))?)
        }
        FieldType::Bool => CustomValue::Bool(any.downcast_ref::<BooleanArray>()?.value(i)),
        FieldType::MultiSelect => {
            let values = any.downcast_ref::<ListArray>()?.value(i);
            let values = values.as_any().downcast_ref::<StringArray>()?;
            CustomValue::MultiSelect(values.iter().flatten().map(str::to_owned).collect())
        }
        FieldType::SingleSelect => CustomValue::Select(any.downcast_ref::<StringArray>()?.value(i).to_owned()),
        FieldType::Text => CustomValue::Text(any.downcast_ref::<StringArray>()?.value(i).to_owned()),
    })
}

/// Row `i` of a customer batch as its record: the inverse of [`CustomerColumns::push`].
fn customer_at(batch: &RecordBatch, defs: &[CustomFieldDef], i: usize) -> Result<guanxi::Customer, ArrowError> {
    let text = |name: &str| text_at(batch, name, i);
    let tags_column: &ListArray = column(batch, "tags")?;
    let tag_values = tags_column.value(i);
    let tags: Vec<String> = tag_values
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| ArrowError::SchemaError("tags are not text".into()))?
        .iter()
        .flatten()
        .map(str::to_owned)
        .collect();
    let identifiers_column: &ListArray = column(batch, "identifiers")?;
    let entries = identifiers_column.value(i);
    let entries = entries
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or_else(|| ArrowError::SchemaError("identifiers are not structs".into()))?;
    let part = |name: &str| -> Result<&StringArray, ArrowError> {
        entries
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| ArrowError::SchemaError(format!("no identifier {name} of text")))
    };
    let (schemes, values) = (part("scheme")?, part("value")?);
    let identifiers = (0..entries.len())
        .map(|j| {
            let scheme = schemes
                .value(j)
                .parse()
                .map_err(|e: guanxi::ValidationReason| ArrowError::SchemaError(format!("identifier scheme {e}")))?;
            Ok(guanxi::Identifier { scheme, value: values.value(j).to_owned() })
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    let mut custom = std::collections::BTreeMap::new();
    if !defs.is_empty() {
        let children: &StructArray = column(batch, "custom")?;
        for def in defs {
            let child = children
                .column_by_name(&def.key)
                .ok_or_else(|| ArrowError::SchemaError(format!("no custom column {}", def.key)))?;
            if let Some(v) = custom_at(child, def.field_type, i) {
                custom.insert(def.key.clone(), v);
            }
        }
    }
    let id_text = required("id", text("id")?)?;
    let merged_into = text("merged_into")?;
    let view = CustomerView {
        id: id_text.parse().map_err(external)?,
        code: required("code", text("code")?)?,
        name: required("name", text("name")?)?,
        kind: required("kind", vocab("kind", text("kind")?, guanxi::CustomerKind::from_name)?)?,
        industry: vocab("industry", text("industry")?, guanxi::Industry::from_name)?,
        size: vocab("size", text("size")?, guanxi::SizeBand::from_name)?,
        source: text("source")?,
        status: required("status", vocab("status", text("status")?, guanxi::LifecycleStatus::from_name)?)?,
        level: vocab("level", text("level")?, guanxi::Level::from_name)?,
        province: text("province")?,
        city: text("city")?,
        district: text("district")?,
        address: text("address")?,
        owner: text("owner")?,
        department: text("department")?,
        tags: guanxi::TagsView::List(&tags),
        custom: &custom,
        identifiers: &identifiers,
        created_by: required("created_by", text("created_by")?)?,
        created_at: required("created_at", instant_at(batch, "created_at", i)?)?,
        updated_by: required("updated_by", text("updated_by")?)?,
        updated_at: required("updated_at", instant_at(batch, "updated_at", i)?)?,
        version: u64::try_from(column::<Int64Array>(batch, "version")?.value(i)).unwrap_or(0),
        deleted_at: instant_at(batch, "deleted_at", i)?,
        merged_into: merged_into.map(str::parse).transpose().map_err(external)?,
    };
    view.to_customer().map_err(external)
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> ArrowError {
    ArrowError::ExternalError(Box::new(e))
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

    /// A table of customers scanned into columns (see [`CustomerColumns`]).
    pub(crate) fn scanned_customers(columns: CustomerColumns) -> Result<Table, ArrowError> {
        let defs = columns.defs.clone();
        let batch = columns.finish()?;
        let n = batch.num_rows();
        Ok(Table::over(Arc::new(ScannedCustomers { batch, defs }), n))
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

/// `decimal128(38, 10)`: every decimal column's type.
fn decimal_type() -> DataType {
    DataType::Decimal128(38, DECIMAL_SCALE as i8)
}

/// A decimal as the mantissa of `decimal128(38, 10)`; a value with more places than that is an
/// error naming the column, never rounded.
fn decimal128(name: &str, d: rust_decimal::Decimal) -> Result<i128, ArrowError> {
    let d = d.normalize();
    let too_precise = || ArrowError::ComputeError(format!("{name}: {d} does not fit decimal128(38, {DECIMAL_SCALE})"));
    let factor = 10i128.checked_pow(DECIMAL_SCALE.checked_sub(d.scale()).ok_or_else(too_precise)?);
    factor.and_then(|f| d.mantissa().checked_mul(f)).ok_or_else(too_precise)
}

/// Exact decimals as `decimal128(38, 10)` whatever the values (see [`decimal128`]).
fn decimal_array(name: &str, values: &[Option<rust_decimal::Decimal>]) -> Result<(Field, ArrayRef), ArrowError> {
    let data_type = decimal_type();
    let mut b = Decimal128Builder::with_capacity(values.len()).with_data_type(data_type.clone());
    for v in values {
        match v {
            Some(d) => b.append_value(decimal128(name, *d)?),
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
