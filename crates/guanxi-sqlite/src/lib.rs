//! # guanxi-sqlite
//!
//! The embedded default storage backend of guanxi: SQLite (bundled) through rusqlite, in WAL
//! mode, with versioned migrations and one transaction per write batch. It passes the same
//! conformance suite as every other backend.
//!
//! ```
//! use guanxi_core::{prelude::*, CustomerFilter};
//! use guanxi_sqlite::SqliteStore;
//! let store = SqliteStore::open_in_memory().unwrap();
//! assert_eq!(store.count_customers(&CustomerFilter::default()).unwrap(), 0);
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod codec;
mod commerce;
mod query;
mod sales;
mod schema;
mod service;

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, params};

use guanxi_core::sales::{
    Lead, LeadFilter, Opportunity, OpportunityFilter, Pipeline, SalesFacts, SalesQuery, StageHistoryEntry, Task,
    TaskFilter,
};
use guanxi_core::{
    AccessModel, AuditStore, ChangeLogEntry, ChangeLogQuery, Changes, Contact, ContactId, CrmStore, CustomFieldDef,
    Customer, CustomerFilter, CustomerId, CustomerStore, EncryptionError, EntityKind, Error, IdNumber, Interaction,
    LeadId, OpportunityId, Page, PageRequest, Phone, Result, SalesStore, ServiceStore, Setting, StorageError,
    StoreView, StoreWrite, Tag, TagWrite, TaskId, Write,
};

use codec::*;
use guanxi_core::changelog::{ChainVerifier, EntryText, GENESIS_HASH, StoredEntry, stored_entry_hash};
use guanxi_core::dedup::{MatchKeys, contact_match_keys, customer_match_keys, identifier_match_keys};
use guanxi_core::marketing::{Segment, SegmentContext};
use guanxi_core::service::{Article, ArticleHit, KbQuery, SlaClock, Ticket, TicketEntry, TicketFilter};
use guanxi_core::{ArticleId, Identifier, TicketId, UserId};
pub use guanxi_sql::FieldKey;
use guanxi_sql::{Cipher, Dialect, FieldKeys as Keys, KEY_CHECK, seal_match_key};

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = schema::CURRENT_VERSION;

/// How hard a commit tries to survive a power cut.
///
/// ```
/// use guanxi_sqlite::Durability;
/// assert_eq!(Durability::default(), Durability::Full);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous = FULL`: a commit is on disk when it returns (the default; a CRM is a ledger).
    #[default]
    Full,
    /// `synchronous = NORMAL`: in WAL mode, survives application crashes; the last commits may
    /// be lost on power failure, but the file is never corrupted. Faster single writes.
    Normal,
}

/// Options for opening a SQLite store.
///
/// ```
/// use guanxi_sqlite::{Durability, FieldKey, SqliteOptions};
/// let o = SqliteOptions { durability: Durability::Normal, ..Default::default() };
/// assert_eq!(o.busy_timeout_ms, 5_000);
/// let encrypted = SqliteOptions::default().field_key(FieldKey::generate());
/// assert!(encrypted.field_key.is_some());
/// ```
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Commit durability.
    pub durability: Durability,
    /// How long a writer waits for another process's lock before failing.
    pub busy_timeout_ms: u32,
    /// Upper bound of SQLite's page cache, in MiB (allocated only as pages are used). Large
    /// batches spill to disk mid-transaction when it is too small.
    pub cache_mib: u32,
    /// Encrypts sensitive fields (contacts' phones) at rest with this key. Opening a database
    /// that has no key yet encrypts its existing values; a different key than the database's
    /// is [`EncryptionError::WrongKey`].
    pub field_key: Option<FieldKey>,
}

impl SqliteOptions {
    /// These options with field encryption under `key`.
    pub fn field_key(self, key: FieldKey) -> Self {
        SqliteOptions { field_key: Some(key), ..self }
    }
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions { durability: Durability::Full, busy_timeout_ms: 5_000, cache_mib: 64, field_key: None }
    }
}

/// The cached parse of the stored access model, with the stored version it was parsed at.
type AccessCache = Mutex<Option<(Option<i64>, Option<Arc<AccessModel>>)>>;

/// A guanxi store in a SQLite file (or in memory). `Send + Sync`; one handle can be shared
/// across threads.
///
/// Writes go through ONE writer connection; reads of a file go through a small pool of
/// read connections, so under WAL a read never waits behind a write batch (it sees the last
/// commit). Locks are always taken in one order, writer before keys, so a key rotation and a
/// write cannot each hold one while waiting for the other.
#[derive(Debug)]
pub struct SqliteStore {
    /// Read connections of a file store; an in-memory store reads through the writer. Fields
    /// drop in order: the readers close first, so the writer closes last and, as the last
    /// connection, checkpoints the WAL and removes the `-wal` and `-shm` files.
    readers: Option<ReadPool>,
    writer: Mutex<Connection>,
    /// Whether fields are encrypted, and the cipher. A read holds it shared for its whole
    /// statement, so it never decodes rows re-encrypted under a key it does not hold.
    keys: RwLock<Keys>,
    path: Option<PathBuf>,
    access_cache: AccessCache,
}

/// Idle read connections, opened as needed and kept up to a few.
#[derive(Debug)]
struct ReadPool {
    path: PathBuf,
    busy_timeout_ms: u32,
    idle: Mutex<Vec<Connection>>,
}

/// Read connections kept open between reads (more may be open while more threads read).
const IDLE_READERS: usize = 4;

impl ReadPool {
    fn with<R>(&self, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
        let pooled = self.idle.lock().map_err(|_| StorageError::msg("sqlite reader pool lock poisoned"))?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.open()?,
        };
        let out = f(&conn);
        // A connection left inside a transaction (it cannot be, reads run none) is not reused.
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().map_err(|_| StorageError::msg("sqlite reader pool lock poisoned"))?;
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
        }
        out
    }

    fn open(&self) -> Result<Connection> {
        use rusqlite::OpenFlags;
        let conn =
            Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(sql_err)?;
        conn.busy_timeout(std::time::Duration::from_millis(u64::from(self.busy_timeout_ms))).map_err(sql_err)?;
        register_functions(&conn)?;
        Ok(conn)
    }
}

thread_local! {
    /// The stores (by address) whose write session this thread is inside: their writer is
    /// taken, so a write through the store itself (not the session's view) would wait for
    /// ever. It is refused instead.
    static IN_SESSION: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Marks the current thread as inside a store's session until dropped (also on panic).
struct SessionMark(usize);

impl SessionMark {
    fn enter(store: &SqliteStore) -> SessionMark {
        let id = store as *const SqliteStore as usize;
        IN_SESSION.with(|s| s.borrow_mut().push(id));
        SessionMark(id)
    }
}

impl Drop for SessionMark {
    fn drop(&mut self) {
        IN_SESSION.with(|s| s.borrow_mut().retain(|id| *id != self.0));
    }
}

/// One connection and the key state to read it with: what every read runs on (a pooled read
/// connection, or the writer), and what a write session hands out (then it writes too).
struct View<'a> {
    conn: &'a Connection,
    keys: &'a Keys,
    access_cache: &'a AccessCache,
    /// Inside a write session: `apply` runs in a savepoint of the open transaction.
    session: bool,
}

impl std::ops::Deref for View<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

const ACCESS_MODEL: &str = "access_model";

