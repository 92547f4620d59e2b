//! Segments compiled into the customer query: one SQL condition over `customers c` that holds
//! exactly when [`Segment::matches`] does. Every leaf is made two-valued (`IS TRUE`), so `NOT`
//! over a missing value gives what the reference gives; text compares with its ASCII letters
//! lower-cased on both sides (the reference's rule); days compare through the instants they
//! begin in the store's time zone; a count of events is a correlated sub-query over the
//! `(name, customer_id, at)` index, placed after the cheap tests of its `and` / `or` so it runs
//! only for the customers they leave.

use guanxi_core::marketing::{
    CmpOp, CountSource, EventCount, Literal, Predicate, Segment, SegmentContext, SegmentField, fold_literal,
};
use guanxi_core::region::{canonical_province, provinces_of_area};

use chrono::Datelike;

use super::{Dialect, SqlValue, ts};

/// The condition on `customers c` of a segment at `ctx`; its parameters are appended to
/// `params` and numbered after those already there.
///
/// ```
/// use guanxi_core::marketing::{Segment, SegmentContext};
/// use guanxi_sql::{Dialect, segment_condition};
/// let ctx = SegmentContext::at("2024-06-01T00:00:00Z".parse().unwrap());
/// let mut params = Vec::new();
/// let s = Segment::parse("tag:VIP AND NOT status = lost").unwrap();
/// let sql = segment_condition(Dialect::Sqlite, &s, &ctx, &mut params);
/// assert_eq!(sql, "((EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = ?1)) IS TRUE \
///                  AND NOT ((c.status = ?2) IS TRUE))");
/// ```
pub fn segment_condition(d: Dialect, segment: &Segment, ctx: &SegmentContext, params: &mut Vec<SqlValue>) -> String {
    Compiler { d, ctx, params }.segment(segment)
}

struct Compiler<'a> {
    d: Dialect,
    ctx: &'a SegmentContext,
    params: &'a mut Vec<SqlValue>,
}

/// The SQL operator of a comparison (`in` of one value is `=`); None for `~`, which only
/// text has.
fn sql_op(op: CmpOp) -> Option<&'static str> {
    Some(match op {
        CmpOp::Eq | CmpOp::In => "=",
        CmpOp::Ne => "<>",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Contains => return None,
    })
}

/// Keys an event property may have (what `BehaviourEvent::validate` admits); a segment naming
/// another finds no value, and such a key is never written into SQL.
fn plain_key(key: &str) -> bool {
    !key.is_empty() && key.chars().count() <= 64 && key.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Where a typed value (`{"type": …, "value": …}`) sits in a JSON text column.
struct JsonValue<'a> {
    column: &'a str,
    /// The path to the value's object: `["spend"]`, `["properties", "url"]`.
    path: [&'a str; 2],
    depth: usize,
}

impl JsonValue<'_> {
    fn part(&self, d: Dialect, part: &str) -> String {
        let path = &self.path[..self.depth];
        match d {
            Dialect::Sqlite => {
                let labels: Vec<String> = path.iter().map(|k| format!("\"{k}\"")).collect();
                format!("json_extract({}, '$.{}.{part}')", self.column, labels.join("."))
            }
            Dialect::Postgres => format!("({}::jsonb #>> '{{{},{part}}}')", self.column, path.join(",")),
        }
    }

    /// The elements of the value's array, as a table of one text column `v`.
    fn elements(&self, d: Dialect) -> String {
        let path = &self.path[..self.depth];
        match d {
            Dialect::Sqlite => {
                let labels: Vec<String> = path.iter().map(|k| format!("\"{k}\"")).collect();
                format!("(SELECT value AS v FROM json_each({}, '$.{}.value'))", self.column, labels.join("."))
            }
            Dialect::Postgres => format!(
                "(SELECT v FROM jsonb_array_elements_text({}::jsonb #> '{{{},value}}') AS m(v))",
                self.column,
                path.join(",")
            ),
        }
    }
}

