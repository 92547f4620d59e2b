//! Service storage: tickets (narrow columns for filters and SLA clocks, the record as JSON),
//! their append-only entries, and knowledge-base articles with an FTS5 index of their terms.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde::{Deserialize, Serialize};

use guanxi_core::UserId;
use guanxi_core::chrono::{DateTime, Utc};
use guanxi_core::service::{
    Article, ArticleHit, KbQuery, MatchMode, Priority, SlaClock, SlaTargets, Ticket, TicketEntry, TicketFilter,
    TicketStatus,
};
use guanxi_core::{Changes, EntityKind, Error, Page, PageRequest, Result, StorageError};

use crate::query::Bind;
use crate::sales::{count, docs, ns, opt_text, text, to_doc, versioned, where_sql};
use crate::{Constraint, constraint, sql_err};
use guanxi_sql::Dialect;

/// Applies the service part of a batch: tickets, ticket entries, articles.
pub(crate) fn apply(tx: &Connection, changes: &Changes) -> Result<()> {
    for w in &changes.tickets {
        let t = w.record();
        let id = t.id.to_string();
        versioned(
            tx,
            w,
            "tickets",
            EntityKind::Ticket,
            &id,
            (
                "INSERT INTO tickets (id, code, status, open, kind, priority, channel, owner, grp, department, \
                 province, customer_id, created_ns, clock, version, created_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                "UPDATE tickets SET code = ?2, status = ?3, open = ?4, kind = ?5, priority = ?6, channel = ?7, \
                 owner = ?8, grp = ?9, department = ?10, province = ?11, customer_id = ?12, created_ns = ?13, \
                 clock = ?14, version = ?15, created_by = ?16 WHERE id = ?1 AND version = ?17",
            ),
            vec![
                text(id.clone()),
                text(t.code.clone()),
                text(t.status.as_str()),
                Value::Integer(i64::from(t.status.is_open())),
                text(t.kind.as_str()),
                text(t.priority.as_str()),
                text(t.channel.as_str()),
                opt_text(t.assignee.as_ref().map(|u| u.to_string())),
                opt_text(t.group.clone()),
                opt_text(t.department.as_ref().map(|d| d.to_string())),
                opt_text(t.province.clone()),
                opt_text(t.customer_id.map(|c| c.to_string())),
                Value::Integer(ns(t.created_at)?),
                Value::Blob(ClockRow::of(t)?.encode()?),
                Value::Integer(t.version as i64),
                text(t.created_by.to_string()),
            ],
            t.customer_id.map(|c| (EntityKind::Customer, c.to_string())),
        )?;
        tx.prepare_cached(
            "INSERT INTO ticket_docs (n, doc) SELECT n, ?2 FROM tickets WHERE id = ?1 \
             ON CONFLICT (n) DO UPDATE SET doc = excluded.doc",
        )
        .map_err(sql_err)?
        .execute(params![id, to_doc(t)?])
        .map_err(sql_err)?;
    }
    for e in &changes.ticket_entries {
        let n = tx
            .prepare_cached(
                "INSERT INTO ticket_entries (ticket, seq, kind, doc) SELECT n, ?2, ?3, ?4 FROM tickets WHERE id = ?1",
            )
            .map_err(sql_err)?
            .execute(params![e.ticket_id.to_string(), e.seq, e.change.kind(), to_doc(e)?])
            .map_err(|err| match constraint(&err) {
                Some(Constraint::Unique) => Error::Duplicate {
                    entity: EntityKind::Ticket,
                    field: "entries.seq".into(),
                    value: e.seq.to_string(),
                },
                _ => sql_err(err),
            })?;
        if n == 0 {
            return Err(Error::not_found(EntityKind::Ticket, e.ticket_id));
        }
    }
    for w in &changes.articles {
        let a = w.record();
        let id = a.id.to_string();
        versioned(
            tx,
            w,
            "articles",
            EntityKind::Article,
            &id,
            (
                "INSERT INTO articles (id, category, published, version, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                "UPDATE articles SET category = ?2, published = ?3, version = ?4, doc = ?5 WHERE id = ?1 AND version = ?6",
            ),
            vec![
                text(id.clone()),
                opt_text(a.category.clone()),
                Value::Integer(i64::from(a.published)),
                Value::Integer(a.version as i64),
                text(to_doc(a)?),
            ],
            None,
        )?;
        let n: i64 = tx
            .prepare_cached("SELECT n FROM articles WHERE id = ?1")
            .map_err(sql_err)?
            .query_row([&id], |r| r.get(0))
            .map_err(sql_err)?;
        tx.prepare_cached("DELETE FROM article_index WHERE rowid = ?1")
            .map_err(sql_err)?
            .execute([n])
            .map_err(sql_err)?;
        tx.prepare_cached("DELETE FROM article_tags WHERE article = ?1")
            .map_err(sql_err)?
            .execute([n])
            .map_err(sql_err)?;
        let [title, body, tags] = a.terms().map(|t| t.join(" "));
        tx.prepare_cached("INSERT INTO article_index (rowid, title, body, tags) VALUES (?1, ?2, ?3, ?4)")
            .map_err(sql_err)?
            .execute(params![n, title, body, tags])
            .map_err(sql_err)?;
        let mut tag = tx.prepare_cached("INSERT INTO article_tags (tag, article) VALUES (?1, ?2)").map_err(sql_err)?;
        for t in &a.tags {
            tag.execute(params![t, n]).map_err(sql_err)?;
        }
    }
    Ok(())
}

