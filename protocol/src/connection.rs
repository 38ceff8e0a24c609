//! A non-blocking Wayland connection over a Unix stream socket: `sendmsg` /
//! `recvmsg` with `SCM_RIGHTS`, buffering, and caps on everything buffered.
//!
//! (Skeleton: signatures are the contract; bodies are being written.)

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use crate::interface::MessageDesc;
use crate::wire::{Arg, DecodeError, EncodeError, Header, Malformed, Message};

/// Caps on what one connection may buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes received but not yet decoded.
    pub max_in_bytes: usize,
    /// Fds received but not yet consumed by a message.
    pub max_in_fds: usize,
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
            max_out_bytes: 1024 * 1024,
            max_out_fds: 1024,
        }
    }
}

/// Errors of the connection layer.
#[derive(Debug)]
pub enum ConnectionError {
    /// The peer closed the connection (recvmsg returned 0, or EPIPE/ECONNRESET).
    Closed,
    /// The kernel truncated the ancillary data (MSG_CTRUNC): fds were lost.
    ControlTruncated,
    /// Received bytes would exceed `Limits::max_in_bytes`.
    InBytesOverCap,
    /// Received fds would exceed `Limits::max_in_fds`.
    InFdsOverCap,
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
        todo!()
    }
}

impl std::error::Error for ConnectionError {}

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
#[derive(Debug)]
pub enum NextError<E> {
    /// The header broke a wire rule.
    Malformed(Malformed),
    /// The caller's lookup of the header's object and opcode failed.
    Lookup(E),
    /// The arguments failed to decode; `NeedFds` here means the fds never came.
    Decode(DecodeError),
}

/// Received bytes and fds waiting to be decoded.
#[derive(Debug, Default)]
pub struct Incoming {
    _private: (),
}

impl Incoming {
    /// Decodes the next complete message, or `Ok(None)` when more bytes are
    /// needed. `lookup` maps a header to the message's signature.
    pub fn next_message<E>(
        &mut self,
        lookup: impl FnOnce(&Header) -> Result<&'static MessageDesc, E>,
    ) -> Result<Option<Message<'_>>, NextError<E>> {
        todo!()
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered_bytes(&self) -> usize {
        todo!()
    }

    /// Fds received and not yet consumed.
    pub fn queued_fds(&self) -> usize {
        todo!()
    }
}

/// Encoded messages and fds waiting to be sent.
#[derive(Debug, Default)]
pub struct Outgoing {
    _private: (),
}

impl Outgoing {
    /// Encodes and queues one message; its fds are duplicated (CLOEXEC) and
    /// queued, so the caller keeps its own.
    pub fn send(
        &mut self,
        sender: u32,
        opcode: u16,
        desc: &MessageDesc,
        args: &[Arg<'_, BorrowedFd<'_>>],
    ) -> Result<(), ConnectionError> {
        todo!()
    }

    /// Bytes queued and not yet sent.
    pub fn queued_bytes(&self) -> usize {
        todo!()
    }
}

/// A Wayland connection: a non-blocking Unix stream plus its buffers.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
}

impl Connection {
    /// Wraps a connected stream with the default limits; sets it non-blocking.
    pub fn new(stream: UnixStream) -> io::Result<Self> {
        Self::with_limits(stream, Limits::default())
    }

    /// Wraps a connected stream with these limits; sets it non-blocking.
    pub fn with_limits(stream: UnixStream, limits: Limits) -> io::Result<Self> {
        todo!()
    }

    /// The socket, e.g. to register with an event loop or to read `SO_PEERCRED`.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// One `recvmsg` into the incoming buffers.
    pub fn recv(&mut self) -> Result<Recv, ConnectionError> {
        todo!()
    }

    /// Sends queued output with as few `sendmsg` calls as possible.
    pub fn flush(&mut self) -> Result<Flush, ConnectionError> {
        todo!()
    }

    /// The incoming and outgoing halves, borrowed separately so a message
    /// can be handled while replies are queued.
    pub fn split(&mut self) -> (&mut Incoming, &mut Outgoing) {
        todo!()
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

    /// Decodes the next message (see [`Incoming::next_message`]).
    pub fn next_message<E>(
        &mut self,
        lookup: impl FnOnce(&Header) -> Result<&'static MessageDesc, E>,
    ) -> Result<Option<Message<'_>>, NextError<E>> {
        self.split().0.next_message(lookup)
    }

    /// Whether output is queued.
    pub fn has_pending_output(&self) -> bool {
        todo!()
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

#[allow(dead_code)]
fn _unused(_: VecDeque<OwnedFd>) {}
