//! Commerce through the facade on every backend: the catalog synced idempotently, purchases
//! recorded once, levels following purchases (and time, and merges), catalog lines on
//! opportunities, and purchases read within the reader's scope.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use guanxi::commerce::{NewProduct, NewPurchase, ProductFilter, PurchaseFilter, PurchaseStatus, SyncOutcome};
use guanxi::dedup::MergeRequest;
use guanxi::sales::{NewOpportunity, ProductLine, SalesQuery};
use guanxi::*;
use rust_decimal::Decimal;

fn t0() -> DateTime<Utc> {
    "2024-06-01T02:00:00Z".parse().unwrap()
}

fn alice() -> Actor {
    Actor::user("alice").unwrap()
}

/// Each backend's `Crm` with the default level rule, its clock at `t0`.
fn with_levels() -> Vec<(&'static str, Crm, Arc<FixedClock>, common::Guard)> {
    common::stores()
        .into_iter()
        .map(|(name, store, guard)| {
            let clock = Arc::new(FixedClock::at(t0()));
            let crm = Crm::builder()
                .store(store)
                .clock(clock.clone())
                .level_rule(LevelRule::spend_12m_default())
                .trust_asserted_elevation(true)
                .build();
            (name, crm, clock, guard)
        })
        .collect()
}

fn catalog() -> Vec<NewProduct> {
    vec![
        NewProduct::new("SKU-1", "CRM 授权").category("软件").price("CNY", Decimal::from(1999)).external_id("p-1"),
        NewProduct::new("SKU-2", "实施服务").category("服务").unit("人天").price("CNY", Decimal::from(3000)),
        NewProduct::new("SKU-3", "服务器").category("硬件").tax_rate(Decimal::from(13)).stock(Decimal::from(7)),
    ]
}

#[test]
fn the_catalog_syncs_idempotently_and_reports_every_bad_field_together() {
    for (name, crm, _clock, _guard) in common::backends(t0()) {
        let products = crm.commerce().products();
        let first = products.sync(&alice(), catalog()).unwrap();
        assert_eq!((first.created, first.updated, first.unchanged), (3, 0, 0), "{name}");
        let again = products.sync(&alice(), catalog()).unwrap();
        assert_eq!((again.created, again.unchanged), (0, 3), "{name}");
        assert_eq!(again.ids, first.ids, "{name}");
        // The ERP renames a code: matched by its external id, updated in place.
        let mut renamed = catalog();
        renamed[0].code = "SKU-1A".into();
        let r = products.sync(&alice(), renamed).unwrap();
        assert_eq!(r.outcomes, [SyncOutcome::Updated, SyncOutcome::Unchanged, SyncOutcome::Unchanged], "{name}");
        let p = products.get_by_code(&alice(), "SKU-1A").unwrap();
        assert_eq!((p.id.0, p.version, p.name.as_str()), (first.ids[0], 2, "CRM 授权"), "{name}");
        assert!(matches!(products.get_by_code(&alice(), "SKU-1"), Err(Error::NotFound { .. })), "{name}");
        // Every bad field of the call at once, and nothing written.
        let bad = vec![
            NewProduct::new("SKU-9", "好的"),
            NewProduct::new("", "无编码").tax_rate(Decimal::from(120)),
            NewProduct::new("SKU-8", "两个人民币价").price("CNY", Decimal::ONE).price("cny", Decimal::TWO),
        ];
        let err = products.sync(&alice(), bad).unwrap_err();
        let Error::Validation(v) = &err else { panic!("{name}: {err:?}") };
        let fields: Vec<&str> = v.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["products[1].code", "products[1].tax_rate", "products[2].prices[1].currency"], "{name}");
        assert_eq!(products.count(&alice(), &ProductFilter::default()).unwrap(), 3, "{name}");
        // The same product twice in one call: written once when equal, refused when not.
        let twice = vec![NewProduct::new("SKU-4", "新品"), NewProduct::new("SKU-4", "新品")];
        let r = products.sync(&alice(), twice).unwrap();
        assert_eq!((r.created, r.unchanged, r.ids[0] == r.ids[1]), (1, 1, true), "{name}");
        let clash = vec![NewProduct::new("SKU-5", "甲"), NewProduct::new("SKU-5", "乙")];
        let err = products.sync(&alice(), clash).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("products[1]").is_some()), "{name}: {err:?}");
        // create refuses a taken code; update changes a product at its version.
        let err = products.create(&alice(), NewProduct::new("SKU-2", "重复")).unwrap_err();
        assert!(matches!(&err, Error::Duplicate { field, .. } if field == "code"), "{name}: {err:?}");
        let sku2 = products.get_by_code(&alice(), "SKU-2").unwrap();
        let stale = products.update(&alice(), sku2.id, 9, catalog()[1].clone().inactive());
        assert!(matches!(stale, Err(Error::Conflict { .. })), "{name}");
        let off = products.update(&alice(), sku2.id, 1, catalog()[1].clone().inactive()).unwrap();
        assert!(!off.active, "{name}");
        let active = ProductFilter { active: Some(true), ..Default::default() };
        assert_eq!(products.list_all(&alice(), &active).unwrap().len(), 3, "{name}");
        let services = ProductFilter { category: Some("服务".into()), ..Default::default() };
        assert_eq!(products.list(&alice(), &services, PageRequest::first(5)).unwrap().items, vec![off], "{name}");
        // Each create and update is in the audit log.
        let log = crm.audit().entries(&alice(), &ChangeLogQuery::default()).unwrap();
        assert_eq!(log.iter().filter(|e| e.entity == EntityKind::Product).count(), 6, "{name}");
    }
}

