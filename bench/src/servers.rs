//! The servers under test and how to start each one.
//!
//! What it is: the list of servers the issue compares — waypass's own
//! `waypass-server`, the wayland-rs peer, the libwayland peer and the bare
//! epoll server — and the
//! command line that starts each as a separate process.
//!
//! What it is not: the servers themselves (see `peer_server` for the peers).

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
        let started = match kind {
            ServerKind::Ours => {
                let path = self.ours.clone()?;
                ServerProcess::start(&path, &[])
            }
            ServerKind::Baseline => {
                let path = self.baseline.clone()?;
                ServerProcess::start(&path, &[])
            }
            ServerKind::WaylandRs => Self::peer(&["peer-server", "--backend", "rs"]),
            ServerKind::Libwayland => Self::peer(&["peer-server", "--backend", "sys"]),
            ServerKind::Bare => Self::peer(&["peer-bare"]),
        };
        started.map_err(|e| describe(kind, e))
    }

    fn peer(args: &[&str]) -> Result<ServerProcess, SpawnError> {
        let exe = std::env::current_exe().map_err(SpawnError::Prepare)?;
        ServerProcess::start(&exe, args)
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
