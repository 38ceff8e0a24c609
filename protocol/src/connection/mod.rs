//! A non-blocking Wayland connection over a Unix stream socket: `recvmsg` and
//! `sendmsg` with `SCM_RIGHTS`, the buffers between them and the codec, and a
//! cap on everything buffered.
//!
//! What it is: the layer between a socket and [`crate::wire`]. [`Connection::recv`]
//! does one `recvmsg` into the incoming buffers, [`Connection::next_message`]
//! decodes what has arrived in place, [`Connection::send`] encodes a message
//! straight into the output queue, and [`Connection::flush`] sends that queue
//! with as few vectored `sendmsg` calls as the fd rules allow.
//!
//! What it is not: it knows no interfaces or objects (the caller's `lookup`
//! maps a header to a signature) and it does not poll (register
//! [`Connection::stream`] with an event loop). It never blocks, except in
//! [`Connection::recv_wait`], which a blocking client calls to wait for
//! input inside `recvmsg`, bounded by a deadline. An error
//! leaves the connection unusable: the caller drops it, which closes every
//! fd still queued in either direction.
//!
//! A `wl_display.sync` round trip costs one wakeup, one `recvmsg` and one
//! `sendmsg`: call [`Connection::recv`] once, [`Connection::next_message`]
//! until `Ok(None)`, queue the replies with [`Connection::send`], then
//! [`Connection::flush`] once.
//!
//! # Example
//!
//! ```
//! use std::os::unix::net::UnixStream;
//! use waypass_protocol::{Arg, ArgDesc, ArgKind, Connection, Flush, MessageDesc, Recv};
//!
//! static DONE: MessageDesc = MessageDesc {
//!     name: "done",
//!     since: 1,
//!     destructor: true,
//!     args: &[ArgDesc { name: "callback_data", kind: ArgKind::Uint, nullable: false, interface: None }],
//! };
//!
//! let (a, b) = UnixStream::pair()?;
//! let (mut server, mut client) = (Connection::new(a)?, Connection::new(b)?);
//!
//! server.send(3, 0, &DONE, &[Arg::Uint(7)])?;
//! assert_eq!(server.flush()?, Flush::Done);
//!
//! assert_eq!(client.recv()?, Recv::Data(12));
//! let msg = client.next_message(|_header| Ok::<_, ()>(&DONE)).unwrap().unwrap();
//! assert_eq!((msg.sender, msg.opcode), (3, 0));
//! assert!(matches!(msg.args[..], [Arg::Uint(7)]));
//! assert!(client.next_message(|_| Ok::<_, ()>(&DONE)).unwrap().is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Implementation notes
//!
//! - **Receiving.** One `recvmsg` per [`Connection::recv`], with
//!   `MSG_CMSG_CLOEXEC | MSG_DONTWAIT`, reading at most 4 KiB (one maximal
//!   message) and never past `Limits::max_in_bytes`. The control buffer lives
//!   on the stack and has room for `SCM_MAX_FD` (253) fds, the most the
//!   kernel puts in one `SCM_RIGHTS` message, so no well-behaved peer can
//!   cause `MSG_CTRUNC`; it is still checked, and then the fds that did
//!   arrive are closed. The control buffer is parsed here rather than with
//!   nix's `RecvMsg::cmsgs`, because that refuses to iterate (ENOBUFS) when
//!   `MSG_CTRUNC` is set, which would leave the fds that arrived open with no
//!   owner. Every fd becomes an `OwnedFd` as it is parsed.
//! - **Decoding.** A decoded [`crate::Message`] borrows the incoming buffer.
//!   Consumed bytes are only skipped over; the partial tail is moved to the
//!   front at the next `recv`, when no message can be borrowed.
//! - **Fds no message takes.** Fds may arrive before their message's bytes
//!   (a `sendmsg` cut short, or a 4 KiB read that stops before the end of
//!   what one `sendmsg` carried), so queued fds are kept while whole
//!   messages are decoded. Once every whole message is decoded (where
//!   [`Connection::next_message`] would return `Ok(None)`), at most
//!   `Limits::max_unclaimed_fds` (28) may be left; more is
//!   [`ConnectionError::UnclaimedFds`] and they are closed at once. So a
//!   peer makes us hold at most 28 of its fds between two receives, and 253
//!   more (one `SCM_RIGHTS` message) within one. Fewer than 28 are kept until
//!   the connection is dropped: the receiver cannot tell an fd sent ahead of
//!   its message from one sent with no message.
//! - **Sending.** The output queue is a `VecDeque` of 4 KiB chunks (4 KiB is
//!   the largest message, so a message never straddles two chunks and is
//!   encoded in place). Sent chunks go to a free list of at most two for
//!   reuse. `flush` hands the chunks to `sendmsg` as iovecs (up to 32 per
//!   call), never copying them into one linear buffer.
//! - **Fds out.** Each message's fds are duplicated (`F_DUPFD_CLOEXEC`) into
//!   an `OwnedFd` queue, with a mark of where the message starts and ends in
//!   the byte stream. Two paths skip the duplicate:
//!   [`Connection::send_owned`] queues fds the caller gives away (closed
//!   once sent), and [`Connection::send_now`] passes the caller's fds
//!   straight to `sendmsg` when nothing else is queued and the socket takes
//!   the message, duplicating them only if it has to wait. A `sendmsg` carries the fds of whole messages only, at
//!   most 28 of them, and bytes only up to the start of the first message
//!   whose fds it does not carry; so fds always travel with or before their
//!   message's bytes, and every `sendmsg` with fds carries at least one byte.
//!   A message with more than 28 fds could not honour that, and is refused
//!   as `OutFdsOverCap`.
//! - **Memory.** An idle connection holds no heap buffer: the incoming buffer
//!   and fd queue are freed when [`Connection::next_message`] finds them
//!   drained, and the output chunks, free list and fd queue when `flush`
//!   empties the queue. On its own that costs one 4 KiB allocation per busy
//!   wakeup in each direction, in exchange for about 300 bytes per idle
//!   client (see [`Connection::heap_bytes`]). A single-threaded server
//!   avoids both: it lends each connection its receive buffer, spare chunks
//!   and chunk queue for one wakeup ([`SharedBuffers`]), so a `sync` round
//!   trip allocates nothing; decoded arguments are inline too
//!   ([`crate::wire::Args`]). A client's connection may keep its own
//!   buffers instead ([`Connection::keep_buffers`]).

