//! # guanxi-postgres
//!
//! guanxi on PostgreSQL 15+: every aggregate (customers, contacts, tags, interactions, custom
//! fields, match keys; opportunities, stage history, leads, tasks; tickets, entries,
//! knowledge-base articles), configuration documents, the access model, sequences and the
//! hash-chained audit log, on the same contract and through the same shared SQL
//! (`guanxi-sql`) as SQLite. It passes the same conformance suite, also with a serialization
//! failure injected into the first attempt of every batch.
//!
//! Backup ([`CrmStore::backup_to`]) writes a consistent snapshot into a new guanxi SQLite
//! file, which `Crm::restore` loads back into a file or into an empty schema. Field encryption
//! ([`PgOptions::field_key`]) seals contact and lead documents with AES-256-GCM, bound to their
//! row, with the keyed blind index for lookups, as the SQLite backend does; rotating the key
//! re-seals every row in one transaction and vacuums the old row versions, but what the server
//! already wrote to its WAL, base backups and replicas keeps them until those are recycled.
//! The sales report scans narrow columns each opportunity row carries for it, reduced by the
//! code SQLite uses (`guanxi_sql::report`). SLA clocks and knowledge-base search are computed
//! from the records with the core's reference reductions: exact, not yet as fast as SQL.
//!
//! The client is the synchronous `postgres` crate, which runs a runtime of its own: calls made
//! from a thread inside another tokio runtime are moved to a short-lived thread of their own
//! (that runtime would panic otherwise). Connections are pooled; each batch is one transaction,
//! retried a bounded number of times on a serialization failure or a deadlock (SQLSTATE 40001,
//! 40P01), so SERIALIZABLE engines speaking the protocol (CockroachDB, YugabyteDB) work too. The
//! change log stays gap-free and in commit order under concurrent writers: every writer locks
//! the one chain-head row (`FOR UPDATE`) before it chains its entries. No triggers and no
//! advisory locks are used (CockroachDB has neither).
//!
//! ```no_run
//! use guanxi_core::prelude::*;
//! use guanxi_postgres::PgStore;
//! let store = PgStore::connect("host=/run/postgresql user=guanxi dbname=crm").unwrap();
//! assert_eq!(store.count_customers(&guanxi_core::CustomerFilter::default()).unwrap(), 0);
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod aggregates;
mod backup;
mod commerce;
mod keys;
mod schema;

use std::cell::RefCell;
use std::sync::{Arc, Mutex, RwLock};

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row};

use guanxi_core::dedup::{MatchKeys, contact_match_keys, customer_match_keys, identifier_match_keys};
use guanxi_core::marketing::{Segment, SegmentContext};
use guanxi_core::{
    AccessModel, AuditStore, ChangeLogEntry, ChangeLogQuery, Changes, Contact, ContactId, CrmStore, CustomFieldDef,
    Customer, CustomerFilter, CustomerId, CustomerStore, EntityKind, Error, IdNumber, Interaction, Page, PageRequest,
    Phone, Result, Setting, StorageError, StoreView, StoreWrite, Tag, TagWrite, Write,
};
use guanxi_sql::{Dialect, FieldKey, FieldKeys, KEY_CHECK, SqlValue, custom_json, seal_match_key, ts};

const ACCESS_MODEL: &str = "access_model";

/// How often a batch is tried when the server reports a serialization failure or a deadlock.
const ATTEMPTS: u32 = 5;

/// Options for connecting.
///
/// ```
/// let o = guanxi_postgres::PgOptions::default();
/// assert_eq!((o.schema.as_str(), o.pool_size), ("guanxi", 4));
/// assert!(o.field_key.is_none());
/// ```
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// The schema (namespace) guanxi's tables live in; created if missing.
    pub schema: String,
    /// Idle connections kept open (more are opened while more threads work).
    pub pool_size: usize,
    /// Encrypts contacts and leads at rest under this key, with a keyed blind index for
    /// lookups (see the crate docs). A store that holds no key check yet is encrypted under it
    /// when opened; a different key than the stored one's is [`guanxi_core::EncryptionError::WrongKey`].
    pub field_key: Option<FieldKey>,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions { schema: "guanxi".into(), pool_size: 4, field_key: None }
    }
}

/// A guanxi store in a PostgreSQL database. `Send + Sync`: one handle serves every thread.
pub struct PgStore {
    params: String,
    options: PgOptions,
    idle: Mutex<Vec<Client>>,
    /// Fails the first attempt of each batch with a serialization failure (tests of the retry).
    inject_serialization_failure: bool,
    /// Transactions run again after a serialization failure or a deadlock.
    retries: std::sync::atomic::AtomicU64,
    /// Whether fields are encrypted, and the cipher; each view reads under the state it
    /// started with, and writes check it against the stored key check.
    keys: RwLock<Arc<FieldKeys>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("schema", &self.options.schema).finish_non_exhaustive()
    }
}

pub(crate) fn pg_err(e: postgres::Error) -> Error {
    Error::Storage(StorageError::with_source(format!("postgres: {e}"), e))
}

/// Whether an error says "run the transaction again" (SQLSTATE 40001 or 40P01).
fn retryable(e: &Error) -> bool {
    let Error::Storage(s) = e else { return false };
    let Some(source) = std::error::Error::source(s) else { return false };
    source.downcast_ref::<postgres::Error>().and_then(|e| e.code()).is_some_and(|c| {
        *c == postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
            || *c == postgres::error::SqlState::T_R_DEADLOCK_DETECTED
    })
}

fn injected_failure() -> Error {
    Error::Storage(StorageError::msg("postgres: injected serialization failure (SQLSTATE 40001)"))
}

impl PgStore {
    /// Connects with a libpq-style string (`host=… user=… dbname=…`) or a
    /// `postgresql://` URL, creating or migrating guanxi's tables in the default schema.
    pub fn connect(params: &str) -> Result<Self> {
        Self::connect_with(params, PgOptions::default())
    }

    /// Connects with explicit options. A `guanxi_schema=NAME` word in a libpq string (or a
    /// `guanxi_schema=NAME` query parameter in a URL) names the schema instead of
    /// `options.schema`, so one string can point every language's `open` at a tenant's schema.
    ///
    /// ```no_run
    /// let store = guanxi_postgres::PgStore::connect("host=/run/postgresql dbname=crm guanxi_schema=tenant_7").unwrap();
    /// ```
    pub fn connect_with(params: &str, mut options: PgOptions) -> Result<Self> {
        let (params, schema) = split_schema(params);
        if let Some(schema) = schema {
            options.schema = schema;
        }
        let store = PgStore {
            params,
            options,
            idle: Mutex::new(Vec::new()),
            inject_serialization_failure: false,
            retries: Default::default(),
            keys: RwLock::new(Arc::new(FieldKeys::default())),
        };
        store.with_client(|c| schema::migrate(c, &store.options.schema))?;
        store.open_keys()?;
        let keys = store.keys()?;
        store.with_client(|c| in_transaction(c, keys, |view| view.backfill_report_columns()))?;
        Ok(store)
    }

