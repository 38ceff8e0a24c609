//! A file a peer offered over a channel: its fd, its announced name and
//! size, and the careful ways to read it.
//!
//! What it is: [`FileOffer`], which owns the received fd. Its readers go
//! through that fd from offset 0 with `pread`, or map it with
//! [`ReadOnlyMap`], and never trust the announced size beyond what `fstat`
//! reports. [`FileOffer::safe_name`] vets the announced name before anyone
//! uses it as a path. What it is not: a downloader that writes files; where
//! the contents go is the caller's choice.
//!
//! # Implementation notes
//!
//! - `pread` leaves the open file description's offset alone. The sender may
//!   share that description with others (a dup, or the same fd offered
//!   twice) and a `read` would start wherever they left it.
//! - The size is checked against `fstat` first, and a `pread` that meets end
//!   of file early (the owner truncated an unsealed file meanwhile) is also
//!   [`ChannelError::BadSize`]: a short read is never mistaken for the file.
//!   Reading with `pread` cannot raise SIGBUS; mapping can, if an unsealed
//!   file shrinks after the check (see [`ReadOnlyMap::new`]).

use std::io::{self, Write};
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sys::stat::fstat;
use nix::sys::uio::pread;

use super::ChannelError;
use crate::sealed::{ReadOnlyMap, SealError};

/// How many bytes [`FileOffer::read_into`] reads per `pread`.
const READ_CHUNK: usize = 1 << 20;

/// The longest name [`FileOffer::safe_name`] accepts: Linux's `NAME_MAX`.
pub const SAFE_NAME_MAX: usize = 255;

/// A file the peer offered with `waypass_peer_v1.file`.
#[derive(Debug)]
pub struct FileOffer {
    /// The peer's serial for this message; [`ack`](super::PeerChannel::ack) it.
    pub serial: u32,
    /// The file, as the peer sent it (read-only if the peer followed the protocol).
    pub fd: OwnedFd,
    /// The name the peer announced, converted lossily from UTF-8. Not a
    /// safe path: see [`FileOffer::safe_name`].
    pub name: String,
    /// The size in bytes the peer announced (`size_hi << 32 | size_lo`).
    pub size: u64,
}

impl FileOffer {
    /// The announced name if it is safe to use as one path component in a
    /// directory of the caller's choice, else `None`.
    ///
    /// Refused: the empty name, `.` and `..`, any name holding `/`, control
    /// characters (newlines and escapes that would garble logs and
    /// terminals) or U+FFFD (the name was not UTF-8), and names longer than
    /// [`SAFE_NAME_MAX`] bytes. Names are refused, not rewritten, so two
    /// different offers never end up with the same sanitized name.
    pub fn safe_name(&self) -> Option<&str> {
        is_safe_name(&self.name).then_some(self.name.as_str())
    }

    /// The file's real size from `fstat`, after checking that it holds the
    /// announced size: [`ChannelError::BadSize`] when it holds less.
    pub fn check_size(&self) -> Result<u64, ChannelError> {
        let st = fstat(&self.fd).map_err(|e| ChannelError::io("fstat the offered file", e))?;
        let file_size = u64::try_from(st.st_size).unwrap_or(0);
        if self.size > file_size {
            return Err(ChannelError::BadSize {
                announced: self.size,
                file_size,
            });
        }
        Ok(file_size)
    }

    /// Reads the announced `size` bytes from offset 0 into a new vector.
    pub fn read_to_vec(&self) -> Result<Vec<u8>, ChannelError> {
        self.check_size()?;
        let len = usize::try_from(self.size).map_err(|_| {
            ChannelError::io("allocate for the offered file", io::ErrorKind::OutOfMemory)
        })?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(len).map_err(|_| {
            ChannelError::io("allocate for the offered file", io::ErrorKind::OutOfMemory)
        })?;
        buf.resize(len, 0);
        let mut done = 0;
        while done < len {
            let end = len.min(done + READ_CHUNK);
            done += self.pread_some(&mut buf[done..end], done as u64)?;
        }
        Ok(buf)
    }

    /// Copies the announced `size` bytes from offset 0 into `out`, returning
    /// how many were copied (always `size` on success).
    pub fn read_into(&self, out: &mut impl Write) -> Result<u64, ChannelError> {
        self.check_size()?;
        let mut chunk = vec![0; READ_CHUNK.min(usize::try_from(self.size).unwrap_or(READ_CHUNK))];
        let mut done = 0u64;
        while done < self.size {
            let want = chunk
                .len()
                .min(usize::try_from(self.size - done).unwrap_or(usize::MAX));
            let n = self.pread_some(&mut chunk[..want], done)?;
            out.write_all(&chunk[..n])
                .map_err(|e| ChannelError::io("write the offered file's contents", e))?;
            done += n as u64;
        }
        Ok(done)
    }

    /// Maps the announced `size` bytes read-only and private, after the
    /// `fstat` check of [`ReadOnlyMap::new`]. An empty file cannot be mapped
    /// ([`SealError::EmptySize`]); use [`FileOffer::read_to_vec`] for it.
    pub fn map(&self) -> Result<ReadOnlyMap, ChannelError> {
        ReadOnlyMap::new(std::os::fd::AsFd::as_fd(&self.fd), self.size).map_err(|e| match e {
            SealError::SizeBeyondFile { size, file_size } => ChannelError::BadSize {
                announced: size,
                file_size,
            },
            e => ChannelError::Seal(e),
        })
    }

    /// One `pread` of up to `buf.len()` bytes at `offset`; at least one byte
    /// is read, or the file ended before the announced size.
    fn pread_some(&self, buf: &mut [u8], offset: u64) -> Result<usize, ChannelError> {
        let at = i64::try_from(offset)
            .map_err(|_| ChannelError::io("read the offered file", io::ErrorKind::InvalidInput))?;
        loop {
            match pread(&self.fd, buf, at) {
                // End of file before the announced size: the file shrank
                // after the fstat check (possible for an unsealed file).
                Ok(0) => {
                    return Err(ChannelError::BadSize {
                        announced: self.size,
                        file_size: offset,
                    })
                }
                Ok(n) => return Ok(n),
                // A signal interrupted the read before any byte: retry.
                Err(Errno::EINTR) => continue,
                // Anything else (EISDIR, ESPIPE for a pipe, EIO) is final.
                Err(e) => return Err(ChannelError::io("read the offered file", e)),
            }
        }
    }
}

/// Whether `name` is one harmless path component (see [`FileOffer::safe_name`]).
pub(super) fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= SAFE_NAME_MAX
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c.is_control() || c == char::REPLACEMENT_CHARACTER)
}
