//! A customer's identity numbers and registration codes, on every backend: checked by scheme
//! with every bad one named, stored and replaced, kept masked in the change log, found by the
//! check on create and the scan whatever the name, united by a merge, and carried through
//! import and export in their own columns.

mod common;

use chrono::{DateTime, Utc};
use guanxi::dedup::{MatchField, MergeRequest};
use guanxi::*;

fn t0() -> DateTime<Utc> {
    "2025-06-02T01:00:00Z".parse().unwrap()
}

fn alice() -> Actor {
    Actor::user("alice").unwrap()
}

const HUAWEI: &str = "914403001922038216";
const SAMPLE: &str = "91350100M000100Y43";

#[test]
fn identifiers_are_checked_stored_replaced_and_logged_masked() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        let a = alice();
        // Every bad identifier is reported with the other bad fields, and nothing is stored.
        let bad = NewCustomer::new(" ")
            .identifier(IdScheme::Uscc, "914403001922038217")
            .identifier(IdScheme::Passport, "E12345678")
            .identifier(IdScheme::CnResident, "110105194912310021");
        let err = crm.customers().create(&a, bad).unwrap_err();
        let Error::Validation(errs) = &err else { panic!("{name}: {err}") };
        let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "identifiers[0]", "identifiers[2]"], "{name}");
        assert!(errs.field("identifiers[0]").unwrap().reason.to_string().contains("check character should be 6"));
        assert_eq!(crm.customers().count(&a, &CustomerFilter::default()).unwrap(), 0, "{name}");

        let c = crm
            .customers()
            .create(
                &a,
                NewCustomer::new("华为技术有限公司")
                    .identifier(IdScheme::Passport, "e 1234 5678")
                    .identifier(IdScheme::Uscc, "9144 0300 1922 0382 16"),
            )
            .unwrap();
        let shown: Vec<String> = c.identifiers.iter().map(ToString::to_string).collect();
        assert_eq!(shown, [format!("uscc:{HUAWEI}"), "passport:E12345678".into()], "{name}");
        assert_eq!(crm.customers().get(&a, c.id).unwrap().identifiers, c.identifiers, "{name}");

        let next = vec![Identifier::new(IdScheme::Uscc, HUAWEI), Identifier::new(IdScheme::Other, "DUNS 123456789")];
        let updated = crm.customers().update(&a, c.id, c.version, CustomerPatch::default().identifiers(next)).unwrap();
        assert_eq!(updated.identifiers[1].to_string(), "other:DUNS 123456789", "{name}");
        // The log keeps identifiers masked: the scheme in clear, the value's middle hidden.
        let log = crm
            .audit()
            .entries(&a, &ChangeLogQuery { entity_id: Some(c.id.to_string()), ..Default::default() })
            .unwrap();
        let change = log.iter().flat_map(|e| &e.changes).find(|ch| ch.field == "identifiers").unwrap();
        let text = format!("{:?} {:?}", change.old, change.new);
        assert!(!text.contains(HUAWEI) && !text.contains("E12345678") && text.contains("passport"), "{name}: {text}");
        assert!(text.contains("914*") && text.contains("8216"), "{name}: {text}");
    }
}

