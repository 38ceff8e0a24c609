//! The listening socket's files: the `<socket>.lock` lock file, reclaiming
//! a stale socket, binding, and removing both files on the way out, but
//! only if they are still the files this server made.
//!
//! This module owns paths and the lock. It does not accept connections
//! ([`crate::runtime::accept`] does) and knows nothing of the protocol.
//!
//! # Implementation notes
//!
//! The start-up order is the one libwayland uses (`shared/WAYLAND.md`):
//!
//! 1. Check that the socket's directory exists, so that a typo names the
//!    missing directory rather than the lock file.
//! 2. Take the lock ([`lock`]: `O_NOFOLLOW`, regular files only, a
//!    non-blocking exclusive `flock`, re-checked by (dev, ino)). If another
//!    process holds it, another server owns the socket: fail.
//! 3. Holding the lock, look at what is at the socket path. Only a socket
//!    that nobody listens on is stale: a non-blocking `connect()` to it must
//!    fail with `ECONNREFUSED`. A socket that accepts the connect (or whose
//!    backlog is full, `EAGAIN`, or which is of another type, `EPROTOTYPE`)
//!    belongs to a live program that may not use lock files at all (think
//!    `$XDG_RUNTIME_DIR/bus`): fail, and never delete it. Anything that is
//!    not a socket is an error too.
//! 4. Bind and listen, and record the new socket's (dev, ino).
//!
//! [`SocketFiles`] removes the socket and then the lock file when dropped,
//! still holding the lock while it does, so that a new server cannot take
//! the lock before the old socket is gone. It removes the socket only if
//! the path still holds the socket we bound (same dev, ino): a file put in
//! its place while we ran is not ours. The lock file has its own rule
//! ([`LockFile::remove_if_ours`]). Between that check and the `unlink` a
//! process that can write to the directory could still swap the file: no
//! system call unlinks by inode, and libwayland does not check at all.

mod lock;

use std::fmt;
use std::fs::{self, Metadata};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use log::{debug, warn};
use nix::errno::Errno;
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use nix::sys::stat::FileStat;
use waypass_protocol::__private::socket_argument;
use waypass_protocol::{socket_path, DisplayError};

use self::lock::LockFile;

/// How many `wayland-N` names are tried without `--socket`, as compositors do.
pub const MAX_DISPLAY_NUMBER: u32 = 32;

/// A file's identity: (st_dev, st_ino).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    fn from_stat(st: &FileStat) -> FileId {
        FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// Why the listening socket could not be set up.
