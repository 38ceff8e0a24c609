//! Unit tests of the keymap handshake against a scripted server on the
//! other end of a `UnixStream::pair()`, built on the protocol crate's
//! `Connection`: event order (Weston's and sway's), missing `repeat_info`,
//! old seat versions, follow mode, and the error paths.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use waypass_protocol::protocols::wayland::{
    wl_callback, wl_display, wl_keyboard, wl_registry, wl_seat,
};
use waypass_protocol::{Connection, ConnectionError, Interface, Recv, TypedMessage};

use super::*;
use crate::keymap::tests::{keymap_text, memfd_with};

/// What the scripted server does once the client asks for a keyboard.
#[derive(Clone)]
struct Script {
    /// Globals to advertise: (interface name, version).
    globals: Vec<(&'static str, u32)>,
    capabilities: wl_seat::Capability,
    /// Events for `get_keyboard`, in order.
    keyboard: Vec<KbEvent>,
    /// Answer `get_keyboard` with `wl_display.error` instead.
    error_on_get_keyboard: bool,
    /// Close the connection once the keyboard events are sent.
    hang_up_after_keyboard: bool,
}

#[derive(Clone)]
enum KbEvent {
    Keymap(&'static str),
    Repeat(i32, i32),
}

impl Script {
    fn seat(version: u32, keyboard: Vec<KbEvent>) -> Script {
        Script {
            globals: vec![("wl_output", 4), ("wl_seat", version), ("wl_seat", 9)],
            capabilities: wl_seat::Capability::KEYBOARD | wl_seat::Capability::POINTER,
            keyboard,
            error_on_get_keyboard: false,
            hang_up_after_keyboard: false,
        }
    }
}

/// A decoded request, copied out of the connection's buffer.
enum Request {
    GetRegistry(u32),
    Sync(u32),
    Bind { version: u32, id: u32 },
    GetKeyboard(u32),
    Other,
}

struct Fake {
    conn: Connection,
    objects: HashMap<u32, (&'static Interface, u32)>,
    script: Script,
}

impl Fake {
    fn event<'a>(&mut self, id: u32, event: impl TypedMessage<'a, BorrowedFd<'a>>) {
        let (iface, version) = self.objects[&id];
        event
            .with_args(|opcode, args| {
                let desc = iface.event(opcode, version).expect("event at version");
                self.conn.send(id, opcode, desc, args)
            })
            .expect("queue event");
    }

    fn next_request(&mut self) -> Option<Request> {
        let objects = &self.objects;
        let msg = self
            .conn
            .next_message(|h| {
                let (iface, version) = objects.get(&h.sender).ok_or(())?;
                iface.request(h.opcode, *version).map_err(|_| ())
            })
            .expect("client sends valid requests")?;
        let iface = objects[&msg.sender].0;
        let (opcode, args) = (msg.opcode, msg.args);
        Some(if iface == &wl_display::INTERFACE {
            match wl_display::Request::from_args(opcode, args).expect("a display request") {
                wl_display::Request::GetRegistry { registry } => {
                    Request::GetRegistry(registry.raw())
                }
                wl_display::Request::Sync { callback } => Request::Sync(callback.raw()),
            }
        } else if iface == &wl_registry::INTERFACE {
            let wl_registry::Request::Bind { id, .. } =
                wl_registry::Request::from_args(opcode, args).expect("bind");
            Request::Bind {
                version: id.version,
                id: id.id,
            }
        } else if iface == &wl_seat::INTERFACE {
            match wl_seat::Request::from_args(opcode, args) {
                Ok(wl_seat::Request::GetKeyboard { id }) => Request::GetKeyboard(id.raw()),
                _ => Request::Other,
            }
        } else {
            Request::Other
        })
    }

    fn handle(&mut self, req: Request) {
        match req {
            Request::GetRegistry(id) => {
                self.objects.insert(id, (&wl_registry::INTERFACE, 1));
                for (name, (iface, version)) in self.script.globals.clone().into_iter().enumerate()
                {
                    let interface = &CString::new(iface).expect("name");
                    let name = name as u32 + 1;
                    let global = wl_registry::Event::Global {
                        name,
                        interface,
                        version,
                    };
                    self.event(id, global);
                }
            }
            Request::Sync(id) => {
                self.objects.insert(id, (&wl_callback::INTERFACE, 1));
                self.event(id, wl_callback::Event::Done { callback_data: 7 });
                self.event(1, wl_display::Event::DeleteId { id });
                self.objects.remove(&id);
            }
            Request::Bind { version, id } => {
                self.objects.insert(id, (&wl_seat::INTERFACE, version));
                let capabilities = self.script.capabilities;
                self.event(id, wl_seat::Event::Capabilities { capabilities });
                if version >= 2 {
                    let name = c"seat-test";
                    self.event(id, wl_seat::Event::Name { name });
                }
            }
            Request::GetKeyboard(id) => self.get_keyboard(id),
            Request::Other => {}
        }
    }

