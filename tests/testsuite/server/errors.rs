//! End-to-end: a table of malformed and forbidden messages sent over raw
//! sockets. Each gets `wl_display.error` with the right code (or, where no
//! error can be sent, a hang-up); a well-behaved client connected the whole
//! time keeps working; the server's fd count returns to its baseline. Also:
//! a client that never reads is cut off at the outgoing cap.

use std::fs::File;
use std::os::fd::AsFd;
use std::thread;
use waypass_test_support::raw;

use waypass_protocol::protocols::wayland::wl_seat;
use waypass_test_support::raw::{display_error, header, msg, s, u, Raw};
use waypass_test_support::wlrs_client::WlClient;
use waypass_test_support::{eventually, Server};

const INVALID_OBJECT: u32 = 0;
const INVALID_METHOD: u32 = 1;
const MISSING_CAPABILITY: u32 = 0;

/// What the server must answer.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// `wl_display.error` with this code, on this object, whose message
    /// contains this text; then a hang-up.
    Error(u32, u32, &'static str),
    /// A hang-up without an error (nothing sensible can be said).
    Hangup,
}

fn get_registry() -> Vec<u8> {
    msg(1, 1, &[u(2)])
}

fn bind(name: u32, iface: &str, version: u32) -> Vec<u8> {
    msg(2, 0, &[u(name), s(iface), u(version), u(3)])
}

fn seat_at(version: u32) -> Vec<u8> {
    [get_registry(), bind(1, "wl_seat", version)].concat()
}

/// The table: name, bytes to send, expected answer.
fn cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::*;
    let too_high = wl_seat::INTERFACE.version + 1;
    vec![
        (
            "size below the header",
            header(1, 0, 4),
            Error(INVALID_METHOD, 1, ""),
        ),
        (
            "size above 4096",
            header(1, 0, 8192),
            Error(INVALID_METHOD, 1, ""),
        ),
        (
            "size not a multiple of 4",
            [header(1, 0, 10), vec![0; 4]].concat(),
            Error(INVALID_METHOD, 1, ""),
        ),
        (
            "unknown object",
            msg(9, 0, &[u(3)]),
            Error(INVALID_OBJECT, 1, "invalid object 9"),
        ),
        (
            "unknown opcode",
            msg(1, 7, &[]),
            Error(INVALID_METHOD, 1, "invalid method 7, object wl_display@1"),
        ),
        (
            "bind to an unknown global",
            [get_registry(), bind(99, "wl_seat", 1)].concat(),
            Error(INVALID_OBJECT, 2, "invalid global wl_seat (99)"),
        ),
        (
            "bind with the wrong interface name",
            [get_registry(), bind(1, "wl_output", 1)].concat(),
            Error(INVALID_OBJECT, 2, "invalid interface for global 1"),
        ),
        (
            "bind at version 0",
            seat_at(0),
            Error(INVALID_OBJECT, 2, "invalid version"),
        ),
        (
            "bind above the advertised version",
            seat_at(too_high),
            Error(INVALID_OBJECT, 2, "invalid version"),
        ),
        (
            "new id already in use",
            [get_registry(), get_registry()].concat(),
            Error(INVALID_OBJECT, 1, "invalid new id 2"),
        ),
        (
            "new id in the server's range",
            msg(1, 0, &[u(0xff00_0000)]),
            Error(INVALID_OBJECT, 1, "invalid new id"),
        ),
        (
            "new id not the next free one",
            msg(1, 0, &[u(40)]),
            Error(INVALID_OBJECT, 1, "invalid new id 40"),
        ),
        (
            "null new id",
            msg(1, 0, &[u(0)]),
            Error(INVALID_METHOD, 1, "invalid arguments for wl_display@1.sync"),
        ),
        (
            "string without its NUL",
            [
                get_registry(),
                msg(2, 0, &[u(1), u(7), b"wl_seat\0".to_vec(), u(7), u(3)]),
            ]
            .concat(),
            Error(
                INVALID_METHOD,
                1,
                "invalid arguments for wl_registry@2.bind",
            ),
        ),
        (
            "null string where none is allowed",
            [get_registry(), msg(2, 0, &[u(1), u(0), u(7), u(3)])].concat(),
            Error(
                INVALID_METHOD,
                1,
                "invalid arguments for wl_registry@2.bind",
            ),
        ),
        (
            "string running past the message",
            [get_registry(), msg(2, 0, &[u(1), u(100), u(7), u(3)])].concat(),
            Error(
                INVALID_METHOD,
                1,
                "invalid arguments for wl_registry@2.bind",
            ),
        ),
        (
            "missing argument",
            msg(1, 0, &[]),
            Error(INVALID_METHOD, 1, "invalid arguments"),
        ),
        (
            "bytes after the last argument",
            msg(1, 0, &[u(2), u(5)]),
            Error(INVALID_METHOD, 1, "invalid arguments"),
        ),
        (
            "request above the bound version",
            [seat_at(4), msg(3, 3, &[])].concat(),
            Error(
                INVALID_METHOD,
                1,
                "invalid method 3 (since 4 < 5), object wl_seat@3",
            ),
        ),
        (
            "keyboard release below version 3",
            [seat_at(2), msg(3, 1, &[u(4)]), msg(4, 0, &[])].concat(),
            Error(INVALID_METHOD, 1, "object wl_keyboard@4"),
        ),
        (
            "pointer on a keyboard-only seat",
            [seat_at(7), msg(3, 0, &[u(4)])].concat(),
            Error(MISSING_CAPABILITY, 3, "no pointer capability"),
        ),
        (
            "touch on a keyboard-only seat",
            [seat_at(7), msg(3, 2, &[u(4)])].concat(),
            Error(MISSING_CAPABILITY, 3, "no touch capability"),
        ),
        (
            "request to a callback after delete_id",
            [msg(1, 0, &[u(2)]), msg(2, 0, &[])].concat(),
            Error(INVALID_OBJECT, 1, "invalid object 2"),
        ),
        ("half a header, then hang-up", vec![1, 0, 0], Hangup),
        ("half a message, then hang-up", header(1, 0, 12), Hangup),
    ]
}

