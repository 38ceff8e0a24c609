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
//! - Byte positions are counted from the start of the stream (`u64`, never
//!   wrapping in practice), so a message's fd mark stays valid however the
//!   chunks in front of it are sent and recycled.
//! - Memory follows what is queued: a chunk is freed once sent (up to
//!   `FREE_CHUNKS_MAX` are kept for reuse, in `spare`, while output is pending), a queue
//!   that drained to a quarter of its room gives most of the room back at
//!   the end of a wakeup that leaves output queued (`shrink_queues`, from
//!   `return_chunks`: never on the path of a reply that leaves at once),
//!   and an empty queue frees everything unless told to keep it. Measured
//!   over a server's wakeups: a queue drained from 1 MiB to 1,136 bytes
//!   holds 4,608 heap bytes (its chunk and 512 bytes of queue room), where
//!   it held 20,480 before `shrink_queues` (16 KiB of room for 512 chunks).

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice};
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use super::in_flight::{unread_memory, SentLog};
use super::spare::SpareChunks;
use super::{ConnectionError, Flush, Limits};
use crate::interface::MessageDesc;
use crate::wire::{self, Arg, MAX_FDS_OUT, MAX_MESSAGE_SIZE};

/// The size of one queue chunk: one maximal message, so none straddles two.
const CHUNK_SIZE: usize = MAX_MESSAGE_SIZE;
/// The most iovecs one `sendmsg` gets (128 KiB of chunks).
const MAX_IOV: usize = 32;
/// Entries a queue keeps room for however far it drains (see `shrink_queue`).
const QUEUE_FLOOR: usize = 16;

