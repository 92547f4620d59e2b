//! Access control through the facade, on every backend: scoped lists equal the predicate,
//! single reads agree with lists, masked values never leak, sensitive operations need
//! elevation, and reads of sensitive fields are audited.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use guanxi::access::{Department, Role, Scope, ScopeAttrs, Scoped, User, Visibility};
use guanxi::commerce::{NewPurchase, PurchaseFilter};
use guanxi::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

fn t0() -> DateTime<Utc> {
    "2024-05-01T02:00:00Z".parse().unwrap()
}

/// Trusts asserted elevations: these tests are about scopes and masks; proven elevation is
/// `elevation_must_be_proven_unless_the_host_is_trusted`.
fn crm_on(store: DynStore) -> Crm {
    Crm::builder().store(store).clock(Arc::new(FixedClock::at(t0()))).trust_asserted_elevation(true).build()
}

fn backends() -> Vec<(&'static str, Crm, common::Guard)> {
    common::stores().into_iter().map(|(name, store, guard)| (name, crm_on(store), guard)).collect()
}

fn root() -> Actor {
    Actor::user("root").unwrap().elevated_until(t0() + Duration::minutes(10))
}

fn dept(id: &str) -> DepartmentId {
    DepartmentId::new(id).unwrap()
}

/// 总部 ─ 华东 ─ 上海, 总部 ─ 华南; root (admin), li (manager of 华东), wang (rep in 上海),
/// zhao (rep in 华南), ma (marketing), sun (custom role: read customers of region 华南).
fn org(crm: &Crm) {
    let r = root();
    crm.access().set_department(&r, Department::new("hq", "总部", None).unwrap()).unwrap();
    crm.access().set_department(&r, Department::new("east", "华东", Some("hq")).unwrap()).unwrap();
    crm.access().set_department(&r, Department::new("sh", "上海", Some("east")).unwrap()).unwrap();
    crm.access().set_department(&r, Department::new("south", "华南", Some("hq")).unwrap()).unwrap();
    crm.access().set_user(&r, User::new("root", "管理员").unwrap().role(BuiltinRole::Administrator)).unwrap();
    crm.access()
        .set_user(&r, User::new("li", "李").unwrap().department(dept("east")).role(BuiltinRole::SalesManager))
        .unwrap();
    crm.access()
        .set_user(&r, User::new("wang", "王").unwrap().department(dept("sh")).role(BuiltinRole::SalesRep))
        .unwrap();
    crm.access()
        .set_user(&r, User::new("zhao", "赵").unwrap().department(dept("south")).role(BuiltinRole::SalesRep))
        .unwrap();
    crm.access().set_user(&r, User::new("ma", "马").unwrap().role(BuiltinRole::Marketing)).unwrap();
    let south_reader = Role::new("south_reader", "华南只读")
        .unwrap()
        .grant(EntityKind::Customer, &[Action::Read], Scope::Region)
        .grant(EntityKind::Contact, &[Action::Read], Scope::Region)
        .field(EntityKind::Contact, "emails", Visibility::Hidden);
    crm.access().set_role(&r, south_reader).unwrap();
    let sun = User::new("sun", "孙").unwrap().custom_role(&RoleId::new("south_reader").unwrap()).region("华南");
    crm.access().set_user(&r, sun).unwrap();
}

fn as_user(id: &str) -> Actor {
    Actor::user(id).unwrap()
}

#[test]
fn each_role_sees_its_scope_and_nothing_else() {
    for (name, crm, _dir) in backends() {
        org(&crm);
        let mk = |owner: &str, province: &str| {
            crm.customers()
                .create(
                    &root(),
                    NewCustomer::new(format!("{owner}的客户 {province}"))
                        .owner(UserId::new(owner).unwrap())
                        .region(Region { province: province.into(), city: String::new(), district: String::new() })
                        .contact(NewContact::new("张伟").phone("13812345678").email("zw@example.com")),
                )
                .unwrap()
        };
        let wangs = mk("wang", "上海");
        let lis = mk("li", "浙江");
        let zhaos = mk("zhao", "广东");
        let roots = mk("root", "北京");
        // Departments default to the owner's.
        assert_eq!(wangs.department, Some(dept("sh")), "{name}");

        let sees = |u: &str| -> BTreeSet<String> {
            crm.customers()
                .list_all(&as_user(u), &CustomerFilter::default())
                .unwrap()
                .into_iter()
                .map(|c| c.code)
                .collect()
        };
        let codes = |cs: &[&Customer]| -> BTreeSet<String> { cs.iter().map(|c| c.code.clone()).collect() };
        assert_eq!(sees("wang"), codes(&[&wangs]), "{name}: a rep sees their own");
        assert_eq!(sees("li"), codes(&[&wangs, &lis]), "{name}: a manager sees the department tree");
        assert_eq!(sees("sun"), codes(&[&zhaos]), "{name}: region 华南 covers 广东");
        assert_eq!(sees("ma").len(), 4, "{name}: marketing reads all");
        assert_eq!(crm.customers().count(&as_user("li"), &CustomerFilter::default()).unwrap(), 2);

        // Single reads agree with lists, and say which action was refused.
        let err = crm.customers().get(&as_user("wang"), lis.id).unwrap_err();
        assert!(matches!(&err, Error::PermissionDenied { action, .. } if action == "read"), "{name}: {err}");
        assert!(crm.customers().get(&as_user("li"), wangs.id).is_ok());
        assert!(matches!(crm.contacts().list(&as_user("wang"), roots.id), Err(Error::PermissionDenied { .. })));
        // Unknown users are refused outright once access control is on.
        assert!(matches!(
            crm.customers().list_all(&as_user("nobody"), &CustomerFilter::default()),
            Err(Error::PermissionDenied { .. })
        ));

        // A rep may not hand a record to someone else (that is assigning); a manager may, in scope.
        let patch = CustomerPatch::default().owner(UserId::new("zhao").unwrap());
        let err = crm.customers().update(&as_user("wang"), wangs.id, 1, patch.clone()).unwrap_err();
        assert!(matches!(&err, Error::PermissionDenied { action, .. } if action == "assign"), "{name}: {err}");
        let moved = crm.customers().update(&as_user("li"), wangs.id, 1, patch).unwrap();
        assert_eq!(moved.owner.unwrap().as_str(), "zhao");
        let ghost = CustomerPatch::default().owner(UserId::new("ghost").unwrap());
        let err = crm.customers().update(&root(), lis.id, 1, ghost).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("owner").is_some()), "{name}: {err}");

        // explain says why, in words.
        let d = crm
            .access()
            .explain(
                &as_user("wang"),
                &UserId::new("wang").unwrap(),
                Action::Read,
                EntityKind::Customer,
                Some(lis.id.0),
            )
            .unwrap();
        assert!(!d.allowed && d.reasons[0].contains("owned by li"), "{name}: {d:?}");
        let d = crm
            .access()
            .explain(&as_user("li"), &UserId::new("li").unwrap(), Action::Delete, EntityKind::Customer, Some(lis.id.0))
            .unwrap();
        assert!(d.allowed && d.reasons.last().unwrap().contains("elevated"), "{name}: {d:?}");
        // Asking about someone else needs access to roles.
        assert!(
            crm.access()
                .explain(&as_user("wang"), &UserId::new("li").unwrap(), Action::Read, EntityKind::Customer, None)
                .is_err()
        );
    }
}

