//! The cases of the malformed-input suite: a name, what to send, and what
//! the server must answer.
//!
//! Valid prefixes are encoded with [`wire::encode`] against the protocol
//! crate's tables; the bad parts are written by hand with the raw helpers.

use std::os::fd::BorrowedFd;

use waypass_protocol::protocols::wayland::{wl_display, wl_keyboard, wl_registry, wl_seat};
use waypass_protocol::wire::{self, Arg};
use waypass_protocol::Interface;

use waypass_test_support::raw::{header, msg, u};

const INVALID_OBJECT: u32 = wl_display::error::INVALID_OBJECT;
const INVALID_METHOD: u32 = wl_display::error::INVALID_METHOD;
const MISSING_CAPABILITY: u32 = wl_seat::error::MISSING_CAPABILITY;

/// What to do on a fresh connection.
#[derive(Debug, Clone)]
pub enum Action {
    /// Write these bytes; then shut down the write side if asked.
    Send {
        /// The bytes.
        bytes: Vec<u8>,
        /// Whether to shut down writing afterwards.
        close_write: bool,
    },
    /// Write these bytes one `write` per byte.
    SingleBytes(Vec<u8>),
    /// `repeat` sendmsgs of `bytes` with `fds` fds of `/dev/null` each.
    WithFds {
        /// The data bytes of each sendmsg.
        bytes: Vec<u8>,
        /// Fds per sendmsg.
        fds: usize,
        /// How many sendmsgs.
        repeat: usize,
        /// Whether to shut down writing afterwards.
        close_write: bool,
    },
}

/// What the server must answer.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// `wl_display.error` with this code as the last event, then a hang-up.
    Error(u32),
    /// A hang-up, with or without an error before it (random input).
    Disconnect,
    /// A hang-up with no error (nothing sensible can be said).
    Hangup,
    /// Odd but legal: served until `wl_callback.done` from this id.
    Served(u32),
    /// A broker refusal: `failed(reason)` on `object`, then served until
    /// `wl_callback.done` from `marker`.
    Failed {
        /// The new object the refusal is sent on.
        object: u32,
        /// The `waypass_broker_v1.failure` value.
        reason: u32,
        /// The callback id whose `done` ends the answer.
        marker: u32,
    },
}

/// One valid message, encoded by the protocol crate.
fn req(sender: u32, iface: &Interface, opcode: u16, args: &[Arg<'_, BorrowedFd<'_>>]) -> Vec<u8> {
    let desc = &iface.requests[usize::from(opcode)];
    let mut out = vec![0u8; wire::MAX_MESSAGE_SIZE];
    let n = wire::encode(sender, opcode, desc, args, &mut out).expect("valid request");
    out.truncate(n);
    out
}

fn sync(id: u32) -> Vec<u8> {
    req(
        1,
        &wl_display::INTERFACE,
        wl_display::req::SYNC,
        &[Arg::NewId(id)],
    )
}

fn get_registry() -> Vec<u8> {
    let op = wl_display::req::GET_REGISTRY;
    req(1, &wl_display::INTERFACE, op, &[Arg::NewId(2)])
}

fn bind(name: u32, iface: &std::ffi::CStr, version: u32, id: u32) -> Vec<u8> {
    let args = [
        Arg::Uint(name),
        Arg::Str(Some(iface)),
        Arg::Uint(version),
        Arg::NewId(id),
    ];
    req(2, &wl_registry::INTERFACE, wl_registry::req::BIND, &args)
}

/// `wl_registry` at 2 and `wl_seat` (global 1) at 3.
fn seat_at(version: u32) -> Vec<u8> {
    [get_registry(), bind(1, c"wl_seat", version, 3)].concat()
}

fn get_keyboard(id: u32) -> Vec<u8> {
    let op = wl_seat::req::GET_KEYBOARD;
    req(3, &wl_seat::INTERFACE, op, &[Arg::NewId(id)])
}

fn keyboard_release(id: u32) -> Vec<u8> {
    req(id, &wl_keyboard::INTERFACE, wl_keyboard::req::RELEASE, &[])
}