#[test]
fn purchases_are_recorded_once_and_the_level_follows_the_trailing_year() {
    for (name, crm, clock, _guard) in with_levels() {
        let events = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = events.clone();
        crm.subscribe(move |e| seen.lock().unwrap().push(e.payload.name()));
        crm.commerce().products().sync(&alice(), catalog()).unwrap();
        let c = crm.customers().create(&alice(), NewCustomer::new("甲公司")).unwrap();
        assert_eq!(c.level, Some(Level::C), "{name}");
        let line = ProductLine::of_product("SKU-2", Decimal::from(40), Decimal::from(3000), Decimal::ZERO).unwrap();
        let orders = vec![
            NewPurchase::new(c.id, t0() - Duration::days(30)).line(line).channel("电话").external("erp", "SO-1"),
            NewPurchase::new(c.id, t0() - Duration::days(400)).amount(Decimal::from(900_000)).external("erp", "SO-0"),
        ];
        let r = crm.commerce().purchases().record(&alice(), orders.clone()).unwrap();
        assert_eq!(r.created, 2, "{name}");
        // 120,000 within the year (the old order does not count): level B.
        let c1 = crm.customers().get(&alice(), c.id).unwrap();
        assert_eq!(c1.custom["spend_12m"], CustomValue::Decimal(Decimal::from(120_000)), "{name}");
        assert_eq!(c1.level, Some(Level::B), "{name}");
        let p = crm.commerce().purchases().get(&alice(), PurchaseId(r.ids[0])).unwrap();
        assert_eq!((p.lines[0].product.as_str(), p.amount), ("实施服务", Decimal::from(120_000)), "{name}");
        // The same batch again writes nothing.
        let again = crm.commerce().purchases().record(&alice(), orders.clone()).unwrap();
        assert_eq!((again.unchanged, again.ids.clone()), (2, r.ids.clone()), "{name}");
        assert_eq!(crm.customers().get(&alice(), c.id).unwrap().version, c1.version, "{name}");
        // The ERP syncs a refund later: updated, and the level drops with the spend.
        let mut refunded = orders[0].clone();
        refunded.status = PurchaseStatus::Refunded;
        let r2 = crm.commerce().purchases().record(&alice(), vec![refunded]).unwrap();
        assert_eq!(r2.outcomes, [SyncOutcome::Updated], "{name}");
        assert_eq!(crm.customers().get(&alice(), c.id).unwrap().level, Some(Level::C), "{name}");
        // A big order makes it A; a year later, refresh_levels lets it fall back.
        let big = NewPurchase::new(c.id, t0()).amount(Decimal::from(600_000));
        let r3 = crm.commerce().purchases().record(&alice(), vec![big]).unwrap();
        assert_eq!(crm.customers().get(&alice(), c.id).unwrap().level, Some(Level::A), "{name}");
        let p3 = crm.commerce().purchases().get(&alice(), PurchaseId(r3.ids[0])).unwrap();
        assert!(matches!(crm.commerce().purchases().refund(&alice(), p3.id, 5), Err(Error::Conflict { .. })));
        clock.advance(Duration::days(366));
        assert_eq!(crm.commerce().purchases().refresh_levels(&alice()).unwrap(), 1, "{name}");
        assert_eq!(crm.customers().get(&alice(), c.id).unwrap().level, Some(Level::C), "{name}");
        assert_eq!(crm.commerce().purchases().refresh_levels(&alice()).unwrap(), 0, "{name}");
        let names = events.lock().unwrap().clone();
        for expected in ["product_saved", "purchase_recorded", "purchase_updated", "custom_field_defined"] {
            assert!(names.contains(&expected), "{name}: {expected} in {names:?}");
        }
        let filter = PurchaseFilter { customer_id: Some(c.id), ..Default::default() };
        assert_eq!(crm.commerce().purchases().count(&alice(), &filter).unwrap(), 3, "{name}");
        let paid = PurchaseFilter { status: Some(PurchaseStatus::Paid), ..filter };
        assert_eq!(crm.commerce().purchases().list_all(&alice(), &paid).unwrap().len(), 2, "{name}");
    }
}

