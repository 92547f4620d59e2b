//! File-level behaviour: reopening keeps everything, migrations are versioned, foreign files
//! and newer schemas are refused, the change log is append-only in the file itself.

use guanxi_core::prelude::*;
use guanxi_core::testing::conformance::sample_customer;
use guanxi_core::{
    ChangeAction, ChangeLogEntry, ChangeLogQuery, Changes, CustomerFilter, Deleted, EntityKind, FieldChange,
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
    assert_eq!(store.schema_version().unwrap(), guanxi_sqlite::SCHEMA_VERSION);
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
    let cases: [(&str, u64); 9] = [
        ("UPDATE change_log SET actor = 'mallory' WHERE seq = 3", 3),
        ("UPDATE change_log SET changes = '[]' WHERE seq = 2", 2),
        ("DELETE FROM change_log WHERE seq = 2", 3),
        ("UPDATE change_log SET seq = seq + 10 WHERE seq = 1", 2),
        ("UPDATE change_log SET at = '2020-01-01T00:00:00.000000000Z' WHERE seq = 4", 4),
        ("UPDATE change_log SET customer_id = '00000000-0000-0000-0000-000000000007' WHERE seq = 1", 1),
        ("UPDATE change_log SET entity = 'customer' WHERE seq = 2", 2),
        // Not one JSON value: bytes moved from the changes into the fields after them.
        ("UPDATE change_log SET changes = changes || ',\"customer_id\":null' WHERE seq = 3", 3),
        ("UPDATE change_log SET prev_hash = hash WHERE seq = 2", 2),
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
        let check = verify_chain(&store.change_log(&ChangeLogQuery::default()).unwrap_or_default());
        if !attack.contains("|| ',") {
            assert_eq!(check.broken_at, Some(broken_at), "decoded, {attack}: {check:?}");
        }
        // The store's own verification hashes the stored text without decoding it.
        let streamed = store.verify_change_log().unwrap();
        assert_eq!(streamed.broken_at, Some(broken_at), "streamed, {attack}: {streamed:?}");
    }
}

