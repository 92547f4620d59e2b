//! Behaviour of the `Crm` facade, run on every backend.

mod common;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use guanxi::*;
use rust_decimal::Decimal;

fn t0() -> DateTime<Utc> {
    "2024-05-01T02:00:00Z".parse().unwrap() // 10:00 in Beijing
}

struct Fixture {
    crm: Crm,
    clock: Arc<FixedClock>,
    alice: Actor,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Fixture {
    fn new(store: DynStore) -> Self {
        Self::with(store, |b| b)
    }

    fn with(store: DynStore, configure: impl FnOnce(CrmBuilder) -> CrmBuilder) -> Self {
        let clock = Arc::new(FixedClock::at(t0()));
        let crm = configure(Crm::builder().store(store).clock(clock.clone()).trust_asserted_elevation(true)).build();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        crm.subscribe(move |e| sink.lock().unwrap().push(e.clone()));
        Fixture { crm, clock, alice: Actor::user("alice").unwrap(), events }
    }

    fn event_names(&self) -> Vec<&'static str> {
        self.events.lock().unwrap().iter().map(|e| e.payload.name()).collect()
    }

    fn log_len(&self) -> usize {
        self.crm.audit().entries(&self.alice, &ChangeLogQuery::default()).unwrap().len()
    }

    fn count(&self) -> u64 {
        self.crm.customers().count(&self.alice, &CustomerFilter::default().deleted(Deleted::Include)).unwrap()
    }

    fn huawei(&self) -> Customer {
        self.crm
            .customers()
            .create(
                &self.alice,
                NewCustomer::new("  华为技术有限公司　")
                    .industry(Industry::InformationTechnology)
                    .size(SizeBand::Large)
                    .source("展会")
                    .region(Region {
                        province: "广东".into(), city: "深圳市".into(), district: "龙岗区".into()
                    })
                    .tag("VIP")
                    .tag("行业-通信")
                    .contact(NewContact::new("张伟").phone("+86 138-1234-5678").email("Zhang.Wei@Huawei.COM")),
            )
            .unwrap()
    }
}

macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $name() { super::$name(super::Fixture::new(std::sync::Arc::new(guanxi::MemoryStore::new()))); })*
        }
        mod sqlite {
            $(#[test] fn $name() {
                let dir = tempfile::tempdir().unwrap();
                let store = guanxi::SqliteStore::open(dir.path().join("crm.db")).unwrap();
                super::$name(super::Fixture::new(std::sync::Arc::new(store)));
            })*
        }
        mod postgres {
            $(#[test] fn $name() {
                // The PostgreSQL store, when a server is given (it is the last of `stores`).
                let Some((_, store, _guard)) = crate::common::stores().pop().filter(|(n, _, _)| *n == "postgres") else {
                    return;
                };
                super::$name(super::Fixture::new(store));
            })*
        }
    };
}

on_every_backend!(
    create_normalizes_defaults_logs_and_notifies,
    invalid_input_reports_every_field_and_changes_nothing,
    update_bumps_version_logs_old_and_new_and_refuses_stale_versions,
    codes_follow_the_china_day_and_restart_daily,
    one_primary_contact_at_all_times,
    tags_are_idempotent_and_listable,
    interactions_check_their_contact_and_dates,
    custom_fields_validate_and_filter,
    level_rule_derives_levels,
    soft_delete_hides_and_restore_returns,
    timeline_tells_the_story_in_order,
    permission_is_checked_before_validation,
    events_arrive_after_commit_and_survive_panics,
    batch_create_is_all_or_nothing,
    control_and_bidi_override_characters_are_refused,
);