    /// This store, failing the first attempt of every batch with a serialization failure, as
    /// a SERIALIZABLE engine under contention would: for tests that the retry holds.
    pub fn with_injected_serialization_failures(mut self) -> Self {
        self.inject_serialization_failure = true;
        self
    }

    /// How many transactions were run again after a serialization failure or a deadlock.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Drops guanxi's schema and everything in it (for throw-away test databases).
    pub fn drop_schema(&self) -> Result<()> {
        let schema = schema::quoted(&self.options.schema)?;
        self.with_client(|c| c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).map_err(pg_err))
    }

    fn open(&self) -> Result<Client> {
        let mut client = Client::connect(&self.params, NoTls).map_err(pg_err)?;
        let schema = schema::quoted(&self.options.schema)?;
        client.batch_execute(&format!("SET search_path TO {schema}")).map_err(pg_err)?;
        Ok(client)
    }

    /// Runs `f` on a pooled connection. From inside a tokio runtime (where the client's own
    /// runtime would panic) it runs on a thread of its own.
    fn with_client<R: Send>(&self, f: impl FnOnce(&mut Client) -> Result<R> + Send) -> Result<R> {
        outside_runtime(|| {
            let mut client = self.checkout()?;
            let out = f(&mut client);
            self.checkin(client)?;
            out
        })
    }

    /// An idle pooled connection, or a new one.
    fn checkout(&self) -> Result<Client> {
        let pooled = self.idle.lock().map_err(|_| StorageError::msg("postgres pool lock poisoned"))?.pop();
        match pooled {
            Some(c) if !c.is_closed() => Ok(c),
            _ => self.open(),
        }
    }

    /// Returns a connection to the pool (or closes it when the pool is full).
    fn checkin(&self, client: Client) -> Result<()> {
        let mut idle = self.idle.lock().map_err(|_| StorageError::msg("postgres pool lock poisoned"))?;
        if idle.len() < self.options.pool_size && !client.is_closed() {
            idle.push(client);
        }
        Ok(())
    }
}

/// Takes guanxi's own `guanxi_schema` setting out of a connection string (libpq words, or a
/// URL's query), leaving what the server's client understands.
///
/// ```text
/// "host=db guanxi_schema=t1 dbname=crm"              → ("host=db dbname=crm", Some("t1"))
/// "postgresql://db/crm?guanxi_schema=t1&sslmode=off" → ("postgresql://db/crm?sslmode=off", Some("t1"))
/// ```
fn split_schema(params: &str) -> (String, Option<String>) {
    let trimmed = params.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        let Some((base, query)) = trimmed.split_once('?') else { return (trimmed.to_owned(), None) };
        let (kept, schema) = take_schema(query.split('&'));
        let params = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        return (params, schema);
    }
    let (kept, schema) = take_schema(trimmed.split_whitespace());
    (kept.join(" "), schema)
}

/// The `key=value` parts other than `guanxi_schema=`, and that one's value (the last given).
fn take_schema<'a>(parts: impl Iterator<Item = &'a str>) -> (Vec<&'a str>, Option<String>) {
    let mut schema = None;
    let kept = parts
        .filter(|part| match part.strip_prefix("guanxi_schema=") {
            Some(v) => {
                schema = Some(v.to_owned());
                false
            }
            None => true,
        })
        .collect();
    (kept, schema)
}

/// Runs `f` here, or, on a thread inside a tokio runtime (where the `postgres` client's own
/// runtime would panic), on a scoped thread of its own.
pub(crate) fn outside_runtime<R: Send>(f: impl FnOnce() -> Result<R> + Send) -> Result<R> {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(f).join().unwrap_or_else(|_| Err(StorageError::msg("postgres call panicked").into()))
        })
    } else {
        f()
    }
}

/// One transaction, or one plain connection for reads (a single-statement read needs no
/// BEGIN and COMMIT round trips): what every read runs on, and what a write session hands out.
struct View<'a> {
    tx: RefCell<Conn<'a>>,
    keys: Arc<FieldKeys>,
}

/// A client inside a transaction or not.
enum Conn<'a> {
    Tx(postgres::Transaction<'a>),
    Plain(&'a mut Client),
}

impl Conn<'_> {
    fn query(&mut self, sql: &str, values: &[&(dyn ToSql + Sync)]) -> std::result::Result<Vec<Row>, postgres::Error> {
        match self {
            Conn::Tx(t) => t.query(sql, values),
            Conn::Plain(c) => c.query(sql, values),
        }
    }

    fn execute(&mut self, sql: &str, values: &[&(dyn ToSql + Sync)]) -> std::result::Result<u64, postgres::Error> {
        match self {
            Conn::Tx(t) => t.execute(sql, values),
            Conn::Plain(c) => c.execute(sql, values),
        }
    }

    fn batch_execute(&mut self, sql: &str) -> std::result::Result<(), postgres::Error> {
        match self {
            Conn::Tx(t) => t.batch_execute(sql),
            Conn::Plain(c) => c.batch_execute(sql),
        }
    }
}

type Params = Vec<Box<dyn ToSql + Sync>>;

fn params(values: &[SqlValue]) -> Params {
    values
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v {
                SqlValue::Text(s) => Box::new(s.clone()),
                SqlValue::Integer(n) => Box::new(*n),
            }
        })
        .collect()
}

fn refs(p: &Params) -> Vec<&(dyn ToSql + Sync)> {
    p.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// What a sealed document is bound to: its table and row, so a ciphertext moved to another
/// row fails to decrypt instead of reading as that row.
pub(crate) fn sealed_context(table: &str, id: &str) -> String {
    format!("{table}.doc:{id}")
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T> {
    serde_json::from_str(json)
        .map_err(|e| StorageError::with_source(format!("stored {what} does not decode"), e).into())
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StorageError::with_source("record does not encode", e).into())
}

fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}

fn is_foreign_key_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
}

/// What a customer read selects from `customers c`: the document, the tags, and the
/// identifiers (sealed apart from the document).
const CUSTOMER_COLUMNS: &str =
    "c.doc, ARRAY(SELECT t.tag FROM customer_tags t WHERE t.customer_id = c.id ORDER BY t.tag), c.identifiers";