/// A log whose changes were stored in another JSON form than the canonical one (keys in
/// another order, spaces: an older store's text) still verifies: such rows are decoded and
/// re-hashed, and an edit to them is still found.
#[test]
fn entries_stored_in_another_json_form_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let store = SqliteStore::open(&path).unwrap();
    let entry = |n: i64, new: serde_json::Value| ChangeLogEntry {
        seq: 0,
        at: chrono::DateTime::from_timestamp(1_714_521_600 + n, 0).unwrap(),
        actor: UserId::new("alice").unwrap(),
        entity: EntityKind::Customer,
        entity_id: format!("c{n}"),
        customer_id: None,
        action: ChangeAction::Update,
        changes: vec![FieldChange::new("custom", Some(serde_json::json!(1)), Some(new))],
        prev_hash: String::new(),
        hash: String::new(),
    };
    let entries = vec![entry(1, serde_json::json!({"b": 1, "a": [2, 3]})), entry(2, serde_json::json!("x"))];
    store.apply(&Changes { change_log: entries, ..Default::default() }).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let stored: String = raw.query_row("SELECT changes FROM change_log WHERE seq = 1", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, r#"[{"field":"custom","new":{"a":[2,3],"b":1},"old":1}]"#, "stored canonical");
    raw.execute_batch("DROP TRIGGER change_log_no_update;").unwrap();
    raw.execute(
        "UPDATE change_log SET changes = ? WHERE seq = 1",
        [r#"[ {"old": 1, "field": "custom", "new": {"b": 1, "a": [2, 3]}} ]"#],
    )
    .unwrap();
    let check = store.verify_change_log().unwrap();
    assert!(check.is_intact(), "{check:?}");
    assert_eq!(check.entries, 2);
    raw.execute("UPDATE change_log SET changes = ? WHERE seq = 1", [r#"[ {"old": 1, "field": "custom", "new": 2} ]"#])
        .unwrap();
    assert_eq!(store.verify_change_log().unwrap().broken_at, Some(1));
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

mod encryption {
    use guanxi_core::prelude::*;
    use guanxi_core::testing::conformance::sample_customer;
    use guanxi_core::{Changes, EncryptionError, Error, Phone, Write};
    use guanxi_sqlite::{FieldKey, SqliteOptions, SqliteStore};

    use guanxi_core::testing::encryption::sample_contact as contact;

    fn with_key(key: &FieldKey) -> SqliteOptions {
        SqliteOptions::default().field_key(key.clone())
    }

    /// Raw bytes of the file, WAL included: what an attacker with the disk sees.
    fn file_bytes(dir: &std::path::Path) -> Vec<u8> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            out.extend(std::fs::read(e.unwrap().path()).unwrap());
        }
        out
    }

    fn contains(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[test]
    fn phones_are_encrypted_on_disk_found_by_blind_index_and_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crm.db");
        let customer = sample_customer(0);
        // Written in clear first: opening with a key encrypts what is there.
        {
            let plain = SqliteStore::open(&path).unwrap();
            let changes = Changes {
                customers: vec![Write::Insert(customer.clone())],
                contacts: vec![Write::Insert(contact(0, customer.id, "13812345678"))],
                ..Default::default()
            };
            plain.apply(&changes).unwrap();
        }
        let key = FieldKey::generate();
        {
            let store = SqliteStore::open_with(&path, with_key(&key)).unwrap();
            assert!(store.is_encrypted().unwrap());
            let mut with_id = contact(1, customer.id, "13900001111");
            with_id.id_number = Some(guanxi_core::IdNumber::parse("11010519491231002X").unwrap());
            let more = Changes { contacts: vec![Write::Insert(with_id)], ..Default::default() };
            store.apply(&more).unwrap();
            let found = store.contacts_by_phone(&Phone::parse("139 0000 1111").unwrap()).unwrap();
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].phones[0].as_str(), "+8613900001111");
        }
        let bytes = file_bytes(dir.path());
        assert!(!contains(&bytes, "13812345678") && !contains(&bytes, "13900001111"), "no phone in clear on disk");
        assert!(!contains(&bytes, "11010519491231002X"), "no identity number in clear on disk");
        for id in &customer.identifiers {
            assert!(!contains(&bytes, &id.value), "no customer identifier {id} in clear on disk");
        }

        // Wrong key: a typed error, never garbage.
        let wrong = SqliteStore::open_with(&path, with_key(&FieldKey::generate()));
        assert!(matches!(wrong, Err(Error::Encryption(EncryptionError::WrongKey))), "{wrong:?}");
        // No key: reads of encrypted fields and writes of new ones are refused, typed.
        {
            let keyless = SqliteStore::open(&path).unwrap();
            let read = keyless.contacts_of(customer.id);
            assert!(matches!(read, Err(Error::Encryption(EncryptionError::KeyRequired))), "{read:?}");
            let write = keyless.apply(&Changes {
                contacts: vec![Write::Insert(contact(2, customer.id, "13700000000"))],
                ..Default::default()
            });
            assert!(matches!(write, Err(Error::Encryption(EncryptionError::KeyRequired))), "{write:?}");
            let read = keyless.customer(customer.id);
            assert!(matches!(read, Err(Error::Encryption(EncryptionError::KeyRequired))), "{read:?}");
        }
        // Rotation re-encrypts everything; the old key stops working, lookups keep working.
        let new_key = FieldKey::generate();
        {
            let store = SqliteStore::open_with(&path, with_key(&key)).unwrap();
            // Two contacts and the customer with identifiers.
            assert_eq!(store.rotate_key(&new_key).unwrap(), 3);
            assert_eq!(store.contacts_by_phone(&Phone::parse("13812345678").unwrap()).unwrap().len(), 1);
            let id = guanxi_core::IdNumber::parse("11010519491231002X").unwrap();
            assert_eq!(store.contacts_by_id_number(&id).unwrap().len(), 1);
        }
        assert!(matches!(
            SqliteStore::open_with(&path, with_key(&key)),
            Err(Error::Encryption(EncryptionError::WrongKey))
        ));
        let store = SqliteStore::open_with(&path, with_key(&new_key)).unwrap();
        assert_eq!(store.customer(customer.id).unwrap().unwrap().identifiers, customer.identifiers);
        let probe = guanxi_core::dedup::MatchProfile::new(customer.id, "", "", customer.kind)
            .identifier(customer.identifiers[0].scheme, &customer.identifiers[0].value);
        let found = store.customers_by_match_keys(&guanxi_core::dedup::match_keys(&probe), 10).unwrap();
        assert_eq!(found, [customer.id], "found by its identifier under the rotated blind-index key");
        let phones: Vec<String> =
            store.contacts_of(customer.id).unwrap().iter().map(|c| c.phones[0].to_string()).collect();
        assert_eq!(phones, ["+8613812345678", "+8613900001111"]);
    }

    /// Encrypting a plain file, and rotating the key, leave nothing readable behind (issue 15,
    /// item 10): no phone in clear and no old-key ciphertext in the file's free pages or its WAL.
    #[test]
    fn encrypting_and_rotating_leave_no_old_values_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crm.db");
        let customer = sample_customer(0);
        let phones: Vec<String> = (0..200).map(|n| format!("1391234{n:04}")).collect();
        {
            let plain = SqliteStore::open(&path).unwrap();
            let contacts = phones.iter().enumerate().map(|(n, p)| Write::Insert(contact(n as u128, customer.id, p)));
            let changes = Changes {
                customers: vec![Write::Insert(customer.clone())],
                contacts: contacts.collect(),
                ..Default::default()
            };
            plain.apply(&changes).unwrap();
        }
        let key = FieldKey::generate();
        let store = SqliteStore::open_with(&path, with_key(&key)).unwrap();
        let bytes = file_bytes(dir.path());
        let left: Vec<&String> = phones.iter().filter(|p| contains(&bytes, p)).collect();
        assert!(
            left.is_empty(),
            "{} of 200 phones still in clear after encrypting, e.g. {:?}",
            left.len(),
            left.first()
        );

        let sealed = |path: &std::path::Path| -> Vec<Vec<u8>> {
            let raw = rusqlite::Connection::open(path).unwrap();
            let mut stmt = raw.prepare("SELECT phones FROM contacts").unwrap();
            stmt.query_map([], |r| Ok(r.get_ref(0)?.as_bytes().unwrap().to_vec()))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let old = sealed(&path);
        assert_eq!(old.len(), 200);
        store.rotate_key(&FieldKey::generate()).unwrap();
        let bytes = file_bytes(dir.path());
        let stale = old.iter().filter(|c| bytes.windows(c.len()).any(|w| w == c.as_slice())).count();
        assert_eq!(stale, 0, "old-key ciphertexts survive the rotation");
        let stored = store.contacts_of(customer.id).unwrap();
        assert_eq!(stored.len(), 200);
    }

    /// Key rotation against concurrent contact writes (issue 15, item 7): with the connection
    /// and the key state behind two locks taken in opposite orders, this hung in 6 of 8 runs.
    #[test]
    fn rotating_the_key_while_writing_contacts_never_deadlocks() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_with(dir.path().join("crm.db"), with_key(&FieldKey::generate())).unwrap();
        guanxi_core::testing::encryption::rotation_under_concurrent_writes(
            std::sync::Arc::new(store),
            3,
            40,
            15,
            || FieldKey::generate().as_bytes().to_vec(),
        );
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crm.db");
        let key = FieldKey::generate();
        let customer = sample_customer(0);
        let store = SqliteStore::open_with(&path, with_key(&key)).unwrap();
        let (a, b) = (contact(0, customer.id, "13812345678"), contact(1, customer.id, "13900001111"));
        store
            .apply(&Changes {
                customers: vec![Write::Insert(customer.clone())],
                contacts: vec![Write::Insert(a.clone()), Write::Insert(b.clone())],
                ..Default::default()
            })
            .unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE contacts SET phones = (SELECT phones FROM contacts WHERE id = ?1) WHERE id = ?2",
            [a.id.to_string(), b.id.to_string()],
        )
        .unwrap();
        let got = store.contact(b.id);
        assert!(matches!(got, Err(Error::Encryption(EncryptionError::Corrupt { .. }))), "{got:?}");
    }
}

