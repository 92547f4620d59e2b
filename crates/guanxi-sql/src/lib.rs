//! # guanxi-sql
//!
//! The SQL guanxi's storage backends share, written once: list filters (a customer filter
//! with its permission scope and custom-field conditions, a change-log query) compiled for a
//! [`Dialect`], with their parameters as neutral [`SqlValue`]s each backend binds its own
//! way. The semantics must equal the reference predicates in `guanxi_core`
//! (`CustomerFilter::matches`, `ChangeLogQuery::matches`); every backend's conformance suite
//! checks that they do.
//!
//! Both backends keep the same table layout: ids and instants as text (instants in the fixed
//! form of [`ts`], which sorts as it compares), vocabularies by stable name, nested values as
//! JSON text; PostgreSQL's text columns are `COLLATE "C"`, so they order as SQLite does.
//!
//! Field encryption ([`FieldKey`], [`Cipher`], [`FieldKeys`]) lives here too: both backends
//! seal sensitive values, keep a keyed blind index and a key check the same way.
//!
//! ```
//! use guanxi_core::CustomerFilter;
//! use guanxi_sql::{Dialect, customer_query};
//! let f = CustomerFilter::default().tag("VIP");
//! let q = customer_query(Dialect::Postgres, &f, None, true);
//! assert!(q.select("count(*)").contains("t0.tag = $1"));
//! let q = customer_query(Dialect::Sqlite, &f, None, true);
//! assert!(q.select("count(*)").contains("t0.tag = ?1"));
//! ```

mod commerce;
mod crypto;
pub mod report;

pub use commerce::{product_where, purchase_where};
mod segment;

pub use crypto::{Cipher, FieldKey, FieldKeys, KEY_CHECK, seal_match_key};
pub use segment::segment_condition;

use chrono::{DateTime, Utc};
use guanxi_core::{ChangeLogQuery, CustomFilter, CustomValue, CustomerFilter, Deleted, RecordScope};

/// The SQL an engine speaks where the two differ.
///
/// ```
/// use guanxi_sql::Dialect;
/// assert_eq!(Dialect::Sqlite.placeholder(2), "?2");
/// assert_eq!(Dialect::Postgres.placeholder(2), "$2");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3.45+ (JSON1, FTS5).
    Sqlite,
    /// PostgreSQL 15+.
    Postgres,
}

