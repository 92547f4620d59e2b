//! Compiles list filters into SQL. The semantics must equal the reference predicates in
//! `guanxi_core` (`CustomerFilter::matches`, `ChangeLogQuery::matches`); the conformance suite
//! checks that they do.

use rusqlite::types::Value;

use guanxi_core::{ChangeLogQuery, CustomFilter, CustomValue, CustomerFilter, Deleted, RecordScope};

use crate::codec::ts;

/// A FROM … WHERE … clause over `customers c` and its parameters.
pub(crate) struct Query {
    from_where: String,
    pub(crate) params: Vec<Value>,
    /// The id column to order and page by: the tag index's own column when the scan is
    /// driven by a tag, so rows come out of the index already sorted (no temporary B-tree).
    pub(crate) order_key: &'static str,
}

impl Query {
    pub(crate) fn select(&self, columns: &str) -> String {
        format!("SELECT {columns} {}", self.from_where)
    }
}

/// `ordered`: the rows are read in id order (a page), not merely counted.
pub(crate) fn customer_query(f: &CustomerFilter, after: Option<uuid::Uuid>, ordered: bool) -> Query {
    let mut conds: Vec<String> = Vec::new();
    let mut params: Vec<Value> = Vec::new();
    let bind = |params: &mut Vec<Value>, v: Value| {
        params.push(v);
        format!("?{}", params.len())
    };
    // With a tag, drive the scan from the (tag, customer_id) index instead of every customer.
    let (from, order_key) = match f.tags.first() {
        Some(first) => {
            let p = bind(&mut params, Value::Text(first.clone()));
            conds.push(format!("t0.tag = {p}"));
            ("FROM customer_tags t0 JOIN customers c ON c.id = t0.customer_id", "t0.customer_id")
        }
        None => ("FROM customers c", "c.id"),
    };
    for t in f.tags.iter().skip(1) {
        let p = bind(&mut params, Value::Text(t.clone()));
        conds.push(format!("EXISTS (SELECT 1 FROM customer_tags t WHERE t.customer_id = c.id AND t.tag = {p})"));
    }
    if let Some(after) = after {
        let p = bind(&mut params, Value::Text(after.to_string()));
        conds.push(format!("{order_key} > {p}"));
    }
    if let Some(scope) = f.scope.as_ref().filter(|s| !s.all) {
        conds.push(scope_condition("c", scope, &mut params, ordered));
    }
    match f.deleted {
        Deleted::Exclude => conds.push("c.deleted_at IS NULL".into()),
        Deleted::Only => conds.push("c.deleted_at IS NOT NULL".into()),
        Deleted::Include => {}
    }
    let text_eq = |conds: &mut Vec<String>, params: &mut Vec<Value>, col: &str, v: Option<&str>| {
        if let Some(v) = v {
            params.push(Value::Text(v.to_owned()));
            conds.push(format!("{col} = ?{}", params.len()));
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
            let p = bind(&mut params, Value::Text(v.clone()));
            conds.push(format!("c.province IS NOT NULL AND coalesce({col}, '') = {p}"));
        }
    }
    if let Some(n) = &f.name_contains {
        // instr, not LIKE: the needle's % and _ are literal. lower() folds ASCII only, as the reference does.
        let p = bind(&mut params, Value::Text(n.clone()));
        conds.push(format!("instr(lower(c.name), lower({p})) > 0"));
    }
    for cf in &f.custom {
        conds.push(custom_condition(cf, &mut params));
    }
    let where_sql = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    Query { from_where: format!("{from}{where_sql}"), params, order_key }
}

/// The permission scope, as one more condition of the same query: never a post-filter, so
/// pages, counts and single reads agree with `RecordScope::admits`.
///
/// A scope of one owner uses the `(owner, id)` index, which yields rows already in page order.
/// For pages, a broader scope (a department tree, regions) is a filter on the scan the other
/// conditions choose (`+` keeps SQLite from answering it with an OR of index lookups and a
/// sort, which costs a full sort of the scope for every page); counts, which need no order,
/// leave SQLite free to use the indexes.
pub(crate) fn scope_condition(alias: &str, scope: &RecordScope, params: &mut Vec<Value>, ordered: bool) -> String {
    scope_condition_of(alias, scope, params, ordered, false)
}

/// [`scope_condition`] for a table whose rows also carry a `created_by` column that scopes
/// reach as they reach the owner (`ScopeAttrs::creator`).
pub(crate) fn scope_condition_with_creator(alias: &str, scope: &RecordScope, params: &mut Vec<Value>) -> String {
    scope_condition_of(alias, scope, params, false, true)
}