/// A hand-written `wl_registry.bind` body: name, raw string bytes
/// (length word included), version, id.
fn raw_bind(string: Vec<u8>) -> Vec<u8> {
    [get_registry(), msg(2, 0, &[u(1), string, u(7), u(3)])].concat()
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

fn send(bytes: Vec<u8>) -> Action {
    Action::Send {
        bytes,
        close_write: false,
    }
}

fn send_then_close(bytes: Vec<u8>) -> Action {
    Action::Send {
        bytes,
        close_write: true,
    }
}

fn with_fds(bytes: Vec<u8>, fds: usize, repeat: usize, close_write: bool) -> Action {
    Action::WithFds {
        bytes,
        fds,
        repeat,
        close_write,
    }
}

/// Every case: name, action, expected answer.
pub fn cases() -> Vec<(&'static str, Action, Expect)> {
    use Expect::*;
    let top = wl_seat::INTERFACE.version;
    let mut all = vec![
        // The header's size word.
        ("size 0", send(header(1, 0, 0)), Error(INVALID_METHOD)),
        (
            "size 4, below the header",
            send(header(1, 0, 4)),
            Error(INVALID_METHOD),
        ),
        (
            "size 4100, above 4096",
            send(header(1, 0, 4100)),
            Error(INVALID_METHOD),
        ),
        ("size 8192", send(header(1, 0, 8192)), Error(INVALID_METHOD)),
        (
            "size 65532",
            send(header(1, 0, 65532)),
            Error(INVALID_METHOD),
        ),
        (
            "size 10, not a multiple of 4",
            send([header(1, 0, 10), vec![0; 4]].concat()),
            Error(INVALID_METHOD),
        ),
        ("size 4095", send(header(1, 0, 4095)), Error(INVALID_METHOD)),
        (
            "a valid sync, then size 2",
            send([sync(2), header(1, 0, 2)].concat()),
            Error(INVALID_METHOD),
        ),
        // Cut short, then closed.
        (
            "half a header, then close",
            send_then_close(vec![1, 0, 0]),
            Hangup,
        ),
        (
            "a truncated sync, then close",
            send_then_close(sync(2)[..10].to_vec()),
            Hangup,
        ),
        (
            "a truncated bind, then close",
            send_then_close([get_registry(), bind(1, c"wl_seat", 7, 3)[..20].to_vec()].concat()),
            Hangup,
        ),
        // Objects and opcodes.
        (
            "unknown object 9",
            send(msg(9, 0, &[u(3)])),
            Error(INVALID_OBJECT),
        ),
        (
            "object id 0",
            send(msg(0, 0, &[u(3)])),
            Error(INVALID_OBJECT),
        ),
        (
            "object id 0xffffffff",
            send(msg(u32::MAX, 0, &[])),
            Error(INVALID_OBJECT),
        ),
        (
            "unknown opcode 7 on wl_display",
            send(msg(1, 7, &[])),
            Error(INVALID_METHOD),
        ),
        (
            "opcode 0xffff on wl_display",
            send(msg(1, 0xffff, &[])),
            Error(INVALID_METHOD),
        ),
        (
            "unknown opcode 1 on wl_registry",
            send([get_registry(), msg(2, 1, &[])].concat()),
            Error(INVALID_METHOD),
        ),
        (
            "opcode above the bound version (wl_seat.release at 4)",
            send([seat_at(4), msg(3, wl_seat::req::RELEASE, &[])].concat()),
            Error(INVALID_METHOD),
        ),
        (
            "wl_keyboard.release on a version 2 seat",
            send([seat_at(2), get_keyboard(4), keyboard_release(4)].concat()),
            Error(INVALID_METHOD),
        ),
        (
            "a request to a callback after delete_id",
            send([sync(2), msg(2, 0, &[])].concat()),
            Error(INVALID_OBJECT),
        ),
        (
            "a request to a released keyboard",
            send(
                [
                    seat_at(7),
                    get_keyboard(4),
                    keyboard_release(4),
                    keyboard_release(4),
                ]
                .concat(),
            ),
            Error(INVALID_OBJECT),
        ),
        (
            "wl_seat.get_pointer on a keyboard-only seat",
            send([seat_at(7), msg(3, wl_seat::req::GET_POINTER, &[u(4)])].concat()),
            Error(MISSING_CAPABILITY),
        ),
        // New ids.
        (
            "a new id already in use",
            send([get_registry(), get_registry()].concat()),
            Error(INVALID_OBJECT),
        ),
        (
            "new id 1, wl_display's",
            send(msg(1, 0, &[u(1)])),
            Error(INVALID_OBJECT),
        ),
        (
            "a new id in the server's range",
            send(msg(1, 0, &[u(0xff00_0000)])),
            Error(INVALID_OBJECT),
        ),
        (
            "new id 0xffffffff",
            send(msg(1, 0, &[u(u32::MAX)])),
            Error(INVALID_OBJECT),
        ),
        (
            "a null new id",
            send(msg(1, 0, &[u(0)])),
            Error(INVALID_METHOD),
        ),
        (
            "a new id far past the next free one",
            send(msg(1, 0, &[u(40)])),
            Error(INVALID_OBJECT),
        ),
        (
            "get_keyboard with the seat's own id",
            send([seat_at(7), msg(3, wl_seat::req::GET_KEYBOARD, &[u(3)])].concat()),
            Error(INVALID_OBJECT),
        ),
        // wl_registry.bind.
        (
            "bind to an unknown global name",
            send([get_registry(), bind(99, c"wl_seat", 1, 3)].concat()),
            Error(INVALID_OBJECT),
        ),
        (
            "bind to global name 0",
            send([get_registry(), bind(0, c"wl_seat", 1, 3)].concat()),
            Error(INVALID_OBJECT),
        ),
        (
            "bind with the wrong interface",
            send([get_registry(), bind(1, c"wl_output", 1, 3)].concat()),
            Error(INVALID_OBJECT),
        ),
        (
            "bind to an interface nobody knows",
            send([get_registry(), bind(1, c"zz_unknown_v9", 1, 3)].concat()),
            Error(INVALID_OBJECT),
        ),
        ("bind at version 0", send(seat_at(0)), Error(INVALID_OBJECT)),
        (
            "bind above the advertised version",
            send(seat_at(top + 1)),
            Error(INVALID_OBJECT),
        ),
        (
            "bind at version 0xffffffff",
            send(seat_at(u32::MAX)),
            Error(INVALID_OBJECT),
        ),
        // Strings and lengths.
        (
            "a string without its NUL",
            send(raw_bind([u(8), b"wl_seats".to_vec()].concat())),
            Error(INVALID_METHOD),
        ),
        (
            "a string with an interior NUL",
            send(raw_bind([u(8), b"wl\0seat\0".to_vec()].concat())),
            Error(INVALID_METHOD),
        ),
        (
            "a string length running past the message",
            send(raw_bind(u(100))),
            Error(INVALID_METHOD),
        ),
        (
            "a string length of 0xffffffff",
            send(raw_bind(u(u32::MAX))),
            Error(INVALID_METHOD),
        ),
        (
            "a null string where none is allowed",
            send(raw_bind(u(0))),
            Error(INVALID_METHOD),
        ),
        (
            "a missing argument",
            send(msg(1, 0, &[])),
            Error(INVALID_METHOD),
        ),
        (
            "bytes after the last argument",
            send(msg(1, 0, &[u(2), u(5)])),
            Error(INVALID_METHOD),
        ),
        // File descriptors.
        (
            "fds with a partial header, then close",
            with_fds(vec![1], 3, 1, true),
            Hangup,
        ),
        (
            "fds with a cut message, then close",
            with_fds(header(1, 0, 12), 28, 1, true),
            Hangup,
        ),
        (
            "fds with a request that takes none",
            with_fds(sync(2), 3, 1, false),
            Served(2),
        ),
        (
            "28 fds with a request that takes none",
            with_fds(sync(2), 28, 1, false),
            Served(2),
        ),
        // More than 28 left with no message to take them: closed at once.
        (
            "253 fds in one sendmsg",
            with_fds(sync(2), 253, 1, false),
            Error(INVALID_METHOD),
        ),
        (
            "29 fds with a request that takes none",
            with_fds(sync(2), 29, 1, false),
            Error(INVALID_METHOD),
        ),
        (
            "a stream of fds faster than messages",
            with_fds(sync(2), 253, 8, false),
            Disconnect,
        ),
        // Legal bytes in an odd shape.
        (
            "a sync in single-byte writes",
            Action::SingleBytes(sync(2)),
            Served(2),
        ),
        (
            "seat, keyboard and sync in single-byte writes",
            Action::SingleBytes([seat_at(7), get_keyboard(4), sync(5)].concat()),
            Served(5),
        ),
    ];
    // Random bytes, alone and after a valid prefix.
    for (name, seed, len) in [
        ("random bytes (16)", 1, 16),
        ("random bytes (256)", 2, 256),
        ("random bytes (4096)", 3, 4096),
    ] {
        all.push((name, send_then_close(random_bytes(seed, len)), Disconnect));
    }
    let prefixed = [seat_at(7), get_keyboard(4), random_bytes(4, 512)].concat();
    all.push((
        "random bytes after a valid prefix",
        send_then_close(prefixed),
        Disconnect,
    ));
    all
}
