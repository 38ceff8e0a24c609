//! A typed peer channel: `waypass_peer_v1` over a brokered socket.
//!
//! What it is: [`PeerChannel`], one end of the direct socket two clients get
//! from the broker (`waypass_connection_v1.established` and
//! `waypass_name_v1.peer`). Both ends send `text` and `file` requests to
//! object 1, answer the other's with `ack` or `refuse` (and `progress`
//! while reading a large file), and receive them as [`PeerMessage`]s. A file travels
//! as an fd ([`FileOffer`]): the receiver reads the contents through it, and
//! not one byte of them crosses the socket, whatever the file's size.
//!
//! What it is not: the broker client (getting the socket is the caller's
//! business), an event loop (it blocks inside `recvmsg`, or in `poll` while
//! output waits for room, never past the timeout; register [`AsFd`] with a
//! loop and pass `Some(Duration::ZERO)` to use it from one),
//! or a file downloader (what to do with an offer is the caller's choice).
//!
//! # Example
//!
//! ```
//! use std::io::Write;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//! use waypass_protocol::{PeerChannel, PeerMessage};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (a, b) = UnixStream::pair()?;
//! let (mut alice, mut bob) = (PeerChannel::new(a)?, PeerChannel::new(b)?);
//! let timeout = Some(Duration::from_secs(10));
//!
//! let hello = alice.send_text("hello")?;
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("notes.txt");
//! std::fs::File::create(&path)?.write_all(b"the contents")?;
//! let offer = alice.send_path(&path)?;
//! std::fs::remove_file(&path)?; // Bob holds the file by its fd, not its path.
//!
//! let Some(PeerMessage::Text { serial, text }) = bob.recv(timeout)? else { panic!() };
//! assert_eq!((serial, text.as_str()), (hello, "hello"));
//! bob.ack(serial)?;
//! let Some(PeerMessage::File(file)) = bob.recv(timeout)? else { panic!() };
//! assert_eq!(file.safe_name(), Some(path.file_name().unwrap().to_str().unwrap()));
//! assert_eq!(file.read_to_vec()?, b"the contents");
//! bob.ack(file.serial)?;
//!
//! alice.wait_ack(offer, timeout)?; // The hello ack waits in the inbox.
//! assert!(matches!(alice.recv(timeout)?, Some(PeerMessage::Ack { serial }) if serial == hello));
//! drop(alice);
//! assert!(bob.recv(timeout)?.is_none()); // Closed cleanly.
//! # Ok(())
//! # }
//! ```
//!
//! # Implementation notes
//!
//! - **Layering.** Bytes and fds go through [`Connection`] and the codec like
//!   every other waypass message; messages are decoded with the
//!   `waypass_peer_v1` request table, and anything not addressed to object 1
//!   or not in that table is a [`Violation`]. Traces follow `WAYLAND_DEBUG`
//!   (as a client) with the interface name `waypass_peer_v1`.
//! - **Sending never blocks.** `send_*` and [`PeerChannel::ack`] queue the
//!   message and try one non-blocking flush. What the socket could not take
//!   goes out in [`PeerChannel::flush`], [`PeerChannel::wait_ack`] or while
//!   [`PeerChannel::recv`] waits. Two ends that each queue more than a
//!   socket buffer (about 200 KiB, thousands of messages) and then both
//!   `flush` without reading would wait on each other until the timeout.
//! - **Waiting.** With nothing left to send, [`PeerChannel::recv`] and
//!   [`PeerChannel::wait_ack`] wait inside one blocking `recvmsg`
//!   ([`Connection::recv_wait`]): one call per message in a ping-pong and in
//!   a stream alike, where `recvmsg`, `poll`, `recvmsg` took three in a
//!   ping-pong.
//! - **Files.** A writable fd given to [`PeerChannel::send_file`] is
//!   reopened read-only through `/proc/self/fd/N` before it is offered, as
//!   the protocol asks, so the peer can never write to the sender's file.
//!   An offer costs an `fstat` (the announced size), an `fcntl(F_GETFL)`
//!   (is it writable?) and the `sendmsg`, which passes the caller's fd
//!   itself when the socket takes it at once (a duplicate is queued only
//!   when it must wait). [`PeerChannel::send_path`] and
//!   [`PeerChannel::send_sealed`] open the fd read-only themselves and hand
//!   it to the queue, skipping the checks that cannot fail.
//!   Sealed snapshots go out as [`SealedFile::reopen_read_only`](crate::SealedFile::reopen_read_only).
//! - **Text encoding.** Wire strings are bytes. Invalid UTF-8 in a text or
//!   file name is replaced with U+FFFD (`from_utf8_lossy`) rather than
//!   refused: a text is for people and loses nothing that was meaningful,
//!   and [`FileOffer::safe_name`] refuses a name that needed replacing.
//! - **Answers and the inbox.** [`PeerChannel::wait_ack`] ends on the
//!   `ack` or `refuse` of its serial ([`ChannelError::Refused`]) and keeps
//!   other messages for `recv`, in an inbox capped at
//!   [`INBOX_MAX_MESSAGES`], [`INBOX_MAX_BYTES`] and [`INBOX_MAX_FILES`]
//!   ([`ChannelError::InboxFull`]); [`PeerChannel::wait_ack_with`] also
//!   lets `progress` extend the wait. See the `inbox` module. A `progress`
//!   must be about a file of ours awaiting its answer and stay within its
//!   size, else it is a [`Violation`] (see the `offered` module).
//! - **Closing.** [`PeerChannel::recv`] returns `Ok(None)` once the peer has
//!   closed after whole messages; a close in the middle of a message is a
//!   [`Violation::ClosedMidMessage`]. An ack to a peer that has already
//!   gone is dropped quietly: nobody is left waiting for it.

