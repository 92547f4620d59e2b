//! Import and export through the facade, on both backends: templates that import back,
//! encodings (UTF-8 ± BOM, GBK), .xlsx with numeric cells, typed per-row errors, all-or-nothing
//! and keep-good, the four duplicate policies (against the store and within the file),
//! idempotent re-runs, progress, streamed exports in three formats that import back, the real
//! accounts file, and a proptest that arbitrary bytes never panic.

mod common;

use chrono::{DateTime, Utc};
use guanxi::*;
use proptest::prelude::*;

fn t0() -> DateTime<Utc> {
    "2025-06-02T01:00:00Z".parse().unwrap()
}

fn alice() -> Actor {
    Actor::user("alice").unwrap()
}

fn count(crm: &Crm) -> u64 {
    crm.customers().count(&alice(), &CustomerFilter::default()).unwrap()
}

fn keep_good() -> ImportOptions {
    ImportOptions::default().mode(ImportMode::KeepGood)
}

#[test]
fn templates_import_back_in_both_formats() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        for format in [FileFormat::Csv, FileFormat::Xlsx] {
            let file = Crm::import_template(format).unwrap();
            let report = crm.files().import(&alice(), &file, &ImportOptions::default(), |_| {}).unwrap();
            assert!(report.rejected.is_empty(), "{name} {format:?}: {:?}", report.rejected);
            assert!(report.ignored_columns.is_empty(), "{name}");
            if format == FileFormat::Csv {
                assert_eq!(report.created.len(), 1, "{name}");
                let c = crm.customers().get(&alice(), report.created[0]).unwrap();
                assert_eq!(c.region.as_ref().unwrap().province, "广东省");
                assert_eq!(c.tags.len(), 2, "{name}: VIP、华南");
                assert_eq!(crm.contacts().list(&alice(), c.id).unwrap()[0].phones[0].as_str(), "+8613812345678");
            } else {
                // The same example row again: a duplicate, skipped by default.
                assert_eq!((report.created.len(), report.skipped.len()), (0, 1), "{name}");
            }
        }
    }
}

#[test]
fn encodings_and_xlsx_numbers() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        let text = "客户名称,手机,省份\n甲公司,13800000001,山东\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        let r = crm.files().import(&alice(), &gbk, &ImportOptions::default(), |_| {}).unwrap();
        assert_eq!(r.created.len(), 1, "{name}: GBK");
        let bom = [&[0xEF, 0xBB, 0xBF][..], "客户名称\n乙公司\n".as_bytes()].concat();
        assert_eq!(crm.files().import(&alice(), &bom, &ImportOptions::default(), |_| {}).unwrap().created.len(), 1);

        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.write_string(0, 0, "公司").unwrap();
        sheet.write_string(0, 1, "电话").unwrap();
        sheet.write_string(1, 0, "丙公司").unwrap();
        sheet.write_number(1, 1, 13800000003.0).unwrap(); // typed as a number, as Excel does
        let xlsx = book.save_to_buffer().unwrap();
        let options = ImportOptions::default().column("公司", ImportField::Name);
        let r = crm.files().import(&alice(), &xlsx, &options, |_| {}).unwrap();
        assert_eq!(r.created.len(), 1, "{name}: {:?}", r.rejected);
        assert_eq!(crm.contacts().list(&alice(), r.created[0]).unwrap()[0].phones[0].as_str(), "+8613800000003");

        let err = crm.files().import(&alice(), &[0xFF, 0xFE, 0x00, 0xD8], &ImportOptions::default(), |_| {});
        assert!(matches!(err, Err(Error::Validation(_))), "{name}");
        let err = crm.files().import(&alice(), b"PK\x03\x04broken", &ImportOptions::default(), |_| {});
        assert!(matches!(err, Err(Error::Validation(v)) if v.field("file").is_some()), "{name}");
        let err = crm.files().import(&alice(), "电话\n138\n".as_bytes(), &ImportOptions::default(), |_| {});
        assert!(matches!(err, Err(Error::Validation(v)) if v.field("columns.name").is_some()), "{name}");
    }
}

