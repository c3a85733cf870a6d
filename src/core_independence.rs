//! The relay core (configuration, store, delivery, outbound calls, relay) must not import the
//! workflow engine or the spreadsheets, so either could later move behind a cargo feature.
//! This test reads the core's source files and fails on any such import.

use std::path::{Path, PathBuf};

/// The core: these files, and every `.rs` file under these directories (those that exist).
const CORE: &[&str] = &[
    "src/config.rs",
    "src/config",
    "src/store",
    "src/delivery",
    "src/outbound",
    "src/relay.rs",
    "src/relay",
];

/// Paths the core must not name (after removing whitespace, so `crate :: workflow` counts).
const FORBIDDEN: &[&str] =
    &["crate::workflow", "crate::sheets", "hookrelay::workflow", "hookrelay::sheets"];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let entries = std::fs::read_dir(path).expect("read dir");
        for entry in entries {
            rust_files(&entry.expect("dir entry").path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The forbidden paths `source` names, also inside a `use crate::{…}` group.
fn forbidden_imports(source: &str) -> Vec<String> {
    let compact: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    let mut found: Vec<String> =
        FORBIDDEN.iter().filter(|p| compact.contains(*p)).map(|p| p.to_string()).collect();
    for group in compact.split("crate::{").skip(1) {
        let inside = group.split('}').next().unwrap_or("");
        for segment in inside.split(',') {
            if segment.starts_with("workflow") || segment.starts_with("sheets") {
                found.push(format!("crate::{{{segment}}}"));
            }
        }
    }
    found
}

#[test]
fn the_core_imports_neither_workflow_nor_sheets() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for part in CORE {
        let path = root.join(part);
        if path.exists() {
            rust_files(&path, &mut files);
        }
    }
    assert!(files.len() > 10, "the core's files were not found: {files:?}");
    let offending: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let source = std::fs::read_to_string(file).expect("read source");
            let found = forbidden_imports(&source);
            (!found.is_empty()).then(|| format!("{}: {}", file.display(), found.join(", ")))
        })
        .collect();
    assert!(offending.is_empty(), "core modules import workflow/sheets: {offending:#?}");
}

#[test]
fn grouped_imports_are_seen() {
    assert_eq!(forbidden_imports("use crate::{ids, workflow::app};"), ["crate::{workflow::app}"]);
    assert!(forbidden_imports("use super::sheets::Row; use crate::ids;").is_empty());
}