mod error;
mod inbox;
mod offer;
mod offered;
mod send;

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{getsockopt, sockopt, SockType};

use crate::connection::{Connection, ConnectionError, Flush, NextError, Recv};
use crate::debug::{Direction, TraceSide, Tracer};
use crate::protocols::broker::waypass_peer_v1::{req, INTERFACE};
use crate::protocols::broker::PEER_OBJECT_ID as OBJECT_ID;
use crate::wire::{Arg, DecodeError, Message};

pub use error::{ChannelError, Violation};
use inbox::Inbox;
pub use inbox::{INBOX_MAX_BYTES, INBOX_MAX_FILES, INBOX_MAX_MESSAGES};
pub use offer::{FileOffer, SAFE_NAME_MAX};
use offered::Offered;
pub use send::{MAX_NAME_LEN, MAX_REASON_LEN, MAX_TEXT_LEN};

/// A message received from the peer.
#[derive(Debug)]
pub enum PeerMessage {
    /// `text(serial, text)`; invalid UTF-8 was replaced with U+FFFD.
    Text {
        /// The peer's serial for this message.
        serial: u32,
        /// The text.
        text: String,
    },
    /// `file(serial, fd, name, size_hi, size_lo)`.
    File(FileOffer),
    /// `ack(serial)`: the peer handled our message with this serial.
    Ack {
        /// The serial of our message.
        serial: u32,
    },
    /// `refuse(serial, reason)`: the peer will not take our message
    /// `serial`. The reason is sanitised on arrival (see
    /// [`PeerChannel::refuse`]): one line, no control characters, at most
    /// [`MAX_REASON_LEN`] bytes.
    Refused {
        /// The serial of our message.
        serial: u32,
        /// Why, for people.
        reason: String,
    },
    /// `progress(serial, done_hi, done_lo)`: the peer has read `done` bytes
    /// of our file `serial` so far.
    Progress {
        /// The serial of our file.
        serial: u32,
        /// Bytes read so far (`done_hi << 32 | done_lo`).
        done: u64,
    },
}

