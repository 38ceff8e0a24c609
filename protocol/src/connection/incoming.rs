//! The receiving half of a [`Connection`](super::Connection): the one
//! `recvmsg` that fills the buffers, the parsing of its `SCM_RIGHTS` data,
//! and the decoding of whole messages out of the buffered bytes.
//!
//! What it is: a byte buffer and an fd queue with a cursor. What it is not:
//! a parser of its own; [`crate::wire`] says what the bytes mean.
//!
//! # Implementation notes
//!
//! The control buffer is parsed by hand, in safe code, following the
//! kernel's `struct cmsghdr` layout: nix's `RecvMsg::cmsgs` returns ENOBUFS
//! instead of the fds when `MSG_CTRUNC` is set, and those fds must still be
//! closed. The buffer starts zeroed, so a header length of 0 marks the end
//! of what the kernel wrote.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io::IoSliceMut;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::libc;
use nix::sys::socket::{recvmsg, MsgFlags};

use super::{ConnectionError, Limits, NextError, Recv};
use crate::interface::MessageDesc;
use crate::wire::{self, Header, Message, MAX_MESSAGE_SIZE};

/// `SCM_MAX_FD`: the most fds the kernel attaches to one `sendmsg`, and one
/// `recvmsg` on a stream socket never returns the fds of two `sendmsg`s.
pub(super) const MAX_FDS_IN: usize = 253;

/// The most bytes one `recvmsg` reads: one maximal message.
const READ_SIZE: usize = MAX_MESSAGE_SIZE;

/// `CMSG_ALIGN`: the kernel aligns control messages to `sizeof(long)`.
const fn cmsg_align(len: usize) -> usize {
    let a = size_of::<usize>();
    (len + a - 1) & !(a - 1)
}

/// `CMSG_LEN(0)`: where a control message's data starts.
const CMSG_HEADER: usize = cmsg_align(size_of::<libc::cmsghdr>());

/// `CMSG_SPACE(fds * sizeof(int))`.
pub(super) const fn cmsg_space_for_fds(fds: usize) -> usize {
    CMSG_HEADER + cmsg_align(fds * size_of::<RawFd>())
}

/// A control buffer aligned for `struct cmsghdr`, as nix's `recvmsg` reads
/// the first header through a reference.
#[repr(C, align(8))]
struct ControlBuffer([u8; cmsg_space_for_fds(MAX_FDS_IN)]);

const _: () =
    assert!(std::mem::align_of::<ControlBuffer>() >= std::mem::align_of::<libc::cmsghdr>());

/// This thread's control buffer, kept zeroed between receives: zeroing
/// 1 KiB before every `recvmsg` was 3% of the server's instructions per
/// round trip, and a receive without fds leaves it zeroed.
struct Scratch {
    control: ControlBuffer,
    /// How much of `control` the last receive may have written. It is set
    /// to the whole buffer before each `recvmsg` and narrowed only once the
    /// fds it brought are taken, so a receive that failed, or was cut short
    /// by a panic, leaves the whole buffer to be zeroed by the next one.
    dirty: usize,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            control: ControlBuffer([0; cmsg_space_for_fds(MAX_FDS_IN)]),
            dirty: 0,
        })
    };
}

/// Received bytes and fds waiting to be decoded.
pub struct Incoming {
    /// Received bytes in `buf[..end]`; those before `start` are consumed.
    /// `buf` itself is initialized memory that `recvmsg` writes into; its
    /// length only grows (by zeroing) while it is kept.
    buf: Vec<u8>,
    /// The first byte not yet decoded.
    start: usize,
    /// The end of the received bytes.
    end: usize,
    /// Keep the buffer and fd queue when drained (see `Connection::keep_buffers`).
    pub(super) keep: bool,
    /// `buf` is a [`SharedBuffers`](super::SharedBuffers) buffer, lent for
    /// this wakeup: never freed here, given back by `return_input`.
    lent: bool,
    /// Received fds not yet taken by a message, in arrival order.
    fds: VecDeque<OwnedFd>,
    /// `Limits::max_unclaimed_fds`.
    max_unclaimed_fds: usize,
}

impl Default for Incoming {
    /// An empty buffer with the default [`Limits`].
    fn default() -> Self {
        Incoming::with_limits(&Limits::default())
    }
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("buffered_bytes", &self.buffered_bytes())
            .field("queued_fds", &self.queued_fds())
            .finish()
    }
}

