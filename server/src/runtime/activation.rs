//! Serving a listening socket that someone else bound: socket activation
//! (`systemd`'s `LISTEN_FDS`, as `sd_listen_fds(3)` defines it) or a
//! program that embeds the server and passes its own listener.
//!
//! What it is: [`ListenFds`], which parses the three variables' values and
//! takes the socket they describe, and [`adopt`], which checks any
//! listener handed to the server and wraps it for the runtime. What it is
//! not: a reader of the environment. The binary reads and removes the
//! variables (`Cli::config_from_environment`); the library only sees
//! their values and, through `ServerConfig::listener`, the socket.
//!
//! # Implementation notes
//!
//! - **`sd_listen_fds(3)`'s rules.** `LISTEN_PID` must be our pid, else
//!   the variables were meant for another process (a parent that did not
//!   clean up) and are ignored. `LISTEN_FDS` counts the sockets, passed as
//!   fds 3, 4, ...; `LISTEN_FDNAMES` names them, colon-separated (used only
//!   in messages here). Each fd is made close-on-exec at once.
//!   waypass-server serves one socket: more than one is an error, and every
//!   fd passed is closed.
//! - **What is accepted.** An `AF_UNIX` `SOCK_STREAM` socket on which
//!   `listen()` was called (`SO_ACCEPTCONN`): what `ListenStream=PATH` with
//!   the default `Accept=no` gives. A TCP socket, a datagram socket or a
//!   connection (`Accept=yes`) is refused with the setting to change.
//! - **Whose files.** The path belongs to whoever bound the socket
//!   (systemd removes it with `RemoveOnStop=`): the server takes no lock
//!   file and removes nothing at exit. It reads the path with
//!   `getsockname` to print and log it, as for a socket of its own.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use log::{debug, info};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::socket::{
    getsockname, getsockopt, sockopt, AddressFamily, SockType, SockaddrLike, SockaddrStorage,
};
use waypass_protocol::__private::socket_argument;
use waypass_protocol::socket_path;

use crate::runtime::listener::{Bound, SocketFiles};

/// The first fd a service manager passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// The socket-activation variables, in the order they are read.
pub const LISTEN_VARIABLES: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// Why an inherited listening socket cannot be served.
#[derive(Debug)]
#[non_exhaustive]
pub enum ActivationError {
    /// `LISTEN_PID` or `LISTEN_FDS` is not a number.
    BadVariable {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// More than one socket was passed; waypass-server serves one.
    TooMany {
        /// `LISTEN_FDS`.
        count: usize,
    },
    /// The fd is not open.
    NotOpen {
        /// Which fd, e.g. `fd 3 (LISTEN_FDS)`.
        what: String,
    },
    /// The fd is open but not a socket.
    NotASocket {
        /// Which fd.
        what: String,
    },
    /// The socket is of the wrong kind; `fix` says what to change.
    WrongKind {
        /// Which fd.
        what: String,
        /// What it is, e.g. "a datagram socket".
        kind: &'static str,
        /// What to change, e.g. "use ListenStream=".
        fix: &'static str,
    },
    /// Reading the socket's address or options failed otherwise.
    Inspect {
        /// Which fd.
        what: String,
        /// The error.
        source: io::Error,
    },
    /// `--socket` names another path than the inherited socket's.
    SocketMismatch {
        /// The inherited socket's path.
        inherited: PathBuf,
        /// What `--socket` names.
        asked: String,
    },
}

impl fmt::Display for ActivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActivationError::BadVariable { name, value } => {
                write!(f, "{name}={value:?} is not a number (socket activation)")
            }
            ActivationError::TooMany { count } => write!(
                f,
                "socket activation passed {count} sockets (LISTEN_FDS); \
                 waypass-server serves one: give its socket unit one ListenStream="
            ),
            ActivationError::NotOpen { what } => write!(f, "{what} is not open"),
            ActivationError::NotASocket { what } => write!(f, "{what} is not a socket"),
            ActivationError::WrongKind { what, kind, fix } => {
                write!(
                    f,
                    "{what} is {kind}, not a listening Unix stream socket: {fix}"
                )
            }
            ActivationError::Inspect { what, .. } => write!(f, "cannot inspect {what}"),
            ActivationError::SocketMismatch { inherited, asked } => write!(
                f,
                "--socket {asked} is not the inherited socket {}: leave --socket out",
                inherited.display()
            ),
        }
    }
}