/// Conditions of a ticket filter over `tickets t`.
fn ticket_where(f: &TicketFilter, params: &mut Vec<Value>) -> Result<Vec<String>> {
    guanxi_sql::ticket_where(Dialect::Sqlite, f, &mut Bind(params))
}

pub(crate) fn ticket_by(conn: &Connection, column: &str, value: &str) -> Result<Option<Ticket>> {
    let sql = format!("SELECT d.doc FROM tickets t JOIN ticket_docs d ON d.n = t.n WHERE t.{column} = ?1");
    Ok(docs(conn, &sql, &[text(value)])?.pop())
}

pub(crate) fn list_tickets(conn: &Connection, f: &TicketFilter, page: &PageRequest) -> Result<Page<Ticket>> {
    page.check()?;
    let mut params = Vec::new();
    let mut conds = ticket_where(f, &mut params)?;
    if let Some(after) = page.after {
        params.push(text(after.last_id().to_string()));
        conds.push(format!("t.id > ?{}", params.len()));
    }
    let sql = format!(
        "SELECT d.doc FROM tickets t JOIN ticket_docs d ON d.n = t.n WHERE {} ORDER BY t.id LIMIT {}",
        where_sql(&conds),
        page.limit.saturating_add(1)
    );
    Ok(Page::from_overfetch(docs(conn, &sql, &params)?, page.limit, |t: &Ticket| t.id.0))
}

pub(crate) fn count_tickets(conn: &Connection, f: &TicketFilter) -> Result<u64> {
    let mut params = Vec::new();
    let conds = ticket_where(f, &mut params)?;
    count(conn, &format!("SELECT count(*) FROM tickets t WHERE {}", where_sql(&conds)), &params)
}