#[derive(Debug)]
#[non_exhaustive]
pub enum ListenError {
    /// A relative `--socket` path could not be made absolute.
    CurrentDir(io::Error),
    /// The socket name could not be turned into a path.
    SocketPath(DisplayError),
    /// The directory the socket should go in does not exist.
    NoDirectory {
        /// The directory.
        dir: PathBuf,
    },
    /// What should be the socket's directory is not a directory.
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
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
    /// The lock path is a symlink, or not a regular file.
    LockNotAFile {
        /// The lock file.
        path: PathBuf,
    },
    /// A file that is not a socket sits where the socket should go.
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// A live program listens on the socket path (without our lock).
    SocketInUse {
        /// The socket path.
        path: PathBuf,
    },
    /// Probing the socket at the path with `connect()` failed otherwise.
    ProbeSocket {
        /// The socket path.
        path: PathBuf,
        /// The connect error.
        source: io::Error,
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
            ListenError::NoDirectory { dir } => {
                write!(f, "directory {} does not exist", dir.display())
            }
            ListenError::NotADirectory { path } => {
                write!(f, "{} is not a directory", path.display())
            }
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
            ListenError::LockNotAFile { path } => write!(
                f,
                "lock file {} is a symlink or not a regular file",
                path.display()
            ),
            ListenError::NotASocket { path } => {
                write!(f, "{} exists and is not a socket", path.display())
            }
            ListenError::SocketInUse { path } => {
                write!(f, "another server is listening on {}", path.display())
            }
            ListenError::ProbeSocket { path, .. } => {
                write!(f, "cannot tell whether {} is in use", path.display())
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
            | ListenError::ProbeSocket { source, .. }
            | ListenError::Bind { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The socket and lock files of a running server: removed on drop, if
/// they are still ours. An inherited socket
/// ([`crate::runtime::activation`]) has neither: its path is only shown.
#[derive(Debug)]
pub struct SocketFiles {
    socket: PathBuf,
    /// The socket we bound, once bound: only that file is removed.
    bound: Option<FileId>,
    // Held until after both files are removed (fields drop after `drop`).
    lock: Option<LockFile>,
}

impl SocketFiles {
    /// The path of a socket another process bound: nothing to lock or
    /// remove.
    pub fn inherited(socket: PathBuf) -> SocketFiles {
        SocketFiles {
            socket,
            bound: None,
            lock: None,
        }
    }

    /// The socket's path, made absolute.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn remove_socket_if_ours(&self) {
        let (Some(ours), path) = (self.bound, &self.socket) else {
            return;
        };
        match fs::symlink_metadata(path) {
            Ok(now) if FileId::of(&now) == ours && now.file_type().is_socket() => {
                match fs::remove_file(path) {
                    Ok(()) => debug!("removed {}", path.display()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => warn!("cannot remove {}: {e}", path.display()),
                }
            }
            Ok(_) => warn!(
                "{} is not the socket we made any more; leaving it",
                path.display()
            ),
            // Someone removed it already: nothing left to clean.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => warn!("cannot check {} before removing it: {e}", path.display()),
        }
    }
}

impl Drop for SocketFiles {
    fn drop(&mut self) {
        self.remove_socket_if_ours();
        if let Some(lock) = &self.lock {
            lock.remove_if_ours();
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
                    Err(ListenError::AnotherServer { socket: path })
                    | Err(ListenError::SocketInUse { path }) => {
                        debug!("{} is taken", path.display());
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
    check_directory(&socket)?;
    let mut lock_name = socket.clone().into_os_string();
    lock_name.push(".lock");
    let lock = LockFile::take(Path::new(&lock_name), &socket)?;
    // From here on the files are ours: a failure below removes them again.
    let mut files = SocketFiles {
        socket,
        bound: None,
        lock: Some(lock),
    };
    reclaim_stale_socket(&files.socket)?;
    let bind_error = |source| ListenError::Bind {
        path: files.socket.clone(),
        source,
    };
    let listener = UnixListener::bind(&files.socket).map_err(bind_error)?;
    // Recorded right after bind(), which returns no inode: a process that
    // ignores our lock and swaps the file within these microseconds would
    // have its file recorded instead. Nothing closes that window.
    let meta = fs::symlink_metadata(&files.socket).map_err(bind_error)?;
    files.bound = Some(FileId::of(&meta));
    listener.set_nonblocking(true).map_err(bind_error)?;
    Ok(Bound { listener, files })
}

/// Fails with a clear error when the socket's directory is missing.
fn check_directory(socket: &Path) -> Result<(), ListenError> {
    let Some(dir) = socket.parent() else {
        return Ok(());
    };
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(ListenError::NotADirectory { path: dir.into() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(ListenError::NoDirectory { dir: dir.into() })
        }
        // EACCES and the like: opening the lock file will say it best.
        Err(_) => Ok(()),
    }
}

/// Removes a stale socket at `path`; refuses a live one and anything that
/// is not a socket.
fn reclaim_stale_socket(path: &Path) -> Result<(), ListenError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if is_live(path).map_err(|e| ListenError::ProbeSocket {
                path: path.into(),
                source: e.into(),
            })? {
                return Err(ListenError::SocketInUse { path: path.into() });
            }
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

/// Whether a program listens on the socket file at `path`, by a
/// non-blocking `connect()` (it never waits on a busy listener).
fn is_live(path: &Path) -> Result<bool, Errno> {
    let probe = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    let addr = UnixAddr::new(path)?;
    match connect(probe.as_raw_fd(), &addr) {
        // Queued in its backlog: somebody listens (and sees a peer that
        // closes at once, as with any probe).
        Ok(()) => Ok(true),
        // Its backlog is full: live, and busy.
        Err(Errno::EAGAIN) => Ok(true),
        // A datagram or seqpacket socket that is bound: live, not ours.
        Err(Errno::EPROTOTYPE) => Ok(true),
        // No socket is bound to the file: stale.
        Err(Errno::ECONNREFUSED) => Ok(false),
        Err(e) => Err(e),
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
    fn stale_socket_is_reclaimed_but_not_a_live_one_or_a_regular_file() {
        let dir = temp_dir();
        let path = dir.join("s");
        let stale = UnixListener::bind(&path).unwrap();
        drop(stale);
        let bound = listen_at(path.clone()).expect("reclaims stale socket");
        drop(bound);

        // A live socket of another program, which takes no lock.
        let live = UnixListener::bind(&path).unwrap();
        let err = listen_at(path.clone()).unwrap_err();
        assert!(matches!(err, ListenError::SocketInUse { .. }), "{err:?}");
        assert!(err.to_string().contains("another server is listening on"));
        assert!(path.exists(), "the live socket is kept");
        drop(live);
        fs::remove_file(&path).unwrap();

        fs::write(&path, b"precious").unwrap();
        let err = listen_at(path.clone()).unwrap_err();
        assert!(matches!(err, ListenError::NotASocket { .. }), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), b"precious");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_that_replaced_our_socket_is_left_alone() {
        let dir = temp_dir();
        let path = dir.join("s");
        let bound = listen_at(path.clone()).expect("listen");
        fs::remove_file(&path).unwrap();
        fs::write(&path, b"not yours").unwrap();
        drop(bound);
        assert_eq!(fs::read(&path).unwrap(), b"not yours");
        assert!(!dir.join("s.lock").exists(), "our own lock is removed");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = temp_dir();
        let err = listen_at(dir.join("nope/s")).unwrap_err();
        assert!(matches!(err, ListenError::NoDirectory { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("nope") && text.contains("does not exist"),
            "{text}"
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
