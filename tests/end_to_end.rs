//! End-to-end: real data sets loaded through the public API into a SQLite file, checked against
//! independent calculations over the CSV, then the file reopened, shared by threads and by two
//! handles.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use guanxi::*;
use rust_decimal::Decimal;

const ACCOUNTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/crm_sales_accounts.csv");
const TELCO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/telco_churn_first_1000.csv");

fn rows(path: &str) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| headers.iter().map(str::to_owned).zip(r.unwrap().iter().map(str::to_owned)).collect())
        .collect()
}

/// The sector → GB/T 4754 section mapping an importer would configure (the data's misspelling
/// "technolgy" included, as real input has it).
fn industry_of(sector: &str) -> Industry {
    match sector {
        "technolgy" | "technology" | "software" | "telecommunications" => Industry::InformationTechnology,
        "medical" => Industry::HealthSocialWork,
        "retail" => Industry::WholesaleRetail,
        "finance" => Industry::Finance,
        "entertainment" => Industry::CultureSportsEntertainment,
        "marketing" | "employment" | "services" => Industry::LeasingBusinessServices,
        other => panic!("unmapped sector {other}"),
    }
}

fn define(crm: &Crm, actor: &Actor, key: &str, label: &str, ty: FieldType, allowed: &[&str]) {
    let def = CustomFieldDef::new(EntityKind::Customer, key, label, ty).allowed(allowed.iter().copied());
    crm.custom_fields().create(actor, def).unwrap();
}

fn load_accounts(crm: &Crm, actor: &Actor) -> Vec<Customer> {
    define(crm, actor, "sector", "行业(原始)", FieldType::Text, &[]);
    define(crm, actor, "revenue_musd", "营收(百万美元)", FieldType::Decimal, &[]);
    define(crm, actor, "employees", "员工数", FieldType::Number, &[]);
    define(crm, actor, "year_established", "成立年份", FieldType::Number, &[]);
    define(crm, actor, "office_location", "所在国家", FieldType::Text, &[]);
    let inputs = rows(ACCOUNTS)
        .into_iter()
        .map(|r| {
            let employees: u32 = r["employees"].parse().unwrap();
            let mut c = NewCustomer::new(&r["account"])
                .industry(industry_of(&r["sector"]))
                .size(SizeBand::for_headcount(employees))
                .status(LifecycleStatus::Customer)
                .custom("sector", CustomValue::Text(r["sector"].clone()))
                .custom("revenue_musd", CustomValue::Text(r["revenue"].clone()))
                .custom("employees", CustomValue::Text(r["employees"].clone()))
                .custom("year_established", CustomValue::Text(r["year_established"].clone()))
                .custom("office_location", CustomValue::Text(r["office_location"].clone()));
            if !r["subsidiary_of"].is_empty() {
                c = c.tag(format!("子公司-{}", r["subsidiary_of"]));
            }
            c
        })
        .collect();
    crm.customers().create_many(actor, inputs).unwrap()
}

fn load_telco(crm: &Crm, actor: &Actor) -> Vec<Customer> {
    define(crm, actor, "contract", "合约", FieldType::SingleSelect, &["Month-to-month", "One year", "Two year"]);
    define(crm, actor, "tenure_months", "在网月数", FieldType::Number, &[]);
    define(crm, actor, "monthly_charges", "月费", FieldType::Decimal, &[]);
    define(crm, actor, "total_charges", "累计费用", FieldType::Decimal, &[]);
    let inputs = rows(TELCO)
        .into_iter()
        .map(|r| {
            NewCustomer::new(format!("Telco {}", r["customerID"]))
                .kind(CustomerKind::Individual)
                .status(if r["Churn"] == "Yes" { LifecycleStatus::Lost } else { LifecycleStatus::Customer })
                .tag(format!("网络-{}", r["InternetService"]))
                .custom("contract", CustomValue::Text(r["Contract"].clone()))
                .custom("tenure_months", CustomValue::Text(r["tenure"].clone()))
                .custom("monthly_charges", CustomValue::Text(r["MonthlyCharges"].clone()))
                // Blank in the source for brand-new customers: a blank value is "no value".
                .custom("total_charges", CustomValue::Text(r["TotalCharges"].clone()))
        })
        .collect();
    crm.customers().create_many(actor, inputs).unwrap()
}

fn count(crm: &Crm, actor: &Actor, filter: CustomerFilter) -> u64 {
    crm.customers().count(actor, &filter).unwrap()
}

