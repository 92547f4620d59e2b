//! Sales storage: settings documents, opportunities with their lines and stage history, leads
//! and tasks; and the grouped queries sales reports are computed from.
//!
//! Records are stored whole as JSON (`doc`) beside the columns that filters and reports read,
//! written from the same record in the same statement.

use rustc_hash::FxHashMap;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Serialize;
use serde::de::DeserializeOwned;

use guanxi_core::sales::{
    ClosedGroup, ForecastGroup, KeyedAmount, Lead, LeadFilter, LossGroup, MONEY_SCALE, OpenedGroup, Opportunity,
    OpportunityFilter, Pipeline, SalesFacts, SalesQuery, StageHistoryEntry, StageKind, StayGroup, Task, TaskFilter,
    whole_seconds,
};
use guanxi_core::store::Setting;
use guanxi_core::{Changes, EntityKind, Error, Page, PageRequest, Result, StorageError, Write};

use crate::codec::ts;
use crate::query::Bind;
use crate::{Constraint, constraint, on_insert, sql_err};
use guanxi_sql::Cipher;
use guanxi_sql::Dialect;

/// Money as an integer count of 1/10000 units (amounts are validated to fit).
fn e4(v: Decimal) -> Result<i64> {
    (v * Decimal::from(10_000))
        .trunc()
        .to_i64()
        .ok_or_else(|| StorageError::msg(format!("amount {v} does not fit the money column")).into())
}

pub(crate) fn to_doc<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StorageError::with_source("record does not encode", e).into())
}

pub(crate) fn from_doc<T: DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

/// What a foreign-key failure of a table's write means: the record it names does not exist.
pub(crate) type Referenced = Option<(EntityKind, String)>;

/// Runs a versioned write: `insert` for an insert, `update` (whose last parameter is the
/// expected version) for an update; a missed update becomes Conflict or NotFound.
#[allow(clippy::too_many_arguments)] // one call per table, each naming its SQL
pub(crate) fn versioned<T>(
    tx: &Connection,
    w: &Write<T>,
    table: &str,
    entity: EntityKind,
    id: &str,
    (insert, update): (&str, &str),
    mut values: Vec<Value>,
    referenced: Referenced,
) -> Result<()> {
    let fk = |e: rusqlite::Error| match (constraint(&e), &referenced) {
        (Some(Constraint::ForeignKey), Some((kind, key))) => Error::not_found(*kind, key),
        _ => sql_err(e),
    };
    match w {
        Write::Insert(_) => {
            tx.prepare_cached(insert).map_err(sql_err)?.execute(params_from_iter(&values)).map_err(
                |e| match constraint(&e) {
                    Some(Constraint::ForeignKey) => fk(e),
                    _ => {
                        let field = if e_mentions_code(&e) { "code" } else { "id" };
                        on_insert(e, entity, field, id)
                    }
                },
            )?;
        }
        Write::Update { expected_version, .. } => {
            values.push(Value::Integer(*expected_version as i64));
            let n = tx.prepare_cached(update).map_err(sql_err)?.execute(params_from_iter(&values)).map_err(fk)?;
            if n == 0 {
                let key = if table == "settings" { "key" } else { "id" };
                let actual: Option<i64> = tx
                    .query_row(&format!("SELECT version FROM {table} WHERE {key} = ?1"), [id], |r| r.get(0))
                    .optional()
                    .map_err(sql_err)?;
                return Err(match actual {
                    Some(a) => Error::Conflict {
                        entity,
                        id: id.to_owned(),
                        expected: *expected_version,
                        actual: u64::try_from(a).unwrap_or(0),
                    },
                    None => Error::not_found(entity, id),
                });
            }
        }
    }
    Ok(())
}

fn e_mentions_code(e: &rusqlite::Error) -> bool {
    e.to_string().contains(".code")
}

pub(crate) fn text(v: impl Into<String>) -> Value {
    Value::Text(v.into())
}

pub(crate) fn opt_text(v: Option<impl Into<String>>) -> Value {
    v.map_or(Value::Null, |s| Value::Text(s.into()))
}

/// Where a lead's encrypted phone is bound.
fn lead_phone_context(id: &str) -> String {
    format!("leads.phone:{id}")
}

const OPP_UPSERT_COLUMNS: &str = "id, code, pipeline, currency, stage, furthest_stage, opened_ns, opened_s, \
    closed_ns, closed_s, won, amount_e4, probability, expected_close, owner, department, province, customer_id, \
    version, line_totals";