pub(crate) fn sql_err(e: rusqlite::Error) -> Error {
    // Domain errors raised inside row decoding travel as conversion failures.
    let e = match e {
        rusqlite::Error::FromSqlConversionFailure(idx, ty, inner) => match inner.downcast::<Error>() {
            Ok(domain) => return *domain,
            Err(other) => rusqlite::Error::FromSqlConversionFailure(idx, ty, other),
        },
        e => e,
    };
    Error::Storage(StorageError::with_source(format!("sqlite: {e}"), e))
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, migrating it to the current schema.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens a file with explicit options.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(sql_err)?;
        Self::init(conn, options, Some(path.to_path_buf()))
    }

    /// A private database in memory, gone when the store is dropped.
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(sql_err)?;
        Self::init(conn, SqliteOptions::default(), None)
    }

    /// A private in-memory database with explicit options (e.g. a field key, for tests).
    pub fn open_in_memory_with(options: SqliteOptions) -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(sql_err)?;
        Self::init(conn, options, None)
    }

    fn init(mut conn: Connection, options: SqliteOptions, path: Option<PathBuf>) -> Result<Self> {
        register_functions(&conn)?;
        conn.busy_timeout(std::time::Duration::from_millis(u64::from(options.busy_timeout_ms))).map_err(sql_err)?;
        let sync = match options.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = {sync}; PRAGMA cache_size = -{};",
            i64::from(options.cache_mib) * 1024
        ))
        .map_err(sql_err)?;
        if path.is_some() {
            enable_wal(&conn, std::time::Duration::from_millis(u64::from(options.busy_timeout_ms)))?;
        }
        schema::migrate(&mut conn)?;
        let keys = open_keys(&mut conn, options.field_key.as_ref(), true)?;
        backfill_match_keys(&mut conn, &keys)?;
        let readers = path.clone().map(|path| ReadPool {
            path,
            busy_timeout_ms: options.busy_timeout_ms,
            idle: Mutex::new(Vec::new()),
        });
        Ok(SqliteStore {
            writer: Mutex::new(conn),
            keys: RwLock::new(keys),
            readers,
            path,
            access_cache: Mutex::new(None),
        })
    }

    /// Whether sensitive fields in this database are encrypted.
    pub fn is_encrypted(&self) -> Result<bool> {
        Ok(self.keys()?.encrypted)
    }

    /// Re-encrypts every sensitive field under `new_key` and rebuilds the blind index, in one
    /// transaction; returns how many contacts were rewritten. The store must hold the current
    /// key (or the database be unencrypted, which this encrypts).
    ///
    /// ```
    /// # use guanxi_sqlite::{FieldKey, SqliteOptions, SqliteStore};
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("crm.db");
    /// let (old, new) = (FieldKey::generate(), FieldKey::generate());
    /// let store = SqliteStore::open_with(&path, SqliteOptions::default().field_key(old.clone())).unwrap();
    /// store.rotate_key(&new).unwrap();
    /// drop(store);
    /// assert!(SqliteStore::open_with(&path, SqliteOptions::default().field_key(old)).is_err());
    /// assert!(SqliteStore::open_with(&path, SqliteOptions::default().field_key(new)).is_ok());
    /// ```
    pub fn rotate_key(&self, new_key: &FieldKey) -> Result<u64> {
        self.refuse_in_session()?;
        let mut conn = self.writer()?;
        // Held across the re-encryption: no read decodes rows with the key being replaced.
        let mut keys = self.keys.write().map_err(|_| StorageError::msg("sqlite key lock poisoned"))?;
        let old = keys.for_write()?;
        let new = Arc::new(Cipher::new(new_key));
        let n = reencrypt(&mut conn, old.as_deref(), &new)?;
        *keys = Keys { cipher: Some(new), ..Keys::under(new_key) };
        Ok(n)
    }

    /// The file path, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Opens a guanxi file for reading only: its bytes are never changed and no file is left
    /// beside it (SQLite's `immutable` mode: no locks, no `-wal` or `-shm`). For backups and
    /// other files no process writes while they are open. A file of an older schema is
    /// refused (it would need migrating: [`SqliteStore::restore`] migrates a copy).
    ///
    /// ```
    /// # use guanxi_core::prelude::*;
    /// # use guanxi_sqlite::SqliteStore;
    /// let dir = tempfile::tempdir().unwrap();
    /// SqliteStore::open(dir.path().join("crm.db")).unwrap().backup_to(&dir.path().join("backup.db")).unwrap();
    /// let backup = SqliteStore::open_read_only(dir.path().join("backup.db")).unwrap();
    /// assert!(backup.tags().unwrap().is_empty());
    /// assert!(backup.reserve_sequence("n", 1).is_err()); // read only
    /// ```
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_read_only_with_key(path, None)
    }

    /// [`SqliteStore::open_read_only`], reading encrypted fields with `field_key` (a key
    /// that is not the file's is [`EncryptionError::WrongKey`]; a plain file reads as it is).
    ///
    /// ```
    /// # use guanxi_sqlite::{FieldKey, SqliteOptions, SqliteStore};
    /// let dir = tempfile::tempdir().unwrap();
    /// let key = FieldKey::generate();
    /// drop(SqliteStore::open_with(dir.path().join("crm.db"), SqliteOptions::default().field_key(key.clone()))?);
    /// let store = SqliteStore::open_read_only_with_key(dir.path().join("crm.db"), Some(&key))?;
    /// assert!(store.is_encrypted()?);
    /// assert!(SqliteStore::open_read_only_with_key(dir.path().join("crm.db"), Some(&FieldKey::generate())).is_err());
    /// # Ok::<(), guanxi_core::Error>(())
    /// ```
    pub fn open_read_only_with_key(path: impl AsRef<Path>, field_key: Option<&FieldKey>) -> Result<Self> {
        let path = path.as_ref();
        let mut conn = open_immutable(path)?;
        let version = schema::check_version(&conn)?;
        if version != SCHEMA_VERSION {
            return Err(StorageError::msg(format!(
                "{} has schema version {version}, not {SCHEMA_VERSION}: restore it to migrate a copy",
                path.display()
            ))
            .into());
        }
        let keys = open_keys(&mut conn, field_key, false)?;
        Ok(SqliteStore {
            writer: Mutex::new(conn),
            keys: RwLock::new(keys),
            readers: None,
            path: Some(path.to_path_buf()),
            access_cache: Mutex::new(None),
        })
    }

    /// Restores a backup file made by [`CrmStore::backup_to`] into `into` (created or
    /// overwritten; close every handle on `into` first). The backup is read without a change
    /// to its bytes; a backup of an older schema is migrated on the way, in the copy.
    ///
    /// ```
    /// # use guanxi_core::CrmStore;
    /// # use guanxi_sqlite::SqliteStore;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = SqliteStore::open(dir.path().join("crm.db")).unwrap();
    /// store.backup_to(&dir.path().join("backup.db")).unwrap();
    /// SqliteStore::restore(&dir.path().join("backup.db"), &dir.path().join("restored.db")).unwrap();
    /// assert_eq!(SqliteStore::open(dir.path().join("restored.db")).unwrap().schema_version().unwrap(), guanxi_sqlite::SCHEMA_VERSION);
    /// ```
    pub fn restore(backup: &Path, into: &Path) -> Result<()> {
        Self::restore_checked(backup, into, |_| Ok(()))
    }

    /// [`SqliteStore::restore`], with a check of the restored data (an audit-chain
    /// verification, say) before it replaces `into`: a failed check leaves `into` as it was.
    /// The copy is made, migrated and checked beside `into`, then renamed over it.
    pub fn restore_checked(backup: &Path, into: &Path, check: impl FnOnce(&SqliteStore) -> Result<()>) -> Result<()> {
        let src = open_immutable(backup)?;
        let app_id: i64 = src.query_row("PRAGMA application_id", [], |r| r.get(0)).map_err(sql_err)?;
        if app_id != schema::APPLICATION_ID {
            return Err(StorageError::msg(format!("{} is not a guanxi backup", backup.display())).into());
        }
        write_staged(into, "restoring", |staging| {
            copy_database(&src, &mut Connection::open(staging).map_err(sql_err)?)?;
            check(&SqliteStore::open(staging)?)
        })
    }

    /// Creates a new, standalone guanxi file at `dest`, filled by `fill` in one write
    /// transaction: what a backup of another backend (a snapshot copied into a file) is
    /// written with. The file is built under a staging name and renamed into place only when
    /// complete, with no `-wal` or `-shm` beside it: `dest` either does not exist or holds
    /// everything `fill` wrote. An existing `dest` is refused.
    ///
    /// ```
    /// # use guanxi_core::prelude::*;
    /// # use guanxi_sqlite::{SqliteOptions, SqliteStore};
    /// let dir = tempfile::tempdir().unwrap();
    /// let dest = dir.path().join("copy.db");
    /// SqliteStore::write_new_file(&dest, SqliteOptions::default(), |tx| tx.reserve_sequence("n", 5).map(|_| ()))?;
    /// assert_eq!(SqliteStore::open_read_only(&dest)?.sequences()?, vec![("n".to_owned(), 5)]);
    /// assert!(SqliteStore::write_new_file(&dest, SqliteOptions::default(), |_| Ok(())).is_err());
    /// # Ok::<(), guanxi_core::Error>(())
    /// ```
    pub fn write_new_file(
        dest: &Path,
        options: SqliteOptions,
        fill: impl FnOnce(&dyn StoreView) -> Result<()>,
    ) -> Result<()> {
        if dest.exists() {
            return Err(Error::InvalidState(format!("{} already exists", dest.display())));
        }
        write_staged(dest, "partial", |staging| {
            let file = SqliteStore::open_with(staging, options)?;
            let mut fill = Some(fill);
            file.write_session(&mut |tx| match fill.take() {
                Some(f) => f(tx),
                None => Ok(()),
            })
            // The store closes here, its writer last: that checkpoints and removes the -wal and -shm files.
        })
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        self.read(|v| v.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(sql_err))
    }

    /// The writer connection (the lock every write takes first).
    fn writer(&self) -> Result<MutexGuard<'_, Connection>> {
        self.writer.lock().map_err(|_| StorageError::msg("sqlite writer lock poisoned").into())
    }

    fn keys(&self) -> Result<RwLockReadGuard<'_, Keys>> {
        self.keys.read().map_err(|_| StorageError::msg("sqlite key lock poisoned").into())
    }

    /// A write through the store from inside its own write session would wait for the
    /// writer the session holds: refused (the session's view is the way to write there).
    fn refuse_in_session(&self) -> Result<()> {
        let id = self as *const SqliteStore as usize;
        if IN_SESSION.with(|s| s.borrow().contains(&id)) {
            return Err(Error::InvalidState(
                "this thread is inside a write session of this store: read and write through the session's view".into(),
            ));
        }
        Ok(())
    }

    /// Runs a read on a pooled read connection (a file) or on the writer (in memory, where
    /// no second connection can see the data).
    fn read<R>(&self, f: impl FnOnce(&View<'_>) -> Result<R>) -> Result<R> {
        match &self.readers {
            Some(pool) => pool.with(|conn| {
                let keys = self.keys()?;
                f(&View { conn, keys: &keys, access_cache: &self.access_cache, session: false })
            }),
            None => {
                self.refuse_in_session()?;
                let conn = self.writer()?;
                let keys = self.keys()?;
                f(&View { conn: &conn, keys: &keys, access_cache: &self.access_cache, session: false })
            }
        }
    }
}

/// Switches a file to WAL mode. Two processes switching the same rollback-journal file at once
/// can meet in SQLite's deadlock guard (both hold a read lock, both want the write lock), which
/// answers `SQLITE_BUSY` at once without calling the busy handler; so a busy answer is retried
/// here until the busy timeout, as SQLite's documentation advises. A file already in WAL mode
/// takes no lock.
fn enable_wal(conn: &Connection, timeout: std::time::Duration) -> Result<()> {
    let current: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(sql_err)?;
    if current.eq_ignore_ascii_case("wal") {
        return Ok(());
    }
    let started = std::time::Instant::now();
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => return Err(StorageError::msg(format!("could not enable WAL mode (got {mode})")).into()),
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) && started.elapsed() < timeout =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(sql_err(e)),
        }
    }
}

/// Reads the database's key state, checking a given key against it; a database that has no
/// key yet is encrypted under the given one.
fn open_keys(conn: &mut Connection, key: Option<&FieldKey>, may_write: bool) -> Result<Keys> {
    let check: Option<String> = conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [KEY_CHECK], |r| r.get(0))
        .optional()
        .map_err(sql_err)?;
    if check.is_some() && may_write {
        // Sensitive columns are ciphertext: zero what a delete or update frees, so an old
        // value never lingers in a free page.
        conn.execute_batch("PRAGMA secure_delete = ON").map_err(sql_err)?;
    }
    let Some(key) = key else { return Ok(Keys { encrypted: check.is_some(), ..Keys::default() }) };
    let cipher = Arc::new(Cipher::new(key));
    let keys = Keys { cipher: Some(cipher.clone()), ..Keys::under(key) };
    match check {
        Some(stored) if stored != cipher.key_check() => Err(Error::Encryption(EncryptionError::WrongKey)),
        Some(_) => Ok(keys),
        // Read only: a plain file stays plain (the key reads nothing there).
        None if !may_write => Ok(Keys::default()),
        None => {
            reencrypt(conn, None, &cipher)?;
            Ok(keys)
        }
    }
}