/// Where a customer's sealed identifiers are bound.
pub(crate) fn identifiers_context(id: CustomerId) -> String {
    format!("customers.identifiers:{id}")
}

impl View<'_> {
    fn query(&self, sql: &str, values: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.tx.borrow_mut().query(sql, values).map_err(pg_err)
    }

    fn execute(&self, sql: &str, values: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        self.tx.borrow_mut().execute(sql, values).map_err(pg_err)
    }

    fn customers_where(&self, cond: &str, value: &str) -> Result<Option<Customer>> {
        let rows = self.query(&format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE {cond} = $1"), &[&value])?;
        rows.first().map(|r| self.customer_of(r)).transpose()
    }

    /// A customer from a row of [`CUSTOMER_COLUMNS`]; its identifiers are opened with the
    /// view's keys.
    fn customer_of(&self, row: &Row) -> Result<Customer> {
        let mut c: Customer = decode("customer", row.get::<_, &str>(0))?;
        c.tags = row.get::<_, Vec<String>>(1).into_iter().collect();
        if let Some(stored) = row.get::<_, Option<&str>>(2) {
            c.identifiers = decode("customer identifiers", &self.keys.open(&identifiers_context(c.id), stored)?)?;
        }
        Ok(c)
    }

    /// A customer's identifiers as stored, sealed when the store encrypts (None when it has
    /// none), and the match keys of its name and identifiers (these sealed likewise).
    pub(crate) fn customer_columns(&self, c: &Customer) -> Result<(Option<String>, Vec<i64>)> {
        let names = customer_match_keys(c.kind, &c.name).into_iter().map(|k| k as i64);
        if c.identifiers.is_empty() {
            return Ok((None, names.collect()));
        }
        let cipher = self.keys.for_write()?;
        let sealed = self.keys.seal(&identifiers_context(c.id), &encode(&c.identifiers)?)?;
        let ids = identifier_match_keys(&c.identifiers).into_iter().map(|k| seal_match_key(k, cipher.as_deref()));
        Ok((Some(sealed), names.chain(ids).collect()))
    }

    fn contacts_sql(&self, cond: &str, value: &str) -> Result<Vec<Contact>> {
        let rows = self.query(&format!("SELECT c.id, c.doc FROM contacts c WHERE {cond}"), &[&value])?;
        rows.iter().map(|r| self.unseal("contacts", r)).collect()
    }

    /// A record of a sealed table (contacts, leads) from its `(id, doc)` row: the document is
    /// encrypted under the row's table and id when the store encrypts.
    pub(crate) fn unseal<T: serde::de::DeserializeOwned>(&self, table: &str, row: &Row) -> Result<T> {
        let (id, doc): (&str, &str) = (row.get(0), row.get(1));
        decode(table, &self.keys.open(&sealed_context(table, id), doc)?)
    }

    /// Checks, under a shared lock on the stored key check, that this view writes sensitive
    /// fields under the key the store is encrypted with (another handle may have encrypted
    /// the store or rotated its key since this one opened).
    fn check_field_key(&self) -> Result<()> {
        let rows = self.query("SELECT value FROM settings WHERE key = $1 FOR SHARE", &[&KEY_CHECK])?;
        let stored = rows.first().map(|r| r.get::<_, String>(0)).filter(|v| !v.is_empty());
        match (stored, self.keys.cipher.as_deref()) {
            (None, None) => Ok(()),
            (Some(_), None) => Err(Error::Encryption(guanxi_core::EncryptionError::KeyRequired)),
            (Some(check), Some(c)) if check == c.key_check() => Ok(()),
            _ => Err(Error::Encryption(guanxi_core::EncryptionError::WrongKey)),
        }
    }

    /// A versioned write: inserts, or updates the row whose version is the expected one.
    fn missed(&self, table: &str, entity: EntityKind, id: &str, expected: u64) -> Error {
        match self.query(&format!("SELECT version FROM {table} WHERE id = $1"), &[&id]) {
            Ok(rows) => match rows.first() {
                Some(r) => Error::Conflict {
                    entity,
                    id: id.to_owned(),
                    expected,
                    actual: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
                },
                None => Error::not_found(entity, id),
            },
            Err(e) => e,
        }
    }

    fn replace_match_keys(&self, source: &str, customer: CustomerId, mut keys: Vec<i64>) -> Result<()> {
        self.execute("DELETE FROM match_keys WHERE source = $1", &[&source])?;
        let customer = customer.to_string();
        keys.sort_unstable();
        keys.dedup();
        if !keys.is_empty() {
            self.execute(
                "INSERT INTO match_keys (key, customer_id, source) SELECT k, $2, $3 FROM unnest($1::bigint[]) k",
                &[&keys, &customer, &source],
            )?;
        }
        Ok(())
    }

    fn index_contact(&self, c: &Contact) -> Result<()> {
        let id = c.id.to_string();
        self.execute("DELETE FROM contact_lookup WHERE contact_id = $1", &[&id])?;
        let lookups =
            c.phones.iter().map(|p| ("phone", p.as_str())).chain(c.id_number.iter().map(|n| ("id_number", n.as_str())));
        for (kind, value) in lookups {
            self.execute(
                "INSERT INTO contact_lookup (kind, digest, contact_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&kind, &self.keys.digest(value)?, &id],
            )?;
        }
        let cipher = self.keys.for_write()?;
        let keys = if c.deleted_at.is_none() { contact_match_keys(&c.phones, &c.emails) } else { Vec::new() };
        let sealed = keys.into_iter().map(|k| seal_match_key(k, cipher.as_deref())).collect();
        self.replace_match_keys(&id, c.customer_id, sealed)
    }

    fn write_customer(&self, w: &Write<Customer>) -> Result<()> {
        let c = w.record();
        let region = c.region.as_ref();
        // The identifiers are kept beside the document, sealed when the store encrypts.
        let doc = if c.identifiers.is_empty() {
            encode(c)?
        } else {
            encode(&Customer { identifiers: Vec::new(), ..c.clone() })?
        };
        let (identifiers, keys) = self.customer_columns(c)?;
        let (id, version) = (c.id.to_string(), c.version as i64);
        let values: [&(dyn ToSql + Sync); 15] = [
            &id,
            &c.code,
            &c.name,
            &c.kind.as_str(),
            &c.status.as_str(),
            &c.level.map(|l| l.as_str()),
            &c.industry.map(|i| i.as_str()),
            &c.size.map(|s| s.as_str()),
            &c.owner.as_ref().map(|o| o.as_str()),
            &c.department.as_ref().map(|d| d.as_str()),
            &region.map(|r| r.province.as_str()),
            &region.map(|r| r.city.as_str()).filter(|s| !s.is_empty()),
            &region.map(|r| r.district.as_str()).filter(|s| !s.is_empty()),
            &c.deleted_at.map(ts),
            &version,
        ];
        let custom = custom_json(&c.custom);
        let created_by = c.created_by.as_str();
        let mut all: Vec<&(dyn ToSql + Sync)> = values.to_vec();
        all.extend([&custom as &(dyn ToSql + Sync), &created_by, &doc, &identifiers]);
        let on_unique = |e: postgres::Error| {
            if is_unique_violation(&e) {
                let on_code = e.as_db_error().and_then(|d| d.constraint()).is_some_and(|k| k.contains("code"));
                let (field, value) = if on_code { ("code", c.code.clone()) } else { ("id", id.clone()) };
                Error::Duplicate { entity: EntityKind::Customer, field: field.into(), value }
            } else {
                pg_err(e)
            }
        };
        match w {
            Write::Insert(_) => {
                self.tx
                    .borrow_mut()
                    .execute(
                        "INSERT INTO customers (id, code, name, kind, status, level, industry, size, owner, department, \
                         province, city, district, deleted_at, version, custom, created_by, doc, identifiers) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
                        &all,
                    )
                    .map_err(on_unique)?;
                for t in &c.tags {
                    self.tx
                        .borrow_mut()
                        .execute("INSERT INTO customer_tags (customer_id, tag) VALUES ($1, $2)", &[&id, t])
                        .map_err(|e| {
                            if is_foreign_key_violation(&e) { Error::not_found(EntityKind::Tag, t) } else { pg_err(e) }
                        })?;
                }
            }
            Write::Update { expected_version, .. } => {
                let expected = *expected_version as i64;
                all.push(&expected);
                let n = self
                    .tx
                    .borrow_mut()
                    .execute(
                        "UPDATE customers SET code = $2, name = $3, kind = $4, status = $5, level = $6, industry = $7, \
                         size = $8, owner = $9, department = $10, province = $11, city = $12, district = $13, \
                         deleted_at = $14, version = $15, custom = $16, created_by = $17, doc = $18, identifiers = $19 \
                         WHERE id = $1 AND version = $20",
                        &all,
                    )
                    .map_err(on_unique)?;
                if n == 0 {
                    return Err(self.missed("customers", EntityKind::Customer, &id, *expected_version));
                }
            }
        }
        self.replace_match_keys(&id, c.id, keys)
    }

    fn write_contact(&self, w: &Write<Contact>) -> Result<()> {
        let c = w.record();
        let id = c.id.to_string();
        let doc = self.keys.seal(&sealed_context("contacts", &id), &encode(c)?)?;
        let (customer, version) = (c.customer_id.to_string(), c.version as i64);
        let deleted = c.deleted_at.map(ts);
        let on_error = |e: postgres::Error| {
            if is_foreign_key_violation(&e) {
                Error::not_found(EntityKind::Customer, c.customer_id)
            } else if is_unique_violation(&e) {
                Error::Duplicate { entity: EntityKind::Contact, field: "id".into(), value: id.clone() }
            } else {
                pg_err(e)
            }
        };
        match w {
            Write::Insert(_) => {
                self.tx
                    .borrow_mut()
                    .execute(
                        "INSERT INTO contacts (id, customer_id, is_primary, deleted_at, version, doc) VALUES ($1, $2, $3, $4, $5, $6)",
                        &[&id, &customer, &c.primary, &deleted, &version, &doc],
                    )
                    .map_err(on_error)?;
            }
            Write::Update { expected_version, .. } => {
                let expected = *expected_version as i64;
                let n = self
                    .tx
                    .borrow_mut()
                    .execute(
                        "UPDATE contacts SET customer_id = $2, is_primary = $3, deleted_at = $4, version = $5, doc = $6 \
                         WHERE id = $1 AND version = $7",
                        &[&id, &customer, &c.primary, &deleted, &version, &doc, &expected],
                    )
                    .map_err(on_error)?;
                if n == 0 {
                    return Err(self.missed("contacts", EntityKind::Contact, &id, *expected_version));
                }
            }
        }
        self.index_contact(c)
    }

    fn require(&self, sql: &str, key: &str, entity: EntityKind) -> Result<()> {
        if self.query(sql, &[&key])?.is_empty() { Err(Error::not_found(entity, key)) } else { Ok(()) }
    }

    /// Applies one batch inside the open transaction.
    fn apply_batch(&self, changes: &Changes) -> Result<()> {
        if !changes.contacts.is_empty() || !changes.leads.is_empty() {
            self.check_field_key()?;
        }
        for t in &changes.tags {
            let (sql, tag) = match t {
                TagWrite::Ensure(tag) => (
                    "INSERT INTO tags (name, group_name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                    tag,
                ),
                TagWrite::Put(tag) => (
                    "INSERT INTO tags (name, group_name, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET group_name = excluded.group_name",
                    tag,
                ),
            };
            self.execute(sql, &[&tag.name, &tag.group, &tag.created_at.map(ts)])?;
        }
        for w in &changes.customers {
            self.write_customer(w)?;
        }
        for w in &changes.contacts {
            self.write_contact(w)?;
        }
        for link in &changes.tag_links {
            self.require("SELECT 1 FROM tags WHERE name = $1", &link.tag, EntityKind::Tag)?;
            let customer = link.customer.to_string();
            self.require("SELECT 1 FROM customers WHERE id = $1", &customer, EntityKind::Customer)?;
            let sql = if link.linked {
                "INSERT INTO customer_tags (customer_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM customer_tags WHERE customer_id = $1 AND tag = $2"
            };
            self.execute(sql, &[&customer, &link.tag])?;
        }
        for i in &changes.interactions {
            let (id, customer) = (i.id.to_string(), i.customer_id.to_string());
            self.require("SELECT 1 FROM customers WHERE id = $1", &customer, EntityKind::Customer)?;
            if let Some(c) = i.contact_id {
                self.require("SELECT 1 FROM contacts WHERE id = $1", &c.to_string(), EntityKind::Contact)?;
            }
            self.tx
                .borrow_mut()
                .execute(
                    "INSERT INTO interactions (id, customer_id, at, doc) VALUES ($1, $2, $3, $4)",
                    &[&id, &customer, &ts(i.at), &encode(i)?],
                )
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        Error::Duplicate { entity: EntityKind::Interaction, field: "id".into(), value: id.clone() }
                    } else {
                        pg_err(e)
                    }
                })?;
        }
        if let Some(before) = changes.purge_events_before {
            self.execute("DELETE FROM events WHERE at < $1", &[&ts(before)])?;
        }
        // Each customer checked once a batch (a batch holds many events of one customer).
        let mut checked = std::collections::HashSet::new();
        for e in &changes.events {
            let (id, customer) = (e.id.to_string(), e.customer_id.to_string());
            if checked.insert(e.customer_id) {
                self.require("SELECT 1 FROM customers WHERE id = $1", &customer, EntityKind::Customer)?;
            }
            // An external id already stored (or earlier in the batch) leaves the event out.
            self.execute(
                "INSERT INTO events (id, customer_id, at, external_id, name, doc) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (external_id) DO NOTHING",
                &[&id, &customer, &ts(e.at), &e.external_id, &e.name, &encode(e)?],
            )?;
        }
        for m in &changes.event_moves {
            let (id, from, to) = (m.id.to_string(), m.from.to_string(), m.to.to_string());
            self.require("SELECT 1 FROM customers WHERE id = $1", &to, EntityKind::Customer)?;
            let rows = self.query("SELECT doc FROM events WHERE id = $1 AND customer_id = $2", &[&id, &from])?;
            let Some(row) = rows.first() else {
                return Err(Error::not_found(EntityKind::Customer, format!("event {}", m.id)));
            };
            let mut moved: guanxi_core::marketing::BehaviourEvent = decode("event", row.get::<_, &str>(0))?;
            moved.customer_id = m.to;
            self.execute("UPDATE events SET customer_id = $2, doc = $3 WHERE id = $1", &[&id, &to, &encode(&moved)?])?;
        }
        for m in &changes.memberships {
            self.apply_membership(m)?;
        }
        for m in &changes.interaction_moves {
            let (id, from, to) = (m.id.to_string(), m.from.to_string(), m.to.to_string());
            self.require("SELECT 1 FROM customers WHERE id = $1", &to, EntityKind::Customer)?;
            let rows = self.query("SELECT doc FROM interactions WHERE id = $1 AND customer_id = $2", &[&id, &from])?;
            let Some(row) = rows.first() else { return Err(Error::not_found(EntityKind::Interaction, m.id)) };
            let mut moved: Interaction = decode("interaction", row.get::<_, &str>(0))?;
            moved.customer_id = m.to;
            self.execute(
                "UPDATE interactions SET customer_id = $2, doc = $3 WHERE id = $1",
                &[&id, &to, &encode(&moved)?],
            )?;
        }
        for d in &changes.custom_fields {
            self.tx
                .borrow_mut()
                .execute(
                    "INSERT INTO custom_fields (entity, key, doc) VALUES ($1, $2, $3)",
                    &[&d.entity.as_str(), &d.key, &encode(d)?],
                )
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        Error::Duplicate { entity: EntityKind::CustomField, field: "key".into(), value: d.key.clone() }
                    } else {
                        pg_err(e)
                    }
                })?;
        }
        if let Some(w) = &changes.access {
            let model = Setting { key: ACCESS_MODEL.into(), value: encode(w.record())?, version: w.record().version };
            let as_setting = match w {
                Write::Insert(_) => Write::Insert(model),
                Write::Update { expected_version, .. } => {
                    Write::Update { record: model, expected_version: *expected_version }
                }
            };
            self.write_setting(&as_setting, (EntityKind::Role, "access model", ""))?;
        }
        for w in &changes.settings {
            self.write_setting(w, (EntityKind::Pipeline, "id", &w.record().key))?;
        }
        self.apply_aggregates(changes)?;
        if !changes.change_log.is_empty() {
            // The chain head is one row, locked: concurrent writers chain one after another.
            let head = self.query("SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE", &[])?;
            let (seq, hash) =
                head.first().map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1))).unwrap_or((0, String::new()));
            let mut entries = changes.change_log.clone();
            let prev = (seq > 0).then(|| (u64::try_from(seq).unwrap_or(0), hash.as_str()));
            guanxi_core::changelog::chain_entries(prev, entries.iter_mut())?;
            for e in &entries {
                let customer = e.customer_id.map(|c| c.to_string());
                self.execute(
                    "INSERT INTO change_log (seq, at, actor, entity_id, customer_id, doc) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[&(e.seq as i64), &ts(e.at), &e.actor.as_str(), &e.entity_id, &customer, &encode(e)?],
                )?;
            }
            if let Some(last) = entries.last() {
                self.execute(
                    "UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1",
                    &[&(last.seq as i64), &last.hash],
                )?;
            }
        }
        Ok(())
    }

    /// A versioned settings row; `(entity, field, value)` name it in a duplicate error as
    /// SQLite does.
    fn write_setting(&self, w: &Write<Setting>, (entity, field, value): (EntityKind, &str, &str)) -> Result<()> {
        let s = w.record();
        let id = if field == "id" { value } else { field };
        let version = s.version as i64;
        let n = match w {
            Write::Insert(_) => self
                .tx
                .borrow_mut()
                .execute(
                    "INSERT INTO settings (key, value, version) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&s.key, &s.value, &version],
                )
                .map_err(pg_err)?,
            Write::Update { expected_version, .. } => self.execute(
                "UPDATE settings SET value = $2, version = $3 WHERE key = $1 AND version = $4",
                &[&s.key, &s.value, &version, &(*expected_version as i64)],
            )?,
        };
        if n == 1 {
            return Ok(());
        }
        let stored = self.query("SELECT version FROM settings WHERE key = $1", &[&s.key])?;
        Err(match (w, stored.first()) {
            (Write::Insert(_), Some(_)) => Error::Duplicate { entity, field: field.into(), value: value.to_owned() },
            (Write::Update { expected_version, .. }, Some(r)) => Error::Conflict {
                entity,
                id: id.to_owned(),
                expected: *expected_version,
                actual: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
            },
            (_, None) => Error::not_found(entity, id),
        })
    }
}

