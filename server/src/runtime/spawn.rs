//! `--spawn CMD`: starting a child as a client over a socketpair (the
//! `WAYLAND_SOCKET` way), and reaping those children, and no others.
//!
//! This module starts processes and collects their exit statuses. It does
//! not serve the connection (the server's end becomes an ordinary client,
//! see [`crate::runtime::server::State::spawn_child`]) and does not
//! watch for exits: that method registers each child's pidfd with the loop, and
//! [`crate::runtime::signals`] turns SIGCHLD (when the binary asks for
//! signals) into a call to [`crate::runtime::server::State::reap_children`].
//!
//! # Implementation notes
//!
//! - **The command goes through `/bin/sh -c`**, so quoting, redirections and
//!   `$VARIABLES` work as in a shell; `WAYLAND_SOCKET` is set to the number
//!   of the child's end of the socketpair.
//! - **Only that fd crosses `exec`.** Every fd the server opens is
//!   close-on-exec: the listener and accepted sockets (std uses
//!   `SOCK_CLOEXEC` / `accept4`), the lock file and the `/dev/null` reserve
//!   (std opens with `O_CLOEXEC`), the keymap memfd (`MFD_CLOEXEC`) and its
//!   read-only reopens (`O_CLOEXEC`), calloop's epoll, eventfd and
//!   signalfd (`*_CLOEXEC`), brokered socketpairs (`SOCK_CLOEXEC`). The
//!   child's end is created `SOCK_CLOEXEC` too; only in the child, between
//!   `fork` and `exec` (`pre_exec`), is `FD_CLOEXEC` cleared on it, so a
//!   child spawned later, or by another thread, cannot inherit it. It is
//!   moved to fd 3 or above first, since `Command` puts stdio on 0 to 2.
//!   Fds the server inherited without `CLOEXEC` are marked too (see
//!   `inherit_in_child`). Nor does socket activation's `LISTEN_*`: the
//!   children's environment has none of them.
//! - **Signals are reset in the child** ([`crate::runtime::signals::reset_in_child`]):
//!   the server blocks the signals its signalfd reads, and a blocked mask
//!   survives `exec`.
//! - **Reaping only our own children.** The server may run in a thread of
//!   a host program that has children of its own, so it never calls
//!   `waitpid(-1)`: [`Children::reap`] calls `waitpid(pid, WNOHANG)` for
//!   each child it spawned and has not reaped yet. It runs when a child's
//!   pidfd (`pidfd_open(2)`, Linux 5.3) becomes readable, which needs no
//!   signal handling, and on SIGCHLD where the binary handles signals (one
//!   SIGCHLD may stand for several exits; a kernel without pidfds relies on
//!   it alone). Every exit status is logged. A child that someone else
//!   reaped (a host's own `waitpid(-1)`) counts as failed: its status is
//!   lost. The server does not kill its children when it stops: they see
//!   their socket hang up.
//! - **`--exit-with-children`**: when the last child has been reaped, the
//!   server stops as on SIGTERM (removing its socket and lock file) and
//!   exits 0 if every child exited with status 0, else 1 (a signal or a
//!   non-zero status counts as a failure).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

use log::{error, info, warn};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getgid, getuid, Pid};

use waypass_protocol::Credentials;

use crate::runtime::{activation, signals};

/// The lowest fd number the child's end may have: 0 to 2 are stdio.
const FIRST_FREE_FD: i32 = 3;

/// Why a child could not be started.
#[derive(Debug)]
#[non_exhaustive]
pub enum SpawnError {
    /// `socketpair` failed.
    Socketpair(io::Error),
    /// Moving the child's end above the stdio fds failed.
    MoveFd(io::Error),
    /// Starting `/bin/sh` failed.
    Start {
        /// The command.
        command: String,
        /// The spawn error.
        source: io::Error,
    },
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::Socketpair(_) => f.write_str("cannot create a socketpair for a child"),
            SpawnError::MoveFd(_) => f.write_str("cannot move a child's socket above fd 2"),
            SpawnError::Start { command, .. } => write!(f, "cannot start `{command}`"),
        }
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SpawnError::Socketpair(e) | SpawnError::MoveFd(e) => Some(e),
            SpawnError::Start { source, .. } => Some(source),
        }
    }
}

/// A started child: its pid, the server's end of its socket and a pidfd.
#[derive(Debug)]
pub struct Spawned {
    /// The child's pid and our uid / gid (it runs as us).
    pub creds: Credentials,
    /// The server's end, to serve as a client.
    pub stream: UnixStream,
    /// Readable once the child has exited; `None` where the kernel has no
    /// `pidfd_open` (then only SIGCHLD tells, if the binary handles it).
    pub exited: Option<OwnedFd>,
}