impl Dialect {
    /// The `n`th (1-based) parameter.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// A condition that holds for no row.
    pub fn never(self) -> &'static str {
        match self {
            Dialect::Sqlite => "0",
            Dialect::Postgres => "false",
        }
    }

    /// The text at `path` in a JSON text column (NULL when absent).
    fn json_text(self, column: &str, path: &[&str]) -> String {
        match self {
            Dialect::Sqlite => format!("json_extract({column}, '$.{}')", path.join(".")),
            Dialect::Postgres => format!("({column}::jsonb #>> '{{{}}}')", path.join(",")),
        }
    }

    /// Whether the JSON array at `path` in a JSON text column holds the text `p`.
    fn json_array_has(self, column: &str, path: &[&str], p: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("EXISTS (SELECT 1 FROM json_each({column}, '$.{}') WHERE value = {p})", path.join("."))
            }
            Dialect::Postgres => format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements_text({column}::jsonb #> '{{{}}}') e WHERE e = {p})",
                path.join(",")
            ),
        }
    }

    /// Whether `needle` occurs in `haystack`, ASCII letters folded (the reference's
    /// `contains_ascii_ci`); the needle's `%` and `_` are literal.
    fn contains_ascii_ci(self, haystack: &str, needle: &str) -> String {
        match self {
            // SQLite's lower() folds ASCII only.
            Dialect::Sqlite => format!("instr(lower({haystack}), lower({needle})) > 0"),
            // PostgreSQL's lower() folds every script: translate the ASCII letters alone.
            Dialect::Postgres => {
                format!("strpos(translate({haystack}, {ASCII_FOLD}), translate({needle}, {ASCII_FOLD})) > 0")
            }
        }
    }

    /// A customer's field kept in its document alone on PostgreSQL, in a column on SQLite.
    fn customer_doc(self, name: &str) -> String {
        match self {
            Dialect::Sqlite => format!("c.{name}"),
            Dialect::Postgres => format!("(c.doc::jsonb ->> '{name}')"),
        }
    }

    /// The text with its ASCII letters lower-cased, nothing else (the reference's rule).
    fn lower(self, x: &str) -> String {
        match self {
            // SQLite's lower() folds ASCII only.
            Dialect::Sqlite => format!("lower({x})"),
            Dialect::Postgres => format!("translate({x}, {ASCII_FOLD})"),
        }
    }

    /// Whether the text `needle` occurs in `haystack`, as written.
    fn contains(self, haystack: &str, needle: &str) -> String {
        match self {
            Dialect::Sqlite => format!("instr({haystack}, {needle}) > 0"),
            Dialect::Postgres => format!("strpos({haystack}, {needle}) > 0"),
        }
    }

    /// The text under byte-wise ordering (SQLite's BINARY; PostgreSQL's "C").
    fn bytewise(self, x: &str) -> String {
        match self {
            Dialect::Sqlite => x.to_owned(),
            Dialect::Postgres => format!("({x}) COLLATE \"C\""),
        }
    }

    /// A stored number (an integer, or decimal text) compared exactly with the decimal text
    /// parameter `p`: by the `guanxi_decimal_cmp` function the SQLite backend registers on
    /// its connections, by `numeric` in PostgreSQL.
    fn decimal_cmp(self, x: &str, p: &str, op: &str) -> String {
        match self {
            Dialect::Sqlite => format!("guanxi_decimal_cmp({x}, {p}) {op} 0"),
            Dialect::Postgres => format!("({x})::numeric {op} ({p}::text)::numeric"),
        }
    }

    /// How a number inside JSON text compares to a parameter: as a number in SQLite
    /// (`json_extract` yields one), as text in PostgreSQL (`#>>` yields text).
    fn json_number(self, n: i64) -> SqlValue {
        match self {
            Dialect::Sqlite => SqlValue::Integer(n),
            Dialect::Postgres => SqlValue::Text(n.to_string()),
        }
    }

    fn json_bool(self, b: bool) -> SqlValue {
        match self {
            Dialect::Sqlite => SqlValue::Integer(i64::from(b)),
            Dialect::Postgres => SqlValue::Text(b.to_string()),
        }
    }
}

/// `translate`'s arguments that lower-case the ASCII letters alone (PostgreSQL's `lower()`
/// folds every script).
const ASCII_FOLD: &str = "'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'";

/// A parameter value, bound by each backend in its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    /// Text.
    Text(String),
    /// A 64-bit integer.
    Integer(i64),
}

/// Custom values as stored: JSON text, decimals normalized so equality filters compare
/// canonical text.
///
/// ```
/// use guanxi_core::CustomValue;
/// let custom = [("budget".to_owned(), CustomValue::Decimal("1.50".parse().unwrap()))].into();
/// assert_eq!(guanxi_sql::custom_json(&custom), r#"{"budget":{"type":"decimal","value":"1.5"}}"#);
/// ```
pub fn custom_json(custom: &std::collections::BTreeMap<String, CustomValue>) -> String {
    let canonical: std::collections::BTreeMap<&String, CustomValue> = custom
        .iter()
        .map(|(k, v)| match v {
            CustomValue::Decimal(d) => (k, CustomValue::Decimal(d.normalize())),
            other => (k, other.clone()),
        })
        .collect();
    // Serializing plain data (maps of strings, numbers, dates) to JSON cannot fail.
    serde_json::to_string(&canonical).unwrap_or_else(|_| "null".to_owned())
}

/// Where a compiled condition's parameters go: the shared builders number their placeholders
/// after what is already there, so a backend's own conditions can come before and after.
pub trait Params {
    /// Adds a parameter.
    fn push(&mut self, value: SqlValue);
    /// How many parameters there are.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Params for Vec<SqlValue> {
    fn push(&mut self, value: SqlValue) {
        Vec::push(self, value);
    }

    fn len(&self) -> usize {
        Vec::len(self)
    }
}