mod in_flight;
mod incoming;
mod outgoing;
mod shared;
mod spare;
mod wait;

pub use shared::SharedBuffers;

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Instant;

use crate::interface::MessageDesc;
use crate::wire::{Arg, DecodeError, EncodeError, Header, Malformed, Message};

pub use incoming::Incoming;
pub use outgoing::Outgoing;
use wait::{ReceiveTimeout, WaitPlan};

/// Caps on what one connection may buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Bytes received but not yet decoded.
    pub max_in_bytes: usize,
    /// Fds received but not yet consumed by a message, at any time: one
    /// `recvmsg` may bring up to 253 (`SCM_MAX_FD`).
    pub max_in_fds: usize,
    /// Fds a peer may leave waiting for a message whose bytes have not
    /// arrived, once every whole message received has been decoded. More is
    /// [`ConnectionError::UnclaimedFds`]. The default is libwayland's 28
    /// fds per `sendmsg` ([`crate::wire::MAX_FDS_OUT`]): a sender that
    /// sends fds with or before their message never leaves more waiting.
    pub max_unclaimed_fds: usize,
    /// Bytes queued for sending.
    pub max_out_bytes: usize,
    /// Fds queued for sending.
    pub max_out_fds: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_in_bytes: 64 * 1024,
            max_in_fds: 1024,
            max_unclaimed_fds: crate::wire::MAX_FDS_OUT,
            max_out_bytes: 1024 * 1024,
            max_out_fds: 1024,
        }
    }
}

/// Errors of the connection layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer closed the connection (recvmsg returned 0, or EPIPE/ECONNRESET).
    Closed,
    /// The kernel truncated the ancillary data (MSG_CTRUNC): fds were lost.
    ControlTruncated,
    /// Received bytes would exceed `Limits::max_in_bytes`.
    InBytesOverCap,
    /// Received fds would exceed `Limits::max_in_fds`.
    InFdsOverCap,
    /// Once every whole message was decoded, more fds than
    /// `Limits::max_unclaimed_fds` were left with no message to take them:
    /// fds sent with messages that take none, or far ahead of their
    /// messages. They were closed.
    UnclaimedFds {
        /// Fds that were left (and closed).
        queued: usize,
        /// `Limits::max_unclaimed_fds`.
        max: usize,
    },
    /// Queued output would exceed `Limits::max_out_bytes`.
    OutBytesOverCap,
    /// Queued output fds would exceed `Limits::max_out_fds`.
    OutFdsOverCap,
    /// A message could not be encoded (a bug in the caller).
    Encode(EncodeError),
    /// Duplicating an fd to queue it failed.
    DupFd(io::Error),
    /// sendmsg failed.
    Send(io::Error),
    /// recvmsg failed.
    Recv(io::Error),
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ConnectionError::Closed => "connection closed by the peer",
            ConnectionError::ControlTruncated => {
                "ancillary data truncated (MSG_CTRUNC), received fds were lost"
            }
            ConnectionError::InBytesOverCap => "incoming bytes over the buffer cap",
            ConnectionError::InFdsOverCap => "incoming fds over the queue cap",
            ConnectionError::UnclaimedFds { queued, max } => {
                return write!(
                    f,
                    "fds that no message takes: {queued} left, \
                     at most {max} may wait for their message"
                )
            }
            ConnectionError::OutBytesOverCap => "outgoing bytes over the queue cap",
            ConnectionError::OutFdsOverCap => "outgoing fds over the queue cap",
            ConnectionError::Encode(_) => "cannot encode a message",
            ConnectionError::DupFd(_) => "cannot duplicate an fd to queue it",
            ConnectionError::Send(_) => "sendmsg failed",
            ConnectionError::Recv(_) => "recvmsg failed",
        };
        f.write_str(text)
    }
}

