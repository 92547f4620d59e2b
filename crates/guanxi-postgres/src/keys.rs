//! Field encryption on PostgreSQL: the documents of contacts and leads sealed with
//! AES-256-GCM under the host's key (bound to their table and row), phone and identity-number
//! lookups and contact match keys through the keyed blind index, and the stored key check,
//! as the SQLite backend does (`guanxi_sql::FieldKeys`).
//!
//! Encrypting a plain store, and rotating the key, rewrite every sealed row in one
//! transaction under an exclusive lock on the key check (every writer of contacts or leads
//! holds it shared, so none writes under a key being replaced), then `VACUUM` the tables so the
//! old row versions go. What PostgreSQL cannot be made to forget is said in the crate docs:
//! its WAL, base backups and replicas keep the versions they already hold.

use std::sync::Arc;

use guanxi_core::{Contact, Customer, EncryptionError, Error, Result, StorageError};
use guanxi_sql::{Cipher, FieldKey, FieldKeys, KEY_CHECK};

use crate::{PgStore, View, decode, identifiers_context, in_transaction, sealed_context};

/// Rows re-encrypted per round trip.
const CHUNK: i64 = 500;

impl PgStore {
    /// The field-key state a view starts from.
    pub(crate) fn keys(&self) -> Result<Arc<FieldKeys>> {
        Ok(self.keys_held()?.clone())
    }

    /// The field-key state, held shared: a key rotation waits until it is dropped. Reads and
    /// batches hold it for their whole run; a write session does not (its work may call the
    /// store again), so a rotation during a session can make its next batch fail with a
    /// typed `WrongKey` instead of writing under the replaced key.
    pub(crate) fn keys_held(&self) -> Result<std::sync::RwLockReadGuard<'_, Arc<FieldKeys>>> {
        self.keys.read().map_err(|_| StorageError::msg("postgres key lock poisoned").into())
    }

    /// Reads the stored key check and checks the given key against it; a store without one
    /// is encrypted under the given key.
    pub(crate) fn open_keys(&self) -> Result<()> {
        let stored = self.with_client(|c| {
            let rows = c.query("SELECT value FROM settings WHERE key = $1", &[&KEY_CHECK]).map_err(crate::pg_err)?;
            Ok(rows.first().map(|r| r.get::<_, String>(0)).filter(|v| !v.is_empty()))
        })?;
        let keys = match (&self.options.field_key, stored) {
            (None, stored) => FieldKeys { encrypted: stored.is_some(), ..FieldKeys::default() },
            (Some(key), Some(check)) if check != Cipher::new(key).key_check() => {
                return Err(Error::Encryption(EncryptionError::WrongKey));
            }
            (Some(key), Some(_)) => FieldKeys::under(key),
            (Some(key), None) => {
                self.reencrypt(&FieldKeys::default(), key)?;
                FieldKeys::under(key)
            }
        };
        *self.keys.write().map_err(|_| StorageError::msg("postgres key lock poisoned"))? = Arc::new(keys);
        Ok(())
    }

    /// Re-encrypts every contact and lead under `new_key` and rebuilds the blind index, in
    /// one transaction; returns how many records were rewritten. The store must hold the
    /// current key (or be unencrypted, which this encrypts).
    ///
    /// ```no_run
    /// use guanxi_postgres::{PgOptions, PgStore};
    /// use guanxi_sql::FieldKey;
    /// let (old, new) = (FieldKey::generate(), FieldKey::generate());
    /// let options = PgOptions { field_key: Some(old), ..PgOptions::default() };
    /// let store = PgStore::connect_with("host=/run/postgresql dbname=crm", options).unwrap();
    /// store.rotate_key(&new).unwrap();
    /// ```
    pub fn rotate_key(&self, new_key: &FieldKey) -> Result<u64> {
        let mut keys = self.keys.write().map_err(|_| StorageError::msg("postgres key lock poisoned"))?;
        keys.for_write()?;
        let n = self.reencrypt(&keys, new_key)?;
        *keys = Arc::new(FieldKeys::under(new_key));
        Ok(n)
    }

    /// Rewrites the sealed rows from `old` to `new_key`, then vacuums what they leave behind.
    fn reencrypt(&self, old: &FieldKeys, new_key: &FieldKey) -> Result<u64> {
        let new = Arc::new(FieldKeys::under(new_key));
        let expected = old.cipher.as_ref().map(|c| c.key_check()).unwrap_or_default();
        let rewritten = self.with_client(|client| {
            in_transaction(client, new.clone(), |view| {
                // A writer that holds the key check while it waits on this handle would wait
                // forever: give up, typed, instead.
                view.execute("SET LOCAL lock_timeout = '30s'", &[])?;
                view.execute(
                    "INSERT INTO settings (key, value, version) VALUES ($1, '', 1) ON CONFLICT DO NOTHING",
                    &[&KEY_CHECK],
                )?;
                let rows = view.query("SELECT value FROM settings WHERE key = $1 FOR UPDATE", &[&KEY_CHECK])?;
                let stored: String = rows.first().map(|r| r.get(0)).unwrap_or_default();
                if stored == new_key_check(new_key) {
                    return Ok(0); // another handle got there first, under this very key
                }
                if stored != expected {
                    return Err(Error::Encryption(EncryptionError::WrongKey));
                }
                let n = view.reseal_contacts(old)? + view.reseal_identifiers(old)? + view.reseal_leads(old)?;
                view.execute(
                    "UPDATE settings SET value = $2, version = version + 1 WHERE key = $1",
                    &[&KEY_CHECK, &new_key_check(new_key)],
                )?;
                Ok(n)
            })
        })?;
        // Old row versions (clear text, or ciphertext under the old key) go now rather than
        // at the next autovacuum. Engines without VACUUM (CockroachDB) collect them themselves.
        let vacuumed = self.with_client(|c| {
            c.batch_execute("VACUUM customers, contacts, leads, contact_lookup, match_keys").map_err(crate::pg_err)
        });
        if let Err(e) = vacuumed {
            tracing::warn!("re-encrypted, but VACUUM failed ({e}): old row versions go at the next autovacuum");
        }
        Ok(rewritten)
    }
}

