//! Both servers answer both clients, byte for byte the same: the waypass
//! pair (`hello-server`, `hello-client`) and the wayland-rs pair
//! (`wlrs-hello-server`, `wlrs-hello-client`) speak one protocol. And the
//! waypass pair is the shorter code.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A server of the example, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin` on `socket` and waits for its first line ("listening").
fn start(bin: &str, socket: &Path) -> Server {
    let mut child = Command::new(bin)
        .arg(socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .expect("read the server's first line");
    assert_eq!(line.trim(), "listening", "{bin}'s first line");
    Server(child)
}

fn greet(bin: &str, socket: &Path, name: &str) -> String {
    let out = Command::new(bin)
        .arg(socket)
        .arg(name)
        .output()
        .unwrap_or_else(|e| panic!("run {bin}: {e}"));
    assert!(
        out.status.success(),
        "{bin}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

const SERVERS: [&str; 2] = [
    env!("CARGO_BIN_EXE_hello-server"),
    env!("CARGO_BIN_EXE_wlrs-hello-server"),
];
const CLIENTS: [&str; 2] = [
    env!("CARGO_BIN_EXE_hello-client"),
    env!("CARGO_BIN_EXE_wlrs-hello-client"),
];

#[test]
fn every_client_is_greeted_by_every_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, server) in SERVERS.iter().enumerate() {
        let socket = dir.path().join(format!("hello-{i}"));
        let _server = start(server, &socket);
        for client in CLIENTS {
            assert_eq!(
                greet(client, &socket, "alice"),
                "hello, alice!\n",
                "{client} against {server}"
            );
        }
    }
}

/// Lines that are code: not blank, not a comment.
fn code_lines(file: &str) -> usize {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/bin")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

#[test]
fn the_waypass_pair_is_shorter_than_the_wayland_rs_pair() {
    let ours = code_lines("hello-server.rs") + code_lines("hello-client.rs");
    let theirs = code_lines("wlrs-hello-server.rs") + code_lines("wlrs-hello-client.rs");
    println!("lines of code: waypass {ours}, wayland-rs 0.31 {theirs}");
    assert!(ours < theirs, "waypass {ours} lines, wayland-rs {theirs}");
}

/// Unmodified libwayland (`wayland-info`, from Debian's wayland-utils)
/// lists the waypass server's global after its built-in ones.
#[test]
fn wayland_info_lists_the_global() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hello");
    let _server = start(SERVERS[0], &socket);
    let out = Command::new("wayland-info")
        .env("WAYLAND_DISPLAY", &socket)
        .env_remove("WAYLAND_SOCKET")
        .stdin(Stdio::null())
        .output()
        .expect("run wayland-info (Debian's wayland-utils: `make deps-test` installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("interface: 'hello_v1'"))
        .unwrap_or_else(|| panic!("no hello_v1 in:\n{stdout}"));
    assert!(line.ends_with("version:  1, name:  5"), "{line}");
}