/// An instant as stored: fixed-width RFC 3339 with nanoseconds, UTC
/// (`2024-05-01T08:00:00.000000000Z`), which sorts lexicographically and round-trips exactly.
///
/// ```
/// let t = chrono::DateTime::from_timestamp(1_714_550_400, 5).unwrap();
/// assert_eq!(guanxi_sql::ts(t), "2024-05-01T08:00:00.000000005Z");
/// ```
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The parameters of one page of a customer's events, the same on every backend: the cursor's
/// id (empty from the start: every id sorts after it), the range's bounds as stored instants,
/// and the row limit (one more than the page, to tell whether another follows).
///
/// ```
/// use guanxi_core::{PageRequest, marketing::EventRange};
/// let (after, from, to, limit) = guanxi_sql::event_page(&EventRange::default(), &PageRequest::first(10));
/// assert_eq!((after.as_str(), from, to, limit), ("", None, None, 11));
/// ```
pub fn event_page(
    range: &guanxi_core::marketing::EventRange,
    page: &guanxi_core::PageRequest,
) -> (String, Option<String>, Option<String>, i64) {
    let (after, limit) = id_page(page);
    (after, range.from.map(ts), range.to.map(ts), limit)
}

/// The parameters of one page of a table in id order: the cursor's id (empty from the start:
/// every id sorts after it) and the row limit (one more than the page, to tell whether another
/// follows).
///
/// ```
/// use guanxi_core::PageRequest;
/// assert_eq!(guanxi_sql::id_page(&PageRequest::first(10)), (String::new(), 11));
/// ```
pub fn id_page(page: &guanxi_core::PageRequest) -> (String, i64) {
    let after = page.after.map(|c| c.last_id().to_string()).unwrap_or_default();
    (after, i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX))
}

/// A FROM … WHERE … clause over `customers c` and its parameters.
#[derive(Debug, Clone)]
pub struct Query {
    from: &'static str,
    conds: Vec<String>,
    /// The permission scope's alternatives (any one admits a row), when it has several.
    scope_any: Vec<String>,
    /// The parameters, in placeholder order.
    pub params: Vec<SqlValue>,
    /// The id column to order and page by: the tag index's own column when the scan is
    /// driven by a tag, so rows come out of the index already sorted (no temporary B-tree).
    pub order_key: &'static str,
}

impl Query {
    /// `SELECT columns FROM … WHERE …`.
    pub fn select(&self, columns: &str) -> String {
        let mut conds = self.conds.clone();
        if !self.scope_any.is_empty() {
            conds.push(format!("({})", self.scope_any.join(" OR ")));
        }
        format!("SELECT {columns} {}", from_where(self.from, &conds))
    }

    /// `SELECT count(*) …` of the rows. A scope of several alternatives (owners, departments,
    /// regions) is counted as the sum of disjoint parts — the rows the k-th alternative admits
    /// and none before it does — each an index range scan, where one `OR` would make the
    /// database gather and de-duplicate row ids from every index and then visit each row.
    pub fn count(&self) -> String {
        if self.scope_any.len() < 2 {
            return self.select("count(*)");
        }
        let parts: Vec<String> = (0..self.scope_any.len())
            .map(|k| {
                let mut conds = self.conds.clone();
                conds.push(self.scope_any[k].clone());
                if k > 0 {
                    conds.push(format!("({}) IS NOT TRUE", self.scope_any[..k].join(" OR ")));
                }
                format!("(SELECT count(*) {})", from_where(self.from, &conds))
            })
            .collect();
        format!("SELECT {}", parts.join(" + "))
    }
}

fn from_where(from: &str, conds: &[String]) -> String {
    if conds.is_empty() { from.to_owned() } else { format!("{from} WHERE {}", conds.join(" AND ")) }
}