#[test]
fn every_bad_row_is_reported_and_all_or_nothing_writes_nothing() {
    let file = "客户名称,客户类型,手机,邮箱,省份,负责人,备注\n\
                好公司,企业,13800000001,a@example.com,广东,,x\n\
                ,企业,13800000002,,,,\n\
                坏电话,企业,12345,,,,\n\
                坏类型,合伙,,,,,\n\
                坏省份,企业,,,火星,,\n\
                坏邮箱,企业,,not-mail,,,\n\
                另一家好公司,个人,,,,,\n";
    for (name, crm, _, _dir) in common::backends(t0()) {
        let log_before = crm.audit().entries(&alice(), &ChangeLogQuery::default()).unwrap().len();
        let r = crm.files().import(&alice(), file.as_bytes(), &ImportOptions::default(), |_| {}).unwrap();
        assert!(!r.committed, "{name}");
        assert_eq!((r.rows, r.rejected_rows()), (7, 5), "{name}: {:?}", r.rejected);
        assert!(r.created.is_empty());
        assert_eq!(count(&crm), 0, "{name}: nothing written");
        assert_eq!(crm.audit().entries(&alice(), &ChangeLogQuery::default()).unwrap().len(), log_before);
        assert_eq!(r.ignored_columns, vec!["备注".to_owned()], "{name}");
        let at = |row: u64| r.rejected.iter().find(|e| e.row == row).unwrap();
        assert_eq!(at(3).column.as_deref(), Some("客户名称"), "{name}");
        assert_eq!((at(4).column.as_deref(), at(4).value.as_deref()), (Some("手机"), Some("12345")));
        assert_eq!((at(5).column.as_deref(), at(5).value.as_deref()), (Some("客户类型"), Some("合伙")));
        assert_eq!((at(6).column.as_deref(), at(6).value.as_deref()), (Some("省份"), Some("火星")));
        assert_eq!((at(7).column.as_deref(), at(7).value.as_deref()), (Some("邮箱"), Some("not-mail")));

        let r = crm.files().import(&alice(), file.as_bytes(), &keep_good(), |_| {}).unwrap();
        assert!(r.committed, "{name}");
        assert_eq!((r.created.len(), r.rejected_rows()), (2, 5), "{name}");
        assert_eq!(count(&crm), 2, "{name}");
    }
}

#[test]
fn every_failing_cell_of_a_row_is_reported_and_a_missing_mapping_shows_the_headers() {
    let crm = Crm::in_memory();
    let file = "客户名称,客户类型,行业,手机,省份\n坏行,合伙,农场,12345,火星\n";
    let r = crm.files().import(&alice(), file.as_bytes(), &ImportOptions::default(), |_| {}).unwrap();
    let mut columns: Vec<_> = r.rejected.iter().map(|e| e.column.clone().unwrap_or_default()).collect();
    columns.sort();
    assert_eq!(columns, ["客户类型", "手机", "省份", "行业"], "{:?}", r.rejected);
    let kind = r.rejected.iter().find(|e| e.column.as_deref() == Some("客户类型")).unwrap();
    assert!(kind.reason.contains("enterprise, individual"), "{}", kind.reason);
    assert_eq!(r.rejected_rows(), 1);

    let options = ImportOptions::default().column("公司名", ImportField::Name);
    let err = crm.files().import(&alice(), "公司,电话\n甲,138\n".as_bytes(), &options, |_| {}).unwrap_err();
    let Error::Validation(v) = err else { panic!("{err:?}") };
    let unknown = v.field("columns.公司名").unwrap().reason.to_string();
    assert!(unknown.contains("公司, 电话"), "{unknown}");
    let missing = v.field("columns.name").unwrap().reason.to_string();
    assert!(missing.contains("公司, 电话") && missing.contains("contact_phone"), "{missing}");
}