/// Issue 15, item 11: NUL and U+202E (right-to-left override) were accepted in names.
fn control_and_bidi_override_characters_are_refused(f: Fixture) {
    let err = f
        .crm
        .customers()
        .create(
            &f.alice,
            NewCustomer::new("华为\u{202E}技术")
                .tag("V\0IP")
                .contact(NewContact::new("张\u{0}伟").title("经理\u{2066}")),
        )
        .unwrap_err();
    let Error::Validation(errs) = err else { panic!("{err:?}") };
    let mut fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    fields.sort();
    assert_eq!(fields, ["contacts[0].name", "contacts[0].title", "name", "tags[0]"]);
    assert!(errs.field("name").unwrap().reason.to_string().contains("U+202E"));
    assert!(UserId::new("ro\u{202E}ot").is_err() && UserId::new("a\0").is_err());
    assert_eq!(f.count(), 0);
    // Line breaks stay allowed in prose.
    let c = f.crm.customers().create(&f.alice, NewCustomer::new("甲公司")).unwrap();
    let note = NewInteraction::new(InteractionKind::Call, "第一行\n第二行\t完");
    assert!(f.crm.interactions().create(&f.alice, c.id, note).is_ok());
}

fn create_normalizes_defaults_logs_and_notifies(f: Fixture) {
    let c = f.huawei();
    assert_eq!(c.name, "华为技术有限公司");
    assert_eq!(c.code, "C20240501001");
    assert_eq!(c.version, 1);
    assert_eq!(c.owner.as_ref().map(UserId::as_str), Some("alice"), "owner defaults to the actor");
    assert_eq!(c.region.as_ref().unwrap().province, "广东省");
    assert_eq!(c.status, LifecycleStatus::Potential);
    assert_eq!(f.crm.customers().get(&f.alice, c.id).unwrap(), c);
    assert_eq!(f.crm.customers().get_by_code(&f.alice, " c20240501001 ").unwrap(), c);

    let contacts = f.crm.contacts().list(&f.alice, c.id).unwrap();
    assert_eq!(contacts.len(), 1);
    assert!(contacts[0].primary);
    assert_eq!(contacts[0].phones[0].as_str(), "+8613812345678");
    assert_eq!(contacts[0].emails[0].as_str(), "zhang.wei@huawei.com");

    let log = f
        .crm
        .audit()
        .entries(&f.alice, &ChangeLogQuery { entity_id: Some(c.id.to_string()), ..Default::default() })
        .unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].action, ChangeAction::Create);
    assert_eq!(log[0].actor.as_str(), "alice");
    assert_eq!(log[0].at, t0());
    let name = log[0].changes.iter().find(|c| c.field == "name").unwrap();
    assert_eq!((name.old.clone(), name.new.clone()), (None, Some("华为技术有限公司".into())));
    assert_eq!(f.event_names(), ["customer_created", "tag_added", "tag_added", "contact_added"]);
    assert_eq!(f.crm.tags().list(&f.alice).unwrap().len(), 2, "unknown tags are created");
}

fn invalid_input_reports_every_field_and_changes_nothing(f: Fixture) {
    f.crm
        .custom_fields()
        .create(&f.alice, CustomFieldDef::new(EntityKind::Customer, "budget", "预算", FieldType::Decimal).required())
        .unwrap();
    let (log_before, events_before) = (f.log_len(), f.event_names().len());
    let err = f
        .crm
        .customers()
        .create(
            &f.alice,
            NewCustomer::new("   ")
                .region(Region { province: "火星".into(), ..Default::default() })
                .tag("")
                .custom("unknown", CustomValue::Text("x".into()))
                .contact(NewContact::new("李娜").phone("12345").email("not-an-email"))
                .contact(NewContact::new("").phone("13912345678")),
        )
        .unwrap_err();
    let Error::Validation(errs) = err else { panic!("expected validation error, got {err:?}") };
    let mut fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "contacts[0].emails[0]",
            "contacts[0].phones[0]",
            "contacts[1].name",
            "custom.budget",
            "custom.unknown",
            "name",
            "region.province",
            "tags[0]"
        ]
    );
    assert_eq!(errs.field("contacts[0].phones[0]").unwrap().reason, ValidationReason::InvalidPhone);
    assert_eq!(errs.field("custom.budget").unwrap().reason, ValidationReason::Required);
    assert_eq!(f.count(), 0);
    assert_eq!(f.log_len(), log_before);
    assert_eq!(f.event_names().len(), events_before);
}