impl std::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConnectionError::Encode(e) => Some(e),
            ConnectionError::DupFd(e) | ConnectionError::Send(e) | ConnectionError::Recv(e) => {
                Some(e)
            }
            _ => None,
        }
    }
}

/// The outcome of [`Connection::flush`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Everything queued has been sent.
    Done,
    /// The socket is full (EAGAIN): wait for it to become writable.
    WouldBlock,
}

/// The outcome of [`Connection::recv`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recv {
    /// This many bytes (and perhaps fds) were received.
    Data(usize),
    /// Nothing to read now (EAGAIN).
    WouldBlock,
}

/// Why [`Incoming::next_message`] could not produce a message.
///
/// Deliberately exhaustive, unlike the crate's other errors: it only sorts
/// the failure into the layer it came from, each of them an error of its
/// own that may grow ([`Malformed`], [`DecodeError`], [`ConnectionError`]
/// and the caller's lookup error), so that a caller routes every case to
/// its own error without a catch-all arm that would have nowhere true to go.
#[derive(Debug)]
pub enum NextError<E> {
    /// The header broke a wire rule.
    Malformed(Malformed),
    /// The caller's lookup of the header's object and opcode failed.
    Lookup(E),
    /// The arguments failed to decode; `NeedFds` here means the fds never came.
    Decode(DecodeError),
    /// The connection's own limits refused what arrived: only
    /// [`ConnectionError::UnclaimedFds`], returned where `Ok(None)` would
    /// be, after the fds were closed.
    Connection(ConnectionError),
}

impl<E: fmt::Display> fmt::Display for NextError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextError::Malformed(m) => write!(f, "malformed message: {m}"),
            NextError::Lookup(_) => f.write_str("unknown message"),
            NextError::Decode(DecodeError::NeedFds { needed, queued }) => write!(
                f,
                "missing fd: message carries {needed} fds but only {queued} arrived"
            ),
            NextError::Decode(DecodeError::Malformed(m)) => write!(f, "malformed message: {m}"),
            NextError::Connection(e) => e.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for NextError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NextError::Lookup(e) => Some(e),
            // The connection error's text is already ours: chain from
            // its own source, so nothing prints twice.
            NextError::Connection(e) => e.source(),
            _ => None,
        }
    }
}

/// A Wayland connection: a non-blocking Unix stream plus its buffers.
#[derive(Debug)]
pub struct Connection {
    /// Shared only with whoever watches the socket for this connection's
    /// owner ([`Connection::shared_stream`]).
    stream: Arc<UnixStream>,
    limits: Limits,
    incoming: Incoming,
    outgoing: Outgoing,
    /// `SO_RCVTIMEO` as [`Connection::recv_wait`] last set it.
    receive_timeout: ReceiveTimeout,
    /// The socket's file left non-blocking mode for `recv_wait`.
    blocking_file: bool,
}

impl Connection {
    /// The most fds one [`Connection::recv`] can take in: `SCM_MAX_FD`, the
    /// most the kernel attaches to one `sendmsg`.
    pub const RECV_FD_CAPACITY: usize = incoming::MAX_FDS_IN;

    /// Wraps a connected stream with the default limits; sets it non-blocking.
    pub fn new(stream: UnixStream) -> io::Result<Self> {
        Self::with_limits(stream, Limits::default())
    }