fn check(server: &Server, name: &str, bytes: &[u8], expect: Expect) {
    let mut raw = Raw::connect(&server.socket);
    raw.send(bytes);
    if matches!(expect, Expect::Hangup) {
        raw.stream.shutdown(std::net::Shutdown::Write).unwrap();
    }
    let events = raw.read_until_hangup();
    eprintln!("{name}: {:?}", display_error(&events));
    let error = display_error(&events);
    match expect {
        Expect::Error(code, object, text) => {
            let e = error.unwrap_or_else(|| panic!("{name}: no wl_display.error in {events:?}"));
            assert_eq!((e.code, e.object), (code, object), "{name}: {e:?}");
            assert!(
                e.message.contains(text),
                "{name}: {:?} lacks {text:?}",
                e.message
            );
            let last = events.last().unwrap();
            assert_eq!(
                (last.sender, last.opcode),
                (1, 0),
                "{name}: the error is the last event"
            );
        }
        Expect::Hangup => assert_eq!(error, None, "{name}"),
    }
}

#[test]
fn malformed_messages_get_errors_and_nobody_else_notices() {
    let server = Server::start(&[]);
    let mut good = WlClient::connect(&server.socket);
    good.get_keyboard();
    // A second round trip: the server has finished with the first one
    // (its queued fds are closed once sent) before it reads this one.
    good.roundtrip();
    let baseline = server.fd_count();

    for (name, bytes, expect) in cases() {
        check(&server, name, &bytes, expect);
        // The well-behaved client is still served in between.
        good.roundtrip();
    }

    // Fds sent along with requests that take none are closed, not leaked.
    let spare = File::open("/dev/null").unwrap();
    let mut raw = Raw::connect(&server.socket);
    raw.send_with_fds(
        &msg(1, 0, &[u(2)]),
        &[spare.as_fd(), spare.as_fd(), spare.as_fd()],
    );
    raw.send(&msg(9, 0, &[]));
    let error = display_error(&raw.read_until_hangup()).expect("error");
    assert_eq!(error.code, INVALID_OBJECT);

    // Fds beyond the server's cap on queued fds: a disconnect, and every
    // fd queued until then is closed. (253 is the most one sendmsg takes.)
    let many: Vec<_> = (0..253).map(|_| spare.as_fd()).collect();
    let mut raw = Raw::connect(&server.socket);
    for _ in 0..8 {
        if !raw.try_send_with_fds(&msg(1, 0, &[u(2)]), &many) {
            break;
        }
    }
    raw.read_until_hangup_lossy();

    let k = good.get_keyboard();
    assert!(good.seen.keymaps[k]
        .compile()
        .layout_get_name(0)
        .contains("English"));
    assert!(
        eventually(|| server.fd_count() == baseline),
        "server fds {} != baseline {baseline}",
        server.fd_count()
    );
    let log = server.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert!(
        log.contains("protocol error"),
        "misbehaviour is logged: {log}"
    );
}

