//! The `waypass-client` and `waypass-server` libraries as a third-party
//! crate meets them: the command line's dependencies stay out, and the
//! types the client's API speaks are reachable from it alone.
//!
//! - `cargo tree -p waypass-client --no-default-features -e normal` lists
//!   no clap, env_logger or sha2, and `-p waypass-server` no clap,
//!   env_logger or waypass-cli-docs; with the default `cli` feature they
//!   do (so the check measures something). An embedding program builds a
//!   `waypass_server::ServerConfig` and starts it with
//!   `waypass_server::ServerBuilder` (server/tests/embed.rs).
//! - `waypass_client::{waypass_protocol, xkbcommon}` and the protocol types
//!   of its signatures (`ObjectId`, `Interface`, `Tracer`, `FdInfo`, ...) name
//!   the same types as the protocol crate's own paths.

use std::process::Command;

/// The normal (non-dev, non-build) dependency names of `package`.
fn dependency_names(package: &str, default_features: bool) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "tree",
        "--offline",
        "-p",
        package,
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
fn the_client_library_without_its_cli_feature_has_no_cli_dependencies() {
    no_cli_dependencies("waypass-client", &["clap", "env_logger", "sha2"]);
    let lib = dependency_names("waypass-client", false);
    assert!(has_crate(&lib, "xkbcommon") && has_crate(&lib, "waypass-protocol"));
}

#[test]
fn the_server_library_without_its_cli_feature_has_no_cli_dependencies() {
    let cli_only = ["clap", "env_logger", "waypass-cli-docs"];
    no_cli_dependencies("waypass-server", &cli_only);
    let lib = dependency_names("waypass-server", false);
    assert!(has_crate(&lib, "calloop") && has_crate(&lib, "waypass-protocol"));
}

/// `package` without `cli` has none of `names`, and with it has them all.
fn no_cli_dependencies(package: &str, names: &[&str]) {
    let lib = dependency_names(package, false);
    let cli = dependency_names(package, true);
    for name in names {
        assert!(!has_crate(&lib, name), "{name} in {package}'s tree:\n{lib}");
        assert!(has_crate(&cli, name), "{name} missing with `cli`:\n{cli}");
    }
}

#[test]
fn protocol_and_xkbcommon_types_are_reachable_from_the_client_crate() {
    use waypass_client::{waypass_protocol, xkbcommon};

    // The re-exported crates are the ones the client's API was built with.
    let iface: &'static waypass_client::Interface =
        &waypass_protocol::protocols::wayland::wl_seat::INTERFACE;
    assert_eq!(iface.name, "wl_seat");
    let _id: waypass_client::ObjectId<waypass_protocol::protocols::wayland::wl_seat::WlSeat> =
        waypass_client::ObjectId::from_raw(3);
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
