//! The sending half of a [`Connection`](super::Connection): a queue of
//! encoded bytes in fixed-size chunks, the fds that go with them, and the
//! vectored `sendmsg` calls that drain both.
//!
//! What it is: where [`Outgoing::send`] encodes a message in place and where
//! `flush` decides how many bytes and fds each `sendmsg` may carry. What it
//! is not: an encoder ([`crate::wire`] is) or a scheduler (the caller flushes
//! when the socket is writable).
//!
//! # Implementation notes
//!
//! Byte positions are counted from the start of the stream (`u64`, never
//! wrapping in practice), so a message's fd mark stays valid however the
//! chunks in front of it are sent and recycled.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice};
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use super::{ConnectionError, Flush, Limits};
use crate::interface::MessageDesc;
use crate::wire::{self, Arg, MAX_FDS_OUT, MAX_MESSAGE_SIZE};

/// The size of one queue chunk: one maximal message, so none straddles two.
const CHUNK_SIZE: usize = MAX_MESSAGE_SIZE;
/// Sent chunks kept for reuse while the queue is not empty.
const FREE_CHUNKS_MAX: usize = 2;
/// The most iovecs one `sendmsg` gets (128 KiB of chunks).
const MAX_IOV: usize = 32;

/// One chunk of the byte queue; `bytes[start..end]` is still to be sent.
struct Chunk {
    bytes: Box<[u8]>,
    start: usize,
    end: usize,
}

/// Where the bytes of a message with fds lie in the stream, and how many
/// fds it carries.
#[derive(Debug, Clone, Copy)]
struct FdMark {
    start: u64,
    count: usize,
}

/// What one `sendmsg` may carry.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Fds from the front of the fd queue.
    fds: usize,
    /// Marks those fds belong to.
    marks: usize,
    /// Bytes from the front of the byte queue.
    bytes: usize,
}

/// Encoded messages and fds waiting to be sent.
pub struct Outgoing {
    max_bytes: usize,
    max_fds: usize,
    chunks: VecDeque<Chunk>,
    free: Vec<Box<[u8]>>,
    fds: VecDeque<OwnedFd>,
    marks: VecDeque<FdMark>,
    /// Stream position of the end of the queue.
    written: u64,
    /// Stream position of the first unsent byte.
    sent: u64,
}

