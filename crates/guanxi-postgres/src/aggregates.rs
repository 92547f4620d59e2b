//! The sales and service aggregates: opportunities and their stage history, leads, tasks,
//! tickets and their entries, knowledge-base articles. Each record is a JSON document beside
//! the narrow columns its filters read (compiled by `guanxi-sql`, as for SQLite).
//!
//! Reports, SLA clocks and searches are computed here from the records with the core's
//! reference reductions (`SalesFacts::from_records`, `SlaClock::from`, `rank_articles`), so
//! they equal the reference by construction; they are not yet pushed down into SQL (see the
//! PostgreSQL benchmarks for what that costs).

use std::collections::HashMap;

use postgres::types::ToSql;

use guanxi_core::sales::{
    Lead, LeadFilter, Opportunity, OpportunityFilter, Pipeline, SalesFacts, SalesQuery, StageHistoryEntry, Task,
    TaskFilter,
};
use guanxi_core::service::{Article, ArticleHit, KbQuery, SlaClock, Ticket, TicketEntry, TicketFilter, rank_articles};
use guanxi_core::{
    ArticleId, Changes, EntityKind, Error, LeadId, OpportunityId, Page, PageRequest, Result, SalesStore, ServiceStore,
    TaskId, TicketId, UserId, Write,
};
use guanxi_sql::{Dialect, SqlValue, ns, report, ts, where_sql};

use crate::{
    View, decode, encode, is_foreign_key_violation, is_unique_violation, params, pg_err, refs, sealed_context,
};

type Value = Box<dyn ToSql + Sync>;

pub(crate) fn text(v: impl ToString) -> Value {
    Box::new(v.to_string())
}

pub(crate) fn opt_text(v: Option<impl ToString>) -> Value {
    Box::new(v.map(|v| v.to_string()))
}

pub(crate) fn int(v: i64) -> Value {
    Box::new(v)
}

fn opt_int(v: Option<i64>) -> Value {
    Box::new(v)
}