impl std::error::Error for ActivationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ActivationError::Inspect { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The sockets a service manager passed to this process, read from the
/// values of `LISTEN_PID`, `LISTEN_FDS` and `LISTEN_FDNAMES`.
///
/// ```
/// use waypass_server::ListenFds;
///
/// let ours = std::process::id();
/// let fds = ListenFds::parse(Some(&ours.to_string()), Some("1"), None, ours).unwrap();
/// assert_eq!(fds.map(|f| f.count()), Some(1));
/// // Meant for another process: not ours to take.
/// let other = ListenFds::parse(Some("1"), Some("1"), None, ours).unwrap();
/// assert!(other.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenFds {
    count: usize,
    names: Vec<String>,
}

impl ListenFds {
    /// Parses the variables' values (`None`: unset) for the process
    /// `our_pid`. `Ok(None)` when nothing was passed to us: `LISTEN_PID`
    /// unset or another process's, or `LISTEN_FDS` unset or 0.
    pub fn parse(
        pid: Option<&str>,
        fds: Option<&str>,
        names: Option<&str>,
        our_pid: u32,
    ) -> Result<Option<ListenFds>, ActivationError> {
        let number = |name: &'static str, value: &str| {
            value
                .parse::<u64>()
                .map_err(|_| ActivationError::BadVariable {
                    name,
                    value: value.into(),
                })
        };
        let Some(pid) = pid else { return Ok(None) };
        if number("LISTEN_PID", pid)? != u64::from(our_pid) {
            return Ok(None);
        }
        let count = match fds {
            Some(fds) => number("LISTEN_FDS", fds)?,
            None => 0,
        };
        // More fds than an fd table holds is no count systemd sends.
        let count = usize::try_from(count)
            .ok()
            .filter(|&n| n < i32::MAX as usize)
            .ok_or_else(|| ActivationError::BadVariable {
                name: "LISTEN_FDS",
                value: fds.unwrap_or_default().into(),
            })?;
        if count == 0 {
            return Ok(None);
        }
        let names = names
            .map(|n| n.split(':').map(String::from).collect())
            .unwrap_or_default();
        Ok(Some(ListenFds { count, names }))
    }

    /// How many sockets were passed.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Takes the fds passed (3 and up), makes them close-on-exec, and
    /// returns the one listening socket; closes them all on any error.
    ///
    /// # Safety
    ///
    /// The fds `3 .. 3 + count` must be open and owned by nothing else in
    /// this process: they were passed to it by the service manager for
    /// this pid (which [`ListenFds::parse`] checked), and this is the one
    /// time they are taken (the caller removed the variables first and
    /// runs before any other thread could take them).
    pub unsafe fn take_listener(self) -> Result<UnixListener, ActivationError> {
        // No capacity from `count`: a hand-set LISTEN_FDS may be huge, and
        // the loop stops at the first number that is not open.
        let mut fds = Vec::new();
        for i in 0..self.count {
            let number = LISTEN_FDS_START + i as RawFd;
            // A hand-set LISTEN_FDS may count too many: never own (and
            // later close) a number that is not open.
            if !is_open(number) {
                // Dropping `fds` closes those taken so far.
                return Err(ActivationError::NotOpen {
                    what: self.describe(i),
                });
            }
            // SAFETY: the fd is open (checked just above) and the caller
            // guarantees it is ours alone (see `# Safety`); each number is
            // taken once.
            fds.push(unsafe { OwnedFd::from_raw_fd(number) });
        }
        for fd in &fds {
            // The manager passed them without FD_CLOEXEC: none may reach
            // a child. F_SETFD on an open fd cannot fail.
            let _ = set_cloexec(fd.as_fd());
        }
        let [fd] = <[OwnedFd; 1]>::try_from(fds).map_err(|fds| {
            // Dropping `fds` closes every one.
            ActivationError::TooMany { count: fds.len() }
        })?;
        let what = self.describe(0);
        inspect(fd.as_fd(), &what)?;
        debug!("socket activation: serving {what}");
        Ok(UnixListener::from(fd))
    }

    /// How the `i`-th fd is named in messages: `fd 3 (LISTEN_FDS, "name")`.
    fn describe(&self, i: usize) -> String {
        let fd = LISTEN_FDS_START + i as RawFd;
        match self.names.get(i).filter(|n| !n.is_empty()) {
            Some(name) => format!("fd {fd} (LISTEN_FDS, named {name:?})"),
            None => format!("fd {fd} (LISTEN_FDS)"),
        }
    }
}

