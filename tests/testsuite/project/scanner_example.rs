//! A protocol of one's own, from the outside: the `hello_server` and
//! `hello_client` examples of waypass-protocol get their tables for a
//! custom global from `protocol/examples/hello/hello-v1.xml` through
//! `waypass_scanner::interfaces!`. The client greets the server through
//! it, and `wayland-info` (libwayland, unmodified) lists the global.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use waypass_test_support::{bin, run_with_patience, TempDir};

/// The example server, killed on drop.
struct HelloServer(Child);

impl Drop for HelloServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(socket: &std::path::Path) -> HelloServer {
    let mut child = Command::new(bin("examples/hello_server"))
        .arg(socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn hello_server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    assert!(line.contains("listening on"), "{line:?}");
    HelloServer(child)
}

#[test]
fn the_generated_client_and_server_greet_each_other() {
    let dir = TempDir::new("hello");
    let socket = dir.join("hello.sock");
    let _server = start(&socket);
    let mut cmd = Command::new(bin("examples/hello_client"));
    cmd.arg(&socket)
        .arg("bob")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_patience(cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello, bob\n");
}

#[test]
fn wayland_info_lists_the_custom_global() {
    let dir = TempDir::new("hello-info");
    let socket = dir.join("hello.sock");
    let _server = start(&socket);
    let mut cmd = Command::new("wayland-info");
    cmd.env("WAYLAND_DISPLAY", &socket)
        .env_remove("WAYLAND_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run_with_patience(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("interface: 'hello_v1'"), "{stdout}");
}
