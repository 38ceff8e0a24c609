//! Static descriptions of Wayland interfaces: names, versions, and the
//! signature of every request and event.
//!
//! This module is data only. The codec in [`crate::wire`] reads a
//! [`MessageDesc`] to know how many words, strings and fds a message has; the
//! tracer prints names from it; the server and client look up opcodes in it.
//! It performs no I/O and knows nothing of sockets.
//!
//! # Implementation notes
//!
//! An untyped `new_id` (as in `wl_registry.bind`) is spelled out in the
//! table the way it travels on the wire: a `string` (interface name), a
//! `uint` (version) and a `new_id` with no interface, exactly as libwayland's
//! `"sun"` signature does, so the codec needs no special case. The tables
//! themselves are generated from protocol XML by `waypass_scanner`.

/// The wire type of one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgKind {
    /// `int`: a signed 32-bit word.
    Int,
    /// `uint`: an unsigned 32-bit word.
    Uint,
    /// `fixed`: a signed 24.8 fixed-point word.
    Fixed,
    /// `string`: length (NUL included), bytes, NUL, padding.
    String,
    /// `object`: the id of an existing object, 0 for null.
    Object,
    /// `new_id`: the id of an object this message creates.
    NewId,
    /// `array`: length in bytes, bytes, padding.
    Array,
    /// `fd`: no bytes; one fd from the ancillary data queue.
    Fd,
}

/// One argument of a message signature.
#[derive(Debug, Clone, Copy)]
pub struct ArgDesc {
    /// The argument's name in the protocol XML.
    pub name: &'static str,
    /// Its wire type.
    pub kind: ArgKind,
    /// `allow-null="true"` (strings and objects only).
    pub nullable: bool,
    /// For `object` and `new_id`: the interface, when the XML fixes one.
    pub interface: Option<&'static Interface>,
}

/// One request or event.
#[derive(Debug, Clone, Copy)]
pub struct MessageDesc {
    /// The message's name in the protocol XML.
    pub name: &'static str,
    /// The interface version that introduced it (`since`, 1 when absent).
    pub since: u32,
    /// `type="destructor"`: the object is gone once this is sent.
    pub destructor: bool,
    /// The arguments in wire order.
    pub args: &'static [ArgDesc],
}

impl MessageDesc {
    /// How many fds a message of this signature carries.
    pub fn fd_count(&self) -> usize {
        self.args.iter().filter(|a| a.kind == ArgKind::Fd).count()
    }
}

/// An interface: its name, the highest version this crate implements, and
/// its requests and events indexed by opcode.
#[derive(Debug)]
pub struct Interface {
    /// The interface name, e.g. `wl_seat`.
    pub name: &'static str,
    /// The highest version described here.
    pub version: u32,
    /// Requests (client to server), indexed by opcode.
    pub requests: &'static [MessageDesc],
    /// Events (server to client), indexed by opcode.
    pub events: &'static [MessageDesc],
}

impl Interface {
    /// The request with this opcode, if it exists at `version`.
    pub fn request(&self, opcode: u16, version: u32) -> Result<&'static MessageDesc, LookupError> {
        lookup(self.requests, opcode, version)
    }

    /// The event with this opcode, if it exists at `version`.
    pub fn event(&self, opcode: u16, version: u32) -> Result<&'static MessageDesc, LookupError> {
        lookup(self.events, opcode, version)
    }

    /// The opcode of the request called `name`.
    pub fn request_opcode(&self, name: &str) -> Option<u16> {
        self.requests
            .iter()
            .position(|m| m.name == name)
            .map(|i| i as u16)
    }

    /// The opcode of the event called `name`.
    pub fn event_opcode(&self, name: &str) -> Option<u16> {
        self.events
            .iter()
            .position(|m| m.name == name)
            .map(|i| i as u16)
    }
}

impl PartialEq for Interface {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other) || self.name == other.name
    }
}

impl Eq for Interface {}

/// Why a message could not be looked up in an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupError {
    /// No message has this opcode.
    UnknownOpcode,
    /// The message exists but needs a higher version than the object's.
    NotAtVersion {
        /// The version the message needs.
        since: u32,
    },
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::UnknownOpcode => f.write_str("no message has this opcode"),
            LookupError::NotAtVersion { since } => {
                write!(f, "the message needs version {since} of its interface")
            }
        }
    }
}

impl std::error::Error for LookupError {}

fn lookup(
    table: &'static [MessageDesc],
    opcode: u16,
    version: u32,
) -> Result<&'static MessageDesc, LookupError> {
    let desc = table
        .get(opcode as usize)
        .ok_or(LookupError::UnknownOpcode)?;
    if desc.since > version {
        return Err(LookupError::NotAtVersion { since: desc.since });
    }
    Ok(desc)
}

/// Shorthand for writing argument tables in tests (real tables are
/// generated from XML by `waypass_scanner::interfaces!`).
#[cfg(test)]
pub(crate) const fn arg(name: &'static str, kind: ArgKind) -> ArgDesc {
    ArgDesc {
        name,
        kind,
        nullable: false,
        interface: None,
    }
}

/// Shorthand for a nullable `string` or `object` argument, in tests.
#[cfg(test)]
pub(crate) const fn nullable(mut desc: ArgDesc) -> ArgDesc {
    desc.nullable = true;
    desc
}

/// Shorthand for a message, in tests.
#[cfg(test)]
pub(crate) const fn msg(name: &'static str, since: u32, args: &'static [ArgDesc]) -> MessageDesc {
    MessageDesc {
        name,
        since,
        destructor: false,
        args,
    }
}