#[test]
fn sensitive_operations_need_a_current_elevation() {
    for (name, crm, _dir) in backends() {
        org(&crm);
        let c = crm.customers().create(&as_user("li"), NewCustomer::new("甲")).unwrap();
        let li = as_user("li");
        let err = crm.customers().delete(&li, c.id, 1).unwrap_err();
        assert!(matches!(&err, Error::ElevationRequired { action, .. } if action == "delete"), "{name}: {err}");
        let expired = li.clone().elevated_until(t0() - Duration::seconds(1));
        assert!(matches!(crm.customers().delete(&expired, c.id, 1), Err(Error::ElevationRequired { .. })));
        assert!(matches!(
            crm.customers().export(&li, &CustomerFilter::default()),
            Err(Error::ElevationRequired { .. })
        ));
        let elevated = li.elevated_until(t0() + Duration::minutes(5));
        assert_eq!(crm.customers().export(&elevated, &CustomerFilter::default()).unwrap().len(), 1);
        crm.customers().delete(&elevated, c.id, 1).unwrap();
        // Access changes always need it, and only administrators may make them.
        let err = crm.access().set_department(&as_user("root"), Department::new("x", "X", None).unwrap()).unwrap_err();
        assert!(matches!(err, Error::ElevationRequired { .. }), "{name}");
        let err = crm.access().set_department(&elevated, Department::new("x", "X", None).unwrap()).unwrap_err();
        assert!(matches!(&err, Error::PermissionDenied { action, .. } if action == "configure"), "{name}: {err}");
        // Nobody can lock everyone out.
        let demoted = User::new("root", "管理员").unwrap().role(BuiltinRole::SalesRep);
        assert!(matches!(crm.access().set_user(&root(), demoted), Err(Error::InvalidState(_))), "{name}");
        // Every access change is in the audit log.
        let users = crm
            .audit()
            .entries(&root(), &ChangeLogQuery::default())
            .unwrap()
            .into_iter()
            .filter(|e| e.entity == EntityKind::User)
            .count();
        assert_eq!(users, 6, "{name}");
    }
}

/// Every read path a marketing user (phones masked) or sun (e-mails hidden) has.
fn every_read_of(crm: &Crm, who: &Actor, customer: CustomerId, phone: &str) -> String {
    let mut seen = String::new();
    let mut add = |r: Result<String>| seen.push_str(&r.unwrap_or_else(|e| e.to_string()));
    add(crm.customers().get(who, customer).map(|c| format!("{c:?}")));
    add(crm.customers().list_all(who, &CustomerFilter::default()).map(|c| format!("{c:?}")));
    let mut scanned = String::new();
    let scan = crm.customers().scan(who, &CustomerFilter::default(), |c| {
        scanned.push_str(&format!("{c:?}"));
        Ok(())
    });
    add(scan.map(|_| scanned));
    add(crm.contacts().list(who, customer).map(|c| format!("{c:?}")));
    add(crm.contacts().list(who, customer).and_then(|cs| crm.contacts().get(who, cs[0].id)).map(|c| format!("{c:?}")));
    add(crm.contacts().find_by_phone(who, phone).map(|c| format!("{c:?}")));
    add(crm.contacts().find_by_id_number(who, "11010519491231002X").map(|c| format!("{c:?}")));
    add(crm.customers().timeline(who, customer).map(|t| format!("{t:?}")));
    add(crm.audit().entries(who, &ChangeLogQuery::default()).map(|l| format!("{l:?}")));
    seen
}