/// Starts `/bin/sh -c command` with `WAYLAND_SOCKET` set to its end of a
/// fresh socketpair, inheriting no other fd of ours but stdio.
pub fn spawn_client(command: &str) -> Result<Spawned, SpawnError> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SpawnError::Socketpair(e.into()))?;
    // `Command` dup2()s stdio onto 0..=2 in the child: keep clear of them.
    let moved = fcntl(&theirs, FcntlArg::F_DUPFD_CLOEXEC(FIRST_FREE_FD))
        .map_err(|e| SpawnError::MoveFd(e.into()))?;
    // SAFETY: F_DUPFD_CLOEXEC just returned this new fd; nothing else owns it.
    let theirs = unsafe { OwnedFd::from_raw_fd(moved) };
    let number = theirs.as_raw_fd();
    let theirs = Arc::new(theirs);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .env("WAYLAND_SOCKET", number.to_string());
    // Socket activation's variables were for us, not for the children.
    for name in activation::LISTEN_VARIABLES {
        cmd.env_remove(name);
    }
    signals::reset_in_child(&mut cmd);
    inherit_in_child(&mut cmd, Arc::clone(&theirs));
    let child = cmd.spawn().map_err(|source| SpawnError::Start {
        command: command.into(),
        source,
    })?;
    // Our copies of the child's end go now: the closure's and ours.
    drop(cmd);
    drop(theirs);
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    // `Child` neither waits nor kills on drop: `Children::reap` does that.
    drop(child);
    // Not reaped yet, so `pid` is still this child's and no other's.
    let exited = match pidfd_open(pid) {
        Ok(fd) => Some(fd),
        Err(e) => {
            warn!("cannot watch child {pid} with a pidfd ({e}): only SIGCHLD tells its exit");
            None
        }
    };
    let creds = Credentials {
        pid,
        uid: getuid().as_raw(),
        gid: getgid().as_raw(),
    };
    Ok(Spawned {
        creds,
        stream: UnixStream::from(ours),
        exited,
    })
}

/// A pidfd for `pid` (`pidfd_open(2)`, Linux 5.3): readable once that
/// process has exited, and close-on-exec. nix 0.30 has no `pidfd_open`,
/// hence the raw system call.
fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers (a pid and no flags) and
    // touches no memory of ours.
    let ret = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    let fd = Errno::result(ret)?;
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from(Errno::EBADF))?;
    // SAFETY: the kernel just returned this new fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// In the child only, between fork and exec: marks every fd above stdio
/// close-on-exec, then clears `FD_CLOEXEC` on `fd`.
///
/// The server opens nothing without `CLOEXEC`, but it may have inherited
/// fds without it from its own parent; `close_range(3, ~0,
/// CLOSE_RANGE_CLOEXEC)` keeps those from reaching the child too. nix has
/// no `close_range`, hence the libc call. On kernels before 5.11 it fails
/// with `EINVAL` and is skipped: the server's own fds are still covered.
fn inherit_in_child(cmd: &mut Command, fd: Arc<OwnedFd>) {
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed. close_range and
    // fcntl(F_SETFD) are plain system calls; `fd` is kept open by the Arc
    // until `cmd` is dropped in the parent; nothing is allocated. Marking
    // fds close-on-exec closes nothing before the exec.
    unsafe {
        cmd.pre_exec(move || {
            let cloexec = nix::libc::CLOSE_RANGE_CLOEXEC as nix::libc::c_int;
            nix::libc::close_range(3, nix::libc::c_uint::MAX, cloexec);
            fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::empty()))?;
            Ok(())
        });
    }
}

/// The children started with `--spawn` that have not been reaped yet.
#[derive(Debug, Default)]
pub struct Children {
    running: HashMap<i32, String>,
    spawned: usize,
    failed: usize,
    exit_when_done: bool,
}

impl Children {
    /// Whether [`Children::reap`] reports the last exit
    /// (`--exit-with-children`).
    pub fn exit_when_done(&mut self, yes: bool) {
        self.exit_when_done = yes;
    }

    /// Records a started child.
    pub fn started(&mut self, pid: i32, command: &str) {
        info!("spawned `{command}` (pid {pid})");
        self.running.insert(pid, command.into());
        self.spawned += 1;
    }

    /// Reaps every exited child of ours (never `waitpid(-1)`: see the
    /// module's notes). Returns `true` when the server should stop:
    /// `exit_with_children` is set and no child is left.
    pub fn reap(&mut self) -> bool {
        let pids: Vec<i32> = self.running.keys().copied().collect();
        for pid in pids {
            self.reap_one(Pid::from_raw(pid));
        }
        self.exit_when_done && self.spawned > 0 && self.running.is_empty()
    }

    /// Whether child `pid` is still running (not reaped yet).
    pub fn is_running(&self, pid: i32) -> bool {
        self.running.contains_key(&pid)
    }

    fn reap_one(&mut self, pid: Pid) {
        loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => {
                    return self.exited(pid, code == 0, &format!("exited with status {code}"))
                }
                Ok(WaitStatus::Signaled(_, sig, _)) => {
                    return self.exited(pid, false, &format!("killed by {sig}"))
                }
                // Still running.
                Ok(WaitStatus::StillAlive) => return,
                // Stops and continues are not asked for (no WUNTRACED).
                Ok(other) => return warn!("unexpected wait status {other:?}"),
                // A signal arrived meanwhile: try again.
                Err(Errno::EINTR) => {}
                // Not our child any more: someone else in this process
                // reaped it (a host's `waitpid(-1)`), and its status with it.
                Err(Errno::ECHILD) => {
                    return self.exited(pid, false, "was reaped by someone else: status unknown")
                }
                Err(e) => return error!("waitpid({pid}) failed: {e}"),
            }
        }
    }

    fn exited(&mut self, pid: Pid, success: bool, how: &str) {
        let command = self.running.remove(&pid.as_raw()).unwrap_or_default();
        if success {
            info!("child {pid} `{command}` {how}");
        } else {
            self.failed += 1;
            warn!("child {pid} `{command}` {how}");
        }
    }

    /// Whether every spawned child that exited did so with status 0.
    pub fn all_succeeded(&self) -> bool {
        self.failed == 0
    }
}