/// Makes `listener` the server's socket: checks that it is a listening
/// `AF_UNIX` stream socket, makes it non-blocking and close-on-exec, and
/// checks it against `--socket` if that is given too. The path is not
/// locked, and not removed at exit.
pub fn adopt(listener: UnixListener, socket: Option<&str>) -> Result<Bound, ActivationError> {
    let what = format!("the inherited socket (fd {})", listener.as_raw_fd());
    let path = inspect(listener.as_fd(), &what)?;
    let inspect_error = |source: io::Error| ActivationError::Inspect {
        what: what.clone(),
        source,
    };
    set_cloexec(listener.as_fd()).map_err(|e| inspect_error(e.into()))?;
    listener.set_nonblocking(true).map_err(inspect_error)?;
    if let Some(asked) = socket {
        let same = socket_argument(asked)
            .ok()
            .and_then(|name| socket_path(&name).ok())
            .is_some_and(|asked| asked == path);
        if !same {
            return Err(ActivationError::SocketMismatch {
                inherited: path,
                asked: asked.into(),
            });
        }
    }
    info!(
        "{} was bound by another process: no lock file, and it stays at exit",
        path.display()
    );
    Ok(Bound {
        listener,
        files: SocketFiles::inherited(path),
    })
}

/// Checks that `fd` is a listening `AF_UNIX` stream socket; returns its
/// path (`@name` for an abstract one).
fn inspect(fd: BorrowedFd<'_>, what: &str) -> Result<PathBuf, ActivationError> {
    let inspect_error = |e: Errno| ActivationError::Inspect {
        what: what.into(),
        source: e.into(),
    };
    let wrong = |kind, fix| ActivationError::WrongKind {
        what: what.into(),
        kind,
        fix,
    };
    match getsockopt(&fd, sockopt::SockType) {
        Ok(SockType::Stream) => {}
        // A file, a pipe, a terminal.
        Err(Errno::ENOTSOCK) => return Err(ActivationError::NotASocket { what: what.into() }),
        // Nothing open at that number: LISTEN_FDS counted too many.
        Err(Errno::EBADF) => return Err(ActivationError::NotOpen { what: what.into() }),
        Err(e) => return Err(inspect_error(e)),
        Ok(SockType::Datagram) => return Err(wrong("a datagram socket", "use ListenStream=")),
        Ok(SockType::SeqPacket) => return Err(wrong("a seqpacket socket", "use ListenStream=")),
        Ok(_) => return Err(wrong("a raw socket", "use ListenStream=")),
    }
    let address: SockaddrStorage = getsockname(fd.as_raw_fd()).map_err(inspect_error)?;
    let Some(unix) = address.as_unix_addr() else {
        let kind = match address.family() {
            Some(AddressFamily::Inet | AddressFamily::Inet6) => "a TCP socket",
            _ => "not a Unix socket",
        };
        return Err(wrong(kind, "ListenStream= must be a path"));
    };
    if !getsockopt(&fd, sockopt::AcceptConn).map_err(inspect_error)? {
        return Err(wrong(
            "a connection, not a listening socket",
            "set Accept=no (the default) in the socket unit",
        ));
    }
    Ok(match (unix.path(), unix.as_abstract()) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(name)) => {
            let mut shown = b"@".to_vec();
            shown.extend_from_slice(name);
            PathBuf::from(std::ffi::OsStr::from_bytes(&shown))
        }
        (None, None) => PathBuf::from("(unnamed socket)"),
    })
}

/// Whether `number` is an open fd of this process.
fn is_open(number: RawFd) -> bool {
    // nix's fcntl takes an AsFd, and a BorrowedFd may only be made for an
    // open fd: exactly what is being tested. So this one call goes to libc,
    // as `waypass_protocol`'s WAYLAND_SOCKET check does.
    // SAFETY: F_GETFD takes no pointer argument and only reads the fd
    // table; on a number that is not an open fd it fails with EBADF.
    unsafe { nix::libc::fcntl(number, nix::libc::F_GETFD) != -1 }
}

/// Sets `FD_CLOEXEC`, keeping the other fd flags.
fn set_cloexec(fd: BorrowedFd<'_>) -> nix::Result<()> {
    let flags = FdFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFD)?);
    fcntl(fd, FcntlArg::F_SETFD(flags | FdFlag::FD_CLOEXEC))?;
    Ok(())
}

#[cfg(test)]
mod tests;
