//! The broker part of the malformed-input suite: its cases, and the broker
//! exchange a well-behaved pair of clients completes after every case.
//!
//! The broker reports refusals as `failed(reason)` events on the new object,
//! not as protocol errors (see `protocol/waypass-broker-v1.xml`), so most
//! cases here expect such an event; requests on destroyed objects and bad
//! arguments still get `wl_display.error`.

use std::ffi::CStr;
use std::io::{Read, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use waypass_protocol::protocols::broker::{
    waypass_broker_v1 as broker, waypass_connection_v1 as connection, waypass_name_v1 as name,
};
use waypass_protocol::protocols::wayland::{wl_display, wl_registry};
use waypass_protocol::wire::{self, Arg};
use waypass_protocol::Interface;

use super::cases::{Action, Expect};
use waypass_test_support::load::{exchange, sync, Received};
use waypass_test_support::raw::{msg, u};

/// The name the well-behaved owner holds for the whole suite.
pub const OWNER_NAME: &CStr = c"good-owner";
/// The broker's global name (wl_seat is 1).
const BROKER_GLOBAL: u32 = 2;
/// The server's default `--max-names`.
const MAX_NAMES: usize = 16;

fn req(sender: u32, iface: &Interface, opcode: u16, args: &[Arg<'_, BorrowedFd<'_>>]) -> Vec<u8> {
    let desc = &iface.requests[usize::from(opcode)];
    let mut out = vec![0u8; wire::MAX_MESSAGE_SIZE];
    let n = wire::encode(sender, opcode, desc, args, &mut out).expect("valid request");
    out.truncate(n);
    out
}

/// Registry at 2 and `waypass_broker_v1` at 3, bound at `version`.
fn broker_at(version: u32) -> Vec<u8> {
    let get_registry = req(
        1,
        &wl_display::INTERFACE,
        wl_display::req::GET_REGISTRY,
        &[Arg::NewId(2)],
    );
    let args = [
        Arg::Uint(BROKER_GLOBAL),
        Arg::Str(Some(c"waypass_broker_v1")),
        Arg::Uint(version),
        Arg::NewId(3),
    ];
    let bind = req(2, &wl_registry::INTERFACE, wl_registry::req::BIND, &args);
    [get_registry, bind].concat()
}

fn register(id: u32, what: &CStr) -> Vec<u8> {
    let args = [Arg::NewId(id), Arg::Str(Some(what))];
    req(3, &broker::INTERFACE, broker::req::REGISTER, &args)
}

fn connect(id: u32, what: &CStr) -> Vec<u8> {
    let args = [Arg::NewId(id), Arg::Str(Some(what))];
    req(3, &broker::INTERFACE, broker::req::CONNECT, &args)
}

fn withdraw(id: u32) -> Vec<u8> {
    req(id, &name::INTERFACE, name::req::WITHDRAW, &[])
}

fn destroy_connection(id: u32) -> Vec<u8> {
    req(id, &connection::INTERFACE, connection::req::DESTROY, &[])
}

fn sent(bytes: Vec<u8>) -> Action {
    Action::Send {
        bytes,
        close_write: false,
    }
}

/// One request on a bound broker, then `sync(marker)`; `failed(reason)`
/// expected on `object`.
fn refused(prefix: Vec<u8>, object: u32, reason: u32, marker: u32) -> (Action, Expect) {
    let bytes = [broker_at(1), prefix, sync(marker)].concat();
    (
        sent(bytes),
        Expect::Failed {
            object,
            reason,
            marker,
        },
    )
}

/// The broker cases: name, action, expected answer.
pub fn cases() -> Vec<(&'static str, Action, Expect)> {
    use broker::failure::*;
    let long = std::ffi::CString::new(vec![b'a'; 65]).expect("no NUL");
    let many: Vec<u8> = (0..=MAX_NAMES as u32)
        .flat_map(|i| {
            let n = std::ffi::CString::new(format!("many-{i}")).unwrap();
            register(4 + i, &n)
        })
        .collect();
    let last = 4 + MAX_NAMES as u32;
    let one = |name, (action, expect)| (name, action, expect);
    let withdraw_twice = [broker_at(1), register(4, c"gone"), withdraw(4), withdraw(4)].concat();
    let destroy_twice = [
        broker_at(1),
        connect(4, c"nobody-here"),
        destroy_connection(4),
        destroy_connection(4),
    ]
    .concat();
    let null_name = [broker_at(1), msg(3, broker::req::REGISTER, &[u(4), u(0)])].concat();
    vec![
        one(
            "broker: an empty name",
            refused(register(4, c""), 4, INVALID_NAME, 5),
        ),
        one(
            "broker: a name with a space",
            refused(register(4, c"a b"), 4, INVALID_NAME, 5),
        ),
        one(
            "broker: a name with a slash",
            refused(register(4, c"../etc"), 4, INVALID_NAME, 5),
        ),
        one(
            "broker: a 65-byte name",
            refused(register(4, &long), 4, INVALID_NAME, 5),
        ),
        one(
            "broker: a non-ASCII name",
            refused(register(4, c"caf\xc3\xa9"), 4, INVALID_NAME, 5),
        ),
        one(
            "broker: connect to an invalid name",
            refused(connect(4, c"a b"), 4, INVALID_NAME, 5),
        ),
        one(
            "broker: a name another client owns",
            refused(register(4, OWNER_NAME), 4, NAME_TAKEN, 5),
        ),
        one(
            "broker: the same name twice",
            refused(
                [register(4, c"twice"), register(5, c"twice")].concat(),
                5,
                NAME_TAKEN,
                6,
            ),
        ),
        one(
            "broker: connect to itself",
            refused(
                [register(4, c"selfie"), connect(5, c"selfie")].concat(),
                5,
                SELF_CONNECT,
                6,
            ),
        ),
        one(
            "broker: connect to an unknown name",
            refused(connect(4, c"nobody-here"), 4, UNKNOWN_NAME, 5),
        ),
        one(
            "broker: connect to a withdrawn name",
            refused(
                [register(4, c"brief"), withdraw(4), connect(5, c"brief")].concat(),
                5,
                UNKNOWN_NAME,
                6,
            ),
        ),
        one(
            "broker: more names than allowed",
            refused(many, last, TOO_MANY_NAMES, last + 1),
        ),
        (
            "broker: a request on a withdrawn name",
            sent(withdraw_twice),
            Expect::Error(wl_display::error::INVALID_OBJECT),
        ),
        (
            "broker: a request on a destroyed connection",
            sent(destroy_twice),
            Expect::Error(wl_display::error::INVALID_OBJECT),
        ),
        (
            "broker: register with a null name",
            sent(null_name),
            Expect::Error(wl_display::error::INVALID_METHOD),
        ),
        (
            "broker: bind at version 2",
            sent(broker_at(2)),
            Expect::Error(wl_display::error::INVALID_OBJECT),
        ),
    ]
}

/// The well-behaved owner of [`OWNER_NAME`], connected for the whole suite.
pub struct Owner {
    stream: UnixStream,
}

impl Owner {
    /// Connects, binds the broker and registers [`OWNER_NAME`].
    pub fn register(socket: &Path) -> Result<Owner, String> {
        let mut stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
        let request = [broker_at(1), register(4, OWNER_NAME), sync(5)].concat();
        let got = exchange(&mut stream, &request, 5)?;
        if !got
            .events
            .iter()
            .any(|(s, o, _)| (*s, *o) == (4, name::evt::REGISTERED))
        {
            return Err(format!("not registered: {:?}", got.events));
        }
        Ok(Owner { stream })
    }
}

/// The peer end carried by an event `(object, opcode)` of `got`.
fn channel(got: Received, object: u32, opcode: u16) -> Result<UnixStream, String> {
    if !got
        .events
        .iter()
        .any(|(s, o, _)| (*s, *o) == (object, opcode))
    {
        return Err(format!("no event {object}/{opcode} in {:?}", got.events));
    }
    let mut fds = got.fds;
    if fds.len() != 1 {
        return Err(format!("{} fds instead of 1", fds.len()));
    }
    Ok(UnixStream::from(fds.remove(0)))
}

/// A fresh client connects to the owner's name; both get their end of a
/// socketpair, and a few bytes cross it directly.
pub fn broker_exchange(socket: &Path, owner: &mut Owner) -> Result<(), String> {
    let mut requester = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    let request = [broker_at(1), connect(4, OWNER_NAME), sync(5)].concat();
    let got = exchange(&mut requester, &request, 5)?;
    let mut ours = channel(got, 4, connection::evt::ESTABLISHED)?;
    // The owner's peer event was flushed with the requester's answer.
    let got = exchange(&mut owner.stream, &sync(6), 6)?;
    let mut theirs = channel(got, 4, name::evt::PEER)?;
    ours.write_all(b"ping").map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4];
    theirs
        .set_read_timeout(Some(waypass_test_support::PATIENCE))
        .ok();
    theirs
        .read_exact(&mut buf)
        .map_err(|e| format!("channel: {e}"))?;
    if &buf != b"ping" {
        return Err(format!("channel carried {buf:?}"));
    }
    Ok(())
}