fn scope_condition_of(
    alias: &str,
    scope: &RecordScope,
    params: &mut Vec<Value>,
    ordered: bool,
    creator: bool,
) -> String {
    let mut bind = |v: String| {
        params.push(Value::Text(v));
        format!("?{}", params.len())
    };
    if scope.departments.is_empty() && scope.provinces.is_empty() && scope.owners.len() == 1 {
        let owner = scope.owners.iter().next().map(|o| o.to_string()).unwrap_or_default();
        let p = bind(owner);
        return if creator {
            format!("({alias}.owner = {p} OR {alias}.created_by = {p})")
        } else {
            format!("{alias}.owner = {p}")
        };
    }
    let mut any = Vec::new();
    let owners: Vec<String> = scope.owners.iter().map(|o| o.to_string()).collect();
    let mut sets: Vec<(&str, Vec<String>)> = vec![
        ("owner", owners.clone()),
        ("department", scope.departments.iter().map(|d| d.to_string()).collect()),
        ("province", scope.provinces.iter().cloned().collect()),
    ];
    if creator {
        sets.push(("created_by", owners));
    }
    for (col, values) in sets {
        if !values.is_empty() {
            let binds: Vec<String> = values.into_iter().map(&mut bind).collect();
            let unary = if ordered { "+" } else { "" };
            any.push(format!("{unary}{alias}.{col} IN ({})", binds.join(", ")));
        }
    }
    if any.is_empty() { "0".to_owned() } else { format!("({})", any.join(" OR ")) }
}

/// Whether a key can appear in a JSON path unquoted-safe (custom field keys are validated to
/// this shape, so any other key matches nothing).
fn safe_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn custom_condition(cf: &CustomFilter, params: &mut Vec<Value>) -> String {
    if !safe_key(&cf.key) {
        return "0".into();
    }
    let ty = format!("json_extract(c.custom, '$.{}.type')", cf.key);
    let val = format!("json_extract(c.custom, '$.{}.value')", cf.key);
    let each = format!("json_each(c.custom, '$.{}.value')", cf.key);
    let mut bind = |v: Value| {
        params.push(v);
        format!("?{}", params.len())
    };
    let scalar = |ty_name: &str, p: String| format!("({ty} = '{ty_name}' AND {val} = {p})");
    match &cf.value {
        CustomValue::Text(s) => scalar("text", bind(Value::Text(s.clone()))),
        CustomValue::Number(n) => scalar("number", bind(Value::Integer(*n))),
        CustomValue::Decimal(d) => scalar("decimal", bind(Value::Text(d.normalize().to_string()))),
        CustomValue::Date(d) => scalar("date", bind(Value::Text(d.format("%Y-%m-%d").to_string()))),
        CustomValue::Bool(b) => scalar("bool", bind(Value::Integer(i64::from(*b)))),
        CustomValue::Select(s) => {
            let p = bind(Value::Text(s.clone()));
            format!(
                "(({ty} = 'select' AND {val} = {p}) OR \
                 ({ty} = 'multi_select' AND EXISTS (SELECT 1 FROM {each} WHERE value = {p})))"
            )
        }
        CustomValue::MultiSelect(set) => {
            let mut parts = vec![format!("{ty} = 'multi_select'")];
            for v in set {
                let p = bind(Value::Text(v.clone()));
                parts.push(format!("EXISTS (SELECT 1 FROM {each} WHERE value = {p})"));
            }
            format!("({})", parts.join(" AND "))
        }
    }
}

pub(crate) fn change_log_where(q: &ChangeLogQuery) -> (String, Vec<Value>) {
    let mut conds = vec!["1".to_owned()];
    let mut params = Vec::new();
    let mut add = |cond: &str, v: Value| {
        params.push(v);
        conds.push(cond.replace('?', &format!("?{}", params.len())));
    };
    if let Some(id) = &q.entity_id {
        add("entity_id = ?", Value::Text(id.clone()));
    }
    if let Some(c) = q.customer_id {
        add("customer_id = ?", Value::Text(c.to_string()));
    }
    if let Some(a) = &q.actor {
        add("actor = ?", Value::Text(a.to_string()));
    }
    if let Some(from) = q.from {
        add("at >= ?", Value::Text(ts(from)));
    }
    if let Some(to) = q.to {
        add("at < ?", Value::Text(ts(to)));
    }
    if let Some(s) = q.after_seq {
        add("seq > ?", Value::Integer(i64::try_from(s).unwrap_or(i64::MAX)));
    }
    (conds.join(" AND "), params)
}
