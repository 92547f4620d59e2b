//! The bodies of the fuzz targets (feature `testing`): `tests/fuzz` runs them under
//! libFuzzer (`cargo fuzz`), and `crates/guanxi/tests/fuzz_corpus.rs` replays every committed
//! corpus file through them as ordinary tests, so a corpus entry that once crashed stays a
//! regression test. Each body panics only when an invariant breaks.

use std::sync::Arc;

use crate::{
    Actor, Crm, CustomerFilter, DuplicatePolicy, Error, ImportLimits, ImportMode, ImportOptions, MemoryStore,
    NewContact, NewCustomer, PageRequest, Region, SqliteStore,
};

fn actor() -> Actor {
    Actor::new(crate::UserId::new("fuzz").unwrap_or_else(|_| unreachable!("a valid id")))
}

/// Small limits, so every run stays fast and bounded.
fn limits() -> ImportLimits {
    ImportLimits {
        max_file_bytes: 1 << 20,
        max_decompressed_bytes: 8 << 20,
        max_rows: 500,
        max_columns: 64,
        max_cell_chars: 2_000,
    }
}

/// Any bytes as an import file (the first byte picks the duplicate policy and the mode): never
/// a panic, only a report or a typed validation error; every row counted once; nothing
/// written by a refused file.
///
/// ```
/// guanxi::fuzzing::import_file(b"\x00\xe5\xae\xa2\xe6\x88\xb7\xe5\x90\x8d\xe7\xa7\xb0\n\xe7\x94\xb2\n");
/// ```
pub fn import_file(data: &[u8]) {
    let Some((&flags, bytes)) = data.split_first() else { return };
    let on_duplicate = [DuplicatePolicy::Skip, DuplicatePolicy::Update, DuplicatePolicy::Create, DuplicatePolicy::Link]
        [usize::from(flags & 3)];
    let mode = if flags & 4 == 0 { ImportMode::KeepGood } else { ImportMode::AllOrNothing };
    let options = ImportOptions { on_duplicate, mode, limits: limits(), ..ImportOptions::default() };
    let crm = Crm::builder().store(Arc::new(MemoryStore::new())).build();
    let count = |crm: &Crm| crm.customers().count(&actor(), &CustomerFilter::default()).unwrap_or(u64::MAX);
    match crm.files().import(&actor(), bytes, &options, |_| {}) {
        Ok(r) => {
            let accounted = (r.created.len() + r.updated.len() + r.linked.len() + r.skipped.len()) as u64;
            if r.committed {
                assert_eq!(accounted + r.rejected_rows(), r.rows, "every row is counted once: {r:?}");
                assert_eq!(count(&crm), r.created.len() as u64, "the report says what was written");
            } else {
                assert_eq!(count(&crm), 0, "an import that did not commit wrote nothing");
            }
        }
        Err(Error::Validation(_)) => assert_eq!(count(&crm), 0, "a refused file wrote nothing"),
        Err(e) => panic!("an import fails only with a validation error, got {e:?}"),
    }
}

/// A catalog or purchase file (the first byte picks which, and the mode), imported into a
/// store holding customer `C20240501001` and product `SKU-1`: never a panic; every row is
/// counted once (synced or rejected); a rejected file or an import that did not commit wrote
/// nothing; the only error is a validation error.
///
/// ```
/// guanxi::fuzzing::commerce_file(b"\x01customer_code,at,amount\nC20240501001,2024-05-06,12.5\n");
/// ```
pub fn commerce_file(data: &[u8]) {
    use crate::{CommerceImportOptions, commerce::NewProduct, commerce::ProductFilter, commerce::PurchaseFilter};
    let Some((&flags, bytes)) = data.split_first() else { return };
    let mode = if flags & 2 == 0 { ImportMode::KeepGood } else { ImportMode::AllOrNothing };
    let options = CommerceImportOptions { mode, limits: limits(), ..Default::default() };
    let clock =
        Arc::new(guanxi_core::FixedClock::at(chrono::DateTime::from_timestamp(1_714_550_400, 0).unwrap_or_default()));
    let crm = Crm::builder().store(Arc::new(MemoryStore::new())).clock(clock).build();
    let (Ok(c), Ok(_)) = (
        crm.customers().create(&actor(), NewCustomer::new("甲公司")),
        crm.commerce().products().create(&actor(), NewProduct::new("SKU-1", "产品")),
    ) else {
        panic!("the fixture is written")
    };
    assert_eq!(c.code, "C20240501001");
    let count = |crm: &Crm| {
        let products = crm.commerce().products().count(&actor(), &ProductFilter::default()).unwrap_or(u64::MAX);
        let purchases = crm.commerce().purchases().count(&actor(), &PurchaseFilter::default()).unwrap_or(u64::MAX);
        products + purchases
    };
    let result = if flags & 1 == 0 {
        crm.files().import_products(&actor(), bytes, &options)
    } else {
        crm.files().import_purchases(&actor(), bytes, &options)
    };
    match result {
        Ok(r) => {
            let rejected: std::collections::BTreeSet<u64> = r.rejected.iter().map(|e| e.row).collect();
            if r.committed {
                assert_eq!(r.sync.ids.len() as u64 + rejected.len() as u64, r.rows, "every row is counted once: {r:?}");
                assert!(count(&crm) <= 1 + r.sync.created, "the report says what was written");
            } else {
                assert_eq!(count(&crm), 1, "an import that did not commit wrote nothing");
            }
        }
        Err(Error::Validation(_)) => assert_eq!(count(&crm), 1, "a refused file wrote nothing"),
        Err(e) => panic!("an import fails only with a validation error, got {e:?}"),
    }
}

