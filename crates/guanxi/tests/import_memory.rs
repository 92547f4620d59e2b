//! Issue 15, item 9: an import streams. Rows are read, checked and written a chunk at a
//! time inside one write session, so the heap an import needs stays flat as the file grows
//! (what does grow is the report: an id per created customer).
//!
//! Measured with a counting allocator (this test binary's own, `peak_alloc`), as the peak of live heap
//! bytes above what was live before the import. SQLite's page cache is not in it: it is
//! bounded by `SqliteOptions::cache_mib` whatever the file.

use guanxi::{Actor, Crm, ImportOptions};
use peak_alloc::PeakAlloc;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

/// A file of `rows` distinct customers, each with a contact and two tags. Names are spelled
/// from scattered characters, so that no two rows share a name key (neighbours, which the
/// duplicate check reads, are bounded per key and not what is measured here).
fn file(rows: usize) -> Vec<u8> {
    const CHARS: [char; 32] = [
        '金', '木', '水', '火', '土', '山', '川', '云', '海', '星', '月', '日', '风', '雷', '林', '石', '春', '夏',
        '秋', '冬', '东', '西', '南', '北', '红', '黄', '蓝', '绿', '龙', '凤', '松', '竹',
    ];
    let mut text = String::from("客户名称,联系人,手机,标签\n");
    for i in 0..rows {
        // A bijective scramble of i, spelled in base 32.
        let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
        let name: String = (0..5)
            .map(|_| {
                let c = CHARS[(x % 32) as usize];
                x /= 32;
                c
            })
            .collect();
        text.push_str(&format!("{name}{i}有限公司,联系人{i},139{i:08},批量;华东\n"));
    }
    text.into_bytes()
}

/// The peak heap an import of `bytes` needs above what was live before it, and the count of
/// customers it created.
fn import_peak(bytes: &[u8]) -> (usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let crm = Crm::open(dir.path().join("crm.db")).unwrap();
    let actor = Actor::user("importer").unwrap();
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let report = crm.files().import(&actor, bytes, &ImportOptions::default(), |_| {}).unwrap();
    let peak = HEAP.peak_usage().saturating_sub(before);
    assert!(report.committed && report.rejected.is_empty(), "{:?}", report.rejected.first());
    (peak, report.created.len())
}

#[test]
fn import_memory_stays_flat_as_the_file_grows() {
    let (small_rows, large_rows) = (2_000, 20_000);
    let (small_file, large_file) = (file(small_rows), file(large_rows));
    let (small, created_small) = import_peak(&small_file);
    let (large, created_large) = import_peak(&large_file);
    assert_eq!((created_small, created_large), (small_rows, large_rows));
    // What may grow with the file: the file's decoded text (the input itself) and the report
    // (an id per created customer, and the id-to-row map duplicates within the file need).
    let allowance = large_file.len() + (large_rows - small_rows) * 128;
    // Holding the rows, their staged records and their log entries took 15-18 KB a row
    // (about 320 MB more for the larger file); streaming holds one chunk.
    assert!(
        large < small + allowance,
        "peak heap above baseline: {} KiB for {large_rows} rows against {} KiB for {small_rows} (allowance {} KiB)",
        large / 1024,
        small / 1024,
        allowance / 1024
    );
}