#[test]
fn a_client_that_never_reads_is_cut_off_at_the_outgoing_cap() {
    let server = Server::start(&[]);
    let baseline = server.fd_count();
    let mut slow = Raw::connect(&server.socket);
    // Each sync costs the server 24 bytes of replies (done + delete_id);
    // 4 MiB of them is far beyond any cap plus the socket buffers.
    let writer = thread::spawn(move || {
        let one = msg(1, 0, &[u(2)]);
        let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 4096).collect();
        for _ in 0..(4 << 20) / (24 * 4096) {
            slow.send(&batch);
        }
        slow
    });
    // Meanwhile others are served.
    let mut good = WlClient::connect(&server.socket);
    good.get_keyboard();
    let mut slow = writer.join().unwrap();
    // The server hung up on it (what it had sent is simply discarded).
    slow.read_until_hangup_lossy();
    assert!(
        eventually(|| server.log_text().contains("cannot queue output")),
        "{}",
        server.log_text()
    );
    good.roundtrip();
    drop(good);
    assert!(eventually(|| server.fd_count() == baseline));
}

#[test]
fn a_client_that_reads_late_gets_every_reply() {
    // The trace tells us when the server has dispatched our last request.
    let server = Server::start_with(&[], |cmd| {
        cmd.env("WAYLAND_DEBUG", "server");
    });
    let mut late = Raw::connect(&server.socket);
    // 20,000 syncs: 480 KB of replies, more than the socket buffers hold
    // but under the outgoing cap; then one sync on id 3 as an end marker.
    const SYNCS: usize = 20_000;
    let one = msg(1, 0, &[u(2)]);
    let mut all: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * SYNCS)
        .collect();
    all.extend(msg(1, 0, &[u(3)]));
    late.send(&all);
    // Not reading until the server has handled everything: from now on
    // only writability can wake it, so the rest of the replies arrive only
    // if it waits for POLLOUT and flushes as the socket drains.
    assert!(eventually(|| server
        .log_text()
        .contains("wl_display@1.sync(new id wl_callback@3)")));
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while bytes.len() < (SYNCS + 1) * 24 {
        use std::io::Read;
        let n = late.stream.read(&mut buf).expect("replies keep coming");
        assert!(n > 0, "server hung up after {} bytes", bytes.len());
        bytes.extend_from_slice(&buf[..n]);
    }
    let events = raw::parse_events(&bytes);
    let done = events
        .iter()
        .filter(|e| e.opcode == 0 && e.sender != 1)
        .count();
    let deleted = events
        .iter()
        .filter(|e| (e.sender, e.opcode) == (1, 1))
        .count();
    assert_eq!((done, deleted), (SYNCS + 1, SYNCS + 1));
    // Serials count up, one per sync.
    let serial = |e: &raw::Event| u32::from_ne_bytes(e.body[..4].try_into().unwrap());
    let serials: Vec<u32> = events
        .iter()
        .filter(|e| e.sender != 1)
        .map(serial)
        .collect();
    assert!(serials.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    assert!(!server.log_text().contains("disconnecting"));
}

trait Drain {
    fn read_until_hangup_lossy(&mut self);
}

impl Drain for Raw {
    /// Reads and discards until the hang-up, without parsing: the stream
    /// may have been cut in the middle of a message.
    fn read_until_hangup_lossy(&mut self) {
        use std::io::Read;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("no hang-up: {e}"),
            }
        }
    }
}