/// A role masking a customer's address and hiding a custom field: every read of customers —
/// single, paged, whole list, scan, export and export scan — shows the same masked record.
#[test]
fn masked_customer_fields_are_masked_on_every_customer_read() {
    for (name, crm, _dir) in backends() {
        org(&crm);
        let r = root();
        crm.custom_fields()
            .create(&r, CustomFieldDef::new(EntityKind::Customer, "budget", "预算", FieldType::Decimal))
            .unwrap();
        let auditor = Role::new("auditor", "审计")
            .unwrap()
            .grant(EntityKind::Customer, &[Action::Read, Action::Export], Scope::All)
            .field(EntityKind::Customer, "address", Visibility::Masked)
            .field(EntityKind::Customer, "custom.budget", Visibility::Hidden);
        crm.access().set_role(&r, auditor).unwrap();
        crm.access()
            .set_user(&r, User::new("qian", "钱").unwrap().custom_role(&RoleId::new("auditor").unwrap()))
            .unwrap();
        let c = crm
            .customers()
            .create(
                &r,
                NewCustomer::new("华南客户")
                    .address("深圳市南山区科技园路1号")
                    .custom("budget", CustomValue::Decimal("1250000.50".parse().unwrap())),
            )
            .unwrap();
        let qian = as_user("qian").elevated_until(t0() + Duration::minutes(5));
        let shown = crm.customers().get(&qian, c.id).unwrap();
        assert_ne!(shown.address, c.address, "{name}: the address is masked");
        assert!(shown.address.is_some() && !shown.custom.contains_key("budget"), "{name}: {shown:?}");
        let all = CustomerFilter::default();
        let page = crm.customers().list(&qian, &all, PageRequest::first(10)).unwrap().items;
        let mut scanned = Vec::new();
        crm.customers()
            .scan(&qian, &all, |v| {
                scanned.push(v.to_customer()?);
                Ok(())
            })
            .unwrap();
        let mut export_scanned = Vec::new();
        crm.customers()
            .export_scan(&qian, &all, |v| {
                export_scanned.push(v.to_customer()?);
                Ok(())
            })
            .unwrap();
        for (path, rows) in [
            ("list", page),
            ("list_all", crm.customers().list_all(&qian, &all).unwrap()),
            ("scan", scanned),
            ("export", crm.customers().export(&qian, &all).unwrap()),
            ("export_scan", export_scanned),
        ] {
            assert_eq!(rows, vec![shown.clone()], "{name}: {path}");
        }
        // The administrator sees the record as stored.
        assert_eq!(crm.customers().list_all(&r, &all).unwrap(), vec![c], "{name}");
    }
}

#[test]
fn masked_fields_never_appear_unmasked_on_any_read_path() {
    for (name, crm, _dir) in backends() {
        org(&crm);
        let c = crm
            .customers()
            .create(
                &root(),
                NewCustomer::new("华南客户")
                    .region(Region { province: "广东".into(), city: "深圳市".into(), district: String::new() })
                    .contact(
                        NewContact::new("张伟")
                            .phone("13812345678")
                            .email("zhang.wei@example.com")
                            .id_number("11010519491231002X"),
                    ),
            )
            .unwrap();
        let contact = crm.contacts().list(&root(), c.id).unwrap().remove(0);
        crm.contacts()
            .update(
                &root(),
                contact.id,
                1,
                ContactPatch { phones: Some(vec!["13987654321".into()]), ..Default::default() },
            )
            .unwrap();

        let ma = every_read_of(&crm, &as_user("ma"), c.id, "13987654321");
        assert!(ma.contains("139****4321"), "{name}: marketing sees the mask");
        assert!(!ma.contains("13987654321") && !ma.contains("13812345678"), "{name}: {ma}");
        assert!(!ma.contains("11010519491231002X") && !ma.contains("110***"), "{name}: identity numbers hidden: {ma}");
        let sun = every_read_of(&crm, &as_user("sun"), c.id, "13987654321");
        assert!(sun.contains("13987654321"), "{name}: sun sees phones");
        assert!(!sun.contains("zhang.wei"), "{name}: but no e-mail anywhere: {sun}");
        // The log itself never holds a phone in clear, whoever reads it.
        let log = format!("{:?}", crm.audit().entries(&root(), &ChangeLogQuery::default()).unwrap());
        assert!(!log.contains("13812345678") && log.contains("138****5678"), "{name}");
        assert!(!log.contains("11010519491231002X") && log.contains("110***********002X"), "{name}");
        // Customer service sees identity numbers masked.
        crm.access().set_user(&root(), User::new("cs", "客服").unwrap().role(BuiltinRole::CustomerService)).unwrap();
        let cs = every_read_of(&crm, &as_user("cs"), c.id, "13987654321");
        assert!(cs.contains("110***********002X") && !cs.contains("11010519491231002X"), "{name}: {cs}");
    }
}

#[test]
fn reads_of_sensitive_fields_in_clear_are_audited() {
    for (name, crm, _dir) in backends() {
        org(&crm);
        let c = crm
            .customers()
            .create(&as_user("wang"), NewCustomer::new("甲").contact(NewContact::new("张伟").phone("13812345678")))
            .unwrap();
        let reads = || -> Vec<String> {
            crm.audit()
                .entries(&root(), &ChangeLogQuery { customer_id: Some(c.id), ..Default::default() })
                .unwrap()
                .into_iter()
                .filter(|e| e.action == ChangeAction::Read)
                .map(|e| e.actor.to_string())
                .collect()
        };
        assert!(reads().is_empty());
        crm.contacts().list(&as_user("wang"), c.id).unwrap();
        crm.contacts().list(&as_user("ma"), c.id).unwrap(); // masked: not a read in clear
        crm.contacts().find_by_phone(&as_user("li"), "13812345678").unwrap();
        assert_eq!(reads(), ["wang", "li"], "{name}");
        assert!(crm.audit().verify(&root()).unwrap().is_intact());
    }
}