/// One chunk of the byte queue; `bytes[start..end]` is still to be sent.
pub(super) struct Chunk {
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
    free: SpareChunks,
    fds: VecDeque<OwnedFd>,
    marks: VecDeque<FdMark>,
    /// Stream position of the end of the queue.
    written: u64,
    /// Stream position of the first unsent byte.
    sent: u64,
    /// Keep the free chunks when the queue empties (see `Connection::keep_buffers`).
    pub(super) keep: bool,
    /// The free chunks came from [`SharedBuffers`](super::SharedBuffers)
    /// for this wakeup: kept until `return_chunks` gives them back.
    lent: bool,
    /// So did the (empty) chunk queue itself: given back if still empty.
    lent_queue: bool,
    /// Log `sendmsg`s to count fds in flight (see `Connection::fds_in_flight`).
    pub(super) track_in_flight: bool,
    /// The log, while fds may be in flight.
    sent_log: Option<Box<SentLog>>,
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
            free: SpareChunks::default(),
            fds: VecDeque::new(),
            marks: VecDeque::new(),
            written: 0,
            sent: 0,
            keep: false,
            lent: false,
            lent_queue: false,
            track_in_flight: false,
            sent_log: None,
        }
    }

    /// Sets the cap on queued bytes (`Limits::max_out_bytes`); see
    /// `Connection::set_caps`.
    pub fn set_max_bytes(&mut self, max: usize) {
        self.max_bytes = max;
    }

    /// The cap on queued bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Encodes and queues one message; its fds are duplicated (CLOEXEC) and
    /// queued, so the caller keeps its own.
    ///
    /// All or nothing: on an error nothing is queued. A message with more
    /// than [`wire::MAX_FDS_OUT`] fds is `OutFdsOverCap`, since its fds could
    /// not all travel with or before its bytes.
    #[inline]
    pub fn send(
        &mut self,
        sender: u32,
        opcode: u16,
        desc: &MessageDesc,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<(), ConnectionError> {
        let result = self.encode(sender, opcode, desc, args).and_then(|encoded| {
            let dups = if encoded.fds == 0 {
                VecDeque::new()
            } else {
                duplicate_fds(args)?
            };
            self.commit(encoded, dups);
            Ok(())
        });
        if result.is_err() {
            self.drop_empty_tail();
        }
        result
    }

    /// Encodes and queues one message, taking ownership of its fds: they
    /// are queued as they are, without a duplicate, and closed once sent
    /// (or when the queue is dropped). For fds the caller opened only to
    /// send them, this saves the `dup` of [`Outgoing::send`] and its `close`.
    ///
    /// All or nothing, as `send`; on an error the fds are closed.
    pub fn send_owned(
        &mut self,
        sender: u32,
        opcode: u16,
        desc: &MessageDesc,
        args: Vec<Arg<'_, OwnedFd>>,
    ) -> Result<(), ConnectionError> {
        let borrowed: Vec<Arg<'_, BorrowedFd<'_>>> = args.iter().map(borrow_arg).collect();
        let result = self.encode(sender, opcode, desc, &borrowed);
        drop(borrowed);
        match result {
            Ok(encoded) => {
                let fds = args.into_iter().filter_map(|a| match a {
                    Arg::Fd(fd) => Some(fd),
                    _ => None,
                });
                self.commit(encoded, fds.collect());
                Ok(())
            }
            Err(e) => {
                self.drop_empty_tail();
                Err(e)
            }
        }
    }

    /// Encodes one message and sends it with the queue, now; the caller
    /// keeps its fds. If the queue was empty and the message leaves in this
    /// one `sendmsg` (wholly, or at least its first byte with its fds), its
    /// fds are passed straight from the caller's and never duplicated: one
    /// `sendmsg` where [`Outgoing::send`] and `flush` cost a `dup`, the
    /// `sendmsg` and a `close`. Otherwise it is queued as by `send` and the
    /// queue is flushed.
    ///
    /// On an error nothing of this message is queued.
    pub(super) fn send_now(
        &mut self,
        socket: BorrowedFd<'_>,
        sender: u32,
        opcode: u16,
        desc: &MessageDesc,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<Flush, ConnectionError> {
        let has_fds = args.iter().any(|a| matches!(a, Arg::Fd(_)));
        if !has_fds || self.queued_bytes() > 0 {
            self.send(sender, opcode, desc, args)?;
            return self.flush(socket);
        }
        let encoded = match self.encode(sender, opcode, desc, args) {
            Ok(encoded) => encoded,
            Err(e) => {
                self.drop_empty_tail();
                return Err(e);
            }
        };
        let mut raw: [RawFd; MAX_FDS_OUT] = [-1; MAX_FDS_OUT];
        let fds = args.iter().filter_map(|a| match a {
            Arg::Fd(fd) => Some(fd.as_raw_fd()),
            _ => None,
        });
        for (slot, fd) in raw.iter_mut().zip(fds) {
            *slot = fd;
        }
        let before = self.unread_before(socket, encoded.fds);
        let sent = {
            let tail = self.chunks.back().expect("encode ensured a tail chunk");
            let bytes = &tail.bytes[tail.end..tail.end + encoded.size];
            send_once(socket, &[IoSlice::new(bytes)], &raw[..encoded.fds])
        };
        if sent.is_ok() {
            self.log_sent(socket, before, encoded.fds);
        }
        match sent {
            Ok(n) => {
                // The fds went with the first byte: nothing of ours to keep.
                self.commit(encoded, VecDeque::new());
                let plan = Plan {
                    fds: 0,
                    marks: 0,
                    bytes: n,
                };
                self.consume(n, plan);
                self.flush(socket)
            }
            // The socket is full: queue the message with duplicates.
            Err(SendOutcome::WouldBlock) => match duplicate_fds(args) {
                Ok(dups) => {
                    self.commit(encoded, dups);
                    Ok(Flush::WouldBlock)
                }
                Err(e) => {
                    self.drop_empty_tail();
                    Err(e)
                }
            },
            Err(SendOutcome::Failed(e)) => {
                self.drop_empty_tail();
                Err(e)
            }
        }
    }

    /// Encodes a message in place past the end of the tail chunk, without
    /// committing it, after checking the caps.
    #[inline]
    fn encode(
        &mut self,
        sender: u32,
        opcode: u16,
        desc: &MessageDesc,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<Encoded, ConnectionError> {
        let layout = wire::layout(desc, args).map_err(ConnectionError::Encode)?;
        if layout.fds > MAX_FDS_OUT || self.fds.len() + layout.fds > self.max_fds {
            return Err(ConnectionError::OutFdsOverCap);
        }
        if self.queued_bytes() + layout.size > self.max_bytes {
            return Err(ConnectionError::OutBytesOverCap);
        }
        let tail = self.tail_with_room(layout.size);
        wire::write_checked(sender, opcode, args, layout, &mut tail.bytes[tail.end..]);
        Ok(Encoded {
            size: layout.size,
            fds: layout.fds,
        })
    }

    /// Commits what `encode` wrote, queuing `fds` (the message's own, in
    /// order; empty when they have already been sent).
    #[inline]
    fn commit(&mut self, encoded: Encoded, fds: VecDeque<OwnedFd>) {
        if let Some(tail) = self.chunks.back_mut() {
            tail.end += encoded.size;
        }
        if !fds.is_empty() {
            debug_assert_eq!(fds.len(), encoded.fds);
            self.marks.push_back(FdMark {
                start: self.written,
                count: fds.len(),
            });
            self.fds.extend(fds);
        }
        self.written += encoded.size as u64;
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
            + self.fds.capacity() * size_of::<OwnedFd>()
            + self.marks.capacity() * size_of::<FdMark>()
    }

    /// Sends the queue over `socket`, looping over `sendmsg` until it is
    /// empty or the socket is full.
    pub(super) fn flush(&mut self, socket: BorrowedFd<'_>) -> Result<Flush, ConnectionError> {
        if let Some(flushed) = self.flush_one_chunk(socket) {
            return flushed;
        }
        loop {
            if self.queued_bytes() == 0 {
                // Lent buffers are released when they are given back.
                if !self.lent && !self.lent_queue {
                    self.release();
                }
                return Ok(Flush::Done);
            }
            let plan = self.plan();
            let before = self.unread_before(socket, plan.fds);
            let sent = match self.chunks.front() {
                // The usual case, replies to one wakeup: one chunk, no fds.
                Some(c) if plan.fds == 0 && c.end - c.start >= plan.bytes => {
                    let bytes = &c.bytes[c.start..c.start + plan.bytes];
                    send_once(socket, &[IoSlice::new(bytes)], &[])
                }
                _ => self.send_planned(socket, plan),
            };
            match sent {
                Ok(n) => {
                    self.log_sent(socket, before, plan.fds);
                    self.consume(n, plan)
                }
                Err(SendOutcome::WouldBlock) => return Ok(Flush::WouldBlock),
                Err(SendOutcome::Failed(e)) => return Err(e),
            }
        }
    }

    /// `flush` in its usual case, the replies to one wakeup: one chunk, no
    /// fds, no log to keep, so no plan to make, and the chunk sent whole is
    /// recycled as `consume` would. `None` when the queue is not like that,
    /// or the chunk was only partly sent: `flush`'s loop does the rest.
    #[inline]
    fn flush_one_chunk(
        &mut self,
        socket: BorrowedFd<'_>,
    ) -> Option<Result<Flush, ConnectionError>> {
        // No marks means no fds; no log means no `SIOCOUTQ` around the send.
        if self.chunks.len() != 1 || !self.marks.is_empty() || self.sent_log.is_some() {
            return None;
        }
        let chunk = self.chunks.front()?;
        let bytes = &chunk.bytes[chunk.start..chunk.end];
        if bytes.is_empty() {
            return None;
        }
        let whole = bytes.len();
        match send_once(socket, &[IoSlice::new(bytes)], &[]) {
            Ok(n) if n == whole => {
                self.sent += n as u64;
                if let Some(done) = self.chunks.pop_front() {
                    self.free.push(done.bytes);
                }
                // Lent buffers are released when they are given back.
                if !self.lent && !self.lent_queue {
                    self.release();
                }
                Some(Ok(Flush::Done))
            }
            Ok(n) => {
                let plan = Plan {
                    fds: 0,
                    marks: 0,
                    bytes: n,
                };
                self.consume(n, plan);
                None
            }
            Err(SendOutcome::WouldBlock) => Some(Ok(Flush::WouldBlock)),
            Err(SendOutcome::Failed(e)) => Some(Err(e)),
        }
    }

    /// Gives back the room of queues that drained most of the way. Called
    /// when a wakeup leaves output queued (the peer reads slowly, if at
    /// all); a queue that empties is freed whole instead.
    #[cold]
    fn shrink_queues(&mut self) {
        shrink_queue(&mut self.chunks);
        shrink_queue(&mut self.fds);
        shrink_queue(&mut self.marks);
    }

    /// One `sendmsg` of what `plan` says, from any number of chunks.
    fn send_planned(&self, socket: BorrowedFd<'_>, plan: Plan) -> Result<usize, SendOutcome> {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let n_iov = self.fill_iov(&mut iov, plan.bytes);
        let mut raw: [RawFd; MAX_FDS_OUT] = [-1; MAX_FDS_OUT];
        for (slot, fd) in raw.iter_mut().zip(self.fds.iter().take(plan.fds)) {
            *slot = fd.as_raw_fd();
        }
        send_once(socket, &iov[..n_iov], &raw[..plan.fds])
    }

    /// Drops everything queued and not sent yet, closing its fds. What was
    /// sent stays counted as in flight.
    pub(super) fn discard(&mut self) {
        self.chunks.clear();
        self.fds.clear();
        self.marks.clear();
        self.sent = self.written;
    }

    /// Fds queued, or sent and maybe not read yet: an upper bound on the
    /// fds this queue holds or has in flight, as of the last trim of the
    /// send log (which `Connection::fds_in_flight` does before it asks).
    /// Counts only queued fds unless tracking is on.
    pub fn fds_in_flight(&self) -> usize {
        self.fds.len() + self.sent_log.as_ref().map_or(0, |log| log.fds())
    }

    /// Forgets the logged fds the peer has read, with one `SIOCOUTQ`.
    /// Inline for its usual case: no log, nothing to do.
    #[inline]
    pub(super) fn trim_in_flight(&mut self, socket: BorrowedFd<'_>) {
        if self.sent_log.is_some() {
            self.trim_sent_log(socket);
        }
    }

    /// [`Outgoing::trim_in_flight`] with a log.
    fn trim_sent_log(&mut self, socket: BorrowedFd<'_>) {
        let Some(log) = self.sent_log.as_mut() else {
            return;
        };
        // On a failure (only for a socket that is not AF_UNIX), keep all.
        log.trim(unread_memory(socket).unwrap_or(usize::MAX));
        if log.fds() == 0 {
            self.sent_log = None;
        }
    }

    /// `SIOCOUTQ` before a `sendmsg` of `fds` fds that must be logged.
    fn unread_before(&self, socket: BorrowedFd<'_>, fds: usize) -> Option<usize> {
        let wanted = match &self.sent_log {
            Some(log) => log.wants(fds),
            None => self.track_in_flight && fds > 0,
        };
        // On a failure, log the send as taking no memory: it then counts
        // until the peer has read everything.
        wanted.then(|| unread_memory(socket).unwrap_or(usize::MAX))
    }

    /// Logs a `sendmsg` of `fds` fds that [`Outgoing::unread_before`] asked
    /// to log.
    fn log_sent(&mut self, socket: BorrowedFd<'_>, before: Option<usize>, fds: usize) {
        if let Some(before) = before {
            let after = unread_memory(socket).unwrap_or(0);
            let log = self.sent_log.get_or_insert_with(Box::default);
            log.push(before, after, fds);
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
        // Ours (duplicates or given to us): the peer has its own now.
        if plan.fds > 0 {
            self.fds.drain(..plan.fds);
        }
        if plan.marks > 0 {
            self.marks.drain(..plan.marks);
        }
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
            self.free.push(done.bytes);
        }
    }

    /// The last chunk if it has `size` bytes free, else a new one.
    #[inline]
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

    /// Takes `shared`'s spare chunks, and its empty chunk queue, for this
    /// wakeup, when this queue has none of its own: the replies of a wakeup
    /// are encoded into chunks that are neither allocated nor zeroed for
    /// it, queued in a queue that is not allocated for it either.
    pub(super) fn borrow_chunks(&mut self, shared: &mut SharedChunks) {
        if !self.lent && self.free.is_empty() {
            std::mem::swap(&mut self.free, &mut shared.free);
            self.lent = true;
        }
        if !self.lent_queue && self.chunks.capacity() == 0 {
            std::mem::swap(&mut self.chunks, &mut shared.queue);
            self.lent_queue = true;
        }
    }

    /// Gives back the spare chunks (sent ones included, up to
    /// `FREE_CHUNKS_MAX`), and the queue if nothing is left in it; chunks
    /// still queued stay with this queue.
    pub(super) fn return_chunks(&mut self, shared: &mut SharedChunks) {
        if self.lent {
            self.lent = false;
            // Ours was empty when it was lent: empty again.
            std::mem::swap(&mut self.free, &mut shared.free);
        }
        if self.lent_queue {
            self.lent_queue = false;
            if self.chunks.is_empty() {
                std::mem::swap(&mut self.chunks, &mut shared.queue);
            }
        }
        if self.queued_bytes() == 0 {
            self.release();
        } else {
            self.shrink_queues();
        }
    }

    /// Frees every buffer of an empty queue, unless told to keep them (or
    /// its spare chunks are lent and must go back).
    ///
    /// Inline, and nothing but tests while there is nothing to free: the
    /// case of every wakeup that gave its lent buffers back.
    #[inline]
    fn release(&mut self) {
        debug_assert!(self.fds.is_empty() && self.marks.is_empty());
        let own_chunks = !self.lent_queue && self.chunks.capacity() > 0;
        let own_free = !self.lent && !self.free.is_empty();
        let fd_room = self.fds.capacity() > 0 || self.marks.capacity() > 0;
        if !self.keep && (own_chunks || own_free || fd_room) {
            self.free_room();
        }
    }

    /// [`Outgoing::release`] when there is something to free.
    #[cold]
    fn free_room(&mut self) {
        if !self.lent_queue && self.chunks.capacity() > 0 {
            self.chunks = VecDeque::new();
        }
        if !self.lent {
            self.free.clear();
        }
        if self.fds.capacity() > 0 {
            self.fds = VecDeque::new();
        }
        if self.marks.capacity() > 0 {
            self.marks = VecDeque::new();
        }
    }
}

/// What a single-threaded server lends each connection's output for one
/// wakeup (see [`SharedBuffers`](super::SharedBuffers)).
#[derive(Default)]
pub(super) struct SharedChunks {
    /// Spare chunks.
    free: SpareChunks,
    /// An empty queue with room for a few chunks.
    queue: VecDeque<Chunk>,
}

#[cfg(test)]
impl SharedChunks {
    /// The first spare chunk's address, and where the queue's buffer is
    /// (null while it has none), to check that the same allocations go round.
    pub(super) fn addresses(&self) -> (*const u8, *const Chunk) {
        let free = self.free.first().map_or(std::ptr::null(), |c| c.as_ptr());
        let queue = if self.queue.capacity() == 0 {
            std::ptr::null()
        } else {
            self.queue.as_slices().0.as_ptr()
        };
        (free, queue)
    }
}

impl fmt::Debug for SharedChunks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedChunks")
            .field("free", &self.free.len())
            .field("queue_capacity", &self.queue.capacity())
            .finish()
    }
}