#[test]
fn bad_purchases_are_all_reported_and_change_nothing() {
    for (name, crm, _clock, _guard) in common::backends(t0()) {
        crm.commerce().products().sync(&alice(), catalog()).unwrap();
        let c = crm.customers().create(&alice(), NewCustomer::new("甲公司")).unwrap();
        let unknown = ProductLine::of_product("SKU-404", Decimal::ONE, Decimal::ONE, Decimal::ZERO).unwrap();
        let bad = vec![
            NewPurchase::new(c.id, t0()).amount(Decimal::from(-5)).currency("元"),
            NewPurchase::new(c.id, t0()),
            NewPurchase::new(c.id, t0()).amount(Decimal::ONE).external("erp", "x").channel(&"很".repeat(101)),
        ];
        let err = crm.commerce().purchases().record(&alice(), bad).unwrap_err();
        let Error::Validation(v) = &err else { panic!("{name}: {err:?}") };
        let fields: Vec<&str> = v.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["purchases[0].currency", "purchases[0].amount", "purchases[1].amount", "purchases[2].channel"],
            "{name}"
        );
        let err = crm.commerce().purchases().record(&alice(), vec![NewPurchase::new(c.id, t0()).line(unknown)]);
        assert!(
            matches!(&err, Err(Error::Validation(v)) if v.field("purchases[0].lines[0].product_code").is_some()),
            "{name}: {err:?}"
        );
        let stranger = NewPurchase::new(CustomerId(uuid::Uuid::nil()), t0()).amount(Decimal::ONE);
        let err = crm.commerce().purchases().record(&alice(), vec![stranger]);
        assert!(matches!(err, Err(Error::NotFound { entity: EntityKind::Customer, .. })), "{name}");
        // One external id for another customer's purchase is refused, naming the field.
        let d = crm.customers().create(&alice(), NewCustomer::new("乙公司")).unwrap();
        let mine = NewPurchase::new(c.id, t0()).amount(Decimal::ONE).external("erp", "SO-9");
        crm.commerce().purchases().record(&alice(), vec![mine.clone()]).unwrap();
        let theirs = NewPurchase { customer_id: d.id, ..mine };
        let err = crm.commerce().purchases().record(&alice(), vec![theirs]);
        assert!(matches!(&err, Err(Error::Validation(v)) if v.field("purchases[0].customer_id").is_some()), "{name}");
        assert_eq!(crm.commerce().purchases().count(&alice(), &PurchaseFilter::default()).unwrap(), 1, "{name}");
        let too_many = vec![NewPurchase::new(c.id, t0()).amount(Decimal::ONE); MAX_SYNC_BATCH + 1];
        let err = crm.commerce().purchases().record(&alice(), too_many);
        assert!(matches!(&err, Err(Error::Validation(v)) if v.field("purchases").is_some()), "{name}");
    }
}

