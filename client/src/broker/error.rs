//! The broker's errors: why a name was refused or a channel not made.
//!
//! What it is: [`BrokerError`], one enum for every broker operation of the
//! client (binding the global, registering, connecting, waiting for
//! peers), and the text of each [`Failure`], the server's reason as the
//! scanner generates it from `waypass_broker_v1.failure`. What it is not:
//! a place with logic beyond conversion and formatting.

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

pub use waypass_protocol::protocols::broker::waypass_broker_v1::Failure;

use crate::error::SessionError;

/// The text of a refusal reason, for people.
struct Reason(Failure);

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Failure::InvalidName => {
                f.write_str("invalid name (1 to 64 bytes of A-Z a-z 0-9 . _ -)")
            }
            Failure::NameTaken => f.write_str("the name is taken by another client"),
            Failure::TooManyNames => f.write_str("this client owns too many names"),
            Failure::UnknownName => f.write_str("no client has registered the name"),
            Failure::SelfConnect => f.write_str("the name is this client's own"),
            Failure::TooManyPending => f.write_str("too many pending connections"),
            Failure::Busy => f.write_str("the name's owner is busy (too many channels unread)"),
            Failure::Unknown(v) => write!(f, "failure code {v}"),
        }
    }
}

/// The text of `reason`, for people: what [`BrokerError::Refused`] says.
pub(crate) fn reason_text(reason: Failure) -> impl fmt::Display {
    Reason(reason)
}

/// What a refused request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `waypass_broker_v1.register`.
    Register,
    /// `waypass_broker_v1.connect`.
    Connect,
}

/// Why a broker operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BrokerError {
    /// The server does not advertise `waypass_broker_v1`.
    NoBroker,
    /// The server refused a register or connect (`failed(reason)`).
    Refused {
        /// What was asked.
        request: Request,
        /// The name asked for.
        name: String,
        /// The server's reason.
        reason: Failure,
    },
    /// The server did not answer in time (or, for a connect retried on
    /// `unknown_name`, nobody registered the name in time).
    NoAnswer {
        /// What was awaited.
        waiting_for: &'static str,
        /// How long.
        waited: Duration,
    },
    /// A `peer` or `established` event came without its fd.
    MissingFd,
    /// Setting up the peer channel on a received socket failed.
    ChannelSetup(io::Error),
    /// The handle is not a name of this broker, or was withdrawn.
    UnknownHandle,
    /// Talking to the server failed.
    Session(SessionError),
}

impl BrokerError {
    /// The server's reason, when this is a refusal.
    pub fn failure(&self) -> Option<Failure> {
        match self {
            BrokerError::Refused { reason, .. } => Some(*reason),
            _ => None,
        }
    }
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerError::NoBroker => {
                f.write_str("the server does not offer waypass_broker_v1 (no name broker)")
            }
            BrokerError::Refused {
                request: Request::Register,
                name,
                reason,
            } => write!(f, "cannot register name \"{name}\": {}", Reason(*reason)),
            BrokerError::Refused {
                request: Request::Connect,
                name,
                reason,
            } => write!(f, "cannot connect to \"{name}\": {}", Reason(*reason)),
            BrokerError::NoAnswer {
                waiting_for,
                waited,
            } => write!(f, "no {waiting_for} within {} ms", waited.as_millis()),
            BrokerError::MissingFd => f.write_str("the server sent a channel without its fd"),
            BrokerError::ChannelSetup(_) => f.write_str("cannot set up the peer channel"),
            BrokerError::UnknownHandle => f.write_str("no such live name on this broker"),
            BrokerError::Session(e) => e.fmt(f),
        }
    }
}

impl Error for BrokerError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BrokerError::ChannelSetup(e) => Some(e),
            // The session error's own text is already our Display.
            BrokerError::Session(e) => e.source(),
            _ => None,
        }
    }
}

impl From<SessionError> for BrokerError {
    fn from(e: SessionError) -> Self {
        BrokerError::Session(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_is_the_generated_enum_and_keeps_unknown_values() {
        assert_eq!(Failure::from(1), Failure::NameTaken);
        assert_eq!(Failure::from(9), Failure::Unknown(9));
        assert_eq!(
            reason_text(Failure::Unknown(9)).to_string(),
            "failure code 9"
        );
    }

    #[test]
    fn refusals_name_the_request_and_the_name() {
        let e = BrokerError::Refused {
            request: Request::Connect,
            name: "bob".into(),
            reason: Failure::UnknownName,
        };
        assert_eq!(
            e.to_string(),
            "cannot connect to \"bob\": no client has registered the name"
        );
        assert_eq!(e.failure(), Some(Failure::UnknownName));
    }
}