pub(crate) fn open_ticket_loads(conn: &Connection, users: &[UserId]) -> Result<Vec<u64>> {
    let mut stmt =
        conn.prepare_cached("SELECT count(*) FROM tickets WHERE open = 1 AND owner = ?1").map_err(sql_err)?;
    users
        .iter()
        .map(|u| {
            let n: i64 = stmt.query_row([u.to_string()], |r| r.get(0)).map_err(sql_err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .collect()
}

fn corrupt(what: &str) -> Error {
    StorageError::msg(format!("ticket row has an unreadable {what}")).into()
}

/// The SLA clock of a ticket as one packed column (postcard): evaluating a backlog reads one
/// value per row from the covering index instead of a dozen columns, which is most of the cost
/// of the scan.
#[derive(Serialize, Deserialize)]
struct ClockRow<'a> {
    id: u128,
    code: &'a str,
    status: &'a str,
    priority: &'a str,
    assignee: Option<&'a str>,
    policy: Option<&'a str>,
    first_response_target_s: i64,
    resolution_target_s: i64,
    created_ns: i64,
    first_response_ns: Option<i64>,
    resolved_ns: Option<i64>,
    pending_ns: Option<i64>,
    paused_s: i64,
}

impl<'a> ClockRow<'a> {
    fn of(t: &'a Ticket) -> Result<ClockRow<'a>> {
        let opt = |v: Option<DateTime<Utc>>| v.map(ns).transpose();
        Ok(ClockRow {
            id: t.id.0.as_u128(),
            code: &t.code,
            status: t.status.as_str(),
            priority: t.priority.as_str(),
            assignee: t.assignee.as_ref().map(UserId::as_str),
            policy: t.sla.as_ref().map(|s| s.policy.as_str()),
            first_response_target_s: t.sla.as_ref().map_or(0, |s| s.first_response_secs),
            resolution_target_s: t.sla.as_ref().map_or(0, |s| s.resolution_secs),
            created_ns: ns(t.created_at)?,
            first_response_ns: opt(t.first_response_at)?,
            resolved_ns: opt(t.resolved_at)?,
            pending_ns: opt(t.pending_since)?,
            paused_s: t.sla_paused_secs,
        })
    }

    fn encode(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| StorageError::with_source("ticket clock does not encode", e).into())
    }

    fn clock(&self) -> Result<SlaClock> {
        Ok(SlaClock {
            ticket_id: guanxi_core::TicketId(uuid::Uuid::from_u128(self.id)),
            code: self.code.to_owned(),
            status: TicketStatus::from_name(self.status).ok_or_else(|| corrupt("status"))?,
            priority: Priority::from_name(self.priority).ok_or_else(|| corrupt("priority"))?,
            assignee: self.assignee.map(UserId::new).transpose().map_err(|_| corrupt("owner"))?,
            targets: self.policy.map(|policy| SlaTargets {
                policy: policy.to_owned(),
                first_response_secs: self.first_response_target_s,
                resolution_secs: self.resolution_target_s,
            }),
            created_at: DateTime::from_timestamp_nanos(self.created_ns),
            first_response_at: self.first_response_ns.map(DateTime::from_timestamp_nanos),
            resolved_at: self.resolved_ns.map(DateTime::from_timestamp_nanos),
            pending_since: self.pending_ns.map(DateTime::from_timestamp_nanos),
            paused_secs: self.paused_s,
        })
    }
}

pub(crate) fn sla_clocks(conn: &Connection, f: &TicketFilter) -> Result<Vec<SlaClock>> {
    let mut params = Vec::new();
    let conds = ticket_where(f, &mut params)?;
    let sql = format!("SELECT t.clock FROM tickets t WHERE {}", where_sql(&conds));
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
    let mut rows = stmt.query(params_from_iter(&params)).map_err(sql_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(sql_err)? {
        let bytes = r.get_ref(0).and_then(|v| Ok(v.as_blob()?)).map_err(sql_err)?;
        let row: ClockRow<'_> = postcard::from_bytes(bytes).map_err(|_| corrupt("clock"))?;
        out.push(row.clock()?);
    }
    Ok(out)
}

pub(crate) fn ticket_entries(conn: &Connection, id: &str) -> Result<Vec<TicketEntry>> {
    docs(
        conn,
        "SELECT e.doc FROM tickets t JOIN ticket_entries e ON e.ticket = t.n WHERE t.id = ?1 ORDER BY e.seq",
        &[text(id)],
    )
}

pub(crate) fn article(conn: &Connection, id: &str) -> Result<Option<Article>> {
    Ok(docs(conn, "SELECT doc FROM articles WHERE id = ?1", &[text(id)])?.pop())
}

/// Ranked search through the FTS5 index; its `rank` is BM25 with the title, body and tag
/// weights of `guanxi_core::service::COLUMN_WEIGHTS`.
pub(crate) fn search_articles(conn: &Connection, q: &KbQuery) -> Result<Vec<ArticleHit>> {
    if q.terms().is_empty() || q.limit == 0 {
        return Ok(vec![]);
    }
    let terms = if q.mode == MatchMode::Any {
        let mut stmt = conn.prepare_cached("SELECT doc FROM article_vocab WHERE term = ?1").map_err(sql_err)?;
        let mut freq = std::collections::HashMap::new();
        for t in q.terms() {
            let n: Option<i64> = stmt.query_row([&t], |r| r.get(0)).optional().map_err(sql_err)?;
            freq.insert(t, n.map_or(0, |n| u64::try_from(n).unwrap_or(0)));
        }
        let articles = count(conn, "SELECT count(*) FROM articles", &[])?;
        q.search_terms(|t| freq.get(t).copied().unwrap_or(0), articles)
    } else {
        q.terms()
    };
    if terms.is_empty() {
        return Ok(vec![]);
    }
    // Terms are letters, digits and CJK characters only; quoting makes each a plain phrase.
    let join = if q.mode == MatchMode::All { " AND " } else { " OR " };
    let expr = terms.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(join);
    let mut params = vec![text(expr)];
    let mut conds = vec!["article_index MATCH ?1".to_owned()];
    if !q.include_unpublished {
        conds.push("a.published = 1".into());
    }
    if let Some(c) = &q.category {
        params.push(text(c.clone()));
        conds.push(format!("a.category = ?{}", params.len()));
    }
    if let Some(t) = &q.tag {
        params.push(text(t.clone()));
        conds
            .push(format!("EXISTS (SELECT 1 FROM article_tags g WHERE g.article = a.n AND g.tag = ?{})", params.len()));
    }
    // Rank inside FTS5 first and read only the best rows' documents: joining before the
    // sort would decode every match. Filters apply to a margin of candidates; when they leave
    // too few while more matches exist, the search runs again over all matches.
    let candidates = q.limit.saturating_mul(4).saturating_add(16);
    let filtered = conds.len() > 1;
    let mut hits = ranked(conn, &conds, &params, q.limit, Some(candidates))?;
    if filtered && hits.len() < q.limit {
        let total = count(conn, "SELECT count(*) FROM article_index WHERE article_index MATCH ?1", &params[..1])?;
        if total as usize > candidates {
            hits = ranked(conn, &conds, &params, q.limit, None)?;
        }
    }
    Ok(hits)
}

fn ranked(
    conn: &Connection,
    conds: &[String],
    params: &[Value],
    limit: usize,
    candidates: Option<usize>,
) -> Result<Vec<ArticleHit>> {
    let inner = candidates.map_or(String::new(), |c| format!(" LIMIT {c}"));
    let sql = format!(
        "SELECT a.doc, -h.rank FROM (SELECT rowid, rank FROM article_index WHERE {} ORDER BY rank{inner}) h \
         JOIN articles a ON a.n = h.rowid WHERE {} ORDER BY h.rank, a.id LIMIT {limit}",
        conds[0],
        where_sql(&conds[1..])
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
    let rows = stmt
        .query_map(params_from_iter(params), |r| {
            Ok(ArticleHit { article: crate::sales::from_doc(r.get_ref(0)?.as_str()?)?, score: r.get(1)? })
        })
        .map_err(sql_err)?;
    rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
}
