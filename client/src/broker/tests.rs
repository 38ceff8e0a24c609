//! Unit tests of [`Broker`] against a scripted broker server on a thread,
//! over `UnixStream::pair()`. The real server is exercised by the
//! end-to-end tests in `tests/broker_*.rs`.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use waypass_protocol::protocols::wayland::{wl_callback, wl_display, wl_registry};
use waypass_protocol::{
    Connection, ConnectionError, Interface, PeerChannel, PeerMessage, Recv, TypedMessage,
};

use super::*;

const WAIT: Option<Duration> = Some(Duration::from_secs(30));

/// What the scripted server does.
#[derive(Clone, Copy)]
struct Script {
    /// Advertise the broker global.
    advertise: bool,
    /// Answer this many connects with unknown_name before the name exists.
    unknown_first: u32,
}

/// A request, copied out of the connection's buffer.
enum Req {
    GetRegistry(u32),
    Sync(u32),
    Bind(u32),
    Register(u32, String),
    Connect(u32, String),
    Destroy(u32),
}

struct Fake {
    conn: Connection,
    objects: HashMap<u32, &'static Interface>,
    script: Script,
    connects: u32,
    /// Our end of every socketpair, for the test to talk to the client.
    ends: mpsc::Sender<OwnedFd>,
}

impl Fake {
    fn run(mut self) {
        loop {
            let mut fds = [PollFd::new(self.conn.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::NONE).expect("poll");
            match self.conn.recv() {
                Ok(Recv::Data(_)) | Ok(Recv::WouldBlock) => {}
                Err(ConnectionError::Closed) => return,
                Err(e) => panic!("fake server recv: {e}"),
            }
            while let Some(req) = self.next_request() {
                self.handle(req);
            }
            self.conn.flush().expect("flush");
        }
    }

    fn next_request(&mut self) -> Option<Req> {
        let objects = &self.objects;
        let mut iface = None;
        let message = self
            .conn
            .next_message(|h| {
                let i = objects.get(&h.sender).ok_or(())?;
                iface = Some(*i);
                i.request(h.opcode, 1).map_err(|_| ())
            })
            .expect("a request the fake knows")?;
        let iface = iface.expect("looked up");
        let (sender, opcode) = (message.sender, message.opcode);
        let text = |s: &std::ffi::CStr| s.to_string_lossy().into_owned();
        Some(match iface.name {
            "wl_display" => match wl_display::Request::from_args(opcode, message.args).ok()? {
                wl_display::Request::GetRegistry { registry } => Req::GetRegistry(registry.raw()),
                wl_display::Request::Sync { callback } => Req::Sync(callback.raw()),
            },
            "wl_registry" => {
                let wl_registry::Request::Bind { id, .. } =
                    wl_registry::Request::from_args(opcode, message.args).ok()?;
                Req::Bind(id.id)
            }
            "waypass_broker_v1" => {
                match waypass_broker_v1::Request::from_args(opcode, message.args).ok()? {
                    waypass_broker_v1::Request::Register { id, name } => {
                        Req::Register(id.raw(), text(name))
                    }
                    waypass_broker_v1::Request::Connect { id, name } => {
                        Req::Connect(id.raw(), text(name))
                    }
                    waypass_broker_v1::Request::Destroy => Req::Destroy(sender),
                }
            }
            _ => Req::Destroy(sender),
        })
    }

    fn event<'a>(&mut self, object: u32, event: impl TypedMessage<'a, BorrowedFd<'a>>) {
        let iface = self.objects[&object];
        event
            .with_args(|opcode, args| {
                let desc = &iface.events[usize::from(opcode)];
                self.conn.send(object, opcode, desc, args)
            })
            .expect("send");
    }