/// Runs `f` in a transaction on `client`: committed when it returns `Ok`.
fn in_transaction<R>(client: &mut Client, keys: Arc<FieldKeys>, f: impl FnOnce(&View<'_>) -> Result<R>) -> Result<R> {
    let tx = client.transaction().map_err(pg_err)?;
    let view = View { tx: RefCell::new(Conn::Tx(tx)), keys };
    let out = f(&view)?;
    if let Conn::Tx(tx) = view.tx.into_inner() {
        tx.commit().map_err(pg_err)?;
    }
    Ok(out)
}

impl StoreWrite for View<'_> {
    fn apply(&self, changes: &Changes) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        // A savepoint per batch: a failed one leaves the session as it was before it.
        self.tx.borrow_mut().batch_execute("SAVEPOINT batch").map_err(pg_err)?;
        match self.apply_batch(changes) {
            Ok(()) => self.tx.borrow_mut().batch_execute("RELEASE SAVEPOINT batch").map_err(pg_err),
            Err(e) => {
                self.tx
                    .borrow_mut()
                    .batch_execute("ROLLBACK TO SAVEPOINT batch; RELEASE SAVEPOINT batch")
                    .map_err(pg_err)?;
                Err(e)
            }
        }
    }

    fn reserve_sequence(&self, key: &str, count: u64) -> Result<u64> {
        let count = count.max(1) as i64;
        let rows = self.query(
            "INSERT INTO sequences (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = sequences.value + excluded.value RETURNING value",
            &[&key, &count],
        )?;
        let last: i64 = rows.first().map(|r| r.get(0)).unwrap_or(count);
        Ok(u64::try_from(last - count + 1).unwrap_or(1))
    }
}