impl Compiler<'_> {
    fn bind(&mut self, v: SqlValue) -> String {
        self.params.push(v);
        self.d.placeholder(self.params.len())
    }

    fn text(&mut self, s: impl Into<String>) -> String {
        self.bind(SqlValue::Text(s.into()))
    }

    fn never(&self) -> String {
        self.d.never().to_owned()
    }

    fn truth(&self, b: bool) -> String {
        match (self.d, b) {
            (Dialect::Sqlite, true) => "1".into(),
            (Dialect::Postgres, true) => "true".into(),
            _ => self.never(),
        }
    }

    /// Any of the conditions (none: never).
    fn any(&self, parts: Vec<String>) -> String {
        if parts.is_empty() { self.never() } else { format!("({})", parts.join(" OR ")) }
    }

    fn segment(&mut self, s: &Segment) -> String {
        match s {
            Segment::And(ps) if ps.is_empty() => self.truth(true),
            Segment::Or(ps) if ps.is_empty() => self.never(),
            Segment::And(ps) | Segment::Or(ps) => {
                let word = if matches!(s, Segment::And(_)) { " AND " } else { " OR " };
                // Parts that count events go last: the database stops at the first part that
                // decides, so a count runs only for the customers the cheap tests left.
                let (cheap, counting): (Vec<&Segment>, Vec<&Segment>) = ps.iter().partition(|p| !counts(p));
                let parts: Vec<String> = cheap.into_iter().chain(counting).map(|p| self.segment(p)).collect();
                format!("({})", parts.join(word))
            }
            Segment::Not(inner) => format!("NOT ({})", self.segment(inner)),
            Segment::Is(p) => format!("({}) IS TRUE", self.predicate(p)),
        }
    }

    fn predicate(&mut self, p: &Predicate) -> String {
        match p {
            Predicate::Tag(t) => {
                let p = self.text(t.clone());
                format!("EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = {p})")
            }
            Predicate::TagGroup(g) => {
                let tags: Vec<String> =
                    self.ctx.tag_groups.iter().filter(|(_, grp)| *grp == g).map(|(t, _)| t.clone()).collect();
                if tags.is_empty() {
                    return self.never();
                }
                let ps: Vec<String> = tags.into_iter().map(|t| self.text(t)).collect();
                format!(
                    "EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag IN ({}))",
                    ps.join(", ")
                )
            }
            Predicate::Region(r) => self.region(r),
            Predicate::Field { field, op, value } => self.field(field, *op, value),
            Predicate::Count(count) => self.count(count),
            // The facade inlines saved segments first; one left unresolved holds for no one.
            Predicate::Segment(_) => self.never(),
        }
    }

    fn region(&mut self, region: &str) -> String {
        if let Some(province) = canonical_province(region) {
            let p = self.text(province);
            return format!("c.province = {p}");
        }
        let mut parts = Vec::new();
        let provinces = provinces_of_area(region);
        if !provinces.is_empty() {
            let ps: Vec<String> = provinces.into_iter().map(|p| self.text(p)).collect();
            parts.push(format!("c.province IN ({})", ps.join(", ")));
        }
        if !region.is_empty() {
            let p = self.text(region);
            parts.push(format!("(c.province IS NOT NULL AND c.city = {p})"));
        }
        self.any(parts)
    }

    fn field(&mut self, field: &SegmentField, op: CmpOp, value: &Literal) -> String {
        // Vocabulary columns hold lower-case names already: compared as stored, their indexes
        // stay usable.
        let (column, lower) = match field {
            SegmentField::Status => ("c.status", false),
            SegmentField::Kind => ("c.kind", false),
            SegmentField::Level => ("c.level", false),
            SegmentField::Industry => ("c.industry", false),
            SegmentField::Size => ("c.size", false),
            SegmentField::Source => return self.text_cond(&self.d.customer_doc("source"), true, op, value),
            SegmentField::Owner => ("c.owner", true),
            SegmentField::Department => ("c.department", true),
            SegmentField::Province => return self.text_cond("c.province", true, op, &value.with_full_province_names()),
            SegmentField::City => ("c.city", true),
            SegmentField::District => ("c.district", true),
            SegmentField::Name => ("c.name", true),
            SegmentField::Code => ("c.code", true),
            SegmentField::CreatedAt => return self.day_cond(&self.instant_column("created_at"), op, value),
            SegmentField::UpdatedAt => return self.day_cond(&self.instant_column("updated_at"), op, value),
            SegmentField::Custom(key) => {
                if !super::safe_key(key) {
                    return self.truth(op == CmpOp::Ne);
                }
                return self.typed_cond(&JsonValue { column: "c.custom", path: [key, ""], depth: 1 }, op, value);
            }
        };
        self.text_cond(column, lower, op, value)
    }

    /// A text column compared with a value; a NULL column (no value) holds only for `!=`.
    fn text_cond(&mut self, column: &str, lower: bool, op: CmpOp, value: &Literal) -> String {
        let x = if lower { self.d.lower(column) } else { column.to_owned() };
        let some = match (op, value) {
            (CmpOp::In, Literal::List(items)) => {
                let texts: Vec<String> = items
                    .iter()
                    .filter_map(|i| match i {
                        Literal::Text(t) => Some(fold_literal(t)),
                        Literal::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect();
                if texts.is_empty() {
                    self.never()
                } else {
                    let ps: Vec<String> = texts.into_iter().map(|t| self.text(t)).collect();
                    format!("{x} IN ({})", ps.join(", "))
                }
            }
            (CmpOp::Contains, Literal::Text(v)) => {
                let p = self.text(fold_literal(v));
                self.d.contains(&x, &p)
            }
            (op, Literal::Text(v)) => self.compare_text(&x, op, fold_literal(v)),
            (op, Literal::Number(n)) => self.compare_text(&x, op, n.to_string()),
            _ => self.never(),
        };
        if op == CmpOp::Ne { format!("({column} IS NULL OR ({some}) IS TRUE)") } else { some }
    }

    /// Text compared byte by byte, as Rust compares strings.
    fn compare_text(&mut self, x: &str, op: CmpOp, v: String) -> String {
        let Some(sql) = sql_op(op) else { return self.never() };
        let p = self.text(v);
        format!("{} {sql} {p}", self.d.bytewise(x))
    }

    /// An instant column's day in the store's time zone compared with a day.
    fn day_cond(&mut self, column: &str, op: CmpOp, value: &Literal) -> String {
        match value {
            Literal::Date(day) => self.day_cmp(column, op, *day),
            Literal::DaysAgo(n) => self.day_cmp(column, op, self.ctx.days_ago(*n)),
            Literal::List(items) if op == CmpOp::In => {
                let parts = items.iter().map(|i| self.day_cond(column, CmpOp::Eq, i)).collect();
                self.any(parts)
            }
            _ => self.never(),
        }
    }

    /// A customer's instant: SQLite keeps it in a column as stored text; PostgreSQL in the
    /// document, read as a `timestamptz` (which keeps microseconds: an instant within half a
    /// microsecond of midnight may fall on the other day there).
    fn instant_column(&self, name: &str) -> String {
        match self.d {
            Dialect::Sqlite => format!("c.{name}"),
            Dialect::Postgres => format!("({})::timestamptz", self.d.customer_doc(name)),
        }
    }

    /// The instant a day begins, as the instant columns compare.
    fn day_bound(&mut self, day: Option<chrono::NaiveDate>) -> String {
        let bound = day_start(self.ctx, day);
        match self.d {
            Dialect::Sqlite => self.text(bound.text()),
            Dialect::Postgres => match bound {
                Bound::Before => "'-infinity'::timestamptz".into(),
                Bound::After => "'infinity'::timestamptz".into(),
                Bound::At(t) => format!("({}::text)::timestamptz", self.text(t)),
            },
        }
    }

    fn day_cmp(&mut self, column: &str, op: CmpOp, day: chrono::NaiveDate) -> String {
        let next = day.succ_opt();
        match op {
            CmpOp::Eq | CmpOp::In => {
                let (s, e) = (self.day_bound(Some(day)), self.day_bound(next));
                format!("({column} >= {s} AND {column} < {e})")
            }
            CmpOp::Ne => {
                let (s, e) = (self.day_bound(Some(day)), self.day_bound(next));
                format!("({column} < {s} OR {column} >= {e})")
            }
            CmpOp::Lt => format!("{column} < {}", self.day_bound(Some(day))),
            CmpOp::Le => format!("{column} < {}", self.day_bound(next)),
            CmpOp::Gt => format!("{column} >= {}", self.day_bound(next)),
            CmpOp::Ge => format!("{column} >= {}", self.day_bound(Some(day))),
            CmpOp::Contains => self.never(),
        }
    }

    /// A typed JSON value (a custom field, an event property) compared with a value, by the
    /// type it was stored with; an absent one holds only for `!=`.
    fn typed_cond(&mut self, at: &JsonValue<'_>, op: CmpOp, value: &Literal) -> String {
        let ty = at.part(self.d, "type");
        let val = at.part(self.d, "value");
        let number = self.number_cond(&val, op, value);
        let date = self.date_text_cond(&val, op, value);
        let boolean = match (op, value) {
            (CmpOp::Eq | CmpOp::Ne, Literal::Bool(b)) => {
                let p = self.bind(self.d.json_bool(*b));
                format!("{val} {} {p}", if op == CmpOp::Eq { "=" } else { "<>" })
            }
            _ => self.never(),
        };
        let text = self.text_cond(&val, true, op, value);
        let multi = self.multi_cond(at, op, value);
        let absent = self.truth(op == CmpOp::Ne);
        format!(
            "CASE {ty} WHEN 'number' THEN ({number}) IS TRUE WHEN 'decimal' THEN ({number}) IS TRUE \
             WHEN 'date' THEN ({date}) IS TRUE WHEN 'bool' THEN ({boolean}) IS TRUE \
             WHEN 'text' THEN ({text}) IS TRUE WHEN 'select' THEN ({text}) IS TRUE \
             WHEN 'multi_select' THEN ({multi}) IS TRUE ELSE {absent} END"
        )
    }

    /// A number (integer or decimal text) compared exactly with a decimal.
    fn number_cond(&mut self, val: &str, op: CmpOp, value: &Literal) -> String {
        match value {
            Literal::Number(n) => match sql_op(op) {
                Some(sql) => {
                    let p = self.text(n.to_string());
                    self.d.decimal_cmp(val, &p, sql)
                }
                None => self.never(),
            },
            Literal::List(items) if op == CmpOp::In => {
                let parts = items.iter().map(|i| self.number_cond(val, CmpOp::Eq, i)).collect();
                self.any(parts)
            }
            _ => self.never(),
        }
    }

    /// A day stored as `YYYY-MM-DD` text compared with a day.
    fn date_text_cond(&mut self, val: &str, op: CmpOp, value: &Literal) -> String {
        match value {
            Literal::Date(day) => self.compare_text(val, op, day.format("%Y-%m-%d").to_string()),
            Literal::DaysAgo(n) => {
                let day = self.ctx.days_ago(*n);
                self.compare_text(val, op, day.format("%Y-%m-%d").to_string())
            }
            Literal::List(items) if op == CmpOp::In => {
                let parts = items.iter().map(|i| self.date_text_cond(val, CmpOp::Eq, i)).collect();
                self.any(parts)
            }
            _ => self.never(),
        }
    }

    /// A multi-select: `=` and `~` hold when the value is among its choices, `!=` when it is
    /// not, `in` when one of the list is.
    fn multi_cond(&mut self, at: &JsonValue<'_>, op: CmpOp, value: &Literal) -> String {
        let elements = at.elements(self.d);
        let v = self.d.lower("m.v");
        let has = |c: &mut Self, texts: Vec<String>| -> String {
            let ps: Vec<String> = texts.into_iter().map(|t| c.text(t)).collect();
            format!("EXISTS (SELECT 1 FROM {elements} AS m WHERE {v} IN ({}))", ps.join(", "))
        };
        match (op, value) {
            (CmpOp::Eq | CmpOp::Contains, Literal::Text(x)) => has(self, vec![fold_literal(x)]),
            (CmpOp::Ne, Literal::Text(x)) => format!("NOT {}", has(self, vec![fold_literal(x)])),
            (CmpOp::In, Literal::List(items)) => {
                let texts: Vec<String> = items
                    .iter()
                    .filter_map(|i| if let Literal::Text(x) = i { Some(fold_literal(x)) } else { None })
                    .collect();
                if texts.is_empty() { self.never() } else { has(self, texts) }
            }
            _ => self.never(),
        }
    }

    /// A count of a customer's events (or interactions) compared with a number, as a grouped
    /// sub-query over the events that qualify.
    fn count(&mut self, count: &EventCount) -> String {
        let Some(sql) = sql_op(count.op) else { return self.never() };
        let mut conds = Vec::new();
        let table = match &count.source {
            CountSource::Event(name) => {
                conds.push(format!("e.name = {}", self.text(name.clone())));
                for f in &count.filters {
                    let cond = if plain_key(&f.key) {
                        self.typed_cond(
                            &JsonValue { column: "e.doc", path: ["properties", &f.key], depth: 2 },
                            f.op,
                            &f.value,
                        )
                    } else {
                        self.truth(f.op == CmpOp::Ne)
                    };
                    conds.push(format!("({cond}) IS TRUE"));
                }
                "events e"
            }
            // Interactions have no properties: the reference counts them by kind alone.
            CountSource::Interaction(kind) => {
                if let Some(kind) = kind {
                    let column = match self.d {
                        Dialect::Sqlite => "e.kind",
                        Dialect::Postgres => "(e.doc::jsonb ->> 'kind')",
                    };
                    conds.push(format!("{column} = {}", self.text(kind.as_str())));
                }
                "interactions e"
            }
        };
        conds.push(format!("e.at <= {}", self.text(ts(self.ctx.now))));
        if let Some(days) = count.within_days {
            let first = day_start(self.ctx, Some(self.ctx.days_ago(days))).text();
            conds.push(format!("e.at >= {}", self.text(first)));
        }
        // Correlated: one index range (name, customer, window) per customer that reaches it.
        format!(
            "(SELECT count(*) FROM {table} WHERE e.customer_id = c.id AND {}) {sql} {}",
            conds.join(" AND "),
            count.n
        )
    }
}

/// Whether a segment counts events or interactions anywhere in it.
fn counts(s: &Segment) -> bool {
    !s.event_names().is_empty() || s.counts_interactions()
}

/// The tags every member must carry (the positive tag tests at the top level): a query may
/// start from the tag's index instead of every customer.
pub(crate) fn required_tags(s: &Segment) -> Vec<String> {
    match s {
        Segment::Is(Predicate::Tag(t)) => vec![t.clone()],
        Segment::And(ps) => ps
            .iter()
            .filter_map(|p| if let Segment::Is(Predicate::Tag(t)) = p { Some(t.clone()) } else { None })
            .collect(),
        _ => Vec::new(),
    }
}

/// The instant a day of the store's time zone begins at.
enum Bound {
    /// The day lies before every instant there is.
    Before,
    /// The instant, as stored.
    At(String),
    /// The day lies after every instant there is.
    After,
}

impl Bound {
    /// As stored text, which sorts with stored instants: "" before them all, "~" after.
    fn text(self) -> String {
        match self {
            Bound::Before => String::new(),
            Bound::At(t) => t,
            Bound::After => "~".to_owned(),
        }
    }
}

/// Where a day begins (`None`: the day after the last one there is).
fn day_start(ctx: &SegmentContext, day: Option<chrono::NaiveDate>) -> Bound {
    match day {
        Some(day) => match ctx.day_start(day) {
            Some(at) => Bound::At(ts(at)),
            None if day.year() < 0 => Bound::Before,
            None => Bound::After,
        },
        None => Bound::After,
    }
}
