//! Versioned schema migrations, tracked in `PRAGMA user_version`.

use rusqlite::Connection;

use guanxi_core::{Result, StorageError};

use crate::sql_err;

/// Marks a file as a guanxi database (`PRAGMA application_id`, "gxcr").
pub(crate) const APPLICATION_ID: i64 = 0x6778_6372;

/// Migration `i` brings the schema from version `i` to `i + 1`. Append only; never edit one
/// that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: customer center.
    r#"
    CREATE TABLE customers (
        id TEXT PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        industry TEXT,
        size TEXT,
        source TEXT,
        status TEXT NOT NULL,
        level TEXT,
        province TEXT,
        city TEXT,
        district TEXT,
        address TEXT,
        owner TEXT,
        department TEXT,
        custom TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        version INTEGER NOT NULL,
        deleted_at TEXT
    ) STRICT;
    CREATE INDEX customers_by_status ON customers (status);
    CREATE INDEX customers_by_owner ON customers (owner);
    CREATE INDEX customers_by_region ON customers (province, city, district);

    CREATE TABLE tags (
        name TEXT PRIMARY KEY,
        group_name TEXT,
        created_at TEXT
    ) STRICT;

    CREATE TABLE customer_tags (
        customer_id TEXT NOT NULL REFERENCES customers (id),
        tag TEXT NOT NULL REFERENCES tags (name) ON UPDATE CASCADE,
        PRIMARY KEY (customer_id, tag)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX customer_tags_by_tag ON customer_tags (tag, customer_id);

    CREATE TABLE contacts (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        name TEXT NOT NULL,
        title TEXT,
        phones TEXT NOT NULL,
        emails TEXT NOT NULL,
        role TEXT,
        is_primary INTEGER NOT NULL,
        do_not_contact INTEGER NOT NULL,
        custom TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        version INTEGER NOT NULL,
        deleted_at TEXT
    ) STRICT;
    CREATE INDEX contacts_by_customer ON contacts (customer_id);

    CREATE TABLE interactions (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        contact_id TEXT REFERENCES contacts (id),
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        author TEXT NOT NULL,
        content TEXT NOT NULL,
        next_step TEXT,
        next_contact_on TEXT,
        feedback TEXT,
        attachments TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at TEXT NOT NULL
    ) STRICT;
    CREATE INDEX interactions_by_customer ON interactions (customer_id, at);

    CREATE TABLE custom_fields (
        entity TEXT NOT NULL,
        key TEXT NOT NULL,
        label TEXT NOT NULL,
        field_type TEXT NOT NULL,
        required INTEGER NOT NULL,
        allowed_values TEXT NOT NULL,
        created_by TEXT,
        created_at TEXT,
        PRIMARY KEY (entity, key)
    ) STRICT;

    CREATE TABLE change_log (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        entity TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        customer_id TEXT,
        action TEXT NOT NULL,
        changes TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    ) STRICT;
    CREATE INDEX change_log_by_entity ON change_log (entity_id);
    CREATE INDEX change_log_by_customer ON change_log (customer_id);
    CREATE INDEX change_log_by_actor ON change_log (actor);
    -- The log is append-only, in the file itself and not only by convention.
    CREATE TRIGGER change_log_no_update BEFORE UPDATE ON change_log
        BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;
    CREATE TRIGGER change_log_no_delete BEFORE DELETE ON change_log
        BEGIN SELECT RAISE(ABORT, 'change_log is append-only'); END;

    CREATE TABLE sequences (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) STRICT;
    "#,
    // 2: access control and field encryption.
    r#"
    -- Versioned documents: the access model, the field-key check.
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        version INTEGER NOT NULL
    ) STRICT;
    -- Resident identity numbers, a sensitive value like phones.
    ALTER TABLE contacts ADD COLUMN id_number TEXT;
    -- Exact-match lookup of contacts by phone or identity number: the value itself, or its
    -- keyed digest (HMAC) once the values are encrypted.
    CREATE TABLE contact_lookup (
        kind TEXT NOT NULL,
        digest TEXT NOT NULL,
        contact_id TEXT NOT NULL REFERENCES contacts (id),
        PRIMARY KEY (kind, digest, contact_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX contact_lookup_by_contact ON contact_lookup (contact_id);
    INSERT INTO contact_lookup (kind, digest, contact_id)
        SELECT DISTINCT 'phone', p.value, c.id FROM contacts c, json_each(c.phones) p;
    -- An own-records scope reads one owner's customers in page (id) order; department scopes
    -- are counted through the department index.
    CREATE INDEX customers_by_owner_id ON customers (owner, id, deleted_at);
    CREATE INDEX customers_by_department ON customers (department, deleted_at);
    "#,
    // 3: sales. Records are stored whole as JSON (`doc`); the columns filters and reports
    // read sit in narrow rows of their own (opportunities, stage history), so report scans
    // read little. Money columns are integers in 1/10000 units, so sums are exact; instants
    // are integer nanoseconds (ranges) and whole seconds (day arithmetic).
    r#"
    CREATE TABLE opportunities (
        n INTEGER PRIMARY KEY,
        pipeline TEXT NOT NULL,
        currency TEXT NOT NULL,
        stage TEXT NOT NULL,
        furthest_stage TEXT NOT NULL,
        opened_ns INTEGER NOT NULL,
        opened_s INTEGER NOT NULL,
        closed_ns INTEGER,
        closed_s INTEGER,
        won INTEGER,
        amount_e4 INTEGER NOT NULL,
        probability TEXT NOT NULL,
        expected_close TEXT,
        owner TEXT,
        department TEXT,
        province TEXT,
        customer_id TEXT REFERENCES customers (id),
        id TEXT NOT NULL UNIQUE,
        code TEXT NOT NULL UNIQUE,
        version INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX opportunities_by_customer ON opportunities (customer_id);
    CREATE INDEX opportunities_by_owner ON opportunities (owner, id);
    -- The whole record, apart from the narrow rows reports scan.
    CREATE TABLE opportunity_docs (
        n INTEGER PRIMARY KEY REFERENCES opportunities (n),
        doc TEXT NOT NULL
    ) STRICT;

    CREATE TABLE opportunity_lines (
        opp INTEGER NOT NULL REFERENCES opportunities (n),
        line INTEGER NOT NULL,
        product TEXT NOT NULL,
        total_e4 INTEGER NOT NULL,
        PRIMARY KEY (opp, line)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE stage_history (
        opp INTEGER NOT NULL REFERENCES opportunities (n),
        seq INTEGER NOT NULL,
        from_stage TEXT,
        to_stage TEXT NOT NULL,
        stay_s INTEGER,
        lost_reason TEXT,
        PRIMARY KEY (opp, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE stage_history_docs (
        opp INTEGER NOT NULL REFERENCES opportunities (n),
        seq INTEGER NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (opp, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE TRIGGER stage_history_no_update BEFORE UPDATE ON stage_history
        BEGIN SELECT RAISE(ABORT, 'stage_history is append-only'); END;
    CREATE TRIGGER stage_history_no_delete BEFORE DELETE ON stage_history
        BEGIN SELECT RAISE(ABORT, 'stage_history is append-only'); END;
    CREATE TRIGGER stage_history_docs_no_update BEFORE UPDATE ON stage_history_docs
        BEGIN SELECT RAISE(ABORT, 'stage_history is append-only'); END;
    CREATE TRIGGER stage_history_docs_no_delete BEFORE DELETE ON stage_history_docs
        BEGIN SELECT RAISE(ABORT, 'stage_history is append-only'); END;

    CREATE TABLE leads (
        id TEXT PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        grade TEXT NOT NULL,
        owner TEXT,
        department TEXT,
        province TEXT,
        phone TEXT,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL
    ) STRICT;
    CREATE INDEX leads_by_owner ON leads (owner, status);

    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        department TEXT,
        opportunity_id TEXT REFERENCES opportunities (id),
        due_at TEXT NOT NULL,
        done INTEGER NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL
    ) STRICT;
    CREATE INDEX tasks_by_owner ON tasks (owner, done, due_at);
    CREATE INDEX tasks_by_opportunity ON tasks (opportunity_id);
    "#,
    // 4: the sales report in one scan. Each opportunity's narrow row carries what the report
    // reads of its stage history (completed stays) and of its lines (product totals), so the
    // report never joins the 4-rows-per-deal history or the lines (both stay, normalized, for
    // whoever queries the file with SQL). Encoded as records ending in U+001E with
    // fields split by U+001F ('%', U+001E and U+001F inside a field are %-escaped): see
    // `sales::Summary`. The history stays the record; `stays` only ever grows with it.
    r#"
    ALTER TABLE opportunities ADD COLUMN stays TEXT NOT NULL DEFAULT '';
    ALTER TABLE opportunities ADD COLUMN line_totals TEXT NOT NULL DEFAULT '';
    UPDATE opportunities SET stays = coalesce((
        SELECT group_concat(
            replace(replace(replace(h.from_stage, '%', '%25'), char(30), '%1E'), char(31), '%1F') || char(31) ||
            replace(replace(replace(h.to_stage, '%', '%25'), char(30), '%1E'), char(31), '%1F') || char(31) ||
            h.stay_s || char(31) ||
            replace(replace(replace(coalesce(h.lost_reason, ''), '%', '%25'), char(30), '%1E'), char(31), '%1F') ||
            char(30), '')
        FROM stage_history h WHERE h.opp = opportunities.n AND h.stay_s IS NOT NULL), '');
    UPDATE opportunities SET line_totals = coalesce((
        SELECT group_concat(
            replace(replace(replace(l.product, '%', '%25'), char(30), '%1E'), char(31), '%1F') || char(31) ||
            l.total_e4 || char(30), '')
        FROM opportunity_lines l WHERE l.opp = opportunities.n), '');
    "#,
    // 5: service. Tickets as narrow rows (what filters and SLA evaluation read; `owner` is the
    // assignee, so permission scopes compile as for every entity), the record as JSON in
    // `ticket_docs`; the SLA clock packed in one `clock` value (see `service::ClockRow`) and a
    // covering index of it with the scope columns, in id order, so evaluating a backlog reads
    // one index in the order it reports, one value a row, and no record;
    // their append-only entries; knowledge-base articles with an FTS5 index of their terms
    // (CJK bigrams and Latin words produced by guanxi's tokenizer, space-separated, so the
    // `ascii` tokenizer only splits at spaces). The index stores no text of its own.
    r#"
    CREATE TABLE tickets (
        n INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        code TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        open INTEGER NOT NULL,
        kind TEXT NOT NULL,
        priority TEXT NOT NULL,
        channel TEXT NOT NULL,
        owner TEXT,
        grp TEXT,
        department TEXT,
        province TEXT,
        customer_id TEXT REFERENCES customers (id),
        created_ns INTEGER NOT NULL,
        clock BLOB NOT NULL,
        version INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE ticket_docs (
        n INTEGER PRIMARY KEY REFERENCES tickets (n),
        doc TEXT NOT NULL
    ) STRICT;
    CREATE INDEX tickets_by_owner ON tickets (open, owner);
    CREATE INDEX tickets_sla_clock ON tickets (open, id, owner, department, province, clock);
    CREATE INDEX tickets_by_customer ON tickets (customer_id);
    CREATE INDEX tickets_by_created ON tickets (created_ns);
    CREATE TABLE ticket_entries (
        ticket INTEGER NOT NULL REFERENCES tickets (n),
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (ticket, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE TRIGGER ticket_entries_no_update BEFORE UPDATE ON ticket_entries
        BEGIN SELECT RAISE(ABORT, 'ticket_entries is append-only'); END;
    CREATE TRIGGER ticket_entries_no_delete BEFORE DELETE ON ticket_entries
        BEGIN SELECT RAISE(ABORT, 'ticket_entries is append-only'); END;
    CREATE TABLE articles (
        n INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        category TEXT,
        published INTEGER NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL
    ) STRICT;
    CREATE TABLE article_tags (
        tag TEXT NOT NULL,
        article INTEGER NOT NULL REFERENCES articles (n),
        PRIMARY KEY (tag, article)
    ) STRICT, WITHOUT ROWID;
    CREATE VIRTUAL TABLE article_index USING fts5 (
        title, body, tags, content = '', contentless_delete = 1, tokenize = 'ascii'
    );
    INSERT INTO article_index (article_index, rank) VALUES ('rank', 'bm25(4.0, 1.0, 2.0)');
    CREATE VIRTUAL TABLE article_vocab USING fts5vocab (article_index, row);
    "#,
    // 6: duplicate detection. The match keys of `guanxi_core::dedup::match_keys`, per source
    // record: a customer's name keys (source = the customer's id) and a contact's phone and
    // e-mail keys (source = the contact's id; under the blind-index key when encrypted). A
    // check on create reads the customers sharing a key instead of every customer. The keys
    // are computed in Rust, so existing rows are indexed when the store opens (the marker row).
    r#"
    CREATE TABLE match_keys (
        key INTEGER NOT NULL,
        customer_id TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (key, customer_id, source)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX match_keys_by_source ON match_keys (source);
    CREATE TABLE match_keys_backfill (pending INTEGER NOT NULL) STRICT;
    INSERT INTO match_keys_backfill VALUES (1);
    -- A merged customer is a tombstone pointing to its survivor.
    ALTER TABLE customers ADD COLUMN merged_into TEXT;
    "#,
    // 7: who opened a ticket, which scopes reach like its owner (the assignee): the rep who
    // opened a ticket can read it. In the SLA clock's covering index, so backlog scans under a
    // scope still read one value a row.
    r#"
    ALTER TABLE tickets ADD COLUMN created_by TEXT;
    UPDATE tickets SET created_by = (SELECT json_extract(d.doc, '$.created_by') FROM ticket_docs d WHERE d.n = tickets.n);
    DROP INDEX tickets_sla_clock;
    CREATE INDEX tickets_sla_clock ON tickets (open, id, owner, created_by, department, province, clock);
    "#,
    // 8: a leaner match-key index (issue 18). Every new customer adds a dozen keys, each a random
    // insert into this table's key order: the source record's id as its UUID's 16 bytes instead
    // of 36-character text narrows both b-trees, so more of them stays in the page cache.
    // Rebuilt from the records when the store opens, as after migration 6.
    r#"
    DROP TABLE match_keys;
    CREATE TABLE match_keys (
        key INTEGER NOT NULL,
        customer_id TEXT NOT NULL,
        source BLOB NOT NULL,
        PRIMARY KEY (key, customer_id, source)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX match_keys_by_source ON match_keys (source);
    DELETE FROM match_keys_backfill;
    INSERT INTO match_keys_backfill VALUES (1);
    "#,
    // 9: scoped counts (issue 18). A count over a scope of departments and owners is summed
    // from disjoint index range scans (`guanxi_sql::Query::count`); the owners' part checks each
    // row's department, so the owner index carries it (and `deleted_at`), and the count never
    // visits the table.
    r#"
    DROP INDEX customers_by_owner;
    CREATE INDEX customers_by_owner ON customers (owner, deleted_at, department);
    "#,
    // 10: match keys without an index by source (issue 18): a changed record's old keys are
    // computed from its stored row and deleted by their primary key, which halves what every
    // new key costs on disk and on write.
    r#"
    DROP INDEX match_keys_by_source;
    "#,
    // 11: narrower match keys (issue 18, footprint): the customer as its UUID's 16 bytes, and
    // no source for a customer's own name keys (most of them: the name and its one-character
    // deletions), whose source is the customer itself; a contact's keys name the contact.
    // Halves the table's bytes. Rebuilt from the records when the store opens.
    r#"
    DROP TABLE match_keys;
    CREATE TABLE match_keys (
        key INTEGER NOT NULL,
        customer BLOB NOT NULL,
        source BLOB NOT NULL,
        PRIMARY KEY (key, customer, source)
    ) STRICT, WITHOUT ROWID;
    DELETE FROM match_keys_backfill;
    INSERT INTO match_keys_backfill VALUES (1);
    "#,
    // 12: a customer's identity numbers and registration codes (issue 19), a JSON array of
    // `{scheme, value}` (NULL when none). Their match keys join the customer's own keys as
    // they are written; existing customers have none, so nothing is re-indexed.
    r#"
    ALTER TABLE customers ADD COLUMN identifiers TEXT;
    "#,
    // 13: behaviour events (issue 20), append-only: the record as JSON, beside the columns a
    // customer's events are read by (in id order, which is time order: the ids are v7 of the
    // events' instants) and the external id ingest is idempotent by.
    r#"
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        at TEXT NOT NULL,
        external_id TEXT UNIQUE,
        doc TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX events_by_customer ON events (customer_id, id);
    "#,
    // 14: an event's name beside its document, indexed with the customer and the instant: a
    // segment's count of events reads the index range of one name and window, already grouped
    // by customer.
    r#"
    ALTER TABLE events ADD COLUMN name TEXT NOT NULL DEFAULT '';
    UPDATE events SET name = json_extract(doc, '$.name');
    CREATE INDEX events_by_name ON events (name, customer_id, at);
    "#,
    // 15: stays in saved segments (issue 20): one row per visit, open while `exited_at` is
    // NULL — at most one open stay per (segment, customer), which the partial index keeps.
    r#"
    CREATE TABLE segment_memberships (
        id TEXT PRIMARY KEY,
        segment TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        entered_at TEXT NOT NULL,
        entered_because TEXT NOT NULL,
        exited_at TEXT,
        exited_because TEXT
    ) STRICT, WITHOUT ROWID;
    CREATE UNIQUE INDEX segment_memberships_open ON segment_memberships (segment, customer_id)
        WHERE exited_at IS NULL;
    CREATE INDEX segment_memberships_by_segment ON segment_memberships (segment, id);
    "#,
    // 16: commerce (issue 21). Products and purchases as narrow rows beside their record as
    // JSON. A purchase's amount in 1/10000 units (exact sums), its instant in nanoseconds,
    // `source_system` '' for none so the (source, external id) key is one unique index; the
    // customer index covers what spend and per-customer analytics read.
    r#"
    CREATE TABLE products (
        id TEXT PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        external_id TEXT UNIQUE,
        category TEXT,
        active INTEGER NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE purchases (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers (id),
        at_ns INTEGER NOT NULL,
        amount_e4 INTEGER NOT NULL,
        currency TEXT NOT NULL,
        status TEXT NOT NULL,
        source_system TEXT NOT NULL,
        external_id TEXT,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE UNIQUE INDEX purchases_by_key ON purchases (source_system, external_id)
        WHERE external_id IS NOT NULL;
    CREATE INDEX purchases_by_customer ON purchases (customer_id, currency, at_ns, status, amount_e4);
    "#,
];

/// The schema version this build writes.
pub(crate) const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Refuses files of another application and files written by a newer guanxi; returns the
/// file's schema version.
pub(crate) fn check_version(conn: &Connection) -> Result<i64> {
    let app_id: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(sql_err)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql_err)?;
    if app_id != APPLICATION_ID && (app_id != 0 || version != 0) {
        return Err(StorageError::msg(format!("not a guanxi database (application_id {app_id:#x})")).into());
    }
    if version > CURRENT_VERSION {
        return Err(StorageError::msg(format!(
            "database schema version {version} is newer than this guanxi supports ({CURRENT_VERSION})"
        ))
        .into());
    }
    Ok(version)
}

/// Brings the schema up to date, one transaction per migration. Each runs under BEGIN
/// IMMEDIATE and re-reads the version inside it: two processes opening an old file at once
/// take turns, and the second finds the work done (a version read before a DEFERRED
/// transaction could be stale by the time it writes). An up-to-date file takes no lock.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    if check_version(conn)? == CURRENT_VERSION {
        return Ok(());
    }
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql_err)?;
        let version = check_version(&tx)?;
        let Some(sql) = MIGRATIONS.get(usize::try_from(version).unwrap_or(usize::MAX)) else {
            return tx.commit().map_err(sql_err);
        };
        tx.execute_batch(sql).map_err(sql_err)?;
        tx.execute_batch(&format!("PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {};", version + 1))
            .map_err(sql_err)?;
        tx.commit().map_err(sql_err)?;
    }
}