fn check_accounts(crm: &Crm, actor: &Actor) {
    let source = rows(ACCOUNTS);
    let enterprises = CustomerFilter { kind: Some(CustomerKind::Enterprise), ..Default::default() };
    assert_eq!(count(crm, actor, enterprises.clone()), source.len() as u64);

    let mut by_industry: BTreeMap<Industry, u64> = BTreeMap::new();
    let mut by_size: BTreeMap<SizeBand, u64> = BTreeMap::new();
    for r in &source {
        *by_industry.entry(industry_of(&r["sector"])).or_default() += 1;
        let employees: u32 = r["employees"].parse().unwrap();
        let band = if employees < 100 {
            SizeBand::Small
        } else if employees <= 500 {
            SizeBand::Medium
        } else {
            SizeBand::Large
        };
        *by_size.entry(band).or_default() += 1;
    }
    for (industry, n) in by_industry {
        assert_eq!(
            count(crm, actor, CustomerFilter { industry: Some(industry), ..Default::default() }),
            n,
            "{industry:?}"
        );
    }
    for (size, n) in by_size {
        assert_eq!(count(crm, actor, CustomerFilter { size: Some(size), ..enterprises.clone() }), n, "{size:?}");
    }
    let us = source.iter().filter(|r| r["office_location"] == "United States").count() as u64;
    let us_filter =
        enterprises.clone().custom(CustomFilter::new("office_location", CustomValue::Text("United States".into())));
    assert_eq!(count(crm, actor, us_filter), us);
    let typo = source.iter().filter(|r| r["sector"] == "technolgy").count() as u64;
    assert_eq!(
        count(
            crm,
            actor,
            CustomerFilter::default().custom(CustomFilter::new("sector", CustomValue::Text("technolgy".into())))
        ),
        typo
    );

    // Money sums are exact: Decimal over the stored values equals Decimal over the CSV text.
    let expected: Decimal = source.iter().map(|r| r["revenue"].parse::<Decimal>().unwrap()).sum();
    let stored: Decimal = crm
        .customers()
        .list_all(actor, &enterprises)
        .unwrap()
        .iter()
        .map(|c| match &c.custom["revenue_musd"] {
            CustomValue::Decimal(d) => *d,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(stored, expected);
    let subsidiaries = source.iter().filter(|r| !r["subsidiary_of"].is_empty()).count();
    let tagged: usize = crm
        .tags()
        .list(actor)
        .unwrap()
        .iter()
        .filter(|t| t.name.starts_with("子公司-"))
        .map(|t| count(crm, actor, CustomerFilter::default().tag(&t.name)) as usize)
        .sum();
    assert_eq!(tagged, subsidiaries);
}

fn check_telco(crm: &Crm, actor: &Actor) {
    let source = rows(TELCO);
    let churned = source.iter().filter(|r| r["Churn"] == "Yes").count() as u64;
    assert_eq!(count(crm, actor, CustomerFilter::default().status(LifecycleStatus::Lost)), churned);
    for service in ["DSL", "Fiber optic", "No"] {
        let n = source.iter().filter(|r| r["InternetService"] == service).count() as u64;
        assert_eq!(count(crm, actor, CustomerFilter::default().tag(&format!("网络-{service}"))), n, "{service}");
    }
    for contract in ["Month-to-month", "One year", "Two year"] {
        let n = source.iter().filter(|r| r["Contract"] == contract && r["Churn"] == "Yes").count() as u64;
        let filter = CustomerFilter::default()
            .status(LifecycleStatus::Lost)
            .custom(CustomFilter::new("contract", CustomValue::Select(contract.into())));
        assert_eq!(count(crm, actor, filter), n, "{contract}");
    }
    let individuals = CustomerFilter { kind: Some(CustomerKind::Individual), ..Default::default() };
    let all = crm.customers().list_all(actor, &individuals).unwrap();
    let blank = source.iter().filter(|r| r["TotalCharges"].trim().is_empty()).count();
    assert!(blank > 0, "the sample keeps the data set's blank TotalCharges");
    assert_eq!(all.iter().filter(|c| !c.custom.contains_key("total_charges")).count(), blank);
    let expected: Decimal =
        source.iter().filter(|r| r["Churn"] == "Yes").map(|r| r["MonthlyCharges"].parse::<Decimal>().unwrap()).sum();
    let stored: Decimal = all
        .iter()
        .filter(|c| c.status == LifecycleStatus::Lost)
        .map(|c| match &c.custom["monthly_charges"] {
            CustomValue::Decimal(d) => *d,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(stored, expected, "monthly charges of churned customers, exactly");
}

#[test]
fn real_data_sets_load_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let actor = Actor::user("importer").unwrap();
    let total = {
        let crm = Crm::open(&path).unwrap();
        let accounts = load_accounts(&crm, &actor);
        let telco = load_telco(&crm, &actor);
        check_accounts(&crm, &actor);
        check_telco(&crm, &actor);
        accounts.len() + telco.len()
    };
    let crm = Crm::open(&path).unwrap();
    check_accounts(&crm, &actor);
    check_telco(&crm, &actor);
    let creates = crm
        .audit()
        .entries(&actor, &ChangeLogQuery::default())
        .unwrap()
        .iter()
        .filter(|e| e.entity == EntityKind::Customer && e.action == ChangeAction::Create)
        .count();
    assert_eq!(creates, total, "one change-log entry per created customer");
    // Sequences survive the reopen: the next code continues the day's numbering.
    let next = crm.customers().create(&actor, NewCustomer::new("下一位")).unwrap();
    assert!(next.code.ends_with(&format!("{:03}", total + 1)), "{}", next.code);
}

/// The same real data sets on PostgreSQL: loaded, checked, and checked again through a second
/// connection (PostgreSQL's "reopen").
#[test]
fn real_data_sets_load_and_survive_reconnecting_on_postgres() {
    let Some(pg) = guanxi_tests::postgres("datasets") else { return };
    let actor = Actor::user("importer").unwrap();
    let crm = Crm::builder().store(pg.store.clone()).build();
    let total = load_accounts(&crm, &actor).len() + load_telco(&crm, &actor).len();
    check_accounts(&crm, &actor);
    check_telco(&crm, &actor);
    let again = Crm::builder().store(pg.reconnect()).build();
    check_accounts(&again, &actor);
    check_telco(&again, &actor);
    let next = again.customers().create(&actor, NewCustomer::new("下一位")).unwrap();
    assert!(next.code.ends_with(&format!("{:03}", total + 1)), "{}", next.code);
    assert!(again.audit().verify(&actor).unwrap().is_intact());
}

#[test]
fn threads_share_one_handle() {
    let dir = tempfile::tempdir().unwrap();
    let crm = Arc::new(Crm::open(dir.path().join("crm.db")).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let crm = crm.clone();
            std::thread::spawn(move || {
                let actor = Actor::user(&format!("rep{t}")).unwrap();
                (0..25)
                    .map(|i| {
                        crm.customers()
                            .create(&actor, NewCustomer::new(format!("客户{t}-{i}")).tag("并发"))
                            .unwrap()
                            .code
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut codes: Vec<String> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 100, "every code unique");
    let actor = Actor::user("admin").unwrap();
    assert_eq!(crm.customers().count(&actor, &CustomerFilter::default().tag("并发")).unwrap(), 100);
}

#[test]
fn two_handles_on_one_file_see_each_other_and_conflict_safely() {
    let dir = tempfile::tempdir().unwrap();
    let path: &Path = &dir.path().join("crm.db");
    let (a, b) = (Crm::open(path).unwrap(), Crm::open(path).unwrap());
    let alice = Actor::user("alice").unwrap();
    let bob = Actor::user("bob").unwrap();
    let c = a.customers().create(&alice, NewCustomer::new("共享客户")).unwrap();
    let other = b.customers().create(&bob, NewCustomer::new("另一个")).unwrap();
    assert_ne!(c.code, other.code, "codes come from the file's sequence, not the handle");
    let seen_by_b = b.customers().get(&bob, c.id).unwrap();
    b.customers().update(&bob, c.id, seen_by_b.version, CustomerPatch::default().name("B 改的")).unwrap();
    let err = a.customers().update(&alice, c.id, c.version, CustomerPatch::default().name("A 改的")).unwrap_err();
    assert!(matches!(err, Error::Conflict { expected: 1, actual: 2, .. }), "{err:?}");
    assert_eq!(a.customers().get(&alice, c.id).unwrap().name, "B 改的");
}

/// A backup taken while another thread keeps writing opens, verifies its audit chain, holds
/// every row committed before it began, and restores into a working database.
#[test]
fn online_backup_under_concurrent_writes_restores() {
    let dir = tempfile::tempdir().unwrap();
    let crm = Arc::new(Crm::open(dir.path().join("crm.db")).unwrap());
    let (backup, check) = backup_under_concurrent_writes(&crm, dir.path());
    let restored_path = dir.path().join("restored.db");
    let restored_check = Crm::restore(&backup, &restored_path).unwrap();
    assert_eq!(restored_check, check);
    restored_works(&Crm::open(&restored_path).unwrap(), &backup);
}

/// The same on PostgreSQL: the backup is a consistent snapshot in a guanxi file, and it
/// restores into a file and into an empty schema on the server.
#[test]
fn online_backup_of_postgres_under_concurrent_writes_restores() {
    let Some(pg) = guanxi_tests::postgres("backup") else { return };
    let dir = tempfile::tempdir().unwrap();
    let crm = Arc::new(Crm::builder().store(pg.store.clone()).build());
    let (backup, check) = backup_under_concurrent_writes(&crm, dir.path());
    let restored_path = dir.path().join("restored.db");
    assert_eq!(Crm::restore(&backup, &restored_path).unwrap(), check);
    restored_works(&Crm::open(&restored_path).unwrap(), &backup);

    let Some(target) = guanxi_tests::postgres("restored") else { return };
    assert_eq!(Crm::restore_into(&backup, &*target.store, None).unwrap(), check);
    restored_works(&Crm::builder().store(target.store.clone()).build(), &backup);
    let again = Crm::restore_into(&backup, &*target.store, None);
    assert!(matches!(again, Err(Error::InvalidState(_))), "a schema holding data is refused: {again:?}");
}

/// An encrypted PostgreSQL store backs up into a file sealed under its key, and that file
/// restores into a new encrypted schema with the key (and only with it).
#[test]
fn encrypted_postgres_backs_up_and_restores_with_its_key() {
    let key = FieldKey::generate();
    let Some(pg) = guanxi_tests::postgres_with_key("enc_source", Some(key.clone())) else { return };
    let crm = Crm::builder().store(pg.store.clone()).build();
    let alice = Actor::user("alice").unwrap();
    let c = crm
        .customers()
        .create(&alice, NewCustomer::new("加密客户").contact(NewContact::new("张三").phone("13812345678")))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup.db");
    assert!(crm.files().backup(&alice, &backup).unwrap().is_intact());
    let bytes = std::fs::read(&backup).unwrap();
    assert!(!bytes.windows(11).any(|w| w == b"13812345678"), "the backup holds no phone in clear");

    let Some(target) = guanxi_tests::postgres_with_key("enc_target", Some(key.clone())) else { return };
    let wrong = Crm::restore_into(&backup, &*target.store, Some(&FieldKey::generate()));
    assert!(matches!(wrong, Err(Error::Encryption(EncryptionError::WrongKey))), "{wrong:?}");
    Crm::restore_into(&backup, &*target.store, Some(&key)).unwrap();
    let restored = Crm::builder().store(target.store.clone()).build();
    let contacts = restored.contacts().list(&alice, c.id).unwrap();
    assert_eq!(contacts[0].phones[0].as_str(), "+8613812345678");
    assert_eq!(restored.contacts().find_by_phone(&alice, "13812345678").unwrap().len(), 1);
}

fn backup_under_concurrent_writes(crm: &Arc<Crm>, dir: &Path) -> (std::path::PathBuf, AuditCheck) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let alice = Actor::user("alice").unwrap();
    crm.customers()
        .create_many(&alice, (0..500).map(|i| NewCustomer::new(format!("客户{i}")).tag("基线")).collect())
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (crm, stop) = (crm.clone(), stop.clone());
        std::thread::spawn(move || {
            let bob = Actor::user("bob").unwrap();
            let mut written = 0u64;
            while !stop.load(Ordering::Relaxed) {
                crm.customers().create(&bob, NewCustomer::new(format!("并发{written}")).tag("并发")).unwrap();
                written += 1;
            }
            written
        })
    };
    // Let the writer get going, then note what is committed before the backup begins.
    while crm.customers().count(&alice, &CustomerFilter::default().tag("并发")).unwrap() < 20 {
        std::thread::yield_now();
    }
    let before = crm.customers().list_all(&alice, &CustomerFilter::default()).unwrap();
    let backup = dir.join("backup.db");
    let check = crm.files().backup(&alice, &backup).unwrap();
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(check.is_intact(), "{check:?}");
    assert!(written >= 20);
    let beside: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("backup"))
        .collect();
    assert_eq!(beside, ["backup.db"], "a backup is one file, nothing beside it");

    let copy = Crm::open(&backup).unwrap();
    assert!(copy.audit().verify(&alice).unwrap().is_intact());
    let in_copy: std::collections::HashSet<_> =
        copy.customers().list_all(&alice, &CustomerFilter::default()).unwrap().into_iter().map(|c| c.id).collect();
    assert!(before.iter().all(|c| in_copy.contains(&c.id)), "every row committed before the backup is in it");
    // A snapshot: the records and the log agree (every customer in it has its create entry).
    let log = copy.audit().entries(&alice, &ChangeLogQuery::default()).unwrap();
    let created = log.iter().filter(|e| e.entity == EntityKind::Customer && e.action == ChangeAction::Create).count();
    assert_eq!(created, in_copy.len());
    (backup, check)
}

fn restored_works(restored: &Crm, backup: &Path) {
    let alice = Actor::user("alice").unwrap();
    let copy = Crm::open(backup).unwrap();
    let expected = copy.customers().count(&alice, &CustomerFilter::default()).unwrap();
    assert_eq!(restored.customers().count(&alice, &CustomerFilter::default()).unwrap(), expected);
    let next = restored.customers().create(&alice, NewCustomer::new("恢复后")).unwrap();
    assert!(restored.customers().get(&alice, next.id).is_ok());
    assert!(next.code.starts_with('C'));
    assert!(restored.audit().verify(&alice).unwrap().is_intact(), "the restored log keeps chaining");
}
