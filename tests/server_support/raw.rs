//! A raw Wayland peer over a plain `UnixStream`, for sending messages no
//! well-behaved library would send, and reading what the server answers.
//!
//! It encodes by hand (so the tests do not share the codec under test)
//! and decodes only enough to find `wl_display.error`.
//!
//! Include it with `#[path = "server_support/raw.rs"] mod raw;` next to
//! `mod common;`.
#![allow(dead_code)]

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::common::PATIENCE;

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
