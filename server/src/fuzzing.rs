//! Driving the server's handling of clients' request streams in-process,
//! for fuzz targets and tests: bytes and fds in, what the server sends each
//! client and whether it disconnects them out.
//!
//! What it is: the real server code with only the event loop taken away.
//! Each client is the server's real `Client` over one end of a
//! `UnixStream` pair; the harness writes a client's input into the other
//! end, then runs what the event loop runs ([`crate::runtime::core`]: the
//! client's wakeups, then the end of the loop pass, which announces
//! selections, flushes other clients and cuts off condemned ones), and
//! reads back what the server sent to every client. Several clients share
//! one [`FuzzServer`], so what one client does to others (a brokered
//! channel, a selection, a paste) is driven too: [`dispatch_clients`]
//! runs a script of several clients' inputs. Compiled only with the
//! `fuzzing` feature.
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
//! - **Arbitrary splits.** [`FuzzServer::feed`] may be called any number
//!   of times with any slice of a client's stream; fds ride on the first
//!   `sendmsg`s, at most 28 per call as libwayland sends them. Input the
//!   socket cannot hold yet is written as the server drains it, so a feed
//!   of any size never blocks. Fds left when the bytes run out are closed
//!   (an fd needs at least one byte to travel with).
//! - **Same code path.** Wakeups until the server has read everything the
//!   client sent, exactly what level-triggered wakeups do, then the end of
//!   the pass. A client that cannot take its output is woken for
//!   writing once its peer end has been read.
//! - **One keymap.** [`FuzzServer::new`] compiles the embedded keymap once;
//!   [`dispatch_stream`] and [`dispatch_clients`] keep one server per
//!   thread.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use log::debug;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::unistd::getuid;
use waypass_protocol::{ConnectionError, Credentials, Tracer};

use crate::config::Settings;
use crate::keymap::{Keymap, KeymapError, KeymapSource};
use crate::ledger::Ledger;
use crate::limits::{Budgets, Limits};
use crate::persist::{JobId, Watch};
use crate::proto::clipboard::persist::Persistence;
use crate::proto::clipboard::Clipboard;
pub use crate::proto::ctx::ProtocolError;
use crate::proto::ctx::Shared;
use crate::proto::extension::Extensions;
pub use crate::runtime::core::Disconnect;
use crate::runtime::core::{Core, Next};
use crate::state::ClientKey;

/// The fd limit the harness's budgets are derived from.
const FD_LIMIT: u64 = 4096;
/// Clients a [`dispatch_clients`] script can name.
pub const SCRIPT_CLIENTS: usize = 4;
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

/// One harnessed client: the client's end of its socket and what it got.
#[derive(Debug)]
struct Peer {
    key: ClientKey,
    /// The client's end.
    end: UnixStream,
    /// The server's end, to see whether it has read everything.
    server_end: Arc<UnixStream>,
    outcome: Outcome,
    /// `false` once the server disconnected it or it hung up.
    connected: bool,
    /// The server is cutting it off with fds in flight.
    cut_off: bool,
}

/// A server for harnessed clients: a compiled keymap, default settings and
/// limits, and every client connected so far.
#[derive(Debug)]
pub struct FuzzServer {
    core: Core,
    peers: Vec<Peer>,
    /// What the loop would watch for kept selections; a deadline's flag
    /// says it was armed before the current harness call.
    jobs: Vec<(JobId, Watch, bool)>,
    budgets: Budgets,
    deadlines_held: bool,
}

impl FuzzServer {
    /// Compiles the embedded US keymap, with the default command-line
    /// settings and limits.
    pub fn new() -> Result<FuzzServer, HarnessError> {
        let keymap = Keymap::load(&KeymapSource::Embedded).map_err(HarnessError::LoadKeymap)?;
        let limits = Limits::default();
        let shared =
            Shared::new(keymap, Settings::default(), limits).map_err(|_| HarnessError::SeatName)?;
        let budgets = limits
            .budgets(FD_LIMIT, 0)
            .map_err(|_| HarnessError::SeatName)?;
        let ledger = Ledger::new(&limits, budgets, getuid().as_raw());
        let tracer = Tracer::from_env(waypass_protocol::TraceSide::Server);
        let mut core = Core::new(shared, ledger, tracer, Extensions::default());
        core.record_departures();
        let mut server = FuzzServer {
            core,
            peers: Vec::new(),
            jobs: Vec::new(),
            budgets,
            deadlines_held: false,
        };
        server.reset_clipboard();
        Ok(server)
    }

