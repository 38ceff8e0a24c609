//! The servers under test and how to start each one.
//!
//! What it is: the list of servers the issue compares — waypass's own
//! `waypass-server`, the wayland-rs peer, the libwayland peer and the bare
//! epoll server — and the
//! command line that starts each as a separate process, directly or under
//! a wrapper (callgrind, in `callgrind`).
//!
//! What it is not: the servers themselves (see `peer_server` for the peers).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::process::{ServerProcess, SpawnError};

/// A server the bench can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// `waypass-server` (ours).
    Ours,
    /// Another build of `waypass-server` to compare with (`--baseline-server`,
    /// e.g. the code before a change), measured in the same run.
    Baseline,
    /// The wayland-rs peer (pure-Rust backend, sleeping in epoll).
    WaylandRs,
    /// The libwayland peer (wayland-backend's system backend).
    Libwayland,
    /// The bare epoll server (`bare_server`): `sync` only, so it is in the
    /// round-trip measurement alone, not in [`ServerKind::ALL`].
    Bare,
}

impl ServerKind {
    /// Every server, in report order.
    pub const ALL: [ServerKind; 4] = [
        ServerKind::Ours,
        ServerKind::Baseline,
        ServerKind::WaylandRs,
        ServerKind::Libwayland,
    ];

    /// The name used in the report.
    pub fn label(self) -> &'static str {
        match self {
            ServerKind::Ours => "waypass-server",
            ServerKind::Baseline => "waypass-server, baseline build",
            ServerKind::WaylandRs => "wayland-rs server (rust backend)",
            ServerKind::Libwayland => "libwayland server",
            ServerKind::Bare => "bare epoll server",
        }
    }
}

/// Where the servers come from.
#[derive(Debug, Clone)]
pub struct ServerSet {
    /// The `waypass-server` binary, if one was given and exists.
    pub ours: Result<PathBuf, String>,
    /// The baseline build's binary, if one was given and exists.
    pub baseline: Result<PathBuf, String>,
}

impl ServerSet {
    /// Uses `ours` as the waypass-server binary, and `baseline` as the
    /// build to compare it with, when they exist.
    pub fn new(ours: Option<&Path>, baseline: Option<&Path>) -> ServerSet {
        let exists = |path: Option<&Path>, missing: &str| match path {
            None => Err(missing.to_string()),
            Some(path) if !path.exists() => {
                Err(format!("pending: {} does not exist", path.display()))
            }
            Some(path) => Ok(path.to_path_buf()),
        };
        ServerSet {
            ours: exists(ours, "pending: no --waypass-server binary given"),
            baseline: exists(baseline, "not measured: no --baseline-server given"),
        }
    }

    /// Starts one server and waits until it listens.
    pub fn start(&self, kind: ServerKind) -> Result<ServerProcess, String> {
        let (program, args) = self.command(kind)?;
        ServerProcess::start(&program, &args).map_err(|e| describe(kind, e))
    }

    /// Starts one server with extra arguments (before `--socket`) and
    /// `RUST_LOG=<log>`, and waits until it listens: e.g. waypass-server
    /// with `--persist`, logging at `info` so that the bench can wait for
    /// the lines that say a selection was persisted.
    pub fn start_with(
        &self,
        kind: ServerKind,
        extra: &[&str],
        log: &str,
    ) -> Result<ServerProcess, String> {
        let (program, mut args) = self.command(kind)?;
        args.extend(extra.iter().map(OsString::from));
        ServerProcess::start_logging(&program, &args, log).map_err(|e| describe(kind, e))
    }

    /// Starts one server as `wrapper <wrapper_args> <server's command>` and
    /// waits until it listens (the wrapper must pass the server's stdout
    /// through, and run it as its own process, as valgrind does).
    pub fn start_under(
        &self,
        kind: ServerKind,
        wrapper: &Path,
        wrapper_args: &[OsString],
    ) -> Result<ServerProcess, String> {
        let (program, args) = self.command(kind)?;
        let mut all = wrapper_args.to_vec();
        all.push(program.into_os_string());
        all.extend(args);
        ServerProcess::start(wrapper, &all).map_err(|e| describe(kind, e))
    }

    /// The program and the arguments (before `--socket`) that run `kind`.
    fn command(&self, kind: ServerKind) -> Result<(PathBuf, Vec<OsString>), String> {
        let peer = |args: &[&str]| -> Result<(PathBuf, Vec<OsString>), String> {
            let exe =
                std::env::current_exe().map_err(|e| describe(kind, SpawnError::Prepare(e)))?;
            Ok((exe, args.iter().map(OsString::from).collect()))
        };
        match kind {
            ServerKind::Ours => Ok((self.ours.clone()?, Vec::new())),
            ServerKind::Baseline => Ok((self.baseline.clone()?, Vec::new())),
            ServerKind::WaylandRs => peer(&["peer-server", "--backend", "rs"]),
            ServerKind::Libwayland => peer(&["peer-server", "--backend", "sys"]),
            ServerKind::Bare => peer(&["peer-bare"]),
        }
    }
}

fn describe(kind: ServerKind, e: SpawnError) -> String {
    match kind {
        // Our server is being written as the bench is: one that does not come
        // up yet is pending, not broken.
        ServerKind::Ours => format!("pending: waypass-server is not usable yet ({e})"),
        _ => format!("failed: {e}"),
    }
}
