//! Driving the server's handling of one client's request stream in-process,
//! for fuzz targets and tests: bytes and fds in, what the server would send
//! and whether it disconnects out.
//!
//! What it is: the real server code with only the event loop taken away.
//! The client is the server's real `Client` over one end of a
//! `UnixStream` pair; the harness writes the input into the other end, then
//! runs the wakeup code the event loop runs ([`crate::runtime::wakeup`]:
//! `serve_input`, `flush`, and `release` when the client goes), and reads
//! back what the server sent. Compiled only with the `fuzzing` feature. What it is
//! not: a multi-client simulation. One client at a time, so a brokered
//! channel can only be refused (`unknown_name`, `self_connect`, ...).
//!
//! # Example
//!
//! ```
//! use waypass_server::fuzzing::dispatch_stream;
//!
//! // wl_display@1.sync(new id 2): a wl_callback.done, then delete_id.
//! let mut bytes = Vec::new();
//! for word in [1u32, 12 << 16, 2] {
//!     bytes.extend_from_slice(&word.to_ne_bytes());
//! }
//! let outcome = dispatch_stream(&bytes, Vec::new()).expect("harness");
//! assert!(outcome.disconnect.is_none());
//! assert_eq!(outcome.sent.len(), 12 + 12);
//! ```
//!
//! # Implementation notes
//!
//! - **Arbitrary splits.** [`ClientHarness::feed`] may be called any number
//!   of times with any slice of the stream; fds ride on the first
//!   `sendmsg`s, at most 28 per call as libwayland sends them. Input the
//!   socket cannot hold yet is written as the server drains it, so a feed
//!   of any size never blocks. Fds left when the bytes run out are closed
//!   (an fd needs at least one byte to travel with).
//! - **Same code path.** One `recv`, dispatch everything complete, flush,
//!   repeated until `recv` finds nothing: exactly what level-triggered
//!   wakeups do. A `Stop` posts `wl_display.error` and disconnects as in
//!   the server, and leaving releases the client's broker names.
//! - **One keymap.** [`FuzzServer::new`] compiles the embedded keymap once;
//!   [`dispatch_stream`] keeps one per thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use log::debug;
use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use waypass_protocol::{Recv, Tracer};

use crate::config::{BrokerLimits, Settings};
use crate::keymap::{Keymap, KeymapError, KeymapSource};
use crate::proto::broker::Broker;
use crate::proto::clipboard::Clipboard;
pub use crate::proto::ctx::ProtocolError;
use crate::proto::ctx::Shared;
pub use crate::runtime::wakeup::Disconnect;
use crate::runtime::wakeup::{flush, release, serve_input};
use crate::state::{Client, ClientKey};

/// The most fds attached to one `sendmsg`, as libwayland sends them.
const FDS_PER_SEND: usize = 28;
/// Room for `SCM_MAX_FD` fds when reading the server's output.
const RECV_FDS: usize = 253;

/// Why the harness could not be set up.
#[derive(Debug)]
pub enum HarnessError {
    /// The embedded keymap could not be loaded.
    LoadKeymap(KeymapError),
    /// The socket pair for a client could not be created or set up.
    SocketPair(io::Error),
    /// The seat name holds a NUL byte (never the default one).
    SeatName,
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HarnessError::LoadKeymap(_) => f.write_str("cannot load the embedded keymap"),
            HarnessError::SocketPair(_) => f.write_str("cannot create a client socket pair"),
            HarnessError::SeatName => f.write_str("the seat name holds a NUL byte"),
        }
    }
}

impl std::error::Error for HarnessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HarnessError::LoadKeymap(e) => Some(e),
            HarnessError::SocketPair(e) => Some(e),
            HarnessError::SeatName => None,
        }
    }
}

/// Server-wide state for harnessed clients: a compiled keymap, default
/// settings and an empty broker.
#[derive(Debug)]
pub struct FuzzServer {
    shared: Shared,
    broker: Broker,
    clipboard: Clipboard,
    next_key: u64,
}

impl FuzzServer {
    /// Compiles the embedded US keymap, with the default command-line settings.
    pub fn new() -> Result<FuzzServer, HarnessError> {
        let keymap = Keymap::load(&KeymapSource::Embedded).map_err(HarnessError::LoadKeymap)?;
        let shared =
            Shared::new(keymap, Settings::default()).map_err(|_| HarnessError::SeatName)?;
        Ok(FuzzServer {
            shared,
            broker: Broker::new(BrokerLimits::default()),
            clipboard: Clipboard::default(),
            next_key: 0,
        })
    }

    /// A newly connected client.
    pub fn client(&mut self) -> Result<ClientHarness<'_>, HarnessError> {
        let (ours, theirs) = UnixStream::pair().map_err(HarnessError::SocketPair)?;
        theirs
            .set_nonblocking(true)
            .map_err(HarnessError::SocketPair)?;
        let key = ClientKey(self.next_key);
        self.next_key += 1;
        let client = Client::new(
            key,
            ours,
            Tracer::from_env(waypass_protocol::TraceSide::Server),
        )
        .map_err(HarnessError::SocketPair)?;
        Ok(ClientHarness {
            server: self,
            client: Some(client),
            peer: theirs,
            outcome: Outcome::default(),
        })
    }

    /// How many broker names are owned (0 once every client has left).
    pub fn broker_names(&self) -> usize {
        self.broker.name_count()
    }
}

/// What the server did with a client's input.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every byte the server sent, in order.
    pub sent: Vec<u8>,
    /// Every fd the server sent, in order.
    pub fds: Vec<OwnedFd>,
    /// Why the server disconnected the client, if it did.
    pub disconnect: Option<Disconnect>,
}