fn update_bumps_version_logs_old_and_new_and_refuses_stale_versions(f: Fixture) {
    let c = f.huawei();
    f.clock.advance(Duration::hours(1));
    let bob = UserId::new("bob").unwrap();
    let updated = f
        .crm
        .customers()
        .update(&f.alice, c.id, 1, CustomerPatch::default().status(LifecycleStatus::Customer).owner(bob.clone()))
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.status, LifecycleStatus::Customer);
    assert_eq!(updated.updated_at, t0() + Duration::hours(1));
    assert_eq!(updated.tags, c.tags, "updates keep tags");
    assert_eq!(f.crm.customers().get(&f.alice, c.id).unwrap(), updated);

    let log = f
        .crm
        .audit()
        .entries(&f.alice, &ChangeLogQuery { entity_id: Some(c.id.to_string()), ..Default::default() })
        .unwrap();
    let last = log.last().unwrap();
    assert_eq!(last.action, ChangeAction::Update);
    let fields: Vec<String> = last.changes.iter().map(|c| c.to_string()).collect();
    assert_eq!(fields, [r#"owner: "alice" → "bob""#, r#"status: "potential" → "customer""#]);
    assert_eq!(
        f.events.lock().unwrap().last().unwrap().payload,
        DomainEvent::CustomerUpdated { customer: c.id, fields: vec!["owner".into(), "status".into()] }
    );

    // A patch that changes nothing writes nothing.
    let same = f
        .crm
        .customers()
        .update(&f.alice, c.id, 2, CustomerPatch::default().status(LifecycleStatus::Customer))
        .unwrap();
    assert_eq!(same.version, 2);
    assert_eq!(f.crm.audit().entries(&f.alice, &ChangeLogQuery::default()).unwrap().len(), log.len() + 1);

    // A stale version is a conflict and changes nothing.
    let before = f.crm.customers().get(&f.alice, c.id).unwrap();
    let log_before = f.log_len();
    let err = f.crm.customers().update(&f.alice, c.id, 1, CustomerPatch::default().name("过期")).unwrap_err();
    assert!(matches!(err, Error::Conflict { expected: 1, actual: 2, .. }), "{err:?}");
    assert_eq!(f.crm.customers().get(&f.alice, c.id).unwrap(), before);
    assert_eq!(f.log_len(), log_before);

    // Invalid patch: typed error, nothing written.
    let err = f.crm.customers().update(&f.alice, c.id, 2, CustomerPatch::default().name(" ")).unwrap_err();
    assert!(matches!(&err, Error::Validation(v) if v.field("name").is_some()), "{err:?}");
    assert_eq!(f.crm.customers().get(&f.alice, c.id).unwrap(), before);
}

fn codes_follow_the_china_day_and_restart_daily(f: Fixture) {
    let mk = |name: &str| f.crm.customers().create(&f.alice, NewCustomer::new(name)).unwrap().code;
    assert_eq!(mk("甲"), "C20240501001");
    assert_eq!(mk("乙"), "C20240501002");
    // 16:30 UTC on 1 May is 00:30 on 2 May in Beijing: a new day, a new sequence.
    f.clock.set("2024-05-01T16:30:00Z".parse().unwrap());
    assert_eq!(mk("丙"), "C20240502001");
    let batch = f
        .crm
        .customers()
        .create_many(&f.alice, (0..3).map(|i| NewCustomer::new(format!("批量{i}"))).collect())
        .unwrap();
    let codes: Vec<&str> = batch.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(codes, ["C20240502002", "C20240502003", "C20240502004"]);
}

fn one_primary_contact_at_all_times(f: Fixture) {
    let c = f.crm.customers().create(&f.alice, NewCustomer::new("甲公司")).unwrap();
    let primaries = || -> Vec<String> {
        f.crm.contacts().list(&f.alice, c.id).unwrap().into_iter().filter(|c| c.primary).map(|c| c.name).collect()
    };
    let a = f.crm.contacts().create(&f.alice, c.id, NewContact::new("甲")).unwrap();
    assert!(a.primary, "the first contact is primary");
    let b = f.crm.contacts().create(&f.alice, c.id, NewContact::new("乙")).unwrap();
    assert!(!b.primary);
    assert_eq!(primaries(), ["甲"]);
    let c3 = f.crm.contacts().create(&f.alice, c.id, NewContact::new("丙").primary()).unwrap();
    assert!(c3.primary);
    assert_eq!(primaries(), ["丙"]);
    f.crm.contacts().set_primary(&f.alice, b.id).unwrap();
    assert_eq!(primaries(), ["乙"]);
    let b_now = f.crm.contacts().get(&f.alice, b.id).unwrap();
    f.crm.contacts().delete(&f.alice, b.id, b_now.version).unwrap();
    assert_eq!(primaries(), ["甲"], "the oldest remaining contact takes over");
    assert!(matches!(f.crm.contacts().get(&f.alice, b.id), Err(Error::NotFound { .. })));

    let a_now = f.crm.contacts().get(&f.alice, a.id).unwrap();
    let patched = f
        .crm
        .contacts()
        .update(
            &f.alice,
            a.id,
            a_now.version,
            ContactPatch { title: Some(Some("总经理".into())), do_not_contact: Some(true), ..Default::default() },
        )
        .unwrap();
    assert_eq!(patched.title.as_deref(), Some("总经理"));
    assert!(patched.do_not_contact && patched.primary);
    let err = f.crm.contacts().update(&f.alice, a.id, a_now.version, ContactPatch::default()).unwrap_err();
    assert!(matches!(err, Error::Conflict { entity: EntityKind::Contact, .. }), "{err:?}");
    let err = f
        .crm
        .contacts()
        .update(
            &f.alice,
            a.id,
            patched.version,
            ContactPatch { phones: Some(vec!["110".into()]), ..Default::default() },
        )
        .unwrap_err();
    assert!(matches!(&err, Error::Validation(v) if v.field("phones[0]").is_some()), "{err:?}");
}

fn tags_are_idempotent_and_listable(f: Fixture) {
    let c = f.huawei();
    let other = f.crm.customers().create(&f.alice, NewCustomer::new("腾讯")).unwrap();
    let group = f.crm.tags().create(&f.alice, "重点", Some("等级")).unwrap();
    assert_eq!(group.group.as_deref(), Some("等级"));
    f.crm.tags().add(&f.alice, other.id, "重点").unwrap();
    let again = f.crm.tags().add(&f.alice, other.id, " 重点 ").unwrap();
    assert_eq!(again.tags.len(), 1);
    let vip = f.crm.customers().list(&f.alice, &CustomerFilter::default().tag("VIP"), PageRequest::default()).unwrap();
    assert_eq!(vip.items.iter().map(|c| c.id).collect::<Vec<_>>(), [c.id]);
    f.crm.tags().remove(&f.alice, c.id, "VIP").unwrap();
    f.crm.tags().remove(&f.alice, c.id, "VIP").unwrap();
    assert!(
        f.crm
            .customers()
            .list(&f.alice, &CustomerFilter::default().tag("VIP"), PageRequest::default())
            .unwrap()
            .items
            .is_empty()
    );
    let actions: Vec<ChangeAction> = f
        .crm
        .audit()
        .entries(&f.alice, &ChangeLogQuery { entity_id: Some(c.id.to_string()), ..Default::default() })
        .unwrap()
        .iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, [ChangeAction::Create, ChangeAction::Untag], "no-op tag changes are not logged");
    let err = f.crm.tags().add(&f.alice, c.id, "  ").unwrap_err();
    assert!(matches!(&err, Error::Validation(v) if v.field("tag").is_some()), "{err:?}");
}

