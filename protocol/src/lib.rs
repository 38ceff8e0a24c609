//! The Wayland wire protocol, fd passing and sealed files for waypass.
//!
//! This crate is what the waypass server and client share: the bytes of
//! Wayland messages, the file descriptors that travel beside them as
//! `SCM_RIGHTS`, and the memory files that such fds usually name. The wire
//! format and the core interfaces are Wayland's own, byte for byte, so a
//! peer built on libwayland or wayland-rs understands a peer built on this.
//!
//! It is not a Wayland toolkit. It has no proxies, no event queues, no
//! dispatch and no event loop: it decodes a message and hands it over, and
//! the server or client decides what the message means. Its interface
//! tables are generated from the protocol XML by `waypass_scanner`, which
//! a crate with its own protocol uses the same way (see the crate outside
//! the workspace in `examples/custom-protocol/`).
//!
//! # Layers
//!
//! Each layer uses only the ones above it in this list.
//!
//! - [`interface`]: the types of the static tables that describe
//!   interfaces and the signature of every request and event. Data only.
//! - [`wire`]: the codec. Messages to bytes and back over plain slices and
//!   an fd queue; no I/O.
//! - [`TypedMessage`], [`ObjectId`], [`NewId`], [`AnyNewId`] and
//!   [`InterfaceType`]: what typed messages (named fields instead of
//!   positional [`Arg`]s) stand on.
//! - [`protocols`]: the tables and typed messages generated from the XML
//!   (`wl_display`, `wl_registry`, `wl_seat`, `wl_keyboard`, ... and
//!   waypass's own broker extension and the clipboard protocols).
//! - [`Connection`]: a non-blocking Unix stream socket with `sendmsg` /
//!   `recvmsg`, the buffers between the socket and the codec, and caps on
//!   everything buffered. Outgoing messages borrow fds, incoming ones own
//!   them.
//! - Beside the connection, each about one concern:
//!   - [`SealedFile`] and [`ReadOnlyMap`]: an immutable memfd to send (a
//!     keymap), and a mapping of a received fd that cannot raise `SIGBUS`.
//!   - [`connect_to_display`]: finding the server from `WAYLAND_SOCKET`,
//!     `WAYLAND_DISPLAY` and `XDG_RUNTIME_DIR`, as libwayland does.
//!   - [`Tracer`]: `WAYLAND_DEBUG` traces in libwayland's format.
//!   - [`ObjectMap`]: object ids, allocated and looked up by Wayland's rules.
//!
//! # Example
//!
//! A keymap passed over a socket pair, the way a compositor sends
//! `wl_keyboard.keymap(format, fd, size)` and a client reads it:
//!
//! ```
//! use std::os::fd::AsFd;
//! use std::os::unix::net::UnixStream;
//!
//! use waypass_protocol::protocols::wayland::wl_keyboard;
//! use waypass_protocol::{Arg, Connection, Flush, ReadOnlyMap, Recv, SealedFile};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (server_end, client_end) = UnixStream::pair()?;
//! let mut server = Connection::new(server_end)?;
//! let mut client = Connection::new(client_end)?;
//!
//! // Server: the keymap text plus its NUL, in a sealed memfd.
//! let text = "xkb_keymap { xkb_keycodes \"evdev\" { }; };";
//! let keymap = SealedFile::from_bytes("keymap", format!("{text}\0").as_bytes())?;
//! let keyboard_id = 3;
//! let keymap_event = &wl_keyboard::INTERFACE.events[usize::from(wl_keyboard::evt::KEYMAP)];
//! server.send(
//!     keyboard_id,
//!     wl_keyboard::evt::KEYMAP,
//!     keymap_event,
//!     &[
//!         Arg::Uint(wl_keyboard::keymap_format::XKB_V1),
//!         Arg::Fd(keymap.as_fd()),
//!         Arg::Uint(u32::try_from(keymap.size())?),
//!     ],
//! )?;
//! assert_eq!(server.flush()?, Flush::Done);
//!
//! // Client: receive the bytes and the fd, then decode the event.
//! assert!(matches!(client.recv()?, Recv::Data(_)));
//! let event = client
//!     .next_message(|header| {
//!         assert_eq!(header.sender, keyboard_id);
//!         Ok::<_, std::convert::Infallible>(keymap_event)
//!     })?
//!     .expect("the whole event has arrived");
//! let [Arg::Uint(format), Arg::Fd(fd), Arg::Uint(size)] = &event.args[..] else {
//!     panic!("not a keymap event: {:?}", event.args);
//! };
//! assert_eq!(*format, wl_keyboard::keymap_format::XKB_V1);
//!
//! // Map it read-only and private, then cut at the first NUL.
//! let map = ReadOnlyMap::new(fd.as_fd(), u64::from(*size))?;
//! let received = map.split(|&b| b == 0).next().unwrap_or(&[]);
//! assert_eq!(std::str::from_utf8(received)?, text);
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

// The generated tables name this crate as `::waypass_protocol`, as they do
// in any other crate.
extern crate self as waypass_protocol;

mod channel;
mod connection;
mod credentials;
mod debug;
mod display;
mod error_chain;
pub mod interface;
mod map;
pub mod protocols;
mod sealed;
mod typed;
pub mod wire;

pub use channel::{
    ChannelError, FileOffer, PeerChannel, PeerMessage, Violation, INBOX_MAX_BYTES, INBOX_MAX_FILES,
    INBOX_MAX_MESSAGES, MAX_NAME_LEN, MAX_REASON_LEN, MAX_TEXT_LEN, SAFE_NAME_MAX,
};
pub use connection::{
    Connection, ConnectionError, Flush, Incoming, Limits, NextError, Outgoing, Recv,
};
pub use credentials::Credentials;
pub use debug::{Direction, TraceSide, Tracer};
pub use display::{connect_to_display, connect_to_path, socket_path, DisplayError, SUN_PATH_MAX};
pub use error_chain::error_chain;
pub use interface::{ArgDesc, ArgKind, Interface, LookupError, MessageDesc};
pub use map::{
    InsertError, ObjectMap, Side, DISPLAY_ID, MAX_CLIENT_ID, MAX_SERVER_ID, SERVER_ID_START,
};
pub use sealed::{inspect_fd, FdInfo, ReadOnlyMap, SealError, SealedFile, Seals};
pub use typed::{AnyNewId, ArgsMismatch, InterfaceType, NewId, ObjectId, TypedMessage};
pub use waypass_scanner::interfaces;
pub use wire::{Arg, Args, DecodeError, EncodeError, Fixed, Header, Malformed, Message};

/// What the scanner's generated code calls and nothing else should: not
/// a stable API.
#[doc(hidden)]
pub mod __generated {
    pub use crate::typed::fmt_flags;
}

/// Not API: what waypass's own crates, tests and tools share, and nothing
/// else should use. It may change in any release, semver or not.
///
/// - `SharedBuffers` (with `Connection::borrow_buffers` and
///   `return_buffers`): the buffers waypass-server lends each connection for
///   one wakeup.
/// - `socket_argument`: the `--socket NAME|PATH` rule of the two command
///   lines.
/// - `parse_trace_line` and `TraceLine`: reading `WAYLAND_DEBUG` lines back,
///   for the end-to-end and interop tests.
#[doc(hidden)]
pub mod __private {
    pub use crate::connection::SharedBuffers;
    pub use crate::debug::{parse_trace_line, TraceLine};
    pub use crate::display::socket_argument;
}