#[test]
fn purchases_are_read_and_written_within_the_customer_scope() {
    use guanxi::BuiltinRole::{Marketing, SalesManager, SalesRep};
    for (name, crm, _clock, _guard) in common::backends(t0()) {
        let root = common::staff(
            &crm,
            t0(),
            &[("rep", SalesRep), ("rep2", SalesRep), ("boss", SalesManager), ("mkt", Marketing)],
        );
        let (rep, rep2, boss, mkt) = (
            Actor::user("rep").unwrap(),
            Actor::user("rep2").unwrap(),
            Actor::user("boss").unwrap(),
            Actor::user("mkt").unwrap(),
        );
        let a = common::vip_of(&crm, &root, "rep", "甲公司");
        let b = common::vip_of(&crm, &root, "rep2", "乙公司");
        let orders = |c: CustomerId, n: i64| -> Vec<NewPurchase> {
            (0..n).map(|i| NewPurchase::new(c, t0() - Duration::days(i)).amount(Decimal::from(100 + i))).collect()
        };
        // A rep reads purchases but does not record them; the manager and root do.
        let err = crm.commerce().purchases().record(&rep, orders(a.id, 1));
        assert!(matches!(err, Err(Error::PermissionDenied { .. })), "{name}: {err:?}");
        crm.commerce().purchases().record(&root, orders(a.id, 3)).unwrap();
        crm.commerce().purchases().record(&root, orders(b.id, 2)).unwrap();
        let all = PurchaseFilter::default();
        for (who, expected) in [(&rep, 3), (&rep2, 2), (&mkt, 5), (&root, 5)] {
            let listed = crm.commerce().purchases().list_all(who, &all).unwrap();
            assert_eq!(listed.len(), expected, "{name}: {}", who.user_id());
            assert_eq!(crm.commerce().purchases().count(who, &all).unwrap(), expected as u64, "{name}");
            for p in &listed {
                assert_eq!(crm.commerce().purchases().get(who, p.id).unwrap(), *p, "{name}");
            }
        }
        let bs = crm.commerce().purchases().list_all(&rep2, &all).unwrap();
        assert!(
            matches!(crm.commerce().purchases().get(&rep, bs[0].id), Err(Error::PermissionDenied { .. })),
            "{name}"
        );
        // The boss has no department here: his department scope reaches no customer.
        assert!(matches!(
            crm.commerce().purchases().record(&boss, orders(a.id, 1)),
            Err(Error::PermissionDenied { .. })
        ));
        // Everyone reads the catalog; only managers and administrators change it.
        crm.commerce().products().sync(&boss, catalog()).unwrap();
        assert_eq!(crm.commerce().products().count(&rep, &ProductFilter::default()).unwrap(), 3, "{name}");
        assert!(matches!(crm.commerce().products().sync(&rep, catalog()), Err(Error::PermissionDenied { .. })));
    }
}

#[test]
fn a_merge_moves_purchases_and_spend_to_the_survivor_and_undo_moves_them_back() {
    for (name, crm, clock, _guard) in with_levels() {
        let root = common::staff(&crm, t0(), &[]);
        let a = crm.customers().create(&root, NewCustomer::new("甲公司")).unwrap();
        let b = crm.customers().create(&root, NewCustomer::new("甲公司分部")).unwrap();
        let buy = |c: CustomerId, amount: i64| NewPurchase::new(c, t0()).amount(Decimal::from(amount));
        crm.commerce().purchases().record(&root, vec![buy(a.id, 60_000), buy(b.id, 50_000)]).unwrap();
        assert_eq!(crm.customers().get(&root, a.id).unwrap().level, Some(Level::C), "{name}");
        clock.advance(Duration::minutes(1));
        let outcome = crm.duplicates().merge(&root, &MergeRequest::new(a.id, [b.id])).unwrap();
        let survivor = crm.customers().get(&root, a.id).unwrap();
        assert_eq!(survivor.level, Some(Level::B), "{name}");
        let theirs = PurchaseFilter { customer_id: Some(a.id), ..Default::default() };
        assert_eq!(crm.commerce().purchases().count(&root, &theirs).unwrap(), 2, "{name}");
        crm.duplicates().undo_merge(&root, &outcome.merge_id).unwrap();
        assert_eq!(crm.commerce().purchases().count(&root, &theirs).unwrap(), 1, "{name}");
        assert_eq!(crm.customers().get(&root, a.id).unwrap().level, Some(Level::C), "{name}");
        let back = crm.customers().get(&root, b.id).unwrap();
        assert_eq!(back.custom["spend_12m"], CustomValue::Decimal(Decimal::from(50_000)), "{name}");
    }
}