impl View<'_> {
    /// One page of the customers a query selects, in its order.
    fn customer_page(&self, q: &guanxi_sql::Query, page: &PageRequest) -> Result<Page<Customer>> {
        let sql =
            format!("{} ORDER BY {} LIMIT {}", q.select(CUSTOMER_COLUMNS), q.order_key, page.limit.saturating_add(1));
        let p = params(&q.params);
        let rows = self.query(&sql, &refs(&p))?;
        let customers = rows.iter().map(|r| self.customer_of(r)).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(customers, page.limit, |c| c.id.0))
    }

    /// How many rows a customer query selects.
    fn count_rows(&self, q: &guanxi_sql::Query) -> Result<u64> {
        let p = params(&q.params);
        let rows = self.query(&q.count(), &refs(&p))?;
        Ok(rows.first().map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }
}

impl CustomerStore for View<'_> {
    fn customer(&self, id: CustomerId) -> Result<Option<Customer>> {
        self.customers_where("c.id", &id.to_string())
    }

    fn customer_by_code(&self, code: &str) -> Result<Option<Customer>> {
        self.customers_where("c.code", code)
    }

    fn list_customers(&self, filter: &CustomerFilter, page: &PageRequest) -> Result<Page<Customer>> {
        page.check()?;
        let q = guanxi_sql::customer_query(Dialect::Postgres, filter, page.after.map(|c| c.last_id()), true);
        self.customer_page(&q, page)
    }

    fn segment_members(
        &self,
        filter: &CustomerFilter,
        segment: &Segment,
        ctx: &SegmentContext,
        page: &PageRequest,
    ) -> Result<Page<Customer>> {
        page.check()?;
        let after = page.after.map(|c| c.last_id());
        self.customer_page(&guanxi_sql::segment_query(Dialect::Postgres, filter, segment, ctx, after, true), page)
    }

    fn count_segment_members(&self, filter: &CustomerFilter, segment: &Segment, ctx: &SegmentContext) -> Result<u64> {
        self.count_rows(&guanxi_sql::segment_query(Dialect::Postgres, filter, segment, ctx, None, false))
    }

    fn scan_customers(&self, filter: &CustomerFilter, visit: &mut guanxi_core::scan::CustomerVisit<'_>) -> Result<u64> {
        guanxi_core::scan::scan_customers_by_pages(self, filter, visit)
    }

    fn count_customers(&self, filter: &CustomerFilter) -> Result<u64> {
        self.count_rows(&guanxi_sql::customer_query(Dialect::Postgres, filter, None, false))
    }

    fn contact(&self, id: ContactId) -> Result<Option<Contact>> {
        Ok(self.contacts_sql("c.id = $1", &id.to_string())?.pop())
    }

    fn contacts_of(&self, customer: CustomerId) -> Result<Vec<Contact>> {
        self.contacts_sql(
            "c.customer_id = $1 AND c.deleted_at IS NULL ORDER BY c.is_primary DESC, c.id",
            &customer.to_string(),
        )
    }

    fn contacts_by_phone(&self, phone: &Phone) -> Result<Vec<Contact>> {
        let cond = "c.deleted_at IS NULL AND c.id IN (SELECT contact_id FROM contact_lookup WHERE kind = 'phone' AND digest = $1) ORDER BY c.id";
        self.contacts_sql(cond, &self.keys.digest(phone.as_str())?)
    }

    fn contacts_by_id_number(&self, id_number: &IdNumber) -> Result<Vec<Contact>> {
        let cond = "c.deleted_at IS NULL AND c.id IN (SELECT contact_id FROM contact_lookup WHERE kind = 'id_number' AND digest = $1) ORDER BY c.id";
        self.contacts_sql(cond, &self.keys.digest(id_number.as_str())?)
    }

    fn customers_by_match_keys(&self, keys: &MatchKeys, max_block: usize) -> Result<Vec<CustomerId>> {
        let mut found = std::collections::BTreeSet::new();
        let limit = max_block as i64 + 1;
        // Contact keys are stored sealed under the blind-index key when contacts are encrypted.
        let cipher = if keys.contacts.is_empty() { None } else { self.keys.for_write()? };
        let sealed = keys.contacts.iter().map(|&k| seal_match_key(k, cipher.as_deref()));
        for key in keys.names.iter().map(|&k| k as i64).chain(sealed) {
            let rows = self.query(
                "SELECT DISTINCT m.customer_id FROM match_keys m JOIN customers c ON c.id = m.customer_id \
                 WHERE m.key = $1 AND c.deleted_at IS NULL LIMIT $2",
                &[&key, &limit],
            )?;
            if rows.len() <= max_block {
                for r in rows {
                    let id: &str = r.get(0);
                    found.insert(
                        id.parse::<CustomerId>()
                            .map_err(|e| StorageError::with_source("bad customer id in match_keys", e))?,
                    );
                }
            }
        }
        Ok(found.into_iter().collect())
    }

    fn tag(&self, name: &str) -> Result<Option<Tag>> {
        Ok(self.tags_where("WHERE name = $1", &[&name])?.pop())
    }

    fn tags(&self) -> Result<Vec<Tag>> {
        // NULLS FIRST: ungrouped first, as SQLite orders NULL.
        self.tags_where("ORDER BY group_name NULLS FIRST, name", &[])
    }

    fn interactions_of(&self, customer: CustomerId) -> Result<Vec<Interaction>> {
        let rows = self
            .query("SELECT doc FROM interactions WHERE customer_id = $1 ORDER BY at, id", &[&customer.to_string()])?;
        rows.iter().map(|r| decode("interaction", r.get::<_, &str>(0))).collect()
    }

    fn custom_fields(&self, entity: EntityKind) -> Result<Vec<CustomFieldDef>> {
        let rows = self.query("SELECT doc FROM custom_fields WHERE entity = $1 ORDER BY key", &[&entity.as_str()])?;
        rows.iter().map(|r| decode("custom field", r.get::<_, &str>(0))).collect()
    }

    fn all_contacts(&self, page: &PageRequest) -> Result<Page<Contact>> {
        self.page_by_id("contacts", page, |c: &Contact| c.id.0)
    }

    fn all_interactions(&self, page: &PageRequest) -> Result<Page<Interaction>> {
        self.page_by_id("interactions", page, |i: &Interaction| i.id.0)
    }

    fn events_of(
        &self,
        customer: CustomerId,
        range: &guanxi_core::marketing::EventRange,
        page: &PageRequest,
    ) -> Result<Page<guanxi_core::marketing::BehaviourEvent>> {
        page.check()?;
        let (after, from, to, limit) = guanxi_sql::event_page(range, page);
        let rows = self.query(
            "SELECT doc FROM events WHERE customer_id = $1 AND id > $2 \
             AND ($3::text IS NULL OR at >= $3) AND ($4::text IS NULL OR at < $4) ORDER BY id LIMIT $5",
            &[&customer.to_string(), &after, &from, &to, &limit],
        )?;
        let events = rows.iter().map(|r| decode("event", r.get::<_, &str>(0))).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(events, page.limit, |e: &guanxi_core::marketing::BehaviourEvent| e.id.0))
    }

    fn count_events_before(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64> {
        let rows = self.query("SELECT count(*) FROM events WHERE at < $1", &[&ts(before)])?;
        Ok(rows.first().map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
    }

    fn segment_memberships(
        &self,
        query: &guanxi_core::marketing::MembershipQuery,
        page: &PageRequest,
    ) -> Result<Page<guanxi_core::marketing::SegmentMembership>> {
        page.check()?;
        let (after, limit) = guanxi_sql::id_page(page);
        let rows = self.query(
            "SELECT doc FROM segment_memberships WHERE segment = $1 AND id > $2 \
             AND ($3::text IS NULL OR customer_id = $3) AND (NOT $4 OR open) ORDER BY id LIMIT $5",
            &[&query.segment, &after, &query.customer.map(|c| c.to_string()), &query.current_only, &limit],
        )?;
        let stays = rows.iter().map(|r| decode("membership", r.get::<_, &str>(0))).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(stays, page.limit, |m: &guanxi_core::marketing::SegmentMembership| m.id))
    }

    fn open_memberships(
        &self,
        segment: &str,
        customers: &[CustomerId],
    ) -> Result<Vec<guanxi_core::marketing::SegmentMembership>> {
        let ids: Vec<String> = customers.iter().map(ToString::to_string).collect();
        let rows = self.query(
            "SELECT doc FROM segment_memberships WHERE segment = $1 AND customer_id = ANY($2) AND open",
            &[&segment, &ids],
        )?;
        rows.iter().map(|r| decode("membership", r.get::<_, &str>(0))).collect()
    }

    fn stored_external_ids(&self, ids: &[String]) -> Result<Vec<String>> {
        let rows = self.query("SELECT external_id FROM events WHERE external_id = ANY($1)", &[&ids])?;
        Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
    }
}

