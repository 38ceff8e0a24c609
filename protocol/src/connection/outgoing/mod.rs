//! The sending half of a [`Connection`](super::Connection): a queue of
//! encoded bytes in fixed-size chunks and the fds that go with them.
//!
//! What it is: [`Outgoing`], its caps, and where [`Outgoing::send`] encodes
//! a message in place and queues its fds. What it is not: an encoder
//! ([`crate::wire`] is) or a scheduler (the caller flushes when the socket
//! is writable). Draining the queue with `sendmsg` is in `flush`, its two
//! short cuts in `direct`, and lending and freeing its memory in `buffers`.
//!
//! # Implementation notes
//!
//! - Byte positions are counted from the start of the stream (`u64`, never
//!   wrapping in practice), so a message's fd mark stays valid however the
//!   chunks in front of it are sent and recycled.

mod buffers;
mod direct;
mod flush;

use std::collections::VecDeque;
use std::fmt;
use std::mem::size_of;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::in_flight::SentLog;
use super::spare::SpareChunks;
use super::{ConnectionError, Limits};
use crate::interface::MessageDesc;
use crate::wire::{self, Arg, MAX_FDS_OUT, MAX_MESSAGE_SIZE};

pub(super) use buffers::SharedChunks;

/// The size of one queue chunk: one maximal message, so none straddles two.
const CHUNK_SIZE: usize = MAX_MESSAGE_SIZE;

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

    /// Drops everything queued and not sent yet, closing its fds. What was
    /// sent stays counted as in flight.
    pub(super) fn discard(&mut self) {
        self.chunks.clear();
        self.fds.clear();
        self.marks.clear();
        self.sent = self.written;
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
}

/// A message encoded past the tail's end and not yet committed.
#[derive(Debug, Clone, Copy)]
struct Encoded {
    size: usize,
    fds: usize,
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
