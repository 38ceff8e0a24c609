//! One connected client: its connection, its objects and its peer
//! credentials, and the calloop event source that watches its socket.
//!
//! This module holds per-client state and the socket's registration with
//! the event loop. It does not interpret requests ([`crate::dispatch`] does)
//! and does not decide when to disconnect ([`crate::server`] does).
//!
//! # Implementation notes
//!
//! - **Small when idle.** A client is a [`Connection`] (whose buffers are
//!   allocated as data flows), an [`ObjectMap`] of 8-byte [`Object`]s,
//!   12 bytes of credentials and an empty [`BrokerSession`] (a `Vec` that
//!   allocates only once the client registers a name). Nothing is
//!   pre-allocated, so 10,000 idle clients fit.
//! - **Why a wrapper around `Generic`.** The socket is watched by a calloop
//!   [`Generic`] source, registered `READ` and switched to `READ | WRITE`
//!   only while a flush returned `WouldBlock`. calloop's `Generic` owns its
//!   fd and only lets the callback see it through `NoIoDrop`, and its
//!   `interest` can only be changed by whoever owns the source. So the
//!   [`Client`] itself (which owns the socket through its `Connection`) is
//!   the `Generic`'s file, and [`ClientSource`] owns that `Generic`: after
//!   the callback it applies the interest the callback asked for and returns
//!   `PostAction::Reregister` only when it changed. Code outside the
//!   callback (a keymap reload) reaches a client through the
//!   `calloop::Dispatcher` kept in the server's client table and calls
//!   [`ClientSource::client_mut`] / [`ClientSource::set_interest`].
//!   This costs no extra fd per client: a `dup` of each socket for the
//!   watcher would halve how many clients fit under `RLIMIT_NOFILE`.
//! - **Fds in flight.** An fd sent over a Unix socket and not yet received
//!   is charged by the kernel to the sender's user, against the sender's
//!   `RLIMIT_NOFILE` (past it every `sendmsg` with an fd fails with
//!   `ETOOMANYREFS`), and stays charged while the client keeps its socket
//!   open, unread, even after we close ours. Each client's connection
//!   counts them ([`Connection::fds_in_flight`], from `SIOCOUTQ` and a log
//!   of its recent `sendmsg`s), and a send past [`MAX_FDS_IN_FLIGHT`] is
//!   refused ([`crate::dispatch`]).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use calloop::generic::Generic;
use calloop::{EventSource, Interest, Mode, Poll, PostAction, Readiness, Token, TokenFactory};
use log::debug;
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use waypass_protocol::protocols::broker::{
    waypass_broker_v1, waypass_connection_v1, waypass_name_v1,
};
use waypass_protocol::protocols::wayland::{
    wl_callback, wl_display, wl_keyboard, wl_registry, wl_seat,
};
use waypass_protocol::{Connection, Interface, ObjectMap, Side, Tracer};

use crate::clipboard::Flavor;

/// The id of `wl_display`, which every connection starts with.
pub const DISPLAY_ID: u32 = 1;

/// The most fds the server has in flight to one client: queued, or sent
/// and not yet read. It covers a full broker backlog of 64 channels
/// ([`crate::broker::BrokerLimits::max_backlog`]) plus 32 keyboards' keymaps
/// twice (at bind and after a reload): what a client that only reads late
/// can be owed. A client that goes past it asks for fds and never reads.
pub const MAX_FDS_IN_FLIGHT: usize = 128;

/// A client's identity in the server's client table (never reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(pub u64);

/// What an object id of a client stands for, with its bound version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// `wl_display`, id 1.
    Display,
    /// A `wl_registry`.
    Registry,
    /// A `wl_seat` bound at `version`.
    Seat {
        /// The version the client bound.
        version: u32,
    },
    /// A `wl_keyboard` (its version is its seat's).
    Keyboard {
        /// The version inherited from the seat.
        version: u32,
    },
    /// A `wl_callback` (lives only between `sync` and `done`).
    Callback,
    /// A bound `waypass_broker_v1`.
    Broker,
    /// A `waypass_name_v1`; whether it owns a name is in [`BrokerSession`].
    Name,
    /// A `waypass_connection_v1`, live until the client destroys it.
    Connection,
    /// A bound data-control manager.
    DataManager {
        /// Which protocol.
        flavor: Flavor,
        /// The version the client bound.
        version: u32,
    },
    /// A data-control device (its version is its manager's).
    DataDevice {
        /// Which protocol.
        flavor: Flavor,
        /// The manager's version.
        version: u32,
    },
    /// A data-control source.
    DataSource {
        /// Which protocol.
        flavor: Flavor,
        /// The manager's version.
        version: u32,
    },
    /// A data-control offer, created by the server (id from `0xff000000`).
    DataOffer {
        /// Which protocol.
        flavor: Flavor,
        /// Its device's version.
        version: u32,
    },
}