#[test]
fn opportunity_lines_name_catalog_products_and_the_report_groups_by_code() {
    for (name, crm, _clock, _guard) in common::backends(t0()) {
        crm.commerce().products().sync(&alice(), catalog()).unwrap();
        let c = crm.customers().create(&alice(), NewCustomer::new("甲公司")).unwrap();
        let line = |code: &str, n: i64| {
            ProductLine::of_product(code, Decimal::from(n), Decimal::from(100), Decimal::ZERO).unwrap()
        };
        let deal = NewOpportunity::new("年度采购").customer(c.id).line(line("SKU-1", 2)).line(line("SKU-3", 1));
        let o = crm.sales().opportunities().create(&alice(), deal).unwrap();
        assert_eq!(o.lines[0].product, "CRM 授权", "{name}");
        assert_eq!(o.lines[1].product_code.as_deref(), Some("SKU-3"), "{name}");
        let bad = NewOpportunity::new("错单").customer(c.id).line(line("SKU-404", 1));
        let err = crm.sales().opportunities().create(&alice(), bad);
        assert!(matches!(&err, Err(Error::Validation(v)) if v.field("lines[0].product_code").is_some()), "{name}");
        let o = crm.sales().opportunities().move_to(&alice(), o.id, o.version, "won", StageChange::default()).unwrap();
        let report = crm.sales().report(&alice(), &SalesQuery::new("standard")).unwrap();
        let keys: Vec<&str> = report.won_by_product.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["SKU-1", "SKU-3"], "{name}: {o:?}");
    }
}

/// The real sales data set: the catalog imported from its products file (by hand-mapped
/// headers), and its won deals imported as purchases of its accounts — the deals naming
/// "GTXPro", a spelling the catalog does not have, rejected row by row.
#[test]
fn the_real_catalog_and_won_deals_import_once_with_every_bad_row_named() {
    let products = std::fs::read("../../tests/data/crm_sales_products.csv").unwrap();
    let pipeline = std::fs::read_to_string("../../tests/data/crm_sales_pipeline.csv").unwrap();
    let accounts = std::fs::read_to_string("../../tests/data/crm_sales_accounts.csv").unwrap();
    for (name, crm, _clock, _guard) in with_levels() {
        let erp = common::staff(&crm, t0(), &[]);
        let catalog = CommerceImportOptions::default()
            .column("product", "code")
            .column("series", "category")
            .column("sales_price", "price");
        let r = crm.files().import_products(&erp, &products, &catalog).unwrap();
        assert_eq!((r.rows, r.sync.created, r.committed), (7, 7, true), "{name}");
        let gtx = crm.commerce().products().get_by_code(&erp, "GTX Pro").unwrap();
        assert_eq!((gtx.name.as_str(), gtx.prices[0].amount), ("GTX Pro", Decimal::from(4821)), "{name}");
        // The accounts become customers; the won deals their purchases, by customer code.
        let inputs: Vec<NewCustomer> =
            accounts.lines().skip(1).map(|l| NewCustomer::new(l.split(',').next().unwrap())).collect();
        let created = crm.customers().create_many(&erp, inputs).unwrap();
        let code_of: std::collections::HashMap<String, String> =
            created.iter().map(|c| (c.name.clone(), c.code.clone())).collect();
        let mut file = String::from("订单号,客户编号,产品编码,下单时间,金额\n");
        let mut won = 0;
        for l in pipeline.lines().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            if f[4] == "Won" {
                won += 1;
                file.push_str(&format!("{},{},{},{},{}\n", f[0], code_of[f[3]], f[2], f[6], f[7]));
            }
        }
        let options = CommerceImportOptions {
            mode: ImportMode::KeepGood,
            source_system: Some("maven".into()),
            ..Default::default()
        };
        let r = crm.files().import_purchases(&erp, file.as_bytes(), &options).unwrap();
        assert_eq!(r.rows, won, "{name}");
        assert_eq!(r.rejected.len(), 729, "{name}");
        assert!(
            r.rejected.iter().all(|e| e.column.as_deref() == Some("产品编码") && e.value.as_deref() == Some("GTXPro"))
        );
        assert_eq!(r.sync.created, won - 729, "{name}");
        let again = crm.files().import_purchases(&erp, file.as_bytes(), &options).unwrap();
        assert_eq!((again.sync.created, again.sync.unchanged), (0, won - 729), "{name}");
        // All or nothing: the same rejections, nothing written.
        let strict = CommerceImportOptions { source_system: Some("other".into()), ..Default::default() };
        let r = crm.files().import_purchases(&erp, file.as_bytes(), &strict).unwrap();
        assert_eq!((r.committed, r.sync.created, r.rejected.len()), (false, 0, 729), "{name}");
        let total = crm.commerce().purchases().count(&erp, &PurchaseFilter::default()).unwrap();
        assert_eq!(total, won - 729, "{name}");
    }
}