    fn handle(&mut self, req: Req) {
        match req {
            Req::GetRegistry(id) => {
                self.objects.insert(id, &wl_registry::INTERFACE);
                if self.script.advertise {
                    let global = wl_registry::Event::Global {
                        name: 7,
                        interface: c"waypass_broker_v1",
                        version: 1,
                    };
                    self.event(id, global);
                }
            }
            Req::Sync(id) => {
                self.objects.insert(id, &wl_callback::INTERFACE);
                let done = wl_callback::Event::Done { callback_data: 0 };
                self.event(id, done);
                self.delete(id);
            }
            Req::Bind(id) => {
                self.objects.insert(id, &waypass_broker_v1::INTERFACE);
            }
            Req::Register(id, name) => {
                self.objects.insert(id, &waypass_name_v1::INTERFACE);
                if name == "taken" {
                    let reason = Failure::NameTaken;
                    self.event(id, waypass_name_v1::Event::Failed { reason });
                    return;
                }
                self.event(id, waypass_name_v1::Event::Registered);
                // Someone without a name connects right away.
                let end = self.pair();
                let peer = waypass_name_v1::Event::Peer {
                    fd: end.as_fd(),
                    peer_name: None,
                    pid: 42,
                    uid: 1000,
                    gid: 100,
                };
                self.event(id, peer);
            }
            Req::Connect(id, name) => {
                self.objects.insert(id, &waypass_connection_v1::INTERFACE);
                self.connects += 1;
                if name == "nobody" || self.connects <= self.script.unknown_first {
                    let reason = Failure::UnknownName;
                    self.event(id, waypass_connection_v1::Event::Failed { reason });
                    return;
                }
                let end = self.pair();
                let name = CString::new(name).unwrap();
                let established = waypass_connection_v1::Event::Established {
                    fd: end.as_fd(),
                    peer_name: &name,
                    pid: 7,
                    uid: 1,
                    gid: 2,
                };
                self.event(id, established);
            }
            Req::Destroy(id) => self.delete(id),
        }
    }

    /// A socketpair: returns the client's end, keeps ours for the test.
    fn pair(&mut self) -> OwnedFd {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        self.ends.send(ours).expect("test alive");
        theirs
    }

    fn delete(&mut self, id: u32) {
        self.objects.remove(&id);
        self.event(DISPLAY_ID_FOR_TESTS, wl_display::Event::DeleteId { id });
    }
}

const DISPLAY_ID_FOR_TESTS: u32 = crate::session::DISPLAY_ID;

/// A broker client on one end of a pair, the scripted server on the other,
/// and the receiver of the server's socketpair ends.
fn start(script: Script) -> (Result<Broker, BrokerError>, mpsc::Receiver<OwnedFd>) {
    let (client, server) = UnixStream::pair().expect("pair");
    let (tx, rx) = mpsc::channel();
    let mut objects: HashMap<u32, &'static Interface> = HashMap::new();
    objects.insert(DISPLAY_ID_FOR_TESTS, &wl_display::INTERFACE);
    let fake = Fake {
        conn: Connection::new(server).expect("connection"),
        objects,
        script,
        connects: 0,
        ends: tx,
    };
    thread::spawn(move || fake.run());
    let broker = Session::from_stream(client)
        .map_err(BrokerError::from)
        .and_then(Broker::new);
    (broker, rx)
}

const PLAIN: Script = Script {
    advertise: true,
    unknown_first: 0,
};

#[test]
fn a_server_without_the_global_is_no_broker() {
    let (broker, _ends) = start(Script {
        advertise: false,
        ..PLAIN
    });
    assert!(matches!(broker, Err(BrokerError::NoBroker)));
}

#[test]
fn register_resolves_and_yields_the_incoming_peer() {
    let (broker, ends) = start(PLAIN);
    let mut broker = broker.expect("bound");
    let handle = broker.register("bob").expect("sent");
    broker
        .wait_registered(handle, WAIT.unwrap())
        .expect("registered");
    assert_eq!(broker.name_state(handle), Some(NameState::Registered));
    assert_eq!(broker.name_of(handle), Some("bob"));

    let incoming = broker.next_peer(WAIT).expect("read").expect("a peer");
    assert_eq!(incoming.to, handle);
    assert_eq!(incoming.peer.label(), "pid 42");
    assert_eq!(incoming.peer.credentials.gid, 100);
    // The channel really is the other end of the server's socketpair.
    let mut ours = PeerChannel::new(ends.recv().expect("our end")).expect("channel");
    let mut theirs = incoming.peer.channel;
    let serial = ours.send_text("hello").expect("text");
    match theirs.recv(WAIT).expect("recv") {
        Some(PeerMessage::Text { text, serial: s }) => {
            assert_eq!((text.as_str(), s), ("hello", serial))
        }
        other => panic!("expected the text, got {other:?}"),
    }

    broker.withdraw(handle).expect("withdraw");
    assert_eq!(broker.name_state(handle), None);
    assert!(matches!(
        broker.withdraw(handle),
        Err(BrokerError::UnknownHandle)
    ));
}

