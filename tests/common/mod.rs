//! Shared harness for the end-to-end tests: finding the real binaries,
//! private temporary directories, and a running `waypass-server` process.
//!
//! Each test file includes this with `mod common;`; not every file uses every
//! helper.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a test waits for a process before calling it hung. Generous:
/// the machines are shared and noisy; this is a hang detector, not a timing
/// assertion.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The path of a workspace binary (`waypass-server`, `waypass-client`),
/// next to the test executable's `deps/` directory.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (`make test` does)",
        path.display()
    );
    path
}

/// A private temporary directory, removed on drop: a thin wrapper over
/// [`tempfile::TempDir`] that names it after the test and keeps the
/// `path`/`join` calls the tests use.
pub struct TempDir {
    dir: tempfile::TempDir,
}

impl TempDir {
    /// Creates `$TMPDIR/wp-<label>-` plus a random six-character suffix
    /// (mode 0700), as `tempfile` names them.
    pub fn new(label: &str) -> TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("wp-{label}-"))
            .tempdir()
            .expect("create temp dir");
        TempDir { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A running `waypass-server`, killed on drop.
pub struct Server {
    child: Option<Child>,
    /// The socket path the server printed on stdout.
    pub socket: PathBuf,
    /// The file the server's stderr goes to.
    pub log: PathBuf,
    /// The temporary directory holding the socket and the log.
    pub dir: TempDir,
}

impl Server {
    /// Starts `waypass-server --socket <dir>/wayland-test <args>` and waits
    /// for the line on stdout that says it accepts connections.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with(args, |_| {})
    }

    /// Like [`Server::start`], with a hook to adjust the command (env, ...).
    pub fn start_with(args: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
        let dir = TempDir::new("srv");
        let socket = dir.join("wayland-test");
        let mut cmd = Command::new(bin("waypass-server"));
        cmd.arg("--socket").arg(&socket).args(args);
        Self::spawn(cmd, dir, adjust)
    }

    /// Starts the server from a fully prepared command (no `--socket` added).
    pub fn spawn(mut cmd: Command, dir: TempDir, adjust: impl FnOnce(&mut Command)) -> Server {
        let log = dir.join("server.log");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).expect("log file"))
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            );
        // The server honours these; a test sets them itself when it wants.
        for var in [
            "XKB_DEFAULT_RULES",
            "XKB_DEFAULT_MODEL",
            "XKB_DEFAULT_LAYOUT",
            "XKB_DEFAULT_VARIANT",
            "XKB_DEFAULT_OPTIONS",
        ] {
            cmd.env_remove(var);
        }
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("spawn waypass-server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server printed no socket path; log:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        Server {
            child: Some(child),
            socket: PathBuf::from(line.trim()),
            log,
            dir,
        }
    }

    /// The server's pid.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Sends a signal to the server.
    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).expect("kill");
    }

    /// Waits for the server to exit (panics after [`PATIENCE`]).
    pub fn wait(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let status = wait_timeout(child, PATIENCE).expect("server did not exit in time");
        self.child = None;
        status
    }

    /// Number of open fds of the server, from `/proc/PID/fd`.
    pub fn fd_count(&self) -> usize {
        fd_count(self.pid())
    }

    /// Resident memory of the server in KiB, from `/proc/PID/status`.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// The server's stderr so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The socket path as a string argument.
    pub fn socket_arg(&self) -> &str {
        self.socket.to_str().expect("utf-8 socket path")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `child` until it exits or `limit` passes.
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `waypass-client` with `args` and returns its output (panics if it
/// hangs past [`PATIENCE`]).
pub fn run_client(args: &[&str]) -> Output {
    run_client_with(args, |_| {})
}

/// Like [`run_client`], with a hook to adjust the command (env, ...).
pub fn run_client_with(args: &[&str], adjust: impl FnOnce(&mut Command)) -> Output {
    let mut cmd = Command::new(bin("waypass-client"));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    adjust(&mut cmd);
    run_with_patience(cmd)
}

/// Runs a prepared command to completion, killing it after [`PATIENCE`].
pub fn run_with_patience(mut cmd: Command) -> Output {
    let child = cmd.spawn().expect("spawn");
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(PATIENCE) {
        Ok(out) => out.expect("wait_with_output"),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            panic!("{cmd:?} hung for {PATIENCE:?}");
        }
    }
}

/// Number of open fds of process `pid`.
pub fn fd_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

/// Resident set size of process `pid` in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// Polls `cond` until it holds or [`PATIENCE`] passes; returns whether it held.
pub fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    cond()
}
