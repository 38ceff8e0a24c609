//! The package metadata every crate declares: one LICENSE file with the MIT
//! text that `license = "MIT"` promises, and one place for version,
//! edition, license and rust-version.
//!
//! Workspace members must inherit those fields from `[workspace.package]`
//! (`field.workspace = true`); the standalone packages (bench, fuzz,
//! interop), which are their own workspaces and cannot inherit, must state
//! the same values. Read as plain lines: these files are simple, and the
//! test should not need a TOML parser.

use std::fs;
use std::path::Path;

/// The fields every package shares with the workspace.
const SHARED: [&str; 3] = ["edition", "license", "rust-version"];

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines of one `[table]` of a Cargo.toml, comments and blanks dropped.
fn table<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("[{name}]");
    text.lines()
        .map(str::trim)
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The value of `key = "value"` in a table's lines.
fn value<'a>(lines: &[&'a str], key: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

#[test]
fn the_license_file_is_the_mit_text() {
    let text = read("LICENSE");
    assert!(text.starts_with("MIT License\n"), "{text}");
    assert!(text.contains("Copyright (c) 2026 the waypass developers"));
    assert!(text.contains("Permission is hereby granted, free of charge"));
    assert!(text.contains("THE SOFTWARE IS PROVIDED \"AS IS\""));
    let root = read("Cargo.toml");
    assert_eq!(
        value(&table(&root, "workspace.package"), "license"),
        Some("MIT")
    );
}

#[test]
fn members_inherit_the_workspace_package_fields() {
    let root = read("Cargo.toml");
    let workspace = table(&root, "workspace.package");
    for key in SHARED.iter().chain(&["version"]) {
        assert!(
            value(&workspace, key).is_some(),
            "[workspace.package] has no {key}"
        );
    }
    let members = value(&table(&root, "workspace"), "members").expect("members");
    let members: Vec<&str> = members
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .collect();
    assert!(members.len() >= 3, "{members:?}");
    let mut manifests: Vec<(String, String)> = members
        .iter()
        .map(|m| (format!("{m}/Cargo.toml"), read(&format!("{m}/Cargo.toml"))))
        .collect();
    manifests.push(("Cargo.toml".into(), root.clone()));
    for (path, text) in &manifests {
        let package = table(text, "package");
        for key in SHARED.iter().chain(&["version"]) {
            assert_eq!(
                value(&package, &format!("{key}.workspace")),
                Some("true"),
                "{path}: [package] must say `{key}.workspace = true`"
            );
        }
    }
}

#[test]
fn standalone_packages_state_the_workspace_values() {
    let root = read("Cargo.toml");
    let workspace = table(&root, "workspace.package");
    for path in ["bench/Cargo.toml", "fuzz/Cargo.toml", "interop/Cargo.toml"] {
        let package = read(path);
        let package = table(&package, "package");
        for key in SHARED {
            assert_eq!(
                value(&package, key),
                value(&workspace, key),
                "{path}: {key} differs from [workspace.package]"
            );
        }
    }
}
