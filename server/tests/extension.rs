//! A global of one's own, served through `ServerBuilder::global` and
//! called through the client library: binds, typed requests and events,
//! a destructor, a protocol error of the global's, and what the global
//! hears when objects go.
//!
//! What it is not: the third-party crate's test (`examples/custom-protocol`
//! runs a server binary and a wayland-rs peer); this one reaches into the
//! global's own record of what happened.

use std::ffi::CString;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use waypass_client::{Session, SessionError};
use waypass_protocol::ObjectId;
use waypass_server::{
    ClientId, Global, GlobalCx, GlobalError, RunningServer, ServerBuilder, ServerConfig,
};

mod protocol {
    waypass_protocol::interfaces!(
        "../scanner/tests/greeter-v1.xml",
        external = [wl_seat = waypass_protocol::protocols::wayland::wl_seat]
    );
}
use protocol::greeter_v1::{self, GreeterV1, Tone};

/// What the global saw, in order.
type Log = Arc<Mutex<Vec<String>>>;

struct Greeter {
    log: Log,
}

impl Global for Greeter {
    type Interface = GreeterV1;

    fn bind(
        &mut self,
        cx: &mut GlobalCx<'_, '_>,
        object: ObjectId<GreeterV1>,
    ) -> Result<(), GlobalError> {
        let entry = format!("bind {} v{}", object.raw(), cx.version());
        self.log.lock().unwrap().push(entry);
        Ok(())
    }

    fn request(
        &mut self,
        cx: &mut GlobalCx<'_, '_>,
        greeter: ObjectId<GreeterV1>,
        request: greeter_v1::Request<'_>,
    ) -> Result<(), GlobalError> {
        match request {
            greeter_v1::Request::Greet { name, seat, tone } => {
                let name = name.to_string_lossy();
                let text = match tone {
                    Tone::Plain => format!("hello, {name}"),
                    Tone::Warm => format!("hello, dear {name}"),
                    Tone::Unknown(v) => {
                        return Err(GlobalError::protocol(greeter, 0u32, format!("tone {v}")))
                    }
                };
                let seat = seat.map_or(0, ObjectId::raw);
                let uid = cx.credentials().map(|c| c.uid);
                self.log
                    .lock()
                    .unwrap()
                    .push(format!("greet {name} seat {seat} uid {uid:?}"));
                let text = CString::new(text).expect("no NUL");
                cx.send(greeter, greeter_v1::Event::Greeting { text: &text })
            }
            greeter_v1::Request::Destroy => {
                self.log
                    .lock()
                    .unwrap()
                    .push(format!("destroy {}", greeter.raw()));
                Ok(())
            }
        }
    }

    fn destroyed(&mut self, _client: ClientId, object: ObjectId<GreeterV1>) {
        self.log
            .lock()
            .unwrap()
            .push(format!("destroyed {}", object.raw()));
    }
}

fn start(dir: &Path) -> (RunningServer, Log) {
    let log = Log::default();
    let mut config = ServerConfig::default();
    config.socket = Some(dir.join("wayland-x").to_str().expect("utf-8").into());
    let greeter = Greeter { log: log.clone() };
    let server = ServerBuilder::new(config).global(greeter).start_in_thread();
    (server.expect("server"), log)
}

fn greet(
    session: &mut Session,
    greeter: ObjectId<GreeterV1>,
    tone: Tone,
) -> Result<String, SessionError> {
    let name = c"ann";
    let request = greeter_v1::Request::Greet {
        name,
        seat: None,
        tone,
    };
    session.send(greeter, request)?;
    let mut event = session.next_event_from(greeter)?;
    match event.decode::<GreeterV1>()? {
        greeter_v1::Event::Greeting { text } => Ok(text.to_string_lossy().into_owned()),
    }
}

/// Waits (boundedly) until `log` holds `entry`.
fn eventually_logged(log: &Log, entry: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !log.lock().unwrap().iter().any(|e| e == entry) {
        assert!(
            Instant::now() < deadline,
            "never logged {entry:?}: {:?}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn typed_requests_reach_the_global_and_its_events_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = start(dir.path());
    let mut session = Session::connect_path(server.socket_path()).expect("connect");
    let greeter = session.bind_global::<GreeterV1>(2).expect("bind");
    assert_eq!(
        greet(&mut session, greeter, Tone::Plain).unwrap(),
        "hello, ann"
    );
    assert_eq!(
        greet(&mut session, greeter, Tone::Warm).unwrap(),
        "hello, dear ann"
    );
    let uid = nix::unistd::getuid().as_raw();
    let log = log.lock().unwrap().clone();
    let id = greeter.raw();
    assert_eq!(
        log,
        [
            format!("bind {id} v2"),
            format!("greet ann seat 0 uid Some({uid})"),
            format!("greet ann seat 0 uid Some({uid})"),
        ]
    );
    server.stop_and_join().expect("stopped");
}

#[test]
fn a_destructor_removes_the_object_and_the_global_hears_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = start(dir.path());
    let mut session = Session::connect_path(server.socket_path()).expect("connect");
    let greeter = session.bind_global::<GreeterV1>(2).expect("bind");
    session
        .send(greeter, greeter_v1::Request::Destroy)
        .expect("destroy");
    session.roundtrip().expect("round trip");
    let id = greeter.raw();
    eventually_logged(&log, &format!("destroyed {id}"));
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log[1..],
        [format!("destroy {id}"), format!("destroyed {id}")]
    );
    server.stop_and_join().expect("stopped");
}