#[test]
fn duplicate_policies_against_the_store_and_within_the_file() {
    let file = "客户名称,手机,标签,来源\n\
                华为技术股份有限公司,13900000009,新标签,官网\n\
                星河科技,13700000007,,\n\
                星河科技有限公司,,,\n";
    for policy in [DuplicatePolicy::Skip, DuplicatePolicy::Update, DuplicatePolicy::Create, DuplicatePolicy::Link] {
        for (name, crm, _, _dir) in common::backends(t0()) {
            let a = alice();
            let existing = crm
                .customers()
                .create(&a, NewCustomer::new("华为技术有限公司").contact(NewContact::new("张伟").phone("13812345678")))
                .unwrap();
            let options = ImportOptions::default().on_duplicate(policy);
            let r = crm.files().import(&a, file.as_bytes(), &options, |_| {}).unwrap();
            assert!(r.rejected.is_empty(), "{name} {policy:?}");
            let after = crm.customers().get(&a, existing.id).unwrap();
            let contacts = crm.contacts().list(&a, existing.id).unwrap().len();
            match policy {
                DuplicatePolicy::Skip => {
                    assert_eq!((r.created.len(), r.skipped.len()), (1, 2), "{name}: {:?}", r.skipped);
                    assert_eq!(r.skipped[0].existing, Some(existing.id));
                    assert!(r.skipped[1].reason.contains("row 3"), "{name}: {}", r.skipped[1].reason);
                    assert_eq!((after.version, contacts), (1, 1));
                }
                DuplicatePolicy::Update => {
                    assert_eq!((r.created.len(), r.updated.clone(), r.skipped.len()), (1, vec![existing.id], 1));
                    assert_eq!(after.source.as_deref(), Some("官网"), "{name}");
                    assert!(after.tags.contains("新标签"));
                    assert_eq!(contacts, 2, "{name}: the new number's contact added");
                }
                DuplicatePolicy::Link => {
                    assert_eq!((r.created.len(), r.linked.clone(), r.skipped.len()), (1, vec![existing.id], 1));
                    assert_eq!(after.source, None, "{name}: fields untouched");
                    assert!(after.tags.contains("新标签"));
                    assert_eq!(contacts, 2);
                }
                DuplicatePolicy::Create => {
                    assert_eq!((r.created.len(), r.skipped.len()), (3, 0), "{name}");
                    assert_eq!(after.version, 1);
                }
            }
            assert_eq!(
                r.created.len() + r.updated.len() + r.linked.len() + r.skipped.len(),
                3,
                "{name}: each row once"
            );
        }
    }
}

#[test]
fn re_running_the_same_file_writes_nothing_and_progress_is_reported() {
    let mut file = String::from("客户名称,手机\n");
    for i in 0..1200 {
        file.push_str(&format!("公司{i:04}号,1380000{i:04}\n"));
    }
    for (name, crm, _, _dir) in common::backends(t0()) {
        for policy in [DuplicatePolicy::Create, DuplicatePolicy::Skip] {
            let options = ImportOptions::default().on_duplicate(policy);
            let mut seen = vec![];
            let r = crm.files().import(&alice(), file.as_bytes(), &options, |p| seen.push(p)).unwrap();
            if policy == DuplicatePolicy::Create {
                assert_eq!(r.created.len(), 1200, "{name}");
                let done: Vec<u64> = seen.iter().map(|p| p.done).collect();
                assert_eq!(done, vec![1000, 1200, 1200], "{name}");
                assert_eq!(seen.last().unwrap().phase, ImportPhase::Done);
            } else {
                // Other options: not the same import, but every row is a duplicate now.
                assert_eq!((r.created.len(), r.skipped.len()), (0, 1200), "{name}");
            }
            let again = crm.files().import(&alice(), file.as_bytes(), &options, |_| {}).unwrap();
            assert_eq!((again.created.len(), again.skipped.len()), (0, 1200), "{name}");
            assert!(again.skipped[0].reason.contains("already imported"), "{name}: {}", again.skipped[0].reason);
        }
        assert_eq!(count(&crm), 1200, "{name}");
    }
}

#[test]
fn exports_stream_three_formats_and_import_back() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        let a = alice();
        for i in 0..30 {
            let c = crm
                .customers()
                .create(
                    &a,
                    NewCustomer::new(format!("客户{i:02}"))
                        .tag(if i % 3 == 0 { "VIP" } else { "普通" })
                        .contact(NewContact::new(format!("联系人{i}")).phone(format!("1390000{i:04}"))),
                )
                .unwrap();
            crm.interactions().create(&a, c.id, NewInteraction::new(InteractionKind::Call, "电话回访")).unwrap();
        }
        let vip = CustomerFilter::default().tag("VIP");
        let mut csv = Vec::new();
        assert_eq!(
            crm.files().export_to(&a, ExportEntity::Customers, &vip, FileFormat::Csv, &mut csv).unwrap(),
            10,
            "{name}"
        );
        let mut xlsx = Vec::new();
        assert_eq!(crm.files().export_to(&a, ExportEntity::Customers, &vip, FileFormat::Xlsx, &mut xlsx).unwrap(), 10);
        let mut jsonl = Vec::new();
        let n = crm
            .files()
            .export_to(&a, ExportEntity::Contacts, &CustomerFilter::default(), FileFormat::JsonLines, &mut jsonl)
            .unwrap();
        assert_eq!(n, 30, "{name}");
        let contacts: Vec<Contact> =
            String::from_utf8(jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(contacts.len(), 30);
        let mut calls = Vec::new();
        let n = crm.files().export_to(&a, ExportEntity::Interactions, &vip, FileFormat::Csv, &mut calls).unwrap();
        assert_eq!(n, 10, "{name}");
        assert!(String::from_utf8(calls).unwrap().contains("电话回访"));
        // Both customer files import back onto the same customers (by code): nothing new.
        for file in [csv, xlsx] {
            let r = crm.files().import(&a, &file, &ImportOptions::default(), |_| {}).unwrap();
            assert_eq!((r.rows, r.created.len(), r.skipped.len()), (10, 0, 10), "{name}: {:?}", r.rejected);
        }
        let log = crm.audit().entries(&a, &ChangeLogQuery::default()).unwrap();
        assert_eq!(log.iter().filter(|e| e.action == ChangeAction::Export).count(), 4, "{name}: each export logged");
    }
}

