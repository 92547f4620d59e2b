//! Backup of a PostgreSQL store: a consistent snapshot of the whole store copied into a new
//! guanxi SQLite file, which `Crm::restore` loads back (into a file, or into a server).
//!
//! The snapshot is one `REPEATABLE READ, READ ONLY` transaction, so writers go on writing
//! while it is taken and the file holds the store as of one instant. The file is complete or
//! absent ([`SqliteStore::write_new_file`]); a store that encrypts fields writes a file
//! encrypted under the same key.

use std::cell::RefCell;
use std::path::Path;

use guanxi_core::store::copy_store;
use guanxi_core::{Result, StoreReads};
use guanxi_sqlite::{SqliteOptions, SqliteStore};

use crate::{Conn, PgStore, View, outside_runtime, pg_err};

impl PgStore {
    /// Runs `read` on one consistent snapshot of the store (a `REPEATABLE READ, READ ONLY`
    /// transaction): every read it makes sees the same instant, whatever commits meanwhile.
    ///
    /// ```no_run
    /// use guanxi_core::prelude::*;
    /// let store = guanxi_postgres::PgStore::connect("host=/run/postgresql dbname=crm").unwrap();
    /// let (customers, tags) = store
    ///     .read_snapshot(|s| Ok((s.count_customers(&Default::default())?, s.tags()?.len())))
    ///     .unwrap();
    /// ```
    pub fn read_snapshot<R: Send>(&self, read: impl FnOnce(&dyn StoreReads) -> Result<R> + Send) -> Result<R> {
        outside_runtime(|| self.snapshot_here(read))
    }

    /// [`PgStore::read_snapshot`] on this thread, which must not be inside a tokio runtime.
    fn snapshot_here<R>(&self, read: impl FnOnce(&dyn StoreReads) -> Result<R>) -> Result<R> {
        let held = self.keys_held()?;
        let keys = held.clone();
        let mut client = self.checkout()?;
        let out = (|| {
            let tx = client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(pg_err)?;
            let view = View { tx: RefCell::new(Conn::Tx(tx)), keys };
            read(&view)
            // Dropping the read-only transaction rolls it back: nothing to commit.
        })();
        self.checkin(client)?;
        out
    }

    /// Writes a snapshot into a new guanxi file at `dest`.
    pub(crate) fn backup_into_file(&self, dest: &Path) -> Result<()> {
        // An encrypted store's backup is encrypted under the same key.
        let options = SqliteOptions { field_key: self.keys()?.key.clone(), ..SqliteOptions::default() };
        // One plain thread for both ends: the file's write session stays on the thread that
        // opened it, and the client must not run inside a tokio runtime.
        outside_runtime(|| {
            SqliteStore::write_new_file(dest, options, |file| {
                self.snapshot_here(|src| copy_store(src, file).map(|_| ()))
            })
        })
    }
}
