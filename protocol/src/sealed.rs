//! Sealed memory files, and safe read-only mapping of files received as fds.
//!
//! What it is: the two ends of a file handed over by fd, as the keymap of
//! `wl_keyboard.keymap` is. [`SealedFile`] is the sender's side: a memfd
//! written once and sealed so nobody can change it, which one process can
//! share with every peer. [`inspect_fd`] reports what a receiver got, and
//! [`ReadOnlyMap`] maps it without risking SIGBUS from a lying size.
//!
//! What it is not: a keymap layer (nothing here knows xkb), nor a pool of
//! writable shared buffers like `wl_shm`: these files never change.
//!
//! # Example
//!
//! ```
//! use std::os::fd::AsFd;
//! use waypass_protocol::{inspect_fd, ReadOnlyMap, SealedFile, Seals};
//!
//! let file = SealedFile::from_bytes("keymap", b"xkb_keymap { };\0")?;
//! // Each peer gets its own read-only reopen of the one file.
//! let fd = file.reopen_read_only()?;
//! let info = inspect_fd(fd.as_fd())?;
//! assert!(info.memfd);
//! assert_eq!(info.seals.unwrap().names(), ["seal", "shrink", "grow", "write"]);
//!
//! let map = ReadOnlyMap::new(fd.as_fd(), file.size() as u64)?;
//! assert_eq!(&map[..], b"xkb_keymap { };\0");
//! # Ok::<(), waypass_protocol::SealError>(())
//! ```
//!
//! # Implementation notes
//!
//! - The file is made with `memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING)`,
//!   written, then sealed `SHRINK | GROW | WRITE | SEAL` in one `F_ADD_SEALS`:
//!   its size and contents can never change again, and no seal can be added
//!   or removed.
//! - Peers get [`SealedFile::reopen_read_only`], not the memfd itself. Opening
//!   `/proc/self/fd/N` with `O_RDONLY` makes a new open file description of
//!   the same inode. It has its own file offset, so a peer that `read()`s
//!   the fd starts at 0 whatever others did (a shared offset left at EOF
//!   broke clients). And it is read-only, so a peer's `MAP_SHARED` +
//!   `PROT_READ` mapping works even on kernels that refuse `MAP_SHARED` of a
//!   write-sealed fd opened read-write.
//! - [`ReadOnlyMap`] maps `PROT_READ` + `MAP_PRIVATE` (as `wl_keyboard`
//!   version 7 requires) after checking `0 < size <= st_size`, because a
//!   mapping past the end of a file raises SIGBUS on access.
//! - [`inspect_fd`] reports and does not judge: wlroots sends an unsealed
//!   `/dev/shm` file and Weston seals without `F_SEAL_SEAL`, and both work.

use std::fmt;
use std::io::{self, Read};
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use memfd::{FileSeal, MemfdOptions};
use memmap2::MmapOptions;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::{fstat, Mode};

/// A set of `F_SEAL_*` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seals(pub u32);

impl Seals {
    /// `F_SEAL_SEAL`: no more seals can be added.
    pub const SEAL: Seals = Seals(0x0001);
    /// `F_SEAL_SHRINK`.
    pub const SHRINK: Seals = Seals(0x0002);
    /// `F_SEAL_GROW`.
    pub const GROW: Seals = Seals(0x0004);
    /// `F_SEAL_WRITE`.
    pub const WRITE: Seals = Seals(0x0008);
    /// `F_SEAL_FUTURE_WRITE`.
    pub const FUTURE_WRITE: Seals = Seals(0x0010);

    /// Whether every seal in `other` is set.
    pub fn contains(self, other: Seals) -> bool {
        self.0 & other.0 == other.0
    }

    /// Names of the set seals, in the order seal, shrink, grow, write, future_write.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Seals::SEAL, "seal"),
            (Seals::SHRINK, "shrink"),
            (Seals::GROW, "grow"),
            (Seals::WRITE, "write"),
            (Seals::FUTURE_WRITE, "future_write"),
        ]
        .into_iter()
        .filter(|&(seal, _)| self.contains(seal))
        .map(|(_, name)| name)
        .collect()
    }
}