impl View<'_> {
    /// Inserts or updates (at the expected version) one row of `table`, whose first column is
    /// `id`; errors as SQLite reports them. `referenced`: what a foreign-key failure means.
    #[allow(clippy::too_many_arguments)] // one versioned write, each part named
    pub(crate) fn versioned<T>(
        &self,
        w: &Write<T>,
        table: &str,
        entity: EntityKind,
        id: &str,
        columns: &[&str],
        mut values: Vec<Value>,
        referenced: Option<(EntityKind, String)>,
    ) -> Result<()> {
        let on_error = |e: postgres::Error| {
            if is_foreign_key_violation(&e) {
                match &referenced {
                    Some((kind, key)) => Error::not_found(*kind, key),
                    None => pg_err(e),
                }
            } else if is_unique_violation(&e) {
                let on_code = e.as_db_error().and_then(|d| d.constraint()).is_some_and(|c| c.contains("code"));
                Error::Duplicate { entity, field: if on_code { "code" } else { "id" }.into(), value: id.to_owned() }
            } else {
                pg_err(e)
            }
        };
        match w {
            Write::Insert(_) => {
                let marks: Vec<String> = (1..=columns.len()).map(|i| Dialect::Postgres.placeholder(i)).collect();
                let sql = format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), marks.join(", "));
                self.tx.borrow_mut().execute(&sql, &refs(&values)).map_err(on_error)?;
            }
            Write::Update { expected_version, .. } => {
                let sets: Vec<String> =
                    columns.iter().enumerate().skip(1).map(|(i, c)| format!("{c} = ${}", i + 1)).collect();
                let sql = format!(
                    "UPDATE {table} SET {} WHERE id = $1 AND version = ${}",
                    sets.join(", "),
                    columns.len() + 1
                );
                values.push(int(*expected_version as i64));
                if self.tx.borrow_mut().execute(&sql, &refs(&values)).map_err(on_error)? == 0 {
                    return Err(self.missed(table, entity, id, *expected_version));
                }
            }
        }
        Ok(())
    }

    fn exists(&self, table: &str, id: &str) -> Result<bool> {
        Ok(!self.query(&format!("SELECT 1 FROM {table} WHERE id = $1"), &[&id])?.is_empty())
    }

    /// An append-only entry `(parent, seq)`: a missing parent is not found, a taken seq a duplicate.
    fn append(
        &self,
        table: &str,
        parent: (EntityKind, &str),
        seq: u32,
        doc: String,
        dup: (EntityKind, &str),
    ) -> Result<()> {
        let parents = if table == "stage_history" { "opportunities" } else { "tickets" };
        if !self.exists(parents, parent.1)? {
            return Err(Error::not_found(parent.0, parent.1));
        }
        let seq = i64::from(seq);
        self.tx
            .borrow_mut()
            .execute(&format!("INSERT INTO {table} (parent, seq, doc) VALUES ($1, $2, $3)"), &[&parent.1, &seq, &doc])
            .map_err(|e| {
                if is_unique_violation(&e) {
                    Error::Duplicate { entity: dup.0, field: dup.1.into(), value: seq.to_string() }
                } else {
                    pg_err(e)
                }
            })?;
        Ok(())
    }

    /// The sales and service part of a batch.
    pub(crate) fn apply_aggregates(&self, changes: &Changes) -> Result<()> {
        for w in &changes.opportunities {
            let o = w.record();
            let id = o.id.to_string();
            let r = report::ReportColumns::of(o)?;
            let values = vec![
                text(&id),
                text(&o.code),
                text(&o.pipeline),
                text(&o.currency),
                text(&o.stage),
                opt_int(r.closed_ns),
                opt_text(o.owner.as_ref()),
                opt_text(o.department.as_ref()),
                opt_text(o.province.as_ref()),
                opt_text(o.customer_id),
                int(o.version as i64),
                text(encode(o)?),
                text(r.furthest_stage),
                int(r.opened_ns),
                int(r.opened_s),
                opt_int(r.closed_s),
                Box::new(r.won),
                int(r.amount_e4),
                text(r.probability),
                opt_text(r.expected_close),
                text(r.line_totals),
            ];
            let columns = [
                "id",
                "code",
                "pipeline",
                "currency",
                "stage",
                "closed_ns",
                "owner",
                "department",
                "province",
                "customer_id",
                "version",
                "doc",
                "furthest_stage",
                "opened_ns",
                "opened_s",
                "closed_s",
                "won",
                "amount_e4",
                "probability",
                "expected_close",
                "line_totals",
            ];
            let customer = o.customer_id.map(|c| (EntityKind::Customer, c.to_string()));
            self.versioned(w, "opportunities", EntityKind::Opportunity, &id, &columns, values, customer)?;
        }
        // The report reads each row's completed stays from the row itself: one append per
        // opportunity of the batch, its entries' stays in batch order.
        let mut stays: HashMap<String, String> = HashMap::new();
        for h in &changes.stage_history {
            let id = h.opportunity_id.to_string();
            let dup = (EntityKind::Opportunity, "stage_history.seq");
            self.append("stage_history", (EntityKind::Opportunity, &id), h.seq, encode(h)?, dup)?;
            if let Some(stay) = report::stay_record(h) {
                stays.entry(id).or_default().push_str(&stay);
            }
        }
        for (id, stay) in &stays {
            self.execute("UPDATE opportunities SET stays = stays || $2 WHERE id = $1", &[id, stay])?;
        }
        for w in &changes.leads {
            let l = w.record();
            let id = l.id.to_string();
            let values = vec![
                text(&id),
                text(&l.code),
                text(l.status.as_str()),
                text(l.grade.as_str()),
                opt_text(l.owner.as_ref()),
                opt_text(l.department.as_ref()),
                opt_text(l.province.as_ref()),
                int(l.version as i64),
                text(self.keys.seal(&sealed_context("leads", &id), &encode(l)?)?),
            ];
            let columns = ["id", "code", "status", "grade", "owner", "department", "province", "version", "doc"];
            self.versioned(w, "leads", EntityKind::Lead, &id, &columns, values, None)?;
        }
        for w in &changes.tasks {
            let t = w.record();
            let id = t.id.to_string();
            let values = vec![
                text(&id),
                text(&t.owner),
                opt_text(t.department.as_ref()),
                opt_text(t.opportunity_id),
                text(ts(t.due_at)),
                int(i64::from(t.done_at.is_some())),
                int(t.version as i64),
                text(encode(t)?),
            ];
            let columns = ["id", "owner", "department", "opportunity_id", "due_at", "done", "version", "doc"];
            let opportunity = t.opportunity_id.map(|o| (EntityKind::Opportunity, o.to_string()));
            self.versioned(w, "tasks", EntityKind::Task, &id, &columns, values, opportunity)?;
        }
        for w in &changes.tickets {
            let t = w.record();
            let id = t.id.to_string();
            let values = vec![
                text(&id),
                text(&t.code),
                text(t.status.as_str()),
                int(i64::from(t.status.is_open())),
                text(t.kind.as_str()),
                text(t.priority.as_str()),
                text(t.channel.as_str()),
                opt_text(t.assignee.as_ref()),
                opt_text(t.group.as_ref()),
                opt_text(t.department.as_ref()),
                opt_text(t.province.as_ref()),
                opt_text(t.customer_id),
                int(ns(t.created_at)?),
                text(&t.created_by),
                int(t.version as i64),
                text(encode(t)?),
            ];
            let columns = [
                "id",
                "code",
                "status",
                "open",
                "kind",
                "priority",
                "channel",
                "owner",
                "grp",
                "department",
                "province",
                "customer_id",
                "created_ns",
                "created_by",
                "version",
                "doc",
            ];
            let customer = t.customer_id.map(|c| (EntityKind::Customer, c.to_string()));
            self.versioned(w, "tickets", EntityKind::Ticket, &id, &columns, values, customer)?;
        }
        for e in &changes.ticket_entries {
            let id = e.ticket_id.to_string();
            self.append(
                "ticket_entries",
                (EntityKind::Ticket, &id),
                e.seq,
                encode(e)?,
                (EntityKind::Ticket, "entries.seq"),
            )?;
        }
        for w in &changes.articles {
            let a = w.record();
            let id = a.id.to_string();
            let values = vec![text(&id), int(a.version as i64), text(encode(a)?)];
            self.versioned(w, "articles", EntityKind::Article, &id, &["id", "version", "doc"], values, None)?;
        }
        self.apply_commerce(changes)
    }

    pub(crate) fn docs<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        values: &[SqlValue],
    ) -> Result<Vec<T>> {
        let p = params(values);
        let rows = self.query(sql, &refs(&p))?;
        rows.iter().map(|r| decode(what, r.get::<_, &str>(0))).collect()
    }

    pub(crate) fn count(&self, sql: &str, values: &[SqlValue]) -> Result<u64> {
        let p = params(values);
        let rows = self.query(sql, &refs(&p))?;
        Ok(rows.first().map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }

    /// One page of `table`'s documents under `conds` (over the table's alias: `t` for tickets,
    /// `p` for purchases, `o` for the rest, as `guanxi-sql` compiles them), in id order.
    pub(crate) fn page<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        mut conds: Vec<String>,
        mut values: Vec<SqlValue>,
        page: &PageRequest,
        id_of: impl Fn(&T) -> uuid::Uuid,
    ) -> Result<Page<T>> {
        page.check()?;
        let alias = match table {
            "tickets" => "t",
            "purchases" => "p",
            _ => "o",
        };
        if let Some(after) = page.after {
            values.push(SqlValue::Text(after.last_id().to_string()));
            conds.push(format!("{alias}.id > ${}", values.len()));
        }
        // The id beside the document: a sealed one (leads, when encrypted) is bound to it.
        let sql = format!(
            "SELECT {alias}.id, {alias}.doc FROM {table} {alias} WHERE {} ORDER BY {alias}.id LIMIT {}",
            where_sql(&conds),
            page.limit.saturating_add(1)
        );
        let p = params(&values);
        let rows = self.query(&sql, &refs(&p))?;
        let items = rows.iter().map(|r| self.unseal(table, r)).collect::<Result<Vec<T>>>()?;
        Ok(Page::from_overfetch(items, page.limit, id_of))
    }

    /// Fills the report columns of rows written before they existed (schema 3), once: the
    /// narrow values from each record, the stays from its history.
    pub(crate) fn backfill_report_columns(&self) -> Result<()> {
        loop {
            let rows =
                self.query("SELECT id, doc FROM opportunities WHERE amount_e4 IS NULL ORDER BY id LIMIT 500", &[])?;
            if rows.is_empty() {
                return Ok(());
            }
            for r in &rows {
                let o: Opportunity = self.unseal("opportunities", r)?;
                let id = o.id.to_string();
                let history: Vec<StageHistoryEntry> = self.entries("stage history entry", "stage_history", &id)?;
                let stays: String = history.iter().filter_map(report::stay_record).collect();
                let c = report::ReportColumns::of(&o)?;
                self.execute(
                    "UPDATE opportunities SET furthest_stage = $2, opened_ns = $3, opened_s = $4, closed_s = $5, won = $6, \
                     amount_e4 = $7, probability = $8, expected_close = $9, line_totals = $10, stays = $11 WHERE id = $1",
                    &[
                        &id,
                        &c.furthest_stage,
                        &c.opened_ns,
                        &c.opened_s,
                        &c.closed_s,
                        &c.won,
                        &c.amount_e4,
                        &c.probability,
                        &c.expected_close,
                        &c.line_totals,
                        &stays,
                    ],
                )?;
            }
        }
    }

    fn by_column<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        table: &str,
        column: &str,
        value: &str,
    ) -> Result<Option<T>> {
        Ok(self
            .docs(what, &format!("SELECT doc FROM {table} WHERE {column} = $1"), &[SqlValue::Text(value.to_owned())])?
            .pop())
    }

    fn entries<T: serde::de::DeserializeOwned>(&self, what: &str, table: &str, parent: &str) -> Result<Vec<T>> {
        self.docs(
            what,
            &format!("SELECT doc FROM {table} WHERE parent = $1 ORDER BY seq"),
            &[SqlValue::Text(parent.to_owned())],
        )
    }
}

