//! What the `send` end-to-end tests share: client processes whose output
//! is read as it comes, one-line error checks, and in-process owners of a
//! name built on the library (for answers `listen` never gives: refusals,
//! slow progress).
//!
//! Included by `send_cli.rs` and `send_answers.rs` with `#[path]`, after
//! `mod common;`; not every test file uses every helper.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;

use waypass_client::{Broker, PeerChannel, PeerMessage};
pub use waypass_test_support::Running;
use waypass_test_support::{bin, run_with_patience, Server, TempDir, PATIENCE};

/// `waypass-client --socket S ARGS`.
pub fn client_cmd(server: &Server, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("waypass-client"));
    cmd.arg("--socket").arg(server.socket_arg()).args(args);
    cmd
}

/// A listener of `name`, once it has said it is registered.
pub fn listen(server: &Server, name: &str, extra: &[&str]) -> Running {
    listen_with(
        client_cmd(server, &[&["listen", name], extra].concat()),
        name,
    )
}

pub fn listen_with(cmd: Command, name: &str) -> Running {
    let mut listener = Running::spawn_command(cmd);
    listener.expect_exact(&format!("registered name {name}"));
    listener
}

/// Runs a client to completion with `stdin`.
pub fn run(server: &Server, args: &[&str], stdin: Stdio) -> Output {
    let mut cmd = client_cmd(server, args);
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_with_patience(cmd)
}

/// Runs a client with stdin from /dev/null.
pub fn client(server: &Server, args: &[&str]) -> Output {
    run(server, args, Stdio::null())
}

/// Runs a client with `bytes` on a pipe as stdin.
pub fn client_fed(server: &Server, args: &[&str], bytes: Vec<u8>) -> Output {
    let mut cmd = client_cmd(server, args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(PATIENCE)
        .unwrap_or_else(|_| panic!("{cmd:?} hung"))
        .expect("wait");
    writer.join().expect("writer");
    out
}

pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn assert_ok(out: &Output) {
    assert!(out.status.success(), "failed: {}", stderr_of(out));
}

/// Fails with exit 1 and exactly one stderr line containing `want`.
pub fn assert_one_line_error(out: &Output, want: &str) {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(want), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Pseudo-random bytes (xorshift64).
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// An in-process owner of `name` (our uid): registers it now, and handles
/// the first peer that connects with `handle` on a thread.
pub fn owner(
    server: &Server,
    name: &str,
    handle: impl FnOnce(&mut PeerChannel) + Send + 'static,
) -> thread::JoinHandle<()> {
    let mut broker = Broker::connect(Some(server.socket_arg())).expect("broker");
    broker.register_and_wait(name, PATIENCE).expect("register");
    thread::spawn(move || {
        let incoming = broker
            .next_peer(Some(PATIENCE))
            .expect("peer")
            .expect("a peer");
        let mut channel = incoming.peer.channel;
        handle(&mut channel);
        drop(broker);
    })
}

/// The next text or file offer: its serial, and the file's size (0 for a
/// text).
pub fn next_offer(channel: &mut PeerChannel) -> (u32, u64) {
    match channel.recv(Some(PATIENCE)).expect("recv") {
        Some(PeerMessage::Text { serial, .. }) => (serial, 0),
        Some(PeerMessage::File(file)) => (file.serial, file.size),
        other => panic!("expected an offer, got {other:?}"),
    }
}

/// Reads until the sender closes the channel.
pub fn until_closed(channel: &mut PeerChannel) {
    while let Ok(Some(_)) = channel.recv(Some(PATIENCE)) {}
}

/// A sparse file of `size` bytes named `name` in `dir`.
pub fn sparse(dir: &TempDir, name: &str, size: u64) -> String {
    let path = dir.join(name);
    fs::File::create(&path)
        .and_then(|f| f.set_len(size))
        .expect("sparse file");
    path.to_str().expect("utf-8").to_string()
}