/// What migration 5 (service) adds.
/// Undoes migrations 7 (tickets' `created_by`) and 6 (match keys, `merged_into`).
const SCHEMA_6: &str = "DROP TABLE purchases; DROP TABLE products; DROP TABLE segment_memberships; DROP TABLE events; ALTER TABLE customers DROP COLUMN identifiers; DROP INDEX tickets_sla_clock; ALTER TABLE tickets DROP COLUMN created_by; \
    CREATE INDEX tickets_sla_clock ON tickets (open, id, owner, department, province, clock); \
    DROP TABLE match_keys; DROP TABLE match_keys_backfill; ALTER TABLE customers DROP COLUMN merged_into;";

const SCHEMA_5: &str = "DROP TABLE ticket_entries; DROP TABLE ticket_docs; DROP TABLE tickets; DROP TABLE article_vocab; DROP TABLE article_index; \
    DROP TABLE article_tags; DROP TABLE articles;";

#[test]
fn migrating_a_version_1_file_indexes_its_phones() {
    use guanxi_core::{Contact, ContactId, Phone};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let customer = sample_customer(0);
    let contact = Contact {
        id: ContactId(uuid::Uuid::from_u128(7)),
        name: "张伟".into(),
        primary: true,
        ..guanxi_core::testing::encryption::sample_contact(0, customer.id, "13812345678")
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        let changes = Changes {
            customers: vec![Write::Insert(customer)],
            contacts: vec![Write::Insert(contact.clone())],
            ..Default::default()
        };
        store.apply(&changes).unwrap();
    }
    // Take the file back to schema 1: what migrations 2 and 3 add is gone.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(SCHEMA_6).unwrap();
    conn.execute_batch(SCHEMA_5).unwrap();
    conn.execute_batch(
        "DROP TABLE tasks; DROP TABLE leads; DROP TABLE stage_history_docs; DROP TABLE stage_history; \
         DROP TABLE opportunity_lines; DROP TABLE opportunity_docs; DROP TABLE opportunities; \
         DROP TABLE contact_lookup; DROP TABLE settings; DROP INDEX customers_by_owner_id; \
         DROP INDEX customers_by_department; ALTER TABLE contacts DROP COLUMN id_number; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), guanxi_sqlite::SCHEMA_VERSION);
    assert_eq!(store.contacts_by_phone(&Phone::parse("13812345678").unwrap()).unwrap(), vec![contact]);
}

#[test]
fn migrating_a_version_3_file_summarizes_history_and_lines_for_reports() {
    use guanxi_core::sales::{Pipeline, SalesFacts, SalesQuery};
    use guanxi_core::testing::sales_data;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let mut rng = sales_data::Rng::new(5);
    let (mut opps, history): (Vec<_>, Vec<_>) = (0..300).map(|n| sales_data::opportunity(n, &mut rng)).unzip();
    let history: Vec<_> = history.into_iter().flatten().collect();
    // Text the summary must escape survives the migration's SQL encoding too.
    let won = opps.iter_mut().find(|o| o.won_at.is_some() && o.currency == "CNY" && !o.lines.is_empty()).unwrap();
    won.lines.iter_mut().for_each(|l| l.product = "50%\u{1f}off".into());
    {
        let store = SqliteStore::open(&path).unwrap();
        let changes = Changes {
            opportunities: opps.iter().cloned().map(Write::Insert).collect(),
            stage_history: history.clone(),
            ..Default::default()
        };
        store.apply(&changes).unwrap();
    }
    // Take the file back to schema 3: no summaries.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(SCHEMA_6).unwrap();
    conn.execute_batch(SCHEMA_5).unwrap();
    conn.execute_batch(
        "ALTER TABLE opportunities DROP COLUMN stays; ALTER TABLE opportunities DROP COLUMN line_totals; \
         PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), guanxi_sqlite::SCHEMA_VERSION);
    let p = Pipeline::standard();
    let q = SalesQuery::new("standard");
    let expected = SalesFacts::from_records(&p, &q, "CNY", &opps, |o| {
        history.iter().filter(|h| h.opportunity_id == o.id).cloned().collect()
    });
    assert!(expected.won_by_product.iter().any(|g| g.key == "50%\u{1f}off"));
    assert!(!expected.stays.is_empty() && !expected.losses.is_empty());
    assert_eq!(store.sales_facts(&p, &q, "CNY").unwrap(), expected);
}

#[test]
fn upgrading_a_schema_5_file_indexes_its_match_keys() {
    use guanxi_core::dedup::{MatchProfile, match_keys};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let mut huawei = sample_customer(1);
    huawei.name = "华为技术有限公司".into();
    huawei.kind = guanxi_core::CustomerKind::Enterprise;
    huawei.tags.clear();
    huawei.merged_into = None;
    {
        let store = SqliteStore::open(&path).unwrap();
        store.apply(&Changes { customers: vec![Write::Insert(huawei.clone())], ..Default::default() }).unwrap();
    }
    // Back to what schema 5 wrote: no match keys, no merged_into column.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(SCHEMA_6).unwrap();
    conn.execute_batch("PRAGMA user_version = 5;").unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), guanxi_sqlite::SCHEMA_VERSION);
    let nil = guanxi_core::CustomerId(uuid::Uuid::nil());
    let probe = MatchProfile::new(nil, "", "华为技术股份有限公司", guanxi_core::CustomerKind::Enterprise);
    assert_eq!(store.customers_by_match_keys(&match_keys(&probe), 100).unwrap(), vec![huawei.id]);
    assert_eq!(store.customer(huawei.id).unwrap().unwrap().merged_into, None);
}

