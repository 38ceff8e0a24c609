//! A raw broker client over a `waypass_protocol::Connection`, without the
//! client library: bind the broker, register, connect, destroy, and a
//! `sync` round trip that returns the events (with their fds) before it.
//!
//! Shared by the broker and hostile-peer tests.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use waypass_protocol::protocols::broker::{
    waypass_broker_v1, waypass_connection_v1, waypass_name_v1,
};
use waypass_protocol::protocols::wayland::{wl_callback, wl_display, wl_registry};
use waypass_protocol::{Arg, Connection, ConnectionError, Interface, Recv};

use crate::PATIENCE;

/// One event, with its arguments flattened.
#[derive(Debug)]
pub struct Ev {
    pub sender: u32,
    pub opcode: u16,
    pub words: Vec<i64>,
    pub strs: Vec<Option<String>>,
    pub fds: Vec<OwnedFd>,
}

/// A raw client: a connection, the interface of each id, the next id.
pub struct Peer {
    pub conn: Connection,
    ifaces: HashMap<u32, &'static Interface>,
    next_id: u32,
    broker: u32,
    pub hung_up: bool,
}
impl Peer {
    /// Connects, gets the registry and binds the broker global.
    pub fn connect(socket: &Path) -> Peer {
        let stream = UnixStream::connect(socket).expect("connect");
        let mut peer = Peer {
            conn: Connection::new(stream).unwrap(),
            ifaces: HashMap::from([(1, &wl_display::INTERFACE)]),
            next_id: 2,
            broker: 0,
            hung_up: false,
        };
        let registry = peer.create(&wl_registry::INTERFACE);
        peer.request(1, &wl_display::INTERFACE, 1, &[Arg::NewId(registry)]);
        let globals = peer.roundtrip();
        let global = globals
            .iter()
            .find(|e| e.strs[0].as_deref() == Some("waypass_broker_v1"))
            .expect("the broker is advertised");
        assert_eq!(global.words[1], 1, "version 1");
        let name = global.words[0] as u32;
        peer.broker = peer.create(&waypass_broker_v1::INTERFACE);
        let args = [
            Arg::Uint(name),
            Arg::Str(Some(c"waypass_broker_v1")),
            Arg::Uint(1),
            Arg::NewId(peer.broker),
        ];
        peer.request(registry, &wl_registry::INTERFACE, 0, &args);
        peer
    }

    pub fn create(&mut self, iface: &'static Interface) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.ifaces.insert(id, iface);
        id
    }

    pub fn request(
        &mut self,
        id: u32,
        iface: &'static Interface,
        opcode: u16,
        args: &[Arg<'_, std::os::fd::BorrowedFd<'_>>],
    ) {
        let desc = &iface.requests[usize::from(opcode)];
        self.conn
            .send(id, opcode, desc, args)
            .expect("queue request");
    }

    /// `register(name)`: the new name object's id.
    pub fn register(&mut self, name: &[u8]) -> u32 {
        let id = self.create(&waypass_name_v1::INTERFACE);
        let name = std::ffi::CString::new(name).unwrap();
        let broker = self.broker;
        let args = [Arg::NewId(id), Arg::Str(Some(name.as_c_str()))];
        self.request(broker, &waypass_broker_v1::INTERFACE, 1, &args);
        id
    }

    /// `connect(name)`: the new connection object's id.
    pub fn connect_to(&mut self, name: &str) -> u32 {
        let id = self.create(&waypass_connection_v1::INTERFACE);
        let name = std::ffi::CString::new(name).unwrap();
        let broker = self.broker;
        let args = [Arg::NewId(id), Arg::Str(Some(name.as_c_str()))];
        self.request(broker, &waypass_broker_v1::INTERFACE, 2, &args);
        id
    }

    /// A destructor (opcode 0 of names and connections).
    pub fn destroy(&mut self, id: u32) {
        let iface = self.ifaces[&id];
        self.request(id, iface, 0, &[]);
    }

    /// `wl_display.sync`, then every event up to its `done` (or up to the
    /// hang-up), without the callback's own events.
    pub fn roundtrip(&mut self) -> Vec<Ev> {
        let callback = self.create(&wl_callback::INTERFACE);
        self.request(1, &wl_display::INTERFACE, 0, &[Arg::NewId(callback)]);
        self.conn.flush().expect("flush");
        let mut events = Vec::new();
        loop {
            while let Some(ev) = self.next_event() {
                if ev.sender == callback {
                    return events;
                }
                let deleted =
                    ev.sender == 1 && ev.opcode == 1 && ev.words[0] == i64::from(callback);
                if !deleted {
                    events.push(ev);
                }
            }
            if self.hung_up {
                return events;
            }
            let mut fds = [PollFd::new(self.conn.as_fd(), PollFlags::POLLIN)];
            let ms = PollTimeout::try_from(PATIENCE.as_millis() as i32).unwrap();
            assert_eq!(
                poll(&mut fds, ms).expect("poll"),
                1,
                "server answered in time"
            );
            match self.conn.recv() {
                Ok(Recv::Data(_) | Recv::WouldBlock) => {}
                Err(ConnectionError::Closed) => self.hung_up = true,
                Err(e) => panic!("recv: {e}"),
            }
        }
    }

    pub fn next_event(&mut self) -> Option<Ev> {
        let ifaces = &self.ifaces;
        let msg = self
            .conn
            .next_message(|h| {
                let iface = ifaces.get(&h.sender).ok_or("unknown sender")?;
                iface
                    .events
                    .get(usize::from(h.opcode))
                    .ok_or("unknown opcode")
            })
            .expect("well-formed events")?;
        let mut ev = Ev {
            sender: msg.sender,
            opcode: msg.opcode,
            words: Vec::new(),
            strs: Vec::new(),
            fds: Vec::new(),
        };
        for arg in msg.args {
            match arg {
                Arg::Int(v) => ev.words.push(i64::from(v)),
                Arg::Uint(v) | Arg::Object(v) | Arg::NewId(v) => ev.words.push(i64::from(v)),
                Arg::Str(s) => ev.strs.push(s.map(|s| s.to_string_lossy().into_owned())),
                Arg::Fd(fd) => ev.fds.push(fd),
                Arg::Fixed(_) | Arg::Array(_) => {}
            }
        }
        Some(ev)
    }
}

/// The events on object `id` among `events`.
pub fn on(events: &[Ev], id: u32) -> Vec<&Ev> {
    events.iter().filter(|e| e.sender == id).collect()
}

/// `register(name)` and its answer: the object and `failed`'s reason, if any.
pub fn register_result(peer: &mut Peer, name: &[u8]) -> (u32, Option<u32>) {
    let id = peer.register(name);
    let events = peer.roundtrip();
    let evs = on(&events, id);
    assert_eq!(evs.len(), 1, "exactly one answer on {id}: {events:?}");
    let failed = evs[0].opcode == waypass_name_v1::evt::FAILED;
    (id, failed.then(|| evs[0].words[0] as u32))
}
