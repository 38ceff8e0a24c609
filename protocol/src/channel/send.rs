//! The sending half of a [`PeerChannel`]: `text` and `file` requests, the
//! answers `ack`, `refuse` and `progress`, and the checks made before
//! anything is queued.
//!
//! What it is: the `send_*` methods and the answers ([`PeerChannel::ack`],
//! [`PeerChannel::refuse`], [`PeerChannel::progress`]), which check a
//! message (string lengths, NULs, the announced size against `fstat`), queue
//! it on the connection and try one non-blocking flush. What it is not: the
//! waiting; [`PeerChannel::flush`] and [`PeerChannel::wait_ack`] block.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};

use super::{ChannelError, PeerChannel};
use crate::connection::ConnectionError;
use crate::debug::Direction;
use crate::protocols::broker::waypass_peer_v1::{req, INTERFACE};
use crate::protocols::broker::PEER_OBJECT_ID as OBJECT_ID;
use crate::sealed::SealedFile;
use crate::wire::{encoded_size, Arg, HEADER_SIZE, MAX_MESSAGE_SIZE};

/// The longest string (in bytes, without its NUL) that fits in a message
/// whose other arguments take `fixed` bytes: the string's length word, its
/// bytes and NUL, padded to 4, must fit in what is left of 4096 bytes.
const fn max_string(fixed: usize) -> usize {
    ((MAX_MESSAGE_SIZE - HEADER_SIZE - fixed - 4) & !3) - 1
}

/// The longest text [`PeerChannel::send_text`] sends: 4079 bytes.
pub const MAX_TEXT_LEN: usize = max_string(4);

/// The longest file name a `file` message carries: 4071 bytes.
pub const MAX_NAME_LEN: usize = max_string(12);

/// The longest reason [`PeerChannel::refuse`] sends, and the longest kept
/// from a received `refuse`: 256 bytes.
pub const MAX_REASON_LEN: usize = 256;

impl PeerChannel {
    /// Sends a text message; returns its serial. Texts longer than
    /// [`MAX_TEXT_LEN`] bytes are [`ChannelError::TooLong`].
    pub fn send_text(&mut self, text: &str) -> Result<u32, ChannelError> {
        let text = wire_string(text, MAX_TEXT_LEN)?;
        let serial = self.next_serial;
        self.queue(req::TEXT, &[Arg::Uint(serial), Arg::Str(Some(&text))])?;
        Ok(self.advance_serial())
    }

    /// Offers a file by fd, announcing `name` and `size`; returns the serial.
    ///
    /// The caller keeps its fd; a writable one is reopened read-only first.
    /// `size` larger than the file's `fstat` size is
    /// [`ChannelError::BadSize`], checked before anything is queued. When
    /// nothing else waits to be sent the offer goes out at once in one
    /// `sendmsg` with the caller's fd (an `fstat`, an `fcntl(F_GETFL)` and
    /// that `sendmsg`); if it has to wait, the connection queues a duplicate
    /// of the fd.
    pub fn send_file(
        &mut self,
        fd: BorrowedFd<'_>,
        name: &str,
        size: u64,
    ) -> Result<u32, ChannelError> {
        let name = wire_string(name, MAX_NAME_LEN)?;
        check_size(fd, size)?;
        match read_only(fd)? {
            Some(reopened) => self.queue_file_owned(reopened, &name, size),
            None => {
                let serial = self.next_serial;
                self.queue(req::FILE, &file_args(serial, fd, &name, size))?;
                self.offered.insert(serial, size);
                Ok(self.advance_serial())
            }
        }
    }

    /// [`PeerChannel::send_file`] for an fd the caller gives away: it is
    /// queued as it is, never duplicated, and closed once sent (or when the
    /// channel is dropped). A writable one is replaced by a read-only
    /// reopen; `size` is checked against `fstat` first. On an error the fd
    /// is closed.
    pub fn send_file_owned(
        &mut self,
        fd: OwnedFd,
        name: &str,
        size: u64,
    ) -> Result<u32, ChannelError> {
        let name = wire_string(name, MAX_NAME_LEN)?;
        check_size(fd.as_fd(), size)?;
        let fd = read_only(fd.as_fd())?.unwrap_or(fd);
        self.queue_file_owned(fd, &name, size)
    }

    /// Opens a regular file `O_RDONLY | O_CLOEXEC` and offers it with its
    /// size and file name; returns the serial. The file is read-only to the
    /// peer but not frozen: use [`PeerChannel::send_snapshot`] for contents
    /// that must not change while the peer reads them.
    ///
    /// Four calls: the `open`, one `fstat` (a regular file, and its size),
    /// the `sendmsg`, and the `close` of the fd once sent. Opened read-only
    /// here, it needs no writability check and no duplicate.
    pub fn send_path(&mut self, path: &Path) -> Result<u32, ChannelError> {
        let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| ChannelError::io("open the file to offer", e))?;
        let st = fstat(&fd).map_err(|e| ChannelError::io("fstat the file to offer", e))?;
        let regular = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        if regular != SFlag::S_IFREG {
            return Err(ChannelError::io(
                "offer a path that is not a regular file",
                io::ErrorKind::InvalidInput,
            ));
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let name = wire_string(&name, MAX_NAME_LEN)?;
        // The size announced is the one fstat just gave: nothing to check.
        self.queue_file_owned(fd, &name, u64::try_from(st.st_size).unwrap_or(0))
    }