#[test]
fn a_refused_registration_is_typed_and_withdrawn() {
    let (broker, _ends) = start(PLAIN);
    let mut broker = broker.expect("bound");
    let err = broker
        .register_and_wait("taken", WAIT.unwrap())
        .expect_err("taken");
    assert_eq!(err.failure(), Some(Failure::NameTaken));
    assert!(err.to_string().contains("\"taken\""), "{err}");
    // The inert object was withdrawn: the broker forgot it.
    assert!(broker.names.is_empty());
}

#[test]
fn connect_to_an_unknown_name_fails_at_once_without_waiting() {
    let (broker, _ends) = start(PLAIN);
    let mut broker = broker.expect("bound");
    let err = broker
        .connect_to("nobody", ConnectOptions::default())
        .expect_err("unknown");
    assert_eq!(err.failure(), Some(Failure::UnknownName));
    assert!(
        broker.connections.is_empty(),
        "connection objects destroyed"
    );
}

#[test]
fn connect_retries_unknown_name_until_it_is_registered() {
    let (broker, ends) = start(Script {
        advertise: true,
        unknown_first: 3,
    });
    let mut broker = broker.expect("bound");
    let options = ConnectOptions {
        wait_for_name: WAIT,
        retry_interval: Duration::from_millis(1),
        ..ConnectOptions::default()
    };
    let mut peer = broker.connect_to("late", options).expect("established");
    assert_eq!(peer.name.as_deref(), Some("late"));
    assert_eq!(peer.label(), "late");
    assert_eq!(
        peer.credentials,
        Credentials {
            pid: 7,
            uid: 1,
            gid: 2
        }
    );
    let mut ours = PeerChannel::new(ends.recv().expect("our end")).expect("channel");
    let serial = peer.channel.send_text("ping").expect("text");
    assert!(matches!(
        ours.recv(WAIT),
        Ok(Some(PeerMessage::Text { .. }))
    ));
    ours.ack(serial).expect("ack");
    peer.channel.wait_ack(serial, WAIT).expect("acked");
}

#[test]
fn a_name_with_a_nul_is_refused_locally() {
    let (broker, _ends) = start(PLAIN);
    let mut broker = broker.expect("bound");
    let err = broker.register("a\0b").expect_err("nul");
    assert_eq!(err.failure(), Some(Failure::InvalidName));
}

#[test]
fn a_peer_event_without_a_uid_is_an_error_not_root() {
    let (broker, _ends) = start(PLAIN);
    let mut broker = broker.expect("bound");
    let handle = broker.register("carol").expect("sent");
    broker
        .wait_registered(handle, WAIT.unwrap())
        .expect("registered");
    // The scripted server's own peer, with its whole credentials.
    let first = broker.next_peer(WAIT).expect("read").expect("a peer");
    assert_eq!(first.peer.credentials.uid, 1000);
    // peer(fd, name, pid, uid, gid) with only the pid: decoding against the
    // signature never makes this, a hand-built event can.
    let (end, _other) = UnixStream::pair().expect("pair");
    let mut args = waypass_protocol::Args::new();
    args.push(waypass_protocol::Arg::Fd(OwnedFd::from(end)));
    args.push(waypass_protocol::Arg::Str(Some(c"dave")));
    args.push(waypass_protocol::Arg::Int(7));
    let opcode = waypass_name_v1::evt::PEER;
    let message = waypass_protocol::Message {
        sender: handle.id(),
        opcode,
        args,
    };
    let desc = &waypass_name_v1::INTERFACE.events[usize::from(opcode)];
    let event = Event::from_message(message, &waypass_name_v1::INTERFACE, desc);
    let result = broker.on_name_event(waypass_protocol::ObjectId::from_raw(handle.id()), event);
    // The typed decode refuses an event short of its signature.
    assert!(
        matches!(
            result,
            Err(BrokerError::Session(SessionError::EventMismatch(_)))
        ),
        "{result:?}"
    );
    assert!(
        broker.take_peer().is_none(),
        "a peer with made-up credentials"
    );
}