/// Rewrites every contact's phones and identity number, customer's identifiers and lead's phone from `old` (None: plain) to `new`, rebuilds the blind
/// index and stores the new key check, in one transaction.
fn reencrypt(conn: &mut Connection, old: Option<&Cipher>, new: &Cipher) -> Result<u64> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql_err)?;
    let contacts: Vec<Contact> = {
        let mut stmt = tx.prepare(&format!("SELECT {CONTACT_COLUMNS} FROM contacts")).map_err(sql_err)?;
        let rows = stmt.query_map([], |r| contact_from_row(r, old)).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)?
    };
    {
        let mut update =
            tx.prepare("UPDATE contacts SET phones = ?2, id_number = ?3 WHERE id = ?1").map_err(sql_err)?;
        tx.execute("DELETE FROM contact_lookup", []).map_err(sql_err)?;
        let mut keys = PendingKeys::default();
        for c in &contacts {
            let sealed = SensitiveColumns::of(c, Some(new))?;
            update.execute(params![c.id.to_string(), sealed.phones(), sealed.id_number()]).map_err(sql_err)?;
            // Its match keys are sealed under the key too: the old key's are replaced.
            let stored = Indexed::Replaced(c.customer_id, contact_keys(c, old));
            index_contact(&tx, &mut keys, c, Some(new), stored)?;
        }
        keys.flush(&tx)?;
    }
    let customers = reencrypt_identifiers(&tx, old, new)?;
    let leads = sales::reencrypt_leads(&tx, old, new)?;
    tx.execute(
        "INSERT INTO settings (key, value, version) VALUES (?1, ?2, 1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = version + 1",
        params![KEY_CHECK, new.key_check()],
    )
    .map_err(sql_err)?;
    tx.commit().map_err(sql_err)?;
    scrub_free_space(conn)?;
    Ok(contacts.len() as u64 + customers + leads)
}

/// Rewrites every customer's identifiers from `old` (None: plain) to `new`, and their match
/// keys; returns how many customers have identifiers.
fn reencrypt_identifiers(tx: &Connection, old: Option<&Cipher>, new: &Cipher) -> Result<u64> {
    let customers: Vec<Customer> = {
        let mut stmt = tx
            .prepare(&format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.identifiers IS NOT NULL"))
            .map_err(sql_err)?;
        let rows = stmt.query_map([], |r| customer_from_row(r, old)).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)?
    };
    let mut update = tx.prepare("UPDATE customers SET identifiers = ?2 WHERE id = ?1").map_err(sql_err)?;
    let mut keys = PendingKeys::default();
    for c in &customers {
        update.execute(params![c.id.to_string(), identifiers_column(c, Some(new))?]).map_err(sql_err)?;
        let stored = Indexed::Replaced(c.id, customer_keys(c.kind, &c.name, &c.identifiers, old));
        index_customer(tx, &mut keys, c, Some(new), stored)?;
    }
    keys.flush(tx)?;
    Ok(customers.len() as u64)
}

/// After values were re-encrypted, no clear text (or old-key ciphertext) may survive in the
/// file's free pages or in the WAL: from now on freed content is zeroed (`secure_delete`), the
/// file is rebuilt without its free pages (`VACUUM`) and the WAL is emptied and truncated.
fn scrub_free_space(conn: &Connection) -> Result<()> {
    conn.execute_batch("PRAGMA secure_delete = ON; VACUUM;").map_err(sql_err)?;
    // In memory there is no WAL; on a file, a reader in another process can keep the WAL
    // from being reset: then its frames stay until the next checkpoint, which we say.
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0)).map_err(sql_err)?;
    if busy != 0 {
        tracing::warn!(
            "re-encrypted, but another connection kept the WAL from being truncated; its old pages go at the next checkpoint"
        );
    }
    Ok(())
}

/// What a record written in a batch replaces: nothing (a new record: no lookup row or match
/// key to read or delete first), or a stored version whose match keys are these (its customer
/// and its keys, computed from the stored row before it was overwritten).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Indexed {
    New,
    Replaced(CustomerId, Vec<i64>),
}

/// Replaces a contact's rows in the lookup index (phones and identity number).
fn index_contact(
    tx: &Connection,
    keys: &mut PendingKeys,
    c: &Contact,
    cipher: Option<&Cipher>,
    was: Indexed,
) -> Result<()> {
    if was != Indexed::New {
        tx.prepare_cached("DELETE FROM contact_lookup WHERE contact_id = ?1")
            .map_err(sql_err)?
            .execute([c.id.to_string()])
            .map_err(sql_err)?;
    }
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO contact_lookup (kind, digest, contact_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )
        .map_err(sql_err)?;
    let digest = |v: &str| cipher.map_or_else(|| v.to_owned(), |c| c.digest(v));
    let lookups =
        c.phones.iter().map(|p| ("phone", p.as_str())).chain(c.id_number.iter().map(|n| ("id_number", n.as_str())));
    for (kind, value) in lookups {
        insert.execute(params![kind, digest(value), c.id.to_string()]).map_err(sql_err)?;
    }
    keys.replace(tx, c.id.0, c.customer_id, contact_keys(c, cipher), was)
}

/// The match keys a contact contributes (none once deleted), sealed under the blind-index key.
fn contact_keys(c: &Contact, cipher: Option<&Cipher>) -> Vec<i64> {
    let wanted = if c.deleted_at.is_none() { contact_match_keys(&c.phones, &c.emails) } else { Vec::new() };
    wanted.into_iter().map(|k| seal_match_key(k, cipher)).collect()
}

/// The match keys a customer's name and identifiers contribute, the identifiers' sealed under
/// the blind-index key.
fn customer_keys(
    kind: guanxi_core::CustomerKind,
    name: &str,
    identifiers: &[Identifier],
    cipher: Option<&Cipher>,
) -> Vec<i64> {
    let names = customer_match_keys(kind, name).into_iter().map(|k| k as i64);
    names.chain(identifier_match_keys(identifiers).into_iter().map(|k| seal_match_key(k, cipher))).collect()
}

/// The match keys a batch writes, inserted together in key order when it ends
/// ([`PendingKeys::flush`]), so a record written twice in one batch keeps only its last keys.
/// Key order did not measurably speed up a 100,000-customer batch (benches/README.md): each
/// insert still seeks from the index's root, and the number of keys is what costs.
#[derive(Default)]
struct PendingKeys {
    /// Per source record (its id's 16 bytes): its customer's and its keys, the last write's.
    by_source: std::collections::BTreeMap<[u8; 16], ([u8; 16], Vec<i64>)>,
}

/// The `source` column of a match key: empty for a customer's own name keys (the source is
/// the customer itself), else the contact's id.
fn key_source<'a>(source: &'a [u8; 16], customer: &[u8; 16]) -> &'a [u8] {
    if source == customer { &[] } else { source.as_slice() }
}

impl PendingKeys {
    /// Replaces the match keys one record (a customer's name, or a contact) contributes. The
    /// source is the record id's 16 bytes, which keeps the index entries narrow. Most updates
    /// (a status change, a new primary contact) leave a record's keys as they are: those cost
    /// nothing more; a changed record deletes its old keys by their full primary key (so the
    /// table needs no index by source); a new record costs only its inserts.
    fn replace(
        &mut self,
        tx: &Connection,
        source: uuid::Uuid,
        customer: CustomerId,
        mut wanted: Vec<i64>,
        was: Indexed,
    ) -> Result<()> {
        let id = *source.as_bytes();
        wanted.sort_unstable();
        wanted.dedup();
        // A record written twice in one batch: its stored keys were dealt with the first time.
        if let Indexed::Replaced(stored_customer, mut stored) = was
            && !self.by_source.contains_key(&id)
        {
            stored.sort_unstable();
            stored.dedup();
            if stored == wanted && stored_customer == customer {
                return Ok(());
            }
            let mut delete = tx
                .prepare_cached("DELETE FROM match_keys WHERE key = ?1 AND customer = ?2 AND source = ?3")
                .map_err(sql_err)?;
            let stored_customer = *stored_customer.0.as_bytes();
            for key in stored {
                delete
                    .execute(params![key, stored_customer.as_slice(), key_source(&id, &stored_customer)])
                    .map_err(sql_err)?;
            }
        }
        self.by_source.insert(id, (*customer.0.as_bytes(), wanted));
        Ok(())
    }

    /// Inserts every pending key, in key order.
    fn flush(self, tx: &Connection) -> Result<()> {
        let mut rows: Vec<(i64, &[u8; 16], &[u8])> = self
            .by_source
            .iter()
            .flat_map(|(source, (customer, keys))| {
                keys.iter().map(move |&k| (k, customer, key_source(source, customer)))
            })
            .collect();
        rows.sort_unstable();
        let mut insert = tx
            .prepare_cached("INSERT INTO match_keys (key, customer, source) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
            .map_err(sql_err)?;
        for (key, customer, source) in rows {
            insert.execute(params![key, customer.as_slice(), source]).map_err(sql_err)?;
        }
        Ok(())
    }
}

/// The match keys of a stored customer's name and identifiers (none if it is not stored).
fn stored_customer_keys(tx: &Connection, id: CustomerId, cipher: Option<&Cipher>) -> Result<Vec<i64>> {
    let row: Option<(String, String, Option<String>)> = tx
        .prepare_cached("SELECT kind, name, identifiers FROM customers WHERE id = ?1")
        .map_err(sql_err)?
        .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()
        .map_err(sql_err)?;
    Ok(match row {
        Some((kind, name, identifiers)) => {
            let kind = kind.parse().map_err(|e| StorageError::with_source("stored customer kind", e))?;
            let identifiers = match identifiers {
                Some(stored) => decode_identifiers(&stored, &id.to_string(), cipher)?,
                None => Vec::new(),
            };
            customer_keys(kind, &name, &identifiers, cipher)
        }
        None => Vec::new(),
    })
}

/// Indexes the name and identifier keys of a customer written in this batch.
fn index_customer(
    tx: &Connection,
    keys: &mut PendingKeys,
    c: &Customer,
    cipher: Option<&Cipher>,
    was: Indexed,
) -> Result<()> {
    keys.replace(tx, c.id.0, c.id, customer_keys(c.kind, &c.name, &c.identifiers, cipher), was)
}

/// Computes the match keys of every stored customer and contact, once, after the migration
/// that created the index. An encrypted store opened without its key waits for the key.
fn backfill_match_keys(conn: &mut Connection, keys: &Keys) -> Result<()> {
    let pending: bool =
        conn.query_row("SELECT count(*) FROM match_keys_backfill", [], |r| r.get::<_, i64>(0)).map_err(sql_err)? > 0;
    if !pending || (keys.encrypted && keys.cipher.is_none()) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql_err)?;
    rebuild_match_keys(&tx, keys.cipher.as_deref())?;
    tx.execute("DELETE FROM match_keys_backfill", []).map_err(sql_err)?;
    tx.commit().map_err(sql_err)
}

