//! End-to-end hardening of our client: `waypass-client keymap` against a
//! raw server that answers the handshake correctly until the keyboard, then
//! sends something malformed.
//!
//! This is where the malformed-input suite's argument cases that no server
//! request can carry are checked: an `fd` argument with no fd sent, and an
//! `array` running past the message (both only occur in events). What it
//! asserts for every case: the client exits with status 1 and one error
//! line, without a panic and without hanging (the harness's patience is a
//! hang detector). What it is not: a test of the server.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::thread;

use waypass_test_support::raw::{header, msg, serve_fake, u, FakeGlobal, Raw};
use waypass_test_support::{run_client, TempDir};

/// What the raw server sends when the client asks for a keyboard.
#[derive(Debug, Clone, Copy)]
enum Bad {
    /// `wl_keyboard.keymap` without its fd (the connection stays open).
    KeymapWithoutFd,
    /// `wl_keyboard.enter` whose `keys` array runs past the message.
    ArrayPastEnd,
    /// `wl_keyboard.keymap` with its fd, then a header of size 8192.
    OversizedEvent,
    /// An event from an object the client never created.
    UnknownSender,
    /// The first 10 bytes of `wl_keyboard.keymap`, then a hang-up.
    TruncatedThenClose,
}

fn keyboard_answer(bad: Bad, keyboard: u32, stream: &mut UnixStream) {
    let spare = File::open("/dev/null").unwrap();
    let mut raw = Raw {
        stream: stream.try_clone().unwrap(),
    };
    match bad {
        Bad::KeymapWithoutFd => raw.send(&msg(keyboard, 0, &[u(1), u(100)])),
        Bad::ArrayPastEnd => {
            raw.send(&msg(keyboard, 1, &[u(7), u(20), u(1000), u(30), u(31)]));
        }
        Bad::OversizedEvent => {
            raw.send_with_fds(&msg(keyboard, 0, &[u(1), u(100)]), &[spare.as_fd()]);
            raw.send(&header(keyboard, 1, 8192));
        }
        Bad::UnknownSender => raw.send(&msg(77, 0, &[u(1)])),
        Bad::TruncatedThenClose => {
            raw.send(&msg(keyboard, 0, &[u(1), u(100)])[..10]);
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
    }
}

/// Serves one client: correct answers up to `get_keyboard`, then `bad`;
/// then reads until the client leaves.
fn serve(listener: UnixListener, bad: Bad) {
    let (stream, _) = listener.accept().expect("accept");
    serve_fake(stream, FakeGlobal::Seat, |keyboard, stream| {
        keyboard_answer(bad, keyboard, stream)
    });
}

fn check(bad: Bad) {
    let dir = TempDir::new("client-input");
    let socket = dir.join("wayland-raw");
    let listener = UnixListener::bind(&socket).unwrap();
    let server = thread::spawn(move || serve(listener, bad));
    let out = run_client(&[
        "--socket",
        socket.to_str().unwrap(),
        "keymap",
        "--timeout-ms",
        "2000",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{bad:?}: {:?} {err}",
        out.status
    );
    assert_eq!(err.lines().count(), 1, "{bad:?}: one line: {err}");
    assert!(err.starts_with("waypass-client: error: "), "{bad:?}: {err}");
    assert!(!err.contains("panicked"), "{bad:?}: {err}");
    eprintln!("{bad:?}: {}", err.trim());
    server.join().unwrap();
}

#[test]
fn keymap_event_without_its_fd() {
    check(Bad::KeymapWithoutFd);
}

#[test]
fn array_running_past_the_event() {
    check(Bad::ArrayPastEnd);
}

#[test]
fn event_above_4096_bytes() {
    check(Bad::OversizedEvent);
}

#[test]
fn event_from_an_unknown_object() {
    check(Bad::UnknownSender);
}

#[test]
fn truncated_event_then_hang_up() {
    check(Bad::TruncatedThenClose);
}
