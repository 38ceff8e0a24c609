//! Peer processes: the servers under test and the raw socket peers, each in
//! its own process so that its CPU time and memory can be read from `/proc`.
//!
//! What it is: spawning (the real `waypass-server`, or this bench binary
//! re-executed with a hidden subcommand), waiting for a server to say where
//! it listens, and killing every peer when its handle drops.
//!
//! What it is not: a supervisor. A peer that dies is reported by the
//! measurement that needed it; nothing is restarted.
//!
//! # Implementation notes
//!
//! A server prints its socket path as its first line on stdout once it
//! listens (the contract of `waypass-server --socket PATH`; the bench's own
//! peer servers do the same). A thread reads that line and keeps draining
//! stdout so the server never blocks on a full pipe; the bench waits for the
//! line with a timeout, so a server that hangs at start-up cannot hang the
//! bench.
//!
//! Raw peers get their end of a `socketpair` as stdin: that passes exactly
//! one fd to the child without clearing `FD_CLOEXEC` on anything, and without
//! `unsafe` code between fork and exec.

use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use waypass_test_support::{first_line, FirstLineError, TempDir, PATIENCE};

/// Why a peer process could not be started.
#[derive(Debug)]
pub enum SpawnError {
    /// The temporary directory or the log file could not be made.
    Prepare(io::Error),
    /// The process could not be started.
    Spawn {
        /// The program.
        program: PathBuf,
        /// The error from spawn.
        source: io::Error,
    },
    /// The server exited, or closed stdout, before printing its socket path.
    NoSocketLine {
        /// Its exit status, if it had exited.
        status: Option<ExitStatus>,
        /// The end of its stderr.
        log_tail: String,
    },
    /// The server printed nothing within the start-up patience.
    StartTimeout,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Prepare(_) => write!(f, "cannot prepare a temporary directory"),
            SpawnError::Spawn { program, .. } => write!(f, "cannot start {}", program.display()),
            SpawnError::NoSocketLine { status, log_tail } => {
                write!(f, "server did not print its socket path")?;
                if let Some(status) = status {
                    write!(f, " ({status})")?;
                }
                if !log_tail.is_empty() {
                    write!(f, "; stderr ends: {log_tail}")?;
                }
                Ok(())
            }
            SpawnError::StartTimeout => write!(
                f,
                "server printed no socket path within {}s",
                PATIENCE.as_secs()
            ),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Prepare(e) | SpawnError::Spawn { source: e, .. } => Some(e),
            SpawnError::NoSocketLine { .. } | SpawnError::StartTimeout => None,
        }
    }
}

/// A running server under test, killed on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl ServerProcess {
    /// Runs `program <args> --socket <tmp>/wayland-bench` and waits for the
    /// socket path on its stdout. The server runs with `RUST_LOG=warn`: the
    /// peer servers log nothing per connection, so waypass-server's info
    /// lines for each connect and disconnect are left out of the comparison
    /// (stderr goes to a file in the temp dir).
    pub fn start(program: &Path, args: &[OsString]) -> Result<ServerProcess, SpawnError> {
        ServerProcess::start_logging(program, args, "warn")
    }

    /// [`ServerProcess::start`] with `RUST_LOG=<log>`: for a measurement
    /// that waits for a line of the server's log
    /// ([`ServerProcess::wait_for_log`]).
    pub fn start_logging(
        program: &Path,
        args: &[OsString],
        log: &str,
    ) -> Result<ServerProcess, SpawnError> {
        let dir = TempDir::try_new("srv").map_err(SpawnError::Prepare)?;
        let mut all = args.to_vec();
        all.push("--socket".into());
        all.push(dir.join("wayland-bench").into_os_string());
        ServerProcess::spawn(program, &all, dir, log)
    }

    /// Runs `program <args>` and waits for the first line it prints, which
    /// [`ServerProcess::socket`] then returns: for a peer process that
    /// reports something other than a socket path (a broker name, say).
    pub fn start_reporting(program: &Path, args: &[OsString]) -> Result<ServerProcess, SpawnError> {
        let dir = TempDir::try_new("peer").map_err(SpawnError::Prepare)?;
        ServerProcess::spawn(program, args, dir, "warn")
    }

    fn spawn(
        program: &Path,
        args: &[OsString],
        dir: TempDir,
        rust_log: &str,
    ) -> Result<ServerProcess, SpawnError> {
        let log = dir.join("server.log");
        let log_file = fs::File::create(&log).map_err(SpawnError::Prepare)?;
        let mut child = Command::new(program)
            .args(args)
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|source| SpawnError::Spawn {
                program: program.to_path_buf(),
                source,
            })?;
        let line = match first_line(&mut child) {
            Ok(line) => line,
            Err(err) => {
                let _ = child.kill();
                let status = child.wait().ok();
                return Err(match err {
                    FirstLineError::Timeout => SpawnError::StartTimeout,
                    FirstLineError::Closed => SpawnError::NoSocketLine {
                        status,
                        log_tail: log_tail(&log),
                    },
                });
            }
        };
        Ok(ServerProcess {
            child,
            socket: PathBuf::from(line.trim()),
            log,
            _dir: dir,
        })
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The socket path the server printed.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The last lines the server wrote on stderr, joined with ` | `.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Waits until a line of the server's log contains `needle` and returns
    /// that line (the first such), polling the log file every millisecond
    /// for up to `patience`. Fails at once if the server has exited.
    pub fn wait_for_log(&mut self, needle: &str, patience: Duration) -> Result<String, String> {
        let start = std::time::Instant::now();
        loop {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return Ok(line.to_string());
            }
            if !self.is_running() {
                return Err(format!(
                    "the server exited before logging {needle:?}; its log ends: {}",
                    self.log_tail()
                ));
            }
            if start.elapsed() > patience {
                return Err(format!(
                    "the server did not log {needle:?} within {}s; its log ends: {}",
                    patience.as_secs(),
                    self.log_tail()
                ));
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits up to `patience` for the process to exit, so
    /// that it can clean up (valgrind removes its gdbserver FIFOs from
    /// `/tmp`; SIGKILL would leave them). Drop kills it if it has not
    /// exited by then.
    pub fn terminate(mut self, patience: Duration) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
            return;
        }
        let start = std::time::Instant::now();
        while start.elapsed() < patience && self.is_running() {
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// A raw socket peer: this binary re-executed with a hidden subcommand, its
/// stdin being the other end of a socketpair. Killed on drop.
#[derive(Debug)]
pub struct RawPeer {
    child: Child,
    /// The bench's end of the socketpair.
    pub stream: UnixStream,
}

impl RawPeer {
    /// The peer's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `<this binary> <subcommand>` with one end of a new socketpair
    /// as its stdin.
    pub fn start(subcommand: &str) -> Result<RawPeer, SpawnError> {
        let (ours, theirs) = UnixStream::pair().map_err(SpawnError::Prepare)?;
        let program = std::env::current_exe().map_err(SpawnError::Prepare)?;
        let child = Command::new(&program)
            .arg(subcommand)
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .spawn()
            .map_err(|source| SpawnError::Spawn { program, source })?;
        Ok(RawPeer {
            child,
            stream: ours,
        })
    }
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        // Closing our end ends the peer's loop; kill in case it is stuck.
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