/// Fills the (emptied) match-key table with the keys of the stored customers and contacts.
fn rebuild_match_keys(tx: &Connection, cipher: Option<&Cipher>) -> Result<()> {
    tx.execute("DELETE FROM match_keys", []).map_err(sql_err)?;
    let mut pending = PendingKeys::default();
    let mut stmt = tx.prepare(&format!("SELECT {CUSTOMER_COLUMNS} FROM customers c")).map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        index_customer(tx, &mut pending, &customer_from_row(row, cipher).map_err(sql_err)?, cipher, Indexed::New)?;
    }
    let mut stmt = tx.prepare(&format!("SELECT {CONTACT_COLUMNS} FROM contacts")).map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let c = contact_from_row(row, cipher).map_err(sql_err)?;
        // Its lookup rows are already there (ON CONFLICT DO NOTHING keeps them).
        index_contact(tx, &mut pending, &c, cipher, Indexed::New)?;
    }
    pending.flush(tx)
}

/// A read-only connection that never writes the file nor creates any beside it.
fn open_immutable(path: &Path) -> Result<Connection> {
    use rusqlite::OpenFlags;
    if !path.is_file() {
        return Err(StorageError::msg(format!("{} is not a file", path.display())).into());
    }
    let text = path.to_string_lossy().replace('%', "%25").replace('?', "%3f").replace('#', "%23");
    let conn = Connection::open_with_flags(
        format!("file:{text}?immutable=1"),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err)?;
    conn.execute_batch("PRAGMA query_only = ON").map_err(sql_err)?;
    register_functions(&conn)?;
    Ok(conn)
}

/// The SQL functions the shared queries call that SQLite lacks: `guanxi_decimal_cmp(a, b)`,
/// the order (-1, 0, 1) of two exact decimals (integers or decimal text; NULL when either is
/// not a number), for segments that compare numbers without rounding them through floats.
fn register_functions(conn: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::ValueRef;
    fn decimal(v: ValueRef<'_>) -> Option<rust_decimal::Decimal> {
        match v {
            ValueRef::Integer(n) => Some(rust_decimal::Decimal::from(n)),
            ValueRef::Text(t) => std::str::from_utf8(t).ok()?.parse().ok(),
            _ => None,
        }
    }
    conn.create_scalar_function(
        "guanxi_decimal_cmp",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC | FunctionFlags::SQLITE_INNOCUOUS,
        |ctx| {
            let (a, b) = (decimal(ctx.get_raw(0)), decimal(ctx.get_raw(1)));
            Ok(a.zip(b).map(|(a, b)| a.cmp(&b) as i64))
        },
    )
    .map_err(sql_err)
}

/// Builds a database file under a staging name beside `target` (`build` fills it and closes
/// every connection it opened), makes it stand alone (DELETE journal mode: no -wal or -shm
/// beside it until it is opened again), then renames it over `target`, whose old side files
/// go first (an old WAL must not be replayed into the new file). On any error the staging
/// files are removed and `target` is as it was.
fn write_staged(target: &Path, suffix: &str, build: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let staging = target.with_file_name(format!(".{name}.{suffix}"));
    let written = (|| {
        remove_database_files(&staging)?;
        build(&staging)?;
        Connection::open(&staging).map_err(sql_err)?.execute_batch("PRAGMA journal_mode = DELETE").map_err(sql_err)?;
        remove_database_files(target)?;
        std::fs::rename(&staging, target)
            .map_err(|e| StorageError::with_source(format!("cannot rename to {}", target.display()), e).into())
    })();
    if written.is_err() {
        let _ = remove_database_files(&staging);
    }
    written
}

/// Removes a database file and its `-wal` and `-shm` files, those that exist.
fn remove_database_files(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StorageError::with_source(format!("cannot remove {}", Path::new(&p).display()), e).into());
            }
            _ => {}
        }
    }
    Ok(())
}

