//! Getting the bytes of a keymap fd: mapped when the file cannot shrink,
//! copied with `pread` when it can.
//!
//! What it is: [`read_text`], which takes the fd, the announced size and
//! what [`inspect_fd`](waypass_protocol::inspect_fd) said about the file,
//! and returns the text before the first NUL and how it was read
//! ([`KeymapAccess`]). What it is not: the checks on format and seals, or
//! parsing (see the parent module).
//!
//! # Implementation notes
//!
//! - A mapping of a file that its owner truncates afterwards raises
//!   SIGBUS on the next access past the new end, and the owner here is the
//!   server, which we do not trust. Only a file sealed with
//!   `F_SEAL_SHRINK` cannot shrink, so only such a file is mapped
//!   (`PROT_READ`, `MAP_PRIVATE`). Anything else (an unsealed memfd, a
//!   `/dev/shm` file as wlroots sends, a plain file) is copied with
//!   `pread` into memory: a file that shrinks under us gives a short read,
//!   which is [`FetchError::ShortRead`], not a signal.
//! - Either way the size is checked first (`0 < size <= fstat size`,
//!   `size <= MAX_KEYMAP_SIZE`), so neither path reads or allocates more
//!   than the announced size, and that is bounded.
//! - `pread` leaves the file offset alone, which the server may share with
//!   other clients (see WAYLAND.md on a shared offset left at EOF).

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::uio::pread;
use waypass_protocol::{FdInfo, ReadOnlyMap, SealError, Seals};

use crate::error::FetchError;

/// The largest keymap size accepted: 16 MiB. A US keymap is about 64 KB;
/// a size past this is a hostile or broken server, not a keyboard.
pub const MAX_KEYMAP_SIZE: u64 = 16 << 20;

/// How the keymap bytes were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeymapAccess {
    /// Mapped `PROT_READ` + `MAP_PRIVATE`: the file was sealed against
    /// shrinking.
    Mapped,
    /// Copied with `pread`: the file could shrink, so it was not mapped.
    Copied,
}

impl KeymapAccess {
    /// `"mapped"` or `"copied"`, for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            KeymapAccess::Mapped => "mapped",
            KeymapAccess::Copied => "copied",
        }
    }
}

/// The text before the first NUL of the first `size` bytes of `fd`, and
/// how they were read.
pub(super) fn read_text(
    fd: BorrowedFd<'_>,
    size: u64,
    info: &FdInfo,
) -> Result<(String, KeymapAccess), FetchError> {
    if size == 0 || size > info.size {
        return Err(FetchError::BadSize {
            size,
            file_size: info.size,
        });
    }
    if size > MAX_KEYMAP_SIZE {
        return Err(FetchError::TooLarge {
            size,
            max: MAX_KEYMAP_SIZE,
        });
    }
    let sealed = info.seals.is_some_and(|s| s.contains(Seals::SHRINK));
    if sealed {
        log::debug!("keymap fd is sealed against shrinking: mapping {size} bytes MAP_PRIVATE");
        let map = ReadOnlyMap::new(fd, size).map_err(|e| match e {
            SealError::EmptySize => FetchError::BadSize {
                size,
                file_size: info.size,
            },
            other => FetchError::from(other),
        })?;
        Ok((text_of(&map)?, KeymapAccess::Mapped))
    } else {
        log::debug!("keymap fd can shrink (no F_SEAL_SHRINK): reading {size} bytes with pread");
        let bytes = pread_exact(fd, size)?;
        Ok((text_of(&bytes)?, KeymapAccess::Copied))
    }
}

/// Reads exactly `size` bytes from offset 0; fewer is
/// [`FetchError::ShortRead`].
fn pread_exact(fd: BorrowedFd<'_>, size: u64) -> Result<Vec<u8>, FetchError> {
    // `size` is at most MAX_KEYMAP_SIZE, checked by the caller.
    let len = usize::try_from(size).map_err(|_| FetchError::TooLarge {
        size,
        max: MAX_KEYMAP_SIZE,
    })?;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match pread(fd.as_fd(), &mut buf[done..], done as i64) {
            // End of file before `size`: the file shrank after fstat.
            Ok(0) => {
                return Err(FetchError::ShortRead {
                    size,
                    read: done as u64,
                })
            }
            Ok(n) => done += n,
            // A signal interrupted the read: read on.
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(FetchError::Read(e.into())),
        }
    }
    Ok(buf)
}

/// The UTF-8 text before the first NUL.
fn text_of(bytes: &[u8]) -> Result<String, FetchError> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = std::str::from_utf8(&bytes[..end]).map_err(FetchError::NotUtf8)?;
    Ok(text.to_owned())
}
