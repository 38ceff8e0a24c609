//! The broker's errors: why a name was refused or a channel not made.
//!
//! What it is: [`Failure`], the typed `waypass_broker_v1.failure` enum the
//! server answers with, and [`BrokerError`], one enum for every broker
//! operation of the client (binding the global, registering, connecting,
//! waiting for peers). What it is not: a place with logic beyond
//! conversion and formatting.

use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use waypass_protocol::protocols::broker::waypass_broker_v1::failure;

use crate::error::SessionError;

/// Why the server refused a `register` or `connect`
/// (`waypass_broker_v1.failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failure {
    /// The name is not 1 to 64 bytes of `[A-Za-z0-9._-]`.
    InvalidName,
    /// Another live name object owns the name.
    NameTaken,
    /// This client owns as many names as the server allows.
    TooManyNames,
    /// No client owns the name.
    UnknownName,
    /// This client owns the name itself.
    SelfConnect,
    /// This client holds as many live connection objects as the server allows.
    TooManyPending,
    /// The name's owner has not read as many channels as the server queues
    /// for one owner; trying again later may succeed.
    Busy,
    /// A reason this client does not know (a newer server).
    Other(u32),
}

impl Failure {
    /// The typed reason of a wire value.
    pub fn from_wire(value: u32) -> Failure {
        match value {
            failure::INVALID_NAME => Failure::InvalidName,
            failure::NAME_TAKEN => Failure::NameTaken,
            failure::TOO_MANY_NAMES => Failure::TooManyNames,
            failure::UNKNOWN_NAME => Failure::UnknownName,
            failure::SELF_CONNECT => Failure::SelfConnect,
            failure::TOO_MANY_PENDING => Failure::TooManyPending,
            failure::BUSY => Failure::Busy,
            other => Failure::Other(other),
        }
    }

    /// The wire value.
    pub fn to_wire(self) -> u32 {
        match self {
            Failure::InvalidName => failure::INVALID_NAME,
            Failure::NameTaken => failure::NAME_TAKEN,
            Failure::TooManyNames => failure::TOO_MANY_NAMES,
            Failure::UnknownName => failure::UNKNOWN_NAME,
            Failure::SelfConnect => failure::SELF_CONNECT,
            Failure::TooManyPending => failure::TOO_MANY_PENDING,
            Failure::Busy => failure::BUSY,
            Failure::Other(v) => v,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::InvalidName => {
                f.write_str("invalid name (1 to 64 bytes of A-Z a-z 0-9 . _ -)")
            }
            Failure::NameTaken => f.write_str("the name is taken by another client"),
            Failure::TooManyNames => f.write_str("this client owns too many names"),
            Failure::UnknownName => f.write_str("no client has registered the name"),
            Failure::SelfConnect => f.write_str("the name is this client's own"),
            Failure::TooManyPending => f.write_str("too many pending connections"),
            Failure::Busy => f.write_str("the name's owner is busy (too many channels unread)"),
            Failure::Other(v) => write!(f, "failure code {v}"),
        }
    }
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
    /// A `peer` or `established` event came without the peer's pid, uid
    /// or gid.
    MissingCredentials,
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

/// A refusal reason is whole in its text: no `source()`.
impl Error for Failure {}

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
            } => write!(f, "cannot register name \"{name}\": {reason}"),
            BrokerError::Refused {
                request: Request::Connect,
                name,
                reason,
            } => write!(f, "cannot connect to \"{name}\": {reason}"),
            BrokerError::NoAnswer {
                waiting_for,
                waited,
            } => write!(f, "no {waiting_for} within {} ms", waited.as_millis()),
            BrokerError::MissingFd => f.write_str("the server sent a channel without its fd"),
            BrokerError::MissingCredentials => {
                f.write_str("the server sent a channel without its peer's pid, uid and gid")
            }
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
    fn failure_round_trips_through_the_wire_value() {
        for v in 0..8 {
            assert_eq!(Failure::from_wire(v).to_wire(), v);
        }
        assert_eq!(Failure::from_wire(1), Failure::NameTaken);
        assert_eq!(Failure::from_wire(7), Failure::Other(7));
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