/// Copies every page of `src` into `dst` in one backup step, i.e. under a single read
/// transaction: a consistent snapshot even while another connection writes (WAL readers do not
/// block writers, nor writers readers).
fn copy_database(src: &Connection, dst: &mut Connection) -> Result<()> {
    use rusqlite::backup::{Backup, StepResult};
    let backup = Backup::new(src, dst).map_err(sql_err)?;
    for _ in 0..100 {
        match backup.step(-1).map_err(sql_err)? {
            StepResult::Done => return Ok(()),
            // Busy or locked: another process holds a conflicting lock for a moment.
            _ => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
    Err(StorageError::msg("backup could not get a consistent read of the database").into())
}

/// Applies one batch inside an open transaction; the caller commits or drops (rolls back).
/// Each statement is prepared once per batch and rows are bound by reference.
fn apply_batch(tx: &Connection, changes: &Changes, cipher: Option<&Cipher>) -> Result<()> {
    let mut keys = PendingKeys::default();
    if !changes.tags.is_empty() {
        let mut ensure = tx
            .prepare_cached(
                "INSERT INTO tags (name, group_name, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
            )
            .map_err(sql_err)?;
        let mut put = tx
            .prepare_cached(
                "INSERT INTO tags (name, group_name, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET group_name = excluded.group_name",
            )
            .map_err(sql_err)?;
        for t in &changes.tags {
            let (stmt, tag) = match t {
                TagWrite::Ensure(tag) => (&mut ensure, tag),
                TagWrite::Put(tag) => (&mut put, tag),
            };
            stmt.execute(params![tag.name, tag.group, tag.created_at.map(ts)]).map_err(sql_err)?;
        }
    }
    if !changes.customers.is_empty() {
        let mut insert = tx.prepare_cached(&INSERT_CUSTOMER).map_err(sql_err)?;
        let mut update = tx.prepare_cached(&UPDATE_CUSTOMER).map_err(sql_err)?;
        let mut link =
            tx.prepare_cached("INSERT INTO customer_tags (customer_id, tag) VALUES (?1, ?2)").map_err(sql_err)?;
        for w in &changes.customers {
            match w {
                Write::Insert(c) => {
                    bind_customer(&mut insert, c, identifiers_column(c, cipher)?.as_deref()).map_err(sql_err)?;
                    insert.raw_execute().map_err(|e| {
                        // The only unique columns are the primary key and the code.
                        let on_code = e.to_string().contains("customers.code");
                        let (field, value) = if on_code { ("code", c.code.clone()) } else { ("id", c.id.to_string()) };
                        on_insert(e, EntityKind::Customer, field, &value)
                    })?;
                    index_customer(tx, &mut keys, c, cipher, Indexed::New)?;
                    let id = c.id.to_string();
                    for t in &c.tags {
                        // The customer row exists, so a foreign-key failure can only be the tag.
                        link.execute(params![id, t]).map_err(|e| {
                            if constraint(&e) == Some(Constraint::ForeignKey) {
                                Error::not_found(EntityKind::Tag, t)
                            } else {
                                sql_err(e)
                            }
                        })?;
                    }
                }
                Write::Update { record: c, expected_version } => {
                    let stored = stored_customer_keys(tx, c.id, cipher)?;
                    bind_customer(&mut update, c, identifiers_column(c, cipher)?.as_deref()).map_err(sql_err)?;
                    update.raw_bind_parameter(25, *expected_version as i64).map_err(sql_err)?;
                    let n = update.raw_execute().map_err(|e| on_insert(e, EntityKind::Customer, "code", &c.code))?;
                    if n == 0 {
                        return Err(missed_update(
                            tx,
                            "customers",
                            EntityKind::Customer,
                            &c.id.to_string(),
                            *expected_version,
                        ));
                    }
                    index_customer(tx, &mut keys, c, cipher, Indexed::Replaced(c.id, stored))?;
                }
            }
        }
    }
    if !changes.contacts.is_empty() {
        let mut insert = tx.prepare_cached(&INSERT_CONTACT).map_err(sql_err)?;
        let mut update = tx.prepare_cached(&UPDATE_CONTACT).map_err(sql_err)?;
        for w in &changes.contacts {
            let c = w.record();
            // customer_id is the contacts table's only foreign key.
            let on_error = |e: rusqlite::Error| match constraint(&e) {
                Some(Constraint::ForeignKey) => Error::not_found(EntityKind::Customer, c.customer_id),
                Some(Constraint::Unique) => on_insert(e, EntityKind::Contact, "id", &c.id.to_string()),
                None => sql_err(e),
            };
            let sealed = SensitiveColumns::of(c, cipher)?;
            let was = match w {
                Write::Insert(c) => {
                    bind_contact(&mut insert, c, &sealed).map_err(sql_err)?;
                    insert.raw_execute().map_err(on_error)?;
                    Indexed::New
                }
                Write::Update { record: c, expected_version } => {
                    let stored = tx
                        .prepare_cached(&format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?1"))
                        .map_err(sql_err)?
                        .query_row([c.id.to_string()], |r| contact_from_row(r, cipher))
                        .optional()
                        .map_err(sql_err)?
                        .map_or(Indexed::New, |old| Indexed::Replaced(old.customer_id, contact_keys(&old, cipher)));
                    bind_contact(&mut update, c, &sealed).map_err(sql_err)?;
                    update.raw_bind_parameter(18, *expected_version as i64).map_err(sql_err)?;
                    if update.raw_execute().map_err(on_error)? == 0 {
                        return Err(missed_update(
                            tx,
                            "contacts",
                            EntityKind::Contact,
                            &c.id.to_string(),
                            *expected_version,
                        ));
                    }
                    stored
                }
            };
            index_contact(tx, &mut keys, c, cipher, was)?;
        }
    }
    keys.flush(tx)?;
    for link in &changes.tag_links {
        require(tx, "SELECT 1 FROM tags WHERE name = ?1", &link.tag, EntityKind::Tag)?;
        require(tx, "SELECT 1 FROM customers WHERE id = ?1", &link.customer.to_string(), EntityKind::Customer)?;
        let sql = if link.linked {
            "INSERT INTO customer_tags (customer_id, tag) VALUES (?1, ?2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM customer_tags WHERE customer_id = ?1 AND tag = ?2"
        };
        tx.prepare_cached(sql)
            .map_err(sql_err)?
            .execute(params![link.customer.to_string(), link.tag])
            .map_err(sql_err)?;
    }
    if !changes.interactions.is_empty() {
        let mut insert = tx.prepare_cached(&INSERT_INTERACTION).map_err(sql_err)?;
        for i in &changes.interactions {
            require(tx, "SELECT 1 FROM customers WHERE id = ?1", &i.customer_id.to_string(), EntityKind::Customer)?;
            if let Some(c) = i.contact_id {
                require(tx, "SELECT 1 FROM contacts WHERE id = ?1", &c.to_string(), EntityKind::Contact)?;
            }
            bind_interaction(&mut insert, i).map_err(sql_err)?;
            insert.raw_execute().map_err(|e| on_insert(e, EntityKind::Interaction, "id", &i.id.to_string()))?;
        }
    }
    if let Some(before) = changes.purge_events_before {
        tx.execute("DELETE FROM events WHERE at < ?1", [ts(before)]).map_err(sql_err)?;
    }
    if !changes.events.is_empty() {
        // An external id already stored (or earlier in the batch) leaves the event out.
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO events (id, customer_id, at, external_id, name, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (external_id) DO NOTHING",
            )
            .map_err(sql_err)?;
        // Each customer checked once a batch (a batch holds many events of one customer).
        let mut checked = std::collections::HashSet::new();
        for e in &changes.events {
            if checked.insert(e.customer_id) {
                require(tx, "SELECT 1 FROM customers WHERE id = ?1", &e.customer_id.to_string(), EntityKind::Customer)?;
            }
            insert
                .execute(params![e.id.to_string(), e.customer_id.to_string(), ts(e.at), e.external_id, e.name, json(e)])
                .map_err(|err| on_insert(err, EntityKind::Customer, "event id", &e.id.to_string()))?;
        }
    }
    for m in &changes.event_moves {
        require(tx, "SELECT 1 FROM customers WHERE id = ?1", &m.to.to_string(), EntityKind::Customer)?;
        let n = tx
            .prepare_cached(
                "UPDATE events SET customer_id = ?3, doc = json_set(doc, '$.customer_id', ?3) \
                 WHERE id = ?1 AND customer_id = ?2",
            )
            .map_err(sql_err)?
            .execute(params![m.id.to_string(), m.from.to_string(), m.to.to_string()])
            .map_err(sql_err)?;
        if n == 0 {
            return Err(Error::not_found(EntityKind::Customer, format!("event {}", m.id)));
        }
    }
    for m in &changes.memberships {
        apply_membership(tx, m)?;
    }
    for m in &changes.interaction_moves {
        require(tx, "SELECT 1 FROM customers WHERE id = ?1", &m.to.to_string(), EntityKind::Customer)?;
        let n = tx
            .prepare_cached("UPDATE interactions SET customer_id = ?3 WHERE id = ?1 AND customer_id = ?2")
            .map_err(sql_err)?
            .execute(params![m.id.to_string(), m.from.to_string(), m.to.to_string()])
            .map_err(sql_err)?;
        if n == 0 {
            return Err(Error::not_found(EntityKind::Interaction, m.id));
        }
    }
    for d in &changes.custom_fields {
        let sql = format!("INSERT INTO custom_fields ({FIELD_COLUMNS}) VALUES ({})", placeholders(8));
        tx.prepare_cached(&sql)
            .map_err(sql_err)?
            .execute(params![
                d.entity.as_str(),
                d.key,
                d.label,
                d.field_type.as_str(),
                d.required,
                json(&d.allowed_values),
                d.created_by.as_ref().map(|u| u.as_str()),
                d.created_at.map(ts)
            ])
            .map_err(|e| on_insert(e, EntityKind::CustomField, "key", &d.key))?;
    }
    if let Some(w) = &changes.access {
        let value = serde_json::to_string(w.record()).map_err(|e| StorageError::with_source("access model", e))?;
        let version = w.record().version as i64;
        let n = match w {
            Write::Insert(_) => tx
                .prepare_cached("INSERT INTO settings (key, value, version) VALUES (?1, ?2, ?3)")
                .map_err(sql_err)?
                .execute(params![ACCESS_MODEL, value, version])
                .map_err(|e| on_insert(e, EntityKind::Role, "access model", ""))?,
            Write::Update { expected_version, .. } => tx
                .prepare_cached("UPDATE settings SET value = ?2, version = ?3 WHERE key = ?1 AND version = ?4")
                .map_err(sql_err)?
                .execute(params![ACCESS_MODEL, value, version, *expected_version as i64])
                .map_err(sql_err)?,
        };
        if n == 0 {
            let stored: Option<i64> = tx
                .query_row("SELECT version FROM settings WHERE key = ?1", [ACCESS_MODEL], |r| r.get(0))
                .optional()
                .map_err(sql_err)?;
            let expected = match w {
                Write::Update { expected_version, .. } => *expected_version,
                Write::Insert(_) => 0,
            };
            return Err(match stored {
                Some(v) => Error::Conflict {
                    entity: EntityKind::Role,
                    id: "access model".into(),
                    expected,
                    actual: u64::try_from(v).unwrap_or(0),
                },
                None => Error::not_found(EntityKind::Role, "access model"),
            });
        }
    }
    sales::apply(tx, changes, cipher)?;
    service::apply(tx, changes)?;
    commerce::apply(tx, changes)?;
    if !changes.change_log.is_empty() {
        // Chain onto the last stored entry; the IMMEDIATE transaction keeps other writers out.
        let last: Option<(i64, String)> = tx
            .query_row("SELECT seq, hash FROM change_log ORDER BY seq DESC LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql_err)?;
        let (mut seq, mut prev) =
            last.map_or((0, GENESIS_HASH.to_owned()), |(seq, hash)| (u64::try_from(seq).unwrap_or(0), hash));
        let mut insert = tx
            .prepare_cached(&format!("INSERT INTO change_log ({LOG_COLUMNS}) VALUES ({})", placeholders(10)))
            .map_err(sql_err)?;
        for e in &changes.change_log {
            // The stored text is the canonical form the hash covers, serialized once: verifying
            // hashes the row as it is.
            seq += 1;
            let text = EntryText::of(e)?;
            let stored = text.stored(e, seq, &prev);
            let hash = stored_entry_hash(&prev, &stored);
            insert
                .execute(params![
                    seq as i64,
                    stored.at,
                    stored.actor,
                    stored.entity,
                    stored.entity_id,
                    stored.customer_id,
                    stored.action,
                    stored.changes,
                    prev,
                    hash
                ])
                .map_err(sql_err)?;
            prev = hash;
        }
    }
    Ok(())
}

static INSERT_CUSTOMER: LazyLock<String> =
    LazyLock::new(|| format!("INSERT INTO customers ({CUSTOMER_FIELDS}) VALUES ({})", placeholders(24)));
static UPDATE_CUSTOMER: LazyLock<String> = LazyLock::new(|| update_sql("customers", CUSTOMER_FIELDS));
static INSERT_CONTACT: LazyLock<String> =
    LazyLock::new(|| format!("INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES ({})", placeholders(17)));
static UPDATE_CONTACT: LazyLock<String> = LazyLock::new(|| update_sql("contacts", CONTACT_COLUMNS));
static INSERT_INTERACTION: LazyLock<String> =
    LazyLock::new(|| format!("INSERT INTO interactions ({INTERACTION_COLUMNS}) VALUES ({})", placeholders(13)));

/// `UPDATE table SET col2 = ?2, … WHERE id = ?1 AND version = ?(n + 1)`, for a column list whose
/// first column is `id`.
fn update_sql(table: &str, columns: &str) -> String {
    let cols: Vec<&str> = columns.split(',').map(str::trim).collect();
    let sets: Vec<String> = cols.iter().enumerate().skip(1).map(|(i, col)| format!("{col} = ?{}", i + 1)).collect();
    format!("UPDATE {table} SET {} WHERE id = ?1 AND version = ?{}", sets.join(", "), cols.len() + 1)
}

fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
}

fn require(tx: &Connection, sql: &str, key: &str, entity: EntityKind) -> Result<()> {
    let found = tx.prepare_cached(sql).map_err(sql_err)?.exists([key]).map_err(sql_err)?;
    if found { Ok(()) } else { Err(Error::not_found(entity, key)) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Constraint {
    Unique,
    ForeignKey,
}

/// Which constraint a statement violated, from SQLite's extended result code.
pub(crate) fn constraint(e: &rusqlite::Error) -> Option<Constraint> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => match f.extended_code {
            rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE => {
                Some(Constraint::Unique)
            }
            rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Some(Constraint::ForeignKey),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) fn on_insert(e: rusqlite::Error, entity: EntityKind, field: &str, value: &str) -> Error {
    if constraint(&e) == Some(Constraint::Unique) {
        Error::Duplicate { entity, field: field.to_owned(), value: value.to_owned() }
    } else {
        sql_err(e)
    }
}

/// After an UPDATE … WHERE version = ? touched no row: tell a missing record from a stale version.
fn missed_update(tx: &Connection, table: &str, entity: EntityKind, id: &str, expected: u64) -> Error {
    let found: rusqlite::Result<Option<i64>> =
        tx.query_row(&format!("SELECT version FROM {table} WHERE id = ?1"), [id], |r| r.get(0)).optional();
    match found {
        Ok(Some(actual)) => {
            Error::Conflict { entity, id: id.to_owned(), expected, actual: u64::try_from(actual).unwrap_or(0) }
        }
        Ok(None) => Error::not_found(entity, id),
        Err(e) => sql_err(e),
    }
}

/// A read transaction around several statements, so they read one snapshot; a no-op inside
/// a transaction already open (a write session). Ends when dropped.
struct ReadSnapshot<'c>(Option<&'c Connection>);

impl<'c> ReadSnapshot<'c> {
    fn begin(conn: &'c Connection) -> Result<ReadSnapshot<'c>> {
        if !conn.is_autocommit() {
            return Ok(ReadSnapshot(None));
        }
        conn.execute_batch("BEGIN DEFERRED").map_err(sql_err)?;
        Ok(ReadSnapshot(Some(conn)))
    }
}

impl Drop for ReadSnapshot<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.0 {
            // Nothing was written: ending the transaction only releases the snapshot, and a
            // failure to do so leaves it to end with the connection's next statement.
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}

impl View<'_> {
    /// Live contacts whose lookup key of `kind` is `value` (through its digest when encrypted).
    fn contacts_by_key(&self, kind: &str, value: &str) -> Result<Vec<Contact>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            let cols: Vec<String> = CONTACT_COLUMNS.split(", ").map(|col| format!("c.{}", col.trim())).collect();
            format!(
                "SELECT {} FROM contact_lookup k JOIN contacts c ON c.id = k.contact_id \
                 WHERE k.kind = ?1 AND k.digest = ?2 AND c.deleted_at IS NULL ORDER BY c.id",
                cols.join(", ")
            )
        });
        let digest = self.keys.digest(value)?;
        let cipher = self.keys.cipher.as_deref();
        let mut stmt = self.prepare_cached(&SQL).map_err(sql_err)?;
        let rows = stmt.query_map(params![kind, digest], |r| contact_from_row(r, cipher)).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
    }
}

fn customers_where(conn: &Connection, sql: &str, param: &str, cipher: Option<&Cipher>) -> Result<Option<Customer>> {
    conn.prepare_cached(sql)
        .map_err(sql_err)?
        .query_row([param], |r| customer_from_row(r, cipher))
        .optional()
        .map_err(sql_err)
}

impl StoreWrite for View<'_> {
    fn apply(&self, changes: &Changes) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        if !self.session {
            return Err(Error::InvalidState("a read connection cannot write".into()));
        }
        let cipher = cipher_for(changes, self.keys)?;
        // A savepoint per batch: a failed one leaves the session as it was before it.
        self.execute_batch("SAVEPOINT batch").map_err(sql_err)?;
        match apply_batch(self.conn, changes, cipher.as_deref()) {
            Ok(()) => self.execute_batch("RELEASE batch").map_err(sql_err),
            Err(e) => {
                self.execute_batch("ROLLBACK TO batch; RELEASE batch").map_err(sql_err)?;
                Err(e)
            }
        }
    }

    fn reserve_sequence(&self, key: &str, count: u64) -> Result<u64> {
        if !self.session {
            return Err(Error::InvalidState("a read connection cannot write".into()));
        }
        reserve(self.conn, key, count)
    }
}