    /// A fresh clipboard that keeps selections, as `--persist
    /// --persist-max 1MiB` does, so that reads, pastes from a copy and
    /// take-overs are driven too; nothing a previous run kept is left.
    fn reset_clipboard(&mut self) {
        let limits = self.core.shared.limits;
        let keep = Persistence::new(Some(1 << 20), &limits, &self.budgets, getuid().as_raw());
        self.core.clipboard = Clipboard::new(keep);
        self.jobs.clear();
    }

    /// Connects a new client (with this process's credentials); returns
    /// its number.
    pub fn connect(&mut self) -> Result<usize, HarnessError> {
        let (ours, theirs) = UnixStream::pair().map_err(HarnessError::SocketPair)?;
        theirs
            .set_nonblocking(true)
            .map_err(HarnessError::SocketPair)?;
        let creds = Credentials::of_peer(&ours).ok();
        let (key, server_end) = self
            .core
            .admit(ours, creds)
            .map_err(|e| HarnessError::SocketPair(io::Error::other(e.to_string())))?;
        self.peers.push(Peer {
            key,
            end: theirs,
            server_end,
            outcome: Outcome::default(),
            connected: true,
            cut_off: false,
        });
        Ok(self.peers.len() - 1)
    }

    /// Sends `bytes` with `fds` as client `peer` would, and lets the server
    /// handle everything that arrived. Returns whether the client is still
    /// connected.
    pub fn feed(&mut self, peer: usize, bytes: &[u8], fds: Vec<OwnedFd>) -> bool {
        self.arm_deadlines();
        let mut fds: VecDeque<OwnedFd> = fds.into();
        let mut rest = bytes;
        while !rest.is_empty() && self.is_connected(peer) {
            let batch: Vec<RawFd> = fds
                .iter()
                .take(FDS_PER_SEND)
                .map(|fd| fd.as_raw_fd())
                .collect();
            let rights = [ControlMessage::ScmRights(&batch)];
            let cmsgs: &[ControlMessage] = if batch.is_empty() { &[] } else { &rights };
            match sendmsg::<()>(
                self.peers[peer].end.as_raw_fd(),
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
            self.serve(peer);
        }
        self.serve(peer);
        self.is_connected(peer)
    }

    /// Client `peer` closes its socket.
    pub fn hang_up(&mut self, peer: usize) {
        self.arm_deadlines();
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if !p.connected {
            return;
        }
        let _ = p.end.shutdown(std::net::Shutdown::Both);
        // The server sees the hang-up at its next wakeup.
        self.serve(peer);
    }

    /// Whether the server still serves client `peer`.
    pub fn is_connected(&self, peer: usize) -> bool {
        self.peers.get(peer).is_some_and(|p| p.connected)
    }

    /// What happened to client `peer` so far.
    pub fn outcome(&self, peer: usize) -> &Outcome {
        &self.peers[peer].outcome
    }

    /// How many broker names are owned (0 once every client has left).
    pub fn broker_names(&self) -> usize {
        self.core.broker.name_count()
    }

    /// Client `peer` leaves (if the server has not cut it off); returns
    /// what happened to it.
    pub fn finish(&mut self, peer: usize) -> Outcome {
        self.hang_up(peer);
        std::mem::take(&mut self.peers[peer].outcome)
    }

    /// The loop's work: wakeups of `peer` while the server has not read all
    /// it sent, then the end of the pass, then writable wakeups of every
    /// client its peer end has drained, until nothing changes.
    fn serve(&mut self, peer: usize) {
        for _ in 0..MAX_ROUNDS {
            let mut progress = false;
            if self.peers[peer].connected && has_input(&self.peers[peer].server_end) {
                let next = self.wake(peer, true);
                self.apply(peer, next);
                progress = true;
            }
            let changes = self.core.end_of_pass();
            progress |= !changes.is_empty();
            progress |= self.run_jobs();
            for (key, next) in changes {
                if let Some(index) = self.peers.iter().position(|p| p.key == key && p.connected) {
                    self.apply(index, next);
                }
            }
            self.collect_departures();
            for index in 0..self.peers.len() {
                progress |= self.drain_peer(index);
            }
            // Clients with output left, or cut off: their writable (or
            // hang-up) wakeups, now that their ends have been read.
            for index in 0..self.peers.len() {
                if self.peers[index].connected {
                    let next = self.wake(index, false);
                    self.apply(index, next);
                }
            }
            self.collect_departures();
            if !progress && !has_input(&self.peers[peer].server_end) {
                break;
            }
        }
    }

    /// The loop's watches of kept selections: every fd ready now is
    /// reported (one `poll` with no wait), then every deadline that was
    /// armed before this harness call passes (so a test can write a pipe
    /// between two calls before the copier's time is up). Whether any job
    /// ran.
    fn run_jobs(&mut self) -> bool {
        let (added, ended) = self.core.clipboard.persist.jobs().take();
        self.jobs.retain(|(job, _, _)| !ended.contains(job));
        self.jobs
            .extend(added.into_iter().map(|(job, watch)| (job, watch, false)));
        let mut ran = false;
        let mut index = 0;
        while index < self.jobs.len() {
            let (job, ready) = match &self.jobs[index] {
                (job, Watch::Readable(fd), _) => (*job, is_ready(fd.as_fd(), PollFlags::POLLIN)),
                (job, Watch::Writable(fd), _) => (*job, is_ready(fd.as_fd(), PollFlags::POLLOUT)),
                (_, Watch::Timeout(_), _) => {
                    index += 1;
                    continue;
                }
            };
            ran |= ready;
            if ready && !self.core.job_ready(job) {
                self.jobs.swap_remove(index);
            } else {
                index += 1;
            }
        }
        let due: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, watch, due)| *due && matches!(watch, Watch::Timeout(_)))
            .map(|(job, _, _)| *job)
            .collect();
        self.jobs.retain(|(job, _, _)| !due.contains(job));
        for job in due {
            ran = true;
            self.core.job_ready(job);
        }
        ran
    }

    /// Deadlines of kept selections never pass while `held` (for tests of
    /// what happens before them).
    pub fn hold_deadlines(&mut self, held: bool) {
        self.deadlines_held = held;
    }

    /// The deadlines armed so far pass in this harness call.
    fn arm_deadlines(&mut self) {
        if self.deadlines_held {
            return;
        }
        for (_, _, due) in &mut self.jobs {
            *due = true;
        }
    }

    /// One wakeup of client `index`.
    fn wake(&mut self, index: usize, readable: bool) -> Next {
        let key = self.peers[index].key;
        if self.peers[index].cut_off {
            return self.core.check_cut_off(key, readable);
        }
        self.core.serve(key, readable)
    }

    fn apply(&mut self, index: usize, next: Next) {
        match next {
            Next::Close => self.peers[index].connected = false,
            Next::CutOff => self.peers[index].cut_off = true,
            Next::Watch { .. } => {}
        }
    }

    /// Records why clients left, in their outcomes.
    fn collect_departures(&mut self) {
        for (key, reason) in self.core.take_departures() {
            // A hang-up is the client's own doing, not the server's.
            let hung_up = matches!(
                reason,
                Disconnect::Recv(ConnectionError::Closed)
                    | Disconnect::Send(ConnectionError::Closed)
            );
            if let Some(p) = self.peers.iter_mut().find(|p| p.key == key && !hung_up) {
                p.outcome.disconnect = Some(reason);
            }
        }
    }

    /// Reads everything the server has sent client `index` so far; whether
    /// anything came.
    fn drain_peer(&mut self, index: usize) -> bool {
        let peer = &mut self.peers[index];
        let mut buf = [0u8; 4096];
        let mut space = nix::cmsg_space!([RawFd; RECV_FDS]);
        let mut any = false;
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC;
            let msg = match recvmsg::<()>(peer.end.as_raw_fd(), &mut iov, Some(&mut space), flags) {
                Ok(msg) => msg,
                Err(Errno::EINTR) => continue,
                // EAGAIN: all read for now; anything else: the end is gone.
                Err(_) => return any,
            };
            let n = msg.bytes;
            if let Ok(cmsgs) = msg.cmsgs() {
                for cmsg in cmsgs {
                    if let ControlMessageOwned::ScmRights(fds) = cmsg {
                        for fd in fds {
                            // SAFETY: the kernel just installed `fd` in this
                            // process for us; nothing else owns it.
                            peer.outcome.fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                        }
                    }
                }
            }
            // (MSG_CTRUNC cannot happen: the server sends at most 28 fds at
            // once and the buffer has room for 253.)
            if n == 0 {
                return any;
            }
            any = true;
            peer.outcome.sent.extend_from_slice(&buf[..n]);
        }
    }
}

