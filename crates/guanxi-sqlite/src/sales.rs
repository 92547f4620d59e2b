//! Sales storage: settings documents, opportunities with their lines and stage history, leads
//! and tasks; and the grouped queries sales reports are computed from.
//!
//! Records are stored whole as JSON (`doc`) beside the columns that filters and reports read,
//! written from the same record in the same statement.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::Serialize;
use serde::de::DeserializeOwned;

use guanxi_core::sales::{
    Lead, LeadFilter, Opportunity, OpportunityFilter, Pipeline, SalesFacts, SalesQuery, StageHistoryEntry, Task,
    TaskFilter, whole_seconds,
};
use guanxi_core::store::Setting;
use guanxi_core::{Changes, EntityKind, Error, Page, PageRequest, Result, StorageError, Write};

use crate::codec::ts;
use crate::query::Bind;
use crate::{Constraint, constraint, on_insert, sql_err};
use guanxi_sql::Cipher;
use guanxi_sql::Dialect;
use guanxi_sql::report::{FactRow, FactsScan, ReportColumns, e4, stay_record, summary};

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
            let r = ReportColumns::of(o)?;
            let values = vec![
                text(id.clone()),
                text(o.code.clone()),
                text(o.pipeline.clone()),
                text(o.currency.clone()),
                text(o.stage.clone()),
                text(r.furthest_stage),
                Value::Integer(r.opened_ns),
                Value::Integer(r.opened_s),
                r.closed_ns.map_or(Value::Null, Value::Integer),
                r.closed_s.map_or(Value::Null, Value::Integer),
                r.won.map_or(Value::Null, |w| Value::Integer(i64::from(w))),
                Value::Integer(r.amount_e4),
                text(r.probability),
                opt_text(r.expected_close),
                opt_text(o.owner.as_ref().map(|u| u.to_string())),
                opt_text(o.department.as_ref().map(|d| d.to_string())),
                opt_text(o.province.clone()),
                opt_text(o.customer_id.map(|c| c.to_string())),
                Value::Integer(o.version as i64),
                text(r.line_totals),
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
        if let Some(stay) = stay_record(h) {
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
        .query_row([key], setting_from_row)
        .optional()
        .map_err(sql_err)
}

/// A setting from a `key, value, version` row.
pub(crate) fn setting_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Setting> {
    Ok(Setting { key: r.get(0)?, value: r.get(1)?, version: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0) })
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
    let conds = guanxi_sql::report::facts_where(Dialect::Sqlite, q, currency, &mut Bind(&mut params))?;
    let sql = format!("SELECT {} FROM opportunities o WHERE {}", guanxi_sql::report::FACT_COLUMNS, where_sql(&conds));
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
    let mut rows = stmt.query(params_from_iter(&params)).map_err(sql_err)?;
    let mut scan = FactsScan::new(p, q)?;
    // Text is read as bytes (no UTF-8 check per row); group keys are checked once, at the end.
    while let Some(r) = rows.next().map_err(sql_err)? {
        let bytes = |i: usize| -> Result<Option<&[u8]>> {
            r.get_ref(i).map_err(sql_err)?.as_bytes_or_null().map_err(|_| summary::corrupt(&format!("column {i}")))
        };
        let need = |i: usize| bytes(i)?.ok_or_else(|| summary::corrupt(&format!("column {i}")));
        scan.add(&FactRow {
            stage: need(0)?,
            furthest: need(1)?,
            opened_ns: r.get(2).map_err(sql_err)?,
            closed_ns: r.get(3).map_err(sql_err)?,
            won: r.get(4).map_err(sql_err)?,
            opened_s: r.get(5).map_err(sql_err)?,
            closed_s: r.get(6).map_err(sql_err)?,
            amount_e4: r.get(7).map_err(sql_err)?,
            probability: need(8)?,
            expected_close: bytes(9)?,
            owner: bytes(10)?,
            stays: need(11)?,
            line_totals: need(12)?,
        })?;
    }
    scan.finish()
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

pub(crate) fn list_tasks(conn: &Connection, f: &TaskFilter, page: &PageRequest) -> Result<Page<Task>> {
    page.check()?;
    let mut params = Vec::new();
    let mut conds = guanxi_sql::task_where(Dialect::Sqlite, f, &mut Bind(&mut params));
    if let Some(after) = page.after {
        params.push(text(after.last_id().to_string()));
        conds.push(format!("o.id > ?{}", params.len()));
    }
    let sql = format!(
        "SELECT o.doc FROM tasks o WHERE {} ORDER BY o.id LIMIT {}",
        where_sql(&conds),
        page.limit.saturating_add(1)
    );
    Ok(Page::from_overfetch(docs(conn, &sql, &params)?, page.limit, |t: &Task| t.id.0))
}

pub(crate) fn count_tasks(conn: &Connection, f: &TaskFilter) -> Result<u64> {
    let mut params = Vec::new();
    let conds = guanxi_sql::task_where(Dialect::Sqlite, f, &mut Bind(&mut params));
    count(conn, &format!("SELECT count(*) FROM tasks o WHERE {}", where_sql(&conds)), &params)
}

pub(crate) fn tasks(conn: &Connection, f: &TaskFilter) -> Result<Vec<Task>> {
    let mut params = Vec::new();
    let conds = guanxi_sql::task_where(Dialect::Sqlite, f, &mut Bind(&mut params));
    docs(conn, &format!("SELECT o.doc FROM tasks o WHERE {} ORDER BY o.due_at, o.id", where_sql(&conds)), &params)
}
