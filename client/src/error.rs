//! The client's errors: one enum for the session layer, one for fetching
//! a keymap.
//!
//! [`SessionError`] says why talking Wayland failed (connecting, the socket,
//! a malformed or unknown event, a protocol error from the server).
//! [`FetchError`] says why no usable keymap came out of it. Each variant is
//! named after the condition that failed; an underlying `io::Error` or
//! lower-layer error is its [`source()`](std::error::Error::source), never
//! repeated in its `Display`. `Display` strings are lowercase one-liners so
//! that a command line can chain them with `: `.
//!
//! This module holds no logic beyond formatting.

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use waypass_protocol::{ConnectionError, DecodeError, DisplayError, Malformed, SealError, Seals};

use crate::event::EventMismatch;

/// A `wl_display.error` event: the server found a fatal protocol error and
/// is closing the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtocolError {
    /// The id of the object the error is about.
    pub object: u32,
    /// That object's interface, as this client knew it (`"unknown"` if the
    /// id was not live here).
    pub interface: String,
    /// The interface-specific error code.
    pub code: u32,
    /// The server's message.
    pub message: String,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "protocol error on {}@{} (code {}): {}",
            self.interface, self.object, self.code, self.message
        )
    }
}

impl Error for ProtocolError {}

/// Why a Wayland session failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionError {
    /// Connecting to the display failed.
    Connect(DisplayError),
    /// Setting up the connection on a connected stream failed.
    Setup(io::Error),
    /// The server closed the connection.
    Closed,
    /// Sending or receiving failed.
    Connection(ConnectionError),
    /// `poll` failed.
    Poll(io::Error),
    /// The server sent `wl_display.error`.
    Protocol(ProtocolError),
    /// An event came from an object id this client does not know.
    UnknownObject {
        /// The sender id in the event's header.
        id: u32,
    },
    /// An event opcode does not exist on its object at the object's version.
    UnknownEvent {
        /// The sender object.
        object: u32,
        /// Its interface.
        interface: &'static str,
        /// The opcode received.
        opcode: u16,
    },
    /// A received message broke a wire rule.
    Malformed(Malformed),
    /// A received message's arguments did not decode.
    Decode(DecodeError),
    /// A request was sent on an object id that is not live.
    NoSuchObject {
        /// The id.
        id: u32,
    },
    /// Every client id up to [`waypass_protocol::MAX_CLIENT_ID`] is live:
    /// no new object can be created.
    NoFreeId,
    /// A request opcode does not exist on the object at its version.
    UnknownRequest {
        /// The object.
        object: u32,
        /// Its interface.
        interface: &'static str,
        /// The opcode asked for.
        opcode: u16,
    },
    /// The server did not answer in time.
    Timeout {
        /// What was awaited, e.g. `"wl_display.sync"`.
        waiting_for: &'static str,
        /// How long.
        waited: Duration,
    },
    /// The server advertises no global of this interface.
    NoGlobal {
        /// The interface's name.
        interface: &'static str,
    },
    /// An event was decoded as the typed event of another interface.
    EventMismatch(EventMismatch),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Connect(_) => write!(f, "cannot connect to the wayland display"),
            SessionError::Setup(_) => write!(f, "cannot set up the connection"),
            SessionError::Closed => write!(f, "the server closed the connection"),
            SessionError::Connection(_) => write!(f, "connection failed"),
            SessionError::Poll(_) => write!(f, "poll on the connection failed"),
            SessionError::Protocol(e) => e.fmt(f),
            SessionError::UnknownObject { id } => {
                write!(f, "event from unknown object id {id}")
            }
            SessionError::UnknownEvent {
                object,
                interface,
                opcode,
            } => write!(f, "unknown event opcode {opcode} on {interface}@{object}"),
            SessionError::Malformed(_) => write!(f, "malformed message from the server"),
            SessionError::Decode(_) => write!(f, "undecodable event from the server"),
            SessionError::NoSuchObject { id } => write!(f, "request on dead object id {id}"),
            SessionError::NoFreeId => write!(
                f,
                "no free object id: every id up to {} is in use",
                waypass_protocol::MAX_CLIENT_ID
            ),
            SessionError::UnknownRequest {
                object,
                interface,
                opcode,
            } => write!(f, "no request opcode {opcode} on {interface}@{object}"),
            SessionError::Timeout {
                waiting_for,
                waited,
            } => write!(
                f,
                "no answer to {waiting_for} within {} ms",
                waited.as_millis()
            ),
            SessionError::NoGlobal { interface } => {
                write!(f, "the server does not offer {interface}")
            }
            SessionError::EventMismatch(e) => e.fmt(f),
        }
    }
}

impl Error for SessionError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            SessionError::Connect(e) => Some(e),
            SessionError::Setup(e) | SessionError::Poll(e) => Some(e),
            SessionError::Connection(e) => Some(e),
            SessionError::Malformed(e) => Some(e),
            SessionError::Decode(e) => Some(e),
            // Its text is ours; its source (the args') is the next.
            SessionError::EventMismatch(e) => e.source(),
            _ => None,
        }
    }
}