/// The customers matching `f` (after the id `after`, for a page). `ordered`: the rows are read
/// in id order (a page), not merely counted.
pub fn customer_query(d: Dialect, f: &CustomerFilter, after: Option<uuid::Uuid>, ordered: bool) -> Query {
    let mut conds: Vec<String> = Vec::new();
    let mut params: Vec<SqlValue> = Vec::new();
    let bind = |params: &mut Vec<SqlValue>, v: SqlValue| {
        params.push(v);
        d.placeholder(params.len())
    };
    // With a tag, drive the scan from the (tag, customer_id) index instead of every customer
    // (with a few ids, from the primary key).
    let (from, order_key) = match f.tags.first().filter(|_| f.ids.is_none()) {
        Some(first) => {
            let p = bind(&mut params, SqlValue::Text(first.clone()));
            conds.push(format!("t0.tag = {p}"));
            ("FROM customer_tags t0 JOIN customers c ON c.id = t0.customer_id", "t0.customer_id")
        }
        None => ("FROM customers c", "c.id"),
    };
    for t in f.tags.iter().skip(usize::from(f.ids.is_none())) {
        let p = bind(&mut params, SqlValue::Text(t.clone()));
        conds.push(format!("EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = {p})"));
    }
    if let Some(after) = after {
        let p = bind(&mut params, SqlValue::Text(after.to_string()));
        conds.push(format!("{order_key} > {p}"));
    }
    if let Some(ids) = &f.ids {
        if ids.is_empty() {
            conds.push(d.never().to_owned());
        } else {
            let ps: Vec<String> = ids.iter().map(|id| bind(&mut params, SqlValue::Text(id.to_string()))).collect();
            conds.push(format!("c.id IN ({})", ps.join(", ")));
        }
    }
    let mut scope_any = Vec::new();
    if let Some(scope) = f.scope.as_ref().filter(|s| !s.all) {
        scope_any = scope_alternatives(d, "c", scope, &mut params, ordered, false);
        if scope_any.is_empty() {
            conds.push(d.never().to_owned());
        }
    }
    match f.deleted {
        Deleted::Exclude => conds.push("c.deleted_at IS NULL".into()),
        Deleted::Only => conds.push("c.deleted_at IS NOT NULL".into()),
        Deleted::Include => {}
    }
    let text_eq = |conds: &mut Vec<String>, params: &mut Vec<SqlValue>, col: &str, v: Option<&str>| {
        if let Some(v) = v {
            params.push(SqlValue::Text(v.to_owned()));
            conds.push(format!("{col} = {}", d.placeholder(params.len())));
        }
    };
    text_eq(&mut conds, &mut params, "c.status", f.status.map(|s| s.as_str()));
    text_eq(&mut conds, &mut params, "c.kind", f.kind.map(|k| k.as_str()));
    text_eq(&mut conds, &mut params, "c.level", f.level.map(|l| l.as_str()));
    text_eq(&mut conds, &mut params, "c.industry", f.industry.map(|i| i.as_str()));
    text_eq(&mut conds, &mut params, "c.size", f.size.map(|s| s.as_str()));
    text_eq(&mut conds, &mut params, "c.owner", f.owner.as_ref().map(|o| o.as_str()));
    text_eq(&mut conds, &mut params, "c.department", f.department.as_ref().map(|d| d.as_str()));
    text_eq(&mut conds, &mut params, "c.province", f.province.as_deref());
    // Empty city/district are stored as NULL; the reference matches them against "".
    for (col, v) in [("c.city", &f.city), ("c.district", &f.district)] {
        if let Some(v) = v {
            let p = bind(&mut params, SqlValue::Text(v.clone()));
            conds.push(format!("c.province IS NOT NULL AND coalesce({col}, '') = {p}"));
        }
    }
    if let Some(n) = &f.name_contains {
        let p = bind(&mut params, SqlValue::Text(n.clone()));
        conds.push(d.contains_ascii_ci("c.name", &p));
    }
    for cf in &f.custom {
        conds.push(custom_condition(d, cf, &mut params));
    }
    Query { from, conds, scope_any, params, order_key }
}

/// The customers matching `f` that are in `segment` at `ctx` (after the id `after`, for a
/// page): the customer query with the segment's condition ([`segment_condition`]) added.
///
/// ```
/// use guanxi_core::{CustomerFilter, marketing::{Segment, SegmentContext}};
/// use guanxi_sql::{Dialect, segment_query};
/// let ctx = SegmentContext::at("2024-06-01T00:00:00Z".parse().unwrap());
/// let s = Segment::parse("count(event = page_view, within = 30d) >= 3 AND tag:VIP").unwrap();
/// let q = segment_query(Dialect::Postgres, &CustomerFilter::default(), &s, &ctx, None, false);
/// let sql = q.count();
/// assert!(sql.contains("FROM customer_tags t0 JOIN customers c")); // started from the tag's index
/// assert!(sql.contains("(SELECT count(*) FROM events e WHERE e.customer_id = c.id AND e.name = $3"));
/// ```
pub fn segment_query(
    d: Dialect,
    f: &CustomerFilter,
    segment: &guanxi_core::marketing::Segment,
    ctx: &guanxi_core::marketing::SegmentContext,
    after: Option<uuid::Uuid>,
    ordered: bool,
) -> Query {
    // A tag every member carries joins the filter's tags, so the scan can start from its index.
    let mut driven = f.clone();
    for t in segment::required_tags(segment).into_iter().filter(|_| f.ids.is_none()) {
        if !driven.tags.contains(&t) {
            driven.tags.push(t);
        }
    }
    let mut q = customer_query(d, &driven, after, ordered);
    let cond = segment_condition(d, segment, ctx, &mut q.params);
    q.conds.push(cond);
    q
}

