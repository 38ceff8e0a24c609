//! End-to-end: the event-loop examples of waypass-client
//! (`client/examples/calloop_keymap.rs`, `tokio_keymap.rs`) follow the
//! keymap of the real `waypass-server` across a SIGHUP reload, each
//! driving the connection without blocking from its own loop.
//!
//! `cargo test --workspace` builds the examples into
//! `target/debug/examples/` before it runs the tests; alone, build them
//! with `cargo build -p waypass-client --examples`.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use nix::sys::signal::Signal;
use waypass_test_support::{bin, wait_timeout, Server, PATIENCE};

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

/// Runs example `name` against a server serving a keymap file, reloads the
/// server with another keymap, and checks the example printed both and
/// exited on its own after the second.
fn follows_a_reload(name: &str) {
    let dir = waypass_test_support::TempDir::new(name);
    let keymap = dir.join("keymap.xkb");
    fs::copy(asset("us.xkb"), &keymap).expect("copy us.xkb");
    let server = Server::start(&["--keymap", keymap.to_str().expect("utf-8 path")]);

    let mut example = Command::new(bin(&format!("examples/{name}")))
        .args([server.socket_arg(), "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the example");
    let (tx, lines) = mpsc::channel();
    let stdout = example.stdout.take().expect("stdout");
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr = example.stderr.take().expect("stderr");
    let mut next = |what: &str| -> String {
        lines.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            let _ = example.kill();
            let mut err = String::new();
            let _ = stderr.read_to_string(&mut err);
            panic!("{name} printed no line for {what}; stderr: {err}")
        })
    };

    assert_eq!(next("the first keymap"), "keymap 1: English (US)");
    fs::copy(asset("custom.xkb"), &keymap).expect("copy custom.xkb");
    server.signal(Signal::SIGHUP);
    assert_eq!(
        next("the reloaded keymap"),
        "keymap 2: English (US, waypass swapped A/S)"
    );

    // It stops by itself after the count it was given, server still up.
    let status = wait_timeout(&mut example, PATIENCE).expect("the example exits");
    assert!(status.success(), "{name} exited with {status:?}");
}

#[test]
fn calloop_example_follows_a_reload() {
    follows_a_reload("calloop_keymap");
}

#[test]
fn tokio_example_follows_a_reload() {
    follows_a_reload("tokio_keymap");
}
