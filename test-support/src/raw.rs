//! A raw Wayland peer over a plain `UnixStream`, for sending messages no
//! well-behaved library would send, and reading what the server answers.
//!
//! It encodes by hand (so the tests do not share the codec under test)
//! and decodes only enough to find `wl_display.error`.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::PATIENCE;

/// One word.
pub fn u(v: u32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// A string argument: length with NUL, bytes, NUL, padding.
pub fn s(text: &str) -> Vec<u8> {
    let mut out = u(text.len() as u32 + 1);
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    while out.len() & 3 != 0 {
        out.push(0);
    }
    out
}

/// A whole message with a correct header.
pub fn msg(sender: u32, opcode: u16, args: &[Vec<u8>]) -> Vec<u8> {
    let body = args.concat();
    header(sender, opcode, 8 + body.len() as u32)
        .into_iter()
        .chain(body)
        .collect()
}

/// Just a header, with any size.
pub fn header(sender: u32, opcode: u16, size: u32) -> Vec<u8> {
    let mut out = u(sender);
    out.extend(u((size << 16) | u32::from(opcode)));
    out
}

/// A message the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The sending object.
    pub sender: u32,
    /// The opcode.
    pub opcode: u16,
    /// The arguments' bytes.
    pub body: Vec<u8>,
}

/// `wl_display.error` decoded: object, code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayError {
    /// The object the error is about.
    pub object: u32,
    /// The code.
    pub code: u32,
    /// The message.
    pub message: String,
}

/// A connection that speaks bytes.
pub struct Raw {
    pub stream: UnixStream,
}

impl Raw {
    /// Connects, with `PATIENCE` as read timeout (a hang detector).
    pub fn connect(socket: &Path) -> Raw {
        let stream = UnixStream::connect(socket).expect("connect");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Raw { stream }
    }

    /// Sends bytes; a server that already hung up is not an error here.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Sends bytes with fds as `SCM_RIGHTS`.
    pub fn send_with_fds(&mut self, bytes: &[u8], fds: &[BorrowedFd<'_>]) {
        let raw: Vec<i32> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&raw)];
        sendmsg::<()>(
            self.stream.as_raw_fd(),
            &[IoSlice::new(bytes)],
            &cmsg,
            MsgFlags::empty(),
            None,
        )
        .expect("sendmsg with fds");
    }

    /// Like [`Raw::send_with_fds`], returning `false` once the server has
    /// hung up (EPIPE, ECONNRESET) instead of panicking.
    pub fn try_send_with_fds(&mut self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> bool {
        let raw: Vec<i32> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        let cmsg = [ControlMessage::ScmRights(&raw)];
        match sendmsg::<()>(
            self.stream.as_raw_fd(),
            &[IoSlice::new(bytes)],
            &cmsg,
            MsgFlags::empty(),
            None,
        ) {
            Ok(_) => true,
            Err(nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET) => false,
            Err(e) => panic!("sendmsg with fds: {e}"),
        }
    }

    /// Reads until the server hangs up. Panics if it does not within
    /// `PATIENCE`. Fds that came along are closed by the kernel (plain
    /// `read` takes no ancillary data).
    pub fn read_until_hangup(&mut self) -> Vec<Event> {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                // The server closed with our bytes unread: same as a hang-up.
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("server did not hang up: {e}"),
            }
        }
        parse_events(&bytes)
    }

    /// `wl_display.sync(callback)`, then reads until its `done`: every
    /// event the server sent before it.
    pub fn roundtrip(&mut self, callback: u32) -> Vec<Event> {
        self.send(&msg(1, 0, &[u(callback)]));
        let mut bytes = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = self.stream.read(&mut buf).expect("the server answers");
            assert!(n > 0, "the server hung up");
            bytes.extend_from_slice(&buf[..n]);
            let events = parse_events(&bytes[..whole_messages(&bytes)]);
            if events.iter().any(|e| (e.sender, e.opcode) == (callback, 0)) {
                return events;
            }
        }
    }
}

/// Our server's ext data-control manager global (1 `wl_seat`, 2 the
/// broker, 3 ext, 4 wlr).
pub const EXT_MANAGER: u32 = 3;

/// The requests of a clipboard client: a registry (2), the seat (3, v2)
/// and an ext data-control manager (4).
pub fn ext_manager_setup() -> Vec<u8> {
    let mut bytes = msg(1, 1, &[u(2)]); // get_registry -> 2
    bytes.extend(msg(2, 0, &[u(1), s("wl_seat"), u(2), u(3)]));
    bytes.extend(msg(
        2,
        0,
        &[u(EXT_MANAGER), s("ext_data_control_manager_v1"), u(1), u(4)],
    ));
    bytes
}