/// The permission scope, as one more condition of the same query: never a post-filter, so
/// pages, counts and single reads agree with `RecordScope::admits`.
///
/// A scope of one owner uses the `(owner, id)` index, which yields rows already in page order.
/// For pages, a broader scope (a department tree, regions) is a filter on the scan the other
/// conditions choose (`+` keeps SQLite from answering it with an OR of index lookups and a
/// sort, which costs a full sort of the scope for every page); counts, which need no order,
/// leave SQLite free to use the indexes.
pub fn scope_condition(d: Dialect, alias: &str, scope: &RecordScope, params: &mut dyn Params, ordered: bool) -> String {
    any_of(d, scope_alternatives(d, alias, scope, params, ordered, false))
}

/// [`scope_condition`] for a table whose rows also carry a `created_by` column that scopes
/// reach as they reach the owner (`ScopeAttrs::creator`).
pub fn scope_condition_with_creator(d: Dialect, alias: &str, scope: &RecordScope, params: &mut dyn Params) -> String {
    any_of(d, scope_alternatives(d, alias, scope, params, false, true))
}

/// One condition true when any of `alternatives` is (none: never).
fn any_of(d: Dialect, alternatives: Vec<String>) -> String {
    if alternatives.is_empty() { d.never().to_owned() } else { format!("({})", alternatives.join(" OR ")) }
}

/// The scope's conditions, any one of which admits a row (none: the scope admits nothing).
fn scope_alternatives(
    d: Dialect,
    alias: &str,
    scope: &RecordScope,
    params: &mut dyn Params,
    ordered: bool,
    creator: bool,
) -> Vec<String> {
    let mut bind = |v: String| {
        params.push(SqlValue::Text(v));
        d.placeholder(params.len())
    };
    if scope.departments.is_empty() && scope.provinces.is_empty() && scope.owners.len() == 1 {
        let owner = scope.owners.iter().next().map(|o| o.to_string()).unwrap_or_default();
        let p = bind(owner);
        return vec![if creator {
            format!("({alias}.owner = {p} OR {alias}.created_by = {p})")
        } else {
            format!("{alias}.owner = {p}")
        }];
    }
    let mut any = Vec::new();
    let owners: Vec<String> = scope.owners.iter().map(|o| o.to_string()).collect();
    // Departments first: counted in parts, the first part needs no other column (the
    // `(department, deleted_at)` index answers it) and the owners' part checks the department
    // in the `(owner, deleted_at, department)` index.
    let mut sets: Vec<(&str, Vec<String>)> = vec![
        ("department", scope.departments.iter().map(|d| d.to_string()).collect()),
        ("owner", owners.clone()),
        ("province", scope.provinces.iter().cloned().collect()),
    ];
    if creator {
        sets.push(("created_by", owners));
    }
    for (col, values) in sets {
        if !values.is_empty() {
            let binds: Vec<String> = values.into_iter().map(&mut bind).collect();
            // `+` is SQLite's way to say "not through an index" (see above).
            let unary = if ordered && d == Dialect::Sqlite { "+" } else { "" };
            any.push(format!("{unary}{alias}.{col} IN ({})", binds.join(", ")));
        }
    }
    any
}

