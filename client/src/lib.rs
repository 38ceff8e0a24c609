//! `waypass-client`: read the keymap from waypass-server or any Wayland
//! compositor.
//!
//! The crate is a small blocking Wayland client. [`Session`] is the
//! generic part (object map, event queue, round trips, `wl_display` errors,
//! `WAYLAND_DEBUG=client` tracing) and is meant to grow further requests.
//! [`fetch_keymap`] and [`KeymapWatcher`] do the keyboard handshake on top
//! of it, and [`ReceivedKeymap`] is what comes out: layout names, keycode
//! range, what a key types at a layout and modifier state, the raw text, and
//! what the keymap fd was (memfd or not, seals).
//!
//! It is not a toolkit: no surfaces, no input handling beyond the keymap.
//! It is single-threaded. Its calls block, with bounded waits: each call
//! takes one timeout that bounds all of it ([`Deadline`]). An event loop
//! can drive it instead: [`Session`] and [`KeymapWatcher`] expose their fd
//! ([`std::os::fd::AsFd`]) and non-blocking calls
//! ([`Session::dispatch_pending`], [`Session::flush_nonblocking`],
//! [`KeymapWatcher::poll_keymap`]); `client/examples/` has a calloop and
//! a tokio one.
//!
//! The library alone does not need the command line's dependencies: with
//! `default-features = false` (no `cli` feature) it builds without clap,
//! env_logger and sha2. It re-exports [`waypass_protocol`] and
//! [`xkbcommon`](https://docs.rs/xkbcommon/0.9), and the protocol types its
//! signatures and the docs of its re-exported items use.
//!
//! ```no_run
//! use waypass_client::{fetch_keymap, FetchOptions, Modifiers};
//!
//! // An absolute path, a name under $XDG_RUNTIME_DIR, or None for the
//! // usual WAYLAND_SOCKET / WAYLAND_DISPLAY / wayland-0 search.
//! let keymap = fetch_keymap(Some("wayland-0"), FetchOptions::default())?;
//! println!("layouts {:?}, keycodes {:?}", keymap.layouts(), keymap.keycode_range());
//! // evdev 16 is the key labelled Q on a US keyboard.
//! let q = keymap.key(16, 0, Modifiers::SHIFT).expect("layout 0 exists");
//! println!("Shift+Q gives {} ({:?})", q.keysym, q.utf8);
//! # Ok::<(), waypass_client::FetchError>(())
//! ```
//!
//! # Implementation notes
//!
//! Modules are private and re-exported here: `session` (the connection
//! and object bookkeeping), `event` (owned received events), `fetch` (the
//! seat/keyboard handshake and follow mode), `keymap` (checking, mapping
//! or copying and parsing the fd; key queries and [`Modifiers`]),
//! `deadline` (one end time per call), `broker` and `peer` (the name
//! broker and its channels), `clipboard` (copy and paste, and serving the
//! pastes of a copy) and `error` (the error enums). JSON output is
//! the command line's (`cli/`, with serde_json): the library has no JSON
//! writer and no serde dependency.
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod broker;
mod clipboard;
mod deadline;
mod error;
mod event;
mod fetch;
mod keymap;
mod peer;
mod session;

pub use broker::{
    Broker, BrokerError, ConnectOptions, Failure, IncomingPeer, NameHandle, NameState, Request,
};
pub use clipboard::{
    Clipboard, ClipboardError, Selection, SendRequest, ServeOptions, Served, MAX_PASTES,
    PASTE_IDLE_TIMEOUT,
};
pub use deadline::Deadline;
pub use error::{chain_to_string, FetchError, ProtocolError, SessionError};
pub use event::{Event, EventMismatch};
pub use fetch::{fetch_keymap, FetchOptions, KeymapWatcher};
pub use keymap::{
    KeyOutput, KeymapAccess, KeymapOrigin, Modifiers, ParseOptions, ReceivedKeymap, RepeatInfo,
    FORMAT_XKB_V1, MAX_KEYMAP_SIZE, REQUIRED_SEALS,
};
pub use peer::Peer;
pub use session::{Global, Globals, ObjectInfo, Session, DEFAULT_REPLY_TIMEOUT, DISPLAY_ID};
pub use waypass_protocol::Credentials;
pub use waypass_protocol::{ChannelError, FileOffer, PeerChannel, PeerMessage};
// What the peer channel's docs refer to (its caps, and mapping an offered
// file): here, so that those links land in this crate's docs.
pub use waypass_protocol::{ReadOnlyMap, MAX_REASON_LEN, MAX_TEXT_LEN, SAFE_NAME_MAX};

// The crates whose types this one's API speaks, so that a user needs no
// matching versions of their own.
pub use waypass_protocol;
pub use xkbcommon;

// The protocol types that appear in this crate's public signatures and
// errors, reachable from here without naming `waypass_protocol`.
pub use waypass_protocol::{
    AnyNewId, ArgsMismatch, ConnectionError, DecodeError, DisplayError, FdInfo, Fixed, Flush,
    Interface, Malformed, MessageDesc, NewId, ObjectId, SealError, Seals, TraceSide, Tracer,
};

// The README's library example compiles as a doc-test of this crate.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}
