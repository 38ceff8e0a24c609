//! End-to-end: `waypass-client keymap --watch --json` against the real
//! `waypass-server` sees the new keymap after the server reloads on
//! SIGHUP, and exits 0 when the server goes away.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use nix::sys::signal::Signal;
use serde_json::Value;
use waypass_test_support::{bin, wait_timeout, Server, PATIENCE};

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

#[test]
fn watch_sees_the_reloaded_keymap_then_ends_with_the_server() {
    // The server serves a copy, so the test can change it before SIGHUP.
    let dir = waypass_test_support::TempDir::new("watch");
    let keymap = dir.join("keymap.xkb");
    fs::copy(asset("us.xkb"), &keymap).expect("copy us.xkb");
    let mut server = Server::start(&["--keymap", keymap.to_str().expect("utf-8 path")]);

    let mut client = Command::new(bin("waypass-client"))
        .args([
            "--socket",
            server.socket_arg(),
            "keymap",
            "--watch",
            "--json",
        ])
        .args(["--keys", "30,31"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let (tx, lines) = mpsc::channel();
    let stdout = client.stdout.take().expect("stdout");
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| -> Value {
        let line = lines
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no JSON line for {what}"));
        serde_json::from_str(&line).expect("JSON line")
    };

    let first = next("the first keymap");
    assert_eq!(first["layouts"], serde_json::json!(["English (US)"]));
    assert_eq!(first["keys"][0]["plain"]["keysym"], "a");

    fs::copy(asset("custom.xkb"), &keymap).expect("copy custom.xkb");
    server.signal(Signal::SIGHUP);
    let second = next("the reloaded keymap");
    assert_eq!(
        second["layouts"],
        serde_json::json!(["English (US, waypass swapped A/S)"])
    );
    assert_eq!(second["keys"][0]["plain"]["keysym"], "s");
    assert_eq!(second["keys"][1]["plain"]["keysym"], "a");

    server.signal(Signal::SIGTERM);
    server.wait();
    let status = wait_timeout(&mut client, PATIENCE).expect("client exits with the server");
    let mut err = String::new();
    if let Some(mut stderr) = client.stderr.take() {
        use std::io::Read;
        let _ = stderr.read_to_string(&mut err);
    }
    assert!(status.success(), "client status {status:?}, stderr: {err}");
}