/// Whether a key can appear in a JSON path unquoted-safe (custom field keys are validated to
/// this shape, so any other key matches nothing).
fn safe_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn custom_condition(d: Dialect, cf: &CustomFilter, params: &mut Vec<SqlValue>) -> String {
    if !safe_key(&cf.key) {
        return d.never().into();
    }
    let ty = d.json_text("c.custom", &[&cf.key, "type"]);
    let val = d.json_text("c.custom", &[&cf.key, "value"]);
    let mut bind = |v: SqlValue| {
        params.push(v);
        d.placeholder(params.len())
    };
    let scalar = |ty_name: &str, p: String| format!("({ty} = '{ty_name}' AND {val} = {p})");
    let has = |p: &str| d.json_array_has("c.custom", &[&cf.key, "value"], p);
    match &cf.value {
        CustomValue::Text(s) => scalar("text", bind(SqlValue::Text(s.clone()))),
        CustomValue::Number(n) => scalar("number", bind(d.json_number(*n))),
        CustomValue::Decimal(x) => scalar("decimal", bind(SqlValue::Text(x.normalize().to_string()))),
        CustomValue::Date(x) => scalar("date", bind(SqlValue::Text(x.format("%Y-%m-%d").to_string()))),
        CustomValue::Bool(b) => scalar("bool", bind(d.json_bool(*b))),
        CustomValue::Select(s) => {
            let p = bind(SqlValue::Text(s.clone()));
            format!("(({ty} = 'select' AND {val} = {p}) OR ({ty} = 'multi_select' AND {}))", has(&p))
        }
        CustomValue::MultiSelect(set) => {
            let mut parts = vec![format!("{ty} = 'multi_select'")];
            for v in set {
                let p = bind(SqlValue::Text(v.clone()));
                parts.push(has(&p));
            }
            format!("({})", parts.join(" AND "))
        }
    }
}

/// The WHERE condition of a change-log query over `change_log`, and its parameters.
pub fn change_log_where(d: Dialect, q: &ChangeLogQuery) -> (String, Vec<SqlValue>) {
    let mut conds = vec!["1 = 1".to_owned()];
    let mut params = Vec::new();
    let mut add = |cond: &str, v: SqlValue| {
        params.push(v);
        conds.push(cond.replace('?', &d.placeholder(params.len())));
    };
    if let Some(id) = &q.entity_id {
        add("entity_id = ?", SqlValue::Text(id.clone()));
    }
    if let Some(c) = q.customer_id {
        add("customer_id = ?", SqlValue::Text(c.to_string()));
    }
    if let Some(a) = &q.actor {
        add("actor = ?", SqlValue::Text(a.to_string()));
    }
    if let Some(from) = q.from {
        add("at >= ?", SqlValue::Text(ts(from)));
    }
    if let Some(to) = q.to {
        add("at < ?", SqlValue::Text(ts(to)));
    }
    if let Some(s) = q.after_seq {
        add("seq > ?", SqlValue::Integer(i64::try_from(s).unwrap_or(i64::MAX)));
    }
    (conds.join(" AND "), params)
}

/// An instant as nanoseconds since 1970 (the narrow `*_ns` columns), or a validation error on
/// `at` outside what 64 bits hold (1677–2262).
///
/// ```
/// let t = chrono::DateTime::from_timestamp(1, 5).unwrap();
/// assert_eq!(guanxi_sql::ns(t).unwrap(), 1_000_000_005);
/// ```
pub fn ns(t: DateTime<Utc>) -> guanxi_core::Result<i64> {
    t.timestamp_nanos_opt().ok_or_else(|| {
        guanxi_core::Error::invalid(
            "at",
            guanxi_core::ValidationReason::Invalid { detail: format!("{t} is outside 1677–2262") },
        )
    })
}

/// Conditions joined with AND (a condition that always holds when there are none).
pub fn where_sql(conds: &[String]) -> String {
    if conds.is_empty() { "1 = 1".to_owned() } else { conds.join(" AND ") }
}

/// `alias.col = p` for each value given.
struct Equal<'a> {
    d: Dialect,
    alias: &'a str,
    conds: Vec<String>,
}

impl Equal<'_> {
    fn add(&mut self, params: &mut dyn Params, col: &str, v: Option<SqlValue>) {
        if let Some(v) = v {
            params.push(v);
            self.conds.push(format!("{}.{col} = {}", self.alias, self.d.placeholder(params.len())));
        }
    }
}

fn text(v: impl ToString) -> SqlValue {
    SqlValue::Text(v.to_string())
}

