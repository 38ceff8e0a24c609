//! What the sending commands send, taken from a path or from stdin.
//!
//! What it is: [`open_to_send`], which opens a file to offer without ever
//! blocking (a FIFO or a device is refused, not waited on), and stdin as
//! `-`: [`read_stdin`] for a text, and [`open_to_send`] of `-` for a file
//! (stdin's own file when it is a regular one, else a sealed memfd holding
//! a copy). What it is not: the sending; see `send`.
//!
//! # Implementation notes
//!
//! - `open(2)` of a FIFO blocks until a writer comes, and of some devices
//!   has side effects; `O_NONBLOCK` makes the open return at once, and
//!   `fstat` on the fd (not `stat` on the path: no race) decides. Only
//!   regular files pass, memfds included. `O_NONBLOCK` is cleared again on
//!   what passes, because the peer shares that open file description.
//! - `-` that is a regular file (`< file`) is reopened through
//!   `/proc/self/fd/0`, read-only, with an offset of its own: the peer
//!   reads the whole file whatever our stdin offset is.
//! - Any other stdin (a pipe, a terminal) is copied into a memfd sealed
//!   SHRINK | GROW | WRITE | SEAL, so the peer gets exactly the bytes read,
//!   through an fd, like any file; the memory is the memfd's, not ours.

use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};
use waypass_client::waypass_protocol::SealedFile;

/// The name a file read from stdin is offered under.
pub(super) const STDIN_NAME: &str = "stdin";

/// A file ready to offer: its fd, and the name and size to announce.
#[derive(Debug)]
pub(super) struct Outgoing {
    /// The open file, read-only (or a sealed memfd).
    pub fd: OwnedFd,
    /// The name announced to the peer.
    pub name: String,
    /// The size announced: `fstat`'s.
    pub size: u64,
}

/// Why something to send cannot be taken.
#[derive(Debug)]
pub enum InputError {
    /// `open` or `fstat` of a path failed.
    Open {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The path is a FIFO, a device, a directory or a socket.
    NotRegular {
        /// The path (`-` for stdin).
        path: PathBuf,
        /// What it is instead, e.g. "a FIFO".
        kind: &'static str,
    },
    /// Reading stdin, or copying it into a memfd, failed.
    Stdin(io::Error),
    /// `-` given twice: stdin can be read only once.
    StdinTwice,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Open { path, .. } => write!(f, "cannot open {}", path.display()),
            InputError::NotRegular { path, kind } => write!(
                f,
                "{} is {kind}, not a regular file: only regular files can be sent",
                path.display()
            ),
            InputError::Stdin(_) => f.write_str("cannot read stdin"),
            InputError::StdinTwice => f.write_str("stdin (-) can be sent only once"),
        }
    }
}

impl std::error::Error for InputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InputError::Open { source, .. } | InputError::Stdin(source) => Some(source),
            InputError::NotRegular { .. } | InputError::StdinTwice => None,
        }
    }
}

/// Whether a command-line argument means stdin.
pub(super) fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Opens `path` (`-`: stdin) to offer, never blocking; refuses anything
/// but a regular file.
pub(super) fn open_to_send(path: &Path) -> Result<Outgoing, InputError> {
    if is_stdin(path) {
        return stdin_file();
    }
    let (fd, size) = open_regular(path, path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Outgoing { fd, name, size })
}

/// All of stdin, for a text.
pub(super) fn read_stdin() -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map_err(InputError::Stdin)?;
    Ok(bytes)
}

/// A memfd named `name` holding everything `from` gives, sealed against
/// any change. Returns it with its size.
pub(super) fn sealed_copy(name: &str, from: &mut impl Read) -> io::Result<(OwnedFd, u64)> {
    let file = SealedFile::from_reader(name, from).map_err(io::Error::other)?;
    let size = file.size() as u64;
    Ok((file.into(), size))
}

/// Stdin as a file: its own file when regular, else a sealed copy.
fn stdin_file() -> Result<Outgoing, InputError> {
    let stdin = io::stdin();
    let st = fstat(stdin.as_fd()).map_err(|e| InputError::Stdin(e.into()))?;
    let (fd, size) = if file_kind(st.st_mode).is_none() {
        // The same file, opened anew: an offset of its own, read-only.
        open_regular(Path::new("/proc/self/fd/0"), Path::new("-"))?
    } else {
        sealed_copy(STDIN_NAME, &mut stdin.lock()).map_err(InputError::Stdin)?
    };
    Ok(Outgoing {
        fd,
        name: STDIN_NAME.to_string(),
        size,
    })
}