/// Issue 16, item 5: reads go through their own connections, so one never waits behind a
/// write batch that is still open; it sees the last commit, then the batch once committed.
#[test]
fn reads_do_not_wait_for_an_open_write_session() {
    use std::sync::mpsc;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("crm.db")).unwrap();
    store.apply(&Changes { customers: vec![Write::Insert(sample_customer(0))], ..Default::default() }).unwrap();
    let all = CustomerFilter::default().deleted(Deleted::Include);
    let (written, wait_written) = mpsc::channel();
    let (release, wait_release) = mpsc::channel::<()>();
    let store = &store;
    std::thread::scope(|s| {
        let writer = s.spawn(move || {
            store
                .write_session(&mut |tx| {
                    let batch = (1..50).map(|n| Write::Insert(sample_customer(n))).collect();
                    tx.apply(&Changes { customers: batch, ..Default::default() })?;
                    written.send(()).unwrap();
                    // Hold the session (and the write lock) open until the reader is done.
                    wait_release.recv_timeout(Duration::from_secs(30)).unwrap();
                    Ok(())
                })
                .unwrap();
        });
        wait_written.recv_timeout(Duration::from_secs(30)).unwrap();
        let (read, wait_read) = mpsc::channel();
        let all = &all;
        s.spawn(move || {
            let n = store.count_customers(all).unwrap();
            let first = store.customer(sample_customer(0).id).unwrap().is_some();
            let uncommitted = store.customer(sample_customer(1).id).unwrap().is_some();
            read.send((n, first, uncommitted)).unwrap();
        });
        // With one shared connection this read would wait for the session: it must not.
        let seen = wait_read.recv_timeout(Duration::from_secs(10)).expect("a read waited for the open write session");
        assert_eq!(seen, (1, true, false), "the last commit, not the open batch");
        release.send(()).unwrap();
        writer.join().unwrap();
    });
    assert_eq!(store.count_customers(&all).unwrap(), 50);
}