#[test]
fn encrypted_database_through_the_facade() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let key = FieldKey::generate();
    let crm = Crm::open_with(&path, SqliteOptions::default().field_key(key.clone())).unwrap();
    // This handle runs on the system clock and accepts only elevations it proved itself.
    let root = Actor::user("root").unwrap();
    crm.access().set_password(&root, root.user_id(), "correct horse battery").unwrap();
    let admin = crm.access().elevate(&root, ElevationProof::Password("correct horse battery".into())).unwrap();
    crm.customers()
        .create(&admin, NewCustomer::new("甲").contact(NewContact::new("张伟").phone("13812345678")))
        .unwrap();
    assert_eq!(crm.contacts().find_by_phone(&admin, "138 1234 5678").unwrap().len(), 1);
    let new_key = FieldKey::generate();
    assert_eq!(crm.access().rotate_field_key(&admin, new_key.as_bytes()).unwrap(), 1);
    let err = crm.access().rotate_field_key(&admin, &[0u8; 7]).unwrap_err();
    assert!(matches!(err, Error::Encryption(EncryptionError::BadKeyLength(7))), "{err}");
    let last = crm.audit().entries(&admin, &ChangeLogQuery::default()).unwrap().pop().unwrap();
    assert_eq!(last.changes[0].new, Some(new_key.fingerprint().into()));
    drop(crm);
    assert!(matches!(
        Crm::open_with(&path, SqliteOptions::default().field_key(key)),
        Err(Error::Encryption(EncryptionError::WrongKey))
    ));
    let crm = Crm::open_with(&path, SqliteOptions::default().field_key(new_key)).unwrap();
    assert_eq!(crm.contacts().find_by_phone(&admin, "13812345678").unwrap()[0].name, "张伟");
    assert!(crm.audit().verify(&admin).unwrap().is_intact());
}

