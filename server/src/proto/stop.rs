//! How a handler says that a client must go: [`Stop`], with the
//! [`ProtocolError`] it posts first, and the constructors every handler
//! shares ([`no_memory`], [`over_budget`], [`bug`]).
//!
//! What it is not: the posting itself ([`crate::proto::ctx::post_error`]
//! queues `wl_display.error`; the runtime flushes and disconnects).

use std::fmt;

use waypass_protocol::protocols::wayland::wl_display;
use waypass_protocol::{ConnectionError, DISPLAY_ID};

use crate::ledger::OverBudget;

/// A protocol error to post with `wl_display.error` before disconnecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// The object the error is about.
    pub object: u32,
    /// The error code, in the object's interface's `error` enum.
    pub code: u32,
    /// A human-readable description.
    pub message: String,
}

impl ProtocolError {
    /// An error about `object` with `code` and `message`.
    pub fn new(object: u32, code: u32, message: impl Into<String>) -> Self {
        ProtocolError {
            object,
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "error {} on object {}: {}",
            self.code, self.object, self.message
        )
    }
}

impl std::error::Error for ProtocolError {}

/// Why dispatching stopped and the client must go.
#[derive(Debug)]
pub enum Stop {
    /// The client broke the protocol: post the error, flush, disconnect.
    Protocol(ProtocolError),
    /// The server could not serve the client (e.g. no fd left for its
    /// keymap): post the error, flush, disconnect, and tell the operator.
    Server(ProtocolError),
    /// Queuing a reply failed: over the outgoing cap (the client does not
    /// read) or a local failure. Nothing more can be sent.
    Queue(ConnectionError),
}

impl From<ProtocolError> for Stop {
    fn from(e: ProtocolError) -> Self {
        Stop::Protocol(e)
    }
}

/// `wl_display.error.no_memory` with `message`: a limit of the client's
/// own, reached by its own requests.
pub fn no_memory(message: impl Into<String>) -> Stop {
    Stop::Protocol(ProtocolError::new(
        DISPLAY_ID,
        wl_display::error::NO_MEMORY,
        message,
    ))
}

/// `no_memory` for a charge the ledger refused.
pub fn over_budget(over: OverBudget) -> Stop {
    no_memory(over.to_string())
}

/// A bug of ours, reported to the client as `implementation`.
pub fn bug(message: String) -> Stop {
    log::error!("bug: {message}");
    Stop::Protocol(ProtocolError::new(
        DISPLAY_ID,
        wl_display::error::IMPLEMENTATION,
        message,
    ))
}