/// A raw client with a seat (3), an ext manager (4) and a device (5).
pub fn raw_with_device(socket: &Path) -> Raw {
    let mut raw = Raw::connect(socket);
    let mut bytes = ext_manager_setup();
    bytes.extend(msg(4, 1, &[u(5), u(3)])); // get_data_device(5, seat 3)
    raw.send(&bytes);
    raw
}

/// The length of the whole messages at the start of `bytes`.
pub fn whole_messages(bytes: &[u8]) -> usize {
    let mut at = 0;
    while bytes.len() >= at + 8 {
        let word = u32::from_ne_bytes(bytes[at + 4..at + 8].try_into().unwrap());
        let size = (word >> 16) as usize;
        if size < 8 || at + size > bytes.len() {
            break;
        }
        at += size;
    }
    at
}

/// Splits a byte stream into events.
pub fn parse_events(mut bytes: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    while bytes.len() >= 8 {
        let word = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().unwrap());
        let sender = word(0);
        let size = (word(4) >> 16) as usize;
        let opcode = (word(4) & 0xffff) as u16;
        assert!(size >= 8 && size <= bytes.len(), "well-formed events");
        events.push(Event {
            sender,
            opcode,
            body: bytes[8..size].to_vec(),
        });
        bytes = &bytes[size..];
    }
    assert!(bytes.is_empty(), "no partial event");
    events
}

/// The `wl_display.error` among `events`, if any.
pub fn display_error(events: &[Event]) -> Option<DisplayError> {
    let e = events.iter().find(|e| e.sender == 1 && e.opcode == 0)?;
    let word = |at: usize| u32::from_ne_bytes(e.body[at..at + 4].try_into().unwrap());
    let len = word(8) as usize;
    let text = &e.body[12..12 + len];
    Some(DisplayError {
        object: word(0),
        code: word(4),
        message: String::from_utf8_lossy(text.strip_suffix(&[0]).unwrap_or(text)).into_owned(),
    })
}

/// The one global a [`serve_fake`] server announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeGlobal {
    /// `wl_seat` version 7: binding it gives `capabilities(keyboard)` and
    /// `name("raw-seat")`.
    Seat,
    /// `waypass_broker_v1` version 1, which it never answers.
    Broker,
}

/// Serves one client as a minimal compositor would, for tests of our
/// client against servers that misbehave on purpose: answers `sync`,
/// announces `global`, binds `wl_seat`, and hands each
/// `wl_seat.get_keyboard(id)` to `on_keyboard`, which answers (or not) as
/// the test wants. Returns when the client leaves or a write fails.
pub fn serve_fake(
    mut stream: UnixStream,
    global: FakeGlobal,
    mut on_keyboard: impl FnMut(u32, &mut UnixStream),
) {
    use std::collections::HashMap;
    use waypass_protocol::protocols::wayland::{wl_display, wl_registry, wl_seat};
    use waypass_protocol::{wire, Interface};

    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut objects: HashMap<u32, &'static Interface> = HashMap::new();
    objects.insert(1, &wl_display::INTERFACE);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        bytes.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while let Ok(Some((h, m))) = wire::split_message(&bytes[at..]) {
            at += usize::from(h.size);
            let word = |i: usize| u32::from_ne_bytes(m[8 + 4 * i..12 + 4 * i].try_into().unwrap());
            let Some(iface) = objects.get(&h.sender).copied() else {
                continue;
            };
            let out = match (iface.name, h.opcode, global) {
                ("wl_display", 0, _) => msg(word(0), 0, &[u(0)])
                    .into_iter()
                    .chain(msg(1, 1, &[u(word(0))]))
                    .collect(),
                ("wl_display", 1, _) => {
                    objects.insert(word(0), &wl_registry::INTERFACE);
                    match global {
                        FakeGlobal::Seat => msg(word(0), 0, &[u(1), s("wl_seat"), u(7)]),
                        FakeGlobal::Broker => {
                            msg(word(0), 0, &[u(1), s("waypass_broker_v1"), u(1)])
                        }
                    }
                }
                ("wl_registry", 0, FakeGlobal::Seat) => {
                    // name, interface string (length word + padded bytes), version, id.
                    let len = word(1) as usize;
                    let id = word(2 + len.div_ceil(4) + 1);
                    objects.insert(id, &wl_seat::INTERFACE);
                    [msg(id, 0, &[u(2)]), msg(id, 1, &[s("raw-seat")])].concat()
                }
                ("wl_seat", 1, _) => {
                    on_keyboard(word(0), &mut stream);
                    Vec::new()
                }
                _ => Vec::new(),
            };
            if stream.write_all(&out).is_err() {
                return;
            }
        }
        bytes.drain(..at);
    }
}