#[test]
fn the_real_accounts_file_imports_with_a_mapping() {
    let file = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/crm_sales_accounts.csv")).unwrap();
    for (name, crm, _, _dir) in common::backends(t0()) {
        let options =
            ImportOptions::default().column("account", ImportField::Name).column("sector", ImportField::Source);
        let r = crm.files().import(&alice(), &file, &options, |_| {}).unwrap();
        assert_eq!(r.rows, 85, "{name}");
        assert!(r.rejected.is_empty(), "{name}: {:?}", r.rejected);
        assert_eq!(r.created.len() + r.skipped.len(), 85, "{name}");
        assert_eq!(
            r.ignored_columns,
            ["year_established", "revenue", "employees", "office_location", "subsidiary_of"],
            "{name}"
        );
        assert_eq!(count(&crm), r.created.len() as u64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let crm = Crm::in_memory();
        let _ = crm.files().import(&alice(), &bytes, &keep_good(), |_| {});
        let mut zipped = b"PK\x03\x04".to_vec();
        zipped.extend(&bytes);
        let _ = crm.files().import(&alice(), &zipped, &keep_good(), |_| {});
    }

    #[test]
    fn arbitrary_csv_text_never_panics_and_counts_every_row(
        cells in prop::collection::vec(prop::collection::vec("[a-z0-9,\"\\n 华为+@.-]{0,12}", 3), 1..20)
    ) {
        let mut text = String::from("客户名称,手机,邮箱\n");
        for row in &cells {
            text.push_str(&row.join(","));
            text.push('\n');
        }
        let crm = Crm::in_memory();
        if let Ok(r) = crm.files().import(&alice(), text.as_bytes(), &keep_good(), |_| {}) {
            let accounted = r.created.len() + r.updated.len() + r.linked.len() + r.skipped.len();
            prop_assert_eq!(accounted as u64 + r.rejected_rows(), r.rows);
        }
    }
}

#[test]
fn small_imports_into_a_large_base_find_the_same_duplicates() {
    // Every row is checked through the store's match keys, inside the import's write session:
    // a file as large as the base and one far smaller must reach the same verdicts.
    let file = "客户名称,手机\n华为技术股份有限公司,\n某某,13812345678\n全新公司,13700000000\n";
    for (name, crm, _, _dir) in common::backends(t0()) {
        let a = alice();
        let huawei = crm
            .customers()
            .create(&a, NewCustomer::new("华为技术有限公司").contact(NewContact::new("张伟").phone("13812345678")))
            .unwrap();
        let verdict = |r: &ImportReport| (r.created.len(), r.skipped.iter().map(|s| s.existing).collect::<Vec<_>>());
        let bulk = crm.files().import(&a, file.as_bytes(), &keep_good(), |_| {}).unwrap();
        assert_eq!(verdict(&bulk), (1, vec![Some(huawei.id), Some(huawei.id)]), "{name}: read once");
        crm.customers().create_many(&a, (0..60).map(|i| NewCustomer::new(format!("客户{i:02}号"))).collect()).unwrap();
        let options = keep_good().on_duplicate(DuplicatePolicy::Link); // another digest: not a re-run
        let per_row = crm.files().import(&a, file.as_bytes(), &options, |_| {}).unwrap();
        // Row 2 links to 华为; row 3 (its phone) finds 华为 already taken by row 2; row 4 finds
        // the 全新公司 the first import created.
        assert_eq!(per_row.linked.len(), 2, "{name}: row by row");
        assert_eq!(per_row.linked[0], huawei.id, "{name}");
        assert_eq!(per_row.skipped.len(), 1, "{name}");
        assert!(per_row.skipped[0].reason.contains("row 2"), "{name}: {:?}", per_row.skipped);
        assert_eq!(per_row.created.len(), 0, "{name}: 全新公司 now exists");
    }
}

/// Issue 15, item 8: a 1.4 KB workbook with cells at A1 and XFD1048576 made the reader
/// allocate a dense 512 GiB grid and abort the host. Cells are streamed now.
#[test]
fn a_workbook_with_far_apart_cells_is_read_as_the_cells_present() {
    let crm = Crm::in_memory();
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "客户名称").unwrap();
    sheet.write_string(1, 0, "甲公司").unwrap();
    sheet.write_string(1_048_575, 16_383, "远处").unwrap();
    let xlsx = book.save_to_buffer().unwrap();
    assert!(xlsx.len() < 8 * 1024, "{} bytes", xlsx.len());
    // The far cell's column is past the default column limit: a typed error, not an abort.
    let err = crm.files().import(&alice(), &xlsx, &ImportOptions::default(), |_| {}).unwrap_err();
    assert!(matches!(&err, Error::Validation(v) if v.field("file.columns").is_some()), "{err:?}");
    // With room for the columns, the rows present are imported; the far row has no name.
    let wide = ImportOptions { limits: ImportLimits { max_columns: 16_384, ..Default::default() }, ..keep_good() };
    let r = crm.files().import(&alice(), &xlsx, &wide, |_| {}).unwrap();
    assert_eq!((r.rows, r.created.len(), r.rejected_rows()), (2, 1, 1));
    assert_eq!(r.rejected[0].row, 1_048_576);
}

