//! The listening socket's files: the `<socket>.lock` lock file, reclaiming
//! a stale socket, binding, and removing both files on the way out.
//!
//! This module owns paths and the lock. It does not accept connections
//! ([`crate::accept`] does) and knows nothing of the protocol.
//!
//! # Implementation notes
//!
//! The start-up order is the one libwayland uses (`shared/WAYLAND.md`):
//!
//! 1. Open `<socket>.lock` (`O_CREAT | O_CLOEXEC`) and take a non-blocking
//!    exclusive `flock`. If another process holds it, another server owns
//!    the socket: fail.
//! 2. Re-check the lock: `stat` the lock path and compare (dev, ino) with
//!    `fstat` of our fd. A server that exits unlinks its lock file; if that
//!    happened between our `open` and our `flock`, we hold a lock on an
//!    orphan inode while the next server creates a fresh file, and two
//!    servers would "own" the socket. On a mismatch, start over.
//! 3. Holding the lock, a socket file at the path can only be a leftover of
//!    a server that died without cleaning up (SIGKILL, crash): remove it,
//!    but only if it is a socket, so a mistyped `--socket` never deletes a
//!    user's file.
//! 4. Bind and listen.
//!
//! [`SocketFiles`] removes the socket and then the lock file when dropped,
//! still holding the lock while it does, so that a new server cannot take
//! the lock before the old socket is gone.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use log::{debug, warn};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::{fstat, stat};
use waypass_protocol::{socket_argument, socket_path, DisplayError};

/// How many `wayland-N` names are tried without `--socket`, as compositors do.
pub const MAX_DISPLAY_NUMBER: u32 = 32;

/// How often the lock is retried when its file is replaced under us.
const LOCK_ATTEMPTS: usize = 8;

/// Why the listening socket could not be set up.
#[derive(Debug)]
pub enum ListenError {
    /// A relative `--socket` path could not be made absolute.
    CurrentDir(io::Error),
    /// The socket name could not be turned into a path.
    SocketPath(DisplayError),
    /// Opening or creating the lock file failed.
    OpenLock {
        /// The lock file.
        path: PathBuf,
        /// The open error.
        source: io::Error,
    },
    /// `flock` failed for a reason other than contention.
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The flock error.
        source: io::Error,
    },
    /// Another server holds the lock.
    AnotherServer {
        /// The socket that server owns.
        socket: PathBuf,
    },
    /// The lock file kept being replaced while we locked it.
    LockRaced {
        /// The lock file.
        path: PathBuf,
    },
    /// A file that is not a socket sits where the socket should go.
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// Removing a stale socket failed.
    RemoveStale {
        /// The socket path.
        path: PathBuf,
        /// The unlink error.
        source: io::Error,
    },
    /// bind() or listen() failed.
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Every `wayland-N` name is taken.
    NoFreeName,
}

impl fmt::Display for ListenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenError::CurrentDir(_) => {
                f.write_str("cannot make the --socket path absolute: no current directory")
            }
            ListenError::SocketPath(_) => f.write_str("cannot choose the socket path"),
            ListenError::OpenLock { path, .. } => {
                write!(f, "cannot open lock file {}", path.display())
            }
            ListenError::Lock { path, .. } => write!(f, "cannot lock {}", path.display()),
            ListenError::AnotherServer { socket } => {
                write!(f, "another server owns {}", socket.display())
            }
            ListenError::LockRaced { path } => {
                write!(f, "lock file {} kept being replaced", path.display())
            }
            ListenError::NotASocket { path } => {
                write!(f, "{} exists and is not a socket", path.display())
            }
            ListenError::RemoveStale { path, .. } => {
                write!(f, "cannot remove stale socket {}", path.display())
            }
            ListenError::Bind { path, .. } => write!(f, "cannot listen on {}", path.display()),
            ListenError::NoFreeName => write!(
                f,
                "wayland-0 to wayland-{MAX_DISPLAY_NUMBER} are all taken; pass --socket"
            ),
        }
    }
}