impl Incoming {
    /// An empty buffer that enforces `limits.max_unclaimed_fds`.
    pub(super) fn with_limits(limits: &Limits) -> Self {
        Incoming {
            buf: Vec::new(),
            start: 0,
            end: 0,
            keep: false,
            lent: false,
            fds: VecDeque::new(),
            max_unclaimed_fds: limits.max_unclaimed_fds,
        }
    }

    /// Drops every byte and fd received and not decoded yet (the fds
    /// close).
    pub(super) fn discard(&mut self) {
        self.start = 0;
        self.end = 0;
        self.fds.clear();
        self.release_if_drained();
    }

    /// Sets how many fds may be left waiting once every whole message is
    /// decoded (`Limits::max_unclaimed_fds`); see `Connection::set_caps`.
    pub fn set_max_unclaimed_fds(&mut self, max: usize) {
        self.max_unclaimed_fds = max;
    }

    /// Decodes the next complete message, or `Ok(None)` when more bytes are
    /// needed. `lookup` maps a header to the message's signature.
    ///
    /// On success the message's bytes are consumed and its fds taken from
    /// the queue. On an error nothing is consumed: the stream cannot be
    /// trusted any more and the caller should disconnect. A
    /// [`crate::DecodeError::NeedFds`] here is final, because a sender's fds
    /// always arrive with or before its bytes: report a missing fd.
    ///
    /// Where it would return `Ok(None)` (every whole message decoded), more
    /// than `Limits::max_unclaimed_fds` fds still queued is
    /// `NextError::Connection(ConnectionError::UnclaimedFds)`, and those
    /// fds are closed at once: a peer cannot make us hold more than that
    /// many of its fds between two receives.
    pub fn next_message<E>(
        &mut self,
        lookup: impl FnOnce(&Header) -> Result<&'static MessageDesc, E>,
    ) -> Result<Option<Message<'_>>, NextError<E>> {
        let header = match wire::split_message(&self.buf[self.start..self.end]) {
            Ok(Some((header, _))) => header,
            Ok(None) => {
                self.close_unclaimed_over_cap()?;
                self.release_if_drained();
                return Ok(None);
            }
            Err(m) => return Err(NextError::Malformed(m)),
        };
        let desc = lookup(&header).map_err(NextError::Lookup)?;
        let end = self.start + usize::from(header.size);
        let bytes = &self.buf[self.start..end];
        let message =
            wire::decode(header, bytes, desc, &mut self.fds).map_err(NextError::Decode)?;
        self.start = end;
        Ok(Some(message))
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered_bytes(&self) -> usize {
        self.end - self.start
    }

    /// Fds received and not yet consumed.
    pub fn queued_fds(&self) -> usize {
        self.fds.len()
    }

    /// Heap bytes held by the buffer and the fd queue.
    pub(super) fn heap_bytes(&self) -> usize {
        self.buf.capacity() + self.fds.capacity() * size_of::<OwnedFd>()
    }

