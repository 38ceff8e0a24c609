//! End-to-end: the `waypass_broker_v1` global of `waypass-server`, driven
//! over a raw `waypass_protocol::Connection` without the client library.
//! Registering, every refusal (answered with `failed`, never an error),
//! names released on withdraw and on disconnect, limits, a request on a
//! withdrawn object (a protocol error), channels that join two clients,
//! and the server's fd count after 200 channels.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use common::{eventually, Server, PATIENCE};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use waypass_protocol::protocols::broker::{
    waypass_broker_v1, waypass_broker_v1::failure, waypass_connection_v1, waypass_name_v1,
};
use waypass_protocol::protocols::wayland::{wl_callback, wl_display, wl_registry};
use waypass_protocol::{Arg, Connection, ConnectionError, Interface, Recv};

/// One event, with its arguments flattened.
#[derive(Debug)]
struct Ev {
    sender: u32,
    opcode: u16,
    words: Vec<i64>,
    strs: Vec<Option<String>>,
    fds: Vec<OwnedFd>,
}

/// A raw client: a connection, the interface of each id, the next id.
struct Peer {
    conn: Connection,
    ifaces: HashMap<u32, &'static Interface>,
    next_id: u32,
    broker: u32,
    hung_up: bool,
}

impl Peer {
    /// Connects, gets the registry and binds the broker global.
    fn connect(socket: &Path) -> Peer {
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

    fn create(&mut self, iface: &'static Interface) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.ifaces.insert(id, iface);
        id
    }

    fn request(
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
    fn register(&mut self, name: &[u8]) -> u32 {
        let id = self.create(&waypass_name_v1::INTERFACE);
        let name = std::ffi::CString::new(name).unwrap();
        let broker = self.broker;
        let args = [Arg::NewId(id), Arg::Str(Some(name.as_c_str()))];
        self.request(broker, &waypass_broker_v1::INTERFACE, 1, &args);
        id
    }

    /// `connect(name)`: the new connection object's id.
    fn connect_to(&mut self, name: &str) -> u32 {
        let id = self.create(&waypass_connection_v1::INTERFACE);
        let name = std::ffi::CString::new(name).unwrap();
        let broker = self.broker;
        let args = [Arg::NewId(id), Arg::Str(Some(name.as_c_str()))];
        self.request(broker, &waypass_broker_v1::INTERFACE, 2, &args);
        id
    }

    /// A destructor (opcode 0 of names and connections).
    fn destroy(&mut self, id: u32) {
        let iface = self.ifaces[&id];
        self.request(id, iface, 0, &[]);
    }

    /// `wl_display.sync`, then every event up to its `done` (or up to the
    /// hang-up), without the callback's own events.
    fn roundtrip(&mut self) -> Vec<Ev> {
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

    fn next_event(&mut self) -> Option<Ev> {
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
fn on(events: &[Ev], id: u32) -> Vec<&Ev> {
    events.iter().filter(|e| e.sender == id).collect()
}

/// The single `failed(reason)` answer on `id`, or `None` if it succeeded.
fn failure_of(events: &[Ev], id: u32, failed_opcode: u16) -> Option<u32> {
    let evs = on(events, id);
    assert_eq!(evs.len(), 1, "exactly one answer on {id}: {events:?}");
    (evs[0].opcode == failed_opcode).then(|| evs[0].words[0] as u32)
}

fn register_result(peer: &mut Peer, name: &[u8]) -> (u32, Option<u32>) {
    let id = peer.register(name);
    let events = peer.roundtrip();
    (id, failure_of(&events, id, waypass_name_v1::evt::FAILED))
}

#[test]
fn register_taken_invalid_and_withdraw() {
    let server = Server::start(&[]);
    let mut alice = Peer::connect(&server.socket);
    let mut bob = Peer::connect(&server.socket);
    let (alice_id, r) = register_result(&mut alice, b"alice");
    assert_eq!(r, None, "registered");
    assert_eq!(
        register_result(&mut bob, b"alice").1,
        Some(failure::NAME_TAKEN)
    );
    let long = vec![b'a'; 65];
    for bad in [&b""[..], &long, b"a/b", "é".as_bytes()] {
        assert_eq!(
            register_result(&mut bob, bad).1,
            Some(failure::INVALID_NAME),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        register_result(&mut bob, &[b'b'; 64]).1,
        None,
        "64 bytes is fine"
    );

    // Withdraw: delete_id, and the name is free for bob.
    alice.destroy(alice_id);
    let events = alice.roundtrip();
    assert!(events
        .iter()
        .any(|e| e.sender == 1 && e.opcode == 1 && e.words[0] == i64::from(alice_id)));
    assert_eq!(register_result(&mut bob, b"alice").1, None);

    // A request on the withdrawn object is a protocol error.
    alice.destroy(alice_id);
    let events = alice.roundtrip();
    let error = events
        .iter()
        .find(|e| e.sender == 1 && e.opcode == 0)
        .expect("an error");
    assert_eq!(error.words[1], i64::from(wl_display::error::INVALID_OBJECT));
    assert!(alice.hung_up, "disconnected");
    // Bob is unaffected.
    assert_eq!(register_result(&mut bob, b"carol").1, None);
}

#[test]
fn connect_failures_are_answered() {
    let server = Server::start(&["--max-pending-connects", "2"]);
    let mut alice = Peer::connect(&server.socket);
    let mut bob = Peer::connect(&server.socket);
    assert_eq!(register_result(&mut alice, b"alice").1, None);
    let failed = waypass_connection_v1::evt::FAILED;
    let attempt = |peer: &mut Peer, name: &str| {
        let id = peer.connect_to(name);
        let events = peer.roundtrip();
        (id, failure_of(&events, id, failed))
    };
    let (unknown, r) = attempt(&mut bob, "nobody");
    assert_eq!(r, Some(failure::UNKNOWN_NAME));
    let (invalid, r) = attempt(&mut bob, "a/b");
    assert_eq!(r, Some(failure::INVALID_NAME));
    assert_eq!(attempt(&mut alice, "alice").1, Some(failure::SELF_CONNECT));
    // Bob holds 2 live connection objects (failed ones count).
    let (third, r) = attempt(&mut bob, "alice");
    assert_eq!(r, Some(failure::TOO_MANY_PENDING));
    // Destroying makes room.
    for id in [unknown, invalid, third] {
        bob.destroy(id);
    }
    assert_eq!(attempt(&mut bob, "alice").1, None);
}

#[test]
fn too_many_names() {
    let server = Server::start(&["--max-names", "2"]);
    let mut alice = Peer::connect(&server.socket);
    assert_eq!(register_result(&mut alice, b"a1").1, None);
    assert_eq!(register_result(&mut alice, b"a2").1, None);
    assert_eq!(
        register_result(&mut alice, b"a3").1,
        Some(failure::TOO_MANY_NAMES)
    );
}

#[test]
fn names_are_released_on_disconnect() {
    let server = Server::start(&[]);
    let mut carol = Peer::connect(&server.socket);
    assert_eq!(register_result(&mut carol, b"carol").1, None);
    let mut dave = Peer::connect(&server.socket);
    assert_eq!(
        register_result(&mut dave, b"carol").1,
        Some(failure::NAME_TAKEN)
    );
    drop(carol);
    // The server sees the hang-up in its own time: ask until it has.
    assert!(eventually(|| {
        let (id, result) = register_result(&mut dave, b"carol");
        if result.is_some() {
            dave.destroy(id);
        }
        result.is_none()
    }));
}

#[test]
fn a_channel_joins_two_clients_with_credentials() {
    let server = Server::start(&[]);
    let mut alice = Peer::connect(&server.socket);
    let mut bob = Peer::connect(&server.socket);
    let (name_id, _) = register_result(&mut alice, b"alice");
    assert_eq!(register_result(&mut bob, b"bob").1, None);
    let conn_id = bob.connect_to("alice");
    let mut events = bob.roundtrip();
    let established = events.iter_mut().find(|e| e.sender == conn_id).unwrap();
    assert_eq!(established.opcode, waypass_connection_v1::evt::ESTABLISHED);
    assert_eq!(established.strs, [Some("alice".to_string())]);
    let pid = i64::from(std::process::id());
    assert_eq!(established.words[0], pid, "alice's pid (this process)");
    let mut bob_end = UnixStream::from(established.fds.remove(0));

    let mut events = alice.roundtrip();
    let peer = events.iter_mut().find(|e| e.sender == name_id).unwrap();
    assert_eq!(peer.opcode, waypass_name_v1::evt::PEER);
    assert_eq!(peer.strs, [Some("bob".to_string())]);
    assert_eq!(peer.words[0], pid);
    let mut alice_end = UnixStream::from(peer.fds.remove(0));

    bob_end.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    alice_end.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    let log = server.log_text();
    assert!(log.contains("brokered channel bob(pid"), "{log}");
}

#[test]
fn two_hundred_channels_leave_no_fd_behind() {
    let server = Server::start(&[]);
    let mut alice = Peer::connect(&server.socket);
    let mut bob = Peer::connect(&server.socket);
    assert_eq!(register_result(&mut alice, b"alice").1, None);
    bob.roundtrip();
    let baseline = server.fd_count();
    for _ in 0..4 {
        let ids: Vec<u32> = (0..50).map(|_| bob.connect_to("alice")).collect();
        let events = bob.roundtrip();
        let fds: usize = events.iter().map(|e| e.fds.len()).sum();
        assert_eq!(fds, 50, "one end per connection");
        drop(events);
        for id in ids {
            bob.destroy(id);
        }
        let peers = alice.roundtrip();
        assert_eq!(peers.iter().map(|e| e.fds.len()).sum::<usize>(), 50);
    }
    bob.roundtrip();
    // The flushes happened before the roundtrips' replies; still, let the
    // count settle rather than assume when /proc reflects a close.
    let settled = eventually(|| server.fd_count() == baseline);
    assert!(
        settled,
        "fd count {} vs baseline {baseline}",
        server.fd_count()
    );
}
