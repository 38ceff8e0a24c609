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
//! - **Environment and threads.** Removing a variable is not thread-safe
//!   with respect to C code reading the environment, so call
//!   [`connect_to_display`] early, before starting threads.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
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
        /// The error from connect().
        source: io::Error,
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
            DisplayError::Connect { path, .. } => {
                write!(f, "no compositor at {}", path.display())
            }
        }
    }
}

impl std::error::Error for DisplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DisplayError::Connect { source, .. } => Some(source),
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
/// # use waypass_protocol::socket_argument;
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
/// A path too long for `sun_path` gives [`DisplayError::PathTooLong`];
/// every failure of connect() gives [`DisplayError::Connect`], with the
/// io::Error (`ECONNREFUSED`: a stale socket, `ENOENT`: no socket) as its
/// `source()`.
pub fn connect_to_path(path: &Path) -> Result<UnixStream, DisplayError> {
    check_length(path)?;
    log::debug!("connecting to {}", path.display());
    UnixStream::connect(path).map_err(|source| DisplayError::Connect {
        path: path.to_path_buf(),
        source,
    })
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
pub(crate) mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, IntoRawFd};
    use std::os::unix::net::UnixListener;
    use std::sync::{Mutex, MutexGuard};

    /// Serializes every test of this crate that reads or writes the
    /// environment (the environment is process-global).
    pub(crate) static ENV_LOCK: Mutex<()> = Mutex::new(());

    const VARS: [&str; 4] = [
        "WAYLAND_SOCKET",
        "WAYLAND_DISPLAY",
        "XDG_RUNTIME_DIR",
        "WAYLAND_DEBUG",
    ];

    /// Holds [`ENV_LOCK`], clears the variables these tests use, and puts
    /// their old values back on drop.
    pub(crate) struct EnvGuard {
        saved: Vec<(&'static str, Option<OsString>)>,
        _lock: MutexGuard<'static, ()>,
    }

    impl EnvGuard {
        pub(crate) fn new() -> EnvGuard {
            let lock = ENV_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            let saved = VARS.iter().map(|v| (*v, std::env::var_os(v))).collect();
            for v in VARS {
                std::env::remove_var(v);
            }
            EnvGuard { saved, _lock: lock }
        }

        pub(crate) fn set(&self, var: &str, value: impl AsRef<OsStr>) {
            std::env::set_var(var, value);
        }
    }

    impl Drop for EnvGuard {
        fn drop(&mut self) {
            for (var, value) in &self.saved {
                match value {
                    Some(v) => std::env::set_var(var, v),
                    None => std::env::remove_var(var),
                }
            }
        }
    }

    /// A private directory under the system temp dir, removed on drop.
    fn temp_dir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("wp-display-")
            .tempdir()
            .expect("create temp dir")
    }

    /// Checks that `client` reaches the peer accepted on `listener`.
    fn assert_connected(listener: &UnixListener, mut client: UnixStream) {
        let (mut server, _) = listener.accept().expect("accept");
        client.write_all(b"hi").expect("write");
        let mut buf = [0u8; 2];
        server.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"hi");
    }

    fn cloexec(fd: BorrowedFd<'_>) -> bool {
        let flags = fcntl(fd, FcntlArg::F_GETFD).expect("F_GETFD");
        FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC)
    }

    #[test]
    fn absolute_name_is_used_as_is() {
        let path = socket_path("/run/waypass/wayland-9").unwrap();
        assert_eq!(path, Path::new("/run/waypass/wayland-9"));
    }

    #[test]
    fn relative_name_goes_under_runtime_dir() {
        let env = EnvGuard::new();
        env.set("XDG_RUNTIME_DIR", "/run/user/1000");
        let path = socket_path("wayland-1").unwrap();
        assert_eq!(path, Path::new("/run/user/1000/wayland-1"));
    }

    #[test]
    fn relative_name_without_usable_runtime_dir_fails() {
        let env = EnvGuard::new();
        assert!(matches!(
            socket_path("wayland-1"),
            Err(DisplayError::NoRuntimeDir)
        ));
        for bad in ["", "run/user/1000"] {
            env.set("XDG_RUNTIME_DIR", bad);
            assert!(
                matches!(socket_path("wayland-1"), Err(DisplayError::NoRuntimeDir)),
                "XDG_RUNTIME_DIR={bad:?}"
            );
        }
        // An absolute name needs no runtime dir at all.
        assert!(socket_path("/tmp/wayland-1").is_ok());
    }

    #[test]
    fn paths_of_108_bytes_or_more_are_too_long() {
        let fits = format!("/{}", "a".repeat(SUN_PATH_MAX - 2));
        assert_eq!(fits.len(), 107);
        assert!(socket_path(&fits).is_ok());
        let long = format!("/{}", "a".repeat(SUN_PATH_MAX - 1));
        match socket_path(&long) {
            Err(DisplayError::PathTooLong(p)) => assert_eq!(p, Path::new(&long)),
            other => panic!("expected PathTooLong, got {other:?}"),
        }
        assert!(matches!(
            connect_to_path(Path::new(&long)),
            Err(DisplayError::PathTooLong(_))
        ));

        let env = EnvGuard::new();
        env.set("XDG_RUNTIME_DIR", format!("/{}", "r".repeat(100)));
        assert!(matches!(
            socket_path("wayland-0"),
            Err(DisplayError::PathTooLong(_))
        ));
    }

    #[test]
    fn connects_to_a_listening_socket() {
        let dir = temp_dir();
        let path = dir.path().join("wayland-t");
        let listener = UnixListener::bind(&path).expect("bind");
        assert_connected(&listener, connect_to_path(&path).unwrap());
        let name = path.to_str().unwrap();
        assert_connected(&listener, connect_to_display(Some(name)).unwrap());
    }

    #[test]
    fn connects_by_wayland_display_then_default_name() {
        let env = EnvGuard::new();
        let dir = temp_dir();
        env.set("XDG_RUNTIME_DIR", dir.path());

        let named = UnixListener::bind(dir.path().join("wayland-7")).expect("bind");
        env.set("WAYLAND_DISPLAY", "wayland-7");
        assert_connected(&named, connect_to_display(None).unwrap());

        std::env::remove_var("WAYLAND_DISPLAY");
        let default = UnixListener::bind(dir.path().join("wayland-0")).expect("bind");
        assert_connected(&default, connect_to_display(None).unwrap());
    }

    #[test]
    fn connect_failure_names_the_path_and_keeps_the_cause() {
        let dir = temp_dir();
        let missing = dir.path().join("nobody-here");
        let err = connect_to_path(&missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("no compositor at {}", missing.display())
        );
        match &err {
            DisplayError::Connect { path, source } => {
                assert_eq!(path, &missing);
                assert_eq!(source.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("expected Connect, got {other:?}"),
        }
        assert!(std::error::Error::source(&err).is_some());

        // A socket file nobody listens on any more: ECONNREFUSED.
        let stale = dir.path().join("stale");
        drop(UnixListener::bind(&stale).expect("bind"));
        match connect_to_path(&stale) {
            Err(DisplayError::Connect { source, .. }) => {
                assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused)
            }
            other => panic!("expected Connect, got {other:?}"),
        }
    }

    #[test]
    fn wayland_socket_is_taken_made_cloexec_and_unset() {
        let env = EnvGuard::new();
        let (ours, mut peer) = UnixStream::pair().expect("socketpair");
        // Hand the fd over as a parent would: no owner left on this side,
        // and close-on-exec cleared so that the test can see it set again.
        let number = ours.into_raw_fd();
        // SAFETY: `number` was just released by `into_raw_fd` and is open.
        let borrowed = unsafe { BorrowedFd::borrow_raw(number) };
        fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::empty())).expect("F_SETFD");
        assert!(!cloexec(borrowed));
        env.set("WAYLAND_SOCKET", number.to_string());

        let mut stream = connect_to_display(None).expect("WAYLAND_SOCKET");
        assert_eq!(stream.as_raw_fd(), number);
        assert!(std::env::var_os("WAYLAND_SOCKET").is_none());
        assert!(cloexec(stream.as_fd()));
        stream.write_all(b"ok").expect("write");
        let mut buf = [0u8; 2];
        peer.read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"ok");
    }

    #[test]
    fn explicit_name_wins_over_wayland_socket() {
        let env = EnvGuard::new();
        let dir = temp_dir();
        let path = dir.path().join("wayland-x");
        let listener = UnixListener::bind(&path).expect("bind");
        env.set("WAYLAND_SOCKET", "not even a number");
        assert_connected(
            &listener,
            connect_to_display(Some(path.to_str().unwrap())).unwrap(),
        );
        assert!(std::env::var_os("WAYLAND_SOCKET").is_some());
    }

    #[test]
    fn bad_wayland_socket_values_are_refused() {
        let env = EnvGuard::new();
        for value in ["abc", "", "-1", "3x", "2147483647", "99999999999"] {
            env.set("WAYLAND_SOCKET", value);
            match connect_to_display(None) {
                Err(DisplayError::BadWaylandSocket(v)) => assert_eq!(v, value),
                other => panic!("WAYLAND_SOCKET={value:?}: got {other:?}"),
            }
            // As in libwayland, a refused value stays in the environment.
            assert_eq!(std::env::var("WAYLAND_SOCKET").as_deref(), Ok(value));
        }
    }

    #[test]
    fn wayland_socket_naming_a_non_socket_is_refused_and_left_open() {
        let env = EnvGuard::new();
        let file = std::fs::File::open("/dev/null").expect("open /dev/null");
        env.set("WAYLAND_SOCKET", file.as_raw_fd().to_string());
        assert!(matches!(
            connect_to_display(None),
            Err(DisplayError::BadWaylandSocket(_))
        ));
        // Still open: F_GETFD succeeds, and dropping `file` closes it once
        // (std aborts on a double close in debug builds).
        assert!(fd_is_open(file.as_raw_fd()));
        drop(file);
    }
}
