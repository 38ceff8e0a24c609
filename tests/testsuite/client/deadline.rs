//! One deadline for the whole call: the timeout a caller gives bounds
//! every wait inside a keymap fetch or a broker call, and the error names
//! that timeout.
//!
//! Against a socket that accepts and never answers, a server that answers
//! round trips but never a broker request, and the real server with a name
//! nobody registers: `waypass-client keymap --timeout-ms 300` and `send
//! --timeout-ms 300`, and the library's `fetch_keymap`,
//! `Broker::connect_within`, `register_and_wait` and `connect_to`. The time
//! bound asserted is generous (5 s), only to tell the call's own timeout
//! from the 10 s default round-trip wait (a wait that ignored the call's
//! timeout would take that long); it is not a performance assertion.

use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use waypass_client::{
    fetch_keymap, Broker, BrokerError, ConnectOptions, Failure, FetchError, FetchOptions,
    SessionError,
};
use waypass_test_support::raw::{serve_fake, FakeGlobal};
use waypass_test_support::{run_client, Server, TempDir, PATIENCE};

const TIMEOUT: Duration = Duration::from_millis(300);
/// Far below the 10 s default round trip; far above 300 ms on a busy box.
const BOUND: Duration = Duration::from_secs(5);

/// A listener that accepts every connection and never writes a byte; the
/// connections stay open until it is dropped.
struct Silent {
    _dir: TempDir,
    socket: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Silent {
    /// `answer_round_trips`: answer `wl_display.sync` and `get_registry`
    /// (advertising `waypass_broker_v1`), and nothing else.
    fn start(answer_round_trips: bool) -> Silent {
        let dir = TempDir::new("deadline");
        let path = dir.join("wayland-silent");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) if answer_round_trips => {
                        held.push(thread::spawn(move || answer_syncs(stream)));
                    }
                    // Keep it open, read nothing, answer nothing.
                    Ok((stream, _)) => held.push(thread::spawn(move || hold(stream))),
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
            drop(held);
        });
        Silent {
            socket: path.to_str().unwrap().to_string(),
            _dir: dir,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Holds the stream until the client hangs up (bounded by PATIENCE).
fn hold(mut stream: UnixStream) {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
}

/// Answers `sync` and `get_registry`; never a broker request.
fn answer_syncs(stream: UnixStream) {
    serve_fake(stream, FakeGlobal::Broker, |_, _| {});
}

#[test]
fn keymap_command_against_a_silent_socket_ends_at_its_timeout() {
    let silent = Silent::start(false);
    let started = Instant::now();
    let out = run_client(&["--socket", &silent.socket, "keymap", "--timeout-ms", "300"]);
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("within 300 ms"), "{err}");
    assert!(took < BOUND, "took {took:?}: {err}");
    eprintln!("keymap --timeout-ms 300: {took:?}: {}", err.trim());
}

#[test]
fn send_command_against_a_silent_socket_ends_at_its_timeout() {
    let silent = Silent::start(false);
    let started = Instant::now();
    let out = run_client(&[
        "--socket",
        &silent.socket,
        "send",
        "bob",
        "hello",
        "--timeout-ms",
        "300",
    ]);
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("within 300 ms"), "{err}");
    assert!(took < BOUND, "took {took:?}: {err}");
}

#[test]
fn fetch_keymap_against_a_silent_socket_ends_at_its_timeout() {
    let silent = Silent::start(false);
    let started = Instant::now();
    let result = fetch_keymap(Some(&silent.socket), FetchOptions::with_timeout(TIMEOUT));
    let took = started.elapsed();
    match result {
        Err(FetchError::Session(SessionError::Timeout { waited, .. })) => {
            assert_eq!(waited, TIMEOUT)
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(took < BOUND, "took {took:?}");
}

#[test]
fn broker_connect_within_against_a_silent_socket_ends_at_its_timeout() {
    let silent = Silent::start(false);
    let started = Instant::now();
    let result = Broker::connect_within(Some(&silent.socket), TIMEOUT);
    let took = started.elapsed();
    match result {
        Err(e @ BrokerError::Session(SessionError::Timeout { .. })) => {
            assert!(e.to_string().contains("300 ms"), "{e}")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(took < BOUND, "took {took:?}");
}

#[test]
fn register_and_connect_to_a_server_that_never_answers_end_at_their_timeout() {
    let silent = Silent::start(true);
    let mut broker = Broker::connect_within(Some(&silent.socket), TIMEOUT).expect("bound");

    let started = Instant::now();
    match broker.register_and_wait("bob", TIMEOUT) {
        Err(BrokerError::NoAnswer { waited, .. }) => assert_eq!(waited, TIMEOUT),
        other => panic!("expected NoAnswer, got {other:?}"),
    }
    assert!(started.elapsed() < BOUND);

    // Retrying for 10 s is allowed, but the call's 300 ms bound everything.
    let mut options = ConnectOptions::default();
    options.reply_timeout = TIMEOUT;
    options.wait_for_name = Some(Duration::from_secs(10));
    let started = Instant::now();
    match broker.connect_to("bob", options) {
        Err(e @ BrokerError::NoAnswer { .. }) => assert!(e.to_string().contains("300 ms"), "{e}"),
        other => panic!("expected NoAnswer, got {other:?}"),
    }
    assert!(started.elapsed() < BOUND);
}

#[test]
fn connect_to_a_name_nobody_registers_stops_retrying_at_the_call_timeout() {
    let server = Server::start(&[]);
    let mut broker = Broker::connect_within(Some(server.socket_arg()), PATIENCE).expect("broker");
    let mut options = ConnectOptions::default();
    options.reply_timeout = TIMEOUT;
    options.wait_for_name = Some(Duration::from_secs(10));
    let started = Instant::now();
    let result = broker.connect_to("nobody", options);
    let took = started.elapsed();
    match result {
        Err(BrokerError::Refused { reason, .. }) => assert_eq!(reason, Failure::UnknownName),
        other => panic!("expected unknown_name, got {other:?}"),
    }
    // It retried (the first answer comes in well under 300 ms) and then
    // stopped at the call's timeout, not at wait_for_name's 10 s.
    assert!(took >= TIMEOUT, "took {took:?}");
    assert!(took < BOUND, "took {took:?}");
}