/// Why no usable keymap was fetched.
///
/// What the session says (no compositor at that address, the server's
/// `wl_display.error`, a timeout, a closed socket) is
/// [`FetchError::Session`], as in the crate's other errors: a protocol
/// error is `FetchError::Session(SessionError::Protocol(_))` and nothing
/// else.
#[derive(Debug)]
#[non_exhaustive]
pub enum FetchError {
    /// The registry advertised no `wl_seat`.
    NoSeat,
    /// The seat never announced the keyboard capability.
    NoKeyboard {
        /// The seat's name, if it sent one.
        seat: Option<String>,
        /// How long the client waited for the capability.
        waited: Duration,
    },
    /// The keyboard sent no keymap in time.
    NoKeymap {
        /// How long the client waited.
        waited: Duration,
    },
    /// The keymap format is not `xkb_v1` (1).
    UnsupportedFormat(u32),
    /// The announced size is 0 or larger than the file.
    BadSize {
        /// The size in the `keymap` event.
        size: u64,
        /// The file's size from `fstat`.
        file_size: u64,
    },
    /// The announced size is past [`crate::MAX_KEYMAP_SIZE`].
    TooLarge {
        /// The size in the `keymap` event.
        size: u64,
        /// The cap.
        max: u64,
    },
    /// The file ended before the announced size while it was read: it
    /// shrank after the size check (an unsealed file truncated by its owner).
    ShortRead {
        /// The size in the `keymap` event.
        size: u64,
        /// How many bytes were there.
        read: u64,
    },
    /// `pread` on the keymap fd failed.
    Read(io::Error),
    /// `fstat` or `F_GET_SEALS` on the keymap fd failed.
    Inspect(SealError),
    /// Mapping the keymap failed.
    Map(SealError),
    /// The keymap text is not UTF-8.
    NotUtf8(std::str::Utf8Error),
    /// xkbcommon rejected the keymap text.
    Parse,
    /// The caller required SHRINK, GROW and WRITE seals and they are not all set.
    SealsMissing {
        /// The seals the fd has (`None`: the file cannot be sealed).
        have: Option<Seals>,
    },
    /// The session failed: no compositor at that address
    /// ([`SessionError::Connect`]), the server's `wl_display.error`
    /// ([`SessionError::Protocol`]), the socket, malformed data, a timeout.
    Session(SessionError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::NoSeat => write!(f, "the compositor advertises no wl_seat"),
            FetchError::NoKeyboard { seat, waited } => {
                match seat {
                    Some(name) => write!(f, "seat \"{name}\" has no keyboard")?,
                    None => write!(f, "the seat has no keyboard")?,
                }
                write!(
                    f,
                    " (waited {} ms for the capability)",
                    waited.as_millis()
                )
            }
            FetchError::NoKeymap { waited } => write!(
                f,
                "the keyboard sent no keymap within {} ms",
                waited.as_millis()
            ),
            FetchError::UnsupportedFormat(format) => write!(
                f,
                "unsupported keymap format {format} (only xkb_v1 = 1 is understood)"
            ),
            FetchError::BadSize { size, file_size } => write!(
                f,
                "bad keymap size {size}: the file holds {file_size} bytes (need 0 < size <= file size)"
            ),
            FetchError::TooLarge { size, max } => write!(
                f,
                "keymap size {size} is past the limit of {max} bytes"
            ),
            FetchError::ShortRead { size, read } => write!(
                f,
                "the keymap file shrank while it was read: {read} of {size} bytes \
                 (the server truncated an unsealed file)"
            ),
            FetchError::Read(_) => write!(f, "cannot read the keymap fd"),
            FetchError::Inspect(_) => write!(f, "cannot inspect the keymap fd"),
            FetchError::Map(_) => write!(f, "cannot map the keymap"),
            FetchError::NotUtf8(_) => write!(f, "the keymap text is not utf-8"),
            FetchError::Parse => write!(f, "xkbcommon cannot parse the keymap"),
            FetchError::SealsMissing { have } => {
                write!(f, "the keymap fd lacks the shrink, grow and write seals (it has: ")?;
                match have {
                    None => write!(f, "no sealing support)"),
                    Some(s) if s.0 == 0 => write!(f, "none)"),
                    Some(s) => write!(f, "{})", s.names().join(" ")),
                }
            }
            FetchError::Session(SessionError::Connect(_)) => {
                write!(f, "cannot reach a wayland compositor")
            }
            FetchError::Session(e) => e.fmt(f),
        }
    }
}

impl Error for FetchError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            FetchError::Inspect(e) | FetchError::Map(e) => Some(e),
            FetchError::NotUtf8(e) => Some(e),
            FetchError::Read(e) => Some(e),
            // The session error's own text is already our Display; chain
            // from its source so nothing prints twice.
            FetchError::Session(e) => e.source(),
            _ => None,
        }
    }
}

