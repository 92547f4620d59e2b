//! The shared SQL of `guanxi-sql` in SQLite's dialect, with its parameters as rusqlite values.

use rusqlite::types::Value;

use guanxi_core::RecordScope;
use guanxi_sql::{Dialect, Params, SqlValue};

pub(crate) use guanxi_sql::Query;

/// A rusqlite value of a shared parameter.
pub(crate) fn value(v: &SqlValue) -> Value {
    match v {
        SqlValue::Text(s) => Value::Text(s.clone()),
        SqlValue::Integer(n) => Value::Integer(*n),
    }
}

/// A query's parameters, for `params_from_iter`.
pub(crate) fn values(params: &[SqlValue]) -> impl Iterator<Item = Value> + '_ {
    params.iter().map(value)
}

/// rusqlite values collected by the shared builders.
struct Bind<'a>(&'a mut Vec<Value>);

impl Params for Bind<'_> {
    fn push(&mut self, v: SqlValue) {
        self.0.push(value(&v));
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

pub(crate) fn customer_query(f: &guanxi_core::CustomerFilter, after: Option<uuid::Uuid>, ordered: bool) -> Query {
    guanxi_sql::customer_query(Dialect::Sqlite, f, after, ordered)
}

pub(crate) fn scope_condition(alias: &str, scope: &RecordScope, params: &mut Vec<Value>, ordered: bool) -> String {
    guanxi_sql::scope_condition(Dialect::Sqlite, alias, scope, &mut Bind(params), ordered)
}

pub(crate) fn scope_condition_with_creator(alias: &str, scope: &RecordScope, params: &mut Vec<Value>) -> String {
    guanxi_sql::scope_condition_with_creator(Dialect::Sqlite, alias, scope, &mut Bind(params))
}

pub(crate) fn change_log_where(q: &guanxi_core::ChangeLogQuery) -> (String, Vec<SqlValue>) {
    guanxi_sql::change_log_where(Dialect::Sqlite, q)
}
