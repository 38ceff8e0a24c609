//! End-to-end: the real `waypass-client` binary against a wayland-rs test
//! compositor running in this process (`waypass_test_support::wlrs_server`):
//! interop with an unsealed, non-memfd keymap fd, and the no-keyboard and
//! bad-size errors.

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;
use waypass_test_support::wlrs_server::{keymap_file, SeatPlan, WlrsServer};
use waypass_test_support::{run_client, TempDir};

fn us_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/us.xkb");
    fs::read_to_string(path).expect("read assets/us.xkb")
}

/// Asserts a clean failure: exit status 1 (no signal, no panic), one line
/// on stderr with the client's prefix, containing `needle`.
fn assert_one_line_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(1), "exit status {:?}", out.status);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("waypass-client: error: "), "{err}");
    assert!(err.contains(needle), "{needle:?} in {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn interop_unsealed_plain_file_keymap() {
    let dir = TempDir::new("wlrs-interop");
    let text = us_text();
    let plan = keymap_file(&dir.join("keymap.xkb"), &text);
    let size = plan.size;
    let server = WlrsServer::start(dir.path(), SeatPlan::keyboard(plan));
    let out = run_client(&["--socket", server.socket_arg(), "keymap", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(r["fd"]["memfd"], false);
    assert_eq!(r["fd"]["seals"], serde_json::json!([]));
    assert_eq!(r["seat"], "wlrs-seat");
    assert_eq!(r["repeat"], serde_json::json!({"rate": 25, "delay": 600}));
    assert_eq!(r["size"], size);
    assert_eq!(r["layouts"], serde_json::json!(["English (US)"]));
    assert_eq!(r["keys"][0]["plain"]["keysym"], "q");

    let dump = run_client(&["--socket", server.socket_arg(), "keymap", "--dump"]);
    assert!(dump.status.success());
    assert_eq!(dump.stdout, text.as_bytes());

    let strict = run_client(&["--socket", server.socket_arg(), "keymap", "--require-seals"]);
    assert_one_line_error(&strict, "seals");
}

#[test]
fn seat_without_keyboard() {
    let dir = TempDir::new("wlrs-nokbd");
    let server = WlrsServer::start(dir.path(), SeatPlan::pointer_only());
    let out = run_client(&[
        "--socket",
        server.socket_arg(),
        "keymap",
        "--timeout-ms",
        "300",
    ]);
    assert_one_line_error(&out, "has no keyboard");
}

#[test]
fn size_zero_is_refused() {
    let dir = TempDir::new("wlrs-size0");
    let mut plan = keymap_file(&dir.join("keymap.xkb"), &us_text());
    plan.size = 0;
    let server = WlrsServer::start(dir.path(), SeatPlan::keyboard(plan));
    let out = run_client(&["--socket", server.socket_arg(), "keymap"]);
    assert_one_line_error(&out, "bad keymap size 0");
}

#[test]
fn size_beyond_the_file_is_refused() {
    let dir = TempDir::new("wlrs-size-big");
    let mut plan = keymap_file(&dir.join("keymap.xkb"), &us_text());
    let file_size = plan.size;
    plan.size += 4096 * 4;
    let server = WlrsServer::start(dir.path(), SeatPlan::keyboard(plan.clone()));
    let out = run_client(&["--socket", server.socket_arg(), "keymap", "--json"]);
    assert_one_line_error(
        &out,
        &format!(
            "bad keymap size {}: the file holds {file_size} bytes",
            plan.size
        ),
    );
}

#[test]
fn format_other_than_xkb_v1_is_refused() {
    let dir = TempDir::new("wlrs-format");
    let mut plan = keymap_file(&dir.join("keymap.xkb"), &us_text());
    plan.format = 0;
    let server = WlrsServer::start(dir.path(), SeatPlan::keyboard(plan));
    let out = run_client(&["--socket", server.socket_arg(), "keymap"]);
    assert_one_line_error(&out, "unsupported keymap format 0");
}
