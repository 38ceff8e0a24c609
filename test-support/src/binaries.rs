//! Finding the workspace's binaries (`waypass-server`, `waypass-client`,
//! the helper programs, the examples) for the end-to-end tests, built
//! from the current sources: a test never runs a stale binary.
//!
//! What it is not: a build system. It asks cargo, once per test process,
//! to bring the workspace's binaries up to date, and cargo decides what to
//! rebuild (nothing, when `make test` or a previous run built them).
//!
//! # Implementation notes
//!
//! The binaries live in the directory of the profile the tests were built
//! with (`target/debug` for `cargo test`): the test executable sits in its
//! `deps/` subdirectory, or `WAYPASS_BIN_DIR` names it (interop/, a
//! separate workspace with its own target directory, runs the root's
//! binaries that way). The first [`bin`] call runs `$CARGO build
//! --workspace --bins --examples` on the root workspace, with
//! `--target-dir` set to that directory's parent, under a [`OnceLock`] so
//! that concurrent tests wait for one build. `cargo test` has released its
//! build lock by the time tests run, so the nested cargo does not wait for
//! its parent. `WAYPASS_NO_BUILD=1` skips the build (for a read-only
//! checkout); the binaries must then exist.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The root of the waypass workspace (this crate's parent directory).
pub fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The directory that holds the workspace binaries the tests run.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WAYPASS_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile> dir")
        .to_path_buf()
}

/// The path of a workspace binary (`waypass-server`, `waypass-client`,
/// `hostile-keymaps`, `listen-peer`, ...), built from the
/// current sources first.
pub fn bin(name: &str) -> PathBuf {
    let dir = bin_dir();
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = BUILT.get_or_init(|| build(&dir)) {
        panic!("{e}");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: it is not a binary of the workspace",
        path.display()
    );
    path
}

/// `$CARGO build --workspace --bins --examples` into `bin_dir`'s target
/// directory, with the profile that directory is named after (the client's
/// and the scanner's examples are run as programs too).
fn build(bin_dir: &Path) -> Result<(), String> {
    if std::env::var_os("WAYPASS_NO_BUILD").is_some_and(|v| v == "1") {
        return Ok(());
    }
    let (Some(target_dir), Some(profile)) = (bin_dir.parent(), bin_dir.file_name()) else {
        return Err(format!("{}: not target/<profile>", bin_dir.display()));
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(workspace_root().join("Cargo.toml"))
        .args([
            "--workspace",
            "--bins",
            "--examples",
            "--quiet",
            "--target-dir",
        ])
        .arg(target_dir);
    match profile.to_str() {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        _ => {
            cmd.arg("--profile").arg(profile);
        }
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "building the workspace binaries failed ({cmd:?}, {}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