/// One end of a `waypass_peer_v1` channel over a brokered socket.
///
/// Send with [`send_text`](PeerChannel::send_text),
/// [`send_path`](PeerChannel::send_path), [`send_file`](PeerChannel::send_file)
/// or [`send_snapshot`](PeerChannel::send_snapshot), each returning the serial
/// the peer will [`ack`](PeerChannel::ack); receive with
/// [`recv`](PeerChannel::recv); block on [`flush`](PeerChannel::flush) or
/// [`wait_ack`](PeerChannel::wait_ack). Dropping it closes the socket and
/// every received fd nobody took.
pub struct PeerChannel {
    conn: Connection,
    tracer: Tracer,
    next_serial: u32,
    /// Messages that arrived while [`PeerChannel::wait_ack`] waited.
    inbox: Inbox,
    /// Our file offers not answered yet, to check `progress` against.
    offered: Offered,
    /// The peer closed its end and every whole message was decoded.
    peer_closed: bool,
    /// Writing failed with EPIPE: the peer no longer reads.
    write_closed: bool,
    bytes_sent: u64,
    bytes_received: u64,
}

impl fmt::Debug for PeerChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerChannel")
            .field("fd", &self.conn.as_fd().as_raw_fd())
            .field("next_serial", &self.next_serial)
            .field("inbox", &self.inbox.len())
            .field("offered", &self.offered.len())
            .field("peer_closed", &self.peer_closed)
            .field("bytes_sent", &self.bytes_sent)
            .field("bytes_received", &self.bytes_received)
            .finish()
    }
}