#[test]
fn a_client_that_leaves_takes_its_objects_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = start(dir.path());
    let mut session = Session::connect_path(server.socket_path()).expect("connect");
    let first = session.bind_global::<GreeterV1>(1).expect("bind");
    let second = session.bind_global::<GreeterV1>(1).expect("bind");
    session.roundtrip().expect("round trip");
    drop(session);
    eventually_logged(&log, &format!("destroyed {}", first.raw()));
    eventually_logged(&log, &format!("destroyed {}", second.raw()));
    server.stop_and_join().expect("stopped");
}

#[test]
fn a_global_s_protocol_error_ends_that_client_only() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _log) = start(dir.path());
    let mut bad = Session::connect_path(server.socket_path()).expect("connect");
    let greeter = bad.bind_global::<GreeterV1>(2).expect("bind");
    match greet(&mut bad, greeter, Tone::Unknown(7)) {
        Err(SessionError::Protocol(e)) => {
            assert_eq!((e.object, e.code), (greeter.raw(), 0));
            assert_eq!(e.message, "tone 7");
        }
        other => panic!("expected the global's protocol error, got {other:?}"),
    }
    let mut good = Session::connect_path(server.socket_path()).expect("connect");
    let greeter = good.bind_global::<GreeterV1>(2).expect("bind");
    assert_eq!(
        greet(&mut good, greeter, Tone::Plain).unwrap(),
        "hello, ann"
    );
    server.stop_and_join().expect("stopped");
}

#[test]
fn a_bind_above_the_advertised_version_is_refused_as_for_built_in_globals() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = start(dir.path());
    let mut session = Session::connect_path(server.socket_path()).expect("connect");
    let globals = session.globals().expect("globals");
    let (registry, name) = (
        globals.registry(),
        globals.find::<GreeterV1>().expect("advertised").name,
    );
    session.bind::<GreeterV1>(registry, name, 3).expect("sent");
    match session.roundtrip() {
        Err(SessionError::Protocol(e)) => {
            assert_eq!(e.object, registry.raw());
            assert!(
                e.message.starts_with(&format!(
                    "invalid version for global greeter_v1 ({name}): have 2, wanted 3"
                )),
                "{e}"
            );
        }
        other => panic!("expected invalid_object on the registry, got {other:?}"),
    }
    assert!(
        log.lock().unwrap().is_empty(),
        "the global never saw the bind"
    );
    server.stop_and_join().expect("stopped");
}

#[test]
fn an_unknown_opcode_on_an_added_object_is_invalid_method_not_the_global_s_business() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = start(dir.path());
    let mut session = Session::connect_path(server.socket_path()).expect("connect");
    let greeter = session.bind_global::<GreeterV1>(1).expect("bind");
    session.roundtrip().expect("bound");
    // Opcode 1 (destroy) is since version 2: at version 1 it is not a
    // request of this object. Sent raw, as the typed API cannot.
    let words = [greeter.raw(), 8 << 16 | 1];
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let mut stream = session_stream(&session);
    stream.write_all(&bytes).expect("send");
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.contains(&format!(
            "invalid method 1 (since 1 < 2), object greeter_v1@{}",
            greeter.raw()
        )),
        "{text:?}"
    );
    let never = format!("destroy {}", greeter.raw());
    let log = log.lock().unwrap().clone();
    assert!(!log.contains(&never), "the global saw it: {log:?}");
    server.stop_and_join().expect("stopped");
}

/// A second handle on the session's socket, to write bytes the typed API
/// would not.
fn session_stream(session: &Session) -> std::os::unix::net::UnixStream {
    use std::os::fd::AsFd;
    let fd = session.as_fd().try_clone_to_owned().expect("dup");
    let stream = std::os::unix::net::UnixStream::from(fd);
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    stream
}