fn interactions_check_their_contact_and_dates(f: Fixture) {
    let c = f.huawei();
    let other = f.crm.customers().create(&f.alice, NewCustomer::new("别家").contact(NewContact::new("王五"))).unwrap();
    let stranger = f.crm.contacts().list(&f.alice, other.id).unwrap()[0].id;
    let own = f.crm.contacts().list(&f.alice, c.id).unwrap()[0].id;
    let i = f
        .crm
        .interactions()
        .create(
            &f.alice,
            c.id,
            NewInteraction::new(InteractionKind::Call, "  沟通需求，\r\n客户关注价格。  ")
                .with_contact(own)
                .next_step("发送报价")
                .next_contact_on(NaiveDate::from_ymd_opt(2024, 5, 4).unwrap())
                .attachment(Attachment {
                    name: "报价.pdf".into(),
                    size: 2048,
                    sha256: "AB".repeat(32),
                    uri: "s3://crm/q.pdf".into(),
                }),
        )
        .unwrap();
    assert_eq!(i.at, t0());
    assert_eq!(i.author.as_str(), "alice");
    assert_eq!(i.content, "沟通需求，\n客户关注价格。", "prose keeps its full-width punctuation");
    assert_eq!(i.attachments[0].sha256, "ab".repeat(32));
    assert_eq!(f.crm.interactions().list(&f.alice, c.id).unwrap(), vec![i]);

    let err = f
        .crm
        .interactions()
        .create(&f.alice, c.id, NewInteraction::new(InteractionKind::Call, "x").with_contact(stranger))
        .unwrap_err();
    assert!(matches!(&err, Error::Validation(v) if v.field("contact_id").is_some()), "{err:?}");
    let err = f
        .crm
        .interactions()
        .create(
            &f.alice,
            c.id,
            NewInteraction::new(InteractionKind::Visit, "")
                .next_contact_on(NaiveDate::from_ymd_opt(2024, 4, 1).unwrap())
                .attachment(Attachment { name: "".into(), size: 1, sha256: "xyz".into(), uri: "".into() }),
        )
        .unwrap_err();
    let Error::Validation(v) = err else { panic!() };
    let fields: Vec<&str> = v.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        ["content", "next_contact_on", "attachments[0].name", "attachments[0].sha256", "attachments[0].uri"]
    );
    assert_eq!(f.crm.interactions().list(&f.alice, c.id).unwrap().len(), 1);
}