/// Opens `path` read-only without blocking; refuses anything but a regular
/// file, naming it `shown` in errors.
fn open_regular(path: &Path, shown: &Path) -> Result<(OwnedFd, u64), InputError> {
    let open_error = |source: Errno| InputError::Open {
        path: shown.to_path_buf(),
        source: source.into(),
    };
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    let fd = open(path, flags, Mode::empty()).map_err(open_error)?;
    let st = fstat(&fd).map_err(open_error)?;
    if let Some(kind) = file_kind(st.st_mode) {
        return Err(InputError::NotRegular {
            path: shown.to_path_buf(),
            kind,
        });
    }
    // The peer shares this open file description: hand it over blocking.
    fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_RDONLY)).map_err(open_error)?;
    Ok((fd, u64::try_from(st.st_size).unwrap_or(0)))
}

/// `None` for a regular file, else what it is.
fn file_kind(mode: u32) -> Option<&'static str> {
    match SFlag::from_bits_truncate(mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => None,
        SFlag::S_IFIFO => Some("a FIFO"),
        SFlag::S_IFCHR => Some("a character device"),
        SFlag::S_IFBLK => Some("a block device"),
        SFlag::S_IFDIR => Some("a directory"),
        SFlag::S_IFSOCK => Some("a socket"),
        SFlag::S_IFLNK => Some("a symbolic link"),
        _ => Some("not a regular file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::time::{Duration, Instant};

    /// A private directory, removed when the returned guard drops.
    fn temp(label: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("wp-input-{label}-"))
            .tempdir()
            .expect("temp dir")
    }

    #[test]
    fn a_fifo_is_refused_at_once_without_a_writer() {
        let dir = temp("fifo");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).expect("mkfifo");
        let start = Instant::now();
        let err = open_to_send(&fifo).expect_err("a FIFO");
        assert!(start.elapsed() < Duration::from_secs(10), "it blocked");
        assert!(matches!(err, InputError::NotRegular { kind: "a FIFO", .. }));
        assert!(err
            .to_string()
            .ends_with("is a FIFO, not a regular file: only regular files can be sent"));
    }

    #[test]
    fn devices_and_directories_are_refused() {
        let err = open_to_send(Path::new("/dev/zero")).expect_err("a device");
        assert!(matches!(
            err,
            InputError::NotRegular {
                kind: "a character device",
                ..
            }
        ));
        let err = open_to_send(Path::new("/")).expect_err("a directory");
        assert!(matches!(
            err,
            InputError::NotRegular {
                kind: "a directory",
                ..
            }
        ));
    }

    #[test]
    fn a_regular_file_opens_blocking_with_its_size_and_name() {
        let dir = temp("regular");
        let path = dir.path().join("hello.txt");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(b"hello"))
            .expect("write");
        let out = open_to_send(&path).expect("a regular file");
        assert_eq!((out.name.as_str(), out.size), ("hello.txt", 5));
        let flags = fcntl(&out.fd, FcntlArg::F_GETFL).expect("F_GETFL");
        assert_eq!(
            OFlag::from_bits_truncate(flags) & OFlag::O_NONBLOCK,
            OFlag::empty()
        );
    }

    #[test]
    fn a_sealed_copy_holds_the_bytes_and_cannot_change() {
        let (fd, size) = sealed_copy("t", &mut &b"coucou"[..]).expect("copy");
        assert_eq!(size, 6);
        let seals = fcntl(&fd, FcntlArg::F_GET_SEALS).expect("seals");
        let all = libc_seals();
        assert_eq!(seals & all, all);
        // Offered by its /proc path, as a user might: still a regular file.
        let path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let out = open_to_send(&path).expect("a memfd");
        let mut back = String::new();
        std::fs::File::from(out.fd)
            .read_to_string(&mut back)
            .expect("read");
        assert_eq!((back.as_str(), out.size), ("coucou", 6));
    }

    /// SHRINK | GROW | WRITE | SEAL, as the kernel numbers them.
    fn libc_seals() -> i32 {
        0x0001 | 0x0002 | 0x0004 | 0x0008
    }
}
