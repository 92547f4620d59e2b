//! The shared SQL of `guanxi-sql` in SQLite's dialect, with its parameters as rusqlite values.

use rusqlite::types::Value;

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
pub(crate) struct Bind<'a>(pub(crate) &'a mut Vec<Value>);

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

pub(crate) fn change_log_where(q: &guanxi_core::ChangeLogQuery) -> (String, Vec<SqlValue>) {
    guanxi_sql::change_log_where(Dialect::Sqlite, q)
}