impl std::error::Error for ListenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ListenError::SocketPath(e) => Some(e),
            ListenError::CurrentDir(source) => Some(source),
            ListenError::OpenLock { source, .. }
            | ListenError::Lock { source, .. }
            | ListenError::RemoveStale { source, .. }
            | ListenError::Bind { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The socket and lock files of a running server: removed on drop.
#[derive(Debug)]
pub struct SocketFiles {
    socket: PathBuf,
    /// Whether we bound the socket (and so may remove it).
    bound: bool,
    lock_path: PathBuf,
    // Held until after both files are removed (fields drop after `drop`).
    _lock: Flock<File>,
}

impl SocketFiles {
    /// The socket's path, made absolute.
    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for SocketFiles {
    fn drop(&mut self) {
        let socket = self.bound.then_some(&self.socket);
        for path in socket.into_iter().chain([&self.lock_path]) {
            match fs::remove_file(path) {
                Ok(()) => debug!("removed {}", path.display()),
                // Someone removed it already: nothing left to clean.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => warn!("cannot remove {}: {e}", path.display()),
            }
        }
    }
}

/// A bound, listening, non-blocking socket and the files it owns.
#[derive(Debug)]
pub struct Bound {
    /// The listening socket.
    pub listener: UnixListener,
    /// The files to remove at exit.
    pub files: SocketFiles,
}

/// Listens on `--socket NAME|PATH`, or on the first free `wayland-N`.
pub fn listen(name: Option<&str>) -> Result<Bound, ListenError> {
    match name {
        Some(name) => {
            let name = socket_argument(name).map_err(ListenError::CurrentDir)?;
            listen_at(socket_path(&name).map_err(ListenError::SocketPath)?)
        }
        None => {
            for n in 0..=MAX_DISPLAY_NUMBER {
                let path = socket_path(&format!("wayland-{n}")).map_err(ListenError::SocketPath)?;
                match listen_at(path) {
                    Err(ListenError::AnotherServer { socket }) => {
                        debug!("{} is taken", socket.display());
                    }
                    other => return other,
                }
            }
            Err(ListenError::NoFreeName)
        }
    }
}

/// Locks, reclaims, binds and listens at exactly `path`.
pub fn listen_at(path: PathBuf) -> Result<Bound, ListenError> {
    let socket = std::path::absolute(&path).unwrap_or(path);
    let mut lock_name = socket.clone().into_os_string();
    lock_name.push(".lock");
    let lock_path = PathBuf::from(lock_name);
    let lock = take_lock(&lock_path, &socket)?;
    // From here on the files are ours: a failure below removes them again.
    let mut files = SocketFiles {
        socket,
        bound: false,
        lock_path,
        _lock: lock,
    };
    remove_stale_socket(&files.socket)?;
    let listener = UnixListener::bind(&files.socket).map_err(|source| ListenError::Bind {
        path: files.socket.clone(),
        source,
    })?;
    files.bound = true;
    listener
        .set_nonblocking(true)
        .map_err(|source| ListenError::Bind {
            path: files.socket.clone(),
            source,
        })?;
    Ok(Bound { listener, files })
}

fn take_lock(lock_path: &Path, socket: &Path) -> Result<Flock<File>, ListenError> {
    for _ in 0..LOCK_ATTEMPTS {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o660)
            .open(lock_path)
            .map_err(|source| ListenError::OpenLock {
                path: lock_path.into(),
                source,
            })?;
        let locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            // EWOULDBLOCK: a live process holds the lock.
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(ListenError::AnotherServer {
                    socket: socket.into(),
                })
            }
            Err((_, errno)) => {
                return Err(ListenError::Lock {
                    path: lock_path.into(),
                    source: errno.into(),
                })
            }
        };
        let ours = fstat(&*locked).map_err(|e| ListenError::Lock {
            path: lock_path.into(),
            source: e.into(),
        })?;
        match stat(lock_path) {
            Ok(st) if (st.st_dev, st.st_ino) == (ours.st_dev, ours.st_ino) => return Ok(locked),
            // Unlinked or replaced between our open and our flock: the lock
            // we hold protects nothing. Drop it and start over.
            Ok(_) | Err(Errno::ENOENT) => debug!("{} was replaced; retrying", lock_path.display()),
            Err(e) => {
                return Err(ListenError::Lock {
                    path: lock_path.into(),
                    source: e.into(),
                })
            }
        }
    }
    Err(ListenError::LockRaced {
        path: lock_path.into(),
    })
}

fn remove_stale_socket(path: &Path) -> Result<(), ListenError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            fs::remove_file(path).map_err(|source| ListenError::RemoveStale {
                path: path.into(),
                source,
            })?;
            debug!("removed stale socket {}", path.display());
            Ok(())
        }
        Ok(_) => Err(ListenError::NotASocket { path: path.into() }),
        // Nothing there: the usual case.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ListenError::RemoveStale {
            path: path.into(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn temp_dir() -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wp-listener-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn second_listener_is_refused_and_files_go_on_drop() {
        let dir = temp_dir();
        let path = dir.join("s");
        let first = listen_at(path.clone()).expect("first");
        assert!(path.exists() && dir.join("s.lock").exists());
        let err = listen_at(path.clone()).unwrap_err();
        assert!(matches!(err, ListenError::AnotherServer { .. }), "{err:?}");
        assert!(err.to_string().contains("another server owns"));
        drop(first);
        assert!(!path.exists() && !dir.join("s.lock").exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn stale_socket_is_reclaimed_but_not_a_regular_file() {
        let dir = temp_dir();
        let path = dir.join("s");
        let stale = UnixListener::bind(&path).unwrap();
        drop(stale);
        let bound = listen_at(path.clone()).expect("reclaims stale socket");
        drop(bound);
        fs::write(&path, b"precious").unwrap();
        let err = listen_at(path.clone()).unwrap_err();
        assert!(matches!(err, ListenError::NotASocket { .. }), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), b"precious");
        fs::remove_dir_all(dir).unwrap();
    }
}