/// The `line_totals` summary of product lines (see [`summary`]).
fn line_totals(lines: &[guanxi_core::sales::ProductLine]) -> Result<String> {
    let mut out = String::new();
    for l in lines {
        summary::push_record(&mut out, &[&l.product, &e4(l.total())?.to_string()]);
    }
    Ok(out)
}

/// An instant as integer nanoseconds since the epoch (exact order, like the instants).
pub(crate) use guanxi_sql::ns;

/// Applies the sales part of a batch: settings, opportunities, stage history, leads, tasks.
pub(crate) fn apply(tx: &Connection, changes: &Changes, cipher: Option<&Cipher>) -> Result<()> {
    for w in &changes.settings {
        let s = w.record();
        versioned(
            tx,
            w,
            "settings",
            EntityKind::Pipeline,
            &s.key,
            (
                "INSERT INTO settings (key, value, version) VALUES (?1, ?2, ?3)",
                "UPDATE settings SET value = ?2, version = ?3 WHERE key = ?1 AND version = ?4",
            ),
            vec![text(s.key.clone()), text(s.value.clone()), Value::Integer(s.version as i64)],
            None,
        )?;
    }
    // Row numbers of the batch's opportunities: history entries after them need no lookup.
    let mut rows: std::collections::HashMap<guanxi_core::OpportunityId, i64> = std::collections::HashMap::new();
    if !changes.opportunities.is_empty() {
        let cols: Vec<&str> = OPP_UPSERT_COLUMNS.split(", ").collect();
        let insert = format!(
            "INSERT INTO opportunities ({OPP_UPSERT_COLUMNS}) VALUES ({})",
            (1..=cols.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
        );
        let sets: Vec<String> = cols.iter().enumerate().skip(1).map(|(i, c)| format!("{c} = ?{}", i + 1)).collect();
        let update =
            format!("UPDATE opportunities SET {} WHERE id = ?1 AND version = ?{}", sets.join(", "), cols.len() + 1);
        for w in &changes.opportunities {
            let o = w.record();
            let id = o.id.to_string();
            let closed = o.closed_at();
            let values = vec![
                text(id.clone()),
                text(o.code.clone()),
                text(o.pipeline.clone()),
                text(o.currency.clone()),
                text(o.stage.clone()),
                text(o.furthest_stage.clone()),
                Value::Integer(ns(o.opened_at)?),
                Value::Integer(o.opened_at.timestamp()),
                closed.map(ns).transpose()?.map_or(Value::Null, Value::Integer),
                closed.map_or(Value::Null, |c| Value::Integer(c.timestamp())),
                if o.won_at.is_some() {
                    Value::Integer(1)
                } else if o.lost_at.is_some() {
                    Value::Integer(0)
                } else {
                    Value::Null
                },
                Value::Integer(e4(o.amount)?),
                text(o.probability.normalize().to_string()),
                opt_text(o.expected_close.map(|d| d.to_string())),
                opt_text(o.owner.as_ref().map(|u| u.to_string())),
                opt_text(o.department.as_ref().map(|d| d.to_string())),
                opt_text(o.province.clone()),
                opt_text(o.customer_id.map(|c| c.to_string())),
                Value::Integer(o.version as i64),
                text(line_totals(&o.lines)?),
            ];
            let customer = o.customer_id.map(|c| (EntityKind::Customer, c.to_string()));
            versioned(tx, w, "opportunities", EntityKind::Opportunity, &id, (&insert, &update), values, customer)?;
            let n = match w {
                Write::Insert(_) => tx.last_insert_rowid(),
                Write::Update { .. } => {
                    opportunity_n(tx, &id)?.ok_or_else(|| Error::not_found(EntityKind::Opportunity, &id))?
                }
            };
            rows.insert(o.id, n);
            tx.prepare_cached(
                "INSERT INTO opportunity_docs (n, doc) VALUES (?1, ?2) ON CONFLICT (n) DO UPDATE SET doc = excluded.doc",
            )
            .map_err(sql_err)?
            .execute(params![n, to_doc(o)?])
            .map_err(sql_err)?;
            tx.prepare_cached("DELETE FROM opportunity_lines WHERE opp = ?1")
                .map_err(sql_err)?
                .execute([n])
                .map_err(sql_err)?;
            let mut line = tx
                .prepare_cached("INSERT INTO opportunity_lines (opp, line, product, total_e4) VALUES (?1, ?2, ?3, ?4)")
                .map_err(sql_err)?;
            for (i, l) in o.lines.iter().enumerate() {
                line.execute(params![n, i as i64, l.product, e4(l.total())?]).map_err(sql_err)?;
            }
        }
    }
    for h in &changes.stage_history {
        let n = match rows.get(&h.opportunity_id) {
            Some(n) => *n,
            None => {
                let id = h.opportunity_id.to_string();
                opportunity_n(tx, &id)?.ok_or_else(|| Error::not_found(EntityKind::Opportunity, &id))?
            }
        };
        tx.prepare_cached(
            "INSERT INTO stage_history (opp, seq, from_stage, to_stage, stay_s, lost_reason) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(sql_err)?
        .execute(params![
            n,
            h.seq,
            h.change.from,
            h.change.to,
            h.from_entered_at.map(|e| whole_seconds(e, h.at)),
            h.lost_reason
        ])
        .map_err(|e| on_insert(e, EntityKind::Opportunity, "stage_history.seq", &h.seq.to_string()))?;
        tx.prepare_cached("INSERT INTO stage_history_docs (opp, seq, doc) VALUES (?1, ?2, ?3)")
            .map_err(sql_err)?
            .execute(params![n, h.seq, to_doc(h)?])
            .map_err(sql_err)?;
        if let (Some(from), Some(entered)) = (&h.change.from, h.from_entered_at) {
            let mut stay = String::new();
            let seconds = whole_seconds(entered, h.at).to_string();
            summary::push_record(&mut stay, &[from, &h.change.to, &seconds, h.lost_reason.as_deref().unwrap_or("")]);
            tx.prepare_cached("UPDATE opportunities SET stays = stays || ?2 WHERE n = ?1")
                .map_err(sql_err)?
                .execute(params![n, stay])
                .map_err(sql_err)?;
        }
    }
    for w in &changes.leads {
        let l = w.record();
        let id = l.id.to_string();
        let phone = match (&l.phone, cipher) {
            (Some(p), Some(c)) => Some(c.encrypt(&lead_phone_context(&id), p.as_str())?),
            (Some(p), None) => Some(p.as_str().to_owned()),
            (None, _) => None,
        };
        // The phone lives only in its own (possibly encrypted) column.
        let doc = to_doc(&Lead { phone: None, ..l.clone() })?;
        versioned(
            tx,
            w,
            "leads",
            EntityKind::Lead,
            &id,
            (
                "INSERT INTO leads (id, code, status, grade, owner, department, province, phone, version, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                "UPDATE leads SET code = ?2, status = ?3, grade = ?4, owner = ?5, department = ?6, province = ?7, \
                 phone = ?8, version = ?9, doc = ?10 WHERE id = ?1 AND version = ?11",
            ),
            vec![
                text(id.clone()),
                text(l.code.clone()),
                text(l.status.as_str()),
                text(l.grade.as_str()),
                opt_text(l.owner.as_ref().map(|u| u.to_string())),
                opt_text(l.department.as_ref().map(|d| d.to_string())),
                opt_text(l.province.clone()),
                opt_text(phone),
                Value::Integer(l.version as i64),
                text(doc),
            ],
            None,
        )?;
    }
    for w in &changes.tasks {
        let t = w.record();
        let id = t.id.to_string();
        versioned(
            tx,
            w,
            "tasks",
            EntityKind::Task,
            &id,
            (
                "INSERT INTO tasks (id, owner, department, opportunity_id, due_at, done, version, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                "UPDATE tasks SET owner = ?2, department = ?3, opportunity_id = ?4, due_at = ?5, done = ?6, \
                 version = ?7, doc = ?8 WHERE id = ?1 AND version = ?9",
            ),
            vec![
                text(id.clone()),
                text(t.owner.to_string()),
                opt_text(t.department.as_ref().map(|d| d.to_string())),
                opt_text(t.opportunity_id.map(|o| o.to_string())),
                text(ts(t.due_at)),
                Value::Integer(i64::from(t.done_at.is_some())),
                Value::Integer(t.version as i64),
                text(to_doc(t)?),
            ],
            t.opportunity_id.map(|o| (EntityKind::Opportunity, o.to_string())),
        )?;
    }
    Ok(())
}

/// The row number of an opportunity.
fn opportunity_n(tx: &Connection, id: &str) -> Result<Option<i64>> {
    tx.prepare_cached("SELECT n FROM opportunities WHERE id = ?1")
        .map_err(sql_err)?
        .query_row([id], |r| r.get(0))
        .optional()
        .map_err(sql_err)
}

/// Re-encrypts lead phones from `old` to `new` (inside the caller's transaction).
pub(crate) fn reencrypt_leads(tx: &Connection, old: Option<&Cipher>, new: &Cipher) -> Result<u64> {
    let rows: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT id, phone FROM leads WHERE phone IS NOT NULL").map_err(sql_err)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)?
    };
    let mut update = tx.prepare("UPDATE leads SET phone = ?2 WHERE id = ?1").map_err(sql_err)?;
    for (id, stored) in &rows {
        let plain = open_phone(id, stored, old)?;
        update.execute(params![id, new.encrypt(&lead_phone_context(id), &plain)?]).map_err(sql_err)?;
    }
    Ok(rows.len() as u64)
}

fn open_phone(id: &str, stored: &str, cipher: Option<&Cipher>) -> Result<String> {
    if !Cipher::is_encrypted(stored) {
        return Ok(stored.to_owned());
    }
    let c = cipher.ok_or(Error::Encryption(guanxi_core::EncryptionError::KeyRequired))?;
    c.decrypt(&lead_phone_context(id), stored)
}

/// A setting by key.
pub(crate) fn setting(conn: &Connection, key: &str) -> Result<Option<Setting>> {
    conn.prepare_cached("SELECT key, value, version FROM settings WHERE key = ?1")
        .map_err(sql_err)?
        .query_row([key], |r| {
            Ok(Setting { key: r.get(0)?, value: r.get(1)?, version: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0) })
        })
        .optional()
        .map_err(sql_err)
}