impl SalesStore for View<'_> {
    fn opportunity(&self, id: OpportunityId) -> Result<Option<Opportunity>> {
        self.by_column("opportunity", "opportunities", "id", &id.to_string())
    }

    fn opportunity_by_code(&self, code: &str) -> Result<Option<Opportunity>> {
        self.by_column("opportunity", "opportunities", "code", code)
    }

    fn list_opportunities(&self, filter: &OpportunityFilter, page: &PageRequest) -> Result<Page<Opportunity>> {
        let mut values = Vec::new();
        let conds = guanxi_sql::opportunity_where(Dialect::Postgres, filter, &mut values);
        self.page("opportunities", conds, values, page, |o: &Opportunity| o.id.0)
    }

    fn count_opportunities(&self, filter: &OpportunityFilter) -> Result<u64> {
        let mut values = Vec::new();
        let conds = guanxi_sql::opportunity_where(Dialect::Postgres, filter, &mut values);
        self.count(&format!("SELECT count(*) FROM opportunities o WHERE {}", where_sql(&conds)), &values)
    }

    fn opportunity_currencies(&self, filter: &OpportunityFilter) -> Result<Vec<String>> {
        let mut values = Vec::new();
        let conds = guanxi_sql::opportunity_where(Dialect::Postgres, filter, &mut values);
        let p = params(&values);
        let sql = format!("SELECT DISTINCT o.currency FROM opportunities o WHERE {} ORDER BY 1", where_sql(&conds));
        Ok(self.query(&sql, &refs(&p))?.iter().map(|r| r.get(0)).collect())
    }

    fn stage_history(&self, id: OpportunityId) -> Result<Vec<StageHistoryEntry>> {
        self.entries("stage history entry", "stage_history", &id.to_string())
    }

    fn sales_facts(&self, pipeline: &Pipeline, query: &SalesQuery, currency: &str) -> Result<SalesFacts> {
        let mut values = Vec::new();
        let conds = report::facts_where(Dialect::Postgres, query, currency, &mut values)?;
        let sql = format!("SELECT {} FROM opportunities o WHERE {}", report::FACT_COLUMNS, where_sql(&conds));
        let p = params(&values);
        let rows = self.query(&sql, &refs(&p))?;
        let mut scan = report::FactsScan::new(pipeline, query)?;
        for r in &rows {
            let text = |i: usize| r.get::<_, Option<&str>>(i).map(str::as_bytes);
            let need = |i: usize| text(i).ok_or_else(|| report::summary::corrupt(&format!("column {i}")));
            scan.add(&report::FactRow {
                stage: need(0)?,
                furthest: need(1)?,
                opened_ns: r.try_get(2).map_err(pg_err)?,
                closed_ns: r.try_get(3).map_err(pg_err)?,
                won: r.try_get(4).map_err(pg_err)?,
                opened_s: r.try_get(5).map_err(pg_err)?,
                closed_s: r.try_get(6).map_err(pg_err)?,
                amount_e4: r.try_get(7).map_err(pg_err)?,
                probability: need(8)?,
                expected_close: text(9),
                owner: text(10),
                stays: need(11)?,
                line_totals: need(12)?,
            })?;
        }
        scan.finish()
    }

    fn lead(&self, id: LeadId) -> Result<Option<Lead>> {
        let rows = self.query("SELECT id, doc FROM leads WHERE id = $1", &[&id.to_string()])?;
        rows.first().map(|r| self.unseal("leads", r)).transpose()
    }

    fn list_leads(&self, filter: &LeadFilter, page: &PageRequest) -> Result<Page<Lead>> {
        let mut values = Vec::new();
        let conds = guanxi_sql::lead_where(Dialect::Postgres, filter, &mut values);
        self.page("leads", conds, values, page, |l: &Lead| l.id.0)
    }

    fn count_leads(&self, filter: &LeadFilter) -> Result<u64> {
        let mut values = Vec::new();
        let conds = guanxi_sql::lead_where(Dialect::Postgres, filter, &mut values);
        self.count(&format!("SELECT count(*) FROM leads o WHERE {}", where_sql(&conds)), &values)
    }

    fn task(&self, id: TaskId) -> Result<Option<Task>> {
        self.by_column("task", "tasks", "id", &id.to_string())
    }

    fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let mut values = Vec::new();
        let conds = guanxi_sql::task_where(Dialect::Postgres, filter, &mut values);
        self.docs(
            "task",
            &format!("SELECT o.doc FROM tasks o WHERE {} ORDER BY o.due_at, o.id", where_sql(&conds)),
            &values,
        )
    }

    fn list_tasks(&self, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>> {
        let mut values = Vec::new();
        let conds = guanxi_sql::task_where(Dialect::Postgres, filter, &mut values);
        self.page("tasks", conds, values, page, |t: &Task| t.id.0)
    }

    fn count_tasks(&self, filter: &TaskFilter) -> Result<u64> {
        let mut values = Vec::new();
        let conds = guanxi_sql::task_where(Dialect::Postgres, filter, &mut values);
        self.count(&format!("SELECT count(*) FROM tasks o WHERE {}", where_sql(&conds)), &values)
    }
}