/// What an fd is, for reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdInfo {
    /// Whether it is a memfd (its /proc link starts with `/memfd:`).
    pub memfd: bool,
    /// Its seals, or `None` when the file does not support sealing.
    pub seals: Option<Seals>,
    /// `st_size`.
    pub size: u64,
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

/// Errors about sealed files and mapping.
#[derive(Debug)]
#[non_exhaustive]
pub enum SealError {
    /// memfd_create failed.
    Create(io::Error),
    /// Writing the contents failed.
    Write(io::Error),
    /// Adding seals failed.
    AddSeals(io::Error),
    /// Reading seals or fstat failed.
    Inspect(io::Error),
    /// Reopening /proc/self/fd/N read-only failed.
    Reopen(io::Error),
    /// The announced size is 0.
    EmptySize,
    /// The announced size is larger than the file.
    SizeBeyondFile {
        /// The announced size.
        size: u64,
        /// The file's actual size.
        file_size: u64,
    },
    /// mmap failed.
    Map(io::Error),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Create(_) => f.write_str("cannot create a memfd"),
            SealError::Write(_) => f.write_str("cannot write the file contents"),
            SealError::AddSeals(_) => f.write_str("cannot seal the file"),
            SealError::Inspect(_) => f.write_str("cannot inspect the fd"),
            SealError::Reopen(_) => f.write_str("cannot reopen the file read-only"),
            SealError::EmptySize => f.write_str("announced size is 0"),
            SealError::SizeBeyondFile { size, file_size } => write!(
                f,
                "announced size {size} is beyond the file size {file_size}"
            ),
            SealError::Map(_) => f.write_str("cannot map the file"),
        }
    }
}

impl std::error::Error for SealError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SealError::Create(e)
            | SealError::Write(e)
            | SealError::AddSeals(e)
            | SealError::Inspect(e)
            | SealError::Reopen(e)
            | SealError::Map(e) => Some(e),
            SealError::EmptySize | SealError::SizeBeyondFile { .. } => None,
        }
    }
}

/// The `io::Error` inside a memfd crate error.
fn memfd_io(e: memfd::Error) -> io::Error {
    match e {
        memfd::Error::Create(e) | memfd::Error::AddSeals(e) | memfd::Error::GetSeals(e) => e,
    }
}

/// `/proc/self/fd/N`, the path of an open fd.
fn proc_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// An immutable memfd: written once, then sealed SHRINK | GROW | WRITE | SEAL.
#[derive(Debug)]
pub struct SealedFile {
    fd: OwnedFd,
    size: usize,
}

impl SealedFile {
    /// Creates a memfd named `name` holding exactly `bytes`, and seals it.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<SealedFile, SealError> {
        SealedFile::from_reader(name, &mut &bytes[..])
    }

    /// Creates a memfd named `name` holding everything `from` gives until
    /// its end (stdin, a pipe, a file), and seals it. The memfd's own
    /// offset is left at its end: hand it on with
    /// [`SealedFile::reopen_read_only`], or seek it.
    pub fn from_reader(name: &str, from: &mut impl Read) -> Result<SealedFile, SealError> {
        let memfd = MemfdOptions::default()
            .allow_sealing(true)
            .close_on_exec(true)
            .create(name)
            .map_err(|e| SealError::Create(memfd_io(e)))?;
        let copied = io::copy(from, &mut memfd.as_file()).map_err(SealError::Write)?;
        let size = usize::try_from(copied)
            .map_err(|_| SealError::Write(io::Error::other("larger than the address space")))?;
        memfd
            .add_seals(&[
                FileSeal::SealShrink,
                FileSeal::SealGrow,
                FileSeal::SealWrite,
                FileSeal::SealSeal,
            ])
            .map_err(|e| SealError::AddSeals(memfd_io(e)))?;
        log::debug!("sealed memfd {name:?}: {size} bytes");
        Ok(SealedFile {
            fd: memfd.into_file().into(),
            size,
        })
    }

    /// The file's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// A new read-only open file description of the same file (same inode),
    /// with its own offset, from `/proc/self/fd/N` with `O_RDONLY | O_CLOEXEC`.
    ///
    /// Hand this to a peer rather than the memfd itself: its offset is the
    /// peer's alone (a shared one may sit at EOF), and `MAP_SHARED` with
    /// `PROT_READ` works on it even on kernels that refuse that mapping of a
    /// write-sealed fd opened read-write.
    pub fn reopen_read_only(&self) -> Result<OwnedFd, SealError> {
        let path = proc_path(self.fd.as_fd());
        nix::fcntl::open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| SealError::Reopen(e.into()))
    }
}

