//! What the clipboard tests share: running `waypass-client`, `wl-copy` and
//! `wl-paste` against a socket, feeding a copy its input, and waiting for
//! something to become true.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{bin, run_with_patience, wait_timeout, PATIENCE};

/// `waypass-client --socket SOCKET ARGS`.
pub fn client(socket: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("waypass-client"));
    cmd.arg("--socket").arg(socket).args(args);
    cmd
}

/// `wl-copy`/`wl-paste` (or any libwayland client) pointed at `socket`.
pub fn wl(socket: &Path, program: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("WAYLAND_DISPLAY", socket)
        .env_remove("WAYLAND_SOCKET");
    if let Some(dir) = socket.parent() {
        cmd.env("XDG_RUNTIME_DIR", dir);
    }
    cmd
}

/// Runs a copy command with `input` on stdin until it has set the
/// selection. Both copiers go to the background; their output goes
/// nowhere, so that nothing waits for the background process.
pub fn copy_with(mut cmd: Command, input: &[u8]) {
    let mut child = spawn_with_input(&mut cmd, input);
    let status = wait_timeout(&mut child, PATIENCE).expect("copy hung");
    assert!(status.success(), "{cmd:?}: {status}");
}

/// Starts `cmd` with `input` on its stdin (then closed) and its output
/// going nowhere.
pub fn spawn_with_input(cmd: &mut Command, input: &[u8]) -> Child {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?} (wl-clipboard: `make deps` installs it): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    child
}

/// `wl-copy --foreground ARGS` with `input` on stdin, left running (a
/// process the test can kill).
pub fn wl_copy_foreground(socket: &Path, args: &[&str], input: &[u8]) -> Child {
    spawn_with_input(
        &mut wl(socket, "wl-copy", &[&["--foreground"], args].concat()),
        input,
    )
}

/// Runs `cmd` to the end with its output captured.
pub fn output(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    run_with_patience(cmd)
}

/// Runs `cmd`, which must succeed, and returns its stdout.
pub fn ok(cmd: Command) -> Vec<u8> {
    let shown = format!("{cmd:?}");
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{shown}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Polls `done` every 20 ms until it holds; panics after `PATIENCE`.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting: {what}");
        thread::sleep(Duration::from_millis(20));
    }
}
