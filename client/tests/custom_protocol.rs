//! A protocol of one's own through the client library alone, as a crate
//! outside the workspace would write it: `hello_v1`
//! (`examples/custom-protocol/protocol/hello-v1.xml`) generated through the
//! re-export `waypass_client::waypass_protocol`, then bound, called and
//! answered with `Session` and typed messages only.
//!
//! What it is: the client side of the session's doc example, run against
//! a scripted server on the other end of a `UnixStream::pair()` that
//! itself reads typed requests and sends typed events. What it is not: a
//! test of waypass-server (which serves no `hello_v1`).

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::thread::{self, JoinHandle};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use waypass_client::waypass_protocol::protocols::wayland::wl_seat::WlSeat;
use waypass_client::waypass_protocol::protocols::wayland::{wl_callback, wl_display, wl_registry};
use waypass_client::waypass_protocol::{
    Connection, ConnectionError, Interface, Recv, TypedMessage,
};
use waypass_client::{Session, SessionError};

mod hello {
    // Relative to this crate's Cargo.toml.
    waypass_client::waypass_protocol::interfaces!(
        "../examples/custom-protocol/protocol/hello-v1.xml",
        crate = waypass_client::waypass_protocol
    );
}
use hello::hello_v1::{self, HelloV1};

/// The client's whole conversation with `hello_v1`: what the session's
/// doc example shows.
fn greet(session: &mut Session, name: &str) -> Result<String, SessionError> {
    let hello = session.bind_global::<HelloV1>(1)?;
    let name = CString::new(name).expect("no NUL");
    session.send(hello, hello_v1::Request::Greet { name: &name })?;
    let mut ev = session.next_event_from(hello)?;
    match ev.decode::<HelloV1>()? {
        hello_v1::Event::Greeting { text } => Ok(text.to_string_lossy().into_owned()),
    }
}

#[test]
fn a_custom_global_is_bound_called_and_answered_in_typed_code() {
    let (mut session, server) = serve(true);
    assert_eq!(
        greet(&mut session, "alice").expect("greeted"),
        "hello, alice"
    );
    assert_eq!(greet(&mut session, "bob").expect("greeted"), "hello, bob");
    drop(session);
    server.join().expect("server thread");
}

#[test]
fn a_missing_global_and_a_foreign_decode_are_errors_that_name_them() {
    let (mut session, server) = serve(false);
    match session.bind_global::<HelloV1>(1) {
        Err(e @ SessionError::NoGlobal { .. }) => {
            assert_eq!(e.to_string(), "the server does not offer hello_v1")
        }
        other => panic!("expected NoGlobal, got {other:?}"),
    }
    let globals: Vec<_> = session.globals().expect("listed").iter().cloned().collect();
    assert_eq!(globals.len(), 1);
    assert!(globals[0].is::<WlSeat>());

    // A callback's `done` read as a hello_v1 event.
    let callback = session.sync().expect("sync");
    let mut done = session.next_event_from(callback).expect("done");
    let err = done.decode::<HelloV1>().expect_err("not a hello_v1 event");
    assert_eq!(
        err.to_string(),
        format!(
            "wl_callback@{}.done is not an event of hello_v1",
            callback.raw()
        )
    );
    drop(session);
    server.join().expect("server thread");
}

/// A scripted server on a thread: `hello_v1` as global 1 if `with_hello`,
/// else only a `wl_seat` global (which it never lets anyone bind).
fn serve(with_hello: bool) -> (Session, JoinHandle<()>) {
    let (client, server) = UnixStream::pair().expect("socketpair");
    let handle = thread::spawn(move || {
        let mut fake = Fake {
            conn: Connection::new(server).expect("connection"),
            objects: HashMap::from([(1, &wl_display::INTERFACE)]),
            with_hello,
        };
        loop {
            let mut fds = [PollFd::new(fake.conn.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::NONE).expect("poll");
            match fake.conn.recv() {
                Ok(Recv::Data(_) | Recv::WouldBlock) => {}
                Err(ConnectionError::Closed) => return,
                Err(e) => panic!("recv: {e}"),
            }
            while fake.answer_one() {}
            fake.conn.flush().expect("flush");
        }
    });
    (Session::from_stream(client).expect("session"), handle)
}

struct Fake {
    conn: Connection,
    objects: HashMap<u32, &'static Interface>,
    with_hello: bool,
}

/// What a request asks of the fake, copied out of the input buffer.
enum Asked {
    Registry(u32),
    Sync(u32),
    Bound(u32),
    Greet(u32, String),
}

impl Fake {
    /// Answers the next complete request; false when there is none.
    fn answer_one(&mut self) -> bool {
        let objects = &self.objects;
        let mut iface = None;
        let message = self
            .conn
            .next_message(|h| {
                let i = *objects.get(&h.sender).ok_or(())?;
                iface = Some(i);
                i.request(h.opcode, 1).map_err(|_| ())
            })
            .expect("a request the fake knows");
        let Some(message) = message else {
            return false;
        };
        let (sender, opcode, args) = (message.sender, message.opcode, message.args);
        let asked = match iface.map(|i| i.name) {
            Some("wl_display") => match wl_display::Request::from_args(opcode, args) {
                Ok(wl_display::Request::GetRegistry { registry }) => {
                    Asked::Registry(registry.raw())
                }
                Ok(wl_display::Request::Sync { callback }) => Asked::Sync(callback.raw()),
                Err(e) => panic!("{e}"),
            },
            Some("wl_registry") => match wl_registry::Request::from_args(opcode, args) {
                Ok(wl_registry::Request::Bind { id, .. }) => Asked::Bound(id.id),
                Err(e) => panic!("{e}"),
            },
            _ => match hello_v1::Request::from_args(opcode, args) {
                Ok(hello_v1::Request::Greet { name }) => {
                    Asked::Greet(sender, name.to_string_lossy().into_owned())
                }
                Err(e) => panic!("{e}"),
            },
        };
        self.answer(asked);
        true
    }

    fn answer(&mut self, asked: Asked) {
        match asked {
            Asked::Registry(id) => {
                self.objects.insert(id, &wl_registry::INTERFACE);
                let interface = if self.with_hello {
                    c"hello_v1"
                } else {
                    c"wl_seat"
                };
                let global = wl_registry::Event::Global {
                    name: 1,
                    interface,
                    version: 1,
                };
                self.event(id, global);
            }
            Asked::Sync(id) => {
                self.objects.insert(id, &wl_callback::INTERFACE);
                self.event(id, wl_callback::Event::Done { callback_data: 0 });
                self.objects.remove(&id);
                self.event(1, wl_display::Event::DeleteId { id });
            }
            Asked::Bound(id) => {
                self.objects.insert(id, &hello_v1::INTERFACE);
            }
            Asked::Greet(id, name) => {
                let text = CString::new(format!("hello, {name}")).expect("no NUL");
                self.event(id, hello_v1::Event::Greeting { text: &text });
            }
        }
    }

    fn event<'a>(&mut self, object: u32, event: impl TypedMessage<'a, BorrowedFd<'a>>) {
        let desc = event.desc();
        event
            .with_args(|opcode, args| self.conn.send(object, opcode, desc, args))
            .expect("queue event");
    }
}
