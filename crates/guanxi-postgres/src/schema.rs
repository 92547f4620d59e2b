//! Versioned migrations, tracked in `guanxi_schema` (one row, locked while migrating).

use postgres::Client;

use guanxi_core::{Error, Result, StorageError};

use crate::pg_err;

/// Migration `i` brings the schema from version `i` to `i + 1`. Append only. Text columns are
/// `COLLATE "C"`: they order and compare by bytes, as SQLite and the reference do.
const MIGRATIONS: &[&str] = &[
    // 1: the customer aggregate, settings, sequences and the audit log.
    r#"
    CREATE TABLE customers (
        id text COLLATE "C" PRIMARY KEY,
        code text COLLATE "C" NOT NULL CONSTRAINT customers_code_key UNIQUE,
        name text COLLATE "C" NOT NULL,
        kind text COLLATE "C" NOT NULL,
        status text COLLATE "C" NOT NULL,
        level text COLLATE "C",
        industry text COLLATE "C",
        size text COLLATE "C",
        owner text COLLATE "C",
        department text COLLATE "C",
        province text COLLATE "C",
        city text COLLATE "C",
        district text COLLATE "C",
        deleted_at text COLLATE "C",
        version bigint NOT NULL,
        custom text NOT NULL,
        created_by text COLLATE "C" NOT NULL,
        doc text NOT NULL
    );
    CREATE INDEX customers_by_owner ON customers (owner, id);
    CREATE INDEX customers_by_status ON customers (status);
    CREATE INDEX customers_by_region ON customers (province, city, district);
    CREATE TABLE tags (
        name text COLLATE "C" PRIMARY KEY,
        group_name text COLLATE "C",
        created_at text COLLATE "C"
    );
    CREATE TABLE customer_tags (
        customer_id text COLLATE "C" NOT NULL REFERENCES customers (id),
        tag text COLLATE "C" NOT NULL REFERENCES tags (name),
        PRIMARY KEY (customer_id, tag)
    );
    CREATE INDEX customer_tags_by_tag ON customer_tags (tag, customer_id);
    CREATE TABLE contacts (
        id text COLLATE "C" PRIMARY KEY,
        customer_id text COLLATE "C" NOT NULL REFERENCES customers (id),
        is_primary boolean NOT NULL,
        deleted_at text COLLATE "C",
        version bigint NOT NULL,
        doc text NOT NULL
    );
    CREATE INDEX contacts_by_customer ON contacts (customer_id);
    CREATE TABLE contact_lookup (
        kind text COLLATE "C" NOT NULL,
        digest text COLLATE "C" NOT NULL,
        contact_id text COLLATE "C" NOT NULL REFERENCES contacts (id),
        PRIMARY KEY (kind, digest, contact_id)
    );
    CREATE INDEX contact_lookup_by_contact ON contact_lookup (contact_id);
    CREATE TABLE interactions (
        id text COLLATE "C" PRIMARY KEY,
        customer_id text COLLATE "C" NOT NULL REFERENCES customers (id),
        at text COLLATE "C" NOT NULL,
        doc text NOT NULL
    );
    CREATE INDEX interactions_by_customer ON interactions (customer_id, at, id);
    CREATE TABLE custom_fields (
        entity text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        doc text NOT NULL,
        PRIMARY KEY (entity, key)
    );
    CREATE TABLE match_keys (
        key bigint NOT NULL,
        customer_id text COLLATE "C" NOT NULL,
        source text COLLATE "C" NOT NULL,
        PRIMARY KEY (key, customer_id, source)
    );
    CREATE INDEX match_keys_by_source ON match_keys (source);
    CREATE TABLE settings (
        key text COLLATE "C" PRIMARY KEY,
        value text NOT NULL,
        version bigint NOT NULL
    );
    CREATE TABLE sequences (
        key text COLLATE "C" PRIMARY KEY,
        value bigint NOT NULL
    );
    CREATE TABLE change_log (
        seq bigint PRIMARY KEY,
        at text COLLATE "C" NOT NULL,
        actor text COLLATE "C" NOT NULL,
        entity_id text COLLATE "C" NOT NULL,
        customer_id text COLLATE "C",
        doc text NOT NULL
    );
    CREATE INDEX change_log_by_entity ON change_log (entity_id, seq);
    CREATE INDEX change_log_by_customer ON change_log (customer_id, seq);
    CREATE TABLE chain_head (
        id integer PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        hash text NOT NULL
    );
    INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, '');
    "#,
    // 2: the sales and service aggregates: documents beside the columns filters read.
    r#"
    CREATE TABLE opportunities (
        id text COLLATE "C" PRIMARY KEY,
        code text COLLATE "C" NOT NULL CONSTRAINT opportunities_code_key UNIQUE,
        pipeline text COLLATE "C" NOT NULL,
        currency text COLLATE "C" NOT NULL,
        stage text COLLATE "C" NOT NULL,
        closed_ns bigint,
        owner text COLLATE "C",
        department text COLLATE "C",
        province text COLLATE "C",
        customer_id text COLLATE "C" REFERENCES customers (id),
        version bigint NOT NULL,
        doc text NOT NULL
    );
    CREATE INDEX opportunities_by_customer ON opportunities (customer_id);
    CREATE INDEX opportunities_by_pipeline ON opportunities (pipeline, currency);
    CREATE TABLE stage_history (
        parent text COLLATE "C" NOT NULL REFERENCES opportunities (id),
        seq bigint NOT NULL,
        doc text NOT NULL,
        PRIMARY KEY (parent, seq)
    );
    CREATE TABLE leads (
        id text COLLATE "C" PRIMARY KEY,
        code text COLLATE "C" NOT NULL CONSTRAINT leads_code_key UNIQUE,
        status text COLLATE "C" NOT NULL,
        grade text COLLATE "C" NOT NULL,
        owner text COLLATE "C",
        department text COLLATE "C",
        province text COLLATE "C",
        version bigint NOT NULL,
        doc text NOT NULL
    );
    CREATE INDEX leads_by_owner ON leads (owner, status);
    CREATE TABLE tasks (
        id text COLLATE "C" PRIMARY KEY,
        owner text COLLATE "C" NOT NULL,
        department text COLLATE "C",
        opportunity_id text COLLATE "C" REFERENCES opportunities (id),
        due_at text COLLATE "C" NOT NULL,
        done bigint NOT NULL,
        version bigint NOT NULL,
        doc text NOT NULL
    );
    CREATE INDEX tasks_by_owner ON tasks (owner, done, due_at);
    CREATE TABLE tickets (
        id text COLLATE "C" PRIMARY KEY,
        code text COLLATE "C" NOT NULL CONSTRAINT tickets_code_key UNIQUE,
        status text COLLATE "C" NOT NULL,
        open bigint NOT NULL,
        kind text COLLATE "C" NOT NULL,
        priority text COLLATE "C" NOT NULL,
        channel text COLLATE "C" NOT NULL,
        owner text COLLATE "C",
        grp text COLLATE "C",
        department text COLLATE "C",
        province text COLLATE "C",
        customer_id text COLLATE "C" REFERENCES customers (id),
        created_ns bigint NOT NULL,
        created_by text COLLATE "C" NOT NULL,
        version bigint NOT NULL,
        doc text NOT NULL
    );
    CREATE INDEX tickets_by_owner ON tickets (open, owner);
    CREATE TABLE ticket_entries (
        parent text COLLATE "C" NOT NULL REFERENCES tickets (id),
        seq bigint NOT NULL,
        doc text NOT NULL,
        PRIMARY KEY (parent, seq)
    );
    CREATE TABLE articles (
        id text COLLATE "C" PRIMARY KEY,
        version bigint NOT NULL,
        doc text NOT NULL
    );
    "#,
    // 3: what the sales report reads, on the opportunity row itself (as SQLite's schema 4):
    // money in 1/10000 units, the completed stays and the line totals as summaries. Rows
    // written before are filled in from their documents when the store opens.
    r#"
    ALTER TABLE opportunities
        ADD COLUMN furthest_stage text COLLATE "C",
        ADD COLUMN opened_ns bigint,
        ADD COLUMN opened_s bigint,
        ADD COLUMN closed_s bigint,
        ADD COLUMN won boolean,
        ADD COLUMN amount_e4 bigint,
        ADD COLUMN probability text COLLATE "C",
        ADD COLUMN expected_close text COLLATE "C",
        ADD COLUMN stays text COLLATE "C" NOT NULL DEFAULT '',
        ADD COLUMN line_totals text COLLATE "C";
    "#,
    // 4: a customer's identifiers (issue 19) beside its document, sealed under the field key
    // when the store encrypts (the document itself stays readable without the key).
    r#"
    ALTER TABLE customers ADD COLUMN identifiers text;
    "#,
    // 5: behaviour events (issue 20), append-only, read per customer in id (= time) order;
    // ingest is idempotent by the external id.
    r#"
    CREATE TABLE events (
        id text COLLATE "C" PRIMARY KEY,
        customer_id text COLLATE "C" NOT NULL REFERENCES customers (id),
        at text COLLATE "C" NOT NULL,
        external_id text COLLATE "C" UNIQUE,
        doc text NOT NULL
    );
    CREATE INDEX events_by_customer ON events (customer_id, id);
    "#,
    // 6: an event's name beside its document, indexed with the customer and the instant, for
    // a segment's counts of events.
    r#"
    ALTER TABLE events ADD COLUMN name text COLLATE "C" NOT NULL DEFAULT '';
    UPDATE events SET name = doc::jsonb ->> 'name';
    CREATE INDEX events_by_name ON events (name, customer_id, at);
    "#,
    // 7: stays in saved segments, one row per visit, open while `open` — at most one open
    // stay per (segment, customer).
    r#"
    CREATE TABLE segment_memberships (
        id text COLLATE "C" PRIMARY KEY,
        segment text COLLATE "C" NOT NULL,
        customer_id text COLLATE "C" NOT NULL,
        open boolean NOT NULL,
        doc text NOT NULL
    );
    CREATE UNIQUE INDEX segment_memberships_open ON segment_memberships (segment, customer_id) WHERE open;
    CREATE INDEX segment_memberships_by_segment ON segment_memberships (segment, id);
    "#,
    // 8: commerce (issue 21), as SQLite's schema 16: products and purchases beside their
    // documents; amounts in 1/10000 units, instants in nanoseconds, `source_system` '' for none.
    r#"
    CREATE TABLE products (
        id text COLLATE "C" PRIMARY KEY,
        code text COLLATE "C" NOT NULL UNIQUE,
        external_id text COLLATE "C" UNIQUE,
        category text COLLATE "C",
        active bigint NOT NULL,
        version bigint NOT NULL,
        doc text NOT NULL
    );
    CREATE TABLE purchases (
        id text COLLATE "C" PRIMARY KEY,
        customer_id text COLLATE "C" NOT NULL REFERENCES customers (id),
        at_ns bigint NOT NULL,
        amount_e4 bigint NOT NULL,
        currency text COLLATE "C" NOT NULL,
        status text COLLATE "C" NOT NULL,
        source_system text COLLATE "C" NOT NULL,
        external_id text COLLATE "C",
        version bigint NOT NULL,
        doc text NOT NULL
    );
    CREATE UNIQUE INDEX purchases_by_key ON purchases (source_system, external_id) WHERE external_id IS NOT NULL;
    CREATE INDEX purchases_by_customer ON purchases (customer_id, currency, at_ns, status, amount_e4);
    "#,
];