impl View<'_> {
    /// One page of the customers a query selects, in its order.
    fn customer_page(&self, q: &query::Query, page: &PageRequest) -> Result<Page<Customer>> {
        let sql =
            format!("{} ORDER BY {} LIMIT {}", q.select(CUSTOMER_COLUMNS), q.order_key, page.limit.saturating_add(1));
        let mut stmt = self.prepare_cached(&sql).map_err(sql_err)?;
        let mut rows: Vec<Customer> = stmt
            .query_map(rusqlite::params_from_iter(query::values(&q.params)), |r| {
                customer_from_row(r, self.keys.cipher.as_deref())
            })
            .map_err(sql_err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(sql_err)?;
        rows.truncate(page.limit.saturating_add(1));
        Ok(Page::from_overfetch(rows, page.limit, |c| c.id.0))
    }

    /// How many rows a customer query selects.
    fn count_rows(&self, q: &query::Query) -> Result<u64> {
        let n: i64 = self
            .prepare_cached(&q.count())
            .map_err(sql_err)?
            .query_row(rusqlite::params_from_iter(query::values(&q.params)), |r| r.get(0))
            .map_err(sql_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl CustomerStore for View<'_> {
    fn customer(&self, id: CustomerId) -> Result<Option<Customer>> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.id = ?1"));
        customers_where(self.conn, &SQL, &id.to_string(), self.keys.cipher.as_deref())
    }

    fn customer_by_code(&self, code: &str) -> Result<Option<Customer>> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.code = ?1"));
        customers_where(self.conn, &SQL, code, self.keys.cipher.as_deref())
    }

    fn list_customers(&self, filter: &CustomerFilter, page: &PageRequest) -> Result<Page<Customer>> {
        page.check()?;
        self.customer_page(&query::customer_query(filter, page.after.map(|c| c.last_id()), true), page)
    }

    fn segment_members(
        &self,
        filter: &CustomerFilter,
        segment: &Segment,
        ctx: &SegmentContext,
        page: &PageRequest,
    ) -> Result<Page<Customer>> {
        page.check()?;
        let q = guanxi_sql::segment_query(Dialect::Sqlite, filter, segment, ctx, page.after.map(|c| c.last_id()), true);
        self.customer_page(&q, page)
    }

    fn count_segment_members(&self, filter: &CustomerFilter, segment: &Segment, ctx: &SegmentContext) -> Result<u64> {
        self.count_rows(&guanxi_sql::segment_query(Dialect::Sqlite, filter, segment, ctx, None, false))
    }

    fn scan_customers(&self, filter: &CustomerFilter, visit: &mut guanxi_core::scan::CustomerVisit<'_>) -> Result<u64> {
        let q = query::customer_query(filter, None, true);
        // The customers in id order, and beside them their tag links in the same order, merged
        // as both are read: one pass over each table instead of a tag subquery per customer.
        // A filter that keeps every customer reads every link; any other reads the links of
        // the customers it keeps.
        let everyone = *filter == CustomerFilter { deleted: filter.deleted, ..CustomerFilter::default() };
        let links_sql = if everyone {
            "SELECT customer_id, tag FROM customer_tags ORDER BY customer_id, tag".to_owned()
        } else {
            format!(
                "SELECT customer_id, tag FROM customer_tags WHERE customer_id IN ({}) ORDER BY customer_id, tag",
                q.select("c.id")
            )
        };
        let sql = format!("{} ORDER BY {}", q.select(CUSTOMER_SCAN_COLUMNS), q.order_key);
        let mut stmt = self.prepare_cached(&sql).map_err(sql_err)?;
        let mut links_stmt = self.prepare_cached(&links_sql).map_err(sql_err)?;
        // Both statements run inside one read transaction so the links belong to the rows. The
        // links take the customers' parameters (there are none when they read every link).
        let _snapshot = ReadSnapshot::begin(self)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(query::values(&q.params))).map_err(sql_err)?;
        let mut links = links_stmt.query(rusqlite::params_from_iter(query::values(&q.params))).map_err(sql_err)?;
        // The link read ahead of the current customer, and the tags of the current one, their
        // buffers reused from row to row.
        let (mut link_owner, mut link_tag, mut pending) = (String::new(), String::new(), false);
        let mut tags: Vec<String> = Vec::new();
        let mut seen = 0u64;
        while let Some(row) = rows.next().map_err(sql_err)? {
            let id = text(row, 0).map_err(sql_err)?;
            let mut n_tags = 0;
            loop {
                if !pending {
                    let Some(link) = links.next().map_err(sql_err)? else { break };
                    link_owner.clear();
                    link_owner.push_str(text(link, 0).map_err(sql_err)?);
                    link_tag.clear();
                    link_tag.push_str(text(link, 1).map_err(sql_err)?);
                    pending = true;
                }
                match link_owner.as_str().cmp(id) {
                    std::cmp::Ordering::Less => pending = false,
                    std::cmp::Ordering::Equal => {
                        match tags.get_mut(n_tags) {
                            Some(t) => t.clone_from(&link_tag),
                            None => tags.push(link_tag.clone()),
                        }
                        n_tags += 1;
                        pending = false;
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
            let custom = customer_custom(row).map_err(sql_err)?;
            let identifiers = customer_identifiers(row, self.keys.cipher.as_deref()).map_err(sql_err)?;
            visit(&customer_view(row, &tags[..n_tags], &custom, &identifiers).map_err(sql_err)?)?;
            seen += 1;
        }
        Ok(seen)
    }

    fn count_customers(&self, filter: &CustomerFilter) -> Result<u64> {
        self.count_rows(&query::customer_query(filter, None, false))
    }

    fn contact(&self, id: ContactId) -> Result<Option<Contact>> {
        let cipher = self.keys.cipher.as_deref();
        self.prepare_cached(&format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = ?1"))
            .map_err(sql_err)?
            .query_row([id.to_string()], |r| contact_from_row(r, cipher))
            .optional()
            .map_err(sql_err)
    }

    fn contacts_of(&self, customer: CustomerId) -> Result<Vec<Contact>> {
        let cipher = self.keys.cipher.as_deref();
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE customer_id = ?1 AND deleted_at IS NULL ORDER BY is_primary DESC, id"
        );
        let mut stmt = self.prepare_cached(&sql).map_err(sql_err)?;
        let rows = stmt.query_map([customer.to_string()], |r| contact_from_row(r, cipher)).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
    }

    fn contacts_by_phone(&self, phone: &Phone) -> Result<Vec<Contact>> {
        self.contacts_by_key("phone", phone.as_str())
    }

    fn contacts_by_id_number(&self, id_number: &IdNumber) -> Result<Vec<Contact>> {
        self.contacts_by_key("id_number", id_number.as_str())
    }

    fn customers_by_match_keys(&self, keys: &MatchKeys, max_block: usize) -> Result<Vec<CustomerId>> {
        let cipher = if keys.contacts.is_empty() { None } else { self.keys.for_write()? };
        // The customers sharing a key, read lazily: a key shared by more than `max_block` live
        // customers stops being read as soon as that is known.
        let mut sharing =
            self.prepare_cached("SELECT DISTINCT customer FROM match_keys WHERE key = ?1").map_err(sql_err)?;
        let mut live =
            self.prepare_cached("SELECT 1 FROM customers WHERE id = ?1 AND deleted_at IS NULL").map_err(sql_err)?;
        let sealed = keys
            .names
            .iter()
            .map(|&k| k as i64)
            .chain(keys.contacts.iter().map(|&k| seal_match_key(k, cipher.as_deref())));
        let mut found = std::collections::BTreeSet::new();
        for key in sealed {
            let mut block = Vec::new();
            let mut rows = sharing.query([key]).map_err(sql_err)?;
            while let Some(row) = rows.next().map_err(sql_err)? {
                let bytes: [u8; 16] =
                    row.get(0).map_err(|e| StorageError::with_source("bad customer id in match_keys", e))?;
                let id = CustomerId(uuid::Uuid::from_bytes(bytes));
                if live.exists([id.to_string()]).map_err(sql_err)? {
                    block.push(id);
                    if block.len() > max_block {
                        break;
                    }
                }
            }
            if block.len() <= max_block {
                found.extend(block);
            }
        }
        Ok(found.into_iter().collect())
    }

    fn tag(&self, name: &str) -> Result<Option<Tag>> {
        self.prepare_cached("SELECT name, group_name, created_at FROM tags WHERE name = ?1")
            .map_err(sql_err)?
            .query_row([name], tag_from_row)
            .optional()
            .map_err(sql_err)
    }

    fn tags(&self) -> Result<Vec<Tag>> {
        let mut stmt = self
            .prepare_cached("SELECT name, group_name, created_at FROM tags ORDER BY group_name, name")
            .map_err(sql_err)?;
        let rows = stmt.query_map([], tag_from_row).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
    }

    fn interactions_of(&self, customer: CustomerId) -> Result<Vec<Interaction>> {
        let sql = format!("SELECT {INTERACTION_COLUMNS} FROM interactions WHERE customer_id = ?1 ORDER BY at, id");
        let mut stmt = self.prepare_cached(&sql).map_err(sql_err)?;
        let rows = stmt.query_map([customer.to_string()], interaction_from_row).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
    }

    fn custom_fields(&self, entity: EntityKind) -> Result<Vec<CustomFieldDef>> {
        let sql = format!("SELECT {FIELD_COLUMNS} FROM custom_fields WHERE entity = ?1 ORDER BY key");
        let mut stmt = self.prepare_cached(&sql).map_err(sql_err)?;
        let rows = stmt.query_map([entity.as_str()], field_from_row).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
    }

    fn all_contacts(&self, page: &PageRequest) -> Result<Page<Contact>> {
        let cipher = self.keys.cipher.as_deref();
        self.page_by_id("contacts", CONTACT_COLUMNS, page, |r| contact_from_row(r, cipher), |c| c.id.0)
    }

    fn all_interactions(&self, page: &PageRequest) -> Result<Page<Interaction>> {
        self.page_by_id("interactions", INTERACTION_COLUMNS, page, interaction_from_row, |i| i.id.0)
    }

    fn events_of(
        &self,
        customer: CustomerId,
        range: &guanxi_core::marketing::EventRange,
        page: &PageRequest,
    ) -> Result<Page<guanxi_core::marketing::BehaviourEvent>> {
        page.check()?;
        let (after, from, to, limit) = guanxi_sql::event_page(range, page);
        let mut stmt = self
            .prepare_cached(
                "SELECT doc FROM events WHERE customer_id = ?1 AND id > ?2 \
                 AND (?3 IS NULL OR at >= ?3) AND (?4 IS NULL OR at < ?4) ORDER BY id LIMIT ?5",
            )
            .map_err(sql_err)?;
        let rows = stmt
            .query_map(params![customer.to_string(), after, from, to, limit], |r| get_json_at(r, 0))
            .map_err(sql_err)?
            .collect::<rusqlite::Result<Vec<guanxi_core::marketing::BehaviourEvent>>>()
            .map_err(sql_err)?;
        Ok(Page::from_overfetch(rows, page.limit, |e| e.id.0))
    }

    fn count_events_before(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64> {
        let n: i64 = self
            .prepare_cached("SELECT count(*) FROM events WHERE at < ?1")
            .map_err(sql_err)?
            .query_row([ts(before)], |r| r.get(0))
            .map_err(sql_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn segment_memberships(
        &self,
        query: &guanxi_core::marketing::MembershipQuery,
        page: &PageRequest,
    ) -> Result<Page<guanxi_core::marketing::SegmentMembership>> {
        page.check()?;
        let (after, limit) = guanxi_sql::id_page(page);
        let sql = format!(
            "SELECT {MEMBERSHIP_COLUMNS} FROM segment_memberships WHERE segment = ?1 AND id > ?2 \
             AND (?3 IS NULL OR customer_id = ?3) AND (?4 = 0 OR exited_at IS NULL) ORDER BY id LIMIT ?5"
        );
        let mut stmt = self.prepare_cached(&sql).map_err(sql_err)?;
        let rows = stmt
            .query_map(
                params![query.segment, after, query.customer.map(|c| c.to_string()), query.current_only, limit],
                membership_from_row,
            )
            .map_err(sql_err)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql_err)?;
        Ok(Page::from_overfetch(rows, page.limit, |m| m.id))
    }

    fn open_memberships(
        &self,
        segment: &str,
        customers: &[CustomerId],
    ) -> Result<Vec<guanxi_core::marketing::SegmentMembership>> {
        let sql = format!(
            "SELECT {MEMBERSHIP_COLUMNS} FROM segment_memberships \
             WHERE segment = ?1 AND customer_id = ?2 AND exited_at IS NULL"
        );
        let mut stmt = self.prepare_cached(&sql).map_err(sql_err)?;
        let mut out = Vec::new();
        for c in customers {
            if let Some(m) =
                stmt.query_row(params![segment, c.to_string()], membership_from_row).optional().map_err(sql_err)?
            {
                out.push(m);
            }
        }
        Ok(out)
    }

    fn stored_external_ids(&self, ids: &[String]) -> Result<Vec<String>> {
        let mut stmt = self.prepare_cached("SELECT 1 FROM events WHERE external_id = ?1").map_err(sql_err)?;
        let mut known = Vec::new();
        for id in ids {
            if stmt.exists([id]).map_err(sql_err)? {
                known.push(id.clone());
            }
        }
        Ok(known)
    }
}

/// Begins or ends a stay in a saved segment.
fn apply_membership(tx: &Connection, m: &guanxi_core::marketing::MembershipChange) -> Result<()> {
    use guanxi_core::marketing::MembershipChange;
    match m {
        MembershipChange::Enter(stay) => {
            let sql = format!("INSERT INTO segment_memberships ({MEMBERSHIP_COLUMNS}) VALUES ({})", placeholders(7));
            tx.prepare_cached(&sql)
                .map_err(sql_err)?
                .execute(params![
                    stay.id.to_string(),
                    stay.segment,
                    stay.customer_id.to_string(),
                    ts(stay.entered_at),
                    stay.entered_because.as_str(),
                    stay.exited_at.map(ts),
                    stay.exited_because.map(|r| r.as_str()),
                ])
                .map_err(|e| {
                    on_insert(e, EntityKind::Segment, "membership", &format!("{} {}", stay.segment, stay.customer_id))
                })?;
        }
        MembershipChange::Exit { segment, customer, at, reason } => {
            tx.prepare_cached(
                "UPDATE segment_memberships SET exited_at = ?3, exited_because = ?4 \
                 WHERE segment = ?1 AND customer_id = ?2 AND exited_at IS NULL",
            )
            .map_err(sql_err)?
            .execute(params![segment, customer.to_string(), ts(*at), reason.as_str()])
            .map_err(sql_err)?;
        }
    }
    Ok(())
}

impl View<'_> {
    /// One page of a whole table in id order.
    fn page_by_id<T>(
        &self,
        table: &str,
        columns: &str,
        page: &PageRequest,
        from_row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        id_of: impl Fn(&T) -> uuid::Uuid,
    ) -> Result<Page<T>> {
        page.check()?;
        let sql = format!("SELECT {columns} FROM {table} WHERE id > ?1 ORDER BY id LIMIT ?2");
        let after = page.after.map(|c| c.last_id().to_string()).unwrap_or_default();
        let limit = i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX);
        let mut stmt = self.prepare_cached(&sql).map_err(sql_err)?;
        let rows = stmt.query_map(params![after, limit], from_row).map_err(sql_err)?;
        let rows = rows.collect::<rusqlite::Result<Vec<T>>>().map_err(sql_err)?;
        Ok(Page::from_overfetch(rows, page.limit, id_of))
    }
}

impl SalesStore for View<'_> {
    fn opportunity(&self, id: OpportunityId) -> Result<Option<Opportunity>> {
        sales::opportunity_by(self.conn, "id", &id.to_string())
    }

    fn opportunity_by_code(&self, code: &str) -> Result<Option<Opportunity>> {
        sales::opportunity_by(self.conn, "code", code)
    }

    fn list_opportunities(&self, filter: &OpportunityFilter, page: &PageRequest) -> Result<Page<Opportunity>> {
        sales::list_opportunities(self.conn, filter, page)
    }

    fn count_opportunities(&self, filter: &OpportunityFilter) -> Result<u64> {
        sales::count_opportunities(self.conn, filter)
    }

    fn opportunity_currencies(&self, filter: &OpportunityFilter) -> Result<Vec<String>> {
        sales::opportunity_currencies(self.conn, filter)
    }

    fn stage_history(&self, id: OpportunityId) -> Result<Vec<StageHistoryEntry>> {
        sales::stage_history(self.conn, &id.to_string())
    }

    fn sales_facts(&self, pipeline: &Pipeline, query: &SalesQuery, currency: &str) -> Result<SalesFacts> {
        sales::sales_facts(self.conn, pipeline, query, currency)
    }

    fn lead(&self, id: LeadId) -> Result<Option<Lead>> {
        sales::lead(self.conn, &id.to_string(), self.keys.cipher.as_deref())
    }

    fn list_leads(&self, filter: &LeadFilter, page: &PageRequest) -> Result<Page<Lead>> {
        sales::list_leads(self.conn, filter, page, self.keys.cipher.as_deref())
    }

    fn count_leads(&self, filter: &LeadFilter) -> Result<u64> {
        sales::count_leads(self.conn, filter)
    }

    fn task(&self, id: TaskId) -> Result<Option<Task>> {
        sales::task(self.conn, &id.to_string())
    }

    fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        sales::tasks(self.conn, filter)
    }

    fn list_tasks(&self, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>> {
        sales::list_tasks(self.conn, filter, page)
    }

    fn count_tasks(&self, filter: &TaskFilter) -> Result<u64> {
        sales::count_tasks(self.conn, filter)
    }
}

impl ServiceStore for View<'_> {
    fn ticket(&self, id: TicketId) -> Result<Option<Ticket>> {
        service::ticket_by(self.conn, "id", &id.to_string())
    }

    fn ticket_by_code(&self, code: &str) -> Result<Option<Ticket>> {
        service::ticket_by(self.conn, "code", code)
    }

    fn list_tickets(&self, filter: &TicketFilter, page: &PageRequest) -> Result<Page<Ticket>> {
        service::list_tickets(self.conn, filter, page)
    }

    fn count_tickets(&self, filter: &TicketFilter) -> Result<u64> {
        service::count_tickets(self.conn, filter)
    }

    fn open_ticket_loads(&self, users: &[UserId]) -> Result<Vec<u64>> {
        service::open_ticket_loads(self.conn, users)
    }

    fn sla_clocks(&self, filter: &TicketFilter) -> Result<Vec<SlaClock>> {
        service::sla_clocks(self.conn, filter)
    }

    fn ticket_entries(&self, id: TicketId) -> Result<Vec<TicketEntry>> {
        service::ticket_entries(self.conn, &id.to_string())
    }

    fn article(&self, id: ArticleId) -> Result<Option<Article>> {
        service::article(self.conn, &id.to_string())
    }

    fn search_articles(&self, query: &KbQuery) -> Result<Vec<ArticleHit>> {
        service::search_articles(self.conn, query)
    }

    fn list_articles(&self, page: &PageRequest) -> Result<Page<Article>> {
        self.page_by_id("articles", "doc", page, |r| sales::from_doc(r.get_ref(0)?.as_str()?), |a: &Article| a.id.0)
    }
}