/// A random organisation: departments with random parents, users with random departments,
/// roles and regions, and customers with random owners, departments and provinces.
#[derive(Debug, Clone)]
struct World {
    parents: Vec<Option<usize>>,
    users: Vec<(Option<usize>, usize, Vec<&'static str>)>,
    customers: Vec<(usize, Option<usize>, Option<&'static str>)>,
}

const ROLES: [&str; 4] = ["sales_rep", "sales_manager", "customer_service", "region_reader"];
const PROVINCES: [&str; 4] = ["上海", "浙江", "广东", "北京"];

fn world() -> impl Strategy<Value = World> {
    (2usize..6)
        .prop_flat_map(|n_depts| {
            let parents = (0..n_depts)
                .map(|i| if i == 0 { Just(None).boxed() } else { proptest::option::of(0..i).boxed() })
                .collect::<Vec<_>>();
            let users = proptest::collection::vec(
                (
                    proptest::option::of(0..n_depts),
                    0..ROLES.len(),
                    proptest::sample::subsequence(vec!["华东", "广东", "北京"], 0..=2),
                ),
                1..6,
            );
            (parents, users, Just(n_depts))
        })
        .prop_flat_map(|(parents, users, n_depts)| {
            let n_users = users.len() + 1; // + root
            let customers = proptest::collection::vec(
                (
                    0..n_users,
                    proptest::option::of(0..n_depts),
                    proptest::option::of(proptest::sample::select(PROVINCES.to_vec())),
                ),
                0..20,
            );
            (Just(parents), Just(users), customers)
        })
        .prop_map(|(parents, users, customers)| World { parents, users, customers })
}

fn user_name(i: usize) -> String {
    if i == 0 { "root".into() } else { format!("u{i}") }
}

fn build(crm: &Crm, w: &World) -> Vec<Customer> {
    let r = root();
    for (i, p) in w.parents.iter().enumerate() {
        let parent = p.map(|p| format!("d{p}"));
        crm.access()
            .set_department(&r, Department::new(&format!("d{i}"), &format!("部门{i}"), parent.as_deref()).unwrap())
            .unwrap();
    }
    let reader =
        Role::new("region_reader", "区域只读").unwrap().grant(EntityKind::Customer, &[Action::Read], Scope::Region);
    crm.access().set_role(&r, reader).unwrap();
    crm.access().set_user(&r, User::new("root", "管理员").unwrap().role(BuiltinRole::Administrator)).unwrap();
    for (i, (d, role, regions)) in w.users.iter().enumerate() {
        let mut u = User::new(&user_name(i + 1), "用户").unwrap().custom_role(&RoleId::new(ROLES[*role]).unwrap());
        u.department = d.map(|d| dept(&format!("d{d}")));
        u.regions = regions.iter().map(|s| s.to_string()).collect();
        crm.access().set_user(&r, u).unwrap();
    }
    w.customers
        .iter()
        .enumerate()
        .map(|(i, (owner, d, province))| {
            let mut input = NewCustomer::new(format!("客户{i}")).owner(UserId::new(user_name(*owner)).unwrap());
            if let Some(d) = d {
                input = input.department(dept(&format!("d{d}")));
            }
            if let Some(p) = province {
                input = input.region(Region { province: (*p).into(), city: String::new(), district: String::new() });
            }
            crm.customers().create(&r, input).unwrap()
        })
        .collect()
}

/// For random organisations, the customers a user lists and counts are exactly those the
/// model's record-by-record explanation allows, and single reads, segment members, segment
/// counts and segment explanations agree with them.
#[test]
fn lists_equal_exactly_what_the_predicate_allows() {
    let mut runner = TestRunner::new(Config { cases: 32, source_file: Some(file!()), ..Config::default() });
    runner
        .run(&world(), |w| {
            for (name, crm, _dir) in backends() {
                let customers = build(&crm, &w);
                let model = crm.access().model(&root()).unwrap();
                let everyone = guanxi::marketing::Segment::parse("NOT tag:无 AND NOT status = lost").unwrap();
                let saved = guanxi::marketing::SavedSegment::new("everyone", everyone.clone());
                crm.marketing().segments().save(&root(), saved).unwrap();
                for i in 0..=w.users.len() {
                    let uid = UserId::new(user_name(i)).unwrap();
                    let actor = Actor::new(uid.clone());
                    let allowed: Vec<CustomerId> = customers
                        .iter()
                        .filter(|c| {
                            let attrs = ScopeAttrs {
                                owner: c.owner.as_ref(),
                                creator: None,
                                department: c.department.as_ref(),
                                province: c.region.as_ref().map(|r| r.province.as_str()),
                            };
                            model.explain(&uid, Action::Read, EntityKind::Customer, Some(attrs)).allowed
                        })
                        .map(|c| c.id)
                        .collect();
                    let listed: Vec<CustomerId> = match crm.customers().list_all(&actor, &CustomerFilter::default()) {
                        Ok(cs) => cs.into_iter().map(|c| c.id).collect(),
                        Err(Error::PermissionDenied { .. }) => Vec::new(),
                        Err(e) => panic!("{e}"),
                    };
                    prop_assert_eq!(&listed, &allowed, "{} user {}", name, uid);
                    let counted = crm.customers().count(&actor, &CustomerFilter::default()).unwrap_or(0);
                    prop_assert_eq!(counted, allowed.len() as u64);
                    // A segment every customer is in: its members, count and explanations are
                    // the scope's, on every backend (the segment is part of the store's query).
                    let segments = crm.marketing().segments();
                    let members: Vec<CustomerId> = match segments.members(&actor, &everyone) {
                        Ok(cs) => cs.into_iter().map(|c| c.id).collect(),
                        Err(Error::PermissionDenied { .. }) => Vec::new(),
                        Err(e) => panic!("{e}"),
                    };
                    prop_assert_eq!(&members, &allowed, "{} user {}: segment members", name, uid);
                    prop_assert_eq!(segments.count(&actor, &everyone).unwrap_or(0), allowed.len() as u64);
                    // The saved segment's stored members, paged, are the scope's too (a role
                    // that may not read segments is refused outright).
                    let mut stored = Vec::new();
                    let mut page = PageRequest::first(3);
                    loop {
                        match segments.current(&actor, "everyone", page) {
                            Ok(p) => {
                                stored.extend(p.items.into_iter().map(|m| m.customer_id));
                                match p.next {
                                    Some(next) => page = PageRequest::after(next, 3),
                                    None => break,
                                }
                            }
                            Err(Error::PermissionDenied { .. }) => {
                                stored = allowed.clone();
                                break;
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                    stored.sort();
                    let mut expected = allowed.clone();
                    expected.sort();
                    prop_assert_eq!(&stored, &expected, "{} user {}: saved segment members", name, uid);
                    for c in &customers {
                        prop_assert_eq!(
                            crm.customers().get(&actor, c.id).is_ok(),
                            allowed.contains(&c.id),
                            "{} {}",
                            name,
                            c.code
                        );
                        prop_assert_eq!(
                            segments.explain(&actor, c.id, &everyone).is_ok(),
                            allowed.contains(&c.id),
                            "{} {}: explain",
                            name,
                            c.code
                        );
                    }
                }
            }
            Ok(())
        })
        .unwrap();
}

/// One record of each scoped kind per customer, owned like the customer (a ticket is
/// assigned to the owner every other time, and opened by the owner when that user may open
/// tickets, so a ticket's creator is reached by scopes as its assignee is).
#[allow(clippy::type_complexity)] // one record list per scoped entity
fn build_records(
    crm: &Crm,
    customers: &[Customer],
) -> (Vec<sales::Opportunity>, Vec<sales::Lead>, Vec<sales::Task>, Vec<service::Ticket>, Vec<(PurchaseId, Customer)>) {
    let r = root();
    let (mut opps, mut leads, mut tasks, mut tickets) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let orders: Vec<NewPurchase> =
        customers.iter().map(|c| NewPurchase::new(c.id, t0()).amount(rust_decimal::Decimal::from(100))).collect();
    let recorded = crm.commerce().purchases().record(&r, orders).unwrap();
    let purchases = recorded.ids.iter().zip(customers).map(|(id, c)| (PurchaseId(*id), c.clone())).collect();
    for (i, c) in customers.iter().enumerate() {
        let owner = c.owner.clone();
        let mut o = sales::NewOpportunity::new(&format!("商机{i}")).customer(c.id);
        o.owner = owner.clone();
        opps.push(crm.sales().opportunities().create(&r, o).unwrap());
        let mut l = sales::NewLead::new(&format!("线索{i}"));
        l.owner = owner.clone();
        l.province = c.region.as_ref().map(|r| r.province.clone());
        leads.push(crm.sales().leads().create(&r, l).unwrap());
        let mut t = sales::NewTask::new(&format!("任务{i}"), t0() + Duration::days(1));
        t.owner = owner.clone();
        t.customer_id = Some(c.id);
        tasks.push(crm.sales().tasks().create(&r, t).unwrap());
        let mut input =
            service::NewTicket::new(&format!("工单{i}"), service::TicketKind::Inquiry, service::Priority::Medium);
        input.customer_id = Some(c.id);
        if i % 2 == 0 {
            input.assignee = owner.clone();
        }
        let by_owner = owner.as_ref().map(|o| Actor::new(o.clone()));
        let ticket = match by_owner.map(|a| crm.service().tickets().create(&a, input.clone())) {
            Some(Ok(t)) => t,
            _ => crm.service().tickets().create(&r, input).unwrap(),
        };
        tickets.push(ticket);
    }
    (opps, leads, tasks, tickets, purchases)
}

/// Issue 15, item 3: for every scoped entity, the records a user lists and counts, the single
/// reads that succeed, and `explain` on each record agree with the model's record-by-record
/// explanation, for random organisations (a rep can read the tickets they open).
#[test]
fn every_scoped_entity_agrees_on_lists_counts_reads_and_explain() {
    let mut runner = TestRunner::new(Config { cases: 12, source_file: Some(file!()), ..Config::default() });
    runner
        .run(&world(), |w| {
            for (name, crm, _dir) in backends() {
                let customers = build(&crm, &w);
                let (opps, leads, tasks, tickets, purchases) = build_records(&crm, &customers);
                let model = crm.access().model(&root()).unwrap();
                for i in 0..=w.users.len() {
                    let uid = UserId::new(user_name(i)).unwrap();
                    let actor = Actor::new(uid.clone());
                    let judge = |entity: EntityKind, attrs: ScopeAttrs<'_>, id: uuid::Uuid| -> bool {
                        let by_model = model.explain(&uid, Action::Read, entity, Some(attrs)).allowed;
                        let by_crm =
                            crm.access().explain(&actor, &uid, Action::Read, entity, Some(id)).unwrap().allowed;
                        assert_eq!(by_model, by_crm, "{name} {uid} {entity} {id}: explain");
                        by_model
                    };
                    let ids = |r: Result<Vec<uuid::Uuid>>| r.map(sorted);
                    let verdicts =
                        opps.iter().map(|o| (o.id.0, judge(EntityKind::Opportunity, o.scope_attrs(), o.id.0)));
                    agree(
                        &format!("{name} {uid} opportunities"),
                        verdicts.collect(),
                        ids(crm
                            .sales()
                            .opportunities()
                            .list_all(&actor, &Default::default())
                            .map(|v| v.iter().map(|o| o.id.0).collect())),
                        Some(crm.sales().opportunities().count(&actor, &Default::default())),
                        Some(&|id| crm.sales().opportunities().get(&actor, OpportunityId(id)).is_ok()),
                    )?;
                    let verdicts = leads.iter().map(|l| (l.id.0, judge(EntityKind::Lead, l.scope_attrs(), l.id.0)));
                    agree(
                        &format!("{name} {uid} leads"),
                        verdicts.collect(),
                        ids(crm
                            .sales()
                            .leads()
                            .list_all(&actor, &Default::default())
                            .map(|v| v.iter().map(|l| l.id.0).collect())),
                        Some(crm.sales().leads().count(&actor, &Default::default())),
                        Some(&|id| crm.sales().leads().get(&actor, LeadId(id)).is_ok()),
                    )?;
                    let verdicts = tasks.iter().map(|t| (t.id.0, judge(EntityKind::Task, t.scope_attrs(), t.id.0)));
                    agree(
                        &format!("{name} {uid} tasks"),
                        verdicts.collect(),
                        ids(crm
                            .sales()
                            .tasks()
                            .list_all(&actor, &Default::default())
                            .map(|v| v.iter().map(|t| t.id.0).collect())),
                        Some(crm.sales().tasks().count(&actor, &Default::default())),
                        Some(&|id| crm.sales().tasks().get(&actor, TaskId(id)).is_ok()),
                    )?;
                    // The paged list and the whole list agree (both refused, or the same tasks).
                    let paged = (|| {
                        let (mut out, mut page) = (Vec::new(), PageRequest::first(2));
                        loop {
                            let p = crm.sales().tasks().list(&actor, &Default::default(), page)?;
                            out.extend(p.items.iter().map(|t| t.id.0));
                            match p.next {
                                Some(n) => page = PageRequest::after(n, 2),
                                None => return Ok::<_, Error>(sorted(out)),
                            }
                        }
                    })();
                    let all = crm.sales().tasks().list_all(&actor, &Default::default());
                    let all = all.map(|v| sorted(v.iter().map(|t| t.id.0).collect()));
                    prop_assert_eq!(paged.ok(), all.ok(), "{} {} paged tasks", name, uid);
                    let verdicts = tickets.iter().map(|t| (t.id.0, judge(EntityKind::Ticket, t.scope_attrs(), t.id.0)));
                    agree(
                        &format!("{name} {uid} tickets"),
                        verdicts.collect(),
                        ids(crm
                            .service()
                            .tickets()
                            .list_all(&actor, &Default::default())
                            .map(|v| v.iter().map(|t| t.id.0).collect())),
                        Some(crm.service().tickets().count(&actor, &Default::default())),
                        Some(&|id| crm.service().tickets().get(&actor, TicketId(id)).is_ok()),
                    )?;
                    // Purchases are judged by their customer.
                    let verdicts =
                        purchases.iter().map(|(p, c)| (p.0, judge(EntityKind::Purchase, c.scope_attrs(), p.0)));
                    let all_purchases = PurchaseFilter::default();
                    agree(
                        &format!("{name} {uid} purchases"),
                        verdicts.collect(),
                        ids(crm
                            .commerce()
                            .purchases()
                            .list_all(&actor, &all_purchases)
                            .map(|v| v.iter().map(|p| p.id.0).collect())),
                        Some(crm.commerce().purchases().count(&actor, &all_purchases)),
                        Some(&|id| crm.commerce().purchases().get(&actor, PurchaseId(id)).is_ok()),
                    )?;
                    for t in tickets.iter().filter(|t| t.created_by == uid) {
                        // Whoever opened a ticket can read it, whoever it is assigned to.
                        prop_assert!(
                            crm.service().tickets().get(&actor, t.id).is_ok(),
                            "{} {} opened {}",
                            name,
                            uid,
                            t.code
                        );
                    }
                    let verdicts: Vec<_> = customers
                        .iter()
                        .map(|c| (c.id.0, judge(EntityKind::Customer, c.scope_attrs(), c.id.0)))
                        .collect();
                    agree(
                        &format!("{name} {uid} customers"),
                        verdicts.clone(),
                        ids(crm
                            .customers()
                            .list_all(&actor, &Default::default())
                            .map(|v| v.iter().map(|c| c.id.0).collect())),
                        Some(crm.customers().count(&actor, &Default::default())),
                        Some(&|id| crm.customers().get(&actor, CustomerId(id)).is_ok()),
                    )?;
                    // A scan visits what the list holds.
                    let mut scanned = Vec::new();
                    let scan = crm.customers().scan(&actor, &Default::default(), |c| {
                        scanned.push(c.id.0);
                        Ok(())
                    });
                    agree(
                        &format!("{name} {uid} customer scan"),
                        verdicts.clone(),
                        ids(scan.map(|_| scanned)),
                        None,
                        None,
                    )?;
                    // A customer's timeline is read exactly when the customer is.
                    agree(
                        &format!("{name} {uid} timelines"),
                        verdicts,
                        Ok(sorted(
                            customers
                                .iter()
                                .filter(|c| crm.customers().timeline(&actor, c.id).is_ok())
                                .map(|c| c.id.0)
                                .collect(),
                        )),
                        None,
                        None,
                    )?;
                    // An export (a sensitive action: elevated) holds exactly what the model lets
                    // this user export.
                    let exporter = Actor::new(uid.clone()).elevated_until(t0() + Duration::minutes(10));
                    let verdicts = customers
                        .iter()
                        .map(|c| {
                            (
                                c.id.0,
                                model
                                    .explain(&uid, Action::Export, EntityKind::Customer, Some(c.scope_attrs()))
                                    .allowed,
                            )
                        })
                        .collect();
                    // A merge plan of two customers is drawn exactly when the model lets this
                    // user merge both.
                    for pair in customers.windows(2) {
                        let may = |c: &Customer| {
                            model.explain(&uid, Action::Merge, EntityKind::Customer, Some(c.scope_attrs())).allowed
                        };
                        let request = guanxi::dedup::MergeRequest::new(pair[0].id, vec![pair[1].id]);
                        let planned = crm.duplicates().plan_merge(&exporter, &request);
                        prop_assert_eq!(
                            planned.is_ok(),
                            may(&pair[0]) && may(&pair[1]),
                            "{} {} merge plan {:?}",
                            name,
                            uid,
                            planned.err()
                        );
                    }
                    agree(
                        &format!("{name} {uid} exports"),
                        verdicts,
                        ids(crm
                            .customers()
                            .export(&exporter, &Default::default())
                            .map(|v| v.iter().map(|c| c.id.0).collect())),
                        None,
                        None,
                    )?;
                }
            }
            Ok(())
        })
        .unwrap();
}

fn sorted(mut v: Vec<uuid::Uuid>) -> Vec<uuid::Uuid> {
    v.sort();
    v
}

/// One scoped entity as one user sees it: the ids listed (no permission: none), the count and
/// each single read equal the records the model allows (`verdicts`: id → allowed).
fn agree(
    what: &str,
    verdicts: Vec<(uuid::Uuid, bool)>,
    listed: Result<Vec<uuid::Uuid>>,
    counted: Option<Result<u64>>,
    read: Option<&dyn Fn(uuid::Uuid) -> bool>,
) -> std::result::Result<(), TestCaseError> {
    let denied = |e: &Error| matches!(e, Error::PermissionDenied { .. });
    let listed = match listed {
        Ok(ids) => ids,
        Err(e) if denied(&e) => Vec::new(),
        Err(e) => panic!("{what}: {e}"),
    };
    let allowed = sorted(verdicts.iter().filter(|(_, ok)| *ok).map(|(id, _)| *id).collect());
    prop_assert_eq!(&listed, &allowed, "{}: list", what);
    if let Some(counted) = counted {
        let n = match counted {
            Ok(n) => n,
            Err(e) if denied(&e) => 0,
            Err(e) => panic!("{what}: {e}"),
        };
        prop_assert_eq!(n, allowed.len() as u64, "{}: count", what);
    }
    if let Some(read) = read {
        for (id, ok) in &verdicts {
            prop_assert_eq!(read(*id), *ok, "{}: read {}", what, id);
        }
    }
    Ok(())
}

/// Issue 15, item 6: an elevation counts only when this handle proved it (password, TOTP or
/// the host's verifier), for at most its window; asserted, forged, stretched, foreign or
/// expired elevations are refused; every attempt is logged without the secret.
#[test]
fn elevation_must_be_proven_unless_the_host_is_trusted() {
    #[derive(Debug)]
    struct Idp;
    impl ElevationVerifier for Idp {
        fn verify(&self, user: &UserId, proof: &str) -> Result<bool> {
            Ok(proof == format!("idp-ok:{user}"))
        }
    }
    for (name, store) in [
        ("memory", Arc::new(MemoryStore::new()) as DynStore),
        ("sqlite", Arc::new(SqliteStore::open_in_memory().unwrap()) as DynStore),
    ] {
        let clock = Arc::new(FixedClock::at(t0()));
        let crm = Crm::builder().store(store.clone()).clock(clock.clone()).elevation_verifier(Arc::new(Idp)).build();
        let root = as_user("root");
        let first = User::new("root", "管理员").unwrap().role(BuiltinRole::Administrator);
        // Even the first access change needs a proven elevation.
        let asserted = root.clone().elevated_until(t0() + Duration::minutes(5));
        assert!(
            matches!(crm.access().set_user(&asserted, first.clone()), Err(Error::ElevationRequired { .. })),
            "{name}"
        );
        assert!(
            matches!(crm.access().set_password(&root, root.user_id(), "short"), Err(Error::Validation(_))),
            "{name}"
        );
        crm.access().set_password(&root, root.user_id(), "correct horse battery").unwrap();
        let wrong = crm.access().elevate(&root, ElevationProof::Password("Tr0ub4dor&3".into()));
        assert!(matches!(&wrong, Err(Error::PermissionDenied { action, .. }) if action == "elevate"), "{name}");
        let admin = crm.access().elevate(&root, ElevationProof::Password("correct horse battery".into())).unwrap();
        assert_eq!(admin.elevation(), Some(t0() + Duration::minutes(15)), "{name}: the default window");
        crm.access().set_user(&admin, first).unwrap();
        crm.access().set_user(&admin, User::new("wang", "王").unwrap().role(BuiltinRole::SalesRep)).unwrap();
        crm.access().set_user(&admin, User::new("li", "李").unwrap().role(BuiltinRole::Administrator)).unwrap();
        let c = crm.customers().create(&admin, NewCustomer::new("甲")).unwrap();

        // Forged and stretched proofs, and proofs of another handle, are refused.
        let proof = *admin.elevation_proof().unwrap();
        let stretched = as_user("root").with_proven_elevation(t0() + Duration::hours(8), proof);
        let borrowed = as_user("li").with_proven_elevation(admin.elevation().unwrap(), proof);
        let other = Crm::builder().store(store.clone()).clock(clock.clone()).build();
        for (what, crm, actor) in
            [("stretched", &crm, &stretched), ("borrowed", &crm, &borrowed), ("foreign", &other, &admin)]
        {
            let err = crm.customers().export(actor, &CustomerFilter::default()).unwrap_err();
            assert!(matches!(err, Error::ElevationRequired { .. }), "{name}: a {what} proof: {err}");
        }
        assert_eq!(crm.customers().export(&admin, &CustomerFilter::default()).unwrap().len(), 1, "{name}");
        // It ends with its window.
        clock.advance(Duration::minutes(16));
        assert!(matches!(crm.customers().delete(&admin, c.id, 1), Err(Error::ElevationRequired { .. })), "{name}");

        // A TOTP code, and the host's verifier, elevate too.
        let err = crm.access().set_password(&root, root.user_id(), "another password").unwrap_err();
        assert!(matches!(err, Error::ElevationRequired { .. }), "{name}: replacing a credential needs elevation");
        let wang = as_user("wang");
        let secret = crm.access().enroll_totp(&wang, wang.user_id()).unwrap(); // the first one is free
        let code = guanxi::auth::Totp::from_base32(&secret, guanxi::auth::TotpAlgorithm::Sha1, 6)
            .unwrap()
            .code_at(clock.now());
        assert!(
            crm.access().elevate(&wang, ElevationProof::Totp(code.clone())).unwrap().elevation_proof().is_some(),
            "{name}"
        );
        assert!(
            crm.access().elevate(&wang, ElevationProof::Totp("000000".into())).is_err() || code == "000000",
            "{name}"
        );
        assert!(crm.access().elevate(&root, ElevationProof::Host("idp-ok:root".into())).is_ok(), "{name}");
        assert!(crm.access().elevate(&root, ElevationProof::Host("idp-ok:wang".into())).is_err(), "{name}");
        assert!(
            matches!(other.access().elevate(&root, ElevationProof::Host("x".into())), Err(Error::InvalidState(_))),
            "{name}"
        );
        // Someone else's credentials are an administrator's business.
        assert!(matches!(
            crm.access().set_password(&wang, root.user_id(), "hijacked password"),
            Err(Error::PermissionDenied { .. })
        ));
        assert_eq!(
            crm.access().credentials(&wang, wang.user_id()).unwrap(),
            Credentials { password: false, totp: true }
        );

        // Every attempt is in the log; no secret is.
        let admin = crm.access().elevate(&root, ElevationProof::Password("correct horse battery".into())).unwrap();
        let log: Vec<ChangeLogEntry> = crm
            .audit()
            .entries(&admin, &ChangeLogQuery::default())
            .unwrap()
            .into_iter()
            .filter(|e| e.action == ChangeAction::Elevate)
            .collect();
        let text = format!("{log:?}");
        assert!(
            !text.contains("correct horse") && !text.contains(&secret) && !text.contains("argon2"),
            "{name}: {text}"
        );
        let refused = log.iter().filter(|e| e.changes.iter().any(|c| c.field == "refused")).count();
        assert_eq!(
            refused, 4,
            "{name}: the wrong password, the wrong code, the verifier's no, a handle without a verifier"
        );
        assert!(crm.audit().verify(&admin).unwrap().is_intact(), "{name}");

        // A host that verifies users itself may trust its own assertions.
        let trusting = Crm::builder().store(store).clock(clock.clone()).trust_asserted_elevation(true).build();
        let asserted = root.clone().elevated_until(clock.now() + Duration::minutes(5));
        assert!(trusting.customers().export(&asserted, &CustomerFilter::default()).is_ok(), "{name}");
    }
}

/// A customer's identity numbers and registration codes are masked for customer service and
/// hidden from marketing, as a contact's identity number is, on lists, single reads and
/// exports alike.
#[test]
fn identifiers_are_masked_for_service_and_hidden_from_marketing() {
    for (name, crm, _dir) in backends() {
        org(&crm);
        crm.access().set_user(&root(), User::new("fu", "服务").unwrap().role(BuiltinRole::CustomerService)).unwrap();
        let c = crm
            .customers()
            .create(&root(), NewCustomer::new("华为技术有限公司").identifier(IdScheme::Uscc, "914403001922038216"))
            .unwrap();
        let seen = |user: &str| -> Vec<Vec<String>> {
            let actor = as_user(user);
            let one = crm.customers().get(&actor, c.id).unwrap();
            let listed = crm.customers().list_all(&actor, &CustomerFilter::default()).unwrap();
            [one.identifiers, listed[0].identifiers.clone()]
                .into_iter()
                .map(|ids| ids.iter().map(ToString::to_string).collect())
                .collect()
        };
        assert_eq!(seen("fu"), vec![vec!["uscc:914***********8216".to_owned()]; 2], "{name}");
        assert_eq!(seen("ma"), vec![Vec::<String>::new(); 2], "{name}");
        let elevated = as_user("ma").elevated_until(t0() + Duration::minutes(10));
        let exported = crm.customers().export(&elevated, &CustomerFilter::default()).unwrap();
        assert!(exported[0].identifiers.is_empty(), "{name}");
        assert_eq!(seen("root")[0], ["uscc:914403001922038216"], "{name}");
    }
}
