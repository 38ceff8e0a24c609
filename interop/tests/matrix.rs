//! The interop matrix against libwayland (the root package's tests cover
//! the wayland-rs rows with the pure-Rust backend):
//!
//! - a wayland-rs client on libwayland-client (`lw-client`) against
//!   `waypass-server`: the keymap with its contents checked, and `sync`;
//! - `waypass-client` against a wayland-rs compositor on libwayland-server
//!   (`lw-server`).
//!
//! Both sides run with `WAYLAND_DEBUG`, and the traces are compared: every
//! line of libwayland's trace and of ours parses with
//! `waypass_protocol::__private::parse_trace_line`, and what one side traces as sent
//! is what the other traces as received, in order (fd numbers and the
//! interface libwayland prints for an untyped `new_id` aside).
//!
//! The waypass binaries come from `WAYPASS_BIN_DIR` (the Makefile passes
//! its `target/debug`), else from this package's own target directory;
//! `waypass_test_support::bin` builds them from the current sources first.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use waypass_protocol::__private::{parse_trace_line, TraceLine};
use waypass_test_support::{bin, first_line, run_with_patience, TempDir};

/// A server process that printed its socket path; killed on drop.
struct Peer {
    child: Child,
    socket: String,
    stderr: PathBuf,
}

impl Peer {
    /// Spawns `cmd` with stderr to `stderr` and waits for the first stdout
    /// line (the socket path).
    fn spawn(mut cmd: Command, stderr: PathBuf) -> Peer {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).expect("stderr file"));
        let mut child = cmd.spawn().expect("spawn server");
        let Ok(socket) = first_line(&mut child) else {
            let _ = child.kill();
            panic!("{}", fs::read_to_string(&stderr).unwrap_or_default());
        };
        Peer {
            child,
            socket: socket.trim().to_string(),
            stderr,
        }
    }

    /// Stops the server and returns its stderr.
    fn stop(mut self) -> String {
        // lw-server stops when its stdin closes; waypass-server on SIGTERM.
        drop(self.child.stdin.take());
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` to completion with its output captured, killing it after
/// `PATIENCE`.
fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_with_patience(cmd)
}

/// Every line of a trace, parsed (panics on a line that does not parse).
fn parse_trace(who: &str, text: &str) -> Vec<TraceLine> {
    let lines: Vec<TraceLine> = text
        .lines()
        .map(|l| parse_trace_line(l).unwrap_or_else(|| panic!("{who}: not a trace line: {l:?}")))
        .collect();
    assert!(!lines.is_empty(), "{who}: empty trace");
    lines
}

/// A trace line without what legitimately differs between two processes:
/// fd numbers, and the interface of a `new_id` (libwayland prints
/// `[unknown]` for `wl_registry.bind`'s untyped one).
fn normalized(l: &TraceLine) -> String {
    let mut args = String::new();
    for (i, part) in l.args.split(", ").enumerate() {
        if i > 0 {
            args.push_str(", ");
        }
        if let Some(rest) = part.strip_prefix("new id ") {
            args.push_str("new id ");
            args.push_str(&rest[rest.rfind('@').unwrap_or(0)..]);
        } else if part.starts_with("fd ") {
            args.push_str("fd");
        } else {
            args.push_str(part);
        }
    }
    format!("{}@{}.{}({args})", l.interface, l.id, l.message)
}

/// The normalized lines of `trace` in one direction.
fn side(trace: &[TraceLine], sent: bool) -> Vec<String> {
    trace
        .iter()
        .filter(|l| l.sent == sent)
        .map(normalized)
        .collect()
}

/// Asserts that every line of `part` is in `whole`, as multisets: the
/// order of received events is not comparable, because libwayland traces
/// `wl_display` events when it reads them and the others when they are
/// dispatched.
fn assert_contained(what: &str, part: &[String], whole: &[String]) {
    let mut left = whole.to_vec();
    for line in part {
        let at = left
            .iter()
            .position(|w| w == line)
            .unwrap_or_else(|| panic!("{what}: {line:?} is missing from {whole:#?}"));
        left.swap_remove(at);
    }
}

/// Asserts that `part` occurs in `whole` in order (a subsequence).
fn assert_in_order(what: &str, part: &[String], whole: &[String]) {
    let mut it = whole.iter();
    for line in part {
        assert!(
            it.any(|w| w == line),
            "{what}: {line:?} not found in order in {whole:#?}"
        );
    }
}

fn us_keymap() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/us.xkb")
}

#[test]
fn libwayland_client_against_waypass_server() {
    let dir = TempDir::new("lw-client");
    let mut cmd = Command::new(bin("waypass-server"));
    cmd.arg("--socket")
        .arg(dir.join("wayland-lw"))
        .env("WAYLAND_DEBUG", "server")
        .env("RUST_LOG", "off");
    let server = Peer::spawn(cmd, dir.join("server.log"));

    let mut client = Command::new(env!("CARGO_BIN_EXE_lw-client"));
    client.arg(&server.socket).env("WAYLAND_DEBUG", "1");
    let out = run(client);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let client_trace = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{client_trace}");
    for expected in [
        "format=1",
        "starts=true",
        "layout=English (US)",
        "seat=seat0",
        "repeat=[(0, 25, 600)]",
    ] {
        assert!(
            stdout.lines().any(|l| l == expected),
            "{expected} in {stdout}"
        );
    }
    let field = |k: &str| -> usize {
        let line = stdout.lines().find_map(|l| l.strip_prefix(k)).expect(k);
        line.parse().expect(k)
    };
    assert_eq!(
        field("size="),
        field("text_len=") + 1,
        "size counts the NUL"
    );
    assert!(field("syncs=") >= 3);

    let ours = parse_trace("waypass-server", &server.stop());
    let theirs = parse_trace("libwayland client", &client_trace);
    // What libwayland sent, we received, and the other way round.
    assert_in_order("requests", &side(&theirs, true), &side(&ours, false));
    assert_eq!(side(&theirs, true).len(), side(&ours, false).len());
    assert_contained("events", &side(&theirs, false), &side(&ours, true));
    assert_eq!(side(&theirs, false).len(), side(&ours, true).len());
    assert!(side(&theirs, false)
        .iter()
        .any(|l| l.starts_with("wl_keyboard@4.keymap(1, fd, ")));
}

#[test]
fn waypass_client_against_libwayland_server() {
    let dir = TempDir::new("lw-server");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lw-server"));
    cmd.arg(dir.path())
        .arg(us_keymap())
        .env("WAYLAND_DEBUG", "1");
    let server = Peer::spawn(cmd, dir.join("server.log"));

    let mut client = Command::new(bin("waypass-client"));
    client
        .args(["--socket", &server.socket, "keymap", "--json"])
        .env("WAYLAND_DEBUG", "1")
        .env("RUST_LOG", "off");
    let out = run(client);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let client_trace = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stdout}\n{client_trace}");
    assert!(stdout.contains("\"English (US)\""), "{stdout}");
    assert!(
        stdout.contains("\"seat\": \"wlrs-seat\"") || stdout.contains("\"seat\":\"wlrs-seat\""),
        "{stdout}"
    );

    let dump = run({
        let mut c = Command::new(bin("waypass-client"));
        c.args(["--socket", &server.socket, "keymap", "--dump"]);
        c
    });
    assert!(dump.status.success());
    assert_eq!(
        dump.stdout,
        fs::read(us_keymap()).unwrap(),
        "--dump byte for byte"
    );

    let theirs = parse_trace("libwayland server", &server.stop());
    let ours = parse_trace("waypass-client", &client_trace);
    assert_in_order("requests", &side(&ours, true), &side(&theirs, false));
    assert_contained("events", &side(&ours, false), &side(&theirs, true));
    assert!(side(&ours, false)
        .iter()
        .any(|l| l.starts_with("wl_keyboard@") && l.contains(".keymap(1, fd, ")));
}
