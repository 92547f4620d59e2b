//! The storage conformance suite: one set of cases every [`CrmStore`] backend must pass.
//!
//! A backend runs it with one line in its tests:
//!
//! ```text
//! guanxi_core::store_conformance_tests!(guanxi_core::MemoryStore::new());
//! ```
//!
//! The expression is evaluated afresh for each case; it may yield any [`TestStore`] (a store,
//! or a wrapper that also owns a temporary directory).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use crate::CrmStore;

mod clv;
mod commerce;
mod dedup;
mod persons;
mod segments;
mod service;

pub use clv::clv_data;
pub use commerce::commerce_data;
pub use dedup::dedup_data;
pub use persons::person_data;
pub use segments::segment_data;
pub use service::service_data;

/// Every item of a paged list, read 7 at a time (small pages, so paging itself is exercised).
pub(crate) fn walk_in_small_pages<T>(
    mut fetch: impl FnMut(&crate::PageRequest) -> crate::Result<crate::Page<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    let mut page = crate::PageRequest::first(7);
    loop {
        let p = fetch(&page).unwrap();
        out.extend(p.items);
        match p.next {
            Some(c) => page = crate::PageRequest::after(c, 7),
            None => return out,
        }
    }
}

/// Something that holds a store under test (and whatever must live as long as it).
pub trait TestStore {
    /// The store.
    fn store(&self) -> &dyn CrmStore;
}

impl<S: CrmStore> TestStore for S {
    fn store(&self) -> &dyn CrmStore {
        self
    }
}

/// Expands to one `#[test]` per conformance case, each on a fresh store from `$make`. A
/// backend that stores some aggregates only (while it is being built) runs their groups:
/// `store_conformance_tests!(customers: $make)`, `sales:`, `service:`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(customers: $make);
        $crate::store_conformance_tests!(sales: $make);
        $crate::store_conformance_tests!(service: $make);
        $crate::store_conformance_tests!(commerce: $make);
        $crate::store_conformance_tests!(@cases $make; a_copy_reads_like_the_original,);
    };
    (customers: $make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            customer_round_trips_every_field,
            duplicate_id_and_code_are_rejected,
            update_checks_version_and_keeps_tags,
            update_of_missing_record_is_not_found,
            contacts_round_trip_and_order_primary_first,
            contact_of_unknown_customer_is_rejected,
            tags_ensure_put_and_link,
            interactions_round_trip_in_time_order,
            events_are_appended_paged_by_time_and_idempotent_by_external_id,
            segments_agree_with_the_reference_evaluator,
            events_are_purged_before_an_instant,
            segment_memberships_open_close_and_page,
            custom_field_definitions,
            change_log_assigns_seq_and_filters,
            filters_agree_with_reference_semantics,
            scans_visit_what_lists_page_through,
            paging_walks_every_record_once_in_id_order,
            paging_is_stable_under_inserts,
            zero_limit_is_rejected,
            sequences_are_consecutive_and_separate,
            timeline_merges_interactions_and_changes,
            failed_batch_changes_nothing,
            write_session_commits_all_or_nothing,
            text_round_trips_exactly,
            scoped_lists_equal_the_scope_predicate,
            contacts_by_phone_finds_live_exact_matches,
            match_keys_find_live_customers_sharing_a_key,
            access_model_is_versioned,
        );
    };
    (sales: $make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            opportunities_round_trip_and_check_versions,
            stage_history_is_append_only_per_opportunity,
            opportunity_lists_equal_the_filter_predicate,
            sales_facts_equal_the_reference_reduction,
            leads_tasks_and_settings_round_trip,
        );
    };
    (service: $make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            tickets_round_trip_filter_and_clock,
            article_search_equals_the_reference,
        );
    };
    (commerce: $make:expr) => {
        $crate::store_conformance_tests!(@cases $make;
            products_round_trip_with_unique_codes_and_external_ids,
            purchases_round_trip_filter_and_sum_spend,
            purchase_writes_check_customers_keys_and_versions,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let holder = $make;
                $crate::testing::conformance::$case($crate::testing::TestStore::store(&holder));
            }
        )*
    };
}

pub mod conformance {
    //! The cases, as plain functions over `&dyn CrmStore`.

    pub use super::commerce::cases::*;
    pub use super::service::cases::*;

    use std::collections::{BTreeMap, BTreeSet};

    use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use rust_decimal::Decimal;
    use uuid::Uuid;