/// The schema version this build writes.
pub(crate) const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// A schema name, quoted as an identifier; only plain names are accepted.
pub(crate) fn quoted(schema: &str) -> Result<String> {
    let plain = !schema.is_empty()
        && schema.len() <= 63
        && schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !plain {
        return Err(Error::invalid(
            "schema",
            guanxi_core::ValidationReason::Invalid { detail: "must be 1 to 63 of a-z, 0-9 and _".into() },
        ));
    }
    Ok(format!("\"{schema}\""))
}

/// Creates the schema if needed and brings it up to date. Each migration runs in a
/// transaction holding the version row (`FOR UPDATE`): two processes migrating at once take
/// turns, and the second finds the work done. Refuses a schema written by a newer guanxi.
pub(crate) fn migrate(client: &mut Client, schema: &str) -> Result<()> {
    let name = quoted(schema)?;
    // Two first openers may race to create the schema: the loser's error is harmless.
    for attempt in 0..3 {
        let created = client.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {name}; SET search_path TO {name}; \
             CREATE TABLE IF NOT EXISTS guanxi_schema (id integer PRIMARY KEY CHECK (id = 1), version bigint NOT NULL); \
             INSERT INTO guanxi_schema (id, version) VALUES (1, 0) ON CONFLICT DO NOTHING;"
        ));
        match created {
            Ok(()) => break,
            Err(e) if attempt < 2 && e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {}
            Err(e) => return Err(pg_err(e)),
        }
    }
    loop {
        let mut tx = client.transaction().map_err(pg_err)?;
        let version: i64 =
            tx.query_one("SELECT version FROM guanxi_schema WHERE id = 1 FOR UPDATE", &[]).map_err(pg_err)?.get(0);
        if version > CURRENT_VERSION {
            return Err(StorageError::msg(format!(
                "database schema version {version} is newer than this guanxi supports ({CURRENT_VERSION})"
            ))
            .into());
        }
        let Some(sql) = MIGRATIONS.get(usize::try_from(version).unwrap_or(usize::MAX)) else {
            return tx.commit().map_err(pg_err);
        };
        tx.batch_execute(sql).map_err(pg_err)?;
        tx.execute("UPDATE guanxi_schema SET version = $1 WHERE id = 1", &[&(version + 1)]).map_err(pg_err)?;
        tx.commit().map_err(pg_err)?;
    }
}
