//! Commerce data generators and the commerce conformance cases.

pub mod commerce_data {
    //! Deterministic pseudo-random products and purchases, for the conformance suite, the
    //! facade tests and the benchmarks.

    use chrono::{DateTime, Duration, TimeZone, Utc};
    use rust_decimal::Decimal;
    use uuid::Uuid;

    use crate::commerce::{NewProduct, Product, Purchase, PurchaseStatus};
    use crate::sales::ProductLine;
    use crate::testing::sales_data::Rng;
    use crate::{CustomerId, ProductId, PurchaseId, UserId};

    /// Channels purchases come through.
    pub const CHANNELS: [&str; 4] = ["门店", "官网", "天猫", "电话"];

    fn at0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap()
    }

    fn system() -> UserId {
        UserId::new("erp").unwrap()
    }

    /// `n` products `SKU-000`…, in three categories, priced in CNY (and USD for every third).
    pub fn products(n: u64) -> Vec<Product> {
        (0..n)
            .map(|i| {
                let mut p = NewProduct::new(&format!("SKU-{i:03}"), &format!("产品{i}"))
                    .category(["软件", "硬件", "服务"][(i % 3) as usize])
                    .unit("套")
                    .price("CNY", Decimal::new(1000 + i as i64 * 250, 0))
                    .tax_rate(Decimal::from(13))
                    .external_id(&format!("erp-p{i}"));
                if i % 3 == 0 {
                    p = p.price("USD", Decimal::new(150 + i as i64 * 35, 0));
                }
                if i % 5 == 4 {
                    p = p.inactive();
                }
                let id = ProductId(Uuid::from_u128(0x0190_0000_0000_7000_a000_0000_0000_0000u128 + u128::from(i)));
                p.validate().unwrap().into_product(id, &system(), at0())
            })
            .collect()
    }

    /// `n` purchases spread over `customers` and two years from 2023-01-01, deterministic in
    /// `seed`: ids in time order, one line of a product from `products` on most, some
    /// refunded, some in USD, every other one with an external id of source `erp`.
    pub fn purchases(customers: &[CustomerId], products: &[Product], n: u64, seed: u64) -> Vec<Purchase> {
        let mut rng = Rng::new(seed);
        let mut minutes: Vec<i64> = (0..n).map(|_| rng.below(2 * 365 * 24 * 60) as i64).collect();
        minutes.sort_unstable();
        minutes
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let i = i as u64;
                let at = at0() + Duration::minutes(m);
                let customer = customers[rng.below(customers.len() as u64) as usize];
                let quantity = Decimal::from(1 + rng.below(4));
                let (lines, amount) = if products.is_empty() || rng.below(5) == 0 {
                    (Vec::new(), Decimal::new(100 + rng.below(500_000) as i64, 2))
                } else {
                    let p = &products[rng.below(products.len() as u64) as usize];
                    let price = p.price_in("CNY").unwrap_or(Decimal::from(99));
                    let mut line = ProductLine::of_product(&p.code, quantity, price, Decimal::ZERO).unwrap();
                    line.product = p.name.clone();
                    let total = line.total();
                    (vec![line], total)
                };
                let id = PurchaseId(Uuid::new_v7(uuid::Timestamp::from_unix(
                    uuid::NoContext,
                    at.timestamp() as u64,
                    i as u32,
                )));
                let external = i.is_multiple_of(2);
                Purchase {
                    id,
                    customer_id: customer,
                    at,
                    amount,
                    currency: if rng.below(10) == 0 { "USD" } else { "CNY" }.to_owned(),
                    lines,
                    channel: Some(CHANNELS[rng.below(4) as usize].to_owned()),
                    source_system: external.then(|| "erp".to_owned()),
                    external_id: external.then(|| format!("SO-{i}")),
                    status: if rng.below(12) == 0 { PurchaseStatus::Refunded } else { PurchaseStatus::Paid },
                    created_by: system(),
                    created_at: at,
                    updated_by: system(),
                    updated_at: at,
                    version: 1,
                }
            })
            .collect()
    }
}

pub(super) mod cases {
    use chrono::{Duration, TimeZone, Utc};
    use rust_decimal::Decimal;

    use super::commerce_data;
    use crate::commerce::{ProductFilter, Purchase, PurchaseFilter, PurchaseKey, PurchaseStatus};
    use crate::testing::conformance::sample_customer;
    use crate::testing::walk_in_small_pages as walk;
    use crate::*;