fn opportunity_where(f: &OpportunityFilter, params: &mut Vec<Value>) -> Vec<String> {
    guanxi_sql::opportunity_where(Dialect::Sqlite, f, &mut Bind(params))
}

pub(crate) use guanxi_sql::where_sql;

pub(crate) fn docs<T: DeserializeOwned>(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_err)?;
    let rows = stmt.query_map(params_from_iter(params), |r| from_doc::<T>(r.get_ref(0)?.as_str()?)).map_err(sql_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
}

pub(crate) fn count(conn: &Connection, sql: &str, params: &[Value]) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(sql)
        .map_err(sql_err)?
        .query_row(params_from_iter(params), |r| r.get(0))
        .map_err(sql_err)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// An opportunity by a unique column.
pub(crate) fn opportunity_by(conn: &Connection, column: &str, value: &str) -> Result<Option<Opportunity>> {
    let sql = format!("SELECT d.doc FROM opportunities o JOIN opportunity_docs d ON d.n = o.n WHERE o.{column} = ?1");
    Ok(docs(conn, &sql, &[text(value)])?.pop())
}

pub(crate) fn list_opportunities(
    conn: &Connection,
    f: &OpportunityFilter,
    page: &PageRequest,
) -> Result<Page<Opportunity>> {
    page.check()?;
    let mut params = Vec::new();
    let mut conds = opportunity_where(f, &mut params);
    if let Some(after) = page.after {
        params.push(text(after.last_id().to_string()));
        conds.push(format!("o.id > ?{}", params.len()));
    }
    let sql = format!(
        "SELECT d.doc FROM opportunities o JOIN opportunity_docs d ON d.n = o.n WHERE {} ORDER BY o.id LIMIT {}",
        where_sql(&conds),
        page.limit.saturating_add(1)
    );
    Ok(Page::from_overfetch(docs(conn, &sql, &params)?, page.limit, |o: &Opportunity| o.id.0))
}