impl Object {
    /// The object's interface.
    pub fn interface(self) -> &'static Interface {
        match self {
            Object::Display => &wl_display::INTERFACE,
            Object::Registry => &wl_registry::INTERFACE,
            Object::Seat { .. } => &wl_seat::INTERFACE,
            Object::Keyboard { .. } => &wl_keyboard::INTERFACE,
            Object::Callback => &wl_callback::INTERFACE,
            Object::Broker => &waypass_broker_v1::INTERFACE,
            Object::Name => &waypass_name_v1::INTERFACE,
            Object::Connection => &waypass_connection_v1::INTERFACE,
            Object::DataManager { flavor, .. } => flavor.manager(),
            Object::DataDevice { flavor, .. } => flavor.device(),
            Object::DataSource { flavor, .. } => flavor.source(),
            Object::DataOffer { flavor, .. } => flavor.offer(),
        }
    }

    /// The version requests are checked against.
    pub fn version(self) -> u32 {
        match self {
            Object::Seat { version }
            | Object::Keyboard { version }
            | Object::DataManager { version, .. }
            | Object::DataDevice { version, .. }
            | Object::DataSource { version, .. }
            | Object::DataOffer { version, .. } => version,
            Object::Display
            | Object::Registry
            | Object::Callback
            | Object::Broker
            | Object::Name
            | Object::Connection => 1,
        }
    }
}

/// The peer's pid, uid and gid from `SO_PEERCRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creds {
    /// Process id at connect time.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl fmt::Display for Creds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} uid {} gid {}", self.pid, self.uid, self.gid)
    }
}

/// A client's share of the broker: the names it owns and how many
/// connection objects it holds. Empty (no allocation) for clients that never
/// use the broker.
#[derive(Debug, Default)]
pub struct BrokerSession {
    /// `(waypass_name_v1 id, name)` of every name the client owns, oldest
    /// first: the first one is what its peers are told it is called.
    pub names: Vec<(u32, Box<str>)>,
    /// Live `waypass_connection_v1` objects (failed ones included), for
    /// the `too_many_pending` limit.
    pub connections: usize,
}

impl BrokerSession {
    /// The client's first live registered name, as peers are told.
    pub fn first_name(&self) -> Option<&str> {
        self.names.first().map(|(_, name)| &**name)
    }
}

/// One connected client.
#[derive(Debug)]
pub struct Client {
    /// Its key in the server's client table.
    pub key: ClientKey,
    /// The socket and its buffers.
    pub conn: Connection,
    /// Live objects by id.
    pub objects: ObjectMap<Object>,
    /// Who is at the other end; `None` if `SO_PEERCRED` failed.
    pub creds: Option<Creds>,
    /// `WAYLAND_DEBUG=server` tracing.
    pub tracer: Tracer,
    /// Its broker names and connection objects.
    pub session: BrokerSession,
}

impl Client {
    /// Wraps an accepted stream: reads its credentials, makes it
    /// non-blocking, and creates `wl_display` at id 1.
    pub fn new(key: ClientKey, stream: UnixStream, tracer: Tracer) -> io::Result<Client> {
        let creds = peer_credentials(&stream);
        Self::with_creds(key, stream, tracer, creds)
    }

    /// Like [`Client::new`] with credentials known otherwise: for a spawned
    /// child, `SO_PEERCRED` of a socketpair names the server itself.
    pub fn with_creds(
        key: ClientKey,
        stream: UnixStream,
        tracer: Tracer,
        creds: Option<Creds>,
    ) -> io::Result<Client> {
        let mut conn = Connection::new(stream)?;
        conn.track_fds_in_flight();
        let mut objects = ObjectMap::new(Side::Server);
        objects
            .insert_at(DISPLAY_ID, Object::Display)
            .map_err(|e| io::Error::other(format!("cannot create wl_display: {e}")))?;
        Ok(Client {
            key,
            conn,
            objects,
            creds,
            tracer,
            session: BrokerSession::default(),
        })
    }

    /// Re-counts the fds sent to the client that it has not read (one
    /// `ioctl`, only while some may be unread) and returns the fds queued
    /// or in flight to it.
    pub fn refresh_in_flight(&mut self) -> usize {
        self.conn.fds_in_flight()
    }

    /// "pid P uid U gid G" for logs.
    pub fn who(&self) -> String {
        match self.creds {
            Some(c) => c.to_string(),
            None => "unknown peer".into(),
        }
    }
}

