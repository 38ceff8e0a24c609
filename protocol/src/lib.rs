//! The Wayland wire protocol, fd passing and sealed files for waypass.
//!
//! (Crate docs and the doc-test example are being written.)
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod connection;
mod debug;
mod display;
pub mod interface;
mod map;
pub mod protocols;
mod sealed;
pub mod wire;

pub use connection::{
    Connection, ConnectionError, Flush, Incoming, Limits, NextError, Outgoing, Recv,
};
pub use debug::{format_trace, parse_trace_line, Direction, TraceLine, TraceSide, Tracer};
pub use display::{connect_to_display, connect_to_path, socket_path, DisplayError, SUN_PATH_MAX};
pub use interface::{ArgDesc, ArgKind, Interface, LookupError, MessageDesc};
pub use map::{InsertError, ObjectMap, Side, SERVER_ID_START};
pub use sealed::{inspect_fd, FdInfo, ReadOnlyMap, SealError, SealedFile, Seals};
pub use wire::{Arg, DecodeError, EncodeError, Fixed, Header, Malformed, Message};
