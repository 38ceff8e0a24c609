//! The `waypass-server` library as an embedding program meets it: with its
//! default `cli` feature off, the command line's dependencies stay out.
//!
//! - `cargo tree -p waypass-server --no-default-features -e normal` lists
//!   no clap, env_logger or waypass-cli-docs, and with the default `cli`
//!   feature it does (so the check measures something). Such a program
//!   builds a `waypass_server::ServerConfig` and calls `waypass_server::run`.

use std::process::Command;

/// The normal (non-dev, non-build) dependency names of `waypass-server`.
fn dependency_names(default_features: bool) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "tree",
        "--offline",
        "-p",
        "waypass-server",
        "-e",
        "normal",
        "--prefix",
        "none",
        "--format",
        "{p}",
    ]);
    if !default_features {
        cmd.arg("--no-default-features");
    }
    let out = cmd.output().expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn has_crate(tree: &str, name: &str) -> bool {
    tree.lines()
        .any(|line| line.split_whitespace().next() == Some(name))
}

#[test]
fn the_server_library_without_its_cli_feature_has_no_cli_dependencies() {
    let lib = dependency_names(false);
    let cli = dependency_names(true);
    for name in ["clap", "env_logger", "waypass-cli-docs"] {
        assert!(
            !has_crate(&lib, name),
            "{name} in the library's tree:\n{lib}"
        );
        assert!(has_crate(&cli, name), "{name} missing with `cli`:\n{cli}");
    }
    assert!(has_crate(&lib, "calloop") && has_crate(&lib, "waypass-protocol"));
}