/// Gives back most of a queue's room once it holds under a quarter of
/// what it has room for: a queue that drained from hundreds of entries to
/// a few does not keep room for the hundreds until it is empty. Each
/// shrink halves the room at least, so its cost is paid by the pops
/// before it.
fn shrink_queue<T>(queue: &mut VecDeque<T>) {
    if queue.capacity() > QUEUE_FLOOR && queue.capacity() > 4 * queue.len() {
        queue.shrink_to((2 * queue.len()).max(QUEUE_FLOOR));
    }
}

/// A message encoded past the tail's end and not yet committed.
#[derive(Debug, Clone, Copy)]
struct Encoded {
    size: usize,
    fds: usize,
}

/// Why [`send_once`] sent nothing.
enum SendOutcome {
    /// The socket buffer is full (EAGAIN).
    WouldBlock,
    /// The connection cannot be written any more.
    Failed(ConnectionError),
}

/// One non-blocking `sendmsg` of `iov` with `fds` (none: no control data),
/// retried on EINTR. Returns how many bytes went; with the first of them
/// went all of the fds.
fn send_once(
    socket: BorrowedFd<'_>,
    iov: &[IoSlice<'_>],
    fds: &[RawFd],
) -> Result<usize, SendOutcome> {
    let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(socket.as_raw_fd(), iov, cmsgs, flags, None) {
            // Nothing sent and no error: cannot progress.
            Ok(0) => {
                let e = io::ErrorKind::WriteZero.into();
                return Err(SendOutcome::Failed(ConnectionError::Send(e)));
            }
            Ok(n) => {
                log::trace!("sendmsg: {n} bytes, {} fds", fds.len());
                return Ok(n);
            }
            // A signal arrived before anything was sent: try again.
            Err(Errno::EINTR) => continue,
            // The socket buffer is full: keep the rest until writable.
            Err(Errno::EAGAIN) => return Err(SendOutcome::WouldBlock),
            // The peer has gone; MSG_NOSIGNAL turned SIGPIPE into EPIPE.
            Err(Errno::EPIPE | Errno::ECONNRESET) => {
                return Err(SendOutcome::Failed(ConnectionError::Closed))
            }
            // Anything else is unexpected on a connected socket.
            Err(e) => return Err(SendOutcome::Failed(ConnectionError::Send(e.into()))),
        }
    }
}