fn new_key_check(key: &FieldKey) -> String {
    Cipher::new(key).key_check()
}

impl View<'_> {
    /// Re-seals every contact (read under `old`, written under this view's keys) and rebuilds
    /// its lookups and match keys.
    fn reseal_contacts(&self, old: &FieldKeys) -> Result<u64> {
        self.reseal("contacts", old, |plain| {
            let contact: Contact = decode("contact", plain)?;
            self.index_contact(&contact)
        })
    }

    /// Re-seals every customer's identifiers and their match keys; returns how many
    /// customers have identifiers.
    fn reseal_identifiers(&self, old: &FieldKeys) -> Result<u64> {
        let select = "SELECT id, doc, identifiers FROM customers WHERE identifiers IS NOT NULL AND id > $1 \
                      ORDER BY id LIMIT $2";
        let mut after = String::new();
        let mut n = 0;
        loop {
            let rows = self.query(select, &[&after, &CHUNK])?;
            for row in &rows {
                let (id, doc, stored): (&str, &str, &str) = (row.get(0), row.get(1), row.get(2));
                let mut c: Customer = decode("customer", doc)?;
                c.identifiers = decode("customer identifiers", &old.open(&identifiers_context(c.id), stored)?)?;
                let (sealed, keys) = self.customer_columns(&c)?;
                self.execute("UPDATE customers SET identifiers = $2 WHERE id = $1", &[&id, &sealed])?;
                self.replace_match_keys(id, c.id, keys)?;
                n += 1;
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == CHUNK => after = last.get::<_, String>(0),
                _ => return Ok(n),
            }
        }
    }

    /// Re-seals every lead document.
    fn reseal_leads(&self, old: &FieldKeys) -> Result<u64> {
        self.reseal("leads", old, |_| Ok(()))
    }

    /// Re-seals every document of `table` from `old` to this view's keys, a chunk at a time,
    /// calling `reindex` with each plain document; returns how many there were.
    fn reseal(&self, table: &str, old: &FieldKeys, reindex: impl Fn(&str) -> Result<()>) -> Result<u64> {
        let (select, update) = (
            format!("SELECT id, doc FROM {table} WHERE id > $1 ORDER BY id LIMIT $2"),
            format!("UPDATE {table} SET doc = $2 WHERE id = $1"),
        );
        let mut after = String::new();
        let mut n = 0;
        loop {
            let rows = self.query(&select, &[&after, &CHUNK])?;
            for row in &rows {
                let (id, doc): (&str, &str) = (row.get(0), row.get(1));
                let context = sealed_context(table, id);
                let plain = old.open(&context, doc)?;
                self.execute(&update, &[&id, &self.keys.seal(&context, &plain)?])?;
                reindex(&plain)?;
                n += 1;
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == CHUNK => after = last.get::<_, String>(0),
                _ => return Ok(n),
            }
        }
    }
}