    /// Copies `bytes` into a new sealed memfd and offers it as `name`; the
    /// peer sees exactly these bytes, forever. Returns the serial.
    pub fn send_snapshot(&mut self, name: &str, bytes: &[u8]) -> Result<u32, ChannelError> {
        wire_string(name, MAX_NAME_LEN)?;
        let file =
            SealedFile::from_bytes("waypass-peer-snapshot", bytes).map_err(ChannelError::Seal)?;
        self.send_sealed(&file, name)
    }

    /// Offers an existing sealed file as `name`, through a read-only reopen
    /// with its own offset. Returns the serial. The reopen is read-only and
    /// the seals fix the size, so neither is checked again: an `open`, the
    /// `sendmsg` and a `close`.
    pub fn send_sealed(&mut self, file: &SealedFile, name: &str) -> Result<u32, ChannelError> {
        let name = wire_string(name, MAX_NAME_LEN)?;
        let fd = file.reopen_read_only().map_err(ChannelError::Seal)?;
        self.queue_file_owned(fd, &name, file.size() as u64)
    }

    /// Acknowledges the peer's message `serial`. If the peer has already
    /// closed its end, the ack is dropped and this is `Ok`.
    pub fn ack(&mut self, serial: u32) -> Result<(), ChannelError> {
        self.queue_answer(req::ACK, &[Arg::Uint(serial)])
    }

    /// Refuses the peer's message `serial`, instead of acking it, with a
    /// reason for people. The reason is sanitised, never refused: only its
    /// first line is sent, other control characters become spaces, and it
    /// is cut (at a character boundary, ending in `…`) to
    /// [`MAX_REASON_LEN`] bytes. If the peer has already closed its end,
    /// the refusal is dropped and this is `Ok`.
    pub fn refuse(&mut self, serial: u32, reason: &str) -> Result<(), ChannelError> {
        let reason = sanitise_reason(reason);
        let reason = CString::new(reason).expect("sanitised: no NUL");
        self.queue_answer(req::REFUSE, &[Arg::Uint(serial), Arg::Str(Some(&reason))])
    }

    /// Tells the peer we have read `done` bytes of its file `serial`, so
    /// that it keeps waiting (see [`PeerChannel::wait_ack_with`]). Send it
    /// now and then while reading a large file, e.g. every few MiB or
    /// every second. If the peer has already closed its end, this is `Ok`.
    pub fn progress(&mut self, serial: u32, done: u64) -> Result<(), ChannelError> {
        let args = [
            Arg::Uint(serial),
            Arg::Uint((done >> 32) as u32),
            Arg::Uint(done as u32),
        ];
        self.queue_answer(req::PROGRESS, &args)
    }