impl View<'_> {
    /// Begins or ends a stay in a saved segment.
    fn apply_membership(&self, m: &guanxi_core::marketing::MembershipChange) -> Result<()> {
        use guanxi_core::marketing::{MembershipChange, SegmentMembership};
        match m {
            MembershipChange::Enter(stay) => {
                let (id, customer) = (stay.id.to_string(), stay.customer_id.to_string());
                self.tx
                    .borrow_mut()
                    .execute(
                        "INSERT INTO segment_memberships (id, segment, customer_id, open, doc) VALUES ($1, $2, $3, $4, $5)",
                        &[&id, &stay.segment, &customer, &stay.exited_at.is_none(), &encode(stay)?],
                    )
                    .map_err(|e| {
                        if is_unique_violation(&e) {
                            let value = format!("{} {}", stay.segment, stay.customer_id);
                            Error::Duplicate { entity: EntityKind::Segment, field: "membership".into(), value }
                        } else {
                            pg_err(e)
                        }
                    })?;
            }
            MembershipChange::Exit { segment, customer, at, reason } => {
                let customer = customer.to_string();
                let rows = self.query(
                    "SELECT doc FROM segment_memberships WHERE segment = $1 AND customer_id = $2 AND open",
                    &[segment, &customer],
                )?;
                if let Some(row) = rows.first() {
                    let mut stay: SegmentMembership = decode("membership", row.get::<_, &str>(0))?;
                    stay.exited_at = Some(*at);
                    stay.exited_because = Some(*reason);
                    self.execute(
                        "UPDATE segment_memberships SET open = false, doc = $2 WHERE id = $1",
                        &[&stay.id.to_string(), &encode(&stay)?],
                    )?;
                }
            }
        }
        Ok(())
    }

    /// One page of a whole table of documents (sealed or not), in id order.
    pub(crate) fn page_by_id<T: serde::de::DeserializeOwned>(
        &self,
        table: &str,
        page: &PageRequest,
        id_of: impl Fn(&T) -> uuid::Uuid,
    ) -> Result<Page<T>> {
        page.check()?;
        let after = page.after.map(|c| c.last_id().to_string()).unwrap_or_default();
        let limit = i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX);
        let rows =
            self.query(&format!("SELECT id, doc FROM {table} WHERE id > $1 ORDER BY id LIMIT $2"), &[&after, &limit])?;
        let items = rows.iter().map(|r| self.unseal(table, r)).collect::<Result<Vec<T>>>()?;
        Ok(Page::from_overfetch(items, page.limit, id_of))
    }
}