    fn get_keyboard(&mut self, id: u32) {
        let seat = *self
            .objects
            .iter()
            .find(|(_, (i, _))| *i == &wl_seat::INTERFACE)
            .expect("seat bound")
            .0;
        if self.script.error_on_get_keyboard {
            let msg = c"keyboards are not for you";
            let error = wl_display::Event::Error {
                object_id: seat,
                code: 5,
                message: msg,
            };
            self.event(1, error);
            return;
        }
        let version = self.objects[&seat].1;
        self.objects.insert(id, (&wl_keyboard::INTERFACE, version));
        for ev in self.script.keyboard.clone() {
            match ev {
                KbEvent::Keymap(layout) => {
                    let mut bytes = keymap_text(layout).into_bytes();
                    bytes.push(0);
                    let fd: OwnedFd = memfd_with(&bytes, true);
                    let keymap = wl_keyboard::Event::Keymap {
                        format: FORMAT_XKB_V1_FOR_TEST.into(),
                        fd: fd.as_fd(),
                        size: bytes.len() as u32,
                    };
                    self.event(id, keymap);
                }
                KbEvent::Repeat(rate, delay) => {
                    self.event(id, wl_keyboard::Event::RepeatInfo { rate, delay });
                }
            }
        }
    }
}

const FORMAT_XKB_V1_FOR_TEST: u32 = 1;

/// Runs the scripted server on a thread until the client hangs up (or,
/// after an error, right away). Returns the client's session.
fn serve(script: Script) -> (Session, JoinHandle<()>) {
    let (client, server) = UnixStream::pair().expect("socketpair");
    let handle = thread::spawn(move || {
        let mut fake = Fake {
            conn: Connection::new(server).expect("connection"),
            objects: HashMap::from([(1, (&wl_display::INTERFACE, 1))]),
            script,
        };
        loop {
            let mut fds = [PollFd::new(fake.conn.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::NONE).expect("poll");
            match fake.conn.recv() {
                Ok(Recv::Data(_) | Recv::WouldBlock) => {}
                Err(ConnectionError::Closed) => return,
                Err(e) => panic!("recv: {e}"),
            }
            while let Some(req) = fake.next_request() {
                let last = matches!(req, Request::GetKeyboard(_))
                    && (fake.script.error_on_get_keyboard || fake.script.hang_up_after_keyboard);
                fake.handle(req);
                if last {
                    let _ = fake.conn.flush();
                    return;
                }
            }
            let _ = fake.conn.flush();
        }
    });
    (Session::from_stream(client).expect("session"), handle)
}

fn watch(script: Script, options: FetchOptions) -> Result<KeymapWatcher, FetchError> {
    let (session, _server) = serve(script);
    KeymapWatcher::new(session, options)
}

fn first(script: Script) -> ReceivedKeymap {
    let mut w = watch(script, FetchOptions::default()).expect("keyboard");
    w.next_keymap(Some(Duration::from_secs(30)))
        .expect("keymap")
        .expect("server still there")
}

const RATE: KbEvent = KbEvent::Repeat(25, 600);

#[test]
fn repeat_info_before_keymap_weston_order() {
    let k = first(Script::seat(7, vec![RATE, KbEvent::Keymap("us")]));
    assert_eq!(
        k.repeat(),
        Some(RepeatInfo {
            rate: 25,
            delay: 600
        })
    );
    assert_eq!(k.seat_name(), Some("seat-test"));
    assert_eq!(k.layouts(), ["English (US)"]);
}

#[test]
fn keymap_before_repeat_info_sway_order() {
    let k = first(Script::seat(9, vec![KbEvent::Keymap("fr"), RATE]));
    assert_eq!(
        k.repeat(),
        Some(RepeatInfo {
            rate: 25,
            delay: 600
        })
    );
    assert_eq!(k.layouts(), ["French"]);
}

#[test]
fn missing_repeat_info_at_v4_ends_after_a_roundtrip() {
    let k = first(Script::seat(5, vec![KbEvent::Keymap("us")]));
    assert_eq!(k.repeat(), None);
}

#[test]
fn seat_below_v4_is_bound_at_its_version() {
    let mut w = watch(
        Script::seat(3, vec![KbEvent::Keymap("de")]),
        FetchOptions::default(),
    )
    .expect("keyboard");
    let seat = w.seat;
    assert_eq!(w.session().version(seat), Some(3));
    let k = w
        .next_keymap(Some(Duration::from_secs(30)))
        .expect("keymap")
        .expect("keymap");
    assert_eq!(k.layouts(), ["German"]);
    assert_eq!(k.repeat(), None);
}

#[test]
fn follow_mode_yields_each_keymap_then_ends() {
    let mut script = Script::seat(8, vec![RATE, KbEvent::Keymap("us"), KbEvent::Keymap("fr")]);
    script.hang_up_after_keyboard = true;
    let (session, server) = serve(script);
    let w = KeymapWatcher::new(session, FetchOptions::default()).expect("keyboard");
    let layouts: Vec<Vec<String>> = w.map(|k| k.expect("parses").layouts()).collect();
    assert_eq!(layouts, [["English (US)"], ["French"]]);
    server.join().expect("server thread");
}

#[test]
fn seat_without_keyboard_is_an_error_after_the_timeout() {
    let mut script = Script::seat(7, vec![]);
    script.capabilities = wl_seat::Capability::POINTER;
    let options = FetchOptions {
        timeout: Duration::from_millis(50),
        ..FetchOptions::default()
    };
    match watch(script, options) {
        Err(FetchError::NoKeyboard { seat, .. }) => assert_eq!(seat.as_deref(), Some("seat-test")),
        other => panic!("expected NoKeyboard, got {other:?}"),
    }
}

#[test]
fn no_seat_is_an_error() {
    let mut script = Script::seat(7, vec![]);
    script.globals = vec![("wl_output", 4)];
    assert!(matches!(
        watch(script, FetchOptions::default()),
        Err(FetchError::NoSeat)
    ));
}

#[test]
fn protocol_error_carries_object_code_and_message() {
    let mut script = Script::seat(7, vec![]);
    script.error_on_get_keyboard = true;
    let mut w = watch(script, FetchOptions::default()).expect("keyboard requested");
    match w.next_keymap(Some(Duration::from_secs(30))) {
        Err(FetchError::Session(SessionError::Protocol(e))) => {
            assert_eq!(e.interface, "wl_seat");
            assert_eq!(e.code, 5);
            assert_eq!(e.message, "keyboards are not for you");
            assert_eq!(e.object, w.seat.raw());
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[test]
fn a_server_that_never_answers_is_bounded_by_the_whole_call_timeout() {
    // The other end is held open and never read: the registry round trip
    // would wait DEFAULT_REPLY_TIMEOUT (10 s) without one deadline.
    let (client, _silent) = UnixStream::pair().expect("socketpair");
    let session = Session::from_stream(client).expect("session");
    let started = std::time::Instant::now();
    let result = KeymapWatcher::new(
        session,
        FetchOptions::with_timeout(Duration::from_millis(300)),
    );
    let took = started.elapsed();
    match result {
        Err(FetchError::Session(SessionError::Timeout { waited, .. })) => {
            assert_eq!(waited, Duration::from_millis(300));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Generous: it proves the wait is not the 10 s default.
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn first_keymap_ends_at_the_setup_deadline() {
    // A keyboard that never sends its keymap.
    let (session, _server) = serve(Script::seat(7, vec![]));
    let options = FetchOptions::with_timeout(Duration::from_millis(300));
    let mut w = KeymapWatcher::new(session, options).expect("keyboard");
    let started = std::time::Instant::now();
    match w.first_keymap() {
        Err(FetchError::NoKeymap { waited }) => assert_eq!(waited, Duration::from_millis(300)),
        other => panic!("expected NoKeymap, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = FetchError::NoKeymap {
        waited: Duration::from_millis(300),
    }
    .to_string();
    assert!(text.contains("300 ms"), "{text}");
}

#[test]
fn poll_keymap_returns_at_once_when_nothing_came() {
    // The server answers get_keyboard with nothing at all: a blocking
    // read would hang here, poll_keymap must not.
    let mut w = watch(Script::seat(7, vec![]), FetchOptions::default()).expect("keyboard");
    assert!(w.poll_keymap().expect("no error").is_none());
    assert!(!w.session().has_pending_output(), "get_keyboard was sent");
}

#[test]
fn a_loop_that_waits_for_readability_first_gets_the_keymap() {
    // The loop polls before its first poll_keymap, and only for POLLIN:
    // the setup must have sent get_keyboard already, or nothing comes.
    let mut w = watch(
        Script::seat(7, vec![KbEvent::Keymap("fr")]),
        FetchOptions::default(),
    )
    .expect("keyboard");
    assert!(
        !w.session().has_pending_output(),
        "get_keyboard still queued"
    );
    let keymap = loop {
        let mut fds = [PollFd::new(w.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(30_000u16)).expect("poll");
        assert_eq!(ready, 1, "no keymap came: get_keyboard was never sent");
        if let Some(keymap) = w.poll_keymap().expect("no error") {
            break keymap;
        }
    };
    assert_eq!(keymap.layouts(), ["French"]);
}

#[test]
fn poll_keymap_follows_keymaps_from_a_poll_loop_then_reports_the_close() {
    let mut script = Script::seat(8, vec![RATE, KbEvent::Keymap("us"), KbEvent::Keymap("fr")]);
    script.hang_up_after_keyboard = true;
    let (session, server) = serve(script);
    let mut w = KeymapWatcher::new(session, FetchOptions::default()).expect("keyboard");
    let mut layouts = Vec::new();
    let end = loop {
        match w.poll_keymap() {
            Ok(Some(k)) => {
                assert_eq!(k.repeat().map(|r| r.rate), Some(25));
                layouts.push(k.layouts());
            }
            Ok(None) => {
                let mut fds = [PollFd::new(w.as_fd(), PollFlags::POLLIN)];
                poll(&mut fds, PollTimeout::from(30_000u16)).expect("poll");
            }
            Err(e) => break e,
        }
    };
    assert_eq!(layouts, [["English (US)"], ["French"]]);
    assert!(
        matches!(end, FetchError::Session(SessionError::Closed)),
        "{end:?}"
    );
    server.join().expect("server thread");
}
