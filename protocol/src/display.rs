//! Finding the server the Wayland way: `WAYLAND_SOCKET`, `WAYLAND_DISPLAY`,
//! `XDG_RUNTIME_DIR`, `wayland-0`.
//!
//! This module turns a display name into a connected [`UnixStream`], as
//! libwayland's `wl_display_connect` does. It is not a connection: wrap the
//! stream in a [`crate::Connection`] to speak the protocol. It does not
//! create or listen on sockets either; that is the server's business.
//!
//! # Implementation notes
//!
//! - **Resolution order.** An explicit name wins, then `WAYLAND_SOCKET`,
//!   then `WAYLAND_DISPLAY`, then `wayland-0`. libwayland checks
//!   `WAYLAND_SOCKET` even before an explicit name; here a caller that asks
//!   for a particular socket (`--socket PATH`) gets that socket.
//! - **Names and paths.** A name starting with `/` is a path used as is.
//!   Any other name lives under `XDG_RUNTIME_DIR`, which must then be set
//!   to an absolute path (libwayland's rule). `sun_path` holds 108 bytes
//!   including the NUL, so a path of 108 bytes or more is refused with
//!   [`DisplayError::PathTooLong`] instead of being cut short.
//! - **`WAYLAND_SOCKET`.** The value is an fd number that a parent process
//!   handed to us. It must be a non-negative decimal number naming an open
//!   socket. The fd is then made close-on-exec and the variable removed, so
//!   that neither a child process nor a second call takes it again. On any
//!   failure the variable is left alone and the fd is neither closed nor
//!   modified, as in libwayland: an fd that is not a socket was not ours.
//! - **What a failed connect says.** `connect()` fails with
//!   `ECONNREFUSED` both on a socket nobody listens on and on a file that
//!   is not a socket, so the path is `stat`ed to tell them apart
//!   ([`DisplayError::NotASocket`]). A missing socket and a stale one are
//!   spelled out, with the command that starts a server there; their
//!   errno then adds nothing and is not repeated as the `source()`.
//! - **Environment and threads.** Removing a variable is not thread-safe
//!   with respect to C code reading the environment, so call
//!   [`connect_to_display`] early, before starting threads.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::stat::{fstat, SFlag};

/// The most bytes a `sun_path` holds, NUL included.
pub const SUN_PATH_MAX: usize = 108;

/// The display name used when neither a name nor `WAYLAND_DISPLAY` is given.
const DEFAULT_DISPLAY: &str = "wayland-0";

/// Why no connection to a display could be made.
#[derive(Debug)]
#[non_exhaustive]
pub enum DisplayError {
    /// A display name needs `XDG_RUNTIME_DIR`, which is unset, empty or not
    /// an absolute path.
    NoRuntimeDir,
    /// The socket path does not fit in `sun_path`.
    PathTooLong(PathBuf),
    /// `WAYLAND_SOCKET` (the value held here) is not a valid, open socket fd.
    BadWaylandSocket(String),
    /// connect() failed: no compositor at that address.
    Connect {
        /// The path tried.
        path: PathBuf,
        /// The error from connect(): `NotFound` (no socket there) and
        /// `ConnectionRefused` (a socket nobody listens on) are spelled out
        /// by the message; any other is its `source()`.
        source: io::Error,
    },
    /// The path leads to a file that is not a socket.
    NotASocket {
        /// The path tried.
        path: PathBuf,
        /// What it is, e.g. "a regular file".
        kind: &'static str,
    },
}

impl fmt::Display for DisplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisplayError::NoRuntimeDir => write!(
                f,
                "XDG_RUNTIME_DIR is not set to an absolute path, \
                 so a display name cannot be turned into a socket path"
            ),
            DisplayError::PathTooLong(path) => write!(
                f,
                "socket path {} is {} bytes long; a Unix socket path holds at most {}",
                path.display(),
                path.as_os_str().len(),
                SUN_PATH_MAX - 1
            ),
            DisplayError::BadWaylandSocket(value) => write!(
                f,
                "WAYLAND_SOCKET={value:?} does not name an open socket fd"
            ),
            DisplayError::Connect { path, source } => {
                let path = path.display();
                let start = format!("start one with `waypass-server --socket {path}`");
                match source.kind() {
                    io::ErrorKind::NotFound => {
                        write!(f, "no compositor at {path}: no such socket ({start})")
                    }
                    io::ErrorKind::ConnectionRefused => write!(
                        f,
                        "no compositor at {path}: nobody listens on that socket any more ({start})"
                    ),
                    _ => write!(f, "no compositor at {path}"),
                }
            }
            DisplayError::NotASocket { path, kind } => {
                write!(f, "{} is {kind}, not a socket", path.display())
            }
        }
    }
}