    use crate::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap()
    }

    fn user(name: &str) -> UserId {
        UserId::new(name).unwrap()
    }

    fn id(n: u64) -> Uuid {
        // Ordered, distinct, UUIDv7-shaped ids independent of any clock.
        Uuid::from_u128((0x0190_0000_0000_7000_8000_0000_0000_0000u128) + u128::from(n))
    }

    /// A customer with varied fields, deterministic in `n`.
    pub fn sample_customer(n: u64) -> Customer {
        let provinces = ["山东省", "广东省", "浙江省"];
        let cities = ["聊城市", "深圳市", "杭州市"];
        let p = (n % 3) as usize;
        let mut custom = BTreeMap::new();
        if n.is_multiple_of(2) {
            custom.insert("budget".to_owned(), CustomValue::Decimal(Decimal::new((n as i64) * 1050, 2).normalize()));
        }
        if n.is_multiple_of(3) {
            custom.insert("vip".to_owned(), CustomValue::Bool(n.is_multiple_of(6)));
        }
        if n % 4 == 1 {
            custom.insert(
                "products".to_owned(),
                CustomValue::MultiSelect(
                    if n % 8 == 1 { ["crm", "erp"] } else { ["oa", "erp"] }.map(String::from).into(),
                ),
            );
        }
        if n.is_multiple_of(5) {
            custom.insert("employees".to_owned(), CustomValue::Number(n as i64 * 10));
            custom.insert(
                "since".to_owned(),
                CustomValue::Date(NaiveDate::from_ymd_opt(2020, 1, 1 + (n % 28) as u32).unwrap()),
            );
            custom.insert("tier".to_owned(), CustomValue::Select(["gold", "silver"][(n % 2) as usize].to_owned()));
            custom.insert("note".to_owned(), CustomValue::Text(format!("备注 {n}")));
        }
        let at = t0() + Duration::minutes(n as i64);
        // Every third a company's registration code, every fourth (also) a passport number.
        let sample_identifiers = |n: u64| {
            let mut ids = Vec::new();
            if n.is_multiple_of(3) {
                let first17 = format!("91{n:015}");
                let check = Identifier::uscc_check_char(&first17).unwrap();
                ids.push(Identifier { scheme: IdScheme::Uscc, value: format!("{first17}{check}") });
            }
            if n.is_multiple_of(4) {
                ids.push(Identifier { scheme: IdScheme::Passport, value: format!("E{n:08}") });
            }
            ids.sort();
            ids
        };
        Customer {
            id: CustomerId(id(n)),
            code: Customer::code_for(at.date_naive(), n + 1),
            name: format!("客户{n} Trading Co"),
            kind: if n % 4 == 3 { CustomerKind::Individual } else { CustomerKind::Enterprise },
            industry: [Some(Industry::InformationTechnology), Some(Industry::Manufacturing), None][(n % 3) as usize],
            size: [Some(SizeBand::Small), Some(SizeBand::Large), None, Some(SizeBand::Medium)][(n % 4) as usize],
            source: (n % 2 == 1).then(|| "展会".to_owned()),
            status: LifecycleStatus::ALL[(n % 3) as usize],
            level: [Some(Level::A), Some(Level::B), Some(Level::C), None][(n % 4) as usize],
            region: (n % 7 != 6).then(|| Region {
                province: provinces[p].to_owned(),
                city: cities[p].to_owned(),
                district: if n.is_multiple_of(2) { "东昌府区".to_owned() } else { String::new() },
            }),
            address: n.is_multiple_of(2).then(|| format!("中山路{n}号")),
            owner: (n % 5 != 4).then(|| user(["alice", "bob", "carol"][(n % 3) as usize])),
            department: n
                .is_multiple_of(2)
                .then(|| DepartmentId::new(["east", "south"][(n % 4 / 2) as usize]).unwrap()),
            tags: BTreeSet::new(),
            custom,
            identifiers: sample_identifiers(n),
            created_by: user("alice"),
            created_at: at,
            updated_by: user("alice"),
            updated_at: at,
            version: 1,
            deleted_at: (n % 9 == 8).then(|| at + Duration::days(1)),
            merged_into: (n % 5 == 4).then(|| CustomerId(id(1))),
        }
    }

    fn tag(name: &str, group: Option<&str>) -> Tag {
        Tag { name: name.to_owned(), group: group.map(str::to_owned), created_at: Some(t0()) }
    }

    fn insert_customers(store: &dyn CrmStore, range: std::ops::Range<u64>, tags: &[&str]) -> Vec<Customer> {
        let tag_writes = tags.iter().map(|t| TagWrite::Ensure(tag(t, None))).collect();
        let customers: Vec<Customer> = range
            .map(|n| {
                let mut c = sample_customer(n);
                // Tag i goes to customers with n % (i + 2) == 0, so tag sets overlap variously.
                c.tags = tags
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| n % (*i as u64 + 2) == 0)
                    .map(|(_, t)| (*t).to_owned())
                    .collect();
                c
            })
            .collect();
        let writes = customers.iter().cloned().map(Write::Insert).collect();
        store.apply(&Changes { tags: tag_writes, customers: writes, ..Default::default() }).unwrap();
        customers
    }

    fn contact(n: u64, customer: CustomerId, primary: bool) -> Contact {
        Contact {
            id: ContactId(id(10_000 + n)),
            customer_id: customer,
            name: format!("联系人{n}"),
            title: Some("经理".to_owned()),
            phones: vec![Phone::parse("13812345678").unwrap()],
            emails: vec![Email::parse("a@example.com").unwrap()],
            id_number: n.is_multiple_of(2).then(|| IdNumber::parse("11010519491231002X").unwrap()),
            role: Some(DecisionRole::DecisionMaker),
            primary,
            do_not_contact: n % 2 == 1,
            custom: BTreeMap::from([("wechat".to_owned(), CustomValue::Text("wx_1".into()))]),
            created_by: user("alice"),
            created_at: t0(),
            updated_by: user("alice"),
            updated_at: t0(),
            version: 1,
            deleted_at: None,
        }
    }

    /// A sample visit to `customer` at `at` (one attachment, a next step).
    pub fn interaction(n: u64, customer: CustomerId, at: DateTime<Utc>) -> Interaction {
        Interaction {
            id: InteractionId(id(20_000 + n)),
            customer_id: customer,
            contact_id: None,
            kind: InteractionKind::Visit,
            at,
            author: user("bob"),
            content: format!("拜访 {n}"),
            next_step: Some("发报价".to_owned()),
            next_contact_on: Some(at.date_naive() + Duration::days(3)),
            feedback: None,
            attachments: vec![Attachment {
                name: "a.pdf".into(),
                size: 10,
                sha256: "0".repeat(64),
                uri: "file:///a.pdf".into(),
            }],
            created_by: user("bob"),
            created_at: at,
        }
    }

    fn log_entry(customer: Option<CustomerId>, actor: &str, at: DateTime<Utc>) -> ChangeLogEntry {
        ChangeLogEntry {
            seq: 0,
            at,
            actor: user(actor),
            entity: EntityKind::Customer,
            entity_id: customer.map_or_else(|| "none".to_owned(), |c| c.to_string()),
            customer_id: customer,
            action: ChangeAction::Update,
            changes: vec![FieldChange::new("name", Some("甲".into()), Some("乙".into()))],
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn all_customers(store: &dyn CrmStore, filter: &CustomerFilter, limit: usize) -> Vec<Customer> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(limit);
        loop {
            let p = store.list_customers(filter, &page).unwrap();
            assert!(p.items.len() <= limit);
            out.extend(p.items);
            match p.next {
                Some(c) => page = PageRequest::after(c, limit),
                None => return out,
            }
        }
    }

    /// A snapshot of everything observable, to prove a failed batch changed nothing.
    fn snapshot(store: &dyn CrmStore) -> (Vec<Customer>, Vec<Tag>, Vec<ChangeLogEntry>, Vec<Vec<Contact>>) {
        let customers = all_customers(store, &CustomerFilter::default().deleted(Deleted::Include), 1000);
        let contacts = customers.iter().map(|c| store.contacts_of(c.id).unwrap()).collect();
        (customers, store.tags().unwrap(), store.change_log(&ChangeLogQuery::default()).unwrap(), contacts)
    }

    pub fn customer_round_trips_every_field(store: &dyn CrmStore) {
        let written = insert_customers(store, 0..12, &["VIP", "重点"]);
        for c in &written {
            assert_eq!(store.customer(c.id).unwrap().as_ref(), Some(c), "by id {}", c.id);
            assert_eq!(store.customer_by_code(&c.code).unwrap().as_ref(), Some(c), "by code {}", c.code);
        }
        assert_eq!(store.customer(CustomerId(id(999))).unwrap(), None);
        assert_eq!(store.customer_by_code("C19990101001").unwrap(), None);
    }

    pub fn duplicate_id_and_code_are_rejected(store: &dyn CrmStore) {
        let written = insert_customers(store, 0..2, &[]);
        let before = snapshot(store);
        let mut same_id = sample_customer(5);
        same_id.id = written[0].id;
        let err = store.apply(&Changes { customers: vec![Write::Insert(same_id)], ..Default::default() }).unwrap_err();
        assert!(
            matches!(err, Error::Duplicate { entity: EntityKind::Customer, ref field, .. } if field == "id"),
            "{err:?}"
        );
        let mut same_code = sample_customer(6);
        same_code.code = written[1].code.clone();
        let err =
            store.apply(&Changes { customers: vec![Write::Insert(same_code)], ..Default::default() }).unwrap_err();
        assert!(
            matches!(err, Error::Duplicate { entity: EntityKind::Customer, ref field, .. } if field == "code"),
            "{err:?}"
        );
        assert_eq!(snapshot(store), before);
    }

    pub fn update_checks_version_and_keeps_tags(store: &dyn CrmStore) {
        let written = insert_customers(store, 0..1, &["VIP"]);
        let original = &written[0];
        assert!(original.tags.contains("VIP"));
        let mut next = original.clone();
        next.name = "改名后".to_owned();
        next.version = 2;
        next.tags.clear(); // updates never touch tag links
        store
            .apply(&Changes {
                customers: vec![Write::Update { record: next.clone(), expected_version: 1 }],
                ..Default::default()
            })
            .unwrap();
        let stored = store.customer(original.id).unwrap().unwrap();
        assert_eq!(stored.name, "改名后");
        assert_eq!(stored.version, 2);
        assert_eq!(stored.tags, original.tags);

        let before = snapshot(store);
        let mut stale = original.clone();
        stale.name = "过期写入".to_owned();
        stale.version = 2;
        let err = store
            .apply(&Changes {
                customers: vec![
                    Write::Insert(sample_customer(7)),
                    Write::Update { record: stale, expected_version: 1 },
                ],
                change_log: vec![log_entry(Some(original.id), "alice", t0())],
                ..Default::default()
            })
            .unwrap_err();
        match err {
            Error::Conflict { entity: EntityKind::Customer, expected: 1, actual: 2, .. } => {}
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(snapshot(store), before, "a conflicting batch must change nothing");
    }

    pub fn update_of_missing_record_is_not_found(store: &dyn CrmStore) {
        let ghost = sample_customer(3);
        let err = store
            .apply(&Changes {
                customers: vec![Write::Update { record: ghost, expected_version: 1 }],
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { entity: EntityKind::Customer, .. }), "{err:?}");
        let ghost = contact(1, CustomerId(id(3)), true);
        let err = store
            .apply(&Changes {
                contacts: vec![Write::Update { record: ghost, expected_version: 1 }],
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    }

    pub fn contacts_round_trip_and_order_primary_first(store: &dyn CrmStore) {
        let c = insert_customers(store, 0..2, &[]);
        let (a, b) = (contact(1, c[0].id, false), contact(2, c[0].id, true));
        let other = contact(3, c[1].id, true);
        store
            .apply(&Changes {
                contacts: vec![Write::Insert(a.clone()), Write::Insert(b.clone()), Write::Insert(other)],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(store.contact(a.id).unwrap().as_ref(), Some(&a));
        assert_eq!(store.contacts_of(c[0].id).unwrap(), vec![b.clone(), a.clone()]);

        let mut removed = a.clone();
        removed.deleted_at = Some(t0());
        removed.version = 2;
        store
            .apply(&Changes {
                contacts: vec![Write::Update { record: removed.clone(), expected_version: 1 }],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(store.contacts_of(c[0].id).unwrap(), vec![b]);
        assert_eq!(store.contact(a.id).unwrap(), Some(removed), "removed contacts stay readable by id");

        let mut stale = a;
        stale.version = 2;
        let err = store
            .apply(&Changes {
                contacts: vec![Write::Update { record: stale, expected_version: 1 }],
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, Error::Conflict { entity: EntityKind::Contact, .. }), "{err:?}");
    }

    pub fn contact_of_unknown_customer_is_rejected(store: &dyn CrmStore) {
        let err = store
            .apply(&Changes {
                contacts: vec![Write::Insert(contact(1, CustomerId(id(77)), true))],
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { entity: EntityKind::Customer, .. }), "{err:?}");
    }

    pub fn tags_ensure_put_and_link(store: &dyn CrmStore) {
        let c = insert_customers(store, 0..1, &[])[0].clone();
        store
            .apply(&Changes {
                tags: vec![TagWrite::Put(tag("互联网", Some("行业"))), TagWrite::Ensure(tag("VIP", None))],
                ..Default::default()
            })
            .unwrap();
        // Ensure leaves an existing tag alone; Put changes its group.
        store.apply(&Changes { tags: vec![TagWrite::Ensure(tag("互联网", None))], ..Default::default() }).unwrap();
        assert_eq!(store.tag("互联网").unwrap().unwrap().group.as_deref(), Some("行业"));
        store.apply(&Changes { tags: vec![TagWrite::Put(tag("VIP", Some("等级")))], ..Default::default() }).unwrap();
        assert_eq!(store.tag("VIP").unwrap().unwrap().group.as_deref(), Some("等级"));
        // By group, then name, in code-point order: 等级 (U+7B49) before 行业 (U+884C).
        assert_eq!(store.tags().unwrap().iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["VIP", "互联网"]);

        let link = |t: &str, linked| TagLink { customer: c.id, tag: t.to_owned(), linked };
        store
            .apply(&Changes {
                tag_links: vec![link("VIP", true), link("VIP", true), link("互联网", true)],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            store.customer(c.id).unwrap().unwrap().tags,
            BTreeSet::from(["VIP".to_owned(), "互联网".to_owned()])
        );
        store
            .apply(&Changes {
                tag_links: vec![link("互联网", false), link("互联网", false)], ..Default::default()
            })
            .unwrap();
        assert_eq!(store.customer(c.id).unwrap().unwrap().tags, BTreeSet::from(["VIP".to_owned()]));
        assert_eq!(all_customers(store, &CustomerFilter::default().tag("VIP"), 10).len(), 1);
        assert!(all_customers(store, &CustomerFilter::default().tag("互联网"), 10).is_empty());

        let err = store.apply(&Changes { tag_links: vec![link("nope", true)], ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::NotFound { entity: EntityKind::Tag, .. }), "{err:?}");
        let err = store
            .apply(&Changes {
                tag_links: vec![TagLink { customer: CustomerId(id(55)), tag: "VIP".into(), linked: true }],
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { entity: EntityKind::Customer, .. }), "{err:?}");
        let mut tagged = sample_customer(50);
        tagged.tags.insert("undefined".to_owned());
        let err = store.apply(&Changes { customers: vec![Write::Insert(tagged)], ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::NotFound { entity: EntityKind::Tag, .. }), "{err:?}");
    }

    /// Behaviour events: every field round-trips; a customer's come back by id (their time)
    /// a page at a time and within a range; an external id already stored, or earlier in
    /// the batch, is not written again; an event of an unknown customer fails its batch.
    pub fn events_are_appended_paged_by_time_and_idempotent_by_external_id(store: &dyn CrmStore) {
        use crate::marketing::{BehaviourEvent, EventRange};
        let c = insert_customers(store, 0..2, &[]);
        let event = |n: u64, customer: CustomerId, hours: i64, external: Option<&str>| {
            let at = t0() + Duration::hours(hours);
            let mut e = BehaviourEvent::new(customer, if n.is_multiple_of(2) { "page_view" } else { "purchase" }, at)
                .property("url", CustomValue::Text(format!("/courses/{n}")))
                .property("amount", CustomValue::Decimal(Decimal::new(12_345 + n as i64, 2)))
                .property("first", CustomValue::Bool(n == 0));
            // A v7 id of the event's own instant, as the facade gives.
            e.id = EventId(Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, at.timestamp() as u64, n as u32)));
            e.source = n.is_multiple_of(3).then(|| "web".to_owned());
            e.external_id = external.map(str::to_owned);
            e
        };
        let events: Vec<BehaviourEvent> = (0..7).map(|n| event(n, c[0].id, 7 - n as i64, None)).collect();
        let tagged = event(20, c[0].id, 20, Some("ext-1"));
        let other = event(30, c[1].id, 1, Some("ext-2"));
        let mut batch = events.clone();
        batch.extend([tagged.clone(), other.clone(), event(21, c[0].id, 21, Some("ext-1"))]);
        store.apply(&Changes { events: batch, ..Default::default() }).unwrap();
        // Sent again: nothing new.
        store.apply(&Changes { events: vec![event(22, c[0].id, 22, Some("ext-1"))], ..Default::default() }).unwrap();

        let mut expected: Vec<BehaviourEvent> = events.clone();
        expected.push(tagged.clone());
        expected.sort_by_key(|e| e.id);
        let mut walked = Vec::new();
        let mut page = PageRequest::first(3);
        loop {
            let p = store.events_of(c[0].id, &EventRange::default(), &page).unwrap();
            walked.extend(p.items);
            match p.next {
                Some(next) => page = PageRequest { after: Some(next), limit: 3 },
                None => break,
            }
        }
        assert_eq!(walked, expected, "every field, in time order, each once");
        let range = EventRange { from: Some(t0() + Duration::hours(2)), to: Some(t0() + Duration::hours(5)) };
        let within: Vec<i64> = store
            .events_of(c[0].id, &range, &PageRequest::first(100))
            .unwrap()
            .items
            .iter()
            .map(|e| (e.at - t0()).num_hours())
            .collect();
        assert_eq!(within, [2, 3, 4]);
        assert_eq!(
            store.events_of(c[1].id, &EventRange::default(), &PageRequest::first(10)).unwrap().items,
            std::slice::from_ref(&other)
        );
        let mut known = store.stored_external_ids(&["ext-2".into(), "ext-9".into(), "ext-1".into()]).unwrap();
        known.sort();
        assert_eq!(known, ["ext-1", "ext-2"]);
        let err = store
            .apply(&Changes { events: vec![event(40, CustomerId(id(404)), 1, None)], ..Default::default() })
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { entity: EntityKind::Customer, .. }), "{err:?}");

        // A merge re-points events: they read back under their new customer, in time order.
        let moved: Vec<EventMove> =
            expected[..2].iter().map(|e| EventMove { id: e.id, from: c[0].id, to: c[1].id }).collect();
        store.apply(&Changes { event_moves: moved.clone(), ..Default::default() }).unwrap();
        let on =
            |who: &Customer| store.events_of(who.id, &EventRange::default(), &PageRequest::first(100)).unwrap().items;
        let mut now_on_1: Vec<BehaviourEvent> =
            expected[..2].iter().map(|e| BehaviourEvent { customer_id: c[1].id, ..e.clone() }).collect();
        now_on_1.push(other.clone());
        now_on_1.sort_by_key(|e| e.id);
        assert_eq!(on(&c[1]), now_on_1);
        assert_eq!(on(&c[0]), expected[2..].to_vec());
        // Moving one that is not there (any more) fails the batch and changes nothing.
        let err = store.apply(&Changes { event_moves: moved, ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
        assert_eq!(on(&c[1]).len(), 3);
    }

    /// A purge removes exactly the events before its instant (their external ids with them)
    /// and counts them beforehand; later events and other customers' stay.
    pub fn events_are_purged_before_an_instant(store: &dyn CrmStore) {
        use crate::marketing::{BehaviourEvent, EventRange};
        let c = insert_customers(store, 0..2, &[]);
        let event = |n: u64, customer: CustomerId, hours: i64| {
            let at = t0() + Duration::hours(hours);
            let mut e = BehaviourEvent::new(customer, "page_view", at);
            e.id = EventId(Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, at.timestamp() as u64, n as u32)));
            e.external_id = Some(format!("purge-{n}"));
            e
        };
        let events: Vec<BehaviourEvent> = (0..6).map(|n| event(n, c[(n % 2) as usize].id, n as i64)).collect();
        store.apply(&Changes { events, ..Default::default() }).unwrap();
        let cut = t0() + Duration::hours(3);
        assert_eq!(store.count_events_before(cut).unwrap(), 3);
        store.apply(&Changes { purge_events_before: Some(cut), ..Default::default() }).unwrap();
        assert_eq!(store.count_events_before(cut).unwrap(), 0);
        let left = |who: &Customer| -> Vec<i64> {
            let page = store.events_of(who.id, &EventRange::default(), &PageRequest::first(10)).unwrap();
            page.items.iter().map(|e| (e.at - t0()).num_hours()).collect()
        };
        assert_eq!((left(&c[0]), left(&c[1])), (vec![4], vec![3, 5]));
        let mut known = store.stored_external_ids(&["purge-0".into(), "purge-3".into(), "purge-4".into()]).unwrap();
        known.sort();
        assert_eq!(known, ["purge-3", "purge-4"], "a purged event's external id goes with it");
    }

    /// Stays in saved segments: entering opens a stay, exiting closes the open one (and
    /// closing none is nothing); a second open stay of the same customer is a duplicate and
    /// fails its batch; reads page by id, by customer and current only; settings are read by
    /// prefix.
    pub fn segment_memberships_open_close_and_page(store: &dyn CrmStore) {
        use crate::marketing::{MembershipChange, MembershipQuery, MembershipReason, SegmentMembership};
        let c = insert_customers(store, 0..3, &[]);
        let stay = |n: u64, segment: &str, who: &Customer, hours: i64| SegmentMembership {
            id: id(1_000 + n),
            segment: segment.to_owned(),
            customer_id: who.id,
            entered_at: t0() + Duration::hours(hours),
            entered_because: if n == 1 { MembershipReason::Included } else { MembershipReason::Matched },
            exited_at: None,
            exited_because: None,
        };
        let enter = |m: &SegmentMembership| MembershipChange::Enter(m.clone());
        let exit = |segment: &str, who: &Customer, hours: i64, reason| MembershipChange::Exit {
            segment: segment.to_owned(),
            customer: who.id,
            at: t0() + Duration::hours(hours),
            reason,
        };
        let (a0, a1, b0) = (stay(0, "a", &c[0], 1), stay(1, "a", &c[1], 2), stay(2, "b", &c[0], 3));
        let memberships = vec![enter(&a0), enter(&a1), enter(&b0)];
        store.apply(&Changes { memberships, ..Default::default() }).unwrap();
        // c0 leaves a and comes back; closing a stay c2 never had changes nothing.
        let back = stay(3, "a", &c[0], 6);
        let memberships = vec![
            exit("a", &c[0], 5, MembershipReason::NoLongerMatches),
            enter(&back),
            exit("a", &c[2], 5, MembershipReason::Excluded),
        ];
        store.apply(&Changes { memberships, ..Default::default() }).unwrap();
        let err = store.apply(&Changes { memberships: vec![enter(&stay(4, "a", &c[1], 7))], ..Default::default() });
        assert!(matches!(err, Err(Error::Duplicate { entity: EntityKind::Segment, .. })), "{err:?}");

        let walk = |query: &MembershipQuery| {
            let mut out = Vec::new();
            let mut page = PageRequest::first(1);
            loop {
                let p = store.segment_memberships(query, &page).unwrap();
                out.extend(p.items);
                match p.next {
                    Some(next) => page = PageRequest { after: Some(next), limit: 1 },
                    None => return out,
                }
            }
        };
        let closed = SegmentMembership {
            exited_at: Some(t0() + Duration::hours(5)),
            exited_because: Some(MembershipReason::NoLongerMatches),
            ..a0.clone()
        };
        let all = MembershipQuery { segment: "a".into(), ..Default::default() };
        assert_eq!(walk(&all), [closed.clone(), a1.clone(), back.clone()]);
        let current = MembershipQuery { current_only: true, ..all.clone() };
        assert_eq!(walk(&current), [a1.clone(), back.clone()]);
        let of_c0 = MembershipQuery { customer: Some(c[0].id), ..all.clone() };
        assert_eq!(walk(&of_c0), [closed, back.clone()]);
        assert_eq!(walk(&MembershipQuery { segment: "b".into(), ..Default::default() }), [b0]);
        let mut open = store.open_memberships("a", &[c[0].id, c[1].id, c[2].id]).unwrap();
        open.sort_by_key(|m| m.id);
        assert_eq!(open, [a1, back]);

        let settings = ["segment.a", "segment.b", "segmentz", "pipeline.x"]
            .map(|key| Write::Insert(Setting { key: key.into(), value: "{}".into(), version: 1 }))
            .to_vec();
        store.apply(&Changes { settings, ..Default::default() }).unwrap();
        let keys: Vec<String> = store.settings_under("segment.").unwrap().into_iter().map(|s| s.key).collect();
        assert_eq!(keys, ["segment.a", "segment.b"]);
    }

    /// On random segments over random customers, events and interactions, the store's
    /// members (paged two at a time) and count are the reference evaluator's.
    pub fn segments_agree_with_the_reference_evaluator(store: &dyn CrmStore) {
        use crate::marketing::{Segment, SegmentFacts};
        use crate::testing::segment_data::{TAGS, context, customer_spec, event_of, segment};
        let ctx = context();
        let tags = TAGS.iter().map(|t| TagWrite::Ensure(tag(t, ctx.tag_groups.get(*t).map(String::as_str)))).collect();
        store.apply(&Changes { tags, ..Default::default() }).unwrap();
        let mut runner = TestRunner::new(Config { cases: 64, source_file: Some(file!()), ..Config::default() });
        let case = std::cell::Cell::new(0u64);
        let data = (prop::collection::vec(customer_spec(), 1..7), prop::collection::vec(segment(), 1..5));
        runner
            .run(&data, |(specs, segments)| {
                let k = case.get();
                case.set(k + 1);
                let case_tag = format!("case{k}");
                let mut changes = Changes { tags: vec![TagWrite::Ensure(tag(&case_tag, None))], ..Default::default() };
                let mut facts = Vec::new();
                for (i, spec) in specs.iter().enumerate() {
                    let n = 100_000 + k * 10 + i as u64;
                    let mut c = sample_customer(n);
                    c.status = spec.status;
                    c.level = spec.level;
                    c.source = spec.source.clone();
                    c.region = spec.region.clone();
                    c.tags = spec.tags.clone();
                    c.tags.insert(case_tag.clone());
                    c.custom = spec.custom.clone();
                    (c.created_at, c.updated_at) = (spec.created_at, spec.created_at);
                    let events: Vec<_> = spec.events.iter().map(|e| event_of(c.id, e)).collect();
                    let interactions: Vec<Interaction> = spec
                        .interactions
                        .iter()
                        .enumerate()
                        .map(|(j, (kind, at))| {
                            let mut x = interaction(1_000_000 + n * 10 + j as u64, c.id, *at);
                            x.kind = *kind;
                            x
                        })
                        .collect();
                    changes.customers.push(Write::Insert(c.clone()));
                    changes.events.extend(events.iter().cloned());
                    changes.interactions.extend(interactions.iter().cloned());
                    facts.push((c, events, interactions));
                }
                store.apply(&changes).unwrap();
                let filter = CustomerFilter::default().tag(&case_tag);
                for s in &segments {
                    let expected: Vec<CustomerId> = facts
                        .iter()
                        .filter(|(c, events, interactions)| {
                            filter.matches(c) && s.matches(c, SegmentFacts { events, interactions }, &ctx)
                        })
                        .map(|(c, _, _)| c.id)
                        .collect();
                    let mut got = Vec::new();
                    let mut page = PageRequest::first(2);
                    loop {
                        let p = store.segment_members(&filter, s, &ctx, &page).unwrap();
                        got.extend(p.items.iter().map(|c| c.id));
                        match p.next {
                            Some(next) => page = PageRequest { after: Some(next), limit: 2 },
                            None => break,
                        }
                    }
                    prop_assert_eq!(&got, &expected, "members of {}", s);
                    let n = store.count_segment_members(&filter, s, &ctx).unwrap();
                    prop_assert_eq!(n, expected.len() as u64, "count of {}", s);
                    let _: &Segment = s;
                }
                Ok(())
            })
            .unwrap();
    }

    pub fn interactions_round_trip_in_time_order(store: &dyn CrmStore) {
        let c = insert_customers(store, 0..2, &[]);
        let late = interaction(1, c[0].id, t0() + Duration::hours(5));
        let early = interaction(2, c[0].id, t0() + Duration::hours(1));
        let mut with_contact = interaction(3, c[0].id, t0() + Duration::hours(3));
        let person = contact(9, c[0].id, true);
        with_contact.contact_id = Some(person.id);
        store.apply(&Changes { contacts: vec![Write::Insert(person)], ..Default::default() }).unwrap();
        store
            .apply(&Changes {
                interactions: vec![late.clone(), early.clone(), with_contact.clone(), interaction(4, c[1].id, t0())],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(store.interactions_of(c[0].id).unwrap(), vec![early.clone(), with_contact, late.clone()]);

        let err = store
            .apply(&Changes { interactions: vec![interaction(5, CustomerId(id(404)), t0())], ..Default::default() })
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { entity: EntityKind::Customer, .. }), "{err:?}");
        let mut bad_contact = interaction(6, c[0].id, t0());
        bad_contact.contact_id = Some(ContactId(id(404)));
        let err = store.apply(&Changes { interactions: vec![bad_contact], ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::NotFound { entity: EntityKind::Contact, .. }), "{err:?}");

        // Moves (merges): re-pointed in time order among the target's own; a move from the wrong
        // customer fails the whole batch.
        let mv = |i: &Interaction, from: CustomerId, to: CustomerId| InteractionMove { id: i.id, from, to };
        store.apply(&Changes { interaction_moves: vec![mv(&early, c[0].id, c[1].id)], ..Default::default() }).unwrap();
        let on_1: Vec<InteractionId> = store.interactions_of(c[1].id).unwrap().into_iter().map(|i| i.id).collect();
        assert_eq!(on_1, vec![InteractionId(id(20_004)), early.id]);
        assert_eq!(store.interactions_of(c[1].id).unwrap()[1].customer_id, c[1].id);
        assert_eq!(store.interactions_of(c[0].id).unwrap().len(), 2);
        let err = store
            .apply(&Changes {
                interaction_moves: vec![mv(&late, c[0].id, c[1].id), mv(&early, c[0].id, c[1].id)],
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { entity: EntityKind::Interaction, .. }), "{err:?}");
        assert_eq!(store.interactions_of(c[0].id).unwrap().len(), 2, "nothing of the failed batch");
    }

    pub fn custom_field_definitions(store: &dyn CrmStore) {
        let budget = CustomFieldDef::new(EntityKind::Customer, "budget", "预算", FieldType::Decimal).required();
        let products = CustomFieldDef::new(EntityKind::Customer, "products", "产品", FieldType::MultiSelect)
            .allowed(["crm", "erp"]);
        let wechat = CustomFieldDef::new(EntityKind::Contact, "wechat", "微信", FieldType::Text);
        store
            .apply(&Changes {
                custom_fields: vec![products.clone(), budget.clone(), wechat.clone()],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(store.custom_fields(EntityKind::Customer).unwrap(), vec![budget.clone(), products]);
        assert_eq!(store.custom_fields(EntityKind::Contact).unwrap(), vec![wechat]);
        let err = store.apply(&Changes { custom_fields: vec![budget], ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::Duplicate { entity: EntityKind::CustomField, .. }), "{err:?}");
    }

    pub fn change_log_assigns_seq_and_filters(store: &dyn CrmStore) {
        let c = insert_customers(store, 0..2, &[]);
        let entries = vec![
            log_entry(Some(c[0].id), "alice", t0()),
            log_entry(Some(c[1].id), "bob", t0() + Duration::hours(1)),
            log_entry(Some(c[0].id), "bob", t0() + Duration::hours(2)),
            log_entry(None, "carol", t0() + Duration::hours(3)),
        ];
        store.apply(&Changes { change_log: entries[..2].to_vec(), ..Default::default() }).unwrap();
        store.apply(&Changes { change_log: entries[2..].to_vec(), ..Default::default() }).unwrap();
        let all = store.change_log(&ChangeLogQuery::default()).unwrap();
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
        for (got, want) in all.iter().zip(&entries) {
            assert_eq!(ChangeLogEntry { seq: 0, prev_hash: String::new(), hash: String::new(), ..got.clone() }, *want);
        }
        // The entries form one hash chain across both batches.
        let check = crate::changelog::verify_chain(&all);
        assert!(check.is_intact(), "{check:?}");
        assert_eq!(all[0].prev_hash, crate::changelog::GENESIS_HASH);
        assert_eq!(all[3].prev_hash, all[2].hash);
        assert_eq!(check.head.as_deref(), Some(all[3].hash.as_str()));
        // The store's own streamed verification agrees with decoding every entry.
        assert_eq!(store.verify_change_log().unwrap(), check);
        let seqs = |q: ChangeLogQuery| store.change_log(&q).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(ChangeLogQuery { customer_id: Some(c[0].id), ..Default::default() }), [1, 3]);
        assert_eq!(seqs(ChangeLogQuery { entity_id: Some(c[1].id.to_string()), ..Default::default() }), [2]);
        assert_eq!(seqs(ChangeLogQuery { actor: Some(user("bob")), ..Default::default() }), [2, 3]);
        assert_eq!(
            seqs(ChangeLogQuery {
                from: Some(t0() + Duration::hours(1)),
                to: Some(t0() + Duration::hours(3)),
                ..Default::default()
            }),
            [2, 3]
        );
        assert_eq!(seqs(ChangeLogQuery { after_seq: Some(2), ..Default::default() }), [3, 4]);
        assert_eq!(seqs(ChangeLogQuery { after_seq: Some(1), limit: Some(2), ..Default::default() }), [2, 3]);
    }

    fn filter_cases() -> Vec<CustomerFilter> {
        let f = CustomerFilter::default;
        let cv = |k: &str, v: CustomValue| CustomFilter::new(k, v);
        vec![
            f(),
            f().deleted(Deleted::Only),
            f().deleted(Deleted::Include),
            f().status(LifecycleStatus::Customer),
            CustomerFilter { kind: Some(CustomerKind::Individual), ..f() },
            CustomerFilter { level: Some(Level::A), ..f() },
            CustomerFilter { industry: Some(Industry::Manufacturing), ..f() },
            CustomerFilter { size: Some(SizeBand::Medium), ..f() },
            f().owner(user("bob")),
            CustomerFilter { department: Some(DepartmentId::new("south").unwrap()), ..f() },
            f().tag("VIP"),
            f().tag("VIP").tag("重点"),
            f().tag("VIP").status(LifecycleStatus::Potential).deleted(Deleted::Include),
            f().tag("missing"),
            f().province("山东"),
            f().province("广东").city("深圳市"),
            CustomerFilter { district: Some("东昌府区".into()), ..f() },
            CustomerFilter { name_contains: Some("trading".into()), ..f() },
            CustomerFilter { name_contains: Some("客户1".into()), ..f() },
            f().custom(cv("vip", CustomValue::Bool(true))),
            f().custom(cv("vip", CustomValue::Bool(false))),
            f().custom(cv("budget", CustomValue::Decimal(Decimal::new(2100, 2)))),
            f().custom(cv("employees", CustomValue::Number(50))),
            f().custom(cv("since", CustomValue::Date(NaiveDate::from_ymd_opt(2020, 1, 11).unwrap()))),
            f().custom(cv("tier", CustomValue::Select("gold".into()))),
            f().custom(cv("note", CustomValue::Text("备注 10".into()))),
            f().custom(cv("products", CustomValue::Select("crm".into()))),
            f().custom(cv("products", CustomValue::MultiSelect(["erp".into(), "oa".into()].into()))),
            f().custom(cv("products", CustomValue::Select("erp".into()))).owner(user("alice")),
            f().custom(cv("nonexistent", CustomValue::Text("x".into()))),
            f().ids([sample_customer(3).id, sample_customer(1).id, CustomerId(id(999_999))]),
            f().ids([sample_customer(2).id]).tag("VIP").deleted(Deleted::Include),
            f().ids([]),
        ]
    }

    /// Every customer a scan visits, as records.
    fn scan_all(store: &dyn CrmStore, filter: &CustomerFilter) -> Vec<Customer> {
        let mut out = Vec::new();
        let n = store
            .scan_customers(filter, &mut |v| {
                out.push(v.to_customer()?);
                Ok(())
            })
            .unwrap();
        assert_eq!(n, out.len() as u64, "a scan counts what it visits");
        out
    }

    pub fn scans_visit_what_lists_page_through(store: &dyn CrmStore) {
        let all = insert_customers(store, 0..40, &["VIP", "重点", "互联网"]);
        let mut filters = filter_cases();
        filters.extend([
            CustomerFilter::default().deleted(Deleted::Include),
            CustomerFilter::default().deleted(Deleted::Only),
            CustomerFilter::default().tag("VIP").deleted(Deleted::Include),
        ]);
        for filter in filters {
            // Every field, tags and custom values included, equals the listed record's.
            assert_eq!(scan_all(store, &filter), all_customers(store, &filter, 7), "scan for {filter:?}");
        }
        assert!(all.iter().any(|c| c.tags.len() > 1 && !c.custom.is_empty()), "the sample is not vacuous");
        // A visitor's error stops the scan and is its error.
        let mut visited = 0;
        let err = store
            .scan_customers(&CustomerFilter::default(), &mut |_| {
                visited += 1;
                if visited == 3 { Err(Error::Storage(StorageError::msg("enough"))) } else { Ok(()) }
            })
            .unwrap_err();
        assert_eq!((visited, err.to_string().contains("enough")), (3, true), "{err}");
    }

    pub fn filters_agree_with_reference_semantics(store: &dyn CrmStore) {
        let all = insert_customers(store, 0..60, &["VIP", "重点", "互联网"]);
        for filter in filter_cases() {
            let expected: Vec<CustomerId> = all.iter().filter(|c| filter.matches(c)).map(|c| c.id).collect();
            let got: Vec<CustomerId> = all_customers(store, &filter, 7).iter().map(|c| c.id).collect();
            assert_eq!(got, expected, "list for {filter:?}");
            assert_eq!(store.count_customers(&filter).unwrap(), expected.len() as u64, "count for {filter:?}");
        }
        // Sanity: the cases are not vacuous.
        assert!(filter_cases().iter().filter(|f| all.iter().any(|c| f.matches(c))).count() >= 24);
    }

    pub fn paging_walks_every_record_once_in_id_order(store: &dyn CrmStore) {
        let all = insert_customers(store, 0..23, &[]);
        let live: Vec<CustomerId> = all.iter().filter(|c| c.deleted_at.is_none()).map(|c| c.id).collect();
        for limit in [1, 2, 5, 20, 21, 100] {
            let got: Vec<CustomerId> =
                all_customers(store, &CustomerFilter::default(), limit).iter().map(|c| c.id).collect();
            assert_eq!(got, live, "limit {limit}");
        }
        let exact = store.list_customers(&CustomerFilter::default(), &PageRequest::first(live.len())).unwrap();
        assert_eq!(exact.next, None, "a page that ends exactly at the end has no next cursor");
    }

    pub fn paging_is_stable_under_inserts(store: &dyn CrmStore) {
        insert_customers(store, 0..10, &[]);
        let first = store.list_customers(&CustomerFilter::default(), &PageRequest::first(4)).unwrap();
        insert_customers(store, 10..15, &[]);
        let mut seen: Vec<CustomerId> = first.items.iter().map(|c| c.id).collect();
        let mut page = PageRequest::after(first.next.unwrap(), 4);
        loop {
            let p = store.list_customers(&CustomerFilter::default(), &page).unwrap();
            seen.extend(p.items.iter().map(|c| c.id));
            match p.next {
                Some(c) => page = PageRequest::after(c, 4),
                None => break,
            }
        }
        let unique: BTreeSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no record twice");
        let live = (0..15).filter(|n| sample_customer(*n).deleted_at.is_none()).count();
        assert_eq!(seen.len(), live, "records inserted after the cursor are reached");
    }

    pub fn zero_limit_is_rejected(store: &dyn CrmStore) {
        let err = store.list_customers(&CustomerFilter::default(), &PageRequest::first(0)).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("limit").is_some()), "{err:?}");
    }

    pub fn sequences_are_consecutive_and_separate(store: &dyn CrmStore) {
        assert_eq!(store.reserve_sequence("C20240501", 1).unwrap(), 1);
        assert_eq!(store.reserve_sequence("C20240501", 100).unwrap(), 2);
        assert_eq!(store.reserve_sequence("C20240501", 1).unwrap(), 102);
        assert_eq!(store.reserve_sequence("C20240502", 1).unwrap(), 1);
    }

    pub fn timeline_merges_interactions_and_changes(store: &dyn CrmStore) {
        let c = insert_customers(store, 0..2, &[]);
        store
            .apply(&Changes {
                interactions: vec![interaction(1, c[0].id, t0() + Duration::hours(2)), interaction(2, c[1].id, t0())],
                change_log: vec![
                    log_entry(Some(c[0].id), "alice", t0() + Duration::hours(1)),
                    log_entry(Some(c[0].id), "alice", t0() + Duration::hours(2)),
                    log_entry(Some(c[1].id), "alice", t0()),
                ],
                ..Default::default()
            })
            .unwrap();
        let kinds: Vec<(DateTime<Utc>, &str)> = store
            .timeline(c[0].id)
            .unwrap()
            .iter()
            .map(|e| (e.at, if matches!(e.item, TimelineItem::Change(_)) { "change" } else { "interaction" }))
            .collect();
        let h = |n| t0() + Duration::hours(n);
        assert_eq!(kinds, [(h(1), "change"), (h(2), "change"), (h(2), "interaction")]);
    }

    /// A batch that fails at any position leaves the store exactly as it was.
    pub fn failed_batch_changes_nothing(store: &dyn CrmStore) {
        insert_customers(store, 0..3, &["VIP"]);
        let mut runner = TestRunner::new(Config { cases: 24, source_file: Some(file!()), ..Config::default() });
        let next_id = std::cell::Cell::new(100u64);
        runner
            .run(&(0usize..6, 0usize..4), |(good, failure)| {
                let before = snapshot(store);
                let mut changes = Changes::default();
                changes.tags.push(TagWrite::Ensure(tag(&format!("new-tag-{}", next_id.get()), None)));
                for _ in 0..good {
                    next_id.set(next_id.get() + 1);
                    let mut c = sample_customer(next_id.get());
                    c.tags.insert("VIP".into());
                    changes.customers.push(Write::Insert(c));
                    changes.change_log.push(log_entry(None, "alice", t0()));
                }
                match failure {
                    0 => changes.customers.push(Write::Insert(sample_customer(0))), // duplicate id
                    1 => {
                        let mut stale = sample_customer(1);
                        stale.version = 9;
                        changes.customers.push(Write::Update { record: stale, expected_version: 8 });
                    }
                    2 => changes.tag_links.push(TagLink {
                        customer: CustomerId(id(1)),
                        tag: "undefined".into(),
                        linked: true,
                    }),
                    _ => changes.contacts.push(Write::Insert(contact(1, CustomerId(id(5_000)), true))),
                }
                prop_assert!(store.apply(&changes).is_err());
                prop_assert_eq!(snapshot(store), before);
                Ok(())
            })
            .unwrap();
    }

    /// A write session: its batches and sequences commit together, its reads see its own
    /// writes, a failed batch inside it leaves it as it was, and an `Err` rolls it all back.
    pub fn write_session_commits_all_or_nothing(store: &dyn CrmStore) {
        insert_customers(store, 0..2, &["VIP"]);
        let before = snapshot(store);
        let customers = |from: u64| -> Changes {
            let cs: Vec<Customer> = (from..from + 3).map(sample_customer).collect();
            Changes {
                change_log: cs.iter().map(|c| log_entry(Some(c.id), "alice", t0())).collect(),
                customers: cs.into_iter().map(Write::Insert).collect(),
                ..Default::default()
            }
        };
        // Rolled back: nothing of it stays, sequences included.
        let rolled = store.write_session(&mut |tx| {
            tx.apply(&customers(100))?;
            assert!(tx.customer(sample_customer(100).id)?.is_some(), "a session reads its own writes");
            assert_eq!(tx.reserve_sequence("session", 5)?, 1);
            Err(crate::Error::InvalidState("roll back".into()))
        });
        assert!(matches!(rolled, Err(crate::Error::InvalidState(_))));
        assert_eq!(snapshot(store), before);
        assert_eq!(store.reserve_sequence("session", 1).unwrap(), 1);
        // Committed: a failed batch in the middle leaves the session as it was before it.
        store
            .write_session(&mut |tx| {
                tx.apply(&customers(100))?;
                let mut bad = customers(200);
                bad.customers.push(Write::Insert(sample_customer(0))); // a duplicate id
                assert!(matches!(tx.apply(&bad), Err(crate::Error::Duplicate { .. })));
                assert!(tx.customer(sample_customer(200).id)?.is_none(), "the failed batch left nothing");
                tx.apply(&customers(300))
            })
            .unwrap();
        for n in [100, 101, 102, 300, 301, 302] {
            assert!(store.customer(sample_customer(n).id).unwrap().is_some(), "customer {n}");
        }
        assert!(store.customer(sample_customer(200).id).unwrap().is_none());
        let log = store.change_log(&ChangeLogQuery::default()).unwrap();
        assert_eq!(log.len(), before.2.len() + 6);
        assert!(crate::changelog::verify_chain(&log).is_intact(), "one gap-free chain across the batches");
    }

    pub fn text_round_trips_exactly(store: &dyn CrmStore) {
        let mut c = sample_customer(1);
        c.name = "O'Brien \"引号\" ; DROP TABLE customers; -- 😀 \u{200b}".to_owned();
        c.address = Some("第一行\n第二行\t%_\\".to_owned());
        c.custom.insert("note".to_owned(), CustomValue::Text("{\"json\": [1, 2]}".to_owned()));
        store.apply(&Changes { customers: vec![Write::Insert(c.clone())], ..Default::default() }).unwrap();
        assert_eq!(store.customer(c.id).unwrap(), Some(c.clone()));
        let by_name = CustomerFilter { name_contains: Some("drop table".into()), ..Default::default() };
        assert_eq!(store.count_customers(&by_name).unwrap(), 1);
        let percent = CustomerFilter { name_contains: Some("%".into()), ..Default::default() };
        assert_eq!(store.count_customers(&percent).unwrap(), 0, "LIKE wildcards are literal");
    }

    fn arb_scope() -> impl Strategy<Value = access::RecordScope> {
        let owners = proptest::sample::subsequence(vec!["alice", "bob", "carol", "dave"], 0..=3);
        let depts = proptest::sample::subsequence(vec!["east", "south", "north"], 0..=2);
        let provinces = proptest::sample::subsequence(vec!["山东省", "广东省", "浙江省", "北京市"], 0..=2);
        (proptest::bool::weighted(0.1), owners, depts, provinces).prop_map(|(all, o, d, p)| access::RecordScope {
            all,
            owners: o.into_iter().map(user).collect(),
            departments: d.into_iter().map(|d| DepartmentId::new(d).unwrap()).collect(),
            provinces: p.into_iter().map(str::to_owned).collect(),
        })
    }

    /// For random scopes, lists and counts hold exactly the records `RecordScope::admits` allows,
    /// alone and combined with other conditions.
    pub fn scoped_lists_equal_the_scope_predicate(store: &dyn CrmStore) {
        let all = insert_customers(store, 0..48, &["VIP"]);
        let mut runner = TestRunner::new(Config { cases: 48, source_file: Some(file!()), ..Config::default() });
        let extra = proptest::sample::select(vec![
            CustomerFilter::default(),
            CustomerFilter::default().tag("VIP"),
            CustomerFilter::default().province("广东").deleted(Deleted::Include),
            CustomerFilter::default().owner(user("bob")),
        ]);
        runner
            .run(&(arb_scope(), extra), |(scope, extra)| {
                let filter = extra.scope(scope.clone());
                let expected: Vec<CustomerId> = all
                    .iter()
                    .filter(|c| filter.matches(c))
                    .inspect(|c| assert!(scope.admits(c.scope_attrs())))
                    .map(|c| c.id)
                    .collect();
                let got: Vec<CustomerId> = all_customers(store, &filter, 5).iter().map(|c| c.id).collect();
                prop_assert_eq!(&got, &expected, "list for {:?}", filter);
                prop_assert_eq!(store.count_customers(&filter).unwrap(), expected.len() as u64);
                let scanned: Vec<CustomerId> = scan_all(store, &filter).iter().map(|c| c.id).collect();
                prop_assert_eq!(&scanned, &expected, "scan for {:?}", filter);
                Ok(())
            })
            .unwrap();
        // An empty scope admits nothing.
        let none = CustomerFilter::default().scope(access::RecordScope::default());
        assert_eq!(store.count_customers(&none).unwrap(), 0);
    }

    pub fn contacts_by_phone_finds_live_exact_matches(store: &dyn CrmStore) {
        let customers = insert_customers(store, 0..2, &[]);
        let mut a = contact(1, customers[0].id, true);
        a.phones = vec![Phone::parse("13900000001").unwrap(), Phone::parse("13812345678").unwrap()];
        let b = contact(2, customers[1].id, true);
        let mut gone = contact(3, customers[1].id, false);
        gone.deleted_at = Some(t0());
        gone.id_number = b.id_number.clone();
        let writes = [a.clone(), b.clone(), gone].into_iter().map(Write::Insert).collect();
        store.apply(&Changes { contacts: writes, ..Default::default() }).unwrap();
        let ids = |p: &str| -> Vec<ContactId> {
            store.contacts_by_phone(&Phone::parse(p).unwrap()).unwrap().into_iter().map(|c| c.id).collect()
        };
        assert_eq!(ids("13812345678"), vec![a.id, b.id]);
        assert_eq!(ids("13900000001"), vec![a.id]);
        assert_eq!(ids("13700000000"), Vec::<ContactId>::new());
        // A changed number is found under the new value only.
        let moved = Contact { phones: vec![Phone::parse("13700000000").unwrap()], version: 2, ..b.clone() };
        store
            .apply(&Changes {
                contacts: vec![Write::Update { record: moved, expected_version: 1 }],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(ids("13812345678"), vec![a.id]);
        assert_eq!(ids("13700000000"), vec![b.id]);
        assert_eq!(store.contacts_by_phone(&Phone::parse("13700000000").unwrap()).unwrap()[0].phones.len(), 1);
        // Identity numbers: contact 2 carries one (even n); the removed contact's is not found.
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let found: Vec<ContactId> = store.contacts_by_id_number(&id).unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(found, vec![b.id]);
        let cleared = Contact { id_number: None, version: 3, ..store.contact(b.id).unwrap().unwrap() };
        store
            .apply(&Changes {
                contacts: vec![Write::Update { record: cleared, expected_version: 2 }],
                ..Default::default()
            })
            .unwrap();
        assert!(store.contacts_by_id_number(&id).unwrap().is_empty());
    }

    pub fn match_keys_find_live_customers_sharing_a_key(store: &dyn CrmStore) {
        use crate::dedup::{MatchProfile, match_keys};
        let named = |n: u64, name: &str, kind: CustomerKind| Customer {
            name: name.to_owned(),
            kind,
            tags: BTreeSet::new(),
            ..sample_customer(n)
        };
        let a = named(1, "华为技术有限公司", CustomerKind::Enterprise);
        let b = named(2, "华为技朮有限公司", CustomerKind::Enterprise);
        let c = named(3, "星河科技", CustomerKind::Enterprise);
        let d = named(4, "张伟", CustomerKind::Individual);
        let gone = Customer { deleted_at: Some(t0()), ..named(5, "华为技术", CustomerKind::Enterprise) };
        let mut on_c = contact(1, c.id, true);
        on_c.phones = vec![Phone::parse("13812345678").unwrap()];
        on_c.emails = vec![];
        let mut on_d = contact(2, d.id, true);
        on_d.phones = vec![];
        on_d.emails = vec![Email::parse("zhang.wei@example.com").unwrap()];
        let mut removed = contact(3, b.id, true);
        removed.phones = vec![Phone::parse("13900000000").unwrap()];
        removed.deleted_at = Some(t0());
        let mut on_gone = contact(4, gone.id, true);
        on_gone.phones = vec![Phone::parse("13812345678").unwrap()];
        store
            .apply(&Changes {
                customers: [&a, &b, &c, &d, &gone].into_iter().cloned().map(Write::Insert).collect(),
                contacts: [&on_c, &on_d, &removed, &on_gone].into_iter().cloned().map(Write::Insert).collect(),
                ..Default::default()
            })
            .unwrap();
        let probe = |name: &str, kind: CustomerKind| MatchProfile::new(CustomerId(id(999)), "", name, kind);
        let found =
            |p: &MatchProfile, max_block: usize| store.customers_by_match_keys(&match_keys(p), max_block).unwrap();
        let huawei = probe("华为技术股份有限公司", CustomerKind::Enterprise).phone("+86 138 1234 5678");
        assert_eq!(found(&huawei, 100), vec![a.id, b.id, c.id], "name key, its deletions, and the phone");
        assert_eq!(found(&probe("某某", CustomerKind::Enterprise).phone("13900000000"), 100), vec![]);
        assert_eq!(found(&probe("李娜", CustomerKind::Individual).email("Zhang.Wei@Example.com"), 100), vec![d.id]);
        // 华为技 (a deletion of both names) is shared by two live customers: over a block of one.
        assert_eq!(found(&probe("华为技术", CustomerKind::Enterprise), 1), vec![a.id]);
        // A customer's identifiers are keys of its own, met by the same value of any scheme.
        let code = c.identifiers[0].value.clone();
        assert_eq!(found(&probe("", CustomerKind::Enterprise).identifier(IdScheme::Other, &code), 100), vec![c.id]);
        // Keys follow writes: a renamed customer with a new identifier, and a changed number.
        let passport = Identifier { scheme: IdScheme::Passport, value: "G98765432".into() };
        let renamed = Customer { name: "北辰集团".into(), identifiers: vec![passport], version: 2, ..a.clone() };
        let moved = Contact { phones: vec![Phone::parse("13700000000").unwrap()], version: 2, ..on_c.clone() };
        store
            .apply(&Changes {
                customers: vec![Write::Update { record: renamed, expected_version: 1 }],
                contacts: vec![Write::Update { record: moved, expected_version: 1 }],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(found(&huawei, 100), vec![b.id]);
        assert_eq!(found(&probe("北辰", CustomerKind::Enterprise).phone("13700000000"), 100), vec![a.id, c.id]);
        let holder = |scheme| probe("", CustomerKind::Individual).identifier(scheme, "g 9876 5432");
        assert_eq!(found(&holder(IdScheme::Passport), 100), vec![a.id]);
        // A contact moved to another customer takes its keys along; a customer renamed twice in
        // one batch keeps only the last name's keys; a deleted contact keeps none.
        let zhang = probe("李娜", CustomerKind::Individual).email("zhang.wei@example.com");
        let to_c = Contact { customer_id: c.id, version: 2, ..on_d.clone() };
        let b2 = Customer { name: "南山贸易".into(), version: 2, ..b.clone() };
        let b3 = Customer { name: "西湖茶业".into(), version: 3, ..b.clone() };
        let on_c_gone = Contact {
            deleted_at: Some(t0()),
            version: 3,
            phones: vec![Phone::parse("13700000000").unwrap()],
            ..on_c.clone()
        };
        store
            .apply(&Changes {
                customers: vec![
                    Write::Update { record: b2, expected_version: 1 },
                    Write::Update { record: b3, expected_version: 2 },
                ],
                contacts: vec![
                    Write::Update { record: to_c, expected_version: 1 },
                    Write::Update { record: on_c_gone, expected_version: 2 },
                ],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(found(&zhang, 100), vec![c.id]);
        assert_eq!(found(&huawei, 100), vec![]);
        assert_eq!(found(&probe("南山贸易", CustomerKind::Enterprise), 100), vec![]);
        assert_eq!(found(&probe("西湖茶业", CustomerKind::Enterprise), 100), vec![b.id]);
        assert_eq!(found(&probe("某某", CustomerKind::Enterprise).phone("13700000000"), 100), vec![]);
    }

    fn sales_sample(store: &dyn CrmStore, count: u64) -> (Vec<sales::Opportunity>, Vec<sales::StageHistoryEntry>) {
        let mut rng = super::sales_data::Rng::new(7);
        let (opps, history): (Vec<_>, Vec<_>) = (0..count).map(|n| super::sales_data::opportunity(n, &mut rng)).unzip();
        let history: Vec<_> = history.into_iter().flatten().collect();
        store
            .apply(&Changes {
                opportunities: opps.iter().cloned().map(Write::Insert).collect(),
                stage_history: history.clone(),
                ..Default::default()
            })
            .unwrap();
        (opps, history)
    }

    pub fn opportunities_round_trip_and_check_versions(store: &dyn CrmStore) {
        let customer = insert_customers(store, 0..1, &[]).remove(0);
        let mut rng = super::sales_data::Rng::new(3);
        let (mut o, _) = super::sales_data::opportunity(1, &mut rng);
        o.customer_id = Some(customer.id);
        o.milestones = vec![sales::Milestone::new("报价", NaiveDate::from_ymd_opt(2024, 6, 1))];
        o.lines = vec![
            sales::ProductLine::new("授权", Decimal::from(3), Decimal::new(199_990, 2), Decimal::new(9_97, 2)).unwrap(),
        ];
        o.amount = sales::lines_total(&o.lines).unwrap();
        store.apply(&Changes { opportunities: vec![Write::Insert(o.clone())], ..Default::default() }).unwrap();
        assert_eq!(store.opportunity(o.id).unwrap().as_ref(), Some(&o));
        assert_eq!(store.opportunity_by_code(&o.code).unwrap().as_ref(), Some(&o));
        assert_eq!(store.opportunity(sales_id(99)).unwrap(), None);
        // Same code under another id.
        let twin = sales::Opportunity { id: sales_id(2), ..o.clone() };
        let err = store.apply(&Changes { opportunities: vec![Write::Insert(twin)], ..Default::default() });
        assert!(matches!(&err, Err(Error::Duplicate { field, .. }) if field == "code"), "{err:?}");
        // An unknown customer.
        let orphan = sales::Opportunity {
            id: sales_id(3),
            code: "O20240101999".into(),
            customer_id: Some(CustomerId(id(999))),
            ..o.clone()
        };
        let err = store.apply(&Changes { opportunities: vec![Write::Insert(orphan)], ..Default::default() });
        assert!(matches!(&err, Err(Error::NotFound { entity: EntityKind::Customer, .. })), "{err:?}");
        let moved = sales::Opportunity { stage: "intent".into(), version: 2, ..o.clone() };
        let stale = Changes {
            opportunities: vec![Write::Update { record: moved.clone(), expected_version: 7 }],
            ..Default::default()
        };
        assert!(matches!(store.apply(&stale), Err(Error::Conflict { expected: 7, actual: 1, .. })));
        store
            .apply(&Changes {
                opportunities: vec![Write::Update { record: moved.clone(), expected_version: 1 }],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(store.opportunity(o.id).unwrap(), Some(moved));
        let missing = sales::Opportunity { id: sales_id(50), version: 2, ..o };
        let err = store.apply(&Changes {
            opportunities: vec![Write::Update { record: missing, expected_version: 1 }],
            ..Default::default()
        });
        assert!(matches!(err, Err(Error::NotFound { entity: EntityKind::Opportunity, .. })), "{err:?}");
    }

    fn sales_id(n: u128) -> OpportunityId {
        OpportunityId(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000u128 + n))
    }

    pub fn stage_history_is_append_only_per_opportunity(store: &dyn CrmStore) {
        let (opps, history) = sales_sample(store, 12);
        for o in &opps {
            let mine: Vec<_> = history.iter().filter(|h| h.opportunity_id == o.id).cloned().collect();
            let stored = store.stage_history(o.id).unwrap();
            assert_eq!(stored, mine);
            assert_eq!(
                sales::replay(&stored.iter().map(|h| h.change.clone()).collect::<Vec<_>>()),
                Some(o.stage.as_str())
            );
        }
        let again = Changes { stage_history: vec![history[0].clone()], ..Default::default() };
        assert!(matches!(store.apply(&again), Err(Error::Duplicate { .. })));
        let orphan = sales::StageHistoryEntry { opportunity_id: sales_id(10_000), ..history[0].clone() };
        let err = store.apply(&Changes { stage_history: vec![orphan], ..Default::default() });
        assert!(matches!(err, Err(Error::NotFound { entity: EntityKind::Opportunity, .. })), "{err:?}");
        assert!(store.stage_history(sales_id(10_000)).unwrap().is_empty());
    }

    pub fn opportunity_lists_equal_the_filter_predicate(store: &dyn CrmStore) {
        let (opps, _) = sales_sample(store, 60);
        let mut runner = TestRunner::new(Config { cases: 40, source_file: Some(file!()), ..Config::default() });
        let extra = proptest::sample::select(vec![
            sales::OpportunityFilter::default(),
            sales::OpportunityFilter::default().open(true),
            sales::OpportunityFilter::default().open(false).owner(user("bob")),
            sales::OpportunityFilter::default().stage("won"),
        ]);
        runner
            .run(&(proptest::option::of(arb_scope()), extra), |(scope, extra)| {
                let filter = sales::OpportunityFilter { scope, ..extra };
                let expected: Vec<OpportunityId> = opps.iter().filter(|o| filter.matches(o)).map(|o| o.id).collect();
                let mut got = Vec::new();
                let mut page = PageRequest::first(7);
                loop {
                    let p = store.list_opportunities(&filter, &page).unwrap();
                    got.extend(p.items.iter().map(|o| o.id));
                    match p.next {
                        Some(c) => page = PageRequest::after(c, 7),
                        None => break,
                    }
                }
                prop_assert_eq!(&got, &expected);
                prop_assert_eq!(store.count_opportunities(&filter).unwrap(), expected.len() as u64);
                let currencies: BTreeSet<String> =
                    opps.iter().filter(|o| filter.matches(o)).map(|o| o.currency.clone()).collect();
                prop_assert_eq!(
                    store.opportunity_currencies(&filter).unwrap(),
                    currencies.into_iter().collect::<Vec<_>>()
                );
                Ok(())
            })
            .unwrap();
    }

    /// For random queries (range, owner, scope, currency), the store's grouped facts equal the
    /// record-by-record reference reduction.
    pub fn sales_facts_equal_the_reference_reduction(store: &dyn CrmStore) {
        let (opps, history) = sales_sample(store, 150);
        let p = sales::Pipeline::standard();
        let day = |d: i64| super::sales_data::epoch() + Duration::days(d);
        let mut runner = TestRunner::new(Config { cases: 40, source_file: Some(file!()), ..Config::default() });
        let strategy = (
            proptest::option::of((0i64..400, 1i64..400)),
            proptest::option::of(0usize..4),
            proptest::option::of(arb_scope()),
            proptest::bool::ANY,
        );
        runner
            .run(&strategy, |(range, owner, scope, usd)| {
                let mut q = sales::SalesQuery::new("standard");
                if let Some((start, len)) = range {
                    q = q.between(day(start), day(start + len));
                }
                q.owner = owner.map(|i| user(super::sales_data::OWNERS[i]));
                q.scope = scope;
                let currency = if usd { "USD" } else { "CNY" };
                let expected = sales::SalesFacts::from_records(&p, &q, currency, &opps, |o| {
                    history.iter().filter(|h| h.opportunity_id == o.id).cloned().collect()
                });
                let got = store.sales_facts(&p, &q, currency).unwrap();
                prop_assert_eq!(&got, &expected);
                let report = sales::SalesReport::from_facts(&p, currency, &got);
                prop_assert_eq!(report, sales::SalesReport::from_facts(&p, currency, &expected));
                Ok(())
            })
            .unwrap();
    }

    fn lead(n: u64, status: sales::LeadStatus, owner: Option<&str>) -> sales::Lead {
        sales::Lead {
            id: LeadId(id(n)),
            code: format!("L20240501{n:03}"),
            name: format!("线索{n}"),
            company: Some("星河科技".into()),
            phone: n.is_multiple_of(2).then(|| Phone::parse(&format!("1380000{n:04}")).unwrap()),
            email: None,
            source: Some("行业峰会".into()),
            province: Some("广东省".into()),
            industry: None,
            budget_confirmed: n.is_multiple_of(3),
            need_confirmed: true,
            grade: sales::LeadGrade::ALL[(n % 3) as usize],
            status,
            owner: owner.map(user),
            department: None,
            converted: None,
            created_by: user("alice"),
            created_at: t0(),
            updated_by: user("alice"),
            updated_at: t0(),
            version: 1,
        }
    }

    pub fn leads_tasks_and_settings_round_trip(store: &dyn CrmStore) {
        use sales::{Lead, LeadFilter, LeadStatus, Task, TaskFilter};
        let leads = vec![
            lead(1, LeadStatus::New, None),
            lead(2, LeadStatus::Assigned, Some("bob")),
            lead(3, LeadStatus::Converted, Some("bob")),
            lead(4, LeadStatus::Assigned, Some("carol")),
        ];
        store
            .apply(&Changes { leads: leads.iter().cloned().map(Write::Insert).collect(), ..Default::default() })
            .unwrap();
        for l in &leads {
            assert_eq!(store.lead(l.id).unwrap().as_ref(), Some(l));
        }
        let open_bob = LeadFilter { open: Some(true), owner: Some(user("bob")), ..Default::default() };
        assert_eq!(store.count_leads(&open_bob).unwrap(), 1);
        let page =
            store.list_leads(&LeadFilter { open: Some(true), ..Default::default() }, &PageRequest::first(2)).unwrap();
        assert_eq!(page.items.iter().map(|l| l.id).collect::<Vec<_>>(), vec![leads[0].id, leads[1].id]);
        let next = store
            .list_leads(
                &LeadFilter { open: Some(true), ..Default::default() },
                &PageRequest::after(page.next.unwrap(), 2),
            )
            .unwrap();
        assert_eq!(next.items.iter().map(|l| l.id).collect::<Vec<_>>(), vec![leads[3].id]);
        let stale = Lead { version: 2, ..leads[0].clone() };
        let err = store.apply(&Changes {
            leads: vec![Write::Update { record: stale, expected_version: 5 }],
            ..Default::default()
        });
        assert!(matches!(err, Err(Error::Conflict { .. })), "{err:?}");

        let (opps, _) = sales_sample(store, 2);
        let task = |n: u64, owner: &str, due_h: i64, done: bool| Task {
            id: TaskId(id(100 + n)),
            title: format!("回访 {n}"),
            notes: None,
            due_at: t0() + Duration::hours(due_h),
            owner: user(owner),
            department: None,
            opportunity_id: n.is_multiple_of(2).then_some(opps[0].id),
            customer_id: None,
            done_at: done.then(t0),
            created_by: user("alice"),
            created_at: t0(),
            updated_by: user("alice"),
            updated_at: t0(),
            version: 1,
        };
        let tasks =
            [task(1, "bob", 5, false), task(2, "bob", 1, false), task(3, "bob", 3, true), task(4, "carol", 2, false)];
        store
            .apply(&Changes { tasks: tasks.iter().cloned().map(Write::Insert).collect(), ..Default::default() })
            .unwrap();
        let open_bob = TaskFilter { owner: Some(user("bob")), open: Some(true), ..Default::default() };
        assert_eq!(store.tasks(&open_bob).unwrap(), vec![tasks[1].clone(), tasks[0].clone()]);
        let of_opp = TaskFilter { opportunity_id: Some(opps[0].id), ..Default::default() };
        assert_eq!(store.tasks(&of_opp).unwrap(), vec![tasks[1].clone(), tasks[3].clone()]);
        assert_eq!(store.task(tasks[2].id).unwrap().as_ref(), Some(&tasks[2]));
        // Paged by id, with the same filter semantics and count.
        assert_eq!(store.count_tasks(&open_bob).unwrap(), 2);
        assert_eq!(store.count_tasks(&TaskFilter::default()).unwrap(), 4);
        let first = store.list_tasks(&TaskFilter::default(), &PageRequest::first(3)).unwrap();
        assert_eq!(first.items, tasks[..3].to_vec());
        let rest = store.list_tasks(&TaskFilter::default(), &PageRequest::after(first.next.unwrap(), 3)).unwrap();
        assert_eq!((rest.items, rest.next), (vec![tasks[3].clone()], None));
        let open = store.list_tasks(&open_bob, &PageRequest::first(10)).unwrap();
        assert_eq!(open.items, vec![tasks[0].clone(), tasks[1].clone()]);
        assert!(open.next.is_none());
        let orphan = Task { id: TaskId(id(200)), opportunity_id: Some(sales_id(10_000)), ..tasks[0].clone() };
        let err = store.apply(&Changes { tasks: vec![Write::Insert(orphan)], ..Default::default() });
        assert!(matches!(err, Err(Error::NotFound { entity: EntityKind::Opportunity, .. })), "{err:?}");

        let s1 = store::Setting { key: "pipeline.x".into(), value: "{}".into(), version: 1 };
        store.apply(&Changes { settings: vec![Write::Insert(s1.clone())], ..Default::default() }).unwrap();
        assert_eq!(store.setting("pipeline.x").unwrap(), Some(s1.clone()));
        assert!(matches!(
            store.apply(&Changes { settings: vec![Write::Insert(s1.clone())], ..Default::default() }),
            Err(Error::Duplicate { .. })
        ));
        let s2 = store::Setting { value: "[]".into(), version: 2, ..s1 };
        assert!(matches!(
            store.apply(&Changes {
                settings: vec![Write::Update { record: s2.clone(), expected_version: 3 }],
                ..Default::default()
            }),
            Err(Error::Conflict { .. })
        ));
        store
            .apply(&Changes {
                settings: vec![Write::Update { record: s2.clone(), expected_version: 1 }],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(store.setting("pipeline.x").unwrap(), Some(s2));
        assert_eq!(store.setting("nope").unwrap(), None);
    }

    /// Fills a store with some of everything: what a copy must carry over.
    fn fill_everything(store: &dyn CrmStore) {
        let mut customers = insert_customers(store, 0..30, &["VIP", "重点"]);
        let gone = Customer { deleted_at: Some(t0()), version: 2, ..customers[3].clone() };
        store
            .apply(&Changes {
                customers: vec![Write::Update { record: gone.clone(), expected_version: 1 }],
                ..Default::default()
            })
            .unwrap();
        customers[3] = gone;
        store.apply(&Changes { tags: vec![TagWrite::Put(tag("unused", Some("分组")))], ..Default::default() }).unwrap();
        let mut contacts: Vec<Contact> = (0..12).map(|n| contact(n, customers[(n % 5) as usize].id, n < 5)).collect();
        contacts[7].deleted_at = Some(t0());
        let interactions: Vec<Interaction> = (0..9)
            .map(|n| interaction(n, customers[(n % 4) as usize].id, t0() + Duration::minutes(n as i64)))
            .collect();
        let field = CustomFieldDef::new(EntityKind::Customer, "wechat", "微信", custom_field::FieldType::Text);
        let events: Vec<crate::marketing::BehaviourEvent> = (0..11u32)
            .map(|n| {
                let at = t0() + Duration::minutes(i64::from(n) * 7);
                let mut e = crate::marketing::BehaviourEvent::new(customers[(n % 3) as usize].id, "page_view", at)
                    .property("url", CustomValue::Text(format!("/p/{n}")));
                e.id = EventId(Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, at.timestamp() as u64, n)));
                e.external_id = (n % 2 == 0).then(|| format!("x{n}"));
                e
            })
            .collect();
        let settings =
            vec![Write::Insert(store::Setting { key: "pipeline.x".into(), value: "{\"a\":1}".into(), version: 3 })];
        let access = AccessModel::default()
            .with_department(Department::new("east", "华东", None).unwrap())
            .map(|m| AccessModel { version: 2, ..m })
            .unwrap();
        store
            .apply(&Changes {
                contacts: contacts.into_iter().map(Write::Insert).collect(),
                interactions,
                events,
                custom_fields: vec![field],
                settings,
                access: Some(Write::Insert(access)),
                ..Default::default()
            })
            .unwrap();
        let (opps, _) = sales_sample(store, 25);
        let lead = sales::Lead { version: 4, ..lead(300, sales::LeadStatus::New, Some("bob")) };
        let task = sales::Task {
            id: TaskId(id(301)),
            title: "回访".into(),
            notes: None,
            due_at: t0(),
            owner: user("bob"),
            department: None,
            opportunity_id: Some(opps[0].id),
            customer_id: None,
            done_at: None,
            created_by: user("alice"),
            created_at: t0(),
            updated_by: user("alice"),
            updated_at: t0(),
            version: 1,
        };
        let tickets = super::service_data::tickets(6, 3);
        let entries = tickets
            .iter()
            .map(|t| service::TicketEntry {
                ticket_id: t.id,
                seq: 1,
                at: t.created_at,
                by: user("alice"),
                change: service::TicketChange::Created,
            })
            .collect();
        store
            .apply(&Changes {
                leads: vec![Write::Insert(lead)],
                tasks: vec![Write::Insert(task)],
                tickets: tickets.into_iter().map(Write::Insert).collect(),
                ticket_entries: entries,
                articles: super::service_data::articles(5, 3).into_iter().map(Write::Insert).collect(),
                change_log: (0..7).map(|n| log_entry(Some(customers[n % 3].id), "alice", t0())).collect(),
                ..Default::default()
            })
            .unwrap();
        let products = super::commerce_data::products(6);
        let buyers: Vec<CustomerId> = customers.iter().map(|c| c.id).collect();
        let purchases = super::commerce_data::purchases(&buyers, &products, 40, 3);
        store
            .apply(&Changes {
                products: products.into_iter().map(Write::Insert).collect(),
                purchases: purchases.into_iter().map(Write::Insert).collect(),
                ..Default::default()
            })
            .unwrap();
        store.reserve_sequence("C20240501", 30).unwrap();
        store.reserve_sequence("T20240501", 6).unwrap();
    }

    /// Everything a store answers, read back in full: two stores holding the same data give equal values.
    #[allow(clippy::type_complexity)]
    fn everything(store: &dyn CrmStore) -> Vec<String> {
        use super::walk_in_small_pages as walk;
        let customers = all_customers(store, &CustomerFilter::default().deleted(Deleted::Include), 7);
        let opportunities = walk(|p| store.list_opportunities(&Default::default(), p));
        let tickets = walk(|p| store.list_tickets(&Default::default(), p));
        let mut out = vec![
            format!("{customers:?}"),
            format!("{:?}", store.tags().unwrap()),
            format!("{:?}", walk(|p| store.all_contacts(p))),
            format!("{:?}", walk(|p| store.all_interactions(p))),
            format!("{:?}", customers.iter().map(|c| store.contacts_of(c.id).unwrap()).collect::<Vec<_>>()),
            format!("{:?}", customers.iter().map(|c| store.interactions_of(c.id).unwrap()).collect::<Vec<_>>()),
            format!(
                "{:?}",
                customers
                    .iter()
                    .map(|c| walk(|p| store.events_of(c.id, &crate::marketing::EventRange::default(), p)))
                    .collect::<Vec<_>>()
            ),
            format!("{:?}", EntityKind::ALL.map(|e| store.custom_fields(e).unwrap())),
            format!("{:?}", store.access_model().unwrap()),
            format!("{:?}", store.settings().unwrap()),
            format!("{:?}", store.sequences().unwrap()),
            format!("{opportunities:?}"),
            format!("{:?}", opportunities.iter().map(|o| store.stage_history(o.id).unwrap()).collect::<Vec<_>>()),
            format!("{:?}", walk(|p| store.list_leads(&Default::default(), p))),
            format!("{:?}", store.tasks(&Default::default()).unwrap()),
            format!("{tickets:?}"),
            format!("{:?}", tickets.iter().map(|t| store.ticket_entries(t.id).unwrap()).collect::<Vec<_>>()),
            format!("{:?}", walk(|p| store.list_articles(p))),
            format!("{:?}", walk(|p| store.list_products(&Default::default(), p))),
            format!(
                "{:?}",
                walk(|p| store.list_purchases(
                    &commerce::PurchaseFilter {
                        customers: CustomerFilter::default().deleted(Deleted::Include),
                        ..Default::default()
                    },
                    p
                ))
            ),
            format!("{:?}", store.change_log(&ChangeLogQuery::default()).unwrap()),
            format!("{:?}", store.contacts_by_phone(&Phone::parse("13812345678").unwrap()).unwrap()),
        ];
        let keys = crate::dedup::customer_match_keys(customers[1].kind, &customers[1].name);
        let probe = crate::dedup::MatchKeys { names: keys, contacts: vec![] };
        out.push(format!("{:?}", store.customers_by_match_keys(&probe, 100).unwrap()));
        out
    }

    pub fn a_copy_reads_like_the_original(store: &dyn CrmStore) {
        // Into the store under test, from the reference...
        let reference = MemoryStore::new();
        fill_everything(&reference);
        let report = store::copy_store(&reference, store).unwrap();
        assert_eq!(report.log_entries, 7);
        assert!(report.records > 100, "{report:?}");
        let expected = everything(&reference);
        let got = everything(store);
        for (e, g) in expected.iter().zip(&got) {
            assert_eq!(e, g);
        }
        // ...and out of it again, inside a write session (all or nothing).
        let back = MemoryStore::new();
        back.write_session(&mut |tx| store::copy_store(store, tx).map(|_| ())).unwrap();
        assert_eq!(everything(&back), expected);
        // A copy never merges into a store holding data.
        let err = store::copy_store(&reference, store);
        assert!(matches!(err, Err(Error::InvalidState(_))), "{err:?}");
        // The sequences go on where they were.
        assert_eq!(store.reserve_sequence("C20240501", 1).unwrap(), 31);
    }

    pub fn access_model_is_versioned(store: &dyn CrmStore) {
        assert_eq!(store.access_model().unwrap(), None);
        let m1 = AccessModel::default()
            .with_department(Department::new("east", "华东", None).unwrap())
            .and_then(|m| m.with_user(User::new("root", "管理员")?.role(BuiltinRole::Administrator)))
            .map(|m| AccessModel { version: 1, ..m })
            .unwrap();
        store.apply(&Changes { access: Some(Write::Insert(m1.clone())), ..Default::default() }).unwrap();
        assert_eq!(store.access_model().unwrap().as_deref(), Some(&m1));
        let again = store.apply(&Changes { access: Some(Write::Insert(m1.clone())), ..Default::default() });
        assert!(matches!(again, Err(Error::Duplicate { .. })), "{again:?}");
        let m2 = AccessModel {
            version: 2,
            ..m1.with_department(Department::new("sh", "上海", Some("east")).unwrap()).unwrap()
        };
        let stale =
            Changes { access: Some(Write::Update { record: m2.clone(), expected_version: 0 }), ..Default::default() };
        assert!(matches!(store.apply(&stale), Err(Error::Conflict { .. })));
        store
            .apply(&Changes {
                access: Some(Write::Update { record: m2.clone(), expected_version: 1 }),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(store.access_model().unwrap().as_deref(), Some(&m2));
    }
}

pub mod encryption {
    //! Cases for backends that encrypt fields, which need a key to be set up (so they are not
    //! in the conformance macro): the contact they write, and rotation under load.

    use std::sync::Arc;

    use crate::{Changes, Contact, ContactId, CrmStore, CustomerId, Phone, UserId, Write};

    /// A contact of `customer` with one phone (ids ordered by `n`).
    pub fn sample_contact(n: u128, customer: CustomerId, phone: &str) -> Contact {
        let at = "2024-05-01T08:00:00Z".parse().unwrap();
        Contact {
            id: ContactId(uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0001_0000 + n)),
            customer_id: customer,
            name: format!("联系人{n}"),
            title: None,
            phones: vec![Phone::parse(phone).unwrap()],
            emails: vec![],
            id_number: None,
            role: None,
            primary: n == 0,
            do_not_contact: false,
            custom: Default::default(),
            created_by: UserId::new("alice").unwrap(),
            created_at: at,
            updated_by: UserId::new("alice").unwrap(),
            updated_at: at,
            version: 1,
            deleted_at: None,
        }
    }

    /// `writers` threads each write `per_writer` contacts (reading them back after each)
    /// while another rotates the field key `rotations` times, to keys from `new_key`: nothing
    /// may fail or hang (two minutes), and every contact is there at the end.
    pub fn rotation_under_concurrent_writes(
        store: Arc<dyn CrmStore>,
        writers: u128,
        per_writer: u128,
        rotations: usize,
        new_key: fn() -> Vec<u8>,
    ) {
        let customer = super::conformance::sample_customer(0);
        store.apply(&Changes { customers: vec![Write::Insert(customer.clone())], ..Default::default() }).unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        for t in 0..writers {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || {
                for n in 0..per_writer {
                    let c = sample_contact(1 + t * 1000 + n, customer.id, &format!("1380000{:04}", t * 1000 + n));
                    store.apply(&Changes { contacts: vec![Write::Insert(c)], ..Default::default() }).unwrap();
                    store.contacts_of(customer.id).unwrap();
                }
                done.send(()).unwrap();
            });
        }
        {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || {
                for _ in 0..rotations {
                    store.rotate_field_key(&new_key()).unwrap();
                }
                done.send(()).unwrap();
            });
        }
        for _ in 0..=writers {
            finished
                .recv_timeout(std::time::Duration::from_secs(120))
                .expect("a writer or the rotation failed or is stuck (lock-order deadlock)");
        }
        assert_eq!(store.contacts_of(customer.id).unwrap().len() as u128, writers * per_writer);
    }
}

pub mod sales_data {
    //! Deterministic pseudo-random sales data: opportunities moved through the standard
    //! pipeline by its own rules, with their stage history. Used by the conformance suite, the
    //! facade's tests and the benchmarks.

    use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
    use rust_decimal::Decimal;
    use uuid::Uuid;

    use crate::sales::{Opportunity, Pipeline, ProductLine, SalesState, StageHistoryEntry, StageKind, StageMove};
    use crate::{DepartmentId, OpportunityId, UserId};

    /// Owners the generator uses.
    pub const OWNERS: [&str; 4] = ["alice", "bob", "carol", "dave"];
    /// Departments, by owner index.
    pub const DEPARTMENTS: [&str; 4] = ["east", "east", "south", "north"];
    /// Provinces.
    pub const PROVINCES: [&str; 4] = ["山东省", "广东省", "浙江省", "北京市"];
    /// Products.
    pub const PRODUCTS: [&str; 3] = ["CRM 标准版", "CRM 旗舰版", "实施服务"];

    /// A small xorshift generator: reproducible without a dependency.
    #[derive(Debug, Clone)]
    pub struct Rng(u64);

    impl Rng {
        /// Seeded (0 is replaced by a constant).
        pub fn new(seed: u64) -> Rng {
            Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }

        /// The next value below `n`.
        pub fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }
    }

    /// The start of generated time: 2024-01-01 00:00 UTC.
    pub fn epoch() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
    }

    /// Opportunity `n` (ids ordered by `n`) with its history, drawn from `rng`: opened within
    /// 2024, moved 0–7 times (mostly forward) through the standard pipeline (allowed moves only), some won or
    /// lost, amounts from product lines or set directly, a few in USD, some hand-set probabilities.
    pub fn opportunity(n: u64, rng: &mut Rng) -> (Opportunity, Vec<StageHistoryEntry>) {
        let p = Pipeline::standard();
        let o = rng.below(4) as usize;
        let opened_at = epoch() + Duration::seconds(rng.below(360 * 86_400) as i64);
        let lines: Vec<ProductLine> = (0..rng.below(3))
            .map(|_| {
                let q = Decimal::from(1 + rng.below(5));
                let price = Decimal::new(1_000 + rng.below(5_000_000) as i64, 2);
                let gross = q * price;
                let discount = (gross * Decimal::new(rng.below(20) as i64, 2)).round_dp(2);
                ProductLine::new(PRODUCTS[rng.below(3) as usize], q, price, discount).unwrap()
            })
            .collect();
        let amount = if lines.is_empty() {
            Decimal::new(rng.below(10_000_000) as i64, 2)
        } else {
            crate::sales::lines_total(&lines).unwrap()
        };
        let id = OpportunityId(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000u128 + u128::from(n)));
        let by = UserId::new(OWNERS[o]).unwrap();
        let mut state = SalesState::new(&p, amount);
        state.set_fields.insert("expected_close".into());
        let mut history = vec![StageHistoryEntry {
            opportunity_id: id,
            seq: 1,
            change: StageMove { from: None, to: state.stage.clone(), amount, probability: state.probability },
            at: opened_at,
            by: by.clone(),
            from_entered_at: None,
            lost_reason: None,
        }];
        if rng.below(5) == 0 {
            state = p.set_probability(&state, Some(Decimal::from(rng.below(101)))).unwrap();
        }
        let mut at = opened_at;
        let mut furthest = state.stage.clone();
        let (mut won_at, mut lost_at) = (None, None);
        for _ in 0..rng.below(14) {
            // Mostly forward one stage, sometimes anywhere (refused moves are skipped).
            let here = p.stages.iter().position(|s| s.key == state.stage).unwrap_or(0);
            let pick = if rng.below(6) == 0 { 1 + rng.below(p.stages.len() as u64 - 1) as usize } else { here + 1 };
            let target = &p.stages[pick.min(p.stages.len() - 1)];
            let reason = p.lost_reasons[rng.below(p.lost_reasons.len() as u64) as usize].clone();
            let Ok((next, mv)) = p.move_to(&state, &target.key, Some(&reason)) else { continue };
            let entered = history.last().map(|h| h.at);
            at += Duration::seconds(1 + rng.below(40 * 86_400) as i64);
            furthest = p.further(&furthest, &next.stage).to_owned();
            match target.kind {
                StageKind::Won => won_at = Some(at),
                StageKind::Lost => lost_at = Some(at),
                StageKind::Open => {}
            }
            history.push(StageHistoryEntry {
                opportunity_id: id,
                seq: history.len() as u32 + 1,
                change: mv,
                at,
                by: by.clone(),
                from_entered_at: entered,
                lost_reason: next.lost_reason.clone(),
            });
            state = next;
        }
        let expected_close = (rng.below(6) != 0)
            .then(|| NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + Duration::days(rng.below(540) as i64));
        let opp = Opportunity {
            id,
            code: Opportunity::code_for(opened_at.date_naive(), n + 1),
            customer_id: None,
            contact_id: None,
            name: format!("商机 {n}"),
            pipeline: p.key.clone(),
            stage: state.stage.clone(),
            furthest_stage: furthest,
            probability: state.probability,
            probability_source: state.probability_source,
            amount,
            currency: if rng.below(10) == 0 { "USD" } else { "CNY" }.to_owned(),
            expected_close,
            lines,
            milestones: vec![],
            cadence_days: (rng.below(3) == 0).then_some(3),
            lost_reason: state.lost_reason.clone(),
            owner: Some(by.clone()),
            department: Some(DepartmentId::new(DEPARTMENTS[o]).unwrap()),
            province: (rng.below(4) != 0).then(|| PROVINCES[rng.below(4) as usize].to_owned()),
            opened_at,
            won_at,
            lost_at,
            last_activity_at: at,
            created_by: by.clone(),
            created_at: opened_at,
            updated_by: by,
            updated_at: at,
            version: 1,
        };
        (opp, history)
    }
}