/// Issue 15, item 9: a zip bomb stops at the decompressed-size limit, whatever its headers say;
/// oversized cells, rows, columns and files are typed errors naming the limit.
#[test]
fn files_past_the_limits_are_refused_with_typed_errors() {
    use std::io::Write as _;
    let crm = Crm::in_memory();
    let field_of = |r: Result<ImportReport>| match r {
        Err(Error::Validation(v)) => v.0[0].field.clone(),
        other => panic!("{other:?}"),
    };
    // 64 MiB of zeros in a part: ~64 KiB on disk.
    let mut bomb = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    bomb.start_file("xl/sharedStrings.xml", opts).unwrap();
    let zeros = vec![b'0'; 1 << 20];
    for _ in 0..64 {
        bomb.write_all(&zeros).unwrap();
    }
    let bomb = bomb.finish().unwrap().into_inner();
    assert!(bomb.len() < 512 * 1024);
    let small = ImportLimits { max_decompressed_bytes: 16 << 20, ..Default::default() };
    let options = ImportOptions { limits: small, ..Default::default() };
    assert_eq!(field_of(crm.files().import(&alice(), &bomb, &options, |_| {})), "file.decompressed_bytes");

    let long_cell = format!("客户名称\n{}\n", "长".repeat(40_000));
    assert_eq!(
        field_of(crm.files().import(&alice(), long_cell.as_bytes(), &ImportOptions::default(), |_| {})),
        "file.cell"
    );
    let wide = format!("客户名称{}\n甲\n", ",x".repeat(2_000));
    assert_eq!(
        field_of(crm.files().import(&alice(), wide.as_bytes(), &ImportOptions::default(), |_| {})),
        "file.columns"
    );
    let tiny =
        ImportOptions { limits: ImportLimits { max_file_bytes: 10, ..Default::default() }, ..Default::default() };
    assert_eq!(field_of(crm.files().import(&alice(), "客户名称\n甲公司\n".as_bytes(), &tiny, |_| {})), "file.bytes");
    assert_eq!(count(&crm), 0, "nothing written by a refused file");
}

/// Issue 15, item 5: a refused export truncated the target file before the permission check.
#[test]
fn a_refused_export_leaves_the_target_file_untouched() {
    use guanxi::access::User;
    let crm = Crm::builder().trust_asserted_elevation(true).build();
    let root = Actor::user("root").unwrap().elevated_until(chrono::Utc::now() + chrono::Duration::minutes(5));
    crm.access().set_user(&root, User::new("root", "管理员").unwrap().role(BuiltinRole::Administrator)).unwrap();
    crm.customers().create(&root, NewCustomer::new("甲公司")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    std::fs::write(&path, "keep me").unwrap();
    let not_elevated = Actor::user("root").unwrap();
    let err = crm
        .files()
        .export_to_path(&not_elevated, ExportEntity::Customers, &CustomerFilter::default(), FileFormat::Csv, &path)
        .unwrap_err();
    assert!(matches!(err, Error::ElevationRequired { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    let n =
        crm.files().export_to_path(&root, ExportEntity::Customers, &CustomerFilter::default(), FileFormat::Csv, &path);
    assert_eq!(n.unwrap(), 1);
    assert!(std::fs::read_to_string(&path).unwrap().contains("甲公司"));
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
