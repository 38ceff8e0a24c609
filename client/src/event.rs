//! Received events as owned values, so they can wait in a queue.
//!
//! This module is the client's counterpart to [`waypass_protocol::Message`]:
//! a decoded message borrows its strings and arrays from the connection's
//! input buffer, which the next `recvmsg` overwrites. An [`Event`] copies
//! them out and keeps its fds as [`OwnedFd`], so an event can sit in the
//! session's queue until a caller asks for it. It is not a dispatcher: it
//! knows nothing of sockets or of what an event means.
//!
//! # Implementation notes
//!
//! Fds left inside an [`Event`] are closed when the event is dropped, so an
//! event nobody handles (say a `wl_keyboard.keymap` that arrives after the
//! caller stopped listening) leaks nothing.

use std::ffi::CString;
use std::os::fd::OwnedFd;

use waypass_protocol::{Arg, Fixed, Interface, Message, MessageDesc};

/// One argument of a received event, owned.
#[derive(Debug)]
pub enum EventArg {
    /// `int`.
    Int(i32),
    /// `uint`.
    Uint(u32),
    /// `fixed`.
    Fixed(Fixed),
    /// `string`; `None` is the null string.
    Str(Option<CString>),
    /// `object`; 0 is the null object.
    Object(u32),
    /// `new_id`: an object the server created.
    NewId(u32),
    /// `array`.
    Array(Vec<u8>),
    /// `fd`; `None` once taken with [`Event::take_fd`].
    Fd(Option<OwnedFd>),
}

/// A received event: the object it came from, its interface and opcode,
/// and its arguments in signature order.
#[derive(Debug)]
pub struct Event {
    /// The object the event was sent from.
    pub object: u32,
    /// That object's interface.
    pub interface: &'static Interface,
    /// The event's opcode in that interface.
    pub opcode: u16,
    /// The arguments in signature order.
    pub args: Vec<EventArg>,
    desc: &'static MessageDesc,
}

impl Event {
    /// Copies a decoded message out of the input buffer.
    pub(crate) fn from_message(
        message: Message<'_>,
        interface: &'static Interface,
        desc: &'static MessageDesc,
    ) -> Event {
        let args = message
            .args
            .into_iter()
            .map(|a| match a {
                Arg::Int(v) => EventArg::Int(v),
                Arg::Uint(v) => EventArg::Uint(v),
                Arg::Fixed(v) => EventArg::Fixed(v),
                Arg::Str(s) => EventArg::Str(s.map(CString::from)),
                Arg::Object(v) => EventArg::Object(v),
                Arg::NewId(v) => EventArg::NewId(v),
                Arg::Array(b) => EventArg::Array(b.to_vec()),
                Arg::Fd(fd) => EventArg::Fd(Some(fd)),
            })
            .collect();
        Event {
            object: message.sender,
            interface,
            opcode: message.opcode,
            args,
            desc,
        }
    }

    /// The event's signature.
    pub fn desc(&self) -> &'static MessageDesc {
        self.desc
    }

    /// The event's name, e.g. `keymap`.
    pub fn name(&self) -> &'static str {
        self.desc.name
    }

    /// Whether this is event `opcode` of `interface`.
    pub fn is(&self, interface: &Interface, opcode: u16) -> bool {
        self.interface == interface && self.opcode == opcode
    }

    /// Argument `index` as a `uint` (or an `int`, reinterpreted), if it is one.
    pub fn uint(&self, index: usize) -> Option<u32> {
        match self.args.get(index)? {
            EventArg::Uint(v) | EventArg::Object(v) | EventArg::NewId(v) => Some(*v),
            EventArg::Int(v) => Some(*v as u32),
            _ => None,
        }
    }

    /// Argument `index` as an `int` (or a `uint`, reinterpreted), if it is one.
    pub fn int(&self, index: usize) -> Option<i32> {
        match self.args.get(index)? {
            EventArg::Int(v) => Some(*v),
            EventArg::Uint(v) => Some(*v as i32),
            _ => None,
        }
    }

    /// Argument `index` as text (invalid UTF-8 replaced), if it is a
    /// non-null string.
    pub fn string(&self, index: usize) -> Option<String> {
        match self.args.get(index)? {
            EventArg::Str(Some(s)) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        }
    }

    /// Takes the fd of argument `index`, if it is an fd not taken yet.
    pub fn take_fd(&mut self, index: usize) -> Option<OwnedFd> {
        match self.args.get_mut(index)? {
            EventArg::Fd(fd) => fd.take(),
            _ => None,
        }
    }
}
