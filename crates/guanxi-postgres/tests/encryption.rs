//! Field encryption on PostgreSQL: what the server holds, wrong and missing keys, rotation,
//! a ciphertext moved between rows, and handles that hold a key another handle replaced.

mod common;

use guanxi_core::prelude::*;
use guanxi_core::testing::conformance::sample_customer;
use guanxi_core::{Changes, EncryptionError, Error, Phone, Write};
use guanxi_postgres::{PgOptions, PgStore};
use guanxi_sql::FieldKey;

use guanxi_core::testing::encryption::sample_contact as contact;

/// A schema on the test server, opened with or without a key.
struct Schema {
    params: String,
    name: String,
}

impl Schema {
    fn new(name: &str) -> Option<Schema> {
        let store = common::named(name)?;
        let schema = Schema { params: common::server()?, name: format!("{name}_{}", std::process::id()) };
        drop(store);
        Some(schema)
    }

    fn open(&self, key: Option<&FieldKey>) -> guanxi_core::Result<PgStore> {
        let options = PgOptions { schema: self.name.clone(), field_key: key.cloned(), ..PgOptions::default() };
        PgStore::connect_with(&self.params, options)
    }

    /// Every text the server keeps in the tables that hold contact data: what someone with
    /// the database (or a dump of it) reads.
    fn raw_text(&self) -> String {
        let mut client = postgres::Client::connect(&self.params, postgres::NoTls).unwrap();
        client.batch_execute(&format!("SET search_path TO {}", self.name)).unwrap();
        let mut out = String::new();
        for sql in [
            "SELECT coalesce(string_agg(doc, ' '), '') FROM contacts",
            "SELECT coalesce(string_agg(digest, ' '), '') FROM contact_lookup",
            "SELECT coalesce(string_agg(doc, ' '), '') FROM leads",
            "SELECT coalesce(string_agg(doc || ' ' || coalesce(identifiers, ''), ' '), '') FROM customers",
        ] {
            out.push_str(&client.query_one(sql, &[]).unwrap().get::<_, String>(0));
        }
        out
    }

    fn execute(&self, sql: &str) {
        let mut client = postgres::Client::connect(&self.params, postgres::NoTls).unwrap();
        client.batch_execute(&format!("SET search_path TO {}; {sql}", self.name)).unwrap();
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(store) = self.open(None) {
            let _ = store.drop_schema();
        }
    }
}

#[test]
fn contacts_are_sealed_on_the_server_found_by_blind_index_and_rotated() {
    let Some(schema) = Schema::new("enc_rotate") else { return };
    let customer = sample_customer(0);
    // Written in clear first: opening with a key encrypts what is there.
    {
        let plain = schema.open(None).unwrap();
        plain
            .apply(&Changes {
                customers: vec![Write::Insert(customer.clone())],
                contacts: vec![Write::Insert(contact(0, customer.id, "13812345678"))],
                ..Default::default()
            })
            .unwrap();
        assert!(schema.raw_text().contains("13812345678"), "the plain store holds the phone in clear");
    }
    let key = FieldKey::generate();
    {
        let store = schema.open(Some(&key)).unwrap();
        assert_eq!(store.field_key_fingerprint().unwrap(), Some(key.fingerprint()));
        let mut with_id = contact(1, customer.id, "13900001111");
        with_id.id_number = Some(guanxi_core::IdNumber::parse("11010519491231002X").unwrap());
        store.apply(&Changes { contacts: vec![Write::Insert(with_id)], ..Default::default() }).unwrap();
        let found = store.contacts_by_phone(&Phone::parse("139 0000 1111").unwrap()).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].phones[0].as_str(), "+8613900001111");
        let id = guanxi_core::IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(store.contacts_by_id_number(&id).unwrap().len(), 1);
        // Contact match keys are sealed too, and still find the customer.
        let keys = guanxi_core::dedup::MatchKeys {
            names: vec![],
            contacts: guanxi_core::dedup::contact_match_keys(&[Phone::parse("13812345678").unwrap()], &[]),
        };
        assert_eq!(store.customers_by_match_keys(&keys, 10).unwrap(), vec![customer.id]);
    }
    let raw = schema.raw_text();
    for secret in ["13812345678", "13900001111", "11010519491231002X", "联系人"] {
        assert!(!raw.contains(secret), "{secret} is in clear on the server");
    }
    for id in &customer.identifiers {
        assert!(!raw.contains(&id.value), "identifier {id} is in clear on the server");
    }

    // Wrong key: a typed error, never garbage.
    let wrong = schema.open(Some(&FieldKey::generate()));
    assert!(matches!(wrong, Err(Error::Encryption(EncryptionError::WrongKey))), "{wrong:?}");
    // No key: reads of sealed records and writes of new ones are refused, typed.
    {
        let keyless = schema.open(None).unwrap();
        let read = keyless.contacts_of(customer.id);
        assert!(matches!(read, Err(Error::Encryption(EncryptionError::KeyRequired))), "{read:?}");
        let write = keyless.apply(&Changes {
            contacts: vec![Write::Insert(contact(2, customer.id, "13700000000"))],
            ..Default::default()
        });
        assert!(matches!(write, Err(Error::Encryption(EncryptionError::KeyRequired))), "{write:?}");
        // A customer's identifiers are sealed: it reads only with the key; its list count does not need it.
        let read = keyless.customer(customer.id);
        assert!(matches!(read, Err(Error::Encryption(EncryptionError::KeyRequired))), "{read:?}");
        assert_eq!(keyless.count_customers(&Default::default()).unwrap(), 1);
    }
    // Rotation re-seals everything; the old key stops working, lookups keep working.
    let new_key = FieldKey::generate();
    {
        let store = schema.open(Some(&key)).unwrap();
        let stale = schema.open(Some(&key)).unwrap();
        // Two contacts and the customer with identifiers.
        assert_eq!(store.rotate_key(&new_key).unwrap(), 3);
        assert_eq!(store.contacts_by_phone(&Phone::parse("13812345678").unwrap()).unwrap().len(), 1);
        // Another handle still holding the old key cannot write under it.
        let write = stale.apply(&Changes {
            contacts: vec![Write::Insert(contact(3, customer.id, "13600000000"))],
            ..Default::default()
        });
        assert!(matches!(write, Err(Error::Encryption(EncryptionError::WrongKey))), "{write:?}");
    }
    assert!(matches!(schema.open(Some(&key)), Err(Error::Encryption(EncryptionError::WrongKey))));
    let store = schema.open(Some(&new_key)).unwrap();
    assert_eq!(store.customer(customer.id).unwrap().unwrap().identifiers, customer.identifiers);
    let probe = guanxi_core::dedup::MatchProfile::new(customer.id, "", "", customer.kind)
        .identifier(customer.identifiers[0].scheme, &customer.identifiers[0].value);
    let found = store.customers_by_match_keys(&guanxi_core::dedup::match_keys(&probe), 10).unwrap();
    assert_eq!(found, [customer.id], "found by its identifier under the rotated blind-index key");
    let phones: Vec<String> = store.contacts_of(customer.id).unwrap().iter().map(|c| c.phones[0].to_string()).collect();
    assert_eq!(phones, ["+8613812345678", "+8613900001111"]);
}

