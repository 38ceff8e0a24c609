//! Every protocol XML of ours or vendored here passes libwayland's own
//! `wayland-scanner --strict` (from libwayland-dev, which `make deps`
//! installs): the DTD check that C projects run on their protocols.
//!
//! `wayland.xml` is left out: it is upstream's newest, and it uses
//! attributes (`frozen`, `deprecated-since`) newer than the DTD of the
//! wayland-scanner Debian 12 ships.

use std::path::Path;
use std::process::Command;

fn strict(file: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let out = Command::new("wayland-scanner")
        .args(["--strict", "server-header"])
        .arg(&path)
        .arg("/dev/null")
        .output()
        .unwrap_or_else(|e| panic!("wayland-scanner (libwayland-dev; `make deps`): {e}"));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_broker_protocol_passes_wayland_scanner_strict() {
    strict("waypass-broker-v1.xml");
}

#[test]
fn the_vendored_clipboard_protocols_pass_wayland_scanner_strict() {
    strict("ext-data-control-v1.xml");
    strict("wlr-data-control-unstable-v1.xml");
}

#[test]
fn the_example_protocol_passes_wayland_scanner_strict() {
    strict("../examples/custom-protocol/protocol/hello-v1.xml");
}