impl std::error::Error for DisplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DisplayError::Connect { source, .. } => match source.kind() {
                // Said by the message itself.
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => None,
                _ => Some(source),
            },
            _ => None,
        }
    }
}

/// Turns a `--socket NAME|PATH` command-line argument into a display name
/// for [`socket_path`] and [`connect_to_display`]: a relative path with a
/// `/` in it (`./wayland-1`, `run/wl`) is made absolute against the current
/// directory, as someone typing a path expects. libwayland would look for it
/// under `$XDG_RUNTIME_DIR`, which suits `WAYLAND_DISPLAY` but surprises on a
/// command line. Plain names and absolute paths come back unchanged.
///
/// ```
/// # use waypass_protocol::__private::socket_argument;
/// assert_eq!(socket_argument("wayland-1").unwrap(), "wayland-1");
/// assert_eq!(socket_argument("/run/wl").unwrap(), "/run/wl");
/// let cwd = std::env::current_dir().unwrap();
/// assert_eq!(socket_argument("./wl").unwrap(), cwd.join("./wl").to_str().unwrap());
/// ```
pub fn socket_argument(arg: &str) -> io::Result<String> {
    if !arg.contains('/') || Path::new(arg).is_absolute() {
        return Ok(arg.to_owned());
    }
    let path = std::env::current_dir()?.join(arg);
    path.into_os_string().into_string().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the current directory is not UTF-8",
        )
    })
}

/// The socket path for a display name: an absolute path as is, otherwise
/// under `$XDG_RUNTIME_DIR`. Checks the `sun_path` length.
///
/// ```
/// # use waypass_protocol::{socket_path, DisplayError};
/// let path = socket_path("/run/waypass/wayland-1").unwrap();
/// assert_eq!(path.to_str(), Some("/run/waypass/wayland-1"));
/// let long = format!("/{}", "x".repeat(200));
/// assert!(matches!(socket_path(&long), Err(DisplayError::PathTooLong(_))));
/// ```
pub fn socket_path(name: &str) -> Result<PathBuf, DisplayError> {
    socket_path_os(OsStr::new(name))
}

/// [`socket_path`] for a name that may not be UTF-8 (from the environment).
fn socket_path_os(name: &OsStr) -> Result<PathBuf, DisplayError> {
    let name = Path::new(name);
    let path = if name.is_absolute() {
        name.to_path_buf()
    } else {
        runtime_dir()?.join(name)
    };
    check_length(&path)?;
    Ok(path)
}

/// `$XDG_RUNTIME_DIR`, which must be an absolute path.
fn runtime_dir() -> Result<PathBuf, DisplayError> {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => Ok(PathBuf::from(dir)),
        // Unset, empty or relative: libwayland refuses all three.
        _ => Err(DisplayError::NoRuntimeDir),
    }
}

/// Refuses paths that, with their NUL, do not fit in `sun_path`.
fn check_length(path: &Path) -> Result<(), DisplayError> {
    if path.as_os_str().as_bytes().len() >= SUN_PATH_MAX {
        return Err(DisplayError::PathTooLong(path.to_path_buf()));
    }
    Ok(())
}

/// Connects to `path`.
///
/// A path too long for `sun_path` gives [`DisplayError::PathTooLong`], a
/// file that is not a socket [`DisplayError::NotASocket`]; every other
/// failure of connect() gives [`DisplayError::Connect`] with the io::Error
/// (`ECONNREFUSED`: a stale socket, `ENOENT`: no socket).
pub fn connect_to_path(path: &Path) -> Result<UnixStream, DisplayError> {
    check_length(path)?;
    log::debug!("connecting to {}", path.display());
    UnixStream::connect(path).map_err(|source| connect_error(path, source))
}

/// What a failed connect() to `path` means: `ECONNREFUSED` on something
/// that is not a socket (connect follows symlinks, so does the `stat`) is
/// [`DisplayError::NotASocket`].
fn connect_error(path: &Path, source: io::Error) -> DisplayError {
    if source.kind() == io::ErrorKind::ConnectionRefused {
        if let Ok(meta) = fs::metadata(path) {
            let kind = meta.file_type();
            let kind = if kind.is_socket() {
                None
            } else if kind.is_file() {
                Some("a regular file")
            } else if kind.is_dir() {
                Some("a directory")
            } else if kind.is_fifo() {
                Some("a FIFO")
            } else {
                Some("a device")
            };
            if let Some(kind) = kind {
                return DisplayError::NotASocket {
                    path: path.to_path_buf(),
                    kind,
                };
            }
        }
    }
    DisplayError::Connect {
        path: path.to_path_buf(),
        source,
    }
}

