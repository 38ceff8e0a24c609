//! The `waypass-client` library as a third-party crate meets it: the
//! command line's dependencies stay out of it, and the types its API speaks
//! are reachable from it alone.
//!
//! - `cargo tree -p waypass-client --no-default-features -e normal` lists
//!   no clap, env_logger or sha2, and with the default `cli` feature it
//!   does (so the check measures something).
//! - `waypass_client::{waypass_protocol, xkbcommon}` and the protocol types
//!   of its signatures (`Arg`, `Interface`, `Tracer`, `FdInfo`, ...) name
//!   the same types as the protocol crate's own paths.

use std::process::Command;

/// The normal (non-dev, non-build) dependency names of `waypass-client`.
fn dependency_names(default_features: bool) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "tree",
        "--offline",
        "-p",
        "waypass-client",
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
fn the_library_without_its_cli_feature_has_no_cli_dependencies() {
    let lib = dependency_names(false);
    let cli = dependency_names(true);
    for name in ["clap", "env_logger", "sha2"] {
        assert!(
            !has_crate(&lib, name),
            "{name} in the library's tree:\n{lib}"
        );
        assert!(has_crate(&cli, name), "{name} missing with `cli`:\n{cli}");
    }
    assert!(has_crate(&lib, "xkbcommon") && has_crate(&lib, "waypass-protocol"));
}

#[test]
fn protocol_and_xkbcommon_types_are_reachable_from_the_client_crate() {
    use waypass_client::{waypass_protocol, xkbcommon};

    // The re-exported crates are the ones the client's API was built with.
    let iface: &'static waypass_client::Interface =
        &waypass_protocol::protocols::wayland::wl_seat::INTERFACE;
    assert_eq!(iface.name, "wl_seat");
    let _arg: waypass_client::Arg<'_, std::os::fd::BorrowedFd<'_>> = waypass_client::Arg::Uint(1);
    let _tracer: Option<waypass_client::Tracer> = None;
    let _fixed = waypass_client::Fixed::from_f64(1.5);
    let seals: waypass_client::Seals = waypass_client::REQUIRED_SEALS;
    assert!(seals.contains(waypass_client::Seals::SHRINK));
    fn fd_info_of(k: &waypass_client::ReceivedKeymap) -> &waypass_client::FdInfo {
        k.fd_info()
    }
    let _ = fd_info_of;
    fn xkb_of(k: &waypass_client::ReceivedKeymap) -> &xkbcommon::xkb::Keymap {
        k.xkb_keymap()
    }
    let _ = xkb_of;
    // Error sources are nameable too.
    fn sources(e: &waypass_client::SessionError) -> Option<&waypass_client::ConnectionError> {
        match e {
            waypass_client::SessionError::Connection(c) => Some(c),
            _ => None,
        }
    }
    let _ = sources;
}
