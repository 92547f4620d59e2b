//! Every committed fuzz corpus file (`tests/fuzz/corpus/<target>/`) replayed through its target
//! body (`guanxi::fuzzing`), as ordinary tests: an input that once broke something stays a
//! regression test, without a fuzzer. Run the fuzzers themselves with
//! `cargo +nightly fuzz run --fuzz-dir tests/fuzz <target>` (see README).

use std::path::PathBuf;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    for f in files {
        let data = std::fs::read(&f).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| body(&data)) {
            panic!("{target}: corpus file {} fails: {panic:?}", f.display());
        }
    }
}

#[test]
fn import_file_corpus() {
    replay("import_file", guanxi::fuzzing::import_file);
}

#[test]
fn commerce_file_corpus() {
    replay("commerce_file", guanxi::fuzzing::commerce_file);
}

#[test]
fn customer_input_corpus() {
    replay("customer_input", guanxi::fuzzing::customer_input);
}

#[test]
fn customer_filter_corpus() {
    replay("customer_filter", guanxi::fuzzing::customer_filter);
}

#[test]
fn match_rules_corpus() {
    replay("match_rules", guanxi::fuzzing::match_rules);
}

#[test]
fn segment_corpus() {
    replay("segment", guanxi::fuzzing::segment);
}
