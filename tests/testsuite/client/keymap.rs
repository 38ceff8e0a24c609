//! End-to-end: the real `waypass-client` binary against the real
//! `waypass-server` process, asserting keymap contents (us, fr, de, us,fr
//! with `--layout-index`), `--dump` byte for byte, the JSON and summary
//! outputs, the ways to find the server (`--socket`, `WAYLAND_DISPLAY`
//! under `XDG_RUNTIME_DIR`, `WAYLAND_SOCKET`), and the missing-server error.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Output;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use serde_json::Value;
use waypass_test_support::{run_client, run_client_with, Server, TempDir};

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "client failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

/// Runs `waypass-client --socket S keymap --json <extra>` and parses the one line.
fn json(server: &Server, extra: &[&str]) -> Value {
    let mut args = vec!["--socket", server.socket_arg(), "keymap", "--json"];
    args.extend_from_slice(extra);
    let text = stdout(&run_client(&args));
    assert_eq!(text.lines().count(), 1, "one JSON line: {text}");
    serde_json::from_str(text.trim_end()).expect("valid JSON")
}

/// The keysym of evdev key `code` in the report, plain or with `"shift"`.
fn keysym(report: &Value, code: u64, state: &str) -> String {
    let key = report["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .find(|k| k["evdev"] == code)
        .unwrap_or_else(|| panic!("key {code} reported: {report}"));
    key[state]["keysym"]
        .as_str()
        .expect("keysym string")
        .to_string()
}

#[test]
fn us_keys_and_layout_name() {
    let server = Server::start(&["--layout", "us"]);
    let r = json(&server, &[]);
    assert_eq!(r["layouts"], serde_json::json!(["English (US)"]));
    assert_eq!(keysym(&r, 16, "plain"), "q");
    assert_eq!(keysym(&r, 17, "plain"), "w");
    assert_eq!(keysym(&r, 21, "plain"), "y");
    assert_eq!(keysym(&r, 16, "shift"), "Q");
    let q = &r["keys"][0];
    assert_eq!(q["evdev"], 16);
    assert_eq!(q["plain"]["utf8"], "q");
    assert_eq!(q["shift"]["utf8"], "Q");
}

#[test]
fn json_has_the_issue_fields() {
    let server = Server::start(&["--layout", "us"]);
    let r = json(&server, &[]);
    assert_eq!(r["seat"], "seat0");
    assert_eq!(r["repeat"], serde_json::json!({"rate": 25, "delay": 600}));
    assert_eq!(r["format"], "xkb_v1");
    assert!(r["size"].as_u64().expect("size") > 1000);
    assert_eq!(r["fd"]["memfd"], true);
    let seals: Vec<&str> = r["fd"]["seals"]
        .as_array()
        .expect("seals")
        .iter()
        .map(|s| s.as_str().expect("seal name"))
        .collect();
    for seal in ["shrink", "grow", "write"] {
        assert!(seals.contains(&seal), "{seal} in {seals:?}");
    }
    let min = r["keycodes"]["min"].as_u64().expect("min");
    let max = r["keycodes"]["max"].as_u64().expect("max");
    assert!(min >= 8 && max > min, "{min}..{max}");
    let codes: Vec<u64> = r["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["evdev"].as_u64().expect("evdev"))
        .collect();
    assert_eq!(codes, [16, 17, 21, 44, 30, 50, 2]);
}

#[test]
fn french_keys() {
    let server = Server::start(&["--layout", "fr"]);
    let r = json(&server, &[]);
    assert_eq!(r["layouts"], serde_json::json!(["French"]));
    assert_eq!(keysym(&r, 16, "plain"), "a");
    assert_eq!(keysym(&r, 17, "plain"), "z");
    assert_eq!(keysym(&r, 30, "plain"), "q");
    assert_eq!(keysym(&r, 50, "plain"), "comma");
    assert_eq!(keysym(&r, 2, "plain"), "ampersand");
    assert_eq!(keysym(&r, 2, "shift"), "1");
}

#[test]
fn german_keys() {
    let server = Server::start(&["--layout", "de"]);
    let r = json(&server, &[]);
    assert_eq!(r["layouts"], serde_json::json!(["German"]));
    assert_eq!(keysym(&r, 21, "plain"), "z");
    assert_eq!(keysym(&r, 44, "plain"), "y");
}

#[test]
fn second_layout_with_layout_index() {
    let server = Server::start(&["--layout", "us,fr"]);
    let first = json(&server, &[]);
    assert_eq!(
        first["layouts"],
        serde_json::json!(["English (US)", "French"])
    );
    assert_eq!(keysym(&first, 16, "plain"), "q");
    let second = json(&server, &["--layout-index", "1"]);
    assert_eq!(second["layout_index"], 1);
    assert_eq!(keysym(&second, 16, "plain"), "a");
    assert_eq!(keysym(&second, 50, "plain"), "comma");

    let out = run_client(&[
        "--socket",
        server.socket_arg(),
        "keymap",
        "--layout-index",
        "2",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("layout index 2"), "{err}");
}

#[test]
fn keys_option_selects_evdev_codes() {
    let server = Server::start(&["--layout", "us"]);
    let r = json(&server, &["--keys", "16,17,21"]);
    let codes: Vec<u64> = r["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["evdev"].as_u64().expect("evdev"))
        .collect();
    assert_eq!(codes, [16, 17, 21]);
}

#[test]
fn dump_is_the_keymap_file_byte_for_byte() {
    let file = asset("custom.xkb");
    let server = Server::start(&["--keymap", file.to_str().expect("utf-8 path")]);
    let out = run_client(&["--socket", server.socket_arg(), "keymap", "--dump"]);
    let dumped = stdout(&out);
    assert_eq!(dumped.as_bytes(), fs::read(&file).expect("read asset"));
    // And the swap is visible in the parsed keymap: A gives s, S gives a.
    let r = json(&server, &["--keys", "30,31"]);
    assert_eq!(keysym(&r, 30, "plain"), "s");
    assert_eq!(keysym(&r, 31, "plain"), "a");
}

#[test]
fn summary_names_seat_repeat_fd_layouts_and_keys() {
    let server = Server::start(&["--layout", "fr"]);
    let text = stdout(&run_client(&["--socket", server.socket_arg(), "keymap"]));
    for needle in [
        "seat:      seat0",
        "25 per second after 600 ms",
        "xkb_v1",
        "memfd",
        "0: French",
        "Q (evdev 16)",
        "ampersand \"&\"",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
}

#[test]
fn require_seals_accepts_our_sealed_memfd() {
    let server = Server::start(&["--layout", "us"]);
    let r = json(&server, &["--require-seals"]);
    assert_eq!(r["fd"]["memfd"], true);
}

#[test]
fn missing_server_is_a_one_line_error() {
    let dir = TempDir::new("nosrv");
    let socket = dir.join("wayland-nobody");
    let out = run_client(&["--socket", socket.to_str().expect("utf-8 path"), "keymap"]);
    assert_eq!(out.status.code(), Some(1), "exit status {:?}", out.status);
    let err = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("waypass-client: error: cannot reach a wayland compositor"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn connects_through_xdg_runtime_dir_and_wayland_display() {
    let server = Server::start(&["--layout", "de"]);
    let runtime = server.dir.path().to_str().expect("utf-8 path").to_string();
    let env_only = run_client_with(&["keymap", "--json"], |cmd| {
        cmd.env("XDG_RUNTIME_DIR", &runtime)
            .env("WAYLAND_DISPLAY", "wayland-test")
            .env_remove("WAYLAND_SOCKET");
    });
    let r: Value = serde_json::from_str(stdout(&env_only).trim_end()).expect("JSON");
    assert_eq!(r["layouts"], serde_json::json!(["German"]));
    // --socket NAME is also looked up under XDG_RUNTIME_DIR.
    let by_name = run_client_with(&["--socket", "wayland-test", "keymap", "--json"], |cmd| {
        cmd.env("XDG_RUNTIME_DIR", &runtime)
            .env("WAYLAND_DISPLAY", "wayland-elsewhere")
            .env_remove("WAYLAND_SOCKET");
    });
    assert!(stdout(&by_name).contains("\"German\""));
}

#[test]
fn connects_through_wayland_socket() {
    let server = Server::start(&["--layout", "fr"]);
    let stream = UnixStream::connect(&server.socket).expect("connect");
    let fd = stream.as_raw_fd();
    let out = run_client_with(&["keymap", "--json"], |cmd| {
        cmd.env("WAYLAND_SOCKET", fd.to_string())
            .env("WAYLAND_DISPLAY", "/nonexistent/wayland-nobody")
            .env_remove("XDG_RUNTIME_DIR");
        // SAFETY: the closure runs in the child between fork and exec; it
        // only calls fcntl(2), which is async-signal-safe, on an fd that is
        // open in the child (inherited from the parent, where `stream`
        // outlives the spawn).
        unsafe {
            cmd.pre_exec(move || {
                let borrowed = std::os::fd::BorrowedFd::borrow_raw(fd);
                fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::empty()))?;
                Ok(())
            });
        }
    });
    let r: Value = serde_json::from_str(stdout(&out).trim_end()).expect("JSON");
    assert_eq!(r["layouts"], serde_json::json!(["French"]));
    drop(stream);
}