/// `SO_PEERCRED` of `stream`: who connected (or, for a socketpair, who
/// created it).
fn peer_credentials(stream: &UnixStream) -> Option<Creds> {
    match getsockopt(stream, PeerCredentials) {
        Ok(c) => Some(Creds {
            pid: c.pid(),
            uid: c.uid(),
            gid: c.gid(),
        }),
        // Only fails for a socket that is not AF_UNIX: log and go on.
        Err(e) => {
            debug!("SO_PEERCRED failed: {e}");
            None
        }
    }
}

impl AsFd for Client {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }
}

/// What a client's callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Keep watching: readable only (`false`) or also writable (`true`).
    Watch {
        /// Whether output is waiting for the socket to drain.
        writable: bool,
    },
    /// Remove the source: the client is gone.
    Close,
}

/// The event source of one client: its socket, level-triggered.
#[derive(Debug)]
pub struct ClientSource {
    inner: Generic<Client>,
}

impl ClientSource {
    /// Watches `client` for reading.
    pub fn new(client: Client) -> Self {
        ClientSource {
            inner: Generic::new(client, Interest::READ, Mode::Level),
        }
    }

    /// The client, for code outside its own callback.
    pub fn client_mut(&mut self) -> &mut Client {
        // SAFETY: `get_mut` is unsafe only because replacing or dropping the
        // wrapped value would leave a registered fd behind. We hand out a
        // `&mut Client` whose users call methods on it and never replace the
        // client or its connection (nothing in this crate assigns `*client`).
        unsafe { self.inner.get_mut() }
    }

    /// Sets whether to also wait for writability. Returns whether this
    /// changed the registration, in which case the caller must call
    /// `LoopHandle::update` for the source's token.
    pub fn set_interest(&mut self, writable: bool) -> bool {
        let changed = self.inner.interest.writable != writable;
        self.inner.interest = Interest {
            readable: true,
            writable,
        };
        changed
    }
}

impl EventSource for ClientSource {
    type Event = Readiness;
    type Metadata = Client;
    type Ret = Next;
    type Error = io::Error;

    fn process_events<C>(
        &mut self,
        readiness: Readiness,
        token: Token,
        mut callback: C,
    ) -> Result<PostAction, io::Error>
    where
        C: FnMut(Readiness, &mut Client) -> Next,
    {
        let mut next = None;
        self.inner
            .process_events(readiness, token, |readiness, client| {
                // SAFETY: as in `client_mut`: the callback only calls methods on
                // the client and never replaces it.
                let client = unsafe { client.get_mut() };
                next = Some(callback(readiness, client));
                Ok(PostAction::Continue)
            })?;
        Ok(match next {
            // Not our token: nothing happened.
            None => PostAction::Continue,
            Some(Next::Close) => PostAction::Remove,
            Some(Next::Watch { writable }) if self.set_interest(writable) => PostAction::Reregister,
            Some(Next::Watch { .. }) => PostAction::Continue,
        })
    }

    fn register(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.inner.register(poll, factory)
    }

    fn reregister(&mut self, poll: &mut Poll, factory: &mut TokenFactory) -> calloop::Result<()> {
        self.inner.reregister(poll, factory)
    }

    fn unregister(&mut self, poll: &mut Poll) -> calloop::Result<()> {
        self.inner.unregister(poll)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use waypass_protocol::protocols::wayland::wl_keyboard;
    use waypass_protocol::{Arg, TraceSide, Tracer};

    use super::*;

    #[test]
    fn fds_in_flight_are_counted_until_the_client_reads_them() {
        let (server_end, mut client_end) = UnixStream::pair().unwrap();
        let tracer = Tracer::from_debug_value(TraceSide::Server, None);
        let mut client = Client::new(ClientKey(1), server_end, tracer).unwrap();
        assert_eq!(client.refresh_in_flight(), 0);
        let desc = &wl_keyboard::INTERFACE.events[usize::from(wl_keyboard::evt::KEYMAP)];
        let file = std::fs::File::open("/dev/null").unwrap();
        let args = [Arg::Uint(1), Arg::Fd(file.as_fd()), Arg::Uint(1)];
        client
            .conn
            .send(3, wl_keyboard::evt::KEYMAP, desc, &args)
            .unwrap();
        assert_eq!(client.refresh_in_flight(), 1, "queued");
        client.conn.flush().unwrap();
        assert_eq!(client.refresh_in_flight(), 1, "sent, not read");
        let mut buf = [0; 16]; // header, format and size: the fd takes no bytes
        client_end.read_exact(&mut buf).unwrap();
        assert_eq!(client.refresh_in_flight(), 0, "read");
    }
}
