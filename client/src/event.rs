//! Received events as owned values, so they can wait in a queue, and
//! their typed view.
//!
//! This module is the client's counterpart to [`waypass_protocol::Message`]:
//! a decoded message borrows its strings and arrays from the connection's
//! input buffer, which the next `recvmsg` overwrites. An [`Event`] copies
//! them out and keeps its fds as [`OwnedFd`], so an event can sit in the
//! session's queue until a caller asks for it; then [`Event::decode`]
//! turns it into the typed event the scanner generated for its interface
//! (`wl_seat::Event::Name { name }`), borrowing the strings and taking the
//! fds. It is not a dispatcher: it knows nothing of sockets or of what an
//! event means.
//!
//! # Implementation notes
//!
//! - The arguments are stored in wire order and reach the typed enum
//!   through its `from_args`, the same conversion the codec's own
//!   messages go through: no second decoder of argument positions.
//! - Fds left inside an [`Event`] are closed when the event is dropped, so
//!   an event nobody handles (say a `wl_keyboard.keymap` that arrives after
//!   the caller stopped listening) leaks nothing. Decoding moves them into
//!   the typed event; decoding the same event again finds them gone, which
//!   is an [`EventMismatch`], not a panic.

use std::ffi::CString;
use std::fmt;
use std::os::fd::OwnedFd;

use waypass_protocol::{
    Arg, ArgsMismatch, Fixed, InterfaceType, Message, MessageDesc, ObjectId, TypedMessage,
};

use waypass_protocol::Interface;

/// One argument of a received event, owned.
#[derive(Debug)]
enum EventArg {
    Int(i32),
    Uint(u32),
    Fixed(Fixed),
    Str(Option<CString>),
    Object(u32),
    NewId(u32),
    Array(Vec<u8>),
    /// `None` once a decode took it.
    Fd(Option<OwnedFd>),
}

/// A received event: the object it came from, that object's interface,
/// and its arguments, to read as a typed event with [`Event::decode`].
///
/// ```no_run
/// use waypass_client::Session;
/// use waypass_client::waypass_protocol::protocols::wayland::wl_seat::{self, WlSeat};
///
/// let mut session = Session::connect(None)?;
/// let seat = session.bind_global::<WlSeat>(2)?;
/// let mut ev = session.next_event_from(seat)?;
/// match ev.decode::<WlSeat>()? {
///     wl_seat::Event::Capabilities { capabilities } => println!("{capabilities:?}"),
///     wl_seat::Event::Name { name } => println!("seat {name:?}"),
/// }
/// # Ok::<(), waypass_client::SessionError>(())
/// ```
#[derive(Debug)]
pub struct Event {
    /// The object the event was sent from.
    pub object: u32,
    /// That object's interface.
    pub interface: &'static Interface,
    opcode: u16,
    args: Vec<EventArg>,
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

    /// The event's entry in its interface's table.
    pub fn desc(&self) -> &'static MessageDesc {
        self.desc
    }

    /// The event's name, e.g. `keymap`.
    pub fn name(&self) -> &'static str {
        self.desc.name
    }

    /// Whether the event came from `object`, an object of interface `I`.
    pub fn is_from<I: InterfaceType>(&self, object: ObjectId<I>) -> bool {
        self.object == object.raw() && self.interface.name == I::INTERFACE.name
    }

    /// Whether the event came from an object of interface `I`.
    pub fn is_of<I: InterfaceType>(&self) -> bool {
        self.interface.name == I::INTERFACE.name
    }

    /// The event as `I`'s typed event, its strings borrowed from this one
    /// and its fds moved out (so they belong to whoever decodes). An event
    /// of another interface, or one whose fds a decode already took, is an
    /// [`EventMismatch`].
    pub fn decode<I: InterfaceType>(&mut self) -> Result<I::Event<'_, OwnedFd>, EventMismatch> {
        if !self.is_of::<I>() {
            return Err(EventMismatch::new(self, I::INTERFACE.name));
        }
        self.decode_as::<I>()
    }

    /// [`Event::decode`] without the interface check: for an interface
    /// with the same wire shape as `I` (the twin data-control protocols).
    pub(crate) fn decode_as<I: InterfaceType>(
        &mut self,
    ) -> Result<I::Event<'_, OwnedFd>, EventMismatch> {
        let (object, interface, name) = (self.object, self.interface.name, self.desc.name);
        let args = self.args.iter_mut().map(|a| match a {
            EventArg::Int(v) => Some(Arg::Int(*v)),
            EventArg::Uint(v) => Some(Arg::Uint(*v)),
            EventArg::Fixed(v) => Some(Arg::Fixed(*v)),
            EventArg::Str(s) => Some(Arg::Str(s.as_deref())),
            EventArg::Object(v) => Some(Arg::Object(*v)),
            EventArg::NewId(v) => Some(Arg::NewId(*v)),
            EventArg::Array(b) => Some(Arg::Array(b.as_slice())),
            EventArg::Fd(fd) => fd.take().map(Arg::Fd),
        });
        // A taken fd ends the arguments early: from_args sees one missing.
        I::Event::from_args(self.opcode, args.map_while(|a| a)).map_err(|args: ArgsMismatch| {
            EventMismatch {
                event: format!("{interface}@{object}.{name}"),
                expected: I::INTERFACE.name,
                args: Some(args),
            }
        })
    }

    /// Objects the server creates in this event: each `new_id` argument's
    /// id and interface.
    pub(crate) fn new_ids(&self) -> impl Iterator<Item = (u32, &'static Interface)> + '_ {
        self.args
            .iter()
            .zip(self.desc.args)
            .filter_map(|(value, arg)| match (value, arg.interface) {
                (EventArg::NewId(id), Some(iface)) => Some((*id, iface)),
                _ => None,
            })
    }
}

/// An event read as the typed event of an interface it does not belong
/// to, or whose fds were already taken by an earlier decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMismatch {
    /// The event's interface and name, `wl_seat@3.name`.
    pub event: String,
    /// The interface it was decoded as.
    pub expected: &'static str,
    /// The arguments' mismatch, when the interface was right.
    pub args: Option<ArgsMismatch>,
}

impl EventMismatch {
    fn new(event: &Event, expected: &'static str) -> Self {
        EventMismatch {
            event: format!("{}@{}.{}", event.interface.name, event.object, event.name()),
            expected,
            args: None,
        }
    }
}

impl fmt::Display for EventMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.args {
            None => write!(f, "{} is not an event of {}", self.event, self.expected),
            Some(_) => write!(
                f,
                "{} does not decode as {} (its fds already taken?)",
                self.event, self.expected
            ),
        }
    }
}

impl std::error::Error for EventMismatch {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.args.as_ref().map(|a| a as _)
    }
}

impl From<EventMismatch> for crate::SessionError {
    fn from(e: EventMismatch) -> Self {
        crate::SessionError::EventMismatch(e)
    }
}
