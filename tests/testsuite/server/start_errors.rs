//! End-to-end: start-up errors as a newcomer meets them. Each is one line,
//! `<bin>: error: <cause chain>` for both binaries, with no log line before
//! it (even at RUST_LOG=info), and names the real cause: the missing
//! directory of a `--socket`, or an unknown layout with a hint on where
//! the valid names are.

use std::fs;
use std::process::{Command, Output, Stdio};

use waypass_test_support::{bin, run_client_with, run_with_patience, TempDir};

/// Runs `waypass-server ARGS` with `RUST_LOG=log`, expecting a failure.
fn server_fails(args: &[&str], log: &str) -> String {
    let mut cmd = Command::new(bin("waypass-server"));
    cmd.args(args)
        .env("RUST_LOG", log)
        .env_remove("XKB_LOG_LEVEL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out: Output = run_with_patience(cmd);
    assert!(!out.status.success(), "expected a failure: {out:?}");
    assert!(out.stdout.is_empty(), "no socket path printed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_one_error_line(err: &str, bin: &str) {
    assert_eq!(err.lines().count(), 1, "exactly one line:\n{err}");
    assert!(err.starts_with(&format!("{bin}: error: ")), "{err}");
}

#[test]
fn a_socket_in_a_missing_directory_names_the_directory() {
    let dir = TempDir::new("start-nodir");
    let missing = dir.join("no-such-dir");
    let socket = missing.join("s");
    let err = server_fails(&["--socket", socket.to_str().unwrap()], "info");
    assert_one_error_line(&err, "waypass-server");
    assert_eq!(
        err.trim_end(),
        format!(
            "waypass-server: error: directory {} does not exist",
            missing.display()
        )
    );
    assert!(!missing.exists(), "nothing was created");
}

#[test]
fn an_unknown_layout_is_one_line_with_a_hint() {
    let dir = TempDir::new("start-layout");
    let socket = dir.join("s");
    let socket = socket.to_str().unwrap();
    let err = server_fails(&["--socket", socket, "--layout", "xx"], "info");
    assert_one_error_line(&err, "waypass-server");
    assert!(!err.contains("xkbcommon: ERROR"), "{err}");
    for needle in [
        "layout=xx",
        "localectl list-x11-keymap-layouts",
        "/rules/evdev.lst",
    ] {
        assert!(err.contains(needle), "{needle} in {err}");
    }

    // xkbcommon's own reasons are there for whoever asks for debug logs.
    let err = server_fails(&["--socket", socket, "--layout", "xx"], "debug");
    assert!(err.contains("xkbcommon: ERROR"), "{err}");
    assert!(err
        .lines()
        .last()
        .unwrap()
        .starts_with("waypass-server: error: "));
}

#[test]
fn no_info_line_before_a_start_up_failure() {
    let dir = TempDir::new("start-noinfo");
    let socket = dir.join("s");
    fs::write(&socket, b"not a socket").unwrap();
    let err = server_fails(&["--socket", socket.to_str().unwrap()], "info");
    assert_one_error_line(&err, "waypass-server");
    assert!(err.contains("exists and is not a socket"), "{err}");
}

#[test]
fn both_binaries_use_one_error_style() {
    let dir = TempDir::new("start-style");
    let socket = dir.join("nobody-here");
    let out = run_client_with(&["--socket", socket.to_str().unwrap(), "keymap"], |cmd| {
        cmd.env("RUST_LOG", "info");
    });
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_one_error_line(&err, "waypass-client");

    fs::create_dir(&socket).unwrap();
    let err = server_fails(&["--socket", socket.to_str().unwrap()], "info");
    assert_one_error_line(&err, "waypass-server");
}