impl ServiceStore for View<'_> {
    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        self.by_column("ticket", "tickets", "id", &id.to_string())
    }

    fn ticket_by_code(&self, code: &str) -> Result<Option<Ticket>> {
        self.by_column("ticket", "tickets", "code", code)
    }

    fn list_tickets(&self, filter: &TicketFilter, page: &PageRequest) -> Result<Page<Ticket>> {
        let mut values = Vec::new();
        let conds = guanxi_sql::ticket_where(Dialect::Postgres, filter, &mut values)?;
        self.page("tickets", conds, values, page, |t: &Ticket| t.id.0)
    }

    fn count_tickets(&self, filter: &TicketFilter) -> Result<u64> {
        let mut values = Vec::new();
        let conds = guanxi_sql::ticket_where(Dialect::Postgres, filter, &mut values)?;
        self.count(&format!("SELECT count(*) FROM tickets t WHERE {}", where_sql(&conds)), &values)
    }

    fn open_ticket_loads(&self, users: &[UserId]) -> Result<Vec<u64>> {
        let names: Vec<String> = users.iter().map(ToString::to_string).collect();
        let rows = self.query(
            "SELECT owner, count(*) FROM tickets WHERE open = 1 AND owner = ANY($1) GROUP BY owner",
            &[&names],
        )?;
        let counts: HashMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        Ok(names.iter().map(|n| counts.get(n).map_or(0, |c| u64::try_from(*c).unwrap_or(0))).collect())
    }

    fn sla_clocks(&self, filter: &TicketFilter) -> Result<Vec<SlaClock>> {
        let mut values = Vec::new();
        let conds = guanxi_sql::ticket_where(Dialect::Postgres, filter, &mut values)?;
        let tickets: Vec<Ticket> =
            self.docs("ticket", &format!("SELECT t.doc FROM tickets t WHERE {}", where_sql(&conds)), &values)?;
        Ok(tickets.iter().map(SlaClock::from).collect())
    }

    fn ticket_entries(&self, id: TicketId) -> Result<Vec<TicketEntry>> {
        self.entries("ticket entry", "ticket_entries", &id.to_string())
    }

    fn article(&self, id: ArticleId) -> Result<Option<Article>> {
        self.by_column("article", "articles", "id", &id.to_string())
    }

    fn search_articles(&self, query: &KbQuery) -> Result<Vec<ArticleHit>> {
        let articles: Vec<Article> = self.docs("article", "SELECT doc FROM articles ORDER BY id", &[])?;
        Ok(rank_articles(&articles, query))
    }

    fn list_articles(&self, page: &PageRequest) -> Result<Page<Article>> {
        self.page_by_id("articles", page, |a: &Article| a.id.0)
    }
}