/// Conditions of an opportunity filter over `opportunities o`.
pub fn opportunity_where(
    d: Dialect,
    f: &guanxi_core::sales::OpportunityFilter,
    params: &mut dyn Params,
) -> Vec<String> {
    let mut eq = Equal { d, alias: "o", conds: Vec::new() };
    eq.add(params, "pipeline", f.pipeline.as_ref().map(text));
    eq.add(params, "stage", f.stage.as_ref().map(text));
    eq.add(params, "customer_id", f.customer_id.map(text));
    eq.add(params, "owner", f.owner.as_ref().map(text));
    eq.add(params, "department", f.department.as_ref().map(text));
    let mut conds = eq.conds;
    match f.open {
        Some(true) => conds.push("o.closed_ns IS NULL".into()),
        Some(false) => conds.push("o.closed_ns IS NOT NULL".into()),
        None => {}
    }
    if let Some(scope) = f.scope.as_ref().filter(|s| !s.all) {
        conds.push(scope_condition(d, "o", scope, params, false));
    }
    conds
}

/// Conditions of a lead filter over `leads o`.
pub fn lead_where(d: Dialect, f: &guanxi_core::sales::LeadFilter, params: &mut dyn Params) -> Vec<String> {
    let mut eq = Equal { d, alias: "o", conds: Vec::new() };
    eq.add(params, "status", f.status.map(|s| text(s.as_str())));
    eq.add(params, "owner", f.owner.as_ref().map(text));
    eq.add(params, "grade", f.grade.map(|g| text(g.as_str())));
    let mut conds = eq.conds;
    match f.open {
        Some(true) => conds.push("o.status IN ('new', 'assigned')".into()),
        Some(false) => conds.push("o.status NOT IN ('new', 'assigned')".into()),
        None => {}
    }
    if let Some(scope) = f.scope.as_ref().filter(|s| !s.all) {
        conds.push(scope_condition(d, "o", scope, params, false));
    }
    conds
}

/// Conditions of a task filter over `tasks o` (`done` is 0 or 1).
pub fn task_where(d: Dialect, f: &guanxi_core::sales::TaskFilter, params: &mut dyn Params) -> Vec<String> {
    let mut eq = Equal { d, alias: "o", conds: Vec::new() };
    eq.add(params, "owner", f.owner.as_ref().map(text));
    eq.add(params, "opportunity_id", f.opportunity_id.map(text));
    let mut conds = eq.conds;
    if let Some(open) = f.open {
        conds.push(format!("o.done = {}", i32::from(!open)));
    }
    if let Some(scope) = f.scope.as_ref().filter(|s| !s.all) {
        // Tasks carry no province: a region grant reaches none of them, as `admits` says.
        let mut s = scope.clone();
        s.provinces.clear();
        conds.push(scope_condition(d, "o", &s, params, false));
    }
    conds
}

/// Conditions of a ticket filter over `tickets t` (`open` is 0 or 1, `created_ns` nanoseconds).
pub fn ticket_where(
    d: Dialect,
    f: &guanxi_core::service::TicketFilter,
    params: &mut dyn Params,
) -> guanxi_core::Result<Vec<String>> {
    let mut eq = Equal { d, alias: "t", conds: Vec::new() };
    eq.add(params, "status", f.status.map(|s| text(s.as_str())));
    eq.add(params, "open", f.open.map(|o| SqlValue::Integer(i64::from(o))));
    eq.add(params, "owner", f.assignee.as_ref().map(text));
    eq.add(params, "grp", f.group.as_ref().map(text));
    eq.add(params, "customer_id", f.customer_id.map(text));
    eq.add(params, "kind", f.kind.map(|k| text(k.as_str())));
    eq.add(params, "priority", f.priority.map(|p| text(p.as_str())));
    eq.add(params, "channel", f.channel.map(|c| text(c.as_str())));
    let mut conds = eq.conds;
    if let Some(from) = f.created_from {
        params.push(SqlValue::Integer(ns(from)?));
        conds.push(format!("t.created_ns >= {}", d.placeholder(params.len())));
    }
    if let Some(to) = f.created_to {
        params.push(SqlValue::Integer(ns(to)?));
        conds.push(format!("t.created_ns < {}", d.placeholder(params.len())));
    }
    if let Some(scope) = f.scope.as_ref().filter(|s| !s.all) {
        conds.push(scope_condition_with_creator(d, "t", scope, params));
    }
    Ok(conds)
}