    /// Queues an answer to the peer (`ack`, `refuse`, `progress`): one to
    /// a peer that has closed is dropped quietly, nobody waits for it.
    fn queue_answer(
        &mut self,
        opcode: u16,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<(), ChannelError> {
        match self.queue(opcode, args) {
            Err(ChannelError::Connection(ConnectionError::Closed)) => {
                log::debug!(
                    "peer closed before our {}",
                    INTERFACE.requests[usize::from(opcode)].name
                );
                Ok(())
            }
            other => other,
        }
    }

    /// Returns the serial just used and moves to the next.
    fn advance_serial(&mut self) -> u32 {
        let serial = self.next_serial;
        self.next_serial = serial.wrapping_add(1);
        serial
    }

    /// Sends one request to the peer now (or queues it if the socket is
    /// full, see [`Connection::send_now`](crate::Connection::send_now)) and
    /// traces it.
    fn queue(&mut self, opcode: u16, args: &[Arg<'_, BorrowedFd<'_>>]) -> Result<(), ChannelError> {
        if self.write_closed {
            return Err(ConnectionError::Closed.into());
        }
        let desc = &INTERFACE.requests[usize::from(opcode)];
        let before = self.conn.split().1.queued_bytes();
        match self.conn.send_now(OBJECT_ID, opcode, desc, args) {
            Ok(_) => {
                let after = self.conn.split().1.queued_bytes();
                self.bytes_sent += (before + encoded_size(args) - after) as u64;
            }
            Err(ConnectionError::Closed) => {
                self.write_closed = true;
                return Err(ConnectionError::Closed.into());
            }
            Err(e) => return Err(e.into()),
        }
        self.tracer
            .trace(Direction::Sent, &INTERFACE, OBJECT_ID, desc, args, &|_| {
                None
            });
        Ok(())
    }

    /// Queues a `file` request that owns `fd` (read-only, its size checked
    /// by the caller), traces it and tries one flush; returns the serial.
    fn queue_file_owned(
        &mut self,
        fd: OwnedFd,
        name: &CStr,
        size: u64,
    ) -> Result<u32, ChannelError> {
        if self.write_closed {
            return Err(ConnectionError::Closed.into());
        }
        let serial = self.next_serial;
        let desc = &INTERFACE.requests[usize::from(req::FILE)];
        let args = Vec::from(file_args(serial, fd, name, size));
        self.tracer
            .trace(Direction::Sent, &INTERFACE, OBJECT_ID, desc, &args, &|_| {
                None
            });
        self.conn.send_owned(OBJECT_ID, req::FILE, desc, args)?;
        self.offered.insert(serial, size);
        self.flush_once()?;
        Ok(self.advance_serial())
    }
}

/// The arguments of `file(serial, fd, name, size_hi, size_lo)`.
fn file_args<Fd>(serial: u32, fd: Fd, name: &CStr, size: u64) -> [Arg<'_, Fd>; 5] {
    [
        Arg::Uint(serial),
        Arg::Fd(fd),
        Arg::Str(Some(name)),
        Arg::Uint((size >> 32) as u32),
        Arg::Uint(size as u32),
    ]
}

/// `BadSize` if the file behind `fd` holds less than `size` bytes (`fstat`).
fn check_size(fd: BorrowedFd<'_>, size: u64) -> Result<(), ChannelError> {
    let st = fstat(fd).map_err(|e| ChannelError::io("fstat the file to offer", e))?;
    let file_size = u64::try_from(st.st_size).unwrap_or(0);
    if size > file_size {
        return Err(ChannelError::BadSize {
            announced: size,
            file_size,
        });
    }
    Ok(())
}

/// Strings shorter than this are copied to the stack to be sent.
const INLINE_STRING: usize = 256;

/// A string ready for the wire (NUL-terminated, none inside): short ones
/// on the stack, so that a text or a file offer allocates nothing for it.
// Large on purpose: a short-lived local, and boxing it is what it avoids.
#[allow(clippy::large_enum_variant)]
enum WireString {
    Inline {
        bytes: [u8; INLINE_STRING],
        /// With the NUL.
        len: usize,
    },
    Heap(CString),
}

impl std::ops::Deref for WireString {
    type Target = CStr;

    fn deref(&self) -> &CStr {
        match self {
            WireString::Inline { bytes, len } => CStr::from_bytes_with_nul(&bytes[..*len])
                .expect("wire_string checked for a NUL and appended one"),
            WireString::Heap(s) => s,
        }
    }
}

/// `s` as a wire string of at most `max` bytes.
fn wire_string(s: &str, max: usize) -> Result<WireString, ChannelError> {
    if s.len() > max {
        return Err(ChannelError::TooLong { len: s.len(), max });
    }
    if s.len() >= INLINE_STRING {
        return CString::new(s)
            .map(WireString::Heap)
            .map_err(|_| ChannelError::InteriorNul);
    }
    if s.as_bytes().contains(&0) {
        return Err(ChannelError::InteriorNul);
    }
    let mut bytes = [0; INLINE_STRING];
    bytes[..s.len()].copy_from_slice(s.as_bytes());
    Ok(WireString::Inline {
        bytes,
        len: s.len() + 1,
    })
}

/// A read-only reopen of `fd` if it is open for writing, else `None`.
fn read_only(fd: BorrowedFd<'_>) -> Result<Option<OwnedFd>, ChannelError> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| ChannelError::io("read fd flags", e))?;
    if OFlag::from_bits_truncate(flags) & OFlag::O_ACCMODE == OFlag::O_RDONLY {
        return Ok(None);
    }
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let reopened = nix::fcntl::open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ChannelError::io("reopen the file to offer read-only", e))?;
    log::debug!(
        "offering a read-only reopen of writable fd {}",
        fd.as_raw_fd()
    );
    Ok(Some(reopened))
}

/// A refusal reason as it may travel and be shown: the first line of
/// `reason`, other control characters (tabs, escapes, NUL) replaced by
/// spaces, trimmed, and cut at a character boundary to at most
/// [`MAX_REASON_LEN`] bytes, ending in `…` when cut.
pub(super) fn sanitise_reason(reason: &str) -> String {
    let line = reason.split(['\n', '\r']).next().unwrap_or_default();
    let clean: String = line
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.trim();
    if clean.len() <= MAX_REASON_LEN {
        return clean.to_owned();
    }
    let ellipsis = '…';
    let mut end = MAX_REASON_LEN - ellipsis.len_utf8();
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = clean[..end].to_owned();
    cut.push(ellipsis);
    cut
}
