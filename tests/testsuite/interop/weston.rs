//! Our client against a real compositor: Weston (Debian's `weston`, which
//! `make deps` installs) on its X11 backend inside Xvfb, so that it has a
//! seat with a keyboard. Weston 10 differs from waypass-server in the ways
//! WAYLAND.md lists: it sends `repeat_info` before `keymap` (seen in a
//! `WAYLAND_DEBUG=client` trace), and seals its keymap memfd without
//! `F_SEAL_SEAL`. The client must take both as they come and report what it
//! got; the test does not insist on either, so a newer Weston may differ.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use waypass_test_support::{eventually, run_client, TempDir};

/// A child process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Xvfb on a display number it picks itself (`-displayfd`).
fn xvfb() -> (Killed, String) {
    let mut child = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-nolisten",
            "tcp",
            "-screen",
            "0",
            "640x480x24",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb (make deps installs xvfb)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("Xvfb prints its display number");
    let display = format!(":{}", line.trim());
    assert!(line.trim().parse::<u32>().is_ok(), "Xvfb said {line:?}");
    (Killed(child), display)
}

/// Starts Weston with its socket `wl-test` in `runtime`.
fn weston(runtime: &Path, display: &str) -> Killed {
    let log = fs::File::create(runtime.join("weston.log")).expect("log");
    let child = Command::new("weston")
        .args([
            "--backend=x11-backend.so",
            "--use-pixman",
            "--shell=kiosk-shell.so",
            "--no-config",
            "--idle-time=0",
            "--socket=wl-test",
        ])
        .env("XDG_RUNTIME_DIR", runtime)
        .env("DISPLAY", display)
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("WAYLAND_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("weston (make deps installs weston)");
    Killed(child)
}

#[test]
fn our_client_reads_westons_keymap() {
    let runtime = TempDir::new("weston");
    fs::set_permissions(runtime.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let (_x, display) = xvfb();
    let _weston = weston(runtime.path(), &display);
    let socket = runtime.join("wl-test");
    let log = || fs::read_to_string(runtime.join("weston.log")).unwrap_or_default();
    assert!(
        eventually(|| socket.exists()),
        "weston did not start:\n{}",
        log()
    );

    let socket = socket.to_str().unwrap();
    let out = run_client(&["--socket", socket, "keymap", "--json", "--keys", "16,30"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\nweston:\n{}", log());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(report["format"], "xkb_v1");
    assert_eq!(report["layouts"], serde_json::json!(["English (US)"]));
    assert_eq!(report["keys"][0]["plain"]["keysym"], "q");
    assert_eq!(report["keys"][1]["shift"]["utf8"], "A");
    // Weston sent repeat_info (before the keymap) and a write-sealed memfd;
    // whatever seals it uses, the client reports them rather than insisting.
    assert!(report["repeat"]["rate"].as_i64().is_some(), "{report}");
    assert_eq!(report["fd"]["memfd"], true, "{report}");
    let seals = report["fd"]["seals"].as_array().expect("seals listed");
    assert!(seals.contains(&serde_json::json!("write")), "{report}");

    // The text as received parses on its own and is what the size says.
    let dump = run_client(&["--socket", socket, "keymap", "--dump"]);
    assert!(dump.status.success());
    assert_eq!(
        dump.stdout.len() as u64 + 1,
        report["size"].as_u64().unwrap()
    );
    assert!(String::from_utf8_lossy(&dump.stdout).starts_with("xkb_keymap {"));
}