fn custom_fields_validate_and_filter(f: Fixture) {
    let def = CustomFieldDef::new(EntityKind::Customer, "products", "意向产品", FieldType::MultiSelect)
        .allowed(["crm", "erp", "oa"]);
    f.crm.custom_fields().create(&f.alice, def).unwrap();
    f.crm
        .custom_fields()
        .create(&f.alice, CustomFieldDef::new(EntityKind::Customer, "budget", "预算", FieldType::Decimal))
        .unwrap();
    f.crm
        .custom_fields()
        .create(&f.alice, CustomFieldDef::new(EntityKind::Contact, "wechat", "微信", FieldType::Text))
        .unwrap();
    let err = f
        .crm
        .custom_fields()
        .create(&f.alice, CustomFieldDef::new(EntityKind::Customer, "budget", "x", FieldType::Text))
        .unwrap_err();
    assert!(matches!(err, Error::Duplicate { .. }), "{err:?}");
    let err = f
        .crm
        .custom_fields()
        .create(&f.alice, CustomFieldDef::new(EntityKind::Tag, "x", "x", FieldType::Text))
        .unwrap_err();
    assert!(matches!(&err, Error::Validation(v) if v.field("entity").is_some()), "{err:?}");

    let a = f
        .crm
        .customers()
        .create(
            &f.alice,
            NewCustomer::new("甲")
                .custom("products", CustomValue::Text("crm, erp".into()))
                .custom("budget", CustomValue::Text("1,200,000.00".into()))
                .contact(NewContact {
                    name: "联系人".into(),
                    custom: [("wechat".into(), CustomValue::Text("wx1".into()))].into(),
                    ..Default::default()
                }),
        )
        .unwrap();
    assert_eq!(a.custom["budget"], CustomValue::Decimal(Decimal::from(1_200_000)));
    f.crm
        .customers()
        .create(&f.alice, NewCustomer::new("乙").custom("products", CustomValue::Select("oa".into())))
        .unwrap();
    let err = f
        .crm
        .customers()
        .create(&f.alice, NewCustomer::new("丙").custom("products", CustomValue::Text("sap".into())))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(v) if v.field("custom.products").unwrap().reason == ValidationReason::not_allowed("sap", ["crm", "erp", "oa"]))
    );
    assert!(err.to_string().contains("'sap' is not one of the allowed values (crm, erp, oa)"), "{err}");

    let with = |v: CustomValue| CustomerFilter::default().custom(CustomFilter::new("products", v));
    let names = |filter: CustomerFilter| -> Vec<String> {
        f.crm.customers().list_all(&f.alice, &filter).unwrap().into_iter().map(|c| c.name).collect()
    };
    assert_eq!(names(with(CustomValue::Select("erp".into()))), ["甲"]);
    assert_eq!(names(with(CustomValue::Select("oa".into()))), ["乙"]);
    assert_eq!(
        names(
            CustomerFilter::default()
                .custom(CustomFilter::new("budget", CustomValue::Decimal(Decimal::new(120_000_000, 2))))
        ),
        ["甲"]
    );

    // Filter values are parsed into the field's type, like input is.
    assert_eq!(names(with(CustomValue::Text("crm".into()))), ["甲"]);
    assert_eq!(
        names(CustomerFilter::default().custom(CustomFilter::new("budget", CustomValue::Text("1,200,000".into())))),
        ["甲"]
    );
    let err = f
        .crm
        .customers()
        .count(&f.alice, &CustomerFilter::default().custom(CustomFilter::new("nope", CustomValue::Bool(true))))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Validation(v) if v.field("custom.nope").unwrap().reason == ValidationReason::UnknownField)
    );
    let err = f
        .crm
        .customers()
        .count(
            &f.alice,
            &CustomerFilter::default().custom(CustomFilter::new("budget", CustomValue::Text("lots".into()))),
        )
        .unwrap_err();
    assert!(matches!(&err, Error::Validation(v) if v.field("custom.budget").is_some()), "{err:?}");

    let b = f.crm.customers().update(&f.alice, a.id, 1, CustomerPatch::default().clear_custom("budget")).unwrap();
    assert!(!b.custom.contains_key("budget"));
    assert_eq!(f.crm.contacts().list(&f.alice, a.id).unwrap()[0].custom["wechat"], CustomValue::Text("wx1".into()));
}