/// Duplicates (`F_DUPFD_CLOEXEC`) the fds of `args`, in order; on a failure
/// the duplicates made so far are closed.
fn duplicate_fds(args: &[Arg<'_, BorrowedFd<'_>>]) -> Result<VecDeque<OwnedFd>, ConnectionError> {
    let mut dups = VecDeque::new();
    for arg in args {
        if let Arg::Fd(fd) = arg {
            // try_clone_to_owned is fcntl(F_DUPFD_CLOEXEC).
            dups.push_back(fd.try_clone_to_owned().map_err(ConnectionError::DupFd)?);
        }
    }
    Ok(dups)
}

/// `arg` with its fd, if any, borrowed.
fn borrow_arg<'a>(arg: &'a Arg<'_, OwnedFd>) -> Arg<'a, BorrowedFd<'a>> {
    match arg {
        Arg::Int(v) => Arg::Int(*v),
        Arg::Uint(v) => Arg::Uint(*v),
        Arg::Fixed(v) => Arg::Fixed(*v),
        Arg::Str(s) => Arg::Str(*s),
        Arg::Object(id) => Arg::Object(*id),
        Arg::NewId(id) => Arg::NewId(*id),
        Arg::Array(bytes) => Arg::Array(bytes),
        Arg::Fd(fd) => Arg::Fd(fd.as_fd()),
    }
}
