//! Per-client state that both layers share: a client's connection, its
//! objects, its peer credentials and its ledger account ([`Client`]), what
//! each object id stands for ([`Object`]), the client's share of the broker
//! ([`BrokerSession`]), and the table of every client ([`Clients`]).
//!
//! What it is not: a handler of requests (the [`crate::proto`] layer reads
//! and changes this state) or an event source (the [`crate::runtime`] layer
//! registers a [`Client`] with calloop). It imports neither layer, so both
//! can import it.
//!
//! # Implementation notes
//!
//! - **Small when idle.** A client is a [`Connection`] (whose buffers are
//!   allocated as data flows), an [`ObjectMap`] of 8-byte [`Object`]s,
//!   12 bytes of credentials and an empty [`BrokerSession`] (a `Vec` that
//!   allocates only once the client registers a name). Nothing is
//!   pre-allocated, so 10,000 idle clients fit.
//! - **Fds in flight.** An fd sent over a Unix socket and not yet received
//!   is charged by the kernel to the sender's user, against the sender's
//!   `RLIMIT_NOFILE` (past it every `sendmsg` with an fd fails with
//!   `ETOOMANYREFS`), and stays charged while the client keeps its socket
//!   open, unread, even after we close ours. Each client's connection
//!   counts them ([`Connection::fds_in_flight`], from `SIOCOUTQ` and a log
//!   of its recent `sendmsg`s), and the ledger charges them to it
//!   ([`crate::ledger`]): a send past its limit or its share is refused by
//!   the protocol layer's context.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use log::debug;
use waypass_protocol::protocols::broker::waypass_name_v1::{self, WaypassNameV1};
use waypass_protocol::protocols::broker::{waypass_broker_v1, waypass_connection_v1};
use waypass_protocol::protocols::data_control::{ext, wlr};
use waypass_protocol::protocols::wayland::{
    wl_callback, wl_display, wl_keyboard, wl_registry, wl_seat,
};
use waypass_protocol::{
    Connection, Credentials, Interface, ObjectId, ObjectMap, Side, Tracer, DISPLAY_ID,
};

use crate::ledger::Account;

mod clients;

pub use clients::Clients;

/// A client's identity in the server's client table: its slot, and the
/// slot's generation, so that a key of a client that has gone never finds
/// the client that took the slot after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey {
    /// The slot in [`Clients`].
    pub slot: u32,
    /// How many clients held the slot before.
    pub generation: u32,
}

impl ClientKey {
    /// The server itself, as the owner of a selection it took over
    /// (`--persist`): no client ever has this key.
    pub const SERVER: ClientKey = ClientKey {
        slot: u32::MAX,
        generation: u32::MAX,
    };
}

/// Which of the two protocols an object speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// `ext-data-control-v1`.
    Ext,
    /// `wlr-data-control-unstable-v1`.
    Wlr,
}

impl Flavor {
    /// The manager global's interface.
    pub fn manager(self) -> &'static Interface {
        match self {
            Flavor::Ext => &ext::ext_data_control_manager_v1::INTERFACE,
            Flavor::Wlr => &wlr::zwlr_data_control_manager_v1::INTERFACE,
        }
    }

    /// The device interface.
    pub fn device(self) -> &'static Interface {
        match self {
            Flavor::Ext => &ext::ext_data_control_device_v1::INTERFACE,
            Flavor::Wlr => &wlr::zwlr_data_control_device_v1::INTERFACE,
        }
    }

    /// The source interface.
    pub fn source(self) -> &'static Interface {
        match self {
            Flavor::Ext => &ext::ext_data_control_source_v1::INTERFACE,
            Flavor::Wlr => &wlr::zwlr_data_control_source_v1::INTERFACE,
        }
    }

    /// The offer interface.
    pub fn offer(self) -> &'static Interface {
        match self {
            Flavor::Ext => &ext::ext_data_control_offer_v1::INTERFACE,
            Flavor::Wlr => &wlr::zwlr_data_control_offer_v1::INTERFACE,
        }
    }
}

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
    /// An object of a global the program embedding the server added
    /// (`crate::proto::extension`).
    Extension {
        /// Its global's place among the extension globals, which is also
        /// its interface's place in the table [`Object::interface`] takes.
        index: u16,
        /// The version the client bound.
        version: u32,
    },
}