fn level_rule_derives_levels(f: Fixture) {
    let f = Fixture::with(f.crm.store().clone(), |b| b.level_rule(LevelRule::spend_12m_default()));
    f.crm
        .custom_fields()
        .create(&f.alice, CustomFieldDef::new(EntityKind::Customer, "spend_12m", "近12月消费", FieldType::Decimal))
        .unwrap();
    let c = f
        .crm
        .customers()
        .create(&f.alice, NewCustomer::new("大客户").custom("spend_12m", CustomValue::Text("600000".into())))
        .unwrap();
    assert_eq!(c.level, Some(Level::A));
    let c = f
        .crm
        .customers()
        .update(&f.alice, c.id, 1, CustomerPatch::default().custom("spend_12m", CustomValue::Text("150000".into())))
        .unwrap();
    assert_eq!(c.level, Some(Level::B));
    let small = f.crm.customers().create(&f.alice, NewCustomer::new("小客户")).unwrap();
    assert_eq!(small.level, Some(Level::C));
    let err = f.crm.customers().create(&f.alice, NewCustomer::new("手工").level(Level::A)).unwrap_err();
    assert!(matches!(&err, Error::Validation(v) if v.field("level").is_some()), "{err:?}");
}

fn soft_delete_hides_and_restore_returns(f: Fixture) {
    let c = f.huawei();
    let deleted = f.crm.customers().delete(&f.alice, c.id, 1).unwrap();
    assert_eq!(deleted.deleted_at, Some(t0()));
    assert!(matches!(f.crm.customers().get(&f.alice, c.id), Err(Error::NotFound { .. })));
    assert!(matches!(f.crm.customers().get_by_code(&f.alice, &c.code), Err(Error::NotFound { .. })));
    assert_eq!(f.crm.customers().count(&f.alice, &CustomerFilter::default()).unwrap(), 0);
    assert_eq!(f.crm.customers().count(&f.alice, &CustomerFilter::default().deleted(Deleted::Only)).unwrap(), 1);
    assert!(matches!(
        f.crm.customers().update(&f.alice, c.id, 2, CustomerPatch::default().name("x")),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(f.crm.contacts().create(&f.alice, c.id, NewContact::new("x")), Err(Error::NotFound { .. })));
    let restored = f.crm.customers().restore(&f.alice, c.id, 2).unwrap();
    assert_eq!((restored.version, restored.deleted_at), (3, None));
    assert!(matches!(f.crm.customers().restore(&f.alice, c.id, 3), Err(Error::InvalidState(_))));
    assert_eq!(&f.event_names()[f.event_names().len() - 2..], ["customer_deleted", "customer_restored"]);
}

fn timeline_tells_the_story_in_order(f: Fixture) {
    let c = f.huawei();
    f.clock.advance(Duration::days(1));
    f.crm
        .interactions()
        .create(&f.alice, c.id, NewInteraction::new(InteractionKind::Visit, "拜访").at(t0() + Duration::hours(5)))
        .unwrap();
    f.clock.advance(Duration::days(1));
    f.crm.customers().update(&f.alice, c.id, 1, CustomerPatch::default().status(LifecycleStatus::Customer)).unwrap();
    let story: Vec<String> = f
        .crm
        .customers()
        .timeline(&f.alice, c.id)
        .unwrap()
        .into_iter()
        .map(|e| match e.item {
            TimelineItem::Change(c) => format!("{} {}", c.entity, c.action),
            TimelineItem::Interaction(i) => format!("interaction {}", i.kind),
            _ => "other".into(),
        })
        .collect();
    assert_eq!(story, ["customer create", "contact create", "interaction visit", "customer update"]);
    assert!(matches!(f.crm.customers().timeline(&f.alice, CustomerId(uuid::Uuid::nil())), Err(Error::NotFound { .. })));
}

fn permission_is_checked_before_validation(f: Fixture) {
    let root = Actor::user("root").unwrap().elevated_until(t0() + Duration::minutes(5));
    f.crm
        .access()
        .set_user(&root, access::User::new("root", "管理员").unwrap().role(BuiltinRole::Administrator))
        .unwrap();
    f.crm.access().set_user(&root, access::User::new("mkt", "市场").unwrap().role(BuiltinRole::Marketing)).unwrap();
    let before = f.event_names().len();
    // Invalid input, yet the answer is the permission error: the check comes first.
    let err = f.crm.customers().create(&Actor::user("mkt").unwrap(), NewCustomer::new("")).unwrap_err();
    assert!(
        matches!(&err, Error::PermissionDenied { action, entity: EntityKind::Customer, .. } if action == "create"),
        "{err:?}"
    );
    assert_eq!(f.crm.customers().count(&root, &CustomerFilter::default().deleted(Deleted::Include)).unwrap(), 0);
    assert_eq!(f.event_names().len(), before);
}

fn events_arrive_after_commit_and_survive_panics(f: Fixture) {
    let store = f.crm.store().clone();
    let seen_in_store = Arc::new(Mutex::new(Vec::new()));
    let sink = seen_in_store.clone();
    f.crm.subscribe(|_| panic!("a broken listener"));
    let id = f.crm.subscribe(move |e| {
        if let DomainEvent::CustomerCreated { customer, .. } = &e.payload {
            // Delivered after commit: the record is already readable.
            sink.lock().unwrap().push(store.customer(*customer).unwrap().is_some());
        }
    });
    f.huawei();
    assert_eq!(*seen_in_store.lock().unwrap(), [true]);
    assert!(f.event_names().contains(&"customer_created"), "other listeners still ran");
    assert!(f.crm.unsubscribe(id));
    f.crm.customers().create(&f.alice, NewCustomer::new("后来者")).unwrap();
    assert_eq!(seen_in_store.lock().unwrap().len(), 1);
}

#[test]
fn a_refused_backup_logs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new(Arc::new(SqliteStore::open(dir.path().join("crm.db")).unwrap()));
    f.huawei();
    let target = dir.path().join("taken.db");
    std::fs::write(&target, b"not yours").unwrap();
    let before = f.log_len();
    assert!(matches!(f.crm.files().backup(&f.alice, &target), Err(Error::InvalidState(_))));
    assert_eq!(f.log_len(), before);
    assert_eq!(std::fs::read(&target).unwrap(), b"not yours");
    let memory = Fixture::new(Arc::new(MemoryStore::new()));
    let err = memory.crm.files().backup(&memory.alice, &dir.path().join("m.db")).unwrap_err();
    assert!(matches!(err, Error::InvalidState(_)), "memory stores have no file: {err:?}");
    let trail = memory.crm.audit().entries(&memory.alice, &ChangeLogQuery::default()).unwrap();
    let fields: Vec<&str> = trail.iter().flat_map(|e| e.changes.iter().map(|c| c.field.as_str())).collect();
    assert_eq!(fields, ["backup", "failed"], "the attempt and its failure are both on record");
}

