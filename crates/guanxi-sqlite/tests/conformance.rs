//! The SQLite store passes the storage conformance suite, in memory and on a file.

mod in_memory {
    guanxi_core::store_conformance_tests!(guanxi_sqlite::SqliteStore::open_in_memory().unwrap());
}

mod on_file {
    use guanxi_core::prelude::*;
    use guanxi_core::testing::TestStore;

    /// A store on a file in a temporary directory that lives as long as the store.
    struct FileStore {
        store: guanxi_sqlite::SqliteStore,
        _dir: tempfile::TempDir,
    }

    impl TestStore for FileStore {
        fn store(&self) -> &dyn CrmStore {
            &self.store
        }
    }

    fn file_store() -> FileStore {
        let dir = tempfile::tempdir().unwrap();
        let store = guanxi_sqlite::SqliteStore::open(dir.path().join("crm.db")).unwrap();
        FileStore { store, _dir: dir }
    }

    guanxi_core::store_conformance_tests!(file_store());
}

mod encrypted {
    // Field encryption is invisible to the contract: the same cases pass with a key.
    guanxi_core::store_conformance_tests!(
        guanxi_sqlite::SqliteStore::open_in_memory_with(
            guanxi_sqlite::SqliteOptions::default().field_key(guanxi_sqlite::FieldKey::generate())
        )
        .unwrap()
    );
}