#[test]
fn purchases_import_from_xlsx_with_typed_cells() {
    for (name, crm, _clock, _guard) in common::backends(t0()) {
        let c = crm.customers().create(&alice(), NewCustomer::new("甲公司")).unwrap();
        crm.commerce().products().sync(&alice(), catalog()).unwrap();
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for (i, h) in ["客户ID", "下单时间", "产品编码", "数量", "单价", "状态", "渠道"].iter().enumerate()
        {
            sheet.write_string(0, i as u16, *h).unwrap();
        }
        let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2024, 5, 6).unwrap();
        sheet.write_string(1, 0, c.id.to_string()).unwrap();
        sheet.write_datetime(1, 1, &date).unwrap();
        sheet.write_string(1, 2, "SKU-1").unwrap();
        sheet.write_number(1, 3, 3).unwrap();
        sheet.write_number(1, 4, 1999.5).unwrap();
        sheet.write_string(1, 5, "已支付").unwrap();
        sheet.write_string(1, 6, "官网").unwrap();
        sheet.write_string(2, 0, c.id.to_string()).unwrap();
        sheet.write_string(2, 1, "昨天").unwrap();
        sheet.write_string(2, 2, "SKU-1").unwrap();
        sheet.write_string(2, 5, "退货中").unwrap();
        let xlsx = book.save_to_buffer().unwrap();
        let r = crm.files().import_purchases(&alice(), &xlsx, &CommerceImportOptions::default()).unwrap();
        let columns: Vec<Option<&str>> = r.rejected.iter().map(|e| e.column.as_deref()).collect();
        assert_eq!(columns, [Some("下单时间"), Some("状态")], "{name}: {:?}", r.rejected);
        assert!(r.rejected[1].reason.contains("paid"), "{name}: {}", r.rejected[1].reason);
        assert!(!r.committed, "{name}");
        let keep = CommerceImportOptions { mode: ImportMode::KeepGood, ..Default::default() };
        let r = crm.files().import_purchases(&alice(), &xlsx, &keep).unwrap();
        let p = crm.commerce().purchases().get(&alice(), PurchaseId(r.sync.ids[0])).unwrap();
        // A day is midnight in the store's zone (UTC+8).
        assert_eq!(p.at, "2024-05-05T16:00:00Z".parse::<DateTime<Utc>>().unwrap(), "{name}");
        assert_eq!((p.amount, p.lines[0].product.as_str()), (Decimal::new(59985, 1), "CRM 授权"), "{name}");
        // A file without the columns a purchase needs is refused as a whole.
        let err = crm.files().import_purchases(&alice(), "金额\n1\n".as_bytes(), &keep).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("file.columns").is_some()), "{name}: {err:?}");
    }
}