    /// Wraps a connected stream with these limits; sets it non-blocking.
    pub fn with_limits(stream: UnixStream, limits: Limits) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(Connection {
            stream: Arc::new(stream),
            limits,
            incoming: Incoming::with_limits(&limits),
            outgoing: Outgoing::with_limits(limits),
            receive_timeout: ReceiveTimeout::default(),
            blocking_file: false,
        })
    }

    /// Keeps the incoming buffer and fd queue, and up to two sent output
    /// chunks, once drained, instead of freeing them (4 KiB to 12 KiB held).
    /// For a client's few connections, where one 4 KiB allocation and
    /// zeroing per message in each direction costs more than the memory;
    /// a server with many idle clients leaves it off (the default).
    pub fn keep_buffers(&mut self, keep: bool) {
        self.incoming.keep = keep;
        self.outgoing.keep = keep;
    }

    /// Lends `shared`'s buffers to this connection for one wakeup (see
    /// [`SharedBuffers`]); call [`Connection::return_buffers`] before
    /// serving another connection. Not API, as [`SharedBuffers`] is not.
    #[doc(hidden)]
    pub fn borrow_buffers(&mut self, shared: &mut SharedBuffers) {
        self.incoming.borrow_input(&mut shared.input);
        self.outgoing.borrow_chunks(&mut shared.chunks);
    }

    /// Gives back what [`Connection::borrow_buffers`] lent, keeping only
    /// what this connection still needs: the bytes of a message not wholly
    /// received, and output not yet sent. Not API.
    #[doc(hidden)]
    pub fn return_buffers(&mut self, shared: &mut SharedBuffers) {
        self.incoming.return_input(&mut shared.input);
        self.outgoing.return_chunks(&mut shared.chunks);
    }

    /// Counts the fds sent that the peer may not have read yet, for
    /// [`Connection::fds_in_flight`]: each `sendmsg` made while fds may be
    /// in flight is logged, at the cost of two `ioctl`s. Off by default.
    pub fn track_fds_in_flight(&mut self) {
        self.outgoing.track_in_flight = true;
    }

    /// Fds queued to send, plus, with [`Connection::track_fds_in_flight`],
    /// those sent that the peer may not have read (one `SIOCOUTQ`, only
    /// while some were sent). An upper bound, never an undercount: the
    /// kernel charges each fd in flight to the sender's user, against its
    /// `RLIMIT_NOFILE`, until the peer reads it. Between calls,
    /// [`Outgoing::fds_in_flight`] adds what was queued or sent since.
    #[inline]
    pub fn fds_in_flight(&mut self) -> usize {
        self.outgoing.trim_in_flight(self.stream.as_fd());
        self.outgoing.fds_in_flight()
    }

    /// The socket, e.g. to register with an event loop or to read `SO_PEERCRED`.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// A second handle on the socket, for an event loop that must own what
    /// it watches while the connection lives elsewhere (a server's client
    /// table): the socket closes when both are dropped, so the loop never
    /// watches a closed or reused fd, and it costs no `dup`.
    pub fn shared_stream(&self) -> Arc<UnixStream> {
        Arc::clone(&self.stream)
    }

    /// The limits this connection enforces.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Changes the two caps a server sets per wakeup from its share of a
    /// server-wide budget: the bytes that may be queued for sending
    /// (`Limits::max_out_bytes`) and the fds that may be left waiting for
    /// their message (`Limits::max_unclaimed_fds`). Nothing already
    /// queued is dropped: a lower cap refuses what comes next.
    pub fn set_caps(&mut self, max_out_bytes: usize, max_unclaimed_fds: usize) {
        self.limits.max_out_bytes = max_out_bytes;
        self.limits.max_unclaimed_fds = max_unclaimed_fds;
        self.outgoing.set_max_bytes(max_out_bytes);
        self.incoming.set_max_unclaimed_fds(max_unclaimed_fds);
    }

    /// Drops everything received and not decoded, and everything queued
    /// and not sent, closing their fds: for a peer that is being cut off.
    /// Fds already sent still count in [`Connection::fds_in_flight`].
    pub fn discard(&mut self) {
        self.incoming.discard();
        self.outgoing.discard();
    }

    /// One `recvmsg` into the incoming buffers.
    ///
    /// Decode what arrived with [`Connection::next_message`] until it returns
    /// `Ok(None)` before calling `recv` again: a buffer left at
    /// `Limits::max_in_bytes` is [`ConnectionError::InBytesOverCap`].
    pub fn recv(&mut self) -> Result<Recv, ConnectionError> {
        self.recv_with_fd_capacity(Self::RECV_FD_CAPACITY)
    }

    /// [`Connection::recv`] with a control buffer sized for only `fds` fds
    /// (at most [`Connection::RECV_FD_CAPACITY`]; the kernel may round it up
    /// by a few). It exists so that tests can make the kernel truncate the
    /// ancillary data and check that [`ConnectionError::ControlTruncated`] is
    /// reported and the fds that arrived are closed. Use `recv` otherwise.
    #[doc(hidden)]
    pub fn recv_with_fd_capacity(&mut self, fds: usize) -> Result<Recv, ConnectionError> {
        let fds = fds.min(Self::RECV_FD_CAPACITY);
        self.incoming
            .recv(self.stream.as_fd(), &self.limits, fds, false)
    }

    /// One `recvmsg` that waits inside the kernel for input, for a blocking
    /// client that has nothing queued to send: one call where `poll` and
    /// then [`Connection::recv`] are two.
    ///
    /// Returns `Recv::Data` as soon as anything arrives, and
    /// `Recv::WouldBlock` when the wait ended first: the deadline passed,
    /// a signal came, or the socket's receive timeout (at most a second,
    /// never past `deadline`) ran out. The caller checks its deadline and
    /// calls again. A deadline already past does a non-blocking `recv`;
    /// `None` waits with no limit.
    ///
    /// The first call puts the socket's file in blocking mode and this
    /// connection then owns its `SO_RCVTIMEO`. Every other call of the
    /// connection still passes `MSG_DONTWAIT`, but I/O of the caller's own
    /// on [`Connection::stream`] (or a duplicate of it) must pass it too.
    /// Don't use it with an event loop: use `recv` when the socket is
    /// readable.
    pub fn recv_wait(&mut self, deadline: Option<Instant>) -> Result<Recv, ConnectionError> {
        let socket = self.stream.as_fd();
        match self.receive_timeout.plan(deadline, Instant::now()) {
            WaitPlan::DontBlock => return self.recv(),
            WaitPlan::Block => {}
            WaitPlan::SetThenBlock(timeout) => self
                .receive_timeout
                .set(socket, timeout)
                .map_err(ConnectionError::Recv)?,
        }
        if !self.blocking_file {
            self.stream
                .set_nonblocking(false)
                .map_err(ConnectionError::Recv)?;
            self.blocking_file = true;
        }
        let fds = Self::RECV_FD_CAPACITY;
        self.incoming.recv(socket, &self.limits, fds, true)
    }

    /// Sends queued output with as few `sendmsg` calls as possible.
    pub fn flush(&mut self) -> Result<Flush, ConnectionError> {
        self.outgoing.flush(self.stream.as_fd())
    }

    /// The incoming and outgoing halves, borrowed separately so a message
    /// can be handled while replies are queued.
    pub fn split(&mut self) -> (&mut Incoming, &mut Outgoing) {
        (&mut self.incoming, &mut self.outgoing)
    }

    /// Queues one message (see [`Outgoing::send`]).
    pub fn send(
        &mut self,
        sender: u32,
        opcode: u16,
        desc: &MessageDesc,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<(), ConnectionError> {
        self.split().1.send(sender, opcode, desc, args)
    }

    /// Queues one message that owns its fds (see [`Outgoing::send_owned`]):
    /// no duplicate is made, and the fds are closed once sent.
    pub fn send_owned(
        &mut self,
        sender: u32,
        opcode: u16,
        desc: &MessageDesc,
        args: Vec<Arg<'_, OwnedFd>>,
    ) -> Result<(), ConnectionError> {
        self.outgoing.send_owned(sender, opcode, desc, args)
    }

    /// Queues one message and flushes at once, the caller keeping its fds.
    ///
    /// When nothing else is queued and the socket takes the message, its
    /// fds go straight from the caller's into the one `sendmsg`, with no
    /// duplicate to make and close; otherwise it is queued as by
    /// [`Connection::send`] (its fds duplicated) and the queue flushed. On an
    /// error nothing of this message stays queued.
    pub fn send_now(
        &mut self,
        sender: u32,
        opcode: u16,
        desc: &MessageDesc,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<Flush, ConnectionError> {
        let socket = self.stream.as_fd();
        self.outgoing.send_now(socket, sender, opcode, desc, args)
    }

    /// Decodes the next message (see [`Incoming::next_message`]).
    pub fn next_message<E>(
        &mut self,
        lookup: impl FnOnce(&Header) -> Result<&'static MessageDesc, E>,
    ) -> Result<Option<Message<'_>>, NextError<E>> {
        self.split().0.next_message(lookup)
    }

    /// Whether output is queued.
    pub fn has_pending_output(&self) -> bool {
        self.outgoing.queued_bytes() > 0
    }

    /// Heap bytes the buffers and queues hold right now, for memory
    /// accounting. It is 0 for an idle connection (nothing buffered).
    pub fn heap_bytes(&self) -> usize {
        self.incoming.heap_bytes() + self.outgoing.heap_bytes()
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

#[cfg(test)]
mod tests;
