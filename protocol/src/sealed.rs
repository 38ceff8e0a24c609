//! Sealed memory files and safe read-only mapping of received fds.
//!
//! (Skeleton: signatures are the contract; bodies are being written.)

use std::fmt;
use std::io;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

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
        todo!()
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
        todo!()
    }
}

impl std::error::Error for SealError {}

/// An immutable memfd: written once, then sealed SHRINK | GROW | WRITE | SEAL.
#[derive(Debug)]
pub struct SealedFile {
    fd: OwnedFd,
    size: usize,
}

impl SealedFile {
    /// Creates a memfd named `name` holding exactly `bytes`, and seals it.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<SealedFile, SealError> {
        todo!()
    }

    /// The file's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// A new read-only open file description of the same file (same inode),
    /// with its own offset, from `/proc/self/fd/N` with `O_RDONLY | O_CLOEXEC`.
    pub fn reopen_read_only(&self) -> Result<OwnedFd, SealError> {
        todo!()
    }
}

impl AsFd for SealedFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Reports what `fd` is: memfd or not, seals, size, (dev, ino).
pub fn inspect_fd(fd: BorrowedFd<'_>) -> Result<FdInfo, SealError> {
    todo!()
}

/// A read-only, private mapping of the first `size` bytes of a file.
#[derive(Debug)]
pub struct ReadOnlyMap {
    map: memmap2::Mmap,
}

impl ReadOnlyMap {
    /// Maps `size` bytes of `fd` `PROT_READ` + `MAP_PRIVATE`, after checking
    /// `0 < size <= fstat size` so that no access can raise SIGBUS.
    pub fn new(fd: BorrowedFd<'_>, size: u64) -> Result<ReadOnlyMap, SealError> {
        todo!()
    }
}

impl Deref for ReadOnlyMap {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map
    }
}