    /// One `recvmsg` from `socket`, taking in at most `fd_capacity` fds.
    /// With `block`, the call sleeps until input, end of file, the socket's
    /// receive timeout or a signal (both `Recv::WouldBlock`), on a socket
    /// whose file is in blocking mode.
    pub(super) fn recv(
        &mut self,
        socket: BorrowedFd<'_>,
        limits: &Limits,
        fd_capacity: usize,
        block: bool,
    ) -> Result<Recv, ConnectionError> {
        self.compact();
        let filled = self.end;
        let room = limits.max_in_bytes.saturating_sub(filled).min(READ_SIZE);
        if room == 0 {
            // The buffer is at the cap and holds no complete message (the
            // caller drained those): this message can never be completed.
            return Err(ConnectionError::InBytesOverCap);
        }
        if self.buf.len() < filled + room {
            self.buf.reserve_exact(filled + room - self.buf.len());
            self.buf.resize(filled + room, 0);
        }
        let into = &mut self.buf[filled..filled + room];
        let fds = &mut self.fds;
        let queued_before = fds.len();
        let received = SCRATCH.with_borrow_mut(|scratch| {
            let dirty = std::mem::replace(&mut scratch.dirty, scratch.control.0.len());
            scratch.control.0[..dirty].fill(0);
            let control = &mut scratch.control.0[..cmsg_space_for_fds(fd_capacity)];
            let (bytes, flags) = recv_once(socket, into, control, block)?;
            let parsed = take_fds(control, |fd| fds.push_back(fd));
            if !flags.contains(MsgFlags::MSG_CTRUNC) {
                // Past the end of the last whole control message, the
                // kernel wrote at most the zero header that ended the walk.
                scratch.dirty = (parsed + CMSG_HEADER).min(control.len());
            }
            Ok((bytes, flags))
        });
        let (bytes, flags) = match received {
            Ok(r) => r,
            Err(e) => {
                self.release_if_drained();
                return match e {
                    // Nothing to read now: the event loop wakes us again;
                    // or a blocking wait's timeout or a signal ended it, and
                    // the caller waits again with the time left.
                    Errno::EAGAIN | Errno::EINTR => Ok(Recv::WouldBlock),
                    // The peer closed with data it had not read: it is gone.
                    Errno::ECONNRESET => Err(ConnectionError::Closed),
                    // Anything else is unexpected on a connected socket.
                    e => Err(ConnectionError::Recv(e.into())),
                };
            }
        };
        self.end = filled + bytes;
        let arrived = self.fds.len() - queued_before;
        log::trace!("recvmsg: {bytes} bytes, {arrived} fds");
        let refused = if flags.contains(MsgFlags::MSG_CTRUNC) {
            log::debug!("recvmsg: MSG_CTRUNC, closing the {arrived} fds that arrived");
            Some(ConnectionError::ControlTruncated)
        } else if bytes == 0 {
            // EOF: a sendmsg with fds always carries bytes, so none came.
            Some(ConnectionError::Closed)
        } else if self.fds.len() > limits.max_in_fds {
            Some(ConnectionError::InFdsOverCap)
        } else {
            None
        };
        match refused {
            Some(e) => {
                // Closes the fds this recvmsg brought in.
                self.fds.truncate(queued_before);
                Err(e)
            }
            None => Ok(Recv::Data(bytes)),
        }
    }

    /// With every whole message decoded, the fds still queued wait for
    /// messages whose bytes have not arrived (a sender may pass fds ahead of
    /// its bytes: its `sendmsg` was cut short, or our 4 KiB read stopped
    /// before the end of what it sent). A sender that passes fds with or
    /// before their message's bytes, at most 28 per `sendmsg`, never leaves
    /// more than 28 waiting; more are fds no message will take (sent with
    /// requests that carry none), and they are closed now.
    ///
    /// Fewer are kept: nothing the receiver sees tells an fd sent ahead of
    /// its message from one sent with no message (a partial message's
    /// header does not say how many fds the messages after it take), so
    /// closing them early would break a well-behaved sender.
    fn close_unclaimed_over_cap<E>(&mut self) -> Result<(), NextError<E>> {
        let queued = self.fds.len();
        if queued <= self.max_unclaimed_fds {
            return Ok(());
        }
        log::debug!("closing {queued} fds that no message takes");
        self.fds = VecDeque::new();
        Err(NextError::Connection(ConnectionError::UnclaimedFds {
            queued,
            max: self.max_unclaimed_fds,
        }))
    }

    /// Moves the undecoded tail to the front of the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Takes `shared` as the receive buffer for this wakeup, when this
    /// connection holds no bytes of its own (the usual case between
    /// messages): no allocation and no zeroing per wakeup.
    pub(super) fn borrow_input(&mut self, shared: &mut Vec<u8>) {
        if !self.lent && self.start == self.end && self.buf.capacity() == 0 {
            std::mem::swap(&mut self.buf, shared);
            self.start = 0;
            self.end = 0;
            self.lent = true;
        }
    }

    /// Gives the lent buffer back; a message that has not wholly arrived
    /// keeps its bytes, and only those, in a buffer of its own.
    pub(super) fn return_input(&mut self, shared: &mut Vec<u8>) {
        if !self.lent {
            return;
        }
        self.lent = false;
        // Every byte decoded (the usual case): the empty buffer it lent
        // for comes back, with nothing to copy.
        let rest = if self.start == self.end {
            Vec::new()
        } else {
            self.buf[self.start..self.end].to_vec()
        };
        std::mem::swap(&mut self.buf, shared);
        self.start = 0;
        self.end = rest.len();
        self.buf = rest;
    }