/// A write through the store itself from inside its own write session would wait for ever
/// for the writer the session holds: it is refused at once.
#[test]
fn writing_around_a_session_from_inside_it_is_refused_not_a_deadlock() {
    let store = SqliteStore::open_in_memory().unwrap();
    let r = store.write_session(&mut |_tx| {
        let inner = store.apply(&Changes { customers: vec![Write::Insert(sample_customer(1))], ..Default::default() });
        assert!(matches!(inner, Err(guanxi_core::Error::InvalidState(_))), "{inner:?}");
        // In memory there are no read connections: a read around the session is refused too.
        assert!(matches!(store.count_customers(&CustomerFilter::default()), Err(guanxi_core::Error::InvalidState(_))));
        Ok(())
    });
    r.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("crm.db")).unwrap();
    store
        .write_session(&mut |tx| {
            tx.apply(&Changes { customers: vec![Write::Insert(sample_customer(1))], ..Default::default() })?;
            assert!(matches!(store.reserve_sequence("x", 1), Err(guanxi_core::Error::InvalidState(_))));
            // On a file, a read around the session sees the last commit.
            assert_eq!(store.count_customers(&CustomerFilter::default().deleted(Deleted::Include))?, 0);
            Ok(())
        })
        .unwrap();
    assert_eq!(store.count_customers(&CustomerFilter::default().deleted(Deleted::Include)).unwrap(), 1);
}