impl View<'_> {
    fn tags_where(&self, clause: &str, values: &[&(dyn ToSql + Sync)]) -> Result<Vec<Tag>> {
        let rows = self.query(&format!("SELECT name, group_name, created_at FROM tags {clause}"), values)?;
        rows.iter()
            .map(|r| {
                let at: Option<&str> = r.get(2);
                let created_at = at
                    .map(|s| chrono::DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&chrono::Utc)))
                    .transpose()
                    .map_err(|e| StorageError::with_source("stored tag instant does not decode", e))?;
                Ok(Tag { name: r.get(0), group: r.get(1), created_at })
            })
            .collect()
    }
}

impl AuditStore for View<'_> {
    fn change_log(&self, q: &ChangeLogQuery) -> Result<Vec<ChangeLogEntry>> {
        let (where_sql, values) = guanxi_sql::change_log_where(Dialect::Postgres, q);
        let limit = q.limit.map_or_else(|| "ALL".to_owned(), |l| l.to_string());
        let p = params(&values);
        let rows =
            self.query(&format!("SELECT doc FROM change_log WHERE {where_sql} ORDER BY seq LIMIT {limit}"), &refs(&p))?;
        rows.iter().map(|r| decode("change-log entry", r.get::<_, &str>(0))).collect()
    }

    fn verify_change_log(&self) -> Result<guanxi_core::AuditCheck> {
        // Entries are `jsonb` documents here (keys reordered): decoded and re-hashed a page at a time.
        guanxi_core::changelog::verify_pages(|after_seq, limit| {
            self.change_log(&ChangeLogQuery { after_seq, limit: Some(limit), ..Default::default() })
        })
    }

    fn setting(&self, key: &str) -> Result<Option<Setting>> {
        let rows = self.query("SELECT key, value, version FROM settings WHERE key = $1", &[&key])?;
        Ok(rows.first().map(setting_of))
    }

    fn access_model(&self) -> Result<Option<Arc<AccessModel>>> {
        self.setting(ACCESS_MODEL)?.map(|s| decode::<AccessModel>("access model", &s.value).map(Arc::new)).transpose()
    }

    fn settings(&self) -> Result<Vec<Setting>> {
        let rows = self.query(
            "SELECT key, value, version FROM settings WHERE key NOT IN ($1, $2) ORDER BY key",
            &[&ACCESS_MODEL, &KEY_CHECK],
        )?;
        Ok(rows.iter().map(setting_of).collect())
    }

    fn settings_under(&self, prefix: &str) -> Result<Vec<Setting>> {
        // Keys sort bytewise (COLLATE "C"): those starting with the prefix lie between it and
        // it followed by the last character there is.
        let upper = format!("{prefix}\u{10FFFF}");
        let rows = self.query(
            "SELECT key, value, version FROM settings WHERE key >= $1 AND key < $2 ORDER BY key",
            &[&prefix, &upper],
        )?;
        Ok(rows.iter().map(setting_of).collect())
    }

    fn sequences(&self) -> Result<Vec<(String, u64)>> {
        let rows = self.query("SELECT key, value FROM sequences ORDER BY key", &[])?;
        Ok(rows.iter().map(|r| (r.get(0), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0))).collect())
    }
}