    /// Frees the buffer and the fd queue once nothing is left in them.
    fn release_if_drained(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if !self.keep && !self.lent {
                self.buf = Vec::new();
            }
        }
        if self.fds.is_empty() && !self.keep {
            self.fds = VecDeque::new();
        }
    }
}

/// One `recvmsg`; a non-blocking one is retried on EINTR. Returns the byte
/// count and the flags.
fn recv_once(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    control: &mut [u8],
    block: bool,
) -> Result<(usize, MsgFlags), Errno> {
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if !block {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        match recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut *control), flags) {
            Ok(msg) => return Ok((msg.bytes, msg.flags)),
            // A signal arrived before any data: nothing was consumed. A
            // blocking wait returns it, so that its caller waits again with
            // the time left rather than the whole receive timeout.
            Err(Errno::EINTR) if !block => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Offsets in the kernel's `struct cmsghdr` (`cmsg_len` is a `size_t`).
const LEN_AT: usize = offset_of!(libc::cmsghdr, cmsg_len);
const LEVEL_AT: usize = offset_of!(libc::cmsghdr, cmsg_level);
const TYPE_AT: usize = offset_of!(libc::cmsghdr, cmsg_type);

fn read_usize(bytes: &[u8], at: usize) -> usize {
    let mut word = [0; size_of::<usize>()];
    word.copy_from_slice(&bytes[at..at + size_of::<usize>()]);
    usize::from_ne_bytes(word)
}

fn read_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Hands every fd of the `SCM_RIGHTS` messages in `control` to `push`, as
/// an `OwnedFd`. `control` is a zeroed buffer that one `recvmsg` filled.
/// Returns where the walk stopped: the end of the last whole message.
pub(super) fn take_fds(control: &[u8], mut push: impl FnMut(OwnedFd)) -> usize {
    let mut pos = 0;
    while let Some(header) = control.get(pos..pos + CMSG_HEADER) {
        let len = read_usize(header, LEN_AT);
        if len < CMSG_HEADER || len > control.len() - pos {
            // Zero: the end of what the kernel wrote.
            break;
        }
        let data = &control[pos + CMSG_HEADER..pos + len];
        if read_i32(header, LEVEL_AT) == libc::SOL_SOCKET
            && read_i32(header, TYPE_AT) == libc::SCM_RIGHTS
        {
            for raw in data.chunks_exact(size_of::<RawFd>()) {
                let raw = RawFd::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]);
                // SAFETY: the kernel installed this fd in our table during
                // the recvmsg that filled `control` (SCM_RIGHTS); nothing
                // else knows its number, and each one is read exactly once,
                // so this OwnedFd is its only owner.
                push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
        pos += cmsg_align(len);
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_space_matches_libc() {
        for n in [1, 3, 28, MAX_FDS_IN] {
            let bytes = (n * size_of::<RawFd>()) as libc::c_uint;
            // SAFETY: CMSG_SPACE is arithmetic on its argument only.
            let expected = unsafe { libc::CMSG_SPACE(bytes) } as usize;
            assert_eq!(cmsg_space_for_fds(n), expected, "{n} fds");
        }
        // SAFETY: as above.
        assert_eq!(CMSG_HEADER, unsafe { libc::CMSG_LEN(0) } as usize);
    }

    #[test]
    fn a_zeroed_control_buffer_holds_no_fds() {
        let control = [0u8; cmsg_space_for_fds(4)];
        let mut count = 0;
        take_fds(&control, |_| count += 1);
        assert_eq!(count, 0);
    }

    #[test]
    fn a_header_longer_than_the_buffer_is_ignored() {
        let mut control = [0u8; cmsg_space_for_fds(1)];
        let too_long = control.len() + 4;
        control[LEN_AT..LEN_AT + size_of::<usize>()].copy_from_slice(&too_long.to_ne_bytes());
        control[LEVEL_AT..LEVEL_AT + 4].copy_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        control[TYPE_AT..TYPE_AT + 4].copy_from_slice(&libc::SCM_RIGHTS.to_ne_bytes());
        let mut count = 0;
        take_fds(&control, |_| count += 1);
        assert_eq!(count, 0);
    }
}
