//! File-level behaviour: reopening keeps everything, migrations are versioned, foreign files
//! and newer schemas are refused, the change log is append-only in the file itself.

use guanxi_core::testing::conformance::sample_customer;
use guanxi_core::{
    ChangeAction, ChangeLogEntry, ChangeLogQuery, Changes, CrmStore, CustomerFilter, Deleted, EntityKind, FieldChange,
    PageRequest, Tag, TagWrite, UserId, Write,
};
use guanxi_sqlite::SqliteStore;

#[test]
fn reopening_a_file_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let customers: Vec<_> = (0..20).map(sample_customer).collect();
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut changes = Changes {
            tags: vec![TagWrite::Put(Tag { name: "VIP".into(), group: Some("等级".into()), created_at: None })],
            ..Default::default()
        };
        for c in &customers {
            let mut c = c.clone();
            c.tags.insert("VIP".into());
            changes.customers.push(Write::Insert(c));
        }
        changes.change_log.push(ChangeLogEntry {
            seq: 0,
            at: customers[0].created_at,
            actor: UserId::new("alice").unwrap(),
            entity: EntityKind::Customer,
            entity_id: customers[0].id.to_string(),
            customer_id: Some(customers[0].id),
            action: ChangeAction::Create,
            changes: vec![FieldChange::new("name", None, Some(customers[0].name.clone().into()))],
            prev_hash: String::new(),
            hash: String::new(),
        });
        store.apply(&changes).unwrap();
        assert_eq!(store.reserve_sequence("C20240501", 5).unwrap(), 1);
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 1);
    let all =
        store.list_customers(&CustomerFilter::default().deleted(Deleted::Include), &PageRequest::first(100)).unwrap();
    assert_eq!(all.items.len(), customers.len());
    for (got, want) in all.items.iter().zip(&customers) {
        assert_eq!(got.tags.len(), 1);
        let mut got = got.clone();
        got.tags.clear();
        assert_eq!(&got, want);
    }
    assert_eq!(store.tag("VIP").unwrap().unwrap().group.as_deref(), Some("等级"));
    assert_eq!(store.change_log(&ChangeLogQuery::default()).unwrap().len(), 1);
    assert_eq!(store.reserve_sequence("C20240501", 1).unwrap(), 6, "sequences survive reopening");
}

#[test]
fn file_uses_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let _store = SqliteStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn change_log_is_append_only_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .apply(&Changes {
            change_log: vec![ChangeLogEntry {
                seq: 0,
                at: chrono::Utc::now(),
                actor: UserId::new("alice").unwrap(),
                entity: EntityKind::Tag,
                entity_id: "VIP".into(),
                customer_id: None,
                action: ChangeAction::Create,
                changes: vec![],
                prev_hash: String::new(),
                hash: String::new(),
            }],
            ..Default::default()
        })
        .unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let upd = raw.execute("UPDATE change_log SET actor = 'mallory'", []).unwrap_err();
    assert!(upd.to_string().contains("append-only"), "{upd}");
    let del = raw.execute("DELETE FROM change_log", []).unwrap_err();
    assert!(del.to_string().contains("append-only"), "{del}");
}

#[test]
fn refuses_a_foreign_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 3;").unwrap();
    drop(raw);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("not a guanxi database"), "{err}");
}

#[test]
fn refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    drop(SqliteStore::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(raw);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn handles_are_send_and_sync_and_serve_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SqliteStore>();
    let store = std::sync::Arc::new(SqliteStore::open_in_memory().unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for n in 0..25 {
                    let c = sample_customer(t * 100 + n);
                    store.apply(&Changes { customers: vec![Write::Insert(c)], ..Default::default() }).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let n = store.count_customers(&CustomerFilter::default().deleted(Deleted::Include)).unwrap();
    assert_eq!(n, 100);
}

/// Someone with the file edits, deletes or inserts change-log rows behind guanxi's back (after
/// dropping the append-only triggers): verification names the first broken entry.
#[test]
fn tampering_with_the_file_is_detected() {
    use guanxi_core::changelog::verify_chain;
    fn entry(n: u64) -> ChangeLogEntry {
        ChangeLogEntry {
            seq: 0,
            at: chrono::DateTime::from_timestamp(1_714_521_600 + n as i64, 0).unwrap(),
            actor: UserId::new("alice").unwrap(),
            entity: EntityKind::Tag,
            entity_id: format!("tag{n}"),
            customer_id: None,
            action: ChangeAction::Create,
            changes: vec![FieldChange::new("name", None, Some(format!("tag{n}").into()))],
            prev_hash: String::new(),
            hash: String::new(),
        }
    }
    let cases: [(&str, u64); 4] = [
        ("UPDATE change_log SET actor = 'mallory' WHERE seq = 3", 3),
        ("UPDATE change_log SET changes = '[]' WHERE seq = 2", 2),
        ("DELETE FROM change_log WHERE seq = 2", 3),
        ("UPDATE change_log SET seq = seq + 10 WHERE seq = 1", 2),
    ];
    for (attack, broken_at) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crm.db");
        let store = SqliteStore::open(&path).unwrap();
        store.apply(&Changes { change_log: (1..=4).map(entry).collect(), ..Default::default() }).unwrap();
        assert!(verify_chain(&store.change_log(&ChangeLogQuery::default()).unwrap()).is_intact());
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch("DROP TRIGGER change_log_no_update; DROP TRIGGER change_log_no_delete;").unwrap();
        raw.execute_batch(attack).unwrap();
        let check = verify_chain(&store.change_log(&ChangeLogQuery::default()).unwrap());
        assert_eq!(check.broken_at, Some(broken_at), "{attack}: {check:?}");
    }
}

#[test]
fn memory_stores_cannot_be_backed_up_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = guanxi_core::MemoryStore::new().backup_to(&dir.path().join("b.db")).unwrap_err();
    assert!(matches!(err, guanxi_core::Error::InvalidState(_)), "{err:?}");
    let store = SqliteStore::open(dir.path().join("crm.db")).unwrap();
    store.backup_to(&dir.path().join("b.db")).unwrap();
    let err = store.backup_to(&dir.path().join("b.db")).unwrap_err();
    assert!(matches!(err, guanxi_core::Error::InvalidState(_)), "an existing file is never overwritten: {err:?}");
}