/// Fields of a customer with one contact, cut from the input at 0x01 bytes: never a panic;
/// a refused input writes nothing; an accepted one reads back as it was stored.
///
/// ```
/// guanxi::fuzzing::customer_input("华为技术有限公司\u{1}广东\u{1}深圳市\u{1}VIP\u{1}张伟\u{1}13812345678".as_bytes());
/// ```
pub fn customer_input(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut f = text.split('\u{1}');
    let mut next = || f.next().unwrap_or_default().to_owned();
    let (name, province, city, tag, contact, phone, email, id_number, address, source) =
        (next(), next(), next(), next(), next(), next(), next(), next(), next(), next());
    let mut input = NewCustomer::new(name).tag(tag);
    if !province.is_empty() || !city.is_empty() {
        input = input.region(Region { province, city, district: String::new() });
    }
    input.address = (!address.is_empty()).then_some(address);
    input.source = (!source.is_empty()).then_some(source);
    let mut c = NewContact::new(contact).phone(phone).email(email);
    if !id_number.is_empty() {
        c = c.id_number(id_number);
    }
    input = input.contact(c);
    let crm = Crm::builder().store(Arc::new(MemoryStore::new())).build();
    match crm.customers().create(&actor(), input) {
        Ok(created) => {
            let read =
                crm.customers().get(&actor(), created.id).unwrap_or_else(|e| panic!("created but unreadable: {e}"));
            assert_eq!(read, created);
            let contacts = crm.contacts().list(&actor(), read.id).unwrap_or_else(|e| panic!("{e}"));
            for text in std::iter::once(&read.name).chain(read.tags.iter()).chain(contacts.iter().map(|c| &c.name)) {
                assert!(crate::normalize::forbidden_char(text, false).is_none(), "stored {text:?}");
            }
        }
        Err(Error::Validation(v)) => {
            assert!(!v.is_empty());
            assert_eq!(crm.customers().count(&actor(), &CustomerFilter::default()).unwrap_or(1), 0);
        }
        Err(e) => panic!("a create fails only with a validation error, got {e:?}"),
    }
}

/// A customer filter built from the input, over a fixed set of customers: the SQLite store's
/// compiled query, the memory store and the reference predicate agree (list and count).
///
/// ```
/// guanxi::fuzzing::customer_filter(b"\x03\x01\x02VIP");
/// ```
pub fn customer_filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data.get(2..).unwrap_or_default()).into_owned();
    let (a, b) = (data.first().copied().unwrap_or(0), data.get(1).copied().unwrap_or(0));
    let mut filter = CustomerFilter::default();
    if a & 1 != 0 {
        filter = filter.tag(&text);
    }
    if a & 2 != 0 {
        filter.name_contains = Some(text.clone());
    }
    if a & 4 != 0 {
        filter = filter.province(&text);
    }
    if a & 8 != 0 {
        filter = filter.city(&text);
    }
    if a & 16 != 0 {
        filter.status = Some(crate::LifecycleStatus::ALL[usize::from(b) % crate::LifecycleStatus::ALL.len()]);
    }
    if a & 32 != 0 {
        filter.level = Some(crate::Level::ALL[usize::from(b) % crate::Level::ALL.len()]);
    }
    let sqlite = match SqliteStore::open_in_memory() {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let backends =
        [Crm::builder().store(Arc::new(MemoryStore::new())).build(), Crm::builder().store(Arc::new(sqlite)).build()];
    let seed = |crm: &Crm| {
        let rows = [
            ("华为技术有限公司", "广东", "深圳市", "VIP"),
            ("上海星河科技", "上海", "", "展会"),
            ("杭州某某贸易", "浙江", "杭州市", "VIP"),
            ("北京一二三", "北京", "", "老客户"),
            ("A%_B 公司", "广东", "广州市", "%"),
        ];
        for (name, province, city, tag) in rows {
            let input = NewCustomer::new(name).tag(tag).region(Region {
                province: province.into(),
                city: city.into(),
                district: String::new(),
            });
            crm.customers().create(&actor(), input).unwrap_or_else(|e| panic!("{e}"));
        }
    };
    let mut results = Vec::new();
    for crm in &backends {
        seed(crm);
        let listed = crm.customers().list(&actor(), &filter, PageRequest::first(100)).map(|p| {
            let mut names: Vec<String> = p.items.into_iter().map(|c| c.name).collect();
            names.sort();
            names
        });
        let counted = crm.customers().count(&actor(), &filter);
        match (&listed, &counted) {
            (Ok(l), Ok(n)) => assert_eq!(l.len() as u64, *n, "list and count agree for {filter:?}"),
            (Err(Error::Validation(_)), Err(Error::Validation(_))) => {}
            other => panic!("list and count disagree for {filter:?}: {other:?}"),
        }
        results.push(listed.ok());
    }
    assert_eq!(results[0], results[1], "memory and SQLite agree for {filter:?}");
}

