//! Every item the bindings export carries a doc comment, which uniffi turns into the KDoc and
//! DocC comments Kotlin and Swift users read.

use std::fs;
use std::path::Path;

#[test]
fn every_exported_item_is_documented() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let item = line.trim_start();
            if !(item.starts_with("pub fn ") || item.starts_with("pub struct ") || item.starts_with("pub enum ")) {
                continue;
            }
            let documented = lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim_start())
                .find(|l| !l.starts_with("#["))
                // A macro's item takes the doc its invocation gives (`$(#[$doc:meta])*`).
                .is_some_and(|l| l.starts_with("///") || l.starts_with("#[doc") || l.starts_with("$(#["));
            if !documented {
                missing.push(format!("{}:{}: {}", path.file_name().unwrap().to_string_lossy(), i + 1, item));
            }
        }
    }
    assert!(missing.is_empty(), "exported items without a doc comment:\n{}", missing.join("\n"));
}