/// A setting from a `key, value, version` row.
fn setting_of(r: &Row) -> Setting {
    Setting { key: r.get(0), value: r.get(1), version: u64::try_from(r.get::<_, i64>(2)).unwrap_or(0) }
}

impl guanxi_core::ReadThrough for PgStore {
    fn read_through<R: Send>(&self, read: impl FnOnce(&dyn guanxi_core::StoreReads) -> Result<R> + Send) -> Result<R> {
        // Outside a transaction: each statement reads the last commit.
        // The key state is held shared for the whole read: a rotation waits for it, so it
        // never decodes rows re-sealed under a key it does not hold.
        let held = self.keys_held()?;
        let keys = held.clone();
        self.with_client(|c| read(&View { tx: RefCell::new(Conn::Plain(c)), keys }))
    }
}

impl StoreWrite for PgStore {
    fn apply(&self, changes: &Changes) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.retrying(|view| view.apply_batch(changes))
    }

    fn reserve_sequence(&self, key: &str, count: u64) -> Result<u64> {
        self.retrying(|view| view.reserve_sequence(key, count))
    }
}

impl PgStore {
    /// Runs a write transaction, again when the server asks for it (SQLSTATE 40001 / 40P01),
    /// at most [`ATTEMPTS`] times.
    fn retrying<R: Send>(&self, f: impl Fn(&View<'_>) -> Result<R> + Sync) -> Result<R> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let inject = self.inject_serialization_failure && attempt == 1;
            // Held shared for the attempt, as a read holds it.
            let held = self.keys_held()?;
            let keys = held.clone();
            let out = self.with_client(|c| {
                in_transaction(c, keys, |view| {
                    let r = f(view)?;
                    // The failure comes after the writes, as a conflicting commit would: the
                    // transaction rolls back and the batch runs again.
                    if inject { Err(injected_failure()) } else { Ok(r) }
                })
            });
            match out {
                Err(e) if attempt < ATTEMPTS && (retryable(&e) || (inject && is_injected(&e))) => {
                    self.retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::debug!(attempt, "postgres transaction retried: {e}");
                }
                other => return other,
            }
        }
    }
}

fn is_injected(e: &Error) -> bool {
    matches!(e, Error::Storage(s) if s.to_string().contains("injected serialization failure"))
}

impl CrmStore for PgStore {
    fn write_session(&self, work: &mut dyn FnMut(&dyn StoreView) -> Result<()>) -> Result<()> {
        // A session is not retried: its work may have effects outside the store. Its client
        // calls run on this thread, which therefore must not be inside a tokio runtime.
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::InvalidState(
                "a PostgreSQL write session cannot run on a thread inside a tokio runtime: use spawn_blocking".into(),
            ));
        }
        let mut client = self.checkout()?;
        let out = in_transaction(&mut client, self.keys()?, |view| work(view));
        self.checkin(client)?;
        out
    }

    fn backup_to(&self, dest: &std::path::Path) -> Result<()> {
        self.backup_into_file(dest)
    }

    fn open_backup(&self, path: &std::path::Path) -> Result<Box<dyn CrmStore>> {
        Ok(Box::new(guanxi_sqlite::SqliteStore::open_read_only_with_key(path, self.keys()?.key.as_ref())?))
    }

    fn rotate_field_key(&self, new_key: &[u8]) -> Result<u64> {
        self.rotate_key(&FieldKey::from_bytes(new_key)?)
    }

    fn field_key_fingerprint(&self) -> Result<Option<String>> {
        Ok(self.keys()?.fingerprint.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::split_schema;

    #[test]
    fn the_schema_word_is_taken_out_of_connection_strings() {
        assert_eq!(
            split_schema("host=db guanxi_schema=t1 dbname=crm"),
            ("host=db dbname=crm".into(), Some("t1".into()))
        );
        assert_eq!(split_schema("host=db dbname=crm"), ("host=db dbname=crm".into(), None));
        assert_eq!(
            split_schema("postgresql://db/crm?guanxi_schema=t1&sslmode=disable"),
            ("postgresql://db/crm?sslmode=disable".into(), Some("t1".into()))
        );
        assert_eq!(split_schema("postgres://db/crm?guanxi_schema=t1"), ("postgres://db/crm".into(), Some("t1".into())));
        assert_eq!(split_schema("postgres://db/crm"), ("postgres://db/crm".into(), None));
    }
}