impl Default for Outgoing {
    fn default() -> Self {
        Outgoing::with_limits(Limits::default())
    }
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("queued_bytes", &self.queued_bytes())
            .field("queued_fds", &self.fds.len())
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl Outgoing {
    /// An empty queue enforcing `limits.max_out_bytes` and `max_out_fds`.
    pub(super) fn with_limits(limits: Limits) -> Self {
        Outgoing {
            max_bytes: limits.max_out_bytes,
            max_fds: limits.max_out_fds,
            chunks: VecDeque::new(),
            free: Vec::new(),
            fds: VecDeque::new(),
            marks: VecDeque::new(),
            written: 0,
            sent: 0,
        }
    }

    /// Encodes and queues one message; its fds are duplicated (CLOEXEC) and
    /// queued, so the caller keeps its own.
    ///
    /// All or nothing: on an error nothing is queued. A message with more
    /// than [`wire::MAX_FDS_OUT`] fds is `OutFdsOverCap`, since its fds could
    /// not all travel with or before its bytes.
    pub fn send(
        &mut self,
        sender: u32,
        opcode: u16,
        desc: &MessageDesc,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<(), ConnectionError> {
        let result = self.try_send(sender, opcode, desc, args);
        if result.is_err() {
            self.drop_empty_tail();
        }
        result
    }

    fn try_send(
        &mut self,
        sender: u32,
        opcode: u16,
        desc: &MessageDesc,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<(), ConnectionError> {
        let tail = self.tail_with_room(wire::encoded_size(args).min(CHUNK_SIZE));
        let size = wire::encode(sender, opcode, desc, args, &mut tail.bytes[tail.end..])
            .map_err(ConnectionError::Encode)?;
        let fd_count = args.iter().filter(|a| matches!(a, Arg::Fd(_))).count();
        if fd_count > MAX_FDS_OUT || self.fds.len() + fd_count > self.max_fds {
            return Err(ConnectionError::OutFdsOverCap);
        }
        if self.queued_bytes() + size > self.max_bytes {
            return Err(ConnectionError::OutBytesOverCap);
        }
        let queued_before = self.fds.len();
        for arg in args {
            if let Arg::Fd(fd) = arg {
                // try_clone_to_owned is fcntl(F_DUPFD_CLOEXEC).
                match fd.try_clone_to_owned() {
                    Ok(dup) => self.fds.push_back(dup),
                    Err(e) => {
                        self.fds.truncate(queued_before);
                        return Err(ConnectionError::DupFd(e));
                    }
                }
            }
        }
        // Commit: the bytes were encoded in place, past `end`.
        if let Some(tail) = self.chunks.back_mut() {
            tail.end += size;
        }
        if fd_count > 0 {
            self.marks.push_back(FdMark {
                start: self.written,
                count: fd_count,
            });
        }
        self.written += size as u64;
        Ok(())
    }

    /// Bytes queued and not yet sent.
    pub fn queued_bytes(&self) -> usize {
        (self.written - self.sent) as usize
    }

    /// Fds queued and not yet sent.
    pub fn queued_fds(&self) -> usize {
        self.fds.len()
    }

    /// Heap bytes held by the chunks, the free list and the queues.
    pub(super) fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * size_of::<Chunk>()
            + (self.chunks.len() + self.free.len()) * CHUNK_SIZE
            + self.free.capacity() * size_of::<Box<[u8]>>()
            + self.fds.capacity() * size_of::<OwnedFd>()
            + self.marks.capacity() * size_of::<FdMark>()
    }

    /// Sends the queue over `socket`, looping over `sendmsg` until it is
    /// empty or the socket is full.
    pub(super) fn flush(&mut self, socket: BorrowedFd<'_>) -> Result<Flush, ConnectionError> {
        let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
        loop {
            if self.queued_bytes() == 0 {
                self.release();
                return Ok(Flush::Done);
            }
            let plan = self.plan();
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n_iov = self.fill_iov(&mut iov, plan.bytes);
            let mut raw: [RawFd; MAX_FDS_OUT] = [-1; MAX_FDS_OUT];
            for (slot, fd) in raw.iter_mut().zip(self.fds.iter().take(plan.fds)) {
                *slot = fd.as_raw_fd();
            }
            let rights = [ControlMessage::ScmRights(&raw[..plan.fds])];
            let cmsgs: &[ControlMessage<'_>] = if plan.fds > 0 { &rights } else { &[] };
            match sendmsg::<()>(socket.as_raw_fd(), &iov[..n_iov], cmsgs, flags, None) {
                // Nothing sent and no error: cannot progress.
                Ok(0) => return Err(ConnectionError::Send(io::ErrorKind::WriteZero.into())),
                // Some bytes went, and with the first of them all of the fds.
                Ok(n) => self.consume(n, plan),
                // A signal arrived before anything was sent: try again.
                Err(Errno::EINTR) => continue,
                // The socket buffer is full: keep the rest until writable.
                Err(Errno::EAGAIN) => return Ok(Flush::WouldBlock),
                // The peer has gone; MSG_NOSIGNAL turned SIGPIPE into EPIPE.
                Err(Errno::EPIPE | Errno::ECONNRESET) => return Err(ConnectionError::Closed),
                // Anything else is unexpected on a connected socket.
                Err(e) => return Err(ConnectionError::Send(e.into())),
            }
        }
    }

    /// The fds of whole messages, at most [`MAX_FDS_OUT`], and the bytes up
    /// to the start of the first message whose fds are left out.
    fn plan(&self) -> Plan {
        let (mut fds, mut marks) = (0, 0);
        for mark in &self.marks {
            if fds + mark.count > MAX_FDS_OUT {
                break;
            }
            fds += mark.count;
            marks += 1;
        }
        let limit = self.marks.get(marks).map_or(self.written, |m| m.start);
        let bytes = (limit - self.sent) as usize;
        // A mark's bytes are never sent before its fds, and `send` refuses a
        // message with more than MAX_FDS_OUT fds, so the first mark always
        // fits and a sendmsg with fds always carries bytes.
        debug_assert!(marks > 0 || self.marks.is_empty());
        debug_assert!(bytes > 0);
        Plan { fds, marks, bytes }
    }

    /// Points `iov` at the first `bytes` queued bytes; returns how many
    /// slices it used (fewer bytes if it ran out of slices).
    fn fill_iov<'a>(&'a self, iov: &mut [IoSlice<'a>; MAX_IOV], bytes: usize) -> usize {
        let mut left = bytes;
        let mut used = 0;
        for chunk in &self.chunks {
            if left == 0 || used == MAX_IOV {
                break;
            }
            let len = (chunk.end - chunk.start).min(left);
            if len > 0 {
                iov[used] = IoSlice::new(&chunk.bytes[chunk.start..chunk.start + len]);
                used += 1;
                left -= len;
            }
        }
        used
    }

    /// Drops what one `sendmsg` sent: `n` bytes and the planned fds.
    fn consume(&mut self, n: usize, plan: Plan) {
        log::trace!("sendmsg: {n} bytes, {} fds", plan.fds);
        // Our duplicates: the peer has its own now.
        self.fds.drain(..plan.fds);
        self.marks.drain(..plan.marks);
        self.sent += n as u64;
        let mut left = n;
        while let Some(front) = self.chunks.front_mut() {
            let take = (front.end - front.start).min(left);
            front.start += take;
            left -= take;
            if front.start < front.end {
                break;
            }
            let done = self.chunks.pop_front().expect("front exists");
            if self.free.len() < FREE_CHUNKS_MAX {
                self.free.push(done.bytes);
            }
        }
    }

    /// The last chunk if it has `size` bytes free, else a new one.
    fn tail_with_room(&mut self, size: usize) -> &mut Chunk {
        let fits = self
            .chunks
            .back()
            .is_some_and(|c| CHUNK_SIZE - c.end >= size);
        if !fits {
            let bytes = self
                .free
                .pop()
                .unwrap_or_else(|| vec![0; CHUNK_SIZE].into_boxed_slice());
            self.chunks.push_back(Chunk {
                bytes,
                start: 0,
                end: 0,
            });
        }
        self.chunks.back_mut().expect("a chunk was just ensured")
    }

    /// Undoes `tail_with_room` after a failed send.
    fn drop_empty_tail(&mut self) {
        if self.chunks.back().is_some_and(|c| c.end == 0) {
            let chunk = self.chunks.pop_back().expect("checked");
            self.free.push(chunk.bytes);
        }
        if self.queued_bytes() == 0 {
            self.release();
        }
    }

    /// Frees every buffer of an empty queue.
    fn release(&mut self) {
        debug_assert!(self.fds.is_empty() && self.marks.is_empty());
        self.chunks = VecDeque::new();
        self.free = Vec::new();
        self.fds = VecDeque::new();
        self.marks = VecDeque::new();
    }
}