pub(crate) fn count_opportunities(conn: &Connection, f: &OpportunityFilter) -> Result<u64> {
    let mut params = Vec::new();
    let conds = opportunity_where(f, &mut params);
    count(conn, &format!("SELECT count(*) FROM opportunities o WHERE {}", where_sql(&conds)), &params)
}

pub(crate) fn opportunity_currencies(conn: &Connection, f: &OpportunityFilter) -> Result<Vec<String>> {
    let mut params = Vec::new();
    let conds = opportunity_where(f, &mut params);
    let sql = format!("SELECT DISTINCT o.currency FROM opportunities o WHERE {} ORDER BY 1", where_sql(&conds));
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
    let rows = stmt.query_map(params_from_iter(&params), |r| r.get(0)).map_err(sql_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
}

pub(crate) fn stage_history(conn: &Connection, id: &str) -> Result<Vec<StageHistoryEntry>> {
    docs(
        conn,
        "SELECT h.doc FROM opportunities o JOIN stage_history_docs h ON h.opp = o.n WHERE o.id = ?1 ORDER BY h.seq",
        &[text(id)],
    )
}

/// The facts of a report in one scan of the narrow opportunity rows under the base conditions
/// (pipeline, currency, owner, department, scope), reduced here in hash maps: no sort, no join
/// (each row carries its stays and line totals, see [`summary`]). Which ranges a row counts in
/// follows `SalesFacts::from_records`: opened in range (funnel, stays, losses), closed in range
/// (outcomes, won by owner and product), open and expected to close in range (forecast).
pub(crate) fn sales_facts(conn: &Connection, p: &Pipeline, q: &SalesQuery, currency: &str) -> Result<SalesFacts> {
    let mut params = Vec::new();
    let mut conds = opportunity_where(&q.filter(), &mut params);
    params.push(text(currency));
    conds.push(format!("o.currency = ?{}", params.len()));
    let (from, to) = (q.from.map(ns).transpose()?, q.to.map(ns).transpose()?);
    let (from_day, to_day) = (q.from.map(|f| f.date_naive().to_string()), q.to.map(|t| t.date_naive().to_string()));
    let in_range = |t: i64| from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e);
    // ISO days compare as bytes.
    let day_in_range = |d: &[u8]| {
        from_day.as_deref().is_none_or(|f| d >= f.as_bytes()) && to_day.as_deref().is_none_or(|e| d < e.as_bytes())
    };
    if from.is_some() || to.is_some() {
        // Rows counting in no range are skipped by SQLite: closed before or after it and opened
        // outside it. (Open rows stay: their expected close day is checked below.)
        let range = |col: &str, params: &mut Vec<Value>| {
            let mut c = vec![];
            if let Some(f) = from {
                params.push(Value::Integer(f));
                c.push(format!("o.{col} >= ?{}", params.len()));
            }
            if let Some(t) = to {
                params.push(Value::Integer(t));
                c.push(format!("o.{col} < ?{}", params.len()));
            }
            c.join(" AND ")
        };
        let opened = range("opened_ns", &mut params);
        let closed = range("closed_ns", &mut params);
        conds.push(format!("(o.closed_ns IS NULL OR ({opened}) OR ({closed}))"));
    }
    let lost: Vec<&[u8]> = p.stages.iter().filter(|s| s.kind == StageKind::Lost).map(|s| s.key.as_bytes()).collect();
    let sql = format!(
        "SELECT o.stage, o.furthest_stage, o.opened_ns, o.closed_ns, o.won, o.opened_s, o.closed_s, o.amount_e4, \
         o.probability, o.expected_close, o.owner, o.stays, o.line_totals FROM opportunities o WHERE {}",
        where_sql(&conds)
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
    let mut rows = stmt.query(params_from_iter(&params)).map_err(sql_err)?;
    let mut acc = FactsAccumulator::default();
    // Text is read as bytes (no UTF-8 check per row); group keys are checked once, at the end.
    while let Some(r) = rows.next().map_err(sql_err)? {
        let amount: i64 = r.get(7).map_err(sql_err)?;
        if in_range(r.get(2).map_err(sql_err)?) {
            acc.opened(bytes_at(r, 0)?, bytes_at(r, 1)?, amount);
            for stay in summary::records(bytes_at(r, 11)?) {
                let [from, to, seconds, reason] = stay.fields()?;
                let lost_to = lost.contains(&&*summary::unescape(to));
                let reason = lost_to.then(|| summary::unescape(reason));
                acc.stay(&summary::unescape(from), summary::int(seconds)?, reason.as_deref());
            }
        }
        match r.get::<_, Option<i64>>(3).map_err(sql_err)? {
            Some(closed) if in_range(closed) => {
                let won = r.get::<_, Option<bool>>(4).map_err(sql_err)?.unwrap_or(false);
                let (opened_s, closed_s): (i64, i64) = (r.get(5).map_err(sql_err)?, r.get(6).map_err(sql_err)?);
                acc.closed(won, (closed_s - opened_s).div_euclid(86_400), amount);
                if won {
                    acc.won_by_owner.at(opt_bytes_at(r, 10)?.unwrap_or_default()).add(1, amount);
                    for line in summary::records(bytes_at(r, 12)?) {
                        let [product, total] = line.fields()?;
                        acc.won_by_product.at(&summary::unescape(product)).add(1, summary::int(total)?);
                    }
                }
            }
            Some(_) => {}
            None => {
                let expected = opt_bytes_at(r, 9)?;
                if expected.is_none_or(&day_in_range) {
                    acc.open(expected.map(|d| d.get(..7).unwrap_or(d)), bytes_at(r, 8)?, amount);
                }
            }
        }
    }
    acc.finish()
}

/// A text column's bytes, borrowed from the row.
fn bytes_at<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r [u8]> {
    opt_bytes_at(r, i)?.ok_or_else(|| summary::corrupt(&format!("column {i}")))
}

fn opt_bytes_at<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<&'r [u8]>> {
    r.get_ref(i).map_err(sql_err)?.as_bytes_or_null().map_err(|_| summary::corrupt(&format!("column {i}")))
}