/// Any bytes as a match settings document (JSON, as stored and as Python and the stores
/// read it) and as a match field's name: never a panic. A document that validates drives a
/// scan and a link over fixed profiles whose scores all lie in [0, 1], whose reasons name
/// rules of the document, and whose link pairs cross the two sides; one that does not is
/// refused with at least one named problem.
///
/// ```
/// guanxi::fuzzing::match_rules(br#"{"rules":[{"field":"surname","comparison":{"type":"phonetic"}}],"threshold":0.5}"#);
/// ```
pub fn match_rules(data: &[u8]) {
    use guanxi_core::dedup::{MatchField, MatchProfile, MatchRules, NotDuplicates, Pairs, scan};
    use guanxi_core::{CustomValue, CustomerId, CustomerKind};
    let _ = String::from_utf8_lossy(data).parse::<MatchField>();
    let Ok(rules) = serde_json::from_slice::<MatchRules>(data) else { return };
    if let Err(e) = rules.validate() {
        assert!(matches!(&e, Error::Validation(v) if !v.is_empty()), "a refusal names its problems: {e:?}");
        return;
    }
    let day = |d| CustomValue::Date(chrono::NaiveDate::from_ymd_opt(1980, 3, d).unwrap_or_default());
    let person = |n: u128, name: &str, d: u32| {
        MatchProfile::new(CustomerId(uuid::Uuid::from_u128(n)), &format!("P{n}"), name, CustomerKind::Individual)
            .address("12 Ocean Street Sydney")
            .phone("13812345678")
            .custom("date_of_birth", &day(d))
            .custom("member", &CustomValue::Number(i64::try_from(n).unwrap_or(0)))
    };
    let profiles = [
        person(1, "Ann Lee", 7),
        person(2, "Anne Lee", 7),
        person(3, "张伟", 8),
        person(4, "张玮", 8),
        MatchProfile::new(CustomerId(uuid::Uuid::from_u128(5)), "C5", "华为技术有限公司", CustomerKind::Enterprise),
    ];
    for pairs in [Pairs::Within, Pairs::Across { left: 2 }] {
        scan(&profiles, &rules, &NotDuplicates::new(), pairs, |cluster| {
            for link in &cluster.links {
                assert!((0.0..=1.0).contains(&link.to.score), "score {}", link.to.score);
                assert!(link.to.reasons.iter().all(|r| rules.rules.iter().any(|x| x.field == r.field)));
                if let (Pairs::Across { left }, Some(to)) = (pairs, link.to.id) {
                    let side = |id: CustomerId| profiles.iter().position(|p| p.id == id).is_some_and(|i| i < left);
                    assert_ne!(side(link.from), side(to), "a link within one side");
                }
            }
        });
    }
}

/// The segment parser on arbitrary text: it never panics; a failure points inside the text;
/// a segment that parses prints to text that parses to the same segment, and evaluates
/// against a sample customer and events without panicking.
///
/// ```
/// guanxi::fuzzing::segment(b"count(event = \"page_view\", url ~ ielts, within = 30d) >= 3 AND NOT tag:x");
/// ```
pub fn segment(data: &[u8]) {
    use guanxi_core::marketing::{BehaviourEvent, Segment, SegmentContext, SegmentFacts};
    let text = String::from_utf8_lossy(data);
    let parsed = match Segment::parse(&text) {
        Ok(s) => s,
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.matches('\n').count() + 1 && e.column >= 1, "{e}");
            return;
        }
    };
    let printed = parsed.to_string();
    assert_eq!(Segment::parse(&printed).as_ref(), Ok(&parsed), "{printed}");
    let c = guanxi_core::testing::conformance::sample_customer(3);
    let now = c.created_at + chrono::Duration::days(40);
    let events: Vec<BehaviourEvent> = (0..5)
        .map(|d| {
            BehaviourEvent::new(c.id, "page_view", now - chrono::Duration::days(d * 9))
                .property("url", guanxi_core::CustomValue::Text("/ielts".into()))
        })
        .collect();
    let facts = SegmentFacts { events: &events, interactions: &[] };
    let ctx = SegmentContext::at(now);
    let explained = parsed.explain(&c, facts, &ctx);
    assert_eq!(explained.holds, parsed.matches(&c, facts, &ctx));
}