impl guanxi_core::CommerceStore for View<'_> {
    fn product(&self, id: guanxi_core::ProductId) -> Result<Option<guanxi_core::commerce::Product>> {
        commerce::product(self.conn, &id.to_string())
    }

    fn products_by_codes(&self, codes: &[String]) -> Result<Vec<guanxi_core::commerce::Product>> {
        commerce::products_by(self.conn, "code", codes)
    }

    fn products_by_external_ids(&self, ids: &[String]) -> Result<Vec<guanxi_core::commerce::Product>> {
        commerce::products_by(self.conn, "external_id", ids)
    }

    fn list_products(
        &self,
        filter: &guanxi_core::commerce::ProductFilter,
        page: &PageRequest,
    ) -> Result<Page<guanxi_core::commerce::Product>> {
        commerce::list_products(self.conn, filter, page)
    }

    fn count_products(&self, filter: &guanxi_core::commerce::ProductFilter) -> Result<u64> {
        commerce::count_products(self.conn, filter)
    }

    fn purchase(&self, id: guanxi_core::PurchaseId) -> Result<Option<guanxi_core::commerce::Purchase>> {
        commerce::purchase(self.conn, &id.to_string())
    }

    fn purchases_by_keys(
        &self,
        keys: &[guanxi_core::commerce::PurchaseKey],
    ) -> Result<Vec<guanxi_core::commerce::Purchase>> {
        commerce::purchases_by_keys(self.conn, keys)
    }

    fn list_purchases(
        &self,
        filter: &guanxi_core::commerce::PurchaseFilter,
        page: &PageRequest,
    ) -> Result<Page<guanxi_core::commerce::Purchase>> {
        commerce::list_purchases(self.conn, filter, page)
    }

    fn count_purchases(&self, filter: &guanxi_core::commerce::PurchaseFilter) -> Result<u64> {
        commerce::count_purchases(self.conn, filter)
    }

    fn paid_spend(
        &self,
        customers: &[CustomerId],
        currency: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<rust_decimal::Decimal>> {
        commerce::paid_spend(self.conn, customers, currency, (guanxi_sql::ns(from)?, guanxi_sql::ns(to)?))
    }

    fn customers_with_purchases(
        &self,
        currency: &str,
        after: Option<CustomerId>,
        limit: usize,
    ) -> Result<Vec<CustomerId>> {
        commerce::customers_with_purchases(self.conn, currency, after, limit)
    }
}