/// The files in a directory, by name.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A closed store file holding one customer, taken back to schema 5 (as an old backup is).
fn old_schema_file(path: &std::path::Path) {
    let store = SqliteStore::open(path).unwrap();
    store.apply(&Changes { customers: vec![Write::Insert(sample_customer(1))], ..Default::default() }).unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(SCHEMA_6).unwrap();
    conn.execute_batch("PRAGMA user_version = 5; PRAGMA journal_mode = DELETE;").unwrap();
}

/// Issue 16, item 6: reading or restoring a backup never changes its bytes or leaves files
/// beside it, and a backup of an older schema is migrated in the copy, not in place.
#[test]
fn backups_are_read_without_a_change_and_restored_through_a_migrated_copy() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let target = dir.path().join("target");
    std::fs::create_dir_all(&backups).unwrap();
    std::fs::create_dir_all(&target).unwrap();
    // A backup of today's schema: one standalone file, read in place without a change.
    let store = SqliteStore::open(dir.path().join("crm.db")).unwrap();
    store.apply(&Changes { customers: vec![Write::Insert(sample_customer(0))], ..Default::default() }).unwrap();
    let backup = backups.join("today.db");
    store.backup_to(&backup).unwrap();
    assert_eq!(files_in(&backups), ["today.db"]);
    let bytes = std::fs::read(&backup).unwrap();
    let read = SqliteStore::open_read_only(&backup).unwrap();
    assert_eq!(read.count_customers(&CustomerFilter::default().deleted(Deleted::Include)).unwrap(), 1);
    assert!(read.apply(&Changes { customers: vec![Write::Insert(sample_customer(2))], ..Default::default() }).is_err());
    drop(read);
    // An old backup: refused read-only (it would need migrating), restored through a copy.
    let old = backups.join("old.db");
    old_schema_file(&old);
    let old_bytes = std::fs::read(&old).unwrap();
    let err = SqliteStore::open_read_only(&old).unwrap_err();
    assert!(err.to_string().contains("schema version 5"), "{err}");
    let into = target.join("crm.db");
    SqliteStore::restore(&backup, &into).unwrap();
    SqliteStore::restore(&old, &into).unwrap(); // over the first restore
    assert_eq!(std::fs::read(&backup).unwrap(), bytes, "the backup's bytes");
    assert_eq!(std::fs::read(&old).unwrap(), old_bytes, "the old backup's bytes");
    assert_eq!(files_in(&backups), ["old.db", "today.db"], "nothing left beside the backups");
    assert_eq!(files_in(&target), ["crm.db"], "nothing left beside the restored file");
    let restored = SqliteStore::open(&into).unwrap();
    assert_eq!(restored.schema_version().unwrap(), guanxi_sqlite::SCHEMA_VERSION);
    let ids: Vec<_> = restored
        .list_customers(&CustomerFilter::default().deleted(Deleted::Include), &PageRequest::first(10))
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, [sample_customer(1).id], "the old backup's data, migrated");
    drop(restored);
    // A failed check leaves the target as it was, and no staging file.
    let before = std::fs::read(&into).unwrap();
    let refused = SqliteStore::restore_checked(&backup, &into, |_| Err(guanxi_core::Error::InvalidState("no".into())));
    assert!(refused.is_err());
    assert_eq!(std::fs::read(&into).unwrap(), before);
    assert_eq!(files_in(&target), ["crm.db"]);
}

/// Issue 16, item 6: two processes opening an old file at the same moment both succeed; one
/// migrates it, the other finds the work done (migrations run under BEGIN IMMEDIATE and
/// re-read the version inside).
#[test]
fn two_processes_opening_an_old_file_at_once_both_succeed() {
    const CHILD: &str = "GUANXI_TEST_OPEN_AT";
    if let Ok(spec) = std::env::var(CHILD) {
        let (path, at) = spec.split_once('|').unwrap();
        let at: u128 = at.parse().unwrap();
        let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        while now() < at {
            std::hint::spin_loop();
        }
        let store = SqliteStore::open(path).unwrap();
        assert_eq!(store.schema_version().unwrap(), guanxi_sqlite::SCHEMA_VERSION);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crm.db");
        old_schema_file(&path);
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 400;
        let children: Vec<_> = (0..2)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args(["--exact", "two_processes_opening_an_old_file_at_once_both_succeed", "--nocapture"])
                    .env(CHILD, format!("{}|{at}", path.display()))
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect::<Vec<_>>();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.customer(sample_customer(1).id).unwrap().map(|c| c.id), Some(sample_customer(1).id));
    }
}
