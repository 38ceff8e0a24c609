//! A running `waypass-server` process for the end-to-end tests: started on
//! a socket in a private directory, its stderr kept in a log file, killed
//! on drop. It is not a supervisor: a server that dies is the test's
//! finding, nothing restarts it.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{bin, fd_count, first_line, rss_kib, wait_timeout, TempDir, PATIENCE};

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
        let Ok(line) = first_line(&mut child) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "server printed no socket path; log:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
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

    /// Waits (up to [`PATIENCE`]) until the server holds at most
    /// `baseline` fds; panics with what it holds if it does not.
    pub fn wait_fds_at_most(&self, baseline: usize) {
        let start = Instant::now();
        while self.fd_count() > baseline {
            if start.elapsed() > PATIENCE {
                let held: Vec<String> = fs::read_dir(format!("/proc/{}/fd", self.pid()))
                    .expect("read /proc/PID/fd")
                    .flatten()
                    .filter_map(|e| fs::read_link(e.path()).ok())
                    .map(|t| t.display().to_string())
                    .collect();
                panic!(
                    "the server holds {} fds, {baseline} before: {held:?}",
                    held.len()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the server in KiB, from `/proc/PID/status`.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// The server's stderr so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to [`PATIENCE`]) until `count` lines of the log contain
    /// `needle`; returns the last of them (the `count`th).
    pub fn wait_log(&self, needle: &str, count: usize) -> String {
        let start = Instant::now();
        loop {
            let log = self.log_text();
            if let Some(line) = log.lines().filter(|l| l.contains(needle)).nth(count - 1) {
                return line.to_owned();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "no {count} log lines with {needle:?}; log:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many lines of the log so far contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
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