/// Count and exact sum (in 1/10000 units) of a group.
#[derive(Default, Clone, Copy)]
struct Sum {
    count: u64,
    e4: i128,
}

impl Sum {
    fn add(&mut self, count: u64, e4: i64) {
        self.count += count;
        self.e4 += i128::from(e4);
    }

    fn amount(self) -> Result<Decimal> {
        Decimal::try_from_i128_with_scale(self.e4, MONEY_SCALE)
            .map(|d| d.normalize())
            .map_err(|_| StorageError::msg("a report sum overflows").into())
    }
}

/// Groups by text keys, looked up by borrowed bytes so existing groups cost no allocation.
struct Groups<V>(FxHashMap<Box<[u8]>, V>);

impl<V> Default for Groups<V> {
    fn default() -> Self {
        Groups(FxHashMap::default())
    }
}

impl<V: Default> Groups<V> {
    fn at(&mut self, key: &[u8]) -> &mut V {
        if !self.0.contains_key(key) {
            self.0.insert(key.into(), V::default());
        }
        self.0.get_mut(key).unwrap_or_else(|| unreachable!("inserted above"))
    }
}

impl<V> Groups<V> {
    /// The groups with their keys as text (checked once here, not per row).
    fn texts(self) -> Result<Vec<(String, V)>> {
        self.0
            .into_iter()
            .map(|(k, v)| Ok((String::from_utf8(k.into_vec()).map_err(|_| summary::corrupt("a text"))?, v)))
            .collect()
    }
}