impl From<SessionError> for FetchError {
    fn from(e: SessionError) -> Self {
        FetchError::Session(e)
    }
}

impl From<SealError> for FetchError {
    /// Size problems become [`FetchError::BadSize`]; anything else is a
    /// mapping failure.
    fn from(e: SealError) -> Self {
        match e {
            SealError::EmptySize => FetchError::BadSize {
                size: 0,
                file_size: 0,
            },
            SealError::SizeBeyondFile { size, file_size } => {
                FetchError::BadSize { size, file_size }
            }
            other => FetchError::Map(other),
        }
    }
}

/// Writes `err` and its chain of sources as one line: `a: b: c` (the
/// protocol crate's [`waypass_protocol::error_chain`], under this name).
pub use waypass_protocol::error_chain as chain_to_string;

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::{BrokerError, ClipboardError};

    /// `e` as a chain printer sees it: its text, then each source's.
    fn links(e: &dyn Error) -> Vec<String> {
        let mut links = vec![e.to_string()];
        let mut next = e.source();
        while let Some(source) = next {
            links.push(source.to_string());
            next = source.source();
        }
        links
    }

    /// No link repeats the text of the one below it, neither whole nor
    /// as its `...: cause` tail.
    fn told_once(e: &dyn Error) -> Vec<String> {
        let links = links(e);
        for pair in links.windows(2) {
            let repeated = pair[0] == pair[1] || pair[0].ends_with(&format!(": {}", pair[1]));
            assert!(!repeated, "said twice: {links:?}");
        }
        links
    }

    fn eio() -> io::Error {
        io::Error::from_raw_os_error(5)
    }

    fn session_errors() -> Vec<SessionError> {
        vec![
            SessionError::Connection(ConnectionError::Recv(eio())),
            SessionError::Connect(DisplayError::Connect {
                path: PathBuf::from("/run/user/1/wayland-9"),
                source: io::Error::from_raw_os_error(2),
            }),
            SessionError::Setup(eio()),
            SessionError::Malformed(Malformed::SizeNotAligned(13)),
            SessionError::Closed,
        ]
    }

    #[test]
    fn session_fetch_broker_and_clipboard_errors_say_each_cause_once() {
        for e in session_errors() {
            told_once(&e);
        }
        for e in session_errors() {
            told_once(&FetchError::Session(e));
        }
        for e in session_errors() {
            told_once(&BrokerError::Session(e));
        }
        for e in session_errors() {
            // The clipboard names its own layer, then the session's chain.
            let links = told_once(&ClipboardError::Session(e));
            assert_eq!(links[0], "clipboard connection failed");
        }
        told_once(&FetchError::Read(eio()));
        told_once(&FetchError::Map(SealError::Map(eio())));
        told_once(&BrokerError::ChannelSetup(eio()));
        told_once(&ClipboardError::Pipe(eio()));
    }

    #[test]
    fn a_wrapped_session_error_reads_as_the_session_error() {
        let session = SessionError::Connection(ConnectionError::Recv(eio()));
        let expected = links(&session);
        assert_eq!(links(&FetchError::Session(session)), expected);
        assert_eq!(
            expected[..2],
            ["connection failed".to_string(), "recvmsg failed".into()]
        );
    }

    #[test]
    fn a_fetch_error_from_the_session_reads_as_before_the_single_path() {
        let protocol = ProtocolError {
            object: 3,
            interface: "wl_seat".into(),
            code: 5,
            message: "no".into(),
        };
        let fetch = FetchError::from(SessionError::Protocol(protocol.clone()));
        assert_eq!(
            fetch.to_string(),
            "protocol error on wl_seat@3 (code 5): no"
        );
        assert!(matches!(fetch, FetchError::Session(SessionError::Protocol(p)) if p == protocol));

        let connect = FetchError::from(SessionError::Connect(DisplayError::NoRuntimeDir));
        let links = told_once(&connect);
        assert_eq!(links[0], "cannot reach a wayland compositor");
        assert_eq!(links[1], DisplayError::NoRuntimeDir.to_string());
    }

    #[test]
    fn every_public_error_is_an_error() {
        fn is_error<E: Error + Send + Sync + 'static>() {}
        is_error::<SessionError>();
        is_error::<FetchError>();
        is_error::<ProtocolError>();
        is_error::<BrokerError>();
        is_error::<ClipboardError>();
        is_error::<waypass_protocol::ChannelError>();
        is_error::<waypass_protocol::ConnectionError>();
        is_error::<waypass_protocol::DisplayError>();
        is_error::<waypass_protocol::SealError>();
        is_error::<waypass_protocol::DecodeError>();
        is_error::<waypass_protocol::Malformed>();
        is_error::<waypass_protocol::LookupError>();
        is_error::<waypass_protocol::Violation>();
        is_error::<waypass_protocol::EncodeError>();
        is_error::<waypass_protocol::InsertError>();
        is_error::<waypass_protocol::NextError<SessionError>>();
    }
}
