//! `contrib/systemd`'s units are ones systemd accepts: `systemd-analyze
//! verify` passes on both (with `ExecStart` pointed at the binary this
//! test was built with, since `~/.cargo/bin` may hold none), and they
//! agree with each other and with the server (the socket unit listens on a
//! path; the service passes no `--socket` that could differ from it).
//! `tests/testsuite/server/activation.rs` runs the server the way they start it.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use waypass_test_support::{bin, run_with_patience, TempDir};

fn unit(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/systemd")
        .join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The values of `key=` lines of a unit.
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}=");
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

#[test]
fn systemd_analyze_verify_accepts_both_units() {
    let dir = TempDir::new("contrib-systemd");
    let service = unit("waypass.service");
    let exec = values(&service, "ExecStart");
    assert_eq!(exec, ["%h/.cargo/bin/waypass-server"], "{service}");
    let local = service.replace(exec[0], bin("waypass-server").to_str().unwrap());
    fs::write(dir.join("waypass.service"), local).unwrap();
    fs::write(dir.join("waypass.socket"), unit("waypass.socket")).unwrap();
    let mut cmd = Command::new("systemd-analyze");
    cmd.args([
        "verify",
        "--man=no",
        "./waypass.socket",
        "./waypass.service",
    ])
    .current_dir(dir.path())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let out = run_with_patience(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Unknown"), "{stderr}");
}

#[test]
fn the_socket_unit_listens_on_a_path_the_service_does_not_override() {
    let socket = unit("waypass.socket");
    assert_eq!(values(&socket, "ListenStream"), ["%t/wayland-1"]);
    assert!(values(&socket, "Accept").iter().all(|v| *v == "no"));
    let service = unit("waypass.service");
    assert!(!service.contains("--socket"), "{service}");
    assert_eq!(values(&service, "Requires"), ["waypass.socket"]);
}