/// Groups by two text keys.
type Groups2<V> = Groups<Groups<V>>;

impl<V> Groups2<V> {
    fn pairs(self) -> Result<Vec<(String, String, V)>> {
        let mut out = Vec::new();
        for (a, inner) in self.texts()? {
            out.extend(inner.texts()?.into_iter().map(|(b, v)| (a.clone(), b, v)));
        }
        Ok(out)
    }
}

/// The groups one report scan reduces into.
#[derive(Default)]
struct FactsAccumulator {
    opened: Groups2<Sum>,
    stays: Groups<(u64, i64)>,
    losses: Groups2<u64>,
    closed: FxHashMap<(bool, i64), Sum>,
    won_by_owner: Groups<Sum>,
    won_by_product: Groups<Sum>,
    /// By expected close month, then probability; `no_month` for none.
    by_month: Groups2<Sum>,
    no_month: Groups<Sum>,
}

impl FactsAccumulator {
    fn opened(&mut self, stage: &[u8], furthest: &[u8], amount: i64) {
        self.opened.at(stage).at(furthest).add(1, amount);
    }

    fn stay(&mut self, from: &[u8], seconds: i64, lost_reason: Option<&[u8]>) {
        let s = self.stays.at(from);
        s.0 += 1;
        s.1 += seconds;
        if let Some(reason) = lost_reason {
            *self.losses.at(from).at(reason) += 1;
        }
    }

    fn closed(&mut self, won: bool, days: i64, amount: i64) {
        self.closed.entry((won, days)).or_default().add(1, amount);
    }

    fn open(&mut self, month: Option<&[u8]>, probability: &[u8], amount: i64) {
        match month {
            Some(m) => self.by_month.at(m).at(probability),
            None => self.no_month.at(probability),
        }
        .add(1, amount);
    }