    pub fn products_round_trip_with_unique_codes_and_external_ids(store: &dyn CrmStore) {
        let products = commerce_data::products(12);
        store
            .apply(&Changes { products: products.iter().cloned().map(Write::Insert).collect(), ..Default::default() })
            .unwrap();
        assert_eq!(store.product(products[3].id).unwrap().as_ref(), Some(&products[3]));
        let mut found = store.products_by_codes(&["SKU-001".into(), "SKU-011".into(), "NOPE".into()]).unwrap();
        found.sort_by_key(|p| p.id);
        assert_eq!(found, vec![products[1].clone(), products[11].clone()]);
        assert_eq!(store.products_by_external_ids(&["erp-p4".into()]).unwrap(), vec![products[4].clone()]);
        for filter in [
            ProductFilter::default(),
            ProductFilter { active: Some(true), ..Default::default() },
            ProductFilter { active: Some(false), category: Some("硬件".into()) },
            ProductFilter { category: Some("服务".into()), ..Default::default() },
        ] {
            let expected: Vec<_> = products.iter().filter(|p| filter.matches(p)).cloned().collect();
            assert_eq!(walk(|p| store.list_products(&filter, p)), expected, "{filter:?}");
            assert_eq!(store.count_products(&filter).unwrap(), expected.len() as u64);
        }
        // A taken code or external id is a duplicate; nothing of the batch is written.
        let mut clash = commerce_data::products(13).pop().unwrap();
        clash.code = "SKU-002".into();
        let err = store.apply(&Changes { products: vec![Write::Insert(clash.clone())], ..Default::default() });
        assert!(
            matches!(&err, Err(Error::Duplicate { entity: EntityKind::Product, field, .. }) if field == "code"),
            "{err:?}"
        );
        clash.code = "SKU-NEW".into();
        clash.external_id = Some("erp-p2".into());
        let err = store.apply(&Changes { products: vec![Write::Insert(clash.clone())], ..Default::default() });
        assert!(matches!(&err, Err(Error::Duplicate { field, .. }) if field == "external_id"), "{err:?}");
        assert_eq!(store.count_products(&ProductFilter::default()).unwrap(), 12);
        // An update may change the code: the old one is free again, the new one found.
        let renamed = commerce::Product { code: "SKU-X".into(), external_id: None, version: 2, ..products[2].clone() };
        let stale = Changes {
            products: vec![Write::Update { record: renamed.clone(), expected_version: 7 }],
            ..Default::default()
        };
        assert!(matches!(store.apply(&stale), Err(Error::Conflict { .. })));
        store
            .apply(&Changes {
                products: vec![Write::Update { record: renamed.clone(), expected_version: 1 }],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(store.products_by_codes(&["SKU-X".into()]).unwrap(), vec![renamed]);
        assert!(store.products_by_codes(&["SKU-002".into()]).unwrap().is_empty());
        assert!(store.products_by_external_ids(&["erp-p2".into()]).unwrap().is_empty());
        store.apply(&Changes { products: vec![Write::Insert(clash)], ..Default::default() }).unwrap();
    }

    fn purchase_fixture(store: &dyn CrmStore) -> (Vec<Customer>, Vec<Purchase>) {
        let mut customers: Vec<Customer> = (0..9).map(sample_customer).collect();
        customers[4].deleted_at = Some(Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap());
        let products = commerce_data::products(5);
        let ids: Vec<CustomerId> = customers.iter().map(|c| c.id).collect();
        let purchases = commerce_data::purchases(&ids, &products, 80, 7);
        store
            .apply(&Changes {
                customers: customers.iter().cloned().map(Write::Insert).collect(),
                products: products.into_iter().map(Write::Insert).collect(),
                purchases: purchases.iter().cloned().map(Write::Insert).collect(),
                ..Default::default()
            })
            .unwrap();
        (customers, purchases)
    }

    pub fn purchases_round_trip_filter_and_sum_spend(store: &dyn CrmStore) {
        let (customers, purchases) = purchase_fixture(store);
        let customer = |id: CustomerId| customers.iter().find(|c| c.id == id).unwrap();
        assert_eq!(store.purchase(purchases[5].id).unwrap().as_ref(), Some(&purchases[5]));
        let key = purchases[6].key().unwrap();
        let missing = PurchaseKey { source_system: "other".into(), external_id: key.external_id.clone() };
        assert_eq!(store.purchases_by_keys(&[key, missing]).unwrap(), vec![purchases[6].clone()]);
        let mid = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
        let east = access::RecordScope { provinces: ["山东省".to_owned()].into(), ..Default::default() };
        for filter in [
            PurchaseFilter::default(),
            PurchaseFilter { customers: CustomerFilter::default().deleted(Deleted::Include), ..Default::default() },
            PurchaseFilter { customer_id: Some(customers[2].id), ..Default::default() },
            PurchaseFilter { from: Some(mid), status: Some(PurchaseStatus::Paid), ..Default::default() },
            PurchaseFilter { to: Some(mid), currency: Some("USD".into()), ..Default::default() },
            PurchaseFilter { source_system: Some("erp".into()), ..Default::default() },
            PurchaseFilter {
                customers: CustomerFilter { scope: Some(east), ..Default::default() },
                ..Default::default()
            },
            PurchaseFilter { customers: CustomerFilter::default().tag("VIP"), ..Default::default() },
        ] {
            let expected: Vec<_> =
                purchases.iter().filter(|p| filter.matches(p, customer(p.customer_id))).cloned().collect();
            assert_eq!(walk(|p| store.list_purchases(&filter, p)), expected, "{filter:?}");
            assert_eq!(store.count_purchases(&filter).unwrap(), expected.len() as u64, "{filter:?}");
        }
        // Spend: paid purchases in the currency within [from, to).
        let ids: Vec<CustomerId> = customers.iter().map(|c| c.id).rev().collect();
        let (from, to) = (Utc.with_ymd_and_hms(2023, 6, 1, 0, 0, 0).unwrap(), mid);
        let expected: Vec<Decimal> = ids
            .iter()
            .map(|c| {
                purchases
                    .iter()
                    .filter(|p| p.customer_id == *c && p.status == PurchaseStatus::Paid && p.currency == "CNY")
                    .filter(|p| p.at >= from && p.at < to)
                    .map(|p| p.amount)
                    .sum()
            })
            .collect();
        let got = store.paid_spend(&ids, "CNY", from, to).unwrap();
        assert_eq!(
            got.iter().map(|d| d.normalize()).collect::<Vec<_>>(),
            expected.iter().map(|d| d.normalize()).collect::<Vec<_>>()
        );
        // The customers with purchases, a page at a time.
        let mut buyers: Vec<CustomerId> =
            purchases.iter().filter(|p| p.currency == "USD").map(|p| p.customer_id).collect();
        buyers.sort();
        buyers.dedup();
        let first = store.customers_with_purchases("USD", None, 2).unwrap();
        let rest = store.customers_with_purchases("USD", first.last().copied(), 100).unwrap();
        assert_eq!([first, rest].concat(), buyers);
    }

    pub fn purchase_writes_check_customers_keys_and_versions(store: &dyn CrmStore) {
        let (_, purchases) = purchase_fixture(store);
        let before = store.count_purchases(&PurchaseFilter::default()).unwrap();
        // A second purchase with a taken (source, external id) is a duplicate.
        let mut again = purchases[0].clone();
        again.id = PurchaseId(uuid::Uuid::from_u128(purchases[0].id.0.as_u128() + 1_000_000));
        let err = store.apply(&Changes { purchases: vec![Write::Insert(again.clone())], ..Default::default() });
        assert!(matches!(&err, Err(Error::Duplicate { entity: EntityKind::Purchase, .. })), "{err:?}");
        // Another source system may use the same external id.
        again.source_system = Some("pos".into());
        // An unknown customer is not found, and fails the batch with it.
        let mut stray = again.clone();
        stray.id = PurchaseId(uuid::Uuid::from_u128(again.id.0.as_u128() + 1));
        stray.external_id = None;
        stray.source_system = None;
        stray.customer_id = CustomerId(uuid::Uuid::from_u128(42));
        let err = store.apply(&Changes {
            purchases: vec![Write::Insert(again.clone()), Write::Insert(stray)],
            ..Default::default()
        });
        assert!(matches!(&err, Err(Error::NotFound { entity: EntityKind::Customer, .. })), "{err:?}");
        assert_eq!(store.count_purchases(&PurchaseFilter::default()).unwrap(), before);
        store.apply(&Changes { purchases: vec![Write::Insert(again)], ..Default::default() }).unwrap();
        // A refund is an update at the stored version.
        let refunded = Purchase {
            status: PurchaseStatus::Refunded,
            version: 2,
            updated_at: purchases[1].at + Duration::days(3),
            ..purchases[1].clone()
        };
        let stale = Changes {
            purchases: vec![Write::Update { record: refunded.clone(), expected_version: 2 }],
            ..Default::default()
        };
        assert!(matches!(store.apply(&stale), Err(Error::Conflict { .. })));
        store
            .apply(&Changes {
                purchases: vec![Write::Update { record: refunded.clone(), expected_version: 1 }],
                ..Default::default()
            })
            .unwrap();
        assert_eq!(store.purchase(refunded.id).unwrap(), Some(refunded));
    }
}