/// RFM and lifetime value over the real data set's won deals (the accounts' purchases),
/// within the reader's scope: a rep scores only their own accounts.
#[test]
fn rfm_and_lifetime_value_over_the_real_won_deals_follow_the_scope() {
    use guanxi::analytics::RfmConfig;
    let pipeline = std::fs::read_to_string("../../tests/data/crm_sales_pipeline.csv").unwrap();
    let accounts = std::fs::read_to_string("../../tests/data/crm_sales_accounts.csv").unwrap();
    // The deals closed in 2016-17; the clock stands at the start of 2018.
    let t = "2018-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
    for (name, crm, _clock, _guard) in common::backends(t) {
        let root = common::staff(&crm, t, &[("rep", BuiltinRole::SalesRep)]);
        let inputs: Vec<NewCustomer> = accounts
            .lines()
            .skip(1)
            .enumerate()
            .map(|(i, l)| {
                let owner = if i % 3 == 0 { "rep" } else { "root" };
                NewCustomer::new(l.split(',').next().unwrap()).owner(UserId::new(owner).unwrap())
            })
            .collect();
        let created = crm.customers().create_many(&root, inputs).unwrap();
        let id_of: std::collections::HashMap<&str, CustomerId> =
            created.iter().map(|c| (c.name.as_str(), c.id)).collect();
        let mut orders = Vec::new();
        for l in pipeline.lines().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            if f[4] == "Won" {
                let at = format!("{}T10:00:00Z", f[6]).parse::<DateTime<Utc>>().unwrap();
                orders.push(
                    NewPurchase::new(id_of[f[3]], at)
                        .amount(f[7].parse().unwrap())
                        .currency("USD")
                        .external("maven", f[0]),
                );
            }
        }
        for chunk in orders.chunks(2_000) {
            crm.commerce().purchases().record(&root, chunk.to_vec()).unwrap();
        }
        let all = PurchaseFilter::default();
        let summaries = crm.analytics().customer_purchases(&root, &all, "USD").unwrap();
        assert_eq!(summaries.len(), 85, "{name}");
        let total: Decimal = summaries.iter().map(|s| s.total).sum();
        let expected: Decimal = orders.iter().filter_map(|o| o.amount).sum();
        assert_eq!(total, expected, "{name}: spend is exact");
        let scores = crm.analytics().rfm(&root, &all, "USD", &RfmConfig::default()).unwrap();
        assert_eq!(scores.len(), 85, "{name}");
        assert!(scores.iter().all(|s| (1..=5).contains(&s.r) && (1..=5).contains(&s.f) && (1..=5).contains(&s.m)));
        let biggest = scores.iter().max_by_key(|s| s.monetary).unwrap();
        assert_eq!(biggest.m, 5, "{name}");
        let options = LifetimeValueOptions { currency: "USD".into(), ..Default::default() };
        let ltv = crm.analytics().lifetime_value(&root, &all, &options).unwrap();
        assert_eq!(ltv.customers.len(), 85, "{name}");
        assert!(ltv.spend.is_some(), "{name}");
        for c in &ltv.customers {
            assert!((0.0..=1.0).contains(&c.p_alive) && c.expected_purchases >= 0.0, "{name}: {c:?}");
            assert!(c.clv.is_none_or(|v| v >= Decimal::ZERO), "{name}: {c:?}");
        }
        // The rep's view: their accounts only, the same summaries.
        let rep = Actor::user("rep").unwrap();
        let theirs = crm.analytics().customer_purchases(&rep, &all, "USD").unwrap();
        let mine: Vec<CustomerId> =
            created.iter().filter(|c| c.owner.as_ref().is_some_and(|o| o.as_str() == "rep")).map(|c| c.id).collect();
        assert_eq!(theirs.len(), mine.len(), "{name}");
        assert!(theirs.iter().all(|s| mine.contains(&s.customer_id) && summaries.contains(s)), "{name}");
        let bad = LifetimeValueOptions { months: 0, monthly_discount: 2.0, ..options };
        let err = crm.analytics().lifetime_value(&root, &all, &bad).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.len() == 2), "{name}: {err:?}");
    }
}