impl Outcome {
    /// The protocol error the client was disconnected for, if any.
    pub fn protocol_error(&self) -> Option<&ProtocolError> {
        match &self.disconnect {
            Some(Disconnect::Protocol(err)) => Some(err),
            _ => None,
        }
    }
}

/// One connected client of a [`FuzzServer`], fed by hand.
#[derive(Debug)]
pub struct ClientHarness<'s> {
    server: &'s mut FuzzServer,
    /// `None` once the server disconnected it.
    client: Option<Client>,
    /// The client's end of the socket.
    peer: UnixStream,
    outcome: Outcome,
}

impl ClientHarness<'_> {
    /// Sends `bytes` with `fds` as the client would, and lets the server
    /// handle everything that arrived. Returns whether the client is still
    /// connected.
    pub fn feed(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> bool {
        let mut fds: VecDeque<OwnedFd> = fds.into();
        let mut rest = bytes;
        while !rest.is_empty() && self.client.is_some() {
            let batch: Vec<RawFd> = fds
                .iter()
                .take(FDS_PER_SEND)
                .map(|fd| fd.as_raw_fd())
                .collect();
            let rights = [ControlMessage::ScmRights(&batch)];
            let cmsgs: &[ControlMessage] = if batch.is_empty() { &[] } else { &rights };
            match sendmsg::<()>(
                self.peer.as_raw_fd(),
                &[IoSlice::new(rest)],
                cmsgs,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(n) => {
                    rest = &rest[n..];
                    // The kernel holds its own copies now.
                    fds.drain(..batch.len());
                }
                // The socket is full: the server reads below, then we retry.
                Err(Errno::EAGAIN) => {}
                Err(Errno::EINTR) => continue,
                // The server end closed under us: nothing more to feed.
                Err(e) => {
                    debug!("harness sendmsg: {e}");
                    break;
                }
            }
            self.serve();
        }
        self.serve();
        self.client.is_some()
    }

    /// Whether the server still serves the client.
    pub fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    /// What happened so far.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// Disconnects the client (if the server has not) and returns what
    /// happened.
    pub fn finish(mut self) -> Outcome {
        self.leave(None);
        std::mem::take(&mut self.outcome)
    }

    /// The event loop's work for as many wakeups as the input needs.
    fn serve(&mut self) {
        while let Some(client) = self.client.as_mut() {
            let server = &mut *self.server;
            let received = serve_input(
                client,
                &server.shared,
                &mut server.broker,
                &mut server.clipboard,
            );
            // One client: nothing can be brokered or pasted to another (its
            // own clipboard output is queued during dispatch). Fds close.
            drop(server.broker.take_deliveries());
            drop(server.clipboard.take_deliveries());
            let result = received.and_then(|r| match flush(client) {
                Ok(_) => Ok(r),
                Err(e) => Err(Disconnect::Send(e)),
            });
            self.drain_peer();
            match result {
                Ok(Recv::Data(_)) => {}
                Ok(Recv::WouldBlock) => break,
                Err(reason) => self.leave(Some(reason)),
            }
        }
        self.drain_peer();
    }

    /// Drops the client as the server does, releasing its names.
    fn leave(&mut self, reason: Option<Disconnect>) {
        if let Some(client) = self.client.take() {
            release(&client, &mut self.server.broker, &mut self.server.clipboard);
            // One client: what its leaving clears is for nobody else.
            drop(self.server.clipboard.take_deliveries());
            if reason.is_some() {
                self.outcome.disconnect = reason;
            }
        }
    }

    /// Reads everything the server has sent so far.
    fn drain_peer(&mut self) {
        let mut buf = [0u8; 4096];
        let mut space = nix::cmsg_space!([RawFd; RECV_FDS]);
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC;
            let msg = match recvmsg::<()>(self.peer.as_raw_fd(), &mut iov, Some(&mut space), flags)
            {
                Ok(msg) => msg,
                Err(Errno::EINTR) => continue,
                // EAGAIN: all read for now; anything else: the end is gone.
                Err(_) => return,
            };
            let n = msg.bytes;
            let cmsgs = msg.cmsgs();
            if let Ok(cmsgs) = cmsgs {
                for cmsg in cmsgs {
                    if let ControlMessageOwned::ScmRights(fds) = cmsg {
                        for fd in fds {
                            // SAFETY: the kernel just installed `fd` in this
                            // process for us; nothing else owns it.
                            self.outcome.fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                        }
                    }
                }
            }
            // (MSG_CTRUNC cannot happen: the server sends at most 28 fds at
            // once and the buffer has room for 253.)
            if n == 0 {
                return;
            }
            self.outcome.sent.extend_from_slice(&buf[..n]);
        }
    }
}

impl Drop for ClientHarness<'_> {
    fn drop(&mut self) {
        self.leave(None);
    }
}

thread_local! {
    static SERVER: RefCell<Option<FuzzServer>> = const { RefCell::new(None) };
}

/// Feeds one client's whole request stream (`bytes`, with `fds` riding on
/// the first bytes) to a fresh client of this thread's [`FuzzServer`], and
/// returns what the server sent and whether it disconnected the client.
pub fn dispatch_stream(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<Outcome, HarnessError> {
    SERVER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let server = match slot.as_mut() {
            Some(server) => server,
            None => slot.insert(FuzzServer::new()?),
        };
        let mut client = server.client()?;
        client.feed(bytes, fds);
        Ok(client.finish())
    })
}

#[cfg(test)]
mod tests;