/// Passes of [`FuzzServer::serve`] at most per feed: each pass reads what
/// the server sent, so a few suffice; the bound keeps a bug from hanging
/// the fuzzer.
const MAX_ROUNDS: usize = 64;

/// Whether the server's end is readable: bytes it has not read, or the
/// client's hang-up (what a level-triggered wakeup would report).
fn has_input(server_end: &UnixStream) -> bool {
    is_ready(server_end.as_fd(), PollFlags::POLLIN)
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

/// Feeds one client's whole request stream (`bytes`, with `fds` riding on
/// the first bytes) to a fresh client of this thread's [`FuzzServer`], and
/// returns what the server sent and whether it disconnected the client.
pub fn dispatch_stream(bytes: &[u8], fds: Vec<OwnedFd>) -> Result<Outcome, HarnessError> {
    with_server(|server| {
        let peer = server.connect()?;
        server.feed(peer, bytes, fds);
        Ok(server.finish(peer))
    })
}

/// Runs a script of several clients' inputs against a fresh set of
/// clients of this thread's [`FuzzServer`], and returns what each
/// connection got, in the order they connected, with the script's client
/// (`0..SCRIPT_CLIENTS`) it was.
///
/// The script is a sequence of steps `[op, len, bytes…]`: `op & 3` names
/// the client, `(op >> 2) & 7` is how many fds (copies of `spare`) ride
/// with its `len` bytes, and `op & 0x80` makes it hang up instead (a later
/// step for it connects it again, as a new connection). A step cut short
/// by the end of the script feeds what is there.
pub fn dispatch_clients(
    script: &[u8],
    spare: std::os::fd::BorrowedFd<'_>,
) -> Result<Vec<(usize, Outcome)>, HarnessError> {
    with_server(|server| {
        let mut slots: Vec<Option<usize>> = vec![None; SCRIPT_CLIENTS];
        let mut connections: Vec<usize> = Vec::new();
        let mut rest = script;
        while let Some((&op, tail)) = rest.split_first() {
            let client = usize::from(op & 3);
            let Some((&len, tail)) = tail.split_first() else {
                break;
            };
            let (bytes, tail) = tail.split_at(usize::from(len).min(tail.len()));
            rest = tail;
            if op & 0x80 != 0 {
                if let Some(peer) = slots[client].take() {
                    server.hang_up(peer);
                }
                continue;
            }
            let peer = match slots[client] {
                Some(peer) if server.is_connected(peer) => peer,
                _ => {
                    let peer = server.connect()?;
                    slots[client] = Some(peer);
                    connections.push(client);
                    peer
                }
            };
            let fds = (0..(op >> 2) & 7)
                .filter_map(|_| spare.try_clone_to_owned().ok())
                .collect();
            server.feed(peer, bytes, fds);
        }
        let outcomes = connections
            .into_iter()
            .enumerate()
            .map(|(peer, client)| (client, server.finish(peer)))
            .collect();
        Ok(outcomes)
    })
}

thread_local! {
    static SERVER: RefCell<Option<FuzzServer>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's server, with no client left from before.
fn with_server<R>(
    f: impl FnOnce(&mut FuzzServer) -> Result<R, HarnessError>,
) -> Result<R, HarnessError> {
    SERVER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let server = match slot.as_mut() {
            Some(server) => server,
            None => slot.insert(FuzzServer::new()?),
        };
        let result = f(server);
        for peer in 0..server.peers.len() {
            server.hang_up(peer);
        }
        server.peers.clear();
        server.reset_clipboard();
        result
    })
}

/// Whether `fd` has `events` now (or an error, or a hang-up).
fn is_ready(fd: BorrowedFd<'_>, events: PollFlags) -> bool {
    let mut fds = [PollFd::new(fd, events)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

#[cfg(test)]
mod tests;
