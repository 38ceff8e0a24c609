//! [`ClipboardError`]: why a clipboard operation failed.
//!
//! What it is: one enum for the whole [`Clipboard`](super::Clipboard),
//! each variant named after the condition that failed, with the
//! `io::Error` or session error as its `source()`. What it is not: the
//! errors of one paste being written: those end that paste only
//! (`clipboard::pastes`) and are logged, never returned.

use std::fmt;
use std::io;

use crate::error::SessionError;

/// Why a clipboard operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClipboardError {
    /// The connection failed or the server broke the protocol.
    Session(SessionError),
    /// The server offers neither data-control protocol.
    NoDataControl,
    /// The server offers no `wl_seat` (version 2 or later).
    NoSeat,
    /// No seat has the name asked for (`wl_seat.name`).
    NoSuchSeat(String),
    /// Primary selection asked of a server whose protocol lacks it.
    NoPrimary,
    /// Nothing is in that selection.
    Empty,
    /// The selection does not offer that MIME type.
    NoSuchType(String),
    /// A MIME type with a NUL byte.
    BadType(String),
    /// Creating the pipe failed.
    Pipe(io::Error),
    /// Reading the data to serve failed (its size, for
    /// [`Clipboard::serve_file`](super::Clipboard::serve_file)).
    Data(io::Error),
    /// `poll` on the connection and the pastes' pipes failed.
    Poll(io::Error),
}

impl fmt::Display for ClipboardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClipboardError::Session(_) => f.write_str("clipboard connection failed"),
            ClipboardError::NoDataControl => f.write_str(
                "the server offers no clipboard (neither ext_data_control_manager_v1 nor zwlr_data_control_manager_v1)",
            ),
            ClipboardError::NoSeat => f.write_str("the server offers no wl_seat"),
            ClipboardError::NoSuchSeat(name) => write!(f, "the server has no seat named {name:?}"),
            ClipboardError::NoPrimary => {
                f.write_str("the server's clipboard has no primary selection")
            }
            ClipboardError::Empty => f.write_str("no selection"),
            ClipboardError::NoSuchType(t) => write!(f, "the selection offers no type {t:?}"),
            ClipboardError::BadType(t) => write!(f, "MIME type {t:?} has a NUL byte"),
            ClipboardError::Pipe(_) => f.write_str("cannot create a pipe"),
            ClipboardError::Data(_) => f.write_str("cannot read the data to copy"),
            ClipboardError::Poll(_) => f.write_str("poll on the clipboard's fds failed"),
        }
    }
}

impl std::error::Error for ClipboardError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClipboardError::Session(e) => Some(e),
            ClipboardError::Pipe(e) | ClipboardError::Data(e) | ClipboardError::Poll(e) => Some(e),
            _ => None,
        }
    }
}

impl From<SessionError> for ClipboardError {
    fn from(e: SessionError) -> Self {
        ClipboardError::Session(e)
    }
}