impl AuditStore for View<'_> {
    fn change_log(&self, q: &ChangeLogQuery) -> Result<Vec<ChangeLogEntry>> {
        let (where_sql, params) = query::change_log_where(q);
        let limit = q.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let sql = format!("SELECT {LOG_COLUMNS} FROM change_log WHERE {where_sql} ORDER BY seq LIMIT {limit}");
        let mut stmt = self.prepare_cached(&sql).map_err(sql_err)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(query::values(&params)), log_from_row).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
    }

    fn verify_change_log(&self) -> Result<guanxi_core::AuditCheck> {
        let mut stmt =
            self.prepare_cached(&format!("SELECT {LOG_COLUMNS} FROM change_log ORDER BY seq")).map_err(sql_err)?;
        let mut rows = stmt.query([]).map_err(sql_err)?;
        let mut v = ChainVerifier::default();
        while let Some(row) = rows.next().map_err(sql_err)? {
            // A column that is not UTF-8 text reads as "" (or no customer): its hash then
            // differs and the row is decoded, which reports it.
            let opt_text = |i: usize| match row.get_ref(i) {
                Ok(ValueRef::Text(t)) => std::str::from_utf8(t).ok(),
                _ => None,
            };
            let text = |i: usize| opt_text(i).unwrap_or("");
            let seq: i64 = row.get(0).map_err(sql_err)?;
            let stored = StoredEntry {
                seq: u64::try_from(seq).unwrap_or(0),
                at: text(1),
                actor: text(2),
                entity: text(3),
                entity_id: text(4),
                customer_id: opt_text(5),
                action: text(6),
                changes: text(7),
                prev_hash: text(8),
                hash: text(9),
            };
            v.feed_stored(&stored, || log_from_row(row).map_err(sql_err));
        }
        Ok(v.finish())
    }

    fn setting(&self, key: &str) -> Result<Option<Setting>> {
        sales::setting(self.conn, key)
    }

    fn settings(&self) -> Result<Vec<Setting>> {
        let mut stmt = self
            .prepare_cached("SELECT key, value, version FROM settings WHERE key NOT IN (?1, ?2) ORDER BY key")
            .map_err(sql_err)?;
        let rows = stmt.query_map([ACCESS_MODEL, KEY_CHECK], sales::setting_from_row).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
    }

    fn settings_under(&self, prefix: &str) -> Result<Vec<Setting>> {
        // Every key starting with the prefix sorts between it and it followed by the last
        // character there is: an index range, not a scan.
        let mut stmt = self
            .prepare_cached("SELECT key, value, version FROM settings WHERE key >= ?1 AND key < ?2 ORDER BY key")
            .map_err(sql_err)?;
        let rows =
            stmt.query_map([prefix, &format!("{prefix}\u{10FFFF}")], sales::setting_from_row).map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
    }

    fn sequences(&self) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.prepare_cached("SELECT key, value FROM sequences ORDER BY key").map_err(sql_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0))))
            .map_err(sql_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(sql_err)
    }

    fn access_model(&self) -> Result<Option<Arc<AccessModel>>> {
        // The model is parsed once per stored version: a one-row probe tells whether the
        // cached parse is still the stored one, on whichever connection reads (a counter like
        // `data_version` is per connection, so it could not be shared across the pool).
        let version: Option<i64> = self
            .prepare_cached("SELECT version FROM settings WHERE key = ?1")
            .map_err(sql_err)?
            .query_row([ACCESS_MODEL], |r| r.get(0))
            .optional()
            .map_err(sql_err)?;
        let mut cache = self.access_cache.lock().map_err(|_| StorageError::msg("cache lock poisoned"))?;
        // A session's uncommitted model is never cached: rolled back, its version number
        // could later name a different model.
        if let Some((_, model)) = cache.as_ref().filter(|(v, _)| *v == version && !self.session) {
            return Ok(model.clone());
        }
        let stored: Option<(String, i64)> = self
            .prepare_cached("SELECT value, version FROM settings WHERE key = ?1")
            .map_err(sql_err)?
            .query_row([ACCESS_MODEL], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(sql_err)?;
        let model = stored
            .as_ref()
            .map(|(json, _)| serde_json::from_str::<AccessModel>(json).map(Arc::new))
            .transpose()
            .map_err(|e| StorageError::with_source("stored access model does not decode", e))?;
        if !self.session {
            *cache = Some((stored.map(|(_, v)| v), model.clone()));
        }
        Ok(model)
    }
}

/// The cipher a batch writes with: only batches holding sensitive fields need one (and an
/// encrypted store opened without its key refuses those).
fn cipher_for(changes: &Changes, keys: &Keys) -> Result<Option<Arc<Cipher>>> {
    let sensitive = !changes.contacts.is_empty()
        || changes.leads.iter().any(|l| l.record().phone.is_some())
        || changes.customers.iter().any(|c| !c.record().identifiers.is_empty());
    // Other batches still get the key when there is one: an update that drops a customer's
    // identifiers reads its stored ones to unindex them.
    if sensitive { keys.for_write() } else { Ok(keys.cipher.clone()) }
}

fn reserve(conn: &Connection, key: &str, count: u64) -> Result<u64> {
    let last: i64 = conn
        .prepare_cached(
            "INSERT INTO sequences (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = value + excluded.value RETURNING value",
        )
        .map_err(sql_err)?
        .query_row(params![key, count.max(1) as i64], |r| r.get(0))
        .map_err(sql_err)?;
    Ok(u64::try_from(last).unwrap_or(0) + 1 - count.max(1))
}

impl guanxi_core::ReadThrough for SqliteStore {
    fn read_through<R: Send>(&self, read: impl FnOnce(&dyn guanxi_core::StoreReads) -> Result<R> + Send) -> Result<R> {
        self.read(|view| read(view))
    }
}

impl StoreWrite for SqliteStore {
    fn apply(&self, changes: &Changes) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        self.refuse_in_session()?;
        let mut conn = self.writer()?;
        let keys = self.keys()?;
        let cipher = cipher_for(changes, &keys)?;
        // IMMEDIATE: take the write lock up front, so a concurrent writer in another process
        // waits (busy timeout) instead of failing half-way with SQLITE_BUSY.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql_err)?;
        apply_batch(&tx, changes, cipher.as_deref())?;
        tx.commit().map_err(sql_err)
    }

    fn reserve_sequence(&self, key: &str, count: u64) -> Result<u64> {
        self.refuse_in_session()?;
        reserve(&*self.writer()?, key, count)
    }
}

impl CrmStore for SqliteStore {
    fn write_session(&self, work: &mut dyn FnMut(&dyn StoreView) -> Result<()>) -> Result<()> {
        self.refuse_in_session()?;
        let mut conn = self.writer()?;
        let keys = self.keys()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql_err)?;
        {
            let _inside = SessionMark::enter(self);
            work(&View { conn: &tx, keys: &keys, access_cache: &self.access_cache, session: true })?;
        }
        tx.commit().map_err(sql_err)
    }

    fn backup_to(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Err(Error::InvalidState(format!("backup target {} already exists", dest.display())));
        }
        let mut dst = Connection::open(dest).map_err(sql_err)?;
        match &self.readers {
            // A read connection: the writer (and its batches) is never blocked.
            Some(pool) => pool.with(|src| copy_database(src, &mut dst))?,
            None => {
                self.refuse_in_session()?;
                copy_database(&*self.writer()?, &mut dst)?
            }
        }
        // A backup stands alone: one file, no -wal or -shm, readable in immutable mode.
        dst.execute_batch("PRAGMA journal_mode = DELETE").map_err(sql_err)
    }

    fn open_backup(&self, path: &Path) -> Result<Box<dyn CrmStore>> {
        Ok(Box::new(SqliteStore::open_read_only(path)?))
    }

    fn rotate_field_key(&self, new_key: &[u8]) -> Result<u64> {
        self.rotate_key(&FieldKey::from_bytes(new_key)?)
    }

    fn field_key_fingerprint(&self) -> Result<Option<String>> {
        Ok(self.keys()?.fingerprint.clone())
    }
}