impl PeerChannel {
    /// Wraps one end of a brokered socket (a `UnixStream` or an `OwnedFd`),
    /// sets it non-blocking, and reads `WAYLAND_DEBUG` for tracing.
    /// An fd that is not a stream socket is refused (`InvalidInput`).
    pub fn new(stream: impl Into<UnixStream>) -> io::Result<Self> {
        let stream = stream.into();
        let kind = getsockopt(&stream, sockopt::SockType).map_err(io::Error::from)?;
        if kind != SockType::Stream {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a peer channel needs a stream socket",
            ));
        }
        log::debug!("peer channel on fd {}", stream.as_raw_fd());
        let mut conn = Connection::new(stream)?;
        // A few channels per process: reusing their buffers beats freeing them.
        conn.keep_buffers(true);
        Ok(PeerChannel {
            conn,
            tracer: Tracer::from_env(TraceSide::Client),
            next_serial: 1,
            inbox: Inbox::default(),
            offered: Offered::default(),
            peer_closed: false,
            write_closed: false,
            bytes_sent: 0,
            bytes_received: 0,
        })
    }

    /// Replaces the tracer chosen from `WAYLAND_DEBUG`.
    pub fn set_tracer(&mut self, tracer: Tracer) {
        self.tracer = tracer;
    }

    /// Bytes `sendmsg` has taken so far: message bytes only, never the
    /// contents of offered files.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// Bytes `recvmsg` has returned so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Blocks until everything queued is sent, or `timeout` passes
    /// (`None`: no limit).
    pub fn flush(&mut self, timeout: Option<Duration>) -> Result<(), ChannelError> {
        let deadline = Deadline::after(timeout);
        while self.flush_once()? == Flush::WouldBlock {
            self.wait(deadline, PollFlags::POLLOUT)?;
        }
        Ok(())
    }

    /// The next message: blocks until one arrives, the peer closes
    /// (`Ok(None)`) or `timeout` passes ([`ChannelError::Timeout`]; `None`:
    /// no limit, `Some(Duration::ZERO)`: don't block). Queued output is sent
    /// meanwhile.
    pub fn recv(&mut self, timeout: Option<Duration>) -> Result<Option<PeerMessage>, ChannelError> {
        match self.inbox.pop_front() {
            Some(message) => Ok(Some(message)),
            None => self.next_from_socket(Deadline::after(timeout)),
        }
    }

    /// One non-blocking flush, counting the bytes it sent.
    fn flush_once(&mut self) -> Result<Flush, ChannelError> {
        if self.write_closed {
            return Err(ConnectionError::Closed.into());
        }
        let before = self.conn.split().1.queued_bytes();
        let result = self.conn.flush();
        let after = self.conn.split().1.queued_bytes();
        self.bytes_sent += (before - after) as u64;
        if let Err(ConnectionError::Closed) = result {
            self.write_closed = true;
        }
        Ok(result?)
    }

    /// The next message from the socket, waiting until `deadline`.
    fn next_from_socket(
        &mut self,
        deadline: Deadline,
    ) -> Result<Option<PeerMessage>, ChannelError> {
        if let Some(e) = self.inbox.overflow_error() {
            return Err(e);
        }
        loop {
            if let Some(message) = self.decode_one()? {
                return Ok(Some(message));
            }
            if self.peer_closed {
                return Ok(None);
            }
            let mut output_blocked = false;
            if self.conn.has_pending_output() && !self.write_closed {
                match self.flush_once() {
                    Ok(Flush::WouldBlock) => output_blocked = true,
                    // Sent; or the peer stopped reading but may still have
                    // messages for us: keep reading until its EOF.
                    Ok(Flush::Done) | Err(ChannelError::Connection(ConnectionError::Closed)) => {}
                    Err(e) => return Err(e),
                }
            }
            // Nothing left to send: wait inside recvmsg, one call. Output
            // waiting for room: poll for both, then read.
            let received = if output_blocked {
                self.conn.recv()
            } else {
                self.conn.recv_wait(deadline.0)
            };
            match received {
                Ok(Recv::Data(n)) => self.bytes_received += n as u64,
                Ok(Recv::WouldBlock) if output_blocked => {
                    self.wait(deadline, PollFlags::POLLIN | PollFlags::POLLOUT)?
                }
                Ok(Recv::WouldBlock) if deadline.passed() => return Err(ChannelError::Timeout),
                // The receive timeout or a signal ended the wait early.
                Ok(Recv::WouldBlock) => {}
                Err(ConnectionError::Closed) => self.on_eof()?,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The peer closed: clean if no unfinished message is buffered.
    fn on_eof(&mut self) -> Result<(), ChannelError> {
        let buffered = self.conn.split().0.buffered_bytes();
        if buffered > 0 {
            return Err(Violation::ClosedMidMessage { buffered }.into());
        }
        log::debug!("peer channel closed by the peer");
        self.peer_closed = true;
        Ok(())
    }

    /// Decodes one buffered message, if a whole one has arrived.
    fn decode_one(&mut self) -> Result<Option<PeerMessage>, ChannelError> {
        let tracer = self.tracer;
        let lookup = |h: &crate::wire::Header| {
            if h.sender != OBJECT_ID {
                return Err(Violation::UnknownObject(h.sender));
            }
            INTERFACE
                .request(h.opcode, INTERFACE.version)
                .map_err(|_| Violation::UnknownOpcode(h.opcode))
        };
        let message = match self.conn.next_message(lookup) {
            Ok(Some(message)) => message,
            Ok(None) => return Ok(None),
            Err(e) => return Err(decode_error(e)),
        };
        let desc = &INTERFACE.requests[usize::from(message.opcode)];
        tracer.trace(
            Direction::Received,
            &INTERFACE,
            OBJECT_ID,
            desc,
            &message.args,
            &|_| None,
        );
        let message = peer_message(message);
        self.offered.check(&message)?;
        Ok(Some(message))
    }

    /// Waits until the socket is ready for `events` or `deadline` passes.
    fn wait(&self, deadline: Deadline, events: PollFlags) -> Result<(), ChannelError> {
        let timeout = deadline.poll_timeout().ok_or(ChannelError::Timeout)?;
        let mut fds = [PollFd::new(self.conn.as_fd(), events)];
        match poll(&mut fds, timeout) {
            // Ready, or the time is up: the caller's loop finds out which.
            Ok(_) => Ok(()),
            // A signal: the caller's loop polls again with the time left.
            Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(ChannelError::io("poll the peer socket", e)),
        }
    }
}

impl AsFd for PeerChannel {
    /// The socket, to register with an event loop.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }
}

/// The rule a decoding error says the peer broke, or the connection limit
/// it went over; either is fatal.
fn decode_error(e: NextError<Violation>) -> ChannelError {
    match e {
        NextError::Lookup(v) => v.into(),
        NextError::Malformed(m) | NextError::Decode(DecodeError::Malformed(m)) => {
            Violation::Malformed(m).into()
        }
        // Final here: a sender's fds travel with or before its bytes.
        NextError::Decode(DecodeError::NeedFds { .. }) => Violation::MissingFd.into(),
        // Fds sent with no message to take them (e.g. with `text`): the
        // connection closed them, and the channel goes with them.
        NextError::Connection(e) => e.into(),
    }
}

/// Turns a message decoded with the `waypass_peer_v1` table into its type.
/// The decoder checked every argument against that table, so each one has
/// the type asked for here.
fn peer_message(message: Message<'_>) -> PeerMessage {
    let mut args = message.args.into_iter();
    match message.opcode {
        req::TEXT => PeerMessage::Text {
            serial: uint(args.next()),
            text: string(args.next()),
        },
        req::FILE => PeerMessage::File(FileOffer {
            serial: uint(args.next()),
            fd: fd(args.next()),
            name: string(args.next()),
            size: u64::from(uint(args.next())) << 32 | u64::from(uint(args.next())),
        }),
        req::ACK => PeerMessage::Ack {
            serial: uint(args.next()),
        },
        req::REFUSE => PeerMessage::Refused {
            serial: uint(args.next()),
            reason: send::sanitise_reason(&string(args.next())),
        },
        _ => PeerMessage::Progress {
            serial: uint(args.next()),
            done: u64::from(uint(args.next())) << 32 | u64::from(uint(args.next())),
        },
    }
}

fn uint(arg: Option<Arg<'_, OwnedFd>>) -> u32 {
    match arg {
        Some(Arg::Uint(v)) => v,
        other => unreachable!("the table says uint: {other:?}"),
    }
}

/// A non-null string, invalid UTF-8 replaced with U+FFFD.
fn string(arg: Option<Arg<'_, OwnedFd>>) -> String {
    match arg {
        Some(Arg::Str(Some(s))) => String::from_utf8_lossy(s.to_bytes()).into_owned(),
        other => unreachable!("the table says non-null string: {other:?}"),
    }
}

fn fd(arg: Option<Arg<'_, OwnedFd>>) -> OwnedFd {
    match arg {
        Some(Arg::Fd(fd)) => fd,
        other => unreachable!("the table says fd: {other:?}"),
    }
}

/// When a blocking call gives up.
#[derive(Debug, Clone, Copy)]
struct Deadline(Option<Instant>);

impl Deadline {
    /// `timeout` from now; `None` (or a time too far to represent) is never.
    fn after(timeout: Option<Duration>) -> Self {
        Deadline(timeout.and_then(|t| Instant::now().checked_add(t)))
    }

    /// Whether the deadline has passed (never for `None`).
    fn passed(self) -> bool {
        self.0.is_some_and(|at| Instant::now() >= at)
    }

    /// The time left as a poll timeout, rounded up to whole milliseconds;
    /// `None` once the deadline has passed.
    fn poll_timeout(self) -> Option<PollTimeout> {
        let Some(at) = self.0 else {
            return Some(PollTimeout::NONE);
        };
        let left = at.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        let ms = left.as_nanos().div_ceil(1_000_000);
        Some(PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX))
    }
}

#[cfg(test)]
mod loop_tests;
#[cfg(test)]
mod tests;