    fn finish(self) -> Result<SalesFacts> {
        let keyed = |g: Groups<Sum>| -> Result<Vec<KeyedAmount>> {
            g.texts()?
                .into_iter()
                .map(|(key, s)| Ok(KeyedAmount { key, count: s.count, amount: s.amount()? }))
                .collect()
        };
        let forecast = |month: Option<String>, probability: &str, s: Sum| -> Result<ForecastGroup> {
            Ok(ForecastGroup {
                month,
                probability: probability.parse().map_err(|_| summary::corrupt("probability"))?,
                count: s.count,
                amount: s.amount()?,
            })
        };
        let months = self.by_month.pairs()?.into_iter().map(|(m, p, s)| forecast(Some(m), &p, s));
        let no_month = self.no_month.texts()?.into_iter().map(|(p, s)| forecast(None, &p, s));
        let mut facts = SalesFacts {
            opened: (self.opened.pairs()?.into_iter())
                .map(|(stage, furthest, s)| Ok(OpenedGroup { stage, furthest, count: s.count, amount: s.amount()? }))
                .collect::<Result<_>>()?,
            stays: (self.stays.texts()?.into_iter())
                .map(|(stage, (count, seconds))| StayGroup { stage, count, seconds })
                .collect(),
            losses: (self.losses.pairs()?.into_iter())
                .map(|(stage, reason, count)| LossGroup { stage, reason, count })
                .collect(),
            closed: (self.closed.into_iter())
                .map(|((won, days), s)| Ok(ClosedGroup { won, days, count: s.count, amount: s.amount()? }))
                .collect::<Result<_>>()?,
            won_by_owner: keyed(self.won_by_owner)?,
            won_by_product: keyed(self.won_by_product)?,
            open_by_month: months.chain(no_month).collect::<Result<_>>()?,
        };
        facts.canonicalize();
        Ok(facts)
    }
}

/// What an opportunity's narrow row carries for the report (schema 4): `stays`, one record
/// per completed stay (from, to, whole seconds, lost reason), appended with each history
/// entry; `line_totals`, one record per line (product, total in 1/10000 units), rewritten
/// with the record. Records end in U+001E, fields are split by U+001F, and '%', U+001E and
/// U+001F inside a field are %-escaped, so any text round-trips.
pub(crate) mod summary {
    use std::borrow::Cow;

    use guanxi_core::{Error, Result, StorageError};

    const FIELD: char = '\u{1f}';
    const RECORD: char = '\u{1e}';

    /// Appends one record of `fields`.
    pub(crate) fn push_record(out: &mut String, fields: &[&str]) {
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(FIELD);
            }
            if f.contains(['%', FIELD, RECORD]) {
                out.push_str(&f.replace('%', "%25").replace(RECORD, "%1E").replace(FIELD, "%1F"));
            } else {
                out.push_str(f);
            }
        }
        out.push(RECORD);
    }

    /// A field as written.
    pub(crate) fn unescape(f: &[u8]) -> Cow<'_, [u8]> {
        if f.contains(&b'%') {
            let s = String::from_utf8_lossy(f);
            Cow::Owned(s.replace("%1E", "\u{1e}").replace("%1F", "\u{1f}").replace("%25", "%").into_bytes())
        } else {
            Cow::Borrowed(f)
        }
    }

    /// An integer field.
    pub(crate) fn int(f: &[u8]) -> Result<i64> {
        let (negative, digits) = match f.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, f),
        };
        // Up to 18 digits cannot overflow: the scan's hot path skips UTF-8 checks and `parse`.
        if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
            return std::str::from_utf8(f).ok().and_then(|s| s.parse().ok()).ok_or_else(|| corrupt("a report summary"));
        }
        let v = digits.iter().fold(0i64, |v, d| v * 10 + i64::from(d - b'0'));
        Ok(if negative { -v } else { v })
    }

    /// One record's fields.
    pub(crate) struct Record<'a>(&'a [u8]);

    impl<'a> Record<'a> {
        /// Exactly `N` fields (still escaped), or a storage error.
        pub(crate) fn fields<const N: usize>(&self) -> Result<[&'a [u8]; N]> {
            let mut out: [&[u8]; N] = [&[]; N];
            let mut parts = self.0.split(|b| *b == FIELD as u8);
            for slot in &mut out {
                *slot = parts.next().ok_or_else(|| corrupt("a report summary"))?;
            }
            if parts.next().is_some() {
                return Err(corrupt("a report summary"));
            }
            Ok(out)
        }
    }

    /// The records of a column.
    pub(crate) fn records(column: &[u8]) -> impl Iterator<Item = Record<'_>> {
        column.split_inclusive(|b| *b == RECORD as u8).map(|r| Record(r.strip_suffix(&[RECORD as u8]).unwrap_or(r)))
    }

    pub(crate) fn corrupt(what: &str) -> Error {
        StorageError::msg(format!("{what} of an opportunity row does not decode")).into()
    }

    #[cfg(test)]
    mod tests {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn integers_round_trip(v in any::<i64>()) {
                prop_assert_eq!(int(v.to_string().as_bytes()).unwrap(), v);
            }

            #[test]
            fn any_text_round_trips(fields in proptest::collection::vec(".*|[%\u{1e}\u{1f}a]{0,6}", 1..4), n in 1usize..4) {
                let mut column = String::new();
                for _ in 0..n {
                    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
                    push_record(&mut column, &refs);
                }
                let decoded: Vec<Vec<String>> = records(column.as_bytes())
                    .map(|r| r.0.split(|b| *b == FIELD as u8).map(|f| String::from_utf8(unescape(f).into_owned()).unwrap()).collect())
                    .collect();
                prop_assert_eq!(decoded, vec![fields.clone(); n]);
            }
        }
    }
}