#[test]
fn a_shared_registration_code_finds_the_company_whatever_its_name() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        let a = alice();
        let first = crm
            .customers()
            .create(&a, NewCustomer::new("华为技术有限公司").identifier(IdScheme::Uscc, HUAWEI))
            .unwrap();
        crm.customers().create(&a, NewCustomer::new("星河科技").identifier(IdScheme::Uscc, SAMPLE)).unwrap();
        // Renamed, and the code written with spaces: only the code ties them.
        let renamed = NewCustomer::new("深圳市某某通信有限公司").identifier(IdScheme::Uscc, "9144 0300 1922 0382 16");
        let found = crm.duplicates().find(&a, &renamed).unwrap();
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert_eq!(found[0].id, Some(first.id), "{name}");
        assert_eq!(found[0].reasons[0].field, MatchField::Identifier(None), "{name}");
        // A person's passport number kept as `other` still meets the one kept as `passport`.
        let person = |scheme| NewCustomer::new("").kind(CustomerKind::Individual).identifier(scheme, "E12345678");
        let holder = crm.customers().create(&a, person(IdScheme::Passport)).unwrap();
        let found = crm.duplicates().find(&a, &person(IdScheme::Other)).unwrap();
        assert_eq!(found.first().and_then(|c| c.id), Some(holder.id), "{name}: {found:?}");
        // Blocked on create, and paired by the scan.
        let err = crm.customers().create_checked(&a, renamed.clone(), OnDuplicate::Block).unwrap_err();
        assert!(matches!(err, Error::Duplicate { .. }), "{name}: {err}");
        let second = crm.customers().create_checked(&a, renamed, OnDuplicate::Allow).unwrap().customer;
        let mut clusters = vec![];
        crm.duplicates().scan(&a, &CustomerFilter::default(), |c| clusters.push(c.members)).unwrap();
        let mut pair = vec![first.id, second.id];
        pair.sort();
        assert!(clusters.contains(&pair), "{name}: {clusters:?}");

        // A merge keeps the codes of both.
        crm.duplicates().merge(&a, &MergeRequest::new(first.id, [holder.id])).unwrap();
        let kept = crm.customers().get(&a, first.id).unwrap();
        let shown: Vec<String> = kept.identifiers.iter().map(ToString::to_string).collect();
        assert_eq!(shown, [format!("uscc:{HUAWEI}"), "passport:E12345678".into()], "{name}");
    }
}

#[test]
fn identifiers_travel_through_export_and_import_in_their_own_columns() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        let a = alice();
        crm.customers()
            .create(
                &a,
                NewCustomer::new("华为技术有限公司")
                    .identifier(IdScheme::Uscc, HUAWEI)
                    .identifier(IdScheme::Passport, "E12345678"),
            )
            .unwrap();
        let mut csv = Vec::new();
        crm.files()
            .export_to(&a, ExportEntity::Customers, &CustomerFilter::default(), FileFormat::Csv, &mut csv)
            .unwrap();
        let text = String::from_utf8(csv).unwrap();
        let mut lines = text.trim_start_matches('\u{feff}').lines();
        let headers: Vec<&str> = lines.next().unwrap().split(',').collect();
        let row: Vec<&str> = lines.next().unwrap().split(',').collect();
        let cell = |h: &str| row[headers.iter().position(|x| *x == h).unwrap()];
        assert_eq!((cell("统一社会信用代码"), cell("证件号码")), (HUAWEI, "passport:E12345678"), "{name}");

        // Read back into an empty store (without the code, which names a record there is not):
        // the same identifiers.
        let (_, fresh, _, _fresh_dir) = common::backends(t0()).into_iter().find(|b| b.0 == name).unwrap();
        let text = text.replacen(cell("客户编号"), "", 1);
        let r = fresh.files().import(&a, text.as_bytes(), &ImportOptions::default(), |_| {}).unwrap();
        assert_eq!(r.created.len(), 1, "{name}: {r:?}");
        let back = fresh.customers().get(&a, r.created[0]).unwrap();
        assert_eq!(back.identifiers, crm.customers().list_all(&a, &CustomerFilter::default()).unwrap()[0].identifiers);

        // A bad code names its column and value; the row's other cells are still checked.
        let file =
            format!("客户名称,统一社会信用代码,证件号码\n甲公司,{SAMPLE},\n乙公司,91350100M000100Y44,driver:123\n");
        let r = fresh.files().import(&a, file.as_bytes(), &ImportOptions::default(), |_| {}).unwrap();
        let mut columns: Vec<&str> = r.rejected.iter().map(|e| e.column.as_deref().unwrap_or("")).collect();
        columns.sort();
        assert_eq!(columns, ["统一社会信用代码", "证件号码"], "{name}: {r:?}");
        assert!(r.rejected.iter().any(|e| e.reason.contains("cn_resident, uscc, passport, other")), "{name}: {r:?}");
    }
}
