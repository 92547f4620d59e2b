//! Record-linkage quality (issue 19): precision, recall, F1 and the blocking's recall ceiling
//! of the whole-base duplicate scan on generated person records, beside the Python
//! `recordlinkage` library on exactly the same records in the same run.
//!
//! Four sets from `guanxi_core::testing::person_data`: people written in Latin script and in
//! Chinese, each as one file with duplicates (FEBRL's "dataset A" shape) and as two files to
//! link one-to-one. `GUANXI_LINKAGE_PEOPLE` sets the people per set (default 5,000). The
//! records are written as CSV under `target/linkage/`; when `GUANXI_LINKAGE_PYTHON` names a
//! Python with `recordlinkage` and pandas installed, `benches/python/linkage.py` runs on them
//! (sorted-neighbourhood blocking, the ECM classifier) and its figures print beside ours.
//!
//! Quality is measured, not asserted: the figures are the goal's evidence (F1 at least
//! recordlinkage's). Run with `cargo bench -p guanxi-benches --bench linkage`; `.ci/run` runs
//! it once at 1,000 people with the baseline.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use guanxi::dedup::{MatchProfile, MatchRules, Pairs};
use guanxi::testing::dedup_data::quality_of;
use guanxi::testing::person_data::{Labelled, Script, blocking_ceiling, csv, duplicated, linked, profiles};

/// One side's figures.
struct Figures {
    precision: f64,
    recall: f64,
    f1: f64,
    ceiling: f64,
    seconds: f64,
}

/// The configurations measured: the default (companies, weighted) and the people preset
/// (Fellegi–Sunter, m and u estimated by EM from the scanned pairs).
fn configurations() -> [(&'static str, MatchRules); 2] {
    [("guanxi default", MatchRules::default()), ("guanxi people", MatchRules::people("date_of_birth"))]
}

fn ours(set: &[MatchProfile], labels: &[u64], rules: &MatchRules, pairs: Pairs) -> Figures {
    let started = Instant::now();
    let q = quality_of(set, labels, rules, pairs);
    let seconds = started.elapsed().as_secs_f64();
    Figures {
        precision: q.precision,
        recall: q.recall,
        f1: q.f1,
        ceiling: blocking_ceiling(set, labels, &rules.blocking, pairs),
        seconds,
    }
}

fn baseline(python: &str, mode: &str, files: &[PathBuf]) -> Figures {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/linkage.py");
    let out = Command::new(python).arg(script).arg(mode).args(files).output().expect("run the baseline");
    assert!(out.status.success(), "the baseline failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the baseline prints JSON");
    let get = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Figures {
        precision: get("precision"),
        recall: get("recall"),
        f1: get("f1"),
        ceiling: get("ceiling"),
        seconds: get("seconds"),
    }
}

fn write(dir: &Path, name: &str, set: &Labelled, prefix: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, csv(set, prefix)).unwrap();
    path
}

fn row(set: &str, records: usize, who: &str, f: &Figures) {
    println!(
        "| {set} | {records} | {who} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} s |",
        f.precision, f.recall, f.f1, f.ceiling, f.seconds
    );
}

fn main() {
    let people: u64 = std::env::var("GUANXI_LINKAGE_PEOPLE").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let python = std::env::var("GUANXI_LINKAGE_PYTHON").ok().filter(|p| !p.is_empty());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/linkage");
    std::fs::create_dir_all(&dir).unwrap();
    println!("record linkage over {people} people a set (GUANXI_LINKAGE_PEOPLE)");
    println!("| set | records | who | precision | recall | F1 | blocking ceiling | time |");
    println!("|---|---|---|---|---|---|---|---|");
    for script in [Script::Latin, Script::Chinese] {
        let name = format!("{}_dedup", script.as_str());
        let set = duplicated(script, people, 19);
        let file = write(&dir, &format!("{name}.csv"), &set, "r");
        let set_profiles = profiles(&set, script, 1);
        for (who, rules) in configurations() {
            row(&name, set.records.len(), who, &ours(&set_profiles, &set.labels, &rules, Pairs::Within));
        }
        if let Some(py) = &python {
            row(&name, set.records.len(), "recordlinkage", &baseline(py, "dedup", &[file]));
        }

        let name = format!("{}_link", script.as_str());
        let (a, b) = linked(script, people, 19);
        let files = [write(&dir, &format!("{name}_a.csv"), &a, "a"), write(&dir, &format!("{name}_b.csv"), &b, "b")];
        // Both files in one scan, which wants only pairs across them.
        let mut both = profiles(&a, script, 1);
        both.extend(profiles(&b, script, 1 + a.records.len() as u128));
        let labels: Vec<u64> = a.labels.iter().chain(&b.labels).copied().collect();
        let records = a.records.len() + b.records.len();
        for (who, rules) in configurations() {
            row(&name, records, who, &ours(&both, &labels, &rules, Pairs::Across { left: a.records.len() }));
        }
        if let Some(py) = &python {
            row(&name, records, "recordlinkage", &baseline(py, "link", &files));
        }
    }
    // `cargo bench -- --test` runs this once like every benchmark; criterion's runners print
    // this line per benchmark, and `.ci/run` counts it.
    println!("Success");
}