fn lead_where(f: &LeadFilter, params: &mut Vec<Value>) -> Vec<String> {
    guanxi_sql::lead_where(Dialect::Sqlite, f, &mut Bind(params))
}

/// Decodes lead rows (`id, phone, doc`), opening the phone.
fn leads(conn: &Connection, sql: &str, params: &[Value], cipher: Option<&Cipher>) -> Result<Vec<Lead>> {
    let mut stmt = conn.prepare_cached(sql).map_err(sql_err)?;
    let rows = stmt
        .query_map(params_from_iter(params), |r| {
            let id: String = r.get(0)?;
            let phone: Option<String> = r.get(1)?;
            let lead: Lead = from_doc(r.get_ref(2)?.as_str()?)?;
            Ok((id, phone, lead))
        })
        .map_err(sql_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, phone, mut lead) = row.map_err(sql_err)?;
        if let Some(stored) = phone {
            let plain = open_phone(&id, &stored, cipher)?;
            lead.phone = Some(
                guanxi_core::Phone::parse(&plain)
                    .map_err(|e| StorageError::msg(format!("stored phone of lead {id} does not parse: {e}")))?,
            );
        }
        out.push(lead);
    }
    Ok(out)
}

pub(crate) fn lead(conn: &Connection, id: &str, cipher: Option<&Cipher>) -> Result<Option<Lead>> {
    Ok(leads(conn, "SELECT id, phone, doc FROM leads WHERE id = ?1", &[text(id)], cipher)?.pop())
}

pub(crate) fn list_leads(
    conn: &Connection,
    f: &LeadFilter,
    page: &PageRequest,
    cipher: Option<&Cipher>,
) -> Result<Page<Lead>> {
    page.check()?;
    let mut params = Vec::new();
    let mut conds = lead_where(f, &mut params);
    if let Some(after) = page.after {
        params.push(text(after.last_id().to_string()));
        conds.push(format!("o.id > ?{}", params.len()));
    }
    let sql = format!(
        "SELECT o.id, o.phone, o.doc FROM leads o WHERE {} ORDER BY o.id LIMIT {}",
        where_sql(&conds),
        page.limit.saturating_add(1)
    );
    Ok(Page::from_overfetch(leads(conn, &sql, &params, cipher)?, page.limit, |l| l.id.0))
}

pub(crate) fn count_leads(conn: &Connection, f: &LeadFilter) -> Result<u64> {
    let mut params = Vec::new();
    let conds = lead_where(f, &mut params);
    count(conn, &format!("SELECT count(*) FROM leads o WHERE {}", where_sql(&conds)), &params)
}

pub(crate) fn task(conn: &Connection, id: &str) -> Result<Option<Task>> {
    Ok(docs(conn, "SELECT doc FROM tasks WHERE id = ?1", &[text(id)])?.pop())
}

pub(crate) fn tasks(conn: &Connection, f: &TaskFilter) -> Result<Vec<Task>> {
    let mut params = Vec::new();
    let conds = guanxi_sql::task_where(Dialect::Sqlite, f, &mut Bind(&mut params));
    docs(conn, &format!("SELECT o.doc FROM tasks o WHERE {} ORDER BY o.due_at, o.id", where_sql(&conds)), &params)
}