#[test]
fn a_ciphertext_moved_to_another_row_is_detected() {
    let Some(schema) = Schema::new("enc_moved") else { return };
    let store = schema.open(Some(&FieldKey::generate())).unwrap();
    let customer = sample_customer(0);
    let (a, b) = (contact(0, customer.id, "13812345678"), contact(1, customer.id, "13900001111"));
    store
        .apply(&Changes {
            customers: vec![Write::Insert(customer.clone())],
            contacts: vec![Write::Insert(a.clone()), Write::Insert(b.clone())],
            ..Default::default()
        })
        .unwrap();
    schema.execute(&format!(
        "UPDATE contacts SET doc = (SELECT doc FROM contacts WHERE id = '{}') WHERE id = '{}'",
        a.id, b.id
    ));
    let got = store.contact(b.id);
    assert!(matches!(got, Err(Error::Encryption(EncryptionError::Corrupt { .. }))), "{got:?}");
}

#[test]
fn rotating_the_key_while_writing_contacts_never_deadlocks() {
    let Some(schema) = Schema::new("enc_busy") else { return };
    let store = schema.open(Some(&FieldKey::generate())).unwrap();
    guanxi_core::testing::encryption::rotation_under_concurrent_writes(std::sync::Arc::new(store), 3, 30, 5, || {
        FieldKey::generate().as_bytes().to_vec()
    });
}

#[test]
fn an_encrypted_store_backs_up_into_a_file_encrypted_under_its_key() {
    let Some(schema) = Schema::new("enc_backup") else { return };
    let key = FieldKey::generate();
    let store = schema.open(Some(&key)).unwrap();
    let customer = sample_customer(0);
    store
        .apply(&Changes {
            customers: vec![Write::Insert(customer.clone())],
            contacts: vec![Write::Insert(contact(0, customer.id, "13812345678"))],
            ..Default::default()
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("backup.db");
    store.backup_to(&dest).unwrap();
    let bytes = std::fs::read(&dest).unwrap();
    assert!(!bytes.windows(11).any(|w| w == b"13812345678"), "the backup holds no phone in clear");
    let options = guanxi_sqlite::SqliteOptions::default().field_key(key);
    let copy = guanxi_sqlite::SqliteStore::open_with(&dest, options).unwrap();
    assert_eq!(copy.contacts_of(customer.id).unwrap()[0].phones[0].as_str(), "+8613812345678");
}