/// Connects the way libwayland's `wl_display_connect(name)` does: an
/// explicit `name` (absolute path or name under `XDG_RUNTIME_DIR`) wins;
/// otherwise `WAYLAND_SOCKET` (taken: made close-on-exec and removed from
/// the environment), then `WAYLAND_DISPLAY`, then `wayland-0`.
///
/// Call this early, before other threads exist: taking `WAYLAND_SOCKET`
/// removes it from the process environment (see the module notes).
pub fn connect_to_display(name: Option<&str>) -> Result<UnixStream, DisplayError> {
    if let Some(name) = name {
        return connect_to_path(&socket_path(name)?);
    }
    if let Some(value) = std::env::var_os("WAYLAND_SOCKET") {
        return take_wayland_socket(&value);
    }
    let path = match std::env::var_os("WAYLAND_DISPLAY") {
        Some(display) => socket_path_os(&display)?,
        None => socket_path(DEFAULT_DISPLAY)?,
    };
    connect_to_path(&path)
}

/// Takes ownership of the socket fd named by `WAYLAND_SOCKET`.
fn take_wayland_socket(value: &OsStr) -> Result<UnixStream, DisplayError> {
    let bad = |why: &str| {
        log::debug!("WAYLAND_SOCKET={value:?} refused: {why}");
        DisplayError::BadWaylandSocket(value.to_string_lossy().into_owned())
    };
    let number: RawFd = match value.to_str().map(str::parse::<RawFd>) {
        Some(Ok(n)) if n >= 0 => n,
        _ => return Err(bad("not a non-negative decimal fd number")),
    };
    if !fd_is_open(number) {
        return Err(bad("no such open fd"));
    }
    // SAFETY: `number` is open (checked just above) and stays open while
    // borrowed here: nothing closes it in between, since callers run this
    // before starting threads (see the function docs).
    let borrowed = unsafe { BorrowedFd::borrow_raw(number) };
    match fstat(borrowed) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFSOCK => {}
        // Not a socket (stdin, a file...): the handoff is broken and the fd
        // is not ours to take. Leave it open and unchanged.
        Ok(_) => return Err(bad("not a socket")),
        Err(e) => return Err(bad(&format!("fstat failed: {e}"))),
    }
    // SAFETY: the fd is an open socket (checked above), and WAYLAND_SOCKET is
    // the parent process's handoff of that fd to this process: it is ours to
    // own and close. The variable is removed below, so no later call takes
    // it a second time.
    let fd = unsafe { OwnedFd::from_raw_fd(number) };
    // The fd must not leak into processes we spawn. fcntl(F_SETFD) on an
    // open fd only fails for reasons that cannot happen here (EBADF was
    // ruled out above), so a failure is reported and otherwise ignored.
    if let Err(e) = set_cloexec(&fd) {
        log::warn!("could not set FD_CLOEXEC on WAYLAND_SOCKET fd {number}: {e}");
    }
    // Edition 2021: remove_var is a safe fn; the thread-safety caveat is in
    // this function's callers' docs (call early, before threads).
    std::env::remove_var("WAYLAND_SOCKET");
    log::debug!("using WAYLAND_SOCKET fd {number}");
    Ok(UnixStream::from(fd))
}

/// Whether `number` is an open fd of this process.
fn fd_is_open(number: RawFd) -> bool {
    // nix's fcntl takes an AsFd, and a BorrowedFd may only be made for an
    // fd known to be open: exactly what is being tested. So this one call
    // goes to libc directly, as libwayland does.
    // SAFETY: F_GETFD takes no pointer argument and only reads the fd
    // table; on a number that is not an open fd it fails with EBADF.
    let flags = unsafe { nix::libc::fcntl(number, nix::libc::F_GETFD) };
    flags != -1
}

/// Sets `FD_CLOEXEC`, keeping the other fd flags.
fn set_cloexec(fd: &OwnedFd) -> nix::Result<()> {
    let flags = FdFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFD)?);
    fcntl(fd.as_fd(), FcntlArg::F_SETFD(flags | FdFlag::FD_CLOEXEC))?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