impl Object {
    /// The object's interface; `extensions` is the interface of each
    /// extension global by index (`Shared::extension_interfaces`), for an
    /// [`Object::Extension`]. (A table beside the object, not a pointer in
    /// it: an object is 8 bytes, and the sync round trip measurably pays
    /// for 16.)
    pub fn interface(self, extensions: &[&'static Interface]) -> &'static Interface {
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
            Object::Extension { index, .. } => {
                let interface = extensions.get(usize::from(index)).copied();
                debug_assert!(interface.is_some(), "extension {index} has no interface");
                // Only `Extensions::bind` makes one, with a valid index.
                interface.unwrap_or(&wl_display::INTERFACE)
            }
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
            | Object::DataOffer { version, .. }
            | Object::Extension { version, .. } => version,
            Object::Display
            | Object::Registry
            | Object::Callback
            | Object::Broker
            | Object::Name
            | Object::Connection => 1,
        }
    }
}

/// A client's share of the broker: the names it owns and how many
/// connection objects it holds. Empty (no allocation) for clients that never
/// use the broker.
#[derive(Debug, Default)]
pub struct BrokerSession {
    /// `(waypass_name_v1 id, name)` of every name the client owns, oldest
    /// first: the first one is what its peers are told it is called.
    pub names: Vec<(ObjectId<WaypassNameV1>, Box<str>)>,
    /// Live `waypass_connection_v1` objects (failed ones included), for
    /// the `too_many_pending` limit.
    pub connections: u64,
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
    pub creds: Option<Credentials>,
    /// `WAYLAND_DEBUG=server` tracing.
    pub tracer: Tracer,
    /// Its broker names and connection objects.
    pub session: BrokerSession,
    /// What it holds, as the server's ledger charged it.
    pub account: Account,
    /// Output was queued for it outside its own wakeup and waits in
    /// [`Clients::take_unflushed`] for the runtime to flush.
    pub(crate) unflushed: bool,
    /// It was cut off with fds still in flight: it stays (charged) until
    /// it has read them or hung up, and nothing more is read or sent.
    pub cut_off: bool,
}

impl Client {
    /// Wraps a connected stream: makes it non-blocking and creates
    /// `wl_display` at id 1. `creds` are the peer's ([`peer_credentials`],
    /// or a spawned child's, for which `SO_PEERCRED` of a socketpair names
    /// the server itself); `account` is what the ledger opened for it.
    pub fn new(
        key: ClientKey,
        stream: UnixStream,
        tracer: Tracer,
        creds: Option<Credentials>,
        account: Account,
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
            account,
            unflushed: false,
            cut_off: false,
        })
    }

    /// Re-counts the fds sent to the client that it has not read (one
    /// `ioctl`, only while some may be unread) and returns the fds queued
    /// or in flight to it.
    pub fn refresh_in_flight(&mut self) -> usize {
        self.conn.fds_in_flight()
    }

    /// The uid its costs are charged to: its peer's, or `u32::MAX` (the
    /// kernel's "no id") when unknown.
    pub fn uid(&self) -> u32 {
        uid_of(self.creds)
    }

    /// "pid P uid U gid G" for logs.
    pub fn who(&self) -> String {
        match self.creds {
            Some(c) => c.to_string(),
            None => "unknown peer".into(),
        }
    }
}

/// The uid of `creds`, or `u32::MAX` (the kernel's "no id") without.
pub fn uid_of(creds: Option<Credentials>) -> u32 {
    creds.map_or(u32::MAX, |c| c.uid)
}

/// `SO_PEERCRED` of `stream`: who connected (or, for a socketpair, who
/// created it).
pub fn peer_credentials(stream: &UnixStream) -> Option<Credentials> {
    match Credentials::of_peer(stream) {
        Ok(c) => Some(c),
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use waypass_protocol::protocols::wayland::wl_keyboard;
    use waypass_protocol::{TraceSide, Tracer, TypedMessage};

    use super::*;

    #[test]
    fn fds_in_flight_are_counted_until_the_client_reads_them() {
        let (server_end, mut client_end) = UnixStream::pair().unwrap();
        let tracer = Tracer::from_debug_value(TraceSide::Server, None);
        let key = ClientKey {
            slot: 1,
            generation: 0,
        };
        let mut client = Client::new(key, server_end, tracer, None, Account::default()).unwrap();
        assert_eq!(client.refresh_in_flight(), 0);
        let file = std::fs::File::open("/dev/null").unwrap();
        let keymap = wl_keyboard::Event::Keymap {
            format: wl_keyboard::KeymapFormat::XkbV1,
            fd: file.as_fd(),
            size: 1,
        };
        keymap
            .with_args(|opcode, args| client.conn.send(3, opcode, keymap.desc(), args))
            .unwrap();
        assert_eq!(client.refresh_in_flight(), 1, "queued");
        client.conn.flush().unwrap();
        assert_eq!(client.refresh_in_flight(), 1, "sent, not read");
        let mut buf = [0; 16]; // header, format and size: the fd takes no bytes
        client_end.read_exact(&mut buf).unwrap();
        assert_eq!(client.refresh_in_flight(), 0, "read");
    }
}