fn batch_create_is_all_or_nothing(f: Fixture) {
    let mut inputs: Vec<NewCustomer> = (0..10).map(|i| NewCustomer::new(format!("客户{i}")).tag("批量")).collect();
    inputs[7].contacts.push(NewContact::new("错").phone("999"));
    let err = f.crm.customers().create_many(&f.alice, inputs.clone()).unwrap_err();
    assert!(matches!(&err, Error::Validation(v) if v.field("customers[7].contacts[0].phones[0]").is_some()), "{err:?}");
    assert_eq!(f.count(), 0);
    assert!(f.crm.tags().list(&f.alice).unwrap().is_empty());
    inputs[7].contacts.clear();
    let created = f.crm.customers().create_many(&f.alice, inputs).unwrap();
    assert_eq!(created.len(), 10);
    assert_eq!(f.crm.customers().count(&f.alice, &CustomerFilter::default().tag("批量")).unwrap(), 10);
    assert_eq!(f.log_len(), 10);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Validation never panics on arbitrary text, and a rejected record leaves no trace.
        #[test]
        fn arbitrary_input_never_panics_and_rejections_leave_no_trace(
            name in "\\PC{0,30}", phone in "\\PC{0,20}", email in "\\PC{0,30}", province in "\\PC{0,8}", tag in "\\PC{0,12}",
        ) {
            let f = Fixture::new(Arc::new(MemoryStore::new()));
            let input = NewCustomer::new(name)
                .region(Region { province, city: "市".into(), district: String::new() })
                .tag(tag)
                .contact(NewContact::new("联系人").phone(phone).email(email));
            match f.crm.customers().create(&f.alice, input) {
                Ok(c) => prop_assert_eq!(f.crm.customers().get(&f.alice, c.id).unwrap(), c),
                Err(Error::Validation(v)) => {
                    prop_assert!(!v.is_empty());
                    prop_assert_eq!(f.count(), 0);
                    prop_assert_eq!(f.log_len(), 0);
                }
                Err(other) => prop_assert!(false, "unexpected error {other:?}"),
            }
        }

        /// Codes stay unique and consecutive over many creates on one day, in any batch sizes.
        #[test]
        fn codes_are_unique_over_many_creates_on_one_day(batches in proptest::collection::vec(1usize..40, 1..12)) {
            let f = Fixture::new(Arc::new(SqliteStore::open_in_memory().unwrap()));
            let mut codes = Vec::new();
            for size in batches {
                let created = f.crm.customers().create_many(&f.alice, (0..size).map(|i| NewCustomer::new(format!("c{i}"))).collect()).unwrap();
                codes.extend(created.into_iter().map(|c| c.code));
            }
            let expected: Vec<String> = (1..=codes.len() as u64).map(|n| Customer::code_for(NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(), n)).collect();
            prop_assert_eq!(codes, expected);
        }
    }
}