impl AsFd for SealedFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<SealedFile> for OwnedFd {
    /// The memfd itself (read-write, but sealed against any change).
    fn from(file: SealedFile) -> OwnedFd {
        file.fd
    }
}

/// Reports what `fd` is: memfd or not, seals, size, (dev, ino).
pub fn inspect_fd(fd: BorrowedFd<'_>) -> Result<FdInfo, SealError> {
    let st = fstat(fd).map_err(|e| SealError::Inspect(e.into()))?;
    let seals = match fcntl(fd, FcntlArg::F_GET_SEALS) {
        Ok(bits) => Some(Seals(bits as u32)),
        // The file system does not support sealing (pipes, ext4 files...).
        Err(Errno::EINVAL) => None,
        Err(e) => return Err(SealError::Inspect(e.into())),
    };
    let link =
        nix::fcntl::readlink(proc_path(fd).as_str()).map_err(|e| SealError::Inspect(e.into()))?;
    Ok(FdInfo {
        memfd: link.as_encoded_bytes().starts_with(b"/memfd:"),
        seals,
        size: st.st_size as u64,
        dev: st.st_dev,
        ino: st.st_ino,
    })
}

/// A read-only, private mapping of the first `size` bytes of a file.
#[derive(Debug)]
pub struct ReadOnlyMap {
    map: memmap2::Mmap,
}

impl ReadOnlyMap {
    /// Maps `size` bytes of `fd` `PROT_READ` + `MAP_PRIVATE`, after checking
    /// `0 < size <= fstat size` so that no access can raise SIGBUS.
    ///
    /// "No access" holds while the file keeps its size: a sealed file
    /// (`F_SEAL_SHRINK`) always does, but the owner of an unsealed file could
    /// still truncate it later, and then an access past the new end raises
    /// SIGBUS. Compositors accept that for unsealed keymaps too.
    pub fn new(fd: BorrowedFd<'_>, size: u64) -> Result<ReadOnlyMap, SealError> {
        let st = fstat(fd).map_err(|e| SealError::Inspect(e.into()))?;
        let file_size = st.st_size as u64;
        if size == 0 {
            return Err(SealError::EmptySize);
        }
        let len = match usize::try_from(size) {
            Ok(len) if size <= file_size => len,
            _ => return Err(SealError::SizeBeyondFile { size, file_size }),
        };
        // SAFETY: memmap2 marks mapping unsafe because another process may
        // change the file under the mapping. Here the mapping is MAP_PRIVATE
        // and PROT_READ, so nothing we do can change the file, and its
        // length was checked against fstat just above. A sealed file cannot
        // change at all; an unsealed one could be truncated by its owner
        // later, and reading past the new end would raise SIGBUS: that risk
        // is documented on this function and is the one compositors accept.
        let map = unsafe { MmapOptions::new().len(len).map_copy_read_only(&fd) }
            .map_err(SealError::Map)?;
        Ok(ReadOnlyMap { map })
    }
}

impl Deref for ReadOnlyMap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}
